#!/usr/bin/env bash
# config: `wg setconf` / `wg addconf` / `wg syncconf` / `wg set` followed by `wg showconf` give back
# what was configured (compared as parsed key sets, so order and formatting do not matter), and every
# `wg show` field reports it. Includes PSKs, fwmark, IPv4/IPv6 endpoints, keepalive, v4+v6 allowed IPs,
# a peer without allowed IPs, and a 300-peer config (long UAPI get/set).
# Usage: IMPL=zl-wg tests/e2e/config.sh
. "$(dirname "$0")/lib.sh"
IMPL=${IMPL:-${IMPL_A:-zl-wg}}
e2e_init config
say "# IMPL=$IMPL"
setup_pair
IF=$(if_name c)
must "start $IMPL as $IF" start_wg "$NS_A" "$IMPL" "$IF"

# Parses a wg config into sorted "section key=value" lines (one line per allowed IP; zero values dropped).
cat >"$E2E_TMP/norm.py" <<'PY'
import sys
out, sect = [], None
for raw in open(sys.argv[1]):
    line = raw.split('#', 1)[0].strip()
    if not line:
        continue
    if line.startswith('['):
        sect = 'I' if line.lower() == '[interface]' else 'P?'
        continue
    k, v = (x.strip() for x in line.split('=', 1))
    k = k.lower()
    if k == 'publickey':
        sect = 'P ' + v
        continue
    if k == 'fwmark':
        v = str(int(v, 0)) if v != 'off' else '0'
    if k in ('fwmark', 'persistentkeepalive', 'listenport') and v in ('0', 'off'):
        continue
    vals = [x.strip() for x in v.split(',')] if k == 'allowedips' else [v]
    out += ['%s %s=%s' % (sect, k, x) for x in vals if x]
print('\n'.join(sorted(out)))
PY
norm() { python3 "$E2E_TMP/norm.py" "$1"; }

# same_conf DESC CONF: showconf of the interface equals CONF as key sets; shows a diff when not.
same_conf() {
	wgx "$NS_A" showconf "$IF" >"$E2E_TMP/shown.conf" 2>&1 || { cat "$E2E_TMP/shown.conf" >"$E2E_TMP/check.out"; e2e_fail "$1 (showconf failed)" "$E2E_TMP/check.out"; return 1; }
	if diff <(norm "$2") <(norm "$E2E_TMP/shown.conf") >"$E2E_TMP/conf.diff"; then e2e_pass "$1"; return 0; fi
	e2e_fail "$1 (< expected, > shown)" "$E2E_TMP/conf.diff"
}

for k in I P1 P2 P3 P4 P5 P6 N; do gen_key "$k"; done
for k in 1 2; do (umask 077; wg genpsk >"$E2E_TMP/psk$k"); done
KEY_I=$(cat "$E2E_TMP/I.key"); KEY_N=$(cat "$E2E_TMP/N.key")
P1=$(pub_of P1); P2=$(pub_of P2); P3=$(pub_of P3); P4=$(pub_of P4); P5=$(pub_of P5); P6=$(pub_of P6)
PSK1=$(cat "$E2E_TMP/psk1"); PSK2=$(cat "$E2E_TMP/psk2")

cat >"$E2E_TMP/c1.conf" <<CONF
[Interface]
PrivateKey = $KEY_I
ListenPort = 51820
FwMark = 0x1234

[Peer]
PublicKey = $P1
PresharedKey = $PSK1
AllowedIPs = 10.9.0.2/32, fd00:9::2/128, 10.10.0.0/16
Endpoint = 192.0.2.2:51821
PersistentKeepalive = 25

[Peer]
PublicKey = $P2
AllowedIPs = 10.9.0.3/32,2001:db8:1::/48
Endpoint = [2001:db8::2]:51822

[Peer]
PublicKey = $P3

[Peer]
PublicKey = $P4
AllowedIPs = 0.0.0.0/0, ::/0
CONF

step "setconf then showconf"
check "wg setconf" wgx "$NS_A" setconf "$IF" "$E2E_TMP/c1.conf"
same_conf "showconf equals the set config" "$E2E_TMP/c1.conf"

step "wg show fields"
check_eq "private-key" "$KEY_I" "$(wgx "$NS_A" show "$IF" private-key)"
check_eq "public-key" "$(pub_of I)" "$(wgx "$NS_A" show "$IF" public-key)"
check_eq "listen-port" 51820 "$(wgx "$NS_A" show "$IF" listen-port)"
check_eq "fwmark" 0x1234 "$(wgx "$NS_A" show "$IF" fwmark)"
check_eq "peers" "$(printf '%s\n' "$P1" "$P2" "$P3" "$P4" | sort)" "$(wgx "$NS_A" show "$IF" peers | sort)"
check_eq "preshared-keys" "$(printf '%s\t%s\n' "$P1" "$PSK1" "$P2" '(none)' "$P3" '(none)' "$P4" '(none)' | sort)" \
	"$(wgx "$NS_A" show "$IF" preshared-keys | sort)"
check_eq "endpoints" "$(printf '%s\t%s\n' "$P1" 192.0.2.2:51821 "$P2" '[2001:db8::2]:51822' "$P3" '(none)' "$P4" '(none)' | sort)" \
	"$(wgx "$NS_A" show "$IF" endpoints | sort)"
check_eq "persistent-keepalive" "$(printf '%s\t%s\n' "$P1" 25 "$P2" off "$P3" off "$P4" off | sort)" \
	"$(wgx "$NS_A" show "$IF" persistent-keepalive | sort)"
check_eq "latest-handshakes all 0" "$(printf '%s\t0\n' "$P1" "$P2" "$P3" "$P4" | sort)" \
	"$(wgx "$NS_A" show "$IF" latest-handshakes | sort)"
# Peers with an endpoint may send handshakes on their own (wireguard-go does); nothing can answer.
check_eq "transfer: nothing received, nothing sent by peers without endpoint" \
	"$(printf '%s\t0\t0\n' "$P3" "$P4" | sort)" \
	"$(wgx "$NS_A" show "$IF" transfer | awk -F'\t' '$2 != 0 {print "rx!"} $1 != "'"$P1"'" && $1 != "'"$P2"'"' | sort)"
check_eq "allowed-ips of P2 (v4 and v6)" "10.9.0.3/32 2001:db8:1::/48" \
	"$(peer_field "$NS_A" "$IF" "$P2" allowed-ips | tr ' ' '\n' | sort | xargs)"
check_eq "allowed-ips of P3" "(none)" "$(peer_field "$NS_A" "$IF" "$P3" allowed-ips)"
check "interfaces lists $IF" eval "wgx $NS_A show interfaces | tr ' ' '\n' | grep -qx $IF"
check "dump: interface line has 4 fields, each peer line 8" eval \
	"wgx $NS_A show $IF dump | awk -F'\t' 'NR==1 && NF!=4 {exit 1} NR>1 && NF!=8 {exit 1} END {exit NR!=5}'"
check_eq "dump: interface line" "$(printf '%s\t%s\t%s\t%s' "$KEY_I" "$(pub_of I)" 51820 0x1234)" \
	"$(wgx "$NS_A" show "$IF" dump | head -1)"
check "pretty output names interface, key, port, peers" eval "out=\$(wgx $NS_A show $IF) &&
	grep -q 'interface: $IF' <<<\"\$out\" && grep -q 'listening port: 51820' <<<\"\$out\" &&
	grep -q 'fwmark: 0x1234' <<<\"\$out\" && [ \$(grep -c '^peer: ' <<<\"\$out\") = 4 ]"

step "syncconf: peers added, removed and changed"
cat >"$E2E_TMP/c2.conf" <<CONF
[Interface]
PrivateKey = $KEY_I
ListenPort = 51830

[Peer]
PublicKey = $P1
AllowedIPs = 10.9.0.2/32, fd00:9::2/128, 10.11.0.0/16
Endpoint = 192.0.2.2:51821

[Peer]
PublicKey = $P2
PresharedKey = $PSK2
AllowedIPs = 10.9.0.3/32
Endpoint = 192.0.2.2:51822
PersistentKeepalive = 7

[Peer]
PublicKey = $P5
AllowedIPs = 10.9.0.5/32, fd00:9::5/128
CONF
check "wg syncconf" wgx "$NS_A" syncconf "$IF" "$E2E_TMP/c2.conf"
# syncconf removes peers missing from the file and replaces allowed IPs, but (as in wireguard-tools)
# leaves a kept peer's fields that the file does not mention: P1 keeps its PSK and keepalive.
sed "/^PublicKey = ${P1//\//\\/}\$/a PresharedKey = $PSK1\nPersistentKeepalive = 25" "$E2E_TMP/c2.conf" >"$E2E_TMP/c2x.conf"
check "expected config built" grep -q "^PresharedKey = $PSK1" "$E2E_TMP/c2x.conf"
same_conf "showconf equals the synced config (+ P1's retained PSK and keepalive)" "$E2E_TMP/c2x.conf"
check_eq "fwmark off after syncconf without FwMark" off "$(wgx "$NS_A" show "$IF" fwmark)"

step "addconf"
cat >"$E2E_TMP/add.conf" <<CONF
[Peer]
PublicKey = $P6
AllowedIPs = 10.9.0.6/32
CONF
cat "$E2E_TMP/c2x.conf" "$E2E_TMP/add.conf" >"$E2E_TMP/c3.conf"
check "wg addconf" wgx "$NS_A" addconf "$IF" "$E2E_TMP/add.conf"
same_conf "showconf equals config + added peer" "$E2E_TMP/c3.conf"

step "wg set"
check "set: P1 allowed-ips replaced, P5 removed, P6 keepalive, new private key, fwmark" \
	wgx "$NS_A" set "$IF" private-key "$(key_file N)" fwmark 77 \
	peer "$P1" allowed-ips 10.12.0.0/24 peer "$P5" remove peer "$P6" persistent-keepalive 9
cat >"$E2E_TMP/c4.conf" <<CONF
[Interface]
PrivateKey = $KEY_N
ListenPort = 51830
FwMark = 77
[Peer]
PublicKey = $P1
PresharedKey = $PSK1
PersistentKeepalive = 25
AllowedIPs = 10.12.0.0/24
Endpoint = 192.0.2.2:51821
[Peer]
PublicKey = $P2
PresharedKey = $PSK2
AllowedIPs = 10.9.0.3/32
Endpoint = 192.0.2.2:51822
PersistentKeepalive = 7
[Peer]
PublicKey = $P6
AllowedIPs = 10.9.0.6/32
PersistentKeepalive = 9
CONF
same_conf "showconf after wg set" "$E2E_TMP/c4.conf"
check_eq "public key follows the new private key" "$(pub_of N)" "$(wgx "$NS_A" show "$IF" public-key)"
check "an allowed IP moves to the peer that claims it" wgx "$NS_A" set "$IF" peer "$P6" allowed-ips 10.9.0.6/32,10.9.0.3/32
check_eq "P2 lost 10.9.0.3/32" "(none)" "$(peer_field "$NS_A" "$IF" "$P2" allowed-ips)"
check "own public key as a peer is ignored" wgx "$NS_A" set "$IF" peer "$(pub_of N)" allowed-ips 10.99.0.0/24
check "own public key is not listed as a peer" eval "! wgx $NS_A show $IF peers | grep -qF '$(pub_of N)'"
check "listen-port 0 picks a port" wgx "$NS_A" set "$IF" listen-port 0
check "the picked port is not 0" test "$(wgx "$NS_A" show "$IF" listen-port)" -gt 0
check "fwmark 0 turns it off" wgx "$NS_A" set "$IF" fwmark 0
check_eq "fwmark off" off "$(wgx "$NS_A" show "$IF" fwmark)"
check "preshared key removed with /dev/null" wgx "$NS_A" set "$IF" peer "$P2" preshared-key /dev/null
check_eq "P2 has no PSK" "(none)" "$(peer_field "$NS_A" "$IF" "$P2" preshared-keys)"

step "300 peers through setconf"
{
	printf '[Interface]\nPrivateKey = %s\nListenPort = 51840\n' "$KEY_I"
	for i in $(seq 300); do
		printf '[Peer]\nPublicKey = %s\nAllowedIPs = 10.%d.%d.0/24, fd00:%x::/64\nEndpoint = 192.0.2.%d:%d\n' \
			"$(wg genkey | wg pubkey)" $((20 + i / 250)) $((i % 250)) "$i" $((i % 200 + 2)) $((40000 + i))
	done
} >"$E2E_TMP/big.conf"
check "wg setconf with 300 peers" wgx "$NS_A" setconf "$IF" "$E2E_TMP/big.conf"
same_conf "showconf equals the 300-peer config" "$E2E_TMP/big.conf"
check_eq "300 peers listed" 300 "$(wgx "$NS_A" show "$IF" peers | wc -l)"

step "empty config"
printf '[Interface]\nListenPort = 51850\n' >"$E2E_TMP/empty.conf"
check "wg setconf with no key and no peers" wgx "$NS_A" setconf "$IF" "$E2E_TMP/empty.conf"
same_conf "showconf shows only the port" "$E2E_TMP/empty.conf"
check_eq "no private key shown" "(none)" "$(wgx "$NS_A" show "$IF" private-key)"
check "daemon alive" daemon_alive "$IF"
e2e_finish
