/*
 * audit_index.c: the in-memory index of the audit log (audit_impl.h):
 * each segment's first record and every AUDIT_INDEX_EVERY-th after it,
 * with its file offset, the chain hash before it and the highest record
 * time up to the next point. Built by recovery as audit_open() reads the
 * log, extended by each commit, never written to disk (the segment
 * format stays as it is). Owned by the struct audit; one thread.
 *
 * Without it a cursor reads from the start of a segment, or of the log
 * when it starts by time: a replay "from a time after everything" read
 * the whole log in one call and held the broker's loop for every node.
 */
#include <stdlib.h>
#include <string.h>

#include "audit_impl.h"

/* Room for need more points in *v, which holds n of *capp. */
static int
reserve(struct audit_ixpt **v, size_t n, size_t *capp, size_t need)
{
	struct audit_ixpt	*nv;
	size_t			 cap;

	if (*capp - n >= need)
		return 0;
	cap = *capp ? *capp : 64;
	while (cap - n < need)
		cap *= 2;
	if ((nv = reallocarray(*v, cap, sizeof(*nv))) == NULL)
		return -1;
	*v = nv;
	*capp = cap;
	return 0;
}

static void
fill(struct audit_ixpt *p, uint64_t seg, uint64_t seq, uint64_t off,
    int64_t maxtime, const uint8_t prev[AUDIT_HASH_LEN])
{
	p->seq = seq;
	p->seg = seg;
	p->off = off;
	p->maxtime = maxtime;
	memcpy(p->prev, prev, AUDIT_HASH_LEN);
}

static int
is_point(uint64_t seg, uint64_t seq)
{
	return (seq - seg) % AUDIT_INDEX_EVERY == 0;
}

int
audit_index_note(struct audit_index *x, uint64_t seg, uint64_t seq,
    uint64_t off, int64_t time, const uint8_t prev[AUDIT_HASH_LEN])
{
	int64_t	max = x->n > 0 ? x->v[x->n - 1].maxtime : INT64_MIN;

	if (!is_point(seg, seq) && x->n > 0) {
		if (time > max)
			x->v[x->n - 1].maxtime = time;
		return 0;
	}
	if (reserve(&x->v, x->n, &x->cap, 1) == -1)
		return -1;
	fill(&x->v[x->n++], seg, seq, off, time > max ? time : max, prev);
	return 0;
}

int
audit_index_reserve_pending(struct audit_index *x)
{
	return reserve(&x->pv, x->pn, &x->pcap, 1);
}

void
audit_index_pending(struct audit_index *x, uint64_t seg, uint64_t seq,
    uint64_t off, int64_t time, const uint8_t prev[AUDIT_HASH_LEN])
{
	struct audit_ixpt	*last;

	if (is_point(seg, seq)) {
		/* Room was reserved before the append changed anything. */
		fill(&x->pv[x->pn++], seg, seq, off, time, prev);
		return;
	}
	if (x->pn > 0) {
		last = &x->pv[x->pn - 1];
		if (time > last->maxtime)
			last->maxtime = time;
	} else if (time > x->ptailmax)
		x->ptailmax = time;
}

int
audit_index_reserve_commit(struct audit_index *x)
{
	return reserve(&x->v, x->n, &x->cap, x->pn);
}

void
audit_index_commit(struct audit_index *x)
{
	struct audit_ixpt	*p;
	size_t			 i;

	/* Batch records before its first point extend the last block. */
	if (x->n > 0 && x->ptailmax > x->v[x->n - 1].maxtime)
		x->v[x->n - 1].maxtime = x->ptailmax;
	for (i = 0; i < x->pn; i++) {
		p = &x->v[x->n];
		*p = x->pv[i];
		if (x->n > 0 && p->maxtime < x->v[x->n - 1].maxtime)
			p->maxtime = x->v[x->n - 1].maxtime;
		x->n++;
	}
	audit_index_drop_pending(x);
}

size_t
audit_index_npending(const struct audit_index *x)
{
	return x->pn;
}

void
audit_index_commit_first(struct audit_index *x, size_t n)
{
	size_t	rest = x->pn - n;

	x->pn = n;
	audit_index_commit(x);
	/* Records of the next batch before its first point extended the
	 * last point just committed: a block's maxtime may only be high,
	 * which costs a seek a few reads, never a record. */
	if (rest > 0)
		memmove(x->pv, x->pv + n, rest * sizeof(*x->pv));
	x->pn = rest;
}

void
audit_index_drop_pending(struct audit_index *x)
{
	x->pn = 0;
	x->ptailmax = INT64_MIN;
}

const struct audit_ixpt *
audit_index_seek(const struct audit_index *x, uint64_t from_seq,
    int64_t from_time)
{
	size_t	lo, hi, mid, i;

	if (x->n == 0)
		return NULL;
	/* Last point with seq <= from_seq: v[lo - 1].seq <= from_seq. */
	lo = 0;
	hi = x->n;
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (x->v[mid].seq <= from_seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	i = lo > 0 ? lo - 1 : 0;
	if (from_time <= 0)
		return &x->v[i];
	/*
	 * First point whose running maximum reaches from_time: no record
	 * before it has such a time, so none is skipped by starting there.
	 */
	lo = 0;
	hi = x->n;
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (x->v[mid].maxtime < from_time)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == x->n)
		lo = x->n - 1;	/* not yet: wait at the last block */
	return &x->v[lo > i ? lo : i];
}

int64_t
audit_index_maxtime(const struct audit_index *x)
{
	return x->n > 0 ? x->v[x->n - 1].maxtime : 0;
}

void
audit_index_free(struct audit_index *x)
{
	free(x->v);
	free(x->pv);
	memset(x, 0, sizeof(*x));
}
