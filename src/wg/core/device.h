/* The WireGuard device as a pure state machine: peers, keypairs, the index table and routing. It reads no
 * socket and no clock itself: packets are handed in, and everything it emits (UDP datagrams, plaintext
 * for the TUN device) and everything it needs from the system (time, binding a port) goes through the
 * small struct of callbacks below. The I/O layer (src/wg/io) and the tests supply those callbacks.
 *
 * Threading: a device and its peers are used from one thread. Lifetimes: the device owns its peers;
 * a struct wg_peer pointer stays valid until wg_device_remove_peer or wg_device_free. */
#ifndef WG_DEVICE_H
#define WG_DEVICE_H
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include "wg/core/crypto.h"
#include "wg/core/messages.h"

/* A UDP peer address (IPv4 or IPv6, with scope id). family 0 = none. */
struct wg_endpoint {
	union {
		struct sockaddr sa;
		struct sockaddr_in in4;
		struct sockaddr_in6 in6;
	} addr;
};

struct wg_io_ops {
	void *ctx;
	/* Queues one datagram for sending (the I/O layer may flush it with the rest of the batch). dscp is
	 * the traffic class to use (WG_HANDSHAKE_DSCP for handshakes, 0 otherwise). 0 or -errno. */
	int (*send_udp)(void *ctx, const struct wg_endpoint *to, const uint8_t *data, size_t len, uint8_t dscp);
	/* Optional (NULL: send_udp is used): queues a transport data message by reference, without copying
	 * it; the memory stays valid until the device calls flush_udp, which it does before reusing it. */
	int (*send_udp_ref)(void *ctx, const struct wg_endpoint *to, const uint8_t *data, size_t len);
	void (*flush_udp)(void *ctx);
	/* Queues one decrypted IP packet for the TUN device. */
	void (*write_tun)(void *ctx, const uint8_t *packet, size_t len);
	/* (Re)binds the UDP sockets to port (0 = pick one); stores the bound port. 0 or -errno. */
	int (*bind_port)(void *ctx, uint16_t port, uint16_t *bound_port);
	/* Sets SO_MARK on the sockets. 0 or -errno. May be NULL (unsupported: -EOPNOTSUPP). */
	int (*set_fwmark)(void *ctx, uint32_t mark);
	uint64_t (*mono_ns)(void *ctx);  /* monotonic clock */
	uint64_t (*wall_ns)(void *ctx);  /* wall clock, ns since the Unix epoch */
	/* Runs n independent crypto jobs (on any threads, in any order) and returns when all are done; the
	 * device calls it once per batch. NULL: the device runs them itself on the calling thread. */
	void (*run_crypto_jobs)(void *ctx, struct wg_crypto_job *jobs, size_t n);
};

/* One received datagram of a batch. data is decrypted in place, so it must be writable. */
struct wg_datagram {
	uint8_t *data;
	size_t len;
	const struct wg_endpoint *from;
};

/* One plaintext packet of a batch read from the TUN device (copied; not modified). */
struct wg_packet {
	const uint8_t *data;
	size_t len;
};

/* Why packets were dropped; counted per device, readable with wg_device_get_counters. */
enum wg_drop_reason {
	WG_DROP_MALFORMED = 0,     /* too short, wrong size for its type, unknown type */
	WG_DROP_BAD_MAC,           /* mac1 invalid */
	WG_DROP_RATELIMITED,       /* under load: no valid mac2 and the source is over its rate, or cookie sent */
	WG_DROP_HANDSHAKE_FAILED,  /* decryption, unknown peer, replayed timestamp, flood */
	WG_DROP_UNKNOWN_INDEX,     /* response, cookie or data for an index we do not hold */
	WG_DROP_BAD_COOKIE,
	WG_DROP_DECRYPT_FAILED,
	WG_DROP_REPLAY,
	WG_DROP_KEY_EXPIRED,       /* keypair past REJECT_AFTER_TIME/MESSAGES */
	WG_DROP_BAD_INNER,         /* decrypted packet is not a valid IPv4/IPv6 packet */
	WG_DROP_SOURCE_NOT_ALLOWED,/* inner source address not in the sending peer's allowed IPs */
	WG_DROP_NO_ROUTE,          /* TUN packet whose destination no peer allows */
	WG_DROP_NO_ENDPOINT,       /* peer has no endpoint to send to */
	WG_DROP_NO_IDENTITY,       /* no private key configured */
	WG_DROP_STAGED_OVERFLOW,   /* too many packets queued while handshaking */
	WG_DROP_REASONS
};

struct wg_device_counters {
	uint64_t dropped[WG_DROP_REASONS];
	uint64_t handshakes_initiated, handshakes_completed, cookies_sent, cookies_received;
};

struct wg_peer_info {
	uint8_t public_key[WG_KEY_LEN];
	uint8_t preshared_key[WG_KEY_LEN];   /* all zero = none */
	struct wg_endpoint endpoint;         /* addr.sa.sa_family == 0: unknown */
	uint64_t last_handshake_wall_ns;     /* 0 = never */
	uint64_t rx_bytes, tx_bytes;         /* whole WireGuard UDP payloads */
	uint16_t persistent_keepalive_interval;
	size_t allowed_ip_count;
};

struct wg_device;
struct wg_peer;

const char *wg_drop_reason_name(enum wg_drop_reason reason);

/* ops is copied. Returns NULL on allocation failure or when wg_crypto_init fails. */
struct wg_device *wg_device_new(const struct wg_io_ops *ops);
void wg_device_free(struct wg_device *dev);

/* Configuration (the UAPI and the overlay daemon call only these). */
/* key NULL or all zeros removes the identity. The key is stored clamped. A peer whose public key equals
 * the new public key is removed. Sessions of every peer are dropped (keys changed). */
void wg_device_set_private_key(struct wg_device *dev, const uint8_t key[WG_KEY_LEN]);
bool wg_device_get_private_key(const struct wg_device *dev, uint8_t out[WG_KEY_LEN]);
bool wg_device_get_public_key(const struct wg_device *dev, uint8_t out[WG_KEY_LEN]);
int wg_device_set_listen_port(struct wg_device *dev, uint16_t port);     /* 0 or -errno from bind_port */
uint16_t wg_device_get_listen_port(const struct wg_device *dev);
int wg_device_set_fwmark(struct wg_device *dev, uint32_t mark);
uint32_t wg_device_get_fwmark(const struct wg_device *dev);
void wg_device_get_counters(const struct wg_device *dev, struct wg_device_counters *out);
/* The TUN device's MTU: plaintext is padded to a multiple of 16 but never beyond it (default 1420). */
void wg_device_set_mtu(struct wg_device *dev, unsigned mtu);

struct wg_peer *wg_device_find_peer(struct wg_device *dev, const uint8_t public_key[WG_KEY_LEN]);
/* Creates a peer. NULL with *err = -EEXIST (already there), -EINVAL (our own public key) or -ENOMEM. */
struct wg_peer *wg_device_add_peer(struct wg_device *dev, const uint8_t public_key[WG_KEY_LEN], int *err);
void wg_device_remove_peer(struct wg_device *dev, struct wg_peer *peer);
void wg_device_remove_all_peers(struct wg_device *dev);
size_t wg_device_peer_count(const struct wg_device *dev);
/* Peers in creation order. */
struct wg_peer *wg_device_first_peer(struct wg_device *dev);
struct wg_peer *wg_device_next_peer(struct wg_device *dev, struct wg_peer *peer);

void wg_peer_get_info(const struct wg_peer *peer, struct wg_peer_info *out);
/* psk NULL or all zeros = no preshared key. */
void wg_peer_set_preshared_key(struct wg_peer *peer, const uint8_t psk[WG_KEY_LEN]);
/* ep NULL clears. */
void wg_peer_set_endpoint(struct wg_peer *peer, const struct wg_endpoint *ep);
/* Enabling it sends a keepalive at once (when an identity and endpoint exist), as wg(8) documents. */
void wg_peer_set_persistent_keepalive(struct wg_peer *peer, uint16_t interval_sec);
/* family AF_INET / AF_INET6; 0, -EINVAL, -ENOMEM, -ENOENT (remove of a prefix the peer does not hold). */
int wg_peer_add_allowed_ip(struct wg_peer *peer, int family, const uint8_t *ip, uint8_t cidr);
int wg_peer_remove_allowed_ip(struct wg_peer *peer, int family, const uint8_t *ip, uint8_t cidr);
void wg_peer_clear_allowed_ips(struct wg_peer *peer);
typedef void (*wg_peer_allowed_ip_fn)(void *ctx, int family, const uint8_t *ip, uint8_t cidr);
void wg_peer_for_each_allowed_ip(const struct wg_peer *peer, wg_peer_allowed_ip_fn fn, void *ctx);

/* Data plane. */
/* A plaintext IP packet read from the TUN device: routed by destination, encrypted and sent, or staged
 * while a handshake runs. */
void wg_device_tun_input(struct wg_device *dev, const uint8_t *packet, size_t len);
/* A UDP datagram received from `from`. Hostile input is dropped and counted, never trusted. */
void wg_device_udp_input(struct wg_device *dev, const uint8_t *data, size_t len, const struct wg_endpoint *from);
/* Batched forms of the two above: the crypto of the whole batch goes to run_crypto_jobs at once, and
 * packets leave in the order they came, per peer and overall. */
void wg_device_tun_input_batch(struct wg_device *dev, const struct wg_packet *packets, size_t n);
void wg_device_udp_input_batch(struct wg_device *dev, struct wg_datagram *datagrams, size_t n);
/* Zero-copy form of wg_device_tun_input, inside a batch: wg_device_tun_reserve returns room for one
 * plaintext packet of up to max bytes where the device will encrypt it (NULL when max exceeds
 * WG_MAX_PACKET); the caller writes the packet there and passes it to wg_device_tun_commit, which
 * routes it like wg_device_tun_input (staged, dropped or sent) without copying it. Nothing else may be
 * called on the device in between; a packet that is not at the reserved place is copied. */
uint8_t *wg_device_tun_reserve(struct wg_device *dev, size_t max);
void wg_device_tun_commit(struct wg_device *dev, const uint8_t *packet, size_t len);
/* Brackets a burst of wg_device_tun_input calls (e.g. the segments of one TUN read) into one batch:
 * their crypto and sends happen at wg_device_end_batch. tun input copies each packet, so the caller may
 * reuse its buffer at once. */
void wg_device_begin_batch(struct wg_device *dev);
void wg_device_end_batch(struct wg_device *dev);
/* Handshake messages are queued when they arrive and processed a few at the end of each batch, so a
 * flood of them cannot stall data. This processes the next few without new input; it returns how many
 * are still queued (the I/O layer calls it again, without sleeping, until 0). */
size_t wg_device_process_handshakes(struct wg_device *dev);
/* Runs due timers; returns the monotonic time of the next deadline (UINT64_MAX if none). */
uint64_t wg_device_tick(struct wg_device *dev);
/* Forces the "under load" mode (cookie replies instead of handshakes without mac2) for at least a
 * second; the I/O layer calls it when handshakes back up. Also entered automatically (see device.c). */
void wg_device_set_under_load(struct wg_device *dev);
#endif
