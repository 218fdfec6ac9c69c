/* libFuzzer harness for the DNS query path: random bytes into dns_query_parse and dns_answer against a
 * small fixed zone, over UDP and TCP, with several output capacities and both forwarding settings.
 *
 * Build and run by hand (make fuzz does the same for every harness):
 *   clang -std=gnu11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
 *     -Isrc tests/fuzz/fuzz_dns_query.c src/dns/wire.c src/dns/zone.c src/dns/answer.c \
 *     -o build/fuzz/fuzz_dns_query
 *   build/fuzz/fuzz_dns_query -max_len=2048
 *
 * Checked on every input: a reply is never longer than the client's limit (512 without EDNS, the EDNS
 * size clamped to [512, 1232], 65535 over TCP) nor the output capacity; a reply parses as a DNS message
 * with QR set and the query's id (decoded here independently: pointers followed backwards only, with a
 * hop limit, every record inside the message, nothing after the last); only replies have a length;
 * the parser and the answerer agree on what is dropped. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "dns/answer.h"
#include "dns/wire.h"
#include "dns/zone.h"

static struct dns_zone *zone;

static void must(int rc, const char *err)
{
	if (rc) {
		fprintf(stderr, "fuzz zone: %s\n", err);
		abort();
	}
}

static struct dns_zone *make_zone(void)
{
	static const uint8_t a1[4] = { 10, 200, 0, 1 }, a5[4] = { 10, 200, 0, 5 };
	static const uint8_t v6[16] = { 0xfd, 0, 2, 0, [15] = 1 };
	struct dns_zone_params p = {
		.apex = "overlay.local", .serial = 1, .refresh = 3600, .retry = 600, .expire = 86400,
		.negative_ttl = 60, .ns_ttl = 3600,
	};
	char err[200] = "";
	struct dns_zone_builder *b = dns_zone_builder_new(&p, err, sizeof(err));

	if (!b)
		must(1, err);
	must(dns_zone_add_a(b, "ns", a1, 300, err, sizeof(err)), err);
	must(dns_zone_add_aaaa(b, "ns", v6, 300, err, sizeof(err)), err);
	must(dns_zone_add_a(b, "node-0-5", a5, 300, err, sizeof(err)), err);
	must(dns_zone_add_a(b, "leader", a1, 300, err, sizeof(err)), err);
	must(dns_zone_add_srv(b, "_http._tcp.web", 10, 5, 80, "node-0-5", 60, err, sizeof(err)), err);
	must(dns_zone_add_srv(b, "_http._tcp.web", 20, 5, 80, "out.example.", 60, err, sizeof(err)), err);
	for (unsigned i = 0; i < 90; i++) {
		uint8_t a[4] = { 10, 201, 0, (uint8_t)i };

		must(dns_zone_add_a(b, "web", a, 30, err, sizeof(err)), err);
	}
	zone = dns_zone_builder_finish(b);
	if (!zone)
		abort();
	return zone;
}

/* ---- an independent decoder ---- */

static uint16_t g16(const uint8_t *b, size_t o) { return (uint16_t)(b[o] << 8 | b[o + 1]); }

static bool skip_name(const uint8_t *b, size_t len, size_t *off)
{
	size_t o = *off, end = 0, wire = 1;

	for (int hops = 0;;) {
		if (o >= len)
			return false;
		if ((b[o] & 0xC0) == 0xC0) {
			if (o + 1 >= len || ++hops > 127)
				return false;
			size_t to = (size_t)(b[o] & 0x3F) << 8 | b[o + 1];

			if (!end)
				end = o + 2;
			if (to >= o)
				return false;
			o = to;
			continue;
		}
		if (b[o] & 0xC0)
			return false;
		if (b[o] == 0)
			break;
		if ((wire += 1u + b[o]) > 255)
			return false;
		o += 1u + b[o];
	}
	*off = end ? end : o + 1;
	return true;
}

static bool parses(const uint8_t *b, size_t len)
{
	size_t o = DNS_HEADER_LEN, records;

	if (len < DNS_HEADER_LEN || !(b[2] & 0x80) || g16(b, 4) > 1)
		return false;
	if (g16(b, 4) && (!skip_name(b, len, &o) || len - o < 4))
		return false;
	o += g16(b, 4) ? 4 : 0;
	records = (size_t)g16(b, 6) + g16(b, 8) + g16(b, 10);
	for (size_t i = 0; i < records; i++) {
		if (!skip_name(b, len, &o) || len - o < 10)
			return false;
		size_t rdlen = g16(b, o + 8);

		o += 10;
		if (len - o < rdlen)
			return false;
		o += rdlen;
	}
	return o == len;
}

static size_t client_limit(const uint8_t *data, size_t size, bool tcp)
{
	struct dns_query q;
	enum dns_parse_result r = dns_query_parse(data, size, &q);

	if (tcp)
		return DNS_TCP_MAX;
	if ((r != DNS_PARSE_OK && r != DNS_PARSE_BADVERS) || !q.has_edns || q.edns_udp_size < 512)
		return 512;
	return q.edns_udp_size > 1232 ? 1232 : q.edns_udp_size;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t out[DNS_TCP_MAX + 1];
	static const size_t caps[] = { 0, 11, 12, 40, 300, 512, 1232, DNS_TCP_MAX };
	struct dns_query q;
	struct dns_answer_info info;
	bool drop;

	if (!zone)
		make_zone();
	drop = dns_query_parse(data, size, &q) == DNS_PARSE_DROP;
	for (size_t c = 0; c < sizeof(caps) / sizeof(caps[0]); c++) {
		for (int tcp = 0; tcp <= 1; tcp++) {
			size_t limit = client_limit(data, size, tcp), cap = caps[c];
			uint32_t rotate = size ? data[size - 1] * 7919u : 0;
			bool forward = (c + (size_t)tcp) & 1;

			out[cap] = 0xA5;
			size_t n = dns_answer(zone, data, size, tcp, forward, rotate, out, cap, &info);

			if (out[cap] != 0xA5)
				abort();          /* wrote past outcap */
			if (info.verdict != DNS_VERDICT_REPLY) {
				if (n != 0 || (info.verdict == DNS_VERDICT_DROP && !drop && cap >= DNS_HEADER_LEN))
					abort();
				if (info.verdict == DNS_VERDICT_FORWARD && !forward)
					abort();
				continue;
			}
			if (drop || n > limit || n > cap || !parses(out, n) || g16(out, 0) != g16(data, 0))
				abort();
			if (((out[2] & (DNS_FLAG_TC >> 8)) != 0) != info.truncated)
				abort();
		}
	}
	return 0;
}
