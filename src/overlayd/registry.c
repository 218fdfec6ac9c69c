/* Service records registered for DNS: see registry.h. */
#include "overlayd/registry.h"
#include "overlay/errmsg.h"

#include <ctype.h>
#include <errno.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "overlay/cidr.h"
#include "overlayd/log.h"
#include "overlayd/membership.h"

enum { FQDN_MAX = 253, NODE_GROUP_MAX = 4 };

/* ---- request arguments */

/* Present and not null. */
static bool member(json_object *o, const char *key, json_object **v)
{
	return json_object_object_get_ex(o, key, v) && !json_object_is_type(*v, json_type_null);
}

/* A misspelt field must not be silently ignored (as in the state file and the request itself). */
static int only_known(json_object *o, const char *what, const char *const known[], char *err, size_t errlen)
{
	json_object_object_foreach(o, key, val) {
		size_t i = 0;

		(void)val;
		while (known[i] && strcmp(known[i], key))
			i++;
		if (!known[i])
			return zl_errorf(err, errlen, -EINVAL, "%s: unknown field '%s'", what, key);
	}
	return 0;
}

/* what may be "check.path": the key looked up is the part after the dot (messages name the whole). */
static int str_arg(json_object *o, const char *what, bool required, const char **out, char *err, size_t errlen)
{
	const char *dot = strchr(what, '.');
	json_object *v;

	*out = NULL;
	if (!member(o, dot ? dot + 1 : what, &v))
		return required ? zl_errorf(err, errlen, -EINVAL, "missing argument '%s'", what) : 0;
	if (!json_object_is_type(v, json_type_string) || !*json_object_get_string(v))
		return zl_errorf(err, errlen, -EINVAL, "'%s' must be a non-empty string", what);
	*out = json_object_get_string(v);
	return 0;
}

/* Like str_arg; absent: *out keeps its value (the default). */
static int int_arg(json_object *o, const char *what, bool required, int64_t lo, int64_t hi, int64_t *out,
		   char *err, size_t errlen)
{
	const char *dot = strchr(what, '.');
	json_object *v;
	int64_t x;

	if (!member(o, dot ? dot + 1 : what, &v))
		return required ? zl_errorf(err, errlen, -EINVAL, "missing argument '%s'", what) : 0;
	x = json_object_get_int64(v);
	/* json-c clamps big values to INT64_MAX, which is above every hi used here. */
	if (!json_object_is_type(v, json_type_int) || x < lo || x > hi)
		return zl_errorf(err, errlen, -EINVAL, "'%s' must be an integer from %lld to %lld", what, (long long)lo, (long long)hi);
	*out = x;
	return 0;
}

/* in, lower-cased, relative to the zone (see registry.h). target: keep an absolute name outside it. */
static int relative_name(const struct od_node *n, const char *what, const char *in, bool target,
			 char out[ZL_DNS_NAME_SIZE], char *err, size_t errlen)
{
	const char *zone = n->opts.dns_zone;
	size_t len = strlen(in), zl = strlen(zone), core;
	char low[ZL_DNS_NAME_SIZE + OD_OPT_ZONE_SIZE];
	bool absolute;

	if (len >= sizeof(low))
		return zl_errorf(err, errlen, -EINVAL, "%s: too long (at most %d bytes)", what, FQDN_MAX);
	for (size_t i = 0; i <= len; i++)
		low[i] = (char)tolower((unsigned char)in[i]);
	if (zl && zone[zl - 1] == '.')
		zl--;                                   /* the zone's text without its final dot */
	absolute = len > 1 && low[len - 1] == '.';
	core = absolute ? len - 1 : len;
	if (zl && core == zl && !memcmp(low, zone, zl))
		return zl_errorf(err, errlen, -EINVAL, "%s: '%s' is the zone itself; give a name inside it", what, in);
	if (zl && core > zl && low[core - zl - 1] == '.' && !memcmp(low + core - zl, zone, zl))
		core -= zl + 1;
	else if (absolute && !target)
		return zl_errorf(err, errlen, -EINVAL, "%s: '%s' is not inside the zone %s", what, in, zone);
	else
		core = len;
	if (core >= ZL_DNS_NAME_SIZE)
		return zl_errorf(err, errlen, -EINVAL, "%s: too long (at most %d bytes relative to the zone)", what, FQDN_MAX);
	memcpy(out, low, core);
	out[core] = '\0';
	return 0;
}

static int canonical_addr(const char *what, const char *in, char out[ZL_ADDR_STRLEN], char *err, size_t errlen)
{
	struct zl_ip ip;
	char buf[ZL_IP_STRLEN];

	if (zl_ip_parse(in, &ip, NULL, 0))
		return zl_errorf(err, errlen, -EINVAL, "'%s': '%s' is not an IPv4 or IPv6 address", what, in);
	snprintf(out, ZL_ADDR_STRLEN, "%s", zl_ip_format(&ip, buf));
	return 0;
}

static int parse_check(json_object *o, struct zl_state_dns_check *k, char *err, size_t errlen)
{
	static const char *const known[] = { "kind", "port", "path", "interval_s", "threshold", NULL };
	int64_t port = 0, interval = ZL_CHECK_DEFAULT_INTERVAL, threshold = ZL_CHECK_DEFAULT_THRESHOLD;
	const char *kind, *path;
	int rc;

	if (!json_object_is_type(o, json_type_object))
		return zl_errorf(err, errlen, -EINVAL, "'check' must be an object {kind, port, path, interval_s, threshold}");
	if ((rc = only_known(o, "check", known, err, errlen)) || (rc = str_arg(o, "check.kind", true, &kind, err, errlen)) ||
	    (rc = int_arg(o, "check.port", true, 1, 65535, &port, err, errlen)) ||
	    (rc = str_arg(o, "check.path", false, &path, err, errlen)) ||
	    (rc = int_arg(o, "check.interval_s", false, 1, 3600, &interval, err, errlen)) ||
	    (rc = int_arg(o, "check.threshold", false, 1, 100, &threshold, err, errlen)))
		return rc;
	if (strcmp(kind, "tcp") && strcmp(kind, "http"))
		return zl_errorf(err, errlen, -EINVAL, "'check.kind' must be \"tcp\" or \"http\"");
	k->kind = kind[0] == 't' ? ZL_CHECK_TCP : ZL_CHECK_HTTP;
	if (k->kind == ZL_CHECK_TCP && path)
		return zl_errorf(err, errlen, -EINVAL, "'check.path' is only for http checks");
	if (path && strlen(path) >= sizeof(k->path))
		return zl_errorf(err, errlen, -EINVAL, "'check.path' is longer than %zu bytes", sizeof(k->path) - 1);
	if (k->kind == ZL_CHECK_HTTP)
		snprintf(k->path, sizeof(k->path), "%s", path ? path : "/");
	k->port = (uint16_t)port;
	k->interval_s = (uint32_t)interval;
	k->threshold = (uint32_t)threshold;
	return 0;
}

static int parse_srv(const struct od_node *n, json_object *o, struct zl_state_dns_record *r, char *err, size_t errlen)
{
	static const char *const known[] = { "priority", "weight", "port", "target", NULL };
	int64_t prio = 0, weight = 0, port = 0;
	const char *target;
	int rc;

	if (!json_object_is_type(o, json_type_object))
		return zl_errorf(err, errlen, -EINVAL, "'srv' must be an object {priority, weight, port, target}");
	if ((rc = only_known(o, "srv", known, err, errlen)) ||
	    (rc = int_arg(o, "srv.priority", true, 0, 65535, &prio, err, errlen)) ||
	    (rc = int_arg(o, "srv.weight", true, 0, 65535, &weight, err, errlen)) ||
	    (rc = int_arg(o, "srv.port", true, 1, 65535, &port, err, errlen)) ||
	    (rc = str_arg(o, "srv.target", true, &target, err, errlen)) ||
	    (rc = relative_name(n, "srv.target", target, true, r->target, err, errlen)))
		return rc;
	r->kind = ZL_DNS_SRV;
	r->priority = (uint16_t)prio;
	r->weight = (uint16_t)weight;
	r->port = (uint16_t)port;
	return 0;
}

int od_registry_parse_add(const struct od_node *n, json_object *req, struct zl_state_dns_record *out, char *err,
			  size_t errlen)
{
	json_object *addr = NULL, *srv = NULL, *check = NULL;
	bool has_addr = member(req, "addr", &addr), has_srv = member(req, "srv", &srv);
	int64_t ttl = ZL_DNS_DEFAULT_TTL;
	const char *name;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = str_arg(req, "name", true, &name, err, errlen)) ||
	    (rc = relative_name(n, "name", name, false, out->name, err, errlen)) ||
	    (rc = int_arg(req, "ttl", false, 0, ZL_DNS_MAX_TTL, &ttl, err, errlen)))
		return rc;
	if (has_addr == has_srv)
		return zl_errorf(err, errlen, -EINVAL, "give either 'addr' (an address record) or 'srv' (an SRV record)");
	if (has_addr) {
		if (!json_object_is_type(addr, json_type_string))
			return zl_errorf(err, errlen, -EINVAL, "'addr' must be a string (an IPv4 or IPv6 address)");
		out->kind = ZL_DNS_ADDR;
		rc = canonical_addr("addr", json_object_get_string(addr), out->addr, err, errlen);
		if (!rc && member(req, "check", &check))
			rc = parse_check(check, &out->check, err, errlen);
	} else {
		rc = parse_srv(n, srv, out, err, errlen);
		if (!rc && member(req, "check", &check))
			rc = zl_errorf(err, errlen, -EINVAL, "'check' is only for address records");
	}
	if (rc)
		return rc;
	out->ttl = (uint32_t)ttl;
	snprintf(out->owner, sizeof(out->owner), "%s", n->st.config.node_id);
	return zl_state_dns_validate(out, err, errlen) ? 0 : -EINVAL;
}

int od_registry_parse_remove(const struct od_node *n, json_object *req, char name[ZL_DNS_NAME_SIZE],
			     char addr[ZL_ADDR_STRLEN], char *err, size_t errlen)
{
	struct zl_state_dns_record probe;
	const char *s, *a;
	int rc;

	addr[0] = '\0';
	if ((rc = str_arg(req, "name", true, &s, err, errlen)) ||
	    (rc = relative_name(n, "name", s, false, name, err, errlen)) ||
	    (rc = str_arg(req, "addr", false, &a, err, errlen)) ||
	    (a && (rc = canonical_addr("addr", a, addr, err, errlen))))
		return rc;
	/* The name rules are the record's: check them on a record of that name. */
	memset(&probe, 0, sizeof(probe));
	memcpy(probe.name, name, ZL_DNS_NAME_SIZE);
	probe.kind = ZL_DNS_ADDR;
	snprintf(probe.addr, sizeof(probe.addr), "%s", addr[0] ? addr : "127.0.0.1");
	return zl_state_dns_validate(&probe, err, errlen) ? 0 : -EINVAL;
}

/* ---- comparisons */

/* The identity of state.h: (name, kind, addr) or (name, kind, target, port). Texts are canonical. */
static bool same_identity(const struct zl_state_dns_record *a, const struct zl_state_dns_record *b)
{
	if (a->kind != b->kind || strcmp(a->name, b->name))
		return false;
	if (a->kind == ZL_DNS_ADDR)
		return !strcmp(a->addr, b->addr);
	return a->port == b->port && !strcmp(a->target, b->target);
}

static bool same_record(const struct zl_state_dns_record *a, const struct zl_state_dns_record *b)
{
	const struct zl_state_dns_check *x = &a->check, *y = &b->check;

	return same_identity(a, b) && a->ttl == b->ttl && !strcmp(a->owner, b->owner) &&
	       a->priority == b->priority && a->weight == b->weight && x->kind == y->kind && x->port == y->port &&
	       !strcmp(x->path, y->path) && x->interval_s == y->interval_s && x->threshold == y->threshold;
}

static long find_record(const struct od_node *n, const struct zl_state_dns_record *rec)
{
	for (size_t i = 0; i < n->st.n_dns; i++) {
		if (same_identity(&n->st.dns[i], rec))
			return (long)i;
	}
	return -1;
}

/* ---- leader */

/* node-A-B, node-A-B-C-D (IPv4) and node6-X-Y (IPv6): 2 to 4 groups of 1 to 4 lower-case hex digits. */
static bool node_name_form(const char *s)
{
	const char *p = !strncmp(s, "node-", 5) ? s + 5 : !strncmp(s, "node6-", 6) ? s + 6 : NULL;
	size_t len = 0;
	int groups = 0;

	for (; p; p++) {
		if (*p == '-' || !*p) {
			if (len == 0 || len > NODE_GROUP_MAX)
				return false;
			groups++;
			len = 0;
			if (!*p)
				break;
			continue;
		}
		if (!isdigit((unsigned char)*p) && !(*p >= 'a' && *p <= 'f'))
			return false;
		len++;
	}
	return groups >= 2 && groups <= 4;
}

/* Why the leader refuses name: one the zone already has (dns_records.h). */
static const char *reserved_name(const struct od_node *n, const char *name)
{
	if (strchr(name, '.'))
		return NULL;
	if (!strcmp(name, "leader") || !strcmp(name, "ns"))
		return "is a name the zone always has";
	if (node_name_form(name))
		return "has the form of a node name (node-A-B), which the zone keeps for its members";
	if (!strcmp(name, n->st.config.hostname))
		return "is a member's hostname";
	for (size_t i = 0; i < n->st.n_peers; i++) {
		if (!strcmp(name, n->st.peers[i].hostname))
			return "is a member's hostname";
	}
	return NULL;
}

/* Whether relative name fits in a DNS name once ".<zone>" is appended. */
static bool fits_zone(const struct od_node *n, const char *name)
{
	size_t zl = strlen(n->opts.dns_zone);

	if (zl && n->opts.dns_zone[zl - 1] == '.')
		zl--;
	return strlen(name) + (zl ? zl + 1 : 0) <= FQDN_MAX;
}

static int check_add(const struct od_node *n, const struct zl_state_dns_record *rec, char *err, size_t errlen)
{
	const char *why;

	if (!n->st.config.is_leader) {
		zl_errorf(err, errlen, -EINVAL, "only the leader changes the records");
		return -EPERM;
	}
	if (!zl_state_dns_validate(rec, err, errlen))
		return -EINVAL;
	/* The reason first: a long name quoted in full would not leave room for it. */
	if (!fits_zone(n, rec->name))
		return zl_errorf(err, errlen, -EINVAL, "name: too long once the zone %s is appended (%d bytes at most)",
			    n->opts.dns_zone, FQDN_MAX);
	if ((why = reserved_name(n, rec->name)))
		return zl_errorf(err, errlen, -EINVAL, "name: '%s' %s", rec->name, why);
	if (rec->kind == ZL_DNS_SRV && rec->target[strlen(rec->target) - 1] != '.' && !fits_zone(n, rec->target))
		return zl_errorf(err, errlen, -EINVAL, "srv.target: too long once the zone %s is appended (%d bytes at most)",
			    n->opts.dns_zone, FQDN_MAX);
	return 0;
}

static void log_change(const char *event, const struct zl_state_dns_record *r)
{
	char value[ZL_DNS_NAME_SIZE + 24];

	if (r->kind == ZL_DNS_ADDR)
		snprintf(value, sizeof(value), "%s", r->addr);
	else
		snprintf(value, sizeof(value), "%u:%s", r->port, r->target);
	od_info(event, "name=%s kind=%s value=%s owner=%s", od_q(r->name), r->kind == ZL_DNS_ADDR ? "addr" : "srv",
		od_q(value), od_q(r->owner));
}

int od_registry_add(struct od_node *n, const struct zl_state_dns_record *rec, bool *created, char *err,
		    size_t errlen)
{
	struct zl_state_dns_record old, *grown;
	long idx;
	int rc = check_add(n, rec, err, errlen);

	if (rc)
		return rc;
	idx = find_record(n, rec);
	*created = idx < 0;
	if (idx >= 0) {
		if (same_record(&n->st.dns[idx], rec))
			return 0;               /* nothing to save or push */
		old = n->st.dns[idx];
		n->st.dns[idx] = *rec;
		rc = od_node_save(n, err, errlen);
		if (rc)
			n->st.dns[idx] = old;
	} else {
		if (n->st.n_dns >= ZL_DNS_MAX_RECORDS) {
			zl_errorf(err, errlen, -EINVAL, "the cluster already has the maximum of %d records", ZL_DNS_MAX_RECORDS);
			return -ENOSPC;
		}
		grown = realloc(n->st.dns, (n->st.n_dns + 1) * sizeof(*grown));
		if (!grown) {
			zl_errorf(err, errlen, -EINVAL, "out of memory");
			return -ENOMEM;
		}
		n->st.dns = grown;
		n->st.dns[n->st.n_dns++] = *rec;
		rc = od_node_save(n, err, errlen);
		if (rc)
			n->st.n_dns--;          /* the array may stay one larger: harmless */
	}
	if (rc)
		return rc;
	log_change(*created ? "dns.added" : "dns.updated", rec);
	od_member_server_push(n);
	return 0;
}

static bool remove_matches(const struct zl_state_dns_record *r, const char *name, const char *addr)
{
	return !strcmp(r->name, name) && (!addr || !addr[0] || (r->kind == ZL_DNS_ADDR && !strcmp(r->addr, addr)));
}

int od_registry_remove(struct od_node *n, const char *name, const char *addr, size_t *removed, char *err,
		       size_t errlen)
{
	struct zl_state_dns_record *old = n->st.dns, *kept;
	size_t n_old = n->st.n_dns, k = 0, j = 0;
	int rc;

	*removed = 0;
	if (!n->st.config.is_leader) {
		zl_errorf(err, errlen, -EINVAL, "only the leader changes the records");
		return -EPERM;
	}
	for (size_t i = 0; i < n_old; i++)
		k += remove_matches(&old[i], name, addr);
	if (k == 0) {
		if (addr && addr[0])
			zl_errorf(err, errlen, -EINVAL, "no address %s registered for '%s'", addr, name);
		else
			zl_errorf(err, errlen, -EINVAL, "no record named '%s'", name);
		return -ENOENT;
	}
	kept = n_old > k ? calloc(n_old - k, sizeof(*kept)) : NULL;
	if (n_old > k && !kept) {
		zl_errorf(err, errlen, -EINVAL, "out of memory");
		return -ENOMEM;
	}
	for (size_t i = 0; i < n_old; i++) {
		if (!remove_matches(&old[i], name, addr))
			kept[j++] = old[i];
	}
	n->st.dns = kept;
	n->st.n_dns = j;
	rc = od_node_save(n, err, errlen);
	if (rc) {
		n->st.dns = old;
		n->st.n_dns = n_old;
		free(kept);
		return rc;
	}
	for (size_t i = 0; i < n_old; i++) {
		if (remove_matches(&old[i], name, addr))
			log_change("dns.removed", &old[i]);
	}
	free(old);
	*removed = k;
	od_member_server_push(n);
	return 0;
}

/* ---- worker */

static bool lists_equal(const struct zl_state_dns_record *a, size_t na, const struct zl_state_dns_record *b,
			size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++) {
		if (!same_record(&a[i], &b[i]))
			return false;
	}
	return true;
}

/* Parses the pushed array into a new list. 0 or -errno with a message naming the entry. */
static int parse_list(json_object *arr, struct zl_state_dns_record **out, size_t *count, char *err, size_t errlen)
{
	struct zl_state_dns_record *recs;
	char e[ZL_ERR_LEN];
	size_t len;

	*out = NULL;
	*count = 0;
	if (!json_object_is_type(arr, json_type_array))
		return zl_errorf(err, errlen, -EINVAL, "dns: not an array");
	len = json_object_array_length(arr);
	if (len > ZL_DNS_MAX_RECORDS)
		return zl_errorf(err, errlen, -EINVAL, "dns: %zu records, at most %d are allowed", len, ZL_DNS_MAX_RECORDS);
	recs = len ? calloc(len, sizeof(*recs)) : NULL;
	if (len && !recs) {
		zl_errorf(err, errlen, -EINVAL, "out of memory");
		return -ENOMEM;
	}
	for (size_t i = 0; i < len; i++) {
		if (!zl_state_dns_from_json(json_object_array_get_idx(arr, i), &recs[i], e, sizeof(e))) {
			free(recs);
			return zl_errorf(err, errlen, -EINVAL, "dns[%zu]: %s", i, e);
		}
	}
	*out = recs;
	*count = len;
	return 0;
}

int od_registry_apply(struct od_node *n, json_object *arr, char *err, size_t errlen)
{
	struct zl_state_dns_record *recs, *old = n->st.dns;
	struct zl_state cand;
	char e[ZL_ERR_LEN];
	size_t len;
	bool valid;
	int rc = parse_list(arr, &recs, &len, err, errlen);

	if (rc)
		return rc;
	if (lists_equal(recs, len, old, n->st.n_dns)) {
		free(recs);
		return 0;
	}
	/* Duplicates and the count are rules of the whole list: check it as the state it would become. */
	cand = n->st;
	cand.dns = recs;
	cand.n_dns = len;
	valid = zl_state_validate(&cand, err, errlen);
	sodium_memzero(&cand, sizeof(cand));   /* held a copy of the private key */
	if (!valid) {
		free(recs);
		return -EINVAL;
	}
	n->st.dns = recs;
	n->st.n_dns = len;
	/* Applied even if the write fails, as a pushed peer list is: answers matter more than the file,
	 * which the next push rewrites. */
	if (od_node_save(n, e, sizeof(e)))
		od_node_changed(n);
	free(old);
	return 1;
}

/* ---- JSON */

json_object *od_registry_list_json(const struct od_node *n)
{
	json_object *a = json_object_new_array_ext((int)n->st.n_dns);

	for (size_t i = 0; a && i < n->st.n_dns; i++) {
		json_object *o = zl_state_dns_to_json(&n->st.dns[i]);

		if (!o || json_object_array_add(a, o)) {
			json_object_put(o);
			json_object_put(a);
			return NULL;
		}
	}
	return a;
}

void od_registry_added_fields(json_object *body, const struct zl_state_dns_record *rec, bool created)
{
	json_object_object_add(body, "name", json_object_new_string(rec->name));
	json_object_object_add(body, "kind", json_object_new_string(rec->kind == ZL_DNS_SRV ? "srv" : "addr"));
	json_object_object_add(body, "created", json_object_new_boolean(created));
}

void od_registry_removed_fields(json_object *body, size_t removed)
{
	json_object_object_add(body, "removed", json_object_new_int64((int64_t)removed));
}
