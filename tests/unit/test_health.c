/* The probe health state machine (overlay/health.h) driven with a fake clock. */
#include "overlay/health.h"
#include "test.h"
#include <stdint.h>

enum { MS = 1000000 };
static const uint64_t INTERVAL = 2000ull * MS;

/* One interval of a peer: tick (send a probe) and, if answer_ms >= 0, its reply answer_ms later.
 * Returns the change of the tick; the reply's change goes to *reply_ch. */
struct clock {
	uint64_t now;
};

static enum zl_health_change step(struct zl_health *h, struct clock *c, int answer_ms, enum zl_health_change *reply_ch)
{
	uint64_t seq = 0;
	enum zl_health_change ch = zl_health_tick(h, c->now, &seq);

	*reply_ch = ZL_HEALTH_SAME;
	if (answer_ms >= 0)
		*reply_ch = zl_health_reply(h, seq, c->now + (uint64_t)answer_ms * MS);
	c->now += INTERVAL;
	return ch;
}

static void test_up_after_one_reply(void)
{
	struct zl_health h;
	struct clock c = { 1000 * INTERVAL };
	enum zl_health_change rc;

	zl_health_init(&h, 3, 77);
	CHECK(h.state == ZL_HEALTH_UNKNOWN);
	CHECK(zl_health_loss(&h) == 0);
	CHECK(step(&h, &c, 5, &rc) == ZL_HEALTH_SAME);
	CHECK(rc == ZL_HEALTH_BECAME_UP);
	CHECK(h.state == ZL_HEALTH_UP);
	CHECK(h.sent == 1 && h.replies == 1 && h.late == 0);
	/* Further answers are no change. */
	CHECK(step(&h, &c, 5, &rc) == ZL_HEALTH_SAME);
	CHECK(rc == ZL_HEALTH_SAME);
	CHECK(h.state == ZL_HEALTH_UP);
}

static void test_sequence_numbers(void)
{
	struct zl_health h;
	uint64_t seq = 0;

	zl_health_init(&h, 3, 41);
	zl_health_tick(&h, 0, &seq);
	CHECK(seq == 41);
	zl_health_tick(&h, INTERVAL, &seq);
	CHECK(seq == 42);
	/* Wrapping around 2^64 is fine. */
	zl_health_init(&h, 3, UINT64_MAX);
	zl_health_tick(&h, 0, &seq);
	CHECK(seq == UINT64_MAX);
	zl_health_tick(&h, INTERVAL, &seq);
	CHECK(seq == 0);
	CHECK(zl_health_reply(&h, UINT64_MAX, INTERVAL + MS) == ZL_HEALTH_SAME);
	CHECK(h.late == 1);
	CHECK(zl_health_reply(&h, 0, INTERVAL + MS) == ZL_HEALTH_BECAME_UP);
}

/* From UNKNOWN (never answered), DOWN comes exactly when the misses_down-th miss is settled. */
static void test_down_from_unknown(void)
{
	for (uint32_t n = 1; n <= 5; n++) {
		struct zl_health h;
		struct clock c = { 0 };
		enum zl_health_change rc;

		zl_health_init(&h, n, 1);
		CHECK(step(&h, &c, -1, &rc) == ZL_HEALTH_SAME);    /* first tick settles nothing */
		for (uint32_t i = 1; i < n; i++) {
			CHECK(step(&h, &c, -1, &rc) == ZL_HEALTH_SAME);
			CHECK(h.state == ZL_HEALTH_UNKNOWN);
		}
		CHECK(step(&h, &c, -1, &rc) == ZL_HEALTH_BECAME_DOWN);
		CHECK(h.state == ZL_HEALTH_DOWN);
		CHECK(h.consecutive_misses == n);
		/* More misses: still down, no new change. */
		CHECK(step(&h, &c, -1, &rc) == ZL_HEALTH_SAME);
		CHECK(h.state == ZL_HEALTH_DOWN);
	}
}

/* From UP: a peer that stops answering at time t is DOWN by t + interval x (misses + 1), whatever the
 * phase of the stop relative to the ticks. */
static void test_down_from_up_within_bound(void)
{
	const uint32_t misses = 3;

	for (uint64_t phase_ms = 0; phase_ms < 2000; phase_ms += 250) {
		struct zl_health h;
		struct clock c = { 0 };
		enum zl_health_change rc, ch = ZL_HEALTH_SAME;
		uint64_t stop = 10 * INTERVAL + phase_ms * MS, down_at = 0;

		zl_health_init(&h, misses, 9);
		while (c.now < 30 * INTERVAL) {
			uint64_t t = c.now;
			/* Answers 10 ms after the probe while alive (the reply must also be before the stop). */
			int ans = t + 10ull * MS < stop ? 10 : -1;

			ch = step(&h, &c, ans, &rc);
			if (ch == ZL_HEALTH_BECAME_DOWN) {
				down_at = t;
				break;
			}
			CHECK(h.state == ZL_HEALTH_UP);   /* the first probe is always answered (stop >= 10 intervals) */
		}
		CHECK(ch == ZL_HEALTH_BECAME_DOWN);
		CHECK(down_at > stop);
		CHECK(down_at <= stop + INTERVAL * (misses + 1));
		/* Not earlier than misses intervals either: misses_down probes had to go unanswered. */
		CHECK(down_at >= stop + INTERVAL * (misses - 1));
	}
}

static void test_up_again_after_down(void)
{
	struct zl_health h;
	struct clock c = { 0 };
	enum zl_health_change rc;

	zl_health_init(&h, 2, 1);
	step(&h, &c, 3, &rc);
	CHECK(rc == ZL_HEALTH_BECAME_UP);
	step(&h, &c, -1, &rc);
	step(&h, &c, -1, &rc);
	CHECK(step(&h, &c, -1, &rc) == ZL_HEALTH_BECAME_DOWN);
	/* One answer is enough. */
	step(&h, &c, 4, &rc);
	CHECK(rc == ZL_HEALTH_BECAME_UP);
	CHECK(h.state == ZL_HEALTH_UP);
	CHECK(h.consecutive_misses == 0);
	/* One miss after that does not make it down with misses_down 2; a second does. */
	CHECK(step(&h, &c, -1, &rc) == ZL_HEALTH_SAME);
	CHECK(step(&h, &c, -1, &rc) == ZL_HEALTH_SAME);
	CHECK(h.state == ZL_HEALTH_UP);
	CHECK(step(&h, &c, -1, &rc) == ZL_HEALTH_BECAME_DOWN);
}

/* An answer in between misses resets the count: misses must be consecutive. */
static void test_misses_must_be_consecutive(void)
{
	struct zl_health h;
	struct clock c = { 0 };
	enum zl_health_change rc;
	enum zl_health_change got = ZL_HEALTH_SAME;

	zl_health_init(&h, 3, 1);
	for (int i = 0; i < 30; i++) {
		enum zl_health_change ch = step(&h, &c, i % 3 == 2 ? 1 : -1, &rc);   /* miss, miss, answer */
		if (ch != ZL_HEALTH_SAME)
			got = ch;
	}
	CHECK(got == ZL_HEALTH_SAME);
	CHECK(h.state == ZL_HEALTH_UP);
	CHECK(h.consecutive_misses == 0 || h.consecutive_misses == 1);
}

static void test_late_reply(void)
{
	struct zl_health h;
	uint64_t s1, s2;

	zl_health_init(&h, 1, 100);
	zl_health_tick(&h, 0, &s1);
	/* The reply to s1 arrives after the next tick: s1 was settled as missed (-> DOWN with 1 miss). */
	CHECK(zl_health_tick(&h, INTERVAL, &s2) == ZL_HEALTH_BECAME_DOWN);
	CHECK(zl_health_reply(&h, s1, INTERVAL + MS) == ZL_HEALTH_SAME);
	CHECK(h.state == ZL_HEALTH_DOWN);
	CHECK(h.late == 1 && h.replies == 0);
	CHECK(!h.have_rtt);
	CHECK(zl_health_loss(&h) == 1.0);
	/* The reply to the outstanding probe counts. */
	CHECK(zl_health_reply(&h, s2, INTERVAL + 7 * MS) == ZL_HEALTH_BECAME_UP);
	CHECK(h.replies == 1);
	CHECK(h.srtt_ms == 7.0);
}

static void test_wrong_and_duplicate_seq(void)
{
	struct zl_health h;
	uint64_t s;

	zl_health_init(&h, 3, 1000);
	/* Nothing outstanding: a reply changes nothing. */
	CHECK(zl_health_reply(&h, 1000, 5) == ZL_HEALTH_SAME);
	CHECK(h.state == ZL_HEALTH_UNKNOWN && h.late == 0 && h.replies == 0);
	zl_health_tick(&h, 0, &s);
	/* Sequence numbers never sent (future, earlier instance, far off) are ignored entirely. */
	CHECK(zl_health_reply(&h, s + 1, MS) == ZL_HEALTH_SAME);
	CHECK(zl_health_reply(&h, s - 1, MS) == ZL_HEALTH_SAME);
	CHECK(zl_health_reply(&h, s ^ 0x8000000000000000ull, MS) == ZL_HEALTH_SAME);
	CHECK(h.state == ZL_HEALTH_UNKNOWN && h.late == 0 && h.replies == 0);
	CHECK(h.outstanding && !h.answered);
	/* The right one, then a duplicate of it (counted as late, no second RTT sample). */
	CHECK(zl_health_reply(&h, s, 2 * MS) == ZL_HEALTH_BECAME_UP);
	CHECK(zl_health_reply(&h, s, 9 * MS) == ZL_HEALTH_SAME);
	CHECK(h.replies == 1 && h.late == 1);
	CHECK(h.srtt_ms == 2.0 && h.last_rtt_ms == 2.0);
}

static void test_loss_fractions(void)
{
	struct zl_health h;
	struct clock c = { 0 };
	enum zl_health_change rc;

	zl_health_init(&h, 100, 1);
	/* answer, miss, answer, answer: 1 of 4 settled once the 5th tick settles the 4th. */
	step(&h, &c, 1, &rc);
	CHECK(zl_health_loss(&h) == 0);          /* nothing settled yet */
	step(&h, &c, -1, &rc);
	CHECK(zl_health_loss(&h) == 0);          /* 1 settled, answered */
	step(&h, &c, 1, &rc);
	CHECK(zl_health_loss(&h) == 0.5);        /* answered, missed */
	step(&h, &c, 1, &rc);
	CHECK(zl_health_loss(&h) == 1.0 / 3);
	step(&h, &c, 1, &rc);
	CHECK(zl_health_loss(&h) == 0.25);
	CHECK(h.settled == 4);
}

/* The window holds the last 32 settled probes: older misses fall out. */
static void test_loss_window(void)
{
	struct zl_health h;
	struct clock c = { 0 };
	enum zl_health_change rc;

	zl_health_init(&h, 100, 1);
	for (int i = 0; i < 10; i++)
		step(&h, &c, -1, &rc);
	for (int i = 0; i < 30; i++)
		step(&h, &c, 1, &rc);
	/* Settled: 10 misses + 29 answers = 39; the window keeps the last 32: 3 misses + 29 answers. */
	CHECK(h.settled == ZL_HEALTH_WINDOW);
	CHECK(zl_health_loss(&h) == 3.0 / 32);
	for (int i = 0; i < 3; i++)
		step(&h, &c, 1, &rc);
	CHECK(zl_health_loss(&h) == 0);
	for (int i = 0; i < 40; i++)
		step(&h, &c, -1, &rc);
	CHECK(zl_health_loss(&h) == 1.0);
}

/* RTT 10, 20, 10, 30 ms: srtt += (rtt - srtt)/8 and jitter += (|rtt - prev| - jitter)/16, all exact in
 * binary floating point. */
static void test_srtt_jitter_exact(void)
{
	struct zl_health h;
	struct clock c = { 5 * INTERVAL };
	enum zl_health_change rc;
	const int rtts[] = { 10, 20, 10, 30 };
	double srtt = 10, jit = 0;

	zl_health_init(&h, 3, 1);
	step(&h, &c, rtts[0], &rc);
	CHECK(h.have_rtt && h.srtt_ms == 10.0 && h.jitter_ms == 0.0 && h.last_rtt_ms == 10.0);
	for (size_t i = 1; i < 4; i++) {
		double d = (double)rtts[i] - rtts[i - 1];

		step(&h, &c, rtts[i], &rc);
		srtt += ((double)rtts[i] - srtt) / 8;
		jit += ((d < 0 ? -d : d) - jit) / 16;
	}
	/* The reference values written out: 10 -> 11.25 -> 11.09375 -> 13.45703125;
	 * 0 -> 0.625 -> 1.2109375 -> 2.38525390625. */
	CHECK(srtt == 13.45703125 && jit == 2.38525390625);
	CHECK(h.srtt_ms == 13.45703125);
	CHECK(h.jitter_ms == 2.38525390625);
	CHECK(h.last_rtt_ms == 30.0);
	/* A miss does not touch the figures. */
	step(&h, &c, -1, &rc);
	step(&h, &c, -1, &rc);
	CHECK(h.srtt_ms == 13.45703125 && h.jitter_ms == 2.38525390625);
}

static void test_sub_millisecond_rtt(void)
{
	struct zl_health h;
	uint64_t s;

	zl_health_init(&h, 3, 1);
	zl_health_tick(&h, 1000, &s);
	zl_health_reply(&h, s, 1000 + 250000);
	CHECK(h.srtt_ms == 0.25);
	/* A reply stamped before its probe (cannot happen on a monotonic clock) gives 0, not garbage. */
	zl_health_tick(&h, 10 * INTERVAL, &s);
	zl_health_reply(&h, s, 10 * INTERVAL - 5);
	CHECK(h.last_rtt_ms == 0.0);
}

static void test_healthy(void)
{
	struct zl_health h;
	uint64_t s;

	zl_health_init(&h, 3, 1);
	/* UNKNOWN is never healthy, whatever the handshake. */
	CHECK(!zl_health_healthy(&h, 0, 180));
	zl_health_tick(&h, 0, &s);
	zl_health_reply(&h, s, MS);
	CHECK(zl_health_healthy(&h, 0, 180));
	CHECK(zl_health_healthy(&h, 180, 180));
	CHECK(!zl_health_healthy(&h, 181, 180));
	CHECK(!zl_health_healthy(&h, -1, 180));          /* never handshaked */
	CHECK(!zl_health_healthy(&h, INT64_MAX, 180));
	CHECK(zl_health_healthy(&h, 5, 5) && !zl_health_healthy(&h, 6, 5));
	/* DOWN with a fresh handshake: not healthy. */
	for (int i = 0; i < 4; i++)
		zl_health_tick(&h, (uint64_t)(i + 1) * INTERVAL, &s);
	CHECK(h.state == ZL_HEALTH_DOWN);
	CHECK(!zl_health_healthy(&h, 0, 180));
}

static void test_names_and_init(void)
{
	struct zl_health h;

	CHECK(strcmp(zl_health_state_name(ZL_HEALTH_UNKNOWN), "unknown") == 0);
	CHECK(strcmp(zl_health_state_name(ZL_HEALTH_UP), "up") == 0);
	CHECK(strcmp(zl_health_state_name(ZL_HEALTH_DOWN), "down") == 0);
	CHECK(strcmp(zl_health_state_name((enum zl_health_state)42), "unknown") == 0);
	/* misses_down 0 would mean "down before any miss": treated as 1. */
	zl_health_init(&h, 0, 1);
	CHECK(h.misses_down == 1);
}

int main(void)
{
	TEST_RUN(test_up_after_one_reply);
	TEST_RUN(test_sequence_numbers);
	TEST_RUN(test_down_from_unknown);
	TEST_RUN(test_down_from_up_within_bound);
	TEST_RUN(test_up_again_after_down);
	TEST_RUN(test_misses_must_be_consecutive);
	TEST_RUN(test_late_reply);
	TEST_RUN(test_wrong_and_duplicate_seq);
	TEST_RUN(test_loss_fractions);
	TEST_RUN(test_loss_window);
	TEST_RUN(test_srtt_jitter_exact);
	TEST_RUN(test_sub_millisecond_rtt);
	TEST_RUN(test_healthy);
	TEST_RUN(test_names_and_init);
	return TEST_SUMMARY();
}
