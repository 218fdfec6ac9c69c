#!/usr/bin/env bash
# mesh10-v6: the IPv6 overlay fd00:200::/48 on ten hosts (IPv4 underlay). Nine workers join one after the
# other; after each join the new node and every earlier node reach each other within 5 s. Then all 90
# ordered pairs ping6 (in parallel per host), every node's status --json lists the nine others with
# handshakes and traffic, and `wg show` lists nine peers on every interface.
. "$(dirname "$0")/lib-overlay.sh"
ov_init mesh10-v6
ov_need_daemon
N=${OV_MESH_N:-10}
CIDR=fd00:200::/48
ov_hosts "$N"

step "leader on host 1 with $CIDR"
must "init-leader --cidr $CIDR" ov_init_leader 1 "$CIDR"
check "the leader's address is inside $CIDR" python3 -c "import ipaddress,sys; sys.exit(ipaddress.ip_address('${OV_IP[1]}') not in ipaddress.ip_network('$CIDR'))"
must "leader daemon up" ov_start 1
check "interface has ${OV_IP[1]}/48" eval "ip -n ${OV_NS[1]} -o -6 addr show dev ${OV_IF[1]} | grep -qF ' ${OV_IP[1]}/48 '"

step "hosts 2..$N join one by one"
members=(1)
for i in $(seq 2 "$N"); do
	must "host $i joins and starts its daemon" ov_add_node 1 "$i"
	ov_join_check "host $i <-> ${#members[@]} earlier node(s) within ${OV_CONVERGE_S}s of its join" "$i" "${members[@]}"
	members+=("$i")
done
check "$N distinct IPv6 overlay addresses in $CIDR" python3 -c "
import ipaddress,sys; a=[ipaddress.ip_address(x) for x in '${OV_IP[*]}'.split()]
sys.exit(len(set(a)) != $N or any(x not in ipaddress.ip_network('$CIDR') for x in a))"

step "all pairs ping6 (parallel per host)"
ov_mesh_check "all $((N * (N - 1))) ordered pairs ping over IPv6" 15 "${members[@]}"

step "status --json and wg show on every node"
for i in "${members[@]}"; do
	check "host $i status --json: itself and the $((N - 1)) others, live" ov_status_check "$i" 1 "${members[@]}"
	check "host $i wg show: $((N - 1)) peers" ov_wg_check "$i" "${members[@]}"
done

step "stop every daemon (SIGTERM)"
for i in "${members[@]}"; do check "host $i daemon stops cleanly" ov_stop "$i"; done
e2e_finish
