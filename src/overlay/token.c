/* Join tokens: creation, the text encoding, strict decoding, and the leader's verification against stored
 * records. Layout and rationale: token.h and docs/join-protocol.md. */
#include "overlay/token.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

enum {
	CHECKSUM_LEN = 4,
	/* version, id, secret, key, expiry, endpoint count */
	FIXED_LEN = 1 + ZL_TOKEN_ID_LEN + ZL_TOKEN_SECRET_LEN + ZL_TOKEN_KEY_LEN + 8 + 1,
	PAYLOAD_MIN = FIXED_LEN + 1 + 1 + CHECKSUM_LEN,
	PAYLOAD_MAX = FIXED_LEN + ZL_TOKEN_MAX_ENDPOINTS * (1 + ZL_ENDPOINT_MAX_LEN) + CHECKSUM_LEN,
};

_Static_assert(sizeof(ZL_TOKEN_PREFIX) - 1 + (PAYLOAD_MAX + 2) / 3 * 4 + 1 <= ZL_TOKEN_TEXT_MAX,
	       "ZL_TOKEN_TEXT_MAX must hold the longest token");

static const char secret_hash_label[] = "zl-overlay token secret v1";

static const char *const status_text[] = {
	[ZL_TOKEN_OK] = "token: ok",
	[ZL_TOKEN_MALFORMED] = "token: malformed",
	[ZL_TOKEN_UNSUPPORTED_VERSION] = "token: unsupported version",
	[ZL_TOKEN_BAD_ENDPOINT] = "token: invalid endpoint",
	[ZL_TOKEN_EXPIRED] = "token: expired",
	[ZL_TOKEN_INVALID] = "token: invalid",
	[ZL_TOKEN_REVOKED] = "token: revoked",
	[ZL_TOKEN_USED] = "token: already used",
};

const char *zl_token_strerror(enum zl_token_status st)
{
	if ((size_t)st >= sizeof(status_text) / sizeof(status_text[0]) || !status_text[st])
		return "token: unknown error";
	return status_text[st];
}

/* sodium_init is idempotent and cheap once done; every entry point that needs the library calls it. */
static bool sodium_ready(void)
{
	return sodium_init() >= 0;
}

/* ---- Endpoints ---- */

/* ASCII only, whatever the process locale says. */
static bool ascii_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static bool parse_port(const char *s, uint16_t *port)
{
	unsigned long v = 0;
	size_t n = strlen(s);
	if (n == 0 || n > 5 || s[0] == '0')
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v > 65535)
		return false;
	*port = (uint16_t)v;
	return true;
}

static bool label_ok(const char *l, size_t n)
{
	if (n == 0 || n > 63 || l[0] == '-' || l[n - 1] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!ascii_alnum(l[i]) && l[i] != '-')
			return false;
	return true;
}

static bool all_digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

/* A DNS name whose last label is numeric would be read as a (bad) IPv4 address by resolvers ("10.0.0.256"),
 * so it is refused, as URL parsers do. */
static bool dns_name_ok(const char *h)
{
	size_t n = strlen(h), start = 0;
	if (n == 0 || n > ZL_ENDPOINT_HOST_MAX)
		return false;
	for (size_t i = 0; i <= n; i++) {
		if (i < n && h[i] != '.')
			continue;
		if (!label_ok(h + start, i - start))
			return false;
		if (i == n && all_digits(h + start, i - start))
			return false;
		start = i + 1;
	}
	return true;
}

static bool host_ok(const char *host, bool bracketed)
{
	unsigned char addr[16];
	if (bracketed)
		return inet_pton(AF_INET6, host, addr) == 1;
	return inet_pton(AF_INET, host, addr) == 1 || dns_name_ok(host);
}

bool zl_endpoint_parse(const char *s, char host[ZL_ENDPOINT_HOST_MAX + 1], uint16_t *port)
{
	char buf[ZL_ENDPOINT_MAX_LEN + 1];
	size_t n = s ? strnlen(s, sizeof(buf)) : 0;
	bool bracketed;
	char *h, *colon;

	if (n == 0 || n > ZL_ENDPOINT_MAX_LEN)
		return false;
	memcpy(buf, s, n + 1);
	bracketed = buf[0] == '[';
	if (bracketed) {
		char *close = strchr(buf, ']');
		if (!close || close[1] != ':')
			return false;
		*close = '\0';
		h = buf + 1;
		colon = close + 1;
	} else {
		/* Exactly one colon: an unbracketed IPv6 address is ambiguous and refused. */
		colon = strchr(buf, ':');
		if (!colon || strchr(colon + 1, ':'))
			return false;
		h = buf;
	}
	*colon = '\0';
	if (strlen(h) > ZL_ENDPOINT_HOST_MAX || !host_ok(h, bracketed) || !parse_port(colon + 1, port))
		return false;
	strcpy(host, h);
	return true;
}

bool zl_endpoint_check(const char *s)
{
	char host[ZL_ENDPOINT_HOST_MAX + 1];
	uint16_t port;
	return zl_endpoint_parse(s, host, &port);
}

/* ---- Binary payload ---- */

static void put_u64le(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_u64le(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static void checksum(uint8_t out[CHECKSUM_LEN], const uint8_t *data, size_t len)
{
	uint8_t full[crypto_generichash_BYTES_MIN];
	crypto_generichash(full, sizeof(full), data, len, NULL, 0);
	memcpy(out, full, CHECKSUM_LEN);
}

static bool token_fields_ok(const struct zl_token *tok)
{
	if (tok->n_endpoints < 1 || tok->n_endpoints > ZL_TOKEN_MAX_ENDPOINTS || tok->expires_at == 0)
		return false;
	if (sodium_is_zero(tok->leader_public_key, ZL_TOKEN_KEY_LEN))
		return false;
	for (size_t i = 0; i < tok->n_endpoints; i++)
		if (!zl_endpoint_check(tok->endpoints[i]))
			return false;
	return true;
}

/* Serializes tok into buf (PAYLOAD_MAX bytes); returns the length. tok must be valid. */
static size_t payload_build(const struct zl_token *tok, uint8_t *buf)
{
	size_t off = 0;
	buf[off++] = ZL_TOKEN_VERSION;
	memcpy(buf + off, tok->id, ZL_TOKEN_ID_LEN);
	off += ZL_TOKEN_ID_LEN;
	memcpy(buf + off, tok->secret, ZL_TOKEN_SECRET_LEN);
	off += ZL_TOKEN_SECRET_LEN;
	memcpy(buf + off, tok->leader_public_key, ZL_TOKEN_KEY_LEN);
	off += ZL_TOKEN_KEY_LEN;
	put_u64le(buf + off, tok->expires_at);
	off += 8;
	buf[off++] = (uint8_t)tok->n_endpoints;
	for (size_t i = 0; i < tok->n_endpoints; i++) {
		size_t n = strlen(tok->endpoints[i]);
		buf[off++] = (uint8_t)n;
		memcpy(buf + off, tok->endpoints[i], n);
		off += n;
	}
	checksum(buf + off, buf, off);
	return off + CHECKSUM_LEN;
}

/* Reads the endpoint list at buf[*off..end); every length must fit and every endpoint be valid. */
static enum zl_token_status parse_endpoints(struct zl_token *tok, const uint8_t *buf, size_t *off, size_t end)
{
	tok->n_endpoints = buf[(*off)++];
	if (tok->n_endpoints < 1 || tok->n_endpoints > ZL_TOKEN_MAX_ENDPOINTS)
		return ZL_TOKEN_MALFORMED;
	for (size_t i = 0; i < tok->n_endpoints; i++) {
		size_t n;
		if (*off >= end)
			return ZL_TOKEN_MALFORMED;
		n = buf[(*off)++];
		if (n == 0 || n > end - *off)
			return ZL_TOKEN_MALFORMED;
		if (memchr(buf + *off, '\0', n))
			return ZL_TOKEN_BAD_ENDPOINT;
		memcpy(tok->endpoints[i], buf + *off, n);
		tok->endpoints[i][n] = '\0';
		*off += n;
		if (!zl_endpoint_check(tok->endpoints[i]))
			return ZL_TOKEN_BAD_ENDPOINT;
	}
	return ZL_TOKEN_OK;
}

static enum zl_token_status payload_parse(struct zl_token *tok, const uint8_t *buf, size_t len)
{
	uint8_t sum[CHECKSUM_LEN];
	size_t off = 1, end;
	enum zl_token_status st;

	if (len < PAYLOAD_MIN || len > PAYLOAD_MAX)
		return ZL_TOKEN_MALFORMED;
	end = len - CHECKSUM_LEN;
	checksum(sum, buf, end);
	if (sodium_memcmp(sum, buf + end, CHECKSUM_LEN) != 0)
		return ZL_TOKEN_MALFORMED;
	if (buf[0] != ZL_TOKEN_VERSION)
		return ZL_TOKEN_UNSUPPORTED_VERSION;
	memcpy(tok->id, buf + off, ZL_TOKEN_ID_LEN);
	off += ZL_TOKEN_ID_LEN;
	memcpy(tok->secret, buf + off, ZL_TOKEN_SECRET_LEN);
	off += ZL_TOKEN_SECRET_LEN;
	memcpy(tok->leader_public_key, buf + off, ZL_TOKEN_KEY_LEN);
	off += ZL_TOKEN_KEY_LEN;
	tok->expires_at = get_u64le(buf + off);
	off += 8;
	st = parse_endpoints(tok, buf, &off, end);
	if (st != ZL_TOKEN_OK)
		return st;
	if (off != end || tok->expires_at == 0 || sodium_is_zero(tok->leader_public_key, ZL_TOKEN_KEY_LEN))
		return ZL_TOKEN_MALFORMED;
	return ZL_TOKEN_OK;
}

/* ---- Text form ---- */

bool zl_token_encode(const struct zl_token *tok, char *out, size_t out_cap)
{
	uint8_t buf[PAYLOAD_MAX];
	size_t len, prefix = sizeof(ZL_TOKEN_PREFIX) - 1;

	if (!sodium_ready() || !token_fields_ok(tok))
		return false;
	len = payload_build(tok, buf);
	if (out_cap < prefix + sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_URLSAFE_NO_PADDING)) {
		sodium_memzero(buf, sizeof(buf));
		return false;
	}
	memcpy(out, ZL_TOKEN_PREFIX, prefix);
	sodium_bin2base64(out + prefix, out_cap - prefix, buf, len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	sodium_memzero(buf, sizeof(buf));
	return true;
}

/* "zlj<digits>." with digits other than our version is a token from another release: say so rather than
 * "malformed", so the operator knows to upgrade instead of re-copying. */
static enum zl_token_status check_prefix(const char *s, size_t n, size_t *body)
{
	size_t i = 3;
	if (n < 5 || memcmp(s, "zlj", 3) != 0)
		return ZL_TOKEN_MALFORMED;
	while (i < n && i < 12 && s[i] >= '0' && s[i] <= '9')
		i++;
	if (i == 3 || i >= n || s[i] != '.')
		return ZL_TOKEN_MALFORMED;
	if (i != 4 || s[3] != '0' + ZL_TOKEN_VERSION)
		return ZL_TOKEN_UNSUPPORTED_VERSION;
	*body = i + 1;
	return ZL_TOKEN_OK;
}

/* Strict base64url without padding: any other character, padding or non-zero spare bits is refused, so
 * one token has exactly one text form and a damaged character never decodes silently. */
static bool b64_decode(const char *s, size_t n, uint8_t *out, size_t cap, size_t *len)
{
	const char *end = NULL;
	if (n == 0 || (n % 4) == 1)
		return false;
	/* Checked here first: libsodium 1.0.18 maps some bytes >= 0x80 onto alphabet values. */
	for (size_t i = 0; i < n; i++)
		if (!ascii_alnum(s[i]) && s[i] != '-' && s[i] != '_')
			return false;
	if (sodium_base642bin(out, cap, s, n, NULL, len, &end, sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
		return false;
	return end == s + n;
}

static bool blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static void trim(const char **s, size_t *n)
{
	while (*n && blank((*s)[0])) {
		(*s)++;
		(*n)--;
	}
	while (*n && blank((*s)[*n - 1]))
		(*n)--;
}

enum zl_token_status zl_token_decode(const char *text, uint64_t now, struct zl_token *tok)
{
	uint8_t buf[PAYLOAD_MAX];
	size_t n = text ? strnlen(text, ZL_TOKEN_TEXT_MAX + 64) : 0, body = 0, len = 0;
	enum zl_token_status st;

	memset(tok, 0, sizeof(*tok));
	if (!sodium_ready())
		return ZL_TOKEN_MALFORMED;
	trim(&text, &n);
	if (n >= ZL_TOKEN_TEXT_MAX)
		return ZL_TOKEN_MALFORMED;
	st = check_prefix(text, n, &body);
	if (st != ZL_TOKEN_OK)
		return st;
	if (!b64_decode(text + body, n - body, buf, sizeof(buf), &len))
		st = ZL_TOKEN_MALFORMED;
	else
		st = payload_parse(tok, buf, len);
	if (st == ZL_TOKEN_OK && now >= tok->expires_at)
		st = ZL_TOKEN_EXPIRED;
	sodium_memzero(buf, sizeof(buf));
	if (st != ZL_TOKEN_OK)
		zl_token_wipe(tok);
	return st;
}

/* ---- Creation and verification (leader) ---- */

void zl_token_hash_secret(uint8_t out[ZL_TOKEN_HASH_LEN], const uint8_t id[ZL_TOKEN_ID_LEN],
			  const uint8_t secret[ZL_TOKEN_SECRET_LEN])
{
	crypto_generichash_state st;
	/* The secret is 256 random bits, so a fast hash suffices (no password stretching); the label and the
	 * id separate this use from any other hash of the same bytes. */
	crypto_generichash_init(&st, NULL, 0, ZL_TOKEN_HASH_LEN);
	crypto_generichash_update(&st, (const uint8_t *)secret_hash_label, sizeof(secret_hash_label));
	crypto_generichash_update(&st, id, ZL_TOKEN_ID_LEN);
	crypto_generichash_update(&st, secret, ZL_TOKEN_SECRET_LEN);
	crypto_generichash_final(&st, out, ZL_TOKEN_HASH_LEN);
	sodium_memzero(&st, sizeof(st));
}

enum zl_token_status zl_token_create(struct zl_token *tok, struct zl_token_record *rec,
				     const uint8_t leader_public_key[ZL_TOKEN_KEY_LEN],
				     const char *const *endpoints, size_t n_endpoints, uint64_t now, uint64_t ttl)
{
	struct zl_token t;

	if (!sodium_ready() || ttl == 0 || ttl > ZL_TOKEN_MAX_TTL || now > UINT64_MAX - ttl)
		return ZL_TOKEN_MALFORMED;
	if (n_endpoints < 1 || n_endpoints > ZL_TOKEN_MAX_ENDPOINTS)
		return ZL_TOKEN_MALFORMED;
	if (sodium_is_zero(leader_public_key, ZL_TOKEN_KEY_LEN))
		return ZL_TOKEN_MALFORMED;
	memset(&t, 0, sizeof(t));
	for (size_t i = 0; i < n_endpoints; i++) {
		if (!zl_endpoint_check(endpoints[i]))
			return ZL_TOKEN_BAD_ENDPOINT;
		strcpy(t.endpoints[i], endpoints[i]);
	}
	t.n_endpoints = n_endpoints;
	randombytes_buf(t.id, sizeof(t.id));
	randombytes_buf(t.secret, sizeof(t.secret));
	memcpy(t.leader_public_key, leader_public_key, ZL_TOKEN_KEY_LEN);
	t.expires_at = now + ttl;

	memset(rec, 0, sizeof(*rec));
	memcpy(rec->id, t.id, sizeof(rec->id));
	zl_token_hash_secret(rec->secret_hash, t.id, t.secret);
	rec->created_at = now;
	rec->expires_at = t.expires_at;
	rec->max_uses = 1;
	*tok = t;
	sodium_memzero(&t, sizeof(t));
	return ZL_TOKEN_OK;
}

/* The secret is checked before anything else so that the token's state (revoked, used, expired) is only
 * disclosed to someone holding it. */
static enum zl_token_status record_state(const struct zl_token_record *rec, uint64_t now)
{
	if (rec->revoked)
		return ZL_TOKEN_REVOKED;
	if (rec->uses >= rec->max_uses)
		return ZL_TOKEN_USED;
	if (now >= rec->expires_at)
		return ZL_TOKEN_EXPIRED;
	return ZL_TOKEN_OK;
}

static bool secret_matches(const struct zl_token_record *rec, const uint8_t id[ZL_TOKEN_ID_LEN],
			   const uint8_t secret[ZL_TOKEN_SECRET_LEN])
{
	uint8_t h[ZL_TOKEN_HASH_LEN];
	bool ok;
	zl_token_hash_secret(h, id, secret);
	/* Evaluate both comparisons: no early exit reveals which part differed. */
	int diff = sodium_memcmp(rec->id, id, ZL_TOKEN_ID_LEN) | sodium_memcmp(rec->secret_hash, h, ZL_TOKEN_HASH_LEN);
	ok = diff == 0;
	sodium_memzero(h, sizeof(h));
	return ok;
}

enum zl_token_status zl_token_verify(const struct zl_token_record *rec, const uint8_t id[ZL_TOKEN_ID_LEN],
				     const uint8_t secret[ZL_TOKEN_SECRET_LEN], uint64_t now)
{
	if (!sodium_ready() || !secret_matches(rec, id, secret))
		return ZL_TOKEN_INVALID;
	return record_state(rec, now);
}

enum zl_token_status zl_token_verify_table(const struct zl_token_record *recs, size_t n,
					   const uint8_t id[ZL_TOKEN_ID_LEN],
					   const uint8_t secret[ZL_TOKEN_SECRET_LEN], uint64_t now, size_t *index)
{
	size_t found = n;
	if (!sodium_ready())
		return ZL_TOKEN_INVALID;
	/* Ids are random and not secret, but scanning the whole table keeps the timing independent of the
	 * position anyway; ids are unique (created randomly, 64 bits), the first match wins. */
	for (size_t i = 0; i < n; i++)
		if (sodium_memcmp(recs[i].id, id, ZL_TOKEN_ID_LEN) == 0 && found == n)
			found = i;
	if (found == n || !secret_matches(&recs[found], id, secret))
		return ZL_TOKEN_INVALID;
	*index = found;
	return record_state(&recs[found], now);
}

void zl_token_mark_used(struct zl_token_record *rec)
{
	if (rec->uses < UINT32_MAX)
		rec->uses++;
}

void zl_token_wipe(struct zl_token *tok)
{
	sodium_memzero(tok, sizeof(*tok));
}

/* ---- Ids, records, TTLs ---- */

void zl_token_id_format(const uint8_t id[ZL_TOKEN_ID_LEN], char out[ZL_TOKEN_ID_HEX_LEN + 1])
{
	sodium_bin2hex(out, ZL_TOKEN_ID_HEX_LEN + 1, id, ZL_TOKEN_ID_LEN);
}

static bool hex_exact(const char *hex, uint8_t *out, size_t len)
{
	size_t got = 0;
	const char *end = NULL;
	if (!hex || strlen(hex) != 2 * len)
		return false;
	if (sodium_hex2bin(out, len, hex, 2 * len, NULL, &got, &end) != 0)
		return false;
	return got == len && end == hex + 2 * len;
}

bool zl_token_id_parse(const char *hex, uint8_t id[ZL_TOKEN_ID_LEN])
{
	uint8_t tmp[ZL_TOKEN_ID_LEN];
	if (!hex_exact(hex, tmp, sizeof(tmp)))
		return false;
	memcpy(id, tmp, sizeof(tmp));
	return true;
}

json_object *zl_token_record_to_json(const struct zl_token_record *rec)
{
	char id[ZL_TOKEN_ID_HEX_LEN + 1], hash[2 * ZL_TOKEN_HASH_LEN + 1];
	json_object *o = json_object_new_object();
	if (!o)
		return NULL;
	zl_token_id_format(rec->id, id);
	sodium_bin2hex(hash, sizeof(hash), rec->secret_hash, ZL_TOKEN_HASH_LEN);
	if (json_object_object_add(o, "id", json_object_new_string(id)) ||
	    json_object_object_add(o, "secret_hash", json_object_new_string(hash)) ||
	    json_object_object_add(o, "created_at", json_object_new_int64((int64_t)rec->created_at)) ||
	    json_object_object_add(o, "expires_at", json_object_new_int64((int64_t)rec->expires_at)) ||
	    json_object_object_add(o, "max_uses", json_object_new_int64(rec->max_uses)) ||
	    json_object_object_add(o, "uses", json_object_new_int64(rec->uses)) ||
	    json_object_object_add(o, "revoked", json_object_new_boolean(rec->revoked))) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

static bool get_uint(json_object *o, const char *key, uint64_t max, uint64_t *out)
{
	json_object *v;
	int64_t x;
	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
		return false;
	errno = 0;
	x = json_object_get_int64(v);
	if (x < 0 || (uint64_t)x > max || errno)
		return false;
	*out = (uint64_t)x;
	return true;
}

static const char *get_str(json_object *o, const char *key)
{
	json_object *v;
	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

bool zl_token_record_from_json(json_object *obj, struct zl_token_record *rec)
{
	struct zl_token_record r;
	uint64_t created, expires, max_uses, uses;
	json_object *rv;

	memset(&r, 0, sizeof(r));
	if (!json_object_is_type(obj, json_type_object))
		return false;
	if (!zl_token_id_parse(get_str(obj, "id"), r.id) ||
	    !hex_exact(get_str(obj, "secret_hash"), r.secret_hash, ZL_TOKEN_HASH_LEN))
		return false;
	if (!get_uint(obj, "created_at", INT64_MAX, &created) || !get_uint(obj, "expires_at", INT64_MAX, &expires) ||
	    !get_uint(obj, "max_uses", UINT32_MAX, &max_uses) || !get_uint(obj, "uses", UINT32_MAX, &uses))
		return false;
	if (!json_object_object_get_ex(obj, "revoked", &rv) || !json_object_is_type(rv, json_type_boolean))
		return false;
	if (expires == 0 || max_uses == 0 || created > expires)
		return false;
	r.created_at = created;
	r.expires_at = expires;
	r.max_uses = (uint32_t)max_uses;
	r.uses = (uint32_t)uses;
	r.revoked = json_object_get_boolean(rv);
	*rec = r;
	return true;
}

bool zl_token_parse_ttl(const char *s, uint64_t *seconds)
{
	uint64_t v = 0, unit = 1;
	size_t i = 0;
	if (!s || s[0] < '1' || s[0] > '9')
		return false;
	for (; s[i] >= '0' && s[i] <= '9'; i++) {
		v = v * 10 + (uint64_t)(s[i] - '0');
		if (v > ZL_TOKEN_MAX_TTL)
			return false;
	}
	switch (s[i]) {
	case '\0': break;
	case 's': unit = 1; i++; break;
	case 'm': unit = 60; i++; break;
	case 'h': unit = 3600; i++; break;
	case 'd': unit = 86400; i++; break;
	default: return false;
	}
	if (s[i] != '\0' || v * unit > ZL_TOKEN_MAX_TTL)
		return false;
	*seconds = v * unit;
	return true;
}
