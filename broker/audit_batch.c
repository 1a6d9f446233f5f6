/*
 * audit_batch.c: the segment-file store's commit as an event loop sees
 * it (audit.h: "The commit seen from an event loop"). The files are
 * written and fsynced by audit_commit when the batch is begun; step
 * hands back what that gave, and the outcomes are the batch's
 * sequences, one after the other, as audit_append numbered them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "audit_impl.h"

int
audit_times_reserve(int64_t **v, size_t *cap, size_t n)
{
	int64_t	*nv;
	size_t	 c;

	if (n <= *cap)
		return 0;
	c = *cap ? *cap : 256;
	while (c < n)
		c *= 2;
	if ((nv = reallocarray(*v, c, sizeof(*nv))) == NULL)
		return -1;
	*v = nv;
	*cap = c;
	return 0;
}

int
audit_commit_begin(struct audit *a, char *err, size_t errlen)
{
	size_t	n = a->npending;

	if (a->inflight) {
		snprintf(err, errlen, "audit: %s: a commit is in flight "
		    "already", a->dir);
		return -1;
	}
	if (audit_times_reserve(&a->done_times, &a->done_times_cap, n) ==
	    -1) {
		snprintf(err, errlen, "audit: %s: out of memory", a->dir);
		audit_reset_pending(a);
		return -1;
	}
	if (n > 0)
		memcpy(a->done_times, a->pend_times, n * sizeof(int64_t));
	a->done_first = a->durable_seq + 1;
	a->done_n = 0;
	a->inflight = 1;
	a->inflight_err[0] = '\0';
	a->inflight_rc = audit_commit(a, a->inflight_err,
	    sizeof(a->inflight_err));
	if (a->inflight_rc == 0)
		a->done_n = n;
	return 0;
}

int
audit_commit_inflight(const struct audit *a)
{
	return a->inflight;
}

int
audit_commit_fd(const struct audit *a, short *events)
{
	(void)a;
	*events = 0;
	return -1;		/* done when begun */
}

int
audit_commit_step(struct audit *a, char *err, size_t errlen)
{
	if (!a->inflight) {
		snprintf(err, errlen, "audit: %s: no commit in flight", a->dir);
		return -1;
	}
	a->inflight = 0;
	if (a->inflight_rc == -1) {
		snprintf(err, errlen, "%s", a->inflight_err);
		return -1;
	}
	return 1;
}

size_t
audit_batch_count(const struct audit *a)
{
	return a->done_n;
}

int
audit_batch_outcome(const struct audit *a, size_t i, uint64_t *seq,
    int64_t *time)
{
	if (i >= a->done_n)
		return 0;
	*seq = a->done_first + i;
	*time = a->done_times[i];
	return AUDIT_OUT_COMMITTED;
}

int
audit_shared(const struct audit *a)
{
	(void)a;
	return 0;
}

int
audit_notify_fd(const struct audit *a)
{
	(void)a;
	return -1;
}

uint64_t
audit_notify_drain(struct audit *a)
{
	(void)a;
	return 0;
}
