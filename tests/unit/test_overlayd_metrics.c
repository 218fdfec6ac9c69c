/* zl-overlayd's metrics endpoint: the --metrics address rule, the text format (escaping, grouping, no
 * duplicate series; checked by promtool when it is installed), the HTTP server on a real loop and a
 * real listener on 127.0.0.1 with a fake body (200 with the exact length, 404, 405, 400, 500,
 * oversized and slow requests dropped, the connection limit, a large answer to a slow reader), and the
 * rendering of a real in-memory leader and worker. State lives in a scratch directory under /tmp. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "overlayd/metrics.h"
#include "overlayd/metrics_http.h"
#include "overlayd/metrics_text.h"
#include "overlayd/node.h"
#include "overlayd_fixture.h"
#include "test.h"

static char scratch[64];
static bool checker_quiet;     /* the checker's own test expects violations: no messages then */

#define CHECKER_SAY(...) do { if (!checker_quiet) fprintf(stderr, __VA_ARGS__); } while (0)

/* ---------------------------------------------------------------- the address rule */

static void test_parse_addr_accepts(void)
{
	static const struct {
		const char *text, *node_ip;
		int family;
		const char *ip;
		uint16_t port;
	} ok[] = {
		{ "127.0.0.1:9464", NULL, AF_INET, "127.0.0.1", 9464 },
		{ "127.1.2.3:1", "10.200.0.1", AF_INET, "127.1.2.3", 1 },
		{ "127.255.255.254:65535", "", AF_INET, "127.255.255.254", 65535 },
		{ "[::1]:9464", NULL, AF_INET6, "::1", 9464 },
		{ "10.200.0.1:9464", "10.200.0.1", AF_INET, "10.200.0.1", 9464 },
		{ "[fd00:1::5]:8080", "fd00:1::5", AF_INET6, "fd00:1::5", 8080 },
		{ "[FD00:1:0::5]:8080", "fd00:1::5", AF_INET6, "fd00:1::5", 8080 },   /* same address, other spelling */
	};

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		struct sockaddr_storage ss;
		socklen_t len = 0;
		char err[256] = "", got[INET6_ADDRSTRLEN] = "";
		int rc = od_metrics_parse_addr(ok[i].text, ok[i].node_ip, &ss, &len, err, sizeof(err));
		uint16_t port = 0;

		CHECK(rc == 0);
		if (rc) {
			fprintf(stderr, "  refused %s: %s\n", ok[i].text, err);
			continue;
		}
		CHECK(ss.ss_family == ok[i].family);
		if (ss.ss_family == AF_INET) {
			struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

			CHECK(len == sizeof(*s4));
			inet_ntop(AF_INET, &s4->sin_addr, got, sizeof(got));
			port = ntohs(s4->sin_port);
		} else {
			struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

			CHECK(len == sizeof(*s6));
			inet_ntop(AF_INET6, &s6->sin6_addr, got, sizeof(got));
			port = ntohs(s6->sin6_port);
		}
		CHECK(strcmp(got, ok[i].ip) == 0);
		CHECK(port == ok[i].port);
	}
}

static void test_parse_addr_refuses(void)
{
	/* Each with a word its message must contain (case-insensitive). */
	static const struct {
		const char *text, *node_ip, *word;
	} bad[] = {
		{ "", "10.200.0.1", "empty" },
		{ "127.0.0.1", NULL, "port" },
		{ "127.0.0.1:", NULL, "port" },
		{ "127.0.0.1:0", NULL, "port" },
		{ "127.0.0.1:65536", NULL, "port" },
		{ "127.0.0.1:+80", NULL, "port" },
		{ "127.0.0.1:80a", NULL, "port" },
		{ "127.0.0.1:123456", NULL, "port" },
		{ ":9464", NULL, "missing" },
		{ "0.0.0.0:9464", "10.200.0.1", "wildcard" },
		{ "[::]:9464", "fd00::1", "wildcard" },
		{ "192.0.2.1:9464", "10.200.0.1", "underlay" },
		{ "10.200.0.2:9464", "10.200.0.1", "overlay address 10.200.0.1" },
		{ "10.200.0.1:9464", NULL, "loopback" },
		{ "10.200.0.1:9464", "", "loopback" },
		{ "[fd00::2]:9464", "fd00::1", "underlay" },
		{ "[::ffff:127.0.0.1]:9464", NULL, "loopback" },
		{ "::1:9464", NULL, "brackets" },
		{ "[::1]9464", NULL, "[" },
		{ "[::1", NULL, "[" },
		{ "[127.0.0.1]:9464", NULL, "IPv6" },
		{ "[fe80::1%lo]:9464", NULL, "IPv6" },
		{ "localhost:9464", NULL, "names are not looked up" },
		{ "127.0.0.01:9464", NULL, "IPv4" },
		{ "127.0.0.1 :9464", NULL, "IPv4" },
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct sockaddr_storage ss;
		socklen_t len = 0;
		char err[256] = "";
		int rc = od_metrics_parse_addr(bad[i].text, bad[i].node_ip, &ss, &len, err, sizeof(err));

		CHECK(rc == -EINVAL);
		CHECK(strcasestr(err, bad[i].word) != NULL);
		if (rc != -EINVAL || !strcasestr(err, bad[i].word))
			fprintf(stderr, "  '%s': rc %d, message '%s' (wanted '%s')\n", bad[i].text, rc, err, bad[i].word);
	}
	/* NULL text too. */
	{
		struct sockaddr_storage ss;
		socklen_t len;
		char err[128] = "";

		CHECK(od_metrics_parse_addr(NULL, NULL, &ss, &len, err, sizeof(err)) == -EINVAL && err[0]);
	}
}

/* ---------------------------------------------------------------- checking exposition text */

/* Our own reading of the format's structural rules: every sample belongs to the family whose HELP and
 * TYPE came just before its first sample, a family is never reopened, no series (name + labels) twice,
 * every value is a number. Returns the number of samples, or -1 (with a message) on a violation. */
static int check_exposition(const char *text)
{
	char fam[128] = "", seen_fams[64][128], *copy = strdup(text), *save = NULL;
	size_t n_fams = 0, n_series = 0, cap_series = 256;
	char **series = calloc(cap_series, sizeof(*series));
	int samples = 0, bad = 0;
	bool have_help = false, have_type = false;

	if (!copy || !series)
		return -1;
	if (*text && text[strlen(text) - 1] != '\n') {
		CHECKER_SAY("  exposition does not end with a line feed\n");
		bad = 1;
	}
	for (char *line = strtok_r(copy, "\n", &save); line && !bad; line = strtok_r(NULL, "\n", &save)) {
		char name[128], *end;
		size_t nl;

		if (!strncmp(line, "# HELP ", 7)) {
			sscanf(line + 7, "%127s", name);
			for (size_t i = 0; i < n_fams; i++) {
				if (!strcmp(seen_fams[i], name)) {
					CHECKER_SAY("  family %s appears twice\n", name);
					bad = 1;
				}
			}
			if (n_fams < 64)
				snprintf(seen_fams[n_fams++], sizeof(seen_fams[0]), "%s", name);
			snprintf(fam, sizeof(fam), "%s", name);
			have_help = true;
			have_type = false;
			continue;
		}
		if (!strncmp(line, "# TYPE ", 7)) {
			char type[32];

			if (sscanf(line + 7, "%127s %31s", name, type) != 2 || strcmp(name, fam) || !have_help ||
			    (strcmp(type, "counter") && strcmp(type, "gauge"))) {
				CHECKER_SAY("  TYPE line out of place: %s\n", line);
				bad = 1;
			}
			have_type = true;
			continue;
		}
		nl = strcspn(line, "{ ");
		if (nl != strlen(fam) || strncmp(line, fam, nl) || !have_type) {
			CHECKER_SAY("  sample outside its family (%s): %s\n", fam, line);
			bad = 1;
			break;
		}
		end = strrchr(line, ' ');
		if (end) {
			char *vend;

			strtod(end + 1, &vend);
			if (vend == end + 1 || *vend)
				end = NULL;
		}
		if (!end) {
			CHECKER_SAY("  value is not a number: %s\n", line);
			bad = 1;
			break;
		}
		*end = '\0';
		for (size_t i = 0; i < n_series; i++) {
			if (!strcmp(series[i], line)) {
				CHECKER_SAY("  duplicate series %s\n", line);
				bad = 1;
			}
		}
		if (n_series == cap_series) {
			cap_series *= 2;
			series = realloc(series, cap_series * sizeof(*series));
		}
		series[n_series++] = strdup(line);
		samples++;
	}
	for (size_t i = 0; i < n_series; i++)
		free(series[i]);
	free(series);
	free(copy);
	return bad ? -1 : samples;
}

/* 1 when promtool is not installed, else whether `promtool check metrics` accepts text (no lint
 * problem either: it exits non-zero for those). */
static bool promtool_ok(const char *text, size_t len)
{
	char path[128], cmd[300];
	FILE *f;
	int st;

	if (system("command -v promtool >/dev/null 2>&1") != 0)
		return true;
	snprintf(path, sizeof(path), "%s/metrics.txt", scratch);
	if (!(f = fopen(path, "w")))
		return false;
	fwrite(text, 1, len, f);
	fclose(f);
	snprintf(cmd, sizeof(cmd), "promtool check metrics <%s >%s.out 2>&1", path, path);
	st = system(cmd);
	if (st != 0) {
		snprintf(cmd, sizeof(cmd), "sed 's/^/  promtool: /' %s.out >&2", path);
		if (system(cmd) != 0)
			fprintf(stderr, "  promtool failed\n");
	}
	return st == 0;
}

static bool has_line(const char *text, const char *line)
{
	size_t n = strlen(line);

	for (const char *p = text; (p = strstr(p, line)); p += n) {
		if ((p == text || p[-1] == '\n') && p[n] == '\n')
			return true;
	}
	return false;
}

/* The value of the sample whose name+labels text is exactly series, or NAN when absent. */
static double sample(const char *text, const char *series)
{
	size_t n = strlen(series);

	for (const char *p = text; (p = strstr(p, series)); p += n) {
		if ((p == text || p[-1] == '\n') && p[n] == ' ')
			return strtod(p + n + 1, NULL);
	}
	return NAN;
}

/* ---------------------------------------------------------------- the text format */

static void test_text_escaping_and_grouping(void)
{
	struct od_prom p;
	char *t;
	size_t len = 0;
	struct od_prom_label hostile[] = { { "name", "a\"b\\c\nd" }, { "address", "10.0.0.1" } };
	struct od_prom_label plain[] = { { "name", "web" }, { "address", "10.0.0.2" } };
	struct od_prom_label utf8[] = { { "name", "caf\xc3\xa9" }, { "address", "" } };

	od_prom_init(&p);
	od_prom_family(&p, "t_empty_total", OD_PROM_COUNTER, "never written");
	od_prom_family(&p, "t_service_up", OD_PROM_GAUGE, "help with a \\ and a\nline feed");
	od_prom_u64(&p, hostile, 2, 1);
	od_prom_u64(&p, plain, 2, 0);
	od_prom_u64(&p, utf8, 2, 1);
	od_prom_family(&p, "t_values", OD_PROM_GAUGE, "numbers");
	od_prom_double(&p, (struct od_prom_label[]){ { "k", "half" } }, 1, 0.5);
	od_prom_double(&p, (struct od_prom_label[]){ { "k", "nan" } }, 1, NAN);
	od_prom_double(&p, (struct od_prom_label[]){ { "k", "inf" } }, 1, INFINITY);
	od_prom_double(&p, (struct od_prom_label[]){ { "k", "ninf" } }, 1, -INFINITY);
	od_prom_u64(&p, (struct od_prom_label[]){ { "k", "max" } }, 1, UINT64_MAX);
	od_prom_text(&p, (struct od_prom_label[]){ { "k", "u128" } }, 1, "340282366920938463463374607431768211455");
	od_prom_family(&p, "t_bare_total", OD_PROM_COUNTER, "no labels");
	od_prom_u64(&p, NULL, 0, 7);
	t = od_prom_finish(&p, &len);
	CHECK(t != NULL);
	if (!t)
		return;
	CHECK(len == strlen(t));
	/* The family without samples is absent altogether. */
	CHECK(!strstr(t, "t_empty_total"));
	CHECK(has_line(t, "# HELP t_service_up help with a \\\\ and a\\nline feed"));
	CHECK(has_line(t, "# TYPE t_service_up gauge"));
	CHECK(has_line(t, "t_service_up{name=\"a\\\"b\\\\c\\nd\",address=\"10.0.0.1\"} 1"));
	CHECK(has_line(t, "t_service_up{name=\"web\",address=\"10.0.0.2\"} 0"));
	CHECK(has_line(t, "t_service_up{name=\"caf\xc3\xa9\",address=\"\"} 1"));
	CHECK(has_line(t, "t_values{k=\"half\"} 0.5"));
	CHECK(has_line(t, "t_values{k=\"nan\"} NaN"));
	CHECK(has_line(t, "t_values{k=\"inf\"} +Inf"));
	CHECK(has_line(t, "t_values{k=\"ninf\"} -Inf"));
	CHECK(has_line(t, "t_values{k=\"max\"} 18446744073709551615"));
	CHECK(has_line(t, "t_values{k=\"u128\"} 340282366920938463463374607431768211455"));
	CHECK(has_line(t, "# TYPE t_bare_total counter"));
	CHECK(has_line(t, "t_bare_total 7"));
	/* Headers come right before the first sample; the three families each once. */
	CHECK(strstr(t, "# HELP t_service_up") == t);
	CHECK(check_exposition(t) == 10);
	CHECK(promtool_ok(t, len));
	free(t);

	/* Nothing at all is a valid (empty) exposition. */
	od_prom_init(&p);
	t = od_prom_finish(&p, &len);
	CHECK(t && len == 0 && t[0] == '\0');
	free(t);
}

/* A structural violation is caught by our checker (it must be able to fail). */
static void test_checker_catches_violations(void)
{
	checker_quiet = true;
	CHECK(check_exposition("# HELP a x\n# TYPE a gauge\na 1\n") == 1);
	CHECK(check_exposition("# HELP a x\n# TYPE a gauge\na 1\na 2\n") == -1);                        /* duplicate */
	CHECK(check_exposition("# HELP a x\n# TYPE a gauge\na{k=\"1\"} 1\n# HELP b x\n# TYPE b gauge\nb 1\n"
			       "# HELP a x\n# TYPE a gauge\na{k=\"2\"} 1\n") == -1);                       /* reopened */
	CHECK(check_exposition("# HELP a x\n# TYPE a gauge\nb 1\n") == -1);                            /* stray */
	CHECK(check_exposition("a 1\n") == -1);                                                        /* no header */
	CHECK(check_exposition("# HELP a x\n# TYPE a gauge\na one\n") == -1);                          /* value */
	checker_quiet = false;
}

/* ---------------------------------------------------------------- HTTP */

struct http_fixture {
	struct wg_loop loop;
	struct od_timers timers;
	struct od_http_server *srv;
	uint16_t port;
};

static size_t body_size = 32;
static int body_calls;
static bool body_fail;

/* A deterministic body of body_size bytes (lines of text), so an answer can be compared byte by byte. */
static char *expected_body(size_t n)
{
	char *b = malloc(n + 1);

	for (size_t i = 0; b && i < n; i++)
		b[i] = (i % 64 == 63) ? '\n' : (char)('a' + (i * 7) % 26);
	if (b)
		b[n] = '\0';
	return b;
}

static char *fake_body(void *ctx, size_t *len)
{
	CHECK(ctx == &body_calls);
	body_calls++;
	if (body_fail)
		return NULL;
	*len = body_size;
	return expected_body(body_size);
}

static void fixture_open(struct http_fixture *f, size_t max_conns, uint32_t timeout_ms)
{
	struct od_http_config cfg = {
		.path = "/metrics", .content_type = "text/plain; version=0.0.4; charset=utf-8", .max_conns = max_conns,
		.request_max = OD_METRICS_REQUEST_MAX, .timeout_ms = timeout_ms, .body = fake_body, .ctx = &body_calls,
	};
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	char err[256];

	memset(f, 0, sizeof(*f));
	CHECK(wg_loop_init(&f->loop) == 0);
	CHECK(od_timers_init(&f->timers, &f->loop) == 0);
	CHECK(od_http_server_open(&f->loop, &f->timers, (struct sockaddr *)&sa, sizeof(sa), NULL, &cfg, &f->srv, err,
				  sizeof(err)) == 0);
	f->port = od_http_server_port(f->srv);
	CHECK(f->port != 0);
}

static void fixture_close(struct http_fixture *f)
{
	od_http_server_close(f->srv);
	od_timers_destroy(&f->timers);
	wg_loop_destroy(&f->loop);
}

struct client {
	int fd;
	const char *out;
	size_t out_len, out_off;
	char *in;
	size_t in_len, in_cap;
	bool closed, reset;
	size_t read_limit;         /* bytes per pump round (0 = as much as there is): a slow reader */
};

static void client_open(struct client *c, uint16_t port, const char *req, size_t req_len)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };

	memset(c, 0, sizeof(*c));
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK(c->fd >= 0);
	/* Blocking connect to loopback completes at once (the backlog takes it); then non-blocking I/O. */
	CHECK(connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	fcntl(c->fd, F_SETFL, O_NONBLOCK);
	c->out = req;
	c->out_len = req_len;
	c->in_cap = 1 << 16;
	c->in = malloc(c->in_cap);
}

static void client_io(struct client *c)
{
	if (c->closed)
		return;
	if (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);

		if (n > 0)
			c->out_off += (size_t)n;
	}
	for (;;) {
		size_t want = c->read_limit ? c->read_limit : 1 << 16;
		ssize_t n;

		if (c->in_len + want > c->in_cap) {
			c->in_cap = (c->in_len + want) * 2;
			c->in = realloc(c->in, c->in_cap);
		}
		n = recv(c->fd, c->in + c->in_len, want, 0);
		if (n > 0) {
			c->in_len += (size_t)n;
			if (c->read_limit)
				return;
			continue;
		}
		if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
			c->reset = n < 0;
			c->closed = true;
		}
		return;
	}
}

/* Runs the server's loop and the client for up to ms, or until the server closed the connection. */
static void pump(struct http_fixture *f, struct client *c, size_t n_clients, uint64_t ms)
{
	int64_t deadline = now_ms() + ms;

	while (now_ms() < deadline) {
		bool all_closed = true;

		wg_loop_wait(&f->loop, 5);
		for (size_t i = 0; i < n_clients; i++) {
			client_io(&c[i]);
			all_closed &= c[i].closed;
		}
		if (all_closed)
			return;
	}
}

static void client_close(struct client *c)
{
	close(c->fd);
	free(c->in);
}

struct answer {
	int status;
	long content_length;
	char headers[1024];
	const char *body;
	size_t body_len;
};

/* Parses what the client received: a complete answer needs the headers and exactly Content-Length bytes. */
static bool parse_answer(const struct client *c, struct answer *a)
{
	const char *end = c->in_len ? memmem(c->in, c->in_len, "\r\n\r\n", 4) : NULL;
	const char *cl;
	size_t hl;

	memset(a, 0, sizeof(*a));
	if (!end || c->in_len < 12 || memcmp(c->in, "HTTP/1.1 ", 9))
		return false;
	hl = (size_t)(end - c->in) + 2;
	if (hl >= sizeof(a->headers))
		return false;
	memcpy(a->headers, c->in, hl);
	a->headers[hl] = '\0';
	a->status = atoi(a->headers + 9);
	cl = strcasestr(a->headers, "\r\nContent-Length: ");
	a->content_length = cl ? strtol(cl + 18, NULL, 10) : -1;
	a->body = end + 4;
	a->body_len = c->in_len - hl - 2;
	return a->content_length >= 0 && (size_t)a->content_length == a->body_len;
}

/* One request on a fresh connection; the server must answer and close. */
static bool exchange(struct http_fixture *f, const char *req, size_t req_len, struct answer *a, struct client *keep)
{
	struct client c;
	bool ok;

	client_open(&c, f->port, req, req_len);
	pump(f, &c, 1, 5000);
	ok = c.closed && parse_answer(&c, a);
	if (!ok)
		fprintf(stderr, "  no complete answer to %.40s (closed %d, %zu bytes)\n", req, c.closed, c.in_len);
	if (keep)
		*keep = c;      /* the caller reads a->body from it, then frees */
	else
		client_close(&c);
	return ok;
}

static void test_http_get_metrics(void)
{
	struct http_fixture f;
	struct answer a;
	struct client c;
	struct od_http_stats st;
	char *want;

	fixture_open(&f, OD_METRICS_MAX_CONNS, OD_METRICS_TIMEOUT_MS);
	body_size = 1000;
	body_calls = 0;
	body_fail = false;
	want = expected_body(body_size);
	static const char req[] = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: */*\r\n\r\n";
	CHECK(exchange(&f, req, strlen(req), &a, &c));
	CHECK(a.status == 200);
	CHECK(a.content_length == 1000 && a.body_len == 1000 && !memcmp(a.body, want, 1000));
	CHECK(strstr(a.headers, "\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n") != NULL);
	CHECK(strstr(a.headers, "\r\nConnection: close\r\n") != NULL);
	CHECK(!c.reset);
	client_close(&c);
	CHECK(body_calls == 1);

	/* HTTP/1.0, a query string, bare line feeds: the same resource. */
	static const char *const same[] = { "GET /metrics HTTP/1.0\r\n\r\n", "GET /metrics?name[]=x HTTP/1.1\r\n\r\n",
					    "GET /metrics HTTP/1.1\n\n" };
	for (size_t i = 0; i < 3; i++) {
		CHECK(exchange(&f, same[i], strlen(same[i]), &a, &c) && a.status == 200);
		CHECK(a.body_len == 1000 && !memcmp(a.body, want, 1000));
		client_close(&c);
	}
	CHECK(body_calls == 4);
	od_http_server_stats(f.srv, &st);
	CHECK(st.ok == 4 && st.accepted == 4 && st.not_found == 0 && st.timed_out == 0);
	free(want);
	fixture_close(&f);
}

static void test_http_errors(void)
{
	static const struct {
		const char *req;
		int status;
		const char *header;
	} cases[] = {
		{ "GET /other HTTP/1.1\r\n\r\n", 404, NULL },
		{ "GET / HTTP/1.1\r\n\r\n", 404, NULL },
		{ "GET /metricsX HTTP/1.1\r\n\r\n", 404, NULL },
		{ "GET /metrics/ HTTP/1.1\r\n\r\n", 404, NULL },
		{ "GET http://127.0.0.1/metrics HTTP/1.1\r\n\r\n", 404, NULL },
		{ "POST /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", 405, "\r\nAllow: GET\r\n" },
		{ "HEAD /metrics HTTP/1.1\r\n\r\n", 405, "\r\nAllow: GET\r\n" },
		{ "get /metrics HTTP/1.1\r\n\r\n", 405, NULL },
		{ "DELETE /other HTTP/1.1\r\n\r\n", 405, NULL },
		{ "garbage\r\n\r\n", 400, NULL },
		{ "GET /metrics\r\n\r\n", 400, NULL },
		{ "GET /metrics HTTP/2.0\r\n\r\n", 400, NULL },
		{ "GET /metrics HTTP/1.1 extra\r\n\r\n", 400, NULL },
		{ "GET  /metrics HTTP/1.1\r\n\r\n", 400, NULL },
		{ "G(T /metrics HTTP/1.1\r\n\r\n", 400, NULL },
		{ "\r\n\r\n", 400, NULL },
	};
	struct http_fixture f;
	struct od_http_stats st;

	fixture_open(&f, OD_METRICS_MAX_CONNS, OD_METRICS_TIMEOUT_MS);
	body_calls = 0;
	body_fail = false;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct answer a;

		CHECK(exchange(&f, cases[i].req, strlen(cases[i].req), &a, NULL));
		CHECK(a.status == cases[i].status);
		if (a.status != cases[i].status)
			fprintf(stderr, "  %s -> %d, expected %d\n", cases[i].req, a.status, cases[i].status);
		CHECK(strstr(a.headers, "\r\nConnection: close\r\n") != NULL);
		if (cases[i].header)
			CHECK(strstr(a.headers, cases[i].header) != NULL);
	}
	CHECK(body_calls == 0);    /* nothing is rendered for a request that is not served */
	od_http_server_stats(f.srv, &st);
	CHECK(st.not_found == 5 && st.bad_method == 4 && st.bad_request == 7 && st.ok == 0);

	/* A body that cannot be produced: 500. */
	body_fail = true;
	{
		struct answer a;
		static const char req[] = "GET /metrics HTTP/1.1\r\n\r\n";

		CHECK(exchange(&f, req, strlen(req), &a, NULL) && a.status == 500);
	}
	body_fail = false;
	od_http_server_stats(f.srv, &st);
	CHECK(st.failed == 1);
	fixture_close(&f);
}

/* A POST with a body larger than the request limit, already sent in full: the 405 must still arrive
 * complete (the server reads the rest instead of resetting the connection). */
static void test_http_unread_body_no_reset(void)
{
	struct http_fixture f;
	struct answer a;
	struct client c;
	size_t body = 200000, n;
	char *req = malloc(body + 100);

	fixture_open(&f, OD_METRICS_MAX_CONNS, OD_METRICS_TIMEOUT_MS);
	n = (size_t)sprintf(req, "POST /metrics HTTP/1.1\r\nContent-Length: %zu\r\n\r\n", body);
	memset(req + n, 'x', body);
	CHECK(exchange(&f, req, n + body, &a, &c));
	CHECK(a.status == 405 && !c.reset);
	client_close(&c);
	free(req);
	fixture_close(&f);
}

static void test_http_oversized_dropped(void)
{
	struct http_fixture f;
	struct client c;
	struct od_http_stats st;
	size_t n = OD_METRICS_REQUEST_MAX + 100;
	char *req = malloc(n);

	fixture_open(&f, OD_METRICS_MAX_CONNS, OD_METRICS_TIMEOUT_MS);
	body_calls = 0;
	/* A request line and one endless header: never an empty line within the limit. */
	memcpy(req, "GET /metrics HTTP/1.1\r\nX-Long: ", 31);
	memset(req + 31, 'y', n - 31);
	client_open(&c, f.port, req, n);
	pump(&f, &c, 1, 5000);
	CHECK(c.closed);
	CHECK(c.in_len == 0);           /* dropped: no answer at all */
	od_http_server_stats(f.srv, &st);
	CHECK(st.too_large == 1 && st.ok == 0 && body_calls == 0);
	client_close(&c);

	/* Exactly at the limit with the empty line in it is served. */
	n = OD_METRICS_REQUEST_MAX;
	memcpy(req, "GET /metrics HTTP/1.1\r\nX-Long: ", 31);
	memset(req + 31, 'y', n - 31 - 4);
	memcpy(req + n - 4, "\r\n\r\n", 4);
	{
		struct answer a;

		CHECK(exchange(&f, req, n, &a, NULL) && a.status == 200);
	}
	free(req);
	fixture_close(&f);
}

static void test_http_slow_client_timed_out(void)
{
	struct http_fixture f;
	struct client c;
	struct od_http_stats st;
	static const char part[] = "GET /metrics HTTP/1.1\r\nHost: x\r\n";   /* no empty line yet */
	const uint32_t timeout_ms = 300;

	fixture_open(&f, OD_METRICS_MAX_CONNS, timeout_ms);
	client_open(&c, f.port, part, strlen(part));
	/* Well before the time limit the connection is still there... */
	pump(&f, &c, 1, 100);
	CHECK(!c.closed);
	/* ... and after it, closed without an answer. */
	pump(&f, &c, 1, 10000);
	CHECK(c.closed && c.in_len == 0);
	od_http_server_stats(f.srv, &st);
	CHECK(st.timed_out == 1 && st.ok == 0);
	client_close(&c);
	fixture_close(&f);
}

static void test_http_connection_limit(void)
{
	struct http_fixture f;
	struct client c[3], d;
	struct od_http_stats st;
	struct answer a;
	static const char req[] = "GET /metrics HTTP/1.1\r\n\r\n";

	fixture_open(&f, 2, OD_METRICS_TIMEOUT_MS);
	body_size = 10;
	body_fail = false;
	/* Three idle clients: the third is closed at once, the first two wait. */
	for (int i = 0; i < 3; i++) {
		client_open(&c[i], f.port, "", 0);
		pump(&f, &c[i], 1, 50);
	}
	pump(&f, c, 3, 100);
	CHECK(!c[0].closed && !c[1].closed && c[2].closed && c[2].in_len == 0);
	od_http_server_stats(f.srv, &st);
	CHECK(st.accepted == 3 && st.refused == 1);
	/* One goes away: a new client is served. */
	client_close(&c[0]);
	pump(&f, &c[1], 1, 100);
	CHECK(exchange(&f, req, strlen(req), &a, NULL) && a.status == 200);
	/* The remaining idle one still gets its answer when it finally asks. */
	c[1].out = req;
	c[1].out_len = strlen(req);
	pump(&f, &c[1], 1, 5000);
	CHECK(parse_answer(&c[1], &a) && a.status == 200);
	client_close(&c[1]);
	client_close(&c[2]);
	/* Closing the server with a connection still open frees it (ASan would see a leak). */
	client_open(&d, f.port, "GET /met", 8);
	pump(&f, &d, 1, 50);
	fixture_close(&f);
	client_close(&d);
}

/* A 3 MiB answer to a client that reads 4 KiB per round: the server keeps writing as the socket drains. */
static void test_http_large_answer_slow_reader(void)
{
	struct http_fixture f;
	struct client c;
	struct answer a;
	static const char req[] = "GET /metrics HTTP/1.1\r\n\r\n";
	char *want;

	body_size = 3 << 20;
	body_fail = false;
	want = expected_body(body_size);
	fixture_open(&f, OD_METRICS_MAX_CONNS, OD_METRICS_TIMEOUT_MS);
	client_open(&c, f.port, req, strlen(req));
	c.read_limit = 64 << 10;
	pump(&f, &c, 1, 20000);
	CHECK(c.closed && parse_answer(&c, &a) && a.status == 200);
	CHECK(a.body_len == body_size && !memcmp(a.body, want, body_size));
	client_close(&c);
	free(want);
	fixture_close(&f);
	body_size = 32;
}

/* ---------------------------------------------------------------- rendering a real node */


/* Writes a state file into a fresh data dir and loads it with a fake device. */
static bool load_node(struct od_node *n, struct zl_state *st)
{
	static int seq;
	char dir[128], path[160], err[256];

	snprintf(dir, sizeof(dir), "%s/d%d", scratch, ++seq);
	snprintf(path, sizeof(path), "%s/%s", dir, ZL_STATE_FILE_NAME);
	static const uint8_t zero[32];

	snprintf(st->config.interface, sizeof(st->config.interface), "zl-test0");
	st->config.port = 51820;
	st->config.created_at = 1700000000;
	if (!memcmp(st->config.public_key, zero, sizeof(zero)))
		keypair(st->config.private_key, st->config.public_key);
	if (zl_state_save(path, st)) {
		fprintf(stderr, "  cannot write %s\n", path);
		return false;
	}
	memset(n, 0, sizeof(*n));
	if (od_node_load(n, dir, NULL, err, sizeof(err))) {
		fprintf(stderr, "  load: %s\n", err);
		return false;
	}
	n->dev = fake_device();
	return n->dev != NULL;
}

static void close_node(struct od_node *n)
{
	wg_device_free(n->dev);
	n->dev = NULL;
	od_node_close(n);
}

static void test_render_leader(void)
{
	struct od_node n;
	struct zl_state st;
	struct zl_token_record tok;
	struct zl_token t;
	struct zl_ip src;
	const char *ep = "192.0.2.1:51820";
	char err[256], *text, series[512];
	size_t len = 0;
	int samples;

	memset(&st, 0, sizeof(st));
	snprintf(st.config.node_id, sizeof(st.config.node_id), "leader");
	snprintf(st.config.cidr, sizeof(st.config.cidr), "10.200.0.0/16");
	snprintf(st.config.node_ip, sizeof(st.config.node_ip), "10.200.0.1");
	snprintf(st.config.slice_cidr, sizeof(st.config.slice_cidr), "10.200.0.0/28");
	snprintf(st.config.endpoint, sizeof(st.config.endpoint), "%s", ep);
	snprintf(st.config.hostname, sizeof(st.config.hostname), "boss");
	st.config.is_leader = true;
	keypair(st.config.private_key, st.config.public_key);
	CHECK(zl_token_create(&t, &tok, st.config.public_key, &ep, 1, (uint64_t)time(NULL), 3600) == ZL_TOKEN_OK);
	zl_token_wipe(&t);
	st.tokens = calloc(1, sizeof(*st.tokens));
	st.n_tokens = 1;
	od_token_to_state(&tok, &st.tokens[0]);
	if (!load_node(&n, &st)) {
		CHECK(!"leader node");
		zl_state_free(&st);
		return;
	}
	zl_state_free(&st);
	CHECK(zl_ip_parse("192.0.2.7", &src, NULL, 0) == 0);
	for (int i = 0; i < 2; i++) {
		struct zl_join_request req;
		uint8_t priv[32];

		memset(&req, 0, sizeof(req));
		keypair(priv, req.public_key);
		snprintf(req.hostname, sizeof(req.hostname), i ? "" : "web-1");
		CHECK(od_node_admit(&n, &req, 0, &src, err, sizeof(err)) == ZL_JOIN_OK);
	}
	CHECK(n.st.n_peers == 2);

	text = od_metrics_render(&n, &len);
	CHECK(text != NULL);
	if (!text) {
		close_node(&n);
		return;
	}
	CHECK(len == strlen(text));
	samples = check_exposition(text);
	CHECK(samples > 0);
	CHECK(promtool_ok(text, len));
	/* Every peer with its three labels, bytes 0 (nothing was sent), no handshake yet. */
	for (size_t i = 0; i < n.st.n_peers; i++) {
		const struct zl_state_peer *p = &n.st.peers[i];

		snprintf(series, sizeof(series), "zl_overlay_peer_rx_bytes_total{node_id=\"%s\",hostname=\"%s\",overlay_ip=\"%s\"}",
			 p->node_id, p->hostname, p->overlay_ip);
		CHECK(sample(text, series) == 0);
		snprintf(series, sizeof(series), "zl_overlay_peer_tx_bytes_total{node_id=\"%s\",hostname=\"%s\",overlay_ip=\"%s\"}",
			 p->node_id, p->hostname, p->overlay_ip);
		CHECK(sample(text, series) == 0);
	}
	CHECK(strstr(text, "hostname=\"web-1\"") && strstr(text, "hostname=\"\""));
	CHECK(!strstr(text, "zl_overlay_peer_last_handshake_age_seconds"));
	/* Leader: its own address and the two members; a /16 has 65534 usable addresses. */
	CHECK(has_line(text, "# TYPE zl_overlay_addresses_allocated gauge"));
	CHECK(sample(text, "zl_overlay_addresses_allocated") == 3);
	CHECK(sample(text, "zl_overlay_addresses_free") == 65534 - 3);
	CHECK(has_line(text, "# TYPE zl_overlay_handshakes_total counter"));
	CHECK(sample(text, "zl_overlay_handshakes_total{result=\"initiated\"}") >= 0);
	CHECK(sample(text, "zl_overlay_handshakes_total{result=\"completed\"}") == 0);
	for (int r = 0; r < WG_DROP_REASONS; r++) {
		snprintf(series, sizeof(series), "zl_overlay_packets_rejected_total{reason=\"%s\"}", wg_drop_reason_name(r));
		CHECK(sample(text, series) == 0);
	}
	/* Modules that are not running here (DNS, probes, checks) contribute nothing. */
	if (!n.dns)
		CHECK(!strstr(text, "zl_overlay_dns_"));
	if (!n.prober)
		CHECK(!strstr(text, "zl_overlay_probe") && !strstr(text, "zl_overlay_peer_healthy"));
	free(text);

	/* The numbers follow the allocator: one member removed. */
	CHECK(od_node_remove_member(&n, 1, err, sizeof(err)) == 0);
	text = od_metrics_render(&n, &len);
	CHECK(text && sample(text, "zl_overlay_addresses_allocated") == 2 && sample(text, "zl_overlay_addresses_free") == 65532);
	CHECK(text && check_exposition(text) > 0);
	free(text);
	close_node(&n);
}

static void test_render_worker(void)
{
	struct od_node n;
	struct zl_state st;
	uint8_t priv[32];
	char *text;
	size_t len = 0;

	memset(&st, 0, sizeof(st));
	snprintf(st.config.node_id, sizeof(st.config.node_id), "node-0-2");
	snprintf(st.config.cidr, sizeof(st.config.cidr), "10.200.0.0/16");
	snprintf(st.config.node_ip, sizeof(st.config.node_ip), "10.200.0.2");
	st.config.is_leader = false;
	st.peers = calloc(1, sizeof(*st.peers));
	st.n_peers = 1;
	snprintf(st.peers[0].node_id, sizeof(st.peers[0].node_id), "node-0-1");
	snprintf(st.peers[0].overlay_ip, sizeof(st.peers[0].overlay_ip), "10.200.0.1");
	snprintf(st.peers[0].endpoint, sizeof(st.peers[0].endpoint), "192.0.2.1:51820");
	snprintf(st.peers[0].hostname, sizeof(st.peers[0].hostname), "boss");
	keypair(priv, st.peers[0].public_key);
	if (!load_node(&n, &st)) {
		CHECK(!"worker node");
		zl_state_free(&st);
		return;
	}
	zl_state_free(&st);
	od_node_sync_device(&n, NULL, 0);
	text = od_metrics_render(&n, &len);
	CHECK(text != NULL);
	if (text) {
		CHECK(check_exposition(text) > 0);
		CHECK(promtool_ok(text, len));
		CHECK(sample(text, "zl_overlay_peer_rx_bytes_total{node_id=\"node-0-1\",hostname=\"boss\",overlay_ip=\"10.200.0.1\"}") == 0);
		/* A worker allocates nothing: the address families are absent. */
		CHECK(!strstr(text, "zl_overlay_addresses_"));
		CHECK(strstr(text, "zl_overlay_packets_rejected_total{reason=\"malformed\"} 0\n") != NULL);
	}
	free(text);
	close_node(&n);
}

/* The daemon's entry points: nothing without --metrics; a refused address names the rule. */
static void test_open_rules(void)
{
	struct od_node n;
	char err[256] = "";

	memset(&n, 0, sizeof(n));
	snprintf(n.st.config.node_ip, sizeof(n.st.config.node_ip), "10.200.0.1");
	CHECK(od_metrics_open(&n, err, sizeof(err)) == 0 && n.metrics == NULL);
	snprintf(n.opts.metrics, sizeof(n.opts.metrics), "192.0.2.1:9464");
	CHECK(od_metrics_open(&n, err, sizeof(err)) == -EINVAL && strstr(err, "underlay") && n.metrics == NULL);
	od_metrics_close(&n);     /* nothing open: harmless */
}

/* od_metrics_open on a real loop: the daemon's server answers with the node's rendering. */
static void test_open_serves_render(void)
{
	struct od_node n;
	struct zl_state st;
	struct wg_loop loop;
	struct client c;
	struct answer a;
	char err[256] = "";
	static const char req[] = "GET /metrics HTTP/1.1\r\n\r\n";
	uint16_t port;

	memset(&st, 0, sizeof(st));
	snprintf(st.config.node_id, sizeof(st.config.node_id), "node-0-2");
	snprintf(st.config.cidr, sizeof(st.config.cidr), "10.200.0.0/16");
	snprintf(st.config.node_ip, sizeof(st.config.node_ip), "10.200.0.2");
	if (!load_node(&n, &st)) {
		CHECK(!"node");
		zl_state_free(&st);
		return;
	}
	zl_state_free(&st);
	CHECK(wg_loop_init(&loop) == 0);
	n.loop = &loop;
	CHECK(od_timers_init(&n.timers, &loop) == 0);
	n.timers_ready = true;
	/* Port 0 is refused by the rule, so find a free port first. */
	{
		int s = socket(AF_INET, SOCK_STREAM, 0);
		struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
		socklen_t sl = sizeof(sa);

		bind(s, (struct sockaddr *)&sa, sizeof(sa));
		getsockname(s, (struct sockaddr *)&sa, &sl);
		snprintf(n.opts.metrics, sizeof(n.opts.metrics), "127.0.0.1:%u", ntohs(sa.sin_port));
		close(s);
		port = ntohs(sa.sin_port);
	}
	CHECK(od_metrics_open(&n, err, sizeof(err)) == 0 && n.metrics != NULL);
	if (!n.metrics) {
		fprintf(stderr, "  %s\n", err);
	} else {
		client_open(&c, port, req, strlen(req));
		for (int64_t end = now_ms() + 5000; !c.closed && now_ms() < end;) {
			wg_loop_wait(&loop, 5);
			client_io(&c);
		}
		CHECK(parse_answer(&c, &a) && a.status == 200);
		CHECK(strstr(a.headers, "version=0.0.4") != NULL);
		CHECK(a.body_len > 0 && strstr(a.body, "# TYPE zl_overlay_packets_rejected_total counter") != NULL);
		client_close(&c);
		/* A second server on the same port: refused with the address in the message. */
		{
			struct od_metrics *first = n.metrics;

			n.metrics = NULL;
			CHECK(od_metrics_open(&n, err, sizeof(err)) == -EADDRINUSE && strstr(err, "127.0.0.1"));
			n.metrics = first;
		}
		od_metrics_close(&n);
		CHECK(n.metrics == NULL);
	}
	od_timers_destroy(&n.timers);
	n.timers_ready = false;
	n.loop = NULL;
	wg_loop_destroy(&loop);
	close_node(&n);
}

int main(void)
{
	char cmd[128];

	if (sodium_init() < 0)
		return 1;
	snprintf(scratch, sizeof(scratch), "/tmp/zl-test-metrics-XXXXXX");
	if (!mkdtemp(scratch))
		return 1;
	TEST_RUN(test_parse_addr_accepts);
	TEST_RUN(test_parse_addr_refuses);
	TEST_RUN(test_checker_catches_violations);
	TEST_RUN(test_text_escaping_and_grouping);
	TEST_RUN(test_http_get_metrics);
	TEST_RUN(test_http_errors);
	TEST_RUN(test_http_unread_body_no_reset);
	TEST_RUN(test_http_oversized_dropped);
	TEST_RUN(test_http_slow_client_timed_out);
	TEST_RUN(test_http_connection_limit);
	TEST_RUN(test_http_large_answer_slow_reader);
	TEST_RUN(test_render_leader);
	TEST_RUN(test_render_worker);
	TEST_RUN(test_open_rules);
	TEST_RUN(test_open_serves_render);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", scratch);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", scratch);
	return TEST_SUMMARY();
}
