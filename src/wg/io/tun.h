/* The Linux TUN device: a layer-3 interface whose packets (raw IPv4/IPv6, no packet-information header)
 * are read from and written to one file descriptor.
 *
 * Batched by design: wg_tun_read_batch fills an array of buffers per wakeup, so a later offload-aware
 * version (IFF_VNET_HDR, GSO splitting, several queues) changes only this file. */
#ifndef WG_IO_TUN_H
#define WG_IO_TUN_H
#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum { WG_TUN_BATCH = 64 };

struct wg_tun {
	int fd;                 /* -1 when closed */
	int ifindex;
	char name[IFNAMSIZ];    /* the kernel's name for it (may differ from the requested one for "%d") */
};

/* Creates (or attaches to) the TUN interface `name`, non-blocking, and sets its MTU (0 = leave it).
 * 0 or -errno: -EPERM without CAP_NET_ADMIN, -EBUSY when another process holds it, -EINVAL when an
 * interface of that name exists and is not a TUN device. */
int wg_tun_open(struct wg_tun *t, const char *name, unsigned mtu);
void wg_tun_close(struct wg_tun *t);

/* Sets the MTU of interface `name` (needs CAP_NET_ADMIN). 0 or -errno. */
int wg_tun_set_mtu(const char *name, unsigned mtu);
/* The interface's current MTU, or -errno. */
int wg_tun_get_mtu(const struct wg_tun *t);

/* Reads up to n packets (until the device has none pending), each into bufs[i] of bufcap bytes, their
 * lengths into lens[i]. Returns the count (0 when nothing was pending), or -errno when the device is
 * gone (-EBADFD: the interface was deleted; -EIO) or the read failed otherwise. */
int wg_tun_read_batch(struct wg_tun *t, uint8_t *const bufs[], size_t bufcap, size_t lens[], int n);

/* Writes one IP packet. 0 or -errno: -EIO while the interface is down (the packet is lost, not fatal),
 * -EBADFD when the interface is gone, -EAGAIN when the device queue is full. */
int wg_tun_write(struct wg_tun *t, const uint8_t *packet, size_t len);

/* false once the interface this fd was attached to has been deleted (it survives a move to another
 * network namespace, which is not a reason to stop). */
bool wg_tun_attached(const struct wg_tun *t);
#endif
