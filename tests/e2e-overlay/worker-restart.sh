#!/usr/bin/env bash
# worker-restart: a worker's daemon restarts without re-joining. A leader and two workers; host 2 gets
# SIGTERM (clean exit), the others keep talking and do not reach it, it starts again from its state
# file: same id, address and key, no new member or token use on the leader, and pings to and from it
# resume within a bounded time. Then host 3 gets SIGKILL (stale UAPI and control sockets left behind)
# and restarts just as well.
. "$(dirname "$0")/lib-overlay.sh"
ov_init worker-restart
ov_need_daemon
ov_hosts 3

identity() { ovpy get "$(ov_state "$1")" config | python3 -c 'import json,sys; c=json.load(sys.stdin); print(c["node_id"], c["node_ip"], c["public_key"])'; }

step "leader and two workers"
must "init-leader on host 1" ov_init_leader 1 10.200.0.0/16
must "leader daemon up" ov_start 1
for i in 2 3; do must "host $i joins" ov_add_node 1 "$i"; done
ov_mesh_check "all pairs ping" 10 1 2 3
ovpy view "$(ov_state 1)" tokens >"$E2E_TMP/leader.before"

# restart X SIGNAL
restart() {
	local x=$1 sig=$2 id0 pid0 others=() j
	for j in 1 2 3; do [ "$j" = "$x" ] || others+=("$j"); done
	step "restart host $x's daemon after SIG$sig"
	id0=$(identity "$x"); pid0=$(ov_pid "$x")
	if [ "$sig" = TERM ]; then
		check "host $x's daemon stops cleanly" ov_stop "$x"
	else
		check "host $x's daemon killed" ov_kill "$x"
		check "SIGKILL left the UAPI socket file behind (the restart must cope)" test -e "$E2E_WG_SOCK_DIR/${OV_IF[$x]}.sock"
	fi
	check "host $x's state file is kept" test -f "$(ov_state "$x")"
	ov_mesh_check "hosts ${others[*]} still ping each other" 5 "${others[@]}"
	check "host ${others[0]} does not reach host $x while it is down" ov_unreachable "${OV_NS[${others[0]}]}" "${OV_IP[$x]}"
	must "host $x's daemon starts again from its state" ov_start "$x"
	check "it is a new process" test "$(ov_pid "$x")" != "$pid0"
	check "same node id, address and key (no re-join)" test "$(identity "$x")" = "$id0"
	ov_mesh_check "pings to and from host $x resume" 10 1 2 3
	for j in 1 2 3; do check "host $j status --json" ov_status_check "$j" 1 1 2 3; done
	ovpy view "$(ov_state 1)" tokens >"$E2E_TMP/leader.after"
	check "the leader's members, allocations and tokens are unchanged" cmp "$E2E_TMP/leader.before" "$E2E_TMP/leader.after"
}
restart 2 TERM
restart 3 KILL

step "stop everything"
for i in 3 2 1; do check "host $i daemon stops cleanly" ov_stop "$i"; done
e2e_finish
