/* The overlay node's persistent state: one versioned JSON file (format: docs/state-format.md).
 *
 * Loading is strict: every field is type-checked and validated (keys decode to 32 bytes, addresses and
 * prefixes parse, addresses lie inside their range, no duplicate peers, tokens or allocations), and any
 * problem gives one message naming the field, e.g. "state: peers[3].public_key: not a valid base64
 * key". Saving validates with the same rules first, so we never write a file we would refuse to read,
 * then writes atomically (atomic_file.h) with mode 0600.
 *
 * Addresses and prefixes are kept as validated text in their canonical form (inet_ntop's, prefixes
 * with their host bits zero); this module does not depend on the allocators, which interpret them.
 * Ownership: a struct zl_state owns its arrays; zl_state_free releases them and wipes the private key. */
#ifndef ZL_STATE_H
#define ZL_STATE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "overlay/names.h"

enum {
	ZL_STATE_VERSION = 1,          /* the only format version this code reads and writes */
	ZL_STATE_FILE_MODE = 0600,
	ZL_STATE_DIR_MODE = 0700,
	ZL_KEY_LEN = 32,
	ZL_KEY_B64_LEN = 44,           /* as `wg genkey` prints: standard base64 with one '=' */
	ZL_ADDR_STRLEN = 46,           /* INET6_ADDRSTRLEN */
	ZL_CIDR_STRLEN = 50,           /* address + "/128" + NUL */
	ZL_NODE_ID_SIZE = 128,         /* 1..127 bytes of printable ASCII, no space */
	ZL_ENDPOINT_SIZE = 256,        /* HOST:PORT, at most 255 bytes (as join tokens carry them) */
	ZL_STATE_TOKEN_ID_LEN = 8,     /* written as 16 hex digits */
	ZL_STATE_TOKEN_HASH_LEN = 32,  /* written as 64 hex digits */
	ZL_STATE_DEFAULT_KEEPALIVE = 25,
};
#define ZL_STATE_FILE_NAME "state.json"

struct zl_state_config {
	char cidr[ZL_CIDR_STRLEN];           /* overlay range, e.g. "10.200.0.0/16" */
	char node_ip[ZL_ADDR_STRLEN];        /* this node's overlay address, inside cidr */
	char interface[ZL_IFNAME_SIZE];
	uint16_t port;                       /* WireGuard UDP port, 1..65535 */
	uint8_t private_key[ZL_KEY_LEN];     /* secret: never logged, wiped by zl_state_free */
	uint8_t public_key[ZL_KEY_LEN];      /* must be X25519(private_key) */
	bool is_leader;
	int64_t created_at;                  /* Unix seconds */
	char slice_cidr[ZL_CIDR_STRLEN];     /* this node's slice, inside cidr; "" = none */
	char hostname[ZL_HOSTNAME_SIZE];     /* lower-case DNS label; "" = none */
	char endpoint[ZL_ENDPOINT_SIZE];     /* advertised underlay HOST:PORT; "" = none */
	char node_id[ZL_NODE_ID_SIZE];
};

struct zl_state_peer {
	char node_id[ZL_NODE_ID_SIZE];
	uint8_t public_key[ZL_KEY_LEN];
	char endpoint[ZL_ENDPOINT_SIZE];     /* HOST:PORT; "" = unknown (the peer dials us) */
	char overlay_ip[ZL_ADDR_STRLEN];     /* inside config.cidr */
	uint16_t keepalive;                  /* persistent keepalive in seconds, 0 = off */
	char hostname[ZL_HOSTNAME_SIZE];     /* "" = none */
	char slice_cidr[ZL_CIDR_STRLEN];     /* "" = none (allowed IPs are then overlay_ip alone) */
};

/* Snapshot of the address allocator (leader): its range and every address handed out. */
struct zl_state_addr {
	char s[ZL_ADDR_STRLEN];
};
struct zl_state_ip_allocator {
	bool present;
	char cidr[ZL_CIDR_STRLEN];
	struct zl_state_addr *allocated;
	size_t n_allocated;
};

/* Snapshot of the slice allocator (leader): [node id, slice] pairs, each exactly a /slice_prefix, and
 * [service name, subnet] pairs, each a /P with cluster prefix < P <= slice_prefix. No two overlap. */
struct zl_state_slice {
	char name[ZL_NODE_ID_SIZE];          /* node id, or service name (same rules) */
	char cidr[ZL_CIDR_STRLEN];
};
struct zl_state_slice_allocator {
	bool present;
	char cluster_cidr[ZL_CIDR_STRLEN];
	unsigned slice_prefix;               /* longer than cluster_cidr's, at most 32 / 128 */
	struct zl_state_slice *assigned;     /* node slices */
	size_t n_assigned;
	struct zl_state_slice *services;     /* service subnets */
	size_t n_services;
};

/* A join token issued by the leader: field for field the token module's struct zl_token_record, and
 * the same JSON, so records convert by plain assignment. Only a hash of the secret is stored. */
struct zl_state_token {
	uint8_t id[ZL_STATE_TOKEN_ID_LEN];
	uint8_t secret_hash[ZL_STATE_TOKEN_HASH_LEN];
	uint64_t created_at;                 /* Unix seconds, at most expires_at */
	uint64_t expires_at;                 /* Unix seconds, > 0 */
	uint32_t max_uses;                   /* >= 1 */
	uint32_t uses;
	bool revoked;
};

/* Service records registered for DNS (zl-overlay dns add), cluster-wide: the leader's list is the truth
 * and is pushed to every member with the peer list; each node keeps the last list it got. Identity of a
 * record: (name, kind, addr) for addresses, (name, kind, target, port) for SRV; adding an existing one
 * updates its TTL, priority/weight and check. */
enum {
	ZL_DNS_NAME_SIZE = 254,             /* relative name text, at most 253 bytes */
	ZL_DNS_PATH_SIZE = 256,             /* HTTP check path, "/" + at most 254 bytes */
	ZL_DNS_DEFAULT_TTL = 30,
	ZL_DNS_MAX_TTL = 86400,
	ZL_DNS_MAX_RECORDS = 4096,
	ZL_CHECK_DEFAULT_INTERVAL = 5,      /* seconds */
	ZL_CHECK_DEFAULT_THRESHOLD = 2,     /* consecutive failures before an address leaves DNS */
};
enum zl_dns_kind { ZL_DNS_ADDR, ZL_DNS_SRV };
enum zl_check_kind { ZL_CHECK_NONE, ZL_CHECK_TCP, ZL_CHECK_HTTP };

/* A health check of one registered address (issue 6): TCP connect to addr:port, or HTTP GET of
 * http://addr:port/path expecting a 2xx status. */
struct zl_state_dns_check {
	enum zl_check_kind kind;
	uint16_t port;                       /* 1..65535 unless kind is NONE */
	char path[ZL_DNS_PATH_SIZE];         /* HTTP only: starts with '/', printable ASCII, no space */
	uint32_t interval_s;                 /* 1..3600 */
	uint32_t threshold;                  /* 1..100 consecutive failures */
};

struct zl_state_dns_record {
	char name[ZL_DNS_NAME_SIZE];         /* relative to the zone, lower case, labels of [a-z0-9_-]
						(1..63 bytes each), e.g. "web", "db.web", "_http._tcp.web" */
	enum zl_dns_kind kind;
	char addr[ZL_ADDR_STRLEN];           /* ADDR: IPv4 (A) or IPv6 (AAAA), canonical text */
	uint16_t priority, weight, port;     /* SRV */
	char target[ZL_DNS_NAME_SIZE];       /* SRV: relative name, or absolute with a trailing '.' */
	uint32_t ttl;                        /* 0..ZL_DNS_MAX_TTL */
	char owner[ZL_NODE_ID_SIZE];         /* node id that registered it (informational) */
	struct zl_state_dns_check check;     /* ADDR only; kind NONE for SRV */
};

struct zl_state {
	struct zl_state_config config;
	struct zl_state_peer *peers;
	size_t n_peers;
	struct zl_state_ip_allocator ip_allocator;
	struct zl_state_slice_allocator slice_allocator;
	struct zl_state_token *tokens;
	size_t n_tokens;
	struct zl_state_dns_record *dns;     /* "dns" in the file; absent = none */
	size_t n_dns;
};

/* Reads and validates path into *out. Returns 0; or -errno of the read (-ENOENT: no state yet, -EFBIG:
 * over 16 MiB), -EINVAL for bad content, -ENOTSUP for a newer format version, -ENOMEM; the message is in
 * err (never containing key material). On failure *out is left all zero (zl_state_free on it is a no-op),
 * so free any previous content of *out before. */
int zl_state_load(const char *path, struct zl_state *out, char *err, size_t errlen);

/* Validates s (same rules as load), then writes it atomically, mode 0600, creating the directory (and
 * missing parents) with mode 0700. Returns 0, -EINVAL if s is invalid (zl_state_validate says why), or
 * the -errno of the write. Addresses are written in canonical form. */
int zl_state_save(const char *path, const struct zl_state *s);

/* The checks of load on an in-memory state. True if valid; otherwise false and the reason in err. */
bool zl_state_validate(const struct zl_state *s, char *err, size_t errlen);

/* Releases the arrays, wipes the private key and leaves *s all zero. */
void zl_state_free(struct zl_state *s);

/* One service record on its own: the rules load applies to each "dns" entry, and its JSON form (as in
 * the file), which is also how records travel on the membership channel and in the control API.
 * Messages name the field relative to the record ("ttl: must be 0 to 86400"), without "state: ".
 * from_json checks types, unknown fields and values, and writes the address in canonical form; to_json
 * returns NULL on allocation failure. */
struct json_object;
bool zl_state_dns_validate(const struct zl_state_dns_record *r, char *err, size_t errlen);
struct json_object *zl_state_dns_to_json(const struct zl_state_dns_record *r);
bool zl_state_dns_from_json(struct json_object *o, struct zl_state_dns_record *out, char *err, size_t errlen);

/* Keys as `wg` writes them. encode writes 44 chars + NUL; decode accepts exactly a canonical 44-char
 * standard base64 encoding of 32 bytes. */
void zl_state_key_encode(const uint8_t key[ZL_KEY_LEN], char out[ZL_KEY_B64_LEN + 1]);
bool zl_state_key_decode(const char *b64, uint8_t key[ZL_KEY_LEN]);
#endif
