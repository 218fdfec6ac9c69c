/* zl-overlay watch [--json]: the daemon's health events as they happen (control request "watch",
 * docs/control-api.md). First the events the daemon kept, then every new one, one line each:
 *
 *   2026-11-22T10:00:00Z peer down node-0-3 10.200.0.3 hostname=db1 (3 probes missed)
 *   2026-11-22T10:00:04Z service up web 10.200.0.5:8080 (connected)
 *
 * or with --json one JSON object per line (the daemon's event object). Runs until SIGINT/SIGTERM
 * (exit 0); when the daemon goes away it says so and exits 1. Only the answer to the request is bound
 * by --timeout: events may be hours apart. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/control.h"
#include "cli/net.h"
#include "overlay/frame.h"

enum { READ_CHUNK = 64 * 1024, FIELD_MAX = 256 };

static volatile sig_atomic_t stop_signal;

static void on_stop(int sig)
{
	stop_signal = sig;
}

/* ---- printing */

static const char *field(json_object *o, const char *k, char out[FIELD_MAX])
{
	json_object *v;
	const char *s = json_object_object_get_ex(o, k, &v) && json_object_is_type(v, json_type_string) ?
				json_object_get_string(v) : "";
	size_t i = 0;

	/* Nothing from the daemon reaches the terminal as a control sequence. */
	for (; s[i] && i < FIELD_MAX - 1; i++)
		out[i] = (unsigned char)s[i] < ' ' || s[i] == 0x7f ? '?' : s[i];
	out[i] = '\0';
	return out;
}

static int64_t number(json_object *o, const char *k)
{
	json_object *v;

	return json_object_object_get_ex(o, k, &v) && json_object_is_type(v, json_type_int) ? json_object_get_int64(v) : 0;
}

static void print_line(FILE *f, json_object *ev)
{
	char kind[FIELD_MAX], state[FIELD_MAX], name[FIELD_MAX], addr[FIELD_MAX], host[FIELD_MAX], reason[FIELD_MAX];
	char when[32] = "?";
	time_t t = (time_t)number(ev, "time");
	struct tm tm;

	if (gmtime_r(&t, &tm))
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	field(ev, "kind", kind);
	field(ev, "state", state);
	field(ev, "name", name);
	field(ev, "address", addr);
	field(ev, "hostname", host);
	field(ev, "reason", reason);
	fprintf(f, "%s %s %s %s ", when, kind, state, name);
	if (number(ev, "port") > 0)
		fprintf(f, strchr(addr, ':') ? "[%s]:%lld" : "%s:%lld", addr, (long long)number(ev, "port"));
	else
		fputs(addr, f);
	if (host[0])
		fprintf(f, " hostname=%s", host);
	fprintf(f, " (%s)\n", reason);
}

static void show(const struct cli_ctx *ctx, json_object *ev)
{
	if (!json_object_is_type(ev, json_type_object))
		return;
	if (cli_opt(ctx, CLI_OPT_JSON))
		fprintf(ctx->out, "%s\n", json_object_to_json_string_ext(ev, JSON_C_TO_STRING_PLAIN |
									   JSON_C_TO_STRING_NOSLASHESCAPE));
	else
		print_line(ctx->out, ev);
	fflush(ctx->out);
}

/* ---- the connection */

/* The connected socket, or a negative value after printing why. */
static int dial(const struct cli_ctx *ctx)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), e;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", ctx->socket_path);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && fcntl(fd, F_SETFL, O_NONBLOCK) == 0)
		return fd;
	e = errno;
	if (fd >= 0)
		close(fd);
	if (e == ENOENT)
		return -cli_fail(ctx, CLI_EXIT_FAIL, "zl-overlayd is not running (no %s)", ctx->socket_path);
	if (e == ECONNREFUSED)
		return -cli_fail(ctx, CLI_EXIT_FAIL, "zl-overlayd is not running (%s refuses connections)",
				 ctx->socket_path);
	return -cli_fail(ctx, CLI_EXIT_FAIL, "cannot connect to %s: %s", ctx->socket_path, strerror(e));
}

static int send_watch(const struct cli_ctx *ctx, int fd)
{
	json_object *req, *env = zl_frame_request_new(1, "watch", &req);
	uint8_t *buf = NULL;
	size_t len;
	int rc = env && zl_frame_encode(env, 0, &buf, &len) == 0 ?
			 cli_send_all(fd, buf, len, cli_now_ms() + ctx->timeout_ms) : -ENOMEM;

	json_object_put(env);
	free(buf);
	if (rc)
		return cli_fail(ctx, CLI_EXIT_FAIL, "cannot send the request to zl-overlayd: %s", strerror(-rc));
	return CLI_EXIT_OK;
}

/* Waits for the fd to be readable: 0, -ETIMEDOUT at the deadline (0 = none), -EINTR when a stop
 * signal came. SIGINT/SIGTERM are blocked outside ppoll so none is lost between the check and the wait. */
static int wait_readable(int fd, int64_t deadline, const sigset_t *during)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	for (;;) {
		int64_t left = deadline ? deadline - cli_now_ms() : -1;
		struct timespec ts, *tp = NULL;
		int r;

		if (stop_signal)
			return -EINTR;
		if (deadline && left <= 0)
			return -ETIMEDOUT;
		if (deadline) {
			ts.tv_sec = left / 1000;
			ts.tv_nsec = (left % 1000) * 1000000;
			tp = &ts;
		}
		r = ppoll(&p, 1, tp, during);
		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR)
			return -errno;
	}
}

struct reader {
	int fd;
	struct zl_frame_decoder dec;
	uint8_t *buf;
	size_t len, off;
};

/* The next frame: 0 with *out; -EINTR (stop signal), -ETIMEDOUT, -ECONNRESET (closed), -EPROTO. */
static int next_frame(struct reader *r, int64_t deadline, const sigset_t *during, json_object **out)
{
	for (;;) {
		while (r->off < r->len) {
			size_t used = 0;
			int rc = zl_frame_decoder_feed(&r->dec, r->buf + r->off, r->len - r->off, &used, out);

			r->off += used;
			if (rc < 0)
				return -EPROTO;
			if (rc > 0)
				return 0;
		}
		ssize_t n = recv(r->fd, r->buf, READ_CHUNK, MSG_DONTWAIT);

		if (n > 0) {
			r->len = (size_t)n;
			r->off = 0;
			continue;
		}
		if (n == 0 || (errno != EAGAIN && errno != EINTR))
			return -ECONNRESET;
		int w = wait_readable(r->fd, deadline, during);

		if (w < 0)
			return w;
	}
}

static int went_wrong(const struct cli_ctx *ctx, struct reader *r, int rc)
{
	if (rc == -ETIMEDOUT)
		return cli_fail(ctx, CLI_EXIT_FAIL, "zl-overlayd did not answer 'watch' within %u s", ctx->timeout_ms / 1000);
	if (rc == -EPROTO)
		return cli_fail(ctx, CLI_EXIT_FAIL, "bad frame from zl-overlayd: %s", zl_frame_decoder_error(&r->dec));
	if (rc == -ECONNRESET)
		return cli_fail(ctx, CLI_EXIT_FAIL, "zl-overlayd went away (the connection closed)");
	return cli_fail(ctx, CLI_EXIT_FAIL, "%s", strerror(-rc));
}

/* The answer to "watch": prints the kept events. */
static int take_answer(const struct cli_ctx *ctx, json_object *frame)
{
	struct zl_frame_response resp;
	char err[CLI_MSG_LEN];
	json_object *recent;
	int rc = CLI_EXIT_OK;

	if (!zl_frame_response_parse(frame, &resp, err, sizeof(err)) || resp.id != 1)
		rc = cli_fail(ctx, CLI_EXIT_FAIL, "bad answer from zl-overlayd: %s", resp.id != 1 ? "wrong id" : err);
	else if (!resp.ok)
		rc = cli_control_report(ctx, "watch", CLI_CONTROL_REFUSED, resp.message);
	else if (json_object_object_get_ex(resp.body, "recent", &recent) && json_object_is_type(recent, json_type_array))
		for (size_t i = 0; i < json_object_array_length(recent); i++)
			show(ctx, json_object_array_get_idx(recent, i));
	json_object_put(frame);
	return rc;
}

static int stream(const struct cli_ctx *ctx, struct reader *r, const sigset_t *during)
{
	json_object *frame = NULL, *ev;
	int rc = next_frame(r, cli_now_ms() + ctx->timeout_ms, during, &frame);

	if (rc == -EINTR)
		return CLI_EXIT_OK;
	if (rc < 0)
		return went_wrong(ctx, r, rc);
	if ((rc = take_answer(ctx, frame)) != CLI_EXIT_OK)
		return rc;
	for (;;) {
		rc = next_frame(r, 0, during, &frame);
		if (rc == -EINTR)
			return CLI_EXIT_OK;
		if (rc < 0)
			return went_wrong(ctx, r, rc);
		/* Frames other than events (none today) are for later versions: skipped. */
		if (json_object_object_get_ex(frame, "event", &ev))
			show(ctx, ev);
		json_object_put(frame);
	}
}

int cli_cmd_watch(struct cli_ctx *ctx)
{
	struct sigaction sa = { .sa_handler = on_stop }, old_int, old_term;
	sigset_t block, old_mask;
	struct reader r = { .fd = -1 };
	int rc;

	stop_signal = 0;
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigprocmask(SIG_BLOCK, &block, &old_mask);
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	r.fd = dial(ctx);
	r.buf = malloc(READ_CHUNK);
	zl_frame_decoder_init(&r.dec, 0);
	if (r.fd < 0)
		rc = -r.fd;
	else if (!r.buf)
		rc = cli_fail(ctx, CLI_EXIT_FAIL, "out of memory");
	else if ((rc = send_watch(ctx, r.fd)) == CLI_EXIT_OK)
		rc = stream(ctx, &r, &old_mask);
	zl_frame_decoder_free(&r.dec);
	free(r.buf);
	if (r.fd >= 0)
		close(r.fd);
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	sigprocmask(SIG_SETMASK, &old_mask, NULL);
	return rc;
}
