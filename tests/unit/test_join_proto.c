/* Join-protocol tests: a worker and a leader in memory (IPv4 and IPv6 clusters), every byte of a request
 * and of a response flipped, truncations, a request sealed for another leader, responses bound to the
 * token secret, the worker's ephemeral key and the very request, replays refused by the single-use token
 * with no state change, every token verdict and clock skew as authenticated refusals, clear refusals,
 * header checks, leader-side validation of what it sends, size limits. An independent implementation of
 * the documented key schedule (docs/join-protocol.md) builds requests and responses with arbitrary
 * contents, so malformed JSON behind valid crypto is exercised too. */
#include "test.h"

#include <stdint.h>

#include <sodium.h>

#include "overlay/join_proto.h"

#define NOW 1700000000ull

struct fixture {
	uint8_t leader_priv[32], leader_pub[32];
	uint8_t worker_priv[32], worker_pub[32];
	struct zl_token token;
	struct zl_token_record recs[2]; /* another token first, so lookup is exercised */
	struct zl_token other;
	struct zl_join_request req;
	struct zl_join_peer peers[3];
	struct zl_join_response resp;   /* a success for the worker */
};

static void x25519_keypair(uint8_t priv[32], uint8_t pub[32])
{
	randombytes_buf(priv, 32);
	crypto_scalarmult_base(pub, priv);
}

static void set_peer(struct zl_join_peer *p, const char *id, const char *host, const char *ep, const char *ip,
		     const char *slice)
{
	uint8_t priv[32];
	memset(p, 0, sizeof(*p));
	strcpy(p->node_id, id);
	strcpy(p->hostname, host);
	strcpy(p->endpoint, ep);
	strcpy(p->overlay_ip, ip);
	strcpy(p->slice, slice);
	x25519_keypair(priv, p->public_key);
}

static void setup(struct fixture *f, bool v6)
{
	const char *eps[] = { "192.0.2.1:51820" };
	memset(f, 0, sizeof(*f));
	x25519_keypair(f->leader_priv, f->leader_pub);
	x25519_keypair(f->worker_priv, f->worker_pub);
	CHECK(zl_token_create(&f->other, &f->recs[0], f->leader_pub, eps, 1, NOW, 3600) == ZL_TOKEN_OK);
	CHECK(zl_token_create(&f->token, &f->recs[1], f->leader_pub, eps, 1, NOW, 3600) == ZL_TOKEN_OK);

	memcpy(f->req.token_id, f->token.id, 8);
	memcpy(f->req.token_secret, f->token.secret, 32);
	memcpy(f->req.public_key, f->worker_pub, 32);
	strcpy(f->req.hostname, "worker-1");
	strcpy(f->req.endpoint, v6 ? "[2001:db8::2]:51820" : "192.0.2.2:51820");
	f->req.timestamp = NOW;

	f->resp.code = ZL_JOIN_OK;
	if (!v6) {
		set_peer(&f->peers[0], "leader", "leader", "192.0.2.1:51820", "10.200.0.1", "10.200.0.0/28");
		set_peer(&f->peers[1], "node-0-17", "worker-0", "192.0.2.3:51820", "10.200.0.17", "10.200.0.16/28");
		set_peer(&f->peers[2], "node-0-33", "", "", "10.200.0.33", "");
		strcpy(f->resp.node_id, "node-0-49");
		strcpy(f->resp.overlay_ip, "10.200.0.49");
		strcpy(f->resp.slice, "10.200.0.48/28");
		strcpy(f->resp.cluster_cidr, "10.200.0.0/16");
		strcpy(f->resp.leader_overlay_ip, "10.200.0.1");
	} else {
		set_peer(&f->peers[0], "leader", "leader", "[2001:db8::1]:51820", "fd00:200::1", "fd00:200::/64");
		set_peer(&f->peers[1], "n1", "w1", "w1.example:51820", "fd00:200:0:1::1", "fd00:200:0:1::/64");
		set_peer(&f->peers[2], "n2", "w2", "", "fd00:200:0:2::1", "fd00:200:0:2::/64");
		strcpy(f->resp.node_id, "n3");
		strcpy(f->resp.overlay_ip, "fd00:200:0:3::1");
		strcpy(f->resp.slice, "fd00:200:0:3::/64");
		strcpy(f->resp.cluster_cidr, "fd00:200::/48");
		strcpy(f->resp.leader_overlay_ip, "fd00:200::1");
	}
	f->resp.peers = f->peers;
	f->resp.n_peers = 3;
}

static bool requests_equal(const struct zl_join_request *a, const struct zl_join_request *b)
{
	return memcmp(a->token_id, b->token_id, 8) == 0 && memcmp(a->token_secret, b->token_secret, 32) == 0 &&
	       memcmp(a->public_key, b->public_key, 32) == 0 && strcmp(a->hostname, b->hostname) == 0 &&
	       strcmp(a->endpoint, b->endpoint) == 0 && a->timestamp == b->timestamp;
}

static bool peers_equal(const struct zl_join_peer *a, const struct zl_join_peer *b)
{
	return strcmp(a->node_id, b->node_id) == 0 && strcmp(a->hostname, b->hostname) == 0 &&
	       memcmp(a->public_key, b->public_key, 32) == 0 && strcmp(a->endpoint, b->endpoint) == 0 &&
	       strcmp(a->overlay_ip, b->overlay_ip) == 0 && strcmp(a->slice, b->slice) == 0;
}

static bool responses_equal(const struct zl_join_response *a, const struct zl_join_response *b)
{
	bool ok = a->code == b->code && strcmp(a->node_id, b->node_id) == 0 && strcmp(a->overlay_ip, b->overlay_ip) == 0 &&
		  strcmp(a->slice, b->slice) == 0 && strcmp(a->cluster_cidr, b->cluster_cidr) == 0 &&
		  strcmp(a->leader_overlay_ip, b->leader_overlay_ip) == 0 && a->n_peers == b->n_peers;
	for (size_t i = 0; ok && i < a->n_peers; i++)
		ok = peers_equal(&a->peers[i], &b->peers[i]);
	return ok;
}

/* The leader's whole handling of one request, as the daemon will do it: open, verify the token against the
 * table, allocate (here: the fixture's answer), mark used, answer. Returns the answer in *out. */
static enum zl_join_status leader_handle(struct fixture *f, const uint8_t *msg, size_t len, uint64_t now,
					 uint8_t **out, size_t *out_len)
{
	struct zl_join_leader_session ls;
	struct zl_join_request req;
	struct zl_join_response answer;
	enum zl_join_status st = zl_join_request_open(&ls, f->leader_priv, msg, len, now, &req);
	size_t idx = 0;

	if (st == ZL_JOIN_OK)
		st = zl_join_status_from_token(zl_token_verify_table(f->recs, 2, req.token_id, req.token_secret, now, &idx));
	sodium_memzero(&req, sizeof(req));
	if (st != ZL_JOIN_OK && !ls.can_reply) {
		*out = malloc(ZL_JOIN_REFUSAL_LEN);
		*out_len = zl_join_refusal_build(st, *out);
		return st;
	}
	if (st == ZL_JOIN_OK) {
		zl_token_mark_used(&f->recs[idx]);
		answer = f->resp;
	} else {
		memset(&answer, 0, sizeof(answer));
		answer.code = st;
	}
	CHECK(zl_join_response_build(&ls, &answer, out, out_len) == ZL_JOIN_OK);
	CHECK(sodium_is_zero((uint8_t *)&ls, sizeof(ls)));
	return st;
}

static void round_trip(bool v6)
{
	struct fixture f;
	struct zl_join_worker_session ws;
	struct zl_join_leader_session ls;
	struct zl_join_request got;
	struct zl_join_response resp;
	uint8_t msg[ZL_JOIN_MAX_REQUEST], *reply;
	size_t len, reply_len, total;

	setup(&f, v6);
	CHECK(zl_join_request_build(&ws, f.leader_pub, &f.req, msg, &len) == ZL_JOIN_OK);
	CHECK(ws.active && len < 600);
	CHECK(zl_join_msg_length(msg, false, &total) == ZL_JOIN_OK && total == len);
	/* Neither the secret nor the worker's identity is visible on the wire. */
	CHECK(memmem(msg, len, f.token.secret, 32) == NULL && memmem(msg, len, f.token.id, 8) == NULL);
	CHECK(memmem(msg, len, "worker-1", 8) == NULL);

	CHECK(zl_join_request_open(&ls, f.leader_priv, msg, len, NOW + 5, &got) == ZL_JOIN_OK);
	CHECK(ls.can_reply && requests_equal(&got, &f.req));
	CHECK_MEM_EQ(ls.worker_public_key, f.worker_pub, 32);
	CHECK(zl_join_response_build(&ls, &f.resp, &reply, &reply_len) == ZL_JOIN_OK);
	CHECK(zl_join_msg_length(reply, true, &total) == ZL_JOIN_OK && total == reply_len);
	CHECK(memmem(reply, reply_len, f.resp.overlay_ip, strlen(f.resp.overlay_ip)) == NULL);

	CHECK(zl_join_response_open(&ws, reply, reply_len, &resp) == ZL_JOIN_OK);
	CHECK(resp.code == ZL_JOIN_OK && resp.authenticated);
	CHECK(responses_equal(&resp, &f.resp));
	CHECK(sodium_is_zero((uint8_t *)&ws, sizeof(ws)));
	/* A session answers once. */
	{
		struct zl_join_response again;
		CHECK(zl_join_response_open(&ws, reply, reply_len, &again) == ZL_JOIN_ERR_STATE);
	}
	zl_join_response_free(&resp);
	free(reply);
}

static void test_round_trip_v4(void)
{
	round_trip(false);
}

static void test_round_trip_v6(void)
{
	round_trip(true);
}

/* The daemon's flow through leader_handle: a join, then the same request bytes again (a replay), which the
 * single-use token refuses without changing anything. */
static void test_replay_refused(void)
{
	struct fixture f;
	struct zl_join_worker_session ws, ws_copy;
	struct zl_join_response resp;
	struct zl_token_record before[2];
	uint8_t msg[ZL_JOIN_MAX_REQUEST], *reply;
	size_t len, reply_len;

	setup(&f, false);
	CHECK(zl_join_request_build(&ws, f.leader_pub, &f.req, msg, &len) == ZL_JOIN_OK);
	ws_copy = ws;
	CHECK(leader_handle(&f, msg, len, NOW, &reply, &reply_len) == ZL_JOIN_OK);
	CHECK(f.recs[1].uses == 1 && f.recs[0].uses == 0);
	CHECK(zl_join_response_open(&ws, reply, reply_len, &resp) == ZL_JOIN_OK && resp.code == ZL_JOIN_OK);
	zl_join_response_free(&resp);
	free(reply);

	memcpy(before, f.recs, sizeof(before));
	CHECK(leader_handle(&f, msg, len, NOW + 60, &reply, &reply_len) == ZL_JOIN_ERR_TOKEN_USED);
	CHECK(memcmp(before, f.recs, sizeof(before)) == 0);
	/* Only the original worker could read the refusal (the replayer lacks its ephemeral key). */
	CHECK(zl_join_response_open(&ws_copy, reply, reply_len, &resp) == ZL_JOIN_OK);
	CHECK(resp.code == ZL_JOIN_ERR_TOKEN_USED && resp.authenticated && resp.n_peers == 0);
	CHECK(strcmp(resp.message, "token: already used") == 0);
	free(reply);

	/* A fresh request with the used token is refused the same way. */
	CHECK(zl_join_request_build(&ws, f.leader_pub, &f.req, msg, &len) == ZL_JOIN_OK);
	CHECK(leader_handle(&f, msg, len, NOW + 61, &reply, &reply_len) == ZL_JOIN_ERR_TOKEN_USED);
	CHECK(zl_join_response_open(&ws, reply, reply_len, &resp) == ZL_JOIN_OK && resp.code == ZL_JOIN_ERR_TOKEN_USED);
	free(reply);
}

/* Every bad token is an authenticated refusal with the right code, and no record changes. */
static void test_token_refusals(void)
{
	enum { WRONG_SECRET, UNKNOWN_ID, EXPIRED, REVOKED, USED, SKEW_OLD, SKEW_NEW };
	static const struct {
		int what;
		enum zl_join_status want;
		const char *msg;
	} cases[] = {
		{ WRONG_SECRET, ZL_JOIN_ERR_TOKEN_INVALID, "token: invalid" },
		{ UNKNOWN_ID, ZL_JOIN_ERR_TOKEN_INVALID, "token: invalid" },
		{ EXPIRED, ZL_JOIN_ERR_TOKEN_EXPIRED, "token: expired" },
		{ REVOKED, ZL_JOIN_ERR_TOKEN_REVOKED, "token: revoked" },
		{ USED, ZL_JOIN_ERR_TOKEN_USED, "token: already used" },
		{ SKEW_OLD, ZL_JOIN_ERR_CLOCK_SKEW, "clocks" },
		{ SKEW_NEW, ZL_JOIN_ERR_CLOCK_SKEW, "clocks" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct fixture f;
		struct zl_join_worker_session ws;
		struct zl_join_response resp;
		struct zl_token_record before[2];
		uint8_t msg[ZL_JOIN_MAX_REQUEST], *reply;
		size_t len, reply_len;
		uint64_t now = NOW;

		setup(&f, false);
		switch (cases[i].what) {
		case WRONG_SECRET: f.req.token_secret[5] ^= 1; break;
		case UNKNOWN_ID: f.req.token_id[0] ^= 1; break;
		case EXPIRED: now = NOW + 3600, f.req.timestamp = now; break;
		case REVOKED: f.recs[1].revoked = true; break;
		case USED: f.recs[1].uses = 1; break;
		case SKEW_OLD: f.req.timestamp = NOW - ZL_JOIN_MAX_SKEW - 1; break;
		case SKEW_NEW: f.req.timestamp = NOW + ZL_JOIN_MAX_SKEW + 1; break;
		}
		memcpy(before, f.recs, sizeof(before));
		CHECK(zl_join_request_build(&ws, f.leader_pub, &f.req, msg, &len) == ZL_JOIN_OK);
		CHECK(leader_handle(&f, msg, len, now, &reply, &reply_len) == cases[i].want);
		CHECK(memcmp(before, f.recs, sizeof(before)) == 0);
		CHECK(zl_join_response_open(&ws, reply, reply_len, &resp) == ZL_JOIN_OK);
		CHECK(resp.code == cases[i].want && resp.authenticated && resp.peers == NULL);
		if (!strstr(resp.message, cases[i].msg)) {
			fprintf(stderr, "  case %zu: message '%s'\n", i, resp.message);
			CHECK(0);
		}
		free(reply);
	}
	/* The skew bound itself is accepted. */
	{
		struct fixture f;
		struct zl_join_worker_session ws;
		struct zl_join_leader_session ls;
		struct zl_join_request got;
		uint8_t msg[ZL_JOIN_MAX_REQUEST];
		size_t len;
		setup(&f, false);
		f.req.timestamp = NOW - ZL_JOIN_MAX_SKEW;
		CHECK(zl_join_request_build(&ws, f.leader_pub, &f.req, msg, &len) == ZL_JOIN_OK);
		CHECK(zl_join_request_open(&ls, f.leader_priv, msg, len, NOW, &got) == ZL_JOIN_OK);
		CHECK(zl_join_request_open(&ls, f.leader_priv, msg, len, NOW + 2 * ZL_JOIN_MAX_SKEW, &got) == ZL_JOIN_ERR_CLOCK_SKEW);
		CHECK(ls.can_reply && sodium_is_zero((uint8_t *)&got, sizeof(got)));
		zl_join_leader_session_wipe(&ls);
	}
}

static void test_request_every_byte(void)
{
	struct fixture f;
	struct zl_join_worker_session ws;
	uint8_t msg[ZL_JOIN_MAX_REQUEST], mod[ZL_JOIN_MAX_REQUEST];
	size_t len;
	int accepted = 0, replyable = 0, leaked = 0;
	static const uint8_t flips[] = { 0x01, 0x80, 0xff };

	setup(&f, false);
	CHECK(zl_join_request_build(&ws, f.leader_pub, &f.req, msg, &len) == ZL_JOIN_OK);
	for (size_t i = 0; i < len; i++)
		for (size_t b = 0; b < sizeof(flips); b++) {
			struct zl_join_leader_session ls;
			struct zl_join_request got;
			enum zl_join_status st;
			memcpy(mod, msg, len);
			mod[i] ^= flips[b];
			st = zl_join_request_open(&ls, f.leader_priv, mod, len, NOW, &got);
			accepted += st == ZL_JOIN_OK;
			replyable += ls.can_reply;
			leaked += !sodium_is_zero((uint8_t *)&got, sizeof(got));
			if (i >= ZL_JOIN_HEADER_LEN)
				CHECK(st == ZL_JOIN_ERR_AUTH || st == ZL_JOIN_ERR_BAD_KEY);
		}
	CHECK(accepted == 0 && replyable == 0 && leaked == 0);
	/* Truncated and extended copies. */
	for (size_t n = 0; n < len; n++) {
		struct zl_join_leader_session ls;
		struct zl_join_request got;
		CHECK(zl_join_request_open(&ls, f.leader_priv, msg, n, NOW, &got) != ZL_JOIN_OK);
	}
	{
		struct zl_join_leader_session ls;
		struct zl_join_request got;
		memcpy(mod, msg, len);
		mod[len] = 0;
		CHECK(zl_join_request_open(&ls, f.leader_priv, mod, len + 1, NOW, &got) == ZL_JOIN_ERR_MALFORMED);
		CHECK(zl_join_request_open(&ls, f.leader_priv, NULL, 0, NOW, &got) == ZL_JOIN_ERR_MALFORMED);
	}
}

static void test_request_for_other_leader(void)
{
	struct fixture f;
	struct zl_join_worker_session ws;
	struct zl_join_leader_session ls;
	struct zl_join_request got;
	uint8_t other_priv[32], other_pub[32], msg[ZL_JOIN_MAX_REQUEST], refusal[ZL_JOIN_REFUSAL_LEN];
	size_t len;
	struct zl_join_response resp;

	setup(&f, false);
	x25519_keypair(other_priv, other_pub);
	CHECK(zl_join_request_build(&ws, other_pub, &f.req, msg, &len) == ZL_JOIN_OK);
	CHECK(zl_join_request_open(&ls, f.leader_priv, msg, len, NOW, &got) == ZL_JOIN_ERR_AUTH);
	CHECK(!ls.can_reply && sodium_is_zero((uint8_t *)&got, sizeof(got)));
	/* The leader's only possible answer: a refusal in clear, shown as unauthenticated. */
	CHECK(zl_join_refusal_build(ZL_JOIN_ERR_AUTH, refusal) == ZL_JOIN_REFUSAL_LEN);
	CHECK(zl_join_response_open(&ws, refusal, sizeof(refusal), &resp) == ZL_JOIN_OK);
	CHECK(resp.code == ZL_JOIN_ERR_UNREADABLE && !resp.authenticated);
	CHECK(strstr(resp.message, "could not read") != NULL);
	/* The right leader reads it. */
	CHECK(zl_join_request_build(&ws, other_pub, &f.req, msg, &len) == ZL_JOIN_OK);
	CHECK(zl_join_request_open(&ls, other_priv, msg, len, NOW, &got) == ZL_JOIN_OK);
	zl_join_leader_session_wipe(&ls);
	zl_join_worker_session_wipe(&ws);
}

/* Builds a success reply to a fresh request; *ws is the worker's session, ready to open it. */
static void make_reply(struct fixture *f, struct zl_join_worker_session *ws, uint8_t **reply, size_t *reply_len)
{
	struct zl_join_leader_session ls;
	struct zl_join_request got;
	uint8_t msg[ZL_JOIN_MAX_REQUEST];
	size_t len;
	CHECK(zl_join_request_build(ws, f->leader_pub, &f->req, msg, &len) == ZL_JOIN_OK);
	CHECK(zl_join_request_open(&ls, f->leader_priv, msg, len, NOW, &got) == ZL_JOIN_OK);
	CHECK(zl_join_response_build(&ls, &f->resp, reply, reply_len) == ZL_JOIN_OK);
}

static void test_response_every_byte(void)
{
	struct fixture f;
	struct zl_join_worker_session ws;
	uint8_t *reply, *mod;
	size_t len;
	int accepted = 0;
	static const uint8_t flips[] = { 0x01, 0x80, 0xff };

	setup(&f, false);
	make_reply(&f, &ws, &reply, &len);
	mod = malloc(len + 1);
	for (size_t i = 0; i < len; i++)
		for (size_t b = 0; b < sizeof(flips); b++) {
			struct zl_join_worker_session copy = ws;
			struct zl_join_response resp;
			enum zl_join_status st;
			memcpy(mod, reply, len);
			mod[i] ^= flips[b];
			st = zl_join_response_open(&copy, mod, len, &resp);
			accepted += st == ZL_JOIN_OK;
			CHECK(resp.peers == NULL && resp.n_peers == 0);
			if (i >= ZL_JOIN_HEADER_LEN)
				CHECK(st == ZL_JOIN_ERR_AUTH || st == ZL_JOIN_ERR_BAD_KEY);
		}
	CHECK(accepted == 0);
	for (size_t n = 0; n < len; n += (n < 64 ? 1 : 97)) {
		struct zl_join_worker_session copy = ws;
		struct zl_join_response resp;
		CHECK(zl_join_response_open(&copy, reply, n, &resp) != ZL_JOIN_OK);
	}
	{
		struct zl_join_worker_session copy = ws;
		struct zl_join_response resp;
		CHECK(zl_join_response_open(&copy, reply, len, &resp) == ZL_JOIN_OK); /* the control */
		zl_join_response_free(&resp);
	}
	free(mod);
	free(reply);
	zl_join_worker_session_wipe(&ws);
}

/* Only the holder of the token secret, of the worker's ephemeral key, and of this very request reads the
 * answer. */
static void test_response_binding(void)
{
	struct fixture f;
	struct zl_join_worker_session ws, ws2, copy;
	struct zl_join_response resp;
	uint8_t *reply, *reply2;
	size_t len, len2;

	setup(&f, false);
	make_reply(&f, &ws, &reply, &len);
	copy = ws;
	copy.psk[0] ^= 1;
	CHECK(zl_join_response_open(&copy, reply, len, &resp) == ZL_JOIN_ERR_AUTH);
	copy = ws;
	memset(copy.psk, 0, 32);
	CHECK(zl_join_response_open(&copy, reply, len, &resp) == ZL_JOIN_ERR_AUTH);
	copy = ws;
	randombytes_buf(copy.e_priv, 32);
	CHECK(zl_join_response_open(&copy, reply, len, &resp) == ZL_JOIN_ERR_AUTH);
	copy = ws;
	copy.h[31] ^= 1;
	CHECK(zl_join_response_open(&copy, reply, len, &resp) == ZL_JOIN_ERR_AUTH);

	/* Another request's answer does not open under this session, even with the same token. */
	make_reply(&f, &ws2, &reply2, &len2);
	copy = ws;
	CHECK(zl_join_response_open(&copy, reply2, len2, &resp) == ZL_JOIN_ERR_AUTH);
	CHECK(zl_join_response_open(&ws2, reply2, len2, &resp) == ZL_JOIN_OK);
	zl_join_response_free(&resp);
	CHECK(zl_join_response_open(&ws, reply, len, &resp) == ZL_JOIN_OK);
	zl_join_response_free(&resp);
	free(reply);
	free(reply2);
}

/* ---- An independent implementation of the documented key schedule ---- */

static const char proto_name[] = "zl-overlay join v1: NKpsk2 X25519 ChaCha20-Poly1305 BLAKE2b";

static void t_hash(uint8_t h[32], const void *data, size_t len)
{
	uint8_t buf[32 + 4096];
	memcpy(buf, h, 32);
	memcpy(buf + 32, data, len);
	crypto_generichash(h, 32, buf, 32 + len, NULL, 0);
}

static void t_kdf(uint8_t ck[32], uint8_t *k, const uint8_t *ikm, size_t len)
{
	uint8_t prk[32], one = 1, t[33];
	crypto_generichash(prk, 32, ikm, len, ck, 32);
	crypto_generichash(ck, 32, &one, 1, prk, 32);
	memcpy(t, ck, 32);
	t[32] = 2;
	if (k)
		crypto_generichash(k, 32, t, 33, prk, 32);
}

/* A REQUEST with any plaintext (id || secret || JSON, or anything else); fills a worker session that the
 * library can then use to open the answer. e_priv_in NULL: random; e_pub_override: sent instead. */
static size_t raw_request(const uint8_t leader_pub[32], const void *plain, size_t plen, uint8_t *out,
			  struct zl_join_worker_session *ws, const uint8_t *e_pub_override)
{
	uint8_t dhv[32], k1[32];
	size_t total = 8 + 32 + plen + 16;
	memset(ws, 0, sizeof(*ws));
	crypto_generichash(ws->h, 32, (const uint8_t *)proto_name, strlen(proto_name), NULL, 0);
	memcpy(ws->ck, ws->h, 32);
	t_hash(ws->h, leader_pub, 32);
	x25519_keypair(ws->e_priv, ws->e_pub);
	out[0] = (uint8_t)total, out[1] = (uint8_t)(total >> 8), out[2] = out[3] = 0;
	out[4] = 1, out[5] = 1, out[6] = out[7] = 0;
	memcpy(out + 8, e_pub_override ? e_pub_override : ws->e_pub, 32);
	t_hash(ws->h, out, 40);
	if (crypto_scalarmult(dhv, ws->e_priv, leader_pub) != 0) /* es */
		memset(dhv, 0, 32);
	t_kdf(ws->ck, k1, dhv, 32);
	crypto_aead_chacha20poly1305_ietf_encrypt(out + 40, NULL, plain, plen, ws->h, 32, NULL,
						  (const uint8_t[12]){ 0 }, k1);
	t_hash(ws->h, out + 40, plen + 16);
	if (plen >= 40)
		memcpy(ws->psk, (const uint8_t *)plain + 8, 32);
	ws->active = true;
	return total;
}

/* A RESPONSE with any JSON text under a leader session. */
static uint8_t *raw_response(struct zl_join_leader_session *ls, const char *json, size_t *out_len)
{
	size_t jl = strlen(json), total = 8 + 32 + jl + 16;
	uint8_t *out = malloc(total), e_priv[32], dhv[32], k2[32];
	out[0] = (uint8_t)total, out[1] = (uint8_t)(total >> 8), out[2] = (uint8_t)(total >> 16), out[3] = 0;
	out[4] = 2, out[5] = 1, out[6] = out[7] = 0;
	x25519_keypair(e_priv, out + 8);
	t_hash(ls->h, out, 40);
	CHECK(crypto_scalarmult(dhv, e_priv, ls->e_remote) == 0);
	t_kdf(ls->ck, NULL, dhv, 32);
	t_kdf(ls->ck, k2, ls->psk, 32);
	crypto_aead_chacha20poly1305_ietf_encrypt(out + 40, NULL, (const uint8_t *)json, jl, ls->h, 32, NULL,
						  (const uint8_t[12]){ 0 }, k2);
	*out_len = total;
	return out;
}

static size_t cred_plain(const struct fixture *f, const char *json, uint8_t *plain)
{
	memcpy(plain, f->token.id, 8);
	memcpy(plain + 8, f->token.secret, 32);
	memcpy(plain + 40, json, strlen(json));
	return 40 + strlen(json);
}

static void test_independent_schedule(void)
{
	struct fixture f;
	struct zl_join_worker_session ws;
	struct zl_join_leader_session ls;
	struct zl_join_request got;
	struct zl_join_response resp;
	uint8_t msg[ZL_JOIN_MAX_REQUEST], plain[1024], *reply;
	char json[512], key[45];
	size_t len, reply_len;

	setup(&f, false);
	sodium_bin2base64(key, sizeof(key), f.worker_pub, 32, sodium_base64_VARIANT_ORIGINAL);
	snprintf(json, sizeof(json), "{\"public_key\":\"%s\",\"hostname\":\"worker-1\",\"timestamp\":%llu}", key,
		 (unsigned long long)NOW);
	len = raw_request(f.leader_pub, plain, cred_plain(&f, json, plain), msg, &ws, NULL);
	CHECK(zl_join_request_open(&ls, f.leader_priv, msg, len, NOW, &got) == ZL_JOIN_OK);
	CHECK(strcmp(got.hostname, "worker-1") == 0 && got.endpoint[0] == '\0' && got.timestamp == NOW);
	CHECK(memcmp(got.public_key, f.worker_pub, 32) == 0 && memcmp(got.token_secret, f.token.secret, 32) == 0);
	CHECK(zl_join_response_build(&ls, &f.resp, &reply, &reply_len) == ZL_JOIN_OK);
	/* The library's response opens under the independently derived session: the schedules agree. */
	CHECK(zl_join_response_open(&ws, reply, reply_len, &resp) == ZL_JOIN_OK && responses_equal(&resp, &f.resp));
	zl_join_response_free(&resp);
	free(reply);

	/* And the library's request opens under an independently derived leader side (via its session). */
	{
		struct zl_join_worker_session lib_ws;
		uint8_t h[32], ck[32], dhv[32], k1[32], out[1024];
		CHECK(zl_join_request_build(&lib_ws, f.leader_pub, &f.req, msg, &len) == ZL_JOIN_OK);
		crypto_generichash(h, 32, (const uint8_t *)proto_name, strlen(proto_name), NULL, 0);
		memcpy(ck, h, 32);
		t_hash(h, f.leader_pub, 32);
		t_hash(h, msg, 40);
		CHECK(crypto_scalarmult(dhv, f.leader_priv, msg + 8) == 0);
		t_kdf(ck, k1, dhv, 32);
		CHECK(crypto_aead_chacha20poly1305_ietf_decrypt(out, NULL, NULL, msg + 40, len - 40, h, 32,
								(const uint8_t[12]){ 0 }, k1) == 0);
		CHECK(memcmp(out, f.token.id, 8) == 0 && memcmp(out + 8, f.token.secret, 32) == 0 && out[40] == '{');
		CHECK(memcmp(lib_ws.ck, ck, 32) == 0);
		zl_join_worker_session_wipe(&lib_ws);
	}
}

/* Requests whose crypto is right but whose content is not: refused as malformed, with an authenticated
 * refusal possible (the worker can read why). */
static void test_request_bad_fields(void)
{
	static const char *const bad_json[] = {
		"{\"hostname\":\"w\",\"timestamp\":%T}",
		"{\"public_key\":\"%K\",\"timestamp\":%T}",
		"{\"public_key\":\"%K\",\"hostname\":\"w\"}",
		"{\"public_key\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\",\"hostname\":\"w\",\"timestamp\":%T}",
		"{\"public_key\":\"%K \",\"hostname\":\"w\",\"timestamp\":%T}",
		"{\"public_key\":\"short=\",\"hostname\":\"w\",\"timestamp\":%T}",
		"{\"public_key\":42,\"hostname\":\"w\",\"timestamp\":%T}",
		"{\"public_key\":\"%K\",\"hostname\":\"\",\"timestamp\":%T}",
		"{\"public_key\":\"%K\",\"hostname\":\"a.b\",\"timestamp\":%T}",
		"{\"public_key\":\"%K\",\"hostname\":\"-w\",\"timestamp\":%T}",
		"{\"public_key\":\"%K\",\"hostname\":\"w\\u0000x\",\"timestamp\":%T}",
		"{\"public_key\":\"%K\",\"hostname\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\",\"timestamp\":%T}",
		"{\"public_key\":\"%K\",\"hostname\":\"w\",\"endpoint\":\"nope\",\"timestamp\":%T}",
		"{\"public_key\":\"%K\",\"hostname\":\"w\",\"endpoint\":7,\"timestamp\":%T}",
		"{\"public_key\":\"%K\",\"hostname\":\"w\",\"timestamp\":\"%T\"}",
		"{\"public_key\":\"%K\",\"hostname\":\"w\",\"timestamp\":-5}",
		"{\"public_key\":\"%K\",\"hostname\":\"w\",\"timestamp\":1.5}",
		"{\"public_key\":\"%K\",\"hostname\":\"w\",\"timestamp\":%T} x",
		"{\"public_key\":\"%K\",\"hostname\":\"w\",\"timestamp\":%T}{}",
		"[\"%K\",\"%T\"]",
		"{\"public_key\":\"%K\",\"hostname\":\"w\",\"timestamp\":%T,}",
		"{\"public_key\":\"%K\",\"hostname\":\"w\xff\",\"timestamp\":%T}",
	};
	struct fixture f;
	char key[45];
	setup(&f, false);
	sodium_bin2base64(key, sizeof(key), f.worker_pub, 32, sodium_base64_VARIANT_ORIGINAL);
	for (size_t i = 0; i < sizeof(bad_json) / sizeof(bad_json[0]); i++) {
		char json[512] = "", ts[24];
		const char *p = bad_json[i];
		uint8_t plain[1024], msg[ZL_JOIN_MAX_REQUEST], *reply;
		struct zl_join_worker_session ws;
		struct zl_join_leader_session ls;
		struct zl_join_request got;
		struct zl_join_response resp;
		size_t len, reply_len;
		enum zl_join_status st;

		snprintf(ts, sizeof(ts), "%llu", (unsigned long long)NOW);
		for (; *p; p++) { /* expand %K and %T */
			if (p[0] == '%' && p[1] == 'K')
				strcat(json, key), p++;
			else if (p[0] == '%' && p[1] == 'T')
				strcat(json, ts), p++;
			else
				strncat(json, p, 1);
		}
		len = raw_request(f.leader_pub, plain, cred_plain(&f, json, plain), msg, &ws, NULL);
		st = zl_join_request_open(&ls, f.leader_priv, msg, len, NOW, &got);
		if (st != ZL_JOIN_ERR_MALFORMED)
			fprintf(stderr, "  case %zu: status %d\n", i, st);
		CHECK(st == ZL_JOIN_ERR_MALFORMED);
		CHECK(ls.can_reply && sodium_is_zero((uint8_t *)&got, sizeof(got)));
		{
			struct zl_join_response refusal = { .code = st };
			CHECK(zl_join_response_build(&ls, &refusal, &reply, &reply_len) == ZL_JOIN_OK);
		}
		CHECK(zl_join_response_open(&ws, reply, reply_len, &resp) == ZL_JOIN_OK);
		CHECK(resp.code == ZL_JOIN_ERR_MALFORMED && resp.authenticated);
		free(reply);
	}
	/* Unknown members are ignored (room for later versions). */
	{
		char json[512];
		uint8_t plain[1024], msg[ZL_JOIN_MAX_REQUEST];
		struct zl_join_worker_session ws;
		struct zl_join_leader_session ls;
		struct zl_join_request got;
		snprintf(json, sizeof(json), "{\"public_key\":\"%s\",\"hostname\":\"w\",\"timestamp\":%llu,\"x\":[1]}", key,
			 (unsigned long long)NOW);
		CHECK(zl_join_request_open(&ls, f.leader_priv, msg,
					   raw_request(f.leader_pub, plain, cred_plain(&f, json, plain), msg, &ws, NULL),
					   NOW, &got) == ZL_JOIN_OK);
		zl_join_leader_session_wipe(&ls);
	}
}

/* Low-order ephemeral or leader keys never key anything. */
static void test_low_order_keys(void)
{
	static const uint8_t one[32] = { 1 };
	struct fixture f;
	struct zl_join_worker_session ws;
	struct zl_join_leader_session ls;
	struct zl_join_request got;
	uint8_t plain[1024], msg[ZL_JOIN_MAX_REQUEST];
	size_t len;

	setup(&f, false);
	CHECK(zl_join_request_build(&ws, one, &f.req, msg, &len) == ZL_JOIN_ERR_BAD_KEY);
	CHECK(!ws.active);
	len = raw_request(f.leader_pub, plain, cred_plain(&f, "{}", plain), msg, &ws, one);
	CHECK(zl_join_request_open(&ls, f.leader_priv, msg, len, NOW, &got) == ZL_JOIN_ERR_BAD_KEY);
	CHECK(!ls.can_reply);
	/* A response whose ephemeral is low order. */
	{
		uint8_t *reply;
		size_t reply_len;
		struct zl_join_response resp;
		make_reply(&f, &ws, &reply, &reply_len);
		memcpy(reply + 8, one, 32);
		CHECK(zl_join_response_open(&ws, reply, reply_len, &resp) == ZL_JOIN_ERR_BAD_KEY);
		free(reply);
	}
}

/* Authenticated responses whose content is wrong are refused by the worker. */
static void test_response_bad_content(void)
{
	static const struct {
		const char *json;
		enum zl_join_status st;      /* of response_open */
		enum zl_join_status code;    /* resp.code when st is OK */
	} cases[] = {
		{ "{\"result\":\"err\",\"code\":\"token_expired\",\"message\":\"token: expired\"}", ZL_JOIN_OK, ZL_JOIN_ERR_TOKEN_EXPIRED },
		{ "{\"result\":\"err\",\"code\":\"something_new\",\"message\":\"later\"}", ZL_JOIN_OK, ZL_JOIN_ERR_REFUSED },
		{ "{\"result\":\"err\",\"code\":\"no_addresses\"}", ZL_JOIN_OK, ZL_JOIN_ERR_NO_ADDRESSES },
		{ "{\"result\":\"err\",\"code\":\"ok\",\"message\":\"x\"}", ZL_JOIN_ERR_MALFORMED, 0 },
		{ "{\"result\":\"err\",\"message\":\"x\"}", ZL_JOIN_ERR_MALFORMED, 0 },
		{ "{\"result\":\"err\",\"code\":\"busy\",\"message\":\"\\u001b[2Jgotcha\"}", ZL_JOIN_ERR_MALFORMED, 0 },
		{ "{\"result\":\"maybe\"}", ZL_JOIN_ERR_MALFORMED, 0 },
		{ "{}", ZL_JOIN_ERR_MALFORMED, 0 },
		{ "[]", ZL_JOIN_ERR_MALFORMED, 0 },
		{ "{\"result\":\"ok\"}", ZL_JOIN_ERR_MALFORMED, 0 },
		{ "{\"result\":\"ok\",\"node_id\":\"n\",\"overlay_ip\":\"10.200.0.49\",\"slice\":\"10.200.0.48/28\","
		  "\"cluster_cidr\":\"10.200.0.0/16\",\"leader_overlay_ip\":\"10.200.0.1\",\"peers\":[]}", ZL_JOIN_ERR_MALFORMED, 0 },
		{ "{\"result\":\"ok\",\"node_id\":\"n\",\"overlay_ip\":\"10.200.0.49\",\"slice\":\"10.200.0.48/28\","
		  "\"cluster_cidr\":\"10.200.0.0/16\",\"leader_overlay_ip\":\"10.200.0.1\",\"peers\":"
		  "[{\"node_id\":\"l\",\"public_key\":\"%P\",\"overlay_ip\":\"10.200.0.1\"}]}", ZL_JOIN_OK, ZL_JOIN_OK },
		/* the same with: the peer outside the cluster; the worker's own key; the worker's own address;
		 * the address outside the slice; the leader not listed; a slice not a network; families mixed */
		{ "{\"result\":\"ok\",\"node_id\":\"n\",\"overlay_ip\":\"10.200.0.49\",\"slice\":\"10.200.0.48/28\","
		  "\"cluster_cidr\":\"10.200.0.0/16\",\"leader_overlay_ip\":\"10.200.0.1\",\"peers\":"
		  "[{\"node_id\":\"l\",\"public_key\":\"%P\",\"overlay_ip\":\"10.200.0.1\"},"
		  "{\"node_id\":\"m\",\"public_key\":\"%Q\",\"overlay_ip\":\"10.201.0.1\"}]}", ZL_JOIN_ERR_MALFORMED, 0 },
		{ "{\"result\":\"ok\",\"node_id\":\"n\",\"overlay_ip\":\"10.200.0.49\",\"slice\":\"10.200.0.48/28\","
		  "\"cluster_cidr\":\"10.200.0.0/16\",\"leader_overlay_ip\":\"10.200.0.1\",\"peers\":"
		  "[{\"node_id\":\"l\",\"public_key\":\"%W\",\"overlay_ip\":\"10.200.0.1\"}]}", ZL_JOIN_ERR_MALFORMED, 0 },
		{ "{\"result\":\"ok\",\"node_id\":\"n\",\"overlay_ip\":\"10.200.0.49\",\"slice\":\"10.200.0.48/28\","
		  "\"cluster_cidr\":\"10.200.0.0/16\",\"leader_overlay_ip\":\"10.200.0.1\",\"peers\":"
		  "[{\"node_id\":\"l\",\"public_key\":\"%P\",\"overlay_ip\":\"10.200.0.1\"},"
		  "{\"node_id\":\"m\",\"public_key\":\"%Q\",\"overlay_ip\":\"10.200.0.49\"}]}", ZL_JOIN_ERR_MALFORMED, 0 },
		{ "{\"result\":\"ok\",\"node_id\":\"n\",\"overlay_ip\":\"10.200.0.99\",\"slice\":\"10.200.0.48/28\","
		  "\"cluster_cidr\":\"10.200.0.0/16\",\"leader_overlay_ip\":\"10.200.0.1\",\"peers\":"
		  "[{\"node_id\":\"l\",\"public_key\":\"%P\",\"overlay_ip\":\"10.200.0.1\"}]}", ZL_JOIN_ERR_MALFORMED, 0 },
		{ "{\"result\":\"ok\",\"node_id\":\"n\",\"overlay_ip\":\"10.200.0.49\",\"slice\":\"10.200.0.48/28\","
		  "\"cluster_cidr\":\"10.200.0.0/16\",\"leader_overlay_ip\":\"10.200.0.1\",\"peers\":"
		  "[{\"node_id\":\"l\",\"public_key\":\"%P\",\"overlay_ip\":\"10.200.0.2\"}]}", ZL_JOIN_ERR_MALFORMED, 0 },
		{ "{\"result\":\"ok\",\"node_id\":\"n\",\"overlay_ip\":\"10.200.0.49\",\"slice\":\"10.200.0.49/28\","
		  "\"cluster_cidr\":\"10.200.0.0/16\",\"leader_overlay_ip\":\"10.200.0.1\",\"peers\":"
		  "[{\"node_id\":\"l\",\"public_key\":\"%P\",\"overlay_ip\":\"10.200.0.1\"}]}", ZL_JOIN_ERR_MALFORMED, 0 },
		{ "{\"result\":\"ok\",\"node_id\":\"n\",\"overlay_ip\":\"fd00::1\",\"slice\":\"fd00::/64\","
		  "\"cluster_cidr\":\"10.200.0.0/16\",\"leader_overlay_ip\":\"10.200.0.1\",\"peers\":"
		  "[{\"node_id\":\"l\",\"public_key\":\"%P\",\"overlay_ip\":\"10.200.0.1\"}]}", ZL_JOIN_ERR_MALFORMED, 0 },
		/* duplicate peer keys; a bad peer endpoint; a peer slice not containing its address */
		{ "{\"result\":\"ok\",\"node_id\":\"n\",\"overlay_ip\":\"10.200.0.49\",\"slice\":\"10.200.0.48/28\","
		  "\"cluster_cidr\":\"10.200.0.0/16\",\"leader_overlay_ip\":\"10.200.0.1\",\"peers\":"
		  "[{\"node_id\":\"l\",\"public_key\":\"%P\",\"overlay_ip\":\"10.200.0.1\"},"
		  "{\"node_id\":\"m\",\"public_key\":\"%P\",\"overlay_ip\":\"10.200.0.2\"}]}", ZL_JOIN_ERR_MALFORMED, 0 },
		{ "{\"result\":\"ok\",\"node_id\":\"n\",\"overlay_ip\":\"10.200.0.49\",\"slice\":\"10.200.0.48/28\","
		  "\"cluster_cidr\":\"10.200.0.0/16\",\"leader_overlay_ip\":\"10.200.0.1\",\"peers\":"
		  "[{\"node_id\":\"l\",\"public_key\":\"%P\",\"overlay_ip\":\"10.200.0.1\",\"endpoint\":\"x:0\"}]}", ZL_JOIN_ERR_MALFORMED, 0 },
		{ "{\"result\":\"ok\",\"node_id\":\"n\",\"overlay_ip\":\"10.200.0.49\",\"slice\":\"10.200.0.48/28\","
		  "\"cluster_cidr\":\"10.200.0.0/16\",\"leader_overlay_ip\":\"10.200.0.1\",\"peers\":"
		  "[{\"node_id\":\"l\",\"public_key\":\"%P\",\"overlay_ip\":\"10.200.0.1\",\"slice\":\"10.200.0.16/28\"}]}", ZL_JOIN_ERR_MALFORMED, 0 },
		{ "{\"result\":\"ok\",\"node_id\":\"n n\",\"overlay_ip\":\"10.200.0.49\",\"slice\":\"10.200.0.48/28\","
		  "\"cluster_cidr\":\"10.200.0.0/16\",\"leader_overlay_ip\":\"10.200.0.1\",\"peers\":"
		  "[{\"node_id\":\"l\",\"public_key\":\"%P\",\"overlay_ip\":\"10.200.0.1\"}]}", ZL_JOIN_ERR_MALFORMED, 0 },
	};
	struct fixture f;
	char pk[45], qk[45], wk[45];
	uint8_t pub[32], priv[32];

	setup(&f, false);
	x25519_keypair(priv, pub);
	sodium_bin2base64(pk, sizeof(pk), pub, 32, sodium_base64_VARIANT_ORIGINAL);
	x25519_keypair(priv, pub);
	sodium_bin2base64(qk, sizeof(qk), pub, 32, sodium_base64_VARIANT_ORIGINAL);
	sodium_bin2base64(wk, sizeof(wk), f.worker_pub, 32, sodium_base64_VARIANT_ORIGINAL);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char json[2048] = "";
		struct zl_join_worker_session ws;
		struct zl_join_leader_session ls;
		struct zl_join_request got;
		struct zl_join_response resp;
		uint8_t msg[ZL_JOIN_MAX_REQUEST], *reply;
		size_t len, reply_len;
		enum zl_join_status st;

		for (const char *p = cases[i].json; *p; p++) {
			if (p[0] == '%' && (p[1] == 'P' || p[1] == 'Q' || p[1] == 'W'))
				strcat(json, p[1] == 'P' ? pk : p[1] == 'Q' ? qk : wk), p++;
			else
				strncat(json, p, 1);
		}
		CHECK(zl_join_request_build(&ws, f.leader_pub, &f.req, msg, &len) == ZL_JOIN_OK);
		CHECK(zl_join_request_open(&ls, f.leader_priv, msg, len, NOW, &got) == ZL_JOIN_OK);
		reply = raw_response(&ls, json, &reply_len);
		st = zl_join_response_open(&ws, reply, reply_len, &resp);
		if (st != cases[i].st || (st == ZL_JOIN_OK && resp.code != cases[i].code)) {
			fprintf(stderr, "  case %zu: status %d code %d\n", i, st, resp.code);
			CHECK(0);
		}
		if (st == ZL_JOIN_OK)
			CHECK(resp.authenticated && (resp.code == ZL_JOIN_OK) == (resp.message[0] == '\0'));
		else
			CHECK(resp.peers == NULL && !resp.authenticated);
		if (st == ZL_JOIN_OK && resp.code == ZL_JOIN_ERR_NO_ADDRESSES)
			CHECK(strcmp(resp.message, "join: no available addresses") == 0);
		zl_join_response_free(&resp);
		zl_join_leader_session_wipe(&ls);
		free(reply);
	}
}

/* The leader refuses to send an inconsistent answer, and wipes the session either way. */
static void test_leader_validates_answer(void)
{
	enum { OUT_OF_SLICE, SLICE_OUT, SLICE_NOT_NET, PEER_OUT, DUP_KEYS, PEER_IS_WORKER, NO_PEERS, NO_LEADER,
	       BAD_EP, BAD_NODE_ID, LOCAL_CODE, BAD_MESSAGE, BAD_HOST, CODE_99, N_CASES };
	for (int c = 0; c < N_CASES; c++) {
		struct fixture f;
		struct zl_join_worker_session ws;
		struct zl_join_leader_session ls;
		struct zl_join_request got;
		struct zl_join_response r;
		uint8_t msg[ZL_JOIN_MAX_REQUEST], *reply = (uint8_t *)1;
		size_t len, reply_len = 1;

		setup(&f, false);
		r = f.resp;
		switch (c) {
		case OUT_OF_SLICE: strcpy(r.overlay_ip, "10.200.0.70"); break;
		case SLICE_OUT: strcpy(r.slice, "10.201.0.48/28"); break;
		case SLICE_NOT_NET: strcpy(r.slice, "10.200.0.49/28"); break;
		case PEER_OUT: strcpy(f.peers[2].overlay_ip, "192.168.0.1"); break;
		case DUP_KEYS: memcpy(f.peers[2].public_key, f.peers[1].public_key, 32); break;
		case PEER_IS_WORKER: memcpy(f.peers[2].public_key, f.worker_pub, 32); break;
		case NO_PEERS: r.n_peers = 0; break;
		case NO_LEADER: strcpy(r.leader_overlay_ip, "10.200.0.2"); break;
		case BAD_EP: strcpy(f.peers[1].endpoint, "192.0.2.3"); break;
		case BAD_NODE_ID: strcpy(f.peers[1].node_id, "a b"); break;
		case LOCAL_CODE: memset(&r, 0, sizeof(r)), r.code = ZL_JOIN_ERR_AUTH; break;
		case BAD_MESSAGE: memset(&r, 0, sizeof(r)), r.code = ZL_JOIN_ERR_BUSY, strcpy(r.message, "a\nb"); break;
		case BAD_HOST: strcpy(f.peers[1].hostname, "a_b"); break;
		case CODE_99: memset(&r, 0, sizeof(r)), r.code = (enum zl_join_status)99; break;
		}
		CHECK(zl_join_request_build(&ws, f.leader_pub, &f.req, msg, &len) == ZL_JOIN_OK);
		CHECK(zl_join_request_open(&ls, f.leader_priv, msg, len, NOW, &got) == ZL_JOIN_OK);
		if (zl_join_response_build(&ls, &r, &reply, &reply_len) != ZL_JOIN_ERR_STATE) {
			fprintf(stderr, "  case %d accepted\n", c);
			CHECK(0);
		}
		CHECK(reply == NULL && reply_len == 0);
		CHECK(sodium_is_zero((uint8_t *)&ls, sizeof(ls)));
		/* A wiped session cannot answer again. */
		CHECK(zl_join_response_build(&ls, &f.resp, &reply, &reply_len) == ZL_JOIN_ERR_STATE);
		zl_join_worker_session_wipe(&ws);
	}
}

static void test_worker_validates_request(void)
{
	struct fixture f;
	struct zl_join_worker_session ws;
	struct zl_join_request r;
	uint8_t msg[ZL_JOIN_MAX_REQUEST], zero[32] = { 0 };
	size_t len;

	setup(&f, false);
	r = f.req, strcpy(r.hostname, "");
	CHECK(zl_join_request_build(&ws, f.leader_pub, &r, msg, &len) == ZL_JOIN_ERR_STATE);
	r = f.req, strcpy(r.hostname, "bad_name");
	CHECK(zl_join_request_build(&ws, f.leader_pub, &r, msg, &len) == ZL_JOIN_ERR_STATE);
	r = f.req, strcpy(r.endpoint, "1.2.3.4");
	CHECK(zl_join_request_build(&ws, f.leader_pub, &r, msg, &len) == ZL_JOIN_ERR_STATE);
	r = f.req, memset(r.public_key, 0, 32);
	CHECK(zl_join_request_build(&ws, f.leader_pub, &r, msg, &len) == ZL_JOIN_ERR_STATE);
	CHECK(zl_join_request_build(&ws, zero, &f.req, msg, &len) == ZL_JOIN_ERR_STATE);
	CHECK(!ws.active);
	/* The longest legal request fits the limit. */
	r = f.req;
	memset(r.hostname, 'h', 63), r.hostname[63] = '\0';
	memset(r.endpoint, 'e', 249), strcpy(r.endpoint + 240, ".x:65535");
	for (int i = 60; i < 240; i += 61)
		r.endpoint[i] = '.';
	CHECK(strlen(r.endpoint) == 248 && zl_endpoint_check(r.endpoint));
	CHECK(zl_join_request_build(&ws, f.leader_pub, &r, msg, &len) == ZL_JOIN_OK && len < ZL_JOIN_MAX_REQUEST);
	{
		struct zl_join_leader_session ls;
		struct zl_join_request got;
		CHECK(zl_join_request_open(&ls, f.leader_priv, msg, len, NOW, &got) == ZL_JOIN_OK && requests_equal(&got, &r));
		zl_join_leader_session_wipe(&ls);
	}
	{
		struct zl_join_response resp;
		struct zl_join_worker_session idle;
		uint8_t refusal[ZL_JOIN_REFUSAL_LEN];
		memset(&idle, 0, sizeof(idle));
		zl_join_refusal_build(ZL_JOIN_ERR_BUSY, refusal);
		CHECK(zl_join_response_open(&idle, refusal, sizeof(refusal), &resp) == ZL_JOIN_ERR_STATE);
	}
}

static void test_headers(void)
{
	static const struct {
		uint8_t hdr[8];
		bool from_leader;
		enum zl_join_status st;
		size_t total;
	} cases[] = {
		{ { 98, 0, 0, 0, 1, 1, 0, 0 }, false, ZL_JOIN_OK, 98 },
		{ { 97, 0, 0, 0, 1, 1, 0, 0 }, false, ZL_JOIN_ERR_MALFORMED, 0 },      /* below the minimum */
		{ { 0, 16, 0, 0, 1, 1, 0, 0 }, false, ZL_JOIN_OK, 4096 },
		{ { 1, 16, 0, 0, 1, 1, 0, 0 }, false, ZL_JOIN_ERR_TOO_LARGE, 0 },
		{ { 0xff, 0xff, 0xff, 0xff, 1, 1, 0, 0 }, false, ZL_JOIN_ERR_TOO_LARGE, 0 },
		{ { 98, 0, 0, 0, 1, 2, 0, 0 }, false, ZL_JOIN_ERR_VERSION, 0 },
		{ { 98, 0, 0, 0, 1, 0, 0, 0 }, false, ZL_JOIN_ERR_VERSION, 0 },
		{ { 98, 0, 0, 0, 1, 1, 1, 0 }, false, ZL_JOIN_ERR_MALFORMED, 0 },
		{ { 98, 0, 0, 0, 1, 1, 0, 1 }, false, ZL_JOIN_ERR_MALFORMED, 0 },
		{ { 98, 0, 0, 0, 1, 1, 0, 0 }, true, ZL_JOIN_ERR_MALFORMED, 0 },       /* a request from the leader */
		{ { 98, 0, 0, 0, 2, 1, 0, 0 }, false, ZL_JOIN_ERR_MALFORMED, 0 },      /* a response to the leader */
		{ { 98, 0, 0, 0, 4, 1, 0, 0 }, true, ZL_JOIN_ERR_MALFORMED, 0 },
		{ { 58, 0, 0, 0, 2, 1, 0, 0 }, true, ZL_JOIN_OK, 58 },
		{ { 57, 0, 0, 0, 2, 1, 0, 0 }, true, ZL_JOIN_ERR_MALFORMED, 0 },
		{ { 0, 0, 0x80, 0, 2, 1, 0, 0 }, true, ZL_JOIN_OK, 8u << 20 },
		{ { 1, 0, 0x80, 0, 2, 1, 0, 0 }, true, ZL_JOIN_ERR_TOO_LARGE, 0 },
		{ { 10, 0, 0, 0, 3, 1, 0, 0 }, true, ZL_JOIN_OK, 10 },
		{ { 11, 0, 0, 0, 3, 1, 0, 0 }, true, ZL_JOIN_ERR_MALFORMED, 0 },
		{ { 9, 0, 0, 0, 3, 1, 0, 0 }, true, ZL_JOIN_ERR_MALFORMED, 0 },
		{ { 10, 0, 0, 0, 3, 1, 0, 0 }, false, ZL_JOIN_ERR_MALFORMED, 0 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t total = 0;
		enum zl_join_status st = zl_join_msg_length(cases[i].hdr, cases[i].from_leader, &total);
		if (st != cases[i].st || (st == ZL_JOIN_OK && total != cases[i].total)) {
			fprintf(stderr, "  header case %zu: %d %zu\n", i, st, total);
			CHECK(0);
		}
	}
}

static void test_refusals_in_clear(void)
{
	static const struct {
		enum zl_join_status sent, seen;
	} cases[] = {
		{ ZL_JOIN_ERR_AUTH, ZL_JOIN_ERR_UNREADABLE },   { ZL_JOIN_ERR_BAD_KEY, ZL_JOIN_ERR_UNREADABLE },
		{ ZL_JOIN_ERR_TOO_LARGE, ZL_JOIN_ERR_MALFORMED }, { ZL_JOIN_ERR_VERSION, ZL_JOIN_ERR_VERSION },
		{ ZL_JOIN_ERR_MALFORMED, ZL_JOIN_ERR_MALFORMED }, { ZL_JOIN_ERR_BUSY, ZL_JOIN_ERR_BUSY },
		{ ZL_JOIN_ERR_NOMEM, ZL_JOIN_ERR_INTERNAL },     { ZL_JOIN_OK, ZL_JOIN_ERR_INTERNAL },
	};
	struct fixture f;
	setup(&f, false);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct zl_join_worker_session ws;
		struct zl_join_response resp;
		uint8_t msg[ZL_JOIN_MAX_REQUEST], refusal[ZL_JOIN_REFUSAL_LEN];
		size_t len;
		CHECK(zl_join_request_build(&ws, f.leader_pub, &f.req, msg, &len) == ZL_JOIN_OK);
		zl_join_refusal_build(cases[i].sent, refusal);
		CHECK(zl_join_response_open(&ws, refusal, sizeof(refusal), &resp) == ZL_JOIN_OK);
		CHECK(resp.code == cases[i].seen && !resp.authenticated && resp.peers == NULL);
		CHECK(strcmp(resp.message, zl_join_strerror(cases[i].seen)) == 0);
		CHECK(sodium_is_zero((uint8_t *)&ws, sizeof(ws)));
	}
	/* Codes from the wire: 0 is not a refusal; unknown numbers are a generic refusal. */
	{
		uint8_t r[ZL_JOIN_REFUSAL_LEN] = { 10, 0, 0, 0, 3, 1, 0, 0, 0, 0 };
		struct zl_join_worker_session ws;
		struct zl_join_response resp;
		uint8_t msg[ZL_JOIN_MAX_REQUEST];
		size_t len;
		CHECK(zl_join_request_build(&ws, f.leader_pub, &f.req, msg, &len) == ZL_JOIN_OK);
		CHECK(zl_join_response_open(&ws, r, sizeof(r), &resp) == ZL_JOIN_ERR_MALFORMED);
		r[8] = 0x40, r[9] = 0x01;
		CHECK(zl_join_request_build(&ws, f.leader_pub, &f.req, msg, &len) == ZL_JOIN_OK);
		CHECK(zl_join_response_open(&ws, r, sizeof(r), &resp) == ZL_JOIN_OK && resp.code == ZL_JOIN_ERR_REFUSED);
		r[8] = 100, r[9] = 0; /* a local-only code is not a wire code */
		CHECK(zl_join_request_build(&ws, f.leader_pub, &f.req, msg, &len) == ZL_JOIN_OK);
		CHECK(zl_join_response_open(&ws, r, sizeof(r), &resp) == ZL_JOIN_OK && resp.code == ZL_JOIN_ERR_REFUSED);
	}
}

static void test_codes(void)
{
	CHECK(strcmp(zl_join_code_name(ZL_JOIN_ERR_TOKEN_USED), "token_used") == 0);
	CHECK(zl_join_code_name(ZL_JOIN_OK) == NULL && zl_join_code_name(ZL_JOIN_ERR_AUTH) == NULL);
	CHECK(strcmp(zl_join_strerror((enum zl_join_status)77), "join: unknown error") == 0);
	CHECK(strcmp(zl_join_strerror(ZL_JOIN_ERR_TOKEN_EXPIRED), zl_token_strerror(ZL_TOKEN_EXPIRED)) == 0);
	CHECK(strcmp(zl_join_strerror(ZL_JOIN_ERR_TOKEN_REVOKED), zl_token_strerror(ZL_TOKEN_REVOKED)) == 0);
	CHECK(strcmp(zl_join_strerror(ZL_JOIN_ERR_TOKEN_USED), zl_token_strerror(ZL_TOKEN_USED)) == 0);
	CHECK(zl_join_status_from_token(ZL_TOKEN_OK) == ZL_JOIN_OK);
	CHECK(zl_join_status_from_token(ZL_TOKEN_INVALID) == ZL_JOIN_ERR_TOKEN_INVALID);
	CHECK(zl_join_status_from_token(ZL_TOKEN_MALFORMED) == ZL_JOIN_ERR_TOKEN_INVALID);
	CHECK(zl_join_status_from_token(ZL_TOKEN_USED) == ZL_JOIN_ERR_TOKEN_USED);
	CHECK(zl_join_hostname_valid("a") && zl_join_hostname_valid("Worker-01") && !zl_join_hostname_valid("a.b") &&
	      !zl_join_hostname_valid("a-") && !zl_join_hostname_valid(NULL));
}

/* A large cluster: thousands of peers round-trip; a list beyond 8 MiB is refused by the leader. */
static void test_large_peer_lists(void)
{
	struct fixture f;
	struct zl_join_worker_session ws;
	struct zl_join_leader_session ls;
	struct zl_join_request got;
	struct zl_join_response r, resp;
	struct zl_join_peer *peers;
	uint8_t msg[ZL_JOIN_MAX_REQUEST], *reply;
	size_t len, reply_len, n = 4095;

	setup(&f, false);
	peers = calloc(20000, sizeof(*peers));
	peers[0] = f.peers[0];
	for (size_t i = 1; i < n; i++) {
		struct zl_join_peer *p = &peers[i];
		snprintf(p->node_id, sizeof(p->node_id), "node-%zu", i);
		snprintf(p->overlay_ip, sizeof(p->overlay_ip), "10.200.%zu.%zu", (i * 16) / 256, (i * 16) % 256 + 1);
		snprintf(p->slice, sizeof(p->slice), "10.200.%zu.%zu/28", (i * 16) / 256, (i * 16) % 256);
		snprintf(p->endpoint, sizeof(p->endpoint), "192.0.%zu.%zu:51820", i / 256, i % 256);
		memcpy(p->public_key, &i, sizeof(i));
		p->public_key[31] = 0x42;
	}
	r = f.resp;
	strcpy(r.overlay_ip, "10.201.0.1"), strcpy(r.slice, "10.201.0.0/28"), strcpy(r.cluster_cidr, "10.200.0.0/15");
	r.peers = peers;
	r.n_peers = n;
	CHECK(zl_join_request_build(&ws, f.leader_pub, &f.req, msg, &len) == ZL_JOIN_OK);
	CHECK(zl_join_request_open(&ls, f.leader_priv, msg, len, NOW, &got) == ZL_JOIN_OK);
	CHECK(zl_join_response_build(&ls, &r, &reply, &reply_len) == ZL_JOIN_OK);
	CHECK(zl_join_response_open(&ws, reply, reply_len, &resp) == ZL_JOIN_OK && responses_equal(&resp, &r));
	zl_join_response_free(&resp);
	free(reply);

	/* 20000 peers with long DNS endpoints: beyond 8 MiB. */
	for (size_t i = 1; i < 20000; i++) {
		struct zl_join_peer *p = &peers[i];
		snprintf(p->node_id, sizeof(p->node_id), "node-%zu", i);
		snprintf(p->overlay_ip, sizeof(p->overlay_ip), "10.200.%zu.%zu", i / 250, i % 250 + 2);
		p->slice[0] = '\0';
		memset(p->endpoint, 'a', 250);
		for (int k = 50; k < 250; k += 51)
			p->endpoint[k] = '.';
		strcpy(p->endpoint + 249, ":1");
		memset(p->hostname, 'h', 63);
		memcpy(p->public_key, &i, sizeof(i));
		p->public_key[31] = 0x42;
	}
	CHECK(zl_endpoint_check(peers[1].endpoint));
	r.n_peers = 20000;
	CHECK(zl_join_request_build(&ws, f.leader_pub, &f.req, msg, &len) == ZL_JOIN_OK);
	CHECK(zl_join_request_open(&ls, f.leader_priv, msg, len, NOW, &got) == ZL_JOIN_OK);
	CHECK(zl_join_response_build(&ls, &r, &reply, &reply_len) == ZL_JOIN_ERR_TOO_LARGE && reply == NULL);
	zl_join_worker_session_wipe(&ws);
	free(peers);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	TEST_RUN(test_round_trip_v4);
	TEST_RUN(test_round_trip_v6);
	TEST_RUN(test_replay_refused);
	TEST_RUN(test_token_refusals);
	TEST_RUN(test_request_every_byte);
	TEST_RUN(test_request_for_other_leader);
	TEST_RUN(test_response_every_byte);
	TEST_RUN(test_response_binding);
	TEST_RUN(test_independent_schedule);
	TEST_RUN(test_request_bad_fields);
	TEST_RUN(test_low_order_keys);
	TEST_RUN(test_response_bad_content);
	TEST_RUN(test_leader_validates_answer);
	TEST_RUN(test_worker_validates_request);
	TEST_RUN(test_headers);
	TEST_RUN(test_refusals_in_clear);
	TEST_RUN(test_codes);
	TEST_RUN(test_large_peer_lists);
	return TEST_SUMMARY();
}
