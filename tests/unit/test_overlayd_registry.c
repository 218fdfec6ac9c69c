/* zl-overlayd's service record registry without an interface: control arguments normalized relative to
 * the zone (case, "NAME.zone", "NAME.zone.", names outside the zone, the apex, SRV targets) with defaults
 * and field-named errors; the leader adding, updating and removing records with one save each, names
 * the zone already has refused, the record limit, nothing changed in memory or on disk when the save
 * fails; a worker applying pushed lists (unchanged lists not saved, invalid lists not applied). State
 * lives in a scratch directory under /tmp (removed at the end unless ZL_KEEP is set). */
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "overlay/atomic_file.h"
#include "overlayd/log.h"
#include "overlayd/node.h"
#include "overlayd/registry.h"
#include "test.h"

static char scratch[64];
static int dir_seq;

static void keypair(uint8_t priv[32], uint8_t pub[32])
{
	randombytes_buf(priv, 32);
	crypto_scalarmult_base(pub, priv);
}

/* A leader (zone overlay.local.) with one member "w1" (hostname "cache"), loaded from a fresh dir. */
static void make_leader(struct od_node *n)
{
	char dir[128], path[160], err[256];
	struct zl_state st;
	uint8_t priv[32];

	snprintf(dir, sizeof(dir), "%s/d%d", scratch, ++dir_seq);
	snprintf(path, sizeof(path), "%s/%s", dir, ZL_STATE_FILE_NAME);
	memset(&st, 0, sizeof(st));
	snprintf(st.config.node_id, sizeof(st.config.node_id), "leader");
	snprintf(st.config.cidr, sizeof(st.config.cidr), "10.200.0.0/16");
	snprintf(st.config.node_ip, sizeof(st.config.node_ip), "10.200.0.1");
	snprintf(st.config.interface, sizeof(st.config.interface), "zl-test0");
	snprintf(st.config.hostname, sizeof(st.config.hostname), "boss");
	st.config.port = 51820;
	st.config.is_leader = true;
	st.config.created_at = 1700000000;
	keypair(st.config.private_key, st.config.public_key);
	st.peers = calloc(1, sizeof(*st.peers));
	st.n_peers = 1;
	snprintf(st.peers[0].node_id, sizeof(st.peers[0].node_id), "w1");
	snprintf(st.peers[0].overlay_ip, sizeof(st.peers[0].overlay_ip), "10.200.0.17");
	snprintf(st.peers[0].hostname, sizeof(st.peers[0].hostname), "cache");
	keypair(priv, st.peers[0].public_key);
	CHECK(zl_state_save(path, &st) == 0);
	zl_state_free(&st);
	memset(n, 0, sizeof(*n));
	CHECK(od_node_load(n, dir, NULL, err, sizeof(err)) == 0);
	od_options_defaults(&n->opts);
}

static json_object *parse(const char *text)
{
	json_object *o = json_tokener_parse(text);

	CHECK(o != NULL);
	return o;
}

/* The state file as the next daemon start would read it. */
static struct zl_state reload(const struct od_node *n)
{
	struct zl_state s;
	char err[256];

	CHECK(zl_state_load(n->state_path, &s, err, sizeof(err)) == 0);
	return s;
}

static int add_json(struct od_node *n, const char *text, bool *created, char *err, size_t errlen)
{
	struct zl_state_dns_record r;
	json_object *o = parse(text);
	int rc = od_registry_parse_add(n, o, &r, err, errlen);

	json_object_put(o);
	return rc ? rc : od_registry_add(n, &r, created, err, errlen);
}

static void test_parse_add_normalizes(void)
{
	static const struct {
		const char *req, *name, *value;
	} ok[] = {
		{ "{\"name\":\"Web\",\"addr\":\"10.0.0.5\"}", "web", "10.0.0.5" },
		{ "{\"name\":\"web.overlay.local\",\"addr\":\"10.0.0.5\"}", "web", "10.0.0.5" },
		{ "{\"name\":\"API.Web.Overlay.Local.\",\"addr\":\"FD00:0::5\"}", "api.web", "fd00::5" },
		{ "{\"name\":\"web.example.com\",\"addr\":\"10.0.0.5\"}", "web.example.com", "10.0.0.5" },
		{ "{\"name\":\"_http._tcp.web\",\"srv\":{\"priority\":1,\"weight\":2,\"port\":80,"
		  "\"target\":\"Web.overlay.local.\"}}", "_http._tcp.web", "web" },
		{ "{\"name\":\"_http._tcp.web\",\"srv\":{\"priority\":1,\"weight\":2,\"port\":80,"
		  "\"target\":\"mirror.example.\"}}", "_http._tcp.web", "mirror.example." },
	};
	struct od_node n;
	struct zl_state_dns_record r;
	char err[256];
	json_object *o;

	make_leader(&n);
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		o = parse(ok[i].req);
		err[0] = '\0';
		CHECK(od_registry_parse_add(&n, o, &r, err, sizeof(err)) == 0);
		if (strcmp(r.name, ok[i].name))
			fprintf(stderr, "  case %zu: name '%s' err '%s'\n", i, r.name, err);
		CHECK(!strcmp(r.name, ok[i].name));
		CHECK(!strcmp(r.kind == ZL_DNS_ADDR ? r.addr : r.target, ok[i].value));
		CHECK(r.ttl == ZL_DNS_DEFAULT_TTL && !strcmp(r.owner, "leader"));
		json_object_put(o);
	}
	/* Check defaults: interval, threshold and, for HTTP, the path "/". */
	o = parse("{\"name\":\"web\",\"addr\":\"10.0.0.5\",\"ttl\":0,\"check\":{\"kind\":\"http\",\"port\":8080}}");
	CHECK(od_registry_parse_add(&n, o, &r, err, sizeof(err)) == 0);
	CHECK(r.ttl == 0 && r.check.kind == ZL_CHECK_HTTP && r.check.port == 8080 && !strcmp(r.check.path, "/") &&
	      r.check.interval_s == ZL_CHECK_DEFAULT_INTERVAL && r.check.threshold == ZL_CHECK_DEFAULT_THRESHOLD);
	json_object_put(o);
	o = parse("{\"name\":\"web\",\"addr\":\"10.0.0.5\",\"check\":{\"kind\":\"tcp\",\"port\":22,\"interval_s\":60,"
		  "\"threshold\":7}}");
	CHECK(od_registry_parse_add(&n, o, &r, err, sizeof(err)) == 0);
	CHECK(r.check.kind == ZL_CHECK_TCP && r.check.path[0] == '\0' && r.check.interval_s == 60 && r.check.threshold == 7);
	json_object_put(o);
	od_node_close(&n);
}

static void test_parse_add_errors(void)
{
	static const struct {
		const char *req, *msg;
	} bad[] = {
		{ "{}", "missing argument 'name'" },
		{ "{\"name\":\"\",\"addr\":\"10.0.0.5\"}", "'name' must be a non-empty string" },
		{ "{\"name\":\"web\"}", "give either 'addr' (an address record) or 'srv'" },
		{ "{\"name\":\"web\",\"addr\":\"10.0.0.5\",\"srv\":{}}", "give either 'addr'" },
		{ "{\"name\":\"web\",\"addr\":\"10.0.0.256\"}", "'addr': '10.0.0.256' is not an IPv4 or IPv6 address" },
		{ "{\"name\":\"web\",\"addr\":5}", "'addr' must be a string" },
		{ "{\"name\":\"web.example.com.\",\"addr\":\"10.0.0.5\"}", "name: 'web.example.com.' is not inside the zone overlay.local." },
		{ "{\"name\":\"Overlay.Local.\",\"addr\":\"10.0.0.5\"}", "name: 'Overlay.Local.' is the zone itself" },
		{ "{\"name\":\"a..b\",\"addr\":\"10.0.0.5\"}", "name: \"a..b\" has an empty label" },
		{ "{\"name\":\"we b\",\"addr\":\"10.0.0.5\"}", "name: \"we b\" may contain only" },
		{ "{\"name\":\"web\",\"addr\":\"10.0.0.5\",\"ttl\":86401}", "'ttl' must be an integer from 0 to 86400" },
		{ "{\"name\":\"web\",\"addr\":\"10.0.0.5\",\"ttl\":\"30\"}", "'ttl' must be an integer from 0 to 86400" },
		{ "{\"name\":\"web\",\"addr\":\"10.0.0.5\",\"check\":7}", "'check' must be an object" },
		{ "{\"name\":\"web\",\"addr\":\"10.0.0.5\",\"check\":{\"kind\":\"udp\",\"port\":1}}", "'check.kind' must be \"tcp\" or \"http\"" },
		{ "{\"name\":\"web\",\"addr\":\"10.0.0.5\",\"check\":{\"kind\":\"tcp\"}}", "missing argument 'check.port'" },
		{ "{\"name\":\"web\",\"addr\":\"10.0.0.5\",\"check\":{\"kind\":\"tcp\",\"port\":0}}", "'check.port' must be an integer from 1 to 65535" },
		{ "{\"name\":\"web\",\"addr\":\"10.0.0.5\",\"check\":{\"kind\":\"tcp\",\"port\":1,\"path\":\"/x\"}}", "'check.path' is only for http checks" },
		{ "{\"name\":\"web\",\"addr\":\"10.0.0.5\",\"check\":{\"kind\":\"http\",\"port\":1,\"path\":\"x\"}}", "check.path: \"x\" must start with '/'" },
		{ "{\"name\":\"web\",\"addr\":\"10.0.0.5\",\"check\":{\"kind\":\"tcp\",\"port\":1,\"interval_s\":0}}", "'check.interval_s' must be an integer from 1 to 3600" },
		{ "{\"name\":\"web\",\"addr\":\"10.0.0.5\",\"check\":{\"kind\":\"tcp\",\"port\":1,\"threshold\":101}}", "'check.threshold' must be an integer from 1 to 100" },
		{ "{\"name\":\"web\",\"addr\":\"10.0.0.5\",\"check\":{\"kind\":\"tcp\",\"port\":1,\"every\":3}}", "check: unknown field 'every'" },
		{ "{\"name\":\"web\",\"srv\":{\"priority\":1,\"weight\":2,\"port\":80,\"target\":\"x\"}}", "an SRV record's name must be _service._proto.name" },
		{ "{\"name\":\"_h._tcp.web\",\"srv\":{\"priority\":1,\"weight\":2,\"port\":80}}", "missing argument 'srv.target'" },
		{ "{\"name\":\"_h._tcp.web\",\"srv\":{\"priority\":1,\"weight\":70000,\"port\":80,\"target\":\"x\"}}", "'srv.weight' must be an integer from 0 to 65535" },
		{ "{\"name\":\"_h._tcp.web\",\"srv\":{\"priority\":1,\"weight\":2,\"port\":0,\"target\":\"x\"}}", "'srv.port' must be an integer from 1 to 65535" },
		{ "{\"name\":\"_h._tcp.web\",\"srv\":{\"priority\":1,\"weight\":2,\"port\":8,\"target\":\"x\",\"proto\":1}}", "srv: unknown field 'proto'" },
		{ "{\"name\":\"_h._tcp.web\",\"srv\":[1,2,3]}", "'srv' must be an object" },
		{ "{\"name\":\"_h._tcp.web\",\"srv\":{\"priority\":1,\"weight\":2,\"port\":8,\"target\":\"x\"},"
		  "\"check\":{\"kind\":\"tcp\",\"port\":1}}", "'check' is only for address records" },
	};
	struct od_node n;
	struct zl_state_dns_record r;
	char err[256];

	make_leader(&n);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_object *o = parse(bad[i].req);
		int rc;

		err[0] = '\0';
		rc = od_registry_parse_add(&n, o, &r, err, sizeof(err));
		if (rc != -EINVAL || !strstr(err, bad[i].msg))
			fprintf(stderr, "  case %zu: rc %d err '%s', want '%s'\n", i, rc, err, bad[i].msg);
		CHECK(rc == -EINVAL && strstr(err, bad[i].msg));
		json_object_put(o);
	}
	od_node_close(&n);
}

static void test_parse_remove(void)
{
	struct od_node n;
	char name[ZL_DNS_NAME_SIZE], addr[ZL_ADDR_STRLEN], err[256];
	json_object *o;

	make_leader(&n);
	o = parse("{\"name\":\"WEB.overlay.local.\",\"addr\":\"FD00::0001\"}");
	CHECK(od_registry_parse_remove(&n, o, name, addr, err, sizeof(err)) == 0);
	CHECK(!strcmp(name, "web") && !strcmp(addr, "fd00::1"));
	json_object_put(o);
	o = parse("{\"name\":\"_http._tcp.web\"}");
	CHECK(od_registry_parse_remove(&n, o, name, addr, err, sizeof(err)) == 0);
	CHECK(!strcmp(name, "_http._tcp.web") && addr[0] == '\0');
	json_object_put(o);
	o = parse("{\"name\":\"web\",\"addr\":\"nope\"}");
	CHECK(od_registry_parse_remove(&n, o, name, addr, err, sizeof(err)) == -EINVAL && strstr(err, "'nope'"));
	json_object_put(o);
	o = parse("{\"name\":\"a b\"}");
	CHECK(od_registry_parse_remove(&n, o, name, addr, err, sizeof(err)) == -EINVAL && strstr(err, "name:"));
	json_object_put(o);
	od_node_close(&n);
}

static void test_add_update_remove(void)
{
	struct od_node n;
	struct zl_state s;
	char err[256];
	size_t removed = 0;
	bool created = false;

	make_leader(&n);
	CHECK(add_json(&n, "{\"name\":\"web\",\"addr\":\"10.0.0.5\"}", &created, err, sizeof(err)) == 0 && created);
	CHECK(add_json(&n, "{\"name\":\"web\",\"addr\":\"10.0.0.6\",\"ttl\":5}", &created, err, sizeof(err)) == 0 && created);
	CHECK(add_json(&n, "{\"name\":\"_http._tcp.web\",\"srv\":{\"priority\":1,\"weight\":2,\"port\":80,\"target\":\"web\"}}",
		       &created, err, sizeof(err)) == 0 && created);
	CHECK(n.st.n_dns == 3);
	/* Same identity: updated in place (TTL and check), not added. */
	CHECK(add_json(&n, "{\"name\":\"Web\",\"addr\":\"10.0.0.5\",\"ttl\":99,\"check\":{\"kind\":\"tcp\",\"port\":80}}",
		       &created, err, sizeof(err)) == 0 && !created);
	CHECK(n.st.n_dns == 3 && n.st.dns[0].ttl == 99 && n.st.dns[0].check.kind == ZL_CHECK_TCP);
	/* SRV identity is (name, target, port): another priority updates, another port adds. */
	CHECK(add_json(&n, "{\"name\":\"_http._tcp.web\",\"srv\":{\"priority\":9,\"weight\":2,\"port\":80,\"target\":\"web\"}}",
		       &created, err, sizeof(err)) == 0 && !created && n.st.dns[2].priority == 9);
	CHECK(add_json(&n, "{\"name\":\"_http._tcp.web\",\"srv\":{\"priority\":9,\"weight\":2,\"port\":81,\"target\":\"web\"}}",
		       &created, err, sizeof(err)) == 0 && created && n.st.n_dns == 4);
	/* Everything is on disk. */
	s = reload(&n);
	CHECK(s.n_dns == 4 && !strcmp(s.dns[0].name, "web") && s.dns[0].ttl == 99 && !strcmp(s.dns[1].addr, "10.0.0.6") &&
	      s.dns[3].port == 81);
	zl_state_free(&s);
	/* Remove one address, then every record of a name. */
	CHECK(od_registry_remove(&n, "web", "10.0.0.6", &removed, err, sizeof(err)) == 0 && removed == 1);
	CHECK(od_registry_remove(&n, "web", "10.0.0.6", &removed, err, sizeof(err)) == -ENOENT &&
	      strstr(err, "no address 10.0.0.6 registered for 'web'"));
	CHECK(od_registry_remove(&n, "_http._tcp.web", NULL, &removed, err, sizeof(err)) == 0 && removed == 2);
	CHECK(od_registry_remove(&n, "nosuch", "", &removed, err, sizeof(err)) == -ENOENT &&
	      strstr(err, "no record named 'nosuch'"));
	CHECK(n.st.n_dns == 1 && !strcmp(n.st.dns[0].addr, "10.0.0.5"));
	s = reload(&n);
	CHECK(s.n_dns == 1 && !strcmp(s.dns[0].addr, "10.0.0.5"));
	zl_state_free(&s);
	CHECK(od_registry_remove(&n, "web", NULL, &removed, err, sizeof(err)) == 0 && removed == 1 && n.st.n_dns == 0);
	s = reload(&n);
	CHECK(s.n_dns == 0 && s.dns == NULL);
	zl_state_free(&s);
	od_node_close(&n);
}

static void test_refused_names_and_limit(void)
{
	static const char *const reserved[] = { "leader", "ns", "node-0-5", "node-10-200-0-5", "node6-5ca-1",
						"cache", "boss" };
	static const char *const allowed[] = { "node-web", "nodes", "leader.web", "node-0", "cache.web" };
	struct od_node n;
	struct zl_state_dns_record r;
	char req[160], err[256];
	bool created;

	make_leader(&n);
	for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++) {
		snprintf(req, sizeof(req), "{\"name\":\"%s\",\"addr\":\"10.0.0.5\"}", reserved[i]);
		CHECK(add_json(&n, req, &created, err, sizeof(err)) == -EINVAL && strstr(err, reserved[i]));
	}
	CHECK(n.st.n_dns == 0);
	for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++) {
		snprintf(req, sizeof(req), "{\"name\":\"%s\",\"addr\":\"10.0.0.5\"}", allowed[i]);
		CHECK(add_json(&n, req, &created, err, sizeof(err)) == 0 && created);
	}
	/* A name that fits the record but not once ".overlay.local" is appended. */
	memset(&r, 0, sizeof(r));
	for (int i = 0; i < 4; i++)
		memcpy(r.name + 60 * i, i < 3 ? "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa." :
						"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 60);
	r.kind = ZL_DNS_ADDR;
	snprintf(r.addr, sizeof(r.addr), "10.0.0.9");
	CHECK(strlen(r.name) == 240 && zl_state_dns_validate(&r, err, sizeof(err)));
	CHECK(od_registry_add(&n, &r, &created, err, sizeof(err)) == -EINVAL && strstr(err, "too long once the zone"));
	/* The limit: a full list refuses a new record but still updates an existing one. */
	{
		size_t had = n.st.n_dns;
		struct zl_state_dns_record *d = realloc(n.st.dns, ZL_DNS_MAX_RECORDS * sizeof(*d));

		CHECK(d != NULL);
		if (!d)
			return;
		n.st.dns = d;
		for (size_t i = had; i < ZL_DNS_MAX_RECORDS; i++) {
			d[i] = d[0];
			snprintf(d[i].addr, sizeof(d[i].addr), "10.1.%zu.%zu", i / 256, i % 256);
		}
		n.st.n_dns = ZL_DNS_MAX_RECORDS;
		CHECK(add_json(&n, "{\"name\":\"one-more\",\"addr\":\"10.0.0.5\"}", &created, err, sizeof(err)) == -ENOSPC &&
		      strstr(err, "maximum of 4096"));
		CHECK(add_json(&n, "{\"name\":\"node-web\",\"addr\":\"10.0.0.5\",\"ttl\":7}", &created, err, sizeof(err)) == 0 &&
		      !created && n.st.dns[0].ttl == 7);
	}
	/* A worker never changes the list itself. */
	n.st.config.is_leader = false;
	r = n.st.dns[0];
	CHECK(od_registry_add(&n, &r, &created, err, sizeof(err)) == -EPERM);
	CHECK(od_registry_remove(&n, "node-web", NULL, &(size_t){ 0 }, err, sizeof(err)) == -EPERM);
	n.st.config.is_leader = true;
	od_node_close(&n);
}

static enum zl_atomic_step failing_step;
static int fault(enum zl_atomic_step step) { return step == failing_step ? -EIO : 0; }

static char *read_text(const char *path)
{
	char *buf = NULL;
	size_t len;

	return zl_file_read_capped(path, ZL_FILE_READ_MAX, &buf, &len) == 0 ? buf : NULL;
}

/* Add, update and remove each fail whole when the write fails at any step: memory and file as before. */
static void test_failed_save_changes_nothing(void)
{
	struct od_node n;
	char err[256], *before, *after;
	size_t removed;
	bool created;

	make_leader(&n);
	CHECK(add_json(&n, "{\"name\":\"web\",\"addr\":\"10.0.0.5\",\"ttl\":10}", &created, err, sizeof(err)) == 0);
	before = read_text(n.state_path);
	for (failing_step = ZL_ATOMIC_STEP_WRITE; failing_step <= ZL_ATOMIC_STEP_RENAME; failing_step++) {
		zl_atomic_fault_hook = fault;
		CHECK(add_json(&n, "{\"name\":\"db\",\"addr\":\"10.0.0.6\"}", &created, err, sizeof(err)) != 0);
		CHECK(add_json(&n, "{\"name\":\"web\",\"addr\":\"10.0.0.5\",\"ttl\":20}", &created, err, sizeof(err)) != 0);
		CHECK(od_registry_remove(&n, "web", NULL, &removed, err, sizeof(err)) != 0);
		zl_atomic_fault_hook = NULL;
		CHECK(n.st.n_dns == 1 && !strcmp(n.st.dns[0].name, "web") && n.st.dns[0].ttl == 10);
	}
	after = read_text(n.state_path);
	CHECK(before && after && !strcmp(before, after));
	free(before);
	free(after);
	od_node_close(&n);
}

static void test_worker_applies_lists(void)
{
	struct od_node n;
	struct zl_state s;
	char err[256];
	struct stat st1, st2;
	json_object *arr;

	make_leader(&n);
	n.st.config.is_leader = false;   /* apply is the worker's side; the leader bits do not matter */
	arr = parse("[{\"name\":\"web\",\"kind\":\"addr\",\"addr\":\"10.0.0.5\",\"ttl\":30,\"owner\":\"w1\"},"
		    "{\"name\":\"_h._tcp.web\",\"kind\":\"srv\",\"srv\":{\"priority\":1,\"weight\":2,\"port\":80,"
		    "\"target\":\"web\"},\"ttl\":30}]");
	CHECK(od_registry_apply(&n, arr, err, sizeof(err)) == 1);
	CHECK(n.st.n_dns == 2 && n.st.dns[1].kind == ZL_DNS_SRV && !strcmp(n.st.dns[0].owner, "w1"));
	s = reload(&n);
	CHECK(s.n_dns == 2);
	zl_state_free(&s);
	/* The same list again: nothing to write. */
	CHECK(stat(n.state_path, &st1) == 0);
	usleep(20000);
	CHECK(od_registry_apply(&n, arr, err, sizeof(err)) == 0);
	CHECK(stat(n.state_path, &st2) == 0 && st1.st_mtim.tv_nsec == st2.st_mtim.tv_nsec &&
	      st1.st_mtim.tv_sec == st2.st_mtim.tv_sec);
	json_object_put(arr);
	/* Invalid as a whole (a duplicate) or in one entry: nothing applied. */
	arr = parse("[{\"name\":\"a\",\"kind\":\"addr\",\"addr\":\"10.0.0.1\",\"ttl\":1},"
		    "{\"name\":\"a\",\"kind\":\"addr\",\"addr\":\"10.0.0.1\",\"ttl\":2}]");
	CHECK(od_registry_apply(&n, arr, err, sizeof(err)) == -EINVAL && strstr(err, "dns[1]: duplicate of dns[0]"));
	json_object_put(arr);
	arr = parse("[{\"name\":\"a\",\"kind\":\"addr\",\"addr\":\"10.0.0.1\",\"ttl\":1},{\"name\":\"b\",\"kind\":\"mx\"}]");
	CHECK(od_registry_apply(&n, arr, err, sizeof(err)) == -EINVAL && strstr(err, "dns[1]: kind:"));
	json_object_put(arr);
	arr = parse("{}");
	CHECK(od_registry_apply(&n, arr, err, sizeof(err)) == -EINVAL);
	json_object_put(arr);
	CHECK(n.st.n_dns == 2 && !strcmp(n.st.dns[0].name, "web"));
	/* An empty list removes everything. */
	arr = parse("[]");
	CHECK(od_registry_apply(&n, arr, err, sizeof(err)) == 1 && n.st.n_dns == 0);
	json_object_put(arr);
	s = reload(&n);
	CHECK(s.n_dns == 0);
	zl_state_free(&s);
	od_node_close(&n);
}

static void test_list_json(void)
{
	struct od_node n;
	char err[256];
	bool created;
	json_object *a, *o, *v;

	make_leader(&n);
	CHECK(add_json(&n, "{\"name\":\"web\",\"addr\":\"10.0.0.5\"}", &created, err, sizeof(err)) == 0);
	CHECK(add_json(&n, "{\"name\":\"_h._tcp.web\",\"srv\":{\"priority\":1,\"weight\":2,\"port\":80,\"target\":\"web\"}}",
		       &created, err, sizeof(err)) == 0);
	a = od_registry_list_json(&n);
	CHECK(a && json_object_array_length(a) == 2);
	o = json_object_array_get_idx(a, 1);
	CHECK(json_object_object_get_ex(o, "srv", &v) && json_object_object_get_ex(v, "target", &v) &&
	      !strcmp(json_object_get_string(v), "web"));
	CHECK(json_object_object_get_ex(json_object_array_get_idx(a, 0), "owner", &v) &&
	      !strcmp(json_object_get_string(v), "leader"));
	json_object_put(a);
	od_node_close(&n);
}

int main(void)
{
	snprintf(scratch, sizeof(scratch), "/tmp/test_overlayd_registry.XXXXXX");
	if (!mkdtemp(scratch) || sodium_init() < 0)
		return 1;
	wg_log_set_level(WG_LOG_SILENT);
	TEST_RUN(test_parse_add_normalizes);
	TEST_RUN(test_parse_add_errors);
	TEST_RUN(test_parse_remove);
	TEST_RUN(test_add_update_remove);
	TEST_RUN(test_refused_names_and_limit);
	TEST_RUN(test_failed_save_changes_nothing);
	TEST_RUN(test_worker_applies_lists);
	TEST_RUN(test_list_json);
	if (!getenv("ZL_KEEP")) {
		char cmd[128];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", scratch);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", scratch);
	}
	return TEST_SUMMARY();
}
