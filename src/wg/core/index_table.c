/* Chained hash table of session indices (see index_table.h). Indices are uniformly random, so the low
 * bits are a good bucket hash and an attacker cannot aim at one bucket: we choose every index. */
#include "wg/core/index_table.h"
#include <stdlib.h>
#include "wg/core/crypto.h"

enum { INITIAL_BUCKETS = 64 };

bool wg_index_table_init(struct wg_index_table *t)
{
	t->buckets = calloc(INITIAL_BUCKETS, sizeof(*t->buckets));
	t->bucket_count = INITIAL_BUCKETS;
	t->count = 0;
	return t->buckets != NULL;
}

void wg_index_table_destroy(struct wg_index_table *t)
{
	free(t->buckets);
	t->buckets = NULL;
	t->bucket_count = t->count = 0;
}

static struct wg_index_entry **bucket_of(const struct wg_index_table *t, uint32_t index)
{
	return &t->buckets[index & (t->bucket_count - 1)];
}

static bool grow(struct wg_index_table *t)
{
	size_t old_count = t->bucket_count;
	struct wg_index_entry **old = t->buckets;
	struct wg_index_entry **fresh = calloc(old_count * 2, sizeof(*fresh));

	if (!fresh)
		return false;
	t->buckets = fresh;
	t->bucket_count = old_count * 2;
	for (size_t i = 0; i < old_count; i++) {
		for (struct wg_index_entry *e = old[i], *next; e; e = next) {
			struct wg_index_entry **b = bucket_of(t, e->index);
			next = e->next;
			e->next = *b;
			*b = e;
		}
	}
	free(old);
	return true;
}

static bool in_use(const struct wg_index_table *t, uint32_t index)
{
	for (const struct wg_index_entry *e = *bucket_of(t, index); e; e = e->next)
		if (e->index == index)
			return true;
	return false;
}

bool wg_index_table_insert_new(struct wg_index_table *t, struct wg_index_entry *e, enum wg_index_kind kind, void *owner)
{
	wg_index_table_remove(t, e);
	if (t->count >= t->bucket_count && !grow(t))
		return false;
	do
		e->index = wg_random_u32();
	while (in_use(t, e->index));
	e->kind = (uint8_t)kind;
	e->owner = owner;
	e->next = *bucket_of(t, e->index);
	*bucket_of(t, e->index) = e;
	t->count++;
	return true;
}

void wg_index_table_replace(struct wg_index_table *t, struct wg_index_entry *old, struct wg_index_entry *e,
			    enum wg_index_kind kind, void *owner)
{
	uint32_t index = old->index;

	wg_index_table_remove(t, old);
	wg_index_table_remove(t, e);
	e->index = index;
	e->kind = (uint8_t)kind;
	e->owner = owner;
	e->next = *bucket_of(t, index);
	*bucket_of(t, index) = e;
	t->count++;
}

void wg_index_table_remove(struct wg_index_table *t, struct wg_index_entry *e)
{
	if (!e->kind)
		return;
	for (struct wg_index_entry **p = bucket_of(t, e->index); *p; p = &(*p)->next) {
		if (*p == e) {
			*p = e->next;
			t->count--;
			break;
		}
	}
	e->kind = 0;
	e->next = NULL;
}

struct wg_index_entry *wg_index_table_lookup(const struct wg_index_table *t, uint32_t index, unsigned kinds_mask)
{
	for (struct wg_index_entry *e = *bucket_of(t, index); e; e = e->next)
		if (e->index == index)
			return (e->kind & kinds_mask) ? e : NULL;
	return NULL;
}
