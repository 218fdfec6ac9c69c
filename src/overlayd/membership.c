/* The membership channel, leader and worker sides: see membership.h and docs/control-api.md. */
#include "overlayd/membership.h"

#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "overlay/frame.h"
#include "overlay/token.h"
#include "overlayd/control_server.h"
#include "overlayd/log.h"
#include "overlayd/member_check.h"
#include "overlayd/net.h"
#include "overlayd/registry.h"

enum {
	READ_CHUNK = 64 << 10,
	READS_PER_EVENT = 8,
	OUT_LIMIT = 32 << 20,            /* a member this far behind is dropped; it re-dials and resyncs */
	EVICT_GRACE_MS = 3000,           /* how long a removed member's last message may take */
	HELLO_TIMEOUT_MS = 10000,
	/* Keepalive: a dead or restarted peer is noticed within idle + count * interval seconds. */
	LEADER_KA_IDLE = 10, LEADER_KA_INTVL = 3, LEADER_KA_CNT = 3,
	WORKER_KA_IDLE = 4, WORKER_KA_INTVL = 2, WORKER_KA_CNT = 3,
	/* Membership check over the underlay (member_check.h) while the tunnel connection is down: the
	 * first soon after the loss (a re-dial to a restarted leader usually wins), then periodically. */
	CHECK_FIRST_MS = 1000, CHECK_INTERVAL_MS = 10000, CHECK_TIMEOUT_MS = 5000,
	MAX_CONNS_SLACK = 64,            /* connections beyond the member count (replacements in flight) */
	DNS_ERR_LEN = 512,               /* registry messages may quote a name of up to 253 bytes */
};

static json_object *message(const char *type)
{
	json_object *o = json_object_new_object();

	if (o)
		json_object_object_add(o, "type", json_object_new_string(type));
	return o;
}

static const char *msg_type(json_object *o)
{
	json_object *t;

	if (!json_object_object_get_ex(o, "type", &t) || !json_object_is_type(t, json_type_string))
		return "";
	return json_object_get_string(t);
}

/* Encodes obj (consumed) into out. 0 or -errno. */
static int queue_obj(struct od_outbuf *out, json_object *obj, size_t max)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc = obj ? zl_frame_encode(obj, max, &buf, &len) : -ENOMEM;

	json_object_put(obj);
	if (!rc)
		rc = od_outbuf_append(out, buf, len, OUT_LIMIT);
	free(buf);
	return rc;
}

/* ============================================================ leader */

struct mem_conn {
	struct od_member_server *ms;
	struct wg_loop_source src;
	struct zl_frame_decoder dec;
	struct od_outbuf out;
	char node_id[ZL_NODE_ID_SIZE];
	uint8_t public_key[ZL_KEY_LEN];
	char peer_text[OD_SOCKADDR_STRLEN];
	bool hello;
	bool closing;                    /* a last message is going out; then the peer is forgotten */
	bool forget_peer;                /* remove the WireGuard peer when this connection ends */
	struct od_timer timer;           /* hello deadline, then the eviction grace period */
	struct mem_conn *next;
};

struct od_member_server {
	struct od_node *node;
	struct wg_loop_source src;       /* the listening socket */
	struct mem_conn *conns;
	size_t n_conns;
};

static void mconn_free(void *obj)
{
	struct mem_conn *c = obj;

	zl_frame_decoder_free(&c->dec);
	od_outbuf_free(&c->out);
	free(c);
}

static void mconn_close(struct mem_conn *c)
{
	struct od_member_server *ms = c->ms;
	struct od_node *n = ms->node;

	for (struct mem_conn **pp = &ms->conns; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			ms->n_conns--;
			break;
		}
	}
	od_timer_cancel(&n->timers, &c->timer);
	od_loop_close(n->loop, &c->src);
	if (c->forget_peer)
		od_node_forget_device_peer(n, c->public_key);
	od_debug("member.disconnected", "node_id=%s", od_q(c->node_id));
	od_timers_defer(&n->timers, mconn_free, c);
}

static void mconn_events(struct mem_conn *c)
{
	wg_loop_mod(c->ms->node->loop, &c->src, EPOLLIN | (od_outbuf_pending(&c->out) ? EPOLLOUT : 0));
}

/* Writes what is queued; closes on error. */
static void mconn_flush(struct mem_conn *c)
{
	if (od_outbuf_flush(&c->out, c->src.fd) < 0) {
		mconn_close(c);
		return;
	}
	mconn_events(c);
}

static void mconn_send(struct mem_conn *c, json_object *obj)
{
	int rc = queue_obj(&c->out, obj, 0);

	if (rc) {
		od_error("member.send_failed", "node_id=%s err=%s", od_q(c->node_id), od_q(strerror(-rc)));
		mconn_close(c);
		return;
	}
	mconn_flush(c);
}

static void on_mconn_timer(struct od_timer *t)
{
	struct mem_conn *c = wg_container_of(t, struct mem_conn, timer);

	if (!c->closing)
		od_info("member.no_hello", "node_id=%s", od_q(c->node_id));
	mconn_close(c);
}

/* Sends the last message, then waits for the member to hang up (or for the grace period) before the
 * connection and the WireGuard peer go: the message is still in the tunnel's queue when send()
 * returns, and removing the peer at once would drop it. */
static void mconn_finish(struct mem_conn *c, json_object *last, bool forget_peer)
{
	c->closing = true;
	c->forget_peer = forget_peer;
	od_timer_arm(&c->ms->node->timers, &c->timer, EVICT_GRACE_MS);
	mconn_send(c, last);
}

static json_object *peers_message(struct od_node *n)
{
	json_object *o = message("peers"), *a = json_object_new_array(), *dns;
	struct zl_state_peer self;

	if (!o || !a) {
		json_object_put(o);
		json_object_put(a);
		return NULL;
	}
	od_node_self_entry(n, &self);
	json_object_array_add(a, od_node_peer_json(n, &self, false));
	for (size_t i = 0; i < n->st.n_peers; i++)
		json_object_array_add(a, od_node_peer_json(n, &n->st.peers[i], false));
	json_object_object_add(o, "epoch", json_object_new_uint64(n->epoch));
	json_object_object_add(o, "peers", a);
	/* The service records travel with the members: one frame is the whole cluster-wide truth. */
	dns = od_registry_list_json(n);
	if (!dns || json_object_object_add(o, "dns", dns)) {
		json_object_put(dns);
		json_object_put(o);
		return NULL;
	}
	return o;
}

void od_member_server_push(struct od_node *n)
{
	struct od_member_server *ms = n->members;
	json_object *msg;
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc;

	if (!ms || !ms->conns)
		return;
	msg = peers_message(n);
	rc = msg ? zl_frame_encode(msg, 0, &buf, &len) : -ENOMEM;
	json_object_put(msg);
	if (rc) {
		od_error("member.push_failed", "err=%s", od_q(strerror(-rc)));
		return;
	}
	/* Encoded once, queued to each; a connection closed on the way unlinks itself, so walk safely. */
	for (struct mem_conn *c = ms->conns, *next; c; c = next) {
		next = c->next;
		if (c->closing)
			continue;
		if (od_outbuf_append(&c->out, buf, len, OUT_LIMIT)) {
			od_error("member.too_slow", "node_id=%s", od_q(c->node_id));
			mconn_close(c);
			continue;
		}
		mconn_flush(c);
	}
	free(buf);
	od_debug("member.pushed", "epoch=%llu members=%zu", (unsigned long long)n->epoch, n->st.n_peers);
}

static struct mem_conn *find_conn(struct od_member_server *ms, const char *node_id)
{
	for (struct mem_conn *c = ms->conns; c; c = c->next) {
		if (!c->closing && strcmp(c->node_id, node_id) == 0)
			return c;
	}
	return NULL;
}

void od_member_server_evict(struct od_node *n, const char *node_id, const uint8_t key[ZL_KEY_LEN])
{
	struct mem_conn *c = n->members ? find_conn(n->members, node_id) : NULL;

	if (!c) {
		od_node_forget_device_peer(n, key);
		return;
	}
	mconn_finish(c, message("removed"), true);
}

size_t od_member_server_connected(const struct od_node *n)
{
	size_t k = 0;

	for (const struct mem_conn *c = n->members ? n->members->conns : NULL; c; c = c->next)
		k += !c->closing;
	return k;
}

static void handle_leave(struct mem_conn *c)
{
	struct od_node *n = c->ms->node;
	char e[ZL_ERR_LEN];
	long idx = -1;

	for (size_t i = 0; i < n->st.n_peers; i++) {
		if (strcmp(n->st.peers[i].node_id, c->node_id) == 0)
			idx = (long)i;
	}
	if (idx < 0 || od_node_remove_member(n, (size_t)idx, e, sizeof(e))) {
		json_object *m = message("error");

		if (m)
			json_object_object_add(m, "message", json_object_new_string(idx < 0 ? "not a member" : e));
		mconn_send(c, m);
		return;
	}
	od_info("member.removed", "node_id=%s by=leave", od_q(c->node_id));
	mconn_finish(c, message("left"), true);
	od_member_server_push(n);
}

/* A worker's dns_add {record}: the record is checked as the state file checks it; the owner is the
 * member that sent it, whatever the record says. */
static int member_dns_add(struct mem_conn *c, json_object *msg, json_object *res, char *e, size_t elen)
{
	struct zl_state_dns_record rec;
	char why[DNS_ERR_LEN - 64];
	json_object *r;
	bool created = false;
	int rc;

	if (!json_object_object_get_ex(msg, "record", &r) || !zl_state_dns_from_json(r, &rec, why, sizeof(why))) {
		snprintf(e, elen, "record: %s", json_object_object_get_ex(msg, "record", &r) ? why : "missing");
		return -EINVAL;
	}
	snprintf(rec.owner, sizeof(rec.owner), "%s", c->node_id);
	rc = od_registry_add(c->ms->node, &rec, &created, e, elen);
	if (!rc)
		od_registry_added_fields(res, &rec, created);
	return rc;
}

static const char *msg_str(json_object *msg, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(msg, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/* A worker's dns_remove {name, addr?} (normalized by the worker). */
static int member_dns_remove(struct mem_conn *c, json_object *msg, json_object *res, char *e, size_t elen)
{
	const char *name = msg_str(msg, "name"), *addr = msg_str(msg, "addr");
	size_t removed = 0;
	int rc;

	if (!name) {
		snprintf(e, elen, "missing argument 'name'");
		return -EINVAL;
	}
	rc = od_registry_remove(c->ms->node, name, addr, &removed, e, elen);
	if (!rc)
		od_registry_removed_fields(res, removed);
	return rc;
}

/* Carries out a forwarded registry change and answers {"type":"dns_result","ref":R,"ok":...}. The
 * registry pushes the new list first, so the worker has it before it answers its client. */
static void handle_dns(struct mem_conn *c, json_object *msg, bool add)
{
	json_object *ref, *res;
	char e[DNS_ERR_LEN] = "";
	int rc;

	if (!json_object_object_get_ex(msg, "ref", &ref) || !json_object_is_type(ref, json_type_int)) {
		od_info("member.bad_request", "node_id=%s type=%s reason=no_ref", od_q(c->node_id), add ? "dns_add" : "dns_remove");
		return;
	}
	res = message("dns_result");
	if (!res)
		return;
	json_object_object_add(res, "ref", json_object_get(ref));
	rc = add ? member_dns_add(c, msg, res, e, sizeof(e)) : member_dns_remove(c, msg, res, e, sizeof(e));
	json_object_object_add(res, "ok", json_object_new_boolean(rc == 0));
	if (rc) {
		json_object_object_add(res, "error", json_object_new_string(e));
		od_info("dns.refused", "node_id=%s err=%s", od_q(c->node_id), od_q(e));
	}
	if (c->src.fd >= 0 && !c->closing)
		mconn_send(c, res);
	else
		json_object_put(res);
}

/* Returns false when c was closed. */
static bool handle_member_msg(struct mem_conn *c, json_object *msg)
{
	const char *type = msg_type(msg);

	if (strcmp(type, "hello") == 0) {
		json_object *id;

		if (!json_object_object_get_ex(msg, "node_id", &id) || !json_object_is_type(id, json_type_string) ||
		    strcmp(json_object_get_string(id), c->node_id) != 0) {
			od_info("member.rejected", "source=%s reason=hello_mismatch", c->peer_text);
			mconn_close(c);
			return false;
		}
		if (!c->hello)
			od_info("member.connected", "node_id=%s", od_q(c->node_id));
		c->hello = true;
		od_timer_cancel(&c->ms->node->timers, &c->timer);
		return true;
	}
	if (strcmp(type, "leave") == 0) {
		handle_leave(c);
		return !c->closing && c->src.fd >= 0;
	}
	if (strcmp(type, "dns_add") == 0 || strcmp(type, "dns_remove") == 0) {
		handle_dns(c, msg, type[4] == 'a');
		return !c->closing && c->src.fd >= 0;
	}
	/* "ping" and types of later versions: nothing to do. */
	return true;
}

static void on_mconn(struct wg_loop_source *src, uint32_t events)
{
	struct mem_conn *c = wg_container_of(src, struct mem_conn, src);
	uint8_t buf[4096];

	if (events & EPOLLOUT) {
		mconn_flush(c);
		if (src->fd < 0)
			return;
	}
	if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
		return;
	for (int r = 0; r < READS_PER_EVENT; r++) {
		ssize_t got = recv(src->fd, buf, sizeof(buf), MSG_DONTWAIT);
		size_t off = 0;

		if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR)) {
			mconn_close(c);
			return;
		}
		if (got < 0 && errno != EINTR)
			return;
		if (got < 0 || c->closing)
			continue;    /* (closing: anything more from the member is ignored) */
		while (off < (size_t)got) {
			json_object *msg = NULL;
			size_t used = 0;
			int rc = zl_frame_decoder_feed(&c->dec, buf + off, (size_t)got - off, &used, &msg);
			bool alive;

			off += used;
			if (rc < 0) {
				od_info("member.bad_frame", "node_id=%s err=%s", od_q(c->node_id),
					od_q(zl_frame_decoder_error(&c->dec)));
				mconn_close(c);
				return;
			}
			if (rc == 0)
				continue;
			alive = handle_member_msg(c, msg);
			json_object_put(msg);
			if (!alive)
				return;
		}
	}
}

static void accept_member(struct od_member_server *ms, int fd, const struct sockaddr_storage *peer)
{
	struct od_node *n = ms->node;
	char text[OD_SOCKADDR_STRLEN];
	struct mem_conn *c, *old;
	struct zl_ip ip;
	long idx = -1;

	od_sockaddr_format((const struct sockaddr *)peer, text);
	if (od_sockaddr_ip((const struct sockaddr *)peer, &ip))
		idx = od_node_find_by_ip(n, &ip);
	if (idx < 0 || ms->n_conns >= n->st.n_peers + MAX_CONNS_SLACK || !(c = calloc(1, sizeof(*c)))) {
		od_info("member.rejected", "source=%s reason=%s", text, idx < 0 ? "not_a_member" : "limit");
		close(fd);
		return;
	}
	c->ms = ms;
	snprintf(c->node_id, sizeof(c->node_id), "%s", n->st.peers[idx].node_id);
	memcpy(c->public_key, n->st.peers[idx].public_key, ZL_KEY_LEN);
	memcpy(c->peer_text, text, sizeof(c->peer_text));
	zl_frame_decoder_init(&c->dec, OD_MEMBER_FRAME_MAX);
	od_timer_init(&c->timer, on_mconn_timer);
	/* One connection per member: a re-dial replaces a connection the worker has given up on. */
	old = find_conn(ms, c->node_id);
	if (old)
		mconn_close(old);
	if (wg_loop_add(n->loop, &c->src, fd, EPOLLIN, on_mconn)) {
		close(fd);
		mconn_free(c);
		return;
	}
	od_tcp_keepalive(fd, LEADER_KA_IDLE, LEADER_KA_INTVL, LEADER_KA_CNT);
	c->next = ms->conns;
	ms->conns = c;
	ms->n_conns++;
	od_timer_arm(&n->timers, &c->timer, HELLO_TIMEOUT_MS);
	mconn_send(c, peers_message(n));
}

static void on_member_accept(struct wg_loop_source *src, uint32_t events)
{
	struct od_member_server *ms = wg_container_of(src, struct od_member_server, src);

	for (int i = 0; i < 16; i++) {
		struct sockaddr_storage peer;
		socklen_t pl = sizeof(peer);
		int fd = accept4(src->fd, (struct sockaddr *)&peer, &pl, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0)
			return;
		accept_member(ms, fd, &peer);
	}
}

/* Bound to the overlay address AND device: a packet to that address arriving on the underlay (the
 * kernel would accept it there too) never reaches this socket, so the source check below really is
 * the WireGuard-authenticated source. */
static int member_socket(struct od_node *n, const struct zl_ip *bind_ip, uint16_t port, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t sl = od_sockaddr_make(bind_ip, port, &ss);
	int one = 1, fd = socket(bind_ip->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), rc;

	if (fd < 0)
		goto fail;
	if (setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, n->ifname, (socklen_t)strlen(n->ifname)) < 0)
		goto fail;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind_ip->family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_FREEBIND, &one, sizeof(one));
	else
		setsockopt(fd, IPPROTO_IP, IP_FREEBIND, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, sl) < 0)
		goto fail;
	return fd;
fail:
	rc = -errno;
	snprintf(err, errlen, "membership socket on %s: %s", n->st.config.node_ip, strerror(errno));
	if (fd >= 0)
		close(fd);
	return rc;
}

int od_member_server_open(struct od_node *n, char *err, size_t errlen)
{
	struct od_member_server *ms = calloc(1, sizeof(*ms));
	uint16_t port = (uint16_t)(n->st.config.port + 1);
	int fd, rc;

	if (!ms)
		return -ENOMEM;
	if (n->st.config.port == 65535) {
		snprintf(err, errlen, "the membership port (listen_port + 1) does not exist for port 65535");
		free(ms);
		return -EINVAL;
	}
	ms->node = n;
	ms->src.fd = -1;
	fd = member_socket(n, &n->node_ip, port, err, errlen);
	if (fd >= 0 && listen(fd, 128) < 0) {
		int e = errno;   /* close() may change errno */

		snprintf(err, errlen, "membership listen: %s", strerror(e));
		close(fd);
		fd = -e;
	}
	if (fd < 0) {
		free(ms);
		return fd;
	}
	if ((rc = od_loop_watch(n->loop, &ms->src, fd, on_member_accept, err, errlen))) {
		free(ms);
		return rc;
	}
	n->members = ms;
	n->epoch = (uint64_t)time(NULL);   /* keeps growing across restarts (informational) */
	od_info("member.listening", "address=%s port=%u", n->st.config.node_ip, port);
	return 0;
}

void od_member_server_close(struct od_node *n)
{
	struct od_member_server *ms = n->members;

	if (!ms)
		return;
	while (ms->conns) {
		struct mem_conn *c = ms->conns;

		ms->conns = c->next;
		od_timer_cancel(&n->timers, &c->timer);
		od_loop_close(n->loop, &c->src);
		mconn_free(c);
	}
	od_loop_close(n->loop, &ms->src);
	free(ms);
	n->members = NULL;
}

/* ============================================================ worker */

enum client_state { CLIENT_IDLE, CLIENT_CONNECTING, CLIENT_CONNECTED };

/* A control request carried out by the leader (dns_add, dns_remove): answered when its dns_result
 * comes back with the same ref. */
struct forward {
	struct od_member_client *mc;
	bool used;
	uint64_t ref;
	uint64_t conn, req;              /* the control connection and request to answer */
	char type[16];
	struct od_timer timer;
};

struct od_member_client {
	struct od_node *node;
	struct wg_loop_source src;
	enum client_state state;
	struct od_timer timer;           /* re-dial, or connect timeout */
	unsigned attempt;
	bool was_connected;              /* for logging transitions only */
	struct zl_frame_decoder dec;
	struct od_outbuf out;

	bool leaving;
	uint64_t leave_conn, leave_req;
	struct od_timer leave_timer;

	/* Membership check: a short TCP exchange with the leader's join port over the underlay. */
	struct wg_loop_source check_src;
	struct od_timer check_timer;     /* next check, or the deadline of the one in flight */
	struct od_mcheck_session check;
	uint8_t check_in[OD_MCHECK_STATUS_LEN];
	size_t check_have;
	bool check_sent;

	struct forward forwards[OD_MEMBER_MAX_FORWARDS];
	uint64_t next_ref;
};

static void check_abort(struct od_member_client *mc);
static void check_schedule(struct od_member_client *mc, uint32_t delay_ms);

static void client_dial(struct od_member_client *mc);
static void leave_done(struct od_member_client *mc, const char *error);
static void forwards_fail(struct od_member_client *mc, const char *why);

static void client_disconnect(struct od_member_client *mc)
{
	struct od_node *n = mc->node;

	/* What went out on this connection may or may not have been carried out: say so now rather
	 * than let the clients wait for an answer that cannot come. */
	forwards_fail(mc, "the connection to the leader was lost before it answered; the change may or may not "
			  "have been made (check with dns list)");

	if (mc->src.fd >= 0) {
		int fd = mc->src.fd;

		wg_loop_del(n->loop, &mc->src);
		close(fd);
	}
	mc->state = CLIENT_IDLE;
	zl_frame_decoder_free(&mc->dec);
	od_outbuf_free(&mc->out);
}

static void client_retry(struct od_member_client *mc, const char *why)
{
	uint32_t delay;

	if (mc->state == CLIENT_CONNECTED || mc->was_connected)
		od_info("member.leader_lost", "reason=%s", od_q(why));
	else
		od_debug("member.dial_failed", "attempt=%u reason=%s", mc->attempt, od_q(why));
	mc->was_connected = false;
	client_disconnect(mc);
	check_schedule(mc, CHECK_FIRST_MS);
	delay = zl_backoff_delay_ms(NULL, mc->attempt, randombytes_random());
	if (mc->attempt < 32)
		mc->attempt++;
	od_timer_arm(&mc->node->timers, &mc->timer, delay);
}

/* The node was removed (or left): it deletes its state and the daemon exits. */
static void client_retire(struct od_member_client *mc, const char *why)
{
	struct od_node *n = mc->node;

	od_info("node.retired", "reason=%s", od_q(why));
	/* A pending leave has what it asked for, whichever way the leader said it. */
	leave_done(mc, NULL);
	client_disconnect(mc);
	check_abort(mc);
	od_timer_cancel(&n->timers, &mc->check_timer);
	od_timer_cancel(&n->timers, &mc->timer);
	n->retired = true;
	od_node_shutdown(n, 0);
}

static void leave_done(struct od_member_client *mc, const char *error)
{
	json_object *body, *resp;

	if (!mc->leaving)
		return;
	mc->leaving = false;
	od_timer_cancel(&mc->node->timers, &mc->leave_timer);
	resp = error ? zl_frame_response_err(mc->leave_req, error) : zl_frame_response_ok(mc->leave_req, &body);
	od_control_reply(mc->node, mc->leave_conn, resp);
}

static void on_leave_timeout(struct od_timer *t)
{
	struct od_member_client *mc = wg_container_of(t, struct od_member_client, leave_timer);

	leave_done(mc, mc->state == CLIENT_CONNECTED
			       ? "leave: the leader did not confirm within 10 s; still a member"
			       : "leave: the leader could not be reached within 10 s; still a member");
}

static bool is_self(const struct od_node *n, const struct zl_state_peer *p)
{
	return strcmp(p->node_id, n->st.config.node_id) == 0 ||
	       memcmp(p->public_key, n->st.config.public_key, ZL_KEY_LEN) == 0;
}

/* ---- forwarded registry changes (worker side) */

static void forward_answer(struct forward *f, json_object *resp)
{
	struct od_node *n = f->mc->node;

	f->used = false;
	od_timer_cancel(&n->timers, &f->timer);
	od_control_reply(n, f->conn, resp);
}

/* "<type>: <text>", with control characters from the leader's text replaced (it reaches a terminal). */
static void forward_error(struct forward *f, const char *text)
{
	char msg[DNS_ERR_LEN + 32];

	snprintf(msg, sizeof(msg), "%s: %s", f->type, text);
	for (char *p = msg; *p; p++) {
		if ((unsigned char)*p < ' ' || *p == 0x7f)
			*p = '?';
	}
	forward_answer(f, zl_frame_response_err(f->req, msg));
}

static void forwards_fail(struct od_member_client *mc, const char *why)
{
	for (size_t i = 0; i < OD_MEMBER_MAX_FORWARDS; i++) {
		if (mc->forwards[i].used)
			forward_error(&mc->forwards[i], why);
	}
}

static void on_forward_timeout(struct od_timer *t)
{
	struct forward *f = wg_container_of(t, struct forward, timer);

	forward_error(f, "the leader did not answer within 10 s; the change may or may not have been made "
			 "(check with dns list)");
}

/* {"type":"dns_result","ref":R,"ok":true,...fields} or {...,"ok":false,"error":"..."}: the fields are
 * the client's answer as the leader would have given it. */
static void forward_result(struct od_member_client *mc, json_object *msg)
{
	json_object *ref, *ok, *body, *resp;
	struct forward *f = NULL;
	const char *error;

	if (!json_object_object_get_ex(msg, "ref", &ref) || !json_object_is_type(ref, json_type_int))
		return;
	for (size_t i = 0; i < OD_MEMBER_MAX_FORWARDS && !f; i++) {
		if (mc->forwards[i].used && mc->forwards[i].ref == (uint64_t)json_object_get_int64(ref))
			f = &mc->forwards[i];
	}
	if (!f)
		return;   /* answered already (timed out) */
	if (!json_object_object_get_ex(msg, "ok", &ok) || !json_object_get_boolean(ok)) {
		error = msg_str(msg, "error");
		forward_error(f, error ? error : "refused by the leader (no reason given)");
		return;
	}
	resp = zl_frame_response_ok(f->req, &body);
	json_object_object_foreach(msg, key, val) {
		if (resp && strcmp(key, "type") && strcmp(key, "ref") && strcmp(key, "ok"))
			json_object_object_add(body, key, json_object_get(val));
	}
	forward_answer(f, resp);
}

/* The service records of a peers frame. A frame without "dns" (a leader that predates them) leaves
 * the list as it is. */
static void apply_dns(struct od_node *n, json_object *msg)
{
	char e[DNS_ERR_LEN];
	json_object *dns;
	int rc;

	if (!json_object_object_get_ex(msg, "dns", &dns))
		return;
	rc = od_registry_apply(n, dns, e, sizeof(e));
	if (rc < 0)
		od_error("member.bad_dns", "err=%s", od_q(e));
	else if (rc > 0)
		od_info("member.dns_applied", "records=%zu", n->st.n_dns);
}

/* A complete list from the leader: this node must be in it (else it was removed), the rest become
 * the peer set, in the leader's order (the leader first). */
static void apply_list(struct od_member_client *mc, json_object *msg)
{
	struct od_node *n = mc->node;
	json_object *arr;
	struct zl_state_peer *peers;
	char e[ZL_ERR_LEN];
	size_t np = 0, len;
	bool self_seen = false;
	int rc;

	if (!json_object_object_get_ex(msg, "peers", &arr) || !json_object_is_type(arr, json_type_array) ||
	    (len = json_object_array_length(arr)) == 0 || len > ZL_JOIN_MAX_PEERS) {
		od_error("member.bad_list", "err=%s", od_q("peers: missing, empty or too long"));
		return;
	}
	peers = calloc(len, sizeof(*peers));
	if (!peers)
		return;
	for (size_t i = 0; i < len; i++) {
		struct zl_state_peer p;

		if (!od_node_peer_from_json(json_object_array_get_idx(arr, i), &p, e, sizeof(e))) {
			od_error("member.bad_list", "index=%zu err=%s", i, od_q(e));
			free(peers);
			return;
		}
		if (is_self(n, &p))
			self_seen = true;
		else
			peers[np++] = p;
	}
	if (!self_seen) {
		free(peers);
		client_retire(mc, "not in the leader's member list: removed");
		return;
	}
	rc = od_node_set_peers(n, peers, np, e, sizeof(e));
	if (rc < 0)
		od_error("member.bad_list", "err=%s", od_q(e));
	else if (rc > 0)
		od_info("member.list_applied", "peers=%zu", np);
	apply_dns(n, msg);
	mc->attempt = 0;
}

/* Returns false when the connection is gone. */
static bool handle_leader_msg(struct od_member_client *mc, json_object *msg)
{
	const char *type = msg_type(msg);

	if (strcmp(type, "peers") == 0) {
		apply_list(mc, msg);
		return mc->state == CLIENT_CONNECTED;
	}
	if (strcmp(type, "dns_result") == 0) {
		forward_result(mc, msg);
		return mc->state == CLIENT_CONNECTED;
	}
	if (strcmp(type, "left") == 0 || strcmp(type, "removed") == 0) {
		bool left = type[0] == 'l';

		leave_done(mc, NULL);
		client_retire(mc, left ? "left the cluster" : "removed by the leader");
		return false;
	}
	if (strcmp(type, "error") == 0) {
		json_object *m;
		char text[300];

		snprintf(text, sizeof(text), "leave: refused by the leader: %s",
			 json_object_object_get_ex(msg, "message", &m) && json_object_is_type(m, json_type_string)
				 ? json_object_get_string(m) : "(no reason)");
		leave_done(mc, text);
	}
	return true;
}

static void client_read(struct od_member_client *mc)
{
	uint8_t buf[READ_CHUNK];

	for (int r = 0; r < READS_PER_EVENT; r++) {
		ssize_t got = recv(mc->src.fd, buf, sizeof(buf), MSG_DONTWAIT);
		size_t off = 0;

		if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR)) {
			client_retry(mc, got == 0 ? "closed by the leader" : strerror(errno));
			return;
		}
		if (got < 0)
			return;
		while (off < (size_t)got) {
			json_object *msg = NULL;
			size_t used = 0;
			int rc = zl_frame_decoder_feed(&mc->dec, buf + off, (size_t)got - off, &used, &msg);
			bool alive;

			off += used;
			if (rc < 0) {
				client_retry(mc, zl_frame_decoder_error(&mc->dec));
				return;
			}
			if (rc == 0)
				continue;
			alive = handle_leader_msg(mc, msg);
			json_object_put(msg);
			if (!alive)
				return;
		}
	}
}

static void client_send(struct od_member_client *mc, json_object *obj)
{
	int rc = queue_obj(&mc->out, obj, 0);

	if (!rc)
		rc = od_outbuf_flush(&mc->out, mc->src.fd);
	if (rc < 0) {
		client_retry(mc, strerror(-rc));
		return;
	}
	wg_loop_mod(mc->node->loop, &mc->src, EPOLLIN | (rc == 1 ? EPOLLOUT : 0));
}

static void client_connected(struct od_member_client *mc)
{
	json_object *hello = message("hello");

	od_timer_cancel(&mc->node->timers, &mc->timer);
	check_abort(mc);
	od_timer_cancel(&mc->node->timers, &mc->check_timer);
	mc->state = CLIENT_CONNECTED;
	mc->was_connected = true;
	zl_frame_decoder_init(&mc->dec, 0);
	od_info("member.leader_connected", "leader=%s", od_q(od_node_leader(mc->node)->overlay_ip));
	if (hello)
		json_object_object_add(hello, "node_id", json_object_new_string(mc->node->st.config.node_id));
	client_send(mc, hello);
	/* A leave sent on the previous connection may never have reached the leader (a restarted leader
	 * answers it with a reset): send it again. It cannot act twice: a leader that already removed
	 * this node refuses the new connection (not a member). */
	if (mc->leaving && mc->state == CLIENT_CONNECTED)
		client_send(mc, message("leave"));
}

static void on_client(struct wg_loop_source *src, uint32_t events)
{
	struct od_member_client *mc = wg_container_of(src, struct od_member_client, src);

	if (mc->state == CLIENT_CONNECTING) {
		int soerr = 0;
		socklen_t sl = sizeof(soerr);

		if (getsockopt(src->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
			soerr = errno;
		if (soerr) {
			client_retry(mc, strerror(soerr));
			return;
		}
		client_connected(mc);
		return;
	}
	if (events & EPOLLOUT) {
		int rc = od_outbuf_flush(&mc->out, src->fd);

		if (rc < 0) {
			client_retry(mc, strerror(-rc));
			return;
		}
		wg_loop_mod(mc->node->loop, src, EPOLLIN | (rc == 1 ? EPOLLOUT : 0));
	}
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
		client_read(mc);
}

static uint16_t leader_port(const struct od_node *n, const struct zl_state_peer *leader)
{
	char host[ZL_ENDPOINT_HOST_MAX + 1];
	uint16_t port = 0;

	/* The leader advertises its WireGuard listen port in its endpoint; without one, ours is the best
	 * guess (the default is the same everywhere). */
	if (!leader->endpoint[0] || !zl_endpoint_parse(leader->endpoint, host, &port))
		port = n->st.config.port;
	return port;
}

static void client_dial(struct od_member_client *mc)
{
	struct od_node *n = mc->node;
	const struct zl_state_peer *leader = od_node_leader(n);
	struct sockaddr_storage ss;
	struct zl_ip ip;
	char e[ZL_ERR_LEN];
	uint16_t port;
	socklen_t sl;
	int fd, rc;

	if (!leader || zl_ip_parse(leader->overlay_ip, &ip, e, sizeof(e))) {
		od_error("member.no_leader", "err=%s", od_q(leader ? e : "no peers in state"));
		return;
	}
	port = leader_port(n, leader);
	if (port == 65535) {
		od_error("member.no_leader", "err=%s", od_q("leader port 65535 has no membership port"));
		return;
	}
	/* From our own overlay address, through the tunnel only (see member_socket). */
	fd = member_socket(n, &n->node_ip, 0, e, sizeof(e));
	if (fd < 0) {
		client_retry(mc, e);
		return;
	}
	od_tcp_keepalive(fd, WORKER_KA_IDLE, WORKER_KA_INTVL, WORKER_KA_CNT);
	sl = od_sockaddr_make(&ip, (uint16_t)(port + 1), &ss);
	rc = connect(fd, (struct sockaddr *)&ss, sl);
	if (rc < 0 && errno != EINPROGRESS) {
		rc = errno;
		close(fd);
		client_retry(mc, strerror(rc));
		return;
	}
	if (wg_loop_add(n->loop, &mc->src, fd, EPOLLOUT | EPOLLIN, on_client)) {
		close(fd);
		client_retry(mc, "event loop");
		return;
	}
	mc->state = CLIENT_CONNECTING;
	od_timer_arm(&n->timers, &mc->timer, OD_MEMBER_CONNECT_TIMEOUT_MS);
}

static void on_client_timer(struct od_timer *t)
{
	struct od_member_client *mc = wg_container_of(t, struct od_member_client, timer);

	if (mc->state == CLIENT_CONNECTING)
		client_retry(mc, "connect timeout");
	else if (mc->state == CLIENT_IDLE)
		client_dial(mc);
}

/* ---- membership check (worker side) */

static void check_abort(struct od_member_client *mc)
{
	if (mc->check_src.fd >= 0) {
		int fd = mc->check_src.fd;

		wg_loop_del(mc->node->loop, &mc->check_src);
		close(fd);
	}
	od_mcheck_session_wipe(&mc->check);
	mc->check_have = 0;
	mc->check_sent = false;
}

/* Arms the next check unless one is due or running (re-dials must not keep postponing it). */
static void check_schedule(struct od_member_client *mc, uint32_t delay_ms)
{
	if (mc->check_src.fd < 0 && !mc->check_timer.armed)
		od_timer_arm(&mc->node->timers, &mc->check_timer, delay_ms);
}

static void check_done(struct od_member_client *mc, const char *why)
{
	if (why)
		od_debug("member_check.failed", "reason=%s", od_q(why));
	check_abort(mc);
	od_timer_cancel(&mc->node->timers, &mc->check_timer);
	if (mc->state != CLIENT_CONNECTED)
		check_schedule(mc, CHECK_INTERVAL_MS);
}

static void check_answer(struct od_member_client *mc)
{
	int status = od_mcheck_status_open(&mc->check, mc->check_in, mc->check_have);

	if (status == OD_MCHECK_NOT_MEMBER) {
		check_abort(mc);
		client_retire(mc, "the leader says this node is no longer a member: removed");
		return;
	}
	if (status == OD_MCHECK_MEMBER)
		od_debug("member_check.member", "leader=%s", od_q(od_node_leader(mc->node)->overlay_ip));
	check_done(mc, status ? NULL : "answer not authentic");
}

static void on_check(struct wg_loop_source *src, uint32_t events)
{
	struct od_member_client *mc = wg_container_of(src, struct od_member_client, check_src);
	uint8_t req[OD_MCHECK_REQUEST_LEN];
	const struct zl_state_peer *leader = od_node_leader(mc->node);

	if (!mc->check_sent) {
		int soerr = 0;
		socklen_t sl = sizeof(soerr);
		ssize_t w;

		if (getsockopt(src->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
			soerr = errno;
		if (soerr) {
			check_done(mc, strerror(soerr));
			return;
		}
		if (!od_mcheck_request_build(&mc->check, mc->node->st.config.private_key,
					     mc->node->st.config.public_key, leader->public_key, req)) {
			check_done(mc, "unusable key");
			return;
		}
		/* 104 bytes on a fresh connection: written whole or not at all. */
		w = send(src->fd, req, sizeof(req), MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w != (ssize_t)sizeof(req)) {
			check_done(mc, "send");
			return;
		}
		mc->check_sent = true;
		wg_loop_mod(mc->node->loop, src, EPOLLIN);
		return;
	}
	while (mc->check_have < sizeof(mc->check_in)) {
		ssize_t got = recv(src->fd, mc->check_in + mc->check_have, sizeof(mc->check_in) - mc->check_have,
				   MSG_DONTWAIT);

		if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR)) {
			check_done(mc, got == 0 ? "closed by the leader" : strerror(errno));
			return;
		}
		if (got < 0)
			return;
		mc->check_have += (size_t)got;
	}
	check_answer(mc);
}

/* Connects to the leader's join port at its recorded underlay endpoint. */
static void check_start(struct od_member_client *mc)
{
	struct od_node *n = mc->node;
	const struct zl_state_peer *leader = od_node_leader(n);
	char host[ZL_ENDPOINT_HOST_MAX + 1], e[ZL_ERR_LEN];
	struct sockaddr_storage ss;
	struct zl_ip ip;
	uint16_t port = 0;
	socklen_t sl;
	int fd;

	if (!leader || !leader->endpoint[0] || !zl_endpoint_parse(leader->endpoint, host, &port) ||
	    zl_ip_parse(host, &ip, e, sizeof(e))) {
		check_done(mc, "no usable leader endpoint (an IP address and port)");
		return;
	}
	sl = od_sockaddr_make(&ip, port, &ss);
	fd = socket(ip.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || (connect(fd, (struct sockaddr *)&ss, sl) < 0 && errno != EINPROGRESS)) {
		int rc = errno;

		if (fd >= 0)
			close(fd);
		check_done(mc, strerror(rc));
		return;
	}
	if (wg_loop_add(n->loop, &mc->check_src, fd, EPOLLOUT | EPOLLIN, on_check)) {
		close(fd);
		check_done(mc, "event loop");
		return;
	}
	od_debug("member_check.started", "leader=%s", od_q(leader->endpoint));
	od_timer_arm(&n->timers, &mc->check_timer, CHECK_TIMEOUT_MS);
}

static void on_check_timer(struct od_timer *t)
{
	struct od_member_client *mc = wg_container_of(t, struct od_member_client, check_timer);

	if (mc->check_src.fd >= 0)
		check_done(mc, "timeout");
	else if (mc->state != CLIENT_CONNECTED)
		check_start(mc);
}

int od_member_client_open(struct od_node *n, char *err, size_t errlen)
{
	struct od_member_client *mc = calloc(1, sizeof(*mc));

	if (!mc)
		return -ENOMEM;
	if (!od_node_leader(n)) {
		snprintf(err, errlen, "this worker's state lists no peer: the leader must be its first peer");
		free(mc);
		return -EINVAL;
	}
	mc->node = n;
	mc->src.fd = -1;
	mc->check_src.fd = -1;
	od_timer_init(&mc->timer, on_client_timer);
	od_timer_init(&mc->leave_timer, on_leave_timeout);
	od_timer_init(&mc->check_timer, on_check_timer);
	for (size_t i = 0; i < OD_MEMBER_MAX_FORWARDS; i++) {
		mc->forwards[i].mc = mc;
		od_timer_init(&mc->forwards[i].timer, on_forward_timeout);
	}
	n->client = mc;
	/* A node removed while its daemon was down learns it only from the check. */
	check_schedule(mc, CHECK_FIRST_MS);
	client_dial(mc);
	return 0;
}

void od_member_client_close(struct od_node *n)
{
	struct od_member_client *mc = n->client;

	if (!mc)
		return;
	leave_done(mc, "leave: the daemon is stopping");
	forwards_fail(mc, "the daemon is stopping");
	od_timer_cancel(&n->timers, &mc->timer);
	od_timer_cancel(&n->timers, &mc->leave_timer);
	od_timer_cancel(&n->timers, &mc->check_timer);
	check_abort(mc);
	client_disconnect(mc);
	free(mc);
	n->client = NULL;
}

bool od_member_client_connected(const struct od_node *n)
{
	return n->client && n->client->state == CLIENT_CONNECTED;
}

int od_member_client_leave(struct od_node *n, uint64_t conn_serial, uint64_t request_id, char *err, size_t errlen)
{
	struct od_member_client *mc = n->client;

	if (!mc) {
		snprintf(err, errlen, "not a worker");
		return -ENOTCONN;
	}
	if (mc->leaving) {
		snprintf(err, errlen, "a leave is already in progress");
		return -EALREADY;
	}
	mc->leaving = true;
	mc->leave_conn = conn_serial;
	mc->leave_req = request_id;
	od_timer_arm(&n->timers, &mc->leave_timer, OD_MEMBER_LEAVE_TIMEOUT_MS);
	od_info("node.leaving", "leader=%s connected=%s", od_q(od_node_leader(n)->overlay_ip),
		mc->state == CLIENT_CONNECTED ? "true" : "false");
	/* Not connected (yet): the leave goes out as soon as the connection is (re)established
	 * (client_connected), within the same 10 s. */
	if (mc->state == CLIENT_CONNECTED)
		client_send(mc, message("leave"));
	return 0;
}

int od_member_client_forward(struct od_node *n, json_object *msg, uint64_t conn_serial, uint64_t request_id,
			     char *err, size_t errlen)
{
	struct od_member_client *mc = n->client;
	struct forward *f = NULL;
	const char *type = msg_type(msg);

	for (size_t i = 0; mc && i < OD_MEMBER_MAX_FORWARDS && !f; i++) {
		if (!mc->forwards[i].used)
			f = &mc->forwards[i];
	}
	if (!mc || mc->state != CLIENT_CONNECTED || !f) {
		json_object_put(msg);
		snprintf(err, errlen, !mc ? "not a worker"
				   : mc->state != CLIENT_CONNECTED ? "leader not reachable (no membership connection); try again"
								   : "too many changes waiting for the leader; try again");
		return !mc || mc->state != CLIENT_CONNECTED ? -ENOTCONN : -EBUSY;
	}
	f->used = true;
	f->ref = ++mc->next_ref;
	f->conn = conn_serial;
	f->req = request_id;
	snprintf(f->type, sizeof(f->type), "%s", type);
	json_object_object_add(msg, "ref", json_object_new_uint64(f->ref));
	od_timer_arm(&n->timers, &f->timer, OD_MEMBER_FORWARD_TIMEOUT_MS);
	/* A send that fails drops the connection, which answers this request too (forwards_fail). */
	client_send(mc, msg);
	return 0;
}
