/* zl-wg: userspace WireGuard for Linux, a drop-in for wireguard-go.
 *
 *   zl-wg [-f|--foreground] INTERFACE-NAME
 *
 * Creates the TUN interface and its UAPI socket (/var/run/wireguard/INTERFACE-NAME.sock, spoken by `wg`
 * and wg-quick), then serves until SIGINT/SIGTERM, until the interface is deleted or until the socket
 * file is removed. Unless kept in the foreground (-f, or WG_PROCESS_FOREGROUND=1) it daemonizes, and the
 * starting process exits only once the interface and the socket exist (wg-quick relies on that), with
 * status 0, or 1 and the daemon's error message.
 *
 * Environment: LOG_LEVEL=debug|verbose|info|error|silent (default info); ZL_WG_LOG_FILE=path keeps a
 * daemon's log (otherwise a daemon's output goes to /dev/null, as with wireguard-go). */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#include "wg/io/engine.h"
#include "wg/io/log.h"

#define ZL_WG_VERSION "0.1.0"

static struct wg_engine *volatile running_engine;
static volatile sig_atomic_t stop_before_start;

static void usage(FILE *f)
{
	fprintf(f, "Usage: zl-wg [-f|--foreground] INTERFACE-NAME\n"
		   "       zl-wg --version | -h | --help\n"
		   "Userspace WireGuard: creates INTERFACE-NAME and serves the UAPI socket used by wg(8).\n"
		   "Environment: WG_PROCESS_FOREGROUND=1 (like -f), LOG_LEVEL=debug|info|error|silent,\n"
		   "ZL_WG_LOG_FILE=path (where a daemon logs; default /dev/null).\n");
}

/* The kernel's rules for interface names (dev_valid_name), checked up front for a clear message. */
static bool valid_ifname(const char *name)
{
	size_t len = strlen(name);

	if (len == 0 || len > 15 || !strcmp(name, ".") || !strcmp(name, ".."))
		return false;
	for (const char *p = name; *p; p++) {
		if (*p == '/' || *p == ':' || isspace((unsigned char)*p))
			return false;
	}
	return true;
}

struct args {
	bool foreground;
	const char *ifname;
};

/* 0 to go on, otherwise the exit status + 1 (so 1 = exit 0 after --help). */
static int parse_args(int argc, char **argv, struct args *a)
{
	bool options = true;

	for (int i = 1; i < argc; i++) {
		const char *s = argv[i];

		if (options && (!strcmp(s, "-f") || !strcmp(s, "--foreground"))) {
			a->foreground = true;
		} else if (options && (!strcmp(s, "-h") || !strcmp(s, "--help"))) {
			usage(stdout);
			return 1;
		} else if (options && !strcmp(s, "--version")) {
			printf("zl-wg %s\n", ZL_WG_VERSION);
			return 1;
		} else if (options && !strcmp(s, "--")) {
			options = false;
		} else if (options && s[0] == '-' && s[1]) {
			fprintf(stderr, "zl-wg: unknown option '%s'\n", s);
			usage(stderr);
			return 2;
		} else if (a->ifname) {
			usage(stderr);
			return 2;
		} else {
			a->ifname = s;
		}
	}
	if (!a->ifname) {
		usage(stderr);
		return 2;
	}
	if (!valid_ifname(a->ifname)) {
		fprintf(stderr, "zl-wg: invalid interface name '%s': must be 1-15 bytes without '/', whitespace or ':'\n",
			a->ifname);
		return 2;
	}
	return 0;
}

static void on_signal(int sig)
{
	struct wg_engine *e = running_engine;

	if (e)
		wg_engine_stop(e);
	else
		stop_before_start = 1;
}

static void setup_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
}

/* --- daemonizing: the parent waits on a pipe for one status byte from the child */

enum { START_OK = 0, START_FAILED = 1 };

static void parent_wait(int fd)
{
	unsigned char status;
	ssize_t n;

	do
		n = read(fd, &status, 1);
	while (n < 0 && errno == EINTR);
	if (n == 1 && status == START_OK)
		exit(0);
	/* The child printed its error on our shared stderr before reporting. */
	if (n != 1)
		fprintf(stderr, "zl-wg: error: the daemon exited during start-up\n");
	exit(1);
}

/* Returns in the child, with the write end of the status pipe; -1 in the foreground. */
static int daemonize(void)
{
	int p[2];
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0) {
		wg_log_error("pipe: %s", strerror(errno));
		exit(1);
	}
	pid = fork();
	if (pid < 0) {
		wg_log_error("fork: %s", strerror(errno));
		exit(1);
	}
	if (pid > 0) {
		close(p[1]);
		parent_wait(p[0]);
	}
	close(p[0]);
	setsid();
	/* A daemon must not keep its starter's descriptors (a pipe a script reads to EOF, a lock...). */
	if (p[1] > 3)
		close_range(3, (unsigned)p[1] - 1, 0);
	close_range((unsigned)p[1] + 1, ~0U, 0);
	return p[1];
}

static void redirect(int target, const char *path, int flags)
{
	int fd = open(path, flags, 0600);

	if (fd < 0)
		return;
	if (fd != target) {
		dup2(fd, target);
		close(fd);
	}
}

/* The daemon lets go of the terminal: from here on only ZL_WG_LOG_FILE (if set) sees its log. */
static void detach_and_report(int status_fd, unsigned char status)
{
	const char *log_file = getenv("ZL_WG_LOG_FILE");

	if (chdir("/") < 0) {
		/* nothing depends on the working directory */
	}
	redirect(STDIN_FILENO, "/dev/null", O_RDONLY);
	if (log_file && *log_file) {
		redirect(STDOUT_FILENO, log_file, O_WRONLY | O_CREAT | O_APPEND);
		dup2(STDOUT_FILENO, STDERR_FILENO);
	} else {
		redirect(STDOUT_FILENO, "/dev/null", O_WRONLY);
		redirect(STDERR_FILENO, "/dev/null", O_WRONLY);
	}
	if (write(status_fd, &status, 1) < 0) {
		/* the parent is gone; nobody to tell */
	}
	close(status_fd);
}

static bool env_true(const char *name)
{
	const char *v = getenv(name);

	return v && (!strcmp(v, "1") || !strcasecmp(v, "true") || !strcasecmp(v, "yes"));
}

int main(int argc, char **argv)
{
	struct args a = { 0 };
	struct wg_engine *e;
	int status_fd = -1, err, rc;

	rc = parse_args(argc, argv, &a);
	if (rc)
		return rc - 1;
	if (!wg_log_init_from_env())
		wg_log_error("unknown LOG_LEVEL '%s' (debug, info, error, silent); using info", getenv("LOG_LEVEL"));
	if (!a.foreground && !env_true("WG_PROCESS_FOREGROUND"))
		status_fd = daemonize();
	setup_signals();

	e = wg_engine_new(a.ifname, NULL, &err);
	if (!e) {
		if (status_fd >= 0) {
			unsigned char failed = START_FAILED;

			if (write(status_fd, &failed, 1) < 0) {
				/* the parent sees EOF and reports the failure itself */
			}
		}
		return 1;
	}
	running_engine = e;
	if (stop_before_start)
		wg_engine_stop(e);
	if (status_fd >= 0)
		detach_and_report(status_fd, START_OK);

	rc = wg_engine_run(e);
	if (rc == 0 && wg_engine_stop_reason(e) == WG_ENGINE_STOP_ERROR)
		rc = -EIO;
	running_engine = NULL;
	wg_engine_free(e);
	return rc ? 1 : 0;
}
