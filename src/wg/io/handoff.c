/* The hand-off thread: see handoff.h.
 *
 * Signals are sent only to a side that sleeps (the `sleeping` flags), so a busy pipeline costs a
 * mutex round trip per job and no futex wake-ups. */
#include "wg/io/handoff.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

struct wg_handoff {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t job_ready;     /* thread: a job or stop */
	pthread_cond_t job_done;      /* caller: the job in flight is done */
	wg_handoff_fn run;
	void *ctx;
	void *job;                    /* submitted, not yet finished */
	bool thread_sleeping, caller_sleeping;
	bool stopping;
};

static void *handoff_main(void *arg)
{
	struct wg_handoff *h = arg;

	pthread_mutex_lock(&h->lock);
	for (;;) {
		while (!h->job && !h->stopping) {
			h->thread_sleeping = true;
			pthread_cond_wait(&h->job_ready, &h->lock);
			h->thread_sleeping = false;
		}
		if (!h->job)
			break;
		pthread_mutex_unlock(&h->lock);
		h->run(h->ctx, h->job);
		pthread_mutex_lock(&h->lock);
		h->job = NULL;
		if (h->caller_sleeping)
			pthread_cond_signal(&h->job_done);
	}
	pthread_mutex_unlock(&h->lock);
	return NULL;
}

struct wg_handoff *wg_handoff_new(wg_handoff_fn run, void *ctx)
{
	struct wg_handoff *h = calloc(1, sizeof(*h));
	int err;

	if (!h)
		return NULL;
	h->run = run;
	h->ctx = ctx;
	pthread_mutex_init(&h->lock, NULL);
	pthread_cond_init(&h->job_ready, NULL);
	pthread_cond_init(&h->job_done, NULL);
	err = pthread_create(&h->thread, NULL, handoff_main, h);
	if (err) {
		pthread_cond_destroy(&h->job_done);
		pthread_cond_destroy(&h->job_ready);
		pthread_mutex_destroy(&h->lock);
		free(h);
		errno = err;
		return NULL;
	}
	return h;
}

/* With the lock held. */
static void *wait_locked(struct wg_handoff *h)
{
	void *done = h->job;

	while (h->job) {
		h->caller_sleeping = true;
		pthread_cond_wait(&h->job_done, &h->lock);
		h->caller_sleeping = false;
	}
	return done;
}

void *wg_handoff_wait(struct wg_handoff *h)
{
	void *done;

	pthread_mutex_lock(&h->lock);
	done = wait_locked(h);
	pthread_mutex_unlock(&h->lock);
	return done;
}

void *wg_handoff_submit(struct wg_handoff *h, void *job)
{
	void *done;

	pthread_mutex_lock(&h->lock);
	done = wait_locked(h);
	h->job = job;
	if (h->thread_sleeping)
		pthread_cond_signal(&h->job_ready);
	pthread_mutex_unlock(&h->lock);
	return done;
}

void wg_handoff_free(struct wg_handoff *h)
{
	if (!h)
		return;
	pthread_mutex_lock(&h->lock);
	wait_locked(h);
	h->stopping = true;
	pthread_cond_signal(&h->job_ready);
	pthread_mutex_unlock(&h->lock);
	pthread_join(h->thread, NULL);
	pthread_cond_destroy(&h->job_done);
	pthread_cond_destroy(&h->job_ready);
	pthread_mutex_destroy(&h->lock);
	free(h);
}
