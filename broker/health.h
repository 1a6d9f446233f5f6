/*
 * health.h: is the broker fit to serve, and what will stop it soon. The
 * answer of /healthz (the audit log can be written, the CRL and the
 * broker's certificate are current), and the warnings an operator needs
 * days ahead: at 7 days and at 1 day before the CRL's nextUpdate or the
 * certificate's notAfter, and once it has passed, each once per
 * threshold, checked at start, on SIGHUP and every minute.
 */
#ifndef CPX_HEALTH_H
#define CPX_HEALTH_H

#include <stddef.h>
#include <stdint.h>

struct broker;

/* What was last warned, so that each threshold is said once. */
struct health {
	/* 0 fine, 1 within 7 days, 2 within 1 day, 3 expired */
	int	crl_level;
	int	cert_level;
	int64_t	last_check_ms;	/* monotonic */
};

/* Seconds until the CRL in force expires (< 0: past); -1 if none. */
int	health_crl_seconds(struct broker *b, int64_t *secs)
	    __attribute__((warn_unused_result));
/* Seconds until the broker's certificate expires (< 0: past). */
int	health_cert_seconds(const struct broker *b, int64_t *secs)
	    __attribute__((warn_unused_result));

/*
 * Warn about the CRL and certificate crossing a threshold since the last
 * check. force: check now (start-up, SIGHUP); otherwise at most once a
 * minute.
 */
void	health_check_expiry(struct broker *b, struct health *h,
	    int64_t now_ms, int force);

/*
 * 0 if the broker is healthy, or -1 with why[] saying what is wrong and
 * what to do about it (the body of a 503 from /healthz).
 */
int	health_status(struct broker *b, char *why, size_t len)
	    __attribute__((warn_unused_result));

#endif
