#!/usr/bin/env bash
# mesh3: the IPv4 overlay on three hosts. init-leader on host 1 (10.200.0.0/16, endpoint on the underlay),
# its daemon, then hosts 2 and 3 join (host 2 with the token init-leader printed and an explicit
# --endpoint, host 3 with one from `token create` and no --endpoint) and start their daemons. Each join
# must give reachability both ways within 5 s; then all pairs ping, `status --json` is checked field by
# field on every node, `peers --json` agrees, `wg show` works on every interface, the files and
# sockets have the documented modes, and SIGTERM leaves a clean system.
. "$(dirname "$0")/lib-overlay.sh"
ov_init mesh3
ov_hosts 3
CIDR=10.200.0.0/16

step "init-leader on host 1 (text output)"
ov_cli_to 1 "$E2E_TMP/init.txt" "$E2E_TMP/init.err" init-leader --cidr "$CIDR" --endpoint "${OV_UL[1]}:$OV_PORT" \
	--hostname "${OV_HN[1]}" --interface "${OV_IF[1]}"
must "init-leader exits 0" test $? = 0
must "state.json written" ov_learn 1
sed 's/^/   | /' "$E2E_TMP/init.txt"
check "init-leader prints the overlay address ${OV_IP[1]}" grep -qF "${OV_IP[1]}" "$E2E_TMP/init.txt"
check "init-leader prints the public key" grep -qF "${OV_KEY[1]}" "$E2E_TMP/init.txt"
TOKEN1=$(grep -oE 'zlj1\.[A-Za-z0-9_-]+' "$E2E_TMP/init.txt" | head -n 1)
check "init-leader prints a join token" test -n "$TOKEN1"
check "the leader's address is inside $CIDR" python3 -c "import ipaddress,sys; sys.exit(ipaddress.ip_address('${OV_IP[1]}') not in ipaddress.ip_network('$CIDR'))"
check "state.json is mode 0600" test "$(stat -c %a "$(ov_state 1)")" = 600
expect_fail "init-leader again is refused" 'already initialized|exists' 1 init-leader --cidr "$CIDR" \
	--endpoint "${OV_UL[1]}:$OV_PORT" --interface "${OV_IF[1]}"

ov_need_daemon
step "start zl-overlayd on host 1"
must "leader daemon up (control socket, interface, UAPI socket, TCP :$OV_PORT)" ov_start 1
check "control socket is mode 0660" test "$(stat -c %a "$(ov_sock 1)")" = 660
check "interface ${OV_IF[1]} has ${OV_IP[1]}/16" eval "ip -n ${OV_NS[1]} -o addr show dev ${OV_IF[1]} | grep -qF ' ${OV_IP[1]}/16 '"
check "route for $CIDR through ${OV_IF[1]}" eval "ip -n ${OV_NS[1]} route show $CIDR | grep -qw ${OV_IF[1]}"
check "leader status --json before any join (no peers)" ov_status_check 1 0 1

step "token create prints the token alone"
ov_cli 1 token create >"$E2E_TMP/tok.out" 2>"$E2E_TMP/tok.err"
check "token create exits 0" test $? = 0
check "stdout is exactly one line: the token" eval "[ \$(wc -l <'$E2E_TMP/tok.out') = 1 ] && grep -qxE 'zlj1\.[A-Za-z0-9_-]+' '$E2E_TMP/tok.out'"
TOKEN2=$(cat "$E2E_TMP/tok.out")

step "host 2 joins with init-leader's token (--endpoint given), host 3 with token create's (none)"
OV_T0=$(ov_now)
must "join host 2" ov_join 2 "$TOKEN1" --endpoint "${OV_UL[2]}:$OV_PORT"
check "host 2 got an address in $CIDR, not the leader's" python3 -c "import ipaddress,sys; a=ipaddress.ip_address('${OV_IP[2]}'); sys.exit(a not in ipaddress.ip_network('$CIDR') or '${OV_IP[2]}' == '${OV_IP[1]}')"
check "host 2 state.json is mode 0600" test "$(stat -c %a "$(ov_state 2)")" = 600
must "start host 2's daemon" ov_start 2
ov_join_check "host 1 <-> host 2 within ${OV_CONVERGE_S}s of the join" 2 1
OV_T0=$(ov_now)
must "join host 3" ov_join 3 "$TOKEN2"
must "start host 3's daemon" ov_start 3
ov_join_check "host 3 <-> hosts 1, 2 within ${OV_CONVERGE_S}s of the join" 3 1 2
check "three distinct overlay addresses" test "$(printf '%s\n' "${OV_IP[1]}" "${OV_IP[2]}" "${OV_IP[3]}" | sort -u | wc -l)" = 3

step "all pairs ping over the overlay"
ov_mesh_check "all 6 ordered pairs ping" 10 1 2 3

step "status --json on every node, field by field"
for i in 1 2 3; do
	check "host $i status --json: itself, both peers, handshakes and traffic, underlay endpoints" ov_status_check "$i" 1 1 2 3
done
check "host 2 status: is_leader false, leader_ip is the leader's" python3 -c "
import json,sys; s=json.load(open('$E2E_TMP/status.2.json')); sys.exit(not (s['is_leader'] is False and s.get('leader_ip') == '${OV_IP[1]}'))"
check "human-readable status on host 1 mentions both workers" eval "ov_cli 1 status >'$E2E_TMP/st.txt' 2>&1 &&
	grep -qF '${OV_IP[2]}' '$E2E_TMP/st.txt' && grep -qF '${OV_IP[3]}' '$E2E_TMP/st.txt'"
sed 's/^/   | /' "$E2E_TMP/st.txt"
check "peers --json on host 3 lists hosts 1 and 2" eval "ov_cli 3 peers --json >'$E2E_TMP/peers.json' &&
	[ \"\$(ovpy peer-ips '$E2E_TMP/peers.json' | tr '\n' ' ')\" = \"\$(printf '%s\n' ${OV_IP[1]} ${OV_IP[2]} | sort | tr '\n' ' ')\" ]"
check "global option after the command: status --data-dir DIR --json" eval \
	"timeout 10 ip netns exec ${OV_NS[2]} $OV_CLI status --data-dir ${OV_DIR[2]} --json | python3 -m json.tool >/dev/null"

step "wg show on every interface"
for i in 1 2 3; do check "wg show ${OV_IF[$i]} on host $i: its key, port $OV_PORT, the two others as peers" ov_wg_check "$i" 1 2 3; done

step "SIGTERM: each daemon removes its interface, routes and sockets"
for i in 3 2 1; do check "host $i daemon stops cleanly" ov_stop "$i"; done
e2e_finish
