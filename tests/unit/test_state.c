/* State file and atomic writes.
 *
 * State: a full state (leader with peers, both allocator snapshots and tokens) round trips; every
 * required field removed, every field given a wrong type, bad keys, bad addresses/prefixes/endpoints,
 * duplicates and future versions each give an error naming the field, with the output left all zero and
 * no private key in the message; truncated, garbage and oversized files are refused clearly; the file is
 * 0600 in a 0700 directory created on demand.
 * Atomic file: a failure injected at each step (and real ones: RLIMIT_FSIZE, a rename onto a directory)
 * leaves the old content intact and no temporary file behind; capped reads; sweeping stray temps.
 * Mutations are applied to a saved good file through JSON pointers (RFC 6901), so every case starts from
 * a state that loads. Scratch files live in /tmp/zl-test-state-XXXXXX, removed at the end unless
 * ZL_KEEP is set in the environment. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <json-c/json.h>
#include <json-c/json_pointer.h>
#include <signal.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include "test.h"
#include "overlay/atomic_file.h"
#include "overlay/state.h"

static char dir[64];            /* per-run scratch directory */
static char good_path[128];     /* a valid state file, rewritten by make_good_file() */
static char bad_path[128];      /* the mutated copy each case loads */
static char priv_b64[ZL_KEY_B64_LEN + 1]; /* must never appear in an error message */

/* ---- fixtures ---- */

static void keypair(uint8_t priv[ZL_KEY_LEN], uint8_t pub[ZL_KEY_LEN])
{
	randombytes_buf(priv, ZL_KEY_LEN);
	crypto_scalarmult_base(pub, priv);
}

static void set_peer(struct zl_state_peer *p, const char *id, const char *ep, const char *ip, uint16_t ka,
		     const char *host, const char *slice)
{
	uint8_t priv[ZL_KEY_LEN];

	keypair(priv, p->public_key);
	snprintf(p->node_id, sizeof(p->node_id), "%s", id);
	snprintf(p->endpoint, sizeof(p->endpoint), "%s", ep);
	snprintf(p->overlay_ip, sizeof(p->overlay_ip), "%s", ip);
	p->keepalive = ka;
	snprintf(p->hostname, sizeof(p->hostname), "%s", host);
	snprintf(p->slice_cidr, sizeof(p->slice_cidr), "%s", slice);
}

static void set_addr_record(struct zl_state_dns_record *r, const char *name, const char *addr, uint32_t ttl,
			    const char *owner)
{
	memset(r, 0, sizeof(*r));
	snprintf(r->name, sizeof(r->name), "%s", name);
	r->kind = ZL_DNS_ADDR;
	snprintf(r->addr, sizeof(r->addr), "%s", addr);
	r->ttl = ttl;
	snprintf(r->owner, sizeof(r->owner), "%s", owner);
}

static void set_srv_record(struct zl_state_dns_record *r, const char *name, uint16_t prio, uint16_t weight,
			   uint16_t port, const char *target, uint32_t ttl)
{
	memset(r, 0, sizeof(*r));
	snprintf(r->name, sizeof(r->name), "%s", name);
	r->kind = ZL_DNS_SRV;
	r->priority = prio;
	r->weight = weight;
	r->port = port;
	snprintf(r->target, sizeof(r->target), "%s", target);
	r->ttl = ttl;
}

/* Service records: two addresses of one name (with a TCP and an HTTP check), a sub-name with the same
 * address as the first (so renaming it makes a duplicate), and two SRV records of one name. */
static void make_dns(struct zl_state *s)
{
	struct zl_state_dns_record *d = calloc(5, sizeof(*d));

	set_addr_record(&d[0], "web", "10.200.0.50", 30, "leader-1");
	d[0].check = (struct zl_state_dns_check){ .kind = ZL_CHECK_TCP, .port = 80, .interval_s = 5, .threshold = 2 };
	set_addr_record(&d[1], "web", "fd00:200::50", 60, "worker-1");
	d[1].check = (struct zl_state_dns_check){ .kind = ZL_CHECK_HTTP, .port = 8080, .interval_s = 10, .threshold = 3 };
	snprintf(d[1].check.path, sizeof(d[1].check.path), "/health?full=1");
	set_addr_record(&d[2], "db.web", "10.200.0.50", 0, "");
	set_srv_record(&d[3], "_http._tcp.web", 10, 5, 80, "web", 30);
	snprintf(d[3].owner, sizeof(d[3].owner), "leader-1");
	set_srv_record(&d[4], "_http._tcp.web", 20, 0, 80, "other.example.", 300);
	s->dns = d;
	s->n_dns = 5;
}

/* A leader with three peers, both allocator snapshots, two tokens and service records. */
static void make_state(struct zl_state *s)
{
	struct zl_state_config *c = &s->config;
	static const char *const slices[][2] = { { "leader-1", "10.200.0.0/28" },
						 { "worker-1", "10.200.0.16/28" },
						 { "worker-3", "10.200.0.48/28" } };

	memset(s, 0, sizeof(*s));
	snprintf(c->node_id, sizeof(c->node_id), "leader-1");
	snprintf(c->cidr, sizeof(c->cidr), "10.200.0.0/16");
	snprintf(c->node_ip, sizeof(c->node_ip), "10.200.0.1");
	snprintf(c->slice_cidr, sizeof(c->slice_cidr), "10.200.0.0/28");
	snprintf(c->interface, sizeof(c->interface), "zl-overlay0");
	c->port = 51820;
	keypair(c->private_key, c->public_key);
	c->is_leader = true;
	c->created_at = 1700000000;
	snprintf(c->hostname, sizeof(c->hostname), "leader");
	snprintf(c->endpoint, sizeof(c->endpoint), "192.0.2.1:51820");

	s->n_peers = 3;
	s->peers = calloc(3, sizeof(*s->peers));
	set_peer(&s->peers[0], "worker-1", "192.0.2.2:51820", "10.200.0.2", 25, "w1", "10.200.0.16/28");
	set_peer(&s->peers[1], "worker-2", "[2001:db8::2]:51820", "10.200.0.3", 0, "", "");
	set_peer(&s->peers[2], "worker-3", "", "10.200.0.4", 10, "w3", "10.200.0.48/28");

	s->ip_allocator.present = true;
	snprintf(s->ip_allocator.cidr, sizeof(s->ip_allocator.cidr), "10.200.0.0/16");
	s->ip_allocator.n_allocated = 4;
	s->ip_allocator.allocated = calloc(4, sizeof(*s->ip_allocator.allocated));
	for (int i = 0; i < 4; i++)
		snprintf(s->ip_allocator.allocated[i].s, ZL_ADDR_STRLEN, "10.200.0.%d", i + 1);

	s->slice_allocator.present = true;
	snprintf(s->slice_allocator.cluster_cidr, ZL_CIDR_STRLEN, "10.200.0.0/16");
	s->slice_allocator.slice_prefix = 28;
	s->slice_allocator.n_assigned = 3;
	s->slice_allocator.assigned = calloc(3, sizeof(*s->slice_allocator.assigned));
	for (int i = 0; i < 3; i++) {
		snprintf(s->slice_allocator.assigned[i].name, ZL_NODE_ID_SIZE, "%s", slices[i][0]);
		snprintf(s->slice_allocator.assigned[i].cidr, ZL_CIDR_STRLEN, "%s", slices[i][1]);
	}

	s->slice_allocator.n_services = 2;
	s->slice_allocator.services = calloc(2, sizeof(*s->slice_allocator.services));
	snprintf(s->slice_allocator.services[0].name, ZL_NODE_ID_SIZE, "web");
	snprintf(s->slice_allocator.services[0].cidr, ZL_CIDR_STRLEN, "10.200.16.0/24");
	snprintf(s->slice_allocator.services[1].name, ZL_NODE_ID_SIZE, "db");
	snprintf(s->slice_allocator.services[1].cidr, ZL_CIDR_STRLEN, "10.200.0.64/28");

	s->n_tokens = 2;
	s->tokens = calloc(2, sizeof(*s->tokens));
	for (int i = 0; i < 2; i++) {
		randombytes_buf(s->tokens[i].id, sizeof(s->tokens[i].id));
		randombytes_buf(s->tokens[i].secret_hash, sizeof(s->tokens[i].secret_hash));
		s->tokens[i].created_at = 1700000000;
		s->tokens[i].expires_at = 1700086400;
		s->tokens[i].max_uses = 1;
		s->tokens[i].uses = (uint32_t)i;
		s->tokens[i].revoked = i == 1;
	}
	make_dns(s);
	zl_state_key_encode(c->private_key, priv_b64);
}

static bool peers_equal(const struct zl_state_peer *a, const struct zl_state_peer *b)
{
	return !strcmp(a->node_id, b->node_id) && !memcmp(a->public_key, b->public_key, ZL_KEY_LEN) &&
	       !strcmp(a->endpoint, b->endpoint) && !strcmp(a->overlay_ip, b->overlay_ip) &&
	       a->keepalive == b->keepalive && !strcmp(a->hostname, b->hostname) &&
	       !strcmp(a->slice_cidr, b->slice_cidr);
}

static bool tokens_equal(const struct zl_state_token *a, const struct zl_state_token *b)
{
	return !memcmp(a->id, b->id, sizeof(a->id)) && !memcmp(a->secret_hash, b->secret_hash, sizeof(a->secret_hash)) &&
	       a->created_at == b->created_at && a->expires_at == b->expires_at && a->max_uses == b->max_uses &&
	       a->uses == b->uses && a->revoked == b->revoked;
}

static bool dns_equal(const struct zl_state_dns_record *a, const struct zl_state_dns_record *b)
{
	const struct zl_state_dns_check *x = &a->check, *y = &b->check;

	return !strcmp(a->name, b->name) && a->kind == b->kind && !strcmp(a->addr, b->addr) &&
	       a->priority == b->priority && a->weight == b->weight && a->port == b->port &&
	       !strcmp(a->target, b->target) && a->ttl == b->ttl && !strcmp(a->owner, b->owner) &&
	       x->kind == y->kind && x->port == y->port && !strcmp(x->path, y->path) &&
	       x->interval_s == y->interval_s && x->threshold == y->threshold;
}

static bool config_equal(const struct zl_state_config *a, const struct zl_state_config *b)
{
	return !strcmp(a->cidr, b->cidr) && !strcmp(a->node_ip, b->node_ip) && !strcmp(a->interface, b->interface) &&
	       a->port == b->port && !memcmp(a->private_key, b->private_key, ZL_KEY_LEN) &&
	       !memcmp(a->public_key, b->public_key, ZL_KEY_LEN) && a->is_leader == b->is_leader &&
	       a->created_at == b->created_at && !strcmp(a->slice_cidr, b->slice_cidr) &&
	       !strcmp(a->hostname, b->hostname) && !strcmp(a->endpoint, b->endpoint) &&
	       !strcmp(a->node_id, b->node_id);
}

static bool states_equal(const struct zl_state *a, const struct zl_state *b)
{
	const struct zl_state_ip_allocator *ia = &a->ip_allocator, *ib = &b->ip_allocator;
	const struct zl_state_slice_allocator *sa = &a->slice_allocator, *sb = &b->slice_allocator;

	if (!config_equal(&a->config, &b->config) || a->n_peers != b->n_peers || a->n_tokens != b->n_tokens ||
	    ia->present != ib->present || ia->n_allocated != ib->n_allocated || strcmp(ia->cidr, ib->cidr) ||
	    sa->present != sb->present || sa->n_assigned != sb->n_assigned || sa->slice_prefix != sb->slice_prefix ||
	    strcmp(sa->cluster_cidr, sb->cluster_cidr))
		return false;
	for (size_t i = 0; i < a->n_peers; i++)
		if (!peers_equal(&a->peers[i], &b->peers[i]))
			return false;
	for (size_t i = 0; i < a->n_tokens; i++)
		if (!tokens_equal(&a->tokens[i], &b->tokens[i]))
			return false;
	for (size_t i = 0; i < ia->n_allocated; i++)
		if (strcmp(ia->allocated[i].s, ib->allocated[i].s))
			return false;
	if (sa->n_services != sb->n_services || a->n_dns != b->n_dns)
		return false;
	for (size_t i = 0; i < a->n_dns; i++)
		if (!dns_equal(&a->dns[i], &b->dns[i]))
			return false;
	for (size_t i = 0; i < sa->n_assigned; i++)
		if (strcmp(sa->assigned[i].name, sb->assigned[i].name) || strcmp(sa->assigned[i].cidr, sb->assigned[i].cidr))
			return false;
	for (size_t i = 0; i < sa->n_services; i++)
		if (strcmp(sa->services[i].name, sb->services[i].name) || strcmp(sa->services[i].cidr, sb->services[i].cidr))
			return false;
	return true;
}

static void make_good_file(void)
{
	struct zl_state s;

	make_state(&s);
	if (zl_state_save(good_path, &s) != 0) {
		fprintf(stderr, "cannot write the good state file\n");
		abort();
	}
	zl_state_free(&s);
}

static bool all_zero(const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		if (b[i])
			return false;
	return true;
}

static void write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");

	if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0)
		abort();
}

static size_t read_file(const char *path, char *buf, size_t cap)
{
	FILE *f = fopen(path, "rb");
	size_t n;

	if (!f)
		return (size_t)-1;
	n = fread(buf, 1, cap - 1, f);
	buf[n] = '\0';
	fclose(f);
	return n;
}

/* Loads path and expects failure with code and an error containing needle; the output must be all zero
 * and the message must not contain the private key. */
static void expect_error_at(const char *path, int code, const char *needle, const char *what, int line)
{
	struct zl_state s;
	char err[512] = "";
	int r;

	memset(&s, 0xa5, sizeof(s));
	r = zl_state_load(path, &s, err, sizeof(err));
	if (r != code || !strstr(err, needle))
		fprintf(stderr, "  line %d (%s): got %d \"%s\", want %d \"%s\"\n", line, what, r, err, code, needle);
	CHECK(r == code);
	CHECK(strstr(err, needle) != NULL);
	CHECK(strncmp(err, "state: ", 7) == 0);
	CHECK(!strstr(err, priv_b64));
	CHECK(all_zero(&s, sizeof(s)));
	zl_state_free(&s);
}
#define expect_error(path, code, needle, what) expect_error_at(path, code, needle, what, __LINE__)

static void expect_ok_at(const char *path, const char *what, int line)
{
	struct zl_state s;
	char err[512] = "";
	int r = zl_state_load(path, &s, err, sizeof(err));

	if (r)
		fprintf(stderr, "  line %d (%s): unexpected error %d \"%s\"\n", line, what, r, err);
	CHECK(r == 0);
	zl_state_free(&s);
}
#define expect_ok(path, what) expect_ok_at(path, what, __LINE__)

/* Writes good_path with the JSON pointer `ptr` set to the JSON text `value`, or removed (value NULL), to
 * bad_path. */
static void mutate(const char *ptr, const char *value)
{
	json_object *root = json_object_from_file(good_path), *parent;
	char parent_ptr[128], *slash;
	const char *last;

	if (!root)
		abort();
	if (value) {
		json_object *v = json_tokener_parse(value);
		if (!v && strcmp(value, "null"))
			abort();
		if (json_pointer_set(&root, ptr, v) != 0)
			abort();
	} else {
		snprintf(parent_ptr, sizeof(parent_ptr), "%s", ptr);
		slash = strrchr(parent_ptr, '/');
		*slash = '\0';
		last = slash + 1;
		if (json_pointer_get(root, parent_ptr, &parent) != 0)
			abort();
		if (json_object_is_type(parent, json_type_array))
			json_object_array_del_idx(parent, (size_t)atoi(last), 1);
		else
			json_object_object_del(parent, last);
	}
	if (json_object_to_file_ext(bad_path, root, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE) != 0)
		abort();
	json_object_put(root);
}

/* ---- state: round trip, modes ---- */

static void test_roundtrip(void)
{
	struct zl_state a, b;
	char err[256] = "", first[8192], second[8192];

	make_state(&a);
	CHECK(zl_state_validate(&a, err, sizeof(err)));
	CHECK(zl_state_save(good_path, &a) == 0);
	CHECK(zl_state_load(good_path, &b, err, sizeof(err)) == 0);
	CHECK(states_equal(&a, &b));
	/* Saving what was loaded writes the same bytes: the format is stable. */
	read_file(good_path, first, sizeof(first));
	CHECK(zl_state_save(good_path, &b) == 0);
	read_file(good_path, second, sizeof(second));
	CHECK(!strcmp(first, second));
	CHECK(first[strlen(first) - 1] == '\n');
	CHECK(strstr(first, "\"10.200.0.0/16\"") != NULL); /* no "\/" escaping */
	zl_state_free(&a);
	zl_state_free(&b);
}

/* A worker: no allocators, no tokens, no peers beyond the leader, optional fields empty. */
static void test_roundtrip_minimal(void)
{
	struct zl_state a, b;
	char err[256] = "";

	make_state(&a);
	free(a.tokens);
	free(a.ip_allocator.allocated);
	free(a.slice_allocator.assigned);
	free(a.slice_allocator.services);
	memset(&a.ip_allocator, 0, sizeof(a.ip_allocator));
	memset(&a.slice_allocator, 0, sizeof(a.slice_allocator));
	a.tokens = NULL;
	a.n_tokens = 0;
	a.n_peers = 1;
	a.config.is_leader = false;
	a.config.hostname[0] = a.config.endpoint[0] = a.config.slice_cidr[0] = '\0';
	CHECK(zl_state_save(bad_path, &a) == 0);
	CHECK(zl_state_load(bad_path, &b, err, sizeof(err)) == 0);
	CHECK(states_equal(&a, &b));
	CHECK(!b.ip_allocator.present && !b.slice_allocator.present && b.n_tokens == 0 && b.tokens == NULL);
	zl_state_free(&b);
	a.n_peers = 0;
	CHECK(zl_state_save(bad_path, &a) == 0);
	CHECK(zl_state_load(bad_path, &b, err, sizeof(err)) == 0 && b.n_peers == 0 && b.peers == NULL);
	zl_state_free(&a);
	zl_state_free(&b);
}

/* IPv6 overlay with non-canonical spellings: load/save give the canonical text. */
static void test_roundtrip_ipv6_canonical(void)
{
	struct zl_state a, b;
	char err[256] = "";

	make_state(&a);
	snprintf(a.config.cidr, ZL_CIDR_STRLEN, "FD00:0200:0::/48");
	snprintf(a.config.node_ip, ZL_ADDR_STRLEN, "fd00:200:0:0::1");
	snprintf(a.config.slice_cidr, ZL_CIDR_STRLEN, "fd00:200:0:0::/64");
	snprintf(a.config.hostname, ZL_HOSTNAME_SIZE, "Leader");
	snprintf(a.peers[0].overlay_ip, ZL_ADDR_STRLEN, "fd00:200::2");
	snprintf(a.peers[0].slice_cidr, ZL_CIDR_STRLEN, "fd00:200:0:1::/64");
	snprintf(a.peers[1].overlay_ip, ZL_ADDR_STRLEN, "FD00:200::3");
	snprintf(a.peers[2].overlay_ip, ZL_ADDR_STRLEN, "fd00:200::4");
	snprintf(a.peers[2].slice_cidr, ZL_CIDR_STRLEN, "fd00:200:0:2::/64");
	snprintf(a.ip_allocator.cidr, ZL_CIDR_STRLEN, "fd00:200::/48");
	for (int i = 0; i < 4; i++)
		snprintf(a.ip_allocator.allocated[i].s, ZL_ADDR_STRLEN, "fd00:200::%d", i + 1);
	snprintf(a.slice_allocator.cluster_cidr, ZL_CIDR_STRLEN, "fd00:200::/48");
	a.slice_allocator.slice_prefix = 64;
	for (int i = 0; i < 3; i++)
		snprintf(a.slice_allocator.assigned[i].cidr, ZL_CIDR_STRLEN, "fd00:200:0:%x::/64", i);
	snprintf(a.slice_allocator.services[0].cidr, ZL_CIDR_STRLEN, "fd00:200:0:100::/56");
	snprintf(a.slice_allocator.services[1].cidr, ZL_CIDR_STRLEN, "FD00:200:0:0040:0::/64");
	CHECK(zl_state_save(bad_path, &a) == 0);
	CHECK(zl_state_load(bad_path, &b, err, sizeof(err)) == 0);
	CHECK(!strcmp(b.config.cidr, "fd00:200::/48"));
	CHECK(!strcmp(b.config.node_ip, "fd00:200::1"));
	CHECK(!strcmp(b.config.slice_cidr, "fd00:200::/64"));
	CHECK(!strcmp(b.config.hostname, "leader"));
	CHECK(!strcmp(b.peers[1].overlay_ip, "fd00:200::3"));
	CHECK(!strcmp(b.slice_allocator.assigned[2].cidr, "fd00:200:0:2::/64"));
	CHECK(!strcmp(b.slice_allocator.services[1].cidr, "fd00:200:0:40::/64"));
	zl_state_free(&a);
	zl_state_free(&b);
}

static void test_file_and_dir_modes(void)
{
	struct zl_state s;
	char path[256], sub[256];
	struct stat st;
	mode_t old = umask(0);

	make_state(&s);
	snprintf(path, sizeof(path), "%s/new/deeper/state.json", dir);
	CHECK(zl_state_save(path, &s) == 0);
	CHECK(stat(path, &st) == 0 && (st.st_mode & 07777) == 0600);
	snprintf(sub, sizeof(sub), "%s/new", dir);
	CHECK(stat(sub, &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 07777) == 0700);
	snprintf(sub, sizeof(sub), "%s/new/deeper", dir);
	CHECK(stat(sub, &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 07777) == 0700);
	/* An existing file with a wider mode is replaced by a 0600 one. */
	CHECK(chmod(path, 0644) == 0);
	umask(077);
	CHECK(zl_state_save(path, &s) == 0);
	CHECK(stat(path, &st) == 0 && (st.st_mode & 07777) == 0600);
	/* A file where the directory should be. */
	snprintf(sub, sizeof(sub), "%s/new/deeper/state.json/x.json", dir);
	CHECK(zl_state_save(sub, &s) == -ENOTDIR);
	umask(old);
	zl_state_free(&s);
}

static void test_save_refuses_invalid(void)
{
	struct zl_state s;
	char err[256] = "", before[8192], after[8192];

	make_good_file();
	read_file(good_path, before, sizeof(before));
	make_state(&s);
	s.peers[2].public_key[0] ^= 1;
	memcpy(s.peers[2].public_key, s.peers[0].public_key, ZL_KEY_LEN);
	CHECK(!zl_state_validate(&s, err, sizeof(err)));
	CHECK(strstr(err, "state: peers[2].public_key: duplicate of peers[0].public_key") != NULL);
	CHECK(zl_state_save(good_path, &s) == -EINVAL);
	read_file(good_path, after, sizeof(after));
	CHECK(!strcmp(before, after));
	/* A string that fills its whole array is refused, not read past. */
	memcpy(s.peers[2].public_key, s.peers[1].public_key, ZL_KEY_LEN);
	memset(s.peers[1].public_key, 7, ZL_KEY_LEN);
	memset(s.config.hostname, 'a', sizeof(s.config.hostname));
	CHECK(!zl_state_validate(&s, err, sizeof(err)) && strstr(err, "config.hostname: is not NUL-terminated"));
	s.config.hostname[0] = '\0';
	CHECK(zl_state_validate(&s, err, sizeof(err)));
	/* Counts without arrays. */
	free(s.tokens);
	s.tokens = NULL;
	CHECK(!zl_state_validate(&s, err, sizeof(err)));
	s.n_tokens = 0;
	CHECK(zl_state_validate(&s, err, sizeof(err)));
	zl_state_free(&s);
}

static void test_free_wipes(void)
{
	struct zl_state s;

	make_state(&s);
	zl_state_free(&s);
	CHECK(all_zero(&s, sizeof(s)));
	zl_state_free(&s); /* a second free is harmless */
	zl_state_free(NULL);
}

/* ---- state: strict parsing ---- */

struct path_case {
	const char *ptr, *shown;
};

static void test_missing_required(void)
{
	static const struct path_case required[] = {
		{ "/version", "version" },
		{ "/config", "config" },
		{ "/peers", "peers" },
		{ "/config/node_id", "config.node_id" },
		{ "/config/cidr", "config.cidr" },
		{ "/config/node_ip", "config.node_ip" },
		{ "/config/interface", "config.interface" },
		{ "/config/port", "config.port" },
		{ "/config/public_key", "config.public_key" },
		{ "/config/private_key", "config.private_key" },
		{ "/config/is_leader", "config.is_leader" },
		{ "/config/created_at", "config.created_at" },
		{ "/peers/1/node_id", "peers[1].node_id" },
		{ "/peers/1/public_key", "peers[1].public_key" },
		{ "/peers/1/overlay_ip", "peers[1].overlay_ip" },
		{ "/ip_allocator/cidr", "ip_allocator.cidr" },
		{ "/ip_allocator/allocated", "ip_allocator.allocated" },
		{ "/slice_allocator/cluster_cidr", "slice_allocator.cluster_cidr" },
		{ "/slice_allocator/slice_prefix", "slice_allocator.slice_prefix" },
		{ "/slice_allocator/assigned", "slice_allocator.assigned" },
		{ "/tokens/1/id", "tokens[1].id" },
		{ "/tokens/1/secret_hash", "tokens[1].secret_hash" },
		{ "/tokens/1/created_at", "tokens[1].created_at" },
		{ "/tokens/1/expires_at", "tokens[1].expires_at" },
		{ "/tokens/1/max_uses", "tokens[1].max_uses" },
		{ "/tokens/1/uses", "tokens[1].uses" },
		{ "/tokens/1/revoked", "tokens[1].revoked" },
	};
	char want[160];

	make_good_file();
	for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
		snprintf(want, sizeof(want), "state: %s: missing required field", required[i].shown);
		mutate(required[i].ptr, NULL);
		expect_error(bad_path, -EINVAL, want, required[i].ptr);
		/* JSON null counts as missing. */
		mutate(required[i].ptr, "null");
		expect_error(bad_path, -EINVAL, want, required[i].ptr);
	}
}

static void test_optional_fields(void)
{
	static const char *const optional[] = {
		"/config/slice_cidr", "/config/hostname", "/config/endpoint", "/peers/0/endpoint",
		"/peers/0/keepalive", "/peers/0/hostname", "/peers/0/slice_cidr", "/ip_allocator",
		"/slice_allocator", "/slice_allocator/services", "/tokens", "/dns",
	};
	struct zl_state s;
	char err[256];

	make_good_file();
	for (size_t i = 0; i < sizeof(optional) / sizeof(optional[0]); i++) {
		mutate(optional[i], NULL);
		expect_ok(bad_path, optional[i]);
		mutate(optional[i], "null");
		expect_ok(bad_path, optional[i]);
	}
	mutate("/peers/0/keepalive", NULL);
	CHECK(zl_state_load(bad_path, &s, err, sizeof(err)) == 0 && s.peers[0].keepalive == ZL_STATE_DEFAULT_KEEPALIVE);
	zl_state_free(&s);
}

struct value_case {
	const char *ptr, *value, *needle;
};

/* needle NULL: the mutation is valid and must load. */
static void run_value_cases(const struct value_case *cases, size_t n)
{
	make_good_file();
	for (size_t i = 0; i < n; i++) {
		mutate(cases[i].ptr, cases[i].value);
		if (cases[i].needle)
			expect_error(bad_path, -EINVAL, cases[i].needle, cases[i].value);
		else
			expect_ok(bad_path, cases[i].value);
	}
}

static void test_wrong_types(void)
{
	static const struct value_case cases[] = {
		{ "", "[]", "state: the document is an array, expected an object" },
		{ "/version", "\"1\"", "state: version: expected an integer, got a string" },
		{ "/version", "1.0", "state: version: expected an integer, got a number" },
		{ "/config", "[]", "state: config: expected an object, got an array" },
		{ "/peers", "{}", "state: peers: expected an array, got an object" },
		{ "/peers/1", "5", "state: peers[1]: expected an object, got an integer" },
		{ "/tokens", "\"x\"", "state: tokens: expected an array, got a string" },
		{ "/config/port", "\"51820\"", "state: config.port: expected an integer, got a string" },
		{ "/config/port", "51820.5", "state: config.port: expected an integer, got a number" },
		{ "/config/port", "0", "state: config.port: must be 1 to 65535" },
		{ "/config/port", "65536", "state: config.port: must be 1 to 65535" },
		{ "/config/is_leader", "1", "state: config.is_leader: expected true or false, got an integer" },
		{ "/config/cidr", "10", "state: config.cidr: expected a string, got an integer" },
		{ "/config/created_at", "-1", "state: config.created_at: must be 0 to" },
		{ "/config/created_at", "99999999999999999999", "state: config.created_at: must be 0 to" },
		{ "/config/created_at", "true", "state: config.created_at: expected an integer, got true or false" },
		{ "/config/public_key", "[]", "state: config.public_key: expected a string, got an array" },
		{ "/config/private_key", "{}", "state: config.private_key: expected a string, got an object" },
		{ "/config/node_id", "\"a\\u0000b\"", "state: config.node_id: contains a NUL character" },
		{ "/config/interface", "\"1234567890123456\"", "state: config.interface: is longer than 15 bytes" },
		{ "/peers/0/keepalive", "-1", "state: peers[0].keepalive: must be 0 to 65535" },
		{ "/peers/0/keepalive", "65536", "state: peers[0].keepalive: must be 0 to 65535" },
		{ "/peers/2/hostname", "false", "state: peers[2].hostname: expected a string, got true or false" },
		{ "/ip_allocator", "[]", "state: ip_allocator: expected an object, got an array" },
		{ "/ip_allocator/allocated/0", "7", "state: ip_allocator.allocated[0]: expected a string, got an integer" },
		{ "/slice_allocator/slice_prefix", "\"28\"", "state: slice_allocator.slice_prefix: expected an integer" },
		{ "/slice_allocator/slice_prefix", "129", "state: slice_allocator.slice_prefix: must be 0 to 128" },
		{ "/slice_allocator/assigned/1", "\"worker-1\"", "state: slice_allocator.assigned[1]: expected an array" },
		{ "/slice_allocator/assigned/1", "[\"worker-1\"]", "state: slice_allocator.assigned[1]: expected a [node, cidr] pair" },
		{ "/slice_allocator/assigned/1", "[\"a\", \"10.200.0.16/28\", \"x\"]", "expected a [node, cidr] pair" },
		{ "/slice_allocator/assigned/1", "[1, \"10.200.0.16/28\"]", "state: slice_allocator.assigned[1].node: expected a string" },
		{ "/slice_allocator/assigned/1", "[\"a\", 2]", "state: slice_allocator.assigned[1].cidr: expected a string" },
		{ "/slice_allocator/services", "{}", "state: slice_allocator.services: expected an array, got an object" },
		{ "/slice_allocator/services/0", "[\"web\"]", "state: slice_allocator.services[0]: expected a [name, cidr] pair" },
		{ "/slice_allocator/services/0", "[7, \"10.200.16.0/24\"]", "state: slice_allocator.services[0].name: expected a string, got an integer" },
		{ "/tokens/0/revoked", "\"no\"", "state: tokens[0].revoked: expected true or false, got a string" },
		{ "/tokens/0/max_uses", "0", "state: tokens[0].max_uses: must be 1 to 4294967295" },
		{ "/tokens/0/uses", "4294967296", "state: tokens[0].uses: must be 0 to 4294967295" },
		{ "/tokens/0/expires_at", "0", "state: tokens[0].expires_at: must be 1 to" },
		{ "/tokens/0/created_at", "1800000000", "state: tokens[0].created_at: is after expires_at" },
		{ "/tokens/0/id", "\"0123456789abcde\"", "state: tokens[0].id: expected 16 hexadecimal digits" },
		{ "/tokens/0/id", "\"0123456789abcdeg\"", "state: tokens[0].id: expected 16 hexadecimal digits" },
		{ "/tokens/0/secret_hash", "\"00\"", "state: tokens[0].secret_hash: expected 64 hexadecimal digits" },
		/* Unknown fields are refused: a typo must not silently drop a setting. */
		{ "/config/prot", "51820", "state: config: unknown field \"prot\"" },
		{ "/peers/0/candidates", "[]", "state: peers[0]: unknown field \"candidates\"" },
		{ "/extra", "1", "state: unknown field \"extra\"" },
		{ "/tokens/1/used", "true", "state: tokens[1]: unknown field \"used\"" },
	};

	run_value_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

/* Base64 of a real key with one character changed so that it no longer is a canonical 32-byte key. */
static void test_bad_keys(void)
{
	static const char *const fields[] = { "/config/public_key", "/config/private_key", "/peers/1/public_key" };
	static const char *const shown[] = { "config.public_key", "config.private_key", "peers[1].public_key" };
	char bad[8][72], value[96], want[128];
	uint8_t k[ZL_KEY_LEN];
	char b64[ZL_KEY_B64_LEN + 1];

	randombytes_buf(k, sizeof(k));
	k[31] &= 0xf0; /* so the last data character is 'A', 'Q', 'g' or 'w' */
	zl_state_key_encode(k, b64);
	CHECK(zl_state_key_decode(b64, k));
	snprintf(bad[0], 72, "%s", "");
	snprintf(bad[1], 72, "%.43s", b64);                      /* 43 characters */
	snprintf(bad[2], 72, "%s=", b64);                        /* 45 characters */
	snprintf(bad[3], 72, "%.40s!!!=", b64);                  /* not base64 */
	snprintf(bad[4], 72, "%.42s%c=", b64, b64[42] + 1);      /* non-zero padding bits */
	snprintf(bad[5], 72, "%.43sA", b64);                     /* no '=' */
	snprintf(bad[6], 72, "%.20s-_%.21s", b64, b64 + 22);     /* URL-safe alphabet */
	snprintf(bad[7], 72, "%.64s", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"); /* hex */
	make_good_file();
	for (size_t f = 0; f < 3; f++) {
		for (size_t i = 0; i < 8; i++) {
			snprintf(value, sizeof(value), "\"%.71s\"", bad[i]);
			snprintf(want, sizeof(want), "state: %s: not a valid base64 key", shown[f]);
			mutate(fields[f], value);
			expect_error(bad_path, -EINVAL, want, bad[i]);
		}
	}
	/* A well-formed public key that does not belong to the private key. */
	snprintf(value, sizeof(value), "\"%s\"", b64);
	mutate("/config/public_key", value);
	expect_error(bad_path, -EINVAL, "state: config.public_key: does not match config.private_key", "mismatch");
	/* The private key of another pair: same message, and the key itself is never shown. */
	mutate("/config/private_key", value);
	expect_error(bad_path, -EINVAL, "state: config.public_key: does not match config.private_key", "mismatch");
	{
		struct zl_state s;
		char err[256];
		CHECK(zl_state_load(bad_path, &s, err, sizeof(err)) == -EINVAL && !strstr(err, b64));
	}
}

static void test_bad_addresses(void)
{
	static const struct value_case cases[] = {
		{ "/config/cidr", "\"10.200.0.0\"", "state: config.cidr: \"10.200.0.0\" is not a prefix (ADDRESS/LENGTH)" },
		{ "/config/cidr", "\"10.200.0.0/\"", "is not a prefix" },
		{ "/config/cidr", "\"10.200.0.0/016\"", "is not a prefix" },
		{ "/config/cidr", "\"10.200.0.0/+16\"", "is not a prefix" },
		{ "/config/cidr", "\"10.300.0.0/16\"", "is not a prefix" },
		{ "/config/cidr", "\"10.200.0.0/33\"", "state: config.cidr: \"10.200.0.0/33\" has a prefix length longer than the address" },
		{ "/config/cidr", "\"fd00::/129\"", "has a prefix length longer than the address" },
		{ "/config/cidr", "\"10.200.0.1/16\"", "state: config.cidr: \"10.200.0.1/16\" has host bits set" },
		{ "/config/node_ip", "\"10.200.0\"", "state: config.node_ip: \"10.200.0\" is not an IPv4 or IPv6 address" },
		{ "/config/node_ip", "\"010.200.0.1\"", "is not an IPv4 or IPv6 address" },
		{ "/config/node_ip", "\" 10.200.0.1\"", "is not an IPv4 or IPv6 address" },
		{ "/config/node_ip", "\"10.201.0.1\"", "state: config.node_ip: \"10.201.0.1\" is not inside config.cidr" },
		{ "/config/node_ip", "\"fd00::1\"", "is not inside config.cidr" },
		{ "/config/slice_cidr", "\"10.201.0.0/28\"", "state: config.slice_cidr: \"10.201.0.0/28\" is not inside config.cidr" },
		{ "/config/slice_cidr", "\"10.0.0.0/8\"", "is not inside config.cidr" },
		{ "/peers/1/overlay_ip", "\"10.200.0.1\"", "state: peers[1].overlay_ip: is this node's own address (config.node_ip)" },
		{ "/peers/1/overlay_ip", "\"abc\"", "state: peers[1].overlay_ip: \"abc\" is not an IPv4 or IPv6 address" },
		{ "/peers/1/overlay_ip", "\"10.100.0.3\"", "is not inside config.cidr" },
		{ "/peers/2/slice_cidr", "\"10.200.0.49/28\"", "state: peers[2].slice_cidr: \"10.200.0.49/28\" has host bits set" },
		{ "/ip_allocator/cidr", "\"x/16\"", "state: ip_allocator.cidr: \"x/16\" is not a prefix" },
		{ "/ip_allocator/allocated/2", "\"10.201.0.3\"", "state: ip_allocator.allocated[2]: \"10.201.0.3\" is not inside ip_allocator.cidr" },
		{ "/ip_allocator/allocated/3", "\"10.200.0.2\"", "state: ip_allocator.allocated[3]: duplicate of ip_allocator.allocated[1]" },
		{ "/slice_allocator/cluster_cidr", "\"10.200.0.0/33\"", "state: slice_allocator.cluster_cidr:" },
		{ "/slice_allocator/slice_prefix", "16", "state: slice_allocator.slice_prefix: must be longer than the cluster prefix (/16) and at most /32" },
		{ "/slice_allocator/slice_prefix", "33", "and at most /32" },
		{ "/slice_allocator/assigned/1/1", "\"10.200.0.16/29\"", "state: slice_allocator.assigned[1].cidr: \"10.200.0.16/29\" is not a /28 slice" },
		{ "/slice_allocator/assigned/1/1", "\"10.201.0.16/28\"", "state: slice_allocator.assigned[1].cidr: \"10.201.0.16/28\" is not inside slice_allocator.cluster_cidr" },
		{ "/slice_allocator/assigned/2/1", "\"10.200.0.16/28\"", "state: slice_allocator.assigned[2].cidr: overlaps slice_allocator.assigned[1]" },
		{ "/slice_allocator/services/0/1", "\"10.200.0.0/24\"", "state: slice_allocator.assigned[0].cidr: overlaps slice_allocator.services[0]" },
		{ "/slice_allocator/services/0/1", "\"10.200.0.64/28\"", "state: slice_allocator.services[1].cidr: overlaps slice_allocator.services[0]" },
		{ "/slice_allocator/services/1/1", "\"10.200.0.16/28\"", "state: slice_allocator.services[1].cidr: overlaps slice_allocator.assigned[1]" },
		{ "/slice_allocator/services/1/1", "\"10.200.0.64/29\"", "state: slice_allocator.services[1].cidr: \"10.200.0.64/29\" must be longer than /16 and at most /28" },
		{ "/slice_allocator/services/1/1", "\"10.200.0.0/16\"", "must be longer than /16 and at most /28" },
		{ "/slice_allocator/services/1/1", "\"10.201.0.0/24\"", "state: slice_allocator.services[1].cidr: \"10.201.0.0/24\" is not inside slice_allocator.cluster_cidr" },
		{ "/slice_allocator/services/1/0", "\"web\"", "state: slice_allocator.services[1].name: duplicate of slice_allocator.services[0].name" },
		{ "/slice_allocator/services/1/0", "\"\"", "state: slice_allocator.services[1].name: is empty" },
		{ "/slice_allocator/services/1/0", "\"leader-1\"", NULL }, /* names of nodes and services are separate */
		{ "/slice_allocator/assigned/2/0", "\"worker-1\"", "state: slice_allocator.assigned[2].node: duplicate of slice_allocator.assigned[1].node" },
		{ "/config/endpoint", "\"192.0.2.1\"", "state: config.endpoint: \"192.0.2.1\" is not HOST:PORT" },
		{ "/config/endpoint", "\"192.0.2.1:0\"", "is not HOST:PORT" },
		{ "/config/endpoint", "\"192.0.2.1:65536\"", "is not HOST:PORT" },
		{ "/config/endpoint", "\"192.0.2.1:051820\"", "is not HOST:PORT" },
		{ "/config/endpoint", "\"fd00::1:51820\"", "is not HOST:PORT" },
		{ "/config/endpoint", "\"[fd00::1]51820\"", "is not HOST:PORT" },
		{ "/config/endpoint", "\"[10.0.0.1]:51820\"", "is not HOST:PORT" },
		{ "/config/endpoint", "\"300.1.1.1:51820\"", "is not HOST:PORT" },
		{ "/config/endpoint", "\"-bad.example:51820\"", "is not HOST:PORT" },
		{ "/config/endpoint", "\"bad..example:51820\"", "is not HOST:PORT" },
		{ "/config/endpoint", "\"bad_host:51820\"", "is not HOST:PORT" },
		{ "/peers/0/endpoint", "\":51820\"", "state: peers[0].endpoint: \":51820\" is not HOST:PORT" },
		{ "/config/interface", "\"bad/name\"", "state: config.interface: interface name contains '/'" },
		{ "/config/interface", "\"\"", "state: config.interface: interface name is empty" },
		{ "/config/interface", "\"..\"", "state: config.interface: interface name cannot be" },
		{ "/config/hostname", "\"-x\"", "state: config.hostname: hostname cannot start or end with '-'" },
		{ "/peers/2/hostname", "\"a.b\"", "state: peers[2].hostname: hostname may contain only letters" },
		{ "/config/node_id", "\"\"", "state: config.node_id: is empty" },
		{ "/config/node_id", "\"has space\"", "state: config.node_id: may contain only printable ASCII without spaces" },
		{ "/peers/0/node_id", "\"leader-1\"", "state: peers[0].node_id: is this node's own id (config.node_id)" },
	};

	run_value_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

/* Endpoints that must load (the syntax check is not over-strict). */
static void test_good_endpoints(void)
{
	static const char *const ok[] = {
		"\"[2001:db8::1]:1\"", "\"[::1]:65535\"", "\"leader.example.com:51820\"", "\"localhost:51820\"",
		"\"a-1.b2:7\"", "\"10.0.0.1:51820\"", "\"host.example.:51820\"",
	};

	make_good_file();
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		mutate("/config/endpoint", ok[i]);
		if (i == 6) {
			/* A trailing dot gives an empty last label: refused. */
			expect_error(bad_path, -EINVAL, "is not HOST:PORT", ok[i]);
			continue;
		}
		expect_ok(bad_path, ok[i]);
	}
}

static void test_duplicates(void)
{
	static const struct value_case cases[] = {
		{ "/peers/2/node_id", "\"worker-1\"", "state: peers[2].node_id: duplicate of peers[0].node_id" },
		{ "/peers/2/overlay_ip", "\"10.200.0.3\"", "state: peers[2].overlay_ip: duplicate of peers[1].overlay_ip" },
		{ "/tokens/1/id", NULL, "state: tokens[1].id: duplicate of tokens[0].id" },
	};
	json_object *root, *v;
	char value[80], want[128];

	run_value_cases(cases, 2);
	/* Same public key: copy peers[0]'s into peers[2], and the node's own key into peers[1]. */
	root = json_object_from_file(good_path);
	json_pointer_get(root, "/peers/0/public_key", &v);
	snprintf(value, sizeof(value), "\"%s\"", json_object_get_string(v));
	mutate("/peers/2/public_key", value);
	expect_error(bad_path, -EINVAL, "state: peers[2].public_key: duplicate of peers[0].public_key", "dup key");
	json_pointer_get(root, "/config/public_key", &v);
	snprintf(value, sizeof(value), "\"%s\"", json_object_get_string(v));
	mutate("/peers/1/public_key", value);
	expect_error(bad_path, -EINVAL, "state: peers[1].public_key: is this node's own key (config.public_key)", "own");
	json_pointer_get(root, "/tokens/0/id", &v);
	snprintf(value, sizeof(value), "\"%s\"", json_object_get_string(v));
	mutate("/tokens/1/id", value);
	snprintf(want, sizeof(want), "%s", cases[2].needle);
	expect_error(bad_path, -EINVAL, want, "dup token");
	/* Upper-case hex is the same id. */
	for (char *p = value; *p; p++)
		if (*p >= 'a' && *p <= 'f')
			*p = (char)(*p - 'a' + 'A');
	mutate("/tokens/1/id", value);
	expect_error(bad_path, -EINVAL, want, "dup token, upper case");
	json_object_put(root);
}

/* ---- state: service records ("dns") ---- */

/* A file written before service records existed has no "dns": it loads with none, and a state without
 * records is saved without the field. */
static void test_dns_absent(void)
{
	struct zl_state s;
	char err[256] = "", text[8192];

	make_good_file();
	mutate("/dns", NULL);
	CHECK(zl_state_load(bad_path, &s, err, sizeof(err)) == 0);
	CHECK(s.n_dns == 0 && s.dns == NULL);
	CHECK(zl_state_save(bad_path, &s) == 0);
	read_file(bad_path, text, sizeof(text));
	CHECK(strstr(text, "\"dns\"") == NULL);
	zl_state_free(&s);
	read_file(good_path, text, sizeof(text));
	CHECK(strstr(text, "\"dns\"") != NULL && strstr(text, "\"_http._tcp.web\"") != NULL);
}

/* Addresses are kept canonical; the check's fields and the SRV fields survive a round trip. */
static void test_dns_canonical(void)
{
	struct zl_state s;
	char err[256] = "";

	make_good_file();
	mutate("/dns/1/addr", "\"FD00:200:0:0::0050\"");
	CHECK(zl_state_load(bad_path, &s, err, sizeof(err)) == 0);
	CHECK(!strcmp(s.dns[1].addr, "fd00:200::50"));
	CHECK(s.dns[1].check.kind == ZL_CHECK_HTTP && !strcmp(s.dns[1].check.path, "/health?full=1") &&
	      s.dns[1].check.port == 8080 && s.dns[1].check.interval_s == 10 && s.dns[1].check.threshold == 3);
	CHECK(s.dns[4].kind == ZL_DNS_SRV && s.dns[4].priority == 20 && s.dns[4].weight == 0 && s.dns[4].port == 80 &&
	      !strcmp(s.dns[4].target, "other.example.") && s.dns[4].check.kind == ZL_CHECK_NONE);
	CHECK(s.dns[2].owner[0] == '\0' && s.dns[2].ttl == 0);
	zl_state_free(&s);
}

static void test_dns_missing_and_types(void)
{
	static const struct path_case required[] = {
		{ "/dns/0/name", "dns[0].name" },           { "/dns/0/kind", "dns[0].kind" },
		{ "/dns/0/addr", "dns[0].addr" },           { "/dns/0/ttl", "dns[0].ttl" },
		{ "/dns/3/srv", "dns[3].srv" },             { "/dns/3/srv/priority", "dns[3].srv.priority" },
		{ "/dns/3/srv/weight", "dns[3].srv.weight" }, { "/dns/3/srv/port", "dns[3].srv.port" },
		{ "/dns/3/srv/target", "dns[3].srv.target" }, { "/dns/0/check/kind", "dns[0].check.kind" },
		{ "/dns/0/check/port", "dns[0].check.port" }, { "/dns/0/check/interval_s", "dns[0].check.interval_s" },
		{ "/dns/0/check/threshold", "dns[0].check.threshold" },
	};
	static const struct value_case types[] = {
		{ "/dns", "{}", "state: dns: expected an array, got an object" },
		{ "/dns/0", "5", "state: dns[0]: expected an object, got an integer" },
		{ "/dns/0/name", "7", "state: dns[0].name: expected a string, got an integer" },
		{ "/dns/0/kind", "1", "state: dns[0].kind: expected a string, got an integer" },
		{ "/dns/0/ttl", "\"30\"", "state: dns[0].ttl: expected an integer, got a string" },
		{ "/dns/0/owner", "[]", "state: dns[0].owner: expected a string, got an array" },
		{ "/dns/0/check", "[]", "state: dns[0].check: expected an object, got an array" },
		{ "/dns/0/check/port", "\"80\"", "state: dns[0].check.port: expected an integer, got a string" },
		{ "/dns/3/srv", "7", "state: dns[3].srv: expected an object, got an integer" },
		{ "/dns/3/srv/target", "false", "state: dns[3].srv.target: expected a string, got true or false" },
		{ "/dns/0/colour", "1", "state: dns[0]: unknown field \"colour\"" },
		{ "/dns/0/check/timeout", "1", "state: dns[0].check: unknown field \"timeout\"" },
		{ "/dns/3/srv/proto", "\"tcp\"", "state: dns[3].srv: unknown field \"proto\"" },
	};
	static const char *const optional[] = { "/dns/0/owner", "/dns/0/check", "/dns/1/check/path" };
	char want[160];

	make_good_file();
	for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
		snprintf(want, sizeof(want), "state: %s: missing required field", required[i].shown);
		mutate(required[i].ptr, NULL);
		expect_error(bad_path, -EINVAL, want, required[i].ptr);
	}
	run_value_cases(types, sizeof(types) / sizeof(types[0]));
	/* Optional as far as presence goes (an HTTP check then fails on its empty path, below). */
	mutate(optional[0], NULL);
	expect_ok(bad_path, optional[0]);
	mutate(optional[1], "null");
	expect_ok(bad_path, optional[1]);
}

static void test_dns_bad_values(void)
{
	static char long_label[80], long_name[300];
	static const struct value_case cases[] = {
		{ "/dns/0/name", "\"Web\"", "state: dns[0].name: \"Web\" may contain only lower-case letters" },
		{ "/dns/0/name", "\"a b\"", "state: dns[0].name: \"a b\" may contain only lower-case letters" },
		{ "/dns/0/name", "\"\"", "state: dns[0].name: \"\" is empty" },
		{ "/dns/0/name", "\"a..b\"", "state: dns[0].name: \"a..b\" has an empty label" },
		{ "/dns/0/name", "\"web.\"", "state: dns[0].name: \"web.\" has an empty label" },
		{ "/dns/0/name", "\"-web\"", "state: dns[0].name: \"-web\" has a label starting or ending with '-'" },
		{ "/dns/0/name", "\"web-.x\"", "has a label starting or ending with '-'" },
		{ "/dns/0/kind", "\"cname\"", "state: dns[0].kind: must be \"addr\" or \"srv\"" },
		{ "/dns/0/addr", "\"10.0.0.256\"", "state: dns[0].addr: \"10.0.0.256\" is not an IPv4 or IPv6 address" },
		{ "/dns/0/addr", "\"web\"", "state: dns[0].addr: \"web\" is not an IPv4 or IPv6 address" },
		{ "/dns/0/srv", "{}", "state: dns[0].srv: is only for kind \"srv\"" },
		{ "/dns/0/ttl", "86401", "state: dns[0].ttl: must be 0 to 86400" },
		{ "/dns/0/ttl", "-1", "state: dns[0].ttl: must be 0 to 86400" },
		{ "/dns/0/ttl", "86400", NULL },
		{ "/dns/0/owner", "\"a b\"", "state: dns[0].owner: may contain only printable ASCII" },
		{ "/dns/0/check/kind", "\"udp\"", "state: dns[0].check.kind: must be \"tcp\" or \"http\"" },
		{ "/dns/0/check/port", "0", "state: dns[0].check.port: must be 1 to 65535" },
		{ "/dns/0/check/port", "65536", "state: dns[0].check.port: must be 1 to 65535" },
		{ "/dns/0/check/path", "\"/x\"", "state: dns[0].check.path: is only for http checks" },
		{ "/dns/1/check/path", "\"health\"", "state: dns[1].check.path: \"health\" must start with '/'" },
		{ "/dns/1/check/path", "\"/a b\"", "state: dns[1].check.path: \"/a b\" must start with '/'" },
		{ "/dns/1/check/path", NULL, "state: dns[1].check.path: \"\" must start with '/'" },
		{ "/dns/0/check/interval_s", "0", "state: dns[0].check.interval_s: must be 1 to 3600" },
		{ "/dns/0/check/interval_s", "3601", "state: dns[0].check.interval_s: must be 1 to 3600" },
		{ "/dns/0/check/threshold", "0", "state: dns[0].check.threshold: must be 1 to 100" },
		{ "/dns/0/check/threshold", "101", "state: dns[0].check.threshold: must be 1 to 100" },
		{ "/dns/3/name", "\"web\"", "state: dns[3].name: \"web\": an SRV record's name must be _service._proto.name" },
		{ "/dns/3/name", "\"_http._tcp\"", "an SRV record's name must be _service._proto.name" },
		{ "/dns/3/name", "\"_http.tcp.web\"", "an SRV record's name must be _service._proto.name" },
		{ "/dns/3/name", "\"_._tcp.web\"", "an SRV record's name must be _service._proto.name" },
		{ "/dns/3/addr", "\"10.0.0.1\"", "state: dns[3].addr: is only for kind \"addr\"" },
		{ "/dns/3/check", "{\"kind\": \"tcp\", \"port\": 1, \"interval_s\": 1, \"threshold\": 1}",
		  "state: dns[3].check: only address records can have a check" },
		{ "/dns/3/srv/port", "0", "state: dns[3].srv.port: must be 1 to 65535" },
		{ "/dns/3/srv/priority", "65536", "state: dns[3].srv.priority: must be 0 to 65535" },
		{ "/dns/3/srv/weight", "-1", "state: dns[3].srv.weight: must be 0 to 65535" },
		{ "/dns/3/srv/target", "\"a..b\"", "state: dns[3].srv.target: \"a..b\" has an empty label" },
		{ "/dns/3/srv/target", "\".\"", "state: dns[3].srv.target: \".\" has an empty label" },
		{ "/dns/3/srv/target", "\"Web\"", "state: dns[3].srv.target: \"Web\" may contain only lower-case" },
		{ "/dns/3/srv/target", "\"web.example.\"", NULL },
		/* Duplicates: same name and address (dns[2] has dns[0]'s address); same name, target and
		 * port whatever the priority. */
		{ "/dns/2/name", "\"web\"", "state: dns[2]: duplicate of dns[0]" },
		{ "/dns/4/srv/target", "\"web\"", "state: dns[4]: duplicate of dns[3]" },
		{ "/dns/4/srv/port", "81", NULL },
		{ "/dns/2/name", "\"_http._tcp.web\"", NULL },
	};
	struct value_case extra[2];
	char v1[100], v2[320];

	run_value_cases(cases, sizeof(cases) / sizeof(cases[0]));
	memset(long_label, 'a', 64);
	snprintf(v1, sizeof(v1), "\"%s\"", long_label);
	for (int i = 0; i < 127; i++)
		memcpy(long_name + 2 * i, "a.", 2);
	memcpy(long_name + 254, "a", 1);   /* 255 bytes */
	snprintf(v2, sizeof(v2), "\"%s\"", long_name);
	extra[0] = (struct value_case){ "/dns/0/name", v1, "has a label longer than 63 bytes" };
	extra[1] = (struct value_case){ "/dns/0/name", v2, "state: dns[0].name: is longer than 253 bytes" };
	run_value_cases(extra, 2);
}

/* Limits and caller-built structs: at most ZL_DNS_MAX_RECORDS (a longer list in a file is refused before
 * anything is allocated for it), unterminated strings, a count without entries. */
static void test_dns_limits(void)
{
	struct zl_state s;
	struct zl_state_dns_record *d;
	json_object *root, *arr = NULL;
	char err[256] = "";

	make_state(&s);
	d = realloc(s.dns, (ZL_DNS_MAX_RECORDS + 1) * sizeof(*d));
	CHECK(d != NULL);
	if (!d) {
		zl_state_free(&s);
		return;
	}
	s.dns = d;
	for (size_t i = 0; i < ZL_DNS_MAX_RECORDS; i++) {
		set_addr_record(&d[i], "many", "10.0.0.0", 5, "");
		snprintf(d[i].addr, sizeof(d[i].addr), "10.1.%zu.%zu", i / 256, i % 256);
	}
	s.n_dns = ZL_DNS_MAX_RECORDS;
	CHECK(zl_state_validate(&s, err, sizeof(err)));
	CHECK(zl_state_save(bad_path, &s) == 0);
	set_addr_record(&d[ZL_DNS_MAX_RECORDS], "many", "10.2.0.0", 5, "");
	s.n_dns = ZL_DNS_MAX_RECORDS + 1;
	CHECK(!zl_state_validate(&s, err, sizeof(err)) && strstr(err, "state: dns: has 4097 records, at most 4096"));
	/* In a file: one entry more than allowed, refused by count. */
	root = json_object_from_file(bad_path);
	CHECK(root && json_object_object_get_ex(root, "dns", &arr));
	json_object_array_add(arr, json_object_new_int(1));
	CHECK(json_object_to_file(bad_path, root) == 0);
	json_object_put(root);
	expect_error(bad_path, -EINVAL, "state: dns: has 4097 records, at most 4096", "too many");
	/* A duplicate far apart is found with both indexes. */
	s.n_dns = ZL_DNS_MAX_RECORDS;
	memcpy(d[4000].addr, d[17].addr, sizeof(d[4000].addr));
	CHECK(!zl_state_validate(&s, err, sizeof(err)) && strstr(err, "state: dns[4000]: duplicate of dns[17]"));
	snprintf(d[4000].addr, sizeof(d[4000].addr), "10.3.0.0");
	memset(d[5].name, 'a', sizeof(d[5].name));
	CHECK(!zl_state_validate(&s, err, sizeof(err)) && strstr(err, "state: dns[5].name: is not NUL-terminated"));
	snprintf(d[5].name, sizeof(d[5].name), "five");
	memset(d[6].check.path, '/', sizeof(d[6].check.path));
	d[6].check = (struct zl_state_dns_check){ .kind = ZL_CHECK_HTTP, .port = 1, .interval_s = 1, .threshold = 1 };
	memset(d[6].check.path, '/', sizeof(d[6].check.path));
	CHECK(!zl_state_validate(&s, err, sizeof(err)) && strstr(err, "state: dns[6].check.path: is not NUL-terminated"));
	d[6].check.kind = ZL_CHECK_NONE;
	d[7].kind = (enum zl_dns_kind)7;
	CHECK(!zl_state_validate(&s, err, sizeof(err)) && strstr(err, "state: dns[7].kind: must be \"addr\" or \"srv\""));
	d[7].kind = ZL_DNS_ADDR;
	CHECK(zl_state_validate(&s, err, sizeof(err)));
	free(s.dns);
	s.dns = NULL;
	CHECK(!zl_state_validate(&s, err, sizeof(err)) && strstr(err, "a list has a count but no entries"));
	s.n_dns = 0;
	CHECK(zl_state_validate(&s, err, sizeof(err)));
	zl_state_free(&s);
}

/* One record on its own, as the registry and the membership channel use it: the same rules and the same
 * JSON, messages relative to the record. */
static void test_dns_record_api(void)
{
	static const struct {
		const char *json, *msg;
	} bad[] = {
		{ "[]", "expected an object, got an array" },
		{ "{\"name\":\"web\",\"kind\":\"addr\",\"addr\":\"10.0.0.1\",\"ttl\":86401}", "ttl: must be 0 to 86400" },
		{ "{\"name\":\"web\",\"kind\":\"addr\",\"addr\":\"10.0.0.1\",\"ttl\":1,\"check\":{\"kind\":\"tcp\","
		  "\"port\":0,\"interval_s\":1,\"threshold\":1}}", "check.port: must be 1 to 65535" },
		{ "{\"name\":\"web\",\"kind\":\"srv\",\"srv\":{\"priority\":1,\"weight\":1,\"port\":1,\"target\":\"x\"},"
		  "\"ttl\":1}", "name: \"web\": an SRV record's name must be _service._proto.name" },
		{ "{\"name\":\"web\",\"kind\":\"addr\",\"addr\":\"10.0.0.1\",\"ttl\":1,\"x\":1}", "unknown field \"x\"" },
	};
	struct zl_state s;
	struct zl_state_dns_record r, back;
	char err[256];
	json_object *o;

	make_state(&s);
	for (size_t i = 0; i < s.n_dns; i++) {
		o = zl_state_dns_to_json(&s.dns[i]);
		CHECK(o != NULL);
		CHECK(zl_state_dns_from_json(o, &back, err, sizeof(err)));
		CHECK(dns_equal(&s.dns[i], &back));
		CHECK(zl_state_dns_validate(&back, err, sizeof(err)));
		json_object_put(o);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		o = json_tokener_parse(bad[i].json);
		memset(&r, 0x5a, sizeof(r));
		err[0] = '\0';
		CHECK(o && !zl_state_dns_from_json(o, &r, err, sizeof(err)));
		if (strncmp(err, bad[i].msg, strlen(bad[i].msg)))
			fprintf(stderr, "  case %zu: got \"%s\", want \"%s\"\n", i, err, bad[i].msg);
		CHECK(!strncmp(err, bad[i].msg, strlen(bad[i].msg)));   /* no "state: " prefix */
		json_object_put(o);
	}
	/* from_json writes canonical addresses. */
	o = json_tokener_parse("{\"name\":\"v6\",\"kind\":\"addr\",\"addr\":\"FD00:0::1\",\"ttl\":5}");
	CHECK(zl_state_dns_from_json(o, &r, err, sizeof(err)) && !strcmp(r.addr, "fd00::1"));
	json_object_put(o);
	r = s.dns[0];
	r.check.threshold = 0;
	CHECK(!zl_state_dns_validate(&r, err, sizeof(err)) && !strcmp(err, "check.threshold: must be 1 to 100"));
	zl_state_free(&s);
}

/* Duplicates are found by sorting: a big allocator snapshot still loads fast, and a duplicate far apart
 * in the list is reported with both indexes. */
static void test_large_snapshots(void)
{
	enum { N_ADDR = 65534, N_SLICES = 4096 };
	struct zl_state s, t;
	struct zl_state_ip_allocator *ia;
	char err[256] = "";

	make_state(&s);
	ia = &s.ip_allocator;
	free(ia->allocated);
	ia->allocated = calloc(N_ADDR, sizeof(*ia->allocated));
	ia->n_allocated = N_ADDR;
	for (size_t i = 0; i < N_ADDR; i++)
		snprintf(ia->allocated[i].s, ZL_ADDR_STRLEN, "10.200.%zu.%zu", (i + 1) / 256, (i + 1) % 256);
	free(s.slice_allocator.assigned);
	free(s.slice_allocator.services); /* the node slices below fill the whole /16 */
	s.slice_allocator.services = NULL;
	s.slice_allocator.n_services = 0;
	s.slice_allocator.assigned = calloc(N_SLICES, sizeof(*s.slice_allocator.assigned));
	s.slice_allocator.n_assigned = N_SLICES;
	for (size_t i = 0; i < N_SLICES; i++) {
		snprintf(s.slice_allocator.assigned[i].name, ZL_NODE_ID_SIZE, "node-%zu", i);
		snprintf(s.slice_allocator.assigned[i].cidr, ZL_CIDR_STRLEN, "10.200.%zu.%zu/28", i / 16, (i % 16) * 16);
	}
	CHECK(zl_state_save(bad_path, &s) == 0);
	CHECK(zl_state_load(bad_path, &t, err, sizeof(err)) == 0);
	CHECK(states_equal(&s, &t));
	zl_state_free(&t);
	snprintf(ia->allocated[60000].s, ZL_ADDR_STRLEN, "%s", ia->allocated[7].s);
	CHECK(!zl_state_validate(&s, err, sizeof(err)));
	CHECK(strstr(err, "state: ip_allocator.allocated[60000]: duplicate of ip_allocator.allocated[7]") != NULL);
	zl_state_free(&s);
}

static void test_versions(void)
{
	make_good_file();
	mutate("/version", "2");
	expect_error(bad_path, -ENOTSUP, "state: version: format version 2 is newer than this program supports (1)", "v2");
	/* A newer file is reported as newer even when it has fields we do not know. */
	mutate("/version", "7");
	{
		json_object *root = json_object_from_file(bad_path);
		json_object_object_add(root, "mesh_policy", json_object_new_string("strict"));
		json_object_to_file(bad_path, root);
		json_object_put(root);
	}
	expect_error(bad_path, -ENOTSUP, "newer than this program supports", "v7");
	mutate("/version", "0");
	expect_error(bad_path, -EINVAL, "state: version: unknown format version 0", "v0");
	mutate("/version", "-1");
	expect_error(bad_path, -EINVAL, "unknown format version -1", "v-1");
	mutate("/version", "1");
	expect_ok(bad_path, "v1");
}

static void test_truncated_and_garbage(void)
{
	static const uint8_t binary[] = { 0x7f, 'E', 'L', 'F', 2, 1, 1, 0, 0xff, 0xfe, 0 };
	char buf[16384], with_tail[16500];
	size_t n;

	make_good_file();
	n = read_file(good_path, buf, sizeof(buf));
	for (size_t cut = 1; cut < n - 1; cut += 97) {
		write_file(bad_path, buf, cut);
		expect_error(bad_path, -EINVAL, "state: unexpected end of file (truncated JSON)", "truncated");
	}
	write_file(bad_path, "", 0);
	expect_error(bad_path, -EINVAL, "state: the file is empty", "empty");
	write_file(bad_path, " \n\t", 3);
	expect_error(bad_path, -EINVAL, "state: the file is empty", "blank");
	write_file(bad_path, "hello", 5);
	expect_error(bad_path, -EINVAL, "state: invalid JSON at byte", "garbage");
	write_file(bad_path, binary, sizeof(binary));
	expect_error(bad_path, -EINVAL, "state: invalid JSON at byte 0", "binary");
	write_file(bad_path, "{\"version\":1,}", 14);
	expect_error(bad_path, -EINVAL, "state: invalid JSON at byte", "trailing comma");
	write_file(bad_path, "{\"version\": 1, \"x\": \"\xc3\x28\"}", 26);
	expect_error(bad_path, -EINVAL, "state: invalid JSON at byte", "bad UTF-8");
	/* A whole document followed by anything but white space. */
	memcpy(with_tail, buf, n);
	memcpy(with_tail + n, "{}", 2);
	write_file(bad_path, with_tail, n + 2);
	expect_error(bad_path, -EINVAL, "state: ", "two documents");
	with_tail[n] = '\0';
	write_file(bad_path, with_tail, n + 1);
	expect_error(bad_path, -EINVAL, "state: unexpected data after the JSON document at byte", "NUL tail");
	/* Trailing white space is fine. */
	memcpy(with_tail + n, "  \n\n", 4);
	write_file(bad_path, with_tail, n + 4);
	expect_ok(bad_path, "white space tail");
}

static void test_read_errors(void)
{
	char path[256];
	int fd;

	snprintf(path, sizeof(path), "%s/absent.json", dir);
	expect_error(path, -ENOENT, "state: cannot read", "absent");
	expect_error(dir, -EINVAL, "is not a regular file", "a directory");
	/* Over the 16 MiB cap (a sparse file: the size is what counts, not the content). */
	snprintf(path, sizeof(path), "%s/huge.json", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0 && ftruncate(fd, ZL_FILE_READ_MAX + 1) == 0);
	close(fd);
	expect_error(path, -EFBIG, "is larger than 16 MiB", "huge");
	unlink(path);
}

/* ---- atomic file ---- */

static int failing_step = -1, fault_calls;

static int fault_at(enum zl_atomic_step step)
{
	fault_calls++;
	return (int)step == failing_step ? -EIO : 0;
}

/* Entries of dir other than "." and "..", and how many look like our temporaries. */
static int count_entries(const char *d, int *temps)
{
	DIR *dp = opendir(d);
	struct dirent *e;
	int n = 0;

	*temps = 0;
	if (!dp)
		return -1;
	while ((e = readdir(dp))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		n++;
		*temps += strstr(e->d_name, ".tmp-") != NULL;
	}
	closedir(dp);
	return n;
}

static void fresh_dir(char out[256], const char *name)
{
	snprintf(out, 256, "%s/%s", dir, name);
	CHECK(mkdir(out, 0700) == 0);
}

static void test_atomic_write_basic(void)
{
	char d[256], path[300], buf[64];
	struct stat st;
	int temps;
	mode_t old = umask(077);

	fresh_dir(d, "basic");
	snprintf(path, sizeof(path), "%s/f", d);
	CHECK(zl_file_write_atomic(path, "first", 5, 0640) == 0);
	CHECK(read_file(path, buf, sizeof(buf)) == 5 && !strcmp(buf, "first"));
	CHECK(stat(path, &st) == 0 && (st.st_mode & 07777) == 0640); /* exact mode despite the umask */
	CHECK(zl_file_write_atomic(path, "second!", 7, 0600) == 0);
	CHECK(read_file(path, buf, sizeof(buf)) == 7 && !strcmp(buf, "second!"));
	CHECK(zl_file_write_atomic(path, "", 0, 0600) == 0);
	CHECK(read_file(path, buf, sizeof(buf)) == 0);
	CHECK(count_entries(d, &temps) == 1 && temps == 0);
	CHECK(zl_file_write_atomic("", "x", 1, 0600) == -ENOENT);
	snprintf(path, sizeof(path), "%s/", d);
	CHECK(zl_file_write_atomic(path, "x", 1, 0600) == -EISDIR);
	snprintf(path, sizeof(path), "%s/missing/f", d);
	CHECK(zl_file_write_atomic(path, "x", 1, 0600) == -ENOENT);
	umask(old);
}

/* A failure at each step before the rename leaves the old content and no temporary; a failure of the
 * final directory fsync is reported but the new content is already in place. */
static void test_atomic_write_fault_injection(void)
{
	char d[256], path[300], buf[64];
	int temps;

	fresh_dir(d, "faults");
	snprintf(path, sizeof(path), "%s/state.json", d);
	CHECK(zl_file_write_atomic(path, "old content", 11, 0600) == 0);
	zl_atomic_fault_hook = fault_at;
	for (int step = ZL_ATOMIC_STEP_WRITE; step <= ZL_ATOMIC_STEP_RENAME; step++) {
		failing_step = step;
		CHECK(zl_file_write_atomic(path, "NEW CONTENT, LONGER", 19, 0600) == -EIO);
		CHECK(read_file(path, buf, sizeof(buf)) == 11 && !strcmp(buf, "old content"));
		CHECK(count_entries(d, &temps) == 1 && temps == 0);
	}
	failing_step = ZL_ATOMIC_STEP_DIRSYNC;
	CHECK(zl_file_write_atomic(path, "new", 3, 0600) == -EIO);
	CHECK(read_file(path, buf, sizeof(buf)) == 3 && !strcmp(buf, "new"));
	CHECK(count_entries(d, &temps) == 1 && temps == 0);
	/* Every step was reached on a normal write. */
	failing_step = -1;
	fault_calls = 0;
	CHECK(zl_file_write_atomic(path, "ok", 2, 0600) == 0 && fault_calls == 4);
	zl_atomic_fault_hook = NULL;

	/* The same through zl_state_save: the old state survives intact. */
	{
		struct zl_state s, t;
		char err[256], before[8192], after[8192];
		make_good_file();
		read_file(good_path, before, sizeof(before));
		make_state(&s);
		zl_atomic_fault_hook = fault_at;
		failing_step = ZL_ATOMIC_STEP_RENAME;
		CHECK(zl_state_save(good_path, &s) == -EIO);
		zl_atomic_fault_hook = NULL;
		read_file(good_path, after, sizeof(after));
		CHECK(!strcmp(before, after));
		CHECK(zl_state_load(good_path, &t, err, sizeof(err)) == 0 && !states_equal(&s, &t));
		zl_state_free(&s);
		zl_state_free(&t);
	}
}

/* Real failures, no hook: the file size limit makes write() fail half-way, and a rename onto a
 * non-empty directory fails. */
static void test_atomic_write_real_failures(void)
{
	char d[256], path[300], sub[320], buf[64], big[8192];
	struct rlimit old, lim;
	void (*old_handler)(int);
	int temps;

	fresh_dir(d, "real");
	snprintf(path, sizeof(path), "%s/f", d);
	CHECK(zl_file_write_atomic(path, "old", 3, 0600) == 0);
	memset(big, 'x', sizeof(big));
	CHECK(getrlimit(RLIMIT_FSIZE, &old) == 0);
	lim = old;
	lim.rlim_cur = 4096;
	old_handler = signal(SIGXFSZ, SIG_IGN);
	CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0);
	CHECK(zl_file_write_atomic(path, big, sizeof(big), 0600) == -EFBIG);
	CHECK(setrlimit(RLIMIT_FSIZE, &old) == 0);
	signal(SIGXFSZ, old_handler);
	CHECK(read_file(path, buf, sizeof(buf)) == 3 && !strcmp(buf, "old"));
	CHECK(count_entries(d, &temps) == 1 && temps == 0);

	snprintf(path, sizeof(path), "%s/adir", d);
	CHECK(mkdir(path, 0700) == 0);
	snprintf(sub, sizeof(sub), "%s/keep", path);
	write_file(sub, "k", 1);
	CHECK(zl_file_write_atomic(path, "x", 1, 0600) < 0);
	CHECK(read_file(sub, buf, sizeof(buf)) == 1);
	CHECK(count_entries(d, &temps) == 2 && temps == 0);
}

static void test_read_capped(void)
{
	char d[256], path[300], *out = NULL;
	size_t len = 0;

	fresh_dir(d, "read");
	snprintf(path, sizeof(path), "%s/f", d);
	write_file(path, "0123456789", 10);
	CHECK(zl_file_read_capped(path, 10, &out, &len) == 0 && len == 10 && !strcmp(out, "0123456789"));
	free(out);
	CHECK(zl_file_read_capped(path, 9, &out, &len) == -EFBIG);
	CHECK(zl_file_read_capped(path, 0, &out, &len) == -EFBIG);
	write_file(path, "", 0);
	CHECK(zl_file_read_capped(path, 0, &out, &len) == 0 && len == 0 && out[0] == '\0');
	free(out);
	CHECK(zl_file_read_capped(d, 100, &out, &len) == -EINVAL);
	snprintf(path, sizeof(path), "%s/none", d);
	CHECK(zl_file_read_capped(path, 100, &out, &len) == -ENOENT);
	/* A file that reports size 0 but has content (like /proc) is read by growing the buffer, and the
	 * cap still applies. */
	CHECK(zl_file_read_capped("/proc/self/status", 1 << 20, &out, &len) == 0 && len > 100 &&
	      strlen(out) == len && strstr(out, "Name:"));
	free(out);
	CHECK(zl_file_read_capped("/proc/self/status", 50, &out, &len) == -EFBIG);
}

static void test_sweep_temps(void)
{
	char d[256], path[300], p[400];
	static const char *const names[] = {
		".state.json.tmp-0123456789abcdef", /* ours: removed */
		".state.json.tmp-fedcba9876543210", /* ours: removed */
		".state.json.tmp-xyz",              /* not our pattern */
		".state.json.tmp-0123456789ABCDEF", /* we write lower case only */
		".other.tmp-0123456789abcdef",      /* another file's */
		"state.json",
	};
	int temps;

	fresh_dir(d, "sweep");
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", d, names[i]);
		write_file(p, "x", 1);
	}
	snprintf(path, sizeof(path), "%s/state.json", d);
	CHECK(zl_file_sweep_temps(path) == 2);
	CHECK(count_entries(d, &temps) == 4);
	CHECK(zl_file_sweep_temps(path) == 0);
	snprintf(path, sizeof(path), "%s/nodir/state.json", d);
	CHECK(zl_file_sweep_temps(path) == -ENOENT);
}

static void test_dir_create(void)
{
	char d[256], p[400];
	struct stat st;
	mode_t old = umask(022);

	fresh_dir(d, "mk");
	snprintf(p, sizeof(p), "%s/a/b//c/", d);
	CHECK(zl_dir_create(p, 0700) == 0);
	snprintf(p, sizeof(p), "%s/a/b/c", d);
	CHECK(stat(p, &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 07777) == 0700);
	CHECK(zl_dir_create(p, 0755) == 0);
	CHECK(stat(p, &st) == 0 && (st.st_mode & 07777) == 0700); /* existing ones are left alone */
	snprintf(p, sizeof(p), "%s/file", d);
	write_file(p, "x", 1);
	snprintf(p, sizeof(p), "%s/file/sub", d);
	CHECK(zl_dir_create(p, 0700) == -ENOTDIR);
	CHECK(zl_dir_create("", 0700) == -ENOENT);
	umask(old);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

int main(void)
{
	int r;

	if (sodium_init() < 0)
		return 1;
	snprintf(dir, sizeof(dir), "/tmp/zl-test-state-XXXXXX");
	if (!mkdtemp(dir))
		return 1;
	snprintf(good_path, sizeof(good_path), "%s/good.json", dir);
	snprintf(bad_path, sizeof(bad_path), "%s/bad.json", dir);
	TEST_RUN(test_roundtrip);
	TEST_RUN(test_roundtrip_minimal);
	TEST_RUN(test_roundtrip_ipv6_canonical);
	TEST_RUN(test_file_and_dir_modes);
	TEST_RUN(test_save_refuses_invalid);
	TEST_RUN(test_free_wipes);
	TEST_RUN(test_missing_required);
	TEST_RUN(test_optional_fields);
	TEST_RUN(test_wrong_types);
	TEST_RUN(test_bad_keys);
	TEST_RUN(test_bad_addresses);
	TEST_RUN(test_good_endpoints);
	TEST_RUN(test_duplicates);
	TEST_RUN(test_dns_absent);
	TEST_RUN(test_dns_canonical);
	TEST_RUN(test_dns_missing_and_types);
	TEST_RUN(test_dns_bad_values);
	TEST_RUN(test_dns_limits);
	TEST_RUN(test_dns_record_api);
	TEST_RUN(test_large_snapshots);
	TEST_RUN(test_versions);
	TEST_RUN(test_truncated_and_garbage);
	TEST_RUN(test_read_errors);
	TEST_RUN(test_atomic_write_basic);
	TEST_RUN(test_atomic_write_fault_injection);
	TEST_RUN(test_atomic_write_real_failures);
	TEST_RUN(test_read_capped);
	TEST_RUN(test_sweep_temps);
	TEST_RUN(test_dir_create);
	r = TEST_SUMMARY();
	if (!getenv("ZL_KEEP")) nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	return r;
}
