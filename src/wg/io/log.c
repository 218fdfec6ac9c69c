/* Logging: see log.h. */
#include "wg/io/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

enum wg_log_level wg_log_level_current = WG_LOG_INFO;
static const char *log_ident = "zl-wg";
static wg_log_sink_fn log_sink;
static void *log_sink_ctx;

static const struct {
	const char *name;
	enum wg_log_level level;
} level_names[] = {
	{ "debug", WG_LOG_DEBUG }, { "verbose", WG_LOG_DEBUG }, { "info", WG_LOG_INFO },
	{ "error", WG_LOG_ERROR }, { "silent", WG_LOG_SILENT },
};

bool wg_log_parse_level(const char *s, enum wg_log_level *out)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcasecmp(s, level_names[i].name) == 0) {
			*out = level_names[i].level;
			return true;
		}
	}
	return false;
}

bool wg_log_init_from_env(void)
{
	const char *s = getenv("LOG_LEVEL");
	enum wg_log_level level;

	if (!s || !*s)
		return true;
	if (!wg_log_parse_level(s, &level))
		return false;
	wg_log_level_current = level;
	return true;
}

void wg_log_set_level(enum wg_log_level level) { wg_log_level_current = level; }
enum wg_log_level wg_log_get_level(void) { return wg_log_level_current; }
void wg_log_set_ident(const char *ident) { log_ident = ident; }

void wg_log_set_sink(wg_log_sink_fn fn, void *ctx)
{
	log_sink = fn;
	log_sink_ctx = ctx;
}

static const char *level_word(enum wg_log_level level)
{
	switch (level) {
	case WG_LOG_ERROR: return "error";
	case WG_LOG_INFO: return "info";
	case WG_LOG_DEBUG: return "debug";
	default: return "?";
	}
}

/* One write() per line so concurrent writers (a daemon and its parent sharing stderr) never interleave
 * inside a line. errno is preserved: callers log and then still look at it. */
static void emit(enum wg_log_level level, const char *msg)
{
	char line[1200];
	int saved = errno;
	int n;

	if (log_sink) {
		log_sink(log_sink_ctx, level, msg);
		errno = saved;
		return;
	}
	n = snprintf(line, sizeof(line) - 1, "%s: %s: %s", log_ident, level_word(level), msg);
	if (n < 0)
		goto out;
	if ((size_t)n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	if (write(STDERR_FILENO, line, (size_t)n) < 0) {
		/* Nowhere left to report it. */
	}
out:
	errno = saved;
}

static void vlog(enum wg_log_level level, const char *fmt, va_list ap)
{
	char msg[1024];
	int saved = errno;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	errno = saved;
	emit(level, msg);
}

void wg_log(enum wg_log_level level, const char *fmt, ...)
{
	va_list ap;

	if (!wg_log_enabled(level))
		return;
	va_start(ap, fmt);
	vlog(level, fmt, ap);
	va_end(ap);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

void wg_log_ratelimited(struct wg_log_ratelimit *rl, enum wg_log_level level, const char *fmt, ...)
{
	uint64_t now = now_ns();
	va_list ap;

	if (!wg_log_enabled(level))
		return;
	if (rl->window_start_ns == 0 || now - rl->window_start_ns >= WG_LOG_RL_INTERVAL_SEC * 1000000000ULL) {
		if (rl->suppressed)
			wg_log(level, "(%u similar messages suppressed)", rl->suppressed);
		rl->window_start_ns = now;
		rl->printed = 0;
		rl->suppressed = 0;
	}
	if (rl->printed >= WG_LOG_RL_BURST) {
		rl->suppressed++;
		return;
	}
	rl->printed++;
	va_start(ap, fmt);
	vlog(level, fmt, ap);
	va_end(ap);
}
