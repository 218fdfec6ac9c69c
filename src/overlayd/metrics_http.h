/* The HTTP side of the metrics endpoint: a minimal HTTP/1.x server on the daemon's event loop that
 * serves exactly one resource, whose body a callback produces on each request (metrics.c renders the
 * exposition text there; the unit test plugs in a fake).
 *
 * Protocol: one request per connection. The request line and headers must arrive complete (up to the
 * empty line) within timeout_ms of the accept and within request_max bytes; otherwise the connection is
 * dropped without an answer (a slow or oversized client costs one slot for at most timeout_ms). Any
 * request body is ignored. Answers: GET of the path (a query string is ignored) -> 200 with the body,
 * or 500 when the callback fails; another path -> 404; another method -> 405 (Allow: GET); a
 * malformed request line or a version other than HTTP/1.x -> 400. Every answer has Content-Length and
 * Connection: close; after it the server shuts down its sending side and reads until the client closes,
 * so unread request bytes never turn the close into a reset that would destroy the answer. The answer
 * must be taken within another timeout_ms. At most max_conns connections: a connection beyond that is
 * closed at once.
 *
 * Threading and lifetimes: everything runs on the loop thread; the server owns its connections, which
 * are unregistered at once when they end and freed from a later loop round (od_timers_defer). */
#ifndef OD_METRICS_HTTP_H
#define OD_METRICS_HTTP_H
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include "overlayd/timer.h"
#include "wg/io/loop.h"

/* The body of a 200 answer, malloc'd (the server frees it), length in *len; NULL -> 500. */
typedef char *(*od_http_body_fn)(void *ctx, size_t *len);

struct od_http_config {
	const char *path;            /* e.g. "/metrics" */
	const char *content_type;    /* of the 200 answer */
	size_t max_conns;
	size_t request_max;          /* bytes of request line + headers */
	uint32_t timeout_ms;         /* to receive the request; then again to deliver the answer */
	od_http_body_fn body;
	void *ctx;
};

/* What happened to connections so far (tests and logs). */
struct od_http_stats {
	uint64_t accepted, refused;               /* refused: over max_conns */
	uint64_t ok, not_found, bad_method, bad_request, failed;   /* answers: 200, 404, 405, 400, 500 */
	uint64_t too_large, timed_out;            /* dropped without an answer */
};

struct od_http_server;

/* Listens on addr (port 0 = any; see od_http_server_port). bind_dev non-NULL: the socket is bound to
 * that interface too (SO_BINDTODEVICE), so an address of that interface is not reachable through any
 * other; the address may then also not be configured yet (IP_FREEBIND). cfg is copied (its strings
 * must outlive the server). 0 or -errno with a message naming the address. */
int od_http_server_open(struct wg_loop *loop, struct od_timers *timers, const struct sockaddr *addr,
			socklen_t addrlen, const char *bind_dev, const struct od_http_config *cfg,
			struct od_http_server **out, char *err, size_t errlen);
/* Closes every connection and the listener at once (NULL is fine); the memory is freed from a later loop
 * round or by od_timers_destroy, so this may run from any handler. */
void od_http_server_close(struct od_http_server *s);
uint16_t od_http_server_port(const struct od_http_server *s);
void od_http_server_stats(const struct od_http_server *s, struct od_http_stats *out);
#endif
