#!/usr/bin/env bash
# roaming: the tunnel is up; B's underlay address changes (IPv4 .2 -> .3), then B moves to the IPv6
# underlay, then its IPv6 address changes too. Each time B sends first and A must learn B's new
# endpoint from authenticated traffic (wg show endpoints), and traffic flows both ways afterwards.
# Usage: IMPL_A=zl-wg IMPL_B=wireguard-go tests/e2e/roaming.sh   (A is the side that must learn)
. "$(dirname "$0")/lib.sh"
IMPL_A=${IMPL_A:-zl-wg}; IMPL_B=${IMPL_B:-zl-wg}
e2e_init roaming
say "# A=$IMPL_A (learns) B=$IMPL_B (roams)"
setup_pair
tunnel_pair "$IMPL_A" "$IMPL_B" 4 both
must "tunnel up: B pings A" ping_ok "$NS_B" "$TUN_A4" 5
check_eq "A sees B at its first address" "$UL_B4:$PORT_B" "$(peer_field "$NS_A" "$IF_A" "$PUB_B" endpoints)"

roam_check() { # roam_check DESC NEW_ENDPOINT
	check "$1: B pings A over the tunnel" ping_ok "$NS_B" "$TUN_A4" 25
	check "$1: A learned B's new endpoint $2" wait_until 3 eval \
		"[ \"\$(peer_field $NS_A $IF_A $PUB_B endpoints)\" = '$2' ]"
	check "$1: A pings B (IPv4 inside)" ping_ok "$NS_A" "$TUN_B4" 3
	check "$1: A pings B (IPv6 inside)" ping_ok "$NS_A" "$TUN_B6" 3
	check "$1: 20 pings from A, none lost" nsx "$NS_A" ping -n -q -c 20 -i 0.02 -W 2 "$TUN_B4"
	say "   A's endpoint for B: $(peer_field "$NS_A" "$IF_A" "$PUB_B" endpoints)"
}

step "B's IPv4 underlay address changes: 192.0.2.2 -> 192.0.2.3"
must "move B's address" eval "ip -n $NS_B addr del $UL_B4/24 dev ul0 && ns_addr $NS_B ul0 192.0.2.3/24"
# Re-setting the same endpoint drops a source address the roamer may have cached (wireguard-go keeps
# the old one until its next handshake, ~15 s); what is tested here is A learning, not B's cache.
must "B re-sets its endpoint for A (same value)" wgx "$NS_B" set "$IF_B" peer "$PUB_A" endpoint "$UL_A4:$PORT_A"
roam_check "after IPv4 change" "192.0.2.3:$PORT_B"

step "B switches to the IPv6 underlay (wg set endpoint on B only)"
must "B's endpoint for A becomes [$UL_A6]:$PORT_A" wgx "$NS_B" set "$IF_B" peer "$PUB_A" endpoint "[$UL_A6]:$PORT_A"
roam_check "after move to IPv6" "[$UL_B6]:$PORT_B"

step "B's IPv6 underlay address changes: 2001:db8::2 -> 2001:db8::3"
must "move B's IPv6 address" eval "ip -n $NS_B addr del $UL_B6/64 dev ul0 && ns_addr $NS_B ul0 2001:db8::3/64"
must "B re-sets its endpoint for A (same value)" wgx "$NS_B" set "$IF_B" peer "$PUB_A" endpoint "[$UL_A6]:$PORT_A"
roam_check "after IPv6 change" "[2001:db8::3]:$PORT_B"

step "B's source port changes (as behind a NAT rebinding): listen-port $PORT_B -> 51829"
must "B's new listen port" wgx "$NS_B" set "$IF_B" listen-port 51829
roam_check "after port change" "[2001:db8::3]:51829"

check "both daemons alive" eval "daemon_alive $IF_A && daemon_alive $IF_B"
e2e_finish
