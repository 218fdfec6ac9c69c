/* Health checks of registered service addresses (st.dns records whose check kind is not NONE).
 *
 * Each node runs the checks itself, from where it stands, and filters only its own DNS answers: no
 * health state travels between nodes, and a partition makes each side serve what it can reach.
 * Per record: every interval_s, a non-blocking TCP connect to addr:port (success = connected), or an
 * HTTP/1.0 GET of path with "Host: addr:port" (success = a 2xx status line within the time limit);
 * time limit min(interval, 5 s). `threshold` consecutive failures -> down (the address leaves DNS);
 * one success -> up (it returns). A new check starts as unknown and counts as up for DNS until the
 * threshold is reached, so a registration answers at once. Transitions are service events (events.h)
 * and trigger od_dns_refresh. Runs on the loop thread with od_timers; at most one attempt per record
 * in flight. */
#ifndef OD_SVC_CHECK_H
#define OD_SVC_CHECK_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "overlay/state.h"
#include "overlayd/node.h"

enum od_svc_state { OD_SVC_UNCHECKED, OD_SVC_UNKNOWN, OD_SVC_UP, OD_SVC_DOWN };

int od_svc_checks_open(struct od_node *n, char *err, size_t errlen);
void od_svc_checks_close(struct od_node *n);
/* Follows st.dns after a change: checks of new records start, checks of removed records stop, checks
 * whose record and check are unchanged keep their state. */
void od_svc_checks_sync(struct od_node *n);
enum od_svc_state od_svc_checks_state(const struct od_node *n, const struct zl_state_dns_record *rec);
const char *od_svc_state_name(enum od_svc_state s);   /* "unchecked", "unknown", "up", "down" */
/* od_dns_addr_filter for od_dns_build_zone (ctx = the node): false while rec's check is DOWN. */
bool od_svc_checks_addr_ok(void *node, const struct zl_state_dns_record *rec);
#endif
