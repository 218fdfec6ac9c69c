/* Active peer probes over the overlay: see prober.h. The figures and the up/down logic live in
 * overlay/health.c; this file owns the socket, the timer, the member list and the verdicts. */
#include "overlayd/prober.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "overlayd/events.h"
#include "overlayd/log.h"
#include "overlayd/net.h"

enum {
	PROBE_MAGIC_LEN = 4,
	PROBE_PACKET_LEN = 24,          /* magic, type, 3 zero bytes, seq, sender's ns */
	PROBE_TYPE_PROBE = 1,
	PROBE_TYPE_REPLY = 2,
	RECV_BATCH = 64,                /* datagrams per wakeup: keeps the loop fair to the tunnel */
};

static const uint8_t probe_magic[PROBE_MAGIC_LEN] = { 'Z', 'L', 'P', '1' };

/* One member being probed. Copies of its names so that events can name it without the state. */
struct tracked {
	uint8_t public_key[ZL_KEY_LEN];
	struct zl_ip ip;
	char node_id[ZL_NODE_ID_SIZE];
	char overlay_ip[ZL_ADDR_STRLEN];
	char hostname[ZL_HOSTNAME_SIZE];
	struct zl_health h;
	bool reported;                  /* a verdict was announced ... */
	bool reported_healthy;          /* ... and this was it */
};

struct od_prober {
	struct od_node *node;
	uint16_t port;
	struct wg_loop_source src;       /* the probe socket */
	struct od_timer timer;
	uint32_t interval_ms, misses, handshake_timeout_s;
	struct tracked *peers;
	size_t n_peers;
	struct od_prober_stats stats;
};

/* ---- packets */

static void put_u64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static uint64_t get_u64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

static void build_packet(uint8_t pkt[PROBE_PACKET_LEN], uint8_t type, uint64_t seq)
{
	memset(pkt, 0, PROBE_PACKET_LEN);
	memcpy(pkt, probe_magic, PROBE_MAGIC_LEN);
	pkt[4] = type;
	put_u64(pkt + 8, seq);
	put_u64(pkt + 16, od_now_ns());
}

/* Returns the type (probe or reply) with the sequence number, or 0 for anything malformed. */
static int parse_packet(const uint8_t *pkt, ssize_t len, uint64_t *seq)
{
	if (len != PROBE_PACKET_LEN || memcmp(pkt, probe_magic, PROBE_MAGIC_LEN) != 0)
		return 0;
	if (pkt[5] || pkt[6] || pkt[7])
		return 0;
	if (pkt[4] != PROBE_TYPE_PROBE && pkt[4] != PROBE_TYPE_REPLY)
		return 0;
	*seq = get_u64(pkt + 8);
	return pkt[4];
}

static bool send_packet(struct od_prober *p, const struct zl_ip *ip, uint16_t port, uint8_t type, uint64_t seq)
{
	struct sockaddr_storage ss;
	socklen_t sl = od_sockaddr_make(ip, port, &ss);
	uint8_t pkt[PROBE_PACKET_LEN];

	build_packet(pkt, type, seq);
	/* A full socket buffer or an unreachable peer costs this probe only: the state machine counts
	 * it as missed when its time is up. */
	return sendto(p->src.fd, pkt, sizeof(pkt), MSG_DONTWAIT, (struct sockaddr *)&ss, sl) == (ssize_t)sizeof(pkt);
}

/* ---- verdicts */

static int64_t wall_now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec;
}

/* Seconds since the member's last WireGuard handshake, -1 when none (or no device peer). */
static int64_t handshake_age(const struct od_node *n, const uint8_t key[ZL_KEY_LEN])
{
	struct wg_peer *wp = n->dev ? wg_device_find_peer(n->dev, key) : NULL;
	struct wg_peer_info info;
	int64_t age = -1, now;

	if (!wp)
		return -1;
	wg_peer_get_info(wp, &info);
	if (info.last_handshake_wall_ns) {
		now = wall_now_s();
		age = now - (int64_t)(info.last_handshake_wall_ns / 1000000000ull);
		if (age < 0)
			age = 0;    /* the wall clock stepped back */
	}
	explicit_bzero(&info, sizeof(info));   /* it carries the preshared key */
	return age;
}

static void reason_text(const struct od_prober *p, const struct tracked *t, bool healthy, int64_t age,
			char *out, size_t len)
{
	if (healthy)
		snprintf(out, len, "probe answered");
	else if (t->h.state != ZL_HEALTH_UP)
		snprintf(out, len, "%u probes missed", t->h.consecutive_misses);
	else if (age < 0)
		snprintf(out, len, "no handshake");
	else
		snprintf(out, len, "handshake %llds old (limit %us)", (long long)age, p->handshake_timeout_s);
}

/* The one place a verdict leaves this module: an event (events.c logs it as peer.up / peer.down at
 * info, tells watchers and runs the hook), with the probe figures in a debug line beside it. */
static void announce(struct od_prober *p, const struct tracked *t, bool healthy, const char *reason)
{
	struct od_event ev;

	od_debug("probe.verdict", "node_id=%s healthy=%s state=%s rtt_ms=%.3f loss=%.3f misses=%u",
		 od_q(t->node_id), healthy ? "true" : "false", zl_health_state_name(t->h.state),
		 t->h.have_rtt ? t->h.srtt_ms : 0.0, zl_health_loss(&t->h), t->h.consecutive_misses);
	memset(&ev, 0, sizeof(ev));
	ev.kind = OD_EVENT_PEER;
	ev.up = healthy;
	snprintf(ev.name, sizeof(ev.name), "%s", t->node_id);
	snprintf(ev.address, sizeof(ev.address), "%s", t->overlay_ip);
	snprintf(ev.hostname, sizeof(ev.hostname), "%s", t->hostname);
	snprintf(ev.reason, sizeof(ev.reason), "%s", reason);
	od_events_emit(p->node, &ev);
}

/* Announces the member's health when it differs from the last announcement, or is the first verdict. */
static void evaluate(struct od_prober *p, struct tracked *t)
{
	int64_t age;
	bool healthy;
	char reason[OD_EVENT_REASON_SIZE];

	if (!t->reported && t->h.state == ZL_HEALTH_UNKNOWN)
		return;
	age = handshake_age(p->node, t->public_key);
	healthy = zl_health_healthy(&t->h, age, p->handshake_timeout_s);
	if (t->reported && healthy == t->reported_healthy)
		return;
	t->reported = true;
	t->reported_healthy = healthy;
	reason_text(p, t, healthy, age, reason, sizeof(reason));
	announce(p, t, healthy, reason);
}

/* ---- timer and socket */

/* Does the tracked list still mirror st.peers (same keys and addresses, in order)? */
static bool in_step(const struct od_prober *p)
{
	const struct od_node *n = p->node;

	if (p->n_peers != n->st.n_peers)
		return false;
	for (size_t i = 0; i < p->n_peers; i++) {
		if (memcmp(p->peers[i].public_key, n->st.peers[i].public_key, ZL_KEY_LEN) ||
		    strcmp(p->peers[i].overlay_ip, n->st.peers[i].overlay_ip))
			return false;
	}
	return true;
}

static void on_tick(struct od_timer *tm)
{
	struct od_prober *p = wg_container_of(tm, struct od_prober, timer);
	uint64_t now = od_now_ns(), seq;

	/* od_prober_sync follows every change of st.peers; this catches a path that forgot it. */
	if (!in_step(p))
		od_prober_sync(p->node);

	for (size_t i = 0; i < p->n_peers; i++) {
		struct tracked *t = &p->peers[i];

		zl_health_tick(&t->h, now, &seq);
		evaluate(p, t);
		if (send_packet(p, &t->ip, p->port, PROBE_TYPE_PROBE, seq))
			p->stats.probes_sent++;
	}
	od_timer_arm(&p->node->timers, &p->timer, p->interval_ms);
}

static struct tracked *find_by_ip(struct od_prober *p, const struct zl_ip *ip)
{
	for (size_t i = 0; i < p->n_peers; i++)
		if (zl_ip_equal(&p->peers[i].ip, ip))
			return &p->peers[i];
	return NULL;
}

/* SO_BINDTODEVICE makes every source here a WireGuard-authenticated overlay address; it still has to
 * be a member's, and the packet well-formed, or it is dropped. */
static void handle_packet(struct od_prober *p, const uint8_t *pkt, ssize_t len, const struct sockaddr_storage *from)
{
	struct zl_ip ip;
	struct tracked *t;
	uint64_t seq;
	int type = parse_packet(pkt, len, &seq);

	if (!type || !od_sockaddr_ip((const struct sockaddr *)from, &ip)) {
		p->stats.dropped++;
		return;
	}
	/* Any member's probe is answered, tracked or not yet (it may have just joined). */
	if (type == PROBE_TYPE_PROBE && od_node_find_by_ip(p->node, &ip) >= 0) {
		uint16_t port = ntohs(from->ss_family == AF_INET6 ? ((const struct sockaddr_in6 *)from)->sin6_port
								   : ((const struct sockaddr_in *)from)->sin_port);

		if (send_packet(p, &ip, port, PROBE_TYPE_REPLY, seq))
			p->stats.probes_answered++;
		return;
	}
	if (type != PROBE_TYPE_REPLY || !(t = find_by_ip(p, &ip))) {
		p->stats.dropped++;
		return;
	}
	p->stats.replies_received++;
	zl_health_reply(&t->h, seq, od_now_ns());
	evaluate(p, t);
}

static void on_readable(struct wg_loop_source *src, uint32_t events)
{
	struct od_prober *p = wg_container_of(src, struct od_prober, src);

	(void)events;
	for (int i = 0; i < RECV_BATCH; i++) {
		uint8_t buf[PROBE_PACKET_LEN + 1];   /* one spare byte tells a longer datagram apart */
		struct sockaddr_storage from;
		socklen_t fl = sizeof(from);
		ssize_t len = recvfrom(src->fd, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&from, &fl);

		if (len < 0)
			return;
		handle_packet(p, buf, len, &from);
	}
}

/* Bound to the overlay address and the overlay device, as the membership socket (membership.c). */
static int probe_socket(struct od_node *n, uint16_t port, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t sl = od_sockaddr_make(&n->node_ip, port, &ss);
	int one = 1, fd = socket(n->node_ip.family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), rc;

	if (fd < 0)
		goto fail;
	if (setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, n->ifname, (socklen_t)strlen(n->ifname)) < 0)
		goto fail;
	if (n->node_ip.family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_FREEBIND, &one, sizeof(one));
	else
		setsockopt(fd, IPPROTO_IP, IP_FREEBIND, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, sl) < 0)
		goto fail;
	return fd;
fail:
	rc = -errno;
	snprintf(err, errlen, "probe socket on %s port %u: %s", n->st.config.node_ip, port, strerror(errno));
	if (fd >= 0)
		close(fd);
	return rc;
}

/* ---- members */

static uint64_t random_seq(void)
{
	uint64_t v = 0;

	/* Only needs to differ between runs (so replies to a previous instance do not count); the time
	 * is a fallback good enough for that. */
	if (getrandom(&v, sizeof(v), GRND_NONBLOCK) != (ssize_t)sizeof(v))
		v = od_now_ns() ^ ((uint64_t)getpid() << 32);
	return v;
}

static void track(struct od_prober *p, struct tracked *t, const struct zl_state_peer *sp, const struct zl_ip *ip)
{
	memset(t, 0, sizeof(*t));
	memcpy(t->public_key, sp->public_key, ZL_KEY_LEN);
	t->ip = *ip;
	zl_health_init(&t->h, p->misses, random_seq());
}

static const struct tracked *find_by_key(const struct od_prober *p, const uint8_t key[ZL_KEY_LEN])
{
	for (size_t i = 0; i < p->n_peers; i++)
		if (!memcmp(p->peers[i].public_key, key, ZL_KEY_LEN))
			return &p->peers[i];
	return NULL;
}

void od_prober_sync(struct od_node *n)
{
	struct od_prober *p = n->prober;
	struct tracked *next;
	size_t nn = 0;

	if (!p)
		return;
	next = calloc(n->st.n_peers ? n->st.n_peers : 1, sizeof(*next));
	if (!next) {
		od_error("probe.sync_failed", "err=%s", od_q(strerror(ENOMEM)));
		return;   /* keeps probing the previous member list */
	}
	for (size_t i = 0; i < n->st.n_peers; i++) {
		const struct zl_state_peer *sp = &n->st.peers[i];
		const struct tracked *old = find_by_key(p, sp->public_key);
		struct zl_ip ip;
		char e[64];

		if (zl_ip_parse(sp->overlay_ip, &ip, e, sizeof(e)) < 0 || ip.family != n->node_ip.family)
			continue;
		/* Same member at the same address: its history carries over. */
		if (old && zl_ip_equal(&old->ip, &ip))
			next[nn] = *old;
		else
			track(p, &next[nn], sp, &ip);
		snprintf(next[nn].node_id, sizeof(next[nn].node_id), "%s", sp->node_id);
		snprintf(next[nn].overlay_ip, sizeof(next[nn].overlay_ip), "%s", sp->overlay_ip);
		snprintf(next[nn].hostname, sizeof(next[nn].hostname), "%s", sp->hostname);
		nn++;
	}
	free(p->peers);
	p->peers = next;
	p->n_peers = nn;
}

/* ---- lifetime */

int od_prober_open(struct od_node *n, char *err, size_t errlen)
{
	struct od_prober *p;
	int fd, rc;

	if (n->st.config.port == 65535) {
		snprintf(err, errlen, "the probe port (listen_port + 1) does not exist for port 65535");
		return -EINVAL;
	}
	p = calloc(1, sizeof(*p));
	if (!p) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	p->node = n;
	p->port = (uint16_t)(n->st.config.port + 1);
	p->interval_ms = n->opts.probe_interval_ms ? n->opts.probe_interval_ms : OD_DEFAULT_PROBE_INTERVAL_MS;
	p->misses = n->opts.probe_misses ? n->opts.probe_misses : OD_DEFAULT_PROBE_MISSES;
	p->handshake_timeout_s = n->opts.handshake_timeout_s ? n->opts.handshake_timeout_s
							     : OD_DEFAULT_HANDSHAKE_TIMEOUT_S;
	p->src.fd = -1;
	fd = probe_socket(n, p->port, err, errlen);
	if (fd < 0) {
		free(p);
		return fd;
	}
	if ((rc = od_loop_watch(n->loop, &p->src, fd, on_readable, err, errlen))) {
		free(p);
		return rc;
	}
	n->prober = p;
	od_prober_sync(n);
	od_timer_init(&p->timer, on_tick);
	od_timer_arm(&n->timers, &p->timer, p->interval_ms);
	od_info("probe.started", "port=%u interval_ms=%u misses=%u handshake_timeout_s=%u", p->port,
		p->interval_ms, p->misses, p->handshake_timeout_s);
	return 0;
}

void od_prober_close(struct od_node *n)
{
	struct od_prober *p = n->prober;

	if (!p)
		return;
	od_timer_cancel(&n->timers, &p->timer);
	od_loop_close(n->loop, &p->src);
	free(p->peers);
	free(p);
	n->prober = NULL;
}

/* ---- queries */

bool od_prober_peer_health(const struct od_node *n, const uint8_t public_key[ZL_KEY_LEN], struct od_peer_health *out)
{
	const struct tracked *t = n->prober ? find_by_key(n->prober, public_key) : NULL;

	memset(out, 0, sizeof(*out));
	if (!t)
		return false;
	out->probe_state = t->h.state;
	out->known = t->h.state != ZL_HEALTH_UNKNOWN;
	out->handshake_age_s = handshake_age(n, public_key);
	out->healthy = zl_health_healthy(&t->h, out->handshake_age_s, n->prober->handshake_timeout_s);
	out->rtt_ms = t->h.have_rtt ? t->h.srtt_ms : 0;
	out->jitter_ms = t->h.have_rtt ? t->h.jitter_ms : 0;
	out->loss = zl_health_loss(&t->h);
	out->probes_sent = t->h.sent;
	out->replies = t->h.replies;
	return true;
}

void od_prober_stats(const struct od_node *n, struct od_prober_stats *out)
{
	if (n->prober)
		*out = n->prober->stats;
	else
		memset(out, 0, sizeof(*out));
}
