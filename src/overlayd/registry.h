/* Service records registered for DNS (zl-overlay dns add|remove|list; docs/control-api.md): the
 * cluster-wide list st.dns (state.h says what a record is and what makes two records the same).
 *
 * The leader's list is the truth, and only the leader changes it, on its loop thread:
 * od_registry_add / od_registry_remove change st.dns, save with od_node_save (which also refreshes the
 * DNS zone and the service checks), put the old list back if the save fails, and then push the new list
 * to every member (od_member_server_push, in the "peers" frame). A worker forwards dns_add / dns_remove
 * to the leader over the membership channel (membership.h) and applies each list the leader pushes
 * with od_registry_apply; it answers dns_list from the last list it got.
 *
 * Names, as users type them, are made relative to the zone (n->opts.dns_zone, e.g. "overlay.local.")
 * by od_registry_parse_*: lower case; "web.overlay.local" and "web.overlay.local." become "web"; other
 * names ending in '.' are outside the zone and refused; the apex itself is refused. An SRV target is
 * treated the same way, except that an absolute name outside the zone is kept (it may point anywhere).
 * The leader also refuses names the zone already has: "leader", "ns", node names (node-A-B,
 * node-A-B-C-D, node6-X-Y) and members' hostnames, and names too long once the zone is appended. */
#ifndef OD_REGISTRY_H
#define OD_REGISTRY_H
#include <stdbool.h>
#include <stddef.h>
#include <json-c/json.h>
#include "overlay/state.h"
#include "overlayd/node.h"

/* The arguments of a dns_add request: {name, addr | srv: {priority, weight, port, target}, ttl?,
 * check?: {kind, port, path?, interval_s?, threshold?}} (defaults: ttl 30, path "/", interval 5 s,
 * threshold 2). out is normalized and valid, its owner this node. 0, or -EINVAL with a message naming
 * the argument ("ttl: ..."). */
int od_registry_parse_add(const struct od_node *n, json_object *req, struct zl_state_dns_record *out, char *err,
			  size_t errlen);
/* dns_remove {name, addr?}: the normalized name, and the canonical address or "" (= every record of
 * that name). 0 or -EINVAL with a message. */
int od_registry_parse_remove(const struct od_node *n, json_object *req, char name[ZL_DNS_NAME_SIZE],
			     char addr[ZL_ADDR_STRLEN], char *err, size_t errlen);

/* ---- Leader ---- */

/* Adds rec (normalized; its owner is kept as given), or updates the record with the same identity
 * (TTL, priority, weight, check, owner); *created says which. Saved and pushed before it returns 0.
 * -EPERM on a worker, -EINVAL (invalid or reserved name), -ENOSPC (ZL_DNS_MAX_RECORDS reached),
 * -ENOMEM, or the save's error; st.dns is unchanged on any error. */
int od_registry_add(struct od_node *n, const struct zl_state_dns_record *rec, bool *created, char *err,
		    size_t errlen);
/* Removes every record named name, or with addr (non-empty) only the address records of that name with
 * that address. *removed = how many. -ENOENT when nothing matches; otherwise as od_registry_add. */
int od_registry_remove(struct od_node *n, const char *name, const char *addr, size_t *removed, char *err,
		       size_t errlen);

/* ---- Worker ---- */

/* Replaces st.dns with a list pushed by the leader (a JSON array of records in the state file's form),
 * checked as a whole first; saved only when it differs. 1 changed, 0 unchanged, -errno (nothing
 * applied; the message names the bad entry). */
int od_registry_apply(struct od_node *n, json_object *arr, char *err, size_t errlen);

/* ---- JSON ---- */

/* Every record, in the state file's form, in list order. NULL on allocation failure. */
json_object *od_registry_list_json(const struct od_node *n);
/* The fields of a successful answer: {name, kind, created} for an add, {removed} for a remove (the
 * control response and the membership dns_result carry the same). */
void od_registry_added_fields(json_object *body, const struct zl_state_dns_record *rec, bool created);
void od_registry_removed_fields(json_object *body, size_t removed);
#endif
