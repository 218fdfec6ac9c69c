/* The overlay zone's content from the node's state (dns_records.h): member names, "ns", "leader" and
 * the registered service records, added to a zone builder. */
#include "overlayd/dns_records.h"
#include "overlay/cidr.h"
#include "overlay/names.h"
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

/* SOA timers: no secondaries exist, so they are informational; common values. */
enum { SOA_REFRESH = 3600, SOA_RETRY = 600, SOA_EXPIRE = 86400 };

struct build {
	struct dns_zone_builder *b;
	size_t skipped;
	int rc;                      /* the first fatal error (out of memory): stop adding */
};

/* Records that cannot be added are skipped and counted; running out of memory ends the build. */
static void account(struct build *c, int rc)
{
	if (rc == -ENOMEM)
		c->rc = rc;
	else if (rc < 0)
		c->skipped++;
}

static void add_addr(struct build *c, const char *name, const char *addr, uint32_t ttl)
{
	struct zl_ip ip;

	if (c->rc)
		return;
	if (zl_ip_parse(addr, &ip, NULL, 0) < 0) {
		c->skipped++;
		return;
	}
	if (ip.family == AF_INET)
		account(c, dns_zone_add_a(c->b, name, ip.addr, ttl, NULL, 0));
	else
		account(c, dns_zone_add_aaaa(c->b, name, ip.addr, ttl, NULL, 0));
}

/* The member's node name: node-<a>-<b> for IPv4; for IPv6 the slice form (every node is "::1" of its
 * own slice, so the low bits alone would name them all alike), or node6-<h7>-<h8> without a slice. */
static int member_node_name(const struct zl_prefix *cluster, const char *ip, const char *slice_cidr,
			    char out[ZL_NODE6_NAME_SIZE])
{
	struct zl_prefix slice;
	struct zl_ip addr;

	if (zl_ip_parse(ip, &addr, NULL, 0) < 0)
		return -EINVAL;
	if (addr.family == AF_INET6 && cluster && slice_cidr[0] && zl_prefix_parse(slice_cidr, &slice, NULL, 0) == 0)
		return zl_node_name6_slice(cluster, slice.len, &addr, out, ZL_NODE6_NAME_SIZE);
	return zl_node_name(ip, out);
}

/* Its node name, "ns" and its hostname for one member. */
static void add_member(struct build *c, const struct zl_prefix *cluster, const char *ip, const char *slice_cidr,
		       const char *hostname)
{
	char node[ZL_NODE6_NAME_SIZE], host[ZL_HOSTNAME_SIZE];

	if (member_node_name(cluster, ip, slice_cidr, node) == 0)
		add_addr(c, node, ip, OD_DNS_NODE_TTL);
	else
		c->skipped++;
	add_addr(c, "ns", ip, OD_DNS_NODE_TTL);
	if (!hostname[0])
		return;
	if (zl_hostname_normalize(hostname, host, NULL, 0))
		add_addr(c, host, ip, OD_DNS_NODE_TTL);
	else
		c->skipped++;
}

static void add_service(struct build *c, const struct zl_state_dns_record *r, od_dns_addr_filter filter,
			void *ctx)
{
	if (c->rc)
		return;
	if (r->kind == ZL_DNS_SRV) {
		account(c, dns_zone_add_srv(c->b, r->name, r->priority, r->weight, r->port, r->target, r->ttl,
					    NULL, 0));
		return;
	}
	if (!filter || filter(ctx, r))
		add_addr(c, r->name, r->addr, r->ttl);
}

static struct dns_zone *no_memory(char *err, size_t errlen)
{
	if (err && errlen)
		snprintf(err, errlen, "dns zone: out of memory");
	return NULL;
}

/* The Unix time, but never at or before the previous serial (two builds in one second). */
static uint32_t next_serial(uint32_t prev)
{
	uint32_t now = (uint32_t)time(NULL);

	return now > prev ? now : prev + 1;
}

struct dns_zone *od_dns_build_zone(const struct zl_state *st, const char *zone, const char *leader_ip,
				   uint32_t *serial_io, od_dns_addr_filter filter, void *ctx, size_t *skipped,
				   char *err, size_t errlen)
{
	uint32_t serial = next_serial(*serial_io);
	struct dns_zone_params p = {
		.apex = zone, .serial = serial, .refresh = SOA_REFRESH, .retry = SOA_RETRY,
		.expire = SOA_EXPIRE, .negative_ttl = OD_DNS_NEGATIVE_TTL, .ns_ttl = OD_DNS_NODE_TTL,
	};
	struct build c = { .b = dns_zone_builder_new(&p, err, errlen) };
	struct zl_prefix cluster;
	bool have_cluster;
	struct dns_zone *z;

	if (!c.b)
		return NULL;
	have_cluster = zl_prefix_parse(st->config.cidr, &cluster, NULL, 0) == 0;
	add_member(&c, have_cluster ? &cluster : NULL, st->config.node_ip, st->config.slice_cidr,
		   st->config.hostname);
	for (size_t i = 0; i < st->n_peers; i++)
		add_member(&c, have_cluster ? &cluster : NULL, st->peers[i].overlay_ip, st->peers[i].slice_cidr,
			   st->peers[i].hostname);
	if (leader_ip && leader_ip[0])
		add_addr(&c, "leader", leader_ip, OD_DNS_NODE_TTL);
	for (size_t i = 0; i < st->n_dns; i++)
		add_service(&c, &st->dns[i], filter, ctx);
	if (c.rc) {
		dns_zone_builder_free(c.b);
		return no_memory(err, errlen);
	}
	z = dns_zone_builder_finish(c.b);
	if (!z)
		return no_memory(err, errlen);
	*serial_io = serial;
	if (skipped)
		*skipped = c.skipped;
	return z;
}
