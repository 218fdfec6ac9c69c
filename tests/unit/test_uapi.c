/* UAPI tests against the real device. The I/O callbacks are fakes that record bind_port/set_fwmark
 * calls (and can be told to fail the bind with -EADDRINUSE); the clocks are test variables. */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <time.h>
#include "test.h"
#include "wg/core/crypto.h"
#include "wg/core/device.h"
#include "wg/core/uapi.h"

/* ---- fake I/O -------------------------------------------------------------------------------------- */

struct fake_io {
	int bind_calls, fwmark_calls, sends;
	uint16_t last_bind_port;
	uint32_t last_mark;
	bool fail_bind;
	uint64_t mono_ns, wall_ns;
};

static struct fake_io io;

static int fake_send(void *ctx, const struct wg_endpoint *to, const uint8_t *data, size_t len, uint8_t dscp)
{
	(void)to; (void)data; (void)len; (void)dscp;
	((struct fake_io *)ctx)->sends++;
	return 0;
}

static void fake_tun(void *ctx, const uint8_t *packet, size_t len)
{
	(void)ctx; (void)packet; (void)len;
}

static int fake_bind(void *ctx, uint16_t port, uint16_t *bound)
{
	struct fake_io *f = ctx;

	f->bind_calls++;
	f->last_bind_port = port;
	if (f->fail_bind)
		return -EADDRINUSE;
	*bound = port ? port : 43210;  /* "random" port */
	return 0;
}

static int fake_fwmark(void *ctx, uint32_t mark)
{
	struct fake_io *f = ctx;

	f->fwmark_calls++;
	f->last_mark = mark;
	return 0;
}

static uint64_t fake_mono(void *ctx) { return ((struct fake_io *)ctx)->mono_ns; }
static uint64_t fake_wall(void *ctx) { return ((struct fake_io *)ctx)->wall_ns; }

static struct wg_device *new_device_with(bool fwmark_supported)
{
	struct wg_io_ops ops = {
		.ctx = &io, .send_udp = fake_send, .write_tun = fake_tun, .bind_port = fake_bind,
		.set_fwmark = fwmark_supported ? fake_fwmark : NULL, .mono_ns = fake_mono, .wall_ns = fake_wall,
	};
	struct wg_device *dev;

	memset(&io, 0, sizeof(io));
	io.mono_ns = 1000 * WG_NSEC_PER_SEC;
	io.wall_ns = 1700000000ULL * WG_NSEC_PER_SEC;
	dev = wg_device_new(&ops);
	if (!dev) {
		fprintf(stderr, "wg_device_new failed\n");
		abort();
	}
	return dev;
}

static struct wg_device *new_device(void)
{
	return new_device_with(true);
}

/* ---- helpers --------------------------------------------------------------------------------------- */

static char *last_text;  /* NUL-terminated copy of the last response */
static int last_ret;

static const char *text_of(const struct wg_uapi_buf *b)
{
	free(last_text);
	last_text = malloc(b->len + 1);
	if (!last_text)
		abort();
	memcpy(last_text, b->data ? b->data : "", b->len);
	last_text[b->len] = '\0';
	return last_text;
}

/* One request through wg_uapi_request; returns the response text, sets last_ret. */
static const char *ask(struct wg_device *dev, const char *request)
{
	struct wg_uapi_buf out = { 0 };
	const char *t;

	last_ret = wg_uapi_request(dev, request, &out);
	t = text_of(&out);
	wg_uapi_buf_free(&out);
	return t;
}

static const char *get(struct wg_device *dev)
{
	return ask(dev, "get=1\n\n");
}

static char *dup_str(const char *s)
{
	char *d = strdup(s);

	if (!d)
		abort();
	return d;
}

static void to_hex(const uint8_t key[WG_KEY_LEN], char hex[2 * WG_KEY_LEN + 1])
{
	for (size_t i = 0; i < WG_KEY_LEN; i++)
		sprintf(hex + 2 * i, "%02x", key[i]);
}

/* A deterministic key pair: private key bytes all `seed` (then clamped by the device when used). */
struct keyhex {
	uint8_t priv[WG_KEY_LEN], pub[WG_KEY_LEN];
	char priv_hex[65], pub_hex[65];
};

static struct keyhex make_key(uint8_t seed)
{
	struct keyhex k;

	memset(k.priv, seed, sizeof(k.priv));
	wg_clamp_private_key(k.priv);
	wg_x25519_public(k.pub, k.priv);
	to_hex(k.priv, k.priv_hex);
	to_hex(k.pub, k.pub_hex);
	return k;
}

static size_t count_substr(const char *hay, const char *needle)
{
	size_t n = 0, nl = strlen(needle);

	for (const char *p = strstr(hay, needle); p; p = strstr(p + nl, needle))
		n++;
	return n;
}

/* Builds a request with printf-style formatting into a static buffer. */
static char reqbuf[8192];
__attribute__((format(printf, 1, 2)))
static const char *fmt(const char *f, ...)
{
	va_list ap;

	va_start(ap, f);
	vsnprintf(reqbuf, sizeof(reqbuf), f, ap);
	va_end(ap);
	return reqbuf;
}

/* ---- tests ----------------------------------------------------------------------------------------- */

static void test_get_empty(void)
{
	struct wg_device *dev = new_device();

	CHECK(strcmp(get(dev), "errno=0\n\n") == 0);
	CHECK(last_ret == 0);
	wg_device_free(dev);
}

static void test_private_key(void)
{
	struct wg_device *dev = new_device();
	char raw_hex[65], clamped_hex[65], upper[65], expect[200];
	uint8_t raw[WG_KEY_LEN], clamped[WG_KEY_LEN];

	for (size_t i = 0; i < WG_KEY_LEN; i++)
		raw[i] = (uint8_t)(0xa1 + i);  /* low 3 bits of byte 0 and top bit of byte 31 set: clamping shows */
	memcpy(clamped, raw, sizeof(raw));
	wg_clamp_private_key(clamped);
	CHECK(memcmp(raw, clamped, sizeof(raw)) != 0);
	to_hex(raw, raw_hex);
	to_hex(clamped, clamped_hex);

	CHECK(strcmp(ask(dev, fmt("set=1\nprivate_key=%s\n\n", raw_hex)), "errno=0\n\n") == 0);
	CHECK(last_ret == 0);
	snprintf(expect, sizeof(expect), "private_key=%s\nerrno=0\n\n", clamped_hex);
	CHECK(strcmp(get(dev), expect) == 0);

	/* Zeros remove the identity. */
	ask(dev, "set=1\nprivate_key=0000000000000000000000000000000000000000000000000000000000000000\n\n");
	CHECK(last_ret == 0);
	CHECK(strcmp(get(dev), "errno=0\n\n") == 0);

	/* Uppercase hex is accepted, as wireguard-go's decoder does. */
	for (size_t i = 0; i < 64; i++)
		upper[i] = (char)(raw_hex[i] >= 'a' ? raw_hex[i] - 32 : raw_hex[i]);
	upper[64] = '\0';
	ask(dev, fmt("set=1\nprivate_key=%s\n\n", upper));
	CHECK(last_ret == 0);
	CHECK(strcmp(get(dev), expect) == 0);
	wg_device_free(dev);
}

/* The branch-free hex decoder against every byte value: exactly 0-9, a-f, A-F are digits. */
static void test_hex_alphabet(void)
{
	struct wg_device *dev = new_device();
	struct keyhex a = make_key(2);
	char req[200];

	for (unsigned c = 0; c < 256; c++) {
		bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
		struct wg_uapi_buf out = { 0 };
		struct wg_uapi_session *s;
		uint8_t key[WG_KEY_LEN];
		size_t len;

		if (c == '\n')
			continue;
		s = wg_uapi_session_new(dev);
		/* The last hex digit takes every byte value; it is the low nibble of byte 31, which
		 * clamping leaves alone. */
		len = (size_t)snprintf(req, sizeof(req), "set=1\nprivate_key=%.63sX\n\n", a.pub_hex);
		req[strlen("set=1\nprivate_key=") + 63] = (char)c;  /* explicit length: NUL included */
		CHECK(wg_uapi_session_feed(s, req, len, &out) == 0);
		CHECK(strcmp(text_of(&out), hex ? "errno=0\n\n" : "errno=-22\n\n") == 0);
		wg_uapi_buf_free(&out);
		wg_uapi_session_free(s);
		if (hex) {
			unsigned v = c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;

			CHECK(wg_device_get_private_key(dev, key));
			CHECK((key[31] & 0x0f) == v);
		}
	}
	wg_device_free(dev);
}

static void test_listen_port_and_fwmark(void)
{
	struct wg_device *dev = new_device();

	ask(dev, "set=1\nlisten_port=51820\n\n");
	CHECK(last_ret == 0);
	CHECK(io.bind_calls == 1 && io.last_bind_port == 51820);
	ask(dev, "set=1\nfwmark=4660\n\n");
	CHECK(last_ret == 0);
	CHECK(io.fwmark_calls == 1 && io.last_mark == 4660);
	CHECK(strcmp(get(dev), "listen_port=51820\nfwmark=4660\nerrno=0\n\n") == 0);

	io.fail_bind = true;
	CHECK(strcmp(ask(dev, "set=1\nlisten_port=1234\n\n"), "errno=-98\n\n") == 0);
	CHECK(last_ret == -EADDRINUSE);
	CHECK(io.bind_calls == 2 && io.last_bind_port == 1234);
	CHECK(wg_device_get_listen_port(dev) == 51820);
	io.fail_bind = false;

	/* 0 = pick a port; fwmark 0 = off (omitted from get). */
	ask(dev, "set=1\nlisten_port=0\nfwmark=0\n\n");
	CHECK(last_ret == 0);
	CHECK(io.last_bind_port == 0 && io.fwmark_calls == 2 && io.last_mark == 0);
	CHECK(strcmp(get(dev), "listen_port=43210\nerrno=0\n\n") == 0);

	/* Leading zeros are decimal, as strconv.ParseUint reads them. */
	ask(dev, "set=1\nlisten_port=00080\n\n");
	CHECK(last_ret == 0 && io.last_bind_port == 80);
	wg_device_free(dev);
}

static void test_fwmark_unsupported(void)
{
	struct wg_device *dev = new_device_with(false);

	/* wg setconf always sends fwmark=0: accepted without support when nothing changes. */
	ask(dev, "set=1\nfwmark=0\n\n");
	CHECK(last_ret == 0);
	ask(dev, "set=1\nfwmark=5\n\n");
	CHECK(last_ret == -EOPNOTSUPP);
	CHECK(wg_device_get_fwmark(dev) == 0);
	wg_device_free(dev);
}

static void test_peers_exact_output(void)
{
	struct wg_device *dev = new_device();
	struct keyhex me = make_key(1), a = make_key(2), b = make_key(3), c = make_key(4);
	char psk_hex[65], expect[4096];
	uint8_t psk[WG_KEY_LEN];

	for (size_t i = 0; i < sizeof(psk); i++)
		psk[i] = (uint8_t)(i * 7 + 3);
	to_hex(psk, psk_hex);
	/* Peers first, identity afterwards: with no identity the keepalive setting sends nothing, so the
	 * byte counters stay zero and the output is exact. */
	ask(dev, fmt("set=1\n"
		     "public_key=%s\npreshared_key=%s\nendpoint=192.0.2.1:51820\npersistent_keepalive_interval=25\n"
		     "allowed_ip=10.0.0.77/24\nallowed_ip=10.1.0.1/32\n"
		     "public_key=%s\nendpoint=[fe80::1%%3]:51821\nallowed_ip=fd00:0:0:0::/64\n"
		     "allowed_ip=2001:0db8:0000:0000:0000:0000:0000:0001/128\nprotocol_version=1\n"
		     "public_key=%s\nendpoint=[2001:db8::2]:1\nallowed_ip=0.0.0.0/0\nallowed_ip=::/0\n\n",
		     a.pub_hex, psk_hex, b.pub_hex, c.pub_hex));
	CHECK(last_ret == 0);
	ask(dev, fmt("set=1\nprivate_key=%s\nlisten_port=51000\n\n", me.priv_hex));
	CHECK(last_ret == 0);
	CHECK(io.sends == 0);
	snprintf(expect, sizeof(expect),
		 "private_key=%s\nlisten_port=51000\n"
		 "public_key=%s\npreshared_key=%s\nprotocol_version=1\nendpoint=192.0.2.1:51820\n"
		 "last_handshake_time_sec=0\nlast_handshake_time_nsec=0\ntx_bytes=0\nrx_bytes=0\n"
		 "persistent_keepalive_interval=25\nallowed_ip=10.0.0.0/24\nallowed_ip=10.1.0.1/32\n"
		 "public_key=%s\npreshared_key=%064d\nprotocol_version=1\nendpoint=[fe80::1%%3]:51821\n"
		 "last_handshake_time_sec=0\nlast_handshake_time_nsec=0\ntx_bytes=0\nrx_bytes=0\n"
		 "persistent_keepalive_interval=0\nallowed_ip=fd00::/64\nallowed_ip=2001:db8::1/128\n"
		 "public_key=%s\npreshared_key=%064d\nprotocol_version=1\nendpoint=[2001:db8::2]:1\n"
		 "last_handshake_time_sec=0\nlast_handshake_time_nsec=0\ntx_bytes=0\nrx_bytes=0\n"
		 "persistent_keepalive_interval=0\nallowed_ip=0.0.0.0/0\nallowed_ip=::/0\n"
		 "errno=0\n\n",
		 me.priv_hex, a.pub_hex, psk_hex, b.pub_hex, 0, c.pub_hex, 0);
	CHECK(strcmp(get(dev), expect) == 0);
	if (strcmp(last_text, expect))
		fprintf(stderr, "got:\n%s\nexpected:\n%s\n", last_text, expect);

	/* A zero psk clears it; an endpoint update replaces the old one. */
	ask(dev, fmt("set=1\npublic_key=%s\npreshared_key=%064d\nendpoint=198.51.100.9:7\n\n", a.pub_hex, 0));
	CHECK(last_ret == 0);
	CHECK(strstr(get(dev), fmt("public_key=%s\npreshared_key=%064d\nprotocol_version=1\n"
				   "endpoint=198.51.100.9:7\n", a.pub_hex, 0)) != NULL);
	wg_device_free(dev);
}

static void test_replace_allowed_ips(void)
{
	struct wg_device *dev = new_device();
	struct keyhex a = make_key(2);

	ask(dev, fmt("set=1\npublic_key=%s\nallowed_ip=10.0.0.0/8\nallowed_ip=fd00::/8\n\n", a.pub_hex));
	CHECK(count_substr(get(dev), "allowed_ip=") == 2);
	ask(dev, fmt("set=1\npublic_key=%s\nreplace_allowed_ips=true\nallowed_ip=192.168.0.0/16\n\n", a.pub_hex));
	CHECK(last_ret == 0);
	CHECK(count_substr(get(dev), "allowed_ip=") == 1);
	CHECK(strstr(last_text, "allowed_ip=192.168.0.0/16\n") != NULL);
	ask(dev, fmt("set=1\npublic_key=%s\nreplace_allowed_ips=true\n\n", a.pub_hex));
	CHECK(count_substr(get(dev), "allowed_ip=") == 0);
	wg_device_free(dev);
}

static void test_allowed_ip_steal_and_remove(void)
{
	struct wg_device *dev = new_device();
	struct keyhex a = make_key(2), b = make_key(3);
	const char *t;

	ask(dev, fmt("set=1\npublic_key=%s\nallowed_ip=10.0.0.0/24\nallowed_ip=10.0.1.0/24\n"
		     "public_key=%s\nallowed_ip=10.0.0.0/24\n\n", a.pub_hex, b.pub_hex));
	CHECK(last_ret == 0);
	t = get(dev);
	/* a lost 10.0.0.0/24 to b; a keeps 10.0.1.0/24. */
	CHECK(strstr(t, "persistent_keepalive_interval=0\nallowed_ip=10.0.1.0/24\npublic_key=") != NULL);
	CHECK(strstr(t, fmt("public_key=%s", b.pub_hex)) != NULL);
	CHECK(strstr(t, "allowed_ip=10.0.0.0/24\nerrno=0\n\n") != NULL);
	CHECK(count_substr(t, "allowed_ip=") == 2);

	/* '-' removes one prefix, host bits ignored like on insert. */
	ask(dev, fmt("set=1\npublic_key=%s\nallowed_ip=-10.0.1.9/24\n\n", a.pub_hex));
	CHECK(last_ret == 0);
	CHECK(count_substr(get(dev), "allowed_ip=") == 1);
	CHECK(strstr(last_text, "allowed_ip=10.0.1.0/24") == NULL);

	/* Removing a prefix held by another peer is a no-op for both. */
	ask(dev, fmt("set=1\npublic_key=%s\nallowed_ip=-10.0.0.0/24\n\n", a.pub_hex));
	CHECK(last_ret == 0);
	CHECK(strstr(get(dev), "allowed_ip=10.0.0.0/24\nerrno=0") != NULL);
	ask(dev, fmt("set=1\npublic_key=%s\nallowed_ip=-10.0.0.0/24\n\n", b.pub_hex));
	CHECK(last_ret == 0);
	CHECK(count_substr(get(dev), "allowed_ip=") == 0);
	wg_device_free(dev);
}

static void test_remove_and_update_only(void)
{
	struct wg_device *dev = new_device();
	struct keyhex a = make_key(2), b = make_key(3), c = make_key(4);

	ask(dev, fmt("set=1\npublic_key=%s\npublic_key=%s\n\n", a.pub_hex, b.pub_hex));
	CHECK(last_ret == 0 && wg_device_peer_count(dev) == 2);

	ask(dev, fmt("set=1\npublic_key=%s\nremove=true\nallowed_ip=10.0.0.0/8\n\n", a.pub_hex));
	CHECK(last_ret == 0 && wg_device_peer_count(dev) == 1);
	CHECK(strstr(get(dev), a.pub_hex) == NULL && strstr(last_text, b.pub_hex) != NULL);
	CHECK(strstr(last_text, "allowed_ip=") == NULL);  /* lines after remove apply to nothing */

	/* remove of an unknown key creates nothing. */
	ask(dev, fmt("set=1\npublic_key=%s\nremove=true\n\n", c.pub_hex));
	CHECK(last_ret == 0 && wg_device_peer_count(dev) == 1);

	/* update_only on an unknown key: nothing created, the section's lines are still validated. */
	ask(dev, fmt("set=1\npublic_key=%s\nupdate_only=true\nendpoint=1.2.3.4:5\nallowed_ip=10.0.0.0/8\n\n",
		     c.pub_hex));
	CHECK(last_ret == 0 && wg_device_peer_count(dev) == 1);
	CHECK(wg_device_first_peer(dev) && !strstr(get(dev), "allowed_ip="));
	ask(dev, fmt("set=1\npublic_key=%s\nupdate_only=true\nendpoint=1.2.3.4:x\n\n", c.pub_hex));
	CHECK(last_ret == -EINVAL && wg_device_peer_count(dev) == 1);

	/* update_only on a known key updates it. */
	ask(dev, fmt("set=1\npublic_key=%s\nupdate_only=true\nallowed_ip=10.0.0.0/8\n\n", b.pub_hex));
	CHECK(last_ret == 0 && wg_device_peer_count(dev) == 1);
	CHECK(strstr(get(dev), "allowed_ip=10.0.0.0/8\n") != NULL);

	/* A bad update_only value fails (and, as in wireguard-go, the peer exists by then). */
	ask(dev, fmt("set=1\npublic_key=%s\nupdate_only=yes\n\n", c.pub_hex));
	CHECK(last_ret == -EINVAL && wg_device_peer_count(dev) == 2);
	wg_device_free(dev);
}

static void test_replace_peers(void)
{
	struct wg_device *dev = new_device();
	struct keyhex a = make_key(2), b = make_key(3), c = make_key(4);

	ask(dev, fmt("set=1\npublic_key=%s\nallowed_ip=10.0.0.0/8\npublic_key=%s\n\n", a.pub_hex, b.pub_hex));
	CHECK(wg_device_peer_count(dev) == 2);
	ask(dev, fmt("set=1\nreplace_peers=true\npublic_key=%s\nallowed_ip=10.0.0.0/8\n\n", c.pub_hex));
	CHECK(last_ret == 0 && wg_device_peer_count(dev) == 1);
	CHECK(strstr(get(dev), c.pub_hex) && !strstr(last_text, a.pub_hex) && !strstr(last_text, b.pub_hex));
	CHECK(count_substr(last_text, "allowed_ip=10.0.0.0/8") == 1);
	wg_device_free(dev);
}

static void test_own_public_key_ignored(void)
{
	struct wg_device *dev = new_device();
	struct keyhex me = make_key(1), a = make_key(2);

	ask(dev, fmt("set=1\nprivate_key=%s\npublic_key=%s\nallowed_ip=10.0.0.0/8\nendpoint=1.2.3.4:5\n"
		     "public_key=%s\nallowed_ip=10.9.0.0/16\n\n", me.priv_hex, me.pub_hex, a.pub_hex));
	CHECK(last_ret == 0);
	CHECK(wg_device_peer_count(dev) == 1);
	CHECK(strstr(get(dev), fmt("public_key=%s", a.pub_hex)) != NULL);
	CHECK(strstr(last_text, "allowed_ip=10.0.0.0/8") == NULL);
	CHECK(strstr(last_text, "allowed_ip=10.9.0.0/16") != NULL);
	wg_device_free(dev);
}

/* Table of bad requests: each must fail with its errno, leave unrelated state intact, and leave the
 * session ready for the next request. */
static void test_malformed(void)
{
	struct wg_device *dev = new_device();
	struct keyhex me = make_key(1), a = make_key(2), c = make_key(4);
	struct wg_uapi_session *s;
	struct wg_uapi_buf out = { 0 };
	char *baseline, *bad_hex = dup_str(a.pub_hex), *long_hex = NULL;
	struct {
		const char *req;
		int err;
	} cases[64];
	size_t n = 0;
	char tmp[64][512];

	bad_hex[10] = 'g';
	if (asprintf(&long_hex, "%sab", a.pub_hex) < 0)
		abort();
#define CASE(e, ...) do { snprintf(tmp[n], sizeof(tmp[n]), __VA_ARGS__); cases[n].req = tmp[n]; cases[n].err = (e); n++; } while (0)
	CASE(-EINVAL, "set=1\nprivate_key=%s\n\n", bad_hex);
	CASE(-EINVAL, "set=1\nprivate_key=%s\n\n", long_hex);
	CASE(-EINVAL, "set=1\nprivate_key=%.62s\n\n", a.pub_hex);
	CASE(-EINVAL, "set=1\nprivate_key=\n\n");
	CASE(-EINVAL, "set=1\npublic_key=%s\n\n", bad_hex);
	CASE(-EINVAL, "set=1\npublic_key=%s\npreshared_key=%s\n\n", a.pub_hex, long_hex);
	CASE(-EINVAL, "set=1\nlisten_port=abc\n\n");
	CASE(-EINVAL, "set=1\nlisten_port=70000\n\n");
	CASE(-EINVAL, "set=1\nlisten_port=65536\n\n");
	CASE(-EINVAL, "set=1\nlisten_port=\n\n");
	CASE(-EINVAL, "set=1\nlisten_port=-1\n\n");
	CASE(-EINVAL, "set=1\nlisten_port=+1\n\n");
	CASE(-EINVAL, "set=1\nlisten_port= 1\n\n");
	CASE(-EINVAL, "set=1\nlisten_port=1 \n\n");
	CASE(-EINVAL, "set=1\nlisten_port=0x10\n\n");
	CASE(-EINVAL, "set=1\nfwmark=4294967296\n\n");
	CASE(-EPROTO, "set=1\nlisten_port\n\n");
	CASE(-EPROTO, "set=1\npublic_key=%s\nremove\n\n", a.pub_hex);
	CASE(-EINVAL, "set=1\nfoo=bar\n\n");
	CASE(-EINVAL, "set=1\n=\n\n");
	CASE(-EINVAL, "set=1\nLISTEN_PORT=1\n\n");
	CASE(-EINVAL, "set=1\nendpoint=1.2.3.4:5\n\n");           /* peer key in the device section */
	CASE(-EINVAL, "set=1\npublic_key=%s\nlisten_port=1\n\n", a.pub_hex); /* device key in a peer */
	CASE(-EINVAL, "set=1\npublic_key=%s\nprivate_key=%s\n\n", a.pub_hex, me.priv_hex);
	CASE(-EINVAL, "set=1\npublic_key=%s\nfoo=bar\n\n", a.pub_hex);
	CASE(-EINVAL, "set=1\npublic_key=%s\nallowed_ip=10.0.0.0/33\n\n", a.pub_hex);
	CASE(-EINVAL, "set=1\npublic_key=%s\nallowed_ip=fd00::/129\n\n", a.pub_hex);
	CASE(-EINVAL, "set=1\npublic_key=%s\nallowed_ip=10.0.0.0/024\n\n", a.pub_hex);
	CASE(-EINVAL, "set=1\npublic_key=%s\nallowed_ip=10.0.0.0\n\n", a.pub_hex);
	CASE(-EINVAL, "set=1\npublic_key=%s\nallowed_ip=10.0.0/8\n\n", a.pub_hex);
	CASE(-EINVAL, "set=1\npublic_key=%s\nallowed_ip=010.0.0.0/8\n\n", a.pub_hex);
	CASE(-EINVAL, "set=1\npublic_key=%s\nallowed_ip=10.0.0.0/\n\n", a.pub_hex);
	CASE(-EINVAL, "set=1\npublic_key=%s\nallowed_ip=/8\n\n", a.pub_hex);
	CASE(-EINVAL, "set=1\npublic_key=%s\nallowed_ip=fe80::1%%1/64\n\n", a.pub_hex);
	CASE(-EINVAL, "set=1\npublic_key=%s\nallowed_ip=+10.0.0.0/8\n\n", a.pub_hex);
	CASE(-EINVAL, "set=1\npublic_key=%s\nendpoint=example.com:51820\n\n", a.pub_hex);
	CASE(-EINVAL, "set=1\npublic_key=%s\nendpoint=fe80::1:51820\n\n", a.pub_hex);
	CASE(-EINVAL, "set=1\npublic_key=%s\nendpoint=1.2.3.4:65536\n\n", a.pub_hex);
	CASE(-EINVAL, "set=1\npublic_key=%s\nendpoint=1.2.3.4\n\n", a.pub_hex);
	CASE(-EINVAL, "set=1\npublic_key=%s\nendpoint=[1.2.3.4]:5\n\n", a.pub_hex);
	CASE(-EINVAL, "set=1\npublic_key=%s\nendpoint=[::1]5\n\n", a.pub_hex);
	CASE(-EINVAL, "set=1\npublic_key=%s\nendpoint=[fe80::1%%]:5\n\n", a.pub_hex);
	CASE(-EINVAL, "set=1\npublic_key=%s\nendpoint=[fe80::1%%nosuchif0]:5\n\n", a.pub_hex);
	CASE(-EINVAL, "set=1\npublic_key=%s\nendpoint=1.2.3.4%%1:5\n\n", a.pub_hex);
	CASE(-EINVAL, "set=1\npublic_key=%s\npersistent_keepalive_interval=65536\n\n", a.pub_hex);
	CASE(-EINVAL, "set=1\npublic_key=%s\nprotocol_version=2\n\n", a.pub_hex);
	CASE(-EINVAL, "set=1\npublic_key=%s\nremove=1\n\n", a.pub_hex);
	CASE(-EINVAL, "set=1\npublic_key=%s\nreplace_allowed_ips=True\n\n", a.pub_hex);
	CASE(-EINVAL, "set=1\nreplace_peers=yes\n\n");
	/* Stops at the first error: the lines after it are not applied. */
	CASE(-EINVAL, "set=1\nlisten_port=x\nreplace_peers=true\n\n");
	CASE(-EINVAL, "set=1\npublic_key=%s\nallowed_ip=1.2.3.4/40\nremove=true\n\n", a.pub_hex);
	CASE(-EINVAL, "get=1\nx\n");
#undef CASE

	ask(dev, fmt("set=1\nprivate_key=%s\nlisten_port=4000\nfwmark=9\npublic_key=%s\nendpoint=10.1.1.1:1\n"
		     "allowed_ip=10.0.0.0/8\n\n", me.priv_hex, a.pub_hex));
	CHECK(last_ret == 0);
	baseline = dup_str(get(dev));
	s = wg_uapi_session_new(dev);
	CHECK(s != NULL);
	for (size_t i = 0; i < n; i++) {
		char expect[32];
		int ret;

		out.len = 0;
		ret = wg_uapi_session_feed(s, cases[i].req, strlen(cases[i].req), &out);
		snprintf(expect, sizeof(expect), "errno=%d\n\n", cases[i].err);
		CHECK(ret == 0);
		CHECK(strcmp(text_of(&out), expect) == 0);
		if (strcmp(last_text, expect))
			fprintf(stderr, "  case %zu: %s-> %s", i, cases[i].req, last_text);
		/* The same session answers the next request, and nothing changed. */
		out.len = 0;
		CHECK(wg_uapi_session_feed(s, "get=1\n\n", 7, &out) == 0);
		CHECK(strcmp(text_of(&out), baseline) == 0);
		if (strcmp(last_text, baseline))
			fprintf(stderr, "  case %zu changed state: %s", i, cases[i].req);
	}
	CHECK(io.bind_calls == 1);  /* no bad listen_port reached the bind */

	/* Not transactional: the lines before the error stay applied. */
	ask(dev, fmt("set=1\nfwmark=7\npublic_key=%s\nallowed_ip=10.2.0.0/16\nlisten_port=1\n\n", c.pub_hex));
	CHECK(last_ret == -EINVAL);
	CHECK(wg_device_get_fwmark(dev) == 7 && wg_device_peer_count(dev) == 2);
	CHECK(strstr(get(dev), "allowed_ip=10.2.0.0/16") != NULL);

	wg_uapi_session_free(s);
	wg_uapi_buf_free(&out);
	free(baseline);
	free(bad_hex);
	free(long_hex);
	wg_device_free(dev);
}

static void test_protocol_errors_close(void)
{
	struct wg_device *dev = new_device();
	struct wg_uapi_session *s = wg_uapi_session_new(dev);
	struct wg_uapi_buf out = { 0 };
	char *line = malloc(5000);

	/* Unknown operation: errno response, then the connection is done. */
	CHECK(wg_uapi_session_feed(s, "bogus=1\n", 8, &out) == -EPROTO);
	CHECK(strcmp(text_of(&out), "errno=-71\n\n") == 0);
	out.len = 0;
	CHECK(wg_uapi_session_feed(s, "get=1\n\n", 7, &out) == -EPROTO);
	CHECK(out.len == 0);
	wg_uapi_session_free(s);

	/* A stray blank line where an operation is expected is an unknown operation too. */
	s = wg_uapi_session_new(dev);
	CHECK(wg_uapi_session_feed(s, "get=1\n\n\n", 8, &out) == -EPROTO);
	CHECK(strcmp(text_of(&out), "errno=0\n\nerrno=-71\n\n") == 0);
	out.len = 0;
	wg_uapi_session_free(s);

	/* An overlong line closes as soon as it exceeds the limit, even without its newline. */
	s = wg_uapi_session_new(dev);
	memset(line, 'a', 5000);
	CHECK(wg_uapi_session_feed(s, "set=1\n", 6, &out) == 0);
	CHECK(wg_uapi_session_feed(s, line, 4000, &out) == 0);
	CHECK(out.len == 0);
	CHECK(wg_uapi_session_feed(s, line, 1000, &out) == -EPROTO);
	CHECK(strcmp(text_of(&out), "errno=-71\n\n") == 0);
	out.len = 0;
	wg_uapi_session_free(s);

	/* A line of exactly 4096 bytes is still a line (here an invalid one). */
	s = wg_uapi_session_new(dev);
	line[4096] = '\n';
	line[4097] = '\n';
	CHECK(wg_uapi_session_feed(s, "set=1\n", 6, &out) == 0);
	CHECK(wg_uapi_session_feed(s, line, 4098, &out) == 0);
	CHECK(strcmp(text_of(&out), "errno=-71\n\n") == 0);  /* no '=': EPROTO response, not closed */
	out.len = 0;
	CHECK(wg_uapi_session_feed(s, "get=1\n\n", 7, &out) == 0);
	CHECK(strcmp(text_of(&out), "errno=0\n\n") == 0);
	wg_uapi_session_free(s);

	/* wg_uapi_request with an incomplete request. */
	out.len = 0;
	CHECK(wg_uapi_request(dev, "set=1\nlisten_port=1\n", &out) == -EPROTO);
	CHECK(strcmp(text_of(&out), "errno=-71\n\n") == 0);

	wg_uapi_buf_free(&out);
	free(line);
	wg_device_free(dev);
}

/* A script of several requests exercising most keys. */
static char *build_script(void)
{
	struct keyhex me = make_key(1), a = make_key(2), b = make_key(3), c = make_key(4);
	char *s = NULL;

	if (asprintf(&s, "set=1\nprivate_key=%s\nlisten_port=5555\nfwmark=3\nreplace_peers=true\n"
			 "public_key=%s\npreshared_key=%s\nendpoint=[fe80::99%%7]:9\nallowed_ip=10.0.0.0/8\n"
			 "allowed_ip=fd00::1/64\n"
			 "public_key=%s\nendpoint=203.0.113.5:65535\nallowed_ip=10.0.0.0/8\n\n"
			 "get=1\n\n"
			 "set=1\npublic_key=%s\nupdate_only=true\nallowed_ip=1.1.1.1/32\n"
			 "public_key=%s\nallowed_ip=-fd00::/64\nallowed_ip=172.16.0.0/12\nlisten_port=bad\n\n"
			 "get=1\n\n"
			 "set=1\npublic_key=%s\nremove=true\n\nget=1\n\n",
		     me.priv_hex, a.pub_hex, c.pub_hex, b.pub_hex, c.pub_hex, a.pub_hex, b.pub_hex) < 0)
		abort();
	return s;
}

static char *run_split(const char *script, size_t chunk)
{
	struct wg_device *dev = new_device();
	struct wg_uapi_session *s = wg_uapi_session_new(dev);
	struct wg_uapi_buf out = { 0 };
	size_t len = strlen(script);
	char *result;

	for (size_t off = 0; off < len; off += chunk) {
		size_t n = len - off < chunk ? len - off : chunk;

		CHECK(wg_uapi_session_feed(s, script + off, n, &out) == 0);
	}
	result = dup_str(text_of(&out));
	wg_uapi_buf_free(&out);
	wg_uapi_session_free(s);
	wg_device_free(dev);
	return result;
}

static void test_split_feeding(void)
{
	char *script = build_script();
	char *whole = run_split(script, strlen(script));
	static const size_t chunks[] = { 1, 2, 3, 7, 64, 65 };

	/* Concatenated requests in one feed: 6 responses in order. */
	CHECK(count_substr(whole, "errno=") == 6);
	CHECK(count_substr(whole, "errno=-22\n\n") == 1);
	CHECK(strncmp(whole, "errno=0\n\nprivate_key=", 21) == 0);
	CHECK(count_substr(whole, "public_key=") == 2 + 2 + 1);
	CHECK(strstr(whole, "allowed_ip=1.1.1.1/32") == NULL);
	CHECK(strstr(whole, "allowed_ip=172.16.0.0/12") != NULL);
	CHECK(strstr(whole, "endpoint=[fe80::99%7]:9") != NULL);
	for (size_t i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++) {
		char *split = run_split(script, chunks[i]);

		CHECK(strcmp(split, whole) == 0);
		free(split);
	}
	free(whole);
	free(script);
}

static void test_setconf_style(void)
{
	struct wg_device *dev = new_device();
	struct keyhex me = make_key(1), a = make_key(2), b = make_key(3);
	const char *req = fmt("set=1\nprivate_key=%s\nlisten_port=0\nfwmark=0\nreplace_peers=true\n"
			      "public_key=%s\nendpoint=192.0.2.7:51820\nreplace_allowed_ips=true\n"
			      "allowed_ip=10.7.0.0/16\n\n", me.priv_hex, a.pub_hex);
	char *copy = dup_str(req);

	ask(dev, fmt("set=1\npublic_key=%s\n\n", b.pub_hex));
	ask(dev, copy);
	CHECK(last_ret == 0);
	CHECK(io.bind_calls == 1 && io.last_bind_port == 0);
	CHECK(io.fwmark_calls == 0);  /* unchanged mark: nothing to do */
	CHECK(wg_device_peer_count(dev) == 1);
	/* Running it again is idempotent. */
	ask(dev, copy);
	CHECK(last_ret == 0 && wg_device_peer_count(dev) == 1);
	CHECK(count_substr(get(dev), "allowed_ip=10.7.0.0/16") == 1);
	CHECK(strstr(last_text, fmt("public_key=%s", a.pub_hex)) != NULL);
	free(copy);
	wg_device_free(dev);
}

/* Another session removes the peer a split set request is configuring: no use after free, nothing
 * resurrected. */
static void test_interleaved_sessions(void)
{
	struct wg_device *dev = new_device();
	struct keyhex a = make_key(2);
	struct wg_uapi_session *s1 = wg_uapi_session_new(dev), *s2 = wg_uapi_session_new(dev);
	struct wg_uapi_buf out = { 0 };
	const char *head = fmt("set=1\npublic_key=%s\nallowed_ip=10.0.0.0/8\n", a.pub_hex);
	const char *tail;
	char *rm = NULL;

	CHECK(wg_uapi_session_feed(s1, head, strlen(head), &out) == 0);
	CHECK(wg_device_peer_count(dev) == 1);
	if (asprintf(&rm, "set=1\npublic_key=%s\nremove=true\n\n", a.pub_hex) < 0)
		abort();
	CHECK(wg_uapi_session_feed(s2, rm, strlen(rm), &out) == 0);
	CHECK(wg_device_peer_count(dev) == 0);
	tail = "allowed_ip=10.1.0.0/16\nendpoint=1.2.3.4:5\n\n";
	CHECK(wg_uapi_session_feed(s1, tail, strlen(tail), &out) == 0);
	CHECK(strcmp(text_of(&out), "errno=0\n\nerrno=0\n\n") == 0);
	CHECK(wg_device_peer_count(dev) == 0);
	free(rm);
	wg_uapi_buf_free(&out);
	wg_uapi_session_free(s1);
	wg_uapi_session_free(s2);
	wg_device_free(dev);
}

static double now_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A setconf-style request with n peers, each with a /32; returns the seconds the set and get took. */
static double many_peers(size_t n)
{
	struct wg_device *dev = new_device();
	struct keyhex me = make_key(1);
	struct wg_uapi_buf out = { 0 };
	size_t cap = 200 + n * 200, len = 0;
	char *req = malloc(cap);
	double t0, t1;
	int ret;

	len += (size_t)snprintf(req + len, cap - len, "set=1\nprivate_key=%s\nlisten_port=0\nfwmark=0\n"
			       "replace_peers=true\n", me.priv_hex);
	for (size_t i = 0; i < n; i++) {
		uint8_t pub[WG_KEY_LEN] = { 0 };
		char hex[65];

		/* Distinct keys without n scalar multiplications in the test itself. */
		pub[0] = (uint8_t)i;
		pub[1] = (uint8_t)(i >> 8);
		pub[2] = 0x77;
		pub[31] = 0x42;
		to_hex(pub, hex);
		len += (size_t)snprintf(req + len, cap - len,
				       "public_key=%s\nendpoint=192.0.2.1:%zu\npersistent_keepalive_interval=0\n"
				       "replace_allowed_ips=true\nallowed_ip=10.%zu.%zu.0/24\n",
				       hex, 1000 + i, (i >> 8) & 0xff, i & 0xff);
	}
	snprintf(req + len, cap - len, "\n");
	t0 = now_sec();
	ret = wg_uapi_request(dev, req, &out);
	CHECK(ret == 0);
	CHECK(wg_device_peer_count(dev) == n);
	out.len = 0;
	CHECK(wg_uapi_request(dev, "get=1\n\n", &out) == 0);
	t1 = now_sec();
	CHECK(count_substr(text_of(&out), "public_key=") == n);
	CHECK(count_substr(last_text, "allowed_ip=10.") == n);
	wg_uapi_buf_free(&out);
	free(req);
	wg_device_free(dev);
	return t1 - t0;
}

static void test_many_peers(void)
{
	double small = many_peers(2500), large = many_peers(10000);

	printf("     2500 peers: %.3f s, 10000 peers: %.3f s\n", small, large);
	/* Linear work grows 4x; quadratic would grow 16x. Generous margins against scheduling noise. */
	CHECK(large < 10.0);
	CHECK(large < 10 * small + 0.05);
}

int main(void)
{
	TEST_RUN(test_get_empty);
	TEST_RUN(test_private_key);
	TEST_RUN(test_hex_alphabet);
	TEST_RUN(test_listen_port_and_fwmark);
	TEST_RUN(test_fwmark_unsupported);
	TEST_RUN(test_peers_exact_output);
	TEST_RUN(test_replace_allowed_ips);
	TEST_RUN(test_allowed_ip_steal_and_remove);
	TEST_RUN(test_remove_and_update_only);
	TEST_RUN(test_replace_peers);
	TEST_RUN(test_own_public_key_ignored);
	TEST_RUN(test_malformed);
	TEST_RUN(test_protocol_errors_close);
	TEST_RUN(test_split_feeding);
	TEST_RUN(test_setconf_style);
	TEST_RUN(test_interleaved_sessions);
	TEST_RUN(test_many_peers);
	free(last_text);
	return TEST_SUMMARY();
}
