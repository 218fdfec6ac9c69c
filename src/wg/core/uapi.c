/* The cross-platform userspace API: a line-oriented text protocol over a byte stream.
 *
 * A session is a small state machine fed with whatever bytes the socket delivered. Complete lines are
 * handled as they arrive; a partial line waits in a fixed buffer (no allocation on the input side).
 * Requests:
 *   get=1 \n \n                 -> key=value lines of the whole configuration, then errno=0
 *   set=1 \n key=value ... \n   -> errno=0 or errno=-N (stops applying at the first error, reads on
 *                                  to the blank line, earlier lines stay applied: not transactional)
 * Everything reaches the device through its public configuration functions only.
 *
 * Peer lifetime across feeds: the device is single-threaded, but one socket server may interleave
 * several connections, so between two feeds another session may remove the peer a set request is
 * configuring. We therefore remember the peer's public key and look the pointer up again at the start
 * of every feed; within one feed nothing else touches the device. */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "wg/core/crypto.h"
#include "wg/core/uapi.h"

enum {
	UAPI_MAX_LINE = 4096,      /* bytes before the '\n'; longer lines close the connection */
	UAPI_KEY_HEX_LEN = 2 * WG_KEY_LEN,
	UAPI_ENDPOINT_MAX = 128,   /* "[" v6 "%" scope "]:" port, with room to spare */
};

enum uapi_state {
	ST_OP,    /* expecting an operation line */
	ST_GET,   /* got "get=1", expecting the blank line */
	ST_SET,   /* inside a set request */
};

/* What the peer lines of a set request currently apply to. */
enum peer_mode {
	PEER_NONE,     /* device section: no public_key line yet */
	PEER_REAL,     /* an existing (or just created) peer */
	PEER_PENDING,  /* not created yet: creation waits so that update_only/remove can cancel it */
	PEER_DUMMY,    /* own key, removed, or update_only on an unknown key: lines are checked, not applied */
};

struct wg_uapi_session {
	struct wg_device *dev;
	enum uapi_state state;
	bool dead;                 /* a fatal error closed the protocol; every later feed fails */
	int set_err;               /* first error of the current set request, 0 while all is well */
	int last_errno;            /* value of the last response (for wg_uapi_request) */
	size_t responses;
	enum peer_mode mode;
	struct wg_peer *peer;      /* valid only within one feed when mode == PEER_REAL */
	uint8_t peer_key[WG_KEY_LEN];
	size_t line_len;
	char line[UAPI_MAX_LINE];
};

/* ---- output ---------------------------------------------------------------------------------------- */

/* The output may hold the private key in hex: grow by copy-and-wipe rather than realloc, so no stale
 * copy is left in freed heap memory. */
static bool buf_reserve(struct wg_uapi_buf *b, size_t extra)
{
	size_t need = b->len + extra, cap = b->cap ? b->cap : 1024;
	char *n;

	if (extra > SIZE_MAX - b->len)
		return false;
	if (need <= b->cap)
		return true;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	n = malloc(cap);
	if (!n)
		return false;
	if (b->data) {
		memcpy(n, b->data, b->len);
		wg_wipe(b->data, b->cap);
		free(b->data);
	}
	b->data = n;
	b->cap = cap;
	return true;
}

void wg_uapi_buf_free(struct wg_uapi_buf *b)
{
	if (b->data) {
		wg_wipe(b->data, b->cap);
		free(b->data);
	}
	b->data = NULL;
	b->len = b->cap = 0;
}

/* A writer with a sticky failure flag, so the serializer checks allocation once at the end. */
struct writer {
	struct wg_uapi_buf *b;
	bool failed;
};

static void put_bytes(struct writer *w, const char *s, size_t n)
{
	if (w->failed || !buf_reserve(w->b, n)) {
		w->failed = true;
		return;
	}
	memcpy(w->b->data + w->b->len, s, n);
	w->b->len += n;
}

__attribute__((format(printf, 2, 3)))
static void put(struct writer *w, const char *fmt, ...)
{
	char tmp[256];  /* every line we format is short; keys go through put_key instead */
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(tmp)) {
		w->failed = true;
		return;
	}
	put_bytes(w, tmp, (size_t)n);
}

/* Writes "name=<hex>\n" straight into the buffer: no stack copy of the hex of a secret. */
static void put_key(struct writer *w, const char *name, const uint8_t key[WG_KEY_LEN])
{
	static const char hex[] = "0123456789abcdef";
	size_t nlen = strlen(name);
	char *p;

	if (w->failed || !buf_reserve(w->b, nlen + 1 + UAPI_KEY_HEX_LEN + 1)) {
		w->failed = true;
		return;
	}
	p = w->b->data + w->b->len;
	memcpy(p, name, nlen);
	p += nlen;
	*p++ = '=';
	for (size_t i = 0; i < WG_KEY_LEN; i++) {
		*p++ = hex[key[i] >> 4];
		*p++ = hex[key[i] & 0xf];
	}
	*p++ = '\n';
	w->b->len = (size_t)(p - w->b->data);
}

/* Appends "errno=N\n\n" and records N. */
static int respond(struct wg_uapi_session *s, struct wg_uapi_buf *out, int err)
{
	struct writer w = { .b = out };

	put(&w, "errno=%d\n\n", err);
	s->last_errno = err;
	s->responses++;
	return w.failed ? -ENOMEM : 0;
}

/* ---- get ------------------------------------------------------------------------------------------- */

static void put_endpoint(struct writer *w, const struct wg_endpoint *ep)
{
	char ip[INET6_ADDRSTRLEN];

	if (ep->addr.sa.sa_family == AF_INET) {
		if (inet_ntop(AF_INET, &ep->addr.in4.sin_addr, ip, sizeof(ip)))
			put(w, "endpoint=%s:%u\n", ip, ntohs(ep->addr.in4.sin_port));
	} else if (ep->addr.sa.sa_family == AF_INET6) {
		if (!inet_ntop(AF_INET6, &ep->addr.in6.sin6_addr, ip, sizeof(ip)))
			return;
		/* A numeric scope: `wg` parses it with getaddrinfo and prints the interface name itself. */
		if (ep->addr.in6.sin6_scope_id)
			put(w, "endpoint=[%s%%%u]:%u\n", ip, ep->addr.in6.sin6_scope_id,
			    ntohs(ep->addr.in6.sin6_port));
		else
			put(w, "endpoint=[%s]:%u\n", ip, ntohs(ep->addr.in6.sin6_port));
	}
}

static void put_allowed_ip(void *ctx, int family, const uint8_t *ip, uint8_t cidr)
{
	char text[INET6_ADDRSTRLEN];

	if (inet_ntop(family, ip, text, sizeof(text)))
		put(ctx, "allowed_ip=%s/%u\n", text, cidr);
}

static void put_peer(struct writer *w, const struct wg_peer *peer)
{
	struct wg_peer_info info;

	wg_peer_get_info(peer, &info);
	put_key(w, "public_key", info.public_key);
	put_key(w, "preshared_key", info.preshared_key);
	wg_wipe(info.preshared_key, sizeof(info.preshared_key));
	put(w, "protocol_version=1\n");
	put_endpoint(w, &info.endpoint);
	put(w, "last_handshake_time_sec=%llu\nlast_handshake_time_nsec=%llu\n",
	    (unsigned long long)(info.last_handshake_wall_ns / WG_NSEC_PER_SEC),
	    (unsigned long long)(info.last_handshake_wall_ns % WG_NSEC_PER_SEC));
	put(w, "tx_bytes=%llu\nrx_bytes=%llu\n", (unsigned long long)info.tx_bytes,
	    (unsigned long long)info.rx_bytes);
	put(w, "persistent_keepalive_interval=%u\n", info.persistent_keepalive_interval);
	wg_peer_for_each_allowed_ip(peer, put_allowed_ip, w);
}

/* Device keys as wireguard-go prints them: private_key only when set, listen_port and fwmark only
 * when nonzero; then every peer in creation order. */
static int serialize(struct wg_uapi_session *s, struct wg_uapi_buf *out)
{
	struct writer w = { .b = out };
	size_t start = out->len;
	uint8_t key[WG_KEY_LEN];
	uint16_t port = wg_device_get_listen_port(s->dev);
	uint32_t mark = wg_device_get_fwmark(s->dev);

	if (wg_device_get_private_key(s->dev, key) && !wg_ct_is_zero(key, sizeof(key)))
		put_key(&w, "private_key", key);
	wg_wipe(key, sizeof(key));
	if (port)
		put(&w, "listen_port=%u\n", port);
	if (mark)
		put(&w, "fwmark=%u\n", mark);
	for (struct wg_peer *p = wg_device_first_peer(s->dev); p && !w.failed; p = wg_device_next_peer(s->dev, p))
		put_peer(&w, p);
	if (w.failed) {
		/* Never send half a configuration: drop what we wrote (wiping it) and close. */
		wg_wipe(out->data + start, out->len - start);
		out->len = start;
		return -ENOMEM;
	}
	return respond(s, out, 0);
}

/* ---- value parsers (strict; every one returns false on any junk) ----------------------------------- */

static bool str_is(const char *s, size_t len, const char *lit)
{
	return strlen(lit) == len && memcmp(s, lit, len) == 0;
}

/* Decimal digits only (no sign, no spaces, no base prefix), value <= max; leading zeros are fine, as
 * with Go's strconv.ParseUint that wireguard-go uses. */
static bool parse_uint(const char *s, size_t len, uint32_t max, uint32_t *out)
{
	uint64_t v = 0;

	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
		if (v > max)
			return false;
	}
	*out = (uint32_t)v;
	return true;
}

/* 1 when a < b, for 0 <= a, b <= 255, without a data-dependent branch. */
static unsigned lt(unsigned a, unsigned b)
{
	return ((a - b) >> 8) & 1;
}

/* Decodes 64 hex digits (either case, as Go's encoding/hex accepts) into a key. Branch-free on the
 * characters, because the input may be a private or preshared key. */
static bool parse_key(const char *s, size_t len, uint8_t key[WG_KEY_LEN])
{
	unsigned bad = 0;

	if (len != UAPI_KEY_HEX_LEN)
		return false;
	for (size_t i = 0; i < UAPI_KEY_HEX_LEN; i++) {
		unsigned c = (uint8_t)s[i], lc = c | 0x20;
		unsigned digit = lt(c, '9' + 1) & (1 ^ lt(c, '0'));
		unsigned alpha = lt(lc, 'f' + 1) & (1 ^ lt(lc, 'a'));
		unsigned v = ((0u - digit) & (c - '0')) | ((0u - alpha) & (lc - 'a' + 10));

		bad |= 1 ^ (digit | alpha);
		if (i & 1)
			key[i / 2] = (uint8_t)(key[i / 2] | (v & 0xf));
		else
			key[i / 2] = (uint8_t)((v & 0xf) << 4);
	}
	if (bad) {
		wg_wipe(key, WG_KEY_LEN);
		return false;
	}
	return true;
}

/* "%scope": a number, or an interface name as `wg` sends it for link-local addresses (getnameinfo). */
static bool parse_scope(const char *s, uint32_t *scope)
{
	size_t len = strlen(s);

	if (len == 0)
		return false;
	if (s[0] >= '0' && s[0] <= '9')
		return parse_uint(s, len, UINT32_MAX, scope);
	if (len >= IF_NAMESIZE)
		return false;
	*scope = if_nametoindex(s);
	return *scope != 0;
}

/* a.b.c.d:port or [v6]:port or [v6%scope]:port; names are resolved by `wg`, never here. */
static bool parse_endpoint(const char *s, size_t len, struct wg_endpoint *ep)
{
	char text[UAPI_ENDPOINT_MAX];
	char *host, *port, *scope;
	uint32_t portnum, scope_id = 0;

	if (len == 0 || len >= sizeof(text) || memchr(s, '\0', len))
		return false;
	memcpy(text, s, len);
	text[len] = '\0';
	memset(ep, 0, sizeof(*ep));
	if (text[0] == '[') {
		host = text + 1;
		port = strchr(host, ']');
		if (!port || port[1] != ':')
			return false;
		*port = '\0';
		port += 2;
		scope = strchr(host, '%');
		if (scope) {
			*scope++ = '\0';
			if (!parse_scope(scope, &scope_id))
				return false;
		}
		if (!parse_uint(port, strlen(port), UINT16_MAX, &portnum) ||
		    inet_pton(AF_INET6, host, &ep->addr.in6.sin6_addr) != 1)
			return false;
		ep->addr.in6.sin6_family = AF_INET6;
		ep->addr.in6.sin6_port = htons((uint16_t)portnum);
		ep->addr.in6.sin6_scope_id = scope_id;
		return true;
	}
	host = text;
	port = strrchr(text, ':');
	if (!port)
		return false;
	*port++ = '\0';
	/* An unbracketed host with a ':' would be an IPv6 address: refused, as wireguard-go does. */
	if (!parse_uint(port, strlen(port), UINT16_MAX, &portnum) ||
	    inet_pton(AF_INET, host, &ep->addr.in4.sin_addr) != 1)
		return false;
	ep->addr.in4.sin_family = AF_INET;
	ep->addr.in4.sin_port = htons((uint16_t)portnum);
	return true;
}

struct prefix {
	int family;
	uint8_t ip[16];
	uint8_t cidr;
	bool remove;
};

/* [-]ip/cidr. The cidr is decimal without sign or leading zeros (as Go's netip.ParsePrefix). */
static bool parse_prefix(const char *s, size_t len, struct prefix *p)
{
	char text[INET6_ADDRSTRLEN + 1];
	const char *slash;
	uint32_t cidr;
	size_t iplen, clen;

	memset(p, 0, sizeof(*p));
	if (len && s[0] == '-') {
		p->remove = true;
		s++;
		len--;
	}
	slash = memchr(s, '/', len);
	if (!slash)
		return false;
	iplen = (size_t)(slash - s);
	clen = len - iplen - 1;
	if (iplen == 0 || iplen >= sizeof(text) || memchr(s, '\0', iplen))
		return false;
	if (clen > 1 && slash[1] == '0')
		return false;
	memcpy(text, s, iplen);
	text[iplen] = '\0';
	p->family = memchr(text, ':', iplen) ? AF_INET6 : AF_INET;
	if (inet_pton(p->family, text, p->ip) != 1)
		return false;
	if (!parse_uint(slash + 1, clen, p->family == AF_INET ? 32 : 128, &cidr))
		return false;
	p->cidr = (uint8_t)cidr;  /* host bits may be set: the device masks them */
	return true;
}

/* ---- set: device section --------------------------------------------------------------------------- */

typedef int (*line_fn)(struct wg_uapi_session *s, const char *v, size_t vlen);

struct line_handler {
	const char *key;
	line_fn fn;
	bool keeps_pending;   /* "=true" may cancel a pending creation: do not create before it */
};

static int dev_private_key(struct wg_uapi_session *s, const char *v, size_t vlen)
{
	uint8_t key[WG_KEY_LEN];

	if (!parse_key(v, vlen, key))
		return -EINVAL;
	wg_device_set_private_key(s->dev, key);  /* all zeros removes the identity */
	wg_wipe(key, sizeof(key));
	return 0;
}

static int dev_listen_port(struct wg_uapi_session *s, const char *v, size_t vlen)
{
	uint32_t port;

	if (!parse_uint(v, vlen, UINT16_MAX, &port))
		return -EINVAL;
	return wg_device_set_listen_port(s->dev, (uint16_t)port);
}

static int dev_fwmark(struct wg_uapi_session *s, const char *v, size_t vlen)
{
	uint32_t mark;

	if (!parse_uint(v, vlen, UINT32_MAX, &mark))
		return -EINVAL;
	/* `wg setconf` always sends fwmark: an unchanged value must not fail where marks are unsupported. */
	if (mark == wg_device_get_fwmark(s->dev))
		return 0;
	return wg_device_set_fwmark(s->dev, mark);
}

static int dev_replace_peers(struct wg_uapi_session *s, const char *v, size_t vlen)
{
	if (!str_is(v, vlen, "true"))
		return -EINVAL;
	wg_device_remove_all_peers(s->dev);
	return 0;
}

static const struct line_handler device_keys[] = {
	{ "private_key", dev_private_key, false },
	{ "listen_port", dev_listen_port, false },
	{ "fwmark", dev_fwmark, false },
	{ "replace_peers", dev_replace_peers, false },
};

/* ---- set: peer section ----------------------------------------------------------------------------- */

/* Creates the pending peer, now that a line needs it (or its section ended). */
static int materialize(struct wg_uapi_session *s)
{
	int err = 0;

	if (s->mode != PEER_PENDING)
		return 0;
	s->peer = wg_device_add_peer(s->dev, s->peer_key, &err);
	if (s->peer) {
		s->mode = PEER_REAL;
		return 0;
	}
	if (err == -EEXIST) {
		/* Created meanwhile by another session. */
		s->peer = wg_device_find_peer(s->dev, s->peer_key);
		s->mode = s->peer ? PEER_REAL : PEER_DUMMY;
		return s->peer ? 0 : -EINVAL;
	}
	s->mode = PEER_DUMMY;
	/* Our own key (the identity changed since the public_key line): ignored, like at that line. */
	return err == -EINVAL ? 0 : err;
}

/* The peer the current line applies to, or NULL when the lines only get validated. */
static struct wg_peer *cur_peer(const struct wg_uapi_session *s)
{
	return s->mode == PEER_REAL ? s->peer : NULL;
}

static int peer_begin(struct wg_uapi_session *s, const char *v, size_t vlen)
{
	uint8_t own[WG_KEY_LEN];
	int err = materialize(s);  /* the previous peer's section ends here */

	if (err)
		return err;
	s->mode = PEER_DUMMY;
	s->peer = NULL;
	if (!parse_key(v, vlen, s->peer_key))
		return -EINVAL;
	if (wg_device_get_public_key(s->dev, own) && wg_ct_equal(own, s->peer_key, WG_KEY_LEN))
		return 0;  /* our own key: silently ignored until the next public_key */
	s->peer = wg_device_find_peer(s->dev, s->peer_key);
	s->mode = s->peer ? PEER_REAL : PEER_PENDING;
	return 0;
}

static int peer_update_only(struct wg_uapi_session *s, const char *v, size_t vlen)
{
	if (!str_is(v, vlen, "true"))
		return -EINVAL;
	if (s->mode == PEER_PENDING)
		s->mode = PEER_DUMMY;  /* unknown key: create nothing */
	return 0;
}

static int peer_remove(struct wg_uapi_session *s, const char *v, size_t vlen)
{
	if (!str_is(v, vlen, "true"))
		return -EINVAL;
	if (s->mode == PEER_REAL)
		wg_device_remove_peer(s->dev, s->peer);
	s->peer = NULL;
	s->mode = PEER_DUMMY;
	return 0;
}

static int peer_preshared_key(struct wg_uapi_session *s, const char *v, size_t vlen)
{
	uint8_t psk[WG_KEY_LEN];

	if (!parse_key(v, vlen, psk))
		return -EINVAL;
	if (cur_peer(s))
		wg_peer_set_preshared_key(s->peer, psk);  /* all zeros = none */
	wg_wipe(psk, sizeof(psk));
	return 0;
}

static int peer_endpoint(struct wg_uapi_session *s, const char *v, size_t vlen)
{
	struct wg_endpoint ep;

	if (!parse_endpoint(v, vlen, &ep))
		return -EINVAL;
	if (cur_peer(s))
		wg_peer_set_endpoint(s->peer, &ep);
	return 0;
}

static int peer_keepalive(struct wg_uapi_session *s, const char *v, size_t vlen)
{
	uint32_t secs;

	if (!parse_uint(v, vlen, UINT16_MAX, &secs))
		return -EINVAL;
	if (cur_peer(s))
		wg_peer_set_persistent_keepalive(s->peer, (uint16_t)secs);
	return 0;
}

static int peer_replace_allowed_ips(struct wg_uapi_session *s, const char *v, size_t vlen)
{
	if (!str_is(v, vlen, "true"))
		return -EINVAL;
	if (cur_peer(s))
		wg_peer_clear_allowed_ips(s->peer);
	return 0;
}

static int peer_allowed_ip(struct wg_uapi_session *s, const char *v, size_t vlen)
{
	struct prefix p;
	int err;

	if (!parse_prefix(v, vlen, &p))
		return -EINVAL;
	if (!cur_peer(s))
		return 0;
	if (!p.remove)
		return wg_peer_add_allowed_ip(s->peer, p.family, p.ip, p.cidr);
	err = wg_peer_remove_allowed_ip(s->peer, p.family, p.ip, p.cidr);
	return err == -ENOENT ? 0 : err;  /* removing what the peer does not hold is a no-op */
}

static int peer_protocol_version(struct wg_uapi_session *s, const char *v, size_t vlen)
{
	(void)s;
	return str_is(v, vlen, "1") ? 0 : -EINVAL;
}

static const struct line_handler peer_keys[] = {
	{ "update_only", peer_update_only, true },
	{ "remove", peer_remove, true },
	{ "preshared_key", peer_preshared_key, false },
	{ "endpoint", peer_endpoint, false },
	{ "persistent_keepalive_interval", peer_keepalive, false },
	{ "replace_allowed_ips", peer_replace_allowed_ips, false },
	{ "allowed_ip", peer_allowed_ip, false },
	{ "protocol_version", peer_protocol_version, false },
};

static const struct line_handler *lookup(const struct line_handler *table, size_t n, const char *k, size_t klen)
{
	for (size_t i = 0; i < n; i++)
		if (str_is(k, klen, table[i].key))
			return &table[i];
	return NULL;
}

/* wireguard-go creates the peer at its public_key line and deletes it again on update_only; the
 * observable result is the same as creating it at the first line that is not a valid
 * update_only=true / remove=true, which is what we do. Even a failing line creates it first. */
static int peer_line(struct wg_uapi_session *s, const char *k, size_t klen, const char *v, size_t vlen)
{
	const struct line_handler *h = lookup(peer_keys, sizeof(peer_keys) / sizeof(peer_keys[0]), k, klen);
	int err;

	if (!h || !h->keeps_pending || !str_is(v, vlen, "true")) {
		err = materialize(s);
		if (err)
			return err;
	}
	return h ? h->fn(s, v, vlen) : -EINVAL;
}

static int set_line(struct wg_uapi_session *s, const char *line, size_t len)
{
	const char *eq = memchr(line, '=', len);
	const struct line_handler *h;
	size_t klen;

	if (!eq)
		return -EPROTO;
	klen = (size_t)(eq - line);
	if (str_is(line, klen, "public_key"))
		return peer_begin(s, eq + 1, len - klen - 1);
	if (s->mode != PEER_NONE)
		return peer_line(s, line, klen, eq + 1, len - klen - 1);
	h = lookup(device_keys, sizeof(device_keys) / sizeof(device_keys[0]), line, klen);
	return h ? h->fn(s, eq + 1, len - klen - 1) : -EINVAL;
}

/* ---- session --------------------------------------------------------------------------------------- */

struct wg_uapi_session *wg_uapi_session_new(struct wg_device *dev)
{
	struct wg_uapi_session *s = calloc(1, sizeof(*s));

	if (s)
		s->dev = dev;
	return s;
}

void wg_uapi_session_free(struct wg_uapi_session *s)
{
	if (!s)
		return;
	wg_wipe(s, sizeof(*s));  /* the line buffer may hold a key */
	free(s);
}

static int end_set(struct wg_uapi_session *s, struct wg_uapi_buf *out)
{
	if (!s->set_err)
		s->set_err = materialize(s);
	s->state = ST_OP;
	s->mode = PEER_NONE;
	s->peer = NULL;
	return respond(s, out, s->set_err);
}

/* Returns 0 to go on, or a negative errno when the connection must be closed. */
static int handle_line(struct wg_uapi_session *s, const char *line, size_t len, struct wg_uapi_buf *out)
{
	switch (s->state) {
	case ST_OP:
		if (str_is(line, len, "get=1")) {
			s->state = ST_GET;
			return 0;
		}
		if (str_is(line, len, "set=1")) {
			s->state = ST_SET;
			s->set_err = 0;
			s->mode = PEER_NONE;
			s->peer = NULL;
			return 0;
		}
		respond(s, out, -EPROTO);
		return -EPROTO;
	case ST_GET:
		s->state = ST_OP;
		return len == 0 ? serialize(s, out) : respond(s, out, -EINVAL);
	case ST_SET:
		if (len == 0)
			return end_set(s, out);
		if (!s->set_err)
			s->set_err = set_line(s, line, len);
		return 0;
	}
	return -EPROTO;
}

/* Refreshes the cached peer pointer: another session may have removed the peer since the last feed. */
static void revalidate(struct wg_uapi_session *s)
{
	if (s->state == ST_SET && s->mode == PEER_REAL) {
		s->peer = wg_device_find_peer(s->dev, s->peer_key);
		if (!s->peer)
			s->mode = PEER_DUMMY;
	}
}

static int fail(struct wg_uapi_session *s, int err)
{
	s->dead = true;
	wg_wipe(s->line, sizeof(s->line));
	s->line_len = 0;
	return err;
}

int wg_uapi_session_feed(struct wg_uapi_session *s, const char *data, size_t len, struct wg_uapi_buf *out)
{
	if (s->dead)
		return -EPROTO;
	revalidate(s);
	while (len) {
		const char *nl = memchr(data, '\n', len);
		size_t take = nl ? (size_t)(nl - data) : len;
		const char *line = data;
		int err;

		if (take > UAPI_MAX_LINE - s->line_len) {
			respond(s, out, -EPROTO);
			return fail(s, -EPROTO);
		}
		if (!nl || s->line_len) {
			memcpy(s->line + s->line_len, data, take);
			s->line_len += take;
			if (!nl)
				return 0;
			line = s->line;
			take = s->line_len;
		}
		err = handle_line(s, line, take, out);
		if (line == s->line)
			wg_wipe(s->line, s->line_len);
		s->line_len = 0;
		if (err)
			return fail(s, err);
		len -= (size_t)(nl - data) + 1;
		data = nl + 1;
	}
	return 0;
}

/* Returns the errno of the last response (0 or negative), or -EPROTO when the request was incomplete
 * or closed the protocol (an errno=-71 response is appended if none was). */
int wg_uapi_request(struct wg_device *dev, const char *request, struct wg_uapi_buf *out)
{
	struct wg_uapi_session *s = wg_uapi_session_new(dev);
	int ret;

	if (!s)
		return -ENOMEM;
	ret = wg_uapi_session_feed(s, request, strlen(request), out);
	if (ret == 0 && (s->state != ST_OP || s->line_len || !s->responses)) {
		respond(s, out, -EPROTO);
		ret = -EPROTO;
	} else if (ret == 0) {
		ret = s->last_errno;
	}
	wg_uapi_session_free(s);
	return ret;
}
