#!/usr/bin/env bash
# lifecycle: the daemon's start and exit conditions, as wg-quick and wg rely on them:
#  - daemon mode returns once the interface and socket exist, the daemon keeps running;
#  - it exits when its UAPI socket file is removed, when its interface is deleted, on SIGINT;
#  - foreground mode (-f, and WG_PROCESS_FOREGROUND=1) does not return; SIGTERM ends it with status 0;
#  - a second instance on an interface name in use is refused and leaves the first one working.
# Usage: IMPL=zl-wg tests/e2e/lifecycle.sh
. "$(dirname "$0")/lib.sh"
IMPL=${IMPL:-${IMPL_A:-zl-wg}}
e2e_init lifecycle
say "# IMPL=$IMPL"
IMPL_PATH=$(resolve_impl "$IMPL")
NS=$(ns_name l)
must "namespace" ns_create "$NS"

gone() { # gone IFNAME: daemon, interface and socket all gone
	wait_until 5 daemon_gone "$1" && wait_until 3 eval "! ip -n $NS link show dev $1" &&
		wait_until 3 test ! -e "$E2E_WG_SOCK_DIR/$1.sock"
}

step "exits when its socket file is removed"
IF=$(if_name s)
must "start $IF" start_wg "$NS" "$IMPL" "$IF"
sleep 0.3
check "still running after start returned" daemon_alive "$IF"
rm -f "$E2E_WG_SOCK_DIR/$IF.sock"
check "daemon exits, interface removed" gone "$IF"

step "exits when its interface is deleted"
IF=$(if_name d)
must "start $IF" start_wg "$NS" "$IMPL" "$IF"
must "ip link del $IF" ip -n "$NS" link del "$IF"
check "daemon exits, socket removed" gone "$IF"

step "exits on SIGINT"
IF=$(if_name i)
must "start $IF" start_wg "$NS" "$IMPL" "$IF"
kill -INT "$(wg_pid "$IF")"
check "daemon exits, interface and socket removed" gone "$IF"

# foreground START_CMD_PREFIX... : starts in the foreground as our child, checks, then SIGTERM.
foreground() {
	local desc=$1 ifn=$2; shift 2
	step "foreground: $desc"
	echo "$ifn" >>"$E2E_TMP/ifnames"
	ZL_WG_LOG_FILE="$E2E_TMP/$ifn.daemon.log" ip netns exec "$NS" "$@" >>"$E2E_TMP/$ifn.start.log" 2>&1 </dev/null &
	local pid=$!
	echo "$pid $ifn" >>"$E2E_TMP/pids"; echo "$pid" >"$E2E_TMP/pid.$ifn"
	check "interface and socket appear" wait_until 10 eval "test -S $E2E_WG_SOCK_DIR/$ifn.sock && ip -n $NS link show dev $ifn"
	check "the started process itself serves the socket (did not fork away)" \
		eval "[ \"\$(sock_owner_pid $NS $ifn)\" = $pid ]"
	check "it is configurable" wgx "$NS" set "$ifn" listen-port 51899
	check_eq "and reports it" 51899 "$(wgx "$NS" show "$ifn" listen-port)"
	kill -TERM "$pid"
	local rc=0 i
	for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	if kill -0 "$pid" 2>/dev/null; then rc=timeout; else wait "$pid"; rc=$?; fi
	check_eq "SIGTERM ends it with status 0" 0 "$rc"
	check "interface and socket removed" gone "$ifn"
}
foreground "-f" "$(if_name f)" "$IMPL_PATH" -f "$(if_name f)"
foreground "WG_PROCESS_FOREGROUND=1" "$(if_name e)" env WG_PROCESS_FOREGROUND=1 "$IMPL_PATH" "$(if_name e)"

step "a second instance on a name in use is refused"
IF=$(if_name u)
must "start $IF" start_wg "$NS" "$IMPL" "$IF"
must "configure it" wgx "$NS" set "$IF" listen-port 51898
PID1=$(wg_pid "$IF")
timeout -k 2 10 ip netns exec "$NS" "$IMPL_PATH" "$IF" >"$E2E_TMP/second.out" 2>&1 </dev/null
RC=$?
# If it wrongly started, make sure cleanup finds it.
P2=$(sock_owner_pid "$NS" "$IF"); [ -n "$P2" ] && [ "$P2" != "$PID1" ] && echo "$P2 $IF" >>"$E2E_TMP/pids"
check "second start exits non-zero (got $RC)" test "$RC" -ne 0 -a "$RC" -ne 124
check "first daemon still alive" daemon_alive "$IF"
check "first daemon still owns the socket" test "$(sock_owner_pid "$NS" "$IF")" = "$PID1"
check_eq "and still answers with its configuration" 51898 "$(wgx "$NS" show "$IF" listen-port)"
check "stops on SIGTERM" stop_wg "$NS" "$IF"
e2e_finish
