/* MAC1/MAC2 and cookie-reply tests: mac1 over every byte, the cookie cycle between a checker and a maker,
 * binding of cookies to the source address, reply matching by mac1, expiry on both sides, and an
 * independent recomputation of the macs and the cookie from their definitions. */
#include "test.h"

#include <stdint.h>

#include "wg/core/cookie.h"
#include "wg/core/crypto.h"

#define T0 (500 * WG_NSEC_PER_SEC)

struct fixture {
	uint8_t priv[WG_KEY_LEN], pub[WG_KEY_LEN]; /* the responder's static key */
	struct wg_cookie_checker checker;
	struct wg_cookie_maker maker;
	struct wg_msg_initiation msg;              /* any bytes: the macs do not care about the contents */
	struct wg_cookie_source src;
};

static void setup(struct fixture *f)
{
	wg_x25519_generate(f->priv, f->pub);
	wg_cookie_checker_init(&f->checker, f->pub);
	wg_cookie_maker_init(&f->maker, f->pub);
	wg_random_bytes(&f->msg, sizeof(f->msg));
	memset(&f->src, 0, sizeof(f->src));
	f->src.addr_len = 4;
	memcpy(f->src.addr, "\xc0\xa8\x01\x02", 4); /* 192.168.1.2 */
	f->src.port = 51820;
}

static enum wg_cookie_verdict validate(struct fixture *f, bool check_mac2, uint64_t now)
{
	return wg_cookie_validate(&f->checker, &f->msg, sizeof(f->msg), &f->src, check_mac2, now);
}

/* Maker sends f->msg, the checker answers with a cookie reply, the maker takes it. */
static bool cookie_cycle(struct fixture *f, uint64_t now)
{
	struct wg_msg_cookie_reply reply;
	wg_cookie_add_macs(&f->maker, &f->msg, sizeof(f->msg), now);
	if (validate(f, true, now) != WG_COOKIE_VALID_MAC1)
		return false;
	wg_cookie_create_reply(&f->checker, &f->msg, sizeof(f->msg), 0x5555, &f->src, now, &reply);
	return wg_cookie_consume_reply(&f->maker, &reply, now);
}

static void test_mac1_definition(void)
{
	struct fixture f;
	uint8_t key[32], mac[16];
	setup(&f);
	wg_cookie_add_macs(&f.maker, &f.msg, sizeof(f.msg), T0);

	/* mac1 = BLAKE2s-128(key = BLAKE2s("mac1----" || public key), message up to mac1). */
	uint8_t label_and_key[8 + 32];
	memcpy(label_and_key, "mac1----", 8);
	memcpy(label_and_key + 8, f.pub, 32);
	wg_blake2s(key, 32, label_and_key, sizeof(label_and_key), NULL, 0);
	CHECK_MEM_EQ(f.checker.mac1_key, key, 32);
	wg_blake2s(mac, 16, &f.msg, offsetof(struct wg_msg_initiation, macs), key, 32);
	CHECK_MEM_EQ(f.msg.macs.mac1, mac, 16);
	CHECK(wg_ct_is_zero(f.msg.macs.mac2, 16)); /* no cookie yet */
	CHECK(f.maker.have_sent_mac1);
	CHECK_MEM_EQ(f.maker.last_mac1_sent, mac, 16);

	memcpy(label_and_key, "cookie--", 8);
	wg_blake2s(key, 32, label_and_key, sizeof(label_and_key), NULL, 0);
	CHECK_MEM_EQ(f.checker.cookie_encryption_key, key, 32);
	CHECK_MEM_EQ(f.maker.cookie_decryption_key, key, 32);
}

static void test_mac1_valid_and_every_flip_invalid(void)
{
	struct fixture f;
	setup(&f);
	wg_cookie_add_macs(&f.maker, &f.msg, sizeof(f.msg), T0);
	CHECK(validate(&f, false, T0) == WG_COOKIE_VALID_MAC1);
	/* mac2 absent (zero) while the checker asks for it: still only mac1. */
	CHECK(validate(&f, true, T0) == WG_COOKIE_VALID_MAC1);

	/* Every byte up to and including mac1 (this covers the sender index the handshake cannot check). */
	for (size_t off = 0; off < offsetof(struct wg_msg_initiation, macs.mac2); off++) {
		((uint8_t *)&f.msg)[off] ^= 0x20;
		CHECK(validate(&f, false, T0) == WG_COOKIE_INVALID_MAC);
		((uint8_t *)&f.msg)[off] ^= 0x20;
	}
	CHECK(validate(&f, false, T0) == WG_COOKIE_VALID_MAC1);

	/* A response-sized message works the same way; a message too short to hold macs never does. */
	uint8_t resp[sizeof(struct wg_msg_response)];
	wg_random_bytes(resp, sizeof(resp));
	wg_cookie_add_macs(&f.maker, resp, sizeof(resp), T0);
	CHECK(wg_cookie_validate(&f.checker, resp, sizeof(resp), &f.src, false, T0) == WG_COOKIE_VALID_MAC1);
	resp[10] ^= 1;
	CHECK(wg_cookie_validate(&f.checker, resp, sizeof(resp), &f.src, false, T0) == WG_COOKIE_INVALID_MAC);
	CHECK(wg_cookie_validate(&f.checker, resp, 31, &f.src, false, T0) == WG_COOKIE_INVALID_MAC);

	/* A maker for another key produces a mac1 this checker refuses. */
	uint8_t other_priv[32], other_pub[32];
	struct wg_cookie_maker other;
	wg_x25519_generate(other_priv, other_pub);
	wg_cookie_maker_init(&other, other_pub);
	wg_cookie_add_macs(&other, &f.msg, sizeof(f.msg), T0);
	CHECK(validate(&f, false, T0) == WG_COOKIE_INVALID_MAC);
}

static void test_no_identity_refuses_everything(void)
{
	struct fixture f;
	setup(&f);
	wg_cookie_checker_init(&f.checker, NULL);
	wg_cookie_add_macs(&f.maker, &f.msg, sizeof(f.msg), T0);
	CHECK(validate(&f, false, T0) == WG_COOKIE_INVALID_MAC);
	CHECK(validate(&f, true, T0) == WG_COOKIE_INVALID_MAC);
}

static void test_cookie_cycle(void)
{
	struct fixture f;
	struct wg_msg_cookie_reply reply;
	setup(&f);
	wg_cookie_add_macs(&f.maker, &f.msg, sizeof(f.msg), T0);
	CHECK(validate(&f, true, T0) == WG_COOKIE_VALID_MAC1);
	wg_cookie_create_reply(&f.checker, &f.msg, sizeof(f.msg), 0x01020304, &f.src, T0, &reply);
	CHECK(wg_get_le32(&reply.header) == WG_MSG_COOKIE_REPLY);
	CHECK(wg_get_le32(&reply.receiver_index_le) == 0x01020304);
	CHECK(!wg_ct_is_zero(reply.nonce, sizeof(reply.nonce)));

	/* The reply decrypts, per the definition, to BLAKE2s-128(secret, IP || port big-endian). */
	uint8_t input[6] = { 0xc0, 0xa8, 0x01, 0x02, 51820 >> 8, 51820 & 0xff }, expect[16], got[16];
	wg_blake2s(expect, 16, input, sizeof(input), f.checker.secret, 32);
	CHECK(wg_xaead_open(got, reply.encrypted_cookie, sizeof(reply.encrypted_cookie), f.msg.macs.mac1, 16,
			    reply.nonce, f.checker.cookie_encryption_key));
	CHECK_MEM_EQ(got, expect, 16);

	CHECK(wg_cookie_consume_reply(&f.maker, &reply, T0 + 1));
	CHECK(f.maker.have_cookie && f.maker.cookie_birth_ns == T0 + 1);
	CHECK_MEM_EQ(f.maker.cookie, expect, 16);

	/* The next message carries mac2 = BLAKE2s-128(cookie, message up to mac2). */
	wg_random_bytes(&f.msg, offsetof(struct wg_msg_initiation, macs));
	wg_cookie_add_macs(&f.maker, &f.msg, sizeof(f.msg), T0 + 2);
	uint8_t mac2[16];
	wg_blake2s(mac2, 16, &f.msg, offsetof(struct wg_msg_initiation, macs.mac2), expect, 16);
	CHECK_MEM_EQ(f.msg.macs.mac2, mac2, 16);
	CHECK(validate(&f, true, T0 + 2) == WG_COOKIE_VALID_MAC1_AND_MAC2);
	/* Not asked for, mac2 is not looked at. */
	CHECK(validate(&f, false, T0 + 2) == WG_COOKIE_VALID_MAC1);
	/* A corrupted mac2 falls back to mac1 only. */
	f.msg.macs.mac2[0] ^= 1;
	CHECK(validate(&f, true, T0 + 2) == WG_COOKIE_VALID_MAC1);
}

static void test_cookie_bound_to_source(void)
{
	struct fixture f;
	setup(&f);
	CHECK(cookie_cycle(&f, T0));
	wg_cookie_add_macs(&f.maker, &f.msg, sizeof(f.msg), T0);
	CHECK(validate(&f, true, T0) == WG_COOKIE_VALID_MAC1_AND_MAC2);

	struct wg_cookie_source genuine = f.src;
	f.src.addr[3] = 3; /* another address */
	CHECK(validate(&f, true, T0) == WG_COOKIE_VALID_MAC1);
	f.src = genuine;
	f.src.port = 51821; /* another port */
	CHECK(validate(&f, true, T0) == WG_COOKIE_VALID_MAC1);
	f.src = genuine;
	f.src.addr_len = 16; /* the same first bytes read as IPv6 */
	CHECK(validate(&f, true, T0) == WG_COOKIE_VALID_MAC1);
	f.src.addr_len = 7; /* malformed */
	CHECK(validate(&f, true, T0) == WG_COOKIE_VALID_MAC1);
	f.src.addr_len = 255; /* malformed, longer than addr: must not be read */
	CHECK(validate(&f, true, T0) == WG_COOKIE_VALID_MAC1);
	f.src = genuine;
	CHECK(validate(&f, true, T0) == WG_COOKIE_VALID_MAC1_AND_MAC2);

	/* An IPv6 sender gets its own working cookie. */
	setup(&f);
	f.src.addr_len = 16;
	memcpy(f.src.addr, "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01", 16);
	CHECK(cookie_cycle(&f, T0));
	wg_cookie_add_macs(&f.maker, &f.msg, sizeof(f.msg), T0);
	CHECK(validate(&f, true, T0) == WG_COOKIE_VALID_MAC1_AND_MAC2);
	f.src.addr[15] = 2;
	CHECK(validate(&f, true, T0) == WG_COOKIE_VALID_MAC1);
}

static void test_reply_must_match_last_mac1(void)
{
	struct fixture f;
	struct wg_msg_cookie_reply reply;
	struct wg_msg_initiation other;
	setup(&f);

	/* Nothing sent yet: no reply is expected. */
	wg_cookie_create_reply(&f.checker, &f.msg, sizeof(f.msg), 1, &f.src, T0, &reply);
	CHECK(!wg_cookie_consume_reply(&f.maker, &reply, T0));

	/* A reply to another message (another mac1 as associated data) is refused. */
	wg_cookie_add_macs(&f.maker, &f.msg, sizeof(f.msg), T0);
	other = f.msg;
	other.macs.mac1[5] ^= 1;
	wg_cookie_create_reply(&f.checker, &other, sizeof(other), 1, &f.src, T0, &reply);
	struct wg_cookie_maker before;
	memcpy(&before, &f.maker, sizeof(before)); /* memcpy: padding included */
	CHECK(!wg_cookie_consume_reply(&f.maker, &reply, T0));
	CHECK(memcmp(&before, &f.maker, sizeof(before)) == 0);

	/* A tampered reply is refused, every byte of the nonce and the encrypted cookie. */
	wg_cookie_create_reply(&f.checker, &f.msg, sizeof(f.msg), 1, &f.src, T0, &reply);
	for (size_t off = offsetof(struct wg_msg_cookie_reply, nonce); off < sizeof(reply); off++) {
		((uint8_t *)&reply)[off] ^= 0x04;
		CHECK(!wg_cookie_consume_reply(&f.maker, &reply, T0));
		((uint8_t *)&reply)[off] ^= 0x04;
	}
	CHECK(memcmp(&before, &f.maker, sizeof(before)) == 0);
	CHECK(wg_cookie_consume_reply(&f.maker, &reply, T0));
}

static void test_second_reply_refused(void)
{
	struct fixture f;
	struct wg_msg_cookie_reply r1, r2;
	setup(&f);
	wg_cookie_add_macs(&f.maker, &f.msg, sizeof(f.msg), T0);
	wg_cookie_create_reply(&f.checker, &f.msg, sizeof(f.msg), 1, &f.src, T0, &r1);
	wg_cookie_create_reply(&f.checker, &f.msg, sizeof(f.msg), 1, &f.src, T0, &r2);
	CHECK(memcmp(r1.nonce, r2.nonce, sizeof(r1.nonce)) != 0); /* fresh nonce per reply */
	CHECK(wg_cookie_consume_reply(&f.maker, &r1, T0));
	CHECK(!f.maker.have_sent_mac1);
	struct wg_cookie_maker before;
	memcpy(&before, &f.maker, sizeof(before)); /* memcpy: padding included */
	CHECK(!wg_cookie_consume_reply(&f.maker, &r1, T0 + 1)); /* replayed */
	CHECK(!wg_cookie_consume_reply(&f.maker, &r2, T0 + 1)); /* another reply to the same message */
	CHECK(memcmp(&before, &f.maker, sizeof(before)) == 0);
	/* A new message re-arms it. */
	wg_cookie_add_macs(&f.maker, &f.msg, sizeof(f.msg), T0 + 2);
	CHECK(wg_cookie_consume_reply(&f.maker, &r2, T0 + 2));
}

static void test_maker_cookie_expiry(void)
{
	struct fixture f;
	setup(&f);
	CHECK(cookie_cycle(&f, T0));
	const uint64_t usable = WG_COOKIE_SECRET_MAX_AGE - WG_COOKIE_SECRET_LATENCY;

	wg_cookie_add_macs(&f.maker, &f.msg, sizeof(f.msg), T0 + usable - 1);
	CHECK(!wg_ct_is_zero(f.msg.macs.mac2, 16));
	CHECK(validate(&f, true, T0 + usable - 1) == WG_COOKIE_VALID_MAC1_AND_MAC2);

	wg_cookie_add_macs(&f.maker, &f.msg, sizeof(f.msg), T0 + usable);
	CHECK(wg_ct_is_zero(f.msg.macs.mac2, 16));
	CHECK(validate(&f, true, T0 + usable) == WG_COOKIE_VALID_MAC1);
}

static void test_secret_rotation(void)
{
	struct fixture f;
	setup(&f);
	/* The checker creates its secret at T0; the maker's clock is its own (fixed here). */
	CHECK(cookie_cycle(&f, T0));
	CHECK(f.checker.has_secret && f.checker.secret_birth_ns == T0);
	uint8_t old_secret[32];
	memcpy(old_secret, f.checker.secret, 32);

	wg_cookie_add_macs(&f.maker, &f.msg, sizeof(f.msg), T0);
	CHECK(validate(&f, true, T0 + WG_COOKIE_SECRET_MAX_AGE) == WG_COOKIE_VALID_MAC1_AND_MAC2);
	CHECK_MEM_EQ(f.checker.secret, old_secret, 32);
	/* Older than 120 s: a new secret, and every cookie from the old one stops working. */
	CHECK(validate(&f, true, T0 + WG_COOKIE_SECRET_MAX_AGE + 1) == WG_COOKIE_VALID_MAC1);
	CHECK(memcmp(f.checker.secret, old_secret, 32) != 0);
	CHECK(f.checker.secret_birth_ns == T0 + WG_COOKIE_SECRET_MAX_AGE + 1);

	/* A fresh cycle under the new secret works again. */
	uint64_t later = T0 + WG_COOKIE_SECRET_MAX_AGE + 2;
	CHECK(cookie_cycle(&f, later));
	wg_cookie_add_macs(&f.maker, &f.msg, sizeof(f.msg), later);
	CHECK(validate(&f, true, later) == WG_COOKIE_VALID_MAC1_AND_MAC2);
}

int main(void)
{
	if (!wg_crypto_init())
		return 1;
	TEST_RUN(test_mac1_definition);
	TEST_RUN(test_mac1_valid_and_every_flip_invalid);
	TEST_RUN(test_no_identity_refuses_everything);
	TEST_RUN(test_cookie_cycle);
	TEST_RUN(test_cookie_bound_to_source);
	TEST_RUN(test_reply_must_match_last_mac1);
	TEST_RUN(test_second_reply_refused);
	TEST_RUN(test_maker_cookie_expiry);
	TEST_RUN(test_secret_rotation);
	return TEST_SUMMARY();
}
