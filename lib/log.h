/*
 * log.h: the one logging API of cpx (broker, client, tools).
 *
 * Lines go to stderr with a UTC timestamp and level, or to syslog when
 * log_init() is asked to. The level is the only mutable global besides
 * signal flags: everything else lives in a context that main creates.
 * Never log keys or alert bodies.
 */
#ifndef CPX_LOG_H
#define CPX_LOG_H

#include <stdarg.h>

enum log_level {
	LOG_LEVEL_ERROR = 0,
	LOG_LEVEL_WARN,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG
};

/* Set the program name shown on each line and the level. */
void	log_init(const char *progname, enum log_level level);
void	log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Parse "error", "warn", "info", "debug"; returns -1 if unknown. */
int	log_level_parse(const char *s, enum log_level *out)
	    __attribute__((warn_unused_result));

/* log_warn appends strerror(errno); log_warnx does not. */
void	log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Print, then exit(1). Only at start-up or on a broken invariant. */
void	fatal(const char *fmt, ...)
	    __attribute__((format(printf, 1, 2), noreturn));
void	fatalx(const char *fmt, ...)
	    __attribute__((format(printf, 1, 2), noreturn));
/* Append the OpenSSL error queue to a log_warnx line, then clear it. */
void	log_openssl(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
