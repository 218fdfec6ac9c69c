/* The prober on the loopback interface (no tunnel needed): the node's "overlay" address is 127.0.0.1 on
 * device lo, and its member list holds 127.0.0.1 itself (which answers its own probes: the probe and
 * reply path end to end) and 127.0.0.3 (nobody there: goes down). Hostile datagrams -- malformed, or
 * from an address that is not a member -- are dropped and counted, never answered. No device, so no
 * handshake: a member that answers is "up" by probes but not healthy. Loopback only. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "overlayd/log.h"
#include "overlayd/prober.h"
#include "test.h"

static struct wg_loop loop;
static struct od_node node;
static struct zl_state_peer members[2];
static uint16_t probe_port;

static void member(struct zl_state_peer *p, const char *id, const char *ip, uint8_t key_byte)
{
	memset(p, 0, sizeof(*p));
	snprintf(p->node_id, sizeof(p->node_id), "%s", id);
	snprintf(p->overlay_ip, sizeof(p->overlay_ip), "%s", ip);
	memset(p->public_key, key_byte, ZL_KEY_LEN);
}

/* Opens the prober on 127.0.0.1 (device lo) at a free port. false when this host does not allow it
 * (SO_BINDTODEVICE needs CAP_NET_RAW). */
static bool open_node(void)
{
	char err[256] = "";
	int rc = -1;

	memset(&node, 0, sizeof(node));
	snprintf(node.ifname, sizeof(node.ifname), "lo");
	snprintf(node.st.config.node_ip, sizeof(node.st.config.node_ip), "127.0.0.1");
	zl_ip_parse("127.0.0.1", &node.node_ip, err, sizeof(err));
	node.loop = &loop;
	node.opts.probe_interval_ms = 100;
	node.opts.probe_misses = 2;
	node.opts.handshake_timeout_s = 180;
	member(&members[0], "self-as-member", "127.0.0.1", 1);
	member(&members[1], "nobody", "127.0.0.3", 3);
	node.st.peers = members;
	node.st.n_peers = 2;
	if (od_timers_init(&node.timers, &loop))
		return false;
	node.timers_ready = true;
	for (int attempt = 0; attempt < 20 && rc; attempt++) {
		node.st.config.port = (uint16_t)(20000 + (getpid() * 7 + attempt * 131) % 30000);
		rc = od_prober_open(&node, err, sizeof(err));
	}
	if (rc) {
		fprintf(stderr, "  prober not opened: %s\n", err);
		return false;
	}
	probe_port = (uint16_t)(node.st.config.port + 1);
	return true;
}

/* Runs the loop until done() or about 10 s (a safety net, not a timing target). */
static bool run_until(bool (*done)(void))
{
	for (int i = 0; i < 1000; i++) {
		if (done())
			return true;
		wg_loop_wait(&loop, 10);
	}
	return done();
}

static bool self_up_nobody_down(void)
{
	struct od_peer_health a, b;

	return od_prober_peer_health(&node, members[0].public_key, &a) && a.probe_state == ZL_HEALTH_UP &&
	       od_prober_peer_health(&node, members[1].public_key, &b) && b.probe_state == ZL_HEALTH_DOWN;
}

static void test_probe_and_answer(void)
{
	struct od_peer_health a, b;
	struct od_prober_stats st;
	uint8_t key[ZL_KEY_LEN];

	CHECK(run_until(self_up_nobody_down));
	CHECK(od_prober_peer_health(&node, members[0].public_key, &a));
	CHECK(a.known && a.probe_state == ZL_HEALTH_UP);
	CHECK(a.rtt_ms > 0);
	CHECK(a.replies >= 1 && a.probes_sent >= a.replies);
	CHECK(a.loss >= 0 && a.loss <= 1);
	CHECK(a.handshake_age_s == -1 && !a.healthy);     /* no device: never a handshake */
	CHECK(od_prober_peer_health(&node, members[1].public_key, &b));
	CHECK(b.known && b.probe_state == ZL_HEALTH_DOWN && !b.healthy);
	CHECK(b.replies == 0 && b.rtt_ms == 0 && b.loss == 1.0);
	od_prober_stats(&node, &st);
	CHECK(st.probes_sent >= 2 && st.replies_received >= 1 && st.probes_answered >= 1);
	CHECK(st.dropped == 0);
	memset(key, 9, sizeof(key));
	CHECK(!od_prober_peer_health(&node, key, &a));
}

static int udp_from(const char *ip)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	inet_pton(AF_INET, ip, &sa.sin_addr);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

static void send_to_prober(int fd, const uint8_t *pkt, size_t len)
{
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(probe_port) };

	inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
	CHECK(sendto(fd, pkt, len, 0, (struct sockaddr *)&to, sizeof(to)) == (ssize_t)len);
}

static void probe_packet(uint8_t pkt[24], uint8_t type, uint64_t seq)
{
	memset(pkt, 0, 24);
	memcpy(pkt, "ZLP1", 4);
	pkt[4] = type;
	for (int i = 0; i < 8; i++)
		pkt[8 + i] = (uint8_t)(seq >> (56 - 8 * i));
}

static uint64_t dropped_now(void)
{
	struct od_prober_stats st;

	od_prober_stats(&node, &st);
	return st.dropped;
}

static uint64_t want_dropped;
static bool dropped_reached(void)
{
	return dropped_now() >= want_dropped;
}

static int reply_fd;
static uint8_t reply_buf[64];
static ssize_t reply_len;
static bool got_reply(void)
{
	reply_len = recv(reply_fd, reply_buf, sizeof(reply_buf), MSG_DONTWAIT);
	return reply_len >= 0;
}

/* A member's probe from any port is answered with the sequence number echoed; the format is exactly
 * the one prober.h documents. */
static void test_answers_member_probe(void)
{
	uint8_t pkt[24];
	int fd = udp_from("127.0.0.1");

	CHECK(fd >= 0);
	if (fd < 0)
		return;
	probe_packet(pkt, 1, 0x0102030405060708ull);
	send_to_prober(fd, pkt, sizeof(pkt));
	reply_fd = fd;
	CHECK(run_until(got_reply));
	CHECK(reply_len == 24);
	CHECK(memcmp(reply_buf, "ZLP1", 4) == 0);
	CHECK(reply_buf[4] == 2 && reply_buf[5] == 0 && reply_buf[6] == 0 && reply_buf[7] == 0);
	CHECK(memcmp(reply_buf + 8, pkt + 8, 8) == 0);
	close(fd);
}

static void test_hostile_packets_dropped(void)
{
	uint8_t pkt[24], big[25];
	int member_fd = udp_from("127.0.0.1"), stranger = udp_from("127.0.0.2");
	uint64_t before = dropped_now();
	uint8_t buf[64];

	CHECK(member_fd >= 0 && stranger >= 0);
	if (member_fd < 0 || stranger < 0)
		goto out;
	/* A well-formed probe from a non-member: dropped, not answered. */
	probe_packet(pkt, 1, 5);
	send_to_prober(stranger, pkt, sizeof(pkt));
	/* From a member: short, long, empty, bad magic, bad type (0, 3), non-zero padding. */
	send_to_prober(member_fd, pkt, 23);
	memcpy(big, pkt, 24);
	big[24] = 0;
	send_to_prober(member_fd, big, sizeof(big));
	send_to_prober(member_fd, pkt, 0);
	pkt[0] = 'X';
	send_to_prober(member_fd, pkt, sizeof(pkt));
	probe_packet(pkt, 0, 5);
	send_to_prober(member_fd, pkt, sizeof(pkt));
	probe_packet(pkt, 3, 5);
	send_to_prober(member_fd, pkt, sizeof(pkt));
	probe_packet(pkt, 1, 5);
	pkt[6] = 1;
	send_to_prober(member_fd, pkt, sizeof(pkt));
	want_dropped = before + 8;
	CHECK(run_until(dropped_reached));
	CHECK(dropped_now() == before + 8);
	/* Nothing came back to either sender. */
	CHECK(recv(stranger, buf, sizeof(buf), MSG_DONTWAIT) < 0);
	CHECK(recv(member_fd, buf, sizeof(buf), MSG_DONTWAIT) < 0);
out:
	if (member_fd >= 0)
		close(member_fd);
	if (stranger >= 0)
		close(stranger);
}

/* A reply with a sequence number never sent changes nothing but the reply count. */
static void test_forged_reply_ignored(void)
{
	struct od_peer_health before, after;
	uint8_t pkt[24];
	int fd = udp_from("127.0.0.3");   /* the down member's address */

	CHECK(fd >= 0);
	if (fd < 0)
		return;
	CHECK(od_prober_peer_health(&node, members[1].public_key, &before));
	probe_packet(pkt, 2, 12345);
	send_to_prober(fd, pkt, sizeof(pkt));
	for (int i = 0; i < 20; i++)
		wg_loop_wait(&loop, 10);
	CHECK(od_prober_peer_health(&node, members[1].public_key, &after));
	CHECK(after.probe_state == ZL_HEALTH_DOWN && after.replies == 0);
	close(fd);
}

/* Sync: a removed member is forgotten, a kept one keeps its history, a new one starts unknown. */
static void test_sync(void)
{
	struct od_peer_health a0, a1, c;
	static struct zl_state_peer next[2];

	CHECK(od_prober_peer_health(&node, members[0].public_key, &a0));
	next[0] = members[0];
	member(&next[1], "newcomer", "127.0.0.4", 4);
	node.st.peers = next;
	node.st.n_peers = 2;
	od_prober_sync(&node);
	CHECK(!od_prober_peer_health(&node, members[1].public_key, &c));
	CHECK(od_prober_peer_health(&node, next[1].public_key, &c));
	CHECK(c.probe_state == ZL_HEALTH_UNKNOWN && !c.known && c.probes_sent == 0);
	CHECK(od_prober_peer_health(&node, members[0].public_key, &a1));
	CHECK(a1.probe_state == ZL_HEALTH_UP && a1.probes_sent >= a0.probes_sent && a1.replies >= a0.replies);
	/* Empty list: nothing tracked, nothing probed. */
	node.st.n_peers = 0;
	od_prober_sync(&node);
	CHECK(!od_prober_peer_health(&node, members[0].public_key, &a1));
}

/* A change of st.peers that nobody announced with od_prober_sync is picked up at the next tick. */
static struct zl_state_peer late[1];
static bool late_tracked(void)
{
	struct od_peer_health h;

	return od_prober_peer_health(&node, late[0].public_key, &h) && h.probes_sent > 0;
}

static void test_follows_state_without_sync(void)
{
	struct od_peer_health h;

	member(&late[0], "unannounced", "127.0.0.5", 5);
	node.st.peers = late;
	node.st.n_peers = 1;
	CHECK(!od_prober_peer_health(&node, late[0].public_key, &h));
	CHECK(run_until(late_tracked));
	CHECK(!od_prober_peer_health(&node, members[0].public_key, &h));
}

int main(void)
{
	bool opened;

	if (wg_loop_init(&loop)) {
		fprintf(stderr, "no event loop\n");
		return 1;
	}
	wg_log_set_level(WG_LOG_SILENT);
	opened = open_node();
	if (!opened && geteuid() != 0) {
		printf("skip: SO_BINDTODEVICE needs root\n");
		return 0;
	}
	CHECK(opened);
	if (opened) {
		TEST_RUN(test_probe_and_answer);
		TEST_RUN(test_answers_member_probe);
		TEST_RUN(test_hostile_packets_dropped);
		TEST_RUN(test_forged_reply_ignored);
		TEST_RUN(test_sync);
		TEST_RUN(test_follows_state_without_sync);
		od_prober_close(&node);
		CHECK(node.prober == NULL);
		od_prober_close(&node);   /* twice is harmless */
	}
	od_timers_destroy(&node.timers);
	wg_loop_destroy(&loop);
	return TEST_SUMMARY();
}
