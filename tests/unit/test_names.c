/* Deterministic names: interface names (exact short forms, hashed forms against an independent
 * rendering of the documented rule and golden values, collisions over random and sequential inputs),
 * the kernel's validity rules as a table, DNS node names and hostname labels.
 * Seed: ZL_TEST_SEED in the environment, else a fixed one. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "test.h"
#include "overlay/cidr.h"
#include "overlay/names.h"
#include "overlay/slices.h"

static uint64_t rng_state;

static uint64_t rng(void)
{
	/* splitmix64: good enough for test inputs, reproducible from the seed. */
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void test_fnv_vectors(void)
{
	/* Published FNV-1a 64-bit test vectors. */
	CHECK(zl_slices_fnv1a64("", 0) == 0xcbf29ce484222325ULL);
	CHECK(zl_slices_fnv1a64("a", 1) == 0xaf63dc4c8601ec8cULL);
	CHECK(zl_slices_fnv1a64("foobar", 6) == 0x85944171f73967e8ULL);
}

static void test_short_names_exact(void)
{
	char out[ZL_IFNAME_SIZE];

	CHECK(ZL_IFNAME_MAKE(out, NULL, "br", "web") == 0 && !strcmp(out, "zl-br-web"));
	CHECK(ZL_IFNAME_MAKE(out, "h", "1234") == 0 && !strcmp(out, "zl-1234-h"));
	CHECK(ZL_IFNAME_MAKE(out, "", "overlay0") == 0 && !strcmp(out, "zl-overlay0"));
	CHECK(ZL_IFNAME_MAKE(out, "c", "a", "b", "c") == 0 && !strcmp(out, "zl-a-b-c-c"));
	/* Exactly 15 bytes stays readable; 16 gets hashed. */
	CHECK(ZL_IFNAME_MAKE(out, NULL, "123456789012") == 0 && !strcmp(out, "zl-123456789012"));
	CHECK(ZL_IFNAME_MAKE(out, NULL, "1234567890123") == 0 && strncmp(out, "zl-123456789012", 15) != 0);
	CHECK(strlen(out) == 15);
}

/* The rule of names.h written again, the slow and obvious way, for comparison. */
static void reference_name(const char *full, const char *suffix, char out[ZL_IFNAME_SIZE])
{
	static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz234567";
	uint64_t h = 0xcbf29ce484222325ULL;
	size_t digits = suffix ? 11 - strlen(suffix) : 12;
	char d[13] = { 0 };

	for (const char *p = full; *p; p++)
		h = (h ^ (uint8_t)*p) * 0x100000001b3ULL;
	for (size_t i = 0; i < digits; i++) {
		unsigned v = 0;
		for (size_t bit = 0; bit < 5; bit++)
			v = v << 1 | (unsigned)((h >> (63 - (5 * i + bit))) & 1);
		d[i] = alphabet[v];
	}
	snprintf(out, ZL_IFNAME_SIZE, "zl-%s%s%s", d, suffix ? "-" : "", suffix ? suffix : "");
}

static void test_hashed_names_golden(void)
{
	char out[ZL_IFNAME_SIZE], ref[ZL_IFNAME_SIZE];

	/* Golden values (computed independently from the documented rule). */
	CHECK(ZL_IFNAME_MAKE(out, "h", "service", "frontend") == 0 && !strcmp(out, "zl-zxyg7atpzt-h"));
	CHECK(ZL_IFNAME_MAKE(out, "c", "service", "frontend") == 0 && !strcmp(out, "zl-zxygjatpzt-c"));
	CHECK(ZL_IFNAME_MAKE(out, NULL, "service", "frontend") == 0 && !strcmp(out, "zl-3nhvvs36yjrl"));
	CHECK(ZL_IFNAME_MAKE(out, "br", "br", "a-very-long-service") == 0 && !strcmp(out, "zl-pwkumobhw-br"));
	reference_name("zl-service-frontend-h", "h", ref);
	CHECK(!strcmp(ref, "zl-zxyg7atpzt-h"));
}

static void random_part(char *p, size_t n)
{
	static const char chars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-";

	for (size_t i = 0; i < n; i++)
		p[i] = chars[rng() % (sizeof(chars) - 1)];
	p[n] = '\0';
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* Random inputs: every hashed name is 15 bytes, valid, equal to the reference, the same on a second
 * call, and no two distinct inputs share a name. */
static void test_hashed_names_random(void)
{
	enum { N = 5000 };
	static const char *const suffixes[] = { NULL, "h", "c", "br", "abc" };
	char(*names)[ZL_IFNAME_SIZE] = calloc(N, ZL_IFNAME_SIZE);
	int bad = 0, collisions = 0;

	for (size_t i = 0; i < N; i++) {
		char a[48], b[16], tag[24], full[128], again[ZL_IFNAME_SIZE], ref[ZL_IFNAME_SIZE];
		const char *suffix = suffixes[i % 5];
		random_part(a, 10 + rng() % 30);
		random_part(b, 1 + rng() % 10);
		snprintf(tag, sizeof(tag), "%zu", i); /* makes every input distinct */
		if (ZL_IFNAME_MAKE(names[i], suffix, a, b, tag) != 0) {
			bad++;
			continue;
		}
		snprintf(full, sizeof(full), "zl-%s-%s-%s%s%s", a, b, tag, suffix ? "-" : "", suffix ? suffix : "");
		reference_name(full, suffix, ref);
		ZL_IFNAME_MAKE(again, suffix, a, b, tag);
		if (strlen(names[i]) != 15 || strcmp(names[i], ref) || strcmp(names[i], again) ||
		    !zl_ifname_valid(names[i], NULL, 0))
			bad++;
	}
	CHECK(bad == 0);
	qsort(names, N, ZL_IFNAME_SIZE, cmp_names);
	for (size_t i = 1; i < N; i++)
		collisions += !strcmp(names[i - 1], names[i]);
	CHECK(collisions == 0);
	free(names);
}

/* The realistic pattern: one long service name and consecutive PIDs (40 bits with "abc"). */
static void test_hashed_names_sequential(void)
{
	enum { N = 20000 };
	char(*names)[ZL_IFNAME_SIZE] = calloc(N, ZL_IFNAME_SIZE);
	int collisions = 0;

	for (size_t i = 0; i < N; i++) {
		char pid[16];
		snprintf(pid, sizeof(pid), "%zu", 100000 + i);
		CHECK(ZL_IFNAME_MAKE(names[i], "abc", "my-service", pid) == 0);
	}
	qsort(names, N, ZL_IFNAME_SIZE, cmp_names);
	for (size_t i = 1; i < N; i++)
		collisions += !strcmp(names[i - 1], names[i]);
	CHECK(collisions == 0);
	free(names);
}

static void test_make_refuses(void)
{
	char out[ZL_IFNAME_SIZE] = "junk";
	const char *none[1] = { "x" };

	CHECK(zl_ifname_make(out, NULL, none, 0) == -EINVAL && out[0] == '\0');
	CHECK(ZL_IFNAME_MAKE(out, NULL, "") == -EINVAL);
	CHECK(ZL_IFNAME_MAKE(out, NULL, "a", NULL) == -EINVAL);
	CHECK(ZL_IFNAME_MAKE(out, NULL, "a/b") == -EINVAL);
	CHECK(ZL_IFNAME_MAKE(out, NULL, "a b") == -EINVAL);
	CHECK(ZL_IFNAME_MAKE(out, NULL, "a:b") == -EINVAL);
	CHECK(ZL_IFNAME_MAKE(out, NULL, "a%d") == -EINVAL);
	CHECK(ZL_IFNAME_MAKE(out, "abcd", "a") == -EINVAL); /* suffix longer than 3 */
	CHECK(ZL_IFNAME_MAKE(out, "a-b", "a") == -EINVAL);  /* '-' would blur the suffix */
	CHECK(ZL_IFNAME_MAKE(out, "abc", "a") == 0 && !strcmp(out, "zl-a-abc"));
}

struct validity {
	const char *name;
	bool valid;
};

static void test_ifname_valid_table(void)
{
	static const struct validity table[] = {
		{ "eth0", true },
		{ "zl-overlay0", true },
		{ "a", true },
		{ "123456789012345", true },   /* 15 bytes */
		{ "1234567890123456", false }, /* 16 bytes */
		{ "", false },
		{ ".", false },
		{ "..", false },
		{ "...", true },
		{ "a.b", true },
		{ "-", true },
		{ "a/b", false },
		{ "a:b", false },
		{ "a b", false },
		{ "a\tb", false },
		{ "a\nb", false },
		{ "a\vb", false },
		{ "a\fb", false },
		{ "a\rb", false },
		{ "a\xa0", false },     /* the kernel's isspace includes Latin-1 NBSP */
		{ "\xc3\xa0", false },  /* ...so UTF-8 "à" (its second byte is 0xa0) is refused too */
		{ "\xc3\xa9", true },   /* "é" is fine */
		{ "eth%d", false },     /* a creation template, refused by us */
	};
	char err[128];

	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		err[0] = '\0';
		bool v = zl_ifname_valid(table[i].name, err, sizeof(err));
		if (v != table[i].valid)
			fprintf(stderr, "  ifname case %zu\n", i);
		CHECK(v == table[i].valid);
		CHECK(v || err[0] != '\0');
	}
	CHECK(!zl_ifname_valid("1234567890123456", err, sizeof(err)) && strstr(err, "15"));
}

struct node_case {
	const char *addr, *name;
};

static void test_node_names_from_slices(void)
{
	struct zl_prefix cluster;
	struct zl_ip ip;
	char out[ZL_NODE6_NAME_SIZE], small[8];

	CHECK(zl_prefix_parse("fd00:200::/48", &cluster, NULL, 0) == 0);
	CHECK(zl_ip_parse("fd00:200:0:5ca::1", &ip, NULL, 0) == 0);
	CHECK(zl_node_name6_slice(&cluster, 64, &ip, out, sizeof(out)) == 0 && !strcmp(out, "node6-5ca-1"));
	CHECK(zl_ip_parse("fd00:200::1", &ip, NULL, 0) == 0);
	CHECK(zl_node_name6_slice(&cluster, 64, &ip, out, sizeof(out)) == 0 && !strcmp(out, "node6-0-1"));
	CHECK(zl_ip_parse("fd00:200:0:abcd::12", &ip, NULL, 0) == 0);
	CHECK(zl_node_name6_slice(&cluster, 56, &ip, out, sizeof(out)) == 0 && !strcmp(out, "node6-ab-cd0000000000000012"));
	/* Outside the cluster, a slice shorter than the cluster, an IPv4 address, no room: refused, out = "". */
	CHECK(zl_ip_parse("fd00:201::1", &ip, NULL, 0) == 0);
	CHECK(zl_node_name6_slice(&cluster, 64, &ip, out, sizeof(out)) == -EINVAL && out[0] == '\0');
	CHECK(zl_ip_parse("fd00:200::1", &ip, NULL, 0) == 0);
	CHECK(zl_node_name6_slice(&cluster, 40, &ip, out, sizeof(out)) == -EINVAL);
	CHECK(zl_node_name6_slice(&cluster, 64, &ip, small, sizeof(small)) == -EINVAL && small[0] == '\0');
	CHECK(zl_ip_parse("10.0.0.1", &ip, NULL, 0) == 0);
	CHECK(zl_node_name6_slice(&cluster, 64, &ip, out, sizeof(out)) == -EINVAL);
}

static void test_node_names(void)
{
	static const struct node_case table[] = {
		{ "10.200.0.5", "node-0-5" },
		{ "10.200.0.1", "node-0-1" },
		{ "10.200.1.0", "node-1-0" },
		{ "10.200.255.254", "node-255-254" },
		{ "192.168.7.42", "node-7-42" },
		{ "fd00:200::5", "node6-0-5" },
		{ "fd00:200::1:a0b", "node6-1-a0b" },
		{ "fd00:200::ffff:ffff", "node6-ffff-ffff" },
		{ "fd00:200:0:1::1", "node6-0-1" },
		{ "FD00:200::ABCD:1", "node6-abcd-1" },
		{ "::ffff:10.1.2.3", "node6-a01-203" }, /* v4-mapped is IPv6: the low 32 bits in hex */
	};
	char out[ZL_NODE_NAME_SIZE], label[ZL_HOSTNAME_SIZE];

	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		CHECK(zl_node_name(table[i].addr, out) == 0);
		if (strcmp(out, table[i].name))
			fprintf(stderr, "  node name %s: got %s\n", table[i].addr, out);
		CHECK(!strcmp(out, table[i].name));
		/* Always a valid, already lower-case DNS label. */
		CHECK(zl_hostname_normalize(out, label, NULL, 0) && !strcmp(label, out));
	}
	strcpy(out, "junk");
	CHECK(zl_node_name("10.200.0", out) == -EINVAL && out[0] == '\0');
	CHECK(zl_node_name("", out) == -EINVAL);
	CHECK(zl_node_name("node-0-5", out) == -EINVAL);
	CHECK(zl_node_name("10.200.0.5/32", out) == -EINVAL);
}

struct host_case {
	const char *in, *out; /* out NULL = refused */
};

static void test_hostnames(void)
{
	static const char l63[] = "a23456789012345678901234567890123456789012345678901234567890123";
	static const char l64[] = "a234567890123456789012345678901234567890123456789012345678901234";
	static const struct host_case table[] = {
		{ "web", "web" },
		{ "Web-1", "web-1" },
		{ "NODE", "node" },
		{ "a", "a" },
		{ "123", "123" },
		{ "a-b-c", "a-b-c" },
		{ l63, l63 },
		{ l64, NULL },
		{ "", NULL },
		{ "-a", NULL },
		{ "a-", NULL },
		{ "-", NULL },
		{ "a_b", NULL },
		{ "a.b", NULL },
		{ "a b", NULL },
		{ "caf\xc3\xa9", NULL },
	};
	char out[ZL_HOSTNAME_SIZE], err[128];

	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		bool ok = zl_hostname_normalize(table[i].in, out, err, sizeof(err));
		CHECK(ok == (table[i].out != NULL));
		if (ok && table[i].out)
			CHECK(!strcmp(out, table[i].out));
		if (!ok)
			CHECK(out[0] == '\0' && err[0] != '\0');
	}
	strcpy(out, "Mixed-Case");
	CHECK(zl_hostname_normalize(out, out, NULL, 0) && !strcmp(out, "mixed-case")); /* in place */
}

int main(void)
{
	const char *seed = getenv("ZL_TEST_SEED");

	rng_state = seed ? strtoull(seed, NULL, 0) : 0x5eed;
	TEST_RUN(test_fnv_vectors);
	TEST_RUN(test_short_names_exact);
	TEST_RUN(test_hashed_names_golden);
	TEST_RUN(test_hashed_names_random);
	TEST_RUN(test_hashed_names_sequential);
	TEST_RUN(test_make_refuses);
	TEST_RUN(test_ifname_valid_table);
	TEST_RUN(test_node_names);
	TEST_RUN(test_node_names_from_slices);
	TEST_RUN(test_hostnames);
	return TEST_SUMMARY();
}
