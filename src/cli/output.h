/* What zl-overlay prints: aligned tables for people, stable JSON for scripts, and the small formatters
 * both use. Pure apart from writing to the FILE given. */
#ifndef ZL_CLI_OUTPUT_H
#define ZL_CLI_OUTPUT_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <json-c/json.h>

/* A table of strings: columns padded to their widest cell, two spaces apart, the last column unpadded,
 * trailing spaces never printed. Cells are copied. */
struct cli_table {
	size_t ncols;
	const char *const *headers;
	char **cells;           /* nrows * ncols */
	size_t nrows, cap;
};

void cli_table_init(struct cli_table *t, const char *const *headers, size_t ncols);
/* Appends a row of t->ncols cells (NULL prints as "-"). 0 or -ENOMEM. */
int cli_table_add(struct cli_table *t, const char *const *row);
void cli_table_print(const struct cli_table *t, FILE *f);
void cli_table_free(struct cli_table *t);

enum { CLI_FMT_LEN = 48 };

/* "0 B", "1023 B", "1.50 KiB", "3.25 MiB", ... (binary units, as wg(8)). */
const char *cli_format_bytes(uint64_t v, char buf[CLI_FMT_LEN]);
/* How long ago Unix time `then` was: "never" for 0, "now" for 0 s, "5s ago", "2m 3s ago", "1h 2m ago",
 * "3d 4h ago" (two units at most); a time in the future (clock differences) reads "now". */
const char *cli_format_ago(int64_t then, int64_t now, char buf[CLI_FMT_LEN]);
/* "in 23h 59m" for a future time, "expired" otherwise. */
const char *cli_format_until(int64_t when, int64_t now, char buf[CLI_FMT_LEN]);
/* "2024-01-31T12:00:00Z". */
const char *cli_format_utc(int64_t t, char buf[CLI_FMT_LEN]);

/* JSON in one stable shape whatever order the daemon used: the documented fields first, in a fixed
 * order (a missing one is null), then any further fields of the daemon in its order; peers sorted by
 * overlay address. status: {node_id, node_ip, public_key, is_leader, hostname, interface, cidr,
 * slice_cidr, listen_port, leader_ip, peers: [...], ...}; a peer: {node_id, hostname, overlay_ip,
 * public_key, endpoint, slice_cidr, last_handshake, rx_bytes, tx_bytes, healthy, health, rtt_ms,
 * jitter_ms, loss, ...}. The "result" member of the
 * response is dropped. Returns a new object, NULL on allocation failure. */
json_object *cli_status_json(json_object *body);
/* {"peers": [...]} from a status or peers response. */
json_object *cli_peers_json(json_object *body);
/* {"tokens": [{id, expires_at, uses, max_uses, revoked, ...}]} from a token_list response, in its order. */
json_object *cli_tokens_json(json_object *body);
/* Prints a daemon response body as --json asks (to_json) or as a table (print), and releases it
 * (status.c). Returns a CLI exit code. */
struct cli_ctx;
int cli_show_body(struct cli_ctx *ctx, json_object *body, json_object *(*to_json)(json_object *),
		  void (*print)(FILE *, json_object *, int64_t));
/* Pretty JSON and a newline. */
void cli_print_json(FILE *f, json_object *o);

/* The human forms of the same. now: Unix seconds for the "ago" columns. */
void cli_print_status(FILE *f, json_object *body, int64_t now);
void cli_print_peers(FILE *f, json_object *body, int64_t now);
void cli_print_tokens(FILE *f, json_object *body, int64_t now);

/* Member helpers tolerant of a daemon that leaves a field out: the string or NULL; the integer or def. */
const char *cli_json_str(json_object *o, const char *key);
int64_t cli_json_int(json_object *o, const char *key, int64_t def);
#endif
