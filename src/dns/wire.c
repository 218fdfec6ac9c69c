/* DNS wire format: names (text <-> wire, case-insensitive comparison), query parsing and the
 * compressing response writer. Everything here runs on untrusted bytes or feeds a packet that leaves
 * the host, so every read and write is checked against its bound before it happens. */
#include "dns/wire.h"

#include <errno.h>
#include <string.h>

/* ASCII-only lower casing (RFC 4343: DNS case folding ignores every byte outside A-Z). Label length
 * bytes are at most 63, below 'A', so folding a whole wire name leaves its structure intact. */
static inline uint8_t fold(uint8_t c)
{
	return (uint8_t)((unsigned)c - 'A' < 26u ? c + ('a' - 'A') : c);
}

static bool bytes_equal_nocase(const uint8_t *a, const uint8_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (a[i] != b[i] && fold(a[i]) != fold(b[i]))
			return false;
	return true;
}

/* Copies a name-sized run (at most 255 bytes). A memcpy whose size the compiler knows to be small
 * becomes `rep movsq`, whose start-up cost dominates at these sizes; word moves are cheaper. */
static inline void copy_short(uint8_t *d, const uint8_t *s, size_t n)
{
	if (n < 8) {
		for (size_t i = 0; i < n; i++)
			d[i] = s[i];
		return;
	}
	for (size_t i = 0; i + 8 <= n; i += 8)
		memcpy(d + i, s + i, 8);
	memcpy(d + n - 8, s + n - 8, 8);     /* the tail, overlapping what is already copied */
}

/* ---- text to wire ---- */

struct text_cursor {
	const char *p;
	struct dns_name *out;
	size_t label_start;          /* index of the current label's length byte */
};

/* Reads one (possibly escaped) character of a label; -EINVAL on a bad escape. */
static int text_char(const char **pp, uint8_t *c)
{
	const char *p = *pp;

	if (*p != '\\') {
		*c = (uint8_t)*p;
		*pp = p + 1;
		return 0;
	}
	p++;
	if (*p >= '0' && *p <= '9') {
		unsigned v = 0;

		for (int i = 0; i < 3; i++, p++) {
			if (*p < '0' || *p > '9')
				return -EINVAL;
			v = v * 10 + (unsigned)(*p - '0');
		}
		if (v > 255)
			return -EINVAL;
		*c = (uint8_t)v;
	} else if (*p == '\0') {
		return -EINVAL;
	} else {
		*c = (uint8_t)*p++;
	}
	*pp = p;
	return 0;
}

/* Closes the current label; an empty one is only allowed as the root. */
static int text_end_label(struct dns_name *n, size_t start)
{
	size_t l = n->len - start - 1;

	if (l == 0 || l > DNS_LABEL_MAX)
		return -EINVAL;
	n->wire[start] = (uint8_t)l;
	n->labels++;
	return 0;
}

int dns_name_from_text(const char *text, struct dns_name *out)
{
	const char *p = text;
	size_t start = 0;
	int ret;

	out->len = 1;
	out->labels = 0;
	if (p[0] == '\0' || (p[0] == '.' && p[1] == '\0')) {
		out->wire[0] = 0;
		return 0;
	}
	for (;;) {
		if (*p == '.' || *p == '\0') {
			if ((ret = text_end_label(out, start)) < 0)
				return ret;
			if (*p == '\0' || *++p == '\0')
				break;
			start = out->len;
			if (out->len >= DNS_NAME_MAX - 1)
				return -EINVAL;
			out->len++;
			continue;
		}
		uint8_t c;

		if ((ret = text_char(&p, &c)) < 0)
			return ret;
		/* Room for this byte and the root label that must still follow. */
		if (out->len >= DNS_NAME_MAX - 1)
			return -EINVAL;
		out->wire[out->len++] = c;
	}
	out->wire[out->len++] = 0;
	return 0;
}

/* ---- wire to text ---- */

static bool plain_char(uint8_t c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
	       c == '_';
}

const char *dns_name_to_text(const struct dns_name *n, char out[DNS_NAME_TEXT_MAX])
{
	size_t o = 0, i = 0;

	if (n->len <= 1) {
		strcpy(out, ".");
		return out;
	}
	/* At most 4 text bytes per wire byte: 255 * 4 + NUL < DNS_NAME_TEXT_MAX. */
	while (i < n->len && n->wire[i] != 0) {
		size_t l = n->wire[i++];

		for (size_t k = 0; k < l && i < n->len; k++, i++) {
			uint8_t c = n->wire[i];

			if (plain_char(c)) {
				out[o++] = (char)c;
			} else if (c == '.') {
				out[o++] = '\\';
				out[o++] = '.';
			} else {
				out[o++] = '\\';
				out[o++] = (char)('0' + c / 100);
				out[o++] = (char)('0' + c / 10 % 10);
				out[o++] = (char)('0' + c % 10);
			}
		}
		out[o++] = '.';
	}
	out[o] = '\0';
	return out;
}

/* ---- comparisons ---- */

bool dns_name_equal(const struct dns_name *a, const struct dns_name *b)
{
	return a->len == b->len && bytes_equal_nocase(a->wire, b->wire, a->len);
}

bool dns_name_in_zone(const struct dns_name *name, const struct dns_name *apex)
{
	size_t off = 0;

	if (name->labels < apex->labels || name->len < apex->len)
		return false;
	/* Skip the labels in front of the apex so the comparison starts on a label boundary. */
	for (unsigned skip = name->labels - apex->labels; skip; skip--)
		off += 1u + name->wire[off];
	return name->len - off == apex->len && bytes_equal_nocase(name->wire + off, apex->wire, apex->len);
}

void dns_name_lower(struct dns_name *n)
{
	for (size_t i = 0; i < n->len; i++)
		n->wire[i] = fold(n->wire[i]);
}

/* ---- query parsing ---- */

struct reader {
	const uint8_t *p;
	size_t len, pos;
};

static bool rd_u16(struct reader *r, uint16_t *v)
{
	if (r->len - r->pos < 2)
		return false;
	*v = (uint16_t)(r->p[r->pos] << 8 | r->p[r->pos + 1]);
	r->pos += 2;
	return true;
}

static bool rd_u32(struct reader *r, uint32_t *v)
{
	uint16_t hi, lo;

	if (!rd_u16(r, &hi) || !rd_u16(r, &lo))
		return false;
	*v = (uint32_t)hi << 16 | lo;
	return true;
}

/* The question name: plain labels only. A pointer (0xC0) could only point backwards into the header,
 * and the extended label types 0x40/0x80 are obsolete (RFC 6891 5), so both are malformed here. */
static bool rd_qname(struct reader *r, struct dns_name *n)
{
	size_t o = r->pos, end = r->len - r->pos > DNS_NAME_MAX ? r->pos + DNS_NAME_MAX : r->len;
	unsigned labels = 0;

	/* Walk the labels within both the message and the 255-byte bound, then copy once. */
	for (;;) {
		if (o >= end)
			return false;
		uint8_t l = r->p[o];

		if (l & 0xC0)
			return false;
		o += 1u + l;
		if (l == 0)
			break;
		labels++;
	}
	if (o > end)
		return false;
	n->len = (uint8_t)(o - r->pos);
	n->labels = (uint8_t)labels;
	copy_short(n->wire, r->p + r->pos, n->len);
	r->pos = o;
	return true;
}

/* The options of an OPT record must exactly fill its RDATA; their content is ignored (we implement
 * none, and RFC 6891 6.1.2 says unknown options are ignored). */
static bool rd_opt_options(struct reader *r, uint16_t rdlen)
{
	size_t end;

	if (r->len - r->pos < rdlen)
		return false;
	end = r->pos + rdlen;
	while (r->pos < end) {
		size_t olen;

		if (end - r->pos < 4)
			return false;
		olen = (size_t)r->p[r->pos + 2] << 8 | r->p[r->pos + 3];   /* after the option code */
		r->pos += 4;
		if (end - r->pos < olen)
			return false;
		r->pos += olen;
	}
	return true;
}

/* The one additional record allowed: an OPT owned by the root (RFC 6891 6.1.1). */
static bool rd_opt(struct reader *r, struct dns_query *q)
{
	uint16_t type, cls, rdlen;
	uint32_t ttl;

	if (r->pos >= r->len || r->p[r->pos] != 0)
		return false;
	r->pos++;
	if (!rd_u16(r, &type) || !rd_u16(r, &cls) || !rd_u32(r, &ttl) || !rd_u16(r, &rdlen))
		return false;
	if (type != DNS_T_OPT)
		return false;
	q->has_edns = true;
	q->edns_udp_size = cls;
	q->edns_version = (uint8_t)(ttl >> 16);
	q->edns_do = (ttl & 0x8000) != 0;
	return rd_opt_options(r, rdlen);
}

enum dns_parse_result dns_query_parse(const uint8_t *msg, size_t len, struct dns_query *q)
{
	struct reader r = { .p = msg, .len = len, .pos = DNS_HEADER_LEN };
	uint16_t qdcount, ancount, nscount, arcount;

	q->has_edns = false;
	q->edns_udp_size = 0;
	q->edns_version = 0;
	q->edns_do = false;
	q->qname.len = 1;
	q->qname.labels = 0;
	q->qname.wire[0] = 0;
	q->qtype = q->qclass = 0;
	if (len < DNS_HEADER_LEN)
		return DNS_PARSE_DROP;
	q->id = (uint16_t)(msg[0] << 8 | msg[1]);
	q->flags = (uint16_t)(msg[2] << 8 | msg[3]);
	q->opcode = (uint8_t)((q->flags >> 11) & 0xF);
	if (q->flags & DNS_FLAG_QR)
		return DNS_PARSE_DROP;
	if (q->opcode != 0)
		return DNS_PARSE_NOTIMP;
	qdcount = (uint16_t)(msg[4] << 8 | msg[5]);
	ancount = (uint16_t)(msg[6] << 8 | msg[7]);
	nscount = (uint16_t)(msg[8] << 8 | msg[9]);
	arcount = (uint16_t)(msg[10] << 8 | msg[11]);
	if (qdcount != 1 || ancount != 0 || nscount != 0 || arcount > 1)
		return DNS_PARSE_FORMERR;
	if (!rd_qname(&r, &q->qname) || !rd_u16(&r, &q->qtype) || !rd_u16(&r, &q->qclass))
		return DNS_PARSE_FORMERR;
	if (arcount == 1 && !rd_opt(&r, q))
		return DNS_PARSE_FORMERR;
	if (r.pos != len)
		return DNS_PARSE_FORMERR;
	if (q->has_edns && q->edns_version > 0)
		return DNS_PARSE_BADVERS;
	return DNS_PARSE_OK;
}

/* ---- response writer ---- */

bool dns_writer_bytes(struct dns_writer *w, const void *p, size_t n)
{
	if (w->cap - w->len < n)
		return false;
	memcpy(w->buf + w->len, p, n);
	w->len += n;
	return true;
}

/* Does the name written at off (following our own pointers, only ever backwards) spell the labels of
 * s? Both have the same number of labels (the table says so), so matching every label is equality. */
static bool suffix_at(const struct dns_writer *w, size_t off, const uint8_t *s, unsigned labels)
{
	const uint8_t *b = w->buf;

	for (; labels; labels--) {
		while ((b[off] & 0xC0) == 0xC0) {
			size_t to = (size_t)(b[off] & 0x3F) << 8 | b[off + 1];

			if (to >= off)
				return false;
			off = to;
		}
		if (b[off] != s[0] || !bytes_equal_nocase(b + off + 1, s + 1, s[0]))
			return false;
		off += 1u + b[off];
		s += 1u + s[0];
	}
	return true;
}

static int comp_find(const struct dns_writer *w, const uint8_t *s, unsigned labels)
{
	for (unsigned e = 0; e < w->ncomp; e++)
		if (w->comp_labels[e] == labels && suffix_at(w, w->comp_off[e], s, labels))
			return (int)e;
	return -1;
}

/* Remembers the suffixes of a name whose first `labels` labels were just written at off. */
static void comp_add(struct dns_writer *w, size_t off, const uint8_t *s, unsigned labels, unsigned total)
{
	for (unsigned i = 0; i < labels && w->ncomp < DNS_COMP_MAX; i++) {
		if (off > 0x3FFF)            /* a pointer holds 14 bits */
			return;
		w->comp_off[w->ncomp] = (uint16_t)off;
		w->comp_labels[w->ncomp] = (uint8_t)(total - i);
		w->ncomp++;
		off += 1u + *s;
		s += 1u + *s;
	}
}

bool dns_writer_name(struct dns_writer *w, const struct dns_name *n, bool compress)
{
	const uint8_t *s = n->wire;
	size_t prefix = 0, start = w->len;
	unsigned i = 0;
	int e = -1;

	/* Longest suffix first: the first label position that matches a table entry wins. */
	if (compress && w->ncomp) {
		for (; i < n->labels; i++) {
			if ((e = comp_find(w, s + prefix, n->labels - i)) >= 0)
				break;
			prefix += 1u + s[prefix];
		}
	}
	if (e < 0) {
		prefix = n->len - 1u;
		i = n->labels;
	}
	if (e >= 0) {
		if (w->cap - w->len < prefix + 2)
			return false;
		copy_short(w->buf + w->len, s, prefix);
		w->len += prefix;
		dns_writer_u16(w, (uint16_t)(0xC000 | w->comp_off[e]));
	} else {
		if (w->cap - w->len < n->len)
			return false;
		copy_short(w->buf + w->len, s, n->len);
		w->len += n->len;
	}
	comp_add(w, start, s, i, n->labels);
	return true;
}
