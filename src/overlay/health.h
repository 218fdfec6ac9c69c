/* Health of one peer from active probes: a pure state machine fed with probe sends, replies and the
 * clock by its caller (overlayd/prober.c). No I/O.
 *
 * Model: one probe per interval. zl_health_tick (called once per interval) first settles the probe of
 * the previous tick -- answered, or missed -- then hands out the sequence number of the next probe. A
 * reply counts only for the probe still outstanding (later replies are counted as late, nothing else).
 *   - misses_down consecutive misses -> DOWN (from UNKNOWN or UP): a stopped peer is down at most
 *     interval x (misses_down + 1) after it stopped;
 *   - one answer -> UP (from UNKNOWN or DOWN).
 * Figures: RTT smoothed as srtt += (rtt - srtt) / 8 (the first sample sets it), jitter as RFC 3550
 * (J += (|rtt - previous rtt| - J) / 16), loss = missed / settled over the last ZL_HEALTH_WINDOW settled
 * probes.
 *
 * Overall health (zl_health_healthy) also needs a recent WireGuard handshake: UP and a handshake
 * younger than the handshake timeout (the reference's only signal, kept as the second one). */
#ifndef ZL_HEALTH_H
#define ZL_HEALTH_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum { ZL_HEALTH_WINDOW = 32 };

enum zl_health_state { ZL_HEALTH_UNKNOWN, ZL_HEALTH_UP, ZL_HEALTH_DOWN };
enum zl_health_change { ZL_HEALTH_SAME, ZL_HEALTH_BECAME_UP, ZL_HEALTH_BECAME_DOWN };

struct zl_health {
	enum zl_health_state state;
	uint32_t misses_down;         /* consecutive misses that make DOWN (>= 1) */
	uint32_t consecutive_misses;
	bool outstanding;             /* a probe was sent and is not settled */
	bool answered;                /* ... and its reply came */
	uint64_t outstanding_seq, outstanding_sent_ns;
	uint64_t next_seq;
	uint32_t window;              /* bit i = the i-th most recent settled probe was missed */
	uint32_t settled;             /* settled probes in the window (<= ZL_HEALTH_WINDOW) */
	bool have_rtt;
	double srtt_ms, last_rtt_ms, jitter_ms;
	uint64_t sent, replies, late;
};

/* seq_start: the first sequence number (random, so replies to an earlier instance do not count). */
void zl_health_init(struct zl_health *h, uint32_t misses_down, uint64_t seq_start);
/* Settles the previous probe and returns the sequence number of the probe to send now in *seq. */
enum zl_health_change zl_health_tick(struct zl_health *h, uint64_t now_ns, uint64_t *seq);
/* A reply carrying seq arrived at now_ns. */
enum zl_health_change zl_health_reply(struct zl_health *h, uint64_t seq, uint64_t now_ns);
/* Missed fraction of the settled probes in the window (0 when none settled). */
double zl_health_loss(const struct zl_health *h);
/* UP and a handshake at most handshake_timeout_s old. handshake_age_s < 0: never. */
bool zl_health_healthy(const struct zl_health *h, int64_t handshake_age_s, uint32_t handshake_timeout_s);
const char *zl_health_state_name(enum zl_health_state s);   /* "unknown", "up", "down" */
#endif
