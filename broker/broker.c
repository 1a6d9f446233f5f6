/*
 * broker.c: the dispatcher's core and the event loop. Owns the broker
 * context built by broker_init(): TLS context, trust store, policy, audit
 * log, duplicate index, the edge, the verifier threads. One turn: read
 * what the edge has and decide on each request (publishes go to
 * publish.c, new sessions to peer.c), append to the audit log, commit
 * (batch.c: group commit, one batch in flight while the next gathers)
 * and only once it holds acknowledge and deliver (route.c; records other
 * brokers wrote to a shared log come in order through tail.c), then
 * feed replays (replay.c) and answer witnesses
 * (witness.c), and let the edge flush and time out. Subscribe, replay
 * and ping requests are answered here; SIGHUP's reload too.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/x509.h>
#include <zmq.h>

#include "alert.h"
#include "broker_impl.h"
#include "clock.h"
#include "cpx_limits.h"
#include "cpx_version.h"
#include "health.h"
#include "log.h"
#include "logrl.h"
#include "metrics.h"
#include "notify.h"
#include "ratelimit.h"
#include "refusals.h"
#include "replay.h"
#include "tlsctx.h"
#include "verifier.h"
#include "wire.h"
#include "witness.h"

#define TURN_MAX_MESSAGES	2048
#define DRAIN_MS		2000
#define STATS_MS		60000
#define STATUS_MS		10000	/* sd_notify STATUS */
#define LOGRL_MS		10000	/* repeated lines summarised */

void
broker_audit_note(struct broker *b, struct session *s, Cpx__RecordKind kind,
    int reason, const char *text, const char *alert_id)
{
	Cpx__AuditRecord rec = CPX__AUDIT_RECORD__INIT;
	const struct peer *pr;
	uint64_t seq;

	rec.kind = kind;
	rec.reason = reason;
	rec.text = (char *)(text ? text : "");
	rec.alert_id = (char *)(alert_id ? alert_id : "");
	if (s != NULL) {
		/* Before the Welcome only the address is known. */
		pr = peer_of(s);
		rec.peer_country = (char *)(pr != NULL ? pr->id.country : "");
		rec.peer_node = (char *)(pr != NULL ? pr->id.node : "");
		rec.peer_address = s->addr;
		rec.session_id = s->id;
	}
	/* A log that refuses every append would otherwise flood. */
	if (audit_append(b->audit, &rec, &seq) == -1)
		(void)logrl_log(b->logrl, clock_mono_ms(), LOG_LEVEL_WARN, NULL,
		    LOGRL_SITE, NULL, "audit: record of kind %s could not be "
		    "appended", alert_record_kind_name(kind));
	b->since_checkpoint++;
}

void
broker_send(struct broker *b, struct session *s, const Cpx__Envelope *env)
{
	if (session_send(b->edge, s, env) == -1 && !s->dead &&
	    s->phase != SESSION_CLOSING) {
		log_warnx("%s: outbound queue over %zu bytes, disconnecting",
		    s->tag, session_queued(s));
		session_refuse(b->edge, s, CPX__REASON__REASON_OVERLOADED,
		    "outbound queue full; reconnect and resume");
	}
}

void
broker_send_error(struct broker *b, struct session *s, uint64_t request_id,
    int reason, const char *text)
{
	Cpx__Envelope env = CPX__ENVELOPE__INIT;
	Cpx__Error er = CPX__ERROR__INIT;
	char cut[CPX_MAX_ERROR_TEXT + 1];
	size_t n;

	/*
	 * A node refuses an Error whose text is over the wire's bound as a
	 * bad frame: a long store message (a database's) is cut, at a
	 * character boundary.
	 */
	if (text != NULL && (n = strlen(text)) > CPX_MAX_ERROR_TEXT) {
		n = CPX_MAX_ERROR_TEXT;
		while (n > 0 && ((unsigned char)text[n] & 0xc0) == 0x80)
			n--;
		memcpy(cut, text, n);
		cut[n] = '\0';
		text = cut;
	}
	er.request_id = request_id;
	er.reason = reason;
	er.text = (char *)text;
	env.body_case = CPX__ENVELOPE__BODY_ERROR;
	env.error = &er;
	broker_send(b, s, &env);
}

/* A subscribe or replay request refused: counted, answered, logged. */
static void
refuse_request(struct broker *b, struct session *s, Cpx__RecordKind kind,
    const char *what, uint64_t request_id, int reason, const char *why)
{
	if (peer_note_refusal(b, s, kind, reason, why, NULL))
		log_warnx("%s: %s refused (%s): %s", s->tag, what,
		    alert_reason_name(reason), why);
	broker_send_error(b, s, request_id, reason, why);
	peer_check_refusal_limit(b, s, reason);
}

/*
 * Without its history a resumed subscription would go live with a gap:
 * the caller refuses it whole when this fails (-1).
 */
static int
start_catch_up(struct broker *b, struct session *s, struct peer *pr,
    uint64_t after, uint64_t request_id)
{
	char err[256];

	replay_free(&pr->replay);
	pr->replay = replay_new_catch_up(b->audit, after, request_id, err,
	    sizeof(err));
	if (pr->replay == NULL) {
		log_warnx("%s: cannot resume after seq %" PRIu64 ": %s",
		    s->tag, after, err);
		return -1;
	}
	return 0;
}

static void
handle_subscribe(struct broker *b, struct session *s, Cpx__Envelope **envp)
{
	Cpx__Envelope env = CPX__ENVELOPE__INIT;
	Cpx__Subscribed ok = CPX__SUBSCRIBED__INIT;
	Cpx__Subscribe *sub = (*envp)->subscribe;
	struct peer *pr = peer_of(s);
	char why[256];
	int reason;

	if (policy_check_subscribe(b->policy, &pr->id, sub->filters,
	    sub->n_filters, 0, &reason, why, sizeof(why)) == -1) {
		refuse_request(b, s, CPX__RECORD_KIND__RECORD_REQUEST_REFUSED,
		    "subscribe", sub->request_id, reason, why);
		return;
	}
	if (pr->replay != NULL && !pr->replay->catch_up && sub->resume) {
		broker_send_error(b, s, sub->request_id,
		    CPX__REASON__REASON_BAD_REQUEST,
		    "a replay is running on this session; resume after it");
		return;
	}
	/* The catch-up starts at resume_after + 1, which must not wrap. */
	if (sub->resume && sub->resume_after == UINT64_MAX) {
		broker_send_error(b, s, sub->request_id,
		    CPX__REASON__REASON_BAD_REQUEST,
		    "resume_after is the largest sequence possible; nothing "
		    "can follow it");
		return;
	}
	if (pr->subscription != NULL)
		cpx__envelope__free_unpacked(pr->subscription, NULL);
	pr->subscription = *envp;
	*envp = NULL;
	if (peer_catching_up(pr))
		replay_free(&pr->replay);
	if (sub->resume && sub->n_filters > 0 &&
	    start_catch_up(b, s, pr, sub->resume_after,
	    sub->request_id) == -1) {
		broker_send_error(b, s, sub->request_id,
		    CPX__REASON__REASON_INTERNAL, "cannot read the audit log "
		    "to resume; nothing was subscribed, subscribe again");
		cpx__envelope__free_unpacked(pr->subscription, NULL);
		pr->subscription = NULL;	/* sub pointed into it */
		return;
	}
	log_info("%s: subscribed with %zu filter(s)%s", s->tag, sub->n_filters,
	    peer_catching_up(pr) ? ", resuming from history" : "");
	ok.request_id = sub->request_id;
	/* Live from the last record routed here, not the store's head. */
	ok.live_from = b->delivered;
	env.body_case = CPX__ENVELOPE__BODY_SUBSCRIBED;
	env.subscribed = &ok;
	broker_send(b, s, &env);
}

static void
handle_replay(struct broker *b, struct session *s, Cpx__Envelope **envp)
{
	Cpx__ReplayRequest *rq = (*envp)->replay;
	struct peer *pr = peer_of(s);
	uint64_t last = audit_last_seq(b->audit);
	char why[256], err[256];
	int reason;

	if (pr->replay != NULL) {
		broker_send_error(b, s, rq->request_id,
		    CPX__REASON__REASON_BAD_REQUEST,
		    "a replay or resume is already running on this session");
		return;
	}
	if (policy_check_subscribe(b->policy, &pr->id, rq->filters,
	    rq->n_filters, rq->all_kinds, &reason, why, sizeof(why)) == -1) {
		refuse_request(b, s, CPX__RECORD_KIND__RECORD_REPLAY_REQUESTED,
		    "replay", rq->request_id, reason, why);
		return;
	}
	snprintf(why, sizeof(why), "replay from seq %" PRIu64 " to %" PRIu64
	    " time %" PRId64 "..%" PRId64 ", %zu filter(s)%s", rq->from_seq,
	    replay_request_end(rq, last), rq->from_time, rq->to_time,
	    rq->n_filters, rq->all_kinds ? ", all record kinds" : "");
	log_info("%s: %s", s->tag, why);
	broker_audit_note(b, s, CPX__RECORD_KIND__RECORD_REPLAY_REQUESTED,
	    CPX__REASON__REASON_NONE, why, NULL);
	/* The end is the durable end when asked, not this note's seq. */
	if ((pr->replay = replay_new_request(b->audit, envp, last, err,
	    sizeof(err))) == NULL) {
		log_warnx("%s: replay cannot start: %s", s->tag, err);
		broker_send_error(b, s, rq->request_id,
		    CPX__REASON__REASON_INTERNAL,
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
	broker_send(b, s, &env);
}

/*
 * The next request of s, the parked one first: 1 with *envp (owned by
 * the caller), 0 if none is complete yet, -1 if s was refused for a bad
 * frame.
 */
static int
next_request(struct broker *b, struct session *s, Cpx__Envelope **envp)
{
	struct peer *pr = peer_of(s);
	const uint8_t *body;
	size_t len;
	char why[256];
	int r, reason;

	*envp = NULL;
	if (pr->parked != NULL) {
		*envp = pr->parked;
		pr->parked = NULL;
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
		switch (env->body_case) {
		case CPX__ENVELOPE__BODY_PUBLISH:
			/* Parked: read nothing more of s for now. */
			if (publish_take(b, s, &env, now) == 1)
				return;
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
		case CPX__ENVELOPE__BODY_WITNESS_REQUEST:
		case CPX__ENVELOPE__BODY_COSIGN:
		case CPX__ENVELOPE__BODY_WITNESS_ALARM:
			witness_handle(b, s, env, now);
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

/*
 * While one node's requests are handled, its log lines carry its country
 * and name as fields (journald, JSON) without each call naming them.
 */
void
broker_handle_frames(struct broker *b, struct session *s, int64_t now)
{
	const struct log_fields *prev;
	struct log_fields lf = { NULL, NULL, NULL };
	const struct peer *pr = peer_of(s);

	if (pr != NULL) {
		lf.country = pr->id.country;
		lf.node = pr->id.node;
	}
	prev = log_context_push(&lf);
	handle_frames(b, s, now);
	log_context_pop(prev);
}

/* Sessions parked on a full verify backlog go on where there is room. */
static void
resume_parked(struct broker *b, int64_t now)
{
	struct session *s;
	struct peer *pr;

	if (b->verifier == NULL)
		return;
	for (s = edge_sessions(b->edge); s != NULL; s = s->next)
		if ((pr = peer_of(s)) != NULL && pr->parked != NULL &&
		    publish_admits(b, s))
			broker_handle_frames(b, s, now);
}

static void
maybe_checkpoint(struct broker *b, int64_t now)
{
	if (b->since_checkpoint == 0)
		return;
	if (b->since_checkpoint < b->cfg->checkpoint_records &&
	    now - b->last_checkpoint_ms < (int64_t)b->cfg->checkpoint_interval_ms)
		return;
	/* Its seq is known once committed (batch.c tells witness.c). */
	if (audit_checkpoint(b->audit) == -1)
		log_warnx("audit: checkpoint could not be appended");
	else
		batch_note_checkpoint(b);
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

/*
 * What the operators' tools see: the metrics endpoint, the expiry
 * warnings, repeated lines summarised, and systemd's status line.
 */
static void
maybe_tell_operators(struct broker *b, int64_t now)
{
	metrics_run(b->metrics);
	health_check_expiry(b, metrics_health(b->metrics), now, 0);
	logrl_tick(b->logrl, now);
	if (now - b->last_status_ms < STATUS_MS)
		return;
	b->last_status_ms = now;
	notify_status("%zu session(s), %" PRIu64 " accepted, %" PRIu64
	    " refused, last seq %" PRIu64, edge_count(b->edge),
	    b->stats.accepted, b->stats.refused, audit_last_seq(b->audit));
}

static void
dispatch(struct broker *b, struct edge_event *ev, int64_t now)
{
	switch (ev->kind) {
	case EDGE_VERIFIED:
		peer_welcome(b, ev->session, now);
		break;
	case EDGE_FRAMES:
		broker_handle_frames(b, ev->session, now);
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
	int64_t now = clock_mono_ms();
	int i, rc, busy;

	/* Results first: they make room for what is parked and read now. */
	audit_read_step(b->audit);
	publish_take_verified(b);
	resume_parked(b, now);
	for (i = 0; i < TURN_MAX_MESSAGES; i++) {
		if ((rc = edge_recv(b->edge, now, &ev)) <= 0)
			break;
		dispatch(b, &ev, now);
	}
	busy = i == TURN_MAX_MESSAGES;
	publish_take_verified(b);
	peer_take_closed(b);
	peer_flush_refusals(b, now, b->cfg->refusal_interval_ms);
	maybe_checkpoint(b, now);
	maybe_log_stats(b, now);
	maybe_tell_operators(b, now);
	batch_turn(b);
	busy |= tail_pump(b);
	busy |= replay_pump(b);
	busy |= witness_pump(b);
	edge_tick(b->edge, now);
	peer_take_closed(b);
	edge_reap(b->edge);
	return busy || edge_has_backlog(b->edge);
}

/*
 * Wait for the edge socket, verifier results, the commit in flight, a
 * commit of another broker or a page of the log being read, at most
 * timeout_ms.
 */
static int
wait_input(struct broker *b, long timeout_ms)
{
	zmq_pollitem_t items[6];
	int n = 1, fd;
	short ev;

	memset(items, 0, sizeof(items));
	items[0].socket = edge_socket(b->edge);
	items[0].events = ZMQ_POLLIN;
	if (b->verifier != NULL) {
		items[1].socket = verifier_socket(b->verifier);
		items[1].events = ZMQ_POLLIN;
		n = 2;
	}
	/* The metrics endpoint's epoll descriptor: a scrape wakes us. */
	if ((fd = metrics_fd(b->metrics)) != -1) {
		items[n].fd = fd;
		items[n].events = ZMQ_POLLIN;
		n++;
		timeout_ms = metrics_timeout(b->metrics, timeout_ms);
	}
	/* A store that commits over the network: its socket (batch.c). */
	if ((fd = batch_fd(b, &ev)) != -1) {
		items[n].fd = fd;
		items[n].events = (ev & POLLIN ? ZMQ_POLLIN : 0) |
		    (ev & POLLOUT ? ZMQ_POLLOUT : 0);
		n++;
	} else if (audit_commit_inflight(b->audit))
		timeout_ms = 0;		/* step it at once */
	if ((fd = tail_fd(b)) != -1) {
		items[n].fd = fd;
		items[n].events = ZMQ_POLLIN;
		n++;
	}
	/* A page of the log on its way from the store (cursors). */
	if ((fd = audit_read_fd(b->audit, &ev)) != -1) {
		items[n].fd = fd;
		items[n].events = (ev & POLLIN ? ZMQ_POLLIN : 0) |
		    (ev & POLLOUT ? ZMQ_POLLOUT : 0);
		n++;
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
	char err[256];
	int busy = 0;

	log_info("cpx-broker " CPX_VERSION " listening on %s as %s (policy "
	    "%s, audit %s, last seq %"
	    PRIu64 ", %u verifier thread(s))", b->cfg->listen, b->name,
	    b->cfg->policy, b->store_desc, audit_last_seq(b->audit),
	    b->cfg->verify_threads);
	health_check_expiry(b, metrics_health(b->metrics), clock_mono_ms(), 1);
	notify_ready("listening");
	while (!*b->stop) {
		if (wait_input(b, busy ? 1 : 100) == -1)
			return -1;
		if (*b->reload) {
			*b->reload = 0;
			notify_reloading();
			broker_reload(b);
			health_check_expiry(b, metrics_health(b->metrics),
			    clock_mono_ms(), 1);
			log_info("SIGHUP: reload done");
			notify_ready("reloaded");
		}
		busy = turn(b);
	}
	notify_stopping();
	/* Publishes being verified are answered before anyone is closed. */
	until = clock_mono_ms() + DRAIN_MS;
	while (b->verifier != NULL && verifier_inflight(b->verifier) > 0 &&
	    clock_mono_ms() < until) {
		(void)wait_input(b, 10);
		(void)turn(b);
	}
	log_info("shutting down: closing %zu session(s)", edge_count(b->edge));
	for (s = edge_sessions(b->edge); s != NULL; s = s->next)
		session_refuse(b->edge, s, CPX__REASON__REASON_SHUTTING_DOWN,
		    "broker shutting down; reconnect later");
	until = clock_mono_ms() + DRAIN_MS;
	while (edge_count(b->edge) > 0 && clock_mono_ms() < until) {
		(void)wait_input(b, 10);
		(void)turn(b);
	}
	peer_take_closed(b);
	peer_flush_refusals(b, clock_mono_ms(), 0);
	batch_drain(b, DRAIN_MS);
	/* The closing checkpoint now, so the last seq below is the log's. */
	if (audit_seal(b->audit, err, sizeof(err)) == -1)
		log_warnx("%s", err);
	log_info("stopped: %" PRIu64 " accepted, %" PRIu64 " duplicate(s), %"
	    PRIu64 " refused, %" PRIu64 " deliveries, last seq %" PRIu64,
	    b->stats.accepted, b->stats.duplicates, b->stats.refused,
	    b->stats.deliveries, audit_last_seq(b->audit));
	return 0;
}

/*
 * Rebuild the duplicate index from every accepted alert in the log, and
 * tell witness.c the newest checkpoint and cosignatures.
 */
static int
load_dedup(struct broker *b, char *err, size_t errlen)
{
	struct audit_cursor *c;
	Cpx__AuditRecord *rec;
	Cpx__Alert *a;
	uint8_t hash[DEDUP_HASH_LEN], *der = NULL;
	int rc, derlen;

	if ((b->dedup = dedup_new()) == NULL ||
	    (b->witness = witness_new()) == NULL ||
	    (derlen = i2d_X509(b->cert, &der)) <= 0) {
		snprintf(err, errlen, "out of memory or no random bytes");
		return -1;
	}
	if ((c = audit_cursor_new(b->audit, 1, 0, err, errlen)) == NULL) {
		OPENSSL_free(der);
		return -1;
	}
	while ((rc = audit_cursor_next(c, &rec, err, errlen)) == 1) {
		a = NULL;
		/* The key is (origin, id): the origin is in the alert bytes. */
		if (rec->kind == CPX__RECORD_KIND__RECORD_ALERT_ACCEPTED &&
		    rec->alert != NULL && rec->alert_id[0] != '\0' &&
		    ((a = cpx__alert__unpack(NULL, rec->alert->alert.len,
		    rec->alert->alert.data)) == NULL || a->origin == NULL)) {
			snprintf(err, errlen, "%s: accepted alert at seq %"
			    PRIu64 " does not decode; run cpx-audit verify",
			    b->store_desc, rec->seq);
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
		/*
		 * On a shared log other brokers sign checkpoints too: a
		 * witness is shown this broker's own (witness.c).
		 */
		if (rc != -1 && (rec->kind !=
		    CPX__RECORD_KIND__RECORD_CHECKPOINT ||
		    (rec->checkpoint_cert.len == (size_t)derlen &&
		    memcmp(rec->checkpoint_cert.data, der,
		    (size_t)derlen) == 0)) &&
		    witness_note_record(b->witness, rec) == -1) {
			snprintf(err, errlen, "out of memory");
			rc = -1;
		}
		if (a != NULL)
			cpx__alert__free_unpacked(a, NULL);
		cpx__audit_record__free_unpacked(rec, NULL);
		if (rc == -1)
			break;
	}
	audit_cursor_free(&c);
	OPENSSL_free(der);
	return rc == 0 ? 0 : -1;
}

/*
 * The audit store the config names: the segment files in audit_dir, or
 * the PostgreSQL database of store_dsn, which must answer now (fail
 * fast: a broker that cannot record accepts nothing, and systemd
 * restarts it). b->store_desc names it for log lines, never with a
 * password.
 */
static int
open_store(struct broker *b, const struct config *cfg, char *err,
    size_t errlen)
{
	unsigned flags = cfg->accept_log_without_mark ?
	    AUDIT_OPEN_ACCEPT_NO_MARK : 0;
	char desc[256];

	if (!config_store_pg(cfg)) {
		snprintf(b->store_desc, sizeof(b->store_desc), "%s",
		    cfg->audit_dir);
		b->audit = audit_open_flags(cfg->audit_dir, b->key, b->cert,
		    flags, err, errlen);
		return b->audit != NULL ? 0 : -1;
	}
	if (config_store_env(cfg, err, errlen) == -1)
		return -1;
	audit_pg_describe(cfg->store_dsn, desc, sizeof(desc));
	snprintf(b->store_desc, sizeof(b->store_desc), "postgresql (%s)",
	    desc);
	log_info("audit store: %s", b->store_desc);
	if ((b->audit = audit_open_pg(cfg->store_dsn, b->key, b->cert, flags,
	    err, errlen)) == NULL)
		return -1;
	return 0;
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
	if (open_store(b, cfg, err, errlen) == -1)
		return -1;
	if (load_dedup(b, err, errlen) == -1 || batch_init(b) == -1 ||
	    tail_init(b, err, errlen) == -1) {
		if (err[0] == '\0')
			snprintf(err, errlen, "out of memory");
		return -1;
	}
	log_info("audit log %s: last seq %" PRIu64 ", %zu alert id(s) known",
	    b->store_desc, audit_last_seq(b->audit), dedup_count(b->dedup));
	/* From here on the loop runs: no read may wait for the store. */
	audit_read_async(b->audit);
	if ((b->zctx = zmq_ctx_new()) == NULL) {
		snprintf(err, errlen, "zmq_ctx_new: %s", zmq_strerror(errno));
		return -1;
	}
	/*
	 * Session ids start past the log's last sequence: every session
	 * leaves at least one record, so ids never repeat across restarts
	 * and an audit record's session id names one session (on a shared
	 * log, with the record's broker: each broker numbers its own).
	 */
	if ((b->edge = edge_new(b->zctx, b->ssl_ctx, cfg,
	    audit_last_seq(b->audit) + 1, peer_release, err, errlen)) == NULL)
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
	b->last_checkpoint_ms = b->last_stats_ms = clock_mono_ms();
	if ((b->metrics = metrics_new()) == NULL ||
	    (b->logrl = logrl_new(LOGRL_MS, 64)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return metrics_listen(b->metrics, b, cfg->metrics_listen, err, errlen);
}

void
broker_reload(struct broker *b)
{
	struct policy *np;
	struct session *s;
	struct peer *pr;
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
		if (!s->welcomed || s->phase == SESSION_CLOSING ||
		    (pr = peer_of(s)) == NULL)
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
		policy_rights(b->policy, &pr->id, &pr->rights);
		if (!pr->rights.publish && !pr->rights.subscribe &&
		    !pr->rights.audit && !pr->rights.witness)
			session_refuse(b->edge, s, CPX__REASON__REASON_NOT_AUTHORIZED,
			    "the policy no longer grants node %s/%s any right",
			    pr->id.country, pr->id.node);
	}
}

void
broker_free(struct broker *b)
{
	batch_free(b);
	tail_free(b);
	/* Before the sessions go: returned jobs only point at them. */
	verifier_free(&b->verifier);
	/* Frees every session's peer too, before the audit log closes. */
	edge_free(&b->edge);
	if (b->zctx != NULL)
		zmq_ctx_term(b->zctx);
	/* Its cursor (cosignatures to read back) goes before the audit. */
	witness_free(&b->witness);
	audit_close(&b->audit);
	dedup_free(&b->dedup);
	metrics_free(&b->metrics);
	logrl_free(&b->logrl);
	ratelimit_free(&b->ratelimit);
	refusals_free(&b->refusals);
	policy_free(&b->policy);
	trust_free(&b->trust);
	SSL_CTX_free(b->ssl_ctx);
	EVP_PKEY_free(b->key);
	X509_free(b->cert);
	memset(b, 0, sizeof(*b));
}
