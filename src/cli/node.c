/* This node's local files and identity: see node.h. */
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/node.h"
#include "overlay/atomic_file.h"

int cli_node_lock(const struct cli_ctx *ctx)
{
	int r = zl_dir_create(ctx->data_dir, ZL_STATE_DIR_MODE), fd;

	if (r == 0)
		r = zl_dir_create(ctx->run_dir, CLI_RUN_DIR_MODE);
	if (r < 0)
		return -cli_fail(ctx, CLI_EXIT_FAIL, "cannot create %s: %s", ctx->run_dir, strerror(-r));
	fd = open(ctx->lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -cli_fail(ctx, CLI_EXIT_FAIL, "cannot open %s: %s", ctx->lock_path, strerror(errno));
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		r = errno;
		close(fd);
		if (r == EWOULDBLOCK)
			return -cli_fail(ctx, CLI_EXIT_FAIL,
					 "%s is in use: zl-overlayd or another zl-overlay command holds %s", ctx->data_dir,
					 ctx->lock_path);
		return -cli_fail(ctx, CLI_EXIT_FAIL, "cannot lock %s: %s", ctx->lock_path, strerror(r));
	}
	return fd;
}

bool cli_node_initialized(const struct cli_ctx *ctx)
{
	struct stat st;

	return lstat(ctx->state_path, &st) == 0 || errno != ENOENT;
}

void cli_node_keypair(uint8_t priv[ZL_KEY_LEN], uint8_t pub[ZL_KEY_LEN])
{
	randombytes_buf(priv, ZL_KEY_LEN);
	/* Curve25519 clamping (RFC 7748), as `wg genkey` stores it: a multiple of the cofactor, top bit set. */
	priv[0] &= 248;
	priv[31] &= 127;
	priv[31] |= 64;
	if (crypto_scalarmult_base(pub, priv) != 0)
		abort(); /* cannot happen for a clamped scalar */
}

bool cli_node_hostname(const char *given, char out[ZL_HOSTNAME_SIZE], char *err, size_t errlen)
{
	char host[256] = "", why[128];
	size_t n;

	if (given) {
		if (zl_hostname_normalize(given, out, why, sizeof(why)))
			return true;
		snprintf(err, errlen, "--hostname '%s': %s", given, why);
		return false;
	}
	if (gethostname(host, sizeof(host) - 1) < 0)
		host[0] = '\0';
	n = strcspn(host, ".");
	host[n] = '\0';
	if (zl_hostname_normalize(host, out, why, sizeof(why)))
		return true;
	snprintf(err, errlen, "the host name '%s' is not a DNS label (%s): pass --hostname NAME", host, why);
	return false;
}

bool cli_node_interface(const char *given, char out[ZL_IFNAME_SIZE], char *err, size_t errlen)
{
	char why[128];

	if (!given)
		given = CLI_DEFAULT_INTERFACE;
	if (!zl_ifname_valid(given, why, sizeof(why))) {
		snprintf(err, errlen, "--interface '%s': %s", given, why);
		return false;
	}
	snprintf(out, ZL_IFNAME_SIZE, "%s", given);
	return true;
}

bool cli_node_port(const char *given, uint16_t *port)
{
	if (!given) {
		*port = CLI_DEFAULT_PORT;
		return true;
	}
	return cli_value_port(given, port);
}
