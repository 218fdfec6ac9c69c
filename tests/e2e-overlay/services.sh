#!/usr/bin/env bash
# services: service health checks steer DNS answers. Three hosts; a TCP listener on host 2's overlay
# address (port 8080) and one on host 3's (port 8081, never stopped). From host 2:
#   zl-overlay dns add web <host 2 address> --check tcp:8080 --check-interval 1 --check-threshold 2
#   zl-overlay dns add web <host 3 address> --check tcp:8081 --check-interval 1 --check-threshold 2
# dig from every host returns both. `zl-overlay watch --json` runs on host 1 and `zl-overlay watch` on
# host 3. The listener on host 2 stops: within interval x (threshold + 1) s (+ slack for polling) host
# 2's address leaves the answers on every node while host 3's stays, both watchers print the service
# down event (reason "connect refused"), the daemons log service.down. The listener starts again: the
# address is back everywhere within 2 intervals (+ slack) and the watchers print service up.
# An HTTP check (api on host 3, GET /health: 200 or 503 by a flag file) leaves and rejoins the same
# way. The watchers exit 0 on SIGTERM; `watch` on a node without a daemon fails with a message.
. "$(dirname "$0")/lib-overlay.sh"
ov_init services
ov_need_daemon
command -v dig >/dev/null || { e2e_fail "dig is not installed (dnsutils: make deps)"; e2e_finish; }

CIDR=10.200.0.0/16
DNS_PORT=15353
ZONE=overlay.local
INTERVAL=1
THRESHOLD=2
DOWN_BOUND=$((INTERVAL * (THRESHOLD + 1)))   # the brief's bound for leaving DNS
UP_BOUND=$((INTERVAL * 2))                     # one passing check; the next starts within an interval
SLACK=1                                        # polling: one dig per node per round, each a process
REG_BOUND=${OV_CONVERGE_S:-5}                  # a registration reaches every node

# ---------------------------------------------------------------- helpers

cat >"$E2E_TMP/listen.py" <<'PY'
# listen.py ADDR PORT: accepts TCP connections and closes them at once (what a TCP check needs).
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(64)
while True:
    c, _ = s.accept()
    c.close()
PY

cat >"$E2E_TMP/hsrv.py" <<'PY'
# hsrv.py ADDR PORT FLAG: GET /health answers 200 while the file FLAG exists, else 503. (Not named
# http.py: that would shadow the http package.)
import http.server, os, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        ok = self.path == "/health" and os.path.exists(sys.argv[3])
        self.send_response(200 if ok else 503)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *a):
        pass
http.server.HTTPServer((sys.argv[1], int(sys.argv[2])), H).serve_forever()
PY

# listen I PORT: the listener on host I's overlay address; prints its pid (recorded for cleanup).
listen() {
	bg "${OV_NS[$1]}" "listen$1" python3 "$E2E_TMP/listen.py" "${OV_IP[$1]}" "$2"
}
listening() { ip netns exec "${OV_NS[$1]}" ss -Htln "sport = :$2" 2>/dev/null | grep -qF "${OV_IP[$1]}:$2"; }

# answers I: the A records of $Q.ZONE (default web) served by host I (127.0.0.1), sorted, one line.
answers() {
	timeout -k 2 10 ip netns exec "${OV_NS[$1]}" dig @127.0.0.1 -p "$DNS_PORT" +tries=1 +time=1 +short \
		"${Q:-web}.$ZONE" A 2>/dev/null | grep -E '^[0-9.]+$' | sort -V | tr '\n' ' ' | sed 's/ $//'
}

# answers_are WANT HOSTS...: every listed host answers exactly WANT ("a b", sorted).
answers_are() {
	local want=$1 i got; shift
	for i in "$@"; do
		got=$(answers "$i")
		[ "$got" = "$want" ] || { echo "host $i answers '$got', want '$want'"; return 1; }
	done
}

# until_answers SECONDS WANT HOSTS...: polls until every host answers WANT; prints the time it took.
until_answers() {
	local limit=$1 want=$2 t0 deadline; shift 2
	t0=$(ov_now)
	deadline=$(ov_deadline "$limit")
	while ! answers_are "$want" "$@" >"$E2E_TMP/answers.last" 2>&1; do
		if awk -v n="$(ov_now)" -v d="$deadline" 'BEGIN { exit !(n >= d) }'; then
			cat "$E2E_TMP/answers.last"
			return 1
		fi
		sleep 0.1
	done
	ov_elapsed "$t0"
}

sorted() { printf '%s\n' "$@" | sort -V | tr '\n' ' ' | sed 's/ $//'; }

# within LIMIT: the seconds printed by until_answers (in $E2E_TMP/took) are at most LIMIT.
within() { awk -v t="$(cat "$E2E_TMP/took")" -v l="$1" 'BEGIN { exit !(t != "" && t <= l) }'; }

# The watch checker: lines of `watch --json` (or of `watch` with text=1) hold an event with these fields.
cat >"$E2E_TMP/watchcheck.py" <<'PY'
import json, re, sys
path, mode = sys.argv[1], sys.argv[2]
want = dict(kv.split("=", 1) for kv in sys.argv[3:])
lines = open(path, errors="replace").read().splitlines()
if mode == "json":
    for l in lines:
        try:
            ev = json.loads(l)
        except ValueError:
            print("not JSON: %r" % l); sys.exit(1)
        keys = {"kind", "state", "name", "address", "hostname", "port", "reason", "time"}
        if set(ev) != keys or not isinstance(ev["time"], int) or not isinstance(ev["port"], int):
            print("bad event %r" % ev); sys.exit(1)
        if all(str(ev.get(k)) == v for k, v in want.items()):
            sys.exit(0)
else:
    # "TIME service down web 10.200.0.2:8080 (connect refused)"
    text = "%s %s %s %s:%s (%s)" % (want["kind"], want["state"], want["name"], want["address"], want["port"],
                                    want["reason"])
    for l in lines:
        if re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ " + re.escape(text) + "$", l):
            sys.exit(0)
print("no such event in %d lines:" % len(lines))
print("\n".join(lines[-10:]))
sys.exit(1)
PY
watch_has() { python3 "$E2E_TMP/watchcheck.py" "$@"; }
watch_shows() { wait_until 3 watch_has "$@" || watch_has "$@"; }

# start_watch I FILE [--json]: `zl-overlay watch` on host I in the background, pid in WATCH_PID.
start_watch() {
	local i=$1 out=$2; shift 2
	ip netns exec "${OV_NS[$i]}" "$OV_CLI" --data-dir "${OV_DIR[$i]}" watch "$@" >"$out" 2>"$out.err" </dev/null &
	WATCH_PID=$!
	echo "$WATCH_PID --data-dir ${OV_DIR[$i]} watch" >>"$E2E_TMP/pids"
}

# dns_health I NAME ADDR STATE: node I's dns list --json gives that record this check verdict.
dns_health() {
	ip netns exec "${OV_NS[$1]}" "$OV_CLI" --data-dir "${OV_DIR[$1]}" dns list --json |
		python3 -c '
import json, sys
name, addr, want = sys.argv[1:4]
recs = [r for r in json.load(sys.stdin)["records"] if r.get("name") == name and r.get("addr") == addr]
sys.exit(0 if len(recs) == 1 and recs[0].get("health") == want else 1)' "$2" "$3" "$4"
}

# stop_watch PID: SIGTERM; the watcher must exit 0.
stop_watch() {
	local rc
	kill -TERM "$1" || return 1
	wait "$1"; rc=$?
	[ "$rc" = 0 ] || { echo "watch exited $rc"; return 1; }
}

# ---------------------------------------------------------------- the mesh

ov_hosts 3
must "init-leader on host 1" ov_init_leader 1 "$CIDR"
must "host 1 daemon" ov_start 1
for i in 2 3; do
	TOK=$(ov_token 1)
	must "host $i joins" ov_join "$i" "$TOK"
	must "host $i daemon" ov_start "$i"
done
ov_mesh_check "all pairs ping" 10 1 2 3
IP2=${OV_IP[2]}
IP3=${OV_IP[3]}
BOTH=$(sorted "$IP2" "$IP3")

step "watch on a node without a daemon fails with a message"
mkdir -p "$E2E_TMP/nodaemon"
check "exit 1, 'not running'" eval "! timeout 10 '$OV_CLI' --data-dir '$E2E_TMP/nodaemon' watch 2>'$E2E_TMP/nd.err' &&
	grep -q 'zl-overlayd is not running' '$E2E_TMP/nd.err'"

step "listeners: host 2 $IP2:8080, host 3 $IP3:8081; both registered as web with TCP checks"
L2=$(listen 2 8080)
L3=$(listen 3 8081)
must "host 2 listens on $IP2:8080" wait_until 5 listening 2 8080
must "host 3 listens on $IP3:8081" wait_until 5 listening 3 8081
start_watch 1 "$E2E_TMP/watch1.json" --json
W1=$WATCH_PID
start_watch 3 "$E2E_TMP/watch3.txt"
W3=$WATCH_PID
must "dns add web $IP2 --check tcp:8080 (host 2)" ov_cli 2 dns add web "$IP2" --check tcp:8080 \
	--check-interval "$INTERVAL" --check-threshold "$THRESHOLD"
must "dns add web $IP3 --check tcp:8081 (host 2)" ov_cli 2 dns add web "$IP3" --check tcp:8081 \
	--check-interval "$INTERVAL" --check-threshold "$THRESHOLD"
must "every node answers both addresses within ${REG_BOUND}s" eval "until_answers $REG_BOUND '$BOTH' 1 2 3 >'$E2E_TMP/took'"
say "   . registered: both answered everywhere after $(cat "$E2E_TMP/took")s"
check "the first verdicts: host 1's watcher prints service up for $IP2 (connected)" \
	watch_shows "$E2E_TMP/watch1.json" json kind=service state=up name=web address="$IP2" port=8080 reason=connected
# Still both after a few more check rounds (no flapping).
sleep $((INTERVAL * 2))
check "still both on every node after $((INTERVAL * 2))s" answers_are "$BOTH" 1 2 3

step "the listener on host 2 stops: $IP2 leaves the answers within ${DOWN_BOUND}s (+${SLACK}s)"
kill -TERM "$L2"
check "host 2 no longer listens on 8080" wait_until 3 eval "! listening 2 8080"
if check "only $IP3 answered on every node" eval "until_answers $((DOWN_BOUND + SLACK + 5)) '$IP3' 1 2 3 >'$E2E_TMP/took'"; then
	say "   . down: $IP2 gone from every node after $(cat "$E2E_TMP/took")s"
	check "within interval x (threshold + 1) = ${DOWN_BOUND}s + ${SLACK}s" within $((DOWN_BOUND + SLACK))
fi
check "host 1's watcher (--json) shows service down for $IP2:8080, connect refused" \
	watch_shows "$E2E_TMP/watch1.json" json kind=service state=down name=web address="$IP2" port=8080 \
	reason="connect refused" hostname=
check "host 3's watcher (text) shows 'service down web $IP2:8080 (connect refused)'" \
	watch_shows "$E2E_TMP/watch3.txt" text kind=service state=down name=web address="$IP2" port=8080 \
	reason="connect refused"
for i in 1 2 3; do
	check "host $i's log has service.down for $IP2" grep -qE "event=service\.down name=web address=$IP2 port=8080" \
		"$E2E_TMP/n$i.daemon.log"
done
check "dns list --json on host 1: web $IP2 health down, $IP3 up" eval "dns_health 1 web $IP2 down && dns_health 1 web $IP3 up"
check "dns list on host 1 shows '(down)' in the CHECK column" eval "'$OV_CLI' --data-dir '${OV_DIR[1]}' dns list | grep -E '^web +A +$IP2 .*\\(down\\)'"
check "host 3's address never went down (host 1's watcher)" eval "! watch_has '$E2E_TMP/watch1.json' json \
	kind=service state=down address=$IP3 >/dev/null"

step "the listener on host 2 starts again: $IP2 is back within ${UP_BOUND}s (+${SLACK}s)"
L2=$(listen 2 8080)
must "host 2 listens on $IP2:8080 again" wait_until 5 listening 2 8080
if check "both answered on every node again" eval "until_answers $((UP_BOUND + SLACK + 5)) '$BOTH' 1 2 3 >'$E2E_TMP/took'"; then
	say "   . up: $IP2 back on every node after $(cat "$E2E_TMP/took")s"
	check "within 2 x interval = ${UP_BOUND}s + ${SLACK}s" within $((UP_BOUND + SLACK))
fi
# The watchers print the service up after the down (the first up was printed before).
check "host 1's watcher shows service up for $IP2 after the down" eval "
	python3 -c '
import json, sys
ev = [json.loads(l) for l in open(\"$E2E_TMP/watch1.json\")]
mine = [(e[\"state\"], e[\"reason\"]) for e in ev if e[\"kind\"] == \"service\" and e[\"address\"] == \"$IP2\"]
sys.exit(0 if mine[-2:] == [(\"down\", \"connect refused\"), (\"up\", \"connected\")] else (print(mine) or 1))'"
check "host 3's watcher shows 'service up web $IP2:8080 (connected)'" \
	watch_shows "$E2E_TMP/watch3.txt" text kind=service state=up name=web address="$IP2" port=8080 reason=connected

check "dns list --json on host 1: web $IP2 health up again" dns_health 1 web "$IP2" up

step "an HTTP check: api on host 3 ($IP3:8082/health), 200 while a flag file exists, else 503"
touch "$E2E_TMP/healthy"
H3=$(bg "${OV_NS[3]}" http3 python3 "$E2E_TMP/hsrv.py" "$IP3" 8082 "$E2E_TMP/healthy")
must "host 3 serves HTTP on $IP3:8082" wait_until 5 listening 3 8082
must "dns add api $IP3 --check http:8082/health (host 1)" ov_cli 1 dns add api "$IP3" --check http:8082/health \
	--check-interval "$INTERVAL" --check-threshold "$THRESHOLD"
check "every node answers api with $IP3" eval "Q=api until_answers $REG_BOUND '$IP3' 1 2 3 >'$E2E_TMP/took'"
check "host 1's watcher shows api up (HTTP 200)" \
	watch_shows "$E2E_TMP/watch1.json" json kind=service state=up name=api address="$IP3" port=8082 reason="HTTP 200"
rm -f "$E2E_TMP/healthy"
if check "503: api has no address on any node" eval "Q=api until_answers $((DOWN_BOUND + SLACK + 5)) '' 1 2 3 >'$E2E_TMP/took'"; then
	say "   . api down everywhere after $(cat "$E2E_TMP/took")s"
	check "within ${DOWN_BOUND}s + ${SLACK}s" within $((DOWN_BOUND + SLACK))
fi
check "host 3's watcher shows 'service down api $IP3:8082 (HTTP 503)'" \
	watch_shows "$E2E_TMP/watch3.txt" text kind=service state=down name=api address="$IP3" port=8082 reason="HTTP 503"
check "web is not affected: both addresses" answers_are "$BOTH" 1 2 3
touch "$E2E_TMP/healthy"
check "200 again: api answered on every node" eval "Q=api until_answers $((UP_BOUND + SLACK + 5)) '$IP3' 1 2 3 >'$E2E_TMP/took'"
kill -TERM "$H3" 2>/dev/null

step "the watchers exit 0 on SIGTERM"
check "host 1's watcher (--json)" stop_watch "$W1"
check "host 3's watcher (text)" stop_watch "$W3"
check "nothing on the watchers' stderr" eval "! [ -s '$E2E_TMP/watch1.json.err' ] && ! [ -s '$E2E_TMP/watch3.txt.err' ]"

step "SIGTERM: daemons stop cleanly"
kill -TERM "$L2" "$L3" 2>/dev/null
for i in 3 2 1; do check "host $i daemon stops cleanly" ov_stop "$i"; done
e2e_finish
