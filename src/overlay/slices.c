/* Node slices and service subnets (see slices.h).
 *
 * State: `taken` holds every slot that belongs to someone, as runs; `owners` is a dense array of
 * (kind, name, first slot, block size) and `table` an open-addressing hash index over it (linear
 * probing, backward-shift deletion, load <= 1/2) keyed by the same FNV-1a hash that picks the start
 * slot. Removing an owner moves the last array element into its place, so the array stays dense and
 * a snapshot is one pass. Every mutation reserves its memory before changing anything, so an -ENOMEM
 * leaves the allocator as it was. */
#include "overlay/slices.h"
#include "overlay/ipam.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define FNV_OFFSET_BASIS 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL

struct owner {
	char *name;
	uint64_t hash;       /* FNV-1a of the name ("svc:" + name for services) */
	zl_u128 slot;        /* first slot of the block */
	uint8_t kind;
	uint8_t block_bits;  /* the block is 2^block_bits slots */
};

struct zl_slices {
	struct zl_prefix cluster;
	unsigned slice_prefix;
	unsigned slot_bits;       /* k: 2^k slots */
	unsigned slot_shift;      /* host bits of a slice: slot i starts at offset i << slot_shift */
	struct zl_ipam_runs taken;
	struct owner *owners;
	size_t n, cap;
	uint32_t *table;          /* owner index + 1, 0 = empty */
	size_t table_cap;         /* a power of two, or 0 */
	size_t counts[2];         /* by kind */
};

static uint64_t fnv_update(uint64_t h, const void *data, size_t len)
{
	const uint8_t *p = data;

	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= FNV_PRIME;
	}
	return h;
}

uint64_t zl_slices_fnv1a64(const void *data, size_t len)
{
	return fnv_update(FNV_OFFSET_BASIS, data, len);
}

static uint64_t name_hash(enum zl_slice_kind kind, const char *name)
{
	uint64_t h = FNV_OFFSET_BASIS;

	if (kind == ZL_SLICE_SERVICE)
		h = fnv_update(h, ZL_SLICES_SERVICE_HASH_PREFIX, strlen(ZL_SLICES_SERVICE_HASH_PREFIX));
	return fnv_update(h, name, strlen(name));
}

static const char *kind_word(enum zl_slice_kind kind)
{
	return kind == ZL_SLICE_NODE ? "node" : "service";
}

/* ---- Owner index ---- */

static size_t table_home(const struct zl_slices *s, uint64_t hash)
{
	return (size_t)hash & (s->table_cap - 1);
}

/* The table position holding an owner of this kind and name, or SIZE_MAX. */
static size_t table_find(const struct zl_slices *s, enum zl_slice_kind kind, const char *name, uint64_t hash)
{
	const struct owner *o;

	if (!s->table_cap)
		return SIZE_MAX;
	for (size_t i = table_home(s, hash);; i = (i + 1) & (s->table_cap - 1)) {
		if (!s->table[i])
			return SIZE_MAX;
		o = &s->owners[s->table[i] - 1];
		if (o->hash == hash && o->kind == kind && strcmp(o->name, name) == 0)
			return i;
	}
}

/* The table position holding owner index idx (which must be present). */
static size_t table_pos_of(const struct zl_slices *s, size_t idx)
{
	size_t i = table_home(s, s->owners[idx].hash);

	while (s->table[i] != idx + 1)
		i = (i + 1) & (s->table_cap - 1);
	return i;
}

static void table_put(struct zl_slices *s, size_t idx)
{
	size_t i = table_home(s, s->owners[idx].hash);

	while (s->table[i])
		i = (i + 1) & (s->table_cap - 1);
	s->table[i] = (uint32_t)(idx + 1);
}

/* Backward-shift deletion: later members of the probe chain move up into the hole when the hole
 * lies between their home and their slot, so lookups never need tombstones. */
static void table_erase(struct zl_slices *s, size_t pos)
{
	size_t mask = s->table_cap - 1, j = pos, home;

	s->table[pos] = 0;
	for (;;) {
		j = (j + 1) & mask;
		if (!s->table[j])
			return;
		home = table_home(s, s->owners[s->table[j] - 1].hash);
		if (((j - home) & mask) >= ((j - pos) & mask)) {
			s->table[pos] = s->table[j];
			s->table[j] = 0;
			pos = j;
		}
	}
}

/* Makes room for one more owner (array and table), rehashing when the load would pass 1/2. */
static int reserve_one(struct zl_slices *s)
{
	size_t ncap, tcap;
	struct owner *owners;
	uint32_t *table;

	if (s->n >= UINT32_MAX - 1)
		return -ENOSPC;
	if (s->n == s->cap) {
		ncap = s->cap ? 2 * s->cap : 16;
		owners = realloc(s->owners, ncap * sizeof(*owners));
		if (!owners)
			return -ENOMEM;
		s->owners = owners;
		s->cap = ncap;
	}
	if (2 * (s->n + 1) <= s->table_cap)
		return 0;
	tcap = s->table_cap ? 2 * s->table_cap : 32;
	table = calloc(tcap, sizeof(*table));
	if (!table)
		return -ENOMEM;
	free(s->table);
	s->table = table;
	s->table_cap = tcap;
	for (size_t i = 0; i < s->n; i++)
		table_put(s, i);
	return 0;
}

/* Takes the block of 2^block_bits slots at slot for a new owner. -EEXIST if any slot is taken. */
static int add_owner(struct zl_slices *s, enum zl_slice_kind kind, const char *name, uint64_t hash, zl_u128 slot,
		     unsigned block_bits)
{
	struct owner *o;
	char *copy;
	int r = reserve_one(s);

	if (r)
		return r;
	copy = strdup(name);
	if (!copy)
		return -ENOMEM;
	r = zl_ipam_runs_add(&s->taken, slot, slot + zl_u128_low_mask(block_bits));
	if (r) {
		free(copy);
		return r;
	}
	o = &s->owners[s->n];
	o->name = copy;
	o->hash = hash;
	o->slot = slot;
	o->kind = (uint8_t)kind;
	o->block_bits = (uint8_t)block_bits;
	table_put(s, s->n);
	s->n++;
	s->counts[kind]++;
	return 0;
}

/* Frees the owner at table position pos and its slots. Only -ENOMEM (splitting a run), before any change. */
static int remove_owner(struct zl_slices *s, size_t pos)
{
	size_t idx = s->table[pos] - 1, last = s->n - 1;
	struct owner *o = &s->owners[idx];
	int r = zl_ipam_runs_remove(&s->taken, o->slot, o->slot + zl_u128_low_mask(o->block_bits));

	if (r)
		return r;
	s->counts[o->kind]--;
	free(o->name);
	table_erase(s, pos);
	if (idx != last) {
		s->table[table_pos_of(s, last)] = (uint32_t)(idx + 1);
		s->owners[idx] = s->owners[last];
	}
	s->n--;
	return 0;
}

/* ---- Geometry ---- */

static void slot_prefix(const struct zl_slices *s, zl_u128 slot, unsigned block_bits, struct zl_prefix *out)
{
	struct zl_prefix p;

	zl_prefix_at(&s->cluster, slot << s->slot_shift, &p.ip);
	p.len = (uint8_t)(s->slice_prefix - block_bits);
	*out = p;
}

static int check_geometry(const struct zl_prefix *cluster, unsigned slice_prefix, char *err, size_t errlen)
{
	char text[ZL_PREFIX_STRLEN];
	unsigned bits = zl_ip_bits(cluster->ip.family);

	if (!zl_prefix_valid(cluster)) {
		zl_cidr_errorf(err, errlen, "invalid cluster CIDR");
		return -EINVAL;
	}
	if (!zl_prefix_is_network(cluster)) {
		zl_cidr_errorf(err, errlen, "cluster CIDR %s has host bits set", zl_prefix_format(cluster, text));
		return -EINVAL;
	}
	if (slice_prefix <= cluster->len) {
		zl_cidr_errorf(err, errlen, "slice prefix /%u must be longer than the cluster prefix /%u", slice_prefix,
			       cluster->len);
		return -EINVAL;
	}
	if (slice_prefix > bits) {
		zl_cidr_errorf(err, errlen, "slice prefix /%u exceeds %u for %s", slice_prefix, bits,
			       bits == 32 ? "IPv4" : "IPv6");
		return -EINVAL;
	}
	return 0;
}

int zl_slices_new(const struct zl_prefix *cluster, unsigned slice_prefix, struct zl_slices **out, char *err,
		  size_t errlen)
{
	struct zl_slices *s;
	int r;

	if (err && errlen)
		err[0] = '\0';
	r = check_geometry(cluster, slice_prefix, err, errlen);
	if (r)
		return r;
	s = calloc(1, sizeof(*s));
	if (!s) {
		zl_cidr_errorf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	s->cluster = *cluster;
	s->slice_prefix = slice_prefix;
	s->slot_bits = slice_prefix - cluster->len;
	s->slot_shift = zl_ip_bits(cluster->ip.family) - slice_prefix;
	zl_ipam_runs_init(&s->taken);
	*out = s;
	return 0;
}

void zl_slices_free(struct zl_slices *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++)
		free(s->owners[i].name);
	free(s->owners);
	free(s->table);
	zl_ipam_runs_clear(&s->taken);
	free(s);
}

const struct zl_prefix *zl_slices_cluster(const struct zl_slices *s)
{
	return &s->cluster;
}

unsigned zl_slices_slice_prefix(const struct zl_slices *s)
{
	return s->slice_prefix;
}

zl_u128 zl_slices_slot_count(const struct zl_slices *s)
{
	return s->slot_bits >= 128 ? ZL_U128_MAX : (zl_u128)1 << s->slot_bits;
}

size_t zl_slices_count(const struct zl_slices *s, enum zl_slice_kind kind)
{
	return kind == ZL_SLICE_NODE || kind == ZL_SLICE_SERVICE ? s->counts[kind] : 0;
}

/* ---- Assign, release, lookup ---- */

static bool name_ok(const char *name)
{
	size_t len = name ? strnlen(name, ZL_SLICES_NAME_MAX + 1) : 0;

	return len >= 1 && len <= ZL_SLICES_NAME_MAX;
}

static int bad_name(enum zl_slice_kind kind, char *err, size_t errlen)
{
	zl_cidr_errorf(err, errlen, "%s %s must be 1 to %d bytes long", kind_word(kind),
		       kind == ZL_SLICE_NODE ? "id" : "name", ZL_SLICES_NAME_MAX);
	return -EINVAL;
}

/* The first free block of 2^block_bits slots, probing linearly from the block the hash picks. */
static bool probe(const struct zl_slices *s, uint64_t hash, unsigned block_bits, zl_u128 *slot)
{
	zl_u128 start = ((zl_u128)hash & zl_u128_low_mask(s->slot_bits - block_bits)) << block_bits;
	zl_u128 last = zl_u128_low_mask(s->slot_bits);

	return zl_ipam_runs_find_free(&s->taken, start, last, block_bits, slot) ||
	       (start > 0 && zl_ipam_runs_find_free(&s->taken, 0, start - 1, block_bits, slot));
}

static int assign(struct zl_slices *s, enum zl_slice_kind kind, const char *name, unsigned block_bits,
		  struct zl_prefix *out, char *err, size_t errlen)
{
	const struct owner *o;
	uint64_t hash;
	zl_u128 slot;
	size_t pos;
	int r;

	if (!name_ok(name))
		return bad_name(kind, err, errlen);
	hash = name_hash(kind, name);
	pos = table_find(s, kind, name, hash);
	if (pos != SIZE_MAX) {
		o = &s->owners[s->table[pos] - 1];
		if (o->block_bits != block_bits) {
			zl_cidr_errorf(err, errlen, "%s %.64s already has a /%u subnet", kind_word(kind), name,
				       s->slice_prefix - o->block_bits);
			return -EEXIST;
		}
		slot_prefix(s, o->slot, o->block_bits, out);
		return 0;
	}
	if (!probe(s, hash, block_bits, &slot)) {
		zl_cidr_errorf(err, errlen, "no available addresses");
		return -ENOSPC;
	}
	r = add_owner(s, kind, name, hash, slot, block_bits);
	if (r) {
		zl_cidr_errorf(err, errlen, r == -ENOMEM ? "out of memory" : "too many slices");
		return r;
	}
	slot_prefix(s, slot, block_bits, out);
	return 0;
}

static int release(struct zl_slices *s, enum zl_slice_kind kind, const char *name, char *err, size_t errlen)
{
	size_t pos;
	int r;

	if (!name_ok(name))
		return bad_name(kind, err, errlen);
	pos = table_find(s, kind, name, name_hash(kind, name));
	if (pos == SIZE_MAX) {
		zl_cidr_errorf(err, errlen, "%s %.64s has no slice", kind_word(kind), name);
		return -ENOENT;
	}
	r = remove_owner(s, pos);
	if (r)
		zl_cidr_errorf(err, errlen, "out of memory");
	return r;
}

static bool lookup(const struct zl_slices *s, enum zl_slice_kind kind, const char *name, struct zl_prefix *out)
{
	const struct owner *o;
	size_t pos;

	if (!name_ok(name))
		return false;
	pos = table_find(s, kind, name, name_hash(kind, name));
	if (pos == SIZE_MAX)
		return false;
	o = &s->owners[s->table[pos] - 1];
	if (out)
		slot_prefix(s, o->slot, o->block_bits, out);
	return true;
}

int zl_slices_assign(struct zl_slices *s, const char *node_id, struct zl_prefix *out, char *err, size_t errlen)
{
	if (err && errlen)
		err[0] = '\0';
	return assign(s, ZL_SLICE_NODE, node_id, 0, out, err, errlen);
}

int zl_slices_release(struct zl_slices *s, const char *node_id, char *err, size_t errlen)
{
	if (err && errlen)
		err[0] = '\0';
	return release(s, ZL_SLICE_NODE, node_id, err, errlen);
}

bool zl_slices_lookup(const struct zl_slices *s, const char *node_id, struct zl_prefix *out)
{
	return lookup(s, ZL_SLICE_NODE, node_id, out);
}

int zl_slices_assign_service(struct zl_slices *s, const char *name, unsigned prefix_len, struct zl_prefix *out,
			     char *err, size_t errlen)
{
	if (err && errlen)
		err[0] = '\0';
	if (prefix_len == 0)
		prefix_len = s->slice_prefix;
	if (prefix_len <= s->cluster.len || prefix_len > s->slice_prefix) {
		zl_cidr_errorf(err, errlen, "service subnet prefix /%u must be longer than /%u and at most /%u",
			       prefix_len, s->cluster.len, s->slice_prefix);
		return -EINVAL;
	}
	return assign(s, ZL_SLICE_SERVICE, name, s->slice_prefix - prefix_len, out, err, errlen);
}

int zl_slices_release_service(struct zl_slices *s, const char *name, char *err, size_t errlen)
{
	if (err && errlen)
		err[0] = '\0';
	return release(s, ZL_SLICE_SERVICE, name, err, errlen);
}

bool zl_slices_lookup_service(const struct zl_slices *s, const char *name, struct zl_prefix *out)
{
	return lookup(s, ZL_SLICE_SERVICE, name, out);
}

/* ---- Snapshot and restore ---- */

void zl_slices_snapshot_clear(struct zl_slices_snapshot *snap)
{
	for (size_t i = 0; i < snap->n; i++)
		free(snap->entries[i].name);
	free(snap->entries);
	snap->entries = NULL;
	snap->n = 0;
}

static int entry_cmp(const void *a, const void *b)
{
	return zl_ip_compare(&((const struct zl_slices_entry *)a)->prefix.ip,
			     &((const struct zl_slices_entry *)b)->prefix.ip);
}

int zl_slices_snapshot(const struct zl_slices *s, struct zl_slices_snapshot *snap)
{
	struct zl_slices_entry *e;

	memset(snap, 0, sizeof(*snap));
	snap->cluster = s->cluster;
	snap->slice_prefix = s->slice_prefix;
	if (!s->n)
		return 0;
	snap->entries = calloc(s->n, sizeof(*snap->entries));
	if (!snap->entries)
		return -ENOMEM;
	for (size_t i = 0; i < s->n; i++) {
		e = &snap->entries[i];
		e->name = strdup(s->owners[i].name);
		if (!e->name) {
			snap->n = i;
			zl_slices_snapshot_clear(snap);
			return -ENOMEM;
		}
		e->kind = (enum zl_slice_kind)s->owners[i].kind;
		slot_prefix(s, s->owners[i].slot, s->owners[i].block_bits, &e->prefix);
	}
	snap->n = s->n;
	/* Blocks never overlap, so their network addresses are distinct and the order is total. */
	qsort(snap->entries, snap->n, sizeof(*snap->entries), entry_cmp);
	return 0;
}

/* Checks one snapshot entry against the allocator built so far and adds it. */
static int restore_entry(struct zl_slices *s, const struct zl_slices_entry *e, char *err, size_t errlen)
{
	char text[ZL_PREFIX_STRLEN], ctext[ZL_PREFIX_STRLEN];
	const char *what;
	unsigned block_bits;
	uint64_t hash;
	zl_u128 slot;
	int r;

	if (e->kind != ZL_SLICE_NODE && e->kind != ZL_SLICE_SERVICE) {
		zl_cidr_errorf(err, errlen, "snapshot entry of unknown kind %d", (int)e->kind);
		return -EINVAL;
	}
	if (!name_ok(e->name))
		return bad_name(e->kind, err, errlen);
	what = kind_word(e->kind);
	zl_prefix_format(&e->prefix, text);
	if (e->prefix.ip.family != s->cluster.ip.family || !zl_prefix_valid(&e->prefix)) {
		zl_cidr_errorf(err, errlen, "%s %.64s: %s is not of the cluster's address family", what, e->name, text);
		return -EINVAL;
	}
	if (e->kind == ZL_SLICE_NODE ? e->prefix.len != s->slice_prefix
				     : e->prefix.len <= s->cluster.len || e->prefix.len > s->slice_prefix) {
		zl_cidr_errorf(err, errlen, "%s %.64s: %s does not have the slice prefix /%u", what, e->name, text,
			       s->slice_prefix);
		return -EINVAL;
	}
	if (!zl_prefix_contains_prefix(&s->cluster, &e->prefix)) {
		zl_cidr_errorf(err, errlen, "%s %.64s: %s lies outside the cluster %s", what, e->name, text,
			       zl_prefix_format(&s->cluster, ctext));
		return -ERANGE;
	}
	if (!zl_prefix_is_network(&e->prefix)) {
		zl_cidr_errorf(err, errlen, "%s %.64s: %s is not aligned (host bits set)", what, e->name, text);
		return -EINVAL;
	}
	hash = name_hash(e->kind, e->name);
	if (table_find(s, e->kind, e->name, hash) != SIZE_MAX) {
		zl_cidr_errorf(err, errlen, "%s %.64s is listed twice", what, e->name);
		return -EEXIST;
	}
	block_bits = s->slice_prefix - e->prefix.len;
	slot = zl_prefix_offset(&s->cluster, &e->prefix.ip) >> s->slot_shift;
	r = add_owner(s, e->kind, e->name, hash, slot, block_bits);
	if (r == -EEXIST)
		zl_cidr_errorf(err, errlen, "%s %.64s: %s is assigned twice (overlaps another slice)", what, e->name,
			       text);
	else if (r)
		zl_cidr_errorf(err, errlen, r == -ENOMEM ? "out of memory" : "too many slices");
	return r;
}

int zl_slices_restore(const struct zl_slices_snapshot *snap, struct zl_slices **out, char *err, size_t errlen)
{
	struct zl_slices *s;
	int r = zl_slices_new(&snap->cluster, snap->slice_prefix, &s, err, errlen);

	if (r)
		return r;
	for (size_t i = 0; i < snap->n && !r; i++)
		r = restore_entry(s, &snap->entries[i], err, errlen);
	if (r) {
		zl_slices_free(s);
		return r;
	}
	*out = s;
	return 0;
}
