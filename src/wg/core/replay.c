/* Replay window after RFC 6479: a ring of 64-bit words indexed by counter / 64. Moving ahead clears
 * whole words instead of shifting the bitmap, so a jump costs at most one pass over the ring.
 *
 * Counters are stored as counter + 1, so greatest == 0 means "nothing yet". One word of the ring is
 * always partially ahead of greatest (the one being filled), which is why the usable window is
 * WINDOW_BITS - WORD_BITS = 8128 counters behind the greatest seen: those never share a word slot with
 * a counter the ring has moved past. */
#include "wg/core/replay.h"
#include <string.h>
#include "wg/core/messages.h"

enum { WINDOW = WG_REPLAY_WINDOW_BITS - WG_REPLAY_WORD_BITS };

void wg_replay_init(struct wg_replay *r)
{
	memset(r, 0, sizeof(*r));
}

/* Clears the words between greatest's and c's (c's included, wrapping at most once round the ring). */
static void advance(struct wg_replay *r, uint64_t c)
{
	uint64_t from = r->greatest / WG_REPLAY_WORD_BITS, to = c / WG_REPLAY_WORD_BITS;
	uint64_t n = to - from < WG_REPLAY_WORDS ? to - from : WG_REPLAY_WORDS;

	for (uint64_t i = 1; i <= n; i++)
		r->bitmap[(from + i) % WG_REPLAY_WORDS] = 0;
	r->greatest = c;
}

bool wg_replay_accept(struct wg_replay *r, uint64_t counter)
{
	uint64_t c, *word, bit;

	if (counter >= WG_REJECT_AFTER_MESSAGES)
		return false;
	c = counter + 1; /* no overflow: counter < 2^64 - 2^13 */
	if (c + WINDOW < r->greatest)
		return false; /* too old to tell */
	if (c > r->greatest)
		advance(r, c);
	word = &r->bitmap[(c / WG_REPLAY_WORD_BITS) % WG_REPLAY_WORDS];
	bit = 1ULL << (c % WG_REPLAY_WORD_BITS);
	if (*word & bit)
		return false;
	*word |= bit;
	return true;
}
