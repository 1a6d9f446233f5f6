/*
 * audit_writer.c: appending to the segment-file store (audit.h): the
 * pending batch.
 *
 * audit_append serializes each record as it will be on disk, numbers it
 * and chains its hash at once, so a commit only writes bytes. A batch is
 * cut into parts, one per segment file it goes into (a record never
 * spans two). The commit that writes them is audit_commit.c. Owns the
 * pending batch's buffers of the struct audit.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit.h"
#include "audit_impl.h"
#include "audit_pg.h"
#include "clock.h"
#include "log.h"

/* Record times never go backwards, so a cursor can seek by time. */
int64_t
audit_next_time(const struct audit *a)
{
	int64_t	t = clock_wall_ms();

	return t < a->pend_time ? a->pend_time : t;
}

/* Forget the pending batch: the state is the durable one again. */
void
audit_reset_pending(struct audit *a)
{
	a->batch_len = 0;
	a->nparts = 0;
	a->npending = 0;
	a->pend_seq = a->durable_seq;
	memcpy(a->pend_hash, a->durable_hash, AUDIT_HASH_LEN);
	a->pend_time = a->durable_time;
	a->tail_bytes = a->fd == -1 ? 0 : a->durable_size;
	a->pend_tail_first = a->tail_first;
	a->pend_trusted = a->mark.trusted_seq;
	memcpy(a->pend_trusted_hash, a->mark.trusted_hash, AUDIT_HASH_LEN);
	audit_index_drop_pending(&a->ix);
}

static int
add_part(struct audit *a, uint64_t first, int isnew)
{
	struct part	*np;
	size_t		 cap;

	if (a->nparts == a->partcap) {
		cap = a->partcap ? a->partcap * 2 : 4;
		if ((np = reallocarray(a->parts, cap, sizeof(*np))) == NULL)
			return -1;
		a->parts = np;
		a->partcap = cap;
	}
	a->parts[a->nparts].first = first;
	a->parts[a->nparts].off = a->batch_len;
	a->parts[a->nparts].isnew = isnew;
	a->parts[a->nparts].created = 0;
	memcpy(a->parts[a->nparts].prev, a->pend_hash, AUDIT_HASH_LEN);
	a->nparts++;
	return 0;
}

int
audit_append(struct audit *a, Cpx__AuditRecord *rec, uint64_t *seq_out)
{
	uint64_t	 old_seq = rec->seq;
	int64_t		 old_time = rec->time;
	uint8_t		*nb, *fr, h[AUDIT_HASH_LEN];
	size_t		 len, flen, cap, nparts = a->nparts;
	uint64_t	 off;
	int		 newseg;

	if (a->pg != NULL)
		return audit_pg_append(a->pg, rec, seq_out);
	*seq_out = 0;
	if (a->broken) {
		log_warnx("audit: %s: log unusable since a failed rollback",
		    a->dir);
		return -1;
	}
	rec->seq = a->pend_seq + 1;
	if (rec->time == 0)
		rec->time = audit_next_time(a);
	len = cpx__audit_record__get_packed_size(rec);
	if (len > AUDIT_MAX_RECORD) {
		log_warnx("audit: record of %zu bytes over the limit %u",
		    len, AUDIT_MAX_RECORD);
		goto fail;
	}
	flen = len + FRAME_OVERHEAD;
	if (audit_index_reserve_pending(&a->ix) == -1 ||
	    audit_times_reserve(&a->pend_times, &a->pend_times_cap,
	    a->npending + 1) == -1)
		goto fail;
	if (a->batch_cap - a->batch_len < flen) {
		cap = a->batch_cap ? a->batch_cap : 64 * 1024;
		while (cap - a->batch_len < flen)
			cap *= 2;
		if ((nb = realloc(a->batch, cap)) == NULL)
			goto fail;
		a->batch = nb;
		a->batch_cap = cap;
	}
	/* A record never spans segments; a big one may get its own. */
	newseg = a->pend_tail_first == 0 ||
	    (a->tail_bytes > 0 && a->tail_bytes + flen > a->seg_bytes);
	if (newseg) {
		if (add_part(a, rec->seq, 1) == -1)
			goto fail;
	} else if (a->nparts == 0 && add_part(a, a->pend_tail_first, 0) ==
	    -1)
		goto fail;
	fr = a->batch + a->batch_len;
	audit_put_be32(fr, AUDIT_MAGIC);
	audit_put_be32(fr + 4, (uint32_t)len);
	if (cpx__audit_record__pack(rec, fr + FRAME_HDR) != len ||
	    audit_chain_hash(a->md, a->pend_hash, rec->seq, fr + FRAME_HDR,
	    (uint32_t)len, h) == -1)
		goto fail;
	memcpy(fr + FRAME_HDR + len, h, AUDIT_HASH_LEN);
	off = newseg ? 0 : a->tail_bytes;
	audit_index_pending(&a->ix, a->parts[a->nparts - 1].first, rec->seq,
	    off, rec->time, a->pend_hash);
	a->batch_len += flen;
	a->tail_bytes = off + flen;
	if (newseg)
		a->pend_tail_first = rec->seq;
	a->pend_seq = rec->seq;
	memcpy(a->pend_hash, h, AUDIT_HASH_LEN);
	if (rec->time > a->pend_time)
		a->pend_time = rec->time;
	a->pend_times[a->npending++] = rec->time;
	a->since_checkpoint++;
	*seq_out = rec->seq;
	return 0;
fail:
	a->nparts = nparts;
	rec->seq = old_seq;
	rec->time = old_time;
	return -1;
}

int
audit_pwrite_all(int fd, const uint8_t *buf, size_t len, uint64_t off)
{
	ssize_t	n;

	while (len > 0) {
		n = pwrite(fd, buf, len, (off_t)off);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0) {
			errno = EIO;
			return -1;
		}
		buf += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}
