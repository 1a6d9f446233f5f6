/*
 * batch.c: the group commit as the event loop sees it (audit.h, "The
 * commit seen from an event loop"). Owns the two batches of publishes
 * (struct pending): the one accumulating this turn's appends and the one
 * in flight, at most one, which the store commits while the loop goes
 * on reading. When the store says the batch in flight is durable, its
 * outcomes give each publish its seq and time (a shared store fixes them
 * only then) or name a duplicate another broker took first; the batch is
 * then delivered in log order (from memory when it follows what was
 * delivered; otherwise tail.c reads what other brokers committed before
 * it, and the batch itself, from the log), acknowledged, and the next
 * one put in flight at once. Nothing is acknowledged or delivered
 * before that.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "broker_impl.h"
#include "clock.h"
#include "log.h"
#include "logrl.h"
#include "metrics.h"
#include "route.h"
#include "witness.h"

#define NO_INDEX	((size_t)-1)

struct plist {
	struct pending	*v;
	size_t		 n;
	size_t		 cap;
	size_t		 ckpt;		/* its checkpoint's append */
};

struct batch {
	struct plist	 lists[2];
	struct plist	*cur;		/* accumulating */
	struct plist	*fly;		/* in flight */
	size_t		 base;		/* audit_pending at begin */
	uint64_t	 gen;		/* cur's; fly's is gen - 1 */
	int64_t		 t0;		/* the flight's begin, us */
	struct trace	 turn;		/* its start and end stamps */
};

static void
plist_clear(struct plist *l)
{
	struct pending *p;
	size_t i;

	for (i = 0; i < l->n; i++) {
		p = &l->v[i];
		if (p->env != NULL)
			cpx__envelope__free_unpacked(p->env, NULL);
		if (p->alert != NULL)
			cpx__alert__free_unpacked(p->alert, NULL);
		if (p->session != NULL)
			p->session->held--;
	}
	l->n = 0;
	l->ckpt = NO_INDEX;
}

int
batch_init(struct broker *b)
{
	struct batch *bt;

	if ((bt = calloc(1, sizeof(*bt))) == NULL)
		return -1;
	bt->cur = &bt->lists[0];
	bt->fly = &bt->lists[1];
	bt->cur->ckpt = bt->fly->ckpt = NO_INDEX;
	b->batch = bt;
	return 0;
}

void
batch_free(struct broker *b)
{
	struct batch *bt = b->batch;

	if (bt == NULL)
		return;
	plist_clear(&bt->lists[0]);
	plist_clear(&bt->lists[1]);
	free(bt->lists[0].v);
	free(bt->lists[1].v);
	free(bt);
	b->batch = NULL;
}

struct pending *
batch_push(struct broker *b, struct session *s, enum pending_kind kind)
{
	struct plist *l = b->batch->cur;
	struct pending *p;
	size_t cap;

	if (l->n == l->cap) {
		cap = l->cap ? l->cap * 2 : 256;
		if ((p = reallocarray(l->v, cap, sizeof(*p))) == NULL)
			return NULL;
		l->v = p;
		l->cap = cap;
	}
	p = &l->v[l->n++];
	memset(p, 0, sizeof(*p));
	p->kind = kind;
	p->session = s;
	p->idx = NO_INDEX;
	s->held++;
	return p;
}

void
batch_pop(struct broker *b)
{
	struct plist *l = b->batch->cur;

	if (l->n == 0)
		return;
	l->n--;
	l->v[l->n].session->held--;
}

int64_t
batch_inflight_us(const struct broker *b)
{
	if (b->batch == NULL || !audit_commit_inflight(b->audit))
		return 0;
	return metrics_clock_us() - b->batch->t0;
}

uint64_t
batch_gen(const struct broker *b)
{
	return b->batch->gen;
}

size_t
batch_last_index(const struct broker *b)
{
	size_t n = audit_pending(b->audit);

	/* A store may count the batch in flight as pending too: base. */
	return n > b->batch->base ? n - 1 - b->batch->base : 0;
}

void
batch_note_checkpoint(struct broker *b)
{
	b->batch->cur->ckpt = batch_last_index(b);
}

int
batch_fd(const struct broker *b, short *events)
{
	*events = 0;
	if (!audit_commit_inflight(b->audit))
		return -1;
	return audit_commit_fd(b->audit, events);
}

/* Refuse every publish of l: nothing of it is on record. */
static void
refuse_list(struct broker *b, struct plist *l, const char *why)
{
	struct dedup_entry *de;
	const struct peer *pr;
	struct pending *p;
	size_t i;

	for (i = 0; i < l->n; i++) {
		p = &l->v[i];
		/* An entry the log confirmed meanwhile (tail.c) stays. */
		if (p->kind == PENDING_ALERT && (de = dedup_find(b->dedup,
		    p->origin, p->alert_id)) != NULL && de->pending)
			dedup_remove(b->dedup, p->origin, p->alert_id);
		pr = peer_of(p->session);
		metrics_refused(b->metrics, pr != NULL ? pr->id.country : NULL,
		    CPX__REASON__REASON_STORAGE);
		if (!p->session->dead)
			broker_send_error(b, p->session, p->request_id,
			    CPX__REASON__REASON_STORAGE, why);
		b->stats.refused++;
	}
	plist_clear(l);
}

/*
 * What a node is told of a failed commit: the cause, not where the log
 * lives. The file store's errors end in strerror ("No space left on
 * device"); a database's name its hosts, port and role, which are the
 * operators' business: those stay in the broker's log.
 */
static const char *
node_cause(const struct broker *b, const char *err)
{
	const char *p;

	if (audit_shared(b->audit))
		return "the database is unreachable or refused the commit";
	return (p = strrchr(err, ':')) != NULL && p[1] == ' ' ? p + 2 : err;
}

/*
 * The commit failed: the batch in flight is not on record, and the
 * store dropped what was appended since (audit.h, "Failure").
 */
static void
refuse_all(struct broker *b, const char *err)
{
	static const struct log_fields storage = { NULL, NULL, "storage" };
	struct batch *bt = b->batch;
	char why[400];

	/*
	 * Once per failure would be thousands of lines a second on a full
	 * disk: the first in full, then a count (logrl.h) until it works.
	 */
	logrl_log(b->logrl, clock_mono_ms(), LOG_LEVEL_WARN, &storage,
	    "audit-commit", err, "%s; publishes are refused with storage "
	    "until the audit log can be written", err);
	snprintf(why, sizeof(why), "audit log cannot be written (%s); "
	    "nothing was accepted, retry later", node_cause(b, err));
	refuse_list(b, bt->fly, why);
	refuse_list(b, bt->cur, why);
	witness_batch_done(b, bt->gen - 1, 0);
	witness_batch_done(b, bt->gen, 0);
	bt->base = 0;
}

/*
 * What the outcome of p's append says. Returns 1 if p is to be
 * acknowledged (p->seq, p->duplicate set), 0 if it was refused.
 */
static int
settle(struct broker *b, struct pending *p)
{
	struct dedup_entry *de;
	uint64_t seq = 0;
	int64_t time = 0;
	char why[256];
	int o;

	de = dedup_find(b->dedup, p->origin, p->alert_id);
	if (p->kind == PENDING_REPEAT) {
		/*
		 * Its original was in this batch or an earlier one; if
		 * another broker's alert took the id first, the entry is
		 * that one now (tail.c, or DUP_DIFFERENT removed it).
		 */
		if (de != NULL && !de->pending &&
		    CRYPTO_memcmp(de->hash, p->hash, DEDUP_HASH_LEN) == 0) {
			p->seq = de->seq;
			return 1;
		}
		if (de != NULL && !de->pending)
			snprintf(why, sizeof(why), "alert id %s of %s was "
			    "accepted before (seq %" PRIu64 ") with different "
			    "content", p->alert_id, p->origin, de->seq);
		else
			snprintf(why, sizeof(why), "alert id %s of %s is "
			    "taken by another alert", p->alert_id, p->origin);
		publish_refuse(b, p->session, p->request_id, p->alert_id,
		    CPX__REASON__REASON_DUPLICATE_CONFLICT, why);
		return 0;
	}
	o = audit_batch_outcome(b->audit, p->idx, &seq, &time);
	switch (o) {
	case AUDIT_OUT_COMMITTED:
	case AUDIT_OUT_DUP_SAME:
		p->seq = seq;
		p->time = time;
		if (de != NULL) {
			de->seq = seq;
			de->pending = 0;
		}
		if (o == AUDIT_OUT_DUP_SAME) {
			/* Another broker took it a moment ago: a repeat. */
			b->stats.duplicates++;
			p->duplicate = 1;
			log_info("%s: alert %s is a repeat of seq %" PRIu64
			    " (committed by another broker), acknowledged "
			    "again", p->session->tag, p->alert_id, seq);
		}
		return 1;
	case AUDIT_OUT_DUP_DIFFERENT:
		/* Unless the other alert is in the entry already (tail.c). */
		if (de != NULL && de->pending)
			dedup_remove(b->dedup, p->origin, p->alert_id);
		snprintf(why, sizeof(why), "alert id %s of %s was accepted "
		    "before (seq %" PRIu64 ") with different content",
		    p->alert_id, p->origin, seq);
		publish_refuse(b, p->session, p->request_id, p->alert_id,
		    CPX__REASON__REASON_DUPLICATE_CONFLICT, why);
		return 0;
	default:
		if (de != NULL && de->pending)
			dedup_remove(b->dedup, p->origin, p->alert_id);
		log_warnx("%s: alert %s: no outcome for append %zu of the "
		    "batch", p->session->tag, p->alert_id, p->idx);
		publish_refuse(b, p->session, p->request_id, p->alert_id,
		    CPX__REASON__REASON_INTERNAL, "the audit log gave no "
		    "outcome; retry later");
		return 0;
	}
}

/*
 * The batch in flight is durable: settle, deliver in log order, ack.
 * The first and last seq the batch committed bound what is its own;
 * what other brokers committed before it is read from the log first.
 */
static void
finish(struct broker *b)
{
	struct batch *bt = b->batch;
	struct plist *l = bt->fly;
	struct pending *p;
	uint64_t seq, first = 0, last = 0;
	int64_t time;
	size_t i, n = audit_batch_count(b->audit);
	int ok, own;

	for (i = 0; i < n; i++)
		if (audit_batch_outcome(b->audit, i, &seq, &time) ==
		    AUDIT_OUT_COMMITTED) {
			if (first == 0)
				first = seq;
			last = seq;
		}
	/*
	 * Delivered from memory only if what comes before it is delivered:
	 * otherwise the tail reads it from the log after the rest.
	 */
	own = first == 0 || tail_reach(b, first - 1);
	if (!own)
		(void)tail_reach(b, last);
	if (l->ckpt != NO_INDEX && audit_batch_outcome(b->audit, l->ckpt,
	    &seq, &time) == AUDIT_OUT_COMMITTED)
		witness_note_checkpoint(b->witness, seq);
	witness_batch_done(b, bt->gen - 1, 1);
	b->stats.commits++;
	for (i = 0; i < l->n; i++) {
		p = &l->v[i];
		TRACE_SET(&p->trace, TRACE_COMMIT_START, &bt->turn);
		TRACE_SET(&p->trace, TRACE_FSYNC_END, &bt->turn);
		TRACE_STAMP(&p->trace, TRACE_QUEUED);
		if (!(ok = settle(b, p)))
			continue;
		if (p->kind == PENDING_ALERT && !p->duplicate) {
			b->stats.accepted++;
			metrics_accepted(b->metrics, p->origin);
			/* Read from the log already (tail.c): not twice. */
			if (own && p->seq > b->delivered)
				b->stats.deliveries += route_publish(b->edge,
				    b->policy, p->env->publish->alert,
				    p->alert, p->seq, p->time ? p->time :
				    clock_wall_ms(), &p->trace);
			log_debug("%s: alert %s accepted as seq %" PRIu64,
			    p->session->tag, p->alert_id, p->seq);
		}
		if (!p->session->dead)
			publish_send_ack(b, p->session, p->request_id, p->seq,
			    p->alert_id, p->duplicate, &p->trace);
	}
	if (own && last > b->delivered)
		b->delivered = last;
	plist_clear(l);
}

/* Put the accumulating batch in flight. 0, or -1 (refused: logged). */
static int
begin(struct broker *b)
{
	struct batch *bt = b->batch;
	struct plist *t;
	char err[256];

	bt->t0 = metrics_clock_us();
	TRACE_STAMP(&bt->turn, TRACE_COMMIT_START);
	t = bt->fly;
	bt->fly = bt->cur;
	bt->cur = t;
	bt->gen++;
	if (audit_commit_begin(b->audit, err, sizeof(err)) == -1) {
		(void)metrics_commit(b->metrics, 0, err);
		refuse_all(b, err);
		return -1;
	}
	bt->base = audit_pending(b->audit);
	return 0;
}

/* Step the commit in flight: 1 finished, 0 not yet, -1 failed. */
static int
step(struct broker *b)
{
	struct batch *bt = b->batch;
	uint64_t failed;
	char err[256];
	int rc;

	if ((rc = audit_commit_step(b->audit, err, sizeof(err))) == 0)
		return 0;
	TRACE_STAMP(&bt->turn, TRACE_FSYNC_END);
	failed = metrics_commit(b->metrics, metrics_clock_us() - bt->t0,
	    rc == -1 ? err : NULL);
	if (rc == -1) {
		refuse_all(b, err);
		return -1;
	}
	/* A failure is over: the count of its repeats, and a line saying so. */
	if (failed > 0) {
		(void)logrl_end(b->logrl, clock_mono_ms(), "audit-commit",
		    NULL);
		log_info("audit log writable again after %" PRIu64 " failed "
		    "commit(s)", failed);
	}
	bt->base = 0;
	finish(b);
	return 1;
}

void
batch_turn(struct broker *b)
{
	struct batch *bt = b->batch;
	short ev;
	int round;

	b->verified_here = 0;		/* a new turn begins after this */
	/*
	 * At most two rounds: the flight that ends now and the one begun
	 * at once after it, which a store that commits as it begins (the
	 * segment files) also ends now, as one fsync per turn always did.
	 */
	for (round = 0; round < 2; round++) {
		if (audit_commit_inflight(b->audit) && step(b) == 0)
			return;
		if (audit_pending(b->audit) == 0 && bt->cur->n == 0)
			return;
		if (begin(b) == -1)
			return;
		if (audit_commit_fd(b->audit, &ev) != -1)
			return;		/* the loop polls it */
	}
	if (audit_commit_inflight(b->audit))
		(void)step(b);
}

void
batch_drain(struct broker *b, int timeout_ms)
{
	struct pollfd pfd;
	int64_t until = clock_mono_ms() + timeout_ms;
	short ev;

	for (;;) {
		batch_turn(b);
		if (!audit_commit_inflight(b->audit) &&
		    audit_pending(b->audit) == 0 && b->batch->cur->n == 0)
			return;
		if (clock_mono_ms() >= until) {
			log_warnx("shutdown: the audit commit did not finish "
			    "in %d ms; its publishes were not acknowledged",
			    timeout_ms);
			return;
		}
		if ((pfd.fd = batch_fd(b, &ev)) == -1)
			continue;
		pfd.events = ev;
		pfd.revents = 0;
		if (poll(&pfd, 1, 100) == -1 && errno != EINTR) {
			log_warn("shutdown: poll");
			return;
		}
	}
}
