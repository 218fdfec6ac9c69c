/* The overlay zone (zone.h): a builder that collects records, and the immutable snapshot it turns into.
 *
 * Layout of a finished zone, chosen so that a lookup costs one hash of the query name and, on a hit,
 * one comparison:
 *   slots  open-addressing table (power of two, at most half full) of {hash, name index + 1}
 *   names  one entry per name (names with records, the apex, empty non-terminals)
 *   types  per name, its RRsets in the order their types were first added
 *   rr     every record; a name's records are contiguous and grouped by type, so an RRset and the
 *          "every record" answer to ANY are both plain slices of this array
 *   pool   the names' lower-case wire forms, compared with memcmp
 * The builder keeps its own growable tables (names, and records for de-duplication) and lays the
 * zone out in one pass at finish, without sorting. */
#include "dns/zone.h"
#include "overlay/errmsg.h"
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
	TYPES_MAX = 5,               /* SOA, NS, A, AAAA, SRV: every type a builder can add */
	TABLE_MIN = 16,
	RDATA_MAX = 6 + DNS_NAME_MAX, /* the longest rdata_key: SRV (6 bytes + target) */
	MSG_NAME_MAX = 80,           /* bytes of a bad name quoted in an error message */
};

static const uint32_t FNV_BASIS = 2166136261u, FNV_PRIME = 16777619u;

/* ---- helpers ---- */

/* A user-supplied name made safe to quote in a message (printable ASCII, bounded). */
static const char *quote(const char *s, char out[MSG_NAME_MAX + 4])
{
	size_t i = 0;

	for (; s[i] && i < MSG_NAME_MAX; i++)
		out[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
	strcpy(out + i, s[i] ? "..." : "");
	return out;
}

static inline uint8_t lower(uint8_t c)
{
	/* Label length bytes are at most 63, below 'A', so the whole wire form can be lowered bytewise. */
	return (uint8_t)(c + ((unsigned)(c - 'A') < 26u ? 32 : 0));
}

static uint32_t fnv(uint32_t h, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * FNV_PRIME;
	return h;
}

/* FNV-1a keeps its best mixing in the high bits; fold them into the bits the mask keeps. */
static inline size_t slot_of(uint32_t h, size_t mask)
{
	return (h ^ (h >> 16)) & mask;
}

static size_t table_size(size_t entries)
{
	size_t cap = TABLE_MIN;

	while (cap < 2 * entries)
		cap *= 2;
	return cap;
}

static uint32_t name_hash(const struct dns_name *n)
{
	return fnv(FNV_BASIS, n->wire, n->len);
}

/* True when text ends with a '.' that is not escaped: an absolute name. */
static bool ends_with_dot(const char *text)
{
	size_t n = strlen(text), bs = 0;

	if (n == 0 || text[n - 1] != '.')
		return false;
	while (bs < n - 1 && text[n - 2 - bs] == '\\')
		bs++;
	return bs % 2 == 0;
}

/* ---- the finished zone ---- */

struct zslot {
	uint32_t hash;
	uint32_t name;               /* index + 1; 0 = empty */
};
struct zname {
	uint32_t wire_off;           /* its lower-case wire form: pool[wire_off .. + len) */
	uint32_t first, n;           /* every record of the name: rr[first .. first + n) */
	uint32_t type_first;         /* its RRsets: types[type_first .. + ntypes) */
	uint8_t len, ntypes;
};
struct ztype {
	uint16_t type;
	uint32_t first, n;
};

struct dns_zone {
	atomic_uint refs;
	struct dns_name apex;
	const struct dns_rr *soa;
	size_t n_named, n_rr;        /* names with records; records */
	size_t mask;
	struct zslot *slots;
	struct zname *names;
	struct ztype *types;
	struct dns_rr *rr;
	uint8_t *pool;
};

static void zone_free(struct dns_zone *z)
{
	free(z->slots);
	free(z->names);
	free(z->types);
	free(z->rr);
	free(z->pool);
	free(z);
}

struct dns_zone *dns_zone_ref(struct dns_zone *z)
{
	atomic_fetch_add_explicit(&z->refs, 1, memory_order_relaxed);
	return z;
}

void dns_zone_unref(struct dns_zone *z)
{
	/* acq_rel: every reader's last access happens before the free by whoever drops the last ref. */
	if (z && atomic_fetch_sub_explicit(&z->refs, 1, memory_order_acq_rel) == 1)
		zone_free(z);
}

const struct dns_name *dns_zone_apex(const struct dns_zone *z)
{
	return &z->apex;
}

const struct dns_rr *dns_zone_soa(const struct dns_zone *z)
{
	return z->soa;
}

size_t dns_zone_names(const struct dns_zone *z)
{
	return z->n_named;
}

size_t dns_zone_records(const struct dns_zone *z)
{
	return z->n_rr;
}

static const struct zname *zone_find(const struct dns_zone *z, uint32_t h, const uint8_t *low, size_t len)
{
	for (size_t i = slot_of(h, z->mask);; i = (i + 1) & z->mask) {
		const struct zslot *s = &z->slots[i];
		if (!s->name)
			return NULL;
		if (s->hash == h) {
			const struct zname *nm = &z->names[s->name - 1];
			if (nm->len == len && !memcmp(z->pool + nm->wire_off, low, len))
				return nm;
		}
	}
}

/* low (lower case, len bytes) is the apex or below it: its suffix of the apex's length starts at a
 * label boundary and equals the apex. */
static bool zone_contains(const struct dns_zone *z, const uint8_t *low, size_t len)
{
	size_t pos = 0;

	while (pos < len && len - pos > z->apex.len)
		pos += (size_t)low[pos] + 1;
	return pos <= len && len - pos == z->apex.len && !memcmp(low + pos, z->apex.wire, z->apex.len);
}

enum dns_lookup dns_zone_lookup(const struct dns_zone *z, const struct dns_name *qname, uint16_t qtype,
				struct dns_rrset *out)
{
	uint8_t low[DNS_NAME_MAX];
	uint32_t h = FNV_BASIS;
	const struct zname *nm;

	out->rr = NULL;
	out->n = 0;
	for (size_t i = 0; i < qname->len; i++) {
		low[i] = lower(qname->wire[i]);
		h = (h ^ low[i]) * FNV_PRIME;
	}
	nm = zone_find(z, h, low, qname->len);
	if (!nm)
		return zone_contains(z, low, qname->len) ? DNS_LOOKUP_NXDOMAIN : DNS_LOOKUP_OUT_OF_ZONE;
	if (qtype == DNS_T_ANY) {
		if (!nm->n)
			return DNS_LOOKUP_NODATA;
		out->rr = z->rr + nm->first;
		out->n = nm->n;
		return DNS_LOOKUP_FOUND;
	}
	for (const struct ztype *t = z->types + nm->type_first; t < z->types + nm->type_first + nm->ntypes; t++) {
		if (t->type == qtype) {
			out->rr = z->rr + t->first;
			out->n = t->n;
			return DNS_LOOKUP_FOUND;
		}
	}
	return DNS_LOOKUP_NODATA;
}

/* ---- the builder ---- */

struct bname {
	struct dns_name name;        /* lower case */
	uint32_t hash;
	uint8_t ntypes;
	uint16_t types[TYPES_MAX];   /* in the order of first addition */
	uint32_t count[TYPES_MAX];   /* records per type; placement cursors during finish */
};
struct brec {
	uint32_t name, hash;         /* hash of (name, type, rdata): the de-duplication key */
	uint8_t rank;                /* index of its type in its name's types */
	struct dns_rr rr;
};
/* Open addressing over indices into names or recs (index + 1; 0 = empty). */
struct table {
	uint32_t *slot;
	size_t cap;
};

struct dns_zone_builder {
	struct dns_zone_params p;
	struct dns_name apex;
	struct bname *names;
	size_t n_names, cap_names;
	struct brec *recs;
	size_t n_recs, cap_recs;
	struct table name_tab, rec_tab;
};

static void builder_free(struct dns_zone_builder *b)
{
	free(b->names);
	free(b->recs);
	free(b->name_tab.slot);
	free(b->rec_tab.slot);
	free(b);
}

void dns_zone_builder_free(struct dns_zone_builder *b)
{
	if (b)
		builder_free(b);
}

/* The rdata of rr in a canonical byte form (names lower case): equal rdata, equal bytes. */
static size_t rdata_key(const struct dns_rr *rr, uint8_t out[RDATA_MAX])
{
	const struct dns_srv *s = &rr->u.srv;

	switch (rr->type) {
	case DNS_T_A:
		memcpy(out, rr->u.a, 4);
		return 4;
	case DNS_T_AAAA:
		memcpy(out, rr->u.aaaa, 16);
		return 16;
	case DNS_T_SRV:
		out[0] = (uint8_t)(s->priority >> 8), out[1] = (uint8_t)s->priority;
		out[2] = (uint8_t)(s->weight >> 8), out[3] = (uint8_t)s->weight;
		out[4] = (uint8_t)(s->port >> 8), out[5] = (uint8_t)s->port;
		memcpy(out + 6, s->target.wire, s->target.len);
		return 6 + (size_t)s->target.len;
	case DNS_T_NS:
		memcpy(out, rr->u.ns.wire, rr->u.ns.len);
		return rr->u.ns.len;
	default:
		return 0;   /* the SOA: added once, never compared */
	}
}

static uint32_t rec_hash(uint32_t name, const struct dns_rr *rr)
{
	uint8_t key[RDATA_MAX];
	uint8_t head[6] = { (uint8_t)(name >> 24), (uint8_t)(name >> 16), (uint8_t)(name >> 8), (uint8_t)name,
			    (uint8_t)(rr->type >> 8), (uint8_t)rr->type };

	return fnv(fnv(FNV_BASIS, head, sizeof(head)), key, rdata_key(rr, key));
}

static bool rec_same(const struct brec *r, uint32_t name, const struct dns_rr *rr)
{
	uint8_t ka[RDATA_MAX], kb[RDATA_MAX];
	size_t la, lb;

	if (r->name != name || r->rr.type != rr->type)
		return false;
	la = rdata_key(&r->rr, ka);
	lb = rdata_key(rr, kb);
	return la == lb && !memcmp(ka, kb, la);
}

static uint32_t *name_slot(const struct dns_zone_builder *b, const struct dns_name *n, uint32_t h)
{
	const struct table *t = &b->name_tab;

	for (size_t i = slot_of(h, t->cap - 1);; i = (i + 1) & (t->cap - 1)) {
		uint32_t *s = &t->slot[i];
		const struct bname *e = *s ? &b->names[*s - 1] : NULL;
		if (!e || (e->hash == h && e->name.len == n->len && !memcmp(e->name.wire, n->wire, n->len)))
			return s;
	}
}

static uint32_t *rec_slot(const struct dns_zone_builder *b, uint32_t name, const struct dns_rr *rr, uint32_t h)
{
	const struct table *t = &b->rec_tab;

	for (size_t i = slot_of(h, t->cap - 1);; i = (i + 1) & (t->cap - 1)) {
		uint32_t *s = &t->slot[i];
		if (!*s || (b->recs[*s - 1].hash == h && rec_same(&b->recs[*s - 1], name, rr)))
			return s;
	}
}

/* Rebuilds t with room for `entries` at most half full; hash(i) gives entry i's hash. Entries are
 * unique, so each goes to the first empty slot of its probe sequence. */
static int table_grow(struct table *t, size_t entries, size_t n, const void *arr, size_t stride, size_t hash_off)
{
	size_t cap = table_size(entries);
	uint32_t *slot;

	if (cap <= t->cap)
		return 0;
	slot = calloc(cap, sizeof(*slot));
	if (!slot)
		return -ENOMEM;
	for (size_t e = 0; e < n; e++) {
		uint32_t h;
		memcpy(&h, (const uint8_t *)arr + e * stride + hash_off, sizeof(h));
		size_t i = slot_of(h, cap - 1);
		while (slot[i])
			i = (i + 1) & (cap - 1);
		slot[i] = (uint32_t)e + 1;
	}
	free(t->slot);
	t->slot = slot;
	t->cap = cap;
	return 0;
}

static int array_reserve(void **arr, size_t *cap, size_t need, size_t size)
{
	size_t c = *cap ? *cap : 16;
	void *p;

	if (need <= *cap)
		return 0;
	while (c < need)
		c *= 2;
	p = realloc(*arr, c * size);
	if (!p)
		return -ENOMEM;
	*arr = p;
	*cap = c;
	return 0;
}

/* Room for `names` more names and one more record, so that an addition, once started, cannot fail
 * half-way (a name without its record would become a bogus empty non-terminal). */
static int reserve(struct dns_zone_builder *b, size_t names)
{
	if (b->n_names + names > UINT32_MAX / 2 || b->n_recs + 1 > UINT32_MAX / 2)
		return -ENOMEM;
	if (array_reserve((void **)&b->names, &b->cap_names, b->n_names + names, sizeof(*b->names)) < 0 ||
	    array_reserve((void **)&b->recs, &b->cap_recs, b->n_recs + 1, sizeof(*b->recs)) < 0 ||
	    table_grow(&b->name_tab, b->n_names + names, b->n_names, b->names, sizeof(*b->names),
		       offsetof(struct bname, hash)) < 0 ||
	    table_grow(&b->rec_tab, b->n_recs + 1, b->n_recs, b->recs, sizeof(*b->recs),
		       offsetof(struct brec, hash)) < 0)
		return -ENOMEM;
	return 0;
}

/* Finds n (lower case, at or below the apex), adding it and its missing ancestors up to the apex
 * (empty non-terminals). Capacity must have been reserved for n->labels - apex labels + 1 names. */
static uint32_t intern(struct dns_zone_builder *b, const struct dns_name *n)
{
	uint32_t h = name_hash(n), *s = name_slot(b, n, h);
	struct bname *e;

	if (*s)
		return *s - 1;
	e = &b->names[b->n_names];
	memset(e, 0, sizeof(*e));
	e->name = *n;
	e->hash = h;
	*s = (uint32_t)++b->n_names;
	if (n->labels > b->apex.labels) {
		/* The parent: drop the first label. Existing ancestors stop the walk at once. */
		struct dns_name parent;
		parent.len = (uint8_t)(n->len - n->wire[0] - 1);
		parent.labels = (uint8_t)(n->labels - 1);
		memcpy(parent.wire, n->wire + n->wire[0] + 1, parent.len);
		intern(b, &parent);
	}
	return (uint32_t)(e - b->names);
}

static uint8_t type_rank(struct bname *e, uint16_t type)
{
	uint8_t r = 0;

	while (r < e->ntypes && e->types[r] != type)
		r++;
	if (r == e->ntypes)
		e->types[e->ntypes++] = type;
	return r;
}

/* Adds rr at n (lower case, in the zone), or lowers the TTL of an identical record. */
static int add_rr(struct dns_zone_builder *b, const struct dns_name *n, const struct dns_rr *rr)
{
	uint32_t name, h, *s;
	struct brec *r;

	if (reserve(b, (size_t)n->labels - b->apex.labels + 1) < 0)
		return -ENOMEM;
	name = intern(b, n);
	h = rec_hash(name, rr);
	s = rec_slot(b, name, rr, h);
	if (*s) {
		r = &b->recs[*s - 1];
		if (rr->ttl < r->rr.ttl)
			r->rr.ttl = rr->ttl;
		return 0;
	}
	r = &b->recs[b->n_recs];
	r->name = name;
	r->hash = h;
	r->rank = type_rank(&b->names[name], rr->type);
	r->rr = *rr;
	b->names[name].count[r->rank]++;
	*s = (uint32_t)++b->n_recs;
	return 0;
}

/* rel + the apex into out (lower case). "" and "@" are the apex. */
static int rel_name(const struct dns_zone_builder *b, const char *what, const char *rel, struct dns_name *out,
		    char *err, size_t errlen)
{
	char q[MSG_NAME_MAX + 4];
	struct dns_name r;

	if (!strcmp(rel, "@"))
		rel = "";
	if (ends_with_dot(rel))
		return zl_errorf(err, errlen, -EINVAL, "%s \"%s\": must be relative to the zone (no trailing '.')",
			     what, quote(rel, q));
	if (dns_name_from_text(rel, &r) < 0)
		return zl_errorf(err, errlen, -EINVAL,
			     "%s \"%s\": not a valid name (empty label, label over 63 bytes or bad escape)",
			     what, quote(rel, q));
	if ((size_t)r.len - 1 + b->apex.len > DNS_NAME_MAX)
		return zl_errorf(err, errlen, -EINVAL, "%s \"%s\": longer than %d bytes with the zone appended",
			     what, quote(rel, q), DNS_NAME_MAX);
	memcpy(out->wire, r.wire, r.len - 1u);
	memcpy(out->wire + r.len - 1, b->apex.wire, b->apex.len);
	out->len = (uint8_t)(r.len - 1 + b->apex.len);
	out->labels = (uint8_t)(r.labels + b->apex.labels);
	dns_name_lower(out);
	return 0;
}

static int add_at(struct dns_zone_builder *b, const char *rel, const struct dns_rr *rr, char *err, size_t errlen)
{
	struct dns_name n;
	int rc = rel_name(b, "name", rel, &n, err, errlen);

	if (rc < 0)
		return rc;
	rc = add_rr(b, &n, rr);
	if (rc < 0)
		return zl_errorf(err, errlen, rc, "out of memory");
	return 0;
}

int dns_zone_add_a(struct dns_zone_builder *b, const char *rel, const uint8_t addr[4], uint32_t ttl,
		   char *err, size_t errlen)
{
	struct dns_rr rr = { .type = DNS_T_A, .ttl = ttl };

	memcpy(rr.u.a, addr, 4);
	return add_at(b, rel, &rr, err, errlen);
}

int dns_zone_add_aaaa(struct dns_zone_builder *b, const char *rel, const uint8_t addr[16], uint32_t ttl,
		      char *err, size_t errlen)
{
	struct dns_rr rr = { .type = DNS_T_AAAA, .ttl = ttl };

	memcpy(rr.u.aaaa, addr, 16);
	return add_at(b, rel, &rr, err, errlen);
}

int dns_zone_add_srv(struct dns_zone_builder *b, const char *rel, uint16_t priority, uint16_t weight,
		     uint16_t port, const char *target, uint32_t ttl, char *err, size_t errlen)
{
	struct dns_rr rr = { .type = DNS_T_SRV, .ttl = ttl };
	struct dns_srv *s = &rr.u.srv;
	char q[MSG_NAME_MAX + 4];
	int rc;

	s->priority = priority;
	s->weight = weight;
	s->port = port;
	if (ends_with_dot(target)) {
		if (dns_name_from_text(target, &s->target) < 0)
			return zl_errorf(err, errlen, -EINVAL, "SRV target \"%s\": not a valid name", quote(target, q));
		dns_name_lower(&s->target);
	} else {
		rc = rel_name(b, "SRV target", target, &s->target, err, errlen);
		if (rc < 0)
			return rc;
	}
	return add_at(b, rel, &rr, err, errlen);
}

/* "<label>.<apex>" into out; false when it would be longer than a name may be. */
static bool apex_child(const struct dns_name *apex, const char *label, struct dns_name *out)
{
	size_t l = strlen(label);

	if (1 + l + apex->len > DNS_NAME_MAX)
		return false;
	out->wire[0] = (uint8_t)l;
	memcpy(out->wire + 1, label, l);
	memcpy(out->wire + 1 + l, apex->wire, apex->len);
	out->len = (uint8_t)(1 + l + apex->len);
	out->labels = (uint8_t)(apex->labels + 1);
	return true;
}

static int add_apex_records(struct dns_zone_builder *b)
{
	struct dns_rr soa = { .type = DNS_T_SOA, .ttl = b->p.negative_ttl };
	struct dns_rr ns = { .type = DNS_T_NS, .ttl = b->p.ns_ttl };
	struct dns_soa *s = &soa.u.soa;

	if (!apex_child(&b->apex, "ns", &s->mname) || !apex_child(&b->apex, "hostmaster", &s->rname))
		return -EINVAL;
	s->serial = b->p.serial;
	s->refresh = b->p.refresh;
	s->retry = b->p.retry;
	s->expire = b->p.expire;
	s->minimum = b->p.negative_ttl;
	ns.u.ns = s->mname;
	if (add_rr(b, &b->apex, &soa) < 0 || add_rr(b, &b->apex, &ns) < 0)
		return -ENOMEM;
	return 0;
}

struct dns_zone_builder *dns_zone_builder_new(const struct dns_zone_params *p, char *err, size_t errlen)
{
	struct dns_zone_builder *b;
	char q[MSG_NAME_MAX + 4];
	int rc;

	b = calloc(1, sizeof(*b));
	if (!b) {
		zl_errorf(err, errlen, -ENOMEM, "out of memory");
		return NULL;
	}
	b->p = *p;
	if (!p->apex || dns_name_from_text(p->apex, &b->apex) < 0) {
		zl_errorf(err, errlen, -EINVAL, "zone \"%s\": not a valid name", quote(p->apex ? p->apex : "", q));
		builder_free(b);
		return NULL;
	}
	dns_name_lower(&b->apex);
	b->p.apex = NULL;   /* the caller's string need not outlive this call */
	rc = add_apex_records(b);
	if (rc < 0) {
		if (rc == -EINVAL)
			zl_errorf(err, errlen, rc, "zone \"%s\": too long for \"hostmaster.<zone>\"", quote(p->apex, q));
		else
			zl_errorf(err, errlen, rc, "out of memory");
		builder_free(b);
		return NULL;
	}
	return b;
}

/* ---- finish: lay the builder's content out as a zone ---- */

static int zone_alloc(struct dns_zone *z, const struct dns_zone_builder *b, size_t n_types, size_t pool_len)
{
	z->mask = table_size(b->n_names) - 1;
	z->slots = calloc(z->mask + 1, sizeof(*z->slots));
	z->names = calloc(b->n_names, sizeof(*z->names));
	z->types = calloc(n_types, sizeof(*z->types));
	z->rr = calloc(b->n_recs, sizeof(*z->rr));
	z->pool = malloc(pool_len);
	return z->slots && z->names && z->types && z->rr && z->pool ? 0 : -ENOMEM;
}

/* Describes name i in the zone and turns its counts into placement cursors (rr indices). */
static void lay_name(struct dns_zone *z, struct dns_zone_builder *b, size_t i, uint32_t *rr_at,
		     uint32_t *type_at, uint32_t *pool_at)
{
	struct bname *e = &b->names[i];
	struct zname *nm = &z->names[i];

	nm->wire_off = *pool_at;
	nm->len = e->name.len;
	memcpy(z->pool + *pool_at, e->name.wire, e->name.len);
	*pool_at += e->name.len;
	nm->first = *rr_at;
	nm->type_first = *type_at;
	nm->ntypes = e->ntypes;
	for (uint8_t r = 0; r < e->ntypes; r++) {
		struct ztype *t = &z->types[(*type_at)++];
		t->type = e->types[r];
		t->first = *rr_at;
		t->n = e->count[r];
		e->count[r] = *rr_at;
		*rr_at += t->n;
	}
	nm->n = *rr_at - nm->first;
	if (nm->n)
		z->n_named++;
}

/* RFC 2181 5.2: the records of an RRset share one TTL; use the smallest given. */
static void unify_ttls(struct dns_zone *z, size_t n_types)
{
	for (size_t t = 0; t < n_types; t++) {
		struct dns_rr *rr = z->rr + z->types[t].first;
		uint32_t min = UINT32_MAX;
		for (size_t k = 0; k < z->types[t].n; k++)
			min = rr[k].ttl < min ? rr[k].ttl : min;
		for (size_t k = 0; k < z->types[t].n; k++)
			rr[k].ttl = min;
	}
}

struct dns_zone *dns_zone_builder_finish(struct dns_zone_builder *b)
{
	struct dns_zone *z = calloc(1, sizeof(*z));
	size_t n_types = 0, pool_len = 0;
	uint32_t rr_at = 0, type_at = 0, pool_at = 0;

	for (size_t i = 0; i < b->n_names; i++) {
		n_types += b->names[i].ntypes;
		pool_len += b->names[i].name.len;
	}
	if (!z || zone_alloc(z, b, n_types ? n_types : 1, pool_len) < 0) {
		if (z)
			zone_free(z);
		builder_free(b);
		return NULL;
	}
	for (size_t i = 0; i < b->n_names; i++) {
		lay_name(z, b, i, &rr_at, &type_at, &pool_at);
		size_t s = slot_of(b->names[i].hash, z->mask);
		while (z->slots[s].name)
			s = (s + 1) & z->mask;
		z->slots[s] = (struct zslot){ .hash = b->names[i].hash, .name = (uint32_t)i + 1 };
	}
	/* Records in addition order, each to its name's and type's next place: stable, no sort. */
	for (size_t k = 0; k < b->n_recs; k++)
		z->rr[b->names[b->recs[k].name].count[b->recs[k].rank]++] = b->recs[k].rr;
	unify_ttls(z, n_types);
	z->n_rr = b->n_recs;
	z->apex = b->apex;
	z->soa = z->rr + z->types[z->names[0].type_first].first;   /* the apex is name 0, SOA its first type */
	atomic_init(&z->refs, 1);
	builder_free(b);
	return z;
}
