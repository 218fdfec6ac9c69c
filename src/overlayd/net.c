/* Socket helpers: see net.h. */
#include "overlayd/net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "overlay/token.h"

int od_outbuf_append(struct od_outbuf *b, const void *data, size_t len, size_t limit)
{
	size_t pending = b->len - b->off;

	if (pending + len > limit)
		return -ENOBUFS;
	if (b->off && b->off == b->len)
		b->off = b->len = 0;
	if (b->len + len > b->cap) {
		/* Compact first: what was written is never needed again. */
		if (b->off) {
			memmove(b->data, b->data + b->off, pending);
			b->len = pending;
			b->off = 0;
		}
		if (b->len + len > b->cap) {
			size_t cap = b->cap ? b->cap : 4096;
			uint8_t *p;

			while (cap < b->len + len)
				cap *= 2;
			p = realloc(b->data, cap);
			if (!p)
				return -ENOMEM;
			b->data = p;
			b->cap = cap;
		}
	}
	memcpy(b->data + b->len, data, len);
	b->len += len;
	return 0;
}

bool od_outbuf_pending(const struct od_outbuf *b)
{
	return b->len > b->off;
}

int od_outbuf_flush(struct od_outbuf *b, int fd)
{
	while (b->off < b->len) {
		ssize_t n = send(fd, b->data + b->off, b->len - b->off, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 1;
			return -errno;
		}
		b->off += (size_t)n;
	}
	b->off = b->len = 0;
	return 0;
}

void od_outbuf_free(struct od_outbuf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

bool od_sockaddr_ip(const struct sockaddr *sa, struct zl_ip *out)
{
	memset(out, 0, sizeof(*out));
	if (sa->sa_family == AF_INET) {
		out->family = AF_INET;
		memcpy(out->addr, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		return true;
	}
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;

		if (IN6_IS_ADDR_V4MAPPED(a)) {
			out->family = AF_INET;
			memcpy(out->addr, a->s6_addr + 12, 4);
		} else {
			out->family = AF_INET6;
			memcpy(out->addr, a->s6_addr, 16);
		}
		return true;
	}
	return false;
}

const char *od_sockaddr_format(const struct sockaddr *sa, char buf[OD_SOCKADDR_STRLEN])
{
	char ip[ZL_IP_STRLEN];
	struct zl_ip zip;
	uint16_t port;

	if (!od_sockaddr_ip(sa, &zip)) {
		snprintf(buf, OD_SOCKADDR_STRLEN, "?");
		return buf;
	}
	port = ntohs(sa->sa_family == AF_INET ? ((const struct sockaddr_in *)sa)->sin_port
					      : ((const struct sockaddr_in6 *)sa)->sin6_port);
	zl_ip_format(&zip, ip);
	snprintf(buf, OD_SOCKADDR_STRLEN, zip.family == AF_INET6 ? "[%s]:%u" : "%s:%u", ip, port);
	return buf;
}

socklen_t od_sockaddr_make(const struct zl_ip *ip, uint16_t port, struct sockaddr_storage *out)
{
	memset(out, 0, sizeof(*out));
	if (ip->family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)out;

		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		memcpy(&s4->sin_addr, ip->addr, 4);
		return sizeof(*s4);
	}
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)out;

	s6->sin6_family = AF_INET6;
	s6->sin6_port = htons(port);
	memcpy(&s6->sin6_addr, ip->addr, 16);
	return sizeof(*s6);
}

int od_endpoint_resolve(const char *text, struct wg_endpoint *out, char *err, size_t errlen)
{
	char host[ZL_ENDPOINT_HOST_MAX + 1];
	struct addrinfo hints, *res = NULL;
	struct zl_ip ip;
	uint16_t port;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!zl_endpoint_parse(text, host, &port)) {
		snprintf(err, errlen, "invalid endpoint");
		return -EINVAL;
	}
	if (zl_ip_parse(host, &ip, NULL, 0) == 0) {
		struct sockaddr_storage ss;
		socklen_t len = od_sockaddr_make(&ip, port, &ss);

		memcpy(&out->addr, &ss, len);
		return 0;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_DGRAM;
	hints.ai_flags = AI_ADDRCONFIG;
	rc = getaddrinfo(host, NULL, &hints, &res);
	if (rc || !res) {
		snprintf(err, errlen, "cannot resolve %s: %s", host, rc ? gai_strerror(rc) : "no address");
		return -ENOENT;
	}
	if (res->ai_addrlen > sizeof(out->addr)) {
		freeaddrinfo(res);
		snprintf(err, errlen, "cannot resolve %s: unexpected address size", host);
		return -ENOENT;
	}
	memcpy(&out->addr, res->ai_addr, res->ai_addrlen);
	if (out->addr.sa.sa_family == AF_INET)
		out->addr.in4.sin_port = htons(port);
	else
		out->addr.in6.sin6_port = htons(port);
	freeaddrinfo(res);
	return 0;
}

void od_tcp_keepalive(int fd, int idle_s, int interval_s, int count)
{
	int one = 1, user_timeout_ms = (idle_s + interval_s * count) * 1000;

	/* Best effort: without them a dead peer is found by the next write's retransmissions instead. */
	(void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle_s, sizeof(idle_s));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval_s, sizeof(interval_s));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof(count));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout_ms, sizeof(user_timeout_ms));
}

int od_loop_watch(struct wg_loop *loop, struct wg_loop_source *src, int fd, wg_loop_fn fn, char *err, size_t errlen)
{
	int rc = wg_loop_add(loop, src, fd, EPOLLIN, fn);

	if (rc) {
		snprintf(err, errlen, "event loop: %s", strerror(-rc));
		close(fd);
	}
	return rc;
}

void od_loop_close(struct wg_loop *loop, struct wg_loop_source *src)
{
	int fd = src->fd;

	if (fd < 0)
		return;
	wg_loop_del(loop, src);
	close(fd);
}
