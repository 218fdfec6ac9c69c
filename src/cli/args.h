/* Command-line parsing for zl-overlay: a table of commands (each with the options it accepts and how
 * many positional arguments it takes) and one parser for all of them. Pure: no I/O.
 *
 * Options are "--name VALUE", "--name=VALUE" or a flag "--name"; "-h" is --help. They may appear before
 * or after the command words ("zl-overlay --data-dir D status" = "zl-overlay status --data-dir D"): the
 * parser collects every option first and checks, once the command is known, that the command accepts
 * it. The global options (--data-dir, --timeout, --help, --version) are accepted by every command.
 * "--" ends the options. Commands may have subcommands ("token create"); the first positional words
 * select them. */
#ifndef ZL_CLI_ARGS_H
#define ZL_CLI_ARGS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum cli_opt {
	/* global: every command accepts these */
	CLI_OPT_DATA_DIR,
	CLI_OPT_TIMEOUT,
	CLI_OPT_HELP,
	CLI_OPT_VERSION,
	/* per command */
	CLI_OPT_JSON,
	CLI_OPT_CIDR,
	CLI_OPT_SLICE_PREFIX,
	CLI_OPT_PORT,
	CLI_OPT_ENDPOINT,
	CLI_OPT_HOSTNAME,
	CLI_OPT_INTERFACE,
	CLI_OPT_TOKEN,
	CLI_OPT_TTL,
	CLI_OPT_SRV,
	CLI_OPT_CHECK,
	CLI_OPT_CHECK_INTERVAL,
	CLI_OPT_CHECK_THRESHOLD,
	CLI_OPT_COUNT,
};

#define CLI_OPT_BIT(o) (1u << (o))
#define CLI_GLOBAL_OPTS                                                                                \
	(CLI_OPT_BIT(CLI_OPT_DATA_DIR) | CLI_OPT_BIT(CLI_OPT_TIMEOUT) | CLI_OPT_BIT(CLI_OPT_HELP) |     \
	 CLI_OPT_BIT(CLI_OPT_VERSION))

struct cli_option_info {
	const char *name;     /* without the leading "--" */
	char short_name;      /* 0 = none */
	const char *arg;      /* the value's name in help ("CIDR"), NULL for a flag */
	const char *help;
};
extern const struct cli_option_info cli_options[CLI_OPT_COUNT];

struct cli_ctx;
typedef int (*cli_handler_fn)(struct cli_ctx *ctx);

enum { CLI_MAX_ARGS = 5, CLI_MAX_DEPTH = 3 };

struct cli_command {
	const char *name;
	const char *summary;                    /* one line for the command list */
	const char *usage;                      /* what follows the command words, e.g. "[--json]" */
	const char *details;                    /* more help text, or NULL */
	cli_handler_fn run;                     /* NULL for a group of subcommands */
	uint32_t options;                       /* CLI_OPT_BIT()s accepted besides the global ones */
	unsigned min_args, max_args;            /* positional arguments (max <= CLI_MAX_ARGS) */
	const struct cli_command *subcommands;  /* array ended by a NULL name, or NULL */
};

struct cli_args {
	const char *value[CLI_OPT_COUNT];       /* the option's value ("" for a flag); NULL = not given */
	const struct cli_command *chain[CLI_MAX_DEPTH]; /* root, command, subcommand */
	size_t depth;
	const struct cli_command *command;      /* chain[depth - 1]: the deepest command named */
	const char *args[CLI_MAX_ARGS];
	size_t n_args;
};

/* Fills *a from argv[1..argc-1] against the table rooted at root. Returns 0, or -EINVAL with a message
 * naming the problem in err ("unknown option '--foo'", "option --cidr given twice", "unknown command
 * 'x'", "option --cidr is not valid for 'status'", "missing argument NODE"...). When --help (or
 * --version) is given, the checks that only matter for running (missing arguments, a group without its
 * subcommand) are skipped, so "remove-peer --help" works. */
int cli_parse(const struct cli_command *root, int argc, char *const argv[], struct cli_args *a, char *err,
	      size_t errlen);

/* "token create" (the command words without the program name), or "" for the root. */
const char *cli_command_path(const struct cli_args *a, char *buf, size_t len);

/* Help for the deepest command of a (usage line, details, options, subcommands). */
void cli_print_help(FILE *f, const char *prog, const struct cli_args *a);

/* Value checks shared by the commands, each false on bad input:
 * port: decimal 1..65535 without sign, spaces or leading zeros; uint: decimal min..max likewise. */
bool cli_value_port(const char *s, uint16_t *out);
bool cli_value_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out);
#endif
