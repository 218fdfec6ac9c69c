/* WireGuard wire formats and protocol constants: the single place every size, type and timer lives.
 * All multi-byte integers on the wire are little-endian. Facts: shared/reference/wireguard.md. */
#ifndef WG_MESSAGES_H
#define WG_MESSAGES_H
#include <stdint.h>
#include <stddef.h>

enum wg_sizes {
	WG_KEY_LEN = 32,
	WG_HASH_LEN = 32,
	WG_AEAD_TAG_LEN = 16,
	WG_MAC_LEN = 16,
	WG_COOKIE_LEN = 16,
	WG_COOKIE_NONCE_LEN = 24,
	WG_TIMESTAMP_LEN = 12,
	WG_PADDING_MULTIPLE = 16,
	WG_DATA_HEADER_LEN = 16,                       /* type + receiver + counter */
	WG_DATA_OVERHEAD = WG_DATA_HEADER_LEN + WG_AEAD_TAG_LEN,
	WG_DATA_MIN_LEN = WG_DATA_OVERHEAD,            /* an empty (keepalive) data message */
	WG_MAX_PACKET = 65535,
	WG_DEFAULT_MTU = 1420,
};

enum wg_message_type {
	WG_MSG_INITIATION = 1,
	WG_MSG_RESPONSE = 2,
	WG_MSG_COOKIE_REPLY = 3,
	WG_MSG_DATA = 4,
};

/* The first four bytes of every message: the type in the low byte, three reserved zero bytes. */
struct wg_msg_header {
	uint32_t type_le;
} __attribute__((packed));

struct wg_msg_macs {
	uint8_t mac1[WG_MAC_LEN];
	uint8_t mac2[WG_MAC_LEN];
} __attribute__((packed));

struct wg_msg_initiation {
	struct wg_msg_header header;
	uint32_t sender_index_le;
	uint8_t unencrypted_ephemeral[WG_KEY_LEN];
	uint8_t encrypted_static[WG_KEY_LEN + WG_AEAD_TAG_LEN];
	uint8_t encrypted_timestamp[WG_TIMESTAMP_LEN + WG_AEAD_TAG_LEN];
	struct wg_msg_macs macs;
} __attribute__((packed));

struct wg_msg_response {
	struct wg_msg_header header;
	uint32_t sender_index_le;
	uint32_t receiver_index_le;
	uint8_t unencrypted_ephemeral[WG_KEY_LEN];
	uint8_t encrypted_nothing[WG_AEAD_TAG_LEN];
	struct wg_msg_macs macs;
} __attribute__((packed));

struct wg_msg_cookie_reply {
	struct wg_msg_header header;
	uint32_t receiver_index_le;
	uint8_t nonce[WG_COOKIE_NONCE_LEN];
	uint8_t encrypted_cookie[WG_COOKIE_LEN + WG_AEAD_TAG_LEN];
} __attribute__((packed));

struct wg_msg_data {
	struct wg_msg_header header;
	uint32_t receiver_index_le;
	uint64_t counter_le;
	uint8_t encrypted_data[];
} __attribute__((packed));

_Static_assert(sizeof(struct wg_msg_initiation) == 148, "initiation is 148 bytes");
_Static_assert(sizeof(struct wg_msg_response) == 92, "response is 92 bytes");
_Static_assert(sizeof(struct wg_msg_cookie_reply) == 64, "cookie reply is 64 bytes");
_Static_assert(sizeof(struct wg_msg_data) == WG_DATA_HEADER_LEN, "data header is 16 bytes");

/* Protocol timing and limits. Times are nanoseconds of the monotonic clock. */
#define WG_NSEC_PER_SEC 1000000000ULL
#define WG_NSEC_PER_MSEC 1000000ULL
#define WG_REKEY_AFTER_MESSAGES (1ULL << 60)
#define WG_REJECT_AFTER_MESSAGES (UINT64_MAX - (1ULL << 13)) /* 2^64 - 2^13 - 1 */
#define WG_REKEY_AFTER_TIME (120 * WG_NSEC_PER_SEC)
#define WG_REJECT_AFTER_TIME (180 * WG_NSEC_PER_SEC)
#define WG_REKEY_ATTEMPT_TIME (90 * WG_NSEC_PER_SEC)
#define WG_REKEY_TIMEOUT (5 * WG_NSEC_PER_SEC)
#define WG_REKEY_TIMEOUT_JITTER_MAX (334 * WG_NSEC_PER_MSEC)
#define WG_KEEPALIVE_TIMEOUT (10 * WG_NSEC_PER_SEC)
/* The initiator renews a receive-only session this long after it was derived (180 - 10 - 5 = 165 s). */
#define WG_RECEIVE_REKEY_AGE (WG_REJECT_AFTER_TIME - WG_KEEPALIVE_TIMEOUT - WG_REKEY_TIMEOUT)
#define WG_ZERO_KEYS_AFTER (3 * WG_REJECT_AFTER_TIME)
#define WG_MAX_TIMER_HANDSHAKES (WG_REKEY_ATTEMPT_TIME / WG_REKEY_TIMEOUT) /* 18 retries, then give up */
#define WG_COOKIE_SECRET_MAX_AGE (120 * WG_NSEC_PER_SEC)
#define WG_COOKIE_SECRET_LATENCY (5 * WG_NSEC_PER_SEC)
#define WG_INITIATIONS_MIN_INTERVAL (20 * WG_NSEC_PER_MSEC) /* one initiation per peer per 20 ms */
#define WG_UNDER_LOAD_HOLD (1 * WG_NSEC_PER_SEC)            /* stay "under load" this long after */
#define WG_MAX_STAGED_PACKETS 128                           /* queued per peer while handshaking */
#define WG_HANDSHAKE_DSCP 0x88

static inline uint32_t wg_get_le32(const void *p)
{
	const uint8_t *b = p;
	return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}
static inline void wg_put_le32(void *p, uint32_t v)
{
	uint8_t *b = p;
	b[0] = (uint8_t)v; b[1] = (uint8_t)(v >> 8); b[2] = (uint8_t)(v >> 16); b[3] = (uint8_t)(v >> 24);
}
static inline uint64_t wg_get_le64(const void *p)
{
	return (uint64_t)wg_get_le32(p) | (uint64_t)wg_get_le32((const uint8_t *)p + 4) << 32;
}
static inline void wg_put_le64(void *p, uint64_t v)
{
	wg_put_le32(p, (uint32_t)v);
	wg_put_le32((uint8_t *)p + 4, (uint32_t)(v >> 32));
}
#endif
