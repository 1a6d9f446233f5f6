/*
 * notify.h: the broker's link to systemd. sd_notify tells the service
 * manager when the broker is ready, reloading, stopping and what it is
 * doing (STATUS); the journal writer sends log lines to journald with
 * their priority and fields (NODE, COUNTRY, REASON). Without systemd
 * (no NOTIFY_SOCKET, no JOURNAL_STREAM) every call here does nothing and
 * lines go to stderr as log_format says.
 */
#ifndef CPX_NOTIFY_H
#define CPX_NOTIFY_H

#include <stddef.h>

/*
 * Route the log as the config key log_format says: "auto" (journald
 * when stderr is the journal stream systemd gave us, else text), "text",
 * "json", "prefix" ("<N>" syslog priority prefixes), "syslog" or
 * "journal". Returns 0, or -1 with err[] naming the key.
 */
int	notify_log_setup(const char *format, char *err, size_t errlen)
	    __attribute__((warn_unused_result));

/* READY=1 with a STATUS line (start-up done, or a reload done). */
void	notify_ready(const char *status);
/* RELOADING=1 and MONOTONIC_USEC (systemd 253 checks it), on SIGHUP. */
void	notify_reloading(void);
/* STOPPING=1, on SIGTERM. */
void	notify_stopping(void);
/* STATUS=..., what systemctl status shows. */
void	notify_status(const char *fmt, ...)
	    __attribute__((format(printf, 1, 2)));

#endif
