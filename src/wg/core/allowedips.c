/* Allowed-IPs as a path-compressed binary trie, one per family (see allowedips.h).
 *
 * Shape: every node is a prefix (key, cidr). A child extends its parent's prefix and sits in
 * child[bit cidr of its key]; a chain of one-child steps is compressed into a single edge, so the
 * depth is bounded by the number of stored prefixes on a path, not by 32/128. A node either has an
 * owner (a stored prefix) or is a "glue" node that exists only to branch: glue nodes always have two
 * children, which makes the trie canonical (one shape per set of prefixes) and removal keeps it so.
 *
 * Lifetimes: the table owns every node. An owner (embedded in a peer) must start zeroed, and must stay
 * alive while it holds prefixes: call wg_allowedips_remove_owner() before freeing the peer. Its list is
 * circular and doubly linked through the nodes (first->prev is the newest), so append, unlink and
 * remove_owner cost O(1) per prefix. wg_allowedips_free() frees all nodes without touching owners
 * (they may already be gone at teardown): an owner's first/count are meaningless after it.
 * A visit callback must not modify the table. */
#include "wg/core/allowedips.h"
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* 50 bytes of header plus 4 (IPv4, rounded up to 56) or 16 (IPv6, 66 bytes) of address. */
struct wg_allowedips_node {
	struct wg_allowedips_node *child[2];
	struct wg_allowedips_node *parent;
	struct wg_allowedips_owner *owner; /* NULL for a glue node */
	struct wg_allowedips_node *prev, *next; /* owner's list; unused in glue nodes */
	uint8_t cidr;
	uint8_t family;
	uint8_t ip[]; /* network order, host bits zero: handed to visitors as is */
};

struct wg_allowedips {
	struct wg_allowedips_node *root4, *root6;
};

/* An address as two host-order words, IPv4 in the top 32 bits: one code path for both families, and
 * prefix tests are a few word operations instead of byte loops. */
struct key {
	uint64_t hi, lo;
};

static unsigned family_bits(int family)
{
	return family == AF_INET ? 32 : family == AF_INET6 ? 128 : 0;
}

static struct wg_allowedips_node **root_of(struct wg_allowedips *t, int family)
{
	return family == AF_INET ? &t->root4 : &t->root6;
}

static struct key load_key(int family, const uint8_t *ip)
{
	struct key k = { 0, 0 };
	uint32_t w4;
	uint64_t w;

	if (family == AF_INET) {
		memcpy(&w4, ip, 4);
		k.hi = (uint64_t)be32toh(w4) << 32;
		return k;
	}
	memcpy(&w, ip, 8);
	k.hi = be64toh(w);
	memcpy(&w, ip + 8, 8);
	k.lo = be64toh(w);
	return k;
}

static void store_key(int family, const struct key *k, uint8_t *ip)
{
	uint32_t w4 = htobe32((uint32_t)(k->hi >> 32));
	uint64_t w;

	if (family == AF_INET) {
		memcpy(ip, &w4, 4);
		return;
	}
	w = htobe64(k->hi);
	memcpy(ip, &w, 8);
	w = htobe64(k->lo);
	memcpy(ip + 8, &w, 8);
}

static struct key node_key(const struct wg_allowedips_node *n)
{
	return load_key(n->family, n->ip);
}

static uint64_t mask_hi(unsigned cidr)
{
	return cidr >= 64 ? ~0ULL : ~(~0ULL >> cidr);
}

static uint64_t mask_lo(unsigned cidr)
{
	return cidr <= 64 ? 0 : cidr >= 128 ? ~0ULL : ~(~0ULL >> (cidr - 64));
}

static void mask_key(struct key *k, unsigned cidr)
{
	k->hi &= mask_hi(cidr);
	k->lo &= mask_lo(cidr);
}

/* True when k lies inside prefix/cidr. */
static bool covers(const struct key *prefix, unsigned cidr, const struct key *k)
{
	return !(((prefix->hi ^ k->hi) & mask_hi(cidr)) | ((prefix->lo ^ k->lo) & mask_lo(cidr)));
}

/* Bit pos (0 = most significant) selects the child below a node of cidr pos; pos < 128. */
static unsigned bit_at(const struct key *k, unsigned pos)
{
	return pos < 64 ? (k->hi >> (63 - pos)) & 1 : (k->lo >> (127 - pos)) & 1;
}

static unsigned common_bits(const struct key *a, const struct key *b)
{
	uint64_t x = a->hi ^ b->hi;

	if (x)
		return (unsigned)__builtin_clzll(x);
	x = a->lo ^ b->lo;
	return x ? 64 + (unsigned)__builtin_clzll(x) : 128;
}

static void list_append(struct wg_allowedips_owner *owner, struct wg_allowedips_node *n)
{
	struct wg_allowedips_node *first = owner->first;

	n->owner = owner;
	if (!first) {
		n->prev = n->next = n;
		owner->first = n;
	} else {
		n->prev = first->prev;
		n->next = first;
		first->prev->next = n;
		first->prev = n;
	}
	owner->count++;
}

static void list_unlink(struct wg_allowedips_node *n)
{
	struct wg_allowedips_owner *owner = n->owner;

	if (n->next == n) {
		owner->first = NULL;
	} else {
		n->prev->next = n->next;
		n->next->prev = n->prev;
		if (owner->first == n)
			owner->first = n->next;
	}
	owner->count--;
	n->owner = NULL;
	n->prev = n->next = NULL;
}

/* A re-inserted prefix moves to the end of its new owner's list, as if inserted now. */
static void set_owner(struct wg_allowedips_node *n, struct wg_allowedips_owner *owner)
{
	if (n->owner == owner)
		return;
	if (n->owner)
		list_unlink(n);
	list_append(owner, n);
}

static struct wg_allowedips_node *new_node(int family, const struct key *k, unsigned cidr)
{
	size_t size = offsetof(struct wg_allowedips_node, ip) + (family == AF_INET ? 4 : 16);
	struct wg_allowedips_node *n;

	if (size < sizeof(*n))
		size = sizeof(*n);
	n = calloc(1, size);
	if (!n)
		return NULL;
	n->cidr = (uint8_t)cidr;
	n->family = (uint8_t)family;
	store_key(family, k, n->ip);
	return n;
}

/* Puts n where old was (slot), under parent. */
static void replace(struct wg_allowedips_node **slot, struct wg_allowedips_node *parent,
		    struct wg_allowedips_node *n)
{
	*slot = n;
	n->parent = parent;
}

static void hang(struct wg_allowedips_node *above, struct wg_allowedips_node *below)
{
	struct key k = node_key(below);

	above->child[bit_at(&k, above->cidr)] = below;
	below->parent = above;
}

/* Places a new prefix at slot, where the subtree old (not on the new prefix's path) hangs. */
static int insert_at(struct wg_allowedips_node **slot, struct wg_allowedips_node *parent,
		     struct wg_allowedips_node *old, int family, const struct key *k, unsigned cidr,
		     struct wg_allowedips_owner *owner)
{
	struct wg_allowedips_node *leaf = new_node(family, k, cidr), *glue;
	struct key ok, gk = *k;
	unsigned common;

	if (!leaf)
		return -ENOMEM;
	list_append(owner, leaf);
	replace(slot, parent, leaf);
	if (!old)
		return 0;
	ok = node_key(old);
	common = common_bits(&ok, k);
	if (common >= cidr) { /* the new prefix contains old: it becomes old's parent */
		hang(leaf, old);
		return 0;
	}
	/* They diverge at bit common, above both: branch there with a glue node. */
	mask_key(&gk, common);
	glue = new_node(family, &gk, common);
	if (!glue) {
		list_unlink(leaf);
		replace(slot, parent, old);
		free(leaf);
		return -ENOMEM;
	}
	replace(slot, parent, glue);
	hang(glue, leaf);
	hang(glue, old);
	return 0;
}

int wg_allowedips_insert(struct wg_allowedips *t, int family, const uint8_t *ip, uint8_t cidr,
			 struct wg_allowedips_owner *owner)
{
	unsigned bits = family_bits(family);
	struct wg_allowedips_node **slot, *n, *parent = NULL;
	struct key k, nk;

	if (!bits || cidr > bits || !ip || !owner)
		return -EINVAL;
	k = load_key(family, ip);
	mask_key(&k, cidr);
	/* Walk down while the node is a prefix of the new one. */
	for (slot = root_of(t, family); (n = *slot); slot = &n->child[bit_at(&k, n->cidr)]) {
		nk = node_key(n);
		if (n->cidr > cidr || !covers(&nk, n->cidr, &k))
			break;
		if (n->cidr == cidr) {
			set_owner(n, owner);
			return 0;
		}
		parent = n;
	}
	return insert_at(slot, parent, n, family, &k, cidr, owner);
}

static struct wg_allowedips_node **slot_of(struct wg_allowedips *t, struct wg_allowedips_node *n)
{
	struct wg_allowedips_node *p = n->parent;

	return p ? &p->child[p->child[1] == n] : root_of(t, n->family);
}

/* Splices out an ownerless node with fewer than two children. A parent glue node that loses its
 * second child this way has become useless too, and goes the same way (it has one child, so this
 * recursion stops there). */
static void prune(struct wg_allowedips *t, struct wg_allowedips_node *n)
{
	struct wg_allowedips_node *child = n->child[0] ? n->child[0] : n->child[1];
	struct wg_allowedips_node *parent = n->parent;

	*slot_of(t, n) = child;
	if (child)
		child->parent = parent;
	free(n);
	if (!child && parent && !parent->owner)
		prune(t, parent);
}

static void remove_node(struct wg_allowedips *t, struct wg_allowedips_node *n)
{
	list_unlink(n);
	if (!(n->child[0] && n->child[1]))
		prune(t, n);
	/* else: it still branches, so it stays as a glue node */
}

int wg_allowedips_remove(struct wg_allowedips *t, int family, const uint8_t *ip, uint8_t cidr,
			 struct wg_allowedips_owner *owner)
{
	unsigned bits = family_bits(family);
	struct wg_allowedips_node *n;
	struct key k, nk;

	if (!bits || cidr > bits || !ip || !owner)
		return -EINVAL;
	k = load_key(family, ip);
	mask_key(&k, cidr);
	for (n = *root_of(t, family); n; n = n->child[bit_at(&k, n->cidr)]) {
		nk = node_key(n);
		if (n->cidr > cidr || !covers(&nk, n->cidr, &k))
			break;
		if (n->cidr == cidr) {
			if (n->owner != owner)
				break;
			remove_node(t, n);
			return 0;
		}
	}
	return -ENOENT;
}

void wg_allowedips_remove_owner(struct wg_allowedips *t, struct wg_allowedips_owner *owner)
{
	while (owner->first)
		remove_node(t, owner->first);
}

/* The per-packet path: no allocation, one pass down the trie remembering the deepest owned prefix.
 * IPv4 gets its own loop on 32-bit words: it is the common case and the loop is half the work. */
static struct wg_allowedips_owner *lookup4(const struct wg_allowedips_node *n, const uint8_t *ip)
{
	struct wg_allowedips_owner *best = NULL;
	uint32_t k, nk;

	memcpy(&k, ip, 4);
	k = be32toh(k);
	for (; n; n = n->child[(k >> (31 - n->cidr)) & 1]) {
		memcpy(&nk, n->ip, 4);
		if ((be32toh(nk) ^ k) & (uint32_t)(~0ULL << (32 - n->cidr)))
			break; /* nothing below can match either: children extend this prefix */
		if (n->owner)
			best = n->owner;
		if (n->cidr == 32)
			break;
	}
	return best;
}

static struct wg_allowedips_owner *lookup6(const struct wg_allowedips_node *n, const uint8_t *ip)
{
	struct wg_allowedips_owner *best = NULL;
	struct key k = load_key(AF_INET6, ip), nk;

	for (; n; n = n->child[bit_at(&k, n->cidr)]) {
		nk = load_key(AF_INET6, n->ip);
		if (!covers(&nk, n->cidr, &k))
			break;
		if (n->owner)
			best = n->owner;
		if (n->cidr == 128)
			break;
	}
	return best;
}

struct wg_allowedips_owner *wg_allowedips_lookup(const struct wg_allowedips *t, int family, const uint8_t *ip)
{
	if (family == AF_INET)
		return lookup4(t->root4, ip);
	return family == AF_INET6 ? lookup6(t->root6, ip) : NULL;
}

void wg_allowedips_for_each(const struct wg_allowedips_owner *owner, wg_allowedips_visit_fn visit, void *ctx)
{
	const struct wg_allowedips_node *n = owner->first;

	if (!n)
		return;
	do {
		visit(ctx, n->family, n->ip, n->cidr);
		n = n->next;
	} while (n != owner->first);
}

struct wg_allowedips *wg_allowedips_new(void)
{
	return calloc(1, sizeof(struct wg_allowedips));
}

/* Recursion depth is bounded by the trie depth, at most 129 levels. */
static void free_subtree(struct wg_allowedips_node *n)
{
	if (!n)
		return;
	free_subtree(n->child[0]);
	free_subtree(n->child[1]);
	free(n);
}

void wg_allowedips_free(struct wg_allowedips *t)
{
	if (!t)
		return;
	free_subtree(t->root4);
	free_subtree(t->root6);
	free(t);
}
