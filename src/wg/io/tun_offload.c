/* TUN offloads: GSO splitting, checksum completion and GRO coalescing. See tun_offload.h. */
#include "wg/io/tun_offload.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

enum {
	IP4_HDR_MIN = 20,
	IP6_HDR = 40,
	TCP_HDR_MIN = 20,
	TCP_HDR_MAX = 60,
	UDP_HDR = 8,
	TCP_CSUM_OFF = 16,
	UDP_CSUM_OFF = 6,
	TCP_FLAGS_OFF = 13,
	IP4_DF = 0x4000,
	IP4_FRAG_MASK = 0x3fff,      /* MF and the fragment offset */
	IP4_OFFSET_MASK = 0x1fff,
};

enum { TCP_FIN = 0x01, TCP_PSH = 0x08, TCP_ACK = 0x10, TCP_CWR = 0x80 };

static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t get32(const uint8_t *p) { return (uint32_t)get16(p) << 16 | get16(p + 2); }
static void put16(uint8_t *p, uint32_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static void put32(uint8_t *p, uint32_t v) { put16(p, v >> 16); put16(p + 2, v); }

/* --- vnet header (native byte order, see the header) */

void wg_vnet_hdr_decode(struct wg_vnet_hdr *h, const uint8_t b[WG_VNET_HDR_LEN])
{
	h->flags = b[0];
	h->gso_type = b[1];
	memcpy(&h->hdr_len, b + 2, 2);
	memcpy(&h->gso_size, b + 4, 2);
	memcpy(&h->csum_start, b + 6, 2);
	memcpy(&h->csum_offset, b + 8, 2);
}

void wg_vnet_hdr_encode(uint8_t b[WG_VNET_HDR_LEN], const struct wg_vnet_hdr *h)
{
	b[0] = h->flags;
	b[1] = h->gso_type;
	memcpy(b + 2, &h->hdr_len, 2);
	memcpy(b + 4, &h->gso_size, 2);
	memcpy(b + 6, &h->csum_start, 2);
	memcpy(b + 8, &h->csum_offset, 2);
}

/* --- checksums */

/* Words are loaded in host order: the ones' complement sum commutes with byte swapping (RFC 1071 2.B),
 * so a sum stored back in host order is the right network-order checksum on either endianness. 32-bit
 * halves are added into 64 bits, which cannot overflow for any packet size we handle; 2^32 = 1 modulo
 * 0xffff, so folding later keeps the value. Always inlined: when the AVX2 variants below tail-called it,
 * GCC 12 left out their vzeroupper, and the next SSE instruction of the caller paid for the dirty upper
 * vector state (70% of wg_offload_gro_plan's samples sat on one pxor after checksums_ok). */
static inline __attribute__((always_inline)) uint64_t csum_add_words(uint64_t s, const uint8_t *p, size_t len)
{
	for (; len >= 8; p += 8, len -= 8) {
		uint64_t v;

		memcpy(&v, p, 8);
		s += (v & 0xffffffffu) + (v >> 32);
	}
	if (len >= 4) {
		uint32_t v;

		memcpy(&v, p, 4);
		s += v;
		p += 4;
		len -= 4;
	}
	if (len >= 2) {
		uint16_t v;

		memcpy(&v, p, 2);
		s += v;
		p += 2;
		len -= 2;
	}
	if (len) {
		/* The odd last byte is the high half of a word padded with zero. */
		uint8_t pad[2] = { p[0], 0 };
		uint16_t v;

		memcpy(&v, pad, 2);
		s += v;
	}
	return s;
}

typedef uint64_t csum_lanes __attribute__((vector_size(32)));

static const csum_lanes low32 = { 0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu };

static inline __attribute__((always_inline)) uint64_t lanes_total(uint64_t sum, const csum_lanes *low,
								    const csum_lanes *high)
{
	uint64_t s = (sum & 0xffffffffu) + (sum >> 32);

	for (int i = 0; i < 4; i++)
		s += (*low)[i] + (*high)[i];
	return s;
}

/* The same sum, 64 bytes per round in vector lanes (every segment of a super-packet is summed once on
 * the way out, and every coalesced one on the way in): three times faster than word by word with AVX2,
 * 1.5 times with the SSE2 baseline (1380 bytes: 27 / 57 / 83 ns). Inlined into a baseline and an AVX2
 * variant below (explicit dispatch: clang 14 does not emit target_clones' resolver reliably). */
static inline __attribute__((always_inline)) uint64_t csum_add_lanes(uint64_t sum, const uint8_t *p, size_t len)
{
	csum_lanes low = { 0 }, high = { 0 };

	for (; len >= 64; p += 64, len -= 64) {
		csum_lanes a, b;

		memcpy(&a, p, 32);
		memcpy(&b, p + 32, 32);
		low += (a & low32) + (b & low32);
		high += (a >> 32) + (b >> 32);
	}
	return csum_add_words(lanes_total(sum, &low, &high), p, len);
}

/* Copies a segment's payload out of its super-packet and sums it in the same pass (a memcpy followed by
 * a second read of the copy cost twice as much in the sender's profile). */
static inline __attribute__((always_inline)) uint64_t copy_and_sum_lanes(uint8_t *dst, const uint8_t *src, size_t len)
{
	csum_lanes low = { 0 }, high = { 0 };

	for (; len >= 64; src += 64, dst += 64, len -= 64) {
		csum_lanes a, b;

		memcpy(&a, src, 32);
		memcpy(&b, src + 32, 32);
		memcpy(dst, &a, 32);
		memcpy(dst + 32, &b, 32);
		low += (a & low32) + (b & low32);
		high += (a >> 32) + (b >> 32);
	}
	memcpy(dst, src, len);
	return csum_add_words(lanes_total(0, &low, &high), dst, len);
}

#if defined(__x86_64__)
static __attribute__((target("avx2"))) uint64_t csum_add_avx2(uint64_t sum, const uint8_t *p, size_t len)
{
	return csum_add_lanes(sum, p, len);
}

static __attribute__((target("avx2"))) uint64_t copy_and_sum_avx2(uint8_t *dst, const uint8_t *src, size_t len)
{
	return copy_and_sum_lanes(dst, src, len);
}
#endif

uint64_t wg_offload_csum_add(uint64_t sum, const uint8_t *p, size_t len)
{
#if defined(__x86_64__)
	if (__builtin_cpu_supports("avx2"))
		return csum_add_avx2(sum, p, len);
#endif
	return csum_add_lanes(sum, p, len);
}

static uint64_t copy_and_sum(uint8_t *dst, const uint8_t *src, size_t len)
{
#if defined(__x86_64__)
	if (__builtin_cpu_supports("avx2"))
		return copy_and_sum_avx2(dst, src, len);
#endif
	return copy_and_sum_lanes(dst, src, len);
}

uint16_t wg_offload_csum_fold(uint64_t s)
{
	s = (s & 0xffffffffu) + (s >> 32);
	s = (s & 0xffffffffu) + (s >> 32);
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (uint16_t)s;
}

static void store_csum(uint8_t *field, uint16_t c)
{
	memcpy(field, &c, 2);
}

/* The TCP/UDP pseudo-header: addresses, protocol and transport length. */
static uint64_t pseudo_sum(const uint8_t *ip, bool v6, uint8_t proto, size_t l4_len)
{
	uint64_t s = v6 ? wg_offload_csum_add(0, ip + 8, 32) : wg_offload_csum_add(0, ip + 12, 8);

	return s + htons(proto) + htons((uint16_t)l4_len);
}

static void ip4_set_csum(uint8_t *ip, size_t ihl)
{
	ip[10] = ip[11] = 0;
	store_csum(ip + 10, (uint16_t)~wg_offload_csum_fold(wg_offload_csum_add(0, ip, ihl)));
}

/* A transport checksum of 0 means "none" for UDP over IPv4 and is invalid over IPv6: the kernel sends
 * 0xffff (the same value in ones' complement) instead, for every protocol. */
static uint16_t final_csum(uint64_t sum)
{
	uint16_t c = (uint16_t)~wg_offload_csum_fold(sum);

	return c ? c : 0xffff;
}

bool wg_offload_csum_complete(uint8_t *pkt, size_t len, uint16_t csum_start, uint16_t csum_offset)
{
	size_t field = (size_t)csum_start + csum_offset;

	/* csum_start <= field, so this also keeps the start inside the packet. */
	if (field + 2 > len)
		return false;
	/* The field holds the pseudo-header sum: it is part of what is summed. */
	store_csum(pkt + field, final_csum(wg_offload_csum_add(0, pkt + csum_start, len - csum_start)));
	return true;
}

/* --- GSO: cutting a super-packet into segments */

static bool gso_ip4(struct wg_offload_gso *g, const uint8_t *pkt, size_t len)
{
	size_t ihl = (size_t)(pkt[0] & 0x0f) * 4;

	if (ihl < IP4_HDR_MIN || len < ihl || get16(pkt + 2) != len || pkt[9] != g->proto)
		return false;
	if (get16(pkt + 6) & IP4_FRAG_MASK)
		return false;
	g->l4_off = (uint16_t)ihl;
	return true;
}

/* Extension headers are refused: the kernel's TSO/USO output never has them on a tunnel device. */
static bool gso_ip6(struct wg_offload_gso *g, const uint8_t *pkt, size_t len)
{
	if (len < IP6_HDR || get16(pkt + 4) != len - IP6_HDR || pkt[6] != g->proto)
		return false;
	g->l4_off = IP6_HDR;
	return true;
}

static bool gso_type(struct wg_offload_gso *g, const struct wg_vnet_hdr *h, unsigned version)
{
	switch (h->gso_type & ~WG_VNET_GSO_ECN) {
	case WG_VNET_GSO_TCPV4:
		g->proto = IPPROTO_TCP;
		return version == 4;
	case WG_VNET_GSO_TCPV6:
		g->proto = IPPROTO_TCP;
		return version == 6;
	case WG_VNET_GSO_UDP_L4:
		g->proto = IPPROTO_UDP;
		return (version == 4 || version == 6) && !(h->gso_type & WG_VNET_GSO_ECN);
	default:
		return false;
	}
}

/* The transport header length is read from the packet: the kernel's hdr_len may cover more than the
 * headers (e.g. the whole linear part of a forwarded packet). */
static bool gso_l4(struct wg_offload_gso *g, const uint8_t *pkt, size_t len)
{
	size_t thlen = UDP_HDR;

	if (g->proto == IPPROTO_TCP) {
		if (len < (size_t)g->l4_off + TCP_HDR_MIN)
			return false;
		thlen = (size_t)(pkt[g->l4_off + 12] >> 4) * 4;
		if (thlen < TCP_HDR_MIN)
			return false;
	}
	/* Some payload is required: a GSO packet without any is malformed. */
	if ((size_t)g->l4_off + thlen >= len)
		return false;
	g->hdr_len = (uint16_t)(g->l4_off + thlen);
	return true;
}

bool wg_offload_gso_parse(struct wg_offload_gso *g, const struct wg_vnet_hdr *h, const uint8_t *pkt, size_t len)
{
	size_t payload, first;

	memset(g, 0, sizeof(*g));
	if (len < IP4_HDR_MIN || len > WG_OFFLOAD_MAX_INPUT || h->gso_size == 0 || h->hdr_len > len)
		return false;
	if (!gso_type(g, h, pkt[0] >> 4))
		return false;
	g->v6 = (pkt[0] >> 4) == 6;
	if (!(g->v6 ? gso_ip6(g, pkt, len) : gso_ip4(g, pkt, len)) || !gso_l4(g, pkt, len))
		return false;
	if ((h->flags & WG_VNET_F_NEEDS_CSUM) &&
	    (h->csum_start != g->l4_off ||
	     h->csum_offset != (g->proto == IPPROTO_TCP ? TCP_CSUM_OFF : UDP_CSUM_OFF)))
		return false;
	payload = len - g->hdr_len;
	first = payload < h->gso_size ? payload : h->gso_size;
	if (g->hdr_len + first > WG_OFFLOAD_MAX_PACKET)
		return false;
	g->pkt = pkt;
	g->len = len;
	g->gso_size = h->gso_size;
	g->count = (unsigned)((payload + h->gso_size - 1) / h->gso_size);
	return true;
}

/* IP fields of segment i: lengths, and for IPv4 the identifier (one more per segment, as the kernel's
 * software segmentation does) and the header checksum. */
static void segment_ip(const struct wg_offload_gso *g, unsigned i, uint8_t *out, size_t total)
{
	if (g->v6) {
		put16(out + 4, (uint32_t)(total - IP6_HDR));
		return;
	}
	put16(out + 2, (uint32_t)total);
	put16(out + 4, get16(g->pkt + 4) + i);
	ip4_set_csum(out, g->l4_off);
}

size_t wg_offload_gso_segment(const struct wg_offload_gso *g, unsigned i, uint8_t *out)
{
	size_t off = g->hdr_len + (size_t)i * g->gso_size;
	size_t plen = g->len - off < g->gso_size ? g->len - off : g->gso_size;
	size_t total = g->hdr_len + plen;
	uint8_t *l4 = out + g->l4_off;
	uint8_t *field;

	uint64_t payload_sum;

	memcpy(out, g->pkt, g->hdr_len);
	/* The transport header is a multiple of 4 bytes, so the payload starts on an even offset of the sum. */
	payload_sum = copy_and_sum(out + g->hdr_len, g->pkt + off, plen);
	segment_ip(g, i, out, total);
	if (g->proto == IPPROTO_TCP) {
		put32(l4 + 4, get32(g->pkt + g->l4_off + 4) + (uint32_t)i * g->gso_size);
		/* FIN and PSH belong to the last segment only, CWR to the first only. */
		if (i + 1 < g->count)
			l4[TCP_FLAGS_OFF] &= (uint8_t)~(TCP_FIN | TCP_PSH);
		if (i > 0)
			l4[TCP_FLAGS_OFF] &= (uint8_t)~TCP_CWR;
		field = l4 + TCP_CSUM_OFF;
	} else {
		put16(l4 + 4, (uint32_t)(total - g->l4_off));
		field = l4 + UDP_CSUM_OFF;
	}
	/* The super-packet's field holds a pseudo-header sum for its own length: recompute from scratch. */
	field[0] = field[1] = 0;
	store_csum(field, final_csum(pseudo_sum(out, g->v6, g->proto, total - g->l4_off) + payload_sum +
				     wg_offload_csum_add(0, l4, g->hdr_len - g->l4_off)));
	return total;
}

/* --- GRO: coalescing the TCP segments (and UDP datagrams) of a batch */

struct l4_seg {
	const uint8_t *ip;
	size_t len;
	uint16_t l4_off, thlen, payload;   /* thlen: transport header length (UDP: 8) */
	uint32_t seq;
	uint8_t flags;                     /* TCP flags */
	uint8_t proto;
	bool v6;
	bool candidate;                    /* may start or join a coalesced group */
};

/* IPv4 without options and with its exact length, or IPv6 with its exact payload length and the
 * transport header right after it. TCP also needs DF and nothing else in the fragment field; UDP only
 * "not a fragment" (datagrams without DF are common, and their DF bits must then simply be equal). */
static bool parse_ip(const uint8_t *p, size_t len, struct l4_seg *s)
{
	if ((p[0] >> 4) == 4) {
		size_t ihl = (size_t)(p[0] & 0x0f) * 4;
		uint16_t frag = get16(p + 6);

		/* A fragment other than the first carries no transport header: not a flow we can name. */
		if (ihl < IP4_HDR_MIN || (frag & IP4_OFFSET_MASK))
			return false;
		s->proto = p[9];
		s->l4_off = (uint16_t)ihl;
		s->candidate = ihl == IP4_HDR_MIN && get16(p + 2) == len &&
			       (s->proto == IPPROTO_TCP ? frag == IP4_DF : !(frag & ~IP4_DF));
		return true;
	}
	if ((p[0] >> 4) == 6 && len >= IP6_HDR) {
		s->v6 = true;
		s->proto = p[6];
		s->l4_off = IP6_HDR;
		s->candidate = get16(p + 4) == len - IP6_HDR;
		return true;
	}
	return false;
}

static bool parse_tcp(const uint8_t *th, size_t len, struct l4_seg *s)
{
	s->thlen = (uint16_t)((th[12] >> 4) * 4);
	if (s->thlen < TCP_HDR_MIN || (size_t)s->l4_off + s->thlen > len)
		return false;
	s->payload = (uint16_t)(len - s->l4_off - s->thlen);
	s->seq = get32(th + 4);
	s->flags = th[TCP_FLAGS_OFF];
	s->candidate = s->candidate && s->payload > 0 &&
		       (s->flags == TCP_ACK || s->flags == (TCP_ACK | TCP_PSH));
	return true;
}

/* A UDP datagram over IPv4 without a checksum cannot be sent up as CHECKSUM_PARTIAL: one would be
 * invented for it. */
static void parse_udp(const uint8_t *uh, size_t len, struct l4_seg *s)
{
	s->thlen = UDP_HDR;
	s->payload = (uint16_t)(len - s->l4_off - UDP_HDR);
	s->candidate = s->candidate && s->payload > 0 && get16(uh + 4) == len - s->l4_off &&
		       (s->v6 || get16(uh + UDP_CSUM_OFF) != 0);
}

/* Reads a TCP (or, with udp, a UDP) packet far enough to know its flow, and whether it may be
 * coalesced. false: another protocol, or too damaged to name a flow. */
static bool parse_l4(const uint8_t *p, size_t len, bool udp, struct l4_seg *s)
{
	memset(s, 0, sizeof(*s));
	if (len < IP4_HDR_MIN || len > WG_OFFLOAD_MAX_PACKET || !parse_ip(p, len, s))
		return false;
	s->ip = p;
	s->len = len;
	if (s->proto == IPPROTO_TCP && len >= (size_t)s->l4_off + TCP_HDR_MIN)
		return parse_tcp(p + s->l4_off, len, s);
	if (s->proto == IPPROTO_UDP && udp && len >= (size_t)s->l4_off + UDP_HDR) {
		parse_udp(p + s->l4_off, len, s);
		return true;
	}
	return false;
}

static bool same_flow(const struct wg_gro_group *grp, const uint8_t *first, const struct l4_seg *s)
{
	if (grp->v6 != s->v6 || grp->proto != s->proto)
		return false;
	if (s->v6 ? memcmp(first + 8, s->ip + 8, 32) : memcmp(first + 12, s->ip + 12, 8))
		return false;
	return memcmp(first + grp->l4_off, s->ip + s->l4_off, 4) == 0;
}

/* Everything the super-packet states once must be equal: the IP fields that are not lengths, checksums
 * or the IPv4 identifier, and for TCP the acknowledgment, data offset, window and options. TCP flags are
 * ACK or ACK+PSH on both (candidacy), and PSH ends a group. */
static bool headers_match(const struct wg_gro_group *grp, const uint8_t *f, const struct l4_seg *s)
{
	const uint8_t *ft = f + grp->l4_off, *st = s->ip + s->l4_off;

	if (s->l4_off != grp->l4_off || (size_t)s->l4_off + s->thlen != grp->hdr_len)
		return false;
	if (s->v6 ? (memcmp(f, s->ip, 4) || f[7] != s->ip[7])
		  : (f[1] != s->ip[1] || f[6] != s->ip[6] || f[8] != s->ip[8]))
		return false;
	/* Without DF the identifier matters (it names fragments): the segments the kernel cuts again get
	 * consecutive ones, so only consecutive ones may be merged. */
	if (!s->v6 && !(f[6] & (IP4_DF >> 8)) && get16(s->ip + 4) != (uint16_t)(get16(f + 4) + grp->count))
		return false;
	if (s->proto == IPPROTO_UDP)
		return true;
	return memcmp(ft + 8, st + 8, 5) == 0 && memcmp(ft + 14, st + 14, 2) == 0 &&
	       memcmp(ft + TCP_HDR_MIN, st + TCP_HDR_MIN, s->thlen - TCP_HDR_MIN) == 0;
}

static bool can_join(const struct wg_gro_group *grp, const uint8_t *first, const struct l4_seg *s)
{
	return s->candidate && (s->proto == IPPROTO_UDP || s->seq == grp->next_seq) &&
	       s->payload <= grp->gso_size && grp->count < WG_GRO_MAX_SEGS &&
	       grp->len + s->payload <= WG_OFFLOAD_MAX_PACKET && headers_match(grp, first, s);
}

/* A coalesced packet goes up with CHECKSUM_PARTIAL and is never verified again: a member with a bad
 * checksum must not be laundered into it. Checked lazily, so packets that stay alone cost nothing. */
static bool checksums_ok(const uint8_t *p, size_t len, uint16_t l4_off, bool v6, uint8_t proto)
{
	uint64_t sum;

	if (!v6 && wg_offload_csum_fold(wg_offload_csum_add(0, p, l4_off)) != 0xffff)
		return false;
	sum = pseudo_sum(p, v6, proto, len - l4_off) + wg_offload_csum_add(0, p + l4_off, len - l4_off);
	return wg_offload_csum_fold(sum) == 0xffff;
}

static void close_flow(struct wg_offload_gro *g, int slot)
{
	g->groups[g->open_flows[slot]].open = false;
	memmove(&g->open_flows[slot], &g->open_flows[slot + 1],
		(size_t)(g->nopen - slot - 1) * sizeof(g->open_flows[0]));
	g->nopen--;
}

static int find_flow(const struct wg_offload_gro *g, const struct wg_gro_pkt *pkts, const struct l4_seg *s)
{
	for (int slot = g->nopen - 1; slot >= 0; slot--) {
		const struct wg_gro_group *grp = &g->groups[g->open_flows[slot]];

		if (same_flow(grp, pkts[grp->first].data, s))
			return slot;
	}
	return -1;
}

static bool join(struct wg_offload_gro *g, int k, const struct wg_gro_pkt *pkts, int i, const struct l4_seg *s)
{
	struct wg_gro_group *grp = &g->groups[k];
	const uint8_t *first = pkts[grp->first].data;

	if (!can_join(grp, first, s))
		return false;
	if (!grp->checked) {
		if (!checksums_ok(first, pkts[grp->first].len, grp->l4_off, grp->v6, grp->proto))
			return false;
		grp->checked = true;
	}
	if (!checksums_ok(s->ip, s->len, s->l4_off, s->v6, s->proto))
		return false;
	g->next[grp->last] = (int16_t)i;
	grp->last = (uint16_t)i;
	grp->count++;
	grp->len += s->payload;
	grp->next_seq += s->payload;
	grp->psh = (s->flags & TCP_PSH) != 0;
	return true;
}

static void start_group(struct wg_offload_gro *g, const struct wg_gro_pkt *pkts, int i, const struct l4_seg *s)
{
	struct wg_gro_group *grp = &g->groups[g->ngroups];

	memset(grp, 0, sizeof(*grp));
	grp->first = grp->last = (uint16_t)i;
	grp->count = 1;
	grp->len = (uint32_t)pkts[i].len;
	if (!s || !s->candidate || (s->flags & TCP_PSH))
		return;
	grp->open = true;
	grp->v6 = s->v6;
	grp->proto = s->proto;
	grp->l4_off = s->l4_off;
	grp->hdr_len = (uint16_t)(s->l4_off + s->thlen);
	grp->gso_size = s->payload;
	grp->next_seq = s->seq + s->payload;
	if (g->nopen == WG_GRO_OPEN_FLOWS)
		close_flow(g, 0);
	g->open_flows[g->nopen++] = (int16_t)g->ngroups;
}

void wg_offload_gro_plan(struct wg_offload_gro *g, const struct wg_gro_pkt *pkts, int n, bool udp)
{
	g->ngroups = 0;
	g->nopen = 0;
	for (int i = 0; i < n && i < WG_GRO_MAX_PKTS; i++) {
		struct l4_seg s;
		bool known = parse_l4(pkts[i].data, pkts[i].len, udp, &s);
		int slot = known ? find_flow(g, pkts, &s) : -1;

		g->next[i] = -1;
		if (slot >= 0) {
			int k = g->open_flows[slot];

			if (join(g, k, pkts, i, &s)) {
				/* A shorter or PSH-carrying segment ends the super-packet. */
				if (g->groups[k].psh || s.payload < g->groups[k].gso_size)
					close_flow(g, slot);
				continue;
			}
			/* Whatever comes next in this flow must follow this packet, not join the group. */
			close_flow(g, slot);
		}
		start_group(g, pkts, i, known ? &s : NULL);
		g->ngroups++;
	}
}

/* The first member's headers, rewritten for the whole super-packet. */
static void super_headers(const struct wg_gro_group *grp, const uint8_t *first, uint8_t *ip)
{
	uint8_t *l4 = ip + grp->l4_off;
	uint8_t *field = l4 + (grp->proto == IPPROTO_TCP ? TCP_CSUM_OFF : UDP_CSUM_OFF);

	memcpy(ip, first, grp->hdr_len);
	if (grp->v6) {
		put16(ip + 4, grp->len - IP6_HDR);
	} else {
		put16(ip + 2, grp->len);
		ip4_set_csum(ip, grp->l4_off);
	}
	if (grp->proto == IPPROTO_UDP)
		put16(l4 + 4, grp->len - grp->l4_off);
	else if (grp->psh)
		l4[TCP_FLAGS_OFF] |= TCP_PSH;
	/* NEEDS_CSUM: the field holds the folded pseudo-header sum, the kernel adds the rest. */
	field[0] = field[1] = 0;
	store_csum(field, wg_offload_csum_fold(pseudo_sum(ip, grp->v6, grp->proto, grp->len - grp->l4_off)));
}

static void super_vnet_hdr(const struct wg_gro_group *grp, uint8_t hdr_buf[WG_VNET_HDR_LEN])
{
	struct wg_vnet_hdr h = {
		.flags = WG_VNET_F_NEEDS_CSUM,
		.gso_type = grp->proto == IPPROTO_UDP ? WG_VNET_GSO_UDP_L4
			    : grp->v6 ? WG_VNET_GSO_TCPV6 : WG_VNET_GSO_TCPV4,
		.hdr_len = grp->hdr_len,
		.gso_size = grp->gso_size,
		.csum_start = grp->l4_off,
		.csum_offset = grp->proto == IPPROTO_TCP ? TCP_CSUM_OFF : UDP_CSUM_OFF,
	};

	wg_vnet_hdr_encode(hdr_buf, &h);
}

int wg_offload_gro_iov(const struct wg_offload_gro *g, int k, const struct wg_gro_pkt *pkts,
		       uint8_t hdr_buf[WG_GRO_HDR_BUF], struct iovec iov[WG_GRO_MAX_IOV])
{
	const struct wg_gro_group *grp = &g->groups[k];
	int n = 1;

	if (grp->count == 1) {
		static const struct wg_vnet_hdr none;

		wg_vnet_hdr_encode(hdr_buf, &none);
		iov[0] = (struct iovec){ .iov_base = hdr_buf, .iov_len = WG_VNET_HDR_LEN };
		iov[1] = (struct iovec){ .iov_base = (void *)pkts[grp->first].data,
					 .iov_len = pkts[grp->first].len };
		return 2;
	}
	super_vnet_hdr(grp, hdr_buf);
	super_headers(grp, pkts[grp->first].data, hdr_buf + WG_VNET_HDR_LEN);
	iov[0] = (struct iovec){ .iov_base = hdr_buf, .iov_len = WG_VNET_HDR_LEN + (size_t)grp->hdr_len };
	for (int m = grp->first; m >= 0; m = g->next[m])
		iov[n++] = (struct iovec){ .iov_base = (void *)(pkts[m].data + grp->hdr_len),
					   .iov_len = pkts[m].len - grp->hdr_len };
	return n;
}
