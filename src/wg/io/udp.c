/* UDP sockets: see udp.h. */
#include "wg/io/udp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "wg/io/log.h"

enum {
	UDP_SOCKBUF = 7 << 20,          /* large buffers absorb bursts between two loop rounds */
	UDP_TX_ARENA = 256 << 10,       /* room for a full batch of datagrams even at jumbo sizes */
	UDP_BIND_RANDOM_ATTEMPTS = 16,  /* port 0: tries to find a port free for both families */
	UDP_SEND_WAIT_MS = 50,          /* one wait for socket buffer space... */
	UDP_SEND_WAITS = 3,             /* ...and how many without progress before dropping */
};

union udp_addr {
	struct sockaddr sa;
	struct sockaddr_in in4;
	struct sockaddr_in6 in6;
};

struct wg_udp_rx {
	struct wg_udp_rx_batch batch;
	struct mmsghdr msgs[WG_UDP_RX_BATCH];
	struct iovec iov[WG_UDP_RX_BATCH];
	union udp_addr addr[WG_UDP_RX_BATCH];
	uint8_t data[WG_UDP_RX_BATCH][WG_UDP_MAX_DATAGRAM];
};

/* Queued datagrams of one socket: headers point into this struct, so it must not move while queued. */
struct wg_udp_txq {
	unsigned count;
	size_t used;
	struct mmsghdr msgs[WG_UDP_TX_BATCH];
	struct iovec iov[WG_UDP_TX_BATCH];
	union udp_addr addr[WG_UDP_TX_BATCH];
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl[WG_UDP_TX_BATCH];
	uint8_t arena[UDP_TX_ARENA];
};

static void on_readable(struct wg_loop_source *src, uint32_t events);

int wg_udp_init(struct wg_udp *u, struct wg_loop *loop, wg_udp_rx_fn rx, void *ctx)
{
	memset(u, 0, sizeof(*u));
	u->loop = loop;
	u->rx = rx;
	u->ctx = ctx;
	for (int f = 0; f < WG_UDP_FAMILIES; f++) {
		u->sock[f].src.fd = -1;
		u->sock[f].udp = u;
		u->txq[f] = calloc(1, sizeof(*u->txq[f]));
	}
	u->rxs = calloc(1, sizeof(*u->rxs));
	if (!u->rxs || !u->txq[WG_UDP_V4] || !u->txq[WG_UDP_V6]) {
		wg_udp_destroy(u);
		return -ENOMEM;
	}
	return 0;
}

static void close_sockets(struct wg_udp *u)
{
	for (int f = 0; f < WG_UDP_FAMILIES; f++) {
		int fd = u->sock[f].src.fd;

		if (fd < 0)
			continue;
		wg_loop_del(u->loop, &u->sock[f].src);
		close(fd);
	}
	u->bound = false;
}

void wg_udp_destroy(struct wg_udp *u)
{
	if (u->bound)
		wg_udp_flush(u);
	close_sockets(u);
	for (int f = 0; f < WG_UDP_FAMILIES; f++) {
		free(u->txq[f]);
		u->txq[f] = NULL;
	}
	free(u->rxs);
	u->rxs = NULL;
}

/* Buffer sizes are best effort: the FORCE variants pass rmem_max/wmem_max with CAP_NET_ADMIN. */
static void set_buffers(int fd)
{
	int size = UDP_SOCKBUF;

	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
}

static int set_family_options(int fd, int family)
{
	int one = 1, dont;

	if (family == AF_INET6) {
		if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)
			return -errno;
		dont = IPV6_PMTUDISC_DONT;
		setsockopt(fd, IPPROTO_IPV6, IPV6_MTU_DISCOVER, &dont, sizeof(dont));
	} else {
		dont = IP_PMTUDISC_DONT;
		setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &dont, sizeof(dont));
	}
	return 0;
}

static int open_socket(int family, uint16_t port, uint32_t fwmark, int *fd_out)
{
	union udp_addr a;
	socklen_t alen;
	int fd, err;

	fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_UDP);
	if (fd < 0)
		return -errno;
	err = set_family_options(fd, family);
	if (err)
		goto fail;
	set_buffers(fd);
	if (fwmark && setsockopt(fd, SOL_SOCKET, SO_MARK, &fwmark, sizeof(fwmark)) < 0) {
		err = -errno;
		goto fail;
	}
	memset(&a, 0, sizeof(a));
	if (family == AF_INET6) {
		a.in6.sin6_family = AF_INET6;
		a.in6.sin6_addr = in6addr_any;
		a.in6.sin6_port = htons(port);
		alen = sizeof(a.in6);
	} else {
		a.in4.sin_family = AF_INET;
		a.in4.sin_addr.s_addr = htonl(INADDR_ANY);
		a.in4.sin_port = htons(port);
		alen = sizeof(a.in4);
	}
	if (bind(fd, &a.sa, alen) < 0) {
		err = -errno;
		goto fail;
	}
	*fd_out = fd;
	return 0;
fail:
	close(fd);
	return err;
}

static uint16_t local_port(int fd)
{
	union udp_addr a;
	socklen_t alen = sizeof(a);

	if (getsockname(fd, &a.sa, &alen) < 0)
		return 0;
	return ntohs(a.sa.sa_family == AF_INET6 ? a.in6.sin6_port : a.in4.sin_port);
}

static void close_pair(int fds[WG_UDP_FAMILIES])
{
	for (int f = 0; f < WG_UDP_FAMILIES; f++) {
		if (fds[f] >= 0)
			close(fds[f]);
		fds[f] = -1;
	}
}

/* One attempt: IPv4 first (its port decides the port of a random bind), then IPv6 on the same port.
 * A family the kernel does not support is skipped; at least one must open. */
static int open_pair_once(uint16_t port, uint32_t fwmark, int fds[WG_UDP_FAMILIES], uint16_t *bound)
{
	int err4, err6;

	fds[WG_UDP_V4] = fds[WG_UDP_V6] = -1;
	err4 = open_socket(AF_INET, port, fwmark, &fds[WG_UDP_V4]);
	if (err4 && err4 != -EAFNOSUPPORT)
		return err4;
	if (!err4 && !port)
		port = local_port(fds[WG_UDP_V4]);
	err6 = open_socket(AF_INET6, port, fwmark, &fds[WG_UDP_V6]);
	if (err6 == -EAFNOSUPPORT && !err4)
		err6 = 0;
	if (err6) {
		close_pair(fds);
		return err6;
	}
	*bound = port ? port : local_port(fds[WG_UDP_V6]);
	return 0;
}

static int open_pair(uint16_t port, uint32_t fwmark, int fds[WG_UDP_FAMILIES], uint16_t *bound)
{
	int err = -EADDRINUSE;

	/* With a random port the IPv6 half may find the IPv4 port taken by someone else: try another. */
	for (int i = 0; i < (port ? 1 : UDP_BIND_RANDOM_ATTEMPTS); i++) {
		err = open_pair_once(port, fwmark, fds, bound);
		if (err != -EADDRINUSE)
			break;
	}
	return err;
}

int wg_udp_bind(struct wg_udp *u, uint16_t port, uint16_t *bound_port)
{
	int fds[WG_UDP_FAMILIES];
	uint16_t bound = 0;
	int err;

	if (u->bound && port && port == u->port) {
		*bound_port = port;
		return 0;
	}
	err = open_pair(port, u->fwmark, fds, &bound);
	if (err)
		return err;
	if (u->bound)
		wg_udp_flush(u);
	close_sockets(u);
	for (int f = 0; f < WG_UDP_FAMILIES; f++) {
		if (fds[f] < 0)
			continue;
		err = wg_loop_add(u->loop, &u->sock[f].src, fds[f], EPOLLIN, on_readable);
		if (err) {
			close(fds[f]);
			fds[f] = -1;
			wg_log_error("cannot watch UDP socket: %s", strerror(-err));
		}
	}
	if (fds[WG_UDP_V4] < 0 && fds[WG_UDP_V6] < 0)
		return err;
	u->bound = true;
	u->port = bound;
	*bound_port = bound;
	wg_log_debug("UDP listening on port %u%s", bound, fds[WG_UDP_V6] < 0 ? " (IPv4 only)" :
		    fds[WG_UDP_V4] < 0 ? " (IPv6 only)" : "");
	return 0;
}

int wg_udp_set_fwmark(struct wg_udp *u, uint32_t mark)
{
	for (int f = 0; f < WG_UDP_FAMILIES; f++) {
		int fd = u->sock[f].src.fd;

		if (fd >= 0 && setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof(mark)) < 0)
			return -errno;
	}
	u->fwmark = mark;
	return 0;
}

/* --- receive */

static void endpoint_from(struct wg_endpoint *ep, const union udp_addr *a)
{
	memset(ep, 0, sizeof(*ep));
	if (a->sa.sa_family == AF_INET6)
		ep->addr.in6 = a->in6;
	else
		ep->addr.in4 = a->in4;
}

static void prepare_rx(struct wg_udp_rx *r)
{
	for (int i = 0; i < WG_UDP_RX_BATCH; i++) {
		struct msghdr *h = &r->msgs[i].msg_hdr;

		r->iov[i].iov_base = r->data[i];
		r->iov[i].iov_len = sizeof(r->data[i]);
		memset(h, 0, sizeof(*h));
		h->msg_name = &r->addr[i];
		h->msg_namelen = sizeof(r->addr[i]);
		h->msg_iov = &r->iov[i];
		h->msg_iovlen = 1;
	}
}

/* One recvmmsg per wakeup (level-triggered: more data brings us back next round). */
static void on_readable(struct wg_loop_source *src, uint32_t events)
{
	struct wg_udp *u = wg_container_of(src, struct wg_udp_sock, src)->udp;
	struct wg_udp_rx *r = u->rxs;
	int n;

	prepare_rx(r);
	n = recvmmsg(src->fd, r->msgs, WG_UDP_RX_BATCH, MSG_DONTWAIT, NULL);
	if (n < 0) {
		if (errno != EAGAIN && errno != EINTR)
			wg_log_debug_rl("UDP receive: %s", strerror(errno));
		return;
	}
	r->batch.count = 0;
	for (int i = 0; i < n; i++) {
		int k = r->batch.count;

		if (r->msgs[i].msg_hdr.msg_flags & MSG_TRUNC) {
			u->stats.rx_truncated++;
			continue;
		}
		r->batch.bufs[k] = r->data[i];
		r->batch.lens[k] = r->msgs[i].msg_len;
		endpoint_from(&r->batch.from[k], &r->addr[i]);
		r->batch.count++;
	}
	u->stats.rx_datagrams += (uint64_t)r->batch.count;
	if (r->batch.count)
		u->rx(u->ctx, &r->batch);
}

/* --- send */

/* The destination in the form its socket needs; IPv4-mapped IPv6 goes out over the IPv4 socket (the
 * IPv6 socket is V6ONLY). Returns the family index, or -EAFNOSUPPORT. */
static int destination(const struct wg_endpoint *to, union udp_addr *a, socklen_t *alen)
{
	memset(a, 0, sizeof(*a));
	if (to->addr.sa.sa_family == AF_INET) {
		a->in4 = to->addr.in4;
		*alen = sizeof(a->in4);
		return WG_UDP_V4;
	}
	if (to->addr.sa.sa_family != AF_INET6)
		return -EAFNOSUPPORT;
	if (IN6_IS_ADDR_V4MAPPED(&to->addr.in6.sin6_addr)) {
		a->in4.sin_family = AF_INET;
		a->in4.sin_port = to->addr.in6.sin6_port;
		memcpy(&a->in4.sin_addr, &to->addr.in6.sin6_addr.s6_addr[12], 4);
		*alen = sizeof(a->in4);
		return WG_UDP_V4;
	}
	a->in6 = to->addr.in6;
	*alen = sizeof(a->in6);
	return WG_UDP_V6;
}

static void set_dscp(struct wg_udp_txq *q, unsigned i, int family, uint8_t dscp)
{
	struct msghdr *h = &q->msgs[i].msg_hdr;
	struct cmsghdr *c;
	int tos = dscp;

	h->msg_control = q->ctl[i].buf;
	h->msg_controllen = sizeof(q->ctl[i].buf);
	c = CMSG_FIRSTHDR(h);
	c->cmsg_level = family == WG_UDP_V6 ? IPPROTO_IPV6 : IPPROTO_IP;
	c->cmsg_type = family == WG_UDP_V6 ? IPV6_TCLASS : IP_TOS;
	c->cmsg_len = CMSG_LEN(sizeof(tos));
	memcpy(CMSG_DATA(c), &tos, sizeof(tos));
}

static void flush_family(struct wg_udp *u, int f);

int wg_udp_send(struct wg_udp *u, const struct wg_endpoint *to, const uint8_t *data, size_t len, uint8_t dscp)
{
	union udp_addr a;
	socklen_t alen;
	struct wg_udp_txq *q;
	struct msghdr *h;
	int f = destination(to, &a, &alen);

	if (f < 0 || u->sock[f].src.fd < 0)
		return -EAFNOSUPPORT;
	if (len > WG_UDP_MAX_DATAGRAM)
		return -EMSGSIZE;
	q = u->txq[f];
	if (q->count == WG_UDP_TX_BATCH || q->used + len > sizeof(q->arena))
		flush_family(u, f);
	memcpy(q->arena + q->used, data, len);
	q->iov[q->count].iov_base = q->arena + q->used;
	q->iov[q->count].iov_len = len;
	q->addr[q->count] = a;
	h = &q->msgs[q->count].msg_hdr;
	memset(h, 0, sizeof(*h));
	h->msg_name = &q->addr[q->count];
	h->msg_namelen = alen;
	h->msg_iov = &q->iov[q->count];
	h->msg_iovlen = 1;
	if (dscp)
		set_dscp(q, q->count, f, dscp);
	q->used += len;
	q->count++;
	return 0;
}

static bool wait_writable(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLOUT };

	return poll(&p, 1, UDP_SEND_WAIT_MS) > 0;
}

/* Sends the queue. A full socket buffer is waited out briefly (backpressure, so a fast TUN reader does
 * not just drop); an error for one datagram (no route, EPERM from a firewall...) drops that datagram
 * only: sendmmsg reports it when that datagram is first in line. */
static void flush_family(struct wg_udp *u, int f)
{
	struct wg_udp_txq *q = u->txq[f];
	int fd = u->sock[f].src.fd;
	unsigned i = 0, waits = 0;

	while (i < q->count) {
		int n = sendmmsg(fd, q->msgs + i, q->count - i, 0);

		if (n > 0) {
			i += (unsigned)n;
			waits = 0;
			u->stats.tx_datagrams += (uint64_t)n;
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN && waits++ < UDP_SEND_WAITS && wait_writable(fd))
			continue;
		if (errno == EAGAIN) {
			u->stats.tx_dropped_full += q->count - i;
			wg_log_debug_rl("UDP send buffer full: dropped %u datagrams", q->count - i);
			break;
		}
		u->stats.tx_errors++;
		wg_log_debug_rl("UDP send: %s", strerror(errno));
		i++;
	}
	q->count = 0;
	q->used = 0;
}

void wg_udp_flush(struct wg_udp *u)
{
	for (int f = 0; f < WG_UDP_FAMILIES; f++) {
		if (u->txq[f] && u->txq[f]->count)
			flush_family(u, f);
	}
}
