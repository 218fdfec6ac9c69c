/* libFuzzer harness: arbitrary datagrams into a device that has a peer and a live session, so data,
 * handshake, cookie and truncated messages all reach their parsers. Built by `make fuzz`. */
#include <arpa/inet.h>
#include <string.h>
#include "wg/core/crypto.h"
#include "wg/core/device.h"

static uint64_t now_ns = 1000000000000ULL;
static int drop_send(void *ctx, const struct wg_endpoint *to, const uint8_t *d, size_t l, uint8_t dscp) { return 0; }
static void drop_tun(void *ctx, const uint8_t *p, size_t l) {}
static uint64_t mono(void *ctx) { return now_ns; }
static uint64_t wall(void *ctx) { return now_ns; }

static struct wg_device *device_under_test(void)
{
	static struct wg_device *dev;
	struct wg_io_ops ops = {.send_udp = drop_send, .write_tun = drop_tun, .mono_ns = mono, .wall_ns = wall};
	uint8_t priv[32], pub[32], ip[4] = {10, 0, 0, 2};
	struct wg_endpoint ep;
	struct wg_peer *peer;
	int err;

	if (dev)
		return dev;
	dev = wg_device_new(&ops);
	wg_x25519_generate(priv, pub);
	wg_device_set_private_key(dev, priv);
	wg_x25519_generate(priv, pub);
	peer = wg_device_add_peer(dev, pub, &err);
	memset(&ep, 0, sizeof(ep));
	ep.addr.in4.sin_family = AF_INET;
	ep.addr.in4.sin_port = htons(51820);
	ep.addr.in4.sin_addr.s_addr = htonl(0xc0000202);
	wg_peer_set_endpoint(peer, &ep);
	wg_peer_add_allowed_ip(peer, AF_INET, ip, 32);
	return dev;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wg_device *dev = device_under_test();
	struct wg_endpoint from;

	memset(&from, 0, sizeof(from));
	from.addr.in4.sin_family = AF_INET;
	from.addr.in4.sin_port = htons(40000);
	now_ns += 1000000;
	wg_device_udp_input(dev, data, size, &from);
	/* The same bytes as a TUN packet exercise the routing parser. */
	wg_device_tun_input(dev, data, size);
	wg_device_tick(dev);
	return 0;
}
