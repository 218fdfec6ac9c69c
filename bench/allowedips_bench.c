/* Allowed-IPs trie: lookup rate with P prefixes of realistic lengths, and heap bytes per prefix.
 * Prefixes are 80% IPv4 and 20% IPv6, with lengths drawn from a mix that resembles what WireGuard peers
 * carry (many host routes, many /24 and /64 subnets, some larger aggregates). They are spread over
 * OWNERS peers. Lookups are 90% addresses inside a random inserted prefix (random host bits) and 10%
 * uniformly random addresses (mostly misses), per family, pre-generated so only the lookup is timed.
 * Heap use is the growth of mallinfo2() in-use bytes across the inserts (the owners are the caller's).
 * Usage: allowedips_bench [P prefixes, default 100000] [lookups per family, default 1000000] [seed]
 * Prints: "lookups_per_sec_v4 <r> lookups_per_sec_v6 <r> lookups_per_sec <r> bytes_per_prefix <b>
 * prefixes <P> hit_rate <h>". */
#include <malloc.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "wg/core/allowedips.h"

enum { OWNERS = 10000, ROUNDS = 3 };

struct len_weight {
	uint8_t cidr;
	unsigned weight; /* percent */
};

static const struct len_weight v4_lengths[] = {
	{ 32, 35 }, { 24, 35 }, { 28, 5 }, { 30, 3 }, { 22, 6 }, { 20, 6 }, { 16, 7 }, { 12, 2 }, { 8, 1 },
};
static const struct len_weight v6_lengths[] = {
	{ 128, 40 }, { 64, 35 }, { 56, 8 }, { 48, 12 }, { 32, 5 },
};

struct prefix {
	uint8_t ip[16];
	uint8_t cidr;
	uint8_t family_len; /* 4 or 16 */
};

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

/* xorshift64*: fast and reproducible from a seed, good enough for test data. */
static uint64_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dULL;
}

static void rnd_bytes(uint8_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		b[i] = (uint8_t)(rnd() >> 32);
}

static uint8_t pick_length(const struct len_weight *t, size_t n)
{
	unsigned r = (unsigned)(rnd() % 100);
	for (size_t i = 0; i < n; i++) {
		if (r < t[i].weight)
			return t[i].cidr;
		r -= t[i].weight;
	}
	return t[n - 1].cidr;
}

static void mask(uint8_t *ip, size_t len, uint8_t cidr)
{
	for (size_t i = 0; i < len; i++) {
		int bits = (int)cidr - (int)(8 * i);
		ip[i] &= bits >= 8 ? 0xff : bits <= 0 ? 0 : (uint8_t)(0xff << (8 - bits));
	}
}

static void make_prefix(struct prefix *p)
{
	bool v6 = rnd() % 100 < 20;
	p->family_len = v6 ? 16 : 4;
	p->cidr = v6 ? pick_length(v6_lengths, sizeof(v6_lengths) / sizeof(v6_lengths[0]))
		     : pick_length(v4_lengths, sizeof(v4_lengths) / sizeof(v4_lengths[0]));
	rnd_bytes(p->ip, p->family_len);
	if (v6)
		p->ip[0] = 0x20 | (p->ip[0] & 0x0f); /* global unicast-looking 2000::/4, like real tables */
	mask(p->ip, p->family_len, p->cidr);
}

/* An address inside p: its prefix bits, random host bits. */
static void address_in(const struct prefix *p, uint8_t *out)
{
	uint8_t host[16];
	rnd_bytes(host, p->family_len);
	for (size_t i = 0; i < p->family_len; i++) {
		int bits = (int)p->cidr - (int)(8 * i);
		uint8_t m = bits >= 8 ? 0xff : bits <= 0 ? 0 : (uint8_t)(0xff << (8 - bits));
		out[i] = (uint8_t)((p->ip[i] & m) | (host[i] & ~m));
	}
}

/* Bytes allocated: small blocks from the arenas plus large ones served by mmap. */
static size_t heap_in_use(void)
{
	struct mallinfo2 mi = mallinfo2();
	return mi.uordblks + mi.hblkhd;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Fills n addresses of one family: 90% inside inserted prefixes of that family, 10% random. */
static void make_lookups(const struct prefix *ps, const size_t *idx, size_t nidx, size_t len, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (nidx && rnd() % 10 != 0)
			address_in(&ps[idx[rnd() % nidx]], out + i * len);
		else
			rnd_bytes(out + i * len, len);
	}
}

/* Best of ROUNDS passes over the addresses, in lookups per second; *hits counts matches of the last pass. */
static double time_lookups(const struct wg_allowedips *t, int family, const uint8_t *addrs, size_t len, size_t n,
			   size_t *hits)
{
	double best = 0;
	for (int r = 0; r < ROUNDS; r++) {
		size_t h = 0;
		double t0 = now_s();
		for (size_t i = 0; i < n; i++)
			h += wg_allowedips_lookup(t, family, addrs + i * len) != NULL;
		double rate = (double)n / (now_s() - t0);
		best = rate > best ? rate : best;
		*hits = h;
	}
	return best;
}

int main(int argc, char **argv)
{
	size_t np = argc > 1 ? strtoul(argv[1], NULL, 10) : 100000;
	size_t nl = argc > 2 ? strtoul(argv[2], NULL, 10) : 1000000;
	struct prefix *ps = calloc(np ? np : 1, sizeof(*ps));
	struct wg_allowedips_owner *owners = calloc(OWNERS, sizeof(*owners));
	size_t *idx4 = calloc(np ? np : 1, sizeof(*idx4)), *idx6 = calloc(np ? np : 1, sizeof(*idx6));
	uint8_t *a4 = malloc(nl * 4), *a6 = malloc(nl * 16);
	size_t n4 = 0, n6 = 0, hits4 = 0, hits6 = 0;
	struct wg_allowedips *t;
	size_t heap0, heap1;

	if (argc > 3)
		rng_state = strtoull(argv[3], NULL, 10) | 1;
	if (np == 0 || nl == 0 || !ps || !owners || !idx4 || !idx6 || !a4 || !a6) {
		fprintf(stderr, "usage: allowedips_bench [prefixes > 0] [lookups > 0] [seed]\n");
		return 2;
	}
	for (size_t i = 0; i < np; i++) {
		make_prefix(&ps[i]);
		if (ps[i].family_len == 4)
			idx4[n4++] = i;
		else
			idx6[n6++] = i;
	}

	heap0 = heap_in_use();
	t = wg_allowedips_new();
	if (!t)
		return 1;
	for (size_t i = 0; i < np; i++) {
		int rc = wg_allowedips_insert(t, ps[i].family_len == 4 ? AF_INET : AF_INET6, ps[i].ip, ps[i].cidr,
					      &owners[i % OWNERS]);
		if (rc != 0) {
			fprintf(stderr, "allowedips_bench: insert failed (%d)\n", rc);
			return 1;
		}
	}
	heap1 = heap_in_use();

	make_lookups(ps, idx4, n4, 4, a4, nl);
	make_lookups(ps, idx6, n6, 16, a6, nl);
	double r4 = time_lookups(t, AF_INET, a4, 4, nl, &hits4);
	double r6 = time_lookups(t, AF_INET6, a6, 16, nl, &hits6);
	/* Duplicate random prefixes replace each other, so divide by what the trie actually holds. */
	size_t held = 0;
	for (size_t o = 0; o < OWNERS; o++)
		held += owners[o].count;

	printf("lookups_per_sec_v4 %.0f lookups_per_sec_v6 %.0f lookups_per_sec %.0f bytes_per_prefix %.1f "
	       "prefixes %zu hit_rate %.3f\n",
	       r4, r6, 2.0 / (1.0 / r4 + 1.0 / r6), (double)(heap1 - heap0) / (double)held, held,
	       (double)(hits4 + hits6) / (2.0 * (double)nl));
	wg_allowedips_free(t);
	free(ps);
	free(owners);
	free(idx4);
	free(idx6);
	free(a4);
	free(a6);
	return 0;
}
