/* The authoritative answer to one query: a pure function from (zone, query bytes, transport) to
 * response bytes. The DNS server thread calls it for every UDP datagram and TCP message.
 *
 * Behaviour (RFC 1034/1035, 2181, 2308, 6891):
 * - Responses (QR set) and messages shorter than a header are dropped (DNS_VERDICT_DROP).
 * - Malformed queries get FORMERR (header only, the id echoed); opcodes other than QUERY get NOTIMP;
 *   EDNS versions above 0 get BADVERS with an OPT record.
 * - Class other than IN (or ANY) -> REFUSED. AXFR/IXFR -> REFUSED (no zone transfers).
 * - Outside the zone: REFUSED, or DNS_VERDICT_FORWARD when forward is true (the caller relays the
 *   query to the configured upstream and the upstream's answer back; nothing is written).
 * - In the zone: AA set; the question echoed with the client's case; FOUND -> the RRset in the answer
 *   section, rotated by `rotate` (records i = (k + rotate) mod n) so several addresses take turns;
 *   NXDOMAIN and NODATA -> the SOA in the authority section (TTL = min(SOA TTL, SOA minimum));
 *   NS queries at the apex add the addresses of the NS target as additional records, SRV answers add
 *   the addresses of in-zone targets.
 * - RD is copied (and CD, RFC 6840 5.9), RA is never set (we do not recurse ourselves), names are
 *   compressed (SRV targets excepted, RFC 2782).
 * - EDNS: when the query had an OPT, the response has one (payload DNS_UDP_OUR_MAX, version 0, DO
 *   clear, not echoed: no DNSSEC). UDP size limit = max(512, min(client's EDNS size, DNS_UDP_OUR_MAX)),
 *   or 512 without EDNS; TCP limit 65535. When the answer section (for a negative answer: the SOA) does
 *   not fit, the response is cut to the header + question (+ OPT) and TC is set; additional records
 *   that do not fit are just left out, whole RRsets only (RFC 2181 9). The response never exceeds the
 *   limit nor outcap (an outcap below a header: DROP). */
#ifndef DNS_ANSWER_H
#define DNS_ANSWER_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "dns/zone.h"

enum dns_verdict { DNS_VERDICT_REPLY, DNS_VERDICT_DROP, DNS_VERDICT_FORWARD };

struct dns_answer_info {
	enum dns_verdict verdict;
	uint16_t rcode;              /* of the response written (extended rcode included: 16 = BADVERS) */
	bool truncated;
};

/* z may be NULL (no zone yet: everything is outside the zone). out must hold at least outcap bytes;
 * outcap >= DNS_UDP_OUR_MAX is enough for UDP, DNS_TCP_MAX for TCP. Returns the response length (0
 * unless the verdict is REPLY). */
size_t dns_answer(const struct dns_zone *z, const uint8_t *query, size_t qlen, bool tcp, bool forward,
		  uint32_t rotate, uint8_t *out, size_t outcap, struct dns_answer_info *info);
#endif
