/* DNS wire format (RFC 1035 section 4, RFC 6891 for OPT): constants, domain names, query parsing and
 * a response writer with name compression. Pure: no I/O, no allocation.
 *
 * Names are kept in uncompressed wire form (length-prefixed labels ending with the root label) exactly
 * as the client sent them, so the question can be echoed with its case (RFC 1034 4.1 / 0x20 clients);
 * comparisons are ASCII case-insensitive (RFC 4343). */
#ifndef DNS_WIRE_H
#define DNS_WIRE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum dns_type {
	DNS_T_A = 1, DNS_T_NS = 2, DNS_T_CNAME = 5, DNS_T_SOA = 6, DNS_T_PTR = 12, DNS_T_MX = 15,
	DNS_T_TXT = 16, DNS_T_AAAA = 28, DNS_T_SRV = 33, DNS_T_OPT = 41, DNS_T_IXFR = 251,
	DNS_T_AXFR = 252, DNS_T_ANY = 255,
};
enum { DNS_CLASS_IN = 1, DNS_CLASS_ANY = 255 };
enum dns_rcode {
	DNS_RCODE_NOERROR = 0, DNS_RCODE_FORMERR = 1, DNS_RCODE_SERVFAIL = 2, DNS_RCODE_NXDOMAIN = 3,
	DNS_RCODE_NOTIMP = 4, DNS_RCODE_REFUSED = 5, DNS_RCODE_BADVERS = 16,
};
enum {
	DNS_HEADER_LEN = 12,
	DNS_NAME_MAX = 255,          /* wire length of a name, root label included */
	DNS_LABEL_MAX = 63,
	DNS_NAME_TEXT_MAX = 1024,    /* text form with \DDD escapes, NUL included */
	DNS_UDP_PLAIN_MAX = 512,     /* a UDP answer without EDNS, and the floor of any EDNS size */
	DNS_UDP_OUR_MAX = 1232,      /* the largest UDP answer we send (and advertise): fits any MTU path */
	DNS_TCP_MAX = 65535,
};

/* Header flag bits (the 16-bit word after the id). */
enum {
	DNS_FLAG_QR = 0x8000, DNS_FLAG_AA = 0x0400, DNS_FLAG_TC = 0x0200, DNS_FLAG_RD = 0x0100,
	DNS_FLAG_RA = 0x0080, DNS_FLAG_AD = 0x0020, DNS_FLAG_CD = 0x0010,
};

/* A name in uncompressed wire form: wire[0..len) = labels, the last one the root (a zero byte). */
struct dns_name {
	uint8_t wire[DNS_NAME_MAX];
	uint8_t len;                 /* 1 (the root) .. 255 */
	uint8_t labels;              /* number of labels, root excluded */
};

/* Text to wire: "a.b.c" or "a.b.c." (both absolute), "." or "" is the root; '\.' and '\DDD' escapes.
 * 0, or -EINVAL (empty label, label over 63, name over 255, bad escape). */
int dns_name_from_text(const char *text, struct dns_name *out);
/* Wire to text with a trailing dot ("." for the root); bytes outside [A-Za-z0-9-_] and '.' inside a
 * label are written as \DDD / '\.'. Returns out. */
const char *dns_name_to_text(const struct dns_name *n, char out[DNS_NAME_TEXT_MAX]);
bool dns_name_equal(const struct dns_name *a, const struct dns_name *b);          /* case-insensitive */
/* True if name is apex or below it (case-insensitive). */
bool dns_name_in_zone(const struct dns_name *name, const struct dns_name *apex);
void dns_name_lower(struct dns_name *n);

/* A parsed query. */
struct dns_query {
	uint16_t id;
	uint16_t flags;              /* the header's flag word as received */
	uint8_t opcode;
	struct dns_name qname;       /* case as received */
	uint16_t qtype, qclass;
	bool has_edns;
	uint16_t edns_udp_size;      /* as the client sent it (0 without EDNS) */
	uint8_t edns_version;
	bool edns_do;
};

enum dns_parse_result {
	DNS_PARSE_OK,
	DNS_PARSE_DROP,              /* shorter than a header, or QR set (a response): never answered */
	DNS_PARSE_FORMERR,           /* answer FORMERR (id and flags in q are valid) */
	DNS_PARSE_NOTIMP,            /* opcode other than QUERY (id, flags, opcode valid) */
	DNS_PARSE_BADVERS,           /* EDNS version above 0 (q fully valid) */
};

/* Parses a received message: exactly one question, no answer or authority records, at most one
 * additional record which must be an OPT with the root name, no compression pointer in the question
 * (nothing earlier can be pointed at), nothing after the last record. Never reads past len. */
enum dns_parse_result dns_query_parse(const uint8_t *msg, size_t len, struct dns_query *q);

/* A response writer: appends to a bounded buffer and compresses names (RFC 1035 4.1.4) against the
 * names (and their suffixes) already written, matching case-insensitively. Every append writes all of
 * its bytes or none and returns false when they would pass cap; dns_writer_rewind to a mark drops a
 * record that did not fit (its compression entries included), so the buffer never ends in a partial
 * record. The table is small and searched linearly: a response holds a handful of distinct names. */
enum { DNS_COMP_MAX = 48 };
struct dns_writer {
	uint8_t *buf;
	size_t cap, len;
	unsigned ncomp;
	uint16_t comp_off[DNS_COMP_MAX];     /* where a written name or a suffix of one starts */
	uint8_t comp_labels[DNS_COMP_MAX];   /* its number of labels, root excluded */
};
struct dns_writer_mark {
	size_t len;
	unsigned ncomp;
};

static inline void dns_writer_init(struct dns_writer *w, uint8_t *buf, size_t cap)
{
	w->buf = buf;
	w->cap = cap;
	w->len = 0;
	w->ncomp = 0;
}

static inline struct dns_writer_mark dns_writer_mark(const struct dns_writer *w)
{
	return (struct dns_writer_mark){ .len = w->len, .ncomp = w->ncomp };
}

static inline void dns_writer_rewind(struct dns_writer *w, struct dns_writer_mark m)
{
	w->len = m.len;
	w->ncomp = m.ncomp;
}

static inline bool dns_writer_u16(struct dns_writer *w, uint16_t v)
{
	if (w->cap - w->len < 2)
		return false;
	w->buf[w->len++] = (uint8_t)(v >> 8);
	w->buf[w->len++] = (uint8_t)v;
	return true;
}

static inline bool dns_writer_u32(struct dns_writer *w, uint32_t v)
{
	return dns_writer_u16(w, (uint16_t)(v >> 16)) && dns_writer_u16(w, (uint16_t)v);
}

/* Overwrites a 16-bit field already written (section counts, RDLENGTH). */
static inline void dns_writer_set_u16(struct dns_writer *w, size_t off, uint16_t v)
{
	w->buf[off] = (uint8_t)(v >> 8);
	w->buf[off + 1] = (uint8_t)v;
}

bool dns_writer_bytes(struct dns_writer *w, const void *p, size_t n);
/* Writes n, pointing at the longest suffix already written when compress is true; with compress false
 * (SRV targets, RFC 2782) the name is written in full but can still be pointed at by later names. */
bool dns_writer_name(struct dns_writer *w, const struct dns_name *n, bool compress);
#endif
