/* zl-overlayd's node logic without an interface: a leader admitting and removing members (allocation
 * inside the slice, ids, one atomic save, nothing changed on refusal or on a failed save), a worker
 * applying pushed lists, member lookups, and the log quoting. The device is a real wg_device with
 * fake I/O; state lives in a scratch directory under /tmp (removed at the end). */
#include <arpa/inet.h>
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "overlay/atomic_file.h"
#include "overlay/names.h"
#include "overlayd/log.h"
#include "overlayd/member_check.h"
#include "overlayd/node.h"
#include "overlayd_fixture.h"
#include "test.h"

static char scratch[64];
static int dir_seq;


/* A fresh data dir with a leader's state (cidr, one unused token), loaded into n with a fake device.
 * The token record is returned in *tok. */
static void make_leader(struct od_node *n, const char *cidr, const char *node_ip, const char *slice,
			struct zl_token_record *tok)
{
	char dir[128], path[160], err[256];
	struct zl_state st;
	struct zl_token t;
	const char *ep = "192.0.2.1:51820";

	snprintf(dir, sizeof(dir), "%s/d%d", scratch, ++dir_seq);
	snprintf(path, sizeof(path), "%s/%s", dir, ZL_STATE_FILE_NAME);
	memset(&st, 0, sizeof(st));
	snprintf(st.config.node_id, sizeof(st.config.node_id), "leader");
	snprintf(st.config.cidr, sizeof(st.config.cidr), "%s", cidr);
	snprintf(st.config.node_ip, sizeof(st.config.node_ip), "%s", node_ip);
	snprintf(st.config.slice_cidr, sizeof(st.config.slice_cidr), "%s", slice);
	snprintf(st.config.interface, sizeof(st.config.interface), "zl-test0");
	snprintf(st.config.endpoint, sizeof(st.config.endpoint), "%s", ep);
	st.config.port = 51820;
	st.config.is_leader = true;
	st.config.created_at = 1700000000;
	keypair(st.config.private_key, st.config.public_key);
	CHECK(zl_token_create(&t, tok, st.config.public_key, &ep, 1, (uint64_t)time(NULL), 3600) == ZL_TOKEN_OK);
	zl_token_wipe(&t);
	st.tokens = calloc(1, sizeof(*st.tokens));
	st.n_tokens = 1;
	od_token_to_state(tok, &st.tokens[0]);
	CHECK(zl_state_save(path, &st) == 0);
	zl_state_free(&st);

	memset(n, 0, sizeof(*n));
	CHECK(od_node_load(n, dir, NULL, err, sizeof(err)) == 0);
	n->dev = fake_device();
	CHECK(n->dev != NULL);
}

static void close_node(struct od_node *n)
{
	wg_device_free(n->dev);
	n->dev = NULL;
	od_node_close(n);
}

static struct zl_join_request request(const char *hostname, const char *endpoint)
{
	struct zl_join_request r;
	uint8_t priv[32];

	memset(&r, 0, sizeof(r));
	keypair(priv, r.public_key);
	snprintf(r.hostname, sizeof(r.hostname), "%s", hostname);
	snprintf(r.endpoint, sizeof(r.endpoint), "%s", endpoint);
	return r;
}

static struct zl_ip ip_of(const char *s)
{
	struct zl_ip ip;

	CHECK(zl_ip_parse(s, &ip, NULL, 0) == 0);
	return ip;
}

static char *read_file(const char *path)
{
	char *buf = NULL;
	size_t len;

	return zl_file_read_capped(path, ZL_FILE_READ_MAX, &buf, &len) == 0 ? buf : NULL;
}

static void test_admit_allocates_in_slice_and_persists(void)
{
	struct od_node n, again;
	struct zl_token_record tok;
	struct zl_join_request req = request("Worker-1", "");
	struct zl_ip src = ip_of("192.0.2.7"), ip;
	struct zl_prefix slice;
	char err[256], name[ZL_NODE_NAME_SIZE];
	struct wg_peer *wp;
	struct wg_peer_info info;

	make_leader(&n, "10.200.0.0/16", "10.200.0.1", "10.200.0.0/28", &tok);
	CHECK(od_node_admit(&n, &req, 0, &src, err, sizeof(err)) == ZL_JOIN_OK);
	CHECK(n.st.n_peers == 1);
	if (n.st.n_peers != 1)
		return;
	const struct zl_state_peer *p = &n.st.peers[0];
	ip = ip_of(p->overlay_ip);
	CHECK(zl_prefix_parse(p->slice_cidr, &slice, NULL, 0) == 0 && slice.len == 28);
	CHECK(zl_prefix_contains(&slice, &ip) && zl_prefix_contains(&n.cluster, &ip));
	/* The first usable address of its slice, and the id is that address's DNS name. */
	CHECK(zl_prefix_offset(&slice, &ip) == 1);
	CHECK(zl_node_name(p->overlay_ip, name) == 0 && strcmp(p->node_id, name) == 0);
	CHECK(strcmp(p->hostname, "worker-1") == 0);
	CHECK(strcmp(p->endpoint, "192.0.2.7:51820") == 0);   /* no advertised endpoint: source + 51820 */
	CHECK(p->keepalive == 25);
	CHECK(n.st.tokens[0].uses == 1);
	CHECK(zl_ipam_is_allocated(n.ipam, &ip));
	wp = wg_device_find_peer(n.dev, req.public_key);
	CHECK(wp != NULL);
	if (wp) {
		wg_peer_get_info(wp, &info);
		CHECK(info.allowed_ip_count == 1 && info.persistent_keepalive_interval == 25);
		CHECK(info.endpoint.addr.sa.sa_family == AF_INET);
	}
	/* On disk: the member, its allocation and the spent token, all in the one save. */
	memset(&again, 0, sizeof(again));
	CHECK(od_node_load(&again, n.data_dir, NULL, err, sizeof(err)) == 0);
	CHECK(again.st.n_peers == 1 && strcmp(again.st.peers[0].node_id, p->node_id) == 0);
	CHECK(again.st.tokens[0].uses == 1);
	CHECK(zl_ipam_is_allocated(again.ipam, &ip));
	CHECK(zl_slices_lookup(again.slices, p->node_id, &slice));
	od_node_close(&again);
	close_node(&n);
}

static void test_admit_advertised_endpoint_and_key_in_use(void)
{
	struct od_node n;
	struct zl_token_record tok;
	struct zl_join_request req = request("w", "[2001:db8::9]:51999");
	struct zl_ip src = ip_of("192.0.2.7");
	char err[256], *before, *after;

	make_leader(&n, "10.200.0.0/16", "10.200.0.1", "10.200.0.0/28", &tok);
	CHECK(od_node_admit(&n, &req, 0, &src, err, sizeof(err)) == ZL_JOIN_OK);
	CHECK(n.st.n_peers == 1 && strcmp(n.st.peers[0].endpoint, "[2001:db8::9]:51999") == 0);
	/* The same key again, and the leader's own key: refused, and nothing changes anywhere. */
	before = read_file(n.state_path);
	CHECK(od_node_admit(&n, &req, 0, &src, err, sizeof(err)) == ZL_JOIN_ERR_KEY_IN_USE);
	memcpy(req.public_key, n.st.config.public_key, 32);
	CHECK(od_node_admit(&n, &req, 0, &src, err, sizeof(err)) == ZL_JOIN_ERR_KEY_IN_USE);
	after = read_file(n.state_path);
	CHECK(n.st.n_peers == 1 && zl_ipam_allocated(n.ipam) == 2);
	CHECK(before && after && strcmp(before, after) == 0);
	free(before);
	free(after);
	close_node(&n);
}

static enum zl_atomic_step failing_step;
static int fault(enum zl_atomic_step step) { return step == failing_step ? -EIO : 0; }

static void test_failed_save_changes_nothing(void)
{
	struct od_node n;
	struct zl_token_record tok;
	struct zl_join_request req = request("w", "");
	struct zl_ip src = ip_of("192.0.2.7");
	char err[256], first_ip[ZL_IP_STRLEN], first_id[ZL_NODE_ID_SIZE], *before, *after;

	make_leader(&n, "10.200.0.0/16", "10.200.0.1", "10.200.0.0/28", &tok);
	before = read_file(n.state_path);
	for (failing_step = ZL_ATOMIC_STEP_WRITE; failing_step <= ZL_ATOMIC_STEP_RENAME; failing_step++) {
		zl_atomic_fault_hook = fault;
		CHECK(od_node_admit(&n, &req, 0, &src, err, sizeof(err)) == ZL_JOIN_ERR_INTERNAL);
		zl_atomic_fault_hook = NULL;
		CHECK(n.st.n_peers == 0 && n.st.tokens[0].uses == 0);
		CHECK(zl_ipam_allocated(n.ipam) == 1 && zl_slices_count(n.slices, ZL_SLICE_NODE) == 1);
		CHECK(wg_device_find_peer(n.dev, req.public_key) == NULL);
	}
	after = read_file(n.state_path);
	CHECK(before && after && strcmp(before, after) == 0);
	/* Then it works, with what a first attempt would have got. */
	CHECK(od_node_admit(&n, &req, 0, &src, err, sizeof(err)) == ZL_JOIN_OK);
	snprintf(first_ip, sizeof(first_ip), "%s", n.st.peers[0].overlay_ip);
	snprintf(first_id, sizeof(first_id), "%s", n.st.peers[0].node_id);
	/* A failed removal keeps the member (in memory, on disk and in the allocators). */
	failing_step = ZL_ATOMIC_STEP_RENAME;
	zl_atomic_fault_hook = fault;
	CHECK(od_node_remove_member(&n, 0, err, sizeof(err)) != 0);
	zl_atomic_fault_hook = NULL;
	CHECK(n.st.n_peers == 1 && strcmp(n.st.peers[0].node_id, first_id) == 0);
	CHECK(zl_ipam_is_allocated(n.ipam, &(struct zl_ip){ 0 }) == false);
	struct zl_ip ip = ip_of(first_ip);
	CHECK(zl_ipam_is_allocated(n.ipam, &ip));
	free(before);
	free(after);
	close_node(&n);
}

static void test_remove_frees_address_and_slice(void)
{
	struct od_node n, again;
	struct zl_token_record tok, tok2;
	struct zl_join_request a = request("a", ""), b = request("b", "");
	struct zl_ip src = ip_of("192.0.2.7"), ip;
	struct zl_prefix slice;
	char err[256], id[ZL_NODE_ID_SIZE];

	make_leader(&n, "10.200.0.0/16", "10.200.0.1", "10.200.0.0/28", &tok);
	/* A second token for the second join. */
	struct zl_token t;
	const char *ep = "192.0.2.1:51820";
	CHECK(zl_token_create(&t, &tok2, n.st.config.public_key, &ep, 1, (uint64_t)time(NULL), 60) == ZL_TOKEN_OK);
	zl_token_wipe(&t);
	n.st.tokens = realloc(n.st.tokens, 2 * sizeof(*n.st.tokens));
	od_token_to_state(&tok2, &n.st.tokens[1]);
	n.st.n_tokens = 2;

	CHECK(od_node_admit(&n, &a, 0, &src, err, sizeof(err)) == ZL_JOIN_OK);
	CHECK(od_node_admit(&n, &b, 1, &src, err, sizeof(err)) == ZL_JOIN_OK);
	CHECK(n.st.n_peers == 2);
	snprintf(id, sizeof(id), "%s", n.st.peers[0].node_id);
	ip = ip_of(n.st.peers[0].overlay_ip);
	CHECK(od_node_remove_member(&n, 0, err, sizeof(err)) == 0);
	CHECK(n.st.n_peers == 1 && memcmp(n.st.peers[0].public_key, b.public_key, 32) == 0);
	CHECK(!zl_ipam_is_allocated(n.ipam, &ip) && !zl_slices_lookup(n.slices, id, &slice));
	/* The WireGuard peer stays until it is forgotten (so a last message can still reach it). */
	CHECK(wg_device_find_peer(n.dev, a.public_key) != NULL);
	od_node_forget_device_peer(&n, a.public_key);
	CHECK(wg_device_find_peer(n.dev, a.public_key) == NULL);
	od_node_forget_device_peer(&n, b.public_key);   /* a member: kept */
	CHECK(wg_device_find_peer(n.dev, b.public_key) != NULL);
	memset(&again, 0, sizeof(again));
	CHECK(od_node_load(&again, n.data_dir, NULL, err, sizeof(err)) == 0);
	CHECK(again.st.n_peers == 1 && !zl_ipam_is_allocated(again.ipam, &ip));
	CHECK(again.st.ip_allocator.n_allocated == 2 && again.st.slice_allocator.n_assigned == 2);
	od_node_close(&again);
	close_node(&n);
}

static void test_ipv6_member_ids(void)
{
	struct od_node n;
	struct zl_token_record tok;
	struct zl_join_request req = request("w6", "");
	struct zl_ip src = ip_of("2001:db8::7");
	struct zl_prefix slice;
	char err[256], want[64];

	make_leader(&n, "fd00:200::/48", "fd00:200::1", "fd00:200::/64", &tok);
	CHECK(od_node_admit(&n, &req, 0, &src, err, sizeof(err)) == ZL_JOIN_OK);
	if (n.st.n_peers != 1)
		return;
	CHECK(zl_prefix_parse(n.st.peers[0].slice_cidr, &slice, NULL, 0) == 0 && slice.len == 64);
	/* Slice index = the fourth group; host offset 1. */
	snprintf(want, sizeof(want), "node6-%x-1", (unsigned)(slice.ip.addr[6] << 8 | slice.ip.addr[7]));
	CHECK(strcmp(n.st.peers[0].node_id, want) == 0);
	CHECK(strcmp(n.st.peers[0].endpoint, "[2001:db8::7]:51820") == 0);
	close_node(&n);
}

static struct zl_state_peer peer(const char *id, const char *ip, const char *ep, const uint8_t key[32])
{
	struct zl_state_peer p;

	memset(&p, 0, sizeof(p));
	snprintf(p.node_id, sizeof(p.node_id), "%s", id);
	snprintf(p.overlay_ip, sizeof(p.overlay_ip), "%s", ip);
	snprintf(p.endpoint, sizeof(p.endpoint), "%s", ep);
	memcpy(p.public_key, key, 32);
	p.keepalive = 25;
	return p;
}

static struct zl_state_peer *list_of(const struct zl_state_peer *ps, size_t n)
{
	struct zl_state_peer *a = calloc(n, sizeof(*a));

	memcpy(a, ps, n * sizeof(*a));
	return a;
}

static void test_worker_applies_pushed_lists(void)
{
	struct od_node n;
	struct zl_token_record tok;
	uint8_t priv[32], kl[32], ko[32];
	char err[256];

	/* A worker: the leader-shaped fixture with is_leader off and the leader as first peer. */
	make_leader(&n, "10.200.0.0/16", "10.200.0.17", "10.200.0.16/28", &tok);
	keypair(priv, kl);
	keypair(priv, ko);
	n.st.config.is_leader = false;
	snprintf(n.st.config.node_id, sizeof(n.st.config.node_id), "node-0-17");
	struct zl_state_peer start[1] = { peer("leader", "10.200.0.1", "192.0.2.1:51820", kl) };
	CHECK(od_node_set_peers(&n, list_of(start, 1), 1, err, sizeof(err)) == 1);
	CHECK(wg_device_find_peer(n.dev, kl) != NULL);

	/* The leader's entry without an endpoint keeps the known one; a new member is added. */
	struct zl_state_peer pushed[2] = { peer("leader", "10.200.0.1", "", kl),
					   peer("node-0-33", "10.200.0.33", "192.0.2.3:51820", ko) };
	CHECK(od_node_set_peers(&n, list_of(pushed, 2), 2, err, sizeof(err)) == 1);
	CHECK(n.st.n_peers == 2 && strcmp(n.st.peers[0].endpoint, "192.0.2.1:51820") == 0);
	CHECK(wg_device_find_peer(n.dev, ko) != NULL && wg_device_peer_count(n.dev) == 2);
	/* The same list again: no change, no write. */
	CHECK(od_node_set_peers(&n, list_of(pushed, 2), 2, err, sizeof(err)) == 0);
	/* An invalid list (a key twice; this node's own address) is refused whole. */
	struct zl_state_peer dup[2] = { peer("leader", "10.200.0.1", "", kl), peer("x", "10.200.0.40", "", kl) };
	CHECK(od_node_set_peers(&n, list_of(dup, 2), 2, err, sizeof(err)) == -EINVAL);
	struct zl_state_peer self_ip[1] = { peer("leader", "10.200.0.17", "", kl) };
	CHECK(od_node_set_peers(&n, list_of(self_ip, 1), 1, err, sizeof(err)) == -EINVAL);
	CHECK(n.st.n_peers == 2 && wg_device_peer_count(n.dev) == 2);
	/* A removal removes the WireGuard peer too. */
	CHECK(od_node_set_peers(&n, list_of(start, 1), 1, err, sizeof(err)) == 1);
	CHECK(wg_device_find_peer(n.dev, ko) == NULL && wg_device_peer_count(n.dev) == 1);
	close_node(&n);
}

static void test_find_member(void)
{
	struct od_node n;
	struct zl_token_record tok;
	uint8_t priv[32], k1[32], k2[32], k3[32];
	char err[256];

	make_leader(&n, "10.200.0.0/16", "10.200.0.17", "10.200.0.16/28", &tok);
	keypair(priv, k1);
	keypair(priv, k2);
	keypair(priv, k3);
	n.st.config.is_leader = false;
	struct zl_state_peer ps[3] = { peer("a", "10.200.0.1", "", k1), peer("b", "10.200.0.2", "", k2),
				       peer("c", "10.200.0.3", "", k3) };
	snprintf(ps[0].hostname, sizeof(ps[0].hostname), "web");
	snprintf(ps[1].hostname, sizeof(ps[1].hostname), "db");
	snprintf(ps[2].hostname, sizeof(ps[2].hostname), "db");
	CHECK(od_node_set_peers(&n, list_of(ps, 3), 3, err, sizeof(err)) == 1);
	CHECK(od_node_find_member(&n, "b", err, sizeof(err)) == 1);
	CHECK(od_node_find_member(&n, "10.200.0.3", err, sizeof(err)) == 2);
	CHECK(od_node_find_member(&n, "WEB", err, sizeof(err)) == 0);
	CHECK(od_node_find_member(&n, "db", err, sizeof(err)) == -1 && strstr(err, "shared by 2") != NULL);
	CHECK(od_node_find_member(&n, "nope", err, sizeof(err)) == -1 && strstr(err, "no member") != NULL);
	close_node(&n);
}

static void test_log_quoting(void)
{
	const char *plain = "node-0-49";

	CHECK(od_q(plain) == plain);
	CHECK(strcmp(od_q(""), "\"\"") == 0);
	CHECK(strcmp(od_q("a b"), "\"a b\"") == 0);
	CHECK(strcmp(od_q("k=v"), "\"k=v\"") == 0);
	CHECK(strcmp(od_q("x\n\"\\"), "\"x\\x0a\\\"\\\\\"") == 0);
	/* A forged line or field cannot come through. */
	CHECK(strchr(od_q("a\nts=1 level=error"), '\n') == NULL);
}

/* The membership check: the leader reads the asking key and answers; the worker accepts only the
 * leader's answer to its own, current check; nobody else can ask for a key or forge an answer. */
static void test_member_check(void)
{
	uint8_t lpub[32], lpriv[32], wpub[32], wpriv[32], xpub[32], xpriv[32], asked[32];
	uint8_t req[OD_MCHECK_REQUEST_LEN], bad[OD_MCHECK_REQUEST_LEN], st[OD_MCHECK_STATUS_LEN];
	uint8_t st2[OD_MCHECK_STATUS_LEN], old_st[OD_MCHECK_STATUS_LEN], zero[32] = { 0 };
	struct od_mcheck_session ws, ls, ws_copy;

	keypair(lpriv, lpub);
	keypair(wpriv, wpub);
	keypair(xpriv, xpub);

	/* Round trip, both answers. */
	CHECK(od_mcheck_request_build(&ws, wpriv, wpub, lpub, req));
	CHECK(od_mcheck_is_check(req));
	CHECK(od_mcheck_request_open(&ls, lpriv, lpub, req, sizeof(req), asked));
	CHECK_MEM_EQ(asked, wpub, 32);
	ws_copy = ws;
	od_mcheck_status_build(&ls, OD_MCHECK_NOT_MEMBER, st);
	CHECK_MEM_EQ(&ls, zero, sizeof(zero));                    /* wiped after answering */
	CHECK(od_mcheck_status_open(&ws, st, sizeof(st)) == OD_MCHECK_NOT_MEMBER);
	CHECK(od_mcheck_request_open(&ls, lpriv, lpub, req, sizeof(req), asked));
	od_mcheck_status_build(&ls, OD_MCHECK_MEMBER, st2);
	CHECK(od_mcheck_status_open(&ws_copy, st2, sizeof(st2)) == OD_MCHECK_MEMBER);
	memcpy(old_st, st, sizeof(st));

	/* A third party cannot ask in the worker's name: its own key with the worker's public key in the
	 * request, or any change of a real request, fails the MAC. */
	CHECK(od_mcheck_request_build(&ws, xpriv, wpub, lpub, bad));
	CHECK(!od_mcheck_request_open(&ls, lpriv, lpub, bad, sizeof(bad), asked));
	for (size_t i = 0; i < sizeof(req); i++) {
		memcpy(bad, req, sizeof(req));
		bad[i] ^= 0x01;
		CHECK(!od_mcheck_request_open(&ls, lpriv, lpub, bad, sizeof(bad), asked));
	}
	CHECK(!od_mcheck_request_open(&ls, lpriv, lpub, req, sizeof(req) - 1, asked));
	/* A request for another leader does not open with this one's key. */
	CHECK(od_mcheck_request_build(&ws, wpriv, wpub, xpub, bad));
	CHECK(!od_mcheck_request_open(&ls, lpriv, lpub, bad, sizeof(bad), asked));
	/* A low-order key is refused on both sides. */
	CHECK(!od_mcheck_request_build(&ws, wpriv, wpub, zero, bad));

	/* Answers: a replayed old answer (another nonce), a flipped status, a forged MAC, a wrong length
	 * or a status value that does not exist are all rejected (0). */
	CHECK(od_mcheck_request_build(&ws, wpriv, wpub, lpub, req));
	ws_copy = ws;
	CHECK(od_mcheck_status_open(&ws, old_st, sizeof(old_st)) == 0);
	CHECK(od_mcheck_request_open(&ls, lpriv, lpub, req, sizeof(req), asked));
	od_mcheck_status_build(&ls, OD_MCHECK_MEMBER, st);
	for (size_t i = 0; i < sizeof(st); i++) {
		struct od_mcheck_session t = ws_copy;

		memcpy(st2, st, sizeof(st));
		st2[i] ^= (i == OD_MCHECK_HEADER_LEN) ? 0x03 : 0x01;  /* 1 -> 2 for the status byte */
		CHECK(od_mcheck_status_open(&t, st2, sizeof(st2)) == 0);
	}
	{
		struct od_mcheck_session t = ws_copy;

		CHECK(od_mcheck_status_open(&t, st, sizeof(st) - 1) == 0);
	}
	/* An answer built by someone holding a different key (not the leader) does not verify. */
	CHECK(od_mcheck_request_build(&ls, xpriv, xpub, wpub, bad));   /* any session with another key */
	memcpy(ls.nonce, ws_copy.nonce, sizeof(ls.nonce));
	od_mcheck_status_build(&ls, OD_MCHECK_NOT_MEMBER, st2);
	{
		struct od_mcheck_session t = ws_copy;

		CHECK(od_mcheck_status_open(&t, st2, sizeof(st2)) == 0);
	}
	CHECK(od_mcheck_status_open(&ws_copy, st, sizeof(st)) == OD_MCHECK_MEMBER);
	sodium_memzero(lpriv, 32);
	sodium_memzero(wpriv, 32);
	sodium_memzero(xpriv, 32);
}

int main(void)
{
	snprintf(scratch, sizeof(scratch), "/tmp/test_overlayd_node.XXXXXX");
	if (!mkdtemp(scratch) || sodium_init() < 0)
		return 1;
	wg_log_set_level(WG_LOG_SILENT);
	TEST_RUN(test_admit_allocates_in_slice_and_persists);
	TEST_RUN(test_admit_advertised_endpoint_and_key_in_use);
	TEST_RUN(test_failed_save_changes_nothing);
	TEST_RUN(test_remove_frees_address_and_slice);
	TEST_RUN(test_ipv6_member_ids);
	TEST_RUN(test_worker_applies_pushed_lists);
	TEST_RUN(test_find_member);
	TEST_RUN(test_log_quoting);
	TEST_RUN(test_member_check);
	if (!getenv("ZL_KEEP")) {
		char cmd[128];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", scratch);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", scratch);
	}
	return TEST_SUMMARY();
}
