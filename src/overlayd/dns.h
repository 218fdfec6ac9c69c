/* The node's DNS service: glue between the state (dns_records.h), the service checks (svc_check.h)
 * and the server thread (dns_server.h). Runs on the loop thread.
 *
 * od_dns_open starts the server on 127.0.0.1 and the node's overlay address at n->opts.dns_port
 * (nothing when n->opts.dns is false) with the zone of the current state. od_dns_refresh rebuilds the
 * zone and publishes it; the node calls it after every successful save (membership, registrations)
 * and the service checks after every up/down change, so every change reaches answers at once. */
#ifndef OD_DNS_H
#define OD_DNS_H
#include <stdbool.h>
#include <stddef.h>
#include "overlayd/dns_server.h"
#include "overlayd/node.h"

int od_dns_open(struct od_node *n, char *err, size_t errlen);
void od_dns_close(struct od_node *n);
void od_dns_refresh(struct od_node *n);
/* false when DNS is off. */
bool od_dns_stats(const struct od_node *n, struct od_dns_stats *out);
#endif
