/* The userspace WireGuard engine: one wg_device wired to a TUN interface, a UDP port (IPv4 + IPv6), the
 * UAPI socket, an rtnetlink watch of the interface, and the device's timers, all driven by one epoll
 * loop on the thread that calls wg_engine_run. zl-wg is a thin program around it; the overlay daemon
 * embeds it in-process.
 *
 * Threading: everything but wg_engine_stop runs on the loop thread. The device (wg_engine_device) may be
 * configured from that thread only (e.g. from a source added to wg_engine_loop), or while the loop is
 * not running. wg_engine_stop may be called from any thread and from a signal handler.
 *
 * Clock: the device's monotonic clock is CLOCK_BOOTTIME, which keeps counting during suspend, so that
 * key lifetimes (REJECT_AFTER_TIME...) hold across a suspended machine as in the kernel's WireGuard. */
#ifndef WG_IO_ENGINE_H
#define WG_IO_ENGINE_H
#include <stdbool.h>
#include <stdint.h>
#include "wg/core/device.h"
#include "wg/io/loop.h"

struct wg_engine_options {
	unsigned mtu;            /* TUN MTU set at creation; 0 = WG_DEFAULT_MTU (1420) */
	uint16_t listen_port;    /* initial UDP port; 0 = random (UAPI listen_port changes it) */
	const char *uapi_dir;    /* NULL = /var/run/wireguard */
	bool no_uapi;            /* no UAPI socket: the embedding program configures the device itself */
};

enum wg_engine_stop_reason {
	WG_ENGINE_RUNNING = 0,
	WG_ENGINE_STOP_REQUESTED,    /* wg_engine_stop (signal, embedding program) */
	WG_ENGINE_STOP_TUN_GONE,     /* the interface was deleted */
	WG_ENGINE_STOP_UAPI_GONE,    /* the UAPI socket file was removed */
	WG_ENGINE_STOP_ERROR,        /* the event loop failed */
};

struct wg_engine;

/* Creates the TUN interface ifname, the device and its UDP sockets and (unless no_uapi) the UAPI socket;
 * when it returns non-NULL, `wg` can already talk to the interface. opts may be NULL. On failure NULL,
 * *err = -errno, and the reason has been logged (e.g. -EADDRINUSE: another instance owns the interface;
 * -EPERM: no CAP_NET_ADMIN). */
struct wg_engine *wg_engine_new(const char *ifname, const struct wg_engine_options *opts, int *err);
/* Runs until stopped (see enum wg_engine_stop_reason). 0 after a stop, -errno if the loop failed. */
int wg_engine_run(struct wg_engine *e);
/* Async-signal-safe and thread-safe; the loop stops at its next round. Before wg_engine_run, it makes
 * the next run return at once. */
void wg_engine_stop(struct wg_engine *e);
/* Removes the UAPI socket, deletes the interface (closing its TUN fd), frees everything. */
void wg_engine_free(struct wg_engine *e);

struct wg_device *wg_engine_device(struct wg_engine *e);
/* The loop, for an embedding program's own file descriptors. */
struct wg_loop *wg_engine_loop(struct wg_engine *e);
/* The kernel's name of the interface. */
const char *wg_engine_ifname(const struct wg_engine *e);
enum wg_engine_stop_reason wg_engine_stop_reason(const struct wg_engine *e);
const char *wg_engine_stop_reason_name(enum wg_engine_stop_reason reason);
#endif
