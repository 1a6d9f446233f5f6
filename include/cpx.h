/*
 * cpx.h: the public API of libcpx, the cpx client library, what a
 * national node's own program links to publish and receive signed alerts
 * through a cpx broker. Build with `pkg-config --cflags --libs cpx`.
 *
 *	struct cpx_client_config cfg = { .endpoint = "tcp://broker:7443",
 *	    .ca = "ca.pem", .cert = "si-ncp.pem", .key = "si-ncp.key",
 *	    .crl = "crl.pem" };
 *	struct cpx_client *c = cpx_client_new(&cfg, err, sizeof(err));
 *	cpx_client_connect(c, 10000, err, sizeof(err));
 *	cpx_publish_json(c, json, strlen(json), 10000, &res);
 *	cpx_client_on_event(c, on_event, ctx);
 *	cpx_subscribe_to(c, &filter, 1, 0, 0, &req);
 *	while (cpx_client_run(c, 1000) >= 0) ...	// on_event per delivery
 *	cpx_client_free(&c);
 *
 * Every delivery is verified in the library, end to end, against the
 * network CA and CRL before it reaches the callback (cpx_event_verified):
 * not even a compromised broker can forge an alert. Alerts go in and
 * come out as JSON, in the form of docs/json.md (the same as `cpx
 * publish --file` and `cpx subscribe --json`).
 *
 * This header includes nothing of cpx's own but cpx_version.h, and every
 * symbol libcpx exports starts with cpx_. The library is single-threaded:
 * call a client from one thread (cpx_set_log_callback's callback may come
 * from the library's verifier threads). Functions that can fail return 0
 * or -1 (with a message in err, or in res->text), and their results must
 * be checked.
 */
#ifndef CPX_H
#define CPX_H

#include <stddef.h>
#include <stdint.h>

#include "cpx_version.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CPX_API		__attribute__((visibility("default")))
#define CPX_CHECK	__attribute__((warn_unused_result))

/* How far past the broker's last announced sequence a delivery may be. */
#define CPX_SEQ_AHEAD_MAX	((uint64_t)1 << 32)

/* "0.2.0": the version of the library actually loaded. */
CPX_API const char *cpx_version(void);

/*
 * Logging. By default what the library logs (little: failures are
 * returned, not logged; at debug level, what it sends) goes to stderr as
 * text. A host program can take it instead: fn gets each line that
 * passes the level (prio is a syslog priority, 3 error .. 7 debug)
 * without time or level prefix; line is valid during the call only, and
 * fn must not call back into libcpx. fn NULL goes back to stderr.
 * Process-wide.
 */
typedef void cpx_log_cb(int prio, const char *line, void *arg);
CPX_API void	cpx_set_log_callback(cpx_log_cb *fn, void *arg);
/* "error", "warn", "info" (default) or "debug"; -1 if unknown. */
CPX_API int	cpx_set_log_level(const char *level) CPX_CHECK;

/* ---------------------------------------------------------------- */
/* Client                                                           */
/* ---------------------------------------------------------------- */

struct cpx_client;

struct cpx_client_config {
	/*
	 * "tcp://host:port", or several brokers of one network, comma
	 * separated ("tcp://a:7443,tcp://b:7443"): tried in order, and
	 * after a lost session the next one is taken (docs/failover.md).
	 */
	const char	*endpoint;
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
	 * each endpoint. Its certificate must also be for serverAuth and,
	 * with the CRL, not revoked. With several endpoints: one name for
	 * all, or a comma list with one name per endpoint, in order.
	 */
	const char	*broker_name;
	/*
	 * Optional pinned broker key: SHA-256 of its SubjectPublicKeyInfo,
	 * 64 hex digits. When set, a broker with another key is refused
	 * even if its certificate passes every other check. With several
	 * endpoints: one pin for all, or one per endpoint, comma separated.
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

/* The outcome of a blocking call. */
struct cpx_result {
	uint64_t	seq;
	int		duplicate;
	int		reason;		/* cpx_reason_name(), 0 if accepted */
	char		text[400];	/* broker's reason or local error */
};

/*
 * Load keys and certificates (a key readable by group or others is
 * refused) and prepare the connection. Returns an owned client
 * (cpx_client_free) or NULL with err[].
 */
CPX_API struct cpx_client *cpx_client_new(const struct cpx_client_config *cfg,
	    char *err, size_t errlen);
/* Free a client; accepts NULL, NULLs *c. */
CPX_API void	cpx_client_free(struct cpx_client **c);

/*
 * Connect, handshake and wait for the broker's Welcome, at most timeout_ms.
 * Returns 0, or -1 with err[] (broker unreachable, certificate refused
 * and why, ...).
 */
CPX_API int	cpx_client_connect(struct cpx_client *c, int timeout_ms,
	    char *err, size_t errlen) CPX_CHECK;

/*
 * Process network traffic for up to timeout_ms (0: what is there now),
 * calling the event callback. Returns 0, 1 if cpx_client_stop() was
 * called, or -1 when the session is over for good (refused, or lost and
 * reconnect disabled) with the reason in cpx_client_error().
 *
 * Events keep the broker's order. When the connection ends, everything
 * received before the end is handed over first; if the broker ended it
 * with a fatal Error, that comes as CPX_EV_ERROR with cpx_event_fatal()
 * set, and only then comes CPX_EV_DISCONNECTED.
 */
CPX_API int	cpx_client_run(struct cpx_client *c, int timeout_ms);
CPX_API void	cpx_client_stop(struct cpx_client *c);
/* Why the session ended ("" if it did not); owned by the client. */
CPX_API const char *cpx_client_error(const struct cpx_client *c);
/*
 * The endpoint in use (or being tried) from the configured list; owned
 * by the client.
 */
CPX_API const char *cpx_client_endpoint(const struct cpx_client *c);
/*
 * The reason code of the broker's fatal Error that ended the session
 * (its text is in cpx_client_error()), or 0.
 */
CPX_API int	cpx_client_error_reason(const struct cpx_client *c);
/*
 * 1 if the session ended because the broker refused this node (its
 * certificate was refused, revoked, or the policy grants it nothing):
 * retrying will not help, unlike an unreachable broker.
 */
CPX_API int	cpx_client_refused(const struct cpx_client *c);

/* This node's country and name, from its certificate (owned by c). */
CPX_API const char *cpx_client_country(const struct cpx_client *c);
CPX_API const char *cpx_client_node(const struct cpx_client *c);

/* What the broker said in its Welcome. Strings are owned by the client. */
struct cpx_session_info {
	const char	*broker_name;	/* broker certificate CN */
	const char	*broker_version; /* "0.2.0"; "" from an older broker */
	const char	*country;	/* this node as the broker read it */
	const char	*node;
	int		 may_publish;
	int		 may_subscribe;
	int		 may_audit;
	uint64_t	 last_seq;	/* newest audit sequence then */
	uint32_t	 max_frame;	/* largest frame the broker accepts */
	uint32_t	 ping_interval;	/* seconds */
	int		 may_witness;	/* may cosign the log (cpx witness) */
};

/*
 * Fill *info from the broker's Welcome. Returns 0, or -1 (*info zeroed)
 * before the first Welcome.
 */
CPX_API int	cpx_client_session(const struct cpx_client *c,
	    struct cpx_session_info *info) CPX_CHECK;

/*
 * The resume point: the highest sequence of a verified, plausible live
 * (or resumed) delivery handed to the callback, or the `after` of a
 * resuming subscription if higher. Replays do not move it.
 */
CPX_API uint64_t cpx_client_last_seq(const struct cpx_client *c);

/* ---------------------------------------------------------------- */
/* Events                                                           */
/* ---------------------------------------------------------------- */

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

/*
 * An event, read through the functions below. It and every string they
 * return are valid during the callback only.
 */
struct cpx_event;

typedef void cpx_event_cb(const struct cpx_event *ev, void *arg);

/* Call cb(ev, arg) for each event from cpx_client_run (NULL: none). */
CPX_API void	cpx_client_on_event(struct cpx_client *c, cpx_event_cb *cb,
	    void *arg);

CPX_API enum cpx_event_kind cpx_event_kind(const struct cpx_event *ev);
/* The request answered (ACK, ERROR, SUBSCRIBED, DELIVERY of a replay). */
CPX_API uint64_t cpx_event_request_id(const struct cpx_event *ev);
/* The audit sequence (ACK, DELIVERY, AUDIT_RECORD, SUBSCRIBED, END). */
CPX_API uint64_t cpx_event_seq(const struct cpx_event *ev);
/* REPLAY_END: how many records the replay sent. */
CPX_API uint64_t cpx_event_count(const struct cpx_event *ev);
/* ACK: 1 if the alert had been accepted before (same bytes). */
CPX_API int	cpx_event_duplicate(const struct cpx_event *ev);
/* ERROR: the reason code (cpx_reason_name) and whether it ended the session. */
CPX_API int	cpx_event_reason(const struct cpx_event *ev);
CPX_API int	cpx_event_fatal(const struct cpx_event *ev);
/* ERROR, DISCONNECTED: the text; ACK: NULL. */
CPX_API const char *cpx_event_text(const struct cpx_event *ev);
/* ACK: the id of the alert accepted. */
CPX_API const char *cpx_event_alert_id(const struct cpx_event *ev);
/* DELIVERY: broker time of acceptance, ms since the epoch. */
CPX_API int64_t	cpx_event_accepted_at(const struct cpx_event *ev);
/* DELIVERY: 1 if the broker marked it as history (for information). */
CPX_API int	cpx_event_replayed(const struct cpx_event *ev);
/*
 * DELIVERY: 1 if signature, certificate chain, CRL, origin and sequence
 * all check out. A delivery with 0 must not be acted upon;
 * cpx_event_verify_error() says why.
 */
CPX_API int	cpx_event_verified(const struct cpx_event *ev);
CPX_API const char *cpx_event_verify_error(const struct cpx_event *ev);
/* DELIVERY, verified: the signer's country and node name. */
CPX_API const char *cpx_event_signer_country(const struct cpx_event *ev);
CPX_API const char *cpx_event_signer_node(const struct cpx_event *ev);

/*
 * The event as one JSON line (no newline): a verified DELIVERY as `cpx
 * subscribe --json` prints it (seq, accepted_at, id, origin, ..., signer,
 * verified, alert: the whole alert), an AUDIT_RECORD as `cpx-audit dump`
 * does. NULL for other events, an unverified delivery, or out of memory.
 * The caller owns the result and frees it with cpx_free().
 */
CPX_API char	*cpx_event_json(const struct cpx_event *ev) CPX_CHECK;

/* Free what libcpx handed over (cpx_event_json); accepts NULL. */
CPX_API void	cpx_free(void *p);

/* The short name of a reason code ("not-authorized", "storage", ...). */
CPX_API const char *cpx_reason_name(int reason);

/* ---------------------------------------------------------------- */
/* Publish                                                          */
/* ---------------------------------------------------------------- */

/*
 * Parse an alert from JSON (docs/json.md: category, severity, handling
 * and summary required; id, origin and issued_at filled in when absent),
 * sign it with this node's key and send it without waiting. The signed
 * alert is kept until its ACK or ERROR and sent again after a reconnect
 * (the broker deduplicates by id). Returns 0 with *request_id, or -1
 * with err[] (a bad key names it, an invalid alert says what to fix).
 */
CPX_API int	cpx_publish_json_send(struct cpx_client *c, const char *json,
	    size_t len, uint64_t *request_id, char *err, size_t errlen)
	    CPX_CHECK;

/*
 * cpx_publish_json_send, then wait for its ACK or ERROR (other events
 * still go to the callback). Returns 0 if accepted (res->seq), -1 if
 * invalid, refused or timed out (res->reason, res->text).
 */
CPX_API int	cpx_publish_json(struct cpx_client *c, const char *json,
	    size_t len, int timeout_ms, struct cpx_result *res) CPX_CHECK;

/* Publishes sent and not yet acknowledged or refused. */
CPX_API size_t	cpx_publish_inflight(const struct cpx_client *c);

/* ---------------------------------------------------------------- */
/* Subscribe and replay                                             */
/* ---------------------------------------------------------------- */

/*
 * One filter: an alert matches if it matches every part that is set
 * (an empty list or NULL matches anything). Names as in docs/json.md.
 */
struct cpx_filter {
	const char *const *origins;	/* origin countries, "SI" */
	size_t		   norigins;
	const char *const *regions;	/* origin in one of these regions */
	size_t		   nregions;
	const char *const *categories;	/* "vehicle", "crossing", ... */
	size_t		   ncategories;
	const char	  *min_severity; /* "low" .. "critical", NULL: any */
};

/*
 * Replace the subscription with these filters (copied; none =
 * unsubscribe; an alert is delivered if it matches any). With resume
 * set, the broker first sends every matching alert after seq `after`,
 * then live ones; after a reconnect the library resumes by itself.
 * Returns 0 with *request_id, or -1 with err[] (a bad filter named).
 */
CPX_API int	cpx_subscribe_to(struct cpx_client *c,
	    const struct cpx_filter *filters, size_t nfilters, int resume,
	    uint64_t after, uint64_t *request_id, char *err, size_t errlen)
	    CPX_CHECK;

/* What to replay from the broker's history; zero means unbounded. */
struct cpx_replay_spec {
	uint64_t		 from_seq;
	uint64_t		 to_seq;
	int64_t			 from_time;	/* broker time, ms */
	int64_t			 to_time;
	const struct cpx_filter	*filters;	/* none: all entitled */
	size_t			 nfilters;
	int			 all_kinds;	/* audit right: every record */
};

/*
 * Ask for a replay. Records arrive as DELIVERY (or AUDIT_RECORD with
 * all_kinds), then REPLAY_END. At most 16 replays may run at once.
 * Returns 0 with *request_id, or -1 with err[].
 */
CPX_API int	cpx_replay_start(struct cpx_client *c,
	    const struct cpx_replay_spec *spec, uint64_t *request_id,
	    char *err, size_t errlen) CPX_CHECK;

/* ---------------------------------------------------------------- */
/* Witness (docs/witness.md)                                        */
/* ---------------------------------------------------------------- */

/*
 * A node with the right `witness` checks that the broker's log only ever
 * grows: each round it fetches the newest signed checkpoint and the leaf
 * digest of every record since the one it accepted last (no content),
 * recomputes the hash chain, and countersigns. It keeps (seq, hash and
 * the signed checkpoint) in a state file, mode 0600, replaced atomically.
 */
enum cpx_witness_outcome {
	CPX_WITNESS_COSIGNED = 0,	/* a newer checkpoint, checked, cosigned */
	CPX_WITNESS_UNCHANGED,		/* the checkpoint accepted before */
	CPX_WITNESS_ALARM,		/* the log does not extend what this
					   witness saw: never cosigned */
	CPX_WITNESS_FAILED		/* the round could not be completed */
};

struct cpx_witness_result {
	enum cpx_witness_outcome outcome;
	uint64_t	held_seq;	/* checkpoint held before the round */
	char		held_hash[65];	/* hex, "" if none */
	uint64_t	seen_seq;	/* checkpoint the broker presented */
	char		seen_hash[65];
	uint64_t	cosig_seq;	/* audit sequence of our cosignature */
	uint64_t	leaves;		/* records checked through the chain */
	uint64_t	peers_checked;	/* other witnesses' cosignatures */
	/* ALARM: "TRUNCATION", "REWRITE" or "FORK"; else "". */
	char		alarm[16];
	char		evidence[1024];	/* ALARM: the evidence file written */
	int		local;		/* FAILED: 1 the state file or key (fix
					   it), 2 no witness right, 0 the
					   broker or network (retry) */
	char		text[1024];	/* what happened, one line */
};

/*
 * One witness round on a connected client (see above). On an alarm the
 * state file is left as it was, both signed checkpoints go to a new file
 * next to it (res->evidence), and a WitnessAlarm is sent to the broker
 * for its log. Returns 0 (COSIGNED or UNCHANGED), 1 (ALARM) or -1
 * (FAILED), with res filled in each case.
 */
CPX_API int	cpx_witness_round(struct cpx_client *c, const char *state_file,
	    int timeout_ms, struct cpx_witness_result *res) CPX_CHECK;

/*
 * Compare the broker-signed checkpoints in witness state and evidence
 * files, offline: two checkpoints with the same sequence and different
 * hashes, a longer log signed before a shorter one, or two checkpoints
 * over the same sequence and hash signed at different times (the record
 * after it was replaced) prove that the broker showed different logs (a
 * fork, a rollback or a replaced record). ca (or NULL) also
 * requires each signer to be a broker certificate of the CA. Writes one
 * line per finding into report. Returns 0 if nothing is proven, 1 if a
 * fork or rollback is, -1 if a file is unreadable or a signature bad.
 */
CPX_API int	cpx_witness_compare(const char *const *files, size_t nfiles,
	    const char *ca, char *report, size_t len) CPX_CHECK;

#ifdef __cplusplus
}
#endif

#endif
