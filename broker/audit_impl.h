/*
 * audit_impl.h: internals of the segment-file store, shared by its files
 * (audit.c, audit_frame.c, audit_segment.c, audit_writer.c,
 * audit_checkpoint.c, audit_mark.c, audit_index.c, audit_cursor.c) and
 * the offline
 * verifier (audit_verify.c): the store and cursor structs, the buffered
 * segment reader and the one record parser. Not for other modules: they
 * use audit.h, and nothing here is part of the store contract.
 */
#ifndef CPX_AUDIT_IMPL_H
#define CPX_AUDIT_IMPL_H

#include <stddef.h>
#include <stdint.h>
#include <pthread.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "audit.h"

#define FRAME_HDR	8u			/* magic, len */
#define FRAME_OVERHEAD	(FRAME_HDR + AUDIT_HASH_LEN)
#define FRAME_MAX	(AUDIT_MAX_RECORD + FRAME_OVERHEAD)
#define READ_BUF	(1024u * 1024u)		/* recovery, verify */
#define SEG_NAME_LEN	32		/* "seg-" 20 digits ".log" */

/* Buffered reader over a file (fd) or the caller's memory (fd -1). */
struct audit_rd {
	int		 fd;
	const uint8_t	*p;		/* buf, or the caller's bytes */
	uint8_t		*buf;
	size_t		 cap;
	size_t		 pos, end;	/* unread bytes: p[pos..end) */
	uint64_t	 off;		/* file offset of p[pos] */
	uint64_t	 limit;		/* bytes of the file to read */
};

/* One segment being scanned, and the chain state carried across them. */
struct audit_scan {
	const char	*name;		/* segment file, for messages */
	int		 last;		/* the last: may end torn */
	uint64_t	 next_seq;
	uint8_t		 hash[AUDIT_HASH_LEN];
	int64_t		 last_time;
	uint64_t	 good_off;	/* end of the last valid record */
	uint64_t	 torn;		/* torn bytes after good_off */
	uint64_t	 nrecords;
	/* Records up to here were committed (the high-water mark): a
	 * bad one among them is damage, never a torn tail. */
	uint64_t	 committed;
	/* The chain hash after record watch_seq, once watch_seen. */
	uint64_t	 watch_seq;
	uint8_t		 watch_hash[AUDIT_HASH_LEN];
	int		 watch_seen;
	/* Called on each valid record with the chain hash before it;
	 * returns 0, or -1 with why[] to fail the scan there. */
	int		(*fn)(void *, const Cpx__AuditRecord *,
			    const uint8_t *, char *, size_t);
	void		*arg;
};

/*
 * The in-memory index of the log (audit_index.c), so a cursor seeks by
 * sequence or time instead of reading from the start. A point is a
 * record a cursor can start reading at without reading what comes
 * before it: each segment's first record and every AUDIT_INDEX_EVERY-th
 * after it. maxtime is the highest time of any record before the next
 * point, this one's and all earlier ones: a running maximum, so a binary
 * search finds the first point from which a time can be reached even in
 * an old log whose times once went backwards.
 */
#define AUDIT_INDEX_EVERY	128u

struct audit_ixpt {
	uint64_t	seq;
	uint64_t	seg;		/* first seq of its segment */
	uint64_t	off;		/* file offset of record seq */
	int64_t		maxtime;
	uint8_t		prev[AUDIT_HASH_LEN]; /* chain before seq */
};

struct audit_index {
	struct audit_ixpt *v;		/* durable records, ascending */
	size_t		 n, cap;
	struct audit_ixpt *pv;		/* the pending batch's points */
	size_t		 pn, pcap;
	int64_t		 ptailmax;	/* batch, before a point */
};

/*
 * Index durable record seq (file offset off in segment seg, chain hash
 * prev before it), in log order: recovery. Returns 0 or -1 (memory).
 */
int	audit_index_note(struct audit_index *x, uint64_t seg, uint64_t seq,
	    uint64_t off, int64_t time, const uint8_t prev[AUDIT_HASH_LEN])
	    __attribute__((warn_unused_result));
/* Room for one more pending point, before anything of the append. */
int	audit_index_reserve_pending(struct audit_index *x)
	    __attribute__((warn_unused_result));
/* The same as audit_index_note for a record of the pending batch. */
void	audit_index_pending(struct audit_index *x, uint64_t seg,
	    uint64_t seq, uint64_t off, int64_t time,
	    const uint8_t prev[AUDIT_HASH_LEN]);
/* Room for the batch's points, before the commit writes anything. */
int	audit_index_reserve_commit(struct audit_index *x)
	    __attribute__((warn_unused_result));
/* The batch is durable: its points join the index. Cannot fail. */
void	audit_index_commit(struct audit_index *x);
/* Pending points so far, and commit only the first n of them (the
 * batch in flight; the rest belong to the batch after it). */
size_t	audit_index_npending(const struct audit_index *x);
void	audit_index_commit_first(struct audit_index *x, size_t n);
/* The batch is gone (committed or rolled back). */
void	audit_index_drop_pending(struct audit_index *x);
/*
 * Where a cursor for (from_seq, from_time) starts: the last point at or
 * before from_seq, or later, if from_time > 0, the first point from
 * which from_time is reached (the last point if none is yet). NULL if
 * the index is empty. Borrowed: valid until the next change.
 */
const struct audit_ixpt *audit_index_seek(const struct audit_index *x,
	    uint64_t from_seq, int64_t from_time);
/* The highest record time indexed (0 if none). */
int64_t	audit_index_maxtime(const struct audit_index *x);
void	audit_index_free(struct audit_index *x);

/*
 * The high-water mark (audit_mark.c): what the last commit made durable,
 * and the last checkpoint the store trusts without checking its
 * signature again (one it wrote itself or checked at an earlier open).
 */
struct audit_mark {
	uint64_t	gen;		/* newest slot wins */
	uint64_t	last_seq;
	uint8_t		last_hash[AUDIT_HASH_LEN];
	uint64_t	trusted_seq;	/* a checkpoint record, 0: none */
	uint8_t		trusted_hash[AUDIT_HASH_LEN];	/* it signs */
};

/* A durable segment: its first record and the chain hash before it. */
struct seg {
	uint64_t	first;
	uint8_t		prev[AUDIT_HASH_LEN];
};

/* A run of the pending batch that goes into one segment file. */
struct part {
	uint64_t	first;		/* the segment's first sequence */
	size_t		off;		/* start in the batch */
	int		isnew;		/* segment file to create */
	int		created;	/* by this commit: undo on failure */
	uint8_t		prev[AUDIT_HASH_LEN];	/* chain before */
};

/*
 * One commit on its way to disk (audit_commit.c): the batch taken out of
 * the store, what the disk holds now, and what the write did.
 */
struct audit_job {
	uint8_t		*batch;		/* the batch's frames */
	size_t		 len, cap;
	struct part	*parts;		/* one per segment file */
	size_t		 nparts, partcap;
	size_t		 nrec;		/* records */
	int64_t		*times;		/* each one's time */
	size_t		 times_cap;
	uint64_t	 first_seq, last_seq;
	uint8_t		 last_hash[AUDIT_HASH_LEN];
	int64_t		 last_time;
	uint64_t	 trusted_seq;	/* the mark's trusted point after */
	uint8_t		 trusted_hash[AUDIT_HASH_LEN];
	size_t		 npoints;	/* index points of the batch */
	int		 fd;		/* durable tail before: fd, */
	uint64_t	 off;		/* size, */
	uint64_t	 first;		/* first seq */
	struct audit_mark mark;		/* the mark before */
	/* What the write did. */
	int		 rc;		/* 0, or -1 with err */
	int		 broken;	/* rollback failed */
	int		 mark_back;	/* mark_out holds the mark put back */
	char		 err[512];
	int		 fd_out;	/* tail after */
	uint64_t	 first_out, off_out;
	struct audit_mark mark_out;	/* the mark written */
};

struct audit_pg;
struct audit_pg_cursor;

/* The open store (audit.c); one thread, and its committer thread. */
struct audit {
	struct audit_pg	*pg;		/* the PostgreSQL store (audit_pg.c),
					 * or NULL: every public function
					 * hands over to it first */
	char		*dir;
	int		 dirfd;
	EVP_PKEY	*key;		/* borrowed */
	X509		*cert;		/* borrowed */
	uint8_t		*cert_der;
	size_t		 cert_len;
	EVP_MD		*sha256;
	EVP_MD_CTX	*md;
	uint64_t	 seg_bytes;
	int		 broken;	/* rollback failed: no more writes */
	unsigned	 flags;		/* AUDIT_OPEN_* */
	int		 mark_fd;	/* high-water mark, -1: none */
	struct audit_mark mark;		/* as on disk */
	int		 mark_found;	/* there was one at open */
	uint64_t	 last_ckpt;	/* last checkpoint checked at open */
	uint8_t		 last_ckpt_hash[AUDIT_HASH_LEN]; /* it signs */
	uint64_t	 ckpt_checked;	/* signatures checked at open */
	EVP_PKEY	*own_pub;	/* cert's key, for those checks */

	struct seg	*segs;		/* durable segments, in order */
	size_t		 nsegs, segcap;
	struct audit_index ix;		/* for cursors to seek by */

	/* Durable state. */
	int		 fd;		/* tail segment, -1 if none */
	uint64_t	 tail_first;
	uint64_t	 durable_size;	/* of the tail segment */
	uint64_t	 durable_seq;
	uint8_t		 durable_hash[AUDIT_HASH_LEN];
	int64_t		 durable_time;

	/* Pending batch. */
	uint8_t		*batch;
	size_t		 batch_len, batch_cap;
	struct part	*parts;
	size_t		 nparts, partcap;
	size_t		 npending;
	uint64_t	 pend_seq;
	uint8_t		 pend_hash[AUDIT_HASH_LEN];
	int64_t		 pend_time;
	uint64_t	 tail_bytes;	/* last segment incl. pending */
	uint64_t	 since_checkpoint;
	uint64_t	 pend_trusted;	/* mark's trusted point after */
	uint8_t		 pend_trusted_hash[AUDIT_HASH_LEN];
	int64_t		*pend_times;	/* each pending record's time */
	size_t		 pend_times_cap;

	uint64_t	 pend_tail_first; /* tail segment after the batch
					 * (0: none yet) */

	/* The commit as the loop sees it (audit_commit.c). */
	struct audit_job job;		/* in flight, then its outcome */
	int		 inflight;	/* begun, not yet stepped */
	int		 cm_inline;	/* nothing to write: no thread */
	size_t		 done_n;	/* records of the finished batch */
	/* The committer thread: job while cm_work, then cm_done. */
	int		 cm_started;
	pthread_t	 cm_thread;
	pthread_mutex_t	 cm_mu;
	pthread_cond_t	 cm_cv;
	int		 cm_work, cm_done, cm_stop;
	int		 cm_efd;	/* eventfd: the thread is done */
};

/* audit_commit.c: block until the commit in flight ends (1 or -1). */
int	audit_commit_wait(struct audit *a, char *err, size_t errlen)
	    __attribute__((warn_unused_result));
/* Stop and join the committer thread (none in flight). */
void	audit_committer_stop(struct audit *a);
void	audit_job_free(struct audit_job *j);
/* Room for n times in *v (audit_batch.c). Returns 0 or -1 (memory). */
int	audit_times_reserve(int64_t **v, size_t *cap, size_t n)
	    __attribute__((warn_unused_result));

/* What audit_frame_check found at a read position. */
enum frame {
	FRAME_OK = 0,
	FRAME_SHORT,		/* fewer bytes than the record needs */
	FRAME_MAGIC,
	FRAME_LEN,
	FRAME_HASH,
	FRAME_DECODE,
	FRAME_SEQ,
	FRAME_NOMEM
};

/* A reader of durable records (audit_cursor.c). */
struct audit_cursor {
	struct audit_pg_cursor *pg;	/* on a PostgreSQL store, or NULL */
	struct audit	*a;		/* NULL: a dir cursor */
	int		 dirfd;		/* own, dir cursors only */
	struct audit_rd	 rd;
	EVP_MD		*sha256;
	EVP_MD_CTX	*md;
	uint64_t	 seg;		/* first seq of the open segment */
	uint64_t	 next_seq;	/* record at the read position */
	uint8_t		 hash[AUDIT_HASH_LEN];	/* chain before */
	uint64_t	 from_seq;
	int64_t		 from_time;
	int		 started;	/* from_time reached */
	uint64_t	 seek_seg;	/* index point to open first, 0: none */
	uint64_t	 seek_off;
	uint64_t	 reads;		/* records checked */
};

/* --- audit_frame.c: record format and the parser ------------------- */

/* "seg-<first, 20 digits>.log" */
void	audit_seg_name(char name[SEG_NAME_LEN], uint64_t first);
/* hash(n) = SHA-256(hash(n-1) || u64be seq || u32be len || SHA-256(bytes)). */
int	audit_chain_hash(EVP_MD_CTX *md, const uint8_t prev[AUDIT_HASH_LEN],
	    uint64_t seq, const uint8_t *bytes, uint32_t len,
	    uint8_t out[AUDIT_HASH_LEN]) __attribute__((warn_unused_result));
void	audit_put_be32(uint8_t *p, uint32_t v);
void	audit_put_be64(uint8_t *p, uint64_t v);
uint64_t audit_get_be64(const uint8_t *p);
/* A SHA-256 context for the chain; *mdp is the fetched digest (free both). */
EVP_MD_CTX *audit_sha256_ctx(EVP_MD **mdp);
/* A file reader with a cap-byte buffer (owned by r: free(r->buf)). */
int	audit_rd_init(struct audit_rd *r, int fd, size_t cap, uint64_t limit)
	    __attribute__((warn_unused_result));
void	audit_rd_reset(struct audit_rd *r, int fd, uint64_t off);
/*
 * Make at least want bytes readable at p[pos] if the file has them (want
 * <= cap): one pread of as much as fits. *avail gets what is readable.
 * Returns 0, or -1 on a read error (errno).
 */
int	audit_rd_fill(struct audit_rd *r, size_t want, size_t *avail)
	    __attribute__((warn_unused_result));
/* Move past n bytes that are readable. */
void	audit_rd_skip(struct audit_rd *r, size_t n);
/* Bytes needed for the record at p: its frame, or the header if unknown. */
size_t	audit_frame_want(const uint8_t *p, size_t avail);
/*
 * Check the record frame at p (avail bytes readable) numbered seq, chained
 * from prev (NULL: hash not checked). On FRAME_OK, *flen is the frame
 * size, hash the new chain hash and *recp (if not NULL) the record, owned
 * by the caller.
 */
enum frame audit_frame_check(EVP_MD_CTX *md, const uint8_t *p, size_t avail,
	    uint64_t seq, const uint8_t *prev, uint8_t hash[AUDIT_HASH_LEN],
	    size_t *flen, Cpx__AuditRecord **recp);
/* Why audit_frame_check returned st, in words, into why[]. */
void	audit_frame_why(enum frame st, const uint8_t *p, size_t avail,
	    uint64_t seq, char *why, size_t whylen);
/*
 * Read and check every record of one segment from r, continuing the chain
 * in s. Returns 0 when the segment is whole (s->torn == 0) or ends in a
 * torn tail that may be cut (s->torn bytes after s->good_off), -1 if it
 * is damaged, or -2 on a read error, with err[] naming the segment,
 * offset and record (no "audit: " prefix: callers add their context).
 */
int	audit_scan_segment(struct audit_rd *r, struct audit_scan *s,
	    EVP_MD_CTX *md, char *err, size_t errlen)
	    __attribute__((warn_unused_result));
/* --- audit_segment.c: segment files and recovery --------------------- */

/* The segments of dirfd, ascending, in *out (owned by the caller). */
int	audit_list_segments(int dirfd, const char *dir, uint64_t **out,
	    size_t *n, char *err, size_t errlen)
	    __attribute__((warn_unused_result));
/* Room for n more segments in a->segs, so adding them cannot fail. */
int	audit_segs_reserve(struct audit *a, size_t n)
	    __attribute__((warn_unused_result));
/* Record a durable segment (first record, chain hash before it). */
int	audit_segs_add(struct audit *a, uint64_t first,
	    const uint8_t prev[AUDIT_HASH_LEN])
	    __attribute__((warn_unused_result));
/*
 * Read the whole log of a (dirfd open and locked): check it, cut a torn
 * tail, index it, set the durable state. Returns 0, or -1 with err[].
 */
int	audit_recover(struct audit *a, char *err, size_t errlen)
	    __attribute__((warn_unused_result));

/* --- audit_mark.c: the high-water mark -------------------------------- */

/*
 * Read the mark of dirfd: *found 0 (no file: *m zeroed) or 1 and *m the
 * newest whole slot. Returns 0, or -1 with err[] (no "audit: " prefix)
 * if the file cannot be read or neither slot is whole.
 */
int	audit_mark_read(int dirfd, const char *dir, struct audit_mark *m,
	    int *found, char *err, size_t errlen)
	    __attribute__((warn_unused_result));
/*
 * Create the mark file holding *m (m->gen moves on): temp file, fsync,
 * rename, fsync dirfd. *fdp gets it open read-write. 0 or -1 with err[].
 */
int	audit_mark_create(int dirfd, const char *dir, struct audit_mark *m,
	    int *fdp, char *err, size_t errlen)
	    __attribute__((warn_unused_result));
/* Open the existing mark file read-write. 0 or -1 with err[]. */
int	audit_mark_open(int dirfd, const char *dir, int *fdp, char *err,
	    size_t errlen) __attribute__((warn_unused_result));
/*
 * Write *m as the next generation (m->gen moves on) into the slot the
 * current one is not in, and fdatasync. 0, or -1 with errno.
 */
int	audit_mark_write(int fd, struct audit_mark *m)
	    __attribute__((warn_unused_result));

/* --- audit_writer.c: batch, commit, rollback --------------------------- */

/* Now, but never below an earlier record's time. */
int64_t	audit_next_time(const struct audit *a);
/*
 * pwrite all of buf at off, through partial writes and EINTR (a write
 * of 0 bytes is EIO). Returns 0, or -1 with errno.
 */
int	audit_pwrite_all(int fd, const uint8_t *buf, size_t len, uint64_t off)
	    __attribute__((warn_unused_result));
/* Forget the pending batch: the state is the durable one again. */
void	audit_reset_pending(struct audit *a);

/* --- audit_checkpoint.c ------------------------------------------------ */

/*
 * Decode the certificate of checkpoint rec (bounded by CPX_MAX_CERT) and
 * check its signature over the chain hash prev: what stops a log
 * re-chained without the key. Returns 0 with *xp the certificate (owned
 * by the caller), or -1 with *xp NULL and why[] (no "audit: " prefix).
 */
int	audit_checkpoint_verify(const Cpx__AuditRecord *rec,
	    const uint8_t *prev, X509 **xp, char *why, size_t whylen)
	    __attribute__((warn_unused_result));
/*
 * The CN of a broker's certificate into out[len]: what the records of a
 * shared log name in their field broker. 0, or -1 if there is none, it
 * does not fit, or it holds a NUL (one name would pass for another).
 */
int	audit_cert_cn(X509 *cert, char *out, size_t len)
	    __attribute__((warn_unused_result));
/*
 * Make rec (seq left to the caller) a checkpoint over the chain up to
 * seq ckpt_seq, whose hash is hash[AUDIT_HASH_LEN], written at time t:
 * signed with key (cert) and carrying cert_der. rec points into hash and
 * cert_der and owns *sigp, which the caller frees after rec's last use.
 * Both stores build theirs with it (audit_pg_batch.c too). Returns 0, or
 * -1 if signing failed (the caller logs it, naming its log).
 */
int	audit_checkpoint_fill(Cpx__AuditRecord *rec, uint64_t ckpt_seq,
	    uint8_t *hash, int64_t t, EVP_PKEY *key, X509 *cert,
	    uint8_t *cert_der, size_t cert_len, uint8_t **sigp)
	    __attribute__((warn_unused_result));

/* snprintf into err (if any), for every error path of the audit code. */
void	audit_seterr(char *err, size_t errlen, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));
/* err[] = "" (if any): no error yet. */
void	audit_clearerr(char *err, size_t errlen);

#endif
