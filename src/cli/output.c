/* Tables, JSON and formatters of zl-overlay's output: see output.h. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/output.h"
#include "overlay/cidr.h"

/* ---- Tables ---- */

void cli_table_init(struct cli_table *t, const char *const *headers, size_t ncols)
{
	memset(t, 0, sizeof(*t));
	t->headers = headers;
	t->ncols = ncols;
}

int cli_table_add(struct cli_table *t, const char *const *row)
{
	if (t->nrows == t->cap) {
		size_t cap = t->cap ? 2 * t->cap : 8;
		char **cells = realloc(t->cells, cap * t->ncols * sizeof(*cells));

		if (!cells)
			return -ENOMEM;
		t->cells = cells;
		t->cap = cap;
	}
	for (size_t c = 0; c < t->ncols; c++) {
		char *s = strdup(row[c] ? row[c] : "-");

		if (!s) {
			while (c--)
				free(t->cells[t->nrows * t->ncols + c]);
			return -ENOMEM;
		}
		t->cells[t->nrows * t->ncols + c] = s;
	}
	t->nrows++;
	return 0;
}

static void print_row(FILE *f, const char *const *cells, const size_t *width, size_t ncols)
{
	for (size_t c = 0; c < ncols; c++) {
		if (c + 1 < ncols)
			fprintf(f, "%-*s  ", (int)width[c], cells[c]);
		else
			fprintf(f, "%s\n", cells[c]);
	}
}

void cli_table_print(const struct cli_table *t, FILE *f)
{
	size_t width[16] = { 0 };
	size_t ncols = t->ncols < 16 ? t->ncols : 16;

	for (size_t c = 0; c < ncols; c++) {
		width[c] = strlen(t->headers[c]);
		for (size_t r = 0; r < t->nrows; r++) {
			size_t n = strlen(t->cells[r * t->ncols + c]);
			if (n > width[c])
				width[c] = n;
		}
	}
	print_row(f, t->headers, width, ncols);
	for (size_t r = 0; r < t->nrows; r++)
		print_row(f, (const char *const *)&t->cells[r * t->ncols], width, ncols);
}

void cli_table_free(struct cli_table *t)
{
	for (size_t i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	memset(t, 0, sizeof(*t));
}

/* ---- Formatters ---- */

const char *cli_format_bytes(uint64_t v, char buf[CLI_FMT_LEN])
{
	static const char *const units[] = { "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	double d = (double)v;
	size_t u = 0;

	if (v < 1024) {
		snprintf(buf, CLI_FMT_LEN, "%" PRIu64 " B", v);
		return buf;
	}
	d /= 1024;
	while (d >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
		d /= 1024;
		u++;
	}
	snprintf(buf, CLI_FMT_LEN, "%.2f %s", d, units[u]);
	return buf;
}

/* The two largest non-zero units of a duration: "3d 4h", "2m 3s", "5s". */
static void format_span(uint64_t s, char *buf, size_t len)
{
	static const struct {
		uint64_t secs;
		char unit;
	} units[] = { { 86400, 'd' }, { 3600, 'h' }, { 60, 'm' }, { 1, 's' } };

	for (size_t i = 0; i < 4; i++) {
		uint64_t big = s / units[i].secs, small;

		if (!big && units[i].secs > 1)
			continue;
		if (i == 3) {
			snprintf(buf, len, "%" PRIu64 "s", big);
			return;
		}
		small = (s % units[i].secs) / units[i + 1].secs;
		if (small)
			snprintf(buf, len, "%" PRIu64 "%c %" PRIu64 "%c", big, units[i].unit, small, units[i + 1].unit);
		else
			snprintf(buf, len, "%" PRIu64 "%c", big, units[i].unit);
		return;
	}
}

const char *cli_format_ago(int64_t then, int64_t now, char buf[CLI_FMT_LEN])
{
	char span[CLI_FMT_LEN - 8];

	if (then <= 0) {
		snprintf(buf, CLI_FMT_LEN, "never");
	} else if (then >= now) {
		snprintf(buf, CLI_FMT_LEN, "now");
	} else {
		format_span((uint64_t)(now - then), span, sizeof(span));
		snprintf(buf, CLI_FMT_LEN, "%s ago", span);
	}
	return buf;
}

const char *cli_format_until(int64_t when, int64_t now, char buf[CLI_FMT_LEN])
{
	char span[CLI_FMT_LEN - 8];

	if (when <= now) {
		snprintf(buf, CLI_FMT_LEN, "expired");
	} else {
		format_span((uint64_t)(when - now), span, sizeof(span));
		snprintf(buf, CLI_FMT_LEN, "in %s", span);
	}
	return buf;
}

const char *cli_format_utc(int64_t t, char buf[CLI_FMT_LEN])
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (!gmtime_r(&tt, &tm) || !strftime(buf, CLI_FMT_LEN, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(buf, CLI_FMT_LEN, "%" PRId64, t);
	return buf;
}

/* ---- JSON members ---- */

const char *cli_json_str(json_object *o, const char *key)
{
	json_object *v;

	if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

int64_t cli_json_int(json_object *o, const char *key, int64_t def)
{
	json_object *v;

	if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
		return def;
	return json_object_get_int64(v);
}

/* A number (integer or not); false for null, absent or another type. */
static bool json_num(json_object *o, const char *key, double *out)
{
	json_object *v;

	if (!o || !json_object_object_get_ex(o, key, &v) ||
	    !(json_object_is_type(v, json_type_double) || json_object_is_type(v, json_type_int)))
		return false;
	*out = json_object_get_double(v);
	return true;
}

static bool json_u64(json_object *o, const char *key, uint64_t *out)
{
	json_object *v;

	if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
		return false;
	*out = json_object_get_uint64(v);
	return true;
}

static json_object *array_member(json_object *o, const char *key)
{
	json_object *v;

	if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_array))
		return NULL;
	return v;
}

/* ---- Stable JSON ---- */

static const char *const status_keys[] = { "node_id", "node_ip", "public_key", "is_leader", "hostname",
					     "interface", "cidr", "slice_cidr", "listen_port", "leader_ip", "peers" };
static const char *const peer_keys[] = { "node_id", "hostname", "overlay_ip", "public_key", "endpoint",
					   "slice_cidr", "last_handshake", "rx_bytes", "tx_bytes", "healthy",
					   "health", "rtt_ms", "jitter_ms", "loss" };

static bool listed(const char *key, const char *const *keys, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (!strcmp(key, keys[i]))
			return true;
	}
	return false;
}

/* Copies the members of src named by keys (null when absent), then the rest except "result". The
 * member "peers" is taken from peers_value instead when given. */
static json_object *ordered_copy(json_object *src, const char *const *keys, size_t n, json_object *peers_value)
{
	json_object *dst = json_object_new_object(), *v;

	if (!dst)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (peers_value && !strcmp(keys[i], "peers"))
			v = json_object_get(peers_value);
		else
			v = json_object_object_get_ex(src, keys[i], &v) ? json_object_get(v) : NULL;
		if (json_object_object_add(dst, keys[i], v) < 0) {
			json_object_put(v);
			json_object_put(dst);
			return NULL;
		}
	}
	if (json_object_is_type(src, json_type_object)) {
		json_object_object_foreach(src, key, val)
		{
			if (listed(key, keys, n) || !strcmp(key, "result"))
				continue;
			if (json_object_object_add(dst, key, json_object_get(val)) < 0) {
				json_object_put(val);
				json_object_put(dst);
				return NULL;
			}
		}
	}
	return dst;
}

/* Peers by overlay address (numerically, IPv4 before IPv6); unparsable addresses last, by text. */
static int compare_peers(const void *pa, const void *pb)
{
	json_object *a = *(json_object *const *)pa, *b = *(json_object *const *)pb;
	const char *sa = cli_json_str(a, "overlay_ip"), *sb = cli_json_str(b, "overlay_ip");
	struct zl_ip ia, ib;
	bool oka = sa && zl_ip_parse(sa, &ia, NULL, 0) == 0, okb = sb && zl_ip_parse(sb, &ib, NULL, 0) == 0;

	if (oka && okb)
		return zl_ip_compare(&ia, &ib);
	if (oka != okb)
		return oka ? -1 : 1;
	return strcmp(sa ? sa : "", sb ? sb : "");
}

/* A new array of the peers in body, each in the stable shape, sorted. */
static json_object *sorted_peers(json_object *body)
{
	json_object *src = array_member(body, "peers"), *dst = json_object_new_array();
	size_t n = src ? json_object_array_length(src) : 0;
	json_object **items = n ? calloc(n, sizeof(*items)) : NULL;

	if (!dst || (n && !items))
		goto fail;
	for (size_t i = 0; i < n; i++)
		items[i] = json_object_array_get_idx(src, i);
	if (n)
		qsort(items, n, sizeof(*items), compare_peers);
	for (size_t i = 0; i < n; i++) {
		json_object *p = ordered_copy(items[i], peer_keys, sizeof(peer_keys) / sizeof(peer_keys[0]), NULL);

		if (!p || json_object_array_add(dst, p) < 0) {
			json_object_put(p);
			goto fail;
		}
	}
	free(items);
	return dst;
fail:
	free(items);
	json_object_put(dst);
	return NULL;
}

json_object *cli_status_json(json_object *body)
{
	json_object *peers = sorted_peers(body), *out;

	if (!peers)
		return NULL;
	out = ordered_copy(body, status_keys, sizeof(status_keys) / sizeof(status_keys[0]), peers);
	json_object_put(peers);
	return out;
}

json_object *cli_peers_json(json_object *body)
{
	json_object *peers = sorted_peers(body), *out = json_object_new_object();

	if (!peers || !out || json_object_object_add(out, "peers", peers) < 0) {
		json_object_put(peers);
		json_object_put(out);
		return NULL;
	}
	return out;
}

json_object *cli_tokens_json(json_object *body)
{
	static const char *const keys[] = { "id", "expires_at", "uses", "max_uses", "revoked" };
	json_object *src = array_member(body, "tokens"), *dst = json_object_new_array(), *out;
	size_t n = src ? json_object_array_length(src) : 0;

	for (size_t i = 0; dst && i < n; i++) {
		json_object *t = ordered_copy(json_object_array_get_idx(src, i), keys, 5, NULL);

		if (!t || json_object_array_add(dst, t) < 0) {
			json_object_put(t);
			json_object_put(dst);
			dst = NULL;
		}
	}
	out = dst ? json_object_new_object() : NULL;
	if (!out || json_object_object_add(out, "tokens", dst) < 0) {
		json_object_put(dst);
		json_object_put(out);
		return NULL;
	}
	return out;
}

void cli_print_json(FILE *f, json_object *o)
{
	fprintf(f, "%s\n",
		json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
							 JSON_C_TO_STRING_NOSLASHESCAPE));
}

/* ---- Human output ---- */

static const char *or_dash(const char *s)
{
	return s && *s ? s : "-";
}

/* "0.42 ms"; "-" before the first probe answer (rtt_ms null). */
static const char *format_rtt(json_object *p, char buf[CLI_FMT_LEN])
{
	double v;

	if (!json_num(p, "rtt_ms", &v) || v < 0)
		return "-";
	snprintf(buf, CLI_FMT_LEN, "%.2f ms", v);
	return buf;
}

/* "0%", "3.1%", "100%": the missed share of the recent probes. */
static const char *format_loss(json_object *p, char buf[CLI_FMT_LEN])
{
	double v;

	if (!json_num(p, "loss", &v) || v < 0 || v > 1)
		return "-";
	if (v == 0 || v == 1)
		snprintf(buf, CLI_FMT_LEN, "%d%%", v == 0 ? 0 : 100);
	else
		snprintf(buf, CLI_FMT_LEN, "%.1f%%", v * 100);
	return buf;
}

void cli_print_peers(FILE *f, json_object *body, int64_t now)
{
	static const char *const headers[] = { "NODE ID", "HOSTNAME", "OVERLAY IP", "ENDPOINT", "LAST HANDSHAKE",
						"RX", "TX", "RTT", "LOSS", "HEALTH" };
	json_object *peers = sorted_peers(body);
	size_t n = peers ? json_object_array_length(peers) : 0;
	struct cli_table t;

	if (!peers || !n) {
		fprintf(f, "%s\n", peers ? "no peers" : "out of memory");
		json_object_put(peers);
		return;
	}
	cli_table_init(&t, headers, 10);
	for (size_t i = 0; i < n; i++) {
		json_object *p = json_object_array_get_idx(peers, i);
		char hs[CLI_FMT_LEN], rx[CLI_FMT_LEN], tx[CLI_FMT_LEN], rtt[CLI_FMT_LEN], loss[CLI_FMT_LEN];
		uint64_t v;
		const char *row[10] = { or_dash(cli_json_str(p, "node_id")), or_dash(cli_json_str(p, "hostname")),
					or_dash(cli_json_str(p, "overlay_ip")), or_dash(cli_json_str(p, "endpoint")),
					cli_format_ago(cli_json_int(p, "last_handshake", 0), now, hs),
					json_u64(p, "rx_bytes", &v) ? cli_format_bytes(v, rx) : "-",
					json_u64(p, "tx_bytes", &v) ? cli_format_bytes(v, tx) : "-",
					format_rtt(p, rtt), format_loss(p, loss), or_dash(cli_json_str(p, "health")) };

		if (cli_table_add(&t, row) < 0)
			break;
	}
	cli_table_print(&t, f);
	cli_table_free(&t);
	json_object_put(peers);
}

void cli_print_status(FILE *f, json_object *body, int64_t now)
{
	json_object *v;
	bool leader = json_object_object_get_ex(body, "is_leader", &v) && json_object_get_boolean(v);
	int64_t port = cli_json_int(body, "listen_port", 0);

	fprintf(f, "node: %s (%s)\n", or_dash(cli_json_str(body, "node_id")), leader ? "leader" : "worker");
	fprintf(f, "  hostname:        %s\n", or_dash(cli_json_str(body, "hostname")));
	fprintf(f, "  overlay address: %s\n", or_dash(cli_json_str(body, "node_ip")));
	fprintf(f, "  public key:      %s\n", or_dash(cli_json_str(body, "public_key")));
	fprintf(f, "  interface:       %s\n", or_dash(cli_json_str(body, "interface")));
	if (port > 0)
		fprintf(f, "  listen port:     %" PRId64 "\n", port);
	else
		fprintf(f, "  listen port:     -\n");
	if (cli_json_str(body, "endpoint"))
		fprintf(f, "  endpoint:        %s\n", or_dash(cli_json_str(body, "endpoint")));
	fprintf(f, "  overlay range:   %s\n", or_dash(cli_json_str(body, "cidr")));
	fprintf(f, "  slice:           %s\n", or_dash(cli_json_str(body, "slice_cidr")));
	if (!leader)
		fprintf(f, "  leader address:  %s\n", or_dash(cli_json_str(body, "leader_ip")));
	fprintf(f, "\n");
	cli_print_peers(f, body, now);
}

/* A token's state as `token list` shows it; revoked wins over used, used over expired. */
static const char *token_state(json_object *t, int64_t now)
{
	json_object *v;
	int64_t uses = cli_json_int(t, "uses", 0), max = cli_json_int(t, "max_uses", 1);

	if (json_object_object_get_ex(t, "revoked", &v) && json_object_get_boolean(v))
		return "revoked";
	if (uses >= max)
		return "used";
	if (cli_json_int(t, "expires_at", 0) <= now)
		return "expired";
	return "active";
}

void cli_print_tokens(FILE *f, json_object *body, int64_t now)
{
	static const char *const headers[] = { "ID", "STATE", "USES", "EXPIRES" };
	json_object *tokens = array_member(body, "tokens");
	size_t n = tokens ? json_object_array_length(tokens) : 0;
	struct cli_table t;

	if (!n) {
		fprintf(f, "no tokens\n");
		return;
	}
	cli_table_init(&t, headers, 4);
	for (size_t i = 0; i < n; i++) {
		json_object *tok = json_object_array_get_idx(tokens, i);
		int64_t exp = cli_json_int(tok, "expires_at", 0);
		char uses[CLI_FMT_LEN], when[CLI_FMT_LEN], until[CLI_FMT_LEN], expires[2 * CLI_FMT_LEN + 4];
		const char *row[4] = { cli_json_str(tok, "id"), token_state(tok, now), uses, expires };

		snprintf(uses, sizeof(uses), "%" PRId64 "/%" PRId64, cli_json_int(tok, "uses", 0),
			 cli_json_int(tok, "max_uses", 1));
		snprintf(expires, sizeof(expires), "%s (%s)", cli_format_utc(exp, when), cli_format_until(exp, now, until));
		if (cli_table_add(&t, row) < 0)
			break;
	}
	cli_table_print(&t, f);
	cli_table_free(&t);
}
