/* zl-overlay remove-peer NODE (leader): the daemon removes the node everywhere and frees its addresses. */
#include <string.h>

#include "cli/cli.h"
#include "cli/control.h"
#include "cli/output.h"

enum { NODE_ARG_MAX = 255 };

/* A node id, hostname or overlay address: printable ASCII without spaces, as node ids are. */
static bool node_arg_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > NODE_ARG_MAX)
		return false;
	for (; *s; s++) {
		if (*s < 0x21 || *s > 0x7e)
			return false;
	}
	return true;
}

int cli_cmd_remove_peer(struct cli_ctx *ctx)
{
	const char *node = ctx->args->args[0];
	json_object *args, *body = NULL;
	const char *removed;
	int rc;

	if (!node_arg_valid(node))
		return cli_fail(ctx, CLI_EXIT_USAGE,
				"'%s' is not a node id, hostname or overlay address (1 to %d printable characters, no spaces)",
				node, NODE_ARG_MAX);
	args = json_object_new_object();
	if (!args || json_object_object_add(args, "node", json_object_new_string(node)) < 0) {
		json_object_put(args);
		return cli_fail(ctx, CLI_EXIT_FAIL, "out of memory");
	}
	/* Not idempotent: after a break the node may already be gone, and a re-send would say "unknown". */
	rc = cli_control_run(ctx, "remove_peer", args, false, &body);
	json_object_put(args);
	if (rc != CLI_EXIT_OK)
		return rc;
	removed = cli_json_str(body, "removed");
	fprintf(ctx->out, "removed %s\n", removed && *removed ? removed : node);
	json_object_put(body);
	return CLI_EXIT_OK;
}
