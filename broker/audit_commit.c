/*
 * audit_commit.c: the segment-file store's group commit, and the thread
 * that does its disk work while the broker's loop goes on.
 *
 * A commit is three steps. commit_prepare (the loop's thread) takes the
 * pending batch out of the store into a struct audit_job: its bytes, its
 * parts (one per segment file), the chain state after it, the tail as
 * it is durable now. Appends go on at once into a fresh batch numbered
 * after it. commit_write does the I/O with nothing but the job and the
 * store's directory fd: write and fsync every part (and the directory
 * for a new segment); on any failure it removes the segments it created
 * and cuts the tail back, so what is on disk is exactly the
 * acknowledged chain. commit_finish (the loop's thread again) makes the
 * store's durable state the job's, or, if the write failed, drops the
 * batch appended meanwhile too (audit.h: Failure) and, if the rollback
 * itself failed, stops the store writing.
 *
 * One flush per commit. The batch is acknowledged once its records are
 * durable (one fsync: a journal commit on ext4); the high-water mark
 * (audit_mark.c, pwrite + fdatasync) that says how long the log is
 * comes after, from the committer thread, while the loop already
 * answers the batch. So the mark lags the records, never leads them: it
 * is written only from mk_want, which a commit sets after its records
 * are durable, and only forwards. If the next batch is already waiting,
 * the thread takes it first and one mark covers both; at most
 * MARK_SKIPS commits in a row, then the mark is written before the next
 * batch. At idle the mark follows each commit within one fdatasync.
 * After a crash the records above the mark are kept at open (they are
 * whole: fsynced before their ack), so no acknowledged record is lost;
 * what the lag gives up is that the last few acknowledged batches, if
 * later cut from the end, are not seen as missing (records cut at or
 * below the mark still are). A mark that cannot be written does not
 * undo records already acknowledged: it is logged, and the next commit
 * tries it again before writing anything and fails, naming the file and
 * the error, until it is written; so the store never goes on writing
 * records while its mark cannot be written. Seal and close write the
 * last mark before returning (audit_commit_mark).
 *
 * audit_commit_begin hands the job to the committer thread (started at
 * the first begin, one per store) and audit_commit_step finishes it once
 * the thread has said so on an eventfd the loop polls: nothing is
 * acknowledged before commit_finish, which runs after the fsyncs
 * returned. audit_commit, for callers that may block, is the same begin
 * and step until done, so the mark has one writer.
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
#include <time.h>
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
 * Commits acknowledged in a row while their mark waits, and how long the
 * thread waits for a batch the loop said follows (see the top).
 */
#define MARK_SKIPS	8u
#define MARK_WAIT_MS	5L

/* 1 if the mark on disk is behind what the durable records call for. */
static int
mark_owed(const struct audit *a)
{
	return a->mk_want.last_seq != a->mk_disk.last_seq ||
	    a->mk_want.trusted_seq != a->mk_disk.trusted_seq;
}

/* Why the mark is behind, for the commits it stops and for close. */
static void
mark_error(const struct audit *a, char *err, size_t errlen)
{
	audit_seterr(err, errlen, "audit: %s/%s: write: %s (records up to %"
	    PRIu64 " are durable and were acknowledged, but the high-water "
	    "mark still says %" PRIu64 "; no more records are taken until "
	    "it is written: check the disk)", a->dir, AUDIT_MARK_FILE,
	    strerror(a->mk_errno), a->mk_want.last_seq, a->mk_disk.last_seq);
}

/*
 * Write the mark the durable records call for (mk_want) as the next
 * generation. Whoever owns the mark runs it: the committer thread, or
 * the store's thread when none runs. Returns 0, or -1 with mk_failed.
 */
static int
mark_catch_up(struct audit *a)
{
	struct audit_mark	m = a->mk_want;
	char			err[512];

	m.gen = a->mk_disk.gen;
	if (audit_mark_write(a->mark_fd, &m) == -1) {
		a->mk_errno = errno;
		if (!a->mk_failed) {
			a->mk_failed = 1;
			mark_error(a, err, sizeof(err));
			log_warnx("%s", err);
		}
		return -1;
	}
	if (a->mk_failed)
		log_info("audit: %s/%s: the high-water mark is written again "
		    "(record %" PRIu64 ")", a->dir, AUDIT_MARK_FILE,
		    m.last_seq);
	a->mk_disk = m;
	a->mk_failed = 0;
	a->mk_skips = 0;
	return 0;
}

/*
 * The disk work of a commit: touches only j, the mark's catch-up state
 * (mk_*) and a's directory and mark fds and names, which do not change
 * while a store is open. The committer thread only.
 */
static void
commit_write(struct audit *a, struct audit_job *j)
{
	char		 name[SEG_NAME_LEN];
	const char	*op = "write";
	uint64_t	 off = j->off, first = j->first;
	size_t		 i, end;
	int		 fd = j->fd, created = 0, saved;

	j->rc = 0;
	j->broken = 0;
	j->err[0] = '\0';
	j->fd_out = j->fd;
	/* A mark that failed after its records' ack: it first (see top). */
	if (a->mk_failed && mark_catch_up(a) == -1) {
		mark_error(a, j->err, sizeof(j->err));
		j->rc = -1;
		return;
	}
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
	 * The records are durable: the batch may be acknowledged, and the
	 * mark may say so (the thread writes it after the ack).
	 */
	j->mark_out = j->mark;
	j->mark_out.last_seq = j->last_seq;
	memcpy(j->mark_out.last_hash, j->last_hash, AUDIT_HASH_LEN);
	j->mark_out.trusted_seq = j->trusted_seq;
	memcpy(j->mark_out.trusted_hash, j->trusted_hash, AUDIT_HASH_LEN);
	a->mk_want = j->mark_out;
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
	/* On the committer thread too: the mark has one writer. */
	if (audit_commit_begin(a, err, errlen) == -1 ||
	    audit_commit_wait(a, err, errlen) == -1)
		return -1;
	return 0;
}

/* --- the committer thread ---------------------------------------------- */

/* deadline = now + ms, on the clock of cm_cv. */
static void
deadline_in(struct timespec *t, long ms)
{
	clock_gettime(CLOCK_MONOTONIC, t);
	t->tv_nsec += ms * 1000000L;
	t->tv_sec += t->tv_nsec / 1000000000L;
	t->tv_nsec %= 1000000000L;
}

/*
 * The committer thread: a batch's records when one is handed over, then
 * the mark they call for. Before the mark it waits (at most MARK_WAIT_MS)
 * while the loop has not taken the result yet or has said a batch
 * follows at once: that batch goes first and the mark covers both,
 * unless MARK_SKIPS were acknowledged since the last mark. At idle the
 * loop says none follows and the mark is written at once.
 */
static void *
committer_main(void *arg)
{
	struct audit	*a = arg;
	struct timespec	 until = { 0, 0 };
	uint64_t	 one = 1;
	int		 owed, waited = 0;

	pthread_mutex_lock(&a->cm_mu);
	for (;;) {
		owed = !a->cm_hold && !a->mk_failed && mark_owed(a);
		if (a->cm_work && (!owed || a->mk_skips < MARK_SKIPS)) {
			if (owed)
				a->mk_skips++;
			a->cm_next = 0;
			pthread_mutex_unlock(&a->cm_mu);
			commit_write(a, &a->job);
			pthread_mutex_lock(&a->cm_mu);
			a->cm_work = 0;
			a->cm_done = 1;
			pthread_mutex_unlock(&a->cm_mu);
			while (write(a->cm_efd, &one, sizeof(one)) == -1 &&
			    errno == EINTR)
				;
			deadline_in(&until, MARK_WAIT_MS);
			waited = 0;
			pthread_mutex_lock(&a->cm_mu);
			continue;
		}
		if (owed && !waited && !a->cm_stop &&
		    a->mk_skips < MARK_SKIPS && (a->cm_done || a->cm_next)) {
			if (pthread_cond_timedwait(&a->cm_cv, &a->cm_mu,
			    &until) == ETIMEDOUT)
				waited = 1;
			continue;
		}
		if (owed) {
			pthread_mutex_unlock(&a->cm_mu);
			(void)mark_catch_up(a);	/* logged; next commit retries */
			pthread_mutex_lock(&a->cm_mu);
			continue;
		}
		if (a->cm_sync) {
			a->cm_sync = 0;
			pthread_cond_broadcast(&a->cm_cv);
		}
		if (a->cm_stop)
			break;
		pthread_cond_wait(&a->cm_cv, &a->cm_mu);
	}
	pthread_mutex_unlock(&a->cm_mu);
	return NULL;
}

static int
committer_start(struct audit *a, char *err, size_t errlen)
{
	pthread_condattr_t	ca;
	int			rc;

	if (a->cm_started)
		return 0;
	if (!a->mk_init) {
		/* Nothing committed since open: a->mark is on disk. */
		a->mk_disk = a->mark;
		a->mk_want = a->mark;
		a->mk_init = 1;
	}
	if ((a->cm_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1) {
		audit_seterr(err, errlen, "audit: %s: eventfd: %s", a->dir,
		    strerror(errno));
		return -1;
	}
	a->cm_stop = 0;
	a->cm_sync = 0;
	a->cm_next = 0;
	if (pthread_condattr_init(&ca) != 0 ||
	    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) != 0 ||
	    pthread_mutex_init(&a->cm_mu, NULL) != 0 ||
	    pthread_cond_init(&a->cm_cv, &ca) != 0 ||
	    (rc = pthread_create(&a->cm_thread, NULL, committer_main, a)) !=
	    0) {
		audit_seterr(err, errlen, "audit: %s: committer thread: "
		    "cannot start", a->dir);
		close(a->cm_efd);
		a->cm_efd = -1;
		return -1;
	}
	pthread_condattr_destroy(&ca);
	a->cm_started = 1;
	return 0;
}

/* The thread writes the mark it owes (unless held or failed) and ends. */
void
audit_committer_stop(struct audit *a)
{
	if (!a->cm_started)
		return;
	pthread_mutex_lock(&a->cm_mu);
	a->cm_stop = 1;
	pthread_cond_broadcast(&a->cm_cv);
	pthread_mutex_unlock(&a->cm_mu);
	pthread_join(a->cm_thread, NULL);
	pthread_cond_destroy(&a->cm_cv);
	pthread_mutex_destroy(&a->cm_mu);
	close(a->cm_efd);
	a->cm_efd = -1;
	a->cm_started = 0;
}

int
audit_commit_mark(struct audit *a, char *err, size_t errlen)
{
	if (a->pg != NULL)
		return 0;
	audit_clearerr(err, errlen);
	if (a->inflight && audit_commit_wait(a, err, errlen) == -1)
		return -1;
	audit_committer_stop(a);
	/* The thread is gone: the mark is this thread's now. */
	if (!a->mk_init || (!a->mk_failed && !mark_owed(a)))
		return 0;
	if (mark_catch_up(a) == -1) {
		mark_error(a, err, errlen);
		return -1;
	}
	return 0;
}

void
audit_commit_hold_mark(struct audit *a, int hold)
{
	if (!a->cm_started) {
		a->cm_hold = hold;
		return;
	}
	pthread_mutex_lock(&a->cm_mu);
	a->cm_hold = hold;
	if (!hold) {
		a->cm_sync = 1;
		pthread_cond_broadcast(&a->cm_cv);
		while (a->cm_sync)
			pthread_cond_wait(&a->cm_cv, &a->cm_mu);
	}
	pthread_mutex_unlock(&a->cm_mu);
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
	pthread_cond_broadcast(&a->cm_cv);
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
	int		rc;

	while (read(a->cm_efd, &n, sizeof(n)) == -1 && errno == EINTR)
		;
	a->inflight = 0;
	rc = commit_finish(a, &a->job, err, errlen);
	/*
	 * Tell the thread whether a batch follows at once (see the top).
	 * If one does, its begin wakes the thread: no wake-up here.
	 */
	pthread_mutex_lock(&a->cm_mu);
	a->cm_done = 0;
	a->cm_next = a->npending > 0;
	if (!a->cm_next)
		pthread_cond_broadcast(&a->cm_cv);
	pthread_mutex_unlock(&a->cm_mu);
	if (rc == -1)
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
