/* Private structures of the device, shared by device.c (configuration), keypairs.c, send.c and
 * receive.c. Nothing outside src/wg/core includes this. */
#ifndef WG_DEVICE_INTERNAL_H
#define WG_DEVICE_INTERNAL_H
#include "wg/core/allowedips.h"
#include "wg/core/cookie.h"
#include "wg/core/device.h"
#include "wg/core/index_table.h"
#include "wg/core/noise.h"
#include "wg/core/ratelimiter.h"
#include "wg/core/replay.h"
#include "wg/core/timers.h"
#include "wg/core/crypto.h"

#define container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))

/* One session's transport keys. Allocated when a handshake completes, owned by its peer's slot
 * (next/current/previous) and freed (wiped) when rotated out or when keys are zeroed. */
struct wg_keypair {
	struct wg_peer *peer;
	struct wg_keypair *next_retired;  /* in the device's retired list until the batch ends */
	struct wg_index_entry entry;   /* our (receiver) index -> this keypair */
	struct wg_aead_key sending, receiving;
	struct wg_replay replay;
	uint64_t sending_counter;
	uint64_t birth_ns;
	uint32_t remote_index;
	bool is_initiator;
};

/* A packet queued while the peer has no usable session. */
struct wg_staged {
	size_t len;
	uint8_t data[];
};

struct wg_peer {
	struct wg_device *dev;
	struct wg_peer *order_prev, *order_next;  /* creation order, for listing */
	struct wg_peer *hash_next;                /* public-key hash chain */
	uint64_t internal_id;                     /* names the peer in logs; never the key */

	struct wg_handshake handshake;
	struct wg_index_entry handshake_entry;    /* index of our pending initiation/response */
	struct wg_cookie_maker cookie;
	struct wg_keypair *next_keypair;          /* responder's, until the initiator confirms it */
	struct wg_keypair *current_keypair;
	struct wg_keypair *previous_keypair;
	struct wg_timers timers;
	struct wg_allowedips_owner allowed_ips;

	struct wg_endpoint endpoint;
	uint64_t last_sent_handshake_ns;          /* 0 = never; initiations are spaced REKEY_TIMEOUT */
	uint64_t last_handshake_wall_ns;
	uint64_t rx_bytes, tx_bytes;

	struct wg_staged *staged[WG_MAX_STAGED_PACKETS];
	unsigned staged_head, staged_count;       /* ring buffer, oldest at head */
};

enum {
	WG_BATCH_MAX = 512,
	WG_TX_ARENA_SIZE = 1 << 20,
	WG_HANDSHAKE_QUEUE_LEN = 1024,
	WG_UNDER_LOAD_QUEUE_LEN = WG_HANDSHAKE_QUEUE_LEN / 8,
	WG_HANDSHAKES_PER_BATCH = 8,      /* ~1.6 ms of DH work at most between two data batches */
};

struct wg_queued_handshake {
	struct wg_endpoint from;
	uint8_t msg[sizeof(struct wg_msg_initiation)]; /* the larger of initiation and response */
};

struct wg_tx_batch {
	struct wg_crypto_job jobs[WG_BATCH_MAX];
	struct wg_peer *peers[WG_BATCH_MAX];
	uint8_t *messages[WG_BATCH_MAX];
	size_t count;
	uint8_t *arena;                           /* WG_TX_ARENA_SIZE bytes of outgoing messages */
	size_t arena_used;
};

struct wg_rx_batch {
	struct wg_crypto_job jobs[WG_BATCH_MAX];
	struct wg_keypair *keypairs[WG_BATCH_MAX];
	const struct wg_endpoint *from[WG_BATCH_MAX];
	size_t lens[WG_BATCH_MAX];                /* whole message lengths */
	size_t count;
};

struct wg_device {
	struct wg_io_ops ops;
	struct wg_static_identity identity;
	struct wg_cookie_checker cookie_checker;
	struct wg_ratelimiter *ratelimiter;
	struct wg_allowedips *allowed_ips;
	struct wg_index_table indices;

	struct wg_peer *order_first, *order_last;
	struct wg_peer **peer_buckets;            /* public key -> peer, keyed hash */
	size_t peer_bucket_count, peer_count;
	uint8_t peer_hash_key[16];
	uint64_t next_internal_id;

	uint16_t listen_port;
	uint32_t fwmark;
	unsigned mtu;

	/* Handshake messages that passed the cheap checks (size, mac1, cookie, rate) wait here and are
	 * processed a few per batch, so a flood of them cannot stall the data of established sessions. */
	struct wg_queued_handshake *handshake_queue;
	unsigned handshake_queue_head, handshake_queue_count;
	/* "Under load": while the queue is an eighth full (as the kernel does), or when the I/O layer says
	 * so; left a second after the last such moment. */
	uint64_t under_load_until_ns;

	struct wg_device_counters counters;
	uint32_t jitter_pool[64];
	unsigned jitter_left;

	/* Batching: data messages are built (tx) or matched to their session (rx) one by one, their crypto
	 * runs for the whole batch at once, then they are sent or delivered in order. While a batch is open,
	 * keypairs that are rotated out go to `retired` and are freed when it closes, because pending jobs
	 * may still point at them. */
	unsigned batch_depth;
	uint64_t batch_now;                       /* the clock read once per batch (0: not read yet) */
	struct wg_keypair *retired;
	struct wg_tx_batch tx;
	struct wg_rx_batch rx;
	uint8_t rx_copy[WG_MAX_PACKET];           /* for the unbatched wg_device_udp_input */
};

/* The monotonic clock, read once per batch: every packet of a batch is handled within a millisecond or
 * so, far below any protocol timer, and a clock read per packet cost 1% of the sender's time. */
static inline uint64_t wg_now(struct wg_device *dev)
{
	uint64_t now;

	if (dev->batch_depth && dev->batch_now)
		return dev->batch_now;
	now = dev->ops.mono_ns(dev->ops.ctx);
	if (dev->batch_depth)
		dev->batch_now = now;
	return now;
}
static inline void wg_count_drop(struct wg_device *dev, enum wg_drop_reason r) { dev->counters.dropped[r]++; }
/* A random delay below WG_REKEY_TIMEOUT_JITTER_MAX. Drawn from a small pool refilled in one call: the
 * data path asks for one per packet sent, and one getrandom(2) per packet cost 15% of a core. */
uint64_t wg_jitter(struct wg_device *dev);

/* batch.c */
void wg_batch_begin(struct wg_device *dev);
void wg_batch_end(struct wg_device *dev);
void wg_run_jobs(struct wg_device *dev, struct wg_crypto_job *jobs, size_t n);

/* keypairs.c */
void wg_keypairs_free_retired(struct wg_device *dev);
bool wg_keypair_install(struct wg_peer *peer, const struct wg_session_keys *keys, uint64_t now);
/* The responder's next keypair becomes current on the first packet received with it. True if rotated. */
bool wg_keypair_confirm(struct wg_peer *peer, struct wg_keypair *kp);
void wg_keypairs_clear(struct wg_peer *peer);
bool wg_keypair_usable_for_sending(const struct wg_keypair *kp, uint64_t now);
bool wg_keypair_expired_for_receiving(const struct wg_keypair *kp, uint64_t now);

/* send.c */
void wg_send_handshake_initiation(struct wg_peer *peer, bool is_retry);
void wg_send_keepalive(struct wg_peer *peer);
void wg_send_staged(struct wg_peer *peer);
void wg_staged_purge(struct wg_peer *peer);
void wg_send_datagram(struct wg_peer *peer, const uint8_t *data, size_t len, uint8_t dscp);
void wg_tx_flush(struct wg_device *dev);

/* receive.c */
void wg_rx_flush(struct wg_device *dev);
void wg_handshakes_process(struct wg_device *dev, size_t max);
#endif
