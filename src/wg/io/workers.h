/* A pool of crypto worker threads for the data path. The event-loop thread hands it one batch of
 * independent AEAD jobs at a time (wg_io_ops.run_crypto_jobs) and works on the batch too; the call
 * returns when every job is done, so the order in which packets leave is decided by the caller alone. */
#ifndef WG_IO_WORKERS_H
#define WG_IO_WORKERS_H
#include <stddef.h>
#include "wg/core/crypto.h"

struct wg_workers;

/* threads: helper threads besides the caller (0 = run everything on the caller). NULL on failure. */
struct wg_workers *wg_workers_new(unsigned threads);
void wg_workers_free(struct wg_workers *w);
/* Runs jobs[0..n) and returns when all are done. Called from one thread at a time. */
void wg_workers_run(struct wg_workers *w, struct wg_crypto_job *jobs, size_t n);
/* Helper threads to use by default: ZL_WG_THREADS if set, else half the online CPUs minus the caller
 * (none below 4 CPUs). */
unsigned wg_workers_default_threads(void);
#endif
