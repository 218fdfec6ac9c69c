/* The control socket: see control_server.h and docs/control-api.md. */
#include "overlayd/control_server.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include "overlay/atomic_file.h"
#include "overlay/frame.h"
#include "overlayd/events.h"
#include "overlayd/log.h"
#include "overlayd/membership.h"
#include "overlayd/net.h"
#include "overlayd/registry.h"
#include "overlayd/svc_check.h"

enum {
	READ_CHUNK = 16 << 10,
	READS_PER_EVENT = 8,             /* then back to the loop: fairness with the data plane */
	OUT_LIMIT = 64 << 20,            /* a client that does not read its answers is dropped */
	WATCH_OUT_LIMIT = 1 << 20,       /* a watcher that does not read its events is dropped */
	DNS_ERR_LEN = 512,               /* registry messages may quote a name of up to 253 bytes */
	RUN_DIR_MODE = 0750,
	SOCKET_MODE = 0660,
	LOCK_WAIT_MS = 5000,
	LOCK_POLL_MS = 50,
	LOCK_FD_MIN = 1000,
};

struct ctl_conn {
	struct od_control *ctl;
	struct wg_loop_source src;
	uint64_t serial;
	struct zl_frame_decoder dec;
	struct od_outbuf out;
	bool close_after_flush;
	bool watching;                   /* asked "watch": receives every event frame */
	struct ctl_conn *next;
};

struct od_control {
	struct od_node *node;
	int fd;
	int lock_fd;
	struct wg_loop_source src;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct ctl_conn *conns;
	size_t n_conns;
	uint64_t next_serial;
};

/* ---- connections */

static void conn_free(void *obj)
{
	struct ctl_conn *c = obj;

	zl_frame_decoder_free(&c->dec);
	od_outbuf_free(&c->out);
	free(c);
}

/* Unregisters at once, frees later (the loop may still hold an event for it this round). */
static void conn_close(struct ctl_conn *c)
{
	struct od_control *ctl = c->ctl;

	for (struct ctl_conn **pp = &ctl->conns; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			ctl->n_conns--;
			break;
		}
	}
	if (c->src.fd >= 0) {
		int fd = c->src.fd;

		wg_loop_del(ctl->node->loop, &c->src);
		close(fd);
	}
	od_timers_defer(&ctl->node->timers, conn_free, c);
}

static void conn_update_events(struct ctl_conn *c)
{
	uint32_t ev = EPOLLIN | (od_outbuf_pending(&c->out) ? EPOLLOUT : 0);

	wg_loop_mod(c->ctl->node->loop, &c->src, ev);
}

static void conn_send(struct ctl_conn *c, json_object *resp)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc = resp ? zl_frame_encode(resp, 0, &buf, &len) : -ENOMEM;

	json_object_put(resp);
	if (rc == -EMSGSIZE) {
		/* Only a huge peer list could do this; the client gets a reason instead of silence. */
		json_object *e = zl_frame_response_err(0, "response too large for one frame");

		rc = e ? zl_frame_encode(e, 0, &buf, &len) : -ENOMEM;
		json_object_put(e);
	}
	if (!rc)
		rc = od_outbuf_append(&c->out, buf, len, OUT_LIMIT);
	free(buf);
	if (!rc)
		rc = od_outbuf_flush(&c->out, c->src.fd);
	if (rc < 0 || (rc == 0 && c->close_after_flush)) {
		if (rc < 0)
			od_debug("control.client_dropped", "err=%s", od_q(strerror(-rc)));
		conn_close(c);
		return;
	}
	conn_update_events(c);
}

/* ---- request helpers */

static json_object *err_resp(uint64_t id, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static json_object *err_resp(uint64_t id, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* Messages may echo the client's input: no control characters reach a terminal through them. */
	for (char *p = msg; *p; p++) {
		if ((unsigned char)*p < ' ' || *p == 0x7f)
			*p = '?';
	}
	return zl_frame_response_err(id, msg);
}

struct req_ctx {
	struct ctl_conn *conn;
	struct od_node *n;
	const struct zl_frame_request *req;
	bool later;              /* the handler returned NULL: the answer comes later (od_control_reply) */
};

typedef json_object *(*handler_fn)(struct req_ctx *rc);

enum who { ANYONE, LEADER_ONLY, WORKER_ONLY };

struct handler {
	const char *type;
	handler_fn fn;
	enum who who;
	const char *args[6];     /* accepted arguments besides "type" (NULL-terminated) */
};

static void add_str(json_object *o, const char *k, const char *v)
{
	json_object_object_add(o, k, json_object_new_string(v));
}

static json_object *peers_array(struct od_node *n)
{
	json_object *a = json_object_new_array();

	for (size_t i = 0; a && i < n->st.n_peers; i++)
		json_object_array_add(a, od_node_peer_json(n, &n->st.peers[i], true));
	return a;
}

/* ---- handlers */

static json_object *do_status(struct req_ctx *rc)
{
	struct od_node *n = rc->n;
	const struct zl_state_config *c = &n->st.config;
	const struct zl_state_peer *leader = od_node_leader(n);
	char key[ZL_KEY_B64_LEN + 1];
	json_object *body, *resp = zl_frame_response_ok(rc->req->id, &body);

	if (!resp)
		return NULL;
	zl_state_key_encode(c->public_key, key);
	add_str(body, "node_id", c->node_id);
	add_str(body, "node_ip", c->node_ip);
	add_str(body, "public_key", key);
	json_object_object_add(body, "is_leader", json_object_new_boolean(c->is_leader));
	add_str(body, "hostname", c->hostname);
	add_str(body, "interface", n->ifname);
	add_str(body, "cidr", c->cidr);
	add_str(body, "slice_cidr", c->slice_cidr);
	add_str(body, "endpoint", c->endpoint);
	json_object_object_add(body, "listen_port", json_object_new_int(wg_device_get_listen_port(n->dev)));
	add_str(body, "leader_ip", c->is_leader ? c->node_ip : leader ? leader->overlay_ip : "");
	if (c->is_leader)
		json_object_object_add(body, "members_connected",
				       json_object_new_int64((int64_t)od_member_server_connected(n)));
	else
		json_object_object_add(body, "leader_connected", json_object_new_boolean(od_member_client_connected(n)));
	json_object_object_add(body, "peers", peers_array(n));
	return resp;
}

static json_object *do_peers(struct req_ctx *rc)
{
	json_object *body, *resp = zl_frame_response_ok(rc->req->id, &body);

	if (resp)
		json_object_object_add(body, "peers", peers_array(rc->n));
	return resp;
}

/* An optional integer argument in [lo, hi]; *present false when absent or null. */
static bool int_arg(struct req_ctx *rc, const char *name, int64_t lo, int64_t hi, int64_t *out, bool *present,
		    json_object **err)
{
	json_object *v;

	*present = false;
	if (!json_object_object_get_ex(rc->req->request, name, &v) || json_object_is_type(v, json_type_null))
		return true;
	if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < lo || json_object_get_int64(v) > hi ||
	    (json_object_get_int64(v) == INT64_MAX && json_object_get_uint64(v) != (uint64_t)INT64_MAX)) {
		*err = err_resp(rc->req->id, "%s: %s must be an integer from %lld to %lld", rc->req->type, name,
				(long long)lo, (long long)hi);
		return false;
	}
	*out = json_object_get_int64(v);
	*present = true;
	return true;
}

static bool str_arg(struct req_ctx *rc, const char *name, const char **out, json_object **err)
{
	json_object *v;

	if (!json_object_object_get_ex(rc->req->request, name, &v) || json_object_is_type(v, json_type_null)) {
		*err = err_resp(rc->req->id, "%s: missing argument '%s'", rc->req->type, name);
		return false;
	}
	if (!json_object_is_type(v, json_type_string) || !*json_object_get_string(v)) {
		*err = err_resp(rc->req->id, "%s: '%s' must be a non-empty string", rc->req->type, name);
		return false;
	}
	*out = json_object_get_string(v);
	return true;
}

static bool append_token(struct od_node *n, const struct zl_token_record *rec)
{
	struct zl_state_token *t = realloc(n->st.tokens, (n->st.n_tokens + 1) * sizeof(*t));

	if (!t)
		return false;
	n->st.tokens = t;
	od_token_to_state(rec, &n->st.tokens[n->st.n_tokens++]);
	return true;
}

static json_object *token_created(uint64_t id, const char *text, const struct zl_token_record *rec)
{
	char idhex[ZL_TOKEN_ID_HEX_LEN + 1];
	json_object *body, *resp = zl_frame_response_ok(id, &body);

	zl_token_id_format(rec->id, idhex);
	if (resp) {
		add_str(body, "token", text);
		add_str(body, "id", idhex);
		json_object_object_add(body, "expires_at", json_object_new_int64((int64_t)rec->expires_at));
	}
	return resp;
}

static json_object *do_token_create(struct req_ctx *rc)
{
	struct od_node *n = rc->n;
	char eps[ZL_TOKEN_MAX_ENDPOINTS][ZL_ENDPOINT_MAX_LEN + 1], text[ZL_TOKEN_TEXT_MAX], e[ZL_ERR_LEN];
	const char *ep_ptrs[ZL_TOKEN_MAX_ENDPOINTS];
	struct zl_token tok;
	struct zl_token_record rec;
	json_object *err = NULL, *resp;
	int64_t ttl = ZL_TOKEN_DEFAULT_TTL;
	bool present;
	size_t n_eps;
	enum zl_token_status ts;

	if (!int_arg(rc, "ttl_seconds", 1, ZL_TOKEN_MAX_TTL, &ttl, &present, &err))
		return err;
	n_eps = od_node_token_endpoints(n, eps);
	if (n_eps == 0)
		return err_resp(rc->req->id, "token_create: this node has no usable underlay address; "
					     "give the leader an endpoint (init-leader --endpoint HOST:PORT)");
	for (size_t i = 0; i < n_eps; i++)
		ep_ptrs[i] = eps[i];
	ts = zl_token_create(&tok, &rec, n->st.config.public_key, ep_ptrs, n_eps, (uint64_t)time(NULL), (uint64_t)ttl);
	if (ts != ZL_TOKEN_OK || !zl_token_encode(&tok, text, sizeof(text))) {
		zl_token_wipe(&tok);
		return err_resp(rc->req->id, "token_create: %s", zl_token_strerror(ts ? ts : ZL_TOKEN_MALFORMED));
	}
	zl_token_wipe(&tok);
	/* Saved before the token is shown: a token the leader does not know would only fail later. */
	if (!append_token(n, &rec)) {
		resp = NULL;
	} else if (od_node_save(n, e, sizeof(e))) {
		n->st.n_tokens--;
		resp = err_resp(rc->req->id, "token_create: %s", e);
	} else {
		char idhex[ZL_TOKEN_ID_HEX_LEN + 1];

		zl_token_id_format(rec.id, idhex);
		od_info("token.created", "id=%s expires_at=%llu endpoints=%zu", idhex,
			(unsigned long long)rec.expires_at, n_eps);
		resp = token_created(rc->req->id, text, &rec);
	}
	sodium_memzero(text, sizeof(text));
	return resp;
}

static long find_token(const struct od_node *n, const uint8_t id[ZL_TOKEN_ID_LEN])
{
	for (size_t i = 0; i < n->st.n_tokens; i++) {
		if (memcmp(n->st.tokens[i].id, id, ZL_TOKEN_ID_LEN) == 0)
			return (long)i;
	}
	return -1;
}

static json_object *do_token_revoke(struct req_ctx *rc)
{
	struct od_node *n = rc->n;
	uint8_t id[ZL_TOKEN_ID_LEN];
	char e[ZL_ERR_LEN];
	json_object *err = NULL, *body;
	const char *hex;
	long i;

	if (!str_arg(rc, "id", &hex, &err))
		return err;
	if (strlen(hex) != ZL_TOKEN_ID_HEX_LEN || !zl_token_id_parse(hex, id))
		return err_resp(rc->req->id, "token_revoke: 'id' must be 16 hex digits");
	i = find_token(n, id);
	if (i < 0)
		return err_resp(rc->req->id, "token_revoke: no token with id %s", od_q(hex));
	if (n->st.tokens[i].revoked)
		return zl_frame_response_ok(rc->req->id, &body);
	n->st.tokens[i].revoked = true;
	if (od_node_save(n, e, sizeof(e))) {
		n->st.tokens[i].revoked = false;
		return err_resp(rc->req->id, "token_revoke: %s", e);
	}
	od_info("token.revoked", "id=%s", od_q(hex));
	return zl_frame_response_ok(rc->req->id, &body);
}

static json_object *do_token_list(struct req_ctx *rc)
{
	struct od_node *n = rc->n;
	json_object *body, *resp = zl_frame_response_ok(rc->req->id, &body), *a = json_object_new_array();

	for (size_t i = 0; a && i < n->st.n_tokens; i++) {
		const struct zl_state_token *t = &n->st.tokens[i];
		json_object *o = json_object_new_object();
		char idhex[ZL_TOKEN_ID_HEX_LEN + 1];

		zl_token_id_format(t->id, idhex);
		add_str(o, "id", idhex);
		json_object_object_add(o, "created_at", json_object_new_int64((int64_t)t->created_at));
		json_object_object_add(o, "expires_at", json_object_new_int64((int64_t)t->expires_at));
		json_object_object_add(o, "revoked", json_object_new_boolean(t->revoked));
		json_object_object_add(o, "uses", json_object_new_int64(t->uses));
		json_object_object_add(o, "max_uses", json_object_new_int64(t->max_uses));
		json_object_array_add(a, o);
	}
	if (resp)
		json_object_object_add(body, "tokens", a);
	else
		json_object_put(a);
	return resp;
}

static json_object *do_remove_peer(struct req_ctx *rc)
{
	struct od_node *n = rc->n;
	char e[ZL_ERR_LEN], node_id[ZL_NODE_ID_SIZE];
	uint8_t key[ZL_KEY_LEN];
	json_object *err = NULL, *body, *resp;
	const char *query;
	long idx;

	if (!str_arg(rc, "node", &query, &err))
		return err;
	if (strcmp(query, n->st.config.node_id) == 0 || strcmp(query, n->st.config.node_ip) == 0)
		return err_resp(rc->req->id, "remove_peer: '%s' is this node, the leader: it cannot remove itself",
				od_q(query));
	idx = od_node_find_member(n, query, e, sizeof(e));
	if (idx < 0)
		return err_resp(rc->req->id, "remove_peer: %s", e);
	snprintf(node_id, sizeof(node_id), "%s", n->st.peers[idx].node_id);
	memcpy(key, n->st.peers[idx].public_key, ZL_KEY_LEN);
	if (od_node_remove_member(n, (size_t)idx, e, sizeof(e)))
		return err_resp(rc->req->id, "remove_peer: %s", e);
	od_info("member.removed", "node_id=%s by=remove_peer", od_q(node_id));
	od_member_server_evict(n, node_id, key);
	od_member_server_push(n);
	resp = zl_frame_response_ok(rc->req->id, &body);
	if (resp)
		add_str(body, "removed", node_id);
	return resp;
}

static json_object *do_leave(struct req_ctx *rc)
{
	char e[ZL_ERR_LEN];

	if (od_member_client_leave(rc->n, rc->conn->serial, rc->req->id, e, sizeof(e)))
		return err_resp(rc->req->id, "leave: %s", e);
	rc->later = true;
	return NULL;   /* answered when the leader confirms */
}

/* ---- service records (registry.h): anyone may change them; on a worker the leader does */

static json_object *dns_error(struct req_ctx *rc, const char *e)
{
	return err_resp(rc->req->id, "%s: %s", rc->req->type, e);
}

/* msg (consumed) goes to the leader; its dns_result answers the client. */
static json_object *dns_forward(struct req_ctx *rc, json_object *msg)
{
	char e[ZL_ERR_LEN];

	if (!msg)
		return NULL;
	if (od_member_client_forward(rc->n, msg, rc->conn->serial, rc->req->id, e, sizeof(e)))
		return dns_error(rc, e);
	rc->later = true;
	return NULL;
}

static json_object *do_dns_add(struct req_ctx *rc)
{
	struct zl_state_dns_record rec;
	json_object *body, *resp, *msg;
	char e[DNS_ERR_LEN];
	bool created = false;

	if (od_registry_parse_add(rc->n, rc->req->request, &rec, e, sizeof(e)))
		return dns_error(rc, e);
	if (!rc->n->st.config.is_leader) {
		msg = json_object_new_object();
		if (msg) {
			add_str(msg, "type", "dns_add");
			json_object_object_add(msg, "record", zl_state_dns_to_json(&rec));
		}
		return dns_forward(rc, msg);
	}
	if (od_registry_add(rc->n, &rec, &created, e, sizeof(e)))
		return dns_error(rc, e);
	resp = zl_frame_response_ok(rc->req->id, &body);
	if (resp)
		od_registry_added_fields(body, &rec, created);
	return resp;
}

static json_object *do_dns_remove(struct req_ctx *rc)
{
	char name[ZL_DNS_NAME_SIZE], addr[ZL_ADDR_STRLEN], e[DNS_ERR_LEN];
	json_object *body, *resp, *msg;
	size_t removed = 0;

	if (od_registry_parse_remove(rc->n, rc->req->request, name, addr, e, sizeof(e)))
		return dns_error(rc, e);
	if (!rc->n->st.config.is_leader) {
		msg = json_object_new_object();
		if (msg) {
			add_str(msg, "type", "dns_remove");
			add_str(msg, "name", name);
			if (addr[0])
				add_str(msg, "addr", addr);
		}
		return dns_forward(rc, msg);
	}
	if (od_registry_remove(rc->n, name, addr, &removed, e, sizeof(e)))
		return dns_error(rc, e);
	resp = zl_frame_response_ok(rc->req->id, &body);
	if (resp)
		od_registry_removed_fields(body, removed);
	return resp;
}

/* This node's copy of the list (on a worker: the last one the leader pushed). */
static json_object *do_dns_list(struct req_ctx *rc)
{
	json_object *body, *resp = zl_frame_response_ok(rc->req->id, &body), *records = od_registry_list_json(rc->n);

	if (!resp || !records) {
		json_object_put(resp);
		json_object_put(records);
		return NULL;
	}
	/* Checks run on each node from where it stands: the verdict is this node's own. */
	for (size_t i = 0; i < rc->n->st.n_dns; i++) {
		const struct zl_state_dns_record *rec = &rc->n->st.dns[i];

		if (rec->check.kind != ZL_CHECK_NONE)
			add_str(json_object_array_get_idx(records, i), "health",
				od_svc_state_name(od_svc_checks_state(rc->n, rec)));
	}
	add_str(body, "zone", rc->n->opts.dns_zone);
	json_object_object_add(body, "records", records);
	return resp;
}

static json_object *do_shutdown(struct req_ctx *rc)
{
	json_object *body;

	od_info("daemon.shutdown_requested", "by=control");
	od_node_shutdown(rc->n, 0);
	return zl_frame_response_ok(rc->req->id, &body);
}

/* The answer carries the kept events; every later one follows as an {"event": ...} frame. */
static json_object *do_watch(struct req_ctx *rc)
{
	json_object *body, *resp = zl_frame_response_ok(rc->req->id, &body), *recent = od_events_recent_json(rc->n);

	if (!resp || !recent) {
		json_object_put(resp);
		json_object_put(recent);
		return NULL;
	}
	json_object_object_add(body, "recent", recent);
	rc->conn->watching = true;
	return resp;
}

static const struct handler handlers[] = {
	{ "status", do_status, ANYONE, { NULL } },
	{ "peers", do_peers, ANYONE, { NULL } },
	{ "token_create", do_token_create, LEADER_ONLY, { "ttl_seconds", NULL } },
	{ "token_revoke", do_token_revoke, LEADER_ONLY, { "id", NULL } },
	{ "token_list", do_token_list, LEADER_ONLY, { NULL } },
	{ "remove_peer", do_remove_peer, LEADER_ONLY, { "node", NULL } },
	{ "leave", do_leave, WORKER_ONLY, { NULL } },
	{ "shutdown", do_shutdown, ANYONE, { NULL } },
	{ "dns_add", do_dns_add, ANYONE, { "name", "addr", "srv", "ttl", "check", NULL } },
	{ "dns_remove", do_dns_remove, ANYONE, { "name", "addr", NULL } },
	{ "dns_list", do_dns_list, ANYONE, { NULL } },
	{ "watch", do_watch, ANYONE, { NULL } },
};

/* A misspelt argument must not be silently ignored (the same rule as the state file). */
static const char *unknown_arg(const struct handler *h, json_object *request)
{
	json_object_object_foreach(request, key, val) {
		bool known = strcmp(key, "type") == 0;

		(void)val;
		for (size_t i = 0; !known && h->args[i]; i++)
			known = strcmp(key, h->args[i]) == 0;
		if (!known)
			return key;
	}
	return NULL;
}

/* *later: the handler answers later (NULL returned on purpose). */
static json_object *dispatch(struct ctl_conn *c, const struct zl_frame_request *req, bool *later)
{
	struct req_ctx rc = { .conn = c, .n = c->ctl->node, .req = req };
	json_object *resp;
	bool leader = rc.n->st.config.is_leader;
	const char *bad;

	for (size_t i = 0; i < sizeof(handlers) / sizeof(handlers[0]); i++) {
		const struct handler *h = &handlers[i];

		if (strcmp(h->type, req->type) != 0)
			continue;
		if (h->who == LEADER_ONLY && !leader)
			return err_resp(req->id, "%s: only the leader can do this (this node is a worker)", h->type);
		if (h->who == WORKER_ONLY && leader)
			return err_resp(req->id, "%s: only a worker can do this (this node is the leader)", h->type);
		if ((bad = unknown_arg(h, req->request)))
			return err_resp(req->id, "%s: unknown argument '%s'", h->type, od_q(bad));
		resp = h->fn(&rc);
		*later = rc.later;
		return resp;
	}
	return err_resp(req->id, "unknown request type '%s' (known: status, peers, token_create, token_revoke, "
				 "token_list, remove_peer, leave, shutdown, watch, dns_add, dns_remove, dns_list)", od_q(req->type));
}

static void handle_frame(struct ctl_conn *c, json_object *frame)
{
	struct zl_frame_request req;
	char e[ZL_ERR_LEN];
	json_object *resp;
	bool async = false;

	if (!zl_frame_request_parse(frame, &req, e, sizeof(e))) {
		conn_send(c, zl_frame_response_err(req.has_id ? req.id : 0, e));
		return;
	}
	resp = dispatch(c, &req, &async);
	if (!resp && !async)
		resp = zl_frame_response_err(req.id, "out of memory");
	if (resp)
		conn_send(c, resp);
}

static void on_conn(struct wg_loop_source *src, uint32_t events)
{
	struct ctl_conn *c = wg_container_of(src, struct ctl_conn, src);
	uint8_t buf[READ_CHUNK];

	if (events & EPOLLOUT) {
		int rc = od_outbuf_flush(&c->out, src->fd);

		if (rc < 0 || (rc == 0 && c->close_after_flush)) {
			conn_close(c);
			return;
		}
		conn_update_events(c);
	}
	if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR)) || c->close_after_flush)
		return;
	for (int r = 0; r < READS_PER_EVENT; r++) {
		ssize_t got = recv(src->fd, buf, sizeof(buf), MSG_DONTWAIT);
		size_t off = 0;

		if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR)) {
			conn_close(c);
			return;
		}
		if (got < 0)
			return;
		while (off < (size_t)got) {
			json_object *frame = NULL;
			size_t used = 0;
			int rc = zl_frame_decoder_feed(&c->dec, buf + off, (size_t)got - off, &used, &frame);

			off += used;
			if (rc < 0) {
				/* Framing is lost: say why, then hang up once that is written. */
				c->close_after_flush = true;
				conn_send(c, zl_frame_response_err(0, zl_frame_decoder_error(&c->dec)));
				return;
			}
			if (rc == 1) {
				uint64_t serial = c->serial;

				handle_frame(c, frame);
				json_object_put(frame);
				/* handle_frame may have closed c (deferred free): stop reading from it. */
				if (c->src.fd < 0 || c->serial != serial)
					return;
			}
		}
	}
}

static void on_accept(struct wg_loop_source *src, uint32_t events)
{
	struct od_control *ctl = wg_container_of(src, struct od_control, src);

	for (int i = 0; i < 16; i++) {
		int fd = accept4(src->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct ctl_conn *c;

		if (fd < 0)
			return;
		if (ctl->n_conns >= OD_CONTROL_MAX_CONNS) {
			od_error("control.too_many_clients", "limit=%d", OD_CONTROL_MAX_CONNS);
			close(fd);
			continue;
		}
		if (!(c = calloc(1, sizeof(*c)))) {
			close(fd);
			continue;
		}
		c->ctl = ctl;
		c->serial = ++ctl->next_serial;
		zl_frame_decoder_init(&c->dec, OD_CONTROL_FRAME_MAX);
		if (wg_loop_add(ctl->node->loop, &c->src, fd, EPOLLIN, on_conn)) {
			close(fd);
			conn_free(c);
			continue;
		}
		c->next = ctl->conns;
		ctl->conns = c;
		ctl->n_conns++;
	}
}

/* ---- setup */

/* Waits up to LOCK_WAIT_MS: a daemon killed a moment ago may still be closing its files. */
static int take_lock(int fd)
{
	for (int waited = 0;; waited += LOCK_POLL_MS) {
		if (flock(fd, LOCK_EX | LOCK_NB) == 0)
			return 0;
		if (errno != EWOULDBLOCK)
			return -errno;
		if (waited >= LOCK_WAIT_MS)
			return -EBUSY;
		if (waited == 0)
			od_info("daemon.waiting_for_lock", "max_ms=%d", LOCK_WAIT_MS);
		usleep(LOCK_POLL_MS * 1000);
	}
}

int od_control_lock(struct od_node *n, char *err, size_t errlen)
{
	char path[OD_PATH_MAX + 32];
	int rc = zl_dir_create(n->run_dir, RUN_DIR_MODE), fd, high;

	if (rc) {
		snprintf(err, errlen, "cannot create %s: %s", n->run_dir, strerror(-rc));
		return rc;
	}
	snprintf(path, sizeof(path), "%s/%s", n->run_dir, OD_LOCK_NAME);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
		return rc;
	}
	/* Kept open until the process ends: that is the lock. On exit the kernel closes descriptors in
	 * ascending order, so a high number makes the lock go last, after the TUN device (and with it
	 * the interface) is gone: whoever gets the lock next finds the interface name free. */
	high = fcntl(fd, F_DUPFD_CLOEXEC, LOCK_FD_MIN);
	if (high >= 0) {
		close(fd);
		fd = high;
	}
	rc = take_lock(fd);
	if (rc) {
		snprintf(err, errlen, rc == -EBUSY ? "another zl-overlayd is running on %s" : "cannot lock %s: %s",
			 rc == -EBUSY ? n->data_dir : path, strerror(-rc));
		close(fd);
	}
	return rc;
}

static int make_listener(struct od_control *ctl, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	mode_t old_umask;
	int rc;

	if (fd < 0)
		return -errno;
	memcpy(sa.sun_path, ctl->path, strlen(ctl->path) + 1);
	/* We hold the lock, so a socket file left here is a dead daemon's. */
	if (unlink(ctl->path) == 0)
		od_info("control.removed_stale_socket", "path=%s", od_q(ctl->path));
	old_umask = umask(0117);   /* created 0660 from the start: never briefly wider */
	rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old_umask);
	if (rc < 0 || chmod(ctl->path, SOCKET_MODE) < 0 || listen(fd, 64) < 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot listen on %s: %s", ctl->path, strerror(errno));
		close(fd);
		return rc;
	}
	ctl->fd = fd;
	return 0;
}

int od_control_open(struct od_node *n, char *err, size_t errlen)
{
	struct od_control *ctl = calloc(1, sizeof(*ctl));
	int rc;

	if (!ctl)
		return -ENOMEM;
	ctl->node = n;
	ctl->fd = -1;
	ctl->src.fd = -1;
	if ((size_t)snprintf(ctl->path, sizeof(ctl->path), "%s/%s", n->run_dir, OD_SOCKET_NAME) >= sizeof(ctl->path)) {
		snprintf(err, errlen, "data directory path too long for a Unix socket (%s/%s)", n->run_dir, OD_SOCKET_NAME);
		free(ctl);
		return -ENAMETOOLONG;
	}
	rc = make_listener(ctl, err, errlen);
	if (!rc && (rc = wg_loop_add(n->loop, &ctl->src, ctl->fd, EPOLLIN, on_accept))) {
		snprintf(err, errlen, "event loop: %s", strerror(-rc));
		close(ctl->fd);
		unlink(ctl->path);
	}
	if (rc) {
		free(ctl);
		return rc;
	}
	n->control = ctl;
	od_info("control.listening", "path=%s", od_q(ctl->path));
	return 0;
}

void od_control_close(struct od_node *n)
{
	struct od_control *ctl = n->control;

	if (!ctl)
		return;
	while (ctl->conns) {
		struct ctl_conn *c = ctl->conns;

		/* Outside the loop now: pending answers get one last try, then everything goes at once. */
		od_outbuf_flush(&c->out, c->src.fd);
		ctl->conns = c->next;
		if (c->src.fd >= 0) {
			int fd = c->src.fd;

			wg_loop_del(n->loop, &c->src);
			close(fd);
		}
		conn_free(c);
	}
	wg_loop_del(n->loop, &ctl->src);
	close(ctl->fd);
	unlink(ctl->path);
	free(ctl);
	n->control = NULL;
}

/* Queued on each watcher without ever waiting: one that lets WATCH_OUT_LIMIT bytes pile up is
 * dropped, so a stuck `zl-overlay watch` costs at most that much memory and never blocks the loop. */
void od_control_broadcast_event(struct od_node *n, json_object *ev)
{
	struct od_control *ctl = n->control;
	json_object *frame = json_object_new_object();
	uint8_t *buf = NULL;
	size_t len = 0;
	struct ctl_conn *c, *next;

	if (!frame || json_object_object_add(frame, "event", ev) < 0) {
		json_object_put(frame);
		json_object_put(ev);
		return;
	}
	if (!ctl || zl_frame_encode(frame, 0, &buf, &len) < 0) {
		json_object_put(frame);
		return;
	}
	json_object_put(frame);
	for (c = ctl->conns; c; c = next) {
		int rc;

		next = c->next;
		if (!c->watching || c->close_after_flush)
			continue;
		rc = od_outbuf_append(&c->out, buf, len, WATCH_OUT_LIMIT);
		if (!rc)
			rc = od_outbuf_flush(&c->out, c->src.fd);
		if (rc < 0) {
			od_info("control.watcher_dropped", "err=%s", od_q(strerror(-rc)));
			conn_close(c);
			continue;
		}
		conn_update_events(c);
	}
	free(buf);
}

void od_control_reply(struct od_node *n, uint64_t conn_serial, json_object *resp)
{
	struct od_control *ctl = n->control;

	for (struct ctl_conn *c = ctl ? ctl->conns : NULL; c; c = c->next) {
		if (c->serial == conn_serial) {
			conn_send(c, resp);
			return;
		}
	}
	json_object_put(resp);
}
