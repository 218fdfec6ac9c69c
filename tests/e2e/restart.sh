#!/usr/bin/env bash
# restart: after a handshake, one side's daemon is stopped and started again under the same interface
# name, reconfigured with `wg set`; the restarted side pings first, a new handshake happens (the peer's
# latest handshake advances) and traffic flows both ways. Cases: A restarted (SIGTERM), B restarted
# (SIGTERM), A killed with SIGKILL (stale socket file left behind) and restarted.
# Usage: IMPL_A=zl-wg IMPL_B=wireguard-go tests/e2e/restart.sh
. "$(dirname "$0")/lib.sh"
IMPL_A=${IMPL_A:-zl-wg}; IMPL_B=${IMPL_B:-zl-wg}
e2e_init restart
say "# A=$IMPL_A B=$IMPL_B"
setup_pair
tunnel_pair "$IMPL_A" "$IMPL_B" 4 both
must "tunnel up" ping_ok "$NS_A" "$TUN_B4" 5

# restart_side A|B SIGNAL
restart_side() {
	local side=$1 sig=$2 v4 v6 ns ifn impl key port peer allowed ep other_ns other_if other_pub me_pub dst hs0 hs1 pid
	if [ "$side" = A ]; then
		ns=$NS_A; ifn=$IF_A; impl=$IMPL_A; port=$PORT_A; peer=$PUB_B; allowed="$TUN_B4/32,$TUN_B6/128"
		ep=$(endpoint_of 4 B); other_ns=$NS_B; other_if=$IF_B; me_pub=$PUB_A; dst=$TUN_B4; key=A
		v4=$TUN_A4/24; v6=$TUN_A6/64
	else
		ns=$NS_B; ifn=$IF_B; impl=$IMPL_B; port=$PORT_B; peer=$PUB_A; allowed="$TUN_A4/32,$TUN_A6/128"
		ep=$(endpoint_of 4 A); other_ns=$NS_A; other_if=$IF_A; me_pub=$PUB_B; dst=$TUN_A4; key=B
		v4=$TUN_B4/24; v6=$TUN_B6/64
	fi
	step "restart $side ($impl) with SIG$sig"
	hs0=$(peer_field "$other_ns" "$other_if" "$me_pub" latest-handshakes)
	sleep 1.1   # so the new handshake's time (whole seconds) is strictly later
	pid=$(wg_pid "$ifn")
	if [ "$sig" = TERM ]; then
		check "$side stops on SIGTERM (daemon, interface and socket gone)" stop_wg "$ns" "$ifn"
	else
		kill -KILL "$pid"
		check "$side killed; its interface disappears with it" eval \
			"wait_until 5 daemon_gone $ifn && wait_until 3 eval '! ip -n $ns link show dev $ifn'"
		check "a stale socket file is left behind" test -S "$E2E_WG_SOCK_DIR/$ifn.sock"
	fi
	check "the peer does not reach $side while it is down" ping_fails "$other_ns" "${v4%/*}"
	must "start $side again as $ifn" start_wg "$ns" "$impl" "$ifn"
	check "the new daemon is a new process" test "$(wg_pid "$ifn")" != "$pid"
	must "reconfigure $side" wgx "$ns" set "$ifn" listen-port "$port" private-key "$(key_file $key)" \
		peer "$peer" allowed-ips "$allowed" endpoint "$ep"
	must "addresses on $side" tunnel_up "$ns" "$ifn" "$v4" "$v6"
	check "$side pings its peer after the restart" ping_ok "$ns" "$dst" 5
	hs1=$(peer_field "$other_ns" "$other_if" "$me_pub" latest-handshakes)
	check "the peer's latest handshake advanced ($hs0 -> $hs1)" test "$hs1" -gt "$hs0"
	check "the peer pings $side (IPv6 inside)" ping_ok "$other_ns" "${v6%/*}" 3
	check "30 pings, none lost" nsx "$ns" ping -n -q -c 30 -i 0.02 -W 2 "$dst"
}

restart_side A TERM
restart_side B TERM
restart_side A KILL
e2e_finish
