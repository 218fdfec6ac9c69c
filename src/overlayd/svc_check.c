/* Health checks of registered service addresses: see svc_check.h.
 *
 * One struct check per checked address record, found by (name, addr) -- the identity of an address
 * record -- in a small hash table. Each check is a little state machine driven by one od_timer and
 * at most one socket: IDLE -(timer)-> CONNECTING -> [HTTP: SENDING -> READING] -> IDLE, the same timer
 * serving as the attempt's deadline while it is in flight.
 *
 * Lifetimes: a check removed by a sync may still have an event pending in the current loop round, so
 * it is unregistered from the loop at once and freed from a later round (od_timers_defer). A new
 * attempt always starts from the timer, never in the round that closed the previous socket, so a
 * stale event cannot reach the new socket. */
#include "overlayd/svc_check.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "overlayd/dns.h"
#include "overlayd/events.h"
#include "overlayd/log.h"
#include "overlayd/net.h"

enum {
	TIME_LIMIT_MS = 5000,      /* per attempt, and never beyond the interval */
	FIRST_SPREAD_MS = 1000,    /* first attempts spread over up to this, so many checks do not burst */
	HTTP_READ_MAX = 4096,      /* the status line must come within this many bytes */
	HTTP_REQ_MAX = 512,
};

enum phase { IDLE, CONNECTING, SENDING, READING };

struct check {
	struct od_svc_checks *owner;
	char name[ZL_DNS_NAME_SIZE];
	char addr[ZL_ADDR_STRLEN];
	struct zl_state_dns_check spec;
	struct zl_ip ip;
	enum od_svc_state state;
	uint32_t failures;           /* consecutive */
	enum phase phase;
	uint64_t started_ns;
	struct od_timer timer;
	struct wg_loop_source src;
	char *req;                   /* HTTP request while in flight */
	size_t req_len, req_off;
	char *resp;                  /* HTTP answer so far (HTTP_READ_MAX + 1) */
	size_t resp_len;
	struct check *hnext;         /* hash chain */
	bool kept;                   /* during a sync: matched by a record */
};

struct od_svc_checks {
	struct od_node *node;
	struct check **v;
	size_t n;
	struct check **buckets;
	size_t n_buckets;            /* a power of two, or 0 */
};

/* ---- lookup */

static uint64_t hash_key(const char *name, const char *addr)
{
	uint64_t h = 0xcbf29ce484222325ull;   /* FNV-1a */

	for (const char *p = name; *p; p++)
		h = (h ^ (uint8_t)*p) * 0x100000001b3ull;
	h = (h ^ 0xff) * 0x100000001b3ull;    /* a separator no name contains */
	for (const char *p = addr; *p; p++)
		h = (h ^ (uint8_t)*p) * 0x100000001b3ull;
	return h;
}

static struct check *find(const struct od_svc_checks *cs, const char *name, const char *addr)
{
	struct check *c;

	if (!cs || !cs->n_buckets)
		return NULL;
	c = cs->buckets[hash_key(name, addr) & (cs->n_buckets - 1)];
	for (; c; c = c->hnext) {
		if (!strcmp(c->name, name) && !strcmp(c->addr, addr))
			return c;
	}
	return NULL;
}

static bool same_spec(const struct zl_state_dns_check *a, const struct zl_state_dns_check *b)
{
	return a->kind == b->kind && a->port == b->port && a->interval_s == b->interval_s &&
	       a->threshold == b->threshold && (a->kind != ZL_CHECK_HTTP || !strcmp(a->path, b->path));
}

static bool is_checked(const struct zl_state_dns_record *rec)
{
	return rec->kind == ZL_DNS_ADDR && rec->check.kind != ZL_CHECK_NONE;
}

/* ---- one attempt */

static uint64_t time_limit_ms(const struct check *c)
{
	uint64_t interval = (uint64_t)c->spec.interval_s * 1000u;

	return interval < TIME_LIMIT_MS ? interval : TIME_LIMIT_MS;
}

static void close_attempt(struct check *c)
{
	struct od_node *n = c->owner->node;

	if (c->src.fd >= 0) {
		int fd = c->src.fd;

		wg_loop_del(n->loop, &c->src);
		close(fd);
	}
	free(c->req);
	free(c->resp);
	c->req = c->resp = NULL;
	c->phase = IDLE;
}

static void set_state(struct check *c, enum od_svc_state s, const char *reason)
{
	struct od_node *n = c->owner->node;
	bool dns_changed = (s == OD_SVC_DOWN) != (c->state == OD_SVC_DOWN);
	struct od_event ev;

	c->state = s;
	memset(&ev, 0, sizeof(ev));
	ev.kind = OD_EVENT_SERVICE;
	ev.up = s == OD_SVC_UP;
	snprintf(ev.name, sizeof(ev.name), "%s", c->name);
	snprintf(ev.address, sizeof(ev.address), "%s", c->addr);
	ev.port = c->spec.port;
	snprintf(ev.reason, sizeof(ev.reason), "%s", reason);
	od_events_emit(n, &ev);
	/* Answers change only when the address enters or leaves DOWN (unknown and up both count as up). */
	if (dns_changed && n->dns)
		od_dns_refresh(n);
}

/* Ends the attempt with a verdict and schedules the next one, interval after this one started. */
static void finish(struct check *c, bool ok, const char *reason)
{
	struct od_node *n = c->owner->node;
	uint64_t next = c->started_ns + (uint64_t)c->spec.interval_s * 1000000000ull, now = od_now_ns();

	close_attempt(c);
	if (ok) {
		c->failures = 0;
		if (c->state != OD_SVC_UP)
			set_state(c, OD_SVC_UP, reason);
	} else {
		if (c->failures < UINT32_MAX)
			c->failures++;
		od_debug("svc_check.failed", "name=%s address=%s port=%u reason=%s failures=%u", od_q(c->name),
			 od_q(c->addr), (unsigned)c->spec.port, od_q(reason), c->failures);
		if (c->failures >= c->spec.threshold && c->state != OD_SVC_DOWN)
			set_state(c, OD_SVC_DOWN, reason);
	}
	od_timer_arm(&n->timers, &c->timer, next > now ? (next - now) / 1000000u : 0);
}

static const char *errno_reason(int e)
{
	switch (e) {
	case ECONNREFUSED: return "connect refused";
	case ETIMEDOUT: return "timeout";
	case EHOSTUNREACH:
	case ENETUNREACH: return "unreachable";
	case ECONNRESET:
	case EPIPE: return "connection reset";
	default: return strerror(e);
	}
}

/* "HTTP/1.x DDD ..." -> DDD, or -1 when the line is not an HTTP/1 status line. */
static int status_code(const char *line, size_t len)
{
	size_t i = 8;
	int code = 0;

	if (len < 12 || memcmp(line, "HTTP/1.", 7) != 0 || line[7] < '0' || line[7] > '9' || line[8] != ' ')
		return -1;
	while (i < len && line[i] == ' ')
		i++;
	for (int d = 0; d < 3; d++, i++) {
		if (i >= len || line[i] < '0' || line[i] > '9')
			return -1;
		code = code * 10 + (line[i] - '0');
	}
	if (i < len && line[i] != ' ' && line[i] != '\r' && line[i] != '\n')
		return -1;
	return code;
}

static void judge_http(struct check *c)
{
	char *eol = memchr(c->resp, '\n', c->resp_len);
	int code = status_code(c->resp, eol ? (size_t)(eol - c->resp) : c->resp_len);
	char reason[32];

	if (code < 0) {
		finish(c, false, c->resp_len ? "bad HTTP answer" : "connection closed");
		return;
	}
	snprintf(reason, sizeof(reason), "HTTP %d", code);
	finish(c, code >= 200 && code <= 299, reason);
}

static void on_readable(struct check *c)
{
	for (;;) {
		ssize_t got = recv(c->src.fd, c->resp + c->resp_len, HTTP_READ_MAX - c->resp_len, MSG_DONTWAIT);

		if (got < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (got < 0) {
			finish(c, false, errno_reason(errno));
			return;
		}
		c->resp_len += (size_t)got;
		/* Judged at the first line end, at the end of the stream, or when the limit is reached. */
		if (got == 0 || c->resp_len == HTTP_READ_MAX || memchr(c->resp, '\n', c->resp_len)) {
			judge_http(c);
			return;
		}
	}
}

static void on_writable(struct check *c)
{
	while (c->req_off < c->req_len) {
		ssize_t sent = send(c->src.fd, c->req + c->req_off, c->req_len - c->req_off, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (sent < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (sent < 0) {
			finish(c, false, errno_reason(errno));
			return;
		}
		c->req_off += (size_t)sent;
	}
	c->phase = READING;
	wg_loop_mod(c->owner->node->loop, &c->src, EPOLLIN);
}

static bool start_http(struct check *c)
{
	char host[ZL_ADDR_STRLEN + 8];
	int len;

	if (c->ip.family == AF_INET6)
		snprintf(host, sizeof(host), "[%s]:%u", c->addr, (unsigned)c->spec.port);
	else
		snprintf(host, sizeof(host), "%s:%u", c->addr, (unsigned)c->spec.port);
	c->req = malloc(HTTP_REQ_MAX);
	c->resp = malloc(HTTP_READ_MAX + 1);
	if (!c->req || !c->resp)
		return false;
	len = snprintf(c->req, HTTP_REQ_MAX, "GET %s HTTP/1.0\r\nHost: %s\r\nUser-Agent: zl-overlayd\r\n"
		       "Connection: close\r\n\r\n", c->spec.path, host);
	if (len < 0 || len >= HTTP_REQ_MAX)
		return false;
	c->req_len = (size_t)len;
	c->req_off = c->resp_len = 0;
	c->phase = SENDING;
	return wg_loop_mod(c->owner->node->loop, &c->src, EPOLLOUT) == 0;
}

static void on_connected(struct check *c)
{
	if (c->spec.kind == ZL_CHECK_TCP) {
		finish(c, true, "connected");
		return;
	}
	if (!start_http(c))
		finish(c, false, strerror(ENOMEM));
	else
		on_writable(c);
}

static void on_socket(struct wg_loop_source *src, uint32_t events)
{
	struct check *c = wg_container_of(src, struct check, src);
	int soerr = 0;
	socklen_t len = sizeof(soerr);

	switch (c->phase) {
	case CONNECTING:
		if (getsockopt(src->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
			soerr = errno;
		if (soerr) {
			finish(c, false, errno_reason(soerr));
			return;
		}
		if (!(events & EPOLLOUT))
			return;
		on_connected(c);
		return;
	case SENDING:
		on_writable(c);
		return;
	case READING:
		on_readable(c);
		return;
	case IDLE:
		return;
	}
}

/* Errors of this host (no descriptors, no memory) say nothing about the service: no verdict. */
static bool local_error(int e)
{
	return e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM;
}

static void start_attempt(struct check *c)
{
	struct od_node *n = c->owner->node;
	struct sockaddr_storage ss;
	socklen_t sl = od_sockaddr_make(&c->ip, c->spec.port, &ss);
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), e;

	c->started_ns = od_now_ns();
	e = fd < 0 ? errno : -wg_loop_add(n->loop, &c->src, fd, EPOLLOUT, on_socket);
	if (e) {
		if (fd >= 0)
			close(fd);
		od_error("svc_check.local_error", "name=%s address=%s err=%s", od_q(c->name), od_q(c->addr),
			 od_q(strerror(e)));
		od_timer_arm(&n->timers, &c->timer, (uint64_t)c->spec.interval_s * 1000u);
		return;
	}
	c->phase = CONNECTING;
	od_timer_arm(&n->timers, &c->timer, time_limit_ms(c));
	if (connect(fd, (struct sockaddr *)&ss, sl) == 0) {
		on_connected(c);
	} else if (errno != EINPROGRESS) {
		e = errno;
		if (local_error(e)) {
			close_attempt(c);
			od_timer_arm(&n->timers, &c->timer, (uint64_t)c->spec.interval_s * 1000u);
			return;
		}
		finish(c, false, errno_reason(e));
	}
}

/* Idle: time for the next attempt. In flight: the time limit passed. */
static void on_timer(struct od_timer *t)
{
	struct check *c = wg_container_of(t, struct check, timer);

	if (c->phase == IDLE)
		start_attempt(c);
	else
		finish(c, false, "timeout");
}

/* ---- set of checks */

static struct check *check_new(struct od_svc_checks *cs, const struct zl_state_dns_record *rec)
{
	struct check *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	if (zl_ip_parse(rec->addr, &c->ip, NULL, 0) != 0) {
		free(c);   /* the state was validated: cannot happen */
		return NULL;
	}
	c->owner = cs;
	snprintf(c->name, sizeof(c->name), "%s", rec->name);
	snprintf(c->addr, sizeof(c->addr), "%s", rec->addr);
	c->spec = rec->check;
	c->state = OD_SVC_UNKNOWN;
	c->src.fd = -1;
	od_timer_init(&c->timer, on_timer);
	od_timer_arm(&cs->node->timers, &c->timer, randombytes_uniform(FIRST_SPREAD_MS));
	return c;
}

static void check_free(void *obj)
{
	free(obj);
}

/* Stops c now; the memory goes in a later round (an event of its socket may still be pending). */
static void check_drop(struct check *c)
{
	od_timer_cancel(&c->owner->node->timers, &c->timer);
	close_attempt(c);
	od_timers_defer(&c->owner->node->timers, check_free, c);
}

static bool rebuild_hash(struct od_svc_checks *cs)
{
	size_t nb = 16;
	struct check **b;

	while (nb < 2 * cs->n)
		nb *= 2;
	b = calloc(nb, sizeof(*b));
	if (!b)
		return false;
	for (size_t i = 0; i < cs->n; i++) {
		struct check *c = cs->v[i];
		size_t k = hash_key(c->name, c->addr) & (nb - 1);

		c->hnext = b[k];
		b[k] = c;
	}
	free(cs->buckets);
	cs->buckets = b;
	cs->n_buckets = nb;
	return true;
}

int od_svc_checks_open(struct od_node *n, char *err, size_t errlen)
{
	struct od_svc_checks *cs = calloc(1, sizeof(*cs));

	if (!cs) {
		snprintf(err, errlen, "service checks: %s", strerror(ENOMEM));
		return -ENOMEM;
	}
	cs->node = n;
	n->checks = cs;
	od_svc_checks_sync(n);
	return 0;
}

void od_svc_checks_close(struct od_node *n)
{
	struct od_svc_checks *cs = n->checks;

	if (!cs)
		return;
	/* Outside the loop (daemon shutdown): everything goes at once. */
	for (size_t i = 0; i < cs->n; i++) {
		od_timer_cancel(&n->timers, &cs->v[i]->timer);
		close_attempt(cs->v[i]);
		free(cs->v[i]);
	}
	free(cs->v);
	free(cs->buckets);
	free(cs);
	n->checks = NULL;
}

void od_svc_checks_sync(struct od_node *n)
{
	struct od_svc_checks *cs = n->checks;
	struct check **nv;
	size_t nn = 0;

	if (!cs)
		return;
	nv = calloc(n->st.n_dns ? n->st.n_dns : 1, sizeof(*nv));
	if (!nv) {
		od_error("svc_check.sync_failed", "err=%s", od_q(strerror(ENOMEM)));
		return;
	}
	for (size_t i = 0; i < n->st.n_dns; i++) {
		const struct zl_state_dns_record *rec = &n->st.dns[i];
		struct check *c;

		if (!is_checked(rec))
			continue;
		c = find(cs, rec->name, rec->addr);
		if (c && !c->kept && same_spec(&c->spec, &rec->check)) {
			c->kept = true;   /* unchanged: keeps its state and its schedule */
			nv[nn++] = c;
		} else if ((c = check_new(cs, rec))) {
			c->kept = true;
			nv[nn++] = c;
		}
	}
	for (size_t i = 0; i < cs->n; i++) {
		if (!cs->v[i]->kept)
			check_drop(cs->v[i]);
	}
	free(cs->v);
	cs->v = nv;
	cs->n = nn;
	for (size_t i = 0; i < nn; i++)
		nv[i]->kept = false;
	if (!rebuild_hash(cs)) {
		/* The old table points at dropped checks: none at all is safe (every address counts as up). */
		free(cs->buckets);
		cs->buckets = NULL;
		cs->n_buckets = 0;
		od_error("svc_check.sync_failed", "err=%s", od_q(strerror(ENOMEM)));
	}
}

enum od_svc_state od_svc_checks_state(const struct od_node *n, const struct zl_state_dns_record *rec)
{
	const struct check *c;

	if (!is_checked(rec))
		return OD_SVC_UNCHECKED;
	c = find(n->checks, rec->name, rec->addr);
	return c && same_spec(&c->spec, &rec->check) ? c->state : OD_SVC_UNKNOWN;
}

const char *od_svc_state_name(enum od_svc_state s)
{
	switch (s) {
	case OD_SVC_UNCHECKED: return "unchecked";
	case OD_SVC_UNKNOWN: return "unknown";
	case OD_SVC_UP: return "up";
	case OD_SVC_DOWN: return "down";
	}
	return "?";
}

bool od_svc_checks_addr_ok(void *node, const struct zl_state_dns_record *rec)
{
	return od_svc_checks_state(node, rec) != OD_SVC_DOWN;
}
