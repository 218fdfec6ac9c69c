/* Node slices and service subnets carved out of the cluster CIDR (the reference's NodeSliceAllocator,
 * plus a service-subnet registry that can never overlap it).
 *
 * The cluster prefix C (e.g. 10.200.0.0/16) is cut into 2^k slots of the slice prefix S (/28), k = S - C
 * (1..128): /16 -> /28 is 4096 slots, /48 -> /64 is 65536, /48 -> /112 is 2^64. Slot i is the slice
 * at offset i * 2^(bits - S) from the cluster's network address.
 *
 * Nodes: a node gets one slot. Its start slot is FNV-1a-64(node_id) mod 2^k (offset basis
 * 0xcbf29ce484222325, prime 0x100000001b3, over the bytes of node_id); when that slot is taken the
 * search moves linearly forward, wrapping after the last slot. Assigning a node that already has a
 * slice returns the same slice. When every slot is taken: -ENOSPC, message "no available addresses".
 *
 * Services: the reference hashes service subnets and node slices independently over the same range,
 * so the two can overlap. Here a service subnet is a block of 2^j slots (a /P with C < P <= S, j = S - P,
 * aligned to its size) taken from the SAME slot set as the nodes: a slot belongs to at most one owner,
 * so a service subnet and a node slice can never overlap, by construction and without reserving part
 * of the range up front (the /16 -> /28 cluster still holds 4096 node slices when no service exists).
 * Start block = FNV-1a-64("svc:" + name) mod 2^(k - j), then linear probing block by block, wrapping.
 * Service names live in their own namespace: a node and a service may share a name.
 *
 * Costs: slots taken are kept as runs (zl_ipam_runs, see ipam.h), owners in a hash table. Assigning a
 * node is O(log r) (r = runs of taken slots) plus O(1) expected for the table; nothing is allocated per
 * slot, so 2^64 slots cost nothing. Assigning a service block steps over the runs in its way: O(r log r)
 * worst case when the space is fragmented, O(log r) typically. Not thread safe. */
#ifndef ZL_OVERLAY_SLICES_H
#define ZL_OVERLAY_SLICES_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "overlay/cidr.h"

enum zl_slice_kind {
	ZL_SLICE_NODE = 0,
	ZL_SLICE_SERVICE = 1,
};

enum {
	ZL_SLICES_NAME_MAX = 255, /* bytes of a node id or service name (at least 1) */
};

#define ZL_SLICES_SERVICE_HASH_PREFIX "svc:"

struct zl_slices;

/* FNV-1a, 64 bits, over len bytes of data. */
uint64_t zl_slices_fnv1a64(const void *data, size_t len);

/* cluster must be a network address; cluster->len < slice_prefix <= 32 (IPv4) or 128 (IPv6).
 * -EINVAL with a message otherwise, -ENOMEM. */
int zl_slices_new(const struct zl_prefix *cluster, unsigned slice_prefix, struct zl_slices **out, char *err,
		  size_t errlen);
void zl_slices_free(struct zl_slices *s);

const struct zl_prefix *zl_slices_cluster(const struct zl_slices *s);
unsigned zl_slices_slice_prefix(const struct zl_slices *s);
/* 2^k; ZL_U128_MAX (2^128 - 1) for a ::/0 cluster cut into /128s. */
zl_u128 zl_slices_slot_count(const struct zl_slices *s);
/* How many nodes, and how many services, hold a slice. */
size_t zl_slices_count(const struct zl_slices *s, enum zl_slice_kind kind);

/* Nodes. assign: 0 with the slice in out (also when the node already had it); -EINVAL for a bad id;
 * -ENOSPC; -ENOMEM. release: -ENOENT when the node has no slice. lookup: false when it has none. */
int zl_slices_assign(struct zl_slices *s, const char *node_id, struct zl_prefix *out, char *err, size_t errlen);
int zl_slices_release(struct zl_slices *s, const char *node_id, char *err, size_t errlen);
bool zl_slices_lookup(const struct zl_slices *s, const char *node_id, struct zl_prefix *out);

/* Services. prefix_len is the subnet's prefix length, cluster->len < prefix_len <= slice_prefix;
 * 0 means slice_prefix (one slot). Assigning a service that already has a subnet returns it when the
 * length matches and -EEXIST otherwise. Errors as for nodes. */
int zl_slices_assign_service(struct zl_slices *s, const char *name, unsigned prefix_len, struct zl_prefix *out,
			     char *err, size_t errlen);
int zl_slices_release_service(struct zl_slices *s, const char *name, char *err, size_t errlen);
bool zl_slices_lookup_service(const struct zl_slices *s, const char *name, struct zl_prefix *out);

/* Snapshot: what the state file records ({cluster_cidr, slice_prefix, assigned[[node, cidr]]}, with
 * services as entries of their own kind). */
struct zl_slices_entry {
	enum zl_slice_kind kind;
	char *name;
	struct zl_prefix prefix;
};

struct zl_slices_snapshot {
	struct zl_prefix cluster;
	unsigned slice_prefix;
	struct zl_slices_entry *entries;
	size_t n;
};

/* Fills snap with copies (entries in address order). 0 or -ENOMEM; free with zl_slices_snapshot_clear. */
int zl_slices_snapshot(const struct zl_slices *s, struct zl_slices_snapshot *snap);
void zl_slices_snapshot_clear(struct zl_slices_snapshot *snap);
/* Builds a new allocator from snap after checking it: the cluster and slice prefix as for
 * zl_slices_new; every entry of a known kind with a valid, unique name; a node's prefix exactly the
 * slice prefix, a service's between the cluster's and the slice prefix; each inside the cluster, aligned
 * (host bits zero), and overlapping no other entry. -EINVAL, -ERANGE (outside the cluster), -EEXIST
 * (duplicate or overlap) or -ENOMEM, with a message naming the entry. */
int zl_slices_restore(const struct zl_slices_snapshot *snap, struct zl_slices **out, char *err, size_t errlen);
#endif
