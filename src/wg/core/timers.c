/* Per-peer protocol timers as deadlines (see timers.h). The rules mirror WireGuard's timer state
 * machine: every event below arms, re-arms or cancels one deadline; wg_timers_due turns expired
 * deadlines into actions for the device. 0 means "not armed". */
#include "wg/core/timers.h"
#include <string.h>
#include "wg/core/messages.h"

static bool armed(uint64_t deadline) { return deadline != 0; }
static void arm(uint64_t *deadline, uint64_t at) { *deadline = at ? at : 1; }

void wg_timers_init(struct wg_timers *t) { memset(t, 0, sizeof(*t)); }

/* Data went out: if nothing authenticated comes back within 15 s, start a new handshake. Only the first
 * packet arms it, so a steady flow does not push the deadline forever. */
void wg_timers_data_sent(struct wg_timers *t, uint64_t now, uint64_t jitter_ns)
{
	if (!armed(t->new_handshake_at))
		arm(&t->new_handshake_at, now + WG_KEEPALIVE_TIMEOUT + WG_REKEY_TIMEOUT + jitter_ns);
}

bool wg_timers_data_sent_arms(const struct wg_timers *t) { return !armed(t->new_handshake_at); }

/* Data came in: answer with a keepalive in 10 s unless we send something first. */
void wg_timers_data_received(struct wg_timers *t, uint64_t now)
{
	if (!armed(t->send_keepalive_at))
		arm(&t->send_keepalive_at, now + WG_KEEPALIVE_TIMEOUT);
	else
		t->need_another_keepalive = true;
}

/* Anything we send carries the keepalive's information, so the pending keepalive is unnecessary. */
void wg_timers_any_authenticated_packet_sent(struct wg_timers *t) { t->send_keepalive_at = 0; }

/* The peer is alive: no need to start a handshake for lack of replies. */
void wg_timers_any_authenticated_packet_received(struct wg_timers *t) { t->new_handshake_at = 0; }

void wg_timers_any_authenticated_packet_traversal(struct wg_timers *t, uint64_t now)
{
	if (t->persistent_keepalive_interval)
		arm(&t->persistent_keepalive_at, now + (uint64_t)t->persistent_keepalive_interval * WG_NSEC_PER_SEC);
}

void wg_timers_handshake_initiated(struct wg_timers *t, uint64_t now, uint64_t jitter_ns)
{
	arm(&t->retransmit_handshake_at, now + WG_REKEY_TIMEOUT + jitter_ns);
}

void wg_timers_handshake_complete(struct wg_timers *t)
{
	t->retransmit_handshake_at = 0;
	t->handshake_attempts = 0;
	t->sent_lastminute_handshake = false;
}

void wg_timers_session_derived(struct wg_timers *t, uint64_t now)
{
	arm(&t->zero_keys_at, now + WG_ZERO_KEYS_AFTER);
}

void wg_timers_set_persistent_keepalive(struct wg_timers *t, uint16_t interval_sec, uint64_t now)
{
	t->persistent_keepalive_interval = interval_sec;
	if (!interval_sec)
		t->persistent_keepalive_at = 0;
}

void wg_timers_stop(struct wg_timers *t)
{
	uint16_t interval = t->persistent_keepalive_interval;
	wg_timers_init(t);
	t->persistent_keepalive_interval = interval;
}

static bool expired(uint64_t *deadline, uint64_t now)
{
	if (!armed(*deadline) || *deadline > now)
		return false;
	*deadline = 0;
	return true;
}

static unsigned retransmit_expired(struct wg_timers *t, uint64_t now)
{
	if (t->handshake_attempts > WG_MAX_TIMER_HANDSHAKES) {
		/* Give up: forget pending work, and make sure stale keys are eventually wiped. */
		t->send_keepalive_at = 0;
		if (!armed(t->zero_keys_at))
			arm(&t->zero_keys_at, now + WG_ZERO_KEYS_AFTER);
		return WG_TIMER_GIVE_UP_HANDSHAKE;
	}
	t->handshake_attempts++;
	return WG_TIMER_RETRANSMIT_HANDSHAKE;
}

unsigned wg_timers_due(struct wg_timers *t, uint64_t now)
{
	unsigned actions = 0;

	if (expired(&t->retransmit_handshake_at, now))
		actions |= retransmit_expired(t, now);
	if (expired(&t->send_keepalive_at, now)) {
		actions |= WG_TIMER_SEND_KEEPALIVE;
		if (t->need_another_keepalive) {
			t->need_another_keepalive = false;
			arm(&t->send_keepalive_at, now + WG_KEEPALIVE_TIMEOUT);
		}
	}
	if (expired(&t->new_handshake_at, now))
		actions |= WG_TIMER_NEW_HANDSHAKE;
	if (expired(&t->zero_keys_at, now))
		actions |= WG_TIMER_ZERO_KEYS;
	if (expired(&t->persistent_keepalive_at, now) && t->persistent_keepalive_interval)
		actions |= WG_TIMER_PERSISTENT_KEEPALIVE;
	return actions;
}

static uint64_t earliest(uint64_t a, uint64_t b)
{
	if (!armed(a))
		return b;
	return a < b ? a : b;
}

uint64_t wg_timers_next_deadline(const struct wg_timers *t)
{
	uint64_t next = UINT64_MAX;
	next = earliest(t->retransmit_handshake_at, next);
	next = earliest(t->send_keepalive_at, next);
	next = earliest(t->new_handshake_at, next);
	next = earliest(t->zero_keys_at, next);
	next = earliest(t->persistent_keepalive_at, next);
	return next;
}
