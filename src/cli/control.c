/* Control-socket client: see control.h. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli/control.h"
#include "cli/net.h"
#include "overlay/frame.h"

enum { READ_CHUNK = 64 * 1024 };

static enum cli_control_status say(char *msg, size_t len, enum cli_control_status st, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static enum cli_control_status say(char *msg, size_t len, enum cli_control_status st, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, len, fmt, ap);
	va_end(ap);
	return st;
}

/* A connected, non-blocking socket, or -errno. */
static int dial(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, e;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || fcntl(fd, F_SETFL, O_NONBLOCK) < 0) {
		e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

/* One frame: 0 with *out, -ETIMEDOUT, -ECONNRESET (the daemon went away), -EPROTO (garbage, message in
 * the decoder), -ENOMEM. */
static int recv_frame(int fd, struct zl_frame_decoder *d, int64_t deadline, json_object **out)
{
	uint8_t *buf = malloc(READ_CHUNK);
	int rc = -ENOMEM;

	while (buf) {
		ssize_t n = recv(fd, buf, READ_CHUNK, 0);
		size_t used;
		int r;

		if (n > 0) {
			r = zl_frame_decoder_feed(d, buf, (size_t)n, &used, out);
			if (r != 0) {
				rc = r > 0 ? 0 : -EPROTO;
				break;
			}
			continue;
		}
		if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
			rc = -ECONNRESET;
			break;
		}
		if (errno == EAGAIN && (r = cli_wait_fd(fd, POLLIN, deadline)) < 0) {
			rc = r;
			break;
		}
	}
	free(buf);
	return rc;
}

static json_object *build_request(uint64_t id, const char *type, json_object *args)
{
	json_object *req, *env = zl_frame_request_new(id, type, &req);

	if (env && args && json_object_is_type(args, json_type_object)) {
		json_object_object_foreach(args, key, val)
		{
			if (json_object_object_add(req, key, json_object_get(val)) < 0) {
				json_object_put(val);
				json_object_put(env);
				return NULL;
			}
		}
	}
	return env;
}

/* What one connection attempt came to. */
enum attempt_result {
	ATTEMPT_DONE,          /* *st and msg are final */
	ATTEMPT_DIAL_FAILED,   /* nothing sent: safe to retry */
	ATTEMPT_BROKEN,        /* the request was (maybe) delivered, then the connection broke */
};

struct call {
	const struct cli_ctx *ctx;
	const char *type;
	const uint8_t *frame;
	size_t frame_len;
	uint64_t id;
	int64_t deadline;
	int dial_errno;
	json_object **body;
	char *msg;
	size_t msglen;
	enum cli_control_status st;
};

static enum attempt_result take_answer(struct call *c, json_object *frame)
{
	struct zl_frame_response resp;
	char err[CLI_MSG_LEN];

	if (!zl_frame_response_parse(frame, &resp, err, sizeof(err))) {
		c->st = say(c->msg, c->msglen, CLI_CONTROL_FAILED, "bad answer from zl-overlayd: %s", err);
	} else if (resp.id != c->id) {
		c->st = say(c->msg, c->msglen, CLI_CONTROL_FAILED, "bad answer from zl-overlayd: id %llu, expected %llu",
			    (unsigned long long)resp.id, (unsigned long long)c->id);
	} else if (!resp.ok) {
		c->st = say(c->msg, c->msglen, CLI_CONTROL_REFUSED, "%s", resp.message);
	} else {
		*c->body = json_object_get(resp.body);
		c->st = CLI_CONTROL_OK;
	}
	json_object_put(frame);
	return ATTEMPT_DONE;
}

static enum attempt_result attempt(struct call *c)
{
	struct zl_frame_decoder d;
	json_object *frame = NULL;
	int fd = dial(c->ctx->socket_path), r;

	if (fd < 0) {
		c->dial_errno = -fd;
		if (fd == -EACCES || fd == -ENAMETOOLONG || fd == -ENOTDIR) {
			c->st = say(c->msg, c->msglen, CLI_CONTROL_FAILED, "cannot connect to %s: %s",
				    c->ctx->socket_path, strerror(-fd));
			return ATTEMPT_DONE;
		}
		return ATTEMPT_DIAL_FAILED;
	}
	r = cli_send_all(fd, c->frame, c->frame_len, c->deadline);
	if (r == 0) {
		zl_frame_decoder_init(&d, 0);
		r = recv_frame(fd, &d, c->deadline, &frame);
		if (r == -EPROTO)
			say(c->msg, c->msglen, CLI_CONTROL_FAILED, "bad answer from zl-overlayd: %s",
			    zl_frame_decoder_error(&d));
		zl_frame_decoder_free(&d);
	} else if (r != -ETIMEDOUT) {
		close(fd);
		c->dial_errno = -r;
		return ATTEMPT_DIAL_FAILED; /* the daemon never got the whole request */
	}
	close(fd);
	if (r == 0)
		return take_answer(c, frame);
	if (r == -ECONNRESET)
		return ATTEMPT_BROKEN;
	c->st = CLI_CONTROL_FAILED;
	if (r == -ETIMEDOUT)
		say(c->msg, c->msglen, c->st, "zl-overlayd did not answer '%s' within %u s", c->type,
		    c->ctx->timeout_ms / 1000);
	else if (r == -ENOMEM)
		say(c->msg, c->msglen, c->st, "out of memory");
	return ATTEMPT_DONE;
}

static enum cli_control_status give_up(struct call *c, enum attempt_result last)
{
	if (last == ATTEMPT_BROKEN)
		return say(c->msg, c->msglen, CLI_CONTROL_FAILED, "the connection to zl-overlayd keeps breaking");
	if (c->dial_errno == ENOENT)
		return say(c->msg, c->msglen, CLI_CONTROL_NOT_RUNNING, "zl-overlayd is not running (no %s)",
			   c->ctx->socket_path);
	return say(c->msg, c->msglen, CLI_CONTROL_NOT_RUNNING, "zl-overlayd is not running (%s refuses connections: %s)",
		   c->ctx->socket_path, strerror(c->dial_errno));
}

static enum cli_control_status run_call(struct call *c, bool idempotent)
{
	int64_t limit = 0;

	for (unsigned n = 0;; n++) {
		enum attempt_result r = attempt(c);
		int64_t now = cli_now_ms(), delay;

		if (r == ATTEMPT_DONE)
			return c->st;
		if (r == ATTEMPT_DIAL_FAILED && n == 0 && c->dial_errno == ENOENT)
			return give_up(c, r); /* no socket at all: no daemon to wait for */
		if (r == ATTEMPT_BROKEN && !idempotent)
			return say(c->msg, c->msglen, CLI_CONTROL_FAILED,
				   "the connection to zl-overlayd broke before it answered '%s'; it may or may not "
				   "have been carried out (check with 'zl-overlay status')",
				   c->type);
		if (!limit)
			limit = now + CLI_REDIAL_BUDGET_MS < c->deadline ? now + CLI_REDIAL_BUDGET_MS : c->deadline;
		if (now >= limit)
			return give_up(c, r);
		delay = zl_backoff_delay_ms(NULL, n, 0);
		cli_sleep_ms(delay < limit - now ? delay : limit - now);
	}
}

enum cli_control_status cli_control_call(const struct cli_ctx *ctx, const char *type, json_object *args,
					 bool idempotent, json_object **body, char *msg, size_t msglen)
{
	struct call c = { .ctx = ctx, .type = type, .id = 1, .body = body, .msg = msg, .msglen = msglen };
	json_object *env = build_request(c.id, type, args);
	uint8_t *frame = NULL;
	enum cli_control_status st;

	*body = NULL;
	msg[0] = '\0';
	if (!env || zl_frame_encode(env, 0, &frame, &c.frame_len) < 0) {
		json_object_put(env);
		return say(msg, msglen, CLI_CONTROL_FAILED, "cannot encode the '%s' request", type);
	}
	json_object_put(env);
	c.frame = frame;
	c.deadline = cli_now_ms() + ctx->timeout_ms;
	st = run_call(&c, idempotent);
	free(frame);
	return st;
}

int cli_control_report(const struct cli_ctx *ctx, const char *type, enum cli_control_status st, const char *msg)
{
	size_t n = strlen(type);

	if (st == CLI_CONTROL_OK)
		return CLI_EXIT_OK;
	/* The daemon names the request ("remove_peer: no member 'x'"); our prefix names the command already. */
	if (st == CLI_CONTROL_REFUSED && !strncmp(msg, type, n) && !strncmp(msg + n, ": ", 2) && msg[n + 2])
		msg += n + 2;
	return cli_fail(ctx, CLI_EXIT_FAIL, "%s", msg);
}

int cli_control_run(const struct cli_ctx *ctx, const char *type, json_object *args, bool idempotent,
		    json_object **body)
{
	char msg[CLI_MSG_LEN];
	enum cli_control_status st = cli_control_call(ctx, type, args, idempotent, body, msg, sizeof(msg));

	return cli_control_report(ctx, type, st, msg);
}

bool cli_control_alive(const struct cli_ctx *ctx)
{
	int fd = dial(ctx->socket_path);

	if (fd < 0)
		return false;
	close(fd);
	return true;
}
