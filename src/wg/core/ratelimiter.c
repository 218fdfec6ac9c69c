/* Per-source token buckets for handshake messages (see ratelimiter.h).
 *
 * Tokens are kept in nanoseconds of credit: a message costs one second / WG_RATELIMIT_PER_SEC, credit
 * grows with elapsed time and is capped at WG_RATELIMIT_BURST messages, so no timer or rounding is
 * needed. A source is an IPv4 address or an IPv6 /64 (one host usually owns a whole /64, so finer keys
 * would let it take thousands of buckets).
 *
 * Memory is fixed: WG_RATELIMIT_MAX_ENTRIES entries allocated up front, chained from buckets chosen by
 * SipHash-2-4 (libsodium's crypto_shorthash) under a per-instance random key, so a sender cannot aim
 * many sources at one chain. The entries also form a list in order of last use; its head is the stalest
 * entry, so recycling one unused for more than a second, or seeing that none is, costs O(1) instead of
 * a sweep. When every entry is live, new sources are refused: under a flood we fail closed, and known
 * sources keep their buckets. Assumes now_ns does not go backwards (a step back just earns no credit). */
#include "wg/core/ratelimiter.h"
#include <errno.h>
#include <sodium/crypto_shorthash.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include "wg/core/messages.h"

#define PACKET_COST (WG_NSEC_PER_SEC / WG_RATELIMIT_PER_SEC)
#define TOKEN_MAX (PACKET_COST * WG_RATELIMIT_BURST)
#define STALE_AFTER WG_NSEC_PER_SEC
#define NIL UINT32_MAX

enum { BUCKETS = WG_RATELIMIT_MAX_ENTRIES }; /* a power of two: chains average at most one entry */
_Static_assert((BUCKETS & (BUCKETS - 1)) == 0, "bucket count must be a power of two");

/* A source: the address family tag and up to 8 address bytes, as hashed and compared. */
struct source {
	uint8_t bytes[9];
};

struct entry {
	uint64_t last_ns;
	uint64_t tokens; /* nanoseconds of credit, at most TOKEN_MAX */
	uint32_t chain_next;
	uint32_t lru_prev, lru_next;
	uint16_t bucket;
	struct source src;
};

struct wg_ratelimiter {
	uint8_t hash_key[crypto_shorthash_KEYBYTES];
	uint32_t used;               /* entries[0..used) have been handed out at least once */
	uint32_t lru_head, lru_tail; /* least recently used first */
	uint32_t bucket[BUCKETS];
	struct entry entries[WG_RATELIMIT_MAX_ENTRIES];
};

static bool random_key(uint8_t *key, size_t len)
{
	while (len) {
		ssize_t got = getrandom(key, len, 0);

		if (got < 0) {
			if (errno == EINTR)
				continue;
			return false;
		}
		key += got;
		len -= (size_t)got;
	}
	return true;
}

struct wg_ratelimiter *wg_ratelimiter_new(void)
{
	struct wg_ratelimiter *r = malloc(sizeof(*r));

	if (!r)
		return NULL;
	if (!random_key(r->hash_key, sizeof(r->hash_key))) {
		free(r);
		return NULL;
	}
	r->used = 0;
	r->lru_head = r->lru_tail = NIL;
	memset(r->bucket, 0xff, sizeof(r->bucket)); /* every bucket NIL */
	return r;
}

void wg_ratelimiter_free(struct wg_ratelimiter *r)
{
	if (!r)
		return;
	explicit_bzero(r->hash_key, sizeof(r->hash_key));
	free(r);
}

static bool source_of(struct source *s, const uint8_t *addr, unsigned addr_len)
{
	if (!addr || (addr_len != 4 && addr_len != 16))
		return false;
	memset(s, 0, sizeof(*s));
	s->bytes[0] = (uint8_t)addr_len;
	memcpy(s->bytes + 1, addr, addr_len == 4 ? 4 : 8); /* IPv6: the /64 */
	return true;
}

static uint16_t bucket_of(const struct wg_ratelimiter *r, const struct source *s)
{
	uint64_t h;

	crypto_shorthash((unsigned char *)&h, s->bytes, sizeof(s->bytes), r->hash_key);
	return (uint16_t)(h & (BUCKETS - 1));
}

static uint32_t find(const struct wg_ratelimiter *r, uint16_t bucket, const struct source *s)
{
	uint32_t i;

	for (i = r->bucket[bucket]; i != NIL; i = r->entries[i].chain_next)
		if (!memcmp(&r->entries[i].src, s, sizeof(*s)))
			break;
	return i;
}

static void chain_unlink(struct wg_ratelimiter *r, uint32_t idx)
{
	uint32_t *link = &r->bucket[r->entries[idx].bucket];

	while (*link != idx)
		link = &r->entries[*link].chain_next;
	*link = r->entries[idx].chain_next;
}

static void lru_unlink(struct wg_ratelimiter *r, uint32_t idx)
{
	struct entry *e = &r->entries[idx];

	if (e->lru_prev != NIL)
		r->entries[e->lru_prev].lru_next = e->lru_next;
	else
		r->lru_head = e->lru_next;
	if (e->lru_next != NIL)
		r->entries[e->lru_next].lru_prev = e->lru_prev;
	else
		r->lru_tail = e->lru_prev;
}

static void lru_append(struct wg_ratelimiter *r, uint32_t idx)
{
	struct entry *e = &r->entries[idx];

	e->lru_prev = r->lru_tail;
	e->lru_next = NIL;
	if (r->lru_tail != NIL)
		r->entries[r->lru_tail].lru_next = idx;
	else
		r->lru_head = idx;
	r->lru_tail = idx;
}

/* A never-used entry, else the stalest one if unused for more than STALE_AFTER (its bucket would be
 * full again by now, so forgetting it changes nothing), else NIL: every entry is live. */
static uint32_t take_entry(struct wg_ratelimiter *r, uint64_t now_ns)
{
	uint32_t idx = r->lru_head;

	if (r->used < WG_RATELIMIT_MAX_ENTRIES)
		return r->used++;
	if (now_ns <= r->entries[idx].last_ns || now_ns - r->entries[idx].last_ns <= STALE_AFTER)
		return NIL;
	chain_unlink(r, idx);
	lru_unlink(r, idx);
	return idx;
}

static bool admit_new(struct wg_ratelimiter *r, uint16_t bucket, const struct source *s, uint64_t now_ns)
{
	uint32_t idx = take_entry(r, now_ns);
	struct entry *e;

	if (idx == NIL)
		return false;
	e = &r->entries[idx];
	e->src = *s;
	e->bucket = bucket;
	e->last_ns = now_ns;
	e->tokens = TOKEN_MAX - PACKET_COST; /* a full bucket, minus this message */
	e->chain_next = r->bucket[bucket];
	r->bucket[bucket] = idx;
	lru_append(r, idx);
	return true;
}

/* Credits the time since last use, then spends one message if there is enough. A refused attempt still
 * counts as use: a source that keeps sending keeps its (empty) bucket instead of a fresh one. */
static bool spend(struct wg_ratelimiter *r, uint32_t idx, uint64_t now_ns)
{
	struct entry *e = &r->entries[idx];

	if (now_ns > e->last_ns) {
		uint64_t elapsed = now_ns - e->last_ns;

		e->tokens = elapsed >= TOKEN_MAX - e->tokens ? TOKEN_MAX : e->tokens + elapsed;
		e->last_ns = now_ns;
	}
	lru_unlink(r, idx);
	lru_append(r, idx);
	if (e->tokens < PACKET_COST)
		return false;
	e->tokens -= PACKET_COST;
	return true;
}

bool wg_ratelimiter_allow(struct wg_ratelimiter *r, const uint8_t *addr, unsigned addr_len, uint64_t now_ns)
{
	struct source s;
	uint16_t bucket;
	uint32_t idx;

	if (!source_of(&s, addr, addr_len))
		return false;
	bucket = bucket_of(r, &s);
	idx = find(r, bucket, &s);
	if (idx != NIL)
		return spend(r, idx, now_ns);
	return admit_new(r, bucket, &s, now_ns);
}
