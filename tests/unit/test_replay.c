/* Replay window: a table of (counter, expected) steps in the spirit of the kernel's counter test, and
 * a randomized run against a naive reference (a set of every counter seen plus the window rule).
 * Seed: WG_TEST_SEED in the environment, else a fixed one. */
#include <stdbool.h>
#include <stdint.h>
#include "test.h"
#include "wg/core/messages.h"
#include "wg/core/replay.h"

/* Counters at least greatest - W are still judged; older ones are refused. */
#define W ((uint64_t)(WG_REPLAY_WINDOW_BITS - WG_REPLAY_WORD_BITS))
#define R WG_REJECT_AFTER_MESSAGES

struct step {
	uint64_t counter;
	bool accept;
};

static const struct step steps[] = {
	{ 0, true },              /* the very first counter */
	{ 0, false },             /* duplicate */
	{ 1, true },              /* in order */
	{ 1, false },
	{ 9, true },              /* small jump ahead */
	{ 8, true },              /* out of order, inside the window */
	{ 7, true },
	{ 7, false },
	{ W, true },              /* 0 is now exactly at the old edge... */
	{ 0, false },             /* ...but was seen */
	{ 2, true },              /* unseen and inside */
	{ W + 1, true },          /* the window moves one past 0 */
	{ 0, false },             /* too old */
	{ 1, false },             /* at the edge, seen */
	{ 3, true },              /* just inside */
	{ W + 1, false },
	{ 20000, true },          /* jump of about two words' worth of window */
	{ 20000 - W - 1, false }, /* one below the edge: too old even though never seen */
	{ 20000 - W, true },      /* exactly at the edge */
	{ 20000 - W, false },
	{ 19999, true },
	{ 20001, true },
	{ 20001, false },
	{ 20001 + W, true },      /* the edge is now 20001 */
	{ 20001, false },         /* at the edge, seen */
	{ 20000, false },         /* below the edge */
	/* 20000 - W was seen in the bitmap slot that 20000 - W + 8192 now uses: the jump cleared it. */
	{ 20000 - W + WG_REPLAY_WINDOW_BITS, true },
	{ 20000 - W + WG_REPLAY_WINDOW_BITS, false },
	{ 20000 + WG_REPLAY_WINDOW_BITS, true }, /* same slot as 20000, ahead */
	{ 1000000, true },        /* far jump: the whole ring is cleared */
	/* Same bit of the ring as 20000 + 8192, the top before that jump: its word must be cleared too. */
	{ 20000 + 119 * WG_REPLAY_WINDOW_BITS, true },
	{ 1000000 - W, true },
	{ 1000000 - W - 1, false },
	{ 999999, true },
	{ 20000 + WG_REPLAY_WINDOW_BITS, false },
	{ 1000000 + 64, true },   /* one word ahead */
	{ 1000000 + 63, true },
	{ 1000000 + 64 - W, true },
	{ 1000000 - W, false },   /* was accepted above, and is now too old anyway */
	{ (1ULL << 40) + 5, true },
	{ (1ULL << 40) + 4, true },
	{ (1ULL << 40) + 5, false },
	{ 1000000 + 64, false },
	{ R - 2, true },          /* a jump of nearly 2^64 */
	{ R - 1, true },          /* the last counter ever accepted */
	{ R - 1, false },
	{ R, false },             /* the reject limit itself */
	{ R + 1, false },
	{ UINT64_MAX, false },
	{ R - 2, false },
	{ R - 1 - W, true },      /* the edge at the very top */
	{ R - 2 - W, false },
	{ R - 3, true },
	{ 0, false },
};

static void test_table(void)
{
	struct wg_replay r;

	wg_replay_init(&r);
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		if (wg_replay_accept(&r, steps[i].counter) != steps[i].accept) {
			fprintf(stderr, "  step %zu: counter %llu expected %s\n", i,
				(unsigned long long)steps[i].counter, steps[i].accept ? "accept" : "reject");
			test_checks_failed_in_current++;
		}
	}
}

/* Starting high: everything up to W below the first counter is still acceptable, once. */
static void test_first_counter_high(void)
{
	struct wg_replay r;

	wg_replay_init(&r);
	CHECK(wg_replay_accept(&r, 5000));
	CHECK(wg_replay_accept(&r, 0));
	CHECK(!wg_replay_accept(&r, 0));
	CHECK(wg_replay_accept(&r, 4999));
	CHECK(wg_replay_accept(&r, 5000 + W + 1));
	CHECK(!wg_replay_accept(&r, 5000));
	CHECK(wg_replay_accept(&r, 5001));
}

/* A full window in order, then every counter of it again: all replays, plus the one just too old. */
static void test_sequential_fill(void)
{
	enum { START = 123457, LEN = 3 * WG_REPLAY_WINDOW_BITS };
	struct wg_replay r;
	unsigned accepted = 0, replayed = 0;

	wg_replay_init(&r);
	for (uint64_t c = START; c < START + LEN; c++)
		accepted += wg_replay_accept(&r, c);
	CHECK(accepted == LEN);
	for (uint64_t c = START + LEN - 1 - W; c < START + LEN; c++)
		replayed += !wg_replay_accept(&r, c);
	CHECK(replayed == W + 1);
	CHECK(!wg_replay_accept(&r, START + LEN - 2 - W));
	CHECK(wg_replay_accept(&r, START + LEN));
	/* Re-init forgets everything. */
	wg_replay_init(&r);
	CHECK(wg_replay_accept(&r, START));
}

/* ---- randomized comparison ---- */

static uint64_t rng_state;

static uint64_t rnd(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* An open-addressing set of every accepted counter: the naive memory the window approximates. */
struct seen_set {
	size_t cap, n;
	uint64_t *slot; /* value + 1; 0 = empty */
};

static bool set_has(const struct seen_set *s, uint64_t v)
{
	for (size_t i = (v * 0x9e3779b97f4a7c15ULL) & (s->cap - 1);; i = (i + 1) & (s->cap - 1)) {
		if (!s->slot[i])
			return false;
		if (s->slot[i] == v + 1)
			return true;
	}
}

static void set_add(struct seen_set *s, uint64_t v)
{
	size_t i = (v * 0x9e3779b97f4a7c15ULL) & (s->cap - 1);

	while (s->slot[i])
		i = (i + 1) & (s->cap - 1);
	s->slot[i] = v + 1;
	s->n++;
}

struct reference {
	struct seen_set seen;
	bool any;
	uint64_t highest;
};

static bool ref_accept(struct reference *ref, uint64_t counter)
{
	if (counter >= R)
		return false;
	if (ref->any && counter + W < ref->highest)
		return false;
	if (set_has(&ref->seen, counter))
		return false;
	set_add(&ref->seen, counter);
	if (!ref->any || counter > ref->highest)
		ref->highest = counter;
	ref->any = true;
	return true;
}

/* Next counter: mostly near the current top, often at the window edges and word boundaries, some
 * duplicates, jumps of every size. */
static uint64_t next_counter(uint64_t top)
{
	uint64_t d;

	switch (rnd() % 10) {
	case 0:
		return top - W - 2 + rnd() % 5;                    /* around the trailing edge */
	case 1:
		return top + WG_REPLAY_WINDOW_BITS - 2 + rnd() % 5; /* about one ring ahead */
	case 2:
		return top + 64 * (rnd() % 140) + rnd() % 3 - 1;   /* whole words ahead */
	case 3:
		return top - rnd() % 20000;                         /* behind, maybe too far */
	case 4:
		return top + rnd() % 100000;
	case 5:
		return top;                                         /* duplicate of the top */
	default:
		d = rnd() % 256;
		return rnd() & 1 ? top + d : top - d;
	}
}

static void run_random(uint64_t start, unsigned ops, unsigned *mismatch, unsigned *accepted)
{
	struct reference ref = { { 1u << 20, 0, calloc(1u << 20, sizeof(uint64_t)) }, false, 0 };
	struct wg_replay r;
	uint64_t top = start;

	wg_replay_init(&r);
	for (unsigned i = 0; i < ops && ref.seen.n < ref.seen.cap / 2; i++) {
		uint64_t c = next_counter(top);
		bool want = ref_accept(&ref, c);

		if (wg_replay_accept(&r, c) != want && (*mismatch)++ < 5)
			fprintf(stderr, "  op %u counter %llu: reference says %d\n", i, (unsigned long long)c, want);
		*accepted += want;
		if (ref.any)
			top = ref.highest;
	}
	free(ref.seen.slot);
}

static void test_randomized_vs_reference(void)
{
	const char *env = getenv("WG_TEST_SEED");
	uint64_t seed = env ? strtoull(env, NULL, 0) : 0x7e91a7c0ULL;
	unsigned mismatch = 0, accepted = 0;

	printf("     replay random seed 0x%llx (set WG_TEST_SEED to replay)\n", (unsigned long long)seed);
	rng_state = seed;
	run_random(10000, 200000, &mismatch, &accepted);
	run_random(1ULL << 33, 100000, &mismatch, &accepted);
	run_random(R - 3000000, 100000, &mismatch, &accepted); /* runs into the reject limit */
	printf("     %u accepted, %u mismatches\n", accepted, mismatch);
	CHECK(mismatch == 0);
	CHECK(accepted > 100000); /* the run exercised acceptance, not only refusals */
}

int main(void)
{
	TEST_RUN(test_table);
	TEST_RUN(test_first_counter_high);
	TEST_RUN(test_sequential_fill);
	TEST_RUN(test_randomized_vs_reference);
	return TEST_SUMMARY();
}
