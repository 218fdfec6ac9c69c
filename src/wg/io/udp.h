/* The UDP side: one port, two sockets (IPv4, and IPv6 with IPV6_V6ONLY), registered with the event loop.
 *
 * Batched by design. Receiving: one recvmmsg of up to WG_UDP_RX_MSGS messages per wakeup; the
 * datagrams are handed to the owner's rx callback in batches of at most WG_UDP_RX_BATCH, in arrival
 * order. Sending: wg_udp_send copies the datagram into a per-socket queue (wg_udp_send_ref queues the
 * caller's buffer instead) and wg_udp_flush sends the queue with sendmmsg; the queue also flushes itself
 * when full. The engine flushes after every event and every timer run, so a batch in produces a batch
 * out.
 *
 * Offloads (Linux UDP GSO/GRO, probed per socket when it opens; ZL_WG_OFFLOAD=0 turns both off, as it
 * does the TUN offloads):
 * - Send: consecutive queued datagrams to the same destination with the same DSCP and the same size
 *   (the last may be shorter) leave as one message with a UDP_SEGMENT control message, up to
 *   WG_UDP_GSO_MAX_SEGMENTS datagrams and WG_UDP_GSO_MAX_BYTES; the kernel (or the NIC) cuts it into
 *   ordinary datagrams, so the wire sees exactly what a sendmmsg of single datagrams would send.
 *   A route whose device cannot checksum for us refuses with EIO: GSO is turned off for that socket and
 *   the datagrams are resent one by one. A segment larger than the route's MTU (EMSGSIZE, or EINVAL on
 *   older kernels) is resent one by one too (fragmented), and a few such refusals in a row turn GSO off.
 * - Receive: with UDP_GRO the kernel may coalesce datagrams of one flow into a single message with
 *   a UDP_GRO control message giving the segment size; such a message is split back into datagrams.
 *   Every receive buffer holds WG_UDP_MAX_DATAGRAM bytes, the kernel's limit for a coalesced message
 *   unless an underlay device's gro_max_size was raised (BIG TCP): a longer one arrives truncated and
 *   is dropped and counted (rx_truncated).
 *
 * DSCP: a datagram queued with dscp != 0 (handshakes: WG_HANDSHAKE_DSCP) carries it as the TOS / traffic
 * class byte through an IP_TOS / IPV6_TCLASS control message; data packets use the socket default.
 * Path MTU discovery is off (IP_PMTUDISC_DONT), as in the kernel's WireGuard: oversized datagrams are
 * fragmented rather than refused. The source address is the kernel's route choice (no sticky source). */
#ifndef WG_IO_UDP_H
#define WG_IO_UDP_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "wg/core/device.h"
#include "wg/io/loop.h"

enum {
	WG_UDP_V4 = 0,
	WG_UDP_V6 = 1,
	WG_UDP_FAMILIES = 2,
	WG_UDP_RX_MSGS = 32,            /* messages per recvmmsg */
	WG_UDP_RX_BATCH = 128,          /* datagrams per rx callback: GRO messages hold several each, and
					 * the TUN side coalesces what one callback delivers */
	WG_UDP_TX_BATCH = 256,          /* datagrams queued per socket before it flushes by itself */
	WG_UDP_MAX_DATAGRAM = 65535,
	WG_UDP_GSO_MAX_SEGMENTS = 64,   /* the kernel's UDP_MAX_SEGMENTS on every version that has GSO */
	WG_UDP_GSO_MAX_BYTES = 65507,   /* largest UDP payload of one IPv4 packet (and within IPv6's) */
};

/* Each bufs[i] points into a receive buffer (the datagrams of one GRO message share one) and is valid
 * until the callback returns. */
struct wg_udp_rx_batch {
	int count;
	uint8_t *bufs[WG_UDP_RX_BATCH];
	size_t lens[WG_UDP_RX_BATCH];
	struct wg_endpoint from[WG_UDP_RX_BATCH];
};
typedef void (*wg_udp_rx_fn)(void *ctx, const struct wg_udp_rx_batch *batch);

/* Datagrams are single WireGuard messages; messages are what the socket calls carried (with GRO / GSO,
 * one message may hold many datagrams). */
struct wg_udp_stats {
	uint64_t rx_datagrams, rx_messages, rx_truncated;
	uint64_t tx_datagrams, tx_messages, tx_errors, tx_dropped_full, tx_gso_fallbacks;
};

struct wg_udp;
struct wg_udp_sock {
	struct wg_loop_source src;   /* src.fd is the socket, -1 when that family is not open */
	struct wg_udp *udp;
	bool gso, gro;               /* offloads in use on this socket (probed when it opened) */
	unsigned gso_refusals;       /* size refusals of GSO messages since the last accepted one */
};

struct wg_udp_rx;
struct wg_udp_txq;
struct wg_udp {
	struct wg_loop *loop;
	struct wg_udp_sock sock[WG_UDP_FAMILIES];
	bool bound;
	uint16_t port;
	uint32_t fwmark;
	bool offload;                /* may use GSO/GRO (false with ZL_WG_OFFLOAD=0) */
	wg_udp_rx_fn rx;
	void *ctx;
	struct wg_udp_rx *rxs;                      /* receive buffers, shared by both sockets */
	struct wg_udp_txq *txq[WG_UDP_FAMILIES];
	struct wg_udp_stats stats;
};

/* Allocates the buffers; no socket is open until wg_udp_bind. Reads ZL_WG_OFFLOAD (0, off, no or false:
 * no GSO/GRO). 0 or -ENOMEM. */
int wg_udp_init(struct wg_udp *u, struct wg_loop *loop, wg_udp_rx_fn rx, void *ctx);
void wg_udp_destroy(struct wg_udp *u);

/* Opens both sockets on port (0 = a random free port, the same for both families) with the current
 * fwmark, then replaces the old sockets (queued datagrams are flushed through the old ones first).
 * Binding the port already bound is a no-op. On failure the old sockets stay and -errno is returned
 * (-EADDRINUSE, -EACCES, -EPERM...). Without IPv6 support in the kernel it continues with IPv4 only. */
int wg_udp_bind(struct wg_udp *u, uint16_t port, uint16_t *bound_port);
/* Sets SO_MARK (0 = none) on the open sockets and on every later one. 0 or -errno. */
int wg_udp_set_fwmark(struct wg_udp *u, uint32_t mark);

/* Queues a datagram to `to` (copied). IPv4-mapped IPv6 destinations go out over IPv4. 0 or -errno:
 * -EAFNOSUPPORT for a family without a socket, -EMSGSIZE. Delivery errors are only counted. */
int wg_udp_send(struct wg_udp *u, const struct wg_endpoint *to, const uint8_t *data, size_t len, uint8_t dscp);
/* The same without the copy (and with the default DSCP): data must stay valid and unchanged until the
 * next wg_udp_flush, which the caller runs before it reuses that memory. The queue may also flush by
 * itself (when full) during a later wg_udp_send or wg_udp_send_ref. */
int wg_udp_send_ref(struct wg_udp *u, const struct wg_endpoint *to, const uint8_t *data, size_t len);
void wg_udp_flush(struct wg_udp *u);
#endif
