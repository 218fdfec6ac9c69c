#!/usr/bin/env bash
# two-daemons: two independent overlays on one machine, each daemon in its own namespace with its own
# data dir and interface name (the UAPI socket path is machine-wide). Cluster A = leader host 1 + worker
# host 2, cluster B = leader host 3 + worker host 4, with the same CIDR and port: each interface has
# its own UAPI socket and daemon, `wg show` and status see only their own cluster, pings work in both,
# and stopping A leaves B untouched. A second daemon on a data dir already in use is refused, and so is
# one asking for an interface name whose UAPI socket is live in another namespace (it must not take
# the socket over).
. "$(dirname "$0")/lib-overlay.sh"
ov_init two-daemons
ov_need_daemon
ov_hosts 4

# sock_pid NS IFNAME: pid listening on the interface's UAPI socket, seen from that namespace.
sock_pid() { sock_owner_pid "$1" "$2"; }

step "cluster A (hosts 1, 2) and cluster B (hosts 3, 4): same CIDR, same port"
must "init-leader A on host 1" ov_init_leader 1 10.200.0.0/16
must "init-leader B on host 3" ov_init_leader 3 10.200.0.0/16
must "leader A daemon" ov_start 1
must "leader B daemon" ov_start 3
must "host 2 joins A" ov_add_node 1 2
must "host 4 joins B" ov_add_node 3 4

step "one daemon, one data dir, one interface and one UAPI socket each"
check "the two leaders are different processes" test "$(ov_pid 1)" != "$(ov_pid 3)"
check "A's UAPI socket belongs to A's daemon" test "$(sock_pid "${OV_NS[1]}" "${OV_IF[1]}")" = "$(ov_pid 1)"
check "B's UAPI socket belongs to B's daemon" test "$(sock_pid "${OV_NS[3]}" "${OV_IF[3]}")" = "$(ov_pid 3)"
check "each interface exists only in its own namespace" eval "ov_link_exists 1 && ov_link_exists 3 &&
	! ip -n ${OV_NS[1]} link show dev ${OV_IF[3]} >/dev/null 2>&1 && ! ip -n ${OV_NS[3]} link show dev ${OV_IF[1]} >/dev/null 2>&1"
check "wg show on A's leader: only host 2" ov_wg_check 1 1 2
check "wg show on B's leader: only host 4" ov_wg_check 3 3 4
ov_mesh_check "A's nodes ping each other" 10 1 2
ov_mesh_check "B's nodes ping each other" 10 3 4
check "A's leader status: only host 2" ov_status_check 1 1 1 2
check "B's leader status: only host 4" ov_status_check 3 1 3 4

step "a second daemon on A's data dir (from another namespace) is refused"
must "host 5 (spare namespace)" ov_host 5
OV_DIR[5]=${OV_DIR[1]}
check "start is refused" eval "! ov_start 5"
check "... naming the reason" grep -qiE 'start_failed.*(another zl-overlayd|running|lock)' "$E2E_TMP/n5.daemon.log"
say "   . $(grep -m1 start_failed "$E2E_TMP/n5.daemon.log" | cut -c1-200)"
check "... and A's leader still answers" ov_status_check 1 1 1 2

step "a daemon asking for B's interface name (live UAPI socket) is refused and takes nothing over"
must "host 6 (spare namespace)" ov_host 6
OV_IF[6]=${OV_IF[3]}
must "init-leader on host 6 with B's interface name" ov_init_leader 6 10.201.0.0/16
check "start is refused" eval "! ov_start 6"
check "... naming the reason" grep -qiE 'start_failed.*(in use|exists|busy|another)' "$E2E_TMP/n6.daemon.log"
say "   . $(grep -m1 start_failed "$E2E_TMP/n6.daemon.log" | cut -c1-200)"
check "B's UAPI socket still belongs to B's daemon" test "$(sock_pid "${OV_NS[3]}" "${OV_IF[3]}")" = "$(ov_pid 3)"
check "wg show ${OV_IF[3]} from host 3 still shows B's leader key" test \
	"$(ip netns exec "${OV_NS[3]}" wg show "${OV_IF[3]}" public-key)" = "${OV_KEY[3]}"
ov_mesh_check "B's nodes still ping each other" 5 3 4

step "stopping cluster A leaves B untouched"
check "host 2 daemon stops cleanly" ov_stop 2
check "leader A stops cleanly" ov_stop 1
check "B's UAPI socket is still there" test -S "$E2E_WG_SOCK_DIR/${OV_IF[3]}.sock"
check "wg show on B's leader still works" ov_wg_check 3 3 4
ov_mesh_check "B's nodes still ping each other" 5 3 4
for i in 4 3; do check "host $i daemon stops cleanly" ov_stop "$i"; done
e2e_finish
