/* Batch brackets around every entry point that moves packets (see device_internal.h): begin/end nest,
 * and the outermost end runs the pending crypto, sends and deliveries, then frees retired keypairs. */
#include "wg/core/device_internal.h"

void wg_batch_begin(struct wg_device *dev)
{
	if (!dev->batch_depth++)
		dev->batch_now = 0;
}

void wg_batch_end(struct wg_device *dev)
{
	if (--dev->batch_depth)
		return;
	/* Deliveries first: they may queue sends (staged data once a session is confirmed). Then a few
	 * queued handshakes, whose keepalives and staged data join the sends. */
	wg_rx_flush(dev);
	dev->batch_depth++;
	wg_handshakes_process(dev, WG_HANDSHAKES_PER_BATCH);
	dev->batch_depth--;
	wg_tx_flush(dev);
	wg_keypairs_free_retired(dev);
}

void wg_run_jobs(struct wg_device *dev, struct wg_crypto_job *jobs, size_t n)
{
	if (!n)
		return;
	if (dev->ops.run_crypto_jobs)
		dev->ops.run_crypto_jobs(dev->ops.ctx, jobs, n);
	else
		wg_crypto_jobs_run(jobs, n);
}

void wg_device_begin_batch(struct wg_device *dev) { wg_batch_begin(dev); }
void wg_device_end_batch(struct wg_device *dev) { wg_batch_end(dev); }

size_t wg_device_process_handshakes(struct wg_device *dev)
{
	wg_batch_begin(dev);
	wg_batch_end(dev);
	return dev->handshake_queue_count;
}
