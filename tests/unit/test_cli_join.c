/* init-leader and join through the real program (cli_main), against a fake leader on 127.0.0.1 that
 * speaks the join protocol with the leader's key and token records read back from the state init-leader
 * wrote. Checks: init-leader's state loads (zl_state_load) and is consistent (key pair, leader address
 * inside its slice, allocators recording it, the printed token's record stored, mode 0600) and a second
 * init-leader is refused; a join writes a state that loads, with the leader first (its missing endpoint
 * filled with the one that answered) and what the leader was told (key, hostname, advertised endpoint);
 * a second join is refused; revoked, expired and malformed tokens, a token of another leader
 * (unauthenticated REFUSAL), a leader that hangs up, and no leader at all each fail with a clear message
 * and write nothing. Offline token create/revoke/list work on the leader's state. Scratch directories
 * /tmp/zl-test-cli-join-XXXXXX are removed at the end. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "test.h"
#include "cli/cli.h"
#include "cli/net.h"
#include "overlay/cidr.h"
#include "overlay/join_proto.h"
#include "overlay/state.h"
#include "overlay/token.h"

static char scratch[64];

struct run {
	int rc;
	char *out, *err;
};

static void run_free(struct run *r)
{
	free(r->out);
	free(r->err);
	memset(r, 0, sizeof(*r));
}

/* cli_main on a space-separated line. */
static struct run run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static struct run run(const char *fmt, ...)
{
	char line[2048], *argv[24], *save = NULL;
	struct run r = { 0 };
	size_t olen, elen;
	int argc = 0;
	va_list ap;
	FILE *o, *e;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	argv[argc++] = "zl-overlay";
	for (char *t = strtok_r(line, " ", &save); t && argc < 23; t = strtok_r(NULL, " ", &save))
		argv[argc++] = t;
	argv[argc] = NULL;
	o = open_memstream(&r.out, &olen);
	e = open_memstream(&r.err, &elen);
	r.rc = cli_main(argc, argv, o, e);
	fclose(o);
	fclose(e);
	return r;
}

static void path_of(char *out, size_t len, const char *dir, const char *file)
{
	snprintf(out, len, "%s/%s/%s", scratch, dir, file);
}

static bool exists(const char *dir, const char *file)
{
	char p[256];
	struct stat st;

	path_of(p, sizeof(p), dir, file);
	return stat(p, &st) == 0;
}

/* The value after "label" at the start of a line of text, up to the end of the line. */
static bool field(const char *text, const char *label, char *out, size_t len)
{
	const char *p = text;
	size_t n = strlen(label);

	while (p && *p) {
		if (!strncmp(p, label, n)) {
			p += n;
			while (*p == ' ')
				p++;
			snprintf(out, len, "%.*s", (int)strcspn(p, "\n"), p);
			return true;
		}
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return false;
}

/* ---- the fake leader ---- */

enum leader_mode {
	LEADER_NORMAL,      /* verifies the token and admits the worker */
	LEADER_HANG_UP,     /* reads the request and closes */
};

struct fake_leader {
	int lfd;
	uint16_t port;
	enum leader_mode mode;
	uint8_t priv[32], pub[32];
	char leader_ip[ZL_IP_STRLEN];
	struct zl_token_record recs[8];
	size_t n_recs;
	/* what the worker sent */
	bool got_request;
	struct zl_join_request req;
	pthread_t thread;
};

static int listen_loopback(uint16_t *port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 4) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) < 0)
		abort();
	*port = ntohs(sa.sin_port);
	return fd;
}

static void fill_peer(struct zl_join_peer *p, const char *id, const char *ip, const char *slice, const char *ep)
{
	uint8_t priv[32];

	memset(p, 0, sizeof(*p));
	snprintf(p->node_id, sizeof(p->node_id), "%s", id);
	snprintf(p->overlay_ip, sizeof(p->overlay_ip), "%s", ip);
	snprintf(p->slice, sizeof(p->slice), "%s", slice);
	snprintf(p->endpoint, sizeof(p->endpoint), "%s", ep);
	randombytes_buf(priv, 32);
	crypto_scalarmult_base(p->public_key, priv);
}

/* Answers one request as docs/join-protocol.md section 5 says (without persisting anything). */
static void answer(struct fake_leader *L, int fd, const uint8_t *msg, size_t len)
{
	struct zl_join_leader_session s;
	struct zl_join_response resp = { 0 };
	struct zl_join_peer peers[2];
	uint8_t refusal[ZL_JOIN_REFUSAL_LEN], *out = NULL;
	enum zl_join_status st;
	size_t out_len, i;

	st = zl_join_request_open(&s, L->priv, msg, len, (uint64_t)time(NULL), &L->req);
	if (st != ZL_JOIN_OK && !s.can_reply) {
		out_len = zl_join_refusal_build(st, refusal);
		cli_send_all(fd, refusal, out_len, cli_now_ms() + 2000);
		return;
	}
	L->got_request = st == ZL_JOIN_OK;
	if (st == ZL_JOIN_OK)
		st = zl_join_status_from_token(
			zl_token_verify_table(L->recs, L->n_recs, L->req.token_id, L->req.token_secret, (uint64_t)time(NULL), &i));
	resp.code = st;
	if (st == ZL_JOIN_OK) {
		/* Another member first and the leader without an endpoint: the worker must reorder and fill it. */
		fill_peer(&peers[0], "node-0-33", "10.200.0.33", "10.200.0.32/28", "192.0.2.33:51820");
		fill_peer(&peers[1], "leader", L->leader_ip, "", "");
		snprintf(resp.node_id, sizeof(resp.node_id), "node-0-49");
		snprintf(resp.overlay_ip, sizeof(resp.overlay_ip), "10.200.0.49");
		snprintf(resp.slice, sizeof(resp.slice), "10.200.0.48/28");
		snprintf(resp.cluster_cidr, sizeof(resp.cluster_cidr), "10.200.0.0/16");
		snprintf(resp.leader_overlay_ip, sizeof(resp.leader_overlay_ip), "%s", L->leader_ip);
		resp.peers = peers;
		resp.n_peers = 2;
	}
	if (zl_join_response_build(&s, &resp, &out, &out_len) == ZL_JOIN_OK)
		cli_send_all(fd, out, out_len, cli_now_ms() + 2000);
	free(out);
}

static void *leader_main(void *arg)
{
	struct fake_leader *L = arg;
	uint8_t hdr[ZL_JOIN_HEADER_LEN], *msg;
	size_t total;
	int fd = accept4(L->lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	int64_t deadline = cli_now_ms() + 5000;

	if (fd < 0)
		return NULL;
	if (cli_recv_full(fd, hdr, sizeof(hdr), deadline) == 0 && zl_join_msg_length(hdr, false, &total) == ZL_JOIN_OK &&
	    (msg = malloc(total))) {
		memcpy(msg, hdr, sizeof(hdr));
		if (cli_recv_full(fd, msg + sizeof(hdr), total - sizeof(hdr), deadline) == 0 && L->mode == LEADER_NORMAL)
			answer(L, fd, msg, total);
		free(msg);
	}
	close(fd);
	return NULL;
}

static void leader_start(struct fake_leader *L)
{
	L->got_request = false;
	if (pthread_create(&L->thread, NULL, leader_main, L) != 0)
		abort();
}

static void leader_join(struct fake_leader *L)
{
	pthread_join(L->thread, NULL);
}

/* Reads the leader's key, address and token records from its state file. */
static bool leader_load(struct fake_leader *L, const char *dir)
{
	char p[256], err[256];
	struct zl_state s;

	path_of(p, sizeof(p), dir, "state.json");
	if (zl_state_load(p, &s, err, sizeof(err)) < 0) {
		fprintf(stderr, "  %s\n", err);
		return false;
	}
	memcpy(L->priv, s.config.private_key, 32);
	memcpy(L->pub, s.config.public_key, 32);
	snprintf(L->leader_ip, sizeof(L->leader_ip), "%s", s.config.node_ip);
	L->n_recs = s.n_tokens < 8 ? s.n_tokens : 8;
	for (size_t i = 0; i < L->n_recs; i++) {
		struct zl_token_record *r = &L->recs[i];

		memcpy(r->id, s.tokens[i].id, 8);
		memcpy(r->secret_hash, s.tokens[i].secret_hash, 32);
		r->created_at = s.tokens[i].created_at;
		r->expires_at = s.tokens[i].expires_at;
		r->max_uses = s.tokens[i].max_uses;
		r->uses = s.tokens[i].uses;
		r->revoked = s.tokens[i].revoked;
	}
	zl_state_free(&s);
	return true;
}

/* ---- tests ---- */

static struct fake_leader leader;
static char token1[ZL_TOKEN_TEXT_MAX];

static void test_init_leader(void)
{
	struct run r = run("init-leader --data-dir %s/L --endpoint 127.0.0.1:%u --hostname Lead --port 51999", scratch,
			   leader.port);
	char p[256], err[256], ip[64], key[64], tokid[64];
	struct zl_state s;
	struct zl_prefix slice, cluster;
	struct zl_ip addr;
	struct zl_token tok;
	struct stat st;
	uint8_t pub[32];

	CHECK(r.rc == 0);
	CHECK(field(r.out, "token:", token1, sizeof(token1)));
	CHECK(field(r.out, "overlay address:", ip, sizeof(ip)));
	CHECK(field(r.out, "public key:", key, sizeof(key)));
	CHECK(field(r.out, "token id:", tokid, sizeof(tokid)));
	path_of(p, sizeof(p), "L", "state.json");
	CHECK(stat(p, &st) == 0 && (st.st_mode & 0777) == 0600);
	CHECK(zl_state_load(p, &s, err, sizeof(err)) == 0);
	CHECK(s.config.is_leader && !strcmp(s.config.node_id, "leader") && !strcmp(s.config.hostname, "lead"));
	CHECK(!strcmp(s.config.cidr, "10.200.0.0/16") && s.config.port == 51999);
	CHECK(!strcmp(s.config.interface, "zl-overlay0"));
	crypto_scalarmult_base(pub, s.config.private_key);
	CHECK(!memcmp(pub, s.config.public_key, 32));
	CHECK(!strcmp(s.config.node_ip, ip));
	/* The leader's address is the first of its slice, and both allocators record it. */
	CHECK(zl_prefix_parse(s.config.slice_cidr, &slice, NULL, 0) == 0 && slice.len == 28);
	CHECK(zl_prefix_parse(s.config.cidr, &cluster, NULL, 0) == 0 && zl_prefix_contains_prefix(&cluster, &slice));
	CHECK(zl_ip_parse(s.config.node_ip, &addr, NULL, 0) == 0 && zl_prefix_offset(&slice, &addr) == 1);
	CHECK(s.ip_allocator.present && s.ip_allocator.n_allocated == 1 &&
	      !strcmp(s.ip_allocator.allocated[0].s, s.config.node_ip));
	CHECK(s.slice_allocator.present && s.slice_allocator.slice_prefix == 28 && s.slice_allocator.n_assigned == 1 &&
	      !strcmp(s.slice_allocator.assigned[0].name, "leader") &&
	      !strcmp(s.slice_allocator.assigned[0].cidr, s.config.slice_cidr));
	/* The printed token names this leader and endpoint; only its record (no secret) is stored. */
	CHECK(zl_token_decode(token1, (uint64_t)time(NULL), &tok) == ZL_TOKEN_OK);
	CHECK(!memcmp(tok.leader_public_key, s.config.public_key, 32));
	CHECK(tok.n_endpoints == 1 && !strncmp(tok.endpoints[0], "127.0.0.1:", 10));
	CHECK(s.n_tokens == 1 && !memcmp(s.tokens[0].id, tok.id, 8) && s.tokens[0].uses == 0 && !s.tokens[0].revoked);
	CHECK(s.tokens[0].expires_at == tok.expires_at && tok.expires_at - s.tokens[0].created_at == 86400);
	{
		char *file = NULL;
		size_t len;
		FILE *f = fopen(p, "r");
		char secret_hex[65];

		for (int i = 0; i < 32; i++)
			snprintf(secret_hex + 2 * i, 3, "%02x", tok.secret[i]);
		file = calloc(1, 1 << 16);
		len = f ? fread(file, 1, (1 << 16) - 1, f) : 0;
		CHECK(len > 0 && !strstr(file, secret_hex) && !strstr(file, token1));
		free(file);
		if (f)
			fclose(f);
	}
	zl_token_wipe(&tok);
	zl_state_free(&s);
	run_free(&r);
	/* Again: refused, the file untouched. */
	r = run("init-leader --data-dir %s/L --endpoint 127.0.0.1:1", scratch);
	CHECK(r.rc == 1 && strstr(r.err, "already initialized") && r.out[0] == '\0');
	run_free(&r);
	CHECK(leader_load(&leader, "L") && leader.n_recs == 1);
}

static void test_join(void)
{
	char p[256], err[256], key[ZL_KEY_B64_LEN + 1], want_ep[64];
	struct zl_state s;
	struct run r;

	leader_start(&leader);
	r = run("join --token %s --data-dir %s/W --hostname w1", token1, scratch);
	leader_join(&leader);
	if (r.rc)
		fprintf(stderr, "  join: %s", r.err);
	CHECK(r.rc == 0);
	CHECK(strstr(r.out, "overlay address:  10.200.0.49\n") != NULL);
	path_of(p, sizeof(p), "W", "state.json");
	CHECK(zl_state_load(p, &s, err, sizeof(err)) == 0);
	CHECK(!s.config.is_leader && !strcmp(s.config.node_id, "node-0-49"));
	CHECK(!strcmp(s.config.node_ip, "10.200.0.49") && !strcmp(s.config.slice_cidr, "10.200.0.48/28"));
	CHECK(!strcmp(s.config.cidr, "10.200.0.0/16") && s.config.port == 51820 && !strcmp(s.config.hostname, "w1"));
	/* Advertised: the local address that reached the leader, with our WireGuard port. */
	CHECK(!strcmp(s.config.endpoint, "127.0.0.1:51820"));
	CHECK(s.n_peers == 2);
	CHECK(!strcmp(s.peers[0].node_id, "leader") && !strcmp(s.peers[0].overlay_ip, leader.leader_ip));
	snprintf(want_ep, sizeof(want_ep), "127.0.0.1:%u", leader.port);
	CHECK(!strcmp(s.peers[0].endpoint, want_ep));
	CHECK(s.peers[0].keepalive == 25);
	CHECK(!strcmp(s.peers[1].node_id, "node-0-33") && !strcmp(s.peers[1].endpoint, "192.0.2.33:51820") &&
	      !strcmp(s.peers[1].slice_cidr, "10.200.0.32/28"));
	/* The leader heard our real key, hostname and endpoint. */
	CHECK(leader.got_request && !memcmp(leader.req.public_key, s.config.public_key, 32));
	CHECK(!strcmp(leader.req.hostname, "w1") && !strcmp(leader.req.endpoint, "127.0.0.1:51820"));
	zl_state_key_encode(s.config.public_key, key);
	CHECK(strstr(r.out, key) != NULL);
	zl_state_free(&s);
	run_free(&r);
	/* Once joined, never again into the same directory (and nobody is contacted). */
	r = run("join --token %s --data-dir %s/W --hostname w1", token1, scratch);
	CHECK(r.rc == 1 && strstr(r.err, "already initialized"));
	run_free(&r);
}

static void test_join_json(void)
{
	struct run r;
	json_object *j;

	leader_start(&leader);
	r = run("join --token %s --data-dir %s/WJ --hostname w2 --port 7000 --endpoint 192.0.2.7 --json "
		"--interface zl-test0", token1, scratch);
	leader_join(&leader);
	CHECK(r.rc == 0);
	j = json_tokener_parse(r.out);
	CHECK(j != NULL);
	CHECK(!strcmp(json_object_get_string(json_object_object_get(j, "node_ip")), "10.200.0.49"));
	CHECK(!strcmp(json_object_get_string(json_object_object_get(j, "endpoint")), "192.0.2.7:7000"));
	CHECK(!strcmp(json_object_get_string(json_object_object_get(j, "interface")), "zl-test0"));
	CHECK(!strcmp(json_object_get_string(json_object_object_get(j, "leader_ip")), leader.leader_ip));
	CHECK(!strcmp(leader.req.endpoint, "192.0.2.7:7000"));
	json_object_put(j);
	run_free(&r);
}

/* A refused join: the message on stderr, nothing on stdout, no state. */
static void expect_refused(const char *dir, struct run *r, const char *msg)
{
	if (r->rc != 1 || !strstr(r->err, msg))
		fprintf(stderr, "  expected '%s', rc=%d err=%s", msg, r->rc, r->err);
	CHECK(r->rc == 1);
	CHECK(strstr(r->err, msg) != NULL);
	CHECK(r->out[0] == '\0');
	CHECK(!exists(dir, "state.json"));
	run_free(r);
}

static void test_offline_tokens_and_refusals(void)
{
	char tok2[ZL_TOKEN_TEXT_MAX], id[ZL_TOKEN_ID_HEX_LEN + 1];
	struct zl_token t;
	struct run r;

	r = run("token create --data-dir %s/L --ttl 10m", scratch);
	CHECK(r.rc == 0 && strstr(r.err, "not running") && strstr(r.err, "editing"));
	CHECK(sscanf(r.out, "%1599s", tok2) == 1 && strlen(r.out) == strlen(tok2) + 1);
	CHECK(zl_token_decode(tok2, (uint64_t)time(NULL), &t) == ZL_TOKEN_OK && t.expires_at - (uint64_t)time(NULL) <= 600);
	zl_token_id_format(t.id, id);
	zl_token_wipe(&t);
	run_free(&r);
	r = run("token list --data-dir %s/L", scratch);
	CHECK(r.rc == 0 && strstr(r.out, id) && strstr(r.out, "active"));
	run_free(&r);
	r = run("token revoke %s --data-dir %s/L", tok2, scratch); /* by the token itself */
	CHECK(r.rc == 0 && strstr(r.out, id));
	run_free(&r);
	r = run("token list --json --data-dir %s/L", scratch);
	CHECK(r.rc == 0 && strstr(r.out, "\"revoked\": true"));
	run_free(&r);
	r = run("token revoke 0000000000000000 --data-dir %s/L", scratch);
	CHECK(r.rc == 1 && strstr(r.err, "no token with that id"));
	run_free(&r);

	/* The leader now knows the revocation. */
	CHECK(leader_load(&leader, "L") && leader.n_recs == 2 && leader.recs[1].revoked);
	leader_start(&leader);
	r = run("join --token %s --data-dir %s/R1 --hostname w3", tok2, scratch);
	leader_join(&leader);
	expect_refused("R1", &r, "token: revoked");
}

static void test_refusals(void)
{
	uint8_t other_priv[32], other_pub[32], saved[32];
	const char *eps[1];
	char ep[64], text[ZL_TOKEN_TEXT_MAX];
	struct zl_token t;
	struct zl_token_record rec;
	struct run r;

	snprintf(ep, sizeof(ep), "127.0.0.1:%u", leader.port);
	eps[0] = ep;
	/* Expired: refused locally, nobody contacted. */
	CHECK(zl_token_create(&t, &rec, leader.pub, eps, 1, 1000, 10) == ZL_TOKEN_OK);
	CHECK(zl_token_encode(&t, text, sizeof(text)));
	r = run("join --token %s --data-dir %s/R2 --hostname w4", text, scratch);
	expect_refused("R2", &r, "token: expired");

	/* A token naming another leader's key: the real leader cannot read it and says so in clear. */
	randombytes_buf(other_priv, 32);
	crypto_scalarmult_base(other_pub, other_priv);
	CHECK(zl_token_create(&t, &rec, other_pub, eps, 1, (uint64_t)time(NULL), 60) == ZL_TOKEN_OK);
	CHECK(zl_token_encode(&t, text, sizeof(text)));
	leader_start(&leader);
	r = run("join --token %s --data-dir %s/R3 --hostname w5", text, scratch);
	leader_join(&leader);
	expect_refused("R3", &r, "refused by the leader (unauthenticated): join: the leader could not read");

	/* A leader holding the key of the token but not the record: "token: invalid", authenticated. */
	memcpy(saved, leader.priv, 32);
	memcpy(leader.priv, other_priv, 32);
	leader_start(&leader);
	r = run("join --token %s --data-dir %s/R4 --hostname w6", text, scratch);
	leader_join(&leader);
	memcpy(leader.priv, saved, 32);
	expect_refused("R4", &r, "zl-overlay: join: token: invalid\n");

	/* A leader that hangs up after the request. */
	leader.mode = LEADER_HANG_UP;
	leader_start(&leader);
	r = run("join --token %s --data-dir %s/R5 --hostname w7", token1, scratch);
	leader_join(&leader);
	leader.mode = LEADER_NORMAL;
	expect_refused("R5", &r, "it closed the connection");

	/* Malformed input never reaches the network. The last character becomes one outside base64url: a
	 * letter there could leave the token valid (the same letter, 1 time in 64) or decodable. */
	r = run("join --token %.*s. --data-dir %s/R6 --hostname w8", (int)strlen(token1) - 1, token1, scratch);
	expect_refused("R6", &r, "token: malformed");
	zl_token_wipe(&t);
}

static void test_no_leader(void)
{
	struct run r;

	close(leader.lfd); /* nothing listens on the token's port any more */
	leader.lfd = -1;
	r = run("join --token %s --data-dir %s/R7 --hostname w9", token1, scratch);
	expect_refused("R7", &r, "cannot reach the leader at any endpoint");
}

static void cleanup(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", scratch);
	if (!getenv("ZL_KEEP") && system(cmd) != 0)
		fprintf(stderr, "cleanup of %s failed\n", scratch);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	snprintf(scratch, sizeof(scratch), "/tmp/zl-test-cli-join-XXXXXX");
	if (!mkdtemp(scratch))
		return 1;
	leader.lfd = listen_loopback(&leader.port);
	TEST_RUN(test_init_leader);
	TEST_RUN(test_join);
	TEST_RUN(test_join_json);
	TEST_RUN(test_offline_tokens_and_refusals);
	TEST_RUN(test_refusals);
	TEST_RUN(test_no_leader);
	cleanup();
	return TEST_SUMMARY();
}
