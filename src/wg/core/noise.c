/* WireGuard's Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s handshake.
 *
 *   initiation (initiator -> responder):  e, es, s, ss, {timestamp}
 *   response   (responder -> initiator):  e, ee, se, psk, {}
 *
 * Every function that consumes a message works on local copies of the chaining key and hash and commits
 * them to the handshake only when the whole message verified, so a forged or corrupted message can never
 * disturb a handshake in progress. Every secret on the stack is wiped before returning. */
#include "wg/core/noise.h"

#include <pthread.h>
#include <string.h>

#include "wg/core/crypto.h"

static const char construction[] = "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s";
static const char identifier[] = "WireGuard v1 zx2c4 Jason@zx2c4.com";

static pthread_once_t initial_once = PTHREAD_ONCE_INIT;
static uint8_t initial_chaining_key[WG_HASH_LEN];
static uint8_t initial_hash[WG_HASH_LEN];

static void compute_initial_values(void)
{
	wg_blake2s(initial_chaining_key, WG_HASH_LEN, construction, strlen(construction), NULL, 0);
	wg_blake2s_concat(initial_hash, initial_chaining_key, WG_HASH_LEN, identifier, strlen(identifier));
}

void wg_noise_initial_chaining_key(uint8_t out[WG_HASH_LEN])
{
	pthread_once(&initial_once, compute_initial_values);
	memcpy(out, initial_chaining_key, WG_HASH_LEN);
}

void wg_noise_initial_hash(uint8_t out[WG_HASH_LEN])
{
	pthread_once(&initial_once, compute_initial_values);
	memcpy(out, initial_hash, WG_HASH_LEN);
}

/* ---- Noise symmetric-state steps ---- */

/* Both sides start from the constants and mix in the responder's static key (IK: it is pre-known). */
static void handshake_begin(uint8_t ck[WG_HASH_LEN], uint8_t hash[WG_HASH_LEN], const uint8_t responder_static[WG_KEY_LEN])
{
	wg_noise_initial_chaining_key(ck);
	wg_noise_initial_hash(hash);
	wg_blake2s_concat(hash, hash, WG_HASH_LEN, responder_static, WG_KEY_LEN);
}

static void mix_hash(uint8_t hash[WG_HASH_LEN], const void *data, size_t len)
{
	wg_blake2s_concat(hash, hash, WG_HASH_LEN, data, len);
}

/* Token e: the ephemeral public key goes into both the transcript and the chaining key. */
static void mix_ephemeral(uint8_t ck[WG_HASH_LEN], uint8_t hash[WG_HASH_LEN], const uint8_t ephemeral_public[WG_KEY_LEN])
{
	mix_hash(hash, ephemeral_public, WG_KEY_LEN);
	wg_kdf(ck, NULL, NULL, ck, ephemeral_public, WG_KEY_LEN);
}

/* A DH token: ck (and, when key is not NULL, a message key) from DH(priv, pub). Refuses a low-order
 * pub, whose all-zero result an attacker would know. */
static bool mix_dh(uint8_t ck[WG_HASH_LEN], uint8_t *key, const uint8_t priv[WG_KEY_LEN], const uint8_t pub[WG_KEY_LEN])
{
	uint8_t dh[WG_KEY_LEN];
	if (!wg_x25519(dh, priv, pub))
		return false;
	wg_kdf(ck, key, NULL, ck, dh, WG_KEY_LEN);
	wg_wipe(dh, sizeof(dh));
	return true;
}

/* Token ss from the per-peer precomputation; all zero means the peer's key is low order. */
static bool mix_precomputed_dh(uint8_t ck[WG_HASH_LEN], uint8_t key[WG_KEY_LEN], const uint8_t precomputed[WG_KEY_LEN])
{
	if (wg_ct_is_zero(precomputed, WG_KEY_LEN))
		return false;
	wg_kdf(ck, key, NULL, ck, precomputed, WG_KEY_LEN);
	return true;
}

/* Token psk: the third KDF output keys the final AEAD, the second (tau) goes into the transcript. */
static void mix_psk(uint8_t ck[WG_HASH_LEN], uint8_t hash[WG_HASH_LEN], uint8_t key[WG_KEY_LEN], const uint8_t psk[WG_KEY_LEN])
{
	uint8_t tau[WG_HASH_LEN];
	wg_kdf(ck, tau, key, ck, psk, WG_KEY_LEN);
	mix_hash(hash, tau, sizeof(tau));
	wg_wipe(tau, sizeof(tau));
}

/* Each message key encrypts exactly one payload, so the nonce is always 0; the transcript is the AD. */
static void encrypt_and_hash(uint8_t *dst, const uint8_t *src, size_t len, const uint8_t key[WG_KEY_LEN],
			     uint8_t hash[WG_HASH_LEN])
{
	wg_aead_seal(dst, src, len, hash, WG_HASH_LEN, 0, key);
	mix_hash(hash, dst, len + WG_AEAD_TAG_LEN);
}

static bool decrypt_and_hash(uint8_t *dst, const uint8_t *src, size_t len, const uint8_t key[WG_KEY_LEN],
			     uint8_t hash[WG_HASH_LEN])
{
	if (!wg_aead_open(dst, src, len, hash, WG_HASH_LEN, 0, key))
		return false;
	mix_hash(hash, src, len);
	return true;
}

/* ---- Per-peer setup ---- */

void wg_noise_precompute_static_static(struct wg_handshake *hs, const struct wg_static_identity *id)
{
	/* A failed DH (low-order peer key, or no identity) leaves zeros, which every handshake refuses. */
	if (!id || !id->has_identity || !wg_x25519(hs->precomputed_static_static, id->private_key, hs->remote_static))
		wg_wipe(hs->precomputed_static_static, WG_KEY_LEN);
}

void wg_noise_handshake_init(struct wg_handshake *hs, const struct wg_static_identity *id,
			     const uint8_t remote_static[WG_KEY_LEN], const uint8_t preshared_key[WG_KEY_LEN])
{
	memset(hs, 0, sizeof(*hs));
	memcpy(hs->remote_static, remote_static, WG_KEY_LEN);
	if (preshared_key)
		memcpy(hs->preshared_key, preshared_key, WG_KEY_LEN);
	wg_noise_precompute_static_static(hs, id);
}

void wg_noise_handshake_clear(struct wg_handshake *hs)
{
	wg_wipe(hs->ephemeral_private, WG_KEY_LEN);
	wg_wipe(hs->remote_ephemeral, WG_KEY_LEN);
	wg_wipe(hs->hash, WG_HASH_LEN);
	wg_wipe(hs->chaining_key, WG_HASH_LEN);
	hs->state = WG_HANDSHAKE_ZEROED;
}

/* ---- Initiation ---- */

/* The end of both message builders: on success the handshake keeps the ephemeral and the running
 * Noise state for the next step; in every case the stack copies are wiped. */
static bool finish_created(struct wg_handshake *hs, bool ok, enum wg_handshake_state state, uint32_t local_index,
			   uint8_t ck[WG_HASH_LEN], uint8_t hash[WG_HASH_LEN], uint8_t key[WG_KEY_LEN],
			   uint8_t e_priv[WG_KEY_LEN])
{
	if (ok) {
		memcpy(hs->ephemeral_private, e_priv, WG_KEY_LEN);
		memcpy(hs->chaining_key, ck, WG_HASH_LEN);
		memcpy(hs->hash, hash, WG_HASH_LEN);
		hs->local_index = local_index;
		hs->state = state;
	}
	wg_wipe(ck, WG_HASH_LEN);
	wg_wipe(hash, WG_HASH_LEN);
	wg_wipe(key, WG_KEY_LEN);
	wg_wipe(e_priv, WG_KEY_LEN);
	return ok;
}

bool wg_noise_create_initiation(struct wg_handshake *hs, const struct wg_static_identity *id, uint32_t local_index,
				const uint8_t timestamp[WG_TIMESTAMP_LEN], struct wg_msg_initiation *msg)
{
	uint8_t ck[WG_HASH_LEN], hash[WG_HASH_LEN], key[WG_KEY_LEN], e_priv[WG_KEY_LEN];
	bool ok = false;

	if (!id->has_identity || wg_ct_is_zero(hs->precomputed_static_static, WG_KEY_LEN))
		return false;
	memset(msg, 0, sizeof(*msg));
	wg_put_le32(&msg->header, WG_MSG_INITIATION);
	wg_put_le32(&msg->sender_index_le, local_index);
	handshake_begin(ck, hash, hs->remote_static);

	/* e */
	wg_x25519_generate(e_priv, msg->unencrypted_ephemeral);
	mix_ephemeral(ck, hash, msg->unencrypted_ephemeral);
	/* es */
	if (!mix_dh(ck, key, e_priv, hs->remote_static))
		goto out;
	/* s */
	encrypt_and_hash(msg->encrypted_static, id->public_key, WG_KEY_LEN, key, hash);
	/* ss */
	if (!mix_precomputed_dh(ck, key, hs->precomputed_static_static))
		goto out;
	/* {timestamp} */
	encrypt_and_hash(msg->encrypted_timestamp, timestamp, WG_TIMESTAMP_LEN, key, hash);

	ok = true;
out:
	return finish_created(hs, ok, WG_HANDSHAKE_CREATED_INITIATION, local_index, ck, hash, key, e_priv);
}

/* Replay and flood protection, checked only after the initiation authenticated: the timestamp must grow
 * and the peer may start at most one handshake per WG_INITIATIONS_MIN_INTERVAL. */
static bool initiation_is_fresh(const struct wg_handshake *hs, const uint8_t timestamp[WG_TIMESTAMP_LEN], uint64_t now_ns)
{
	/* Big-endian TAI64N, so byte order is numeric order. */
	if (memcmp(timestamp, hs->latest_timestamp, WG_TIMESTAMP_LEN) <= 0)
		return false;
	uint64_t last = hs->last_initiation_consumption_ns;
	return last == 0 || (now_ns >= last && now_ns - last >= WG_INITIATIONS_MIN_INTERVAL);
}

struct wg_handshake *wg_noise_consume_initiation(const struct wg_static_identity *id, const struct wg_msg_initiation *msg,
						 uint64_t now_ns, wg_noise_lookup_fn lookup, void *ctx)
{
	uint8_t ck[WG_HASH_LEN], hash[WG_HASH_LEN], key[WG_KEY_LEN];
	uint8_t s_pub[WG_KEY_LEN], timestamp[WG_TIMESTAMP_LEN];
	const uint8_t *e_pub = msg->unencrypted_ephemeral;
	struct wg_handshake *hs = NULL, *found;

	if (!id->has_identity || wg_get_le32(&msg->header) != WG_MSG_INITIATION)
		return NULL;
	handshake_begin(ck, hash, id->public_key);

	/* e */
	mix_ephemeral(ck, hash, e_pub);
	/* es */
	if (!mix_dh(ck, key, id->private_key, e_pub))
		goto out;
	/* s */
	if (!decrypt_and_hash(s_pub, msg->encrypted_static, sizeof(msg->encrypted_static), key, hash))
		goto out;
	found = lookup(ctx, s_pub);
	if (!found)
		goto out;
	/* ss */
	if (!mix_precomputed_dh(ck, key, found->precomputed_static_static))
		goto out;
	/* {timestamp} */
	if (!decrypt_and_hash(timestamp, msg->encrypted_timestamp, sizeof(msg->encrypted_timestamp), key, hash))
		goto out;
	if (!initiation_is_fresh(found, timestamp, now_ns))
		goto out;

	/* Authenticated and fresh: only now may the peer's state change. Any handshake we had initiated
	 * ourselves is abandoned in favour of answering this one. */
	wg_wipe(found->ephemeral_private, WG_KEY_LEN);
	memcpy(found->remote_ephemeral, e_pub, WG_KEY_LEN);
	memcpy(found->chaining_key, ck, WG_HASH_LEN);
	memcpy(found->hash, hash, WG_HASH_LEN);
	memcpy(found->latest_timestamp, timestamp, WG_TIMESTAMP_LEN);
	found->last_initiation_consumption_ns = now_ns;
	found->remote_index = wg_get_le32(&msg->sender_index_le);
	found->state = WG_HANDSHAKE_CONSUMED_INITIATION;
	hs = found;
out:
	wg_wipe(ck, sizeof(ck));
	wg_wipe(hash, sizeof(hash));
	wg_wipe(key, sizeof(key));
	wg_wipe(s_pub, sizeof(s_pub));
	wg_wipe(timestamp, sizeof(timestamp));
	return hs;
}

/* ---- Response ---- */

bool wg_noise_create_response(struct wg_handshake *hs, uint32_t local_index, struct wg_msg_response *msg)
{
	uint8_t ck[WG_HASH_LEN], hash[WG_HASH_LEN], key[WG_KEY_LEN], e_priv[WG_KEY_LEN];
	bool ok = false;

	if (hs->state != WG_HANDSHAKE_CONSUMED_INITIATION)
		return false;
	memset(msg, 0, sizeof(*msg));
	wg_put_le32(&msg->header, WG_MSG_RESPONSE);
	wg_put_le32(&msg->sender_index_le, local_index);
	wg_put_le32(&msg->receiver_index_le, hs->remote_index);
	memcpy(ck, hs->chaining_key, WG_HASH_LEN);
	memcpy(hash, hs->hash, WG_HASH_LEN);

	/* e */
	wg_x25519_generate(e_priv, msg->unencrypted_ephemeral);
	mix_ephemeral(ck, hash, msg->unencrypted_ephemeral);
	/* ee */
	if (!mix_dh(ck, NULL, e_priv, hs->remote_ephemeral))
		goto out;
	/* se */
	if (!mix_dh(ck, NULL, e_priv, hs->remote_static))
		goto out;
	/* psk */
	mix_psk(ck, hash, key, hs->preshared_key);
	/* {} */
	encrypt_and_hash(msg->encrypted_nothing, NULL, 0, key, hash);

	ok = true;
out:
	return finish_created(hs, ok, WG_HANDSHAKE_CREATED_RESPONSE, local_index, ck, hash, key, e_priv);
}

bool wg_noise_consume_response(struct wg_handshake *hs, const struct wg_static_identity *id, const struct wg_msg_response *msg)
{
	uint8_t ck[WG_HASH_LEN], hash[WG_HASH_LEN], key[WG_KEY_LEN];
	const uint8_t *e_pub = msg->unencrypted_ephemeral;
	bool ok = false;

	if (hs->state != WG_HANDSHAKE_CREATED_INITIATION || !id->has_identity ||
	    wg_get_le32(&msg->header) != WG_MSG_RESPONSE || wg_get_le32(&msg->receiver_index_le) != hs->local_index)
		return false;
	memcpy(ck, hs->chaining_key, WG_HASH_LEN);
	memcpy(hash, hs->hash, WG_HASH_LEN);

	/* e */
	mix_ephemeral(ck, hash, e_pub);
	/* ee */
	if (!mix_dh(ck, NULL, hs->ephemeral_private, e_pub))
		goto out;
	/* se */
	if (!mix_dh(ck, NULL, id->private_key, e_pub))
		goto out;
	/* psk */
	mix_psk(ck, hash, key, hs->preshared_key);
	/* {} */
	if (!decrypt_and_hash(NULL, msg->encrypted_nothing, sizeof(msg->encrypted_nothing), key, hash))
		goto out;

	memcpy(hs->remote_ephemeral, e_pub, WG_KEY_LEN);
	memcpy(hs->chaining_key, ck, WG_HASH_LEN);
	memcpy(hs->hash, hash, WG_HASH_LEN);
	hs->remote_index = wg_get_le32(&msg->sender_index_le);
	hs->state = WG_HANDSHAKE_CONSUMED_RESPONSE;
	ok = true;
out:
	wg_wipe(ck, sizeof(ck));
	wg_wipe(hash, sizeof(hash));
	wg_wipe(key, sizeof(key));
	return ok;
}

/* ---- Transport keys ---- */

bool wg_noise_derive_keys(struct wg_handshake *hs, struct wg_session_keys *keys)
{
	uint8_t first[WG_KEY_LEN], second[WG_KEY_LEN];
	bool initiator = hs->state == WG_HANDSHAKE_CONSUMED_RESPONSE;

	if (!initiator && hs->state != WG_HANDSHAKE_CREATED_RESPONSE)
		return false;
	/* The first key carries initiator -> responder traffic, the second the reverse. */
	wg_kdf(first, second, NULL, hs->chaining_key, NULL, 0);
	memcpy(keys->sending, initiator ? first : second, WG_KEY_LEN);
	memcpy(keys->receiving, initiator ? second : first, WG_KEY_LEN);
	keys->local_index = hs->local_index;
	keys->remote_index = hs->remote_index;
	keys->is_initiator = initiator;
	wg_wipe(first, sizeof(first));
	wg_wipe(second, sizeof(second));
	wg_noise_handshake_clear(hs);
	return true;
}
