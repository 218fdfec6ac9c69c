/* zl-overlay status and zl-overlay peers: what the running daemon reports, as a table or stable JSON. */
#include <time.h>

#include "cli/cli.h"
#include "cli/control.h"
#include "cli/output.h"

int cli_show_body(struct cli_ctx *ctx, json_object *body, json_object *(*to_json)(json_object *),
		  void (*print)(FILE *, json_object *, int64_t))
{
	int rc = CLI_EXIT_OK;
	json_object *j;

	if (cli_opt(ctx, CLI_OPT_JSON)) {
		j = to_json(body);
		if (j)
			cli_print_json(ctx->out, j);
		else
			rc = cli_fail(ctx, CLI_EXIT_FAIL, "out of memory");
		json_object_put(j);
	} else {
		print(ctx->out, body, (int64_t)time(NULL));
	}
	json_object_put(body);
	return rc;
}

/* Asks the daemon (an idempotent request: re-sent if the daemon restarts meanwhile) and prints. */
static int show(struct cli_ctx *ctx, const char *type, json_object *(*to_json)(json_object *),
		void (*print)(FILE *, json_object *, int64_t))
{
	json_object *body;
	int rc = cli_control_run(ctx, type, NULL, true, &body);

	if (rc != CLI_EXIT_OK)
		return rc;
	return cli_show_body(ctx, body, to_json, print);
}

int cli_cmd_status(struct cli_ctx *ctx)
{
	return show(ctx, "status", cli_status_json, cli_print_status);
}

int cli_cmd_peers(struct cli_ctx *ctx)
{
	return show(ctx, "peers", cli_peers_json, cli_print_peers);
}
