/*
 * broker_impl.h: how the dispatcher's files talk to each other. The
 * dispatcher is broker.c (context, loop, requests, reload), publish.c
 * (a publish from admission to its Ack), peer.c (welcome, end and the
 * refusals a node earns), replay.c (history) and witness.c (witnesses'
 * checkpoints and cosignatures); they share the struct broker of
 * broker.h and nothing else. Not for use outside broker/.
 */
#ifndef CPX_BROKER_IMPL_H
#define CPX_BROKER_IMPL_H

#include <stdint.h>

#include "broker.h"
#include "peer.h"
#include "proto/cpx.pb-c.h"

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
/* Group commit: one fsync for the turn, then acks and deliveries. */
void	publish_commit_turn(struct broker *b);
/* Free the turn's pending publishes and their array (broker_free). */
void	publish_free(struct broker *b);

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
