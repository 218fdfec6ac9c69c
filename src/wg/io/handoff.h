/* A hand-off thread with one job in flight: the caller submits a job and goes on with its own work
 * while the thread runs it, then waits for it before submitting the next. Used to take the TUN writes
 * (and with them the kernel's TCP processing of what is written) off the event-loop thread, so reading,
 * sealing and sending go on meanwhile on another core (see tun.h).
 *
 * Publication: the job is handed over and taken back under a mutex, so everything the caller wrote
 * before wg_handoff_submit is visible to run(), and everything run() wrote is visible to the caller
 * once wg_handoff_wait returns. One caller thread at a time. */
#ifndef WG_IO_HANDOFF_H
#define WG_IO_HANDOFF_H
#include <stdbool.h>

struct wg_handoff;
typedef void (*wg_handoff_fn)(void *ctx, void *job);

/* Starts the thread. NULL (errno set) when it cannot be created. */
struct wg_handoff *wg_handoff_new(wg_handoff_fn run, void *ctx);
/* Waits until no job is in flight. Returns the job that was in flight (done now), or NULL. */
void *wg_handoff_wait(struct wg_handoff *h);
/* Waits for the job in flight (returned as by wg_handoff_wait), then hands `job` to the thread. */
void *wg_handoff_submit(struct wg_handoff *h, void *job);
/* Waits for the job in flight, stops and joins the thread. NULL is accepted. */
void wg_handoff_free(struct wg_handoff *h);
#endif
