/* DNS wire format: names from and to text, case-insensitive comparison, query parsing of queries built
 * byte by byte (valid ones, RFC examples, every kind of malformation, every truncation) and the
 * compressing writer, checked with an independent decoder that follows pointers. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "dns/wire.h"
#include "dns_msg.h"
#include "test.h"

/* ---- a query builder ---- */


static void put_header(struct msg *m, unsigned id, unsigned flags, unsigned qd, unsigned an, unsigned ns,
		       unsigned ar)
{
	m->n = 0;
	put16(m, id);
	put16(m, flags);
	put16(m, qd);
	put16(m, an);
	put16(m, ns);
	put16(m, ar);
}

static void put_opt(struct msg *m, unsigned size, unsigned version, bool dnssec_ok, unsigned rdlen)
{
	put8(m, 0);
	put16(m, DNS_T_OPT);
	put16(m, size);
	put32(m, (uint32_t)version << 16 | (dnssec_ok ? 0x8000u : 0));
	put16(m, rdlen);
}

/* A plain query for name/type/IN with an optional OPT (size 0 = no OPT). */
static void build_query(struct msg *m, unsigned id, unsigned flags, const char *name, unsigned type,
			unsigned edns_size)
{
	put_header(m, id, flags, 1, 0, 0, edns_size ? 1 : 0);
	put_name(m, name);
	put16(m, type);
	put16(m, DNS_CLASS_IN);
	if (edns_size)
		put_opt(m, edns_size, 0, false, 0);
}

/* Parses from an exactly sized heap copy so ASan sees any read past len. */
static enum dns_parse_result parse_exact(const uint8_t *b, size_t n, struct dns_query *q)
{
	uint8_t *copy = malloc(n ? n : 1);
	enum dns_parse_result r;

	memcpy(copy, b, n);
	r = dns_query_parse(copy, n, q);
	free(copy);
	return r;
}

static enum dns_parse_result parse(const struct msg *m, struct dns_query *q)
{
	return parse_exact(m->b, m->n, q);
}

/* ---- names ---- */

static void test_name_from_text(void)
{
	static const struct {
		const char *text;
		int ret;
		const char *wire;    /* bytes, length given below */
		size_t len;
		unsigned labels;
	} cases[] = {
		{ "", 0, "\0", 1, 0 },
		{ ".", 0, "\0", 1, 0 },
		{ "a", 0, "\1a\0", 3, 1 },
		{ "a.", 0, "\1a\0", 3, 1 },
		{ "Node-0-5.Overlay.LOCAL", 0, "\x08Node-0-5\x07Overlay\x05LOCAL\0", 24, 3 },
		{ "_http._tcp.web.", 0, "\5_http\4_tcp\3web\0", 16, 3 },
		{ "a\\.b.c", 0, "\3a.b\1c\0", 7, 2 },
		{ "\\065\\000x", 0, "\3A\0x\0", 5, 1 },
		{ "\\\\", 0, "\1\\\0", 3, 1 },
		{ "a..b", -EINVAL, NULL, 0, 0 },
		{ ".a", -EINVAL, NULL, 0, 0 },
		{ "..", -EINVAL, NULL, 0, 0 },
		{ "a\\", -EINVAL, NULL, 0, 0 },
		{ "a\\25", -EINVAL, NULL, 0, 0 },
		{ "a\\256", -EINVAL, NULL, 0, 0 },
		{ "a\\2x5", -EINVAL, NULL, 0, 0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct dns_name n;
		int r = dns_name_from_text(cases[i].text, &n);

		CHECK(r == cases[i].ret);
		if (r != 0 || cases[i].ret != 0)
			continue;
		CHECK(n.len == cases[i].len);
		CHECK(n.labels == cases[i].labels);
		CHECK_MEM_EQ(n.wire, cases[i].wire, cases[i].len);
	}
}

static void test_name_limits(void)
{
	char text[400];
	struct dns_name n;

	/* Labels of 63 are fine, 64 is not. */
	memset(text, 'x', 63);
	text[63] = '\0';
	CHECK(dns_name_from_text(text, &n) == 0 && n.len == 65);
	memset(text, 'x', 64);
	text[64] = '\0';
	CHECK(dns_name_from_text(text, &n) == -EINVAL);

	/* 3 x (63+1) + (61+1) + 1 = 255 bytes on the wire is the maximum; one more byte fails. */
	for (int extra = 0; extra <= 1; extra++) {
		size_t o = 0;

		for (int l = 0; l < 3; l++) {
			memset(text + o, 'a' + l, 63);
			o += 63;
			text[o++] = '.';
		}
		memset(text + o, 'z', 61 + (size_t)extra);
		o += 61 + (size_t)extra;
		text[o] = '\0';
		if (extra == 0) {
			CHECK(dns_name_from_text(text, &n) == 0);
			CHECK(n.len == 255 && n.labels == 4 && n.wire[254] == 0);
			strcat(text, ".");
			CHECK(dns_name_from_text(text, &n) == 0 && n.len == 255);
		} else {
			CHECK(dns_name_from_text(text, &n) == -EINVAL);
		}
	}
	/* Many one-byte labels: 127 x 2 + 1 = 255 is fine, 128 labels are not. */
	for (int count = 127; count <= 128; count++) {
		size_t o = 0;

		for (int l = 0; l < count; l++) {
			text[o++] = 'q';
			text[o++] = '.';
		}
		text[o] = '\0';
		CHECK(dns_name_from_text(text, &n) == (count == 127 ? 0 : -EINVAL));
	}
}

static void test_name_to_text(void)
{
	static const char *const round[] = {
		".", "a.", "Node-0-5.Overlay.LOCAL.", "_http._tcp.web.", "a\\.b.c.", "\\000\\255x\\032y.",
		"\\092.", "x\\034\\059.",
	};
	char text[DNS_NAME_TEXT_MAX];
	struct dns_name n, back;

	for (size_t i = 0; i < sizeof(round) / sizeof(round[0]); i++) {
		CHECK(dns_name_from_text(round[i], &n) == 0);
		CHECK(strcmp(dns_name_to_text(&n, text), round[i]) == 0);
		CHECK(dns_name_from_text(text, &back) == 0 && back.len == n.len && memcmp(back.wire, n.wire, n.len) == 0);
	}
	/* Every byte value survives the round trip (the text form is unambiguous). */
	for (unsigned c = 0; c < 256; c++) {
		n.wire[0] = 2;
		n.wire[1] = (uint8_t)c;
		n.wire[2] = 'k';
		n.wire[3] = 0;
		n.len = 4;
		n.labels = 1;
		dns_name_to_text(&n, text);
		CHECK(dns_name_from_text(text, &back) == 0 && back.len == 4 && memcmp(back.wire, n.wire, 4) == 0);
	}
	/* The worst case (every byte escaped) fits the text buffer. */
	memset(n.wire, 0, sizeof(n.wire));
	for (int l = 0; l < 4; l++)
		n.wire[l * 64] = l < 3 ? 63 : 61;
	n.len = 255;
	n.labels = 4;
	dns_name_to_text(&n, text);
	CHECK(strlen(text) == 250 * 4 + 4);    /* 250 label bytes as \000 and 4 dots */
	CHECK(dns_name_from_text(text, &back) == 0 && back.len == 255 && memcmp(back.wire, n.wire, 255) == 0);
}

static void test_name_compare(void)
{
	struct dns_name a, b, apex, c;

	dns_name_from_text("Node-0-5.OVERLAY.local", &a);
	dns_name_from_text("node-0-5.overlay.LOCAL.", &b);
	dns_name_from_text("overlay.local", &apex);
	CHECK(dns_name_equal(&a, &b));
	CHECK(dns_name_in_zone(&a, &apex));
	CHECK(dns_name_in_zone(&apex, &apex));
	dns_name_from_text("node-0-6.overlay.local", &c);
	CHECK(!dns_name_equal(&a, &c));
	/* Case folding is ASCII only: 0xC0 and 0xE0 differ, '@' (0x40) and '`' (0x60) differ. */
	dns_name_from_text("\\192", &a);
	dns_name_from_text("\\224", &b);
	CHECK(!dns_name_equal(&a, &b));
	dns_name_from_text("@", &a);
	dns_name_from_text("`", &b);
	CHECK(!dns_name_equal(&a, &b));
	dns_name_from_text("[", &a);
	dns_name_from_text("{", &b);
	CHECK(!dns_name_equal(&a, &b));
	/* Suffix on a label boundary only: "xoverlay.local" is not in overlay.local. */
	dns_name_from_text("xoverlay.local", &c);
	CHECK(!dns_name_in_zone(&c, &apex));
	dns_name_from_text("local", &c);
	CHECK(!dns_name_in_zone(&c, &apex));
	/* A label that contains the apex's bytes: "\007overlay\005local" inside one label. */
	dns_name_from_text("a\\007overlay\\005local", &c);
	CHECK(!dns_name_in_zone(&c, &apex));
	dns_name_from_text("a.b.other.local", &c);
	CHECK(!dns_name_in_zone(&c, &apex));
	dns_name_from_text(".", &c);
	CHECK(dns_name_in_zone(&apex, &c));      /* everything is below the root */
	CHECK(!dns_name_in_zone(&c, &apex));
	dns_name_from_text("Web.Overlay.Local", &c);
	dns_name_lower(&c);
	CHECK(memcmp(c.wire, "\3web\7overlay\5local\0", 19) == 0);
}

/* ---- query parsing ---- */

static void test_parse_plain(void)
{
	struct msg m;
	struct dns_query q;

	build_query(&m, 0xBEEF, DNS_FLAG_RD | DNS_FLAG_CD, "Node-0-5.Overlay.local", DNS_T_AAAA, 0);
	CHECK(parse(&m, &q) == DNS_PARSE_OK);
	CHECK(q.id == 0xBEEF);
	CHECK(q.flags == (DNS_FLAG_RD | DNS_FLAG_CD));
	CHECK(q.opcode == 0);
	CHECK(q.qtype == DNS_T_AAAA && q.qclass == DNS_CLASS_IN);
	CHECK(q.qname.len == 24 && q.qname.labels == 3);
	CHECK(memcmp(q.qname.wire, "\x08Node-0-5\x07Overlay\x05local\0", 24) == 0);
	CHECK(!q.has_edns && q.edns_udp_size == 0 && !q.edns_do);

	/* The root as the question name. */
	build_query(&m, 1, 0, "", DNS_T_NS, 0);
	CHECK(parse(&m, &q) == DNS_PARSE_OK && q.qname.len == 1 && q.qname.labels == 0);
}

/* RFC 1035 4.1.1 layout written out as the octets a stub resolver sends: id 0x1234, RD, one question
 * for "www.example.com" A IN (the message dig sends with +noedns). */
static void test_parse_rfc_example(void)
{
	static const uint8_t pkt[] = {
		0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x03, 'w', 'w', 'w', 0x07, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 0x03, 'c', 'o', 'm', 0x00,
		0x00, 0x01, 0x00, 0x01,
	};
	/* The same with the OPT record of RFC 6891 6.1.2: payload 4096, DO set, a COOKIE option (10). */
	static const uint8_t pkt_edns[] = {
		0x12, 0x35, 0x01, 0x20, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
		0x03, 'w', 'w', 'w', 0x07, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 0x03, 'c', 'o', 'm', 0x00,
		0x00, 0x1c, 0x00, 0x01,
		0x00, 0x00, 0x29, 0x10, 0x00, 0x00, 0x00, 0x80, 0x00, 0x00, 0x0c,
		0x00, 0x0a, 0x00, 0x08, 1, 2, 3, 4, 5, 6, 7, 8,
	};
	struct dns_query q;

	CHECK(parse_exact(pkt, sizeof(pkt), &q) == DNS_PARSE_OK);
	CHECK(q.id == 0x1234 && q.flags == DNS_FLAG_RD && q.qtype == DNS_T_A && q.qname.labels == 3);
	CHECK(parse_exact(pkt_edns, sizeof(pkt_edns), &q) == DNS_PARSE_OK);
	CHECK(q.id == 0x1235 && q.flags == (DNS_FLAG_RD | DNS_FLAG_AD) && q.qtype == DNS_T_AAAA);
	CHECK(q.has_edns && q.edns_udp_size == 4096 && q.edns_version == 0 && q.edns_do);
}

static void test_parse_header_bits(void)
{
	struct msg m;
	struct dns_query q;

	/* Every flag bit other than QR and the opcode is carried through as received. */
	for (unsigned bit = 0; bit < 16; bit++) {
		unsigned flags = 1u << bit;

		build_query(&m, 7, flags, "a.b", DNS_T_A, 0);
		enum dns_parse_result r = parse(&m, &q);

		if (flags == DNS_FLAG_QR) {
			CHECK(r == DNS_PARSE_DROP);
		} else if (flags & 0x7800) {
			CHECK(r == DNS_PARSE_NOTIMP && q.opcode == (flags >> 11) && q.id == 7);
		} else {
			CHECK(r == DNS_PARSE_OK && q.flags == flags);
		}
	}
	/* Every opcode other than QUERY (IQUERY, STATUS, NOTIFY, UPDATE, unassigned) is NOTIMP. */
	for (unsigned op = 1; op < 16; op++) {
		build_query(&m, 9, op << 11 | DNS_FLAG_RD, "a.b", DNS_T_A, 0);
		CHECK(parse(&m, &q) == DNS_PARSE_NOTIMP && q.opcode == op && q.flags == (op << 11 | DNS_FLAG_RD));
	}
	/* A response is dropped whatever follows, even garbage. */
	put_header(&m, 3, DNS_FLAG_QR | DNS_FLAG_AA, 9, 9, 9, 9);
	CHECK(parse(&m, &q) == DNS_PARSE_DROP);
	for (size_t n = 0; n < DNS_HEADER_LEN; n++)
		CHECK(parse_exact(m.b, n, &q) == DNS_PARSE_DROP);
}

static void test_parse_counts(void)
{
	static const unsigned counts[][4] = {
		{ 0, 0, 0, 0 }, { 2, 0, 0, 0 }, { 1, 1, 0, 0 }, { 1, 0, 1, 0 }, { 1, 0, 0, 2 }, { 65535, 0, 0, 0 },
	};
	struct msg m;
	struct dns_query q;

	for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
		/* The body is a valid question followed by a valid OPT: only the counts are wrong. */
		put_header(&m, 0x4242, DNS_FLAG_RD, counts[i][0], counts[i][1], counts[i][2], counts[i][3]);
		put_name(&m, "a.b");
		put16(&m, DNS_T_A);
		put16(&m, DNS_CLASS_IN);
		put_opt(&m, 1232, 0, false, 0);
		CHECK(parse(&m, &q) == DNS_PARSE_FORMERR);
		CHECK(q.id == 0x4242 && q.flags == DNS_FLAG_RD && q.opcode == 0);
	}
}

static void test_parse_names(void)
{
	struct msg m;
	struct dns_query q;

	/* A pointer to the start of the question itself (offset 12): no pointers in the question. */
	put_header(&m, 1, 0, 1, 0, 0, 0);
	put8(&m, 0xC0);
	put8(&m, 12);
	put16(&m, DNS_T_A);
	put16(&m, DNS_CLASS_IN);
	CHECK(parse(&m, &q) == DNS_PARSE_FORMERR);
	/* A label then a pointer. */
	put_header(&m, 1, 0, 1, 0, 0, 0);
	put8(&m, 1);
	put8(&m, 'a');
	put8(&m, 0xC0);
	put8(&m, 12);
	put16(&m, DNS_T_A);
	put16(&m, DNS_CLASS_IN);
	CHECK(parse(&m, &q) == DNS_PARSE_FORMERR);
	/* Extended label types 0x40 and 0x80, followed by as many bytes as their value would claim. */
	for (unsigned t = 0x40; t <= 0x80; t += 0x40) {
		put_header(&m, 1, 0, 1, 0, 0, 0);
		put8(&m, t | 1);
		memset(m.b + m.n, 'a', t | 1);
		m.n += t | 1;
		put8(&m, 0);
		put16(&m, DNS_T_A);
		put16(&m, DNS_CLASS_IN);
		CHECK(parse(&m, &q) == DNS_PARSE_FORMERR);
	}
	/* 255 wire bytes is the largest name; 256 is malformed (labels of 63 x 3 + 62 / + 63). */
	for (unsigned last = 61; last <= 62; last++) {
		put_header(&m, 1, 0, 1, 0, 0, 0);
		for (int l = 0; l < 4; l++) {
			unsigned ll = l < 3 ? 63 : last;

			put8(&m, ll);
			memset(m.b + m.n, 'x', ll);
			m.n += ll;
		}
		put8(&m, 0);
		put16(&m, DNS_T_A);
		put16(&m, DNS_CLASS_IN);
		enum dns_parse_result r = parse(&m, &q);

		CHECK(r == (last == 61 ? DNS_PARSE_OK : DNS_PARSE_FORMERR));
		if (last == 61)
			CHECK(q.qname.len == 255 && q.qname.labels == 4);
	}
	/* 128 one-byte labels: 257 bytes. */
	put_header(&m, 1, 0, 1, 0, 0, 0);
	for (int l = 0; l < 128; l++) {
		put8(&m, 1);
		put8(&m, 'q');
	}
	put8(&m, 0);
	put16(&m, DNS_T_A);
	put16(&m, DNS_CLASS_IN);
	CHECK(parse(&m, &q) == DNS_PARSE_FORMERR);
	/* A name with any byte value in a label is still a name (RFC 2181 11). */
	put_header(&m, 1, 0, 1, 0, 0, 0);
	put8(&m, 3);
	put8(&m, 0);
	put8(&m, 0xFF);
	put8(&m, '.');
	put8(&m, 0);
	put16(&m, DNS_T_A);
	put16(&m, DNS_CLASS_IN);
	CHECK(parse(&m, &q) == DNS_PARSE_OK && q.qname.len == 5 && q.qname.wire[2] == 0xFF);
}

static void test_parse_edns(void)
{
	struct msg m;
	struct dns_query q;

	/* Payload sizes are reported as sent (the 512 floor is the answerer's business). */
	static const unsigned sizes[] = { 0, 1, 511, 512, 1232, 4096, 65535 };
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		put_header(&m, 5, 0, 1, 0, 0, 1);
		put_name(&m, "x");
		put16(&m, DNS_T_A);
		put16(&m, DNS_CLASS_IN);
		put_opt(&m, sizes[i], 0, i & 1, 0);
		CHECK(parse(&m, &q) == DNS_PARSE_OK);
		CHECK(q.has_edns && q.edns_udp_size == sizes[i] && q.edns_do == (bool)(i & 1) && q.edns_version == 0);
	}
	/* Version 1 and 255: BADVERS with everything parsed. */
	for (unsigned v = 1; v <= 255; v += 254) {
		build_query(&m, 6, DNS_FLAG_RD, "Y.z", DNS_T_AAAA, 0);
		m.b[11] = 1;
		put_opt(&m, 1400, v, true, 0);
		CHECK(parse(&m, &q) == DNS_PARSE_BADVERS);
		CHECK(q.has_edns && q.edns_version == v && q.edns_udp_size == 1400 && q.edns_do);
		CHECK(q.qtype == DNS_T_AAAA && q.qname.len == 5 && memcmp(q.qname.wire, "\1Y\1z\0", 5) == 0);
	}
	/* Extended rcode bits and the Z bits in the TTL field are ignored. */
	build_query(&m, 6, 0, "x", DNS_T_A, 0);
	m.b[11] = 1;
	put8(&m, 0);
	put16(&m, DNS_T_OPT);
	put16(&m, 1232);
	put32(&m, 0xAB007FFFu);
	put16(&m, 0);
	CHECK(parse(&m, &q) == DNS_PARSE_OK && q.has_edns && !q.edns_do);
	/* Options: two well formed, ignored. */
	build_query(&m, 6, 0, "x", DNS_T_A, 0);
	m.b[11] = 1;
	put_opt(&m, 1232, 0, false, 4 + 8 + 4);
	put16(&m, 10);
	put16(&m, 8);
	put32(&m, 1);
	put32(&m, 2);
	put16(&m, 12);
	put16(&m, 0);
	CHECK(parse(&m, &q) == DNS_PARSE_OK);
}

static void test_parse_edns_malformed(void)
{
	struct msg m;
	struct dns_query q;

	/* OPT with a non-root owner name. */
	build_query(&m, 6, 0, "x", DNS_T_A, 0);
	m.b[11] = 1;
	put_name(&m, "x");
	put16(&m, DNS_T_OPT);
	put16(&m, 1232);
	put32(&m, 0);
	put16(&m, 0);
	CHECK(parse(&m, &q) == DNS_PARSE_FORMERR);
	/* OPT owner as a pointer to the root label of the question: still not the root name itself. */
	build_query(&m, 6, 0, "", DNS_T_A, 0);
	m.b[11] = 1;
	put8(&m, 0xC0);
	put8(&m, 12);
	put16(&m, DNS_T_OPT);
	put16(&m, 1232);
	put32(&m, 0);
	put16(&m, 0);
	CHECK(parse(&m, &q) == DNS_PARSE_FORMERR);
	/* An additional record that is not an OPT (a TSIG-like type 250). */
	build_query(&m, 6, 0, "x", DNS_T_A, 0);
	m.b[11] = 1;
	put8(&m, 0);
	put16(&m, 250);
	put16(&m, 255);
	put32(&m, 0);
	put16(&m, 0);
	CHECK(parse(&m, &q) == DNS_PARSE_FORMERR);
	/* Two OPT records. */
	build_query(&m, 6, 0, "x", DNS_T_A, 0);
	m.b[11] = 2;
	put_opt(&m, 1232, 0, false, 0);
	put_opt(&m, 1232, 0, false, 0);
	CHECK(parse(&m, &q) == DNS_PARSE_FORMERR);
	/* RDLENGTH past the end, option length past RDLENGTH, an option header cut short. */
	build_query(&m, 6, 0, "x", DNS_T_A, 0);
	m.b[11] = 1;
	put_opt(&m, 1232, 0, false, 4);
	put16(&m, 10);
	CHECK(parse(&m, &q) == DNS_PARSE_FORMERR);
	build_query(&m, 6, 0, "x", DNS_T_A, 0);
	m.b[11] = 1;
	put_opt(&m, 1232, 0, false, 6);
	put16(&m, 10);
	put16(&m, 4);
	put16(&m, 0);
	put16(&m, 0);      /* after the OPT: a trailing byte pair too */
	CHECK(parse(&m, &q) == DNS_PARSE_FORMERR);
	build_query(&m, 6, 0, "x", DNS_T_A, 0);
	m.b[11] = 1;
	put_opt(&m, 1232, 0, false, 3);
	put16(&m, 10);
	put8(&m, 0);
	CHECK(parse(&m, &q) == DNS_PARSE_FORMERR);
	/* BADVERS is only reported for an otherwise well formed message. */
	build_query(&m, 6, 0, "x", DNS_T_A, 0);
	m.b[11] = 1;
	put_opt(&m, 1232, 1, false, 0);
	put8(&m, 0);
	CHECK(parse(&m, &q) == DNS_PARSE_FORMERR);
}

static void test_parse_trailing(void)
{
	struct msg m;
	struct dns_query q;

	for (unsigned edns = 0; edns <= 1232; edns += 1232) {
		build_query(&m, 6, 0, "abc.def", DNS_T_SRV, edns);
		CHECK(parse(&m, &q) == DNS_PARSE_OK);
		put8(&m, 0);
		CHECK(parse(&m, &q) == DNS_PARSE_FORMERR);
	}
}

/* Every prefix of valid queries is FORMERR (or DROP below a header), and never read past its end. */
static void test_parse_every_truncation(void)
{
	struct msg m;
	struct dns_query q;

	for (int v = 0; v < 3; v++) {
		if (v == 0)
			build_query(&m, 0x77, DNS_FLAG_RD, "_http._tcp.Web.overlay.local", DNS_T_SRV, 0);
		else
			build_query(&m, 0x77, DNS_FLAG_RD, "a.overlay.local", DNS_T_A, 1232);
		if (v == 2) {
			m.b[m.n - 2] = 0;
			m.b[m.n - 1] = 8;
			put16(&m, 8);
			put16(&m, 4);
			put32(&m, 0x01020304);
		}
		CHECK(parse(&m, &q) == DNS_PARSE_OK);
		for (size_t n = 0; n < m.n; n++) {
			enum dns_parse_result r = parse_exact(m.b, n, &q);

			CHECK(r == (n < DNS_HEADER_LEN ? DNS_PARSE_DROP : DNS_PARSE_FORMERR));
		}
	}
}

/* Random mutations of a valid query: the parser returns one of its results and, when it accepts, what
 * it reports is consistent with the bytes. */
static void test_parse_random(void)
{
	struct msg base, m;
	struct dns_query q;
	uint32_t seed = 12345;

	build_query(&base, 0x77, DNS_FLAG_RD, "_http._tcp.Web.overlay.local", DNS_T_SRV, 1232);
	for (int iter = 0; iter < 200000; iter++) {
		m = base;
		for (int k = 0; k < 3; k++) {
			seed = seed * 1103515245u + 12345u;
			size_t at = (seed >> 8) % m.n;
			m.b[at] = (uint8_t)(seed >> 20);
		}
		seed = seed * 1103515245u + 12345u;
		m.n -= (seed >> 16) % 4;
		enum dns_parse_result r = parse(&m, &q);

		CHECK(r <= DNS_PARSE_BADVERS);
		if (r == DNS_PARSE_OK) {
			CHECK(q.qname.len >= 1 && q.qname.wire[q.qname.len - 1] == 0);
			CHECK(q.id == (unsigned)(m.b[0] << 8 | m.b[1]));
			CHECK(!(q.flags & DNS_FLAG_QR) && q.opcode == 0);
		}
	}
}

/* ---- the writer, checked with an independent decoder ---- */

/* Decodes the name at off into text (lower case kept as written), following pointers; at most 64 hops
 * and only backwards pointers, so a loop cannot hang the test. Returns the offset after the name as it
 * appears at off, or 0 on a malformed name. */
static size_t decode_name(const uint8_t *b, size_t len, size_t off, char *text)
{
	size_t end = 0, t = 0, total = 1;
	int hops = 0;

	for (;;) {
		if (off >= len)
			return 0;
		uint8_t l = b[off];

		if ((l & 0xC0) == 0xC0) {
			if (off + 1 >= len || ++hops > 64)
				return 0;
			size_t to = (size_t)(l & 0x3F) << 8 | b[off + 1];

			if (!end)
				end = off + 2;
			if (to >= off)
				return 0;
			off = to;
			continue;
		}
		if (l & 0xC0)
			return 0;
		if (l == 0) {
			if (t == 0)
				text[t++] = '.';
			text[t] = '\0';
			return end ? end : off + 1;
		}
		if (off + 1 + l > len || (total += 1u + l) > 255)
			return 0;
		memcpy(text + t, b + off + 1, l);
		t += l;
		text[t++] = '.';
		off += 1u + l;
	}
}

static void test_writer_compression(void)
{
	uint8_t buf[512];
	struct dns_writer w;
	struct dns_name q, apex, ns, other, srv;
	char text[300];
	size_t at_q, at_apex, at_ns, at_other, at_srv, at_q2;

	dns_writer_init(&w, buf, sizeof(buf));
	memset(buf, 0xEE, sizeof(buf));
	CHECK(dns_writer_bytes(&w, "\0\1\2\3\4\5\6\7\10\11\12\13", 12));
	dns_name_from_text("Web.OVERLAY.local", &q);
	dns_name_from_text("overlay.local", &apex);
	dns_name_from_text("ns.overlay.local", &ns);
	dns_name_from_text("other.example", &other);
	dns_name_from_text("db.overlay.local", &srv);

	at_q = w.len;
	CHECK(dns_writer_name(&w, &q, true) && w.len == at_q + q.len);
	at_apex = w.len;
	CHECK(dns_writer_name(&w, &apex, true) && w.len == at_apex + 2);
	CHECK(buf[at_apex] == 0xC0 && buf[at_apex + 1] == at_q + 4);      /* "OVERLAY.local" of the question */
	at_ns = w.len;
	CHECK(dns_writer_name(&w, &ns, true) && w.len == at_ns + 3 + 2);
	CHECK(buf[at_ns] == 2 && buf[at_ns + 3] == 0xC0 && buf[at_ns + 4] == at_q + 4);
	at_q2 = w.len;
	CHECK(dns_writer_name(&w, &q, true) && w.len == at_q2 + 2 && buf[at_q2 + 1] == at_q);
	at_other = w.len;
	CHECK(dns_writer_name(&w, &other, true) && w.len == at_other + other.len);
	/* Not compressed when asked so, but pointed at afterwards. */
	at_srv = w.len;
	CHECK(dns_writer_name(&w, &srv, false) && w.len == at_srv + srv.len);
	size_t at_srv2 = w.len;
	CHECK(dns_writer_name(&w, &srv, true) && w.len == at_srv2 + 2 && buf[at_srv2 + 1] == at_srv);
	/* The root is one zero byte, never a pointer. */
	struct dns_name root;
	dns_name_from_text(".", &root);
	size_t at_root = w.len;
	CHECK(dns_writer_name(&w, &root, true) && w.len == at_root + 1 && buf[at_root] == 0);

	CHECK(decode_name(buf, w.len, at_q, text) == at_q + q.len && strcmp(text, "Web.OVERLAY.local.") == 0);
	CHECK(decode_name(buf, w.len, at_apex, text) == at_apex + 2 && strcmp(text, "OVERLAY.local.") == 0);
	CHECK(decode_name(buf, w.len, at_ns, text) == at_ns + 5 && strcmp(text, "ns.OVERLAY.local.") == 0);
	CHECK(decode_name(buf, w.len, at_q2, text) && strcmp(text, "Web.OVERLAY.local.") == 0);
	CHECK(decode_name(buf, w.len, at_other, text) && strcmp(text, "other.example.") == 0);
	CHECK(decode_name(buf, w.len, at_srv, text) && strcmp(text, "db.overlay.local.") == 0);
	CHECK(decode_name(buf, w.len, at_srv2, text) && strcmp(text, "db.overlay.local.") == 0);
}

/* Chains of pointers (a name pointing at a name that itself ends in a pointer) decode to the right
 * text, and labels that merely look alike (same bytes, different split) never match. */
static void test_writer_chains(void)
{
	uint8_t buf[1024];
	struct dns_writer w;
	static const char *const names[] = {
		"c.d", "b.c.d", "a.b.c.d", "x.a.b.c.d", "bc.d", "b.cd", "B.C.D", "d", "x.A.B.C.D", "cd",
	};
	size_t at[10];
	char text[300];

	dns_writer_init(&w, buf, sizeof(buf));
	for (size_t i = 0; i < 10; i++) {
		struct dns_name n;

		dns_name_from_text(names[i], &n);
		at[i] = w.len;
		CHECK(dns_writer_name(&w, &n, true));
	}
	/* Sizes: one label plus a pointer for b.c.d, a.b.c.d, x.a.b.c.d and bc.d; b.cd shares no suffix
	 * (the label "cd" is not "c" "d"); the last four are pointers only. */
	CHECK(at[1] == 5 && at[2] - at[1] == 4 && at[3] - at[2] == 4 && at[4] - at[3] == 4);
	CHECK(at[5] - at[4] == 5 && at[6] - at[5] == 6);
	CHECK(at[7] - at[6] == 2 && at[8] - at[7] == 2 && at[9] - at[8] == 2 && w.len - at[9] == 2);
	for (size_t i = 0; i < 10; i++) {
		char want[32];
		struct dns_name n;

		dns_name_from_text(names[i], &n);
		CHECK(decode_name(buf, w.len, at[i], text) != 0);
		snprintf(want, sizeof(want), "%s.", names[i]);
		/* Case-insensitive compression: the matching suffix renders with the first writer's case. */
		CHECK(strcasecmp(text, want) == 0);
	}
}

static void test_writer_bounds(void)
{
	uint8_t buf[64];
	struct dns_writer w;
	struct dns_name a, b;

	dns_name_from_text("abcdefghij.overlay.local", &a);
	dns_name_from_text("x.overlay.local", &b);
	/* For every capacity the writer either writes the whole name or nothing. */
	for (size_t cap = 0; cap < 40; cap++) {
		memset(buf, 0xAA, sizeof(buf));
		dns_writer_init(&w, buf, cap);
		bool ok = dns_writer_name(&w, &a, true);

		CHECK(ok == (cap >= a.len));
		CHECK(w.len == (ok ? a.len : 0));
		CHECK(buf[cap] == 0xAA);
		if (!ok)
			continue;
		struct dns_writer_mark mk = dns_writer_mark(&w);
		bool ok2 = dns_writer_name(&w, &b, true);

		CHECK(ok2 == (cap >= (size_t)a.len + 4));
		CHECK(w.len <= cap);
		dns_writer_rewind(&w, mk);
		CHECK(w.len == a.len && w.ncomp == mk.ncomp);
		CHECK(dns_writer_u16(&w, 1) == (cap >= (size_t)a.len + 2));
		CHECK(w.len <= cap);
	}
	dns_writer_init(&w, buf, 5);
	CHECK(dns_writer_u32(&w, 1) && !dns_writer_u32(&w, 2) && w.len == 4);
	CHECK(!dns_writer_bytes(&w, "ab", 2) && dns_writer_bytes(&w, "a", 1) && w.len == 5);
	/* Beyond offset 0x3FFF nothing can be pointed at: names there are written in full. */
	static uint8_t big[20000];
	dns_writer_init(&w, big, sizeof(big));
	w.len = 0x3FF0;             /* a's labels start at 0x3FF0, 0x3FFB ("overlay"), 0x4003 ("local") */
	CHECK(dns_writer_name(&w, &a, true) && w.len == 0x3FF0u + a.len);
	CHECK(dns_writer_name(&w, &b, true) && w.len == 0x3FF0u + a.len + 4);
	CHECK(big[w.len - 2] == 0xFF && big[w.len - 1] == 0xFB);
	size_t at = w.len;
	CHECK(dns_writer_name(&w, &b, true) && w.len == at + 4);   /* the copy above is past 0x3FFF */
	struct dns_name local;
	dns_name_from_text("LOCAL", &local);
	at = w.len;
	CHECK(dns_writer_name(&w, &local, true) && w.len == at + local.len);
}

int main(void)
{
	TEST_RUN(test_name_from_text);
	TEST_RUN(test_name_limits);
	TEST_RUN(test_name_to_text);
	TEST_RUN(test_name_compare);
	TEST_RUN(test_parse_plain);
	TEST_RUN(test_parse_rfc_example);
	TEST_RUN(test_parse_header_bits);
	TEST_RUN(test_parse_counts);
	TEST_RUN(test_parse_names);
	TEST_RUN(test_parse_edns);
	TEST_RUN(test_parse_edns_malformed);
	TEST_RUN(test_parse_trailing);
	TEST_RUN(test_parse_every_truncation);
	TEST_RUN(test_parse_random);
	TEST_RUN(test_writer_compression);
	TEST_RUN(test_writer_chains);
	TEST_RUN(test_writer_bounds);
	return TEST_SUMMARY();
}
