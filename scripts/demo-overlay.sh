#!/usr/bin/env bash
# Overlay demo: three network namespaces as hosts on one virtual switch; `zl-overlay init-leader` on the
# first, `zl-overlay join` on the two others, zl-overlayd on each; then `zl-overlay status` everywhere,
# a ping from every node to every other node over the encrypted overlay, DNS names (a service
# registered on two hosts, answered by a third), and `wg show`. Everything
# lives in namespaces created here and is removed on exit (also on Ctrl-C or failure).
. "$(dirname "$0")/../tests/e2e-overlay/lib-overlay.sh"

# on I cmd...: shows the command as typed on host I, runs it there, indents its output.
on() {
	local i=$1; shift
	printf '  [host%s]$ %s\n' "$i" "$*" | sed -E 's/(zlj1\.[A-Za-z0-9_-]{12})[A-Za-z0-9_-]+/\1…/g'
	ip netns exec "${OV_NS[$i]}" "$@" 2>&1 | sed 's/^/    /'
	return "${PIPESTATUS[0]}"
}
# zo I ARGS...: zl-overlay on host I with its data dir, shown.
zo() { local i=$1; shift; on "$i" "$OV_CLI" --data-dir "${OV_DIR[$i]}" "$@"; }
short() { sed "s|$E2E_ROOT/||g; s|$E2E_TMP/|\$DEMO/|g"; }
# dig3 NAME: what host3's DNS server answers for NAME (addresses, one a line).
dig3() { ip netns exec "${OV_NS[3]}" dig @127.0.0.1 -p 15353 +short +tries=1 +time=2 "$1" 2>/dev/null; }

ov_init demo-overlay
[ -x "$OV_DAEMON" ] || { say "demo: $OV_DAEMON not found (run make)"; exit 1; }
say "# data dirs under $E2E_TMP (\$DEMO below)"

step "1. Three hosts: namespaces on a virtual switch (underlay 192.0.2.0/24)"
ov_hosts 3 >/dev/null
for i in 1 2 3; do say "  host$i: namespace ${OV_NS[$i]}, eth0 ${OV_UL[$i]}, interface ${OV_IF[$i]}, data dir \$DEMO/n$i"; done

step "2. host1 becomes the leader of 10.200.0.0/16"
zo 1 init-leader --cidr 10.200.0.0/16 --endpoint "${OV_UL[1]}:$OV_PORT" --hostname host1 --interface "${OV_IF[1]}" |
	short || exit 1
must "host1 state written" ov_learn 1

step "3. Start zl-overlayd on host1 (it answers joins on TCP $OV_PORT)"
must "zl-overlayd on host1" ov_start 1
say "  zl-overlayd pid $(ov_pid 1); log: \$DEMO/n1.daemon.log"

step "4. host2 and host3 join with tokens from 'zl-overlay token create', then start their daemons"
for i in 2 3; do
	tok=$(ov_token 1) || { say "token create failed"; exit 1; }
	say "  [host1]\$ zl-overlay token create  ->  ${tok:0:17}… (${#tok} characters)"
	zo "$i" join --token "$tok" --hostname "host$i" --interface "${OV_IF[$i]}" | short || exit 1
	must "host$i state written" ov_learn "$i"
	must "zl-overlayd on host$i" ov_start "$i"
done
must "every node reaches every other within 10 s" ov_mesh 10 1 2 3

step "5. zl-overlay status on each host (RTT, loss and health from the probes)"
sleep 2.5   # one probe round (every 2 s), so every peer has an RTT and a verdict
for i in 1 2 3; do zo "$i" status | short; echo; done

step "6. Every node pings every other node over the overlay"
for s in 1 2 3; do
	for d in 1 2 3; do
		[ "$s" = "$d" ] && continue
		if ip netns exec "${OV_NS[$s]}" ping -n -q -c 2 -i 0.2 -W 2 "${OV_IP[$d]}" >"$E2E_TMP/ping.out" 2>&1; then
			e2e_pass "host$s -> host$d (${OV_IP[$d]}): $(grep -o 'rtt.*' "$E2E_TMP/ping.out")"
		else
			e2e_fail "host$s -> host$d (${OV_IP[$d]})" "$E2E_TMP/ping.out"
		fi
	done
done

step "7. Names: every node answers the overlay zone (dig @127.0.0.1 -p 15353)"
for name in host2 leader; do
	say "  [host3]\$ dig +short $name.overlay.local  ->  $(dig3 "$name.overlay.local" | tr '\n' ' ')"
done
zo 1 dns add web "${OV_IP[2]}" | short
zo 2 dns add web "${OV_IP[3]}" | short
for try in 1 2 3 4 5 6 7 8 9 10; do
	[ "$(dig3 web.overlay.local | wc -l)" = 2 ] && break
	sleep 0.5
done
web=$(dig3 web.overlay.local | sort | tr '\n' ' ')
say "  [host3]\$ dig +short web.overlay.local  ->  $web"
check "web (registered on host1 and host2) answered by host3 with both addresses" \
	test "$web" = "$(printf '%s\n' "${OV_IP[2]}" "${OV_IP[3]}" | sort | tr '\n' ' ')"

step "8. wg show on host1 (the embedded WireGuard answers the standard tool)"
on 1 wg show "${OV_IF[1]}"

step "9. Clean up: SIGTERM the daemons (interfaces and routes go with them), delete the namespaces"
for i in 3 2 1; do check "host$i: zl-overlayd stopped, interface and sockets gone" ov_stop "$i"; done
e2e_finish
