/* Active peer probes over the overlay (the first health signal; overlay/health.h keeps the figures).
 *
 * A UDP socket on this node's overlay address, port = WireGuard port + 1 (the membership channel uses
 * TCP on the same number), bound to the overlay interface (SO_BINDTODEVICE) so that only packets that
 * came out of the tunnel -- authenticated by WireGuard -- reach it. Every probe interval one probe goes
 * to each member's overlay address; every probe received from an overlay address of a member is
 * answered (a node answers even before it probes). Packets (16 bytes + 8 of payload):
 *   "ZLP1" | type (1 = probe, 2 = reply) | 3 zero bytes | seq u64 BE | sender's monotonic ns u64 BE
 * A reply echoes seq; only replies from the probed member's address count. Anything else (wrong size,
 * magic, type, unknown source) is dropped and counted.
 *
 * Peers come and go with membership: od_prober_sync (called after every change of st.peers) starts
 * tracking new members (state unknown) and forgets removed ones. Health changes -- the combination of
 * the probe state and the handshake age (zl_health_healthy) going from healthy to unhealthy or back --
 * become peer events (events.h); the first verdict about a member (unknown -> up or down) is an
 * event too. Runs on the loop thread with an od_timer. */
#ifndef OD_PROBER_H
#define OD_PROBER_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "overlay/health.h"
#include "overlayd/node.h"

/* What status, metrics and tests see of one member. */
struct od_peer_health {
	enum zl_health_state probe_state;
	bool healthy;                 /* probe state UP and handshake recent */
	bool known;                   /* a verdict exists (probe state not unknown) */
	double rtt_ms, jitter_ms;     /* smoothed; 0 before the first reply */
	double loss;                  /* 0..1 over the last ZL_HEALTH_WINDOW settled probes */
	int64_t handshake_age_s;      /* -1 = never */
	uint64_t probes_sent, replies;
};

struct od_prober_stats {
	uint64_t probes_sent, replies_received, probes_answered, dropped;
};

/* Uses n->opts.probe_interval_ms / probe_misses / handshake_timeout_s. 0 or -errno with a message. */
int od_prober_open(struct od_node *n, char *err, size_t errlen);
void od_prober_close(struct od_node *n);
void od_prober_sync(struct od_node *n);
/* Health of the member with that public key; false when it is not tracked. */
bool od_prober_peer_health(const struct od_node *n, const uint8_t public_key[ZL_KEY_LEN], struct od_peer_health *out);
void od_prober_stats(const struct od_node *n, struct od_prober_stats *out);
#endif
