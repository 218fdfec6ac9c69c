/* The node's DNS service: builds the zone from the state and hands it to the server thread. See dns.h.
 *
 * Lifetimes: struct od_dns belongs to the node (n->dns) and lives from od_dns_open to od_dns_close,
 * on the loop thread only. Each zone is built here with one reference, given to the server (which
 * takes its own) and released at once, so the server thread alone decides when an old snapshot that
 * it may still be answering from is freed. */
#include "overlayd/dns.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "overlayd/dns_records.h"
#include "overlayd/log.h"
#include "overlayd/svc_check.h"

struct od_dns {
	struct od_dns_server *server;
	struct od_dns_config cfg;
	uint32_t serial;          /* SOA serial of the last zone built (od_dns_build_zone keeps it rising) */
	size_t names, records;    /* of the zone last published (for the logs) */
};

/* The leader's overlay address as this node knows it: its own on the leader, else the first peer's
 * (a worker's state lists the leader first); "" when unknown. */
static const char *leader_ip(const struct od_node *n)
{
	const struct zl_state_peer *l;

	if (n->st.config.is_leader)
		return n->st.config.node_ip;
	l = od_node_leader(n);
	return l ? l->overlay_ip : "";
}

/* A zone of the current state with one reference, or NULL with a message. Addresses whose service
 * check is down are left out. */
static struct dns_zone *build(struct od_node *n, struct od_dns *d, char *err, size_t errlen)
{
	od_dns_addr_filter filter = n->checks ? od_svc_checks_addr_ok : NULL;
	size_t skipped = 0;
	struct dns_zone *z = od_dns_build_zone(&n->st, n->opts.dns_zone, leader_ip(n), &d->serial, filter, n,
					       &skipped, err, errlen);

	if (z && skipped)
		od_info("dns.records_skipped", "count=%zu reason=\"name too long in zone %s\"", skipped,
			od_q(n->opts.dns_zone));
	return z;
}

/* Listen on 127.0.0.1 and on the node's overlay address (IPv4 or IPv6), at the --dns-port. */
static int configure(const struct od_node *n, struct od_dns_config *cfg, char *err, size_t errlen)
{
	char e[ZL_ERR_LEN];
	int rc;

	memset(cfg, 0, sizeof(*cfg));
	if ((rc = zl_ip_parse("127.0.0.1", &cfg->listen[0], e, sizeof(e))))
		return rc;
	cfg->listen[1] = n->node_ip;
	cfg->n_listen = 2;
	cfg->port = n->opts.dns_port;
	if (n->opts.dns_forward[0] && (rc = od_dns_parse_forward(n->opts.dns_forward, cfg, e, sizeof(e)))) {
		snprintf(err, errlen, "dns: --dns-forward: %s", e);
		return rc;
	}
	return 0;
}

static void publish_counts(struct od_dns *d, const struct dns_zone *z)
{
	d->names = dns_zone_names(z);
	d->records = dns_zone_records(z);
}

int od_dns_open(struct od_node *n, char *err, size_t errlen)
{
	char e[256], addr[ZL_IP_STRLEN];
	struct od_dns *d;
	struct dns_zone *z;
	int rc;

	if (!n->opts.dns)
		return 0;
	d = calloc(1, sizeof(*d));
	if (!d) {
		snprintf(err, errlen, "dns: out of memory");
		return -ENOMEM;
	}
	if ((rc = configure(n, &d->cfg, err, errlen))) {
		free(d);
		return rc;
	}
	z = build(n, d, e, sizeof(e));
	if (!z) {
		snprintf(err, errlen, "dns: zone %s: %s", n->opts.dns_zone, e);
		free(d);
		return -EINVAL;
	}
	rc = od_dns_server_start(&d->cfg, z, &d->server, e, sizeof(e));
	publish_counts(d, z);
	dns_zone_unref(z);
	if (rc) {
		/* The usual cause is a second daemon (or another server) in this namespace. The server's
		 * messages name the address and start with "dns". */
		if (rc == -EADDRINUSE)
			snprintf(err, errlen, "%s; use --dns-port or --no-dns", e);
		else
			snprintf(err, errlen, "%s", e);
		free(d);
		return rc;
	}
	n->dns = d;
	od_info("dns.started", "listen=127.0.0.1,%s port=%u zone=%s forward=%s names=%zu records=%zu",
		zl_ip_format(&n->node_ip, addr), d->cfg.port, od_q(n->opts.dns_zone),
		n->opts.dns_forward[0] ? od_q(n->opts.dns_forward) : "none", d->names, d->records);
	return 0;
}

void od_dns_close(struct od_node *n)
{
	struct od_dns *d = n->dns;

	if (!d)
		return;
	od_dns_server_stop(d->server);
	free(d);
	n->dns = NULL;
	od_info("dns.stopped", "%s", "");
}

void od_dns_refresh(struct od_node *n)
{
	struct od_dns *d = n->dns;
	struct dns_zone *z;
	char e[256];

	if (!d)
		return;
	z = build(n, d, e, sizeof(e));
	if (!z) {
		/* Keep answering from the last good zone rather than from nothing. */
		od_error("dns.refresh_failed", "err=%s", od_q(e));
		return;
	}
	od_dns_server_set_zone(d->server, z);
	publish_counts(d, z);
	dns_zone_unref(z);
	od_debug("dns.zone_published", "serial=%u names=%zu records=%zu", d->serial, d->names, d->records);
}

bool od_dns_stats(const struct od_node *n, struct od_dns_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (!n->dns)
		return false;
	od_dns_server_stats(n->dns->server, out);
	return true;
}
