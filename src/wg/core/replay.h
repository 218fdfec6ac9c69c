/* Sliding-window replay protection for transport counters (RFC 6479 style, 8192 bits). Pure. */
#ifndef WG_REPLAY_H
#define WG_REPLAY_H
#include <stdbool.h>
#include <stdint.h>

enum { WG_REPLAY_WINDOW_BITS = 8192 };
enum { WG_REPLAY_WORD_BITS = 64, WG_REPLAY_WORDS = WG_REPLAY_WINDOW_BITS / WG_REPLAY_WORD_BITS };

struct wg_replay {
	uint64_t greatest;      /* highest counter accepted + 1; 0 = nothing accepted yet */
	uint64_t bitmap[WG_REPLAY_WORDS];
};

void wg_replay_init(struct wg_replay *r);
/* Called only after the packet authenticated. True (and the counter is recorded) when counter is new,
 * inside the window and below WG_REJECT_AFTER_MESSAGES; false for a replay or a counter too old. */
bool wg_replay_accept(struct wg_replay *r, uint64_t counter);
#endif
