/* zl-overlayd's command line:
 *
 *   zl-overlayd [--data-dir DIR] [--interface NAME]
 *               [--dns-zone ZONE] [--dns-port PORT] [--dns-forward ADDR[:PORT]] [--no-dns]
 *               [--probe-interval SECONDS] [--probe-misses N] [--handshake-timeout SECONDS]
 *               [--on-change CMD] [--metrics ADDR:PORT]
 *
 * Every option also accepts --opt=VALUE. Durations are decimal seconds (up to millisecond precision,
 * e.g. 0.5). Defaults: zone overlay.local., port 15353, no forwarder, probes every 2 s, down after 3
 * misses, handshake timeout 180 s, no hook, no metrics. Parsing is pure (no I/O): bad values are
 * refused with a message naming the option. */
#ifndef OD_OPTIONS_H
#define OD_OPTIONS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum {
	OD_OPT_ZONE_SIZE = 256,
	OD_OPT_TEXT_SIZE = 128,
	OD_DEFAULT_PROBE_INTERVAL_MS = 2000,
	OD_DEFAULT_PROBE_MISSES = 3,
	OD_DEFAULT_HANDSHAKE_TIMEOUT_S = 180,
};

struct od_options {
	const char *data_dir;                 /* NULL = OD_DEFAULT_DATA_DIR */
	const char *ifname;                   /* NULL = the state's */
	bool dns;                             /* false with --no-dns */
	char dns_zone[OD_OPT_ZONE_SIZE];      /* absolute, lower case, with the trailing dot */
	uint16_t dns_port;
	char dns_forward[OD_OPT_TEXT_SIZE];   /* "" = none */
	uint32_t probe_interval_ms;           /* 100 .. 3600000 */
	uint32_t probe_misses;                /* 1 .. 100 */
	uint32_t handshake_timeout_s;         /* 1 .. 86400 */
	const char *on_change;                /* NULL = none */
	char metrics[OD_OPT_TEXT_SIZE];       /* "" = off; ADDR:PORT or [V6]:PORT */
};

void od_options_defaults(struct od_options *o);
enum od_options_result { OD_OPTIONS_RUN, OD_OPTIONS_HELP, OD_OPTIONS_VERSION, OD_OPTIONS_ERROR };
/* Parses argv[1..argc) into o (defaults first). On ERROR the message is in err. Pointers into argv are
 * kept (argv must outlive o). */
enum od_options_result od_options_parse(int argc, char **argv, struct od_options *o, char *err, size_t errlen);
void od_options_usage(FILE *f);
#endif
