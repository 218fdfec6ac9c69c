/* The join protocol: how a worker holding a join token obtains its overlay address, slice and peer list
 * from the leader over the underlay (TCP to the leader's WireGuard port number). Pure message builders
 * and parsers over byte buffers; the daemon and the CLI do the I/O. Full specification, crypto steps,
 * threat model and error codes: docs/join-protocol.md.
 *
 * In short, a Noise-NK-shaped exchange with the token secret as a pre-shared key:
 *   worker -> leader  REQUEST  header | e_w | AEAD(k1, id || secret || JSON{public_key, hostname, ...})
 *                     k1 from DH(e_w, S_leader): only the leader named in the token can read it.
 *   leader -> worker  RESPONSE header | e_l | AEAD(k2, JSON{address, slice, cluster, peers} or refusal)
 *                     k2 from the transcript, DH(e_l, e_w) and the token secret: only the real leader
 *                     can write it and only the worker that sent the request can read it.
 *   leader -> worker  REFUSAL  header | code (u16, clear) when the request could not be read at all.
 *
 * Every message starts with an 8-byte header: total length u32 LE | type u8 | version u8 (1) | 0 u16.
 * Lifetimes: a worker session lives from zl_join_request_build to zl_join_response_open, a leader session
 * from zl_join_request_open to zl_join_response_build; both hold secrets and are wiped by those calls'
 * completion (or by the _wipe functions when abandoned). */
#ifndef ZL_OVERLAY_JOIN_PROTO_H
#define ZL_OVERLAY_JOIN_PROTO_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "overlay/cidr.h"
#include "overlay/token.h"

enum zl_join_sizes {
	ZL_JOIN_KEY_LEN = 32,
	ZL_JOIN_HEADER_LEN = 8,
	ZL_JOIN_TAG_LEN = 16,
	ZL_JOIN_VERSION = 1,
	ZL_JOIN_MAX_REQUEST = 4096,             /* read from anyone before authentication: kept small */
	ZL_JOIN_MAX_RESPONSE = 8 << 20,         /* room for tens of thousands of peers */
	ZL_JOIN_REFUSAL_LEN = ZL_JOIN_HEADER_LEN + 2,
	ZL_JOIN_HOSTNAME_MAX = 63,              /* one RFC 1123 label */
	ZL_JOIN_NODE_ID_MAX = 127,
	ZL_JOIN_MESSAGE_MAX = 255,
	ZL_JOIN_MAX_PEERS = 65536,
	ZL_JOIN_MAX_SKEW = 600,                 /* seconds between the worker's and the leader's clocks */
};

enum zl_join_msg_type {
	ZL_JOIN_MSG_REQUEST = 1,
	ZL_JOIN_MSG_RESPONSE = 2,
	ZL_JOIN_MSG_REFUSAL = 3,
};

/* Outcomes. Values 1..63 are refusal codes that travel on the wire (as numbers in a REFUSAL, as names
 * such as "token_expired" in a RESPONSE); values from 100 are local errors of this node. */
enum zl_join_status {
	ZL_JOIN_OK = 0,
	ZL_JOIN_ERR_MALFORMED = 1,        /* a message or field that does not parse or validate */
	ZL_JOIN_ERR_VERSION = 2,          /* another protocol version */
	ZL_JOIN_ERR_UNREADABLE = 3,       /* the leader could not decrypt the request */
	ZL_JOIN_ERR_TOKEN_INVALID = 4,    /* unknown token id or wrong secret */
	ZL_JOIN_ERR_TOKEN_EXPIRED = 5,
	ZL_JOIN_ERR_TOKEN_REVOKED = 6,
	ZL_JOIN_ERR_TOKEN_USED = 7,       /* single-use token already used: includes replays */
	ZL_JOIN_ERR_CLOCK_SKEW = 8,
	ZL_JOIN_ERR_KEY_IN_USE = 9,       /* the worker's public key already belongs to a member */
	ZL_JOIN_ERR_NO_ADDRESSES = 10,    /* the cluster has no free address or slice */
	ZL_JOIN_ERR_BUSY = 11,            /* too many joins at once: retry later */
	ZL_JOIN_ERR_INTERNAL = 12,        /* the leader failed (e.g. could not persist its state) */
	ZL_JOIN_ERR_REFUSED = 13,         /* a refusal code this version does not know */
	ZL_JOIN_WIRE_CODE_MAX = 63,

	ZL_JOIN_ERR_TOO_LARGE = 100,      /* a message above its size limit */
	ZL_JOIN_ERR_AUTH,                 /* AEAD failure: tampered, or not from/for the expected party */
	ZL_JOIN_ERR_BAD_KEY,              /* a low-order or otherwise unusable public key */
	ZL_JOIN_ERR_STATE,                /* a session used out of order, or an invalid argument */
	ZL_JOIN_ERR_NOMEM,
};

/* A user-facing message: "token: expired", "join: no available addresses", ... */
const char *zl_join_strerror(enum zl_join_status st);
/* "token_expired" etc. for wire codes, NULL for local errors. */
const char *zl_join_code_name(enum zl_join_status st);
/* The refusal a token verdict becomes (ZL_TOKEN_OK -> ZL_JOIN_OK). */
enum zl_join_status zl_join_status_from_token(enum zl_token_status st);

/* What the worker asks for. */
struct zl_join_request {
	uint8_t token_id[ZL_TOKEN_ID_LEN];
	uint8_t token_secret[ZL_TOKEN_SECRET_LEN];
	uint8_t public_key[ZL_JOIN_KEY_LEN];          /* the worker's WireGuard public key */
	char hostname[ZL_JOIN_HOSTNAME_MAX + 1];      /* one DNS label */
	char endpoint[ZL_ENDPOINT_MAX_LEN + 1];       /* "" when the worker advertises none */
	uint64_t timestamp;                           /* the worker's clock, unix seconds */
};

struct zl_join_peer {
	char node_id[ZL_JOIN_NODE_ID_MAX + 1];
	char hostname[ZL_JOIN_HOSTNAME_MAX + 1];      /* may be "" */
	uint8_t public_key[ZL_JOIN_KEY_LEN];
	char endpoint[ZL_ENDPOINT_MAX_LEN + 1];       /* may be "": not directly reachable */
	char overlay_ip[ZL_IP_STRLEN];
	char slice[ZL_PREFIX_STRLEN];                 /* may be "": allowed IPs are then overlay_ip alone */
};

/* The leader's answer. code == ZL_JOIN_OK: the remaining fields describe the new member; otherwise
 * message explains the refusal. authenticated is false for a REFUSAL message, which anyone on the path
 * could have forged: show it, never act on it beyond giving up. */
struct zl_join_response {
	enum zl_join_status code;
	bool authenticated;
	char message[ZL_JOIN_MESSAGE_MAX + 1];
	char node_id[ZL_JOIN_NODE_ID_MAX + 1];        /* the id the leader gave this worker */
	char overlay_ip[ZL_IP_STRLEN];
	char slice[ZL_PREFIX_STRLEN];
	char cluster_cidr[ZL_PREFIX_STRLEN];
	char leader_overlay_ip[ZL_IP_STRLEN];
	size_t n_peers;
	struct zl_join_peer *peers;                   /* the leader first; opened responses own it (malloc) */
};
/* Frees the peers of an opened response and clears it. */
void zl_join_response_free(struct zl_join_response *r);

struct zl_join_worker_session {
	uint8_t ck[32], h[32];
	uint8_t e_priv[ZL_JOIN_KEY_LEN], e_pub[ZL_JOIN_KEY_LEN];
	uint8_t psk[ZL_TOKEN_SECRET_LEN];
	uint8_t public_key[ZL_JOIN_KEY_LEN];          /* the worker's own, to reject a peer list naming it */
	bool active;
};

struct zl_join_leader_session {
	uint8_t ck[32], h[32];
	uint8_t e_remote[ZL_JOIN_KEY_LEN];
	uint8_t psk[ZL_TOKEN_SECRET_LEN];             /* the secret the worker presented */
	uint8_t worker_public_key[ZL_JOIN_KEY_LEN];
	bool can_reply;                               /* an authenticated RESPONSE is possible */
};

void zl_join_worker_session_wipe(struct zl_join_worker_session *s);
void zl_join_leader_session_wipe(struct zl_join_leader_session *s);

/* From the first ZL_JOIN_HEADER_LEN bytes of a message on the stream: its total length, after checking
 * the version, the reserved bytes, that the type is one this side may receive (from_leader: RESPONSE or
 * REFUSAL; else REQUEST) and the size limit of that type. Lets the reader refuse before buffering. */
enum zl_join_status zl_join_msg_length(const uint8_t hdr[ZL_JOIN_HEADER_LEN], bool from_leader, size_t *total);

/* Worker: validates req and writes the REQUEST for the leader whose static public key the token carries
 * into out (*out_len bytes). Starts the session (fresh ephemeral key). */
enum zl_join_status zl_join_request_build(struct zl_join_worker_session *s,
					  const uint8_t leader_public_key[ZL_JOIN_KEY_LEN],
					  const struct zl_join_request *req, uint8_t out[ZL_JOIN_MAX_REQUEST],
					  size_t *out_len);

/* Leader: decrypts and validates a REQUEST with its static private key and checks the worker's clock
 * against now. OK: *req is filled (it holds the secret: wipe it) and the session can reply. Failure: *req
 * is wiped; if s->can_reply the leader answers with an authenticated refusal via zl_join_response_build
 * (the request decrypted but a field or the clock was wrong), else with zl_join_refusal_build. Never
 * changes any state: the token check, allocation and persistence are the caller's. */
enum zl_join_status zl_join_request_open(struct zl_join_leader_session *s,
					 const uint8_t leader_private_key[ZL_JOIN_KEY_LEN], const uint8_t *msg,
					 size_t len, uint64_t now, struct zl_join_request *req);

/* Leader: encrypts resp (validated first: a success needs consistent addresses, a refusal a wire code)
 * into a new buffer *out (free() it) of *out_len bytes. The session is wiped whatever the outcome. */
enum zl_join_status zl_join_response_build(struct zl_join_leader_session *s, const struct zl_join_response *resp,
					   uint8_t **out, size_t *out_len);

/* Leader: a REFUSAL in clear, for requests that could not be read (no key to answer under). Returns the
 * length (ZL_JOIN_REFUSAL_LEN). */
size_t zl_join_refusal_build(enum zl_join_status code, uint8_t out[ZL_JOIN_REFUSAL_LEN]);

/* Worker: opens the leader's RESPONSE (authenticated) or REFUSAL (not). OK means the message was valid:
 * the verdict is resp->code. Any other status means the message itself is to be distrusted (tampered,
 * malformed, not from the leader in the token). The session is wiped whatever the outcome; on failure
 * *resp is cleared. */
enum zl_join_status zl_join_response_open(struct zl_join_worker_session *s, const uint8_t *msg, size_t len,
					  struct zl_join_response *resp);

/* A node hostname as the protocol carries it: one RFC 1123 label (1..63 of [A-Za-z0-9-], no leading or
 * trailing '-'). */
bool zl_join_hostname_valid(const char *s);
#endif
