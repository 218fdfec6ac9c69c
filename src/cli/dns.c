/* zl-overlay dns add|remove|list: names registered for DNS, answered by every node of the overlay.
 *
 * The running zl-overlayd does the work (dns_add, dns_remove, dns_list; docs/control-api.md): on a
 * worker it asks the leader, whose list every node follows. Here the arguments are checked and turned
 * into the request; the daemon checks the names against its zone. */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/control.h"
#include "cli/output.h"

enum {
	NAME_ARG_MAX = 255,
	DNS_MAX_TTL = 86400,     /* state.h: ZL_DNS_MAX_TTL */
	CHECK_MAX_INTERVAL = 3600,
	CHECK_MAX_THRESHOLD = 100,
	SRV_ARGS = 5,            /* NAME PRIORITY WEIGHT PORT TARGET */
};

static int usage(char *msg, size_t msglen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int usage(char *msg, size_t msglen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, msglen, fmt, ap);
	va_end(ap);
	return CLI_EXIT_USAGE;
}

/* Printable ASCII without spaces: what a DNS name argument can be at all (the daemon says the rest). */
static bool word_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > NAME_ARG_MAX)
		return false;
	for (; *s; s++) {
		if (*s < 0x21 || *s > 0x7e)
			return false;
	}
	return true;
}

/* Seconds, bare or with one unit: 90, 90s, 5m, 2h, 1d; min..max. */
static bool duration(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	static const struct {
		char unit;
		uint64_t secs;
	} units[] = { { 's', 1 }, { 'm', 60 }, { 'h', 3600 }, { 'd', 86400 } };
	char digits[24];
	size_t n = strlen(s);
	uint64_t v, mul = 1;

	if (n == 0 || n >= sizeof(digits))
		return false;
	memcpy(digits, s, n + 1);
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (n > 1 && digits[n - 1] == units[i].unit) {
			digits[n - 1] = '\0';
			mul = units[i].secs;
		}
	}
	if (!cli_value_uint(digits, 0, max, &v) || v > max / mul || v * mul < min)
		return false;
	*out = v * mul;
	return true;
}

/* An SRV owner name: _service._proto.name (RFC 2782). */
static bool srv_name_ok(const char *s)
{
	const char *d1 = strchr(s, '.'), *d2 = d1 ? strchr(d1 + 1, '.') : NULL;

	return s[0] == '_' && s[1] != '.' && d1 && d1[1] == '_' && d1[2] != '.' && d2 && d2[1];
}

static void put_int(json_object *o, const char *key, uint64_t v)
{
	json_object_object_add(o, key, json_object_new_int64((int64_t)v));
}

/* --check tcp:PORT | http:PORT[/PATH], with --check-interval and --check-threshold. */
static int check_arg(const struct cli_args *a, json_object *req, char *msg, size_t msglen)
{
	const char *spec = a->value[CLI_OPT_CHECK], *iv = a->value[CLI_OPT_CHECK_INTERVAL],
		   *th = a->value[CLI_OPT_CHECK_THRESHOLD], *colon, *slash;
	char port_text[8];
	uint64_t interval = 0, threshold = 0;
	uint16_t port;
	size_t plen;
	bool http;
	json_object *check;

	if (!spec) {
		if (iv || th)
			return usage(msg, msglen, "--%s needs --check", iv ? "check-interval" : "check-threshold");
		return CLI_EXIT_OK;
	}
	colon = strchr(spec, ':');
	http = colon && (size_t)(colon - spec) == 4 && !strncmp(spec, "http", 4);
	if (!colon || (!http && ((size_t)(colon - spec) != 3 || strncmp(spec, "tcp", 3))))
		return usage(msg, msglen, "--check '%s': expected tcp:PORT or http:PORT/PATH", spec);
	slash = http ? strchr(colon + 1, '/') : NULL;
	plen = slash ? (size_t)(slash - colon - 1) : strlen(colon + 1);
	if (plen < sizeof(port_text))
		snprintf(port_text, sizeof(port_text), "%.*s", (int)plen, colon + 1);
	if (plen >= sizeof(port_text) || !cli_value_port(port_text, &port))
		return usage(msg, msglen, "--check '%s': the port must be 1 to 65535", spec);
	if (slash && !word_ok(slash))
		return usage(msg, msglen, "--check '%s': the path must be printable, without spaces", spec);
	if (iv && !duration(iv, 1, CHECK_MAX_INTERVAL, &interval))
		return usage(msg, msglen, "--check-interval '%s': expected 1s to 1h (e.g. 5, 5s, 1m)", iv);
	if (th && !cli_value_uint(th, 1, CHECK_MAX_THRESHOLD, &threshold))
		return usage(msg, msglen, "--check-threshold '%s': expected 1 to %d", th, CHECK_MAX_THRESHOLD);
	check = json_object_new_object();
	if (!check)
		return usage(msg, msglen, "out of memory");
	json_object_object_add(check, "kind", json_object_new_string(http ? "http" : "tcp"));
	put_int(check, "port", port);
	if (slash)
		json_object_object_add(check, "path", json_object_new_string(slash));
	if (iv)
		put_int(check, "interval_s", interval);
	if (th)
		put_int(check, "threshold", threshold);
	json_object_object_add(req, "check", check);
	return CLI_EXIT_OK;
}

/* NAME PRIORITY WEIGHT PORT TARGET. */
static int srv_arg(const struct cli_args *a, json_object *req, char *msg, size_t msglen)
{
	static const char *const what[] = { "PRIORITY", "WEIGHT" };
	uint64_t v[2];
	uint16_t port;
	json_object *srv;

	if (a->n_args != SRV_ARGS)
		return usage(msg, msglen, "--srv takes NAME PRIORITY WEIGHT PORT TARGET (got %zu argument%s)", a->n_args,
			     a->n_args == 1 ? "" : "s");
	if (!srv_name_ok(a->args[0]))
		return usage(msg, msglen, "'%s': an SRV name must be _service._proto.name (e.g. _http._tcp.web)",
			     a->args[0]);
	for (int i = 0; i < 2; i++) {
		if (!cli_value_uint(a->args[1 + i], 0, 65535, &v[i]))
			return usage(msg, msglen, "%s '%s': expected 0 to 65535", what[i], a->args[1 + i]);
	}
	if (!cli_value_port(a->args[3], &port))
		return usage(msg, msglen, "PORT '%s': expected 1 to 65535", a->args[3]);
	if (!word_ok(a->args[4]))
		return usage(msg, msglen, "TARGET '%s' is not a DNS name", a->args[4]);
	if (a->value[CLI_OPT_CHECK] || a->value[CLI_OPT_CHECK_INTERVAL] || a->value[CLI_OPT_CHECK_THRESHOLD])
		return usage(msg, msglen, "--check is only for address records, not with --srv");
	srv = json_object_new_object();
	if (!srv)
		return usage(msg, msglen, "out of memory");
	put_int(srv, "priority", v[0]);
	put_int(srv, "weight", v[1]);
	put_int(srv, "port", port);
	json_object_object_add(srv, "target", json_object_new_string(a->args[4]));
	json_object_object_add(req, "srv", srv);
	return CLI_EXIT_OK;
}

static int addr_arg(const struct cli_args *a, json_object *req, char *msg, size_t msglen)
{
	uint8_t bin[16];
	const char *ip = a->n_args > 1 ? a->args[1] : NULL;

	if (a->n_args != 2)
		return usage(msg, msglen, "expected NAME IP (or --srv NAME PRIORITY WEIGHT PORT TARGET)");
	if (inet_pton(strchr(ip, ':') ? AF_INET6 : AF_INET, ip, bin) != 1)
		return usage(msg, msglen, "'%s' is not an IPv4 or IPv6 address", ip);
	json_object_object_add(req, "addr", json_object_new_string(ip));
	return check_arg(a, req, msg, msglen);
}

int cli_dns_add_request(const struct cli_args *a, json_object **out, char *msg, size_t msglen)
{
	const char *ttl = a->value[CLI_OPT_TTL];
	json_object *req;
	uint64_t secs;
	int rc;

	*out = NULL;
	if (a->n_args < 1 || !word_ok(a->args[0]))
		return usage(msg, msglen, "'%s' is not a DNS name (1 to %d printable characters, no spaces)",
			     a->n_args ? a->args[0] : "", NAME_ARG_MAX);
	if (ttl && !duration(ttl, 0, DNS_MAX_TTL, &secs))
		return usage(msg, msglen, "--ttl '%s': expected 0 to 86400 seconds (e.g. 30, 30s, 5m, 1h, 1d)", ttl);
	req = json_object_new_object();
	if (!req)
		return usage(msg, msglen, "out of memory");
	json_object_object_add(req, "name", json_object_new_string(a->args[0]));
	if (ttl)
		put_int(req, "ttl", secs);
	rc = a->value[CLI_OPT_SRV] ? srv_arg(a, req, msg, msglen) : addr_arg(a, req, msg, msglen);
	if (rc != CLI_EXIT_OK) {
		json_object_put(req);
		return rc;
	}
	*out = req;
	return CLI_EXIT_OK;
}

/* ---- commands */

/* "web (A 10.0.0.5)", "_http._tcp.web (SRV 10 5 80 web)": how a record reads everywhere below. */
static void describe(json_object *rec, char *type, size_t tlen, char *value, size_t vlen)
{
	json_object *srv;
	const char *addr = cli_json_str(rec, "addr");

	if (json_object_object_get_ex(rec, "srv", &srv) && json_object_is_type(srv, json_type_object)) {
		snprintf(type, tlen, "SRV");
		snprintf(value, vlen, "%lld %lld %lld %s", (long long)cli_json_int(srv, "priority", 0),
			 (long long)cli_json_int(srv, "weight", 0), (long long)cli_json_int(srv, "port", 0),
			 cli_json_str(srv, "target") ? cli_json_str(srv, "target") : "?");
		return;
	}
	snprintf(type, tlen, "%s", addr && strchr(addr, ':') ? "AAAA" : "A");
	snprintf(value, vlen, "%s", addr ? addr : "?");
}

int cli_cmd_dns_add(struct cli_ctx *ctx)
{
	char msg[CLI_MSG_LEN], type[8], value[300];
	json_object *req, *body = NULL, *created;
	int rc = cli_dns_add_request(ctx->args, &req, msg, sizeof(msg));

	if (rc != CLI_EXIT_OK)
		return cli_fail(ctx, rc, "%s", msg);
	/* Idempotent: adding the same record again only updates it. */
	rc = cli_control_run(ctx, "dns_add", req, true, &body);
	if (rc == CLI_EXIT_OK) {
		describe(req, type, sizeof(type), value, sizeof(value));
		fprintf(ctx->out, "%s %s (%s %s)\n",
			json_object_object_get_ex(body, "created", &created) && !json_object_get_boolean(created)
				? "updated" : "added",
			cli_json_str(body, "name") ? cli_json_str(body, "name") : ctx->args->args[0], type, value);
		json_object_put(body);
	}
	json_object_put(req);
	return rc;
}

int cli_cmd_dns_remove(struct cli_ctx *ctx)
{
	const struct cli_args *a = ctx->args;
	const char *name = a->args[0], *ip = a->n_args > 1 ? a->args[1] : NULL;
	json_object *req, *body = NULL;
	uint8_t bin[16];
	int64_t removed;
	int rc;

	if (!word_ok(name))
		return cli_fail(ctx, CLI_EXIT_USAGE, "'%s' is not a DNS name (1 to %d printable characters, no spaces)",
				name, NAME_ARG_MAX);
	if (ip && inet_pton(strchr(ip, ':') ? AF_INET6 : AF_INET, ip, bin) != 1)
		return cli_fail(ctx, CLI_EXIT_USAGE, "'%s' is not an IPv4 or IPv6 address", ip);
	req = json_object_new_object();
	if (!req)
		return cli_fail(ctx, CLI_EXIT_FAIL, "out of memory");
	json_object_object_add(req, "name", json_object_new_string(name));
	if (ip)
		json_object_object_add(req, "addr", json_object_new_string(ip));
	/* Not idempotent: sent again after a break, it would say "no record" for what it removed. */
	rc = cli_control_run(ctx, "dns_remove", req, false, &body);
	json_object_put(req);
	if (rc != CLI_EXIT_OK)
		return rc;
	removed = cli_json_int(body, "removed", 0);
	fprintf(ctx->out, "removed %lld record%s of %s\n", (long long)removed, removed == 1 ? "" : "s", name);
	json_object_put(body);
	return CLI_EXIT_OK;
}

/* Rows sorted by name, then in the daemon's order (qsort is not stable: the index decides ties). */
struct row {
	const char *name;
	size_t idx;
};

static int row_cmp(const void *x, const void *y)
{
	const struct row *a = x, *b = y;
	int r = strcmp(a->name, b->name);

	return r ? r : (a->idx > b->idx) - (a->idx < b->idx);
}

static void check_text(json_object *rec, char *out, size_t len)
{
	json_object *c;
	const char *kind, *path, *health;

	if (!json_object_object_get_ex(rec, "check", &c) || !json_object_is_type(c, json_type_object)) {
		snprintf(out, len, "-");
		return;
	}
	kind = cli_json_str(c, "kind");
	path = cli_json_str(c, "path");
	health = cli_json_str(rec, "health");
	snprintf(out, len, "%s:%lld%s every %llds, down after %lld%s%s%s", kind ? kind : "?",
		 (long long)cli_json_int(c, "port", 0), path && strcmp(path, "/") ? path : "",
		 (long long)cli_json_int(c, "interval_s", 0), (long long)cli_json_int(c, "threshold", 0),
		 health ? " (" : "", health ? health : "", health ? ")" : "");
}

static void print_records(FILE *f, json_object *records)
{
	static const char *const headers[] = { "NAME", "TYPE", "VALUE", "TTL", "CHECK", "OWNER" };
	size_t n = json_object_array_length(records);
	struct row *rows = calloc(n ? n : 1, sizeof(*rows));
	struct cli_table t;

	if (!rows)
		return;
	for (size_t i = 0; i < n; i++) {
		const char *name = cli_json_str(json_object_array_get_idx(records, i), "name");

		rows[i] = (struct row){ name ? name : "", i };
	}
	qsort(rows, n, sizeof(*rows), row_cmp);
	cli_table_init(&t, headers, 6);
	for (size_t i = 0; i < n; i++) {
		json_object *rec = json_object_array_get_idx(records, rows[i].idx);
		char type[8], value[300], ttl[24], check[400];
		const char *row[6] = { rows[i].name, type, value, ttl, check, cli_json_str(rec, "owner") };

		describe(rec, type, sizeof(type), value, sizeof(value));
		snprintf(ttl, sizeof(ttl), "%lld", (long long)cli_json_int(rec, "ttl", 0));
		check_text(rec, check, sizeof(check));
		if (cli_table_add(&t, row) < 0)
			break;
	}
	cli_table_print(&t, f);
	cli_table_free(&t);
	free(rows);
}

int cli_cmd_dns_list(struct cli_ctx *ctx)
{
	json_object *body = NULL, *records, *out;
	int rc = cli_control_run(ctx, "dns_list", NULL, true, &body);

	if (rc != CLI_EXIT_OK)
		return rc;
	if (!json_object_object_get_ex(body, "records", &records) || !json_object_is_type(records, json_type_array)) {
		json_object_put(body);
		return cli_fail(ctx, CLI_EXIT_FAIL, "the daemon's answer has no records list");
	}
	if (cli_opt(ctx, CLI_OPT_JSON)) {
		/* {"zone": ..., "records": [...]} in the daemon's order, each record as the state file has it. */
		out = json_object_new_object();
		if (out) {
			json_object_object_add(out, "zone", json_object_new_string(cli_json_str(body, "zone") ?
										  cli_json_str(body, "zone") : ""));
			json_object_object_add(out, "records", json_object_get(records));
			cli_print_json(ctx->out, out);
		}
		json_object_put(out);
	} else if (json_object_array_length(records) == 0) {
		fprintf(ctx->out, "no records\n");
	} else {
		print_records(ctx->out, records);
	}
	json_object_put(body);
	return CLI_EXIT_OK;
}
