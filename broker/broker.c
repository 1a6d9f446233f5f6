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

/* The one place a publish is refused: answer, log, audit. */
static void
refuse_publish(struct broker *b, struct session *s, uint64_t request_id,
    const char *alert_id, int reason, const char *why)
{
	b->stats.refused++;
	log_warnx("%s: publish %s refused (%s): %s", s->tag,
	    alert_id ? alert_id : "?", alert_reason_name(reason), why);
	send_error(b, s, request_id, reason, why);
	audit_note(b, s, CPX__RECORD_KIND__RECORD_PUBLISH_REFUSED, reason,
	    why, alert_id);
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
 * policy, duplicates, the audit append. Takes over *envp and *ap.
 */
static void
accept_verified(struct broker *b, struct session *s, Cpx__Envelope **envp,
    Cpx__Alert **ap)
{
	Cpx__Envelope *env = *envp;
	Cpx__Publish *pub = env->publish;
	Cpx__Alert *a = *ap;
	Cpx__AuditRecord rec = CPX__AUDIT_RECORD__INIT;
	uint8_t hash[DEDUP_HASH_LEN];
	struct dedup_entry *de;
	struct pending *p;
	char why[256];
	int reason;

	*ap = NULL;
	if (policy_check_publish(b->policy, &s->peer, a, &reason, why,
	    sizeof(why)) == -1) {
		refuse_publish(b, s, pub->request_id, a->id, reason, why);
		goto done;
	}
	dedup_hash(pub->alert->alert.data, pub->alert->alert.len, hash);
	if ((de = dedup_find(b->dedup, a->id)) != NULL) {
		if (CRYPTO_memcmp(de->hash, hash, sizeof(hash)) != 0) {
			snprintf(why, sizeof(why), "alert id %s was accepted "
			    "before (seq %" PRIu64 ") with different content",
			    a->id, de->seq);
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
	rec.kind = CPX__RECORD_KIND__RECORD_ALERT_ACCEPTED;
	rec.peer_country = s->peer.country;
	rec.peer_node = s->peer.node;
	rec.peer_address = s->addr;
	rec.session_id = s->id;
	rec.alert = pub->alert;
	rec.alert_id = a->id;
	rec.text = "";
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
	if (dedup_add(b->dedup, a->id, p->seq, hash, 1) == NULL)
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

	if (b->verifier == NULL || (job = calloc(1, sizeof(*job))) == NULL)
		return -1;
	job->session = s;
	job->session_id = s->id;
	job->env = *envp;
	job->peer = s->peer;
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

static void
handle_publish(struct broker *b, struct session *s, Cpx__Envelope **envp,
    int64_t now)
{
	Cpx__Publish *pub = (*envp)->publish;
	struct identity signer;
	Cpx__Alert *a = NULL;
	char why[256];
	int reason;

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
	if (verify_signed(b->trust, &s->peer, pub->alert, alert_now_ms(),
	    b->cfg->clock_skew_ms, &a, &signer, &reason, why,
	    sizeof(why)) == -1) {
		refuse_publish(b, s, pub->request_id, NULL, reason, why);
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
		else if (j->rc == -1)
			refuse_publish(b, s, j->env->publish->request_id, NULL,
			    j->reason, j->why);
		else
			accept_verified(b, s, &j->env, &j->alert);
		verify_job_free(&j);
	}
}

static void
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
		send_error(b, s, request_id, CPX__REASON__REASON_INTERNAL,
		    "cannot read the audit log to resume; retry");
		s->catching_up = 0;
		return;
	}
	s->catching_up = 1;
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
		log_warnx("%s: subscribe refused (%s): %s", s->tag,
		    alert_reason_name(reason), why);
		send_error(b, s, sub->request_id, reason, why);
		audit_note(b, s, CPX__RECORD_KIND__RECORD_REQUEST_REFUSED,
		    reason, why, NULL);
		return;
	}
	if (s->replay != NULL && !s->replay->catch_up && sub->resume) {
		send_error(b, s, sub->request_id, CPX__REASON__REASON_BAD_REQUEST,
		    "a replay is running on this session; resume after it");
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
	if (sub->resume && sub->n_filters > 0)
		start_catch_up(b, s, sub->resume_after, sub->request_id);
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
		log_warnx("%s: replay refused (%s): %s", s->tag,
		    alert_reason_name(reason), why);
		send_error(b, s, rq->request_id, reason, why);
		audit_note(b, s, CPX__RECORD_KIND__RECORD_REPLAY_REQUESTED,
		    reason, why, NULL);
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

static void
handle_frames(struct broker *b, struct session *s, int64_t now)
{
	Cpx__Envelope *env;
	const uint8_t *body;
	size_t len;
	char why[256];
	int r, reason;

	while (s->phase == SESSION_OPEN && !s->dead &&
	    (r = tlsconn_next_frame(s->tls, &body, &len)) != 0) {
		if (r == -1) {
			log_warnx("%s: %s", s->tag, tlsconn_error(s->tls));
			session_refuse(b->edge, s, CPX__REASON__REASON_TOO_LARGE,
			    "%s (config key max_frame)", tlsconn_error(s->tls));
			return;
		}
		if ((env = wire_decode(body, len, &reason, why,
		    sizeof(why))) == NULL) {
			log_warnx("%s: bad frame (%s): %s", s->tag,
			    alert_reason_name(reason), why);
			session_refuse(b->edge, s, reason, "bad frame: %s",
			    why);
			return;
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
		} else {
			log_warnx("%s: session refused (%s): %s", s->tag,
			    alert_reason_name(s->close_reason),
			    s->close_why[0] ? s->close_why : "closed");
			audit_note(b, s,
			    CPX__RECORD_KIND__RECORD_SESSION_REFUSED,
			    s->close_reason, s->close_why, NULL);
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
				dedup_remove(b->dedup, p->alert_id);
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
			if ((de = dedup_find(b->dedup, p->alert_id)) != NULL)
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

/* Feed replays as far as each session's queue allows; 1 if work remains. */
static int
pump_replays(struct broker *b)
{
	Cpx__Filter *const *filters;
	Cpx__AuditRecord *rec;
	struct session *s;
	struct replay *r;
	size_t nfilters;
	char err[256];
	int busy = 0, n, rc;

	for (s = edge_sessions(b->edge); s != NULL; s = s->next) {
		if ((r = s->replay) == NULL || s->phase != SESSION_OPEN)
			continue;
		if (r->catch_up) {
			filters = s->subscription->subscribe->filters;
			nfilters = s->subscription->subscribe->n_filters;
		} else {
			filters = r->req->replay->filters;
			nfilters = r->req->replay->n_filters;
		}
		for (n = 0; n < REPLAY_BATCH; n++) {
			if (session_queued(s) > b->cfg->outbound_queue / 2) {
				busy = 1;
				break;
			}
			rc = replay_next(r, b->policy, &s->peer, filters,
			    nfilters, &rec, err, sizeof(err));
			if (rc == 1) {
				send_record(b, s, r, rec);
				cpx__audit_record__free_unpacked(rec, NULL);
				continue;
			}
			if (rc == 0)
				replay_done(b, s);
			else {
				log_warnx("%s: replay stopped: %s", s->tag, err);
				send_error(b, s, r->request_id,
				    CPX__REASON__REASON_INTERNAL,
				    "audit log read error; retry later");
				s->catching_up = 0;
				replay_free(&s->replay);
			}
			break;
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

	for (i = 0; i < TURN_MAX_MESSAGES; i++) {
		if ((rc = edge_recv(b->edge, now, &ev)) <= 0)
			break;
		dispatch(b, &ev, now);
	}
	busy = i == TURN_MAX_MESSAGES;
	take_verified(b);
	take_closed(b);
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
	uint8_t hash[DEDUP_HASH_LEN];
	int rc;

	if ((b->dedup = dedup_new()) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if ((c = audit_cursor_new(b->audit, 1, 0, err, errlen)) == NULL)
		return -1;
	while ((rc = audit_cursor_next(c, &rec, err, errlen)) == 1) {
		if (rec->kind == CPX__RECORD_KIND__RECORD_ALERT_ACCEPTED &&
		    rec->alert != NULL && rec->alert_id[0] != '\0' &&
		    dedup_find(b->dedup, rec->alert_id) == NULL) {
			dedup_hash(rec->alert->alert.data,
			    rec->alert->alert.len, hash);
			if (dedup_add(b->dedup, rec->alert_id, rec->seq, hash,
			    0) == NULL)
				rc = -1;
		}
		cpx__audit_record__free_unpacked(rec, NULL);
		if (rc == -1) {
			snprintf(err, errlen, "out of memory");
			break;
		}
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
	    cfg->publish_burst)) == NULL) {
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
	 * The trust store checks the new CRL is the CA's before anything
	 * uses it, so the TLS context and the signature checks never end
	 * up on different CRLs.
	 */
	if (trust_reload_crl(b->trust, b->cfg->crl, err, sizeof(err)) == -1 ||
	    tlsctx_reload_crl(b->ssl_ctx, b->cfg->ca, b->cfg->crl, err,
	    sizeof(err)) == -1)
		log_warnx("reload: %s; the previous CRL stays in force", err);
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
			session_refuse(b->edge, s, CPX__REASON__REASON_CERT_REVOKED,
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
	policy_free(&b->policy);
	trust_free(&b->trust);
	SSL_CTX_free(b->ssl_ctx);
	EVP_PKEY_free(b->key);
	X509_free(b->cert);
	memset(b, 0, sizeof(*b));
}
