/* Small socket helpers shared by the daemon's servers and clients: a write queue for non-blocking
 * stream sockets, address text conversions, endpoint resolution and socket options. */
#ifndef OD_NET_H
#define OD_NET_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include "overlay/cidr.h"
#include "wg/core/device.h"
#include "wg/io/loop.h"

/* Bytes waiting to be written to a non-blocking socket. */
struct od_outbuf {
	uint8_t *data;
	size_t len, off;     /* data[off..len) is pending */
	size_t cap;
};

/* 0, or -ENOBUFS when the pending bytes would exceed limit (a peer that does not read), -ENOMEM. */
int od_outbuf_append(struct od_outbuf *b, const void *data, size_t len, size_t limit);
bool od_outbuf_pending(const struct od_outbuf *b);
/* Writes as much as the socket takes: 0 when everything went, 1 when bytes remain (wait for EPOLLOUT),
 * -errno on a broken connection. */
int od_outbuf_flush(struct od_outbuf *b, int fd);
void od_outbuf_free(struct od_outbuf *b);

enum { OD_SOCKADDR_STRLEN = 64 };   /* "[v6%scope]:port" + NUL */

/* "192.0.2.1:51820" or "[2001:db8::1]:51820"; an IPv4-mapped IPv6 address is written as IPv4. */
const char *od_sockaddr_format(const struct sockaddr *sa, char buf[OD_SOCKADDR_STRLEN]);
/* The address part alone (same mapping), as struct zl_ip. false for other families. */
bool od_sockaddr_ip(const struct sockaddr *sa, struct zl_ip *out);
/* A sockaddr for ip:port. Returns its length. */
socklen_t od_sockaddr_make(const struct zl_ip *ip, uint16_t port, struct sockaddr_storage *out);

/* "HOST:PORT" (zl_endpoint_check syntax) to a UDP endpoint. Literal addresses need no lookup; a DNS
 * name is resolved with getaddrinfo, which blocks (names are rare in overlay state: the leader records
 * addresses). 0 or -EINVAL / -ENOENT with a message in err. */
int od_endpoint_resolve(const char *text, struct wg_endpoint *out, char *err, size_t errlen);

/* Watches a socket on the loop for EPOLLIN. On failure the socket is closed and err says why. 0 or -errno. */
int od_loop_watch(struct wg_loop *loop, struct wg_loop_source *src, int fd, wg_loop_fn fn, char *err, size_t errlen);
/* Stops watching src and closes its socket; nothing when it is not watched (fd -1). */
void od_loop_close(struct wg_loop *loop, struct wg_loop_source *src);

/* Socket options of the daemon's TCP connections: non-blocking + close-on-exec are set at creation;
 * these add keepalive probes so a dead peer is noticed within about idle + 3 * interval seconds. */
void od_tcp_keepalive(int fd, int idle_s, int interval_s, int count);
#endif
