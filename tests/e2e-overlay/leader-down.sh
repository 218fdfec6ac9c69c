#!/usr/bin/env bash
# leader-down: the data plane does not depend on the leader. A leader and three workers; the leader's
# daemon gets SIGTERM (clean exit); the workers keep pinging each other (right away and 5 s later, after
# they noticed the leader is gone), and their status still works and lists the same peers. The
# leader comes back: everyone reconverges without re-joining (same ids, addresses and keys everywhere,
# no new member, no token used), all pairs ping, and a new join afterwards reaches every node within 5 s
# (so the restarted leader pushes to the workers again).
. "$(dirname "$0")/lib-overlay.sh"
ov_init leader-down
ov_need_daemon
ov_hosts 5

# identity I: node I's id, address and key from its state file.
identity() { ovpy get "$(ov_state "$1")" config | python3 -c 'import json,sys; c=json.load(sys.stdin); print(c["node_id"], c["node_ip"], c["public_key"])'; }

step "leader and three workers"
must "init-leader on host 1" ov_init_leader 1 10.200.0.0/16
must "leader daemon up" ov_start 1
for i in 2 3 4; do must "host $i joins" ov_add_node 1 "$i"; done
ov_mesh_check "all pairs of 1..4 ping" 10 1 2 3 4
for i in 1 2 3 4; do echo "$i $(identity "$i")"; done >"$E2E_TMP/ids.before"
ovpy view "$(ov_state 1)" tokens >"$E2E_TMP/leader.before"

step "stop the leader (SIGTERM)"
check "the leader's daemon stops cleanly" ov_stop 1
ov_mesh_check "workers 2, 3, 4 still ping each other" 5 2 3 4
# A worker notices through TCP keepalive on its membership connection (the leader's FIN cannot get out
# once its engine has stopped), so allow it 15 s.
leader_lost() {
	ov_status_json "$1" "$E2E_TMP/status.$1.json" >/dev/null &&
		python3 -c "import json,sys; sys.exit(json.load(open('$E2E_TMP/status.$1.json')).get('leader_connected', False) is not False)"
}
for i in 2 3 4; do check "host $i's status reports the leader as not connected (within 15 s)" wait_until 15 leader_lost "$i"; done
ov_mesh_check "workers 2, 3, 4 still ping each other after they noticed" 5 2 3 4
for i in 2 3 4; do
	check "host $i status works with the leader down and lists the same peers" ov_peers_are "$i" 1 2 3 4
done
check "no worker's daemon exited" eval "ov_alive 2 && ov_alive 3 && ov_alive 4"

step "restart the leader"
must "leader daemon up again" ov_start 1
ov_mesh_check "all pairs of 1..4 ping again" 10 1 2 3 4
for i in 1 2 3 4; do echo "$i $(identity "$i")"; done >"$E2E_TMP/ids.after"
check "no node re-joined: ids, addresses and keys unchanged" cmp "$E2E_TMP/ids.before" "$E2E_TMP/ids.after"
ovpy view "$(ov_state 1)" tokens >"$E2E_TMP/leader.after"
check "the leader's members, allocations and tokens are unchanged" cmp "$E2E_TMP/leader.before" "$E2E_TMP/leader.after"
worker_connected() {
	ov_status_json "$1" "$E2E_TMP/status.$1.json" >/dev/null &&
		python3 -c "import json,sys; sys.exit(json.load(open('$E2E_TMP/status.$1.json')).get('leader_connected', True) is not True)"
}
for i in 2 3 4; do check "host $i reconnects to the leader (bounded)" wait_until 10 worker_connected "$i"; done
for i in 1 2 3 4; do check "host $i status --json after the restart" ov_status_check "$i" 1 1 2 3 4; done

step "a new join after the restart"
must "host 5 joins" ov_add_node 1 5
ov_join_check "host 5 <-> every node within ${OV_CONVERGE_S}s (the leader pushes to the reconnected workers)" 5 1 2 3 4
for i in 2 3 4; do check "host $i lists host 5" ov_peers_are "$i" 1 2 3 4 5; done

step "stop everything"
for i in 5 4 3 2 1; do check "host $i daemon stops cleanly" ov_stop "$i"; done
e2e_finish
