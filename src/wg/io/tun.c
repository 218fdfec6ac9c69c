/* The TUN device: see tun.h. */
#include "wg/io/tun.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>
#include "wg/io/log.h"
#include "wg/io/tun_offload.h"

enum {
	/* One byte more than the largest record accepted, so an oversized one shows as such. */
	TUN_RBUF = WG_VNET_HDR_LEN + WG_OFFLOAD_MAX_INPUT + 1,
	TUN_SEGBUF = WG_OFFLOAD_MAX_PACKET,
	TUN_WQ_ARENA = 256 << 10,       /* a full batch of MTU-sized packets, or a few jumbo ones */
};

/* Packets queued for coalescing: pkts[] point into arena. */
struct wg_tun_wq {
	int count;
	size_t used;
	struct wg_gro_pkt pkts[WG_GRO_MAX_PKTS];
	struct wg_offload_gro gro;
	struct iovec iov[WG_GRO_MAX_IOV];
	uint8_t hdr[WG_GRO_HDR_BUF];
	uint8_t arena[TUN_WQ_ARENA];
};

_Static_assert(WG_TUN_F_CSUM == TUN_F_CSUM && WG_TUN_F_TSO4 == TUN_F_TSO4 && WG_TUN_F_TSO6 == TUN_F_TSO6,
	       "TUNSETOFFLOAD flags");
#ifdef TUN_F_USO4
_Static_assert(WG_TUN_F_USO4 == TUN_F_USO4 && WG_TUN_F_USO6 == TUN_F_USO6, "TUNSETOFFLOAD USO flags");
#endif

static const char tun_clone_path[] = "/dev/net/tun";
static const uint8_t empty_vnet_hdr[WG_VNET_HDR_LEN];

/* Interface ioctls (MTU, index) need some socket of the current network namespace; any family does. */
static int ifreq_ioctl(unsigned long req, struct ifreq *ifr)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int err = 0;

	if (fd < 0)
		fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (ioctl(fd, req, ifr) < 0)
		err = -errno;
	close(fd);
	return err;
}

static void ifreq_name(struct ifreq *ifr, const char *name)
{
	memset(ifr, 0, sizeof(*ifr));
	memcpy(ifr->ifr_name, name, strnlen(name, IFNAMSIZ - 1));
}

int wg_tun_set_mtu(const char *name, unsigned mtu)
{
	struct ifreq ifr;

	ifreq_name(&ifr, name);
	ifr.ifr_mtu = (int)mtu;
	return ifreq_ioctl(SIOCSIFMTU, &ifr);
}

int wg_tun_get_mtu(const struct wg_tun *t)
{
	struct ifreq ifr;
	int err;

	ifreq_name(&ifr, t->name);
	err = ifreq_ioctl(SIOCGIFMTU, &ifr);
	return err ? err : ifr.ifr_mtu;
}

/* --- opening, and the offload probe */

static int attach(struct wg_tun *t, const char *name, bool vnet)
{
	struct ifreq ifr;

	t->fd = open(tun_clone_path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (t->fd < 0)
		return -errno;
	ifreq_name(&ifr, name);
	ifr.ifr_flags = IFF_TUN | IFF_NO_PI | (vnet ? IFF_VNET_HDR : 0);
	if (ioctl(t->fd, TUNSETIFF, &ifr) < 0) {
		int err = -errno;

		close(t->fd);
		t->fd = -1;
		return err;
	}
	memcpy(t->name, ifr.ifr_name, IFNAMSIZ);
	t->name[IFNAMSIZ - 1] = '\0';
	t->vnet = vnet;
	return 0;
}

/* Asks for the most the kernel offers: USO (Linux >= 6.2) is refused with EINVAL by older kernels. */
static bool enable_offloads(struct wg_tun *t)
{
	static const unsigned tries[] = {
		WG_TUN_F_CSUM | WG_TUN_F_TSO4 | WG_TUN_F_TSO6 | WG_TUN_F_USO4 | WG_TUN_F_USO6,
		WG_TUN_F_CSUM | WG_TUN_F_TSO4 | WG_TUN_F_TSO6,
	};
	int hdr_size = WG_VNET_HDR_LEN;

	/* A persistent device may have been left with another header size. */
	if (ioctl(t->fd, TUNSETVNETHDRSZ, &hdr_size) < 0)
		return false;
	for (size_t i = 0; i < sizeof(tries) / sizeof(tries[0]); i++) {
		if (ioctl(t->fd, TUNSETOFFLOAD, (unsigned long)tries[i]) == 0) {
			t->offloads = tries[i];
			return true;
		}
	}
	return false;
}

static int alloc_offload_buffers(struct wg_tun *t)
{
	t->seg = malloc(TUN_SEGBUF);
	t->wq = malloc(sizeof(*t->wq));
	if (!t->seg || !t->wq)
		return -ENOMEM;
	t->wq->count = 0;
	t->wq->used = 0;
	return 0;
}

/* The offload path when the kernel takes it, else the plain one. A device refusing the offloads is
 * reopened without IFF_VNET_HDR (the flag cannot be dropped from an attached fd). */
static int attach_probing(struct wg_tun *t, const char *name, bool offload)
{
	int err;

	if (offload && attach(t, name, true) == 0) {
		if (enable_offloads(t))
			return alloc_offload_buffers(t);
		close(t->fd);
		t->fd = -1;
		t->vnet = false;
	}
	err = attach(t, name, false);
	t->offloads = 0;
	return err;
}

int wg_tun_open(struct wg_tun *t, const char *name, unsigned mtu, bool offload)
{
	struct ifreq ifr;
	int err;

	memset(t, 0, sizeof(*t));
	t->fd = -1;
	if (strlen(name) >= IFNAMSIZ)
		return -EINVAL;
	t->rbuf = malloc(TUN_RBUF);
	if (!t->rbuf)
		return -ENOMEM;
	if ((err = attach_probing(t, name, offload)) != 0)
		goto fail;
	t->gro = t->vnet;
	/* UDP super-packets (GSO_UDP_L4) are only understood by kernels with USO. */
	t->gro_udp = (t->offloads & (WG_TUN_F_USO4 | WG_TUN_F_USO6)) == (WG_TUN_F_USO4 | WG_TUN_F_USO6);
	ifreq_name(&ifr, t->name);
	if ((err = ifreq_ioctl(SIOCGIFINDEX, &ifr)) != 0)
		goto fail;
	t->ifindex = ifr.ifr_ifindex;
	if (mtu && (err = wg_tun_set_mtu(t->name, mtu)) != 0)
		goto fail;
	return 0;
fail:
	wg_tun_close(t);
	return err;
}

void wg_tun_close(struct wg_tun *t)
{
	/* Closing the last fd of a non-persistent TUN device deletes the interface. */
	if (t->fd >= 0)
		close(t->fd);
	t->fd = -1;
	t->vnet = false;
	t->gro = false;
	free(t->rbuf);
	free(t->seg);
	free(t->wq);
	t->rbuf = NULL;
	t->seg = NULL;
	t->wq = NULL;
}

/* --- reading */

/* One record of the offload path: vnet header, then a packet, a super-packet to split, or a packet whose
 * checksum the kernel left to us. Returns the number of packets handed over. */
static int deliver_vnet(struct wg_tun *t, uint8_t *rec, size_t len, const struct wg_tun_sink *sink)
{
	struct wg_offload_gso g;
	struct wg_vnet_hdr h;
	uint8_t *pkt = rec + WG_VNET_HDR_LEN;

	if (len <= WG_VNET_HDR_LEN || len >= TUN_RBUF)
		goto drop;
	len -= WG_VNET_HDR_LEN;
	wg_vnet_hdr_decode(&h, rec);
	if (h.gso_type == WG_VNET_GSO_NONE) {
		if (h.flags & WG_VNET_F_NEEDS_CSUM) {
			if (!wg_offload_csum_complete(pkt, len, h.csum_start, h.csum_offset))
				goto drop;
			t->stats.rx_csum_completed++;
		}
		sink->commit(sink->ctx, pkt, len);
		return 1;
	}
	if (!wg_offload_gso_parse(&g, &h, pkt, len))
		goto drop;
	t->stats.rx_super++;
	t->stats.rx_segments += g.count;
	for (unsigned i = 0; i < g.count; i++) {
		uint8_t *out = sink->reserve ? sink->reserve(sink->ctx, (size_t)g.hdr_len + g.gso_size) : NULL;

		if (!out)
			out = t->seg;
		sink->commit(sink->ctx, out, wg_offload_gso_segment(&g, i, out));
	}
	return (int)g.count;
drop:
	t->stats.rx_dropped++;
	wg_log_debug_rl("%s: dropped a malformed offload packet (%zu bytes)", t->name, len);
	return 0;
}

int wg_tun_read_batch(struct wg_tun *t, const struct wg_tun_sink *sink)
{
	int reads = 0, delivered = 0;

	while (reads < WG_TUN_BATCH) {
		ssize_t r = read(t->fd, t->rbuf, t->vnet ? TUN_RBUF : WG_OFFLOAD_MAX_PACKET);

		if (r > 0) {
			reads++;
			if (t->vnet) {
				delivered += deliver_vnet(t, t->rbuf, (size_t)r, sink);
			} else {
				sink->commit(sink->ctx, t->rbuf, (size_t)r);
				delivered++;
			}
			continue;
		}
		if (r == 0)     /* not expected from a TUN device; treat like "nothing pending" */
			break;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN)
			break;
		/* Report a dead device even after a partial batch: the packets read are still valid, and
		 * the next call (the fd stays readable with an error) reports the failure. */
		if (reads)
			break;
		return -errno;
	}
	return delivered;
}

/* --- writing */

static int writev_tun(struct wg_tun *t, const struct iovec *iov, int n)
{
	for (;;) {
		if (writev(t->fd, iov, n) >= 0)
			return 0;
		if (errno != EINTR) {
			t->stats.tx_errors++;
			return -errno;
		}
	}
}

int wg_tun_write(struct wg_tun *t, const uint8_t *packet, size_t len)
{
	struct iovec iov[2] = {
		{ .iov_base = (void *)empty_vnet_hdr, .iov_len = WG_VNET_HDR_LEN },
		{ .iov_base = (void *)packet, .iov_len = len },
	};

	return t->vnet ? writev_tun(t, iov, 2) : writev_tun(t, iov + 1, 1);
}

/* The error a caller must see: a deleted interface over anything else, else the first one. */
static int worse(int err, int next)
{
	return next == -EBADFD || !err ? next : err;
}

/* The kernel should take any super-packet we build; if it ever refuses one (EINVAL), coalescing stops
 * for good and the members go one by one, so traffic keeps flowing. */
static int write_members(struct wg_tun *t, const struct wg_gro_group *grp)
{
	struct wg_tun_wq *q = t->wq;
	int err = 0;

	if (t->gro)
		wg_log_error("%s: the kernel refused a coalesced packet; write coalescing is now off", t->name);
	t->gro = false;
	for (int m = grp->first; m >= 0 && err != -EBADFD; m = q->gro.next[m])
		err = worse(err, wg_tun_write(t, q->pkts[m].data, q->pkts[m].len));
	return err;
}

static int write_group(struct wg_tun *t, int k)
{
	struct wg_tun_wq *q = t->wq;
	const struct wg_gro_group *grp = &q->gro.groups[k];
	int n = wg_offload_gro_iov(&q->gro, k, q->pkts, q->hdr, q->iov);
	int err = writev_tun(t, q->iov, n);

	if (grp->count == 1)
		return err;
	if (err == -EINVAL)
		return write_members(t, grp);
	if (!err) {
		t->stats.tx_super++;
		t->stats.tx_coalesced += grp->count;
	}
	return err;
}

int wg_tun_flush(struct wg_tun *t)
{
	struct wg_tun_wq *q = t->wq;
	int err = 0;

	if (!q || !q->count)
		return 0;
	if (t->gro) {
		wg_offload_gro_plan(&q->gro, q->pkts, q->count, t->gro_udp);
		for (int k = 0; k < q->gro.ngroups && err != -EBADFD; k++)
			err = worse(err, write_group(t, k));
	} else {
		for (int i = 0; i < q->count && err != -EBADFD; i++)
			err = worse(err, wg_tun_write(t, q->pkts[i].data, q->pkts[i].len));
	}
	q->count = 0;
	q->used = 0;
	return err;
}

int wg_tun_queue(struct wg_tun *t, const uint8_t *packet, size_t len)
{
	struct wg_tun_wq *q = t->wq;
	int err = 0;

	if (!q || len > TUN_WQ_ARENA)
		return wg_tun_write(t, packet, len);
	if (q->count == WG_GRO_MAX_PKTS || q->used + len > TUN_WQ_ARENA)
		err = wg_tun_flush(t);
	memcpy(q->arena + q->used, packet, len);
	q->pkts[q->count++] = (struct wg_gro_pkt){ .data = q->arena + q->used, .len = len };
	q->used += len;
	return err;
}

int wg_tun_queue_ref(struct wg_tun *t, const uint8_t *packet, size_t len)
{
	struct wg_tun_wq *q = t->wq;
	int err = 0;

	if (!q)
		return wg_tun_write(t, packet, len);
	if (q->count == WG_GRO_MAX_PKTS)
		err = wg_tun_flush(t);
	q->pkts[q->count++] = (struct wg_gro_pkt){ .data = packet, .len = len };
	return err;
}

bool wg_tun_attached(const struct wg_tun *t)
{
	struct ifreq ifr;

	memset(&ifr, 0, sizeof(ifr));
	/* TUNGETIFF fails with EBADFD once the interface has been unregistered. */
	return t->fd >= 0 && ioctl(t->fd, TUNGETIFF, &ifr) == 0;
}
