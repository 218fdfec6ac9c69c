/* zl-overlayd's command line: see options.h. A table of options, one small checker per kind of value;
 * nothing here touches the system, so every rule is unit-tested (tests/unit/test_overlayd_options.c). */
#include "overlayd/options.h"
#include "overlay/errmsg.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <sys/socket.h>
#include "overlay/cidr.h"
#include "overlay/names.h"
#include "overlayd/dns_server.h"
#include "overlayd/node.h"

enum {
	ZONE_TEXT_MAX = 253,           /* a name of 255 wire bytes, written without the trailing dot */
	PROBE_INTERVAL_MIN_MS = 100,
	PROBE_INTERVAL_MAX_MS = 3600000,
	PROBE_MISSES_MAX = 100,
	HANDSHAKE_TIMEOUT_MAX_S = 86400,
	DURATION_MAX_MS = 86400000,    /* no duration option goes beyond a day */
};

/* ---- value checkers: 0 or -EINVAL with a message naming the option */

/* A decimal integer of digits only (no sign, no spaces) within [min, max]. */
static bool parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (!*s)
		return false;
	for (; *s; s++) {
		if (!isdigit((unsigned char)*s))
			return false;
		v = v * 10 + (uint64_t)(*s - '0');
		if (v > max)
			return false;
	}
	*out = v;
	return v >= min;
}

/* Decimal seconds with up to three decimals ("2", "0.5", "1.25") into milliseconds, at most a day. */
static bool parse_duration_ms(const char *s, uint64_t *ms)
{
	const char *dot = strchr(s, '.');
	size_t ilen = dot ? (size_t)(dot - s) : strlen(s);
	uint64_t whole = 0, frac = 0;
	char ibuf[16];

	if (ilen == 0 || ilen >= sizeof(ibuf))
		return false;
	memcpy(ibuf, s, ilen);
	ibuf[ilen] = '\0';
	if (!parse_uint(ibuf, 0, DURATION_MAX_MS / 1000, &whole))
		return false;
	if (dot) {
		size_t flen = strlen(dot + 1);

		if (flen < 1 || flen > 3 || !parse_uint(dot + 1, 0, 999, &frac))
			return false;
		for (; flen < 3; flen++)
			frac *= 10;
	}
	*ms = whole * 1000 + frac;
	return *ms <= DURATION_MAX_MS;
}

/* One label of a DNS name as we serve it: letters, digits, '-' and '_' (service labels), 1..63 bytes,
 * no '-' at either end. */
static bool zone_label_ok(const char *l, size_t len)
{
	if (len == 0 || len > 63 || l[0] == '-' || l[len - 1] == '-')
		return false;
	for (size_t i = 0; i < len; i++) {
		if (!isalnum((unsigned char)l[i]) && l[i] != '-' && l[i] != '_')
			return false;
	}
	return true;
}

static int set_zone(struct od_options *o, const char *v, char *err, size_t errlen)
{
	size_t len = strlen(v);
	const char *l = v;

	if (len && v[len - 1] == '.')
		len--;
	if (len == 0)
		return zl_errorf(err, errlen, -EINVAL, "--dns-zone: '%s': the root zone cannot be served (give e.g. overlay.local)", v);
	if (v[len - 1] == '.')   /* "a.." : an empty last label that the loop below would not see */
		return zl_errorf(err, errlen, -EINVAL, "--dns-zone: '%s' has an empty label", v);
	if (len > ZONE_TEXT_MAX)
		return zl_errorf(err, errlen, -EINVAL, "--dns-zone: name longer than %d characters", ZONE_TEXT_MAX);
	while (l < v + len) {
		const char *end = memchr(l, '.', (size_t)(v + len - l));
		size_t ll = end ? (size_t)(end - l) : (size_t)(v + len - l);

		if (!zone_label_ok(l, ll))
			return zl_errorf(err, errlen, -EINVAL, "--dns-zone: '%s' is not a DNS name (labels of 1..63 letters, "
				    "digits, '-' or '_', no '-' at either end)", v);
		l += ll + 1;
	}
	for (size_t i = 0; i < len; i++)
		o->dns_zone[i] = (char)tolower((unsigned char)v[i]);
	o->dns_zone[len] = '.';
	o->dns_zone[len + 1] = '\0';
	return 0;
}

static int set_port(struct od_options *o, const char *v, char *err, size_t errlen)
{
	uint64_t p;

	if (!parse_uint(v, 1, 65535, &p))
		return zl_errorf(err, errlen, -EINVAL, "--dns-port: '%s' is not a port (1..65535)", v);
	o->dns_port = (uint16_t)p;
	return 0;
}

/* The address rules of the rest of the daemon (overlay/cidr.h: no leading zeros, no zone id). */
static bool is_ip(const char *s, int family)
{
	struct zl_ip ip;

	return zl_ip_parse(s, &ip, NULL, 0) == 0 && ip.family == family;
}

/* "ADDR:PORT" or "[V6]:PORT": literal addresses only, nothing is looked up. (--metrics; whether the
 * address is allowed is decided at start-up, when the node's own address is known.) */
static bool addr_port_ok(const char *s)
{
	char host[ZL_IP_STRLEN];
	const char *port;
	uint64_t p;
	size_t hl;

	if (s[0] == '[') {
		const char *close = strchr(s, ']');

		if (!close || (close[1] && close[1] != ':'))
			return false;
		hl = (size_t)(close - s - 1);
		if (hl >= sizeof(host))
			return false;
		memcpy(host, s + 1, hl);
		host[hl] = '\0';
		if (!is_ip(host, AF_INET6))
			return false;
		port = close[1] == ':' ? close + 2 : NULL;
	} else {
		const char *colon = strchr(s, ':');

		if (!colon || strchr(colon + 1, ':'))   /* no port, or a bare IPv6 address */
			return false;
		hl = (size_t)(colon - s);
		if (hl >= sizeof(host))
			return false;
		memcpy(host, s, hl);
		host[hl] = '\0';
		if (!is_ip(host, AF_INET))
			return false;
		port = colon + 1;
	}
	return port && parse_uint(port, 1, 65535, &p);
}

/* The server's own parser, so that what passes here also starts. */
static int set_forward(struct od_options *o, const char *v, char *err, size_t errlen)
{
	struct od_dns_config cfg;
	char e[128];

	memset(&cfg, 0, sizeof(cfg));
	if (strlen(v) >= sizeof(o->dns_forward))
		return zl_errorf(err, errlen, -EINVAL, "--dns-forward: longer than %zu bytes", sizeof(o->dns_forward) - 1);
	if (od_dns_parse_forward(v, &cfg, e, sizeof(e)))
		return zl_errorf(err, errlen, -EINVAL, "--dns-forward: '%s': %s (expected ADDR, ADDR:PORT or [IPv6]:PORT)", v, e);
	snprintf(o->dns_forward, sizeof(o->dns_forward), "%s", v);
	return 0;
}

static int set_metrics(struct od_options *o, const char *v, char *err, size_t errlen)
{
	if (strlen(v) >= sizeof(o->metrics) || !addr_port_ok(v))
		return zl_errorf(err, errlen, -EINVAL, "--metrics: '%s' is not ADDR:PORT or [IPv6]:PORT", v);
	snprintf(o->metrics, sizeof(o->metrics), "%s", v);
	return 0;
}

static int set_probe_interval(struct od_options *o, const char *v, char *err, size_t errlen)
{
	uint64_t ms;

	if (!parse_duration_ms(v, &ms) || ms < PROBE_INTERVAL_MIN_MS || ms > PROBE_INTERVAL_MAX_MS)
		return zl_errorf(err, errlen, -EINVAL, "--probe-interval: '%s' is not a duration in seconds from 0.1 to 3600 "
			    "(e.g. 2 or 0.5)", v);
	o->probe_interval_ms = (uint32_t)ms;
	return 0;
}

static int set_probe_misses(struct od_options *o, const char *v, char *err, size_t errlen)
{
	uint64_t n;

	if (!parse_uint(v, 1, PROBE_MISSES_MAX, &n))
		return zl_errorf(err, errlen, -EINVAL, "--probe-misses: '%s' is not a count from 1 to %d", v, PROBE_MISSES_MAX);
	o->probe_misses = (uint32_t)n;
	return 0;
}

static int set_handshake_timeout(struct od_options *o, const char *v, char *err, size_t errlen)
{
	uint64_t ms;

	if (!parse_duration_ms(v, &ms) || ms % 1000 || ms < 1000 || ms > HANDSHAKE_TIMEOUT_MAX_S * 1000ull)
		return zl_errorf(err, errlen, -EINVAL, "--handshake-timeout: '%s' is not a whole number of seconds from 1 to %d",
			    v, HANDSHAKE_TIMEOUT_MAX_S);
	o->handshake_timeout_s = (uint32_t)(ms / 1000);
	return 0;
}

static int set_data_dir(struct od_options *o, const char *v, char *err, size_t errlen)
{
	if (!*v)
		return zl_errorf(err, errlen, -EINVAL, "--data-dir: empty argument");
	if (strlen(v) > OD_DATA_DIR_MAX)
		return zl_errorf(err, errlen, -EINVAL, "--data-dir: longer than %d bytes", OD_DATA_DIR_MAX);
	o->data_dir = v;
	return 0;
}

static int set_interface(struct od_options *o, const char *v, char *err, size_t errlen)
{
	char e[128];

	if (!*v)
		return zl_errorf(err, errlen, -EINVAL, "--interface: empty argument");
	if (!zl_ifname_valid(v, e, sizeof(e)))
		return zl_errorf(err, errlen, -EINVAL, "--interface: bad interface name '%s': %s", v, e);
	o->ifname = v;
	return 0;
}

static int set_on_change(struct od_options *o, const char *v, char *err, size_t errlen)
{
	if (!*v)
		return zl_errorf(err, errlen, -EINVAL, "--on-change: empty argument");
	o->on_change = v;
	return 0;
}

static int set_no_dns(struct od_options *o, const char *v, char *err, size_t errlen)
{
	o->dns = false;
	return 0;
}

/* ---- the table */

struct option_def {
	const char *name;     /* without the leading "--" */
	bool has_value;
	int (*set)(struct od_options *o, const char *v, char *err, size_t errlen);
};

enum opt_id {
	OPT_DATA_DIR, OPT_INTERFACE, OPT_DNS_ZONE, OPT_DNS_PORT, OPT_DNS_FORWARD, OPT_NO_DNS,
	OPT_PROBE_INTERVAL, OPT_PROBE_MISSES, OPT_HANDSHAKE_TIMEOUT, OPT_ON_CHANGE, OPT_METRICS, N_DEFS,
};

static const struct option_def defs[N_DEFS] = {
	[OPT_DATA_DIR] = { "data-dir", true, set_data_dir },
	[OPT_INTERFACE] = { "interface", true, set_interface },
	[OPT_DNS_ZONE] = { "dns-zone", true, set_zone },
	[OPT_DNS_PORT] = { "dns-port", true, set_port },
	[OPT_DNS_FORWARD] = { "dns-forward", true, set_forward },
	[OPT_NO_DNS] = { "no-dns", false, set_no_dns },
	[OPT_PROBE_INTERVAL] = { "probe-interval", true, set_probe_interval },
	[OPT_PROBE_MISSES] = { "probe-misses", true, set_probe_misses },
	[OPT_HANDSHAKE_TIMEOUT] = { "handshake-timeout", true, set_handshake_timeout },
	[OPT_ON_CHANGE] = { "on-change", true, set_on_change },
	[OPT_METRICS] = { "metrics", true, set_metrics },
};

void od_options_defaults(struct od_options *o)
{
	memset(o, 0, sizeof(*o));
	o->dns = true;
	snprintf(o->dns_zone, sizeof(o->dns_zone), "%s", OD_DNS_DEFAULT_ZONE);
	o->dns_port = OD_DNS_DEFAULT_PORT;
	o->probe_interval_ms = OD_DEFAULT_PROBE_INTERVAL_MS;
	o->probe_misses = OD_DEFAULT_PROBE_MISSES;
	o->handshake_timeout_s = OD_DEFAULT_HANDSHAKE_TIMEOUT_S;
}

/* The definition named by "--name" or "--name=value" (*inline_value then points after '='). */
static const struct option_def *find_def(const char *s, const char **inline_value)
{
	const char *eq;
	size_t n;

	*inline_value = NULL;
	if (strncmp(s, "--", 2) != 0)
		return NULL;
	s += 2;
	eq = strchr(s, '=');
	n = eq ? (size_t)(eq - s) : strlen(s);
	for (size_t i = 0; i < N_DEFS; i++) {
		if (strlen(defs[i].name) == n && !strncmp(defs[i].name, s, n)) {
			*inline_value = eq ? eq + 1 : NULL;
			return &defs[i];
		}
	}
	return NULL;
}

/* Consumes argv[*i] (and its separate value). */
static int take(int argc, char **argv, int *i, struct od_options *o, bool seen[N_DEFS], char *err, size_t errlen)
{
	const char *v;
	const struct option_def *d = find_def(argv[*i], &v);
	size_t k;

	if (!d)
		return zl_errorf(err, errlen, -EINVAL, "unknown argument '%s'", argv[*i]);
	k = (size_t)(d - defs);
	if (seen[k])
		return zl_errorf(err, errlen, -EINVAL, "--%s given twice", d->name);
	seen[k] = true;
	if (!d->has_value) {
		if (v)
			return zl_errorf(err, errlen, -EINVAL, "--%s takes no value", d->name);
		return d->set(o, "", err, errlen);
	}
	if (!v) {
		/* "--dns-zone --no-dns" is a forgotten value, not a zone starting with dashes. */
		if (*i + 1 >= argc || !strncmp(argv[*i + 1], "--", 2))
			return zl_errorf(err, errlen, -EINVAL, "--%s needs a value", d->name);
		v = argv[++*i];
	}
	return d->set(o, v, err, errlen);
}

enum od_options_result od_options_parse(int argc, char **argv, struct od_options *o, char *err, size_t errlen)
{
	bool seen[N_DEFS] = { false };

	od_options_defaults(o);
	if (err && errlen)
		err[0] = '\0';
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
			return OD_OPTIONS_HELP;
		if (!strcmp(argv[i], "--version"))
			return OD_OPTIONS_VERSION;
	}
	for (int i = 1; i < argc; i++) {
		if (take(argc, argv, &i, o, seen, err, errlen))
			return OD_OPTIONS_ERROR;
	}
	/* Asking for no DNS and for a DNS setting at once is a mistake worth reporting. */
	if (!o->dns && (seen[OPT_DNS_ZONE] || seen[OPT_DNS_PORT] || seen[OPT_DNS_FORWARD])) {
		zl_errorf(err, errlen, -EINVAL, "--no-dns cannot be combined with --dns-zone, --dns-port or --dns-forward");
		return OD_OPTIONS_ERROR;
	}
	return OD_OPTIONS_RUN;
}

void od_options_usage(FILE *f)
{
	fprintf(f,
		"Usage: zl-overlayd [--data-dir DIR] [--interface NAME]\n"
		"                   [--dns-zone ZONE] [--dns-port PORT] [--dns-forward ADDR[:PORT]] [--no-dns]\n"
		"                   [--probe-interval SECONDS] [--probe-misses N] [--handshake-timeout SECONDS]\n"
		"                   [--on-change CMD] [--metrics ADDR:PORT]\n"
		"       zl-overlayd --version | -h | --help\n"
		"Runs the overlay node recorded in DIR/state.json (default DIR %s; interface: the state's,\n"
		"else %s). Control socket: DIR/%s/%s. Every option also takes --opt=VALUE.\n"
		"  --dns-zone ZONE           zone served by the DNS server (default %s)\n"
		"  --dns-port PORT           DNS port on 127.0.0.1 and the overlay address, UDP and TCP (default %d)\n"
		"  --dns-forward ADDR[:PORT] send queries outside the zone there (default: none, REFUSED)\n"
		"  --no-dns                  no DNS server\n"
		"  --probe-interval SECONDS  peer probe interval, e.g. 0.5 (default %g)\n"
		"  --probe-misses N          missed probes before a peer is down (default %d)\n"
		"  --handshake-timeout SECONDS  unhealthy after this handshake age (default %d)\n"
		"  --on-change CMD           run CMD (/bin/sh -c) on every peer or service up/down change\n"
		"  --metrics ADDR:PORT       Prometheus metrics on a loopback or overlay address (default off)\n"
		"Environment: LOG_LEVEL=debug|info|error|silent.\n",
		OD_DEFAULT_DATA_DIR, OD_DEFAULT_IFNAME, OD_RUN_SUBDIR, OD_SOCKET_NAME, OD_DNS_DEFAULT_ZONE,
		OD_DNS_DEFAULT_PORT, OD_DEFAULT_PROBE_INTERVAL_MS / 1000.0, OD_DEFAULT_PROBE_MISSES,
		OD_DEFAULT_HANDSHAKE_TIMEOUT_S);
}
