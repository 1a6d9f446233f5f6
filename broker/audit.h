/*
 * audit.h: the audit log as a store: the one interface the broker
 * (broker.c, replay.c) and cpx-audit (audit_main.c) use. Records are
 * cpx.AuditRecord messages.
 *
 * THE CONTRACT. Any store behind this interface (the segment files below
 * today; a replicated PostgreSQL store is next) must keep all of it:
 *
 * Ordering. audit_append assigns sequence numbers in append order: 1 for
 * the first record of an empty log, then 2, 3, ... with no gap and no
 * reuse of a durable number. A time the store assigns (rec->time 0)
 * never goes below an earlier record's, even after a restart with the
 * clock stepped back, so cursors can seek by time.
 *
 * Durability. audit_commit returns 0 only once every record of the
 * pending batch is durable (it survives a crash or power loss), and so
 * is the store's record of how long the log now is (its high-water
 * mark). The broker acknowledges nothing and delivers nothing before
 * that 0, so whatever a node was told is on record, and a record removed
 * later is seen to be missing.
 *
 * Rollback. If audit_commit fails, none of the batch is on record and
 * its sequence numbers are unused: the next append gets the number the
 * batch's first record had. A store that cannot return to its last
 * durable state refuses every later append and commit rather than
 * extend a chain that may hold unacknowledged records.
 *
 * Chain continuity. Each record's chain hash covers the hash before it:
 * hash(n) = SHA-256(hash(n-1) || u64be seq || u32be len || SHA-256(bytes))
 * (chain v2, lib/chain.h), where
 * bytes are the record as serialized and hash(0) is 32 zero bytes. A
 * checkpoint record covers the record just before it (checkpoint_seq ==
 * seq - 1, checkpoint_hash the chain hash after that record) and signs
 * (checkpoint_seq, checkpoint_hash, time) with the broker's key: ECDSA
 * P-256 over SHA-256 (lib/sign.c: sign_bytes), DER, over the 65 bytes
 *     "cpx-checkpoint-v1" (17 bytes, no NUL) | u64be checkpoint_seq |
 *     32 bytes checkpoint_hash | i64be time (the record's own time).
 * So a log can be checked offline, record by record, whatever stored it.
 *
 * Cursors. A cursor sees committed records only, in sequence order,
 * never the pending batch, and checks the chain as it reads. It starts
 * at a sequence, or at the first record of a time, without reading the
 * log from the start. A cursor at the durable end returns 0 and sees
 * later commits when called again.
 *
 * Recovery. Opening the store checks the whole chain, and what else
 * cpx-audit verify checks that is cheap: every checkpoint covers the
 * chain as it is (a record edited and the chain recomputed after it
 * fails at the next checkpoint), checkpoints written since the last one
 * the store trusts (its own, or one checked at an earlier open) are
 * signed with the broker's own key, and the log is at least as long as
 * the high-water mark says, with the mark's chain hash at the mark. It
 * does not check alert signatures (cpx-audit verify --ca does: too
 * costly for every start). A torn tail (the end of a write cut short by
 * a crash: at most one record's bytes, with no later record in them,
 * and above the mark) was never acknowledged and is cut, with a log
 * line. Anything else that does not check (a bad record at or below the
 * mark, a bad record followed by more, a missing or misnumbered part,
 * records missing from the end, a hash that does not chain, a log
 * without a mark) is damage: the store refuses to open and says where,
 * because silently dropping acknowledged records is the one thing an
 * audit log must not do. A log written before the mark existed opens
 * only when the caller says so (AUDIT_OPEN_ACCEPT_NO_MARK), and that is
 * recorded in the log (RECORD_OPERATOR_OVERRIDE). A log of cpx 0.1
 * (chain v1) is named as such and refused. One writer at a time: a
 * second opener is refused.
 *
 * Why no table of function pointers: there is one store today, and an
 * ops struct with one entry is indirection nobody can test. The seam is
 * this header: struct audit and struct audit_cursor are opaque, and no
 * caller knows files, offsets or fsync. A second store adds its own
 * file(s) implementing these functions and, once both must live in one
 * binary, the struct of function pointers behind them; callers do not
 * change. The functions marked "segment-file store only" below are the
 * offline tools of cpx-audit and the fuzzer over the file format.
 *
 * THE SEGMENT-FILE STORE (audit.c and the audit_*.c it names). A
 * directory of segment files "seg-<first seq, 20 digits>.log". Each
 * record is
 *     u32be magic 0x43505852 ("CPXR") | u32be len | len bytes AuditRecord |
 *     32 bytes chain hash
 * with len at most AUDIT_MAX_RECORD. The first segment starts at record
 * 1; each next one at the record after the last of the one before, so a
 * missing segment breaks the numbering. Beside them, the file
 * "high-water-mark" (audit_mark.c) holds two checksummed slots, written
 * alternately: last committed seq, its chain hash, the trusted
 * checkpoint. Commit is write + fsync of the batch (and of the directory
 * for a new segment), then pwrite + fdatasync of the mark's next slot:
 * group commit, done by a committer thread of the store while the
 * caller appends the next batch (audit_commit.c). Rollback puts the mark
 * back, truncates the tail back to its durable size and removes segments
 * the commit created. After a crash the last segment may end in bytes
 * that are not one complete valid record (a write cut short, or a last
 * complete record whose hash does not match) and records written after
 * the mark; audit_open() keeps the valid ones, cuts the bad bytes if
 * they are above the mark, at most one record frame long and hold no
 * later record, and refuses to start otherwise.
 *
 * THE POSTGRESQL STORE (audit_pg.c and the audit_pg_*.c it names;
 * audit_open_pg). A shared store: several brokers, each with its own
 * audit, append to one log in one database; schema in
 * audit_pg_schema_sql(). Where it differs from the words above:
 * - Durability is PostgreSQL's COMMIT (with synchronous_commit = on and
 *   a synchronous standby: on two machines' disks). The table cpx_head
 *   (seq, hash, time of the last record) is the high-water mark; each
 *   commit takes it FOR UPDATE, which serialises every broker's writer,
 *   so seqs, chain and the duplicate check are global.
 * - audit_append gives *seq_out 0 and leaves rec->seq and rec->time as
 *   they were: both are fixed at commit (time: max(now, the head's, the
 *   record before), or the caller's if it set one). audit_checkpoint
 *   queues a checkpoint that is built and signed at commit, when its
 *   checkpoint_seq and hash are known. audit_batch_outcome is the
 *   answer.
 * - Rollback is the transaction's. A commit whose answer was lost is in
 *   doubt (see Failure below): the records may be on record.
 * - Recovery: opening checks every row in one snapshot (seq 1, 2, ...
 *   without gap, prev_hash, hash recomputed over the stored record
 *   bytes, the columns equal to the record's own seq, time and kind,
 *   every checkpoint covering the record before it and signed by the
 *   certificate it carries, whichever broker that was) and that the
 *   head row names the last record; err[] names the seq at fault. There
 *   is no torn tail (a transaction is whole) and no trusted checkpoint
 *   of its own: a checkpoint proves its signer, and cpx-audit verify
 *   holds signers to the CA. The schema is created if missing (and the
 *   role may), a newer schema version is refused, naming both.
 *   AUDIT_OPEN_ACCEPT_NO_MARK does not apply. Many writers: no lock.
 * - The database unreachable: commits fail at once ("storage: database
 *   unreachable (...)") while the store reconnects by itself, without
 *   blocking, from later commits (back-off 100 ms to 2 s).
 *   audit_commit (blocking) tries at once. A commit with no answer in
 *   15 s (a primary waiting for a synchronous standby that is gone)
 *   fails, in doubt, when next stepped.
 * - audit_last_seq/hash: the head as this audit last saw it (at open and
 *   at its own commits); other brokers' commits are learnt through
 *   audit_notify_fd and read with a cursor.
 * - Cursors read pages of 512 records on a connection of their own,
 *   shared by all the audit's cursors (one query at a time, in the
 *   order they asked), checking the chain from the first record they
 *   read. After audit_read_async, a cursor that needs a page asks for
 *   it and returns AUDIT_CURSOR_WAIT; the loop polls audit_read_fd and
 *   calls audit_read_step each turn, and the page is there for a later
 *   call. The connection comes back by itself: a page whose connection
 *   was lost is asked again at once on a new one; if that fails, every
 *   cursor waiting gets -1 and, for 500 ms, so does every new ask
 *   (unless the writer connection is up again). A page with no answer
 *   in 15 s fails (-1) and the connection is dropped.
 *
 * Threads: an audit and its cursors belong to one thread (the segment
 * files' committer thread is the store's own and touches only the batch
 * in flight).
 */
#ifndef CPX_AUDIT_H
#define CPX_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "proto/cpx.pb-c.h"

#define AUDIT_MAGIC		0x43505852u
#define AUDIT_MAX_RECORD	(320u * 1024u)
#define AUDIT_HASH_LEN		32u
#define AUDIT_SEGMENT_BYTES	(64u * 1024u * 1024u)
#define AUDIT_CHECKPOINT_TAG	"cpx-checkpoint-v1"
#define AUDIT_MARK_FILE		"high-water-mark"

/*
 * audit_open_flags: a non-empty log without a high-water mark (written
 * before the mark existed) is taken as whole, and that is recorded in it.
 */
#define AUDIT_OPEN_ACCEPT_NO_MARK	0x1u

struct audit;
struct audit_cursor;

/* --- the store: what the contract above is about --------------------- */

/*
 * Open (creating if needed, mode 0700) the log in dir and recover it:
 * verify the whole chain, the checkpoints and the high-water mark; cut a
 * torn last record above the mark (logged); refuse to open, with err[]
 * naming the segment, offset and sequence or the missing range, if
 * anything else is wrong (see Recovery above). key/cert (the broker's)
 * sign checkpoints, and checkpoints above the mark's trusted one must be
 * signed with that key; they are borrowed and must outlive the audit.
 * Returns an owned audit (audit_close) or NULL with err[].
 */
struct audit *audit_open(const char *dir, EVP_PKEY *key, X509 *cert,
	    char *err, size_t errlen);
/* audit_open with AUDIT_OPEN_* flags (0: audit_open). */
struct audit *audit_open_flags(const char *dir, EVP_PKEY *key, X509 *cert,
	    unsigned flags, char *err, size_t errlen);

/*
 * Open the shared store in the PostgreSQL database dsn (libpq's
 * connection string; the password from PGPASSFILE, ~/.pgpass or a
 * passfile= in it). key == NULL opens it read-only (cursors, verify).
 * Returns an owned audit (audit_close) or NULL with err[], which names
 * the database by audit_pg_describe, never with its password.
 */
struct audit *audit_open_pg(const char *dsn, EVP_PKEY *key, X509 *cert,
	    unsigned flags, char *err, size_t errlen);
/*
 * dsn without its password ("host=... port=... dbname=... user=..."),
 * for a log line (buf says so if dsn does not parse).
 */
void	audit_pg_describe(const char *dsn, char *buf, size_t len);
/* The SQL that creates the schema (version 1): one place for it. */
const char *audit_pg_schema_sql(void);

/*
 * Write a checkpoint if anything was appended since the last one, and
 * commit: what a store does before it closes (the caller may log the
 * last seq after). Returns 0, or -1 with err[].
 */
int	audit_seal(struct audit *a, char *err, size_t errlen)
	    __attribute__((warn_unused_result));

/* audit_seal (unless the store stopped writing), then close. */
void	audit_close(struct audit **a);

/*
 * Segment-file store only: roll over to a new segment once the current
 * one would grow past bytes
 * (default AUDIT_SEGMENT_BYTES; tests use small values). A record is
 * never split: one larger than bytes gets a segment of its own.
 */
void	audit_set_segment_bytes(struct audit *a, uint64_t bytes);

/*
 * Add rec to the pending batch. audit sets rec->seq and rec->time (if 0:
 * never below an earlier record's, even after a restart with the clock
 * stepped back, so the log stays ordered by time for cursors that seek
 * by it); the caller keeps ownership of rec. *seq_out gets the sequence
 * it will have once committed. Returns 0, or -1 (and *seq_out 0, rec unchanged)
 * if the record is too large, memory runs out, or the log stopped writing
 * after a rollback it could not complete.
 */
int	audit_append(struct audit *a, Cpx__AuditRecord *rec,
	    uint64_t *seq_out) __attribute__((warn_unused_result));

/*
 * Make the pending batch durable (write, fsync; new segments: fsync the
 * directory too). Returns 0, or -1 with err[] (disk full, I/O error): the
 * batch is then rolled back and every sequence it had is unused.
 */
int	audit_commit(struct audit *a, char *err, size_t errlen)
	    __attribute__((warn_unused_result));

/*
 * THE COMMIT SEEN FROM AN EVENT LOOP. A store may take time to commit
 * (an fsync; a round trip to a database and its standby), and the
 * broker's loop must not wait for it. So a commit is begun, polled, and
 * its outcome read per record:
 *
 *	audit_commit_begin(a)		the pending batch goes in flight;
 *					later appends form the next batch
 *	audit_commit_fd(a, &events)	poll this fd for events, or -1:
 *					call audit_commit_step at once
 *	audit_commit_step(a)		1 committed, 0 not yet, -1 failed
 *	audit_batch_count(a)		records of the batch just finished
 *	audit_batch_outcome(a, i, ...)	what became of its i-th append
 *
 * At most one batch is in flight. audit_commit() is begin + step until
 * done, for callers that may block (cpx-audit, tests, close).
 *
 * Sequence numbers. In a store written by one broker (the segment
 * files) audit_append's *seq_out is the record's sequence once
 * committed. In a shared store (audit_shared: several brokers append to
 * one log, PostgreSQL) the sequence is fixed only when the commit takes
 * the log's head, so *seq_out is 0 and audit_batch_outcome gives it;
 * records other brokers committed come between, and a cursor reads
 * them. Either way audit_batch_outcome is the one answer for callers
 * that ack or deliver.
 *
 * Duplicates. A shared store checks, under the same serialisation as
 * the seq, that no accepted alert with the same (origin, alert id) is on
 * record already (another broker may have taken it a moment ago): such
 * an append is not written, and its outcome is AUDIT_OUT_DUP_SAME (the
 * same signed bytes, SHA-256 equal: acknowledge again with *seq, the
 * original) or AUDIT_OUT_DUP_DIFFERENT (another alert under that id:
 * refuse). A store written by one broker never reports duplicates: the
 * broker's own table (dedup.c) sees every record first.
 *
 * Failure. When audit_commit_step returns -1 the batch in flight is not
 * acknowledged, and the batch appended since is dropped with it
 * (audit_pending is 0 after): the caller refuses everything it appended
 * since the begin. A shared store may not know whether a COMMIT whose
 * answer was lost took effect (the database died in between): it then
 * reports failure, and the records may be on record after all. Nothing
 * was acknowledged, a node resends with the same alert id, and the
 * duplicate check above answers it with the original seq: exactly once
 * in the log.
 */
enum audit_outcome {
	AUDIT_OUT_COMMITTED = 1,	/* on record as *seq */
	AUDIT_OUT_DUP_SAME,		/* already on record as *seq */
	AUDIT_OUT_DUP_DIFFERENT		/* *seq holds another alert */
};

/*
 * Put the pending batch in flight. Returns 0 (also with nothing
 * pending: audit_commit_step then returns 1 with a batch of 0), or -1
 * with err[] if a batch is in flight already or the store stopped
 * writing (the pending batch is dropped).
 */
int	audit_commit_begin(struct audit *a, char *err, size_t errlen)
	    __attribute__((warn_unused_result));
/* 1 while a batch is in flight (begun, step has not returned 1 or -1). */
int	audit_commit_inflight(const struct audit *a);
/*
 * The fd to poll while a batch is in flight, with *events (POLLIN,
 * POLLOUT) to wait for; -1 if audit_commit_step can be called at once.
 */
int	audit_commit_fd(const struct audit *a, short *events);
/*
 * Advance the commit in flight. Returns 1 (durable: read the outcomes),
 * 0 (not yet: poll again), or -1 with err[] (failed, see Failure).
 */
int	audit_commit_step(struct audit *a, char *err, size_t errlen)
	    __attribute__((warn_unused_result));
/* Appends in the batch that audit_commit_step last finished with 1. */
size_t	audit_batch_count(const struct audit *a);
/*
 * What became of the i-th append (0-based, append order) of that batch:
 * an enum audit_outcome, with *seq and *time (the record's, or for a
 * duplicate the original's seq and 0). 0 if i is out of range.
 */
int	audit_batch_outcome(const struct audit *a, size_t i, uint64_t *seq,
	    int64_t *time);
/* 1 if several brokers append to this log (see Sequence numbers). */
int	audit_shared(const struct audit *a);
/*
 * Shared stores: an fd that is readable when another broker committed
 * (to poll for POLLIN), or -1 (one writer). audit_notify_drain reads
 * what woke it and returns the highest sequence announced (0 if none
 * said); records up to it are then readable by a cursor. The fd may
 * change: ask for it again each loop turn. After a lost connection the
 * store gives a timer's fd meanwhile, readable when it is time to try
 * again, and the drain the loop then calls reconnects (without
 * blocking), so a broker with nothing of its own to commit hears of
 * others again too. After such a reconnect the drain announces the head
 * as it is then, since announcements made meanwhile were lost.
 */
int	audit_notify_fd(const struct audit *a);
uint64_t audit_notify_drain(struct audit *a);

/*
 * Reads without blocking: from now on the cursors of a may answer
 * AUDIT_CURSOR_WAIT instead of waiting for the store (the broker, once
 * its start-up reads are done). Before, and in tools, a cursor waits.
 * The segment files never make a cursor wait (a local read).
 * audit_read_fd: the fd to poll and *events (POLLIN, POLLOUT) while a
 * read is under way, or -1 (none, or a store that reads locally); it
 * may change: ask each loop turn. audit_read_step: take what came,
 * hand pages to the cursors that asked, send the next ask, give up on
 * a connection that does not answer; cheap when there is nothing to
 * do, so the loop may call it every turn (it must, at least every
 * 100 ms while audit_read_fd is not -1: the deadlines are checked
 * there).
 */
void	audit_read_async(struct audit *a);
int	audit_read_fd(const struct audit *a, short *events);
void	audit_read_step(struct audit *a);

/* Number of pending (not yet committed) records. */
size_t	audit_pending(const struct audit *a);

/* Newest durable sequence (0 for an empty log) and its chain hash. */
uint64_t audit_last_seq(const struct audit *a);
void	audit_last_hash(const struct audit *a, uint8_t out[AUDIT_HASH_LEN]);

/*
 * Append a signed checkpoint record over (last seq, chain hash, time)
 * to the pending batch. The caller commits. Returns 0, or -1 (no key,
 * a key that is not P-256 or not the certificate's, or the append
 * failed; logged).
 */
int	audit_checkpoint(struct audit *a) __attribute__((warn_unused_result));

/*
 * Read durable records in order, starting at the first record with
 * seq >= from_seq (or, if from_time > 0, with time >= from_time,
 * whichever is later; record times never go backwards, but in a log
 * where they once did, "first" is in log order). Returns an owned
 * cursor (audit_cursor_free) or NULL with err[].
 */
struct audit_cursor *audit_cursor_new(struct audit *a, uint64_t from_seq,
	    int64_t from_time, char *err, size_t errlen);
/*
 * Next durable record: 1 with *rec (owned by the caller, free with
 * cpx__audit_record__free_unpacked), 0 at the durable end (more may come
 * later: call again), -1 on a read error with err[], AUDIT_CURSOR_WAIT
 * (only after audit_read_async) while the store fetches the next page:
 * call again once the loop has stepped the reads (audit_read_step).
 */
#define AUDIT_CURSOR_WAIT	2
int	audit_cursor_next(struct audit_cursor *c, Cpx__AuditRecord **rec,
	    char *err, size_t errlen) __attribute__((warn_unused_result));
/*
 * audit_cursor_next, and the record's inputs to the chain (lib/chain.h):
 * *len, its size, and leaf, SHA-256 of its bytes, which say nothing of
 * its content: what a witness is shown (broker/witness.c).
 */
int	audit_cursor_next_leaf(struct audit_cursor *c, Cpx__AuditRecord **rec,
	    uint32_t *len, uint8_t leaf[AUDIT_HASH_LEN], char *err,
	    size_t errlen) __attribute__((warn_unused_result));
/*
 * Records c has read and checked so far, returned or skipped: the work
 * it cost. A cursor opened on an audit seeks through an in-memory index
 * (each segment's first record and every 128th after it, with the
 * highest time up to there), so the records it reads before the first
 * one returned are fewer than 128, however long the log.
 */
uint64_t audit_cursor_reads(const struct audit_cursor *c);
/* Every cursor of an audit is freed before audit_close (it asks its store). */
void	audit_cursor_free(struct audit_cursor **c);

/* --- segment-file store only: offline tools (cpx-audit, fuzzer) ---- */

/*
 * A cursor over a log directory that no audit of this process has open
 * (cpx-audit dump, possibly while the broker runs): it never writes,
 * checks the chain from record 1 whatever from_seq is, and ends (0) at
 * the end of the last segment or at an incomplete last record. Returns
 * an owned cursor (audit_cursor_free) or NULL with err[].
 */
struct audit_cursor *audit_cursor_open_dir(const char *dir,
	    uint64_t from_seq, int64_t from_time, char *err, size_t errlen);

/*
 * Offline check of a log directory (cpx-audit verify): the chain, its
 * length against the high-water mark (a missing mark on a non-empty log
 * fails), every accepted alert's signature against the CA in
 * trust_ca/trust_crl, and every checkpoint signature. Returns 0 if all
 * is sound, or -1 with err[] naming the first bad record. *nrecords gets
 * the count checked.
 */
struct trust;
int	audit_verify_dir(const char *dir, struct trust *t, uint64_t *nrecords,
	    char *err, size_t errlen) __attribute__((warn_unused_result));

/* What audit_verify_dir_stats() found. */
#define AUDIT_VERIFY_SIGNERS	32
struct audit_verify_stats {
	uint64_t	segments;
	uint64_t	records;
	uint64_t	alerts;			/* RECORD_ALERT_ACCEPTED */
	uint64_t	alerts_unchecked;	/* t was NULL: not verified */
	uint64_t	checkpoints;
	uint64_t	last_seq;
	uint8_t		last_hash[AUDIT_HASH_LEN];
	uint64_t	torn_bytes;	/* torn tail the broker will cut */
	char		checkpoint_cert[65];	/* SHA-256 hex of the last
						 * checkpoint's cert, or "" */
	uint64_t	signer_changes;	/* checkpoint signer changed */
	/* Checkpoints per signer, in order of first appearance (the
	 * first AUDIT_VERIFY_SIGNERS; more are counted in other_signed). */
	struct audit_verify_signer {
		uint8_t		fpr[32];	/* SHA-256 of the cert */
		char		name[65];	/* its CN, printable */
		uint64_t	checkpoints;
		uint64_t	first_seq;	/* its first checkpoint */
	}		signers[AUDIT_VERIFY_SIGNERS];
	size_t		nsigners;
	uint64_t	other_signed;
	int		mark_found;	/* the high-water mark (a store's
					 * head: audit_verify_store) ... */
	uint64_t	mark_seq;	/* ... its last committed seq */
	uint8_t		mark_hash[AUDIT_HASH_LEN];
	uint64_t	mark_trusted;	/* its trusted checkpoint */
};

/*
 * Who may sign checkpoints. With a trust, a signer must always be a
 * broker certificate of the CA (serverAuth). Pins narrow that further:
 * the signer must be one of broker_certs, or (with a trust) a broker
 * certificate whose subjectAltName carries broker_name or one of
 * broker_names. With a trust and no pin, a log of one broker
 * (multi_broker 0) takes its first signer as the broker and any change
 * of signer fails: a node key that re-signs a rewritten log is refused.
 * A log several brokers share (multi_broker 1: a PostgreSQL store, or a
 * directory exported from one, as the operator says; the log cannot
 * say it of itself) admits every broker certificate of the CA, each
 * held to the pins if there are any.
 */
struct audit_verify_opts {
	X509		**broker_certs;		/* pinned, or NULL */
	size_t		  nbroker_certs;
	const char	 *broker_name;		/* or NULL */
	const char *const *broker_names;	/* more names, or NULL */
	size_t		  nbroker_names;
	int		  multi_broker;
	/*
	 * Called at each checkpoint whose signer differs from the previous
	 * checkpoint's (SHA-256 of the certificates, hex), before it is
	 * judged; desc names the new signer. With multi_broker, only when
	 * a signer signs its first checkpoint (brokers take turns there).
	 * May be NULL.
	 */
	void		(*on_signer_change)(void *arg, uint64_t seq,
			    const char *from, const char *to,
			    const char *desc);
	void		 *arg;
	/* Witness cosignatures to collect (audit_cosign.h), or NULL. */
	struct audit_cosign *cosign;
};

/*
 * audit_verify_dir_stats() with checkpoint signers held to o (NULL: no
 * pin, no report). Returns 0, or -1 with err[] naming the first bad
 * record.
 */
int	audit_verify_dir_opts(const char *dir, struct trust *t,
	    const struct audit_verify_opts *o, struct audit_verify_stats *st,
	    char *err, size_t errlen) __attribute__((warn_unused_result));

/*
 * The same checks over any store through a cursor (a PostgreSQL store
 * opened read-only; tests: a segment-file store): every record from 1
 * through the head the store had when this began (audit_last_seq and
 * audit_last_hash stand for the high-water mark: st->mark_*), each
 * judged by the one per-record check audit_verify_dir_opts uses.
 * Records other brokers commit meanwhile are left for the next run.
 * Returns 0, or -1 with err[] naming the first bad record.
 */
int	audit_verify_store(struct audit *a, struct trust *t,
	    const struct audit_verify_opts *o, struct audit_verify_stats *st,
	    char *err, size_t errlen) __attribute__((warn_unused_result));

/*
 * audit_verify_dir() with the details for a summary. t may be NULL: the
 * chain and the checkpoint signatures (against their own certificate)
 * are then checked, alert signatures and certificates are not. A torn
 * tail above the mark is not a failure (it was never acknowledged) but
 * is counted; a bad record at or below the mark is damage.
 * On failure *st holds what was checked before the bad record.
 */
int	audit_verify_dir_stats(const char *dir, struct trust *t,
	    struct audit_verify_stats *st, char *err, size_t errlen)
	    __attribute__((warn_unused_result));

/*
 * Check the records of one segment image held in memory (the same parser
 * reads the files; the fuzzer feeds it): first_seq is the sequence its
 * name gives, prev the chain hash before it (NULL: 32 zero bytes), and
 * it is taken as the last segment. Returns 0 if buf is whole valid
 * records, 1 if it ends in a torn tail (*good_len: where to cut), or -1
 * with err[] if it is damaged. *nrecords gets the valid records read.
 */
int	audit_scan_buffer(const uint8_t *buf, size_t len, uint64_t first_seq,
	    const uint8_t *prev, uint64_t *nrecords, size_t *good_len,
	    char *err, size_t errlen) __attribute__((warn_unused_result));

#endif
