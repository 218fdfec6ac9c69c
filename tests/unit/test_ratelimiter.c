/* Rate limiter with an explicit clock: burst then refusal, refill, the per-second rate, independent
 * sources, IPv6 keyed by /64, a table full of live sources, and recycling of stale entries. */
#include <arpa/inet.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include "test.h"
#include "wg/core/messages.h"
#include "wg/core/ratelimiter.h"

#define MS WG_NSEC_PER_MSEC
#define SEC WG_NSEC_PER_SEC
#define T0 (1000 * SEC) /* an arbitrary monotonic start */
#define COST (SEC / WG_RATELIMIT_PER_SEC)

struct src {
	uint8_t b[16];
	unsigned len;
};

static struct src parse(const char *s)
{
	struct src a = { { 0 }, strchr(s, ':') ? 16 : 4 };

	if (inet_pton(a.len == 16 ? AF_INET6 : AF_INET, s, a.b) != 1)
		abort();
	return a;
}

static bool allow(struct wg_ratelimiter *r, const char *ip, uint64_t now)
{
	struct src a = parse(ip);
	return wg_ratelimiter_allow(r, a.b, a.len, now);
}

/* Number of messages allowed out of n sent at the same instant. */
static unsigned burst(struct wg_ratelimiter *r, const char *ip, uint64_t now, unsigned n)
{
	unsigned ok = 0;

	for (unsigned i = 0; i < n; i++)
		ok += allow(r, ip, now);
	return ok;
}

/* The i-th of many distinct IPv4 sources, 10.x.y.z. */
static bool allow_nth(struct wg_ratelimiter *r, uint32_t i, uint64_t now)
{
	uint32_t be = htonl(0x0a000000u + i);
	return wg_ratelimiter_allow(r, (const uint8_t *)&be, 4, now);
}

static void test_burst_then_refusal(void)
{
	struct wg_ratelimiter *r = wg_ratelimiter_new();

	CHECK(r != NULL);
	CHECK(burst(r, "192.0.2.1", T0, 5) == WG_RATELIMIT_BURST);
	CHECK(!allow(r, "192.0.2.1", T0));
	CHECK(!allow(r, "192.0.2.1", T0 + 1));
	wg_ratelimiter_free(r);
}

static void test_refill(void)
{
	struct wg_ratelimiter *r = wg_ratelimiter_new();

	CHECK(burst(r, "192.0.2.1", T0, 6) == 5);
	CHECK(!allow(r, "192.0.2.1", T0 + COST - 1)); /* not quite one message of credit */
	CHECK(allow(r, "192.0.2.1", T0 + COST));      /* exactly one */
	CHECK(!allow(r, "192.0.2.1", T0 + COST));
	CHECK(allow(r, "192.0.2.1", T0 + 3 * COST));  /* two earned, one spent... */
	CHECK(allow(r, "192.0.2.1", T0 + 3 * COST));  /* ...and the second */
	CHECK(!allow(r, "192.0.2.1", T0 + 3 * COST));
	/* A long silence refills only up to the burst. */
	CHECK(burst(r, "192.0.2.1", T0 + 60 * SEC, 20) == WG_RATELIMIT_BURST);
	wg_ratelimiter_free(r);
}

/* Sending every millisecond, a source gets exactly PER_SEC messages a second once its burst is gone. */
static void test_sustained_rate(void)
{
	struct wg_ratelimiter *r = wg_ratelimiter_new();
	unsigned ok = 0;

	CHECK(burst(r, "198.51.100.7", T0, 10) == 5);
	for (uint64_t t = 1; t <= 1000; t++)
		ok += allow(r, "198.51.100.7", T0 + t * MS);
	CHECK(ok == WG_RATELIMIT_PER_SEC);
	wg_ratelimiter_free(r);
}

static void test_sources_independent(void)
{
	struct wg_ratelimiter *r = wg_ratelimiter_new();

	CHECK(burst(r, "192.0.2.1", T0, 10) == 5);
	CHECK(burst(r, "192.0.2.2", T0, 10) == 5);     /* a neighbour in the same /24 */
	CHECK(burst(r, "2001:db8::1", T0, 10) == 5);
	/* The IPv4 bytes 1.2.3.4 and an IPv6 /64 starting with them are different sources. */
	CHECK(burst(r, "1.2.3.4", T0, 10) == 5);
	CHECK(burst(r, "102:304::", T0, 10) == 5);
	CHECK(!allow(r, "192.0.2.1", T0));
	wg_ratelimiter_free(r);
}

static void test_ipv6_by_prefix64(void)
{
	struct wg_ratelimiter *r = wg_ratelimiter_new();

	CHECK(burst(r, "2001:db8:1:2::1", T0, 3) == 3);
	/* Same /64, other interface ids: the same bucket, two messages left. */
	CHECK(allow(r, "2001:db8:1:2:ffff:ffff:ffff:ffff", T0));
	CHECK(allow(r, "2001:db8:1:2:1234::9", T0));
	CHECK(!allow(r, "2001:db8:1:2::1", T0));
	/* A different /64, differing in the last bit of the prefix: a fresh bucket. */
	CHECK(burst(r, "2001:db8:1:3::1", T0, 10) == 5);
	CHECK(burst(r, "2001:db8:1:2::1", T0 + COST, 10) == 1);
	wg_ratelimiter_free(r);
}

static void test_invalid_address(void)
{
	struct wg_ratelimiter *r = wg_ratelimiter_new();
	uint8_t a[16] = { 1 };

	CHECK(!wg_ratelimiter_allow(r, a, 0, T0));
	CHECK(!wg_ratelimiter_allow(r, a, 8, T0));
	CHECK(!wg_ratelimiter_allow(r, a, 15, T0));
	CHECK(!wg_ratelimiter_allow(r, NULL, 4, T0));
	CHECK(wg_ratelimiter_allow(r, a, 4, T0));
	wg_ratelimiter_free(r);
	wg_ratelimiter_free(NULL);
}

/* Full of live entries: new sources are refused, known ones still served. Entries unused for more
 * than a second are recycled, the stalest first, and a recently used one is never taken. */
static void test_table_full_and_recycling(void)
{
	enum { MAX = WG_RATELIMIT_MAX_ENTRIES };
	struct wg_ratelimiter *r = wg_ratelimiter_new();
	unsigned ok = 0;

	for (uint32_t i = 0; i < MAX; i++)
		ok += allow_nth(r, i, T0);
	CHECK(ok == MAX);
	CHECK(!allow(r, "203.0.113.1", T0));
	CHECK(!allow(r, "203.0.113.1", T0 + SEC / 2));
	CHECK(!allow(r, "2001:db8::1", T0 + SEC / 2));
	CHECK(allow_nth(r, 100, T0 + SEC / 2)); /* a known source keeps its bucket (4 left, 5 max) */
	CHECK(allow_nth(r, 0, T0 + SEC / 2));   /* and so does the oldest one */
	/* Exactly one second is not "more than a second". */
	CHECK(!allow(r, "203.0.113.1", T0 + SEC));
	/* Just after, the MAX - 2 entries untouched since T0 are stale and get recycled... */
	ok = 0;
	for (uint32_t i = 0; i < MAX - 2; i++)
		ok += allow_nth(r, 1000000 + i, T0 + SEC + 1);
	CHECK(ok == MAX - 2);
	/* ...but sources 0 and 100, used half a second ago, are live: the table is full again. */
	CHECK(!allow_nth(r, 2000000, T0 + SEC + 1));
	CHECK(burst(r, "10.0.0.100", T0 + SEC + 1, 10) == 5); /* still its own, refilled bucket */
	/* Source 0 goes stale first (source 100 was just used): exactly one more new source fits. */
	CHECK(allow_nth(r, 2000000, T0 + 3 * SEC / 2 + 1));
	CHECK(!allow_nth(r, 2000001, T0 + 3 * SEC / 2 + 1));
	/* Much later everything is stale: a whole table of new sources fits. */
	ok = 0;
	for (uint32_t i = 0; i < MAX; i++)
		ok += allow_nth(r, 3000000 + i, T0 + 10 * SEC);
	CHECK(ok == MAX);
	CHECK(!allow_nth(r, 4000000, T0 + 10 * SEC));
	wg_ratelimiter_free(r);
}

/* A flood of distinct sources at one instant admits exactly one table's worth; a steady trickle of
 * new sources, slower than the table turns over, is never refused. */
static void test_flood_and_turnover(void)
{
	struct wg_ratelimiter *r = wg_ratelimiter_new();
	unsigned ok = 0;

	for (uint32_t i = 0; i < 100000; i++)
		ok += allow_nth(r, i, T0);
	CHECK(ok == WG_RATELIMIT_MAX_ENTRIES);
	ok = 0;
	for (uint32_t i = 0; i < 100000; i++) /* 4000 new sources a second, for 25 seconds */
		ok += allow_nth(r, 200000 + i, T0 + 2 * SEC + i * (SEC / 4000));
	CHECK(ok == 100000);
	wg_ratelimiter_free(r);
}

int main(void)
{
	TEST_RUN(test_burst_then_refusal);
	TEST_RUN(test_refill);
	TEST_RUN(test_sustained_rate);
	TEST_RUN(test_sources_independent);
	TEST_RUN(test_ipv6_by_prefix64);
	TEST_RUN(test_invalid_address);
	TEST_RUN(test_table_full_and_recycling);
	TEST_RUN(test_flood_and_turnover);
	return TEST_SUMMARY();
}
