/* Node slices and service subnets: FNV-1a-64 known answers, the reference's cases (4096 /28 slices of
 * a /16 then "no available addresses", /48 -> /64, invalid prefixes, restore rejections), start slot
 * and linear probing with wrap-around, idempotence, exact results against a naive slot-array model
 * under random operations, and randomized proof that service subnets never overlap node slices. */
#include "test.h"
#include "overlay/cidr.h"
#include "overlay/slices.h"
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

static uint64_t rng_state = 0x243f6a8885a308d3ULL;

static uint64_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dULL;
}

static unsigned rnd_below(unsigned n)
{
	return (unsigned)(rnd() % n);
}

static struct zl_prefix P(const char *text)
{
	struct zl_prefix p;

	if (zl_prefix_parse(text, &p, NULL, 0)) {
		fprintf(stderr, "bad test prefix %s\n", text);
		abort();
	}
	return p;
}

static struct zl_slices *new_slices(const char *cluster, unsigned slice_prefix)
{
	struct zl_prefix c = P(cluster);
	struct zl_slices *s = NULL;

	if (zl_slices_new(&c, slice_prefix, &s, NULL, 0)) {
		fprintf(stderr, "cannot create slices %s /%u\n", cluster, slice_prefix);
		abort();
	}
	return s;
}

static bool prefix_is(const struct zl_prefix *p, const char *text)
{
	char buf[ZL_PREFIX_STRLEN];

	return strcmp(zl_prefix_format(p, buf), text) == 0;
}

static uint64_t fnv(const char *s)
{
	return zl_slices_fnv1a64(s, strlen(s));
}

static uint64_t svc_fnv(const char *name)
{
	char buf[300];

	snprintf(buf, sizeof(buf), "svc:%s", name);
	return fnv(buf);
}

/* Slot index of a slice in its cluster. */
static zl_u128 slot_of(const struct zl_slices *s, const struct zl_prefix *p)
{
	unsigned shift = zl_ip_bits(p->ip.family) - zl_slices_slice_prefix(s);

	return zl_prefix_offset(zl_slices_cluster(s), &p->ip) >> shift;
}

static void test_fnv1a64_known_answers(void)
{
	CHECK(zl_slices_fnv1a64("", 0) == 0xcbf29ce484222325ULL);
	CHECK(fnv("a") == 0xaf63dc4c8601ec8cULL);
	CHECK(fnv("foobar") == 0x85944171f73967e8ULL);
	CHECK(zl_slices_fnv1a64("foobar", 3) == fnv("foo"));
	CHECK(zl_slices_fnv1a64("\0", 1) != zl_slices_fnv1a64("", 0));
}

static void test_invalid_geometry(void)
{
	static const struct {
		const char *cluster;
		unsigned slice;
		const char *msg;
	} cases[] = {
		{ "10.200.0.0/16", 16, "must be longer than the cluster prefix" },
		{ "10.200.0.0/16", 8, "must be longer than the cluster prefix" },
		{ "10.200.0.0/16", 33, "exceeds 32 for IPv4" },
		{ "fd00:200::/48", 48, "must be longer than the cluster prefix" },
		{ "fd00:200::/48", 129, "exceeds 128 for IPv6" },
		{ "10.200.0.1/16", 28, "host bits set" },
		{ "fd00:200::1/48", 64, "host bits set" },
	};
	char err[ZL_ERR_LEN];
	struct zl_slices *s = NULL;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct zl_prefix c = P(cases[i].cluster);

		CHECK(zl_slices_new(&c, cases[i].slice, &s, err, sizeof(err)) == -EINVAL);
		CHECK(strstr(err, cases[i].msg) != NULL);
	}
	CHECK(s == NULL);
	s = new_slices("10.200.0.0/16", 32); /* the extremes are fine */
	CHECK(zl_slices_slot_count(s) == 65536);
	zl_slices_free(s);
	s = new_slices("::/0", 128);
	CHECK(zl_slices_slot_count(s) == ZL_U128_MAX);
	zl_slices_free(s);
}

static void test_v4_4096_slices_then_exhaustion(void)
{
	struct zl_slices *s = new_slices("10.200.0.0/16", 28);
	static bool seen[4096];
	struct zl_prefix p, q, cluster = P("10.200.0.0/16");
	char id[32], err[ZL_ERR_LEN];
	unsigned bad = 0;

	memset(seen, 0, sizeof(seen));
	CHECK(zl_slices_slot_count(s) == 4096);
	for (int i = 0; i < 4096; i++) {
		snprintf(id, sizeof(id), "node-%d", i);
		if (zl_slices_assign(s, id, &p, err, sizeof(err)) != 0) {
			bad++;
			continue;
		}
		bad += p.len != 28 || !zl_prefix_is_network(&p) || !zl_prefix_contains_prefix(&cluster, &p);
		bad += seen[slot_of(s, &p)];
		seen[slot_of(s, &p)] = true;
	}
	CHECK(bad == 0);
	CHECK(zl_slices_count(s, ZL_SLICE_NODE) == 4096);
	CHECK(zl_slices_assign(s, "node-4096", &p, err, sizeof(err)) == -ENOSPC);
	CHECK(strcmp(err, "no available addresses") == 0);
	CHECK(!zl_slices_lookup(s, "node-4096", NULL));
	CHECK(zl_slices_assign_service(s, "web", 0, &p, err, sizeof(err)) == -ENOSPC);
	CHECK(strcmp(err, "no available addresses") == 0);
	/* Idempotent even when full. */
	CHECK(zl_slices_lookup(s, "node-77", &q));
	CHECK(zl_slices_assign(s, "node-77", &p, err, sizeof(err)) == 0 && zl_prefix_equal(&p, &q));
	/* Freeing one makes room for exactly one. */
	CHECK(zl_slices_release(s, "node-77", NULL, 0) == 0);
	CHECK(zl_slices_assign(s, "node-4096", &p, NULL, 0) == 0 && zl_prefix_equal(&p, &q));
	CHECK(zl_slices_assign(s, "node-4097", &p, NULL, 0) == -ENOSPC);
	zl_slices_free(s);
}

static void test_start_slot_is_fnv_mod_slots(void)
{
	struct zl_slices *s = new_slices("10.200.0.0/16", 28);
	struct zl_prefix p;
	const char *ids[] = { "leader", "worker-1", "a", "foobar", "5f0c2a8e-2f1b-4a52-9d1e-0c7d3b9e4a11" };

	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		CHECK(zl_slices_assign(s, ids[i], &p, NULL, 0) == 0);
		CHECK(slot_of(s, &p) == (fnv(ids[i]) % 4096));
	}
	/* fnv("a") = 0x...ec8c: slot 0xc8c = 3212 -> 10.200.200.192/28. */
	CHECK(zl_slices_lookup(s, "a", &p) && prefix_is(&p, "10.200.200.192/28"));
	zl_slices_free(s);

	s = new_slices("fd00:200::/48", 112); /* 2^64 slots: the slot is the whole hash */
	CHECK(zl_slices_slot_count(s) == (zl_u128)1 << 64);
	CHECK(zl_slices_assign(s, "foobar", &p, NULL, 0) == 0);
	CHECK(prefix_is(&p, "fd00:200:0:8594:4171:f739:67e8:0/112"));
	zl_slices_free(s);
}

/* Finds a name "n<i>" (i >= from) whose start slot among 2^bits slots is want. */
static int name_with_slot(unsigned bits, uint64_t want, int from, char out[32])
{
	for (int i = from; i < 1000000; i++) {
		snprintf(out, 32, "n%d", i);
		if ((fnv(out) & ((1ULL << bits) - 1)) == want)
			return i;
	}
	abort();
}

static void test_linear_probing_and_wrap(void)
{
	struct zl_slices *s = new_slices("10.9.0.0/24", 28); /* 16 slots */
	char a[32], b[32], c[32], d[32];
	struct zl_prefix p;
	int i;

	i = name_with_slot(4, 5, 0, a);
	name_with_slot(4, 5, i + 1, b);
	CHECK(zl_slices_assign(s, a, &p, NULL, 0) == 0 && slot_of(s, &p) == 5);
	CHECK(zl_slices_assign(s, b, &p, NULL, 0) == 0 && slot_of(s, &p) == 6);
	/* The last slot taken, a collision there wraps round to slot 0. */
	i = name_with_slot(4, 15, 0, c);
	name_with_slot(4, 15, i + 1, d);
	CHECK(zl_slices_assign(s, c, &p, NULL, 0) == 0 && prefix_is(&p, "10.9.0.240/28"));
	CHECK(zl_slices_assign(s, d, &p, NULL, 0) == 0 && prefix_is(&p, "10.9.0.0/28"));
	/* Releasing a does not move b: assignments are stable. */
	CHECK(zl_slices_release(s, a, NULL, 0) == 0);
	CHECK(zl_slices_lookup(s, b, &p) && slot_of(s, &p) == 6);
	CHECK(zl_slices_assign(s, a, &p, NULL, 0) == 0 && slot_of(s, &p) == 5);
	zl_slices_free(s);
}

static void test_v6_slash48_to_slash64(void)
{
	struct zl_slices *s = new_slices("fd00:200::/48", 64);
	struct zl_prefix p, cluster = P("fd00:200::/48");
	char id[32], err[ZL_ERR_LEN];
	unsigned bad = 0;

	CHECK(zl_slices_slot_count(s) == 65536);
	CHECK(zl_slices_assign(s, "leader", &p, NULL, 0) == 0);
	CHECK(p.len == 64 && zl_prefix_is_network(&p) && zl_prefix_contains_prefix(&cluster, &p));
	CHECK(slot_of(s, &p) == (fnv("leader") & 0xffff));
	for (int i = 1; i < 65536; i++) {
		snprintf(id, sizeof(id), "n%d", i);
		bad += zl_slices_assign(s, id, &p, NULL, 0) != 0;
	}
	CHECK(bad == 0);
	CHECK(zl_slices_count(s, ZL_SLICE_NODE) == 65536);
	CHECK(zl_slices_assign(s, "one-too-many", &p, err, sizeof(err)) == -ENOSPC);
	CHECK(strcmp(err, "no available addresses") == 0);
	zl_slices_free(s);
}

static void test_names_and_errors(void)
{
	struct zl_slices *s = new_slices("10.200.0.0/16", 28);
	char err[ZL_ERR_LEN], longname[300];
	struct zl_prefix p;

	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	CHECK(zl_slices_assign(s, "", &p, err, sizeof(err)) == -EINVAL);
	CHECK(strstr(err, "node id must be 1 to 255 bytes") != NULL);
	CHECK(zl_slices_assign(s, NULL, &p, NULL, 0) == -EINVAL);
	CHECK(zl_slices_assign(s, longname, &p, NULL, 0) == -EINVAL);
	longname[255] = '\0';
	CHECK(zl_slices_assign(s, longname, &p, NULL, 0) == 0);
	CHECK(zl_slices_release(s, "ghost", err, sizeof(err)) == -ENOENT);
	CHECK(strstr(err, "node ghost has no slice") != NULL);
	CHECK(zl_slices_release_service(s, "ghost", err, sizeof(err)) == -ENOENT);
	CHECK(strstr(err, "service ghost has no slice") != NULL);
	CHECK(zl_slices_assign_service(s, "", 0, &p, err, sizeof(err)) == -EINVAL);
	CHECK(strstr(err, "service name") != NULL);
	CHECK(zl_slices_assign_service(s, "web", 16, &p, err, sizeof(err)) == -EINVAL);
	CHECK(strstr(err, "must be longer than /16 and at most /28") != NULL);
	CHECK(zl_slices_assign_service(s, "web", 29, &p, NULL, 0) == -EINVAL);
	CHECK(zl_slices_count(s, ZL_SLICE_SERVICE) == 0);
	zl_slices_free(s);
}

static void test_services(void)
{
	struct zl_slices *s = new_slices("10.200.0.0/16", 28);
	struct zl_prefix web, db, node, p;
	char err[ZL_ERR_LEN];

	CHECK(zl_slices_assign_service(s, "web", 0, &web, NULL, 0) == 0);
	CHECK(web.len == 28 && slot_of(s, &web) == (svc_fnv("web") & 4095));
	CHECK(zl_slices_assign_service(s, "db", 24, &db, NULL, 0) == 0);
	CHECK(db.len == 24 && zl_prefix_is_network(&db));
	CHECK(slot_of(s, &db) == ((svc_fnv("db") & 255) << 4)); /* block of 16 slots, 256 blocks */
	/* Idempotent; another size for the same name is refused. */
	CHECK(zl_slices_assign_service(s, "db", 24, &p, NULL, 0) == 0 && zl_prefix_equal(&p, &db));
	CHECK(zl_slices_assign_service(s, "db", 25, &p, err, sizeof(err)) == -EEXIST);
	CHECK(strstr(err, "service db already has a /24 subnet") != NULL);
	/* A node and a service may share a name: separate namespaces, separate slots. */
	CHECK(zl_slices_assign(s, "web", &node, NULL, 0) == 0);
	CHECK(!zl_prefix_overlaps(&node, &web));
	CHECK(zl_slices_lookup_service(s, "web", &p) && zl_prefix_equal(&p, &web));
	CHECK(zl_slices_lookup(s, "web", &p) && zl_prefix_equal(&p, &node));
	CHECK(zl_slices_count(s, ZL_SLICE_SERVICE) == 2 && zl_slices_count(s, ZL_SLICE_NODE) == 1);
	CHECK(zl_slices_release_service(s, "web", NULL, 0) == 0);
	CHECK(!zl_slices_lookup_service(s, "web", NULL) && zl_slices_lookup(s, "web", NULL));
	zl_slices_free(s);
}

/* A node whose start slot falls inside a service block probes past the block. */
static void test_nodes_probe_past_service_blocks(void)
{
	struct zl_slices *s = new_slices("10.200.0.0/16", 28);
	struct zl_prefix blk, p;
	char name[32];
	zl_u128 first;

	CHECK(zl_slices_assign_service(s, "big", 20, &blk, NULL, 0) == 0); /* 256 slots */
	first = slot_of(s, &blk);
	name_with_slot(12, (uint64_t)first + 17, 0, name);
	CHECK(zl_slices_assign(s, name, &p, NULL, 0) == 0);
	CHECK(slot_of(s, &p) == (first + 256) % 4096);
	CHECK(!zl_prefix_overlaps(&p, &blk));
	zl_slices_free(s);
}

/* Naive model: an owner id per slot, probing one slot (or block) at a time. */
enum { M_BITS = 8, M_SLOTS = 1 << M_BITS, M_NODES = 400, M_SERVICES = 40 };

struct model {
	int owner[M_SLOTS];   /* -1 free, else id (nodes 0.., services M_NODES..) */
	int slot[M_NODES + M_SERVICES];
	int block_bits[M_NODES + M_SERVICES];
};

static int model_probe(const struct model *m, uint64_t hash, unsigned bb)
{
	unsigned nblocks = M_SLOTS >> bb, start = (unsigned)(hash & (nblocks - 1));

	for (unsigned k = 0; k < nblocks; k++) {
		unsigned b = (start + k) % nblocks, x = b << bb;
		bool free_block = true;

		for (unsigned i = x; i < x + (1u << bb); i++)
			free_block = free_block && m->owner[i] < 0;
		if (free_block)
			return (int)x;
	}
	return -1;
}

static void model_set(struct model *m, int id, int slot, unsigned bb)
{
	for (int i = slot; i < slot + (1 << bb); i++)
		m->owner[i] = slot < 0 ? -1 : id;
	m->slot[id] = slot;
	m->block_bits[id] = (int)bb;
}

static void test_random_vs_model(void)
{
	struct zl_slices *s = new_slices("10.20.0.0/20", 28); /* 256 slots */
	static struct model m;
	unsigned bad = 0, full = 0;
	char name[32];

	for (int i = 0; i < M_SLOTS; i++)
		m.owner[i] = -1;
	for (int i = 0; i < M_NODES + M_SERVICES; i++)
		m.slot[i] = -1;
	for (int step = 0; step < 40000; step++) {
		bool service = rnd_below(8) == 0;
		int id = service ? M_NODES + (int)rnd_below(M_SERVICES) : (int)rnd_below(M_NODES);
		unsigned bb = service ? rnd_below(5) : 0; /* services /24 .. /28 */
		struct zl_prefix p;
		int r, want;

		snprintf(name, sizeof(name), "%s%d", service ? "s" : "n", id);
		if (rnd_below(5) < 3) {
			r = service ? zl_slices_assign_service(s, name, 28 - bb, &p, NULL, 0)
				    : zl_slices_assign(s, name, &p, NULL, 0);
			if (m.slot[id] >= 0) {
				/* Already assigned: same answer, or -EEXIST for another service size. */
				if (m.block_bits[id] != (int)bb)
					bad += r != -EEXIST;
				else
					bad += r != 0 || (int)slot_of(s, &p) != m.slot[id];
				continue;
			}
			want = model_probe(&m, service ? svc_fnv(name) : fnv(name), bb);
			if (want < 0) {
				bad += r != -ENOSPC;
				full++;
				continue;
			}
			bad += r != 0 || (int)slot_of(s, &p) != want || p.len != 28 - bb;
			model_set(&m, id, want, bb);
		} else {
			r = service ? zl_slices_release_service(s, name, NULL, 0) : zl_slices_release(s, name, NULL, 0);
			bad += r != (m.slot[id] >= 0 ? 0 : -ENOENT);
			if (m.slot[id] >= 0) {
				for (int i = m.slot[id]; i < m.slot[id] + (1 << m.block_bits[id]); i++)
					m.owner[i] = -1;
				m.slot[id] = -1;
			}
		}
		if (step % 1000 == 0) {
			/* Every lookup agrees with the model. */
			for (int k = 0; k < M_NODES + M_SERVICES; k++) {
				bool svc = k >= M_NODES, has;

				snprintf(name, sizeof(name), "%s%d", svc ? "s" : "n", k);
				has = svc ? zl_slices_lookup_service(s, name, &p) : zl_slices_lookup(s, name, &p);
				bad += has != (m.slot[k] >= 0) || (has && (int)slot_of(s, &p) != m.slot[k]);
			}
		}
	}
	CHECK(bad == 0);
	CHECK(full > 100); /* exhaustion was exercised */
	zl_slices_free(s);
}

/* After each batch of random operations, no two entries of a snapshot overlap (entries come in
 * address order, so comparing neighbours is enough), and every entry lies in the cluster. */
static unsigned count_overlaps(const struct zl_slices *s, unsigned *services, unsigned *nodes)
{
	struct zl_slices_snapshot snap;
	unsigned bad = 0;

	if (zl_slices_snapshot(s, &snap))
		return 1;
	for (size_t i = 0; i < snap.n; i++) {
		bad += !zl_prefix_contains_prefix(&snap.cluster, &snap.entries[i].prefix);
		bad += i && zl_prefix_overlaps(&snap.entries[i - 1].prefix, &snap.entries[i].prefix);
		bad += i && zl_ip_compare(&snap.entries[i - 1].prefix.ip, &snap.entries[i].prefix.ip) >= 0;
		*services += snap.entries[i].kind == ZL_SLICE_SERVICE;
		*nodes += snap.entries[i].kind == ZL_SLICE_NODE;
	}
	zl_slices_snapshot_clear(&snap);
	return bad;
}

static void test_services_never_overlap_nodes(void)
{
	static const struct {
		const char *cluster;
		unsigned slice, min_service;
	} geos[] = {
		{ "10.200.0.0/16", 28, 20 },
		{ "fd00:200::/48", 64, 52 },
		{ "fd00:200::/48", 112, 100 },
	};

	for (size_t g = 0; g < sizeof(geos) / sizeof(geos[0]); g++) {
		struct zl_slices *s = new_slices(geos[g].cluster, geos[g].slice);
		unsigned bad = 0, services = 0, nodes = 0;
		char name[32];
		struct zl_prefix p;

		for (int step = 0; step < 20000; step++) {
			unsigned op = rnd_below(10), id = rnd_below(3000);

			snprintf(name, sizeof(name), "x%u", id);
			if (op < 5)
				zl_slices_assign(s, name, &p, NULL, 0);
			else if (op < 7)
				zl_slices_assign_service(s, name, geos[g].min_service +
							 rnd_below(geos[g].slice - geos[g].min_service + 1), &p, NULL, 0);
			else if (op < 9)
				zl_slices_release(s, name, NULL, 0);
			else
				zl_slices_release_service(s, name, NULL, 0);
			if (step % 500 == 499)
				bad += count_overlaps(s, &services, &nodes);
		}
		CHECK(bad == 0);
		CHECK(services > 100 && nodes > 100); /* both kinds were present throughout */
		zl_slices_free(s);
	}
}

static bool snapshots_equal(const struct zl_slices_snapshot *a, const struct zl_slices_snapshot *b)
{
	if (!zl_prefix_equal(&a->cluster, &b->cluster) || a->slice_prefix != b->slice_prefix || a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++) {
		if (a->entries[i].kind != b->entries[i].kind || strcmp(a->entries[i].name, b->entries[i].name) ||
		    !zl_prefix_equal(&a->entries[i].prefix, &b->entries[i].prefix))
			return false;
	}
	return true;
}

static void test_snapshot_round_trip(void)
{
	const char *clusters[] = { "10.200.0.0/16", "fd00:200::/48" };
	const unsigned slices[] = { 28, 64 };

	for (int g = 0; g < 2; g++) {
		struct zl_slices *a = new_slices(clusters[g], slices[g]), *b = NULL;
		struct zl_slices_snapshot sa, sb;
		struct zl_prefix pa, pb;
		char name[32];
		unsigned bad = 0;

		for (int i = 0; i < 2000; i++) {
			snprintf(name, sizeof(name), "node%d", i);
			zl_slices_assign(a, name, &pa, NULL, 0);
			if (i % 50 == 0) {
				snprintf(name, sizeof(name), "svc%d", i);
				zl_slices_assign_service(a, name, slices[g] - rnd_below(4), &pa, NULL, 0);
			}
		}
		for (int i = 0; i < 2000; i += 3) {
			snprintf(name, sizeof(name), "node%d", i);
			zl_slices_release(a, name, NULL, 0);
		}
		CHECK(zl_slices_snapshot(a, &sa) == 0);
		CHECK(sa.n == zl_slices_count(a, ZL_SLICE_NODE) + zl_slices_count(a, ZL_SLICE_SERVICE));
		CHECK(sa.n > 1000);
		CHECK(zl_slices_restore(&sa, &b, NULL, 0) == 0);
		CHECK(zl_slices_snapshot(b, &sb) == 0);
		CHECK(snapshots_equal(&sa, &sb));
		CHECK(zl_slices_count(b, ZL_SLICE_SERVICE) == zl_slices_count(a, ZL_SLICE_SERVICE));
		/* Both go on identically: same lookups, same new assignments. */
		for (int i = 0; i < 3000; i++) {
			snprintf(name, sizeof(name), "node%d", i);
			bad += zl_slices_assign(a, name, &pa, NULL, 0) != 0;
			bad += zl_slices_assign(b, name, &pb, NULL, 0) != 0;
			bad += !zl_prefix_equal(&pa, &pb);
		}
		CHECK(bad == 0);
		zl_slices_snapshot_clear(&sa);
		zl_slices_snapshot_clear(&sb);
		CHECK(sa.n == 0 && sa.entries == NULL);
		zl_slices_free(a);
		zl_slices_free(b);
	}
}

/* A snapshot of the default cluster with two nodes and one service; one entry is then damaged. */
static void base_snapshot(struct zl_slices_snapshot *snap, struct zl_slices_entry e[4])
{
	e[0] = (struct zl_slices_entry){ ZL_SLICE_NODE, "n1", P("10.200.0.0/28") };
	e[1] = (struct zl_slices_entry){ ZL_SLICE_NODE, "n2", P("10.200.0.16/28") };
	e[2] = (struct zl_slices_entry){ ZL_SLICE_SERVICE, "web", P("10.200.1.0/24") };
	e[3] = (struct zl_slices_entry){ ZL_SLICE_NODE, "n3", P("10.200.255.240/28") };
	snap->cluster = P("10.200.0.0/16");
	snap->slice_prefix = 28;
	snap->entries = e;
	snap->n = 4;
}

static void test_restore_rejections(void)
{
	static const struct {
		int entry;           /* which entry to damage, -1 for the header */
		const char *prefix;  /* new prefix of that entry, or NULL */
		const char *name;    /* new name, or NULL */
		int kind;            /* new kind, or -1 */
		int err;
		const char *msg;
	} cases[] = {
		{ 1, "10.201.0.16/28", NULL, -1, -ERANGE, "node n2: 10.201.0.16/28 lies outside the cluster 10.200.0.0/16" },
		{ 1, "10.200.0.8/28", NULL, -1, -EINVAL, "node n2: 10.200.0.8/28 is not aligned" },
		{ 1, "10.200.0.0/28", NULL, -1, -EEXIST, "node n2: 10.200.0.0/28 is assigned twice" },
		{ 1, "10.200.1.32/28", NULL, -1, -EEXIST, "service web: 10.200.1.0/24 is assigned twice" },
		{ 2, "10.200.0.0/24", NULL, -1, -EEXIST, "service web: 10.200.0.0/24 is assigned twice" },
		{ 1, NULL, "n1", -1, -EEXIST, "node n1 is listed twice" },
		{ 1, NULL, "", -1, -EINVAL, "node id must be 1 to 255 bytes" },
		{ 1, "10.200.0.16/27", NULL, -1, -EINVAL, "does not have the slice prefix /28" },
		{ 1, "10.200.0.16/29", NULL, -1, -EINVAL, "does not have the slice prefix /28" },
		{ 2, "10.200.0.0/16", NULL, -1, -EINVAL, "does not have the slice prefix /28" },
		{ 2, "10.200.1.0/29", NULL, -1, -EINVAL, "does not have the slice prefix /28" },
		{ 1, "fd00:200::/28", NULL, -1, -EINVAL, "not of the cluster's address family" },
		{ 3, "10.0.0.0/28", NULL, -1, -ERANGE, "lies outside the cluster" },
		{ 1, NULL, NULL, 7, -EINVAL, "unknown kind" },
	};
	struct zl_slices_snapshot snap;
	struct zl_slices_entry e[4];
	struct zl_slices *s = NULL;
	char err[ZL_ERR_LEN];

	base_snapshot(&snap, e);
	CHECK(zl_slices_restore(&snap, &s, err, sizeof(err)) == 0 && err[0] == '\0');
	zl_slices_free(s);
	s = NULL;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		base_snapshot(&snap, e);
		if (cases[i].prefix)
			e[cases[i].entry].prefix = P(cases[i].prefix);
		if (cases[i].name)
			e[cases[i].entry].name = (char *)cases[i].name;
		if (cases[i].kind >= 0)
			e[cases[i].entry].kind = (enum zl_slice_kind)cases[i].kind;
		CHECK(zl_slices_restore(&snap, &s, err, sizeof(err)) == cases[i].err);
		if (!strstr(err, cases[i].msg))
			fprintf(stderr, "  case %zu: message '%s' lacks '%s'\n", i, err, cases[i].msg);
		CHECK(strstr(err, cases[i].msg) != NULL);
		CHECK(s == NULL);
	}
	/* The header is checked as zl_slices_new checks it. */
	base_snapshot(&snap, e);
	snap.slice_prefix = 16;
	CHECK(zl_slices_restore(&snap, &s, err, sizeof(err)) == -EINVAL);
	CHECK(strstr(err, "must be longer than the cluster prefix") != NULL);
	snap.slice_prefix = 33;
	CHECK(zl_slices_restore(&snap, &s, err, sizeof(err)) == -EINVAL);
	snap.slice_prefix = 28;
	snap.cluster = P("10.200.0.1/16");
	CHECK(zl_slices_restore(&snap, &s, err, sizeof(err)) == -EINVAL);
	CHECK(strstr(err, "host bits set") != NULL);
	CHECK(s == NULL);
}

int main(void)
{
	TEST_RUN(test_fnv1a64_known_answers);
	TEST_RUN(test_invalid_geometry);
	TEST_RUN(test_v4_4096_slices_then_exhaustion);
	TEST_RUN(test_start_slot_is_fnv_mod_slots);
	TEST_RUN(test_linear_probing_and_wrap);
	TEST_RUN(test_v6_slash48_to_slash64);
	TEST_RUN(test_names_and_errors);
	TEST_RUN(test_services);
	TEST_RUN(test_nodes_probe_past_service_blocks);
	TEST_RUN(test_random_vs_model);
	TEST_RUN(test_services_never_overlap_nodes);
	TEST_RUN(test_snapshot_round_trip);
	TEST_RUN(test_restore_rejections);
	return TEST_SUMMARY();
}
