/* TUN offloads (tun_offload.c): GSO splitting of crafted TCPv4/TCPv6/UDP super-packets, completion of
 * partial checksums, GRO coalescing and its refusals, split(coalesce(x)) == x, and hostile vnet headers.
 * Every checksum is checked against a naive big-endian 16-bit reference written here, not against the
 * module's own routine. Seed: WG_TEST_SEED in the environment, else a fixed one. */
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include "test.h"
#include "wg/io/tun_offload.h"

/* --- reference helpers */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static unsigned rnd_below(unsigned n) { return (unsigned)(rnd() % n); }

static void rnd_fill(uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)rnd();
}

static uint16_t be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t be32(const uint8_t *p) { return (uint32_t)be16(p) << 16 | be16(p + 2); }
static void wbe16(uint8_t *p, unsigned v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static void wbe32(uint8_t *p, uint32_t v) { wbe16(p, v >> 16); wbe16(p + 2, v & 0xffff); }

/* Big-endian 16-bit words, one at a time, folded: the textbook definition. */
static uint32_t naive_sum(const uint8_t *p, size_t n, uint32_t acc)
{
	for (size_t i = 0; i < n; i += 2)
		acc += (uint32_t)(p[i] << 8 | (i + 1 < n ? p[i + 1] : 0));
	return acc;
}

static uint16_t naive_fold(uint32_t acc)
{
	while (acc >> 16)
		acc = (acc & 0xffff) + (acc >> 16);
	return (uint16_t)acc;
}

static bool v6_of(const uint8_t *ip) { return (ip[0] >> 4) == 6; }
static size_t l4_of(const uint8_t *ip) { return v6_of(ip) ? 40 : (size_t)(ip[0] & 15) * 4; }

static uint32_t naive_pseudo(const uint8_t *ip, uint8_t proto, size_t l4len)
{
	uint32_t acc = v6_of(ip) ? naive_sum(ip + 8, 32, 0) : naive_sum(ip + 12, 8, 0);

	return acc + proto + (uint32_t)l4len;
}

static bool ip4_csum_ok(const uint8_t *ip) { return naive_fold(naive_sum(ip, l4_of(ip), 0)) == 0xffff; }

static bool l4_csum_ok(const uint8_t *ip, size_t len, uint8_t proto)
{
	size_t l4 = l4_of(ip);

	return naive_fold(naive_sum(ip + l4, len - l4, naive_pseudo(ip, proto, len - l4))) == 0xffff;
}

/* Host-order result of the module, as the big-endian value a packet would carry. */
static uint16_t module_csum_be(uint16_t host)
{
	uint8_t b[2];

	memcpy(b, &host, 2);
	return be16(b);
}

/* --- packet builders */

struct flow {
	bool v6;
	uint8_t src[16], dst[16];
	uint16_t sport, dport;
};

struct tcp_spec {
	uint32_t seq, ack;
	uint8_t flags;
	uint16_t ipid, window;
	uint8_t ttl, tos;
	bool ts;              /* NOP NOP timestamps option: data offset 8 */
	uint32_t tsval;
	bool no_df;
};

enum { FIN = 0x01, SYN = 0x02, PSH = 0x08, ACK = 0x10, CWR = 0x80 };

static const struct flow flow4 = { false, { 10, 9, 0, 1 }, { 10, 9, 0, 2 }, 40000, 5201 };
static const struct flow flow4b = { false, { 10, 9, 0, 1 }, { 10, 9, 0, 2 }, 40002, 5201 };
static const struct flow flow4u = { false, { 10, 9, 0, 1 }, { 10, 9, 0, 2 }, 40003, 5201 };
static const struct flow flow6 = { true,
	{ 0xfd, 0, 0, 9, [15] = 1 }, { 0xfd, 0, 0, 9, [15] = 2 }, 40001, 5201 };

static size_t put_ip(uint8_t *out, const struct flow *f, const struct tcp_spec *t, uint8_t proto, size_t l4len)
{
	if (f->v6) {
		out[0] = 0x60 | (t->tos >> 4);
		out[1] = (uint8_t)(t->tos << 4) | 0x0a;
		out[2] = 0xbc;
		out[3] = 0xde;
		wbe16(out + 4, (unsigned)l4len);
		out[6] = proto;
		out[7] = t->ttl ? t->ttl : 64;
		memcpy(out + 8, f->src, 16);
		memcpy(out + 24, f->dst, 16);
		return 40;
	}
	memset(out, 0, 20);
	out[0] = 0x45;
	out[1] = t->tos;
	wbe16(out + 2, (unsigned)(20 + l4len));
	wbe16(out + 4, t->ipid);
	wbe16(out + 6, t->no_df ? 0 : 0x4000);
	out[8] = t->ttl ? t->ttl : 64;
	out[9] = proto;
	memcpy(out + 12, f->src, 4);
	memcpy(out + 16, f->dst, 4);
	wbe16(out + 10, (uint16_t)~naive_fold(naive_sum(out, 20, 0)));
	return 20;
}

/* A TCP packet with correct checksums (naive). Returns its length. */
static size_t make_tcp(uint8_t *out, const struct flow *f, const struct tcp_spec *t, const uint8_t *payload,
		       size_t plen)
{
	size_t thlen = t->ts ? 32 : 20;
	size_t l4 = put_ip(out, f, t, IPPROTO_TCP, thlen + plen);
	uint8_t *th = out + l4;

	memset(th, 0, thlen);
	wbe16(th, f->sport);
	wbe16(th + 2, f->dport);
	wbe32(th + 4, t->seq);
	wbe32(th + 8, t->ack);
	th[12] = (uint8_t)(thlen / 4) << 4;
	th[13] = t->flags;
	wbe16(th + 14, t->window ? t->window : 501);
	if (t->ts) {
		th[20] = 1;
		th[21] = 1;
		th[22] = 8;
		th[23] = 10;
		wbe32(th + 24, t->tsval);
		wbe32(th + 28, 0x01020304);
	}
	memcpy(th + thlen, payload, plen);
	wbe16(th + 16, (uint16_t)~naive_fold(naive_sum(th, thlen + plen,
						       naive_pseudo(out, IPPROTO_TCP, thlen + plen))));
	return l4 + thlen + plen;
}

/* A UDP datagram with a correct checksum; t gives the IP fields (identifier, DF, TOS, TTL). */
static size_t make_udp_ip(uint8_t *out, const struct flow *f, const struct tcp_spec *t, const uint8_t *payload,
			  size_t plen)
{
	size_t l4 = put_ip(out, f, t, IPPROTO_UDP, 8 + plen);
	uint8_t *uh = out + l4;
	uint16_t c;

	wbe16(uh, f->sport);
	wbe16(uh + 2, f->dport);
	wbe16(uh + 4, (unsigned)(8 + plen));
	wbe16(uh + 6, 0);
	memcpy(uh + 8, payload, plen);
	c = (uint16_t)~naive_fold(naive_sum(uh, 8 + plen, naive_pseudo(out, IPPROTO_UDP, 8 + plen)));
	wbe16(uh + 6, c ? c : 0xffff);
	return l4 + 8 + plen;
}

static size_t make_udp(uint8_t *out, const struct flow *f, const uint8_t *payload, size_t plen)
{
	struct tcp_spec t = { .ipid = 7 };

	return make_udp_ip(out, f, &t, payload, plen);
}

/* As the kernel hands a super-packet over: the transport checksum field holds the folded pseudo-header
 * sum of the whole super-packet (NEEDS_CSUM). */
static void make_partial(uint8_t *pkt, size_t len, uint8_t proto)
{
	size_t l4 = l4_of(pkt), field = l4 + (proto == IPPROTO_TCP ? 16 : 6);

	wbe16(pkt + field, naive_fold(naive_pseudo(pkt, proto, len - l4)));
}

static struct wg_vnet_hdr gso_hdr(const uint8_t *pkt, uint8_t type, uint16_t gso_size)
{
	size_t l4 = l4_of(pkt);
	bool tcp = type != WG_VNET_GSO_UDP_L4;
	struct wg_vnet_hdr h = {
		.flags = WG_VNET_F_NEEDS_CSUM,
		.gso_type = type,
		.hdr_len = (uint16_t)(l4 + (tcp ? (pkt[l4 + 12] >> 4) * 4 : 8)),
		.gso_size = gso_size,
		.csum_start = (uint16_t)l4,
		.csum_offset = tcp ? 16 : 6,
	};
	return h;
}

static uint8_t payload_src[70000];

/* --- checksum primitive */

static void test_csum_matches_naive(void)
{
	static uint8_t buf[65536 + 8];

	for (int round = 0; round < 2000; round++) {
		/* Mostly packet sizes, sometimes up to 64 KiB; any start alignment (the vector loop reads 64 bytes
		 * at a time from wherever the data begins). */
		size_t max = round % 50 ? 3000 : 65536, n = rnd_below((unsigned)max + 1), off = rnd_below(8);
		size_t split = n ? rnd_below((unsigned)n + 1) & ~(size_t)1 : 0;
		uint64_t s;

		rnd_fill(buf + off, n);
		s = wg_offload_csum_add(0, buf + off, n);
		CHECK(module_csum_be(wg_offload_csum_fold(s)) == naive_fold(naive_sum(buf + off, n, 0)));
		/* Chained at an even offset, the sum is the same. */
		s = wg_offload_csum_add(wg_offload_csum_add(0, buf + off, split), buf + off + split, n - split);
		CHECK(module_csum_be(wg_offload_csum_fold(s)) == naive_fold(naive_sum(buf + off, n, 0)));
	}
	/* All ones everywhere: the largest carries. */
	memset(buf, 0xff, sizeof(buf));
	CHECK(module_csum_be(wg_offload_csum_fold(wg_offload_csum_add(0, buf, 200))) == 0xffff);
	CHECK(module_csum_be(wg_offload_csum_fold(wg_offload_csum_add(~0ull, buf, 65536))) ==
	      naive_fold(naive_sum(buf, 65536, 0)));
	CHECK(wg_offload_csum_fold(wg_offload_csum_add(0, buf, 0)) == 0);
}

/* --- splitting */

struct split_case {
	const struct flow *f;
	size_t plen;
	uint16_t gso;
	uint8_t flags;
	bool ts;
};

static void check_tcp_split(const struct split_case *c)
{
	static uint8_t pkt[70000], seg[70000];
	struct tcp_spec t = { .seq = 0xfffff000u, .ack = 77, .flags = c->flags, .ipid = 0xfffe, .ts = c->ts,
			      .tsval = 99 };
	size_t len = make_tcp(pkt, c->f, &t, payload_src, c->plen);
	size_t l4 = l4_of(pkt), hl = l4 + (c->ts ? 32 : 20);
	struct wg_vnet_hdr h = gso_hdr(pkt, c->f->v6 ? WG_VNET_GSO_TCPV6 : WG_VNET_GSO_TCPV4, c->gso);
	struct wg_offload_gso g;
	size_t covered = 0;

	make_partial(pkt, len, IPPROTO_TCP);
	CHECK(wg_offload_gso_parse(&g, &h, pkt, len));
	CHECK(g.count == (c->plen + c->gso - 1) / c->gso);
	CHECK(g.hdr_len == hl && g.l4_off == l4);
	for (unsigned i = 0; i < g.count; i++) {
		size_t n = wg_offload_gso_segment(&g, i, seg);
		size_t want = c->plen - covered < c->gso ? c->plen - covered : c->gso;
		bool last = i + 1 == g.count;
		uint8_t fl = seg[l4 + 13];

		CHECK(n == hl + want);
		if (c->f->v6) {
			CHECK(be16(seg + 4) == n - 40);
			CHECK_MEM_EQ(seg, pkt, 4);      /* traffic class and flow label kept */
		} else {
			CHECK(be16(seg + 2) == n);
			CHECK(be16(seg + 4) == (uint16_t)(0xfffe + i));   /* wraps */
			CHECK(ip4_csum_ok(seg));
		}
		CHECK(be32(seg + l4 + 4) == 0xfffff000u + (uint32_t)(i * c->gso));  /* wraps too */
		CHECK(l4_csum_ok(seg, n, IPPROTO_TCP));
		CHECK((fl & ACK) == (c->flags & ACK));
		CHECK((fl & (FIN | PSH)) == (last ? (c->flags & (FIN | PSH)) : 0));
		CHECK((fl & CWR) == (i == 0 ? (c->flags & CWR) : 0));
		CHECK_MEM_EQ(seg + l4 + 20, pkt + l4 + 20, hl - l4 - 20);   /* options */
		CHECK_MEM_EQ(seg + hl, payload_src + covered, want);
		covered += want;
	}
	CHECK(covered == c->plen);
}

static void test_split_tcp(void)
{
	static const struct split_case cases[] = {
		{ &flow4, 5000, 1448, ACK | PSH | FIN, true },   /* 3 full + 1 short */
		{ &flow4, 4344, 1448, ACK | PSH, true },         /* exact multiple */
		{ &flow4, 1000, 1448, ACK | PSH, false },        /* a single segment */
		{ &flow4, 65535 - 40, 1460, ACK, false },        /* the largest IPv4 super-packet */
		{ &flow4, 3000, 1, ACK, false },                 /* tiny MSS: 3000 segments */
		{ &flow4, 5000, 1448, ACK | CWR | PSH, false },  /* CWR on the first only */
		{ &flow6, 5000, 1428, ACK | PSH | FIN, true },
		{ &flow6, 65535 - 20, 1440, ACK, false },        /* IPv6 payload length 65535 */
		{ &flow6, 777, 100, ACK | PSH, false },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_tcp_split(&cases[i]);
}

static void check_udp_split(const struct flow *f, size_t plen, uint16_t gso)
{
	static uint8_t pkt[70000], seg[70000];
	size_t len = make_udp(pkt, f, payload_src, plen), l4 = l4_of(pkt), covered = 0;
	struct wg_vnet_hdr h = gso_hdr(pkt, WG_VNET_GSO_UDP_L4, gso);
	struct wg_offload_gso g;

	make_partial(pkt, len, IPPROTO_UDP);
	CHECK(wg_offload_gso_parse(&g, &h, pkt, len));
	CHECK(g.count == (plen + gso - 1) / gso);
	for (unsigned i = 0; i < g.count; i++) {
		size_t want = plen - covered < gso ? plen - covered : gso;
		size_t n = wg_offload_gso_segment(&g, i, seg);

		CHECK(n == l4 + 8 + want);
		CHECK(be16(seg + l4 + 4) == 8 + want);
		CHECK(be16(seg + l4 + 6) != 0);
		CHECK(l4_csum_ok(seg, n, IPPROTO_UDP));
		if (!f->v6) {
			CHECK(be16(seg + 2) == n && ip4_csum_ok(seg));
			CHECK(be16(seg + 4) == 7 + i);
		} else {
			CHECK(be16(seg + 4) == n - 40);
		}
		CHECK_MEM_EQ(seg + l4 + 8, payload_src + covered, want);
		covered += want;
	}
	CHECK(covered == plen);
}

static void test_split_udp(void)
{
	check_udp_split(&flow4, 10000, 1200);
	check_udp_split(&flow6, 10000, 1200);
	check_udp_split(&flow4, 1200, 1200);
}

/* Without NEEDS_CSUM (e.g. DATA_VALID from a forwarded packet) the csum fields are not looked at, and
 * the segments still get full checksums. */
static void test_split_without_needs_csum(void)
{
	static uint8_t pkt[10000], seg[2000];
	struct tcp_spec t = { .seq = 1, .flags = ACK };
	size_t len = make_tcp(pkt, &flow4, &t, payload_src, 3000);
	struct wg_vnet_hdr h = { .flags = WG_VNET_F_DATA_VALID, .gso_type = WG_VNET_GSO_TCPV4, .hdr_len = 1500,
				 .gso_size = 1000 };
	struct wg_offload_gso g;

	CHECK(wg_offload_gso_parse(&g, &h, pkt, len));
	CHECK(g.hdr_len == 40);   /* from the packet, not the kernel's hdr_len */
	for (unsigned i = 0; i < g.count; i++) {
		size_t n = wg_offload_gso_segment(&g, i, seg);

		CHECK(n == 1040 && l4_csum_ok(seg, n, IPPROTO_TCP) && ip4_csum_ok(seg));
	}
}

/* --- NEEDS_CSUM on a single packet */

static void test_csum_complete(void)
{
	uint8_t pkt[2000];
	struct tcp_spec t = { .seq = 5, .flags = ACK | PSH };
	size_t len = make_tcp(pkt, &flow6, &t, payload_src, 999), l4 = 40;

	make_partial(pkt, len, IPPROTO_TCP);
	CHECK(!l4_csum_ok(pkt, len, IPPROTO_TCP));
	CHECK(wg_offload_csum_complete(pkt, len, (uint16_t)l4, 16));
	CHECK(l4_csum_ok(pkt, len, IPPROTO_TCP));

	len = make_udp(pkt, &flow4, payload_src, 333);
	make_partial(pkt, len, IPPROTO_UDP);
	CHECK(wg_offload_csum_complete(pkt, len, 20, 6));
	CHECK(l4_csum_ok(pkt, len, IPPROTO_UDP));
}

/* A UDP checksum that computes to 0 is sent as 0xffff (0 would mean "no checksum"). */
static void test_csum_complete_zero_becomes_ffff(void)
{
	uint8_t pkt[200];
	size_t len = make_udp(pkt, &flow4, payload_src, 64);
	uint32_t rest;

	/* Choose two payload bytes so that the whole sum is 0xffff, i.e. the checksum would be 0. */
	wbe16(pkt + 28, 0);
	make_partial(pkt, len, IPPROTO_UDP);
	rest = naive_fold(naive_sum(pkt + 20, len - 20, 0));
	wbe16(pkt + 28, 0xffff - rest);
	CHECK(naive_fold(naive_sum(pkt + 20, len - 20, 0)) == 0xffff);
	CHECK(wg_offload_csum_complete(pkt, len, 20, 6));
	CHECK(be16(pkt + 26) == 0xffff);
	CHECK(l4_csum_ok(pkt, len, IPPROTO_UDP));
}

static void test_csum_complete_rejects_bad_offsets(void)
{
	uint8_t pkt[100], copy[100];

	rnd_fill(pkt, sizeof(pkt));
	memcpy(copy, pkt, sizeof(pkt));
	CHECK(!wg_offload_csum_complete(pkt, 100, 100, 0));     /* start at the end */
	CHECK(!wg_offload_csum_complete(pkt, 100, 500, 6));     /* start beyond */
	CHECK(!wg_offload_csum_complete(pkt, 100, 90, 9));      /* field straddles the end */
	CHECK(!wg_offload_csum_complete(pkt, 100, 20, 65535));  /* offset beyond */
	CHECK(!wg_offload_csum_complete(pkt, 0, 0, 0));
	CHECK_MEM_EQ(pkt, copy, sizeof(pkt));
	CHECK(wg_offload_csum_complete(pkt, 100, 90, 8));       /* the last two bytes: fits */
}

/* --- hostile input */

/* Every packet in these tests is heap-allocated at its exact size, so ASan sees any overread. */
static bool parse_exact(const struct wg_vnet_hdr *h, const uint8_t *src, size_t len)
{
	uint8_t *p = malloc(len ? len : 1);
	struct wg_offload_gso g;
	bool ok;

	memcpy(p, src, len);
	ok = wg_offload_gso_parse(&g, h, p, len);
	free(p);
	return ok;
}

static void test_hostile_headers_rejected(void)
{
	static uint8_t pkt[4000], v6pkt[4000];
	struct tcp_spec t = { .seq = 1, .flags = ACK, .ts = true };
	size_t len = make_tcp(pkt, &flow4, &t, payload_src, 3000);
	size_t len6 = make_tcp(v6pkt, &flow6, &t, payload_src, 3000);
	struct wg_vnet_hdr ok = gso_hdr(pkt, WG_VNET_GSO_TCPV4, 1448), h;
	uint8_t save;

	CHECK(parse_exact(&ok, pkt, len));
	h = ok; h.gso_size = 0;                 CHECK(!parse_exact(&h, pkt, len));
	h = ok; h.hdr_len = (uint16_t)len + 1;  CHECK(!parse_exact(&h, pkt, len));
	h = ok; h.csum_start = 5000;            CHECK(!parse_exact(&h, pkt, len));
	h = ok; h.csum_start = 24;              CHECK(!parse_exact(&h, pkt, len));
	h = ok; h.csum_offset = 6;              CHECK(!parse_exact(&h, pkt, len));
	h = ok; h.csum_offset = 60000;          CHECK(!parse_exact(&h, pkt, len));
	h = ok; h.gso_type = WG_VNET_GSO_TCPV6; CHECK(!parse_exact(&h, pkt, len));   /* IPv4 packet */
	h = ok; h.gso_type = WG_VNET_GSO_UDP;   CHECK(!parse_exact(&h, pkt, len));   /* UFO */
	h = ok; h.gso_type = WG_VNET_GSO_UDP_L4; CHECK(!parse_exact(&h, pkt, len));  /* TCP packet */
	for (unsigned type = 6; type < 256; type++) {
		if (type == (WG_VNET_GSO_ECN | WG_VNET_GSO_TCPV4))
			continue;
		h = ok; h.gso_type = (uint8_t)type;
		CHECK(!parse_exact(&h, pkt, len));
	}
	/* Truncated anywhere: the IP length no longer matches, or headers are cut. */
	for (size_t n = 0; n < len; n += n < 80 ? 1 : 97)
		CHECK(!parse_exact(&ok, pkt, n));
	/* IP header damage. */
	save = pkt[0]; pkt[0] = 0x44;  CHECK(!parse_exact(&ok, pkt, len)); pkt[0] = save;   /* ihl 4 */
	pkt[0] = 0x4f; CHECK(!parse_exact(&ok, pkt, 40)); pkt[0] = save;                     /* ihl beyond */
	save = pkt[6]; pkt[6] |= 0x20; CHECK(!parse_exact(&ok, pkt, len)); pkt[6] = save;    /* MF */
	save = pkt[7]; pkt[7] = 1;     CHECK(!parse_exact(&ok, pkt, len)); pkt[7] = save;    /* offset */
	save = pkt[9]; pkt[9] = 17;    CHECK(!parse_exact(&ok, pkt, len)); pkt[9] = save;    /* not TCP */
	save = pkt[3]; pkt[3]++;       CHECK(!parse_exact(&ok, pkt, len)); pkt[3] = save;    /* tot_len */
	/* TCP data offset below 5, or beyond the packet. */
	save = pkt[32]; pkt[32] = 0x40; CHECK(!parse_exact(&ok, pkt, len)); pkt[32] = save;
	{
		uint8_t small[100];
		size_t slen = make_tcp(small, &flow4, &t, payload_src, 10);

		h = gso_hdr(small, WG_VNET_GSO_TCPV4, 4);
		CHECK(parse_exact(&h, small, slen));
		small[32] = 0xf0;    /* 60 bytes of TCP header in a 62-byte packet */
		CHECK(!parse_exact(&h, small, slen));
	}
	/* Headers only, no payload. */
	wbe16(pkt + 2, 52); CHECK(!parse_exact(&ok, pkt, 52)); wbe16(pkt + 2, (unsigned)len);
	CHECK(parse_exact(&ok, pkt, len));
	/* IPv6: an extension header, a wrong payload length, TCPV4 on IPv6. */
	h = gso_hdr(v6pkt, WG_VNET_GSO_TCPV6, 1448);
	CHECK(parse_exact(&h, v6pkt, len6));
	save = v6pkt[6]; v6pkt[6] = 0; CHECK(!parse_exact(&h, v6pkt, len6)); v6pkt[6] = save;
	save = v6pkt[5]; v6pkt[5]++;   CHECK(!parse_exact(&h, v6pkt, len6)); v6pkt[5] = save;
	h.gso_type = WG_VNET_GSO_TCPV4; CHECK(!parse_exact(&h, v6pkt, len6));
	/* A segment that would not fit in a 64 KiB buffer: one-segment IPv6 super-packet of 65575 bytes. */
	{
		static uint8_t big[70000];
		size_t blen = make_tcp(big, &flow6, &t, payload_src, 65535 - 32);

		h = gso_hdr(big, WG_VNET_GSO_TCPV6, 65535);
		CHECK(blen == 65575 && !parse_exact(&h, big, blen));
		h.gso_size = 1440;
		CHECK(parse_exact(&h, big, blen));
	}
}

/* Random damage to the headers and the vnet header: whatever is accepted must split into segments that
 * stay inside exact-size buffers and carry exactly the payload. */
static void test_hostile_random(void)
{
	static uint8_t base[6000];
	struct tcp_spec t = { .seq = 1, .flags = ACK | PSH, .ts = true };
	size_t blen;

	for (int round = 0; round < 20000; round++) {
		const struct flow *f = round & 1 ? &flow6 : &flow4;
		size_t len;
		struct wg_vnet_hdr h;
		struct wg_offload_gso g;
		uint8_t *p;

		blen = make_tcp(base, f, &t, payload_src, 1 + rnd_below(5000));
		h = gso_hdr(base, f->v6 ? WG_VNET_GSO_TCPV6 : WG_VNET_GSO_TCPV4,
			    (uint16_t)(1 + rnd_below(2000)));
		for (int k = rnd_below(4); k >= 0; k--)
			base[rnd_below(80)] = (uint8_t)rnd();
		if (rnd_below(3) == 0) {
			uint8_t raw[WG_VNET_HDR_LEN];

			rnd_fill(raw, sizeof(raw));
			wg_vnet_hdr_decode(&h, raw);
		}
		len = rnd_below(4) ? blen : rnd_below((unsigned)blen + 1);
		p = malloc(len ? len : 1);
		memcpy(p, base, len);
		if (wg_offload_gso_parse(&g, &h, p, len)) {
			size_t payload = 0;

			CHECK(g.count >= 1 && g.hdr_len < len);
			for (unsigned i = 0; i < g.count && i < 70000; i++) {
				size_t payload_room = len - g.hdr_len < g.gso_size ? len - g.hdr_len : g.gso_size;
				size_t room = g.hdr_len + payload_room;
				uint8_t *seg = malloc(room);
				size_t n = wg_offload_gso_segment(&g, i, seg);

				CHECK(n <= room && n <= WG_OFFLOAD_MAX_PACKET);
				payload += n - g.hdr_len;
				free(seg);
			}
			CHECK(payload == len - g.hdr_len);
		}
		free(p);
	}
}

/* --- GRO */

static size_t flatten(const struct iovec *iov, int n, uint8_t *out)
{
	size_t len = 0;

	for (int i = 0; i < n; i++) {
		memcpy(out + len, iov[i].iov_base, iov[i].iov_len);
		len += iov[i].iov_len;
	}
	return len;
}

struct batch {
	int n;
	struct wg_gro_pkt pkts[WG_GRO_MAX_PKTS];
	uint8_t data[WG_GRO_MAX_PKTS][1600];
};

static void batch_add_tcp(struct batch *b, const struct flow *f, const struct tcp_spec *t, size_t plen,
			  size_t payload_off)
{
	size_t len = make_tcp(b->data[b->n], f, t, payload_src + payload_off, plen);

	b->pkts[b->n] = (struct wg_gro_pkt){ b->data[b->n], len };
	b->n++;
}

/* n segments of mss bytes of one flow, consecutive sequence numbers and IPv4 ids, PSH on the last. */
static void batch_flow(struct batch *b, const struct flow *f, int n, size_t mss, size_t last_len)
{
	for (int i = 0; i < n; i++) {
		size_t plen = i + 1 == n ? last_len : mss;
		struct tcp_spec t = { .seq = 1000 + (uint32_t)(i * mss), .ack = 5, .ipid = (uint16_t)(300 + i),
				      .flags = i + 1 == n ? ACK | PSH : ACK, .ts = true, .tsval = 42 };

		batch_add_tcp(b, f, &t, plen, ((size_t)i * mss) % 60000);
	}
}

/* Splits group k back (through the vnet header it was given) and compares with the original packets. */
static void check_round_trip(const struct wg_offload_gro *g, int k, const struct batch *b)
{
	static uint8_t flat[70000], seg[70000];
	uint8_t hb[WG_GRO_HDR_BUF];
	struct iovec iov[WG_GRO_MAX_IOV];
	const struct wg_gro_group *grp = &g->groups[k];
	int n = wg_offload_gro_iov(g, k, b->pkts, hb, iov);
	size_t len = flatten(iov, n, flat);
	struct wg_vnet_hdr h;
	struct wg_offload_gso gs;
	int m = grp->first;
	bool udp = grp->proto == IPPROTO_UDP;

	CHECK(n <= WG_GRO_MAX_IOV);
	wg_vnet_hdr_decode(&h, flat);
	if (grp->count == 1) {
		CHECK(h.flags == 0 && h.gso_type == WG_VNET_GSO_NONE && h.gso_size == 0);
		CHECK(len == WG_VNET_HDR_LEN + b->pkts[m].len);
		CHECK_MEM_EQ(flat + WG_VNET_HDR_LEN, b->pkts[m].data, b->pkts[m].len);
		return;
	}
	CHECK(h.flags == WG_VNET_F_NEEDS_CSUM);
	CHECK(h.gso_type == (udp ? WG_VNET_GSO_UDP_L4 : grp->v6 ? WG_VNET_GSO_TCPV6 : WG_VNET_GSO_TCPV4));
	CHECK(h.csum_start == l4_of(b->pkts[m].data) && h.csum_offset == (udp ? 6 : 16));
	CHECK(h.gso_size == b->pkts[m].len - h.hdr_len);
	if (!grp->v6)
		CHECK(ip4_csum_ok(flat + WG_VNET_HDR_LEN) &&
		      be16(flat + WG_VNET_HDR_LEN + 2) == len - WG_VNET_HDR_LEN);
	if (udp)
		CHECK(be16(flat + WG_VNET_HDR_LEN + h.csum_start + 4) == len - WG_VNET_HDR_LEN - h.csum_start);
	/* The field holds the pseudo-header sum of the super-packet, as the kernel expects. */
	CHECK(be16(flat + WG_VNET_HDR_LEN + h.csum_start + h.csum_offset) ==
	      naive_fold(naive_pseudo(flat + WG_VNET_HDR_LEN, udp ? IPPROTO_UDP : IPPROTO_TCP,
				      len - WG_VNET_HDR_LEN - h.csum_start)));
	CHECK(wg_offload_gso_parse(&gs, &h, flat + WG_VNET_HDR_LEN, len - WG_VNET_HDR_LEN));
	CHECK(gs.count == grp->count);
	for (unsigned i = 0; i < gs.count && m >= 0; i++, m = g->next[m]) {
		size_t sn = wg_offload_gso_segment(&gs, i, seg);

		CHECK(sn == b->pkts[m].len);
		CHECK_MEM_EQ(seg, b->pkts[m].data, sn);
	}
	CHECK(m == -1);
}

static void test_gro_coalesces_a_flow(void)
{
	static struct batch b;
	static struct wg_offload_gro g;
	const struct flow *flows[] = { &flow4, &flow6 };

	for (int fi = 0; fi < 2; fi++) {
		b.n = 0;
		batch_flow(&b, flows[fi], 10, 1380, 700);
		wg_offload_gro_plan(&g, b.pkts, b.n, true);
		CHECK(g.ngroups == 1);
		CHECK(g.groups[0].count == 10 && g.groups[0].first == 0 && g.groups[0].last == 9);
		CHECK(g.groups[0].gso_size == 1380 && g.groups[0].psh);
		check_round_trip(&g, 0, &b);
	}
}

static int group_of(const struct wg_offload_gro *g, int pkt)
{
	for (int k = 0; k < g->ngroups; k++)
		for (int m = g->groups[k].first; m >= 0; m = g->next[m])
			if (m == pkt)
				return k;
	return -1;
}

/* Plans the batch and returns the group sizes as a string like "3 1 2", checking every packet is in
 * exactly one group and every group round-trips. */
static const char *plan_shape(struct batch *b)
{
	static struct wg_offload_gro g;
	static char shape[512];
	int total = 0, used = 0;

	wg_offload_gro_plan(&g, b->pkts, b->n, true);
	shape[0] = '\0';
	for (int k = 0; k < g.ngroups; k++) {
		used += snprintf(shape + used, sizeof(shape) - (size_t)used, "%s%u", k ? " " : "",
				 g.groups[k].count);
		total += g.groups[k].count;
		check_round_trip(&g, k, b);
	}
	CHECK(total == b->n);
	for (int i = 0; i < b->n; i++)
		CHECK(group_of(&g, i) >= 0);
	return shape;
}

struct refusal {
	const char *what;
	int victim;                    /* index of the packet modified (of 4) */
	void (*modify)(struct tcp_spec *t, const struct flow **f, size_t *plen);
	const char *shape;
};

static void m_gap(struct tcp_spec *t, const struct flow **f, size_t *plen) { t->seq += 1; }
static void m_flow(struct tcp_spec *t, const struct flow **f, size_t *plen) { *f = &flow4b; }
static void m_ack(struct tcp_spec *t, const struct flow **f, size_t *plen) { t->ack++; }
static void m_window(struct tcp_spec *t, const struct flow **f, size_t *plen) { t->window = 999; }
static void m_fin(struct tcp_spec *t, const struct flow **f, size_t *plen) { t->flags |= FIN; }
static void m_syn(struct tcp_spec *t, const struct flow **f, size_t *plen) { t->flags |= SYN; }
static void m_psh(struct tcp_spec *t, const struct flow **f, size_t *plen) { t->flags |= PSH; }
static void m_cwr(struct tcp_spec *t, const struct flow **f, size_t *plen) { t->flags |= CWR; }
static void m_no_df(struct tcp_spec *t, const struct flow **f, size_t *plen) { t->no_df = true; }
static void m_ttl(struct tcp_spec *t, const struct flow **f, size_t *plen) { t->ttl = 3; }
static void m_tos(struct tcp_spec *t, const struct flow **f, size_t *plen) { t->tos = 0x02; }
static void m_tsval(struct tcp_spec *t, const struct flow **f, size_t *plen) { t->tsval++; }
static void m_no_ts(struct tcp_spec *t, const struct flow **f, size_t *plen) { t->ts = false; }
static void m_short(struct tcp_spec *t, const struct flow **f, size_t *plen) { *plen = 100; }
static void m_empty(struct tcp_spec *t, const struct flow **f, size_t *plen) { *plen = 0; }

static void test_gro_refusals(void)
{
	/* Four full-size segments of one flow; packet `victim` is changed. Groups in writing order. */
	static const struct refusal cases[] = {
		{ "sequence gap", 2, m_gap, "2 2" },
		{ "another flow", 1, m_flow, "3 1" },         /* the other flow's packet is a group of one */
		{ "another ack", 2, m_ack, "2 1 1" },   /* and the next one differs from it again */
		{ "another window", 2, m_window, "2 1 1" },
		{ "FIN", 2, m_fin, "2 1 1" },
		{ "SYN", 0, m_syn, "1 3" },
		{ "PSH in the middle ends the group", 1, m_psh, "2 2" },
		{ "CWR", 3, m_cwr, "3 1" },
		{ "IPv4 without DF", 0, m_no_df, "1 3" },
		{ "another TTL / hop limit", 3, m_ttl, "3 1" },
		{ "another TOS / traffic class (ECN CE)", 1, m_tos, "1 1 2" },
		{ "another timestamp", 2, m_tsval, "2 1 1" },
		{ "other options", 2, m_no_ts, "2 1 1" },   /* its seq follows, but headers differ */
		{ "a shorter segment ends the group", 1, m_short, "2 2" },
		{ "an empty ACK ends the group", 2, m_empty, "2 1 1" },
	};

	static const struct flow *bases[] = { &flow4, &flow6 };

	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]) * 2; c++) {
		const struct refusal *r = &cases[c / 2];
		const struct flow *base = bases[c % 2];
		static struct batch b;
		const char *shape;
		uint32_t seq = 1000;
		uint16_t ipid = 10;

		if (base->v6 && r->modify == m_no_df)
			continue;           /* IPv6 has no DF: nothing to refuse */
		b.n = 0;
		for (int i = 0; i < 4; i++) {
			struct tcp_spec t = { .seq = seq, .ack = 5, .ipid = ipid, .flags = ACK, .ts = true };
			const struct flow *f = base;
			size_t plen = 1000;

			if (i == r->victim)
				r->modify(&t, &f, &plen);
			batch_add_tcp(&b, f, &t, plen, 0);
			if (f == base) {
				seq = t.seq + (uint32_t)plen;
				ipid++;
			}
		}
		shape = plan_shape(&b);
		if (strcmp(shape, r->shape)) {
			fprintf(stderr, "  %s (IPv%d): groups \"%s\", expected \"%s\"\n", r->what,
				base->v6 ? 6 : 4, shape, r->shape);
			CHECK(!"unexpected grouping");
		}
	}
}

static void test_gro_refuses_ip_options_fragments_and_bad_checksums(void)
{
	static struct batch b;
	struct tcp_spec t = { .seq = 1000, .ack = 5, .flags = ACK };
	uint8_t *p;

	/* IPv4 options (ihl 6) on the second packet: rebuilt by hand with a correct header checksum. */
	b.n = 0;
	batch_flow(&b, &flow4, 3, 1000, 1000);
	p = b.data[1];
	memmove(p + 24, p + 20, b.pkts[1].len - 20);
	p[0] = 0x46;
	memset(p + 20, 1, 4);       /* NOP options */
	b.pkts[1].len += 4;
	wbe16(p + 2, (unsigned)b.pkts[1].len);
	wbe16(p + 10, 0);
	wbe16(p + 10, (uint16_t)~naive_fold(naive_sum(p, 24, 0)));
	CHECK(strcmp(plan_shape(&b), "1 1 1") == 0);

	/* MF set (a first fragment) on the first packet. */
	b.n = 0;
	batch_flow(&b, &flow4, 3, 1000, 1000);
	p = b.data[0];
	p[6] |= 0x20;
	wbe16(p + 10, 0);
	wbe16(p + 10, (uint16_t)~naive_fold(naive_sum(p, 20, 0)));
	CHECK(strcmp(plan_shape(&b), "1 2") == 0);

	/* A non-first fragment between two segments: no TCP header to read, so it is alone and does not
	 * end the group. */
	b.n = 0;
	batch_flow(&b, &flow4, 2, 1000, 1000);
	memcpy(b.data[2], b.data[1], b.pkts[1].len);
	b.pkts[2] = (struct wg_gro_pkt){ b.data[2], b.pkts[1].len };
	memcpy(b.data[1], b.data[0], b.pkts[0].len);
	p = b.data[1];
	wbe16(p + 6, 0x00b9);
	wbe16(p + 10, 0);
	wbe16(p + 10, (uint16_t)~naive_fold(naive_sum(p, 20, 0)));
	b.n = 3;
	CHECK(strcmp(plan_shape(&b), "2 1") == 0);

	/* A bad TCP checksum: the packet is not laundered into a super-packet. */
	b.n = 0;
	batch_flow(&b, &flow4, 4, 1000, 1000);
	b.data[2][100] ^= 0x40;
	CHECK(strcmp(plan_shape(&b), "2 1 1") == 0);
	/* On the first packet: nothing joins it. */
	b.n = 0;
	batch_flow(&b, &flow6, 4, 1000, 1000);
	b.data[0][100] ^= 0x40;
	CHECK(strcmp(plan_shape(&b), "1 3") == 0);
	/* A bad IPv4 header checksum. */
	b.n = 0;
	batch_flow(&b, &flow4, 3, 1000, 1000);
	b.data[1][10] ^= 1;
	CHECK(strcmp(plan_shape(&b), "1 1 1") == 0);

	/* Non-TCP packets stay alone and do not disturb a TCP flow around them. */
	b.n = 0;
	for (int i = 0; i < 3; i++) {
		if (i == 2) {
			size_t ulen = make_udp(b.data[2], &flow4, payload_src, 500);

			b.pkts[2] = (struct wg_gro_pkt){ b.data[2], ulen };
			b.n++;
		}
		t.seq = 1000 + (uint32_t)i * 1000;
		t.ipid = (uint16_t)(300 + i);
		batch_add_tcp(&b, &flow4, &t, 1000, (size_t)i * 1000);
	}
	CHECK(strcmp(plan_shape(&b), "3 1") == 0);
	/* Garbage of every small length. */
	for (size_t len = 0; len < 80; len++) {
		b.n = 1;
		rnd_fill(b.data[0], len);
		b.pkts[0] = (struct wg_gro_pkt){ b.data[0], len };
		CHECK(strcmp(plan_shape(&b), "1") == 0);
	}
}

static void test_gro_interleaved_flows_and_limits(void)
{
	static struct batch b;
	static struct wg_offload_gro g;

	/* A B A B A B: two groups of three, in the order the flows started. */
	b.n = 0;
	for (int i = 0; i < 6; i++) {
		const struct flow *f = i & 1 ? &flow6 : &flow4;
		struct tcp_spec t = { .seq = 100 + (uint32_t)(i / 2) * 1000, .ack = 1,
				      .ipid = (uint16_t)(i / 2), .flags = ACK };

		batch_add_tcp(&b, f, &t, 1000, (size_t)(i / 2) * 1000);
	}
	CHECK(strcmp(plan_shape(&b), "3 3") == 0);
	wg_offload_gro_plan(&g, b.pkts, b.n, true);
	CHECK(!g.groups[0].v6 && g.groups[1].v6);

	/* 100 segments of 1448: a super-packet holds at most 65535 bytes, so 45 per group. */
	b.n = 0;
	batch_flow(&b, &flow4, 100, 1448, 1448);
	CHECK(strcmp(plan_shape(&b), "45 45 10") == 0);
	/* Small segments: at most WG_GRO_MAX_SEGS per group. */
	b.n = 0;
	batch_flow(&b, &flow6, 128, 100, 100);
	CHECK(strcmp(plan_shape(&b), "64 64") == 0);
}

/* Random batches of several flows with occasional gaps, retransmissions, pure ACKs and reordering:
 * writing the groups in order and splitting them again must give every flow its packets in the order
 * they arrived. */
static void test_gro_random_keeps_flow_order(void)
{
	/* The last one carries UDP datagrams (with DF in some rounds, without in others). */
	static const struct flow *flows[] = { &flow4, &flow4b, &flow6, &flow4u };
	enum { NF = 4 };
	static struct batch b;
	static struct wg_offload_gro g;
	static uint8_t flat[70000], seg[70000];
	int coalesced = 0;

	for (int round = 0; round < 300; round++) {
		uint32_t seq[NF] = { 1, 1, 1, 1 };
		int order[NF][WG_GRO_MAX_PKTS], norder[NF] = { 0 }, seen[NF] = { 0 };

		b.n = 0;
		while (b.n < 20 + (int)rnd_below(100)) {
			int fi = (int)rnd_below(NF);
			/* Consecutive IPv4 ids per flow, as a sender with DF makes them: split gives them
			 * back. */
			struct tcp_spec t = { .seq = seq[fi], .ack = 9, .ipid = (uint16_t)norder[fi],
					      .flags = ACK, .ts = fi != 1 };
			size_t plen = rnd_below(8) ? 1200 : rnd_below(1300);

			if (rnd_below(10) == 0)
				t.seq += 7;                  /* gap */
			if (rnd_below(15) == 0)
				t.flags |= PSH;
			if (fi == 3) {
				t.no_df = round & 1;
				b.pkts[b.n] = (struct wg_gro_pkt){
					b.data[b.n], make_udp_ip(b.data[b.n], flows[fi], &t, payload_src, plen) };
				b.n++;
			} else {
				batch_add_tcp(&b, flows[fi], &t, plen, rnd_below(1000));
			}
			seq[fi] = t.seq + (uint32_t)plen;
			order[fi][norder[fi]++] = b.n - 1;
		}
		wg_offload_gro_plan(&g, b.pkts, b.n, true);
		for (int k = 0; k < g.ngroups; k++) {
			uint8_t hb[WG_GRO_HDR_BUF];
			struct iovec iov[WG_GRO_MAX_IOV];
			size_t len = flatten(iov, wg_offload_gro_iov(&g, k, b.pkts, hb, iov), flat);
			struct wg_vnet_hdr h;
			struct wg_offload_gso gs = { .count = 1 };
			int fi = -1;

			wg_vnet_hdr_decode(&h, flat);
			if (h.gso_type != WG_VNET_GSO_NONE) {
				CHECK(wg_offload_gso_parse(&gs, &h, flat + WG_VNET_HDR_LEN,
							   len - WG_VNET_HDR_LEN));
				coalesced++;
			}
			for (unsigned i = 0; i < gs.count; i++) {
				const uint8_t *s = flat + WG_VNET_HDR_LEN;
				size_t sn = len - WG_VNET_HDR_LEN;

				if (h.gso_type != WG_VNET_GSO_NONE) {
					sn = wg_offload_gso_segment(&gs, i, seg);
					s = seg;
				}
				for (int f = 0; f < NF; f++)
					if (be16(s + l4_of(s)) == flows[f]->sport && v6_of(s) == flows[f]->v6)
						fi = f;
				CHECK(fi >= 0 && seen[fi] < norder[fi]);
				if (fi < 0 || seen[fi] >= norder[fi])
					break;
				/* The next packet of this flow, byte for byte. */
				CHECK(sn == b.pkts[order[fi][seen[fi]]].len);
				CHECK_MEM_EQ(s, b.pkts[order[fi][seen[fi]]].data, sn);
				seen[fi]++;
			}
		}
		for (int f = 0; f < NF; f++)
			CHECK(seen[f] == norder[f]);
	}
	CHECK(coalesced > 300);    /* the property was exercised on real super-packets */
}

/* UDP datagrams of one flow: n of size, then one of last_size; IPv4 ids id0, id0 + 1... */
static void batch_udp(struct batch *b, const struct flow *f, int n, size_t size, size_t last_size, bool df,
		      uint16_t id0)
{
	for (int i = 0; i <= n; i++) {
		struct tcp_spec t = { .ipid = (uint16_t)(id0 + i), .no_df = !df };
		size_t len = make_udp_ip(b->data[b->n], f, &t, payload_src + (size_t)i * 10, i < n ? size : last_size);

		b->pkts[b->n] = (struct wg_gro_pkt){ b->data[b->n], len };
		b->n++;
	}
}

static void test_gro_udp(void)
{
	static struct batch b;
	static struct wg_offload_gro g;

	/* With and without DF, over IPv4 and IPv6: one UDP_L4 super-packet that splits back exactly. */
	b.n = 0;
	batch_udp(&b, &flow4, 9, 1200, 500, false, 500);
	CHECK(strcmp(plan_shape(&b), "10") == 0);
	b.n = 0;
	batch_udp(&b, &flow4, 9, 1200, 1200, true, 500);
	CHECK(strcmp(plan_shape(&b), "10") == 0);
	b.n = 0;
	batch_udp(&b, &flow6, 9, 1200, 500, false, 0);
	CHECK(strcmp(plan_shape(&b), "10") == 0);
	wg_offload_gro_plan(&g, b.pkts, b.n, true);
	CHECK(g.groups[0].proto == IPPROTO_UDP && g.groups[0].gso_size == 1200);

	/* Without USO in the kernel, UDP stays as it is. */
	wg_offload_gro_plan(&g, b.pkts, b.n, false);
	CHECK(g.ngroups == 10);

	/* A larger datagram after a smaller one, or after the group's size, starts a new group. */
	b.n = 0;
	batch_udp(&b, &flow4, 3, 1000, 500, false, 500);
	batch_udp(&b, &flow4, 1, 1000, 1000, false, 504);
	CHECK(strcmp(plan_shape(&b), "4 2") == 0);
	b.n = 0;
	batch_udp(&b, &flow4, 2, 1000, 1001, false, 500);
	CHECK(strcmp(plan_shape(&b), "2 1") == 0);

	/* Another flow in between does not disturb the first. */
	b.n = 0;
	batch_udp(&b, &flow4, 1, 1000, 1000, false, 500);
	batch_udp(&b, &flow4b, 0, 0, 1000, false, 900);
	batch_udp(&b, &flow4, 0, 0, 1000, false, 502);
	CHECK(strcmp(plan_shape(&b), "3 1") == 0);

	/* Without DF, identifiers must be consecutive; with DF they carry no meaning. */
	b.n = 0;
	batch_udp(&b, &flow4, 1, 1000, 1000, false, 500);
	batch_udp(&b, &flow4, 0, 0, 1000, false, 503);
	CHECK(strcmp(plan_shape(&b), "2 1") == 0);
	b.n = 0;
	batch_udp(&b, &flow4, 1, 1000, 1000, true, 500);
	batch_udp(&b, &flow4, 0, 0, 1000, true, 503);
	wg_offload_gro_plan(&g, b.pkts, b.n, true);
	CHECK(g.ngroups == 1 && g.groups[0].count == 3);

	/* DF differing, a zero (absent) IPv4 checksum, a bad checksum, a wrong UDP length. */
	b.n = 0;
	batch_udp(&b, &flow4, 2, 1000, 1000, false, 500);
	batch_udp(&b, &flow4, 0, 0, 1000, true, 503);
	CHECK(strcmp(plan_shape(&b), "3 1") == 0);
	/* "No checksum" (0) even where the data would check with it: nothing is invented for it. */
	b.n = 0;
	batch_udp(&b, &flow4, 3, 1000, 1000, false, 500);
	wbe16(b.data[1] + 28, 0);
	wbe16(b.data[1] + 26, 0);
	wbe16(b.data[1] + 28, 0xffff - naive_fold(naive_sum(b.data[1] + 20, 1008,
							     naive_pseudo(b.data[1], IPPROTO_UDP, 1008))));
	CHECK(l4_csum_ok(b.data[1], b.pkts[1].len, IPPROTO_UDP));
	CHECK(strcmp(plan_shape(&b), "1 1 2") == 0);
	b.n = 0;
	batch_udp(&b, &flow6, 3, 1000, 1000, false, 0);
	b.data[2][300] ^= 1;
	CHECK(strcmp(plan_shape(&b), "2 1 1") == 0);
	b.n = 0;
	batch_udp(&b, &flow4, 3, 1000, 1000, false, 500);
	wbe16(b.data[2] + 24, 1000);     /* UDP length 1000 in a 1008-byte datagram, checksum still valid */
	wbe16(b.data[2] + 26, 0);
	wbe16(b.data[2] + 26, (uint16_t)~naive_fold(naive_sum(b.data[2] + 20, 1008,
							       naive_pseudo(b.data[2], IPPROTO_UDP, 1008))));
	CHECK(l4_csum_ok(b.data[2], b.pkts[2].len, IPPROTO_UDP));
	CHECK(strcmp(plan_shape(&b), "2 1 1") == 0);
}

static void test_vnet_hdr_layout(void)
{
	struct wg_vnet_hdr h = { 1, 4, 0x1234, 0x5678, 0x9abc, 0xdef0 }, back;
	uint8_t b[WG_VNET_HDR_LEN];
	uint16_t v;

	wg_vnet_hdr_encode(b, &h);
	CHECK(b[0] == 1 && b[1] == 4);
	memcpy(&v, b + 2, 2);   /* host order, as the TUN device expects */
	CHECK(v == 0x1234);
	memcpy(&v, b + 8, 2);
	CHECK(v == 0xdef0);
	wg_vnet_hdr_decode(&back, b);
	CHECK(memcmp(&back, &h, sizeof(h)) == 0);
}

int main(void)
{
	const char *seed = getenv("WG_TEST_SEED");

	if (seed)
		rng_state = strtoull(seed, NULL, 0) | 1;
	rnd_fill(payload_src, sizeof(payload_src));
	TEST_RUN(test_vnet_hdr_layout);
	TEST_RUN(test_csum_matches_naive);
	TEST_RUN(test_split_tcp);
	TEST_RUN(test_split_udp);
	TEST_RUN(test_split_without_needs_csum);
	TEST_RUN(test_csum_complete);
	TEST_RUN(test_csum_complete_zero_becomes_ffff);
	TEST_RUN(test_csum_complete_rejects_bad_offsets);
	TEST_RUN(test_hostile_headers_rejected);
	TEST_RUN(test_hostile_random);
	TEST_RUN(test_gro_coalesces_a_flow);
	TEST_RUN(test_gro_refusals);
	TEST_RUN(test_gro_refuses_ip_options_fragments_and_bad_checksums);
	TEST_RUN(test_gro_interleaved_flows_and_limits);
	TEST_RUN(test_gro_random_keeps_flow_order);
	TEST_RUN(test_gro_udp);
	return TEST_SUMMARY();
}
