/* Address allocation over maximal runs in an AVL tree (see ipam.h for semantics and costs).
 *
 * Invariant of struct zl_ipam_runs: runs are disjoint and never adjacent (a.last + 1 < b.first), so
 * ordering runs by first also orders them by last, and the member after the end of a run is never a
 * member. Both facts make "next free at or after x" a single descent, and let add/remove change a
 * run's bounds in place without disturbing the tree's order. */
#include "overlay/ipam.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

struct zl_ipam_run {
	zl_u128 first, last;
	struct zl_ipam_run *left, *right;
	int height;
};

/* ---- AVL tree keyed by run start ---- */

static int height(const struct zl_ipam_run *n)
{
	return n ? n->height : 0;
}

static void update(struct zl_ipam_run *n)
{
	int hl = height(n->left), hr = height(n->right);

	n->height = 1 + (hl > hr ? hl : hr);
}

static struct zl_ipam_run *rotate_right(struct zl_ipam_run *n)
{
	struct zl_ipam_run *l = n->left;

	n->left = l->right;
	l->right = n;
	update(n);
	update(l);
	return l;
}

static struct zl_ipam_run *rotate_left(struct zl_ipam_run *n)
{
	struct zl_ipam_run *r = n->right;

	n->right = r->left;
	r->left = n;
	update(n);
	update(r);
	return r;
}

static struct zl_ipam_run *rebalance(struct zl_ipam_run *n)
{
	int bf;

	update(n);
	bf = height(n->left) - height(n->right);
	if (bf > 1) {
		if (height(n->left->left) < height(n->left->right))
			n->left = rotate_left(n->left);
		return rotate_right(n);
	}
	if (bf < -1) {
		if (height(n->right->right) < height(n->right->left))
			n->right = rotate_right(n->right);
		return rotate_left(n);
	}
	return n;
}

/* Recursion depth is the tree height, at most ~1.44 log2(runs): under 100 for any memory size. */
static struct zl_ipam_run *tree_insert(struct zl_ipam_run *n, struct zl_ipam_run *node)
{
	if (!n)
		return node;
	if (node->first < n->first)
		n->left = tree_insert(n->left, node);
	else
		n->right = tree_insert(n->right, node);
	return rebalance(n);
}

/* Detaches the leftmost node of n's subtree into *min and returns the rest. */
static struct zl_ipam_run *detach_min(struct zl_ipam_run *n, struct zl_ipam_run **min)
{
	if (!n->left) {
		*min = n;
		return n->right;
	}
	n->left = detach_min(n->left, min);
	return rebalance(n);
}

/* Removes and frees the run starting at first (which must exist). */
static struct zl_ipam_run *tree_delete(struct zl_ipam_run *n, zl_u128 first)
{
	struct zl_ipam_run *l, *r, *m;

	if (first < n->first) {
		n->left = tree_delete(n->left, first);
		return rebalance(n);
	}
	if (first > n->first) {
		n->right = tree_delete(n->right, first);
		return rebalance(n);
	}
	l = n->left;
	r = n->right;
	free(n);
	if (!r)
		return l;
	r = detach_min(r, &m);
	m->left = l;
	m->right = r;
	return rebalance(m);
}

static void tree_free(struct zl_ipam_run *n)
{
	while (n) {
		struct zl_ipam_run *r = n->right;

		tree_free(n->left);
		free(n);
		n = r;
	}
}

/* The first run (lowest) whose last member is >= x: the run containing x if there is one, else the
 * next run above x. NULL when every run ends below x. */
static struct zl_ipam_run *first_ending_at_or_after(const struct zl_ipam_runs *rs, zl_u128 x)
{
	struct zl_ipam_run *n = rs->root, *best = NULL;

	while (n) {
		if (n->last >= x) {
			best = n;
			n = n->left;
		} else {
			n = n->right;
		}
	}
	return best;
}

/* ---- Runs ---- */

void zl_ipam_runs_init(struct zl_ipam_runs *rs)
{
	memset(rs, 0, sizeof(*rs));
}

void zl_ipam_runs_clear(struct zl_ipam_runs *rs)
{
	tree_free(rs->root);
	zl_ipam_runs_init(rs);
}

bool zl_ipam_runs_contains(const struct zl_ipam_runs *rs, zl_u128 x)
{
	const struct zl_ipam_run *r = first_ending_at_or_after(rs, x);

	return r && r->first <= x;
}

bool zl_ipam_runs_range_free(const struct zl_ipam_runs *rs, zl_u128 first, zl_u128 last)
{
	const struct zl_ipam_run *r = first_ending_at_or_after(rs, first);

	return !r || r->first > last;
}

int zl_ipam_runs_add(struct zl_ipam_runs *rs, zl_u128 first, zl_u128 last)
{
	struct zl_ipam_run *below = NULL, *above = NULL, *node;

	if (first > last)
		return -EINVAL;
	if (!zl_ipam_runs_range_free(rs, first, last))
		return -EEXIST;
	/* The range is free, so a run reaching first - 1 ends exactly there, and one reaching last + 1
	 * starts exactly there: those are the neighbours to merge with. */
	if (first > 0) {
		below = first_ending_at_or_after(rs, first - 1);
		if (below && below->first > first - 1)
			below = NULL;
	}
	if (last < ZL_U128_MAX) {
		above = first_ending_at_or_after(rs, last + 1);
		if (above && above->first != last + 1)
			above = NULL;
	}
	if (below && above) {
		below->last = above->last;
		rs->root = tree_delete(rs->root, above->first);
		rs->nruns--;
	} else if (below) {
		below->last = last;
	} else if (above) {
		above->first = first; /* still above every earlier run: order kept */
	} else {
		node = calloc(1, sizeof(*node));
		if (!node)
			return -ENOMEM;
		node->first = first;
		node->last = last;
		node->height = 1;
		rs->root = tree_insert(rs->root, node);
		rs->nruns++;
	}
	rs->count += last - first + 1;
	return 0;
}

int zl_ipam_runs_remove(struct zl_ipam_runs *rs, zl_u128 first, zl_u128 last)
{
	struct zl_ipam_run *r, *tail;

	if (first > last)
		return -EINVAL;
	/* Runs are maximal, so a range whose every member is present lies inside a single run. */
	r = first_ending_at_or_after(rs, first);
	if (!r || r->first > first || r->last < last)
		return -ENOENT;
	if (r->first == first && r->last == last) {
		rs->root = tree_delete(rs->root, first);
		rs->nruns--;
	} else if (r->first == first) {
		r->first = last + 1;
	} else if (r->last == last) {
		r->last = first - 1;
	} else {
		tail = calloc(1, sizeof(*tail));
		if (!tail)
			return -ENOMEM;
		tail->first = last + 1;
		tail->last = r->last;
		tail->height = 1;
		r->last = first - 1;
		rs->root = tree_insert(rs->root, tail);
		rs->nruns++;
	}
	rs->count -= last - first + 1;
	return 0;
}

bool zl_ipam_runs_find_free(const struct zl_ipam_runs *rs, zl_u128 from, zl_u128 to, unsigned block_bits,
			    zl_u128 *out)
{
	zl_u128 bmask, b, last_b, x;
	const struct zl_ipam_run *r;

	if (block_bits >= 128 || from > to)
		return false;
	bmask = zl_u128_low_mask(block_bits);
	/* Work in block numbers so nothing overflows: the first block starting at or after from, and
	 * the last block ending at or before to. With block_bits >= 1 a block number is < 2^127, so
	 * the + 1 below cannot wrap; with block_bits = 0 it is never taken. */
	b = (from >> block_bits) + ((from & bmask) ? 1 : 0);
	last_b = to >> block_bits;
	if ((to & bmask) != bmask) {
		if (last_b == 0)
			return false;
		last_b--;
	}
	while (b <= last_b) {
		x = b << block_bits;
		r = first_ending_at_or_after(rs, x);
		if (!r || r->first > x + bmask) {
			*out = x;
			return true;
		}
		/* The block meets run r: skip to the first block after it. r->last + 1 cannot wrap,
		 * as r ends inside block b <= last_b, which is not the last integer unless free. */
		if (r->last >= (last_b << block_bits) + bmask)
			return false;
		b = ((r->last + 1) >> block_bits) + (((r->last + 1) & bmask) ? 1 : 0);
	}
	return false;
}

static void runs_walk(const struct zl_ipam_run *n, zl_ipam_runs_fn fn, void *ctx)
{
	while (n) {
		runs_walk(n->left, fn, ctx);
		fn(ctx, n->first, n->last);
		n = n->right;
	}
}

void zl_ipam_runs_for_each(const struct zl_ipam_runs *rs, zl_ipam_runs_fn fn, void *ctx)
{
	runs_walk(rs->root, fn, ctx);
}

/* ---- The allocator ---- */

struct zl_ipam {
	struct zl_prefix range;
	zl_u128 lo, hi;     /* usable offsets from the network address */
	zl_u128 cursor;     /* in [lo, hi]: where allocate_next starts looking */
	struct zl_ipam_runs used;
};

int zl_ipam_new(const struct zl_prefix *range, struct zl_ipam **out, char *err, size_t errlen)
{
	char text[ZL_PREFIX_STRLEN];
	struct zl_ipam *a;
	unsigned host;

	if (err && errlen)
		err[0] = '\0';
	if (!zl_prefix_valid(range)) {
		zl_cidr_errorf(err, errlen, "invalid address range");
		return -EINVAL;
	}
	if (!zl_prefix_is_network(range)) {
		zl_cidr_errorf(err, errlen, "range %s has host bits set", zl_prefix_format(range, text));
		return -EINVAL;
	}
	host = zl_ip_bits(range->ip.family) - range->len;
	/* IPv4 needs room for network + broadcast + one, IPv6 for network + one. */
	if (host < (range->ip.family == AF_INET ? 2u : 1u)) {
		zl_cidr_errorf(err, errlen, "range %s has no usable addresses", zl_prefix_format(range, text));
		return -EINVAL;
	}
	a = calloc(1, sizeof(*a));
	if (!a) {
		zl_cidr_errorf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	a->range = *range;
	a->lo = 1;
	a->hi = zl_u128_low_mask(host) - (range->ip.family == AF_INET ? 1 : 0);
	a->cursor = a->lo;
	zl_ipam_runs_init(&a->used);
	*out = a;
	return 0;
}

void zl_ipam_free(struct zl_ipam *a)
{
	if (!a)
		return;
	zl_ipam_runs_clear(&a->used);
	free(a);
}

const struct zl_prefix *zl_ipam_range(const struct zl_ipam *a)
{
	return &a->range;
}

/* The offset of a usable ip, or an error naming why it is not usable. */
static int usable_offset(const struct zl_ipam *a, const struct zl_ip *ip, zl_u128 *off, char *err, size_t errlen)
{
	char t1[ZL_IP_STRLEN], t2[ZL_PREFIX_STRLEN];

	if (err && errlen)
		err[0] = '\0';
	if (!zl_prefix_contains(&a->range, ip)) {
		zl_cidr_errorf(err, errlen, "address %s is outside the range %s", zl_ip_format(ip, t1),
			       zl_prefix_format(&a->range, t2));
		return -ERANGE;
	}
	*off = zl_prefix_offset(&a->range, ip);
	if (*off < a->lo || *off > a->hi) {
		zl_cidr_errorf(err, errlen, "address %s is the %s address of the range %s", zl_ip_format(ip, t1),
			       *off < a->lo ? "network" : "broadcast", zl_prefix_format(&a->range, t2));
		return -ERANGE;
	}
	return 0;
}

bool zl_ipam_is_usable(const struct zl_ipam *a, const struct zl_ip *ip)
{
	zl_u128 off;

	return usable_offset(a, ip, &off, NULL, 0) == 0;
}

bool zl_ipam_is_allocated(const struct zl_ipam *a, const struct zl_ip *ip)
{
	zl_u128 off;

	return usable_offset(a, ip, &off, NULL, 0) == 0 && zl_ipam_runs_contains(&a->used, off);
}

static int no_space(char *err, size_t errlen)
{
	zl_cidr_errorf(err, errlen, "no available addresses");
	return -ENOSPC;
}

static int take(struct zl_ipam *a, zl_u128 off, struct zl_ip *out, char *err, size_t errlen)
{
	int r = zl_ipam_runs_add(&a->used, off, off);

	if (r) {
		zl_cidr_errorf(err, errlen, r == -ENOMEM ? "out of memory" : "address already allocated");
		return r;
	}
	if (out)
		zl_prefix_at(&a->range, off, out);
	return 0;
}

int zl_ipam_allocate_next(struct zl_ipam *a, struct zl_ip *out, char *err, size_t errlen)
{
	zl_u128 off;
	int r;

	if (err && errlen)
		err[0] = '\0';
	if (!zl_ipam_runs_find_free(&a->used, a->cursor, a->hi, 0, &off) &&
	    !(a->cursor > a->lo && zl_ipam_runs_find_free(&a->used, a->lo, a->cursor - 1, 0, &off)))
		return no_space(err, errlen);
	r = take(a, off, out, err, errlen);
	if (!r)
		a->cursor = off == a->hi ? a->lo : off + 1;
	return r;
}

int zl_ipam_allocate_first(struct zl_ipam *a, struct zl_ip *out, char *err, size_t errlen)
{
	zl_u128 off;

	if (err && errlen)
		err[0] = '\0';
	if (!zl_ipam_runs_find_free(&a->used, a->lo, a->hi, 0, &off))
		return no_space(err, errlen);
	return take(a, off, out, err, errlen);
}

int zl_ipam_allocate_specific(struct zl_ipam *a, const struct zl_ip *ip, char *err, size_t errlen)
{
	char text[ZL_IP_STRLEN];
	zl_u128 off;
	int r = usable_offset(a, ip, &off, err, errlen);

	if (r)
		return r;
	if (zl_ipam_runs_contains(&a->used, off)) {
		zl_cidr_errorf(err, errlen, "address %s is already allocated", zl_ip_format(ip, text));
		return -EEXIST;
	}
	return take(a, off, NULL, err, errlen);
}

int zl_ipam_mark(struct zl_ipam *a, const struct zl_ip *ip, char *err, size_t errlen)
{
	zl_u128 off;
	int r = usable_offset(a, ip, &off, err, errlen);

	if (r || zl_ipam_runs_contains(&a->used, off))
		return r;
	return take(a, off, NULL, err, errlen);
}

int zl_ipam_release(struct zl_ipam *a, const struct zl_ip *ip, char *err, size_t errlen)
{
	char text[ZL_IP_STRLEN];
	zl_u128 off;
	int r = usable_offset(a, ip, &off, err, errlen);

	if (r)
		return r;
	r = zl_ipam_runs_remove(&a->used, off, off);
	if (r == -ENOENT)
		zl_cidr_errorf(err, errlen, "address %s is not allocated", zl_ip_format(ip, text));
	else if (r)
		zl_cidr_errorf(err, errlen, "out of memory");
	return r;
}

uint64_t zl_ipam_allocated(const struct zl_ipam *a)
{
	return zl_u128_sat64(a->used.count);
}

zl_u128 zl_ipam_capacity(const struct zl_ipam *a)
{
	return a->hi - a->lo + 1;
}

zl_u128 zl_ipam_free_count(const struct zl_ipam *a)
{
	return zl_ipam_capacity(a) - a->used.count;
}

struct visit_ctx {
	const struct zl_ipam *a;
	zl_ipam_visit_fn fn;
	void *ctx;
};

static void visit_run(void *ctx, zl_u128 first, zl_u128 last)
{
	struct visit_ctx *v = ctx;
	struct zl_ip ip;

	for (zl_u128 off = first;; off++) {
		zl_prefix_at(&v->a->range, off, &ip);
		v->fn(v->ctx, &ip);
		if (off == last)
			break;
	}
}

void zl_ipam_for_each(const struct zl_ipam *a, zl_ipam_visit_fn fn, void *ctx)
{
	struct visit_ctx v = { a, fn, ctx };

	zl_ipam_runs_for_each(&a->used, visit_run, &v);
}

struct export_ctx {
	struct zl_ip *ips;
	size_t n;
};

static void export_one(void *ctx, const struct zl_ip *ip)
{
	struct export_ctx *e = ctx;

	e->ips[e->n++] = *ip;
}

int zl_ipam_export(const struct zl_ipam *a, struct zl_ip **ips, size_t *n)
{
	struct export_ctx e = { NULL, 0 };

	*ips = NULL;
	*n = 0;
	if (!a->used.count)
		return 0;
	if (a->used.count > SIZE_MAX / sizeof(struct zl_ip))
		return -ENOMEM;
	e.ips = malloc((size_t)a->used.count * sizeof(struct zl_ip));
	if (!e.ips)
		return -ENOMEM;
	zl_ipam_for_each(a, export_one, &e);
	*ips = e.ips;
	*n = e.n;
	return 0;
}

static zl_u128 highest(const struct zl_ipam_runs *rs)
{
	const struct zl_ipam_run *n = rs->root;

	while (n->right)
		n = n->right;
	return n->last;
}

int zl_ipam_import(struct zl_ipam *a, const struct zl_ip *ips, size_t n, char *err, size_t errlen)
{
	struct zl_ipam_runs fresh;
	char text[ZL_IP_STRLEN];
	zl_u128 off, top;
	int r = 0;

	if (err && errlen)
		err[0] = '\0';
	zl_ipam_runs_init(&fresh);
	for (size_t i = 0; i < n && !r; i++) {
		r = usable_offset(a, &ips[i], &off, err, errlen);
		if (!r)
			r = zl_ipam_runs_add(&fresh, off, off);
		if (r == -EEXIST)
			zl_cidr_errorf(err, errlen, "address %s is listed twice", zl_ip_format(&ips[i], text));
		else if (r == -ENOMEM)
			zl_cidr_errorf(err, errlen, "out of memory");
	}
	if (r) {
		zl_ipam_runs_clear(&fresh);
		return r;
	}
	zl_ipam_runs_clear(&a->used);
	a->used = fresh;
	a->cursor = a->lo;
	if (a->used.root) {
		top = highest(&a->used);
		a->cursor = top == a->hi ? a->lo : top + 1;
	}
	return 0;
}
