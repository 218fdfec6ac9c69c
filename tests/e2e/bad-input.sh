#!/usr/bin/env bash
# bad-input: the implementation under test (A) must survive garbage and keep its state:
#  - malformed UAPI set requests get a negative errno and leave the configuration unchanged;
#    truncated, oversized, binary and unknown-operation requests do not kill it;
#  - random and truncated UDP datagrams (every message type, wrong sizes, junk) at its port over
#    IPv4 and IPv6 are dropped: it stays alive, nothing is credited to the real peer, traffic flows;
#  - invalid interface names are refused (exit status != 0, a message on stderr, nothing created).
# Usage: IMPL_A=zl-wg IMPL_B=wireguard-go tests/e2e/bad-input.sh   (A is the one under test)
. "$(dirname "$0")/lib.sh"
IMPL_A=${IMPL_A:-zl-wg}; IMPL_B=${IMPL_B:-zl-wg}
e2e_init bad-input
say "# A=$IMPL_A (under test) B=$IMPL_B"
setup_pair
tunnel_pair "$IMPL_A" "$IMPL_B" 4 both
must "tunnel up" ping_ok "$NS_A" "$TUN_B4" 5
b64hex() { base64 -d <<<"$1" | od -An -tx1 -v | tr -d ' \n'; }
HEX_B=$(b64hex "$PUB_B")
wgx "$NS_A" showconf "$IF_A" >"$E2E_TMP/before.conf"
state_intact() { wgx "$NS_A" showconf "$IF_A" | diff "$E2E_TMP/before.conf" -; }

step "malformed UAPI set requests: negative errno, configuration unchanged"
# bad_set DESC REQUEST-BODY (without "set=1\n" and the final empty line)
bad_set() {
	local reply
	reply=$(uapi "$IF_A" "set=1\n$2\n\n" 2>&1)
	check "$1 -> negative errno (got: $(tr '\n' ' ' <<<"$reply"))" grep -qE '^errno=-[0-9]+$' <<<"$reply"
	check "$1: configuration unchanged" state_intact
}
reply=$(uapi "$IF_A" 'set=1\nlisten_port=abc\n\n')
check_eq "listen_port=abc -> errno=-22" "errno=-22" "$reply"
check "listen_port=abc: configuration unchanged" state_intact
bad_set "line without '='" "bogus"
bad_set "unknown key" "no_such_key=1"
bad_set "private_key=zz" "private_key=zz"
bad_set "private_key of 63 hex digits" "private_key=$(printf '%063d' 0)"
bad_set "private_key in base64" "private_key=$(cat "$E2E_TMP/A.key")"
bad_set "listen_port=70000" "listen_port=70000"
bad_set "listen_port=-1" "listen_port=-1"
bad_set "fwmark=x" "fwmark=x"
bad_set "replace_peers=maybe" "replace_peers=maybe"
bad_set "public_key not hex" "public_key=$(printf 'g%.0s' {1..64})"
bad_set "peer endpoint garbage" "public_key=$HEX_B\nendpoint=nonsense"
bad_set "peer endpoint without port" "public_key=$HEX_B\nendpoint=192.0.2.9"
bad_set "peer allowed_ip 10.9.0.300/32" "public_key=$HEX_B\nallowed_ip=10.9.0.300/32"
bad_set "peer allowed_ip /33" "public_key=$HEX_B\nallowed_ip=10.9.0.2/33"
bad_set "peer allowed_ip /129" "public_key=$HEX_B\nallowed_ip=fd00:9::2/129"
bad_set "peer persistent_keepalive_interval=70000" "public_key=$HEX_B\npersistent_keepalive_interval=70000"
bad_set "peer protocol_version=2" "public_key=$HEX_B\nprotocol_version=2"
bad_set "peer preshared_key=zz" "public_key=$HEX_B\npreshared_key=zz"
bad_set "peer key before any public_key" "endpoint=192.0.2.9:1"

step "truncated, oversized and junk UAPI requests: the daemon survives"
# (An unterminated last line may still be applied, as wireguard-go does: these are invalid anyway.)
uapi "$IF_A" 'set=1\nlisten_po' >/dev/null 2>&1
uapi "$IF_A" "set=1\npublic_key=${HEX_B:0:30}" >/dev/null 2>&1
uapi "$IF_A" 'get=1' >/dev/null 2>&1
uapi "$IF_A" 'bogus=1\n\n' >/dev/null 2>&1
uapi "$IF_A" '' >/dev/null 2>&1
head -c 200000 /dev/urandom | timeout 5 socat -t 1 - "UNIX-CONNECT:$E2E_WG_SOCK_DIR/$IF_A.sock" >/dev/null 2>&1
{ printf 'set=1\nlisten_port='; head -c 100000 /dev/zero | tr '\0' 1; printf '\n\n'; } |
	timeout 5 socat -t 1 - "UNIX-CONNECT:$E2E_WG_SOCK_DIR/$IF_A.sock" >/dev/null 2>&1
for i in $(seq 20); do timeout 2 socat -u /dev/null "UNIX-CONNECT:$E2E_WG_SOCK_DIR/$IF_A.sock" 2>/dev/null & done; wait
check "daemon alive" daemon_alive "$IF_A"
check "configuration unchanged" state_intact
check "two requests on one connection both answered" eval \
	"[ \"\$(uapi $IF_A 'get=1\n\nget=1\n\n' | grep -c '^errno=0\$')\" = 2 ]"
check "a valid set still works (errno=0)" eval "[ \"\$(uapi $IF_A 'set=1\npublic_key=$HEX_B\npersistent_keepalive_interval=0\n\n')\" = errno=0 ]"
check "tunnel still passes traffic" ping_ok "$NS_A" "$TUN_B4" 3

step "random and truncated UDP datagrams at the daemon's port"
cat >"$E2E_TMP/junk.py" <<'PY'
import os, random, socket, sys
host, port, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rnd = random.Random(seed)
fam = socket.AF_INET6 if ':' in host else socket.AF_INET
s = socket.socket(fam, socket.SOCK_DGRAM)
def msg(t, n, zero_reserved=True):
    if n == 0:
        return b''
    body = bytes(rnd.getrandbits(8) for _ in range(max(n - 4, 0)))
    head = bytes([t, 0, 0, 0]) if zero_reserved else bytes([t, 1, 2, 3])
    return (head + body)[:n]
sent = 0
def send(b):
    global sent
    s.sendto(b, (host, port)); sent += 1
# exact and off-by-one sizes of every message type, truncated handshakes
for t in (1, 2, 3, 4):
    for n in (0, 1, 4, 31, 32, 33, 63, 64, 65, 91, 92, 93, 147, 148, 149, 200):
        send(msg(t, n)); send(msg(t, n, zero_reserved=False))
# right type and size, garbage content (MACs and indices wrong)
for _ in range(200):
    send(msg(1, 148)); send(msg(2, 92)); send(msg(3, 64)); send(msg(4, 32 + 16 * rnd.randrange(0, 90)))
# unknown types and pure noise of random sizes
for t in (0, 5, 255):
    send(msg(t, 148))
for _ in range(2000):
    send(os.urandom(rnd.randrange(0, 1500)))
send(os.urandom(60000))
print(sent)
PY
RX_B0=$(transfer "$NS_A" "$IF_A" "$PUB_B" | cut -d' ' -f1)
check "junk over IPv4 from B's namespace" nsx "$NS_B" python3 "$E2E_TMP/junk.py" "$UL_A4" "$PORT_A" 1
check "junk over IPv6 from B's namespace" nsx "$NS_B" python3 "$E2E_TMP/junk.py" "$UL_A6" "$PORT_A" 2
sleep 0.5
check "daemon alive after junk" daemon_alive "$IF_A"
check_eq "nothing credited to the real peer (rx bytes for B)" "$RX_B0" "$(transfer "$NS_A" "$IF_A" "$PUB_B" | cut -d' ' -f1)"
check "tunnel still passes traffic (A -> B)" ping_ok "$NS_A" "$TUN_B4" 3
check "tunnel still passes traffic (B -> A, IPv6 inside)" ping_ok "$NS_B" "$TUN_A6" 3
check "100 pings after the junk, none lost" nsx "$NS_A" ping -n -q -c 100 -i 0.01 -W 2 "$TUN_B4"
check "configuration unchanged" state_intact

step "invalid interface names are refused"
NS_N=$(ns_name n)
must "namespace for name tests" ns_create "$NS_N"
IMPL_A_PATH=$(resolve_impl "$IMPL_A")
LONG="zw${E2E_ID}xxxxxxxxxxxxxxxx"; LONG=${LONG:0:16}
NAMES=("" "$LONG" "zw$E2E_ID/b" "zw$E2E_ID b" "..")
ERR_OUT=name.err
if [ "$(basename "$IMPL_A_PATH")" = wireguard-go ]; then
	NAMES=("${NAMES[@]:1}"); ERR_OUT=name.out
	say "   (wireguard-go accepts '' and lets the kernel pick a name, and logs errors on stdout: not held against it)"
fi
# Anything a wrongly accepting implementation started in NS_N is recorded for cleanup.
adopt_strays() {
	local line pid sock
	ip netns exec "$NS_N" ss -xlpn 2>/dev/null | grep -F "$E2E_WG_SOCK_DIR/" | while read -r line; do
		sock=$(grep -o "$E2E_WG_SOCK_DIR/[^ ]*\.sock" <<<"$line"); sock=${sock#"$E2E_WG_SOCK_DIR/"}
		grep -qxF "${sock%.sock}" "$E2E_TMP/ifnames" && continue   # adopted earlier
		pid=$(grep -o 'pid=[0-9]*' <<<"$line" | head -1 | cut -d= -f2)
		echo "${sock%.sock}" >>"$E2E_TMP/ifnames"
		[ -n "$pid" ] && echo "$pid $(basename "$IMPL_A_PATH")" >>"$E2E_TMP/pids"
		echo "stray: $line"
	done
}
for name in "${NAMES[@]}"; do
	links0=$(ip -n "$NS_N" -o link show | wc -l)
	timeout -k 2 10 ip netns exec "$NS_N" "$IMPL_A_PATH" "$name" >"$E2E_TMP/name.out" 2>"$E2E_TMP/name.err" </dev/null
	rc=$?
	strays=$(adopt_strays)
	check "name '$name': exit status != 0 (got $rc)" test "$rc" -ne 0 -a "$rc" -ne 124
	check "name '$name': stderr says what is wrong (got: $(grep -av '[│┌└]' "$E2E_TMP/$ERR_OUT" | head -2 | cut -c1-160 | tr '\n' ' '))" \
		grep -qiE 'name|interface|invalid|long' "$E2E_TMP/$ERR_OUT"
	check "name '$name': no interface and no socket created" eval \
		"[ -z '$strays' ] && [ \$(ip -n $NS_N -o link show | wc -l) = $links0 ] && [ ! -e '$E2E_WG_SOCK_DIR/$name.sock' ]"
done
check "daemon A alive at the end" daemon_alive "$IF_A"
e2e_finish
