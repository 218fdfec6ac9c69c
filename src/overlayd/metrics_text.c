/* The Prometheus text format writer: see metrics_text.h. */
#include "overlayd/metrics_text.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { INITIAL_CAP = 4096 };

void od_prom_init(struct od_prom *p)
{
	memset(p, 0, sizeof(*p));
}

static bool reserve(struct od_prom *p, size_t more)
{
	size_t cap = p->cap ? p->cap : INITIAL_CAP;
	char *nb;

	if (p->failed)
		return false;
	if (p->len + more + 1 <= p->cap)
		return true;
	while (cap < p->len + more + 1)
		cap *= 2;
	nb = realloc(p->buf, cap);
	if (!nb) {
		p->failed = true;
		return false;
	}
	p->buf = nb;
	p->cap = cap;
	return true;
}

static void put(struct od_prom *p, const char *s, size_t n)
{
	if (!reserve(p, n))
		return;
	memcpy(p->buf + p->len, s, n);
	p->len += n;
	p->buf[p->len] = '\0';
}

static void puts_(struct od_prom *p, const char *s)
{
	put(p, s, strlen(s));
}

static void putf(struct od_prom *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(struct od_prom *p, const char *fmt, ...)
{
	char tmp[128];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	/* Only numbers go through here: they always fit. */
	if (n > 0 && (size_t)n < sizeof(tmp))
		put(p, tmp, (size_t)n);
}

/* The three escapes of the format; everything else (UTF-8 included) passes as it is. */
static void put_label_value(struct od_prom *p, const char *s)
{
	const char *run = s;

	for (; *s; s++) {
		const char *esc = *s == '\\' ? "\\\\" : *s == '"' ? "\\\"" : *s == '\n' ? "\\n" : NULL;

		if (!esc)
			continue;
		put(p, run, (size_t)(s - run));
		put(p, esc, 2);
		run = s + 1;
	}
	put(p, run, (size_t)(s - run));
}

/* HELP text escapes only backslash and line feed. */
static void put_help(struct od_prom *p, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\')
			put(p, "\\\\", 2);
		else if (*s == '\n')
			put(p, "\\n", 2);
		else
			put(p, s, 1);
	}
}

void od_prom_family(struct od_prom *p, const char *name, enum od_prom_type type, const char *help)
{
	p->name = name;
	p->help = help;
	p->type = type;
	p->started = false;
}

static void sample_head(struct od_prom *p, const struct od_prom_label *labels, size_t n_labels)
{
	if (!p->started) {
		puts_(p, "# HELP ");
		puts_(p, p->name);
		put(p, " ", 1);
		put_help(p, p->help);
		puts_(p, "\n# TYPE ");
		puts_(p, p->name);
		puts_(p, p->type == OD_PROM_COUNTER ? " counter\n" : " gauge\n");
		p->started = true;
	}
	puts_(p, p->name);
	for (size_t i = 0; i < n_labels; i++) {
		put(p, i ? "," : "{", 1);
		puts_(p, labels[i].name);
		put(p, "=\"", 2);
		put_label_value(p, labels[i].value);
		put(p, "\"", 1);
	}
	if (n_labels)
		put(p, "}", 1);
	put(p, " ", 1);
}

void od_prom_u64(struct od_prom *p, const struct od_prom_label *labels, size_t n_labels, uint64_t v)
{
	sample_head(p, labels, n_labels);
	putf(p, "%" PRIu64 "\n", v);
}

void od_prom_double(struct od_prom *p, const struct od_prom_label *labels, size_t n_labels, double v)
{
	sample_head(p, labels, n_labels);
	if (isnan(v))
		puts_(p, "NaN\n");
	else if (isinf(v))
		puts_(p, v > 0 ? "+Inf\n" : "-Inf\n");
	else
		putf(p, "%.10g\n", v);
}

void od_prom_text(struct od_prom *p, const struct od_prom_label *labels, size_t n_labels, const char *v)
{
	sample_head(p, labels, n_labels);
	puts_(p, v);
	put(p, "\n", 1);
}

char *od_prom_finish(struct od_prom *p, size_t *len)
{
	char *out = NULL;

	/* Even an empty exposition is a valid (empty) string. */
	if (!p->failed && reserve(p, 0)) {
		p->buf[p->len] = '\0';
		out = p->buf;
		*len = p->len;
		p->buf = NULL;
	}
	free(p->buf);
	od_prom_init(p);
	return out;
}
