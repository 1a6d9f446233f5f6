/*
 * replay.c: history, as route.c is live delivery. Reads the audit log
 * through a cursor per replay or catch-up, keeps the records the peer
 * gets and asked for, and sends them at the pace its session's queue
 * allows (replay_pump, once per loop turn after the commit). Live rules
 * apply to history: whether a peer gets an alert is route_selects(),
 * with the entitlement fixed when the alert was accepted (route.c), so a
 * later policy change does not reach back into history. Only the audit
 * right sees every record kind. Reading is bounded per turn (a budget of
 * records), so a request that matches little cannot hold the loop for
 * the length of the log; and it never waits for the store: a page on
 * its way (a shared store) is taken on a later turn. Owns each struct
 * replay and its cursor.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "broker_impl.h"
#include "clock.h"
#include "log.h"
#include "logrl.h"
#include "replay.h"
#include "route.h"

#define REPLAY_RETRY_MS		500	/* a shared store's read error */
#define REPLAY_RETRY_FOR_MS	30000	/* ... until it has lasted this */

static struct replay *
replay_open(struct audit *a, uint64_t from_seq, int64_t from_time,
    char *err, size_t errlen)
{
	struct replay *r;

	if ((r = calloc(1, sizeof(*r))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if ((r->cur = audit_cursor_new(a, from_seq, from_time, err,
	    errlen)) == NULL) {
		free(r);
		return NULL;
	}
	r->from_seq = from_seq;
	r->from_time = from_time;
	return r;
}

/*
 * A read error on a shared store is the database going away or failing
 * over, not damage: keep the replay and open its cursor again after
 * REPLAY_RETRY_MS, where it stopped, for REPLAY_RETRY_FOR_MS. Returns 1
 * if it will retry, 0 if it has failed too long (or the store is one
 * broker's files, where a read error is damage): refuse it then.
 */
static int
retry_later(struct broker *b, struct session *s, struct replay *r,
    const char *err)
{
	int64_t now = clock_mono_ms();

	if (!audit_shared(b->audit))
		return 0;
	if (r->failing_since == 0)
		r->failing_since = now;
	if (now - r->failing_since > REPLAY_RETRY_FOR_MS)
		return 0;
	(void)logrl_log(b->logrl, now, LOG_LEVEL_WARN, NULL, "replay-retry",
	    NULL, "%s: replay paused after seq %" PRIu64 ": %s; retrying "
	    "for up to %d s", s->tag, r->last_seq, err,
	    REPLAY_RETRY_FOR_MS / 1000);
	audit_cursor_free(&r->cur);
	r->retry_at = now + REPLAY_RETRY_MS;
	return 1;
}

/* The cursor again after retry_later: 1 open, 0 not yet, -1 err[]. */
static int
reopen(struct broker *b, struct replay *r, char *err, size_t errlen)
{
	if (clock_mono_ms() < r->retry_at)
		return 0;
	if (r->last_seq > 0)
		r->cur = audit_cursor_new(b->audit, r->last_seq + 1, 0, err,
		    errlen);
	else
		r->cur = audit_cursor_new(b->audit, r->from_seq, r->from_time,
		    err, errlen);
	return r->cur != NULL ? 1 : -1;
}

uint64_t
replay_request_end(const Cpx__ReplayRequest *rq, uint64_t last)
{
	return rq->to_seq != 0 && rq->to_seq < last ? rq->to_seq : last;
}

struct replay *
replay_new_request(struct audit *a, Cpx__Envelope **req, uint64_t last,
    char *err, size_t errlen)
{
	const Cpx__ReplayRequest *rq = (*req)->replay;
	struct replay *r;

	if ((r = replay_open(a, rq->from_seq, rq->from_time, err,
	    errlen)) == NULL)
		return NULL;
	r->to_seq = replay_request_end(rq, last);
	r->to_time = rq->to_time;
	r->all_kinds = rq->all_kinds;
	r->request_id = rq->request_id;
	r->req = *req;
	*req = NULL;
	return r;
}

struct replay *
replay_new_catch_up(struct audit *a, uint64_t after, uint64_t request_id,
    char *err, size_t errlen)
{
	struct replay *r;

	if ((r = replay_open(a, after + 1, 0, err, errlen)) == NULL)
		return NULL;
	r->to_seq = UINT64_MAX;
	r->after = after;
	r->catch_up = 1;
	r->request_id = request_id;
	return r;
}

void
replay_free(struct replay **rp)
{
	struct replay *r;

	if (rp == NULL || (r = *rp) == NULL)
		return;
	audit_cursor_free(&r->cur);
	if (r->req != NULL)
		cpx__envelope__free_unpacked(r->req, NULL);
	free(r);
	*rp = NULL;
}

int
replay_allowed(const struct replay *r, const struct peer *pr)
{
	return pr->rights.subscribe && (!r->all_kinds || pr->rights.audit);
}

static int
wanted(const struct replay *r, const struct policy *p,
    const struct peer *pr, Cpx__Filter *const *filters, size_t nfilters,
    const Cpx__AuditRecord *rec)
{
	struct route_entitled e;
	Cpx__Alert *a;
	int known, ok;

	if (rec->kind != CPX__RECORD_KIND__RECORD_ALERT_ACCEPTED)
		return r->all_kinds;
	if (rec->alert == NULL)
		return 0;
	/* Who was entitled when it was accepted, not under today's policy. */
	known = route_entitled_from_record(rec, &e) == 0;
	/* Not entitled: skip it without decoding the alert. */
	if (known && !r->all_kinds && !route_may_have(p, pr, &e, NULL))
		return 0;
	a = cpx__alert__unpack(NULL, rec->alert->alert.len,
	    rec->alert->alert.data);
	if (a == NULL)
		return 0;
	/*
	 * Records written before they kept the list: today's policy
	 * decides. The audit right sees every alert its filters match.
	 */
	if (r->all_kinds)
		ok = route_matches(p, filters, nfilters, a);
	else
		ok = route_selects(p, pr, known ? &e : NULL, filters,
		    nfilters, a);
	cpx__alert__free_unpacked(a, NULL);
	return ok;
}

int
replay_next(struct replay *r, const struct policy *p,
    const struct peer *pr, Cpx__Filter *const *filters, size_t nfilters,
    unsigned int *budget, Cpx__AuditRecord **rec, char *err, size_t errlen)
{
	Cpx__AuditRecord *x = NULL;
	uint64_t before, used;
	int rc;

	*rec = NULL;
	for (;;) {
		if (*budget == 0)
			return REPLAY_YIELD;
		/* Charge what was read, skipped records included. */
		before = audit_cursor_reads(r->cur);
		rc = audit_cursor_next(r->cur, &x, err, errlen);
		used = audit_cursor_reads(r->cur) - before;
		*budget = used >= *budget ? 0 : *budget - (unsigned int)used;
		if (rc == AUDIT_CURSOR_WAIT)
			return REPLAY_WAIT;
		if (rc != 1)
			return rc;
		if (x->seq > r->to_seq ||
		    (r->to_time != 0 && x->time > r->to_time)) {
			cpx__audit_record__free_unpacked(x, NULL);
			return 0;
		}
		r->last_seq = x->seq;
		if (wanted(r, p, pr, filters, nfilters, x)) {
			r->count++;
			*rec = x;
			return 1;
		}
		cpx__audit_record__free_unpacked(x, NULL);
	}
}

/* One record to s: a Delivery, or the record itself for an audit replay. */
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
	broker_send(b, s, &env);
}

/*
 * pr's replay reached its end: a catch-up goes live (the session is no
 * longer catching up once its replay is gone), a replay says ReplayEnd.
 */
static void
replay_done(struct broker *b, struct session *s, struct peer *pr)
{
	Cpx__Envelope env = CPX__ENVELOPE__INIT;
	Cpx__ReplayEnd end = CPX__REPLAY_END__INIT;
	struct replay *r = pr->replay;

	if (r->catch_up) {
		log_info("%s: caught up (%" PRIu64 " alert(s) from history), "
		    "now live", s->tag, r->count);
	} else {
		log_info("%s: replay %" PRIu64 " done: %" PRIu64 " record(s)",
		    s->tag, r->request_id, r->count);
		end.request_id = r->request_id;
		end.count = r->count;
		end.last_seq = r->last_seq;
		env.body_case = CPX__ENVELOPE__BODY_REPLAY_END;
		env.replay_end = &end;
		broker_send(b, s, &env);
	}
	replay_free(&pr->replay);
}

/*
 * Stop pr's replay r if a reload took away the right it runs under: a
 * replay started under yesterday's policy must not go on serving history
 * today's denies. 1 if it was stopped.
 */
static int
replay_revoked(struct broker *b, struct session *s, struct peer *pr,
    struct replay *r)
{
	char why[256];

	if (replay_allowed(r, pr))
		return 0;
	snprintf(why, sizeof(why), "node %s/%s no longer has the %s right; "
	    "%s stopped", pr->id.country, pr->id.node,
	    !pr->rights.subscribe ? "subscribe" : "audit",
	    r->catch_up ? "resume" : "replay");
	log_warnx("%s: %s", s->tag, why);
	broker_send_error(b, s, r->request_id,
	    CPX__REASON__REASON_NOT_AUTHORIZED, why);
	broker_audit_note(b, s, CPX__RECORD_KIND__RECORD_REQUEST_REFUSED,
	    CPX__REASON__REASON_NOT_AUTHORIZED, why, NULL);
	replay_free(&pr->replay);
	return 1;
}

/*
 * Feed pr's replay r up to budget records read, while s's queue and the
 * broker's have room. Ends the replay when it is done or fails. Returns
 * 1 if it has more to do now (its budget ran out, or the queues are
 * full), 0 if not (over, or waiting for a page or a retry).
 */
static int
feed(struct broker *b, struct session *s, struct peer *pr, struct replay *r,
    unsigned int budget)
{
	Cpx__Filter *const *filters;
	Cpx__AuditRecord *rec;
	size_t nfilters;
	char err[256];
	int rc;

	if (r->catch_up) {
		/*
		 * A catch-up ends where live delivery stands (tail.c), not
		 * at the store's head: on a shared log what lies between is
		 * delivered live, and once only. One that resumes beyond it
		 * (it came from a broker further on) waits for the tail to
		 * get there, if the log has that far.
		 */
		if (b->delivered < r->after &&
		    r->after <= audit_last_seq(b->audit))
			return 0;	/* the tail's reads wake the loop */
		r->to_seq = b->delivered;
		filters = pr->subscription->subscribe->filters;
		nfilters = pr->subscription->subscribe->n_filters;
	} else {
		filters = r->req->replay->filters;
		nfilters = r->req->replay->n_filters;
	}
	for (;;) {
		/*
		 * History waits while this session, or the broker as a
		 * whole (queue_budget), has much queued: live traffic keeps
		 * the other half.
		 */
		if (session_queued(s) > b->cfg->outbound_queue / 2 ||
		    edge_queued(b->edge) > b->cfg->queue_budget / 2)
			return 1;
		if (r->cur == NULL && (rc = reopen(b, r, err,
		    sizeof(err))) != 1) {
			if (rc == 0)
				return 0;	/* not yet */
		} else
			rc = replay_next(r, b->policy, pr, filters, nfilters,
			    &budget, &rec, err, sizeof(err));
		if (rc != -1)
			r->failing_since = 0;
		if (rc == 1) {
			send_record(b, s, r, rec);
			cpx__audit_record__free_unpacked(rec, NULL);
			continue;
		}
		if (rc == REPLAY_WAIT)
			return 0;	/* the read fd wakes the loop */
		if (rc == 0)
			replay_done(b, s, pr);
		else if (rc == -1) {
			if (retry_later(b, s, r, err))
				return 0;
			log_warnx("%s: replay stopped: %s", s->tag, err);
			broker_send_error(b, s, r->request_id,
			    CPX__REASON__REASON_INTERNAL,
			    "audit log read error; retry later");
			replay_free(&pr->replay);
		}
		return rc == REPLAY_YIELD;	/* the next turn */
	}
}

/*
 * The work is bounded by records read, not sent: a replay whose filters
 * match nothing would otherwise read the whole log in one turn while
 * every other node waits for its ack. Each replaying session reads at
 * most REPLAY_BATCH records a turn, and an equal share of
 * REPLAY_TURN_READS when many replay at once (never under
 * REPLAY_MIN_READS, so each one progresses).
 */
int
replay_pump(struct broker *b)
{
	struct session *s;
	struct peer *pr;
	size_t nrun = 0;
	unsigned int share;
	int busy = 0;

	for (s = edge_sessions(b->edge); s != NULL; s = s->next)
		if ((pr = peer_of(s)) != NULL && pr->replay != NULL &&
		    s->phase == SESSION_OPEN)
			nrun++;
	if (nrun == 0)
		return 0;
	share = REPLAY_TURN_READS / nrun;
	if (share > REPLAY_BATCH)
		share = REPLAY_BATCH;
	if (share < REPLAY_MIN_READS)
		share = REPLAY_MIN_READS;
	for (s = edge_sessions(b->edge); s != NULL; s = s->next) {
		if ((pr = peer_of(s)) == NULL || pr->replay == NULL ||
		    s->phase != SESSION_OPEN)
			continue;
		if (replay_revoked(b, s, pr, pr->replay))
			continue;
		busy |= feed(b, s, pr, pr->replay, share);
	}
	return busy;
}
