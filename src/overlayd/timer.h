/* One-shot timers and deferred frees on the engine's event loop (which has no timer facility for
 * embedders): a sorted list of deadlines behind one timerfd armed for the earliest.
 *
 * Lifetimes: a timer is embedded in its owner; the owner cancels it before it goes away. A callback may
 * re-arm or cancel any timer, its own included, and may free its owner.
 *
 * Deferred free (od_timers_defer): the loop lets a handler free only its own source, because events of
 * other sources may still be pending in the same round. Objects that must go away from someone else's
 * handler (e.g. a member's connection closed by a control request) are unregistered from the loop at
 * once and freed here, from the timerfd handler of a later round. */
#ifndef OD_TIMER_H
#define OD_TIMER_H
#include <stdbool.h>
#include <stdint.h>
#include "wg/io/loop.h"

struct od_timer;
typedef void (*od_timer_fn)(struct od_timer *t);

struct od_timer {
	uint64_t due_ns;          /* CLOCK_MONOTONIC */
	od_timer_fn fn;
	bool armed;
	struct od_timer *next;
};

struct od_deferred {
	void (*free_fn)(void *obj);
	void *obj;
	struct od_deferred *next;
};

struct od_timers {
	int fd;
	struct wg_loop *loop;
	struct wg_loop_source src;
	struct od_timer *head;    /* armed timers, earliest first */
	struct od_deferred *graveyard;
	struct od_timer reaper;
};

uint64_t od_now_ns(void);

/* 0 or -errno. */
int od_timers_init(struct od_timers *ts, struct wg_loop *loop);
/* Frees what is deferred; armed timers are simply forgotten. */
void od_timers_destroy(struct od_timers *ts);

void od_timer_init(struct od_timer *t, od_timer_fn fn);
/* (Re)arms t to fire once, delay_ms from now. */
void od_timer_arm(struct od_timers *ts, struct od_timer *t, uint64_t delay_ms);
void od_timer_cancel(struct od_timers *ts, struct od_timer *t);

/* free_fn(obj) runs from a later loop round. 0 or -ENOMEM (then free_fn ran at once: the caller must
 * only use it for objects already unregistered from the loop). */
int od_timers_defer(struct od_timers *ts, void (*free_fn)(void *obj), void *obj);
#endif
