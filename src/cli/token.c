/* zl-overlay token create|revoke|list (leader).
 *
 * With zl-overlayd running, the daemon does the work (token_create, token_revoke, token_list): it owns the
 * state file then. When it is not running, the command edits DIR/state.json itself under DIR/state.lock,
 * so tokens can be prepared before the daemon starts; a note on stderr says so. */
#include <errno.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/control.h"
#include "cli/node.h"
#include "cli/output.h"
#include "overlay/state.h"
#include "overlay/token.h"

/* An offline edit: fn works on the loaded state; *changed asks for a save. */
typedef int (*state_fn)(const struct cli_ctx *ctx, struct zl_state *s, void *arg, bool *changed);

static int with_state(const struct cli_ctx *ctx, state_fn fn, void *arg)
{
	struct zl_state s = { 0 };
	char why[CLI_MSG_LEN];
	bool changed = false;
	int lock, r, rc;

	if (!cli_node_initialized(ctx))
		return cli_fail(ctx, CLI_EXIT_FAIL, "not initialized: no %s (run init-leader first)", ctx->state_path);
	lock = cli_node_lock(ctx);
	if (lock < 0)
		return -lock;
	r = zl_state_load(ctx->state_path, &s, why, sizeof(why));
	if (r == -ENOENT)
		rc = cli_fail(ctx, CLI_EXIT_FAIL, "not initialized: no %s (run init-leader first)", ctx->state_path);
	else if (r < 0)
		rc = cli_fail(ctx, CLI_EXIT_FAIL, "%s", why);
	else if (!s.config.is_leader)
		rc = cli_fail(ctx, CLI_EXIT_FAIL, "this node is a worker: tokens are managed on the leader");
	else
		rc = fn(ctx, &s, arg, &changed);
	if (rc == CLI_EXIT_OK && changed && (r = zl_state_save(ctx->state_path, &s)) < 0)
		rc = cli_fail(ctx, CLI_EXIT_FAIL, "cannot write %s: %s", ctx->state_path, strerror(-r));
	zl_state_free(&s);
	close(lock);
	return rc;
}

/* Calls the daemon; with no daemon runs fn offline instead. */
static int daemon_or_state(const struct cli_ctx *ctx, const char *type, json_object *args, bool idempotent,
			   json_object **body, state_fn fn, void *arg)
{
	char msg[CLI_MSG_LEN], path[64];
	enum cli_control_status st = cli_control_call(ctx, type, args, idempotent, body, msg, sizeof(msg));

	if (st != CLI_CONTROL_NOT_RUNNING)
		return cli_control_report(ctx, type, st, msg);
	fprintf(ctx->err, "%s: %s: %s: editing %s directly\n", CLI_PROG,
		cli_command_path(ctx->args, path, sizeof(path)), msg, ctx->state_path);
	return with_state(ctx, fn, arg);
}

static void record_from_state(const struct zl_state_token *t, struct zl_token_record *r)
{
	memcpy(r->id, t->id, sizeof(r->id));
	memcpy(r->secret_hash, t->secret_hash, sizeof(r->secret_hash));
	r->created_at = t->created_at;
	r->expires_at = t->expires_at;
	r->max_uses = t->max_uses;
	r->uses = t->uses;
	r->revoked = t->revoked;
}

static void record_to_state(const struct zl_token_record *r, struct zl_state_token *t)
{
	memcpy(t->id, r->id, sizeof(t->id));
	memcpy(t->secret_hash, r->secret_hash, sizeof(t->secret_hash));
	t->created_at = r->created_at;
	t->expires_at = r->expires_at;
	t->max_uses = r->max_uses;
	t->uses = r->uses;
	t->revoked = r->revoked;
}

/* ---- create ---- */

struct create_arg {
	uint64_t ttl;
	char text[ZL_TOKEN_TEXT_MAX];
};

static int create_offline(const struct cli_ctx *ctx, struct zl_state *s, void *arg, bool *changed)
{
	struct create_arg *a = arg;
	const char *eps[1] = { s->config.endpoint };
	struct zl_state_token *grown;
	struct zl_token_record rec;
	struct zl_token tok;
	enum zl_token_status st;

	if (!s->config.endpoint[0])
		return cli_fail(ctx, CLI_EXIT_FAIL, "%s has no endpoint to put in a token", ctx->state_path);
	st = zl_token_create(&tok, &rec, s->config.public_key, eps, 1, (uint64_t)time(NULL), a->ttl);
	if (st != ZL_TOKEN_OK)
		return cli_fail(ctx, CLI_EXIT_FAIL, "cannot create a token: %s", zl_token_strerror(st));
	grown = realloc(s->tokens, (s->n_tokens + 1) * sizeof(*grown));
	if (!grown || !zl_token_encode(&tok, a->text, sizeof(a->text))) {
		if (grown)
			s->tokens = grown;
		zl_token_wipe(&tok);
		return cli_fail(ctx, CLI_EXIT_FAIL, "out of memory");
	}
	zl_token_wipe(&tok);
	s->tokens = grown;
	record_to_state(&rec, &s->tokens[s->n_tokens++]);
	*changed = true;
	return CLI_EXIT_OK;
}

int cli_cmd_token_create(struct cli_ctx *ctx)
{
	const char *ttl = cli_opt(ctx, CLI_OPT_TTL), *text;
	struct create_arg a = { .ttl = ZL_TOKEN_DEFAULT_TTL };
	json_object *args = json_object_new_object(), *body = NULL;
	int rc;

	if (ttl && !zl_token_parse_ttl(ttl, &a.ttl)) {
		json_object_put(args);
		return cli_fail(ctx, CLI_EXIT_USAGE, "--ttl '%s': expected 90s, 30m, 24h, 7d or seconds, at most 365d",
				ttl);
	}
	if (!args || (ttl && json_object_object_add(args, "ttl_seconds", json_object_new_int64((int64_t)a.ttl)) < 0)) {
		json_object_put(args);
		return cli_fail(ctx, CLI_EXIT_FAIL, "out of memory");
	}
	rc = daemon_or_state(ctx, "token_create", args, false, &body, create_offline, &a);
	json_object_put(args);
	if (rc == CLI_EXIT_OK && body) {
		text = cli_json_str(body, "token");
		if (text && *text)
			fprintf(ctx->out, "%s\n", text);
		else
			rc = cli_fail(ctx, CLI_EXIT_FAIL, "zl-overlayd answered without a token");
	} else if (rc == CLI_EXIT_OK) {
		fprintf(ctx->out, "%s\n", a.text);
	}
	sodium_memzero(a.text, sizeof(a.text));
	json_object_put(body);
	return rc;
}

/* ---- revoke ---- */

/* The id from "0123456789abcdef" or from a whole token (whatever its expiry). */
static bool revoke_target(const char *s, uint8_t id[ZL_TOKEN_ID_LEN])
{
	struct zl_token tok;
	bool ok;

	if (zl_token_id_parse(s, id))
		return true;
	ok = zl_token_decode(s, 0, &tok) == ZL_TOKEN_OK;
	if (ok)
		memcpy(id, tok.id, ZL_TOKEN_ID_LEN);
	zl_token_wipe(&tok);
	return ok;
}

static int revoke_offline(const struct cli_ctx *ctx, struct zl_state *s, void *arg, bool *changed)
{
	const uint8_t *id = arg;

	for (size_t i = 0; i < s->n_tokens; i++) {
		if (memcmp(s->tokens[i].id, id, ZL_TOKEN_ID_LEN))
			continue;
		*changed = !s->tokens[i].revoked;
		s->tokens[i].revoked = true;
		return CLI_EXIT_OK;
	}
	return cli_fail(ctx, CLI_EXIT_FAIL, "no token with that id");
}

int cli_cmd_token_revoke(struct cli_ctx *ctx)
{
	const char *arg = ctx->args->args[0];
	uint8_t id[ZL_TOKEN_ID_LEN];
	char hex[ZL_TOKEN_ID_HEX_LEN + 1];
	json_object *args, *body = NULL;
	int rc;

	if (!revoke_target(arg, id))
		return cli_fail(ctx, CLI_EXIT_USAGE, "'%s' is neither a token id (16 hex digits) nor a join token",
				arg);
	zl_token_id_format(id, hex);
	args = json_object_new_object();
	if (!args || json_object_object_add(args, "id", json_object_new_string(hex)) < 0) {
		json_object_put(args);
		return cli_fail(ctx, CLI_EXIT_FAIL, "out of memory");
	}
	/* Revoking twice is harmless, so a re-send after a broken connection is fine. */
	rc = daemon_or_state(ctx, "token_revoke", args, true, &body, revoke_offline, id);
	json_object_put(args);
	json_object_put(body);
	if (rc == CLI_EXIT_OK)
		fprintf(ctx->out, "revoked token %s\n", hex);
	return rc;
}

/* ---- list ---- */

/* The state's records as a token_list answer, so both paths print alike. */
static int list_offline(const struct cli_ctx *ctx, struct zl_state *s, void *arg, bool *changed)
{
	json_object **out = arg, *body = json_object_new_object(), *arr = json_object_new_array();

	if (!body || !arr || json_object_object_add(body, "tokens", arr) < 0) {
		json_object_put(body);
		json_object_put(arr);
		return cli_fail(ctx, CLI_EXIT_FAIL, "out of memory");
	}
	for (size_t i = 0; i < s->n_tokens; i++) {
		struct zl_token_record r;
		char hex[ZL_TOKEN_ID_HEX_LEN + 1];
		json_object *t = json_object_new_object();

		record_from_state(&s->tokens[i], &r);
		zl_token_id_format(r.id, hex);
		if (!t || json_object_array_add(arr, t) < 0) {
			json_object_put(t);
			json_object_put(body);
			return cli_fail(ctx, CLI_EXIT_FAIL, "out of memory");
		}
		json_object_object_add(t, "id", json_object_new_string(hex));
		json_object_object_add(t, "expires_at", json_object_new_int64((int64_t)r.expires_at));
		json_object_object_add(t, "uses", json_object_new_int64(r.uses));
		json_object_object_add(t, "max_uses", json_object_new_int64(r.max_uses));
		json_object_object_add(t, "revoked", json_object_new_boolean(r.revoked));
	}
	*out = body;
	return CLI_EXIT_OK;
}

int cli_cmd_token_list(struct cli_ctx *ctx)
{
	json_object *body = NULL;
	int rc = daemon_or_state(ctx, "token_list", NULL, true, &body, list_offline, &body);

	if (rc != CLI_EXIT_OK)
		return rc;
	return cli_show_body(ctx, body, cli_tokens_json, cli_print_tokens);
}
