/* Allowed-IPs: a longest-prefix-match trie per address family mapping prefixes to their owning peer.
 * Used for routing (destination -> peer) and for the source check on receive (source -> must be the
 * sending peer). Pure; allocates on insert only. Not thread safe. */
#ifndef WG_ALLOWEDIPS_H
#define WG_ALLOWEDIPS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct wg_allowedips;
struct wg_allowedips_node;

/* Embedded in each peer: the list of prefixes it owns, so removal and listing cost O(its prefixes). */
struct wg_allowedips_owner {
	struct wg_allowedips_node *first;
	size_t count;
};

struct wg_allowedips *wg_allowedips_new(void);
void wg_allowedips_free(struct wg_allowedips *t);

/* family: AF_INET (ip 4 bytes, cidr <= 32) or AF_INET6 (16 bytes, cidr <= 128). Host bits are masked off.
 * Insert assigns the prefix to owner, taking it from any previous owner. Returns 0, -EINVAL or -ENOMEM. */
int wg_allowedips_insert(struct wg_allowedips *t, int family, const uint8_t *ip, uint8_t cidr,
			 struct wg_allowedips_owner *owner);
/* Removes the prefix if owner holds exactly it. Returns 0, -ENOENT or -EINVAL. */
int wg_allowedips_remove(struct wg_allowedips *t, int family, const uint8_t *ip, uint8_t cidr,
			 struct wg_allowedips_owner *owner);
void wg_allowedips_remove_owner(struct wg_allowedips *t, struct wg_allowedips_owner *owner);

/* Longest-prefix match; NULL when no prefix covers ip. */
struct wg_allowedips_owner *wg_allowedips_lookup(const struct wg_allowedips *t, int family, const uint8_t *ip);

/* Calls visit for each prefix of owner, in insertion order. */
typedef void (*wg_allowedips_visit_fn)(void *ctx, int family, const uint8_t *ip, uint8_t cidr);
void wg_allowedips_for_each(const struct wg_allowedips_owner *owner, wg_allowedips_visit_fn visit, void *ctx);
#endif
