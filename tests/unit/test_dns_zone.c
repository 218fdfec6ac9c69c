/* The zone snapshot: apex SOA/NS, every lookup outcome (FOUND, NODATA, NXDOMAIN, OUT_OF_ZONE), empty
 * non-terminals, case-insensitive names, ANY, merged duplicates, bad names refused with a message and
 * the 255-byte limit, a randomized comparison of 10,000 names against a naive list, and reference
 * counting with concurrent readers. Seed: ZL_TEST_SEED in the environment, else a fixed one. */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "test.h"
#include "dns/zone.h"

static uint64_t rng_state;

static uint64_t rng(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* A query name from dotted text, case kept, no escapes: the test's own simple encoder. */
static struct dns_name qn(const char *text)
{
	struct dns_name n = { .len = 0 };
	const char *p = text;

	while (*p && strcmp(p, ".")) {
		const char *dot = strchr(p, '.');
		size_t l = dot ? (size_t)(dot - p) : strlen(p);
		n.wire[n.len] = (uint8_t)l;
		memcpy(n.wire + n.len + 1, p, l);
		n.len = (uint8_t)(n.len + 1 + l);
		n.labels++;
		p += l + (dot ? 1 : 0);
	}
	n.wire[n.len++] = 0;
	return n;
}

static const struct dns_zone_params PARAMS = {
	.apex = "Overlay.Local", .serial = 1234, .refresh = 3600, .retry = 600, .expire = 86400,
	.negative_ttl = 5, .ns_ttl = 30,
};

static struct dns_zone_builder *new_builder(void)
{
	char err[256] = "";
	struct dns_zone_builder *b = dns_zone_builder_new(&PARAMS, err, sizeof(err));

	CHECK(b != NULL);
	if (!b) {
		fprintf(stderr, "  builder: %s\n", err);
		abort();
	}
	return b;
}

static enum dns_lookup look(const struct dns_zone *z, const char *name, uint16_t type, struct dns_rrset *rs)
{
	struct dns_name n = qn(name);

	return dns_zone_lookup(z, &n, type, rs);
}

/* The RRset of a lookup expected to be FOUND with n records; on any other outcome the check fails
 * and an all-zero stand-in is returned, so that the caller's further checks fail without crashing. */
static const struct dns_rr *found(const struct dns_zone *z, const char *name, uint16_t type, size_t n)
{
	static const struct dns_rr stand_in[8];
	struct dns_rrset rs;
	bool ok = look(z, name, type, &rs) == DNS_LOOKUP_FOUND && rs.n == n;

	CHECK(ok);
	if (!ok)
		fprintf(stderr, "  (lookup of %s type %u)\n", name, type);
	return ok ? rs.rr : stand_in;
}

static bool name_is(const struct dns_name *n, const char *text)
{
	struct dns_name e = qn(text);

	return n->len == e.len && !memcmp(n->wire, e.wire, e.len);
}

static void add_a(struct dns_zone_builder *b, const char *rel, uint8_t a, uint8_t d, uint32_t ttl)
{
	uint8_t addr[4] = { 10, 200, a, d };

	CHECK(dns_zone_add_a(b, rel, addr, ttl, NULL, 0) == 0);
}

static void test_apex_soa_ns(void)
{
	struct dns_zone *z = dns_zone_builder_finish(new_builder());
	const struct dns_rr *rr;
	struct dns_rrset rs;

	CHECK(name_is(dns_zone_apex(z), "overlay.local"));
	CHECK(dns_zone_names(z) == 1 && dns_zone_records(z) == 2);
	rr = found(z, "overlay.local", DNS_T_SOA, 1);
	CHECK(rr == dns_zone_soa(z));
	const struct dns_soa *soa = &rr[0].u.soa;
	CHECK(rr[0].type == DNS_T_SOA && rr[0].ttl == 5);
	CHECK(name_is(&soa->mname, "ns.overlay.local") && name_is(&soa->rname, "hostmaster.overlay.local"));
	CHECK(soa->serial == 1234 && soa->refresh == 3600 && soa->retry == 600 && soa->expire == 86400 &&
	      soa->minimum == 5);
	rr = found(z, "OVERLAY.local.", DNS_T_NS, 1);
	CHECK(rr[0].type == DNS_T_NS && rr[0].ttl == 30 && name_is(&rr[0].u.ns, "ns.overlay.local"));
	CHECK(look(z, "overlay.local", DNS_T_A, &rs) == DNS_LOOKUP_NODATA && rs.n == 0 && rs.rr == NULL);
	rr = found(z, "overlay.local", DNS_T_ANY, 2);
	CHECK(rr[0].type == DNS_T_SOA && rr[1].type == DNS_T_NS);
	/* "ns" is not there until the caller adds its addresses. */
	CHECK(look(z, "ns.overlay.local", DNS_T_A, &rs) == DNS_LOOKUP_NXDOMAIN);
	dns_zone_unref(z);
}

static void test_lookup_outcomes(void)
{
	struct dns_zone_builder *b = new_builder();
	uint8_t v6[16] = { 0xfd, 0, 2, 0, [15] = 5 };
	const struct dns_rr *rr;
	struct dns_rrset rs;
	struct dns_zone *z;

	add_a(b, "node-0-5", 0, 5, 30);
	CHECK(dns_zone_add_aaaa(b, "node6-0-5", v6, 30, NULL, 0) == 0);
	CHECK(dns_zone_add_srv(b, "_http._tcp.web", 10, 20, 8080, "node-0-5", 60, NULL, 0) == 0);
	z = dns_zone_builder_finish(b);
	rr = found(z, "node-0-5.overlay.local", DNS_T_A, 1);
	CHECK(!memcmp(rr[0].u.a, (uint8_t[]){ 10, 200, 0, 5 }, 4) && rr[0].ttl == 30);
	CHECK(look(z, "node-0-5.overlay.local", DNS_T_AAAA, &rs) == DNS_LOOKUP_NODATA && !rs.n && !rs.rr);
	rr = found(z, "node6-0-5.overlay.local", DNS_T_AAAA, 1);
	CHECK(!memcmp(rr[0].u.aaaa, v6, 16));
	rr = found(z, "_http._tcp.web.overlay.local", DNS_T_SRV, 1);
	CHECK(rr[0].u.srv.priority == 10 && rr[0].u.srv.weight == 20 && rr[0].u.srv.port == 8080);
	CHECK(name_is(&rr[0].u.srv.target, "node-0-5.overlay.local") && rr[0].ttl == 60);
	/* Empty non-terminals: NODATA for every type, ANY included. */
	CHECK(look(z, "_tcp.web.overlay.local", DNS_T_A, &rs) == DNS_LOOKUP_NODATA);
	CHECK(look(z, "_tcp.web.overlay.local", DNS_T_ANY, &rs) == DNS_LOOKUP_NODATA && !rs.n);
	CHECK(look(z, "web.overlay.local", DNS_T_SRV, &rs) == DNS_LOOKUP_NODATA);
	/* Not there. */
	CHECK(look(z, "node-0-6.overlay.local", DNS_T_A, &rs) == DNS_LOOKUP_NXDOMAIN && !rs.n && !rs.rr);
	CHECK(look(z, "x.node-0-5.overlay.local", DNS_T_A, &rs) == DNS_LOOKUP_NXDOMAIN);
	CHECK(look(z, "_udp.web.overlay.local", DNS_T_SRV, &rs) == DNS_LOOKUP_NXDOMAIN);
	/* Outside: other zones, the parent, a look-alike label, the root. */
	CHECK(look(z, "example.com", DNS_T_A, &rs) == DNS_LOOKUP_OUT_OF_ZONE && !rs.n && !rs.rr);
	CHECK(look(z, "local", DNS_T_A, &rs) == DNS_LOOKUP_OUT_OF_ZONE);
	CHECK(look(z, "xoverlay.local", DNS_T_A, &rs) == DNS_LOOKUP_OUT_OF_ZONE);
	CHECK(look(z, "node-0-5.overlay.local.com", DNS_T_A, &rs) == DNS_LOOKUP_OUT_OF_ZONE);
	CHECK(look(z, ".", DNS_T_SOA, &rs) == DNS_LOOKUP_OUT_OF_ZONE);
	/* One label whose bytes end like the apex's wire form: a suffix, but not at a label boundary. */
	struct dns_name tricky = { .len = 17, .labels = 1 };
	memcpy(tricky.wire, "\017x\007overlay\005local", 17);
	CHECK(dns_zone_lookup(z, &tricky, DNS_T_A, &rs) == DNS_LOOKUP_OUT_OF_ZONE);
	CHECK(dns_zone_names(z) == 4 && dns_zone_records(z) == 5);
	dns_zone_unref(z);
}

static void test_case_insensitive(void)
{
	struct dns_zone_builder *b = new_builder();
	const struct dns_rr *rr;
	struct dns_rrset rs;
	struct dns_zone *z;

	add_a(b, "Web.DB", 1, 1, 30);
	add_a(b, "web.db", 1, 2, 30);
	CHECK(dns_zone_add_srv(b, "_X._TCP", 0, 0, 1, "Web.DB", 30, NULL, 0) == 0);
	z = dns_zone_builder_finish(b);
	rr = found(z, "wEB.dB.OVERLAY.LOCAL", DNS_T_A, 2);
	CHECK(look(z, "DB.overlay.local", DNS_T_A, &rs) == DNS_LOOKUP_NODATA);
	rr = found(z, "_x._tcp.overlay.local", DNS_T_SRV, 1);
	CHECK(name_is(&rr[0].u.srv.target, "web.db.overlay.local"));   /* stored lower case */
	CHECK(dns_zone_names(z) == 3);
	dns_zone_unref(z);
}

static void test_any_groups_types(void)
{
	struct dns_zone_builder *b = new_builder();
	uint8_t v6[16] = { 0xfd, [15] = 9 };
	const struct dns_rr *rr;
	struct dns_rrset rs;
	struct dns_zone *z;

	add_a(b, "web", 0, 1, 30);
	CHECK(dns_zone_add_aaaa(b, "web", v6, 30, NULL, 0) == 0);
	CHECK(dns_zone_add_srv(b, "web", 1, 2, 3, "srv.example.com.", 30, NULL, 0) == 0);
	add_a(b, "web", 0, 2, 30);
	add_a(b, "other", 0, 3, 30);
	add_a(b, "web", 0, 3, 30);
	z = dns_zone_builder_finish(b);
	rr = found(z, "web.overlay.local", DNS_T_ANY, 5);
	CHECK(rr[0].type == DNS_T_A && rr[1].type == DNS_T_A && rr[2].type == DNS_T_A);
	CHECK(rr[0].u.a[3] == 1 && rr[1].u.a[3] == 2 && rr[2].u.a[3] == 3);
	CHECK(rr[3].type == DNS_T_AAAA && rr[4].type == DNS_T_SRV);
	CHECK(name_is(&rr[4].u.srv.target, "srv.example.com"));
	const struct dns_rr *any = rr;
	CHECK(look(z, "web.overlay.local", DNS_T_A, &rs) == DNS_LOOKUP_FOUND && rs.n == 3 && rs.rr == any);
	CHECK(look(z, "web.overlay.local", DNS_T_SRV, &rs) == DNS_LOOKUP_FOUND && rs.n == 1 && rs.rr == any + 4);
	CHECK(look(z, "web.overlay.local", DNS_T_CNAME, &rs) == DNS_LOOKUP_NODATA);
	dns_zone_unref(z);
}

static void test_duplicates_merge(void)
{
	struct dns_zone_builder *b = new_builder();
	const struct dns_rr *rr;
	struct dns_zone *z;

	add_a(b, "web", 0, 1, 60);
	add_a(b, "WEB", 0, 1, 20);
	add_a(b, "web", 0, 1, 90);
	add_a(b, "web", 0, 2, 300);   /* another record of the RRset: the RRset gets one TTL, the smallest */
	CHECK(dns_zone_add_srv(b, "_s._tcp", 1, 1, 80, "Web", 50, NULL, 0) == 0);
	CHECK(dns_zone_add_srv(b, "_s._tcp", 1, 1, 80, "web.overlay.local.", 40, NULL, 0) == 0);
	CHECK(dns_zone_add_srv(b, "_s._tcp", 1, 1, 81, "web", 70, NULL, 0) == 0);   /* other port: kept */
	z = dns_zone_builder_finish(b);
	rr = found(z, "web.overlay.local", DNS_T_A, 2);
	CHECK(rr[0].u.a[3] == 1 && rr[1].u.a[3] == 2 && rr[0].ttl == 20 && rr[1].ttl == 20);
	rr = found(z, "_s._tcp.overlay.local", DNS_T_SRV, 2);
	CHECK(rr[0].u.srv.port == 80 && rr[1].u.srv.port == 81 && rr[0].ttl == 40 && rr[1].ttl == 40);
	CHECK(dns_zone_records(z) == 2 + 2 + 2);
	dns_zone_unref(z);
}

/* A relative name of exactly `bytes` wire bytes (root excluded): 63-byte labels, then the rest. */
static void long_rel(char *out, size_t bytes)
{
	size_t o = 0;

	while (bytes) {
		size_t l = bytes - 1 > 63 ? 63 : bytes - 1;
		if (o)
			out[o++] = '.';
		memset(out + o, 'a' + (char)(o % 26), l);
		o += l;
		bytes -= l + 1;
	}
	out[o] = '\0';
}

static void test_bad_names_and_limits(void)
{
	struct dns_zone_builder *b = new_builder();
	uint8_t a[4] = { 10, 200, 0, 1 };
	char err[256], rel[300], label64[65], q[400];
	const struct dns_rr *rr;
	struct dns_rrset rs;
	struct dns_zone *z;

	memset(label64, 'x', 64);
	label64[64] = '\0';
	const char *bad[] = { "a..b", ".a", "web.", "overlay.local.", label64, "a\\", "a\\25x" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		CHECK(dns_zone_add_a(b, bad[i], a, 30, err, sizeof(err)) == -EINVAL);
		CHECK(strstr(err, "name \"") != NULL);
	}
	CHECK(dns_zone_add_srv(b, "_a._tcp", 0, 0, 1, "a..b", 30, err, sizeof(err)) == -EINVAL);
	CHECK(strstr(err, "SRV target") != NULL);
	CHECK(dns_zone_add_srv(b, "_a._tcp", 0, 0, 1, "a..b.", 30, err, sizeof(err)) == -EINVAL);
	/* The apex's wire form is 15 bytes: 240 more make 255, the limit; 241 are refused. */
	long_rel(rel, 241);
	CHECK(dns_zone_add_a(b, rel, a, 30, err, sizeof(err)) == -EINVAL && strstr(err, "255") != NULL);
	long_rel(rel, 240);
	CHECK(dns_zone_add_a(b, rel, a, 30, err, sizeof(err)) == 0);
	/* Labels of exactly 63 bytes are fine; "@" and "" are the apex. */
	label64[63] = '\0';
	CHECK(dns_zone_add_a(b, label64, a, 30, NULL, 0) == 0);
	CHECK(dns_zone_add_a(b, "@", a, 30, NULL, 0) == 0);
	CHECK(dns_zone_add_a(b, "", a, 31, NULL, 0) == 0);
	z = dns_zone_builder_finish(b);
	/* Nothing refused left a trace: the apex, the long name (and its 3 ancestors), the 63-byte label. */
	CHECK(dns_zone_names(z) == 3 && dns_zone_records(z) == 5);
	snprintf(q, sizeof(q), "%s.overlay.local", rel);
	rr = found(z, q, DNS_T_A, 1);
	CHECK(qn(q).len == 255);
	CHECK(look(z, strchr(q, '.') + 1, DNS_T_A, &rs) == DNS_LOOKUP_NODATA);
	rr = found(z, "overlay.local", DNS_T_A, 1);
	CHECK(rr[0].ttl == 30);
	CHECK(look(z, "a.overlay.local", DNS_T_A, &rs) == DNS_LOOKUP_NXDOMAIN);
	dns_zone_unref(z);
}

static void test_bad_apex(void)
{
	struct dns_zone_params p = PARAMS;
	char err[256], apex[300];

	const char *bad[] = { "a..b", ".x", "x\\" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		p.apex = bad[i];
		err[0] = '\0';
		CHECK(dns_zone_builder_new(&p, err, sizeof(err)) == NULL && strstr(err, "zone") != NULL);
	}
	/* An apex too long for "hostmaster.<apex>" (11 more bytes) cannot carry its SOA. */
	long_rel(apex, 250);
	p.apex = apex;
	CHECK(dns_zone_builder_new(&p, err, sizeof(err)) == NULL && strstr(err, "hostmaster") != NULL);
	long_rel(apex, 243);
	p.apex = apex;
	struct dns_zone_builder *b = dns_zone_builder_new(&p, err, sizeof(err));
	CHECK(b != NULL);
	dns_zone_builder_free(b);
	dns_zone_builder_free(NULL);
	/* The root as the apex: everything is in the zone. */
	p.apex = ".";
	b = dns_zone_builder_new(&p, err, sizeof(err));
	CHECK(b != NULL);
	if (b) {
		struct dns_rrset rs;
		add_a(b, "host.example", 0, 1, 30);
		struct dns_zone *z = dns_zone_builder_finish(b);
		CHECK(look(z, "HOST.example.", DNS_T_A, &rs) == DNS_LOOKUP_FOUND);
		CHECK(look(z, "other.", DNS_T_A, &rs) == DNS_LOOKUP_NXDOMAIN);
		CHECK(look(z, ".", DNS_T_SOA, &rs) == DNS_LOOKUP_FOUND);
		CHECK(look(z, "example", DNS_T_A, &rs) == DNS_LOOKUP_NODATA);
		dns_zone_unref(z);
	}
}

/* ---- randomized comparison with a naive list ---- */

enum { RAND_NAMES = 10000, RAND_RECORDS = 16000 };

struct naive_rr {
	char name[64];               /* relative, lower case */
	uint16_t type;
	uint8_t data[16];            /* A / AAAA; SRV: port in data[0..1] and a target index in data[2] */
	uint32_t ttl;
	size_t order;                /* index of the first addition */
};

static char rand_names[RAND_NAMES][64];
static struct naive_rr naive[RAND_RECORDS];
static size_t n_naive;
static const char *const srv_targets[] = { "a", "b.c", "ext.example.org." };

/* Names of 1..3 labels over a small alphabet, so names share ancestors and collide in case only. */
static void rand_name(char *out)
{
	size_t labels = 1 + rng() % 3, o = 0;

	for (size_t l = 0; l < labels; l++) {
		size_t len = 1 + rng() % 4;
		if (l)
			out[o++] = '.';
		for (size_t i = 0; i < len; i++)
			out[o++] = "abcdE-_0"[rng() % 8];
	}
	out[o] = '\0';
}

static void to_lower(char *s)
{
	for (; *s; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
}

static bool naive_same(const struct naive_rr *a, const struct naive_rr *b)
{
	size_t n = a->type == DNS_T_A ? 4 : a->type == DNS_T_AAAA ? 16 : 3;

	return a->type == b->type && !memcmp(a->data, b->data, n) && !strcmp(a->name, b->name);
}

static void naive_add(struct dns_zone_builder *b, const char *name, struct naive_rr *r)
{
	int rc;

	if (r->type == DNS_T_A)
		rc = dns_zone_add_a(b, name, r->data, r->ttl, NULL, 0);
	else if (r->type == DNS_T_AAAA)
		rc = dns_zone_add_aaaa(b, name, r->data, r->ttl, NULL, 0);
	else
		rc = dns_zone_add_srv(b, name, 0, 0, (uint16_t)(r->data[0] << 8 | r->data[1]),
				      srv_targets[r->data[2]], r->ttl, NULL, 0);
	CHECK(rc == 0);
	strcpy(r->name, name);
	to_lower(r->name);
	for (size_t i = 0; i < n_naive; i++) {
		if (naive_same(&naive[i], r)) {
			naive[i].ttl = r->ttl < naive[i].ttl ? r->ttl : naive[i].ttl;
			return;
		}
	}
	r->order = n_naive;
	naive[n_naive++] = *r;
}

/* Indexes over the list so that 40,000 queries stay quick: records ordered by (name, type, order),
 * and every existing name (owners and their ancestors below the apex), sorted. */
static const struct naive_rr *by_name[RAND_RECORDS];
static char existing[RAND_RECORDS * 3][64];
static size_t n_existing;

static int cmp_rr(const void *a, const void *b)
{
	const struct naive_rr *x = *(const struct naive_rr *const *)a, *y = *(const struct naive_rr *const *)b;
	int c = strcmp(x->name, y->name);

	if (c)
		return c;
	if (x->type != y->type)
		return x->type < y->type ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void naive_index(void)
{
	n_existing = 0;
	for (size_t i = 0; i < n_naive; i++) {
		by_name[i] = &naive[i];
		for (const char *p = naive[i].name; p; p = strchr(p, '.') ? strchr(p, '.') + 1 : NULL)
			strcpy(existing[n_existing++], p);
	}
	qsort(by_name, n_naive, sizeof(by_name[0]), cmp_rr);
	qsort(existing, n_existing, sizeof(existing[0]), cmp_str);
}

static bool naive_exists(const char *rel)
{
	return !*rel || bsearch(rel, existing, n_existing, sizeof(existing[0]), cmp_str) != NULL;
}

/* The first record of (rel, type) in by_name, or n_naive. */
static size_t naive_first(const char *rel, uint16_t type)
{
	size_t lo = 0, hi = n_naive;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(by_name[mid]->name, rel);
		if (c < 0 || (c == 0 && by_name[mid]->type < type))
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static bool rr_matches(const struct dns_rr *rr, const struct naive_rr *n)
{
	static const char *const full_targets[] = { "a.overlay.local", "b.c.overlay.local", "ext.example.org" };

	if (rr->type != n->type)
		return false;
	if (n->type == DNS_T_A)
		return !memcmp(rr->u.a, n->data, 4);
	if (n->type == DNS_T_AAAA)
		return !memcmp(rr->u.aaaa, n->data, 16);
	return rr->u.srv.port == (n->data[0] << 8 | n->data[1]) && name_is(&rr->u.srv.target, full_targets[n->data[2]]);
}

/* The zone's answer for rel/type against the list: outcome, the RRset in addition order, one TTL. */
static void compare_one(const struct dns_zone *z, const char *rel_mixed, uint16_t type)
{
	char rel[64], full[128];
	struct dns_rrset rs;
	size_t first, end;
	uint32_t min_ttl = UINT32_MAX;

	strcpy(rel, rel_mixed);
	to_lower(rel);
	snprintf(full, sizeof(full), "%s%soverlay.local", rel_mixed, *rel_mixed ? "." : "");
	enum dns_lookup got = look(z, full, type, &rs);
	first = end = naive_first(rel, type);
	while (end < n_naive && !strcmp(by_name[end]->name, rel) && by_name[end]->type == type)
		end++;
	for (size_t i = first; i < end; i++)
		min_ttl = by_name[i]->ttl < min_ttl ? by_name[i]->ttl : min_ttl;
	if (end > first) {
		CHECK(got == DNS_LOOKUP_FOUND && rs.n == end - first);
		for (size_t i = first; i < end && i - first < rs.n; i++)
			CHECK(rr_matches(&rs.rr[i - first], by_name[i]) && rs.rr[i - first].ttl == min_ttl);
	} else {
		CHECK(got == (naive_exists(rel) ? DNS_LOOKUP_NODATA : DNS_LOOKUP_NXDOMAIN) && rs.n == 0);
	}
}

static void test_random_vs_naive(void)
{
	struct dns_zone_builder *b = new_builder();
	static const uint16_t types[] = { DNS_T_A, DNS_T_AAAA, DNS_T_SRV };
	struct dns_zone *z;
	size_t owners = 0;

	n_naive = 0;
	for (size_t i = 0; i < RAND_NAMES; i++)
		rand_name(rand_names[i]);
	for (size_t i = 0; i < RAND_RECORDS; i++) {
		struct naive_rr r = { .type = types[rng() % 3], .ttl = (uint32_t)(rng() % 100) };
		for (size_t j = 0; j < 16; j++)
			r.data[j] = (uint8_t)(rng() % 4);   /* small range: duplicates happen */
		r.data[2] %= 3;
		naive_add(b, rand_names[i % RAND_NAMES], &r);
	}
	z = dns_zone_builder_finish(b);
	naive_index();
	CHECK(dns_zone_records(z) == n_naive + 2);
	for (size_t i = 0; i < n_naive; i++)
		owners += i == 0 || strcmp(by_name[i - 1]->name, by_name[i]->name) != 0;
	CHECK(dns_zone_names(z) == owners + 1);
	for (size_t i = 0; i < RAND_NAMES; i++) {
		char name[64], *dot;
		strcpy(name, rand_names[i]);
		compare_one(z, name, types[i % 3]);
		compare_one(z, name, DNS_T_MX);
		if ((dot = strchr(name, '.')))
			compare_one(z, dot + 1, types[rng() % 3]);   /* an ancestor: owner or ENT */
		rand_name(name);
		compare_one(z, name, types[rng() % 3]);          /* a fresh name: usually NXDOMAIN */
	}
	dns_zone_unref(z);
}

/* ---- reference counting ---- */

static void *reader(void *arg)
{
	struct dns_zone *z = arg;
	struct dns_rrset rs;
	size_t found = 0;

	for (int i = 0; i < 20000; i++)
		found += look(z, i % 2 ? "web.overlay.local" : "nope.overlay.local", DNS_T_A, &rs) == DNS_LOOKUP_FOUND;
	dns_zone_unref(z);
	return (void *)found;
}

static void test_refcount(void)
{
	struct dns_zone_builder *b = new_builder();
	pthread_t t[4];
	struct dns_zone *z;

	add_a(b, "web", 0, 1, 30);
	z = dns_zone_builder_finish(b);
	CHECK(dns_zone_ref(z) == z);
	dns_zone_unref(z);   /* back to one */
	for (int i = 0; i < 4; i++)
		CHECK(pthread_create(&t[i], NULL, reader, dns_zone_ref(z)) == 0);
	dns_zone_unref(z);   /* the readers now hold the last references; the last one frees it */
	for (int i = 0; i < 4; i++) {
		void *found;
		pthread_join(t[i], &found);
		CHECK((size_t)found == 10000);
	}
	dns_zone_unref(NULL);
}

int main(void)
{
	const char *seed = getenv("ZL_TEST_SEED");

	rng_state = seed ? strtoull(seed, NULL, 0) : 0x5eed2025;
	TEST_RUN(test_apex_soa_ns);
	TEST_RUN(test_lookup_outcomes);
	TEST_RUN(test_case_insensitive);
	TEST_RUN(test_any_groups_types);
	TEST_RUN(test_duplicates_merge);
	TEST_RUN(test_bad_names_and_limits);
	TEST_RUN(test_bad_apex);
	TEST_RUN(test_random_vs_naive);
	TEST_RUN(test_refcount);
	return TEST_SUMMARY();
}
