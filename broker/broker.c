/*
 * broker.c: the dispatcher and event loop. Owns the broker context built
 * by broker_init(): TLS context, trust store, policy, audit log, duplicate
 * index, the edge, and the batch of alerts appended during the current
 * loop turn. One turn: read what the edge has, decide on each request
 * (verify.c, policy.c), append to the audit log, commit once (group
 * commit: one fsync), and only then acknowledge and deliver (route.c),
 * then pump replays (replay.c) and let the edge flush and time out.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>
#include <zmq.h>

#include "alert.h"
#include "broker.h"
#include "cpx_limits.h"
#include "log.h"
#include "ratelimit.h"
#include "refusals.h"
#include "replay.h"
#include "route.h"
#include "tlsctx.h"
#include "verifier.h"
#include "verify.h"
#include "wire.h"

#define TURN_MAX_MESSAGES	2048
#define REPLAY_BATCH		512
#define DRAIN_MS		2000
#define STATS_MS		60000
#define PARKED_INPUT_FRAMES	4	/* x max_frame buffered while parked */

/* An alert appended this turn, acknowledged once the turn's commit holds. */
struct pending {
	struct session	*session;	/* valid until edge_reap() */
	uint64_t	 request_id;
	uint64_t	 seq;
	int64_t		 time;
	int		 duplicate;	/* ack only, nothing to route */
	Cpx__Envelope	*env;		/* owned Publish, NULL if duplicate */
	Cpx__Alert	*alert;		/* owned, NULL if duplicate */
	char		 alert_id[CPX_MAX_ID + 1];
};

/* Append a record about s (s may be NULL) to the audit log. */
static void
audit_note(struct broker *b, struct session *s, Cpx__RecordKind kind,
    int reason, const char *text, const char *alert_id)
{
	Cpx__AuditRecord rec = CPX__AUDIT_RECORD__INIT;
	uint64_t seq;

	rec.kind = kind;
	rec.reason = reason;
	rec.text = (char *)(text ? text : "");
	rec.alert_id = (char *)(alert_id ? alert_id : "");
	if (s != NULL) {
		rec.peer_country = s->peer.country;
		rec.peer_node = s->peer.node;
		rec.peer_address = s->addr;
		rec.session_id = s->id;
	}
	if (audit_append(b->audit, &rec, &seq) == -1)
		log_warnx("audit: record of kind %d could not be appended",
		    kind);
	b->since_checkpoint++;
}

static void
send_env(struct broker *b, struct session *s, Cpx__Envelope *env)
{
	if (session_send(b->edge, s, env) == -1 && !s->dead &&
	    s->phase != SESSION_CLOSING) {
		log_warnx("%s: outbound queue over %zu bytes, disconnecting",
		    s->tag, session_queued(s));
		session_refuse(b->edge, s, CPX__REASON__REASON_OVERLOADED,
		    "outbound queue full; reconnect and resume");
	}
}

/* A non-fatal answer refusing one request. */
static void
send_error(struct broker *b, struct session *s, uint64_t request_id,
    int reason, const char *text)
{
	Cpx__Envelope env = CPX__ENVELOPE__INIT;
	Cpx__Error er = CPX__ERROR__INIT;

	er.request_id = request_id;
	er.reason = reason;
	er.text = (char *)text;
	env.body_case = CPX__ENVELOPE__BODY_ERROR;
	env.error = &er;
	send_env(b, s, &env);
}

/*
 * Record a refusal of s. The first of its kind, reason and source (the
 * node, or the address before authentication) within refusal_interval_ms
 * goes to the audit log in full; the others are only counted and come out
 * as one summary record with their count (write_summary), so whoever
 * keeps being refused cannot fill the disk. Returns 1 if it was written
 * in full (the caller logs it then, so the log stays as quiet).
 */
static int
note_refusal(struct broker *b, struct session *s, Cpx__RecordKind kind,
    int reason, const char *why, const char *alert_id)
{
	struct refusal_source src = { s->peer.country, s->peer.node, s->addr };

	if (refusals_count(b->refusals, &src, kind, reason, why,
	    edge_now_ms()) == 0)
		return 0;
	audit_note(b, s, kind, reason, why, alert_id);
	return 1;
}

/*
 * A node refused more than refusal_limit times within one interval is cut
 * and kept out for a while, doubling while it goes on: refusals cost the
 * node that causes them. Refusals that only say the broker is busy or
 * failing are not the node's doing and do not count.
 */
static void
check_refusal_limit(struct broker *b, struct session *s, int reason)
{
	struct refusal_source src = { s->peer.country, s->peer.node, s->addr };
	int64_t out;

	switch (reason) {
	case CPX__REASON__REASON_OVERLOADED:
	case CPX__REASON__REASON_STORAGE:
	case CPX__REASON__REASON_SHUTTING_DOWN:
	case CPX__REASON__REASON_INTERNAL:
		return;
	default:
		break;
	}
	if (s->phase != SESSION_OPEN ||
	    refusals_total(b->refusals, &src) <= b->cfg->refusal_limit)
		return;
	out = refusals_penalise(b->refusals, &src, edge_now_ms(),
	    b->cfg->refusal_penalty_ms);
	log_warnx("%s: refused more than %u times within %u ms (config key "
	    "refusal_limit): disconnecting, kept out for %lld s", s->tag,
	    b->cfg->refusal_limit, b->cfg->refusal_interval_ms,
	    (long long)(out + 999) / 1000);
	session_refuse(b->edge, s, CPX__REASON__REASON_SESSION_LIMIT,
	    "more than %u requests refused within %u s; this node is kept "
	    "out for %lld s", b->cfg->refusal_limit,
	    b->cfg->refusal_interval_ms / 1000, (long long)(out + 999) / 1000);
}

/* One summary record for refusals counted but not written one by one. */
static void
write_summary(void *arg, const struct refusal_summary *sum)
{
	struct broker *b = arg;
	Cpx__AuditRecord rec = CPX__AUDIT_RECORD__INIT;
	char text[CPX_MAX_ERROR_TEXT + 64];
	uint64_t seq;
	int64_t secs = (edge_now_ms() - sum->since_ms + 999) / 1000;

	snprintf(text, sizeof(text), "repeated %" PRIu64 " times in %lld s: "
	    "%s", sum->count, (long long)secs, sum->text);
	log_warnx("%s%s%s%s: %s (%s): %s", sum->country,
	    sum->country[0] ? "/" : "", sum->node, sum->country[0] ? "" :
	    sum->addr, alert_record_kind_name(sum->kind),
	    alert_reason_name(sum->reason), text);
	rec.kind = sum->kind;
	rec.reason = sum->reason;
	rec.count = sum->count;
	rec.text = text;
	rec.alert_id = "";
	rec.peer_country = (char *)sum->country;
	rec.peer_node = (char *)sum->node;
	rec.peer_address = (char *)sum->addr;
	if (audit_append(b->audit, &rec, &seq) == -1)
		log_warnx("audit: refusal summary could not be appended");
	b->since_checkpoint++;
}

/* The one place a publish is refused: answer, log, audit. */
static void
refuse_publish(struct broker *b, struct session *s, uint64_t request_id,
    const char *alert_id, int reason, const char *why)
{
	b->stats.refused++;
	if (note_refusal(b, s, CPX__RECORD_KIND__RECORD_PUBLISH_REFUSED,
	    reason, why, alert_id))
		log_warnx("%s: publish %s refused (%s): %s", s->tag,
		    alert_id ? alert_id : "?", alert_reason_name(reason), why);
	send_error(b, s, request_id, reason, why);
	check_refusal_limit(b, s, reason);
}

static void
send_ack(struct broker *b, struct session *s, uint64_t request_id,
    uint64_t seq, const char *alert_id, int duplicate)
{
	Cpx__Envelope env = CPX__ENVELOPE__INIT;
	Cpx__Ack ack = CPX__ACK__INIT;

	ack.request_id = request_id;
	ack.seq = seq;
	ack.alert_id = (char *)alert_id;
	ack.duplicate = duplicate;
	env.body_case = CPX__ENVELOPE__BODY_ACK;
	env.ack = &ack;
	send_env(b, s, &env);
}

static struct pending *
pending_push(struct broker *b)
{
	struct pending *p;
	size_t cap;

	if (b->npending == b->pending_cap) {
		cap = b->pending_cap ? b->pending_cap * 2 : 256;
		if ((p = reallocarray(b->pending, cap, sizeof(*p))) == NULL)
			return NULL;
		b->pending = p;
		b->pending_cap = cap;
	}
	p = &b->pending[b->npending++];
	memset(p, 0, sizeof(*p));
	return p;
}

/*
 * The second half of a publish, once signature, origin and form hold:
 * policy and relaying, duplicates and references, the audit append.
 * Takes over *envp and *ap.
 */
static void
accept_verified(struct broker *b, struct session *s, Cpx__Envelope **envp,
    Cpx__Alert **ap)
{
	Cpx__Envelope *env = *envp;
	Cpx__Publish *pub = env->publish;
	Cpx__Alert *a = *ap;
	Cpx__AuditRecord rec = CPX__AUDIT_RECORD__INIT;
	struct route_entitled_list ent;
	uint8_t hash[DEDUP_HASH_LEN];
	struct dedup_entry *de;
	struct pending *p;
	const uint8_t *der;
	char why[256], note[CPX_MAX_NODE_NAME + 32];
	size_t derlen;
	int reason;

	*ap = NULL;
	der = tlsconn_peer_cert_der(s->tls, &derlen);
	if (policy_check_publish(b->policy, &s->peer, a, &reason, why,
	    sizeof(why)) == -1 || verify_relay(b->policy, &s->peer, der,
	    derlen, pub->alert, note, sizeof(note), &reason, why,
	    sizeof(why)) == -1) {
		refuse_publish(b, s, pub->request_id, a->id, reason, why);
		goto done;
	}
	/*
	 * Ids are per origin: the earlier alert found here is always of the
	 * same origin, so naming its seq reveals nothing of another
	 * country's alerts.
	 */
	dedup_hash(pub->alert->alert.data, pub->alert->alert.len, hash);
	if ((de = dedup_find(b->dedup, a->origin, a->id)) != NULL) {
		if (CRYPTO_memcmp(de->hash, hash, sizeof(hash)) != 0) {
			snprintf(why, sizeof(why), "alert id %s of %s was "
			    "accepted before (seq %" PRIu64 ") with different "
			    "content", a->id, a->origin, de->seq);
			refuse_publish(b, s, pub->request_id, a->id,
			    CPX__REASON__REASON_DUPLICATE_CONFLICT, why);
			goto done;
		}
		b->stats.duplicates++;
		log_info("%s: alert %s is a repeat of seq %" PRIu64
		    ", acknowledged again", s->tag, a->id, de->seq);
		if (!de->pending) {
			send_ack(b, s, pub->request_id, de->seq, a->id, 1);
			goto done;
		}
		if ((p = pending_push(b)) == NULL)
			goto oom;
		p->session = s;
		p->request_id = pub->request_id;
		p->seq = de->seq;
		p->duplicate = 1;
		snprintf(p->alert_id, sizeof(p->alert_id), "%s", a->id);
		goto done;
	}
	if (dedup_check_reference(b->dedup, a, &reason, why,
	    sizeof(why)) == -1) {
		refuse_publish(b, s, pub->request_id, a->id, reason, why);
		goto done;
	}
	rec.kind = CPX__RECORD_KIND__RECORD_ALERT_ACCEPTED;
	rec.peer_country = s->peer.country;
	rec.peer_node = s->peer.node;
	rec.peer_address = s->addr;
	rec.session_id = s->id;
	rec.alert = pub->alert;
	rec.alert_id = a->id;
	rec.text = note;	/* "relayed for CC/node", or empty */
	/* Fixed now: replay goes by who was entitled at acceptance. */
	route_entitled_record(b->policy, a, &ent);
	rec.entitled = ent.v;
	rec.n_entitled = ent.n;
	if ((p = pending_push(b)) == NULL)
		goto oom;
	if (audit_append(b->audit, &rec, &p->seq) == -1) {
		b->npending--;
		refuse_publish(b, s, pub->request_id, a->id,
		    CPX__REASON__REASON_TOO_LARGE,
		    "alert too large for the audit log");
		goto done;
	}
	b->since_checkpoint++;
	if (note[0] != '\0')
		log_info("%s: alert %s %s", s->tag, a->id, note);
	if (dedup_add(b->dedup, a->origin, a->id, p->seq, hash, 1) == NULL)
		log_warnx("dedup: out of memory; repeats of %s may be "
		    "delivered twice", a->id);
	p->session = s;
	p->request_id = pub->request_id;
	p->time = rec.time;
	p->env = env;
	p->alert = a;
	snprintf(p->alert_id, sizeof(p->alert_id), "%s", a->id);
	*envp = NULL;		/* the pending entry owns both now */
	return;
oom:
	refuse_publish(b, s, pub->request_id, a->id,
	    CPX__REASON__REASON_INTERNAL, "broker out of memory");
done:
	cpx__alert__free_unpacked(a, NULL);
}

/* Hand the signature check to a verifier thread; 0 if it took it. */
static int
submit_verify(struct broker *b, struct session *s, Cpx__Envelope **envp)
{
	struct verify_job *job;
	const uint8_t *der;
	size_t len;

	if (b->verifier == NULL)
		return -1;
	der = tlsconn_peer_cert_der(s->tls, &len);
	if ((job = verify_job_new(der, der != NULL ? len : 0)) == NULL)
		return -1;
	job->session = s;
	job->session_id = s->id;
	job->env = *envp;
	job->peer = s->peer;
	job->may_relay = s->rights.relay;
	job->now_ms = alert_now_ms();
	job->max_skew_ms = b->cfg->clock_skew_ms;
	if (verifier_submit(b->verifier, &job) == -1) {
		job->env = NULL;	/* still the caller's */
		verify_job_free(&job);
		return -1;
	}
	s->jobs++;		/* keeps s allocated until the job is back */
	*envp = NULL;
	return 0;
}

/*
 * A node that retries a publish after a lost Ack (a broken connection, a
 * failover) may do so long after it issued the alert, and the clock-skew
 * or expiry check would then refuse what the log already holds. Those
 * checks come last, after the signature and origin held, so if these
 * exact alert bytes were accepted before under the same origin and id,
 * the original Ack is answered again. Returns 1 if it was.
 */
static int
ack_if_repeat(struct broker *b, struct session *s, const Cpx__Publish *pub,
    int reason)
{
	uint8_t hash[DEDUP_HASH_LEN];
	struct dedup_entry *de;
	Cpx__Alert *a;
	int done = 0;

	if ((reason != CPX__REASON__REASON_CLOCK_SKEW &&
	    reason != CPX__REASON__REASON_EXPIRED) || pub->alert == NULL ||
	    (a = cpx__alert__unpack(NULL, pub->alert->alert.len,
	    pub->alert->alert.data)) == NULL)
		return 0;
	if (a->origin != NULL && a->id != NULL &&
	    (de = dedup_find(b->dedup, a->origin, a->id)) != NULL &&
	    !de->pending) {
		dedup_hash(pub->alert->alert.data, pub->alert->alert.len, hash);
		if (CRYPTO_memcmp(de->hash, hash, sizeof(hash)) == 0) {
			b->stats.duplicates++;
			log_info("%s: alert %s is a late repeat of seq %" PRIu64
			    ", acknowledged again", s->tag, a->id, de->seq);
			send_ack(b, s, pub->request_id, de->seq, a->id, 1);
			done = 1;
		}
	}
	cpx__alert__free_unpacked(a, NULL);
	return done;
}

static void
handle_publish(struct broker *b, struct session *s, Cpx__Envelope **envp,
    int64_t now)
{
	Cpx__Publish *pub = (*envp)->publish;
	struct identity signer;
	struct verify_peer vp;
	Cpx__Alert *a = NULL;
	char why[256];
	int reason, relayed;

	if (!s->rights.publish) {
		snprintf(why, sizeof(why), "node %s/%s has no publish right "
		    "in the policy", s->peer.country, s->peer.node);
		refuse_publish(b, s, pub->request_id, NULL,
		    CPX__REASON__REASON_NOT_AUTHORIZED, why);
		return;
	}
	if (!ratelimit_take(b->ratelimit, &s->peer, now)) {
		snprintf(why, sizeof(why), "more than %u alerts/s (burst %u; "
		    "config keys publish_rate, publish_burst)",
		    b->cfg->publish_rate, b->cfg->publish_burst);
		refuse_publish(b, s, pub->request_id, NULL,
		    CPX__REASON__REASON_RATE_LIMITED, why);
		return;
	}
	if (submit_verify(b, s, envp) == 0)
		return;
	vp.id = &s->peer;
	vp.cert = tlsconn_peer_cert_der(s->tls, &vp.cert_len);
	vp.may_relay = s->rights.relay;
	if (verify_signed(b->trust, &vp, pub->alert, alert_now_ms(),
	    b->cfg->clock_skew_ms, &a, &signer, &relayed, &reason, why,
	    sizeof(why)) == -1) {
		if (!ack_if_repeat(b, s, pub, reason))
			refuse_publish(b, s, pub->request_id, NULL, reason,
			    why);
		return;
	}
	accept_verified(b, s, envp, &a);
}

/* Results from the verifier threads, in per-session order. */
static void
take_verified(struct broker *b)
{
	struct verify_job *j;
	struct session *s;

	if (b->verifier == NULL)
		return;
	while ((j = verifier_take(b->verifier)) != NULL) {
		s = j->session;
		s->jobs--;
		if (s->dead || s->phase != SESSION_OPEN)
			;	/* gone or refused meanwhile: nothing to answer */
		else if (j->rc == -1) {
			if (!ack_if_repeat(b, s, j->env->publish, j->reason))
				refuse_publish(b, s,
				    j->env->publish->request_id, NULL,
				    j->reason, j->why);
		}
		else
			accept_verified(b, s, &j->env, &j->alert);
		verify_job_free(&j);
	}
}

static int
start_catch_up(struct broker *b, struct session *s, uint64_t after,
    uint64_t request_id)
{
	char err[256];

	replay_free(&s->replay);
	s->replay = replay_new(b->audit, after + 1, 0, UINT64_MAX, 0, 0, 1,
	    request_id, NULL, err, sizeof(err));
	if (s->replay == NULL) {
		log_warnx("%s: cannot resume after seq %" PRIu64 ": %s",
		    s->tag, after, err);
		s->catching_up = 0;
		return -1;
	}
	s->catching_up = 1;
	return 0;
}

static void
handle_subscribe(struct broker *b, struct session *s, Cpx__Envelope **envp)
{
	Cpx__Envelope env = CPX__ENVELOPE__INIT;
	Cpx__Subscribed ok = CPX__SUBSCRIBED__INIT;
	Cpx__Subscribe *sub = (*envp)->subscribe;
	char why[256];
	int reason;

	if (policy_check_subscribe(b->policy, &s->peer, sub->filters,
	    sub->n_filters, 0, &reason, why, sizeof(why)) == -1) {
		if (note_refusal(b, s, CPX__RECORD_KIND__RECORD_REQUEST_REFUSED,
		    reason, why, NULL))
			log_warnx("%s: subscribe refused (%s): %s", s->tag,
			    alert_reason_name(reason), why);
		send_error(b, s, sub->request_id, reason, why);
		check_refusal_limit(b, s, reason);
		return;
	}
	if (s->replay != NULL && !s->replay->catch_up && sub->resume) {
		send_error(b, s, sub->request_id, CPX__REASON__REASON_BAD_REQUEST,
		    "a replay is running on this session; resume after it");
		return;
	}
	/* The catch-up starts at resume_after + 1, which must not wrap. */
	if (sub->resume && sub->resume_after == UINT64_MAX) {
		send_error(b, s, sub->request_id, CPX__REASON__REASON_BAD_REQUEST,
		    "resume_after is the largest sequence possible; nothing "
		    "can follow it");
		return;
	}
	if (s->subscription != NULL)
		cpx__envelope__free_unpacked(s->subscription, NULL);
	s->subscription = *envp;
	*envp = NULL;
	if (s->replay != NULL && s->replay->catch_up) {
		replay_free(&s->replay);
		s->catching_up = 0;
	}
	/*
	 * Without its history a resumed subscription would go live with a
	 * gap: refuse it whole instead, and the node subscribes again.
	 */
	if (sub->resume && sub->n_filters > 0 &&
	    start_catch_up(b, s, sub->resume_after, sub->request_id) == -1) {
		send_error(b, s, sub->request_id, CPX__REASON__REASON_INTERNAL,
		    "cannot read the audit log to resume; nothing was "
		    "subscribed, subscribe again");
		cpx__envelope__free_unpacked(s->subscription, NULL);
		s->subscription = NULL;	/* sub pointed into it */
		return;
	}
	log_info("%s: subscribed with %zu filter(s)%s", s->tag, sub->n_filters,
	    s->catching_up ? ", resuming from history" : "");
	ok.request_id = sub->request_id;
	ok.live_from = audit_last_seq(b->audit);
	env.body_case = CPX__ENVELOPE__BODY_SUBSCRIBED;
	env.subscribed = &ok;
	send_env(b, s, &env);
}

static void
handle_replay(struct broker *b, struct session *s, Cpx__Envelope **envp)
{
	Cpx__ReplayRequest *rq = (*envp)->replay;
	uint64_t last = audit_last_seq(b->audit), to;
	char why[256], err[256];
	int reason;

	if (s->replay != NULL) {
		send_error(b, s, rq->request_id, CPX__REASON__REASON_BAD_REQUEST,
		    "a replay or resume is already running on this session");
		return;
	}
	if (policy_check_subscribe(b->policy, &s->peer, rq->filters,
	    rq->n_filters, rq->all_kinds, &reason, why, sizeof(why)) == -1) {
		if (note_refusal(b, s, CPX__RECORD_KIND__RECORD_REPLAY_REQUESTED,
		    reason, why, NULL))
			log_warnx("%s: replay refused (%s): %s", s->tag,
			    alert_reason_name(reason), why);
		send_error(b, s, rq->request_id, reason, why);
		check_refusal_limit(b, s, reason);
		return;
	}
	to = rq->to_seq != 0 && rq->to_seq < last ? rq->to_seq : last;
	snprintf(why, sizeof(why), "replay from seq %" PRIu64 " to %" PRIu64
	    " time %" PRId64 "..%" PRId64 ", %zu filter(s)%s", rq->from_seq,
	    to, rq->from_time, rq->to_time, rq->n_filters,
	    rq->all_kinds ? ", all record kinds" : "");
	log_info("%s: %s", s->tag, why);
	audit_note(b, s, CPX__RECORD_KIND__RECORD_REPLAY_REQUESTED,
	    CPX__REASON__REASON_NONE, why, NULL);
	s->replay = replay_new(b->audit, rq->from_seq, rq->from_time, to,
	    rq->to_time, rq->all_kinds, 0, rq->request_id, envp, err,
	    sizeof(err));
	if (s->replay == NULL) {
		log_warnx("%s: replay cannot start: %s", s->tag, err);
		send_error(b, s, rq->request_id, CPX__REASON__REASON_INTERNAL,
		    "cannot read the audit log; retry later");
	}
}

static void
handle_ping(struct broker *b, struct session *s, const Cpx__Ping *ping)
{
	Cpx__Envelope env = CPX__ENVELOPE__INIT;
	Cpx__Pong pong = CPX__PONG__INIT;

	pong.nonce = ping->nonce;
	env.body_case = CPX__ENVELOPE__BODY_PONG;
	env.pong = &pong;
	send_env(b, s, &env);
}

/*
 * 1 if one more publish of s may go to the verifier threads now. This
 * bound, not the pipes to the threads (unbounded, see lib/workpool.c), is
 * what holds memory, and the network thread never waits on it: a session
 * over it is parked instead (handle_frames). A quarter of the backlog per
 * session keeps one node that pipelines thousands of publishes from
 * taking every slot.
 */
static int
verify_admits(const struct broker *b, const struct session *s)
{
	if (b->verifier == NULL)
		return 1;
	return verifier_inflight(b->verifier) < b->cfg->verify_backlog &&
	    s->jobs < b->cfg->verify_backlog / 4;
}

/*
 * The next request of s, the parked one first: 1 with *envp (owned by
 * the caller), 0 if none is complete yet, -1 if s was refused for a bad
 * frame.
 */
static int
next_request(struct broker *b, struct session *s, Cpx__Envelope **envp)
{
	const uint8_t *body;
	size_t len;
	char why[256];
	int r, reason;

	*envp = NULL;
	if (s->parked != NULL) {
		*envp = s->parked;
		s->parked = NULL;
		return 1;
	}
	if ((r = tlsconn_next_frame(s->tls, &body, &len)) == 0)
		return 0;
	if (r == -1) {
		log_warnx("%s: %s", s->tag, tlsconn_error(s->tls));
		session_refuse(b->edge, s, CPX__REASON__REASON_TOO_LARGE,
		    "%s (config key max_frame)", tlsconn_error(s->tls));
		return -1;
	}
	if ((*envp = wire_decode(body, len, &reason, why,
	    sizeof(why))) == NULL) {
		log_warnx("%s: bad frame (%s): %s", s->tag,
		    alert_reason_name(reason), why);
		session_refuse(b->edge, s, reason, "bad frame: %s", why);
		return -1;
	}
	return 1;
}

static void
handle_frames(struct broker *b, struct session *s, int64_t now)
{
	Cpx__Envelope *env;

	while (s->phase == SESSION_OPEN && !s->dead &&
	    next_request(b, s, &env) == 1) {
		if (env->body_case == CPX__ENVELOPE__BODY_PUBLISH &&
		    !verify_admits(b, s)) {
			/*
			 * Back-pressure: stop taking this session's requests
			 * until the verifiers catch up. Only if it keeps
			 * sending past a bound meanwhile are its publishes
			 * refused, so its buffered input stays bounded too.
			 */
			if (tlsconn_in_pending(s->tls) <=
			    PARKED_INPUT_FRAMES * (size_t)b->cfg->max_frame) {
				s->parked = env;
				return;
			}
			refuse_publish(b, s, env->publish->request_id, NULL,
			    CPX__REASON__REASON_OVERLOADED, "the broker's "
			    "verification backlog is full (config key "
			    "verify_backlog); retry later");
			cpx__envelope__free_unpacked(env, NULL);
			continue;
		}
		switch (env->body_case) {
		case CPX__ENVELOPE__BODY_PUBLISH:
			handle_publish(b, s, &env, now);
			break;
		case CPX__ENVELOPE__BODY_SUBSCRIBE:
			handle_subscribe(b, s, &env);
			break;
		case CPX__ENVELOPE__BODY_REPLAY:
			handle_replay(b, s, &env);
			break;
		case CPX__ENVELOPE__BODY_PING:
			handle_ping(b, s, env->ping);
			break;
		case CPX__ENVELOPE__BODY_PONG:
			break;
		default:
			log_warnx("%s: unexpected message kind %d from a node",
			    s->tag, env->body_case);
			session_refuse(b->edge, s, CPX__REASON__REASON_BAD_REQUEST,
			    "message kind %d is not sent by nodes",
			    env->body_case);
			break;
		}
		if (env != NULL)
			cpx__envelope__free_unpacked(env, NULL);
	}
}

/* Sessions parked on a full verify backlog go on where there is room. */
static void
resume_parked(struct broker *b, int64_t now)
{
	struct session *s;

	if (b->verifier == NULL)
		return;
	for (s = edge_sessions(b->edge); s != NULL; s = s->next)
		if (s->parked != NULL && verify_admits(b, s))
			handle_frames(b, s, now);
}

/*
 * 1 (and s refused) if the node of s may not open one more session now:
 * it is kept out after too many refusals, or it already holds
 * max_sessions_per_node sessions (one certificate must not take every
 * slot of the broker).
 */
static int
node_kept_out(struct broker *b, struct session *s)
{
	struct refusal_source src = { s->peer.country, s->peer.node, s->addr };
	const struct session *o;
	uint32_t n = 0;
	int64_t left;

	if ((left = refusals_banned(b->refusals, &src, edge_now_ms())) > 0) {
		session_refuse(b->edge, s, CPX__REASON__REASON_SESSION_LIMIT,
		    "node %s/%s is kept out for %lld more s after too many "
		    "refused requests", s->peer.country, s->peer.node,
		    (long long)(left + 999) / 1000);
		return 1;
	}
	for (o = edge_sessions(b->edge); o != NULL; o = o->next)
		if (o != s && o->welcomed && o->phase == SESSION_OPEN &&
		    strcmp(o->peer.country, s->peer.country) == 0 &&
		    strcmp(o->peer.node, s->peer.node) == 0)
			n++;
	if (n < b->cfg->max_sessions_per_node)
		return 0;
	session_refuse(b->edge, s, CPX__REASON__REASON_SESSION_LIMIT,
	    "node %s/%s already has %u sessions open (config key "
	    "max_sessions_per_node)", s->peer.country, s->peer.node, n);
	return 1;
}

static void
welcome(struct broker *b, struct session *s, int64_t now)
{
	Cpx__Envelope env = CPX__ENVELOPE__INIT;
	Cpx__Welcome w = CPX__WELCOME__INIT;
	const struct identity *peer = tlsconn_peer(s->tls);

	if (peer == NULL || peer->country[0] == '\0') {
		session_refuse(b->edge, s, CPX__REASON__REASON_BAD_SIGNER,
		    "certificate has no usable country/node identity");
		return;
	}
	s->peer = *peer;
	snprintf(s->tag, sizeof(s->tag), "s%" PRIu64 " %s/%s", s->id,
	    s->peer.country, s->peer.node);
	if (node_kept_out(b, s))
		return;
	policy_rights(b->policy, &s->peer, &s->rights);
	if (!s->rights.publish && !s->rights.subscribe && !s->rights.audit) {
		log_warnx("%s: refused: no rights in the policy (%s)", s->tag,
		    b->cfg->policy);
		session_refuse(b->edge, s, CPX__REASON__REASON_NOT_AUTHORIZED,
		    "node %s/%s has no rights in the broker's policy",
		    s->peer.country, s->peer.node);
		return;
	}
	w.broker_name = b->name;
	w.country = s->peer.country;
	w.node = s->peer.node;
	w.may_publish = s->rights.publish;
	w.may_subscribe = s->rights.subscribe;
	w.may_audit = s->rights.audit;
	w.last_seq = audit_last_seq(b->audit);
	w.max_frame = b->cfg->max_frame;
	/*
	 * Whole seconds on the wire: round up, never to 0, which a client
	 * takes as "use your default" (30 s) and then misses a sub-second
	 * idle timeout. edge_tick() allows three rounded intervals.
	 */
	w.ping_interval = (b->cfg->ping_interval_ms + 999) / 1000;
	env.body_case = CPX__ENVELOPE__BODY_WELCOME;
	env.welcome = &w;
	send_env(b, s, &env);
	session_open(b->edge, s);
	b->stats.sessions++;
	log_info("%s: session opened from %s (publish=%d subscribe=%d "
	    "audit=%d)", s->tag, s->addr, s->rights.publish,
	    s->rights.subscribe, s->rights.audit);
	audit_note(b, s, CPX__RECORD_KIND__RECORD_SESSION_OPENED,
	    CPX__REASON__REASON_NONE, "", NULL);
	handle_frames(b, s, now);	/* requests sent right after Finished */
}

static void
take_closed(struct broker *b)
{
	struct edge_event ev;
	struct session *s;

	while (edge_take_closed(b->edge, &ev)) {
		s = ev.session;
		replay_free(&s->replay);
		if (ev.kind == EDGE_CLOSED) {
			log_info("%s: session closed: %s", s->tag,
			    s->close_why[0] ? s->close_why : "closed");
			audit_note(b, s, CPX__RECORD_KIND__RECORD_SESSION_CLOSED,
			    s->close_reason, s->close_why, NULL);
		} else if (s->peer.country[0] != '\0' &&
		    s->close_reason != CPX__REASON__REASON_SESSION_LIMIT) {
			/* An authenticated node: on record one by one. */
			log_warnx("%s: session refused (%s): %s", s->tag,
			    alert_reason_name(s->close_reason),
			    s->close_why[0] ? s->close_why : "closed");
			audit_note(b, s,
			    CPX__RECORD_KIND__RECORD_SESSION_REFUSED,
			    s->close_reason, s->close_why, NULL);
		} else if (note_refusal(b, s,
		    CPX__RECORD_KIND__RECORD_SESSION_REFUSED, s->close_reason,
		    s->close_why[0] ? s->close_why : "closed", NULL)) {
			/*
			 * Before authentication anyone can cause these:
			 * counted per address and summarised.
			 */
			log_warnx("%s: session refused (%s): %s", s->tag,
			    alert_reason_name(s->close_reason),
			    s->close_why[0] ? s->close_why : "closed");
		}
	}
}

static void
pending_clear(struct broker *b)
{
	size_t i;

	for (i = 0; i < b->npending; i++) {
		if (b->pending[i].env != NULL)
			cpx__envelope__free_unpacked(b->pending[i].env, NULL);
		if (b->pending[i].alert != NULL)
			cpx__alert__free_unpacked(b->pending[i].alert, NULL);
	}
	b->npending = 0;
}

/* Group commit: one fsync for the turn, then acks and deliveries. */
static void
commit_turn(struct broker *b)
{
	struct dedup_entry *de;
	struct pending *p;
	char err[256], why[400];
	size_t i;

	if (audit_pending(b->audit) == 0 && b->npending == 0)
		return;
	if (audit_commit(b->audit, err, sizeof(err)) == -1) {
		log_warnx("%s; refusing %zu publish(es) of this turn", err,
		    b->npending);
		snprintf(why, sizeof(why), "audit log cannot be written (%s); "
		    "nothing was accepted, retry later", err);
		for (i = 0; i < b->npending; i++) {
			p = &b->pending[i];
			if (!p->duplicate)
				dedup_remove(b->dedup, p->alert->origin,
				    p->alert_id);
			if (!p->session->dead)
				send_error(b, p->session, p->request_id,
				    CPX__REASON__REASON_STORAGE, why);
		}
		b->stats.refused += b->npending;
		pending_clear(b);
		return;
	}
	b->stats.commits++;
	for (i = 0; i < b->npending; i++) {
		p = &b->pending[i];
		if (!p->duplicate) {
			if ((de = dedup_find(b->dedup, p->alert->origin,
			    p->alert_id)) != NULL)
				de->pending = 0;
			b->stats.accepted++;
			b->stats.deliveries += route_publish(b->edge, b->policy,
			    p->env->publish->alert, p->alert, p->seq,
			    p->time ? p->time : alert_now_ms());
			log_debug("%s: alert %s accepted as seq %" PRIu64,
			    p->session->tag, p->alert_id, p->seq);
		}
		if (!p->session->dead)
			send_ack(b, p->session, p->request_id, p->seq,
			    p->alert_id, p->duplicate);
	}
	pending_clear(b);
}

static void
send_record(struct broker *b, struct session *s, struct replay *r,
    Cpx__AuditRecord *rec)
{
	Cpx__Envelope env = CPX__ENVELOPE__INIT;
	Cpx__Delivery d = CPX__DELIVERY__INIT;

	if (r->all_kinds) {
		env.body_case = CPX__ENVELOPE__BODY_AUDIT_RECORD;
		env.audit_record = rec;
	} else {
		d.seq = rec->seq;
		d.accepted_at = rec->time;
		d.alert = rec->alert;
		d.replayed = 1;
		d.request_id = r->catch_up ? 0 : r->request_id;
		env.body_case = CPX__ENVELOPE__BODY_DELIVERY;
		env.delivery = &d;
	}
	send_env(b, s, &env);
}

static void
replay_done(struct broker *b, struct session *s)
{
	Cpx__Envelope env = CPX__ENVELOPE__INIT;
	Cpx__ReplayEnd end = CPX__REPLAY_END__INIT;
	struct replay *r = s->replay;

	if (r->catch_up) {
		log_info("%s: caught up (%" PRIu64 " alert(s) from history), "
		    "now live", s->tag, r->count);
		s->catching_up = 0;
	} else {
		log_info("%s: replay %" PRIu64 " done: %" PRIu64 " record(s)",
		    s->tag, r->request_id, r->count);
		end.request_id = r->request_id;
		end.count = r->count;
		end.last_seq = r->last_seq;
		env.body_case = CPX__ENVELOPE__BODY_REPLAY_END;
		env.replay_end = &end;
		send_env(b, s, &env);
	}
	replay_free(&s->replay);
}

/*
 * Stop r (on s) if a reload took away the right it runs under: a replay
 * started under yesterday's policy must not go on serving history today's
 * denies. 1 if it was stopped.
 */
static int
replay_revoked(struct broker *b, struct session *s, struct replay *r)
{
	char why[256];

	if (replay_allowed(r, s))
		return 0;
	snprintf(why, sizeof(why), "node %s/%s no longer has the %s right; "
	    "%s stopped", s->peer.country, s->peer.node,
	    !s->rights.subscribe ? "subscribe" : "audit",
	    r->catch_up ? "resume" : "replay");
	log_warnx("%s: %s", s->tag, why);
	send_error(b, s, r->request_id, CPX__REASON__REASON_NOT_AUTHORIZED,
	    why);
	audit_note(b, s, CPX__RECORD_KIND__RECORD_REQUEST_REFUSED,
	    CPX__REASON__REASON_NOT_AUTHORIZED, why, NULL);
	s->catching_up = 0;
	replay_free(&s->replay);
	return 1;
}

/*
 * Feed replays as far as each session's queue allows; 1 if work remains.
 * The work is bounded by records read, not sent: a replay whose filters
 * match nothing would otherwise read the whole log in one turn while
 * every other node waits for its ack. Each replaying session reads at
 * most REPLAY_BATCH records a turn, and an equal share of
 * REPLAY_TURN_READS when many replay at once (never under
 * REPLAY_MIN_READS, so each one progresses).
 */
static int
pump_replays(struct broker *b)
{
	Cpx__Filter *const *filters;
	Cpx__AuditRecord *rec;
	struct session *s;
	struct replay *r;
	size_t nfilters, nrun = 0;
	unsigned int share, budget;
	char err[256];
	int busy = 0, rc;

	for (s = edge_sessions(b->edge); s != NULL; s = s->next)
		if (s->replay != NULL && s->phase == SESSION_OPEN)
			nrun++;
	if (nrun == 0)
		return 0;
	share = REPLAY_TURN_READS / nrun;
	if (share > REPLAY_BATCH)
		share = REPLAY_BATCH;
	if (share < REPLAY_MIN_READS)
		share = REPLAY_MIN_READS;
	for (s = edge_sessions(b->edge); s != NULL; s = s->next) {
		if ((r = s->replay) == NULL || s->phase != SESSION_OPEN)
			continue;
		if (replay_revoked(b, s, r))
			continue;
		if (r->catch_up) {
			filters = s->subscription->subscribe->filters;
			nfilters = s->subscription->subscribe->n_filters;
		} else {
			filters = r->req->replay->filters;
			nfilters = r->req->replay->n_filters;
		}
		budget = share;
		for (;;) {
			/*
			 * History waits while this session, or the broker as
			 * a whole (queue_budget), has much queued: live
			 * traffic keeps the other half.
			 */
			if (session_queued(s) > b->cfg->outbound_queue / 2 ||
			    edge_queued(b->edge) > b->cfg->queue_budget / 2)
				break;
			rc = replay_next(r, b->policy, s, filters, nfilters,
			    &budget, &rec, err, sizeof(err));
			if (rc == 1) {
				send_record(b, s, r, rec);
				cpx__audit_record__free_unpacked(rec, NULL);
				continue;
			}
			if (rc == 0)
				replay_done(b, s);
			else if (rc == -1) {
				log_warnx("%s: replay stopped: %s", s->tag, err);
				send_error(b, s, r->request_id,
				    CPX__REASON__REASON_INTERNAL,
				    "audit log read error; retry later");
				s->catching_up = 0;
				replay_free(&s->replay);
			}
			break;		/* REPLAY_YIELD: the next turn */
		}
		if (s->replay != NULL)
			busy = 1;
	}
	return busy;
}

static void
maybe_checkpoint(struct broker *b, int64_t now)
{
	if (b->since_checkpoint == 0)
		return;
	if (b->since_checkpoint < b->cfg->checkpoint_records &&
	    now - b->last_checkpoint_ms < (int64_t)b->cfg->checkpoint_interval_ms)
		return;
	if (audit_checkpoint(b->audit) == -1)
		log_warnx("audit: checkpoint could not be appended");
	b->since_checkpoint = 0;
	b->last_checkpoint_ms = now;
}

/*
 * Once a minute, one line for the engineer on call: what the broker is
 * doing and whether anything is refused.
 */
static void
maybe_log_stats(struct broker *b, int64_t now)
{
	struct broker_stats *st = &b->stats, *last = &b->stats_logged;

	if (now - b->last_stats_ms < STATS_MS)
		return;
	b->last_stats_ms = now;
	if (st->accepted == last->accepted && st->refused == last->refused &&
	    st->sessions == last->sessions)
		return;		/* nothing happened: stay quiet */
	log_info("stats: %zu session(s); last minute: %" PRIu64 " accepted, %"
	    PRIu64 " refused, %" PRIu64 " deliveries, %" PRIu64 " sessions "
	    "opened; last seq %" PRIu64, edge_count(b->edge),
	    st->accepted - last->accepted, st->refused - last->refused,
	    st->deliveries - last->deliveries, st->sessions - last->sessions,
	    audit_last_seq(b->audit));
	*last = *st;
}

static void
dispatch(struct broker *b, struct edge_event *ev, int64_t now)
{
	switch (ev->kind) {
	case EDGE_VERIFIED:
		welcome(b, ev->session, now);
		break;
	case EDGE_FRAMES:
		handle_frames(b, ev->session, now);
		break;
	default:
		break;
	}
}

/* One loop turn after poll. Returns 1 if there is more work right now. */
static int
turn(struct broker *b)
{
	struct edge_event ev;
	int64_t now = edge_now_ms();
	int i, rc, busy;

	/* Results first: they make room for what is parked and read now. */
	take_verified(b);
	resume_parked(b, now);
	for (i = 0; i < TURN_MAX_MESSAGES; i++) {
		if ((rc = edge_recv(b->edge, now, &ev)) <= 0)
			break;
		dispatch(b, &ev, now);
	}
	busy = i == TURN_MAX_MESSAGES;
	take_verified(b);
	take_closed(b);
	(void)refusals_flush(b->refusals, now, b->cfg->refusal_interval_ms,
	    write_summary, b);
	maybe_checkpoint(b, now);
	maybe_log_stats(b, now);
	commit_turn(b);
	busy |= pump_replays(b);
	edge_tick(b->edge, now);
	take_closed(b);
	edge_reap(b->edge);
	return busy || edge_has_backlog(b->edge);
}

/* Wait for the edge socket or verifier results, at most timeout_ms. */
static int
wait_input(struct broker *b, long timeout_ms)
{
	zmq_pollitem_t items[2];
	int n = 1;

	memset(items, 0, sizeof(items));
	items[0].socket = edge_socket(b->edge);
	items[0].events = ZMQ_POLLIN;
	if (b->verifier != NULL) {
		items[1].socket = verifier_socket(b->verifier);
		items[1].events = ZMQ_POLLIN;
		n = 2;
	}
	if (zmq_poll(items, n, timeout_ms) == -1 && errno != EINTR) {
		log_warnx("zmq_poll: %s", zmq_strerror(errno));
		return -1;
	}
	return 0;
}

int
broker_run(struct broker *b)
{
	struct session *s;
	int64_t until;
	int busy = 0;

	log_info("listening on %s as %s (policy %s, audit %s, last seq %"
	    PRIu64 ", %u verifier thread(s))", b->cfg->listen, b->name,
	    b->cfg->policy, b->cfg->audit_dir, audit_last_seq(b->audit),
	    b->cfg->verify_threads);
	while (!*b->stop) {
		if (wait_input(b, busy ? 1 : 100) == -1)
			return -1;
		if (*b->reload) {
			*b->reload = 0;
			broker_reload(b);
		}
		busy = turn(b);
	}
	/* Publishes being verified are answered before anyone is closed. */
	until = edge_now_ms() + DRAIN_MS;
	while (b->verifier != NULL && verifier_inflight(b->verifier) > 0 &&
	    edge_now_ms() < until) {
		(void)wait_input(b, 10);
		(void)turn(b);
	}
	log_info("shutting down: closing %zu session(s)", edge_count(b->edge));
	for (s = edge_sessions(b->edge); s != NULL; s = s->next)
		session_refuse(b->edge, s, CPX__REASON__REASON_SHUTTING_DOWN,
		    "broker shutting down; reconnect later");
	until = edge_now_ms() + DRAIN_MS;
	while (edge_count(b->edge) > 0 && edge_now_ms() < until) {
		(void)wait_input(b, 10);
		(void)turn(b);
	}
	take_closed(b);
	(void)refusals_flush(b->refusals, edge_now_ms(), 0, write_summary, b);
	commit_turn(b);
	log_info("stopped: %" PRIu64 " accepted, %" PRIu64 " duplicate(s), %"
	    PRIu64 " refused, %" PRIu64 " deliveries, last seq %" PRIu64,
	    b->stats.accepted, b->stats.duplicates, b->stats.refused,
	    b->stats.deliveries, audit_last_seq(b->audit));
	return 0;
}

/* Rebuild the duplicate index from every accepted alert in the log. */
static int
load_dedup(struct broker *b, char *err, size_t errlen)
{
	struct audit_cursor *c;
	Cpx__AuditRecord *rec;
	Cpx__Alert *a;
	uint8_t hash[DEDUP_HASH_LEN];
	int rc;

	if ((b->dedup = dedup_new()) == NULL) {
		snprintf(err, errlen, "out of memory or no random bytes");
		return -1;
	}
	if ((c = audit_cursor_new(b->audit, 1, 0, err, errlen)) == NULL)
		return -1;
	while ((rc = audit_cursor_next(c, &rec, err, errlen)) == 1) {
		a = NULL;
		/* The key is (origin, id): the origin is in the alert bytes. */
		if (rec->kind == CPX__RECORD_KIND__RECORD_ALERT_ACCEPTED &&
		    rec->alert != NULL && rec->alert_id[0] != '\0' &&
		    ((a = cpx__alert__unpack(NULL, rec->alert->alert.len,
		    rec->alert->alert.data)) == NULL || a->origin == NULL)) {
			snprintf(err, errlen, "%s: accepted alert at seq %"
			    PRIu64 " does not decode; run cpx-audit verify",
			    b->cfg->audit_dir, rec->seq);
			rc = -1;
		} else if (a != NULL &&
		    dedup_find(b->dedup, a->origin, rec->alert_id) == NULL) {
			dedup_hash(rec->alert->alert.data,
			    rec->alert->alert.len, hash);
			if (dedup_add(b->dedup, a->origin, rec->alert_id,
			    rec->seq, hash, 0) == NULL) {
				snprintf(err, errlen, "out of memory");
				rc = -1;
			}
		}
		if (a != NULL)
			cpx__alert__free_unpacked(a, NULL);
		cpx__audit_record__free_unpacked(rec, NULL);
		if (rc == -1)
			break;
	}
	audit_cursor_free(&c);
	return rc == 0 ? 0 : -1;
}

int
broker_init(struct broker *b, struct config *cfg, char *err, size_t errlen)
{
	struct tls_files files;
	char sub[CPX_MAX_NODE_NAME + 1];

	b->cfg = cfg;
	files.ca = cfg->ca;
	files.cert = cfg->cert;
	files.key = cfg->key;
	files.crl = cfg->crl;
	if ((b->key = tlsctx_load_key(cfg->key, err, errlen)) == NULL ||
	    (b->cert = tlsctx_load_cert(cfg->cert, err, errlen)) == NULL)
		return -1;
	if (X509_NAME_get_text_by_NID(X509_get_subject_name(b->cert),
	    NID_commonName, sub, sizeof(sub)) <= 0)
		snprintf(sub, sizeof(sub), "cpx-broker");
	memcpy(b->name, sub, sizeof(b->name));
	if ((b->ssl_ctx = tlsctx_new(&files, 1, err, errlen)) == NULL)
		return -1;
	if ((b->trust = trust_new(cfg->ca, cfg->crl, err, errlen)) == NULL)
		return -1;
	/* One store, one CRL for connections and signatures alike. */
	if (tlsctx_use_store(b->ssl_ctx, trust_store(b->trust)) == -1) {
		snprintf(err, errlen, "%s: cannot use the trust store", cfg->ca);
		return -1;
	}
	if ((b->policy = policy_load(cfg->policy, err, errlen)) == NULL)
		return -1;
	if ((b->audit = audit_open(cfg->audit_dir, b->key, b->cert, err,
	    errlen)) == NULL)
		return -1;
	if (load_dedup(b, err, errlen) == -1)
		return -1;
	log_info("audit log %s: last seq %" PRIu64 ", %zu alert id(s) known",
	    cfg->audit_dir, audit_last_seq(b->audit), dedup_count(b->dedup));
	if ((b->zctx = zmq_ctx_new()) == NULL) {
		snprintf(err, errlen, "zmq_ctx_new: %s", zmq_strerror(errno));
		return -1;
	}
	/*
	 * Session ids start past the log's last sequence: every session
	 * leaves at least one record, so ids never repeat across restarts
	 * and an audit record's session id names one session.
	 */
	if ((b->edge = edge_new(b->zctx, b->ssl_ctx, cfg,
	    audit_last_seq(b->audit) + 1, err, errlen)) == NULL)
		return -1;
	if ((b->ratelimit = ratelimit_new(cfg->publish_rate,
	    cfg->publish_burst)) == NULL ||
	    (b->refusals = refusals_new()) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (cfg->verify_threads > 0 && (b->verifier = verifier_new(b->zctx,
	    cfg->verify_threads, cfg->ca, cfg->crl, err, errlen)) == NULL)
		return -1;
	b->last_checkpoint_ms = b->last_stats_ms = edge_now_ms();
	return 0;
}

void
broker_reload(struct broker *b)
{
	struct policy *np;
	struct session *s;
	const uint8_t *der;
	X509 *cert;
	size_t len;
	char err[256], why[256];
	int reason;

	log_info("SIGHUP: reloading CRL %s and policy %s", b->cfg->crl,
	    b->cfg->policy);
	/*
	 * The trust store vets the new CRL (the CA's, current, not older
	 * than the one in force) before anything uses it, and the TLS
	 * context then takes that very store, so connections and signature
	 * checks never end up on different CRLs.
	 */
	if (trust_reload_crl(b->trust, b->cfg->crl, err, sizeof(err)) == -1)
		log_warnx("reload: %s; the previous CRL stays in force", err);
	else if (tlsctx_use_store(b->ssl_ctx, trust_store(b->trust)) == -1)
		log_warnx("reload: the TLS context could not take the new CRL");
	else if (b->verifier != NULL &&
	    verifier_reload_crl(b->verifier, b->cfg->crl) == -1)
		log_warnx("reload: the verifier threads could not be told");
	if ((np = policy_load(b->cfg->policy, err, sizeof(err))) == NULL)
		log_warnx("reload: %s; the previous policy stays in force",
		    err);
	else {
		policy_free(&b->policy);
		b->policy = np;
	}
	for (s = edge_sessions(b->edge); s != NULL; s = s->next) {
		if (!s->welcomed || s->phase == SESSION_CLOSING)
			continue;
		der = tlsconn_peer_cert_der(s->tls, &len);
		cert = der ? d2i_X509(NULL, &der, (long)len) : NULL;
		if (cert == NULL || trust_verify_cert(b->trust, cert, &reason,
		    why, sizeof(why)) == -1) {
			log_warnx("%s: certificate no longer valid (%s), "
			    "disconnecting", s->tag, cert ? why : "unreadable");
			/*
			 * An expired CRL says nothing about this node: never
			 * call that a revocation (a node gives up for good on
			 * one), but a reason to come back once it is renewed.
			 */
			if (cert != NULL &&
			    reason == CPX__REASON__REASON_CRL_STALE)
				session_refuse(b->edge, s, reason, "the broker's "
				    "CRL has expired; the CA must publish a "
				    "new one");
			else
				session_refuse(b->edge, s,
				    CPX__REASON__REASON_CERT_REVOKED,
				    "your certificate is no longer accepted: %s",
				    cert ? why : "unreadable");
			X509_free(cert);
			continue;
		}
		X509_free(cert);
		policy_rights(b->policy, &s->peer, &s->rights);
		if (!s->rights.publish && !s->rights.subscribe &&
		    !s->rights.audit)
			session_refuse(b->edge, s, CPX__REASON__REASON_NOT_AUTHORIZED,
			    "the policy no longer grants node %s/%s any right",
			    s->peer.country, s->peer.node);
	}
}

void
broker_free(struct broker *b)
{
	struct session *s;

	pending_clear(b);
	free(b->pending);
	/* Before the sessions go: returned jobs only point at them. */
	verifier_free(&b->verifier);
	if (b->edge != NULL)
		for (s = edge_sessions(b->edge); s != NULL; s = s->next)
			replay_free(&s->replay);
	edge_free(&b->edge);
	if (b->zctx != NULL)
		zmq_ctx_term(b->zctx);
	audit_close(&b->audit);
	dedup_free(&b->dedup);
	ratelimit_free(&b->ratelimit);
	refusals_free(&b->refusals);
	policy_free(&b->policy);
	trust_free(&b->trust);
	SSL_CTX_free(b->ssl_ctx);
	EVP_PKEY_free(b->key);
	X509_free(b->cert);
	memset(b, 0, sizeof(*b));
}
