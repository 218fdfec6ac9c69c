/* zl-overlay's argument parser: see args.h. */
#include <errno.h>
#include <stdarg.h>
#include <string.h>

#include "cli/args.h"
#include "overlay/errmsg.h"

const struct cli_option_info cli_options[CLI_OPT_COUNT] = {
	[CLI_OPT_DATA_DIR] = { "data-dir", 0, "DIR", "state and control socket directory (default /var/lib/zl-overlay)" },
	[CLI_OPT_TIMEOUT] = { "timeout", 0, "SECONDS", "give up on the daemon after this long (default 10)" },
	[CLI_OPT_HELP] = { "help", 'h', NULL, "show this help" },
	[CLI_OPT_VERSION] = { "version", 0, NULL, "show the version" },
	[CLI_OPT_JSON] = { "json", 0, NULL, "print JSON instead of a table" },
	[CLI_OPT_CIDR] = { "cidr", 0, "CIDR", "overlay range (default 10.200.0.0/16)" },
	[CLI_OPT_SLICE_PREFIX] = { "slice-prefix", 0, "LEN", "prefix length of each node's slice (default 28, IPv6 64)" },
	[CLI_OPT_PORT] = { "port", 0, "PORT", "WireGuard UDP port; also the leader's TCP join port (default 51820)" },
	[CLI_OPT_ENDPOINT] = { "endpoint", 0, "HOST:PORT", "underlay address other nodes reach this node at" },
	[CLI_OPT_HOSTNAME] = { "hostname", 0, "NAME", "this node's DNS name, one label (default: the host name)" },
	[CLI_OPT_INTERFACE] = { "interface", 0, "NAME", "overlay interface name (default zl-overlay0)" },
	[CLI_OPT_TOKEN] = { "token", 0, "TOKEN", "join token printed by the leader" },
	[CLI_OPT_TTL] = { "ttl", 0, "DURATION", "90s, 30m, 24h, 7d or seconds: token lifetime (default 24h), DNS TTL (default 30s)" },
	[CLI_OPT_SRV] = { "srv", 0, NULL, "an SRV record: NAME PRIORITY WEIGHT PORT TARGET (NAME is _service._proto.name)" },
	[CLI_OPT_CHECK] = { "check", 0, "CHECK", "health check of the address: tcp:PORT or http:PORT[/PATH] (2xx expected)" },
	[CLI_OPT_CHECK_INTERVAL] = { "check-interval", 0, "SECS", "time between checks, 1s to 1h (default 5s)" },
	[CLI_OPT_CHECK_THRESHOLD] = { "check-threshold", 0, "N", "failures in a row before the address leaves DNS, 1 to 100 (default 2)" },
};

/* The option named by argument s ("--name", "--name=value", "-h"); *inline_value points after '='. */
static int find_option(const char *s, const char **inline_value)
{
	*inline_value = NULL;
	if (s[1] != '-') {
		for (int o = 0; o < CLI_OPT_COUNT; o++) {
			if (s[1] && !s[2] && cli_options[o].short_name == s[1])
				return o;
		}
		return -1;
	}
	s += 2;
	const char *eq = strchr(s, '=');
	size_t n = eq ? (size_t)(eq - s) : strlen(s);
	for (int o = 0; o < CLI_OPT_COUNT; o++) {
		if (strlen(cli_options[o].name) == n && !strncmp(cli_options[o].name, s, n)) {
			*inline_value = eq ? eq + 1 : NULL;
			return o;
		}
	}
	return -1;
}

/* Consumes the option at argv[*i] (and its value). */
static int take_option(int argc, char *const argv[], int *i, struct cli_args *a, char *err, size_t errlen)
{
	const char *s = argv[*i], *val;
	int o = find_option(s, &val);

	if (o < 0)
		return zl_errorf(err, errlen, -EINVAL, "unknown option '%s'", s);
	if (a->value[o])
		return zl_errorf(err, errlen, -EINVAL, "option --%s given twice", cli_options[o].name);
	if (!cli_options[o].arg) {
		if (val)
			return zl_errorf(err, errlen, -EINVAL, "option --%s takes no value", cli_options[o].name);
		a->value[o] = "";
		return 0;
	}
	if (!val) {
		/* "--hostname --json" is a forgotten value, not a hostname starting with dashes. */
		if (*i + 1 >= argc || !strncmp(argv[*i + 1], "--", 2))
			return zl_errorf(err, errlen, -EINVAL, "option --%s needs a value (%s)", cli_options[o].name,
				    cli_options[o].arg);
		val = argv[++*i];
	}
	a->value[o] = val;
	return 0;
}

static const struct cli_command *find_sub(const struct cli_command *c, const char *name)
{
	for (const struct cli_command *s = c->subcommands; s && s->name; s++) {
		if (!strcmp(s->name, name))
			return s;
	}
	return NULL;
}

const char *cli_command_path(const struct cli_args *a, char *buf, size_t len)
{
	size_t used = 0;

	if (len)
		buf[0] = '\0';
	for (size_t d = 1; d < a->depth && used < len; d++) {
		int n = snprintf(buf + used, len - used, "%s%s", d > 1 ? " " : "", a->chain[d]->name);
		if (n < 0)
			break;
		used += (size_t)n;
	}
	return buf;
}

static int take_word(const char *s, struct cli_args *a, char *err, size_t errlen)
{
	const struct cli_command *c = a->command, *sub;
	char path[64];

	if (c->subcommands && a->n_args == 0) {
		sub = find_sub(c, s);
		if (!sub) {
			if (a->depth == 1)
				return zl_errorf(err, errlen, -EINVAL, "unknown command '%s' (see %s --help)", s, a->chain[0]->name);
			return zl_errorf(err, errlen, -EINVAL, "unknown %s command '%s' (see %s %s --help)",
				    cli_command_path(a, path, sizeof(path)), s, a->chain[0]->name, path);
		}
		if (a->depth >= CLI_MAX_DEPTH)
			return zl_errorf(err, errlen, -EINVAL, "command table too deep");
		a->chain[a->depth++] = sub;
		a->command = sub;
		return 0;
	}
	if (a->n_args >= c->max_args || a->n_args >= CLI_MAX_ARGS)
		return zl_errorf(err, errlen, -EINVAL, "unexpected argument '%s'", s);
	a->args[a->n_args++] = s;
	return 0;
}

/* Once the command is known: every option given must be one it accepts, and its arguments complete. */
static int check_command(const struct cli_args *a, char *err, size_t errlen)
{
	const struct cli_command *c = a->command;
	uint32_t allowed = c->options | CLI_GLOBAL_OPTS;
	bool helping = a->value[CLI_OPT_HELP] || a->value[CLI_OPT_VERSION];
	char path[64];

	cli_command_path(a, path, sizeof(path));
	for (int o = 0; o < CLI_OPT_COUNT; o++) {
		if (!a->value[o] || (allowed & CLI_OPT_BIT(o)))
			continue;
		if (a->depth == 1 || !c->run)
			return zl_errorf(err, errlen, -EINVAL, "option --%s needs a command that takes it", cli_options[o].name);
		return zl_errorf(err, errlen, -EINVAL, "option --%s is not valid for '%s'", cli_options[o].name, path);
	}
	if (helping)
		return 0;
	if (!c->run) {
		if (a->depth == 1)
			return zl_errorf(err, errlen, -EINVAL, "missing command (see %s --help)", a->chain[0]->name);
		return zl_errorf(err, errlen, -EINVAL, "missing %s command (see %s %s --help)", path, a->chain[0]->name, path);
	}
	if (a->n_args < c->min_args)
		return zl_errorf(err, errlen, -EINVAL, "%s: missing argument%s (usage: %s %s %s)", path,
			    c->min_args - a->n_args > 1 ? "s" : "", a->chain[0]->name, path, c->usage);
	return 0;
}

int cli_parse(const struct cli_command *root, int argc, char *const argv[], struct cli_args *a, char *err,
	      size_t errlen)
{
	bool options = true;
	int r;

	memset(a, 0, sizeof(*a));
	a->chain[0] = root;
	a->depth = 1;
	a->command = root;
	if (err && errlen)
		err[0] = '\0';
	for (int i = 1; i < argc; i++) {
		const char *s = argv[i];

		if (options && !strcmp(s, "--")) {
			options = false;
			continue;
		}
		if (options && s[0] == '-' && s[1])
			r = take_option(argc, argv, &i, a, err, errlen);
		else
			r = take_word(s, a, err, errlen);
		if (r < 0)
			return r;
	}
	return check_command(a, err, errlen);
}

static void print_options(FILE *f, uint32_t mask)
{
	for (int o = 0; o < CLI_OPT_COUNT; o++) {
		const struct cli_option_info *i = &cli_options[o];
		char left[48];

		if (!(mask & CLI_OPT_BIT(o)))
			continue;
		if (i->short_name)
			snprintf(left, sizeof(left), "-%c, --%s", i->short_name, i->name);
		else
			snprintf(left, sizeof(left), "    --%s%s%s", i->name, i->arg ? " " : "", i->arg ? i->arg : "");
		fprintf(f, "  %-26s %s\n", left, i->help);
	}
}

void cli_print_help(FILE *f, const char *prog, const struct cli_args *a)
{
	const struct cli_command *c = a->command;
	char path[64];

	cli_command_path(a, path, sizeof(path));
	if (a->depth == 1) {
		fprintf(f, "Usage: %s [--data-dir DIR] COMMAND [OPTIONS]\n", prog);
	} else {
		fprintf(f, "Usage: %s %s %s\n", prog, path, c->usage ? c->usage : "");
	}
	if (c->summary)
		fprintf(f, "\n%s\n", c->summary);
	if (c->details)
		fprintf(f, "\n%s", c->details);
	if (c->subcommands) {
		fprintf(f, "\nCommands:\n");
		for (const struct cli_command *s = c->subcommands; s->name; s++)
			fprintf(f, "  %-14s %s\n", s->name, s->summary);
	}
	if (c->options) {
		fprintf(f, "\nOptions:\n");
		print_options(f, c->options);
	}
	fprintf(f, "\nGlobal options (before or after the command):\n");
	print_options(f, CLI_GLOBAL_OPTS);
}

bool cli_value_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (!s || !*s || (s[0] == '0' && s[1]))
		return false;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
			return false;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	if (v < min || v > max)
		return false;
	*out = v;
	return true;
}

bool cli_value_port(const char *s, uint16_t *out)
{
	uint64_t v;

	if (!cli_value_uint(s, 1, 65535, &v))
		return false;
	*out = (uint16_t)v;
	return true;
}
