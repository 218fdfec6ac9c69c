/* The DNS server thread: see dns_server.h.
 *
 * Everything below runs on the server thread except od_dns_server_start/stop/set_zone/stats (callers'
 * threads), which touch only the zone slot (a mutex) and the counters (atomics). One epoll loop serves
 * the UDP sockets, the TCP listeners and connections, the forwarder socket and the stop eventfd; the
 * two timer kinds (TCP idle, forward timeout) are kept in lists ordered by deadline, so the next
 * deadline is always at a list head.
 *
 * Counting: every message received on a listen address is a query (udp_queries / tcp_queries), and
 * gets exactly one response counted by its code, or is counted in `dropped` (responses, runts,
 * oversized datagrams). An answer that could not be sent (full socket buffer) is counted in both.
 * Forwarded answers that are rejected (wrong source, unknown id, other question, late) are counted in
 * `dropped` as well. Counters move before the answer or the close they describe, so a client that has
 * seen the effect also sees the count. */
#include "overlayd/dns_server.h"
#include "overlay/errmsg.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>
#include "dns/answer.h"
#include "overlayd/log.h"
#include "overlayd/net.h"

enum {
	BATCH = 64,                       /* datagrams per recvmmsg / sendmmsg */
	UDP_IN_MAX = 4096,                /* a larger datagram is no sane query: dropped */
	UDP_BATCHES_PER_EVENT = 8,        /* then back to epoll: other sockets get their turn */
	TCP_IN_INITIAL = 1024,            /* grows to the size of the message being received */
	TCP_FRAME_MAX = 2 + DNS_TCP_MAX,  /* length prefix + the largest message */
	TCP_READS_PER_EVENT = 4,
	ACCEPTS_PER_EVENT = 32,
	LISTEN_BACKLOG = 128,
	FORWARD_READS_PER_EVENT = 64,
	FORWARD_BUF = 65535,
	QUESTION_MAX = DNS_NAME_MAX + 4,  /* qname + qtype + qclass */
	EPOLL_EVENTS = 64,
	UDP_RCVBUF = 1 << 20,             /* absorbs bursts while the thread is busy (best effort) */
	DNS_OPCODE_MASK = 0x7800,
	ACCEPT_LOG_INTERVAL_MS = 10000,
};

/* Tags in epoll_event.data.u64: kind << 56 | index << 32 | generation (connections only, so an event
 * left over from a closed connection is not applied to the next one in its slot). */
enum ev_kind { EV_STOP = 1, EV_UDP, EV_LISTEN, EV_CONN, EV_FORWARD };

struct tcp_conn {
	int fd;                           /* -1: the slot is free */
	uint32_t gen;                     /* bumped on close (epoll tags, pending forwards) */
	uint64_t last_active_ms;
	struct tcp_conn *prev, *next;     /* activity list, least recently active first */
	uint8_t *in;                      /* received bytes not yet answered */
	size_t in_len, in_cap;
	struct od_outbuf out;
	bool want_out;                    /* EPOLLOUT is registered */
	bool eof;                         /* the client shut its side: close once the answers are out */
};

/* A query relayed to the forwarder, waiting for its answer. */
struct fwd_pending {
	uint16_t up_id, client_id, flags;
	uint64_t deadline_ms;
	struct fwd_pending *prev, *next;  /* in send order = deadline order */
	bool tcp;
	uint16_t listen;                  /* UDP: the socket the query came in on */
	uint16_t conn;                    /* TCP: slot and generation of the connection */
	uint32_t conn_gen;
	struct sockaddr_storage client;   /* UDP */
	socklen_t client_len;
	uint16_t client_limit;            /* UDP: the largest answer the client accepts */
	uint16_t question_len;
	uint8_t question[QUESTION_MAX];   /* as sent: the upstream must echo it */
};

struct counters {
	_Atomic uint64_t udp_queries, tcp_queries;
	_Atomic uint64_t responses[OD_DNS_RC_SLOTS];
	_Atomic uint64_t dropped, truncated, forwarded, forward_timeouts;
	_Atomic uint64_t tcp_connections, tcp_closed_idle, tcp_closed_evicted;
};

/* Where a query came from, to answer it later when it is forwarded. */
struct origin {
	bool tcp;
	size_t listen;
	const struct sockaddr *addr;
	socklen_t addr_len;
	struct tcp_conn *conn;
};

struct od_dns_server {
	struct od_dns_config cfg;
	pthread_t thread;
	bool thread_started;
	int epfd, stopfd, fwd_fd;
	int udp_fd[OD_DNS_MAX_LISTEN], tcp_fd[OD_DNS_MAX_LISTEN];
	struct counters c;

	/* The published zone: written by od_dns_server_set_zone, read by the thread when zone_gen moves. */
	pthread_mutex_t zone_lock;
	struct dns_zone *zone;
	atomic_uint zone_gen;

	/* Server thread only from here on. */
	struct dns_zone *cur;             /* the thread's own reference */
	unsigned cur_gen;
	uint64_t now_ms;
	uint32_t rotate;                  /* one step per query: several addresses take turns */
	uint64_t accept_log_ms;

	struct tcp_conn conns[OD_DNS_TCP_MAX_CONNS];
	struct tcp_conn *lru_head, *lru_tail;
	uint16_t free_conns[OD_DNS_TCP_MAX_CONNS];
	size_t n_free_conns;

	struct fwd_pending pending[OD_DNS_FORWARD_PENDING_MAX];
	struct fwd_pending *fwd_head, *fwd_tail;
	uint16_t free_pending[OD_DNS_FORWARD_PENDING_MAX];
	size_t n_free_pending;
	uint16_t by_id[65536];            /* upstream id -> pending index + 1 (0: unused id) */

	struct mmsghdr rx[BATCH], tx[BATCH];
	struct iovec rx_iov[BATCH], tx_iov[BATCH];
	struct sockaddr_storage rx_addr[BATCH];
	uint8_t rx_buf[BATCH][UDP_IN_MAX];
	uint8_t tx_buf[BATCH][DNS_UDP_OUR_MAX];
	uint8_t tcp_out[TCP_FRAME_MAX];   /* one framed answer */
	uint8_t fwd_buf[FORWARD_BUF];     /* a forwarder's answer, or a query being forwarded */
};

static const char *const slot_names[OD_DNS_RC_SLOTS] = {
	[OD_DNS_RC_NOERROR] = "NOERROR", [OD_DNS_RC_FORMERR] = "FORMERR", [OD_DNS_RC_SERVFAIL] = "SERVFAIL",
	[OD_DNS_RC_NXDOMAIN] = "NXDOMAIN", [OD_DNS_RC_NOTIMP] = "NOTIMP", [OD_DNS_RC_REFUSED] = "REFUSED",
	[OD_DNS_RC_BADVERS] = "BADVERS", [OD_DNS_RC_OTHER] = "OTHER",
};

const char *od_dns_rcode_slot_name(enum od_dns_rcode_slot slot)
{
	return (unsigned)slot < OD_DNS_RC_SLOTS ? slot_names[slot] : "OTHER";
}

/* ---- small helpers */

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The thread is the only writer of the counters: a relaxed load and store is enough (and cheaper than
 * a locked add); readers on other threads see whole values. */
static void bump(_Atomic uint64_t *c, uint64_t n)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n, memory_order_relaxed);
}

static enum od_dns_rcode_slot rcode_slot(unsigned rcode)
{
	switch (rcode) {
	case DNS_RCODE_NOERROR: return OD_DNS_RC_NOERROR;
	case DNS_RCODE_FORMERR: return OD_DNS_RC_FORMERR;
	case DNS_RCODE_SERVFAIL: return OD_DNS_RC_SERVFAIL;
	case DNS_RCODE_NXDOMAIN: return OD_DNS_RC_NXDOMAIN;
	case DNS_RCODE_NOTIMP: return OD_DNS_RC_NOTIMP;
	case DNS_RCODE_REFUSED: return OD_DNS_RC_REFUSED;
	case DNS_RCODE_BADVERS: return OD_DNS_RC_BADVERS;
	default: return OD_DNS_RC_OTHER;
	}
}

static void count_response(struct od_dns_server *s, unsigned rcode)
{
	bump(&s->c.responses[rcode_slot(rcode)], 1);
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static uint64_t ev_tag(enum ev_kind kind, size_t index, uint32_t gen)
{
	return (uint64_t)kind << 56 | (uint64_t)index << 32 | gen;
}

static int ep_add(struct od_dns_server *s, int fd, uint32_t events, uint64_t tag)
{
	struct epoll_event ev = { .events = events, .data.u64 = tag };

	return epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) ? -errno : 0;
}

/* The zone for the next batch: the newest published one (a reference of the thread's own, swapped
 * only when set_zone has moved the generation, so the common case costs one atomic load). */
static const struct dns_zone *zone_current(struct od_dns_server *s)
{
	struct dns_zone *old;

	if (atomic_load_explicit(&s->zone_gen, memory_order_acquire) == s->cur_gen)
		return s->cur;
	pthread_mutex_lock(&s->zone_lock);
	old = s->cur;
	s->cur = s->zone ? dns_zone_ref(s->zone) : NULL;
	s->cur_gen = atomic_load_explicit(&s->zone_gen, memory_order_relaxed);
	pthread_mutex_unlock(&s->zone_lock);
	dns_zone_unref(old);
	return s->cur;
}

/* ---- forwarding */

static bool forwarding(const struct od_dns_server *s)
{
	return s->fwd_fd >= 0;
}

static void fwd_unlink(struct od_dns_server *s, struct fwd_pending *p)
{
	if (p->prev)
		p->prev->next = p->next;
	else
		s->fwd_head = p->next;
	if (p->next)
		p->next->prev = p->prev;
	else
		s->fwd_tail = p->prev;
	s->by_id[p->up_id] = 0;
	s->free_pending[s->n_free_pending++] = (uint16_t)(p - s->pending);
}

/* Header + question, the given rcode, TC as asked; the client's id, opcode and RD. */
static size_t write_bare(const struct fwd_pending *p, unsigned rcode, bool tc, uint8_t *out)
{
	uint16_t flags = DNS_FLAG_QR | (p->flags & (DNS_OPCODE_MASK | DNS_FLAG_RD)) | (uint16_t)rcode;

	put16(out, p->client_id);
	put16(out + 2, tc ? flags | DNS_FLAG_TC : flags);
	put16(out + 4, p->question_len ? 1 : 0);
	memset(out + 6, 0, 6);
	memcpy(out + DNS_HEADER_LEN, p->question, p->question_len);
	return DNS_HEADER_LEN + p->question_len;
}

static void conn_sync(struct od_dns_server *s, struct tcp_conn *c);
static void conn_close(struct od_dns_server *s, struct tcp_conn *c);

/* Sends msg (the client's id already in place) to the client of p. */
static void fwd_deliver(struct od_dns_server *s, const struct fwd_pending *p, uint8_t *msg, size_t len)
{
	if (p->tcp) {
		struct tcp_conn *c = &s->conns[p->conn];

		if (c->fd < 0 || c->gen != p->conn_gen) {
			bump(&s->c.dropped, 1);   /* the connection is gone */
			return;
		}
		put16(s->tcp_out, (uint16_t)len);
		memcpy(s->tcp_out + 2, msg, len);
		if (od_outbuf_append(&c->out, s->tcp_out, len + 2, OD_DNS_TCP_OUTBUF_MAX) < 0) {
			bump(&s->c.dropped, 1);
			conn_close(s, c);
			return;
		}
		count_response(s, msg[3] & 0xf);
		conn_sync(s, c);
		return;
	}
	if (len > p->client_limit) {
		/* The upstream sent more than this client takes: it gets TC and retries over TCP. */
		len = write_bare(p, msg[3] & 0xf, true, msg);
		bump(&s->c.truncated, 1);
	}
	count_response(s, msg[3] & 0xf);
	if (sendto(s->udp_fd[p->listen], msg, len, MSG_DONTWAIT, (const struct sockaddr *)&p->client,
		   p->client_len) < 0)
		bump(&s->c.dropped, 1);
}

static void fwd_servfail(struct od_dns_server *s, struct fwd_pending *p)
{
	uint8_t msg[DNS_HEADER_LEN + QUESTION_MAX];

	fwd_deliver(s, p, msg, write_bare(p, DNS_RCODE_SERVFAIL, false, msg));
}

static void fwd_expire(struct od_dns_server *s)
{
	while (s->fwd_head && s->fwd_head->deadline_ms <= s->now_ms) {
		struct fwd_pending *p = s->fwd_head;

		bump(&s->c.forward_timeouts, 1);
		fwd_servfail(s, p);
		fwd_unlink(s, p);
	}
}

static uint16_t fresh_id(const struct od_dns_server *s)
{
	uint16_t id;

	/* At most 1024 of 65536 ids are taken: a retry is rare. */
	do
		randombytes_buf(&id, sizeof(id));
	while (s->by_id[id]);
	return id;
}

/* Records who asked and what: the client's id, flags and question (for a SERVFAIL, and to check the
 * upstream's echo), and where the answer goes. */
static void pending_fill(struct od_dns_server *s, struct fwd_pending *p, const uint8_t *query, size_t qlen,
			 const struct dns_query *q, const struct origin *o)
{
	size_t question_len = q->qname.len + 4u;

	memset(p, 0, offsetof(struct fwd_pending, question));
	p->client_id = q->id;
	p->flags = q->flags;
	/* dns_query_parse refuses compression in the question: it is the bytes right after the header
	 * (the clamp only guards against a parser that let a short message through). */
	if (question_len > qlen - DNS_HEADER_LEN)
		question_len = qlen - DNS_HEADER_LEN;
	p->question_len = (uint16_t)question_len;
	memcpy(p->question, query + DNS_HEADER_LEN, question_len);
	p->tcp = o->tcp;
	if (o->tcp) {
		p->conn = (uint16_t)(o->conn - s->conns);
		p->conn_gen = o->conn->gen;
		return;
	}
	p->listen = (uint16_t)o->listen;
	memcpy(&p->client, o->addr, o->addr_len);
	p->client_len = o->addr_len;
	p->client_limit = q->has_edns && q->edns_udp_size > DNS_UDP_PLAIN_MAX ? q->edns_udp_size : DNS_UDP_PLAIN_MAX;
}

static void pending_queue(struct od_dns_server *s, struct fwd_pending *p)
{
	p->up_id = fresh_id(s);
	p->deadline_ms = s->now_ms + OD_DNS_FORWARD_TIMEOUT_MS;
	s->by_id[p->up_id] = (uint16_t)(p - s->pending + 1);
	p->prev = s->fwd_tail;
	if (s->fwd_tail)
		s->fwd_tail->next = p;
	else
		s->fwd_head = p;
	s->fwd_tail = p;
}

/* Relays query (parsed as q) to the forwarder. Returns 0 when it went (the answer comes later), or the
 * length of a SERVFAIL written into out (table full, send failed). */
static size_t fwd_query(struct od_dns_server *s, const uint8_t *query, size_t qlen, const struct dns_query *q,
			const struct origin *o, uint8_t *out)
{
	struct fwd_pending local, *p = &local;
	size_t n;

	if (s->n_free_pending)
		p = &s->pending[s->free_pending[--s->n_free_pending]];
	pending_fill(s, p, query, qlen, q, o);
	if (p == &local)
		return write_bare(p, DNS_RCODE_SERVFAIL, false, out);   /* too many in flight */
	pending_queue(s, p);
	memcpy(s->fwd_buf, query, qlen);
	put16(s->fwd_buf, p->up_id);
	if (send(s->fwd_fd, s->fwd_buf, qlen, MSG_DONTWAIT) != (ssize_t)qlen) {
		n = write_bare(p, DNS_RCODE_SERVFAIL, false, out);
		fwd_unlink(s, p);
		return n;
	}
	bump(&s->c.forwarded, 1);
	return 0;
}

static bool same_sockaddr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;

		return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	if (a->ss_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;

		return x->sin6_port == y->sin6_port && !memcmp(&x->sin6_addr, &y->sin6_addr, 16);
	}
	return false;
}

static bool question_matches(const struct fwd_pending *p, const uint8_t *msg, size_t len)
{
	if (get16(msg + 4) != 1 || len < DNS_HEADER_LEN + (size_t)p->question_len)
		return false;
	for (size_t i = 0; i < p->question_len; i++) {
		uint8_t a = msg[DNS_HEADER_LEN + i], b = p->question[i];

		/* ASCII case folding; length bytes (< 64) are never letters, so folding them is harmless. */
		if (a >= 'A' && a <= 'Z')
			a = (uint8_t)(a + 32);
		if (b >= 'A' && b <= 'Z')
			b = (uint8_t)(b + 32);
		if (a != b)
			return false;
	}
	return true;
}

/* One datagram from the forwarder's socket: relayed only when it comes from the forwarder, answers a
 * query in flight (by id) and echoes its question; anything else is dropped and counted. */
static void fwd_answer(struct od_dns_server *s, uint8_t *msg, size_t len, const struct sockaddr_storage *from)
{
	struct fwd_pending *p = NULL;
	uint16_t idx;

	if (len >= DNS_HEADER_LEN && same_sockaddr(from, &s->cfg.forward_addr) && (get16(msg + 2) & DNS_FLAG_QR)) {
		idx = s->by_id[get16(msg)];
		p = idx ? &s->pending[idx - 1] : NULL;
	}
	if (!p || !question_matches(p, msg, len)) {
		bump(&s->c.dropped, 1);
		return;
	}
	put16(msg, p->client_id);
	fwd_deliver(s, p, msg, len);
	fwd_unlink(s, p);
}

static void fwd_readable(struct od_dns_server *s)
{
	for (int i = 0; i < FORWARD_READS_PER_EVENT; i++) {
		struct sockaddr_storage from;
		socklen_t flen = sizeof(from);
		ssize_t n = recvfrom(s->fwd_fd, s->fwd_buf, sizeof(s->fwd_buf), MSG_DONTWAIT,
				     (struct sockaddr *)&from, &flen);

		if (n < 0) {
			/* ICMP errors from the forwarder (refused, unreachable) surface here: its pending
			 * queries simply time out. */
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			continue;
		}
		fwd_answer(s, s->fwd_buf, (size_t)n, &from);
	}
}

/* ---- answering */

/* Answers one query. Returns the response length written to out (0: nothing to send now: dropped, or
 * forwarded with the answer to come). */
static size_t serve(struct od_dns_server *s, const struct dns_zone *z, const uint8_t *query, size_t qlen,
		    const struct origin *o, uint8_t *out, size_t outcap)
{
	struct dns_answer_info info;
	struct dns_query q;
	size_t n;

	n = dns_answer(z, query, qlen, o->tcp, forwarding(s), s->rotate++, out, outcap, &info);
	switch (info.verdict) {
	case DNS_VERDICT_REPLY:
		if (info.truncated)
			bump(&s->c.truncated, 1);
		count_response(s, info.rcode);
		return n;
	case DNS_VERDICT_FORWARD:
		if (dns_query_parse(query, qlen, &q) != DNS_PARSE_OK)
			break;   /* cannot happen: the verdict needs a parsed query */
		n = fwd_query(s, query, qlen, &q, o, out);
		if (n)
			count_response(s, DNS_RCODE_SERVFAIL);
		return n;
	case DNS_VERDICT_DROP:
		break;
	}
	bump(&s->c.dropped, 1);
	return 0;
}

/* ---- UDP */

static void udp_send(struct od_dns_server *s, int fd, unsigned n)
{
	unsigned sent = 0;

	while (sent < n) {
		int r = sendmmsg(fd, s->tx + sent, n - sent, MSG_DONTWAIT);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) {
				bump(&s->c.dropped, n - sent);   /* the socket is full: UDP may lose these */
				return;
			}
			/* This one datagram cannot go (e.g. an address the route refuses): skip it. */
			bump(&s->c.dropped, 1);
			r = 1;
		}
		sent += (unsigned)r;
	}
}

static void udp_readable(struct od_dns_server *s, size_t li)
{
	int fd = s->udp_fd[li];

	for (int round = 0; round < UDP_BATCHES_PER_EVENT; round++) {
		const struct dns_zone *z;
		unsigned out = 0;
		int n;

		for (size_t i = 0; i < BATCH; i++) {
			s->rx[i].msg_hdr.msg_namelen = sizeof(s->rx_addr[i]);
			s->rx[i].msg_hdr.msg_flags = 0;
		}
		n = recvmmsg(fd, s->rx, BATCH, MSG_DONTWAIT, NULL);
		if (n <= 0)
			return;
		z = zone_current(s);
		bump(&s->c.udp_queries, (uint64_t)n);
		for (int i = 0; i < n; i++) {
			struct msghdr *h = &s->rx[i].msg_hdr;
			struct origin o = { .listen = li, .addr = h->msg_name, .addr_len = h->msg_namelen };
			size_t len;

			if (h->msg_flags & MSG_TRUNC) {
				bump(&s->c.dropped, 1);
				continue;
			}
			len = serve(s, z, s->rx_buf[i], s->rx[i].msg_len, &o, s->tx_buf[out], DNS_UDP_OUR_MAX);
			if (!len)
				continue;
			s->tx_iov[out].iov_len = len;
			s->tx[out].msg_hdr.msg_name = h->msg_name;
			s->tx[out].msg_hdr.msg_namelen = h->msg_namelen;
			out++;
		}
		udp_send(s, fd, out);
		if (n < BATCH)
			return;
	}
}

/* ---- TCP connections */

static void lru_unlink(struct od_dns_server *s, struct tcp_conn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		s->lru_head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	else
		s->lru_tail = c->prev;
	c->prev = c->next = NULL;
}

static void lru_append(struct od_dns_server *s, struct tcp_conn *c)
{
	c->prev = s->lru_tail;
	c->next = NULL;
	if (s->lru_tail)
		s->lru_tail->next = c;
	else
		s->lru_head = c;
	s->lru_tail = c;
}

static void touch(struct od_dns_server *s, struct tcp_conn *c)
{
	c->last_active_ms = s->now_ms;
	if (s->lru_tail != c) {
		lru_unlink(s, c);
		lru_append(s, c);
	}
}

static void conn_close(struct od_dns_server *s, struct tcp_conn *c)
{
	if (c->fd < 0)
		return;
	close(c->fd);   /* also leaves the epoll set */
	c->fd = -1;
	c->gen++;
	free(c->in);
	c->in = NULL;
	c->in_len = c->in_cap = 0;
	od_outbuf_free(&c->out);
	lru_unlink(s, c);
	s->free_conns[s->n_free_conns++] = (uint16_t)(c - s->conns);
}

/* Writes what the socket takes and keeps the epoll interest in step: EPOLLIN until the client shuts
 * its side, EPOLLOUT while answers wait. */
static void conn_sync(struct od_dns_server *s, struct tcp_conn *c)
{
	size_t before = c->out.len - c->out.off;
	int rc = od_outbuf_flush(&c->out, c->fd);
	bool want_out = rc == 1;

	if (rc < 0 || (rc == 0 && c->eof)) {
		conn_close(s, c);
		return;
	}
	if (c->out.len - c->out.off < before)
		touch(s, c);
	if (want_out != c->want_out || c->eof) {
		struct epoll_event ev = {
			.events = (c->eof ? 0 : EPOLLIN) | (want_out ? EPOLLOUT : 0),
			.data.u64 = ev_tag(EV_CONN, (size_t)(c - s->conns), c->gen),
		};

		if (epoll_ctl(s->epfd, EPOLL_CTL_MOD, c->fd, &ev)) {
			conn_close(s, c);
			return;
		}
		c->want_out = want_out;
	}
}

/* Answers every complete message in c->in (pipelining: in order, each as soon as it is complete) and
 * keeps the incomplete rest. false when the connection was closed. */
static bool conn_process(struct od_dns_server *s, struct tcp_conn *c)
{
	const struct dns_zone *z = zone_current(s);
	struct origin o = { .tcp = true, .conn = c };
	size_t off = 0, need;

	while (c->in_len - off >= 2) {
		size_t mlen = get16(c->in + off), rlen;

		if (c->in_len - off < 2 + mlen)
			break;
		bump(&s->c.tcp_queries, 1);
		rlen = serve(s, z, c->in + off + 2, mlen, &o, s->tcp_out + 2, DNS_TCP_MAX);
		off += 2 + mlen;
		if (!rlen)
			continue;
		put16(s->tcp_out, (uint16_t)rlen);
		if (od_outbuf_append(&c->out, s->tcp_out, rlen + 2, OD_DNS_TCP_OUTBUF_MAX) < 0) {
			/* A client that sends without reading its answers. */
			bump(&s->c.dropped, 1);
			conn_close(s, c);
			return false;
		}
	}
	memmove(c->in, c->in + off, c->in_len - off);
	c->in_len -= off;
	/* Room for the whole message being received, so the next reads can complete it. */
	need = c->in_len >= 2 ? 2 + (size_t)get16(c->in) : 0;
	if (need > c->in_cap) {
		uint8_t *p = realloc(c->in, need);

		if (!p) {
			conn_close(s, c);
			return false;
		}
		c->in = p;
		c->in_cap = need;
	}
	return true;
}

static void conn_readable(struct od_dns_server *s, struct tcp_conn *c)
{
	if (!c->in) {
		c->in = malloc(TCP_IN_INITIAL);
		if (!c->in) {
			conn_close(s, c);
			return;
		}
		c->in_cap = TCP_IN_INITIAL;
	}
	for (int r = 0; r < TCP_READS_PER_EVENT && !c->eof; r++) {
		size_t room = c->in_cap - c->in_len;
		ssize_t n = recv(c->fd, c->in + c->in_len, room, MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			conn_close(s, c);
			return;
		}
		if (n == 0) {
			c->eof = true;
			break;
		}
		c->in_len += (size_t)n;
		touch(s, c);
		if (!conn_process(s, c))
			return;
		if ((size_t)n < room)
			break;   /* the socket is drained */
	}
	conn_sync(s, c);
}

static void conn_event(struct od_dns_server *s, size_t slot, uint32_t gen, uint32_t events)
{
	struct tcp_conn *c = &s->conns[slot];

	if (c->fd < 0 || c->gen != gen)
		return;   /* closed earlier in this round */
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
		conn_readable(s, c);
	else if (events & EPOLLOUT)
		conn_sync(s, c);
}

static void conn_admit(struct od_dns_server *s, int fd)
{
	struct tcp_conn *c;
	int one = 1;

	if (!s->n_free_conns) {
		/* At the limit the least recently active connection makes room: a flood of idle
		 * connections cannot lock out new clients. */
		bump(&s->c.tcp_closed_evicted, 1);
		conn_close(s, s->lru_head);
	}
	c = &s->conns[s->free_conns[--s->n_free_conns]];
	c->fd = fd;
	c->want_out = c->eof = false;
	memset(&c->out, 0, sizeof(c->out));
	/* Answers are written whole: Nagle would only delay the next pipelined one. */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (ep_add(s, fd, EPOLLIN, ev_tag(EV_CONN, (size_t)(c - s->conns), c->gen))) {
		close(fd);
		c->fd = -1;
		s->free_conns[s->n_free_conns++] = (uint16_t)(c - s->conns);
		return;
	}
	lru_append(s, c);
	c->last_active_ms = s->now_ms;
	bump(&s->c.tcp_connections, 1);
}

static void log_accept_error(struct od_dns_server *s, int e)
{
	/* At most one line per interval: a flood of failing accepts must not flood the log. */
	if (s->accept_log_ms && s->now_ms - s->accept_log_ms < ACCEPT_LOG_INTERVAL_MS)
		return;
	s->accept_log_ms = s->now_ms;
	od_error("dns.accept_failed", "err=%s", od_q(strerror(e)));
}

static void tcp_accept(struct od_dns_server *s, size_t li)
{
	for (int i = 0; i < ACCEPTS_PER_EVENT; i++) {
		int fd = accept4(s->tcp_fd[li], NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			if ((errno == EMFILE || errno == ENFILE) && s->lru_head) {
				/* Out of descriptors: the least recently active connection makes room, as
				 * at the connection limit (else the listener would stay readable forever). */
				bump(&s->c.tcp_closed_evicted, 1);
				conn_close(s, s->lru_head);
				log_accept_error(s, errno);
				continue;
			}
			log_accept_error(s, errno);
			return;
		}
		conn_admit(s, fd);
	}
}

static void idle_expire(struct od_dns_server *s)
{
	while (s->lru_head && s->lru_head->last_active_ms + OD_DNS_TCP_IDLE_MS <= s->now_ms) {
		bump(&s->c.tcp_closed_idle, 1);
		conn_close(s, s->lru_head);
	}
}

/* ---- the loop */

static int next_timeout(const struct od_dns_server *s)
{
	uint64_t next = UINT64_MAX;

	if (s->lru_head)
		next = s->lru_head->last_active_ms + OD_DNS_TCP_IDLE_MS;
	if (s->fwd_head && s->fwd_head->deadline_ms < next)
		next = s->fwd_head->deadline_ms;
	if (next == UINT64_MAX)
		return -1;
	return next <= s->now_ms ? 0 : (int)(next - s->now_ms);
}

static void *server_main(void *arg)
{
	struct od_dns_server *s = arg;
	struct epoll_event evs[EPOLL_EVENTS];

	for (;;) {
		int n;

		s->now_ms = now_ms();
		n = epoll_wait(s->epfd, evs, EPOLL_EVENTS, next_timeout(s));
		if (n < 0 && errno != EINTR) {
			od_error("dns.stopped", "err=%s", od_q(strerror(errno)));
			return NULL;
		}
		s->now_ms = now_ms();
		for (int i = 0; i < n; i++) {
			uint64_t tag = evs[i].data.u64;
			size_t index = (size_t)(tag >> 32 & 0xffffff);

			switch ((enum ev_kind)(tag >> 56)) {
			case EV_STOP: return NULL;
			case EV_UDP: udp_readable(s, index); break;
			case EV_LISTEN: tcp_accept(s, index); break;
			case EV_CONN: conn_event(s, index, (uint32_t)tag, evs[i].events); break;
			case EV_FORWARD: fwd_readable(s); break;
			}
		}
		fwd_expire(s);
		idle_expire(s);
	}
}

/* ---- start and stop */

/* A socket bound to ip:port. FREEBIND lets the overlay address be bound before the interface has it
 * (start-up order, or the address coming back after a restart of the link). SO_REUSEADDR only on the
 * TCP listener (a restart while old connections sit in TIME_WAIT): on UDP it would let a second server
 * share the port and split the queries silently instead of failing with "address in use". */
static int open_socket(const struct zl_ip *ip, uint16_t port, int type, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t len = od_sockaddr_make(ip, port, &ss);
	char text[OD_SOCKADDR_STRLEN];
	const char *proto = type == SOCK_DGRAM ? "udp" : "tcp";
	int one = 1, fd, rc;

	od_sockaddr_format((struct sockaddr *)&ss, text);
	fd = socket(ip->family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return zl_errorf(err, errlen, -errno, "dns %s %s: socket: %s", proto, text, strerror(errno));
	if (ip->family == AF_INET6)
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (type == SOCK_STREAM)
		(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ip->family == AF_INET)
		(void)setsockopt(fd, IPPROTO_IP, IP_FREEBIND, &one, sizeof(one));
	else
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_FREEBIND, &one, sizeof(one));
	if (type == SOCK_DGRAM) {
		int size = UDP_RCVBUF;

		(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	}
	if (bind(fd, (struct sockaddr *)&ss, len) || (type == SOCK_STREAM && listen(fd, LISTEN_BACKLOG))) {
		rc = -errno;
		close(fd);
		return zl_errorf(err, errlen, rc, "dns %s %s: %s", proto, text, strerror(-rc));
	}
	return fd;
}

static int open_forward(const struct od_dns_config *cfg, char *err, size_t errlen)
{
	char text[OD_SOCKADDR_STRLEN];
	int fd, rc;

	od_sockaddr_format((const struct sockaddr *)&cfg->forward_addr, text);
	fd = socket(cfg->forward_addr.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return zl_errorf(err, errlen, -errno, "dns forwarder %s: socket: %s", text, strerror(errno));
	/* Connected: the kernel already drops datagrams from other sources (and the source is checked
	 * again on receipt); the local port is a random ephemeral one. */
	if (connect(fd, (const struct sockaddr *)&cfg->forward_addr, cfg->forward_len)) {
		rc = -errno;
		close(fd);
		return zl_errorf(err, errlen, rc, "dns forwarder %s: %s", text, strerror(-rc));
	}
	return fd;
}

static void init_batches(struct od_dns_server *s)
{
	for (size_t i = 0; i < BATCH; i++) {
		s->rx_iov[i] = (struct iovec){ .iov_base = s->rx_buf[i], .iov_len = sizeof(s->rx_buf[i]) };
		s->rx[i].msg_hdr = (struct msghdr){ .msg_name = &s->rx_addr[i], .msg_iov = &s->rx_iov[i], .msg_iovlen = 1 };
		s->tx_iov[i] = (struct iovec){ .iov_base = s->tx_buf[i] };
		s->tx[i].msg_hdr = (struct msghdr){ .msg_iov = &s->tx_iov[i], .msg_iovlen = 1 };
	}
	for (size_t i = 0; i < OD_DNS_TCP_MAX_CONNS; i++) {
		s->conns[i].fd = -1;
		s->free_conns[i] = (uint16_t)(OD_DNS_TCP_MAX_CONNS - 1 - i);
	}
	s->n_free_conns = OD_DNS_TCP_MAX_CONNS;
	for (size_t i = 0; i < OD_DNS_FORWARD_PENDING_MAX; i++)
		s->free_pending[i] = (uint16_t)(OD_DNS_FORWARD_PENDING_MAX - 1 - i);
	s->n_free_pending = OD_DNS_FORWARD_PENDING_MAX;
}

static int open_all(struct od_dns_server *s, char *err, size_t errlen)
{
	const struct od_dns_config *cfg = &s->cfg;
	int rc;

	s->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (s->epfd < 0)
		return zl_errorf(err, errlen, -errno, "dns: epoll: %s", strerror(errno));
	s->stopfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (s->stopfd < 0)
		return zl_errorf(err, errlen, -errno, "dns: eventfd: %s", strerror(errno));
	if ((rc = ep_add(s, s->stopfd, EPOLLIN, ev_tag(EV_STOP, 0, 0))))
		return zl_errorf(err, errlen, rc, "dns: epoll: %s", strerror(-rc));
	for (size_t i = 0; i < cfg->n_listen; i++) {
		s->udp_fd[i] = open_socket(&cfg->listen[i], cfg->port, SOCK_DGRAM, err, errlen);
		if (s->udp_fd[i] < 0)
			return s->udp_fd[i];
		s->tcp_fd[i] = open_socket(&cfg->listen[i], cfg->port, SOCK_STREAM, err, errlen);
		if (s->tcp_fd[i] < 0)
			return s->tcp_fd[i];
		if ((rc = ep_add(s, s->udp_fd[i], EPOLLIN, ev_tag(EV_UDP, i, 0))) ||
		    (rc = ep_add(s, s->tcp_fd[i], EPOLLIN, ev_tag(EV_LISTEN, i, 0))))
			return zl_errorf(err, errlen, rc, "dns: epoll: %s", strerror(-rc));
	}
	if (cfg->forward) {
		s->fwd_fd = open_forward(cfg, err, errlen);
		if (s->fwd_fd < 0)
			return s->fwd_fd;
		if ((rc = ep_add(s, s->fwd_fd, EPOLLIN, ev_tag(EV_FORWARD, 0, 0))))
			return zl_errorf(err, errlen, rc, "dns: epoll: %s", strerror(-rc));
	}
	return 0;
}

static void server_free(struct od_dns_server *s)
{
	int *fds[] = { &s->epfd, &s->stopfd, &s->fwd_fd };

	for (size_t i = 0; i < OD_DNS_TCP_MAX_CONNS; i++)
		conn_close(s, &s->conns[i]);
	for (size_t i = 0; i < OD_DNS_MAX_LISTEN; i++) {
		if (s->udp_fd[i] >= 0)
			close(s->udp_fd[i]);
		if (s->tcp_fd[i] >= 0)
			close(s->tcp_fd[i]);
	}
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
		if (*fds[i] >= 0)
			close(*fds[i]);
	}
	dns_zone_unref(s->cur);
	dns_zone_unref(s->zone);
	pthread_mutex_destroy(&s->zone_lock);
	free(s);
}

static int check_config(const struct od_dns_config *cfg, char *err, size_t errlen)
{
	if (!cfg->n_listen || cfg->n_listen > OD_DNS_MAX_LISTEN)
		return zl_errorf(err, errlen, -EINVAL, "dns: 1 to %d listen addresses, not %zu", OD_DNS_MAX_LISTEN,
			    cfg->n_listen);
	if (!cfg->port)
		return zl_errorf(err, errlen, -EINVAL, "dns: port 0 (UDP and TCP must share one port)");
	for (size_t i = 0; i < cfg->n_listen; i++) {
		if (cfg->listen[i].family != AF_INET && cfg->listen[i].family != AF_INET6)
			return zl_errorf(err, errlen, -EINVAL, "dns: listen address %zu is not IPv4 or IPv6", i);
	}
	if (cfg->forward && ((cfg->forward_addr.ss_family != AF_INET && cfg->forward_addr.ss_family != AF_INET6) ||
			     !cfg->forward_len || cfg->forward_len > sizeof(cfg->forward_addr)))
		return zl_errorf(err, errlen, -EINVAL, "dns: the forwarder is not an IPv4 or IPv6 socket address");
	return 0;
}

int od_dns_server_start(const struct od_dns_config *cfg, struct dns_zone *zone, struct od_dns_server **out,
			char *err, size_t errlen)
{
	struct od_dns_server *s;
	sigset_t all, old;
	int rc;

	*out = NULL;
	if ((rc = check_config(cfg, err, errlen)))
		return rc;
	if (sodium_init() < 0)
		return zl_errorf(err, errlen, -EIO, "dns: libsodium initialisation failed");
	s = calloc(1, sizeof(*s));
	if (!s)
		return zl_errorf(err, errlen, -ENOMEM, "dns: out of memory");
	s->cfg = *cfg;
	s->epfd = s->stopfd = s->fwd_fd = -1;
	for (size_t i = 0; i < OD_DNS_MAX_LISTEN; i++)
		s->udp_fd[i] = s->tcp_fd[i] = -1;
	pthread_mutex_init(&s->zone_lock, NULL);
	s->zone = zone ? dns_zone_ref(zone) : NULL;
	atomic_init(&s->zone_gen, 1);   /* the thread starts at 0: it picks the zone up at once */
	init_batches(s);
	if ((rc = open_all(s, err, errlen))) {
		server_free(s);
		return rc;
	}
	/* The thread takes no signals: the daemon's loop thread handles them. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = -pthread_create(&s->thread, NULL, server_main, s);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc) {
		server_free(s);
		return zl_errorf(err, errlen, rc, "dns: thread: %s", strerror(-rc));
	}
	s->thread_started = true;
	*out = s;
	return 0;
}

void od_dns_server_set_zone(struct od_dns_server *s, struct dns_zone *zone)
{
	struct dns_zone *old;

	pthread_mutex_lock(&s->zone_lock);
	old = s->zone;
	s->zone = zone ? dns_zone_ref(zone) : NULL;
	atomic_fetch_add_explicit(&s->zone_gen, 1, memory_order_release);
	pthread_mutex_unlock(&s->zone_lock);
	dns_zone_unref(old);
}

void od_dns_server_stop(struct od_dns_server *s)
{
	uint64_t one = 1;

	if (!s)
		return;
	if (s->thread_started) {
		if (write(s->stopfd, &one, sizeof(one)) != sizeof(one))
			od_error("dns.stop_failed", "err=%s", od_q(strerror(errno)));
		pthread_join(s->thread, NULL);
	}
	server_free(s);
}

static uint64_t load(const _Atomic uint64_t *c)
{
	return atomic_load_explicit((_Atomic uint64_t *)c, memory_order_relaxed);
}

void od_dns_server_stats(const struct od_dns_server *s, struct od_dns_stats *out)
{
	const struct counters *c = &s->c;

	memset(out, 0, sizeof(*out));
	out->udp_queries = load(&c->udp_queries);
	out->tcp_queries = load(&c->tcp_queries);
	for (size_t i = 0; i < OD_DNS_RC_SLOTS; i++)
		out->responses[i] = load(&c->responses[i]);
	out->dropped = load(&c->dropped);
	out->truncated = load(&c->truncated);
	out->forwarded = load(&c->forwarded);
	out->forward_timeouts = load(&c->forward_timeouts);
	out->tcp_connections = load(&c->tcp_connections);
	out->tcp_closed_idle = load(&c->tcp_closed_idle);
	out->tcp_closed_evicted = load(&c->tcp_closed_evicted);
}

/* ---- the forwarder option */

static int parse_port(const char *p, uint16_t *out)
{
	unsigned long v = 0;
	size_t n = 0;

	for (; p[n]; n++) {
		if (p[n] < '0' || p[n] > '9' || n >= 5)
			return -EINVAL;
		v = v * 10 + (unsigned long)(p[n] - '0');
	}
	if (!n || !v || v > 65535)
		return -EINVAL;
	*out = (uint16_t)v;
	return 0;
}

int od_dns_parse_forward(const char *text, struct od_dns_config *cfg, char *err, size_t errlen)
{
	char host[ZL_IP_STRLEN];
	const char *port_text = NULL, *colon;
	bool bracketed = text && text[0] == '[';
	size_t hlen;
	uint16_t port = 53;
	struct zl_ip ip;

	if (!text || !*text)
		return zl_errorf(err, errlen, -EINVAL, "forwarder: empty address");
	colon = strchr(text, ':');
	if (bracketed) {
		const char *close = strchr(text, ']');

		if (!close || (close[1] && close[1] != ':'))
			return zl_errorf(err, errlen, -EINVAL, "forwarder: expected [IPV6]:PORT");
		hlen = (size_t)(close - text - 1);
		text++;
		port_text = close[1] ? close + 2 : NULL;
	} else if (colon && !strchr(colon + 1, ':')) {
		hlen = (size_t)(colon - text);   /* one colon: ADDR:PORT */
		port_text = colon + 1;
	} else {
		hlen = strlen(text);             /* no colon (IPv4) or several (a bare IPv6 address) */
	}
	if (hlen >= sizeof(host))
		return zl_errorf(err, errlen, -EINVAL, "forwarder: not an IP address (names are not looked up)");
	memcpy(host, text, hlen);
	host[hlen] = '\0';
	if (zl_ip_parse(host, &ip, NULL, 0))
		return zl_errorf(err, errlen, -EINVAL, "forwarder: not an IP address (names are not looked up)");
	if (bracketed && ip.family != AF_INET6)
		return zl_errorf(err, errlen, -EINVAL, "forwarder: brackets are for IPv6 addresses");
	if (port_text && parse_port(port_text, &port))
		return zl_errorf(err, errlen, -EINVAL, "forwarder: port must be 1 to 65535");
	cfg->forward_len = od_sockaddr_make(&ip, port, &cfg->forward_addr);
	cfg->forward = true;
	if (errlen)
		err[0] = '\0';
	return 0;
}
