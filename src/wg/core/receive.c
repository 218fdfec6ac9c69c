/* Everything the device receives from the network. Each message is validated in order of cost: size and
 * type first, then MACs (cheap), then the handshake or AEAD (expensive). Every rejection is counted
 * under a reason and nothing about the sender is trusted until it authenticated. */
#include <arpa/inet.h>
#include <string.h>
#include "wg/core/device_internal.h"

static void source_of(const struct wg_endpoint *from, struct wg_cookie_source *src)
{
	memset(src, 0, sizeof(*src));
	if (from->addr.sa.sa_family == AF_INET6) {
		memcpy(src->addr, &from->addr.in6.sin6_addr, 16);
		src->addr_len = 16;
		src->port = ntohs(from->addr.in6.sin6_port);
	} else {
		memcpy(src->addr, &from->addr.in4.sin_addr, 4);
		src->addr_len = 4;
		src->port = ntohs(from->addr.in4.sin_port);
	}
}

/* Under load while the handshake queue is an eighth full, and for a second afterwards. */
static bool under_load(struct wg_device *dev, uint64_t now)
{
	if (dev->handshake_queue_count >= WG_UNDER_LOAD_QUEUE_LEN)
		dev->under_load_until_ns = now + WG_UNDER_LOAD_HOLD;
	return now < dev->under_load_until_ns;
}

/* Applies the DoS rules to a handshake message; true when it may be processed. */
static bool handshake_admitted(struct wg_device *dev, const uint8_t *data, size_t len, const struct wg_endpoint *from,
			       uint32_t sender_index, uint64_t now)
{
	struct wg_cookie_source src;
	bool loaded = under_load(dev, now);
	enum wg_cookie_verdict verdict;
	struct wg_msg_cookie_reply reply;

	source_of(from, &src);
	verdict = wg_cookie_validate(&dev->cookie_checker, data, len, &src, loaded, now);
	if (verdict == WG_COOKIE_INVALID_MAC) {
		wg_count_drop(dev, WG_DROP_BAD_MAC);
		return false;
	}
	if (!loaded)
		return true;
	if (verdict != WG_COOKIE_VALID_MAC1_AND_MAC2) {
		/* Make the sender prove its address before we spend a DH on it. */
		wg_cookie_create_reply(&dev->cookie_checker, data, len, sender_index, &src, now, &reply);
		dev->ops.send_udp(dev->ops.ctx, from, (const uint8_t *)&reply, sizeof(reply), 0);
		dev->counters.cookies_sent++;
		wg_count_drop(dev, WG_DROP_RATELIMITED);
		return false;
	}
	if (!wg_ratelimiter_allow(dev->ratelimiter, src.addr, src.addr_len, now)) {
		wg_count_drop(dev, WG_DROP_RATELIMITED);
		return false;
	}
	return true;
}

static struct wg_handshake *lookup_peer_handshake(void *ctx, const uint8_t remote_static[WG_KEY_LEN])
{
	struct wg_peer *peer = wg_device_find_peer(ctx, remote_static);
	return peer ? &peer->handshake : NULL;
}

/* A genuine message from the peer arrived from `from`: that is where it is now (roaming). */
static void learn_endpoint(struct wg_peer *peer, const struct wg_endpoint *from)
{
	peer->endpoint = *from;
}

static void handshake_completed(struct wg_peer *peer)
{
	struct wg_device *dev = peer->dev;

	wg_timers_handshake_complete(&peer->timers);
	peer->last_handshake_wall_ns = dev->ops.wall_ns(dev->ops.ctx);
	dev->counters.handshakes_completed++;
}

static void send_response(struct wg_peer *peer, uint64_t now)
{
	struct wg_device *dev = peer->dev;
	struct wg_msg_response msg;
	struct wg_session_keys keys;

	if (!wg_index_table_insert_new(&dev->indices, &peer->handshake_entry, WG_INDEX_HANDSHAKE, peer))
		return;
	if (!wg_noise_create_response(&peer->handshake, peer->handshake_entry.index, &msg)) {
		wg_index_table_remove(&dev->indices, &peer->handshake_entry);
		return;
	}
	wg_cookie_add_macs(&peer->cookie, &msg, sizeof(msg), now);
	if (!wg_noise_derive_keys(&peer->handshake, &keys) || !wg_keypair_install(peer, &keys, now)) {
		wg_wipe(&keys, sizeof(keys));
		return;
	}
	wg_wipe(&keys, sizeof(keys));
	/* A response counts as a handshake sent: data queued before the initiator confirms must wait for
	 * the confirmation, not start a competing handshake. */
	peer->last_sent_handshake_ns = now;
	wg_timers_session_derived(&peer->timers, now);
	wg_timers_any_authenticated_packet_traversal(&peer->timers, now);
	wg_timers_any_authenticated_packet_sent(&peer->timers);
	wg_send_datagram(peer, (const uint8_t *)&msg, sizeof(msg), WG_HANDSHAKE_DSCP);
}

static void receive_initiation(struct wg_device *dev, const uint8_t *data, size_t len, const struct wg_endpoint *from, uint64_t now)
{
	const struct wg_msg_initiation *msg = (const void *)data;
	struct wg_handshake *hs;
	struct wg_peer *peer;

	hs = wg_noise_consume_initiation(&dev->identity, msg, now, lookup_peer_handshake, dev);
	if (!hs) {
		wg_count_drop(dev, WG_DROP_HANDSHAKE_FAILED);
		return;
	}
	peer = container_of(hs, struct wg_peer, handshake);
	learn_endpoint(peer, from);
	peer->rx_bytes += len;
	wg_timers_any_authenticated_packet_received(&peer->timers);
	wg_timers_any_authenticated_packet_traversal(&peer->timers, now);
	send_response(peer, now);
}

static void receive_response(struct wg_device *dev, const uint8_t *data, size_t len, const struct wg_endpoint *from, uint64_t now)
{
	const struct wg_msg_response *msg = (const void *)data;
	struct wg_index_entry *entry;
	struct wg_session_keys keys;
	struct wg_peer *peer;

	entry = wg_index_table_lookup(&dev->indices, wg_get_le32(&msg->receiver_index_le), WG_INDEX_HANDSHAKE);
	if (!entry) {
		wg_count_drop(dev, WG_DROP_UNKNOWN_INDEX);
		return;
	}
	peer = entry->owner;
	if (!wg_noise_consume_response(&peer->handshake, &dev->identity, msg)) {
		wg_count_drop(dev, WG_DROP_HANDSHAKE_FAILED);
		return;
	}
	if (!wg_noise_derive_keys(&peer->handshake, &keys) || !wg_keypair_install(peer, &keys, now)) {
		wg_wipe(&keys, sizeof(keys));
		return;
	}
	wg_wipe(&keys, sizeof(keys));
	learn_endpoint(peer, from);
	peer->rx_bytes += len;
	wg_timers_any_authenticated_packet_received(&peer->timers);
	wg_timers_any_authenticated_packet_traversal(&peer->timers, now);
	wg_timers_session_derived(&peer->timers, now);
	handshake_completed(peer);
	/* Confirms the session to the responder at once (carrying staged data if there is any). */
	wg_send_keepalive(peer);
}

static void receive_cookie_reply(struct wg_device *dev, const uint8_t *data, uint64_t now)
{
	const struct wg_msg_cookie_reply *msg = (const void *)data;
	struct wg_index_entry *entry;
	struct wg_peer *peer;

	entry = wg_index_table_lookup(&dev->indices, wg_get_le32(&msg->receiver_index_le),
				      WG_INDEX_HANDSHAKE | WG_INDEX_KEYPAIR);
	if (!entry) {
		wg_count_drop(dev, WG_DROP_UNKNOWN_INDEX);
		return;
	}
	peer = entry->kind == WG_INDEX_HANDSHAKE ? entry->owner : ((struct wg_keypair *)entry->owner)->peer;
	if (!wg_cookie_consume_reply(&peer->cookie, msg, now)) {
		wg_count_drop(dev, WG_DROP_BAD_COOKIE);
		return;
	}
	dev->counters.cookies_received++;
}

/* Length of the IP packet inside decrypted plaintext (which carries padding), and its source address;
 * false when the plaintext is not one plausible IPv4 or IPv6 packet. */
static bool inner_packet(const uint8_t *p, size_t len, size_t *ip_len, int *family, const uint8_t **src)
{
	if (len >= 20 && p[0] >> 4 == 4) {
		*ip_len = (size_t)p[2] << 8 | p[3];
		*family = AF_INET;
		*src = p + 12;
		return *ip_len >= 20 && *ip_len <= len;
	}
	if (len >= 40 && p[0] >> 4 == 6) {
		*ip_len = 40 + ((size_t)p[4] << 8 | p[5]);
		*family = AF_INET6;
		*src = p + 8;
		return *ip_len <= len;
	}
	return false;
}

/* The initiator renews a session it only receives on before the responder's side ages out. */
static void keep_key_fresh_on_receive(struct wg_peer *peer, const struct wg_keypair *kp, uint64_t now)
{
	if (kp != peer->current_keypair || !kp->is_initiator || peer->timers.sent_lastminute_handshake)
		return;
	if (now - kp->birth_ns >= WG_RECEIVE_REKEY_AGE) {
		peer->timers.sent_lastminute_handshake = true;
		wg_send_handshake_initiation(peer, false);
	}
}

static void deliver(struct wg_peer *peer, const uint8_t *plain, size_t len, uint64_t now)
{
	struct wg_device *dev = peer->dev;
	struct wg_allowedips_owner *owner;
	const uint8_t *src;
	size_t ip_len;
	int family;

	if (len == 0)
		return; /* keepalive */
	if (!inner_packet(plain, len, &ip_len, &family, &src)) {
		wg_count_drop(dev, WG_DROP_BAD_INNER);
		return;
	}
	owner = wg_allowedips_lookup(dev->allowed_ips, family, src);
	if (owner != &peer->allowed_ips) {
		wg_count_drop(dev, WG_DROP_SOURCE_NOT_ALLOWED);
		return;
	}
	dev->ops.write_tun(dev->ops.ctx, plain, ip_len);
	wg_timers_data_received(&peer->timers, now);
}

/* Matches a data message to its session and queues its decryption; the rest happens in wg_rx_flush. */
static void receive_data(struct wg_device *dev, uint8_t *data, size_t len, const struct wg_endpoint *from, uint64_t now)
{
	struct wg_index_entry *entry = wg_index_table_lookup(&dev->indices, wg_get_le32(data + 4), WG_INDEX_KEYPAIR);
	struct wg_rx_batch *rx = &dev->rx;
	uint64_t counter = wg_get_le64(data + 8);
	struct wg_crypto_job *job;
	struct wg_keypair *kp;

	if (!entry) {
		wg_count_drop(dev, WG_DROP_UNKNOWN_INDEX);
		return;
	}
	kp = entry->owner;
	if (wg_keypair_expired_for_receiving(kp, now) || counter >= WG_REJECT_AFTER_MESSAGES) {
		wg_count_drop(dev, WG_DROP_KEY_EXPIRED);
		return;
	}
	if (rx->count == WG_BATCH_MAX)
		wg_rx_flush(dev);
	job = &rx->jobs[rx->count];
	job->key = &kp->receiving;
	job->counter = counter;
	job->data = data + WG_DATA_HEADER_LEN;
	job->len = len - WG_DATA_HEADER_LEN;
	job->seal = false;
	rx->keypairs[rx->count] = kp;
	rx->from[rx->count] = from;
	rx->lens[rx->count] = len;
	rx->count++;
}

/* What follows the decryption of one authentic data message, in arrival order. */
static void data_authenticated(struct wg_device *dev, struct wg_keypair *kp, const struct wg_crypto_job *job,
			       size_t len, const struct wg_endpoint *from, uint64_t now)
{
	struct wg_peer *peer = kp->peer;

	/* The window is updated only for authentic packets, so forgeries cannot advance it. */
	if (!wg_replay_accept(&kp->replay, job->counter)) {
		wg_count_drop(dev, WG_DROP_REPLAY);
		return;
	}
	if (wg_keypair_confirm(peer, kp)) {
		handshake_completed(peer);
		wg_send_staged(peer);
	}
	learn_endpoint(peer, from);
	peer->rx_bytes += len;
	keep_key_fresh_on_receive(peer, kp, now);
	wg_timers_any_authenticated_packet_received(&peer->timers);
	wg_timers_any_authenticated_packet_traversal(&peer->timers, now);
	deliver(peer, job->data, job->len - WG_AEAD_TAG_LEN, now);
}

void wg_rx_flush(struct wg_device *dev)
{
	struct wg_rx_batch *rx = &dev->rx;
	uint64_t now;

	if (!rx->count)
		return;
	wg_run_jobs(dev, rx->jobs, rx->count);
	now = wg_now(dev);
	for (size_t i = 0; i < rx->count; i++) {
		if (!rx->jobs[i].ok) {
			wg_count_drop(dev, WG_DROP_DECRYPT_FAILED);
			continue;
		}
		data_authenticated(dev, rx->keypairs[i], &rx->jobs[i], rx->lens[i], rx->from[i], now);
	}
	rx->count = 0;
}

/* Admits a handshake message (cheap checks only: mac1, cookie under load, rate) and queues it for
 * wg_handshakes_process. Deferring is safe for ordering: no data can use the session a queued message
 * will create before we answer it. */
static void enqueue_handshake(struct wg_device *dev, const uint8_t *data, size_t len, const struct wg_endpoint *from,
			      uint32_t sender_index, uint64_t now)
{
	struct wg_queued_handshake *q;

	if (!handshake_admitted(dev, data, len, from, sender_index, now))
		return;
	if (dev->handshake_queue_count == WG_HANDSHAKE_QUEUE_LEN) {
		wg_count_drop(dev, WG_DROP_RATELIMITED);
		return;
	}
	q = &dev->handshake_queue[(dev->handshake_queue_head + dev->handshake_queue_count) % WG_HANDSHAKE_QUEUE_LEN];
	q->from = *from;
	memcpy(q->msg, data, len);
	dev->handshake_queue_count++;
}

void wg_handshakes_process(struct wg_device *dev, size_t max)
{
	uint64_t now = wg_now(dev);

	while (max-- && dev->handshake_queue_count) {
		struct wg_queued_handshake *q = &dev->handshake_queue[dev->handshake_queue_head];

		dev->handshake_queue_head = (dev->handshake_queue_head + 1) % WG_HANDSHAKE_QUEUE_LEN;
		dev->handshake_queue_count--;
		if (wg_get_le32(q->msg) == WG_MSG_INITIATION)
			receive_initiation(dev, q->msg, sizeof(struct wg_msg_initiation), &q->from, now);
		else
			receive_response(dev, q->msg, sizeof(struct wg_msg_response), &q->from, now);
	}
}

/* One datagram. Data messages join the batch; handshakes join the handshake queue; a cookie reply first
 * lets the batch finish, so it acts on the state its predecessors left. */
static void datagram(struct wg_device *dev, uint8_t *data, size_t len, const struct wg_endpoint *from, uint64_t now)
{
	uint32_t type;

	if (len < sizeof(struct wg_msg_header)) {
		wg_count_drop(dev, WG_DROP_MALFORMED);
		return;
	}
	type = wg_get_le32(data);
	if (type == WG_MSG_DATA && len >= WG_DATA_MIN_LEN) {
		receive_data(dev, data, len, from, now);
		return;
	}
	switch (type) {
	case WG_MSG_INITIATION:
		if (len != sizeof(struct wg_msg_initiation))
			break;
		enqueue_handshake(dev, data, len, from, wg_get_le32(data + 4), now);
		return;
	case WG_MSG_RESPONSE:
		if (len != sizeof(struct wg_msg_response))
			break;
		enqueue_handshake(dev, data, len, from, wg_get_le32(data + 4), now);
		return;
	case WG_MSG_COOKIE_REPLY:
		wg_rx_flush(dev);
		if (len != sizeof(struct wg_msg_cookie_reply))
			break;
		receive_cookie_reply(dev, data, now);
		return;
	}
	wg_count_drop(dev, WG_DROP_MALFORMED);
}

void wg_device_udp_input_batch(struct wg_device *dev, struct wg_datagram *datagrams, size_t n)
{
	uint64_t now = wg_now(dev);

	wg_batch_begin(dev);
	for (size_t i = 0; i < n; i++)
		datagram(dev, datagrams[i].data, datagrams[i].len, datagrams[i].from, now);
	wg_batch_end(dev);
}

void wg_device_udp_input(struct wg_device *dev, const uint8_t *data, size_t len, const struct wg_endpoint *from)
{
	struct wg_datagram one = {.data = dev->rx_copy, .len = len, .from = from};

	if (len > sizeof(dev->rx_copy)) {
		wg_count_drop(dev, WG_DROP_MALFORMED);
		return;
	}
	memcpy(dev->rx_copy, data, len);
	wg_device_udp_input_batch(dev, &one, 1);
}
