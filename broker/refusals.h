/*
 * refusals.h: what the broker remembers of the refusals it makes, so that
 * refusing costs the refused party and not the disk. Within one interval
 * the first refusal of a kind from a source (a source address before
 * authentication, a node after) is written to the audit log and the log
 * in full; the rest are only counted, and one summary record per source,
 * kind and reason carries the count when the interval ends. A node
 * refused too often in one interval is cut and kept out for a while
 * (doubling while it goes on).
 */
#ifndef CPX_REFUSALS_H
#define CPX_REFUSALS_H

#include <stddef.h>
#include <stdint.h>

#include "identity.h"

/* Who was refused: a node (country non-empty) or only an address. */
struct refusal_source {
	const char	*country;	/* "" before authentication */
	const char	*node;
	const char	*addr;
};

/* One summary, handed to the flush callback. */
struct refusal_summary {
	char		 country[3];
	char		 node[CPX_MAX_NODE_NAME + 1];
	char		 addr[64];
	int		 kind;		/* CPX__RECORD_KIND__* */
	int		 reason;	/* CPX__REASON__* */
	uint64_t	 count;		/* refusals not written one by one */
	int64_t		 since_ms;	/* start of the interval */
	char		 text[160];	/* the first refusal's text */
};

typedef void refusals_flush_fn(void *arg, const struct refusal_summary *);

struct refusals;

/* An empty record (refusals_free). NULL if out of memory. */
struct refusals *refusals_new(void);
void	refusals_free(struct refusals **r);

/*
 * Count one refusal of kind and reason from src at now_ms (text is the
 * reason in words, kept from the first one). Returns 1 if it is the first
 * of its kind from src in this interval (the caller writes it in full), 0
 * if it was only counted. Past REFUSALS_MAX sources, new ones are counted
 * together under one "other sources" entry.
 */
int	refusals_count(struct refusals *r, const struct refusal_source *src,
	    int kind, int reason, const char *text, int64_t now_ms);

/* Refusals of every kind counted against src in this interval. */
uint64_t refusals_total(const struct refusals *r,
	    const struct refusal_source *src);

/*
 * If interval_ms has passed since the interval began, call fn once per
 * source, kind and reason refused more than once (count = the refusals
 * not written one by one) and start a new interval. Returns how many
 * summaries were handed out.
 */
size_t	refusals_flush(struct refusals *r, int64_t now_ms,
	    uint32_t interval_ms, refusals_flush_fn *fn, void *arg);

/*
 * Keep src out: for base_ms the first time, twice as long each time it is
 * cut again while still remembered, at most an hour. Returns the time out
 * given, ms.
 */
int64_t	refusals_penalise(struct refusals *r, const struct refusal_source *src,
	    int64_t now_ms, uint32_t base_ms);

/* Milliseconds src must still stay out, 0 if it may come in. */
int64_t	refusals_banned(const struct refusals *r,
	    const struct refusal_source *src, int64_t now_ms);

#endif
