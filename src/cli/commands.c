/* The zl-overlay command table and the program's entry point: parse, set up the context, dispatch. */
#include <errno.h>
#include <stdarg.h>
#include <string.h>

#include "cli/cli.h"

#define O(x) CLI_OPT_BIT(CLI_OPT_##x)

static const struct cli_command token_commands[] = {
	{ .name = "create",
	  .summary = "Create a join token and print it alone on stdout (leader).",
	  .usage = "[--ttl DURATION]",
	  .details = "Asks the running zl-overlayd; when it is not running, adds the token to the state file.\n",
	  .run = cli_cmd_token_create,
	  .options = O(TTL) },
	{ .name = "revoke",
	  .summary = "Revoke a join token by its id (16 hex digits) or by the token itself (leader).",
	  .usage = "ID|TOKEN",
	  .run = cli_cmd_token_revoke,
	  .min_args = 1,
	  .max_args = 1 },
	{ .name = "list",
	  .summary = "List the join tokens issued (leader).",
	  .usage = "[--json]",
	  .run = cli_cmd_token_list,
	  .options = O(JSON) },
	{ 0 },
};

static const struct cli_command dns_commands[] = {
	{ .name = "add",
	  .summary = "Register a name for DNS on every node: an address (A/AAAA) or an SRV record.",
	  .usage = "NAME IP [--ttl DURATION] [--check tcp:PORT|http:PORT/PATH] [--check-interval SECS]\n"
		   "       [--check-threshold N]\n"
		   "       zl-overlay dns add NAME --srv PRIORITY WEIGHT PORT TARGET [--ttl DURATION]",
	  .details = "NAME is relative to the zone (web, or web.overlay.local). Several addresses may share a name;\n"
		     "adding one again updates its TTL and check. An address with a failing check leaves DNS until\n"
		     "it passes again. SRV names are _service._proto.name; TARGET is a name in the zone, or an\n"
		     "absolute name ending in '.'. Works on any node (a worker asks the leader).\n",
	  .run = cli_cmd_dns_add,
	  .options = O(TTL) | O(SRV) | O(CHECK) | O(CHECK_INTERVAL) | O(CHECK_THRESHOLD),
	  .min_args = 1,
	  .max_args = 5 },
	{ .name = "remove",
	  .summary = "Remove a name's records everywhere, or only one of its addresses.",
	  .usage = "NAME [IP]",
	  .run = cli_cmd_dns_remove,
	  .min_args = 1,
	  .max_args = 2 },
	{ .name = "list",
	  .summary = "List the registered names (this node's copy of the cluster's list).",
	  .usage = "[--json]",
	  .run = cli_cmd_dns_list,
	  .options = O(JSON) },
	{ 0 },
};

static const struct cli_command commands[] = {
	{ .name = "init-leader",
	  .summary = "Initialize this node as the leader of a new overlay and print a join token.",
	  .usage = "[--cidr CIDR] [--port PORT] [--endpoint HOST:PORT] [--hostname NAME] [--interface NAME]\n"
		   "       [--slice-prefix LEN] [--ttl DURATION] [--json]",
	  .details = "Refuses if DIR/state.json exists. Without --endpoint the first global address of this host\n"
		     "is advertised (and the choice is printed). Then start zl-overlayd to answer joins.\n",
	  .run = cli_cmd_init_leader,
	  .options = O(CIDR) | O(PORT) | O(ENDPOINT) | O(HOSTNAME) | O(INTERFACE) | O(SLICE_PREFIX) | O(TTL) |
		     O(JSON) },
	{ .name = "join",
	  .summary = "Join an overlay with a token from its leader, and write this node's state.",
	  .usage = "--token TOKEN [--endpoint HOST:PORT] [--hostname NAME] [--port PORT] [--interface NAME] [--json]",
	  .details = "Refuses if DIR/state.json exists. Without --endpoint this node advertises the local address\n"
		     "it reaches the leader from, with --port. Start zl-overlayd afterwards.\n",
	  .run = cli_cmd_join,
	  .options = O(TOKEN) | O(ENDPOINT) | O(HOSTNAME) | O(PORT) | O(INTERFACE) | O(JSON) },
	{ .name = "status",
	  .summary = "Show this node and its peers (from the running zl-overlayd).",
	  .usage = "[--json]",
	  .run = cli_cmd_status,
	  .options = O(JSON) },
	{ .name = "peers",
	  .summary = "List the peers (from the running zl-overlayd).",
	  .usage = "[--json]",
	  .run = cli_cmd_peers,
	  .options = O(JSON) },
	{ .name = "watch",
	  .summary = "Print health events (peer and service up/down) as they happen, until interrupted.",
	  .usage = "[--json]",
	  .details = "Starts with the last events the daemon kept (up to 64). One line per event, or one JSON\n"
		     "object per line with --json. Exits 0 on SIGINT/SIGTERM, 1 when zl-overlayd goes away.\n",
	  .run = cli_cmd_watch,
	  .options = O(JSON) },
	{ .name = "token",
	  .summary = "Manage join tokens (leader): create, revoke, list.",
	  .usage = "create|revoke|list ...",
	  .subcommands = token_commands },
	{ .name = "remove-peer",
	  .summary = "Remove a node from the overlay everywhere and free its addresses (leader).",
	  .usage = "NODE",
	  .details = "NODE is a node id, a hostname or an overlay address.\n",
	  .run = cli_cmd_remove_peer,
	  .min_args = 1,
	  .max_args = 1 },
	{ .name = "leave",
	  .summary = "Take this node out of the overlay (worker).",
	  .usage = "",
	  .run = cli_cmd_leave },
	{ .name = "dns",
	  .summary = "Names registered for DNS, cluster-wide: add, remove, list.",
	  .usage = "add|remove|list ...",
	  .subcommands = dns_commands },
	{ 0 },
};

const struct cli_command cli_root = {
	.name = CLI_PROG,
	.summary = "Encrypted overlay network: bootstrap, join and inspect nodes.",
	.subcommands = commands,
};

int cli_fail(const struct cli_ctx *ctx, int code, const char *fmt, ...)
{
	char path[64];
	va_list ap;

	cli_command_path(ctx->args, path, sizeof(path));
	fprintf(ctx->err, "%s: %s%s", CLI_PROG, path, path[0] ? ": " : "");
	va_start(ap, fmt);
	vfprintf(ctx->err, fmt, ap);
	va_end(ap);
	fputc('\n', ctx->err);
	return code;
}

static int join_path(const struct cli_ctx *ctx, char *out, size_t len, const char *name)
{
	int n = snprintf(out, len, "%s/%s", ctx->data_dir, name);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int cli_ctx_setup(struct cli_ctx *ctx)
{
	const char *dir = cli_opt(ctx, CLI_OPT_DATA_DIR), *t = cli_opt(ctx, CLI_OPT_TIMEOUT);
	uint64_t secs = CLI_DEFAULT_TIMEOUT_S;
	size_t len;

	if (!dir)
		dir = CLI_DEFAULT_DATA_DIR;
	len = strlen(dir);
	while (len > 1 && dir[len - 1] == '/')
		len--;                          /* "DIR/" and "DIR" name the same files */
	if (len == 0)
		return cli_fail(ctx, CLI_EXIT_USAGE, "--data-dir: empty path");
	if (len >= sizeof(ctx->data_dir))
		return cli_fail(ctx, CLI_EXIT_USAGE, "--data-dir: path too long");
	memcpy(ctx->data_dir, dir, len);
	ctx->data_dir[len] = '\0';
	if (join_path(ctx, ctx->state_path, sizeof(ctx->state_path), "state.json") < 0 ||
	    join_path(ctx, ctx->run_dir, sizeof(ctx->run_dir), CLI_RUN_DIR_NAME) < 0 ||
	    join_path(ctx, ctx->lock_path, sizeof(ctx->lock_path), CLI_LOCK_NAME) < 0)
		return cli_fail(ctx, CLI_EXIT_USAGE, "--data-dir: path too long");
	if (join_path(ctx, ctx->socket_path, sizeof(ctx->socket_path), CLI_SOCKET_NAME) < 0)
		return cli_fail(ctx, CLI_EXIT_USAGE,
				"--data-dir: path too long for the control socket (at most %zu bytes)",
				sizeof(ctx->socket_path) - sizeof("/" CLI_SOCKET_NAME));
	if (t && !cli_value_uint(t, 1, CLI_MAX_TIMEOUT_S, &secs))
		return cli_fail(ctx, CLI_EXIT_USAGE, "--timeout: '%s' is not a number of seconds (1 to %d)", t,
				CLI_MAX_TIMEOUT_S);
	ctx->timeout_ms = (uint32_t)secs * 1000u;
	return CLI_EXIT_OK;
}

int cli_main(int argc, char *const argv[], FILE *out, FILE *err)
{
	struct cli_args args;
	struct cli_ctx ctx = { .args = &args, .out = out, .err = err };
	char msg[CLI_MSG_LEN];
	int rc;

	if (cli_parse(&cli_root, argc, argv, &args, msg, sizeof(msg)) < 0) {
		if (argc <= 1) {
			cli_print_help(err, CLI_PROG, &args);
			return CLI_EXIT_USAGE;
		}
		fprintf(err, "%s: %s\n", CLI_PROG, msg);
		return CLI_EXIT_USAGE;
	}
	if (args.value[CLI_OPT_HELP]) {
		cli_print_help(out, CLI_PROG, &args);
		return CLI_EXIT_OK;
	}
	if (args.value[CLI_OPT_VERSION]) {
		fprintf(out, "%s %s\n", CLI_PROG, CLI_VERSION);
		return CLI_EXIT_OK;
	}
	rc = cli_ctx_setup(&ctx);
	if (rc != CLI_EXIT_OK)
		return rc;
	rc = args.command->run(&ctx);
	fflush(out);
	return rc;
}
