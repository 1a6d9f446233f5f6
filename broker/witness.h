/*
 * witness.h: the broker's side of witnessing (docs/witness.md). A node
 * with the right `witness` asks for the newest signed checkpoint and the
 * leaf digest of every record since the one it accepted before; it
 * checks the chain, countersigns, and the broker keeps the cosignature
 * in the log (RECORD_COSIGNATURE). A witness that saw the log rewritten
 * sends an alarm, kept too (RECORD_WITNESS_ALARM).
 *
 * Requests are taken when they arrive (broker_handle_frames), from what
 * they carry alone, and answered by witness_pump after the turn's
 * commit: a checkpoint written for a witness, or a cosignature, is
 * durable before anyone is told of it. Everything an answer reads from
 * the log (witness_read.c) is read in witness_pump, through a cursor the
 * answer keeps across loop turns: a store that answers a read with
 * AUDIT_CURSOR_WAIT never holds the loop, the answer waits for a later
 * turn. Each answer reads a bounded number of records (one page of
 * COSIGN_MAX_LEAVES at most), and a witness asks for the next page
 * itself, so a witness far behind never holds the loop either.
 */
#ifndef CPX_WITNESS_H
#define CPX_WITNESS_H

#include <stdint.h>

#include "proto/cpx.pb-c.h"

struct broker;
struct session;
struct witness;
struct witness_job;

/*
 * Module state: the newest checkpoint, each witness's newest cosignature
 * and the cosignatures appended, to read back once committed. Returns an
 * owned witness (witness_free) or NULL when out of memory.
 */
struct witness *witness_new(void);
/* Accepts NULL, NULLs *w. It may hold a cursor: before audit_close. */
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
 * readable (audit_batch_outcome) and give the jobs and the cosignatures
 * waiting on it their records; else nothing of it is on record, the
 * jobs are answered so and the cosignatures forgotten.
 */
void	witness_batch_done(struct broker *b, uint64_t gen, int committed);

/*
 * Take a WitnessRequest, Cosign or WitnessAlarm of s (*envp stays the
 * caller's): check the right and the request, append what it needs, and
 * leave the answer to witness_pump.
 */
void	witness_handle(struct broker *b, struct session *s,
	    const Cpx__Envelope *env, int64_t now);

/*
 * After the turn's commit: read on for each answer under way and send
 * those read whole; remember the cosignatures committed. Returns 1 if
 * there is more work right now, 0 if what is left waits for a commit or
 * for a page of the store (its fd wakes the loop).
 */
int	witness_pump(struct broker *b);

/*
 * A peer's pending witness answer, with its cursor (before audit_close);
 * accepts NULL, NULLs *j.
 */
void	witness_job_free(struct witness_job **j);

#endif
