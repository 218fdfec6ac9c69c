/* The cross-platform WireGuard userspace API (the text protocol of `wg` and wg-quick) over a device.
 * Pure text in, text out: the socket server feeds bytes as they arrive and writes back what is produced.
 * Several requests may follow each other on one connection. */
#ifndef WG_UAPI_H
#define WG_UAPI_H
#include <stdbool.h>
#include <stddef.h>
#include "wg/core/device.h"

/* A growable output buffer owned by the caller. */
struct wg_uapi_buf {
	char *data;
	size_t len, cap;
};
void wg_uapi_buf_free(struct wg_uapi_buf *b);

struct wg_uapi_session;
struct wg_uapi_session *wg_uapi_session_new(struct wg_device *dev);
void wg_uapi_session_free(struct wg_uapi_session *s);
/* Feeds len bytes (any split: partial lines are kept). Complete responses are appended to out.
 * Returns 0, or -EPROTO when the connection must be closed (a line over the maximum length, or an
 * unknown operation), after appending an errno response. */
int wg_uapi_session_feed(struct wg_uapi_session *s, const char *data, size_t len, struct wg_uapi_buf *out);

/* Convenience for tests and in-process callers: one whole request, one response. */
int wg_uapi_request(struct wg_device *dev, const char *request, struct wg_uapi_buf *out);
#endif
