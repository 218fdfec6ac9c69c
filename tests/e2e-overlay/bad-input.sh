#!/usr/bin/env bash
# bad-input: every CLI command with bad arguments (unknown commands and flags, missing values, bad CIDR,
# port, endpoint, hostname, interface, TTL, extra arguments, commands without a daemon, leader-only and
# worker-only commands on the wrong node, unknown nodes and token ids) exits non-zero with a message
# naming the problem and writes no state; zl-overlayd refuses bad arguments and bad state files (missing,
# truncated, unknown field, newer version) and leaves nothing behind; raw malformed frames on the
# control socket (bad lengths, invalid JSON, bad envelopes, unknown types, missing and mistyped
# arguments, pipelining, idle and half-sent clients) get a structured error or a closed connection,
# and the daemon stays up with its state unchanged.
. "$(dirname "$0")/lib-overlay.sh"
ov_init bad-input
ov_hosts 2
D1=${OV_DIR[1]}

no_state_1() { [ ! -e "$D1/state.json" ]; }
raw_cli() { timeout -k 2 "$OV_CMD_TIMEOUT" ip netns exec "${OV_NS[1]}" "$OV_CLI" "$@"; }

step "CLI: parsing (host 1, not initialized)"
check "--help exits 0 and shows usage" eval "raw_cli --help | grep -qi usage"
check "--version exits 0" raw_cli --version
expect_fail "no command" 'missing command|usage' 1
expect_fail "unknown command" "unknown command 'frobnicate'" 1 frobnicate
expect_fail "unknown option" "unknown option '--bogus'" 1 status --bogus
expect_fail "option given twice" 'given twice' 1 init-leader --cidr 10.200.0.0/16 --cidr 10.201.0.0/16
expect_fail "option of another command" "--token.*(not valid|needs a command)" 1 init-leader --token x
expect_fail_run "--data-dir '' alone" 'data-dir.*empty' raw_cli --data-dir "" status
expect_fail_run "--data-dir too long for the control socket" 'data-dir.*too long' raw_cli --data-dir "/tmp/$(printf 'd%.0s' $(seq 120))" status
expect_fail "--timeout not a number" '--timeout' 1 status --timeout abc

step "CLI: init-leader with bad values"
expect_fail "--cidr without a value" '--cidr needs a value' 1 init-leader --cidr
expect_fail "--cidr banana" "--cidr 'banana'" 1 init-leader --cidr banana
expect_fail "--cidr /33" "--cidr '10.200.0.0/33'" 1 init-leader --cidr 10.200.0.0/33
expect_fail "--cidr 300.1.2.0/24" "--cidr '300.1.2.0/24'" 1 init-leader --cidr 300.1.2.0/24
expect_fail "--cidr with host bits" "--cidr '10.200.0.1/16'.*host bits" 1 init-leader --cidr 10.200.0.1/16
expect_fail "--cidr too small for slices" '--cidr.*too small' 1 init-leader --cidr 10.200.0.0/30
expect_fail "--cidr IPv6 with a zone" "--cidr" 1 init-leader --cidr fd00::%eth0/64
expect_fail "--port 0" "--port '0'" 1 init-leader --port 0
expect_fail "--port 65536" "--port '65536'" 1 init-leader --port 65536
expect_fail "--port abc" "--port 'abc'" 1 init-leader --port abc
expect_fail "--port -1" "--port '-1'|unknown option '-1'" 1 init-leader --port -1
expect_fail "--endpoint with a space" "--endpoint 'no pe:51820'" 1 init-leader --endpoint "no pe:51820"
expect_fail "--endpoint 300.1.1.1 (all-digit last label)" "--endpoint '300.1.1.1:51820'" 1 init-leader --endpoint 300.1.1.1:51820
expect_fail "--endpoint port 0" "--endpoint '192.0.2.1:0'" 1 init-leader --endpoint 192.0.2.1:0
expect_fail "--endpoint IPv6 without brackets" "--endpoint" 1 init-leader --endpoint 2001:db8::1:51820
expect_fail "--hostname with an underscore" 'hostname' 1 init-leader --endpoint 192.0.2.1:51820 --hostname bad_name
expect_fail "--hostname of 64 characters" 'hostname' 1 init-leader --endpoint 192.0.2.1:51820 --hostname "$(printf 'a%.0s' $(seq 64))"
expect_fail "--hostname starting with '-'" 'hostname' 1 init-leader --endpoint 192.0.2.1:51820 --hostname -lead
expect_fail "--interface of 16 bytes" 'interface' 1 init-leader --endpoint 192.0.2.1:51820 --interface abcdefghijklmnop
expect_fail "--interface with '/'" 'interface' 1 init-leader --endpoint 192.0.2.1:51820 --interface a/b
expect_fail "--ttl 0" "--ttl '0'" 1 init-leader --endpoint 192.0.2.1:51820 --ttl 0
expect_fail "--ttl 400d (over 365 days)" "--ttl '400d'" 1 init-leader --endpoint 192.0.2.1:51820 --ttl 400d
expect_fail "--ttl 5x" "--ttl '5x'" 1 init-leader --endpoint 192.0.2.1:51820 --ttl 5x
expect_fail "--slice-prefix 40 on IPv4" 'slice-prefix' 1 init-leader --endpoint 192.0.2.1:51820 --slice-prefix 40
expect_fail "init-leader with an extra argument" "unexpected argument 'extra'" 1 init-leader extra
check "none of that wrote a state file" no_state_1

step "CLI: join, token, remove-peer, leave with bad values"
expect_fail "join without --token" 'missing --token' 1 join
expect_fail "join --token without a value" '--token needs a value' 1 join --token
expect_fail "join --port 0" "--port '0'" 1 join --token x --port 0
expect_fail "join --hostname bad_name" 'hostname' 1 join --token x --hostname bad_name
expect_fail "join --endpoint 'a_b:1'" "--endpoint 'a_b:1'" 1 join --token x --endpoint a_b:1
expect_fail "join with a garbage token" 'token: malformed' 1 join --token garbage
expect_fail "token without a subcommand" 'missing token command' 1 token
expect_fail "token frobnicate" "unknown token command 'frobnicate'" 1 token frobnicate
expect_fail "token create --ttl 0s" "--ttl '0s'" 1 token create --ttl 0s
expect_fail "token create when not initialized" 'not initialized|init-leader' 1 token create
expect_fail "token revoke without an id" 'missing argument' 1 token revoke
expect_fail "token revoke not-hex" 'neither a token id' 1 token revoke not-hex
expect_fail "token revoke with two ids" 'unexpected argument' 1 token revoke 0123456789abcdef 0123456789abcdef
expect_fail "remove-peer without a node" 'missing argument' 1 remove-peer
expect_fail "remove-peer with two nodes" 'unexpected argument' 1 remove-peer a b
expect_fail "remove-peer 'has space'" 'not a node id' 1 remove-peer "has space"
expect_fail "leave with an argument" "unexpected argument 'now'" 1 leave now
expect_fail "status without a daemon" 'not running' 1 status
expect_fail "status --json without a daemon" 'not running' 1 status --json
expect_fail "peers without a daemon" 'not running' 1 peers
expect_fail "leave without a daemon" 'not running' 1 leave
expect_fail "remove-peer without a daemon" 'not running' 1 remove-peer host2
check "none of that wrote a state file" no_state_1

ov_need_daemon
step "zl-overlayd: bad arguments and bad state files (nothing may be left behind)"
# daemon_fails "desc" REGEX ARGS...: exits non-zero within 10 s, message matches, no interface/socket.
daemon_fails() {
	local desc=$1 re=$2; shift 2
	expect_fail_run "$desc" "$re" timeout -k 2 10 ip netns exec "${OV_NS[1]}" "$OV_DAEMON" "$@"
	check "   ... no interface ${OV_IF[1]} and no UAPI socket left" eval \
		"! ov_link_exists 1 && [ ! -e $E2E_WG_SOCK_DIR/${OV_IF[1]}.sock ]"
}
daemon_fails "unknown argument" "unknown argument '--bogus'" --bogus
daemon_fails "--data-dir without a value" 'needs a value' --data-dir
daemon_fails "--data-dir ''" 'empty' --data-dir ""
daemon_fails "a data dir without state.json" 'state' --data-dir "$E2E_TMP/empty" --interface "${OV_IF[1]}"
must "init-leader on host 1" ov_init_leader 1 10.200.0.0/16
daemon_fails "--interface with '/'" 'interface' --data-dir "$D1" --interface a/b
bad_state() {   # bad_state NAME PYTHON-EXPR-ON-TEXT: a copy of host 1's data dir with a broken state.json
	mkdir -p "$E2E_TMP/$1" && chmod 700 "$E2E_TMP/$1" &&
		python3 -c "import sys; t=open(sys.argv[1]).read(); open(sys.argv[2],'w').write($2)" \
			"$D1/state.json" "$E2E_TMP/$1/state.json" && chmod 600 "$E2E_TMP/$1/state.json"
}
bad_state truncated 't[:len(t)//2]'
daemon_fails "truncated state.json" 'state' --data-dir "$E2E_TMP/truncated" --interface "${OV_IF[1]}"
bad_state unknown-field 't.replace("\"version\": 1", "\"version\": 1, \"colour\": \"blue\"", 1)'
daemon_fails "state.json with an unknown field" 'state.*colour' --data-dir "$E2E_TMP/unknown-field" --interface "${OV_IF[1]}"
bad_state newer 't.replace("\"version\": 1", "\"version\": 2", 1)'
daemon_fails "state.json of a newer version" 'state.*version' --data-dir "$E2E_TMP/newer" --interface "${OV_IF[1]}"

step "CLI with the daemons running (leader host 1, worker host 2)"
must "leader daemon up" ov_start 1
must "host 2 joins" ov_add_node 1 2
expect_fail "init-leader on an initialized node" 'already initialized' 1 init-leader --endpoint 192.0.2.1:51820
expect_fail "join on the leader" 'already initialized' 1 join --token "$(ov_token 1)"
expect_fail "remove-peer of an unknown node" "no member 'nosuch'|unknown|not a member" 1 remove-peer nosuch
expect_fail "remove-peer of the leader itself" 'leader|itself|no member' 1 remove-peer "${OV_ID[1]}"
expect_fail "leave on the leader" 'only a worker|leader' 1 leave
expect_fail "token revoke of an unknown id" 'no token' 1 token revoke 0123456789abcdef
expect_fail "token create --ttl 366d" "--ttl '366d'" 1 token create --ttl 366d
expect_fail "token create on a worker" 'leader' 2 token create
expect_fail "token list on a worker" 'leader' 2 token list
expect_fail "remove-peer on a worker" 'leader' 2 remove-peer "${OV_ID[1]}"
check "status still works on both" eval "ov_cli 1 status >/dev/null && ov_cli 2 status >/dev/null"

step "raw frames on the leader's control socket"
ovpy view "$(ov_state 1)" tokens >"$E2E_TMP/before.json"
for c in $(ovpy cases) pipelined error-then-ok short-body partial-stays many-conns; do
	case $c in worker-*) continue ;; esac
	check "frame $c" ovpy ctl "$(ov_sock 1)" "$c" && dbg "$(cat "$E2E_TMP/check.out")"
	ov_alive 1 || { e2e_fail "the leader's daemon died after frame $c"; break; }
done
check "the leader's daemon is still up and answers status" ov_status_check 1 0 1 2
ovpy view "$(ov_state 1)" tokens >"$E2E_TMP/after.json"
check "the leader's state is unchanged" cmp "$E2E_TMP/before.json" "$E2E_TMP/after.json"

step "raw frames on the worker's control socket"
for c in $(ovpy cases); do
	case $c in worker-*) check "frame $c" ovpy ctl "$(ov_sock 2)" "$c" ;; esac
done
for c in bad-json huge-length unknown-type; do check "frame $c" ovpy ctl "$(ov_sock 2)" "$c"; done
check "the worker's daemon is still up" ov_alive 2
ov_mesh_check "leader and worker still ping each other" 5 1 2

step "stop everything"
for i in 2 1; do check "host $i daemon stops cleanly" ov_stop "$i"; done
e2e_finish
