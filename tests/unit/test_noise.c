/* Noise_IKpsk2 handshake tests: two identities handshake in memory; every bit of every authenticated
 * byte of both messages is flipped and must be refused without touching the peer's state; replay,
 * flooding, unknown and low-order keys and a mismatched preshared key are refused. */
#include "test.h"

#include <stddef.h>
#include <stdint.h>

#include "wg/core/crypto.h"
#include "wg/core/noise.h"

#define NOW (1000 * WG_NSEC_PER_SEC) /* an arbitrary monotonic time */
#define WALL (1700000000ULL * WG_NSEC_PER_SEC)

/* One device with a single peer. lookup() finds that peer by its public key. */
struct party {
	struct wg_static_identity id;
	struct wg_handshake hs;
};

static struct wg_handshake *lookup_peer(void *ctx, const uint8_t remote_static[WG_KEY_LEN])
{
	struct party *p = ctx;
	return memcmp(p->hs.remote_static, remote_static, WG_KEY_LEN) == 0 ? &p->hs : NULL;
}

static struct wg_handshake *lookup_nobody(void *ctx, const uint8_t remote_static[WG_KEY_LEN])
{
	(void)ctx;
	(void)remote_static;
	return NULL;
}

static void make_identity(struct wg_static_identity *id)
{
	wg_x25519_generate(id->private_key, id->public_key);
	id->has_identity = true;
}

/* a (initiator) and b (responder) know each other; psk may be NULL. */
static void pair_up(struct party *a, struct party *b, const uint8_t *psk_a, const uint8_t *psk_b)
{
	make_identity(&a->id);
	make_identity(&b->id);
	wg_noise_handshake_init(&a->hs, &a->id, b->id.public_key, psk_a);
	wg_noise_handshake_init(&b->hs, &b->id, a->id.public_key, psk_b);
}

static void timestamp_at(uint8_t ts[WG_TIMESTAMP_LEN], uint64_t wall_ns)
{
	wg_tai64n(ts, wall_ns);
}

static bool initiate(struct party *a, uint32_t index, uint64_t wall_ns, struct wg_msg_initiation *msg)
{
	uint8_t ts[WG_TIMESTAMP_LEN];
	timestamp_at(ts, wall_ns);
	return wg_noise_create_initiation(&a->hs, &a->id, index, ts, msg);
}

static void test_initial_values(void)
{
	uint8_t ck[32], hash[32], expect[32];
	wg_noise_initial_chaining_key(ck);
	test_hex("60e26daef327efc02ec335e2a025d2d016eb4206f87277f52d38d1988b78cd36", expect, 32);
	CHECK_MEM_EQ(ck, expect, 32);
	wg_noise_initial_hash(hash);
	test_hex("2211b361081ac566691243db458ad5322d9c6c662293e8b70ee19c65ba079ef3", expect, 32);
	CHECK_MEM_EQ(hash, expect, 32);
}

/* Runs a full handshake; true when both sides derived keys. */
static bool handshake(struct party *a, struct party *b, struct wg_session_keys *ka, struct wg_session_keys *kb)
{
	struct wg_msg_initiation init;
	struct wg_msg_response resp;
	bool ok = initiate(a, 0x11111111, WALL, &init);
	ok = ok && wg_noise_consume_initiation(&b->id, &init, NOW, lookup_peer, b) == &b->hs;
	ok = ok && wg_noise_create_response(&b->hs, 0x22222222, &resp);
	ok = ok && wg_noise_consume_response(&a->hs, &a->id, &resp);
	ok = ok && wg_noise_derive_keys(&a->hs, ka);
	ok = ok && wg_noise_derive_keys(&b->hs, kb);
	return ok;
}

static void check_matching_keys(const struct wg_session_keys *ka, const struct wg_session_keys *kb)
{
	CHECK_MEM_EQ(ka->sending, kb->receiving, WG_KEY_LEN);
	CHECK_MEM_EQ(ka->receiving, kb->sending, WG_KEY_LEN);
	CHECK(memcmp(ka->sending, ka->receiving, WG_KEY_LEN) != 0);
	CHECK(ka->is_initiator && !kb->is_initiator);
	CHECK(ka->local_index == 0x11111111 && ka->remote_index == 0x22222222);
	CHECK(kb->local_index == 0x22222222 && kb->remote_index == 0x11111111);
}

static void check_zeroed(const struct wg_handshake *hs)
{
	CHECK(hs->state == WG_HANDSHAKE_ZEROED);
	CHECK(wg_ct_is_zero(hs->ephemeral_private, WG_KEY_LEN));
	CHECK(wg_ct_is_zero(hs->remote_ephemeral, WG_KEY_LEN));
	CHECK(wg_ct_is_zero(hs->chaining_key, WG_HASH_LEN));
	CHECK(wg_ct_is_zero(hs->hash, WG_HASH_LEN));
}

static void test_handshake_step_by_step(void)
{
	struct party a, b;
	struct wg_msg_initiation init;
	struct wg_msg_response resp;
	struct wg_session_keys ka, kb;
	pair_up(&a, &b, NULL, NULL);

	CHECK(initiate(&a, 0x11111111, WALL, &init));
	CHECK(a.hs.state == WG_HANDSHAKE_CREATED_INITIATION && a.hs.local_index == 0x11111111);
	CHECK(wg_get_le32(&init.header) == WG_MSG_INITIATION);
	CHECK(wg_get_le32(&init.sender_index_le) == 0x11111111);
	CHECK(wg_ct_is_zero(&init.macs, sizeof(init.macs)));

	CHECK(wg_noise_consume_initiation(&b.id, &init, NOW, lookup_peer, &b) == &b.hs);
	CHECK(b.hs.state == WG_HANDSHAKE_CONSUMED_INITIATION);
	CHECK(b.hs.remote_index == 0x11111111);
	CHECK(b.hs.last_initiation_consumption_ns == NOW);
	CHECK_MEM_EQ(b.hs.remote_ephemeral, init.unencrypted_ephemeral, WG_KEY_LEN);
	/* Both transcripts agree after message 1. */
	CHECK_MEM_EQ(a.hs.hash, b.hs.hash, WG_HASH_LEN);
	CHECK_MEM_EQ(a.hs.chaining_key, b.hs.chaining_key, WG_HASH_LEN);
	uint8_t ts[WG_TIMESTAMP_LEN];
	timestamp_at(ts, WALL);
	CHECK_MEM_EQ(b.hs.latest_timestamp, ts, WG_TIMESTAMP_LEN);

	CHECK(wg_noise_create_response(&b.hs, 0x22222222, &resp));
	CHECK(b.hs.state == WG_HANDSHAKE_CREATED_RESPONSE);
	CHECK(wg_get_le32(&resp.header) == WG_MSG_RESPONSE);
	CHECK(wg_get_le32(&resp.sender_index_le) == 0x22222222);
	CHECK(wg_get_le32(&resp.receiver_index_le) == 0x11111111);

	CHECK(wg_noise_consume_response(&a.hs, &a.id, &resp));
	CHECK(a.hs.state == WG_HANDSHAKE_CONSUMED_RESPONSE && a.hs.remote_index == 0x22222222);
	CHECK_MEM_EQ(a.hs.hash, b.hs.hash, WG_HASH_LEN);

	CHECK(wg_noise_derive_keys(&a.hs, &ka));
	CHECK(wg_noise_derive_keys(&b.hs, &kb));
	check_matching_keys(&ka, &kb);
	check_zeroed(&a.hs);
	check_zeroed(&b.hs);
	/* What outlives the handshake: keys, precomputation and the replay state. */
	CHECK_MEM_EQ(b.hs.remote_static, a.id.public_key, WG_KEY_LEN);
	CHECK(!wg_ct_is_zero(b.hs.precomputed_static_static, WG_KEY_LEN));
	CHECK_MEM_EQ(b.hs.latest_timestamp, ts, WG_TIMESTAMP_LEN);
	CHECK(b.hs.last_initiation_consumption_ns == NOW);

	/* The keys carry data: a seals, b opens, and the reverse. */
	struct wg_aead_key sa, rb;
	uint8_t pkt[64 + 16] = "hello over the tunnel";
	CHECK(wg_aead_key_init(&sa, ka.sending) && wg_aead_key_init(&rb, kb.receiving));
	CHECK(wg_aead_key_seal(&sa, 0, pkt, pkt, 64));
	CHECK(wg_aead_key_open(&rb, 0, pkt, pkt, sizeof(pkt)));
	CHECK(memcmp(pkt, "hello over the tunnel", 22) == 0);
	wg_aead_key_clear(&sa);
	wg_aead_key_clear(&rb);
}

static void test_handshake_with_and_without_psk(void)
{
	uint8_t psk[WG_KEY_LEN], zero[WG_KEY_LEN] = { 0 };
	const uint8_t *psks[] = { NULL, zero, psk };
	struct wg_session_keys keys[3];
	wg_random_bytes(psk, sizeof(psk));
	for (int i = 0; i < 3; i++) {
		struct party a, b;
		struct wg_session_keys kb;
		pair_up(&a, &b, psks[i], psks[i]);
		CHECK(handshake(&a, &b, &keys[i], &kb));
		check_matching_keys(&keys[i], &kb);
	}
	/* Fresh ephemerals (and identities) every time: no two sessions share keys. */
	CHECK(memcmp(keys[0].sending, keys[1].sending, WG_KEY_LEN) != 0);
	CHECK(memcmp(keys[1].sending, keys[2].sending, WG_KEY_LEN) != 0);
}

/* ---- An independent transcription of the protocol (WireGuard paper, section 5.4), built only on the
 * primitives test_crypto checks against published vectors. Self-handshakes cannot catch a deviation
 * both sides share; this reference can. ---- */

struct ref_state {
	uint8_t ck[32], h[32];
};

static void ref_hash(uint8_t h[32], const void *data, size_t len)
{
	uint8_t buf[32 + 64];
	memcpy(buf, h, 32);
	memcpy(buf + 32, data, len);
	wg_blake2s(h, 32, buf, 32 + len, NULL, 0);
}

/* HKDF with n outputs: t_i = HMAC(HMAC(ck, in), t_{i-1} || i). */
static void ref_kdf(int n, uint8_t *t1, uint8_t *t2, uint8_t *t3, const uint8_t ck[32], const void *in, size_t len)
{
	uint8_t prk[32], t[3][32], block[33];
	wg_hmac_blake2s(prk, ck, 32, in, len);
	block[0] = 1;
	wg_hmac_blake2s(t[0], prk, 32, block, 1);
	for (int i = 1; i < 3; i++) {
		memcpy(block, t[i - 1], 32);
		block[32] = (uint8_t)(i + 1);
		wg_hmac_blake2s(t[i], prk, 32, block, 33);
	}
	uint8_t *outs[3] = { t1, t2, t3 };
	for (int i = 0; i < n; i++)
		memcpy(outs[i], t[i], 32);
}

static void ref_dh(uint8_t out[32], const uint8_t priv[32], const uint8_t pub[32])
{
	CHECK(wg_x25519(out, priv, pub));
}

static void ref_begin(struct ref_state *st, const uint8_t responder_static[32])
{
	static const char construction[] = "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s";
	static const char identifier[] = "WireGuard v1 zx2c4 Jason@zx2c4.com";
	wg_blake2s(st->ck, 32, construction, strlen(construction), NULL, 0);
	memcpy(st->h, st->ck, 32);
	ref_hash(st->h, identifier, strlen(identifier));
	ref_hash(st->h, responder_static, 32);
}

/* Message 1 from e, es, s, ss, timestamp, as the initiator with static s_priv and ephemeral e_priv. */
static void ref_make_initiation(struct ref_state *st, struct wg_msg_initiation *msg, const struct wg_static_identity *s,
				const uint8_t e_priv[32], const uint8_t responder_static[32], const uint8_t ts[12],
				uint32_t sender)
{
	uint8_t k[32], dh[32];
	memset(msg, 0, sizeof(*msg));
	((uint8_t *)&msg->header)[0] = WG_MSG_INITIATION;
	wg_put_le32(&msg->sender_index_le, sender);
	ref_begin(st, responder_static);
	wg_x25519_public(msg->unencrypted_ephemeral, e_priv);
	ref_hash(st->h, msg->unencrypted_ephemeral, 32);
	ref_kdf(1, st->ck, NULL, NULL, st->ck, msg->unencrypted_ephemeral, 32);
	ref_dh(dh, e_priv, responder_static);
	ref_kdf(2, st->ck, k, NULL, st->ck, dh, 32);
	wg_aead_seal(msg->encrypted_static, s->public_key, 32, st->h, 32, 0, k);
	ref_hash(st->h, msg->encrypted_static, sizeof(msg->encrypted_static));
	ref_dh(dh, s->private_key, responder_static);
	ref_kdf(2, st->ck, k, NULL, st->ck, dh, 32);
	wg_aead_seal(msg->encrypted_timestamp, ts, 12, st->h, 32, 0, k);
	ref_hash(st->h, msg->encrypted_timestamp, sizeof(msg->encrypted_timestamp));
}

/* The responder's reading of message 1; false when either payload does not decrypt. */
static bool ref_read_initiation(struct ref_state *st, const struct wg_msg_initiation *msg, const struct wg_static_identity *r,
				uint8_t initiator_static[32], uint8_t ts[12])
{
	uint8_t k[32], dh[32];
	ref_begin(st, r->public_key);
	ref_hash(st->h, msg->unencrypted_ephemeral, 32);
	ref_kdf(1, st->ck, NULL, NULL, st->ck, msg->unencrypted_ephemeral, 32);
	ref_dh(dh, r->private_key, msg->unencrypted_ephemeral);
	ref_kdf(2, st->ck, k, NULL, st->ck, dh, 32);
	if (!wg_aead_open(initiator_static, msg->encrypted_static, sizeof(msg->encrypted_static), st->h, 32, 0, k))
		return false;
	ref_hash(st->h, msg->encrypted_static, sizeof(msg->encrypted_static));
	ref_dh(dh, r->private_key, initiator_static);
	ref_kdf(2, st->ck, k, NULL, st->ck, dh, 32);
	if (!wg_aead_open(ts, msg->encrypted_timestamp, sizeof(msg->encrypted_timestamp), st->h, 32, 0, k))
		return false;
	ref_hash(st->h, msg->encrypted_timestamp, sizeof(msg->encrypted_timestamp));
	return true;
}

/* Message 2's chain: e, ee, se, psk. Computes the key for the empty payload from the responder's
 * ephemeral E_r, given the two DH results each side computes its own way. */
static void ref_response_chain(struct ref_state *st, uint8_t k[32], const uint8_t e_r_pub[32], const uint8_t ee[32],
			       const uint8_t se[32], const uint8_t psk[32])
{
	uint8_t tau[32];
	ref_kdf(1, st->ck, NULL, NULL, st->ck, e_r_pub, 32);
	ref_hash(st->h, e_r_pub, 32);
	ref_kdf(1, st->ck, NULL, NULL, st->ck, ee, 32);
	ref_kdf(1, st->ck, NULL, NULL, st->ck, se, 32);
	ref_kdf(3, st->ck, tau, k, st->ck, psk, 32);
	ref_hash(st->h, tau, 32);
}

/* Initiator-to-responder key first, then the reverse. */
static void ref_transport_keys(const struct ref_state *st, uint8_t i_to_r[32], uint8_t r_to_i[32])
{
	ref_kdf(2, i_to_r, r_to_i, NULL, st->ck, NULL, 0);
}

/* The reference initiator against our responder, with and without psk. */
static void test_responder_matches_reference(void)
{
	uint8_t psk[32], zero[32] = { 0 };
	const uint8_t *psks[] = { zero, psk };
	wg_random_bytes(psk, sizeof(psk));
	for (int i = 0; i < 2; i++) {
		struct party a, b;
		struct wg_msg_initiation init;
		struct wg_msg_response resp;
		struct wg_session_keys kb;
		struct ref_state st;
		uint8_t e_priv[32], e_pub[32], ts[12], k[32], ee[32], se[32], i_to_r[32], r_to_i[32];

		pair_up(&a, &b, psks[i], psks[i]);
		wg_x25519_generate(e_priv, e_pub);
		timestamp_at(ts, WALL);
		ref_make_initiation(&st, &init, &a.id, e_priv, b.id.public_key, ts, 0x0a0b0c0d);
		CHECK(wg_noise_consume_initiation(&b.id, &init, NOW, lookup_peer, &b) == &b.hs);
		CHECK_MEM_EQ(b.hs.hash, st.h, 32);
		CHECK_MEM_EQ(b.hs.chaining_key, st.ck, 32);
		CHECK(b.hs.remote_index == 0x0a0b0c0d);

		CHECK(wg_noise_create_response(&b.hs, 0x01020304, &resp));
		CHECK(((uint8_t *)&resp.header)[0] == 2 && wg_get_le32(&resp.receiver_index_le) == 0x0a0b0c0d);
		ref_dh(ee, e_priv, resp.unencrypted_ephemeral);
		ref_dh(se, a.id.private_key, resp.unencrypted_ephemeral);
		ref_response_chain(&st, k, resp.unencrypted_ephemeral, ee, se, psks[i]);
		CHECK(wg_aead_open(NULL, resp.encrypted_nothing, 16, st.h, 32, 0, k));
		ref_hash(st.h, resp.encrypted_nothing, 16);
		CHECK_MEM_EQ(b.hs.hash, st.h, 32);

		ref_transport_keys(&st, i_to_r, r_to_i);
		CHECK(wg_noise_derive_keys(&b.hs, &kb));
		CHECK_MEM_EQ(kb.receiving, i_to_r, 32);
		CHECK_MEM_EQ(kb.sending, r_to_i, 32);
	}
}

/* Our initiator against the reference responder. */
static void test_initiator_matches_reference(void)
{
	uint8_t psk[32], zero[32] = { 0 };
	const uint8_t *psks[] = { zero, psk };
	wg_random_bytes(psk, sizeof(psk));
	for (int i = 0; i < 2; i++) {
		struct party a, b;
		struct wg_msg_initiation init;
		struct wg_msg_response resp;
		struct wg_session_keys ka;
		struct ref_state st;
		uint8_t ts[12], got_ts[12], got_static[32], e_priv[32], k[32], ee[32], se[32], i_to_r[32], r_to_i[32];

		pair_up(&a, &b, psks[i], psks[i]);
		timestamp_at(ts, WALL);
		CHECK(initiate(&a, 0x0a0b0c0d, WALL, &init));
		CHECK(((uint8_t *)&init.header)[0] == 1 && wg_get_le32(&init.sender_index_le) == 0x0a0b0c0d);
		CHECK(ref_read_initiation(&st, &init, &b.id, got_static, got_ts));
		CHECK_MEM_EQ(got_static, a.id.public_key, 32);
		CHECK_MEM_EQ(got_ts, ts, 12);
		CHECK_MEM_EQ(a.hs.hash, st.h, 32);

		memset(&resp, 0, sizeof(resp));
		((uint8_t *)&resp.header)[0] = WG_MSG_RESPONSE;
		wg_put_le32(&resp.sender_index_le, 0x01020304);
		wg_put_le32(&resp.receiver_index_le, 0x0a0b0c0d);
		wg_x25519_generate(e_priv, resp.unencrypted_ephemeral);
		ref_dh(ee, e_priv, init.unencrypted_ephemeral);
		ref_dh(se, e_priv, a.id.public_key);
		ref_response_chain(&st, k, resp.unencrypted_ephemeral, ee, se, psks[i]);
		wg_aead_seal(resp.encrypted_nothing, NULL, 0, st.h, 32, 0, k);

		CHECK(wg_noise_consume_response(&a.hs, &a.id, &resp));
		ref_transport_keys(&st, i_to_r, r_to_i);
		CHECK(wg_noise_derive_keys(&a.hs, &ka));
		CHECK_MEM_EQ(ka.sending, i_to_r, 32);
		CHECK_MEM_EQ(ka.receiving, r_to_i, 32);
		CHECK(ka.remote_index == 0x01020304);
	}
}

/* Bytes the handshake itself authenticates. The sender index is bound to the message only by mac1
 * (test_cookie covers that), so flipping it here would legitimately be accepted. */
static bool initiation_byte_is_authenticated(size_t off)
{
	return off < offsetof(struct wg_msg_initiation, sender_index_le) ||
	       (off >= offsetof(struct wg_msg_initiation, unencrypted_ephemeral) &&
		off < offsetof(struct wg_msg_initiation, macs));
}

static void test_initiation_bit_flips_rejected(void)
{
	struct party a, b;
	struct wg_msg_initiation init, bad;
	struct wg_handshake before;
	pair_up(&a, &b, NULL, NULL);
	CHECK(initiate(&a, 7, WALL, &init));
	memcpy(&before, &b.hs, sizeof(before));

	size_t tried = 0;
	for (size_t off = 0; off < sizeof(init); off++) {
		if (!initiation_byte_is_authenticated(off))
			continue;
		for (int bit = 0; bit < 8; bit++) {
			bad = init;
			((uint8_t *)&bad)[off] ^= (uint8_t)(1u << bit);
			CHECK(wg_noise_consume_initiation(&b.id, &bad, NOW, lookup_peer, &b) == NULL);
			tried++;
		}
	}
	CHECK(tried == 8 * (4 + 32 + 48 + 28));
	CHECK(memcmp(&before, &b.hs, sizeof(before)) == 0);
	/* The genuine message is still accepted afterwards. */
	CHECK(wg_noise_consume_initiation(&b.id, &init, NOW, lookup_peer, &b) == &b.hs);
}

static bool response_byte_is_authenticated(size_t off)
{
	return off < offsetof(struct wg_msg_response, sender_index_le) ||
	       (off >= offsetof(struct wg_msg_response, receiver_index_le) && off < offsetof(struct wg_msg_response, macs));
}

static void test_response_bit_flips_rejected(void)
{
	struct party a, b;
	struct wg_msg_initiation init;
	struct wg_msg_response resp, bad;
	struct wg_handshake before;
	pair_up(&a, &b, NULL, NULL);
	CHECK(initiate(&a, 7, WALL, &init));
	CHECK(wg_noise_consume_initiation(&b.id, &init, NOW, lookup_peer, &b) == &b.hs);
	CHECK(wg_noise_create_response(&b.hs, 9, &resp));
	memcpy(&before, &a.hs, sizeof(before));

	size_t tried = 0;
	for (size_t off = 0; off < sizeof(resp); off++) {
		if (!response_byte_is_authenticated(off))
			continue;
		for (int bit = 0; bit < 8; bit++) {
			bad = resp;
			((uint8_t *)&bad)[off] ^= (uint8_t)(1u << bit);
			CHECK(!wg_noise_consume_response(&a.hs, &a.id, &bad));
			tried++;
		}
	}
	CHECK(tried == 8 * (4 + 4 + 32 + 16));
	CHECK(memcmp(&before, &a.hs, sizeof(before)) == 0);
	CHECK(wg_noise_consume_response(&a.hs, &a.id, &resp));
	/* A response is consumed once: the same one again finds the wrong state. */
	CHECK(!wg_noise_consume_response(&a.hs, &a.id, &resp));
}

static void test_replayed_initiation_rejected(void)
{
	struct party a, b;
	struct wg_msg_initiation first, older;
	pair_up(&a, &b, NULL, NULL);
	CHECK(initiate(&a, 1, WALL - WG_NSEC_PER_SEC, &older));
	CHECK(initiate(&a, 1, WALL, &first));
	CHECK(wg_noise_consume_initiation(&b.id, &first, NOW, lookup_peer, &b) == &b.hs);

	struct wg_handshake before;
	memcpy(&before, &b.hs, sizeof(before));
	/* The very same message a second later: equal timestamp. */
	CHECK(wg_noise_consume_initiation(&b.id, &first, NOW + WG_NSEC_PER_SEC, lookup_peer, &b) == NULL);
	/* An older, never-seen message: smaller timestamp. */
	CHECK(wg_noise_consume_initiation(&b.id, &older, NOW + WG_NSEC_PER_SEC, lookup_peer, &b) == NULL);
	CHECK(memcmp(&before, &b.hs, sizeof(before)) == 0);
}

static void test_initiations_too_close_rejected(void)
{
	struct party a, b;
	struct wg_msg_initiation m1, m2, m3;
	pair_up(&a, &b, NULL, NULL);
	CHECK(initiate(&a, 1, WALL, &m1));
	CHECK(initiate(&a, 2, WALL + 30 * WG_NSEC_PER_MSEC, &m2));
	CHECK(initiate(&a, 3, WALL + 60 * WG_NSEC_PER_MSEC, &m3));
	CHECK(wg_noise_consume_initiation(&b.id, &m1, NOW, lookup_peer, &b) == &b.hs);

	struct wg_handshake before;
	memcpy(&before, &b.hs, sizeof(before));
	CHECK(wg_noise_consume_initiation(&b.id, &m2, NOW + 19 * WG_NSEC_PER_MSEC, lookup_peer, &b) == NULL);
	CHECK(memcmp(&before, &b.hs, sizeof(before)) == 0);
	CHECK(wg_noise_consume_initiation(&b.id, &m2, NOW + 20 * WG_NSEC_PER_MSEC, lookup_peer, &b) == &b.hs);
	CHECK(b.hs.remote_index == 2);
	/* A clock that appears to run backwards never opens the window early. */
	CHECK(wg_noise_consume_initiation(&b.id, &m3, NOW, lookup_peer, &b) == NULL);
}

static void test_unknown_static_rejected(void)
{
	struct party a, b, c;
	struct wg_msg_initiation init;
	pair_up(&a, &b, NULL, NULL);
	/* c knows b's public key, but b does not know c. */
	make_identity(&c.id);
	wg_noise_handshake_init(&c.hs, &c.id, b.id.public_key, NULL);
	struct wg_handshake before;
	memcpy(&before, &b.hs, sizeof(before));
	CHECK(initiate(&c, 1, WALL, &init));
	CHECK(wg_noise_consume_initiation(&b.id, &init, NOW, lookup_peer, &b) == NULL);
	CHECK(memcmp(&before, &b.hs, sizeof(before)) == 0);

	/* Even a's genuine initiation is refused when the lookup knows nobody. */
	CHECK(initiate(&a, 1, WALL, &init));
	CHECK(wg_noise_consume_initiation(&b.id, &init, NOW, lookup_nobody, NULL) == NULL);
	CHECK(memcmp(&before, &b.hs, sizeof(before)) == 0);
}

static void test_wrong_responder_rejected(void)
{
	struct party a, b, c;
	struct wg_msg_initiation init;
	pair_up(&a, &b, NULL, NULL);
	/* c has a handshake for a, but the message was encrypted to b's key. */
	make_identity(&c.id);
	wg_noise_handshake_init(&c.hs, &c.id, a.id.public_key, NULL);
	struct wg_handshake before;
	memcpy(&before, &c.hs, sizeof(before));
	CHECK(initiate(&a, 1, WALL, &init));
	CHECK(wg_noise_consume_initiation(&c.id, &init, NOW, lookup_peer, &c) == NULL);
	CHECK(memcmp(&before, &c.hs, sizeof(before)) == 0);
}

static void test_low_order_remote_static(void)
{
	static const char *low_order[] = {
		"0000000000000000000000000000000000000000000000000000000000000000",
		"0100000000000000000000000000000000000000000000000000000000000000",
		"e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
		"5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
		"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
	};
	struct party a;
	struct wg_msg_initiation init;
	uint8_t key[WG_KEY_LEN];
	make_identity(&a.id);
	for (size_t i = 0; i < sizeof(low_order) / sizeof(low_order[0]); i++) {
		test_hex(low_order[i], key, sizeof(key));
		wg_noise_handshake_init(&a.hs, &a.id, key, NULL);
		CHECK(wg_ct_is_zero(a.hs.precomputed_static_static, WG_KEY_LEN));
		CHECK(!initiate(&a, 1, WALL, &init));
		CHECK(a.hs.state == WG_HANDSHAKE_ZEROED);
	}
}

static void test_missing_identity(void)
{
	struct party a, b;
	struct wg_msg_initiation init;
	struct wg_static_identity none = { .has_identity = false };
	pair_up(&a, &b, NULL, NULL);

	/* Without an identity nothing can be precomputed, initiated or answered. */
	struct wg_handshake hs;
	wg_noise_handshake_init(&hs, &none, b.id.public_key, NULL);
	CHECK(wg_ct_is_zero(hs.precomputed_static_static, WG_KEY_LEN));
	CHECK(!wg_noise_create_initiation(&hs, &none, 1, a.hs.latest_timestamp, &init));
	CHECK(initiate(&a, 1, WALL, &init));
	CHECK(wg_noise_consume_initiation(&none, &init, NOW, lookup_peer, &b) == NULL);

	/* Once the identity is set, recomputing the precomputation makes the peer usable. */
	wg_noise_precompute_static_static(&hs, &a.id);
	CHECK_MEM_EQ(hs.precomputed_static_static, a.hs.precomputed_static_static, WG_KEY_LEN);
	uint8_t dh[WG_KEY_LEN];
	CHECK(wg_x25519(dh, b.id.private_key, a.id.public_key));
	CHECK_MEM_EQ(hs.precomputed_static_static, dh, WG_KEY_LEN);
}

static void test_psk_mismatch_rejected(void)
{
	struct party a, b;
	struct wg_msg_initiation init;
	struct wg_msg_response resp;
	uint8_t psk_a[WG_KEY_LEN], psk_b[WG_KEY_LEN];
	wg_random_bytes(psk_a, sizeof(psk_a));
	memcpy(psk_b, psk_a, sizeof(psk_b));
	psk_b[31] ^= 1;
	pair_up(&a, &b, psk_a, psk_b);

	/* The psk enters only in the response, so the initiation still goes through. */
	CHECK(initiate(&a, 1, WALL, &init));
	CHECK(wg_noise_consume_initiation(&b.id, &init, NOW, lookup_peer, &b) == &b.hs);
	CHECK(wg_noise_create_response(&b.hs, 2, &resp));
	struct wg_handshake before;
	memcpy(&before, &a.hs, sizeof(before));
	CHECK(!wg_noise_consume_response(&a.hs, &a.id, &resp));
	CHECK(memcmp(&before, &a.hs, sizeof(before)) == 0);

	/* One side with a psk and the other without fails the same way. */
	pair_up(&a, &b, psk_a, NULL);
	CHECK(initiate(&a, 1, WALL, &init));
	CHECK(wg_noise_consume_initiation(&b.id, &init, NOW, lookup_peer, &b) == &b.hs);
	CHECK(wg_noise_create_response(&b.hs, 2, &resp));
	CHECK(!wg_noise_consume_response(&a.hs, &a.id, &resp));
}

static void test_wrong_states_refused(void)
{
	struct party a, b;
	struct wg_msg_initiation init;
	struct wg_msg_response resp;
	struct wg_session_keys k;
	pair_up(&a, &b, NULL, NULL);

	CHECK(!wg_noise_derive_keys(&a.hs, &k));            /* ZEROED */
	CHECK(!wg_noise_create_response(&a.hs, 1, &resp));  /* nothing consumed */
	CHECK(initiate(&a, 1, WALL, &init));
	CHECK(!wg_noise_derive_keys(&a.hs, &k));            /* CREATED_INITIATION */
	CHECK(wg_noise_consume_initiation(&b.id, &init, NOW, lookup_peer, &b) == &b.hs);
	CHECK(!wg_noise_derive_keys(&b.hs, &k));            /* CONSUMED_INITIATION */
	CHECK(wg_noise_create_response(&b.hs, 2, &resp));
	CHECK(!wg_noise_consume_response(&b.hs, &b.id, &resp)); /* the responder is no initiator */

	/* A response for another of our indices is not ours to consume. */
	struct wg_handshake before;
	memcpy(&before, &a.hs, sizeof(before));
	a.hs.local_index = 99;
	CHECK(!wg_noise_consume_response(&a.hs, &a.id, &resp));
	a.hs.local_index = before.local_index;

	/* Clearing abandons the pending handshake: the response no longer completes it. */
	wg_noise_handshake_clear(&a.hs);
	check_zeroed(&a.hs);
	CHECK_MEM_EQ(a.hs.remote_static, b.id.public_key, WG_KEY_LEN);
	CHECK_MEM_EQ(a.hs.precomputed_static_static, before.precomputed_static_static, WG_KEY_LEN);
	CHECK(!wg_noise_consume_response(&a.hs, &a.id, &resp));
}

/* Both sides initiate at once; the responder drops its own attempt and answers the other's. */
static void test_crossed_initiations(void)
{
	struct party a, b;
	struct wg_msg_initiation ia, ib;
	struct wg_msg_response resp;
	struct wg_session_keys ka, kb;
	pair_up(&a, &b, NULL, NULL);
	CHECK(initiate(&a, 0x11111111, WALL, &ia));
	CHECK(initiate(&b, 0x33333333, WALL, &ib));
	CHECK(wg_noise_consume_initiation(&b.id, &ia, NOW, lookup_peer, &b) == &b.hs);
	CHECK(wg_ct_is_zero(b.hs.ephemeral_private, WG_KEY_LEN));
	CHECK(wg_noise_create_response(&b.hs, 0x22222222, &resp));
	CHECK(wg_noise_consume_response(&a.hs, &a.id, &resp));
	CHECK(wg_noise_derive_keys(&a.hs, &ka) && wg_noise_derive_keys(&b.hs, &kb));
	check_matching_keys(&ka, &kb);
}

int main(void)
{
	if (!wg_crypto_init())
		return 1;
	TEST_RUN(test_initial_values);
	TEST_RUN(test_handshake_step_by_step);
	TEST_RUN(test_handshake_with_and_without_psk);
	TEST_RUN(test_responder_matches_reference);
	TEST_RUN(test_initiator_matches_reference);
	TEST_RUN(test_initiation_bit_flips_rejected);
	TEST_RUN(test_response_bit_flips_rejected);
	TEST_RUN(test_replayed_initiation_rejected);
	TEST_RUN(test_initiations_too_close_rejected);
	TEST_RUN(test_unknown_static_rejected);
	TEST_RUN(test_wrong_responder_rejected);
	TEST_RUN(test_low_order_remote_static);
	TEST_RUN(test_missing_identity);
	TEST_RUN(test_psk_mismatch_rejected);
	TEST_RUN(test_wrong_states_refused);
	TEST_RUN(test_crossed_initiations);
	return TEST_SUMMARY();
}
