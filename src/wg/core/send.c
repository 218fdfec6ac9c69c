/* Everything the device sends: handshake initiations, responses' data path counterpart (transport data
 * and keepalives), and the staging of packets while no session is usable. */
#include <stdlib.h>
#include <string.h>
#include "wg/core/device_internal.h"

static bool has_endpoint(const struct wg_peer *peer) { return peer->endpoint.addr.sa.sa_family != 0; }

void wg_send_datagram(struct wg_peer *peer, const uint8_t *data, size_t len, uint8_t dscp)
{
	struct wg_device *dev = peer->dev;

	if (!has_endpoint(peer)) {
		wg_count_drop(dev, WG_DROP_NO_ENDPOINT);
		return;
	}
	/* Counted as sent even if the socket later fails: like the kernel, tx counts what we emitted. */
	if (dev->ops.send_udp(dev->ops.ctx, &peer->endpoint, data, len, dscp) == 0)
		peer->tx_bytes += len;
}

void wg_send_handshake_initiation(struct wg_peer *peer, bool is_retry)
{
	struct wg_device *dev = peer->dev;
	uint64_t now = wg_now(dev);
	struct wg_msg_initiation msg;
	uint8_t timestamp[WG_TIMESTAMP_LEN];

	if (!is_retry)
		peer->timers.handshake_attempts = 0;
	/* At most one initiation per REKEY_TIMEOUT, whatever asks for it. */
	if (peer->last_sent_handshake_ns && now - peer->last_sent_handshake_ns < WG_REKEY_TIMEOUT)
		return;
	if (!dev->identity.has_identity || !has_endpoint(peer))
		return;
	if (!wg_index_table_insert_new(&dev->indices, &peer->handshake_entry, WG_INDEX_HANDSHAKE, peer))
		return;
	wg_tai64n(timestamp, dev->ops.wall_ns(dev->ops.ctx));
	if (!wg_noise_create_initiation(&peer->handshake, &dev->identity, peer->handshake_entry.index, timestamp, &msg)) {
		wg_index_table_remove(&dev->indices, &peer->handshake_entry);
		return;
	}
	wg_cookie_add_macs(&peer->cookie, &msg, sizeof(msg), now);
	peer->last_sent_handshake_ns = now;
	dev->counters.handshakes_initiated++;
	wg_timers_any_authenticated_packet_traversal(&peer->timers, now);
	wg_timers_any_authenticated_packet_sent(&peer->timers);
	wg_send_datagram(peer, (const uint8_t *)&msg, sizeof(msg), WG_HANDSHAKE_DSCP);
	wg_timers_handshake_initiated(&peer->timers, now, wg_jitter(dev));
}

static size_t padded_length(size_t len, unsigned mtu)
{
	size_t padded = (len + WG_PADDING_MULTIPLE - 1) & ~(size_t)(WG_PADDING_MULTIPLE - 1);

	/* Padding never pushes a packet that fits the MTU beyond it. */
	if (mtu && len <= mtu && padded > mtu)
		padded = mtu;
	return padded;
}

/* A sealed data message from the arena: by reference when the I/O layer can, since the arena is only
 * reused after flush_udp. */
static void send_data_message(struct wg_peer *peer, const uint8_t *msg, size_t len)
{
	struct wg_device *dev = peer->dev;

	if (!dev->ops.send_udp_ref || !dev->ops.flush_udp) {
		wg_send_datagram(peer, msg, len, 0);
		return;
	}
	if (!has_endpoint(peer)) {
		wg_count_drop(dev, WG_DROP_NO_ENDPOINT);
		return;
	}
	if (dev->ops.send_udp_ref(dev->ops.ctx, &peer->endpoint, msg, len) == 0)
		peer->tx_bytes += len;
}

/* Sends every queued data message: one crypto call for the batch, then the datagrams in queue order. */
void wg_tx_flush(struct wg_device *dev)
{
	struct wg_tx_batch *tx = &dev->tx;

	wg_run_jobs(dev, tx->jobs, tx->count);
	for (size_t i = 0; i < tx->count; i++) {
		if (tx->jobs[i].ok)
			send_data_message(tx->peers[i], tx->messages[i], WG_DATA_HEADER_LEN + tx->jobs[i].len + WG_AEAD_TAG_LEN);
	}
	if (tx->count && dev->ops.send_udp_ref && dev->ops.flush_udp)
		dev->ops.flush_udp(dev->ops.ctx);
	tx->count = 0;
	tx->arena_used = 0;
}

/* Room in the arena for one message carrying up to len bytes of plaintext, flushing the batch first
 * when it is full. */
static uint8_t *tx_room(struct wg_device *dev, size_t len)
{
	struct wg_tx_batch *tx = &dev->tx;
	size_t need = WG_DATA_OVERHEAD + padded_length(len, 0);

	if (tx->count == WG_BATCH_MAX || tx->arena_used + need > WG_TX_ARENA_SIZE)
		wg_tx_flush(dev);
	return tx->arena + tx->arena_used;
}

/* Queues one plaintext packet (len 0 = keepalive) for encryption with the current session. The counter
 * is taken now, so the order of the queue is the order of the counters. */
static void send_with_keypair(struct wg_peer *peer, struct wg_keypair *kp, const uint8_t *packet, size_t len, uint64_t now)
{
	struct wg_device *dev = peer->dev;
	struct wg_tx_batch *tx = &dev->tx;
	size_t padded = padded_length(len, dev->mtu);
	size_t need = WG_DATA_OVERHEAD + padded;
	struct wg_crypto_job *job;
	uint8_t *out = tx_room(dev, padded);

	tx->arena_used += (need + 63) & ~(size_t)63; /* keep messages cache-line aligned */
	job = &tx->jobs[tx->count];
	job->key = &kp->sending;
	job->counter = kp->sending_counter++;
	job->data = out + WG_DATA_HEADER_LEN;
	job->len = padded;
	job->seal = true;
	tx->peers[tx->count] = peer;
	tx->messages[tx->count] = out;
	tx->count++;

	wg_put_le32(out, WG_MSG_DATA);
	wg_put_le32(out + 4, kp->remote_index);
	wg_put_le64(out + 8, job->counter);
	/* A packet written in place by wg_device_tun_reserve's caller is already there. */
	if (len && packet != job->data)
		memcpy(job->data, packet, len);
	memset(job->data + len, 0, padded - len);
	wg_timers_any_authenticated_packet_traversal(&peer->timers, now);
	wg_timers_any_authenticated_packet_sent(&peer->timers);
	/* Random bytes are drawn only when the deadline is armed, not for every packet of a flow. */
	if (len && wg_timers_data_sent_arms(&peer->timers))
		wg_timers_data_sent(&peer->timers, now, wg_jitter(dev));
}

/* The initiator renews a session before it ages out or its counter runs high. */
static void keep_key_fresh_on_send(struct wg_peer *peer, const struct wg_keypair *kp, uint64_t now)
{
	if (kp->sending_counter > WG_REKEY_AFTER_MESSAGES ||
	    (kp->is_initiator && now - kp->birth_ns >= WG_REKEY_AFTER_TIME))
		wg_send_handshake_initiation(peer, false);
}

static void stage(struct wg_peer *peer, const uint8_t *packet, size_t len)
{
	struct wg_staged *s;
	unsigned slot;

	if (peer->staged_count == WG_MAX_STAGED_PACKETS) {
		/* Full: the oldest packet is the least useful one, drop it. */
		free(peer->staged[peer->staged_head]);
		peer->staged_head = (peer->staged_head + 1) % WG_MAX_STAGED_PACKETS;
		peer->staged_count--;
		wg_count_drop(peer->dev, WG_DROP_STAGED_OVERFLOW);
	}
	s = malloc(sizeof(*s) + len);
	if (!s)
		return;
	s->len = len;
	memcpy(s->data, packet, len);
	slot = (peer->staged_head + peer->staged_count) % WG_MAX_STAGED_PACKETS;
	peer->staged[slot] = s;
	peer->staged_count++;
}

void wg_staged_purge(struct wg_peer *peer)
{
	while (peer->staged_count) {
		free(peer->staged[peer->staged_head]);
		peer->staged[peer->staged_head] = NULL;
		peer->staged_head = (peer->staged_head + 1) % WG_MAX_STAGED_PACKETS;
		peer->staged_count--;
	}
	peer->staged_head = 0;
}

void wg_send_staged(struct wg_peer *peer)
{
	uint64_t now = wg_now(peer->dev);
	struct wg_keypair *kp = peer->current_keypair;

	if (!peer->staged_count)
		return;
	if (!wg_keypair_usable_for_sending(kp, now)) {
		wg_send_handshake_initiation(peer, false);
		return;
	}
	while (peer->staged_count) {
		struct wg_staged *s = peer->staged[peer->staged_head];

		peer->staged[peer->staged_head] = NULL;
		peer->staged_head = (peer->staged_head + 1) % WG_MAX_STAGED_PACKETS;
		peer->staged_count--;
		send_with_keypair(peer, kp, s->data, s->len, now);
		free(s);
	}
	keep_key_fresh_on_send(peer, kp, now);
}

void wg_send_keepalive(struct wg_peer *peer)
{
	uint64_t now = wg_now(peer->dev);
	struct wg_keypair *kp = peer->current_keypair;

	if (peer->staged_count) {
		wg_send_staged(peer);
		return;
	}
	if (!wg_keypair_usable_for_sending(kp, now)) {
		wg_send_handshake_initiation(peer, false);
		return;
	}
	send_with_keypair(peer, kp, NULL, 0, now);
	keep_key_fresh_on_send(peer, kp, now);
}

/* Destination address of an IPv4/IPv6 packet; false when the header is not plausible. */
static bool packet_destination(const uint8_t *packet, size_t len, int *family, const uint8_t **dst)
{
	if (len >= 20 && packet[0] >> 4 == 4) {
		*family = AF_INET;
		*dst = packet + 16;
		return true;
	}
	if (len >= 40 && packet[0] >> 4 == 6) {
		*family = AF_INET6;
		*dst = packet + 24;
		return true;
	}
	return false;
}

static void tun_packet(struct wg_device *dev, const uint8_t *packet, size_t len)
{
	struct wg_allowedips_owner *owner;
	struct wg_peer *peer;
	struct wg_keypair *kp;
	const uint8_t *dst;
	uint64_t now;
	int family;

	if (len > WG_MAX_PACKET || !packet_destination(packet, len, &family, &dst)) {
		wg_count_drop(dev, WG_DROP_BAD_INNER);
		return;
	}
	owner = wg_allowedips_lookup(dev->allowed_ips, family, dst);
	if (!owner) {
		wg_count_drop(dev, WG_DROP_NO_ROUTE);
		return;
	}
	peer = container_of(owner, struct wg_peer, allowed_ips);
	if (!dev->identity.has_identity) {
		wg_count_drop(dev, WG_DROP_NO_IDENTITY);
		return;
	}
	if (!has_endpoint(peer)) {
		wg_count_drop(dev, WG_DROP_NO_ENDPOINT);
		return;
	}
	now = wg_now(dev);
	kp = peer->current_keypair;
	if (peer->staged_count || !wg_keypair_usable_for_sending(kp, now)) {
		stage(peer, packet, len);
		wg_send_staged(peer);
		return;
	}
	send_with_keypair(peer, kp, packet, len, now);
	keep_key_fresh_on_send(peer, kp, now);
}

void wg_device_tun_input_batch(struct wg_device *dev, const struct wg_packet *packets, size_t n)
{
	wg_batch_begin(dev);
	for (size_t i = 0; i < n; i++)
		tun_packet(dev, packets[i].data, packets[i].len);
	wg_batch_end(dev);
}

uint8_t *wg_device_tun_reserve(struct wg_device *dev, size_t max)
{
	if (max > WG_MAX_PACKET)
		return NULL;
	return tx_room(dev, max) + WG_DATA_HEADER_LEN;
}

void wg_device_tun_commit(struct wg_device *dev, const uint8_t *packet, size_t len)
{
	wg_batch_begin(dev);
	tun_packet(dev, packet, len);
	wg_batch_end(dev);
}

void wg_device_tun_input(struct wg_device *dev, const uint8_t *packet, size_t len)
{
	struct wg_packet one = {.data = packet, .len = len};
	wg_device_tun_input_batch(dev, &one, 1);
}
