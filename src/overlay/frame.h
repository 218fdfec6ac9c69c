/* Control-socket framing for zl-overlayd's Unix socket (DIR/run/zl-overlayd.sock): each frame is a u32
 * little-endian length followed by that many bytes of one JSON object, at most ZL_FRAME_MAX bytes.
 *   request  {"id": n, "version": 1, "request": {"type": "...", ...}}
 *   response {"id": n, "response": {"result": "ok", ...}}  or  {"id": n, "response": {"result": "err",
 *            "message": "..."}}
 * Pure: no I/O. The decoder takes bytes as they arrive, in any split, and yields whole objects; any
 * framing or JSON error is final (the caller closes the connection, since the stream can no longer be
 * resynchronized). Also the client's re-dial backoff policy. */
#ifndef ZL_OVERLAY_FRAME_H
#define ZL_OVERLAY_FRAME_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#define ZL_FRAME_MAX (8u << 20)   /* 8 MiB of JSON, as the reference */
#define ZL_API_VERSION 1

enum { ZL_FRAME_HEADER_LEN = 4, ZL_FRAME_ERROR_LEN = 128 };

/* Incremental decoder, one per connection. Owns the partial frame; zl_frame_decoder_free releases it. */
struct zl_frame_decoder {
	uint8_t header[ZL_FRAME_HEADER_LEN];
	size_t header_have;
	char *body;            /* allocated once the header is complete */
	size_t body_len, body_have;
	size_t max;
	bool failed;
	char error[ZL_FRAME_ERROR_LEN];
};

/* max 0 means ZL_FRAME_MAX; a larger value is clamped to it. */
void zl_frame_decoder_init(struct zl_frame_decoder *d, size_t max);
void zl_frame_decoder_free(struct zl_frame_decoder *d);

/* Consumes bytes from data up to the end of the first frame they complete. Returns 1 with *out (a new
 * reference: json_object_put it) when a frame completed; 0 when all len bytes were absorbed without
 * completing one; -1 on error (message in zl_frame_decoder_error; every later call fails too). *consumed
 * says how many bytes were used; call again with the rest. Errors: a zero length ("frame: empty frame"),
 * a length above the limit (refused from the header alone, before any allocation), bytes that are not
 * one strict, UTF-8 JSON object. */
int zl_frame_decoder_feed(struct zl_frame_decoder *d, const uint8_t *data, size_t len, size_t *consumed,
			  json_object **out);
/* True between frames: end of stream here is clean, elsewhere it cuts a frame. */
bool zl_frame_decoder_idle(const struct zl_frame_decoder *d);
const char *zl_frame_decoder_error(const struct zl_frame_decoder *d);

/* Encodes obj (compact JSON) as one frame into a new buffer (*out, free() it). Returns 0, -EMSGSIZE when
 * the JSON exceeds max (0 = ZL_FRAME_MAX), -EINVAL for a NULL or non-object obj, -ENOMEM. */
int zl_frame_encode(json_object *obj, size_t max, uint8_t **out, size_t *out_len);

/* ---- Envelopes ---- */

/* Builds {"id": id, "version": 1, "request": {"type": type}}; *request receives the inner object (owned
 * by the envelope) for the caller to add arguments to. NULL on allocation failure. */
json_object *zl_frame_request_new(uint64_t id, const char *type, json_object **request);
/* {"id": id, "response": {"result": "ok"}}; *body receives the response object to add fields to. */
json_object *zl_frame_response_ok(uint64_t id, json_object **body);
/* {"id": id, "response": {"result": "err", "message": message}}. */
json_object *zl_frame_response_err(uint64_t id, const char *message);

/* A parsed request; pointers borrow from the frame object. */
struct zl_frame_request {
	uint64_t id;
	bool has_id;            /* false when the id itself was missing or bad: answer with id 0 */
	const char *type;
	json_object *request;   /* the inner object, type included */
};
/* Validates the envelope: a non-negative integer id (at most 2^53, so every JSON implementation reads it
 * exactly), version == ZL_API_VERSION, a request object with a non-empty string type. False with a
 * user-facing message in err on any problem. */
bool zl_frame_request_parse(json_object *frame, struct zl_frame_request *req, char *err, size_t err_len);

struct zl_frame_response {
	uint64_t id;
	bool ok;                /* result "ok"; false: result "err" */
	const char *message;    /* the error message when !ok */
	json_object *body;      /* the response object */
};
bool zl_frame_response_parse(json_object *frame, struct zl_frame_response *resp, char *err, size_t err_len);

/* ---- Client re-dial backoff ---- */

struct zl_backoff {
	uint32_t initial_ms;     /* delay before the first re-dial */
	uint32_t max_ms;         /* the doubling stops here */
	uint32_t jitter_percent; /* 0..100: each delay is shortened by a random share of up to this much */
};
#define ZL_BACKOFF_DEFAULT ((struct zl_backoff){ .initial_ms = 100, .max_ms = 1000, .jitter_percent = 0 })

/* Delay before re-dial number attempt (0-based): initial * 2^attempt capped at max (100, 200, 400, 800,
 * 1000, 1000, ... by default), minus jitter_percent * random / 2^32 of it. random comes from the caller so
 * the function stays pure; jitter only shortens, so max is never exceeded. p NULL means the default. */
uint32_t zl_backoff_delay_ms(const struct zl_backoff *p, unsigned attempt, uint32_t random);
#endif
