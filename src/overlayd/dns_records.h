/* The overlay zone's content, derived from the node's state: what every node serves, so that every
 * node answers the same names within moments of a membership change.
 *
 * For every member (this node and st.peers):
 *   node-<third>-<fourth>  A      its IPv4 overlay address (zl_node_name); IPv6 members:
 *                                 node6-<slice index>-<host offset> AAAA (zl_node_name6_slice, from
 *                                 its slice; node6-<h7>-<h8> for a member without a slice)
 *   <hostname>             A/AAAA when the member has a hostname (several members with one hostname:
 *                                 all their addresses)
 *   ns                     A/AAAA (every node serves the zone, so every node is a name server)
 * and for the leader (this node on the leader; od_node_leader on a worker):
 *   leader                 A/AAAA
 * then every service record of st.dns (addresses and SRV), except addresses that the filter rejects
 * (failing health checks). A name that no longer exists in the state is simply not in the new zone:
 * no tombstones.
 *
 * TTLs: node names OD_DNS_NODE_TTL; service records their own; negative answers OD_DNS_NEGATIVE_TTL
 * (short, so a name that appears is seen quickly). The SOA serial is the Unix time of the build,
 * made strictly increasing across builds of one daemon. */
#ifndef OD_DNS_RECORDS_H
#define OD_DNS_RECORDS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "dns/zone.h"
#include "overlay/state.h"

enum {
	OD_DNS_NODE_TTL = 30,
	OD_DNS_NEGATIVE_TTL = 5,
};

/* Return false to leave that address of that record out of the zone (its check fails). */
typedef bool (*od_dns_addr_filter)(void *ctx, const struct zl_state_dns_record *rec);

/* Builds the zone of st. leader_ip: the leader's overlay address ("" = unknown: no "leader" name).
 * serial_io: the previous serial (0 at first), updated. filter may be NULL. Returns the zone with one
 * reference, or NULL with a message (bad zone name, out of memory). Records that cannot be added (a
 * name too long once the zone is appended) are skipped and counted in *skipped (may be NULL). */
struct dns_zone *od_dns_build_zone(const struct zl_state *st, const char *zone, const char *leader_ip,
				   uint32_t *serial_io, od_dns_addr_filter filter, void *ctx, size_t *skipped,
				   char *err, size_t errlen);
#endif
