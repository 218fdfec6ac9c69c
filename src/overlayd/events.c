/* Health transitions: log, watchers, hook, recent history. See events.h. */
#include "overlayd/events.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "overlayd/control_server.h"
#include "overlayd/log.h"

extern char **environ;

enum {
	REAP_PERIOD_MS = 100,    /* how often running hooks are looked at (exit, timeout) */
	HOOK_ENV_VARS = 7,       /* the ZL_* variables of events.h */
	ENV_VAR_MAX = 512,       /* "ZL_NAME=" + a 253-byte name fits easily */
};

struct hook {
	pid_t pid;               /* 0 = free slot */
	uint64_t started_ns;
	bool killed;
	char what[64];           /* "peer.down" etc., for the exit log line */
};

struct od_events {
	struct od_node *node;
	const char *cmd;                       /* NULL = no hook */
	struct od_event ring[OD_EVENTS_KEEP];  /* the last events; oldest at ring_start */
	size_t ring_start, ring_count;
	struct hook hooks[OD_HOOK_MAX_RUNNING];
	size_t n_running;
	struct od_timer reap_timer;
};

static const char *kind_name(enum od_event_kind k)
{
	return k == OD_EVENT_PEER ? "peer" : "service";
}

/* ---- ring of recent events */

static void keep(struct od_events *e, const struct od_event *ev)
{
	size_t slot = (e->ring_start + e->ring_count) % OD_EVENTS_KEEP;

	e->ring[slot] = *ev;
	if (e->ring_count < OD_EVENTS_KEEP)
		e->ring_count++;
	else
		e->ring_start = (e->ring_start + 1) % OD_EVENTS_KEEP;
}

/* ---- hook children */

static void log_exit(const struct hook *h, int status)
{
	if (h->killed)
		od_error("hook.killed", "pid=%d for=%s after_ms=%d", (int)h->pid, h->what, OD_HOOK_TIMEOUT_MS);
	else if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		od_info("hook.exited", "pid=%d for=%s status=0", (int)h->pid, h->what);
	else if (WIFEXITED(status))
		od_error("hook.exited", "pid=%d for=%s status=%d", (int)h->pid, h->what, WEXITSTATUS(status));
	else
		od_error("hook.exited", "pid=%d for=%s signal=%d", (int)h->pid, h->what, WTERMSIG(status));
}

/* Reaps finished hooks and kills overdue ones: waitpid on our own pids only, so children that other
 * parts of the daemon might start one day are never stolen. */
static void check_hooks(struct od_events *e)
{
	uint64_t now = od_now_ns();

	for (size_t i = 0; i < OD_HOOK_MAX_RUNNING; i++) {
		struct hook *h = &e->hooks[i];
		int status;
		pid_t r;

		if (!h->pid)
			continue;
		r = waitpid(h->pid, &status, WNOHANG);
		if (r == h->pid || (r < 0 && errno == ECHILD)) {
			if (r == h->pid)
				log_exit(h, status);
			h->pid = 0;
			e->n_running--;
			continue;
		}
		if (!h->killed && now - h->started_ns >= (uint64_t)OD_HOOK_TIMEOUT_MS * 1000000ull) {
			/* The hook has its own process group: whatever it started goes too. */
			kill(-h->pid, SIGKILL);
			kill(h->pid, SIGKILL);
			h->killed = true;
		}
	}
}

static void on_reap_timer(struct od_timer *t)
{
	struct od_events *e = wg_container_of(t, struct od_events, reap_timer);

	check_hooks(e);
	if (e->n_running)
		od_timer_arm(&e->node->timers, &e->reap_timer, REAP_PERIOD_MS);
}

static bool is_zl_var(const char *v)
{
	return strncmp(v, "ZL_", 3) == 0;
}

/* The daemon's environment without any ZL_* variable, then the event's: a hook never sees a stale or
 * forged ZL_ value. vars holds the text of the new ones. NULL when out of memory. */
static char **hook_env(const struct od_event *ev, char vars[HOOK_ENV_VARS][ENV_VAR_MAX])
{
	size_t n = 0, k = 0;
	char **env;

	for (char **p = environ; p && *p; p++)
		n++;
	env = calloc(n + HOOK_ENV_VARS + 1, sizeof(*env));
	if (!env)
		return NULL;
	for (char **p = environ; p && *p; p++) {
		if (!is_zl_var(*p))
			env[k++] = *p;
	}
	snprintf(vars[0], ENV_VAR_MAX, "ZL_EVENT=%s", kind_name(ev->kind));
	snprintf(vars[1], ENV_VAR_MAX, "ZL_STATE=%s", ev->up ? "up" : "down");
	snprintf(vars[2], ENV_VAR_MAX, "ZL_ADDRESS=%s", ev->address);
	snprintf(vars[3], ENV_VAR_MAX, "ZL_NAME=%s", ev->name);
	snprintf(vars[4], ENV_VAR_MAX, "ZL_HOSTNAME=%s", ev->hostname);
	if (ev->port)
		snprintf(vars[5], ENV_VAR_MAX, "ZL_PORT=%u", (unsigned)ev->port);
	else
		snprintf(vars[5], ENV_VAR_MAX, "ZL_PORT=");
	snprintf(vars[6], ENV_VAR_MAX, "ZL_REASON=%s", ev->reason);
	for (size_t i = 0; i < HOOK_ENV_VARS; i++)
		env[k++] = vars[i];
	env[k] = NULL;
	return env;
}

/* Signals the daemon ignores (SIGPIPE) would stay ignored across exec; the hook gets defaults, no
 * blocked signals, its own process group (so a timeout kills all of it), stdin from /dev/null and
 * stdout on the daemon's stderr. */
static int spawn_attrs(posix_spawnattr_t *attr, posix_spawn_file_actions_t *fa)
{
	sigset_t none, dflt;
	int rc;

	sigemptyset(&none);
	sigemptyset(&dflt);
	sigaddset(&dflt, SIGPIPE);
	sigaddset(&dflt, SIGINT);
	sigaddset(&dflt, SIGTERM);
	sigaddset(&dflt, SIGHUP);
	sigaddset(&dflt, SIGCHLD);
	if ((rc = posix_spawnattr_init(attr)))
		return -rc;
	if ((rc = posix_spawn_file_actions_init(fa))) {
		posix_spawnattr_destroy(attr);
		return -rc;
	}
	rc = posix_spawnattr_setflags(attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
	rc = rc ? rc : posix_spawnattr_setsigmask(attr, &none);
	rc = rc ? rc : posix_spawnattr_setsigdefault(attr, &dflt);
	rc = rc ? rc : posix_spawnattr_setpgroup(attr, 0);
	rc = rc ? rc : posix_spawn_file_actions_addopen(fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
	rc = rc ? rc : posix_spawn_file_actions_adddup2(fa, STDERR_FILENO, STDOUT_FILENO);
	if (rc) {
		posix_spawn_file_actions_destroy(fa);
		posix_spawnattr_destroy(attr);
	}
	return -rc;
}

static struct hook *free_slot(struct od_events *e)
{
	for (size_t i = 0; i < OD_HOOK_MAX_RUNNING; i++) {
		if (!e->hooks[i].pid)
			return &e->hooks[i];
	}
	return NULL;
}

static void run_hook(struct od_events *e, const struct od_event *ev, const char *what)
{
	char vars[HOOK_ENV_VARS][ENV_VAR_MAX];
	char *argv[] = { "/bin/sh", "-c", (char *)e->cmd, NULL };
	posix_spawnattr_t attr;
	posix_spawn_file_actions_t fa;
	struct hook *h;
	char **env;
	pid_t pid;
	int rc;

	check_hooks(e);   /* a slot may have freed since the last timer */
	if (!(h = free_slot(e))) {
		od_error("hook.skipped", "for=%s name=%s running=%d", what, od_q(ev->name), OD_HOOK_MAX_RUNNING);
		return;
	}
	if (!(env = hook_env(ev, vars))) {
		od_error("hook.error", "for=%s err=%s", what, od_q(strerror(ENOMEM)));
		return;
	}
	rc = spawn_attrs(&attr, &fa);
	if (!rc) {
		rc = -posix_spawn(&pid, argv[0], &fa, &attr, argv, env);
		posix_spawn_file_actions_destroy(&fa);
		posix_spawnattr_destroy(&attr);
	}
	free(env);
	if (rc) {
		od_error("hook.error", "for=%s err=%s", what, od_q(strerror(-rc)));
		return;
	}
	h->pid = pid;
	h->started_ns = od_now_ns();
	h->killed = false;
	snprintf(h->what, sizeof(h->what), "%s", what);
	e->n_running++;
	od_debug("hook.started", "pid=%d for=%s", (int)pid, what);
	if (!e->reap_timer.armed)
		od_timer_arm(&e->node->timers, &e->reap_timer, REAP_PERIOD_MS);
}

/* ---- public */

int od_events_open(struct od_node *n, char *err, size_t errlen)
{
	struct od_events *e = calloc(1, sizeof(*e));

	if (!e) {
		snprintf(err, errlen, "events: %s", strerror(ENOMEM));
		return -ENOMEM;
	}
	e->node = n;
	e->cmd = n->opts.on_change && *n->opts.on_change ? n->opts.on_change : NULL;
	od_timer_init(&e->reap_timer, on_reap_timer);
	n->events = e;
	return 0;
}

void od_events_close(struct od_node *n)
{
	struct od_events *e = n->events;

	if (!e)
		return;
	check_hooks(e);   /* whatever already finished is reaped now */
	od_timer_cancel(&n->timers, &e->reap_timer);
	free(e);
	n->events = NULL;
}

static void log_event(const struct od_event *ev, const char *what)
{
	if (ev->kind == OD_EVENT_PEER)
		od_info(what, "name=%s address=%s hostname=%s reason=%s", od_q(ev->name), od_q(ev->address),
			od_q(ev->hostname), od_q(ev->reason));
	else
		od_info(what, "name=%s address=%s port=%u reason=%s", od_q(ev->name), od_q(ev->address),
			(unsigned)ev->port, od_q(ev->reason));
}

void od_events_emit(struct od_node *n, const struct od_event *in)
{
	struct od_event ev = *in;
	char what[32];

	if (!ev.time)
		ev.time = (int64_t)time(NULL);
	snprintf(what, sizeof(what), "%s.%s", kind_name(ev.kind), ev.up ? "up" : "down");
	log_event(&ev, what);
	if (n->events)
		keep(n->events, &ev);
	if (n->control) {
		json_object *j = od_event_json(&ev);

		if (j)
			od_control_broadcast_event(n, j);
	}
	if (n->events && n->events->cmd)
		run_hook(n->events, &ev, what);
}

json_object *od_event_json(const struct od_event *ev)
{
	json_object *o = json_object_new_object();

	if (!o)
		return NULL;
	json_object_object_add(o, "kind", json_object_new_string(kind_name(ev->kind)));
	json_object_object_add(o, "state", json_object_new_string(ev->up ? "up" : "down"));
	json_object_object_add(o, "name", json_object_new_string(ev->name));
	json_object_object_add(o, "address", json_object_new_string(ev->address));
	json_object_object_add(o, "hostname", json_object_new_string(ev->hostname));
	json_object_object_add(o, "port", json_object_new_int(ev->port));
	json_object_object_add(o, "reason", json_object_new_string(ev->reason));
	json_object_object_add(o, "time", json_object_new_int64(ev->time));
	return o;
}

json_object *od_events_recent_json(const struct od_node *n)
{
	const struct od_events *e = n->events;
	json_object *a = json_object_new_array();

	for (size_t i = 0; a && e && i < e->ring_count; i++) {
		json_object *o = od_event_json(&e->ring[(e->ring_start + i) % OD_EVENTS_KEEP]);

		if (!o || json_object_array_add(a, o) < 0) {
			json_object_put(o);
			json_object_put(a);
			return NULL;
		}
	}
	return a;
}
