/*
 * broker_impl.h: how the dispatcher's files talk to each other. The
 * dispatcher is broker.c (context, loop, requests, reload), publish.c
 * (a publish from admission to its append), batch.c (the commit of the
 * appends, then Acks and deliveries), tail.c (records other brokers
 * wrote, delivered in log order), peer.c (welcome, end and the
 * refusals a node earns), replay.c (history) and witness.c (witnesses'
 * checkpoints and cosignatures); they share the struct broker of
 * broker.h and nothing else. Not for use outside broker/.
 */
#ifndef CPX_BROKER_IMPL_H
#define CPX_BROKER_IMPL_H

#include <stdint.h>

#include "broker.h"
#include "cpx_limits.h"
#include "peer.h"
#include "proto/cpx.pb-c.h"
#include "trace.h"

/* broker.c */

/*
 * Queue env to s; a session whose outbound queue is over its bound is
 * refused as overloaded (it reconnects and resumes).
 */
void	broker_send(struct broker *b, struct session *s,
	    const Cpx__Envelope *env);
/* A non-fatal Error answering one request of s. */
void	broker_send_error(struct broker *b, struct session *s,
	    uint64_t request_id, int reason, const char *text);
/*
 * Append a record about s (may be NULL; its peer, if any, names the
 * node) to the audit log; durable at the turn's commit.
 */
void	broker_audit_note(struct broker *b, struct session *s,
	    Cpx__RecordKind kind, int reason, const char *text,
	    const char *alert_id);
/* Decode and act on the requests of open session s. */
void	broker_handle_frames(struct broker *b, struct session *s,
	    int64_t now);

/* publish.c */

/*
 * Take the Publish in *envp from s: hand it to the verifiers (or verify
 * it inline), refuse it, or park it when the verify backlog is full.
 * Returns 1 if it was parked (read nothing more of s until
 * publish_admits), else 0. Takes *envp over when it keeps it (NULLs it).
 */
int	publish_take(struct broker *b, struct session *s,
	    Cpx__Envelope **envp, int64_t now);
/* 1 if one more publish of s may go to the verifier threads now. */
int	publish_admits(const struct broker *b, const struct session *s);
/* Take the verifier threads' results and decide on each. */
void	publish_take_verified(struct broker *b);
/* The one place a publish is refused: answer, log, audit. */
void	publish_refuse(struct broker *b, struct session *s,
	    uint64_t request_id, const char *alert_id, int reason,
	    const char *why);
/* Acknowledge a publish of s as seq (duplicate: accepted before). */
void	publish_send_ack(struct broker *b, struct session *s,
	    uint64_t request_id, uint64_t seq, const char *alert_id,
	    int duplicate, const struct trace *tr);

/* batch.c */

enum pending_kind {
	PENDING_ALERT = 1,	/* appended: ack and deliver at commit */
	PENDING_REPEAT		/* repeat of one in a batch: ack only */
};

/*
 * A publish waiting for its commit. Its session is held (s->held) until
 * the batch is answered, so the pointer stays valid across loop turns.
 */
struct pending {
	enum pending_kind kind;
	struct session	*session;
	uint64_t	 request_id;
	size_t		 idx;		/* ALERT: its append */
	uint64_t	 seq;		/* from the commit's outcome */
	int64_t		 time;
	int		 duplicate;	/* acked as a repeat, not routed */
	Cpx__Envelope	*env;		/* owned Publish (ALERT) */
	Cpx__Alert	*alert;		/* owned (ALERT) */
	char		 origin[3];
	char		 alert_id[CPX_MAX_ID + 1];
	uint8_t		 hash[DEDUP_HASH_LEN];	/* dedup_hash */
	struct trace	 trace;		/* stage stamps (CPX_TRACE) */
};

/* The two batches (accumulating, in flight). 0, or -1 out of memory. */
int	batch_init(struct broker *b) __attribute__((warn_unused_result));
/* Free both batches and what their publishes own (broker_free). */
void	batch_free(struct broker *b);
/*
 * A new entry for a publish of s in the accumulating batch (zeroed but
 * for session and kind; s is held), or NULL when memory runs out.
 */
struct pending *batch_push(struct broker *b, struct session *s,
	    enum pending_kind kind);
/* Drop the entry batch_push just gave (its append failed). */
void	batch_pop(struct broker *b);
/*
 * The index the append just made has in the accumulating batch: what
 * audit_batch_outcome is asked about once it is committed.
 */
size_t	batch_last_index(const struct broker *b);
/*
 * The accumulating batch's number: it goes up by one each time a batch
 * is put in flight (witness_batch_done names the batch by it).
 */
uint64_t batch_gen(const struct broker *b);
/* The checkpoint just appended: witness.c learns its seq at commit. */
void	batch_note_checkpoint(struct broker *b);
/*
 * Advance the commit: finish the batch in flight if the store says so
 * (acks and deliveries, in the same call), and put the accumulating one
 * in flight if none is. Called once per loop turn and when the commit's
 * fd is ready.
 */
void	batch_turn(struct broker *b);
/* The fd and events to poll for the commit in flight, or -1. */
int	batch_fd(const struct broker *b, short *events);
/* How long the commit in flight has been on its way (µs), or 0. */
int64_t	batch_inflight_us(const struct broker *b);
/*
 * Shutdown: commit what is pending and wait for it, at most timeout_ms.
 */
void	batch_drain(struct broker *b, int timeout_ms);

/* tail.c */

/* Start at the log's durable end (broker_init). 0, or -1 with err[]. */
int	tail_init(struct broker *b, char *err, size_t errlen)
	    __attribute__((warn_unused_result));
void	tail_free(struct broker *b);
/*
 * Deliver every record up to and including seq that is not delivered
 * yet, read from the log in order (records other brokers committed
 * before this broker's own batch). Returns 1 if b->delivered is at seq
 * now; 0 if the records are on their way from the store: tail_pump
 * delivers them, in order, when they come. On a read error, live
 * subscribers are cut with the seq to resume after, so none gets a gap
 * (and 1 is returned: delivered has moved on).
 */
int	tail_reach(struct broker *b, uint64_t seq);
/* The notify fd of a shared store (POLLIN), or -1. */
int	tail_fd(const struct broker *b);
/*
 * Read what the store announced (and what tail_reach asked for) and
 * deliver up to it, a bounded number of records a turn. Returns 1 if
 * more is to be read now (0 when the rest is on its way: the read fd
 * wakes the loop).
 */
int	tail_pump(struct broker *b);

/* peer.c */

/* Welcome a verified session, or refuse it; then read its requests. */
void	peer_welcome(struct broker *b, struct session *s, int64_t now);
/* Log and audit every session the edge reports ended. */
void	peer_take_closed(struct broker *b);
/*
 * Count a refusal of s; 1 if it is the first of its kind and source in
 * the interval and went to the audit log in full (the caller logs it).
 */
int	peer_note_refusal(struct broker *b, struct session *s,
	    Cpx__RecordKind kind, int reason, const char *why,
	    const char *alert_id);
/* Cut s and keep its node out if it was refused too often. */
void	peer_check_refusal_limit(struct broker *b, struct session *s,
	    int reason);
/*
 * Write the summaries of refusals counted and not written one by one,
 * for intervals of interval_ms that ended by now (0: all of them).
 */
void	peer_flush_refusals(struct broker *b, int64_t now,
	    uint32_t interval_ms);

#endif
