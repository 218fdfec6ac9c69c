/* The engine: glue between the device's callbacks and the Linux I/O objects. See engine.h. */
#include "wg/io/engine.h"

#include <errno.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>
#include "wg/core/crypto.h"
#include "wg/io/env.h"
#include "wg/io/linkwatch.h"
#include "wg/io/log.h"
#include "wg/io/tun.h"
#include "wg/io/uapi_server.h"
#include "wg/io/udp.h"
#include "wg/io/workers.h"

enum {
	ENGINE_MAX_SLEEP_MS = 1000,
};
/* Timers run at least this often while packets keep the loop busy, and no earlier than needed when
 * idle: a timer armed by a packet is never due sooner than a second later (REKEY_TIMEOUT, keepalive
 * intervals), so this bounds the lateness without scanning the peers after every batch. */
#define ENGINE_TICK_INTERVAL_NS (10 * WG_NSEC_PER_MSEC)
#define ENGINE_PRESENCE_INTERVAL_NS WG_NSEC_PER_SEC

struct wg_engine {
	char ifname[IFNAMSIZ];
	struct wg_loop loop;
	struct wg_device *dev;

	struct wg_tun tun;
	struct wg_loop_source tun_src;
	unsigned mtu;
	bool link_up;

	struct wg_udp udp;
	bool udp_ready;
	struct wg_workers *workers;         /* crypto helper threads (ZL_WG_THREADS) */
	bool handshakes_pending;            /* the device still has queued handshakes: don't sleep */
	struct wg_linkwatch link;
	bool link_open;
	struct wg_uapi_server uapi;
	bool uapi_open;

	int stop_fd;                        /* eventfd: wg_engine_stop's only side effect */
	struct wg_loop_source stop_src;
	enum wg_engine_stop_reason reason;

	uint64_t next_deadline;             /* from the last wg_device_tick */
	uint64_t last_tick;
	uint64_t next_presence_check;
	bool busy_since_tick;               /* events were handled since the last tick */
};

static void set_stopped(struct wg_engine *e, enum wg_engine_stop_reason reason)
{
	if (e->reason == WG_ENGINE_RUNNING)
		e->reason = reason;
}

/* --- clocks */

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * WG_NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

static uint64_t mono_ns(void *ctx) { return clock_ns(CLOCK_BOOTTIME); }
static uint64_t wall_ns(void *ctx) { return clock_ns(CLOCK_REALTIME); }

/* --- device callbacks */

static int send_udp(void *ctx, const struct wg_endpoint *to, const uint8_t *data, size_t len, uint8_t dscp)
{
	struct wg_engine *e = ctx;

	return wg_udp_send(&e->udp, to, data, len, dscp);
}

/* Sealed data messages leave from the device's batch memory, which it reuses only after flush_udp. */
static int send_udp_ref(void *ctx, const struct wg_endpoint *to, const uint8_t *data, size_t len)
{
	struct wg_engine *e = ctx;

	return wg_udp_send_ref(&e->udp, to, data, len);
}

static void flush_udp(void *ctx)
{
	struct wg_engine *e = ctx;

	wg_udp_flush(&e->udp);
}

static void tun_gone(struct wg_engine *e)
{
	if (e->reason == WG_ENGINE_RUNNING)
		wg_log_info("interface %s was deleted", e->ifname);
	set_stopped(e, WG_ENGINE_STOP_TUN_GONE);
}

static void tun_write_failed(struct wg_engine *e, int err)
{
	if (!err)
		return;
	if (err == -EBADFD)
		tun_gone(e);
	else if (err == -EIO)   /* the interface is down: the kernel refuses packets, as it would drop them */
		wg_log_debug_rl("%s is down: dropped a received packet", e->ifname);
	else
		wg_log_error_rl("writing to %s: %s", e->ifname, strerror(-err));
}

/* Queued: the packets of one receive batch are coalesced and written at flush_tun. By reference: the
 * device delivers only from the datagrams of wg_device_udp_input_batch, decrypted in place in the UDP
 * receive buffers, and on_udp flushes before those buffers are reused. */
static void write_tun(void *ctx, const uint8_t *packet, size_t len)
{
	struct wg_engine *e = ctx;

	tun_write_failed(e, wg_tun_queue_ref(&e->tun, packet, len));
}

static void flush_tun(struct wg_engine *e)
{
	tun_write_failed(e, wg_tun_flush(&e->tun));
}

static int bind_port(void *ctx, uint16_t port, uint16_t *bound)
{
	struct wg_engine *e = ctx;
	int err = wg_udp_bind(&e->udp, port, bound);

	if (err)
		wg_log_error("cannot bind UDP port %u: %s", port, strerror(-err));
	return err;
}

static int set_fwmark(void *ctx, uint32_t mark)
{
	struct wg_engine *e = ctx;
	int err = wg_udp_set_fwmark(&e->udp, mark);

	if (err)
		wg_log_error("cannot set fwmark 0x%x: %s", mark, strerror(-err));
	return err;
}

/* --- event handlers */

static void on_udp(void *ctx, const struct wg_udp_rx_batch *b)
{
	struct wg_engine *e = ctx;
	struct wg_datagram datagrams[WG_UDP_RX_BATCH];

	for (int i = 0; i < b->count; i++)
		datagrams[i] = (struct wg_datagram){.data = b->bufs[i], .len = b->lens[i], .from = &b->from[i]};
	wg_device_udp_input_batch(e->dev, datagrams, (size_t)b->count);
	flush_tun(e);
}

/* The device hands each batch's crypto here: the loop thread and the helper threads share it. */
static void run_crypto_jobs(void *ctx, struct wg_crypto_job *jobs, size_t n)
{
	struct wg_engine *e = ctx;

	wg_workers_run(e->workers, jobs, n);
}

/* Segments of super-packets are cut straight into the slot where the device encrypts them. */
static uint8_t *tun_reserve(void *ctx, size_t max)
{
	struct wg_engine *e = ctx;

	return wg_device_tun_reserve(e->dev, max);
}

static void tun_commit(void *ctx, const uint8_t *packet, size_t len)
{
	struct wg_engine *e = ctx;

	wg_device_tun_commit(e->dev, packet, len);
}

/* One batch for the device per wakeup: the crypto of every packet read (the segments of super-packets
 * included) runs together, and the datagrams leave together, at wg_device_end_batch. */
static void on_tun(struct wg_loop_source *src, uint32_t events)
{
	struct wg_engine *e = wg_container_of(src, struct wg_engine, tun_src);
	const struct wg_tun_sink sink = { .ctx = e, .reserve = tun_reserve, .commit = tun_commit };
	int n;

	wg_device_begin_batch(e->dev);
	n = wg_tun_read_batch(&e->tun, &sink);
	wg_device_end_batch(e->dev);

	if (n < 0) {
		if (n == -EBADFD || n == -EIO || !wg_tun_attached(&e->tun))
			tun_gone(e);
		else
			wg_log_error_rl("reading from %s: %s", e->ifname, strerror(-n));
	}
}

static void on_link(void *ctx, const struct wg_link_event *ev)
{
	struct wg_engine *e = ctx;
	int mtu;

	switch (ev->type) {
	case WG_LINK_DELETED:
	case WG_LINK_RESYNC:
		/* Deleted, or moved to another namespace (the fd still works there): only the fd knows. */
		if (!wg_tun_attached(&e->tun)) {
			tun_gone(e);
			return;
		}
		if (ev->type == WG_LINK_DELETED) {
			/* Its index here may now be reused by an unrelated interface: stop listening for it. */
			e->link.ifindex = 0;
			wg_log_info("interface %s left this network namespace; still running", e->ifname);
			return;
		}
		mtu = wg_tun_get_mtu(&e->tun);
		if (mtu > 0 && (unsigned)mtu != e->mtu) {
			e->mtu = (unsigned)mtu;
			wg_device_set_mtu(e->dev, e->mtu);
		}
		return;
	case WG_LINK_CHANGED:
		if (ev->mtu && ev->mtu != e->mtu) {
			wg_log_debug("%s: MTU %u", e->ifname, ev->mtu);
			e->mtu = ev->mtu;
			wg_device_set_mtu(e->dev, e->mtu);
		}
		if (ev->up != e->link_up) {
			e->link_up = ev->up;
			wg_log_info("interface %s is %s", e->ifname, ev->up ? "up" : "down");
		}
		return;
	}
}

static void on_stop(struct wg_loop_source *src, uint32_t events)
{
	struct wg_engine *e = wg_container_of(src, struct wg_engine, stop_src);
	uint64_t v;

	if (read(src->fd, &v, sizeof(v)) < 0) {
		/* EAGAIN: already consumed; the request is recorded below either way */
	}
	set_stopped(e, WG_ENGINE_STOP_REQUESTED);
}

static void on_uapi_gone(void *ctx)
{
	struct wg_engine *e = ctx;

	if (e->reason == WG_ENGINE_RUNNING)
		wg_log_info("UAPI socket %s was removed", e->uapi.path);
	set_stopped(e, WG_ENGINE_STOP_UAPI_GONE);
}

/* After every handler: what the handler produced leaves in one sendmmsg per socket (and nothing stays
 * in the TUN write queue, whichever handler filled it). */
static void after_event(void *ctx)
{
	struct wg_engine *e = ctx;

	e->busy_since_tick = true;
	/* A few queued handshakes per round, between data batches (see wg_device_process_handshakes). */
	e->handshakes_pending = wg_device_process_handshakes(e->dev) > 0;
	wg_udp_flush(&e->udp);
	flush_tun(e);
}

/* --- construction */

static const char *tun_error_hint(int err)
{
	switch (err) {
	case -EPERM:
	case -EACCES: return " (zl-wg must run as root or with CAP_NET_ADMIN)";
	case -ENOENT:
	case -ENODEV: return " (is /dev/net/tun present and the tun module loaded?)";
	case -EBUSY: return " (the interface is in use by another process)";
	case -EINVAL: return " (an interface of that name exists and is not a compatible TUN device)";
	default: return "";
	}
}

/* ZL_WG_OFFLOAD=0 forces the plain TUN path (so both paths stay testable); default: probe offloads. */
static bool offload_wanted(void)
{
	return wg_env_switch("ZL_WG_OFFLOAD", true);
}

static void log_offloads(const struct wg_engine *e, bool wanted)
{
	unsigned f = e->tun.offloads;

	if (!wanted)
		wg_log_debug("%s: TUN offloads off (ZL_WG_OFFLOAD)", e->ifname);
	else if (!f)
		wg_log_debug("%s: TUN offloads refused by the kernel; plain path", e->ifname);
	else
		wg_log_debug("%s: TUN offloads:%s%s%s%s%s", e->ifname, f & WG_TUN_F_CSUM ? " csum" : "",
			     f & WG_TUN_F_TSO4 ? " tso4" : "", f & WG_TUN_F_TSO6 ? " tso6" : "",
			     f & WG_TUN_F_USO4 ? " uso4" : "", f & WG_TUN_F_USO6 ? " uso6" : "");
}

static int open_tun(struct wg_engine *e, const char *ifname, unsigned mtu)
{
	bool offload = offload_wanted();
	int err = wg_tun_open(&e->tun, ifname, mtu, offload);

	if (err) {
		wg_log_error("cannot create TUN device %s: %s%s", ifname, strerror(-err), tun_error_hint(err));
		return err;
	}
	memcpy(e->ifname, e->tun.name, sizeof(e->ifname));
	e->mtu = mtu;
	log_offloads(e, offload);
	return wg_loop_add(&e->loop, &e->tun_src, e->tun.fd, EPOLLIN, on_tun);
}

static int open_stop_fd(struct wg_engine *e)
{
	e->stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (e->stop_fd < 0)
		return -errno;
	return wg_loop_add(&e->loop, &e->stop_src, e->stop_fd, EPOLLIN, on_stop);
}

static int open_device(struct wg_engine *e, uint16_t port)
{
	const struct wg_io_ops ops = {
		.ctx = e,
		.send_udp = send_udp,
		.send_udp_ref = send_udp_ref,
		.flush_udp = flush_udp,
		.write_tun = write_tun,
		.bind_port = bind_port,
		.set_fwmark = set_fwmark,
		.mono_ns = mono_ns,
		.wall_ns = wall_ns,
		.run_crypto_jobs = run_crypto_jobs,
	};
	int err = wg_udp_init(&e->udp, &e->loop, on_udp, e);

	if (err)
		return err;
	e->udp_ready = true;
	e->workers = wg_workers_new(wg_workers_default_threads());
	e->dev = wg_device_new(&ops);
	if (!e->dev || !e->workers)
		return -ENOMEM;
	wg_device_set_mtu(e->dev, e->mtu);
	return wg_device_set_listen_port(e->dev, port);
}

static void open_linkwatch(struct wg_engine *e)
{
	int err = wg_linkwatch_open(&e->link, &e->loop, e->tun.ifindex, on_link, e);

	/* Not fatal: a deleted interface is also seen as an error on the TUN fd. */
	if (err)
		wg_log_error("cannot watch interface %s through netlink: %s", e->ifname, strerror(-err));
	e->link_open = !err;
}

static int open_uapi(struct wg_engine *e, const struct wg_engine_options *o)
{
	int err = wg_uapi_server_open(&e->uapi, &e->loop, e->dev, o->uapi_dir, e->ifname, on_uapi_gone, e);

	if (err)
		wg_log_error("cannot create UAPI socket for %s in %s: %s", e->ifname,
			     o->uapi_dir ? o->uapi_dir : WG_UAPI_DEFAULT_DIR, strerror(-err));
	e->uapi_open = !err;
	return err;
}

/* Before anything is created: a second instance must fail with a clear message, not with EBUSY from
 * the interface the first one holds. */
static int check_uapi(const char *ifname, const struct wg_engine_options *o)
{
	int err = wg_uapi_server_check(o->uapi_dir, ifname);

	if (err == -EADDRINUSE)
		wg_log_error("interface %s already has a running instance", ifname);
	else if (err == -EEXIST)
		wg_log_error("%s/%s.sock exists and is not a socket; remove it first",
			     o->uapi_dir ? o->uapi_dir : WG_UAPI_DEFAULT_DIR, ifname);
	else if (err)
		wg_log_error("cannot use the UAPI socket for %s in %s: %s", ifname,
			     o->uapi_dir ? o->uapi_dir : WG_UAPI_DEFAULT_DIR, strerror(-err));
	return err;
}

static struct wg_engine *engine_alloc(void)
{
	struct wg_engine *e = calloc(1, sizeof(*e));

	if (!e)
		return NULL;
	e->loop.epfd = -1;
	e->tun.fd = -1;
	e->tun_src.fd = -1;
	e->stop_fd = -1;
	e->stop_src.fd = -1;
	return e;
}

static int engine_open(struct wg_engine *e, const char *ifname, const struct wg_engine_options *o)
{
	unsigned mtu = o->mtu ? o->mtu : WG_DEFAULT_MTU;
	int err;

	if (!*ifname || strlen(ifname) >= IFNAMSIZ)
		return -EINVAL;
	if (!wg_crypto_init())
		return -EIO;
	if ((err = wg_loop_init(&e->loop)) || (err = open_stop_fd(e)))
		return err;
	e->loop.after_event = after_event;
	e->loop.ctx = e;
	if (!o->no_uapi && (err = check_uapi(ifname, o)))
		return err;
	if ((err = open_tun(e, ifname, mtu)))
		return err;
	if ((err = open_device(e, o->listen_port)))
		return err;
	open_linkwatch(e);
	if (!o->no_uapi && (err = open_uapi(e, o)))
		return err;
	return 0;
}

struct wg_engine *wg_engine_new(const char *ifname, const struct wg_engine_options *opts, int *err)
{
	static const struct wg_engine_options defaults;
	struct wg_engine *e = engine_alloc();
	int ret;

	if (!e) {
		*err = -ENOMEM;
		return NULL;
	}
	ret = engine_open(e, ifname, opts ? opts : &defaults);
	if (ret) {
		wg_engine_free(e);
		*err = ret;
		return NULL;
	}
	wg_log_info("interface %s created (MTU %u, UDP port %u)%s%s", e->ifname, e->mtu,
		    wg_device_get_listen_port(e->dev), e->uapi_open ? ", UAPI socket " : "",
		    e->uapi_open ? e->uapi.path : "");
	*err = 0;
	return e;
}

/* --- running */

static int sleep_ms(struct wg_engine *e, uint64_t now)
{
	uint64_t until = e->next_presence_check;

	if (e->handshakes_pending)
		return 0;
	if (e->next_deadline < until)
		until = e->next_deadline;
	/* Packets handled since the last tick may have armed a timer: look again within the interval. */
	if (e->busy_since_tick && e->last_tick + ENGINE_TICK_INTERVAL_NS < until)
		until = e->last_tick + ENGINE_TICK_INTERVAL_NS;
	if (until <= now)
		return 0;
	if (until - now >= (uint64_t)ENGINE_MAX_SLEEP_MS * WG_NSEC_PER_MSEC)
		return ENGINE_MAX_SLEEP_MS;
	return (int)((until - now + WG_NSEC_PER_MSEC - 1) / WG_NSEC_PER_MSEC);
}

static void run_timers(struct wg_engine *e, uint64_t now)
{
	bool due = now >= e->next_deadline;

	if (!due && !(e->busy_since_tick && now - e->last_tick >= ENGINE_TICK_INTERVAL_NS))
		return;
	e->next_deadline = wg_device_tick(e->dev);
	e->last_tick = now;
	e->busy_since_tick = false;
	wg_udp_flush(&e->udp);
}

/* inotify normally reports a removed socket at once; this catches what it cannot (e.g. the whole
 * directory replaced by a bind mount). */
static void check_presence(struct wg_engine *e, uint64_t now)
{
	if (now < e->next_presence_check)
		return;
	e->next_presence_check = now + ENGINE_PRESENCE_INTERVAL_NS;
	if (e->uapi_open && !wg_uapi_server_present(&e->uapi))
		on_uapi_gone(e);
}

static void log_tun_stats(const struct wg_engine *e)
{
	const struct wg_tun_stats *s = &e->tun.stats;

	if (e->tun.vnet)
		wg_log_debug("%s: TUN offloads: read %llu super-packets (%llu segments), completed %llu "
			     "checksums, dropped %llu; wrote %llu super-packets of %llu packets; %llu write errors",
			     e->ifname,
			     (unsigned long long)s->rx_super, (unsigned long long)s->rx_segments,
			     (unsigned long long)s->rx_csum_completed, (unsigned long long)s->rx_dropped,
			     (unsigned long long)s->tx_super, (unsigned long long)s->tx_coalesced,
			     (unsigned long long)s->tx_errors);
}

int wg_engine_run(struct wg_engine *e)
{
	uint64_t now = mono_ns(e);

	e->next_deadline = 0;
	e->last_tick = now;
	e->next_presence_check = now + ENGINE_PRESENCE_INTERVAL_NS;
	while (e->reason == WG_ENGINE_RUNNING) {
		int n;

		now = mono_ns(e);
		run_timers(e, now);
		check_presence(e, now);
		if (e->handshakes_pending)
			after_event(e);
		if (e->reason != WG_ENGINE_RUNNING)
			break;
		n = wg_loop_wait(&e->loop, sleep_ms(e, mono_ns(e)));
		if (n < 0) {
			wg_log_error("event loop: %s", strerror(-n));
			set_stopped(e, WG_ENGINE_STOP_ERROR);
			return n;
		}
	}
	wg_udp_flush(&e->udp);
	flush_tun(e);
	log_tun_stats(e);
	wg_log_info("stopping %s: %s", e->ifname, wg_engine_stop_reason_name(e->reason));
	return 0;
}

void wg_engine_stop(struct wg_engine *e)
{
	uint64_t one = 1;

	/* write(2) on an eventfd is async-signal-safe; nothing else is touched. */
	if (e && e->stop_fd >= 0 && write(e->stop_fd, &one, sizeof(one)) < 0) {
		/* EAGAIN: the counter is saturated, a stop is pending anyway */
	}
}

void wg_engine_free(struct wg_engine *e)
{
	if (!e)
		return;
	if (e->uapi_open)
		wg_uapi_server_close(&e->uapi);
	if (e->link_open)
		wg_linkwatch_close(&e->link);
	if (e->udp_ready)
		wg_udp_flush(&e->udp);
	/* The device may hold pending key material; it goes before the sockets it could still use. */
	if (e->dev)
		wg_device_free(e->dev);
	wg_workers_free(e->workers);
	if (e->udp_ready)
		wg_udp_destroy(&e->udp);
	wg_loop_del(&e->loop, &e->tun_src);
	wg_tun_close(&e->tun);
	wg_loop_del(&e->loop, &e->stop_src);
	if (e->stop_fd >= 0)
		close(e->stop_fd);
	wg_loop_destroy(&e->loop);
	free(e);
}

struct wg_device *wg_engine_device(struct wg_engine *e) { return e->dev; }
struct wg_loop *wg_engine_loop(struct wg_engine *e) { return &e->loop; }
const char *wg_engine_ifname(const struct wg_engine *e) { return e->ifname; }
enum wg_engine_stop_reason wg_engine_stop_reason(const struct wg_engine *e) { return e->reason; }

const char *wg_engine_stop_reason_name(enum wg_engine_stop_reason reason)
{
	switch (reason) {
	case WG_ENGINE_RUNNING: return "running";
	case WG_ENGINE_STOP_REQUESTED: return "stop requested";
	case WG_ENGINE_STOP_TUN_GONE: return "interface deleted";
	case WG_ENGINE_STOP_UAPI_GONE: return "UAPI socket removed";
	case WG_ENGINE_STOP_ERROR: return "event loop failed";
	}
	return "?";
}
