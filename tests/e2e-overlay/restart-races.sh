#!/usr/bin/env bash
# restart-races: membership operations issued right after the leader's daemon came back, while the
# workers' membership connections still belong to the previous leader process (the leader's stop could
# not send FIN through its tunnel, so a worker only notices on its next keepalive probe or write).
#   1. SIGKILL + restart the leader, then at once `leave` on a worker: it leaves (exit 0), retires and
#      disappears everywhere.
#   2. SIGTERM + restart the leader, then at once `remove-peer`: the removed worker still learns it and
#      retires (its address is free for the next join, so it must not keep running on it).
#   3. SIGKILL + restart the leader, then at once a join: every member reaches the new node within 5 s.
. "$(dirname "$0")/lib-overlay.sh"
ov_init restart-races
ov_need_daemon
ov_hosts 5

retired() {
	local x=$1
	check "host $x's daemon exits by itself (within 15 s)" ov_wait_exit "$x" 15
	check "host $x's state.json is deleted" test ! -e "$(ov_state "$x")"
}

step "leader and three workers"
must "init-leader on host 1" ov_init_leader 1 10.200.0.0/16
must "leader daemon up" ov_start 1
for i in 2 3 4; do must "host $i joins" ov_add_node 1 "$i"; done
ov_mesh_check "all pairs ping" 10 1 2 3 4

step "1. leave right after the leader was killed and restarted"
check "leader killed" ov_kill 1
must "leader restarted" ov_start 1
t0=$(ov_now)
ov_cli 2 leave >"$E2E_TMP/leave.out" 2>&1; rc=$?
check "leave on host 2 succeeds ($(ov_elapsed "$t0") s)" eval "[ $rc = 0 ] || { cat '$E2E_TMP/leave.out'; false; }"
retired 2
for r in 1 3 4; do check "host $r no longer lists host 2" wait_until 5 ov_not_listed "$r" 2; done

step "2. remove-peer right after the leader was stopped and restarted"
check "leader stopped" ov_stop 1
must "leader restarted" ov_start 1
check "remove-peer ${OV_HN[3]}" ov_cli 1 remove-peer "${OV_HN[3]}"
retired 3
for r in 1 4; do check "host $r no longer lists host 3" wait_until 5 ov_not_listed "$r" 3; done

step "3. a join right after the leader was killed and restarted"
ov_alive 2 && ov_stop 2 >/dev/null; ov_alive 3 && ov_stop 3 >/dev/null   # (if 1 or 2 failed)
check "leader killed" ov_kill 1
must "leader restarted" ov_start 1
must "host 5 joins at once" ov_add_node 1 5
ov_join_check "host 5 <-> hosts 1 and 4 within ${OV_CONVERGE_S}s of the join" 5 1 4

step "stop everything"
for i in 5 4 3 2 1; do ov_alive "$i" && check "host $i daemon stops cleanly" ov_stop "$i"; done
e2e_finish
