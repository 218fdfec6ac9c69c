#!/usr/bin/env bash
# churn: join, leave and remove-peer. A leader and three workers; host 3 leaves (`zl-overlay leave`), host
# 4 is removed by the leader (`remove-peer HOSTNAME`); each disappears from every remaining node's status
# and `wg show` within 5 s, its daemon retires (exits, state deleted, interface gone) and its address
# and slice are freed on the leader. Then host 5 joins and host 3 joins again (new key, same data dir),
# both reachable within 5 s; host 5 is removed by overlay address and host 2 by node id; the two left
# still talk, and the leader's allocations always equal its members.
. "$(dirname "$0")/lib-overlay.sh"
ov_init churn
ov_need_daemon
ov_hosts 5

# gone_everywhere X NODES...: X is listed by none of NODES (bounded), and freed on the leader (node 1).
gone_everywhere() {
	local x=$1 r; shift
	for r in "$@"; do
		check "host $r no longer lists host $x (status and wg show)" wait_until 5 ov_not_listed "$r" "$x"
	done
	check "the leader freed host $x's address ${OV_IP[$x]} and slice" ov_freed 1 "$x"
	check "the leader's allocations equal its members" ov_allocs_match 1
}

# retired X: X's daemon exits by itself, its state is deleted and its interface and sockets are gone.
retired() {
	local x=$1
	check "host $x's daemon exits by itself" ov_wait_exit "$x" 10
	check "host $x's state.json is deleted" test ! -e "$(ov_state "$x")"
	check "host $x's interface and sockets are gone" eval "! ov_link_exists $x && [ ! -e $E2E_WG_SOCK_DIR/${OV_IF[$x]}.sock ] && [ ! -e $(ov_sock "$x") ]"
}

step "leader and three workers"
must "init-leader on host 1" ov_init_leader 1 10.200.0.0/16
must "leader daemon up" ov_start 1
for i in 2 3 4; do
	must "host $i joins" ov_add_node 1 "$i"
	ov_join_check "host $i reachable both ways" "$i" $(seq 1 $((i - 1)))
done
ov_mesh_check "all pairs of 1..4 ping" 10 1 2 3 4
check "the leader's allocations equal its members" ov_allocs_match 1

step "host 3 leaves"
ov_cli 3 leave >"$E2E_TMP/leave.out" 2>&1
check "zl-overlay leave exits 0" test $? = 0
sed 's/^/   | /' "$E2E_TMP/leave.out"
retired 3
gone_everywhere 3 1 2 4
ov_mesh_check "1, 2, 4 still ping each other" 5 1 2 4
check "host 1 no longer reaches host 3's old address" ov_unreachable "${OV_NS[1]}" "${OV_IP[3]}"

step "the leader removes host 4 by hostname"
ov_cli 1 remove-peer "${OV_HN[4]}" >"$E2E_TMP/rm.out" 2>&1
check "remove-peer ${OV_HN[4]} exits 0 and names the node" eval "[ $? = 0 ] && grep -qF '${OV_ID[4]}' '$E2E_TMP/rm.out'"
retired 4
gone_everywhere 4 1 2
ov_mesh_check "1 and 2 still ping each other" 5 1 2
expect_fail "remove-peer of the removed node again" "${OV_HN[4]}|unknown|no such|not a member" 1 remove-peer "${OV_HN[4]}"

step "host 5 joins; host 3 joins again with the same data dir"
old3_ip=${OV_IP[3]}; old3_key=${OV_KEY[3]}; freed="${OV_IP[3]} ${OV_IP[4]}"
must "host 5 joins" ov_add_node 1 5
ov_join_check "host 5 reachable both ways" 5 1 2
must "host 3 joins again" ov_add_node 1 3
ov_join_check "host 3 (re-joined) reachable both ways" 3 1 2 5
check "host 3 has a new key" test "${OV_KEY[3]}" != "$old3_key"
say "   . re-join: host 3 ${old3_ip} -> ${OV_IP[3]}, host 5 ${OV_IP[5]} (freed: $freed)"
for r in 1 2 5 3; do check "host $r lists exactly the current members" ov_peers_are "$r" 1 2 3 5; done
check "the leader's allocations equal its members" ov_allocs_match 1
ov_mesh_check "all pairs of 1, 2, 3, 5 ping" 10 1 2 3 5

step "remove host 5 by overlay address and host 2 by node id"
check "remove-peer ${OV_IP[5]}" ov_cli 1 remove-peer "${OV_IP[5]}"
retired 5
gone_everywhere 5 1 2 3
check "remove-peer ${OV_ID[2]}" ov_cli 1 remove-peer "${OV_ID[2]}"
retired 2
gone_everywhere 2 1 3
for r in 1 3; do check "host $r lists exactly the current members" ov_peers_are "$r" 1 3; done
ov_mesh_check "1 and 3 still ping each other" 5 1 3

step "stop the remaining daemons"
for i in 3 1; do check "host $i daemon stops cleanly" ov_stop "$i"; done
e2e_finish
