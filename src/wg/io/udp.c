/* UDP sockets: see udp.h. */
#include "wg/io/udp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "wg/io/env.h"
#include "wg/io/log.h"

enum {
	UDP_SOCKBUF = 7 << 20,          /* large buffers absorb bursts between two loop rounds */
	UDP_TX_ARENA = 512 << 10,       /* a full queue of 1500-byte datagrams; fewer jumbo ones */
	UDP_GSO_REFUSALS = 4,           /* size refusals in a row before a socket stops trying GSO */
	UDP_BIND_RANDOM_ATTEMPTS = 16,  /* port 0: tries to find a port free for both families */
	UDP_SEND_WAIT_MS = 50,          /* one wait for socket buffer space... */
	UDP_SEND_WAITS = 3,             /* ...and how many without progress before dropping */
};

union udp_addr {
	struct sockaddr sa;
	struct sockaddr_in in4;
	struct sockaddr_in6 in6;
};

/* Room for the control messages we ask for (UDP_GRO), with slack for one we did not. */
union udp_rx_ctl {
	char buf[2 * CMSG_SPACE(sizeof(int))];
	struct cmsghdr align;
};

struct wg_udp_rx {
	struct wg_udp_rx_batch batch;
	struct mmsghdr msgs[WG_UDP_RX_MSGS];
	struct iovec iov[WG_UDP_RX_MSGS];
	union udp_addr addr[WG_UDP_RX_MSGS];
	union udp_rx_ctl ctl[WG_UDP_RX_MSGS];
	uint8_t data[WG_UDP_RX_MSGS][WG_UDP_MAX_DATAGRAM];
};

/* One queued datagram: its bytes are in the queue's arena (wg_udp_send) or the caller's memory
 * (wg_udp_send_ref). A GSO message lists its datagrams as consecutive iovecs: the kernel concatenates
 * them and cuts the whole at the segment size again, so they need not be contiguous. */
struct udp_dgram {
	const uint8_t *data;
	uint32_t len;
	uint8_t dscp;
	socklen_t alen;
	union udp_addr addr;
};

/* Control messages of one outgoing message: the TOS / traffic class byte and the GSO segment size. */
union udp_tx_ctl {
	char buf[CMSG_SPACE(sizeof(int)) + CMSG_SPACE(sizeof(uint16_t))];
	struct cmsghdr align;
};

/* The queue of one socket. flush turns the datagrams into messages (one per GSO run, or one each) whose
 * headers point into this struct, so it must not move while queued. */
struct wg_udp_txq {
	unsigned count;
	size_t used;
	struct udp_dgram dg[WG_UDP_TX_BATCH];
	unsigned nmsgs;
	struct mmsghdr msgs[WG_UDP_TX_BATCH];
	struct iovec iov[WG_UDP_TX_BATCH];       /* one per datagram: iov[i] is dg[i] */
	unsigned first[WG_UDP_TX_BATCH];     /* message i carries datagrams first[i] .. first[i] + segs[i] - 1 */
	unsigned segs[WG_UDP_TX_BATCH];
	union udp_tx_ctl ctl[WG_UDP_TX_BATCH];
	uint8_t arena[UDP_TX_ARENA];
};

static void on_readable(struct wg_loop_source *src, uint32_t events);

/* ZL_WG_OFFLOAD=0 (or off, no, false) keeps the plain path, as for the TUN device. */
static bool offload_wanted(void)
{
	return wg_env_switch("ZL_WG_OFFLOAD", true);
}

int wg_udp_init(struct wg_udp *u, struct wg_loop *loop, wg_udp_rx_fn rx, void *ctx)
{
	memset(u, 0, sizeof(*u));
	u->offload = offload_wanted();
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

static void log_stats(const struct wg_udp *u)
{
	const struct wg_udp_stats *s = &u->stats;

	wg_log_debug("UDP totals: received %llu datagrams in %llu messages (%llu truncated), sent %llu in %llu "
		     "messages (%llu errors, %llu dropped on a full buffer, %llu GSO refusals)",
		     (unsigned long long)s->rx_datagrams, (unsigned long long)s->rx_messages,
		     (unsigned long long)s->rx_truncated, (unsigned long long)s->tx_datagrams,
		     (unsigned long long)s->tx_messages, (unsigned long long)s->tx_errors,
		     (unsigned long long)s->tx_dropped_full, (unsigned long long)s->tx_gso_fallbacks);
}

void wg_udp_destroy(struct wg_udp *u)
{
	if (u->bound) {
		wg_udp_flush(u);
		log_stats(u);
	}
	close_sockets(u);
	for (int f = 0; f < WG_UDP_FAMILIES; f++) {
		free(u->txq[f]);
		u->txq[f] = NULL;
	}
	free(u->rxs);
	u->rxs = NULL;
}

/* Buffer sizes are best effort: the FORCE variants pass rmem_max/wmem_max with CAP_NET_ADMIN; without
 * it the kernel caps the plain ones at rmem_max/wmem_max, which is worth knowing when packets drop. */
static void set_buffer(int fd, int force_opt, int opt, const char *what)
{
	int size = UDP_SOCKBUF, got = 0;
	socklen_t len = sizeof(got);

	if (setsockopt(fd, SOL_SOCKET, force_opt, &size, sizeof(size)) < 0)
		setsockopt(fd, SOL_SOCKET, opt, &size, sizeof(size));
	/* The kernel reports twice what it was given (bookkeeping overhead included). */
	if (!getsockopt(fd, SOL_SOCKET, opt, &got, &len) && got / 2 < size)
		wg_log_debug("UDP %s buffer is %d KiB (asked for %d KiB): the system limit is lower", what,
			     got / 2 / 1024, size / 1024);
}

static void set_buffers(int fd)
{
	set_buffer(fd, SO_RCVBUFFORCE, SO_RCVBUF, "receive");
	set_buffer(fd, SO_SNDBUFFORCE, SO_SNDBUF, "send");
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

/* GSO: a kernel that knows UDP_SEGMENT answers getsockopt for it (whether a route's device can do
 * the checksums is only known at the first send: EIO then). GRO: the kernel accepts UDP_GRO. */
static void probe_offloads(struct wg_udp *u, struct wg_udp_sock *s)
{
	int size = 0, one = 1;
	socklen_t len = sizeof(size);

	s->gso = u->offload && !getsockopt(s->src.fd, SOL_UDP, UDP_SEGMENT, &size, &len);
	s->gro = u->offload && !setsockopt(s->src.fd, SOL_UDP, UDP_GRO, &one, sizeof(one));
	s->gso_refusals = 0;
}

static void log_bound(const struct wg_udp *u, const int fds[WG_UDP_FAMILIES])
{
	const struct wg_udp_sock *s = &u->sock[fds[WG_UDP_V4] >= 0 ? WG_UDP_V4 : WG_UDP_V6];

	wg_log_debug("UDP listening on port %u%s, GSO %s, GRO %s", u->port,
		     fds[WG_UDP_V6] < 0 ? " (IPv4 only)" : fds[WG_UDP_V4] < 0 ? " (IPv6 only)" : "",
		     s->gso ? "on" : "off", s->gro ? "on" : "off");
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
			continue;
		}
		probe_offloads(u, &u->sock[f]);
	}
	if (fds[WG_UDP_V4] < 0 && fds[WG_UDP_V6] < 0)
		return err;
	u->bound = true;
	u->port = bound;
	*bound_port = bound;
	log_bound(u, fds);
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

static void prepare_rx(struct wg_udp_rx *r, bool gro)
{
	for (int i = 0; i < WG_UDP_RX_MSGS; i++) {
		struct msghdr *h = &r->msgs[i].msg_hdr;

		r->iov[i].iov_base = r->data[i];
		r->iov[i].iov_len = sizeof(r->data[i]);
		memset(h, 0, sizeof(*h));
		h->msg_name = &r->addr[i];
		h->msg_namelen = sizeof(r->addr[i]);
		h->msg_iov = &r->iov[i];
		h->msg_iovlen = 1;
		if (gro) {
			h->msg_control = r->ctl[i].buf;
			h->msg_controllen = sizeof(r->ctl[i].buf);
		}
	}
}

/* The segment size of a GRO message, or 0 for a single datagram. */
static size_t gro_segment_size(struct msghdr *h)
{
	for (struct cmsghdr *c = CMSG_FIRSTHDR(h); c; c = CMSG_NXTHDR(h, c)) {
		int size;

		if (c->cmsg_level != SOL_UDP || c->cmsg_type != UDP_GRO || c->cmsg_len < CMSG_LEN(sizeof(size)))
			continue;
		memcpy(&size, CMSG_DATA(c), sizeof(size));
		return size > 0 ? (size_t)size : 0;
	}
	return 0;
}

static void deliver(struct wg_udp *u, struct wg_udp_rx_batch *b)
{
	u->stats.rx_datagrams += (uint64_t)b->count;
	u->rx(u->ctx, b);
	b->count = 0;
}

static void add_datagram(struct wg_udp *u, struct wg_udp_rx_batch *b, uint8_t *buf, size_t len,
			 const struct wg_endpoint *from)
{
	if (b->count == WG_UDP_RX_BATCH)
		deliver(u, b);
	b->bufs[b->count] = buf;
	b->lens[b->count] = len;
	b->from[b->count] = *from;
	b->count++;
}

/* One received message: a datagram, or with GRO several of the same flow back to back, each `seg`
 * bytes but the last. */
static void add_message(struct wg_udp *u, struct wg_udp_rx *r, int i)
{
	struct msghdr *h = &r->msgs[i].msg_hdr;
	size_t len = r->msgs[i].msg_len, seg = 0;
	struct wg_endpoint from;

	if (h->msg_controllen)
		seg = gro_segment_size(h);
	endpoint_from(&from, &r->addr[i]);
	if (!seg || seg >= len) {
		add_datagram(u, &r->batch, r->data[i], len, &from);
		return;
	}
	for (size_t off = 0; off < len; off += seg)
		add_datagram(u, &r->batch, r->data[i] + off, len - off < seg ? len - off : seg, &from);
}

/* One recvmmsg per wakeup (level-triggered: more data brings us back next round). */
static void on_readable(struct wg_loop_source *src, uint32_t events)
{
	struct wg_udp_sock *s = wg_container_of(src, struct wg_udp_sock, src);
	struct wg_udp *u = s->udp;
	struct wg_udp_rx *r = u->rxs;
	int n;

	prepare_rx(r, s->gro);
	n = recvmmsg(src->fd, r->msgs, WG_UDP_RX_MSGS, MSG_DONTWAIT, NULL);
	if (n < 0) {
		if (errno != EAGAIN && errno != EINTR)
			wg_log_debug_rl("UDP receive: %s", strerror(errno));
		return;
	}
	u->stats.rx_messages += (uint64_t)n;
	r->batch.count = 0;
	for (int i = 0; i < n; i++) {
		/* Truncated: the buffer holds the largest datagram, so this is not ours (or a GRO message
		 * over the limit, which the kernel does not build); its tail is lost either way. */
		if (r->msgs[i].msg_hdr.msg_flags & MSG_TRUNC) {
			u->stats.rx_truncated++;
			continue;
		}
		add_message(u, r, i);
	}
	if (r->batch.count)
		deliver(u, &r->batch);
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

static void flush_family(struct wg_udp *u, int f);

/* Appends a datagram to its socket's queue; copy: into the queue's arena, else by reference. */
static int queue_datagram(struct wg_udp *u, const struct wg_endpoint *to, const uint8_t *data, size_t len,
			  uint8_t dscp, bool copy)
{
	union udp_addr a;
	socklen_t alen;
	struct wg_udp_txq *q;
	struct udp_dgram *d;
	int f = destination(to, &a, &alen);

	if (f < 0 || u->sock[f].src.fd < 0)
		return -EAFNOSUPPORT;
	if (len > WG_UDP_MAX_DATAGRAM)
		return -EMSGSIZE;
	q = u->txq[f];
	if (q->count == WG_UDP_TX_BATCH || (copy && q->used + len > sizeof(q->arena)))
		flush_family(u, f);
	d = &q->dg[q->count++];
	d->len = (uint32_t)len;
	d->dscp = dscp;
	d->alen = alen;
	d->addr = a;
	d->data = data;
	if (copy) {
		memcpy(q->arena + q->used, data, len);
		d->data = q->arena + q->used;
		q->used += len;
	}
	return 0;
}

int wg_udp_send(struct wg_udp *u, const struct wg_endpoint *to, const uint8_t *data, size_t len, uint8_t dscp)
{
	return queue_datagram(u, to, data, len, dscp, true);
}

int wg_udp_send_ref(struct wg_udp *u, const struct wg_endpoint *to, const uint8_t *data, size_t len)
{
	return queue_datagram(u, to, data, len, 0, false);
}

static bool same_destination(const struct udp_dgram *a, const struct udp_dgram *b)
{
	if (a->alen != b->alen || a->addr.sa.sa_family != b->addr.sa.sa_family)
		return false;
	if (a->addr.sa.sa_family == AF_INET)
		return a->addr.in4.sin_port == b->addr.in4.sin_port &&
		       a->addr.in4.sin_addr.s_addr == b->addr.in4.sin_addr.s_addr;
	return a->addr.in6.sin6_port == b->addr.in6.sin6_port &&
	       a->addr.in6.sin6_scope_id == b->addr.in6.sin6_scope_id &&
	       IN6_ARE_ADDR_EQUAL(&a->addr.in6.sin6_addr, &b->addr.in6.sin6_addr);
}

/* How many datagrams from dg[i] on can leave as one GSO message: same destination and DSCP, each the
 * size of the first except a shorter last one, within the kernel's limits. */
static unsigned gso_run(const struct wg_udp_txq *q, unsigned i)
{
	const struct udp_dgram *d = &q->dg[i];
	size_t total = d->len;
	unsigned n = 1;

	if (!d->len)
		return 1;
	while (i + n < q->count && n < WG_UDP_GSO_MAX_SEGMENTS) {
		const struct udp_dgram *next = &q->dg[i + n];

		if (q->dg[i + n - 1].len != d->len || !next->len || next->len > d->len)
			break;
		if (total + next->len > WG_UDP_GSO_MAX_BYTES || next->dscp != d->dscp || !same_destination(d, next))
			break;
		total += next->len;
		n++;
	}
	return n;
}

static size_t put_cmsg(char *buf, size_t off, int level, int type, const void *data, size_t len)
{
	struct cmsghdr *c = (struct cmsghdr *)(buf + off);

	c->cmsg_level = level;
	c->cmsg_type = type;
	c->cmsg_len = CMSG_LEN(len);
	memcpy(CMSG_DATA(c), data, len);
	return off + CMSG_SPACE(len);
}

/* DSCP as the TOS / traffic class byte, and the GSO segment size when the message holds several. */
static void set_control(struct wg_udp_txq *q, unsigned m, int family, uint8_t dscp, uint16_t gso_size)
{
	struct msghdr *h = &q->msgs[m].msg_hdr;
	char *buf = q->ctl[m].buf;
	size_t len = 0;
	int tos = dscp;

	if (dscp)
		len = put_cmsg(buf, len, family == WG_UDP_V6 ? IPPROTO_IPV6 : IPPROTO_IP,
			       family == WG_UDP_V6 ? IPV6_TCLASS : IP_TOS, &tos, sizeof(tos));
	if (gso_size)
		len = put_cmsg(buf, len, SOL_UDP, UDP_SEGMENT, &gso_size, sizeof(gso_size));
	h->msg_control = len ? buf : NULL;
	h->msg_controllen = len;
}

static void add_tx_message(struct wg_udp_txq *q, unsigned first, unsigned segs, int family)
{
	struct udp_dgram *d = &q->dg[first];
	unsigned m = q->nmsgs++;
	struct msghdr *h = &q->msgs[m].msg_hdr;

	for (unsigned i = first; i < first + segs; i++)
		q->iov[i] = (struct iovec){ .iov_base = (void *)q->dg[i].data, .iov_len = q->dg[i].len };
	q->first[m] = first;
	q->segs[m] = segs;
	memset(h, 0, sizeof(*h));
	h->msg_name = &d->addr;
	h->msg_namelen = d->alen;
	h->msg_iov = &q->iov[first];
	h->msg_iovlen = segs;
	set_control(q, m, family, d->dscp, segs > 1 ? (uint16_t)d->len : 0);
}

/* Messages for the datagrams from dg[from] on, replacing the previous ones. */
static void build_messages(struct wg_udp_txq *q, unsigned from, int family, bool gso)
{
	q->nmsgs = 0;
	for (unsigned i = from; i < q->count;) {
		unsigned n = gso ? gso_run(q, i) : 1;

		add_tx_message(q, i, n, family);
		i += n;
	}
}

/* A GSO message was refused. EIO: the route's device cannot checksum for us, and will not later.
 * EMSGSIZE (EINVAL on older kernels): its segments are larger than the route's MTU (a peer behind
 * a small path MTU, whose datagrams must be fragmented), which datagrams to other peers may not be. */
static void gso_refused(struct wg_udp *u, int f, int err)
{
	struct wg_udp_sock *s = &u->sock[f];

	u->stats.tx_gso_fallbacks++;
	if (err != EIO && ++s->gso_refusals < UDP_GSO_REFUSALS)
		return;
	s->gso = false;
	wg_log_info("UDP segmentation offload refused on the IPv%c socket (%s): sending datagrams one by one",
		    f == WG_UDP_V6 ? '6' : '4', strerror(err));
}

static void count_sent(struct wg_udp *u, int f, unsigned m, int n)
{
	struct wg_udp_txq *q = u->txq[f];

	u->stats.tx_messages += (uint64_t)n;
	for (unsigned i = m; i < m + (unsigned)n; i++) {
		u->stats.tx_datagrams += q->segs[i];
		if (q->segs[i] > 1)
			u->sock[f].gso_refusals = 0;
	}
}

static bool wait_writable(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLOUT };

	return poll(&p, 1, UDP_SEND_WAIT_MS) > 0;
}

/* Sends the queue. A full socket buffer is waited out briefly (backpressure, so a fast TUN reader does
 * not just drop); an error for one message (no route, EPERM from a firewall...) drops that message
 * only: sendmmsg reports it when that message is first in line. A refused GSO message is resent, with
 * the rest of the queue, as single datagrams. */
static void flush_family(struct wg_udp *u, int f)
{
	struct wg_udp_txq *q = u->txq[f];
	int fd = u->sock[f].src.fd;
	unsigned m = 0, waits = 0;

	build_messages(q, 0, f, u->sock[f].gso);
	while (m < q->nmsgs) {
		int n = sendmmsg(fd, q->msgs + m, q->nmsgs - m, 0);

		if (n > 0) {
			count_sent(u, f, m, n);
			m += (unsigned)n;
			waits = 0;
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN && waits++ < UDP_SEND_WAITS && wait_writable(fd))
			continue;
		if (errno == EAGAIN) {
			u->stats.tx_dropped_full += q->count - q->first[m];
			wg_log_debug_rl("UDP send buffer full: dropped %u datagrams", q->count - q->first[m]);
			break;
		}
		if (q->segs[m] > 1 && (errno == EIO || errno == EINVAL || errno == EMSGSIZE)) {
			gso_refused(u, f, errno);
			build_messages(q, q->first[m], f, false);
			m = 0;
			continue;
		}
		u->stats.tx_errors += q->segs[m];
		wg_log_debug_rl("UDP send: %s", strerror(errno));
		m++;
	}
	q->count = 0;
	q->used = 0;
	q->nmsgs = 0;
}

void wg_udp_flush(struct wg_udp *u)
{
	for (int f = 0; f < WG_UDP_FAMILIES; f++) {
		if (u->txq[f] && u->txq[f]->count)
			flush_family(u, f);
	}
}
