/*
 * log.h: the one logging API of cpx (broker, client, tools).
 *
 * A line goes to one place, chosen at start-up: stderr as text (a UTC
 * timestamp, the program and level; the default), stderr as one JSON
 * object per line, stderr with "<N>" syslog priority prefixes (what
 * systemd reads from a service's stderr), syslog(3), a structured
 * writer (the broker's journald writer, which also takes the fields
 * below), or a host program's sink (log_set_sink: the client library's
 * log callback). The level and this choice are the only mutable globals
 * besides signal flags, set once by main: everything else lives in a
 * context that main creates. Never log keys or alert bodies.
 *
 * Fields: a line may name the node, country and refusal reason it is
 * about (struct log_fields), so that an operator can select lines by
 * node in the journal or in JSON. They are given per call (the *_f
 * variants) or for a stretch of work by log_context_push (a thread-local
 * pointer: the dispatcher sets it while it handles one session's
 * requests), so no existing log call has to change to carry them.
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

enum log_format {
	LOG_FORMAT_TEXT = 0,	/* "2026-...Z prog[level] msg" on stderr */
	LOG_FORMAT_JSON,	/* {"time":..,"level":..,"msg":..,...} */
	LOG_FORMAT_PREFIX,	/* "<4>msg [NODE=..]" on stderr */
	LOG_FORMAT_SYSLOG	/* syslog(3), facility daemon */
};

/* What a line is about; any member may be NULL (not known). */
struct log_fields {
	const char	*country;	/* COUNTRY: ISO code of the node */
	const char	*node;		/* NODE: its certificate's CN */
	const char	*reason;	/* REASON: a reason's short name */
};

/* A host's sink: prio is a syslog priority (3 error .. 7 debug). */
typedef void log_sink_fn(int prio, const char *line, void *arg);
/* A structured writer: the message and its fields, apart. */
typedef void log_writer_fn(int prio, const char *msg,
    const struct log_fields *f, void *arg);

/* Set the program name shown on each line and the level. */
void	log_init(const char *progname, enum log_level level);
void	log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Parse "error", "warn", "info", "debug"; returns -1 if unknown. */
int	log_level_parse(const char *s, enum log_level *out)
	    __attribute__((warn_unused_result));

/*
 * Where lines go (default LOG_FORMAT_TEXT). LOG_FORMAT_SYSLOG opens
 * syslog with the program name; leaving it closes syslog again.
 */
void	log_set_format(enum log_format fmt);
enum log_format log_get_format(void);
/* Parse "text", "json", "prefix", "syslog"; returns -1 if unknown. */
int	log_format_parse(const char *s, enum log_format *out)
	    __attribute__((warn_unused_result));
/* The syslog priority (LOG_ERR .. LOG_DEBUG) of a level. */
int	log_level_priority(enum log_level level);

/*
 * Send every line that passes the level to fn instead (fn NULL: back
 * to the format). line is the message alone, without time or level, and
 * is valid during the call only; fn must not log. fn may be called from
 * any thread that logs.
 */
void	log_set_sink(log_sink_fn *fn, void *arg);
/* The same for a writer that takes the fields apart (journald). */
void	log_set_writer(log_writer_fn *fn, void *arg);

/*
 * Make f the fields of this thread's lines until the matching
 * log_context_pop (f is borrowed: it must stay valid until then).
 * Returns the previous context, to hand to log_context_pop.
 */
const struct log_fields *log_context_push(const struct log_fields *f);
void	log_context_pop(const struct log_fields *prev);

/* log_warn appends strerror(errno); log_warnx does not. */
void	log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/*
 * With fields (merged over the thread's context: a member set in f
 * wins). f may be NULL.
 */
void	log_warnx_f(const struct log_fields *f, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
void	log_info_f(const struct log_fields *f, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
/* Any level, with fields: what the rate limiter (logrl.h) writes. */
void	log_emit(enum log_level level, const struct log_fields *f,
	    const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void	log_vemit(enum log_level level, const struct log_fields *f,
	    const char *suffix, const char *fmt, va_list ap)
	    __attribute__((format(printf, 4, 0)));
/* Print, then exit(1). Only at start-up or on a broken invariant. */
void	fatal(const char *fmt, ...)
	    __attribute__((format(printf, 1, 2), noreturn));
void	fatalx(const char *fmt, ...)
	    __attribute__((format(printf, 1, 2), noreturn));
/* Append the OpenSSL error queue to a log_warnx line, then clear it. */
void	log_openssl(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
