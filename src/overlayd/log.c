/* Structured log lines: see log.h. */
#include "overlayd/log.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

enum {
	Q_BUFS = 8,          /* distinct od_q results usable in one line */
	Q_BUF_LEN = 640,     /* quoted value, truncated beyond this */
	LINE_MAX_LEN = 4096,
};

static const char *level_name(enum wg_log_level level)
{
	switch (level) {
	case WG_LOG_ERROR: return "error";
	case WG_LOG_INFO: return "info";
	case WG_LOG_DEBUG: return "debug";
	default: return "none";
	}
}

static bool plain(const char *s)
{
	if (!*s)
		return false;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p <= ' ' || *p >= 0x7f || *p == '"' || *p == '\\' || *p == '=')
			return false;
	}
	return true;
}

const char *od_q(const char *s)
{
	static __thread char bufs[Q_BUFS][Q_BUF_LEN];
	static __thread unsigned next;
	char *out = bufs[next++ % Q_BUFS];
	size_t o = 0;

	if (!s)
		s = "";
	if (plain(s) && strlen(s) < Q_BUF_LEN)
		return s;
	out[o++] = '"';
	/* Room is kept for the longest escape (4 bytes), the closing quote and the NUL. */
	for (const unsigned char *p = (const unsigned char *)s; *p && o + 7 < Q_BUF_LEN; p++) {
		if (*p == '"' || *p == '\\') {
			out[o++] = '\\';
			out[o++] = (char)*p;
		} else if (*p < ' ' || *p == 0x7f) {
			o += (size_t)snprintf(out + o, Q_BUF_LEN - o, "\\x%02x", *p);
		} else {
			out[o++] = (char)*p;
		}
	}
	out[o++] = '"';
	out[o] = '\0';
	return out;
}

static void timestamp(char buf[64])
{
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	snprintf(buf, 64, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
		 tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
}

void od_log(enum wg_log_level level, const char *event, const char *fmt, ...)
{
	char line[LINE_MAX_LEN], ts[64];
	int n;

	if (!wg_log_enabled(level))
		return;
	timestamp(ts);
	n = snprintf(line, sizeof(line), "ts=%s level=%s event=%s", ts, level_name(level), event);
	if (n > 0 && (size_t)n < sizeof(line) - 2 && fmt && *fmt) {
		va_list ap;

		line[n++] = ' ';
		va_start(ap, fmt);
		vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
		va_end(ap);
	}
	/* One write per line, so lines from the engine's helper threads never interleave. */
	fprintf(stderr, "%s\n", line);
}

static void engine_sink(void *ctx, enum wg_log_level level, const char *msg)
{
	od_log(level, "wg", "msg=%s", od_q(msg));
}

void od_log_route_engine(void)
{
	wg_log_set_sink(engine_sink, NULL);
}
