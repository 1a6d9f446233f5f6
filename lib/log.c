/*
 * log.c: timestamped, levelled logging to stderr for every cpx program.
 * Owns the program name and the log level (the only mutable globals).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/err.h>

#include "clock.h"
#include "log.h"

static const char *log_progname = "cpx";
static enum log_level log_level = LOG_LEVEL_INFO;

static const char *const level_names[] = { "error", "warn", "info", "debug" };

void
log_init(const char *progname, enum log_level level)
{
	if (progname != NULL)
		log_progname = progname;
	log_level = level;
}

void
log_set_level(enum log_level level)
{
	log_level = level;
}

enum log_level
log_get_level(void)
{
	return log_level;
}

int
log_level_parse(const char *s, enum log_level *out)
{
	size_t i;

	for (i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcasecmp(s, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

static void vlog(enum log_level, const char *, const char *, va_list)
    __attribute__((format(printf, 3, 0)));

static void
vlog(enum log_level level, const char *suffix, const char *fmt, va_list ap)
{
	char ts[32], msg[1024];
	int64_t now;
	time_t sec;
	struct tm tm;

	if (level > log_level)
		return;
	now = clock_wall_ms();
	sec = (time_t)(now / 1000);
	gmtime_r(&sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	fprintf(stderr, "%s.%03dZ %s[%s] %s%s%s\n", ts,
	    (int)(now % 1000), log_progname, level_names[level], msg,
	    suffix ? ": " : "", suffix ? suffix : "");
}

void
log_warn(const char *fmt, ...)
{
	char err[128];
	va_list ap;
	int saved = errno;

	strerror_r(saved, err, sizeof(err));
	va_start(ap, fmt);
	vlog(LOG_LEVEL_WARN, err, fmt, ap);
	va_end(ap);
	errno = saved;
}

void
log_warnx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_LEVEL_WARN, NULL, fmt, ap);
	va_end(ap);
}

void
log_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_LEVEL_INFO, NULL, fmt, ap);
	va_end(ap);
}

void
log_debug(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_LEVEL_DEBUG, NULL, fmt, ap);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	char err[128];
	va_list ap;

	strerror_r(errno, err, sizeof(err));
	va_start(ap, fmt);
	vlog(LOG_LEVEL_ERROR, err, fmt, ap);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_LEVEL_ERROR, NULL, fmt, ap);
	va_end(ap);
	exit(1);
}

void
log_openssl(const char *fmt, ...)
{
	char msg[512], errs[512];
	unsigned long e;
	size_t off = 0;
	va_list ap;

	errs[0] = '\0';
	while ((e = ERR_get_error()) != 0 && off < sizeof(errs) - 2) {
		char one[256];
		int n;

		ERR_error_string_n(e, one, sizeof(one));
		n = snprintf(errs + off, sizeof(errs) - off, "%s%s",
		    off ? "; " : "", one);
		if (n < 0)
			break;
		off += (size_t)n;
	}
	ERR_clear_error();
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_warnx("%s%s%s", msg, errs[0] ? ": " : "", errs);
}
