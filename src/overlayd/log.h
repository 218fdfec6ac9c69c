/* Structured logging for zl-overlayd: one line per event on stderr,
 *
 *     ts=2025-01-02T03:04:05.678Z level=info event=join.accepted node_id=node-0-49 overlay_ip=10.200.0.49
 *
 * `event` is a stable dotted name to grep for; the rest are key=value pairs. Values that are free text
 * (error messages, hostnames from the network) go through od_q(), which quotes them and escapes quotes,
 * backslashes and control characters, so a line always parses and nothing from the network can forge a
 * line or a field. The level filter is the WireGuard engine's (LOG_LEVEL=debug|info|error|silent), and
 * the engine's own messages are routed here as event=wg lines.
 * Rule (as in the engine): never log key material; name peers by node id. */
#ifndef OD_LOG_H
#define OD_LOG_H
#include <stdarg.h>
#include "wg/io/log.h"

/* fmt formats the key=value tail (may be "" or NULL). */
void od_log(enum wg_log_level level, const char *event, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
#define od_info(...) od_log(WG_LOG_INFO, __VA_ARGS__)
#define od_error(...) od_log(WG_LOG_ERROR, __VA_ARGS__)
#define od_debug(...) od_log(WG_LOG_DEBUG, __VA_ARGS__)

/* s as a safe value: unchanged when it is a non-empty run of printable characters without space, '"',
 * '\\' or '='; otherwise double-quoted with escapes. The result lives in one of a few rotating
 * per-thread buffers (valid for the next few calls: enough for one log line), truncated if very long. */
const char *od_q(const char *s);

/* Sends the engine's log lines through od_log (event=wg msg="..."). */
void od_log_route_engine(void);
#endif
