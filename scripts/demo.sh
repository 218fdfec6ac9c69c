#!/usr/bin/env bash
# Two-host tunnel demo: two network namespaces joined by a veth "wire", zl-wg on both ends configured
# with `wg`, then `wg show`, pings over IPv4 and IPv6 through the tunnel and a 3-second iperf3 run.
# Everything lives in namespaces created here and is removed on exit (also on Ctrl-C or failure).
# DEMO_IMPL=wireguard-go scripts/demo.sh runs the same demo with another implementation.
. "$(dirname "$0")/../tests/e2e/lib.sh"
IMPL=${DEMO_IMPL:-zl-wg}

# on NS cmd...: shows the command as run on that "host"
on() { local ns=$1 host; shift; host=${ns##*-}; printf '  [%s]$ %s\n' "$host" "$*"; ip netns exec "$ns" "$@" 2>&1 | sed 's/^/    /'; return "${PIPESTATUS[0]}"; }

e2e_init demo
IMPL_PATH=$(resolve_impl "$IMPL")
[ -x "$IMPL_PATH" ] || { say "demo: $IMPL_PATH not found (run make)"; exit 1; }

step "1. Two hosts: namespaces host1 and host2 on a veth wire (192.0.2.0/24, 2001:db8::/64)"
H1=$(ns_name host1); H2=$(ns_name host2)
must "create $H1 and $H2" eval "ns_create $H1 && ns_create $H2 && veth_pair $H1 eth0 $H2 eth0 &&
	ns_addr $H1 eth0 192.0.2.1/24 && ns_addr $H1 eth0 2001:db8::1/64 &&
	ns_addr $H2 eth0 192.0.2.2/24 && ns_addr $H2 eth0 2001:db8::2/64"

step "2. Keys (wg genkey | wg pubkey)"
gen_key host1; gen_key host2
say "  host1 public key: $(pub_of host1)"
say "  host2 public key: $(pub_of host2)"

step "3. Start $(basename "$IMPL_PATH") on both hosts (it creates the TUN interface and daemonizes)"
IF1=$(if_name h1); IF2=$(if_name h2)
must "start on host1 as $IF1" start_wg "$H1" "$IMPL" "$IF1"
must "start on host2 as $IF2" start_wg "$H2" "$IMPL" "$IF2"
say "  daemons: pid $(wg_pid "$IF1") ($IF1), pid $(wg_pid "$IF2") ($IF2); UAPI sockets in $E2E_WG_SOCK_DIR"

step "4. Configure with wg set, address the tunnel (10.9.0.0/24, fd00:9::/64), bring it up"
on "$H1" wg set "$IF1" listen-port 51820 private-key "$(key_file host1)" \
	peer "$(pub_of host2)" allowed-ips 10.9.0.2/32,fd00:9::2/128 endpoint 192.0.2.2:51821 || exit 1
on "$H2" wg set "$IF2" listen-port 51821 private-key "$(key_file host2)" \
	peer "$(pub_of host1)" allowed-ips 10.9.0.1/32,fd00:9::1/128 endpoint 192.0.2.1:51820 || exit 1
must "tunnel addresses and link up" eval "tunnel_up $H1 $IF1 10.9.0.1/24 fd00:9::1/64 &&
	tunnel_up $H2 $IF2 10.9.0.2/24 fd00:9::2/64"

step "5. Ping through the tunnel, IPv4 then IPv6 (the first packet triggers the handshake)"
on "$H1" ping -c 3 -i 0.3 -W 2 10.9.0.2; check "IPv4 ping host1 -> host2 through the tunnel" test $? = 0
on "$H2" ping -c 3 -i 0.3 -W 2 fd00:9::1; check "IPv6 ping host2 -> host1 through the tunnel" test $? = 0

step "6. wg show on both hosts"
on "$H1" wg show "$IF1"
on "$H2" wg show "$IF2"

step "7. iperf3 for 3 seconds through the tunnel (host1 -> host2)"
bg "$H2" iperf3 iperf3 -s -1 -B 10.9.0.2 >/dev/null
wait_until 5 eval "ip netns exec $H2 ss -tln | grep -q '10.9.0.2:5201 '"
on "$H1" timeout 20 iperf3 -c 10.9.0.2 -t 3 -f m; check "iperf3 through the tunnel" test $? = 0

step "8. Transfer counters after the demo"
on "$H1" wg show "$IF1" transfer

step "9. Clean up: stop the daemons (SIGTERM), delete the namespaces"
check "host1 daemon stops, interface and socket gone" stop_wg "$H1" "$IF1"
check "host2 daemon stops, interface and socket gone" stop_wg "$H2" "$IF2"
e2e_finish
