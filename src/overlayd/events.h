/* Health transitions (peer up/down, service up/down): each one is logged, sent to every control
 * connection that asked to watch (od_control_broadcast_event), and given to the --on-change hook.
 *
 * The hook: `/bin/sh -c CMD`, run without waiting (the loop never blocks on it), stdin /dev/null,
 * stdout/stderr to the daemon's stderr, with the event in the environment:
 *   ZL_EVENT=peer|service  ZL_STATE=up|down  ZL_ADDRESS=<overlay or service address>
 *   ZL_NAME=<node id (peer) or service name>  ZL_HOSTNAME=<peer hostname or "">  ZL_PORT=<check port or "">
 *   ZL_REASON=<short text, e.g. "3 probes missed", "probe answered", "connect refused">
 * At most OD_HOOK_MAX_RUNNING hooks run at once (further events are logged as hook.skipped); a hook
 * still running after OD_HOOK_TIMEOUT_MS is killed; exit statuses are logged. Children are reaped from
 * a timer, so no zombies stay behind. Events are also kept in a ring of the last OD_EVENTS_KEEP. */
#ifndef OD_EVENTS_H
#define OD_EVENTS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <json-c/json.h>
#include "overlay/state.h"
#include "overlayd/node.h"

enum {
	OD_HOOK_MAX_RUNNING = 8,
	OD_HOOK_TIMEOUT_MS = 30000,
	OD_EVENTS_KEEP = 64,
	OD_EVENT_REASON_SIZE = 96,
};

enum od_event_kind { OD_EVENT_PEER, OD_EVENT_SERVICE };

struct od_event {
	enum od_event_kind kind;
	bool up;
	char name[ZL_DNS_NAME_SIZE];         /* node id (peer) or service name (relative) */
	char address[ZL_ADDR_STRLEN];
	char hostname[ZL_HOSTNAME_SIZE];     /* peer; "" for services or none */
	uint16_t port;                       /* service check port; 0 for peers */
	char reason[OD_EVENT_REASON_SIZE];
	int64_t time;                        /* Unix seconds */
};

/* Uses n->opts.on_change. 0 or -errno with a message. */
int od_events_open(struct od_node *n, char *err, size_t errlen);
/* Kills nothing: running hooks are left to finish (they are reaped by init). */
void od_events_close(struct od_node *n);
/* Fills time if 0, then logs, broadcasts and runs the hook. */
void od_events_emit(struct od_node *n, const struct od_event *ev);
/* {"kind":"peer","state":"up","name":..,"address":..,"hostname":..,"port":..,"reason":..,"time":..} */
json_object *od_event_json(const struct od_event *ev);
/* The kept events, oldest first, as a JSON array (for `zl-overlay watch` to print recent history). */
json_object *od_events_recent_json(const struct od_node *n);
#endif
