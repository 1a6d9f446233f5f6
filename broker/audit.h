/*
 * audit.h: the durable, hash-chained, append-only audit log.
 *
 * Records (cpx.AuditRecord) are appended to a pending batch, then made
 * durable together by audit_commit() (write + fsync: group commit). The
 * broker acknowledges nothing and delivers nothing before audit_commit()
 * returned 0 for it. On a write or fsync failure the batch is rolled back
 * (file truncated to the last durable size, sequence numbers reused), so
 * the chain on disk stays intact and nothing unacknowledged lingers.
 *
 * On disk: a directory of segment files "seg-<first seq, 20 digits>.log".
 * Each record is
 *     u32be magic 0x43505852 ("CPXR") | u32be len | len bytes AuditRecord |
 *     32 bytes chain hash
 * where hash(n) = SHA-256(hash(n-1) || u64be seq || u32be len || bytes),
 * and hash(0) is 32 zero bytes. len is at most AUDIT_MAX_RECORD. The
 * first segment starts at record 1; each next one at the record after the
 * last of the one before, so a missing segment breaks the numbering.
 *
 * A checkpoint record (RECORD_CHECKPOINT) always covers the record just
 * before it: checkpoint_seq == seq - 1 and checkpoint_hash is the chain
 * hash after that record. checkpoint_signature is ECDSA P-256 with
 * SHA-256 (DER) by the key of checkpoint_cert over the 65 bytes
 *     "cpx-checkpoint-v1" (17 bytes, no NUL) | u64be checkpoint_seq |
 *     32 bytes checkpoint_hash | i64be time (the record's own time).
 *
 * Torn tail: after a crash the last segment may end in bytes that are
 * not one complete valid record (a write cut short, or a last complete
 * record whose hash does not match). audit_open() cuts them if they are
 * at most one record frame long and hold no later record; anything else
 * is damage and audit_open() refuses to start.
 *
 * Threads: an audit and its cursors belong to one thread.
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

struct audit;
struct audit_cursor;

/*
 * Open (creating if needed, mode 0700) the log in dir and recover it:
 * verify the whole chain; cut a torn last record (logged); refuse to open,
 * with err[] naming the segment, offset and sequence, if a damaged record
 * is followed by anything. key/cert (the broker's) sign checkpoints; they
 * are borrowed and must outlive the audit. Returns an owned audit
 * (audit_close) or NULL with err[].
 */
struct audit *audit_open(const char *dir, EVP_PKEY *key, X509 *cert,
	    char *err, size_t errlen);

/* Write a checkpoint if anything was appended, commit, close. */
void	audit_close(struct audit **a);

/*
 * Roll over to a new segment once the current one would grow past bytes
 * (default AUDIT_SEGMENT_BYTES; tests use small values). A record is
 * never split: one larger than bytes gets a segment of its own.
 */
void	audit_set_segment_bytes(struct audit *a, uint64_t bytes);

/*
 * Add rec to the pending batch. audit sets rec->seq and rec->time (if 0:
 * never below an earlier record's, even after a restart with the clock
 * stepped back, so the log stays ordered by time for cursors that seek
 * by it); the caller keeps ownership of rec. *seq_out gets the sequence it will
 * have once committed. Returns 0, or -1 (and *seq_out 0, rec unchanged)
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

/* Number of pending (not yet committed) records. */
size_t	audit_pending(const struct audit *a);

/* Newest durable sequence (0 for an empty log) and its chain hash. */
uint64_t audit_last_seq(const struct audit *a);
void	audit_last_hash(const struct audit *a, uint8_t out[AUDIT_HASH_LEN]);

/*
 * Append a signed checkpoint record over (last seq, chain hash, time)
 * to the pending batch. The caller commits. Returns 0 or -1.
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
 * later: call again), -1 on a read error with err[].
 */
int	audit_cursor_next(struct audit_cursor *c, Cpx__AuditRecord **rec,
	    char *err, size_t errlen) __attribute__((warn_unused_result));
/*
 * Records c has read and checked so far, returned or skipped: the work
 * it cost. A cursor opened on an audit seeks through an in-memory index
 * (each segment's first record and every 128th after it, with the
 * highest time up to there), so the records it reads before the first
 * one returned are fewer than 128, however long the log.
 */
uint64_t audit_cursor_reads(const struct audit_cursor *c);
void	audit_cursor_free(struct audit_cursor **c);

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
 * Offline check of a log directory (cpx-audit verify): the chain, every
 * accepted alert's signature against the CA in trust_ca/trust_crl, and every
 * checkpoint signature. Returns 0 if all is sound, or -1 with err[] naming
 * the first bad record. *nrecords gets the count checked.
 */
struct trust;
int	audit_verify_dir(const char *dir, struct trust *t, uint64_t *nrecords,
	    char *err, size_t errlen) __attribute__((warn_unused_result));

/* What audit_verify_dir_stats() found. */
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
};

/*
 * Who may sign checkpoints. With a trust, a signer must always be a
 * broker certificate of the CA (serverAuth). Pins narrow that further:
 * the signer must be one of broker_certs, or (with a trust) a broker
 * certificate whose subjectAltName carries broker_name. With a trust and
 * no pin, the first signer is taken as the broker and any change of
 * signer fails: a node key that re-signs a rewritten log is refused.
 */
struct audit_verify_opts {
	X509		**broker_certs;		/* pinned, or NULL */
	size_t		  nbroker_certs;
	const char	 *broker_name;		/* or NULL */
	/*
	 * Called at each checkpoint whose signer differs from the previous
	 * checkpoint's (SHA-256 of the certificates, hex), before it is
	 * judged; desc names the new signer. May be NULL.
	 */
	void		(*on_signer_change)(void *arg, uint64_t seq,
			    const char *from, const char *to,
			    const char *desc);
	void		 *arg;
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
 * audit_verify_dir() with the details for a summary. t may be NULL: the
 * chain and the checkpoint signatures (against their own certificate)
 * are then checked, alert signatures and certificates are not. A torn
 * tail is not a failure (it was never acknowledged) but is counted.
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
