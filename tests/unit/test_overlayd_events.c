/* zl-overlayd events: the hook's exact environment (ZL_* of the event, stale ZL_* removed, stdin
 * /dev/null), at most 8 hooks at once (the rest skipped and logged), a hook still running after 30 s
 * killed with what it started, no zombies left, the JSON of an event, the ring of the last 64 in order,
 * and delivery to watchers over a real control socket (a watcher that does not read is dropped while
 * the others keep getting events). A real event loop with od_timers is driven by the test; files live
 * in a scratch directory under /tmp (removed at the end). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "overlay/frame.h"
#include "overlayd/control_server.h"
#include "overlayd/events.h"
#include "overlayd/log.h"
#include "overlayd_fixture.h"
#include "test.h"

static char scratch[64];

struct env {
	struct od_node n;
	struct wg_loop loop;
};

static void env_open(struct env *e, const char *hook)
{
	char err[256];

	memset(e, 0, sizeof(*e));
	CHECK(wg_loop_init(&e->loop) == 0);
	e->n.loop = &e->loop;
	CHECK(od_timers_init(&e->n.timers, &e->loop) == 0);
	e->n.timers_ready = true;
	e->n.opts.on_change = hook;
	CHECK(od_events_open(&e->n, err, sizeof(err)) == 0);
	CHECK(e->n.events != NULL);
}

static void env_close(struct env *e)
{
	od_control_close(&e->n);
	od_events_close(&e->n);
	od_timers_destroy(&e->n.timers);
	wg_loop_destroy(&e->loop);
}

/* True when this process has no child at all (running or zombie): every hook was reaped. WNOWAIT
 * leaves reaping to the events module. */
static bool no_children(void)
{
	siginfo_t si;

	return waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) < 0 && errno == ECHILD;
}

static bool cond_no_children(void *arg)
{
	(void)arg;
	return no_children();
}

static size_t count_lines(const char *path)
{
	FILE *f = fopen(path, "r");
	char line[512];
	size_t n = 0;

	while (f && fgets(line, sizeof(line), f))
		n++;
	if (f)
		fclose(f);
	return n;
}

struct lines_goal {
	const char *path;
	size_t n;
};

static bool cond_lines(void *arg)
{
	struct lines_goal *g = arg;

	return count_lines(g->path) >= g->n;
}

static bool file_has_line(const char *path, const char *want)
{
	FILE *f = fopen(path, "r");
	char line[1024];
	bool found = false;

	while (f && !found && fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		found = strcmp(line, want) == 0;
	}
	if (f)
		fclose(f);
	return found;
}

static size_t count_containing(const char *path, const char *needle)
{
	FILE *f = fopen(path, "r");
	char line[2048];
	size_t n = 0;

	while (f && fgets(line, sizeof(line), f))
		n += strstr(line, needle) != NULL;
	if (f)
		fclose(f);
	return n;
}

/* The daemon's log lines go to a file while fn-like sections run. */
static int saved_stderr = -1;

static void capture_log(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	fflush(stderr);
	saved_stderr = dup(STDERR_FILENO);
	dup2(fd, STDERR_FILENO);
	close(fd);
}

static void restore_log(void)
{
	fflush(stderr);
	dup2(saved_stderr, STDERR_FILENO);
	close(saved_stderr);
	saved_stderr = -1;
}

static struct od_event make_event(enum od_event_kind kind, bool up, const char *name, const char *addr,
				  const char *host, uint16_t port, const char *reason)
{
	struct od_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.kind = kind;
	ev.up = up;
	snprintf(ev.name, sizeof(ev.name), "%s", name);
	snprintf(ev.address, sizeof(ev.address), "%s", addr);
	snprintf(ev.hostname, sizeof(ev.hostname), "%s", host);
	ev.port = port;
	snprintf(ev.reason, sizeof(ev.reason), "%s", reason);
	return ev;
}

/* Every ZL_* line of an `env` dump, sorted by the shell's order, checked against want (NULL-ended). */
static void check_zl_env(const char *path, const char *const *want)
{
	FILE *f = fopen(path, "r");
	char line[1024];
	size_t n_zl = 0, n_want = 0;
	bool path_seen = false;

	CHECK(f != NULL);
	while (f && fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		path_seen |= strncmp(line, "PATH=", 5) == 0;
		if (strncmp(line, "ZL_", 3) != 0)
			continue;
		n_zl++;
		bool known = false;

		for (size_t i = 0; want[i]; i++)
			known |= strcmp(line, want[i]) == 0;
		if (!known)
			fprintf(stderr, "  unexpected hook variable: %s\n", line);
		CHECK(known);
	}
	for (size_t i = 0; want[i]; i++)
		n_want++;
	CHECK(n_zl == n_want);
	CHECK(path_seen);   /* the daemon's environment is inherited (a hook needs PATH) */
	if (f)
		fclose(f);
}

static void test_hook_environment(void)
{
	char cmd[512], envp[128], stdinp[128];
	struct env e;
	struct od_event peer = make_event(OD_EVENT_PEER, false, "node-0-3", "10.200.0.3", "db1", 0,
					  "3 probes missed");
	struct od_event svc = make_event(OD_EVENT_SERVICE, true, "db.web", "fd00::5", "", 8080, "HTTP 204");
	static const char *const want_peer[] = {
		"ZL_EVENT=peer", "ZL_STATE=down", "ZL_ADDRESS=10.200.0.3", "ZL_NAME=node-0-3",
		"ZL_HOSTNAME=db1", "ZL_PORT=", "ZL_REASON=3 probes missed", NULL,
	};
	static const char *const want_svc[] = {
		"ZL_EVENT=service", "ZL_STATE=up", "ZL_ADDRESS=fd00::5", "ZL_NAME=db.web",
		"ZL_HOSTNAME=", "ZL_PORT=8080", "ZL_REASON=HTTP 204", NULL,
	};

	snprintf(envp, sizeof(envp), "%s/env", scratch);
	snprintf(stdinp, sizeof(stdinp), "%s/stdin", scratch);
	snprintf(cmd, sizeof(cmd), "env > %s.$ZL_EVENT; readlink /proc/$$/fd/0 > %s", envp, stdinp);
	setenv("ZL_STALE", "must not reach the hook", 1);
	setenv("ZL_STATE", "forged", 1);
	env_open(&e, cmd);
	od_events_emit(&e.n, &peer);
	CHECK(loop_until(&e.loop, cond_no_children, NULL, 10000));
	od_events_emit(&e.n, &svc);
	CHECK(loop_until(&e.loop, cond_no_children, NULL, 10000));
	snprintf(cmd, sizeof(cmd), "%s.peer", envp);
	check_zl_env(cmd, want_peer);
	snprintf(cmd, sizeof(cmd), "%s.service", envp);
	check_zl_env(cmd, want_svc);
	CHECK(file_has_line(stdinp, "/dev/null"));
	env_close(&e);
	unsetenv("ZL_STALE");
	unsetenv("ZL_STATE");
}

static void test_hook_concurrency_limit(void)
{
	char cmd[512], started[128], go[128], logp[128], name[16];
	struct env e;
	struct lines_goal eight, nine;

	snprintf(started, sizeof(started), "%s/started", scratch);
	snprintf(go, sizeof(go), "%s/go", scratch);
	snprintf(logp, sizeof(logp), "%s/conc.log", scratch);
	snprintf(cmd, sizeof(cmd), "echo $ZL_NAME >> %s; while [ ! -e %s ]; do sleep 0.05; done", started, go);
	env_open(&e, cmd);
	capture_log(logp);
	for (int i = 0; i < 10; i++) {
		struct od_event ev;

		snprintf(name, sizeof(name), "h%d", i);
		ev = make_event(OD_EVENT_PEER, i % 2, name, "10.200.0.9", "", 0, "test");
		od_events_emit(&e.n, &ev);
	}
	eight = (struct lines_goal){ started, 8 };
	CHECK(loop_until(&e.loop, cond_lines, &eight, 10000));
	CHECK(!no_children());
	/* The two beyond the limit were skipped at once (never started), not queued. */
	CHECK(count_containing(logp, "event=hook.skipped") == 2);
	CHECK(count_containing(logp, "name=h8 ") == 2);   /* the event line and its skip line */
	close(open(go, O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
	CHECK(loop_until(&e.loop, cond_no_children, NULL, 10000));
	CHECK(count_lines(started) == 8);
	for (int i = 0; i < 10; i++) {
		snprintf(name, sizeof(name), "h%d", i);
		CHECK(file_has_line(started, name) == (i < 8));
	}
	/* Every slot is free again once reaped. */
	{
		struct od_event ev = make_event(OD_EVENT_SERVICE, true, "again", "10.200.0.9", "", 80, "test");

		od_events_emit(&e.n, &ev);
	}
	nine = (struct lines_goal){ started, 9 };
	CHECK(loop_until(&e.loop, cond_lines, &nine, 10000));
	CHECK(loop_until(&e.loop, cond_no_children, NULL, 10000));
	CHECK(file_has_line(started, "again"));
	restore_log();
	CHECK(count_containing(logp, "event=hook.exited") == 9);
	env_close(&e);
}

/* Dead, or a zombie of someone else (init reaps the hook's orphaned children). */
static bool pid_gone(pid_t pid)
{
	char path[64], stat[256];
	FILE *f;
	char *p;

	if (kill(pid, 0) < 0 && errno == ESRCH)
		return true;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return true;
	p = fgets(stat, sizeof(stat), f);
	fclose(f);
	p = p ? strrchr(stat, ')') : NULL;
	return p && p[1] == ' ' && p[2] == 'Z';
}

static long read_pid(const char *path)
{
	FILE *f = fopen(path, "r");
	long pid = -1;

	if (f) {
		if (fscanf(f, "%ld", &pid) != 1)
			pid = -1;
		fclose(f);
	}
	return pid;
}

static void test_hook_timeout_kill(void)
{
	char cmd[512], pidp[128], childp[128], logp[128], donep[128];
	struct env e;
	struct od_event ev = make_event(OD_EVENT_PEER, false, "slow", "10.200.0.7", "", 0, "test");
	struct lines_goal have_child;
	int64_t t0;
	long pid, child;

	snprintf(pidp, sizeof(pidp), "%s/hook.pid", scratch);
	snprintf(childp, sizeof(childp), "%s/child.pid", scratch);
	snprintf(donep, sizeof(donep), "%s/done", scratch);
	snprintf(logp, sizeof(logp), "%s/timeout.log", scratch);
	snprintf(cmd, sizeof(cmd), "echo $$ > %s; sleep 120 & echo $! > %s; wait; touch %s", pidp, childp, donep);
	env_open(&e, cmd);
	capture_log(logp);
	t0 = now_ms();
	od_events_emit(&e.n, &ev);
	have_child = (struct lines_goal){ childp, 1 };
	CHECK(loop_until(&e.loop, cond_lines, &have_child, 10000));
	pid = read_pid(pidp);
	child = read_pid(childp);
	CHECK(pid > 0 && child > 0);
	CHECK(loop_until(&e.loop, cond_no_children, NULL, OD_HOOK_TIMEOUT_MS + 10000));
	restore_log();
	/* Killed, and not before its time. */
	CHECK(now_ms() - t0 >= OD_HOOK_TIMEOUT_MS);
	CHECK(count_containing(logp, "event=hook.killed") == 1);
	CHECK(access(donep, F_OK) < 0);
	if (pid > 0)
		CHECK(pid_gone((pid_t)pid));
	for (int i = 0; i < 100 && child > 0 && !pid_gone((pid_t)child); i++)
		usleep(10000);   /* the orphan is reaped by init */
	if (child > 0)
		CHECK(pid_gone((pid_t)child));
	env_close(&e);
}

static const char *jstr(json_object *o, const char *k)
{
	json_object *v;

	return json_object_object_get_ex(o, k, &v) && json_object_is_type(v, json_type_string) ?
		       json_object_get_string(v) : NULL;
}

static int64_t jint(json_object *o, const char *k)
{
	json_object *v;

	return json_object_object_get_ex(o, k, &v) && json_object_is_type(v, json_type_int) ?
		       json_object_get_int64(v) : -1;
}

static void test_event_json(void)
{
	struct od_event ev = make_event(OD_EVENT_SERVICE, false, "web", "10.200.0.3", "", 8080, "HTTP 503");
	json_object *o;

	ev.time = 1795000000;
	o = od_event_json(&ev);
	CHECK(o && json_object_object_length(o) == 8);
	CHECK(jstr(o, "kind") && !strcmp(jstr(o, "kind"), "service"));
	CHECK(jstr(o, "state") && !strcmp(jstr(o, "state"), "down"));
	CHECK(jstr(o, "name") && !strcmp(jstr(o, "name"), "web"));
	CHECK(jstr(o, "address") && !strcmp(jstr(o, "address"), "10.200.0.3"));
	CHECK(jstr(o, "hostname") && !strcmp(jstr(o, "hostname"), ""));
	CHECK(jint(o, "port") == 8080);
	CHECK(jstr(o, "reason") && !strcmp(jstr(o, "reason"), "HTTP 503"));
	CHECK(jint(o, "time") == 1795000000);
	json_object_put(o);

	ev = make_event(OD_EVENT_PEER, true, "node-0-3", "10.200.0.3", "db1", 0, "probe answered");
	o = od_event_json(&ev);
	CHECK(jstr(o, "kind") && !strcmp(jstr(o, "kind"), "peer"));
	CHECK(jstr(o, "state") && !strcmp(jstr(o, "state"), "up"));
	CHECK(jstr(o, "hostname") && !strcmp(jstr(o, "hostname"), "db1"));
	CHECK(jint(o, "port") == 0);
	json_object_put(o);
}

/* emit fills a missing time, keeps a given one; the ring keeps the last 64 in order. */
static void test_recent_ring(void)
{
	struct env e;
	json_object *a;
	int64_t before = (int64_t)time(NULL), after;
	char name[16], logp[128];

	env_open(&e, NULL);
	a = od_events_recent_json(&e.n);
	CHECK(a && json_object_array_length(a) == 0);
	json_object_put(a);
	snprintf(logp, sizeof(logp), "%s/ring.log", scratch);
	capture_log(logp);
	for (int i = 0; i < OD_EVENTS_KEEP + 6; i++) {
		struct od_event ev;

		snprintf(name, sizeof(name), "e%d", i);
		ev = make_event(i % 3 ? OD_EVENT_PEER : OD_EVENT_SERVICE, i % 2, name, "10.200.0.4", "", 0, "r");
		ev.time = i == 1 ? 42 : 0;
		od_events_emit(&e.n, &ev);
	}
	restore_log();
	after = (int64_t)time(NULL);
	/* Every event logged once: a line per event with its name. */
	CHECK(count_containing(logp, "name=e69 ") == 1);
	CHECK(count_containing(logp, "event=peer.up ") + count_containing(logp, "event=peer.down ") +
		      count_containing(logp, "event=service.up ") + count_containing(logp, "event=service.down ") ==
	      OD_EVENTS_KEEP + 6);
	a = od_events_recent_json(&e.n);
	CHECK(a && json_object_array_length(a) == OD_EVENTS_KEEP);
	for (size_t i = 0; a && i < json_object_array_length(a); i++) {
		json_object *o = json_object_array_get_idx(a, i);
		int64_t t = jint(o, "time");

		snprintf(name, sizeof(name), "e%zu", i + 6);
		CHECK(jstr(o, "name") && !strcmp(jstr(o, "name"), name));
		CHECK(t >= before && t <= after);
		CHECK(!strcmp(jstr(o, "kind"), (i + 6) % 3 ? "peer" : "service"));
	}
	json_object_put(a);
	env_close(&e);

	/* The time given by the caller is kept. */
	env_open(&e, NULL);
	{
		struct od_event ev = make_event(OD_EVENT_PEER, true, "t", "10.200.0.4", "", 0, "r");

		ev.time = 42;
		capture_log(logp);
		od_events_emit(&e.n, &ev);
		restore_log();
	}
	a = od_events_recent_json(&e.n);
	CHECK(a && json_object_array_length(a) == 1 && jint(json_object_array_get_idx(a, 0), "time") == 42);
	json_object_put(a);
	env_close(&e);
}

/* ---- watchers over a real control socket */

static int dial(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void send_request(int fd, uint64_t id, const char *type)
{
	json_object *req, *env = zl_frame_request_new(id, type, &req);
	uint8_t *buf;
	size_t len;

	CHECK(zl_frame_encode(env, 0, &buf, &len) == 0);
	CHECK(send(fd, buf, len, MSG_NOSIGNAL) == (ssize_t)len);
	free(buf);
	json_object_put(env);
}

struct client {
	int fd;
	struct zl_frame_decoder dec;
	json_object *frame;     /* the last complete frame */
	bool eof;
	uint8_t pending[4096];
	size_t pend_len, pend_off;
};

/* One frame if one is available now (non-blocking). */
static bool client_poll(void *arg)
{
	struct client *c = arg;

	for (;;) {
		size_t used = 0;
		int rc;

		if (c->pend_off < c->pend_len) {
			rc = zl_frame_decoder_feed(&c->dec, c->pending + c->pend_off, c->pend_len - c->pend_off, &used,
						   &c->frame);
			c->pend_off += used;
			if (rc != 0)
				return rc > 0;
			continue;
		}
		ssize_t got = recv(c->fd, c->pending, sizeof(c->pending), MSG_DONTWAIT);

		if (got <= 0) {
			c->eof = got == 0 || (errno != EAGAIN && errno != EINTR);
			return false;
		}
		c->pend_len = (size_t)got;
		c->pend_off = 0;
	}
}

static json_object *next_frame(struct env *e, struct client *c)
{
	json_object *f;

	if (!loop_until(&e->loop, client_poll, c, 5000))
		return NULL;
	f = c->frame;
	c->frame = NULL;
	return f;
}

static void client_open(struct client *c, const char *path)
{
	memset(c, 0, sizeof(*c));
	c->fd = dial(path);
	CHECK(c->fd >= 0);
	zl_frame_decoder_init(&c->dec, 0);
}

static void client_close(struct client *c)
{
	zl_frame_decoder_free(&c->dec);
	json_object_put(c->frame);
	close(c->fd);
}

static json_object *body_of(json_object *frame)
{
	json_object *r;

	return json_object_object_get_ex(frame, "response", &r) ? r : NULL;
}

static bool cond_eof(void *arg)
{
	struct client *c = arg;
	uint8_t buf[65536];

	for (;;) {
		ssize_t got = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);

		if (got == 0)
			return true;
		if (got < 0)
			return errno != EAGAIN && errno != EINTR;
	}
}

static void test_watchers(void)
{
	char sock[OD_PATH_MAX + 32], logp[128], err[256], reason[OD_EVENT_REASON_SIZE];
	struct env e;
	struct client w, other, stuck;
	struct od_event first = make_event(OD_EVENT_PEER, false, "node-0-5", "10.200.0.5", "", 0, "before");
	struct od_event live = make_event(OD_EVENT_SERVICE, false, "web", "10.200.0.6", "", 8080, "connect refused");
	json_object *f, *b, *v;
	int small = 4096;

	env_open(&e, NULL);
	snprintf(e.n.run_dir, sizeof(e.n.run_dir), "%s/run", scratch);
	snprintf(e.n.data_dir, sizeof(e.n.data_dir), "%s", scratch);
	snprintf(logp, sizeof(logp), "%s/watch.log", scratch);
	capture_log(logp);
	CHECK(od_control_lock(&e.n, err, sizeof(err)) == 0);
	CHECK(od_control_open(&e.n, err, sizeof(err)) == 0);
	snprintf(sock, sizeof(sock), "%s/%s", e.n.run_dir, OD_SOCKET_NAME);
	od_events_emit(&e.n, &first);

	client_open(&w, sock);
	client_open(&other, sock);
	client_open(&stuck, sock);
	setsockopt(stuck.fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	send_request(w.fd, 7, "watch");
	send_request(stuck.fd, 8, "watch");
	send_request(other.fd, 9, "peers");
	f = next_frame(&e, &w);
	b = body_of(f);
	CHECK(b && jstr(b, "result") && !strcmp(jstr(b, "result"), "ok") && jint(f, "id") == 7);
	CHECK(b && json_object_object_get_ex(b, "recent", &v) && json_object_array_length(v) == 1 &&
	      !strcmp(jstr(json_object_array_get_idx(v, 0), "reason"), "before"));
	json_object_put(f);
	f = next_frame(&e, &other);   /* the peers answer */
	CHECK(f && jint(f, "id") == 9);
	json_object_put(f);

	od_events_emit(&e.n, &live);
	f = next_frame(&e, &w);
	CHECK(f && json_object_object_length(f) == 1 && json_object_object_get_ex(f, "event", &v));
	CHECK(f && jstr(v, "name") && !strcmp(jstr(v, "name"), "web") && jint(v, "port") == 8080 &&
	      !strcmp(jstr(v, "state"), "down") && !strcmp(jstr(v, "reason"), "connect refused"));
	json_object_put(f);
	/* Not a watcher: nothing arrives. */
	CHECK(!loop_until(&e.loop, client_poll, &other, 200) && !other.eof);

	/* stuck never reads: once WATCH_OUT_LIMIT (1 MiB) piles up it is dropped; w keeps up. */
	memset(reason, 'x', sizeof(reason) - 1);
	reason[sizeof(reason) - 1] = '\0';
	for (int i = 0; i < 8000; i++) {
		struct od_event ev = make_event(OD_EVENT_PEER, i % 2, "node-0-8", "10.200.0.8", "", 0, reason);

		od_events_emit(&e.n, &ev);
		while (client_poll(&w)) {
			json_object_put(w.frame);
			w.frame = NULL;
		}
		wg_loop_wait(&e.loop, 0);
	}
	CHECK(loop_until(&e.loop, cond_eof, &stuck, 5000));
	CHECK(!w.eof);
	od_events_emit(&e.n, &live);
	f = next_frame(&e, &w);
	CHECK(f && json_object_object_get_ex(f, "event", &v) && !strcmp(jstr(v, "reason"), "connect refused"));
	json_object_put(f);
	restore_log();
	CHECK(count_containing(logp, "event=control.watcher_dropped") == 1);
	client_close(&w);
	client_close(&other);
	client_close(&stuck);
	env_close(&e);
}

int main(void)
{
	char cmd[128];

	snprintf(scratch, sizeof(scratch), "/tmp/zl-test-events-%d", (int)getpid());
	if (mkdir(scratch, 0700) < 0) {
		perror("mkdir");
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);   /* as in the daemon: the hook must get it back as default */
	TEST_RUN(test_event_json);
	TEST_RUN(test_recent_ring);
	TEST_RUN(test_hook_environment);
	TEST_RUN(test_hook_concurrency_limit);
	TEST_RUN(test_watchers);
	TEST_RUN(test_hook_timeout_kill);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", scratch);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", scratch);
	return TEST_SUMMARY();
}
