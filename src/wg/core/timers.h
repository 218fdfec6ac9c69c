/* The per-peer protocol timers as pure deadline bookkeeping: events of the data path arm or cancel
 * deadlines; wg_timers_due reports which expired. The device performs the resulting actions. */
#ifndef WG_TIMERS_H
#define WG_TIMERS_H
#include <stdbool.h>
#include <stdint.h>

enum wg_timer_action {
	WG_TIMER_RETRANSMIT_HANDSHAKE = 1 << 0, /* resend the initiation (attempt counted) */
	WG_TIMER_GIVE_UP_HANDSHAKE = 1 << 1,    /* retries exhausted: drop staged packets */
	WG_TIMER_SEND_KEEPALIVE = 1 << 2,       /* data received, nothing sent back for 10 s */
	WG_TIMER_NEW_HANDSHAKE = 1 << 3,        /* data sent, nothing received for 15 s */
	WG_TIMER_ZERO_KEYS = 1 << 4,            /* no new session for 540 s: wipe all keys */
	WG_TIMER_PERSISTENT_KEEPALIVE = 1 << 5,
};

/* Deadlines are monotonic ns; 0 = not armed. */
struct wg_timers {
	uint64_t retransmit_handshake_at;
	uint64_t send_keepalive_at;
	uint64_t new_handshake_at;
	uint64_t zero_keys_at;
	uint64_t persistent_keepalive_at;
	uint32_t handshake_attempts;
	uint16_t persistent_keepalive_interval; /* seconds; 0 = off */
	bool need_another_keepalive;
	bool sent_lastminute_handshake;
};

void wg_timers_init(struct wg_timers *t);
/* Events. jitter_ns is a random value below WG_REKEY_TIMEOUT_JITTER_MAX chosen by the caller. */
void wg_timers_data_sent(struct wg_timers *t, uint64_t now, uint64_t jitter_ns);
/* Whether wg_timers_data_sent would arm anything: only then does the caller need to draw a jitter. */
bool wg_timers_data_sent_arms(const struct wg_timers *t);
void wg_timers_data_received(struct wg_timers *t, uint64_t now);
void wg_timers_any_authenticated_packet_sent(struct wg_timers *t);
void wg_timers_any_authenticated_packet_received(struct wg_timers *t);
void wg_timers_any_authenticated_packet_traversal(struct wg_timers *t, uint64_t now);
void wg_timers_handshake_initiated(struct wg_timers *t, uint64_t now, uint64_t jitter_ns);
void wg_timers_handshake_complete(struct wg_timers *t);
void wg_timers_session_derived(struct wg_timers *t, uint64_t now);
void wg_timers_set_persistent_keepalive(struct wg_timers *t, uint16_t interval_sec, uint64_t now);
/* Stops every timer (peer removed or device down). */
void wg_timers_stop(struct wg_timers *t);

/* Returns the set of actions due at now and disarms (or re-arms) the corresponding deadlines. */
unsigned wg_timers_due(struct wg_timers *t, uint64_t now);
/* Earliest armed deadline, or UINT64_MAX when none. */
uint64_t wg_timers_next_deadline(const struct wg_timers *t);
#endif
