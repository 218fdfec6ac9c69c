/* The overlay zone as an immutable snapshot: built once by a builder on the daemon's loop thread,
 * then shared read-only with the DNS server thread, which may keep answering from an old snapshot
 * while a new one is published. Reference counted (atomically), so the last user frees it.
 *
 * Content: the SOA and NS records at the apex (added by the builder: SOA mname "ns.<apex>", rname
 * "hostmaster.<apex>", NS "ns.<apex>"; the caller adds the addresses of "ns"), then what the caller
 * adds: A, AAAA and SRV records at names relative to the apex. Identical records (same name, type and
 * data) are kept once, with the smallest TTL given; the records of one RRset (name and type) all get
 * the smallest TTL among them (RFC 2181 5.2). SRV targets are stored lower-cased. Every ancestor of a name between it and the apex
 * exists as an empty non-terminal (RFC 8020: NODATA, not NXDOMAIN, for "_tcp.web" when
 * "_http._tcp.web" exists). No wildcards, no CNAMEs, no delegations.
 *
 * Lookups are O(1) on average (a hash of the lower-cased name), allocation-free and thread-safe on a
 * finished zone. */
#ifndef DNS_ZONE_H
#define DNS_ZONE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "dns/wire.h"

struct dns_srv {
	uint16_t priority, weight, port;
	struct dns_name target;      /* absolute */
};
struct dns_soa {
	struct dns_name mname, rname;
	uint32_t serial, refresh, retry, expire, minimum;
};

/* One record of an RRset (the owner name and class IN are implied by the lookup). */
struct dns_rr {
	uint16_t type;               /* DNS_T_A, _AAAA, _SRV, _NS, _SOA */
	uint32_t ttl;
	union {
		uint8_t a[4];
		uint8_t aaaa[16];
		struct dns_srv srv;
		struct dns_name ns;
		struct dns_soa soa;
	} u;
};

/* The records of one name and type, in the order they were added. */
struct dns_rrset {
	const struct dns_rr *rr;
	size_t n;
};

enum dns_lookup {
	DNS_LOOKUP_OUT_OF_ZONE,      /* not at or below the apex */
	DNS_LOOKUP_NXDOMAIN,         /* no such name (nor an empty non-terminal) */
	DNS_LOOKUP_NODATA,           /* the name exists, with no records of that type */
	DNS_LOOKUP_FOUND,
};

struct dns_zone;
struct dns_zone_builder;

struct dns_zone_params {
	const char *apex;            /* text, e.g. "overlay.local." (trailing dot optional) */
	uint32_t serial;
	uint32_t refresh, retry, expire; /* SOA timers (no secondaries exist; informational) */
	uint32_t negative_ttl;       /* SOA minimum = negative-caching TTL (RFC 2308), also the SOA's TTL */
	uint32_t ns_ttl;             /* TTL of the apex NS record */
};

/* NULL on -EINVAL (bad apex, message in err) or out of memory. */
struct dns_zone_builder *dns_zone_builder_new(const struct dns_zone_params *p, char *err, size_t errlen);
/* rel: a name relative to the apex ("node-0-5", "_http._tcp.web", "" or "@" = the apex itself),
 * case-insensitive (stored lower-cased). 0, -EINVAL (bad name: empty label, label > 63, total > 255
 * once the apex is appended; message in err), -ENOMEM. */
int dns_zone_add_a(struct dns_zone_builder *b, const char *rel, const uint8_t addr[4], uint32_t ttl,
		   char *err, size_t errlen);
int dns_zone_add_aaaa(struct dns_zone_builder *b, const char *rel, const uint8_t addr[16], uint32_t ttl,
		      char *err, size_t errlen);
/* target: relative to the apex, or absolute when it ends with '.' (may be outside the zone). */
int dns_zone_add_srv(struct dns_zone_builder *b, const char *rel, uint16_t priority, uint16_t weight,
		     uint16_t port, const char *target, uint32_t ttl, char *err, size_t errlen);
/* Consumes b. Returns the zone with one reference, or NULL when out of memory. */
struct dns_zone *dns_zone_builder_finish(struct dns_zone_builder *b);
/* Frees an unfinished builder (NULL is fine). */
void dns_zone_builder_free(struct dns_zone_builder *b);

struct dns_zone *dns_zone_ref(struct dns_zone *z);
void dns_zone_unref(struct dns_zone *z);     /* NULL is fine */

const struct dns_name *dns_zone_apex(const struct dns_zone *z);   /* lower case */
/* The apex SOA record (for the authority section of negative answers). */
const struct dns_rr *dns_zone_soa(const struct dns_zone *z);
/* qtype DNS_T_ANY gives FOUND with every record of the name in *out (in the order types were first
 * added) when it has any. On FOUND out holds the RRset; otherwise out is empty. */
enum dns_lookup dns_zone_lookup(const struct dns_zone *z, const struct dns_name *qname, uint16_t qtype,
				struct dns_rrset *out);
/* Counts (for logs and tests): names with records, and records. */
size_t dns_zone_names(const struct dns_zone *z);
size_t dns_zone_records(const struct dns_zone *z);
#endif
