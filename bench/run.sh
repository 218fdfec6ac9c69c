#!/usr/bin/env bash
# Benchmarks zl-wg against wireguard-go (the Debian package) and the bare veth pair underneath, in one go,
# inside two network namespaces created (and deleted) here, then the core in memory:
#   1. iperf3 TCP, 1 and 4 streams, 10 s, through zl-wg, wireguard-go and the bare veth pair;
#   2. iperf3 UDP, the highest rate with < 1% loss (a short search of 3 s steps), both implementations;
#   3. ping RTT, median of 100 echoes at 10 ms intervals, through each;
#   4. handshakes per second one core completes as responder (build/bench/handshake_bench);
#   5. memory per peer of each daemon with 10,000 peers set through the UAPI (one allowed IP each), and
#      the allowed-IPs trie with 100,000 prefixes: lookups/s and bytes per prefix (build/bench/allowedips_bench);
#   6. DNS: dnsperf queries/s against our DNS server (in a harness, and in zl-overlayd) and NSD with the
#      same zone and queries (bench/dns.sh: its own namespace, its own section of the report).
# Prints every figure, the ratios and PASS/MISS against the targets, and overwrites bench/RESULTS.md with
# the same block plus the machine. Always exits 0 (a benchmark, not a test); a figure that could not be
# measured reads "n/a". The output format is kept stable so runs can be compared line by line; change
# BENCH_FORMAT when it has to change.
#
# Safety: lib.sh's model — namespaces named zlb-<pid>-*, underlay 192.0.2.0/24 on a veth pair created
# inside them, tunnel 10.9.0.0/24; the root namespace is never configured; every daemon, helper, namespace
# and UAPI socket is recorded and removed by the EXIT trap (also on INT/TERM), by recorded pid only.
#
# Knobs for quick trials (the defaults are the benchmark): TCP_SECONDS=10 UDP_SECONDS=3 UDP_STEPS=5
# PEERS=10000 HS_N=10000 HS_M=64 PREFIXES=100000, RESULTS=path (default bench/RESULTS.md).
set -u
BENCH_FORMAT=2

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
E2E_NS_PREFIX="zlb-$$-"

TCP_SECONDS=${TCP_SECONDS:-10}
UDP_SECONDS=${UDP_SECONDS:-3}
UDP_STEPS=${UDP_STEPS:-5}
UDP_LEN=1392              # fills a 1420-byte tunnel MTU with IPv4 (1392 + 8 + 20) without fragments
TUN_MTU=1420
PEERS=${PEERS:-10000}
HS_N=${HS_N:-10000}
HS_M=${HS_M:-64}
PREFIXES=${PREFIXES:-100000}
RESULTS=${RESULTS:-$E2E_ROOT/bench/RESULTS.md}
IPERF_PORT=5201
BENCH_BIN=$E2E_ROOT/build/bench

# ---------------------------------------------------------------- lifecycle

# A copy of the daemon: other work may rebuild build/bin/zl-wg while this run is in progress.
snapshot_zlwg() {
	local src=$E2E_ROOT/build/bin/zl-wg
	[ -x "$src" ] || { note "no $src (run make)"; return 1; }
	cp "$src" "$E2E_TMP/zl-wg" && ZLWG=$E2E_TMP/zl-wg
	ZLWG_SHA=$(sha256sum "$ZLWG" | cut -c1-12)
}

# ---------------------------------------------------------------- topology

setup_underlay() {
	NS_A=$(ns_name a); NS_B=$(ns_name b)
	ns_create "$NS_A" && ns_create "$NS_B" &&
		veth_pair "$NS_A" ul0 "$NS_B" ul0 &&
		ns_addr "$NS_A" ul0 "$UL_A4/24" && ns_addr "$NS_A" ul0 "$UL_A6/64" &&
		ns_addr "$NS_B" ul0 "$UL_B4/24" && ns_addr "$NS_B" ul0 "$UL_B6/64" &&
		ping_ok "$NS_A" "$UL_B4" 3 >&2
}

# tunnel_start IMPL_PATH: one daemon per side, both knowing each other's endpoint, MTU 1420, first
# handshake done. Sets IF_A/IF_B.
tunnel_start() {
	local impl=$1
	IF_A=$(if_name "a${TP_SEQ:-0}"); IF_B=$(if_name "b${TP_SEQ:-0}"); TP_SEQ=$(( ${TP_SEQ:-0} + 1 ))
	[ -f "$E2E_TMP/A.key" ] || gen_key A; [ -f "$E2E_TMP/B.key" ] || gen_key B
	start_wg "$NS_A" "$impl" "$IF_A" >&2 && start_wg "$NS_B" "$impl" "$IF_B" >&2 &&
		wgx "$NS_A" set "$IF_A" listen-port "$PORT_A" private-key "$(key_file A)" \
			peer "$(pub_of B)" allowed-ips "$TUN_B4/32,$TUN_B6/128" endpoint "$(endpoint_of 4 B)" &&
		wgx "$NS_B" set "$IF_B" listen-port "$PORT_B" private-key "$(key_file B)" \
			peer "$(pub_of A)" allowed-ips "$TUN_A4/32,$TUN_A6/128" endpoint "$(endpoint_of 4 A)" &&
		ip -n "$NS_A" link set dev "$IF_A" mtu "$TUN_MTU" && ip -n "$NS_B" link set dev "$IF_B" mtu "$TUN_MTU" &&
		tunnel_up "$NS_A" "$IF_A" "$TUN_A4/24" "$TUN_A6/64" && tunnel_up "$NS_B" "$IF_B" "$TUN_B4/24" "$TUN_B6/64" &&
		ping_ok "$NS_A" "$TUN_B4" 5 >&2
}

tunnel_stop() {
	stop_wg "$NS_A" "$IF_A" >&2
	stop_wg "$NS_B" "$IF_B" >&2
}

# ---------------------------------------------------------------- measurements

start_iperf_server() {
	bg "$NS_B" iperf3 iperf3 -s -p "$IPERF_PORT" >/dev/null
	wait_until 5 eval "ip netns exec $NS_B ss -tln | grep -q ':$IPERF_PORT '"
}

# json_get FILE PYTHON_EXPR: evaluates an expression over the parsed JSON as j; prints nothing on error.
json_get() {
	python3 - "$1" "$2" 2>/dev/null <<'EOF'
import json, sys
j = json.load(open(sys.argv[1]))
if "error" in j:
    sys.exit(1)
print(eval(sys.argv[2]))
EOF
}

# tcp_mbps ADDR STREAMS: receiver-side throughput in Mbit/s, or n/a.
tcp_mbps() {
	local out=$E2E_TMP/tcp.json v
	timeout $((TCP_SECONDS + 20)) ip netns exec "$NS_A" iperf3 -c "$1" -p "$IPERF_PORT" -t "$TCP_SECONDS" \
		-P "$2" -J >"$out" 2>>"$E2E_TMP/iperf3.err"
	v=$(json_get "$out" '"%.1f" % (j["end"]["sum_received"]["bits_per_second"] / 1e6)')
	printf '%s' "${v:-n/a}"
}

# udp_try ADDR RATE_BPS: prints "received_mbps loss_percent sent_mbps" for one UDP run (RATE 0 =
# unlimited), as the server counted them.
udp_try() {
	local out=$E2E_TMP/udp.json
	timeout $((UDP_SECONDS + 20)) ip netns exec "$NS_A" iperf3 -c "$1" -p "$IPERF_PORT" -u -b "$2" -l "$UDP_LEN" \
		-t "$UDP_SECONDS" -J >"$out" 2>>"$E2E_TMP/iperf3.err"
	json_get "$out" '"%.1f %.2f %.1f" % (j["end"]["sum_received"]["bits_per_second"] / 1e6, j["end"]["sum_received"]["lost_percent"], j["end"]["sum_sent"]["bits_per_second"] / 1e6)'
}

# udp_search ADDR: the highest received rate (Mbit/s) among runs with < 1% loss. An unlimited first run
# gives the rate the path delivers under overload; the search then starts there, between no rate and
# 1.5 times it (bounded by what the sender managed), and each step bisects between the best passing and
# the lowest failing rate (stepping down to 60% until one passes). Prints "n/a" when none stayed < 1%.
udp_search() {
	local addr=$1 r rx loss tx lo=0 hi try best=0
	r=$(udp_try "$addr" 0) || { printf 'n/a'; return; }
	read -r rx loss tx <<<"$r"
	note "  udp unlimited: sent $tx Mbit/s, received $rx Mbit/s, loss $loss%"
	if below_1pct "$loss"; then printf '%s' "$rx"; return; fi
	hi=$(awk -v r="$rx" -v t="$tx" 'BEGIN { h = 1.5 * r; if (t < h) h = t; printf "%.1f", h }')
	try=$rx
	for _ in $(seq 2 "$UDP_STEPS"); do
		r=$(udp_try "$addr" "$(awk -v m="$try" 'BEGIN { printf "%.0f", m * 1e6 }')") || break
		read -r rx loss tx <<<"$r"
		note "  udp at $try Mbit/s: received $rx Mbit/s, loss $loss%"
		if below_1pct "$loss"; then
			best=$(awk -v a="$rx" -v b="$best" 'BEGIN { m = a > b ? a : b; print m }')
			lo=$try
		else
			hi=$try
		fi
		try=$(awk -v l="$lo" -v h="$hi" 'BEGIN { t = l > 0 ? (l + h) / 2 : h * 0.6; printf "%.1f", t }')
	done
	if [ "$best" = 0 ]; then printf 'n/a'; else printf '%s' "$best"; fi
}

below_1pct() { awk -v l="$1" 'BEGIN { exit !(l < 1) }'; }

# ping_median NS ADDR: median RTT in ms of 100 echoes 10 ms apart.
ping_median() {
	ip netns exec "$1" ping -n -c 100 -i 0.01 -W 1 "$2" 2>/dev/null |
		sed -n 's/.* time=\([0-9.]*\) ms.*/\1/p' | sort -g |
		awk '{ v[NR] = $1 } END { if (NR < 50) { printf "n/a"; exit }
			printf "%.3f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# measure_path LABEL ADDR: TCP 1 and 4 streams and ping over one path; UDP too unless LABEL is veth.
measure_path() {
	local label=$1 addr=$2
	note "$label: TCP 1 stream, $TCP_SECONDS s"
	fig "tcp1.$label" "$(tcp_mbps "$addr" 1)"
	note "$label: TCP 4 streams, $TCP_SECONDS s"
	fig "tcp4.$label" "$(tcp_mbps "$addr" 4)"
	if [ "$label" != veth ]; then
		note "$label: UDP rate search, $UDP_STEPS steps of $UDP_SECONDS s"
		fig "udp.$label" "$(udp_search "$addr")"
	fi
	fig "ping.$label" "$(ping_median "$NS_A" "$addr")"
}

measure_impl() {
	local label=$1 impl=$2
	if [ -z "$impl" ]; then note "$label: not available"; return; fi
	note "$label: starting a tunnel"
	if tunnel_start "$impl"; then
		measure_path "$label" "$TUN_B4"
	else
		note "$label: tunnel did not come up; its figures are n/a"
	fi
	tunnel_stop
}

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null; }

# peers_config N: one UAPI set transaction adding N peers with random public keys (any 32 bytes are an
# X25519 public key), no endpoint, one /32 allowed IP each from 10.128.0.0/9.
peers_config() {
	python3 - "$1" <<'EOF'
import os, sys
n = int(sys.argv[1])
out = ["set=1"]
for i in range(n):
    out.append("public_key=" + os.urandom(32).hex())
    out.append("allowed_ip=10.%d.%d.%d/32" % (128 + (i >> 16), (i >> 8) & 255, i & 255))
sys.stdout.write("\n".join(out) + "\n\n")
EOF
}

# measure_memory LABEL IMPL: RSS growth of a daemon (key and port set, link up) when PEERS peers are
# added through the UAPI, per peer in bytes.
measure_memory() {
	local label=$1 impl=$2 ifn pid before after reply n
	[ -n "$impl" ] || return
	ifn=$(if_name "m${TP_SEQ:-0}"); TP_SEQ=$(( ${TP_SEQ:-0} + 1 ))
	note "$label: memory with $PEERS peers"
	start_wg "$NS_A" "$impl" "$ifn" >&2 &&
		wgx "$NS_A" set "$ifn" listen-port 51900 private-key "$(key_file A)" &&
		ip -n "$NS_A" link set dev "$ifn" up || { note "$label: memory daemon did not start"; return; }
	pid=$(wg_pid "$ifn")
	sleep 0.5
	before=$(rss_kb "$pid")
	peers_config "$PEERS" >"$E2E_TMP/peers.uapi"
	reply=$(timeout 60 socat -t 30 - "UNIX-CONNECT:$E2E_WG_SOCK_DIR/$ifn.sock" <"$E2E_TMP/peers.uapi")
	n=$(wgx "$NS_A" show "$ifn" peers 2>/dev/null | wc -l)
	sleep 1
	after=$(rss_kb "$pid")
	if [ "$reply" = "errno=0" ] && [ "$n" = "$PEERS" ] && [ -n "$before" ] && [ -n "$after" ]; then
		note "  $label RSS $before kB -> $after kB"
		fig "mem.$label" "$(( (after - before) * 1024 / PEERS ))"
	else
		note "$label: peers not configured (reply '$reply', $n peers listed)"
	fi
	stop_wg "$NS_A" "$ifn" >&2
}

measure_handshakes() {
	local out
	[ -x "$BENCH_BIN/handshake_bench" ] || { note "no $BENCH_BIN/handshake_bench (run make bench)"; return; }
	note "handshakes: $HS_N initiations from $HS_M initiators, responder pinned to one CPU"
	out=$("$BENCH_BIN/handshake_bench" "$HS_N" "$HS_M") || { note "handshake_bench failed: $out"; return; }
	note "  $out"
	fig hs "$(awk '{ print $2 }' <<<"$out")"
}

measure_allowedips() {
	local out
	[ -x "$BENCH_BIN/allowedips_bench" ] || { note "no $BENCH_BIN/allowedips_bench (run make bench)"; return; }
	note "allowed-IPs: $PREFIXES prefixes"
	out=$("$BENCH_BIN/allowedips_bench" "$PREFIXES") || { note "allowedips_bench failed: $out"; return; }
	note "  $out"
	fig aip.v4 "$(awk '{ print $2 }' <<<"$out")"
	fig aip.v6 "$(awk '{ print $4 }' <<<"$out")"
	fig aip.all "$(awk '{ print $6 }' <<<"$out")"
	fig aip.bytes "$(awk '{ print $8 }' <<<"$out")"
	fig aip.held "$(awk '{ print $10 }' <<<"$out")"
}

# bench/dns.sh measures and prints the DNS section (its own namespace, cleanup and "n/a" figures).
measure_dns() {
	note "dns: bench/dns.sh"
	DNS_BENCH_BIN=$BENCH_BIN "$E2E_ROOT/bench/dns.sh" >"$E2E_TMP/dns.txt"
}

# ---------------------------------------------------------------- report

machine_info() {
	printf 'format       %s\n' "$BENCH_FORMAT"
	printf 'date         %s\n' "$(date -u '+%Y-%m-%d %H:%M:%S UTC')"
	printf 'kernel       %s\n' "$(uname -r)"
	printf 'cpu          %s\n' "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
	printf 'nproc        %s\n' "$(nproc)"
	printf 'load         %s at start, %s at end (1/5/15-min load averages)\n' "$LOAD_BEFORE" "$(cut -d' ' -f1-3 /proc/loadavg)"
	printf 'zl-wg        sha256 %s, tree %s\n' "${ZLWG_SHA:-n/a}" "$GIT_REV"
	printf 'wireguard-go %s\n' "$WGGO_VERSION"
	printf 'iperf3       %s\n' "$(iperf3 --version 2>/dev/null | awk 'NR == 1 { print $2 }')"
}

report() {
	local r1g r1v r4g r4v rug p
	machine_info
	printf '\n%-26s %12s %14s %12s  %s\n' figure zl-wg wireguard-go bare-veth unit
	printf '%-26s %12s %14s %12s  %s\n' "tcp_1_stream" "$(val tcp1.zlwg)" "$(val tcp1.wggo)" "$(val tcp1.veth)" \
		"Mbit/s, ${TCP_SECONDS} s, received"
	printf '%-26s %12s %14s %12s  %s\n' "tcp_4_streams" "$(val tcp4.zlwg)" "$(val tcp4.wggo)" "$(val tcp4.veth)" \
		"Mbit/s, ${TCP_SECONDS} s, received"
	printf '%-26s %12s %14s %12s  %s\n' "udp_max_rate_loss_lt_1pct" "$(val udp.zlwg)" "$(val udp.wggo)" "-" \
		"Mbit/s received, ${UDP_LEN}-byte datagrams"
	printf '%-26s %12s %14s %12s  %s\n' "ping_rtt_median" "$(val ping.zlwg)" "$(val ping.wggo)" "$(val ping.veth)" \
		"ms, 100 echoes 10 ms apart"
	printf '%-26s %12s %14s %12s  %s\n' "memory_per_peer" "$(val mem.zlwg)" "$(val mem.wggo)" "-" \
		"bytes, RSS growth / $PEERS peers with 1 allowed IP"

	r1g=$(ratio "$(val tcp1.zlwg)" "$(val tcp1.wggo)"); r1v=$(ratio "$(val tcp1.zlwg)" "$(val tcp1.veth)")
	r4g=$(ratio "$(val tcp4.zlwg)" "$(val tcp4.wggo)"); r4v=$(ratio "$(val tcp4.zlwg)" "$(val tcp4.veth)")
	rug=$(ratio "$(val udp.zlwg)" "$(val udp.wggo)")
	printf '\n%-40s %10s %10s  %s\n' ratio value target verdict
	printf '%-40s %10s %10s  %s\n' "tcp_1_stream zl-wg / wireguard-go" "$r1g" ">= 10" "$(verdict "$r1g" '>=' 10)"
	printf '%-40s %10s %10s  %s\n' "tcp_1_stream zl-wg / bare-veth" "$r1v" ">= 0.40" "$(verdict "$r1v" '>=' 0.40)"
	printf '%-40s %10s %10s  %s\n' "tcp_4_streams zl-wg / wireguard-go" "$r4g" "-" "-"
	printf '%-40s %10s %10s  %s\n' "tcp_4_streams zl-wg / bare-veth" "$r4v" "-" "-"
	printf '%-40s %10s %10s  %s\n' "udp_max_rate zl-wg / wireguard-go" "$rug" "-" "-"

	# An idle peer's cost beyond its allowed IP: the RSS growth per peer minus one trie prefix.
	p=n/a
	is_num "$(val mem.zlwg)" && is_num "$(val aip.bytes)" &&
		p=$(awk -v a="$(val mem.zlwg)" -v b="$(val aip.bytes)" 'BEGIN { printf "%.0f", a - b }')
	printf '\n%-40s %12s %10s  %s\n' core value target verdict
	printf '%-40s %12s %10s  %s\n' "handshakes_per_sec_one_core" "$(val hs)" ">= 5000" "$(verdict "$(val hs)" '>=' 5000)"
	printf '%-40s %12s %10s  %s\n' "memory_per_idle_peer_beyond_allowed_ip" "$p" "<= 4096" "$(verdict "$p" '<=' 4096)"
	printf '%-40s %12s %10s  %s\n' "allowedips_lookups_per_sec" "$(val aip.all)" "-" "-"
	printf '%-40s %12s %10s  %s\n' "allowedips_lookups_per_sec_ipv4" "$(val aip.v4)" "-" "-"
	printf '%-40s %12s %10s  %s\n' "allowedips_lookups_per_sec_ipv6" "$(val aip.v6)" "-" "-"
	printf '%-40s %12s %10s  %s\n' "allowedips_bytes_per_prefix" "$(val aip.bytes)" "-" "-"
	printf '%-40s %12s %10s  %s\n' "allowedips_prefixes_held" "$(val aip.held)" "-" "-"
	cat "$E2E_TMP/dns.txt" 2>/dev/null
}

write_results() {
	{
		printf '# Benchmark results (latest run)\n\n'
		printf 'Written by `make bench` (bench/run.sh); every run overwrites this file. Figures: Mbit/s are\n'
		printf 'iperf3 receiver-side rates; the memory line beyond the allowed IP subtracts the trie'"'"'s bytes per\n'
		printf 'prefix from the RSS growth per peer; DNS figures are dnsperf rates against our server and NSD\n'
		printf '(bench/dns.sh). The machine may have been shared with other work (see load).\n\n'
		printf '```\n'
		cat "$1"
		printf '```\n'
	} >"$RESULTS.tmp" && mv "$RESULTS.tmp" "$RESULTS"
}

# ---------------------------------------------------------------- main

main() {
	local t0=$SECONDS
	bench_begin bench || exit 0
	LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
	GIT_REV=$(git -C "$E2E_ROOT" describe --always --dirty 2>/dev/null || echo n/a)
	WGGO=$(command -v wireguard-go || true)
	WGGO_VERSION=$({ [ -n "$WGGO" ] && "$WGGO" --version 2>/dev/null | awk 'NR == 1 { print $2 }'; } || echo n/a)
	ZLWG=
	snapshot_zlwg
	note "bench: namespaces $E2E_NS_PREFIX{a,b}, temp $E2E_TMP"

	if setup_underlay && start_iperf_server; then
		measure_path veth "$UL_B4"
		measure_impl zlwg "$ZLWG"
		measure_impl wggo "$WGGO"
		measure_memory zlwg "$ZLWG"
		measure_memory wggo "$WGGO"
	else
		note "namespaces or iperf3 server could not be set up; network figures are n/a"
	fi
	measure_handshakes
	measure_allowedips
	measure_dns

	report >"$E2E_TMP/report.txt"
	printf 'runtime      %s s\n' "$((SECONDS - t0))" >>"$E2E_TMP/report.txt"
	echo
	cat "$E2E_TMP/report.txt"
	write_results "$E2E_TMP/report.txt" && note "results written to $RESULTS"
}

main "$@"
