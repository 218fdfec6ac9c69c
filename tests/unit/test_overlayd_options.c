/* zl-overlayd's command line (overlayd/options.h): defaults, every option in both spellings, the
 * normalisation of the zone, the ranges of numbers and durations, and an error naming the option for
 * every kind of bad value. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "overlayd/options.h"
#include "test.h"

enum { MAX_ARGS = 32 };

static char errbuf[256];
static char *argv_store[MAX_ARGS + 1];

/* Parses the NULL-terminated words (argv[0] added) into o; the message lands in errbuf. */
static enum od_options_result parse_words(const char *const *words, struct od_options *o)
{
	int argc = 0;

	argv_store[argc++] = (char *)"zl-overlayd";
	for (; *words; words++) {
		if (argc >= MAX_ARGS) {
			fprintf(stderr, "test: too many words\n");
			abort();
		}
		argv_store[argc++] = (char *)*words;
	}
	argv_store[argc] = NULL;
	memset(errbuf, 'x', sizeof(errbuf) - 1);
	errbuf[sizeof(errbuf) - 1] = '\0';
	return od_options_parse(argc, argv_store, o, errbuf, sizeof(errbuf));
}
#define PARSE(o, ...) parse_words((const char *const[]){ __VA_ARGS__, NULL }, (o))

/* words must be refused with a message containing want. */
static void expect_error(const char *const *words, const char *want)
{
	struct od_options o;
	enum od_options_result r = parse_words(words, &o);

	CHECK(r == OD_OPTIONS_ERROR);
	if (r != OD_OPTIONS_ERROR || !strstr(errbuf, want))
		fprintf(stderr, "  for '%s ...': result %d, message '%s', wanted '%s'\n", words[0], (int)r, errbuf, want);
	CHECK(strstr(errbuf, want) != NULL);
}
#define EXPECT_ERROR(want, ...) expect_error((const char *const[]){ __VA_ARGS__, NULL }, (want))

static void test_defaults(void)
{
	struct od_options o;
	const char *none[] = { NULL };

	CHECK(parse_words(none, &o) == OD_OPTIONS_RUN);
	CHECK(o.data_dir == NULL && o.ifname == NULL);
	CHECK(o.dns);
	CHECK(!strcmp(o.dns_zone, "overlay.local."));
	CHECK(o.dns_port == 15353);
	CHECK(o.dns_forward[0] == '\0');
	CHECK(o.probe_interval_ms == 2000 && o.probe_misses == 3 && o.handshake_timeout_s == 180);
	CHECK(o.on_change == NULL);
	CHECK(o.metrics[0] == '\0');
	/* od_options_defaults alone gives the same. */
	struct od_options d;
	memset(&d, 0x5a, sizeof(d));
	od_options_defaults(&d);
	CHECK(d.dns && d.dns_port == 15353 && !strcmp(d.dns_zone, "overlay.local.") && d.on_change == NULL);
}

static void test_help_and_version(void)
{
	struct od_options o;

	CHECK(PARSE(&o, "--help") == OD_OPTIONS_HELP);
	CHECK(PARSE(&o, "-h") == OD_OPTIONS_HELP);
	CHECK(PARSE(&o, "--version") == OD_OPTIONS_VERSION);
	CHECK(PARSE(&o, "--dns-port", "53", "--help") == OD_OPTIONS_HELP);
	/* Help wins even over a bad argument, as users type it to learn the right one. */
	CHECK(PARSE(&o, "--bogus", "-h") == OD_OPTIONS_HELP);
}

static void test_paths(void)
{
	struct od_options o;

	CHECK(PARSE(&o, "--data-dir", "/tmp/x", "--interface", "zl-test0") == OD_OPTIONS_RUN);
	CHECK(o.data_dir && !strcmp(o.data_dir, "/tmp/x"));
	CHECK(o.ifname && !strcmp(o.ifname, "zl-test0"));
	CHECK(o.data_dir == argv_store[2]);   /* kept as a pointer into argv */
	CHECK(PARSE(&o, "--data-dir=/var/a", "--interface=wg7") == OD_OPTIONS_RUN);
	CHECK(!strcmp(o.data_dir, "/var/a") && !strcmp(o.ifname, "wg7"));
	EXPECT_ERROR("--data-dir: empty", "--data-dir", "");
	EXPECT_ERROR("--data-dir: empty", "--data-dir=");
	EXPECT_ERROR("--interface: empty", "--interface", "");
	EXPECT_ERROR("--interface: bad interface name 'a/b'", "--interface", "a/b");
	EXPECT_ERROR("--interface: bad interface name", "--interface", "a-name-of-16-byt");
	char longdir[260];
	memset(longdir, 'd', sizeof(longdir) - 1);
	longdir[0] = '/';
	longdir[sizeof(longdir) - 1] = '\0';
	EXPECT_ERROR("--data-dir: longer than", "--data-dir", longdir);
}

/* len characters: labels of 63 'a' separated by dots, the last one shorter. */
static void dotted(char *out, size_t len)
{
	memset(out, 'a', len);
	out[len] = '\0';
	for (size_t i = 63; i < len; i += 64)
		out[i] = '.';
}

static void test_zone(void)
{
	static const struct { const char *in, *out; } ok[] = {
		{ "overlay.local", "overlay.local." },
		{ "overlay.local.", "overlay.local." },
		{ "Corp.EXAMPLE.Org", "corp.example.org." },
		{ "single", "single." },
		{ "_svc.a-b.x9", "_svc.a-b.x9." },
	};
	struct od_options o;

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		CHECK(PARSE(&o, "--dns-zone", ok[i].in) == OD_OPTIONS_RUN);
		CHECK(!strcmp(o.dns_zone, ok[i].out));
	}
	CHECK(PARSE(&o, "--dns-zone=Mesh.Internal") == OD_OPTIONS_RUN && !strcmp(o.dns_zone, "mesh.internal."));

	/* 63-byte labels are fine; a 64-byte one is not. 253 characters in all are fine, 254 are not. */
	char l63[80], l64[80], name253[260], name254[260];
	memset(l63, 'a', 63); l63[63] = '\0';
	memset(l64, 'a', 64); l64[64] = '\0';
	CHECK(PARSE(&o, "--dns-zone", l63) == OD_OPTIONS_RUN && strlen(o.dns_zone) == 64);
	EXPECT_ERROR("--dns-zone: '", "--dns-zone", l64);
	dotted(name253, 253);
	CHECK(strlen(name253) == 253);
	CHECK(PARSE(&o, "--dns-zone", name253) == OD_OPTIONS_RUN && strlen(o.dns_zone) == 254);
	dotted(name254, 254);
	EXPECT_ERROR("--dns-zone: name longer than 253", "--dns-zone", name254);

	EXPECT_ERROR("the root zone cannot be served", "--dns-zone", ".");
	EXPECT_ERROR("the root zone cannot be served", "--dns-zone", "");
	EXPECT_ERROR("empty label", "--dns-zone", "a..");
	EXPECT_ERROR("is not a DNS name", "--dns-zone", "a..b");
	EXPECT_ERROR("is not a DNS name", "--dns-zone", ".a");
	EXPECT_ERROR("is not a DNS name", "--dns-zone", "-a.b");
	EXPECT_ERROR("is not a DNS name", "--dns-zone", "a-.b");
	EXPECT_ERROR("is not a DNS name", "--dns-zone", "a b");
	EXPECT_ERROR("is not a DNS name", "--dns-zone", "a/b");
	EXPECT_ERROR("is not a DNS name", "--dns-zone", "caf\xc3\xa9.local");
}

static void test_port(void)
{
	struct od_options o;

	CHECK(PARSE(&o, "--dns-port", "53") == OD_OPTIONS_RUN && o.dns_port == 53);
	CHECK(PARSE(&o, "--dns-port=1") == OD_OPTIONS_RUN && o.dns_port == 1);
	CHECK(PARSE(&o, "--dns-port", "65535") == OD_OPTIONS_RUN && o.dns_port == 65535);
	static const char *const bad[] = { "0", "65536", "-1", "+53", "5x", "", " 53", "99999999999999999999" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		EXPECT_ERROR("--dns-port: '", "--dns-port", bad[i]);
	EXPECT_ERROR("is not a port (1..65535)", "--dns-port", "0");
}

static void test_forward(void)
{
	static const char *const ok[] = {
		"192.0.2.53", "192.0.2.53:5353", "[fd00::1]:53", "[fd00::1]", "fd00::53", "::1", "[::1]:15353",
	};
	static const char *const bad[] = {
		"dns.example", "dns.example:53", "192.0.2.53:0", "192.0.2.53:", "192.0.2.53:65536", "192.0.2.256",
		"[fd00::1", "[fd00::1]53", "[192.0.2.1]:53", ":53", "", "1.2.3.4:53:53", "[fd00::1]:x",
		"192.000.2.1", "fe80::1%eth0",
	};
	struct od_options o;

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		CHECK(PARSE(&o, "--dns-forward", ok[i]) == OD_OPTIONS_RUN);
		CHECK(!strcmp(o.dns_forward, ok[i]));
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		EXPECT_ERROR("--dns-forward: '", "--dns-forward", bad[i]);
	EXPECT_ERROR("names are not looked up", "--dns-forward", "dns.example");
	CHECK(PARSE(&o, "--dns-forward=192.0.2.9:53") == OD_OPTIONS_RUN && !strcmp(o.dns_forward, "192.0.2.9:53"));
}

static void test_no_dns(void)
{
	struct od_options o;

	CHECK(PARSE(&o, "--no-dns") == OD_OPTIONS_RUN && !o.dns);
	EXPECT_ERROR("--no-dns takes no value", "--no-dns=yes");
	EXPECT_ERROR("--no-dns cannot be combined", "--no-dns", "--dns-port", "53");
	EXPECT_ERROR("--no-dns cannot be combined", "--dns-zone", "x.y", "--no-dns");
	EXPECT_ERROR("--no-dns cannot be combined", "--no-dns", "--dns-forward", "192.0.2.1");
}

static void test_durations(void)
{
	static const struct { const char *in; uint32_t ms; } ok[] = {
		{ "2", 2000 }, { "0.5", 500 }, { "1.25", 1250 }, { "0.1", 100 }, { "0.125", 125 },
		{ "3600", 3600000 }, { "10.0", 10000 }, { "007", 7000 },
	};
	static const char *const bad[] = {
		"0", "0.05", "0.099", "0.0001", "1.", ".5", "1e3", "-1", "3600.001", "3601", "abc", "2s", "", "1.2.3",
		"1,5", "99999999999999999999",
	};
	struct od_options o;

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		CHECK(PARSE(&o, "--probe-interval", ok[i].in) == OD_OPTIONS_RUN);
		CHECK(o.probe_interval_ms == ok[i].ms);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		EXPECT_ERROR("--probe-interval: '", "--probe-interval", bad[i]);
	CHECK(PARSE(&o, "--probe-interval=0.75") == OD_OPTIONS_RUN && o.probe_interval_ms == 750);

	CHECK(PARSE(&o, "--handshake-timeout", "1") == OD_OPTIONS_RUN && o.handshake_timeout_s == 1);
	CHECK(PARSE(&o, "--handshake-timeout", "86400") == OD_OPTIONS_RUN && o.handshake_timeout_s == 86400);
	CHECK(PARSE(&o, "--handshake-timeout=90.0") == OD_OPTIONS_RUN && o.handshake_timeout_s == 90);
	static const char *const bad_hs[] = { "0", "0.5", "1.5", "86401", "x", "" };
	for (size_t i = 0; i < sizeof(bad_hs) / sizeof(bad_hs[0]); i++)
		EXPECT_ERROR("--handshake-timeout: '", "--handshake-timeout", bad_hs[i]);
}

static void test_misses(void)
{
	struct od_options o;

	CHECK(PARSE(&o, "--probe-misses", "1") == OD_OPTIONS_RUN && o.probe_misses == 1);
	CHECK(PARSE(&o, "--probe-misses=100") == OD_OPTIONS_RUN && o.probe_misses == 100);
	static const char *const bad[] = { "0", "101", "-3", "2.5", "x", "" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		EXPECT_ERROR("--probe-misses: '", "--probe-misses", bad[i]);
}

static void test_on_change(void)
{
	struct od_options o;

	CHECK(PARSE(&o, "--on-change", "logger -t zl \"$ZL_EVENT\"") == OD_OPTIONS_RUN);
	CHECK(o.on_change == argv_store[2]);
	CHECK(PARSE(&o, "--on-change=/usr/local/bin/hook") == OD_OPTIONS_RUN && !strcmp(o.on_change, "/usr/local/bin/hook"));
	EXPECT_ERROR("--on-change: empty", "--on-change", "");
}

static void test_metrics(void)
{
	static const char *const ok[] = { "127.0.0.1:9100", "[::1]:9100", "10.200.0.1:1", "[fd00:200::1]:65535" };
	static const char *const bad[] = {
		"127.0.0.1", "[::1]", "::1", "localhost:9100", ":9100", "127.0.0.1:0", "127.0.0.1:70000", "",
		"127.000.0.1:9100", "[127.0.0.1]:9100", "[::1]9100",
	};
	struct od_options o;

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		CHECK(PARSE(&o, "--metrics", ok[i]) == OD_OPTIONS_RUN);
		CHECK(!strcmp(o.metrics, ok[i]));
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		EXPECT_ERROR("--metrics: '", "--metrics", bad[i]);
}

static void test_general_errors(void)
{
	EXPECT_ERROR("unknown argument '--bogus'", "--bogus");
	EXPECT_ERROR("unknown argument 'extra'", "extra");
	EXPECT_ERROR("unknown argument '-x'", "-x");
	EXPECT_ERROR("unknown argument '--dns-zonex=a'", "--dns-zonex=a");
	EXPECT_ERROR("--data-dir needs a value", "--data-dir");
	EXPECT_ERROR("--dns-zone needs a value", "--dns-zone", "--no-dns");
	EXPECT_ERROR("--dns-port given twice", "--dns-port", "1", "--dns-port=2");
	EXPECT_ERROR("--no-dns given twice", "--no-dns", "--no-dns");
}

static void test_everything_at_once(void)
{
	struct od_options o;

	CHECK(PARSE(&o, "--data-dir", "/d", "--dns-zone", "Mesh.", "--dns-port=5353", "--dns-forward", "127.0.0.53",
		    "--probe-interval", "0.25", "--probe-misses", "5", "--handshake-timeout", "60", "--on-change", "true",
		    "--metrics", "127.0.0.1:9190") == OD_OPTIONS_RUN);
	CHECK(!strcmp(o.data_dir, "/d") && !strcmp(o.dns_zone, "mesh.") && o.dns_port == 5353 && o.dns);
	CHECK(!strcmp(o.dns_forward, "127.0.0.53") && o.probe_interval_ms == 250 && o.probe_misses == 5);
	CHECK(o.handshake_timeout_s == 60 && !strcmp(o.on_change, "true") && !strcmp(o.metrics, "127.0.0.1:9190"));
}

static void test_usage_names_every_option(void)
{
	static const char *const names[] = {
		"--data-dir", "--interface", "--dns-zone", "--dns-port", "--dns-forward", "--no-dns",
		"--probe-interval", "--probe-misses", "--handshake-timeout", "--on-change", "--metrics",
	};
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	CHECK(f != NULL);
	if (!f)
		return;
	od_options_usage(f);
	fclose(f);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		CHECK(strstr(buf, names[i]) != NULL);
	CHECK(strstr(buf, "overlay.local.") && strstr(buf, "15353"));
	free(buf);
}

int main(void)
{
	TEST_RUN(test_defaults);
	TEST_RUN(test_help_and_version);
	TEST_RUN(test_paths);
	TEST_RUN(test_zone);
	TEST_RUN(test_port);
	TEST_RUN(test_forward);
	TEST_RUN(test_no_dns);
	TEST_RUN(test_durations);
	TEST_RUN(test_misses);
	TEST_RUN(test_on_change);
	TEST_RUN(test_metrics);
	TEST_RUN(test_general_errors);
	TEST_RUN(test_everything_at_once);
	TEST_RUN(test_usage_names_every_option);
	return TEST_SUMMARY();
}
