#!/usr/bin/env bash
# bad-tokens: every kind of bad join token is refused with a clear error and a non-zero exit, no state
# file (or temporary file) appears on the worker, and the leader's state (members, allocations, token
# records) does not change. Tokens: garbage, empty, truncated, one typo, another format version, a
# wrong secret and another leader's key (both with a valid checksum, so the leader has to refuse them),
# expired (--ttl 1s), revoked by id and by the token itself, reused (a second join with a used token),
# and one that points at a closed port. Finally a join refused locally (node already initialized)
# does not spend the token: it still works on a fresh host.
. "$(dirname "$0")/lib-overlay.sh"
ov_init bad-tokens
ov_need_daemon
ov_hosts 3

no_state() {
	local d=${OV_DIR[$1]}
	[ ! -e "$d/state.json" ] || { say "$d/state.json exists"; return 1; }
	! ls "$d"/.state.json.tmp-* >/dev/null 2>&1 || { say "temporary state files left in $d"; return 1; }
}

# refused "desc" REGEX TOKEN: host 2's join fails naming the problem; nothing changes anywhere.
refused() {
	local desc=$1 re=$2 tok=$3
	ovpy view "$(ov_state 1)" tokens >"$E2E_TMP/before.json"
	expect_fail "$desc" "$re" 2 join --token "$tok" --hostname "${OV_HN[2]}" --interface "${OV_IF[2]}"
	check "   ... no state written on host 2" no_state 2
	ovpy view "$(ov_state 1)" tokens >"$E2E_TMP/after.json"
	check "   ... the leader's members, allocations and token records are unchanged" cmp "$E2E_TMP/before.json" "$E2E_TMP/after.json"
	check "   ... the leader's daemon is still running" ov_alive 1
}

step "a leader"
must "init-leader on host 1" ov_init_leader 1 10.200.0.0/16
must "leader daemon up" ov_start 1
GOOD=$(ov_token 1)
must "a valid token to derive bad ones from" test -n "$GOOD"

step "malformed tokens (refused before anything is sent)"
refused "garbage token" 'token.*malformed' "hello-world"
refused "empty token" 'token' ""
refused "truncated token" 'token.*malformed' "$(ovpy token-mutate "$GOOD" truncate)"
refused "one character changed (checksum)" 'token.*malformed' "$(ovpy token-mutate "$GOOD" typo)"
refused "unknown token version zlj2." 'unsupported version' "zlj2.${GOOD#zlj1.}"

step "well-formed tokens the leader must refuse"
refused "wrong secret (valid checksum)" 'token: invalid|invalid token' "$(ovpy token-mutate "$GOOD" secret)"
refused "another leader's key (valid checksum)" 'could not read|unreadable|authentic' "$(ovpy token-mutate "$GOOD" key)"
refused "the leader's endpoint is a closed port" "refused|connect|reach" "$(ovpy token-mutate "$GOOD" endpoint "${OV_UL[1]}:9")"

step "expired token (--ttl 1s)"
EXP=$(ov_token 1 --ttl 1s)
must "token create --ttl 1s" test -n "$EXP"
sleep 2.1
refused "expired token" 'expired' "$EXP"

step "revoked tokens"
REV1=$(ov_token 1); REV1_ID=$(ovpy token-id "$REV1")
check "token revoke $REV1_ID (by id)" ov_cli 1 token revoke "$REV1_ID"
check "token list --json shows it revoked" eval "ov_cli 1 token list --json | python3 -c '
import json,sys; t=[x for x in json.load(sys.stdin)[\"tokens\"] if x[\"id\"] == \"$REV1_ID\"]; sys.exit(not (t and t[0][\"revoked\"] is True))'"
refused "token revoked by id" 'revoked' "$REV1"
REV2=$(ov_token 1)
check "token revoke TOKEN (by the token itself)" ov_cli 1 token revoke "$REV2"
refused "token revoked by its text" 'revoked' "$REV2"

step "reused token"
ONCE=$(ov_token 1)
must "host 3 joins with it" ov_join 3 "$ONCE"
refused "the same token again (host 2)" 'already used|used' "$ONCE"

step "a join refused locally does not spend the token"
SPARE=$(ov_token 1)
expect_fail "join on an initialized node (host 3)" 'already initialized' 3 join --token "$SPARE"
check "the leader still has that token unused" eval "ov_cli 1 token list --json | python3 -c '
import json,sys; t=[x for x in json.load(sys.stdin)[\"tokens\"] if x[\"id\"] == \"$(ovpy token-id "$SPARE")\"]; sys.exit(not (t and t[0][\"uses\"] == 0))'"
must "host 2 joins with it" ov_join 2 "$SPARE"
must "host 2's daemon" ov_start 2
must "host 3's daemon" ov_start 3
ov_mesh_check "the three nodes ping each other" 10 1 2 3

step "stop everything"
for i in 3 2 1; do check "host $i daemon stops cleanly" ov_stop "$i"; done
e2e_finish
