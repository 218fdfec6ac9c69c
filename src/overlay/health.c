/* Peer health from active probes: the pure state machine of health.h (no I/O, no clock of its own). */
#include "overlay/health.h"
#include <string.h>

static const double NS_PER_MS = 1e6;

void zl_health_init(struct zl_health *h, uint32_t misses_down, uint64_t seq_start)
{
	memset(h, 0, sizeof(*h));
	h->state = ZL_HEALTH_UNKNOWN;
	h->misses_down = misses_down ? misses_down : 1;
	h->next_seq = seq_start;
}

/* Pushes one settled probe into the loss window (bit 0 = the most recent). */
static void window_push(struct zl_health *h, bool missed)
{
	h->window = (h->window << 1) | (missed ? 1u : 0u);
	if (h->settled < ZL_HEALTH_WINDOW)
		h->settled++;
}

/* The outstanding probe's fate is decided at the next tick: a reply that comes later than one
 * interval is a miss (and counted as late if it still shows up). */
static enum zl_health_change settle(struct zl_health *h)
{
	if (!h->outstanding)
		return ZL_HEALTH_SAME;
	h->outstanding = false;
	window_push(h, !h->answered);
	if (h->answered)
		return ZL_HEALTH_SAME;     /* the reply already made it UP and cleared the misses */
	if (h->consecutive_misses < UINT32_MAX)
		h->consecutive_misses++;
	if (h->consecutive_misses >= h->misses_down && h->state != ZL_HEALTH_DOWN) {
		h->state = ZL_HEALTH_DOWN;
		return ZL_HEALTH_BECAME_DOWN;
	}
	return ZL_HEALTH_SAME;
}

enum zl_health_change zl_health_tick(struct zl_health *h, uint64_t now_ns, uint64_t *seq)
{
	enum zl_health_change ch = settle(h);

	h->outstanding = true;
	h->answered = false;
	h->outstanding_seq = h->next_seq++;
	h->outstanding_sent_ns = now_ns;
	h->sent++;
	*seq = h->outstanding_seq;
	return ch;
}

static double absd(double x)
{
	return x < 0 ? -x : x;
}

/* srtt as TCP's (gain 1/8), jitter as RTP's interarrival jitter (RFC 3550 6.4.1, gain 1/16) applied to
 * consecutive round trips. */
static void add_rtt(struct zl_health *h, double rtt_ms)
{
	if (!h->have_rtt) {
		h->have_rtt = true;
		h->srtt_ms = rtt_ms;
		h->jitter_ms = 0;
	} else {
		h->srtt_ms += (rtt_ms - h->srtt_ms) / 8;
		h->jitter_ms += (absd(rtt_ms - h->last_rtt_ms) - h->jitter_ms) / 16;
	}
	h->last_rtt_ms = rtt_ms;
}

/* Was seq handed out by this instance? Sequence numbers run from next_seq - sent (mod 2^64). */
static bool was_sent(const struct zl_health *h, uint64_t seq)
{
	uint64_t first = h->next_seq - h->sent;

	return seq - first < h->sent;
}

enum zl_health_change zl_health_reply(struct zl_health *h, uint64_t seq, uint64_t now_ns)
{
	if (!h->outstanding || h->answered || seq != h->outstanding_seq) {
		/* An earlier probe's reply or a duplicate: nothing but a count. A sequence number never sent
		 * (forged, or from an earlier instance) is not even that. */
		if (was_sent(h, seq))
			h->late++;
		return ZL_HEALTH_SAME;
	}
	h->answered = true;
	h->replies++;
	/* A clock that went backwards (it should not: monotonic) gives a zero RTT, never a negative one. */
	add_rtt(h, now_ns >= h->outstanding_sent_ns ? (double)(now_ns - h->outstanding_sent_ns) / NS_PER_MS : 0);
	h->consecutive_misses = 0;
	if (h->state == ZL_HEALTH_UP)
		return ZL_HEALTH_SAME;
	h->state = ZL_HEALTH_UP;
	return ZL_HEALTH_BECAME_UP;
}

double zl_health_loss(const struct zl_health *h)
{
	uint32_t mask, missed;

	if (!h->settled)
		return 0;
	mask = h->settled >= 32 ? UINT32_MAX : ((1u << h->settled) - 1);
	missed = (uint32_t)__builtin_popcount(h->window & mask);
	return (double)missed / (double)h->settled;
}

bool zl_health_healthy(const struct zl_health *h, int64_t handshake_age_s, uint32_t handshake_timeout_s)
{
	return h->state == ZL_HEALTH_UP && handshake_age_s >= 0 && handshake_age_s <= (int64_t)handshake_timeout_s;
}

const char *zl_health_state_name(enum zl_health_state s)
{
	switch (s) {
	case ZL_HEALTH_UP:
		return "up";
	case ZL_HEALTH_DOWN:
		return "down";
	case ZL_HEALTH_UNKNOWN:
		break;
	}
	return "unknown";
}
