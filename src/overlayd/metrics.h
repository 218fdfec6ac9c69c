/* Metrics in the Prometheus text exposition format (version 0.0.4) on --metrics ADDR:PORT.
 *
 * Off by default. ADDR must be a loopback address (127.0.0.0/8, ::1) or this node's overlay address:
 * anything else is refused at start-up, so metrics are never exposed on the underlay. A tiny HTTP/1.x
 * server on the loop thread: GET /metrics -> 200 text/plain; version=0.0.4; any other path 404, other
 * methods 405; one request per connection (Connection: close); requests over 8 KiB or not complete
 * within 5 s are dropped; at most 16 connections.
 *
 * Families (all prefixed zl_overlay_), labels in braces:
 *   peer_rx_bytes_total, peer_tx_bytes_total            counter {node_id,hostname,overlay_ip}
 *   peer_last_handshake_age_seconds                     gauge   (absent before the first handshake)
 *   peer_rtt_seconds, peer_jitter_seconds, peer_loss_ratio, peer_healthy (0/1)   gauge
 *   dns_queries_total {transport="udp|tcp"}, dns_responses_total {rcode}        counter
 *   addresses_allocated, addresses_free                 gauge   (leader: the overlay range;
 *                                                                worker: absent)
 *   handshakes_total {result="initiated|completed"}     counter
 *   packets_rejected_total {reason}                     counter (wg_drop_reason_name)
 *   service_healthy {name,address}                      gauge   (records with a check)
 *   probes_sent_total, probe_replies_total              counter
 * Label values are escaped as the format requires (\\, \", \n). */
#ifndef OD_METRICS_H
#define OD_METRICS_H
#include <stddef.h>
#include <sys/socket.h>
#include "overlayd/node.h"

enum { OD_METRICS_MAX_CONNS = 16, OD_METRICS_REQUEST_MAX = 8192, OD_METRICS_TIMEOUT_MS = 5000 };

/* "ADDR:PORT" / "[V6]:PORT" checked against the rule above (node_ip: this node's overlay address).
 * 0 or -EINVAL with a message. */
int od_metrics_parse_addr(const char *text, const char *node_ip, struct sockaddr_storage *out, socklen_t *len,
			  char *err, size_t errlen);
/* Starts the server when n->opts.metrics is set. 0 or -errno with a message. */
int od_metrics_open(struct od_node *n, char *err, size_t errlen);
void od_metrics_close(struct od_node *n);
/* The exposition text, malloc'd and NUL-terminated (length in *len), or NULL when out of memory. */
char *od_metrics_render(struct od_node *n, size_t *len);
#endif
