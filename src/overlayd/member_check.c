/* The membership check's messages: see member_check.h. */
#include "overlayd/member_check.h"

#include <sodium.h>
#include <string.h>

static const char LABEL[] = "zl-overlay member-check v1";

void od_mcheck_session_wipe(struct od_mcheck_session *s)
{
	sodium_memzero(s, sizeof(*s));
}

static void put_header(uint8_t *out, size_t total, uint8_t type)
{
	out[0] = (uint8_t)total;
	out[1] = (uint8_t)(total >> 8);
	out[2] = (uint8_t)(total >> 16);
	out[3] = (uint8_t)(total >> 24);
	out[4] = type;
	out[5] = 1;
	out[6] = 0;
	out[7] = 0;
}

static bool header_is(const uint8_t *hdr, size_t total, uint8_t type)
{
	uint8_t want[OD_MCHECK_HEADER_LEN];

	put_header(want, total, type);
	return memcmp(hdr, want, sizeof(want)) == 0;
}

bool od_mcheck_is_check(const uint8_t hdr[OD_MCHECK_HEADER_LEN])
{
	return hdr[4] == OD_MCHECK_MSG_CHECK;
}

/* k from the static-static DH; false for a low-order public key (all-zero result). */
static bool derive(struct od_mcheck_session *s, const uint8_t priv[OD_MCHECK_KEY_LEN],
		   const uint8_t remote[OD_MCHECK_KEY_LEN], const uint8_t worker_pub[OD_MCHECK_KEY_LEN],
		   const uint8_t leader_pub[OD_MCHECK_KEY_LEN])
{
	uint8_t dh[crypto_scalarmult_BYTES];
	crypto_generichash_state h;
	bool ok = crypto_scalarmult(dh, priv, remote) == 0;

	if (ok) {
		crypto_generichash_init(&h, NULL, 0, OD_MCHECK_KEY_LEN);
		crypto_generichash_update(&h, (const uint8_t *)LABEL, sizeof(LABEL) - 1);
		crypto_generichash_update(&h, dh, sizeof(dh));
		crypto_generichash_update(&h, worker_pub, OD_MCHECK_KEY_LEN);
		crypto_generichash_update(&h, leader_pub, OD_MCHECK_KEY_LEN);
		crypto_generichash_final(&h, s->key, OD_MCHECK_KEY_LEN);
		sodium_memzero(&h, sizeof(h));
	}
	sodium_memzero(dh, sizeof(dh));
	return ok;
}

/* MAC(k, label || a || b). */
static void mac(const struct od_mcheck_session *s, const char *label, const uint8_t *a, size_t alen,
		const uint8_t *b, size_t blen, uint8_t out[OD_MCHECK_MAC_LEN])
{
	crypto_generichash_state h;

	crypto_generichash_init(&h, s->key, OD_MCHECK_KEY_LEN, OD_MCHECK_MAC_LEN);
	crypto_generichash_update(&h, (const uint8_t *)label, strlen(label));
	crypto_generichash_update(&h, a, alen);
	crypto_generichash_update(&h, b, blen);
	crypto_generichash_final(&h, out, OD_MCHECK_MAC_LEN);
	sodium_memzero(&h, sizeof(h));
}

bool od_mcheck_request_build(struct od_mcheck_session *s, const uint8_t worker_priv[OD_MCHECK_KEY_LEN],
			     const uint8_t worker_pub[OD_MCHECK_KEY_LEN], const uint8_t leader_pub[OD_MCHECK_KEY_LEN],
			     uint8_t out[OD_MCHECK_REQUEST_LEN])
{
	const size_t body = OD_MCHECK_REQUEST_LEN - OD_MCHECK_MAC_LEN;

	if (!derive(s, worker_priv, leader_pub, worker_pub, leader_pub)) {
		od_mcheck_session_wipe(s);
		return false;
	}
	randombytes_buf(s->nonce, sizeof(s->nonce));
	put_header(out, OD_MCHECK_REQUEST_LEN, OD_MCHECK_MSG_CHECK);
	memcpy(out + OD_MCHECK_HEADER_LEN, worker_pub, OD_MCHECK_KEY_LEN);
	memcpy(out + OD_MCHECK_HEADER_LEN + OD_MCHECK_KEY_LEN, s->nonce, OD_MCHECK_NONCE_LEN);
	mac(s, "check", out, body, NULL, 0, out + body);
	return true;
}

bool od_mcheck_request_open(struct od_mcheck_session *s, const uint8_t leader_priv[OD_MCHECK_KEY_LEN],
			    const uint8_t leader_pub[OD_MCHECK_KEY_LEN], const uint8_t *msg, size_t len,
			    uint8_t worker_pub[OD_MCHECK_KEY_LEN])
{
	const size_t body = OD_MCHECK_REQUEST_LEN - OD_MCHECK_MAC_LEN;
	uint8_t want[OD_MCHECK_MAC_LEN];
	bool ok;

	if (len != OD_MCHECK_REQUEST_LEN || !header_is(msg, OD_MCHECK_REQUEST_LEN, OD_MCHECK_MSG_CHECK))
		return false;
	memcpy(worker_pub, msg + OD_MCHECK_HEADER_LEN, OD_MCHECK_KEY_LEN);
	if (!derive(s, leader_priv, worker_pub, worker_pub, leader_pub)) {
		od_mcheck_session_wipe(s);
		return false;
	}
	mac(s, "check", msg, body, NULL, 0, want);
	ok = sodium_memcmp(want, msg + body, OD_MCHECK_MAC_LEN) == 0;
	memcpy(s->nonce, msg + OD_MCHECK_HEADER_LEN + OD_MCHECK_KEY_LEN, OD_MCHECK_NONCE_LEN);
	if (!ok)
		od_mcheck_session_wipe(s);
	return ok;
}

void od_mcheck_status_build(struct od_mcheck_session *s, enum od_mcheck_status status,
			    uint8_t out[OD_MCHECK_STATUS_LEN])
{
	const size_t body = OD_MCHECK_STATUS_LEN - OD_MCHECK_MAC_LEN;

	put_header(out, OD_MCHECK_STATUS_LEN, OD_MCHECK_MSG_STATUS);
	out[OD_MCHECK_HEADER_LEN] = (uint8_t)status;
	mac(s, "status", s->nonce, OD_MCHECK_NONCE_LEN, out, body, out + body);
	od_mcheck_session_wipe(s);
}

int od_mcheck_status_open(struct od_mcheck_session *s, const uint8_t *msg, size_t len)
{
	const size_t body = OD_MCHECK_STATUS_LEN - OD_MCHECK_MAC_LEN;
	uint8_t want[OD_MCHECK_MAC_LEN];
	int status = 0;

	if (len == OD_MCHECK_STATUS_LEN && header_is(msg, OD_MCHECK_STATUS_LEN, OD_MCHECK_MSG_STATUS)) {
		mac(s, "status", s->nonce, OD_MCHECK_NONCE_LEN, msg, body, want);
		if (sodium_memcmp(want, msg + body, OD_MCHECK_MAC_LEN) == 0 &&
		    (msg[OD_MCHECK_HEADER_LEN] == OD_MCHECK_MEMBER || msg[OD_MCHECK_HEADER_LEN] == OD_MCHECK_NOT_MEMBER))
			status = msg[OD_MCHECK_HEADER_LEN];
	}
	od_mcheck_session_wipe(s);
	return status;
}
