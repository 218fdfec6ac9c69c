/* Underlay helpers of zl-overlay: deadlines on sockets, TCP to a HOST:PORT endpoint, and the addresses
 * a node can advertise. Times are CLOCK_MONOTONIC milliseconds (cli_now_ms). */
#ifndef ZL_CLI_NET_H
#define ZL_CLI_NET_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "overlay/cidr.h"
#include "overlay/token.h"

int64_t cli_now_ms(void);
void cli_sleep_ms(int64_t ms);

/* Waits until the non-blocking fd is ready for events (POLLIN/POLLOUT): 0, -ETIMEDOUT at the deadline,
 * or -errno. */
int cli_wait_fd(int fd, short events, int64_t deadline);
/* Writes all of buf to the non-blocking socket (no SIGPIPE): 0, -ETIMEDOUT or -errno. */
int cli_send_all(int fd, const void *buf, size_t len, int64_t deadline);
/* Reads exactly len bytes: 0, -ETIMEDOUT, -ECONNRESET when the peer closes first, or -errno. */
int cli_recv_full(int fd, void *buf, size_t len, int64_t deadline);

/* A non-blocking TCP connection to endpoint ("HOST:PORT", "[IPv6]:PORT", a DNS name is resolved), trying
 * each address of the host until the deadline. The fd, or -errno with the reason in err. */
int cli_tcp_connect(const char *endpoint, int64_t deadline, char *err, size_t errlen);

/* "HOST:PORT" for an address: "192.0.2.1:51820", "[2001:db8::1]:51820". */
void cli_endpoint_format(const struct zl_ip *ip, uint16_t port, char out[ZL_ENDPOINT_MAX_LEN + 1]);

/* The local address of a connected socket as an endpoint with the given port; false when it cannot be
 * advertised (loopback is fine for tests, link-local IPv6 needs a zone and is refused). */
bool cli_socket_endpoint(int fd, uint16_t port, char out[ZL_ENDPOINT_MAX_LEN + 1]);

/* True for an address worth advertising to other hosts: not unspecified, loopback, link-local or
 * multicast (RFC 1918 and ULA addresses are fine: overlays run on private networks). */
bool cli_ip_global(const struct zl_ip *ip);

/* The first global address of an interface that is up (IPv4 preferred, then IPv6), skipping addresses
 * inside `exclude` (the overlay's own range; NULL = none), as an endpoint with port. Its interface name
 * goes to ifname. 0, or -ENOENT when there is none. */
int cli_host_endpoint(uint16_t port, const struct zl_prefix *exclude, char out[ZL_ENDPOINT_MAX_LEN + 1],
		      char ifname[16]);

/* An --endpoint value: "HOST:PORT" as join tokens carry it (token.h zl_endpoint_check); a bare host or
 * address gets default_port ("192.0.2.1" -> "192.0.2.1:51820", "2001:db8::1" -> "[2001:db8::1]:51820").
 * False when it is neither. */
bool cli_endpoint_normalize(const char *in, uint16_t default_port, char out[ZL_ENDPOINT_MAX_LEN + 1]);
#endif
