# shellcheck shell=bash
# Helpers for the overlay end-to-end scenarios (zl-overlay CLI + zl-overlayd). Source it, call ov_init,
# build hosts with ov_switch / ov_host, write checks, call e2e_finish.
#
# Built on tests/e2e/lib.sh (assertions, namespaces, pid-exact cleanup, leftovers check), with:
# - a "switch" namespace holding a Linux bridge, and one namespace per host wired to it by a veth pair
#   created inside the namespaces (never in the root one); host i has the underlay address 192.0.2.i/24;
# - per-node data dirs under the scenario's mktemp dir ($E2E_TMP/n<i>) and distinct interface names
#   zo<pid%10000><i> (the UAPI socket /var/run/wireguard/<if>.sock is machine-wide);
# - daemons started in the foreground in the background, recorded by pid with a tag unique to the node
#   (its --data-dir and --interface), so the cleanup only ever signals what this run started;
# - a python3 helper (ovpy) for JSON checks, token surgery and raw control-socket frames.
# The cleanup also removes every UAPI socket of our interface names and checks that no control socket,
# no namespace and no process of the run (anything whose command line names our temp dir) is left.

. "$(dirname "${BASH_SOURCE[0]}")/../e2e/lib.sh"

# shellcheck disable=SC2034 # used by lib.sh's ns_name
E2E_NS_PREFIX="zlov-${E2E_RUN_ID:-$$}-$$-"
OV_BIN=${OV_BIN:-$E2E_ROOT/build/bin}
OV_CLI=$OV_BIN/zl-overlay
OV_DAEMON=$OV_BIN/zl-overlayd
OV_PORT=${OV_PORT:-51820}
OV_CMD_TIMEOUT=${OV_CMD_TIMEOUT:-20}      # any single CLI call
OV_START_TIMEOUT=${OV_START_TIMEOUT:-10}  # a daemon's control socket and interface appear
OV_CONVERGE_S=${OV_CONVERGE_S:-5}         # the issue: every node reaches a new one within 5 s of its join
OV_SUBNET=192.0.2

declare -a OV_NS OV_DIR OV_IF OV_UL OV_HN OV_IP OV_KEY OV_ID

# ---------------------------------------------------------------- lifecycle

ov_init() {
	e2e_init "$1"
	: >"$E2E_TMP/history"
	say "# binaries: $OV_CLI, $OV_DAEMON"
	command -v python3 >/dev/null || { say "python3 is required"; exit 1; }
	[ -x "$OV_CLI" ] || { e2e_fail "no $OV_CLI (run make)"; exit 1; }
}

# ov_need_daemon: scenarios that need zl-overlayd stop here, clearly, when it is not built yet.
ov_need_daemon() {
	[ -x "$OV_DAEMON" ] && return 0
	e2e_fail "no $OV_DAEMON (run make; zl-overlayd not built yet)"
	exit 1
}

# Keep lib.sh's leftovers check and add ours: control sockets of our data dirs, and any process whose
# command line names our temp dir (a daemon that forked or was never recorded would show up here).
eval "ov_lib_leftovers() $(declare -f e2e_leftovers | sed 1d)"
eval "ov_lib_cleanup() $(declare -f e2e_cleanup | sed 1d)"

# ov_run_pids: pids (not ours as shell, not zombies) whose command line mentions $E2E_TMP.
ov_run_pids() {
	local d pid cmd
	[ -n "$E2E_TMP" ] || return 0
	for d in /proc/[0-9]*; do
		pid=${d#/proc/}
		[ "$pid" = "$$" ] || [ "$pid" = "$BASHPID" ] && continue
		cmd=$({ tr '\0' ' ' <"$d/cmdline"; } 2>/dev/null) || continue
		case $cmd in *"$E2E_TMP/"*) ;; *) continue ;; esac
		grep -q '^State:.*Z' "$d/status" 2>/dev/null && continue
		# Our own helpers (this shell's pipelines and python checkers) are not daemons.
		[[ $cmd =~ ^(/usr/bin/)?(bash|python3|grep|tr|sed|cat)\  ]] && continue
		echo "$pid"
	done
}

e2e_cleanup() {
	local pid
	ov_lib_cleanup
	# A process that names our unique temp dir was started by this run: end it by its pid.
	for pid in $(ov_run_pids); do
		say "   . cleanup: unrecorded process $pid ($(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | cut -c1-100))"
		kill -KILL "$pid" 2>/dev/null
	done
	return 0
}

e2e_leftovers() {
	local bad=0 i pid
	ov_lib_leftovers || bad=1
	for i in "${!OV_DIR[@]}"; do
		[ -e "${OV_DIR[$i]}/run/zl-overlayd.sock" ] && { say "leftover control socket of node $i"; bad=1; }
	done
	for pid in $(ov_run_pids); do say "leftover process $pid"; bad=1; done
	return $bad
}

# ---------------------------------------------------------------- topology

# ov_switch: the namespace holding the bridge all hosts plug into.
ov_switch() {
	OV_SW=$(ns_name sw)
	ns_create "$OV_SW" &&
		ip -n "$OV_SW" link add br0 type bridge forward_delay 0 stp_state 0 &&
		ip -n "$OV_SW" link set br0 up
}

# ov_host I: namespace h<I> plugged into the switch, underlay 192.0.2.I/24 on eth0; node I's names.
ov_host() {
	local i=$1 ns
	ns=$(ns_name "h$i")
	OV_NS[$i]=$ns
	OV_DIR[$i]=$E2E_TMP/n$i
	OV_IF[$i]=zo$((E2E_ID % 10000))$i
	OV_UL[$i]=$OV_SUBNET.$i
	OV_HN[$i]=host$i
	[ "${#OV_IF[$i]}" -le 15 ] || { say "interface name ${OV_IF[$i]} too long"; return 1; }
	# The UAPI socket path is machine-wide: never reuse a name another run is using.
	[ -e "$E2E_WG_SOCK_DIR/${OV_IF[$i]}.sock" ] && { say "${OV_IF[$i]}.sock already exists (another run?)"; return 1; }
	echo "${OV_IF[$i]}" >>"$E2E_TMP/ifnames"
	ns_create "$ns" &&
		ip -n "$OV_SW" link add "p$i" type veth peer name eth0 netns "$ns" &&
		ip -n "$OV_SW" link set "p$i" master br0 up &&
		ip -n "$ns" link set eth0 up &&
		ns_addr "$ns" eth0 "${OV_UL[$i]}/24"
}

# ov_hosts N: switch plus hosts 1..N, and the underlay checked from host 1 to every other host.
ov_hosts() {
	local n=$1 i
	must "switch namespace with a bridge" ov_switch
	for i in $(seq "$n"); do must "host $i (${OV_UL[$i]:-$OV_SUBNET.$i}) on the switch" ov_host "$i"; done
	for i in $(seq 2 "$n"); do must "underlay: host 1 reaches host $i" ping_ok "${OV_NS[1]}" "${OV_UL[$i]}" 3; done
}

# ---------------------------------------------------------------- CLI

# ov_cli I ARGS...: zl-overlay on host I with its data dir (bounded).
ov_cli() {
	local i=$1; shift
	timeout -k 2 "$OV_CMD_TIMEOUT" ip netns exec "${OV_NS[$i]}" "$OV_CLI" --data-dir "${OV_DIR[$i]}" "$@"
}

# ov_cli_to I OUTFILE ERRFILE ARGS...: same, output kept; returns the exit code.
ov_cli_to() {
	local i=$1 out=$2 err=$3; shift 3
	ov_cli "$i" "$@" >"$out" 2>"$err"
}

ov_state() { printf '%s/state.json' "${OV_DIR[$1]}"; }
ov_sock() { printf '%s/run/zl-overlayd.sock' "${OV_DIR[$1]}"; }

# ov_learn I: node I's overlay address and public key, from its state file.
ov_learn() {
	local i=$1
	OV_IP[$i]=$(ovpy get "$(ov_state "$i")" config.node_ip) || return 1
	OV_KEY[$i]=$(ovpy get "$(ov_state "$i")" config.public_key) || return 1
	OV_ID[$i]=$(ovpy get "$(ov_state "$i")" config.node_id) || return 1
	dbg "node $i: ${OV_IP[$i]} ${OV_KEY[$i]}"
}

# ov_init_leader I CIDR [ARGS...]: init-leader (JSON output kept in $E2E_TMP/init.json).
ov_init_leader() {
	local i=$1 cidr=$2; shift 2
	ov_cli_to "$i" "$E2E_TMP/init.json" "$E2E_TMP/init.err" init-leader --cidr "$cidr" \
		--endpoint "${OV_UL[$i]}:$OV_PORT" --hostname "${OV_HN[$i]}" --interface "${OV_IF[$i]}" --json "$@" ||
		{ cat "$E2E_TMP/init.err"; return 1; }
	ov_learn "$i"
}

# ov_token I [ARGS...]: prints a fresh token from leader I (`token create` prints it alone).
ov_token() {
	local i=$1; shift
	ov_cli "$i" token create "$@" 2>"$E2E_TMP/token.err"
}

# ov_join I TOKEN [ARGS...]: join on host I (hostname and interface of node I).
ov_join() {
	local i=$1 tok=$2; shift 2
	ov_cli_to "$i" "$E2E_TMP/join.$i.out" "$E2E_TMP/join.$i.err" join --token "$tok" \
		--hostname "${OV_HN[$i]}" --interface "${OV_IF[$i]}" "$@" ||
		{ cat "$E2E_TMP/join.$i.out" "$E2E_TMP/join.$i.err"; return 1; }
	ov_learn "$i"
}

# ---------------------------------------------------------------- daemons

ov_tag() { printf -- '--data-dir %s --interface %s' "${OV_DIR[$1]}" "${OV_IF[$1]}"; }
ov_pid() { cat "$E2E_TMP/pid.n$1" 2>/dev/null; }
ov_alive() { local p; p=$(ov_pid "$1") && [ -n "$p" ] && pid_is_ours "$p" "$(ov_tag "$1")"; }
ov_gone() { ! ov_alive "$1"; }
ov_link_exists() { ip -n "${OV_NS[$1]}" link show dev "${OV_IF[$1]}" >/dev/null 2>&1; }
ov_is_leader() { [ "$(ovpy get "$(ov_state "$1")" config.is_leader 2>/dev/null)" = true ]; }

ov_listening() { ip netns exec "${OV_NS[$1]}" ss -Htln "sport = :$OV_PORT" 2>/dev/null | grep -q .; }

# ov_ready I: control socket answers, interface exists, and on a leader the TCP join listener is up.
ov_ready() {
	local i=$1
	ovpy connect "$(ov_sock "$i")" || return 1
	ov_link_exists "$i" || return 1
	test -S "$E2E_WG_SOCK_DIR/${OV_IF[$i]}.sock" || return 1
	if ov_is_leader "$i"; then ov_listening "$i" || return 1; fi
	return 0
}

# ov_find_pid I: the daemon's pid by its unique command line (for a daemon that forked into the background).
ov_find_pid() {
	local d tag
	tag=$(ov_tag "$1")
	for d in /proc/[0-9]*; do
		{ tr '\0' ' ' <"$d/cmdline"; } 2>/dev/null | grep -qF -- "$OV_DAEMON $tag" && { echo "${d#/proc/}"; return 0; }
	done
	return 1
}

# ov_start I [ARGS...]: zl-overlayd for node I in its namespace, logs to $E2E_TMP/n<I>.daemon.log; waits
# (bounded) until it is ready. A daemon that stays in the foreground is recorded by its pid; one that
# forks is found by its command line.
ov_start() {
	local i=$1 pid rc log deadline; shift
	[ -x "$OV_DAEMON" ] || { say "no $OV_DAEMON (run make)"; return 1; }
	ov_alive "$i" && { say "node $i's daemon is already running"; return 1; }
	log=$E2E_TMP/n$i.daemon.log
	echo "--- start $(date +%T.%N)" >>"$log"
	ip netns exec "${OV_NS[$i]}" "$OV_DAEMON" --data-dir "${OV_DIR[$i]}" --interface "${OV_IF[$i]}" "$@" \
		>>"$log" 2>&1 </dev/null &
	pid=$!
	echo "$pid $(ov_tag "$i")" >>"$E2E_TMP/pids"
	echo "$pid" >"$E2E_TMP/pid.n$i"
	deadline=$((SECONDS + OV_START_TIMEOUT))
	while :; do
		# Not ours yet is not gone: under load the background job may not have exec'd the daemon yet
		# (its command line is still this script's), and waiting for it then would wait for the daemon.
		if ! pid_is_ours "$pid" "$(ov_tag "$i")" && pid_exited "$pid"; then
			wait "$pid" 2>/dev/null; rc=$?
			if [ "$rc" = 0 ] && pid=$(ov_find_pid "$i"); then
				echo "$pid $(ov_tag "$i")" >>"$E2E_TMP/pids"; echo "$pid" >"$E2E_TMP/pid.n$i"
				dbg "node $i's daemon forked: pid $pid"
			else
				say "zl-overlayd of node $i exited with status $rc during start-up:"
				tail -n 8 "$log" | sed 's/^/       | /'
				return 1
			fi
		fi
		ov_ready "$i" && return 0
		[ "$SECONDS" -ge "$deadline" ] && break
		sleep 0.1
	done
	say "zl-overlayd of node $i not ready within ${OV_START_TIMEOUT}s (control socket, interface ${OV_IF[$i]}, UAPI socket$(ov_is_leader "$i" && echo ", TCP :$OV_PORT")):"
	tail -n 8 "$log" | sed 's/^/       | /'
	return 1
}

# ov_reap I: collects the exit status of node I's daemon once it is gone (prints it).
ov_reap() {
	local pid
	pid=$(ov_pid "$1")
	[ -n "$pid" ] || return 1
	wait "$pid" 2>/dev/null
	echo $?
}

# ov_stop I: SIGTERM; succeeds when the daemon exited and its interface, UAPI socket and control socket
# are gone (the issue: a clean system after SIGTERM).
ov_stop() {
	local i=$1 pid rc
	pid=$(ov_pid "$i")
	ov_alive "$i" || { say "node $i's daemon is not running"; return 1; }
	kill -TERM "$pid"
	wait_until 10 ov_gone "$i" || { say "node $i's daemon $pid still alive 10 s after SIGTERM"; return 1; }
	rc=$(ov_reap "$i")
	dbg "node $i's daemon exited with $rc"
	wait_until 3 eval "! ov_link_exists $i" || { say "${OV_IF[$i]} still exists after SIGTERM"; return 1; }
	wait_until 3 test ! -e "$E2E_WG_SOCK_DIR/${OV_IF[$i]}.sock" || { say "UAPI socket ${OV_IF[$i]}.sock left after SIGTERM"; return 1; }
	wait_until 3 test ! -e "$(ov_sock "$i")" || { say "control socket left after SIGTERM"; return 1; }
	if ip -n "${OV_NS[$i]}" route show table all 2>/dev/null | grep -qw "${OV_IF[$i]}"; then
		say "routes through ${OV_IF[$i]} left after SIGTERM"; return 1
	fi
	[ "$rc" = 0 ] || { say "node $i's daemon exited with status $rc on SIGTERM"; return 1; }
	return 0
}

# ov_kill I: SIGKILL (no cleanup by the daemon); waits until it is gone.
ov_kill() {
	local i=$1
	ov_alive "$i" || return 0
	kill -KILL "$(ov_pid "$i")"
	wait_until 5 ov_gone "$i" || { say "node $i's daemon survived SIGKILL"; return 1; }
	ov_reap "$i" >/dev/null
	return 0
}

# ov_wait_exit I TIMEOUT: the daemon ends by itself (after leave / removal); prints nothing.
ov_wait_exit() {
	wait_until "$2" ov_gone "$1" || { say "node $1's daemon still running after $2 s"; return 1; }
	ov_reap "$1" >/dev/null
	return 0
}

# ---------------------------------------------------------------- reachability

ov_now() { printf '%s' "${EPOCHREALTIME/,/.}"; }
ov_elapsed() { awk -v a="$1" -v b="$(ov_now)" 'BEGIN { printf "%.2f", b - a }'; }

# ov_reach NS ADDR DEADLINE: pings once a try until an answer or the (epoch, fractional) deadline.
ov_reach() {
	local ns=$1 addr=$2 deadline=$3
	while :; do
		ip netns exec "$ns" ping -n -q -c 1 -W 1 "$addr" >/dev/null 2>&1 && return 0
		awk -v d="$deadline" -v n="$(ov_now)" 'BEGIN { exit !(n >= d) }' && return 1
		sleep 0.1
	done
}

# ov_mesh_pairs DEADLINE PAIRS...: for every pair "S:D", node S reaches node D's overlay address before
# the (epoch, fractional) deadline; one background job per source host, its targets pinged in sequence.
# Prints the failing pairs; returns 1 if any.
ov_mesh_pairs() {
	local deadline=$1 pair s d pids=() fails=$E2E_TMP/mesh.fail; shift
	local -A targets=()
	: >"$fails"
	for pair in "$@"; do
		s=${pair%%:*}; d=${pair#*:}
		[ "$s" = "$d" ] || targets[$s]="${targets[$s]:-} $d"
	done
	for s in "${!targets[@]}"; do
		(
			for d in ${targets[$s]}; do
				ov_reach "${OV_NS[$s]}" "${OV_IP[$d]}" "$deadline" || echo "$s->$d (${OV_IP[$d]})" >>"$fails"
			done
		) &
		pids+=("$!")
	done
	for s in "${pids[@]}"; do wait "$s"; done
	[ -s "$fails" ] || return 0
	say "unreachable before the deadline: $(sort "$fails" | tr '\n' ' ')"
	return 1
}

ov_deadline() { awk -v n="$(ov_now)" -v s="$1" 'BEGIN { printf "%.3f", n + s }'; }

# ov_all_pairs NODES...: prints "S:D" for every ordered pair of distinct NODES.
ov_all_pairs() {
	local s d
	for s in "$@"; do for d in "$@"; do [ "$s" = "$d" ] || printf '%s:%s ' "$s" "$d"; done; done
}

# ov_mesh SECONDS NODES...: all pairs of NODES reach each other within SECONDS.
ov_mesh() {
	local secs=$1; shift
	# shellcheck disable=SC2046
	ov_mesh_pairs "$(ov_deadline "$secs")" $(ov_all_pairs "$@")
}

# ov_mesh_check "desc" SECONDS NODES...: ov_mesh as a check; the description gets the time taken.
ov_mesh_check() {
	local desc=$1 secs=$2 t0 rc; shift 2
	t0=$(ov_now)
	ov_mesh "$secs" "$@" >"$E2E_TMP/mesh.out" 2>&1; rc=$?
	if [ $rc = 0 ]; then e2e_pass "$desc ($(ov_elapsed "$t0") s)"; return 0; fi
	e2e_fail "$desc (bound ${secs}s)" "$E2E_TMP/mesh.out"; return 1
}

# ov_join_check "desc" NEW NODES...: NEW reaches every node of NODES and every one reaches NEW within
# OV_CONVERGE_S of OV_T0 (set by ov_add_node to the moment the join command started).
ov_join_check() {
	local desc=$1 new=$2 rc deadline pairs=() j; shift 2
	deadline=$(awk -v t="$OV_T0" -v s="$OV_CONVERGE_S" 'BEGIN { printf "%.3f", t + s }')
	for j in "$@"; do [ "$j" = "$new" ] || pairs+=("$new:$j" "$j:$new"); done
	ov_mesh_pairs "$deadline" "${pairs[@]}" >"$E2E_TMP/mesh.out" 2>&1; rc=$?
	if [ $rc = 0 ]; then e2e_pass "$desc ($(ov_elapsed "$OV_T0") s after the join started)"; return 0; fi
	e2e_fail "$desc (bound ${OV_CONVERGE_S}s after the join started)" "$E2E_TMP/mesh.out"; return 1
}

# ov_add_node LEADER I: a fresh token, join on I, start its daemon; OV_T0 = when the join started.
ov_add_node() {
	local leader=$1 i=$2 tok
	tok=$(ov_token "$leader") && [ -n "$tok" ] || { say "token create failed:"; cat "$E2E_TMP/token.err"; return 1; }
	OV_T0=$(ov_now)
	ov_join "$i" "$tok" || return 1
	ov_start "$i"
}

# ov_unreachable NS ADDR: two echoes, no answer.
ov_unreachable() { ! ip netns exec "$1" ping -n -q -c 2 -i 0.3 -W 1 "$2" >/dev/null 2>&1; }

# ---------------------------------------------------------------- status and wg show

# ov_not_listed R X: node R's status and wg show no longer list node X (address or key).
ov_not_listed() {
	local r=$1 x=$2
	ov_status_json "$r" "$E2E_TMP/status.$r.json" >/dev/null || return 1
	grep -qF "\"${OV_IP[$x]}\"" "$E2E_TMP/status.$r.json" && return 1
	grep -qF "\"${OV_KEY[$x]}\"" "$E2E_TMP/status.$r.json" && return 1
	! ip netns exec "${OV_NS[$r]}" wg show "${OV_IF[$r]}" peers | grep -qxF "${OV_KEY[$x]}"
}

# ov_freed LEADER X: the leader's state no longer holds X's address, slice or membership.
ov_freed() {
	ovpy view "$(ov_state "$1")" >"$E2E_TMP/view.json" || return 1
	python3 - "$E2E_TMP/view.json" "${OV_IP[$2]}" "${OV_ID[$2]}" "${OV_KEY[$2]}" <<-'EOF'
		import json, sys
		v, ip, nid, key = json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3], sys.argv[4]
		bad = []
		if ip in v["allocated"]: bad.append("address %s still allocated" % ip)
		if any(a[0] == nid for a in v["assigned"]): bad.append("slice of %s still assigned" % nid)
		if any(p[0] == nid or p[1] == ip or p[2] == key for p in v["peers"]): bad.append("%s still a member" % nid)
		print("; ".join(bad)); sys.exit(1 if bad else 0)
	EOF
}

# ov_allocs_match LEADER: the leader allocated exactly its own address and its members' (no leak).
ov_allocs_match() {
	python3 - "$(ov_state "$1")" <<-'EOF'
		import json, sys
		s = json.load(open(sys.argv[1]))
		ips = sorted([s["config"]["node_ip"]] + [p["overlay_ip"] for p in s["peers"]])
		alloc = sorted(s["ip_allocator"]["allocated"])
		print("allocated %s, members %s" % (alloc, ips)); sys.exit(alloc != ips)
	EOF
}

# ov_status_json I FILE: `status --json` of node I into FILE.
ov_status_json() { ov_cli "$1" status --json >"$2" 2>"$2.err" || { cat "$2.err"; return 1; }; }

# ov_status_check I LIVE NODES...: node I's status --json, field by field: itself, and exactly NODES as
# peers (address, key, hostname). LIVE=1 also wants a handshake and traffic with every peer.
ov_status_check() {
	local i=$1 live=$2 j args=(); shift 2
	ov_status_json "$i" "$E2E_TMP/status.$i.json" || return 1
	args=(leader="$(ov_is_leader "$i" && echo true || echo false)" node_ip="${OV_IP[$i]}"
		public_key="${OV_KEY[$i]}" hostname="${OV_HN[$i]}" live="$live" underlay="$OV_SUBNET.0/24")
	for j in "$@"; do [ "$j" = "$i" ] || args+=(peer="${OV_IP[$j]},${OV_KEY[$j]},${OV_HN[$j]}"); done
	ovpy status "$E2E_TMP/status.$i.json" "${args[@]}"
}

# ov_peer_ips I: the peers' overlay addresses in node I's status (sorted, one per line).
ov_peer_ips() {
	ov_status_json "$1" "$E2E_TMP/status.$1.json" >/dev/null && ovpy peer-ips "$E2E_TMP/status.$1.json"
}

# ov_peers_are I NODES...: node I's status lists exactly NODES (by overlay address).
ov_peers_are() {
	local i=$1 want got j; shift
	want=$(for j in "$@"; do [ "$j" = "$i" ] || echo "${OV_IP[$j]}"; done | sort)
	got=$(ov_peer_ips "$i") || return 1
	[ "$want" = "$got" ] || { say "node $i peers: [$(echo $got)], expected [$(echo $want)]"; return 1; }
}

# ov_wg_check I NODES...: `wg show` on node I's interface works, shows its key and port and exactly
# NODES' keys as peers.
ov_wg_check() {
	local i=$1 want got j; shift
	ip netns exec "${OV_NS[$i]}" wg show "${OV_IF[$i]}" >"$E2E_TMP/wg.$i.out" 2>&1 ||
		{ cat "$E2E_TMP/wg.$i.out"; return 1; }
	got=$(ip netns exec "${OV_NS[$i]}" wg show "${OV_IF[$i]}" public-key)
	[ "$got" = "${OV_KEY[$i]}" ] || { say "wg public-key $got, expected ${OV_KEY[$i]}"; return 1; }
	got=$(ip netns exec "${OV_NS[$i]}" wg show "${OV_IF[$i]}" listen-port)
	[ "$got" = "$OV_PORT" ] || { say "wg listen-port $got, expected $OV_PORT"; return 1; }
	want=$(for j in "$@"; do [ "$j" = "$i" ] || echo "${OV_KEY[$j]}"; done | sort)
	got=$(ip netns exec "${OV_NS[$i]}" wg show "${OV_IF[$i]}" peers | sort)
	[ "$want" = "$got" ] || { say "wg peers of node $i: [$(echo $got)], expected [$(echo $want)]"; return 1; }
}

# ov_snapshot LABEL NODES...: appends every node's view of the allocations to the history file
# (leader: its allocator and members; workers: their own address and key), for ovpy history.
ov_snapshot() {
	local label=$1 j; shift
	for j in "$@"; do
		[ -f "$(ov_state "$j")" ] && ovpy snapshot "$label" "$j" "$(ov_state "$j")" >>"$E2E_TMP/history"
	done
	return 0
}

# ---------------------------------------------------------------- python helper

read -r -d '' OV_PY <<'PY'
import base64, hashlib, ipaddress, json, os, socket, struct, sys, time

def load(path):
    with open(path, "rb") as f:
        return json.loads(f.read().decode("utf-8"))

def is_key(s):
    if not isinstance(s, str) or len(s) != 44:
        return False
    try:
        return len(base64.b64decode(s, validate=True)) == 32
    except Exception:
        return False

def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)

def is_ip(s):
    try:
        ipaddress.ip_address(s)
        return True
    except Exception:
        return False

def done(problems):
    for p in problems:
        print(p)
    sys.exit(1 if problems else 0)

# get FILE PATH: one member (dotted path), printed as text (JSON for objects/arrays/booleans).
def cmd_get(a):
    v = load(a[0])
    for part in a[1].split("."):
        v = v[int(part)] if isinstance(v, list) else v[part]
    print(json.dumps(v) if isinstance(v, (dict, list, bool)) or v is None else v)

# connect SOCK: the control socket accepts a connection.
def cmd_connect(a):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(2)
    try:
        s.connect(a[0])
    except Exception:
        sys.exit(1)
    s.close()

# status FILE key=value...: leader= node_ip= public_key= hostname= live=0|1 underlay=CIDR peer=IP,KEY,HOST...
def cmd_status(a):
    want = {"peer": []}
    for kv in a[1:]:
        k, v = kv.split("=", 1)
        if k == "peer":
            want["peer"].append(tuple(v.split(",", 2)))
        else:
            want[k] = v
    p = []
    try:
        st = load(a[0])
    except Exception as e:
        done(["status --json is not JSON: %s" % e])
    if not isinstance(st, dict):
        done(["status --json is not an object"])
    for k, typ in (("node_ip", str), ("public_key", str), ("is_leader", bool), ("hostname", str), ("peers", list)):
        if k not in st:
            p.append("missing %s" % k)
        elif not isinstance(st[k], typ):
            p.append("%s is %s, not %s" % (k, type(st[k]).__name__, typ.__name__))
    if p:
        done(p)
    if st["node_ip"] != want["node_ip"]:
        p.append("node_ip %r, expected %r" % (st["node_ip"], want["node_ip"]))
    if not is_key(st["public_key"]):
        p.append("public_key %r is not a base64 key" % st["public_key"])
    elif st["public_key"] != want["public_key"]:
        p.append("public_key is not the one in state.json")
    if st["is_leader"] != (want["leader"] == "true"):
        p.append("is_leader %r, expected %s" % (st["is_leader"], want["leader"]))
    if st["hostname"] != want["hostname"]:
        p.append("hostname %r, expected %r" % (st["hostname"], want["hostname"]))
    live = want.get("live") == "1"
    underlay = ipaddress.ip_network(want["underlay"]) if "underlay" in want else None
    now = time.time()
    seen_ip, seen_key, got = set(), set(), set()
    for n, peer in enumerate(st["peers"]):
        w = "peers[%d]" % n
        if not isinstance(peer, dict):
            p.append("%s is not an object" % w)
            continue
        for k in ("node_id", "hostname", "overlay_ip", "public_key", "endpoint"):
            if not isinstance(peer.get(k), str):
                p.append("%s.%s missing or not a string: %r" % (w, k, peer.get(k)))
        for k in ("last_handshake", "rx_bytes", "tx_bytes"):
            if not is_int(peer.get(k)) or peer.get(k) < 0:
                p.append("%s.%s missing or not a non-negative integer: %r" % (w, k, peer.get(k)))
        if p:
            continue
        if not peer["node_id"]:
            p.append("%s.node_id is empty" % w)
        if not is_ip(peer["overlay_ip"]):
            p.append("%s.overlay_ip %r is not an address" % (w, peer["overlay_ip"]))
        if not is_key(peer["public_key"]):
            p.append("%s.public_key is not a base64 key" % w)
        if peer["overlay_ip"] in seen_ip or peer["public_key"] in seen_key:
            p.append("%s: address or key listed twice" % w)
        if peer["overlay_ip"] == st["node_ip"] or peer["public_key"] == st["public_key"]:
            p.append("%s is this node itself" % w)
        seen_ip.add(peer["overlay_ip"]); seen_key.add(peer["public_key"])
        got.add((peer["overlay_ip"], peer["public_key"], peer["hostname"]))
        if live:
            hs = peer["last_handshake"]
            if not (now - 600 <= hs <= now + 60):
                p.append("%s (%s): last_handshake %r is not recent" % (w, peer["overlay_ip"], hs))
            if peer["rx_bytes"] == 0 or peer["tx_bytes"] == 0:
                p.append("%s (%s): rx_bytes %r tx_bytes %r after pings" % (w, peer["overlay_ip"], peer["rx_bytes"], peer["tx_bytes"]))
            ep = peer["endpoint"]
            host = ep.rsplit(":", 1)[0].strip("[]") if ":" in ep else ""
            if not (is_ip(host) and underlay and ipaddress.ip_address(host) in underlay and ep.rsplit(":", 1)[1].isdigit()):
                p.append("%s (%s): endpoint %r is not an underlay HOST:PORT" % (w, peer["overlay_ip"], ep))
    expected = set(want["peer"])
    for e in sorted(expected - got):
        p.append("missing peer %s (host %s)" % (e[0], e[2]))
    for e in sorted(got - expected):
        p.append("unexpected peer %s (host %s)" % (e[0], e[2]))
    done(p)

# peer-ips FILE: the peers' overlay addresses, sorted.
def cmd_peer_ips(a):
    for ip in sorted(p["overlay_ip"] for p in load(a[0])["peers"]):
        print(ip)

# view FILE: the leader's membership and allocations in a canonical form (for before/after comparisons;
# tokens by id with their use counts when "tokens" is given).
def cmd_view(a):
    s = load(a[0])
    v = {"peers": sorted((p["node_id"], p["overlay_ip"], p["public_key"], p.get("slice_cidr")) for p in s["peers"]),
         "allocated": sorted(s.get("ip_allocator", {}).get("allocated", [])),
         "assigned": sorted(map(tuple, s.get("slice_allocator", {}).get("assigned", [])))}
    if "tokens" in a[1:]:
        v["tokens"] = sorted((t["id"], t["uses"], t["revoked"]) for t in s.get("tokens", []))
    print(json.dumps(v, sort_keys=True))

# ---- tokens (docs/join-protocol.md §1)
def tok_decode(text):
    body = text.strip().split(".", 1)[1]
    return bytearray(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))

def tok_encode(payload):
    payload = bytes(payload[:-4])
    payload += hashlib.blake2b(payload, digest_size=16).digest()[:4]
    return "zlj1." + base64.urlsafe_b64encode(payload).rstrip(b"=").decode()

def cmd_token_id(a):
    print(bytes(tok_decode(a[0])[1:9]).hex())

# token-mutate TOKEN MODE [ARG]: secret (wrong secret, valid checksum), key (another leader key, valid
# checksum), endpoint HOST:PORT (valid checksum), typo (one character changed: bad checksum), truncate.
def cmd_token_mutate(a):
    text, mode = a[0], a[1]
    if mode == "truncate":
        print(text[:-9]); return
    if mode == "typo":
        i = len(text) // 2
        print(text[:i] + ("A" if text[i] != "A" else "B") + text[i + 1:]); return
    p = tok_decode(text)
    if mode == "secret":
        p[9] ^= 0x01
    elif mode == "key":
        p[41:73] = hashlib.blake2b(bytes(p[41:73]), digest_size=32).digest()
    elif mode == "endpoint":
        ep = a[2].encode()
        p = p[:81] + bytes([1, len(ep)]) + ep + bytes(4)
    else:
        raise SystemExit("unknown mode " + mode)
    print(tok_encode(p))

# ---- crash-state invariants (sigkill-state)
# snapshot LABEL NODE STATE: one line per allocation this node's state shows.
def cmd_snapshot(a):
    label, node, path = a[0], a[1], a[2]
    try:
        s = load(path)
    except Exception as e:
        print("%s %s parse-error %s" % (label, node, str(e).replace(" ", "_"))); return
    c = s["config"]
    if c["is_leader"]:
        print("%s %s leader-self %s %s" % (label, node, c["node_ip"], c["public_key"]))
        for p in s["peers"]:
            print("%s %s leader-member %s %s" % (label, node, p["overlay_ip"], p["public_key"]))
        for ip in s.get("ip_allocator", {}).get("allocated", []):
            print("%s %s leader-allocated %s -" % (label, node, ip))
    else:
        print("%s %s worker-self %s %s" % (label, node, c["node_ip"], c["public_key"]))

# history FILE: no address was ever given to two nodes: within one snapshot, the leader's allocation
# list and member list have no duplicate and agree; over time a key keeps its address, and once an
# address moves to another key its previous holder never shows up again anywhere.
def cmd_history(a):
    p, rounds = [], {}
    order = []
    for line in open(a[0]):
        f = line.split()
        if len(f) < 4:
            continue
        if f[0] not in rounds:
            rounds[f[0]] = []; order.append(f[0])
        rounds[f[0]].append(f[1:])
    key_ip, holder, retired = {}, {}, set()
    for r in order:
        alloc, members = [], []
        for node, kind, ip, *rest in rounds[r]:
            key = rest[0] if rest else "-"
            if kind == "parse-error":
                p.append("round %s: node %s state.json does not parse: %s" % (r, node, ip))
                continue
            if kind == "leader-allocated":
                alloc.append(ip); continue
            if kind in ("leader-self", "leader-member"):
                members.append(ip)
            if key in retired:
                p.append("round %s: key %s... reappeared after its address moved" % (r, key[:8]))
            if key_ip.setdefault(key, ip) != ip:
                p.append("round %s: node with key %s... changed address %s -> %s" % (r, key[:8], key_ip[key], ip))
            old = holder.get(ip)
            if old and old != key:
                retired.add(old)
            holder[ip] = key
        if len(alloc) != len(set(alloc)):
            p.append("round %s: leader allocated an address twice: %s" % (r, sorted(x for x in alloc if alloc.count(x) > 1)))
        if len(members) != len(set(members)):
            p.append("round %s: two members share an address" % r)
        if alloc and sorted(set(alloc)) != sorted(set(members)):
            p.append("round %s: allocations %s != members %s" % (r, sorted(set(alloc) - set(members)), sorted(set(members) - set(alloc))))
        # Two live state files (leader + workers) claiming one address in the same round.
        selves = [ip for node, kind, ip, *rest in rounds[r] if kind in ("leader-self", "worker-self")]
        if len(selves) != len(set(selves)):
            p.append("round %s: two nodes' own state files claim the same address" % r)
    print("%d snapshots, %d addresses seen" % (len(order), len(holder)))
    done(p)

# classify LEADER_STATE WORKER_STATE...: final consistency of the leader's state, and each worker as
# "member NODE" (the leader has its key at its address), "stale NODE" (unknown to the leader) or a
# problem; leader members without a worker state are "ghost NODE_ID". Worker state paths are DIR/n<i>/...
def cmd_classify(a):
    p = []
    try:
        L = load(a[0])
    except Exception as e:
        done(["leader state.json does not parse: %s" % e])
    c, peers = L["config"], L["peers"]
    alloc = L.get("ip_allocator", {}).get("allocated", [])
    assigned = L.get("slice_allocator", {}).get("assigned", [])
    ips = [c["node_ip"]] + [x["overlay_ip"] for x in peers]
    if len(alloc) != len(set(alloc)):
        p.append("leader: an address is allocated twice")
    if sorted(set(alloc)) != sorted(ips) or len(ips) != len(set(ips)):
        p.append("leader: allocations %s do not match members %s" % (sorted(alloc), sorted(ips)))
    names = [x[0] for x in assigned]
    if len(names) != len(set(names)):
        p.append("leader: a node has two slices")
    if sorted(names) != sorted([c["node_id"]] + [x["node_id"] for x in peers]):
        p.append("leader: slices %s do not match members" % sorted(names))
    nets = [ipaddress.ip_network(x[1]) for x in assigned]
    for i in range(len(nets)):
        for j in range(i + 1, len(nets)):
            if nets[i].overlaps(nets[j]):
                p.append("leader: slices %s and %s overlap" % (nets[i], nets[j]))
    slice_of = dict((x[0], x[1]) for x in assigned)
    for x in peers:
        if x.get("slice_cidr") and slice_of.get(x["node_id"]) != x["slice_cidr"]:
            p.append("leader: %s's slice differs from the allocator's" % x["node_id"])
    by_key = dict((x["public_key"], x) for x in peers)
    seen = set()
    for path in a[1:]:
        node = os.path.basename(os.path.dirname(path))[1:]
        try:
            w = load(path)
        except Exception as e:
            p.append("node %s: state.json does not parse: %s" % (node, e)); continue
        wc = w["config"]
        if w.get("version") != 1 or wc.get("is_leader"):
            p.append("node %s: not a version-1 worker state" % node); continue
        m = by_key.get(wc["public_key"])
        if m is None:
            if wc["node_ip"] in ips:
                p.append("node %s: its address %s belongs to another member" % (node, wc["node_ip"]))
            print("stale %s" % node)
        elif m["overlay_ip"] != wc["node_ip"]:
            p.append("node %s: address %s, the leader says %s" % (node, wc["node_ip"], m["overlay_ip"]))
        else:
            seen.add(wc["public_key"]); print("member %s" % node)
    for x in peers:
        if x["public_key"] not in seen:
            print("ghost %s" % x["node_id"])
    done(p)

# ---- raw control-socket frames (bad-input)
def frame(payload):
    if isinstance(payload, str):
        payload = payload.encode()
    return struct.pack("<I", len(payload)) + payload

def req(obj):
    return frame(json.dumps(obj))

def exchange(path, data, want=1, shut=False, timeout=5.0):
    """Sends data; returns (responses, closed, error): up to want frames, whether the daemon closed."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(path)
    s.sendall(data)
    if shut:
        s.shutdown(socket.SHUT_WR)
    buf, out, closed = b"", [], False
    deadline = time.time() + timeout
    while len(out) < want and time.time() < deadline:
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            break
        except ConnectionResetError:
            closed = True; break
        if not chunk:
            closed = True; break
        buf += chunk
        while len(buf) >= 4:
            n = struct.unpack("<I", buf[:4])[0]
            if len(buf) < 4 + n:
                break
            out.append(json.loads(buf[4:4 + n])); buf = buf[4 + n:]
    if not closed and len(out) >= want:
        pass
    s.close()
    return out, closed

def err_of(r):
    if not isinstance(r, dict) or not isinstance(r.get("response"), dict):
        return None
    x = r["response"]
    if x.get("result") != "err" or not isinstance(x.get("message"), str) or not x["message"]:
        return None
    if any(ord(ch) < 32 for ch in x["message"]):
        return None
    return x["message"]

ENV = {"id": 5, "version": 1}
def with_req(**kw):
    o = dict(ENV); o["request"] = kw; return req(o)

# (name, bytes, framing error?, words the message must contain (any), expected id)
CASES = {
    "zero-length": (b"\0\0\0\0", True, [], None),
    "huge-length": (b"\xff\xff\xff\xff{}", True, [], None),
    "over-8MiB": (struct.pack("<I", (8 << 20) + 1) + b"{", True, [], None),
    "bad-json": (frame("{not json"), True, [], None),
    "not-object": (frame("[1,2,3]"), True, [], None),
    "bad-utf8": (frame(b'{"id":1,"version":1,"request":{"type":"st\xff\xfeus"}}'), True, [], None),
    "deep-nesting": (frame("[" * 200000), True, [], None),
    "trailing-garbage": (frame('{"id":1,"version":1,"request":{"type":"status"}} x'), True, [], None),
    "no-id": (req({"version": 1, "request": {"type": "status"}}), False, ["id"], 0),
    "string-id": (req({"id": "7", "version": 1, "request": {"type": "status"}}), False, ["id"], 0),
    "negative-id": (req({"id": -1, "version": 1, "request": {"type": "status"}}), False, ["id"], 0),
    "no-version": (req({"id": 5, "request": {"type": "status"}}), False, ["version"], 5),
    "version-2": (req({"id": 5, "version": 2, "request": {"type": "status"}}), False, ["version"], 5),
    "no-request": (req({"id": 5, "version": 1}), False, ["request"], 5),
    "request-not-object": (req({"id": 5, "version": 1, "request": "status"}), False, ["request"], 5),
    "no-type": (with_req(), False, ["type"], 5),
    "empty-type": (with_req(type=""), False, ["type"], 5),
    "type-not-string": (with_req(type=7), False, ["type"], 5),
    "unknown-type": (with_req(type="frobnicate"), False, ["frobnicate", "unknown"], 5),
    "unknown-argument": (with_req(type="status", colour="blue"), False, ["colour"], 5),
    "revoke-no-id": (with_req(type="token_revoke"), False, ["id"], 5),
    "revoke-id-not-string": (with_req(type="token_revoke", id=42), False, ["id"], 5),
    "revoke-id-not-hex": (with_req(type="token_revoke", id="zz"), False, ["id", "hex", "token"], 5),
    "revoke-unknown-id": (with_req(type="token_revoke", id="0123456789abcdef"), False, ["token"], 5),
    "create-ttl-string": (with_req(type="token_create", ttl_seconds="abc"), False, ["ttl_seconds"], 5),
    "create-ttl-negative": (with_req(type="token_create", ttl_seconds=-5), False, ["ttl_seconds"], 5),
    "create-ttl-huge": (with_req(type="token_create", ttl_seconds=10 ** 12), False, ["ttl_seconds"], 5),
    "create-ttl-float": (with_req(type="token_create", ttl_seconds=1.5), False, ["ttl_seconds"], 5),
    "remove-no-node": (with_req(type="remove_peer"), False, ["node"], 5),
    "remove-node-not-string": (with_req(type="remove_peer", node=3), False, ["node"], 5),
    "remove-unknown-node": (with_req(type="remove_peer", node="no-such-node"), False, ["no-such-node", "unknown", "no member", "not"], 5),
    "leave-on-leader": (with_req(type="leave"), False, ["leader", "worker"], 5),
    "worker-token-create": (with_req(type="token_create"), False, ["leader"], 5),
    "worker-token-list": (with_req(type="token_list"), False, ["leader"], 5),
    "worker-remove-peer": (with_req(type="remove_peer", node="leader"), False, ["leader"], 5),
}

def status_ok(path):
    out, closed = exchange(path, req({"id": 9, "version": 1, "request": {"type": "status"}}))
    return bool(out) and out[0].get("id") == 9 and out[0]["response"].get("result") == "ok"

def cmd_ctl(a):
    path, name = a[0], a[1]
    if name == "pipelined":
        data = req({"id": 7, "version": 1, "request": {"type": "status"}}) + req({"id": 8, "version": 1, "request": {"type": "peers"}})
        out, closed = exchange(path, data, want=2)
        ids = [r.get("id") for r in out]
        oks = [isinstance(r.get("response"), dict) and r["response"].get("result") == "ok" for r in out]
        if ids == [7, 8] and all(oks):
            print("two answers, ids 7 and 8"); return
        done(["pipelined requests: answers %r" % out])
    if name == "error-then-ok":
        data = with_req(type="frobnicate") + req({"id": 6, "version": 1, "request": {"type": "status"}})
        out, closed = exchange(path, data, want=2)
        if len(out) == 2 and err_of(out[0]) and out[1].get("id") == 6 and out[1]["response"].get("result") == "ok":
            print("error, then status on the same connection"); return
        done(["after a structured error the connection should go on: %r closed=%s" % (out, closed)])
    if name == "many-conns":
        # Idle clients beyond any limit, then all gone: the daemon must still serve a new one.
        conns = []
        for _ in range(300):
            c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            c.settimeout(2)
            try:
                c.connect(path)
            except OSError:
                c.close(); break
            conns.append(c)
        for c in conns:
            c.close()
        time.sleep(0.2)
        if status_ok(path):
            print("%d idle connections opened and closed; status still answered" % len(conns)); return
        done(["no status answer after %d idle connections were closed" % len(conns)])
    if name == "partial-stays":
        # A client that sent half a header and waits must not block anybody else.
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.settimeout(2); c.connect(path); c.sendall(b"\x10\x00")
        ok = status_ok(path)
        c.close()
        if ok:
            print("status answered while another client sits on half a header"); return
        done(["no status answer while another client sits on half a header"])
    if name == "short-body":
        out, closed = exchange(path, struct.pack("<I", 100) + b'{"id":1', shut=True)
        if closed and (not out or err_of(out[0])):
            print("connection closed%s" % (" after an error" if out else "")); return
        done(["a cut frame and EOF: expected the connection closed, got %r closed=%s" % (out, closed)])
    data, framing, words, want_id = CASES[name]
    out, closed = exchange(path, data)
    if framing:
        if out and err_of(out[0]):
            print("error: %s" % err_of(out[0])); return
        if not out and closed:
            print("connection closed"); return
        done(["framing error: expected a structured error or the connection closed, got %r closed=%s" % (out, closed)])
    if not out:
        done(["expected a structured error, got %s" % ("the connection closed" if closed else "no answer within 5 s")])
    msg = err_of(out[0])
    if not msg:
        done(["expected {\"response\":{\"result\":\"err\",\"message\":...}}, got %r" % out[0]])
    if want_id is not None and out[0].get("id") != want_id:
        done(["error answer has id %r, expected %r (%s)" % (out[0].get("id"), want_id, msg)])
    if words and not any(w.lower() in msg.lower() for w in words):
        done(["error message %r names none of %r" % (msg, words)])
    print("error: %s" % msg)

CMDS = {"get": cmd_get, "connect": cmd_connect, "status": cmd_status, "peer-ips": cmd_peer_ips, "view": cmd_view,
        "token-id": cmd_token_id, "token-mutate": cmd_token_mutate, "snapshot": cmd_snapshot,
        "history": cmd_history, "classify": cmd_classify, "ctl": cmd_ctl,
        "cases": lambda a: print(" ".join(CASES))}
CMDS[sys.argv[1]](sys.argv[2:])
PY

ovpy() { python3 -c "$OV_PY" "$@"; }

# ovpy cases: the raw control-socket cases ovpy ctl knows (besides pipelined, error-then-ok, short-body).

# ---------------------------------------------------------------- negative CLI checks

# expect_fail_run "desc" REGEX CMD...: CMD exits non-zero (not by the timeout) and its stderr matches
# REGEX (case-insensitive, extended): the message names the problem.
expect_fail_run() {
	local desc=$1 re=$2 rc; shift 2
	"$@" >"$E2E_TMP/neg.out" 2>"$E2E_TMP/neg.err"; rc=$?
	if [ "$rc" = 0 ]; then
		e2e_fail "$desc: exit status 0 (expected an error)" "$E2E_TMP/neg.out"; return 1
	fi
	if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
		e2e_fail "$desc: timed out" "$E2E_TMP/neg.err"; return 1
	fi
	if ! grep -qiE -- "$re" "$E2E_TMP/neg.err"; then
		cat "$E2E_TMP/neg.out" >>"$E2E_TMP/neg.err"
		e2e_fail "$desc: exit $rc but the message does not match /$re/" "$E2E_TMP/neg.err"; return 1
	fi
	e2e_pass "$desc (exit $rc: $(grep -m1 -iE -- "$re" "$E2E_TMP/neg.err" | cut -c1-120))"
}

# expect_fail "desc" REGEX I ARGS...: the same for `zl-overlay --data-dir DIR_I ARGS...` on host I.
expect_fail() {
	local desc=$1 re=$2 i=$3; shift 3
	expect_fail_run "$desc" "$re" ov_cli "$i" "$@"
}
