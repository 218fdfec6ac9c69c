/* zl-overlay's output: table alignment (exact text), byte/time formatters (tables of cases), the stable
 * JSON of status/peers/token list (fixed key order whatever the daemon's order, null for a missing
 * documented field, extra daemon fields kept after them, "result" dropped, peers sorted by address
 * numerically) and the human status (every documented field shown, peers as a table). */
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "cli/output.h"

/* Runs fn(f, arg) into a memory stream and returns the text (free it). */
static char *capture(void (*fn)(FILE *, void *), void *arg)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	fn(f, arg);
	fclose(f);
	return buf;
}

static void print_table(FILE *f, void *arg)
{
	cli_table_print(arg, f);
}

static void test_table(void)
{
	static const char *const headers[] = { "ID", "NAME", "X" };
	static const char *const r1[] = { "a", "longer-name", "1" };
	static const char *const r2[] = { "bbbb", NULL, "22" };
	struct cli_table t;
	char *s;

	cli_table_init(&t, headers, 3);
	CHECK(cli_table_add(&t, r1) == 0);
	CHECK(cli_table_add(&t, r2) == 0);
	s = capture(print_table, &t);
	CHECK(!strcmp(s, "ID    NAME         X\n"
			 "a     longer-name  1\n"
			 "bbbb  -            22\n"));
	free(s);
	cli_table_free(&t);
	CHECK(t.nrows == 0 && t.cells == NULL);
}

static void test_bytes(void)
{
	static const struct {
		uint64_t v;
		const char *s;
	} cases[] = {
		{ 0, "0 B" },          { 1023, "1023 B" },          { 1024, "1.00 KiB" },
		{ 1536, "1.50 KiB" },  { 1048576, "1.00 MiB" },     { 5368709120ull, "5.00 GiB" },
		{ UINT64_MAX, "16.00 EiB" },
	};
	char buf[CLI_FMT_LEN];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cli_format_bytes(cases[i].v, buf);
		if (strcmp(buf, cases[i].s))
			fprintf(stderr, "  %llu -> '%s'\n", (unsigned long long)cases[i].v, buf);
		CHECK(!strcmp(buf, cases[i].s));
	}
}

static void test_times(void)
{
	static const struct {
		int64_t then, now;
		const char *ago;
	} cases[] = {
		{ 0, 1000, "never" },       { 1000, 1000, "now" },         { 2000, 1000, "now" },
		{ 995, 1000, "5s ago" },    { 1000, 1060, "1m ago" },      { 1000, 1123, "2m 3s ago" },
		{ 1000, 4720, "1h 2m ago" }, { 1000, 1000 + 3 * 86400 + 4 * 3600 + 59, "3d 4h ago" },
		{ 1000, 1000 + 86400 + 30, "1d ago" },
	};
	char buf[CLI_FMT_LEN];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cli_format_ago(cases[i].then, cases[i].now, buf);
		if (strcmp(buf, cases[i].ago))
			fprintf(stderr, "  ago(%lld, %lld) -> '%s'\n", (long long)cases[i].then, (long long)cases[i].now,
				buf);
		CHECK(!strcmp(buf, cases[i].ago));
	}
	CHECK(!strcmp(cli_format_until(100, 100, buf), "expired"));
	CHECK(!strcmp(cli_format_until(100 + 86399, 100, buf), "in 23h 59m"));
	CHECK(!strcmp(cli_format_utc(0, buf), "1970-01-01T00:00:00Z"));
	CHECK(!strcmp(cli_format_utc(1700000000, buf), "2023-11-14T22:13:20Z"));
}

/* A daemon answer with fields in an unusual order, an extra field, a peer missing its hostname, and
 * peers out of order (10.200.0.10 must sort after 10.200.0.9, IPv6 after IPv4). */
static const char *status_answer =
	"{\"result\":\"ok\",\"peers\":["
	"{\"tx_bytes\":2048,\"overlay_ip\":\"fd00::1\",\"node_id\":\"v6\",\"hostname\":\"six\",\"public_key\":\"K3\","
	"\"endpoint\":\"\",\"slice_cidr\":\"fd00::/64\",\"last_handshake\":0,\"rx_bytes\":0},"
	"{\"node_id\":\"node-0-10\",\"overlay_ip\":\"10.200.0.10\",\"public_key\":\"K2\",\"endpoint\":\"192.0.2.3:51820\","
	"\"slice_cidr\":\"10.200.0.0/28\",\"last_handshake\":990,\"rx_bytes\":1536,\"tx_bytes\":100,\"extra\":7,"
	"\"loss\":1,\"rtt_ms\":null,\"health\":\"down\",\"healthy\":false,\"jitter_ms\":null},"
	"{\"node_id\":\"leader\",\"hostname\":\"lead\",\"overlay_ip\":\"10.200.0.9\",\"public_key\":\"K1\","
	"\"endpoint\":\"192.0.2.1:51820\",\"slice_cidr\":\"10.200.0.0/28\",\"last_handshake\":1000,\"rx_bytes\":5,"
	"\"tx_bytes\":6,\"healthy\":true,\"health\":\"up\",\"rtt_ms\":0.4213,\"jitter_ms\":0.05,\"loss\":0.03125}],"
	"\"hostname\":\"w1\",\"is_leader\":false,\"node_ip\":\"10.200.0.20\",\"public_key\":\"K0\","
	"\"node_id\":\"node-0-20\",\"interface\":\"zl-overlay0\",\"cidr\":\"10.200.0.0/16\",\"slice_cidr\":"
	"\"10.200.0.16/28\",\"listen_port\":51820,\"leader_ip\":\"10.200.0.9\",\"leader_connected\":true}";

static void test_status_json(void)
{
	static const char *const top[] = { "node_id", "node_ip", "public_key", "is_leader", "hostname", "interface",
					   "cidr", "slice_cidr", "listen_port", "leader_ip", "peers",
					   "leader_connected" };
	static const char *const peer[] = { "node_id", "hostname", "overlay_ip", "public_key", "endpoint",
					    "slice_cidr", "last_handshake", "rx_bytes", "tx_bytes", "healthy",
					    "health", "rtt_ms", "jitter_ms", "loss" };
	json_object *body = json_tokener_parse(status_answer), *out, *peers, *p, *v;
	size_t k = 0;

	CHECK(body != NULL);
	out = cli_status_json(body);
	CHECK(out != NULL);
	json_object_object_foreach(out, key, val)
	{
		(void)val;
		CHECK(k < 12 && !strcmp(key, top[k]));
		k++;
	}
	CHECK(k == 12);
	CHECK(!json_object_object_get_ex(out, "result", NULL));
	CHECK(json_object_object_get_ex(out, "peers", &peers) && json_object_array_length(peers) == 3);
	CHECK(!strcmp(cli_json_str(json_object_array_get_idx(peers, 0), "overlay_ip"), "10.200.0.9"));
	CHECK(!strcmp(cli_json_str(json_object_array_get_idx(peers, 1), "overlay_ip"), "10.200.0.10"));
	CHECK(!strcmp(cli_json_str(json_object_array_get_idx(peers, 2), "overlay_ip"), "fd00::1"));
	p = json_object_array_get_idx(peers, 1);
	k = 0;
	json_object_object_foreach(p, pkey, pval)
	{
		(void)pval;
		CHECK(k > 14 || (k < 14 && !strcmp(pkey, peer[k])) || (k == 14 && !strcmp(pkey, "extra")));
		k++;
	}
	CHECK(k == 15);
	/* The documented hostname is there even though the daemon left it out: null. */
	CHECK(json_object_object_get_ex(p, "hostname", &v) && v == NULL);
	CHECK(cli_json_int(p, "rx_bytes", -1) == 1536);
	json_object_put(out);
	out = cli_peers_json(body);
	CHECK(out && json_object_object_length(out) == 1 && json_object_object_get_ex(out, "peers", &peers) &&
	      json_object_array_length(peers) == 3);
	json_object_put(out);
	json_object_put(body);
}

struct status_arg {
	json_object *body;
	bool peers_only;
};

static void print_status(FILE *f, void *arg)
{
	struct status_arg *a = arg;

	if (a->peers_only)
		cli_print_peers(f, a->body, 1000);
	else
		cli_print_status(f, a->body, 1000);
}

static void test_status_text(void)
{
	struct status_arg a = { json_tokener_parse(status_answer), false };
	char *s = capture(print_status, &a);
	const char *want[] = { "node: node-0-20 (worker)\n", "  hostname:        w1\n",
			       "  overlay address: 10.200.0.20\n", "  public key:      K0\n",
			       "  interface:       zl-overlay0\n", "  listen port:     51820\n",
			       "  overlay range:   10.200.0.0/16\n", "  slice:           10.200.0.16/28\n",
			       "  leader address:  10.200.0.9\n",
			       "NODE ID    HOSTNAME  OVERLAY IP   ENDPOINT         LAST HANDSHAKE  RX        TX        "
			       "RTT      LOSS  HEALTH\n",
			       "leader     lead      10.200.0.9   192.0.2.1:51820  now             5 B       6 B       "
			       "0.42 ms  3.1%  up\n",
			       "node-0-10  -         10.200.0.10  192.0.2.3:51820  10s ago         1.50 KiB  100 B     "
			       "-        100%  down\n",
			       /* A daemon without probe figures: dashes. */
			       "v6         six       fd00::1      -                never           0 B       2.00 KiB  "
			       "-        -     -\n" };

	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		if (!strstr(s, want[i]))
			fprintf(stderr, "  missing '%s' in:\n%s", want[i], s);
		CHECK(strstr(s, want[i]) != NULL);
	}
	free(s);
	json_object_put(a.body);
	a.body = json_tokener_parse("{\"result\":\"ok\",\"peers\":[]}");
	a.peers_only = true;
	s = capture(print_status, &a);
	CHECK(!strcmp(s, "no peers\n"));
	free(s);
	json_object_put(a.body);
}

/* The health columns alone: RTT with two decimals, loss 0 as "0%", values out of range as "-"; the JSON
 * keeps the daemon's health values (null rtt stays null). */
static void test_health_columns(void)
{
	struct status_arg a = { json_tokener_parse(
		"{\"peers\":[{\"node_id\":\"a\",\"overlay_ip\":\"10.0.0.1\",\"rtt_ms\":12.5,\"loss\":0,"
		"\"health\":\"unknown\",\"healthy\":false},"
		"{\"node_id\":\"b\",\"overlay_ip\":\"10.0.0.2\",\"rtt_ms\":-1,\"loss\":1.5,\"health\":\"up\","
		"\"healthy\":true},"
		"{\"node_id\":\"c\",\"overlay_ip\":\"10.0.0.3\",\"rtt_ms\":\"7\",\"loss\":0.5,\"health\":\"down\"}]}"),
				true };
	json_object *out, *peers, *v;
	char *s;

	CHECK(a.body != NULL);
	s = capture(print_status, &a);
	CHECK(strstr(s, "  RTT       LOSS   HEALTH\n") != NULL);
	CHECK(strstr(s, "\na        -         10.0.0.1    -         never           -   -   12.50 ms  0%     unknown\n"));
	CHECK(strstr(s, "  -         -      up\n") != NULL);          /* negative RTT, loss above 1 */
	CHECK(strstr(s, "  -         50.0%  down\n") != NULL);        /* RTT of the wrong type */
	free(s);
	out = cli_peers_json(a.body);
	CHECK(out && json_object_object_get_ex(out, "peers", &peers) && json_object_array_length(peers) == 3);
	CHECK(json_object_object_get_ex(json_object_array_get_idx(peers, 1), "healthy", &v) &&
	      json_object_get_boolean(v));
	CHECK(json_object_object_get_ex(json_object_array_get_idx(peers, 2), "jitter_ms", &v) && v == NULL);
	CHECK(!strcmp(cli_json_str(json_object_array_get_idx(peers, 2), "health"), "down"));
	json_object_put(out);
	json_object_put(a.body);
}

static void print_tokens(FILE *f, void *arg)
{
	cli_print_tokens(f, arg, 1000);
}

static void test_tokens(void)
{
	json_object *body = json_tokener_parse(
		"{\"result\":\"ok\",\"tokens\":["
		"{\"revoked\":false,\"id\":\"00000000000000aa\",\"expires_at\":5000,\"uses\":0,\"max_uses\":1},"
		"{\"id\":\"00000000000000bb\",\"expires_at\":500,\"uses\":0,\"max_uses\":1,\"revoked\":false},"
		"{\"id\":\"00000000000000cc\",\"expires_at\":5000,\"uses\":1,\"max_uses\":1,\"revoked\":false},"
		"{\"id\":\"00000000000000dd\",\"expires_at\":5000,\"uses\":1,\"max_uses\":1,\"revoked\":true}]}");
	json_object *out = cli_tokens_json(body), *arr;
	const char *first_key = NULL;
	char *s;

	CHECK(out && json_object_object_get_ex(out, "tokens", &arr) && json_object_array_length(arr) == 4);
	json_object_object_foreach(json_object_array_get_idx(arr, 0), key, val)
	{
		(void)val;
		if (!first_key)
			first_key = key;
	}
	CHECK(first_key && !strcmp(first_key, "id"));
	json_object_put(out);
	s = capture(print_tokens, body);
	CHECK(strstr(s, "00000000000000aa  active   0/1") != NULL);
	CHECK(strstr(s, "00000000000000bb  expired  0/1") != NULL);
	CHECK(strstr(s, "00000000000000cc  used     1/1") != NULL);
	CHECK(strstr(s, "00000000000000dd  revoked  1/1") != NULL);
	CHECK(strstr(s, "(in 1h 6m)") != NULL);
	free(s);
	json_object_put(body);
}

int main(void)
{
	setenv("TZ", "UTC", 1);
	TEST_RUN(test_table);
	TEST_RUN(test_bytes);
	TEST_RUN(test_times);
	TEST_RUN(test_status_json);
	TEST_RUN(test_status_text);
	TEST_RUN(test_health_columns);
	TEST_RUN(test_tokens);
	return TEST_SUMMARY();
}
