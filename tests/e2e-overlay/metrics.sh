#!/usr/bin/env bash
# metrics: the Prometheus endpoint (--metrics) on a three-node mesh. Hosts 1 and 2 serve on
# 127.0.0.1:9464, host 3 on its overlay address. Each node's page is scraped with curl from inside its
# namespace and must pass `promtool check metrics` and our own structure check (families grouped, no
# series twice); then the figures must make sense: per-peer bytes grow by at least what a ping sent,
# every peer is healthy with an RTT and a recent handshake, DNS NXDOMAIN answers are counted, the
# leader counts 3 allocated addresses (workers have no address families), service_healthy follows a
# TCP check. Also: another path is 404, POST is 405, host 3's page is reachable over the overlay but
# not through the underlay (even with a route that sends its overlay address there), and an underlay,
# wildcard or foreign overlay --metrics address is refused at start with a message naming the rule;
# host 2 then serves on [::1].
. "$(dirname "$0")/lib-overlay.sh"
ov_init metrics
ov_need_daemon
for c in curl promtool dig; do command -v "$c" >/dev/null || { e2e_fail "$c is required (make deps)"; e2e_finish; }; done
ov_hosts 3
CIDR=10.210.0.0/16
MPORT=9464
DNS_PORT=15353
declare -a MURL

# ---------------------------------------------------------------- helpers

# A small reader of the exposition text: structure check, and one series' value.
read -r -d '' MX_PY <<'PY'
import re, sys
LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(,|$)')

def labels(text):
    out, pos = {}, 0
    while text and pos < len(text):
        m = LABEL.match(text, pos)
        if not m:
            raise ValueError("bad labels: %r" % text)
        out[m.group(1)] = re.sub(r'\\(.)', lambda x: {'n': '\n'}.get(x.group(1), x.group(1)), m.group(2))
        pos = m.end()
    return out

def parse(path):
    fams, order, series, problems, cur = {}, [], {}, [], None
    for n, line in enumerate(open(path, encoding="utf-8").read().split("\n")[:-1], 1):
        if line.startswith("# HELP "):
            cur = line.split(" ")[2]
            if cur in fams:
                problems.append("line %d: family %s appears twice" % (n, cur))
            fams[cur] = None; order.append(cur)
        elif line.startswith("# TYPE "):
            f = line.split(" ")
            if f[2] != cur:
                problems.append("line %d: TYPE of %s under HELP of %s" % (n, f[2], cur))
            fams[cur] = f[3]
        else:
            m = LINE.match(line)
            if not m:
                problems.append("line %d: not a sample: %r" % (n, line)); continue
            if m.group(1) != cur:
                problems.append("line %d: %s outside its family (in %s)" % (n, m.group(1), cur))
            key = (m.group(1), tuple(sorted(labels(m.group(2) or "").items())))
            if key in series:
                problems.append("line %d: duplicate series %s" % (n, line))
            series[key] = float(m.group(3))
    return fams, series, problems

def find(series, name, want):
    hits = [v for (n, l), v in series.items() if n == name and dict(l) == want]
    return hits[0] if hits else None

cmd, path = sys.argv[1], sys.argv[2]
fams, series, problems = parse(path)
if cmd == "check":
    for p in problems: print(p)
    print("%d families, %d series" % (len(fams), len(series)))
    sys.exit(1 if problems else 0)
if cmd == "get":          # get FILE NAME [k=v ...]: the value, or exit 1 when absent
    v = find(series, sys.argv[3], dict(a.split("=", 1) for a in sys.argv[4:]))
    if v is None: sys.exit(1)
    print(repr(v) if v != int(v) else int(v))
if cmd == "has-family":   # has-family FILE NAME: any sample of that family
    sys.exit(0 if any(n == sys.argv[3] for n, _ in series) else 1)
if cmd == "count":        # count FILE NAME: number of series of that family
    print(sum(1 for n, _ in series if n == sys.argv[3]))
PY
mx() { python3 -c "$MX_PY" "$@"; }

# scrape I [URL]: node I's page into $E2E_TMP/m<I>.txt (headers in .hdr); fails unless 200.
scrape() {
	local i=$1 url=${2:-${MURL[$1]}} code
	code=$(ip netns exec "${OV_NS[$i]}" curl -gsS --max-time 5 -D "$E2E_TMP/m$i.hdr" -o "$E2E_TMP/m$i.txt" \
		-w '%{http_code}' "$url") || { say "curl $url failed"; return 1; }
	[ "$code" = 200 ] || { say "HTTP $code from $url"; return 1; }
}

# http_code I METHOD URL: the status code only.
http_code() {
	ip netns exec "${OV_NS[$1]}" curl -gs --max-time 5 -o /dev/null -X "$2" -w '%{http_code}' "$3"
}

# val I NAME [LABELS...]: a value from node I's last scrape.
val() { local i=$1; shift; mx get "$E2E_TMP/m$i.txt" "$@"; }

# pval I J NAME: the value of NAME for peer J (labelled by node id, hostname and overlay address).
pval() { val "$1" "$3" node_id="${OV_ID[$2]}" hostname="${OV_HN[$2]}" overlay_ip="${OV_IP[$2]}"; }

# all_healthy I NODES...: a fresh scrape of node I shows peer_healthy 1 for every other node of NODES.
all_healthy() {
	local i=$1 j v; shift
	scrape "$i" || return 1
	for j in "$@"; do
		[ "$j" = "$i" ] && continue
		v=$(pval "$i" "$j" zl_overlay_peer_healthy) || { say "no peer_healthy for node $j"; return 1; }
		[ "$v" = 1 ] || { say "node $j: peer_healthy $v"; return 1; }
	done
}

# ge A B: A >= B (numbers as text; both must be present).
ge() { [ -n "$1" ] && [ -n "$2" ] && awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 >= b + 0) }'; }

# grew BEFORE AFTER MIN: both present and AFTER - BEFORE >= MIN.
grew() { [ -n "$1" ] && [ -n "$2" ] && awk -v a="$1" -v b="$2" -v m="$3" 'BEGIN { exit !(b - a >= m) }'; }

# length_matches I: the Content-Length header of node I's last scrape is the body's size.
length_matches() {
	local want got
	want=$(stat -c %s "$E2E_TMP/m$1.txt")
	got=$(tr -d '\r' <"$E2E_TMP/m$1.hdr" | awk -F': ' 'tolower($1) == "content-length" { print $2 }')
	[ "$got" = "$want" ] || { say "Content-Length '$got', body $want bytes"; return 1; }
}

# has_rcodes I RCODE...: node I's last scrape has a dns_responses_total series for each RCODE.
has_rcodes() {
	local i=$1 r; shift
	for r in "$@"; do val "$i" zl_overlay_dns_responses_total rcode="$r" >/dev/null || { say "no rcode=$r"; return 1; }; done
}

# nobody_listens NODES...: no TCP listener on the metrics port in any of the nodes' namespaces.
nobody_listens() {
	local i
	for i in "$@"; do
		ip netns exec "${OV_NS[$i]}" ss -Htln "sport = :$MPORT" | grep -q . && { say "host $i still listens"; return 1; }
	done
	return 0
}

# ---------------------------------------------------------------- the mesh

step "three nodes; hosts 1 and 2 serve metrics on 127.0.0.1:$MPORT, host 3 on its overlay address"
must "init-leader on host 1" ov_init_leader 1 "$CIDR"
must "leader daemon with --metrics 127.0.0.1:$MPORT" ov_start 1 --metrics "127.0.0.1:$MPORT"
MURL[1]=http://127.0.0.1:$MPORT/metrics
for i in 2 3; do
	tok=$(ov_token 1)
	must "join host $i" ov_join "$i" "$tok"
done
must "host 2's daemon with --metrics 127.0.0.1:$MPORT" ov_start 2 --metrics "127.0.0.1:$MPORT"
MURL[2]=http://127.0.0.1:$MPORT/metrics
must "host 3's daemon with --metrics ${OV_IP[3]}:$MPORT" ov_start 3 --metrics "${OV_IP[3]}:$MPORT"
MURL[3]=http://${OV_IP[3]}:$MPORT/metrics
ov_mesh_check "all pairs ping over the overlay" 15 1 2 3

step "every page: HTTP 200, the 0.0.4 text format, promtool check metrics, grouped families, no duplicates"
for i in 1 2 3; do
	must "host $i: GET ${MURL[$i]} answers 200" scrape "$i"
	check "host $i: Content-Type text/plain; version=0.0.4" grep -qi '^Content-Type: text/plain; version=0.0.4' "$E2E_TMP/m$i.hdr"
	check "host $i: Content-Length is the body's size" length_matches "$i"
	check "host $i: promtool check metrics passes" eval "promtool check metrics <'$E2E_TMP/m$i.txt'"
	check "host $i: families grouped, every sample under its HELP/TYPE, no series twice" mx check "$E2E_TMP/m$i.txt"
done
sed -n '1,12s/^/   | /p' "$E2E_TMP/m1.txt"

step "health: every peer healthy, with an RTT, a loss ratio and a recent handshake"
for i in 1 2 3; do
	if wait_until 20 all_healthy "$i" 1 2 3; then e2e_pass "host $i: peer_healthy 1 for both peers"
	else all_healthy "$i" 1 2 3 >"$E2E_TMP/h.out" 2>&1; e2e_fail "host $i: peer_healthy 1 for both peers within 20 s" "$E2E_TMP/h.out"; fi
	scrape "$i"
	for j in 1 2 3; do
		[ "$j" = "$i" ] && continue
		rtt=$(pval "$i" "$j" zl_overlay_peer_rtt_seconds)
		check "host $i -> $j: rtt ${rtt:-absent} s, > 0 and < 1" eval "ge '$rtt' 0.000001 && ! ge '$rtt' 1"
		loss=$(pval "$i" "$j" zl_overlay_peer_loss_ratio)
		check "host $i -> $j: loss ratio ${loss:-absent} within [0, 1]" eval "ge '$loss' 0 && ge 1 '$loss'"
		age=$(pval "$i" "$j" zl_overlay_peer_last_handshake_age_seconds)
		check "host $i -> $j: last handshake ${age:-absent} s ago (< 180)" eval "ge '$age' 0 && ! ge '$age' 180"
		pval "$i" "$j" zl_overlay_peer_jitter_seconds >/dev/null
		check "host $i -> $j: jitter present" test $? = 0
	done
	hs=$(val "$i" zl_overlay_handshakes_total result=completed)
	check "host $i: handshakes_total{result=completed} = ${hs:-absent} >= 1" ge "$hs" 1
	check "host $i: packets_rejected_total has a series per reason (15)" test "$(mx count "$E2E_TMP/m$i.txt" zl_overlay_packets_rejected_total)" = 15
	sent=$(val "$i" zl_overlay_probes_sent_total); got=$(val "$i" zl_overlay_probe_replies_total)
	check "host $i: probes sent ${sent:-absent}, replies ${got:-absent} (both > 0, replies <= sent)" \
		eval "ge '$got' 1 && ge '$sent' '$got'"
done

step "bytes: a ping of 20 x 1000 bytes from each node to each peer grows both counters by at least that"
for i in 1 2 3; do
	for j in 1 2 3; do
		[ "$j" = "$i" ] && continue
		scrape "$i"
		rx0=$(pval "$i" "$j" zl_overlay_peer_rx_bytes_total); tx0=$(pval "$i" "$j" zl_overlay_peer_tx_bytes_total)
		ip netns exec "${OV_NS[$i]}" ping -n -q -c 20 -i 0.05 -s 1000 -W 2 "${OV_IP[$j]}" >"$E2E_TMP/ping.out" 2>&1
		check "host $i pings host $j (20 x 1000 bytes)" grep -q ' 0% packet loss' "$E2E_TMP/ping.out"
		scrape "$i"
		rx1=$(pval "$i" "$j" zl_overlay_peer_rx_bytes_total); tx1=$(pval "$i" "$j" zl_overlay_peer_tx_bytes_total)
		check "host $i -> $j: tx $tx0 -> $tx1 (+20000 at least), rx $rx0 -> $rx1 (+20000 at least)" \
			eval "grew '$tx0' '$tx1' 20000 && grew '$rx0' '$rx1' 20000"
	done
done

step "addresses: the leader counts 3 allocated (itself and two members); workers have no address families"
scrape 1
check_eq "host 1: addresses_allocated" 3 "$(val 1 zl_overlay_addresses_allocated)"
check_eq "host 1: addresses_free (65534 usable in a /16, minus 3)" 65531 "$(val 1 zl_overlay_addresses_free)"
for i in 2 3; do
	scrape "$i"
	check "host $i (worker): no addresses_allocated / addresses_free" eval "! mx has-family '$E2E_TMP/m$i.txt' zl_overlay_addresses_allocated && ! mx has-family '$E2E_TMP/m$i.txt' zl_overlay_addresses_free"
done

step "DNS: a query for a missing name counts as NXDOMAIN"
for i in 1 2; do
	scrape "$i"
	nx0=$(val "$i" zl_overlay_dns_responses_total rcode=NXDOMAIN)
	q0=$(val "$i" zl_overlay_dns_queries_total transport=udp)
	ip netns exec "${OV_NS[$i]}" dig +tries=1 +time=2 -p "$DNS_PORT" @127.0.0.1 no-such-name.overlay.local. A >"$E2E_TMP/dig.out" 2>&1
	check "host $i: dig no-such-name.overlay.local. answers NXDOMAIN" grep -q 'status: NXDOMAIN' "$E2E_TMP/dig.out"
	scrape "$i"
	nx1=$(val "$i" zl_overlay_dns_responses_total rcode=NXDOMAIN)
	q1=$(val "$i" zl_overlay_dns_queries_total transport=udp)
	check "host $i: dns_responses_total{rcode=NXDOMAIN} ${nx0:-absent} -> ${nx1:-absent} (+1 at least)" \
		grew "$nx0" "$nx1" 1
	check "host $i: dns_queries_total{transport=udp} ${q0:-absent} -> ${q1:-absent} (+1 at least)" \
		grew "$q0" "$q1" 1
	check "host $i: dns_responses_total has NOERROR, NXDOMAIN, SERVFAIL, REFUSED" has_rcodes "$i" NOERROR NXDOMAIN SERVFAIL REFUSED
done

step "services: service_healthy follows a TCP check (1 while host 2 listens, 0 when it stops)"
# A listener that accepts and closes at once: all a TCP check needs.
cat >"$E2E_TMP/accept.py" <<'PY'
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(16)
while True:
    s.accept()[0].close()
PY
LPID=$(bg "${OV_NS[2]}" accept python3 "$E2E_TMP/accept.py" "${OV_IP[2]}" 8080)
must "host 2 listens on ${OV_IP[2]}:8080" wait_until 5 eval "ip netns exec ${OV_NS[2]} ss -Htln 'sport = :8080' | grep -q ."
must "dns add web ${OV_IP[2]} --check tcp:8080 (interval 1 s, threshold 1)" ov_cli 1 dns add web "${OV_IP[2]}" \
	--check tcp:8080 --check-interval 1 --check-threshold 1
# service_is I VALUE: node I's page has service_healthy{name="web",address=host 2} = VALUE.
service_is() { scrape "$1" && [ "$(val "$1" zl_overlay_service_healthy name=web address="${OV_IP[2]}")" = "$2" ]; }
for i in 1 3; do check "host $i: service_healthy{name=web} 1 within 10 s" wait_until 10 service_is "$i" 1; done
check "host 1's page with a service passes promtool" eval "promtool check metrics <'$E2E_TMP/m1.txt'"
kill "$LPID"
for i in 1 3; do check "host $i: service_healthy{name=web} 0 within 10 s of the listener stopping" wait_until 10 service_is "$i" 0; done
check "host 3: families still grouped, no duplicates" mx check "$E2E_TMP/m3.txt"

step "HTTP: other paths 404, other methods 405"
check_eq "host 1: GET /other" 404 "$(http_code 1 GET "http://127.0.0.1:$MPORT/other")"
check_eq "host 1: GET /" 404 "$(http_code 1 GET "http://127.0.0.1:$MPORT/")"
check_eq "host 2: POST /metrics" 405 "$(http_code 2 POST "http://127.0.0.1:$MPORT/metrics")"
check_eq "host 3: GET /nothing on the overlay address" 404 "$(http_code 3 GET "http://${OV_IP[3]}:$MPORT/nothing")"
check "host 1 still serves after the errors" scrape 1

step "host 3's overlay endpoint: reachable through the tunnel, never through the underlay"
check "host 1 scrapes host 3 over the overlay (${MURL[3]})" scrape 1 "${MURL[3]}"
check "host 3 does not listen on its loopback" eval "! ip netns exec ${OV_NS[3]} curl -gs --max-time 3 -o /dev/null http://127.0.0.1:$MPORT/metrics"
# Send host 3's overlay address through the underlay from host 1: the kernel of host 3 would accept
# it on eth0, but the server socket is bound to the overlay interface, so nothing answers.
must "host 1: route ${OV_IP[3]} via the underlay (192.0.2.3)" ip -n "${OV_NS[1]}" route add "${OV_IP[3]}/32" via "${OV_UL[3]}" dev eth0
check "host 1 cannot reach host 3's metrics through the underlay" eval "! ip netns exec ${OV_NS[1]} curl -gs --max-time 3 -o /dev/null ${MURL[3]}"
ip -n "${OV_NS[1]}" route del "${OV_IP[3]}/32" via "${OV_UL[3]}" dev eth0
check "with the route gone, host 1 reaches it through the tunnel again" scrape 1 "${MURL[3]}"

step "start-up refuses addresses outside the rule, with a clear message"
must "stop host 2's daemon" ov_stop 2
# expect_start_refused DESC ADDR REGEX: zl-overlayd with --metrics ADDR exits non-zero, message matches.
expect_start_refused() {
	local desc=$1 addr=$2 re=$3
	expect_fail_run "$desc" "$re" timeout -k 2 15 ip netns exec "${OV_NS[2]}" "$OV_DAEMON" --data-dir "${OV_DIR[2]}" \
		--interface "${OV_IF[2]}" --metrics "$addr"
	check "after the refusal, ${OV_IF[2]} is gone again" eval "! ov_link_exists 2"
}
expect_start_refused "--metrics ${OV_UL[2]}:$MPORT (underlay address) refused" "${OV_UL[2]}:$MPORT" \
	'neither a loopback address.*underlay'
expect_start_refused "--metrics 0.0.0.0:$MPORT (wildcard) refused" "0.0.0.0:$MPORT" 'wildcard'
expect_start_refused "--metrics ${OV_IP[1]}:$MPORT (another node's overlay address) refused" "${OV_IP[1]}:$MPORT" \
	"overlay address ${OV_IP[2]}"
must "host 2 starts again with --metrics [::1]:$MPORT" ov_start 2 --metrics "[::1]:$MPORT"
MURL[2]="http://[::1]:$MPORT/metrics"
check "host 2 serves on [::1]:$MPORT" scrape 2
check "host 2's page over IPv6 passes promtool" eval "promtool check metrics <'$E2E_TMP/m2.txt'"

step "SIGTERM: the metrics port is closed with the daemon"
for i in 3 2 1; do check "host $i daemon stops cleanly" ov_stop "$i"; done
check "nothing listens on :$MPORT in any host" nobody_listens 1 2 3
e2e_finish
