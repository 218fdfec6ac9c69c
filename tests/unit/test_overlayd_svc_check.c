/* zl-overlayd service checks against listeners on loopback run by the test on the same event loop:
 * TCP (open -> up, closed -> down, reopened -> up), HTTP (200 -> up with the exact request, 503 ->
 * down after exactly `threshold` answers and up again after one 200, garbage, silence (timeout), a
 * server that hangs up), IPv6 with a bracketed Host, the events of each transition (one per change,
 * none while nothing changes), the DNS filter, and sync (unchanged checks keep their state, a changed
 * check starts over, a removed one stops connecting). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include "overlayd/events.h"
#include "overlayd/log.h"
#include "overlayd/svc_check.h"
#include "overlayd_fixture.h"
#include "test.h"

enum mode { M_TCP, M_200, M_503, M_GARBAGE, M_SILENCE, M_HANGUP };

struct server;

struct sconn {
	struct wg_loop_source src;
	struct server *s;
	char buf[2048];
	size_t len;
	struct sconn *next;
};

struct server {
	struct wg_loop *loop;
	struct wg_loop_source lsrc;
	int family;
	uint16_t port;
	enum mode mode;
	int accepted;
	char last_req[2048];
	struct sconn *conns;     /* open ones (silent mode keeps them) */
};

static void sconn_close(struct sconn *c)
{
	struct server *s = c->s;

	for (struct sconn **pp = &s->conns; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	wg_loop_del(s->loop, &c->src);
	close(c->src.fd >= 0 ? c->src.fd : -1);
	free(c);
}

static void reply(struct sconn *c)
{
	static const char *const answers[] = {
		[M_200] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
		[M_503] = "HTTP/1.0 503 Service Unavailable\r\n\r\n",
		[M_GARBAGE] = "hello there, this is not HTTP\r\n",
	};
	const char *a = answers[c->s->mode];
	int fd = c->src.fd;

	if (send(fd, a, strlen(a), MSG_NOSIGNAL) < 0)
		perror("send");
	wg_loop_del(c->s->loop, &c->src);
	close(fd);
	for (struct sconn **pp = &c->s->conns; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	free(c);
}

static void on_sconn(struct wg_loop_source *src, uint32_t events)
{
	struct sconn *c = wg_container_of(src, struct sconn, src);
	ssize_t got = recv(src->fd, c->buf + c->len, sizeof(c->buf) - 1 - c->len, MSG_DONTWAIT);

	if (got <= 0) {
		int fd = src->fd;

		if (got < 0 && errno == EAGAIN)
			return;
		wg_loop_del(c->s->loop, src);
		close(fd);
		for (struct sconn **pp = &c->s->conns; *pp; pp = &(*pp)->next) {
			if (*pp == c) {
				*pp = c->next;
				break;
			}
		}
		free(c);
		return;
	}
	c->len += (size_t)got;
	c->buf[c->len] = '\0';
	if (!strstr(c->buf, "\r\n\r\n"))
		return;
	snprintf(c->s->last_req, sizeof(c->s->last_req), "%s", c->buf);
	if (c->s->mode != M_SILENCE)
		reply(c);
}

static void on_accept(struct wg_loop_source *src, uint32_t events)
{
	struct server *s = wg_container_of(src, struct server, lsrc);
	int fd = accept4(src->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	struct sconn *c;

	if (fd < 0)
		return;
	s->accepted++;
	if (s->mode == M_TCP || s->mode == M_HANGUP) {
		close(fd);
		return;
	}
	c = calloc(1, sizeof(*c));
	c->s = s;
	c->next = s->conns;
	s->conns = c;
	wg_loop_add(s->loop, &c->src, fd, EPOLLIN, on_sconn);
}

/* Listens on loopback (port 0 = any free one; else that one again). */
static bool server_listen(struct server *s)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int fd = socket(s->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;

	memset(&ss, 0, sizeof(ss));
	if (s->family == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;

		a->sin_family = AF_INET;
		a->sin_port = htons(s->port);
		a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		sl = sizeof(*a);
	} else {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

		a->sin6_family = AF_INET6;
		a->sin6_port = htons(s->port);
		a->sin6_addr = in6addr_loopback;
		sl = sizeof(*a);
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (fd < 0 || bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 16) < 0 ||
	    getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) {
		if (fd >= 0)
			close(fd);
		return false;
	}
	s->port = ntohs(s->family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port :
					       ((struct sockaddr_in6 *)&ss)->sin6_port);
	return wg_loop_add(s->loop, &s->lsrc, fd, EPOLLIN, on_accept) == 0;
}

static void server_stop_listening(struct server *s)
{
	int fd = s->lsrc.fd;

	wg_loop_del(s->loop, &s->lsrc);
	if (fd >= 0)
		close(fd);
}

static void server_close(struct server *s)
{
	server_stop_listening(s);
	while (s->conns)
		sconn_close(s->conns);
}

/* ---- the node */

struct env {
	struct od_node n;
	struct wg_loop loop;
};

static void env_open(struct env *e)
{
	char err[256];

	memset(e, 0, sizeof(*e));
	CHECK(wg_loop_init(&e->loop) == 0);
	e->n.loop = &e->loop;
	CHECK(od_timers_init(&e->n.timers, &e->loop) == 0);
	e->n.timers_ready = true;
	CHECK(od_events_open(&e->n, err, sizeof(err)) == 0);
}

static void env_close(struct env *e)
{
	od_svc_checks_close(&e->n);
	od_events_close(&e->n);
	free(e->n.st.dns);
	od_timers_destroy(&e->n.timers);
	wg_loop_destroy(&e->loop);
}

static struct zl_state_dns_record rec_of(const char *name, const char *addr, enum zl_check_kind kind, uint16_t port,
					 const char *path, uint32_t threshold)
{
	struct zl_state_dns_record r;

	memset(&r, 0, sizeof(r));
	snprintf(r.name, sizeof(r.name), "%s", name);
	r.kind = ZL_DNS_ADDR;
	snprintf(r.addr, sizeof(r.addr), "%s", addr);
	r.ttl = 30;
	r.check.kind = kind;
	r.check.port = port;
	snprintf(r.check.path, sizeof(r.check.path), "%s", path ? path : "");
	r.check.interval_s = 1;
	r.check.threshold = threshold;
	return r;
}

static void set_records(struct env *e, const struct zl_state_dns_record *recs, size_t n)
{
	free(e->n.st.dns);
	e->n.st.dns = calloc(n ? n : 1, sizeof(*recs));
	memcpy(e->n.st.dns, recs, n * sizeof(*recs));
	e->n.st.n_dns = n;
}

static void pump_for(struct env *e, int ms)
{
	int64_t end = now_ms() + ms;

	while (now_ms() < end)
		wg_loop_wait(&e->loop, 20);
}

struct want_state {
	struct env *e;
	const struct zl_state_dns_record *rec;
	enum od_svc_state s;
};

static bool cond_state(void *arg)
{
	struct want_state *w = arg;

	return od_svc_checks_state(&w->e->n, w->rec) == w->s;
}

static bool wait_state(struct env *e, const struct zl_state_dns_record *rec, enum od_svc_state s, int max_ms)
{
	struct want_state w = { e, rec, s };

	return loop_until(&e->loop, cond_state, &w, max_ms);
}

/* The service events about name, oldest first, as "up:reason" / "down:reason" joined by '|'. */
static void events_of(struct env *e, const char *name, char *out, size_t len)
{
	json_object *a = od_events_recent_json(&e->n);
	size_t o = 0;

	out[0] = '\0';
	for (size_t i = 0; a && i < json_object_array_length(a); i++) {
		json_object *ev = json_object_array_get_idx(a, i), *v;
		const char *f[4];
		static const char *const keys[] = { "kind", "name", "state", "reason" };

		for (int k = 0; k < 4; k++)
			f[k] = json_object_object_get_ex(ev, keys[k], &v) ? json_object_get_string(v) : "";
		if (strcmp(f[0], "service") || strcmp(f[1], name))
			continue;
		o += (size_t)snprintf(out + o, o < len ? len - o : 0, "%s%s:%s", o ? "|" : "", f[2], f[3]);
	}
	json_object_put(a);
}

static bool events_are(struct env *e, const char *name, const char *want)
{
	char got[1024];

	events_of(e, name, got, sizeof(got));
	if (strcmp(got, want))
		fprintf(stderr, "  events of %s: got '%s', want '%s'\n", name, got, want);
	return strcmp(got, want) == 0;
}

static void test_tcp(void)
{
	struct env e;
	struct server s = { .family = AF_INET, .mode = M_TCP };
	struct zl_state_dns_record rec;
	char err[256];

	env_open(&e);
	s.loop = &e.loop;
	CHECK(server_listen(&s));
	rec = rec_of("tcp", "127.0.0.1", ZL_CHECK_TCP, s.port, NULL, 2);
	set_records(&e, &rec, 1);
	CHECK(od_svc_checks_open(&e.n, err, sizeof(err)) == 0);
	/* A new check is unknown and counts as up for DNS until its first verdicts. */
	CHECK(od_svc_checks_state(&e.n, &rec) == OD_SVC_UNKNOWN);
	CHECK(od_svc_checks_addr_ok(&e.n, &rec));
	CHECK(wait_state(&e, &rec, OD_SVC_UP, 5000));
	CHECK(s.accepted >= 1);
	CHECK(events_are(&e, "tcp", "up:connected"));

	server_stop_listening(&s);
	CHECK(wait_state(&e, &rec, OD_SVC_DOWN, 8000));
	CHECK(!od_svc_checks_addr_ok(&e.n, &rec));
	CHECK(events_are(&e, "tcp", "up:connected|down:connect refused"));

	CHECK(server_listen(&s));   /* the same port again */
	CHECK(wait_state(&e, &rec, OD_SVC_UP, 5000));
	CHECK(od_svc_checks_addr_ok(&e.n, &rec));
	/* Staying up produces no more events. */
	pump_for(&e, 2200);
	CHECK(events_are(&e, "tcp", "up:connected|down:connect refused|up:connected"));
	server_close(&s);
	env_close(&e);
}

static void test_http(void)
{
	struct env e;
	struct server ok = { .family = AF_INET, .mode = M_200 }, bad = { .family = AF_INET, .mode = M_503 },
		      garbage = { .family = AF_INET, .mode = M_GARBAGE },
		      silent = { .family = AF_INET, .mode = M_SILENCE },
		      hangup = { .family = AF_INET, .mode = M_HANGUP };
	struct server *all[] = { &ok, &bad, &garbage, &silent, &hangup };
	struct zl_state_dns_record recs[5];
	char err[256], want[256], got[256];
	int at_down;

	env_open(&e);
	for (size_t i = 0; i < 5; i++) {
		all[i]->loop = &e.loop;
		CHECK(server_listen(all[i]));
	}
	recs[0] = rec_of("ok", "127.0.0.1", ZL_CHECK_HTTP, ok.port, "/health?x=1", 2);
	recs[1] = rec_of("bad", "127.0.0.1", ZL_CHECK_HTTP, bad.port, "/", 3);
	recs[2] = rec_of("garbage", "127.0.0.1", ZL_CHECK_HTTP, garbage.port, "/", 1);
	recs[3] = rec_of("silent", "127.0.0.1", ZL_CHECK_HTTP, silent.port, "/", 1);
	recs[4] = rec_of("hangup", "127.0.0.1", ZL_CHECK_HTTP, hangup.port, "/", 1);
	set_records(&e, recs, 5);
	CHECK(od_svc_checks_open(&e.n, err, sizeof(err)) == 0);

	CHECK(wait_state(&e, &recs[0], OD_SVC_UP, 5000));
	snprintf(want, sizeof(want), "GET /health?x=1 HTTP/1.0\r\nHost: 127.0.0.1:%u\r\n", (unsigned)ok.port);
	CHECK(strncmp(ok.last_req, want, strlen(want)) == 0);
	CHECK(events_are(&e, "ok", "up:HTTP 200"));

	/* Down after exactly `threshold` failing answers, not before. */
	CHECK(wait_state(&e, &recs[1], OD_SVC_DOWN, 8000));
	at_down = bad.accepted;
	CHECK(at_down == 3);
	CHECK(events_are(&e, "bad", "down:HTTP 503"));
	CHECK(wait_state(&e, &recs[2], OD_SVC_DOWN, 5000));
	CHECK(events_are(&e, "garbage", "down:bad HTTP answer"));
	CHECK(wait_state(&e, &recs[3], OD_SVC_DOWN, 6000));
	CHECK(silent.accepted >= 1);
	CHECK(events_are(&e, "silent", "down:timeout"));
	CHECK(wait_state(&e, &recs[4], OD_SVC_DOWN, 5000));
	/* Closed before the request was read: a reset, or an empty answer if the request got in first. */
	events_of(&e, "hangup", got, sizeof(got));
	CHECK(!strcmp(got, "down:connection reset") || !strcmp(got, "down:connection closed"));

	/* One good answer brings it back. */
	bad.mode = M_200;
	CHECK(wait_state(&e, &recs[1], OD_SVC_UP, 5000));
	CHECK(bad.accepted == at_down + 1);
	CHECK(events_are(&e, "bad", "down:HTTP 503|up:HTTP 200"));
	CHECK(od_svc_checks_state(&e.n, &recs[0]) == OD_SVC_UP);
	CHECK(events_are(&e, "ok", "up:HTTP 200"));
	for (size_t i = 0; i < 5; i++)
		server_close(all[i]);
	env_close(&e);
}

static void test_http_ipv6(void)
{
	struct env e;
	struct server s = { .family = AF_INET6, .mode = M_200 };
	struct zl_state_dns_record rec;
	char err[256], want[128];

	env_open(&e);
	s.loop = &e.loop;
	if (!server_listen(&s)) {
		printf("  (no IPv6 loopback: skipped)\n");
		env_close(&e);
		return;
	}
	rec = rec_of("six", "::1", ZL_CHECK_HTTP, s.port, "/", 2);
	set_records(&e, &rec, 1);
	CHECK(od_svc_checks_open(&e.n, err, sizeof(err)) == 0);
	CHECK(wait_state(&e, &rec, OD_SVC_UP, 5000));
	snprintf(want, sizeof(want), "GET / HTTP/1.0\r\nHost: [::1]:%u\r\n", (unsigned)s.port);
	CHECK(strncmp(s.last_req, want, strlen(want)) == 0);
	server_close(&s);
	env_close(&e);
}

static void test_sync_and_filter(void)
{
	struct env e;
	struct server up = { .family = AF_INET, .mode = M_TCP }, down = { .family = AF_INET, .mode = M_503 };
	struct zl_state_dns_record recs[4], changed;
	char err[256];
	int before;

	env_open(&e);
	up.loop = down.loop = &e.loop;
	CHECK(server_listen(&up));
	CHECK(server_listen(&down));
	recs[0] = rec_of("up", "127.0.0.1", ZL_CHECK_TCP, up.port, NULL, 1);
	recs[1] = rec_of("down", "127.0.0.1", ZL_CHECK_HTTP, down.port, "/", 1);
	recs[2] = rec_of("plain", "127.0.0.2", ZL_CHECK_NONE, 0, NULL, 0);
	recs[3] = rec_of("up", "127.0.0.3", ZL_CHECK_TCP, up.port, NULL, 1);   /* same name, other address */
	recs[3].check.interval_s = 3600;
	set_records(&e, recs, 4);
	CHECK(od_svc_checks_open(&e.n, err, sizeof(err)) == 0);
	CHECK(wait_state(&e, &recs[0], OD_SVC_UP, 5000));
	CHECK(wait_state(&e, &recs[1], OD_SVC_DOWN, 5000));
	CHECK(od_svc_checks_state(&e.n, &recs[2]) == OD_SVC_UNCHECKED);
	CHECK(od_svc_checks_addr_ok(&e.n, &recs[0]));
	CHECK(!od_svc_checks_addr_ok(&e.n, &recs[1]));
	CHECK(od_svc_checks_addr_ok(&e.n, &recs[2]));

	/* The same list again (another order): states kept, no new events. */
	{
		struct zl_state_dns_record again[4] = { recs[3], recs[2], recs[1], recs[0] };

		set_records(&e, again, 4);
		od_svc_checks_sync(&e.n);
	}
	CHECK(od_svc_checks_state(&e.n, &recs[0]) == OD_SVC_UP);
	CHECK(od_svc_checks_state(&e.n, &recs[1]) == OD_SVC_DOWN);
	CHECK(events_are(&e, "down", "down:HTTP 503"));

	/* A changed check starts over (unknown, so back in DNS); a removed one stops connecting. */
	changed = recs[1];
	changed.check.threshold = 5;
	set_records(&e, &changed, 1);
	od_svc_checks_sync(&e.n);
	CHECK(od_svc_checks_state(&e.n, &changed) == OD_SVC_UNKNOWN);
	CHECK(od_svc_checks_addr_ok(&e.n, &changed));
	CHECK(od_svc_checks_state(&e.n, &recs[1]) == OD_SVC_UNKNOWN);   /* the old check is gone */
	CHECK(od_svc_checks_state(&e.n, &recs[0]) == OD_SVC_UNKNOWN);   /* not tracked any more */
	pump_for(&e, 100);
	before = up.accepted;
	pump_for(&e, 2500);
	CHECK(up.accepted == before);
	CHECK(down.accepted >= 3);   /* the changed one keeps checking */
	CHECK(od_svc_checks_state(&e.n, &changed) == OD_SVC_UNKNOWN);   /* below its new threshold */

	CHECK(!strcmp(od_svc_state_name(OD_SVC_UNCHECKED), "unchecked"));
	CHECK(!strcmp(od_svc_state_name(OD_SVC_UNKNOWN), "unknown"));
	CHECK(!strcmp(od_svc_state_name(OD_SVC_UP), "up"));
	CHECK(!strcmp(od_svc_state_name(OD_SVC_DOWN), "down"));
	server_close(&up);
	server_close(&down);
	env_close(&e);
}

/* Many checks at once, all against one refusing port, then all removed: nothing leaks (ASan). */
static void test_many(void)
{
	struct env e;
	struct server s = { .family = AF_INET, .mode = M_TCP };
	struct zl_state_dns_record *recs = calloc(200, sizeof(*recs));
	char err[256], name[32];

	env_open(&e);
	s.loop = &e.loop;
	CHECK(server_listen(&s));
	for (int i = 0; i < 200; i++) {
		snprintf(name, sizeof(name), "s%d", i);
		recs[i] = rec_of(name, "127.0.0.1", ZL_CHECK_TCP, s.port, NULL, 1);
	}
	set_records(&e, recs, 200);
	CHECK(od_svc_checks_open(&e.n, err, sizeof(err)) == 0);
	CHECK(wait_state(&e, &recs[199], OD_SVC_UP, 5000));
	pump_for(&e, 1100);
	for (int i = 0; i < 200; i++)
		CHECK(od_svc_checks_state(&e.n, &recs[i]) == OD_SVC_UP);
	set_records(&e, recs, 0);
	od_svc_checks_sync(&e.n);
	CHECK(od_svc_checks_state(&e.n, &recs[0]) == OD_SVC_UNKNOWN);
	pump_for(&e, 100);   /* the deferred frees run */
	server_close(&s);
	env_close(&e);
	free(recs);
}

int main(void)
{
	/* Each transition is an info line; errors (e.g. a local failure) still show. */
	wg_log_set_level(WG_LOG_ERROR);
	TEST_RUN(test_tcp);
	TEST_RUN(test_http);
	TEST_RUN(test_http_ipv6);
	TEST_RUN(test_sync_and_filter);
	TEST_RUN(test_many);
	return TEST_SUMMARY();
}
