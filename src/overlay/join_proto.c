/* The join protocol's messages: a Noise-NK-shaped key exchange bound to the leader's static key from the
 * token, with the token secret mixed in as a PSK before the response. Specification and threat model:
 * docs/join-protocol.md. Tokens: e (worker ephemeral), es (DH with the leader's static key), e (leader
 * ephemeral), ee, psk. */
#include "overlay/join_proto.h"
#include "overlay/state.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <sodium.h>

static const char protocol_name[] = "zl-overlay join v1: NKpsk2 X25519 ChaCha20-Poly1305 BLAKE2b";

enum {
	HASH_LEN = 32,
	CRED_LEN = ZL_TOKEN_ID_LEN + ZL_TOKEN_SECRET_LEN, /* id || secret, the request's binary prefix */
	EPH_OFF = ZL_JOIN_HEADER_LEN,
	BODY_OFF = ZL_JOIN_HEADER_LEN + ZL_JOIN_KEY_LEN,
	OVERHEAD = BODY_OFF + ZL_JOIN_TAG_LEN,
	MIN_REQUEST = OVERHEAD + CRED_LEN + 2,            /* "{}" at least */
	MIN_RESPONSE = OVERHEAD + 2,
	REQUEST_JSON_MAX = 1024,
};

_Static_assert(OVERHEAD + CRED_LEN + REQUEST_JSON_MAX <= ZL_JOIN_MAX_REQUEST, "request JSON must fit");

/* ---- Status codes ---- */

struct status_info {
	enum zl_join_status st;
	const char *name;   /* wire name, NULL for local errors */
	const char *text;
};

static const struct status_info statuses[] = {
	{ ZL_JOIN_OK, "ok", "join: ok" },
	{ ZL_JOIN_ERR_MALFORMED, "malformed", "join: malformed message" },
	{ ZL_JOIN_ERR_VERSION, "unsupported_version", "join: unsupported protocol version" },
	{ ZL_JOIN_ERR_UNREADABLE, "unreadable",
	  "join: the leader could not read the request (token from another leader, or a damaged message)" },
	{ ZL_JOIN_ERR_TOKEN_INVALID, "token_invalid", "token: invalid" },
	{ ZL_JOIN_ERR_TOKEN_EXPIRED, "token_expired", "token: expired" },
	{ ZL_JOIN_ERR_TOKEN_REVOKED, "token_revoked", "token: revoked" },
	{ ZL_JOIN_ERR_TOKEN_USED, "token_used", "token: already used" },
	{ ZL_JOIN_ERR_CLOCK_SKEW, "clock_skew", "join: the clocks of this node and the leader differ by more than 10 minutes" },
	{ ZL_JOIN_ERR_KEY_IN_USE, "key_in_use", "join: this node's public key already belongs to a cluster member" },
	{ ZL_JOIN_ERR_NO_ADDRESSES, "no_addresses", "join: no available addresses" },
	{ ZL_JOIN_ERR_BUSY, "busy", "join: the leader is busy, retry later" },
	{ ZL_JOIN_ERR_INTERNAL, "internal", "join: internal error on the leader" },
	{ ZL_JOIN_ERR_REFUSED, "refused", "join: refused by the leader" },
	{ ZL_JOIN_ERR_TOO_LARGE, NULL, "join: message too large" },
	{ ZL_JOIN_ERR_AUTH, NULL, "join: message failed authentication (not from the leader in the token, or damaged)" },
	{ ZL_JOIN_ERR_BAD_KEY, NULL, "join: invalid public key" },
	{ ZL_JOIN_ERR_STATE, NULL, "join: protocol used out of order or with invalid arguments" },
	{ ZL_JOIN_ERR_NOMEM, NULL, "join: out of memory" },
};

static const struct status_info *status_find(enum zl_join_status st)
{
	for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++)
		if (statuses[i].st == st)
			return &statuses[i];
	return NULL;
}

const char *zl_join_strerror(enum zl_join_status st)
{
	const struct status_info *i = status_find(st);
	return i ? i->text : "join: unknown error";
}

const char *zl_join_code_name(enum zl_join_status st)
{
	const struct status_info *i = status_find(st);
	return i && st != ZL_JOIN_OK ? i->name : NULL;
}

static bool is_wire_code(enum zl_join_status st)
{
	return st != ZL_JOIN_OK && zl_join_code_name(st) != NULL;
}

/* Unknown names and numbers from a newer leader become the generic refusal. */
static enum zl_join_status code_from_name(const char *name)
{
	for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++)
		if (statuses[i].name && strcmp(statuses[i].name, name) == 0)
			return statuses[i].st;
	return ZL_JOIN_ERR_REFUSED;
}

enum zl_join_status zl_join_status_from_token(enum zl_token_status st)
{
	switch (st) {
	case ZL_TOKEN_OK: return ZL_JOIN_OK;
	case ZL_TOKEN_EXPIRED: return ZL_JOIN_ERR_TOKEN_EXPIRED;
	case ZL_TOKEN_REVOKED: return ZL_JOIN_ERR_TOKEN_REVOKED;
	case ZL_TOKEN_USED: return ZL_JOIN_ERR_TOKEN_USED;
	default: return ZL_JOIN_ERR_TOKEN_INVALID;
	}
}

/* ---- Symmetric state (Noise's MixHash / MixKey over BLAKE2b) ---- */

static void mix_hash(uint8_t h[HASH_LEN], const void *data, size_t len)
{
	crypto_generichash_state st;
	crypto_generichash_init(&st, NULL, 0, HASH_LEN);
	crypto_generichash_update(&st, h, HASH_LEN);
	crypto_generichash_update(&st, data, len);
	crypto_generichash_final(&st, h, HASH_LEN);
}

/* HKDF's extract-then-expand with keyed BLAKE2b as the PRF (libsodium 1.0.18 has no HKDF):
 * prk = PRF(ck, ikm); ck' = PRF(prk, 0x01); k = PRF(prk, ck' || 0x02). k may be NULL. */
static void mix_key(uint8_t ck[HASH_LEN], uint8_t *k, const uint8_t *ikm, size_t len)
{
	uint8_t prk[HASH_LEN], t[HASH_LEN + 1];
	crypto_generichash(prk, HASH_LEN, ikm, len, ck, HASH_LEN);
	t[0] = 1;
	crypto_generichash(ck, HASH_LEN, t, 1, prk, HASH_LEN);
	if (k) {
		memcpy(t, ck, HASH_LEN);
		t[HASH_LEN] = 2;
		crypto_generichash(k, HASH_LEN, t, sizeof(t), prk, HASH_LEN);
	}
	sodium_memzero(prk, sizeof(prk));
	sodium_memzero(t, sizeof(t));
}

/* h = HASH(protocol name); ck = h; then the pre-message: the leader's static key, which the worker knows
 * from the token. Binding it into h means a response only verifies under that exact key. */
static void symmetric_init(uint8_t ck[HASH_LEN], uint8_t h[HASH_LEN], const uint8_t leader_pub[ZL_JOIN_KEY_LEN])
{
	crypto_generichash(h, HASH_LEN, (const uint8_t *)protocol_name, sizeof(protocol_name) - 1, NULL, 0);
	memcpy(ck, h, HASH_LEN);
	mix_hash(h, leader_pub, ZL_JOIN_KEY_LEN);
}

/* X25519; false for an all-zero result (a low-order point), which must never key anything. */
static bool dh(uint8_t out[32], const uint8_t priv[32], const uint8_t pub[32])
{
	return crypto_scalarmult(out, priv, pub) == 0;
}

static void keygen(uint8_t priv[32], uint8_t pub[32])
{
	randombytes_buf(priv, 32);
	crypto_scalarmult_base(pub, priv);
}

/* Each key encrypts exactly one message, so the all-zero nonce is safe; h is the associated data, which
 * authenticates the whole transcript so far (headers and ephemerals included). */
static const uint8_t zero_nonce[crypto_aead_chacha20poly1305_ietf_NPUBBYTES];

static void seal(uint8_t *dst, const uint8_t *src, size_t len, const uint8_t key[32], const uint8_t h[HASH_LEN])
{
	crypto_aead_chacha20poly1305_ietf_encrypt(dst, NULL, src, len, h, HASH_LEN, NULL, zero_nonce, key);
}

static bool open_box(uint8_t *dst, const uint8_t *src, size_t len, const uint8_t key[32], const uint8_t h[HASH_LEN])
{
	return crypto_aead_chacha20poly1305_ietf_decrypt(dst, NULL, NULL, src, len, h, HASH_LEN, zero_nonce, key) == 0;
}

/* ---- Header ---- */

static void header_write(uint8_t *p, size_t total, enum zl_join_msg_type type)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(total >> (8 * i));
	p[4] = (uint8_t)type;
	p[5] = ZL_JOIN_VERSION;
	p[6] = p[7] = 0;
}

enum zl_join_status zl_join_msg_length(const uint8_t hdr[ZL_JOIN_HEADER_LEN], bool from_leader, size_t *total)
{
	size_t len = (size_t)hdr[0] | (size_t)hdr[1] << 8 | (size_t)hdr[2] << 16 | (size_t)hdr[3] << 24;
	size_t min, max;

	if (hdr[5] != ZL_JOIN_VERSION)
		return ZL_JOIN_ERR_VERSION;
	if (hdr[6] || hdr[7])
		return ZL_JOIN_ERR_MALFORMED;
	if (!from_leader && hdr[4] == ZL_JOIN_MSG_REQUEST)
		min = MIN_REQUEST, max = ZL_JOIN_MAX_REQUEST;
	else if (from_leader && hdr[4] == ZL_JOIN_MSG_RESPONSE)
		min = MIN_RESPONSE, max = ZL_JOIN_MAX_RESPONSE;
	else if (from_leader && hdr[4] == ZL_JOIN_MSG_REFUSAL)
		min = max = ZL_JOIN_REFUSAL_LEN;
	else
		return ZL_JOIN_ERR_MALFORMED;
	if (len > max)
		return min == max ? ZL_JOIN_ERR_MALFORMED : ZL_JOIN_ERR_TOO_LARGE;
	if (len < min)
		return ZL_JOIN_ERR_MALFORMED;
	*total = len;
	return ZL_JOIN_OK;
}

/* The whole message must be exactly what its header announces. */
static enum zl_join_status check_message(const uint8_t *msg, size_t len, bool from_leader)
{
	size_t total;
	enum zl_join_status st;
	if (!msg || len < ZL_JOIN_HEADER_LEN)
		return ZL_JOIN_ERR_MALFORMED;
	st = zl_join_msg_length(msg, from_leader, &total);
	if (st != ZL_JOIN_OK)
		return st;
	return total == len ? ZL_JOIN_OK : ZL_JOIN_ERR_MALFORMED;
}

/* ---- Field validation ---- */

static bool alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool zl_join_hostname_valid(const char *s)
{
	size_t n = s ? strnlen(s, ZL_JOIN_HOSTNAME_MAX + 1) : 0;
	if (n == 0 || n > ZL_JOIN_HOSTNAME_MAX || s[0] == '-' || s[n - 1] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!alnum(s[i]) && s[i] != '-')
			return false;
	return true;
}

/* Node ids are chosen by the leader; any short token of safe characters (a name, a key in base64). */
static bool node_id_valid(const char *s)
{
	size_t n = strnlen(s, ZL_JOIN_NODE_ID_MAX + 1);
	if (n == 0 || n > ZL_JOIN_NODE_ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!alnum(s[i]) && !strchr("._:+/=@-", s[i]))
			return false;
	return true;
}

/* Shown to the user, so only printable ASCII: no terminal escapes from the network. */
static bool message_valid(const char *s)
{
	size_t n = strnlen(s, ZL_JOIN_MESSAGE_MAX + 1);
	if (n > ZL_JOIN_MESSAGE_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] < 0x20 || s[i] > 0x7e)
			return false;
	return true;
}

static bool key_usable(const uint8_t key[ZL_JOIN_KEY_LEN])
{
	return !sodium_is_zero(key, ZL_JOIN_KEY_LEN);
}

/* WireGuard's key text: standard base64 with padding, 44 characters. */
static void key_to_b64(char out[45], const uint8_t key[ZL_JOIN_KEY_LEN])
{
	sodium_bin2base64(out, 45, key, ZL_JOIN_KEY_LEN, sodium_base64_VARIANT_ORIGINAL);
}

static bool key_from_b64(const char *s, uint8_t key[ZL_JOIN_KEY_LEN])
{
	uint8_t tmp[ZL_JOIN_KEY_LEN];
	bool ok = strnlen(s, ZL_KEY_B64_LEN + 1) == ZL_KEY_B64_LEN && zl_state_key_decode(s, tmp) && key_usable(tmp);

	if (ok)
		memcpy(key, tmp, sizeof(tmp));
	sodium_memzero(tmp, sizeof(tmp));
	return ok;
}

static bool ip_ok(const char *s, struct zl_ip *ip)
{
	return zl_ip_parse(s, ip, NULL, 0) == 0;
}

/* A network prefix (host bits zero), as cluster ranges and slices are. */
static bool net_ok(const char *s, struct zl_prefix *p)
{
	return zl_prefix_parse(s, p, NULL, 0) == 0 && zl_prefix_is_network(p);
}

static bool request_fields_valid(const struct zl_join_request *req)
{
	return key_usable(req->public_key) && zl_join_hostname_valid(req->hostname) &&
	       (req->endpoint[0] == '\0' || zl_endpoint_check(req->endpoint));
}

static bool peer_valid(const struct zl_join_peer *p, const struct zl_prefix *cluster)
{
	struct zl_ip ip;
	struct zl_prefix slice;
	if (!node_id_valid(p->node_id) || !key_usable(p->public_key))
		return false;
	if (p->hostname[0] && !zl_join_hostname_valid(p->hostname))
		return false;
	if (p->endpoint[0] && !zl_endpoint_check(p->endpoint))
		return false;
	if (!ip_ok(p->overlay_ip, &ip) || !zl_prefix_contains(cluster, &ip))
		return false;
	if (p->slice[0] && (!net_ok(p->slice, &slice) || !zl_prefix_contains_prefix(cluster, &slice) ||
			    !zl_prefix_contains(&slice, &ip)))
		return false;
	return true;
}

static int key_cmp(const void *a, const void *b)
{
	return memcmp(a, b, ZL_JOIN_KEY_LEN);
}

/* No two peers with the same key, and none with ours. Sorting keeps this O(n log n) for large lists. */
static enum zl_join_status peer_keys_distinct(const struct zl_join_peer *peers, size_t n, const uint8_t self[32])
{
	uint8_t *keys;
	bool ok = true;
	if (n == 0)
		return ZL_JOIN_OK;
	keys = malloc(n * ZL_JOIN_KEY_LEN);
	if (!keys)
		return ZL_JOIN_ERR_NOMEM;
	for (size_t i = 0; i < n; i++) {
		memcpy(keys + i * ZL_JOIN_KEY_LEN, peers[i].public_key, ZL_JOIN_KEY_LEN);
		ok = ok && memcmp(peers[i].public_key, self, ZL_JOIN_KEY_LEN) != 0;
	}
	qsort(keys, n, ZL_JOIN_KEY_LEN, key_cmp);
	for (size_t i = 1; i < n && ok; i++)
		ok = memcmp(keys + (i - 1) * ZL_JOIN_KEY_LEN, keys + i * ZL_JOIN_KEY_LEN, ZL_JOIN_KEY_LEN) != 0;
	free(keys);
	return ok ? ZL_JOIN_OK : ZL_JOIN_ERR_MALFORMED;
}

/* A successful answer must be self-consistent: the worker's address in its slice, the slice in the
 * cluster, every peer inside the cluster, the leader listed, nobody twice, the worker not among them. */
static enum zl_join_status success_valid(const struct zl_join_response *r, const uint8_t self[32])
{
	struct zl_prefix cluster, slice;
	struct zl_ip ip, leader_ip, pip;
	bool leader_listed = false;

	if (!node_id_valid(r->node_id) || !net_ok(r->cluster_cidr, &cluster) || !net_ok(r->slice, &slice) ||
	    !zl_prefix_contains_prefix(&cluster, &slice) || !ip_ok(r->overlay_ip, &ip) ||
	    !zl_prefix_contains(&slice, &ip) || !ip_ok(r->leader_overlay_ip, &leader_ip) ||
	    !zl_prefix_contains(&cluster, &leader_ip) || zl_ip_equal(&ip, &leader_ip))
		return ZL_JOIN_ERR_MALFORMED;
	if (r->n_peers < 1 || r->n_peers > ZL_JOIN_MAX_PEERS || !r->peers)
		return ZL_JOIN_ERR_MALFORMED;
	for (size_t i = 0; i < r->n_peers; i++) {
		if (!peer_valid(&r->peers[i], &cluster))
			return ZL_JOIN_ERR_MALFORMED;
		ip_ok(r->peers[i].overlay_ip, &pip);
		if (zl_ip_equal(&pip, &ip) || strcmp(r->peers[i].node_id, r->node_id) == 0)
			return ZL_JOIN_ERR_MALFORMED;
		leader_listed = leader_listed || zl_ip_equal(&pip, &leader_ip);
	}
	if (!leader_listed)
		return ZL_JOIN_ERR_MALFORMED;
	return peer_keys_distinct(r->peers, r->n_peers, self);
}

/* ---- JSON helpers ---- */

/* One strict UTF-8 JSON object filling exactly len bytes. */
static json_object *parse_object(const char *text, size_t len)
{
	struct json_tokener *tok;
	json_object *o;
	bool whole;
	if (len == 0 || len > ZL_JOIN_MAX_RESPONSE || memchr(text, '\0', len))
		return NULL;
	tok = json_tokener_new();
	if (!tok)
		return NULL;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	o = json_tokener_parse_ex(tok, text, (int)len);
	whole = json_tokener_get_error(tok) == json_tokener_success && json_tokener_get_parse_end(tok) == len;
	json_tokener_free(tok);
	if (o && (!whole || !json_object_is_type(o, json_type_object))) {
		json_object_put(o);
		o = NULL;
	}
	return o;
}

/* Copies string member key into out (cap bytes with the NUL). Absent: "" when optional, else false.
 * Present: must be a string that fits. */
static bool get_str(json_object *o, const char *key, bool optional, char *out, size_t cap)
{
	json_object *v;
	size_t n;
	out[0] = '\0';
	if (!json_object_object_get_ex(o, key, &v))
		return optional;
	if (!json_object_is_type(v, json_type_string))
		return false;
	n = (size_t)json_object_get_string_len(v);
	if (n >= cap)
		return false;
	memcpy(out, json_object_get_string(v), n + 1);
	return strlen(out) == n;
}

static bool get_key(json_object *o, const char *key, uint8_t out[ZL_JOIN_KEY_LEN])
{
	char text[64];
	return get_str(o, key, false, text, sizeof(text)) && key_from_b64(text, out);
}

static bool add(json_object *o, const char *key, json_object *v)
{
	if (!v)
		return false;
	if (json_object_object_add(o, key, v) != 0) {
		json_object_put(v);
		return false;
	}
	return true;
}

static bool add_str(json_object *o, const char *key, const char *s)
{
	return add(o, key, json_object_new_string(s));
}

/* Optional members are left out when empty. */
static bool add_opt(json_object *o, const char *key, const char *s)
{
	return s[0] == '\0' || add_str(o, key, s);
}

static bool add_key(json_object *o, const char *key, const uint8_t k[ZL_JOIN_KEY_LEN])
{
	char text[45];
	key_to_b64(text, k);
	return add_str(o, key, text);
}

/* ---- Request ---- */

/* The request's JSON holds no secret (those travel in the binary prefix, in wiped buffers) and only
 * validated characters, so it is written directly: nothing needs escaping. */
static size_t request_json(const struct zl_join_request *req, char out[REQUEST_JSON_MAX])
{
	char key[45], ep[ZL_ENDPOINT_MAX_LEN + 32] = "";
	int n;
	key_to_b64(key, req->public_key);
	if (req->endpoint[0])
		snprintf(ep, sizeof(ep), ",\"endpoint\":\"%s\"", req->endpoint);
	n = snprintf(out, REQUEST_JSON_MAX, "{\"public_key\":\"%s\",\"hostname\":\"%s\"%s,\"timestamp\":%llu}", key,
		     req->hostname, ep, (unsigned long long)req->timestamp);
	return n > 0 && n < REQUEST_JSON_MAX ? (size_t)n : 0;
}

enum zl_join_status zl_join_request_build(struct zl_join_worker_session *s,
					  const uint8_t leader_public_key[ZL_JOIN_KEY_LEN],
					  const struct zl_join_request *req, uint8_t out[ZL_JOIN_MAX_REQUEST],
					  size_t *out_len)
{
	uint8_t plain[CRED_LEN + REQUEST_JSON_MAX], dh_es[32], k1[32];
	size_t json_len, plen, total;
	enum zl_join_status st = ZL_JOIN_OK;

	memset(s, 0, sizeof(*s));
	if (sodium_init() < 0 || !key_usable(leader_public_key) || !request_fields_valid(req))
		return ZL_JOIN_ERR_STATE;
	json_len = request_json(req, (char *)plain + CRED_LEN);
	if (json_len == 0)
		return ZL_JOIN_ERR_STATE;
	memcpy(plain, req->token_id, ZL_TOKEN_ID_LEN);
	memcpy(plain + ZL_TOKEN_ID_LEN, req->token_secret, ZL_TOKEN_SECRET_LEN);
	plen = CRED_LEN + json_len;
	total = OVERHEAD + plen;

	symmetric_init(s->ck, s->h, leader_public_key);
	keygen(s->e_priv, s->e_pub);
	header_write(out, total, ZL_JOIN_MSG_REQUEST);
	memcpy(out + EPH_OFF, s->e_pub, ZL_JOIN_KEY_LEN);
	mix_hash(s->h, out, BODY_OFF);                          /* header, e */
	if (!dh(dh_es, s->e_priv, leader_public_key)) {         /* es */
		st = ZL_JOIN_ERR_BAD_KEY;
		goto out;
	}
	mix_key(s->ck, k1, dh_es, sizeof(dh_es));
	seal(out + BODY_OFF, plain, plen, k1, s->h);
	mix_hash(s->h, out + BODY_OFF, plen + ZL_JOIN_TAG_LEN);
	memcpy(s->psk, req->token_secret, ZL_TOKEN_SECRET_LEN);
	memcpy(s->public_key, req->public_key, ZL_JOIN_KEY_LEN);
	s->active = true;
	*out_len = total;
out:
	sodium_memzero(plain, sizeof(plain));
	sodium_memzero(dh_es, sizeof(dh_es));
	sodium_memzero(k1, sizeof(k1));
	if (st != ZL_JOIN_OK)
		zl_join_worker_session_wipe(s);
	return st;
}

static bool request_parse_json(json_object *o, struct zl_join_request *req)
{
	json_object *ts;
	int64_t t;
	if (!get_key(o, "public_key", req->public_key) ||
	    !get_str(o, "hostname", false, req->hostname, sizeof(req->hostname)) ||
	    !get_str(o, "endpoint", true, req->endpoint, sizeof(req->endpoint)))
		return false;
	if (!json_object_object_get_ex(o, "timestamp", &ts) || !json_object_is_type(ts, json_type_int))
		return false;
	t = json_object_get_int64(ts);
	if (t <= 0 || t == INT64_MAX)
		return false;
	req->timestamp = (uint64_t)t;
	return request_fields_valid(req);
}

static bool clock_close(uint64_t a, uint64_t b)
{
	return (a > b ? a - b : b - a) <= ZL_JOIN_MAX_SKEW;
}

/* Decrypts the body of a checked REQUEST into plain; on success the transcript covers it. */
static enum zl_join_status request_decrypt(struct zl_join_leader_session *s, const uint8_t priv[32],
					   const uint8_t *msg, size_t len, uint8_t *plain)
{
	uint8_t pub[32], dh_es[32], k1[32];
	enum zl_join_status st = ZL_JOIN_OK;

	crypto_scalarmult_base(pub, priv);
	symmetric_init(s->ck, s->h, pub);
	memcpy(s->e_remote, msg + EPH_OFF, ZL_JOIN_KEY_LEN);
	mix_hash(s->h, msg, BODY_OFF);                          /* header, e */
	if (!dh(dh_es, priv, s->e_remote)) {                    /* es */
		st = ZL_JOIN_ERR_BAD_KEY;
		goto out;
	}
	mix_key(s->ck, k1, dh_es, sizeof(dh_es));
	if (!open_box(plain, msg + BODY_OFF, len - BODY_OFF, k1, s->h)) {
		st = ZL_JOIN_ERR_AUTH;
		goto out;
	}
	mix_hash(s->h, msg + BODY_OFF, len - BODY_OFF);
out:
	sodium_memzero(dh_es, sizeof(dh_es));
	sodium_memzero(k1, sizeof(k1));
	return st;
}

enum zl_join_status zl_join_request_open(struct zl_join_leader_session *s,
					 const uint8_t leader_private_key[ZL_JOIN_KEY_LEN], const uint8_t *msg,
					 size_t len, uint64_t now, struct zl_join_request *req)
{
	uint8_t plain[ZL_JOIN_MAX_REQUEST];
	size_t plen;
	json_object *o = NULL;
	enum zl_join_status st;

	memset(s, 0, sizeof(*s));
	memset(req, 0, sizeof(*req));
	if (sodium_init() < 0)
		return ZL_JOIN_ERR_STATE;
	st = check_message(msg, len, false);
	if (st != ZL_JOIN_OK)
		return st;
	plen = len - OVERHEAD;
	st = request_decrypt(s, leader_private_key, msg, len, plain);
	if (st != ZL_JOIN_OK)
		goto out;
	/* From here the worker holds the key we answer under: refusals can be authenticated. */
	memcpy(req->token_id, plain, ZL_TOKEN_ID_LEN);
	memcpy(req->token_secret, plain + ZL_TOKEN_ID_LEN, ZL_TOKEN_SECRET_LEN);
	memcpy(s->psk, req->token_secret, ZL_TOKEN_SECRET_LEN);
	s->can_reply = true;
	o = parse_object((const char *)plain + CRED_LEN, plen - CRED_LEN);
	if (!o || !request_parse_json(o, req))
		st = ZL_JOIN_ERR_MALFORMED;
	else if (!clock_close(req->timestamp, now))
		st = ZL_JOIN_ERR_CLOCK_SKEW;
	else
		memcpy(s->worker_public_key, req->public_key, ZL_JOIN_KEY_LEN);
out:
	json_object_put(o);
	sodium_memzero(plain, sizeof(plain));
	if (st != ZL_JOIN_OK)
		sodium_memzero(req, sizeof(*req));
	if (!s->can_reply)
		zl_join_leader_session_wipe(s);
	return st;
}

/* ---- Response ---- */

static json_object *peer_to_json(const struct zl_join_peer *p)
{
	json_object *o = json_object_new_object();
	if (!o)
		return NULL;
	if (!add_str(o, "node_id", p->node_id) || !add_opt(o, "hostname", p->hostname) ||
	    !add_key(o, "public_key", p->public_key) || !add_opt(o, "endpoint", p->endpoint) ||
	    !add_str(o, "overlay_ip", p->overlay_ip) || !add_opt(o, "slice", p->slice)) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

static bool success_to_json(json_object *o, const struct zl_join_response *r)
{
	json_object *peers;
	if (!add_str(o, "result", "ok") || !add_str(o, "node_id", r->node_id) ||
	    !add_str(o, "overlay_ip", r->overlay_ip) || !add_str(o, "slice", r->slice) ||
	    !add_str(o, "cluster_cidr", r->cluster_cidr) || !add_str(o, "leader_overlay_ip", r->leader_overlay_ip))
		return false;
	peers = json_object_new_array_ext((int)r->n_peers);
	if (!add(o, "peers", peers))
		return false;
	for (size_t i = 0; i < r->n_peers; i++) {
		json_object *p = peer_to_json(&r->peers[i]);
		if (!p || json_object_array_add(peers, p) != 0) {
			json_object_put(p);
			return false;
		}
	}
	return true;
}

static bool refusal_to_json(json_object *o, const struct zl_join_response *r)
{
	const char *msg = r->message[0] ? r->message : zl_join_strerror(r->code);
	return add_str(o, "result", "err") && add_str(o, "code", zl_join_code_name(r->code)) &&
	       add_str(o, "message", msg);
}

/* Validates resp and renders its JSON (a new object in *json). */
static enum zl_join_status response_json(const struct zl_join_leader_session *s, const struct zl_join_response *r,
					 json_object **json)
{
	enum zl_join_status st;
	bool ok;
	if (r->code == ZL_JOIN_OK) {
		st = success_valid(r, s->worker_public_key);
		if (st != ZL_JOIN_OK)
			return st == ZL_JOIN_ERR_NOMEM ? st : ZL_JOIN_ERR_STATE;
	} else if (!is_wire_code(r->code) || !message_valid(r->message)) {
		return ZL_JOIN_ERR_STATE;
	}
	*json = json_object_new_object();
	if (!*json)
		return ZL_JOIN_ERR_NOMEM;
	ok = r->code == ZL_JOIN_OK ? success_to_json(*json, r) : refusal_to_json(*json, r);
	if (!ok) {
		json_object_put(*json);
		*json = NULL;
		return ZL_JOIN_ERR_NOMEM;
	}
	return ZL_JOIN_OK;
}

/* e, ee, psk: the leader's fresh ephemeral gives the answer forward secrecy; the token secret makes it
 * readable only by whoever presented it. The transcript in h binds it to this very request. */
static enum zl_join_status response_seal(struct zl_join_leader_session *s, const char *text, size_t len,
					 uint8_t *out, size_t total)
{
	uint8_t e_priv[32], dh_ee[32], k2[32];
	enum zl_join_status st = ZL_JOIN_OK;

	header_write(out, total, ZL_JOIN_MSG_RESPONSE);
	keygen(e_priv, out + EPH_OFF);
	mix_hash(s->h, out, BODY_OFF);                          /* header, e */
	if (!dh(dh_ee, e_priv, s->e_remote)) {                  /* ee */
		st = ZL_JOIN_ERR_BAD_KEY;
		goto out;
	}
	mix_key(s->ck, NULL, dh_ee, sizeof(dh_ee));
	mix_key(s->ck, k2, s->psk, sizeof(s->psk));              /* psk */
	memcpy(out + BODY_OFF, text, len);
	seal(out + BODY_OFF, out + BODY_OFF, len, k2, s->h);
out:
	sodium_memzero(e_priv, sizeof(e_priv));
	sodium_memzero(dh_ee, sizeof(dh_ee));
	sodium_memzero(k2, sizeof(k2));
	return st;
}

enum zl_join_status zl_join_response_build(struct zl_join_leader_session *s, const struct zl_join_response *resp,
					   uint8_t **out, size_t *out_len)
{
	json_object *json = NULL;
	const char *text;
	size_t len = 0, total;
	uint8_t *buf = NULL;
	enum zl_join_status st;

	*out = NULL;
	*out_len = 0;
	if (!s->can_reply) {
		st = ZL_JOIN_ERR_STATE;
		goto out;
	}
	st = response_json(s, resp, &json);
	if (st != ZL_JOIN_OK)
		goto out;
	text = json_object_to_json_string_length(json, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
	total = OVERHEAD + len;
	if (!text || total > ZL_JOIN_MAX_RESPONSE) {
		st = text ? ZL_JOIN_ERR_TOO_LARGE : ZL_JOIN_ERR_NOMEM;
		goto out;
	}
	buf = malloc(total);
	if (!buf) {
		st = ZL_JOIN_ERR_NOMEM;
		goto out;
	}
	st = response_seal(s, text, len, buf, total);
	if (st == ZL_JOIN_OK) {
		*out = buf;
		*out_len = total;
		buf = NULL;
	}
out:
	free(buf);
	json_object_put(json);
	zl_join_leader_session_wipe(s);
	return st;
}

size_t zl_join_refusal_build(enum zl_join_status code, uint8_t out[ZL_JOIN_REFUSAL_LEN])
{
	/* Local failures become what the worker can act on: an unreadable request, or a leader fault. */
	if (code == ZL_JOIN_ERR_AUTH || code == ZL_JOIN_ERR_BAD_KEY)
		code = ZL_JOIN_ERR_UNREADABLE;
	else if (code == ZL_JOIN_ERR_TOO_LARGE)
		code = ZL_JOIN_ERR_MALFORMED;
	else if (!is_wire_code(code))
		code = ZL_JOIN_ERR_INTERNAL;
	header_write(out, ZL_JOIN_REFUSAL_LEN, ZL_JOIN_MSG_REFUSAL);
	out[8] = (uint8_t)code;
	out[9] = (uint8_t)((unsigned)code >> 8);
	return ZL_JOIN_REFUSAL_LEN;
}

static enum zl_join_status refusal_open(const uint8_t *msg, struct zl_join_response *resp)
{
	unsigned code = (unsigned)msg[8] | (unsigned)msg[9] << 8;
	enum zl_join_status st = ZL_JOIN_ERR_REFUSED;
	if (code == ZL_JOIN_OK)
		return ZL_JOIN_ERR_MALFORMED;
	if (code <= ZL_JOIN_WIRE_CODE_MAX && is_wire_code((enum zl_join_status)code))
		st = (enum zl_join_status)code;
	resp->code = st;
	resp->authenticated = false;
	snprintf(resp->message, sizeof(resp->message), "%s", zl_join_strerror(st));
	return ZL_JOIN_OK;
}

static bool peer_from_json(json_object *o, struct zl_join_peer *p)
{
	return json_object_is_type(o, json_type_object) &&
	       get_str(o, "node_id", false, p->node_id, sizeof(p->node_id)) &&
	       get_str(o, "hostname", true, p->hostname, sizeof(p->hostname)) && get_key(o, "public_key", p->public_key) &&
	       get_str(o, "endpoint", true, p->endpoint, sizeof(p->endpoint)) &&
	       get_str(o, "overlay_ip", false, p->overlay_ip, sizeof(p->overlay_ip)) &&
	       get_str(o, "slice", true, p->slice, sizeof(p->slice));
}

static enum zl_join_status peers_from_json(json_object *o, struct zl_join_response *r)
{
	json_object *arr;
	size_t n;
	if (!json_object_object_get_ex(o, "peers", &arr) || !json_object_is_type(arr, json_type_array))
		return ZL_JOIN_ERR_MALFORMED;
	n = json_object_array_length(arr);
	if (n < 1 || n > ZL_JOIN_MAX_PEERS)
		return ZL_JOIN_ERR_MALFORMED;
	r->peers = calloc(n, sizeof(*r->peers));
	if (!r->peers)
		return ZL_JOIN_ERR_NOMEM;
	r->n_peers = n;
	for (size_t i = 0; i < n; i++)
		if (!peer_from_json(json_object_array_get_idx(arr, i), &r->peers[i]))
			return ZL_JOIN_ERR_MALFORMED;
	return ZL_JOIN_OK;
}

static enum zl_join_status success_from_json(json_object *o, struct zl_join_response *r, const uint8_t self[32])
{
	enum zl_join_status st;
	if (!get_str(o, "node_id", false, r->node_id, sizeof(r->node_id)) ||
	    !get_str(o, "overlay_ip", false, r->overlay_ip, sizeof(r->overlay_ip)) ||
	    !get_str(o, "slice", false, r->slice, sizeof(r->slice)) ||
	    !get_str(o, "cluster_cidr", false, r->cluster_cidr, sizeof(r->cluster_cidr)) ||
	    !get_str(o, "leader_overlay_ip", false, r->leader_overlay_ip, sizeof(r->leader_overlay_ip)))
		return ZL_JOIN_ERR_MALFORMED;
	st = peers_from_json(o, r);
	if (st != ZL_JOIN_OK)
		return st;
	r->code = ZL_JOIN_OK;
	return success_valid(r, self);
}

static enum zl_join_status refusal_from_json(json_object *o, struct zl_join_response *r)
{
	char name[32];
	if (!get_str(o, "code", false, name, sizeof(name)) ||
	    !get_str(o, "message", true, r->message, sizeof(r->message)) || !message_valid(r->message))
		return ZL_JOIN_ERR_MALFORMED;
	r->code = code_from_name(name);
	if (r->code == ZL_JOIN_OK)
		return ZL_JOIN_ERR_MALFORMED;
	if (!r->message[0])
		snprintf(r->message, sizeof(r->message), "%s", zl_join_strerror(r->code));
	return ZL_JOIN_OK;
}

static enum zl_join_status response_parse(const char *text, size_t len, struct zl_join_response *r,
					  const uint8_t self[32])
{
	char result[8];
	enum zl_join_status st = ZL_JOIN_ERR_MALFORMED;
	json_object *o = parse_object(text, len);
	if (!o)
		return ZL_JOIN_ERR_MALFORMED;
	if (get_str(o, "result", false, result, sizeof(result))) {
		if (strcmp(result, "ok") == 0)
			st = success_from_json(o, r, self);
		else if (strcmp(result, "err") == 0)
			st = refusal_from_json(o, r);
	}
	json_object_put(o);
	r->authenticated = st == ZL_JOIN_OK;
	return st;
}

/* Mirrors response_seal: e, ee, psk, then the AEAD over the body with the transcript as AD. */
static enum zl_join_status response_decrypt(struct zl_join_worker_session *s, const uint8_t *msg, size_t len,
					    uint8_t *plain)
{
	uint8_t dh_ee[32], k2[32];
	enum zl_join_status st = ZL_JOIN_OK;

	mix_hash(s->h, msg, BODY_OFF);
	if (!dh(dh_ee, s->e_priv, msg + EPH_OFF)) {
		st = ZL_JOIN_ERR_BAD_KEY;
		goto out;
	}
	mix_key(s->ck, NULL, dh_ee, sizeof(dh_ee));
	mix_key(s->ck, k2, s->psk, sizeof(s->psk));
	if (!open_box(plain, msg + BODY_OFF, len - BODY_OFF, k2, s->h))
		st = ZL_JOIN_ERR_AUTH;
out:
	sodium_memzero(dh_ee, sizeof(dh_ee));
	sodium_memzero(k2, sizeof(k2));
	return st;
}

enum zl_join_status zl_join_response_open(struct zl_join_worker_session *s, const uint8_t *msg, size_t len,
					  struct zl_join_response *resp)
{
	uint8_t *plain = NULL;
	enum zl_join_status st;

	memset(resp, 0, sizeof(*resp));
	if (!s->active) {
		st = ZL_JOIN_ERR_STATE;
		goto out;
	}
	st = check_message(msg, len, true);
	if (st != ZL_JOIN_OK)
		goto out;
	if (msg[4] == ZL_JOIN_MSG_REFUSAL) {
		st = refusal_open(msg, resp);
		goto out;
	}
	plain = malloc(len - OVERHEAD);
	if (!plain) {
		st = ZL_JOIN_ERR_NOMEM;
		goto out;
	}
	st = response_decrypt(s, msg, len, plain);
	if (st == ZL_JOIN_OK)
		st = response_parse((const char *)plain, len - OVERHEAD, resp, s->public_key);
out:
	free(plain);
	zl_join_worker_session_wipe(s);
	if (st != ZL_JOIN_OK)
		zl_join_response_free(resp);
	return st;
}

void zl_join_response_free(struct zl_join_response *r)
{
	free(r->peers);
	memset(r, 0, sizeof(*r));
}

void zl_join_worker_session_wipe(struct zl_join_worker_session *s)
{
	sodium_memzero(s, sizeof(*s));
}

void zl_join_leader_session_wipe(struct zl_join_leader_session *s)
{
	sodium_memzero(s, sizeof(*s));
}
