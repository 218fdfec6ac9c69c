#!/usr/bin/env bash
# removed-peer: A has peers B and C (C on a second veth, 198.51.100.0/24). After
# `wg set A peer C remove`: A no longer lists C (nor its counters), C's packets no longer reach A's
# tunnel interface and C's pings fail, while B is unaffected. Re-adding C (with an endpoint) restores it.
# Usage: IMPL_A=zl-wg IMPL_B=wireguard-go IMPL_C=zl-wg tests/e2e/removed-peer.sh
. "$(dirname "$0")/lib.sh"
IMPL_A=${IMPL_A:-zl-wg}; IMPL_B=${IMPL_B:-zl-wg}; IMPL_C=${IMPL_C:-$IMPL_B}
e2e_init removed-peer
say "# A=$IMPL_A B=$IMPL_B C=$IMPL_C"
setup_pair
NS_C=$(ns_name c); UL_C4=198.51.100.2; UL_AC4=198.51.100.1; TUN_C4=10.9.0.3; PORT_C=51822
must "namespace C on a second veth (198.51.100.0/24)" eval "ns_create $NS_C && veth_pair $NS_A ul1 $NS_C ul0 &&
	ns_addr $NS_A ul1 $UL_AC4/24 && ns_addr $NS_C ul0 $UL_C4/24"
tunnel_pair "$IMPL_A" "$IMPL_B" 4 both
gen_key C; PUB_C=$(pub_of C); IF_C=$(if_name c)
must "start $IMPL_C as $IF_C in C" start_wg "$NS_C" "$IMPL_C" "$IF_C"
must "configure C" wgx "$NS_C" set "$IF_C" listen-port "$PORT_C" private-key "$(key_file C)" \
	peer "$PUB_A" allowed-ips "10.9.0.0/24" endpoint "$UL_AC4:$PORT_A"
must "C's tunnel address" eval "ns_addr $NS_C $IF_C $TUN_C4/24 && ip -n $NS_C link set $IF_C up"
must "A gets peer C" wgx "$NS_A" set "$IF_A" peer "$PUB_C" allowed-ips "$TUN_C4/32"

step "both peers work"
check "B pings A" ping_ok "$NS_B" "$TUN_A4" 5
check "C pings A" ping_ok "$NS_C" "$TUN_A4" 5
check "A pings C" ping_ok "$NS_A" "$TUN_C4" 3
check_eq "A lists 2 peers" 2 "$(wgx "$NS_A" show "$IF_A" peers | wc -l)"

step "remove C from A"
must "wg set A peer C remove" wgx "$NS_A" set "$IF_A" peer "$PUB_C" remove
check_eq "A lists only B" "$PUB_B" "$(wgx "$NS_A" show "$IF_A" peers)"
check "A's counters for C are gone" eval "! wgx $NS_A show $IF_A transfer | grep -qF '$PUB_C'"
check "A's allowed-ips no longer mention 10.9.0.3" eval "! wgx $NS_A show $IF_A allowed-ips | grep -qF '$TUN_C4/'"
rx_packets() { ip netns exec "$NS_A" cat "/sys/class/net/$IF_A/statistics/rx_packets"; }
RX0=$(rx_packets)
must "A's tunnel interface has received packets ($RX0)" test "$RX0" -gt 0
check "C's pings to A fail" ping_fails "$NS_C" "$TUN_A4"
check_eq "nothing from C reached A's tunnel interface (rx packets)" "$RX0" "$(rx_packets)"
check "A cannot reach C" ping_fails "$NS_A" "$TUN_C4"
check "B still pings A" ping_ok "$NS_B" "$TUN_A4" 3
check "A still pings B (IPv6 inside)" ping_ok "$NS_A" "$TUN_B6" 3
check "30 pings A <-> B, none lost" nsx "$NS_B" ping -n -q -c 30 -i 0.02 -W 2 "$TUN_A4"
check "all daemons alive" eval "daemon_alive $IF_A && daemon_alive $IF_B && daemon_alive $IF_C"

step "re-add C (A initiates)"
must "wg set A peer C allowed-ips + endpoint" wgx "$NS_A" set "$IF_A" peer "$PUB_C" allowed-ips "$TUN_C4/32" \
	endpoint "$UL_C4:$PORT_C"
check "A pings C again" ping_ok "$NS_A" "$TUN_C4" 5
check "C pings A again" ping_ok "$NS_C" "$TUN_A4" 3
check "B still pings A" ping_ok "$NS_B" "$TUN_A4" 3
e2e_finish
