/*
 * cpx_client.h: the cpx client library's internal API, what the cpx CLI,
 * the tests and the benchmark link (static libcpx.a): the public API of
 * include/cpx.h, plus the protobuf-typed calls and the event's fields.
 * A program outside this tree uses include/cpx.h and libcpx.so only:
 * nothing declared here alone is exported from libcpx.so.
 *
 *	struct cpx_client_config cfg = { .endpoint = "tcp://broker:7443",
 *	    .ca = "ca.pem", .cert = "si-ncp.pem", .key = "si-ncp.key",
 *	    .crl = "crl.pem" };
 *	struct cpx_client *c = cpx_client_new(&cfg, err, sizeof(err));
 *	cpx_client_connect(c, 10000, err, sizeof(err));
 *	cpx_publish(c, &alert, 10000, &res);		// signs, waits for ack
 *	cpx_client_on_event(c, on_event, ctx);
 *	cpx_subscribe(c, filters, nfilters, 0, 0, &req);
 *	while (cpx_client_run(c, 1000) >= 0) ...	// on_event per delivery
 *	cpx_client_free(&c);
 *
 * Every delivery is verified here, end to end, against the network CA
 * and CRL before it reaches the callback, with the result in
 * ev->verified: not even a compromised broker can forge an alert.
 *
 * What the library believes of the broker, and what it does not:
 *
 * - History. A delivery is checked as history (a signer certificate that
 *   has expired since is accepted if it was valid when the alert was
 *   issued) only if this client asked for it: it answers a replay of ours
 *   still running (its request_id), or it comes during a resume we asked
 *   for with a sequence at or below the live_from of our Subscribed.
 *   Everything else must verify as of now, whatever ev->replayed (the
 *   broker's own marking, shown for information) says.
 *
 * - Sequence numbers are not signed: the broker assigns them. The resume
 *   point (cpx_client_last_seq, used to resume after a reconnect) moves
 *   only forward, only over verified live deliveries, and only over a
 *   plausible sequence: at most CPX_SEQ_AHEAD_MAX past the highest
 *   sequence the broker announced (Welcome.last_seq, Subscribed.live_from,
 *   ReplayEnd.last_seq, Ack.seq), and never UINT64_MAX. Live alerts run
 *   ahead of the last announcement by one per audit record written since;
 *   2^32 of them within one session is far beyond any real traffic, while a
 *   forged sequence such as 2^64 - 1 is reported as not verified and
 *   cannot make the subscriber skip every later alert.
 *
 * The library is single-threaded: call it from one thread.
 */
#ifndef CPX_CLIENT_H
#define CPX_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "cpx.h"
#include "identity.h"
#include "proto/cpx.pb-c.h"

/*
 * An event as the library fills it (include/cpx.h declares it opaque and
 * reads it through cpx_event_*()).
 */
struct cpx_event {
	enum cpx_event_kind	 kind;
	uint64_t		 request_id;
	uint64_t		 seq;
	uint64_t		 count;		/* REPLAY_END */
	int			 duplicate;	/* ACK */
	int			 reason;	/* ERROR: CPX__REASON__* */
	int			 fatal;		/* ERROR: session closed */
	const char		*text;		/* ERROR, DISCONNECTED */
	const char		*alert_id;	/* ACK */
	/* DELIVERY */
	int64_t			 accepted_at;
	int			 replayed;	/* as the broker marked it */
	const Cpx__SignedAlert	*signed_alert;
	const Cpx__Alert	*alert;		/* NULL if not verified */
	int			 verified;	/* signature, chain, origin and
						   sequence ok (see above) */
	const char		*verify_error;	/* why not verified */
	struct identity		 signer;
	/* AUDIT_RECORD */
	const Cpx__AuditRecord	*record;
};

/* This node's identity, from its certificate. */
const struct identity *cpx_client_identity(const struct cpx_client *c);
/* The broker's Welcome (NULL before connect). */
const Cpx__Welcome *cpx_client_welcome(const struct cpx_client *c);

/*
 * Complete and sign an alert, then send it without waiting. Empty id gets
 * a random UUID, empty origin this node's country, zero issued_at now
 * (the alert is modified accordingly; strings set here are owned by the
 * client until the next call). The signed alert is kept until its ACK or
 * ERROR, and sent again after a reconnect (the broker deduplicates by
 * id). Returns 0 with *request_id, or -1 with err[].
 */
int	cpx_publish_send(struct cpx_client *c, Cpx__Alert *a,
	    uint64_t *request_id, char *err, size_t errlen)
	    __attribute__((warn_unused_result));

/*
 * Publish an alert already signed elsewhere (an HSM, a gateway of the same
 * country), without touching its bytes. Same as cpx_publish_send
 * otherwise. Returns 0 with *request_id, or -1 with err[].
 */
int	cpx_publish_signed(struct cpx_client *c, Cpx__SignedAlert *sa,
	    uint64_t *request_id, char *err, size_t errlen)
	    __attribute__((warn_unused_result));

/*
 * cpx_publish_send, then wait for its ACK or ERROR (other events still go
 * to the callback). Returns 0 if accepted (res->seq), -1 if refused or
 * timed out (res->reason, res->text).
 */
int	cpx_publish(struct cpx_client *c, Cpx__Alert *a, int timeout_ms,
	    struct cpx_result *res) __attribute__((warn_unused_result));

/*
 * Replace the subscription with these filters (copied). With resume set,
 * the broker first sends every matching alert after seq `after`, then
 * live ones; after a reconnect the library resumes by itself from the last
 * sequence delivered. Returns 0 with *request_id, or -1.
 *
 * Within one client nothing is missed or repeated. Across a restart of
 * the program the promise is the program's: the library cannot know
 * what it did with a delivery before it died. For exactly once, store
 * ev->seq in the same transaction as the delivery's effect (the row it
 * inserts, the ticket it opens), drop any delivery whose seq is at or
 * below the stored one, and subscribe with resume = 1, after = that
 * seq. Storing the seq after the effect instead gives at least once (what
 * `cpx subscribe --state-file` does); storing it before, at most once.
 * See docs/json.md, "Exactly once".
 */
int	cpx_subscribe(struct cpx_client *c, Cpx__Filter *const *filters,
	    size_t nfilters, int resume, uint64_t after, uint64_t *request_id)
	    __attribute__((warn_unused_result));

/*
 * Ask for a replay (rq is copied; its request_id is assigned). Records
 * arrive as DELIVERY (or AUDIT_RECORD with all_kinds), then REPLAY_END.
 * At most 16 replays may run at once. Returns 0 with *request_id, or -1
 * (not welcomed, too many replays, or the write failed).
 */
int	cpx_replay(struct cpx_client *c, const Cpx__ReplayRequest *rq,
	    uint64_t *request_id) __attribute__((warn_unused_result));

/*
 * Public additions (cpx_witness_* included) are declared in include/cpx.h
 * with CPX_API, so that libcpx.so exports them; internal-only ones, with
 * protobuf types, here.
 */

#endif
