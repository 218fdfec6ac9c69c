/* Logging for the I/O layer and the zl-wg program: one line per message on stderr,
 * "zl-wg: <level>: <message>", filtered by a process-wide level taken from LOG_LEVEL.
 * Messages on a hot path (a packet per line) go through the rate-limited macros, which keep a small
 * state per call site so a flood of bad packets cannot flood the log.
 * Rule: never log key material, and never name a peer by its public key. */
#ifndef WG_IO_LOG_H
#define WG_IO_LOG_H
#include <stdbool.h>
#include <stdint.h>

enum wg_log_level {
	WG_LOG_SILENT = 0,
	WG_LOG_ERROR = 1,
	WG_LOG_INFO = 2,
	WG_LOG_DEBUG = 3,
};

/* Accepts debug|verbose, info, error, silent (wireguard-go spells debug "verbose"), case-insensitive.
 * false for anything else. */
bool wg_log_parse_level(const char *s, enum wg_log_level *out);
/* Applies LOG_LEVEL from the environment (default info); false when it is set but not understood. */
bool wg_log_init_from_env(void);
void wg_log_set_level(enum wg_log_level level);
enum wg_log_level wg_log_get_level(void);
/* The word before the level ("zl-wg" unless changed by an embedding program); the string must outlive
 * every later log call. */
void wg_log_set_ident(const char *ident);

/* Where lines go instead of stderr (an embedding daemon may route them to its own log). fn NULL
 * restores stderr. The message has no prefix and no trailing newline. */
typedef void (*wg_log_sink_fn)(void *ctx, enum wg_log_level level, const char *msg);
void wg_log_set_sink(wg_log_sink_fn fn, void *ctx);

void wg_log(enum wg_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Per-call-site rate limit: at most WG_LOG_RL_BURST lines per WG_LOG_RL_INTERVAL_SEC seconds; the
 * next allowed line reports how many were suppressed. Not thread-safe: one I/O thread logs. */
enum { WG_LOG_RL_BURST = 10, WG_LOG_RL_INTERVAL_SEC = 5 };
struct wg_log_ratelimit {
	uint64_t window_start_ns;
	uint32_t printed, suppressed;
};
void wg_log_ratelimited(struct wg_log_ratelimit *rl, enum wg_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

extern enum wg_log_level wg_log_level_current;
static inline bool wg_log_enabled(enum wg_log_level level)
{
	return level != WG_LOG_SILENT && level <= wg_log_level_current;
}

#define wg_log_error(...) wg_log(WG_LOG_ERROR, __VA_ARGS__)
#define wg_log_info(...) wg_log(WG_LOG_INFO, __VA_ARGS__)
#define wg_log_debug(...) wg_log(WG_LOG_DEBUG, __VA_ARGS__)

/* The level test comes first so a disabled site costs one comparison. */
#define wg_log_rl(level, ...)                                                   \
	do {                                                                    \
		static struct wg_log_ratelimit wg_log_rl_site_;                 \
		if (wg_log_enabled(level))                                      \
			wg_log_ratelimited(&wg_log_rl_site_, (level), __VA_ARGS__); \
	} while (0)
#define wg_log_error_rl(...) wg_log_rl(WG_LOG_ERROR, __VA_ARGS__)
#define wg_log_debug_rl(...) wg_log_rl(WG_LOG_DEBUG, __VA_ARGS__)
#endif
