/* zl-overlay join --token TOKEN: the worker side of the join protocol (docs/join-protocol.md).
 *
 * Decodes the token, creates this node's key pair, connects over TCP to the leader's endpoints from the
 * token in order (10 s per endpoint, the next one only when a connection cannot be made), sends the
 * REQUEST and opens the answer. Only an authenticated success writes anything: the state, with the leader
 * as peers[0]. A refusal prints the leader's reason ("token: expired") and changes nothing. */
#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/net.h"
#include "cli/node.h"
#include "cli/output.h"
#include "overlay/join_proto.h"
#include "overlay/state.h"
#include "overlay/token.h"

struct join_opts {
	const char *token_text;
	char endpoint[ZL_ENDPOINT_MAX_LEN + 1];   /* advertised; "" = the address we reach the leader from */
	char hostname[ZL_HOSTNAME_SIZE];
	char interface[ZL_IFNAME_SIZE];
	uint16_t port;
	bool json;
};

/* One join exchange and what came of it. */
struct exchange {
	struct zl_token tok;
	uint8_t priv[ZL_KEY_LEN], pub[ZL_KEY_LEN];
	char used_endpoint[ZL_ENDPOINT_MAX_LEN + 1];   /* the leader endpoint that answered */
	char advertised[ZL_ENDPOINT_MAX_LEN + 1];      /* what we told the leader; "" = none */
	struct zl_join_response resp;
};

static int parse_opts(const struct cli_ctx *ctx, struct join_opts *o)
{
	const char *port = cli_opt(ctx, CLI_OPT_PORT), *ep = cli_opt(ctx, CLI_OPT_ENDPOINT);
	char why[CLI_MSG_LEN];

	memset(o, 0, sizeof(*o));
	o->json = cli_opt(ctx, CLI_OPT_JSON) != NULL;
	o->token_text = cli_opt(ctx, CLI_OPT_TOKEN);
	if (!o->token_text)
		return cli_fail(ctx, CLI_EXIT_USAGE, "missing --token TOKEN (from 'zl-overlay token create' on the leader)");
	if (!cli_node_port(port, &o->port))
		return cli_fail(ctx, CLI_EXIT_USAGE, "--port '%s': expected a port number from 1 to 65535", port);
	if (ep && !cli_endpoint_normalize(ep, o->port, o->endpoint))
		return cli_fail(ctx, CLI_EXIT_USAGE,
				"--endpoint '%s': expected HOST:PORT (an IPv4 address, [IPv6] or a DNS name)", ep);
	if (!cli_node_hostname(cli_opt(ctx, CLI_OPT_HOSTNAME), o->hostname, why, sizeof(why)) ||
	    !cli_node_interface(cli_opt(ctx, CLI_OPT_INTERFACE), o->interface, why, sizeof(why)))
		return cli_fail(ctx, CLI_EXIT_USAGE, "%s", why);
	return CLI_EXIT_OK;
}

/* Reads the leader's answer: the header first, so its size is checked before anything is buffered. */
static enum zl_join_status read_answer(int fd, int64_t deadline, uint8_t **msg, size_t *len, int *io_err)
{
	uint8_t hdr[ZL_JOIN_HEADER_LEN];
	enum zl_join_status st;
	size_t total;

	*msg = NULL;
	*io_err = cli_recv_full(fd, hdr, sizeof(hdr), deadline);
	if (*io_err < 0)
		return ZL_JOIN_ERR_STATE;
	st = zl_join_msg_length(hdr, true, &total);
	if (st != ZL_JOIN_OK)
		return st;
	*msg = malloc(total);
	if (!*msg)
		return ZL_JOIN_ERR_NOMEM;
	memcpy(*msg, hdr, sizeof(hdr));
	*io_err = cli_recv_full(fd, *msg + sizeof(hdr), total - sizeof(hdr), deadline);
	if (*io_err < 0) {
		free(*msg);
		*msg = NULL;
		return ZL_JOIN_ERR_STATE;
	}
	*len = total;
	return ZL_JOIN_OK;
}

/* Builds and sends the REQUEST on fd, then opens the answer into x->resp. */
static int converse(const struct cli_ctx *ctx, const struct join_opts *o, struct exchange *x, int fd,
		    int64_t deadline)
{
	struct zl_join_worker_session sess;
	struct zl_join_request req = { .timestamp = (uint64_t)time(NULL) };
	uint8_t out[ZL_JOIN_MAX_REQUEST], *msg = NULL;
	enum zl_join_status st;
	size_t len = 0;
	int io = 0;

	memcpy(req.token_id, x->tok.id, sizeof(req.token_id));
	memcpy(req.token_secret, x->tok.secret, sizeof(req.token_secret));
	memcpy(req.public_key, x->pub, sizeof(req.public_key));
	snprintf(req.hostname, sizeof(req.hostname), "%s", o->hostname);
	snprintf(req.endpoint, sizeof(req.endpoint), "%s", x->advertised);
	st = zl_join_request_build(&sess, x->tok.leader_public_key, &req, out, &len);
	sodium_memzero(&req, sizeof(req));
	if (st != ZL_JOIN_OK)
		return cli_fail(ctx, CLI_EXIT_FAIL, "cannot build the join request: %s", zl_join_strerror(st));
	io = cli_send_all(fd, out, len, deadline);
	sodium_memzero(out, sizeof(out));
	if (io == 0)
		st = read_answer(fd, deadline, &msg, &len, &io);
	if (io < 0) {
		zl_join_worker_session_wipe(&sess);
		return cli_fail(ctx, CLI_EXIT_FAIL, "no answer from the leader at %s: %s", x->used_endpoint,
				io == -ECONNRESET ? "it closed the connection" :
				io == -ETIMEDOUT  ? "timed out" : strerror(-io));
	}
	if (st == ZL_JOIN_OK)
		st = zl_join_response_open(&sess, msg, len, &x->resp);
	zl_join_worker_session_wipe(&sess);
	free(msg);
	if (st != ZL_JOIN_OK)
		return cli_fail(ctx, CLI_EXIT_FAIL, "bad answer from %s: %s", x->used_endpoint, zl_join_strerror(st));
	if (x->resp.code == ZL_JOIN_OK)
		return CLI_EXIT_OK;
	if (!x->resp.authenticated)
		return cli_fail(ctx, CLI_EXIT_FAIL, "refused by the leader (unauthenticated): %s", x->resp.message);
	return cli_fail(ctx, CLI_EXIT_FAIL, "%s", x->resp.message);
}

/* Tries the token's endpoints in order; only a failed connection moves on to the next. */
static int run_exchange(const struct cli_ctx *ctx, const struct join_opts *o, struct exchange *x)
{
	char why[CLI_MSG_LEN] = "";

	for (size_t i = 0; i < x->tok.n_endpoints; i++) {
		int64_t deadline = cli_now_ms() + CLI_JOIN_TIMEOUT_MS;
		int fd = cli_tcp_connect(x->tok.endpoints[i], deadline, why, sizeof(why)), rc;

		if (fd < 0) {
			fprintf(ctx->err, "%s: join: %s\n", CLI_PROG, why);
			continue;
		}
		snprintf(x->used_endpoint, sizeof(x->used_endpoint), "%s", x->tok.endpoints[i]);
		snprintf(x->advertised, sizeof(x->advertised), "%s", o->endpoint);
		if (!x->advertised[0] && !cli_socket_endpoint(fd, o->port, x->advertised))
			fprintf(ctx->err, "%s: join: this node's address cannot be advertised: other nodes will not "
					  "dial it (pass --endpoint)\n", CLI_PROG);
		rc = converse(ctx, o, x, fd, deadline);
		close(fd);
		return rc;
	}
	return cli_fail(ctx, CLI_EXIT_FAIL,
			"cannot reach the leader at any endpoint of the token (is zl-overlayd running on the leader?)");
}

static void peer_from_join(const struct zl_join_peer *j, struct zl_state_peer *p)
{
	snprintf(p->node_id, sizeof(p->node_id), "%s", j->node_id);
	memcpy(p->public_key, j->public_key, sizeof(p->public_key));
	snprintf(p->endpoint, sizeof(p->endpoint), "%s", j->endpoint);
	snprintf(p->overlay_ip, sizeof(p->overlay_ip), "%s", j->overlay_ip);
	p->keepalive = ZL_STATE_DEFAULT_KEEPALIVE;
	if (!j->hostname[0] || !zl_hostname_normalize(j->hostname, p->hostname, NULL, 0))
		p->hostname[0] = '\0';
	snprintf(p->slice_cidr, sizeof(p->slice_cidr), "%s", j->slice);
}

/* The peers, the leader first; a leader entry without an endpoint gets the one that answered us. */
static int fill_peers(const struct exchange *x, struct zl_state *s)
{
	const struct zl_join_response *r = &x->resp;
	size_t leader = r->n_peers, k = 1;

	s->peers = calloc(r->n_peers, sizeof(*s->peers));
	if (!s->peers)
		return -ENOMEM;
	for (size_t i = 0; i < r->n_peers; i++) {
		if (leader == r->n_peers && !strcmp(r->peers[i].overlay_ip, r->leader_overlay_ip))
			leader = i;
	}
	if (leader == r->n_peers)
		return -EINVAL; /* zl_join_response_open guarantees it; refuse rather than guess */
	peer_from_join(&r->peers[leader], &s->peers[0]);
	if (!s->peers[0].endpoint[0])
		snprintf(s->peers[0].endpoint, sizeof(s->peers[0].endpoint), "%s", x->used_endpoint);
	for (size_t i = 0; i < r->n_peers; i++) {
		if (i != leader)
			peer_from_join(&r->peers[i], &s->peers[k++]);
	}
	s->n_peers = r->n_peers;
	return 0;
}

static int build_state(const struct join_opts *o, const struct exchange *x, struct zl_state *s)
{
	struct zl_state_config *c = &s->config;
	const struct zl_join_response *r = &x->resp;

	snprintf(c->node_id, sizeof(c->node_id), "%s", r->node_id);
	snprintf(c->cidr, sizeof(c->cidr), "%s", r->cluster_cidr);
	snprintf(c->node_ip, sizeof(c->node_ip), "%s", r->overlay_ip);
	snprintf(c->slice_cidr, sizeof(c->slice_cidr), "%s", r->slice);
	snprintf(c->interface, sizeof(c->interface), "%s", o->interface);
	c->port = o->port;
	memcpy(c->private_key, x->priv, sizeof(c->private_key));
	memcpy(c->public_key, x->pub, sizeof(c->public_key));
	c->is_leader = false;
	c->created_at = (int64_t)time(NULL);
	snprintf(c->hostname, sizeof(c->hostname), "%s", o->hostname);
	snprintf(c->endpoint, sizeof(c->endpoint), "%s", x->advertised);
	return fill_peers(x, s);
}

static void print_result(const struct cli_ctx *ctx, const struct join_opts *o, const struct zl_state *s)
{
	char key[ZL_KEY_B64_LEN + 1];
	const struct zl_state_config *c = &s->config;
	json_object *j;

	zl_state_key_encode(c->public_key, key);
	if (!o->json) {
		fprintf(ctx->out, "Joined the overlay %s as %s.\n", c->cidr, c->node_id);
		fprintf(ctx->out, "overlay address:  %s\n", c->node_ip);
		fprintf(ctx->out, "slice:            %s\n", c->slice_cidr);
		fprintf(ctx->out, "public key:       %s\n", key);
		fprintf(ctx->out, "leader:           %s (%s)\n", s->peers[0].overlay_ip, s->peers[0].endpoint);
		fprintf(ctx->out, "peers:            %zu\n", s->n_peers);
		fprintf(ctx->out, "Start zl-overlayd%s%s to bring this node up.\n",
			strcmp(ctx->data_dir, CLI_DEFAULT_DATA_DIR) ? " --data-dir " : "",
			strcmp(ctx->data_dir, CLI_DEFAULT_DATA_DIR) ? ctx->data_dir : "");
		return;
	}
	j = json_object_new_object();
	json_object_object_add(j, "node_id", json_object_new_string(c->node_id));
	json_object_object_add(j, "node_ip", json_object_new_string(c->node_ip));
	json_object_object_add(j, "public_key", json_object_new_string(key));
	json_object_object_add(j, "is_leader", json_object_new_boolean(false));
	json_object_object_add(j, "hostname", json_object_new_string(c->hostname));
	json_object_object_add(j, "cidr", json_object_new_string(c->cidr));
	json_object_object_add(j, "slice_cidr", json_object_new_string(c->slice_cidr));
	json_object_object_add(j, "interface", json_object_new_string(c->interface));
	json_object_object_add(j, "listen_port", json_object_new_int(c->port));
	json_object_object_add(j, "endpoint", json_object_new_string(c->endpoint));
	json_object_object_add(j, "leader_ip", json_object_new_string(s->peers[0].overlay_ip));
	json_object_object_add(j, "peers", json_object_new_int64((int64_t)s->n_peers));
	json_object_object_add(j, "data_dir", json_object_new_string(ctx->data_dir));
	cli_print_json(ctx->out, j);
	json_object_put(j);
}

/* After a success: the leader has admitted us, so a failure here needs the operator's attention. */
static int save(const struct cli_ctx *ctx, const struct join_opts *o, const struct exchange *x)
{
	struct zl_state s = { 0 };
	char why[CLI_PATH_MAX + CLI_MSG_LEN];
	int r, rc = CLI_EXIT_OK;

	r = build_state(o, x, &s);
	if (r == 0 && !zl_state_validate(&s, why, sizeof(why)))
		r = -EINVAL;
	else if (r < 0)
		snprintf(why, sizeof(why), "%s", strerror(-r));
	if (r == 0 && (r = zl_state_save(ctx->state_path, &s)) < 0)
		snprintf(why, sizeof(why), "cannot write %s: %s", ctx->state_path, strerror(-r));
	if (r < 0)
		rc = cli_fail(ctx, CLI_EXIT_FAIL,
			      "%s; the leader has admitted this node as '%s': run 'zl-overlay remove-peer %s' on the "
			      "leader before joining again",
			      why, x->resp.node_id, x->resp.node_id);
	else
		print_result(ctx, o, &s);
	zl_state_free(&s);
	return rc;
}

int cli_cmd_join(struct cli_ctx *ctx)
{
	struct exchange x;
	struct join_opts o;
	enum zl_token_status ts;
	int rc, lock;

	if ((rc = parse_opts(ctx, &o)))
		return rc;
	memset(&x, 0, sizeof(x));
	ts = zl_token_decode(o.token_text, (uint64_t)time(NULL), &x.tok);
	if (ts != ZL_TOKEN_OK)
		return cli_fail(ctx, CLI_EXIT_FAIL, "%s", zl_token_strerror(ts));
	if (cli_node_initialized(ctx)) {
		zl_token_wipe(&x.tok);
		return cli_fail(ctx, CLI_EXIT_FAIL, "already initialized: %s exists", ctx->state_path);
	}
	lock = cli_node_lock(ctx);
	if (lock < 0) {
		zl_token_wipe(&x.tok);
		return -lock;
	}
	if (cli_node_initialized(ctx)) {
		rc = cli_fail(ctx, CLI_EXIT_FAIL, "already initialized: %s exists", ctx->state_path);
	} else {
		cli_node_keypair(x.priv, x.pub);
		rc = run_exchange(ctx, &o, &x);
		if (rc == CLI_EXIT_OK)
			rc = save(ctx, &o, &x);
	}
	zl_join_response_free(&x.resp);
	zl_token_wipe(&x.tok);
	sodium_memzero(&x, sizeof(x));
	close(lock);
	return rc;
}
