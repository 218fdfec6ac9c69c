/* The overlay zone built from a node's state: a leader with three peers (two sharing a hostname),
 * service records with A, AAAA and SRV (relative and absolute targets), a filter that rejects one
 * address, a name too long for the zone (skipped and counted); every name, type and record is
 * checked, and the totals prove nothing else is there. Also: a worker's "leader", an IPv6 cluster,
 * a removed peer's names gone, the serial strictly increasing, a bad zone refused. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "test.h"
#include "overlayd/dns_records.h"

static const char ZONE[] = "overlay.local.";

/* A query name (relative to ZONE, "" = the apex) in wire form: the test's own simple encoder. */
static struct dns_name qn(const char *rel)
{
	char full[300];
	struct dns_name n = { .len = 0 };
	const char *p = full;

	snprintf(full, sizeof(full), "%s%s%s", rel, *rel ? "." : "", ZONE);
	while (*p) {
		size_t l = strcspn(p, ".");
		n.wire[n.len] = (uint8_t)l;
		memcpy(n.wire + n.len + 1, p, l);
		n.len = (uint8_t)(n.len + 1 + l);
		n.labels++;
		p += l + (p[l] == '.');
	}
	n.wire[n.len++] = 0;
	return n;
}

static enum dns_lookup look(const struct dns_zone *z, const char *rel, uint16_t type, struct dns_rrset *rs)
{
	struct dns_name n = qn(rel);

	return dns_zone_lookup(z, &n, type, rs);
}

/* An address RRset: exactly these addresses, in this order, with this TTL. */
struct want_addrs {
	const char *name;
	const char *addr[4];
	uint32_t ttl;
};

static size_t count_addrs(const struct want_addrs *w)
{
	size_t n = 0;

	while (n < 4 && w->addr[n])
		n++;
	return n;
}

static void check_addrs(const struct dns_zone *z, const struct want_addrs *w, bool v6)
{
	size_t n = count_addrs(w);
	struct dns_rrset rs;
	uint8_t want[16];

	bool ok = look(z, w->name, v6 ? DNS_T_AAAA : DNS_T_A, &rs) == DNS_LOOKUP_FOUND && rs.n == n;
	CHECK(ok);
	if (!ok) {
		fprintf(stderr, "  %s %s: %zu records, want %zu\n", w->name, v6 ? "AAAA" : "A", rs.n, n);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		CHECK(inet_pton(v6 ? AF_INET6 : AF_INET, w->addr[i], want) == 1);
		CHECK(!memcmp(v6 ? rs.rr[i].u.aaaa : rs.rr[i].u.a, want, v6 ? 16 : 4));
		CHECK(rs.rr[i].ttl == w->ttl);
	}
}

static void check_srv(const struct dns_rr *rr, uint16_t prio, uint16_t weight, uint16_t port,
		      const char *target_rel_or_abs, uint32_t ttl)
{
	struct dns_name t = { .len = 0 };

	if (target_rel_or_abs[strlen(target_rel_or_abs) - 1] == '.') {
		/* absolute: encode it without the zone */
		const char *p = target_rel_or_abs;
		while (*p) {
			size_t l = strcspn(p, ".");
			t.wire[t.len] = (uint8_t)l;
			memcpy(t.wire + t.len + 1, p, l);
			t.len = (uint8_t)(t.len + 1 + l);
			p += l + (p[l] == '.');
		}
		t.wire[t.len++] = 0;
	} else {
		t = qn(target_rel_or_abs);
	}
	CHECK(rr->type == DNS_T_SRV && rr->ttl == ttl);
	CHECK(rr->u.srv.priority == prio && rr->u.srv.weight == weight && rr->u.srv.port == port);
	CHECK(rr->u.srv.target.len == t.len && !memcmp(rr->u.srv.target.wire, t.wire, t.len));
}

/* ---- the state ---- */

static struct zl_state_peer peers[3];
static struct zl_state_dns_record recs[9];

static void set_peer(struct zl_state_peer *p, const char *ip, const char *hostname)
{
	memset(p, 0, sizeof(*p));
	snprintf(p->node_id, sizeof(p->node_id), "id-%s", ip);
	snprintf(p->overlay_ip, sizeof(p->overlay_ip), "%s", ip);
	snprintf(p->hostname, sizeof(p->hostname), "%s", hostname);
}

static struct zl_state_dns_record addr_rec(const char *name, const char *addr, uint32_t ttl)
{
	struct zl_state_dns_record r = { .kind = ZL_DNS_ADDR, .ttl = ttl };

	snprintf(r.name, sizeof(r.name), "%s", name);
	snprintf(r.addr, sizeof(r.addr), "%s", addr);
	return r;
}

static struct zl_state_dns_record srv_rec(const char *name, uint16_t prio, uint16_t weight, uint16_t port,
					  const char *target, uint32_t ttl)
{
	struct zl_state_dns_record r = { .kind = ZL_DNS_SRV, .priority = prio, .weight = weight, .port = port,
					 .ttl = ttl };

	snprintf(r.name, sizeof(r.name), "%s", name);
	snprintf(r.target, sizeof(r.target), "%s", target);
	return r;
}

/* Leader 10.200.0.1 "alpha"; peers .0.2 "Beta" (normalized), .0.3 and .1.7 both "shared"; services. */
static void leader_state(struct zl_state *st)
{
	memset(st, 0, sizeof(*st));
	strcpy(st->config.cidr, "10.200.0.0/16");
	strcpy(st->config.node_ip, "10.200.0.1");
	strcpy(st->config.hostname, "alpha");
	st->config.is_leader = true;
	set_peer(&peers[0], "10.200.0.2", "Beta");
	set_peer(&peers[1], "10.200.0.3", "shared");
	set_peer(&peers[2], "10.200.1.7", "shared");
	st->peers = peers;
	st->n_peers = 3;
	recs[0] = addr_rec("web", "10.200.0.2", 60);
	recs[1] = addr_rec("web", "10.200.0.3", 60);      /* the filter rejects this one */
	recs[2] = addr_rec("web", "fd00:200::9", 60);
	recs[3] = addr_rec("db.web", "10.200.0.3", 0);    /* another name at .0.3: not filtered */
	recs[4] = srv_rec("_http._tcp.web", 10, 5, 8080, "web", 30);
	recs[5] = srv_rec("_http._tcp.web", 20, 5, 8080, "beta", 30);
	recs[6] = srv_rec("_x._udp", 0, 0, 53, "ext.example.org.", 120);
	recs[7] = addr_rec("", "10.200.0.4", 30);
	/* Labels of 63, 63, 63 and 61 bytes: 253, the longest name the state takes; too long once the
	 * zone is appended. */
	recs[8] = addr_rec("", "10.200.0.5", 30);
	for (int i = 0; i < 4; i++) {
		memset(recs[8].name + 64 * i, 'a' + i, i < 3 ? 63 : 61);
		recs[8].name[64 * i + (i < 3 ? 63 : 61)] = i < 3 ? '.' : '\0';
	}
	st->dns = recs;
	st->n_dns = 9;
}

struct filter_log {
	size_t calls;
};

static bool reject_web_dot3(void *ctx, const struct zl_state_dns_record *rec)
{
	struct filter_log *log = ctx;

	log->calls++;
	CHECK(rec->kind == ZL_DNS_ADDR);
	return !(strcmp(rec->name, "web") == 0 && strcmp(rec->addr, "10.200.0.3") == 0);
}

static struct dns_zone *build(const struct zl_state *st, const char *leader_ip, od_dns_addr_filter f, void *ctx,
			      size_t *skipped)
{
	uint32_t serial = 0;
	char err[256] = "";
	struct dns_zone *z = od_dns_build_zone(st, ZONE, leader_ip, &serial, f, ctx, skipped, err, sizeof(err));

	CHECK(z != NULL);
	if (!z) {
		fprintf(stderr, "  build: %s\n", err);
		exit(1);
	}
	return z;
}

static void test_leader_zone(void)
{
	static const struct want_addrs a[] = {
		{ "node-0-1", { "10.200.0.1" }, OD_DNS_NODE_TTL },
		{ "node-0-2", { "10.200.0.2" }, OD_DNS_NODE_TTL },
		{ "node-0-3", { "10.200.0.3" }, OD_DNS_NODE_TTL },
		{ "node-1-7", { "10.200.1.7" }, OD_DNS_NODE_TTL },
		{ "alpha", { "10.200.0.1" }, OD_DNS_NODE_TTL },
		{ "beta", { "10.200.0.2" }, OD_DNS_NODE_TTL },
		{ "shared", { "10.200.0.3", "10.200.1.7" }, OD_DNS_NODE_TTL },
		{ "ns", { "10.200.0.1", "10.200.0.2", "10.200.0.3", "10.200.1.7" }, OD_DNS_NODE_TTL },
		{ "leader", { "10.200.0.1" }, OD_DNS_NODE_TTL },
		{ "web", { "10.200.0.2" }, 60 },
		{ "db.web", { "10.200.0.3" }, 0 },
		{ "", { "10.200.0.4" }, 30 },
	};
	static const struct want_addrs aaaa[] = { { "web", { "fd00:200::9" }, 60 } };
	struct zl_state st;
	struct filter_log log = { 0 };
	struct dns_rrset rs;
	size_t skipped = 99, total = 2 + 1 + 2 + 1;   /* SOA, NS; web AAAA; two SRV at _http; one at _x */
	struct dns_zone *z;

	leader_state(&st);
	z = build(&st, "10.200.0.1", reject_web_dot3, &log, &skipped);
	CHECK(skipped == 1);
	CHECK(log.calls == 6);   /* every address record, and only those */
	for (size_t i = 0; i < sizeof(a) / sizeof(a[0]); i++) {
		check_addrs(z, &a[i], false);
		total += count_addrs(&a[i]);
	}
	check_addrs(z, &aaaa[0], true);
	CHECK(look(z, "_http._tcp.web", DNS_T_SRV, &rs) == DNS_LOOKUP_FOUND && rs.n == 2);
	if (rs.n == 2) {
		check_srv(&rs.rr[0], 10, 5, 8080, "web", 30);
		check_srv(&rs.rr[1], 20, 5, 8080, "beta", 30);
	}
	CHECK(look(z, "_x._udp", DNS_T_SRV, &rs) == DNS_LOOKUP_FOUND && rs.n == 1);
	if (rs.n == 1)
		check_srv(&rs.rr[0], 0, 0, 53, "ext.example.org.", 120);
	/* Every name with records: the apex (SOA, NS, A) and the 11 others above, the two SRV owners. */
	CHECK(dns_zone_names(z) == 1 + 11 + 2);
	CHECK(dns_zone_records(z) == total);
	/* The apex, negative answers and what is not there. */
	const struct dns_rr *soa = dns_zone_soa(z);
	CHECK(soa->ttl == OD_DNS_NEGATIVE_TTL && soa->u.soa.minimum == OD_DNS_NEGATIVE_TTL);
	CHECK(look(z, "", DNS_T_NS, &rs) == DNS_LOOKUP_FOUND && rs.n == 1 && rs.rr[0].ttl == OD_DNS_NODE_TTL);
	CHECK(look(z, "alpha", DNS_T_AAAA, &rs) == DNS_LOOKUP_NODATA);
	CHECK(look(z, "_tcp.web", DNS_T_SRV, &rs) == DNS_LOOKUP_NODATA);
	CHECK(look(z, "_udp", DNS_T_A, &rs) == DNS_LOOKUP_NODATA);
	CHECK(look(z, "gamma", DNS_T_A, &rs) == DNS_LOOKUP_NXDOMAIN);
	CHECK(look(z, "node-0-4", DNS_T_A, &rs) == DNS_LOOKUP_NXDOMAIN);
	dns_zone_unref(z);

	/* Without a filter the rejected address is back. */
	z = build(&st, "10.200.0.1", NULL, NULL, NULL);
	struct want_addrs web = { "web", { "10.200.0.2", "10.200.0.3" }, 60 };
	check_addrs(z, &web, false);
	dns_zone_unref(z);
}

static void test_removed_peer_disappears(void)
{
	struct zl_state st;
	struct dns_rrset rs;
	struct dns_zone *z;

	leader_state(&st);
	st.n_peers = 2;   /* 10.200.1.7 left */
	st.n_dns = 3;     /* and the services after "web" were removed */
	z = build(&st, "10.200.0.1", NULL, NULL, NULL);
	CHECK(look(z, "node-1-7", DNS_T_A, &rs) == DNS_LOOKUP_NXDOMAIN);
	CHECK(look(z, "_http._tcp.web", DNS_T_SRV, &rs) == DNS_LOOKUP_NXDOMAIN);
	CHECK(look(z, "_tcp.web", DNS_T_SRV, &rs) == DNS_LOOKUP_NXDOMAIN);
	CHECK(look(z, "db.web", DNS_T_A, &rs) == DNS_LOOKUP_NXDOMAIN);
	static const struct want_addrs shared = { "shared", { "10.200.0.3" }, OD_DNS_NODE_TTL };
	static const struct want_addrs ns = { "ns", { "10.200.0.1", "10.200.0.2", "10.200.0.3" }, OD_DNS_NODE_TTL };
	check_addrs(z, &shared, false);
	check_addrs(z, &ns, false);
	dns_zone_unref(z);
}

static void test_worker_leader_name(void)
{
	struct zl_state st;
	struct dns_rrset rs;
	struct dns_zone *z;

	leader_state(&st);
	st.config.is_leader = false;
	strcpy(st.config.node_ip, "10.200.0.2");   /* the worker; its leader is peer 0 */
	st.config.hostname[0] = '\0';
	set_peer(&peers[0], "10.200.0.1", "alpha");
	st.n_dns = 0;
	z = build(&st, "10.200.0.1", NULL, NULL, NULL);
	static const struct want_addrs leader = { "leader", { "10.200.0.1" }, OD_DNS_NODE_TTL };
	static const struct want_addrs alpha = { "alpha", { "10.200.0.1" }, OD_DNS_NODE_TTL };
	check_addrs(z, &leader, false);
	check_addrs(z, &alpha, false);
	CHECK(look(z, "web", DNS_T_A, &rs) == DNS_LOOKUP_NXDOMAIN);
	dns_zone_unref(z);
	/* The leader unknown: no "leader" name at all. */
	z = build(&st, "", NULL, NULL, NULL);
	CHECK(look(z, "leader", DNS_T_A, &rs) == DNS_LOOKUP_NXDOMAIN);
	CHECK(look(z, "node-0-1", DNS_T_A, &rs) == DNS_LOOKUP_FOUND);
	dns_zone_unref(z);
	z = build(&st, NULL, NULL, NULL, NULL);
	CHECK(look(z, "leader", DNS_T_A, &rs) == DNS_LOOKUP_NXDOMAIN);
	dns_zone_unref(z);
}

static void test_ipv6_cluster(void)
{
	static const struct want_addrs aaaa[] = {
		{ "node6-0-1", { "fd00:200::1" }, OD_DNS_NODE_TTL },
		{ "node6-1-a0b", { "fd00:200::1:a0b" }, OD_DNS_NODE_TTL },
		{ "six", { "fd00:200::1", "fd00:200::1:a0b" }, OD_DNS_NODE_TTL },
		{ "ns", { "fd00:200::1", "fd00:200::1:a0b" }, OD_DNS_NODE_TTL },
		{ "leader", { "fd00:200::1" }, OD_DNS_NODE_TTL },
	};
	struct zl_state st = { 0 };
	struct dns_rrset rs;
	size_t total = 2;
	struct dns_zone *z;

	strcpy(st.config.cidr, "fd00:200::/48");
	strcpy(st.config.node_ip, "fd00:200::1");
	strcpy(st.config.hostname, "six");
	st.config.is_leader = true;
	set_peer(&peers[0], "fd00:200::1:a0b", "SIX");
	st.peers = peers;
	st.n_peers = 1;
	z = build(&st, "fd00:200::1", NULL, NULL, NULL);
	for (size_t i = 0; i < sizeof(aaaa) / sizeof(aaaa[0]); i++) {
		check_addrs(z, &aaaa[i], true);
		total += count_addrs(&aaaa[i]);
		CHECK(look(z, aaaa[i].name, DNS_T_A, &rs) == DNS_LOOKUP_NODATA);
	}
	CHECK(dns_zone_names(z) == 1 + 5 && dns_zone_records(z) == total);
	dns_zone_unref(z);
}

/* How the daemon really places IPv6 nodes: each is "::1" of its own /64 slice, so the names must come
 * from the slice (the low 32 bits would name every node "node6-0-1"). */
static void test_ipv6_slices(void)
{
	static const struct want_addrs aaaa[] = {
		{ "node6-0-1", { "fd00:200::1" }, OD_DNS_NODE_TTL },
		{ "node6-5ca-1", { "fd00:200:0:5ca::1" }, OD_DNS_NODE_TTL },
		{ "node6-ffff-1", { "fd00:200:0:ffff::1" }, OD_DNS_NODE_TTL },
	};
	struct zl_state st = { 0 };
	struct dns_zone *z;

	strcpy(st.config.cidr, "fd00:200::/48");
	strcpy(st.config.node_ip, "fd00:200::1");
	strcpy(st.config.slice_cidr, "fd00:200::/64");
	st.config.is_leader = true;
	set_peer(&peers[0], "fd00:200:0:5ca::1", "");
	strcpy(peers[0].slice_cidr, "fd00:200:0:5ca::/64");
	set_peer(&peers[1], "fd00:200:0:ffff::1", "");
	strcpy(peers[1].slice_cidr, "fd00:200:0:ffff::/64");
	st.peers = peers;
	st.n_peers = 2;
	z = build(&st, "fd00:200::1", NULL, NULL, NULL);
	for (size_t i = 0; i < sizeof(aaaa) / sizeof(aaaa[0]); i++)
		check_addrs(z, &aaaa[i], true);
	dns_zone_unref(z);
}

static void test_serial_and_errors(void)
{
	struct zl_state st;
	char err[256] = "";
	size_t skipped = 7;
	uint32_t serial = 0, first;
	uint32_t before = (uint32_t)time(NULL);
	struct dns_zone *z;

	leader_state(&st);
	z = od_dns_build_zone(&st, ZONE, "", &serial, NULL, NULL, &skipped, err, sizeof(err));
	CHECK(z && serial >= before && serial <= (uint32_t)time(NULL));
	CHECK(z && dns_zone_soa(z)->u.soa.serial == serial);
	dns_zone_unref(z);
	first = serial;
	z = od_dns_build_zone(&st, ZONE, "", &serial, NULL, NULL, NULL, err, sizeof(err));
	CHECK(z && serial > first);   /* strictly increasing even within one second */
	dns_zone_unref(z);
	/* A previous serial ahead of the clock keeps counting from it. */
	serial = before + 100000;
	z = od_dns_build_zone(&st, ZONE, "", &serial, NULL, NULL, NULL, err, sizeof(err));
	CHECK(z && serial == before + 100001 && dns_zone_soa(z)->u.soa.serial == before + 100001);
	dns_zone_unref(z);
	/* A bad zone: no zone, a message, the serial untouched. */
	serial = 42;
	z = od_dns_build_zone(&st, "bad..zone", "", &serial, NULL, NULL, NULL, err, sizeof(err));
	CHECK(z == NULL && serial == 42 && strstr(err, "bad..zone") != NULL);
	/* A zone of 244 bytes in wire form (the longest with room for "hostmaster."): names of up to 11
	 * bytes fit; "_http._tcp.web" (15) and the 253-byte name do not and are counted. */
	char longzone[300];
	size_t o = 0;
	for (int i = 0; i < 4; i++) {
		size_t l = i < 3 ? 60 : 59;
		memset(longzone + o, 'z', l);
		o += l;
		longzone[o++] = '.';
	}
	longzone[o] = '\0';
	z = od_dns_build_zone(&st, longzone, "10.200.0.1", &serial, NULL, NULL, &skipped, err, sizeof(err));
	CHECK(z != NULL);
	if (z) {
		CHECK(skipped == 3);
		CHECK(dns_zone_names(z) == 1 + 12);
		dns_zone_unref(z);
	}
	/* One byte longer: no SOA possible, refused. */
	memmove(longzone + 1, longzone, o + 1);
	z = od_dns_build_zone(&st, longzone, "10.200.0.1", &serial, NULL, NULL, &skipped, err, sizeof(err));
	CHECK(z == NULL && err[0]);
}

int main(void)
{
	TEST_RUN(test_leader_zone);
	TEST_RUN(test_removed_peer_disappears);
	TEST_RUN(test_worker_leader_name);
	TEST_RUN(test_ipv6_cluster);
	TEST_RUN(test_ipv6_slices);
	TEST_RUN(test_serial_and_errors);
	return TEST_SUMMARY();
}
