/* The DNS server thread over real sockets on 127.0.0.1 (loopback only): UDP answers (id, rcode, answer
 * count, addresses, rotation), a zone replaced while running, TCP with pipelined queries in one write
 * and split byte by byte, a stalled TCP client that does not block others and is closed when idle,
 * eviction at the connection limit, forwarding to a fake upstream in this process (id restored, answers
 * from elsewhere, with another id or question, or late ignored; a full pending table and the timeout ->
 * SERVFAIL), garbage counted as dropped, and the forwarder option's parser. Takes about 15 s (the idle and forward timeouts are real). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "dns/wire.h"
#include "dns/zone.h"
#include "overlayd/dns_server.h"
#include "test.h"

#define ZONE "overlay.local."

enum { WAIT_MS = 2000, MSG_MAX = 65535 };

static const uint8_t WEB1[4] = { 10, 200, 0, 11 }, WEB2[4] = { 10, 200, 0, 12 }, WEB3[4] = { 10, 200, 0, 13 };
static const uint8_t NODE5[4] = { 10, 200, 0, 5 }, NEWWEB[4] = { 10, 200, 9, 9 };
static const uint8_t NODE6[16] = { 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5 };

/* ---- helpers: zone, server, messages */

static struct dns_zone *make_zone(const uint8_t *web_extra)
{
	struct dns_zone_params p = { .apex = ZONE, .serial = 1, .refresh = 3600, .retry = 600,
				     .expire = 86400, .negative_ttl = 30, .ns_ttl = 300 };
	char err[160];
	struct dns_zone_builder *b = dns_zone_builder_new(&p, err, sizeof(err));
	int rc = 0;

	if (!b)
		return NULL;
	rc |= dns_zone_add_a(b, "ns", NODE5, 300, err, sizeof(err));
	rc |= dns_zone_add_a(b, "node-0-5", NODE5, 300, err, sizeof(err));
	rc |= dns_zone_add_aaaa(b, "node-0-5", NODE6, 300, err, sizeof(err));
	if (web_extra) {
		rc |= dns_zone_add_a(b, "web", web_extra, 300, err, sizeof(err));
	} else {
		rc |= dns_zone_add_a(b, "web", WEB1, 300, err, sizeof(err));
		rc |= dns_zone_add_a(b, "web", WEB2, 300, err, sizeof(err));
		rc |= dns_zone_add_a(b, "web", WEB3, 300, err, sizeof(err));
	}
	rc |= dns_zone_add_srv(b, "_http._tcp.web", 10, 5, 8080, "node-0-5", 300, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "  zone: %s\n", err);
		dns_zone_builder_free(b);
		return NULL;
	}
	return dns_zone_builder_finish(b);
}

/* A port that is free for both UDP and TCP on 127.0.0.1 right now. */
static uint16_t free_port(void)
{
	for (int tries = 0; tries < 50; tries++) {
		struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
		socklen_t len = sizeof(a);
		int t = socket(AF_INET, SOCK_STREAM, 0), u = socket(AF_INET, SOCK_DGRAM, 0);
		uint16_t port = 0;

		if (!bind(t, (struct sockaddr *)&a, sizeof(a)) && !getsockname(t, (struct sockaddr *)&a, &len) &&
		    !bind(u, (struct sockaddr *)&a, sizeof(a)))
			port = ntohs(a.sin_port);
		close(t);
		close(u);
		if (port)
			return port;
	}
	return 0;
}

static struct sockaddr_in loopback(uint16_t port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };

	return a;
}

static void base_config(struct od_dns_config *cfg, uint16_t port)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->listen[0].family = AF_INET;
	memcpy(cfg->listen[0].addr, (uint8_t[]){ 127, 0, 0, 1 }, 4);
	cfg->n_listen = 1;
	cfg->port = port;
}

static struct od_dns_server *start(const struct od_dns_config *cfg, struct dns_zone *z)
{
	struct od_dns_server *s = NULL;
	char err[256];
	int rc = od_dns_server_start(cfg, z, &s, err, sizeof(err));

	if (rc)
		fprintf(stderr, "  start: %s\n", err);
	return s;
}

/* A query for name/qtype; edns_size 0 = no OPT. */
static size_t make_query(uint16_t id, const char *name, uint16_t qtype, uint16_t edns_size, uint8_t *out)
{
	struct dns_name n;
	size_t o = DNS_HEADER_LEN;

	if (dns_name_from_text(name, &n))
		return 0;
	memset(out, 0, DNS_HEADER_LEN);
	out[0] = (uint8_t)(id >> 8);
	out[1] = (uint8_t)id;
	out[2] = 0x01;   /* RD */
	out[5] = 1;
	memcpy(out + o, n.wire, n.len);
	o += n.len;
	out[o++] = (uint8_t)(qtype >> 8);
	out[o++] = (uint8_t)qtype;
	out[o++] = 0;
	out[o++] = 1;
	if (edns_size) {
		out[11] = 1;
		out[o++] = 0;   /* root */
		out[o++] = 0;
		out[o++] = DNS_T_OPT;
		out[o++] = (uint8_t)(edns_size >> 8);
		out[o++] = (uint8_t)edns_size;
		memset(out + o, 0, 6);   /* extended rcode, version, flags, rdlength */
		o += 6;
	}
	return o;
}

struct reply {
	uint16_t id, flags, qd, an, ns, ar;
	size_t n_a, n_aaaa, n_srv;
	uint8_t a[8][4];
	uint8_t aaaa[8][16];
	uint16_t srv_port;
};

static uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

/* Skips a possibly compressed name; false when it runs off the message. */
static bool skip_name(const uint8_t *m, size_t len, size_t *off)
{
	while (*off < len) {
		uint8_t l = m[*off];

		if ((l & 0xc0) == 0xc0) {
			*off += 2;
			return *off <= len;
		}
		*off += 1u + l;
		if (!l)
			return *off <= len;
	}
	return false;
}

/* An independent reader of responses: header counts and the A / AAAA / SRV records of the answer
 * section. false on anything malformed. */
static bool parse_reply(const uint8_t *m, size_t len, struct reply *r)
{
	size_t off = DNS_HEADER_LEN;

	memset(r, 0, sizeof(*r));
	if (len < DNS_HEADER_LEN)
		return false;
	r->id = rd16(m);
	r->flags = rd16(m + 2);
	r->qd = rd16(m + 4);
	r->an = rd16(m + 6);
	r->ns = rd16(m + 8);
	r->ar = rd16(m + 10);
	for (unsigned i = 0; i < r->qd; i++) {
		if (!skip_name(m, len, &off) || off + 4 > len)
			return false;
		off += 4;
	}
	for (unsigned i = 0; i < r->an; i++) {
		uint16_t type, rdlen;

		if (!skip_name(m, len, &off) || off + 10 > len)
			return false;
		type = rd16(m + off);
		rdlen = rd16(m + off + 8);
		off += 10;
		if (off + rdlen > len)
			return false;
		if (type == DNS_T_A && rdlen == 4 && r->n_a < 8)
			memcpy(r->a[r->n_a++], m + off, 4);
		if (type == DNS_T_AAAA && rdlen == 16 && r->n_aaaa < 8)
			memcpy(r->aaaa[r->n_aaaa++], m + off, 16);
		if (type == DNS_T_SRV && rdlen >= 7) {
			r->n_srv++;
			r->srv_port = rd16(m + off + 4);
		}
		off += rdlen;
	}
	return true;
}

static unsigned rcode(const struct reply *r)
{
	return r->flags & 0xf;
}

static bool has_a(const struct reply *r, const uint8_t a[4])
{
	for (size_t i = 0; i < r->n_a; i++) {
		if (!memcmp(r->a[i], a, 4))
			return true;
	}
	return false;
}

static bool readable(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, ms) == 1;
}

static int udp_client(void)
{
	return socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
}

static void udp_send(int fd, uint16_t port, const uint8_t *m, size_t len)
{
	struct sockaddr_in a = loopback(port);

	CHECK(sendto(fd, m, len, 0, (struct sockaddr *)&a, sizeof(a)) == (ssize_t)len);
}

/* Waits for one datagram; 0 when none came within ms. */
static size_t udp_recv(int fd, uint8_t *buf, size_t cap, int ms)
{
	ssize_t n;

	if (!readable(fd, ms))
		return 0;
	n = recv(fd, buf, cap, 0);
	return n > 0 ? (size_t)n : 0;
}

/* One UDP round trip; false when no parsable answer came. */
static bool udp_ask(uint16_t port, uint16_t id, const char *name, uint16_t qtype, struct reply *r)
{
	uint8_t q[512], a[MSG_MAX];
	int fd = udp_client();
	size_t n, ql = make_query(id, name, qtype, 1232, q);

	udp_send(fd, port, q, ql);
	n = udp_recv(fd, a, sizeof(a), WAIT_MS);
	close(fd);
	return n && parse_reply(a, n, r);
}

static int tcp_connect(uint16_t port)
{
	struct sockaddr_in a = loopback(port);
	int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		close(fd);
		return -1;
	}
	return fd;
}

static size_t frame(uint16_t id, const char *name, uint16_t qtype, uint8_t *out)
{
	size_t n = make_query(id, name, qtype, 0, out + 2);

	out[0] = (uint8_t)(n >> 8);
	out[1] = (uint8_t)n;
	return n + 2;
}

static bool read_full(int fd, uint8_t *buf, size_t len)
{
	for (size_t got = 0; got < len;) {
		ssize_t n;

		if (!readable(fd, WAIT_MS))
			return false;
		n = recv(fd, buf + got, len - got, 0);
		if (n <= 0)
			return false;
		got += (size_t)n;
	}
	return true;
}

/* Reads one length-prefixed answer. */
static bool tcp_read_reply(int fd, struct reply *r)
{
	uint8_t len[2], m[MSG_MAX];

	return read_full(fd, len, 2) && read_full(fd, m, rd16(len)) && parse_reply(m, rd16(len), r);
}

/* True when the server closed fd within ms (EOF or reset). */
static bool closed_by_server(int fd, int ms)
{
	uint8_t b[64];
	ssize_t n;

	if (!readable(fd, ms))
		return false;
	n = recv(fd, b, sizeof(b), MSG_DONTWAIT);
	return n == 0 || (n < 0 && errno == ECONNRESET);
}

static uint64_t ms_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- tests */

static void test_parse_forward(void)
{
	static const struct { const char *text; int family; uint16_t port; } good[] = {
		{ "192.0.2.1", AF_INET, 53 }, { "192.0.2.1:5353", AF_INET, 5353 },
		{ "2001:db8::1", AF_INET6, 53 }, { "[2001:db8::1]", AF_INET6, 53 },
		{ "[2001:db8::1]:54", AF_INET6, 54 }, { "::1", AF_INET6, 53 }, { "127.0.0.1:65535", AF_INET, 65535 },
	};
	static const char *const bad[] = {
		"", "dns.example", "dns.example:53", "192.0.2.1:0", "192.0.2.1:65536", "192.0.2.1:", "192.0.2.1:5a",
		"192.0.2.1:+53", "[192.0.2.1]:53", "[2001:db8::1", "[2001:db8::1]x", "[2001:db8::1]:", "192.0.2.256",
		"192.0.2.1:053535", " 192.0.2.1",
	};
	char err[160];

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		struct od_dns_config cfg = { 0 };
		uint16_t port;

		CHECK(od_dns_parse_forward(good[i].text, &cfg, err, sizeof(err)) == 0);
		CHECK(cfg.forward);
		CHECK(cfg.forward_addr.ss_family == good[i].family);
		port = good[i].family == AF_INET ? ntohs(((struct sockaddr_in *)&cfg.forward_addr)->sin_port)
						 : ntohs(((struct sockaddr_in6 *)&cfg.forward_addr)->sin6_port);
		CHECK(port == good[i].port);
		CHECK(cfg.forward_len == (good[i].family == AF_INET ? sizeof(struct sockaddr_in)
								   : sizeof(struct sockaddr_in6)));
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct od_dns_config cfg = { 0 };

		err[0] = '\0';
		if (od_dns_parse_forward(bad[i], &cfg, err, sizeof(err)) != -EINVAL)
			fprintf(stderr, "  accepted '%s'\n", bad[i]);
		CHECK(!cfg.forward && cfg.forward_len == 0);
		CHECK(err[0] != '\0');
	}
}

static void test_rcode_names(void)
{
	CHECK(!strcmp(od_dns_rcode_slot_name(OD_DNS_RC_NOERROR), "NOERROR"));
	CHECK(!strcmp(od_dns_rcode_slot_name(OD_DNS_RC_NXDOMAIN), "NXDOMAIN"));
	CHECK(!strcmp(od_dns_rcode_slot_name(OD_DNS_RC_SERVFAIL), "SERVFAIL"));
	CHECK(!strcmp(od_dns_rcode_slot_name(OD_DNS_RC_BADVERS), "BADVERS"));
	CHECK(!strcmp(od_dns_rcode_slot_name(OD_DNS_RC_OTHER), "OTHER"));
	CHECK(!strcmp(od_dns_rcode_slot_name((enum od_dns_rcode_slot)99), "OTHER"));
}

static void test_start_errors(void)
{
	struct od_dns_config cfg;
	struct od_dns_server *s = NULL, *s2 = (struct od_dns_server *)&cfg;
	uint16_t port = free_port();
	char err[256];

	base_config(&cfg, port);
	cfg.n_listen = 0;
	CHECK(od_dns_server_start(&cfg, NULL, &s2, err, sizeof(err)) == -EINVAL && !s2);
	base_config(&cfg, 0);
	CHECK(od_dns_server_start(&cfg, NULL, &s2, err, sizeof(err)) == -EINVAL);

	/* The port taken: the second server fails and names the address. */
	base_config(&cfg, port);
	s = start(&cfg, NULL);
	CHECK(s != NULL);
	CHECK(od_dns_server_start(&cfg, NULL, &s2, err, sizeof(err)) == -EADDRINUSE && !s2);
	CHECK(strstr(err, "127.0.0.1") != NULL);
	od_dns_server_stop(s);
	od_dns_server_stop(NULL);
}

static void test_udp_answers(void)
{
	struct dns_zone *z = make_zone(NULL);
	struct od_dns_config cfg;
	struct od_dns_server *s;
	struct od_dns_stats st;
	struct reply r, r2;
	uint16_t port = free_port();

	base_config(&cfg, port);
	s = start(&cfg, z);
	CHECK(s != NULL);
	dns_zone_unref(z);   /* the server holds its own reference */
	if (!s)
		return;

	CHECK(udp_ask(port, 0x1234, "web." ZONE, DNS_T_A, &r));
	CHECK(r.id == 0x1234 && (r.flags & DNS_FLAG_QR) && (r.flags & DNS_FLAG_AA));
	CHECK(rcode(&r) == DNS_RCODE_NOERROR);
	CHECK(r.an == 3 && r.n_a == 3);
	CHECK(has_a(&r, WEB1) && has_a(&r, WEB2) && has_a(&r, WEB3));
	/* The next query sees the addresses rotated. */
	CHECK(udp_ask(port, 0x1235, "WEB.Overlay.Local.", DNS_T_A, &r2));
	CHECK(r2.id == 0x1235 && r2.n_a == 3 && memcmp(r.a[0], r2.a[0], 4) != 0);

	CHECK(udp_ask(port, 7, "node-0-5." ZONE, DNS_T_AAAA, &r));
	CHECK(r.id == 7 && rcode(&r) == DNS_RCODE_NOERROR && r.n_aaaa == 1 && !memcmp(r.aaaa[0], NODE6, 16));
	CHECK(udp_ask(port, 8, "_http._tcp.web." ZONE, DNS_T_SRV, &r));
	CHECK(r.id == 8 && r.n_srv == 1 && r.srv_port == 8080);
	CHECK(udp_ask(port, 9, "nope." ZONE, DNS_T_A, &r));
	CHECK(r.id == 9 && rcode(&r) == DNS_RCODE_NXDOMAIN && r.an == 0 && r.ns == 1);
	CHECK(udp_ask(port, 10, "www.example.com.", DNS_T_A, &r));
	CHECK(r.id == 10 && rcode(&r) == DNS_RCODE_REFUSED && r.an == 0);

	od_dns_server_stats(s, &st);
	CHECK(st.udp_queries == 6 && st.tcp_queries == 0);
	CHECK(st.responses[OD_DNS_RC_NOERROR] == 4);
	CHECK(st.responses[OD_DNS_RC_NXDOMAIN] == 1 && st.responses[OD_DNS_RC_REFUSED] == 1);
	CHECK(st.dropped == 0 && st.forwarded == 0);
	od_dns_server_stop(s);
}

static void test_set_zone(void)
{
	struct dns_zone *z = make_zone(NULL), *z2 = make_zone(NEWWEB);
	struct od_dns_config cfg;
	struct od_dns_server *s;
	struct reply r;
	uint16_t port = free_port();

	base_config(&cfg, port);
	s = start(&cfg, NULL);
	CHECK(s != NULL && z && z2);
	if (!s || !z || !z2)
		goto out;
	/* No zone yet: everything is outside the zone. */
	CHECK(udp_ask(port, 1, "web." ZONE, DNS_T_A, &r));
	CHECK(r.id == 1 && rcode(&r) == DNS_RCODE_REFUSED);
	od_dns_server_set_zone(s, z);
	CHECK(udp_ask(port, 2, "web." ZONE, DNS_T_A, &r));
	CHECK(rcode(&r) == DNS_RCODE_NOERROR && r.n_a == 3);
	od_dns_server_set_zone(s, z2);
	CHECK(udp_ask(port, 3, "web." ZONE, DNS_T_A, &r));
	CHECK(rcode(&r) == DNS_RCODE_NOERROR && r.n_a == 1 && has_a(&r, NEWWEB));
	od_dns_server_set_zone(s, NULL);
	CHECK(udp_ask(port, 4, "web." ZONE, DNS_T_A, &r));
	CHECK(rcode(&r) == DNS_RCODE_REFUSED);
	od_dns_server_set_zone(s, z);
	CHECK(udp_ask(port, 5, "web." ZONE, DNS_T_A, &r));
	CHECK(r.n_a == 3);
out:
	od_dns_server_stop(s);
	/* Our references are still ours to drop (ASan reports a double free or a leak otherwise). */
	dns_zone_unref(z);
	dns_zone_unref(z2);
}

static void test_garbage_dropped(void)
{
	struct dns_zone *z = make_zone(NULL);
	struct od_dns_config cfg;
	struct od_dns_server *s;
	struct od_dns_stats st;
	uint8_t q[512], a[MSG_MAX], big[5000];
	struct reply r;
	uint16_t port = free_port();
	int fd = udp_client();
	size_t n;

	base_config(&cfg, port);
	s = start(&cfg, z);
	dns_zone_unref(z);
	CHECK(s != NULL);
	if (!s)
		return;
	udp_send(fd, port, (const uint8_t *)"\x12\x34\x01", 3);          /* runt */
	n = make_query(0x4444, "web." ZONE, DNS_T_A, 0, q);
	q[2] |= 0x80;                                                     /* a response */
	udp_send(fd, port, q, n);
	memset(big, 0, sizeof(big));                                     /* larger than any query */
	udp_send(fd, port, big, sizeof(big));
	udp_send(fd, port, q, 0);                                         /* empty */
	/* A real query afterwards: the socket is served in order, so the garbage was seen before it. */
	n = make_query(0x5555, "web." ZONE, DNS_T_A, 0, q);
	udp_send(fd, port, q, n);
	n = udp_recv(fd, a, sizeof(a), WAIT_MS);
	CHECK(n && parse_reply(a, n, &r) && r.id == 0x5555);
	CHECK(udp_recv(fd, a, sizeof(a), 100) == 0);                      /* nothing else was answered */
	od_dns_server_stats(s, &st);
	CHECK(st.udp_queries == 5 && st.dropped == 4);
	CHECK(st.responses[OD_DNS_RC_NOERROR] == 1);
	close(fd);
	od_dns_server_stop(s);
}

static void test_tcp_pipelined(void)
{
	struct dns_zone *z = make_zone(NULL);
	struct od_dns_config cfg;
	struct od_dns_server *s;
	struct od_dns_stats st;
	uint8_t buf[2048];
	struct reply r;
	uint16_t port = free_port();
	size_t n = 0;
	int fd;

	base_config(&cfg, port);
	s = start(&cfg, z);
	dns_zone_unref(z);
	CHECK(s != NULL);
	if (!s)
		return;

	/* Three queries in one write, answered in order. */
	fd = tcp_connect(port);
	CHECK(fd >= 0);
	n += frame(101, "web." ZONE, DNS_T_A, buf + n);
	n += frame(102, "nope." ZONE, DNS_T_A, buf + n);
	n += frame(103, "node-0-5." ZONE, DNS_T_AAAA, buf + n);
	CHECK(send(fd, buf, n, 0) == (ssize_t)n);
	CHECK(tcp_read_reply(fd, &r) && r.id == 101 && rcode(&r) == DNS_RCODE_NOERROR && r.n_a == 3);
	CHECK(tcp_read_reply(fd, &r) && r.id == 102 && rcode(&r) == DNS_RCODE_NXDOMAIN);
	CHECK(tcp_read_reply(fd, &r) && r.id == 103 && r.n_aaaa == 1);

	/* The same connection, two queries sent one byte at a time. */
	n = frame(104, "web." ZONE, DNS_T_A, buf);
	n += frame(105, "_http._tcp.web." ZONE, DNS_T_SRV, buf + n);
	for (size_t i = 0; i < n; i++) {
		CHECK(send(fd, buf + i, 1, 0) == 1);
		if (i % 8 == 0)
			usleep(500);   /* lets the server see the pieces separately */
	}
	CHECK(tcp_read_reply(fd, &r) && r.id == 104 && r.n_a == 3);
	CHECK(tcp_read_reply(fd, &r) && r.id == 105 && r.n_srv == 1);

	/* Half-close after a query: the answer still comes, then the server closes. */
	n = frame(106, "web." ZONE, DNS_T_A, buf);
	CHECK(send(fd, buf, n, 0) == (ssize_t)n);
	shutdown(fd, SHUT_WR);
	CHECK(tcp_read_reply(fd, &r) && r.id == 106);
	CHECK(closed_by_server(fd, WAIT_MS));
	close(fd);

	od_dns_server_stats(s, &st);
	CHECK(st.tcp_queries == 6 && st.udp_queries == 0 && st.tcp_connections == 1);
	CHECK(st.responses[OD_DNS_RC_NOERROR] == 5 && st.responses[OD_DNS_RC_NXDOMAIN] == 1);
	od_dns_server_stop(s);
}

/* A client that sends half a length prefix and stops: others get answers meanwhile (TCP and UDP), and
 * the stalled one is closed once idle for OD_DNS_TCP_IDLE_MS, not before. */
static void test_tcp_stalled_and_idle(void)
{
	struct dns_zone *z = make_zone(NULL);
	struct od_dns_config cfg;
	struct od_dns_server *s;
	struct od_dns_stats st;
	uint8_t buf[512];
	struct reply r;
	uint16_t port = free_port();
	uint64_t t0;
	int stalled, other;
	size_t n;

	base_config(&cfg, port);
	s = start(&cfg, z);
	dns_zone_unref(z);
	CHECK(s != NULL);
	if (!s)
		return;
	stalled = tcp_connect(port);
	CHECK(stalled >= 0);
	t0 = ms_now();
	CHECK(send(stalled, "\x00", 1, 0) == 1);

	other = tcp_connect(port);
	CHECK(other >= 0);
	for (uint16_t id = 1; id <= 3; id++) {
		n = frame(id, "web." ZONE, DNS_T_A, buf);
		CHECK(send(other, buf, n, 0) == (ssize_t)n);
		CHECK(tcp_read_reply(other, &r) && r.id == id && r.n_a == 3);
	}
	CHECK(udp_ask(port, 77, "web." ZONE, DNS_T_A, &r) && r.id == 77);
	CHECK(!closed_by_server(stalled, 0));

	/* Both connections go idle now; each is closed after the idle time. */
	CHECK(closed_by_server(stalled, OD_DNS_TCP_IDLE_MS + 5000));
	CHECK(ms_now() - t0 >= OD_DNS_TCP_IDLE_MS - 100);
	CHECK(closed_by_server(other, 5000));
	od_dns_server_stats(s, &st);
	CHECK(st.tcp_connections == 2 && st.tcp_closed_idle == 2 && st.tcp_closed_evicted == 0);
	close(stalled);
	close(other);
	od_dns_server_stop(s);
}

static void test_tcp_eviction(void)
{
	enum { N = OD_DNS_TCP_MAX_CONNS + 1 };
	struct dns_zone *z = make_zone(NULL);
	struct od_dns_config cfg;
	struct od_dns_server *s;
	struct od_dns_stats st;
	uint8_t buf[512];
	struct reply r;
	uint16_t port = free_port();
	int fds[N];
	bool all_ok = true;

	base_config(&cfg, port);
	s = start(&cfg, z);
	dns_zone_unref(z);
	CHECK(s != NULL);
	if (!s)
		return;
	/* Each connection is answered before the next one opens, so they are active in this order. */
	for (int i = 0; i < N; i++) {
		size_t n = frame((uint16_t)i, "web." ZONE, DNS_T_A, buf);

		fds[i] = tcp_connect(port);
		all_ok &= fds[i] >= 0 && send(fds[i], buf, n, 0) == (ssize_t)n && tcp_read_reply(fds[i], &r) &&
			  r.id == (uint16_t)i;
	}
	CHECK(all_ok);
	/* The least recently active one (the first) made room for the last. */
	CHECK(closed_by_server(fds[0], WAIT_MS));
	CHECK(!closed_by_server(fds[1], 0));
	od_dns_server_stats(s, &st);
	CHECK(st.tcp_connections == N && st.tcp_closed_evicted == 1 && st.tcp_closed_idle == 0);

	/* Activity protects a connection: the second one asks again, so the third is evicted next. */
	{
		size_t n = frame(9999, "web." ZONE, DNS_T_A, buf);
		int extra;

		CHECK(send(fds[1], buf, n, 0) == (ssize_t)n && tcp_read_reply(fds[1], &r) && r.id == 9999);
		extra = tcp_connect(port);
		n = frame(10000, "web." ZONE, DNS_T_A, buf);
		CHECK(extra >= 0 && send(extra, buf, n, 0) == (ssize_t)n && tcp_read_reply(extra, &r));
		CHECK(closed_by_server(fds[2], WAIT_MS));
		CHECK(!closed_by_server(fds[1], 0));
		close(extra);
	}
	for (int i = 0; i < N; i++)
		close(fds[i]);
	od_dns_server_stop(s);
}

/* A fake upstream: a UDP socket on 127.0.0.1 that the test answers by hand. */
struct upstream {
	int fd;
	uint16_t port;
};

static bool upstream_open(struct upstream *u)
{
	struct sockaddr_in a = loopback(0);
	socklen_t len = sizeof(a);

	u->fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (u->fd < 0 || bind(u->fd, (struct sockaddr *)&a, sizeof(a)) ||
	    getsockname(u->fd, (struct sockaddr *)&a, &len))
		return false;
	u->port = ntohs(a.sin_port);
	return true;
}

/* Receives one forwarded query; returns its length, the sender in *from. */
static size_t upstream_recv(struct upstream *u, uint8_t *buf, struct sockaddr_in *from, int ms)
{
	socklen_t len = sizeof(*from);
	ssize_t n;

	if (!readable(u->fd, ms))
		return 0;
	n = recvfrom(u->fd, buf, 4096, 0, (struct sockaddr *)from, &len);
	return n > 0 ? (size_t)n : 0;
}

/* The answer to query q (its id and question): one A record. */
static size_t upstream_answer(const uint8_t *q, size_t qlen, uint16_t id, const uint8_t addr[4], uint8_t *out)
{
	size_t o = DNS_HEADER_LEN, qend = DNS_HEADER_LEN;

	skip_name(q, qlen, &qend);
	qend += 4;
	memcpy(out, q, qend);
	out[0] = (uint8_t)(id >> 8);
	out[1] = (uint8_t)id;
	out[2] |= 0x80;   /* QR */
	out[3] = 0x80;    /* RA */
	out[7] = 1;       /* one answer */
	out[11] = 0;      /* the OPT is not echoed */
	o = qend;
	memcpy(out + o, "\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04", 12);
	o += 12;
	memcpy(out + o, addr, 4);
	return o + 4;
}

/* Sends OD_DNS_FORWARD_PENDING_MAX + 1 queries for names outside the zone (ids 1..) that the upstream
 * never answers; true when the last is refused with SERVFAIL at once and every other one gets SERVFAIL
 * after the timeout, each id exactly once. The first forwarded query is kept in fq / *fqlen / *from. */
static bool fill_pending(int fd, uint16_t port, struct upstream *up, uint8_t *fq, size_t *fqlen,
			 struct sockaddr_in *from)
{
	enum { N = OD_DNS_FORWARD_PENDING_MAX + 1 };
	static bool seen[N + 1];
	uint8_t q[512], a[512];
	struct reply r;
	size_t n, got = 0;
	int size = 4 << 20;
	bool ok = true;

	/* A burst of 1024 answers at the timeout: room for all of them (root may exceed rmem_max). */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)))
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	memset(seen, 0, sizeof(seen));
	for (unsigned id = 1; id <= N; id++) {
		char name[64];

		snprintf(name, sizeof(name), "slow-%u.example.com.", id);
		n = make_query((uint16_t)id, name, DNS_T_AAAA, 0, q);
		udp_send(fd, port, q, n);
		if (id == 1)
			*fqlen = upstream_recv(up, fq, from, WAIT_MS);
	}
	/* The one beyond the table first (the others are still waiting for the upstream). */
	n = udp_recv(fd, a, sizeof(a), WAIT_MS);
	ok &= n && parse_reply(a, n, &r) && r.id == N && rcode(&r) == DNS_RCODE_SERVFAIL && r.qd == 1;
	seen[N] = true;
	while (got < N - 1 && (n = udp_recv(fd, a, sizeof(a), OD_DNS_FORWARD_TIMEOUT_MS + 3000))) {
		ok &= parse_reply(a, n, &r) && r.id >= 1 && r.id < N && !seen[r.id];
		ok &= rcode(&r) == DNS_RCODE_SERVFAIL && r.qd == 1 && r.an == 0;
		if (r.id < N)
			seen[r.id] = true;
		got++;
	}
	return ok && got == N - 1 && *fqlen > 0;
}

static void test_forward(void)
{
	static const uint8_t REAL[4] = { 192, 0, 2, 80 }, FAKE[4] = { 192, 0, 2, 66 };
	struct dns_zone *z = make_zone(NULL);
	struct od_dns_config cfg;
	struct od_dns_server *s = NULL;
	struct od_dns_stats st;
	struct upstream up, spoofer;
	struct sockaddr_in from;
	uint8_t q[512], fq[4096], a[MSG_MAX];
	struct reply r;
	char text[32], err[160];
	uint16_t port = free_port(), up_id;
	size_t n, fn;
	int fd = udp_client(), tcp;

	CHECK(upstream_open(&up) && upstream_open(&spoofer));
	base_config(&cfg, port);
	snprintf(text, sizeof(text), "127.0.0.1:%u", up.port);
	CHECK(od_dns_parse_forward(text, &cfg, err, sizeof(err)) == 0);
	s = start(&cfg, z);
	CHECK(s != NULL);
	if (!s)
		goto out;

	/* In the zone: answered here, nothing goes upstream. */
	CHECK(udp_ask(port, 1, "web." ZONE, DNS_T_A, &r) && rcode(&r) == DNS_RCODE_NOERROR);
	CHECK(upstream_recv(&up, fq, &from, 50) == 0);

	/* Outside: relayed with a fresh id, the same question. */
	n = make_query(0x1234, "www.example.com.", DNS_T_A, 1232, q);
	udp_send(fd, port, q, n);
	fn = upstream_recv(&up, fq, &from, WAIT_MS);
	CHECK(fn == n && !memcmp(fq + 2, q + 2, n - 2));
	up_id = rd16(fq);
	/* A forged answer from another socket, and one with another id: both ignored. */
	n = upstream_answer(fq, fn, up_id, FAKE, a);
	CHECK(sendto(spoofer.fd, a, n, 0, (struct sockaddr *)&from, sizeof(from)) == (ssize_t)n);
	n = upstream_answer(fq, fn, (uint16_t)(up_id + 1), FAKE, a);
	CHECK(sendto(up.fd, a, n, 0, (struct sockaddr *)&from, sizeof(from)) == (ssize_t)n);
	/* A response for another question with the right id: ignored too. */
	{
		uint8_t other[512];
		size_t on = make_query(0, "www.example.org.", DNS_T_A, 0, other);

		n = upstream_answer(other, on, up_id, FAKE, a);
		CHECK(sendto(up.fd, a, n, 0, (struct sockaddr *)&from, sizeof(from)) == (ssize_t)n);
	}
	n = upstream_answer(fq, fn, up_id, REAL, a);
	CHECK(sendto(up.fd, a, n, 0, (struct sockaddr *)&from, sizeof(from)) == (ssize_t)n);
	n = udp_recv(fd, a, sizeof(a), WAIT_MS);
	CHECK(n && parse_reply(a, n, &r));
	CHECK(r.id == 0x1234 && rcode(&r) == DNS_RCODE_NOERROR && r.n_a == 1 && has_a(&r, REAL));
	CHECK(udp_recv(fd, a, sizeof(a), 100) == 0);

	/* A TCP client's query goes the same way; its answer comes framed with its id. */
	tcp = tcp_connect(port);
	n = frame(0x2222, "mail.example.com.", DNS_T_A, q);
	CHECK(tcp >= 0 && send(tcp, q, n, 0) == (ssize_t)n);
	fn = upstream_recv(&up, fq, &from, WAIT_MS);
	CHECK(fn == n - 2);
	n = upstream_answer(fq, fn, rd16(fq), REAL, a);
	CHECK(sendto(up.fd, a, n, 0, (struct sockaddr *)&from, sizeof(from)) == (ssize_t)n);
	CHECK(tcp_read_reply(tcp, &r) && r.id == 0x2222 && has_a(&r, REAL));
	close(tcp);

	/* No answers at all, and one query more than the pending table holds: that one gets SERVFAIL at
	 * once, every other one SERVFAIL after the timeout; each with its client's id, exactly once. */
	CHECK(fill_pending(fd, port, &up, fq, &fn, &from));
	/* The first one's late answer is ignored. */
	n = upstream_answer(fq, fn, rd16(fq), REAL, a);
	CHECK(sendto(up.fd, a, n, 0, (struct sockaddr *)&from, sizeof(from)) == (ssize_t)n);
	CHECK(udp_recv(fd, a, sizeof(a), 200) == 0);

	/* The late answer has no reply to wait for: give the thread time to count it (bounded). */
	for (int i = 0; i < 200; i++) {
		od_dns_server_stats(s, &st);
		if (st.dropped >= 3)
			break;
		usleep(10000);
	}
	CHECK(st.forwarded == 2 + OD_DNS_FORWARD_PENDING_MAX);
	CHECK(st.forward_timeouts == OD_DNS_FORWARD_PENDING_MAX);
	CHECK(st.responses[OD_DNS_RC_SERVFAIL] == OD_DNS_FORWARD_PENDING_MAX + 1);
	CHECK(st.responses[OD_DNS_RC_NOERROR] == 3);
	/* Wrong id, wrong question, late: counted (the other socket's is filtered by the kernel). */
	CHECK(st.dropped == 3);
out:
	od_dns_server_stop(s);
	dns_zone_unref(z);
	close(fd);
	close(up.fd);
	close(spoofer.fd);
}

int main(void)
{
	TEST_RUN(test_parse_forward);
	TEST_RUN(test_rcode_names);
	TEST_RUN(test_start_errors);
	TEST_RUN(test_udp_answers);
	TEST_RUN(test_set_zone);
	TEST_RUN(test_garbage_dropped);
	TEST_RUN(test_tcp_pipelined);
	TEST_RUN(test_tcp_eviction);
	TEST_RUN(test_forward);
	TEST_RUN(test_tcp_stalled_and_idle);
	return TEST_SUMMARY();
}
