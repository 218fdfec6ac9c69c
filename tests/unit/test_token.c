/* Join-token tests: round trips, an independent encoder of the documented payload (so the format is pinned
 * and every malformed variant can be built with a valid checksum), every single-character change and every
 * truncation of a token refused, endpoint syntax, expiry, verification against stored records, record JSON
 * and --ttl parsing. */
#include "test.h"

#include <stdint.h>

#include <sodium.h>

#include "overlay/token.h"

#define NOW 1700000000ull

static const uint8_t fixed_key[32] = {
	0x8f, 0x12, 0x33, 0x40, 0x01, 0x99, 0xab, 0xcd, 0xef, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70,
	0x80, 0x90, 0xa0, 0xb0, 0xc0, 0xd0, 0xe0, 0xf0, 0x0f, 0x1e, 0x2d, 0x3c, 0x4b, 0x5a, 0x69, 0x78,
};

/* A deterministic token, so the flip test is reproducible. */
static void fixed_token(struct zl_token *t)
{
	memset(t, 0, sizeof(*t));
	for (int i = 0; i < ZL_TOKEN_ID_LEN; i++)
		t->id[i] = (uint8_t)(0xa0 + i);
	for (int i = 0; i < ZL_TOKEN_SECRET_LEN; i++)
		t->secret[i] = (uint8_t)(7 * i + 3);
	memcpy(t->leader_public_key, fixed_key, 32);
	t->expires_at = NOW + 3600;
	t->n_endpoints = 2;
	strcpy(t->endpoints[0], "192.0.2.10:51820");
	strcpy(t->endpoints[1], "[2001:db8::10]:51820");
}

/* ---- An independent encoder of the format in token.h / docs/join-protocol.md ---- */

struct raw {
	char prefix[16];
	uint8_t version;
	uint8_t id[8], secret[32], key[32];
	uint64_t expires;
	int n_ep_field;            /* the count byte written */
	const char *eps[6];
	int n_eps;                 /* how many endpoints are actually written */
	int extra;                 /* trailing bytes before the checksum */
	bool ep_nul;               /* the first endpoint's length also covers a trailing NUL byte */
	bool bad_sum;
};

static void raw_default(struct raw *r)
{
	struct zl_token t;
	fixed_token(&t);
	memset(r, 0, sizeof(*r));
	strcpy(r->prefix, "zlj1.");
	r->version = 1;
	memcpy(r->id, t.id, 8);
	memcpy(r->secret, t.secret, 32);
	memcpy(r->key, t.leader_public_key, 32);
	r->expires = t.expires_at;
	r->n_ep_field = r->n_eps = 1;
	r->eps[0] = "192.0.2.10:51820";
}

static void raw_encode(const struct raw *r, char *out, size_t cap)
{
	uint8_t buf[2048], full[16];
	size_t off = 0;
	buf[off++] = r->version;
	memcpy(buf + off, r->id, 8), off += 8;
	memcpy(buf + off, r->secret, 32), off += 32;
	memcpy(buf + off, r->key, 32), off += 32;
	for (int i = 0; i < 8; i++)
		buf[off++] = (uint8_t)(r->expires >> (8 * i));
	buf[off++] = (uint8_t)r->n_ep_field;
	for (int i = 0; i < r->n_eps; i++) {
		size_t n = strlen(r->eps[i]) + (i == 0 && r->ep_nul);
		buf[off++] = (uint8_t)n;
		memcpy(buf + off, r->eps[i], n), off += n;
	}
	for (int i = 0; i < r->extra; i++)
		buf[off++] = 0x41;
	crypto_generichash(full, 16, buf, off, NULL, 0);
	memcpy(buf + off, full, 4);
	if (r->bad_sum)
		buf[off] ^= 1;
	off += 4;
	strcpy(out, r->prefix);
	sodium_bin2base64(out + strlen(out), cap - strlen(out), buf, off, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

static enum zl_token_status raw_decode(const struct raw *r)
{
	char text[4096];
	struct zl_token t;
	raw_encode(r, text, sizeof(text));
	return zl_token_decode(text, NOW, &t);
}

/* ---- Tests ---- */

static void test_round_trip(void)
{
	const char *eps[] = { "192.0.2.1:51820", "[2001:db8::1]:51820", "leader.example.com:443", "localhost:1" };
	struct zl_token tok, dec;
	struct zl_token_record rec;
	char text[ZL_TOKEN_TEXT_MAX];
	uint8_t h[32];

	CHECK(zl_token_create(&tok, &rec, fixed_key, eps, 4, NOW, 600) == ZL_TOKEN_OK);
	CHECK(tok.expires_at == NOW + 600 && rec.expires_at == NOW + 600 && rec.created_at == NOW);
	CHECK(rec.max_uses == 1 && rec.uses == 0 && !rec.revoked);
	CHECK(!sodium_is_zero(tok.secret, 32) && !sodium_is_zero(tok.id, 8));
	CHECK_MEM_EQ(rec.id, tok.id, 8);
	zl_token_hash_secret(h, tok.id, tok.secret);
	CHECK_MEM_EQ(rec.secret_hash, h, 32);

	CHECK(zl_token_encode(&tok, text, sizeof(text)));
	CHECK(strncmp(text, "zlj1.", 5) == 0);
	for (const char *p = text + 5; *p; p++) /* copy-paste safe: base64url only */
		CHECK((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' ||
		      *p == '_');
	CHECK(zl_token_decode(text, NOW, &dec) == ZL_TOKEN_OK);
	CHECK_MEM_EQ(dec.id, tok.id, 8);
	CHECK_MEM_EQ(dec.secret, tok.secret, 32);
	CHECK_MEM_EQ(dec.leader_public_key, fixed_key, 32);
	CHECK(dec.expires_at == NOW + 600 && dec.n_endpoints == 4);
	for (int i = 0; i < 4; i++)
		CHECK(strcmp(dec.endpoints[i], eps[i]) == 0);
	CHECK(zl_token_verify(&rec, dec.id, dec.secret, NOW) == ZL_TOKEN_OK);

	/* Two tokens never share id or secret. */
	{
		struct zl_token t2;
		struct zl_token_record r2;
		CHECK(zl_token_create(&t2, &r2, fixed_key, eps, 1, NOW, 600) == ZL_TOKEN_OK);
		CHECK(memcmp(t2.id, tok.id, 8) != 0 && memcmp(t2.secret, tok.secret, 32) != 0);
	}
}

static void test_independent_encoder_matches(void)
{
	struct zl_token t, dec;
	struct raw r;
	char a[ZL_TOKEN_TEXT_MAX], b[4096];
	fixed_token(&t);
	t.n_endpoints = 1;
	raw_default(&r);
	CHECK(zl_token_encode(&t, a, sizeof(a)));
	raw_encode(&r, b, sizeof(b));
	CHECK(strcmp(a, b) == 0);
	CHECK(zl_token_decode(b, NOW, &dec) == ZL_TOKEN_OK);
}

static void test_whitespace_and_buffer(void)
{
	struct zl_token t, dec;
	char text[ZL_TOKEN_TEXT_MAX], padded[ZL_TOKEN_TEXT_MAX + 8], small[40];
	fixed_token(&t);
	CHECK(zl_token_encode(&t, text, sizeof(text)));
	snprintf(padded, sizeof(padded), "  %s\r\n", text);
	CHECK(zl_token_decode(padded, NOW, &dec) == ZL_TOKEN_OK);
	CHECK(!zl_token_encode(&t, small, sizeof(small)));
	CHECK(!zl_token_encode(&t, text, strlen(text))); /* no room for the NUL */
	CHECK(zl_token_encode(&t, text, strlen(text) + 1));
}

/* Every character replaced by every other printable or special byte, and every bit of every byte flipped:
 * all refused, with "unsupported version" only for a different version digit. */
static void test_every_change_refused(void)
{
	struct zl_token t, dec;
	char text[ZL_TOKEN_TEXT_MAX], mod[ZL_TOKEN_TEXT_MAX];
	size_t n;
	int accepted = 0, wrong_status = 0;

	fixed_token(&t);
	CHECK(zl_token_encode(&t, text, sizeof(text)));
	n = strlen(text);
	for (size_t i = 0; i < n; i++) {
		for (int c = 1; c < 256; c++) {
			enum zl_token_status st, want;
			if (c == (unsigned char)text[i])
				continue;
			memcpy(mod, text, n + 1);
			mod[i] = (char)c;
			st = zl_token_decode(mod, NOW, &dec);
			want = (i == 3 && c >= '0' && c <= '9') ? ZL_TOKEN_UNSUPPORTED_VERSION : ZL_TOKEN_MALFORMED;
			accepted += st == ZL_TOKEN_OK;
			wrong_status += st != want;
		}
	}
	CHECK(accepted == 0);
	CHECK(wrong_status == 0);
}

static void test_truncations_refused(void)
{
	struct zl_token t, dec;
	char text[ZL_TOKEN_TEXT_MAX], cut[ZL_TOKEN_TEXT_MAX + 8];
	size_t n;
	int accepted = 0;

	fixed_token(&t);
	CHECK(zl_token_encode(&t, text, sizeof(text)));
	n = strlen(text);
	for (size_t len = 0; len < n; len++) {
		memcpy(cut, text, len);
		cut[len] = '\0';
		accepted += zl_token_decode(cut, NOW, &dec) != ZL_TOKEN_MALFORMED;
	}
	CHECK(accepted == 0);
	/* ... and extensions: one extra character or a duplicated tail. */
	snprintf(cut, sizeof(cut), "%sA", text);
	CHECK(zl_token_decode(cut, NOW, &dec) == ZL_TOKEN_MALFORMED);
	snprintf(cut, sizeof(cut), "%sAAAA", text);
	CHECK(zl_token_decode(cut, NOW, &dec) == ZL_TOKEN_MALFORMED);
	CHECK(zl_token_decode(NULL, NOW, &dec) == ZL_TOKEN_MALFORMED);
	CHECK(zl_token_decode("", NOW, &dec) == ZL_TOKEN_MALFORMED);
}

static void test_versions(void)
{
	struct raw r;
	static const char *const prefixes[] = { "zlj2.", "zlj0.", "zlj10.", "zlj11." };
	raw_default(&r);
	CHECK(raw_decode(&r) == ZL_TOKEN_OK);
	r.version = 2;
	CHECK(raw_decode(&r) == ZL_TOKEN_UNSUPPORTED_VERSION);
	r.version = 0;
	CHECK(raw_decode(&r) == ZL_TOKEN_UNSUPPORTED_VERSION);
	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
		raw_default(&r);
		strcpy(r.prefix, prefixes[i]);
		CHECK(raw_decode(&r) == ZL_TOKEN_UNSUPPORTED_VERSION);
	}
	for (const char *p = "zlj.\0zlk1.\0ZLJ1.\0zlj1\0zlj1,\0"; *p; p += strlen(p) + 1) {
		raw_default(&r);
		strcpy(r.prefix, p);
		CHECK(raw_decode(&r) == ZL_TOKEN_MALFORMED);
	}
	CHECK(strcmp(zl_token_strerror(ZL_TOKEN_UNSUPPORTED_VERSION), "token: unsupported version") == 0);
	CHECK(strcmp(zl_token_strerror(ZL_TOKEN_MALFORMED), "token: malformed") == 0);
	CHECK(strcmp(zl_token_strerror(ZL_TOKEN_EXPIRED), "token: expired") == 0);
	CHECK(strcmp(zl_token_strerror((enum zl_token_status)99), "token: unknown error") == 0);
}

/* Structurally wrong payloads with a valid checksum: each refused as malformed. */
static void test_malformed_fields(void)
{
	struct raw r;
	char long_ep[300];

	raw_default(&r);
	r.extra = 1;
	CHECK(raw_decode(&r) == ZL_TOKEN_MALFORMED);
	raw_default(&r);
	r.bad_sum = true;
	CHECK(raw_decode(&r) == ZL_TOKEN_MALFORMED);
	raw_default(&r);
	r.n_ep_field = 0, r.n_eps = 0;
	CHECK(raw_decode(&r) == ZL_TOKEN_MALFORMED);
	raw_default(&r);
	r.n_ep_field = 5, r.n_eps = 5;
	for (int i = 0; i < 5; i++)
		r.eps[i] = "192.0.2.1:1";
	CHECK(raw_decode(&r) == ZL_TOKEN_MALFORMED);
	raw_default(&r);
	r.n_ep_field = 2; /* says two, carries one */
	CHECK(raw_decode(&r) == ZL_TOKEN_MALFORMED);
	raw_default(&r);
	r.n_ep_field = 1, r.n_eps = 2, r.eps[1] = "192.0.2.2:2"; /* says one, carries two */
	CHECK(raw_decode(&r) == ZL_TOKEN_MALFORMED);
	raw_default(&r);
	memset(r.key, 0, 32);
	CHECK(raw_decode(&r) == ZL_TOKEN_MALFORMED);
	raw_default(&r);
	r.expires = 0;
	CHECK(raw_decode(&r) == ZL_TOKEN_MALFORMED);
	raw_default(&r);
	r.eps[0] = "";
	CHECK(raw_decode(&r) == ZL_TOKEN_MALFORMED);
	/* An endpoint with a NUL inside is not silently cut short. */
	raw_default(&r);
	r.ep_nul = true;
	CHECK(raw_decode(&r) == ZL_TOKEN_BAD_ENDPOINT);
	memset(long_ep, 'a', sizeof(long_ep));
	strcpy(long_ep + 250, ".b:1"); /* fits the length byte, but its first label is 250 long */
	raw_default(&r);
	r.eps[0] = long_ep;
	CHECK(raw_decode(&r) == ZL_TOKEN_BAD_ENDPOINT); /* labels longer than 63 */
}

static const char *const good_endpoints[] = {
	"192.0.2.1:51820", "[2001:db8::1]:51820", "leader.example.com:51820", "localhost:1", "[::ffff:1.2.3.4]:65535",
	"a-b.c:1", "10.0.0.1:65535", "[::1]:1", "xn--bcher-kva.example:80", "node7:51820",
};

static const char *const bad_endpoints[] = {
	"192.0.2.1", "192.0.2.1:", "192.0.2.1:0", "192.0.2.1:65536", "192.0.2.1:051820", "192.0.2.1:1x", "192.0.2.1:-1",
	"::1:51820", "2001:db8::1:51820", "[::1]51820", "[::1]:", "[::1", "::1]:1", "[fe80::1%eth0]:1",
	"[1.2.3.4]:1", "[leader]:1", "host_name:1", "-host:1", "host-:1", "a..b:1", ".a:1", "a.:1", "10.0.0.256:1",
	"1.2.3:1", "010.0.0.1:1", ":1", "", " 192.0.2.1:1", "192.0.2.1:1 ", "héllo:1", "a:b:1", "[::1]:1:2",
	"192.0.2.1:99999999999999999999",
};

static void test_endpoints(void)
{
	char host[ZL_ENDPOINT_HOST_MAX + 1], big[400];
	uint16_t port = 0;
	size_t ngood = sizeof(good_endpoints) / sizeof(good_endpoints[0]);
	size_t nbad = sizeof(bad_endpoints) / sizeof(bad_endpoints[0]);

	for (size_t i = 0; i < ngood; i++) {
		bool ok = zl_endpoint_check(good_endpoints[i]);
		if (!ok)
			fprintf(stderr, "  good endpoint refused: %s\n", good_endpoints[i]);
		CHECK(ok);
	}
	for (size_t i = 0; i < nbad; i++) {
		struct raw r;
		bool ok = zl_endpoint_check(bad_endpoints[i]);
		if (ok)
			fprintf(stderr, "  bad endpoint accepted: %s\n", bad_endpoints[i]);
		CHECK(!ok);
		if (bad_endpoints[i][0] == '\0')
			continue;
		raw_default(&r);
		r.eps[0] = bad_endpoints[i];
		CHECK(raw_decode(&r) == ZL_TOKEN_BAD_ENDPOINT);
	}
	CHECK(zl_endpoint_parse("[2001:db8::1]:51820", host, &port) && strcmp(host, "2001:db8::1") == 0 && port == 51820);
	CHECK(zl_endpoint_parse("example.org:7", host, &port) && strcmp(host, "example.org") == 0 && port == 7);
	CHECK(!zl_endpoint_check(NULL));
	/* Length limit: a 255-byte endpoint of valid labels passes, 256 bytes do not. */
	memset(big, 0, sizeof(big));
	for (int i = 0; i < 248; i++)
		big[i] = (i % 60 == 59) ? '.' : 'a';
	strcat(big, ":51820"); /* 248 + 6 = 254 */
	CHECK(strlen(big) == 254 && zl_endpoint_check(big));
	big[248] = 'b', big[249] = '\0';
	strcat(big, ":51820");
	CHECK(strlen(big) == 255 && zl_endpoint_check(big));
	memmove(big + 1, big, strlen(big) + 1);
	big[0] = 'c';
	CHECK(strlen(big) == 256 && !zl_endpoint_check(big));
}

static void test_create_refusals(void)
{
	const char *ok_ep[] = { "192.0.2.1:51820" };
	const char *bad_ep[] = { "192.0.2.1:51820", "nope" };
	const char *five[] = { "192.0.2.1:1", "192.0.2.1:2", "192.0.2.1:3", "192.0.2.1:4", "192.0.2.1:5" };
	uint8_t zero[32] = { 0 };
	struct zl_token t;
	struct zl_token_record rec;
	memset(&rec, 0x5a, sizeof(rec));
	CHECK(zl_token_create(&t, &rec, fixed_key, bad_ep, 2, NOW, 60) == ZL_TOKEN_BAD_ENDPOINT);
	CHECK(rec.max_uses == 0x5a5a5a5a); /* untouched */
	CHECK(zl_token_create(&t, &rec, fixed_key, ok_ep, 0, NOW, 60) == ZL_TOKEN_MALFORMED);
	CHECK(zl_token_create(&t, &rec, fixed_key, five, 5, NOW, 60) == ZL_TOKEN_MALFORMED);
	CHECK(zl_token_create(&t, &rec, zero, ok_ep, 1, NOW, 60) == ZL_TOKEN_MALFORMED);
	CHECK(zl_token_create(&t, &rec, fixed_key, ok_ep, 1, NOW, 0) == ZL_TOKEN_MALFORMED);
	CHECK(zl_token_create(&t, &rec, fixed_key, ok_ep, 1, NOW, ZL_TOKEN_MAX_TTL + 1) == ZL_TOKEN_MALFORMED);
	CHECK(zl_token_create(&t, &rec, fixed_key, ok_ep, 1, UINT64_MAX - 10, 60) == ZL_TOKEN_MALFORMED);
	CHECK(zl_token_create(&t, &rec, fixed_key, ok_ep, 1, NOW, ZL_TOKEN_MAX_TTL) == ZL_TOKEN_OK);
	/* An invalid struct cannot be encoded. */
	t.n_endpoints = 0;
	{
		char text[ZL_TOKEN_TEXT_MAX];
		CHECK(!zl_token_encode(&t, text, sizeof(text)));
	}
}

static void test_expiry(void)
{
	struct zl_token t, dec;
	char text[ZL_TOKEN_TEXT_MAX];
	fixed_token(&t);
	CHECK(zl_token_encode(&t, text, sizeof(text)));
	CHECK(zl_token_decode(text, t.expires_at - 1, &dec) == ZL_TOKEN_OK);
	CHECK(zl_token_decode(text, t.expires_at, &dec) == ZL_TOKEN_EXPIRED);
	CHECK(sodium_is_zero((uint8_t *)&dec, sizeof(dec))); /* nothing left behind on failure */
	CHECK(zl_token_decode(text, t.expires_at + 86400, &dec) == ZL_TOKEN_EXPIRED);
}

static void test_verify(void)
{
	const char *eps[] = { "192.0.2.1:51820" };
	struct zl_token t;
	struct zl_token_record rec, r;
	uint8_t other[32];

	CHECK(zl_token_create(&t, &rec, fixed_key, eps, 1, NOW, 600) == ZL_TOKEN_OK);
	CHECK(zl_token_verify(&rec, t.id, t.secret, NOW) == ZL_TOKEN_OK);
	/* Every single-bit change of the secret or the id is refused. */
	for (int i = 0; i < 32 * 8; i++) {
		memcpy(other, t.secret, 32);
		other[i / 8] ^= (uint8_t)(1u << (i % 8));
		CHECK(zl_token_verify(&rec, t.id, other, NOW) == ZL_TOKEN_INVALID);
	}
	for (int i = 0; i < 8 * 8; i++) {
		uint8_t id[8];
		memcpy(id, t.id, 8);
		id[i / 8] ^= (uint8_t)(1u << (i % 8));
		CHECK(zl_token_verify(&rec, id, t.secret, NOW) == ZL_TOKEN_INVALID);
	}
	CHECK(zl_token_verify(&rec, t.id, t.secret, NOW + 599) == ZL_TOKEN_OK);
	CHECK(zl_token_verify(&rec, t.id, t.secret, NOW + 600) == ZL_TOKEN_EXPIRED);

	r = rec;
	r.revoked = true;
	CHECK(zl_token_verify(&r, t.id, t.secret, NOW) == ZL_TOKEN_REVOKED);
	memset(other, 0, 32);
	CHECK(zl_token_verify(&r, t.id, other, NOW) == ZL_TOKEN_INVALID); /* state hidden without the secret */

	/* Single use: the second presentation of the same credential is a replay. */
	r = rec;
	CHECK(zl_token_verify(&r, t.id, t.secret, NOW) == ZL_TOKEN_OK);
	zl_token_mark_used(&r);
	CHECK(zl_token_verify(&r, t.id, t.secret, NOW) == ZL_TOKEN_USED);
	CHECK(zl_token_verify(&r, t.id, other, NOW) == ZL_TOKEN_INVALID);
	/* Multi-use records count down. */
	r = rec;
	r.max_uses = 2;
	zl_token_mark_used(&r);
	CHECK(zl_token_verify(&r, t.id, t.secret, NOW) == ZL_TOKEN_OK);
	zl_token_mark_used(&r);
	CHECK(zl_token_verify(&r, t.id, t.secret, NOW) == ZL_TOKEN_USED);
}

static void test_verify_table(void)
{
	const char *eps[] = { "192.0.2.1:51820" };
	struct zl_token t[4];
	struct zl_token_record recs[4];
	size_t idx = 99;
	uint8_t unknown[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };

	for (int i = 0; i < 4; i++)
		CHECK(zl_token_create(&t[i], &recs[i], fixed_key, eps, 1, NOW, 600) == ZL_TOKEN_OK);
	for (size_t i = 0; i < 4; i++) {
		idx = 99;
		CHECK(zl_token_verify_table(recs, 4, t[i].id, t[i].secret, NOW, &idx) == ZL_TOKEN_OK && idx == i);
	}
	CHECK(zl_token_verify_table(recs, 4, t[1].id, t[2].secret, NOW, &idx) == ZL_TOKEN_INVALID);
	CHECK(zl_token_verify_table(recs, 4, unknown, t[0].secret, NOW, &idx) == ZL_TOKEN_INVALID);
	CHECK(zl_token_verify_table(recs, 0, t[0].id, t[0].secret, NOW, &idx) == ZL_TOKEN_INVALID);
	recs[3].revoked = true;
	CHECK(zl_token_verify_table(recs, 4, t[3].id, t[3].secret, NOW, &idx) == ZL_TOKEN_REVOKED && idx == 3);
	zl_token_mark_used(&recs[2]);
	CHECK(zl_token_verify_table(recs, 4, t[2].id, t[2].secret, NOW, &idx) == ZL_TOKEN_USED && idx == 2);
}

static void test_hash_definition(void)
{
	/* secret_hash = BLAKE2b-256("zl-overlay token secret v1\0" || id || secret), pinned independently. */
	static const char label[] = "zl-overlay token secret v1";
	struct zl_token t;
	uint8_t in[sizeof(label) + 8 + 32], want[32], got[32];
	fixed_token(&t);
	memcpy(in, label, sizeof(label));
	memcpy(in + sizeof(label), t.id, 8);
	memcpy(in + sizeof(label) + 8, t.secret, 32);
	crypto_generichash(want, 32, in, sizeof(in), NULL, 0);
	zl_token_hash_secret(got, t.id, t.secret);
	CHECK_MEM_EQ(got, want, 32);
}

static void test_ids(void)
{
	uint8_t id[8] = { 0x00, 0x11, 0xaa, 0xff, 0x10, 0x20, 0x30, 0x4b }, back[8];
	char hex[17];
	zl_token_id_format(id, hex);
	CHECK(strcmp(hex, "0011aaff1020304b") == 0);
	CHECK(zl_token_id_parse(hex, back) && memcmp(back, id, 8) == 0);
	CHECK(zl_token_id_parse("0011AAFF1020304B", back) && memcmp(back, id, 8) == 0);
	CHECK(!zl_token_id_parse("0011aaff1020304", back));
	CHECK(!zl_token_id_parse("0011aaff1020304bb", back));
	CHECK(!zl_token_id_parse("0011aaff1020304g", back));
	CHECK(!zl_token_id_parse("0011aaff:1020304", back));
	CHECK(!zl_token_id_parse(NULL, back));
}

static void test_record_json(void)
{
	const char *eps[] = { "192.0.2.1:51820" };
	struct zl_token t;
	struct zl_token_record rec, back;
	json_object *o;
	static const char *const bad[] = {
		"{}",
		"[]",
		"{\"id\":\"0011aaff1020304b\",\"secret_hash\":\"00\",\"created_at\":1,\"expires_at\":2,\"max_uses\":1,\"uses\":0,\"revoked\":false}",
		"{\"id\":\"0011aaff1020304\",\"secret_hash\":\"%s\",\"created_at\":1,\"expires_at\":2,\"max_uses\":1,\"uses\":0,\"revoked\":false}",
		"{\"id\":\"0011aaff1020304b\",\"secret_hash\":\"%s\",\"created_at\":-1,\"expires_at\":2,\"max_uses\":1,\"uses\":0,\"revoked\":false}",
		"{\"id\":\"0011aaff1020304b\",\"secret_hash\":\"%s\",\"created_at\":1,\"expires_at\":\"2\",\"max_uses\":1,\"uses\":0,\"revoked\":false}",
		"{\"id\":\"0011aaff1020304b\",\"secret_hash\":\"%s\",\"created_at\":1,\"expires_at\":0,\"max_uses\":1,\"uses\":0,\"revoked\":false}",
		"{\"id\":\"0011aaff1020304b\",\"secret_hash\":\"%s\",\"created_at\":3,\"expires_at\":2,\"max_uses\":1,\"uses\":0,\"revoked\":false}",
		"{\"id\":\"0011aaff1020304b\",\"secret_hash\":\"%s\",\"created_at\":1,\"expires_at\":2,\"max_uses\":0,\"uses\":0,\"revoked\":false}",
		"{\"id\":\"0011aaff1020304b\",\"secret_hash\":\"%s\",\"created_at\":1,\"expires_at\":2,\"max_uses\":4294967296,\"uses\":0,\"revoked\":false}",
		"{\"id\":\"0011aaff1020304b\",\"secret_hash\":\"%s\",\"created_at\":1,\"expires_at\":2,\"max_uses\":1,\"uses\":0,\"revoked\":0}",
		"{\"id\":\"0011aaff1020304b\",\"secret_hash\":\"%s\",\"created_at\":1,\"expires_at\":2,\"max_uses\":1,\"uses\":0}",
		"{\"id\":\"0011aaff1020304b\",\"secret_hash\":\"%s\",\"created_at\":1.5,\"expires_at\":2,\"max_uses\":1,\"uses\":0,\"revoked\":false}",
	};
	char hash_hex[65], text[512];

	CHECK(zl_token_create(&t, &rec, fixed_key, eps, 1, NOW, 600) == ZL_TOKEN_OK);
	rec.uses = 1;
	rec.revoked = true;
	o = zl_token_record_to_json(&rec);
	CHECK(o != NULL);
	memset(&back, 0, sizeof(back));
	CHECK(zl_token_record_from_json(o, &back));
	CHECK(memcmp(&back, &rec, sizeof(rec)) == 0);
	/* It serializes no secret. */
	{
		char secret_hex[65];
		sodium_bin2hex(secret_hex, sizeof(secret_hex), t.secret, 32);
		CHECK(strstr(json_object_to_json_string(o), secret_hex) == NULL);
	}
	json_object_put(o);

	sodium_bin2hex(hash_hex, sizeof(hash_hex), rec.secret_hash, 32);
	/* The control: the good template parses. */
	snprintf(text, sizeof(text),
		 "{\"id\":\"0011aaff1020304b\",\"secret_hash\":\"%s\",\"created_at\":1,\"expires_at\":2,\"max_uses\":1,\"uses\":0,\"revoked\":false}",
		 hash_hex);
	o = json_tokener_parse(text);
	CHECK(o && zl_token_record_from_json(o, &back));
	json_object_put(o);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct zl_token_record untouched;
		memset(&untouched, 0x33, sizeof(untouched));
		back = untouched;
		snprintf(text, sizeof(text), bad[i], hash_hex);
		o = json_tokener_parse(text);
		CHECK(o != NULL);
		CHECK(!zl_token_record_from_json(o, &back));
		CHECK(memcmp(&back, &untouched, sizeof(back)) == 0);
		json_object_put(o);
	}
}

static void test_ttl(void)
{
	static const struct {
		const char *s;
		bool ok;
		uint64_t v;
	} cases[] = {
		{ "60", true, 60 }, { "90s", true, 90 }, { "30m", true, 1800 }, { "24h", true, 86400 }, { "7d", true, 604800 },
		{ "365d", true, ZL_TOKEN_MAX_TTL }, { "366d", false, 0 }, { "0", false, 0 }, { "0h", false, 0 },
		{ "", false, 0 }, { "h", false, 0 }, { "-1", false, 0 }, { "1w", false, 0 }, { "1hh", false, 0 },
		{ "01h", false, 0 }, { " 1h", false, 0 }, { "1h ", false, 0 }, { "99999999999999999999", false, 0 },
		{ "31536001", false, 0 }, { "31536000", true, 31536000 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t v = 12345;
		bool ok = zl_token_parse_ttl(cases[i].s, &v);
		if (ok != cases[i].ok)
			fprintf(stderr, "  ttl case %s\n", cases[i].s);
		CHECK(ok == cases[i].ok);
		CHECK(ok ? v == cases[i].v : v == 12345);
	}
	CHECK(!zl_token_parse_ttl(NULL, NULL));
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	TEST_RUN(test_round_trip);
	TEST_RUN(test_independent_encoder_matches);
	TEST_RUN(test_whitespace_and_buffer);
	TEST_RUN(test_every_change_refused);
	TEST_RUN(test_truncations_refused);
	TEST_RUN(test_versions);
	TEST_RUN(test_malformed_fields);
	TEST_RUN(test_endpoints);
	TEST_RUN(test_create_refusals);
	TEST_RUN(test_expiry);
	TEST_RUN(test_verify);
	TEST_RUN(test_verify_table);
	TEST_RUN(test_hash_definition);
	TEST_RUN(test_ids);
	TEST_RUN(test_record_json);
	TEST_RUN(test_ttl);
	return TEST_SUMMARY();
}
