/* Deterministic names: network interface / link names, DNS node names derived from overlay addresses,
 * and hostname labels. Pure functions, no I/O.
 *
 * Interface names (zl_ifname_make)
 * --------------------------------
 * The kernel limits interface names to IFNAMSIZ - 1 = 15 bytes. A name is built from the parts and an
 * optional short suffix as
 *
 *     full = "zl-" + parts[0] + "-" + parts[1] + ... + parts[n-1]  [+ "-" + suffix]
 *
 * If full is at most 15 bytes it is the name, unchanged. Otherwise the name is
 *
 *     "zl-" + D                       (no suffix:  D has 12 digits)
 *     "zl-" + D + "-" + suffix        (suffix:     D has 11 - strlen(suffix) digits, 8 to 10)
 *
 * so it is exactly 15 bytes long. D is FNV-1a-64 of the bytes of full (without its NUL), offset basis
 * 0xcbf29ce484222325, prime 0x100000001b3, written most significant bits first in base 32 with the
 * RFC 4648 alphabet in lower case ("abcdefghijklmnopqrstuvwxyz234567"): digit i is
 * (h >> (59 - 5 i)) & 31. D therefore carries 40 to 60 bits of the hash; keeping the suffix readable
 * lets a veth pair's two ends ("h"/"c") be told apart at a glance.
 *
 * Parts are non-empty, of [A-Za-z0-9_.-]; the suffix has at most 3 bytes of [A-Za-z0-9_.]. Because
 * parts may contain '-', ("a-b", "c") and ("a", "b-c") give the same name: callers choose parts whose
 * joined form is unambiguous (e.g. a fixed number of parts per kind of link).
 * Examples: ("br", "web") -> "zl-br-web"; ("1234") suffix "h" -> "zl-1234-h".
 */
#ifndef ZL_NAMES_H
#define ZL_NAMES_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
	ZL_IFNAME_SIZE = 16,       /* IFNAMSIZ: 15 bytes + NUL */
	ZL_IFNAME_MAX = 15,
	ZL_IFNAME_SUFFIX_MAX = 3,
	ZL_HOSTNAME_SIZE = 64,     /* one DNS label (63 bytes) + NUL */
	ZL_NODE_NAME_SIZE = 16,    /* "node6-ffff-ffff" + NUL */
};

/* The hash of shortened names is FNV-1a-64 (zl_slices_fnv1a64: offset basis 0xcbf29ce484222325, prime
 * 0x100000001b3), the same function that places node slices. */

/* Builds the name described above into out. Returns 0, or -EINVAL when nparts is 0 or a part or the
 * suffix (NULL or "" = none) breaks the rules above; out is "" on error. */
int zl_ifname_make(char out[ZL_IFNAME_SIZE], const char *suffix, const char *const parts[], size_t nparts);
/* ZL_IFNAME_MAKE(out, "h", "svc", "web") == zl_ifname_make(out, "h", {"svc", "web"}, 2). */
#define ZL_IFNAME_MAKE(out, suffix, ...)                                                              \
	zl_ifname_make((out), (suffix), (const char *const[]){ __VA_ARGS__ },                        \
		       sizeof((const char *const[]){ __VA_ARGS__ }) / sizeof(const char *))

/* The kernel's dev_valid_name() rules: 1..15 bytes, not "." or "..", no '/', ':' or white space
 * (the kernel's isspace: \t \n \v \f \r, space and 0xa0). We also refuse '%', which the kernel would
 * treat as a "%d" template when creating a link, so a name never silently changes. On false, err (if
 * not NULL) says why. */
bool zl_ifname_valid(const char *name, char *err, size_t errlen);

/* DNS node names from an overlay address, always a valid DNS label:
 *   IPv4: "node-<third octet>-<fourth octet>" in decimal: 10.200.0.5 -> "node-0-5".
 *   IPv6: "node6-<hextet 7>-<hextet 8>": the low 32 bits as the last two groups of the address are
 *         written (lower-case hex, no leading zeros): fd00:200::5 -> "node6-0-5",
 *         fd00:200::1:a0b -> "node6-1-a0b".
 * Like the IPv4 form (16 bits of a /16), the IPv6 form is unique only among addresses that differ in
 * their low 32 bits, which holds for addresses handed out in order from the overlay range. */
void zl_node_name_v4(const uint8_t addr[4], char out[ZL_NODE_NAME_SIZE]);
void zl_node_name_v6(const uint8_t addr[16], char out[ZL_NODE_NAME_SIZE]);
/* The same from an address in text form; -EINVAL (and out = "") if it is neither IPv4 nor IPv6. */
int zl_node_name(const char *addr, char out[ZL_NODE_NAME_SIZE]);

/* The IPv6 name of an overlay node, which is "::1" of its own slice (so the low 32 bits say nothing):
 *   "node6-<slice index>-<host offset>", both in lower-case hex without leading zeros, where slice index
 *   = (slice network - cluster network) >> (128 - slice_len) and host offset = ip - slice network:
 *   fd00:200:0:5ca::1 in fd00:200::/48 with /64 slices -> "node6-5ca-1". Unique in the cluster because
 *   slices never overlap. Also the node id of an IPv6 worker. -EINVAL (out = "") when ip is not inside
 *   cluster, slice_len is not between the cluster's length and 128, or out is too small (at most
 *   ZL_NODE6_NAME_SIZE is ever needed). */
enum { ZL_NODE6_NAME_SIZE = 72 };    /* "node6-" + 32 + "-" + 32 hex digits + NUL */
struct zl_prefix;
struct zl_ip;
int zl_node_name6_slice(const struct zl_prefix *cluster, unsigned slice_len, const struct zl_ip *ip,
			char *out, size_t outlen);

/* A hostname is one RFC 1123 label: 1..63 bytes of [A-Za-z0-9-], not starting or ending with '-'.
 * Copies it in lower case into out (which may be in), or returns false with the reason in err
 * (if not NULL) and out = "". */
bool zl_hostname_normalize(const char *in, char out[ZL_HOSTNAME_SIZE], char *err, size_t errlen);
#endif
