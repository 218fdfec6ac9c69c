/* The one way an error message is written: callers pass (err, errlen) down and get a negative errno
 * back, so a message always comes with the code it explains. */
#ifndef ZL_ERRMSG_H
#define ZL_ERRMSG_H
#include <stddef.h>

/* Formats the message into err (when err is not NULL and errlen > 0) and returns rc. */
int zl_errorf(char *err, size_t errlen, int rc, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
#endif
