/* The client side of zl-overlayd's control socket (docs/control-api.md): one request, one response,
 * framed as frame.h says.
 *
 * Re-dialling: when the socket refuses connections (a daemon restarting, or a stale socket after a
 * crash) or the connection breaks, the client dials again with the backoff of frame.h (100 ms doubling
 * to 1 s), for at most CLI_REDIAL_BUDGET_MS of trying and never past the command's deadline
 * (--timeout, default 10 s), so no command hangs. A request is sent again after a break only when that
 * is safe: an idempotent request (status, peers, token_list) always; any other only if the break came
 * before the whole request was written, since the daemon may otherwise have carried it out. A missing
 * socket file on the first dial means no daemon: that fails at once. */
#ifndef ZL_CLI_CONTROL_H
#define ZL_CLI_CONTROL_H
#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

#include "cli/cli.h"

enum cli_control_status {
	CLI_CONTROL_OK = 0,
	CLI_CONTROL_NOT_RUNNING,   /* no socket, or nobody answered it within the re-dial budget */
	CLI_CONTROL_REFUSED,       /* the daemon answered with an error: message is its message */
	CLI_CONTROL_FAILED,        /* timeout, broken connection, malformed answer, out of memory */
};

/* Sends {"type": type, ...args} (args: an object whose members are added, or NULL; not consumed) and
 * waits for the answer. OK: *body is the response object (a new reference: json_object_put it). Other
 * results: a user-facing message in msg; for NOT_RUNNING it reads "zl-overlayd is not running (no
 * DIR/run/zl-overlayd.sock)" or "(DIR/run/zl-overlayd.sock refuses connections)". */
enum cli_control_status cli_control_call(const struct cli_ctx *ctx, const char *type, json_object *args,
					 bool idempotent, json_object **body, char *msg, size_t msglen);

/* Prints the failure st of a request of this type (the daemon's own "type: " prefix dropped) and returns
 * CLI_EXIT_FAIL; CLI_EXIT_OK for CLI_CONTROL_OK. */
int cli_control_report(const struct cli_ctx *ctx, const char *type, enum cli_control_status st, const char *msg);

/* cli_control_call for a command handler: prints any failure (prefixed with the command) and returns
 * CLI_EXIT_OK with *body, or CLI_EXIT_FAIL. */
int cli_control_run(const struct cli_ctx *ctx, const char *type, json_object *args, bool idempotent,
		    json_object **body);

/* True when something accepts connections on the control socket (a daemon is running). */
bool cli_control_alive(const struct cli_ctx *ctx);
#endif
