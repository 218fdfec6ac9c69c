/* The table of our 32-bit session indices: maps the receiver index of an incoming response, cookie
 * reply or data message to the pending handshake or keypair it belongs to. Indices are random, so an
 * observer cannot link sessions; entries are embedded in their owners, so the table never allocates per
 * packet (only when it grows). */
#ifndef WG_INDEX_TABLE_H
#define WG_INDEX_TABLE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum wg_index_kind { WG_INDEX_HANDSHAKE = 1, WG_INDEX_KEYPAIR = 2 };

struct wg_index_entry {
	uint32_t index;
	uint8_t kind;          /* enum wg_index_kind; 0 = not in the table */
	void *owner;           /* struct wg_peer for a handshake, struct wg_keypair for a keypair */
	struct wg_index_entry *next;
};

struct wg_index_table {
	struct wg_index_entry **buckets;
	size_t bucket_count;   /* power of two */
	size_t count;
};

bool wg_index_table_init(struct wg_index_table *t);
void wg_index_table_destroy(struct wg_index_table *t);
/* Gives e a fresh random index not in use and inserts it. False only on allocation failure. */
bool wg_index_table_insert_new(struct wg_index_table *t, struct wg_index_entry *e, enum wg_index_kind kind, void *owner);
/* Puts e in the table under old's index (old is removed): a completed handshake hands its index over to
 * the session it produced, because the peer addresses that session by the same number. */
void wg_index_table_replace(struct wg_index_table *t, struct wg_index_entry *old, struct wg_index_entry *e,
			    enum wg_index_kind kind, void *owner);
/* No-op for an entry that is not in the table. */
void wg_index_table_remove(struct wg_index_table *t, struct wg_index_entry *e);
/* The entry with this index whose kind is in kinds_mask, or NULL. */
struct wg_index_entry *wg_index_table_lookup(const struct wg_index_table *t, uint32_t index, unsigned kinds_mask);
#endif
