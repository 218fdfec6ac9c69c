#!/usr/bin/env bash
# dns: the overlay zone that every zl-overlayd serves, checked with real clients (dig and kdig) from
# inside each host's namespace, to 127.0.0.1 and to the node's overlay address, port 15353.
#   IPv4 mesh of three hosts (hostnames given at init-leader / join): every node-X-Y name, leader, the
#   hostnames and ns on every node; SOA and NS at the apex; NXDOMAIN and NODATA with the SOA in the
#   authority section and AA set; the query's mixed case echoed; REFUSED outside the zone; TCP; +norec;
#   EDNS (OPT answered, none without it). Registered names (zl-overlay dns add/remove on a worker):
#   answered by every node within 5 s, several addresses rotated, SRV with priority/weight/port, AAAA,
#   a name with 60 addresses truncated to the client's buffer (TC) and complete over TCP or with a big
#   enough buffer (never above 1232 bytes over UDP), removal -> NXDOMAIN everywhere within 5 s.
#   Forwarding (--dns-forward) to a small upstream; --dns-zone and --dns-port; --no-dns (nothing
#   listens); a second daemon in the same namespace on a used port fails to start with a clear message.
#   Membership: a node that joins is named everywhere within 5 s; one that leaves, and one that is
#   removed, is NXDOMAIN on every remaining node within 5 s. IPv6 mesh of two hosts: AAAA names.
. "$(dirname "$0")/lib-overlay.sh"
ov_init dns
ov_need_daemon
for c in dig kdig; do
	command -v "$c" >/dev/null || { e2e_fail "$c is not installed (dnsutils / knot-dnsutils: make deps)"; e2e_finish; }
done

DNS_PORT=15353
ZONE=overlay.local
BOUND=${OV_CONVERGE_S:-5}    # the issue: records follow membership and registrations within 5 s
UPSTREAM_PORT=5300

# ---------------------------------------------------------------- helpers

# node_name ADDR: node-<third>-<fourth> for IPv4; for IPv6 (a /48 cluster with /64 slices, every node
# "::1" of its slice) node6-<slice index>-<host offset> in hex.
node_name() {
	python3 -c '
import ipaddress, sys
a = ipaddress.ip_address(sys.argv[1])
if a.version == 4:
    o = a.packed; print("node-%d-%d" % (o[2], o[3]))
else:
    v = int(a); print("node6-%x-%x" % ((v >> 64) & 0xffff, v & (2**64 - 1)))' "$1"
}

# dq I SERVER ARGS...: dig from host I to SERVER (port DQ_PORT, default 15353), one try of 2 s.
dq() {
	local i=$1 srv=$2; shift 2
	timeout -k 2 10 ip netns exec "${OV_NS[$i]}" dig @"$srv" -p "${DQ_PORT:-$DNS_PORT}" +tries=1 +time=2 "$@"
}
# kq I SERVER ARGS...: the same with kdig.
kq() {
	local i=$1 srv=$2; shift 2
	timeout -k 2 10 ip netns exec "${OV_NS[$i]}" kdig @"$srv" -p "${DQ_PORT:-$DNS_PORT}" +retry=0 +timeout=2 "$@"
}

# The checker of one answer: parses dig's or kdig's output and tests KEY=VALUE expectations:
#   status=RCODE  aa=0|1 tc=0|1 rd=0|1 ra=0|1  ancount=N  proto=UDP|TCP  maxsize=N (at most N bytes received)
#   an=TYPE:V1,V2..  the answer holds exactly these rdata for TYPE (any order), and nothing of other types
#   has=TYPE:PREFIX  some answer record of TYPE has rdata starting with PREFIX
#   soa=1            the authority section holds exactly the apex SOA (negative answers); soa=0: no SOA
#   owner=NAME       every answer record's owner is exactly NAME (case included)
#   qname=NAME       the question section echoes exactly NAME
#   edns=0|1         an OPT record came back (edns_udp=N: with that payload size)
cat >"$E2E_TMP/dnscheck.py" <<'PY'
import re, sys
text = open(sys.argv[1], errors="replace").read()
apex = sys.argv[2].lower()
want = sys.argv[3:]
p = []
m = re.search(r"status: (\w+)", text)
status = m.group(1) if m else None
m = re.search(r";; [Ff]lags: ([a-z ]*);", text)
flags = set(m.group(1).split()) if m else None
sec, sections = None, {"QUESTION": [], "ANSWER": [], "AUTHORITY": [], "ADDITIONAL": []}
for line in text.splitlines():
    h = re.match(r";; (QUESTION|ANSWER|AUTHORITY|ADDITIONAL) SECTION:", line)
    if h:
        sec = h.group(1); continue
    if not line.strip() or (line.startswith(";;") and sec != "QUESTION"):
        sec = None if not line.strip() else sec; continue
    if sec == "QUESTION":
        f = line.lstrip(";").split()
        if f: sections[sec].append(f)
    elif sec and not line.startswith(";"):
        f = line.split(None, 4)
        if len(f) == 5: sections[sec].append(f)   # owner ttl class type rdata
ans, auth = sections["ANSWER"], sections["AUTHORITY"]
m = re.search(r"MSG SIZE\s+rcvd: (\d+)", text) or re.search(r";; Received (\d+) B", text)
size = int(m.group(1)) if m else None
m = re.search(r"[#@]\d+\((UDP|TCP)\)", text) or re.search(r"\((UDP|TCP)\)", text)
proto = m.group(1) if m else None
m = re.search(r"EDNS: version: \d+, flags:[^;]*; udp: (\d+)", text) or re.search(r"Version: \d+; flags:[^;]*; UDP size: (\d+)", text)
edns_udp = int(m.group(1)) if m else None
if status is None:
    p.append("no answer (no header in the output)")
for w in want:
    if p and status is None:
        break
    k, v = w.split("=", 1)
    if k not in ("status", "aa", "tc", "rd", "ra", "ancount", "proto", "maxsize", "an", "has", "soa", "owner",
                 "qname", "edns", "edns_udp"):
        p.append("unknown expectation %r" % w); continue
    if k == "status" and status != v:
        p.append("status %s, expected %s" % (status, v))
    elif k in ("aa", "tc", "rd", "ra"):
        if flags is None or (k in flags) != (v == "1"):
            p.append("flag %s %s (flags: %s)" % (k, "missing" if v == "1" else "set", " ".join(sorted(flags or []))))
    elif k == "ancount" and len(ans) != int(v):
        p.append("%d answer records, expected %s" % (len(ans), v))
    elif k == "proto" and proto != v:
        p.append("transport %s, expected %s" % (proto, v))
    elif k == "maxsize" and (size is None or size > int(v)):
        p.append("message of %s bytes, expected at most %s" % (size, v))
    elif k == "an":
        t, vals = v.split(":", 1)
        exp = sorted(x for x in vals.split(",") if x)
        got = sorted(r[4].strip() for r in ans if r[3] == t)
        other = [r[3] for r in ans if r[3] != t]
        if got != exp or other:
            p.append("answer %s %s (other types %s), expected %s" % (t, got, other, exp))
    elif k == "has":
        t, pre = v.split(":", 1)
        if not any(r[3] == t and r[4].strip().startswith(pre) for r in ans):
            p.append("no %s answer starting with %r in %s" % (t, pre, [r[3] + " " + r[4] for r in ans]))
    elif k == "soa":
        soas = [r for r in auth if r[3] == "SOA"]
        if v == "1" and (len(soas) != 1 or soas[0][0].lower() != apex or len(auth) != 1):
            p.append("authority %s, expected the SOA of %s alone" % ([r[0] + " " + r[3] for r in auth], apex))
        if v == "0" and soas:
            p.append("unexpected SOA in authority")
    elif k == "owner":
        bad = [r[0] for r in ans if r[0] != v]
        if not ans or bad:
            p.append("answer owners %s, expected %s" % ([r[0] for r in ans], v))
    elif k == "qname":
        q = [f[0] for f in sections["QUESTION"]]
        if q != [v]:
            p.append("question %s, expected %s" % (q, v))
    elif k == "edns" and (edns_udp is not None) != (v == "1"):
        p.append("OPT record %s" % ("missing" if v == "1" else "present"))
    elif k == "edns_udp" and edns_udp != int(v):
        p.append("EDNS payload size %s, expected %s" % (edns_udp, v))
q = " ".join(sections["QUESTION"][0]) if sections["QUESTION"] else "?"
print("%s: status=%s flags=%s answers=%d authority=%d size=%s proto=%s" % (q, status, " ".join(sorted(flags or [])), len(ans), len(auth), size, proto))
if p:
    print("PROBLEM: " + "; ".join(p))
    keep = [l for l in text.splitlines() if l.strip() and not re.match(r";; (WARNING|You are|global)|; <<>>|; \(", l)]
    print("\n".join("   " + l for l in keep[:14]))
    sys.exit(1)
PY

# dcheck dig|kdig I SERVER QNAME QTYPE [CLIENT-OPTIONS...] -- EXPECTATIONS...: one query, checked.
dcheck() {
	local tool=$1 i=$2 srv=$3 qn=$4 qt=$5 opts=() out; shift 5
	while [ $# -gt 0 ] && [ "$1" != -- ]; do opts+=("$1"); shift; done
	[ $# -gt 0 ] && shift
	out=$E2E_TMP/q.$BASHPID.out
	if [ "$tool" = dig ]; then dq "$i" "$srv" "${opts[@]}" "$qn" "$qt"; else kq "$i" "$srv" "${opts[@]}" "$qn" "$qt"; fi >"$out" 2>&1
	python3 "$E2E_TMP/dnscheck.py" "$out" "$ZONE." "$@"
}

# names_ok TOOL I SERVER LEADER NODES...: every node name and hostname of the mesh NODES, leader and ns,
# as seen by host I asking SERVER (A for IPv4 members, AAAA for IPv6), all from one client.
names_ok() {
	local tool=$1 i=$2 srv=$3 leader=$4 j t ns_all="" bad=0; shift 4
	t=A; [[ ${OV_IP[$leader]} == *:* ]] && t=AAAA
	for j in "$@"; do
		ns_all="$ns_all,${OV_IP[$j]}"
		dcheck "$tool" "$i" "$srv" "$(node_name "${OV_IP[$j]}").$ZONE" $t -- status=NOERROR aa=1 an=$t:"${OV_IP[$j]}" || bad=1
		dcheck "$tool" "$i" "$srv" "${OV_HN[$j]}.$ZONE" $t -- status=NOERROR aa=1 an=$t:"${OV_IP[$j]}" || bad=1
	done
	dcheck "$tool" "$i" "$srv" "leader.$ZONE" $t -- status=NOERROR aa=1 an=$t:"${OV_IP[$leader]}" || bad=1
	dcheck "$tool" "$i" "$srv" "ns.$ZONE" $t -- status=NOERROR aa=1 an=$t:"${ns_all#,}" || bad=1
	[ $bad = 0 ] && echo "host $i @$srv ($tool): $(($# * 2 + 2)) names answered"
	return $bad
}

# within SECONDS T0 NODES -- DCHECK-ARGS...: on every node of NODES (asking its own 127.0.0.1) the
# dcheck passes before T0 + SECONDS; prints how long each took.
within() {
	local secs=$1 t0=$2 deadline j nodes=() ok; shift 2
	while [ "$1" != -- ]; do nodes+=("$1"); shift; done
	shift
	deadline=$(awk -v t="$t0" -v s="$secs" 'BEGIN { printf "%.3f", t + s }')
	for j in "${nodes[@]}"; do
		ok=0
		while :; do
			if dcheck "$1" "$j" 127.0.0.1 "${@:2}" >"$E2E_TMP/within.out" 2>&1; then ok=1; break; fi
			awk -v d="$deadline" -v n="$(ov_now)" 'BEGIN { exit !(n >= d) }' && break
			sleep 0.1
		done
		[ $ok = 1 ] || { say "host $j: not within ${secs}s:"; cat "$E2E_TMP/within.out"; return 1; }
		echo "host $j after $(ov_elapsed "$t0") s"
	done
}

# at_port PORT CMD...: CMD with dq/kq asking PORT.
at_port() { local DQ_PORT=$1; shift; "$@"; }

# dns_listening I PORT: something listens on PORT (UDP or TCP) in host I's namespace.
dns_listening() { ip netns exec "${OV_NS[$1]}" ss -Hluntp "sport = :$2" 2>/dev/null | grep -q .; }

# first_answers I SERVER NAME N: the first A record of N answers, one per line.
first_answers() {
	local k
	for k in $(seq "$4"); do dq "$1" "$2" +short "$3" A | head -n 1; done
}

# records_named I NAME: how many records of NAME `dns list --json` shows on host I.
records_named() {
	ov_cli "$1" dns list --json | python3 -c 'import json, sys
print(sum(1 for r in json.load(sys.stdin)["records"] if r["name"] == sys.argv[1]))' "$2"
}

# ov_dns I ARGS...: `zl-overlay dns ARGS` on host I, output kept for the failure report.
ov_dns() {
	local i=$1; shift
	ov_cli "$i" dns "$@" >"$E2E_TMP/dnscli.out" 2>&1 || { cat "$E2E_TMP/dnscli.out"; return 1; }
}

# ---------------------------------------------------------------- the IPv4 mesh

ov_hosts 6
step "IPv4 mesh: leader host 1, workers hosts 2 and 3 (hostnames host1..host3)"
must "init-leader on host 1 (--hostname host1)" ov_init_leader 1 10.200.0.0/16
must "leader daemon up" ov_start 1
must "host 2 joins (--hostname host2)" ov_add_node 1 2
must "host 3 joins (--hostname host3)" ov_add_node 1 3
ov_mesh_check "all pairs ping" 10 1 2 3
for i in 1 2 3; do
	check "host $i: DNS listens on 127.0.0.1 and ${OV_IP[$i]}, UDP and TCP, port $DNS_PORT" eval \
		"ip netns exec ${OV_NS[$i]} ss -Hlun 'sport = :$DNS_PORT' | grep -qF '127.0.0.1:$DNS_PORT' &&
		 ip netns exec ${OV_NS[$i]} ss -Hlun 'sport = :$DNS_PORT' | grep -qF '${OV_IP[$i]}:$DNS_PORT' &&
		 ip netns exec ${OV_NS[$i]} ss -Hltn 'sport = :$DNS_PORT' | grep -qF '127.0.0.1:$DNS_PORT' &&
		 ip netns exec ${OV_NS[$i]} ss -Hltn 'sport = :$DNS_PORT' | grep -qF '${OV_IP[$i]}:$DNS_PORT'"
done
N1=$(node_name "${OV_IP[1]}"); N2=$(node_name "${OV_IP[2]}"); N3=$(node_name "${OV_IP[3]}")
say "   . names: $N1=${OV_IP[1]} $N2=${OV_IP[2]} $N3=${OV_IP[3]}"

step "every node name, leader, hostnames and ns, on every node, to 127.0.0.1 and the overlay address"
for i in 1 2 3; do
	for srv in 127.0.0.1 "${OV_IP[$i]}"; do
		check "host $i @$srv with dig: node names, host1..3, leader, ns" names_ok dig "$i" "$srv" 1 1 2 3
		check "host $i @$srv with kdig: the same" names_ok kdig "$i" "$srv" 1 1 2 3
	done
done
check "host 2 asks host 1's overlay address through the tunnel" dcheck dig 2 "${OV_IP[1]}" "$N3.$ZONE" A -- status=NOERROR aa=1 an=A:"${OV_IP[3]}"
check "host 3 asks host 2's overlay address over TCP through the tunnel" dcheck kdig 3 "${OV_IP[2]}" "host1.$ZONE" A +tcp -- status=NOERROR aa=1 an=A:"${OV_IP[1]}" proto=TCP

step "the apex: SOA and NS"
check "SOA at $ZONE. (mname ns.$ZONE., rname hostmaster.$ZONE.)" dcheck dig 2 127.0.0.1 "$ZONE" SOA -- \
	status=NOERROR aa=1 ancount=1 has=SOA:"ns.$ZONE. hostmaster.$ZONE. "
check "NS at $ZONE. is ns.$ZONE." dcheck kdig 3 127.0.0.1 "$ZONE" NS -- status=NOERROR aa=1 an=NS:"ns.$ZONE."

step "negative answers carry the SOA and AA (RFC 2308)"
check "NXDOMAIN: nosuch.$ZONE (dig)" dcheck dig 1 127.0.0.1 "nosuch.$ZONE" A -- status=NXDOMAIN aa=1 ancount=0 soa=1
check "NXDOMAIN: a.b.nosuch.$ZONE (kdig, on a worker)" dcheck kdig 2 127.0.0.1 "a.b.nosuch.$ZONE" A -- status=NXDOMAIN aa=1 ancount=0 soa=1
check "NXDOMAIN below a node name: x.$N2.$ZONE" dcheck dig 3 "${OV_IP[3]}" "x.$N2.$ZONE" A -- status=NXDOMAIN aa=1 soa=1
check "NODATA: $N1 AAAA in an IPv4 cluster (dig)" dcheck dig 2 127.0.0.1 "$N1.$ZONE" AAAA -- status=NOERROR aa=1 ancount=0 soa=1
check "NODATA: leader MX (kdig)" dcheck kdig 3 127.0.0.1 "leader.$ZONE" MX -- status=NOERROR aa=1 ancount=0 soa=1
check "NODATA: TXT at the apex" dcheck dig 1 "${OV_IP[1]}" "$ZONE" TXT -- status=NOERROR aa=1 ancount=0 soa=1

step "case-insensitive matching, the query's case echoed"
MIXED=$(python3 -c "import sys; print(''.join(c.upper() if k % 2 else c for k, c in enumerate(sys.argv[1])))" "$N2.$ZONE")
check "dig $MIXED: answered, question and answer owner in the query's case" dcheck dig 1 127.0.0.1 "$MIXED" A -- \
	status=NOERROR aa=1 an=A:"${OV_IP[2]}" qname="$MIXED." owner="$MIXED."
check "dig +tcp HoSt3.OvErLaY.LoCaL: the same over TCP" dcheck dig 2 127.0.0.1 "HoSt3.OvErLaY.LoCaL" A +tcp -- \
	status=NOERROR aa=1 an=A:"${OV_IP[3]}" qname="HoSt3.OvErLaY.LoCaL." owner="HoSt3.OvErLaY.LoCaL." proto=TCP
# (kdig lower-cases names before sending, so only dig can show the echo.)
check "kdig HoSt3.OvErLaY.LoCaL: answered" dcheck kdig 2 127.0.0.1 "HoSt3.OvErLaY.LoCaL" A -- status=NOERROR aa=1 an=A:"${OV_IP[3]}"
check "NXDOMAIN in mixed case keeps the case too" dcheck dig 3 127.0.0.1 "NoSuch.Overlay.LOCAL" A -- status=NXDOMAIN aa=1 soa=1 qname="NoSuch.Overlay.LOCAL."

step "names outside the zone are REFUSED (no forwarder configured)"
check "example.com A -> REFUSED" dcheck dig 1 127.0.0.1 example.com A -- status=REFUSED ancount=0 aa=0
check "local. (the zone's parent) -> REFUSED" dcheck kdig 2 127.0.0.1 local SOA -- status=REFUSED ancount=0
check "xoverlay.local A -> REFUSED" dcheck dig 3 "${OV_IP[3]}" xoverlay.local A -- status=REFUSED ancount=0

step "TCP, +norec and EDNS"
for i in 1 2 3; do
	check "host $i: dig +tcp $N1 @${OV_IP[$i]}" dcheck dig "$i" "${OV_IP[$i]}" "$N1.$ZONE" A +tcp -- status=NOERROR aa=1 an=A:"${OV_IP[1]}" proto=TCP
done
check "kdig +tcp NXDOMAIN with the SOA" dcheck kdig 1 127.0.0.1 "gone.$ZONE" A +tcp -- status=NXDOMAIN aa=1 soa=1 proto=TCP
check "+norec: answered authoritatively, RD not echoed, no RA" dcheck dig 2 127.0.0.1 "leader.$ZONE" A +norec -- \
	status=NOERROR aa=1 rd=0 ra=0 an=A:"${OV_IP[1]}"
check "EDNS query: OPT in the answer, our payload size 1232" dcheck dig 1 127.0.0.1 "$N3.$ZONE" A +bufsize=4096 -- \
	status=NOERROR edns=1 edns_udp=1232 an=A:"${OV_IP[3]}"
check "no EDNS in the query: none in the answer" dcheck dig 1 127.0.0.1 "$N3.$ZONE" A +noedns -- status=NOERROR edns=0 an=A:"${OV_IP[3]}"
check "kdig +bufsize=512: answered with OPT" dcheck kdig 3 127.0.0.1 "$N2.$ZONE" A +bufsize=512 -- status=NOERROR edns=1 an=A:"${OV_IP[2]}"

# ---------------------------------------------------------------- registered names

step "registered names: added on a worker, answered by every node within ${BOUND}s"
T0=$(ov_now)
must "host 2: zl-overlay dns add web 10.200.77.1" ov_dns 2 add web 10.200.77.1
check "web A on hosts 1, 2, 3 within ${BOUND}s of the add" within "$BOUND" "$T0" 1 2 3 -- dig "web.$ZONE" A -- status=NOERROR aa=1 an=A:10.200.77.1
T0=$(ov_now)
must "host 3 adds a second address to web (10.200.77.2)" ov_dns 3 add web 10.200.77.2
check "web has both addresses on every node within ${BOUND}s" within "$BOUND" "$T0" 1 2 3 -- dig "web.$ZONE" A -- status=NOERROR an=A:10.200.77.1,10.200.77.2
check "kdig +tcp sees both too" dcheck kdig 1 "${OV_IP[1]}" "web.$ZONE" A +tcp -- status=NOERROR aa=1 an=A:10.200.77.1,10.200.77.2
must "host 1 registers web AAAA fd00:77::1" ov_dns 1 add web fd00:77::1
check "web AAAA on host 3" within "$BOUND" "$(ov_now)" 3 -- dig "web.$ZONE" AAAA -- status=NOERROR aa=1 an=AAAA:fd00:77::1
check "dns list --json on host 2 shows web's three records" eval "[ \$(records_named 2 web) = 3 ]"
check "dns list (table) on host 3 shows them too" eval "ov_cli 3 dns list >'$E2E_TMP/list.out' 2>&1 &&
	[ \$(grep -cE '^web +(A|AAAA) ' '$E2E_TMP/list.out') = 3 ]"

step "several addresses: all returned, rotated between answers"
for k in 1 2 3 4; do must "add rr 10.200.78.$k" ov_dns 1 add rr "10.200.78.$k"; done
check "rr A: the four addresses on host 2" within "$BOUND" "$(ov_now)" 2 -- dig "rr.$ZONE" A -- status=NOERROR an=A:10.200.78.1,10.200.78.2,10.200.78.3,10.200.78.4
first_answers 2 127.0.0.1 "rr.$ZONE" 12 >"$E2E_TMP/rr.first"
check "the first address changes between queries ($(sort -u "$E2E_TMP/rr.first" | wc -l) distinct first answers in 12)" \
	test "$(sort -u "$E2E_TMP/rr.first" | wc -l)" -ge 2

step "SRV records with priority, weight and port"
must "host 2: dns add --srv _http._tcp.api 10 60 8080 web" ov_dns 2 add --srv _http._tcp.api 10 60 8080 web
must "host 3: dns add --srv _http._tcp.api 20 0 8081 host1" ov_dns 3 add --srv _http._tcp.api 20 0 8081 host1
check "SRV _http._tcp.api on every node within ${BOUND}s" within "$BOUND" "$(ov_now)" 1 2 3 -- dig "_http._tcp.api.$ZONE" SRV -- \
	status=NOERROR aa=1 an=SRV:"10 60 8080 web.$ZONE.,20 0 8081 host1.$ZONE."
check "kdig SRV over TCP" dcheck kdig 1 127.0.0.1 "_http._tcp.api.$ZONE" SRV +tcp -- status=NOERROR an=SRV:"10 60 8080 web.$ZONE.,20 0 8081 host1.$ZONE."
check "_tcp.api (an empty non-terminal) is NODATA, not NXDOMAIN" dcheck dig 2 127.0.0.1 "_tcp.api.$ZONE" A -- status=NOERROR aa=1 ancount=0 soa=1

step "EDNS sizes and truncation: a name with 60 addresses"
for k in $(seq 1 60); do ov_dns 1 add big "10.200.90.$k" || break; done
check "60 addresses registered for big" eval "[ \$(records_named 1 big) = 60 ]"
check "big over TCP: all 60 A records on host 3 (within ${BOUND}s)" within "$BOUND" "$(ov_now)" 3 -- dig "big.$ZONE" A +tcp -- status=NOERROR ancount=60 proto=TCP
check "+bufsize=512 +ignore: TC set, at most 512 bytes" dcheck dig 3 127.0.0.1 "big.$ZONE" A +bufsize=512 +ignore -- tc=1 aa=1 maxsize=512 proto=UDP
check "+noedns +ignore: TC set, at most 512 bytes" dcheck dig 2 127.0.0.1 "big.$ZONE" A +noedns +ignore -- tc=1 maxsize=512
check "+bufsize=4096: all 60 over UDP, no TC, at most 1232 bytes" dcheck dig 1 127.0.0.1 "big.$ZONE" A +bufsize=4096 +ignore -- tc=0 ancount=60 maxsize=1232 proto=UDP
check "+bufsize=512 without +ignore: dig retries over TCP and gets all 60" dcheck dig 2 "${OV_IP[2]}" "big.$ZONE" A +bufsize=512 -- ancount=60 proto=TCP
check "kdig +bufsize=600 +ignore: TC, at most 600 bytes" dcheck kdig 3 127.0.0.1 "big.$ZONE" A +bufsize=600 +ignore -- tc=1 maxsize=600
for k in $(seq 1 60); do ov_dns 1 add big6 "fd00:90::$k" || break; done
check "big6 (60 AAAA, over 1232 bytes) over TCP: all 60" within "$BOUND" "$(ov_now)" 2 -- dig "big6.$ZONE" AAAA +tcp -- status=NOERROR ancount=60
check "big6 with +bufsize=4096 +ignore: TC, never above 1232 bytes over UDP" dcheck dig 2 127.0.0.1 "big6.$ZONE" AAAA +bufsize=4096 +ignore -- tc=1 maxsize=1232 proto=UDP
check "kdig big6 +bufsize=4096 +ignore: the same" dcheck kdig 1 127.0.0.1 "big6.$ZONE" AAAA +bufsize=4096 +ignore -- tc=1 maxsize=1232

step "removal: NXDOMAIN everywhere within ${BOUND}s (no empty leftovers)"
T0=$(ov_now)
must "host 3: dns remove web" ov_dns 3 remove web
check "web A is NXDOMAIN on every node within ${BOUND}s" within "$BOUND" "$T0" 1 2 3 -- dig "web.$ZONE" A -- status=NXDOMAIN aa=1 soa=1
check "web AAAA is NXDOMAIN too" dcheck kdig 2 127.0.0.1 "web.$ZONE" AAAA -- status=NXDOMAIN soa=1
T0=$(ov_now)
must "host 1: dns remove rr 10.200.78.1 (one address)" ov_dns 1 remove rr 10.200.78.1
check "rr keeps the three others on every node" within "$BOUND" "$T0" 1 2 3 -- dig "rr.$ZONE" A -- status=NOERROR an=A:10.200.78.2,10.200.78.3,10.200.78.4
T0=$(ov_now)
must "remove _http._tcp.api" ov_dns 2 remove _http._tcp.api
check "_http._tcp.api and its empty parents gone everywhere" within "$BOUND" "$T0" 1 2 3 -- dig "_tcp.api.$ZONE" A -- status=NXDOMAIN soa=1

# ---------------------------------------------------------------- forwarding

step "forwarding (--dns-forward) to a small upstream on host 3"
cat >"$E2E_TMP/upstream.py" <<'PY'
# A tiny upstream: answers every A query with 192.0.2.99 (RA set), except silent.example (no answer);
# logs each question name.
import socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
while True:
    d, peer = s.recvfrom(4096)
    if len(d) < 17:
        continue
    i, labels = 12, []
    while i < len(d) and d[i]:
        labels.append(d[i + 1:i + 1 + d[i]].decode("ascii", "replace")); i += 1 + d[i]
    q = d[12:i + 5]
    qtype = struct.unpack(">H", d[i + 1:i + 3])[0]
    name = ".".join(labels).lower()
    print("query %s %d" % (name, qtype), flush=True)
    if name == "silent.example":
        continue
    ans = b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 60, 4) + bytes([192, 0, 2, 99]) if qtype == 1 else b""
    flags = 0x8180 | (struct.unpack(">H", d[2:4])[0] & 0x0100)
    s.sendto(struct.pack(">HHHHHH", struct.unpack(">H", d[:2])[0], flags, 1, 1 if ans else 0, 0, 0) + q + ans, peer)
PY
UPSTREAM_PID=$(bg "${OV_NS[3]}" upstream python3 "$E2E_TMP/upstream.py" 127.0.0.1 "$UPSTREAM_PORT")
check "upstream listening on host 3's 127.0.0.1:$UPSTREAM_PORT" wait_until 5 dns_listening 3 "$UPSTREAM_PORT"
must "host 3's daemon stopped" ov_stop 3
must "host 3's daemon restarted with --dns-forward 127.0.0.1:$UPSTREAM_PORT" ov_start 3 --dns-forward "127.0.0.1:$UPSTREAM_PORT"
check "upstream.example A is forwarded and answered (192.0.2.99)" dcheck dig 3 127.0.0.1 upstream.example A -- status=NOERROR an=A:192.0.2.99 aa=0
check "... over TCP from the client too" dcheck kdig 3 "${OV_IP[3]}" tcp.upstream.example A +tcp -- status=NOERROR an=A:192.0.2.99 proto=TCP
check "a silent upstream gives SERVFAIL" dcheck dig 3 127.0.0.1 silent.example A +time=6 -- status=SERVFAIL
check "zone names are still answered here, authoritatively" dcheck dig 3 127.0.0.1 "$N1.$ZONE" A -- status=NOERROR aa=1 an=A:"${OV_IP[1]}"
check "NXDOMAIN in the zone is not forwarded" dcheck dig 3 127.0.0.1 "nosuch.$ZONE" A -- status=NXDOMAIN aa=1 soa=1
check "the upstream saw only the out-of-zone names" eval "grep -q 'query upstream.example 1' '$E2E_TMP/bg.upstream.log' &&
	! grep -qi '$ZONE' '$E2E_TMP/bg.upstream.log'"
check "host 1 (no forwarder) still refuses upstream.example" dcheck dig 1 127.0.0.1 upstream.example A -- status=REFUSED
check "upstream stopped" eval "kill $UPSTREAM_PID && wait_until 5 eval '! kill -0 $UPSTREAM_PID 2>/dev/null'"

# ---------------------------------------------------------------- options

step "--dns-zone and --dns-port on host 2"
must "host 2's daemon stopped" ov_stop 2
must "host 2 restarted with --dns-zone Mesh.Test --dns-port 5353" ov_start 2 --dns-zone Mesh.Test --dns-port 5353
check "nothing on port $DNS_PORT in host 2's namespace any more" eval "! dns_listening 2 $DNS_PORT"
ZONE=mesh.test
check "host 2 :5353: $N3.mesh.test (dig)" at_port 5353 dcheck dig 2 127.0.0.1 "$N3.mesh.test" A -- status=NOERROR aa=1 an=A:"${OV_IP[3]}"
check "host 2 :5353 on its overlay address: leader.mesh.test (kdig)" at_port 5353 dcheck kdig 2 "${OV_IP[2]}" leader.mesh.test A -- status=NOERROR aa=1 an=A:"${OV_IP[1]}"
check "host 2 :5353: registered names follow the zone (rr.mesh.test)" at_port 5353 dcheck dig 2 127.0.0.1 rr.mesh.test A -- status=NOERROR an=A:10.200.78.2,10.200.78.3,10.200.78.4
check "host 2 :5353: NXDOMAIN carries the SOA of mesh.test." at_port 5353 dcheck dig 2 127.0.0.1 nosuch.mesh.test A -- status=NXDOMAIN aa=1 soa=1
check "host 2 :5353: overlay.local is outside its zone -> REFUSED" at_port 5353 dcheck dig 2 127.0.0.1 "$N1.overlay.local" A -- status=REFUSED
ZONE=overlay.local

step "--no-dns: nothing listens"
must "host 2's daemon stopped" ov_stop 2
must "host 2 restarted with --no-dns" ov_start 2 --no-dns
check "no socket on $DNS_PORT or 5353 in host 2's namespace" eval "! dns_listening 2 $DNS_PORT && ! dns_listening 2 5353"
check "dig gets no answer from host 2" eval "! dq 2 127.0.0.1 $N1.$ZONE A >'$E2E_TMP/nodns.out' 2>&1 || ! grep -q 'status:' '$E2E_TMP/nodns.out'"
ov_mesh_check "the mesh still works with host 2 without DNS" 10 1 2 3
must "host 2's daemon stopped" ov_stop 2
must "host 2 restarted with DNS" ov_start 2

step "a second daemon in host 1's namespace on the used port: a clear start-up error"
# Node 7: another cluster's leader in host 1's namespace (own data dir, interface and ports).
OV_NS[7]=${OV_NS[1]}; OV_DIR[7]=$E2E_TMP/n7; OV_IF[7]=zo$((E2E_ID % 10000))7; OV_UL[7]=${OV_UL[1]}; OV_HN[7]=other
echo "${OV_IF[7]}" >>"$E2E_TMP/ifnames"
OV_PORT=51830 must "init-leader of a second cluster (10.201.0.0/16, port 51830) in host 1's namespace" \
	ov_init_leader 7 10.201.0.0/16 --port 51830
check "its start fails" eval "! OV_PORT=51830 ov_start 7"
check "... with a message naming the address and the way out" \
	grep -qE 'start_failed.*dns.*127\.0\.0\.1.*15353.*(in use|already).*--dns-port.*--no-dns' "$E2E_TMP/n7.daemon.log"
say "   . $(grep -m1 start_failed "$E2E_TMP/n7.daemon.log" | cut -c1-220)"
check "... and left no interface behind" eval "! ov_link_exists 7"
check "host 1's server still answers" dcheck dig 1 127.0.0.1 "leader.$ZONE" A -- status=NOERROR an=A:"${OV_IP[1]}"
OV_PORT=51830 must "with --dns-port 15354 it starts" ov_start 7 --dns-port 15354
check "both answer in host 1's namespace: :15354 its own leader" at_port 15354 dcheck dig 1 127.0.0.1 "leader.$ZONE" A -- status=NOERROR an=A:"${OV_IP[7]}"
check "... and :15353 host 1's" dcheck dig 1 127.0.0.1 "leader.$ZONE" A -- status=NOERROR an=A:"${OV_IP[1]}"
check "the second daemon stops cleanly" ov_stop 7

# ---------------------------------------------------------------- membership

step "membership: a node that joins is named everywhere within ${BOUND}s"
must "host 4 joins (--hostname host4)" ov_add_node 1 4
N4=$(node_name "${OV_IP[4]}")
check "$N4 on hosts 1..4 within ${BOUND}s of the join" within "$BOUND" "$OV_T0" 1 2 3 4 -- dig "$N4.$ZONE" A -- status=NOERROR aa=1 an=A:"${OV_IP[4]}"
check "host4 on hosts 1..4" within "$BOUND" "$OV_T0" 1 2 3 4 -- dig "host4.$ZONE" A -- status=NOERROR an=A:"${OV_IP[4]}"
check "host 4 answers every name" names_ok dig 4 "${OV_IP[4]}" 1 1 2 3 4
check "ns lists the four nodes on host 1" dcheck dig 1 127.0.0.1 "ns.$ZONE" A -- an=A:"${OV_IP[1]},${OV_IP[2]},${OV_IP[3]},${OV_IP[4]}"

step "a node that leaves: its names NXDOMAIN on every remaining node within ${BOUND}s"
T0=$(ov_now)
must "host 4: zl-overlay leave" ov_cli 4 leave
check "host 4's daemon exits" ov_wait_exit 4 15
check "$N4 NXDOMAIN on hosts 1..3 within ${BOUND}s of the leave" within "$BOUND" "$T0" 1 2 3 -- dig "$N4.$ZONE" A -- status=NXDOMAIN aa=1 soa=1
check "host4 NXDOMAIN on hosts 1..3" within "$BOUND" "$T0" 1 2 3 -- dig "host4.$ZONE" A -- status=NXDOMAIN soa=1
check "ns no longer lists host 4" dcheck dig 2 127.0.0.1 "ns.$ZONE" A -- an=A:"${OV_IP[1]},${OV_IP[2]},${OV_IP[3]}"

step "a node that is removed: its names NXDOMAIN on every remaining node within ${BOUND}s"
T0=$(ov_now)
must "leader: remove-peer host3" ov_cli 1 remove-peer host3
check "$N3 NXDOMAIN on hosts 1 and 2 within ${BOUND}s" within "$BOUND" "$T0" 1 2 -- dig "$N3.$ZONE" A -- status=NXDOMAIN aa=1 soa=1
check "host3 NXDOMAIN on hosts 1 and 2" within "$BOUND" "$T0" 1 2 -- kdig "host3.$ZONE" A -- status=NXDOMAIN soa=1
check "host 3's daemon retires" ov_wait_exit 3 15
check "the registered names stay (rr on host 2)" dcheck dig 2 127.0.0.1 "rr.$ZONE" A -- status=NOERROR an=A:10.200.78.2,10.200.78.3,10.200.78.4

step "stop the IPv4 cluster"
for i in 2 1; do check "host $i daemon stops cleanly" ov_stop "$i"; done

# ---------------------------------------------------------------- IPv6

step "IPv6 mesh of two hosts (fd00:200::/48): AAAA"
must "init-leader on host 5 (--hostname host5)" ov_init_leader 5 fd00:200::/48
must "host 5 daemon up" ov_start 5
must "host 6 joins (--hostname host6)" ov_add_node 5 6
ov_mesh_check "hosts 5 and 6 ping6 each other" 10 5 6
say "   . names: $(node_name "${OV_IP[5]}")=${OV_IP[5]} $(node_name "${OV_IP[6]}")=${OV_IP[6]}"
# Every node is ::1 of its own /64 slice, so names from the low 32 bits alone would all be node6-0-1.
check "the two IPv6 nodes have different node names" test "$(node_name "${OV_IP[5]}")" != "$(node_name "${OV_IP[6]}")"
for i in 5 6; do
	for srv in 127.0.0.1 "${OV_IP[$i]}"; do
		check "host $i @$srv (dig): node6 names, hostnames, leader, ns as AAAA" names_ok dig "$i" "$srv" 5 5 6
		check "host $i @$srv (kdig): the same" names_ok kdig "$i" "$srv" 5 5 6
	done
done
check "A of an IPv6 node name is NODATA with the SOA" dcheck dig 6 127.0.0.1 "$(node_name "${OV_IP[5]}").$ZONE" A -- status=NOERROR aa=1 ancount=0 soa=1
check "AAAA over TCP on the IPv6 overlay address" dcheck kdig 5 "${OV_IP[5]}" "host6.$ZONE" AAAA +tcp -- status=NOERROR an=AAAA:"${OV_IP[6]}" proto=TCP
check "host 6 asks host 5's IPv6 overlay address through the tunnel" dcheck dig 6 "${OV_IP[5]}" "leader.$ZONE" AAAA -- status=NOERROR aa=1 an=AAAA:"${OV_IP[5]}"
for i in 6 5; do check "host $i daemon stops cleanly" ov_stop "$i"; done
e2e_finish
