/* The hand-off thread: every job runs exactly once, in submission order, with its effects visible to the
 * caller once the job is taken back; the caller learns which job finished; freeing waits for the job in
 * flight (also run under TSan: publication is by the hand-off's mutex alone, the jobs use no atomics). */
#include <time.h>
#include "test.h"
#include "wg/io/handoff.h"

enum { JOBS = 2000 };

struct job {
	int seq;
	int ran;          /* times run() saw it */
	int order;        /* position among all runs */
	long sum;         /* written by the thread, read by the caller after taking it back */
};

struct log {
	int runs;
	const struct job *last;
	bool out_of_order;
};

static void run_job(void *ctx, void *p)
{
	struct log *log = ctx;
	struct job *j = p;

	if (log->last && log->last->seq + 1 != j->seq)
		log->out_of_order = true;
	j->ran++;
	j->order = log->runs++;
	for (int i = 0; i <= j->seq % 50; i++)
		j->sum += i;
	log->last = j;
}

static long expected_sum(int seq)
{
	long s = 0;

	for (int i = 0; i <= seq % 50; i++)
		s += i;
	return s;
}

static void test_jobs_run_once_in_order(void)
{
	static struct job jobs[JOBS];
	struct log log = { 0 };
	struct wg_handoff *h = wg_handoff_new(run_job, &log);
	void *done;

	CHECK(h != NULL);
	for (int i = 0; i < JOBS; i++) {
		jobs[i].seq = i;
		done = wg_handoff_submit(h, &jobs[i]);
		/* Whatever came back is finished and fully visible here. */
		if (done) {
			const struct job *d = done;

			CHECK(d == &jobs[i - 1]);
			CHECK(d->ran == 1);
			CHECK(d->sum == expected_sum(d->seq));
		}
	}
	done = wg_handoff_wait(h);
	CHECK(done == &jobs[JOBS - 1]);
	CHECK(wg_handoff_wait(h) == NULL);     /* nothing in flight any more */
	for (int i = 0; i < JOBS; i++) {
		CHECK(jobs[i].ran == 1);
		CHECK(jobs[i].order == i);
		CHECK(jobs[i].sum == expected_sum(i));
	}
	CHECK(log.runs == JOBS);
	CHECK(!log.out_of_order);
	wg_handoff_free(h);
}

static void slow_job(void *ctx, void *p)
{
	struct timespec ts = { 0, 20 * 1000 * 1000 };
	int *finished = p;

	nanosleep(&ts, NULL);
	*finished = 1;
}

static void test_free_waits_for_the_job_in_flight(void)
{
	int finished = 0;
	struct wg_handoff *h = wg_handoff_new(slow_job, NULL);

	CHECK(h != NULL);
	CHECK(wg_handoff_submit(h, &finished) == NULL);
	wg_handoff_free(h);
	CHECK(finished == 1);
	wg_handoff_free(NULL);
}

static void test_idle_thread_stops(void)
{
	struct log log = { 0 };
	struct wg_handoff *h = wg_handoff_new(run_job, &log);

	CHECK(h != NULL);
	CHECK(wg_handoff_wait(h) == NULL);
	wg_handoff_free(h);
	CHECK(log.runs == 0);
}

int main(void)
{
	TEST_RUN(test_jobs_run_once_in_order);
	TEST_RUN(test_free_waits_for_the_job_in_flight);
	TEST_RUN(test_idle_thread_stops);
	return TEST_SUMMARY();
}
