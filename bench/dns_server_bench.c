/* The DNS benchmark's fixture (bench/dns.sh): one description of a zone of about 100 names (node
 * names, hostnames with AAAA, a few services with several addresses and SRV records), written out for
 * NSD and served by our server, so both answer from exactly the same data.
 *
 *   dns_server_bench files DIR        writes DIR/overlay.zone (NSD zone file), DIR/queries.txt
 *                                      (dnsperf input: A, AAAA, SRV and NXDOMAIN queries) and
 *                                      DIR/register.txt ("zl-overlay dns add" arguments, one set a line)
 *   dns_server_bench serve ADDR PORT  serves the zone with od_dns_server on ADDR:PORT until SIGTERM or
 *                                      SIGINT, then prints one line of counters
 *
 * The server runs its own thread exactly as in zl-overlayd; this process only waits for a signal. */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "dns/zone.h"
#include "overlayd/dns_server.h"

#define APEX "overlay.local."

enum {
	NODES = 80, HOSTS = 10, TTL = 300, NS_TTL = 300, NEG_TTL = 30,
	SERIAL = 1, REFRESH = 3600, RETRY = 600, EXPIRE = 86400,
	QUERY_LINES = 1000,
};

struct service {
	const char *name;
	int first_node, n_addrs;      /* A records: the addresses of nodes first_node.. */
	const char *srv;              /* SRV owner, NULL for none */
	uint16_t port;
};

static const struct service services[] = {
	{ "web", 1, 4, "_http._tcp.web", 8080 },
	{ "api", 5, 3, "_grpc._tcp.api", 9090 },
	{ "db", 8, 2, "_pg._tcp.db", 5432 },
	{ "cache", 10, 5, NULL, 0 },
};

#define N_SERVICES (sizeof(services) / sizeof(services[0]))

/* One description, three outputs: the builder (serving), NSD's zone file, or zl-overlay CLI arguments
 * ("dns add" lines for zl-overlayd, which makes the node names, "leader" and "ns" itself from its
 * membership: those are reserved there and left out). */
struct sink {
	struct dns_zone_builder *b;
	FILE *zone_file, *cli_file;
	int rc;
};

static bool reserved(const char *name)
{
	return !strncmp(name, "node-", 5) || !strcmp(name, "leader") || !strcmp(name, "ns");
}

static void add_a(struct sink *k, const char *name, const uint8_t a[4])
{
	char err[160];

	if (k->zone_file)
		fprintf(k->zone_file, "%s\t%d\tIN\tA\t%u.%u.%u.%u\n", name, TTL, a[0], a[1], a[2], a[3]);
	else if (k->cli_file && !reserved(name))
		fprintf(k->cli_file, "%s %u.%u.%u.%u --ttl %d\n", name, a[0], a[1], a[2], a[3], TTL);
	else if (k->b && dns_zone_add_a(k->b, name, a, TTL, err, sizeof(err)))
		k->rc = -1;
}

static void add_aaaa(struct sink *k, const char *name, const uint8_t a[16])
{
	char err[160], text[INET6_ADDRSTRLEN];

	inet_ntop(AF_INET6, a, text, sizeof(text));
	if (k->zone_file)
		fprintf(k->zone_file, "%s\t%d\tIN\tAAAA\t%s\n", name, TTL, text);
	else if (k->cli_file && !reserved(name))
		fprintf(k->cli_file, "%s %s --ttl %d\n", name, text, TTL);
	else if (k->b && dns_zone_add_aaaa(k->b, name, a, TTL, err, sizeof(err)))
		k->rc = -1;
}

static void add_srv(struct sink *k, const char *name, uint16_t prio, uint16_t weight, uint16_t port,
		    const char *target)
{
	char err[160];

	if (k->zone_file)
		fprintf(k->zone_file, "%s\t%d\tIN\tSRV\t%u %u %u %s\n", name, TTL, prio, weight, port, target);
	else if (k->cli_file)
		fprintf(k->cli_file, "%s --srv %u %u %u %s --ttl %d\n", name, prio, weight, port, target, TTL);
	else if (k->b && dns_zone_add_srv(k->b, name, prio, weight, port, target, TTL, err, sizeof(err)))
		k->rc = -1;
}

static void node_addr(int i, uint8_t a[4])
{
	a[0] = 10;
	a[1] = 200;
	a[2] = 0;
	a[3] = (uint8_t)i;
}

/* Everything below the apex records. */
static void describe(struct sink *k)
{
	char name[64], target[64];
	uint8_t a[4], a6[16] = { 0xfd, 0x00, 0x0c, 0x8 };

	node_addr(1, a);
	add_a(k, "ns", a);
	add_a(k, "leader", a);
	for (int i = 1; i <= NODES; i++) {
		snprintf(name, sizeof(name), "node-0-%d", i);
		node_addr(i, a);
		add_a(k, name, a);
	}
	for (int i = 1; i <= HOSTS; i++) {
		snprintf(name, sizeof(name), "host-%d", i);
		node_addr(i, a);
		a6[15] = (uint8_t)i;
		add_a(k, name, a);
		add_aaaa(k, name, a6);
	}
	for (size_t s = 0; s < N_SERVICES; s++) {
		const struct service *v = &services[s];

		for (int i = 0; i < v->n_addrs; i++) {
			node_addr(v->first_node + i, a);
			add_a(k, v->name, a);
			if (!v->srv)
				continue;
			snprintf(target, sizeof(target), "node-0-%d", v->first_node + i);
			add_srv(k, v->srv, 10, 5, v->port, target);
		}
	}
}

static int write_zone_file(const char *dir)
{
	char path[4096];
	struct sink k = { 0 };

	snprintf(path, sizeof(path), "%s/overlay.zone", dir);
	k.zone_file = fopen(path, "w");
	if (!k.zone_file)
		return -errno;
	/* The apex as dns_zone_builder makes it: SOA TTL = negative TTL = SOA minimum. */
	fprintf(k.zone_file, "$ORIGIN %s\n@\t%d\tIN\tSOA\tns hostmaster %d %d %d %d %d\n@\t%d\tIN\tNS\tns\n",
		APEX, NEG_TTL, SERIAL, REFRESH, RETRY, EXPIRE, NEG_TTL, NS_TTL);
	describe(&k);
	return fclose(k.zone_file) ? -errno : 0;
}

static int write_registrations(const char *dir)
{
	char path[4096];
	struct sink k = { 0 };

	snprintf(path, sizeof(path), "%s/register.txt", dir);
	k.cli_file = fopen(path, "w");
	if (!k.cli_file)
		return -errno;
	describe(&k);
	return fclose(k.cli_file) ? -errno : 0;
}

/* A repeatable mix: 50% A (nodes, services, leader), 20% AAAA (hosts), 15% SRV, 15% NXDOMAIN. */
static int write_queries(const char *dir)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/queries.txt", dir);
	f = fopen(path, "w");
	if (!f)
		return -errno;
	for (int i = 0; i < QUERY_LINES; i++) {
		int kind = i % 20;

		if (kind < 7)
			fprintf(f, "node-0-%d.%s A\n", 1 + (i * 7) % NODES, APEX);
		else if (kind < 10)
			fprintf(f, "%s.%s A\n", i % 3 ? services[(size_t)i % N_SERVICES].name : "leader", APEX);
		else if (kind < 14)
			fprintf(f, "host-%d.%s AAAA\n", 1 + i % HOSTS, APEX);
		else if (kind < 17)
			fprintf(f, "%s.%s SRV\n", services[(size_t)i % 3].srv, APEX);
		else
			fprintf(f, "missing-%d.%s A\n", i, APEX);
	}
	return fclose(f) ? -errno : 0;
}

static struct dns_zone *build_zone(void)
{
	struct dns_zone_params p = { .apex = APEX, .serial = SERIAL, .refresh = REFRESH, .retry = RETRY,
				     .expire = EXPIRE, .negative_ttl = NEG_TTL, .ns_ttl = NS_TTL };
	char err[160];
	struct sink k = { .b = dns_zone_builder_new(&p, err, sizeof(err)) };

	if (!k.b)
		return NULL;
	describe(&k);
	if (k.rc) {
		dns_zone_builder_free(k.b);
		return NULL;
	}
	return dns_zone_builder_finish(k.b);
}

static int serve(const char *addr, const char *port_text)
{
	struct od_dns_config cfg = { .n_listen = 1 };
	struct od_dns_server *s = NULL;
	struct od_dns_stats st;
	struct dns_zone *z;
	char err[256];
	sigset_t set;
	size_t names;
	int sig, rc;
	long port = strtol(port_text, NULL, 10);

	if (zl_ip_parse(addr, &cfg.listen[0], err, sizeof(err)) || port < 1 || port > 65535) {
		fprintf(stderr, "dns_server_bench: bad address or port\n");
		return 2;
	}
	cfg.port = (uint16_t)port;
	z = build_zone();
	if (!z) {
		fprintf(stderr, "dns_server_bench: zone could not be built\n");
		return 1;
	}
	/* Blocked before the server thread starts, so only sigwait below sees them. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	names = dns_zone_names(z);
	rc = od_dns_server_start(&cfg, z, &s, err, sizeof(err));
	dns_zone_unref(z);
	if (rc) {
		fprintf(stderr, "dns_server_bench: %s\n", err);
		return 1;
	}
	fprintf(stderr, "dns_server_bench: serving %zu names on %s port %ld\n", names, addr, port);
	sigwait(&set, &sig);
	od_dns_server_stats(s, &st);
	od_dns_server_stop(s);
	printf("udp_queries %llu tcp_queries %llu noerror %llu nxdomain %llu dropped %llu truncated %llu\n",
	       (unsigned long long)st.udp_queries, (unsigned long long)st.tcp_queries,
	       (unsigned long long)st.responses[OD_DNS_RC_NOERROR], (unsigned long long)st.responses[OD_DNS_RC_NXDOMAIN],
	       (unsigned long long)st.dropped, (unsigned long long)st.truncated);
	return 0;
}

int main(int argc, char **argv)
{
	int rc;

	if (argc == 3 && !strcmp(argv[1], "files")) {
		rc = write_zone_file(argv[2]);
		if (!rc)
			rc = write_queries(argv[2]);
		if (!rc)
			rc = write_registrations(argv[2]);
		if (rc)
			fprintf(stderr, "dns_server_bench: %s: %s\n", argv[2], strerror(-rc));
		return rc ? 1 : 0;
	}
	if (argc == 4 && !strcmp(argv[1], "serve"))
		return serve(argv[2], argv[3]);
	fprintf(stderr, "usage: dns_server_bench files DIR | serve ADDR PORT\n");
	return 2;
}
