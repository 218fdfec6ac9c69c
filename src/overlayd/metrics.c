/* The metrics endpoint: see metrics.h (the families), metrics_http.h (the server) and metrics_text.h
 * (the format). This file checks the address, starts the server and gathers the figures. */
#include "overlayd/metrics.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "overlayd/dns.h"
#include "overlayd/log.h"
#include "overlayd/metrics_http.h"
#include "overlayd/metrics_text.h"
#include "overlayd/net.h"
#include "overlayd/prober.h"
#include "overlayd/svc_check.h"

#define PREFIX "zl_overlay_"
#define CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define METRICS_PATH "/metrics"

enum { PORT_DIGITS_MAX = 5, ADDR_TEXT_MAX = 64 };

struct od_metrics {
	struct od_http_server *http;
};

/* ---- the address rule */

static bool is_loopback(const struct zl_ip *ip)
{
	static const uint8_t v6_loopback[16] = { [15] = 1 };

	if (ip->family == AF_INET)
		return ip->addr[0] == 127;
	return !memcmp(ip->addr, v6_loopback, sizeof(v6_loopback));
}

static bool is_unspecified(const struct zl_ip *ip)
{
	static const uint8_t zero[16];

	return !memcmp(ip->addr, zero, ip->family == AF_INET ? 4 : 16);
}

/* Decimal 1..65535, digits only. */
static bool parse_port(const char *s, uint16_t *out)
{
	size_t n = strlen(s);
	unsigned v = 0;

	if (n < 1 || n > PORT_DIGITS_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v < 1 || v > 65535)
		return false;
	*out = (uint16_t)v;
	return true;
}

/* Splits "ADDR:PORT" / "[V6]:PORT" into host and port text. false with a message. */
static bool split_host_port(const char *text, char host[ADDR_TEXT_MAX], const char **port, char *err, size_t errlen)
{
	const char *colon, *start = text, *end;

	if (text[0] == '[') {
		start = text + 1;
		end = strchr(start, ']');
		if (!end || end[1] != ':') {
			snprintf(err, errlen, "--metrics '%s': expected [IPV6]:PORT", text);
			return false;
		}
		colon = end + 1;
	} else {
		colon = strrchr(text, ':');
		if (!colon) {
			snprintf(err, errlen, "--metrics '%s': missing port (expected ADDR:PORT)", text);
			return false;
		}
		end = colon;
		if (memchr(text, ':', (size_t)(colon - text))) {
			snprintf(err, errlen, "--metrics '%s': an IPv6 address goes in brackets: [ADDR]:PORT", text);
			return false;
		}
	}
	if ((size_t)(end - start) >= ADDR_TEXT_MAX || end == start) {
		snprintf(err, errlen, "--metrics '%s': %s address", text, end == start ? "missing" : "overlong");
		return false;
	}
	memcpy(host, start, (size_t)(end - start));
	host[end - start] = '\0';
	*port = colon + 1;
	return true;
}

static bool parse_ip(const char *text, const char *host, bool bracketed, struct zl_ip *ip, char *err, size_t errlen)
{
	if (zl_ip_parse(host, ip, NULL, 0) || (ip->family == AF_INET6) != bracketed) {
		snprintf(err, errlen, "--metrics '%s': '%s' is not an %s address (names are not looked up)", text, host,
			 bracketed ? "IPv6" : "IPv4");
		return false;
	}
	return true;
}

int od_metrics_parse_addr(const char *text, const char *node_ip, struct sockaddr_storage *out, socklen_t *len,
			  char *err, size_t errlen)
{
	char host[ADDR_TEXT_MAX], ipbuf[ZL_IP_STRLEN];
	const char *port_text;
	struct zl_ip ip, own;
	uint16_t port;
	bool own_ok = node_ip && *node_ip && !zl_ip_parse(node_ip, &own, NULL, 0);

	if (!text || !*text) {
		snprintf(err, errlen, "--metrics: empty address (expected ADDR:PORT or [IPV6]:PORT)");
		return -EINVAL;
	}
	if (strnlen(text, OD_OPT_TEXT_SIZE) >= OD_OPT_TEXT_SIZE) {
		snprintf(err, errlen, "--metrics: address too long");
		return -EINVAL;
	}
	if (!split_host_port(text, host, &port_text, err, errlen) ||
	    !parse_ip(text, host, text[0] == '[', &ip, err, errlen))
		return -EINVAL;
	if (!parse_port(port_text, &port)) {
		snprintf(err, errlen, "--metrics '%s': port must be a number from 1 to 65535", text);
		return -EINVAL;
	}
	if (is_unspecified(&ip)) {
		snprintf(err, errlen, "--metrics '%s': the wildcard address would serve metrics on every interface, the "
			 "underlay included; use a loopback address or this node's overlay address%s%s", text,
			 own_ok ? " " : "", own_ok ? zl_ip_format(&own, ipbuf) : "");
		return -EINVAL;
	}
	if (!is_loopback(&ip) && !(own_ok && zl_ip_equal(&ip, &own))) {
		snprintf(err, errlen, "--metrics '%s': %s is neither a loopback address (127.0.0.0/8, ::1) nor this "
			 "node's overlay address%s%s; metrics are never served on the underlay", text, host,
			 own_ok ? " " : "", own_ok ? zl_ip_format(&own, ipbuf) : "");
		return -EINVAL;
	}
	*len = od_sockaddr_make(&ip, port, out);
	return 0;
}

/* ---- figures of the other services (each absent while its service is off) */

static bool peer_health(const struct od_node *n, const uint8_t key[ZL_KEY_LEN], struct od_peer_health *out)
{
	return n->prober && od_prober_peer_health(n, key, out);
}

static bool prober_stats(const struct od_node *n, struct od_prober_stats *out)
{
	if (!n->prober)
		return false;
	od_prober_stats(n, out);
	return true;
}

static enum od_svc_state service_state(const struct od_node *n, const struct zl_state_dns_record *rec)
{
	return n->checks ? od_svc_checks_state(n, rec) : OD_SVC_UNCHECKED;
}

/* ---- rendering */

struct peer_row {
	struct od_prom_label labels[3];   /* node_id, hostname, overlay_ip (strings of n->st.peers) */
	bool live;                        /* the device has this peer */
	uint64_t rx, tx;
	double handshake_age;             /* seconds; < 0 = never */
	bool have_health;
	struct od_peer_health health;
};

static uint64_t wall_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void collect_peer(struct od_node *n, const struct zl_state_peer *p, uint64_t now, struct peer_row *r)
{
	struct wg_peer *wp = n->dev ? wg_device_find_peer(n->dev, p->public_key) : NULL;

	r->labels[0] = (struct od_prom_label){ "node_id", p->node_id };
	r->labels[1] = (struct od_prom_label){ "hostname", p->hostname };
	r->labels[2] = (struct od_prom_label){ "overlay_ip", p->overlay_ip };
	r->handshake_age = -1;
	if (wp) {
		struct wg_peer_info info;

		wg_peer_get_info(wp, &info);
		r->live = true;
		r->rx = info.rx_bytes;
		r->tx = info.tx_bytes;
		if (info.last_handshake_wall_ns)
			r->handshake_age = now > info.last_handshake_wall_ns ?
						   (double)(now - info.last_handshake_wall_ns) / 1e9 : 0;
		/* The info carries the preshared key: it does not outlive this call. */
		explicit_bzero(&info, sizeof(info));
	}
	r->have_health = peer_health(n, p->public_key, &r->health);
}

enum peer_figure { RX, TX, HANDSHAKE_AGE, RTT, JITTER, LOSS, HEALTHY };

/* One peer's value of a family, or false when the family has no sample for it. */
static bool peer_value(const struct peer_row *r, enum peer_figure f, double *v)
{
	const struct od_peer_health *h = &r->health;

	switch (f) {
	case RX: *v = (double)r->rx; return r->live;
	case TX: *v = (double)r->tx; return r->live;
	case HANDSHAKE_AGE: *v = r->handshake_age; return r->handshake_age >= 0;
	/* No RTT before the first reply: 0 would read as a perfect link. */
	case RTT: *v = h->rtt_ms / 1000; return r->have_health && h->replies > 0;
	case JITTER: *v = h->jitter_ms / 1000; return r->have_health && h->replies > 0;
	case LOSS: *v = h->loss; return r->have_health && h->known;
	case HEALTHY: *v = h->healthy ? 1 : 0; return r->have_health;
	}
	return false;
}

static const struct {
	enum peer_figure fig;
	const char *name;
	enum od_prom_type type;
	const char *help;
} peer_families[] = {
	{ RX, PREFIX "peer_rx_bytes_total", OD_PROM_COUNTER, "Bytes received from the peer (WireGuard UDP payloads)." },
	{ TX, PREFIX "peer_tx_bytes_total", OD_PROM_COUNTER, "Bytes sent to the peer (WireGuard UDP payloads)." },
	{ HANDSHAKE_AGE, PREFIX "peer_last_handshake_age_seconds", OD_PROM_GAUGE,
	  "Seconds since the last completed WireGuard handshake with the peer (absent before the first)." },
	{ RTT, PREFIX "peer_rtt_seconds", OD_PROM_GAUGE, "Smoothed round-trip time of overlay probes to the peer." },
	{ JITTER, PREFIX "peer_jitter_seconds", OD_PROM_GAUGE, "Jitter of the probe round-trip time (RFC 3550)." },
	{ LOSS, PREFIX "peer_loss_ratio", OD_PROM_GAUGE, "Fraction of recent probes to the peer that got no answer." },
	{ HEALTHY, PREFIX "peer_healthy", OD_PROM_GAUGE,
	  "1 when the peer answers probes and its handshake is recent, else 0." },
};

static void write_peers(struct od_prom *p, const struct peer_row *rows, size_t n_rows)
{
	for (size_t f = 0; f < sizeof(peer_families) / sizeof(peer_families[0]); f++) {
		od_prom_family(p, peer_families[f].name, peer_families[f].type, peer_families[f].help);
		for (size_t i = 0; i < n_rows; i++) {
			double v;

			if (!peer_value(&rows[i], peer_families[f].fig, &v))
				continue;
			if (peer_families[f].type == OD_PROM_COUNTER)
				od_prom_u64(p, rows[i].labels, 3, peer_families[f].fig == RX ? rows[i].rx : rows[i].tx);
			else
				od_prom_double(p, rows[i].labels, 3, v);
		}
	}
}

static void write_dns(struct od_prom *p, const struct od_node *n)
{
	struct od_dns_stats st;

	if (!od_dns_stats(n, &st))
		return;
	od_prom_family(p, PREFIX "dns_queries_total", OD_PROM_COUNTER, "DNS queries received, by transport.");
	od_prom_u64(p, &(struct od_prom_label){ "transport", "udp" }, 1, st.udp_queries);
	od_prom_u64(p, &(struct od_prom_label){ "transport", "tcp" }, 1, st.tcp_queries);
	od_prom_family(p, PREFIX "dns_responses_total", OD_PROM_COUNTER, "DNS responses sent, by response code.");
	for (int slot = 0; slot < OD_DNS_RC_SLOTS; slot++)
		od_prom_u64(p, &(struct od_prom_label){ "rcode", od_dns_rcode_slot_name(slot) }, 1, st.responses[slot]);
}

static void write_addresses(struct od_prom *p, const struct od_node *n)
{
	char buf[ZL_U128_STRLEN];

	if (!n->st.config.is_leader || !n->ipam)
		return;
	od_prom_family(p, PREFIX "addresses_allocated", OD_PROM_GAUGE,
		       "Overlay addresses handed out by this leader (its own included).");
	od_prom_u64(p, NULL, 0, zl_ipam_allocated(n->ipam));
	od_prom_family(p, PREFIX "addresses_free", OD_PROM_GAUGE, "Usable overlay addresses not handed out yet.");
	od_prom_text(p, NULL, 0, zl_u128_format(zl_ipam_free_count(n->ipam), buf));
}

static void write_device(struct od_prom *p, const struct od_node *n)
{
	struct wg_device_counters c;

	if (!n->dev)
		return;
	wg_device_get_counters(n->dev, &c);
	od_prom_family(p, PREFIX "handshakes_total", OD_PROM_COUNTER,
		       "WireGuard handshakes this node initiated, and handshakes completed (either side).");
	od_prom_u64(p, &(struct od_prom_label){ "result", "initiated" }, 1, c.handshakes_initiated);
	od_prom_u64(p, &(struct od_prom_label){ "result", "completed" }, 1, c.handshakes_completed);
	od_prom_family(p, PREFIX "packets_rejected_total", OD_PROM_COUNTER, "Packets the WireGuard engine dropped, by reason.");
	for (int r = 0; r < WG_DROP_REASONS; r++)
		od_prom_u64(p, &(struct od_prom_label){ "reason", wg_drop_reason_name(r) }, 1, c.dropped[r]);
}

static void write_services(struct od_prom *p, const struct od_node *n)
{
	od_prom_family(p, PREFIX "service_healthy", OD_PROM_GAUGE,
		       "1 while a checked service address passes its check, 0 while it fails (absent before a verdict).");
	for (size_t i = 0; i < n->st.n_dns; i++) {
		const struct zl_state_dns_record *rec = &n->st.dns[i];
		enum od_svc_state s;

		if (rec->kind != ZL_DNS_ADDR || rec->check.kind == ZL_CHECK_NONE)
			continue;
		s = service_state(n, rec);
		/* Before the first verdict DNS serves the address, but a gauge should not claim it is up. */
		if (s != OD_SVC_UP && s != OD_SVC_DOWN)
			continue;
		od_prom_u64(p, (struct od_prom_label[]){ { "name", rec->name }, { "address", rec->addr } }, 2, s == OD_SVC_UP);
	}
}

static void write_probes(struct od_prom *p, const struct od_node *n)
{
	struct od_prober_stats st;

	if (!prober_stats(n, &st))
		return;
	od_prom_family(p, PREFIX "probes_sent_total", OD_PROM_COUNTER, "Health probes sent to peers.");
	od_prom_u64(p, NULL, 0, st.probes_sent);
	od_prom_family(p, PREFIX "probe_replies_total", OD_PROM_COUNTER, "Replies to this node's health probes.");
	od_prom_u64(p, NULL, 0, st.replies_received);
}

char *od_metrics_render(struct od_node *n, size_t *len)
{
	struct peer_row *rows = calloc(n->st.n_peers ? n->st.n_peers : 1, sizeof(*rows));
	uint64_t now = wall_ns();
	struct od_prom p;

	if (!rows)
		return NULL;
	for (size_t i = 0; i < n->st.n_peers; i++)
		collect_peer(n, &n->st.peers[i], now, &rows[i]);
	od_prom_init(&p);
	write_peers(&p, rows, n->st.n_peers);
	write_dns(&p, n);
	write_addresses(&p, n);
	write_device(&p, n);
	write_services(&p, n);
	write_probes(&p, n);
	free(rows);
	return od_prom_finish(&p, len);
}

/* ---- the server */

static char *render_body(void *ctx, size_t *len)
{
	return od_metrics_render(ctx, len);
}

int od_metrics_open(struct od_node *n, char *err, size_t errlen)
{
	struct od_http_config cfg = {
		.path = METRICS_PATH, .content_type = CONTENT_TYPE, .max_conns = OD_METRICS_MAX_CONNS,
		.request_max = OD_METRICS_REQUEST_MAX, .timeout_ms = OD_METRICS_TIMEOUT_MS, .body = render_body, .ctx = n,
	};
	struct sockaddr_storage ss;
	struct zl_ip ip;
	socklen_t sl;
	struct od_metrics *m;
	char text[OD_SOCKADDR_STRLEN];
	int rc;

	if (!n->opts.metrics[0])
		return 0;
	if ((rc = od_metrics_parse_addr(n->opts.metrics, n->st.config.node_ip, &ss, &sl, err, errlen)))
		return rc;
	if (!n->loop || !n->timers_ready) {
		snprintf(err, errlen, "metrics: the node is not started");
		return -EINVAL;
	}
	if (!(m = calloc(1, sizeof(*m))))
		return -ENOMEM;
	/* The overlay address is also bound to the overlay interface: a packet for it that arrives on the
	 * underlay (which the kernel would otherwise accept) never reaches the server. */
	od_sockaddr_ip((struct sockaddr *)&ss, &ip);
	rc = od_http_server_open(n->loop, &n->timers, (struct sockaddr *)&ss, sl,
				 is_loopback(&ip) ? NULL : n->ifname, &cfg, &m->http, err, errlen);
	if (rc) {
		free(m);
		return rc;
	}
	n->metrics = m;
	od_info("metrics.listening", "addr=%s path=%s", od_sockaddr_format((struct sockaddr *)&ss, text), METRICS_PATH);
	return 0;
}

void od_metrics_close(struct od_node *n)
{
	if (!n->metrics)
		return;
	od_http_server_close(n->metrics->http);
	free(n->metrics);
	n->metrics = NULL;
}
