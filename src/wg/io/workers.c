/* Crypto worker pool (see workers.h). Jobs are claimed in small chunks from a shared cursor, so a batch
 * spreads over whichever threads are free, however uneven the packet sizes.
 *
 * Publication: a batch's parameters are written and read under `lock`, and a new batch is only
 * published once no worker is still inside the previous one (`active` == 0), so a late worker can never
 * mix the cursor of one batch with the jobs of another. The lock is taken once per batch per thread,
 * never per packet. Workers spin briefly before sleeping because batches come back to back under load. */
#include "wg/io/workers.h"
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

enum {
	CHUNK = 8,                 /* jobs claimed at once: ~10 us of work at MTU size */
	INLINE_BELOW = 2 * CHUNK,  /* smaller batches are not worth a wake-up */
	SPIN_ROUNDS = 4000,
};

struct wg_workers {
	pthread_t *threads;
	unsigned thread_count;
	pthread_mutex_t lock;
	pthread_cond_t wake;          /* workers: a new batch or stop */
	pthread_cond_t idle;          /* caller: active dropped to 0 */
	_Atomic uint32_t generation;  /* bumped per batch (read without the lock to spin on) */
	unsigned active;              /* workers inside a batch */
	bool stopping;
	struct wg_crypto_job *jobs;
	size_t count;
	_Atomic size_t cursor;        /* next job to claim */
	_Atomic uint32_t remaining;   /* jobs not yet finished; the caller futex-waits on it */
};

static void work_on_batch(struct wg_workers *w, struct wg_crypto_job *jobs, size_t count)
{
	for (;;) {
		size_t start = atomic_fetch_add(&w->cursor, CHUNK);
		size_t n;

		if (start >= count)
			return;
		n = count - start < CHUNK ? count - start : CHUNK;
		wg_crypto_jobs_run(jobs + start, n);
		if (atomic_fetch_sub(&w->remaining, (uint32_t)n) == n)
			syscall(SYS_futex, &w->remaining, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
	}
}

static void *worker_main(void *arg)
{
	struct wg_workers *w = arg;
	uint32_t seen = 0;

	for (;;) {
		struct wg_crypto_job *jobs;
		size_t count;

		for (int i = 0; i < SPIN_ROUNDS && atomic_load(&w->generation) == seen; i++)
			__builtin_ia32_pause();
		pthread_mutex_lock(&w->lock);
		while (atomic_load(&w->generation) == seen && !w->stopping)
			pthread_cond_wait(&w->wake, &w->lock);
		if (w->stopping) {
			pthread_mutex_unlock(&w->lock);
			return NULL;
		}
		seen = atomic_load(&w->generation);
		jobs = w->jobs;
		count = w->count;
		w->active++;
		pthread_mutex_unlock(&w->lock);

		work_on_batch(w, jobs, count);

		pthread_mutex_lock(&w->lock);
		if (--w->active == 0)
			pthread_cond_signal(&w->idle);
		pthread_mutex_unlock(&w->lock);
	}
}

void wg_workers_run(struct wg_workers *w, struct wg_crypto_job *jobs, size_t n)
{
	uint32_t left;

	if (!w || !w->thread_count || n < INLINE_BELOW) {
		wg_crypto_jobs_run(jobs, n);
		return;
	}
	pthread_mutex_lock(&w->lock);
	while (w->active)
		pthread_cond_wait(&w->idle, &w->lock);
	w->jobs = jobs;
	w->count = n;
	atomic_store(&w->cursor, 0);
	atomic_store(&w->remaining, (uint32_t)n);
	atomic_fetch_add(&w->generation, 1);
	pthread_cond_broadcast(&w->wake);
	pthread_mutex_unlock(&w->lock);

	work_on_batch(w, jobs, n);
	for (int i = 0; (left = atomic_load(&w->remaining)) != 0; i++) {
		if (i < SPIN_ROUNDS)
			__builtin_ia32_pause();
		else
			syscall(SYS_futex, &w->remaining, FUTEX_WAIT_PRIVATE, left, NULL, NULL, 0);
	}
}

struct wg_workers *wg_workers_new(unsigned threads)
{
	struct wg_workers *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	w->threads = calloc(threads ? threads : 1, sizeof(*w->threads));
	if (!w->threads) {
		free(w);
		return NULL;
	}
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->wake, NULL);
	pthread_cond_init(&w->idle, NULL);
	for (unsigned i = 0; i < threads; i++) {
		if (pthread_create(&w->threads[i], NULL, worker_main, w) != 0)
			break;
		w->thread_count++;
	}
	return w;
}

void wg_workers_free(struct wg_workers *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	w->stopping = true;
	pthread_cond_broadcast(&w->wake);
	pthread_mutex_unlock(&w->lock);
	for (unsigned i = 0; i < w->thread_count; i++)
		pthread_join(w->threads[i], NULL);
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->wake);
	pthread_cond_destroy(&w->idle);
	free(w->threads);
	free(w);
}

unsigned wg_workers_default_threads(void)
{
	const char *env = getenv("ZL_WG_THREADS");
	long cpus;

	if (env && *env) {
		char *end;
		long v = strtol(env, &end, 10);
		if (*end == '\0' && v >= 0 && v <= 64)
			return (unsigned)v;
	}
	/* Half the CPUs for crypto (the loop thread included): the other half is left to the kernel's
	 * network stack and the applications on the same machine. Measured on 2 CPUs, a helper thread there
	 * lost 10-30% TCP throughput to contention (make bench with ZL_WG_THREADS=0 vs 1). */
	cpus = sysconf(_SC_NPROCESSORS_ONLN);
	return cpus >= 4 ? (unsigned)(cpus / 2 - 1) : 0;
}
