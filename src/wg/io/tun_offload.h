/* TUN offloads as pure functions over buffers (no system calls, no allocation), so every byte of them
 * can be tested without a kernel.
 *
 * With IFF_VNET_HDR every packet read from or written to the TUN device is preceded by a
 * struct virtio_net_hdr (10 bytes). After TUNSETOFFLOAD the kernel hands us
 *  - GSO super-packets (TCP over IPv4/IPv6, UDP with USO) of up to 64 KiB whose headers describe the
 *    first segment: we cut them into segments of gso_size payload bytes (wg_offload_gso_*), each with
 *    its own IP lengths, IPv4 identifier and header checksum, TCP sequence number and flags, and a
 *    complete transport checksum;
 *  - packets whose transport checksum is only partial (VIRTIO_NET_HDR_F_NEEDS_CSUM: the checksum field
 *    holds the pseudo-header sum, the rest must be added from csum_start on): wg_offload_csum_complete.
 * On the way back, the decrypted packets of one receive batch are coalesced per TCP flow (and, where the
 * kernel has USO, per UDP flow) into GSO super-packets (wg_offload_gro_*), so the kernel's stack sees a
 * few large packets instead of many small ones: that is what the kernel's own GRO does for a NIC.
 *
 * Byte order of the vnet header: the TUN device uses the legacy virtio convention, the host's order
 * (unless TUNSETVNETLE/BE is set, which we never do), so the fields below are native integers. */
#ifndef WG_IO_TUN_OFFLOAD_H
#define WG_IO_TUN_OFFLOAD_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

/* Values of the virtio specification (linux/virtio_net.h); the kernel headers of older distributions
 * lack GSO_UDP_L4, so they are spelled out here. */
enum {
	WG_VNET_HDR_LEN = 10,
	WG_VNET_F_NEEDS_CSUM = 1,
	WG_VNET_F_DATA_VALID = 2,
	WG_VNET_GSO_NONE = 0,
	WG_VNET_GSO_TCPV4 = 1,
	WG_VNET_GSO_UDP = 3,       /* UDP fragmentation offload: never enabled, always refused */
	WG_VNET_GSO_TCPV6 = 4,
	WG_VNET_GSO_UDP_L4 = 5,    /* USO: UDP segmentation, IPv4 or IPv6 */
	WG_VNET_GSO_ECN = 0x80,    /* modifier: the TCP super-packet carries CWR */
};

enum {
	WG_OFFLOAD_MAX_PACKET = 65535,   /* the largest packet (or segment) we produce */
	WG_OFFLOAD_MAX_INPUT = 65575,    /* the largest super-packet accepted: IPv6 header + 65535 */
	WG_GRO_MAX_PKTS = 128,           /* packets one wg_offload_gro_plan looks at */
	WG_GRO_MAX_SEGS = 64,            /* packets coalesced into one super-packet */
	WG_GRO_OPEN_FLOWS = 8,           /* flows tracked at once while planning */
	WG_GRO_HDR_BUF = WG_VNET_HDR_LEN + 60 + 60,   /* vnet header + IPv4 or IPv6 + TCP with options */
	WG_GRO_MAX_IOV = 1 + WG_GRO_MAX_SEGS,
};

struct wg_vnet_hdr {
	uint8_t flags;
	uint8_t gso_type;
	uint16_t hdr_len;       /* headers of one segment; a hint only, the kernel's value is not trusted */
	uint16_t gso_size;      /* payload bytes per segment */
	uint16_t csum_start;    /* where the transport checksum starts (= IP header length) */
	uint16_t csum_offset;   /* position of the checksum field from csum_start (TCP 16, UDP 6) */
};

void wg_vnet_hdr_decode(struct wg_vnet_hdr *h, const uint8_t b[WG_VNET_HDR_LEN]);
void wg_vnet_hdr_encode(uint8_t b[WG_VNET_HDR_LEN], const struct wg_vnet_hdr *h);

/* The Internet checksum (RFC 1071) of len bytes added to sum, not folded: sums chain across buffers that
 * each start at an even offset of the checksummed data. Values are in the host's representation of
 * network-order words; fold with wg_offload_csum_fold. */
uint64_t wg_offload_csum_add(uint64_t sum, const uint8_t *p, size_t len);
uint16_t wg_offload_csum_fold(uint64_t sum);

/* Completes the partial checksum of a non-GSO packet (VIRTIO_NET_HDR_F_NEEDS_CSUM): sums from csum_start
 * to the end, including the pseudo-header sum stored in the field at csum_start + csum_offset, and stores
 * its complement there. false (packet untouched) when the offsets do not fit in the packet. */
bool wg_offload_csum_complete(uint8_t *pkt, size_t len, uint16_t csum_start, uint16_t csum_offset);

/* A validated GSO super-packet. It is read, never modified, while its segments are produced. */
struct wg_offload_gso {
	const uint8_t *pkt;
	size_t len;
	uint16_t l4_off;        /* IP header length */
	uint16_t hdr_len;       /* IP + transport headers: repeated in front of every segment */
	uint16_t gso_size;
	uint8_t proto;          /* IPPROTO_TCP or IPPROTO_UDP */
	bool v6;
	unsigned count;         /* number of segments, >= 1 */
};

/* Checks that h describes pkt (a GSO type we enable, matching the IP version and protocol, consistent IP
 * lengths, no IPv4 fragment or IPv6 extension header, a transport header inside the packet, gso_size not 0,
 * csum_start/csum_offset pointing at the transport checksum when NEEDS_CSUM is set, some payload). false:
 * the packet must be dropped. h->gso_type must not be WG_VNET_GSO_NONE. */
bool wg_offload_gso_parse(struct wg_offload_gso *g, const struct wg_vnet_hdr *h, const uint8_t *pkt, size_t len);
/* Writes segment i (< g->count) into out, which has room for g->hdr_len + g->gso_size bytes (at most
 * WG_OFFLOAD_MAX_PACKET). Returns its length. */
size_t wg_offload_gso_segment(const struct wg_offload_gso *g, unsigned i, uint8_t *out);

/* GRO: the packets of one batch, in arrival order. */
struct wg_gro_pkt {
	const uint8_t *data;
	size_t len;
};

struct wg_gro_group {
	uint16_t first, last;   /* packet indexes; members are chained through wg_offload_gro.next */
	uint16_t count;
	uint16_t l4_off, hdr_len;
	uint16_t gso_size;      /* payload of the first member; every member but the last has exactly this */
	uint32_t len;           /* length of the super-packet: headers + every member's payload */
	uint32_t next_seq;      /* TCP sequence number the next member must carry */
	uint8_t proto;          /* IPPROTO_TCP or IPPROTO_UDP (0 for a group that was never open) */
	bool v6;
	bool open;              /* more members may join */
	bool checked;           /* the first member's checksums were verified */
	bool psh;               /* the last member carries PSH */
};

struct wg_offload_gro {
	int ngroups;
	struct wg_gro_group groups[WG_GRO_MAX_PKTS];
	int16_t next[WG_GRO_MAX_PKTS];           /* next member of the same group, -1 at the end */
	int16_t open_flows[WG_GRO_OPEN_FLOWS];   /* groups still open, oldest first */
	int nopen;
};

/* Groups pkts[0..n) (n <= WG_GRO_MAX_PKTS). Every packet lands in exactly one group; writing the groups in
 * order g->groups[0..ngroups) keeps the order of every flow. A TCP segment joins the open group of its
 * flow (same addresses and ports) when it continues it exactly: next sequence number, the same
 * acknowledgment, window, TCP options, TOS/traffic class, TTL/hop limit (and IPv6 flow label), IPv4 DF
 * set and no fragment or IP options, ACK alone or with PSH, a payload no larger than the first one's,
 * valid IP and TCP checksums, and the group has no shorter or PSH-carrying member yet. With udp, UDP
 * datagrams of one flow are coalesced by the same rules where they apply (equal IP fields including
 * DF, sizes, valid non-zero checksums). Anything else (other protocols, SYN/FIN/RST, empty ACKs) stays a
 * group of one, and ends the open group of its flow. */
void wg_offload_gro_plan(struct wg_offload_gro *g, const struct wg_gro_pkt *pkts, int n, bool udp);
/* Describes group k for writev: iov[0] points into hdr_buf (the vnet header and, for a coalesced group,
 * the rewritten headers: IP lengths and IPv4 header checksum, PSH of the last member or the UDP length,
 * the pseudo-header sum for NEEDS_CSUM), the other entries at packet data. A group of one gets an empty vnet header (flags
 * 0, GSO_NONE) and its packet unchanged. Returns the number of iovecs (<= WG_GRO_MAX_IOV). */
int wg_offload_gro_iov(const struct wg_offload_gro *g, int k, const struct wg_gro_pkt *pkts,
		       uint8_t hdr_buf[WG_GRO_HDR_BUF], struct iovec iov[WG_GRO_MAX_IOV]);
#endif
