/* Underlay helpers of zl-overlay: see net.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cli/net.h"

int64_t cli_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void cli_sleep_ms(int64_t ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000 };

	while (ms > 0 && nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

int cli_wait_fd(int fd, short events, int64_t deadline)
{
	struct pollfd p = { .fd = fd, .events = events };

	for (;;) {
		int64_t left = deadline - cli_now_ms();
		int r;

		if (left <= 0)
			return -ETIMEDOUT;
		r = poll(&p, 1, (int)(left > 60000 ? 60000 : left));
		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR)
			return -errno;
	}
}

int cli_send_all(int fd, const void *buf, size_t len, int64_t deadline)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		int r;

		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EAGAIN)
			return -errno;
		r = cli_wait_fd(fd, POLLOUT, deadline);
		if (r < 0)
			return r;
	}
	return 0;
}

int cli_recv_full(int fd, void *buf, size_t len, int64_t deadline)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t n = recv(fd, p, len, 0);
		int r;

		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (n == 0)
			return -ECONNRESET;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			return -errno;
		r = cli_wait_fd(fd, POLLIN, deadline);
		if (r < 0)
			return r;
	}
	return 0;
}

/* One address: a connected non-blocking socket or -errno. */
static int connect_one(const struct addrinfo *ai, int64_t deadline)
{
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), e = 0, r;
	socklen_t elen = sizeof(e);

	if (fd < 0)
		return -errno;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
		return fd;
	if (errno != EINPROGRESS) {
		e = errno;
		close(fd);
		return -e;
	}
	r = cli_wait_fd(fd, POLLOUT, deadline);
	if (r == 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &elen) < 0)
		r = -errno;
	else if (r == 0 && e)
		r = -e;
	if (r < 0) {
		close(fd);
		return r;
	}
	return fd;
}

int cli_tcp_connect(const char *endpoint, int64_t deadline, char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV }, *res, *ai;
	char host[ZL_ENDPOINT_HOST_MAX + 1], port_s[8];
	uint16_t port;
	int fd = -EHOSTUNREACH, g;

	if (!zl_endpoint_parse(endpoint, host, &port)) {
		snprintf(err, errlen, "invalid endpoint '%s'", endpoint);
		return -EINVAL;
	}
	snprintf(port_s, sizeof(port_s), "%u", port);
	g = getaddrinfo(host, port_s, &hints, &res);
	if (g != 0) {
		snprintf(err, errlen, "cannot resolve '%s': %s", host, gai_strerror(g));
		return -EHOSTUNREACH;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		fd = connect_one(ai, deadline);
		if (fd >= 0 || fd == -ETIMEDOUT)
			break;
	}
	freeaddrinfo(res);
	if (fd == -ETIMEDOUT)
		snprintf(err, errlen, "cannot connect to %s: timed out", endpoint);
	else if (fd < 0)
		snprintf(err, errlen, "cannot connect to %s: %s", endpoint, strerror(-fd));
	return fd;
}

void cli_endpoint_format(const struct zl_ip *ip, uint16_t port, char out[ZL_ENDPOINT_MAX_LEN + 1])
{
	char a[ZL_IP_STRLEN];

	zl_ip_format(ip, a);
	if (ip->family == AF_INET6)
		snprintf(out, ZL_ENDPOINT_MAX_LEN + 1, "[%s]:%u", a, port);
	else
		snprintf(out, ZL_ENDPOINT_MAX_LEN + 1, "%s:%u", a, port);
}

static bool ip_from_sockaddr(const struct sockaddr *sa, struct zl_ip *ip)
{
	memset(ip, 0, sizeof(*ip));
	if (sa && sa->sa_family == AF_INET) {
		ip->family = AF_INET;
		memcpy(ip->addr, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		return true;
	}
	if (sa && sa->sa_family == AF_INET6) {
		ip->family = AF_INET6;
		memcpy(ip->addr, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
		return true;
	}
	return false;
}

static bool link_local(const struct zl_ip *ip)
{
	if (ip->family == AF_INET)
		return ip->addr[0] == 169 && ip->addr[1] == 254;
	return ip->addr[0] == 0xfe && (ip->addr[1] & 0xc0) == 0x80;
}

static bool v4_mapped(const struct zl_ip *ip)
{
	static const uint8_t prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	return ip->family == AF_INET6 && !memcmp(ip->addr, prefix, 12);
}

bool cli_socket_endpoint(int fd, uint16_t port, char out[ZL_ENDPOINT_MAX_LEN + 1])
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	struct zl_ip ip;

	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0 || !ip_from_sockaddr((struct sockaddr *)&ss, &ip))
		return false;
	if (v4_mapped(&ip)) {
		ip.family = AF_INET;
		memmove(ip.addr, ip.addr + 12, 4);
		memset(ip.addr + 4, 0, 12);
	}
	if (ip.family == AF_INET6 && link_local(&ip))
		return false;
	cli_endpoint_format(&ip, port, out);
	return zl_endpoint_check(out);
}

bool cli_ip_global(const struct zl_ip *ip)
{
	static const uint8_t zero[16], loop6[16] = { [15] = 1 };

	if (ip->family == AF_INET)
		return ip->addr[0] != 0 && ip->addr[0] != 127 && ip->addr[0] < 224 && !link_local(ip);
	if (ip->family != AF_INET6)
		return false;
	return memcmp(ip->addr, zero, 16) && memcmp(ip->addr, loop6, 16) && ip->addr[0] != 0xff &&
	       !link_local(ip) && !v4_mapped(ip);
}

int cli_host_endpoint(uint16_t port, const struct zl_prefix *exclude, char out[ZL_ENDPOINT_MAX_LEN + 1],
		      char ifname[16])
{
	static const int families[] = { AF_INET, AF_INET6 };
	struct ifaddrs *list, *i;
	int rc = -ENOENT;

	if (getifaddrs(&list) < 0)
		return -errno;
	for (size_t f = 0; f < 2 && rc < 0; f++) {
		for (i = list; i; i = i->ifa_next) {
			struct zl_ip ip;

			if (!(i->ifa_flags & IFF_UP) || (i->ifa_flags & IFF_LOOPBACK) ||
			    !ip_from_sockaddr(i->ifa_addr, &ip) || ip.family != families[f] || !cli_ip_global(&ip) ||
			    (exclude && zl_prefix_contains(exclude, &ip)))
				continue;
			cli_endpoint_format(&ip, port, out);
			snprintf(ifname, 16, "%s", i->ifa_name);
			rc = 0;
			break;
		}
	}
	freeifaddrs(list);
	return rc;
}

bool cli_endpoint_normalize(const char *in, uint16_t default_port, char out[ZL_ENDPOINT_MAX_LEN + 1])
{
	char buf[ZL_ENDPOINT_MAX_LEN + 16];
	struct zl_ip ip;
	int n;

	if (zl_endpoint_check(in)) {
		snprintf(out, ZL_ENDPOINT_MAX_LEN + 1, "%s", in);
		return true;
	}
	if (zl_ip_parse(in, &ip, NULL, 0) == 0) {
		cli_endpoint_format(&ip, default_port, out);
		return zl_endpoint_check(out);
	}
	/* A bare DNS name. */
	if (strchr(in, ':') || strlen(in) > ZL_ENDPOINT_HOST_MAX)
		return false;
	n = snprintf(buf, sizeof(buf), "%s:%u", in, default_port);
	if (n < 0 || n > ZL_ENDPOINT_MAX_LEN || !zl_endpoint_check(buf))
		return false;
	memcpy(out, buf, (size_t)n + 1);
	return true;
}
