/*
 * logrl.h: quiet logs under sustained failure. A line that repeats (same
 * call site and key) is written the first time; the repeats within the
 * interval are only counted, and one summary line carries their number
 * ("... (repeated 82,938 times in 25 s)") when the interval ends, or at
 * once when the caller says the condition is over (logrl_end). While a
 * failure goes on, that is one line per interval instead of one per
 * failure: a full disk costs the log a few lines, not megabytes.
 *
 * Refusals caused by peers are counted per source by broker/refusals.c,
 * which also puts them on the audit record; this is for the broker's own
 * failures and anything else a loop can repeat. A struct logrl belongs to
 * one thread (the broker's network thread); it is not locked.
 */
#ifndef CPX_LOGRL_H
#define CPX_LOGRL_H

#include <stddef.h>
#include <stdint.h>

#include "log.h"

struct logrl;

/*
 * A limiter that keeps at most max_keys repeating lines (the least
 * recently seen one is summarised and forgotten to make room). Owned by
 * the caller (logrl_free); NULL if out of memory.
 */
struct logrl *logrl_new(int64_t interval_ms, size_t max_keys)
	    __attribute__((warn_unused_result));
/* Write the pending summaries, free, NULL *rl. NULL is fine. */
void	logrl_free(struct logrl **rl);

/*
 * Log a line at level unless the same site and key was logged within
 * the interval (key NULL: the formatted message is the key). Returns 1
 * if the line was written, 0 if only counted.
 */
int	logrl_log(struct logrl *rl, int64_t now_ms, enum log_level level,
	    const struct log_fields *f, const char *site, const char *key,
	    const char *fmt, ...) __attribute__((format(printf, 7, 8)));

/* Summaries of the keys whose interval has ended by now_ms. */
void	logrl_tick(struct logrl *rl, int64_t now_ms);

/*
 * The condition behind site and key (NULL: every key of site) is over:
 * write its summary now (if anything was counted) and forget it, so that
 * its next occurrence is logged in full. Returns the repeats that were
 * summarised.
 */
uint64_t logrl_end(struct logrl *rl, int64_t now_ms, const char *site,
	    const char *key);

/* The call site, for logrl_log: "file.c:123". */
#define LOGRL_STR2(x)	#x
#define LOGRL_STR(x)	LOGRL_STR2(x)
#define LOGRL_SITE	__FILE__ ":" LOGRL_STR(__LINE__)

#endif
