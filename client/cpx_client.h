/*
 * cpx_client.h: the cpx client library, what a national node's program
 * links to publish and receive alerts.
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

#include "identity.h"
#include "proto/cpx.pb-c.h"

/* How far past the broker's last announced sequence a delivery may be. */
#define CPX_SEQ_AHEAD_MAX	((uint64_t)1 << 32)

struct cpx_client;

struct cpx_client_config {
	const char	*endpoint;	/* "tcp://host:port" */
	const char	*ca;		/* network CA, PEM */
	const char	*cert;		/* this node's certificate, PEM */
	const char	*key;		/* this node's key, PEM, mode 0600 */
	const char	*crl;		/* CRL for verifying deliveries */
	/*
	 * Run without a CRL: set it to say so knowingly. Without a CRL an
	 * alert signed with a revoked node's key verifies, so with crl NULL
	 * and no_crl 0 cpx_client_new refuses to start.
	 */
	int		 no_crl;
	/*
	 * Who the broker must be: the name its certificate's subjectAltName
	 * must carry (a DNS name, or an IP address), NULL for the host of
	 * endpoint. Its certificate must also be for serverAuth and, with
	 * the CRL, not revoked.
	 */
	const char	*broker_name;
	/*
	 * Optional pinned broker key: SHA-256 of its SubjectPublicKeyInfo,
	 * 64 hex digits. When set, a broker with another key is refused
	 * even if its certificate passes every other check.
	 */
	const char	*broker_pin;
	int		 reconnect;	/* reconnect and resume after a break */
	int		 ping_ms;	/* keepalive period; 0 = broker's value */
	/*
	 * Threads that verify deliveries (0: on the caller's thread).
	 * Events still reach the callback on the caller's thread, in the
	 * order the broker sent them; a long replay goes about this many
	 * times faster on as many spare cores.
	 */
	unsigned int	 verify_threads;
};

enum cpx_event_kind {
	CPX_EV_CONNECTED = 1,	/* welcomed by the broker (also after reconnect) */
	CPX_EV_DISCONNECTED,	/* connection lost; reconnecting if enabled */
	CPX_EV_ACK,		/* publish accepted: seq, duplicate */
	CPX_EV_ERROR,		/* request (or session if fatal) refused */
	CPX_EV_SUBSCRIBED,	/* subscription in force: seq = live_from */
	CPX_EV_DELIVERY,	/* an alert: live or replayed */
	CPX_EV_AUDIT_RECORD,	/* audit replay: any record kind */
	CPX_EV_REPLAY_END	/* replay finished: seq = last, count */
};

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

typedef void cpx_event_cb(const struct cpx_event *ev, void *arg);

/* The outcome of a blocking call. */
struct cpx_result {
	uint64_t	seq;
	int		duplicate;
	int		reason;		/* CPX__REASON__*, 0 if accepted */
	char		text[400];	/* broker's reason or local error */
};

/*
 * Load keys and certificates (a key readable by group or others is
 * refused) and prepare the connection. Returns an owned client
 * (cpx_client_free) or NULL with err[].
 */
struct cpx_client *cpx_client_new(const struct cpx_client_config *cfg,
	    char *err, size_t errlen);
void	cpx_client_free(struct cpx_client **c);

/*
 * Connect, handshake and wait for the broker's Welcome, at most timeout_ms.
 * Returns 0, or -1 with err[] (broker unreachable, certificate refused
 * and why, ...).
 */
int	cpx_client_connect(struct cpx_client *c, int timeout_ms, char *err,
	    size_t errlen) __attribute__((warn_unused_result));

/* This node's identity, from its certificate. */
const struct identity *cpx_client_identity(const struct cpx_client *c);
/* The broker's Welcome (NULL before connect). */
const Cpx__Welcome *cpx_client_welcome(const struct cpx_client *c);

void	cpx_client_on_event(struct cpx_client *c, cpx_event_cb *cb, void *arg);

/*
 * Process network traffic for up to timeout_ms (0: what is there now),
 * calling the event callback. Returns 0, 1 if cpx_client_stop() was
 * called, or -1 when the session is over for good (refused, or lost and
 * reconnect disabled) with the reason in cpx_client_error().
 *
 * Events keep the broker's order. When the connection ends, everything
 * received before the end is handed over first (deliveries still being
 * verified included); if the broker ended it with a fatal Error, that
 * comes as CPX_EV_ERROR with fatal set, its text and reason stay in
 * cpx_client_error() and cpx_client_error_reason(), and only then comes
 * CPX_EV_DISCONNECTED.
 */
int	cpx_client_run(struct cpx_client *c, int timeout_ms);
void	cpx_client_stop(struct cpx_client *c);
const char *cpx_client_error(const struct cpx_client *c);
/*
 * The CPX__REASON__* of the broker's fatal Error that ended the session
 * (its text is in cpx_client_error()), or 0 if the session did not end
 * that way or was welcomed again since.
 */
int	cpx_client_error_reason(const struct cpx_client *c);
/*
 * 1 if the session ended because the broker refused this node (its
 * certificate was refused, revoked, or the policy grants it nothing):
 * retrying will not help, unlike an unreachable broker.
 */
int	cpx_client_refused(const struct cpx_client *c);

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

/* Publishes sent and not yet acknowledged or refused. */
size_t	cpx_publish_inflight(const struct cpx_client *c);

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
 * The resume point: the highest sequence of a verified, plausible live
 * (or resumed) delivery handed to the callback, or the `after` of a
 * resuming cpx_subscribe if higher. Replays asked with cpx_replay do not
 * move it. See the top of this file.
 */
uint64_t cpx_client_last_seq(const struct cpx_client *c);

#endif
