/* Handshakes per second that one core completes as responder, driving the protocol core in memory: for each
 * pre-generated initiation it validates mac1, consumes the initiation (e, es, s, ss, timestamp), creates
 * the response (e, ee, se, psk) with its macs and derives the transport keys — the per-handshake work of
 * the receive path, without I/O. The initiations come from M initiator identities and are all made before
 * the clock starts, so only the responder is timed. Pinned to one CPU with sched_setaffinity.
 * Usage: handshake_bench [N initiations, default 20000] [M initiators, default 64] [cpu, default last]
 * Prints one line: "handshakes_per_sec <rate> n <N> m <M> cpu <cpu> seconds <s>"; exits 1 if any
 * handshake failed (a benchmark of a broken handshake would be meaningless). */
#include <sched.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "wg/core/cookie.h"
#include "wg/core/crypto.h"
#include "wg/core/noise.h"

#define MONO_START (1000 * WG_NSEC_PER_SEC)      /* an arbitrary monotonic time */
#define WALL_START (1700000000ULL * WG_NSEC_PER_SEC)

/* The responder's view of one initiator: its handshake and the cookie maker for macs on responses. */
struct responder_peer {
	struct wg_handshake hs;
	struct wg_cookie_maker maker;
};

struct responder {
	struct wg_static_identity id;
	struct wg_cookie_checker checker;
	struct responder_peer *peers;
	size_t npeers;
	uint32_t *slots;  /* open-addressing table of peer numbers + 1 keyed by public key; 0 = empty */
	size_t nslots;    /* a power of two */
};

struct initiator {
	struct wg_static_identity id;
	struct wg_handshake hs;
	struct wg_cookie_maker maker; /* keyed by the responder's public key */
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * WG_NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

/* Public keys are uniformly random, so their first bytes are a fine hash. */
static size_t key_slot(const uint8_t key[WG_KEY_LEN], size_t nslots)
{
	uint64_t h;
	memcpy(&h, key, sizeof(h));
	return (size_t)h & (nslots - 1);
}

static void responder_add(struct responder *r, size_t n)
{
	size_t s = key_slot(r->peers[n].hs.remote_static, r->nslots);
	while (r->slots[s] != 0)
		s = (s + 1) & (r->nslots - 1);
	r->slots[s] = (uint32_t)n + 1;
}

/* The lookup the device does by public key; a hash table so the lookup cost stays realistic as M grows. */
static struct wg_handshake *lookup(void *ctx, const uint8_t remote_static[WG_KEY_LEN])
{
	struct responder *r = ctx;
	for (size_t s = key_slot(remote_static, r->nslots); r->slots[s] != 0; s = (s + 1) & (r->nslots - 1)) {
		struct responder_peer *p = &r->peers[r->slots[s] - 1];
		if (wg_ct_equal(p->hs.remote_static, remote_static, WG_KEY_LEN))
			return &p->hs;
	}
	return NULL;
}

static void make_identity(struct wg_static_identity *id)
{
	wg_x25519_generate(id->private_key, id->public_key);
	id->has_identity = true;
}

static bool setup(struct responder *r, struct initiator *in, size_t m)
{
	make_identity(&r->id);
	wg_cookie_checker_init(&r->checker, r->id.public_key);
	r->npeers = m;
	r->peers = calloc(m, sizeof(*r->peers));
	for (r->nslots = 16; r->nslots < 2 * m; r->nslots *= 2)
		;
	r->slots = calloc(r->nslots, sizeof(*r->slots));
	if (!r->peers || !r->slots)
		return false;
	for (size_t i = 0; i < m; i++) {
		make_identity(&in[i].id);
		wg_noise_handshake_init(&in[i].hs, &in[i].id, r->id.public_key, NULL);
		wg_cookie_maker_init(&in[i].maker, r->id.public_key);
		wg_noise_handshake_init(&r->peers[i].hs, &r->id, in[i].id.public_key, NULL);
		wg_cookie_maker_init(&r->peers[i].maker, in[i].id.public_key);
		responder_add(r, i);
	}
	return true;
}

/* Initiation k comes from initiator k % m with a wall clock that advances 20 ms per message: timestamps
 * may be coarsened (to hide timing) by up to that much, and every initiator's must strictly increase. */
static bool pregenerate(struct initiator *in, size_t m, struct wg_msg_initiation *msgs, size_t n)
{
	for (size_t k = 0; k < n; k++) {
		uint8_t ts[WG_TIMESTAMP_LEN];
		wg_tai64n(ts, WALL_START + k * WG_INITIATIONS_MIN_INTERVAL);
		if (!wg_noise_create_initiation(&in[k % m].hs, &in[k % m].id, (uint32_t)k + 1, ts, &msgs[k]))
			return false;
		wg_cookie_add_macs(&in[k % m].maker, &msgs[k], sizeof(msgs[k]), MONO_START);
	}
	return true;
}

/* The responder's work for one initiation. The monotonic time given to the core advances 20 ms per
 * message so the per-peer flood limit (one initiation per 20 ms) never refuses one; the real clock
 * is only read around the whole loop. */
static bool respond(struct responder *r, const struct wg_msg_initiation *msg, uint64_t mono, uint32_t index,
		    struct wg_msg_response *resp)
{
	static const struct wg_cookie_source src = { .addr = { 192, 0, 2, 1 }, .addr_len = 4, .port = 51820 };
	struct wg_session_keys keys;
	struct wg_handshake *hs;
	struct responder_peer *p;

	if (wg_cookie_validate(&r->checker, msg, sizeof(*msg), &src, false, mono) == WG_COOKIE_INVALID_MAC)
		return false;
	hs = wg_noise_consume_initiation(&r->id, msg, mono, lookup, r);
	if (!hs || !wg_noise_create_response(hs, index, resp))
		return false;
	p = (struct responder_peer *)((uint8_t *)hs - offsetof(struct responder_peer, hs));
	wg_cookie_add_macs(&p->maker, resp, sizeof(*resp), mono);
	if (!wg_noise_derive_keys(hs, &keys))
		return false;
	wg_wipe(&keys, sizeof(keys));
	return true;
}

/* The last initiation of each initiator is still pending on its side: its response must complete the
 * handshake, proving the responses the timed loop produced were genuine. */
static bool verify_last(struct initiator *in, size_t m, const struct wg_msg_response *resps, size_t n)
{
	for (size_t k = n > m ? n - m : 0; k < n; k++) {
		struct wg_session_keys keys;
		if (!wg_noise_consume_response(&in[k % m].hs, &in[k % m].id, &resps[k]) ||
		    !wg_noise_derive_keys(&in[k % m].hs, &keys))
			return false;
	}
	return true;
}

static int pin_to(int cpu)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof(set), &set);
}

int main(int argc, char **argv)
{
	size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 20000;
	size_t m = argc > 2 ? strtoul(argv[2], NULL, 10) : 64;
	int cpu = argc > 3 ? atoi(argv[3]) : (int)sysconf(_SC_NPROCESSORS_ONLN) - 1;
	struct responder r = { 0 };
	struct initiator *in = calloc(m ? m : 1, sizeof(*in));
	struct wg_msg_initiation *msgs = calloc(n ? n : 1, sizeof(*msgs));
	struct wg_msg_response *resps = calloc(n ? n : 1, sizeof(*resps));
	uint64_t t0, t1;
	size_t done = 0;

	if (n == 0 || m == 0 || m > n || !in || !msgs || !resps || !wg_crypto_init()) {
		fprintf(stderr, "usage: handshake_bench [N >= M] [M >= 1] [cpu]\n");
		return 2;
	}
	if (pin_to(cpu) != 0) {
		perror("sched_setaffinity");
		return 2;
	}
	if (!setup(&r, in, m) || !pregenerate(in, m, msgs, n)) {
		fprintf(stderr, "handshake_bench: setup failed\n");
		return 1;
	}
	t0 = now_ns();
	for (size_t k = 0; k < n; k++)
		done += respond(&r, &msgs[k], MONO_START + k * WG_INITIATIONS_MIN_INTERVAL, (uint32_t)k + 1, &resps[k]);
	t1 = now_ns();
	if (done != n || !verify_last(in, m, resps, n)) {
		fprintf(stderr, "handshake_bench: %zu of %zu handshakes failed\n", n - done, n);
		return 1;
	}
	printf("handshakes_per_sec %.0f n %zu m %zu cpu %d seconds %.3f\n", (double)n * 1e9 / (double)(t1 - t0), n, m,
	       cpu, (double)(t1 - t0) / 1e9);
	wg_wipe(&r.id, sizeof(r.id));
	free(r.peers);
	free(r.slots);
	free(in);
	free(msgs);
	free(resps);
	return 0;
}
