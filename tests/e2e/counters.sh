#!/usr/bin/env bash
# counters: `wg show IF transfer` must count whole WireGuard UDP payloads exactly:
#   handshake initiation 148, response 92, keepalive 32,
#   data = 32 + plaintext padded to a multiple of 16, the padding capped at the sender's MTU.
# A fresh pair, persistent keepalive off, A initiates with one ping; then known pings of several sizes
# (IPv4 and IPv6, both directions); then the passive keepalive A sends 10 s after its last receive.
# Every step asserts the exact totals on both sides (so a stray packet would fail it too).
# Usage: IMPL_A=zl-wg IMPL_B=wireguard-go tests/e2e/counters.sh
. "$(dirname "$0")/lib.sh"
IMPL_A=${IMPL_A:-zl-wg}; IMPL_B=${IMPL_B:-zl-wg}
e2e_init counters
say "# A=$IMPL_A B=$IMPL_B"
setup_pair
tunnel_pair "$IMPL_A" "$IMPL_B" 4 A
MTU_A=$(ip -n "$NS_A" -o link show dev "$IF_A" | grep -o 'mtu [0-9]*' | cut -d' ' -f2)
MTU_B=$(ip -n "$NS_B" -o link show dev "$IF_B" | grep -o 'mtu [0-9]*' | cut -d' ' -f2)
say "# tunnel MTU A=$MTU_A B=$MTU_B"

# data_len IP_PACKET_LEN SENDER_MTU: size of the WireGuard message carrying it.
data_len() {
	local p=$(( ($1 + 15) / 16 * 16 ))
	[ "$p" -gt "$2" ] && p=$(( $1 > $2 ? $1 : $2 ))
	echo $(( 32 + p ))
}
# Expected totals, as "rx tx" for A's view of B (B's view of A is the mirror image).
A_RX=0; A_TX=0

expect_totals() {
	local desc=$1
	check "$desc: A counts rx=$A_RX tx=$A_TX" wait_until 2 transfer_is "$NS_A" "$IF_A" "$PUB_B" "$A_RX $A_TX"
	check "$desc: B counts rx=$A_TX tx=$A_RX" wait_until 2 transfer_is "$NS_B" "$IF_B" "$PUB_A" "$A_TX $A_RX"
	say "   A: $(transfer "$NS_A" "$IF_A" "$PUB_B")   B: $(transfer "$NS_B" "$IF_B" "$PUB_A")"
}

# pings FROM(A|B) FAMILY COUNT PAYLOAD: COUNT echo requests and replies of a known size.
pings() {
	local from=$1 fam=$2 n=$3 s=$4 ns dst hdr req rep
	if [ "$fam" = 4 ]; then hdr=28; else hdr=48; fi
	if [ "$from" = A ]; then ns=$NS_A; [ "$fam" = 4 ] && dst=$TUN_B4 || dst=$TUN_B6
	else ns=$NS_B; [ "$fam" = 4 ] && dst=$TUN_A4 || dst=$TUN_A6; fi
	check "$n IPv$fam pings of $s bytes from $from, all answered" \
		nsx "$ns" ping -n -q -c "$n" -i 0.05 -W 2 -s "$s" "$dst"
	if [ "$from" = A ]; then
		A_TX=$((A_TX + n * $(data_len $((hdr + s)) "$MTU_A")))
		A_RX=$((A_RX + n * $(data_len $((hdr + s)) "$MTU_B")))
	else
		A_RX=$((A_RX + n * $(data_len $((hdr + s)) "$MTU_B")))
		A_TX=$((A_TX + n * $(data_len $((hdr + s)) "$MTU_A")))
	fi
	expect_totals "after $n x $s-byte IPv$fam pings from $from"
}

step "no traffic before the first packet"
sleep 1
expect_totals "idle"

step "first ping: handshake (148 + 92) and one data message each way"
check "A pings B once" nsx "$NS_A" ping -n -q -c 1 -W 3 "$TUN_B4"
A_TX=$((148 + $(data_len 84 "$MTU_A"))); A_RX=$((92 + $(data_len 84 "$MTU_B")))
expect_totals "after the handshake"

step "pings of known sizes (padding to 16, capped at the MTU)"
pings A 4 3 0       # IP 28   -> 32
pings A 4 3 100     # IP 128  -> 128
pings B 4 2 1001    # IP 1029 -> 1040
pings A 4 2 $((MTU_A - 28))   # IP = MTU -> not padded past the MTU
pings B 6 2 $((MTU_B - 48 - 5)) # IP = MTU-5 -> padded only up to the MTU
pings A 6 3 100     # IP 148  -> 160 (A pings last: A is the last to receive data)

step "passive keepalive: A got data last, sends one 32-byte keepalive after 10 s"
A_TX=$((A_TX + 32))
check "A's tx grows by exactly 32 within 15 s" wait_until 15 transfer_is "$NS_A" "$IF_A" "$PUB_B" "$A_RX $A_TX"
sleep 1  # and nothing else follows (B must not answer a keepalive)
expect_totals "after the keepalive"
check "both daemons alive" eval "daemon_alive $IF_A && daemon_alive $IF_B"
e2e_finish
