/* IP address allocation inside one prefix (the reference's IpAllocator), IPv4 or IPv6.
 *
 * Usable addresses: IPv4 skips the network and the broadcast address (so a /31 or /32 has none and is
 * refused); IPv6 skips only the network address (a /128 is refused). Addresses are handled as offsets
 * from the network address, lo = 1 .. hi = 2^host_bits - 2 (IPv4) or - 1 (IPv6).
 *
 *  - allocate_next:     the lowest free address at or after the cursor, wrapping to the start of the
 *                       range; the cursor then moves just past it. Recently released addresses are
 *                       thus not handed out again until the cursor comes round.
 *  - allocate_first:    the lowest free address of the range (the cursor does not move).
 *  - allocate_specific: that address; -ERANGE outside the usable range, -EEXIST when taken.
 *  - mark:              like specific but idempotent (restoring from peers or state).
 *  - release:           -ENOENT when not allocated.
 *  - import:            replaces the allocated set with a list (the state file's allocated[]),
 *                       atomically: on error nothing changes. The cursor goes just past the highest
 *                       imported address, so a restarted leader keeps moving forward.
 * Exhaustion is -ENOSPC with the message "no available addresses".
 *
 * Representation and cost: the allocated set is kept as maximal runs of consecutive offsets in an AVL
 * tree keyed by run start (struct zl_ipam_runs below, also used by slices.c for slots). Every query
 * above is one descent to "the first run ending at or after x": the next free address at or after x is
 * x itself or that run's end + 1. So each operation costs O(log r), r = number of runs <= allocated + 1,
 * independent of the size of the range and of how full it is. Sequential allocation keeps r = 1, so
 * filling a /16 costs O(1) per address (linear in total); the worst case (every other address taken)
 * is O(log n). Memory is O(r) nodes of 64 bytes: a /48 or even ::/0 costs nothing until used. Not
 * thread safe. */
#ifndef ZL_OVERLAY_IPAM_H
#define ZL_OVERLAY_IPAM_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "overlay/cidr.h"

/* ---- Runs: a set of 128-bit integers stored as maximal runs (the building block) ---- */

struct zl_ipam_run;

struct zl_ipam_runs {
	struct zl_ipam_run *root; /* AVL tree of disjoint, non-adjacent runs, keyed by first */
	size_t nruns;
	zl_u128 count;            /* members; wraps to 0 only if all 2^128 integers are members */
};

void zl_ipam_runs_init(struct zl_ipam_runs *rs);
void zl_ipam_runs_clear(struct zl_ipam_runs *rs);
bool zl_ipam_runs_contains(const struct zl_ipam_runs *rs, zl_u128 x);
/* True when no member lies in [first, last]. */
bool zl_ipam_runs_range_free(const struct zl_ipam_runs *rs, zl_u128 first, zl_u128 last);
/* Adds [first, last]: -EINVAL if first > last, -EEXIST if any of it is a member (nothing added), -ENOMEM. */
int zl_ipam_runs_add(struct zl_ipam_runs *rs, zl_u128 first, zl_u128 last);
/* Removes [first, last]: -ENOENT unless all of it is a member (nothing removed), -ENOMEM. */
int zl_ipam_runs_remove(struct zl_ipam_runs *rs, zl_u128 first, zl_u128 last);
/* The lowest x in [from, to] that is a multiple of 2^block_bits (block_bits < 128) with the whole
 * block [x, x + 2^block_bits - 1] inside [from, to] and free. O((k + 1) log r) where k is the number
 * of runs the search has to step over: O(log r) when block_bits is 0. */
bool zl_ipam_runs_find_free(const struct zl_ipam_runs *rs, zl_u128 from, zl_u128 to, unsigned block_bits,
			    zl_u128 *out);
/* Calls fn for each run in ascending order; fn must not modify the set. */
typedef void (*zl_ipam_runs_fn)(void *ctx, zl_u128 first, zl_u128 last);
void zl_ipam_runs_for_each(const struct zl_ipam_runs *rs, zl_ipam_runs_fn fn, void *ctx);

/* ---- The allocator ---- */

struct zl_ipam;

/* range must be a network address (host bits zero) with at least one usable address. -EINVAL, -ENOMEM. */
int zl_ipam_new(const struct zl_prefix *range, struct zl_ipam **out, char *err, size_t errlen);
void zl_ipam_free(struct zl_ipam *a);

const struct zl_prefix *zl_ipam_range(const struct zl_ipam *a);

int zl_ipam_allocate_next(struct zl_ipam *a, struct zl_ip *out, char *err, size_t errlen);
int zl_ipam_allocate_first(struct zl_ipam *a, struct zl_ip *out, char *err, size_t errlen);
int zl_ipam_allocate_specific(struct zl_ipam *a, const struct zl_ip *ip, char *err, size_t errlen);
int zl_ipam_mark(struct zl_ipam *a, const struct zl_ip *ip, char *err, size_t errlen);
int zl_ipam_release(struct zl_ipam *a, const struct zl_ip *ip, char *err, size_t errlen);

/* In the range and neither the network nor (IPv4) the broadcast address. */
bool zl_ipam_is_usable(const struct zl_ipam *a, const struct zl_ip *ip);
bool zl_ipam_is_allocated(const struct zl_ipam *a, const struct zl_ip *ip);

uint64_t zl_ipam_allocated(const struct zl_ipam *a);
/* Usable addresses in the range (up to 2^128 - 1), and how many of them are free. */
zl_u128 zl_ipam_capacity(const struct zl_ipam *a);
zl_u128 zl_ipam_free_count(const struct zl_ipam *a);

/* Each allocated address in ascending order; fn must not modify the allocator. */
typedef void (*zl_ipam_visit_fn)(void *ctx, const struct zl_ip *ip);
void zl_ipam_for_each(const struct zl_ipam *a, zl_ipam_visit_fn fn, void *ctx);
/* The allocated addresses in ascending order in a new array (*ips = NULL when empty; free() it). */
int zl_ipam_export(const struct zl_ipam *a, struct zl_ip **ips, size_t *n);
/* Replaces the allocated set with ips (any order). -ERANGE for an unusable address, -EEXIST for one
 * listed twice, -ENOMEM; on error the allocator is unchanged. */
int zl_ipam_import(struct zl_ipam *a, const struct zl_ip *ips, size_t n, char *err, size_t errlen);
#endif
