/* Two (or three) devices wired together in memory with a fake clock: complete handshakes, data in both
 * directions, roaming, replay, source checks, cookies under load, and every protocol timer. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include "test.h"
#include "wg/core/device_internal.h"

enum { MAX_QUEUED = 512, MAX_NODES = 3 };

struct datagram {
	struct wg_endpoint to;
	size_t len;
	uint8_t data[2048];
};

struct node {
	struct wg_device *dev;
	struct wg_endpoint self;     /* this node's underlay address */
	uint8_t priv[32], pub[32];
	struct datagram out[MAX_QUEUED];
	size_t out_count;
	uint8_t tun[MAX_QUEUED][2048];
	size_t tun_len[MAX_QUEUED];
	size_t tun_count;
};

static uint64_t fake_now = 1000 * WG_NSEC_PER_SEC;
static struct node nodes[MAX_NODES];

static int fake_send(void *ctx, const struct wg_endpoint *to, const uint8_t *data, size_t len, uint8_t dscp)
{
	struct node *n = ctx;
	if (n->out_count == MAX_QUEUED || len > sizeof(n->out[0].data))
		return -1;
	n->out[n->out_count].to = *to;
	n->out[n->out_count].len = len;
	memcpy(n->out[n->out_count].data, data, len);
	n->out_count++;
	return 0;
}

static void fake_tun(void *ctx, const uint8_t *packet, size_t len)
{
	struct node *n = ctx;
	if (n->tun_count < MAX_QUEUED && len <= sizeof(n->tun[0])) {
		memcpy(n->tun[n->tun_count], packet, len);
		n->tun_len[n->tun_count++] = len;
	}
}

static uint64_t fake_mono(void *ctx) { return fake_now; }
static uint64_t fake_wall(void *ctx) { return 1700000000ULL * WG_NSEC_PER_SEC + fake_now; }

static void endpoint_v4(struct wg_endpoint *ep, const char *ip, uint16_t port)
{
	memset(ep, 0, sizeof(*ep));
	ep->addr.in4.sin_family = AF_INET;
	ep->addr.in4.sin_port = htons(port);
	inet_pton(AF_INET, ip, &ep->addr.in4.sin_addr);
}

static bool same_endpoint(const struct wg_endpoint *a, const struct wg_endpoint *b)
{
	return a->addr.in4.sin_family == b->addr.in4.sin_family && a->addr.in4.sin_port == b->addr.in4.sin_port &&
	       a->addr.in4.sin_addr.s_addr == b->addr.in4.sin_addr.s_addr;
}

static void node_setup(int i)
{
	struct node *n = &nodes[i];
	struct wg_io_ops ops = {.ctx = n, .send_udp = fake_send, .write_tun = fake_tun, .mono_ns = fake_mono, .wall_ns = fake_wall};
	char ip[32];

	memset(n, 0, sizeof(*n));
	n->dev = wg_device_new(&ops);
	wg_x25519_generate(n->priv, n->pub);
	wg_device_set_private_key(n->dev, n->priv);
	snprintf(ip, sizeof(ip), "192.0.2.%d", i + 1);
	endpoint_v4(&n->self, ip, (uint16_t)(51820 + i));
}

static struct wg_peer *connect_nodes(int a, int b)
{
	int err;
	struct wg_peer *p = wg_device_add_peer(nodes[a].dev, nodes[b].pub, &err);
	uint8_t ip[4] = {10, 0, 0, (uint8_t)(b + 1)};

	wg_peer_set_endpoint(p, &nodes[b].self);
	wg_peer_add_allowed_ip(p, AF_INET, ip, 32);
	return p;
}

static void teardown(void)
{
	for (int i = 0; i < MAX_NODES; i++) {
		wg_device_free(nodes[i].dev);
		nodes[i].dev = NULL;
	}
}

/* Two nodes 0 and 1 that know each other. */
static void pair_setup(void)
{
	node_setup(0);
	node_setup(1);
	connect_nodes(0, 1);
	connect_nodes(1, 0);
}

static int node_at(const struct wg_endpoint *ep)
{
	for (int i = 0; i < MAX_NODES; i++)
		if (nodes[i].dev && same_endpoint(ep, &nodes[i].self))
			return i;
	return -1;
}

/* Delivers every queued datagram to its destination (from the sender's address) until quiet. */
static size_t pump(void)
{
	size_t delivered = 0;
	bool moved = true;

	while (moved) {
		moved = false;
		for (int i = 0; i < MAX_NODES; i++) {
			struct node *n = &nodes[i];
			size_t count = n->out_count;
			static struct datagram batch[MAX_QUEUED];

			if (!count)
				continue;
			memcpy(batch, n->out, count * sizeof(batch[0]));
			n->out_count = 0;
			for (size_t k = 0; k < count; k++) {
				int dst = node_at(&batch[k].to);
				if (dst >= 0) {
					wg_device_udp_input(nodes[dst].dev, batch[k].data, batch[k].len, &n->self);
					delivered++;
				}
			}
			moved = true;
		}
	}
	return delivered;
}

/* An IPv4/UDP-ish packet from 10.0.0.<src+1> to 10.0.0.<dst+1> with total length len. */
static size_t make_packet(uint8_t *p, size_t len, int src, int dst, uint8_t fill)
{
	memset(p, fill, len);
	p[0] = 0x45;
	p[1] = 0;
	p[2] = (uint8_t)(len >> 8);
	p[3] = (uint8_t)len;
	p[9] = 17;
	p[12] = 10; p[13] = 0; p[14] = 0; p[15] = (uint8_t)(src + 1);
	p[16] = 10; p[17] = 0; p[18] = 0; p[19] = (uint8_t)(dst + 1);
	return len;
}

static void send_packet(int src, int dst, size_t len, uint8_t fill)
{
	uint8_t p[1500];
	make_packet(p, len, src, dst, fill);
	wg_device_tun_input(nodes[src].dev, p, len);
}

static struct wg_peer *peer_of(int a, int b) { return wg_device_find_peer(nodes[a].dev, nodes[b].pub); }

static void tick_all(void)
{
	for (int i = 0; i < MAX_NODES; i++)
		if (nodes[i].dev)
			wg_device_tick(nodes[i].dev);
}

/* Advances the clock in 100 ms steps, running timers and the network, for `seconds`. */
static void advance(double seconds, bool deliver)
{
	uint64_t end = fake_now + (uint64_t)(seconds * WG_NSEC_PER_SEC);
	while (fake_now < end) {
		fake_now += 100 * WG_NSEC_PER_MSEC;
		tick_all();
		if (deliver)
			pump();
		else
			for (int i = 0; i < MAX_NODES; i++)
				nodes[i].out_count = 0;
	}
}

static size_t count_type(int node, uint32_t type)
{
	size_t c = 0;
	for (size_t i = 0; i < nodes[node].out_count; i++)
		c += wg_get_le32(nodes[node].out[i].data) == type;
	return c;
}

static void test_handshake_and_data_both_ways(void)
{
	struct wg_peer_info ia, ib;
	uint8_t expect[200];

	pair_setup();
	send_packet(0, 1, 100, 0xab);
	CHECK(count_type(0, WG_MSG_INITIATION) == 1);
	pump();
	CHECK(nodes[1].tun_count == 1);
	CHECK(nodes[1].tun_len[0] == 100);
	make_packet(expect, 100, 0, 1, 0xab);
	CHECK_MEM_EQ(nodes[1].tun[0], expect, 100);

	send_packet(1, 0, 77, 0xcd);
	pump();
	CHECK(nodes[0].tun_count == 1);
	CHECK(nodes[0].tun_len[0] == 77);

	wg_peer_get_info(peer_of(0, 1), &ia);
	wg_peer_get_info(peer_of(1, 0), &ib);
	CHECK(ia.tx_bytes == ib.rx_bytes);
	CHECK(ib.tx_bytes == ia.rx_bytes);
	/* initiation 148 + data(100 -> padded 112) 32+112 ; response 92 + data(77 -> 80) 32+80 */
	CHECK(ia.tx_bytes == 148 + 144);
	CHECK(ib.tx_bytes == 92 + 112);
	CHECK(ia.last_handshake_wall_ns != 0);
	CHECK(ib.last_handshake_wall_ns != 0);
	CHECK(peer_of(1, 0)->current_keypair != NULL && peer_of(1, 0)->next_keypair == NULL);
	teardown();
}

static void test_keepalive_confirms_responder_session(void)
{
	pair_setup();
	/* A handshake with no staged data: the initiator must confirm with a keepalive. */
	wg_send_handshake_initiation(peer_of(0, 1), false);
	pump();
	CHECK(peer_of(1, 0)->current_keypair != NULL);
	CHECK(peer_of(1, 0)->next_keypair == NULL);
	CHECK(nodes[1].tun_count == 0);
	teardown();
}

static void test_replay_is_dropped(void)
{
	struct datagram copy;
	struct wg_device_counters c;

	pair_setup();
	send_packet(0, 1, 60, 1);
	pump();
	send_packet(0, 1, 60, 2);
	CHECK(nodes[0].out_count == 1);
	copy = nodes[0].out[0];
	pump();
	CHECK(nodes[1].tun_count == 2);
	wg_device_udp_input(nodes[1].dev, copy.data, copy.len, &nodes[0].self);
	CHECK(nodes[1].tun_count == 2);
	wg_device_get_counters(nodes[1].dev, &c);
	CHECK(c.dropped[WG_DROP_REPLAY] == 1);
	teardown();
}

static void test_source_address_checked(void)
{
	struct wg_device_counters c;
	uint8_t p[80];

	pair_setup();
	send_packet(0, 1, 60, 1);
	pump();
	/* Node 1 sends a packet whose inner source (10.0.0.9) node 0 does not allow for it. */
	make_packet(p, sizeof(p), 8, 0, 3);
	wg_device_tun_input(nodes[1].dev, p, sizeof(p));
	pump();
	CHECK(nodes[0].tun_count == 0);
	wg_device_get_counters(nodes[0].dev, &c);
	CHECK(c.dropped[WG_DROP_SOURCE_NOT_ALLOWED] == 1);
	teardown();
}

static void test_roaming_updates_endpoint(void)
{
	struct wg_peer_info info;

	pair_setup();
	send_packet(0, 1, 60, 1);
	pump();
	endpoint_v4(&nodes[1].self, "198.51.100.7", 40000); /* node 1 moves */
	send_packet(1, 0, 60, 2);
	pump();
	wg_peer_get_info(peer_of(0, 1), &info);
	CHECK(same_endpoint(&info.endpoint, &nodes[1].self));
	send_packet(0, 1, 60, 3);
	CHECK(nodes[0].out_count == 1 && same_endpoint(&nodes[0].out[0].to, &nodes[1].self));
	pump();
	CHECK(nodes[1].tun_count == 2);
	teardown();
}

static void test_handshake_retries_then_gives_up(void)
{
	size_t initiations = 0;
	uint64_t start = fake_now;

	pair_setup();
	send_packet(0, 1, 60, 1);
	/* Nothing is delivered: count the retries. */
	while (fake_now - start < 200 * WG_NSEC_PER_SEC) {
		initiations += count_type(0, WG_MSG_INITIATION);
		nodes[0].out_count = 0;
		fake_now += 100 * WG_NSEC_PER_MSEC;
		wg_device_tick(nodes[0].dev);
	}
	/* The first attempt plus one retry every 5 s (+jitter) until 90 s have passed. */
	CHECK(initiations >= 17 && initiations <= 20);
	CHECK(peer_of(0, 1)->staged_count == 0);
	teardown();
}

static void test_retry_interval_has_jitter_bounds(void)
{
	uint64_t first = 0, second = 0;

	pair_setup();
	send_packet(0, 1, 60, 1);
	first = fake_now;
	nodes[0].out_count = 0;
	while (!second) {
		fake_now += WG_NSEC_PER_MSEC;
		wg_device_tick(nodes[0].dev);
		if (count_type(0, WG_MSG_INITIATION))
			second = fake_now;
	}
	CHECK(second - first >= WG_REKEY_TIMEOUT);
	CHECK(second - first <= WG_REKEY_TIMEOUT + WG_REKEY_TIMEOUT_JITTER_MAX + WG_NSEC_PER_MSEC);
	teardown();
}

static void test_keepalive_after_receiving_data(void)
{
	pair_setup();
	send_packet(0, 1, 60, 1);
	pump();
	nodes[1].out_count = 0;
	fake_now += 9 * WG_NSEC_PER_SEC;
	wg_device_tick(nodes[1].dev);
	CHECK(nodes[1].out_count == 0);
	fake_now += 2 * WG_NSEC_PER_SEC;
	wg_device_tick(nodes[1].dev);
	CHECK(nodes[1].out_count == 1);
	CHECK(nodes[1].out_count == 1 && nodes[1].out[0].len == WG_DATA_MIN_LEN);
	teardown();
}

static void test_new_handshake_when_no_reply(void)
{
	pair_setup();
	send_packet(0, 1, 60, 1); /* data sent at t0; node 1 receives it but never answers */
	pump();
	nodes[0].out_count = 0;
	fake_now += 2 * WG_NSEC_PER_SEC;
	send_packet(0, 1, 60, 2); /* does not push the deadline: only the first unanswered packet arms it */
	nodes[0].out_count = 0;
	fake_now += 12900 * WG_NSEC_PER_MSEC; /* t0 + 14.9 s */
	wg_device_tick(nodes[0].dev);
	CHECK(count_type(0, WG_MSG_INITIATION) == 0);
	fake_now += 500 * WG_NSEC_PER_MSEC;   /* t0 + 15.4 s > 15 s + jitter */
	wg_device_tick(nodes[0].dev);
	CHECK(count_type(0, WG_MSG_INITIATION) == 1);
	teardown();
}

static void test_rekey_after_time_and_reject_after_time(void)
{
	struct wg_keypair *first;

	pair_setup();
	send_packet(0, 1, 60, 1);
	pump();
	first = peer_of(0, 1)->current_keypair;
	fake_now += WG_REKEY_AFTER_TIME + WG_NSEC_PER_SEC;
	nodes[0].out_count = 0;
	send_packet(0, 1, 60, 2);
	/* The packet still goes out with the old session, followed by a new initiation. */
	CHECK(count_type(0, WG_MSG_DATA) == 1);
	CHECK(count_type(0, WG_MSG_INITIATION) == 1);
	pump();
	CHECK(peer_of(0, 1)->current_keypair != first);
	CHECK(peer_of(0, 1)->previous_keypair == first);

	/* Past REJECT_AFTER_TIME with no new handshake possible, a session is never used to send. */
	fake_now += WG_REJECT_AFTER_TIME + WG_NSEC_PER_SEC;
	nodes[0].out_count = 0;
	send_packet(0, 1, 60, 3);
	CHECK(count_type(0, WG_MSG_DATA) == 0);
	CHECK(count_type(0, WG_MSG_INITIATION) == 1);
	CHECK(peer_of(0, 1)->staged_count == 1);
	teardown();
}

static void test_receive_side_rekey_at_165s(void)
{
	pair_setup();
	send_packet(0, 1, 60, 1); /* node 0 is the initiator */
	pump();
	fake_now += WG_RECEIVE_REKEY_AGE + WG_NSEC_PER_SEC;
	nodes[0].out_count = 0;
	/* Node 1 still sends (its session is younger than it looks: it is the responder's). */
	send_packet(1, 0, 60, 2);
	{
		struct datagram d = nodes[1].out[0];
		CHECK(nodes[1].out_count == 1);
		nodes[1].out_count = 0;
		wg_device_udp_input(nodes[0].dev, d.data, d.len, &nodes[1].self);
	}
	CHECK(count_type(0, WG_MSG_INITIATION) == 1);
	teardown();
}

static void test_keys_zeroed_after_540s(void)
{
	pair_setup();
	send_packet(0, 1, 60, 1);
	pump();
	CHECK(peer_of(0, 1)->current_keypair != NULL);
	advance(539, false);
	CHECK(peer_of(0, 1)->current_keypair != NULL);
	advance(2, false);
	CHECK(peer_of(0, 1)->current_keypair == NULL);
	CHECK(peer_of(1, 0)->current_keypair == NULL);
	teardown();
}

static void test_persistent_keepalive(void)
{
	size_t keepalives = 0;

	pair_setup();
	wg_peer_set_persistent_keepalive(peer_of(0, 1), 25);
	/* Enabling it sends at once: with no session yet that is a handshake. */
	CHECK(count_type(0, WG_MSG_INITIATION) == 1);
	pump();
	for (int s = 0; s < 100; s++) {
		fake_now += WG_NSEC_PER_SEC;
		wg_device_tick(nodes[0].dev);
		for (size_t i = 0; i < nodes[0].out_count; i++)
			keepalives += nodes[0].out[i].len == WG_DATA_MIN_LEN;
		pump();
	}
	CHECK(keepalives == 4);
	teardown();
}

static void test_cookie_under_load(void)
{
	struct wg_device_counters c;

	pair_setup();
	wg_device_set_under_load(nodes[1].dev);
	send_packet(0, 1, 60, 1);
	pump();
	/* Node 1 answered with a cookie instead of a response; node 0 took it. */
	wg_device_get_counters(nodes[1].dev, &c);
	CHECK(c.cookies_sent == 1);
	wg_device_get_counters(nodes[0].dev, &c);
	CHECK(c.cookies_received == 1);
	CHECK(nodes[1].tun_count == 0);
	/* The retry carries mac2 and is accepted while node 1 is still under load. */
	fake_now += WG_REKEY_TIMEOUT + WG_REKEY_TIMEOUT_JITTER_MAX;
	wg_device_set_under_load(nodes[1].dev);
	wg_device_tick(nodes[0].dev);
	pump();
	CHECK(nodes[1].tun_count == 1);
	teardown();
}

static void test_removed_peer_gets_nothing(void)
{
	struct wg_device_counters c;

	pair_setup();
	send_packet(0, 1, 60, 1);
	pump();
	wg_device_remove_peer(nodes[1].dev, peer_of(1, 0));
	send_packet(0, 1, 60, 2);
	pump();
	CHECK(nodes[1].tun_count == 1);
	wg_device_get_counters(nodes[1].dev, &c);
	CHECK(c.dropped[WG_DROP_UNKNOWN_INDEX] == 1);
	/* And its fresh initiations are refused: it is unknown now. */
	fake_now += 200 * WG_NSEC_PER_SEC;
	send_packet(0, 1, 60, 3);
	pump();
	CHECK(nodes[1].tun_count == 1);
	wg_device_get_counters(nodes[1].dev, &c);
	CHECK(c.dropped[WG_DROP_HANDSHAKE_FAILED] >= 1);
	teardown();
}

static void test_low_order_peer_never_handshakes(void)
{
	uint8_t zero_point[32] = {0};
	uint8_t ip[4] = {10, 0, 0, 50};
	struct wg_peer *p;
	int err;

	node_setup(0);
	p = wg_device_add_peer(nodes[0].dev, zero_point, &err);
	CHECK(p != NULL);
	wg_peer_set_endpoint(p, &nodes[1].self);
	wg_peer_add_allowed_ip(p, AF_INET, ip, 32);
	{
		uint8_t pkt[60];
		make_packet(pkt, sizeof(pkt), 0, 49, 0);
		wg_device_tun_input(nodes[0].dev, pkt, sizeof(pkt));
	}
	CHECK(count_type(0, WG_MSG_INITIATION) == 0);
	teardown();
}

static void test_hostile_datagrams_are_counted(void)
{
	struct wg_device_counters c;
	uint8_t buf[300];
	uint64_t total = 0;

	pair_setup();
	send_packet(0, 1, 60, 1);
	pump();
	srand(7);
	for (int i = 0; i < 20000; i++) {
		size_t len = (size_t)rand() % sizeof(buf);
		for (size_t k = 0; k < len; k++)
			buf[k] = (uint8_t)rand();
		if (len >= 4 && (i & 1)) { /* half of them look like real message types */
			wg_put_le32(buf, (uint32_t)(1 + rand() % 4));
			if (i % 3 == 0)
				len = (size_t[]){148, 92, 64, 32, 147, 91, 63, 31}[rand() % 8];
		}
		wg_device_udp_input(nodes[1].dev, buf, len, &nodes[0].self);
	}
	wg_device_get_counters(nodes[1].dev, &c);
	for (int r = 0; r < WG_DROP_REASONS; r++)
		total += c.dropped[r];
	CHECK(total == 20000);
	CHECK(nodes[1].tun_count == 1);
	/* The session still works. */
	send_packet(0, 1, 60, 2);
	pump();
	CHECK(nodes[1].tun_count == 2);
	teardown();
}

static void test_private_key_change_drops_sessions(void)
{
	pair_setup();
	send_packet(0, 1, 60, 1);
	pump();
	wg_x25519_generate(nodes[0].priv, nodes[0].pub);
	wg_device_set_private_key(nodes[0].dev, nodes[0].priv);
	CHECK(peer_of(0, 1)->current_keypair == NULL);
	/* Taking a peer's key as our own removes that peer: we cannot be our own peer. */
	{
		uint8_t other_priv[32], other_pub[32];
		int err;
		wg_x25519_generate(other_priv, other_pub);
		CHECK(wg_device_add_peer(nodes[1].dev, other_pub, &err) != NULL);
		CHECK(wg_device_add_peer(nodes[1].dev, other_pub, &err) == NULL && err == -EEXIST);
		CHECK(wg_device_peer_count(nodes[1].dev) == 2);
		wg_device_set_private_key(nodes[1].dev, other_priv);
		CHECK(wg_device_peer_count(nodes[1].dev) == 1);
		CHECK(wg_device_add_peer(nodes[1].dev, other_pub, &err) == NULL && err == -EINVAL);
	}
	wg_device_set_private_key(nodes[1].dev, NULL);
	CHECK(!wg_device_get_public_key(nodes[1].dev, nodes[1].pub));
	teardown();
}

static void test_three_nodes_route_by_allowed_ips(void)
{
	node_setup(0);
	node_setup(1);
	node_setup(2);
	connect_nodes(0, 1);
	connect_nodes(1, 0);
	connect_nodes(0, 2);
	connect_nodes(2, 0);
	send_packet(0, 1, 60, 1);
	send_packet(0, 2, 70, 2);
	pump();
	CHECK(nodes[1].tun_count == 1 && nodes[1].tun_len[0] == 60);
	CHECK(nodes[2].tun_count == 1 && nodes[2].tun_len[0] == 70);
	teardown();
}

static size_t job_calls, job_total;

static void counting_runner(void *ctx, struct wg_crypto_job *jobs, size_t n)
{
	job_calls++;
	job_total += n;
	wg_crypto_jobs_run(jobs, n);
}

static void test_batches_keep_order_and_run_crypto_once(void)
{
	struct wg_packet batch[40];
	static uint8_t bufs[40][200];
	struct wg_datagram in[40];

	pair_setup();
	send_packet(0, 1, 60, 0); /* handshake */
	pump();
	nodes[1].tun_count = 0;
	nodes[0].dev->ops.run_crypto_jobs = counting_runner;
	job_calls = job_total = 0;
	for (int i = 0; i < 40; i++) {
		make_packet(bufs[i], 100 + (size_t)i, 0, 1, (uint8_t)i);
		batch[i] = (struct wg_packet){.data = bufs[i], .len = 100 + (size_t)i};
	}
	wg_device_tun_input_batch(nodes[0].dev, batch, 40);
	CHECK(job_calls == 1 && job_total == 40);
	CHECK(nodes[0].out_count == 40);
	/* Deliver node 0's datagrams to node 1 as one batch. */
	for (size_t i = 0; i < nodes[0].out_count; i++)
		in[i] = (struct wg_datagram){.data = nodes[0].out[i].data, .len = nodes[0].out[i].len, .from = &nodes[0].self};
	wg_device_udp_input_batch(nodes[1].dev, in, nodes[0].out_count);
	nodes[0].out_count = 0;
	CHECK(nodes[1].tun_count == 40);
	for (size_t i = 0; i < nodes[1].tun_count; i++)
		CHECK(nodes[1].tun_len[i] == 100 + i && nodes[1].tun[i][30] == (uint8_t)i);
	teardown();
}

/* By-reference sends: the pointers must stay valid until flush_udp, which copies them out only then. */
static const uint8_t *ref_data[MAX_QUEUED];
static size_t ref_len[MAX_QUEUED], ref_count, ref_flushes;

static int fake_send_ref(void *ctx, const struct wg_endpoint *to, const uint8_t *data, size_t len)
{
	if (ref_count == MAX_QUEUED)
		return -1;
	ref_data[ref_count] = data;
	ref_len[ref_count++] = len;
	return 0;
}

static void fake_flush_udp(void *ctx)
{
	struct node *n = ctx;

	for (size_t i = 0; i < ref_count; i++)
		fake_send(n, &nodes[1].self, ref_data[i], ref_len[i], 0);
	ref_count = 0;
	ref_flushes++;
}

/* Packets written in place (wg_device_tun_reserve/commit) and one copied in between leave in order, as
 * by-reference datagrams that are still intact when the I/O layer flushes them. */
static void test_tun_reserve_commit_in_place(void)
{
	uint8_t plain[1500];

	pair_setup();
	send_packet(0, 1, 60, 0); /* handshake */
	pump();
	nodes[1].tun_count = 0;
	nodes[0].dev->ops.send_udp_ref = fake_send_ref;
	nodes[0].dev->ops.flush_udp = fake_flush_udp;
	ref_count = ref_flushes = 0;
	CHECK(wg_device_tun_reserve(nodes[0].dev, WG_MAX_PACKET + 1) == NULL);
	wg_device_begin_batch(nodes[0].dev);
	for (int i = 0; i < 40; i++) {
		size_t len = 1000 + (size_t)i;
		uint8_t *slot = wg_device_tun_reserve(nodes[0].dev, 1420);

		CHECK(slot != NULL);
		if (i == 20) {
			make_packet(plain, len, 0, 1, (uint8_t)i);
			wg_device_tun_input(nodes[0].dev, plain, len);
			continue;
		}
		make_packet(slot, len, 0, 1, (uint8_t)i);
		wg_device_tun_commit(nodes[0].dev, slot, len);
	}
	CHECK(ref_flushes == 0 && nodes[0].out_count == 0);
	wg_device_end_batch(nodes[0].dev);
	CHECK(ref_flushes == 1);
	CHECK(nodes[0].out_count == 40);
	pump();
	CHECK(nodes[1].tun_count == 40);
	for (size_t i = 0; i < nodes[1].tun_count; i++) {
		make_packet(plain, 1000 + i, 0, 1, (uint8_t)i);
		CHECK(nodes[1].tun_len[i] == 1000 + i);
		CHECK_MEM_EQ(nodes[1].tun[i], plain, 1000 + i);
	}
	teardown();
}

/* A response and the data that follows it arrive in one batch: the data must find the session the
 * response installed, and old sessions retired by the batch must stay valid until it ends. */
static void test_batch_with_handshake_then_data(void)
{
	struct wg_datagram in[8];
	size_t n = 0;

	pair_setup();
	send_packet(0, 1, 60, 1);           /* node 0: initiation */
	{
		struct datagram init = nodes[0].out[0];
		nodes[0].out_count = 0;
		wg_device_udp_input(nodes[1].dev, init.data, init.len, &nodes[0].self); /* node 1: response */
	}
	send_packet(1, 0, 60, 2);           /* staged on node 1? no: responder has only `next` */
	CHECK(nodes[1].out_count == 1);     /* the response; node 1's data waits for confirmation */
	in[n++] = (struct wg_datagram){.data = nodes[1].out[0].data, .len = nodes[1].out[0].len, .from = &nodes[1].self};
	wg_device_udp_input_batch(nodes[0].dev, in, n);
	nodes[1].out_count = 0;
	/* Node 0 now has the session and sent its staged packet; node 1 confirms and sends its own. */
	pump();
	CHECK(nodes[1].tun_count == 1);
	CHECK(nodes[0].tun_count == 1);
	teardown();
}

/* 50 initiations (from a stranger: each costs the DH work before it fails) and one data packet in the
 * same batch: the data is delivered at once, the handshakes drain a few per batch afterwards. */
static void test_handshake_flood_does_not_stall_data(void)
{
	static struct wg_msg_initiation floods[50];
	struct wg_datagram in[51];
	struct wg_static_identity stranger = {.has_identity = true};
	struct wg_handshake hs;
	struct wg_cookie_maker maker;
	uint8_t ts[WG_TIMESTAMP_LEN] = {0};
	struct wg_endpoint stranger_ep;
	struct wg_device_counters c;
	size_t left, rounds = 0;

	pair_setup();
	send_packet(0, 1, 60, 1);
	pump();
	wg_x25519_generate(stranger.private_key, stranger.public_key);
	wg_noise_handshake_init(&hs, &stranger, nodes[1].pub, NULL);
	wg_cookie_maker_init(&maker, nodes[1].pub);
	endpoint_v4(&stranger_ep, "203.0.113.9", 9999);
	for (int i = 0; i < 50; i++) {
		ts[11] = (uint8_t)i;
		CHECK(wg_noise_create_initiation(&hs, &stranger, (uint32_t)i, ts, &floods[i]));
		wg_cookie_add_macs(&maker, &floods[i], sizeof(floods[i]), fake_now);
		in[i] = (struct wg_datagram){.data = (uint8_t *)&floods[i], .len = sizeof(floods[i]), .from = &stranger_ep};
	}
	send_packet(0, 1, 80, 2);
	CHECK(nodes[0].out_count == 1);
	in[50] = (struct wg_datagram){.data = nodes[0].out[0].data, .len = nodes[0].out[0].len, .from = &nodes[0].self};
	wg_device_udp_input_batch(nodes[1].dev, in, 51);
	nodes[0].out_count = 0;
	CHECK(nodes[1].tun_count == 2);
	CHECK(nodes[1].dev->handshake_queue_count == 50 - WG_HANDSHAKES_PER_BATCH);
	while ((left = wg_device_process_handshakes(nodes[1].dev)) > 0 && rounds < 100)
		rounds++;
	CHECK(left == 0);
	wg_device_get_counters(nodes[1].dev, &c);
	CHECK(c.dropped[WG_DROP_HANDSHAKE_FAILED] == 50);
	teardown();
}

int main(void)
{
	TEST_RUN(test_handshake_and_data_both_ways);
	TEST_RUN(test_keepalive_confirms_responder_session);
	TEST_RUN(test_replay_is_dropped);
	TEST_RUN(test_source_address_checked);
	TEST_RUN(test_roaming_updates_endpoint);
	TEST_RUN(test_handshake_retries_then_gives_up);
	TEST_RUN(test_retry_interval_has_jitter_bounds);
	TEST_RUN(test_keepalive_after_receiving_data);
	TEST_RUN(test_new_handshake_when_no_reply);
	TEST_RUN(test_rekey_after_time_and_reject_after_time);
	TEST_RUN(test_receive_side_rekey_at_165s);
	TEST_RUN(test_keys_zeroed_after_540s);
	TEST_RUN(test_persistent_keepalive);
	TEST_RUN(test_cookie_under_load);
	TEST_RUN(test_removed_peer_gets_nothing);
	TEST_RUN(test_low_order_peer_never_handshakes);
	TEST_RUN(test_hostile_datagrams_are_counted);
	TEST_RUN(test_private_key_change_drops_sessions);
	TEST_RUN(test_three_nodes_route_by_allowed_ips);
	TEST_RUN(test_batches_keep_order_and_run_crypto_once);
	TEST_RUN(test_tun_reserve_commit_in_place);
	TEST_RUN(test_batch_with_handshake_then_data);
	TEST_RUN(test_handshake_flood_does_not_stall_data);
	return TEST_SUMMARY();
}
