/* The node's state file (see state.h and docs/state-format.md).
 *
 * Load runs in four steps, each of which can fail with a message naming the field:
 *   1. read the file (size-capped) and parse JSON (json-c, strict mode, UTF-8 checked);
 *   2. from_json: presence, JSON types, lengths, unknown fields, base64 keys -> a private struct;
 *   3. validate: everything about the values (addresses, prefixes, ranges, duplicates, key pair);
 *   4. canonicalize: addresses and prefixes rewritten as inet_ntop writes them, hostnames lower case.
 * Only then is the result handed to the caller. Save runs step 3 on the caller's struct and serializes.
 *
 * Secrets: the private key lives in the struct as 32 bytes and is wiped on free. The copies json-c and
 * the file buffer make on the way are wiped too (best effort: json-c offers no secure-free hook, so we
 * overwrite the string objects and the tokener's scratch buffer ourselves before releasing them). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* qsort_r */
#endif
#include "overlay/state.h"
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <limits.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "overlay/atomic_file.h"

/* 9999-12-31T23:59:59Z: a bound that keeps timestamps far from json-c's int64 clamping. */
#define MAX_TIME INT64_C(253402300799)

enum { SHOW_MAX = 48, PATH_LEN = 96, DNS_NAME_MAX = 253, DNS_LABEL_MAX = 63 };

struct ctx {
	char *err;
	size_t errlen;
	int code; /* what the failing call returns: -EINVAL unless said otherwise */
	const char *prefix; /* before each message; NULL = "state: " (a whole file) */
};

static bool fail(struct ctx *c, const char *path, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static bool fail(struct ctx *c, const char *path, const char *field, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (c->err && c->errlen)
		snprintf(c->err, c->errlen, "%s%s%s%s%s%s", c->prefix ? c->prefix : "state: ", path,
			 *path && field ? "." : "", field ? field : "", *path || field ? ": " : "", msg);
	return false;
}

/* A value quoted for an error message: printable ASCII only, shortened. Never used for secrets. */
static const char *show(const char *s, char buf[SHOW_MAX + 8])
{
	size_t i = 0, o = 0;

	buf[o++] = '"';
	for (; s[i] && i < SHOW_MAX; i++)
		buf[o++] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
	if (s[i]) {
		memcpy(buf + o, "...", 3);
		o += 3;
	}
	buf[o++] = '"';
	buf[o] = '\0';
	return buf;
}

/* ---- keys ---- */

void zl_state_key_encode(const uint8_t key[ZL_KEY_LEN], char out[ZL_KEY_B64_LEN + 1])
{
	sodium_bin2base64(out, ZL_KEY_B64_LEN + 1, key, ZL_KEY_LEN, sodium_base64_VARIANT_ORIGINAL);
}

bool zl_state_key_decode(const char *b64, uint8_t key[ZL_KEY_LEN])
{
	uint8_t tmp[ZL_KEY_LEN];
	size_t n = 0;
	const char *end = NULL;
	bool ok;

	if (strlen(b64) != ZL_KEY_B64_LEN || b64[ZL_KEY_B64_LEN - 1] != '=')
		return false;
	/* Alphabet first: libsodium 1.0.18 accepts some bytes >= 0x80 as base64 digits. */
	for (int i = 0; i < ZL_KEY_B64_LEN - 1; i++) {
		unsigned char c = (unsigned char)b64[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/'))
			return false;
	}
	/* libsodium refuses non-zero padding bits, so only the canonical spelling of a key decodes. */
	ok = sodium_base642bin(tmp, sizeof(tmp), b64, ZL_KEY_B64_LEN, NULL, &n, &end,
			       sodium_base64_VARIANT_ORIGINAL) == 0 &&
	     n == ZL_KEY_LEN && end == b64 + ZL_KEY_B64_LEN;
	if (ok)
		memcpy(key, tmp, ZL_KEY_LEN);
	sodium_memzero(tmp, sizeof(tmp));
	return ok;
}

/* ---- addresses and prefixes (local: the allocators are a separate module) ---- */

struct addr {
	int family; /* AF_INET or AF_INET6 */
	uint8_t b[16];
};

struct prefix {
	struct addr a;
	unsigned len;
};

static unsigned family_bits(int family)
{
	return family == AF_INET ? 32 : 128;
}

static bool parse_addr(const char *s, struct addr *a)
{
	memset(a, 0, sizeof(*a));
	a->family = strchr(s, ':') ? AF_INET6 : AF_INET;
	return inet_pton(a->family, s, a->b) == 1;
}

static bool bit_set(const uint8_t *b, unsigned i)
{
	return b[i / 8] & (0x80 >> (i % 8));
}

/* Whether a and b agree on their first len bits. */
static bool same_bits(const uint8_t *a, const uint8_t *b, unsigned len)
{
	unsigned whole = len / 8, rest = len % 8;
	uint8_t mask = (uint8_t)(0xff << (8 - rest));

	return !memcmp(a, b, whole) && (!rest || !((a[whole] ^ b[whole]) & mask));
}

static bool addr_in(const struct addr *a, const struct prefix *p)
{
	return a->family == p->a.family && same_bits(a->b, p->a.b, p->len);
}

static bool prefix_in(const struct prefix *inner, const struct prefix *outer)
{
	return inner->len >= outer->len && addr_in(&inner->a, outer);
}

/* Parses "ADDRESS/LENGTH"; *why says what is wrong on false. */
static bool parse_prefix(const char *s, struct prefix *p, const char **why)
{
	const char *slash = strchr(s, '/');
	char a[ZL_ADDR_STRLEN];
	size_t n = slash ? (size_t)(slash - s) : 0, digits = slash ? strlen(slash + 1) : 0;
	unsigned len = 0;

	*why = "is not a prefix (ADDRESS/LENGTH)";
	if (!slash || n == 0 || n >= sizeof(a) || digits == 0 || digits > 3 ||
	    strspn(slash + 1, "0123456789") != digits || (digits > 1 && slash[1] == '0'))
		return false;
	memcpy(a, s, n);
	a[n] = '\0';
	if (!parse_addr(a, &p->a))
		return false;
	for (size_t i = 0; i < digits; i++)
		len = len * 10 + (unsigned)(slash[1 + i] - '0');
	if (len > family_bits(p->a.family)) {
		*why = "has a prefix length longer than the address";
		return false;
	}
	p->len = len;
	for (unsigned i = len; i < family_bits(p->a.family); i++) {
		if (bit_set(p->a.b, i)) {
			*why = "has host bits set";
			return false;
		}
	}
	return true;
}

static void format_addr(const struct addr *a, char out[ZL_ADDR_STRLEN])
{
	inet_ntop(a->family, a->b, out, ZL_ADDR_STRLEN);
}

static void format_prefix(const struct prefix *p, char out[ZL_CIDR_STRLEN])
{
	char a[ZL_ADDR_STRLEN];

	format_addr(&p->a, a);
	snprintf(out, ZL_CIDR_STRLEN, "%s/%u", a, p->len);
}

/* ---- field checks on text values, shared by load and save ---- */

static bool check_addr(struct ctx *c, const char *path, const char *field, const char *s, struct addr *a)
{
	char b[SHOW_MAX + 8];

	if (!parse_addr(s, a))
		return fail(c, path, field, "%s is not an IPv4 or IPv6 address", show(s, b));
	return true;
}

static bool check_prefix(struct ctx *c, const char *path, const char *field, const char *s, struct prefix *p)
{
	char b[SHOW_MAX + 8];
	const char *why;

	if (!parse_prefix(s, p, &why))
		return fail(c, path, field, "%s %s", show(s, b), why);
	return true;
}

static bool check_addr_inside(struct ctx *c, const char *path, const char *field, const char *s,
			      const struct prefix *range, const char *range_name, struct addr *a)
{
	char b[SHOW_MAX + 8];

	if (!check_addr(c, path, field, s, a))
		return false;
	if (!addr_in(a, range))
		return fail(c, path, field, "%s is not inside %s", show(s, b), range_name);
	return true;
}

static bool check_prefix_inside(struct ctx *c, const char *path, const char *field, const char *s,
				const struct prefix *range, const char *range_name, struct prefix *p)
{
	char b[SHOW_MAX + 8];

	if (!check_prefix(c, path, field, s, p))
		return false;
	if (!prefix_in(p, range))
		return fail(c, path, field, "%s is not inside %s", show(s, b), range_name);
	return true;
}

/* A DNS name for an endpoint: labels of [A-Za-z0-9-] not starting or ending with '-', and a last label
 * that is not all digits (so "300.1.1.1" is a bad address, not a name). */
static bool dns_name_ok(const char *s, size_t n)
{
	size_t start = 0;
	bool all_digits = true;

	if (n == 0 || n > DNS_NAME_MAX)
		return false;
	for (size_t i = 0; i <= n; i++) {
		if (i == n || s[i] == '.') {
			size_t l = i - start;
			if (l == 0 || l > DNS_LABEL_MAX || s[start] == '-' || s[i - 1] == '-')
				return false;
			if (i < n)
				all_digits = true;
			start = i + 1;
			continue;
		}
		if (!(s[i] >= '0' && s[i] <= '9'))
			all_digits = false;
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return false;
	}
	return !all_digits;
}

static bool port_ok(const char *s)
{
	size_t n = strlen(s);
	unsigned long v = 0;

	if (n == 0 || n > 5 || strspn(s, "0123456789") != n || (n > 1 && s[0] == '0'))
		return false;
	for (size_t i = 0; i < n; i++)
		v = v * 10 + (unsigned long)(s[i] - '0');
	return v >= 1 && v <= 65535;
}

/* HOST:PORT with HOST an IPv4 address, [IPv6] or a DNS name; port 1..65535. */
static bool endpoint_ok(const char *s)
{
	char host[ZL_ENDPOINT_SIZE];
	uint8_t bin[16];
	const char *colon;
	size_t n;

	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		n = close ? (size_t)(close - s - 1) : 0;
		if (!close || close[1] != ':' || n == 0 || n >= ZL_ADDR_STRLEN)
			return false;
		memcpy(host, s + 1, n);
		host[n] = '\0';
		return inet_pton(AF_INET6, host, bin) == 1 && port_ok(close + 2);
	}
	colon = strchr(s, ':');
	if (!colon || strchr(colon + 1, ':'))
		return false; /* no port, or an IPv6 address without brackets */
	n = (size_t)(colon - s);
	if (n >= sizeof(host))
		return false;
	memcpy(host, s, n);
	host[n] = '\0';
	if (!port_ok(colon + 1))
		return false;
	return inet_pton(AF_INET, host, bin) == 1 || dns_name_ok(host, n);
}

static bool check_endpoint(struct ctx *c, const char *path, const char *field, const char *s)
{
	char b[SHOW_MAX + 8];

	if (!endpoint_ok(s))
		return fail(c, path, field, "%s is not HOST:PORT (IPv4, [IPv6] or DNS name; port 1-65535)",
			    show(s, b));
	return true;
}

static bool check_node_id(struct ctx *c, const char *path, const char *field, const char *s)
{
	size_t n = strlen(s);

	if (n == 0)
		return fail(c, path, field, "is empty");
	if (n >= ZL_NODE_ID_SIZE)
		return fail(c, path, field, "is longer than %d bytes", ZL_NODE_ID_SIZE - 1);
	for (size_t i = 0; i < n; i++)
		if (s[i] <= 0x20 || s[i] >= 0x7f)
			return fail(c, path, field, "may contain only printable ASCII without spaces");
	return true;
}

static bool check_hostname(struct ctx *c, const char *path, const char *field, const char *s)
{
	char tmp[ZL_HOSTNAME_SIZE], why[96];

	if (!zl_hostname_normalize(s, tmp, why, sizeof(why)))
		return fail(c, path, field, "%s", why);
	return true;
}

static bool check_time(struct ctx *c, const char *path, const char *field, int64_t t)
{
	if (t < 0 || t > MAX_TIME)
		return fail(c, path, field, "is not a time in Unix seconds (0..%" PRId64 ")", MAX_TIME);
	return true;
}

/* ---- duplicate detection: sort (key, index) pairs, O(n log n) for allocator-sized lists ---- */

struct dup_ent {
	const void *key;
	size_t idx;
};

struct dup_kind {
	size_t len;
	bool is_string;
};

static int dup_cmp(const void *a, const void *b, void *arg)
{
	const struct dup_ent *x = a, *y = b;
	const struct dup_kind *k = arg;
	int r = k->is_string ? strncmp(x->key, y->key, k->len) : memcmp(x->key, y->key, k->len);

	if (r)
		return r;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static bool same_key(const struct dup_ent *a, const struct dup_ent *b, const struct dup_kind *k)
{
	return k->is_string ? !strncmp(a->key, b->key, k->len) : !memcmp(a->key, b->key, k->len);
}

/* Finds the lowest index whose key repeats an earlier one: returns 1 with *later and *earlier (the first
 * index with that key) set, 0 when all keys are distinct, or -ENOMEM. Keys are at base + i * stride.
 * After sorting by (key, index) equal keys form runs in index order, so each run's second entry is its
 * lowest repeat and its first entry the original. */
static int find_dup(const void *base, size_t n, size_t stride, struct dup_kind kind, size_t *later,
		    size_t *earlier)
{
	struct dup_ent *e;
	size_t run = 0;
	int found = 0;

	if (n < 2)
		return 0;
	e = calloc(n, sizeof(*e));
	if (!e)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		e[i] = (struct dup_ent){ (const uint8_t *)base + i * stride, i };
	qsort_r(e, n, sizeof(*e), dup_cmp, &kind);
	for (size_t i = 1; i < n; i++) {
		if (!same_key(&e[run], &e[i], &kind)) {
			run = i;
			continue;
		}
		if (i == run + 1 && (!found || e[i].idx < *later)) {
			*later = e[i].idx;
			*earlier = e[run].idx;
			found = 1;
		}
	}
	free(e);
	return found;
}

/* Reports a duplicate among n items of list (keys at base + i * stride) as "<list>[later].<field>". */
static bool check_unique(struct ctx *c, const char *list, const char *field, const void *base, size_t n,
			 size_t stride, struct dup_kind kind)
{
	char path[PATH_LEN];
	size_t later = 0, earlier = 0;
	int r = find_dup(base, n, stride, kind, &later, &earlier);

	if (r < 0) {
		c->code = -ENOMEM;
		return fail(c, list, NULL, "out of memory");
	}
	if (r == 0)
		return true;
	snprintf(path, sizeof(path), "%s[%zu]", list, later);
	return fail(c, path, field, "duplicate of %s[%zu]%s%s", list, earlier, field ? "." : "", field ? field : "");
}

/* ---- validation (step 3; also run by save) ---- */

/* Save validates a caller-built struct: a string filling its whole array would make every later check
 * read past it. */
static bool terminated(struct ctx *c, const char *path, const char *field, const char *s, size_t size)
{
	if (strnlen(s, size) == size)
		return fail(c, path, field, "is not NUL-terminated");
	return true;
}
#define TERMINATED(c, path, field, arr) terminated((c), (path), (field), (arr), sizeof(arr))

static bool validate_keys(struct ctx *c, const struct zl_state_config *cfg)
{
	uint8_t pub[ZL_KEY_LEN];
	bool ok = crypto_scalarmult_base(pub, cfg->private_key) == 0 &&
		  !memcmp(pub, cfg->public_key, ZL_KEY_LEN);

	sodium_memzero(pub, sizeof(pub));
	if (!ok)
		return fail(c, "config", "public_key", "does not match config.private_key");
	return true;
}

static bool validate_config(struct ctx *c, const struct zl_state_config *cfg, struct prefix *range,
			    struct addr *self)
{
	char why[96];
	struct prefix slice;

	if (!TERMINATED(c, "config", "node_id", cfg->node_id) || !TERMINATED(c, "config", "cidr", cfg->cidr) ||
	    !TERMINATED(c, "config", "node_ip", cfg->node_ip) ||
	    !TERMINATED(c, "config", "slice_cidr", cfg->slice_cidr) ||
	    !TERMINATED(c, "config", "interface", cfg->interface) ||
	    !TERMINATED(c, "config", "hostname", cfg->hostname) ||
	    !TERMINATED(c, "config", "endpoint", cfg->endpoint))
		return false;
	if (!check_node_id(c, "config", "node_id", cfg->node_id) ||
	    !check_prefix(c, "config", "cidr", cfg->cidr, range) ||
	    !check_addr_inside(c, "config", "node_ip", cfg->node_ip, range, "config.cidr", self))
		return false;
	if (cfg->slice_cidr[0] &&
	    !check_prefix_inside(c, "config", "slice_cidr", cfg->slice_cidr, range, "config.cidr", &slice))
		return false;
	if (!zl_ifname_valid(cfg->interface, why, sizeof(why)))
		return fail(c, "config", "interface", "%s", why);
	if (cfg->port == 0)
		return fail(c, "config", "port", "must be 1 to 65535");
	if (!validate_keys(c, cfg) || !check_time(c, "config", "created_at", cfg->created_at))
		return false;
	if (cfg->hostname[0] && !check_hostname(c, "config", "hostname", cfg->hostname))
		return false;
	if (cfg->endpoint[0] && !check_endpoint(c, "config", "endpoint", cfg->endpoint))
		return false;
	return true;
}

static bool validate_peer(struct ctx *c, const struct zl_state *s, size_t i, const struct prefix *range,
			  const struct addr *self, struct addr *ip)
{
	const struct zl_state_peer *p = &s->peers[i];
	char path[PATH_LEN];
	struct prefix slice;

	snprintf(path, sizeof(path), "peers[%zu]", i);
	if (!TERMINATED(c, path, "node_id", p->node_id) || !TERMINATED(c, path, "endpoint", p->endpoint) ||
	    !TERMINATED(c, path, "overlay_ip", p->overlay_ip) || !TERMINATED(c, path, "hostname", p->hostname) ||
	    !TERMINATED(c, path, "slice_cidr", p->slice_cidr))
		return false;
	if (!check_node_id(c, path, "node_id", p->node_id))
		return false;
	if (!strcmp(p->node_id, s->config.node_id))
		return fail(c, path, "node_id", "is this node's own id (config.node_id)");
	if (!memcmp(p->public_key, s->config.public_key, ZL_KEY_LEN))
		return fail(c, path, "public_key", "is this node's own key (config.public_key)");
	if (!check_addr_inside(c, path, "overlay_ip", p->overlay_ip, range, "config.cidr", ip))
		return false;
	if (!memcmp(ip, self, sizeof(*ip)))
		return fail(c, path, "overlay_ip", "is this node's own address (config.node_ip)");
	if (p->endpoint[0] && !check_endpoint(c, path, "endpoint", p->endpoint))
		return false;
	if (p->hostname[0] && !check_hostname(c, path, "hostname", p->hostname))
		return false;
	if (p->slice_cidr[0] &&
	    !check_prefix_inside(c, path, "slice_cidr", p->slice_cidr, range, "config.cidr", &slice))
		return false;
	return true;
}

static bool validate_peers(struct ctx *c, const struct zl_state *s, const struct prefix *range,
			   const struct addr *self)
{
	struct addr *ips = s->n_peers ? calloc(s->n_peers, sizeof(*ips)) : NULL;
	bool ok = true;

	if (s->n_peers && !ips) {
		c->code = -ENOMEM;
		return fail(c, "peers", NULL, "out of memory");
	}
	for (size_t i = 0; ok && i < s->n_peers; i++)
		ok = validate_peer(c, s, i, range, self, &ips[i]);
	ok = ok && (s->n_peers < 2 ||
	     (check_unique(c, "peers", "node_id", s->peers[0].node_id, s->n_peers, sizeof(*s->peers),
			  (struct dup_kind){ ZL_NODE_ID_SIZE, true }) &&
	     check_unique(c, "peers", "public_key", s->peers[0].public_key, s->n_peers, sizeof(*s->peers),
			  (struct dup_kind){ ZL_KEY_LEN, false }) &&
	      check_unique(c, "peers", "overlay_ip", ips, s->n_peers, sizeof(*ips),
			   (struct dup_kind){ sizeof(*ips), false })));
	free(ips);
	return ok;
}

static bool validate_ip_allocator(struct ctx *c, const struct zl_state_ip_allocator *a)
{
	const char *list = "ip_allocator.allocated";
	struct addr *bin;
	struct prefix range;
	char path[PATH_LEN];
	bool ok;

	if (!TERMINATED(c, "ip_allocator", "cidr", a->cidr) || !check_prefix(c, "ip_allocator", "cidr", a->cidr, &range))
		return false;
	bin = a->n_allocated ? calloc(a->n_allocated, sizeof(*bin)) : NULL;
	if (a->n_allocated && !bin) {
		c->code = -ENOMEM;
		return fail(c, list, NULL, "out of memory");
	}
	ok = true;
	for (size_t i = 0; ok && i < a->n_allocated; i++) {
		snprintf(path, sizeof(path), "%s[%zu]", list, i);
		ok = TERMINATED(c, path, NULL, a->allocated[i].s) &&
		     check_addr_inside(c, path, NULL, a->allocated[i].s, &range, "ip_allocator.cidr", &bin[i]);
	}
	ok = ok && check_unique(c, list, NULL, bin, a->n_allocated, sizeof(*bin),
				(struct dup_kind){ sizeof(*bin), false });
	free(bin);
	return ok;
}

static bool validate_slice_prefix(struct ctx *c, const struct zl_state_slice_allocator *a,
				  const struct prefix *cluster)
{
	unsigned max = family_bits(cluster->a.family);

	if (a->slice_prefix <= cluster->len || a->slice_prefix > max)
		return fail(c, "slice_allocator", "slice_prefix",
			    "must be longer than the cluster prefix (/%u) and at most /%u", cluster->len, max);
	return true;
}

/* A prefix as the closed range [first, last] of 16-byte big-endian values (IPv4 in the first 4 bytes;
 * all entries compared share one family, so memcmp orders them). */
struct span {
	uint8_t first[16], last[16];
	const char *list;
	size_t idx;
};

static void make_span(const struct prefix *p, const char *list, size_t idx, struct span *sp)
{
	unsigned bits = family_bits(p->a.family);

	memcpy(sp->first, p->a.b, 16);
	memcpy(sp->last, p->a.b, 16);
	for (unsigned i = p->len; i < bits; i++)
		sp->last[i / 8] |= (uint8_t)(0x80 >> (i % 8));
	sp->list = list;
	sp->idx = idx;
}

static int span_cmp(const void *a, const void *b)
{
	const struct span *x = a, *y = b;
	int r = memcmp(x->first, y->first, 16);

	if (!r)
		r = memcmp(y->last, x->last, 16); /* the bigger block first */
	if (!r)
		r = strcmp(x->list, y->list); /* then a stable order: assigned before services, by index */
	return r ? r : (x->idx > y->idx) - (x->idx < y->idx);
}

/* Slices are aligned blocks, so two either nest or are disjoint: after sorting by start, an overlap
 * always shows as an entry starting inside the widest block seen so far. */
static bool check_no_overlap(struct ctx *c, struct span *sp, size_t n)
{
	char path[PATH_LEN];
	size_t cover = 0;

	qsort(sp, n, sizeof(*sp), span_cmp);
	for (size_t i = 1; i < n; i++) {
		if (memcmp(sp[i].first, sp[cover].last, 16) > 0) {
			cover = i;
			continue;
		}
		snprintf(path, sizeof(path), "%s[%zu]", sp[i].list, sp[i].idx);
		return fail(c, path, "cidr", "overlaps %s[%zu]", sp[cover].list, sp[cover].idx);
	}
	return true;
}

/* Entry i of a [name, cidr] list: a node slice is exactly /slice_prefix, a service subnet a block of
 * whole slices (cluster prefix < length <= slice_prefix). */
static bool validate_slice(struct ctx *c, const struct zl_state_slice_allocator *a, const char *list,
			   const struct zl_state_slice *sl, size_t i, bool service, const struct prefix *cluster,
			   struct span *sp)
{
	const char *word = service ? "name" : "node";
	char path[PATH_LEN], b[SHOW_MAX + 8];
	struct prefix p;

	snprintf(path, sizeof(path), "%s[%zu]", list, i);
	if (!TERMINATED(c, path, word, sl->name) || !TERMINATED(c, path, "cidr", sl->cidr) ||
	    !check_node_id(c, path, word, sl->name) ||
	    !check_prefix_inside(c, path, "cidr", sl->cidr, cluster, "slice_allocator.cluster_cidr", &p))
		return false;
	if (!service && p.len != a->slice_prefix)
		return fail(c, path, "cidr", "%s is not a /%u slice", show(sl->cidr, b), a->slice_prefix);
	if (service && (p.len <= cluster->len || p.len > a->slice_prefix))
		return fail(c, path, "cidr", "%s must be longer than /%u and at most /%u", show(sl->cidr, b),
			    cluster->len, a->slice_prefix);
	make_span(&p, list, i, sp);
	return true;
}

static bool validate_slice_list(struct ctx *c, const struct zl_state_slice_allocator *a, bool service,
				const struct prefix *cluster, struct span *spans)
{
	const char *list = service ? "slice_allocator.services" : "slice_allocator.assigned";
	const struct zl_state_slice *items = service ? a->services : a->assigned;
	size_t n = service ? a->n_services : a->n_assigned;

	for (size_t i = 0; i < n; i++)
		if (!validate_slice(c, a, list, &items[i], i, service, cluster, &spans[i]))
			return false;
	return n < 2 || check_unique(c, list, service ? "name" : "node", items[0].name, n, sizeof(*items),
				     (struct dup_kind){ ZL_NODE_ID_SIZE, true });
}

static bool validate_slice_allocator(struct ctx *c, const struct zl_state_slice_allocator *a)
{
	size_t n = a->n_assigned + a->n_services;
	struct prefix cluster;
	struct span *spans;
	bool ok;

	if (!TERMINATED(c, "slice_allocator", "cluster_cidr", a->cluster_cidr) ||
	    !check_prefix(c, "slice_allocator", "cluster_cidr", a->cluster_cidr, &cluster) ||
	    !validate_slice_prefix(c, a, &cluster))
		return false;
	if (n == 0)
		return true;
	spans = calloc(n, sizeof(*spans));
	if (!spans) {
		c->code = -ENOMEM;
		return fail(c, "slice_allocator", NULL, "out of memory");
	}
	ok = validate_slice_list(c, a, false, &cluster, spans) &&
	     validate_slice_list(c, a, true, &cluster, spans + a->n_assigned) && check_no_overlap(c, spans, n);
	free(spans);
	return ok;
}

static bool validate_token(struct ctx *c, const struct zl_state_token *t, const char *path)
{
	if (t->expires_at == 0 || t->expires_at > (uint64_t)MAX_TIME)
		return fail(c, path, "expires_at", "is not a time in Unix seconds (1..%" PRId64 ")", MAX_TIME);
	if (t->created_at > t->expires_at)
		return fail(c, path, "created_at", "is after expires_at");
	if (t->max_uses == 0)
		return fail(c, path, "max_uses", "must be at least 1");
	return true;
}

static bool validate_tokens(struct ctx *c, const struct zl_state *s)
{
	char path[PATH_LEN];

	for (size_t i = 0; i < s->n_tokens; i++) {
		snprintf(path, sizeof(path), "tokens[%zu]", i);
		if (!validate_token(c, &s->tokens[i], path))
			return false;
	}
	return s->n_tokens < 2 ||
	       check_unique(c, "tokens", "id", s->tokens[0].id, s->n_tokens, sizeof(*s->tokens),
			    (struct dup_kind){ ZL_STATE_TOKEN_ID_LEN, false });
}

/* ---- service records ("dns") ---- */

/* Why s is not a name relative to the zone (labels of 1..63 bytes of [a-z0-9_-], not starting or
 * ending with '-', at most 253 bytes), or NULL. absolute_ok: one trailing '.' makes it absolute (an
 * SRV target outside the zone). Upper case is refused, not folded: the registry lower-cases names
 * before they get here, so two spellings of one name can never be two records. */
static const char *dns_name_why(const char *s, bool absolute_ok)
{
	size_t n = strlen(s), start = 0;

	if (absolute_ok && n > 1 && s[n - 1] == '.')
		n--;
	if (n == 0)
		return "is empty";
	if (n > DNS_NAME_MAX)
		return "is longer than 253 bytes";
	for (size_t i = 0; i <= n; i++) {
		if (i < n && s[i] != '.') {
			if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '_'))
				return "may contain only lower-case letters, digits, '-' and '_' in dot-separated labels";
			continue;
		}
		if (i == start)
			return "has an empty label";
		if (i - start > DNS_LABEL_MAX)
			return "has a label longer than 63 bytes";
		if (s[start] == '-' || s[i - 1] == '-')
			return "has a label starting or ending with '-'";
		start = i + 1;
	}
	return NULL;
}

/* RFC 2782: _service._proto.name (both leading labels start with '_' and say something). */
static bool srv_name_ok(const char *s)
{
	const char *d1 = strchr(s, '.'), *d2 = d1 ? strchr(d1 + 1, '.') : NULL;

	return s[0] == '_' && s[1] != '.' && d1 && d1[1] == '_' && d1[2] != '.' && d2 && d2[1];
}

static bool http_path_ok(const char *s)
{
	if (s[0] != '/')
		return false;
	for (; *s; s++)
		if (*s <= 0x20 || *s >= 0x7f)
			return false;
	return true;
}

/* "<path>.<sub>", or "<sub>" for a record validated on its own (path ""). */
static void sub_path(char out[PATH_LEN], const char *path, const char *sub)
{
	snprintf(out, PATH_LEN, "%s%s%s", path, *path ? "." : "", sub);
}

static bool validate_dns_check(struct ctx *c, const char *path, const struct zl_state_dns_record *r)
{
	const struct zl_state_dns_check *k = &r->check;
	char p[PATH_LEN], b[SHOW_MAX + 8];

	if (k->kind == ZL_CHECK_NONE)
		return true;
	if (r->kind != ZL_DNS_ADDR)
		return fail(c, path, "check", "only address records can have a check");
	sub_path(p, path, "check");
	if (k->kind != ZL_CHECK_TCP && k->kind != ZL_CHECK_HTTP)
		return fail(c, p, "kind", "must be \"tcp\" or \"http\"");
	if (k->port == 0)
		return fail(c, p, "port", "must be 1 to 65535");
	if (!TERMINATED(c, p, "path", k->path))
		return false;
	if (k->kind == ZL_CHECK_TCP && k->path[0])
		return fail(c, p, "path", "is only for http checks");
	if (k->kind == ZL_CHECK_HTTP && !http_path_ok(k->path))
		return fail(c, p, "path", "%s must start with '/' and be printable ASCII without spaces", show(k->path, b));
	if (k->interval_s < 1 || k->interval_s > 3600)
		return fail(c, p, "interval_s", "must be 1 to 3600");
	if (k->threshold < 1 || k->threshold > 100)
		return fail(c, p, "threshold", "must be 1 to 100");
	return true;
}

/* What makes a record itself (state.h): (name, kind, addr) or (name, kind, target, port). Zeroed whole
 * before filling, so memcmp compares keys. */
struct dns_key {
	char name[ZL_DNS_NAME_SIZE];
	char target[ZL_DNS_NAME_SIZE];
	struct addr addr;
	uint16_t port;
	uint8_t kind;
};

static void make_dns_key(const struct zl_state_dns_record *r, const struct addr *a, struct dns_key *k)
{
	memset(k, 0, sizeof(*k));
	memcpy(k->name, r->name, strlen(r->name));
	k->kind = (uint8_t)r->kind;
	if (r->kind == ZL_DNS_ADDR) {
		k->addr = *a;
		return;
	}
	memcpy(k->target, r->target, strlen(r->target));
	k->port = r->port;
}

/* One record; key (may be NULL) receives its identity. */
static bool validate_dns_record(struct ctx *c, const char *path, const struct zl_state_dns_record *r,
				struct dns_key *key)
{
	char b[SHOW_MAX + 8];
	const char *why;
	struct addr a;

	memset(&a, 0, sizeof(a));
	if (!TERMINATED(c, path, "name", r->name) || !TERMINATED(c, path, "addr", r->addr) ||
	    !TERMINATED(c, path, "srv.target", r->target) || !TERMINATED(c, path, "owner", r->owner))
		return false;
	if ((why = dns_name_why(r->name, false)))
		return fail(c, path, "name", "%s %s", show(r->name, b), why);
	if (r->kind == ZL_DNS_ADDR) {
		if (!check_addr(c, path, "addr", r->addr, &a))
			return false;
	} else if (r->kind == ZL_DNS_SRV) {
		if (!srv_name_ok(r->name))
			return fail(c, path, "name", "%s: an SRV record's name must be _service._proto.name",
				    show(r->name, b));
		if ((why = dns_name_why(r->target, true)))
			return fail(c, path, "srv.target", "%s %s", show(r->target, b), why);
		if (r->port == 0)
			return fail(c, path, "srv.port", "must be 1 to 65535");
	} else {
		return fail(c, path, "kind", "must be \"addr\" or \"srv\"");
	}
	if (r->ttl > ZL_DNS_MAX_TTL)
		return fail(c, path, "ttl", "must be 0 to %d", ZL_DNS_MAX_TTL);
	if (r->owner[0] && !check_node_id(c, path, "owner", r->owner))
		return false;
	if (!validate_dns_check(c, path, r))
		return false;
	if (key)
		make_dns_key(r, &a, key);
	return true;
}

static bool validate_dns(struct ctx *c, const struct zl_state *s)
{
	char path[PATH_LEN];
	struct dns_key *keys;
	bool ok = true;

	if (s->n_dns == 0)
		return true;
	if (s->n_dns > ZL_DNS_MAX_RECORDS)
		return fail(c, "dns", NULL, "has %zu records, at most %d are allowed", s->n_dns, ZL_DNS_MAX_RECORDS);
	keys = calloc(s->n_dns, sizeof(*keys));
	if (!keys) {
		c->code = -ENOMEM;
		return fail(c, "dns", NULL, "out of memory");
	}
	for (size_t i = 0; ok && i < s->n_dns; i++) {
		snprintf(path, sizeof(path), "dns[%zu]", i);
		ok = validate_dns_record(c, path, &s->dns[i], &keys[i]);
	}
	ok = ok && check_unique(c, "dns", NULL, keys, s->n_dns, sizeof(*keys),
				(struct dup_kind){ sizeof(*keys), false });
	free(keys);
	return ok;
}

static bool validate(struct ctx *c, const struct zl_state *s)
{
	struct prefix range;
	struct addr self;

	if (sodium_init() < 0) {
		c->code = -EIO;
		return fail(c, "", NULL, "libsodium failed to initialize");
	}

	if ((s->n_peers && !s->peers) || (s->n_tokens && !s->tokens) ||
	    (s->ip_allocator.n_allocated && !s->ip_allocator.allocated) ||
	    (s->slice_allocator.n_assigned && !s->slice_allocator.assigned) ||
	    (s->slice_allocator.n_services && !s->slice_allocator.services) || (s->n_dns && !s->dns))
		return fail(c, "", NULL, "a list has a count but no entries");
	if (!validate_config(c, &s->config, &range, &self) || !validate_peers(c, s, &range, &self))
		return false;
	if (s->ip_allocator.present && !validate_ip_allocator(c, &s->ip_allocator))
		return false;
	if (s->slice_allocator.present && !validate_slice_allocator(c, &s->slice_allocator))
		return false;
	return validate_tokens(c, s) && validate_dns(c, s);
}

bool zl_state_validate(const struct zl_state *s, char *err, size_t errlen)
{
	struct ctx c = { err, errlen, -EINVAL, NULL };

	return validate(&c, s);
}

/* ---- step 4: canonical text (only after validate succeeded, so every parse below succeeds) ---- */

static void canon_addr(char s[ZL_ADDR_STRLEN])
{
	struct addr a;

	if (parse_addr(s, &a))
		format_addr(&a, s);
}

static void canon_prefix(char s[ZL_CIDR_STRLEN])
{
	struct prefix p;
	const char *why;

	if (s[0] && parse_prefix(s, &p, &why))
		format_prefix(&p, s);
}

static void canon_hostname(char s[ZL_HOSTNAME_SIZE])
{
	if (s[0])
		zl_hostname_normalize(s, s, NULL, 0);
}

static void canonicalize(struct zl_state *s)
{
	canon_prefix(s->config.cidr);
	canon_addr(s->config.node_ip);
	canon_prefix(s->config.slice_cidr);
	canon_hostname(s->config.hostname);
	for (size_t i = 0; i < s->n_peers; i++) {
		canon_addr(s->peers[i].overlay_ip);
		canon_prefix(s->peers[i].slice_cidr);
		canon_hostname(s->peers[i].hostname);
	}
	canon_prefix(s->ip_allocator.cidr);
	for (size_t i = 0; i < s->ip_allocator.n_allocated; i++)
		canon_addr(s->ip_allocator.allocated[i].s);
	canon_prefix(s->slice_allocator.cluster_cidr);
	for (size_t i = 0; i < s->slice_allocator.n_assigned; i++)
		canon_prefix(s->slice_allocator.assigned[i].cidr);
	for (size_t i = 0; i < s->slice_allocator.n_services; i++)
		canon_prefix(s->slice_allocator.services[i].cidr);
	for (size_t i = 0; i < s->n_dns; i++)
		if (s->dns[i].kind == ZL_DNS_ADDR)
			canon_addr(s->dns[i].addr);
}

/* ---- step 2: JSON -> struct ---- */

static const char *type_name(enum json_type t)
{
	switch (t) {
	case json_type_string: return "a string";
	case json_type_int: return "an integer";
	case json_type_boolean: return "true or false";
	case json_type_object: return "an object";
	case json_type_array: return "an array";
	case json_type_double: return "a number";
	default: return "null";
	}
}

/* Looks up key in obj. Absent (or null) is an error only when required; *v is NULL then. */
static bool get(struct ctx *c, json_object *obj, const char *path, const char *key, enum json_type t,
		bool required, json_object **v)
{
	*v = NULL;
	if (!json_object_object_get_ex(obj, key, v) || !*v) {
		*v = NULL;
		return required ? fail(c, path, key, "missing required field") : true;
	}
	if (!json_object_is_type(*v, t))
		return fail(c, path, key, "expected %s, got %s", type_name(t), type_name(json_object_get_type(*v)));
	return true;
}

/* Copies a JSON string value (checked by the caller to be a string) into out[size]. */
static bool copy_str(struct ctx *c, const char *path, const char *key, json_object *v, char *out, size_t size)
{
	const char *s = json_object_get_string(v);
	size_t n = (size_t)json_object_get_string_len(v);

	if (strlen(s) != n)
		return fail(c, path, key, "contains a NUL character");
	if (n >= size)
		return fail(c, path, key, "is longer than %zu bytes", size - 1);
	memcpy(out, s, n + 1);
	return true;
}

static bool get_str(struct ctx *c, json_object *obj, const char *path, const char *key, bool required,
		    char *out, size_t size)
{
	json_object *v;

	if (!get(c, obj, path, key, json_type_string, required, &v))
		return false;
	return !v || copy_str(c, path, key, v, out, size);
}

static bool get_int(struct ctx *c, json_object *obj, const char *path, const char *key, bool required,
		    int64_t min, int64_t max, int64_t *out)
{
	json_object *v;
	int64_t x;

	if (!get(c, obj, path, key, json_type_int, required, &v))
		return false;
	if (!v)
		return true;
	x = json_object_get_int64(v);
	if (x < min || x > max)
		return fail(c, path, key, "must be %" PRId64 " to %" PRId64, min, max);
	*out = x;
	return true;
}

static bool get_u16(struct ctx *c, json_object *obj, const char *path, const char *key, bool required,
		    int64_t min, uint16_t *out)
{
	int64_t x = *out;

	if (!get_int(c, obj, path, key, required, min, UINT16_MAX, &x))
		return false;
	*out = (uint16_t)x;
	return true;
}

static bool get_bool(struct ctx *c, json_object *obj, const char *path, const char *key, bool *out)
{
	json_object *v;

	if (!get(c, obj, path, key, json_type_boolean, true, &v))
		return false;
	*out = json_object_get_boolean(v);
	return true;
}

/* A base64 key. The message never quotes the value: this may be the private key. */
static bool get_key(struct ctx *c, json_object *obj, const char *path, const char *key, uint8_t out[ZL_KEY_LEN])
{
	json_object *v;

	if (!get(c, obj, path, key, json_type_string, true, &v))
		return false;
	if (!zl_state_key_decode(json_object_get_string(v), out))
		return fail(c, path, key, "not a valid base64 key (44 characters encoding 32 bytes)");
	return true;
}

/* Refuses keys of obj that are not in known (a typo must not silently drop a setting). */
static bool only_known(struct ctx *c, json_object *obj, const char *path, const char *const known[])
{
	json_object_object_foreach(obj, key, val) {
		char b[SHOW_MAX + 8];
		size_t i = 0;
		(void)val;
		while (known[i] && strcmp(known[i], key))
			i++;
		if (!known[i])
			return fail(c, path, NULL, "unknown field %s", show(key, b));
	}
	return true;
}

static bool from_json_config(struct ctx *c, json_object *o, struct zl_state_config *cfg)
{
	static const char *const known[] = { "node_id", "cidr", "node_ip", "slice_cidr", "interface", "port",
					     "public_key", "private_key", "is_leader", "created_at", "hostname",
					     "endpoint", NULL };
	const char *p = "config";

	return only_known(c, o, p, known) &&
	       get_str(c, o, p, "node_id", true, cfg->node_id, sizeof(cfg->node_id)) &&
	       get_str(c, o, p, "cidr", true, cfg->cidr, sizeof(cfg->cidr)) &&
	       get_str(c, o, p, "node_ip", true, cfg->node_ip, sizeof(cfg->node_ip)) &&
	       get_str(c, o, p, "slice_cidr", false, cfg->slice_cidr, sizeof(cfg->slice_cidr)) &&
	       get_str(c, o, p, "interface", true, cfg->interface, sizeof(cfg->interface)) &&
	       get_u16(c, o, p, "port", true, 1, &cfg->port) &&
	       get_key(c, o, p, "public_key", cfg->public_key) &&
	       get_key(c, o, p, "private_key", cfg->private_key) &&
	       get_bool(c, o, p, "is_leader", &cfg->is_leader) &&
	       get_int(c, o, p, "created_at", true, 0, MAX_TIME, &cfg->created_at) &&
	       get_str(c, o, p, "hostname", false, cfg->hostname, sizeof(cfg->hostname)) &&
	       get_str(c, o, p, "endpoint", false, cfg->endpoint, sizeof(cfg->endpoint));
}

static bool from_json_peer(struct ctx *c, json_object *o, const char *p, struct zl_state_peer *peer)
{
	static const char *const known[] = { "node_id", "public_key", "endpoint", "overlay_ip", "keepalive",
					     "hostname", "slice_cidr", NULL };

	peer->keepalive = ZL_STATE_DEFAULT_KEEPALIVE;
	return only_known(c, o, p, known) &&
	       get_str(c, o, p, "node_id", true, peer->node_id, sizeof(peer->node_id)) &&
	       get_key(c, o, p, "public_key", peer->public_key) &&
	       get_str(c, o, p, "endpoint", false, peer->endpoint, sizeof(peer->endpoint)) &&
	       get_str(c, o, p, "overlay_ip", true, peer->overlay_ip, sizeof(peer->overlay_ip)) &&
	       get_u16(c, o, p, "keepalive", false, 0, &peer->keepalive) &&
	       get_str(c, o, p, "hostname", false, peer->hostname, sizeof(peer->hostname)) &&
	       get_str(c, o, p, "slice_cidr", false, peer->slice_cidr, sizeof(peer->slice_cidr));
}

/* Fixed-length binary as hex (either case on input; we write lower case). */
static bool get_hex(struct ctx *c, json_object *obj, const char *path, const char *key, uint8_t *out, size_t len)
{
	json_object *v;
	const char *s, *end = NULL;
	size_t got = 0;

	if (!get(c, obj, path, key, json_type_string, true, &v))
		return false;
	s = json_object_get_string(v);
	if (strlen(s) != 2 * len || sodium_hex2bin(out, len, s, 2 * len, NULL, &got, &end) != 0 || got != len ||
	    end != s + 2 * len)
		return fail(c, path, key, "expected %zu hexadecimal digits", 2 * len);
	return true;
}

static bool from_json_token(struct ctx *c, json_object *o, const char *p, struct zl_state_token *t)
{
	static const char *const known[] = { "id", "secret_hash", "created_at", "expires_at", "max_uses", "uses",
					     "revoked", NULL };
	int64_t created = 0, expires = 0, max_uses = 0, uses = 0;
	bool ok;

	ok = only_known(c, o, p, known) && get_hex(c, o, p, "id", t->id, sizeof(t->id)) &&
	     get_hex(c, o, p, "secret_hash", t->secret_hash, sizeof(t->secret_hash)) &&
	     get_int(c, o, p, "created_at", true, 0, MAX_TIME, &created) &&
	     get_int(c, o, p, "expires_at", true, 1, MAX_TIME, &expires) &&
	     get_int(c, o, p, "max_uses", true, 1, UINT32_MAX, &max_uses) &&
	     get_int(c, o, p, "uses", true, 0, UINT32_MAX, &uses) && get_bool(c, o, p, "revoked", &t->revoked);
	t->created_at = (uint64_t)created;
	t->expires_at = (uint64_t)expires;
	t->max_uses = (uint32_t)max_uses;
	t->uses = (uint32_t)uses;
	return ok;
}

/* Allocates *items for the n entries of an array (NULL when empty). */
static bool alloc_items(struct ctx *c, const char *path, size_t n, size_t size, void **items)
{
	*items = n ? calloc(n, size) : NULL;
	if (n && !*items) {
		c->code = -ENOMEM;
		return fail(c, path, NULL, "out of memory");
	}
	return true;
}

/* Element i of an array, checked to be of type t; path receives "<list>[i]". */
static bool element(struct ctx *c, json_object *arr, const char *list, size_t i, enum json_type t,
		    char path[PATH_LEN], json_object **v)
{
	snprintf(path, PATH_LEN, "%s[%zu]", list, i);
	*v = json_object_array_get_idx(arr, i);
	if (!json_object_is_type(*v, t))
		return fail(c, path, NULL, "expected %s, got %s", type_name(t), type_name(json_object_get_type(*v)));
	return true;
}

static bool from_json_peers(struct ctx *c, json_object *arr, struct zl_state *s)
{
	size_t n = json_object_array_length(arr);
	char path[PATH_LEN];
	json_object *v;

	if (!alloc_items(c, "peers", n, sizeof(*s->peers), (void **)&s->peers))
		return false;
	s->n_peers = n;
	for (size_t i = 0; i < n; i++)
		if (!element(c, arr, "peers", i, json_type_object, path, &v) ||
		    !from_json_peer(c, v, path, &s->peers[i]))
			return false;
	return true;
}

static bool from_json_tokens(struct ctx *c, json_object *arr, struct zl_state *s)
{
	size_t n = json_object_array_length(arr);
	char path[PATH_LEN];
	json_object *v;

	if (!alloc_items(c, "tokens", n, sizeof(*s->tokens), (void **)&s->tokens))
		return false;
	s->n_tokens = n;
	for (size_t i = 0; i < n; i++)
		if (!element(c, arr, "tokens", i, json_type_object, path, &v) || !from_json_token(c, v, path, &s->tokens[i]))
			return false;
	return true;
}

static bool from_json_ip_allocator(struct ctx *c, json_object *o, struct zl_state_ip_allocator *a)
{
	static const char *const known[] = { "cidr", "allocated", NULL };
	const char *p = "ip_allocator", *list = "ip_allocator.allocated";
	char path[PATH_LEN];
	json_object *arr, *v;
	size_t n;

	if (!only_known(c, o, p, known) || !get_str(c, o, p, "cidr", true, a->cidr, sizeof(a->cidr)) ||
	    !get(c, o, p, "allocated", json_type_array, true, &arr))
		return false;
	n = json_object_array_length(arr);
	if (!alloc_items(c, list, n, sizeof(*a->allocated), (void **)&a->allocated))
		return false;
	a->n_allocated = n;
	a->present = true;
	for (size_t i = 0; i < n; i++)
		if (!element(c, arr, list, i, json_type_string, path, &v) ||
		    !copy_str(c, path, NULL, v, a->allocated[i].s, sizeof(a->allocated[i].s)))
			return false;
	return true;
}

/* Entry i of a [name, cidr] list of the slice allocator. */
static bool from_json_slice(struct ctx *c, json_object *arr, const char *list, size_t i, const char *word,
			    struct zl_state_slice *sl)
{
	char path[PATH_LEN];
	json_object *pair, *name, *cidr;

	if (!element(c, arr, list, i, json_type_array, path, &pair))
		return false;
	if (json_object_array_length(pair) != 2)
		return fail(c, path, NULL, "expected a [%s, cidr] pair", word);
	name = json_object_array_get_idx(pair, 0);
	cidr = json_object_array_get_idx(pair, 1);
	if (!json_object_is_type(name, json_type_string))
		return fail(c, path, word, "expected a string, got %s", type_name(json_object_get_type(name)));
	if (!json_object_is_type(cidr, json_type_string))
		return fail(c, path, "cidr", "expected a string, got %s", type_name(json_object_get_type(cidr)));
	return copy_str(c, path, word, name, sl->name, sizeof(sl->name)) &&
	       copy_str(c, path, "cidr", cidr, sl->cidr, sizeof(sl->cidr));
}

static bool from_json_slice_list(struct ctx *c, json_object *arr, bool service, struct zl_state_slice **items,
				 size_t *count)
{
	const char *list = service ? "slice_allocator.services" : "slice_allocator.assigned";
	size_t n = json_object_array_length(arr);

	if (!alloc_items(c, list, n, sizeof(**items), (void **)items))
		return false;
	*count = n;
	for (size_t i = 0; i < n; i++)
		if (!from_json_slice(c, arr, list, i, service ? "name" : "node", &(*items)[i]))
			return false;
	return true;
}

static bool from_json_slice_allocator(struct ctx *c, json_object *o, struct zl_state_slice_allocator *a)
{
	static const char *const known[] = { "cluster_cidr", "slice_prefix", "assigned", "services", NULL };
	const char *p = "slice_allocator";
	json_object *nodes, *services;
	int64_t prefix = 0;

	if (!only_known(c, o, p, known) ||
	    !get_str(c, o, p, "cluster_cidr", true, a->cluster_cidr, sizeof(a->cluster_cidr)) ||
	    !get_int(c, o, p, "slice_prefix", true, 0, 128, &prefix) ||
	    !get(c, o, p, "assigned", json_type_array, true, &nodes) ||
	    !get(c, o, p, "services", json_type_array, false, &services))
		return false;
	a->slice_prefix = (unsigned)prefix;
	a->present = true;
	return from_json_slice_list(c, nodes, false, &a->assigned, &a->n_assigned) &&
	       (!services || from_json_slice_list(c, services, true, &a->services, &a->n_services));
}

/* A string that must be one of names[] (NULL-terminated); *idx receives its index. */
static bool get_enum(struct ctx *c, json_object *obj, const char *path, const char *key,
		     const char *const names[], const char *want, size_t *idx)
{
	json_object *v;
	const char *s;

	if (!get(c, obj, path, key, json_type_string, true, &v))
		return false;
	s = json_object_get_string(v);
	for (*idx = 0; names[*idx]; ++*idx)
		if (!strcmp(s, names[*idx]))
			return true;
	return fail(c, path, key, "must be %s", want);
}

static bool from_json_dns_check(struct ctx *c, json_object *o, const char *p, struct zl_state_dns_check *k)
{
	static const char *const known[] = { "kind", "port", "path", "interval_s", "threshold", NULL };
	static const char *const kinds[] = { "tcp", "http", NULL };
	int64_t interval = 0, threshold = 0;
	size_t kind = 0;
	bool ok;

	ok = only_known(c, o, p, known) && get_enum(c, o, p, "kind", kinds, "\"tcp\" or \"http\"", &kind) &&
	     get_u16(c, o, p, "port", true, 1, &k->port) && get_str(c, o, p, "path", false, k->path, sizeof(k->path)) &&
	     get_int(c, o, p, "interval_s", true, 1, 3600, &interval) &&
	     get_int(c, o, p, "threshold", true, 1, 100, &threshold);
	k->kind = kind == 0 ? ZL_CHECK_TCP : ZL_CHECK_HTTP;
	k->interval_s = (uint32_t)interval;
	k->threshold = (uint32_t)threshold;
	return ok;
}

static bool from_json_dns_srv(struct ctx *c, json_object *o, const char *p, struct zl_state_dns_record *r)
{
	static const char *const known[] = { "priority", "weight", "port", "target", NULL };

	return only_known(c, o, p, known) && get_u16(c, o, p, "priority", true, 0, &r->priority) &&
	       get_u16(c, o, p, "weight", true, 0, &r->weight) && get_u16(c, o, p, "port", true, 1, &r->port) &&
	       get_str(c, o, p, "target", true, r->target, sizeof(r->target));
}

/* Types and presence only; the values are validate_dns_record's. The form (docs/state-format.md):
 * {name, kind: "addr", addr, ttl, owner?, check?} or {name, kind: "srv", srv: {priority, weight, port,
 * target}, ttl, owner?}. */
static bool from_json_dns_record(struct ctx *c, json_object *o, const char *p, struct zl_state_dns_record *r)
{
	static const char *const known[] = { "name", "kind", "addr", "srv", "ttl", "owner", "check", NULL };
	static const char *const kinds[] = { "addr", "srv", NULL };
	char sub[PATH_LEN];
	json_object *srv, *check, *addr;
	int64_t ttl = 0;
	size_t kind = 0;

	if (!only_known(c, o, p, known) || !get_str(c, o, p, "name", true, r->name, sizeof(r->name)) ||
	    !get_enum(c, o, p, "kind", kinds, "\"addr\" or \"srv\"", &kind) ||
	    !get_int(c, o, p, "ttl", true, 0, ZL_DNS_MAX_TTL, &ttl) ||
	    !get_str(c, o, p, "owner", false, r->owner, sizeof(r->owner)) ||
	    !get(c, o, p, "check", json_type_object, false, &check))
		return false;
	r->kind = kind == 0 ? ZL_DNS_ADDR : ZL_DNS_SRV;
	r->ttl = (uint32_t)ttl;
	if (r->kind == ZL_DNS_ADDR) {
		if (!get_str(c, o, p, "addr", true, r->addr, sizeof(r->addr)) ||
		    !get(c, o, p, "srv", json_type_object, false, &srv))
			return false;
		if (srv)
			return fail(c, p, "srv", "is only for kind \"srv\"");
	} else {
		if (!get(c, o, p, "srv", json_type_object, true, &srv) ||
		    !get(c, o, p, "addr", json_type_string, false, &addr))
			return false;
		if (addr)
			return fail(c, p, "addr", "is only for kind \"addr\"");
		sub_path(sub, p, "srv");
		if (!from_json_dns_srv(c, srv, sub, r))
			return false;
	}
	if (check && r->kind != ZL_DNS_ADDR)
		return fail(c, p, "check", "only address records can have a check");
	sub_path(sub, p, "check");
	return !check || from_json_dns_check(c, check, sub, &r->check);
}

static bool from_json_dns(struct ctx *c, json_object *arr, struct zl_state *s)
{
	size_t n = json_object_array_length(arr);
	char path[PATH_LEN];
	json_object *v;

	/* Refused before allocating: a hostile file must not make us reserve gigabytes. */
	if (n > ZL_DNS_MAX_RECORDS)
		return fail(c, "dns", NULL, "has %zu records, at most %d are allowed", n, ZL_DNS_MAX_RECORDS);
	if (!alloc_items(c, "dns", n, sizeof(*s->dns), (void **)&s->dns))
		return false;
	s->n_dns = n;
	for (size_t i = 0; i < n; i++)
		if (!element(c, arr, "dns", i, json_type_object, path, &v) ||
		    !from_json_dns_record(c, v, path, &s->dns[i]))
			return false;
	return true;
}

static bool check_version(struct ctx *c, json_object *root)
{
	int64_t v = 0;

	if (!get_int(c, root, "", "version", true, INT64_MIN, INT64_MAX, &v))
		return false;
	if (v > ZL_STATE_VERSION) {
		c->code = -ENOTSUP;
		return fail(c, "", "version", "format version %" PRId64 " is newer than this program supports (%d); "
			    "upgrade zl-overlay", v, ZL_STATE_VERSION);
	}
	if (v < 1)
		return fail(c, "", "version", "unknown format version %" PRId64, v);
	return true;
}

static bool from_json(struct ctx *c, json_object *root, struct zl_state *s)
{
	static const char *const known[] = { "version", "config", "peers", "ip_allocator", "slice_allocator",
					     "tokens", "dns", NULL };
	json_object *v;

	if (!json_object_is_type(root, json_type_object))
		return fail(c, "", NULL, "the document is %s, expected an object", type_name(json_object_get_type(root)));
	/* The version first: a newer file must say so, not fail on a field it added. */
	if (!check_version(c, root) || !only_known(c, root, "", known))
		return false;
	if (!get(c, root, "", "config", json_type_object, true, &v) || !from_json_config(c, v, &s->config))
		return false;
	if (!get(c, root, "", "peers", json_type_array, true, &v) || !from_json_peers(c, v, s))
		return false;
	if (!get(c, root, "", "ip_allocator", json_type_object, false, &v) ||
	    (v && !from_json_ip_allocator(c, v, &s->ip_allocator)))
		return false;
	if (!get(c, root, "", "slice_allocator", json_type_object, false, &v) ||
	    (v && !from_json_slice_allocator(c, v, &s->slice_allocator)))
		return false;
	if (!get(c, root, "", "tokens", json_type_array, false, &v) || (v && !from_json_tokens(c, v, s)))
		return false;
	if (!get(c, root, "", "dns", json_type_array, false, &v) || (v && !from_json_dns(c, v, s)))
		return false;
	return true;
}

/* ---- step 1: bytes -> JSON ---- */

static bool all_space(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != ' ' && p[i] != '\t' && p[i] != '\n' && p[i] != '\r')
			return false;
	return true;
}

/* Overwrites the private key's string in a parsed or built tree before json-c frees it. */
static void wipe_json_secret(json_object *root)
{
	json_object *cfg, *key;

	if (json_object_object_get_ex(root, "config", &cfg) && json_object_is_type(cfg, json_type_object) &&
	    json_object_object_get_ex(cfg, "private_key", &key) && json_object_is_type(key, json_type_string))
		sodium_memzero((char *)json_object_get_string(key), (size_t)json_object_get_string_len(key));
}

/* json-c keeps the last string it scanned in the tokener's scratch buffer; the private key may be there. */
static void free_tokener(struct json_tokener *tok)
{
	if (tok->pb && tok->pb->buf)
		sodium_memzero(tok->pb->buf, (size_t)tok->pb->size);
	json_tokener_free(tok);
}

static json_object *parse_json(struct ctx *c, const char *buf, size_t len)
{
	struct json_tokener *tok = json_tokener_new();
	enum json_tokener_error je;
	json_object *root;
	size_t end;

	if (!tok) {
		c->code = -ENOMEM;
		fail(c, "", NULL, "out of memory");
		return NULL;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	root = json_tokener_parse_ex(tok, buf, (int)len);
	je = json_tokener_get_error(tok);
	end = json_tokener_get_parse_end(tok);
	if (!root && je == json_tokener_continue)
		fail(c, "", NULL, all_space(buf, len) ? "the file is empty" : "unexpected end of file (truncated JSON)");
	else if (!root)
		fail(c, "", NULL, "invalid JSON at byte %zu: %s", end, json_tokener_error_desc(je));
	else if (!all_space(buf + end, len - end)) {
		fail(c, "", NULL, "unexpected data after the JSON document at byte %zu", end);
		wipe_json_secret(root);
		json_object_put(root);
		root = NULL;
	}
	free_tokener(tok);
	return root;
}

static int read_file(struct ctx *c, const char *path, char **buf, size_t *len)
{
	int e = zl_file_read_capped(path, ZL_FILE_READ_MAX, buf, len);

	c->code = e;
	if (e == -EFBIG)
		fail(c, "", NULL, "%s is larger than %d MiB", path, ZL_FILE_READ_MAX >> 20);
	else if (e == -EINVAL)
		fail(c, "", NULL, "%s is not a regular file", path);
	else if (e)
		fail(c, "", NULL, "cannot read %s: %s", path, strerror(-e));
	return e;
}

int zl_state_load(const char *path, struct zl_state *out, char *err, size_t errlen)
{
	struct ctx c = { err, errlen, -EINVAL, NULL };
	struct zl_state tmp;
	json_object *root;
	char *buf = NULL;
	size_t len = 0;
	bool ok;

	memset(out, 0, sizeof(*out));
	memset(&tmp, 0, sizeof(tmp));
	if (read_file(&c, path, &buf, &len))
		return c.code;
	c.code = -EINVAL;
	root = parse_json(&c, buf, len);
	sodium_memzero(buf, len);
	free(buf);
	if (!root)
		return c.code;
	ok = from_json(&c, root, &tmp) && validate(&c, &tmp);
	wipe_json_secret(root);
	json_object_put(root);
	if (!ok) {
		zl_state_free(&tmp);
		return c.code;
	}
	canonicalize(&tmp);
	*out = tmp;
	sodium_memzero(&tmp, sizeof(tmp));
	return 0;
}

/* ---- save: struct -> JSON ---- */

/* Adds key = v to obj, remembering an allocation failure (json-c returns NULL) in *oom. */
static void put(json_object *obj, const char *key, json_object *v, bool *oom)
{
	if (!v || json_object_object_add(obj, key, v) != 0) {
		json_object_put(v);
		*oom = true;
	}
}

static void put_str(json_object *obj, const char *key, const char *s, bool *oom)
{
	put(obj, key, json_object_new_string(s), oom);
}

static void put_opt_str(json_object *obj, const char *key, const char *s, bool *oom)
{
	if (s[0])
		put_str(obj, key, s, oom);
}

static void put_key(json_object *obj, const char *key, const uint8_t k[ZL_KEY_LEN], bool *oom)
{
	char b64[ZL_KEY_B64_LEN + 1];

	zl_state_key_encode(k, b64);
	put_str(obj, key, b64, oom);
	sodium_memzero(b64, sizeof(b64));
}

static void put_addr(json_object *obj, const char *key, const char *s, bool *oom)
{
	char canon[ZL_ADDR_STRLEN];

	snprintf(canon, sizeof(canon), "%s", s);
	canon_addr(canon);
	put_str(obj, key, canon, oom);
}

static void put_prefix(json_object *obj, const char *key, const char *s, bool *oom)
{
	char canon[ZL_CIDR_STRLEN];

	snprintf(canon, sizeof(canon), "%s", s);
	canon_prefix(canon);
	put_opt_str(obj, key, canon, oom);
}

static void put_hostname(json_object *obj, const char *key, const char *s, bool *oom)
{
	char canon[ZL_HOSTNAME_SIZE];

	snprintf(canon, sizeof(canon), "%s", s);
	canon_hostname(canon);
	put_opt_str(obj, key, canon, oom);
}

static void append(json_object *arr, json_object *v, bool *oom)
{
	if (!v || json_object_array_add(arr, v) != 0) {
		json_object_put(v);
		*oom = true;
	}
}

static json_object *config_json(const struct zl_state_config *cfg, bool *oom)
{
	json_object *o = json_object_new_object();

	if (!o)
		return NULL;
	put_str(o, "node_id", cfg->node_id, oom);
	put_prefix(o, "cidr", cfg->cidr, oom);
	put_addr(o, "node_ip", cfg->node_ip, oom);
	put_prefix(o, "slice_cidr", cfg->slice_cidr, oom);
	put_str(o, "interface", cfg->interface, oom);
	put(o, "port", json_object_new_int(cfg->port), oom);
	put_key(o, "public_key", cfg->public_key, oom);
	put_key(o, "private_key", cfg->private_key, oom);
	put(o, "is_leader", json_object_new_boolean(cfg->is_leader), oom);
	put(o, "created_at", json_object_new_int64(cfg->created_at), oom);
	put_hostname(o, "hostname", cfg->hostname, oom);
	put_opt_str(o, "endpoint", cfg->endpoint, oom);
	return o;
}

static json_object *peer_json(const struct zl_state_peer *p, bool *oom)
{
	json_object *o = json_object_new_object();

	if (!o)
		return NULL;
	put_str(o, "node_id", p->node_id, oom);
	put_key(o, "public_key", p->public_key, oom);
	put_opt_str(o, "endpoint", p->endpoint, oom);
	put_addr(o, "overlay_ip", p->overlay_ip, oom);
	put(o, "keepalive", json_object_new_int(p->keepalive), oom);
	put_hostname(o, "hostname", p->hostname, oom);
	put_prefix(o, "slice_cidr", p->slice_cidr, oom);
	return o;
}

static void put_hex(json_object *obj, const char *key, const uint8_t *b, size_t len, bool *oom)
{
	char hex[2 * ZL_STATE_TOKEN_HASH_LEN + 1];

	sodium_bin2hex(hex, sizeof(hex), b, len);
	put_str(obj, key, hex, oom);
}

static json_object *token_json(const struct zl_state_token *t, bool *oom)
{
	json_object *o = json_object_new_object();

	if (!o)
		return NULL;
	put_hex(o, "id", t->id, sizeof(t->id), oom);
	put_hex(o, "secret_hash", t->secret_hash, sizeof(t->secret_hash), oom);
	put(o, "created_at", json_object_new_int64((int64_t)t->created_at), oom);
	put(o, "expires_at", json_object_new_int64((int64_t)t->expires_at), oom);
	put(o, "max_uses", json_object_new_int64(t->max_uses), oom);
	put(o, "uses", json_object_new_int64(t->uses), oom);
	put(o, "revoked", json_object_new_boolean(t->revoked), oom);
	return o;
}

static json_object *ip_allocator_json(const struct zl_state_ip_allocator *a, bool *oom)
{
	json_object *o = json_object_new_object(), *arr = json_object_new_array_ext((int)a->n_allocated);
	char canon[ZL_ADDR_STRLEN];

	if (!o || !arr) {
		json_object_put(o);
		json_object_put(arr);
		return NULL;
	}
	put_prefix(o, "cidr", a->cidr, oom);
	for (size_t i = 0; i < a->n_allocated; i++) {
		snprintf(canon, sizeof(canon), "%s", a->allocated[i].s);
		canon_addr(canon);
		append(arr, json_object_new_string(canon), oom);
	}
	put(o, "allocated", arr, oom);
	return o;
}

static json_object *slice_json(const struct zl_state_slice *sl, bool *oom)
{
	json_object *pair = json_object_new_array_ext(2);
	char canon[ZL_CIDR_STRLEN];

	if (!pair)
		return NULL;
	snprintf(canon, sizeof(canon), "%s", sl->cidr);
	canon_prefix(canon);
	append(pair, json_object_new_string(sl->name), oom);
	append(pair, json_object_new_string(canon), oom);
	return pair;
}

static json_object *slice_list_json(const struct zl_state_slice *items, size_t n, bool *oom)
{
	json_object *arr = json_object_new_array_ext((int)n);

	for (size_t i = 0; arr && i < n; i++)
		append(arr, slice_json(&items[i], oom), oom);
	return arr;
}

static json_object *slice_allocator_json(const struct zl_state_slice_allocator *a, bool *oom)
{
	json_object *o = json_object_new_object();

	if (!o)
		return NULL;
	put_prefix(o, "cluster_cidr", a->cluster_cidr, oom);
	put(o, "slice_prefix", json_object_new_int((int)a->slice_prefix), oom);
	put(o, "assigned", slice_list_json(a->assigned, a->n_assigned, oom), oom);
	if (a->n_services)
		put(o, "services", slice_list_json(a->services, a->n_services, oom), oom);
	return o;
}

static json_object *dns_check_json(const struct zl_state_dns_check *k, bool *oom)
{
	json_object *o = json_object_new_object();

	if (!o)
		return NULL;
	put_str(o, "kind", k->kind == ZL_CHECK_HTTP ? "http" : "tcp", oom);
	put(o, "port", json_object_new_int(k->port), oom);
	put_opt_str(o, "path", k->path, oom);
	put(o, "interval_s", json_object_new_int64(k->interval_s), oom);
	put(o, "threshold", json_object_new_int64(k->threshold), oom);
	return o;
}

static json_object *dns_record_json(const struct zl_state_dns_record *r, bool *oom)
{
	json_object *o = json_object_new_object(), *srv;

	if (!o)
		return NULL;
	put_str(o, "name", r->name, oom);
	put_str(o, "kind", r->kind == ZL_DNS_SRV ? "srv" : "addr", oom);
	if (r->kind == ZL_DNS_SRV) {
		srv = json_object_new_object();
		if (srv) {
			put(srv, "priority", json_object_new_int(r->priority), oom);
			put(srv, "weight", json_object_new_int(r->weight), oom);
			put(srv, "port", json_object_new_int(r->port), oom);
			put_str(srv, "target", r->target, oom);
		}
		put(o, "srv", srv, oom);
	} else {
		put_addr(o, "addr", r->addr, oom);
	}
	put(o, "ttl", json_object_new_int64(r->ttl), oom);
	put_opt_str(o, "owner", r->owner, oom);
	if (r->kind == ZL_DNS_ADDR && r->check.kind != ZL_CHECK_NONE)
		put(o, "check", dns_check_json(&r->check, oom), oom);
	return o;
}

static json_object *state_json(const struct zl_state *s, bool *oom)
{
	json_object *root = json_object_new_object(), *peers, *tokens;

	if (!root)
		return NULL;
	put(root, "version", json_object_new_int(ZL_STATE_VERSION), oom);
	put(root, "config", config_json(&s->config, oom), oom);
	peers = json_object_new_array_ext((int)s->n_peers);
	for (size_t i = 0; peers && i < s->n_peers; i++)
		append(peers, peer_json(&s->peers[i], oom), oom);
	put(root, "peers", peers, oom);
	if (s->ip_allocator.present)
		put(root, "ip_allocator", ip_allocator_json(&s->ip_allocator, oom), oom);
	if (s->slice_allocator.present)
		put(root, "slice_allocator", slice_allocator_json(&s->slice_allocator, oom), oom);
	tokens = json_object_new_array_ext((int)s->n_tokens);
	for (size_t i = 0; tokens && i < s->n_tokens; i++)
		append(tokens, token_json(&s->tokens[i], oom), oom);
	put(root, "tokens", tokens, oom);
	/* Written only when there are records: a file without any stays as older versions wrote it. */
	if (s->n_dns) {
		json_object *dns = json_object_new_array_ext((int)s->n_dns);

		for (size_t i = 0; dns && i < s->n_dns; i++)
			append(dns, dns_record_json(&s->dns[i], oom), oom);
		put(root, "dns", dns, oom);
	}
	return root;
}

/* The directory part of path, created 0700 if missing ("." needs nothing). */
static int ensure_dir(const char *path)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	size_t n;

	if (!slash || slash == path)
		return 0;
	n = (size_t)(slash - path);
	if (n >= sizeof(dir))
		return -ENAMETOOLONG;
	memcpy(dir, path, n);
	dir[n] = '\0';
	return zl_dir_create(dir, ZL_STATE_DIR_MODE);
}

/* Writes text plus a final newline (so the file is a proper text file for cat and editors). */
static int write_text(const char *path, const char *text, size_t len)
{
	char *buf = malloc(len + 1);
	int e;

	if (!buf)
		return -ENOMEM;
	memcpy(buf, text, len);
	buf[len] = '\n';
	e = zl_file_write_atomic(path, buf, len + 1, ZL_STATE_FILE_MODE);
	sodium_memzero(buf, len + 1);
	free(buf);
	return e;
}

int zl_state_save(const char *path, const struct zl_state *s)
{
	struct ctx c = { NULL, 0, -EINVAL, NULL };
	json_object *root;
	const char *text;
	size_t len;
	bool oom = false;
	int e;

	if (!validate(&c, s))
		return c.code;
	e = ensure_dir(path);
	if (e)
		return e;
	root = state_json(s, &oom);
	if (!root || oom) {
		if (root)
			wipe_json_secret(root);
		json_object_put(root);
		return -ENOMEM;
	}
	text = json_object_to_json_string_length(root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
						 JSON_C_TO_STRING_NOSLASHESCAPE, &len);
	e = text ? write_text(path, text, len) : -ENOMEM;
	/* The serialized text (held by root) and the key's string object both contain the private key. */
	if (text)
		sodium_memzero((char *)text, len);
	wipe_json_secret(root);
	json_object_put(root);
	return e;
}

void zl_state_free(struct zl_state *s)
{
	if (!s)
		return;
	free(s->peers);
	free(s->tokens);
	free(s->ip_allocator.allocated);
	free(s->slice_allocator.assigned);
	free(s->slice_allocator.services);
	free(s->dns);
	sodium_memzero(s, sizeof(*s));
}

/* ---- one service record on its own (registry, membership channel, control API) ---- */

bool zl_state_dns_validate(const struct zl_state_dns_record *r, char *err, size_t errlen)
{
	struct ctx c = { err, errlen, -EINVAL, "" };

	return validate_dns_record(&c, "", r, NULL);
}

json_object *zl_state_dns_to_json(const struct zl_state_dns_record *r)
{
	bool oom = false;
	json_object *o = dns_record_json(r, &oom);

	if (oom) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

bool zl_state_dns_from_json(json_object *o, struct zl_state_dns_record *out, char *err, size_t errlen)
{
	struct ctx c = { err, errlen, -EINVAL, "" };
	struct zl_state_dns_record r;

	memset(&r, 0, sizeof(r));
	if (!json_object_is_type(o, json_type_object))
		return fail(&c, "", NULL, "expected an object, got %s", type_name(json_object_get_type(o)));
	if (!from_json_dns_record(&c, o, "", &r) || !validate_dns_record(&c, "", &r, NULL))
		return false;
	if (r.kind == ZL_DNS_ADDR)
		canon_addr(r.addr);
	*out = r;
	return true;
}
