/* The crypto worker pool: every job of every batch runs exactly once and correctly, whatever the batch
 * sizes, with several threads claiming chunks concurrently (also run under ASan/UBSan; TSan-clean by
 * design: batch parameters are published under the pool's lock). */
#include <stdlib.h>
#include "test.h"
#include "wg/io/workers.h"

enum { MAX_JOBS = 700, LEN = 256 };

static uint8_t bufs[MAX_JOBS][LEN + 16], plain[LEN];
static struct wg_crypto_job jobs[MAX_JOBS];

static void run_batches(unsigned threads)
{
	struct wg_workers *w = wg_workers_new(threads);
	struct wg_aead_key k;
	uint8_t key[32] = {7}, ref[LEN + 16];
	size_t sizes[] = {0, 1, 15, 16, 17, 64, 100, 511, 700};

	CHECK(w != NULL);
	for (size_t i = 0; i < LEN; i++)
		plain[i] = (uint8_t)(i ^ 0x5a);
	wg_aead_key_init(&k, key);
	for (int round = 0; round < 200; round++) {
		size_t n = sizes[round % (sizeof(sizes) / sizeof(sizes[0]))];
		for (size_t i = 0; i < n; i++) {
			memcpy(bufs[i], plain, LEN);
			jobs[i] = (struct wg_crypto_job){.key = &k, .counter = (uint64_t)round * 1000 + i, .data = bufs[i], .len = LEN, .seal = true};
		}
		wg_workers_run(w, jobs, n);
		for (size_t i = 0; i < n; i++) {
			wg_aead_seal(ref, plain, LEN, NULL, 0, jobs[i].counter, key);
			CHECK(jobs[i].ok);
			CHECK_MEM_EQ(bufs[i], ref, LEN + 16);
		}
	}
	wg_workers_free(w);
}

static void test_inline_pool(void) { run_batches(0); }
static void test_one_worker(void) { run_batches(1); }
static void test_three_workers(void) { run_batches(3); }

static void test_default_threads_from_environment(void)
{
	setenv("ZL_WG_THREADS", "3", 1);
	CHECK(wg_workers_default_threads() == 3);
	setenv("ZL_WG_THREADS", "0", 1);
	CHECK(wg_workers_default_threads() == 0);
	unsetenv("ZL_WG_THREADS");
}

int main(void)
{
	wg_crypto_init();
	TEST_RUN(test_inline_pool);
	TEST_RUN(test_one_worker);
	TEST_RUN(test_three_workers);
	TEST_RUN(test_default_threads_from_environment);
	return TEST_SUMMARY();
}
