/* Deterministic names (see names.h for the exact rules). */
#include "overlay/names.h"
#include "overlay/cidr.h"
#include "overlay/slices.h"
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

enum { HASH_DIGITS_MAX = 12, HASH_DIGITS_MIN = 8 };

static const char base32_lower[] = "abcdefghijklmnopqrstuvwxyz234567";

static bool fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static bool fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return false;
}

static bool is_alnum(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static bool part_ok(const char *s, bool dash_ok, size_t max)
{
	size_t n = 0;

	for (; s[n]; n++) {
		unsigned char c = (unsigned char)s[n];
		if (!is_alnum(c) && c != '_' && c != '.' && !(dash_ok && c == '-'))
			return false;
		if (n >= max)
			return false;
	}
	return n > 0;
}

/* Appends s to buf (capacity cap, currently len bytes). Once it no longer fits only the length keeps
 * counting, so the caller can tell the name was too long. */
static void append(char *buf, size_t cap, size_t *len, const char *s)
{
	size_t n = strlen(s);

	if (*len + n < cap)
		memcpy(buf + *len, s, n + 1);
	*len += n;
}

int zl_ifname_make(char out[ZL_IFNAME_SIZE], const char *suffix, const char *const parts[], size_t nparts)
{
	/* Parts are bounded only by what is sensible to hash; 4 KiB is far beyond any real use. */
	char full[4096] = "zl";
	size_t len = 2, digits;
	uint64_t h;

	out[0] = '\0';
	if (suffix && !*suffix)
		suffix = NULL;
	if (nparts == 0 || (suffix && !part_ok(suffix, false, ZL_IFNAME_SUFFIX_MAX)))
		return -EINVAL;
	for (size_t i = 0; i < nparts; i++) {
		if (!parts[i] || !part_ok(parts[i], true, sizeof(full)))
			return -EINVAL;
		append(full, sizeof(full), &len, "-");
		append(full, sizeof(full), &len, parts[i]);
	}
	if (suffix) {
		append(full, sizeof(full), &len, "-");
		append(full, sizeof(full), &len, suffix);
	}
	if (len >= sizeof(full))
		return -EINVAL;
	if (len <= ZL_IFNAME_MAX) {
		memcpy(out, full, len + 1);
		return 0;
	}
	h = zl_slices_fnv1a64(full, len);
	digits = suffix ? ZL_IFNAME_MAX - 4 - strlen(suffix) : HASH_DIGITS_MAX;
	memcpy(out, "zl-", 3);
	for (size_t i = 0; i < digits; i++)
		out[3 + i] = base32_lower[(h >> (59 - 5 * i)) & 31];
	out[3 + digits] = '\0';
	if (suffix) {
		out[3 + digits] = '-';
		memcpy(out + 4 + digits, suffix, strlen(suffix) + 1);
	}
	return 0;
}

/* The kernel's isspace() (lib/ctype.c): the C locale's white space plus 0xa0 (Latin-1 NBSP). */
static bool kernel_isspace(unsigned char c)
{
	return c == ' ' || (c >= '\t' && c <= '\r') || c == 0xa0;
}

bool zl_ifname_valid(const char *name, char *err, size_t errlen)
{
	size_t n = strnlen(name, ZL_IFNAME_SIZE);

	if (n == 0)
		return fail(err, errlen, "interface name is empty");
	if (n > ZL_IFNAME_MAX)
		return fail(err, errlen, "interface name is longer than %d bytes", ZL_IFNAME_MAX);
	if (!strcmp(name, ".") || !strcmp(name, ".."))
		return fail(err, errlen, "interface name cannot be \".\" or \"..\"");
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];
		if (c == '/' || c == ':' || c == '%')
			return fail(err, errlen, "interface name contains '%c'", c);
		if (kernel_isspace(c))
			return fail(err, errlen, "interface name contains white space");
	}
	return true;
}

void zl_node_name_v4(const uint8_t addr[4], char out[ZL_NODE_NAME_SIZE])
{
	snprintf(out, ZL_NODE_NAME_SIZE, "node-%u-%u", addr[2], addr[3]);
}

void zl_node_name_v6(const uint8_t addr[16], char out[ZL_NODE_NAME_SIZE])
{
	unsigned hi = (unsigned)addr[12] << 8 | addr[13], lo = (unsigned)addr[14] << 8 | addr[15];

	snprintf(out, ZL_NODE_NAME_SIZE, "node6-%x-%x", hi, lo);
}

/* Lower-case hex without leading zeros ("0" for zero). */
static void u128_hex(zl_u128 v, char out[33])
{
	char tmp[33];
	int k = 0;

	do {
		tmp[k++] = "0123456789abcdef"[(unsigned)(v & 15)];
		v >>= 4;
	} while (v);
	for (int i = 0; i < k; i++)
		out[i] = tmp[k - 1 - i];
	out[k] = '\0';
}

int zl_node_name6_slice(const struct zl_prefix *cluster, unsigned slice_len, const struct zl_ip *ip,
			char *out, size_t outlen)
{
	char idx[33], host[33];
	unsigned host_bits = 128 - slice_len;
	zl_u128 off;
	int n;

	if (outlen)
		out[0] = '\0';
	if (ip->family != AF_INET6 || cluster->ip.family != AF_INET6 || slice_len < cluster->len ||
	    slice_len > 128 || !zl_prefix_contains(cluster, ip))
		return -EINVAL;
	off = zl_prefix_offset(cluster, ip);
	u128_hex(host_bits >= 128 ? 0 : off >> host_bits, idx);
	u128_hex(off & zl_u128_low_mask(host_bits), host);
	n = snprintf(out, outlen, "node6-%s-%s", idx, host);
	if (n < 0 || (size_t)n >= outlen) {
		if (outlen)
			out[0] = '\0';
		return -EINVAL;
	}
	return 0;
}

int zl_node_name(const char *addr, char out[ZL_NODE_NAME_SIZE])
{
	uint8_t a[16];

	if (inet_pton(AF_INET, addr, a) == 1) {
		zl_node_name_v4(a, out);
		return 0;
	}
	if (inet_pton(AF_INET6, addr, a) == 1) {
		zl_node_name_v6(a, out);
		return 0;
	}
	out[0] = '\0';
	return -EINVAL;
}

/* Why in is not an RFC 1123 label, or NULL when it is one. */
static const char *label_problem(const char *in, size_t n)
{
	if (n == 0)
		return "hostname is empty";
	if (n >= ZL_HOSTNAME_SIZE)
		return "hostname is longer than 63 bytes";
	if (in[0] == '-' || in[n - 1] == '-')
		return "hostname cannot start or end with '-'";
	for (size_t i = 0; i < n; i++)
		if (!is_alnum((unsigned char)in[i]) && in[i] != '-')
			return "hostname may contain only letters, digits and '-'";
	return NULL;
}

bool zl_hostname_normalize(const char *in, char out[ZL_HOSTNAME_SIZE], char *err, size_t errlen)
{
	size_t n = strnlen(in, ZL_HOSTNAME_SIZE);
	const char *problem = label_problem(in, n);

	if (problem) {
		out[0] = '\0';
		return fail(err, errlen, "%s", problem);
	}
	for (size_t i = 0; i <= n; i++) /* in place is fine: byte i is read before it is written */
		out[i] = (char)(in[i] >= 'A' && in[i] <= 'Z' ? in[i] - 'A' + 'a' : in[i]);
	return true;
}
