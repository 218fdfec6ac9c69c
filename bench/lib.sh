#!/usr/bin/env bash
# What the benchmark scripts (bench/run.sh, bench/dns.sh) share: the namespace helpers of the e2e suite,
# the figure table, ratio/verdict formatting, and a lifecycle whose EXIT trap (also on INT/TERM) stops
# every process started, deletes every namespace and the temp dir. Source it; a benchmark always exits 0
# and reads "n/a" for what it could not measure.

# shellcheck source-path=SCRIPTDIR source=../tests/e2e/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../tests/e2e/lib.sh"

declare -A R   # figure name -> value ("n/a" when not measured)

note() { printf '# %s\n' "$*" >&2; }
fig()  { R[$1]=$2; note "$1 = $2"; }
val()  { printf '%s' "${R[$1]:-n/a}"; }
is_num() { [[ $1 =~ ^[0-9]+(\.[0-9]+)?$ ]]; }

# ratio A B: A / B to 3 significant places, or n/a.
ratio() {
	is_num "$1" && is_num "$2" && awk -v a="$1" -v b="$2" 'BEGIN { exit !(b > 0) }' || { printf 'n/a'; return; }
	awk -v a="$1" -v b="$2" 'BEGIN { r = a / b; printf (r >= 10 ? "%.1f" : r >= 1 ? "%.2f" : "%.3f"), r }'
}

# verdict VALUE OP LIMIT: PASS / MISS / n/a.
verdict() {
	is_num "$1" || { printf 'n/a'; return; }
	awk -v v="$1" -v op="$2" -v l="$3" 'BEGIN { ok = op == ">=" ? v >= l : v <= l; printf ok ? "PASS" : "MISS" }'
}

# bench_begin NAME: a private temp dir (E2E_TMP) and the cleanup trap. Returns 1 (with a note) when not
# root, since namespaces need it.
bench_begin() {
	BENCH_NAME=$1
	[ "$(id -u)" = 0 ] || { note "$BENCH_NAME: must run as root (network namespaces)"; return 1; }
	lifecycle_begin "zlb$BENCH_NAME" bench_end
}

bench_end() {
	local rc=$?
	trap - EXIT INT TERM
	exec 1>&7 2>&8
	e2e_cleanup
	e2e_leftovers >&2 || note "$BENCH_NAME: cleanup left something behind (see above)"
	if [ "${BENCH_KEEP:-0}" = 1 ]; then note "kept $E2E_TMP"; else rm -rf "$E2E_TMP"; fi
	[ "$rc" -ge 128 ] && exit "$rc"
	exit 0
}
