/* IPv4 and IPv6 addresses and prefixes for the overlay's allocators: strict parsing, canonical
 * formatting, and the 128-bit arithmetic that turns "the n-th address of a prefix" into an address.
 * Pure: no I/O, no allocation.
 *
 * An address is kept in network byte order (as sockets and wg_allowedips want it); for arithmetic it
 * converts to an unsigned 128-bit integer with IPv4 in the low 32 bits, so one code path serves both
 * families. A prefix keeps its address exactly as written: "10.200.1.7/16" parses, and
 * zl_prefix_is_network() tells callers that need a network address (cluster CIDRs, slices) to refuse it.
 *
 * Errors: functions that can fail on user input return 0 or a negative errno and, when err is not
 * NULL, write a one-line message into err (errlen bytes, always NUL-terminated, "" on success). The
 * allocators (ipam.h, slices.h) follow the same convention. */
#ifndef ZL_OVERLAY_CIDR_H
#define ZL_OVERLAY_CIDR_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef unsigned __int128 zl_u128;

#define ZL_U128_MAX (~(zl_u128)0)

enum zl_cidr_sizes {
	ZL_IP_STRLEN = 46,     /* INET6_ADDRSTRLEN: longest address text + NUL */
	ZL_PREFIX_STRLEN = 50, /* address + "/128" + NUL */
	ZL_U128_STRLEN = 40,   /* 2^128 - 1 has 39 decimal digits, + NUL */
	ZL_ERR_LEN = 160,      /* a comfortable size for err buffers */
};

struct zl_ip {
	int family;          /* AF_INET or AF_INET6 */
	uint8_t addr[16];    /* network order; IPv4 uses addr[0..3], the rest is zero */
};

struct zl_prefix {
	struct zl_ip ip;
	uint8_t len;         /* 0..32 or 0..128 */
};

/* 32 for AF_INET, 128 for AF_INET6, 0 for anything else. */
unsigned zl_ip_bits(int family);

/* Dotted-quad IPv4 (no leading zeros, no shorthand) or RFC 4291 IPv6 text (no zone id). An address
 * with a ':' is IPv6, so "::ffff:1.2.3.4" stays IPv6. -EINVAL on anything else. */
int zl_ip_parse(const char *text, struct zl_ip *out, char *err, size_t errlen);
/* "ADDRESS/LEN" with LEN in decimal (1 to 3 digits, no sign) and at most 32 or 128. Host bits are kept. */
int zl_prefix_parse(const char *text, struct zl_prefix *out, char *err, size_t errlen);

/* Canonical text (RFC 5952 for IPv6, as inet_ntop writes it); returns buf. An invalid family gives "?". */
const char *zl_ip_format(const struct zl_ip *ip, char buf[ZL_IP_STRLEN]);
const char *zl_prefix_format(const struct zl_prefix *p, char buf[ZL_PREFIX_STRLEN]);
/* Decimal; returns buf. */
const char *zl_u128_format(zl_u128 v, char buf[ZL_U128_STRLEN]);

/* 2^bits - 1 for bits 0..128 (bits above 128 act as 128): the all-ones mask of the low bits. */
zl_u128 zl_u128_low_mask(unsigned bits);
/* v, or UINT64_MAX when v does not fit. */
uint64_t zl_u128_sat64(zl_u128 v);

zl_u128 zl_ip_to_u128(const struct zl_ip *ip);
/* Inverse of zl_ip_to_u128; for AF_INET only the low 32 bits of v are used. */
void zl_ip_from_u128(int family, zl_u128 v, struct zl_ip *out);

bool zl_ip_equal(const struct zl_ip *a, const struct zl_ip *b);
/* Orders IPv4 before IPv6, then by address: a total order for sorting. Returns <0, 0 or >0. */
int zl_ip_compare(const struct zl_ip *a, const struct zl_ip *b);

/* True when the family is known and len fits it. */
bool zl_prefix_valid(const struct zl_prefix *p);
/* True when p is valid and its host bits are zero. */
bool zl_prefix_is_network(const struct zl_prefix *p);
/* p with its host bits cleared. */
void zl_prefix_network(const struct zl_prefix *p, struct zl_prefix *out);
bool zl_prefix_equal(const struct zl_prefix *a, const struct zl_prefix *b);
/* ip lies in p (same family, same leading len bits). */
bool zl_prefix_contains(const struct zl_prefix *p, const struct zl_ip *ip);
/* Every address of inner lies in outer. */
bool zl_prefix_contains_prefix(const struct zl_prefix *outer, const struct zl_prefix *inner);
/* The two share at least one address (for prefixes: one contains the other). */
bool zl_prefix_overlaps(const struct zl_prefix *a, const struct zl_prefix *b);

/* The offset of ip from the network address of p (its host bits); p must contain ip. */
zl_u128 zl_prefix_offset(const struct zl_prefix *p, const struct zl_ip *ip);
/* The address at offset off from the network address of p (off is cut to the host bits). */
void zl_prefix_at(const struct zl_prefix *p, zl_u128 off, struct zl_ip *out);

/* printf-style message into err (if not NULL): the error helper of the allocation modules. */
void zl_cidr_errorf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
#endif
