#!/usr/bin/env bash
# health: peer health from active probes, seen through `status`, the --on-change hook and the logs.
# A leader and two workers, every daemon with --probe-interval 1 --probe-misses 3 and a hook that
# appends its ZL_* environment as one line to a file per node. Then:
#   - everyone reports everyone up (status --json checked field by field, the table shows RTT, LOSS,
#     HEALTH), and the hook ran for each first verdict;
#   - host 3's daemon stops: hosts 1 and 2 report it down within interval x (misses + 1) s (+1 s slack
#     for polling), the hook ran with ZL_EVENT=peer ZL_STATE=down ZL_ADDRESS=<its address>, the log
#     has peer.down; it starts again: up, hook with ZL_STATE=up;
#   - host 3's WireGuard UDP is dropped by nftables in its namespace: down on both sides within the
#     same bound; the table deleted: up again, with the missed probes showing as loss.
. "$(dirname "$0")/lib-overlay.sh"
ov_init health
ov_need_daemon
command -v nft >/dev/null || { e2e_fail "nft is required (Debian package nftables)"; e2e_finish; }

INTERVAL=1
MISSES=3
BOUND=$((INTERVAL * (MISSES + 1)))   # the issue's bound for "down"
SLACK=1                               # polling: one status call every ~0.2 s, each a process start
UP_BOUND=10                           # back up: a handshake and one answered probe; generous

# ---------------------------------------------------------------- helpers

hook_file() { printf '%s/hook.%s' "$E2E_TMP" "$1"; }

# One line per event (one write: lines of concurrent hooks do not mix), variables sorted.
hook_cmd() {
	# shellcheck disable=SC2016 # expanded by the hook's shell
	printf 'l=$(env | grep "^ZL_" | sort | tr "\\n" " "); echo "$l" >>%s' "$(hook_file "$1")"
}

start_node() {
	local i=$1
	: >>"$(hook_file "$i")"
	ov_start "$i" --probe-interval "$INTERVAL" --probe-misses "$MISSES" --on-change "$(hook_cmd "$i")"
}

add_node() {
	local i=$1 tok
	tok=$(ov_token 1) && [ -n "$tok" ] || { cat "$E2E_TMP/token.err"; return 1; }
	ov_join "$i" "$tok" && start_node "$i"
}

# hook_count I ADDR STATE: how many peer events with that address and state node I's hook saw.
hook_count() {
	local n
	n=$(grep -F "ZL_ADDRESS=$2 " "$(hook_file "$1")" 2>/dev/null | grep " ZL_EVENT=peer " |
		grep -c " ZL_STATE=$3 ")
	echo "${n:-0}"
}

# hook_ran I ADDR STATE MIN: at least MIN such events (hooks run asynchronously: wait up to 3 s).
hook_ran() {
	local deadline=$((SECONDS + 3))
	while [ "$(hook_count "$1" "$2" "$3")" -lt "$4" ]; do
		[ "$SECONDS" -ge "$deadline" ] && { say "node $1's hook lines:"; cat "$(hook_file "$1")"; return 1; }
		sleep 0.1
	done
}

read -r -d '' HP <<'PY'
import ipaddress, json, sys, time

def load(path):
    with open(path) as f:
        return json.load(f)

def num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)

def peer_of(st, ip):
    for p in st.get("peers", []):
        if isinstance(p, dict) and p.get("overlay_ip") == ip:
            return p
    return None

# health FILE IP: the peer's "health" (exit 1 when not listed).
def cmd_health(a):
    p = peer_of(load(a[0]), a[1])
    if p is None:
        sys.exit(1)
    print(p.get("health"))

# loss FILE IP
def cmd_loss(a):
    print(peer_of(load(a[0]), a[1])["loss"])

# check FILE ip=..,id=..,host=..,ep=..,want=up|down ...: every peer field by field, exactly these peers.
def cmd_check(a):
    st, bad, now = load(a[0]), [], time.time()
    wants = [dict(kv.split("=", 1) for kv in spec.split(",")) for spec in a[1:]]
    peers = st.get("peers")
    if not isinstance(peers, list):
        print("peers is not a list"); sys.exit(1)
    if sorted(p.get("overlay_ip", "") for p in peers) != sorted(w["ip"] for w in wants):
        bad.append("peers %s, expected %s" % ([p.get("overlay_ip") for p in peers], [w["ip"] for w in wants]))
    for p in peers:
        w = "peer %s" % p.get("overlay_ip")
        for k in ("node_id", "hostname", "overlay_ip", "public_key", "endpoint", "health"):
            if not isinstance(p.get(k), str):
                bad.append("%s: %s is %r, not a string" % (w, k, p.get(k)))
        for k in ("last_handshake", "rx_bytes", "tx_bytes"):
            if not isinstance(p.get(k), int) or isinstance(p.get(k), bool) or p[k] < 0:
                bad.append("%s: %s is %r, not a non-negative integer" % (w, k, p.get(k)))
        if not isinstance(p.get("healthy"), bool):
            bad.append("%s: healthy is %r, not a boolean" % (w, p.get("healthy")))
        if p.get("health") not in ("up", "down", "unknown"):
            bad.append("%s: health %r" % (w, p.get("health")))
        if p.get("healthy") != (p.get("health") == "up"):
            bad.append("%s: healthy %r but health %r" % (w, p.get("healthy"), p.get("health")))
        if not num(p.get("loss")) or not 0 <= p["loss"] <= 1:
            bad.append("%s: loss %r not a number in [0,1]" % (w, p.get("loss")))
        for k in ("rtt_ms", "jitter_ms"):
            if "rtt_ms" not in p or "jitter_ms" not in p:
                bad.append("%s: %s missing" % (w, k))
            elif p[k] is not None and (not num(p[k]) or p[k] < 0):
                bad.append("%s: %s %r not null or a non-negative number" % (w, k, p[k]))
    for want in wants:
        p, w = peer_of(st, want["ip"]), "peer %s" % want["ip"]
        if p is None:
            continue
        for k, key in (("id", "node_id"), ("host", "hostname")):
            if p.get(key) != want[k]:
                bad.append("%s: %s %r, expected %r" % (w, key, p.get(key), want[k]))
        if want["want"] == "up":
            if p.get("healthy") is not True or p.get("health") != "up":
                bad.append("%s: healthy %r health %r, expected up" % (w, p.get("healthy"), p.get("health")))
            if not num(p.get("rtt_ms")) or not p["rtt_ms"] > 0:
                bad.append("%s: rtt_ms %r, expected > 0" % (w, p.get("rtt_ms")))
            if not num(p.get("jitter_ms")):
                bad.append("%s: jitter_ms %r, expected a number" % (w, p.get("jitter_ms")))
            if p.get("endpoint") != want["ep"]:
                bad.append("%s: endpoint %r, expected %r" % (w, p.get("endpoint"), want["ep"]))
            lh = p.get("last_handshake")
            if not isinstance(lh, int) or not now - 180 <= lh <= now + 5:
                bad.append("%s: last_handshake %r not within the last 180 s" % (w, lh))
            if not (isinstance(p.get("rx_bytes"), int) and p["rx_bytes"] > 0 and
                    isinstance(p.get("tx_bytes"), int) and p["tx_bytes"] > 0):
                bad.append("%s: rx_bytes %r tx_bytes %r, expected traffic" % (w, p.get("rx_bytes"), p.get("tx_bytes")))
        else:
            if p.get("healthy") is not False or p.get("health") != "down":
                bad.append("%s: healthy %r health %r, expected down" % (w, p.get("healthy"), p.get("health")))
    for b in bad:
        print(b)
    sys.exit(1 if bad else 0)

{"health": cmd_health, "loss": cmd_loss, "check": cmd_check}[sys.argv[1]](sys.argv[2:])
PY
hp() { python3 -c "$HP" "$@"; }

# wait_pairs STATE T0 BOUND I:J...: each observer I reports node J in STATE before T0 + BOUND (epoch
# seconds). Every round reads each observer's status once and looks at all its pending pairs, so a slow
# observer does not delay noticing the others. One check per pair, with the time the status that first
# showed it was read.
wait_pairs() {
	local state=$1 t0=$2 bound=$3 deadline pair i j got pending f fetched at; shift 3
	local -A seen=() last=()
	deadline=$(awk -v t="$t0" -v b="$bound" 'BEGIN { printf "%.3f", t + b }')
	while :; do
		pending=0
		for i in 1 2 3; do
			f=$E2E_TMP/hs.$i.json; fetched=
			for pair in "$@"; do
				[ "${pair%%:*}" = "$i" ] && [ -z "${seen[$pair]:-}" ] || continue
				[ -n "$fetched" ] || { ov_status_json "$i" "$f" >/dev/null 2>&1; at=$(ov_elapsed "$t0"); fetched=1; }
				j=${pair#*:}
				got=$(hp health "$f" "${OV_IP[$j]}" 2>/dev/null); last[$pair]=$got
				if [ "$got" = "$state" ]; then seen[$pair]=$at; else pending=1; fi
			done
		done
		[ "$pending" = 0 ] && break
		awk -v d="$deadline" -v n="$(ov_now)" 'BEGIN { exit !(n >= d) }' && break
		sleep 0.1
	done
	for pair in "$@"; do
		i=${pair%%:*}; j=${pair#*:}
		if [ -n "${seen[$pair]:-}" ] && awk -v e="${seen[$pair]}" -v b="$bound" 'BEGIN { exit !(e <= b) }'; then
			e2e_pass "host $i reports host $j $state (${seen[$pair]} s, bound ${bound}s)"
		else
			e2e_fail "host $i reports host $j $state: '${last[$pair]:-}' after ${seen[$pair]:-$bound} s (bound ${bound}s)"
		fi
	done
}

# fields_check I STATES...: node I's status --json field by field; STATES "J:up" or "J:down" per peer.
fields_check() {
	local i=$1 spec j st specs=(); shift
	for spec in "$@"; do
		j=${spec%%:*}; st=${spec#*:}
		specs+=("ip=${OV_IP[$j]},id=${OV_ID[$j]},host=${OV_HN[$j]},ep=${OV_UL[$j]}:$OV_PORT,want=$st")
	done
	ov_status_json "$i" "$E2E_TMP/fc.$i.json" && hp check "$E2E_TMP/fc.$i.json" "${specs[@]}"
}

# table_shows I J STATE: the human status of node I has the RTT, LOSS, HEALTH columns and J in STATE.
table_shows() {
	ov_cli "$1" status >"$E2E_TMP/table.$1" 2>&1 || return 1
	cat "$E2E_TMP/table.$1"
	grep -qE '^NODE ID .*LAST HANDSHAKE +RX +TX +RTT +LOSS +HEALTH$' "$E2E_TMP/table.$1" &&
		grep -E "^${OV_ID[$2]} " "$E2E_TMP/table.$1" | grep -qE " $3\$"
}

nft_block() {
	ip netns exec "${OV_NS[$1]}" nft -f - <<-EOF
		table inet zlhealth {
			chain input { type filter hook input priority 0; policy accept; udp dport $OV_PORT drop; }
		}
	EOF
}
nft_unblock() { ip netns exec "${OV_NS[$1]}" nft delete table inet zlhealth; }

# ---------------------------------------------------------------- scenario

ov_hosts 3

step "leader and two workers, probing every ${INTERVAL}s, down after $MISSES misses"
must "init-leader on host 1" ov_init_leader 1 10.200.0.0/16
must "leader daemon up" start_node 1
for i in 2 3; do must "host $i joins" add_node "$i"; done
ov_mesh_check "all pairs ping" 10 1 2 3
T0=$(ov_now)
# shellcheck disable=SC2046
wait_pairs up "$T0" "$UP_BOUND" $(ov_all_pairs 1 2 3)
check "host 1 status --json, field by field (2, 3 up)" fields_check 1 2:up 3:up
check "host 2 status --json, field by field (1, 3 up)" fields_check 2 1:up 3:up
check "host 3 status --json, field by field (1, 2 up)" fields_check 3 1:up 2:up
check "host 1's status table has RTT, LOSS, HEALTH; host 3 up" table_shows 1 3 up
for i in 1 2 3; do
	for j in 1 2 3; do
		[ "$i" = "$j" ] || check "host $i's hook ran for host $j's first verdict (up)" hook_ran "$i" "${OV_IP[$j]}" up 1
	done
done

step "host 3's daemon stops"
ups1=$(hook_count 1 "${OV_IP[3]}" up); ups2=$(hook_count 2 "${OV_IP[3]}" up)
T0=$(ov_now)
must "host 3's daemon stops" ov_stop 3
wait_pairs down "$T0" $((BOUND + SLACK)) 1:3 2:3
for i in 1 2; do
	check "host $i's hook ran: ZL_EVENT=peer ZL_STATE=down ZL_ADDRESS=${OV_IP[3]}" hook_ran "$i" "${OV_IP[3]}" down 1
	check "host $i logged peer.down for host 3" grep -qE "event=peer.down name=${OV_ID[3]} address=${OV_IP[3]} " "$E2E_TMP/n$i.daemon.log"
done
check "host 1 status --json, field by field (2 up, 3 down)" fields_check 1 2:up 3:down
check "host 2 status --json, field by field (1 up, 3 down)" fields_check 2 1:up 3:down
check "host 1's status table shows host 3 down" table_shows 1 3 down

step "host 3's daemon starts again"
T0=$(ov_now)
must "host 3's daemon starts" start_node 3
wait_pairs up "$T0" "$UP_BOUND" 1:3 2:3 3:1 3:2
for i in 1 2; do
	check "host $i's hook ran: ZL_STATE=up for host 3" hook_ran "$i" "${OV_IP[3]}" up $(( i == 1 ? ups1 + 1 : ups2 + 1 ))
	check "host $i logged peer.up for host 3" grep -qE "event=peer.up name=${OV_ID[3]} address=${OV_IP[3]} " "$E2E_TMP/n$i.daemon.log"
done
check "host 3 status --json, field by field (1, 2 up)" fields_check 3 1:up 2:up

step "host 3's WireGuard UDP dropped by nftables"
downs1=$(hook_count 1 "${OV_IP[3]}" down); downs2=$(hook_count 2 "${OV_IP[3]}" down)
ups1=$(hook_count 1 "${OV_IP[3]}" up); ups2=$(hook_count 2 "${OV_IP[3]}" up)
T0=$(ov_now)
must "nft table dropping udp dport $OV_PORT in host 3's namespace" nft_block 3
wait_pairs down "$T0" $((BOUND + SLACK)) 1:3 2:3 3:1 3:2
for i in 1 2; do
	check "host $i's hook ran: ZL_STATE=down for host 3" hook_ran "$i" "${OV_IP[3]}" down $(( i == 1 ? downs1 + 1 : downs2 + 1 ))
done
check "host 1 status --json, field by field (2 up, 3 down)" fields_check 1 2:up 3:down
check "host 3 status --json, field by field (1, 2 down)" fields_check 3 1:down 2:down

step "the nftables table deleted"
T0=$(ov_now)
must "nft table deleted" nft_unblock 3
wait_pairs up "$T0" "$UP_BOUND" 1:3 2:3 3:1 3:2
for i in 1 2; do
	check "host $i's hook ran: ZL_STATE=up for host 3" hook_ran "$i" "${OV_IP[3]}" up $(( i == 1 ? ups1 + 1 : ups2 + 1 ))
done
ov_status_json 1 "$E2E_TMP/loss.json" >/dev/null
loss=$(hp loss "$E2E_TMP/loss.json" "${OV_IP[3]}")
check "host 1 counts the missed probes to host 3 as loss (0 < $loss < 1)" \
	awk -v l="$loss" 'BEGIN { exit !(l > 0 && l < 1) }'
for i in 1 2 3; do
	specs=()
	for j in 1 2 3; do [ "$i" = "$j" ] || specs+=("$j:up"); done
	check "host $i status --json, field by field (all up)" fields_check "$i" "${specs[@]}"
done
check "host 2 never saw host 1 go down (no down event for it)" test "$(hook_count 2 "${OV_IP[1]}" down)" = 0

step "stop everything"
for i in 3 2 1; do check "host $i daemon stops cleanly" ov_stop "$i"; done
e2e_finish
