/* zl-overlay's command line: the parser against the real command table (options before and after the
 * command, subcommands, every kind of usage error with its message), value checks, endpoint
 * normalization, and the whole program (cli_main) on bad input: exit status 2 or 1 and a message naming
 * the problem, with nothing written. */
#include <errno.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test.h"
#include "cli/cli.h"
#include "cli/net.h"

enum { MAX_ARGV = 16 };

/* Splits a space-separated command line (argv[0] = "zl-overlay") into a static argv. */
static int split(const char *line, char *argv[MAX_ARGV], char *buf, size_t buflen)
{
	int argc = 0;

	snprintf(buf, buflen, "zl-overlay %s", line);
	for (char *save = NULL, *t = strtok_r(buf, " ", &save); t && argc < MAX_ARGV - 1;
	     t = strtok_r(NULL, " ", &save))
		argv[argc++] = t;
	argv[argc] = NULL;
	return argc;
}

static int parse(const char *line, struct cli_args *a, char *err, size_t errlen)
{
	static char buf[512];
	static char *argv[MAX_ARGV];
	int argc = split(line, argv, buf, sizeof(buf));

	return cli_parse(&cli_root, argc, argv, a, err, errlen);
}

static void test_parse_ok(void)
{
	static const struct {
		const char *line, *path;
		enum cli_opt opt;
		const char *value;
		size_t nargs;
	} cases[] = {
		{ "status", "status", CLI_OPT_JSON, NULL, 0 },
		{ "status --json", "status", CLI_OPT_JSON, "", 0 },
		{ "--json status", "status", CLI_OPT_JSON, "", 0 },
		{ "--data-dir /d status", "status", CLI_OPT_DATA_DIR, "/d", 0 },
		{ "status --data-dir /d", "status", CLI_OPT_DATA_DIR, "/d", 0 },
		{ "status --data-dir=/d", "status", CLI_OPT_DATA_DIR, "/d", 0 },
		{ "init-leader --cidr 10.0.0.0/8 --port 1", "init-leader", CLI_OPT_CIDR, "10.0.0.0/8", 0 },
		{ "init-leader --cidr=10.0.0.0/8", "init-leader", CLI_OPT_CIDR, "10.0.0.0/8", 0 },
		{ "join --token zlj1.x --hostname w1", "join", CLI_OPT_HOSTNAME, "w1", 0 },
		{ "token create --ttl 1h", "token create", CLI_OPT_TTL, "1h", 0 },
		{ "--data-dir /x token list --json", "token list", CLI_OPT_DATA_DIR, "/x", 0 },
		{ "token revoke 0011223344556677", "token revoke", CLI_OPT_JSON, NULL, 1 },
		{ "remove-peer node-0-5", "remove-peer", CLI_OPT_JSON, NULL, 1 },
		{ "remove-peer -- -odd", "remove-peer", CLI_OPT_JSON, NULL, 1 },
		{ "leave --timeout 3", "leave", CLI_OPT_TIMEOUT, "3", 0 },
		{ "remove-peer --help", "remove-peer", CLI_OPT_HELP, "", 0 },
		{ "token -h", "token", CLI_OPT_HELP, "", 0 },
		{ "--help", "", CLI_OPT_HELP, "", 0 },
		{ "dns add web 10.0.0.5", "dns add", CLI_OPT_TTL, NULL, 2 },
		{ "dns add web 10.0.0.5 --ttl 60", "dns add", CLI_OPT_TTL, "60", 2 },
		{ "dns add --srv _h._tcp.web 1 2 80 web", "dns add", CLI_OPT_SRV, "", 5 },
		{ "dns add web 10.0.0.5 --check http:80/x", "dns add", CLI_OPT_CHECK, "http:80/x", 2 },
		{ "dns add web ::1 --check tcp:1 --check-interval 9", "dns add", CLI_OPT_CHECK_INTERVAL, "9", 2 },
		{ "dns add web ::1 --check tcp:1 --check-threshold 3", "dns add", CLI_OPT_CHECK_THRESHOLD, "3", 2 },
		{ "dns remove web", "dns remove", CLI_OPT_JSON, NULL, 1 },
		{ "dns remove web 10.0.0.5", "dns remove", CLI_OPT_JSON, NULL, 2 },
		{ "dns list --json", "dns list", CLI_OPT_JSON, "", 0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct cli_args a;
		char err[256], path[64];
		int r = parse(cases[i].line, &a, err, sizeof(err));

		if (r != 0)
			fprintf(stderr, "  case '%s': %s\n", cases[i].line, err);
		CHECK(r == 0);
		CHECK(!strcmp(cli_command_path(&a, path, sizeof(path)), cases[i].path));
		CHECK(cases[i].value ? a.value[cases[i].opt] && !strcmp(a.value[cases[i].opt], cases[i].value)
				     : a.value[cases[i].opt] == NULL);
		CHECK(a.n_args == cases[i].nargs);
	}
}

static void test_parse_positional_and_dash(void)
{
	struct cli_args a;
	char err[256];

	CHECK(parse("remove-peer -- -odd", &a, err, sizeof(err)) == 0);
	CHECK(a.n_args == 1 && !strcmp(a.args[0], "-odd"));
	CHECK(parse("token revoke abc --data-dir /q", &a, err, sizeof(err)) == 0);
	CHECK(a.n_args == 1 && !strcmp(a.args[0], "abc") && !strcmp(a.value[CLI_OPT_DATA_DIR], "/q"));
}

static void test_parse_errors(void)
{
	static const struct {
		const char *line, *msg;
	} cases[] = {
		{ "", "missing command" },
		{ "bogus", "unknown command 'bogus'" },
		{ "status --bogus", "unknown option '--bogus'" },
		{ "status -x", "unknown option '-x'" },
		{ "status --json --json", "option --json given twice" },
		{ "status --json=1", "option --json takes no value" },
		{ "status --cidr 10.0.0.0/8", "option --cidr is not valid for 'status'" },
		{ "--cidr 10.0.0.0/8 status", "option --cidr is not valid for 'status'" },
		{ "init-leader --cidr", "option --cidr needs a value (CIDR)" },
		{ "join --hostname --json", "option --hostname needs a value (NAME)" },
		{ "status extra", "unexpected argument 'extra'" },
		{ "remove-peer", "missing argument" },
		{ "remove-peer a b", "unexpected argument 'b'" },
		{ "token", "missing token command" },
		{ "token make", "unknown token command 'make'" },
		{ "token revoke", "missing argument" },
		{ "token create --json", "option --json is not valid for 'token create'" },
		{ "--json", "option --json needs a command" },
		{ "leave --data-dir a --data-dir b", "option --data-dir given twice" },
		{ "dns", "missing dns command" },
		{ "dns register web", "unknown dns command 'register'" },
		{ "dns add", "missing argument" },
		{ "dns add a b c d e f", "unexpected argument 'f'" },
		{ "dns remove", "missing argument" },
		{ "dns remove a b c", "unexpected argument 'c'" },
		{ "dns list x", "unexpected argument 'x'" },
		{ "dns list --ttl 5", "option --ttl is not valid for 'dns list'" },
		{ "dns remove web --check tcp:1", "option --check is not valid for 'dns remove'" },
		{ "status --srv", "option --srv is not valid for 'status'" },
		{ "dns add web 1.2.3.4 --check", "option --check needs a value (CHECK)" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct cli_args a;
		char err[256];
		int r = parse(cases[i].line, &a, err, sizeof(err));

		if (r != -EINVAL || !strstr(err, cases[i].msg))
			fprintf(stderr, "  case '%s': r=%d err='%s'\n", cases[i].line, r, err);
		CHECK(r == -EINVAL);
		CHECK(strstr(err, cases[i].msg) != NULL);
	}
}

static void test_values(void)
{
	uint16_t port = 0;
	uint64_t v = 0;

	CHECK(cli_value_port("1", &port) && port == 1);
	CHECK(cli_value_port("65535", &port) && port == 65535);
	CHECK(!cli_value_port("0", &port));
	CHECK(!cli_value_port("65536", &port));
	CHECK(!cli_value_port("051820", &port));
	CHECK(!cli_value_port("+5", &port));
	CHECK(!cli_value_port(" 5", &port));
	CHECK(!cli_value_port("5x", &port));
	CHECK(!cli_value_port("", &port));
	CHECK(cli_value_uint("18446744073709551615", 0, UINT64_MAX, &v) && v == UINT64_MAX);
	CHECK(!cli_value_uint("18446744073709551616", 0, UINT64_MAX, &v));
	CHECK(!cli_value_uint("3", 4, 9, &v));
}

static void test_endpoint_normalize(void)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{ "192.0.2.1:51820", "192.0.2.1:51820" },
		{ "192.0.2.1", "192.0.2.1:7000" },
		{ "2001:db8::1", "[2001:db8::1]:7000" },
		{ "[2001:db8::1]:9", "[2001:db8::1]:9" },
		{ "leader.example", "leader.example:7000" },
		{ "leader.example:1", "leader.example:1" },
		{ "192.0.2.1:0", NULL },
		{ "192.0.2.1:", NULL },
		{ "bad host", NULL },
		{ "", NULL },
		{ "[2001:db8::1]", NULL },
		{ "10.0.0.256", NULL },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char out[ZL_ENDPOINT_MAX_LEN + 1] = "";
		bool ok = cli_endpoint_normalize(cases[i].in, 7000, out);

		CHECK(ok == (cases[i].out != NULL));
		if (cases[i].out)
			CHECK(!strcmp(out, cases[i].out));
	}
}

/* dns add: the request built from the arguments, field by field, and every bad argument named. */
static const char *str_at(json_object *o, const char *a, const char *b)
{
	json_object *v;

	if (!json_object_object_get_ex(o, a, &v) || (b && !json_object_object_get_ex(v, b, &v)))
		return NULL;
	return json_object_get_string(v);
}

static int64_t int_at(json_object *o, const char *a, const char *b)
{
	json_object *v;

	if (!json_object_object_get_ex(o, a, &v) || (b && !json_object_object_get_ex(v, b, &v)))
		return -1;
	return json_object_get_int64(v);
}

static json_object *dns_request(const char *line, char *msg, size_t msglen, int *rc)
{
	struct cli_args a;
	json_object *req = NULL;
	char err[256];

	*rc = -1;
	if (parse(line, &a, err, sizeof(err)) != 0) {
		fprintf(stderr, "  '%s' does not parse: %s\n", line, err);
		return NULL;
	}
	*rc = cli_dns_add_request(&a, &req, msg, msglen);
	return req;
}

static void test_dns_add_request(void)
{
	char msg[256];
	json_object *r, *v;
	int rc;

	r = dns_request("dns add Web.Overlay.Local 10.0.0.5", msg, sizeof(msg), &rc);
	CHECK(rc == CLI_EXIT_OK && r);
	CHECK(!strcmp(str_at(r, "name", NULL), "Web.Overlay.Local") && !strcmp(str_at(r, "addr", NULL), "10.0.0.5"));
	CHECK(!json_object_object_get_ex(r, "ttl", &v) && !json_object_object_get_ex(r, "check", &v) &&
	      !json_object_object_get_ex(r, "srv", &v));
	json_object_put(r);
	r = dns_request("dns add web fd00::5 --ttl 5m --check http:8080/health/x --check-interval 1m --check-threshold 4",
			msg, sizeof(msg), &rc);
	CHECK(rc == CLI_EXIT_OK && r);
	CHECK(int_at(r, "ttl", NULL) == 300 && !strcmp(str_at(r, "check", "kind"), "http") &&
	      int_at(r, "check", "port") == 8080 && !strcmp(str_at(r, "check", "path"), "/health/x") &&
	      int_at(r, "check", "interval_s") == 60 && int_at(r, "check", "threshold") == 4);
	json_object_put(r);
	r = dns_request("dns add web 10.0.0.5 --ttl 0 --check tcp:22", msg, sizeof(msg), &rc);
	CHECK(rc == CLI_EXIT_OK && r && int_at(r, "ttl", NULL) == 0 && !strcmp(str_at(r, "check", "kind"), "tcp") &&
	      int_at(r, "check", "port") == 22 && !str_at(r, "check", "path") && int_at(r, "check", "interval_s") == -1);
	json_object_put(r);
	r = dns_request("dns add --srv _http._tcp.web 10 0 443 web.example. --ttl 1d", msg, sizeof(msg), &rc);
	CHECK(rc == CLI_EXIT_OK && r);
	CHECK(!strcmp(str_at(r, "name", NULL), "_http._tcp.web") && int_at(r, "srv", "priority") == 10 &&
	      int_at(r, "srv", "weight") == 0 && int_at(r, "srv", "port") == 443 &&
	      !strcmp(str_at(r, "srv", "target"), "web.example.") && int_at(r, "ttl", NULL) == 86400 &&
	      !str_at(r, "addr", NULL));
	json_object_put(r);
}

static void test_dns_add_request_errors(void)
{
	static const struct {
		const char *line, *msg;
	} cases[] = {
		{ "dns add web", "expected NAME IP" },
		{ "dns add web 10.0.0.5 10.0.0.6", "expected NAME IP" },
		{ "dns add web 10.0.0.256", "'10.0.0.256' is not an IPv4 or IPv6 address" },
		{ "dns add web host.example", "'host.example' is not an IPv4 or IPv6 address" },
		{ "dns add web 10.0.0.5 --ttl 86401", "--ttl '86401'" },
		{ "dns add web 10.0.0.5 --ttl 2d", "--ttl '2d'" },
		{ "dns add web 10.0.0.5 --ttl -1", "--ttl '-1'" },
		{ "dns add web 10.0.0.5 --ttl 5x", "--ttl '5x'" },
		{ "dns add web 10.0.0.5 --check udp:53", "--check 'udp:53': expected tcp:PORT or http:PORT/PATH" },
		{ "dns add web 10.0.0.5 --check tcp", "--check 'tcp': expected" },
		{ "dns add web 10.0.0.5 --check tcp:0", "--check 'tcp:0': the port must be 1 to 65535" },
		{ "dns add web 10.0.0.5 --check tcp:80/x", "--check 'tcp:80/x': the port must be" },
		{ "dns add web 10.0.0.5 --check http:/x", "--check 'http:/x': the port must be" },
		{ "dns add web 10.0.0.5 --check http:123456789/x", "the port must be 1 to 65535" },
		{ "dns add web 10.0.0.5 --check-interval 5", "--check-interval needs --check" },
		{ "dns add web 10.0.0.5 --check-threshold 5", "--check-threshold needs --check" },
		{ "dns add web 10.0.0.5 --check tcp:1 --check-interval 0", "--check-interval '0'" },
		{ "dns add web 10.0.0.5 --check tcp:1 --check-interval 2h", "--check-interval '2h'" },
		{ "dns add web 10.0.0.5 --check tcp:1 --check-threshold 0", "--check-threshold '0': expected 1 to 100" },
		{ "dns add web 10.0.0.5 --check tcp:1 --check-threshold 101", "--check-threshold '101'" },
		{ "dns add --srv _h._tcp.web 1 2 80", "--srv takes NAME PRIORITY WEIGHT PORT TARGET (got 4 arguments)" },
		{ "dns add --srv web 1 2 80 x", "'web': an SRV name must be _service._proto.name" },
		{ "dns add --srv _h.tcp.web 1 2 80 x", "an SRV name must be _service._proto.name" },
		{ "dns add --srv _h._tcp 1 2 80 x", "an SRV name must be _service._proto.name" },
		{ "dns add --srv _h._tcp.web 65536 2 80 x", "PRIORITY '65536': expected 0 to 65535" },
		{ "dns add --srv _h._tcp.web 1 -2 80 x", "unknown option '-2'" },
		{ "dns add --srv _h._tcp.web 1 x 80 x", "WEIGHT 'x': expected 0 to 65535" },
		{ "dns add --srv _h._tcp.web 1 2 0 x", "PORT '0': expected 1 to 65535" },
		{ "dns add --srv _h._tcp.web 1 2 80 x --check tcp:1", "--check is only for address records" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct cli_args a;
		char msg[256] = "", err[256] = "";
		json_object *req = (json_object *)&a;   /* must come back NULL */
		int r = parse(cases[i].line, &a, err, sizeof(err)), rc = -1;
		const char *got = r ? err : msg;

		if (r == 0)
			rc = cli_dns_add_request(&a, &req, msg, sizeof(msg));
		if (!strstr(got, cases[i].msg) || (r == 0 && (rc != CLI_EXIT_USAGE || req)))
			fprintf(stderr, "  case '%s': parse %d rc %d '%s'\n", cases[i].line, r, rc, got);
		CHECK(strstr(got, cases[i].msg) != NULL);
		CHECK(r != 0 || (rc == CLI_EXIT_USAGE && req == NULL));
	}
}

/* ---- the whole program on bad input ---- */

static char scratch[64];

struct run {
	int rc;
	char *out, *err;
};

static void run_free(struct run *r)
{
	free(r->out);
	free(r->err);
}

/* Runs cli_main on the line with --data-dir scratch appended (unless the line has one). */
static struct run run(const char *line)
{
	char full[512], buf[600], *argv[MAX_ARGV];
	struct run r = { 0 };
	size_t olen, elen;
	FILE *o, *e;
	int argc;

	snprintf(full, sizeof(full), "%s%s%s", line, strstr(line, "--data-dir") ? "" : " --data-dir ",
		 strstr(line, "--data-dir") ? "" : scratch);
	argc = split(full, argv, buf, sizeof(buf));
	o = open_memstream(&r.out, &olen);
	e = open_memstream(&r.err, &elen);
	r.rc = cli_main(argc, argv, o, e);
	fclose(o);
	fclose(e);
	return r;
}

static bool scratch_empty(void)
{
	char p[128];
	struct stat st;

	snprintf(p, sizeof(p), "%s/state.json", scratch);
	return stat(p, &st) < 0;
}

static void test_main_bad_input(void)
{
	static const struct {
		const char *line;
		int rc;
		const char *msg;
	} cases[] = {
		{ "init-leader --cidr 10.200.0.1/16", 2, "has host bits set (did you mean 10.200.0.0/16?)" },
		{ "init-leader --cidr 10.200.0.0/33", 2, "--cidr '10.200.0.0/33'" },
		{ "init-leader --cidr banana", 2, "--cidr 'banana'" },
		{ "init-leader --cidr 10.0.0.0/28", 2, "too small for /28 node slices" },
		{ "init-leader --cidr 10.0.0.0/24 --slice-prefix 31", 2, "--slice-prefix '31'" },
		{ "init-leader --cidr 10.0.0.0/24 --slice-prefix 24", 2, "too small for /24 node slices" },
		{ "init-leader --port 0", 2, "--port '0'" },
		{ "init-leader --port 70000", 2, "--port '70000'" },
		{ "init-leader --endpoint 1.2.3.4:99999", 2, "--endpoint '1.2.3.4:99999'" },
		{ "init-leader --hostname -bad", 2, "--hostname '-bad'" },
		{ "init-leader --hostname a.b", 2, "--hostname 'a.b'" },
		{ "init-leader --interface a/b", 2, "--interface 'a/b'" },
		{ "init-leader --interface 0123456789abcdef", 2, "--interface '0123456789abcdef'" },
		{ "init-leader --ttl 0", 2, "--ttl '0'" },
		{ "init-leader --ttl 400d", 2, "--ttl '400d'" },
		{ "join", 2, "missing --token" },
		{ "join --token zlj1.AAAA", 1, "token: malformed" },
		{ "join --token hello", 1, "token: malformed" },
		{ "join --token zlj2.AAAA", 1, "token: unsupported version" },
		{ "join --token x --port 0", 2, "--port '0'" },
		{ "token create --ttl 5x", 2, "--ttl '5x'" },
		{ "token revoke xyz", 2, "'xyz' is neither a token id" },
		{ "remove-peer a\tb", 2, "is not a node id" },
		{ "status --timeout 0", 2, "--timeout: '0'" },
		{ "status --timeout 10000", 2, "--timeout: '10000'" },
		{ "status", 1, "zl-overlayd is not running (no " },
		{ "peers --json", 1, "zl-overlayd is not running (no " },
		{ "leave", 1, "zl-overlayd is not running (no " },
		{ "remove-peer node-0-5", 1, "zl-overlayd is not running (no " },
		{ "token list", 1, "not initialized: no " },
		{ "dns add web 10.0.0.300", 2, "'10.0.0.300' is not an IPv4 or IPv6 address" },
		{ "dns add web 10.0.0.3 --check ftp:21", 2, "--check 'ftp:21'" },
		{ "dns add we\tb 10.0.0.3", 2, "is not a DNS name" },
		{ "dns remove web 1.2.3", 2, "'1.2.3' is not an IPv4 or IPv6 address" },
		{ "dns add web 10.0.0.3", 1, "zl-overlayd is not running (no " },
		{ "dns remove web", 1, "zl-overlayd is not running (no " },
		{ "dns list --json", 1, "zl-overlayd is not running (no " },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct run r = run(cases[i].line);
		bool named = r.err && strstr(r.err, cases[i].msg);

		if (r.rc != cases[i].rc || !named)
			fprintf(stderr, "  case '%s': rc=%d err='%s'\n", cases[i].line, r.rc, r.err);
		CHECK(r.rc == cases[i].rc);
		CHECK(named);
		CHECK(r.out && r.out[0] == '\0');
		CHECK(scratch_empty());
		run_free(&r);
	}
}

static void test_main_help_and_version(void)
{
	struct run r = run("remove-peer --help");

	CHECK(r.rc == 0 && strstr(r.out, "Usage: zl-overlay remove-peer NODE"));
	run_free(&r);
	r = run("token --help");
	CHECK(r.rc == 0 && strstr(r.out, "create") && strstr(r.out, "revoke") && strstr(r.out, "list"));
	run_free(&r);
	r = run("dns add --help");
	CHECK(r.rc == 0 && strstr(r.out, "Usage: zl-overlay dns add NAME IP") && strstr(r.out, "--srv PRIORITY WEIGHT PORT TARGET") &&
	      strstr(r.out, "--check-threshold N"));
	run_free(&r);
	r = run("dns --help");
	CHECK(r.rc == 0 && strstr(r.out, "add") && strstr(r.out, "remove") && strstr(r.out, "list"));
	run_free(&r);
	r = run("--version");
	CHECK(r.rc == 0 && !strncmp(r.out, "zl-overlay ", 11));
	run_free(&r);
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
	snprintf(scratch, sizeof(scratch), "/tmp/zl-test-cli-args-XXXXXX");
	if (!mkdtemp(scratch))
		return 1;
	TEST_RUN(test_parse_ok);
	TEST_RUN(test_parse_positional_and_dash);
	TEST_RUN(test_parse_errors);
	TEST_RUN(test_values);
	TEST_RUN(test_endpoint_normalize);
	TEST_RUN(test_dns_add_request);
	TEST_RUN(test_dns_add_request_errors);
	TEST_RUN(test_main_bad_input);
	TEST_RUN(test_main_help_and_version);
	cleanup();
	return TEST_SUMMARY();
}
