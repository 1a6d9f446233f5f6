/*
 * metrics.h: what the broker counts for its operators, and the HTTP
 * endpoint that serves it: /metrics in the Prometheus text format and
 * /healthz (200 "ok", or 503 and what is wrong). The endpoint runs on
 * the network thread, inside the broker's loop: its one epoll descriptor
 * is in the loop's poll set and metrics_run serves what is ready without
 * blocking, so a scrape reads the broker's state as it is, with no lock
 * and no copy. It is bounded: a few connections, a short timeout, GET
 * only, no request body.
 */
#ifndef CPX_METRICS_H
#define CPX_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "health.h"

struct broker;
struct metrics;

/* Empty counters, no endpoint yet. Owned by the caller; NULL if no memory. */
struct metrics *metrics_new(void);
/* Stop the endpoint and free; NULL is fine; NULLs *m. */
void	metrics_free(struct metrics **m);

/*
 * Serve b's metrics on listen ("HOST:PORT", IPv4 or [IPv6]; "off": no
 * endpoint). A port already taken is logged and leaves the broker
 * without the endpoint (alerts matter more than their metrics), so 0 is
 * returned then too; -1 with err[] if listen cannot be parsed.
 */
int	metrics_listen(struct metrics *m, struct broker *b,
	    const char *listen, char *err, size_t errlen)
	    __attribute__((warn_unused_result));

/* The descriptor to poll for input (-1: none) and the longest wait, ms. */
int	metrics_fd(const struct metrics *m);
long	metrics_timeout(const struct metrics *m, long timeout_ms);
/* Serve whatever is ready; never blocks. */
void	metrics_run(struct metrics *m);

/* Counting, on the network thread. origin/country: ISO code or "". */
void	metrics_accepted(struct metrics *m, const char *origin);
void	metrics_refused(struct metrics *m, const char *origin, int reason);
/*
 * One group commit: its duration and its error (NULL: it succeeded).
 * Returns, for a success, how many failed commits came right before it
 * (0 for a failure).
 */
uint64_t metrics_commit(struct metrics *m, int64_t usec, const char *err);
/* The last commit's error, NULL if it succeeded. */
const char *metrics_commit_error(const struct metrics *m);
/* Microseconds on the monotonic clock, for commit durations. */
int64_t	metrics_clock_us(void);

/* The expiry warnings' state, kept with the counters. */
struct health *metrics_health(struct metrics *m);

#endif
