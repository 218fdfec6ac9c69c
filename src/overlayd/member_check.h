/* The membership check: how a worker that cannot reach the membership service through the tunnel asks
 * the leader over the underlay (TCP to the join port) whether it is still a member. It exists for one
 * case: a worker removed while its daemon was down or disconnected. The leader has already dropped its
 * WireGuard peer, so the tunnel (and the "removed" message) can never reach it again.
 *
 * Both sides know each other's static X25519 keys (the worker's WireGuard key pair and the leader's
 * public key from the state; the leader's own key pair), so one static-static DH authenticates both
 * directions without any new secret:
 *   k = BLAKE2b-256("zl-overlay member-check v1" || DH(worker, leader) || worker_pub || leader_pub)
 *   worker -> leader  CHECK   header(type 16) | worker_pub[32] | nonce[32] | MAC(k, "check" || all before)
 *   leader -> worker  STATUS  header(type 17) | status u8 | MAC(k, "status" || nonce || all before)
 * MAC = keyed BLAKE2b-256. Only the holder of the worker's private key can ask for that key (the leader
 * answers nothing else), and only the leader can write an answer the worker accepts; the answer is bound
 * to the worker's fresh nonce, so an old answer cannot be replayed. Replaying a CHECK gets the replayer
 * only an answer it cannot use. The header is the join protocol's (length u32 LE | type | version 1 |
 * 0 u16), with types the join protocol does not use, so both share the join listener. Pure functions
 * over byte buffers; the daemon does the I/O. */
#ifndef OD_MEMBER_CHECK_H
#define OD_MEMBER_CHECK_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
	OD_MCHECK_KEY_LEN = 32,
	OD_MCHECK_NONCE_LEN = 32,
	OD_MCHECK_MAC_LEN = 32,
	OD_MCHECK_HEADER_LEN = 8,
	OD_MCHECK_MSG_CHECK = 16,
	OD_MCHECK_MSG_STATUS = 17,
	OD_MCHECK_REQUEST_LEN = OD_MCHECK_HEADER_LEN + OD_MCHECK_KEY_LEN + OD_MCHECK_NONCE_LEN + OD_MCHECK_MAC_LEN,
	OD_MCHECK_STATUS_LEN = OD_MCHECK_HEADER_LEN + 1 + OD_MCHECK_MAC_LEN,
};

enum od_mcheck_status {
	OD_MCHECK_MEMBER = 1,
	OD_MCHECK_NOT_MEMBER = 2,        /* removed (or left): the worker retires */
};

/* One check, either side: the shared key and the worker's nonce. Secret: wiped by the calls that end
 * it, or with od_mcheck_session_wipe. */
struct od_mcheck_session {
	uint8_t key[OD_MCHECK_KEY_LEN];
	uint8_t nonce[OD_MCHECK_NONCE_LEN];
};

void od_mcheck_session_wipe(struct od_mcheck_session *s);
/* True when the header (its first 5 bytes at least) announces a CHECK. */
bool od_mcheck_is_check(const uint8_t hdr[OD_MCHECK_HEADER_LEN]);

/* Worker: a fresh nonce and the CHECK for the leader with that public key. false on an unusable key. */
bool od_mcheck_request_build(struct od_mcheck_session *s, const uint8_t worker_priv[OD_MCHECK_KEY_LEN],
			     const uint8_t worker_pub[OD_MCHECK_KEY_LEN], const uint8_t leader_pub[OD_MCHECK_KEY_LEN],
			     uint8_t out[OD_MCHECK_REQUEST_LEN]);
/* Leader: checks a CHECK (len bytes); true with the asking key in worker_pub and the session to answer
 * with. false (session wiped) when it is malformed or its MAC does not verify. */
bool od_mcheck_request_open(struct od_mcheck_session *s, const uint8_t leader_priv[OD_MCHECK_KEY_LEN],
			    const uint8_t leader_pub[OD_MCHECK_KEY_LEN], const uint8_t *msg, size_t len,
			    uint8_t worker_pub[OD_MCHECK_KEY_LEN]);
/* Leader: the STATUS answer; wipes the session. */
void od_mcheck_status_build(struct od_mcheck_session *s, enum od_mcheck_status status,
			    uint8_t out[OD_MCHECK_STATUS_LEN]);
/* Worker: the status of an authentic answer to this session's CHECK, or 0 when the answer is malformed,
 * forged or for another check. Wipes the session. */
int od_mcheck_status_open(struct od_mcheck_session *s, const uint8_t *msg, size_t len);
#endif
