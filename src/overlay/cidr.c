/* Addresses and prefixes (see cidr.h). Text conversion leans on inet_pton/inet_ntop, which are strict
 * (no octal, no "1.2.3" shorthand, no zone ids) and pure; everything else is integer arithmetic on
 * the 128-bit form. */
#include "overlay/cidr.h"
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

void zl_cidr_errorf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static void clear_err(char *err, size_t errlen)
{
	if (err && errlen)
		err[0] = '\0';
}

unsigned zl_ip_bits(int family)
{
	return family == AF_INET ? 32 : family == AF_INET6 ? 128 : 0;
}

int zl_ip_parse(const char *text, struct zl_ip *out, char *err, size_t errlen)
{
	struct zl_ip ip = { 0 };

	clear_err(err, errlen);
	/* Bounded first, so a huge or unterminated-looking input is never handed to inet_pton whole. */
	if (!text || !text[0] || strnlen(text, ZL_IP_STRLEN) >= ZL_IP_STRLEN)
		goto bad;
	ip.family = strchr(text, ':') ? AF_INET6 : AF_INET;
	if (inet_pton(ip.family, text, ip.addr) != 1)
		goto bad;
	*out = ip;
	return 0;
bad:
	zl_cidr_errorf(err, errlen, "'%.64s' is not an IPv4 or IPv6 address", text ? text : "");
	return -EINVAL;
}

/* Decimal prefix length: 1 to 3 digits, nothing else. Returns -1 when malformed. */
static int parse_len(const char *s)
{
	int v = 0;
	size_t n = strlen(s);

	if (n < 1 || n > 3)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

int zl_prefix_parse(const char *text, struct zl_prefix *out, char *err, size_t errlen)
{
	char addr[ZL_IP_STRLEN];
	const char *slash;
	struct zl_prefix p = { 0 };
	int len, r;

	clear_err(err, errlen);
	slash = text ? strchr(text, '/') : NULL;
	if (!slash) {
		zl_cidr_errorf(err, errlen, "'%.64s' is not a CIDR prefix (ADDRESS/LENGTH)", text ? text : "");
		return -EINVAL;
	}
	if ((size_t)(slash - text) >= sizeof(addr)) {
		zl_cidr_errorf(err, errlen, "'%.64s' is not a CIDR prefix: address too long", text);
		return -EINVAL;
	}
	memcpy(addr, text, (size_t)(slash - text));
	addr[slash - text] = '\0';
	r = zl_ip_parse(addr, &p.ip, err, errlen);
	if (r)
		return r;
	len = parse_len(slash + 1);
	if (len < 0) {
		zl_cidr_errorf(err, errlen, "'%.64s' is not a CIDR prefix: bad prefix length", text);
		return -EINVAL;
	}
	if ((unsigned)len > zl_ip_bits(p.ip.family)) {
		zl_cidr_errorf(err, errlen, "'%.64s': prefix length %d exceeds %u for %s", text, len,
			       zl_ip_bits(p.ip.family), p.ip.family == AF_INET ? "IPv4" : "IPv6");
		return -EINVAL;
	}
	p.len = (uint8_t)len;
	*out = p;
	return 0;
}

const char *zl_ip_format(const struct zl_ip *ip, char buf[ZL_IP_STRLEN])
{
	if (!zl_ip_bits(ip->family) || !inet_ntop(ip->family, ip->addr, buf, ZL_IP_STRLEN))
		snprintf(buf, ZL_IP_STRLEN, "?");
	return buf;
}

const char *zl_prefix_format(const struct zl_prefix *p, char buf[ZL_PREFIX_STRLEN])
{
	char ip[ZL_IP_STRLEN];

	snprintf(buf, ZL_PREFIX_STRLEN, "%s/%u", zl_ip_format(&p->ip, ip), p->len);
	return buf;
}

const char *zl_u128_format(zl_u128 v, char buf[ZL_U128_STRLEN])
{
	char tmp[ZL_U128_STRLEN];
	size_t n = 0, i;

	do {
		tmp[n++] = (char)('0' + (unsigned)(v % 10));
		v /= 10;
	} while (v);
	for (i = 0; i < n; i++)
		buf[i] = tmp[n - 1 - i];
	buf[n] = '\0';
	return buf;
}

zl_u128 zl_u128_low_mask(unsigned bits)
{
	/* A shift by the full width is undefined, hence the special case. */
	return bits >= 128 ? ZL_U128_MAX : ((zl_u128)1 << bits) - 1;
}

uint64_t zl_u128_sat64(zl_u128 v)
{
	return v > UINT64_MAX ? UINT64_MAX : (uint64_t)v;
}

zl_u128 zl_ip_to_u128(const struct zl_ip *ip)
{
	unsigned n = zl_ip_bits(ip->family) / 8;
	zl_u128 v = 0;

	for (unsigned i = 0; i < n; i++)
		v = (v << 8) | ip->addr[i];
	return v;
}

void zl_ip_from_u128(int family, zl_u128 v, struct zl_ip *out)
{
	unsigned n = zl_ip_bits(family) / 8;

	memset(out, 0, sizeof(*out));
	out->family = family;
	for (unsigned i = n; i-- > 0;) {
		out->addr[i] = (uint8_t)v;
		v >>= 8;
	}
}

bool zl_ip_equal(const struct zl_ip *a, const struct zl_ip *b)
{
	return a->family == b->family && zl_ip_bits(a->family) &&
	       memcmp(a->addr, b->addr, zl_ip_bits(a->family) / 8) == 0;
}

int zl_ip_compare(const struct zl_ip *a, const struct zl_ip *b)
{
	unsigned ba = zl_ip_bits(a->family), bb = zl_ip_bits(b->family);

	if (ba != bb)
		return ba < bb ? -1 : 1;
	return memcmp(a->addr, b->addr, ba / 8);
}

bool zl_prefix_valid(const struct zl_prefix *p)
{
	unsigned bits = zl_ip_bits(p->ip.family);

	return bits && p->len <= bits;
}

static zl_u128 host_mask(const struct zl_prefix *p)
{
	return zl_u128_low_mask(zl_ip_bits(p->ip.family) - p->len);
}

bool zl_prefix_is_network(const struct zl_prefix *p)
{
	return zl_prefix_valid(p) && (zl_ip_to_u128(&p->ip) & host_mask(p)) == 0;
}

void zl_prefix_network(const struct zl_prefix *p, struct zl_prefix *out)
{
	struct zl_prefix n = *p;

	zl_ip_from_u128(p->ip.family, zl_ip_to_u128(&p->ip) & ~host_mask(p), &n.ip);
	*out = n;
}

bool zl_prefix_equal(const struct zl_prefix *a, const struct zl_prefix *b)
{
	return a->len == b->len && zl_ip_equal(&a->ip, &b->ip);
}

bool zl_prefix_contains(const struct zl_prefix *p, const struct zl_ip *ip)
{
	if (!zl_prefix_valid(p) || ip->family != p->ip.family)
		return false;
	return ((zl_ip_to_u128(&p->ip) ^ zl_ip_to_u128(ip)) & ~host_mask(p)) == 0;
}

bool zl_prefix_contains_prefix(const struct zl_prefix *outer, const struct zl_prefix *inner)
{
	return zl_prefix_valid(inner) && inner->len >= outer->len && zl_prefix_contains(outer, &inner->ip);
}

bool zl_prefix_overlaps(const struct zl_prefix *a, const struct zl_prefix *b)
{
	return zl_prefix_contains_prefix(a, b) || zl_prefix_contains_prefix(b, a);
}

zl_u128 zl_prefix_offset(const struct zl_prefix *p, const struct zl_ip *ip)
{
	return zl_ip_to_u128(ip) & host_mask(p);
}

void zl_prefix_at(const struct zl_prefix *p, zl_u128 off, struct zl_ip *out)
{
	zl_u128 hm = host_mask(p);

	zl_ip_from_u128(p->ip.family, (zl_ip_to_u128(&p->ip) & ~hm) | (off & hm), out);
}
