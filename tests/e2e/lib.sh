# shellcheck shell=bash
# Shared helpers for the end-to-end scenarios. Source it, call e2e_init, write checks, call e2e_finish.
#
# Safety model: everything happens inside network namespaces created here with names unique to this
# run (zle2e-<id>-*), on a veth pair between them, with underlay addresses from the documentation ranges
# (192.0.2.0/24, 198.51.100.0/24, 2001:db8::/64) and tunnel addresses 10.9.0.0/24 / fd00:9::/64. The root
# namespace's interfaces and routes are never touched. Every namespace, daemon pid, helper pid and UAPI
# socket is recorded in files under the run's temp dir, so the EXIT trap (also run on INT/TERM and on
# failure) can kill exactly what was started, by pid, and delete exactly what was created.
#
# Implementations are parameters: "zl-wg" (build/bin/zl-wg), "wireguard-go", or a path.

E2E_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
E2E_PASSED=0
E2E_FAILED=0
E2E_DONE=
E2E_TMP=
# Short numeric id: keeps interface names within IFNAMSIZ (15 chars) and unique per scenario process.
E2E_ID=$$
E2E_NS_PREFIX="zle2e-${E2E_RUN_ID:-$$}-$$-"
E2E_WG_SOCK_DIR=/var/run/wireguard
E2E_VERBOSE=${E2E_VERBOSE:-0}

# ---------------------------------------------------------------- output and assertions

say()  { printf '%s\n' "$*"; }
step() { printf '\n== %s\n' "$*"; }
dbg()  { [ "$E2E_VERBOSE" = 1 ] && printf '   . %s\n' "$*"; return 0; }

e2e_pass() { E2E_PASSED=$((E2E_PASSED + 1)); say "ok   - $1"; }
e2e_fail() {
	E2E_FAILED=$((E2E_FAILED + 1)); say "FAIL - $1"
	[ -n "${2:-}" ] && [ -s "$2" ] && sed -n '1,25s/^/       | /p' "$2"
	return 0
}

# check "description" cmd args...: runs the command, passes iff it exits 0.
check() {
	local desc=$1; shift
	local out="$E2E_TMP/check.out"
	if "$@" >"$out" 2>&1; then e2e_pass "$desc"; return 0; fi
	e2e_fail "$desc" "$out"; return 1
}

# check_eq "description" expected actual
check_eq() {
	if [ "$2" == "$3" ]; then e2e_pass "$1"; return 0; fi
	e2e_fail "$1: expected '$2', got '$3'"; return 1
}

# must "description" cmd...: like check, but a failure aborts the scenario (later steps depend on it).
must() {
	check "$@" && return 0
	say "       aborting scenario: a required step failed"
	exit 1
}

# wait_until TIMEOUT_S cmd...: polls every 0.1 s until the command succeeds; bounded.
wait_until() {
	local timeout=$1; shift
	local deadline=$((SECONDS + timeout))
	while :; do
		"$@" >/dev/null 2>&1 && return 0
		[ "$SECONDS" -ge "$deadline" ] && return 1
		sleep 0.1
	done
}

# ---------------------------------------------------------------- lifecycle

# lifecycle_begin TMP_PREFIX ON_EXIT: the private temp dir (E2E_TMP) with the lists the cleanup reads,
# and the traps that run ON_EXIT however the run ends. Shared by the scenarios and the benchmarks.
lifecycle_begin() {
	E2E_TMP=$(mktemp -d "/tmp/$1.XXXXXX") || return 1
	chmod 700 "$E2E_TMP"
	: >"$E2E_TMP/namespaces"; : >"$E2E_TMP/pids"; : >"$E2E_TMP/ifnames"
	# A trap runs with the redirections of whatever was running (e.g. check's capture file): keep the
	# real stdout/stderr to restore them in the EXIT trap.
	exec 7>&1 8>&2
	trap 'exit 130' INT
	trap 'exit 143' TERM
	# shellcheck disable=SC2064 # the handler's name is fixed now, on purpose
	trap "$2" EXIT
}

e2e_init() {
	E2E_NAME=$1
	[ "$(id -u)" = 0 ] || { say "e2e: must run as root (network namespaces)"; exit 1; }
	lifecycle_begin "zle2e.$E2E_NAME" e2e_on_exit || exit 1
	say "# scenario $E2E_NAME (id $E2E_ID, temp $E2E_TMP)"
}

# Prints the recorded names into run-all's ledger so its final sweep can prove nothing was left behind.
e2e_export_ledger() {
	[ -n "${E2E_LEDGER:-}" ] || return 0
	{
		sed 's/^/ns /' "$E2E_TMP/namespaces"
		sed 's/^/if /' "$E2E_TMP/ifnames"
		sed 's/^/pid /' "$E2E_TMP/pids"
	} >>"$E2E_LEDGER" 2>/dev/null
}

# pid_is_ours PID TAG: the pid is alive (not a zombie) and its command line still mentions TAG,
# so a recycled pid is never signalled.
# pid_exited PID: the process is gone or a zombie (a child of ours that has not been waited for).
pid_exited() {
	local state
	state=$(awk '/^State:/ {print $2}' "/proc/$1/status" 2>/dev/null)
	[ -z "$state" ] || [ "$state" = Z ]
}

pid_is_ours() {
	local pid=$1 tag=$2 state
	[ -r "/proc/$pid/cmdline" ] || return 1
	state=$(awk '/^State:/ {print $2}' "/proc/$pid/status" 2>/dev/null)
	[ -n "$state" ] && [ "$state" != Z ] || return 1
	[ -z "$tag" ] && return 0
	tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$tag"
}

e2e_cleanup() {
	[ -n "$E2E_TMP" ] && [ -d "$E2E_TMP" ] || return 0
	local pid tag ns ifn i
	# Daemons and helpers first (SIGTERM, bounded wait, then SIGKILL), each by recorded pid only.
	while read -r pid tag; do
		[ -n "$pid" ] || continue
		pid_is_ours "$pid" "$tag" && kill -TERM "$pid" 2>/dev/null
	done <"$E2E_TMP/pids"
	for i in $(seq 30); do
		local alive=0
		while read -r pid tag; do
			[ -n "$pid" ] && pid_is_ours "$pid" "$tag" && alive=1
		done <"$E2E_TMP/pids"
		[ "$alive" = 0 ] && break
		sleep 0.1
	done
	while read -r pid tag; do
		[ -n "$pid" ] && pid_is_ours "$pid" "$tag" && kill -KILL "$pid" 2>/dev/null
	done <"$E2E_TMP/pids"
	while read -r ns; do
		[ -n "$ns" ] && ip netns del "$ns" 2>/dev/null
	done <"$E2E_TMP/namespaces"
	while read -r ifn; do
		[ -n "$ifn" ] && rm -f "$E2E_WG_SOCK_DIR/$ifn.sock"
	done <"$E2E_TMP/ifnames"
	return 0
}

# Proves the cleanup left nothing: no namespace, live pid or socket recorded by this scenario.
e2e_leftovers() {
	local ns ifn pid tag bad=0
	while read -r ns; do
		[ -n "$ns" ] && [ -e "/run/netns/$ns" ] && { say "leftover namespace $ns"; bad=1; }
	done <"$E2E_TMP/namespaces"
	while read -r ifn; do
		[ -n "$ifn" ] && [ -e "$E2E_WG_SOCK_DIR/$ifn.sock" ] && { say "leftover socket $ifn.sock"; bad=1; }
	done <"$E2E_TMP/ifnames"
	while read -r pid tag; do
		[ -n "$pid" ] && pid_is_ours "$pid" "$tag" && { say "leftover process $pid ($tag)"; bad=1; }
	done <"$E2E_TMP/pids"
	return $bad
}

e2e_dump_logs() {
	local f
	for f in "$E2E_TMP"/*.log; do
		[ -s "$f" ] || continue
		say "   --- tail of $(basename "$f")"
		grep -av '[│┌└]' "$f" | tail -n 15 | cut -c1-300 | LC_ALL=C tr -c '[:print:]\t\n' '?' | sed 's/^/   | /'
	done
}

e2e_summary() {
	E2E_DONE=1
	say ""
	say "# $E2E_NAME: ${E2E_PASSED} passed, ${E2E_FAILED} failed"
	say "${E2E_PASSED} passed, ${E2E_FAILED} failed"
}

# Normal end of a scenario: clean up, assert the cleanup, print the summary line, exit with the verdict.
e2e_finish() {
	e2e_export_ledger
	e2e_cleanup
	check "cleanup left no namespace, process or socket" e2e_leftovers
	[ "$E2E_FAILED" -gt 0 ] && e2e_dump_logs
	e2e_summary
	rm -rf "$E2E_TMP"; E2E_TMP=
	[ "$E2E_FAILED" -eq 0 ] && exit 0
	exit 1
}

# EXIT trap: also reached on abort, error or signal; an unfinished scenario counts as a failure.
e2e_on_exit() {
	local rc=$?
	trap - EXIT INT TERM
	exec 1>&7 2>&8
	if [ -z "$E2E_DONE" ] && [ -n "$E2E_TMP" ]; then
		e2e_export_ledger
		e2e_fail "scenario $E2E_NAME ended early (status $rc)"
		e2e_dump_logs
		e2e_cleanup
		e2e_leftovers || e2e_fail "cleanup after early end left something behind"
		e2e_summary
		[ "${E2E_KEEP:-0}" = 1 ] && say "# kept $E2E_TMP" || rm -rf "$E2E_TMP"
		exit 1
	fi
	exit "$rc"
}

# ---------------------------------------------------------------- namespaces and links

ns_name() { printf '%s%s' "$E2E_NS_PREFIX" "$1"; }

# ns_create NS: a fresh namespace with loopback up; recorded before creation so cleanup sees it.
ns_create() {
	local ns=$1
	echo "$ns" >>"$E2E_TMP/namespaces"
	ip netns add "$ns" || return 1
	ip -n "$ns" link set lo up || return 1
	# No router solicitations / autoconf chatter from any interface of this namespace.
	ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.accept_ra=0 net.ipv6.conf.default.accept_ra=0 \
		net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 >/dev/null 2>&1
	return 0
}

# veth_pair NS1 DEV1 NS2 DEV2: created directly inside the namespaces (never in the root one), up.
veth_pair() {
	ip -n "$1" link add "$2" type veth peer name "$4" netns "$3" || return 1
	ip -n "$1" link set "$2" up && ip -n "$3" link set "$4" up
}

# ns_addr NS DEV ADDR/PLEN: IPv6 addresses skip DAD so they are usable at once.
ns_addr() {
	case $3 in
	*:*) ip -n "$1" addr add "$3" dev "$2" nodad ;;
	*) ip -n "$1" addr add "$3" dev "$2" ;;
	esac
}

nsx() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

# ---------------------------------------------------------------- implementations

# resolve_impl NAME: absolute path of an implementation ("zl-wg", "wireguard-go", a path, a command).
resolve_impl() {
	case $1 in
	zl-wg) printf '%s' "$E2E_ROOT/build/bin/zl-wg" ;;
	/*) printf '%s' "$1" ;;
	*/*) printf '%s' "$E2E_ROOT/$1" ;;
	*) command -v "$1" ;;
	esac
}

impl_label() { basename "$1"; }

# if_name SUFFIX: a tunnel interface name unique to this scenario process (<= 15 chars).
if_name() {
	local n="zw${E2E_ID}$1"
	[ "${#n}" -le 15 ] || { say "interface name $n too long"; return 1; }
	printf '%s' "$n"
}

# sock_owner_pid NS IFNAME: pid of the process listening on the interface's UAPI socket, as ss sees it
# from inside the namespace (the socket belongs to the namespace its creator runs in).
sock_owner_pid() {
	ip netns exec "$1" ss -xlpn 2>/dev/null | grep -F "$E2E_WG_SOCK_DIR/$2.sock " |
		grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2
}

has_sock_owner() { [ -n "$(sock_owner_pid "$1" "$2")" ]; }

link_is_tun() { ip -n "$1" -d link show dev "$2" 2>/dev/null | grep -qE '^\s+tun type tun'; }

# register_daemon NS IFNAME IMPL_PATH: finds the daemon behind the socket, records its pid, and checks
# it is the expected program driving a TUN device (never a kernel wireguard link).
register_daemon() {
	local ns=$1 ifn=$2 impl=$3 pid exe
	pid=$(sock_owner_pid "$ns" "$ifn")
	[ -n "$pid" ] || { say "no process owns $E2E_WG_SOCK_DIR/$ifn.sock"; return 1; }
	echo "$pid $ifn" >>"$E2E_TMP/pids"
	echo "$pid" >"$E2E_TMP/pid.$ifn"
	exe=$(readlink "/proc/$pid/exe")
	[ "$exe" = "$(readlink -f "$impl")" ] || { say "socket owner $pid is $exe, expected $impl"; return 1; }
	link_is_tun "$ns" "$ifn" || { say "$ifn is not a TUN device:"; ip -n "$ns" -d link show dev "$ifn"; return 1; }
	return 0
}

# start_wg NS IMPL IFNAME: starts the daemon the way wg-quick does and waits (bounded) for the
# interface and its socket; the starter must return by itself (the daemon forks).
start_wg() {
	local ns=$1 impl ifn=$3 rc
	impl=$(resolve_impl "$2") && [ -x "$impl" ] || { say "implementation '$2' not found"; return 1; }
	echo "$ifn" >>"$E2E_TMP/ifnames"
	dbg "start $(impl_label "$impl") $ifn in $ns"
	ZL_WG_LOG_FILE="$E2E_TMP/$ifn.daemon.log" LOG_LEVEL="${E2E_WGGO_LOG_LEVEL:-error}" \
		timeout -k 2 15 ip netns exec "$ns" "$impl" "$ifn" >>"$E2E_TMP/$ifn.start.log" 2>&1 </dev/null
	rc=$?
	[ "$rc" = 0 ] || { say "$impl $ifn exited with $rc"; cat "$E2E_TMP/$ifn.start.log"; return 1; }
	wait_until 10 test -S "$E2E_WG_SOCK_DIR/$ifn.sock" || { say "no socket for $ifn"; return 1; }
	ip -n "$ns" link show dev "$ifn" >/dev/null 2>&1 || { say "no interface $ifn after start returned"; return 1; }
	wait_until 5 has_sock_owner "$ns" "$ifn"
	register_daemon "$ns" "$ifn" "$impl"
}

wg_pid() { cat "$E2E_TMP/pid.$1" 2>/dev/null; }

daemon_alive() { local p; p=$(wg_pid "$1") && [ -n "$p" ] && pid_is_ours "$p" "$1"; }

daemon_gone() { ! daemon_alive "$1"; }

# stop_wg NS IFNAME: SIGTERM to the daemon; succeeds when it exited and removed interface and socket.
stop_wg() {
	local ns=$1 ifn=$2 pid
	pid=$(wg_pid "$ifn")
	[ -n "$pid" ] && pid_is_ours "$pid" "$ifn" && kill -TERM "$pid"
	wait_until 5 daemon_gone "$ifn" || { say "$ifn daemon $pid still alive after SIGTERM"; return 1; }
	wait_until 3 eval "! ip -n '$ns' link show dev '$ifn'" || { say "$ifn still exists"; return 1; }
	wait_until 3 test ! -e "$E2E_WG_SOCK_DIR/$ifn.sock" || { say "$ifn.sock still exists"; return 1; }
	return 0
}

# ---------------------------------------------------------------- keys and configuration

# gen_key NAME: NAME.key / NAME.pub in the temp dir.
gen_key() {
	(umask 077; wg genkey >"$E2E_TMP/$1.key") && wg pubkey <"$E2E_TMP/$1.key" >"$E2E_TMP/$1.pub"
}
key_file() { printf '%s' "$E2E_TMP/$1.key"; }
pub_of() { cat "$E2E_TMP/$1.pub"; }

wgx() { local ns=$1; shift; ip netns exec "$ns" wg "$@"; }

# tunnel_up NS IFNAME V4/PLEN V6/PLEN: addresses (v6 without DAD) and link up.
tunnel_up() {
	ns_addr "$1" "$2" "$3" && ns_addr "$1" "$2" "$4" && ip -n "$1" link set "$2" up
}

# peer_field NS IFNAME PUB FIELD: one column of `wg show IFNAME FIELD` for the given peer.
peer_field() {
	wgx "$1" show "$2" "$4" | awk -v k="$3" '$1 == k { $1 = ""; sub(/^ /, ""); print }'
}

handshake_done() {
	local t
	t=$(peer_field "$1" "$2" "$3" latest-handshakes)
	[ -n "$t" ] && [ "$t" != 0 ]
}

# wait_handshake NS IFNAME PEERPUB [TIMEOUT]
wait_handshake() { wait_until "${4:-10}" handshake_done "$1" "$2" "$3"; }

# transfer NS IFNAME PUB: prints "rx tx" for the peer.
transfer() { peer_field "$1" "$2" "$3" transfer; }
# transfer_is NS IFNAME PUB "RX TX": for polling with wait_until (re-reads on every call).
transfer_is() { [ "$(transfer "$1" "$2" "$3")" = "$4" ]; }

# ping_ok NS ADDR [TRIES]: one echo answered within TRIES attempts of 1 s (covers the first handshake).
ping_ok() {
	local ns=$1 addr=$2 tries=${3:-5} i
	for i in $(seq "$tries"); do
		ip netns exec "$ns" ping -n -q -c 1 -W 1 "$addr" >/dev/null 2>&1 && return 0
	done
	say "no answer from $addr in $ns after $tries tries"
	return 1
}

# ping_fails NS ADDR: no answer to 2 echoes.
ping_fails() { ! ip netns exec "$1" ping -n -q -c 2 -i 0.3 -W 1 "$2" >/dev/null 2>&1; }

# bg NS NAME cmd...: a helper process in the namespace, pid recorded for cleanup (ip netns exec execs,
# so $! is the command itself); its command line is the recorded tag, so a recycled pid is never hit.
bg() {
	local ns=$1 name=$2; shift 2
	ip netns exec "$ns" "$@" >>"$E2E_TMP/bg.$name.log" 2>&1 </dev/null &
	echo "$! $*" | cut -c1-120 >>"$E2E_TMP/pids"
	echo "$!"
}

# uapi IFNAME TEXT: sends TEXT (printf %b escapes) to the UAPI socket, prints the reply.
uapi() {
	printf '%b' "$2" | timeout 5 socat -t 2 - "UNIX-CONNECT:$E2E_WG_SOCK_DIR/$1.sock"
}

# ---------------------------------------------------------------- common topology

# Two namespaces A and B on a veth pair: A 192.0.2.1 / 2001:db8::1, B 192.0.2.2 / 2001:db8::2.
UL_A4=192.0.2.1; UL_B4=192.0.2.2; UL_A6=2001:db8::1; UL_B6=2001:db8::2
TUN_A4=10.9.0.1; TUN_B4=10.9.0.2; TUN_A6=fd00:9::1; TUN_B6=fd00:9::2
PORT_A=51820; PORT_B=51821

setup_pair() {
	NS_A=$(ns_name a); NS_B=$(ns_name b)
	must "create namespaces" eval "ns_create $NS_A && ns_create $NS_B"
	must "veth underlay with 192.0.2.0/24 and 2001:db8::/64" eval "veth_pair $NS_A ul0 $NS_B ul0 &&
		ns_addr $NS_A ul0 $UL_A4/24 && ns_addr $NS_A ul0 $UL_A6/64 &&
		ns_addr $NS_B ul0 $UL_B4/24 && ns_addr $NS_B ul0 $UL_B6/64"
	must "underlay reachable" ping_ok "$NS_A" "$UL_B4" 3
}

# endpoint_of FAMILY NAME: underlay endpoint string for A or B over IPv4 ("4") or IPv6 ("6").
endpoint_of() {
	case "$1$2" in
	4A) printf '%s:%s' "$UL_A4" "$PORT_A" ;;
	4B) printf '%s:%s' "$UL_B4" "$PORT_B" ;;
	6A) printf '[%s]:%s' "$UL_A6" "$PORT_A" ;;
	6B) printf '[%s]:%s' "$UL_B6" "$PORT_B" ;;
	esac
}

# tunnel_pair IMPL_A IMPL_B FAMILY INITIATOR: daemons on both sides, configured with `wg set`; only the
# initiator ("A", "B" or "both") knows the other's endpoint. Sets IF_A, IF_B, PUB_A, PUB_B.
tunnel_pair() {
	local impl_a=$1 impl_b=$2 fam=$3 init=$4 ep_a= ep_b=
	IF_A=$(if_name "a${TP_SEQ:-0}"); IF_B=$(if_name "b${TP_SEQ:-0}"); TP_SEQ=$(( ${TP_SEQ:-0} + 1 ))
	[ -f "$E2E_TMP/A.key" ] || gen_key A; [ -f "$E2E_TMP/B.key" ] || gen_key B
	PUB_A=$(pub_of A); PUB_B=$(pub_of B)
	case $init in A) ep_b="endpoint $(endpoint_of "$fam" B)" ;; B) ep_a="endpoint $(endpoint_of "$fam" A)" ;;
	both) ep_b="endpoint $(endpoint_of "$fam" B)"; ep_a="endpoint $(endpoint_of "$fam" A)" ;; esac
	must "start $(impl_label "$impl_a") as $IF_A in A" start_wg "$NS_A" "$impl_a" "$IF_A"
	must "start $(impl_label "$impl_b") as $IF_B in B" start_wg "$NS_B" "$impl_b" "$IF_B"
	# shellcheck disable=SC2086
	must "configure A with wg set" wgx "$NS_A" set "$IF_A" listen-port $PORT_A private-key "$(key_file A)" \
		peer "$PUB_B" allowed-ips "$TUN_B4/32,$TUN_B6/128" $ep_b
	# shellcheck disable=SC2086
	must "configure B with wg set" wgx "$NS_B" set "$IF_B" listen-port $PORT_B private-key "$(key_file B)" \
		peer "$PUB_A" allowed-ips "$TUN_A4/32,$TUN_A6/128" $ep_a
	must "tunnel addresses on A" tunnel_up "$NS_A" "$IF_A" "$TUN_A4/24" "$TUN_A6/64"
	must "tunnel addresses on B" tunnel_up "$NS_B" "$IF_B" "$TUN_B4/24" "$TUN_B6/64"
}
