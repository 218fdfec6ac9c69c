/* The control socket (docs/control-api.md): DIR/run/zl-overlayd.sock, mode 0660, in DIR/run (0750).
 * Frames of a u32 LE length + one JSON object (src/overlay/frame.h); requests at most 1 MiB. Every
 * request gets exactly one response with its id; a frame that cannot be parsed gets an error with id 0
 * and the connection is closed (the stream cannot be resynchronized).
 *
 * Single instance: DIR/run/zl-overlayd.lock is held with flock() for the daemon's lifetime (released by
 * the kernel even after SIGKILL), so a second daemon on the same data dir is refused before it touches
 * anything, and the CLI can tell whether a daemon runs. */
#ifndef OD_CONTROL_SERVER_H
#define OD_CONTROL_SERVER_H
#include <stdint.h>
#include <json-c/json.h>
#include "overlayd/node.h"

#define OD_LOCK_NAME "zl-overlayd.lock"

enum {
	OD_CONTROL_FRAME_MAX = 1 << 20,
	OD_CONTROL_MAX_CONNS = 64,
};

/* Creates DIR/run and takes the lock. -EBUSY (with a message) if another daemon holds it. */
int od_control_lock(struct od_node *n, char *err, size_t errlen);
/* Binds and listens (a stale socket file is replaced). 0 or -errno with a message. */
int od_control_open(struct od_node *n, char *err, size_t errlen);
/* Closes every connection and removes the socket file (the lock goes with the process). */
void od_control_close(struct od_node *n);
/* Sends {"event": ev} (consumed) to every connection that asked to watch (request "watch"). */
void od_control_broadcast_event(struct od_node *n, json_object *ev);
/* Sends resp (consumed) on the connection with that serial, if it is still open. */
void od_control_reply(struct od_node *n, uint64_t conn_serial, json_object *resp);
#endif
