/* Timers on the engine loop: see timer.h. */
#include "overlayd/timer.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>
#include "overlayd/log.h"

enum { MAX_FIRES_PER_EVENT = 256 };  /* keeps one wakeup bounded when many timers are due */

uint64_t od_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void rearm_fd(struct od_timers *ts)
{
	struct itimerspec its;

	memset(&its, 0, sizeof(its));
	if (ts->head) {
		uint64_t due = ts->head->due_ns ? ts->head->due_ns : 1;  /* 0 would disarm */

		its.it_value.tv_sec = (time_t)(due / 1000000000ull);
		its.it_value.tv_nsec = (long)(due % 1000000000ull);
	}
	if (timerfd_settime(ts->fd, TFD_TIMER_ABSTIME, &its, NULL) < 0)
		od_error("timer.error", "err=%s", od_q(strerror(errno)));
}

static void unlink_timer(struct od_timers *ts, struct od_timer *t)
{
	for (struct od_timer **pp = &ts->head; *pp; pp = &(*pp)->next) {
		if (*pp == t) {
			*pp = t->next;
			break;
		}
	}
	t->next = NULL;
	t->armed = false;
}

void od_timer_init(struct od_timer *t, od_timer_fn fn)
{
	memset(t, 0, sizeof(*t));
	t->fn = fn;
}

void od_timer_arm(struct od_timers *ts, struct od_timer *t, uint64_t delay_ms)
{
	struct od_timer **pp = &ts->head;

	if (t->armed)
		unlink_timer(ts, t);
	t->due_ns = od_now_ns() + delay_ms * 1000000ull;
	while (*pp && (*pp)->due_ns <= t->due_ns)
		pp = &(*pp)->next;
	t->next = *pp;
	*pp = t;
	t->armed = true;
	if (ts->head == t)
		rearm_fd(ts);
}

void od_timer_cancel(struct od_timers *ts, struct od_timer *t)
{
	bool was_head = ts->head == t;

	if (!t->armed)
		return;
	unlink_timer(ts, t);
	if (was_head)
		rearm_fd(ts);
}

static void reap(struct od_timer *t)
{
	struct od_timers *ts = wg_container_of(t, struct od_timers, reaper);
	struct od_deferred *d = ts->graveyard;

	ts->graveyard = NULL;
	while (d) {
		struct od_deferred *next = d->next;

		d->free_fn(d->obj);
		free(d);
		d = next;
	}
}

int od_timers_defer(struct od_timers *ts, void (*free_fn)(void *obj), void *obj)
{
	struct od_deferred *d = malloc(sizeof(*d));

	if (!d) {
		free_fn(obj);
		return -ENOMEM;
	}
	d->free_fn = free_fn;
	d->obj = obj;
	d->next = ts->graveyard;
	ts->graveyard = d;
	if (!ts->reaper.armed)
		od_timer_arm(ts, &ts->reaper, 0);
	return 0;
}

static void on_timerfd(struct wg_loop_source *src, uint32_t events)
{
	struct od_timers *ts = wg_container_of(src, struct od_timers, src);
	uint64_t expirations, now = od_now_ns();

	if (read(ts->fd, &expirations, sizeof(expirations)) < 0) {
		/* EAGAIN: a re-arm raced the wakeup; the list below is the truth */
	}
	for (int i = 0; i < MAX_FIRES_PER_EVENT && ts->head && ts->head->due_ns <= now; i++) {
		struct od_timer *t = ts->head;

		/* Unlinked before the call: the callback may re-arm it or free its owner. */
		unlink_timer(ts, t);
		t->fn(t);
	}
	rearm_fd(ts);
}

int od_timers_init(struct od_timers *ts, struct wg_loop *loop)
{
	int err;

	memset(ts, 0, sizeof(*ts));
	ts->loop = loop;
	ts->src.fd = -1;
	od_timer_init(&ts->reaper, reap);
	ts->fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (ts->fd < 0)
		return -errno;
	err = wg_loop_add(loop, &ts->src, ts->fd, EPOLLIN, on_timerfd);
	if (err) {
		close(ts->fd);
		ts->fd = -1;
	}
	return err;
}

void od_timers_destroy(struct od_timers *ts)
{
	reap(&ts->reaper);
	if (ts->fd >= 0) {
		wg_loop_del(ts->loop, &ts->src);
		close(ts->fd);
	}
	ts->fd = -1;
	ts->head = NULL;
}
