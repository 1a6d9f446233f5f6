/*
 * errfmt.c: error messages into a caller's buffer (see errfmt.h).
 */
#include <stdarg.h>
#include <stdio.h>

#include "errfmt.h"

int
verrf(char *err, size_t errlen, const char *fmt, va_list ap)
{
	if (err != NULL && errlen > 0)
		(void)vsnprintf(err, errlen, fmt, ap);
	return -1;
}

int
errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	(void)verrf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}
