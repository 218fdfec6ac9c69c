/* Per-source token bucket for handshake messages under load (20 per second, burst 5, per IPv4 address or
 * IPv6 /64). Pure: bounded hash table, time passed in, entries older than a second are recycled. */
#ifndef WG_RATELIMITER_H
#define WG_RATELIMITER_H
#include <stdbool.h>
#include <stdint.h>

enum { WG_RATELIMIT_PER_SEC = 20, WG_RATELIMIT_BURST = 5, WG_RATELIMIT_MAX_ENTRIES = 8192 };

struct wg_ratelimiter;
struct wg_ratelimiter *wg_ratelimiter_new(void);
void wg_ratelimiter_free(struct wg_ratelimiter *r);
/* addr: 4 or 16 raw bytes. True when a message from this source may be processed now. When the table is
 * full of live entries, new sources are refused (fail closed under attack). */
bool wg_ratelimiter_allow(struct wg_ratelimiter *r, const uint8_t *addr, unsigned addr_len, uint64_t now_ns);
#endif
