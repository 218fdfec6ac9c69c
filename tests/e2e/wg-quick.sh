#!/usr/bin/env bash
# wg-quick: `wg-quick up <conf>` inside each namespace with WG_QUICK_USERSPACE_IMPLEMENTATION set to the
# implementation; pings through; `wg-quick down` removes the interface and the daemon exits.
# If this kernel has the wireguard module, wg-quick would prefer it: then (or with E2E_FORCE_SHIM=1)
# wg-quick runs with a PATH shim whose `ip` refuses `type wireguard`, and a copy of wg-quick whose
# fallback does not give up because /sys/module/wireguard exists. Either way the test asserts the
# interface is a TUN device served by the implementation's own process.
# Usage: IMPL_A=zl-wg IMPL_B=wireguard-go tests/e2e/wg-quick.sh
. "$(dirname "$0")/lib.sh"
IMPL_A=${IMPL_A:-zl-wg}; IMPL_B=${IMPL_B:-zl-wg}
e2e_init wg-quick
say "# A=$IMPL_A B=$IMPL_B"
setup_pair
gen_key A; gen_key B
IF_A=$(if_name qa); IF_B=$(if_name qb)
echo "$IF_A" >>"$E2E_TMP/ifnames"; echo "$IF_B" >>"$E2E_TMP/ifnames"

WGQ=$(command -v wg-quick)
if ip -n "$NS_A" link add zwprobe type wireguard 2>/dev/null || [ "${E2E_FORCE_SHIM:-0}" = 1 ]; then
	ip -n "$NS_A" link del zwprobe 2>/dev/null
	say "# kernel wireguard present (or shim forced): wg-quick runs with the userspace shim"
	mkdir -p "$E2E_TMP/shim"
	cat >"$E2E_TMP/shim/ip" <<-SHIM
	#!/bin/bash
	# e2e shim: no kernel wireguard links, so wg-quick falls back to the userspace implementation.
	if [ "\$1 \$2" = "link add" ]; then for a; do [ "\$a" = wireguard ] && { echo "e2e shim: kernel wireguard disabled" >&2; exit 2; }; done; fi
	exec $(command -v ip) "\$@"
	SHIM
	sed 's#\[\[ -e /sys/module/wireguard \]\] || ##' "$WGQ" >"$E2E_TMP/shim/wg-quick"
	chmod 755 "$E2E_TMP/shim/ip" "$E2E_TMP/shim/wg-quick"
	must "shim removed wg-quick's kernel-module check" eval "! grep -q '/sys/module/wireguard ]] ||' $E2E_TMP/shim/wg-quick"
	WGQ=$E2E_TMP/shim/wg-quick; WGQ_PATH="$E2E_TMP/shim:$PATH"
else
	WGQ_PATH=$PATH
fi

# write_conf DIR IFNAME KEYNAME PORT ADDR4 ADDR6 PEERKEY PEER_EP PEER_ALLOWED
write_conf() {
	mkdir -p "$1" && chmod 700 "$1"
	(umask 077; cat >"$1/$2.conf" <<-CONF
	[Interface]
	PrivateKey = $(cat "$E2E_TMP/$3.key")
	ListenPort = $4
	Address = $5, $6
	MTU = 1400

	[Peer]
	PublicKey = $(pub_of "$7")
	Endpoint = $8
	AllowedIPs = $9
	CONF
	)
}
write_conf "$E2E_TMP/qa" "$IF_A" A "$PORT_A" "$TUN_A4/24" "$TUN_A6/64" B "$UL_B4:$PORT_B" "$TUN_B4/32, $TUN_B6/128"
write_conf "$E2E_TMP/qb" "$IF_B" B "$PORT_B" "$TUN_B4/24" "$TUN_B6/64" A "$UL_A4:$PORT_A" "$TUN_A4/32, $TUN_A6/128"
check_eq "config file mode" 600 "$(stat -c %a "$E2E_TMP/qa/$IF_A.conf")"

# wgq NS IMPL up|down CONF
wgq() {
	local impl
	impl=$(resolve_impl "$2") || return 1
	ZL_WG_LOG_FILE="$E2E_TMP/$(basename "$4" .conf).daemon.log" LOG_LEVEL="${E2E_WGGO_LOG_LEVEL:-error}" \
		WG_QUICK_USERSPACE_IMPLEMENTATION="$impl" PATH="$WGQ_PATH" \
		timeout -k 2 30 ip netns exec "$1" "$WGQ" "$3" "$4" </dev/null >>"$E2E_TMP/wg-quick.log" 2>&1
}

step "wg-quick up on both sides"
must "wg-quick up $IF_A in A ($IMPL_A)" wgq "$NS_A" "$IMPL_A" up "$E2E_TMP/qa/$IF_A.conf"
must "A's interface served by $IMPL_A's process (TUN, socket owner)" register_daemon "$NS_A" "$IF_A" "$(resolve_impl "$IMPL_A")"
must "wg-quick up $IF_B in B ($IMPL_B)" wgq "$NS_B" "$IMPL_B" up "$E2E_TMP/qb/$IF_B.conf"
must "B's interface served by $IMPL_B's process (TUN, socket owner)" register_daemon "$NS_B" "$IF_B" "$(resolve_impl "$IMPL_B")"
check "A's interface has 10.9.0.1/24 and fd00:9::1/64" eval \
	"ip -n $NS_A addr show dev $IF_A | grep -q 'inet $TUN_A4/24' && ip -n $NS_A addr show dev $IF_A | grep -q 'inet6 $TUN_A6/64'"
check "A's interface is up with MTU 1400" eval "ip -n $NS_A link show dev $IF_A | grep -q 'mtu 1400.*UP\|UP.*mtu 1400'"
check_eq "A's listen port from the config" "$PORT_A" "$(wgx "$NS_A" show "$IF_A" listen-port)"
check_eq "A's peer from the config" "$(pub_of B)" "$(wgx "$NS_A" show "$IF_A" peers)"
check_eq "A's public key from the config" "$(pub_of A)" "$(wgx "$NS_A" show "$IF_A" public-key)"

step "traffic"
check "A pings B (IPv4 inside)" ping_ok "$NS_A" "$TUN_B4" 5
check "B pings A (IPv6 inside)" ping_ok "$NS_B" "$TUN_A6" 3
check "20 pings of 1372 bytes (IP = MTU), none lost" nsx "$NS_A" ping -n -q -c 20 -i 0.02 -W 2 -s 1372 -M do "$TUN_B4"
check "handshake recorded" handshake_done "$NS_A" "$IF_A" "$(pub_of B)"

step "wg-quick down"
check "wg-quick down $IF_A" wgq "$NS_A" "$IMPL_A" down "$E2E_TMP/qa/$IF_A.conf"
check "A's interface is gone" eval "! ip -n $NS_A link show dev $IF_A"
check "A's daemon exited" wait_until 5 daemon_gone "$IF_A"
check "A's socket is gone" wait_until 3 test ! -e "$E2E_WG_SOCK_DIR/$IF_A.sock"
check "B no longer reaches A" ping_fails "$NS_B" "$TUN_A4"
check "wg-quick down $IF_B" wgq "$NS_B" "$IMPL_B" down "$E2E_TMP/qb/$IF_B.conf"
check "B's daemon exited, interface and socket gone" eval \
	"wait_until 5 daemon_gone $IF_B && ! ip -n $NS_B link show dev $IF_B && wait_until 3 test ! -e $E2E_WG_SOCK_DIR/$IF_B.sock"
e2e_finish
