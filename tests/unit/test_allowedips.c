/* Allowed-IPs trie: table-driven cases (overlaps, defaults, IPv6, stealing, refused removal,
 * remove_owner), listing order, pruning (measured as allocated bytes) and a randomized comparison
 * against a linear-scan reference. Seed: WG_TEST_SEED in the environment, else a fixed one. */
#include <arpa/inet.h>
#include <errno.h>
#include <malloc.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include "test.h"
#include "wg/core/allowedips.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#endif
#ifdef UNDER_ASAN
size_t __sanitizer_get_current_allocated_bytes(void);
#endif

/* Bytes currently allocated by the process, from whichever allocator is in use. */
static size_t allocated_bytes(void)
{
#ifdef UNDER_ASAN
	return __sanitizer_get_current_allocated_bytes();
#else
	return mallinfo2().uordblks;
#endif
}

/* ASan counts exactly; glibc's mallinfo counts chunks parked in the per-thread cache (up to 7 per size
 * class) as in use, so allow that much slack there. */
static bool about_equal(size_t a, size_t b)
{
#ifdef UNDER_ASAN
	return a == b;
#else
	return (a > b ? a - b : b - a) <= 2048;
#endif
}

struct addr {
	int family;
	uint8_t ip[16];
};

static struct addr parse(const char *s)
{
	struct addr a = { strchr(s, ':') ? AF_INET6 : AF_INET, { 0 } };

	if (inet_pton(a.family, s, a.ip) != 1) {
		fprintf(stderr, "bad address in test: %s\n", s);
		abort();
	}
	return a;
}

static int ins(struct wg_allowedips *t, const char *ip, uint8_t cidr, struct wg_allowedips_owner *o)
{
	struct addr a = parse(ip);
	return wg_allowedips_insert(t, a.family, a.ip, cidr, o);
}

static int rem(struct wg_allowedips *t, const char *ip, uint8_t cidr, struct wg_allowedips_owner *o)
{
	struct addr a = parse(ip);
	return wg_allowedips_remove(t, a.family, a.ip, cidr, o);
}

static struct wg_allowedips_owner *look(const struct wg_allowedips *t, const char *ip)
{
	struct addr a = parse(ip);
	return wg_allowedips_lookup(t, a.family, a.ip);
}

/* ---- for_each collection ---- */

enum { MAX_LISTED = 4096 };
struct listed {
	size_t n;
	struct {
		int family;
		uint8_t ip[16];
		uint8_t cidr;
	} e[MAX_LISTED];
};

static void collect(void *ctx, int family, const uint8_t *ip, uint8_t cidr)
{
	struct listed *l = ctx;

	if (l->n == MAX_LISTED)
		abort();
	l->e[l->n].family = family;
	memset(l->e[l->n].ip, 0, 16);
	memcpy(l->e[l->n].ip, ip, family == AF_INET ? 4 : 16);
	l->e[l->n].cidr = cidr;
	l->n++;
}

static bool listed_is(const struct listed *l, size_t i, const char *ip, uint8_t cidr)
{
	struct addr a = parse(ip);

	return i < l->n && l->e[i].family == a.family && l->e[i].cidr == cidr && !memcmp(l->e[i].ip, a.ip, 16);
}

/* ---- table-driven cases ---- */

enum { N_OWNERS = 8 };
static struct wg_allowedips_owner owners[N_OWNERS];
#define A (&owners[0])
#define B (&owners[1])
#define C (&owners[2])
#define D (&owners[3])
#define E (&owners[4])
#define F (&owners[5])
#define G (&owners[6])
#define H (&owners[7])

struct ins_case {
	const char *ip;
	uint8_t cidr;
	struct wg_allowedips_owner *owner;
};
struct look_case {
	const char *ip;
	struct wg_allowedips_owner *expect; /* NULL: no prefix covers it */
};

static void reset_owners(void)
{
	memset(owners, 0, sizeof(owners));
}

static void insert_all(struct wg_allowedips *t, const struct ins_case *c, size_t n)
{
	for (size_t i = 0; i < n; i++)
		CHECK(ins(t, c[i].ip, c[i].cidr, c[i].owner) == 0);
}

static void check_lookups(const struct wg_allowedips *t, const struct look_case *c, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (look(t, c[i].ip) != c[i].expect) {
			fprintf(stderr, "  lookup %s: wrong owner\n", c[i].ip);
			CHECK(look(t, c[i].ip) == c[i].expect);
		}
	}
}

#define ARRAY_LEN(x) (sizeof(x) / sizeof((x)[0]))

static const struct ins_case basic_prefixes[] = {
	{ "192.168.4.0", 24, A },
	{ "192.168.4.4", 32, B },
	{ "192.168.0.0", 16, C },
	{ "192.95.5.64", 27, D },
	{ "192.95.5.65", 27, C }, /* same /27 after masking: C steals it from D */
	{ "2607:5300:60:6b0::c05f:543", 128, D },
	{ "2607:5300:60:6b0::c02e:1ee", 128, E },
	{ "2607:5300:60:6b0::", 64, F },
	{ "2001:db8::", 32, B },
	{ "2001:db8:1::", 48, G },
	{ "0.0.0.0", 0, H },
	{ "::", 0, H },
	{ "10.0.0.0", 8, E },
	{ "10.1.0.0", 16, F },
	{ "10.1.2.3", 32, G },
	{ "128.0.0.0", 1, G },
};

static const struct look_case basic_lookups[] = {
	{ "192.168.4.20", A },
	{ "192.168.4.0", A },
	{ "192.168.4.255", A },
	{ "192.168.4.4", B },
	{ "192.168.4.5", A },
	{ "192.168.5.4", C },
	{ "192.168.200.182", C },
	{ "192.95.5.68", C },
	{ "192.95.5.64", C },
	{ "192.95.5.95", C },
	{ "192.95.5.96", G }, /* outside the /27: falls to 128.0.0.0/1 */
	{ "127.255.255.255", H },
	{ "1.2.3.4", H },
	{ "0.0.0.0", H },
	{ "255.255.255.255", G },
	{ "10.0.0.1", E },
	{ "10.1.0.1", F },
	{ "10.1.2.3", G },
	{ "10.1.2.4", F },
	{ "10.2.2.3", E },
	{ "2607:5300:60:6b0::c05f:543", D },
	{ "2607:5300:60:6b0::c02e:1ee", E },
	{ "2607:5300:60:6b0::c05f:544", F },
	{ "2607:5300:60:6b1::c05f:543", H },
	{ "2001:db8::1", B },
	{ "2001:db8:1::1", G },
	{ "2001:db8:1:ffff:ffff:ffff:ffff:ffff", G },
	{ "2001:db8:2::1", B },
	{ "2001:db9::1", H },
	{ "::1", H },
	{ "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", H },
};

static void test_basic_table(void)
{
	struct wg_allowedips *t = wg_allowedips_new();

	reset_owners();
	CHECK(t != NULL);
	insert_all(t, basic_prefixes, ARRAY_LEN(basic_prefixes));
	check_lookups(t, basic_lookups, ARRAY_LEN(basic_lookups));
	CHECK(A->count == 1 && B->count == 2 && C->count == 2 && D->count == 1);
	CHECK(E->count == 2 && F->count == 2 && G->count == 3 && H->count == 2);
	wg_allowedips_free(t);
}

/* No default route: uncovered addresses of either family find nobody. */
static void test_empty_and_uncovered(void)
{
	struct wg_allowedips *t = wg_allowedips_new();

	reset_owners();
	CHECK(look(t, "1.2.3.4") == NULL);
	CHECK(look(t, "::1") == NULL);
	CHECK(ins(t, "10.0.0.0", 8, A) == 0);
	CHECK(ins(t, "fd00::", 8, B) == 0);
	CHECK(look(t, "11.0.0.0") == NULL);
	CHECK(look(t, "9.255.255.255") == NULL);
	CHECK(look(t, "10.255.255.255") == A);
	CHECK(look(t, "fe00::") == NULL);
	CHECK(look(t, "fdff::1") == B);
	/* Families are separate tries: the same leading bytes do not match across them. */
	CHECK(look(t, "a00::") == NULL);
	wg_allowedips_free(t);
}

static void test_default_routes(void)
{
	struct wg_allowedips *t = wg_allowedips_new();

	reset_owners();
	CHECK(ins(t, "0.0.0.0", 0, A) == 0);
	CHECK(look(t, "8.8.8.8") == A);
	CHECK(look(t, "::1") == NULL);
	CHECK(ins(t, "::", 0, B) == 0);
	CHECK(look(t, "::1") == B);
	CHECK(look(t, "8.8.8.8") == A);
	/* Host bits are masked, so 1.2.3.4/0 is the same default route: C steals it. */
	CHECK(ins(t, "1.2.3.4", 0, C) == 0);
	CHECK(look(t, "200.1.1.1") == C);
	CHECK(A->count == 0 && A->first == NULL && C->count == 1);
	CHECK(ins(t, "0.0.0.0", 1, D) == 0);
	CHECK(ins(t, "128.0.0.0", 1, E) == 0);
	CHECK(look(t, "127.0.0.1") == D);
	CHECK(look(t, "128.0.0.1") == E);
	CHECK(rem(t, "0.0.0.0", 0, C) == 0);
	CHECK(look(t, "127.0.0.1") == D);
	CHECK(rem(t, "0.0.0.0", 1, D) == 0);
	CHECK(look(t, "127.0.0.1") == NULL);
	CHECK(look(t, "::ffff:1") == B);
	wg_allowedips_free(t);
}

static void test_host_bits_masked(void)
{
	struct wg_allowedips *t = wg_allowedips_new();
	struct listed *l = calloc(1, sizeof(*l));

	reset_owners();
	CHECK(ins(t, "10.1.2.3", 8, A) == 0);
	CHECK(ins(t, "2001:db8:aaaa:bbbb:cccc::1", 33, A) == 0);
	CHECK(ins(t, "2001:db8::1", 128, A) == 0);
	wg_allowedips_for_each(A, collect, l);
	CHECK(l->n == 3);
	CHECK(listed_is(l, 0, "10.0.0.0", 8));
	CHECK(listed_is(l, 1, "2001:db8:8000::", 33));
	CHECK(listed_is(l, 2, "2001:db8::1", 128));
	/* Removal masks too. */
	CHECK(rem(t, "10.200.0.0", 8, A) == 0);
	CHECK(rem(t, "2001:db8:ffff::", 33, A) == 0);
	CHECK(A->count == 1);
	CHECK(look(t, "10.1.2.3") == NULL);
	free(l);
	wg_allowedips_free(t);
}

static void test_steal_and_refused_remove(void)
{
	struct wg_allowedips *t = wg_allowedips_new();
	struct listed *l = calloc(1, sizeof(*l));

	reset_owners();
	CHECK(ins(t, "192.168.4.0", 24, A) == 0);
	CHECK(ins(t, "192.168.4.4", 32, A) == 0);
	CHECK(ins(t, "fd00::", 64, A) == 0);
	CHECK(ins(t, "192.168.4.4", 32, B) == 0); /* B steals the /32 */
	CHECK(look(t, "192.168.4.4") == B);
	CHECK(look(t, "192.168.4.5") == A);
	CHECK(A->count == 2 && B->count == 1);
	wg_allowedips_for_each(A, collect, l);
	CHECK(l->n == 2 && listed_is(l, 0, "192.168.4.0", 24) && listed_is(l, 1, "fd00::", 64));
	/* A no longer holds it: its removal is refused and changes nothing. */
	CHECK(rem(t, "192.168.4.4", 32, A) == -ENOENT);
	CHECK(look(t, "192.168.4.4") == B);
	CHECK(B->count == 1);
	/* Absent prefixes, including a covering one that exists only as an internal branch point. */
	CHECK(ins(t, "10.0.0.0", 24, C) == 0);
	CHECK(ins(t, "10.0.1.0", 24, C) == 0);
	CHECK(rem(t, "10.0.0.0", 23, C) == -ENOENT);
	CHECK(rem(t, "10.0.0.0", 25, C) == -ENOENT);
	CHECK(rem(t, "10.0.2.0", 24, C) == -ENOENT);
	CHECK(rem(t, "fd00::", 63, A) == -ENOENT);
	CHECK(rem(t, "fd00::", 64, B) == -ENOENT);
	CHECK(look(t, "10.0.1.9") == C && C->count == 2);
	/* Re-inserting by the same owner is a no-op. */
	CHECK(ins(t, "10.0.0.0", 24, C) == 0);
	CHECK(C->count == 2);
	CHECK(rem(t, "192.168.4.4", 32, B) == 0);
	CHECK(B->count == 0 && B->first == NULL);
	CHECK(look(t, "192.168.4.4") == A);
	free(l);
	wg_allowedips_free(t);
}

static void test_remove_owner(void)
{
	struct wg_allowedips *t = wg_allowedips_new();

	reset_owners();
	insert_all(t, basic_prefixes, ARRAY_LEN(basic_prefixes));
	wg_allowedips_remove_owner(t, C);
	CHECK(C->count == 0 && C->first == NULL);
	CHECK(look(t, "192.168.5.4") == G); /* 128.0.0.0/1 */
	CHECK(look(t, "192.95.5.68") == G);
	CHECK(look(t, "192.168.4.4") == B);
	CHECK(look(t, "192.168.4.20") == A);
	wg_allowedips_remove_owner(t, G);
	CHECK(look(t, "10.1.2.3") == F);
	CHECK(look(t, "2001:db8:1::1") == B);
	CHECK(look(t, "200.0.0.1") == H);
	wg_allowedips_remove_owner(t, H);
	CHECK(look(t, "200.0.0.1") == NULL);
	CHECK(look(t, "::1") == NULL);
	wg_allowedips_remove_owner(t, H); /* nothing left: harmless */
	/* Remaining owners untouched. */
	CHECK(A->count == 1 && B->count == 2 && D->count == 1 && E->count == 2 && F->count == 2);
	CHECK(look(t, "2607:5300:60:6b0::c05f:543") == D);
	/* The owner can be reused afterwards. */
	CHECK(ins(t, "192.168.0.0", 16, C) == 0);
	CHECK(look(t, "192.168.5.4") == C && C->count == 1);
	wg_allowedips_free(t);
}

static void test_invalid(void)
{
	struct wg_allowedips *t = wg_allowedips_new();
	uint8_t ip[16] = { 10 };

	reset_owners();
	CHECK(wg_allowedips_insert(t, AF_UNIX, ip, 8, A) == -EINVAL);
	CHECK(wg_allowedips_insert(t, AF_INET, ip, 33, A) == -EINVAL);
	CHECK(wg_allowedips_insert(t, AF_INET6, ip, 129, A) == -EINVAL);
	CHECK(wg_allowedips_insert(t, AF_INET, ip, 32, A) == 0);
	CHECK(wg_allowedips_insert(t, AF_INET6, ip, 128, A) == 0);
	CHECK(wg_allowedips_remove(t, AF_UNIX, ip, 8, A) == -EINVAL);
	CHECK(wg_allowedips_remove(t, AF_INET, ip, 33, A) == -EINVAL);
	CHECK(wg_allowedips_remove(t, AF_INET6, ip, 129, A) == -EINVAL);
	CHECK(wg_allowedips_lookup(t, AF_UNIX, ip) == NULL);
	CHECK(wg_allowedips_lookup(t, AF_INET, ip) == A);
	CHECK(A->count == 2);
	wg_allowedips_free(t);
	wg_allowedips_free(NULL);
}

/* Insertion order, counts, and a stolen-back prefix moving to the end. */
static void test_for_each_order(void)
{
	struct wg_allowedips *t = wg_allowedips_new();
	struct listed *l = calloc(1, sizeof(*l));

	reset_owners();
	wg_allowedips_for_each(A, collect, l);
	CHECK(l->n == 0);
	CHECK(ins(t, "10.0.0.0", 8, A) == 0);
	CHECK(ins(t, "fd00::1", 128, B) == 0);
	CHECK(ins(t, "10.1.0.0", 16, A) == 0);
	CHECK(ins(t, "fd00::", 8, A) == 0);
	CHECK(ins(t, "9.0.0.0", 8, A) == 0);
	CHECK(ins(t, "10.1.0.0", 16, B) == 0);
	CHECK(ins(t, "10.1.0.0", 16, A) == 0);
	wg_allowedips_for_each(A, collect, l);
	CHECK(A->count == 4 && l->n == 4);
	CHECK(listed_is(l, 0, "10.0.0.0", 8));
	CHECK(listed_is(l, 1, "fd00::", 8));
	CHECK(listed_is(l, 2, "9.0.0.0", 8));
	CHECK(listed_is(l, 3, "10.1.0.0", 16));
	/* Removing from the front, middle and back keeps the rest in order. */
	CHECK(rem(t, "10.0.0.0", 8, A) == 0);
	CHECK(rem(t, "10.1.0.0", 16, A) == 0);
	CHECK(ins(t, "8.0.0.0", 8, A) == 0);
	l->n = 0;
	wg_allowedips_for_each(A, collect, l);
	CHECK(A->count == 3 && l->n == 3);
	CHECK(listed_is(l, 0, "fd00::", 8));
	CHECK(listed_is(l, 1, "9.0.0.0", 8));
	CHECK(listed_is(l, 2, "8.0.0.0", 8));
	l->n = 0;
	wg_allowedips_for_each(B, collect, l);
	CHECK(B->count == 1 && l->n == 1 && listed_is(l, 0, "fd00::1", 128));
	free(l);
	wg_allowedips_free(t);
}

/* ---- deterministic PRNG (splitmix64) ---- */

static uint64_t rng_state;

static uint64_t rnd(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static unsigned rnd_below(unsigned n)
{
	return (unsigned)(rnd() % n);
}

static uint64_t test_seed(void)
{
	const char *s = getenv("WG_TEST_SEED");

	return s ? strtoull(s, NULL, 0) : 0x5eed0a11ed1b5ULL;
}

/* ---- linear-scan reference ---- */

struct ref_entry {
	int family;
	uint8_t ip[16];
	uint8_t cidr;
	int owner;
	uint64_t seq; /* insertion (or steal) time: the order for_each must follow */
};

struct ref {
	size_t n;
	uint64_t clock;
	struct ref_entry e[MAX_LISTED];
};

static unsigned bits_of(int family)
{
	return family == AF_INET ? 32 : 128;
}

static void mask_ip(int family, uint8_t *ip, unsigned cidr)
{
	for (unsigned i = 0; i < bits_of(family) / 8; i++) {
		if (cidr >= 8 * (i + 1))
			continue;
		ip[i] &= cidr <= 8 * i ? 0 : (uint8_t)(0xff << (8 - (cidr - 8 * i)));
	}
}

static bool ref_covers(const struct ref_entry *e, int family, const uint8_t *ip)
{
	uint8_t m[16];

	if (e->family != family)
		return false;
	memcpy(m, ip, 16);
	mask_ip(family, m, e->cidr);
	return !memcmp(m, e->ip, 16);
}

static struct ref_entry *ref_find(struct ref *r, int family, const uint8_t *ip, unsigned cidr)
{
	for (size_t i = 0; i < r->n; i++)
		if (r->e[i].family == family && r->e[i].cidr == cidr && !memcmp(r->e[i].ip, ip, 16))
			return &r->e[i];
	return NULL;
}

static void ref_insert(struct ref *r, int family, const uint8_t *ip, unsigned cidr, int owner)
{
	uint8_t m[16];
	struct ref_entry *e;

	memcpy(m, ip, 16);
	mask_ip(family, m, cidr);
	e = ref_find(r, family, m, cidr);
	if (!e) {
		e = &r->e[r->n++];
		e->family = family;
		memcpy(e->ip, m, 16);
		e->cidr = (uint8_t)cidr;
		e->owner = -1;
	}
	if (e->owner != owner)
		e->seq = r->clock++;
	e->owner = owner;
}

static void ref_delete(struct ref *r, size_t i)
{
	r->e[i] = r->e[--r->n];
}

static int ref_lookup(const struct ref *r, int family, const uint8_t *ip)
{
	int best = -1, best_cidr = -1;

	for (size_t i = 0; i < r->n; i++) {
		if (r->e[i].cidr > best_cidr && ref_covers(&r->e[i], family, ip)) {
			best = r->e[i].owner;
			best_cidr = r->e[i].cidr;
		}
	}
	return best;
}

/* ---- randomized comparison ---- */

enum { RAND_OWNERS = 6, RAND_OPS = 20000, RAND_BASES = 6 };
static uint8_t bases[2][RAND_BASES][16];

/* Addresses cluster around a few bases with random low bits, so prefixes overlap and nest a lot. */
static void random_addr(int family, uint8_t ip[16])
{
	unsigned bits = bits_of(family), keep = rnd_below(bits + 1);

	memset(ip, 0, 16);
	memcpy(ip, bases[family == AF_INET6][rnd_below(RAND_BASES)], bits / 8);
	for (unsigned b = keep; b < bits; b++)
		if (rnd() & 1)
			ip[b / 8] ^= (uint8_t)(0x80 >> (b % 8));
}

static int random_family(void)
{
	return rnd() & 1 ? AF_INET : AF_INET6;
}

static unsigned random_cidr(int family)
{
	unsigned bits = bits_of(family);

	return rnd() % 4 ? bits - rnd_below(bits / 4 + 1) : rnd_below(bits + 1);
}

static int owner_index(const struct wg_allowedips_owner *o)
{
	return o ? (int)(o - owners) : -1;
}

static bool compare_lookups(const struct wg_allowedips *t, const struct ref *r, unsigned n)
{
	bool ok = true;

	for (unsigned i = 0; i < n; i++) {
		int family = random_family();
		uint8_t ip[16];

		random_addr(family, ip);
		if (owner_index(wg_allowedips_lookup(t, family, ip)) != ref_lookup(r, family, ip))
			ok = false;
	}
	return ok;
}

static int by_seq(const void *a, const void *b)
{
	const struct ref_entry *x = a, *y = b;

	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* The trie's list of each owner must be the reference's entries of that owner in seq order. */
static bool compare_lists(const struct ref *r, struct listed *l, struct ref_entry *scratch)
{
	for (int o = 0; o < RAND_OWNERS; o++) {
		size_t n = 0;

		for (size_t i = 0; i < r->n; i++)
			if (r->e[i].owner == o)
				scratch[n++] = r->e[i];
		qsort(scratch, n, sizeof(*scratch), by_seq);
		l->n = 0;
		wg_allowedips_for_each(&owners[o], collect, l);
		if (l->n != n || owners[o].count != n)
			return false;
		for (size_t i = 0; i < n; i++)
			if (l->e[i].family != scratch[i].family || l->e[i].cidr != scratch[i].cidr ||
			    memcmp(l->e[i].ip, scratch[i].ip, 16))
				return false;
	}
	return true;
}

/* Alternating growth and shrink phases, so the trie both gets large and empties out again. */
static void random_op(struct wg_allowedips *t, struct ref *r, bool growing)
{
	unsigned what = rnd_below(100);

	if (growing && what >= 55)
		what = what < 85 ? rnd_below(55) : 55 + rnd_below(45);
	int family = random_family(), o = (int)rnd_below(RAND_OWNERS);
	unsigned cidr = random_cidr(family);
	uint8_t ip[16];

	random_addr(family, ip);
	if (what < 55 && r->n < MAX_LISTED - 1) {
		CHECK(wg_allowedips_insert(t, family, ip, (uint8_t)cidr, &owners[o]) == 0);
		ref_insert(r, family, ip, cidr, o);
	} else if (what < 85 && r->n) {
		/* Remove an existing prefix, with its owner or (refused) another one. */
		size_t i = rnd_below((unsigned)r->n);
		struct ref_entry e = r->e[i];
		int who = rnd() % 3 ? e.owner : (e.owner + 1) % RAND_OWNERS;
		int ret = wg_allowedips_remove(t, e.family, e.ip, e.cidr, &owners[who]);

		CHECK(ret == (who == e.owner ? 0 : -ENOENT));
		if (who == e.owner)
			ref_delete(r, i);
	} else if (what < 97) {
		uint8_t m[16];

		memcpy(m, ip, 16);
		mask_ip(family, m, cidr);
		if (!ref_find(r, family, m, cidr))
			CHECK(wg_allowedips_remove(t, family, ip, (uint8_t)cidr, &owners[o]) == -ENOENT);
	} else {
		wg_allowedips_remove_owner(t, &owners[o]);
		for (size_t i = r->n; i-- > 0;)
			if (r->e[i].owner == o)
				ref_delete(r, i);
	}
}

static void test_randomized_vs_reference(void)
{
	struct wg_allowedips *t = wg_allowedips_new();
	struct ref *r = calloc(1, sizeof(*r));
	struct listed *l = calloc(1, sizeof(*l));
	struct ref_entry *scratch = calloc(MAX_LISTED, sizeof(*scratch));
	uint64_t seed = test_seed();
	unsigned lookup_fail = 0, list_fail = 0;
	size_t peak = 0;

	printf("     allowedips random seed 0x%llx (set WG_TEST_SEED to replay)\n", (unsigned long long)seed);
	rng_state = seed;
	reset_owners();
	for (int f = 0; f < 2; f++)
		for (int b = 0; b < RAND_BASES; b++)
			for (int i = 0; i < 16; i++)
				bases[f][b][i] = (uint8_t)rnd();
	for (unsigned op = 0; op < RAND_OPS; op++) {
		random_op(t, r, (op / 2500) % 2 == 0);
		peak = r->n > peak ? r->n : peak;
		if (!compare_lookups(t, r, 8))
			lookup_fail++;
		if (op % 64 == 0 && !compare_lists(r, l, scratch))
			list_fail++;
	}
	CHECK(lookup_fail == 0);
	CHECK(list_fail == 0);
	CHECK(compare_lists(r, l, scratch));
	CHECK(peak > 200); /* the run really built a sizeable trie */
	printf("     %u ops, peak %zu prefixes, %u lookup / %u list mismatches\n", RAND_OPS, peak, lookup_fail,
	       list_fail);
	for (int o = 0; o < RAND_OWNERS; o++)
		wg_allowedips_remove_owner(t, &owners[o]);
	r->n = 0;
	CHECK(compare_lookups(t, r, 64));
	free(scratch);
	free(l);
	free(r);
	wg_allowedips_free(t);
}

/* ---- pruning and memory ---- */

/* Each prefix's owner is a function of the prefix, so the prefixes left to B after remove_owner(A)
 * are exactly the ones a B-only fill inserts (no steals between the two). */
static struct wg_allowedips_owner *owner_of_prefix(const uint8_t ip[16], unsigned cidr)
{
	unsigned h = cidr;

	for (int i = 0; i < 16; i++)
		h = h * 31 + ip[i];
	return h & 1 ? A : B;
}

static void fill_interleaved(struct wg_allowedips *t, uint64_t seed, unsigned n, bool with_a, bool with_b)
{
	rng_state = seed;
	for (unsigned i = 0; i < n; i++) {
		int family = random_family();
		unsigned cidr = random_cidr(family);
		uint8_t ip[16];
		struct wg_allowedips_owner *o;

		random_addr(family, ip);
		mask_ip(family, ip, cidr);
		o = owner_of_prefix(ip, cidr);
		if ((o == A && with_a) || (o == B && with_b))
			CHECK(wg_allowedips_insert(t, family, ip, (uint8_t)cidr, o) == 0);
	}
}

/* A path-compressed trie whose glue nodes all branch is canonical: after remove_owner(A) the table
 * must use exactly the memory of a table built from B's prefixes alone. */
static void test_remove_owner_prunes(void)
{
	size_t base1, base2, with_both, after_remove, only_b;
	struct wg_allowedips *t1 = wg_allowedips_new(), *t2;

	reset_owners();
	base1 = allocated_bytes();
	fill_interleaved(t1, 77, 3000, true, true);
	with_both = allocated_bytes() - base1;
	wg_allowedips_remove_owner(t1, A);
	after_remove = allocated_bytes() - base1;
	CHECK(A->count == 0 && A->first == NULL);
	t2 = wg_allowedips_new();
	base2 = allocated_bytes();
	reset_owners();
	fill_interleaved(t2, 77, 3000, false, true);
	only_b = allocated_bytes() - base2;
	printf("     bytes: A+B %zu, after remove_owner(A) %zu, B alone %zu\n", with_both, after_remove, only_b);
	CHECK(after_remove < with_both * 3 / 4);
	CHECK(about_equal(after_remove, only_b));
	/* Removing every prefix returns the table to its empty size. */
	wg_allowedips_remove_owner(t2, B);
	CHECK(about_equal(allocated_bytes(), base2));
	wg_allowedips_free(t1);
	wg_allowedips_free(t2);
}

/* 100,000 random IPv4 and IPv6 prefixes: spot-check lookups against the reference scan and report
 * the memory per prefix (glue nodes included). */
enum { MANY = 100000, MANY_CHECKS = 300 };

static void test_many_prefixes(void)
{
	struct ref_entry *all = calloc(MANY, sizeof(*all));
	struct wg_allowedips *t;
	size_t base, used;
	unsigned bad = 0;

	reset_owners();
	rng_state = test_seed() ^ 0x1234;
	t = wg_allowedips_new();
	base = allocated_bytes();
	for (unsigned i = 0; i < MANY; i++) {
		struct ref_entry *e = &all[i];

		e->family = i % 4 ? AF_INET : AF_INET6;
		for (unsigned b = 0; b < bits_of(e->family) / 8; b++)
			e->ip[b] = (uint8_t)rnd();
		e->cidr = (uint8_t)(e->family == AF_INET ? 8 + rnd_below(25) : 16 + rnd_below(113));
		e->owner = (int)rnd_below(N_OWNERS);
		mask_ip(e->family, e->ip, e->cidr);
		CHECK(wg_allowedips_insert(t, e->family, e->ip, e->cidr, &owners[e->owner]) == 0);
	}
	used = allocated_bytes() - base;
	printf("     %d prefixes: %zu bytes allocated, %.1f bytes/prefix\n", MANY, used, (double)used / MANY);
	/* Later duplicates steal earlier ones: the reference is "last insert wins". */
	for (unsigned c = 0; c < MANY_CHECKS; c++) {
		struct ref_entry p = all[rnd_below(MANY)], *probe = &p;
		int best = -1, best_cidr = -1;

		/* Somewhere inside a stored prefix, so more specific ones may match too. */
		for (unsigned b = probe->cidr; b < bits_of(probe->family); b++)
			if (rnd() & 1)
				probe->ip[b / 8] ^= (uint8_t)(0x80 >> (b % 8));

		for (unsigned i = 0; i < MANY; i++)
			if (all[i].cidr >= best_cidr && ref_covers(&all[i], probe->family, probe->ip)) {
				best = all[i].owner;
				best_cidr = all[i].cidr;
			}
		if (owner_index(wg_allowedips_lookup(t, probe->family, probe->ip)) != best)
			bad++;
	}
	CHECK(bad == 0);
	for (int o = 0; o < N_OWNERS; o++)
		wg_allowedips_remove_owner(t, &owners[o]);
	CHECK(about_equal(allocated_bytes(), base));
	wg_allowedips_free(t);
	free(all);
}

int main(void)
{
	TEST_RUN(test_basic_table);
	TEST_RUN(test_empty_and_uncovered);
	TEST_RUN(test_default_routes);
	TEST_RUN(test_host_bits_masked);
	TEST_RUN(test_steal_and_refused_remove);
	TEST_RUN(test_remove_owner);
	TEST_RUN(test_invalid);
	TEST_RUN(test_for_each_order);
	TEST_RUN(test_randomized_vs_reference);
	TEST_RUN(test_remove_owner_prunes);
	TEST_RUN(test_many_prefixes);
	return TEST_SUMMARY();
}
