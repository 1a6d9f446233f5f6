/*
 * audit_commit.c: the segment-file store's group commit, and the thread
 * that does its disk work while the broker's loop goes on.
 *
 * A commit is three steps. commit_prepare (the loop's thread) takes the
 * pending batch out of the store into a struct audit_job: its bytes, its
 * parts (one per segment file), the chain state after it, the tail and
 * the mark as they are durable now. Appends go on at once into a fresh
 * batch numbered after it. commit_write does the I/O with nothing but
 * the job and the store's directory and mark fds: write and fsync every
 * part (and the directory for a new segment), then the high-water mark's
 * next slot (pwrite + fdatasync); on any failure it puts the mark back,
 * removes the segments it created and cuts the tail back, so what is on
 * disk is exactly the acknowledged chain. commit_finish (the loop's
 * thread again) makes the store's durable state the job's, or, if the
 * write failed, drops the batch appended meanwhile too (audit.h:
 * Failure) and, if the rollback itself failed, stops the store writing.
 *
 * audit_commit does the three in a row. audit_commit_begin hands the
 * job to the committer thread (started at the first begin, one per
 * store) and audit_commit_step finishes it once the thread has said so
 * on an eventfd the loop polls: nothing is acknowledged before
 * commit_finish, which runs after the fsyncs returned.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "audit.h"
#include "audit_impl.h"
#include "audit_pg.h"
#include "log.h"

/* What a failed write names: the file and the operation. */
static void
job_fail(struct audit_job *j, const char *dir, const char *name,
    const char *op, int saved)
{
	snprintf(j->err, sizeof(j->err), "audit: %s/%s: %s: %s", dir, name,
	    op, strerror(saved));
	j->rc = -1;
}

/*
 * Undo the segments a failed write created and cut the old tail back to
 * its durable size. If the tail cannot be cut, the on-disk chain may
 * hold unacknowledged bytes: the store must stop writing (j->broken).
 */
static void
job_rollback(const struct audit *a, struct audit_job *j)
{
	char	name[SEG_NAME_LEN];
	size_t	i;
	int	removed = 0;

	for (i = 0; i < j->nparts; i++) {
		if (!j->parts[i].created)
			continue;
		audit_seg_name(name, j->parts[i].first);
		if (unlinkat(a->dirfd, name, 0) == -1 && errno != ENOENT)
			log_warn("audit: %s/%s: unlink", a->dir, name);
		removed = 1;
	}
	if (removed && fsync(a->dirfd) == -1)
		log_warn("audit: %s: fsync", a->dir);
	if (j->fd != -1 && (ftruncate(j->fd, (off_t)j->off) == -1 ||
	    fsync(j->fd) == -1)) {
		audit_seg_name(name, j->first);
		log_warn("audit: %s/%s: rollback to %" PRIu64 " bytes failed; "
		    "no more records will be written", a->dir, name, j->off);
		j->broken = 1;
	}
}

/*
 * The records of a failed commit were durable and the mark may be too:
 * put the old mark back (into the slot that failed: the other still
 * holds it) before the records go, so that a crash in between never
 * leaves a mark longer than the log. If that fails, keep the records
 * (the log is whole either way) and stop writing.
 */
static void
job_unmark(const struct audit *a, struct audit_job *j)
{
	struct audit_mark	m = j->mark;

	m.gen = j->mark_out.gen - 1;
	if (audit_mark_write(a->mark_fd, &m) == -1) {
		log_warn("audit: %s/%s: the high-water mark of a failed "
		    "commit could not be taken back; no more records will "
		    "be written", a->dir, AUDIT_MARK_FILE);
		j->broken = 1;
		return;
	}
	j->mark_out = m;
	j->mark_back = 1;
	job_rollback(a, j);
}

/*
 * The disk work of a commit: touches only j, and a's directory and mark
 * fds and names, which do not change while a store is open. Any thread.
 */
static void
commit_write(const struct audit *a, struct audit_job *j)
{
	char		 name[SEG_NAME_LEN];
	const char	*op = "write";
	uint64_t	 off = j->off, first = j->first;
	size_t		 i, end;
	int		 fd = j->fd, created = 0, marked = 0, saved;

	j->rc = 0;
	j->broken = 0;
	j->mark_back = 0;
	j->err[0] = '\0';
	audit_seg_name(name, j->first);
	for (i = 0; i < j->nparts; i++) {
		if (j->parts[i].isnew) {
			if (fd != j->fd)
				close(fd);	/* fsync'd below already */
			fd = -1;
			first = j->parts[i].first;
			audit_seg_name(name, first);
			op = "create";
			fd = openat(a->dirfd, name, O_WRONLY | O_CREAT |
			    O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
			if (fd == -1)
				goto fail;
			j->parts[i].created = 1;
			created = 1;
			off = 0;
		}
		end = i + 1 < j->nparts ? j->parts[i + 1].off : j->len;
		op = "write";
		if (audit_pwrite_all(fd, j->batch + j->parts[i].off,
		    end - j->parts[i].off, off) == -1)
			goto fail;
		off += end - j->parts[i].off;
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
	j->mark_out = j->mark;
	j->mark_out.last_seq = j->last_seq;
	memcpy(j->mark_out.last_hash, j->last_hash, AUDIT_HASH_LEN);
	j->mark_out.trusted_seq = j->trusted_seq;
	memcpy(j->mark_out.trusted_hash, j->trusted_hash, AUDIT_HASH_LEN);
	marked = 1;
	if (audit_mark_write(a->mark_fd, &j->mark_out) == -1) {
		op = "write";
		snprintf(name, sizeof(name), "%s", AUDIT_MARK_FILE);
		goto fail;
	}
	j->fd_out = fd;
	j->first_out = first;
	j->off_out = off;
	return;
fail:
	saved = errno;
	job_fail(j, a->dir, name, op, saved);
	if (fd != -1 && fd != j->fd)
		close(fd);
	j->fd_out = j->fd;
	if (marked)
		job_unmark(a, j);
	else
		job_rollback(a, j);
}

/* Swap the batch's buffers into j; the store keeps j's old ones. */
static void
swap_buffers(struct audit *a, struct audit_job *j)
{
	uint8_t		*b = j->batch;
	size_t		 cap = j->cap;
	struct part	*p = j->parts;
	size_t		 pcap = j->partcap;

	j->batch = a->batch;
	j->cap = a->batch_cap;
	j->len = a->batch_len;
	j->parts = a->parts;
	j->partcap = a->partcap;
	j->nparts = a->nparts;
	a->batch = b;
	a->batch_cap = cap;
	a->batch_len = 0;
	a->parts = p;
	a->partcap = pcap;
	a->nparts = 0;
}

/*
 * Take the pending batch into j (see the top). Returns 0, or -1 with
 * err[] (out of memory, a store that stopped writing): the pending batch
 * is then dropped.
 */
static int
commit_prepare(struct audit *a, struct audit_job *j, char *err,
    size_t errlen)
{
	char	name[SEG_NAME_LEN];

	audit_seg_name(name, a->tail_first);
	if (a->broken) {
		audit_seterr(err, errlen, "audit: %s/%s: log unusable since a "
		    "failed rollback", a->dir, name);
		audit_reset_pending(a);
		return -1;
	}
	if (audit_segs_reserve(a, a->nparts) == -1 ||
	    audit_index_reserve_commit(&a->ix) == -1 ||
	    audit_times_reserve(&j->times, &j->times_cap, a->npending) == -1) {
		audit_seterr(err, errlen, "audit: %s/%s: write: %s", a->dir,
		    name, strerror(ENOMEM));
		audit_reset_pending(a);
		return -1;
	}
	j->nrec = a->npending;
	memcpy(j->times, a->pend_times, a->npending * sizeof(int64_t));
	j->first_seq = a->pend_seq - a->npending + 1;
	j->last_seq = a->pend_seq;
	memcpy(j->last_hash, a->pend_hash, AUDIT_HASH_LEN);
	j->last_time = a->pend_time;
	j->trusted_seq = a->pend_trusted;
	memcpy(j->trusted_hash, a->pend_trusted_hash, AUDIT_HASH_LEN);
	j->npoints = audit_index_npending(&a->ix);
	j->fd = a->fd;
	j->off = a->durable_size;
	j->first = a->tail_first;
	j->mark = a->mark;
	swap_buffers(a, j);
	a->npending = 0;
	return 0;
}

/*
 * Make j's outcome the store's (the loop's thread). Returns 0, or -1
 * with err[]: the write failed, and the batch appended since is gone too.
 */
static int
commit_finish(struct audit *a, struct audit_job *j, char *err,
    size_t errlen)
{
	size_t	i;

	if (j->rc == -1) {
		audit_seterr(err, errlen, "%s", j->err);
		if (j->broken)
			a->broken = 1;
		if (j->mark_back)
			a->mark = j->mark_out;
		audit_reset_pending(a);
		return -1;
	}
	a->mark = j->mark_out;
	for (i = 0; i < j->nparts; i++) {
		/* Cannot fail: reserved in commit_prepare. */
		if (j->parts[i].isnew && audit_segs_add(a, j->parts[i].first,
		    j->parts[i].prev) == -1)
			fatalx("audit: segment list");
	}
	if (j->fd_out != a->fd) {
		if (a->fd != -1)
			close(a->fd);
		a->fd = j->fd_out;
	}
	a->tail_first = j->first_out;
	a->durable_size = j->off_out;
	a->durable_seq = j->last_seq;
	memcpy(a->durable_hash, j->last_hash, AUDIT_HASH_LEN);
	a->durable_time = j->last_time;
	audit_index_commit_first(&a->ix, j->npoints);
	return 0;
}

int
audit_commit(struct audit *a, char *err, size_t errlen)
{
	char	ferr[512];
	int	rc = 0;

	if (a->pg != NULL)
		return audit_pg_commit(a->pg, err, errlen);
	audit_clearerr(err, errlen);
	if (a->inflight) {
		/* The batch in flight first, then what came after it. */
		rc = audit_commit_wait(a, ferr, sizeof(ferr));
		if (rc == -1) {
			audit_seterr(err, errlen, "%s", ferr);
			return -1;
		}
	}
	if (a->npending == 0)
		return 0;
	if (commit_prepare(a, &a->job, err, errlen) == -1)
		return -1;
	commit_write(a, &a->job);
	return commit_finish(a, &a->job, err, errlen);
}

/* --- the committer thread ---------------------------------------------- */

static void *
committer_main(void *arg)
{
	struct audit	*a = arg;
	uint64_t	 one = 1;
	int		 stop;

	for (;;) {
		pthread_mutex_lock(&a->cm_mu);
		while (!a->cm_work && !a->cm_stop)
			pthread_cond_wait(&a->cm_cv, &a->cm_mu);
		stop = a->cm_stop && !a->cm_work;
		pthread_mutex_unlock(&a->cm_mu);
		if (stop)
			break;
		commit_write(a, &a->job);
		pthread_mutex_lock(&a->cm_mu);
		a->cm_work = 0;
		a->cm_done = 1;
		pthread_mutex_unlock(&a->cm_mu);
		while (write(a->cm_efd, &one, sizeof(one)) == -1 &&
		    errno == EINTR)
			;
	}
	return NULL;
}

static int
committer_start(struct audit *a, char *err, size_t errlen)
{
	int	rc;

	if (a->cm_started)
		return 0;
	if ((a->cm_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1) {
		audit_seterr(err, errlen, "audit: %s: eventfd: %s", a->dir,
		    strerror(errno));
		return -1;
	}
	if (pthread_mutex_init(&a->cm_mu, NULL) != 0 ||
	    pthread_cond_init(&a->cm_cv, NULL) != 0 ||
	    (rc = pthread_create(&a->cm_thread, NULL, committer_main, a)) !=
	    0) {
		audit_seterr(err, errlen, "audit: %s: committer thread: "
		    "cannot start", a->dir);
		close(a->cm_efd);
		a->cm_efd = -1;
		return -1;
	}
	a->cm_started = 1;
	return 0;
}

void
audit_committer_stop(struct audit *a)
{
	if (!a->cm_started)
		return;
	pthread_mutex_lock(&a->cm_mu);
	a->cm_stop = 1;
	pthread_cond_signal(&a->cm_cv);
	pthread_mutex_unlock(&a->cm_mu);
	pthread_join(a->cm_thread, NULL);
	pthread_cond_destroy(&a->cm_cv);
	pthread_mutex_destroy(&a->cm_mu);
	close(a->cm_efd);
	a->cm_efd = -1;
	a->cm_started = 0;
}

int
audit_commit_begin(struct audit *a, char *err, size_t errlen)
{
	if (a->pg != NULL)
		return audit_pg_begin(a->pg, 0, err, errlen);
	audit_clearerr(err, errlen);
	if (a->inflight) {
		audit_seterr(err, errlen, "audit: %s: a commit is in flight "
		    "already", a->dir);
		return -1;
	}
	a->done_n = 0;
	if (a->npending == 0) {
		/* Nothing to write: done at once, a batch of 0. */
		a->job.nrec = 0;
		a->job.rc = 0;
		a->inflight = 1;
		a->cm_inline = 1;
		return 0;
	}
	if (committer_start(a, err, errlen) == -1 ||
	    commit_prepare(a, &a->job, err, errlen) == -1)
		return -1;
	a->inflight = 1;
	a->cm_inline = 0;
	pthread_mutex_lock(&a->cm_mu);
	a->cm_done = 0;
	a->cm_work = 1;
	pthread_cond_signal(&a->cm_cv);
	pthread_mutex_unlock(&a->cm_mu);
	return 0;
}

int
audit_commit_inflight(const struct audit *a)
{
	if (a->pg != NULL)
		return a->pg->phase != PG_IDLE;
	return a->inflight;
}

int
audit_commit_fd(const struct audit *a, short *events)
{
	if (a->pg != NULL)
		return audit_pg_commit_fd(a->pg, events);
	*events = POLLIN;
	if (!a->inflight || a->cm_inline)
		return -1;
	return a->cm_efd;
}

/* Finish the commit in flight once the thread is done with it. */
static int
step_done(struct audit *a, char *err, size_t errlen)
{
	uint64_t	n;

	while (read(a->cm_efd, &n, sizeof(n)) == -1 && errno == EINTR)
		;
	a->inflight = 0;
	if (commit_finish(a, &a->job, err, errlen) == -1)
		return -1;
	a->done_n = a->job.nrec;
	return 1;
}

int
audit_commit_step(struct audit *a, char *err, size_t errlen)
{
	int	done;

	if (a->pg != NULL)
		return audit_pg_step(a->pg, err, errlen);
	audit_clearerr(err, errlen);
	if (!a->inflight) {
		audit_seterr(err, errlen, "audit: %s: no commit in flight",
		    a->dir);
		return -1;
	}
	if (a->cm_inline) {
		a->inflight = 0;
		return 1;
	}
	pthread_mutex_lock(&a->cm_mu);
	done = a->cm_done;
	pthread_mutex_unlock(&a->cm_mu);
	if (!done)
		return 0;
	return step_done(a, err, errlen);
}

int
audit_commit_wait(struct audit *a, char *err, size_t errlen)
{
	struct pollfd	pfd;
	int		rc;

	while ((rc = audit_commit_step(a, err, errlen)) == 0) {
		pfd.fd = audit_commit_fd(a, &pfd.events);
		if (pfd.fd != -1 && poll(&pfd, 1, -1) == -1 && errno != EINTR) {
			audit_seterr(err, errlen, "audit: %s: poll: %s",
			    a->dir, strerror(errno));
			return -1;
		}
	}
	return rc;
}

size_t
audit_batch_count(const struct audit *a)
{
	if (a->pg != NULL)
		return a->pg->ndone;
	return a->done_n;
}

int
audit_batch_outcome(const struct audit *a, size_t i, uint64_t *seq,
    int64_t *time)
{
	if (a->pg != NULL)
		return audit_pg_outcome(a->pg, i, seq, time);
	if (i >= a->done_n)
		return 0;
	*seq = a->job.first_seq + i;
	*time = a->job.times[i];
	return AUDIT_OUT_COMMITTED;
}

void
audit_job_free(struct audit_job *j)
{
	free(j->batch);
	free(j->parts);
	free(j->times);
	memset(j, 0, sizeof(*j));
}
