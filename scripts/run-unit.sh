#!/usr/bin/env bash
# Runs each unit-test binary and totals their "N passed, N failed" lines.
set -u
passed=0; failed=0; broken=0
for t in "$@"; do
  out=$("$t" 2>&1); rc=$?
  # A failure shows with its failed checks (and what the test printed about them), so a CI log says why.
  printf '%s\n' "$out" | grep -E '^(FAIL|not ok)|^  ' || true
  line=$(printf '%s\n' "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -1)
  if [ -z "$line" ]; then
    echo "BROKEN: $t exited $rc without a summary"; printf '%s\n' "$out" | tail -20; broken=$((broken+1)); continue
  fi
  p=${line%% passed*}; f=${line#*passed, }; f=${f%% failed*}
  passed=$((passed+p)); failed=$((failed+f))
  [ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && { echo "BROKEN: $t exited $rc"; broken=$((broken+1)); }
  echo "  $(basename "$t"): $line"
done
echo "unit: $passed passed, $((failed+broken)) failed"
[ $((failed+broken)) -eq 0 ]
