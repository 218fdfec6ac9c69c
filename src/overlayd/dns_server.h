/* The DNS server of the node: answers for the overlay zone (src/dns/answer.h) over UDP and TCP on each
 * listen address (127.0.0.1 and the node's overlay address by default), port 15353.
 *
 * Threading: the server runs in its own thread with its own epoll loop, so queries never wait behind
 * the data plane and a burst of queries never delays packets. The zone is an immutable snapshot
 * (dns/zone.h) that the daemon's loop thread replaces with od_dns_server_set_zone; the server thread
 * picks up the newest one for each batch. Counters are atomics read with od_dns_server_stats.
 *
 * UDP: recvmmsg/sendmmsg batches of up to 64, one socket per listen address (replies leave from the
 * address the query was sent to). TCP (RFC 7766): length-prefixed messages, several per connection
 * (pipelining), answered in order (a forwarded one's answer comes when the forwarder's does, possibly
 * after later ones, as RFC 7766 6.2.1.1 allows); at most OD_DNS_TCP_MAX_CONNS connections (the least
 * recently active one is closed to admit a new one); a connection idle for OD_DNS_TCP_IDLE_MS, or whose
 * client does not read its answers (more than OD_DNS_TCP_OUTBUF_MAX pending), is closed, so a stalled
 * client cannot block others. Nothing in the server blocks.
 *
 * Forwarding (only when configured): a query for a name outside the zone is sent, with a fresh random
 * id, over UDP to the forwarder; its answer is relayed with the client's id restored (for TCP clients
 * too); no answer within OD_DNS_FORWARD_TIMEOUT_MS -> SERVFAIL. At most OD_DNS_FORWARD_PENDING_MAX
 * forwarded queries are in flight; beyond that, SERVFAIL at once. Answers from any other source, or
 * with an unknown id, are dropped. */
#ifndef OD_DNS_SERVER_H
#define OD_DNS_SERVER_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include "dns/zone.h"
#include "overlay/cidr.h"

#define OD_DNS_DEFAULT_ZONE "overlay.local."

enum {
	OD_DNS_DEFAULT_PORT = 15353,
	OD_DNS_MAX_LISTEN = 4,
	OD_DNS_TCP_MAX_CONNS = 256,
	OD_DNS_TCP_IDLE_MS = 10000,
	OD_DNS_TCP_OUTBUF_MAX = 256 << 10,
	OD_DNS_FORWARD_TIMEOUT_MS = 3000,
	OD_DNS_FORWARD_PENDING_MAX = 1024,
};

struct od_dns_config {
	struct zl_ip listen[OD_DNS_MAX_LISTEN];
	size_t n_listen;
	uint16_t port;
	bool forward;                         /* forward_addr is set */
	struct sockaddr_storage forward_addr; /* IPv4 or IPv6 address + port (53 when not given) */
	socklen_t forward_len;
};

/* Response codes counted separately (metrics: dns queries by response code). */
enum od_dns_rcode_slot {
	OD_DNS_RC_NOERROR, OD_DNS_RC_FORMERR, OD_DNS_RC_SERVFAIL, OD_DNS_RC_NXDOMAIN, OD_DNS_RC_NOTIMP,
	OD_DNS_RC_REFUSED, OD_DNS_RC_BADVERS, OD_DNS_RC_OTHER, OD_DNS_RC_SLOTS,
};
const char *od_dns_rcode_slot_name(enum od_dns_rcode_slot slot);   /* "NOERROR", ... "OTHER" */

struct od_dns_stats {
	uint64_t udp_queries, tcp_queries;
	uint64_t responses[OD_DNS_RC_SLOTS];   /* by response code (NODATA counts as NOERROR) */
	uint64_t dropped;                      /* not answered: responses, runts */
	uint64_t truncated;                    /* UDP answers sent with TC */
	uint64_t forwarded, forward_timeouts;
	uint64_t tcp_connections, tcp_closed_idle, tcp_closed_evicted;
};

struct od_dns_server;

/* "ADDR" or "ADDR:PORT" or "[V6]:PORT" (port 53 by default) into cfg->forward_addr. 0 or -EINVAL with
 * a message. Names are refused (no lookup at start-up). */
int od_dns_parse_forward(const char *text, struct od_dns_config *cfg, char *err, size_t errlen);

/* Binds every listen address (UDP and TCP, IP_FREEBIND; SO_REUSEADDR on the TCP listener only, since on
 * UDP it would let a second server share the port silently) and starts the thread. 1 to
 * OD_DNS_MAX_LISTEN addresses; port 0 is refused (UDP and TCP share one port). zone may be NULL (then
 * everything is REFUSED/forwarded until the first od_dns_server_set_zone); the server takes its own
 * reference. 0 or -errno with a message naming the address (e.g. port in use). */
int od_dns_server_start(const struct od_dns_config *cfg, struct dns_zone *zone, struct od_dns_server **out,
			char *err, size_t errlen);
/* Publishes a new zone (the server takes its own reference; the caller keeps its own). Thread-safe. */
void od_dns_server_set_zone(struct od_dns_server *s, struct dns_zone *zone);
/* Stops the thread, closes every socket, drops the zone reference and frees s (NULL is fine). */
void od_dns_server_stop(struct od_dns_server *s);
void od_dns_server_stats(const struct od_dns_server *s, struct od_dns_stats *out);
#endif
