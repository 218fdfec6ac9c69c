/* zl-overlayd: runs the overlay node recorded in DIR/state.json (written by `zl-overlay init-leader`
 * or `zl-overlay join`).
 *
 *   zl-overlayd [--data-dir DIR] [--interface NAME] [DNS, health and metrics options: options.h]
 *
 * Creates the WireGuard interface in-process (with its UAPI socket, so `wg show` works), configures
 * the key, port and every peer of the state, brings the interface up with the node's overlay address
 * (the route for the overlay range comes with the prefix length), serves the control socket
 * DIR/run/zl-overlayd.sock, and then: on the leader, the join endpoint and the membership service; on
 * a worker, the membership connection to the leader; on every node, the services that follow the
 * state: the DNS server (127.0.0.1 and the overlay address, port 15353, unless --no-dns), health
 * events (--on-change hook), peer probes, service checks and, with --metrics, the Prometheus endpoint.
 * A service that cannot start (e.g. the DNS port in use) is a start-up error. Runs in the foreground
 * and logs key=value lines to stderr (LOG_LEVEL=debug|info|error|silent). SIGTERM/SIGINT: the
 * interface (with its address and routes) and the control socket are removed, the state stays. Exit status: 0 after a requested stop
 * (signal, `shutdown` request, or the node left / was removed, in which case its state is deleted);
 * 1 on a start-up error or when the interface disappeared; 2 on bad usage. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "overlayd/control_server.h"
#include "overlayd/dns.h"
#include "overlayd/events.h"
#include "overlayd/join_server.h"
#include "overlayd/log.h"
#include "overlayd/membership.h"
#include "overlayd/metrics.h"
#include "overlayd/node.h"
#include "overlayd/options.h"
#include "overlayd/prober.h"
#include "overlayd/svc_check.h"

#define ZL_OVERLAYD_VERSION "0.1.0"

static struct wg_engine *volatile running_engine;
static volatile sig_atomic_t stop_requested;

/* Usage errors exit 2 with the message and the usage; --help and --version exit 0. */
static void parse_args(int argc, char **argv, struct od_options *o)
{
	char err[256];

	switch (od_options_parse(argc, argv, o, err, sizeof(err))) {
	case OD_OPTIONS_RUN:
		return;
	case OD_OPTIONS_HELP:
		od_options_usage(stdout);
		exit(0);
	case OD_OPTIONS_VERSION:
		printf("zl-overlayd %s\n", ZL_OVERLAYD_VERSION);
		exit(0);
	case OD_OPTIONS_ERROR:
		break;
	}
	fprintf(stderr, "zl-overlayd: %s\n", err);
	od_options_usage(stderr);
	exit(2);
}

static void on_signal(int sig)
{
	struct wg_engine *e = running_engine;

	stop_requested = 1;
	if (e)
		wg_engine_stop(e);
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

static int open_services(struct od_node *n, char *err, size_t errlen)
{
	int rc;

	if (n->st.config.is_leader) {
		if ((rc = od_join_server_open(n, err, errlen)) || (rc = od_member_server_open(n, err, errlen)))
			return rc;
	} else if ((rc = od_member_client_open(n, err, errlen))) {
		return rc;
	}
	if ((rc = od_control_open(n, err, errlen)))
		return rc;
	/* The services that follow the state, closed in reverse order. Events come before the prober so
	 * that its first verdicts already reach the ring and the hook. */
	if ((rc = od_dns_open(n, err, errlen)) || (rc = od_events_open(n, err, errlen)) ||
	    (rc = od_prober_open(n, err, errlen)) || (rc = od_svc_checks_open(n, err, errlen)))
		return rc;
	return od_metrics_open(n, err, errlen);
}

static void close_services(struct od_node *n)
{
	od_metrics_close(n);
	od_svc_checks_close(n);
	od_prober_close(n);
	od_events_close(n);
	od_dns_close(n);
	od_control_close(n);
	od_member_client_close(n);
	od_member_server_close(n);
	od_join_server_close(n);
}

static int run(struct od_node *n)
{
	int rc;

	running_engine = n->engine;
	if (stop_requested)
		wg_engine_stop(n->engine);
	od_info("daemon.started", "role=%s node_id=%s node_ip=%s interface=%s data_dir=%s pid=%ld",
		n->st.config.is_leader ? "leader" : "worker", od_q(n->st.config.node_id), n->st.config.node_ip,
		n->ifname, od_q(n->data_dir), (long)getpid());
	rc = wg_engine_run(n->engine);
	running_engine = NULL;
	if (rc < 0 || wg_engine_stop_reason(n->engine) == WG_ENGINE_STOP_TUN_GONE ||
	    wg_engine_stop_reason(n->engine) == WG_ENGINE_STOP_ERROR)
		n->exit_code = 1;
	return n->exit_code;
}

int main(int argc, char **argv)
{
	struct od_options opts;
	struct od_node node;
	char err[512] = "";
	int code = 1, rc;

	parse_args(argc, argv, &opts);
	if (!wg_log_init_from_env())
		fprintf(stderr, "zl-overlayd: LOG_LEVEL not understood; using info\n");
	wg_log_set_ident("zl-overlayd");
	od_log_route_engine();
	setup_signals();
	memset(&node, 0, sizeof(node));
	node.opts = opts;   /* od_node_load keeps them; every service reads its settings from here */

	rc = od_node_load(&node, opts.data_dir ? opts.data_dir : OD_DEFAULT_DATA_DIR, opts.ifname, err, sizeof(err));
	if (!rc)
		rc = od_control_lock(&node, err, sizeof(err));
	if (!rc)
		rc = od_node_start(&node, err, sizeof(err));
	if (!rc)
		rc = open_services(&node, err, sizeof(err));
	if (!rc)
		od_node_changed(&node);
	if (rc) {
		od_error("daemon.start_failed", "err=%s", od_q(err));
	} else {
		code = run(&node);
	}
	close_services(&node);
	if (node.retired) {
		/* Left or removed: the address may be given to someone else, so this state must not run again. */
		if (unlink(node.state_path) < 0 && errno != ENOENT)
			od_error("state.delete_failed", "path=%s err=%s", od_q(node.state_path), od_q(strerror(errno)));
		else
			od_info("state.deleted", "path=%s", od_q(node.state_path));
	}
	od_node_close(&node);
	od_info("daemon.stopped", "exit_code=%d", code);
	return code;
}
