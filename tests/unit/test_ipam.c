/* Addresses and prefixes (cidr), the runs set, and the address allocator (ipam): table-driven parsing,
 * the reference's skipping rules, exact results against a naive model under random operations, a
 * full /16, huge IPv6 ranges, and the state round trip. */
#include "test.h"
#include "overlay/cidr.h"
#include "overlay/ipam.h"
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rnd(void)
{
	/* xorshift64*: deterministic, so a failure reproduces. */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dULL;
}

static unsigned rnd_below(unsigned n)
{
	return (unsigned)(rnd() % n);
}

static struct zl_prefix P(const char *text)
{
	struct zl_prefix p;

	if (zl_prefix_parse(text, &p, NULL, 0)) {
		fprintf(stderr, "bad test prefix %s\n", text);
		abort();
	}
	return p;
}

static struct zl_ip IP(const char *text)
{
	struct zl_ip ip;

	if (zl_ip_parse(text, &ip, NULL, 0)) {
		fprintf(stderr, "bad test address %s\n", text);
		abort();
	}
	return ip;
}

static bool ip_is(const struct zl_ip *ip, const char *text)
{
	char buf[ZL_IP_STRLEN];

	return strcmp(zl_ip_format(ip, buf), text) == 0;
}

static struct zl_ipam *new_ipam(const char *range)
{
	struct zl_prefix p = P(range);
	struct zl_ipam *a = NULL;

	if (zl_ipam_new(&p, &a, NULL, 0)) {
		fprintf(stderr, "cannot create allocator for %s\n", range);
		abort();
	}
	return a;
}

/* ---- cidr ---- */

static void test_prefix_parse_valid(void)
{
	static const struct {
		const char *in, *out;
		int family;
		unsigned len;
		bool network;
	} cases[] = {
		{ "10.200.0.0/16", "10.200.0.0/16", AF_INET, 16, true },
		{ "0.0.0.0/0", "0.0.0.0/0", AF_INET, 0, true },
		{ "1.2.3.4/32", "1.2.3.4/32", AF_INET, 32, true },
		{ "10.200.1.7/16", "10.200.1.7/16", AF_INET, 16, false },
		{ "fd00:200::/48", "fd00:200::/48", AF_INET6, 48, true },
		{ "FD00:0200:0000:0000::/048", "fd00:200::/48", AF_INET6, 48, true },
		{ "::/0", "::/0", AF_INET6, 0, true },
		{ "::1/128", "::1/128", AF_INET6, 128, true },
		{ "fd00::1/64", "fd00::1/64", AF_INET6, 64, false },
		{ "::ffff:1.2.3.0/120", "::ffff:1.2.3.0/120", AF_INET6, 120, true },
	};
	char buf[ZL_PREFIX_STRLEN], err[ZL_ERR_LEN];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct zl_prefix p;

		CHECK(zl_prefix_parse(cases[i].in, &p, err, sizeof(err)) == 0);
		CHECK(err[0] == '\0');
		CHECK(p.ip.family == cases[i].family);
		CHECK(p.len == cases[i].len);
		CHECK(zl_prefix_is_network(&p) == cases[i].network);
		CHECK(strcmp(zl_prefix_format(&p, buf), cases[i].out) == 0);
	}
}

static void test_prefix_parse_invalid(void)
{
	static const struct {
		const char *in, *msg;
	} cases[] = {
		{ "", "not a CIDR" },
		{ "10.200.0.0", "not a CIDR" },
		{ "10.200.0.0/", "bad prefix length" },
		{ "10.200.0.0/33", "exceeds 32 for IPv4" },
		{ "::/129", "exceeds 128 for IPv6" },
		{ "fd00::/999", "exceeds 128" },
		{ "10.200.0.0/-1", "bad prefix length" },
		{ "10.200.0.0/+8", "bad prefix length" },
		{ "10.200.0.0/1a", "bad prefix length" },
		{ "10.200.0.0/0016", "bad prefix length" },
		{ "10.200.0.0/16 ", "bad prefix length" },
		{ " 10.200.0.0/16", "not an IPv4 or IPv6" },
		{ "010.1.1.1/8", "not an IPv4 or IPv6" },
		{ "1.2.3/8", "not an IPv4 or IPv6" },
		{ "1.2.3.4.5/8", "not an IPv4 or IPv6" },
		{ "10.0.0.256/8", "not an IPv4 or IPv6" },
		{ "fe80::1%eth0/64", "not an IPv4 or IPv6" },
		{ "fd00:::1/64", "not an IPv4 or IPv6" },
		{ "a/b/c", "not an IPv4 or IPv6" },
		{ "/8", "not an IPv4 or IPv6" },
		{ "1111:2222:3333:4444:5555:6666:7777:8888:9999:aaaa:bbbb/64", "address too long" },
	};
	char err[ZL_ERR_LEN];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct zl_prefix p = { .len = 77 };

		CHECK(zl_prefix_parse(cases[i].in, &p, err, sizeof(err)) == -EINVAL);
		CHECK(p.len == 77); /* untouched */
		if (!strstr(err, cases[i].msg))
			fprintf(stderr, "  case '%s': message '%s' lacks '%s'\n", cases[i].in, err, cases[i].msg);
		CHECK(strstr(err, cases[i].msg) != NULL);
	}
	CHECK(zl_prefix_parse(NULL, &(struct zl_prefix){ 0 }, NULL, 0) == -EINVAL);
}

static void test_ip_parse(void)
{
	struct zl_ip ip;
	char err[ZL_ERR_LEN];

	CHECK(zl_ip_parse("10.200.0.5", &ip, err, sizeof(err)) == 0 && ip.family == AF_INET);
	CHECK(ip.addr[0] == 10 && ip.addr[1] == 200 && ip.addr[2] == 0 && ip.addr[3] == 5);
	CHECK(zl_ip_parse("::ffff:1.2.3.4", &ip, NULL, 0) == 0 && ip.family == AF_INET6);
	CHECK(ip_is(&ip, "::ffff:1.2.3.4"));
	CHECK(zl_ip_parse("FD00:200::1", &ip, NULL, 0) == 0 && ip_is(&ip, "fd00:200::1"));
	CHECK(zl_ip_parse("10.200.0.5/32", &ip, err, sizeof(err)) == -EINVAL);
	CHECK(strstr(err, "10.200.0.5/32") != NULL);
	CHECK(zl_ip_parse("", &ip, NULL, 0) == -EINVAL);
	CHECK(zl_ip_parse("localhost", &ip, NULL, 0) == -EINVAL);
}

static void test_u128_helpers(void)
{
	char buf[ZL_U128_STRLEN];

	CHECK(strcmp(zl_u128_format(0, buf), "0") == 0);
	CHECK(strcmp(zl_u128_format(4096, buf), "4096") == 0);
	CHECK(strcmp(zl_u128_format(ZL_U128_MAX, buf), "340282366920938463463374607431768211455") == 0);
	CHECK(zl_u128_low_mask(0) == 0);
	CHECK(zl_u128_low_mask(1) == 1);
	CHECK(zl_u128_low_mask(64) == UINT64_MAX);
	CHECK(zl_u128_low_mask(128) == ZL_U128_MAX);
	CHECK(zl_u128_low_mask(127) == ZL_U128_MAX >> 1);
	CHECK(zl_u128_sat64((zl_u128)1 << 64) == UINT64_MAX);
	CHECK(zl_u128_sat64(12345) == 12345);
}

static void test_prefix_relations(void)
{
	struct zl_prefix c = P("10.200.0.0/16"), s = P("10.200.3.16/28"), o = P("10.201.0.0/28");
	struct zl_prefix v6 = P("fd00:200::/48"), n;
	struct zl_ip ip;

	CHECK(zl_prefix_contains_prefix(&c, &s));
	CHECK(!zl_prefix_contains_prefix(&s, &c));
	CHECK(!zl_prefix_contains_prefix(&c, &o));
	CHECK(!zl_prefix_contains_prefix(&c, &v6));
	CHECK(zl_prefix_overlaps(&c, &s) && zl_prefix_overlaps(&s, &c));
	CHECK(!zl_prefix_overlaps(&s, &o));
	CHECK(zl_prefix_contains(&c, &(struct zl_ip){ AF_INET, { 10, 200, 255, 255 } }));
	CHECK(!zl_prefix_contains(&c, &(struct zl_ip){ AF_INET, { 10, 199, 255, 255 } }));
	CHECK(zl_prefix_offset(&c, &(struct zl_ip){ AF_INET, { 10, 200, 1, 2 } }) == 258);
	zl_prefix_at(&c, 258, &ip);
	CHECK(ip_is(&ip, "10.200.1.2"));
	zl_prefix_at(&v6, ((zl_u128)1 << 79) | 5, &ip);
	CHECK(ip_is(&ip, "fd00:200:0:8000::5"));
	n = P("10.200.1.7/16");
	zl_prefix_network(&n, &n);
	CHECK(zl_prefix_equal(&n, &c));
	CHECK(zl_ip_to_u128(&(struct zl_ip){ AF_INET, { 1, 2, 3, 4 } }) == 0x01020304);
	CHECK(zl_ip_compare(&c.ip, &v6.ip) < 0 && zl_ip_compare(&v6.ip, &c.ip) > 0);
	CHECK(zl_ip_compare(&s.ip, &o.ip) < 0 && zl_ip_compare(&s.ip, &s.ip) == 0);
}

/* ---- runs ---- */

static void test_runs_merge_split(void)
{
	struct zl_ipam_runs rs;

	zl_ipam_runs_init(&rs);
	CHECK(zl_ipam_runs_add(&rs, 10, 19) == 0);
	CHECK(zl_ipam_runs_add(&rs, 30, 39) == 0);
	CHECK(rs.nruns == 2 && rs.count == 20);
	CHECK(zl_ipam_runs_add(&rs, 15, 15) == -EEXIST);
	CHECK(zl_ipam_runs_add(&rs, 5, 10) == -EEXIST);
	CHECK(zl_ipam_runs_add(&rs, 20, 29) == 0); /* bridges both */
	CHECK(rs.nruns == 1 && rs.count == 30);
	CHECK(zl_ipam_runs_remove(&rs, 25, 26) == 0); /* splits */
	CHECK(rs.nruns == 2 && rs.count == 28);
	CHECK(!zl_ipam_runs_contains(&rs, 25) && zl_ipam_runs_contains(&rs, 24) && zl_ipam_runs_contains(&rs, 27));
	CHECK(zl_ipam_runs_remove(&rs, 24, 27) == -ENOENT);
	CHECK(zl_ipam_runs_remove(&rs, 10, 10) == 0 && zl_ipam_runs_remove(&rs, 39, 39) == 0);
	CHECK(!zl_ipam_runs_contains(&rs, 10) && zl_ipam_runs_contains(&rs, 11) && !zl_ipam_runs_contains(&rs, 39));
	CHECK(zl_ipam_runs_add(&rs, 3, 2) == -EINVAL);
	/* The extremes of the 128-bit space. */
	CHECK(zl_ipam_runs_add(&rs, ZL_U128_MAX - 3, ZL_U128_MAX) == 0);
	CHECK(zl_ipam_runs_add(&rs, 0, 0) == 0);
	CHECK(zl_ipam_runs_contains(&rs, ZL_U128_MAX) && zl_ipam_runs_contains(&rs, 0));
	CHECK(zl_ipam_runs_add(&rs, ZL_U128_MAX - 4, ZL_U128_MAX - 4) == 0 && rs.nruns == 4);
	zl_ipam_runs_clear(&rs);
	CHECK(rs.root == NULL && rs.count == 0);
}

static void test_runs_find_free_edges(void)
{
	struct zl_ipam_runs rs;
	zl_u128 x = 0;

	zl_ipam_runs_init(&rs);
	CHECK(zl_ipam_runs_find_free(&rs, 0, ZL_U128_MAX, 127, &x) && x == 0);
	CHECK(zl_ipam_runs_add(&rs, 0, 0) == 0);
	CHECK(zl_ipam_runs_find_free(&rs, 0, ZL_U128_MAX, 127, &x) && x == (zl_u128)1 << 127);
	CHECK(zl_ipam_runs_add(&rs, ZL_U128_MAX, ZL_U128_MAX) == 0);
	CHECK(!zl_ipam_runs_find_free(&rs, 0, ZL_U128_MAX, 127, &x));
	CHECK(zl_ipam_runs_find_free(&rs, ZL_U128_MAX - 8, ZL_U128_MAX, 2, &x) && x == ZL_U128_MAX - 7);
	CHECK(zl_ipam_runs_find_free(&rs, 0, ZL_U128_MAX, 0, &x) && x == 1);
	CHECK(zl_ipam_runs_find_free(&rs, ZL_U128_MAX - 1, ZL_U128_MAX, 0, &x) && x == ZL_U128_MAX - 1);
	CHECK(!zl_ipam_runs_find_free(&rs, ZL_U128_MAX, ZL_U128_MAX, 0, &x));
	CHECK(!zl_ipam_runs_find_free(&rs, 5, 4, 0, &x));
	CHECK(!zl_ipam_runs_find_free(&rs, 1, 6, 3, &x)); /* no aligned block of 8 fits in [1, 6] */
	CHECK(!zl_ipam_runs_find_free(&rs, 0, 10, 128, &x));
	zl_ipam_runs_clear(&rs);
}

enum { MODEL_N = 256 };

/* Naive reference for find_free: scan every aligned block. */
static bool model_find_free(const bool *set, unsigned from, unsigned to, unsigned bb, unsigned *out)
{
	unsigned size = 1u << bb;

	for (unsigned x = 0; x + size - 1 < MODEL_N; x += size) {
		bool free_block = true;

		if (x < from || x + size - 1 > to)
			continue;
		for (unsigned i = x; i < x + size; i++)
			free_block = free_block && !set[i];
		if (free_block) {
			*out = x;
			return true;
		}
	}
	return false;
}

struct collect_ctx {
	bool set[MODEL_N];
	unsigned runs;
	bool adjacent_or_bad;
	zl_u128 prev_last;
};

static void collect_run(void *ctx, zl_u128 first, zl_u128 last)
{
	struct collect_ctx *c = ctx;

	if ((c->runs && first <= c->prev_last + 1) || last >= MODEL_N || first > last)
		c->adjacent_or_bad = true;
	for (zl_u128 x = first; x <= last && x < MODEL_N; x++)
		c->set[x] = true;
	c->prev_last = last;
	c->runs++;
}

static void test_runs_random_vs_model(void)
{
	struct zl_ipam_runs rs;
	bool set[MODEL_N] = { false };
	unsigned count = 0, mismatches = 0;

	zl_ipam_runs_init(&rs);
	for (int step = 0; step < 20000; step++) {
		unsigned a = rnd_below(MODEL_N), len = 1 + rnd_below(rnd_below(4) ? 3 : 16);
		unsigned b = a + len - 1 < MODEL_N ? a + len - 1 : MODEL_N - 1;
		bool all = true, none = true;
		int r;

		for (unsigned i = a; i <= b; i++) {
			all = all && set[i];
			none = none && !set[i];
		}
		if (rnd_below(2)) {
			r = zl_ipam_runs_add(&rs, a, b);
			CHECK(r == (none ? 0 : -EEXIST));
			for (unsigned i = a; none && i <= b; i++, count++)
				set[i] = true;
		} else {
			r = zl_ipam_runs_remove(&rs, a, b);
			CHECK(r == (all ? 0 : -ENOENT));
			for (unsigned i = a; all && i <= b; i++, count--)
				set[i] = false;
		}
		CHECK(zl_ipam_runs_range_free(&rs, a, b) == (r == 0 ? !set[a] : none));
		{
			unsigned from = rnd_below(MODEL_N), to = rnd_below(MODEL_N), bb = rnd_below(5), want = 0;
			zl_u128 got = 0;
			bool m = model_find_free(set, from, to, bb, &want);
			bool g = zl_ipam_runs_find_free(&rs, from, to, bb, &got);

			if (m != g || (m && got != want))
				mismatches++;
		}
		if (step % 97 == 0) {
			struct collect_ctx c = { { false }, 0, false, 0 };

			zl_ipam_runs_for_each(&rs, collect_run, &c);
			CHECK(!c.adjacent_or_bad);
			CHECK(memcmp(c.set, set, sizeof(set)) == 0);
			CHECK(c.runs == rs.nruns);
		}
		CHECK(rs.count == count);
	}
	CHECK(mismatches == 0);
	zl_ipam_runs_clear(&rs);
}

/* ---- ipam ---- */

static void test_ipam_refuses_bad_ranges(void)
{
	static const struct {
		const char *range, *msg;
	} cases[] = {
		{ "10.0.0.0/31", "no usable addresses" },
		{ "10.0.0.1/32", "no usable addresses" },
		{ "fd00::1/128", "no usable addresses" },
		{ "10.200.0.1/16", "host bits set" },
		{ "fd00::1/64", "host bits set" },
	};
	char err[ZL_ERR_LEN];
	struct zl_ipam *a = NULL;
	struct zl_prefix bad = { .ip = { .family = 12345 }, .len = 8 };

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct zl_prefix p = P(cases[i].range);

		CHECK(zl_ipam_new(&p, &a, err, sizeof(err)) == -EINVAL);
		CHECK(strstr(err, cases[i].msg) != NULL);
	}
	CHECK(zl_ipam_new(&bad, &a, err, sizeof(err)) == -EINVAL);
	a = new_ipam("fd00::/127");
	CHECK(zl_ipam_capacity(a) == 1);
	zl_ipam_free(a);
	a = new_ipam("10.0.0.0/30");
	CHECK(zl_ipam_capacity(a) == 2);
	zl_ipam_free(a);
}

static void test_ipam_v4_skips_network_and_broadcast(void)
{
	struct zl_ipam *a = new_ipam("10.200.0.0/24");
	char err[ZL_ERR_LEN];
	struct zl_ip ip;
	int i;

	CHECK(zl_ipam_capacity(a) == 254);
	CHECK(!zl_ipam_is_usable(a, &(struct zl_ip){ AF_INET, { 10, 200, 0, 0 } }));
	CHECK(!zl_ipam_is_usable(a, &(struct zl_ip){ AF_INET, { 10, 200, 0, 255 } }));
	CHECK(zl_ipam_is_usable(a, &(struct zl_ip){ AF_INET, { 10, 200, 0, 254 } }));
	for (i = 1; i <= 254; i++) {
		CHECK(zl_ipam_allocate_next(a, &ip, err, sizeof(err)) == 0);
		CHECK(ip.family == AF_INET && ip.addr[3] == i && ip.addr[2] == 0);
	}
	CHECK(zl_ipam_allocate_next(a, &ip, err, sizeof(err)) == -ENOSPC);
	CHECK(strcmp(err, "no available addresses") == 0);
	CHECK(zl_ipam_allocate_first(a, &ip, err, sizeof(err)) == -ENOSPC);
	CHECK(strcmp(err, "no available addresses") == 0);
	CHECK(zl_ipam_allocated(a) == 254 && zl_ipam_free_count(a) == 0);
	zl_ipam_free(a);
}

static void test_ipam_v6_skips_only_network(void)
{
	struct zl_ipam *a = new_ipam("fd00:200::/120");
	struct zl_ip ip;
	char err[ZL_ERR_LEN];

	CHECK(zl_ipam_capacity(a) == 255);
	CHECK(zl_ipam_allocate_first(a, &ip, NULL, 0) == 0 && ip_is(&ip, "fd00:200::1"));
	CHECK(zl_ipam_allocate_specific(a, &(struct zl_ip){ 0 }, NULL, 0) == -ERANGE);
	ip = IP("fd00:200::ff");
	CHECK(zl_ipam_allocate_specific(a, &ip, err, sizeof(err)) == 0); /* the "broadcast" is usable */
	ip = IP("fd00:200::");
	CHECK(zl_ipam_allocate_specific(a, &ip, err, sizeof(err)) == -ERANGE);
	CHECK(strstr(err, "network address") != NULL);
	for (int i = 0; i < 253; i++)
		CHECK(zl_ipam_allocate_next(a, &ip, NULL, 0) == 0);
	CHECK(zl_ipam_allocate_next(a, &ip, err, sizeof(err)) == -ENOSPC);
	CHECK(strcmp(err, "no available addresses") == 0);
	zl_ipam_free(a);
}

static void test_ipam_specific_mark_release(void)
{
	struct zl_ipam *a = new_ipam("10.200.0.0/24");
	struct zl_ip ip = IP("10.200.0.5");
	char err[ZL_ERR_LEN];

	CHECK(zl_ipam_allocate_specific(a, &ip, err, sizeof(err)) == 0 && err[0] == '\0');
	CHECK(zl_ipam_is_allocated(a, &ip));
	CHECK(zl_ipam_allocate_specific(a, &ip, err, sizeof(err)) == -EEXIST);
	CHECK(strstr(err, "10.200.0.5 is already allocated") != NULL);
	CHECK(zl_ipam_mark(a, &ip, err, sizeof(err)) == 0); /* idempotent */
	CHECK(zl_ipam_allocated(a) == 1);
	ip = IP("10.200.0.0");
	CHECK(zl_ipam_allocate_specific(a, &ip, err, sizeof(err)) == -ERANGE);
	CHECK(strstr(err, "network address") != NULL);
	CHECK(zl_ipam_mark(a, &ip, NULL, 0) == -ERANGE);
	ip = IP("10.200.0.255");
	CHECK(zl_ipam_allocate_specific(a, &ip, err, sizeof(err)) == -ERANGE);
	CHECK(strstr(err, "broadcast address") != NULL);
	ip = IP("10.200.1.5");
	CHECK(zl_ipam_allocate_specific(a, &ip, err, sizeof(err)) == -ERANGE);
	CHECK(strstr(err, "outside the range 10.200.0.0/24") != NULL);
	ip = IP("fd00::5");
	CHECK(zl_ipam_allocate_specific(a, &ip, err, sizeof(err)) == -ERANGE);
	CHECK(zl_ipam_release(a, &ip, NULL, 0) == -ERANGE);
	ip = IP("10.200.0.6");
	CHECK(zl_ipam_mark(a, &ip, NULL, 0) == 0 && zl_ipam_allocated(a) == 2);
	CHECK(zl_ipam_release(a, &ip, NULL, 0) == 0);
	CHECK(zl_ipam_release(a, &ip, err, sizeof(err)) == -ENOENT);
	CHECK(strstr(err, "not allocated") != NULL);
	CHECK(!zl_ipam_is_allocated(a, &ip));
	CHECK(zl_ipam_allocated(a) == 1 && zl_ipam_free_count(a) == 253);
	zl_ipam_free(a);
}

static void test_ipam_cursor_semantics(void)
{
	struct zl_ipam *a = new_ipam("10.0.0.0/29"); /* .1 .. .6 */
	struct zl_ip ip, one = IP("10.0.0.1"), four = IP("10.0.0.4");

	CHECK(zl_ipam_allocate_next(a, &ip, NULL, 0) == 0 && ip_is(&ip, "10.0.0.1"));
	CHECK(zl_ipam_allocate_next(a, &ip, NULL, 0) == 0 && ip_is(&ip, "10.0.0.2"));
	CHECK(zl_ipam_allocate_specific(a, &four, NULL, 0) == 0);
	CHECK(zl_ipam_allocate_next(a, &ip, NULL, 0) == 0 && ip_is(&ip, "10.0.0.3"));
	CHECK(zl_ipam_release(a, &one, NULL, 0) == 0);
	/* Next moves on past the taken .4; a released address waits for the cursor to come round. */
	CHECK(zl_ipam_allocate_next(a, &ip, NULL, 0) == 0 && ip_is(&ip, "10.0.0.5"));
	CHECK(zl_ipam_allocate_next(a, &ip, NULL, 0) == 0 && ip_is(&ip, "10.0.0.6"));
	CHECK(zl_ipam_allocate_next(a, &ip, NULL, 0) == 0 && ip_is(&ip, "10.0.0.1")); /* wrapped */
	CHECK(zl_ipam_release(a, &four, NULL, 0) == 0);
	CHECK(zl_ipam_allocate_first(a, &ip, NULL, 0) == 0 && ip_is(&ip, "10.0.0.4"));
	zl_ipam_free(a);
}

/* Naive model of the allocator over offsets 0..size-1 (0 = network). */
struct model {
	bool taken[1 << 12];
	unsigned lo, hi, cursor, count;
};

static bool model_scan(const struct model *m, unsigned from, unsigned to, unsigned *out)
{
	for (unsigned x = from; x <= to; x++) {
		if (!m->taken[x]) {
			*out = x;
			return true;
		}
	}
	return false;
}

static void run_ipam_random(const char *range, unsigned host_bits, bool v4)
{
	struct zl_ipam *a = new_ipam(range);
	struct zl_prefix p = P(range);
	static struct model m;
	unsigned size = 1u << host_bits, bad = 0;
	struct zl_ip ip;

	memset(&m, 0, sizeof(m));
	m.lo = 1;
	m.hi = size - (v4 ? 2 : 1);
	m.cursor = m.lo;
	for (int step = 0; step < 30000; step++) {
		unsigned op = rnd_below(10), off, want = 0;
		bool ok, usable;
		int r;

		/* Bias towards allocation so the range fills up and exhaustion is exercised too. */
		if (op < 3) {
			ok = model_scan(&m, m.cursor, m.hi, &want) || model_scan(&m, m.lo, m.cursor - 1, &want);
			r = zl_ipam_allocate_next(a, &ip, NULL, 0);
			if (ok) {
				m.cursor = want == m.hi ? m.lo : want + 1;
				m.taken[want] = true;
				m.count++;
			}
		} else if (op < 4) {
			ok = model_scan(&m, m.lo, m.hi, &want);
			r = zl_ipam_allocate_first(a, &ip, NULL, 0);
			if (ok) {
				m.taken[want] = true;
				m.count++;
			}
		} else {
			/* Specific, mark or release of a random offset, sometimes outside the range. */
			off = rnd_below(size + 8);
			zl_prefix_at(&p, off, &ip);
			if (off >= size)
				ip.addr[0] ^= 0x40;
			usable = off >= m.lo && off <= m.hi;
			if (op < 6) {
				r = zl_ipam_allocate_specific(a, &ip, NULL, 0);
				bad += r != (!usable ? -ERANGE : m.taken[off] ? -EEXIST : 0);
			} else if (op < 7) {
				r = zl_ipam_mark(a, &ip, NULL, 0);
				bad += r != (!usable ? -ERANGE : 0);
			} else {
				r = zl_ipam_release(a, &ip, NULL, 0);
				bad += r != (!usable ? -ERANGE : !m.taken[off] ? -ENOENT : 0);
				if (r == 0) {
					m.taken[off] = false;
					m.count--;
				}
			}
			if (r == 0 && op < 7 && !m.taken[off]) {
				m.taken[off] = true;
				m.count++;
			}
			continue;
		}
		if (!ok) {
			bad += r != -ENOSPC;
			continue;
		}
		bad += r != 0 || zl_prefix_offset(&p, &ip) != want || !zl_prefix_contains(&p, &ip);
		CHECK(zl_ipam_allocated(a) == m.count);
	}
	CHECK(bad == 0);
	CHECK(zl_ipam_allocated(a) == m.count);
	CHECK(zl_ipam_free_count(a) == (m.hi - m.lo + 1) - m.count);
	for (unsigned off = 0; off < size; off++) {
		zl_prefix_at(&p, off, &ip);
		if (zl_ipam_is_allocated(a, &ip) != m.taken[off])
			bad++;
	}
	CHECK(bad == 0);
	zl_ipam_free(a);
}

static void test_ipam_random_v4(void)
{
	run_ipam_random("10.200.4.0/22", 10, true);
	run_ipam_random("192.168.7.0/29", 3, true);
}

static void test_ipam_random_v6(void)
{
	run_ipam_random("fd00:200::/118", 10, false);
	run_ipam_random("fd00:200:0:1::/125", 3, false);
}

static double seconds_since(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

static void test_ipam_fill_slash16(void)
{
	struct zl_ipam *a = new_ipam("10.200.0.0/16");
	struct zl_ip ip, prev = { 0 };
	struct timespec t0;
	char err[ZL_ERR_LEN];
	unsigned n = 0, bad = 0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (zl_ipam_allocate_next(a, &ip, err, sizeof(err)) == 0) {
		if (n && zl_ip_to_u128(&ip) != zl_ip_to_u128(&prev) + 1)
			bad++;
		prev = ip;
		n++;
	}
	CHECK(bad == 0);
	CHECK(n == 65534);
	CHECK(strcmp(err, "no available addresses") == 0);
	CHECK(ip_is(&prev, "10.200.255.254"));
	printf("     fill /16 with allocate_next: %u addresses in %.3f s\n", n, seconds_since(&t0));
	/* The worst shape for runs: every other address free, then refilled lowest-first. */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (unsigned off = 2; off <= 65534; off += 2) {
		zl_prefix_at(zl_ipam_range(a), off, &ip);
		bad += zl_ipam_release(a, &ip, NULL, 0) != 0;
	}
	CHECK(zl_ipam_allocated(a) == 32767);
	for (unsigned off = 2; off <= 65534; off += 2) {
		bad += zl_ipam_allocate_first(a, &ip, NULL, 0) != 0;
		bad += zl_prefix_offset(zl_ipam_range(a), &ip) != off;
	}
	CHECK(bad == 0);
	CHECK(zl_ipam_free_count(a) == 0);
	printf("     release every other, refill with allocate_first: %.3f s\n", seconds_since(&t0));
	zl_ipam_free(a);
}

static void test_ipam_huge_v6_ranges(void)
{
	struct zl_ipam *a = new_ipam("fd00:200::/48");
	struct zl_ip ip, top = IP("fd00:200:0:ffff:ffff:ffff:ffff:ffff");
	char text[ZL_U128_STRLEN];

	CHECK(zl_ipam_capacity(a) == zl_u128_low_mask(80));
	CHECK(zl_ipam_allocate_specific(a, &top, NULL, 0) == 0);
	CHECK(zl_ipam_allocate_first(a, &ip, NULL, 0) == 0 && ip_is(&ip, "fd00:200::1"));
	for (int i = 0; i < 10000; i++)
		CHECK(zl_ipam_allocate_next(a, &ip, NULL, 0) == 0);
	CHECK(ip_is(&ip, "fd00:200::2711"));
	CHECK(zl_ipam_allocated(a) == 10002);
	CHECK(zl_ipam_free_count(a) == zl_u128_low_mask(80) - 10002);
	zl_ipam_free(a);

	/* The whole IPv6 space: 2^128 - 1 usable addresses, no memory until used. */
	a = new_ipam("::/0");
	CHECK(zl_ipam_capacity(a) == ZL_U128_MAX);
	CHECK(strcmp(zl_u128_format(zl_ipam_capacity(a), text), "340282366920938463463374607431768211455") == 0);
	ip = IP("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
	CHECK(zl_ipam_allocate_specific(a, &ip, NULL, 0) == 0);
	CHECK(zl_ipam_allocate_next(a, &ip, NULL, 0) == 0 && ip_is(&ip, "::1"));
	ip = IP("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe");
	CHECK(zl_ipam_mark(a, &ip, NULL, 0) == 0);
	CHECK(zl_ipam_free_count(a) == ZL_U128_MAX - 3);
	zl_ipam_free(a);
}

static void test_ipam_state_round_trip(void)
{
	const char *ranges[] = { "10.200.0.0/20", "fd00:200::/112" };

	for (size_t k = 0; k < 2; k++) {
		struct zl_ipam *a = new_ipam(ranges[k]), *b = new_ipam(ranges[k]);
		struct zl_ip *ips = NULL, *ips2 = NULL, ip, ip2;
		size_t n = 0, n2 = 0;

		for (int i = 0; i < 3000; i++) {
			zl_prefix_at(zl_ipam_range(a), 1 + rnd_below(4000), &ip);
			if (rnd_below(3))
				zl_ipam_mark(a, &ip, NULL, 0);
			else
				zl_ipam_allocate_next(a, &ip, NULL, 0);
		}
		for (int i = 0; i < 500; i++) {
			zl_prefix_at(zl_ipam_range(a), 1 + rnd_below(4000), &ip);
			zl_ipam_release(a, &ip, NULL, 0);
		}
		CHECK(zl_ipam_export(a, &ips, &n) == 0);
		CHECK(n == zl_ipam_allocated(a) && n > 1000);
		for (size_t i = 1; i < n; i++)
			CHECK(zl_ip_compare(&ips[i - 1], &ips[i]) < 0);
		/* Import in a shuffled order: the result must not depend on it. */
		for (size_t i = n; i > 1; i--) {
			size_t j = rnd() % i;
			struct zl_ip t = ips[i - 1];

			ips[i - 1] = ips[j];
			ips[j] = t;
		}
		CHECK(zl_ipam_import(b, ips, n, NULL, 0) == 0);
		CHECK(zl_ipam_export(b, &ips2, &n2) == 0);
		CHECK(n2 == n);
		free(ips);
		CHECK(zl_ipam_export(a, &ips, &n) == 0);
		CHECK(n2 == n && memcmp(ips, ips2, n * sizeof(*ips)) == 0);
		CHECK(zl_ipam_allocated(b) == zl_ipam_allocated(a));
		CHECK(zl_ipam_free_count(b) == zl_ipam_free_count(a));
		CHECK(zl_ipam_allocate_first(a, &ip, NULL, 0) == 0 && zl_ipam_allocate_first(b, &ip2, NULL, 0) == 0);
		CHECK(zl_ip_equal(&ip, &ip2));
		/* After import the cursor sits just past the highest address. */
		CHECK(zl_ipam_allocate_next(b, &ip2, NULL, 0) == 0);
		CHECK(zl_ip_to_u128(&ip2) == zl_ip_to_u128(&ips[n - 1]) + 1);
		free(ips);
		free(ips2);
		zl_ipam_free(a);
		zl_ipam_free(b);
	}
}

static void test_ipam_import_is_checked_and_atomic(void)
{
	struct zl_ipam *a = new_ipam("10.200.0.0/24");
	struct zl_ip keep = IP("10.200.0.9"), *ips;
	struct zl_ip dup[] = { IP("10.200.0.1"), IP("10.200.0.2"), IP("10.200.0.1") };
	struct zl_ip out[] = { IP("10.200.0.1"), IP("10.200.1.2") };
	struct zl_ip bcast[] = { IP("10.200.0.255") };
	struct zl_ip fam[] = { IP("fd00::1") };
	char err[ZL_ERR_LEN];
	size_t n;

	CHECK(zl_ipam_allocate_specific(a, &keep, NULL, 0) == 0);
	CHECK(zl_ipam_import(a, dup, 3, err, sizeof(err)) == -EEXIST);
	CHECK(strstr(err, "10.200.0.1 is listed twice") != NULL);
	CHECK(zl_ipam_import(a, out, 2, err, sizeof(err)) == -ERANGE);
	CHECK(strstr(err, "10.200.1.2 is outside") != NULL);
	CHECK(zl_ipam_import(a, bcast, 1, err, sizeof(err)) == -ERANGE);
	CHECK(zl_ipam_import(a, fam, 1, err, sizeof(err)) == -ERANGE);
	/* Nothing changed. */
	CHECK(zl_ipam_export(a, &ips, &n) == 0);
	CHECK(n == 1 && zl_ip_equal(&ips[0], &keep));
	free(ips);
	/* An empty import empties the allocator. */
	CHECK(zl_ipam_import(a, NULL, 0, NULL, 0) == 0);
	CHECK(zl_ipam_allocated(a) == 0);
	CHECK(zl_ipam_export(a, &ips, &n) == 0 && n == 0 && ips == NULL);
	zl_ipam_free(a);
}

int main(void)
{
	TEST_RUN(test_prefix_parse_valid);
	TEST_RUN(test_prefix_parse_invalid);
	TEST_RUN(test_ip_parse);
	TEST_RUN(test_u128_helpers);
	TEST_RUN(test_prefix_relations);
	TEST_RUN(test_runs_merge_split);
	TEST_RUN(test_runs_find_free_edges);
	TEST_RUN(test_runs_random_vs_model);
	TEST_RUN(test_ipam_refuses_bad_ranges);
	TEST_RUN(test_ipam_v4_skips_network_and_broadcast);
	TEST_RUN(test_ipam_v6_skips_only_network);
	TEST_RUN(test_ipam_specific_mark_release);
	TEST_RUN(test_ipam_cursor_semantics);
	TEST_RUN(test_ipam_random_v4);
	TEST_RUN(test_ipam_random_v6);
	TEST_RUN(test_ipam_fill_slash16);
	TEST_RUN(test_ipam_huge_v6_ranges);
	TEST_RUN(test_ipam_state_round_trip);
	TEST_RUN(test_ipam_import_is_checked_and_atomic);
	return TEST_SUMMARY();
}
