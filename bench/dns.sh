#!/usr/bin/env bash
# DNS benchmark: dnsperf queries per second against our DNS server and against NSD (Debian's nsd), one
# after the other in a network namespace created and deleted here, with the same query file (A, AAAA,
# SRV and NXDOMAIN queries):
#   harness      build/bench/dns_server_bench: od_dns_server (the server thread of zl-overlayd) serving
#                a zone of 100 names (node names, hostnames with AAAA, services with several addresses
#                and SRV records), the harness also writing that zone out as NSD's zone file;
#   zl-overlayd  the daemon itself, leader of a one-node overlay, with every name of that zone that may
#                be registered added through "zl-overlay dns add" (node names, "leader" and "ns" come
#                from membership there, so the query file's other node names get NXDOMAIN from it);
#   nsd          NSD serving the zone file.
#
# Fairness on a small machine: each server is pinned to CPU 1 and dnsperf to CPU 0 (when there are two
# CPUs); NSD runs one server process (server-count 1), with response rate limiting off (it would drop
# most of a benchmark's queries) and minimal responses (as ours: no NS records in the authority section
# of positive answers). Before measuring, a sample of queries is asked of each with dig and the status
# and answer set compared with NSD's, so they really serve the same data. Each server's CPU time during
# its run is read from /proc: on two CPUs dnsperf itself may be the limit, and queries per CPU second
# tell what a server costs.
#
# Output: on stdout the DNS section of the benchmark report (bench/run.sh includes it as is), in the
# stable format of the other sections; notes on stderr. Always exits 0 (a benchmark, not a test); a
# figure that could not be measured reads "n/a".
#
# Safety: namespace zlbd-<pid>-dns with only loopback (plus 192.0.2.1/32 on it as zl-overlayd's
# advertised endpoint); every process started here is recorded and stopped by pid in the EXIT trap
# (also on INT/TERM), which then deletes the namespace, the UAPI socket and the temp dir.
#
# Knobs: DNS_SECONDS=10 (per server), DNS_CLIENTS=4, DNS_OUTSTANDING=256, BENCH_KEEP=1 keeps the temp dir,
# DNS_BENCH_BIN=dir of dns_server_bench (default build/bench).
set -u

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
E2E_NS_PREFIX="zlbd-$$-"

DNS_SECONDS=${DNS_SECONDS:-10}
DNS_CLIENTS=${DNS_CLIENTS:-4}
DNS_OUTSTANDING=${DNS_OUTSTANDING:-256}
ADDR=127.0.0.1
NSD_PORT=15353
OURS_PORT=15354
OVD_PORT=15355
ZONE=overlay.local.
SAMPLE=24                 # distinct queries compared between the two servers
BENCH_BIN=${DNS_BENCH_BIN:-$E2E_ROOT/build/bench}

# ---------------------------------------------------------------- lifecycle

# stop_pid PID TAG: SIGTERM, a bounded wait, then SIGKILL; only while the pid is still ours.
stop_pid() {
	local pid=$1 tag=$2
	pid_is_ours "$pid" "$tag" || return 0
	kill -TERM "$pid" 2>/dev/null
	wait_until 5 eval "! pid_is_ours $pid '$tag'" || kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	return 0
}

# ---------------------------------------------------------------- servers

pin() { if [ "$(nproc)" -ge 2 ]; then echo "taskset -c $1"; fi; }

# start_bg NAME CPU cmd...: lib.sh's bg (pid recorded for the EXIT trap), from a subshell pinned to
# CPU first so the command and its children inherit the affinity while their command line stays the
# one recorded (a taskset prefix would exec away). Prints the pid.
start_bg() {
	local name=$1 cpu=$2; shift 2
	(
		if [ "$(nproc)" -ge 2 ]; then taskset -p -c "$cpu" "$BASHPID" >/dev/null; fi
		bg "$NS" "$name" "$@"
	)
}

# answers NS PORT NAME TYPE: the status and the sorted answer set, or nothing when there was no answer.
answers() {
	local out
	out=$(ip netns exec "$1" dig @"$ADDR" -p "$2" "$3" "$4" +norec +time=1 +tries=2 +noall +comments +answer 2>/dev/null) || return
	printf '%s|' "$(sed -n 's/.*status: \([A-Z]*\),.*/\1/p' <<<"$out")"
	grep -v '^;' <<<"$out" | awk 'NF >= 5 { $2 = ""; print }' | sort | tr '\n' ';'
}

server_ready() { [ -n "$(answers "$NS" "$1" "ns.$ZONE" A)" ]; }

start_ours() {
	OURS_CMD="$E2E_TMP/dns_server_bench serve $ADDR $OURS_PORT"
	# shellcheck disable=SC2086 # a command line without spaces inside its words
	OURS_PID=$(start_bg ours 1 $OURS_CMD)
	wait_until 5 server_ready "$OURS_PORT"
}

start_nsd() {
	local d=$E2E_TMP/nsd
	mkdir -p "$d"
	cat >"$d/nsd.conf" <<EOF
server:
  ip-address: $ADDR
  port: $NSD_PORT
  do-ip6: no
  server-count: 1
  username: ""
  chroot: ""
  database: ""
  zonesdir: "$d"
  zonelistfile: "$d/zone.list"
  xfrdfile: "$d/xfrd.state"
  xfrdir: "$d"
  pidfile: "$d/nsd.pid"
  logfile: "$d/nsd.log"
  verbosity: 0
  hide-version: yes
  round-robin: yes
  minimal-responses: yes
  rrl-ratelimit: 0
  rrl-whitelist-ratelimit: 0
remote-control:
  control-enable: no
zone:
  name: $ZONE
  zonefile: "$E2E_TMP/overlay.zone"
EOF
	nsd-checkconf "$d/nsd.conf" >&2 || return 1
	NSD_CMD="nsd -d -c $d/nsd.conf"
	# shellcheck disable=SC2086
	NSD_PID=$(start_bg nsd 1 $NSD_CMD)
	wait_until 10 server_ready "$NSD_PORT"
}

# compare_answers PORT [SKIP]: how many of SAMPLE distinct queries (names matching the regex SKIP left
# out) get the same status and answer set from the server at PORT as from NSD.
compare_answers() {
	local port=$1 skip=${2:-^$} same=0 n=0 name type a b
	while read -r name type; do
		a=$(answers "$NS" "$port" "$name" "$type")
		b=$(answers "$NS" "$NSD_PORT" "$name" "$type")
		n=$((n + 1))
		if [ -n "$a" ] && [ "$a" = "$b" ]; then same=$((same + 1)); else note "  differs: $name $type: '$a', nsd '$b'"; fi
	done < <(awk '!seen[$0]++' "$E2E_TMP/queries.txt" | grep -Ev "$skip" | awk -v n="$SAMPLE" 'NR % 5 == 1 && c++ < n')
	printf '%s/%s' "$same" "$n"
}

# zl-overlayd itself: a one-node overlay (its leader) in the namespace, serving DNS on OVD_PORT, with
# every name of the zone that may be registered added through the CLI ("zl-overlay dns add", lines from
# the harness). Node names, "leader" and "ns" come from membership there, so the other node names of
# the query file get NXDOMAIN from it: the same queries, a zone that differs in those names.
start_overlayd() {
	local d=$E2E_TMP/ov ifn line n=0 total
	ifn=zbd$(($$ % 10000))
	[ -e "$E2E_WG_SOCK_DIR/$ifn.sock" ] && { note "$ifn.sock exists (another run?)"; return 1; }
	echo "$ifn" >>"$E2E_TMP/ifnames"
	ip -n "$NS" addr add 192.0.2.1/32 dev lo || return 1
	timeout 20 ip netns exec "$NS" "$OVC" --data-dir "$d" init-leader --cidr 10.200.0.0/16 \
		--endpoint 192.0.2.1:51820 --hostname bench --interface "$ifn" >"$E2E_TMP/init.out" 2>&1 ||
		{ note "init-leader failed: $(tail -2 "$E2E_TMP/init.out")"; return 1; }
	OVD_CMD="$OVD --data-dir $d --interface $ifn --dns-port $OVD_PORT"
	# shellcheck disable=SC2086
	OVD_PID=$(start_bg overlayd 1 $OVD_CMD)
	wait_until 10 server_ready "$OVD_PORT" || { note "zl-overlayd: $(tail -3 "$E2E_TMP/bg.overlayd.log")"; return 1; }
	while read -r line; do
		# shellcheck disable=SC2086 # one line = the arguments of one "dns add"
		timeout 10 ip netns exec "$NS" "$OVC" --data-dir "$d" dns add $line >/dev/null 2>>"$E2E_TMP/register.err" &&
			n=$((n + 1))
	done <"$E2E_TMP/register.txt"
	total=$(wc -l <"$E2E_TMP/register.txt")
	note "zl-overlayd: $n of $total registrations"
	[ "$n" = "$total" ] || { note "  $(tail -2 "$E2E_TMP/register.err")"; return 1; }
}

# The built zl-overlayd and CLI (copied), when the daemon has DNS.
have_overlayd() {
	local b=$E2E_ROOT/build/bin
	[ -x "$b/zl-overlayd" ] && [ -x "$b/zl-overlay" ] && "$b/zl-overlayd" --help 2>&1 | grep -q -- --dns-port ||
		{ note "no zl-overlayd with DNS in $b (run make): its column is n/a"; return 1; }
	cp "$b/zl-overlayd" "$E2E_TMP/zl-overlayd" && cp "$b/zl-overlay" "$E2E_TMP/zl-overlay" || return 1
	OVD=$E2E_TMP/zl-overlayd
	OVC=$E2E_TMP/zl-overlay
}

# ---------------------------------------------------------------- measurement

# cpu_ticks PID: user + system clock ticks of PID and all its descendants (NSD forks its workers).
cpu_ticks() {
	local t c
	# Fields counted after the command name, which may hold spaces (NSD renames its workers).
	t=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk '{ print $12 + $13 }')
	t=${t:-0}
	for c in $(pgrep -P "$1"); do t=$((t + $(cpu_ticks "$c"))); done
	printf '%s' "$t"
}

# dnsperf_run LABEL PORT SERVER_PID: queries/s, average latency (ms) and lost queries (%) of one run,
# and the server's CPU use: percent of one CPU, and queries answered per CPU second (what the server
# costs, whoever the bottleneck is: on two CPUs dnsperf itself may be the limit).
dnsperf_run() {
	local label=$1 port=$2 pid=$3 out=$E2E_TMP/dnsperf.$1.txt t0 t1
	note "$label: dnsperf $DNS_SECONDS s, $DNS_CLIENTS clients, $DNS_OUTSTANDING outstanding"
	t0=$(cpu_ticks "$pid")
	# shellcheck disable=SC2046 # pin's words
	timeout $((DNS_SECONDS + 30)) ip netns exec "$NS" $(pin 0) dnsperf -s "$ADDR" -p "$port" \
		-d "$E2E_TMP/queries.txt" -l "$DNS_SECONDS" -c "$DNS_CLIENTS" -q "$DNS_OUTSTANDING" >"$out" 2>&1
	t1=$(cpu_ticks "$pid")
	fig "qps.$label" "$(awk '/Queries per second:/ { printf "%.0f", $4 }' "$out")"
	fig "lat.$label" "$(awk '/Average Latency/ { printf "%.3f", $4 * 1000 }' "$out")"
	fig "lost.$label" "$(sed -n 's/.*Queries lost:.*(\([0-9.]*\)%).*/\1/p' "$out")"
	fig "cpu.$label" "$(awk -v t=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" '/Run time \(s\):/ && $4 > 0 {
		printf "%.0f", 100 * t / hz / $4 }' "$out")"
	fig "qpcs.$label" "$(awk -v t=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" '/Queries completed:/ && t > 0 {
		printf "%.0f", $3 / (t / hz) }' "$out")"
	[ -n "${R[qps.$label]}" ] || { note "$label: dnsperf gave no figure:"; tail -5 "$out" >&2; }
}

measure() {
	local bin=$BENCH_BIN/dns_server_bench
	command -v nsd >/dev/null && command -v dnsperf >/dev/null && command -v dig >/dev/null ||
		{ note "nsd, dnsperf or dig missing (make deps)"; return; }
	[ -x "$bin" ] || { note "no $bin (run make bench)"; return; }
	# A copy: other work may rebuild build/ while this runs.
	cp "$bin" "$E2E_TMP/dns_server_bench" || return
	"$E2E_TMP/dns_server_bench" files "$E2E_TMP" || return
	nsd-checkzone "$ZONE" "$E2E_TMP/overlay.zone" >&2 || return
	NS=$(ns_name dns)
	ns_create "$NS" || { note "namespace could not be created"; return; }

	start_ours || { note "our server did not answer"; return; }
	fig names "$(sed -n 's/.*serving \([0-9]*\) names.*/\1/p' "$E2E_TMP/bg.ours.log")"
	start_nsd || { note "nsd did not answer (log: $(tail -3 "$E2E_TMP/nsd/nsd.log" 2>/dev/null))"; return; }
	fig same.ours "$(compare_answers "$OURS_PORT")"
	OVD_PID=
	if have_overlayd && start_overlayd; then
		fig same.ovd "$(compare_answers "$OVD_PORT" '^(node-|leader\.|ns\.)')"
	fi
	stop_pid "$NSD_PID" "$NSD_CMD"

	dnsperf_run ours "$OURS_PORT" "$OURS_PID"
	stop_pid "$OURS_PID" "$OURS_CMD"
	note "  ours counted: $(tail -1 "$E2E_TMP/bg.ours.log" 2>/dev/null)"
	if [ -n "$OVD_PID" ]; then
		dnsperf_run ovd "$OVD_PORT" "$OVD_PID"
		stop_pid "$OVD_PID" "$OVD_CMD"
	fi

	start_nsd || { note "nsd did not come back"; return; }
	dnsperf_run nsd "$NSD_PORT" "$NSD_PID"
	stop_pid "$NSD_PID" "$NSD_CMD"
}

# ---------------------------------------------------------------- report

# shellcheck disable=SC2059 # the formats are this function's own
report() {
	local who f='%-40s %12s %12s %10s  %s\n' g='%-40s %12s %10s  %s\n' a b
	printf "\n$f" dns harness zl-overlayd nsd unit
	printf "$f" "dns_queries_per_sec" "$(val qps.ours)" "$(val qps.ovd)" "$(val qps.nsd)" \
		"dnsperf ${DNS_SECONDS} s, UDP, ${DNS_CLIENTS} clients, ${DNS_OUTSTANDING} outstanding"
	printf "$f" "dns_latency_avg" "$(val lat.ours)" "$(val lat.ovd)" "$(val lat.nsd)" "ms"
	printf "$f" "dns_queries_lost" "$(val lost.ours)" "$(val lost.ovd)" "$(val lost.nsd)" "%"
	printf "$f" "dns_server_cpu" "$(val cpu.ours)" "$(val cpu.ovd)" "$(val cpu.nsd)" \
		"% of one CPU (server pinned to CPU 1, dnsperf to CPU 0)"
	printf "$f" "dns_queries_per_cpu_sec" "$(val qpcs.ours)" "$(val qpcs.ovd)" "$(val qpcs.nsd)" \
		"queries answered per second of server CPU time"
	printf "$f" "dns_sample_answers_alike_nsd" "$(val same.ours)" "$(val same.ovd)" "-" \
		"status + answer set (dig); zl-overlayd: names it can hold"
	printf "\n$g" ratio value target verdict
	for who in ours:harness ovd:zl-overlayd; do
		a=$(ratio "$(val "qps.${who%%:*}")" "$(val qps.nsd)")
		printf "$g" "dns_queries_per_sec ${who#*:} / nsd" "$a" ">= 0.50" "$(verdict "$a" '>=' 0.50)"
	done
	for who in ours:harness ovd:zl-overlayd; do
		b=$(ratio "$(val "qpcs.${who%%:*}")" "$(val qpcs.nsd)")
		printf "$g" "dns_queries_per_cpu_sec ${who#*:} / nsd" "$b" "-" "-"
	done
	printf '%-40s %s\n' "dns_setup" "nsd $NSD_VERSION, dnsperf $DNSPERF_VERSION; zone of $(val names) names;"
	printf '%-40s %s\n' "" "harness = od_dns_server serving NSD's zone (bench/dns_server_bench);"
	printf '%-40s %s\n' "" "zl-overlayd = one-node overlay, names registered with the CLI"
}

main() {
	NSD_VERSION=$(nsd -v 2>&1 | awk 'NR == 1 { print $3 }')
	DNSPERF_VERSION=$(dnsperf -h 2>&1 | awk '/^Version/ { print $2 }')
	if bench_begin dns; then
		measure
	fi
	report
}

main "$@"
