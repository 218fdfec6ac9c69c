/* What the zl-overlayd unit tests share: an in-memory WireGuard device with no I/O, key pairs, and a
 * way to run the daemon's event loop until something has happened. */
#ifndef TEST_OVERLAYD_FIXTURE_H
#define TEST_OVERLAYD_FIXTURE_H
#include <stdbool.h>
#include <stdint.h>
#include <sodium.h>
#include "overlayd/timer.h"
#include "wg/core/device.h"
#include "wg/io/loop.h"

static inline int fake_send(void *ctx, const struct wg_endpoint *to, const uint8_t *d, size_t l, uint8_t dscp)
{
	return 0;
}
static inline void fake_tun(void *ctx, const uint8_t *p, size_t l) {}
static inline uint64_t fake_clock(void *ctx) { return 1000000000ull; }

/* A device whose packets go nowhere and whose clocks stand still at 1 s. */
static inline struct wg_device *fake_device(void)
{
	struct wg_io_ops ops = { .send_udp = fake_send, .write_tun = fake_tun, .mono_ns = fake_clock, .wall_ns = fake_clock };

	return wg_device_new(&ops);
}

static inline void keypair(uint8_t priv[32], uint8_t pub[32])
{
	randombytes_buf(priv, 32);
	crypto_scalarmult_base(pub, priv);
}

static inline int64_t now_ms(void)
{
	return (int64_t)(od_now_ns() / 1000000ull);
}

/* Runs the loop until cond(arg) or max_ms; returns cond's last value. */
static inline bool loop_until(struct wg_loop *loop, bool (*cond)(void *), void *arg, int max_ms)
{
	int64_t end = now_ms() + max_ms;

	while (!cond(arg)) {
		if (now_ms() >= end)
			return false;
		wg_loop_wait(loop, 20);
	}
	return true;
}
#endif
