/* The authoritative answer: parse, decide, write. Pure and allocation-free; the only state is the
 * writer on the caller's output buffer. The size limit is enforced by the writer's cap, with room for
 * the OPT record held back while the sections are written, so no path can produce more than the limit. */
#include "dns/answer.h"

#include "dns/wire.h"

enum {
	OPT_RR_LEN = 11,             /* root name, type, class, TTL, RDLENGTH 0 */
	ADDITIONAL_TARGETS_MAX = 8,  /* distinct NS/SRV targets whose addresses we add */
};

struct responder {
	struct dns_writer w;
	const struct dns_query *q;
	size_t limit;                /* the most the whole response may take */
	bool opt;                    /* append an OPT record (the query had one) */
	bool aa, tc;
	uint16_t qd, an, ns, ar;
};

/* UDP: 512 without EDNS, else the client's size clamped to [512, DNS_UDP_OUR_MAX]; TCP: 65535. */
static size_t size_limit(const struct dns_query *q, bool tcp, size_t outcap)
{
	size_t limit = DNS_UDP_PLAIN_MAX;

	if (tcp)
		limit = DNS_TCP_MAX;
	else if (q->has_edns && q->edns_udp_size > DNS_UDP_PLAIN_MAX)
		limit = q->edns_udp_size < DNS_UDP_OUR_MAX ? q->edns_udp_size : DNS_UDP_OUR_MAX;
	return limit < outcap ? limit : outcap;
}

/* Writes the header with zero counts (finish fills them in) and holds back room for the OPT record. */
static void begin(struct responder *r, const struct dns_query *q, size_t limit, bool opt, uint8_t *out)
{
	r->q = q;
	r->limit = limit;
	r->opt = opt && limit >= DNS_HEADER_LEN + OPT_RR_LEN;
	r->aa = r->tc = false;
	r->qd = r->an = r->ns = r->ar = 0;
	dns_writer_init(&r->w, out, limit - (r->opt ? OPT_RR_LEN : 0));
	dns_writer_u16(&r->w, q->id);
	dns_writer_u16(&r->w, 0);
	dns_writer_u32(&r->w, 0);
	dns_writer_u32(&r->w, 0);
}

/* The question as the client wrote it (its case echoed); a response with room for less than its
 * question is header-only with TC set (only possible with a tiny outcap). */
static void put_question(struct responder *r)
{
	const struct dns_query *q = r->q;

	if (dns_writer_name(&r->w, &q->qname, true) && dns_writer_u16(&r->w, q->qtype) &&
	    dns_writer_u16(&r->w, q->qclass)) {
		r->qd = 1;
		return;
	}
	r->w.len = DNS_HEADER_LEN;
	r->w.ncomp = 0;
	r->tc = true;
}

/* Flags, counts and the OPT record; returns the response length. RD and CD are copied (RFC 1035
 * 4.1.1, RFC 6840 5.9); RA is never set. The rcode's upper 8 bits go into the OPT (RFC 6891 6.1.3). */
static size_t finish(struct responder *r, uint16_t rcode, struct dns_answer_info *info)
{
	struct dns_writer *w = &r->w;
	uint16_t flags = (uint16_t)(DNS_FLAG_QR | (r->q->opcode & 0xF) << 11 |
				    (r->q->flags & (DNS_FLAG_RD | DNS_FLAG_CD)) | (rcode & 0xF));

	if (r->aa)
		flags |= DNS_FLAG_AA;
	if (r->tc)
		flags |= DNS_FLAG_TC;
	if (r->opt) {
		w->cap = r->limit;
		w->buf[w->len++] = 0;
		dns_writer_u16(w, DNS_T_OPT);
		dns_writer_u16(w, DNS_UDP_OUR_MAX);
		dns_writer_u32(w, (uint32_t)(rcode >> 4) << 24);     /* version 0, DO clear: no DNSSEC */
		dns_writer_u16(w, 0);
		r->ar++;
	}
	dns_writer_set_u16(w, 2, flags);
	dns_writer_set_u16(w, 4, r->qd);
	dns_writer_set_u16(w, 6, r->an);
	dns_writer_set_u16(w, 8, r->ns);
	dns_writer_set_u16(w, 10, r->ar);
	info->verdict = DNS_VERDICT_REPLY;
	info->rcode = rcode;
	info->truncated = r->tc;
	return w->len;
}

/* ---- records ---- */

/* RDATA of the types a zone holds. SRV targets are never compressed (RFC 2782); NS and SOA names may
 * be (RFC 1035 types). */
static bool put_rdata(struct dns_writer *w, const struct dns_rr *rr)
{
	switch (rr->type) {
	case DNS_T_A:
		return dns_writer_bytes(w, rr->u.a, 4);
	case DNS_T_AAAA:
		return dns_writer_bytes(w, rr->u.aaaa, 16);
	case DNS_T_SRV:
		return dns_writer_u16(w, rr->u.srv.priority) && dns_writer_u16(w, rr->u.srv.weight) &&
		       dns_writer_u16(w, rr->u.srv.port) && dns_writer_name(w, &rr->u.srv.target, false);
	case DNS_T_NS:
		return dns_writer_name(w, &rr->u.ns, true);
	case DNS_T_SOA:
		return dns_writer_name(w, &rr->u.soa.mname, true) && dns_writer_name(w, &rr->u.soa.rname, true) &&
		       dns_writer_u32(w, rr->u.soa.serial) && dns_writer_u32(w, rr->u.soa.refresh) &&
		       dns_writer_u32(w, rr->u.soa.retry) && dns_writer_u32(w, rr->u.soa.expire) &&
		       dns_writer_u32(w, rr->u.soa.minimum);
	default:
		return false;        /* the zone holds no other type */
	}
}

/* The owner name: answers are owned by the question's name, which sits right after the header, so
 * they point there without a search; anything else goes through the compression table. */
static bool put_owner(struct dns_writer *w, const struct dns_query *q, const struct dns_name *owner)
{
	if (owner == &q->qname)
		return dns_writer_u16(w, 0xC000 | DNS_HEADER_LEN);
	return dns_writer_name(w, owner, true);
}

/* One whole record or nothing. */
static bool put_rr(struct dns_writer *w, const struct dns_query *q, const struct dns_name *owner,
		   const struct dns_rr *rr, uint32_t ttl)
{
	struct dns_writer_mark m = dns_writer_mark(w);
	size_t rdlen_at;

	if (!put_owner(w, q, owner) || !dns_writer_u16(w, rr->type) ||
	    !dns_writer_u16(w, DNS_CLASS_IN) || !dns_writer_u32(w, ttl) || !dns_writer_u16(w, 0))
		goto fail;
	rdlen_at = w->len - 2;
	if (!put_rdata(w, rr))
		goto fail;
	dns_writer_set_u16(w, rdlen_at, (uint16_t)(w->len - rdlen_at - 2));
	return true;
fail:
	dns_writer_rewind(w, m);
	return false;
}

/* A whole RRset starting at record `rotate` mod n, or nothing; adds to *count. */
static bool put_rrset(struct dns_writer *w, const struct dns_query *q, const struct dns_name *owner,
		      const struct dns_rrset *set, uint32_t rotate, uint16_t *count)
{
	struct dns_writer_mark m = dns_writer_mark(w);
	size_t k = set->n ? rotate % set->n : 0;

	for (size_t i = 0; i < set->n; i++) {
		const struct dns_rr *rr = &set->rr[k];

		if (!put_rr(w, q, owner, rr, rr->ttl)) {
			dns_writer_rewind(w, m);
			return false;
		}
		k = k + 1 == set->n ? 0 : k + 1;
	}
	*count = (uint16_t)(*count + set->n);
	return true;
}

/* The target name an answer record refers to, whose addresses help the client (NS, SRV). */
static const struct dns_name *target_of(const struct dns_rr *rr)
{
	if (rr->type == DNS_T_NS)
		return &rr->u.ns;
	if (rr->type == DNS_T_SRV)
		return &rr->u.srv.target;
	return NULL;
}

/* A and AAAA of every distinct in-zone NS/SRV target in the answer, whole RRsets only, stopping at
 * the first that does not fit: the additional section is optional and never sets TC (RFC 2181 9). */
static void put_additional(struct responder *r, const struct dns_zone *z, const struct dns_rrset *answer,
			   uint32_t rotate)
{
	static const uint16_t types[] = { DNS_T_A, DNS_T_AAAA };
	const struct dns_name *seen[ADDITIONAL_TARGETS_MAX];
	size_t nseen = 0;

	for (size_t i = 0; i < answer->n; i++) {
		const struct dns_name *t = target_of(&answer->rr[i]);
		bool dup = false;

		if (!t)
			continue;
		for (size_t s = 0; s < nseen && !dup; s++)
			dup = dns_name_equal(seen[s], t);
		if (dup)
			continue;
		if (nseen == ADDITIONAL_TARGETS_MAX)
			return;
		seen[nseen++] = t;
		for (size_t k = 0; k < 2; k++) {
			struct dns_rrset set;

			if (dns_zone_lookup(z, t, types[k], &set) == DNS_LOOKUP_FOUND &&
			    !put_rrset(&r->w, r->q, t, &set, rotate, &r->ar))
				return;
		}
	}
}

/* NXDOMAIN and NODATA: the SOA in the authority section with the negative-caching TTL (RFC 2308 3). */
static bool put_negative(struct responder *r, const struct dns_zone *z)
{
	const struct dns_rr *soa = dns_zone_soa(z);
	uint32_t ttl = soa->ttl < soa->u.soa.minimum ? soa->ttl : soa->u.soa.minimum;

	if (!put_rr(&r->w, r->q, dns_zone_apex(z), soa, ttl))
		return false;
	r->ns++;
	return true;
}

/* An authoritative answer from the zone. When the answer (or the SOA of a negative answer) does not
 * fit, everything after the question is dropped and TC set, so the client retries over TCP. */
static uint16_t answer_in_zone(struct responder *r, const struct dns_zone *z, enum dns_lookup l,
			       const struct dns_rrset *set, uint32_t rotate)
{
	struct dns_writer_mark after_question = dns_writer_mark(&r->w);
	bool fit;

	r->aa = true;
	if (l == DNS_LOOKUP_FOUND)
		fit = put_rrset(&r->w, r->q, &r->q->qname, set, rotate, &r->an);
	else
		fit = put_negative(r, z);
	if (!fit) {
		dns_writer_rewind(&r->w, after_question);
		r->an = r->ns = 0;
		r->tc = true;
	} else if (l == DNS_LOOKUP_FOUND) {
		put_additional(r, z, set, rotate);
	}
	return l == DNS_LOOKUP_NXDOMAIN ? DNS_RCODE_NXDOMAIN : DNS_RCODE_NOERROR;
}

static size_t drop(struct dns_answer_info *info)
{
	info->verdict = DNS_VERDICT_DROP;
	info->rcode = 0;
	info->truncated = false;
	return 0;
}

/* FORMERR and NOTIMP: the header alone (the question may be what was malformed). */
static size_t header_only(struct responder *r, const struct dns_query *q, size_t limit, uint8_t *out,
			  uint16_t rcode, struct dns_answer_info *info)
{
	begin(r, q, limit, false, out);
	return finish(r, rcode, info);
}

size_t dns_answer(const struct dns_zone *z, const uint8_t *query, size_t qlen, bool tcp, bool forward,
		  uint32_t rotate, uint8_t *out, size_t outcap, struct dns_answer_info *info)
{
	struct dns_query q;
	struct responder r;
	struct dns_rrset set = { 0 };
	enum dns_parse_result pr = dns_query_parse(query, qlen, &q);
	enum dns_lookup l = DNS_LOOKUP_OUT_OF_ZONE;
	size_t limit;

	if (pr == DNS_PARSE_DROP || outcap < DNS_HEADER_LEN)
		return drop(info);
	limit = size_limit(&q, tcp, outcap);
	if (pr == DNS_PARSE_FORMERR)
		return header_only(&r, &q, limit, out, DNS_RCODE_FORMERR, info);
	if (pr == DNS_PARSE_NOTIMP)
		return header_only(&r, &q, limit, out, DNS_RCODE_NOTIMP, info);
	begin(&r, &q, limit, q.has_edns, out);
	put_question(&r);
	if (pr == DNS_PARSE_BADVERS)
		return finish(&r, DNS_RCODE_BADVERS, info);
	/* No zone transfers, and only class IN (ANY asks for every class, of which we hold IN). */
	if ((q.qclass != DNS_CLASS_IN && q.qclass != DNS_CLASS_ANY) || q.qtype == DNS_T_AXFR ||
	    q.qtype == DNS_T_IXFR)
		return finish(&r, DNS_RCODE_REFUSED, info);
	if (z)
		l = dns_zone_lookup(z, &q.qname, q.qtype, &set);
	if (l == DNS_LOOKUP_OUT_OF_ZONE) {
		if (forward) {
			info->verdict = DNS_VERDICT_FORWARD;
			info->rcode = 0;
			info->truncated = false;
			return 0;
		}
		return finish(&r, DNS_RCODE_REFUSED, info);
	}
	if (!r.qd)          /* no room even for the question: TC already set, nothing to add */
		return finish(&r, DNS_RCODE_NOERROR, info);
	return finish(&r, answer_in_zone(&r, z, l, &set, rotate), info);
}
