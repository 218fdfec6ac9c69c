/* Minimal table-friendly unit test harness: each test file is one binary whose main() calls TEST_RUN()
 * for its tests and returns TEST_SUMMARY(). A failed CHECK records the failure and continues, so one
 * run shows every broken expectation. */
#ifndef ZL_TEST_H
#define ZL_TEST_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int test_checks_failed_in_current;
static int test_passed_count, test_failed_count;

#define CHECK(cond)                                                                     \
	do {                                                                            \
		if (!(cond)) {                                                          \
			fprintf(stderr, "  check failed %s:%d: %s\n", __FILE__, __LINE__, #cond); \
			test_checks_failed_in_current++;                                \
		}                                                                       \
	} while (0)

#define CHECK_MEM_EQ(a, b, n) CHECK(memcmp((a), (b), (n)) == 0)

#define TEST_RUN(fn)                                                                    \
	do {                                                                            \
		test_checks_failed_in_current = 0;                                      \
		fn();                                                                   \
		if (test_checks_failed_in_current) {                                    \
			printf("FAIL %s\n", #fn);                                       \
			test_failed_count++;                                            \
		} else {                                                                \
			printf("ok   %s\n", #fn);                                       \
			test_passed_count++;                                            \
		}                                                                       \
	} while (0)

#define TEST_SUMMARY()                                                                  \
	(printf("%d passed, %d failed\n", test_passed_count, test_failed_count),       \
	 test_failed_count ? 1 : 0)

/* Decodes a hex string into out (len bytes); aborts the test binary on malformed vectors. */
static inline void test_hex(const char *hex, unsigned char *out, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned v;
		if (sscanf(hex + 2 * i, "%2x", &v) != 1) {
			fprintf(stderr, "bad hex vector\n");
			abort();
		}
		out[i] = (unsigned char)v;
	}
}
#endif
