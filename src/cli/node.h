/* This node's local files and identity, for the commands that write state themselves (init-leader, join,
 * and token commands while the daemon is down).
 *
 * Lock: DIR/run/zl-overlayd.lock, the lock zl-overlayd holds with flock() for its whole life. A command
 * that writes DIR/state.json takes it too (without waiting) for the time of its read-modify-write, so it
 * never writes under a running daemon, two commands never interleave, and a daemon cannot start in the
 * middle (it is refused and can be started again). See docs/control-api.md, "Clarifications". */
#ifndef ZL_CLI_NODE_H
#define ZL_CLI_NODE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cli/cli.h"
#include "overlay/names.h"
#include "overlay/state.h"

/* Creates DIR (0700) and DIR/run (0750, as the daemon makes it) if needed and takes the lock without
 * waiting. The fd (close it to release), or the CLI exit code negated after printing why. */
int cli_node_lock(const struct cli_ctx *ctx);

/* Whether DIR/state.json exists (any file there counts: we never overwrite one). */
bool cli_node_initialized(const struct cli_ctx *ctx);

/* A fresh X25519 key pair, the private key clamped as `wg genkey` does. */
void cli_node_keypair(uint8_t priv[ZL_KEY_LEN], uint8_t pub[ZL_KEY_LEN]);

/* This node's hostname: --hostname if given (validated), else the host name's first label. False with a
 * message in err when neither is a valid DNS label. */
bool cli_node_hostname(const char *given, char out[ZL_HOSTNAME_SIZE], char *err, size_t errlen);

/* --interface if given (validated against the kernel's rules), else zl-overlay0. */
bool cli_node_interface(const char *given, char out[ZL_IFNAME_SIZE], char *err, size_t errlen);

/* --port if given, else 51820. */
bool cli_node_port(const char *given, uint16_t *port);
#endif
