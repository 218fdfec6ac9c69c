/* The leader's join endpoint: see join_server.h. */
#include "overlayd/join_server.h"

#include <errno.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "overlay/join_proto.h"
#include "overlayd/log.h"
#include "overlayd/member_check.h"
#include "overlayd/membership.h"
#include "overlayd/net.h"

struct join_conn {
	struct od_join_server *js;
	struct wg_loop_source src;
	struct od_timer deadline;
	uint8_t in[ZL_JOIN_MAX_REQUEST];
	size_t have, need;               /* need: the header, then the whole message */
	struct od_outbuf out;
	bool answered;                   /* everything left is writing out */
	bool check;                      /* a membership check (member_check.h), not a join */
	struct sockaddr_storage peer, local;
	char peer_text[OD_SOCKADDR_STRLEN];
	struct join_conn *next;
};

struct od_join_server {
	struct od_node *node;
	struct wg_loop_source src;       /* the listening socket */
	struct join_conn *conns;
	size_t n_conns;
};

/* ---- connections */

static void conn_free(void *obj)
{
	struct join_conn *c = obj;

	od_outbuf_free(&c->out);
	sodium_memzero(c->in, sizeof(c->in));   /* held the token secret */
	free(c);
}

static void conn_close(struct join_conn *c)
{
	struct od_join_server *js = c->js;

	for (struct join_conn **pp = &js->conns; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			js->n_conns--;
			break;
		}
	}
	od_timer_cancel(&js->node->timers, &c->deadline);
	od_loop_close(js->node->loop, &c->src);
	od_timers_defer(&js->node->timers, conn_free, c);
}

static void on_deadline(struct od_timer *t)
{
	struct join_conn *c = wg_container_of(t, struct join_conn, deadline);

	od_info("join.timeout", "source=%s", c->peer_text);
	conn_close(c);
}

/* Queues the answer; the connection closes once it is written. */
static void conn_answer(struct join_conn *c, const uint8_t *msg, size_t len)
{
	int rc = od_outbuf_append(&c->out, msg, len, ZL_JOIN_MAX_RESPONSE);

	c->answered = true;
	if (!rc)
		rc = od_outbuf_flush(&c->out, c->src.fd);
	if (rc <= 0) {
		conn_close(c);
		return;
	}
	wg_loop_mod(c->js->node->loop, &c->src, EPOLLOUT);
}

static void send_refusal(struct join_conn *c, enum zl_join_status code)
{
	uint8_t msg[ZL_JOIN_REFUSAL_LEN];

	conn_answer(c, msg, zl_join_refusal_build(code, msg));
}

/* ---- the answer */

static void fill_peer(struct zl_join_peer *jp, const struct zl_state_peer *p)
{
	memset(jp, 0, sizeof(*jp));
	snprintf(jp->node_id, sizeof(jp->node_id), "%s", p->node_id);
	snprintf(jp->hostname, sizeof(jp->hostname), "%s", p->hostname);
	memcpy(jp->public_key, p->public_key, ZL_JOIN_KEY_LEN);
	snprintf(jp->endpoint, sizeof(jp->endpoint), "%s", p->endpoint);
	snprintf(jp->overlay_ip, sizeof(jp->overlay_ip), "%s", p->overlay_ip);
	snprintf(jp->slice, sizeof(jp->slice), "%s", p->slice_cidr);
}

/* The leader's own entry: its advertised endpoint, else the address this worker reached it at. */
static void leader_entry(struct join_conn *c, struct zl_join_peer *jp)
{
	struct od_node *n = c->js->node;
	struct zl_state_peer self;
	struct sockaddr_storage ss;
	struct zl_ip ip;

	od_node_self_entry(n, &self);
	if (!self.endpoint[0] && od_sockaddr_ip((struct sockaddr *)&c->local, &ip) &&
	    !(ip.family == AF_INET6 && ip.addr[0] == 0xfe && (ip.addr[1] & 0xc0) == 0x80)) {
		od_sockaddr_make(&ip, n->st.config.port, &ss);
		od_sockaddr_format((struct sockaddr *)&ss, self.endpoint);
		if (!zl_endpoint_check(self.endpoint))
			self.endpoint[0] = '\0';
	}
	fill_peer(jp, &self);
}

/* The success answer for the member just added (the last of st.peers): every other member, the
 * leader first. */
static bool build_success(struct join_conn *c, struct zl_join_response *r)
{
	struct od_node *n = c->js->node;
	const struct zl_state_peer *me = &n->st.peers[n->st.n_peers - 1];

	memset(r, 0, sizeof(*r));
	r->code = ZL_JOIN_OK;
	r->authenticated = true;
	snprintf(r->node_id, sizeof(r->node_id), "%s", me->node_id);
	snprintf(r->overlay_ip, sizeof(r->overlay_ip), "%s", me->overlay_ip);
	snprintf(r->slice, sizeof(r->slice), "%s", me->slice_cidr);
	snprintf(r->cluster_cidr, sizeof(r->cluster_cidr), "%s", n->st.config.cidr);
	snprintf(r->leader_overlay_ip, sizeof(r->leader_overlay_ip), "%s", n->st.config.node_ip);
	r->peers = calloc(n->st.n_peers, sizeof(*r->peers));
	if (!r->peers)
		return false;
	leader_entry(c, &r->peers[0]);
	for (size_t i = 0; i + 1 < n->st.n_peers; i++)
		fill_peer(&r->peers[i + 1], &n->st.peers[i]);
	r->n_peers = n->st.n_peers;
	return true;
}

static enum zl_join_status verify_token(struct od_node *n, const struct zl_join_request *req, uint64_t now,
					size_t *idx)
{
	struct zl_token_record *recs = n->st.n_tokens ? calloc(n->st.n_tokens, sizeof(*recs)) : NULL;
	enum zl_token_status ts;

	if (n->st.n_tokens && !recs)
		return ZL_JOIN_ERR_INTERNAL;
	for (size_t i = 0; i < n->st.n_tokens; i++)
		od_token_from_state(&n->st.tokens[i], &recs[i]);
	ts = zl_token_verify_table(recs, n->st.n_tokens, req->token_id, req->token_secret, now, idx);
	free(recs);
	return zl_join_status_from_token(ts);
}

static void log_refusal(struct join_conn *c, enum zl_join_status st, const char *detail)
{
	const char *code = zl_join_code_name(st);

	/* Local outcomes (authentication failed, bad key, too large) go out as "unreadable"/"malformed"
	 * (zl_join_refusal_build); the log keeps the precise reason. */
	if (!code)
		code = st == ZL_JOIN_ERR_TOO_LARGE ? "malformed" : "unreadable";
	od_info("join.refused", "source=%s code=%s reason=%s%s%s", c->peer_text, code, od_q(zl_join_strerror(st)),
		detail && *detail ? " detail=" : "", detail && *detail ? od_q(detail) : "");
}

/* Undo of an admission whose answer could not be built (a bug the leader-side checks caught). */
static void unadmit(struct od_node *n)
{
	uint8_t key[ZL_KEY_LEN];
	char e[ZL_ERR_LEN];

	memcpy(key, n->st.peers[n->st.n_peers - 1].public_key, ZL_KEY_LEN);
	if (od_node_remove_member(n, n->st.n_peers - 1, e, sizeof(e)))
		od_error("join.undo_failed", "err=%s", od_q(e));
	else
		od_node_forget_device_peer(n, key);
}

static void process_request(struct join_conn *c)
{
	struct od_node *n = c->js->node;
	struct zl_join_leader_session ls;
	struct zl_join_request req;
	struct zl_join_response resp;
	uint64_t now = (uint64_t)time(NULL);
	enum zl_join_status st;
	char detail[ZL_ERR_LEN] = "";
	uint8_t *msg = NULL;
	size_t len = 0, idx = 0;
	bool admitted = false;
	struct zl_ip src;

	st = zl_join_request_open(&ls, n->st.config.private_key, c->in, c->have, now, &req);
	sodium_memzero(c->in, sizeof(c->in));
	if (st == ZL_JOIN_OK)
		st = verify_token(n, &req, now, &idx);
	if (st != ZL_JOIN_OK && !ls.can_reply) {
		zl_join_leader_session_wipe(&ls);
		sodium_memzero(&req, sizeof(req));
		log_refusal(c, st, NULL);
		send_refusal(c, st);
		return;
	}
	if (st == ZL_JOIN_OK) {
		od_sockaddr_ip((struct sockaddr *)&c->peer, &src);
		st = od_node_admit(n, &req, idx, &src, detail, sizeof(detail));
		admitted = st == ZL_JOIN_OK;
	}
	sodium_memzero(&req, sizeof(req));
	memset(&resp, 0, sizeof(resp));
	if (admitted && !build_success(c, &resp)) {
		unadmit(n);
		admitted = false;
		st = ZL_JOIN_ERR_INTERNAL;
	}
	if (!admitted) {
		resp.code = st;
		resp.authenticated = true;
		snprintf(resp.message, sizeof(resp.message), "%s", zl_join_strerror(st));
	}
	st = zl_join_response_build(&ls, &resp, &msg, &len);   /* wipes the session */
	if (st != ZL_JOIN_OK) {
		od_error("join.answer_failed", "source=%s err=%s", c->peer_text, od_q(zl_join_strerror(st)));
		if (admitted)
			unadmit(n);
		free(resp.peers);
		send_refusal(c, ZL_JOIN_ERR_INTERNAL);
		return;
	}
	if (admitted) {
		const struct zl_state_peer *p = &n->st.peers[n->st.n_peers - 1];

		od_info("join.accepted", "node_id=%s overlay_ip=%s slice=%s hostname=%s endpoint=%s source=%s",
			od_q(p->node_id), p->overlay_ip, p->slice_cidr, od_q(p->hostname[0] ? p->hostname : "-"),
			od_q(p->endpoint[0] ? p->endpoint : "-"), c->peer_text);
	} else {
		log_refusal(c, resp.code, detail);
	}
	free(resp.peers);
	conn_answer(c, msg, len);
	free(msg);
	if (admitted)
		od_member_server_push(n);
}

/* A membership check (member_check.h): answers whether the asking key is a member. A check that does
 * not verify gets no answer (the connection is closed): nobody but the key's holder learns anything. */
static void process_check(struct join_conn *c)
{
	struct od_node *n = c->js->node;
	struct od_mcheck_session s;
	uint8_t key[OD_MCHECK_KEY_LEN], out[OD_MCHECK_STATUS_LEN];
	const char *node_id = NULL;

	if (!od_mcheck_request_open(&s, n->st.config.private_key, n->st.config.public_key, c->in, c->have, key)) {
		od_info("member_check.rejected", "source=%s", c->peer_text);
		conn_close(c);
		return;
	}
	for (size_t i = 0; i < n->st.n_peers && !node_id; i++) {
		if (sodium_memcmp(n->st.peers[i].public_key, key, OD_MCHECK_KEY_LEN) == 0)
			node_id = n->st.peers[i].node_id;
	}
	od_info("member_check.answered", "source=%s node_id=%s member=%s", c->peer_text,
		od_q(node_id ? node_id : ""), node_id ? "true" : "false");
	od_mcheck_status_build(&s, node_id ? OD_MCHECK_MEMBER : OD_MCHECK_NOT_MEMBER, out);
	conn_answer(c, out, sizeof(out));
}

/* ---- reading */

static void on_readable(struct join_conn *c)
{
	while (c->have < c->need) {
		ssize_t got = recv(c->src.fd, c->in + c->have, c->need - c->have, MSG_DONTWAIT);

		if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR)) {
			od_debug("join.client_gone", "source=%s", c->peer_text);
			conn_close(c);
			return;
		}
		if (got < 0)
			return;
		c->have += (size_t)got;
		if (c->have == ZL_JOIN_HEADER_LEN && c->need == ZL_JOIN_HEADER_LEN) {
			size_t total = 0;
			enum zl_join_status st;

			if (od_mcheck_is_check(c->in)) {
				c->check = true;
				c->need = OD_MCHECK_REQUEST_LEN;
				continue;
			}
			st = zl_join_msg_length(c->in, false, &total);

			if (st != ZL_JOIN_OK || total < ZL_JOIN_HEADER_LEN || total > sizeof(c->in)) {
				log_refusal(c, st ? st : ZL_JOIN_ERR_MALFORMED, "bad header");
				send_refusal(c, st ? st : ZL_JOIN_ERR_MALFORMED);
				return;
			}
			c->need = total;
		}
	}
	/* One request per connection: whatever follows it is ignored. */
	if (c->check)
		process_check(c);
	else
		process_request(c);
}

static void on_conn(struct wg_loop_source *src, uint32_t events)
{
	struct join_conn *c = wg_container_of(src, struct join_conn, src);

	if (c->answered) {
		int rc = od_outbuf_flush(&c->out, src->fd);

		if (rc <= 0)
			conn_close(c);
		return;
	}
	on_readable(c);
}

static void accept_one(struct od_join_server *js, int fd, const struct sockaddr_storage *peer)
{
	struct join_conn *c = calloc(1, sizeof(*c));
	socklen_t sl = sizeof(struct sockaddr_storage);

	if (!c) {
		close(fd);
		return;
	}
	c->js = js;
	c->peer = *peer;
	c->need = ZL_JOIN_HEADER_LEN;
	od_sockaddr_format((const struct sockaddr *)peer, c->peer_text);
	getsockname(fd, (struct sockaddr *)&c->local, &sl);
	od_timer_init(&c->deadline, on_deadline);
	if (wg_loop_add(js->node->loop, &c->src, fd, EPOLLIN, on_conn)) {
		close(fd);
		conn_free(c);
		return;
	}
	c->next = js->conns;
	js->conns = c;
	js->n_conns++;
	od_timer_arm(&js->node->timers, &c->deadline, OD_JOIN_DEADLINE_MS);
	od_debug("join.connection", "source=%s", c->peer_text);
}

static void on_accept(struct wg_loop_source *src, uint32_t events)
{
	struct od_join_server *js = wg_container_of(src, struct od_join_server, src);

	for (int i = 0; i < 16; i++) {
		struct sockaddr_storage peer;
		socklen_t pl = sizeof(peer);
		int fd = accept4(src->fd, (struct sockaddr *)&peer, &pl, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0)
			return;
		if (js->n_conns >= OD_JOIN_MAX_CONNS) {
			uint8_t msg[ZL_JOIN_REFUSAL_LEN];
			size_t len = zl_join_refusal_build(ZL_JOIN_ERR_BUSY, msg);

			/* Best effort, never blocking: the refusal fits any fresh socket buffer. */
			if (send(fd, msg, len, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
			}
			close(fd);
			od_debug("join.busy", "limit=%d", OD_JOIN_MAX_CONNS);
			continue;
		}
		accept_one(js, fd, &peer);
	}
}

/* ---- setup */

static int listen_any(uint16_t port, char *err, size_t errlen)
{
	struct sockaddr_in6 s6 = { .sin6_family = AF_INET6, .sin6_port = htons(port), .sin6_addr = IN6ADDR_ANY_INIT };
	struct sockaddr_in s4 = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_ANY) };
	int one = 1, zero = 0, fd = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int rc;

	if (fd >= 0) {
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		rc = bind(fd, (struct sockaddr *)&s6, sizeof(s6));
	} else {
		/* No IPv6 on this host: IPv4 alone. */
		fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			goto fail;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		rc = bind(fd, (struct sockaddr *)&s4, sizeof(s4));
	}
	if (rc < 0 || listen(fd, 64) < 0)
		goto fail;
	return fd;
fail:
	rc = -errno;
	snprintf(err, errlen, "cannot listen for joins on TCP port %u: %s", port, strerror(errno));
	if (fd >= 0)
		close(fd);
	return rc;
}

int od_join_server_open(struct od_node *n, char *err, size_t errlen)
{
	struct od_join_server *js = calloc(1, sizeof(*js));
	int fd, rc;

	if (!js)
		return -ENOMEM;
	js->node = n;
	js->src.fd = -1;
	fd = listen_any(n->st.config.port, err, errlen);
	if (fd < 0) {
		free(js);
		return fd;
	}
	if ((rc = od_loop_watch(n->loop, &js->src, fd, on_accept, err, errlen))) {
		free(js);
		return rc;
	}
	n->join = js;
	od_info("join.listening", "port=%u", n->st.config.port);
	return 0;
}

void od_join_server_close(struct od_node *n)
{
	struct od_join_server *js = n->join;

	if (!js)
		return;
	while (js->conns) {
		struct join_conn *c = js->conns;

		js->conns = c->next;
		od_timer_cancel(&n->timers, &c->deadline);
		od_loop_close(n->loop, &c->src);
		conn_free(c);
	}
	od_loop_close(n->loop, &js->src);
	free(js);
	n->join = NULL;
}
