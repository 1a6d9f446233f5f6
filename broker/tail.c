/*
 * tail.c: live delivery in log order, whichever broker wrote the record.
 * On a shared store (audit_shared) other brokers commit between this
 * one's batches; b->delivered is the highest seq routed to this broker's
 * live subscribers, and every record above it is read from the log, in
 * order, before anything later goes out: when the store announces a
 * commit (audit_notify_fd, tail_pump) and when this broker's own batch
 * lands after records it has not seen (tail_reach, from batch.c: the
 * batch's own records are then read from the log too, after the
 * others). Reading never waits: a page on its way from the store
 * (AUDIT_CURSOR_WAIT) is taken on a later turn, and until then nothing
 * after delivered goes out.
 * An accepted alert read here is routed as replay routes history (the
 * entitled list of its record, route_record) and enters the duplicate
 * index, so a repeat sent to this broker is answered with its seq. With
 * the segment files nothing is ever read here: every batch is this
 * broker's and follows the last. Owns the cursor it reads with.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker_impl.h"
#include "clock.h"
#include "log.h"
#include "logrl.h"
#include "route.h"

/* Records read per loop turn when woken by a notification. */
#define TAIL_TURN_READS		2048u

struct tail {
	struct audit_cursor	*cur;
	uint64_t		 next;		/* seq cur returns next */
	uint64_t		 target;	/* highest seq announced */
};

int
tail_init(struct broker *b, char *err, size_t errlen)
{
	if ((b->tail = calloc(1, sizeof(*b->tail))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	b->delivered = audit_last_seq(b->audit);
	b->tail->target = b->delivered;
	return 0;
}

void
tail_free(struct broker *b)
{
	if (b->tail == NULL)
		return;
	audit_cursor_free(&b->tail->cur);
	free(b->tail);
	b->tail = NULL;
}

int
tail_fd(const struct broker *b)
{
	return audit_notify_fd(b->audit);
}

/*
 * An accepted alert read from the log: into the duplicate index, and to
 * the live subscribers its record entitles. The log is the truth: an
 * entry of this broker still waiting for its commit (pending) takes the
 * record's seq and hash, whether the record is that very append (its
 * commit's answer has not been read yet) or another broker's alert that
 * took the id first (the commit will answer DUP_DIFFERENT).
 */
static void
take_alert(struct broker *b, const Cpx__AuditRecord *rec)
{
	uint8_t hash[DEDUP_HASH_LEN];
	struct dedup_entry *de;
	Cpx__Alert *a;

	if (rec->alert == NULL || (a = cpx__alert__unpack(NULL,
	    rec->alert->alert.len, rec->alert->alert.data)) == NULL ||
	    a->origin == NULL || a->id == NULL) {
		log_warnx("tail: accepted alert at seq %" PRIu64 " does not "
		    "decode; not delivered (run cpx-audit verify)", rec->seq);
		return;
	}
	dedup_hash(rec->alert->alert.data, rec->alert->alert.len, hash);
	if ((de = dedup_find(b->dedup, a->origin, a->id)) == NULL) {
		if (dedup_add(b->dedup, a->origin, a->id, rec->seq, hash,
		    0) == NULL)
			log_warnx("dedup: out of memory; repeats of %s may "
			    "be delivered twice", a->id);
	} else if (de->pending) {
		memcpy(de->hash, hash, sizeof(de->hash));
		de->seq = rec->seq;
		de->pending = 0;
	}
	b->stats.deliveries += route_record(b->edge, b->policy, rec, a);
	cpx__alert__free_unpacked(a, NULL);
}

/*
 * The log could not be read up to seq: rather than let live subscribers
 * miss records, cut them with the seq to resume after; their catch-up
 * reads the log again (replay.c).
 */
static void
lost(struct broker *b, uint64_t seq, const char *err)
{
	struct session *s;
	struct peer *pr;

	(void)logrl_log(b->logrl, clock_mono_ms(), LOG_LEVEL_WARN, NULL,
	    "tail-read", err, "tail: cannot read the audit log after seq %"
	    PRIu64 " (%s); live subscribers are cut and resume", b->delivered,
	    err);
	for (s = edge_sessions(b->edge); s != NULL; s = s->next) {
		if (s->phase != SESSION_OPEN || (pr = peer_of(s)) == NULL ||
		    !peer_subscribed(pr) || peer_catching_up(pr))
			continue;
		session_refuse(b->edge, s, CPX__REASON__REASON_OVERLOADED,
		    "the broker could not read the log: resume after seq %"
		    PRIu64, b->delivered);
	}
	audit_cursor_free(&b->tail->cur);
	b->delivered = seq;
}

/*
 * Deliver records up to seq, reading at most max. Returns 1 if it got
 * there, 0 if the budget ran out, AUDIT_CURSOR_WAIT while the next page
 * is on its way, -1 on a read error (err[]).
 */
static int
read_to(struct broker *b, uint64_t seq, unsigned int max, char *err,
    size_t errlen)
{
	struct tail *t = b->tail;
	Cpx__AuditRecord *rec;
	int rc;

	if (t->cur != NULL && t->next != b->delivered + 1)
		audit_cursor_free(&t->cur);
	if (t->cur == NULL) {
		if ((t->cur = audit_cursor_new(b->audit, b->delivered + 1, 0,
		    err, errlen)) == NULL)
			return -1;
		t->next = b->delivered + 1;
	}
	while (b->delivered < seq) {
		if (max-- == 0)
			return 0;
		if ((rc = audit_cursor_next(t->cur, &rec, err, errlen)) == -1 ||
		    rc == AUDIT_CURSOR_WAIT)
			return rc;
		if (rc == 0) {
			/* Committed before it was announced: must be there. */
			snprintf(err, errlen, "the log ends at seq %" PRIu64
			    ", %" PRIu64 " was announced", b->delivered, seq);
			return -1;
		}
		if (rec->seq != b->delivered + 1) {
			snprintf(err, errlen, "read seq %" PRIu64 " where %"
			    PRIu64 " was next", rec->seq, b->delivered + 1);
			cpx__audit_record__free_unpacked(rec, NULL);
			return -1;
		}
		if (rec->kind == CPX__RECORD_KIND__RECORD_ALERT_ACCEPTED)
			take_alert(b, rec);
		b->delivered = rec->seq;
		t->next = rec->seq + 1;
		cpx__audit_record__free_unpacked(rec, NULL);
	}
	return 1;
}

int
tail_reach(struct broker *b, uint64_t seq)
{
	struct tail *t = b->tail;
	char err[256];
	int rc;

	if (seq <= b->delivered)
		return 1;
	if (seq > t->target)
		t->target = seq;
	if ((rc = read_to(b, seq, UINT32_MAX, err, sizeof(err))) == -1)
		lost(b, seq, err);
	return rc != AUDIT_CURSOR_WAIT;
}

int
tail_pump(struct broker *b)
{
	struct tail *t = b->tail;
	uint64_t seq;
	char err[256];
	int rc;

	if (audit_notify_fd(b->audit) == -1)
		return 0;
	if ((seq = audit_notify_drain(b->audit)) > t->target)
		t->target = seq;
	if (t->target <= b->delivered)
		return 0;
	if ((rc = read_to(b, t->target, TAIL_TURN_READS, err,
	    sizeof(err))) == -1) {
		lost(b, t->target, err);
		return 0;
	}
	return rc == 0;
}
