/* The authoritative answer: queries built byte by byte against a real zone, responses checked byte by
 * byte where the layout is fixed and otherwise through an independent decoder (pointers followed with
 * loop protection, every record consumed exactly, nothing after the last one): header bits, section
 * counts, case echo, rotation, negative answers with the SOA, additional addresses, EDNS, BADVERS,
 * refusals, truncation at every size, and malformed input. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "dns/answer.h"
#include "dns/wire.h"
#include "dns/zone.h"
#include "dns_msg.h"
#include "test.h"

enum { NEG_TTL = 60, NS_TTL = 3600, BIG_N = 100, MID_N = 30 };

/* ---- queries ---- */

/* A query; edns < 0: no OPT, else an OPT with that payload size (and DO when dnssec_ok). */
static void build(struct msg *m, unsigned id, unsigned flags, const char *name, unsigned type, unsigned cls,
		  int edns, bool dnssec_ok)
{
	m->n = 0;
	put16(m, id);
	put16(m, flags);
	put16(m, 1);
	put16(m, 0);
	put16(m, 0);
	put16(m, edns >= 0 ? 1 : 0);
	put_name(m, name);
	put16(m, type);
	put16(m, cls);
	if (edns >= 0) {
		put8(m, 0);
		put16(m, DNS_T_OPT);
		put16(m, (unsigned)edns);
		put16(m, 0);
		put16(m, dnssec_ok ? 0x8000 : 0);
		put16(m, 0);
	}
}

/* ---- an independent decoder ---- */

struct rec {
	int section;                 /* 1 answer, 2 authority, 3 additional */
	char name[300];
	size_t name_off;             /* where the owner name starts */
	uint16_t type, cls, rdlen;
	uint32_t ttl;
	size_t rdata;                /* offset of the RDATA */
	char target[300];            /* NS target, SRV target, SOA mname */
	char rname[300];             /* SOA rname */
	uint32_t soa[5];
	uint16_t srv[3];
};

struct resp {
	uint16_t id, flags, qd, an, ns, ar;
	char qname[300];
	uint16_t qtype, qclass;
	size_t qend;                 /* offset after the question */
	size_t answer_end;           /* offset after the answer section */
	struct rec rr[256];
	size_t nrr;
	int opt;                     /* index of the OPT record in rr, or -1 */
};

/* The name at *off, into text; pointers must point backwards (to a prior occurrence, RFC 1035 4.1.4)
 * and at most 127 are followed, so no input can loop. Advances *off past the name as written. */
static bool dec_name(const uint8_t *b, size_t len, size_t *off, char *text)
{
	size_t o = *off, t = 0, wire = 1, end = 0;
	int hops = 0;

	for (;;) {
		if (o >= len)
			return false;
		uint8_t l = b[o];

		if ((l & 0xC0) == 0xC0) {
			if (o + 1 >= len || ++hops > 127)
				return false;
			size_t to = (size_t)(l & 0x3F) << 8 | b[o + 1];

			if (!end)
				end = o + 2;
			if (to >= o)
				return false;
			o = to;
			continue;
		}
		if (l & 0xC0)
			return false;
		if (l == 0)
			break;
		if (o + 1 + l > len || (wire += 1u + l) > 255)
			return false;
		memcpy(text + t, b + o + 1, l);
		t += l;
		text[t++] = '.';
		o += 1u + l;
	}
	if (t == 0)
		text[t++] = '.';
	text[t] = '\0';
	*off = end ? end : o + 1;
	return true;
}

static uint16_t g16(const uint8_t *b, size_t o) { return (uint16_t)(b[o] << 8 | b[o + 1]); }
static uint32_t g32(const uint8_t *b, size_t o) { return (uint32_t)g16(b, o) << 16 | g16(b, o + 2); }

static bool dec_rdata(const uint8_t *b, size_t end, struct rec *r)
{
	size_t o = r->rdata;

	switch (r->type) {
	case DNS_T_A:
		return r->rdlen == 4;
	case DNS_T_AAAA:
		return r->rdlen == 16;
	case DNS_T_NS:
		return dec_name(b, end, &o, r->target) && o == end;
	case DNS_T_SRV:
		if (r->rdlen < 7)
			return false;
		for (int i = 0; i < 3; i++)
			r->srv[i] = g16(b, o + 2 * (size_t)i);
		o += 6;
		return dec_name(b, end, &o, r->target) && o == end;
	case DNS_T_SOA:
		if (!dec_name(b, end, &o, r->target) || !dec_name(b, end, &o, r->rname) || end - o != 20)
			return false;
		for (int i = 0; i < 5; i++)
			r->soa[i] = g32(b, o + 4 * (size_t)i);
		return true;
	case DNS_T_OPT:
		return true;
	default:
		return false;        /* we never send anything else */
	}
}

static bool dec_rr(const uint8_t *b, size_t len, size_t *off, int section, struct rec *r)
{
	r->section = section;
	r->name_off = *off;
	if (!dec_name(b, len, off, r->name) || len - *off < 10)
		return false;
	r->type = g16(b, *off);
	r->cls = g16(b, *off + 2);
	r->ttl = g32(b, *off + 4);
	r->rdlen = g16(b, *off + 8);
	*off += 10;
	if (len - *off < r->rdlen)
		return false;
	r->rdata = *off;
	*off += r->rdlen;
	return dec_rdata(b, *off, r);
}

static bool decode(const uint8_t *b, size_t len, struct resp *p)
{
	size_t o = DNS_HEADER_LEN;

	memset(p, 0, sizeof(*p));
	p->opt = -1;
	if (len < DNS_HEADER_LEN)
		return false;
	p->id = g16(b, 0);
	p->flags = g16(b, 2);
	p->qd = g16(b, 4);
	p->an = g16(b, 6);
	p->ns = g16(b, 8);
	p->ar = g16(b, 10);
	if (p->qd > 1 || (size_t)p->an + p->ns + p->ar > 256)
		return false;
	if (p->qd) {
		if (!dec_name(b, len, &o, p->qname) || len - o < 4)
			return false;
		p->qtype = g16(b, o);
		p->qclass = g16(b, o + 2);
		o += 4;
	}
	p->qend = o;
	for (unsigned i = 0; i < (unsigned)p->an + p->ns + p->ar; i++) {
		int section = i < p->an ? 1 : i < (unsigned)p->an + p->ns ? 2 : 3;

		if (!dec_rr(b, len, &o, section, &p->rr[i]))
			return false;
		if (p->rr[i].type == DNS_T_OPT) {
			if (section != 3 || p->opt >= 0 || strcmp(p->rr[i].name, ".") != 0 || b[p->rr[i].name_off] != 0)
				return false;
			p->opt = (int)i;
		}
		if (i + 1 == p->an)
			p->answer_end = o;
		p->nrr++;
	}
	if (!p->an)
		p->answer_end = p->qend;
	return o == len;
}

/* ---- the zone ---- */

static const uint8_t NS4[4] = { 10, 200, 0, 1 }, NODE4[4] = { 10, 200, 0, 5 }, DB4[4] = { 10, 200, 0, 7 };
static const uint8_t NS6[16] = { 0xfd, 0, 2, 0, [15] = 1 }, DB6[16] = { 0xfd, 0, 2, 0, [15] = 7 };

static struct dns_zone *zone;

static struct dns_zone *make_zone(void)
{
	struct dns_zone_params p = {
		.apex = "overlay.local", .serial = 2024, .refresh = 3600, .retry = 600, .expire = 86400,
		.negative_ttl = NEG_TTL, .ns_ttl = NS_TTL,
	};
	char err[200];
	struct dns_zone_builder *b = dns_zone_builder_new(&p, err, sizeof(err));
	int rc = 0;

	if (!b) {
		fprintf(stderr, "zone: %s\n", err);
		abort();
	}
	rc |= dns_zone_add_a(b, "ns", NS4, 300, err, sizeof(err));
	rc |= dns_zone_add_aaaa(b, "ns", NS6, 300, err, sizeof(err));
	rc |= dns_zone_add_a(b, "node-0-5", NODE4, 300, err, sizeof(err));
	for (uint8_t i = 0; i < 3; i++) {
		uint8_t a[4] = { 10, 200, 1, (uint8_t)(10 + i) };

		rc |= dns_zone_add_a(b, "web", a, 120, err, sizeof(err));
	}
	rc |= dns_zone_add_a(b, "db", DB4, 300, err, sizeof(err));
	rc |= dns_zone_add_aaaa(b, "db", DB6, 300, err, sizeof(err));
	rc |= dns_zone_add_srv(b, "_http._tcp.web", 10, 5, 80, "node-0-5", 60, err, sizeof(err));
	rc |= dns_zone_add_srv(b, "_http._tcp.web", 20, 5, 8080, "db", 60, err, sizeof(err));
	rc |= dns_zone_add_srv(b, "_http._tcp.web", 30, 0, 443, "ext.example.", 60, err, sizeof(err));
	rc |= dns_zone_add_srv(b, "_http._tcp.web", 40, 0, 81, "NODE-0-5", 60, err, sizeof(err));
	for (unsigned i = 0; i < BIG_N; i++) {
		uint8_t a[4] = { 10, 201, (uint8_t)(i >> 8), (uint8_t)i };

		rc |= dns_zone_add_a(b, "big", a, 30, err, sizeof(err));
		if (i < MID_N)
			rc |= dns_zone_add_a(b, "mid", a, 30, err, sizeof(err));
	}
	if (rc) {
		fprintf(stderr, "zone add: %s\n", err);
		abort();
	}
	return dns_zone_builder_finish(b);
}

/* ---- helpers ---- */

static uint8_t out[DNS_TCP_MAX];

static size_t ask(const struct msg *m, bool tcp, bool forward, uint32_t rotate, struct dns_answer_info *info)
{
	memset(out, 0xCC, sizeof(out));
	return dns_answer(zone, m->b, m->n, tcp, forward, rotate, out, sizeof(out), info);
}

/* Asks and decodes, checking the invariants every reply must hold. */
static size_t ask_decoded(const struct msg *m, bool tcp, uint32_t rotate, struct resp *p,
			  struct dns_answer_info *info)
{
	size_t n = ask(m, tcp, false, rotate, info);

	CHECK(info->verdict == DNS_VERDICT_REPLY);
	CHECK(decode(out, n, p));
	CHECK(p->flags & DNS_FLAG_QR);
	CHECK(!(p->flags & DNS_FLAG_RA));
	CHECK(p->id == g16(m->b, 0));
	return n;
}

static const struct rec *find(const struct resp *p, int section, uint16_t type, size_t nth)
{
	for (size_t i = 0; i < p->nrr; i++)
		if (p->rr[i].section == section && p->rr[i].type == type && nth-- == 0)
			return &p->rr[i];
	return NULL;
}

static size_t count(const struct resp *p, int section, uint16_t type)
{
	size_t n = 0;

	while (find(p, section, type, n))
		n++;
	return n;
}

/* ---- tests ---- */

/* The simplest answer, byte for byte: A for a mixed-case name, no EDNS. */
static void test_a_bytes(void)
{
	struct msg m;
	struct dns_answer_info info;
	uint8_t want[64];
	size_t n, w = 0, qlen;

	build(&m, 0xA1B2, DNS_FLAG_RD, "NoDe-0-5.OVERLAY.Local", DNS_T_A, DNS_CLASS_IN, -1, false);
	qlen = m.n;
	n = ask(&m, false, false, 0, &info);
	want[w++] = 0xA1;
	want[w++] = 0xB2;
	want[w++] = 0x85;             /* QR, opcode 0, AA, RD */
	want[w++] = 0x00;             /* RA 0, Z 0, rcode 0 */
	memcpy(want + w, "\0\1\0\1\0\0\0\0", 8);
	w += 8;
	memcpy(want + w, m.b + 12, qlen - 12);      /* the question exactly as asked */
	w += qlen - 12;
	memcpy(want + w, "\xC0\x0C\0\1\0\1\0\0\1\x2C\0\4\x0A\xC8\0\5", 16);
	w += 16;
	CHECK(info.verdict == DNS_VERDICT_REPLY && info.rcode == 0 && !info.truncated);
	CHECK(n == w);
	CHECK_MEM_EQ(out, want, w);
	CHECK(out[n] == 0xCC);       /* nothing written past the length returned */
}

/* Header bits: RD and CD copied, AD/Z/TC/RA/AA of the query ignored, AA set by us in the zone. */
static void test_header_bits(void)
{
	static const unsigned in_bits[] = {
		0, DNS_FLAG_RD, DNS_FLAG_CD, DNS_FLAG_AD, DNS_FLAG_TC, DNS_FLAG_RA, DNS_FLAG_AA, 0x0040, 0x000F,
		0x03FF & ~0x0300u,
	};
	struct msg m;
	struct resp p;
	struct dns_answer_info info;

	for (size_t i = 0; i < sizeof(in_bits) / sizeof(in_bits[0]); i++) {
		build(&m, (unsigned)i, in_bits[i], "node-0-5.overlay.local", DNS_T_A, DNS_CLASS_IN, -1, false);
		ask_decoded(&m, false, 0, &p, &info);
		unsigned want = DNS_FLAG_QR | DNS_FLAG_AA | (in_bits[i] & (DNS_FLAG_RD | DNS_FLAG_CD));

		CHECK(p.flags == want);
		CHECK(p.qd == 1 && p.an == 1 && p.ns == 0 && p.ar == 0);
	}
}

/* The question is echoed with the client's case (0x20 randomisation survives) and answers are owned by
 * a pointer to it. */
static void test_case_echo(void)
{
	static const char *const names[] = {
		"node-0-5.overlay.local", "NODE-0-5.OVERLAY.LOCAL", "nOdE-0-5.oVeRlAy.LoCaL", "Web.Overlay.local",
	};
	struct msg m;
	struct resp p;
	struct dns_answer_info info;

	for (size_t i = 0; i < 4; i++) {
		build(&m, 1, 0, names[i], DNS_T_A, DNS_CLASS_IN, 1232, false);
		ask_decoded(&m, false, 0, &p, &info);
		CHECK(p.an >= 1 && info.rcode == DNS_RCODE_NOERROR);
		CHECK_MEM_EQ(out + 12, m.b + 12, p.qend - 12);
		char want[64];
		snprintf(want, sizeof(want), "%s.", names[i]);
		CHECK(strcmp(p.qname, want) == 0);
		for (size_t k = 0; k < p.an; k++) {
			CHECK(strcmp(p.rr[k].name, want) == 0);
			CHECK(out[p.rr[k].name_off] == 0xC0 && out[p.rr[k].name_off + 1] == 12);
		}
	}
}

/* Successive answers start at successive records, and every answer holds all of them. */
static void test_rotation(void)
{
	struct msg m;
	struct resp p;
	struct dns_answer_info info;
	unsigned first_seen[3] = { 0 };

	build(&m, 1, 0, "web.overlay.local", DNS_T_A, DNS_CLASS_IN, -1, false);
	for (uint32_t rot = 0; rot < 9; rot++) {
		ask_decoded(&m, false, rot, &p, &info);
		CHECK(p.an == 3);
		unsigned got = 0;

		for (size_t k = 0; k < p.an && k < 3; k++) {
			unsigned last = out[p.rr[k].rdata + 3];

			CHECK(p.rr[k].type == DNS_T_A && p.rr[k].ttl == 120 && out[p.rr[k].rdata + 2] == 1);
			got |= 1u << (last - 10);
			/* In order from the rotation point: 10 + (k + rot) mod 3. */
			CHECK(last == 10 + (k + rot) % 3);
		}
		CHECK(got == 7);
		first_seen[out[p.rr[0].rdata + 3] - 10]++;
	}
	CHECK(first_seen[0] == 3 && first_seen[1] == 3 && first_seen[2] == 3);
	/* A huge rotate value wraps too. */
	ask_decoded(&m, false, 0xFFFFFFFFu, &p, &info);
	CHECK(out[p.rr[0].rdata + 3] == 10 + 0xFFFFFFFFu % 3);
}

static void check_soa(const struct resp *p, const struct rec *soa)
{
	CHECK(soa != NULL);
	if (!soa)
		return;
	CHECK(strcasecmp(soa->name, "overlay.local.") == 0);
	CHECK(soa->ttl == NEG_TTL && soa->cls == DNS_CLASS_IN);
	CHECK(strcasecmp(soa->target, "ns.overlay.local.") == 0);
	CHECK(strcasecmp(soa->rname, "hostmaster.overlay.local.") == 0);
	CHECK(soa->soa[0] == 2024 && soa->soa[1] == 3600 && soa->soa[2] == 600 && soa->soa[3] == 86400);
	CHECK(soa->soa[4] == NEG_TTL);
	/* The owner is a pointer into the question (the apex is its suffix). */
	CHECK((out[soa->name_off] & 0xC0) == 0xC0);
	(void)p;
}

static void test_nxdomain(void)
{
	struct msg m;
	struct resp p;
	struct dns_answer_info info;

	build(&m, 0x1111, DNS_FLAG_RD, "Nope.Overlay.Local", DNS_T_A, DNS_CLASS_IN, -1, false);
	ask_decoded(&m, false, 0, &p, &info);
	CHECK(info.rcode == DNS_RCODE_NXDOMAIN && (p.flags & 0xF) == DNS_RCODE_NXDOMAIN);
	CHECK(p.flags & DNS_FLAG_AA);
	CHECK(p.qd == 1 && p.an == 0 && p.ns == 1 && p.ar == 0);
	check_soa(&p, find(&p, 2, DNS_T_SOA, 0));
	/* Below a name that exists, and deep below the apex. */
	build(&m, 2, 0, "x.node-0-5.overlay.local", DNS_T_AAAA, DNS_CLASS_IN, -1, false);
	ask_decoded(&m, false, 0, &p, &info);
	CHECK(info.rcode == DNS_RCODE_NXDOMAIN && p.ns == 1 && p.an == 0);
}

static void test_nodata(void)
{
	static const struct { const char *name; uint16_t type; } cases[] = {
		{ "node-0-5.overlay.local", DNS_T_AAAA }, { "node-0-5.overlay.local", DNS_T_SRV },
		{ "_tcp.web.overlay.local", DNS_T_A },      /* an empty non-terminal (RFC 8020) */
		{ "overlay.local", DNS_T_A }, { "web.overlay.local", DNS_T_MX }, { "web.overlay.local", 0 },
		{ "web.overlay.local", 64000 },
	};
	struct msg m;
	struct resp p;
	struct dns_answer_info info;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		build(&m, 3, 0, cases[i].name, cases[i].type, DNS_CLASS_IN, 1232, false);
		ask_decoded(&m, false, 0, &p, &info);
		CHECK(info.rcode == DNS_RCODE_NOERROR && (p.flags & 0xF) == 0 && (p.flags & DNS_FLAG_AA));
		CHECK(p.an == 0 && p.ns == 1 && p.ar == 1 && p.opt >= 0);
		check_soa(&p, find(&p, 2, DNS_T_SOA, 0));
		CHECK(p.qtype == cases[i].type);
	}
}

/* NS at the apex: the NS record, and the addresses of its target as additional records. */
static void test_apex_ns_soa(void)
{
	struct msg m;
	struct resp p;
	struct dns_answer_info info;

	build(&m, 4, 0, "OVERLAY.local", DNS_T_NS, DNS_CLASS_IN, -1, false);
	ask_decoded(&m, false, 0, &p, &info);
	CHECK(p.an == 1 && p.ns == 0 && p.ar == 2);
	const struct rec *ns = find(&p, 1, DNS_T_NS, 0);
	CHECK(ns && ns->ttl == NS_TTL && strcasecmp(ns->target, "ns.overlay.local.") == 0);
	const struct rec *a = find(&p, 3, DNS_T_A, 0), *aaaa = find(&p, 3, DNS_T_AAAA, 0);
	CHECK(a && strcasecmp(a->name, "ns.overlay.local.") == 0 && memcmp(out + a->rdata, NS4, 4) == 0);
	CHECK(aaaa && strcasecmp(aaaa->name, "ns.overlay.local.") == 0 && memcmp(out + aaaa->rdata, NS6, 16) == 0);
	/* "ns" is written once, in the NS RDATA (2 + pointer); the additional owners point at it. */
	CHECK(ns && ns->rdlen == 5);
	CHECK(a && ns && out[a->name_off] == 0xC0 && out[a->name_off + 1] == ns->rdata);

	build(&m, 5, 0, "overlay.local", DNS_T_SOA, DNS_CLASS_IN, -1, false);
	ask_decoded(&m, false, 0, &p, &info);
	CHECK(p.an == 1 && p.ns == 0 && p.ar == 0 && info.rcode == 0);
	const struct rec *soa = find(&p, 1, DNS_T_SOA, 0);
	CHECK(soa && soa->ttl == NEG_TTL && soa->soa[0] == 2024);
	/* The SOA's names compress against the question: mname "ns" + pointer, rname "hostmaster" + pointer. */
	CHECK(soa && soa->rdlen == (3 + 2) + (11 + 2) + 20);
}

/* SRV: every record, targets written in full (RFC 2782), addresses of in-zone targets once each. */
static void test_srv(void)
{
	struct msg m;
	struct resp p;
	struct dns_answer_info info;

	build(&m, 6, 0, "_http._tcp.web.overlay.local", DNS_T_SRV, DNS_CLASS_IN, 1232, false);
	ask_decoded(&m, false, 0, &p, &info);
	CHECK(p.an == 4 && p.ns == 0);
	for (size_t k = 0; k < 4; k++) {
		const struct rec *s = find(&p, 1, DNS_T_SRV, k);

		if (!s)
			continue;
		/* No pointer anywhere inside the target. */
		for (size_t o = s->rdata + 6; o < s->rdata + s->rdlen; o += 1u + out[o])
			CHECK((out[o] & 0xC0) == 0);
		if (s->srv[2] == 80)
			CHECK(s->srv[0] == 10 && s->srv[1] == 5 && strcmp(s->target, "node-0-5.overlay.local.") == 0);
		else if (s->srv[2] == 8080)
			CHECK(s->srv[0] == 20 && strcmp(s->target, "db.overlay.local.") == 0);
		else if (s->srv[2] == 443)
			CHECK(s->srv[0] == 30 && strcmp(s->target, "ext.example.") == 0);
		else
			CHECK(s->srv[2] == 81 && strcasecmp(s->target, "node-0-5.overlay.local.") == 0);
	}
	/* node-0-5 (A), db (A and AAAA); nothing for ext.example; node-0-5 not twice; plus the OPT. */
	CHECK(p.ar == 4 && p.opt == (int)p.nrr - 1);
	CHECK(count(&p, 3, DNS_T_A) == 2 && count(&p, 3, DNS_T_AAAA) == 1);
	const struct rec *a0 = find(&p, 3, DNS_T_A, 0), *a1 = find(&p, 3, DNS_T_A, 1);
	CHECK(a0 && a1 && strcasecmp(a0->name, a1->name) != 0);
	for (size_t i = 0; i < p.nrr; i++)
		if (p.rr[i].section == 3 && p.rr[i].type != DNS_T_OPT)
			CHECK(strstr(p.rr[i].name, "ext.example") == NULL);
}

/* ANY: every record of the name; class ANY: answered like IN. */
static void test_any(void)
{
	struct msg m;
	struct resp p;
	struct dns_answer_info info;

	build(&m, 7, 0, "db.overlay.local", DNS_T_ANY, DNS_CLASS_IN, -1, false);
	ask_decoded(&m, false, 0, &p, &info);
	CHECK(p.an == 2 && count(&p, 1, DNS_T_A) == 1 && count(&p, 1, DNS_T_AAAA) == 1);
	build(&m, 8, 0, "db.overlay.local", DNS_T_A, DNS_CLASS_ANY, -1, false);
	ask_decoded(&m, false, 0, &p, &info);
	CHECK(p.an == 1 && p.rr[0].cls == DNS_CLASS_IN && p.qclass == DNS_CLASS_ANY && (p.flags & DNS_FLAG_AA));
	build(&m, 8, 0, "overlay.local", DNS_T_ANY, DNS_CLASS_IN, -1, false);
	ask_decoded(&m, false, 0, &p, &info);
	CHECK(count(&p, 1, DNS_T_SOA) == 1 && count(&p, 1, DNS_T_NS) == 1);
}

/* Outside the zone, other classes and zone transfers: REFUSED with the question, no AA. */
static void test_refused_forward(void)
{
	static const struct { const char *name; uint16_t type, cls; } cases[] = {
		{ "example.com", DNS_T_A, DNS_CLASS_IN }, { "local", DNS_T_A, DNS_CLASS_IN },
		{ "xoverlay.local", DNS_T_A, DNS_CLASS_IN }, { "", DNS_T_NS, DNS_CLASS_IN },
		{ "node-0-5.overlay.local", DNS_T_A, 3 }, { "node-0-5.overlay.local", DNS_T_A, 254 },
		{ "overlay.local", DNS_T_AXFR, DNS_CLASS_IN }, { "overlay.local", DNS_T_IXFR, DNS_CLASS_IN },
	};
	struct msg m;
	struct resp p;
	struct dns_answer_info info;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		for (int edns = -1; edns <= 0; edns++) {
			build(&m, 9, DNS_FLAG_RD, cases[i].name, cases[i].type, cases[i].cls, edns ? -1 : 4096, true);
			ask_decoded(&m, false, 0, &p, &info);
			CHECK(info.rcode == DNS_RCODE_REFUSED && (p.flags & 0xF) == DNS_RCODE_REFUSED);
			CHECK(!(p.flags & DNS_FLAG_AA) && (p.flags & DNS_FLAG_RD));
			CHECK(p.qd == 1 && p.an == 0 && p.ns == 0 && p.ar == (edns ? 0 : 1));
			CHECK_MEM_EQ(out + 12, m.b + 12, p.qend - 12);
		}
		/* With forwarding configured only names outside the zone (class IN, no transfer) go upstream. */
		build(&m, 9, DNS_FLAG_RD, cases[i].name, cases[i].type, cases[i].cls, -1, false);
		size_t n = ask(&m, false, true, 0, &info);
		bool fwd = i < 4;

		CHECK(info.verdict == (fwd ? DNS_VERDICT_FORWARD : DNS_VERDICT_REPLY));
		CHECK(fwd ? n == 0 : n > 12);
	}
	/* In-zone names are answered even when forwarding. */
	build(&m, 9, DNS_FLAG_RD, "web.overlay.local", DNS_T_A, DNS_CLASS_IN, -1, false);
	CHECK(ask(&m, false, true, 0, &info) > 12 && info.verdict == DNS_VERDICT_REPLY && info.rcode == 0);
	/* No zone yet: everything is outside. */
	CHECK(dns_answer(NULL, m.b, m.n, false, false, 0, out, sizeof(out), &info) > 12);
	CHECK(info.verdict == DNS_VERDICT_REPLY && info.rcode == DNS_RCODE_REFUSED);
	CHECK(dns_answer(NULL, m.b, m.n, false, true, 0, out, sizeof(out), &info) == 0);
	CHECK(info.verdict == DNS_VERDICT_FORWARD);
}

/* EDNS: the OPT in the response advertises our size, version 0, DO clear; without OPT none is sent. */
static void test_edns_opt(void)
{
	struct msg m;
	struct resp p;
	struct dns_answer_info info;

	for (int dnssec = 0; dnssec <= 1; dnssec++) {
		build(&m, 10, 0, "node-0-5.overlay.local", DNS_T_A, DNS_CLASS_IN, 4096, dnssec);
		size_t n = ask_decoded(&m, false, 0, &p, &info);

		CHECK(p.an == 1 && p.ar == 1 && p.opt == 1);
		if (p.opt < 0)
			continue;
		const struct rec *o = &p.rr[p.opt];
		CHECK(o->cls == DNS_UDP_OUR_MAX && o->ttl == 0 && o->rdlen == 0);
		CHECK(n == o->name_off + 11 && out[o->name_off] == 0);
	}
}

static void test_badvers(void)
{
	struct msg m;
	struct resp p;
	struct dns_answer_info info;

	build(&m, 11, DNS_FLAG_RD, "Node-0-5.overlay.local", DNS_T_A, DNS_CLASS_IN, 1232, false);
	m.b[m.n - 5] = 1;           /* version 1: the TTL's second byte */
	ask_decoded(&m, false, 0, &p, &info);
	CHECK(info.rcode == DNS_RCODE_BADVERS);
	CHECK((p.flags & 0xF) == 0 && (p.flags & DNS_FLAG_RD));
	CHECK(p.qd == 1 && p.an == 0 && p.ns == 0 && p.ar == 1 && p.opt == 0);
	if (p.opt == 0) {
		CHECK(p.rr[0].ttl >> 24 == 1);            /* extended rcode: 16 >> 4 */
		CHECK((p.rr[0].ttl >> 16 & 0xFF) == 0);   /* the version we speak */
	}
	CHECK(strcmp(p.qname, "Node-0-5.overlay.local.") == 0);
}

/* FORMERR and NOTIMP are header-only with the id, opcode and RD echoed. */
static void test_formerr_notimp(void)
{
	struct msg m;
	struct resp p;
	struct dns_answer_info info;
	size_t n;

	build(&m, 0x3344, DNS_FLAG_RD, "node-0-5.overlay.local", DNS_T_A, DNS_CLASS_IN, -1, false);
	m.b[5] = 2;                                  /* qdcount 2 */
	n = ask_decoded(&m, false, 0, &p, &info);
	CHECK(n == 12 && info.rcode == DNS_RCODE_FORMERR);
	CHECK(p.flags == (DNS_FLAG_QR | DNS_FLAG_RD | DNS_RCODE_FORMERR));
	CHECK(p.qd == 0 && p.an == 0 && p.ns == 0 && p.ar == 0);

	build(&m, 0x3345, DNS_FLAG_RD, "node-0-5.overlay.local", DNS_T_A, DNS_CLASS_IN, 1232, false);
	put8(&m, 0);                                 /* a trailing byte after the OPT */
	n = ask_decoded(&m, false, 0, &p, &info);
	CHECK(n == 12 && info.rcode == DNS_RCODE_FORMERR && p.ar == 0);

	for (unsigned op = 1; op < 16; op++) {
		build(&m, 0x3346, op << 11, "node-0-5.overlay.local", DNS_T_A, DNS_CLASS_IN, -1, false);
		n = ask_decoded(&m, false, 0, &p, &info);
		CHECK(n == 12 && info.rcode == DNS_RCODE_NOTIMP);
		CHECK(p.flags == (DNS_FLAG_QR | op << 11 | DNS_RCODE_NOTIMP));
	}
}

/* Responses and runts are never answered. */
static void test_dropped(void)
{
	struct msg m;
	struct dns_answer_info info;

	build(&m, 12, DNS_FLAG_QR | DNS_FLAG_AA, "node-0-5.overlay.local", DNS_T_A, DNS_CLASS_IN, -1, false);
	memset(out, 0xCC, 16);
	CHECK(dns_answer(zone, m.b, m.n, false, false, 0, out, sizeof(out), &info) == 0);
	CHECK(info.verdict == DNS_VERDICT_DROP && out[0] == 0xCC);
	CHECK(dns_answer(zone, m.b, m.n, true, true, 0, out, sizeof(out), &info) == 0);
	CHECK(info.verdict == DNS_VERDICT_DROP);
	/* Our own answer fed back is dropped (no reflection loops between two servers). */
	build(&m, 13, 0, "web.overlay.local", DNS_T_A, DNS_CLASS_IN, -1, false);
	size_t n = ask(&m, false, false, 0, &info);
	uint8_t copy[512];

	memcpy(copy, out, n);
	CHECK(dns_answer(zone, copy, n, false, false, 0, out, sizeof(out), &info) == 0);
	CHECK(info.verdict == DNS_VERDICT_DROP);
	for (size_t len = 0; len < DNS_HEADER_LEN; len++) {
		CHECK(dns_answer(zone, m.b, len, false, false, 0, out, sizeof(out), &info) == 0);
		CHECK(info.verdict == DNS_VERDICT_DROP);
	}
}

/* Every truncation of valid queries: FORMERR (header only) or DROP below a header, never a crash
 * (the copy is exactly sized, so ASan sees any read past the end). */
static void test_every_truncation(void)
{
	struct msg m;
	struct resp p;
	struct dns_answer_info info;

	for (int v = 0; v < 2; v++) {
		build(&m, 14, DNS_FLAG_RD, "_http._tcp.web.overlay.local", DNS_T_SRV, DNS_CLASS_IN, v ? 1232 : -1, v);
		for (size_t len = 0; len < m.n; len++) {
			uint8_t *q = malloc(len ? len : 1);

			memcpy(q, m.b, len);
			size_t n = dns_answer(zone, q, len, v, false, 0, out, sizeof(out), &info);

			free(q);
			if (len < DNS_HEADER_LEN) {
				CHECK(n == 0 && info.verdict == DNS_VERDICT_DROP);
				continue;
			}
			CHECK(n == 12 && info.verdict == DNS_VERDICT_REPLY && info.rcode == DNS_RCODE_FORMERR);
			CHECK(decode(out, n, &p) && p.id == 14 && (p.flags & 0xF) == DNS_RCODE_FORMERR);
		}
	}
}

/* The size a client allows, computed independently from the RFCs. */
static size_t client_limit(bool tcp, int edns)
{
	if (tcp)
		return 65535;
	if (edns < 0)
		return 512;
	return edns < 512 ? 512 : edns > 1232 ? 1232 : (size_t)edns;
}

/* For many sizes: the response never exceeds the client's limit, TC is set exactly when the answer
 * section (with the OPT) does not fit, and a truncated response keeps the question and the OPT. */
static void test_truncation_sizes(void)
{
	static const char *const names[] = {
		"big.overlay.local", "mid.overlay.local", "_http._tcp.web.overlay.local", "overlay.local",
		"nope.overlay.local",
	};
	static const uint16_t types[] = { DNS_T_A, DNS_T_A, DNS_T_SRV, DNS_T_NS, DNS_T_A };
	struct msg m;
	struct resp full, p;
	struct dns_answer_info info;
	int tc_seen = 0, fit_seen = 0;

	for (size_t i = 0; i < 5; i++) {
		for (int edns = -1; edns <= 1400; edns += (edns < 400 ? 101 : 7)) {
			size_t limit = client_limit(false, edns), n;

			/* The complete answer, over TCP, tells where the answer section ends. */
			build(&m, 15, 0, names[i], types[i], DNS_CLASS_IN, edns, false);
			n = ask_decoded(&m, true, 0, &full, &info);
			CHECK(!info.truncated && n < 65535);
			size_t needed = full.answer_end + (edns >= 0 ? 11 : 0);

			/* The authority SOA of negative answers is part of what must fit (and nothing follows it
			 * but the OPT). */
			if (!full.an && full.ns)
				needed = n;

			n = ask_decoded(&m, false, 0, &p, &info);
			CHECK(n <= limit);
			CHECK(info.truncated == (needed > limit));
			CHECK(((p.flags & DNS_FLAG_TC) != 0) == info.truncated);
			CHECK(p.qd == 1 && p.ar >= (edns >= 0 ? 1 : 0) && (edns < 0 || p.opt >= 0));
			if (info.truncated) {
				tc_seen++;
				CHECK(p.an == 0 && p.ns == 0 && n == p.qend + (edns >= 0 ? 11 : 0));
			} else {
				fit_seen++;
				CHECK(p.an == full.an && p.ns == full.ns);
			}
			/* A smaller output buffer is a limit too. */
			memset(out, 0xCC, n + 1);
			for (size_t cap = 12; cap < n; cap += 37) {
				size_t k = dns_answer(zone, m.b, m.n, false, false, 0, out, cap, &info);

				CHECK(k <= cap && info.verdict == DNS_VERDICT_REPLY);
				CHECK(out[cap] == 0xCC || cap >= sizeof(out));
				CHECK(decode(out, k, &p));
				memset(out, 0xCC, cap + 1);
			}
		}
	}
	CHECK(tc_seen > 10 && fit_seen > 10);
	/* 100 A records (1600 bytes of answers) need TCP; over TCP everything is there. */
	build(&m, 16, 0, "big.overlay.local", DNS_T_A, DNS_CLASS_IN, 65535, false);
	ask_decoded(&m, true, 0, &p, &info);
	CHECK(p.an == BIG_N && !info.truncated);
	ask_decoded(&m, false, 0, &p, &info);
	CHECK(p.an == 0 && info.truncated);
	/* 30 (480 bytes of answers) fit 1232 but not 512. */
	build(&m, 17, 0, "mid.overlay.local", DNS_T_A, DNS_CLASS_IN, -1, false);
	ask_decoded(&m, false, 0, &p, &info);
	CHECK(p.an == 0 && info.truncated);
	build(&m, 17, 0, "mid.overlay.local", DNS_T_A, DNS_CLASS_IN, 1232, false);
	ask_decoded(&m, false, 0, &p, &info);
	CHECK(p.an == MID_N && !info.truncated);
}

/* Additional records are left out when they do not fit, without TC: SRV answers near the limit. */
static void test_additional_dropped(void)
{
	struct msg m;
	struct resp full, p;
	struct dns_answer_info info;
	bool partial_seen = false;

	build(&m, 18, 0, "_http._tcp.web.overlay.local", DNS_T_SRV, DNS_CLASS_IN, 1232, false);
	static uint8_t full_bytes[2048];
	size_t fn = ask_decoded(&m, true, 0, &full, &info);

	memcpy(full_bytes, out, fn);
	for (size_t cap = full.answer_end + 11; cap <= full.answer_end + 200; cap++) {
		size_t n = dns_answer(zone, m.b, m.n, false, false, 0, out, cap, &info);

		CHECK(n <= cap && decode(out, n, &p));
		CHECK(!info.truncated && p.an == full.an && p.opt >= 0);
		CHECK(p.ar <= full.ar);
		if (p.ar > 1 && p.ar < full.ar)
			partial_seen = true;
		/* What is there is the start of the complete additional section, in the same order. */
		for (size_t i = 0; i + 1 < p.ar; i++) {
			const struct rec *a = &p.rr[p.an + i], *b = &full.rr[full.an + i];

			CHECK(a->type == b->type && strcmp(a->name, b->name) == 0);
			CHECK(a->rdlen == b->rdlen && memcmp(out + a->rdata, b->rdata + full_bytes, a->rdlen) == 0);
		}
	}
	CHECK(partial_seen);
}

/* Random bytes and random mutations of real queries: replies never exceed the limit and always
 * decode with QR set. */
static void test_random(void)
{
	struct msg base[3], m;
	struct resp p;
	struct dns_answer_info info;
	uint32_t seed = 99;

	build(&base[0], 1, 0, "_http._tcp.web.overlay.local", DNS_T_SRV, DNS_CLASS_IN, 600, false);
	build(&base[1], 1, 0, "big.overlay.local", DNS_T_A, DNS_CLASS_IN, -1, false);
	build(&base[2], 1, 0, "overlay.local", DNS_T_ANY, DNS_CLASS_IN, 512, true);
	for (int iter = 0; iter < 60000; iter++) {
		m = base[iter % 3];
		for (int k = 0; k < 2; k++) {
			seed = seed * 1103515245u + 12345u;
			m.b[(seed >> 8) % m.n] = (uint8_t)(seed >> 20);
		}
		m.b[2] &= 0x7F;             /* mostly queries, so the answer paths run */
		bool tcp = iter & 8;
		size_t n = dns_answer(zone, m.b, m.n, tcp, false, (uint32_t)iter, out, sizeof(out), &info);

		if (info.verdict != DNS_VERDICT_REPLY) {
			CHECK(n == 0);
			continue;
		}
		CHECK(n <= (tcp ? 65535u : 1232u));
		CHECK(decode(out, n, &p) && (p.flags & DNS_FLAG_QR));
	}
}

int main(void)
{
	zone = make_zone();
	if (!zone)
		return 1;
	TEST_RUN(test_a_bytes);
	TEST_RUN(test_header_bits);
	TEST_RUN(test_case_echo);
	TEST_RUN(test_rotation);
	TEST_RUN(test_nxdomain);
	TEST_RUN(test_nodata);
	TEST_RUN(test_apex_ns_soa);
	TEST_RUN(test_srv);
	TEST_RUN(test_any);
	TEST_RUN(test_refused_forward);
	TEST_RUN(test_edns_opt);
	TEST_RUN(test_badvers);
	TEST_RUN(test_formerr_notimp);
	TEST_RUN(test_dropped);
	TEST_RUN(test_every_truncation);
	TEST_RUN(test_truncation_sizes);
	TEST_RUN(test_additional_dropped);
	TEST_RUN(test_random);
	dns_zone_unref(zone);
	return TEST_SUMMARY();
}
