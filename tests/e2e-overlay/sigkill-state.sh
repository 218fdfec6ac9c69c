#!/usr/bin/env bash
# sigkill-state: crash safety of the state files. A leader (host 1) and a pool of workers (hosts 2..7) go
# through OV_ROUNDS rounds of random churn (join, remove-peer, leave); in every round a random daemon
# (the leader half of the time) is killed with SIGKILL at a random moment while the operation runs, then
# restarted. After every round all state files must parse, and a history of every allocation the
# leader and the workers' own state files show is kept. At the end every daemon is restarted and:
# every state file parses; the leader's allocations equal its members (no leak, no duplicate), slices
# do not overlap; no address was ever given to two nodes (history); every worker is either a member
# with the address the leader has for it, or a node removed while it was down (stale, reported);
# members the leader admitted but whose join answer was lost (ghosts) can be removed; and the mesh of
# the leader and its members reforms (all pairs ping, status lists exactly the members).
# OV_SEED reproduces a run; OV_ROUNDS (default 20) sets its length.
. "$(dirname "$0")/lib-overlay.sh"
ov_init sigkill-state
ov_need_daemon
SEED=${OV_SEED:-$((RANDOM * 32768 + RANDOM))}
ROUNDS=${OV_ROUNDS:-20}
RANDOM=$SEED
say "# seed $SEED, $ROUNDS rounds (OV_SEED=$SEED reproduces the sequence of choices)"
WORKERS=(2 3 4 5 6 7)
ov_hosts 7
declare -a REMOVING   # a removal (remove-peer or leave) was issued for this node since its last join

has_state() { [ -f "$(ov_state "$1")" ]; }
pick() { local a=("$@"); printf '%s' "${a[RANDOM % ${#a[@]}]}"; }

# in_leader I: the leader's state lists node I's key.
in_leader() { has_state "$1" && grep -qF "\"${OV_KEY[$1]}\"" "$(ov_state 1)"; }

# recycle: a node removed while it was down keeps a stale state and cannot join again; the operator's
# fix is to stop it and wipe its data dir. Only done once the leader no longer lists it.
recycle() {
	local i
	for i in "${WORKERS[@]}"; do
		[ "${REMOVING[$i]:-0}" = 1 ] && has_state "$i" && ! in_leader "$i" || continue
		ov_alive "$i" && { ov_stop "$i" >/dev/null || ov_kill "$i"; }
		rm -rf "${OV_DIR[$i]}"
		say "   . round $r: node $i was removed while down: stopped and wiped (stale state)"
	done
}

# snapshot_all LABEL: the leader and every worker whose state is not known to be stale.
snapshot_all() {
	local nodes=(1) i
	for i in "${WORKERS[@]}"; do [ "${REMOVING[$i]:-0}" = 1 ] || nodes+=("$i"); done
	ov_snapshot "$1" "${nodes[@]}"
}

step "leader and two workers to start with"
must "init-leader on host 1" ov_init_leader 1 10.200.0.0/16
must "leader daemon up" ov_start 1
for i in 2 3; do must "host $i joins" ov_add_node 1 "$i"; done
snapshot_all 0

step "$ROUNDS rounds of churn with SIGKILL"
join_failures=0; kills=0; r=0
for r in $(seq "$ROUNDS"); do
	recycle
	free=(); members=()
	for i in "${WORKERS[@]}"; do
		if ! has_state "$i"; then ov_alive "$i" || free+=("$i")
		elif [ "${REMOVING[$i]:-0}" != 1 ]; then members+=("$i"); fi
	done
	ops=()
	[ ${#free[@]} -gt 0 ] && ops+=(join join)
	[ ${#members[@]} -gt 0 ] && ops+=(remove leave)
	op=$(pick "${ops[@]}")
	case $op in join) t=$(pick "${free[@]}") ;; *) t=$(pick "${members[@]}") ;; esac
	running=(); for i in "${WORKERS[@]}"; do ov_alive "$i" && running+=("$i"); done
	if [ $((RANDOM % 2)) = 0 ] || [ ${#running[@]} = 0 ]; then victim=1; else victim=$(pick "${running[@]}"); fi
	# Half the kills land in the first 40 ms (inside the operation itself), the rest up to 250 ms.
	if [ $((RANDOM % 2)) = 0 ]; then delay_ms=$((RANDOM % 40)); else delay_ms=$((RANDOM % 250)); fi
	# The victim's pid is looked up before the operation starts, so the kill itself takes no time.
	vpid=; ov_alive "$victim" && vpid=$(ov_pid "$victim")
	rm -f "$E2E_TMP/op.rc"
	if [ "$op" = join ]; then
		tok=$(ov_token 1) || { e2e_fail "round $r: token create failed" "$E2E_TMP/token.err"; continue; }
		( ov_cli "$t" join --token "$tok" --hostname "${OV_HN[$t]}" --interface "${OV_IF[$t]}" \
			>"$E2E_TMP/op.out" 2>&1; echo $? >"$E2E_TMP/op.rc" ) &
	elif [ "$op" = remove ]; then
		REMOVING[$t]=1
		( ov_cli 1 remove-peer "${OV_ID[$t]}" >"$E2E_TMP/op.out" 2>&1; echo $? >"$E2E_TMP/op.rc" ) &
	else
		REMOVING[$t]=1
		( ov_cli "$t" leave >"$E2E_TMP/op.out" 2>&1; echo $? >"$E2E_TMP/op.rc" ) &
	fi
	op_pid=$!
	sleep "$(printf '0.%03d' "$delay_ms")"
	killed=-
	if [ -n "$vpid" ] && kill -KILL "$vpid" 2>/dev/null; then
		ov_kill "$victim" && killed=$victim && kills=$((kills + 1))
	fi
	wait "$op_pid"
	rc=$(cat "$E2E_TMP/op.rc" 2>/dev/null || echo '?')
	say "   . round $r: $op node $t, SIGKILL node $killed after ${delay_ms} ms, exit $rc: $(head -n 1 "$E2E_TMP/op.out" | cut -c1-90)"
	# Recovery: the leader first, then whoever was killed (if it still has a state to run).
	if ! ov_alive 1; then must "round $r: the leader restarts" ov_start 1; fi
	if [ "$op" = join ]; then
		if has_state "$t"; then
			REMOVING[$t]=0
			must "round $r: node $t's state is readable" ov_learn "$t"
			must "round $r: node $t's daemon starts after its join" ov_start "$t"
		elif [ "$killed" != 1 ]; then
			e2e_fail "round $r: join of node $t failed although the leader was not killed" "$E2E_TMP/op.out"
		else
			join_failures=$((join_failures + 1))
		fi
	fi
	if [ "$killed" != - ] && [ "$killed" != 1 ] && has_state "$killed" && ! ov_alive "$killed"; then
		must "round $r: node $killed restarts from its state" ov_start "$killed"
	fi
	snapshot_all "$r"
	grep -q " parse-error " "$E2E_TMP/history" && e2e_fail "round $r: a state file does not parse" "$E2E_TMP/history"
done
say "   . $kills daemons killed, $join_failures joins lost to a killed leader"

step "restart every daemon and check the states"
for i in 1 "${WORKERS[@]}"; do
	if has_state "$i" && ! ov_alive "$i"; then must "node $i restarts from its state" ov_start "$i"; fi
done
sleep 1    # let removed-and-notified workers finish retiring
states=(); for i in "${WORKERS[@]}"; do has_state "$i" && states+=("$(ov_state "$i")"); done
ovpy classify "$(ov_state 1)" "${states[@]}" >"$E2E_TMP/classify.out" 2>&1
check "leader state consistent; every worker a member with the leader's address, or stale" test $? = 0 ||
	sed 's/^/       | /' "$E2E_TMP/classify.out"
sed 's/^/   . /' "$E2E_TMP/classify.out"
snapshot_all final
check "no address was ever given to two nodes, no state file ever failed to parse" ovpy history "$E2E_TMP/history"
say "   . $(cat "$E2E_TMP/check.out")"
check "no temporary state file left in a running node's data dir" eval \
	"! ls ${OV_DIR[1]}/.state.json.tmp-* $(for i in "${WORKERS[@]}"; do printf '%s ' "${OV_DIR[$i]}/.state.json.tmp-*"; done) 2>/dev/null | grep -q ."

step "ghosts are removed, stale nodes stopped, the mesh reforms"
for g in $(awk '$1 == "ghost" {print $2}' "$E2E_TMP/classify.out"); do
	check "remove-peer ghost $g (admitted by the leader, answer lost)" ov_cli 1 remove-peer "$g"
done
for i in $(awk '$1 == "stale" {print $2}' "$E2E_TMP/classify.out"); do
	check "stop stale node $i (then wipe its data dir)" ov_stop "$i"
	rm -rf "${OV_DIR[$i]}"
done
check "the leader's allocations equal its members" ov_allocs_match 1
mesh=(1); for i in $(awk '$1 == "member" {print $2}' "$E2E_TMP/classify.out"); do mesh+=("$i"); done
say "   . members: ${mesh[*]}"
for i in "${mesh[@]}"; do check "node $i lists exactly the members" wait_until 10 ov_peers_are "$i" "${mesh[@]}"; done
ov_mesh_check "the ${#mesh[@]} members ping each other" 15 "${mesh[@]}"
new=$(for i in "${WORKERS[@]}"; do has_state "$i" || ov_alive "$i" || { echo "$i"; break; }; done)
if [ -n "$new" ]; then
	must "node $new joins the reformed mesh" ov_add_node 1 "$new"
	ov_join_check "node $new <-> every member within ${OV_CONVERGE_S}s" "$new" "${mesh[@]}"
else
	say "   . every worker is a member: no join after the reform"
fi

step "stop everything"
for i in "${WORKERS[@]}" 1; do ov_alive "$i" && check "node $i daemon stops cleanly" ov_stop "$i"; done
e2e_finish
