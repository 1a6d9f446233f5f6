/*
 * witness.h: the broker's side of witnessing (docs/witness.md). A node
 * with the right `witness` asks for the newest signed checkpoint and the
 * leaf digest of every record since the one it accepted before; it
 * checks the chain, countersigns, and the broker keeps the cosignature
 * in the log (RECORD_COSIGNATURE). A witness that saw the log rewritten
 * sends an alarm, kept too (RECORD_WITNESS_ALARM).
 *
 * Requests are decided when they arrive (broker_handle_frames) and
 * answered by witness_pump after the turn's commit: a checkpoint written
 * for a witness, or a cosignature, is durable before anyone is told of
 * it. Each answer reads a bounded number of records (one page of
 * COSIGN_MAX_LEAVES at most), and a witness asks for the next page
 * itself, so a witness far behind never holds the loop.
 */
#ifndef CPX_WITNESS_H
#define CPX_WITNESS_H

#include <stdint.h>

#include "proto/cpx.pb-c.h"

struct broker;
struct session;
struct witness;
struct witness_job;

/* Module state: the newest checkpoint, each witness's newest cosignature.
 * Returns an owned witness (witness_free) or NULL when out of memory. */
struct witness *witness_new(void);
void	witness_free(struct witness **w);

/*
 * A durable record read at start-up (broker.c load_dedup): the newest
 * checkpoint and each witness's newest cosignature are remembered.
 * Returns 0, or -1 when out of memory.
 */
int	witness_note_record(struct witness *w, const Cpx__AuditRecord *rec)
	    __attribute__((warn_unused_result));
/* A checkpoint of this broker was committed as record rec_seq. */
void	witness_note_checkpoint(struct witness *w, uint64_t rec_seq);
/*
 * The commit of batch gen (batch_gen) ended: committed, its outcomes are
 * readable (audit_batch_outcome) and give the jobs waiting on it their
 * records; else nothing of it is on record and they are answered so.
 */
void	witness_batch_done(struct broker *b, uint64_t gen, int committed);

/*
 * Take a WitnessRequest, Cosign or WitnessAlarm of s (*envp stays the
 * caller's): check the right and the request, append what it needs, and
 * leave the answer to witness_pump.
 */
void	witness_handle(struct broker *b, struct session *s,
	    const Cpx__Envelope *env, int64_t now);

/* After the turn's commit: answer what is now durable. 1 if more waits. */
int	witness_pump(struct broker *b);

/* A peer's pending witness answer; accepts NULL, NULLs *j. */
void	witness_job_free(struct witness_job **j);

#endif
