/*
 * errfmt.h: the one way cpx writes an error message into a caller's
 * buffer. Functions that can fail take (char *err, size_t errlen) and on
 * failure leave a message there for the operator; errf formats it and
 * returns -1, so a failure path is one line: return errf(err, errlen, ...).
 */
#ifndef CPX_ERRFMT_H
#define CPX_ERRFMT_H

#include <stdarg.h>
#include <stddef.h>

/*
 * Format a message into err[errlen] (truncated to fit, always
 * NUL-terminated; nothing is written when err is NULL or errlen 0).
 * Returns -1, always: its result is the caller's failure, so it is not
 * marked warn_unused_result, and a caller that goes on to a cleanup label
 * may ignore it.
 */
int	errf(char *err, size_t errlen, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));

/* The same with a va_list, for helpers that add to the message. -1. */
int	verrf(char *err, size_t errlen, const char *fmt, va_list ap)
	    __attribute__((format(printf, 3, 0)));

#endif
