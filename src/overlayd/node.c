/* The running node: state, engine and allocators. See node.h. */
#include "overlayd/node.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "overlay/atomic_file.h"
#include "overlay/names.h"
#include "overlayd/dns.h"
#include "overlayd/log.h"
#include "overlayd/net.h"
#include "overlayd/netconf.h"
#include "overlayd/prober.h"
#include "overlayd/svc_check.h"

/* ---- paths and loading */

static int set_paths(struct od_node *n, const char *data_dir, char *err, size_t errlen)
{
	size_t len = strlen(data_dir);

	/* Room for "/run/zl-overlayd.sock" within sun_path (108 bytes) is checked by the control server. */
	if (len == 0 || len > OD_DATA_DIR_MAX) {
		snprintf(err, errlen, "data directory path must be 1 to %d bytes", OD_DATA_DIR_MAX);
		return -EINVAL;
	}
	snprintf(n->data_dir, sizeof(n->data_dir), "%s", data_dir);
	while (len > 1 && n->data_dir[len - 1] == '/')
		n->data_dir[--len] = '\0';
	snprintf(n->state_path, sizeof(n->state_path), "%s/%s", n->data_dir, ZL_STATE_FILE_NAME);
	snprintf(n->run_dir, sizeof(n->run_dir), "%s/%s", n->data_dir, OD_RUN_SUBDIR);
	return 0;
}

static unsigned default_slice_prefix(const struct zl_prefix *cluster)
{
	unsigned bits = zl_ip_bits(cluster->ip.family);
	unsigned p = cluster->ip.family == AF_INET ? OD_SLICE_PREFIX_V4 : OD_SLICE_PREFIX_V6;

	if (p <= cluster->len)
		p = cluster->len + 1;
	return p > bits ? bits : p;
}

/* The slice snapshot from st (if any), plus the slices of this node and its peers that it lacks
 * (a state written without an allocator snapshot, e.g. by an older init-leader). */
static int slices_from_state(struct od_node *n, struct zl_slices **out, char *err, size_t errlen)
{
	const struct zl_state_slice_allocator *sa = &n->st.slice_allocator;
	size_t cap = sa->n_assigned + sa->n_services + n->st.n_peers + 1, k = 0;
	struct zl_slices_snapshot snap;
	struct zl_slices_entry *e = calloc(cap, sizeof(*e));
	int rc = 0;

	if (!e)
		return -ENOMEM;
	memset(&snap, 0, sizeof(snap));
	snap.cluster = n->cluster;
	snap.slice_prefix = sa->present ? sa->slice_prefix : default_slice_prefix(&n->cluster);
	if (sa->present && zl_prefix_parse(sa->cluster_cidr, &snap.cluster, err, errlen)) {
		free(e);
		return -EINVAL;
	}
	for (size_t i = 0; i < sa->n_assigned + sa->n_services && !rc; i++) {
		const struct zl_state_slice *s = i < sa->n_assigned ? &sa->assigned[i] : &sa->services[i - sa->n_assigned];

		e[k].kind = i < sa->n_assigned ? ZL_SLICE_NODE : ZL_SLICE_SERVICE;
		e[k].name = (char *)s->name;
		rc = zl_prefix_parse(s->cidr, &e[k].prefix, err, errlen);
		k++;
	}
	for (size_t i = 0; i <= n->st.n_peers && !rc; i++) {
		const char *id = i ? n->st.peers[i - 1].node_id : n->st.config.node_id;
		const char *cidr = i ? n->st.peers[i - 1].slice_cidr : n->st.config.slice_cidr;
		bool known = false;

		if (!*cidr)
			continue;
		for (size_t j = 0; j < sa->n_assigned; j++)
			known |= strcmp(sa->assigned[j].name, id) == 0;
		if (known)
			continue;
		e[k].kind = ZL_SLICE_NODE;
		e[k].name = (char *)id;
		rc = zl_prefix_parse(cidr, &e[k].prefix, err, errlen);
		k++;
	}
	snap.entries = e;
	snap.n = k;
	if (!rc)
		rc = zl_slices_restore(&snap, out, err, errlen);
	free(e);   /* names are borrowed from st: only the array goes */
	return rc;
}

/* The address snapshot from st, plus every member's address (same repair as above). */
static int ipam_from_state(struct od_node *n, struct zl_ipam **out, char *err, size_t errlen)
{
	const struct zl_state_ip_allocator *ia = &n->st.ip_allocator;
	struct zl_ip *ips = NULL, ip;
	int rc = zl_ipam_new(&n->cluster, out, err, errlen);

	if (rc)
		return rc;
	if (ia->present && ia->n_allocated) {
		ips = calloc(ia->n_allocated, sizeof(*ips));
		if (!ips)
			return -ENOMEM;
		for (size_t i = 0; i < ia->n_allocated && !rc; i++)
			rc = zl_ip_parse(ia->allocated[i].s, &ips[i], err, errlen);
		if (!rc)
			rc = zl_ipam_import(*out, ips, ia->n_allocated, err, errlen);
		free(ips);
	}
	for (size_t i = 0; i <= n->st.n_peers && !rc; i++) {
		const char *addr = i ? n->st.peers[i - 1].overlay_ip : n->st.config.node_ip;

		rc = zl_ip_parse(addr, &ip, err, errlen);
		if (!rc)
			rc = zl_ipam_mark(*out, &ip, err, errlen);
	}
	if (rc) {
		zl_ipam_free(*out);
		*out = NULL;
	}
	return rc;
}

/* (Re)builds the leader's allocators from st: at load, and to undo a change whose save failed. */
static int build_allocators(struct od_node *n, char *err, size_t errlen)
{
	struct zl_ipam *ipam = NULL;
	struct zl_slices *slices = NULL;
	int rc = ipam_from_state(n, &ipam, err, errlen);

	if (!rc)
		rc = slices_from_state(n, &slices, err, errlen);
	if (rc) {
		zl_ipam_free(ipam);
		return rc;
	}
	zl_ipam_free(n->ipam);
	zl_slices_free(n->slices);
	n->ipam = ipam;
	n->slices = slices;
	return 0;
}

int od_node_load(struct od_node *n, const char *data_dir, const char *ifname, char *err, size_t errlen)
{
	char e[ZL_ERR_LEN];
	int rc;

	if ((rc = set_paths(n, data_dir, err, errlen)))
		return rc;
	rc = zl_state_load(n->state_path, &n->st, e, sizeof(e));
	if (rc == -ENOENT) {
		snprintf(err, errlen, "no state in %s: run `zl-overlay init-leader` or `zl-overlay join` first",
			 n->data_dir);
		return rc;
	}
	if (rc) {
		snprintf(err, errlen, "%s", e);
		return rc;
	}
	/* A crash during a save may have left a temporary file; no writer runs yet. */
	if (zl_file_sweep_temps(n->state_path) > 0)
		od_info("state.swept_temp_files", "path=%s", od_q(n->state_path));
	snprintf(n->ifname, sizeof(n->ifname), "%s", ifname ? ifname : n->st.config.interface);
	if (!zl_ifname_valid(n->ifname, e, sizeof(e))) {
		snprintf(err, errlen, "interface name: %s", e);
		return -EINVAL;
	}
	if (zl_prefix_parse(n->st.config.cidr, &n->cluster, err, errlen) ||
	    zl_ip_parse(n->st.config.node_ip, &n->node_ip, err, errlen))
		return -EINVAL;
	if (n->st.config.is_leader && (rc = build_allocators(n, e, sizeof(e)))) {
		snprintf(err, errlen, "state: allocators: %s", e);
		return rc;
	}
	return 0;
}

/* ---- device configuration */

static void allowed_ips(struct wg_peer *wp, const struct zl_state_peer *p)
{
	struct zl_prefix slice;
	struct zl_ip ip;
	bool have_slice = p->slice_cidr[0] && zl_prefix_parse(p->slice_cidr, &slice, NULL, 0) == 0;

	wg_peer_clear_allowed_ips(wp);
	if (have_slice)
		wg_peer_add_allowed_ip(wp, slice.ip.family, slice.ip.addr, slice.len);
	if (zl_ip_parse(p->overlay_ip, &ip, NULL, 0) == 0 && !(have_slice && zl_prefix_contains(&slice, &ip)))
		wg_peer_add_allowed_ip(wp, ip.family, ip.addr, (uint8_t)zl_ip_bits(ip.family));
}

static void set_endpoint(struct wg_peer *wp, const struct zl_state_peer *p)
{
	struct wg_endpoint ep;
	char e[ZL_ERR_LEN];

	if (!p->endpoint[0])
		return;
	if (od_endpoint_resolve(p->endpoint, &ep, e, sizeof(e))) {
		od_error("peer.endpoint_unusable", "node_id=%s endpoint=%s err=%s", od_q(p->node_id),
			 od_q(p->endpoint), od_q(e));
		return;
	}
	wg_peer_set_endpoint(wp, &ep);
}

/* old: the entry the device was configured from (NULL: configure everything). */
static void configure_peer(struct od_node *n, const struct zl_state_peer *p, const struct zl_state_peer *old)
{
	struct wg_peer *wp = wg_device_find_peer(n->dev, p->public_key);
	int err = 0;

	if (!wp) {
		wp = wg_device_add_peer(n->dev, p->public_key, &err);
		if (!wp) {
			od_error("peer.add_failed", "node_id=%s err=%s", od_q(p->node_id), od_q(strerror(-err)));
			return;
		}
		old = NULL;
	}
	if (!old || strcmp(old->overlay_ip, p->overlay_ip) || strcmp(old->slice_cidr, p->slice_cidr))
		allowed_ips(wp, p);
	/* A known peer keeps the endpoint the device learned by roaming unless the record itself changed. */
	if (!old || strcmp(old->endpoint, p->endpoint))
		set_endpoint(wp, p);
	if (!old || old->keepalive != p->keepalive)
		wg_peer_set_persistent_keepalive(wp, p->keepalive);
	if (!old)
		od_info("peer.configured", "node_id=%s overlay_ip=%s endpoint=%s", od_q(p->node_id),
			od_q(p->overlay_ip), od_q(p->endpoint[0] ? p->endpoint : "-"));
}

static const struct zl_state_peer *find_by_key(const struct zl_state_peer *peers, size_t np, const uint8_t *key)
{
	for (size_t i = 0; i < np; i++) {
		if (memcmp(peers[i].public_key, key, ZL_KEY_LEN) == 0)
			return &peers[i];
	}
	return NULL;
}

void od_node_sync_device(struct od_node *n, const struct zl_state_peer *old, size_t n_old)
{
	struct wg_peer *wp = wg_device_first_peer(n->dev);

	/* Removals first, so an address moving from a removed peer to a new one ends at the new one. */
	while (wp) {
		struct wg_peer *next = wg_device_next_peer(n->dev, wp);
		struct wg_peer_info info;

		wg_peer_get_info(wp, &info);
		if (!find_by_key(n->st.peers, n->st.n_peers, info.public_key)) {
			const struct zl_state_peer *o = find_by_key(old, n_old, info.public_key);

			od_info("peer.removed", "node_id=%s", od_q(o ? o->node_id : "(not in state)"));
			wg_device_remove_peer(n->dev, wp);
		}
		sodium_memzero(&info, sizeof(info));
		wp = next;
	}
	for (size_t i = 0; i < n->st.n_peers; i++)
		configure_peer(n, &n->st.peers[i], find_by_key(old, n_old, n->st.peers[i].public_key));
}

/* ---- start / stop */

int od_node_start(struct od_node *n, char *err, size_t errlen)
{
	struct wg_engine_options opts = { .mtu = OD_MTU, .listen_port = n->st.config.port };
	int rc;

	n->engine = wg_engine_new(n->ifname, &opts, &rc);
	if (!n->engine) {
		snprintf(err, errlen, "cannot create interface %s: %s", n->ifname, strerror(-rc));
		return rc;
	}
	n->dev = wg_engine_device(n->engine);
	n->loop = wg_engine_loop(n->engine);
	if (wg_device_get_listen_port(n->dev) != n->st.config.port) {
		snprintf(err, errlen, "cannot bind UDP port %u", n->st.config.port);
		return -EADDRINUSE;
	}
	wg_device_set_private_key(n->dev, n->st.config.private_key);
	if ((rc = od_timers_init(&n->timers, n->loop))) {
		snprintf(err, errlen, "timers: %s", strerror(-rc));
		return rc;
	}
	n->timers_ready = true;
	od_node_sync_device(n, NULL, 0);
	if ((rc = od_netconf_link_up(n->ifname, err, errlen)))
		return rc;
	if ((rc = od_netconf_add_addr(n->ifname, &n->node_ip, n->cluster.len, err, errlen)))
		return rc;
	n->addr_configured = true;
	od_info("interface.up", "interface=%s address=%s/%u listen_port=%u peers=%zu", n->ifname,
		n->st.config.node_ip, n->cluster.len, n->st.config.port, n->st.n_peers);
	return 0;
}

void od_node_close(struct od_node *n)
{
	if (n->addr_configured) {
		int rc = od_netconf_remove_addr(n->ifname, &n->node_ip, n->cluster.len);

		if (rc)
			od_error("interface.addr_remove_failed", "interface=%s err=%s", n->ifname, od_q(strerror(-rc)));
		n->addr_configured = false;
	}
	if (n->timers_ready)
		od_timers_destroy(&n->timers);
	n->timers_ready = false;
	if (n->engine)
		wg_engine_free(n->engine);   /* deletes the interface, and its routes with it */
	n->engine = NULL;
	n->dev = NULL;
	n->loop = NULL;
	zl_ipam_free(n->ipam);
	zl_slices_free(n->slices);
	n->ipam = NULL;
	n->slices = NULL;
	zl_state_free(&n->st);
}

void od_node_shutdown(struct od_node *n, int code)
{
	n->exit_code = code;
	if (n->engine)
		wg_engine_stop(n->engine);
}

/* ---- saving */

struct export_ctx {
	struct zl_state_addr *a;
	size_t i;
};

static void export_one(void *ctx, const struct zl_ip *ip)
{
	struct export_ctx *c = ctx;

	zl_ip_format(ip, c->a[c->i++].s);
}

static int snapshot_ipam(struct od_node *n, struct zl_state_ip_allocator *out)
{
	uint64_t count = zl_ipam_allocated(n->ipam);
	struct export_ctx c = { .a = count ? calloc(count, sizeof(*c.a)) : NULL };

	if (count && !c.a)
		return -ENOMEM;
	zl_ipam_for_each(n->ipam, export_one, &c);
	out->present = true;
	zl_prefix_format(&n->cluster, out->cidr);
	out->allocated = c.a;
	out->n_allocated = c.i;
	return 0;
}

static int snapshot_slices(struct od_node *n, struct zl_state_slice_allocator *out)
{
	struct zl_slices_snapshot snap;
	size_t nn = 0, ns = 0;
	int rc = zl_slices_snapshot(n->slices, &snap);

	if (rc)
		return rc;
	memset(out, 0, sizeof(*out));
	out->present = true;
	zl_prefix_format(&snap.cluster, out->cluster_cidr);
	out->slice_prefix = snap.slice_prefix;
	out->assigned = snap.n ? calloc(snap.n, sizeof(*out->assigned)) : NULL;
	out->services = snap.n ? calloc(snap.n, sizeof(*out->services)) : NULL;
	if (snap.n && (!out->assigned || !out->services)) {
		free(out->assigned);
		free(out->services);
		zl_slices_snapshot_clear(&snap);
		return -ENOMEM;
	}
	for (size_t i = 0; i < snap.n; i++) {
		struct zl_state_slice *s = snap.entries[i].kind == ZL_SLICE_NODE ? &out->assigned[nn++]
										 : &out->services[ns++];

		snprintf(s->name, sizeof(s->name), "%s", snap.entries[i].name);
		zl_prefix_format(&snap.entries[i].prefix, s->cidr);
	}
	out->n_assigned = nn;
	out->n_services = ns;
	zl_slices_snapshot_clear(&snap);
	return 0;
}

int od_node_save(struct od_node *n, char *err, size_t errlen)
{
	struct zl_state tmp = n->st;   /* shallow: only the allocator snapshots are new */
	int rc = 0;

	if (n->st.config.is_leader) {
		memset(&tmp.ip_allocator, 0, sizeof(tmp.ip_allocator));
		memset(&tmp.slice_allocator, 0, sizeof(tmp.slice_allocator));
		rc = snapshot_ipam(n, &tmp.ip_allocator);
		if (!rc)
			rc = snapshot_slices(n, &tmp.slice_allocator);
	}
	if (!rc) {
		rc = zl_state_save(n->state_path, &tmp);
		if (rc == -EINVAL && !zl_state_validate(&tmp, err, errlen))
			; /* err says which field */
		else if (rc)
			snprintf(err, errlen, "cannot write %s: %s", n->state_path, strerror(-rc));
	} else {
		snprintf(err, errlen, "out of memory");
	}
	if (n->st.config.is_leader) {
		if (!rc) {
			free(n->st.ip_allocator.allocated);
			free(n->st.slice_allocator.assigned);
			free(n->st.slice_allocator.services);
			n->st.ip_allocator = tmp.ip_allocator;
			n->st.slice_allocator = tmp.slice_allocator;
		} else {
			free(tmp.ip_allocator.allocated);
			free(tmp.slice_allocator.assigned);
			free(tmp.slice_allocator.services);
		}
	}
	sodium_memzero(&tmp, sizeof(tmp));   /* held a copy of the private key */
	if (rc) {
		od_error("state.save_failed", "path=%s err=%s", od_q(n->state_path), od_q(err));
		return rc;
	}
	od_node_changed(n);
	return 0;
}

void od_node_changed(struct od_node *n)
{
	if (n->prober)
		od_prober_sync(n);
	/* Checks first: the zone leaves out the addresses whose checks are down. */
	if (n->checks)
		od_svc_checks_sync(n);
	if (n->dns)
		od_dns_refresh(n);
}

/* ---- lookups */

long od_node_find_by_ip(const struct od_node *n, const struct zl_ip *ip)
{
	for (size_t i = 0; i < n->st.n_peers; i++) {
		struct zl_ip pip;

		if (zl_ip_parse(n->st.peers[i].overlay_ip, &pip, NULL, 0) == 0 && zl_ip_equal(&pip, ip))
			return (long)i;
	}
	return -1;
}

long od_node_find_member(const struct od_node *n, const char *query, char *err, size_t errlen)
{
	struct zl_ip ip;
	long found = -1;
	size_t matches = 0;

	for (size_t i = 0; i < n->st.n_peers; i++) {
		if (strcmp(n->st.peers[i].node_id, query) == 0)
			return (long)i;
	}
	if (zl_ip_parse(query, &ip, NULL, 0) == 0) {
		found = od_node_find_by_ip(n, &ip);
		if (found >= 0)
			return found;
	}
	for (size_t i = 0; i < n->st.n_peers; i++) {
		if (n->st.peers[i].hostname[0] && strcasecmp(n->st.peers[i].hostname, query) == 0) {
			found = (long)i;
			matches++;
		}
	}
	if (matches == 1)
		return found;
	if (matches > 1)
		snprintf(err, errlen, "hostname '%s' is shared by %zu members: name one by node id or overlay address",
			 query, matches);
	else
		snprintf(err, errlen, "no member '%s' (give a node id, hostname or overlay address)", query);
	return -1;
}

const struct zl_state_peer *od_node_leader(const struct od_node *n)
{
	return n->st.n_peers ? &n->st.peers[0] : NULL;
}

void od_node_self_entry(const struct od_node *n, struct zl_state_peer *out)
{
	const struct zl_state_config *c = &n->st.config;

	memset(out, 0, sizeof(*out));
	snprintf(out->node_id, sizeof(out->node_id), "%s", c->node_id);
	memcpy(out->public_key, c->public_key, ZL_KEY_LEN);
	snprintf(out->endpoint, sizeof(out->endpoint), "%s", c->endpoint);
	snprintf(out->overlay_ip, sizeof(out->overlay_ip), "%s", c->node_ip);
	snprintf(out->hostname, sizeof(out->hostname), "%s", c->hostname);
	snprintf(out->slice_cidr, sizeof(out->slice_cidr), "%s", c->slice_cidr);
	out->keepalive = OD_KEEPALIVE;
}

/* ---- tokens */

void od_token_from_state(const struct zl_state_token *s, struct zl_token_record *r)
{
	memset(r, 0, sizeof(*r));
	memcpy(r->id, s->id, sizeof(r->id));
	memcpy(r->secret_hash, s->secret_hash, sizeof(r->secret_hash));
	r->created_at = s->created_at;
	r->expires_at = s->expires_at;
	r->max_uses = s->max_uses;
	r->uses = s->uses;
	r->revoked = s->revoked;
}

void od_token_to_state(const struct zl_token_record *r, struct zl_state_token *s)
{
	memset(s, 0, sizeof(*s));
	memcpy(s->id, r->id, sizeof(s->id));
	memcpy(s->secret_hash, r->secret_hash, sizeof(s->secret_hash));
	s->created_at = r->created_at;
	s->expires_at = r->expires_at;
	s->max_uses = r->max_uses;
	s->uses = r->uses;
	s->revoked = r->revoked;
}

static bool usable_underlay(const struct od_node *n, const struct ifaddrs *ifa, struct zl_ip *ip)
{
	if (!ifa->ifa_addr || !(ifa->ifa_flags & IFF_UP) || (ifa->ifa_flags & IFF_LOOPBACK) ||
	    strcmp(ifa->ifa_name, n->ifname) == 0 || !od_sockaddr_ip(ifa->ifa_addr, ip))
		return false;
	if (zl_prefix_contains(&n->cluster, ip))
		return false;
	if (ip->family == AF_INET)
		return !(ip->addr[0] == 169 && ip->addr[1] == 254);       /* link-local */
	return !(ip->addr[0] == 0xfe && (ip->addr[1] & 0xc0) == 0x80) &&  /* link-local */
	       ip->addr[0] != 0xff;
}

size_t od_node_token_endpoints(const struct od_node *n, char eps[ZL_TOKEN_MAX_ENDPOINTS][ZL_ENDPOINT_MAX_LEN + 1])
{
	struct ifaddrs *all = NULL;
	size_t k = 0;

	if (n->st.config.endpoint[0]) {
		snprintf(eps[0], ZL_ENDPOINT_MAX_LEN + 1, "%s", n->st.config.endpoint);
		return 1;
	}
	if (getifaddrs(&all) < 0)
		return 0;
	/* IPv4 first: the likelier to work across a NAT-less underlay of mixed hosts. */
	for (int pass = 0; pass < 2; pass++) {
		for (const struct ifaddrs *ifa = all; ifa && k < ZL_TOKEN_MAX_ENDPOINTS; ifa = ifa->ifa_next) {
			struct sockaddr_storage ss;
			struct zl_ip ip;
			bool dup = false;

			if (!usable_underlay(n, ifa, &ip) || (ip.family == AF_INET) != (pass == 0))
				continue;
			od_sockaddr_make(&ip, n->st.config.port, &ss);
			od_sockaddr_format((struct sockaddr *)&ss, eps[k]);
			for (size_t j = 0; j < k; j++)
				dup |= strcmp(eps[j], eps[k]) == 0;
			if (!dup && zl_endpoint_check(eps[k]))
				k++;
		}
	}
	freeifaddrs(all);
	return k;
}

/* ---- leader: admitting and removing members */

static bool id_taken(const struct od_node *n, const char *id)
{
	if (strcmp(id, n->st.config.node_id) == 0 || zl_slices_lookup(n->slices, id, &(struct zl_prefix){ 0 }))
		return true;
	for (size_t i = 0; i < n->st.n_peers; i++) {
		if (strcmp(n->st.peers[i].node_id, id) == 0)
			return true;
	}
	return false;
}

/* Node ids derive from the address, so they are unique in the cluster and readable:
 *   IPv4: "node-0-49", the reference's DNS name of the address (third and fourth octet), when free;
 *         else (clusters wider than /16) "node-10-1-0-49", the whole address.
 *   IPv6: zl_node_name6_slice, "node6-<slice index>-<host offset>" in hex (fd00:200:0:5ca::1 in
 *         fd00:200::/48 with /64 slices: "node6-5ca-1"), since every node is "::1" of its own /64;
 *         the same name as its DNS name. */
static bool choose_node_id(const struct od_node *n, const struct zl_ip *ip, char out[ZL_NODE_ID_SIZE])
{
	char text[ZL_IP_STRLEN], name[ZL_NODE_NAME_SIZE];

	if (ip->family == AF_INET6) {
		if (zl_node_name6_slice(&n->cluster, zl_slices_slice_prefix(n->slices), ip, out, ZL_NODE_ID_SIZE) < 0)
			return false;
		return !id_taken(n, out);
	}
	zl_ip_format(ip, text);
	if (zl_node_name(text, name) == 0 && !id_taken(n, name)) {
		snprintf(out, ZL_NODE_ID_SIZE, "%s", name);
		return true;
	}
	for (char *p = text; *p; p++) {
		if (*p == '.')
			*p = '-';
	}
	snprintf(out, ZL_NODE_ID_SIZE, "node-%s", text);
	return !id_taken(n, out);
}

/* The lowest free usable address of the slice (offset 1 on: the slice's first address is its network). */
static bool pick_address(struct od_node *n, const struct zl_prefix *slice, struct zl_ip *out)
{
	unsigned host_bits = zl_ip_bits(slice->ip.family) - slice->len;
	zl_u128 size = zl_u128_low_mask(host_bits);   /* last offset */
	zl_u128 limit = size < 65536 ? size : 65536;

	for (zl_u128 off = 1; off <= limit; off++) {
		zl_prefix_at(slice, off, out);
		if (zl_ipam_is_usable(n->ipam, out) && !zl_ipam_is_allocated(n->ipam, out) &&
		    zl_ipam_allocate_specific(n->ipam, out, NULL, 0) == 0)
			return true;
	}
	return false;
}

/* The slice allocator has no rename: a snapshot with the entry renamed, restored, does it (the slice
 * stays where it is; its hash start slot only matters when a slice is first assigned). */
static int slices_rename(struct od_node *n, const char *from, const char *to)
{
	struct zl_slices_snapshot snap;
	struct zl_slices *fresh = NULL;
	char e[ZL_ERR_LEN];
	int rc = zl_slices_snapshot(n->slices, &snap);

	if (rc)
		return rc;
	rc = -ENOENT;
	for (size_t i = 0; i < snap.n; i++) {
		if (snap.entries[i].kind == ZL_SLICE_NODE && strcmp(snap.entries[i].name, from) == 0) {
			char *name = strdup(to);

			if (!name) {
				rc = -ENOMEM;
				break;
			}
			free(snap.entries[i].name);
			snap.entries[i].name = name;
			rc = 0;
			break;
		}
	}
	if (!rc)
		rc = zl_slices_restore(&snap, &fresh, e, sizeof(e));
	zl_slices_snapshot_clear(&snap);
	if (!rc) {
		zl_slices_free(n->slices);
		n->slices = fresh;
	}
	return rc;
}

static void default_endpoint(const struct zl_join_request *req, const struct zl_ip *source, char out[ZL_ENDPOINT_SIZE])
{
	struct sockaddr_storage ss;

	out[0] = '\0';
	if (req->endpoint[0]) {
		snprintf(out, ZL_ENDPOINT_SIZE, "%s", req->endpoint);
		return;
	}
	if (!source || (source->family == AF_INET6 && source->addr[0] == 0xfe && (source->addr[1] & 0xc0) == 0x80))
		return;   /* a link-local source needs a zone, which endpoints cannot carry */
	od_sockaddr_make(source, OD_DEFAULT_WG_PORT, &ss);
	od_sockaddr_format((struct sockaddr *)&ss, out);
	if (!zl_endpoint_check(out))
		out[0] = '\0';
}

static bool key_in_use(const struct od_node *n, const uint8_t key[ZL_KEY_LEN])
{
	return memcmp(key, n->st.config.public_key, ZL_KEY_LEN) == 0 ||
	       find_by_key(n->st.peers, n->st.n_peers, key) != NULL;
}

/* Allocation of slice + address + id for a new member; on failure nothing stays allocated. */
static enum zl_join_status allocate_member(struct od_node *n, const struct zl_join_request *req,
					   struct zl_state_peer *p, char *err, size_t errlen)
{
	char tmp_id[ZL_NODE_ID_SIZE], hex[17];
	struct zl_prefix slice;
	struct zl_ip ip;
	int rc;

	/* The id derives from the address, which must lie in the slice, which is placed by an id: the
	 * slice is taken under a provisional id (unique: member keys are) and renamed once the id exists. */
	sodium_bin2hex(hex, sizeof(hex), req->public_key, 8);
	snprintf(tmp_id, sizeof(tmp_id), "joining-%s", hex);
	rc = zl_slices_assign(n->slices, tmp_id, &slice, err, errlen);
	if (rc)
		return rc == -ENOSPC ? ZL_JOIN_ERR_NO_ADDRESSES : ZL_JOIN_ERR_INTERNAL;
	if (!pick_address(n, &slice, &ip)) {
		zl_slices_release(n->slices, tmp_id, NULL, 0);
		snprintf(err, errlen, "no free address in slice");
		return ZL_JOIN_ERR_NO_ADDRESSES;
	}
	if (!choose_node_id(n, &ip, p->node_id) || slices_rename(n, tmp_id, p->node_id)) {
		zl_ipam_release(n->ipam, &ip, NULL, 0);
		zl_slices_release(n->slices, tmp_id, NULL, 0);
		snprintf(err, errlen, "cannot name the new member");
		return ZL_JOIN_ERR_INTERNAL;
	}
	zl_ip_format(&ip, p->overlay_ip);
	zl_prefix_format(&slice, p->slice_cidr);
	return ZL_JOIN_OK;
}

enum zl_join_status od_node_admit(struct od_node *n, const struct zl_join_request *req, size_t token_index,
				  const struct zl_ip *source, char *err, size_t errlen)
{
	struct zl_state_peer p, *grown;
	struct zl_state_token saved_token;
	struct zl_token_record rec;
	enum zl_join_status st;
	char e[ZL_ERR_LEN];

	if (key_in_use(n, req->public_key))
		return ZL_JOIN_ERR_KEY_IN_USE;
	if (n->st.n_peers + 2 > ZL_JOIN_MAX_PEERS) {
		snprintf(err, errlen, "the cluster has the maximum number of members");
		return ZL_JOIN_ERR_NO_ADDRESSES;
	}
	grown = realloc(n->st.peers, (n->st.n_peers + 1) * sizeof(*grown));
	if (!grown)
		return ZL_JOIN_ERR_INTERNAL;
	n->st.peers = grown;
	memset(&p, 0, sizeof(p));
	st = allocate_member(n, req, &p, err, errlen);
	if (st != ZL_JOIN_OK)
		return st;
	memcpy(p.public_key, req->public_key, ZL_KEY_LEN);
	if (!zl_hostname_normalize(req->hostname, p.hostname, NULL, 0))
		p.hostname[0] = '\0';
	default_endpoint(req, source, p.endpoint);
	p.keepalive = OD_KEEPALIVE;

	/* One atomic write: the member, its allocation and the spent token (docs/join-protocol.md §5). */
	n->st.peers[n->st.n_peers++] = p;
	saved_token = n->st.tokens[token_index];
	od_token_from_state(&saved_token, &rec);
	zl_token_mark_used(&rec);
	od_token_to_state(&rec, &n->st.tokens[token_index]);
	if (od_node_save(n, e, sizeof(e))) {
		n->st.n_peers--;
		n->st.tokens[token_index] = saved_token;
		if (build_allocators(n, err, errlen))
			od_error("state.undo_failed", "err=%s", od_q(err));
		snprintf(err, errlen, "%s", e);
		return ZL_JOIN_ERR_INTERNAL;
	}
	n->epoch++;
	configure_peer(n, &n->st.peers[n->st.n_peers - 1], NULL);
	return ZL_JOIN_OK;
}

int od_node_remove_member(struct od_node *n, size_t idx, char *err, size_t errlen)
{
	struct zl_state_peer gone = n->st.peers[idx];
	struct zl_ip ip;
	int rc;

	if (zl_ip_parse(gone.overlay_ip, &ip, NULL, 0) == 0)
		zl_ipam_release(n->ipam, &ip, NULL, 0);
	zl_slices_release(n->slices, gone.node_id, NULL, 0);
	memmove(&n->st.peers[idx], &n->st.peers[idx + 1], (n->st.n_peers - idx - 1) * sizeof(gone));
	n->st.n_peers--;
	rc = od_node_save(n, err, errlen);
	if (rc) {
		char e[ZL_ERR_LEN];

		memmove(&n->st.peers[idx + 1], &n->st.peers[idx], (n->st.n_peers - idx) * sizeof(gone));
		n->st.peers[idx] = gone;
		n->st.n_peers++;
		if (build_allocators(n, e, sizeof(e)))
			od_error("state.undo_failed", "err=%s", od_q(e));
		return rc;
	}
	n->epoch++;
	return 0;
}

void od_node_forget_device_peer(struct od_node *n, const uint8_t key[ZL_KEY_LEN])
{
	struct wg_peer *wp;

	/* A member that re-joined with the same key in the meantime keeps its peer. */
	if (!n->dev || find_by_key(n->st.peers, n->st.n_peers, key))
		return;
	wp = wg_device_find_peer(n->dev, key);
	if (wp)
		wg_device_remove_peer(n->dev, wp);
}

/* ---- worker: lists pushed by the leader */

static bool peers_equal(const struct zl_state_peer *a, const struct zl_state_peer *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (strcmp(a[i].node_id, b[i].node_id) || memcmp(a[i].public_key, b[i].public_key, ZL_KEY_LEN) ||
		    strcmp(a[i].endpoint, b[i].endpoint) || strcmp(a[i].overlay_ip, b[i].overlay_ip) ||
		    a[i].keepalive != b[i].keepalive || strcmp(a[i].hostname, b[i].hostname) ||
		    strcmp(a[i].slice_cidr, b[i].slice_cidr))
			return false;
	}
	return true;
}

int od_node_set_peers(struct od_node *n, struct zl_state_peer *peers, size_t np, char *err, size_t errlen)
{
	struct zl_state_peer *old = n->st.peers;
	size_t n_old = n->st.n_peers;
	struct zl_state cand;
	char e[ZL_ERR_LEN];
	bool valid;

	for (size_t i = 0; i < np; i++) {
		const struct zl_state_peer *o = find_by_key(old, n_old, peers[i].public_key);

		if (!peers[i].endpoint[0] && o)
			memcpy(peers[i].endpoint, o->endpoint, sizeof(peers[i].endpoint));
	}
	if (np == n_old && peers_equal(peers, old, np)) {
		free(peers);
		return 0;
	}
	cand = n->st;
	cand.peers = peers;
	cand.n_peers = np;
	valid = zl_state_validate(&cand, err, errlen);
	sodium_memzero(&cand, sizeof(cand));
	if (!valid) {
		free(peers);
		return -EINVAL;
	}
	n->st.peers = peers;
	n->st.n_peers = np;
	/* Applied even if the write fails: the mesh matters more than the file, which the next push
	 * or change rewrites; so the services follow the new list either way. */
	if (od_node_save(n, e, sizeof(e)))
		od_node_changed(n);
	od_node_sync_device(n, old, n_old);
	free(old);
	return 1;
}

/* ---- JSON */

static void add_str(json_object *o, const char *k, const char *v)
{
	json_object_object_add(o, k, json_object_new_string(v));
}

/* A figure with a fixed number of decimals (json-c would print 17 significant digits). */
static json_object *fixed(double v, int decimals)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%.*f", decimals, v);
	return json_object_new_double_s(v, buf);
}

/* Probe health (prober.h): "health" is "unknown" until the first verdict (or with no prober), then
 * "up" exactly when "healthy"; rtt_ms and jitter_ms are null before the first answer. */
static void add_health(json_object *o, const struct od_node *n, const struct zl_state_peer *p)
{
	struct od_peer_health h;
	bool tracked = od_prober_peer_health(n, p->public_key, &h);
	bool sampled = tracked && h.replies > 0;

	json_object_object_add(o, "healthy", json_object_new_boolean(h.healthy));
	add_str(o, "health", !h.known ? "unknown" : h.healthy ? "up" : "down");
	json_object_object_add(o, "rtt_ms", sampled ? fixed(h.rtt_ms, 3) : NULL);
	json_object_object_add(o, "jitter_ms", sampled ? fixed(h.jitter_ms, 3) : NULL);
	json_object_object_add(o, "loss", fixed(h.loss, 4));
}

json_object *od_node_peer_json(struct od_node *n, const struct zl_state_peer *p, bool live)
{
	json_object *o = json_object_new_object();
	char key[ZL_KEY_B64_LEN + 1], ep[OD_SOCKADDR_STRLEN];
	const char *endpoint = p->endpoint;

	if (!o)
		return NULL;
	zl_state_key_encode(p->public_key, key);
	add_str(o, "node_id", p->node_id);
	add_str(o, "public_key", key);
	add_str(o, "overlay_ip", p->overlay_ip);
	if (live) {
		struct wg_peer *wp = n->dev ? wg_device_find_peer(n->dev, p->public_key) : NULL;
		struct wg_peer_info info;

		memset(&info, 0, sizeof(info));
		if (wp)
			wg_peer_get_info(wp, &info);
		if (info.endpoint.addr.sa.sa_family)
			endpoint = od_sockaddr_format(&info.endpoint.addr.sa, ep);
		add_str(o, "hostname", p->hostname);
		add_str(o, "endpoint", endpoint);
		add_str(o, "slice_cidr", p->slice_cidr);
		json_object_object_add(o, "last_handshake",
				       json_object_new_int64((int64_t)(info.last_handshake_wall_ns / 1000000000ull)));
		json_object_object_add(o, "rx_bytes", json_object_new_uint64(info.rx_bytes));
		json_object_object_add(o, "tx_bytes", json_object_new_uint64(info.tx_bytes));
		sodium_memzero(&info, sizeof(info));
		add_health(o, n, p);
		return o;
	}
	if (p->hostname[0])
		add_str(o, "hostname", p->hostname);
	if (p->endpoint[0])
		add_str(o, "endpoint", p->endpoint);
	if (p->slice_cidr[0])
		add_str(o, "slice_cidr", p->slice_cidr);
	return o;
}

static bool get_string(json_object *o, const char *k, bool optional, char *out, size_t cap, char *err, size_t errlen)
{
	json_object *v;
	const char *s;

	out[0] = '\0';
	if (!json_object_object_get_ex(o, k, &v) || json_object_is_type(v, json_type_null)) {
		if (!optional)
			snprintf(err, errlen, "%s: missing", k);
		return optional;
	}
	if (!json_object_is_type(v, json_type_string)) {
		snprintf(err, errlen, "%s: not a string", k);
		return false;
	}
	s = json_object_get_string(v);
	if (strlen(s) >= cap) {
		snprintf(err, errlen, "%s: too long", k);
		return false;
	}
	memcpy(out, s, strlen(s) + 1);
	return true;
}

bool od_node_peer_from_json(json_object *o, struct zl_state_peer *out, char *err, size_t errlen)
{
	char key[ZL_KEY_B64_LEN + 8];
	struct zl_prefix pfx;
	struct zl_ip ip;

	memset(out, 0, sizeof(*out));
	if (!json_object_is_type(o, json_type_object)) {
		snprintf(err, errlen, "peer: not an object");
		return false;
	}
	if (!get_string(o, "node_id", false, out->node_id, sizeof(out->node_id), err, errlen) ||
	    !get_string(o, "public_key", false, key, sizeof(key), err, errlen) ||
	    !get_string(o, "overlay_ip", false, out->overlay_ip, sizeof(out->overlay_ip), err, errlen) ||
	    !get_string(o, "hostname", true, out->hostname, sizeof(out->hostname), err, errlen) ||
	    !get_string(o, "endpoint", true, out->endpoint, sizeof(out->endpoint), err, errlen) ||
	    !get_string(o, "slice_cidr", true, out->slice_cidr, sizeof(out->slice_cidr), err, errlen))
		return false;
	if (!zl_state_key_decode(key, out->public_key)) {
		snprintf(err, errlen, "public_key: not a valid key");
		return false;
	}
	/* Canonical text, as the state file requires (the full checks run on the whole list later). */
	if (zl_ip_parse(out->overlay_ip, &ip, err, errlen))
		return false;
	zl_ip_format(&ip, out->overlay_ip);
	if (out->slice_cidr[0]) {
		if (zl_prefix_parse(out->slice_cidr, &pfx, err, errlen))
			return false;
		zl_prefix_format(&pfx, out->slice_cidr);
	}
	out->keepalive = OD_KEEPALIVE;
	return true;
}
