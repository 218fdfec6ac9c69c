/* zl-overlay, the command-line tool of the overlay: what every subcommand shares.
 *
 * Layout (wireguard-tools style): commands.c holds the table mapping command names to handlers and
 * cli_main(); each subcommand lives in its own file (init_leader.c, join.c, status.c, token.c,
 * remove_peer.c, leave.c, dns.c); args.c parses, control.c talks to zl-overlayd over its control socket
 * (docs/control-api.md), output.c prints tables and JSON, node.c handles this node's files (paths, lock,
 * keys, host name) and net.c the underlay (TCP with deadlines, the host's addresses).
 *
 * Exit status: 0 success, 1 failure (refused, daemon not running, I/O), 2 bad usage or bad input. */
#ifndef ZL_CLI_H
#define ZL_CLI_H
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/un.h>

#include "cli/args.h"

#define CLI_PROG "zl-overlay"
#define CLI_VERSION "0.1.0"
#define CLI_DEFAULT_DATA_DIR "/var/lib/zl-overlay"
#define CLI_SOCKET_NAME "run/zl-overlayd.sock"
#define CLI_RUN_DIR_NAME "run"
#define CLI_LOCK_NAME "run/zl-overlayd.lock"   /* zl-overlayd holds it while it runs */
#define CLI_DEFAULT_INTERFACE "zl-overlay0"
#define CLI_DEFAULT_CIDR "10.200.0.0/16"
#define CLI_LEADER_NODE_ID "leader"

enum cli_exit {
	CLI_EXIT_OK = 0,
	CLI_EXIT_FAIL = 1,
	CLI_EXIT_USAGE = 2,
};

enum {
	CLI_PATH_MAX = 4096,
	CLI_DEFAULT_PORT = 51820,
	CLI_DEFAULT_TIMEOUT_S = 10,
	CLI_MAX_TIMEOUT_S = 3600,
	CLI_REDIAL_BUDGET_MS = 5000,   /* how long a broken connection to the daemon is re-dialled */
	CLI_JOIN_TIMEOUT_MS = 10000,   /* per leader endpoint: connect + exchange (docs/join-protocol.md) */
	CLI_MSG_LEN = 512,
	CLI_RUN_DIR_MODE = 0750,       /* DIR/run as zl-overlayd creates it: the socket's group may enter */
};

struct cli_ctx {
	const struct cli_args *args;
	char data_dir[CLI_PATH_MAX];
	char state_path[CLI_PATH_MAX];
	char run_dir[CLI_PATH_MAX];
	char lock_path[CLI_PATH_MAX];
	char socket_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	uint32_t timeout_ms;            /* whole exchange with the daemon */
	FILE *out, *err;
};

/* Fills the paths and timeout of ctx from its args (defaults applied). CLI_EXIT_USAGE with a message
 * on ctx->err for a bad --data-dir or --timeout. */
int cli_ctx_setup(struct cli_ctx *ctx);

/* "zl-overlay: <command path>: <message>\n" on ctx->err; returns code, so handlers can
 * `return cli_fail(ctx, CLI_EXIT_USAGE, "...")`. */
int cli_fail(const struct cli_ctx *ctx, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* The value of option o, or NULL. */
static inline const char *cli_opt(const struct cli_ctx *ctx, enum cli_opt o)
{
	return ctx->args->value[o];
}

/* Runs the whole program on argv with the given streams; returns the exit status. */
int cli_main(int argc, char *const argv[], FILE *out, FILE *err);

/* The command table (commands.c); exposed for the argument-parser tests. */
extern const struct cli_command cli_root;

/* Handlers. */
int cli_cmd_init_leader(struct cli_ctx *ctx);
int cli_cmd_join(struct cli_ctx *ctx);
int cli_cmd_status(struct cli_ctx *ctx);
int cli_cmd_peers(struct cli_ctx *ctx);
int cli_cmd_token_create(struct cli_ctx *ctx);
int cli_cmd_token_revoke(struct cli_ctx *ctx);
int cli_cmd_token_list(struct cli_ctx *ctx);
int cli_cmd_remove_peer(struct cli_ctx *ctx);
int cli_cmd_leave(struct cli_ctx *ctx);
int cli_cmd_watch(struct cli_ctx *ctx);
int cli_cmd_dns_add(struct cli_ctx *ctx);
int cli_cmd_dns_remove(struct cli_ctx *ctx);
int cli_cmd_dns_list(struct cli_ctx *ctx);

/* dns add's request from its arguments ({name, addr | srv, ttl?, check?}; dns.c), without I/O:
 * CLI_EXIT_OK with *out (a new object), or CLI_EXIT_USAGE with the message in msg. */
struct json_object;
int cli_dns_add_request(const struct cli_args *a, struct json_object **out, char *msg, size_t msglen);
#endif
