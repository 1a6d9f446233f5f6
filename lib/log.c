/*
 * log.c: levelled logging for every cpx program. Owns the program name,
 * the level and where lines go (the only mutable globals, set by main),
 * and the thread-local fields context. One function, emit(), formats a
 * line for each destination: text, JSON or "<N>" lines on stderr,
 * syslog(3), a host's sink or a structured writer.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <time.h>

#include <openssl/err.h>

#include "clock.h"
#include "json_out.h"
#include "log.h"

#define LOG_MSG_MAX	1024

static const char *log_progname = "cpx";
static enum log_level log_level = LOG_LEVEL_INFO;
static enum log_format log_format = LOG_FORMAT_TEXT;
static log_sink_fn *log_sink;
static void *log_sink_arg;
static log_writer_fn *log_writer;
static void *log_writer_arg;
static _Thread_local const struct log_fields *log_context;

static const char *const level_names[] = { "error", "warn", "info", "debug" };
static const char *const format_names[] = { "text", "json", "prefix",
    "syslog" };
static const int level_prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO,
    LOG_DEBUG };

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

void
log_set_format(enum log_format fmt)
{
	if (fmt == LOG_FORMAT_SYSLOG && log_format != LOG_FORMAT_SYSLOG)
		openlog(log_progname, LOG_PID | LOG_NDELAY, LOG_DAEMON);
	else if (fmt != LOG_FORMAT_SYSLOG && log_format == LOG_FORMAT_SYSLOG)
		closelog();
	log_format = fmt;
}

enum log_format
log_get_format(void)
{
	return log_format;
}

int
log_format_parse(const char *s, enum log_format *out)
{
	size_t i;

	for (i = 0; i < sizeof(format_names) / sizeof(format_names[0]); i++) {
		if (strcasecmp(s, format_names[i]) == 0) {
			*out = (enum log_format)i;
			return 0;
		}
	}
	return -1;
}

int
log_level_priority(enum log_level level)
{
	if ((unsigned)level > LOG_LEVEL_DEBUG)
		return LOG_DEBUG;
	return level_prio[level];
}

void
log_set_sink(log_sink_fn *fn, void *arg)
{
	log_sink = fn;
	log_sink_arg = arg;
}

void
log_set_writer(log_writer_fn *fn, void *arg)
{
	log_writer = fn;
	log_writer_arg = arg;
}

const struct log_fields *
log_context_push(const struct log_fields *f)
{
	const struct log_fields *prev = log_context;

	log_context = f;
	return prev;
}

void
log_context_pop(const struct log_fields *prev)
{
	log_context = prev;
}

/* Append s to buf[*off..len) as a JSON string body; truncates safely. */
static void
json_escape(char *buf, size_t len, size_t *off, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s), i = 0, k;
	int w;

	while (i < n && *off + 7 < len) {
		if (p[i] == '"' || p[i] == '\\') {
			buf[(*off)++] = '\\';
			buf[(*off)++] = (char)p[i++];
		} else if (p[i] < 0x20 || p[i] == 0x7f) {
			w = snprintf(buf + *off, len - *off, "\\u%04x", p[i++]);
			*off += (size_t)w;
		} else if (p[i] < 0x80) {
			buf[(*off)++] = (char)p[i++];
		} else if ((k = json_utf8_next(p + i, n - i, NULL)) == 0) {
			/* Not UTF-8 (a peer's bytes): never break the line. */
			w = snprintf(buf + *off, len - *off, "\\ufffd");
			*off += (size_t)w;
			i++;
		} else if (*off + k + 1 < len) {
			memcpy(buf + *off, p + i, k);
			*off += k;
			i += k;
		} else
			break;
	}
	buf[*off] = '\0';
}

static void
json_member(char *buf, size_t len, size_t *off, const char *key,
    const char *val)
{
	int w;

	if (val == NULL || *off + 8 + strlen(key) >= len)
		return;
	w = snprintf(buf + *off, len - *off, ",\"%s\":\"", key);
	*off += (size_t)w;
	json_escape(buf, len, off, val);
	if (*off + 2 < len) {
		buf[(*off)++] = '"';
		buf[*off] = '\0';
	}
}

static void
write_json(enum log_level level, const char *ts, int ms, const char *msg,
    const struct log_fields *f)
{
	char line[8 * LOG_MSG_MAX];
	size_t off;
	int w;

	w = snprintf(line, sizeof(line), "{\"time\":\"%s.%03dZ\","
	    "\"level\":\"%s\",\"prog\":\"", ts, ms, level_names[level]);
	off = (size_t)w;
	json_escape(line, sizeof(line), &off, log_progname);
	if (off + 2 < sizeof(line)) {
		line[off++] = '"';
		line[off] = '\0';
	}
	json_member(line, sizeof(line), &off, "msg", msg);
	json_member(line, sizeof(line), &off, "country", f->country);
	json_member(line, sizeof(line), &off, "node", f->node);
	json_member(line, sizeof(line), &off, "reason", f->reason);
	if (off + 2 >= sizeof(line))
		off = sizeof(line) - 3;
	line[off++] = '}';
	line[off++] = '\n';
	/* One write per line: lines of several threads never interleave. */
	(void)fwrite(line, 1, off, stderr);
}

/* The fields of a line: f's members over the thread's context. */
static void
merge_fields(const struct log_fields *f, struct log_fields *out)
{
	const struct log_fields *c = log_context;

	memset(out, 0, sizeof(*out));
	if (c != NULL)
		*out = *c;
	if (f == NULL)
		return;
	if (f->country != NULL)
		out->country = f->country;
	if (f->node != NULL)
		out->node = f->node;
	if (f->reason != NULL)
		out->reason = f->reason;
}

void
log_vemit(enum log_level level, const struct log_fields *f,
    const char *suffix, const char *fmt, va_list ap)
{
	char ts[32], msg[LOG_MSG_MAX], line[LOG_MSG_MAX + 128];
	struct log_fields all;
	int64_t now;
	time_t sec;
	struct tm tm;
	int prio, n;

	if (level > log_level)
		return;
	prio = log_level_priority(level);
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	if (suffix != NULL && n >= 0 && (size_t)n < sizeof(msg))
		snprintf(msg + n, sizeof(msg) - (size_t)n, ": %s", suffix);
	merge_fields(f, &all);
	if (log_writer != NULL) {
		log_writer(prio, msg, &all, log_writer_arg);
		return;
	}
	if (log_sink != NULL) {
		log_sink(prio, msg, log_sink_arg);
		return;
	}
	now = clock_wall_ms();
	sec = (time_t)(now / 1000);
	gmtime_r(&sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	switch (log_format) {
	case LOG_FORMAT_JSON:
		write_json(level, ts, (int)(now % 1000), msg, &all);
		return;
	case LOG_FORMAT_SYSLOG:
		syslog(prio, "%s", msg);
		return;
	case LOG_FORMAT_PREFIX:
		n = snprintf(line, sizeof(line), "<%d>%s\n", prio, msg);
		break;
	case LOG_FORMAT_TEXT:
	default:
		n = snprintf(line, sizeof(line), "%s.%03dZ %s[%s] %s\n", ts,
		    (int)(now % 1000), log_progname, level_names[level], msg);
		break;
	}
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line)) {
		n = (int)sizeof(line) - 1;
		line[n - 1] = '\n';
	}
	(void)fwrite(line, 1, (size_t)n, stderr);
}

void
log_emit(enum log_level level, const struct log_fields *f, const char *fmt,
    ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vemit(level, f, NULL, fmt, ap);
	va_end(ap);
}

void
log_warn(const char *fmt, ...)
{
	char err[128];
	va_list ap;
	int saved = errno;

	strerror_r(saved, err, sizeof(err));
	va_start(ap, fmt);
	log_vemit(LOG_LEVEL_WARN, NULL, err, fmt, ap);
	va_end(ap);
	errno = saved;
}

void
log_warnx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vemit(LOG_LEVEL_WARN, NULL, NULL, fmt, ap);
	va_end(ap);
}

void
log_warnx_f(const struct log_fields *f, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vemit(LOG_LEVEL_WARN, f, NULL, fmt, ap);
	va_end(ap);
}

void
log_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vemit(LOG_LEVEL_INFO, NULL, NULL, fmt, ap);
	va_end(ap);
}

void
log_info_f(const struct log_fields *f, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vemit(LOG_LEVEL_INFO, f, NULL, fmt, ap);
	va_end(ap);
}

void
log_debug(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vemit(LOG_LEVEL_DEBUG, NULL, NULL, fmt, ap);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	char err[128];
	va_list ap;

	strerror_r(errno, err, sizeof(err));
	va_start(ap, fmt);
	log_vemit(LOG_LEVEL_ERROR, NULL, err, fmt, ap);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vemit(LOG_LEVEL_ERROR, NULL, NULL, fmt, ap);
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
