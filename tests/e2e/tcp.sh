#!/usr/bin/env bash
# tcp: TCP transfers of random data through the tunnel (A->B over tunnel IPv4, B->A over tunnel IPv6),
# byte-exact: sha256 of what was sent equals sha256 of what arrived.
# Usage: IMPL_A=zl-wg IMPL_B=wireguard-go tests/e2e/tcp.sh   (TCP_MIB=20, FAMILY=4 for the underlay)
. "$(dirname "$0")/lib.sh"
IMPL_A=${IMPL_A:-zl-wg}; IMPL_B=${IMPL_B:-zl-wg}; TCP_MIB=${TCP_MIB:-20}
e2e_init tcp
say "# A=$IMPL_A B=$IMPL_B, $TCP_MIB MiB each way"
setup_pair
tunnel_pair "$IMPL_A" "$IMPL_B" "${FAMILY:-4}" both
must "tunnel up (A pings B)" ping_ok "$NS_A" "$TUN_B4" 5

must "make $TCP_MIB MiB of random data" eval 'head -c "$((TCP_MIB * 1024 * 1024))" /dev/urandom >"$E2E_TMP/src.bin"'
SRC_SUM=$(sha256sum <"$E2E_TMP/src.bin" | cut -d' ' -f1)

# transfer NAME RECV_NS LISTEN_ADDR SEND_NS CONNECT_ADDR: one socat receiver, one socat sender, bounded.
tcp_transfer() {
	local name=$1 rns=$2 laddr=$3 sns=$4 caddr=$5 port=5001 rpid t0 t1 v=4
	case $laddr in *:*) v=6; laddr="[$laddr]" ;; esac
	rm -f "$E2E_TMP/$name.out"
	rpid=$(bg "$rns" "recv-$name" timeout 60 socat -u "TCP$v-LISTEN:$port,bind=$laddr,reuseaddr" \
		"OPEN:$E2E_TMP/$name.out,creat,trunc")
	wait_until 5 eval "ip netns exec $rns ss -tln | grep -q ':$port '" || { say "receiver not listening"; return 1; }
	t0=$(date +%s.%N)
	timeout 60 ip netns exec "$sns" socat -u "OPEN:$E2E_TMP/src.bin" "TCP$v:$caddr:$port" || { say "sender failed"; return 1; }
	wait_until 30 eval "! kill -0 $rpid 2>/dev/null" || { say "receiver did not finish"; return 1; }
	t1=$(date +%s.%N)
	echo "   $name: $(awk -v b="$((TCP_MIB * 8))" -v a="$t0" -v c="$t1" 'BEGIN { printf "%.0f Mbit/s", b * 1.048576 / (c - a) }')" >"$E2E_TMP/$name.rate"
	return 0
}

step "A -> B, tunnel IPv4"
check "transfer A -> B completes" tcp_transfer ab "$NS_B" "$TUN_B4" "$NS_A" "$TUN_B4"
cat "$E2E_TMP/ab.rate" 2>/dev/null
check_eq "received size" "$((TCP_MIB * 1024 * 1024))" "$(stat -c %s "$E2E_TMP/ab.out" 2>/dev/null)"
check_eq "sha256 of received data equals sent" "$SRC_SUM" "$(sha256sum "$E2E_TMP/ab.out" 2>/dev/null | cut -d' ' -f1)"

step "B -> A, tunnel IPv6"
check "transfer B -> A completes" tcp_transfer ba "$NS_A" "$TUN_A6" "$NS_B" "[$TUN_A6]"
cat "$E2E_TMP/ba.rate" 2>/dev/null
check_eq "received size" "$((TCP_MIB * 1024 * 1024))" "$(stat -c %s "$E2E_TMP/ba.out" 2>/dev/null)"
check_eq "sha256 of received data equals sent" "$SRC_SUM" "$(sha256sum "$E2E_TMP/ba.out" 2>/dev/null | cut -d' ' -f1)"

check "both daemons still alive" eval "daemon_alive $IF_A && daemon_alive $IF_B"
check "tunnel still answers pings" ping_ok "$NS_B" "$TUN_A4" 3
e2e_finish
