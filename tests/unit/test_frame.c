/* Control-socket framing tests: a multi-frame stream fed split at every point and every pair of points,
 * byte by byte; the size limit judged from the header; invalid JSON, non-objects, NUL bytes, bad UTF-8 and
 * empty frames refused for good; the encoder's byte layout and limits; request/response envelopes and
 * their validation; the re-dial backoff sequence with and without jitter. */
#include "test.h"

#include <errno.h>
#include <stdint.h>

#include "overlay/frame.h"

static const char *const stream_objects[] = {
	"{\"id\":1,\"version\":1,\"request\":{\"type\":\"status\"}}",
	"{\"a\":[1,2,{\"b\":\"caf\xc3\xa9\"}],\"c\":null}",
	"{}",
	"{\"id\":2,\"response\":{\"result\":\"err\",\"message\":\"no such peer\"}}",
};
enum { N_OBJ = sizeof(stream_objects) / sizeof(stream_objects[0]) };

static size_t put_frame(uint8_t *out, const void *body, size_t len)
{
	for (int i = 0; i < 4; i++)
		out[i] = (uint8_t)(len >> (8 * i));
	memcpy(out + 4, body, len);
	return 4 + len;
}

static size_t build_stream(uint8_t *out)
{
	size_t off = 0;
	for (int i = 0; i < N_OBJ; i++)
		off += put_frame(out + off, stream_objects[i], strlen(stream_objects[i]));
	return off;
}

/* Feeds one chunk completely, collecting every object it completes. Returns false on a decoder error. */
static bool feed_all(struct zl_frame_decoder *d, const uint8_t *p, size_t len, json_object **got, int *n_got)
{
	while (len) {
		size_t used;
		json_object *o;
		int rc = zl_frame_decoder_feed(d, p, len, &used, &o);
		if (rc < 0)
			return false;
		if (used > len || (rc == 0 && used != len))
			return false;
		if (rc == 1) {
			if (*n_got >= N_OBJ)
				return false;
			got[(*n_got)++] = o;
		}
		p += used;
		len -= used;
	}
	return true;
}

static bool matches_expected(json_object **got, int n_got)
{
	bool ok = n_got == N_OBJ;
	for (int i = 0; i < n_got; i++) {
		json_object *want = json_tokener_parse(stream_objects[i]);
		ok = ok && json_object_equal(got[i], want);
		json_object_put(want);
		json_object_put(got[i]);
	}
	return ok;
}

static bool decode_in_chunks(const uint8_t *s, size_t len, const size_t *cuts, int n_cuts)
{
	struct zl_frame_decoder d;
	json_object *got[N_OBJ];
	int n_got = 0;
	size_t prev = 0;
	bool ok = true;

	zl_frame_decoder_init(&d, 0);
	for (int i = 0; i <= n_cuts && ok; i++) {
		size_t end = i < n_cuts ? cuts[i] : len;
		ok = feed_all(&d, s + prev, end - prev, got, &n_got);
		prev = end;
	}
	ok = ok && zl_frame_decoder_idle(&d);
	ok = matches_expected(got, n_got) && ok;
	zl_frame_decoder_free(&d);
	return ok;
}

static void test_every_split(void)
{
	uint8_t s[1024];
	size_t len = build_stream(s), bad = 0;

	CHECK(decode_in_chunks(s, len, NULL, 0));
	for (size_t i = 0; i <= len; i++)
		bad += !decode_in_chunks(s, len, &i, 1);
	CHECK(bad == 0);
	for (size_t i = 0; i <= len; i++)
		for (size_t j = i; j <= len; j++) {
			size_t cuts[2] = { i, j };
			bad += !decode_in_chunks(s, len, cuts, 2);
		}
	CHECK(bad == 0);
}

static void test_byte_by_byte(void)
{
	uint8_t s[1024];
	size_t len = build_stream(s);
	struct zl_frame_decoder d;
	json_object *got[N_OBJ];
	int n_got = 0;
	bool ok = true;

	zl_frame_decoder_init(&d, 0);
	for (size_t i = 0; i < len && ok; i++) {
		ok = feed_all(&d, s + i, 1, got, &n_got);
		/* Idle exactly at frame boundaries. */
		if (ok && zl_frame_decoder_idle(&d)) {
			size_t off = 0;
			bool at_boundary = false;
			for (int k = 0; k < N_OBJ && !at_boundary; k++) {
				off += 4 + strlen(stream_objects[k]);
				at_boundary = off == i + 1;
			}
			CHECK(at_boundary);
		}
	}
	CHECK(ok);
	CHECK(matches_expected(got, n_got));
	zl_frame_decoder_free(&d);
}

/* A single feed call stops at the end of the first frame, leaving the rest for the next call. */
static void test_feed_stops_after_frame(void)
{
	uint8_t s[1024];
	size_t len = build_stream(s), used;
	struct zl_frame_decoder d;
	json_object *o;

	zl_frame_decoder_init(&d, 0);
	CHECK(zl_frame_decoder_feed(&d, s, len, &used, &o) == 1);
	CHECK(used == 4 + strlen(stream_objects[0]));
	json_object_put(o);
	CHECK(zl_frame_decoder_feed(&d, s, 0, &used, &o) == 0 && used == 0 && o == NULL);
	zl_frame_decoder_free(&d);
}

static int feed_once(struct zl_frame_decoder *d, const uint8_t *p, size_t len, size_t *used)
{
	json_object *o = NULL;
	int rc = zl_frame_decoder_feed(d, p, len, used, &o);
	json_object_put(o);
	return rc;
}

static void test_size_limit(void)
{
	struct zl_frame_decoder d;
	uint8_t buf[64];
	size_t used;
	const char *body16 = "{\"abcdefghij\":1}";

	/* Exactly the limit passes; one more byte is refused from the header alone. */
	CHECK(strlen(body16) == 16);
	zl_frame_decoder_init(&d, 16);
	CHECK(feed_once(&d, buf, put_frame(buf, body16, 16), &used) == 1);
	zl_frame_decoder_free(&d);

	zl_frame_decoder_init(&d, 15);
	put_frame(buf, body16, 16);
	CHECK(feed_once(&d, buf, 20, &used) == -1);
	CHECK(used == 4);
	CHECK(d.body == NULL);
	CHECK(strstr(zl_frame_decoder_error(&d), "too large") != NULL);
	CHECK(feed_once(&d, buf + 4, 16, &used) == -1); /* stays failed */
	CHECK(!zl_frame_decoder_idle(&d));
	zl_frame_decoder_free(&d);

	/* The default limit: 8 MiB. */
	{
		static const uint32_t lens[] = { ZL_FRAME_MAX + 1, 0xffffffffu, 0x80000000u };
		for (size_t i = 0; i < 3; i++) {
			uint8_t h[4] = { (uint8_t)lens[i], (uint8_t)(lens[i] >> 8), (uint8_t)(lens[i] >> 16),
					 (uint8_t)(lens[i] >> 24) };
			zl_frame_decoder_init(&d, 0);
			CHECK(feed_once(&d, h, 2, &used) == 0 && used == 2);
			CHECK(feed_once(&d, h + 2, 2, &used) == -1 && d.body == NULL);
			zl_frame_decoder_free(&d);
		}
		zl_frame_decoder_init(&d, ZL_FRAME_MAX * 4u);
		CHECK(d.max == ZL_FRAME_MAX);
	}
}

static void test_invalid_frames(void)
{
	static const struct {
		const char *body;
		size_t len;
		const char *msg;
	} cases[] = {
		{ "", 0, "empty frame" },
		{ "{abc", 4, "invalid JSON" },
		{ "{\"a\":", 5, "truncated" },
		{ "[1,2]", 5, "not a JSON object" },
		{ "\"str\"", 5, "not a JSON object" },
		{ "42 ", 3, "not a JSON object" },
		{ "{}x", 3, "invalid JSON" },
		{ "{}{}", 4, "invalid JSON" },
		{ "{\"a\":1,}", 8, "invalid JSON" },
		{ "{\"a\":\"x\0y\"}", 11, "NUL" },
		{ "{}\0", 3, "NUL" },
		{ "{\"a\":\"\xff\xfe\"}", 10, "invalid JSON" },
		{ "{\"a\":\"\xc3\"}", 9, "invalid JSON" },
		{ "{\"a\":01}", 8, "invalid JSON" },
		{ "   ", 3, "invalid JSON" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct zl_frame_decoder d;
		uint8_t buf[64], good[64];
		size_t used, n = put_frame(buf, cases[i].body, cases[i].len);
		int rc;
		zl_frame_decoder_init(&d, 0);
		rc = feed_once(&d, buf, n, &used);
		CHECK(rc == -1);
		if (rc != -1 || !strstr(zl_frame_decoder_error(&d), cases[i].msg)) {
			fprintf(stderr, "  case %zu: rc %d error '%s'\n", i, rc, zl_frame_decoder_error(&d));
			CHECK(0);
		}
		CHECK(strncmp(zl_frame_decoder_error(&d), "frame: ", 7) == 0);
		/* After an error the stream is dead, even for a good frame. */
		CHECK(feed_once(&d, good, put_frame(good, "{}", 2), &used) == -1);
		zl_frame_decoder_free(&d);
	}
}

static void test_trailing_whitespace_allowed(void)
{
	struct zl_frame_decoder d;
	uint8_t buf[32];
	size_t used;
	zl_frame_decoder_init(&d, 0);
	CHECK(feed_once(&d, buf, put_frame(buf, " {\"a\":1}\n", 9), &used) == 1);
	zl_frame_decoder_free(&d);
}

static void test_encode(void)
{
	json_object *o = json_tokener_parse("{\"a\":1}"), *arr = json_tokener_parse("[1]"), *back;
	json_object *path = json_tokener_parse("{\"p\":\"/var/lib/zl\"}");
	uint8_t *buf;
	size_t len, used;
	struct zl_frame_decoder d;

	CHECK(zl_frame_encode(o, 0, &buf, &len) == 0);
	CHECK(len == 4 + 7);
	CHECK(memcmp(buf, "\x07\x00\x00\x00{\"a\":1}", 11) == 0);
	zl_frame_decoder_init(&d, 0);
	CHECK(zl_frame_decoder_feed(&d, buf, len, &used, &back) == 1 && used == len);
	CHECK(json_object_equal(o, back));
	json_object_put(back);
	zl_frame_decoder_free(&d);
	free(buf);

	CHECK(zl_frame_encode(path, 0, &buf, &len) == 0);
	CHECK(memmem(buf, len, "/var/lib/zl", 11) != NULL); /* no "\/" escaping */
	free(buf);

	CHECK(zl_frame_encode(o, 7, &buf, &len) == 0);
	free(buf);
	CHECK(zl_frame_encode(o, 6, &buf, &len) == -EMSGSIZE && buf == NULL && len == 0);
	CHECK(zl_frame_encode(arr, 0, &buf, &len) == -EINVAL);
	CHECK(zl_frame_encode(NULL, 0, &buf, &len) == -EINVAL);
	json_object_put(o);
	json_object_put(arr);
	json_object_put(path);
}

/* A frame bigger than 64 KiB round-trips (the length uses more than two bytes). */
static void test_large_frame(void)
{
	json_object *o = json_object_new_object(), *back = NULL;
	char *big = malloc(300000);
	uint8_t *buf;
	size_t len, used, off = 0;
	struct zl_frame_decoder d;
	int rc = 0;

	memset(big, 'x', 299999);
	big[299999] = '\0';
	json_object_object_add(o, "blob", json_object_new_string(big));
	CHECK(zl_frame_encode(o, 0, &buf, &len) == 0);
	CHECK(buf[2] == 0x04); /* 300010 = 0x0493EA */
	zl_frame_decoder_init(&d, 0);
	while (off < len && rc == 0) { /* in 4093-byte chunks */
		size_t chunk = len - off < 4093 ? len - off : 4093;
		rc = zl_frame_decoder_feed(&d, buf + off, chunk, &used, &back);
		off += used;
	}
	CHECK(rc == 1 && off == len && json_object_equal(o, back));
	json_object_put(back);
	zl_frame_decoder_free(&d);
	free(buf);
	free(big);
	json_object_put(o);
}

static json_object *reparse(json_object *o)
{
	json_object *r = json_tokener_parse(json_object_to_json_string(o));
	json_object_put(o);
	return r;
}

static void test_request_envelope(void)
{
	json_object *req, *env = zl_frame_request_new(42, "remove-peer", &req), *node;
	struct zl_frame_request r;
	char err[128];

	CHECK(env != NULL);
	json_object_object_add(req, "node", json_object_new_string("node-0-5"));
	env = reparse(env);
	CHECK(zl_frame_request_parse(env, &r, err, sizeof(err)));
	CHECK(r.has_id && r.id == 42 && strcmp(r.type, "remove-peer") == 0);
	CHECK(json_object_object_get_ex(r.request, "node", &node) &&
	      strcmp(json_object_get_string(node), "node-0-5") == 0);
	json_object_put(env);
}

static void test_request_envelope_refusals(void)
{
	static const struct {
		const char *json;
		bool has_id;
		const char *msg;
	} cases[] = {
		{ "{\"version\":1,\"request\":{\"type\":\"status\"}}", false, "id" },
		{ "{\"id\":-1,\"version\":1,\"request\":{\"type\":\"status\"}}", false, "id" },
		{ "{\"id\":\"1\",\"version\":1,\"request\":{\"type\":\"status\"}}", false, "id" },
		{ "{\"id\":1.5,\"version\":1,\"request\":{\"type\":\"status\"}}", false, "id" },
		{ "{\"id\":9007199254740993,\"version\":1,\"request\":{\"type\":\"status\"}}", false, "id" },
		{ "{\"id\":18446744073709551615,\"version\":1,\"request\":{\"type\":\"status\"}}", false, "id" },
		{ "{\"id\":7,\"request\":{\"type\":\"status\"}}", true, "version" },
		{ "{\"id\":7,\"version\":\"1\",\"request\":{\"type\":\"status\"}}", true, "version" },
		{ "{\"id\":7,\"version\":2,\"request\":{\"type\":\"status\"}}", true, "unsupported protocol version 2" },
		{ "{\"id\":7,\"version\":1}", true, "request object" },
		{ "{\"id\":7,\"version\":1,\"request\":[]}", true, "request object" },
		{ "{\"id\":7,\"version\":1,\"request\":{}}", true, "type" },
		{ "{\"id\":7,\"version\":1,\"request\":{\"type\":\"\"}}", true, "type" },
		{ "{\"id\":7,\"version\":1,\"request\":{\"type\":3}}", true, "type" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_object *o = json_tokener_parse(cases[i].json);
		struct zl_frame_request r;
		char err[128] = "";
		CHECK(o != NULL);
		CHECK(!zl_frame_request_parse(o, &r, err, sizeof(err)));
		CHECK(r.has_id == cases[i].has_id);
		if (cases[i].has_id)
			CHECK(r.id == 7);
		if (!strstr(err, cases[i].msg)) {
			fprintf(stderr, "  case %zu: '%s'\n", i, err);
			CHECK(0);
		}
		json_object_put(o);
	}
	{
		json_object *o = json_tokener_parse("{\"id\":9007199254740992,\"version\":1,\"request\":{\"type\":\"x\"}}");
		struct zl_frame_request r;
		CHECK(zl_frame_request_parse(o, &r, NULL, 0) && r.id == 9007199254740992ull);
		json_object_put(o);
	}
}

static void test_response_envelope(void)
{
	json_object *body, *env = zl_frame_response_ok(9, &body);
	struct zl_frame_response r;
	char err[128];

	json_object_object_add(body, "node_ip", json_object_new_string("10.200.0.1"));
	env = reparse(env);
	CHECK(zl_frame_response_parse(env, &r, err, sizeof(err)));
	CHECK(r.ok && r.id == 9 && r.message == NULL && json_object_object_get_ex(r.body, "node_ip", NULL));
	json_object_put(env);

	env = reparse(zl_frame_response_err(10, "no such peer: node-9"));
	CHECK(strcmp(json_object_to_json_string_ext(env, JSON_C_TO_STRING_PLAIN),
		     "{\"id\":10,\"response\":{\"result\":\"err\",\"message\":\"no such peer: node-9\"}}") == 0);
	CHECK(zl_frame_response_parse(env, &r, err, sizeof(err)));
	CHECK(!r.ok && r.id == 10 && strcmp(r.message, "no such peer: node-9") == 0);
	json_object_put(env);

	for (const char *bad = "{\"id\":1}\0{\"id\":1,\"response\":{}}\0{\"id\":1,\"response\":{\"result\":\"maybe\"}}\0"
			       "{\"id\":1,\"response\":{\"result\":\"err\"}}\0{\"response\":{\"result\":\"ok\"}}\0"
			       "{\"id\":1,\"response\":{\"result\":\"err\",\"message\":5}}\0";
	     *bad; bad += strlen(bad) + 1) {
		json_object *o = json_tokener_parse(bad);
		err[0] = '\0';
		CHECK(o && !zl_frame_response_parse(o, &r, err, sizeof(err)));
		CHECK(strncmp(err, "response: ", 10) == 0);
		json_object_put(o);
	}
}

static void test_backoff(void)
{
	static const uint32_t want[] = { 100, 200, 400, 800, 1000, 1000, 1000 };
	struct zl_backoff jit = ZL_BACKOFF_DEFAULT, zero = { 0, 1000, 0 }, wide = { 250, 60000, 0 };

	for (unsigned i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		CHECK(zl_backoff_delay_ms(NULL, i, 0xdeadbeef) == want[i]);
		CHECK(zl_backoff_delay_ms(&jit, i, 0xdeadbeef) == want[i]);
	}
	CHECK(zl_backoff_delay_ms(NULL, 1000, 0) == 1000);
	CHECK(zl_backoff_delay_ms(NULL, ~0u, 0) == 1000);
	CHECK(zl_backoff_delay_ms(&zero, ~0u, 0) == 0); /* must not spin or overflow */
	CHECK(zl_backoff_delay_ms(&wide, 7, 0) == 32000);
	CHECK(zl_backoff_delay_ms(&wide, 8, 0) == 60000);

	jit.jitter_percent = 20;
	CHECK(zl_backoff_delay_ms(&jit, 0, 0) == 100);
	CHECK(zl_backoff_delay_ms(&jit, 4, 0) == 1000);
	CHECK(zl_backoff_delay_ms(&jit, 4, 0x80000000u) == 900);
	CHECK(zl_backoff_delay_ms(&jit, 4, 0xffffffffu) == 801);
	for (uint32_t r = 0; r < 4000; r++) {
		uint32_t rnd = r * 1073807u, d = zl_backoff_delay_ms(&jit, 3, rnd);
		CHECK(d >= 640 && d <= 800);
	}
	jit.jitter_percent = 250; /* clamped to 100 */
	CHECK(zl_backoff_delay_ms(&jit, 4, 0xffffffffu) <= 1);
}

int main(void)
{
	TEST_RUN(test_every_split);
	TEST_RUN(test_byte_by_byte);
	TEST_RUN(test_feed_stops_after_frame);
	TEST_RUN(test_size_limit);
	TEST_RUN(test_invalid_frames);
	TEST_RUN(test_trailing_whitespace_allowed);
	TEST_RUN(test_encode);
	TEST_RUN(test_large_frame);
	TEST_RUN(test_request_envelope);
	TEST_RUN(test_request_envelope_refusals);
	TEST_RUN(test_response_envelope);
	TEST_RUN(test_backoff);
	return TEST_SUMMARY();
}
