#!/usr/bin/env bash
# basic: A <-> B over a veth underlay (IPv4, then IPv6), each side initiating in turn; pings over IPv4
# and IPv6 inside the tunnel in both directions; the responder learns the initiator's endpoint.
# Usage: IMPL_A=zl-wg IMPL_B=wireguard-go tests/e2e/basic.sh   (FAMILIES="4 6", INITIATORS="A B")
. "$(dirname "$0")/lib.sh"
IMPL_A=${IMPL_A:-zl-wg}; IMPL_B=${IMPL_B:-zl-wg}
e2e_init basic
say "# A=$IMPL_A B=$IMPL_B"
setup_pair

for fam in ${FAMILIES:-4 6}; do
	for init in ${INITIATORS:-A B}; do
		step "underlay IPv$fam, $init initiates"
		tunnel_pair "$IMPL_A" "$IMPL_B" "$fam" "$init"
		if [ "$init" = A ]; then
			I_NS=$NS_A; I_IF=$IF_A; R_NS=$NS_B; R_IF=$IF_B; R_PUB=$PUB_B; I_PUB=$PUB_A
			R_T4=$TUN_B4; R_T6=$TUN_B6; I_T4=$TUN_A4; I_T6=$TUN_A6; I_EP=$(endpoint_of "$fam" A)
		else
			I_NS=$NS_B; I_IF=$IF_B; R_NS=$NS_A; R_IF=$IF_A; R_PUB=$PUB_A; I_PUB=$PUB_B
			R_T4=$TUN_A4; R_T6=$TUN_A6; I_T4=$TUN_B4; I_T6=$TUN_B6; I_EP=$(endpoint_of "$fam" B)
		fi
		check "responder has no endpoint before the handshake" \
			test "$(peer_field "$R_NS" "$R_IF" "$I_PUB" endpoints)" = "(none)"
		check "initiator pings responder over tunnel IPv4" ping_ok "$I_NS" "$R_T4" 5
		check "handshake recorded on the initiator" wait_handshake "$I_NS" "$I_IF" "$R_PUB" 5
		check "handshake recorded on the responder" wait_handshake "$R_NS" "$R_IF" "$I_PUB" 5
		check_eq "responder learned the initiator's endpoint" "$I_EP" \
			"$(peer_field "$R_NS" "$R_IF" "$I_PUB" endpoints)"
		check "initiator pings responder over tunnel IPv6" ping_ok "$I_NS" "$R_T6" 3
		check "responder pings initiator over tunnel IPv4" ping_ok "$R_NS" "$I_T4" 3
		check "responder pings initiator over tunnel IPv6" ping_ok "$R_NS" "$I_T6" 3
		check "50 quick pings, none lost" nsx "$I_NS" ping -n -q -c 50 -i 0.01 -W 2 "$R_T4"
		check "transfer counters non-zero on both sides" eval \
			"[ \"\$(transfer $I_NS $I_IF $R_PUB)\" != '0 0' ] && [ \"\$(transfer $R_NS $R_IF $I_PUB)\" != '0 0' ]"
		check "stop A (SIGTERM): daemon exits, interface and socket gone" stop_wg "$NS_A" "$IF_A"
		check "stop B (SIGTERM): daemon exits, interface and socket gone" stop_wg "$NS_B" "$IF_B"
	done
done
e2e_finish
