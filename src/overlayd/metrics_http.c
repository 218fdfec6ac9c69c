/* The metrics endpoint's HTTP server: see metrics_http.h. */
#include "overlayd/metrics_http.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "overlayd/log.h"
#include "overlayd/net.h"

enum {
	ACCEPTS_PER_EVENT = 16,
	DRAIN_CHUNK = 4096,
	DRAIN_READS_PER_EVENT = 4,     /* then back to the loop: fairness with the data plane */
	LISTEN_BACKLOG = 64,
	HEAD_MAX = 256,                /* status line and headers of an answer */
};

enum conn_phase { READING, WRITING, DRAINING };

struct http_conn {
	struct od_http_server *srv;
	struct wg_loop_source src;
	struct od_timer timer;
	enum conn_phase phase;
	char *req;                     /* request_max bytes */
	size_t req_len;
	struct od_outbuf out;
	struct http_conn *next;
};

struct od_http_server {
	struct wg_loop *loop;
	struct od_timers *timers;
	struct od_http_config cfg;
	int fd;
	struct wg_loop_source src;
	uint16_t port;
	struct http_conn *conns;
	size_t n_conns;
	struct od_http_stats stats;
};

/* ---- connections */

static void conn_free(void *obj)
{
	struct http_conn *c = obj;

	od_outbuf_free(&c->out);
	free(c->req);
	free(c);
}

static void conn_unlink(struct http_conn *c)
{
	struct od_http_server *s = c->srv;

	for (struct http_conn **pp = &s->conns; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			s->n_conns--;
			break;
		}
	}
	od_timer_cancel(s->timers, &c->timer);
	if (c->src.fd >= 0) {
		int fd = c->src.fd;

		wg_loop_del(s->loop, &c->src);
		close(fd);
	}
}

/* Unregisters at once, frees later: the loop may still hold an event for it in this round. */
static void conn_close(struct http_conn *c)
{
	conn_unlink(c);
	od_timers_defer(c->srv->timers, conn_free, c);
}

static void on_timeout(struct od_timer *t)
{
	struct http_conn *c = wg_container_of(t, struct http_conn, timer);

	/* A client that lingers after its answer is normal; one that never finished asking or reading is not. */
	if (c->phase != DRAINING)
		c->srv->stats.timed_out++;
	conn_close(c);
}

/* The answer went out: stop sending, and read until the client closes (see metrics_http.h). */
static void conn_drain(struct http_conn *c)
{
	shutdown(c->src.fd, SHUT_WR);
	c->phase = DRAINING;
	wg_loop_mod(c->srv->loop, &c->src, EPOLLIN);
}

static void conn_flush(struct http_conn *c)
{
	int rc = od_outbuf_flush(&c->out, c->src.fd);

	if (rc < 0) {
		conn_close(c);
	} else if (rc == 0) {
		conn_drain(c);
	} else if (c->phase != WRITING) {
		c->phase = WRITING;
		wg_loop_mod(c->srv->loop, &c->src, EPOLLOUT);
	}
}

/* ---- answers */

static void respond(struct http_conn *c, const char *status, const char *extra_headers, const char *type,
		    const char *body, size_t body_len)
{
	char head[HEAD_MAX];
	int n = snprintf(head, sizeof(head),
			 "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%sConnection: close\r\n\r\n",
			 status, type, body_len, extra_headers);

	if (n < 0 || (size_t)n >= sizeof(head) || od_outbuf_append(&c->out, head, (size_t)n, SIZE_MAX) ||
	    od_outbuf_append(&c->out, body, body_len, SIZE_MAX)) {
		conn_close(c);
		return;
	}
	od_timer_arm(c->srv->timers, &c->timer, c->srv->cfg.timeout_ms);
	conn_flush(c);
}

static void respond_text(struct http_conn *c, const char *status, const char *extra_headers, const char *text)
{
	respond(c, status, extra_headers, "text/plain; charset=utf-8", text, strlen(text));
}

static void respond_body(struct http_conn *c)
{
	struct od_http_server *s = c->srv;
	size_t len = 0;
	char *body = s->cfg.body(s->cfg.ctx, &len);

	if (!body) {
		s->stats.failed++;
		respond_text(c, "500 Internal Server Error", "", "internal error\n");
		return;
	}
	s->stats.ok++;
	respond(c, "200 OK", "", s->cfg.content_type, body, len);
	free(body);
}

/* A method is a token (RFC 9110 section 9): letters, digits and a few marks; we only need "not empty
 * and no control characters or separators" to tell a foreign method from garbage. */
static bool is_token(const char *s, size_t n)
{
	if (!n)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch <= ' ' || ch >= 0x7f || strchr("\"(),/:;<=>?@[\\]{}", ch))
			return false;
	}
	return true;
}

/* The request line is "METHOD SP TARGET SP HTTP/1.x" (line is the bytes before the first LF). */
static void handle_request(struct http_conn *c, const char *line, size_t n)
{
	struct od_http_server *s = c->srv;
	const char *sp1, *sp2, *target, *version;
	size_t method_len, target_len, path_len;

	if (n && line[n - 1] == '\r')
		n--;
	sp1 = memchr(line, ' ', n);
	sp2 = sp1 ? memchr(sp1 + 1, ' ', n - (size_t)(sp1 + 1 - line)) : NULL;
	if (!sp1 || !sp2) {
		s->stats.bad_request++;
		respond_text(c, "400 Bad Request", "", "bad request\n");
		return;
	}
	method_len = (size_t)(sp1 - line);
	target = sp1 + 1;
	target_len = (size_t)(sp2 - target);
	version = sp2 + 1;
	if (!is_token(line, method_len) || !target_len || memchr(target, '\0', target_len) ||
	    (size_t)(line + n - version) != 8 || memcmp(version, "HTTP/1.", 7) || version[7] < '0' || version[7] > '9') {
		s->stats.bad_request++;
		respond_text(c, "400 Bad Request", "", "bad request\n");
		return;
	}
	if (method_len != 3 || memcmp(line, "GET", 3)) {
		s->stats.bad_method++;
		respond_text(c, "405 Method Not Allowed", "Allow: GET\r\n", "method not allowed\n");
		return;
	}
	path_len = strcspn(target, "? ");    /* the space ends the target: it is not NUL-terminated */
	if (path_len > target_len)
		path_len = target_len;
	if (path_len != strlen(s->cfg.path) || memcmp(target, s->cfg.path, path_len)) {
		s->stats.not_found++;
		respond_text(c, "404 Not Found", "", "not found\n");
		return;
	}
	respond_body(c);
}

/* The end of the header block: an empty line (CRLF CRLF, or bare LF LF from lenient clients). */
static bool headers_complete(const char *buf, size_t len)
{
	return memmem(buf, len, "\r\n\r\n", 4) || memmem(buf, len, "\n\n", 2);
}

static void on_readable(struct http_conn *c)
{
	struct od_http_server *s = c->srv;
	size_t room = s->cfg.request_max - c->req_len;
	ssize_t n = recv(c->src.fd, c->req + c->req_len, room, MSG_DONTWAIT);

	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (n <= 0) {
		conn_close(c);      /* gone before its request was complete */
		return;
	}
	c->req_len += (size_t)n;
	if (headers_complete(c->req, c->req_len)) {
		const char *lf = memchr(c->req, '\n', c->req_len);

		handle_request(c, c->req, (size_t)(lf - c->req));
	} else if (c->req_len == s->cfg.request_max) {
		s->stats.too_large++;
		od_debug("metrics.request_too_large", "limit=%zu", s->cfg.request_max);
		conn_close(c);
	}
}

static void on_drain(struct http_conn *c)
{
	char sink[DRAIN_CHUNK];

	for (int i = 0; i < DRAIN_READS_PER_EVENT; i++) {
		ssize_t n = recv(c->src.fd, sink, sizeof(sink), MSG_DONTWAIT);

		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return;
		if (n <= 0) {
			conn_close(c);
			return;
		}
	}
}

static void on_conn(struct wg_loop_source *src, uint32_t events)
{
	struct http_conn *c = wg_container_of(src, struct http_conn, src);

	switch (c->phase) {
	case READING:
		on_readable(c);
		break;
	case WRITING:
		if (events & (EPOLLERR | EPOLLHUP))
			conn_close(c);
		else
			conn_flush(c);
		break;
	case DRAINING:
		on_drain(c);
		break;
	}
}

/* ---- listener */

static void accept_one(struct od_http_server *s, int fd)
{
	struct http_conn *c;

	s->stats.accepted++;
	if (s->n_conns >= s->cfg.max_conns) {
		s->stats.refused++;
		od_debug("metrics.too_many_clients", "limit=%zu", s->cfg.max_conns);
		close(fd);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (c)
		c->req = malloc(s->cfg.request_max);
	if (!c || !c->req || wg_loop_add(s->loop, &c->src, fd, EPOLLIN, on_conn)) {
		close(fd);
		if (c)
			conn_free(c);
		return;
	}
	c->srv = s;
	od_timer_init(&c->timer, on_timeout);
	od_timer_arm(s->timers, &c->timer, s->cfg.timeout_ms);
	c->next = s->conns;
	s->conns = c;
	s->n_conns++;
}

static void on_accept(struct wg_loop_source *src, uint32_t events)
{
	struct od_http_server *s = wg_container_of(src, struct od_http_server, src);

	for (int i = 0; i < ACCEPTS_PER_EVENT; i++) {
		int fd = accept4(src->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0)
			return;
		accept_one(s, fd);
	}
}

static int listen_socket(const struct sockaddr *addr, socklen_t addrlen, const char *bind_dev, char *err, size_t errlen)
{
	char text[OD_SOCKADDR_STRLEN];
	int one = 1, fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), rc;

	if (fd < 0)
		goto fail;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (addr->sa_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind_dev) {
		if (setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, bind_dev, (socklen_t)strlen(bind_dev)) < 0)
			goto fail;
		if (addr->sa_family == AF_INET6)
			setsockopt(fd, IPPROTO_IPV6, IPV6_FREEBIND, &one, sizeof(one));
		else
			setsockopt(fd, IPPROTO_IP, IP_FREEBIND, &one, sizeof(one));
	}
	if (bind(fd, addr, addrlen) < 0 || listen(fd, LISTEN_BACKLOG) < 0)
		goto fail;
	return fd;
fail:
	rc = -errno;
	snprintf(err, errlen, "cannot listen on %s%s%s: %s", od_sockaddr_format(addr, text), bind_dev ? " on " : "",
		 bind_dev ? bind_dev : "", strerror(errno));
	if (fd >= 0)
		close(fd);
	return rc;
}

static uint16_t bound_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
		return 0;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

int od_http_server_open(struct wg_loop *loop, struct od_timers *timers, const struct sockaddr *addr,
			socklen_t addrlen, const char *bind_dev, const struct od_http_config *cfg,
			struct od_http_server **out, char *err, size_t errlen)
{
	struct od_http_server *s;
	int rc;

	if (!cfg->request_max || !cfg->max_conns || !cfg->body || !cfg->path || !cfg->content_type) {
		snprintf(err, errlen, "http server: incomplete configuration");
		return -EINVAL;
	}
	if (!(s = calloc(1, sizeof(*s))))
		return -ENOMEM;
	s->loop = loop;
	s->timers = timers;
	s->cfg = *cfg;
	s->src.fd = -1;
	s->fd = listen_socket(addr, addrlen, bind_dev, err, errlen);
	if (s->fd < 0) {
		rc = s->fd;
		free(s);
		return rc;
	}
	s->port = bound_port(s->fd);
	if ((rc = wg_loop_add(loop, &s->src, s->fd, EPOLLIN, on_accept))) {
		snprintf(err, errlen, "event loop: %s", strerror(-rc));
		close(s->fd);
		free(s);
		return rc;
	}
	*out = s;
	return 0;
}

void od_http_server_close(struct od_http_server *s)
{
	if (!s)
		return;
	/* Unregistered now, freed from a later round: this may run from another source's handler while
	 * an event of the server or of a connection is still pending in the same round. */
	while (s->conns)
		conn_close(s->conns);
	wg_loop_del(s->loop, &s->src);
	close(s->fd);
	od_timers_defer(s->timers, free, s);
}

uint16_t od_http_server_port(const struct od_http_server *s)
{
	return s->port;
}

void od_http_server_stats(const struct od_http_server *s, struct od_http_stats *out)
{
	*out = s->stats;
}
