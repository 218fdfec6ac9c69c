/* MAC1/MAC2 and cookie replies: the DoS-mitigation layer around handshake messages. Pure; times are
 * monotonic nanoseconds passed in. The source address of a message is given as its raw bytes. */
#ifndef WG_COOKIE_H
#define WG_COOKIE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "wg/core/messages.h"

/* The sender address a cookie is bound to: IP (4 or 16 bytes) and UDP port, as raw bytes. */
struct wg_cookie_source {
	uint8_t addr[16];
	uint8_t addr_len;   /* 4 or 16 */
	uint16_t port;      /* host order */
};

/* Responder side, one per device. */
struct wg_cookie_checker {
	uint8_t secret[WG_HASH_LEN];
	uint64_t secret_birth_ns;
	bool has_secret;
	uint8_t mac1_key[WG_KEY_LEN];              /* BLAKE2s("mac1----" || our public key) */
	uint8_t cookie_encryption_key[WG_KEY_LEN]; /* BLAKE2s("cookie--" || our public key) */
};

/* Initiator side, one per peer. */
struct wg_cookie_maker {
	uint8_t mac1_key[WG_KEY_LEN];              /* from the peer's public key */
	uint8_t cookie_decryption_key[WG_KEY_LEN];
	uint8_t cookie[WG_COOKIE_LEN];
	uint64_t cookie_birth_ns;
	bool have_cookie;
	uint8_t last_mac1_sent[WG_MAC_LEN];
	bool have_sent_mac1;
};

enum wg_cookie_verdict {
	WG_COOKIE_INVALID_MAC = 0,       /* drop */
	WG_COOKIE_VALID_MAC1,            /* mac1 good, mac2 absent or wrong */
	WG_COOKIE_VALID_MAC1_AND_MAC2,   /* both good: the sender proved its address */
};

/* our_public may be NULL (no identity): then every message fails validation. */
void wg_cookie_checker_init(struct wg_cookie_checker *c, const uint8_t our_public[WG_KEY_LEN]);
/* Validates mac1 (always) and mac2 (only when check_mac2) of a handshake message of len bytes (its macs
 * at the end). Rotates the cookie secret after COOKIE_SECRET_MAX_AGE. */
enum wg_cookie_verdict wg_cookie_validate(struct wg_cookie_checker *c, const void *msg, size_t len,
					  const struct wg_cookie_source *src, bool check_mac2, uint64_t now_ns);
/* Builds a cookie reply to the handshake message msg (whose mac1 is used as associated data), addressed
 * to receiver index sender_index of that message. */
void wg_cookie_create_reply(struct wg_cookie_checker *c, const void *msg, size_t len, uint32_t sender_index,
			    const struct wg_cookie_source *src, uint64_t now_ns, struct wg_msg_cookie_reply *out);

void wg_cookie_maker_init(struct wg_cookie_maker *m, const uint8_t peer_public[WG_KEY_LEN]);
/* Writes mac1, and mac2 when a cookie younger than COOKIE_SECRET_MAX_AGE - LATENCY is held. */
void wg_cookie_add_macs(struct wg_cookie_maker *m, void *msg, size_t len, uint64_t now_ns);
/* Accepts a cookie reply to our last mac1; false (and no change) when it does not decrypt. */
bool wg_cookie_consume_reply(struct wg_cookie_maker *m, const struct wg_msg_cookie_reply *reply, uint64_t now_ns);
#endif
