/*
 * audit_writer.c: appending to the segment-file store (audit.h): the
 * pending batch, the group commit and the rollback of a failed one.
 *
 * audit_append serializes each record as it will be on disk, numbers it
 * and chains its hash at once, so a commit only writes bytes. A batch is
 * cut into parts, one per segment file it goes into (a record never
 * spans two). audit_commit writes and fsyncs every part, and the
 * directory for a new segment, before it moves the durable state; on any
 * failure it removes what it created and truncates the tail back to the
 * durable size, so what is on disk is always exactly the acknowledged
 * chain. Owns the batch buffers of the struct audit.
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
	newseg = (a->fd == -1 && a->nparts == 0) ||
	    (a->tail_bytes > 0 && a->tail_bytes + flen > a->seg_bytes);
	if (newseg) {
		if (add_part(a, rec->seq, 1) == -1)
			goto fail;
	} else if (a->nparts == 0 && add_part(a, a->tail_first, 0) == -1)
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

/*
 * Undo a failed commit: remove the segments it created, cut the tail back
 * to its durable size, forget the batch. If the tail cannot be cut, the
 * on-disk chain may hold unacknowledged bytes: stop writing altogether.
 */
static void
rollback(struct audit *a)
{
	char	name[SEG_NAME_LEN];
	size_t	i;
	int	removed = 0;

	for (i = 0; i < a->nparts; i++) {
		if (!a->parts[i].created)
			continue;
		audit_seg_name(name, a->parts[i].first);
		if (unlinkat(a->dirfd, name, 0) == -1 && errno != ENOENT)
			log_warn("audit: %s/%s: unlink", a->dir, name);
		removed = 1;
	}
	if (removed && fsync(a->dirfd) == -1)
		log_warn("audit: %s: fsync", a->dir);
	if (a->fd != -1 && (ftruncate(a->fd, (off_t)a->durable_size) == -1 ||
	    fsync(a->fd) == -1)) {
		audit_seg_name(name, a->tail_first);
		log_warn("audit: %s/%s: rollback to %" PRIu64 " bytes failed; "
		    "no more records will be written", a->dir, name,
		    a->durable_size);
		a->broken = 1;
	}
	audit_reset_pending(a);
}

/*
 * The records of a failed commit were durable, the mark may be too:
 * put the mark back before the records go, so that a crash in between
 * never leaves a mark longer than the log. If the old mark cannot be
 * written back, keep the records (the log is whole either way) and
 * stop writing.
 */
static void
unmark(struct audit *a, uint64_t gen)
{
	struct audit_mark	m = a->mark;

	/* Into the slot that failed: the other one still holds the old. */
	m.gen = gen - 1;
	if (audit_mark_write(a->mark_fd, &m) == -1) {
		log_warn("audit: %s/%s: the high-water mark of a failed "
		    "commit could not be taken back; no more records will "
		    "be written", a->dir, AUDIT_MARK_FILE);
		a->broken = 1;
		audit_reset_pending(a);
		return;
	}
	a->mark = m;
	rollback(a);
}

int
audit_commit(struct audit *a, char *err, size_t errlen)
{
	char		 name[SEG_NAME_LEN];
	const char	*op = "write";
	struct audit_mark m;
	uint64_t	 off = a->durable_size, first = a->tail_first;
	size_t		 i, end;
	int		 fd = a->fd, created = 0, saved, marked = 0;

	audit_clearerr(err, errlen);
	if (a->npending == 0)
		return 0;
	audit_seg_name(name, a->tail_first);
	if (a->broken) {
		audit_seterr(err, errlen, "audit: %s/%s: log unusable since a "
		    "failed rollback", a->dir, name);
		audit_reset_pending(a);
		return -1;
	}
	if (audit_segs_reserve(a, a->nparts) == -1 ||
	    audit_index_reserve_commit(&a->ix) == -1) {
		errno = ENOMEM;
		goto fail;
	}
	for (i = 0; i < a->nparts; i++) {
		if (a->parts[i].isnew) {
			if (fd != a->fd)
				close(fd);	/* fsync'd below already */
			fd = -1;
			first = a->parts[i].first;
			audit_seg_name(name, first);
			op = "create";
			fd = openat(a->dirfd, name, O_WRONLY | O_CREAT |
			    O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
			if (fd == -1)
				goto fail;
			a->parts[i].created = 1;
			created = 1;
			off = 0;
		}
		end = i + 1 < a->nparts ? a->parts[i + 1].off : a->batch_len;
		op = "write";
		if (audit_pwrite_all(fd, a->batch + a->parts[i].off,
		    end - a->parts[i].off, off) == -1)
			goto fail;
		off += end - a->parts[i].off;
		op = "fsync";
		if (fsync(fd) == -1)
			goto fail;
	}
	/* A new file is durable only once its directory entry is. */
	if (created && fsync(a->dirfd) == -1) {
		op = "fsync directory";
		goto fail;
	}
	/*
	 * The records are durable; the mark says so. Only now is the batch
	 * committed: removing records from the end can no longer pass for
	 * a shorter log, nor a damaged record for a torn write.
	 */
	m = a->mark;
	m.last_seq = a->pend_seq;
	memcpy(m.last_hash, a->pend_hash, AUDIT_HASH_LEN);
	m.trusted_seq = a->pend_trusted;
	memcpy(m.trusted_hash, a->pend_trusted_hash, AUDIT_HASH_LEN);
	marked = 1;
	if (audit_mark_write(a->mark_fd, &m) == -1) {
		op = "write";
		snprintf(name, sizeof(name), "%s", AUDIT_MARK_FILE);
		goto fail;
	}
	a->mark = m;
	for (i = 0; i < a->nparts; i++) {
		/* Cannot fail: reserved above. */
		if (a->parts[i].isnew && audit_segs_add(a, a->parts[i].first,
		    a->parts[i].prev) == -1)
			fatalx("audit: segment list");
	}
	if (fd != a->fd) {
		if (a->fd != -1)
			close(a->fd);
		a->fd = fd;
	}
	a->tail_first = first;
	a->durable_size = off;
	a->durable_seq = a->pend_seq;
	memcpy(a->durable_hash, a->pend_hash, AUDIT_HASH_LEN);
	a->durable_time = a->pend_time;
	audit_index_commit(&a->ix);
	audit_reset_pending(a);
	return 0;
fail:
	saved = errno;
	audit_seterr(err, errlen, "audit: %s/%s: %s: %s", a->dir, name, op,
	    strerror(saved));
	if (fd != -1 && fd != a->fd)
		close(fd);
	if (marked)
		unmark(a, m.gen);
	else
		rollback(a);
	errno = saved;
	return -1;
}
