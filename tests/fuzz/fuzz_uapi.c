/* libFuzzer harness for the UAPI parser: random bytes into wg_uapi_session_feed on a real device.
 *
 * Build and run (not part of `make` yet):
 *   mkdir -p build/fuzz && clang -std=gnu11 -D_GNU_SOURCE -g -O1 \
 *     -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -Isrc \
 *     tests/fuzz/fuzz_uapi.c $(find src/wg/core -name '*.c') -lsodium -lcrypto -lb2 -o build/fuzz/fuzz_uapi
 *   mkdir -p build/fuzz/corpus && printf '\003\001\002\005set=1\nprivate_key=%064d\nlisten_port=666\n\nget=1\n\n' 1 \
 *     > build/fuzz/corpus/seed1 && printf '\000set=1\npublic_key=%s\nendpoint=[fe80::1%%lo]:1\n'\
 *     'allowed_ip=-10.0.0.0/8\nallowed_ip=fd00::/64\nupdate_only=true\nremove=true\n\nget=1\n\n' \
 *     $(printf '%064d' 7) > build/fuzz/corpus/seed2
 *   build/fuzz/fuzz_uapi -max_len=8192 build/fuzz/corpus
 *
 * Each input runs twice on two fresh devices: once fed in one piece and once split at positions taken
 * from the input itself. Both runs must produce byte-identical output and the same return value
 * (the parser must not care how the stream was cut). Afterwards a get on each device must succeed and
 * match, which also drives the serializer over whatever state the input built. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "wg/core/device.h"
#include "wg/core/uapi.h"

static int fake_send(void *ctx, const struct wg_endpoint *to, const uint8_t *data, size_t len, uint8_t dscp)
{
	(void)ctx; (void)to; (void)data; (void)len; (void)dscp;
	return 0;
}

static void fake_tun(void *ctx, const uint8_t *packet, size_t len)
{
	(void)ctx; (void)packet; (void)len;
}

/* Port 666 fails as if taken, so the error path of listen_port is reachable. */
static int fake_bind(void *ctx, uint16_t port, uint16_t *bound)
{
	(void)ctx;
	if (port == 666)
		return -EADDRINUSE;
	*bound = port ? port : 40000;
	return 0;
}

static int fake_fwmark(void *ctx, uint32_t mark)
{
	(void)ctx;
	return mark == 13 ? -EPERM : 0;
}

static uint64_t fake_mono(void *ctx) { (void)ctx; return 5000000000ULL; }
static uint64_t fake_wall(void *ctx) { (void)ctx; return 1700000000000000000ULL; }

static struct wg_device *make_device(void)
{
	static const struct wg_io_ops ops = {
		.send_udp = fake_send, .write_tun = fake_tun, .bind_port = fake_bind,
		.set_fwmark = fake_fwmark, .mono_ns = fake_mono, .wall_ns = fake_wall,
	};
	struct wg_device *dev = wg_device_new(&ops);

	if (!dev)
		abort();
	return dev;
}

/* Feeds data, cut where the cut stream says; returns the first nonzero feed result (or 0). */
static int feed(struct wg_device *dev, const char *data, size_t len, const uint8_t *cuts, size_t ncuts,
		struct wg_uapi_buf *out)
{
	struct wg_uapi_session *s = wg_uapi_session_new(dev);
	size_t off = 0, i = 0;
	int ret = 0;

	if (!s)
		abort();
	while (off < len && ret == 0) {
		size_t n = ncuts ? (size_t)cuts[i++ % ncuts] + 1 : len;

		if (n > len - off)
			n = len - off;
		ret = wg_uapi_session_feed(s, data + off, n, out);
		off += n;
	}
	wg_uapi_session_free(s);
	return ret;
}

static void check_same(const struct wg_uapi_buf *a, const struct wg_uapi_buf *b)
{
	if (a->len != b->len || (a->len && memcmp(a->data, b->data, a->len) != 0)) {
		fprintf(stderr, "output differs between whole and split feeding\n");
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wg_device *d1, *d2;
	struct wg_uapi_buf o1 = { 0 }, o2 = { 0 };
	size_t ncuts;
	int r1, r2;

	if (size == 0)
		return 0;
	/* First byte: how many of the following bytes are cut sizes (the rest is the stream). */
	ncuts = data[0] % 16;
	if (ncuts > size - 1)
		ncuts = size - 1;
	d1 = make_device();
	d2 = make_device();
	r1 = feed(d1, (const char *)data + 1 + ncuts, size - 1 - ncuts, NULL, 0, &o1);
	r2 = feed(d2, (const char *)data + 1 + ncuts, size - 1 - ncuts, data + 1, ncuts, &o2);
	if (r1 != r2 || (r1 != 0 && r1 != -EPROTO && r1 != -ENOMEM))
		abort();
	check_same(&o1, &o2);

	o1.len = o2.len = 0;
	if (wg_uapi_request(d1, "get=1\n\n", &o1) != 0 || wg_uapi_request(d2, "get=1\n\n", &o2) != 0)
		abort();
	check_same(&o1, &o2);
	if (o1.len < 9 || memcmp(o1.data + o1.len - 9, "errno=0\n\n", 9) != 0)
		abort();

	wg_uapi_buf_free(&o1);
	wg_uapi_buf_free(&o2);
	wg_device_free(d1);
	wg_device_free(d2);
	return 0;
}
