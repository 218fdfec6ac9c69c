/* Noise_IKpsk2 handshake of WireGuard: builds and consumes initiation and response messages and derives
 * the transport keys. Pure: no I/O, no clock reads (times are passed in), no allocation. MACs are not
 * handled here (see cookie.h); messages are complete except for mac1/mac2. */
#ifndef WG_NOISE_H
#define WG_NOISE_H
#include <stdbool.h>
#include <stdint.h>
#include "wg/core/messages.h"

/* This device's static key pair. */
struct wg_static_identity {
	uint8_t private_key[WG_KEY_LEN];
	uint8_t public_key[WG_KEY_LEN];
	bool has_identity;
};

enum wg_handshake_state {
	WG_HANDSHAKE_ZEROED = 0,
	WG_HANDSHAKE_CREATED_INITIATION,
	WG_HANDSHAKE_CONSUMED_INITIATION,
	WG_HANDSHAKE_CREATED_RESPONSE,
	WG_HANDSHAKE_CONSUMED_RESPONSE,
};

/* Per-peer handshake state; embedded in the peer, so it is never allocated. */
struct wg_handshake {
	enum wg_handshake_state state;
	uint8_t remote_static[WG_KEY_LEN];
	uint8_t precomputed_static_static[WG_KEY_LEN]; /* DH(s_local, S_remote); all zero = unusable */
	uint8_t preshared_key[WG_KEY_LEN];
	uint8_t ephemeral_private[WG_KEY_LEN];
	uint8_t remote_ephemeral[WG_KEY_LEN];
	uint8_t hash[WG_HASH_LEN];
	uint8_t chaining_key[WG_HASH_LEN];
	uint8_t latest_timestamp[WG_TIMESTAMP_LEN];     /* greatest TAI64N accepted from this peer */
	uint64_t last_initiation_consumption_ns;        /* monotonic; 0 = never */
	uint32_t local_index;                           /* our index for the pending handshake */
	uint32_t remote_index;
};

/* Transport keys derived from a completed handshake. */
struct wg_session_keys {
	uint8_t sending[WG_KEY_LEN];
	uint8_t receiving[WG_KEY_LEN];
	uint32_t local_index;
	uint32_t remote_index;
	bool is_initiator;
};

/* Initial chaining key and hash, BLAKE2s(construction) and BLAKE2s(ck || identifier), for tests. */
void wg_noise_initial_chaining_key(uint8_t out[WG_HASH_LEN]);
void wg_noise_initial_hash(uint8_t out[WG_HASH_LEN]);

/* Sets up hs for a peer with public key remote_static under identity id (precomputes DH(s, S)). A
 * low-order remote key leaves the precomputation zero so every later handshake with it fails. */
void wg_noise_handshake_init(struct wg_handshake *hs, const struct wg_static_identity *id,
			     const uint8_t remote_static[WG_KEY_LEN], const uint8_t preshared_key[WG_KEY_LEN]);
/* Recomputes DH(s, S) after the local private key changed. */
void wg_noise_precompute_static_static(struct wg_handshake *hs, const struct wg_static_identity *id);
/* Forgets any pending handshake (ephemeral, hash, chaining key) but keeps keys and timestamps. */
void wg_noise_handshake_clear(struct wg_handshake *hs);

/* Initiator: fills msg (except macs) with a fresh ephemeral; timestamp is TAI64N of the wall clock.
 * Returns false when there is no identity or the peer's key is low order. */
bool wg_noise_create_initiation(struct wg_handshake *hs, const struct wg_static_identity *id, uint32_t local_index,
				const uint8_t timestamp[WG_TIMESTAMP_LEN], struct wg_msg_initiation *msg);

/* Responder, step 1: decrypts the initiator's static key (e, es, s). On success *lookup is called with
 * it and must return that peer's handshake, or NULL when the key is unknown. */
typedef struct wg_handshake *(*wg_noise_lookup_fn)(void *ctx, const uint8_t remote_static[WG_KEY_LEN]);
/* Responder: consumes an initiation (macs already checked). Verifies the timestamp strictly increases and
 * that the peer's last initiation was at least 20 ms ago (now_ns monotonic). On success returns the peer's
 * handshake in state CONSUMED_INITIATION; on any failure returns NULL and changes no peer state. */
struct wg_handshake *wg_noise_consume_initiation(const struct wg_static_identity *id, const struct wg_msg_initiation *msg,
						 uint64_t now_ns, wg_noise_lookup_fn lookup, void *ctx);

/* Responder: fills msg (except macs) from a CONSUMED_INITIATION handshake. */
bool wg_noise_create_response(struct wg_handshake *hs, uint32_t local_index, struct wg_msg_response *msg);
/* Initiator: consumes a response whose receiver index matched hs->local_index (CREATED_INITIATION).
 * On failure hs is left unchanged so a genuine response can still arrive. */
bool wg_noise_consume_response(struct wg_handshake *hs, const struct wg_static_identity *id, const struct wg_msg_response *msg);

/* After CREATED_RESPONSE (responder) or CONSUMED_RESPONSE (initiator): derives the session keys and
 * wipes the ephemeral state, returning hs to ZEROED. False in any other state. */
bool wg_noise_derive_keys(struct wg_handshake *hs, struct wg_session_keys *keys);
#endif
