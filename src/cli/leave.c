/* zl-overlay leave (worker): the daemon tells the leader, which removes this node everywhere; the daemon
 * then tears the node down and deletes its state. */
#include "cli/cli.h"
#include "cli/control.h"

int cli_cmd_leave(struct cli_ctx *ctx)
{
	json_object *body = NULL;
	int rc = cli_control_run(ctx, "leave", NULL, false, &body);

	if (rc != CLI_EXIT_OK)
		return rc;
	json_object_put(body);
	fprintf(ctx->out, "left the overlay\n");
	return CLI_EXIT_OK;
}
