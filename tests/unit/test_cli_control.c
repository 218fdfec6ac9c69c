/* zl-overlay against a fake zl-overlayd on a Unix socket in a scratch data dir, through the real program
 * (cli_main): the request envelopes (id, version 1, type and arguments) of status, peers, token
 * create/revoke/list, remove-peer and leave; their output (stable JSON, tables, a token alone on stdout);
 * the daemon's errors passed through; and the re-dial rules: an idempotent request is re-sent after the
 * connection breaks, a non-idempotent one is not (and says so); a stale socket is re-dialled until a
 * restarted daemon answers; no socket fails at once; a dead socket, a silent daemon and garbage fail
 * within the --timeout. Scratch: /tmp/zl-test-cli-control-XXXXXX, removed at the end. */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "test.h"
#include "cli/cli.h"
#include "cli/net.h"
#include "overlay/frame.h"

static char scratch[48], sock_path[96];

enum act {
	ACT_ANSWER,    /* reply with the canned body */
	ACT_ERR,       /* reply {"result":"err","message": err_message} */
	ACT_CLOSE,     /* read the request, close without answering */
	ACT_SILENT,    /* read the request, answer nothing until the client gives up */
	ACT_GARBAGE,   /* a frame that is not JSON */
};

struct fake_daemon {
	int lfd;
	int start_delay_ms;        /* listen only after this long (a restarting daemon) */
	enum act script[4];
	size_t n_script;
	const char *body;          /* JSON members of an ok response, e.g. "\"token\":\"zlj1.x\"" */
	const char *err_message;
	/* observed */
	size_t connections;
	json_object *last_request; /* the inner "request" object */
	uint64_t last_id;
	int last_version;
	pthread_t thread;
};

static int listen_at(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	unlink(path);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 8) < 0)
		abort();
	return fd;
}

/* Leaves a socket file nobody listens on, as a SIGKILLed daemon does. */
static void make_stale_socket(void)
{
	int fd = listen_at(sock_path);

	close(fd);
}

static json_object *read_request(int fd)
{
	uint8_t hdr[4];
	char *body;
	uint32_t len;
	json_object *o = NULL;

	if (cli_recv_full(fd, hdr, 4, cli_now_ms() + 5000) < 0)
		return NULL;
	len = (uint32_t)hdr[0] | (uint32_t)hdr[1] << 8 | (uint32_t)hdr[2] << 16 | (uint32_t)hdr[3] << 24;
	body = calloc(1, (size_t)len + 1);
	if (body && cli_recv_full(fd, body, len, cli_now_ms() + 5000) == 0)
		o = json_tokener_parse(body);
	free(body);
	return o;
}

static void send_json(int fd, const char *text)
{
	json_object *o = json_tokener_parse(text);
	uint8_t *frame;
	size_t len;

	if (o && zl_frame_encode(o, 0, &frame, &len) == 0) {
		cli_send_all(fd, frame, len, cli_now_ms() + 5000);
		free(frame);
	}
	json_object_put(o);
}

static void serve_one(struct fake_daemon *D, int fd, enum act act)
{
	json_object *env = read_request(fd), *req = NULL, *v;
	char reply[4096];

	if (!env)
		return;
	if (json_object_object_get_ex(env, "request", &req))
		D->last_request = json_object_get(req);
	D->last_id = json_object_object_get_ex(env, "id", &v) ? (uint64_t)json_object_get_int64(v) : 0;
	D->last_version = json_object_object_get_ex(env, "version", &v) ? json_object_get_int(v) : -1;
	json_object_put(env);
	switch (act) {
	case ACT_ANSWER:
		snprintf(reply, sizeof(reply), "{\"id\":%llu,\"response\":{\"result\":\"ok\"%s%s}}",
			 (unsigned long long)D->last_id, D->body ? "," : "", D->body ? D->body : "");
		send_json(fd, reply);
		break;
	case ACT_ERR:
		snprintf(reply, sizeof(reply), "{\"id\":%llu,\"response\":{\"result\":\"err\",\"message\":\"%s\"}}",
			 (unsigned long long)D->last_id, D->err_message);
		send_json(fd, reply);
		break;
	case ACT_SILENT: /* until the client hangs up */
		cli_recv_full(fd, reply, 1, cli_now_ms() + 3000);
		break;
	case ACT_GARBAGE:
		cli_send_all(fd, "\x05\0\0\0nope!", 9, cli_now_ms() + 5000);
		break;
	case ACT_CLOSE:
		break;
	}
}

static void *daemon_main(void *arg)
{
	struct fake_daemon *D = arg;

	if (D->start_delay_ms) {
		cli_sleep_ms(D->start_delay_ms);
		D->lfd = listen_at(sock_path);
	}
	for (size_t i = 0; i < D->n_script; i++) {
		int fd = accept4(D->lfd, NULL, NULL, SOCK_CLOEXEC);

		if (fd < 0)
			break;
		D->connections++;
		json_object_put(D->last_request);
		D->last_request = NULL;
		serve_one(D, fd, D->script[i]);
		close(fd);
	}
	return NULL;
}

/* Starts a daemon playing the given actions, one per connection. */
static void daemon_start(struct fake_daemon *D, const char *body, size_t n, ...)
{
	va_list ap;

	memset(D, 0, sizeof(*D));
	D->body = body;
	va_start(ap, n);
	for (size_t i = 0; i < n && i < 4; i++)
		D->script[D->n_script++] = va_arg(ap, enum act);
	va_end(ap);
	D->lfd = -1;
}

static void daemon_run(struct fake_daemon *D)
{
	if (!D->start_delay_ms)
		D->lfd = listen_at(sock_path);
	if (pthread_create(&D->thread, NULL, daemon_main, D) != 0)
		abort();
}

static void daemon_stop(struct fake_daemon *D)
{
	/* A thread still waiting in accept() (the client gave up early) is woken by a dummy connection. */
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	while (D->connections < D->n_script) {
		snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path);
		fd = socket(AF_UNIX, SOCK_STREAM, 0);
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
			close(fd);
			break;
		}
		close(fd);
		cli_sleep_ms(10);
	}
	pthread_join(D->thread, NULL);
	close(D->lfd);
	unlink(sock_path);
	json_object_put(D->last_request);
}

struct run {
	int rc;
	char *out, *err;
	int64_t ms;
};

static void run_free(struct run *r)
{
	free(r->out);
	free(r->err);
}

static struct run run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static struct run run(const char *fmt, ...)
{
	char line[1024], *argv[24], *save = NULL;
	struct run r = { 0 };
	size_t olen, elen;
	int argc = 0;
	int64_t t0 = cli_now_ms();
	va_list ap;
	FILE *o, *e;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	argv[argc++] = "zl-overlay";
	for (char *t = strtok_r(line, " ", &save); t && argc < 20; t = strtok_r(NULL, " ", &save))
		argv[argc++] = t;
	argv[argc++] = "--data-dir";
	argv[argc++] = scratch;
	argv[argc] = NULL;
	o = open_memstream(&r.out, &olen);
	e = open_memstream(&r.err, &elen);
	r.rc = cli_main(argc, argv, o, e);
	fclose(o);
	fclose(e);
	r.ms = cli_now_ms() - t0;
	return r;
}

static const char *req_str(const struct fake_daemon *D, const char *key)
{
	json_object *v;

	if (!D->last_request || !json_object_object_get_ex(D->last_request, key, &v))
		return NULL;
	return json_object_get_string(v);
}

#define STATUS_BODY                                                                                          \
	"\"node_id\":\"leader\",\"node_ip\":\"10.200.0.1\",\"public_key\":\"K\",\"is_leader\":true,"        \
	"\"hostname\":\"lead\",\"interface\":\"zl-overlay0\",\"cidr\":\"10.200.0.0/16\",\"slice_cidr\":"     \
	"\"10.200.0.0/28\",\"listen_port\":51820,\"leader_ip\":\"10.200.0.1\",\"peers\":[{\"node_id\":"      \
	"\"node-0-17\",\"hostname\":\"w1\",\"overlay_ip\":\"10.200.0.17\",\"public_key\":\"P\",\"endpoint\":" \
	"\"192.0.2.2:51820\",\"slice_cidr\":\"10.200.0.16/28\",\"last_handshake\":0,\"rx_bytes\":10,"         \
	"\"tx_bytes\":20}]"

static void test_status(void)
{
	struct fake_daemon D;
	struct run r;
	json_object *j, *peers;

	daemon_start(&D, STATUS_BODY, 2, ACT_ANSWER, ACT_ANSWER);
	daemon_run(&D);
	r = run("status --json");
	CHECK(r.rc == 0);
	j = json_tokener_parse(r.out);
	CHECK(j && !strcmp(json_object_get_string(json_object_object_get(j, "node_ip")), "10.200.0.1"));
	CHECK(j && json_object_get_boolean(json_object_object_get(j, "is_leader")));
	CHECK(j && json_object_object_get_ex(j, "peers", &peers) && json_object_array_length(peers) == 1);
	CHECK(j && !json_object_object_get_ex(j, "result", NULL));
	json_object_put(j);
	CHECK(D.last_version == 1 && D.last_id > 0 && !strcmp(req_str(&D, "type"), "status"));
	run_free(&r);
	r = run("status");
	CHECK(r.rc == 0 && strstr(r.out, "node: leader (leader)\n") && strstr(r.out, "node-0-17  w1"));
	run_free(&r);
	daemon_stop(&D);

	daemon_start(&D, STATUS_BODY, 1, ACT_ANSWER);
	daemon_run(&D);
	r = run("peers --json");
	CHECK(r.rc == 0 && !strcmp(req_str(&D, "type"), "peers") && strstr(r.out, "\"overlay_ip\": \"10.200.0.17\""));
	CHECK(!strstr(r.out, "node_ip"));
	run_free(&r);
	daemon_stop(&D);
}

static void test_redial_idempotent(void)
{
	struct fake_daemon D;
	struct run r;

	daemon_start(&D, STATUS_BODY, 3, ACT_CLOSE, ACT_CLOSE, ACT_ANSWER);
	daemon_run(&D);
	r = run("status");
	CHECK(r.rc == 0 && D.connections == 3);
	CHECK(r.ms >= 250); /* waited 100 + 200 ms between the dials */
	run_free(&r);
	daemon_stop(&D);
}

static void test_no_resend_non_idempotent(void)
{
	struct fake_daemon D;
	struct run r;

	daemon_start(&D, "\"removed\":\"node-0-17\"", 2, ACT_CLOSE, ACT_ANSWER);
	daemon_run(&D);
	r = run("remove-peer w1");
	CHECK(r.rc == 1 && strstr(r.err, "may or may not have been carried out"));
	CHECK(D.connections == 1 && !strcmp(req_str(&D, "type"), "remove_peer") && !strcmp(req_str(&D, "node"), "w1"));
	run_free(&r);
	daemon_stop(&D);
	/* And when it answers: */
	daemon_start(&D, "\"removed\":\"node-0-17\"", 1, ACT_ANSWER);
	daemon_run(&D);
	r = run("remove-peer w1");
	CHECK(r.rc == 0 && !strcmp(r.out, "removed node-0-17\n"));
	run_free(&r);
	daemon_stop(&D);
}

static void test_daemon_errors(void)
{
	struct fake_daemon D;
	struct run r;

	daemon_start(&D, NULL, 1, ACT_ERR);
	D.err_message = "remove_peer: no member 'ghost'";
	daemon_run(&D);
	r = run("remove-peer ghost");
	CHECK(r.rc == 1 && !strcmp(r.err, "zl-overlay: remove-peer: no member 'ghost'\n"));
	CHECK(r.out[0] == '\0');
	run_free(&r);
	daemon_stop(&D);

	daemon_start(&D, NULL, 1, ACT_ERR);
	D.err_message = "only a worker can leave";
	daemon_run(&D);
	r = run("leave");
	CHECK(r.rc == 1 && strstr(r.err, "only a worker can leave") && !strcmp(req_str(&D, "type"), "leave"));
	run_free(&r);
	daemon_stop(&D);

	/* A daemon error on a token command is final: no offline fallback. */
	daemon_start(&D, NULL, 1, ACT_ERR);
	D.err_message = "token_create: this node is not the leader";
	daemon_run(&D);
	r = run("token create");
	CHECK(r.rc == 1 && !strcmp(r.err, "zl-overlay: token create: this node is not the leader\n"));
	run_free(&r);
	daemon_stop(&D);
}

static void test_tokens_via_daemon(void)
{
	struct fake_daemon D;
	struct run r;
	json_object *v;

	daemon_start(&D, "\"token\":\"zlj1.TOKEN\",\"id\":\"0011223344556677\",\"expires_at\":99", 1, ACT_ANSWER);
	daemon_run(&D);
	r = run("token create --ttl 1h");
	CHECK(r.rc == 0 && !strcmp(r.out, "zlj1.TOKEN\n") && r.err[0] == '\0');
	CHECK(!strcmp(req_str(&D, "type"), "token_create"));
	CHECK(json_object_object_get_ex(D.last_request, "ttl_seconds", &v) && json_object_get_int64(v) == 3600);
	run_free(&r);
	daemon_stop(&D);

	daemon_start(&D, NULL, 1, ACT_ANSWER);
	daemon_run(&D);
	r = run("token create");
	CHECK(r.rc == 1 && strstr(r.err, "without a token"));
	CHECK(!json_object_object_get_ex(D.last_request, "ttl_seconds", NULL));
	run_free(&r);
	daemon_stop(&D);

	daemon_start(&D, NULL, 1, ACT_ANSWER);
	daemon_run(&D);
	r = run("token revoke 00112233445566AA");
	CHECK(r.rc == 0 && !strcmp(req_str(&D, "type"), "token_revoke") && !strcmp(req_str(&D, "id"), "00112233445566aa"));
	run_free(&r);
	daemon_stop(&D);

	daemon_start(&D, "\"tokens\":[{\"id\":\"0011223344556677\",\"expires_at\":1,\"revoked\":false,\"uses\":1,"
			 "\"max_uses\":1}]", 1, ACT_ANSWER);
	daemon_run(&D);
	r = run("token list");
	CHECK(r.rc == 0 && strstr(r.out, "0011223344556677  used") && !strcmp(req_str(&D, "type"), "token_list"));
	run_free(&r);
	daemon_stop(&D);
}

static void test_leave(void)
{
	struct fake_daemon D;
	struct run r;

	daemon_start(&D, NULL, 1, ACT_ANSWER);
	daemon_run(&D);
	r = run("leave");
	CHECK(r.rc == 0 && !strcmp(r.out, "left the overlay\n"));
	run_free(&r);
	daemon_stop(&D);
}

static void test_restarting_daemon(void)
{
	struct fake_daemon D;
	struct run r;

	make_stale_socket();
	daemon_start(&D, STATUS_BODY, 1, ACT_ANSWER);
	D.start_delay_ms = 700;
	daemon_run(&D);
	r = run("status");
	CHECK(r.rc == 0 && D.connections == 1);
	CHECK(r.ms >= 600);
	run_free(&r);
	daemon_stop(&D);
}

static void test_not_running(void)
{
	struct fake_daemon D;
	struct run r;

	unlink(sock_path);
	r = run("status");
	CHECK(r.rc == 1 && strstr(r.err, "zl-overlayd is not running (no ") && strstr(r.err, sock_path));
	CHECK(r.ms < 200); /* no socket: nothing to wait for */
	run_free(&r);

	make_stale_socket();
	r = run("status --timeout 1");
	CHECK(r.rc == 1 && strstr(r.err, "refuses connections"));
	CHECK(r.ms >= 900 && r.ms < 2000);
	run_free(&r);
	unlink(sock_path);

	daemon_start(&D, NULL, 1, ACT_SILENT);
	daemon_run(&D);
	r = run("status --timeout 1");
	CHECK(r.rc == 1 && strstr(r.err, "did not answer 'status' within 1 s"));
	CHECK(r.ms >= 900 && r.ms < 1500);
	run_free(&r);
	daemon_stop(&D);

	daemon_start(&D, NULL, 1, ACT_GARBAGE);
	daemon_run(&D);
	r = run("peers");
	CHECK(r.rc == 1 && strstr(r.err, "bad answer from zl-overlayd"));
	run_free(&r);
	daemon_stop(&D);
}

static void cleanup(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", scratch);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup of %s failed\n", scratch);
}

int main(void)
{
	char run_dir[64];

	snprintf(scratch, sizeof(scratch), "/tmp/zl-test-cli-control-XXXXXX");
	if (!mkdtemp(scratch))
		return 1;
	snprintf(run_dir, sizeof(run_dir), "%s/run", scratch);
	snprintf(sock_path, sizeof(sock_path), "%s/zl-overlayd.sock", run_dir);
	if (mkdir(run_dir, 0750) < 0)
		return 1;
	TEST_RUN(test_status);
	TEST_RUN(test_redial_idempotent);
	TEST_RUN(test_no_resend_non_idempotent);
	TEST_RUN(test_daemon_errors);
	TEST_RUN(test_tokens_via_daemon);
	TEST_RUN(test_leave);
	TEST_RUN(test_restarting_daemon);
	TEST_RUN(test_not_running);
	cleanup();
	return TEST_SUMMARY();
}
