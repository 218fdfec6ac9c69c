/* The UAPI socket server: see uapi_server.h. */
#include "wg/io/uapi_server.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include "wg/core/crypto.h"
#include "wg/core/uapi.h"
#include "wg/io/log.h"

enum {
	UAPI_READ_CHUNK = 4096,
	UAPI_READS_PER_EVENT = 16,   /* fairness: at most 64 KiB of requests per wakeup per client */
	UAPI_ACCEPTS_PER_EVENT = 16,
	UAPI_BACKLOG = 64,
};

struct wg_uapi_conn {
	struct wg_loop_source src;
	struct wg_uapi_server *srv;
	struct wg_uapi_session *session;
	struct wg_uapi_buf out;
	size_t out_off;              /* bytes of out already written */
	bool closing;                /* no more requests: close once out is written */
	bool dead;                   /* the peer is gone or misbehaved: close now */
	uint32_t events;             /* what the loop watches */
	struct wg_uapi_conn *prev, *next;
};

/* --- the socket path */

static int socket_path(char *out, size_t outlen, const char *dir, const char *ifname)
{
	int n = snprintf(out, outlen, "%s/%s.sock", dir, ifname);

	return n < 0 || (size_t)n >= outlen ? -ENAMETOOLONG : 0;
}

/* mkdir -p; the last component gets mode 0755 whatever the umask, as `wg` expects to list it. */
static int make_dir(const char *dir)
{
	char tmp[PATH_MAX];
	size_t len = strlen(dir);

	if (len == 0 || len >= sizeof(tmp))
		return -ENAMETOOLONG;
	memcpy(tmp, dir, len + 1);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, 0755) == 0)
		return chmod(tmp, 0755) < 0 ? -errno : 0;
	return errno == EEXIST ? 0 : -errno;
}

/* path fits: socket_path checked its length. */
static void sun_set_path(struct sockaddr_un *a, const char *path)
{
	size_t len = strnlen(path, sizeof(a->sun_path) - 1);

	memcpy(a->sun_path, path, len);
	a->sun_path[len] = '\0';
}

/* 0: nobody answers on path; -EADDRINUSE: a live listener (a full backlog also means alive). */
static int probe_listener(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd, err = 0;

	sun_set_path(&a, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0 || errno == EAGAIN || errno == EINPROGRESS)
		err = -EADDRINUSE;
	else if (errno != ECONNREFUSED && errno != ENOENT)
		err = -errno;
	close(fd);
	return err;
}

int wg_uapi_server_check(const char *dir, const char *ifname)
{
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct stat st;
	int err;

	if (!dir)
		dir = WG_UAPI_DEFAULT_DIR;
	err = socket_path(path, sizeof(path), dir, ifname);
	if (err)
		return err;
	err = make_dir(dir);
	if (err)
		return err;
	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode))
		return -EEXIST;
	err = probe_listener(path);
	if (err)
		return err;
	/* Connection refused: a dead instance left it behind, as `wg` itself assumes. */
	if (unlink(path) < 0 && errno != ENOENT)
		return -errno;
	wg_log_info("removed stale socket %s", path);
	return 0;
}

bool wg_uapi_server_present(const struct wg_uapi_server *s)
{
	struct stat st;

	return lstat(s->path, &st) == 0 && st.st_dev == s->st_dev && st.st_ino == s->st_ino;
}

/* --- connections */

static bool conn_pending(const struct wg_uapi_conn *c)
{
	return c->out.len > c->out_off;
}

static void conn_free(struct wg_uapi_conn *c)
{
	struct wg_uapi_server *s = c->srv;
	int fd = c->src.fd;

	wg_loop_del(s->loop, &c->src);
	close(fd);
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	s->nconns--;
	wg_uapi_session_free(c->session);
	/* A get=1 response holds the private key. */
	if (c->out.data)
		wg_wipe(c->out.data, c->out.cap);
	wg_uapi_buf_free(&c->out);
	free(c);
}

static void conn_write(struct wg_uapi_conn *c)
{
	while (conn_pending(c)) {
		ssize_t n = send(c->src.fd, c->out.data + c->out_off, c->out.len - c->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n > 0) {
			c->out_off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		c->dead = true;       /* EPIPE, ECONNRESET: the client went away */
		return;
	}
	if (!conn_pending(c)) {
		wg_wipe(c->out.data, c->out.len);
		c->out.len = c->out_off = 0;
	} else if (c->out_off > c->out.len / 2) {
		/* Keep the buffer from growing without bound while a slow client catches up. */
		memmove(c->out.data, c->out.data + c->out_off, c->out.len - c->out_off);
		c->out.len -= c->out_off;
		wg_wipe(c->out.data + c->out.len, c->out_off);
		c->out_off = 0;
	}
}

static void conn_read(struct wg_uapi_conn *c)
{
	char buf[UAPI_READ_CHUNK];

	for (int i = 0; i < UAPI_READS_PER_EVENT && !c->closing; i++) {
		ssize_t n;

		if (c->out.len - c->out_off >= WG_UAPI_OUT_HIGH)
			break;
		n = recv(c->src.fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n == 0) {
			c->closing = true;
			break;
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				c->dead = true;
			break;
		}
		if (wg_uapi_session_feed(c->session, buf, (size_t)n, &c->out) == -EPROTO)
			c->closing = true;   /* the error response is queued; close after writing it */
	}
	/* Requests may carry private and preshared keys. */
	wg_wipe(buf, sizeof(buf));
}

/* What to watch: requests while open and not backed up, writability while replies wait. */
static void conn_update(struct wg_uapi_conn *c)
{
	uint32_t want = 0;

	if (!c->closing && c->out.len - c->out_off < WG_UAPI_OUT_HIGH)
		want |= EPOLLIN;
	if (conn_pending(c))
		want |= EPOLLOUT;
	if (want != c->events && wg_loop_mod(c->srv->loop, &c->src, want) == 0)
		c->events = want;
}

static void on_conn(struct wg_loop_source *src, uint32_t events)
{
	struct wg_uapi_conn *c = wg_container_of(src, struct wg_uapi_conn, src);

	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
		conn_read(c);
	if (!c->dead)
		conn_write(c);
	if (c->dead || (c->closing && !conn_pending(c)) || (events & EPOLLERR)) {
		conn_free(c);
		return;
	}
	/* Hung up with nothing to say: a client that half-closes still gets its replies (closing above). */
	conn_update(c);
}

static void conn_new(struct wg_uapi_server *s, int fd)
{
	struct wg_uapi_conn *c = calloc(1, sizeof(*c));

	if (!c || !(c->session = wg_uapi_session_new(s->dev))) {
		free(c);
		close(fd);
		wg_log_error_rl("UAPI: out of memory for a connection");
		return;
	}
	c->srv = s;
	c->events = EPOLLIN;
	if (wg_loop_add(s->loop, &c->src, fd, EPOLLIN, on_conn) < 0) {
		wg_uapi_session_free(c->session);
		free(c);
		close(fd);
		return;
	}
	c->next = s->conns;
	if (s->conns)
		s->conns->prev = c;
	s->conns = c;
	s->nconns++;
}

static void on_listen(struct wg_loop_source *src, uint32_t events)
{
	struct wg_uapi_server *s = wg_container_of(src, struct wg_uapi_server, listen_src);

	for (int i = 0; i < UAPI_ACCEPTS_PER_EVENT; i++) {
		int fd = accept4(src->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				wg_log_error_rl("UAPI accept: %s", strerror(errno));
			return;
		}
		if (s->nconns >= WG_UAPI_MAX_CONNS) {
			wg_log_error_rl("UAPI: too many connections, refusing one");
			close(fd);
			continue;
		}
		conn_new(s, fd);
	}
}

/* --- watching the socket file */

static void on_inotify(struct wg_loop_source *src, uint32_t events)
{
	struct wg_uapi_server *s = wg_container_of(src, struct wg_uapi_server, inotify_src);
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));

	/* Whatever changed in the directory, the socket file's identity is what counts. */
	while (read(src->fd, buf, sizeof(buf)) > 0)
		;
	if (!wg_uapi_server_present(s) && s->gone)
		s->gone(s->ctx);
}

static void watch_dir(struct wg_uapi_server *s)
{
	int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);

	/* Best effort: the engine also checks once a second. */
	if (fd < 0)
		return;
	if (inotify_add_watch(fd, s->dir, IN_DELETE | IN_MOVED_FROM | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR) < 0 ||
	    wg_loop_add(s->loop, &s->inotify_src, fd, EPOLLIN, on_inotify) < 0)
		close(fd);
}

/* --- the listening socket */

static int listen_at(struct wg_uapi_server *s)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	struct stat st;
	mode_t old;
	int fd, err;

	sun_set_path(&a, s->path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* The socket file's mode comes from the umask at bind time: 0600, only root talks to us. */
	old = umask(0077);
	err = bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ? -errno : 0;
	umask(old);
	if (err)
		goto fail_close;
	if (listen(fd, UAPI_BACKLOG) < 0 || lstat(s->path, &st) < 0) {
		err = -errno;
		goto fail_unlink;
	}
	err = wg_loop_add(s->loop, &s->listen_src, fd, EPOLLIN, on_listen);
	if (err)
		goto fail_unlink;
	s->st_dev = st.st_dev;
	s->st_ino = st.st_ino;
	s->created = true;
	return 0;
fail_unlink:
	unlink(s->path);
fail_close:
	close(fd);
	return err;
}

int wg_uapi_server_open(struct wg_uapi_server *s, struct wg_loop *loop, struct wg_device *dev, const char *dir,
			const char *ifname, void (*gone)(void *ctx), void *ctx)
{
	int err;

	memset(s, 0, sizeof(*s));
	s->listen_src.fd = s->inotify_src.fd = -1;
	s->loop = loop;
	s->dev = dev;
	s->gone = gone;
	s->ctx = ctx;
	if (!dir)
		dir = WG_UAPI_DEFAULT_DIR;
	if (strlen(dir) >= sizeof(s->dir))
		return -ENAMETOOLONG;
	strcpy(s->dir, dir);
	err = socket_path(s->path, sizeof(s->path), dir, ifname);
	if (!err)
		err = wg_uapi_server_check(dir, ifname);
	if (!err)
		err = listen_at(s);
	if (err) {
		wg_uapi_server_close(s);
		return err;
	}
	watch_dir(s);
	return 0;
}

void wg_uapi_server_close(struct wg_uapi_server *s)
{
	int fd;

	while (s->conns)
		conn_free(s->conns);
	if ((fd = s->inotify_src.fd) >= 0) {
		wg_loop_del(s->loop, &s->inotify_src);
		close(fd);
	}
	if ((fd = s->listen_src.fd) >= 0) {
		wg_loop_del(s->loop, &s->listen_src);
		close(fd);
	}
	/* Never remove a socket that a newer instance put in place of ours. */
	if (s->created && wg_uapi_server_present(s))
		unlink(s->path);
	s->created = false;
}
