/* The running node: its state (DIR/state.json, the truth), the WireGuard engine configured from it, and
 * on the leader the address and slice allocators. Every other module of the daemon (control socket,
 * join server, membership) works through this struct, on the engine's loop thread only, so nothing
 * needs a lock.
 *
 * Persistence: every change of membership or tokens is written with one atomic zl_state_save BEFORE it
 * is acted on or answered; when the write fails the change is undone in memory and the caller reports
 * an error, so memory, file and answers never disagree. The allocators are live objects; st's
 * ip_allocator / slice_allocator arrays always hold the snapshot of the last successful save, which is
 * what an undo rebuilds them from.
 *
 * Device: od_node_sync_device makes the WireGuard peers match st.peers (add, update, remove), touching
 * only what changed, so live sessions and roamed endpoints survive unrelated changes. A peer's allowed
 * IPs are its slice (plus its address if outside it), else its address as /32 or /128; keepalive 25 s
 * unless the state says otherwise. */
#ifndef OD_NODE_H
#define OD_NODE_H
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <json-c/json.h>
#include "overlay/cidr.h"
#include "overlay/ipam.h"
#include "overlay/join_proto.h"
#include "overlay/slices.h"
#include "overlay/state.h"
#include "overlay/token.h"
#include "overlayd/options.h"
#include "overlayd/timer.h"
#include "wg/io/engine.h"

#define OD_DEFAULT_DATA_DIR "/var/lib/zl-overlay"
#define OD_DEFAULT_IFNAME "zl-overlay0"
#define OD_RUN_SUBDIR "run"
#define OD_SOCKET_NAME "zl-overlayd.sock"

enum {
	OD_PATH_MAX = 512,
	OD_DATA_DIR_MAX = 200,           /* the control socket path has its own, tighter limit (sun_path) */
	OD_DEFAULT_WG_PORT = 51820,      /* a worker's WireGuard port when it advertises no endpoint */
	OD_KEEPALIVE = 25,
	OD_SLICE_PREFIX_V4 = 28,
	OD_SLICE_PREFIX_V6 = 64,
	OD_MTU = 1420,
};

struct od_join_server;
struct od_member_server;
struct od_member_client;
struct od_control;
struct od_dns;
struct od_prober;
struct od_events;
struct od_svc_checks;
struct od_metrics;

struct od_node {
	char data_dir[OD_DATA_DIR_MAX + 1];
	char state_path[OD_PATH_MAX];
	char run_dir[OD_PATH_MAX];
	char ifname[ZL_IFNAME_SIZE];

	struct zl_state st;
	struct zl_prefix cluster;
	struct zl_ip node_ip;

	struct wg_engine *engine;
	struct wg_device *dev;
	struct wg_loop *loop;
	struct od_timers timers;
	bool timers_ready;
	bool addr_configured;

	/* Leader only. */
	struct zl_ipam *ipam;
	struct zl_slices *slices;
	uint64_t epoch;                  /* membership version, bumped on every change (informational) */
	struct od_join_server *join;
	struct od_member_server *members;

	/* Worker only. */
	struct od_member_client *client;

	struct od_control *control;

	/* Daemon options (options.h) and the services that follow the state (NULL when off). */
	struct od_options opts;
	struct od_dns *dns;              /* dns.h */
	struct od_prober *prober;        /* prober.h */
	struct od_events *events;        /* events.h */
	struct od_svc_checks *checks;    /* svc_check.h */
	struct od_metrics *metrics;      /* metrics.h */

	/* Set when the node left or was removed: the daemon deletes its state and exits. */
	bool retired;
	int exit_code;
};

/* Sets the paths, loads and checks the state, and on the leader builds the allocators from it
 * (repairing a missing snapshot from config and peers). ifname NULL = the state's interface, else the
 * default. 0 or -errno with a message. */
int od_node_load(struct od_node *n, const char *data_dir, const char *ifname, char *err, size_t errlen);
/* Creates the interface (engine + UAPI socket), configures key, port and peers, brings the interface up
 * with its address. 0 or -errno with a message. */
int od_node_start(struct od_node *n, char *err, size_t errlen);
/* Removes the address, deletes the interface, frees everything (safe after a failed load/start). */
void od_node_close(struct od_node *n);

/* Makes the device's peers match st.peers; old/n_old is the peer list the device was configured from
 * (NULL, 0 at start), used to leave unchanged peers alone. */
void od_node_sync_device(struct od_node *n, const struct zl_state_peer *old, size_t n_old);
/* Writes st (with fresh allocator snapshots on the leader). 0 or -errno. On failure the allocators
 * are rebuilt from the last saved snapshot; the caller undoes its own change of peers/tokens. */
int od_node_save(struct od_node *n, char *err, size_t errlen);
/* Tells the services that follow the state (DNS zone, probes, service checks), each when it runs, that
 * st changed: called after every successful od_node_save and once at start. */
void od_node_changed(struct od_node *n);

/* Index of the member named by query (node id, hostname, or overlay address), or -1 with a message
 * (unknown, or a hostname shared by several members). */
long od_node_find_member(const struct od_node *n, const char *query, char *err, size_t errlen);
long od_node_find_by_ip(const struct od_node *n, const struct zl_ip *ip);

/* ---- Leader ---- */

/* Admits a worker whose request was opened and whose token (st.tokens[token_index]) was verified:
 * allocates its address and slice, records it (endpoint: the advertised one, else source address +
 * port 51820), marks the token used and saves, all or nothing. The new member is st.peers[last] and
 * its device peer is configured. Returns ZL_JOIN_OK, KEY_IN_USE, NO_ADDRESSES or INTERNAL. */
enum zl_join_status od_node_admit(struct od_node *n, const struct zl_join_request *req, size_t token_index,
				  const struct zl_ip *source, char *err, size_t errlen);
/* Removes member idx: frees its address and slice, saves (or undoes and fails). Its WireGuard peer
 * stays until od_node_forget_device_peer, so a last message can still reach it through the tunnel
 * (od_member_server_evict does both). The caller tells the others (od_member_server_push). 0 or -errno. */
int od_node_remove_member(struct od_node *n, size_t idx, char *err, size_t errlen);
/* Removes the WireGuard peer with that key unless it is (again) a member. */
void od_node_forget_device_peer(struct od_node *n, const uint8_t key[ZL_KEY_LEN]);
/* This node as a member entry (for peer lists sent to others). endpoint may be "". */
void od_node_self_entry(const struct od_node *n, struct zl_state_peer *out);
/* Underlay endpoints for a join token: config.endpoint if set, else up to 4 of this host's global
 * addresses (IPv4 first) with the WireGuard port. Returns how many (0 = none found). */
size_t od_node_token_endpoints(const struct od_node *n, char eps[ZL_TOKEN_MAX_ENDPOINTS][ZL_ENDPOINT_MAX_LEN + 1]);

/* Tokens: conversions between the state's and the token module's record (same fields). */
void od_token_from_state(const struct zl_state_token *s, struct zl_token_record *r);
void od_token_to_state(const struct zl_token_record *r, struct zl_state_token *s);

/* ---- Worker ---- */

/* The leader's entry: a worker's state lists the leader first (as the join response does). */
const struct zl_state_peer *od_node_leader(const struct od_node *n);
/* Replaces the peer set with a list pushed by the leader (this node's own entry already removed).
 * Empty pushed endpoints keep the known one. Validated as a whole first; saved when it differs.
 * Takes ownership of peers (malloc'd). 1 changed, 0 unchanged, -errno (invalid list: nothing applied). */
int od_node_set_peers(struct od_node *n, struct zl_state_peer *peers, size_t np, char *err, size_t errlen);

/* ---- JSON (control API and membership) ---- */

/* {node_id, hostname, overlay_ip, public_key, endpoint, slice_cidr}; with live device figures
 * (last_handshake, rx_bytes, tx_bytes, and the endpoint the device currently uses) when live. */
json_object *od_node_peer_json(struct od_node *n, const struct zl_state_peer *p, bool live);
/* Parses a peer entry of a membership list (unknown members ignored). false with a message. */
bool od_node_peer_from_json(json_object *o, struct zl_state_peer *out, char *err, size_t errlen);

/* Asks the engine loop to stop (the daemon then cleans up and exits with code). */
void od_node_shutdown(struct od_node *n, int code);
#endif
