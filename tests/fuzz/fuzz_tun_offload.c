/* libFuzzer harness for the TUN offload parsers: an arbitrary vnet header + packet is split into
 * segments (as read from a TUN device), and arbitrary packets are planned for GRO and turned into iovecs
 * (as written to it). Neither may read or write out of bounds. Built by `make fuzz`. */
#include <string.h>
#include <sys/uio.h>
#include "wg/io/tun_offload.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t seg[WG_OFFLOAD_MAX_PACKET], copy[WG_OFFLOAD_MAX_PACKET];
	static struct wg_offload_gro gro;
	struct wg_gro_pkt pkts[8];
	uint8_t hdr_buf[WG_GRO_HDR_BUF];
	struct iovec iov[WG_GRO_MAX_IOV];
	struct wg_offload_gso gso;
	struct wg_vnet_hdr h;
	size_t len;
	int n = 0;

	if (size < WG_VNET_HDR_LEN || size - WG_VNET_HDR_LEN > sizeof(copy))
		return 0;
	wg_vnet_hdr_decode(&h, data);
	len = size - WG_VNET_HDR_LEN;
	memcpy(copy, data + WG_VNET_HDR_LEN, len);
	if (h.gso_type != WG_VNET_GSO_NONE && wg_offload_gso_parse(&gso, &h, copy, len)) {
		for (unsigned i = 0; i < gso.count; i++)
			wg_offload_gso_segment(&gso, i, seg);
	} else {
		wg_offload_csum_complete(copy, len, h.csum_start, h.csum_offset);
	}
	/* The same bytes cut into up to 8 packets for GRO (cut points taken from the first bytes). */
	for (size_t off = 0; off < size && n < 8; n++) {
		size_t take = 20 + (size_t)data[n % size] * 8;
		if (take > size - off)
			take = size - off;
		pkts[n] = (struct wg_gro_pkt){.data = data + off, .len = take};
		off += take;
	}
	for (int udp = 0; udp < 2; udp++) {
		wg_offload_gro_plan(&gro, pkts, n, udp);
		for (int k = 0; k < gro.ngroups; k++)
			wg_offload_gro_iov(&gro, k, pkts, hdr_buf, iov);
	}
	return 0;
}
