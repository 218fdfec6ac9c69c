#!/usr/bin/env bash
# Runs every end-to-end scenario (each in its own network namespaces) over the implementation matrix
# and prints the total as "N passed, N failed". Exits non-zero on any failure.
#   E2E_ZL   implementation under test (default zl-wg = build/bin/zl-wg); E2E_ZL=wireguard-go validates
#            the harness itself with wireguard-go everywhere
#   E2E_REF  reference implementation for the interop runs (default wireguard-go)
#   E2E_ONLY space-separated scenario names to run (default: all)
#   E2E_SCENARIO_TIMEOUT seconds per scenario run (default 300)
# Every other variable in the environment (e.g. ZL_WG_OFFLOAD=0) passes through to the daemons.
set -u
cd "$(dirname "$0")/../.." || exit 1
HERE=tests/e2e
ZL=${E2E_ZL:-zl-wg}
REF=${E2E_REF:-wireguard-go}
[ "$(id -u)" = 0 ] || { echo "e2e: must run as root (network namespaces)"; exit 1; }

missing=
for c in ip wg wg-quick socat python3 ping timeout ss sha256sum; do command -v "$c" >/dev/null || missing="$missing $c"; done
command -v "$REF" >/dev/null || [ -x "$REF" ] || missing="$missing $REF"
[ "$ZL" = zl-wg ] && [ ! -x build/bin/zl-wg ] && missing="$missing build/bin/zl-wg(run make)"
[ -z "$missing" ] || { echo "e2e: missing:$missing"; echo "0 passed, 1 failed"; exit 1; }

export E2E_RUN_ID=$$
E2E_LEDGER=$(mktemp /tmp/zle2e.ledger.XXXXXX); export E2E_LEDGER
LOGDIR=$(mktemp -d /tmp/zle2e.logs.XXXXXX)
trap 'rm -f "$E2E_LEDGER"; rm -rf "$LOGDIR"' EXIT

# scenario | environment (the implementation on each side is a parameter of every scenario)
MATRIX=(
	"basic|IMPL_A=$ZL IMPL_B=$ZL"
	"basic|IMPL_A=$ZL IMPL_B=$REF"
	"basic|IMPL_A=$REF IMPL_B=$ZL"
	"tcp|IMPL_A=$ZL IMPL_B=$ZL"
	"tcp|IMPL_A=$ZL IMPL_B=$REF"
	"tcp|IMPL_A=$REF IMPL_B=$ZL FAMILY=6"
	"counters|IMPL_A=$ZL IMPL_B=$ZL"
	"counters|IMPL_A=$ZL IMPL_B=$REF"
	"counters|IMPL_A=$REF IMPL_B=$ZL"
	"roaming|IMPL_A=$ZL IMPL_B=$ZL"
	"roaming|IMPL_A=$ZL IMPL_B=$REF"
	"roaming|IMPL_A=$REF IMPL_B=$ZL"
	"wg-quick|IMPL_A=$ZL IMPL_B=$ZL"
	"wg-quick|IMPL_A=$ZL IMPL_B=$REF"
	"restart|IMPL_A=$ZL IMPL_B=$ZL"
	"restart|IMPL_A=$ZL IMPL_B=$REF"
	"removed-peer|IMPL_A=$ZL IMPL_B=$ZL IMPL_C=$REF"
	"config|IMPL=$ZL"
	"lifecycle|IMPL=$ZL"
	"bad-input|IMPL_A=$ZL IMPL_B=$REF"
)

total_p=0; total_f=0; n=0; results=()
for entry in "${MATRIX[@]}"; do
	name=${entry%%|*}; vars=${entry#*|}
	if [ -n "${E2E_ONLY:-}" ] && ! grep -qw -- "$name" <<<"$E2E_ONLY"; then continue; fi
	n=$((n + 1)); log="$LOGDIR/$n-$name.log"
	echo; echo "######## $name ($vars)"
	t0=$SECONDS
	# shellcheck disable=SC2086
	env $vars timeout -k 20 "${E2E_SCENARIO_TIMEOUT:-300}" "$HERE/$name.sh" 2>&1 | tee "$log"
	rc=${PIPESTATUS[0]}
	line=$(grep -aE '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -1)
	if [ -z "$line" ]; then
		p=0; f=1; echo "BROKEN: $name exited $rc without a summary"
	else
		p=${line%% passed*}; f=${line#*passed, }; f=${f%% failed*}
		[ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && { f=1; echo "BROKEN: $name exited $rc"; }
	fi
	total_p=$((total_p + p)); total_f=$((total_f + f))
	results+=("$(printf '%-13s %-52s %4d passed, %d failed  (%ds)' "$name" "$vars" "$p" "$f" $((SECONDS - t0)))")
done

# Final sweep: nothing recorded by any scenario of this run may remain.
leftover=
while read -r kind a b; do
	case $kind in
	ns) [ -e "/run/netns/$a" ] && leftover="$leftover ns:$a" ;;
	if) [ -e "/var/run/wireguard/$a.sock" ] && leftover="$leftover sock:$a" ;;
	pid) if [ -r "/proc/$a/cmdline" ] && ! grep -q '^State:.*Z' "/proc/$a/status" 2>/dev/null &&
		tr '\0' ' ' <"/proc/$a/cmdline" | grep -qF -- "$b"; then leftover="$leftover pid:$a"; fi ;;
	esac
done <"$E2E_LEDGER"
for ns in $(ip netns list | awk '{print $1}' | grep "^zle2e-$E2E_RUN_ID-"); do leftover="$leftover ns:$ns"; done
echo
echo "######## summary"
printf '%s\n' "${results[@]}"
if [ -z "$leftover" ]; then
	echo "ok   - no namespace, process or socket of this run is left"; total_p=$((total_p + 1))
else
	echo "FAIL - left behind:$leftover"; total_f=$((total_f + 1))
fi
[ "$n" -gt 0 ] || { echo "FAIL - no scenario matched E2E_ONLY=${E2E_ONLY:-}"; total_f=$((total_f + 1)); }
echo "e2e: $total_p passed, $total_f failed"
echo "$total_p passed, $total_f failed"
[ "$total_f" -eq 0 ]
