/* The leader's join endpoint (docs/join-protocol.md): TCP on the WireGuard port number, all addresses
 * (one dual-stack socket, or IPv4 alone where IPv6 is off). One request and one answer per connection:
 *
 *   read the 8-byte header -> zl_join_msg_length (refusal in clear on failure) -> read the rest (at most
 *   4 KiB) -> zl_join_request_open -> token check against st.tokens -> od_node_admit (allocation, token
 *   marked used, ONE atomic save) -> RESPONSE -> close -> push the new list to the members.
 *
 * Every refusal leaves the state untouched. Hostile input: each connection has a 10 s deadline for
 * everything, at most 32 connections are open at once (beyond that a `busy` refusal is sent and the
 * connection closed), the request size is checked from the header before anything is buffered. */
#ifndef OD_JOIN_SERVER_H
#define OD_JOIN_SERVER_H
#include "overlayd/node.h"

enum {
	OD_JOIN_DEADLINE_MS = 10000,
	OD_JOIN_MAX_CONNS = 32,
};

int od_join_server_open(struct od_node *n, char *err, size_t errlen);
void od_join_server_close(struct od_node *n);
#endif
