/*
 * witness_impl.h: the inside of the broker's witnessing, shared by
 * witness.c (the module state, requests as they arrive, the commit hook
 * and the pump) and witness_read.c (the answers that read the log).
 * Nothing else includes it: the rest of the broker sees witness.h only.
 */
#ifndef CPX_WITNESS_IMPL_H
#define CPX_WITNESS_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "chain.h"
#include "cosign.h"
#include "cpx_limits.h"
#include "proto/cpx.pb-c.h"

struct audit_cursor;
struct broker;
struct peer;
struct session;

/*
 * Cosignatures appended and not yet read back and remembered. More than
 * this many at once (a store that does not answer) drops the oldest: the
 * log keeps them all, and a witness's next cosignature brings its slot
 * up to date.
 */
#define WITNESS_NOTES		64

/*
 * A cosignature to remember: appended as append idx of batch gen, then
 * committed as record seq (or not: dropped). The module's, not the
 * witness's session's: it is served to others even if that has closed.
 */
enum note_state {
	NOTE_COMMITTING = 1,	/* its batch's commit has not ended */
	NOTE_COMMITTED,		/* on record as seq: to read */
	NOTE_DROPPED		/* not on record: nothing to read */
};

struct witness_note {
	enum note_state	 state;
	uint64_t	 gen;
	size_t		 idx;
	uint64_t	 seq;
};

struct cosig_slot {
	char		 country[3];
	char		 node[CPX_MAX_NODE_NAME + 1];
	uint64_t	 seq;
	uint8_t		*rec;		/* packed COSIGNATURE record */
	size_t		 len;
};

struct witness {
	uint64_t		 ckpt;	/* newest CHECKPOINT record, 0: none */
	struct cosig_slot	 peers[COSIGN_MAX_PEERS];
	size_t			 npeers;
	/* Cosignatures to remember (a ring, oldest at notes[nfirst]). */
	struct witness_note	 notes[WITNESS_NOTES];
	size_t			 nfirst;
	size_t			 nnotes;
	struct audit_cursor	*note_cur;	/* the oldest's read, or NULL */
};

enum job_kind {
	JOB_CHECKPOINT = 1,	/* send checkpoint `record` with leaves */
	JOB_COSIGN,		/* check a cosignature of `record`, keep it */
	JOB_ACK			/* record `record` is ours: acknowledge */
};

/*
 * A peer's one witness answer under way (peer->witness, the peer's: freed
 * with it or once answered). It waits first for the commit of what its
 * request appended (waiting), then reads what the answer needs through
 * its own cursor, over as many loop turns as the store takes.
 */
struct witness_job {
	enum job_kind	 kind;
	uint64_t	 request_id;
	uint64_t	 record;	/* 0: not on record (commit failed) */
	int		 latest;	/* the broker chose the checkpoint */
	int		 waiting;	/* for the commit of batch gen ... */
	uint64_t	 gen;
	size_t		 idx;		/* ... append idx in it: record */
	struct audit_cursor *cur;	/* the read under way, or NULL */

	/* JOB_CHECKPOINT: leaves from have_seq + 1, one page at most. */
	uint64_t	 have_seq;
	Cpx__AuditRecord *ck;		/* the checkpoint, once read */
	uint8_t		*leaves;	/* nleaves of them, once wanted */
	size_t		 nleaves;
	uint64_t	 bytes;		/* the records' bytes they stand for */

	/* JOB_COSIGN: the Cosign as it came (wire.c bounded its lengths). */
	uint64_t	 cosigned_seq;
	uint8_t		 cosigned_hash[CHAIN_HASH_LEN];
	uint8_t		 sig[CPX_MAX_SIGNATURE];
	size_t		 siglen;
};

/* --- witness.c ---------------------------------------------------------- */

/* A witness request refused: counted, answered, logged (as broker.c). */
void	witness_refuse(struct broker *b, struct session *s,
	    uint64_t request_id, int reason, const char *why);
/* Append rec (witness fields set) for s; 0 with *seq, or -1 (logged). */
int	witness_append_for(struct broker *b, struct session *s,
	    struct peer *pr, Cpx__AuditRecord *rec, const uint8_t *der,
	    size_t derlen, uint64_t *seq) __attribute__((warn_unused_result));
/*
 * Hang on pr (whose witness must be NULL) a job that acknowledges the
 * record just appended once it is committed. 0, or -1 (out of memory).
 */
int	witness_ack_job(struct broker *b, struct peer *pr,
	    uint64_t request_id) __attribute__((warn_unused_result));
/*
 * The cosignature just appended is to be remembered once committed
 * (witness_batch_done), and served to the other witnesses.
 */
void	witness_queue_cosig(struct broker *b);
/* Remember rec as its node's newest cosignature. 0 or -1 (memory). */
int	witness_remember_cosig(struct witness *w, const Cpx__AuditRecord *rec)
	    __attribute__((warn_unused_result));

/* --- witness_read.c ----------------------------------------------------- */

/*
 * Take j (detached from pr: pr->witness is NULL) one step on: read what
 * the store has, answer once all is read. Returns 1 when j is done (the
 * caller frees it; a cosignature's step may have hung its ack job on pr
 * meanwhile), 0 while j waits for a page of the store (the caller hangs
 * it back). *worked: 1 if the step read a record or answered.
 */
int	witness_job_step(struct broker *b, struct session *s, struct peer *pr,
	    struct witness_job *j, int *worked)
	    __attribute__((warn_unused_result));
/* Read and remember the queued cosignatures, until one waits. */
void	witness_notes_drain(struct broker *b);

#endif
