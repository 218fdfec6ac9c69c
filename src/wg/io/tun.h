/* The Linux TUN device: a layer-3 interface whose packets (raw IPv4/IPv6, no packet-information header)
 * are read from and written to one file descriptor.
 *
 * Offloads: unless told not to, wg_tun_open asks for IFF_VNET_HDR and TUNSETOFFLOAD (checksum, TSO4/6,
 * and USO4/6 where the kernel has them), so the kernel hands over TCP/UDP super-packets of up to 64 KiB
 * instead of MTU-sized packets, and accepts such super-packets back. Both directions stay invisible to
 * the caller: reading yields MTU-sized IP packets with complete checksums (super-packets are split, see
 * tun_offload.h), and written packets are queued and coalesced per TCP (and UDP) flow at wg_tun_flush.
 * When the kernel refuses the offloads, the device falls back to the plain path (one packet per
 * read/write).
 *
 * Batched by design: one wg_tun_read_batch drains up to WG_TUN_BATCH reads per wakeup, one wg_tun_flush
 * writes what a batch of received datagrams produced. */
#ifndef WG_IO_TUN_H
#define WG_IO_TUN_H
#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum { WG_TUN_BATCH = 64 };

/* Offloads enabled with TUNSETOFFLOAD (the kernel's TUN_F_* values). */
enum {
	WG_TUN_F_CSUM = 0x01,
	WG_TUN_F_TSO4 = 0x02,
	WG_TUN_F_TSO6 = 0x04,
	WG_TUN_F_USO4 = 0x20,    /* Linux >= 6.2 */
	WG_TUN_F_USO6 = 0x40,
};

struct wg_tun_stats {
	uint64_t rx_super;           /* GSO super-packets read */
	uint64_t rx_segments;        /* packets they were split into */
	uint64_t rx_csum_completed;  /* non-GSO packets whose partial checksum was completed */
	uint64_t rx_dropped;         /* malformed vnet header or packet */
	uint64_t tx_super;           /* coalesced super-packets written */
	uint64_t tx_coalesced;       /* packets that went into them */
	uint64_t tx_errors;          /* writes that failed */
};

struct wg_tun_wq;
struct wg_tun {
	int fd;                 /* -1 when closed */
	int ifindex;
	char name[IFNAMSIZ];    /* the kernel's name for it (may differ from the requested one for "%d") */
	bool vnet;              /* IFF_VNET_HDR: every packet carries a virtio_net_hdr */
	bool gro;               /* coalescing on write (turned off if the kernel ever refuses a super-packet) */
	bool gro_udp;           /* UDP datagrams too (the kernel has USO) */
	unsigned offloads;      /* WG_TUN_F_* accepted by the kernel; 0 on the plain path */
	uint8_t *rbuf;          /* one read: vnet header + packet (up to a 64 KiB super-packet) */
	uint8_t *seg;           /* the segment being handed over while a super-packet is split */
	struct wg_tun_wq *wq;   /* packets waiting for wg_tun_flush (offload path only) */
	struct wg_tun_stats stats;
};

/* Creates (or attaches to) the TUN interface `name`, non-blocking, and sets its MTU (0 = leave it).
 * offload: probe IFF_VNET_HDR + TUNSETOFFLOAD (CSUM|TSO4|TSO6|USO4|USO6, then CSUM|TSO4|TSO6), else
 * the plain path; false forces the plain path. t->offloads tells what was enabled.
 * 0 or -errno: -EPERM without CAP_NET_ADMIN, -EBUSY when another process holds it, -EINVAL when an
 * interface of that name exists and is not a TUN device, -ENOMEM. */
int wg_tun_open(struct wg_tun *t, const char *name, unsigned mtu, bool offload);
/* Frees the buffers (queued packets are dropped: flush first). Safe to call twice. */
void wg_tun_close(struct wg_tun *t);

/* Sets the MTU of interface `name` (needs CAP_NET_ADMIN). 0 or -errno. */
int wg_tun_set_mtu(const char *name, unsigned mtu);
/* The interface's current MTU, or -errno. */
int wg_tun_get_mtu(const struct wg_tun *t);

/* Where read packets go. commit is called for every IP packet, which is valid only during the call.
 * reserve (may be NULL) is asked for room for each segment of a super-packet before it is cut, so the
 * segment is written straight where the consumer wants it (e.g. the slot it will be encrypted in); NULL
 * from it: the segment is cut into the device's own buffer. */
struct wg_tun_sink {
	void *ctx;
	uint8_t *(*reserve)(void *ctx, size_t max);
	void (*commit)(void *ctx, const uint8_t *packet, size_t len);
};

/* Reads up to WG_TUN_BATCH times (until the device has nothing pending) and commits every IP packet, in
 * order: the segments of a super-packet one by one, each with complete checksums. Malformed input is
 * dropped and counted. Returns the number of packets handed over (0 when nothing was pending), or -errno
 * when the device is gone (-EBADFD: the interface was deleted; -EIO) or the read failed otherwise. */
int wg_tun_read_batch(struct wg_tun *t, const struct wg_tun_sink *sink);

/* Writes one IP packet now. 0 or -errno: -EIO while the interface is down (the packet is lost, not
 * fatal), -EBADFD when the interface is gone, -EAGAIN when the device queue is full. */
int wg_tun_write(struct wg_tun *t, const uint8_t *packet, size_t len);
/* Copies one IP packet into the write queue (on the plain path: writes it at once). The queue flushes
 * itself when full; the caller flushes at the end of each batch. 0, or an error of wg_tun_write from a
 * flush it triggered (-EBADFD takes precedence over others). */
int wg_tun_queue(struct wg_tun *t, const uint8_t *packet, size_t len);
/* The same without the copy: packet must stay valid and unchanged until the next wg_tun_flush (the
 * caller flushes before it reuses the memory; the queue may also flush by itself when full). */
int wg_tun_queue_ref(struct wg_tun *t, const uint8_t *packet, size_t len);
/* Coalesces and writes every queued packet. 0, or the first error as for wg_tun_queue. */
int wg_tun_flush(struct wg_tun *t);

/* false once the interface this fd was attached to has been deleted (it survives a move to another
 * network namespace, which is not a reason to stop). */
bool wg_tun_attached(const struct wg_tun *t);
#endif
