/* UDP batching: GSO runs on send, GRO splitting on receive, DSCP kept per datagram, the EINVAL fallback,
 * and the plain path with ZL_WG_OFFLOAD=0. Runs in a private network namespace of its own (unshare), on
 * its loopback only; the namespace goes away with the process. Needs root (CAP_SYS_ADMIN). */
#include "test.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include "wg/io/loop.h"
#include "wg/io/udp.h"

enum { MAX_RX = 1024, MAX_LEN = 9000 };

struct sink {
	unsigned count;
	size_t lens[MAX_RX];
	uint8_t first[MAX_RX];     /* first byte: the sender's sequence number */
	bool intact[MAX_RX];       /* every byte matches the pattern of its sequence number */
	struct wg_endpoint from[MAX_RX];
};

static void fill(uint8_t *buf, size_t len, uint8_t seq)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(seq + i * 7);
}

static bool matches(const uint8_t *buf, size_t len)
{
	for (size_t i = 1; i < len; i++) {
		if (buf[i] != (uint8_t)(buf[0] + i * 7))
			return false;
	}
	return true;
}

static void on_rx(void *ctx, const struct wg_udp_rx_batch *b)
{
	struct sink *s = ctx;

	for (int i = 0; i < b->count && s->count < MAX_RX; i++) {
		s->lens[s->count] = b->lens[i];
		s->first[s->count] = b->lens[i] ? b->bufs[i][0] : 0;
		s->intact[s->count] = matches(b->bufs[i], b->lens[i]);
		s->from[s->count] = b->from[i];
		s->count++;
	}
}

static bool ifreq_op(unsigned long req, struct ifreq *ifr)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	bool ok = fd >= 0 && ioctl(fd, req, ifr) == 0;

	if (fd >= 0)
		close(fd);
	return ok;
}

static bool set_lo_mtu(int mtu)
{
	struct ifreq ifr = { .ifr_name = "lo", .ifr_mtu = mtu };

	return ifreq_op(SIOCSIFMTU, &ifr);
}

/* A fresh namespace: nothing of the host is visible or touched. */
static bool private_netns(void)
{
	struct ifreq ifr = { .ifr_name = "lo" };

	if (unshare(CLONE_NEWNET) < 0)
		return false;
	if (!ifreq_op(SIOCGIFFLAGS, &ifr))
		return false;
	ifr.ifr_flags |= IFF_UP;
	return ifreq_op(SIOCSIFFLAGS, &ifr);
}

struct pair {
	struct wg_loop loop;
	struct wg_udp a, b;
	struct sink sa, sb;
	uint16_t pa, pb;
};

static bool pair_open(struct pair *p, bool offload)
{
	memset(p, 0, sizeof(*p));
	if (offload)
		unsetenv("ZL_WG_OFFLOAD");
	else
		setenv("ZL_WG_OFFLOAD", "0", 1);
	if (wg_loop_init(&p->loop))
		return false;
	if (wg_udp_init(&p->a, &p->loop, on_rx, &p->sa) || wg_udp_init(&p->b, &p->loop, on_rx, &p->sb))
		return false;
	return !wg_udp_bind(&p->a, 0, &p->pa) && !wg_udp_bind(&p->b, 0, &p->pb);
}

static void pair_close(struct pair *p)
{
	wg_udp_destroy(&p->a);
	wg_udp_destroy(&p->b);
	wg_loop_destroy(&p->loop);
	unsetenv("ZL_WG_OFFLOAD");
}

/* Runs the loop until sink has want datagrams (or a bounded number of idle rounds). */
static void pump(struct pair *p, struct sink *s, unsigned want)
{
	for (int idle = 0; s->count < want && idle < 20;) {
		if (wg_loop_wait(&p->loop, 50) <= 0)
			idle++;
	}
}

static struct wg_endpoint ep4(uint16_t port)
{
	struct wg_endpoint e;

	memset(&e, 0, sizeof(e));
	e.addr.in4.sin_family = AF_INET;
	e.addr.in4.sin_port = htons(port);
	e.addr.in4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return e;
}

static struct wg_endpoint ep6(uint16_t port)
{
	struct wg_endpoint e;

	memset(&e, 0, sizeof(e));
	e.addr.in6.sin6_family = AF_INET6;
	e.addr.in6.sin6_port = htons(port);
	e.addr.in6.sin6_addr = in6addr_loopback;
	return e;
}

static int send_seq(struct wg_udp *u, const struct wg_endpoint *to, uint8_t seq, size_t len, uint8_t dscp)
{
	static uint8_t buf[MAX_LEN];

	fill(buf, len, seq);
	return wg_udp_send(u, to, buf, len, dscp);
}

/* Checks that the sink holds datagrams seq 0..n-1 in order with lens[i]. */
static void check_received(const struct sink *s, unsigned n, const size_t *lens)
{
	CHECK(s->count == n);
	for (unsigned i = 0; i < n && i < s->count; i++) {
		CHECK(s->first[i] == (uint8_t)i);
		CHECK(s->lens[i] == lens[i]);
		CHECK(s->intact[i]);
	}
}

/* 40 datagrams of 1200 bytes and a shorter last one: one GSO message out, GRO messages in, split back. */
static void run_same_size(bool offload, bool v6)
{
	struct pair p;
	size_t lens[41];
	struct wg_endpoint to;

	CHECK(pair_open(&p, offload));
	to = v6 ? ep6(p.pb) : ep4(p.pb);
	for (unsigned i = 0; i < 41; i++) {
		lens[i] = i == 40 ? 333 : 1200;
		CHECK(send_seq(&p.a, &to, (uint8_t)i, lens[i], 0) == 0);
	}
	wg_udp_flush(&p.a);
	pump(&p, &p.sb, 41);
	check_received(&p.sb, 41, lens);
	CHECK(p.a.stats.tx_datagrams == 41);
	CHECK(p.a.stats.tx_messages == (offload ? 1u : 41u));
	CHECK(p.b.stats.rx_datagrams == 41);
	if (offload)
		CHECK(p.b.stats.rx_messages < 41);   /* loopback hands the GSO message over whole */
	else
		CHECK(p.b.stats.rx_messages == 41);
	CHECK(p.sb.from[0].addr.sa.sa_family == (v6 ? AF_INET6 : AF_INET));
	pair_close(&p);
}

static void test_gso_gro_v4(void) { run_same_size(true, false); }
static void test_gso_gro_v6(void) { run_same_size(true, true); }
static void test_no_offload_v4(void) { run_same_size(false, false); }
static void test_no_offload_v6(void) { run_same_size(false, true); }

/* Runs break at a size change (after a shorter one), a destination change, the 64-segment and the
 * 64 KiB limits. Expected messages: [3 x 1000, 500] [700] [900 x 2 to the other socket] [100 x 64]
 * [100 x 6] [1452 x 45] [1452 x 5]. */
static void test_run_boundaries(void)
{
	struct pair p;
	struct wg_endpoint to_b, to_a;
	size_t lens_b[256];
	unsigned nb = 0, na = 0, seq = 0;

	CHECK(pair_open(&p, true));
	to_b = ep4(p.pb);
	to_a = ep4(p.pa);
	for (unsigned i = 0; i < 3; i++)
		lens_b[nb++] = 1000;
	lens_b[nb++] = 500;
	lens_b[nb++] = 700;
	for (unsigned i = 0; i < nb; i++)
		CHECK(send_seq(&p.a, &to_b, (uint8_t)seq++, lens_b[i], 0) == 0);
	for (unsigned i = 0; i < 2; i++, na++)
		CHECK(send_seq(&p.a, &to_a, (uint8_t)na, 900, 0) == 0);
	for (unsigned i = 0; i < 70; i++) {
		lens_b[nb++] = 100;
		CHECK(send_seq(&p.a, &to_b, (uint8_t)seq++, 100, 0) == 0);
	}
	for (unsigned i = 0; i < 50; i++) {
		lens_b[nb++] = 1452;
		CHECK(send_seq(&p.a, &to_b, (uint8_t)seq++, 1452, 0) == 0);
	}
	wg_udp_flush(&p.a);
	pump(&p, &p.sb, nb);
	pump(&p, &p.sa, na);
	check_received(&p.sb, nb, lens_b);
	CHECK(p.sa.count == 2);
	CHECK(p.a.stats.tx_datagrams == nb + na);
	CHECK(p.a.stats.tx_messages == 7);
	pair_close(&p);
}

/* Datagrams queued by reference from scattered buffers (gaps between them, as in the device's aligned
 * batch memory), mixed with copied ones: one GSO message, every datagram intact and in order. */
static void run_by_reference(bool offload)
{
	enum { N = 30, LEN = 1452, STRIDE = 1472 };
	static uint8_t mem[N * STRIDE];
	struct pair p;
	struct wg_endpoint to;
	size_t lens[N];

	CHECK(pair_open(&p, offload));
	to = ep4(p.pb);
	for (unsigned i = 0; i < N; i++) {
		lens[i] = i == N - 1 ? 100 : LEN;
		if (i % 5 == 2) {
			CHECK(send_seq(&p.a, &to, (uint8_t)i, lens[i], 0) == 0);
			continue;
		}
		fill(mem + i * STRIDE, lens[i], (uint8_t)i);
		CHECK(wg_udp_send_ref(&p.a, &to, mem + i * STRIDE, lens[i]) == 0);
	}
	wg_udp_flush(&p.a);
	/* The queue let go of the caller's memory: scribbling on it changes nothing received. */
	memset(mem, 0xee, sizeof(mem));
	pump(&p, &p.sb, N);
	check_received(&p.sb, N, lens);
	CHECK(p.a.stats.tx_messages == (offload ? 1u : (unsigned)N));
	pair_close(&p);
}

static void test_by_reference_gso(void) { run_by_reference(true); }
static void test_by_reference_plain(void) { run_by_reference(false); }

/* The queue flushes itself when full; nothing is lost or reordered across the boundary. */
static void test_queue_full(void)
{
	struct pair p;
	struct wg_endpoint to;
	static size_t lens[600];

	CHECK(pair_open(&p, true));
	to = ep4(p.pb);
	for (unsigned i = 0; i < 600; i++) {
		lens[i] = 200 + i % 3;   /* three sizes in turn: no run longer than 2 */
		CHECK(send_seq(&p.a, &to, (uint8_t)i, lens[i], 0) == 0);
	}
	CHECK(p.a.stats.tx_datagrams == 600 / WG_UDP_TX_BATCH * WG_UDP_TX_BATCH);
	wg_udp_flush(&p.a);
	pump(&p, &p.sb, 600);
	CHECK(p.sb.count == 600);
	for (unsigned i = 0; i < 600 && i < p.sb.count; i++) {
		CHECK(p.sb.first[i] == (uint8_t)i);
		CHECK(p.sb.lens[i] == lens[i]);
		CHECK(p.sb.intact[i]);
	}
	pair_close(&p);
}

/* A datagram with DSCP never joins a run of data datagrams, and keeps its TOS byte on the wire. */
static void test_dscp_not_merged(void)
{
	struct pair p;
	int rx = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), one = 1;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(a);
	struct wg_endpoint to;
	const uint8_t dscps[6] = { 0, 0, 0x88, 0x88, 0, 0 };

	CHECK(pair_open(&p, true));
	CHECK(rx >= 0);
	CHECK(setsockopt(rx, IPPROTO_IP, IP_RECVTOS, &one, sizeof(one)) == 0);
	CHECK(bind(rx, (struct sockaddr *)&a, sizeof(a)) == 0);
	CHECK(getsockname(rx, (struct sockaddr *)&a, &alen) == 0);
	to = ep4(ntohs(a.sin_port));
	for (unsigned i = 0; i < 6; i++)
		CHECK(send_seq(&p.a, &to, (uint8_t)i, 148, dscps[i]) == 0);
	wg_udp_flush(&p.a);
	CHECK(p.a.stats.tx_messages == 3);
	for (unsigned i = 0; i < 6; i++) {
		uint8_t buf[256];
		union {
			char b[CMSG_SPACE(sizeof(int))];
			struct cmsghdr align;
		} ctl;
		struct iovec iov = { buf, sizeof(buf) };
		struct msghdr h = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.b,
				    .msg_controllen = sizeof(ctl.b) };
		ssize_t n = recvmsg(rx, &h, MSG_DONTWAIT);
		int tos = -1;

		CHECK(n == 148);
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&h); c; c = CMSG_NXTHDR(&h, c)) {
			if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_TOS)
				tos = *(uint8_t *)CMSG_DATA(c);
		}
		CHECK(n > 0 && buf[0] == i);
		CHECK(tos == dscps[i]);
	}
	close(rx);
	pair_close(&p);
}

/* A route MTU below the segment size: the kernel refuses GSO with EINVAL; the datagrams still go out
 * (fragmented, one by one), and after a few refusals the socket stops trying. */
static void test_einval_fallback(void)
{
	struct pair p;
	struct wg_endpoint to;
	size_t lens[5 * 4];
	unsigned n = 0;

	CHECK(set_lo_mtu(1280));
	CHECK(pair_open(&p, true));
	CHECK(p.a.sock[WG_UDP_V4].gso);
	to = ep4(p.pb);
	for (unsigned round = 0; round < 5; round++) {
		for (unsigned i = 0; i < 4; i++, n++) {
			lens[n] = 1400;
			CHECK(send_seq(&p.a, &to, (uint8_t)n, 1400, 0) == 0);
		}
		wg_udp_flush(&p.a);
	}
	pump(&p, &p.sb, n);
	check_received(&p.sb, n, lens);
	CHECK(p.a.stats.tx_gso_fallbacks == 4);
	CHECK(!p.a.sock[WG_UDP_V4].gso);
	CHECK(p.a.stats.tx_errors == 0);
	pair_close(&p);
	CHECK(set_lo_mtu(65536));
}

int main(void)
{
	if (!private_netns()) {
		printf("skip: needs root for a private network namespace (%s)\n", strerror(errno));
		return 0;
	}
	TEST_RUN(test_gso_gro_v4);
	TEST_RUN(test_gso_gro_v6);
	TEST_RUN(test_no_offload_v4);
	TEST_RUN(test_no_offload_v6);
	TEST_RUN(test_run_boundaries);
	TEST_RUN(test_by_reference_gso);
	TEST_RUN(test_by_reference_plain);
	TEST_RUN(test_queue_full);
	TEST_RUN(test_dscp_not_merged);
	TEST_RUN(test_einval_fallback);
	return TEST_SUMMARY();
}
