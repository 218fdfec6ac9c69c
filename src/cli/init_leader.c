/* zl-overlay init-leader: creates the leader's key pair, allocators and state, and its first join token.
 *
 * The leader's node id is "leader" (CLI_LEADER_NODE_ID): stable, unique in the cluster (there is one
 * leader and it never gives that id to a worker) and what workers use to find the leader among their
 * peers. Its slice is placed by the slice allocator like any node's (FNV-1a-64 of the id), and it takes
 * the slice's first address, marked in the address allocator so it is never handed out again. */
#include <errno.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/net.h"
#include "cli/node.h"
#include "cli/output.h"
#include "overlay/ipam.h"
#include "overlay/slices.h"
#include "overlay/state.h"
#include "overlay/token.h"

struct leader_opts {
	struct zl_prefix cluster;
	unsigned slice_prefix;
	uint16_t port;
	char endpoint[ZL_ENDPOINT_MAX_LEN + 1]; /* "" = derive from the host's addresses */
	char hostname[ZL_HOSTNAME_SIZE];
	char interface[ZL_IFNAME_SIZE];
	uint64_t ttl;
	bool json;
};

static int parse_cidr(const struct cli_ctx *ctx, struct leader_opts *o)
{
	const char *cidr = cli_opt(ctx, CLI_OPT_CIDR);
	char why[ZL_ERR_LEN], net[ZL_PREFIX_STRLEN];
	struct zl_prefix n;

	if (!cidr)
		cidr = CLI_DEFAULT_CIDR;
	if (zl_prefix_parse(cidr, &o->cluster, why, sizeof(why)) < 0)
		return cli_fail(ctx, CLI_EXIT_USAGE, "--cidr '%s': %s", cidr, why);
	if (!zl_prefix_is_network(&o->cluster)) {
		zl_prefix_network(&o->cluster, &n);
		return cli_fail(ctx, CLI_EXIT_USAGE, "--cidr '%s' has host bits set (did you mean %s?)", cidr,
				zl_prefix_format(&n, net));
	}
	return CLI_EXIT_OK;
}

/* The slice length: given or 28 / 64; it must leave at least two slices and four addresses per slice. */
static int parse_slice_prefix(const struct cli_ctx *ctx, struct leader_opts *o)
{
	const char *s = cli_opt(ctx, CLI_OPT_SLICE_PREFIX);
	unsigned bits = zl_ip_bits(o->cluster.ip.family);
	char net[ZL_PREFIX_STRLEN];
	uint64_t v;

	o->slice_prefix = bits == 32 ? 28 : 64;
	if (s) {
		if (!cli_value_uint(s, 1, bits - 2, &v))
			return cli_fail(ctx, CLI_EXIT_USAGE, "--slice-prefix '%s': expected a prefix length from 1 to %u",
					s, bits - 2);
		o->slice_prefix = (unsigned)v;
	}
	if (o->slice_prefix <= o->cluster.len)
		return cli_fail(ctx, CLI_EXIT_USAGE,
				"--cidr %s is too small for /%u node slices (use a shorter prefix or --slice-prefix)",
				zl_prefix_format(&o->cluster, net), o->slice_prefix);
	return CLI_EXIT_OK;
}

static int parse_opts(const struct cli_ctx *ctx, struct leader_opts *o)
{
	const char *port = cli_opt(ctx, CLI_OPT_PORT), *ep = cli_opt(ctx, CLI_OPT_ENDPOINT);
	const char *ttl = cli_opt(ctx, CLI_OPT_TTL);
	char why[CLI_MSG_LEN];
	int rc;

	memset(o, 0, sizeof(*o));
	o->json = cli_opt(ctx, CLI_OPT_JSON) != NULL;
	if ((rc = parse_cidr(ctx, o)) || (rc = parse_slice_prefix(ctx, o)))
		return rc;
	if (!cli_node_port(port, &o->port))
		return cli_fail(ctx, CLI_EXIT_USAGE, "--port '%s': expected a port number from 1 to 65535", port);
	if (ep && !cli_endpoint_normalize(ep, o->port, o->endpoint))
		return cli_fail(ctx, CLI_EXIT_USAGE,
				"--endpoint '%s': expected HOST:PORT (an IPv4 address, [IPv6] or a DNS name)", ep);
	if (!cli_node_hostname(cli_opt(ctx, CLI_OPT_HOSTNAME), o->hostname, why, sizeof(why)) ||
	    !cli_node_interface(cli_opt(ctx, CLI_OPT_INTERFACE), o->interface, why, sizeof(why)))
		return cli_fail(ctx, CLI_EXIT_USAGE, "%s", why);
	o->ttl = ZL_TOKEN_DEFAULT_TTL;
	if (ttl && !zl_token_parse_ttl(ttl, &o->ttl))
		return cli_fail(ctx, CLI_EXIT_USAGE, "--ttl '%s': expected 90s, 30m, 24h, 7d or seconds, at most 365d",
				ttl);
	return CLI_EXIT_OK;
}

/* Without --endpoint: the host's first global address (not one of the overlay's own), said aloud. */
static int pick_endpoint(const struct cli_ctx *ctx, struct leader_opts *o)
{
	char ifname[16];

	if (o->endpoint[0])
		return CLI_EXIT_OK;
	if (cli_host_endpoint(o->port, &o->cluster, o->endpoint, ifname) < 0)
		return cli_fail(ctx, CLI_EXIT_FAIL,
				"no --endpoint given and this host has no global address to advertise: pass --endpoint "
				"HOST:PORT");
	fprintf(ctx->err, "%s: init-leader: no --endpoint given: advertising %s (first global address, on %s)\n",
		CLI_PROG, o->endpoint, ifname);
	return CLI_EXIT_OK;
}

/* The leader's slice and address, recorded in both allocators' snapshots in s. */
static int allocate(const struct cli_ctx *ctx, const struct leader_opts *o, struct zl_state *s)
{
	struct zl_slices *slices = NULL;
	struct zl_ipam *ipam = NULL;
	struct zl_prefix slice;
	struct zl_ip ip;
	char why[ZL_ERR_LEN];
	int rc = CLI_EXIT_FAIL;

	if (zl_slices_new(&o->cluster, o->slice_prefix, &slices, why, sizeof(why)) < 0 ||
	    zl_slices_assign(slices, CLI_LEADER_NODE_ID, &slice, why, sizeof(why)) < 0 ||
	    zl_ipam_new(&o->cluster, &ipam, why, sizeof(why)) < 0)
		goto out;
	zl_prefix_at(&slice, 1, &ip);
	if (zl_ipam_allocate_specific(ipam, &ip, why, sizeof(why)) < 0)
		goto out;
	s->ip_allocator.allocated = calloc(1, sizeof(*s->ip_allocator.allocated));
	s->slice_allocator.assigned = calloc(1, sizeof(*s->slice_allocator.assigned));
	if (!s->ip_allocator.allocated || !s->slice_allocator.assigned) {
		snprintf(why, sizeof(why), "out of memory");
		goto out;
	}
	s->ip_allocator.present = true;
	zl_prefix_format(&o->cluster, s->ip_allocator.cidr);
	zl_ip_format(&ip, s->ip_allocator.allocated[0].s);
	s->ip_allocator.n_allocated = 1;
	s->slice_allocator.present = true;
	zl_prefix_format(&o->cluster, s->slice_allocator.cluster_cidr);
	s->slice_allocator.slice_prefix = o->slice_prefix;
	snprintf(s->slice_allocator.assigned[0].name, ZL_NODE_ID_SIZE, "%s", CLI_LEADER_NODE_ID);
	zl_prefix_format(&slice, s->slice_allocator.assigned[0].cidr);
	s->slice_allocator.n_assigned = 1;
	zl_ip_format(&ip, s->config.node_ip);
	zl_prefix_format(&slice, s->config.slice_cidr);
	rc = CLI_EXIT_OK;
out:
	if (rc != CLI_EXIT_OK)
		cli_fail(ctx, rc, "cannot allocate the leader's address: %s", why);
	zl_ipam_free(ipam);
	zl_slices_free(slices);
	return rc;
}

static void fill_config(const struct leader_opts *o, struct zl_state *s, int64_t now)
{
	struct zl_state_config *c = &s->config;

	snprintf(c->node_id, sizeof(c->node_id), "%s", CLI_LEADER_NODE_ID);
	zl_prefix_format(&o->cluster, c->cidr);
	snprintf(c->interface, sizeof(c->interface), "%s", o->interface);
	c->port = o->port;
	cli_node_keypair(c->private_key, c->public_key);
	c->is_leader = true;
	c->created_at = now;
	snprintf(c->hostname, sizeof(c->hostname), "%s", o->hostname);
	snprintf(c->endpoint, sizeof(c->endpoint), "%s", o->endpoint);
}

/* The first join token; its record goes into the state, the token itself only to the screen. */
static int add_token(const struct cli_ctx *ctx, const struct leader_opts *o, struct zl_state *s, uint64_t now,
		     struct zl_token *tok)
{
	const char *eps[1] = { o->endpoint };
	struct zl_token_record rec;
	struct zl_state_token *t;
	enum zl_token_status st;

	st = zl_token_create(tok, &rec, s->config.public_key, eps, 1, now, o->ttl);
	if (st != ZL_TOKEN_OK)
		return cli_fail(ctx, CLI_EXIT_FAIL, "cannot create a join token: %s", zl_token_strerror(st));
	t = calloc(1, sizeof(*t));
	if (!t)
		return cli_fail(ctx, CLI_EXIT_FAIL, "out of memory");
	memcpy(t->id, rec.id, sizeof(t->id));
	memcpy(t->secret_hash, rec.secret_hash, sizeof(t->secret_hash));
	t->created_at = rec.created_at;
	t->expires_at = rec.expires_at;
	t->max_uses = rec.max_uses;
	t->uses = rec.uses;
	t->revoked = rec.revoked;
	s->tokens = t;
	s->n_tokens = 1;
	return CLI_EXIT_OK;
}

static void print_json(const struct cli_ctx *ctx, const struct zl_state *s, const char *token,
		       const struct zl_token *tok)
{
	char key[ZL_KEY_B64_LEN + 1], id[ZL_TOKEN_ID_HEX_LEN + 1];
	json_object *o = json_object_new_object();

	zl_state_key_encode(s->config.public_key, key);
	zl_token_id_format(tok->id, id);
	json_object_object_add(o, "node_id", json_object_new_string(s->config.node_id));
	json_object_object_add(o, "node_ip", json_object_new_string(s->config.node_ip));
	json_object_object_add(o, "public_key", json_object_new_string(key));
	json_object_object_add(o, "is_leader", json_object_new_boolean(true));
	json_object_object_add(o, "hostname", json_object_new_string(s->config.hostname));
	json_object_object_add(o, "cidr", json_object_new_string(s->config.cidr));
	json_object_object_add(o, "slice_cidr", json_object_new_string(s->config.slice_cidr));
	json_object_object_add(o, "interface", json_object_new_string(s->config.interface));
	json_object_object_add(o, "listen_port", json_object_new_int(s->config.port));
	json_object_object_add(o, "endpoint", json_object_new_string(s->config.endpoint));
	json_object_object_add(o, "data_dir", json_object_new_string(ctx->data_dir));
	json_object_object_add(o, "token", json_object_new_string(token));
	json_object_object_add(o, "token_id", json_object_new_string(id));
	json_object_object_add(o, "token_expires_at", json_object_new_int64((int64_t)tok->expires_at));
	cli_print_json(ctx->out, o);
	json_object_put(o);
}

static void print_text(const struct cli_ctx *ctx, const struct zl_state *s, const char *token,
		       const struct zl_token *tok)
{
	char key[ZL_KEY_B64_LEN + 1], id[ZL_TOKEN_ID_HEX_LEN + 1], exp[CLI_FMT_LEN];
	FILE *f = ctx->out;

	zl_state_key_encode(s->config.public_key, key);
	zl_token_id_format(tok->id, id);
	fprintf(f, "Initialized the leader of %s in %s.\n", s->config.cidr, ctx->data_dir);
	fprintf(f, "node id:          %s\n", s->config.node_id);
	fprintf(f, "hostname:         %s\n", s->config.hostname);
	fprintf(f, "overlay address:  %s\n", s->config.node_ip);
	fprintf(f, "slice:            %s\n", s->config.slice_cidr);
	fprintf(f, "public key:       %s\n", key);
	fprintf(f, "endpoint:         %s\n", s->config.endpoint);
	fprintf(f, "token id:         %s (single use, expires %s)\n", id,
		cli_format_utc((int64_t)tok->expires_at, exp));
	fprintf(f, "token:            %s\n", token);
	fprintf(f, "Start zl-overlayd%s%s, then on each worker: %s join --token TOKEN\n",
		strcmp(ctx->data_dir, CLI_DEFAULT_DATA_DIR) ? " --data-dir " : "",
		strcmp(ctx->data_dir, CLI_DEFAULT_DATA_DIR) ? ctx->data_dir : "", CLI_PROG);
}

static int save_and_print(const struct cli_ctx *ctx, const struct leader_opts *o, struct zl_state *s,
			  struct zl_token *tok)
{
	char text[ZL_TOKEN_TEXT_MAX], why[CLI_MSG_LEN];
	int r;

	if (!zl_state_validate(s, why, sizeof(why)))
		return cli_fail(ctx, CLI_EXIT_FAIL, "internal error: %s", why);
	if (!zl_token_encode(tok, text, sizeof(text)))
		return cli_fail(ctx, CLI_EXIT_FAIL, "cannot encode the join token");
	r = zl_state_save(ctx->state_path, s);
	if (r < 0) {
		sodium_memzero(text, sizeof(text));
		return cli_fail(ctx, CLI_EXIT_FAIL, "cannot write %s: %s", ctx->state_path, strerror(-r));
	}
	if (o->json)
		print_json(ctx, s, text, tok);
	else
		print_text(ctx, s, text, tok);
	sodium_memzero(text, sizeof(text));
	return CLI_EXIT_OK;
}

int cli_cmd_init_leader(struct cli_ctx *ctx)
{
	struct zl_state s = { 0 };
	struct zl_token tok = { 0 };
	struct leader_opts o;
	int64_t now = (int64_t)time(NULL);
	int rc, lock;

	if ((rc = parse_opts(ctx, &o)))
		return rc;
	if (cli_node_initialized(ctx))
		return cli_fail(ctx, CLI_EXIT_FAIL, "already initialized: %s exists", ctx->state_path);
	if ((rc = pick_endpoint(ctx, &o)))
		return rc;
	lock = cli_node_lock(ctx);
	if (lock < 0)
		return -lock;
	if (cli_node_initialized(ctx)) {
		rc = cli_fail(ctx, CLI_EXIT_FAIL, "already initialized: %s exists", ctx->state_path);
		goto out;
	}
	fill_config(&o, &s, now);
	if ((rc = allocate(ctx, &o, &s)) || (rc = add_token(ctx, &o, &s, (uint64_t)now, &tok)))
		goto out;
	rc = save_and_print(ctx, &o, &s, &tok);
out:
	zl_token_wipe(&tok);
	zl_state_free(&s);
	close(lock);
	return rc;
}
