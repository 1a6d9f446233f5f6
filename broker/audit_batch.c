/*
 * audit_batch.c: what the segment-file store answers to the questions
 * audit.h asks of shared stores (one writer: never shared, nothing to
 * be notified of, no read to wait for; the PostgreSQL store's answers
 * are dispatched from here), and the growable arrays of record times
 * its batches keep for their outcomes (audit_commit.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "audit_impl.h"
#include "audit_pg.h"

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
audit_shared(const struct audit *a)
{
	return a->pg != NULL;
}

int
audit_notify_fd(const struct audit *a)
{
	return a->pg != NULL ? audit_pg_notify_fd(a->pg) : -1;
}

uint64_t
audit_notify_drain(struct audit *a)
{
	return a->pg != NULL ? audit_pg_notify_drain(a->pg) : 0;
}

void
audit_read_async(struct audit *a)
{
	if (a->pg != NULL)
		a->pg->rd.async = 1;
}

int
audit_read_fd(const struct audit *a, short *events)
{
	*events = 0;
	return a->pg != NULL ? audit_pg_read_fd(a->pg, events) : -1;
}

void
audit_read_step(struct audit *a)
{
	if (a->pg != NULL)
		audit_pg_read_step(a->pg);
}
