/* Control-socket frames: the length-prefixed JSON stream, its request/response envelopes, and the
 * client's re-dial backoff. See frame.h. */
#include "overlay/frame.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* JSON numbers are doubles in many clients: ids above 2^53 would not survive a round trip there. */
#define MAX_SAFE_ID (1ull << 53)

/* ---- Decoder ---- */

void zl_frame_decoder_init(struct zl_frame_decoder *d, size_t max)
{
	memset(d, 0, sizeof(*d));
	d->max = (max == 0 || max > ZL_FRAME_MAX) ? ZL_FRAME_MAX : max;
}

void zl_frame_decoder_free(struct zl_frame_decoder *d)
{
	free(d->body);
	d->body = NULL;
	d->header_have = d->body_len = d->body_have = 0;
}

bool zl_frame_decoder_idle(const struct zl_frame_decoder *d)
{
	return !d->failed && d->header_have == 0;
}

const char *zl_frame_decoder_error(const struct zl_frame_decoder *d)
{
	return d->failed ? d->error : "";
}

__attribute__((format(printf, 2, 3))) static int fail(struct zl_frame_decoder *d, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(d->error, sizeof(d->error), fmt, ap);
	va_end(ap);
	d->failed = true;
	zl_frame_decoder_free(d);
	return -1;
}

/* The length is judged from the header alone, so an oversized frame costs no allocation. */
static int start_body(struct zl_frame_decoder *d)
{
	const uint8_t *h = d->header;
	uint32_t len = (uint32_t)h[0] | (uint32_t)h[1] << 8 | (uint32_t)h[2] << 16 | (uint32_t)h[3] << 24;
	if (len == 0)
		return fail(d, "frame: empty frame");
	if (len > d->max)
		return fail(d, "frame: too large (%u bytes, limit %zu)", len, d->max);
	d->body = malloc(len);
	if (!d->body)
		return fail(d, "frame: out of memory");
	d->body_len = len;
	d->body_have = 0;
	return 0;
}

/* One strict JSON object filling the whole body (trailing whitespace allowed, nothing else). */
static int parse_body(struct zl_frame_decoder *d, json_object **out)
{
	struct json_tokener *tok;
	json_object *obj = NULL;
	enum json_tokener_error jerr;
	size_t end;

	if (memchr(d->body, '\0', d->body_len))
		return fail(d, "frame: invalid JSON (NUL byte)");
	tok = json_tokener_new();
	if (!tok)
		return fail(d, "frame: out of memory");
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	obj = json_tokener_parse_ex(tok, d->body, (int)d->body_len);
	jerr = json_tokener_get_error(tok);
	end = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	if (!obj || jerr != json_tokener_success || end != d->body_len) {
		json_object_put(obj);
		if (jerr == json_tokener_continue)
			return fail(d, "frame: invalid JSON (truncated)");
		return fail(d, "frame: invalid JSON (%s at byte %zu)",
			    jerr == json_tokener_success ? "trailing data" : json_tokener_error_desc(jerr), end);
	}
	if (!json_object_is_type(obj, json_type_object)) {
		json_object_put(obj);
		return fail(d, "frame: not a JSON object");
	}
	*out = obj;
	return 1;
}

int zl_frame_decoder_feed(struct zl_frame_decoder *d, const uint8_t *data, size_t len, size_t *consumed,
			  json_object **out)
{
	size_t used = 0, n;
	int rc;

	*consumed = 0;
	*out = NULL;
	if (d->failed)
		return -1;
	while (used < len) {
		if (d->header_have < ZL_FRAME_HEADER_LEN) {
			n = ZL_FRAME_HEADER_LEN - d->header_have;
			n = n < len - used ? n : len - used;
			memcpy(d->header + d->header_have, data + used, n);
			d->header_have += n;
			used += n;
			if (d->header_have == ZL_FRAME_HEADER_LEN && start_body(d) < 0)
				break;
			continue;
		}
		n = d->body_len - d->body_have;
		n = n < len - used ? n : len - used;
		memcpy(d->body + d->body_have, data + used, n);
		d->body_have += n;
		used += n;
		if (d->body_have < d->body_len)
			continue;
		rc = parse_body(d, out);
		if (rc > 0)
			zl_frame_decoder_free(d); /* ready for the next header */
		*consumed = used;
		return rc;
	}
	*consumed = used;
	return d->failed ? -1 : 0;
}

/* ---- Encoder ---- */

int zl_frame_encode(json_object *obj, size_t max, uint8_t **out, size_t *out_len)
{
	const char *text;
	size_t len = 0;
	uint8_t *buf;

	*out = NULL;
	*out_len = 0;
	if (max == 0 || max > ZL_FRAME_MAX)
		max = ZL_FRAME_MAX;
	if (!obj || !json_object_is_type(obj, json_type_object))
		return -EINVAL;
	text = json_object_to_json_string_length(obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
	if (!text)
		return -ENOMEM;
	if (len > max)
		return -EMSGSIZE;
	buf = malloc(ZL_FRAME_HEADER_LEN + len);
	if (!buf)
		return -ENOMEM;
	for (int i = 0; i < 4; i++)
		buf[i] = (uint8_t)(len >> (8 * i));
	memcpy(buf + ZL_FRAME_HEADER_LEN, text, len);
	*out = buf;
	*out_len = ZL_FRAME_HEADER_LEN + len;
	return 0;
}

/* ---- Envelopes ---- */

/* Adds key -> val to o, taking ownership of val even on failure. */
static bool add(json_object *o, const char *key, json_object *val)
{
	if (!val)
		return false;
	if (json_object_object_add(o, key, val) != 0) {
		json_object_put(val);
		return false;
	}
	return true;
}

json_object *zl_frame_request_new(uint64_t id, const char *type, json_object **request)
{
	json_object *env = json_object_new_object(), *req = json_object_new_object();
	if (!env || !req || !add(req, "type", json_object_new_string(type ? type : ""))) {
		json_object_put(env);
		json_object_put(req);
		return NULL;
	}
	if (!add(env, "id", json_object_new_uint64(id)) || !add(env, "version", json_object_new_int(ZL_API_VERSION)) ||
	    !add(env, "request", req)) {
		json_object_put(env);
		return NULL;
	}
	*request = req;
	return env;
}

static json_object *response_new(uint64_t id, const char *result, json_object **body)
{
	json_object *env = json_object_new_object(), *resp = json_object_new_object();
	if (!env || !resp || !add(resp, "result", json_object_new_string(result))) {
		json_object_put(env);
		json_object_put(resp);
		return NULL;
	}
	if (!add(env, "id", json_object_new_uint64(id)) || !add(env, "response", resp)) {
		json_object_put(env);
		return NULL;
	}
	*body = resp;
	return env;
}

json_object *zl_frame_response_ok(uint64_t id, json_object **body)
{
	return response_new(id, "ok", body);
}

json_object *zl_frame_response_err(uint64_t id, const char *message)
{
	json_object *body, *env = response_new(id, "err", &body);
	if (env && !add(body, "message", json_object_new_string(message ? message : "error"))) {
		json_object_put(env);
		return NULL;
	}
	return env;
}

__attribute__((format(printf, 3, 4))) static bool refuse(char *err, size_t err_len, const char *fmt, ...)
{
	va_list ap;
	if (err && err_len) {
		va_start(ap, fmt);
		vsnprintf(err, err_len, fmt, ap);
		va_end(ap);
	}
	return false;
}

static json_object *member(json_object *o, const char *key, enum json_type type)
{
	json_object *v;
	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, type))
		return NULL;
	return v;
}

/* json-c keeps integers as int64 or uint64; anything negative or beyond 2^53 is refused. */
static bool get_id(json_object *frame, uint64_t *id)
{
	json_object *v = member(frame, "id", json_type_int);
	int64_t x;
	if (!v)
		return false;
	x = json_object_get_int64(v);
	if (x < 0 || (uint64_t)x > MAX_SAFE_ID)
		return false;
	*id = (uint64_t)x;
	return true;
}

bool zl_frame_request_parse(json_object *frame, struct zl_frame_request *req, char *err, size_t err_len)
{
	json_object *v, *type;

	memset(req, 0, sizeof(*req));
	if (!json_object_is_type(frame, json_type_object))
		return refuse(err, err_len, "request: not a JSON object");
	req->has_id = get_id(frame, &req->id);
	if (!req->has_id)
		return refuse(err, err_len, "request: missing or invalid id (a non-negative integer)");
	v = member(frame, "version", json_type_int);
	if (!v)
		return refuse(err, err_len, "request: missing or invalid version");
	if (json_object_get_int64(v) != ZL_API_VERSION)
		return refuse(err, err_len, "request: unsupported protocol version %lld (this daemon speaks %d)",
			      (long long)json_object_get_int64(v), ZL_API_VERSION);
	req->request = member(frame, "request", json_type_object);
	if (!req->request)
		return refuse(err, err_len, "request: missing request object");
	type = member(req->request, "type", json_type_string);
	if (!type || json_object_get_string_len(type) == 0)
		return refuse(err, err_len, "request: missing request type");
	req->type = json_object_get_string(type);
	return true;
}

bool zl_frame_response_parse(json_object *frame, struct zl_frame_response *resp, char *err, size_t err_len)
{
	json_object *result, *msg;
	const char *r;

	memset(resp, 0, sizeof(*resp));
	if (!json_object_is_type(frame, json_type_object))
		return refuse(err, err_len, "response: not a JSON object");
	if (!get_id(frame, &resp->id))
		return refuse(err, err_len, "response: missing or invalid id");
	resp->body = member(frame, "response", json_type_object);
	if (!resp->body)
		return refuse(err, err_len, "response: missing response object");
	result = member(resp->body, "result", json_type_string);
	r = result ? json_object_get_string(result) : "";
	if (strcmp(r, "ok") == 0) {
		resp->ok = true;
		return true;
	}
	if (strcmp(r, "err") != 0)
		return refuse(err, err_len, "response: result must be \"ok\" or \"err\"");
	msg = member(resp->body, "message", json_type_string);
	if (!msg)
		return refuse(err, err_len, "response: error without a message");
	resp->message = json_object_get_string(msg);
	return true;
}

/* ---- Backoff ---- */

uint32_t zl_backoff_delay_ms(const struct zl_backoff *p, unsigned attempt, uint32_t random)
{
	struct zl_backoff b = p ? *p : ZL_BACKOFF_DEFAULT;
	uint64_t delay = b.initial_ms, cut;

	/* Double with saturation: once at the cap, further attempts change nothing (no shift overflow). */
	for (unsigned i = 0; i < attempt && delay && delay < b.max_ms; i++)
		delay *= 2;
	if (delay > b.max_ms)
		delay = b.max_ms;
	if (b.jitter_percent > 100)
		b.jitter_percent = 100;
	cut = delay * b.jitter_percent / 100;
	cut = (cut * random) >> 32;
	return (uint32_t)(delay - cut);
}
