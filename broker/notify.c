/*
 * notify.c: the broker's link to systemd (notify.h): sd_notify messages
 * and the journald log writer. Owns nothing but the choice, made once at
 * start-up, of where log lines go.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define SD_JOURNAL_SUPPRESS_LOCATION	/* the caller is always log.c */
#include <systemd/sd-daemon.h>
#include <systemd/sd-journal.h>

#include "errfmt.h"
#include "log.h"
#include "notify.h"

#define JOURNAL_SOCKET	"/run/systemd/journal/socket"

/*
 * systemd sets JOURNAL_STREAM to the device and inode of the stream it
 * connected stdout/stderr to; if stderr is still that stream (not
 * redirected by a wrapper), native journal messages can replace it.
 */
static int
stderr_is_journal(void)
{
	const char *v = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	char c;

	if (v == NULL || sscanf(v, "%llu:%llu%c", &dev, &ino, &c) != 2)
		return 0;
	if (fstat(STDERR_FILENO, &st) == -1)
		return 0;
	return (unsigned long long)st.st_dev == dev &&
	    (unsigned long long)st.st_ino == ino;
}

/* One field "KEY=value" in buf, as an iovec; 0 if it does not fit. */
static int
field(struct iovec *iov, char *buf, size_t len, const char *key,
    const char *val)
{
	int n;

	n = snprintf(buf, len, "%s=%s", key, val);
	if (n < 0 || (size_t)n >= len)
		return 0;
	iov->iov_base = buf;
	iov->iov_len = (size_t)n;
	return 1;
}

/*
 * log_writer_fn: a native journal entry, so `journalctl NODE=si-ncp`
 * or `journalctl -p warning` select lines without parsing them.
 */
static void
journal_write(int prio, const char *msg, const struct log_fields *f,
    void *arg)
{
	char m[1200], p[16], pv[12], id[32], c[32], nd[128], r[64];
	struct iovec iov[7];
	int n = 0;

	(void)arg;
	snprintf(pv, sizeof(pv), "%d", prio);
	n += field(&iov[n], m, sizeof(m), "MESSAGE", msg);
	n += field(&iov[n], p, sizeof(p), "PRIORITY", pv);
	n += field(&iov[n], id, sizeof(id), "SYSLOG_IDENTIFIER", "cpx-broker");
	if (f->country != NULL)
		n += field(&iov[n], c, sizeof(c), "COUNTRY", f->country);
	if (f->node != NULL)
		n += field(&iov[n], nd, sizeof(nd), "NODE", f->node);
	if (f->reason != NULL)
		n += field(&iov[n], r, sizeof(r), "REASON", f->reason);
	/* journald gone: the line still goes somewhere. */
	if (n == 0 || sd_journal_sendv(iov, n) < 0)
		fprintf(stderr, "<%d>%s\n", prio, msg);
}

/*
 * journald's socket. Without it sd_journal_sendv drops lines and still
 * succeeds, so the writer is used only where journald listens; elsewhere
 * "<N>" lines on stderr keep the priorities for whoever reads them.
 */
static void
use_journal(void)
{
	if (access(JOURNAL_SOCKET, W_OK) == 0)
		log_set_writer(journal_write, NULL);
	else
		log_set_format(LOG_FORMAT_PREFIX);
}

int
notify_log_setup(const char *format, char *err, size_t errlen)
{
	enum log_format lf;

	if (format == NULL || strcmp(format, "auto") == 0) {
		if (stderr_is_journal())
			use_journal();
		return 0;
	}
	if (strcmp(format, "journal") == 0) {
		use_journal();
		if (log_get_format() == LOG_FORMAT_PREFIX)
			log_warnx("config key log_format: journal, but "
			    "journald does not listen on %s; logging to "
			    "stderr with <N> priorities", JOURNAL_SOCKET);
		return 0;
	}
	if (log_format_parse(format, &lf) == -1)
		return errf(err, errlen, "config key log_format: \"%s\" is not "
		    "one of auto, text, json, prefix, syslog, journal", format);
	log_set_format(lf);
	return 0;
}

void
notify_ready(const char *status)
{
	(void)sd_notifyf(0, "READY=1\nSTATUS=%s", status);
}

void
notify_reloading(void)
{
	struct timespec ts;
	uint64_t usec;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	usec = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
	(void)sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%" PRIu64
	    "\nSTATUS=reloading the CRL and the policy", usec);
}

void
notify_stopping(void)
{
	(void)sd_notify(0, "STOPPING=1\nSTATUS=closing sessions, writing a "
	    "checkpoint");
}

void
notify_status(const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	(void)sd_notifyf(0, "STATUS=%s", buf);
}
