/* MAC1/MAC2 and cookie replies. mac1 proves the sender knows our public key (cheap filtering before any
 * DH); under load the responder additionally demands mac2, keyed with a cookie that only a sender able
 * to receive at its source address can hold. */
#include "wg/core/cookie.h"

#include <string.h>

#include "wg/core/crypto.h"

static const char mac1_label[] = "mac1----";
static const char cookie_label[] = "cookie--";

enum { LABEL_LEN = 8 };

/* BLAKE2s(label || public key): the mac1 key and the cookie encryption key. */
static void derive_key(uint8_t out[WG_KEY_LEN], const char label[LABEL_LEN], const uint8_t public_key[WG_KEY_LEN])
{
	wg_blake2s_concat(out, label, LABEL_LEN, public_key, WG_KEY_LEN);
}

/* mac1 covers the message up to mac1; mac2 covers it up to mac2 (so mac1 included). */
static size_t mac1_offset(size_t len)
{
	return len - 2 * WG_MAC_LEN;
}

static size_t mac2_offset(size_t len)
{
	return len - WG_MAC_LEN;
}

static void compute_mac(uint8_t mac[WG_MAC_LEN], const void *msg, size_t len, const uint8_t *key, size_t keylen)
{
	wg_blake2s(mac, WG_MAC_LEN, msg, len, key, keylen);
}

/* ---- Responder ---- */

void wg_cookie_checker_init(struct wg_cookie_checker *c, const uint8_t our_public[WG_KEY_LEN])
{
	memset(c, 0, sizeof(*c));
	/* Without an identity the keys stay zero, which wg_cookie_validate takes as "refuse everything". */
	if (!our_public)
		return;
	derive_key(c->mac1_key, mac1_label, our_public);
	derive_key(c->cookie_encryption_key, cookie_label, our_public);
}

/* The secret is created lazily and replaced once older than COOKIE_SECRET_MAX_AGE, which invalidates
 * every cookie handed out under it. */
static void refresh_secret(struct wg_cookie_checker *c, uint64_t now_ns)
{
	if (c->has_secret && now_ns >= c->secret_birth_ns && now_ns - c->secret_birth_ns <= WG_COOKIE_SECRET_MAX_AGE)
		return;
	wg_random_bytes(c->secret, sizeof(c->secret));
	c->secret_birth_ns = now_ns;
	c->has_secret = true;
}

/* cookie = MAC(secret, source IP || source port big-endian). False for a malformed address. */
static bool make_cookie(struct wg_cookie_checker *c, const struct wg_cookie_source *src, uint64_t now_ns,
			uint8_t cookie[WG_COOKIE_LEN])
{
	uint8_t input[16 + 2];
	if (src->addr_len != 4 && src->addr_len != 16)
		return false;
	refresh_secret(c, now_ns);
	memcpy(input, src->addr, src->addr_len);
	input[src->addr_len] = (uint8_t)(src->port >> 8);
	input[src->addr_len + 1] = (uint8_t)src->port;
	compute_mac(cookie, input, src->addr_len + 2u, c->secret, sizeof(c->secret));
	return true;
}

enum wg_cookie_verdict wg_cookie_validate(struct wg_cookie_checker *c, const void *msg, size_t len,
					  const struct wg_cookie_source *src, bool check_mac2, uint64_t now_ns)
{
	const uint8_t *bytes = msg;
	uint8_t mac[WG_MAC_LEN], cookie[WG_COOKIE_LEN];
	bool mac2_ok;

	if (len < 2 * WG_MAC_LEN || wg_ct_is_zero(c->mac1_key, WG_KEY_LEN))
		return WG_COOKIE_INVALID_MAC;
	compute_mac(mac, bytes, mac1_offset(len), c->mac1_key, WG_KEY_LEN);
	if (!wg_ct_equal(mac, bytes + mac1_offset(len), WG_MAC_LEN))
		return WG_COOKIE_INVALID_MAC;
	if (!check_mac2 || !make_cookie(c, src, now_ns, cookie))
		return WG_COOKIE_VALID_MAC1;
	compute_mac(mac, bytes, mac2_offset(len), cookie, WG_COOKIE_LEN);
	mac2_ok = wg_ct_equal(mac, bytes + mac2_offset(len), WG_MAC_LEN);
	wg_wipe(cookie, sizeof(cookie));
	return mac2_ok ? WG_COOKIE_VALID_MAC1_AND_MAC2 : WG_COOKIE_VALID_MAC1;
}

void wg_cookie_create_reply(struct wg_cookie_checker *c, const void *msg, size_t len, uint32_t sender_index,
			    const struct wg_cookie_source *src, uint64_t now_ns, struct wg_msg_cookie_reply *out)
{
	const uint8_t *bytes = msg;
	uint8_t cookie[WG_COOKIE_LEN];

	memset(out, 0, sizeof(*out));
	wg_put_le32(&out->header, WG_MSG_COOKIE_REPLY);
	wg_put_le32(&out->receiver_index_le, sender_index);
	/* A reply we cannot bind to a mac1 or an address is left undecryptable (all zero) rather than
	 * carrying a cookie for the wrong sender. */
	if (len < 2 * WG_MAC_LEN || !make_cookie(c, src, now_ns, cookie))
		return;
	wg_random_bytes(out->nonce, sizeof(out->nonce));
	/* The mac1 being answered is the associated data, tying the reply to that one message. */
	wg_xaead_seal(out->encrypted_cookie, cookie, WG_COOKIE_LEN, bytes + mac1_offset(len), WG_MAC_LEN, out->nonce,
		      c->cookie_encryption_key);
	wg_wipe(cookie, sizeof(cookie));
}

/* ---- Initiator ---- */

void wg_cookie_maker_init(struct wg_cookie_maker *m, const uint8_t peer_public[WG_KEY_LEN])
{
	memset(m, 0, sizeof(*m));
	derive_key(m->mac1_key, mac1_label, peer_public);
	derive_key(m->cookie_decryption_key, cookie_label, peer_public);
}

/* A cookie is used only while the responder surely still has the secret it came from, with a margin for
 * the reply's time in flight. */
static bool cookie_is_usable(const struct wg_cookie_maker *m, uint64_t now_ns)
{
	return m->have_cookie && now_ns >= m->cookie_birth_ns &&
	       now_ns - m->cookie_birth_ns < WG_COOKIE_SECRET_MAX_AGE - WG_COOKIE_SECRET_LATENCY;
}

void wg_cookie_add_macs(struct wg_cookie_maker *m, void *msg, size_t len, uint64_t now_ns)
{
	uint8_t *bytes = msg;

	if (len < 2 * WG_MAC_LEN)
		return;
	compute_mac(bytes + mac1_offset(len), bytes, mac1_offset(len), m->mac1_key, WG_KEY_LEN);
	/* Remembered so a cookie reply can be matched to the message it answers. */
	memcpy(m->last_mac1_sent, bytes + mac1_offset(len), WG_MAC_LEN);
	m->have_sent_mac1 = true;
	if (cookie_is_usable(m, now_ns))
		compute_mac(bytes + mac2_offset(len), bytes, mac2_offset(len), m->cookie, WG_COOKIE_LEN);
	else
		memset(bytes + mac2_offset(len), 0, WG_MAC_LEN);
}

bool wg_cookie_consume_reply(struct wg_cookie_maker *m, const struct wg_msg_cookie_reply *reply, uint64_t now_ns)
{
	uint8_t cookie[WG_COOKIE_LEN];

	if (!m->have_sent_mac1)
		return false;
	if (!wg_xaead_open(cookie, reply->encrypted_cookie, sizeof(reply->encrypted_cookie), m->last_mac1_sent,
			   WG_MAC_LEN, reply->nonce, m->cookie_decryption_key))
		return false;
	memcpy(m->cookie, cookie, WG_COOKIE_LEN);
	m->cookie_birth_ns = now_ns;
	m->have_cookie = true;
	/* One reply per message: a second (replayed) reply to the same mac1 is refused. */
	m->have_sent_mac1 = false;
	wg_wipe(cookie, sizeof(cookie));
	return true;
}
