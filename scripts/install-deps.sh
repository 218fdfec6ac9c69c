#!/usr/bin/env bash
# Installs the Debian packages that the build, the unit tests and the end-to-end tests need.
# Quiet and idempotent when everything is present. As root: apt-get installs what is missing.
# Not root and something missing: prints what is missing and exits 1.
set -euo pipefail

PACKAGES=(
	build-essential clang libclang-rt-14-dev pkg-config
	libsodium-dev libssl-dev libb2-dev libmnl-dev libjson-c-dev
	wireguard-tools wireguard-go
	iproute2 iputils-ping iperf3 netcat-openbsd socat
	python3 procps kmod coreutils
	dnsutils knot-dnsutils nsd dnsperf
	prometheus nftables curl
)

# --list prints the package names (one line) for callers that install them themselves (.ci/run).
if [ "${1:-}" = --list ]; then echo "${PACKAGES[*]}"; exit 0; fi

missing=()
for p in "${PACKAGES[@]}"; do
	status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
	[ "$status" = installed ] || missing+=("$p")
done
[ "${#missing[@]}" -eq 0 ] && exit 0

if [ "$(id -u)" != 0 ]; then
	echo "install-deps: missing Debian packages: ${missing[*]}" >&2
	echo "install-deps: run as root, or: apt-get install ${missing[*]}" >&2
	exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# nsd and prometheus are only used as tools (bench, promtool): keep their services from starting.
scripts/no-service-starts.sh apt-get install -y -qq --no-install-recommends "${missing[@]}"
