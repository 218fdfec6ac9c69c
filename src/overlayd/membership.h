/* The membership channel (docs/control-api.md, "Membership channel"): TCP over the tunnel, framed like
 * the control socket (src/overlay/frame.h).
 *
 * Leader (od_member_server_*): listens on its overlay address, port listen_port + 1, bound to the
 * overlay interface (SO_BINDTODEVICE) so only packets that came out of the tunnel reach it, and accepts
 * a connection only from the overlay address of a current member (WireGuard authenticated that source:
 * a peer's allowed IPs are its own slice). On connect, and after every change, it sends each member the
 * complete list {"type":"peers","epoch":E,"peers":[...],"dns":[...]} (the leader first, the receiver
 * included; "dns" is every service record, registry.h). A worker's {"type":"dns_add","ref":R,
 * "record":{...}} or {"type":"dns_remove","ref":R,"name":..,"addr":..} is carried out by the registry
 * (the record's owner is the sending member) and answered {"type":"dns_result","ref":R,"ok":true,...}
 * or {...,"ok":false,"error":..}, after the new list was pushed.
 * A worker's {"type":"leave"} removes it (address and slice freed, saved, everyone told) and is answered
 * {"type":"left"}; a member removed by remove-peer is sent {"type":"removed"} before its connection is
 * closed. Hostile input: frames capped at 64 KiB, one connection per member, unknown sources closed at
 * once, a bounded number of connections.
 *
 * Worker (od_member_client_*): keeps one connection to leader_ip:leader_port+1 (the leader is the first
 * peer of the state; its port is the one in its endpoint, else this node's own), re-dialling with the
 * control client's backoff (100 ms doubling to 1 s) and a 5 s connect timeout; TCP keepalive notices a
 * dead or restarted leader within about 10 s. Lists are applied with od_node_set_peers, service records
 * with od_registry_apply (a frame without "dns" leaves them as they are). With the leader away nothing
 * changes: the last lists stay in force, and registry changes fail at once ("leader not reachable"). While the connection is down the worker also asks
 * the leader over the underlay whether it is still a member (member_check.h): a node removed while it
 * was away retires on "not a member", as on "removed". */
#ifndef OD_MEMBERSHIP_H
#define OD_MEMBERSHIP_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "overlayd/node.h"

enum {
	OD_MEMBER_FRAME_MAX = 64 << 10,       /* what the leader accepts from a worker */
	OD_MEMBER_CONNECT_TIMEOUT_MS = 5000,
	OD_MEMBER_LEAVE_TIMEOUT_MS = 10000,
	OD_MEMBER_MAX_FORWARDS = 16,          /* registry changes a worker has waiting for the leader */
	OD_MEMBER_FORWARD_TIMEOUT_MS = 10000,
};

/* ---- Leader ---- */
int od_member_server_open(struct od_node *n, char *err, size_t errlen);
void od_member_server_close(struct od_node *n);
/* Sends the current list to every connected member (call after each change). */
void od_member_server_push(struct od_node *n);
/* After od_node_remove_member: tells the member it was removed ({"type":"removed"}), closes its
 * connection, and removes its WireGuard peer once that is done (at most 3 s later), or at once when it
 * is not connected. */
void od_member_server_evict(struct od_node *n, const char *node_id, const uint8_t key[ZL_KEY_LEN]);
size_t od_member_server_connected(const struct od_node *n);

/* ---- Worker ---- */
int od_member_client_open(struct od_node *n, char *err, size_t errlen);
void od_member_client_close(struct od_node *n);
bool od_member_client_connected(const struct od_node *n);
/* Starts a leave on behalf of control connection conn_serial / request id; the answer goes back with
 * od_control_reply when the leader confirms, or as an error on timeout (10 s). The leave is pending
 * until confirmed: it is (re)sent on every (re)established connection, so a leave issued while the
 * connection is down or stale (a restarted leader) still goes through. 0, or -errno with a message
 * (a leave already running). */
int od_member_client_leave(struct od_node *n, uint64_t conn_serial, uint64_t request_id, char *err, size_t errlen);
/* Forwards a registry change to the leader on behalf of control connection conn_serial / request id:
 * msg (consumed) is {"type":"dns_add","record":{...}} or {"type":"dns_remove","name":..,"addr":..}; a
 * "ref" is added, and the leader's {"type":"dns_result","ref":R,"ok":..} answers it. The control client
 * then gets, through od_control_reply, the leader's fields (as the leader answers its own clients) or
 * "<type>: <error>"; or an error after 10 s without an answer, or at once when the connection is lost
 * meanwhile (the outcome is then unknown). 0, or -errno with a message and msg released: -ENOTCONN
 * "leader not reachable" when the connection is not up (nothing is queued for later: the client
 * retries), -EBUSY with OD_MEMBER_MAX_FORWARDS already waiting. */
int od_member_client_forward(struct od_node *n, json_object *msg, uint64_t conn_serial, uint64_t request_id,
			     char *err, size_t errlen);
#endif
