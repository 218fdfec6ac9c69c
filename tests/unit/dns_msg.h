/* Building DNS messages byte by byte in the DNS unit tests (test_dns_wire, test_dns_answer): written
 * independently of src/dns so the tests do not check the code with itself. */
#ifndef TEST_DNS_MSG_H
#define TEST_DNS_MSG_H
#include <stdint.h>
#include <string.h>

struct msg {
	uint8_t b[1024];
	size_t n;
};

static inline void put8(struct msg *m, unsigned v) { m->b[m->n++] = (uint8_t)v; }
static inline void put16(struct msg *m, unsigned v) { put8(m, v >> 8); put8(m, v & 0xff); }
static inline void put32(struct msg *m, uint32_t v) { put16(m, v >> 16); put16(m, v & 0xffff); }

/* "a.b.c" as labels, each label copied as given (case kept), ending with the root. */
static inline void put_name(struct msg *m, const char *text)
{
	while (*text) {
		const char *dot = strchr(text, '.');
		size_t l = dot ? (size_t)(dot - text) : strlen(text);

		put8(m, (unsigned)l);
		memcpy(m->b + m->n, text, l);
		m->n += l;
		text += l + (dot ? 1 : 0);
	}
	put8(m, 0);
}
#endif
