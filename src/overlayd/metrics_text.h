/* Writing the Prometheus text exposition format, version 0.0.4 (what metrics.c serves).
 *
 * The text goes into a growing buffer, one family at a time: od_prom_family names the family, and its
 * "# HELP" / "# TYPE" lines are written just before its first sample, so every family's samples sit
 * together under their own header (as the format and promtool require) and a family without samples is
 * left out entirely. Label values are escaped as the format says: backslash, double quote and line feed
 * become \\, \" and \n; any other byte is kept. Out of memory is sticky: later calls do nothing and
 * od_prom_finish returns NULL, so callers need no checks between samples. */
#ifndef OD_METRICS_TEXT_H
#define OD_METRICS_TEXT_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum od_prom_type { OD_PROM_COUNTER, OD_PROM_GAUGE };

struct od_prom_label {
	const char *name;     /* a valid label name (not checked: names are constants) */
	const char *value;    /* any text; escaped on output */
};

struct od_prom {
	char *buf;
	size_t len, cap;
	bool failed;
	/* The current family; its header is written with its first sample. */
	const char *name, *help;
	enum od_prom_type type;
	bool started;
};

void od_prom_init(struct od_prom *p);
/* Starts a family: name is the full metric name (counters end in _total); help is one line of text.
 * name and help must stay valid until the next od_prom_family or od_prom_finish. */
void od_prom_family(struct od_prom *p, const char *name, enum od_prom_type type, const char *help);
/* One sample of the current family: the value as an unsigned integer, a double (NaN and infinities as
 * the format spells them), or ready-made decimal text (e.g. a 128-bit count). */
void od_prom_u64(struct od_prom *p, const struct od_prom_label *labels, size_t n_labels, uint64_t v);
void od_prom_double(struct od_prom *p, const struct od_prom_label *labels, size_t n_labels, double v);
void od_prom_text(struct od_prom *p, const struct od_prom_label *labels, size_t n_labels, const char *v);
/* The text, NUL-terminated and owned by the caller (length in *len), or NULL after an allocation
 * failure. p is left empty either way. */
char *od_prom_finish(struct od_prom *p, size_t *len);
#endif
