#!/usr/bin/env bash
# Runs every overlay end-to-end scenario (zl-overlay + zl-overlayd, each scenario in its own network
# namespaces) and prints the total as "N passed, N failed" alone on the last line. Exits non-zero on any
# failure.
#   E2E_ONLY             space-separated scenario names to run (default: all)
#   E2E_SKIP             space-separated scenario names to leave out
#   E2E_SCENARIO_TIMEOUT seconds per scenario (default 300; sigkill-state gets twice that)
#   OV_SEED, OV_ROUNDS   sigkill-state's random sequence and length; OV_CONVERGE_S the join bound (5 s)
#   E2E_VERBOSE=1        more detail
set -u
cd "$(dirname "$0")/../.." || exit 1
HERE=tests/e2e-overlay
[ "$(id -u)" = 0 ] || { echo "e2e-overlay: must run as root (network namespaces)"; echo "0 passed, 1 failed"; exit 1; }

missing=
for c in ip wg python3 ping timeout ss awk; do command -v "$c" >/dev/null || missing="$missing $c"; done
for b in zl-overlay zl-overlayd; do [ -x "build/bin/$b" ] || missing="$missing build/bin/$b(run make)"; done
[ -z "$missing" ] || { echo "e2e-overlay: missing:$missing"; echo "0 passed, 1 failed"; exit 1; }

export E2E_RUN_ID=$$
E2E_LEDGER=$(mktemp /tmp/zlov.ledger.XXXXXX); export E2E_LEDGER
LOGDIR=$(mktemp -d /tmp/zlov.logs.XXXXXX)
trap 'rm -f "$E2E_LEDGER"; rm -rf "$LOGDIR"' EXIT

SCENARIOS=(mesh3 dns mesh10-v6 churn leader-down worker-restart bad-tokens two-daemons sigkill-state bad-input restart-races metrics services health)

total_p=0; total_f=0; n=0; results=()
for name in "${SCENARIOS[@]}"; do
	if [ -n "${E2E_ONLY:-}" ] && ! grep -qw -- "$name" <<<"$E2E_ONLY"; then continue; fi
	if [ -n "${E2E_SKIP:-}" ] && grep -qw -- "$name" <<<"$E2E_SKIP"; then continue; fi
	n=$((n + 1)); log="$LOGDIR/$n-$name.log"
	limit=${E2E_SCENARIO_TIMEOUT:-300}
	[ "$name" = sigkill-state ] && limit=$((limit * 2))
	echo; echo "######## $name"
	t0=$SECONDS
	timeout -k 20 "$limit" "$HERE/$name.sh" 2>&1 | tee "$log"
	rc=${PIPESTATUS[0]}
	line=$(grep -aE '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -1)
	if [ -z "$line" ]; then
		p=0; f=1; echo "BROKEN: $name exited $rc without a summary (timeout ${limit}s?)"
	else
		p=${line%% passed*}; f=${line#*passed, }; f=${f%% failed*}
		[ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && { f=1; echo "BROKEN: $name exited $rc"; }
	fi
	total_p=$((total_p + p)); total_f=$((total_f + f))
	results+=("$(printf '%-15s %4d passed, %d failed  (%ds)' "$name" "$p" "$f" $((SECONDS - t0)))")
done

# Final sweep: nothing recorded by any scenario of this run may remain (namespaces, UAPI sockets of
# our interface names, recorded pids), and no namespace with this run's prefix.
leftover=
while read -r kind a b; do
	case $kind in
	ns) [ -e "/run/netns/$a" ] && leftover="$leftover ns:$a" ;;
	if) [ -e "/var/run/wireguard/$a.sock" ] && leftover="$leftover sock:$a" ;;
	pid) if [ -r "/proc/$a/cmdline" ] && ! grep -q '^State:.*Z' "/proc/$a/status" 2>/dev/null &&
		tr '\0' ' ' <"/proc/$a/cmdline" 2>/dev/null | grep -qF -- "$b"; then leftover="$leftover pid:$a"; fi ;;
	esac
done <"$E2E_LEDGER"
for ns in $(ip netns list | awk '{print $1}' | grep "^zlov-$E2E_RUN_ID-"); do leftover="$leftover ns:$ns"; done
echo
echo "######## summary"
printf '%s\n' "${results[@]}"
if [ -z "$leftover" ]; then
	echo "ok   - no namespace, process or socket of this run is left"; total_p=$((total_p + 1))
else
	echo "FAIL - left behind:$leftover"; total_f=$((total_f + 1))
fi
[ "$n" -gt 0 ] || { echo "FAIL - no scenario matched E2E_ONLY=${E2E_ONLY:-}"; total_f=$((total_f + 1)); }
echo "$total_p passed, $total_f failed"
[ "$total_f" -eq 0 ]
