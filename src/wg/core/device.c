/* Device lifecycle, configuration and peer management (see device.h). The packet paths live in send.c
 * and receive.c, keypair rotation in keypairs.c. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include "wg/core/device_internal.h"

enum { INITIAL_PEER_BUCKETS = 64 };

static const char *const drop_reason_names[WG_DROP_REASONS] = {
	[WG_DROP_MALFORMED] = "malformed",
	[WG_DROP_BAD_MAC] = "bad_mac",
	[WG_DROP_RATELIMITED] = "ratelimited",
	[WG_DROP_HANDSHAKE_FAILED] = "handshake_failed",
	[WG_DROP_UNKNOWN_INDEX] = "unknown_index",
	[WG_DROP_BAD_COOKIE] = "bad_cookie",
	[WG_DROP_DECRYPT_FAILED] = "decrypt_failed",
	[WG_DROP_REPLAY] = "replay",
	[WG_DROP_KEY_EXPIRED] = "key_expired",
	[WG_DROP_BAD_INNER] = "bad_inner_packet",
	[WG_DROP_SOURCE_NOT_ALLOWED] = "source_not_allowed",
	[WG_DROP_NO_ROUTE] = "no_route",
	[WG_DROP_NO_ENDPOINT] = "no_endpoint",
	[WG_DROP_NO_IDENTITY] = "no_identity",
	[WG_DROP_STAGED_OVERFLOW] = "staged_overflow",
};

const char *wg_drop_reason_name(enum wg_drop_reason reason)
{
	return (unsigned)reason < WG_DROP_REASONS ? drop_reason_names[reason] : "unknown";
}

struct wg_device *wg_device_new(const struct wg_io_ops *ops)
{
	struct wg_device *dev;

	if (!wg_crypto_init())
		return NULL;
	dev = calloc(1, sizeof(*dev));
	if (!dev)
		return NULL;
	dev->ops = *ops;
	dev->mtu = WG_DEFAULT_MTU;
	dev->next_internal_id = 1;
	wg_random_bytes(dev->peer_hash_key, sizeof(dev->peer_hash_key));
	wg_cookie_checker_init(&dev->cookie_checker, NULL);
	dev->ratelimiter = wg_ratelimiter_new();
	dev->allowed_ips = wg_allowedips_new();
	dev->peer_buckets = calloc(INITIAL_PEER_BUCKETS, sizeof(*dev->peer_buckets));
	dev->peer_bucket_count = INITIAL_PEER_BUCKETS;
	dev->tx.arena = malloc(WG_TX_ARENA_SIZE);
	dev->handshake_queue = calloc(WG_HANDSHAKE_QUEUE_LEN, sizeof(*dev->handshake_queue));
	if (!dev->ratelimiter || !dev->allowed_ips || !dev->peer_buckets || !dev->tx.arena || !dev->handshake_queue ||
	    !wg_index_table_init(&dev->indices)) {
		wg_device_free(dev);
		return NULL;
	}
	return dev;
}

void wg_device_free(struct wg_device *dev)
{
	if (!dev)
		return;
	wg_device_remove_all_peers(dev);
	wg_ratelimiter_free(dev->ratelimiter);
	wg_allowedips_free(dev->allowed_ips);
	wg_index_table_destroy(&dev->indices);
	free(dev->peer_buckets);
	if (dev->tx.arena)
		wg_wipe(dev->tx.arena, WG_TX_ARENA_SIZE);
	free(dev->tx.arena);
	free(dev->handshake_queue);
	wg_wipe(dev, sizeof(*dev));
	free(dev);
}

/* --- the public-key table: a keyed hash, because the keys looked up during a handshake come from the
 * network and must not be able to pile into one bucket. */

static struct wg_peer **peer_bucket(const struct wg_device *dev, const uint8_t public_key[WG_KEY_LEN])
{
	uint8_t h[crypto_shorthash_BYTES];
	uint64_t v;

	crypto_shorthash(h, public_key, WG_KEY_LEN, dev->peer_hash_key);
	memcpy(&v, h, sizeof(v));
	return &dev->peer_buckets[v & (dev->peer_bucket_count - 1)];
}

static void peer_hash_insert(struct wg_device *dev, struct wg_peer *peer)
{
	struct wg_peer **b = peer_bucket(dev, peer->handshake.remote_static);
	peer->hash_next = *b;
	*b = peer;
}

static void peer_hash_remove(struct wg_device *dev, struct wg_peer *peer)
{
	for (struct wg_peer **p = peer_bucket(dev, peer->handshake.remote_static); *p; p = &(*p)->hash_next) {
		if (*p == peer) {
			*p = peer->hash_next;
			return;
		}
	}
}

static void peer_hash_grow(struct wg_device *dev)
{
	size_t count = dev->peer_bucket_count * 2;
	struct wg_peer **fresh = calloc(count, sizeof(*fresh));

	if (!fresh)
		return; /* keep the smaller table: slower, still correct */
	free(dev->peer_buckets);
	dev->peer_buckets = fresh;
	dev->peer_bucket_count = count;
	for (struct wg_peer *p = dev->order_first; p; p = p->order_next)
		peer_hash_insert(dev, p);
}

struct wg_peer *wg_device_find_peer(struct wg_device *dev, const uint8_t public_key[WG_KEY_LEN])
{
	for (struct wg_peer *p = *peer_bucket(dev, public_key); p; p = p->hash_next)
		if (wg_ct_equal(p->handshake.remote_static, public_key, WG_KEY_LEN))
			return p;
	return NULL;
}

/* --- identity */

static void sessions_reset(struct wg_peer *peer)
{
	wg_keypairs_clear(peer);
	wg_index_table_remove(&peer->dev->indices, &peer->handshake_entry);
	wg_noise_handshake_clear(&peer->handshake);
	wg_staged_purge(peer);
	wg_timers_stop(&peer->timers);
	peer->last_sent_handshake_ns = 0;
}

void wg_device_set_private_key(struct wg_device *dev, const uint8_t key[WG_KEY_LEN])
{
	struct wg_peer *same;

	if (key && !wg_ct_is_zero(key, WG_KEY_LEN)) {
		memcpy(dev->identity.private_key, key, WG_KEY_LEN);
		wg_clamp_private_key(dev->identity.private_key);
		wg_x25519_public(dev->identity.public_key, dev->identity.private_key);
		dev->identity.has_identity = true;
		/* A peer cannot be ourselves. */
		same = wg_device_find_peer(dev, dev->identity.public_key);
		if (same)
			wg_device_remove_peer(dev, same);
	} else {
		wg_wipe(&dev->identity, sizeof(dev->identity));
	}
	wg_cookie_checker_init(&dev->cookie_checker, dev->identity.has_identity ? dev->identity.public_key : NULL);
	for (struct wg_peer *p = dev->order_first; p; p = p->order_next) {
		sessions_reset(p);
		wg_noise_precompute_static_static(&p->handshake, &dev->identity);
	}
}

bool wg_device_get_private_key(const struct wg_device *dev, uint8_t out[WG_KEY_LEN])
{
	if (!dev->identity.has_identity)
		return false;
	memcpy(out, dev->identity.private_key, WG_KEY_LEN);
	return true;
}

bool wg_device_get_public_key(const struct wg_device *dev, uint8_t out[WG_KEY_LEN])
{
	if (!dev->identity.has_identity)
		return false;
	memcpy(out, dev->identity.public_key, WG_KEY_LEN);
	return true;
}

int wg_device_set_listen_port(struct wg_device *dev, uint16_t port)
{
	uint16_t bound = port;
	int err = dev->ops.bind_port ? dev->ops.bind_port(dev->ops.ctx, port, &bound) : 0;

	if (err)
		return err;
	dev->listen_port = bound;
	return 0;
}

uint16_t wg_device_get_listen_port(const struct wg_device *dev) { return dev->listen_port; }

int wg_device_set_fwmark(struct wg_device *dev, uint32_t mark)
{
	int err = dev->ops.set_fwmark ? dev->ops.set_fwmark(dev->ops.ctx, mark) : (mark ? -EOPNOTSUPP : 0);

	if (err)
		return err;
	dev->fwmark = mark;
	return 0;
}

uint32_t wg_device_get_fwmark(const struct wg_device *dev) { return dev->fwmark; }

void wg_device_get_counters(const struct wg_device *dev, struct wg_device_counters *out) { *out = dev->counters; }

void wg_device_set_mtu(struct wg_device *dev, unsigned mtu) { dev->mtu = mtu; }

/* --- peers */

struct wg_peer *wg_device_add_peer(struct wg_device *dev, const uint8_t public_key[WG_KEY_LEN], int *err)
{
	struct wg_peer *peer;

	if (dev->identity.has_identity && wg_ct_equal(public_key, dev->identity.public_key, WG_KEY_LEN)) {
		*err = -EINVAL;
		return NULL;
	}
	if (wg_device_find_peer(dev, public_key)) {
		*err = -EEXIST;
		return NULL;
	}
	peer = calloc(1, sizeof(*peer));
	if (!peer) {
		*err = -ENOMEM;
		return NULL;
	}
	peer->dev = dev;
	peer->internal_id = dev->next_internal_id++;
	wg_noise_handshake_init(&peer->handshake, &dev->identity, public_key, NULL);
	wg_cookie_maker_init(&peer->cookie, public_key);
	wg_timers_init(&peer->timers);

	if (dev->peer_count >= dev->peer_bucket_count)
		peer_hash_grow(dev);
	peer_hash_insert(dev, peer);
	peer->order_prev = dev->order_last;
	if (dev->order_last)
		dev->order_last->order_next = peer;
	else
		dev->order_first = peer;
	dev->order_last = peer;
	dev->peer_count++;
	*err = 0;
	return peer;
}

void wg_device_remove_peer(struct wg_device *dev, struct wg_peer *peer)
{
	sessions_reset(peer);
	wg_allowedips_remove_owner(dev->allowed_ips, &peer->allowed_ips);
	peer_hash_remove(dev, peer);
	if (peer->order_prev)
		peer->order_prev->order_next = peer->order_next;
	else
		dev->order_first = peer->order_next;
	if (peer->order_next)
		peer->order_next->order_prev = peer->order_prev;
	else
		dev->order_last = peer->order_prev;
	dev->peer_count--;
	wg_wipe(peer, sizeof(*peer));
	free(peer);
}

void wg_device_remove_all_peers(struct wg_device *dev)
{
	while (dev->order_first)
		wg_device_remove_peer(dev, dev->order_first);
}

size_t wg_device_peer_count(const struct wg_device *dev) { return dev->peer_count; }
struct wg_peer *wg_device_first_peer(struct wg_device *dev) { return dev->order_first; }
struct wg_peer *wg_device_next_peer(struct wg_device *dev, struct wg_peer *peer) { return peer->order_next; }

void wg_peer_get_info(const struct wg_peer *peer, struct wg_peer_info *out)
{
	memset(out, 0, sizeof(*out));
	memcpy(out->public_key, peer->handshake.remote_static, WG_KEY_LEN);
	memcpy(out->preshared_key, peer->handshake.preshared_key, WG_KEY_LEN);
	out->endpoint = peer->endpoint;
	out->last_handshake_wall_ns = peer->last_handshake_wall_ns;
	out->rx_bytes = peer->rx_bytes;
	out->tx_bytes = peer->tx_bytes;
	out->persistent_keepalive_interval = peer->timers.persistent_keepalive_interval;
	out->allowed_ip_count = peer->allowed_ips.count;
}

void wg_peer_set_preshared_key(struct wg_peer *peer, const uint8_t psk[WG_KEY_LEN])
{
	if (psk)
		memcpy(peer->handshake.preshared_key, psk, WG_KEY_LEN);
	else
		wg_wipe(peer->handshake.preshared_key, WG_KEY_LEN);
}

void wg_peer_set_endpoint(struct wg_peer *peer, const struct wg_endpoint *ep)
{
	if (ep)
		peer->endpoint = *ep;
	else
		memset(&peer->endpoint, 0, sizeof(peer->endpoint));
}

void wg_peer_set_persistent_keepalive(struct wg_peer *peer, uint16_t interval_sec)
{
	bool enabling = interval_sec && !peer->timers.persistent_keepalive_interval;

	wg_timers_set_persistent_keepalive(&peer->timers, interval_sec, wg_now(peer->dev));
	if (enabling && peer->dev->identity.has_identity && peer->endpoint.addr.sa.sa_family) {
		wg_batch_begin(peer->dev);
		wg_send_keepalive(peer);
		wg_batch_end(peer->dev);
	}
}

int wg_peer_add_allowed_ip(struct wg_peer *peer, int family, const uint8_t *ip, uint8_t cidr)
{
	return wg_allowedips_insert(peer->dev->allowed_ips, family, ip, cidr, &peer->allowed_ips);
}

int wg_peer_remove_allowed_ip(struct wg_peer *peer, int family, const uint8_t *ip, uint8_t cidr)
{
	return wg_allowedips_remove(peer->dev->allowed_ips, family, ip, cidr, &peer->allowed_ips);
}

void wg_peer_clear_allowed_ips(struct wg_peer *peer)
{
	wg_allowedips_remove_owner(peer->dev->allowed_ips, &peer->allowed_ips);
}

void wg_peer_for_each_allowed_ip(const struct wg_peer *peer, wg_peer_allowed_ip_fn fn, void *ctx)
{
	wg_allowedips_for_each(&peer->allowed_ips, fn, ctx);
}

/* --- timers */

uint64_t wg_jitter(struct wg_device *dev)
{
	if (!dev->jitter_left) {
		wg_random_bytes(dev->jitter_pool, sizeof(dev->jitter_pool));
		dev->jitter_left = sizeof(dev->jitter_pool) / sizeof(dev->jitter_pool[0]);
	}
	/* The modulo bias (334e6 / 2^32 < 8%) is irrelevant for spreading retries. */
	return dev->jitter_pool[--dev->jitter_left] % WG_REKEY_TIMEOUT_JITTER_MAX;
}

static void run_peer_timers(struct wg_peer *peer, uint64_t now)
{
	unsigned due = wg_timers_due(&peer->timers, now);

	if (due & WG_TIMER_RETRANSMIT_HANDSHAKE)
		wg_send_handshake_initiation(peer, true);
	if (due & WG_TIMER_GIVE_UP_HANDSHAKE)
		wg_staged_purge(peer);
	if (due & WG_TIMER_NEW_HANDSHAKE)
		wg_send_handshake_initiation(peer, false);
	if (due & WG_TIMER_ZERO_KEYS) {
		wg_keypairs_clear(peer);
		wg_index_table_remove(&peer->dev->indices, &peer->handshake_entry);
		wg_noise_handshake_clear(&peer->handshake);
	}
	if (due & (WG_TIMER_SEND_KEEPALIVE | WG_TIMER_PERSISTENT_KEEPALIVE))
		wg_send_keepalive(peer);
}

uint64_t wg_device_tick(struct wg_device *dev)
{
	uint64_t now = wg_now(dev), next = UINT64_MAX;

	wg_batch_begin(dev);
	for (struct wg_peer *p = dev->order_first; p; p = p->order_next)
		run_peer_timers(p, now);
	wg_batch_end(dev);
	/* Deadlines are read after the batch: sending (at its end) arms timers too. */
	for (struct wg_peer *p = dev->order_first; p; p = p->order_next) {
		uint64_t deadline = wg_timers_next_deadline(&p->timers);
		if (deadline < next)
			next = deadline;
	}
	return next;
}

void wg_device_set_under_load(struct wg_device *dev)
{
	dev->under_load_until_ns = wg_now(dev) + WG_UNDER_LOAD_HOLD;
}
