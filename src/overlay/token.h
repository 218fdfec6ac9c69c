/* Join tokens: what `zl-overlay token create` prints and `zl-overlay join --token` consumes. A token carries
 * everything a worker needs to reach and authenticate the leader (underlay endpoints and the leader's
 * WireGuard public key) plus a single-use credential (id + 32-byte secret) and an expiry. The leader keeps
 * only a record with the id and a hash of the secret, so its state files never hold a usable credential.
 * Pure: times are unix seconds passed in; the only side effect is randomness in zl_token_create.
 *
 * Text form: "zlj1." + base64url without padding of the binary payload (docs/join-protocol.md):
 *   version u8 (=1) | id[8] | secret[32] | leader_public_key[32] | expires_at u64 LE |
 *   endpoint count u8 (1..4) | per endpoint: length u8 (1..255) + "HOST:PORT" bytes |
 *   checksum[4] = first 4 bytes of BLAKE2b-128 of everything before it (catches copy-paste damage;
 *   the token's secrecy, not the checksum, is what protects it). */
#ifndef ZL_OVERLAY_TOKEN_H
#define ZL_OVERLAY_TOKEN_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

enum zl_token_sizes {
	ZL_TOKEN_ID_LEN = 8,
	ZL_TOKEN_ID_HEX_LEN = 2 * ZL_TOKEN_ID_LEN,
	ZL_TOKEN_SECRET_LEN = 32,
	ZL_TOKEN_KEY_LEN = 32,          /* the leader's X25519 / WireGuard public key */
	ZL_TOKEN_HASH_LEN = 32,         /* BLAKE2b-256 of the secret, what the leader stores */
	ZL_TOKEN_MAX_ENDPOINTS = 4,
	ZL_ENDPOINT_MAX_LEN = 255,      /* "HOST:PORT" or "[IPv6]:PORT", without the NUL */
	ZL_ENDPOINT_HOST_MAX = 253,     /* a DNS name; literals are shorter */
	ZL_TOKEN_TEXT_MAX = 1600,       /* longest possible text form, NUL included */
};

#define ZL_TOKEN_PREFIX "zlj1."
#define ZL_TOKEN_VERSION 1
#define ZL_TOKEN_DEFAULT_TTL (24u * 3600u)        /* as kubeadm: long enough to provision a batch */
#define ZL_TOKEN_MAX_TTL (365u * 24u * 3600u)

/* Every outcome of decoding or verifying a token. zl_token_strerror gives the user-facing message. */
enum zl_token_status {
	ZL_TOKEN_OK = 0,
	ZL_TOKEN_MALFORMED,            /* not a token, damaged, or inconsistent fields */
	ZL_TOKEN_UNSUPPORTED_VERSION,  /* a well-formed token of another format version */
	ZL_TOKEN_BAD_ENDPOINT,         /* an endpoint that is not HOST:PORT */
	ZL_TOKEN_EXPIRED,
	ZL_TOKEN_INVALID,              /* unknown id or wrong secret (deliberately indistinguishable) */
	ZL_TOKEN_REVOKED,
	ZL_TOKEN_USED,                 /* already used up (single use by default): a replay */
};

/* A decoded token (worker side) or a freshly created one (leader side). Holds the secret: wipe it with
 * zl_token_wipe when done. */
struct zl_token {
	uint8_t id[ZL_TOKEN_ID_LEN];
	uint8_t secret[ZL_TOKEN_SECRET_LEN];
	uint8_t leader_public_key[ZL_TOKEN_KEY_LEN];
	uint64_t expires_at;                    /* unix seconds; the token is refused from this second on */
	size_t n_endpoints;                     /* 1..ZL_TOKEN_MAX_ENDPOINTS */
	char endpoints[ZL_TOKEN_MAX_ENDPOINTS][ZL_ENDPOINT_MAX_LEN + 1];
};

/* What the leader persists per token. No secret: secret_hash is a one-way function of it. */
struct zl_token_record {
	uint8_t id[ZL_TOKEN_ID_LEN];
	uint8_t secret_hash[ZL_TOKEN_HASH_LEN];
	uint64_t created_at;
	uint64_t expires_at;
	uint32_t max_uses;                      /* 1 unless asked otherwise */
	uint32_t uses;
	bool revoked;
};

const char *zl_token_strerror(enum zl_token_status st);

/* Creates a token and its record: random id and secret, expiry now + ttl (1..ZL_TOKEN_MAX_TTL seconds),
 * single use. Endpoints must pass zl_endpoint_check. Returns ZL_TOKEN_OK, ZL_TOKEN_BAD_ENDPOINT or
 * ZL_TOKEN_MALFORMED (bad ttl, count or all-zero key); nothing is written on failure. */
enum zl_token_status zl_token_create(struct zl_token *tok, struct zl_token_record *rec,
				     const uint8_t leader_public_key[ZL_TOKEN_KEY_LEN],
				     const char *const *endpoints, size_t n_endpoints, uint64_t now, uint64_t ttl);

/* Writes the text form (NUL-terminated) into out; false when out is too small or tok is invalid. */
bool zl_token_encode(const struct zl_token *tok, char *out, size_t out_cap);

/* Parses and validates a token string (surrounding whitespace is ignored, as it is when pasting).
 * Checks, in order: shape and prefix, version, base64url, checksum, every field, then the expiry against
 * now. On failure *tok is wiped. */
enum zl_token_status zl_token_decode(const char *text, uint64_t now, struct zl_token *tok);

/* The stored hash of a secret, bound to the token id. */
void zl_token_hash_secret(uint8_t out[ZL_TOKEN_HASH_LEN], const uint8_t id[ZL_TOKEN_ID_LEN],
			  const uint8_t secret[ZL_TOKEN_SECRET_LEN]);

/* Checks a presented (id, secret) against one record: ZL_TOKEN_OK or INVALID (id or secret differ; both
 * compared in constant time), REVOKED, USED or EXPIRED — the state is revealed only to a caller who proved
 * the secret. Changes nothing: the caller marks the token used (zl_token_mark_used) and persists that in
 * the same atomic state write as the allocation, before answering. */
enum zl_token_status zl_token_verify(const struct zl_token_record *rec, const uint8_t id[ZL_TOKEN_ID_LEN],
				     const uint8_t secret[ZL_TOKEN_SECRET_LEN], uint64_t now);
/* The same over the leader's table: finds the record by id (every record is compared, so timing does not
 * depend on which one matches) and verifies it. *index receives the match when OK, REVOKED, USED or
 * EXPIRED; unknown ids give ZL_TOKEN_INVALID. */
enum zl_token_status zl_token_verify_table(const struct zl_token_record *recs, size_t n,
					   const uint8_t id[ZL_TOKEN_ID_LEN],
					   const uint8_t secret[ZL_TOKEN_SECRET_LEN], uint64_t now, size_t *index);
void zl_token_mark_used(struct zl_token_record *rec);

/* Token ids as 16 lowercase hex characters (`token revoke ID`, logs). parse accepts either case. */
void zl_token_id_format(const uint8_t id[ZL_TOKEN_ID_LEN], char out[ZL_TOKEN_ID_HEX_LEN + 1]);
bool zl_token_id_parse(const char *hex, uint8_t id[ZL_TOKEN_ID_LEN]);

/* Record <-> JSON for the leader's state: {"id", "secret_hash" (hex), "created_at", "expires_at",
 * "max_uses", "uses", "revoked"}. to_json returns a new object (NULL on allocation failure); from_json
 * validates every field and returns false (record untouched) on any problem. */
json_object *zl_token_record_to_json(const struct zl_token_record *rec);
bool zl_token_record_from_json(json_object *obj, struct zl_token_record *rec);

/* A --ttl value: a positive integer with an optional unit s, m, h or d ("90s", "30m", "24h", "7d";
 * no unit = seconds), at most ZL_TOKEN_MAX_TTL. */
bool zl_token_parse_ttl(const char *s, uint64_t *seconds);

void zl_token_wipe(struct zl_token *tok);

/* Underlay endpoints "HOST:PORT": HOST is a dotted-quad IPv4 address, a bracketed IPv6 address
 * ("[2001:db8::1]:51820", no zone) or a DNS name (letters, digits, hyphens, labels of 1..63, not ending
 * in a numeric label); PORT is 1..65535 in decimal without leading zeros. At most ZL_ENDPOINT_MAX_LEN. */
bool zl_endpoint_check(const char *s);
/* The same, splitting into host (brackets removed) and port. */
bool zl_endpoint_parse(const char *s, char host[ZL_ENDPOINT_HOST_MAX + 1], uint16_t *port);
#endif
