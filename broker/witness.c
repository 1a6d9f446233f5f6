/*
 * witness.c: the broker's side of witnessing (witness.h). Owns the
 * module state (struct witness in witness_impl.h: the newest checkpoint
 * record, each witness node's newest cosignature record, packed, and the
 * queue of cosignatures appended, to read back once committed, with its
 * cursor) and
 * each peer's one pending answer (struct witness_job, hung on struct
 * peer). It decides a request when it arrives, from what it carries
 * alone (right, shape, one at a time, the checkpoint named within the
 * log), appends what the request makes (a checkpoint when none is known
 * yet, the alarm), and leaves everything that reads the log to a job
 * that witness_pump steps each loop turn (witness_read.c): the
 * checkpoint answer, the cosignature's checks against the checkpoint it
 * names (then its record and ack), the ack of a record. A store that
 * reads over the network may make a read wait (AUDIT_CURSOR_WAIT): the
 * job then keeps its cursor and waits for a later turn, and the loop
 * serves everyone else meanwhile. A job also waits for the commit of its
 * append (batch.c says which seq it got, in witness_batch_done), since a
 * store that commits while the loop runs, or that several brokers share,
 * fixes the seq only then.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alert.h"
#include "audit.h"
#include "broker_impl.h"
#include "log.h"
#include "tlsconn.h"
#include "wire.h"
#include "witness.h"
#include "witness_impl.h"

/*
 * Checkpoint answers that read per loop turn; each reads at most one
 * page (witness_read.c: PAGE_BYTES), whatever a witness asks. The
 * witness asks for the next. One that only waits for the store is not
 * counted.
 */
#define WITNESS_TURN_JOBS	2

/* The oldest note goes (its read too, if under way). */
static void
note_pop(struct witness *w)
{
	audit_cursor_free(&w->note_cur);
	w->nfirst = (w->nfirst + 1) % WITNESS_NOTES;
	w->nnotes--;
}

/*
 * A cosignature is served to other witnesses once it is on record, as
 * the log holds it (its seq is known only then on a shared store): it is
 * queued here when appended, given its seq by witness_batch_done and
 * read by the pump (witness_notes_drain), whether or not its witness's
 * session is still open by then.
 */
void
witness_queue_cosig(struct broker *b)
{
	struct witness		*w = b->witness;
	struct witness_note	*n;

	if (w->nnotes == WITNESS_NOTES) {
		/* The oldest goes; the log keeps it (witness_impl.h). */
		log_warnx("witness: %u cosignatures wait to be read; the "
		    "oldest is not served to other witnesses until its "
		    "witness cosigns again", WITNESS_NOTES);
		note_pop(w);
	}
	n = &w->notes[(w->nfirst + w->nnotes) % WITNESS_NOTES];
	n->state = NOTE_COMMITTING;
	n->gen = batch_gen(b);
	n->idx = batch_last_index(b);
	n->seq = 0;
	w->nnotes++;
}

/* j waits for the commit of the append just made (its seq: record). */
static void
job_wait(struct broker *b, struct witness_job *j)
{
	j->waiting = 1;
	j->gen = batch_gen(b);
	j->idx = batch_last_index(b);
	j->record = 0;
}

void
witness_batch_done(struct broker *b, uint64_t gen, int committed)
{
	struct witness		*w = b->witness;
	struct witness_note	*n;
	struct session		*s;
	struct peer		*pr;
	struct witness_job	*j;
	uint64_t		 seq;
	int64_t			 time;
	size_t			 i;

	for (s = edge_sessions(b->edge); s != NULL; s = s->next) {
		if ((pr = peer_of(s)) == NULL || (j = pr->witness) == NULL ||
		    !j->waiting || j->gen != gen)
			continue;
		j->waiting = 0;
		if (committed && audit_batch_outcome(b->audit, j->idx, &seq,
		    &time) == AUDIT_OUT_COMMITTED)
			j->record = seq;
	}
	for (i = 0; i < w->nnotes; i++) {
		n = &w->notes[(w->nfirst + i) % WITNESS_NOTES];
		if (n->state != NOTE_COMMITTING || n->gen != gen)
			continue;
		n->state = NOTE_DROPPED;
		if (committed && audit_batch_outcome(b->audit, n->idx, &seq,
		    &time) == AUDIT_OUT_COMMITTED) {
			n->state = NOTE_COMMITTED;
			n->seq = seq;
		}
	}
}

struct witness *
witness_new(void)
{
	return calloc(1, sizeof(struct witness));
}

void
witness_free(struct witness **wp)
{
	struct witness	*w;
	size_t		 i;

	if (wp == NULL || (w = *wp) == NULL)
		return;
	audit_cursor_free(&w->note_cur);
	for (i = 0; i < w->npeers; i++)
		free(w->peers[i].rec);
	free(w);
	*wp = NULL;
}

void
witness_job_free(struct witness_job **jp)
{
	struct witness_job	*j;

	if (jp == NULL || (j = *jp) == NULL)
		return;
	audit_cursor_free(&j->cur);
	if (j->ck != NULL)
		cpx__audit_record__free_unpacked(j->ck, NULL);
	free(j->leaves);
	free(j);
	*jp = NULL;
}

void
witness_note_checkpoint(struct witness *w, uint64_t rec_seq)
{
	w->ckpt = rec_seq;
}

int
witness_remember_cosig(struct witness *w, const Cpx__AuditRecord *rec)
{
	struct cosig_slot	*sl = NULL;
	uint8_t			*buf;
	size_t			 i, len;

	for (i = 0; i < w->npeers; i++)
		if (strcmp(w->peers[i].country, rec->peer_country) == 0 &&
		    strcmp(w->peers[i].node, rec->peer_node) == 0)
			sl = &w->peers[i];
	if (sl == NULL) {
		if (w->npeers == COSIGN_MAX_PEERS) {
			/* The answer's bound; the log keeps them all. */
			log_debug("witness: more than %u witness nodes; "
			    "%s/%s's cosignatures are not served to others",
			    COSIGN_MAX_PEERS, rec->peer_country,
			    rec->peer_node);
			return 0;
		}
		sl = &w->peers[w->npeers];
		memset(sl, 0, sizeof(*sl));
		snprintf(sl->country, sizeof(sl->country), "%s",
		    rec->peer_country);
		snprintf(sl->node, sizeof(sl->node), "%s", rec->peer_node);
		w->npeers++;
	}
	len = cpx__audit_record__get_packed_size(rec);
	if ((buf = malloc(len ? len : 1)) == NULL)
		return -1;
	cpx__audit_record__pack(rec, buf);
	free(sl->rec);
	sl->rec = buf;
	sl->len = len;
	sl->seq = rec->seq;
	return 0;
}

int
witness_note_record(struct witness *w, const Cpx__AuditRecord *rec)
{
	if (rec->kind == CPX__RECORD_KIND__RECORD_CHECKPOINT)
		w->ckpt = rec->seq;
	else if (rec->kind == CPX__RECORD_KIND__RECORD_COSIGNATURE &&
	    rec->peer_country != NULL && rec->peer_node != NULL)
		return witness_remember_cosig(w, rec);
	return 0;
}

void
witness_refuse(struct broker *b, struct session *s, uint64_t request_id,
    int reason, const char *why)
{
	if (peer_note_refusal(b, s, CPX__RECORD_KIND__RECORD_REQUEST_REFUSED,
	    reason, why, NULL))
		log_warnx("%s: witness request refused (%s): %s", s->tag,
		    alert_reason_name(reason), why);
	broker_send_error(b, s, request_id, reason, why);
	peer_check_refusal_limit(b, s, reason);
}

/* One answer at a time per session: 0, or -1 with the request refused. */
static int
one_at_a_time(struct broker *b, struct session *s, const struct peer *pr,
    uint64_t request_id)
{
	if (pr->witness == NULL)
		return 0;
	witness_refuse(b, s, request_id, CPX__REASON__REASON_BAD_REQUEST,
	    "a witness request of this session is still being answered; "
	    "send one at a time");
	return -1;
}

static void
take_request(struct broker *b, struct session *s, struct peer *pr,
    const Cpx__WitnessRequest *rq, int64_t now)
{
	struct witness		*w = b->witness;
	struct witness_job	*j;
	uint64_t		 rec;
	int			 latest = rq->checkpoint_record == 0;

	if (one_at_a_time(b, s, pr, rq->request_id) == -1)
		return;
	rec = latest ? w->ckpt : rq->checkpoint_record;
	if (!latest && rec > audit_last_seq(b->audit)) {
		witness_refuse(b, s, rq->request_id,
		    CPX__REASON__REASON_BAD_REQUEST, "checkpoint_record is "
		    "beyond the log's end; ask with 0 for the newest "
		    "checkpoint");
		return;
	}
	if ((j = calloc(1, sizeof(*j))) == NULL) {
		broker_send_error(b, s, rq->request_id,
		    CPX__REASON__REASON_INTERNAL, "broker out of memory");
		return;
	}
	j->kind = JOB_CHECKPOINT;
	j->request_id = rq->request_id;
	j->have_seq = rq->have_seq;
	j->record = rec;
	j->latest = latest;
	/*
	 * No checkpoint yet (a fresh log): one for the witness. On a shared
	 * log, also when records came after this broker's newest one: a
	 * witness that moved here from another broker may hold a later
	 * checkpoint of that one's, and this one's must not be behind it.
	 */
	if (latest && (w->ckpt == 0 || (audit_shared(b->audit) &&
	    w->ckpt < b->delivered))) {
		if (audit_checkpoint(b->audit) == -1) {
			broker_send_error(b, s, rq->request_id,
			    CPX__REASON__REASON_INTERNAL, "the broker cannot "
			    "sign a checkpoint now; retry later");
			witness_job_free(&j);
			return;
		}
		/* Its seq comes with its commit (batch.c). */
		batch_note_checkpoint(b);
		job_wait(b, j);
		b->since_checkpoint = 0;
		b->last_checkpoint_ms = now;
		log_info("%s: witness: checkpoint appended for the witness",
		    s->tag);
	}
	pr->witness = j;
}

int
witness_append_for(struct broker *b, struct session *s, struct peer *pr,
    Cpx__AuditRecord *rec, const uint8_t *der, size_t derlen, uint64_t *seq)
{
	rec->peer_country = pr->id.country;
	rec->peer_node = pr->id.node;
	rec->peer_address = s->addr;
	rec->session_id = s->id;
	rec->witness_cert.data = (uint8_t *)der;
	rec->witness_cert.len = derlen;
	if (audit_append(b->audit, rec, seq) == -1) {
		log_warnx("%s: witness: record of kind %d could not be "
		    "appended", s->tag, rec->kind);
		return -1;
	}
	b->since_checkpoint++;
	return 0;
}

int
witness_ack_job(struct broker *b, struct peer *pr, uint64_t request_id)
{
	struct witness_job	*j;

	if ((j = calloc(1, sizeof(*j))) == NULL)
		return -1;
	j->kind = JOB_ACK;
	j->request_id = request_id;
	job_wait(b, j);
	pr->witness = j;
	return 0;
}

/*
 * A Cosign: whether it names a checkpoint of this log, exactly as the
 * broker signed it, and is signed by the session's key needs that
 * checkpoint record, so the job that reads it decides
 * (witness_read.c). It keeps its own copy of what the request carried.
 */
static void
take_cosign(struct broker *b, struct session *s, struct peer *pr,
    const Cpx__Cosign *cs)
{
	struct witness_job	*j;

	if (one_at_a_time(b, s, pr, cs->request_id) == -1)
		return;
	/* wire.c refused other lengths; a copy is bounded all the same. */
	if (cs->checkpoint_hash.len != CHAIN_HASH_LEN ||
	    cs->signature.len == 0 || cs->signature.len > CPX_MAX_SIGNATURE) {
		witness_refuse(b, s, cs->request_id,
		    CPX__REASON__REASON_BAD_REQUEST, "cosign: checkpoint_hash "
		    "or signature of the wrong size");
		return;
	}
	if ((j = calloc(1, sizeof(*j))) == NULL) {
		broker_send_error(b, s, cs->request_id,
		    CPX__REASON__REASON_INTERNAL, "broker out of memory");
		return;
	}
	j->kind = JOB_COSIGN;
	j->request_id = cs->request_id;
	j->record = cs->checkpoint_record;
	j->cosigned_seq = cs->checkpoint_seq;
	memcpy(j->cosigned_hash, cs->checkpoint_hash.data, CHAIN_HASH_LEN);
	memcpy(j->sig, cs->signature.data, cs->signature.len);
	j->siglen = cs->signature.len;
	pr->witness = j;
}

static void
take_alarm(struct broker *b, struct session *s, struct peer *pr,
    const Cpx__WitnessAlarm *al)
{
	Cpx__AuditRecord	 rec = CPX__AUDIT_RECORD__INIT;
	const uint8_t		*der;
	char			 text[COSIGN_MAX_ALARM_TEXT + 1];
	size_t			 derlen = 0;
	uint64_t		 seq;

	/* The witness's words reach the log and a terminal: printable. */
	(void)wire_printable(al->text, text, sizeof(text));
	log_warnx("%s: WITNESS ALARM: holds seq %" PRIu64 ", shown seq %"
	    PRIu64 ": %s", s->tag, al->have_seq, al->seen_seq, text);
	/* Logged above all the same: an alarm is never dropped. */
	if (one_at_a_time(b, s, pr, al->request_id) == -1)
		return;
	der = tlsconn_peer_cert_der(s->tls, &derlen);
	rec.kind = CPX__RECORD_KIND__RECORD_WITNESS_ALARM;
	rec.text = text;
	rec.cosigned_seq = al->have_seq;
	rec.cosigned_hash = al->have_hash;
	rec.alarm_seq = al->seen_seq;
	rec.alarm_hash = al->seen_hash;
	if (witness_append_for(b, s, pr, &rec, der, der ? derlen : 0,
	    &seq) == -1 || witness_ack_job(b, pr, al->request_id) == -1)
		broker_send_error(b, s, al->request_id,
		    CPX__REASON__REASON_STORAGE, "the alarm could not be "
		    "recorded (it is in the broker's log file)");
}

void
witness_handle(struct broker *b, struct session *s, const Cpx__Envelope *env,
    int64_t now)
{
	struct peer	*pr = peer_of(s);
	uint64_t	 rid = 0;
	char		 why[256];

	switch (env->body_case) {
	case CPX__ENVELOPE__BODY_WITNESS_REQUEST:
		rid = env->witness_request->request_id;
		break;
	case CPX__ENVELOPE__BODY_COSIGN:
		rid = env->cosign->request_id;
		break;
	case CPX__ENVELOPE__BODY_WITNESS_ALARM:
		rid = env->witness_alarm->request_id;
		break;
	default:
		return;
	}
	if (!pr->rights.witness) {
		snprintf(why, sizeof(why), "node %s/%s has no witness right in "
		    "the broker's policy", pr->id.country, pr->id.node);
		witness_refuse(b, s, rid, CPX__REASON__REASON_NOT_AUTHORIZED,
		    why);
		return;
	}
	if (env->body_case == CPX__ENVELOPE__BODY_WITNESS_REQUEST)
		take_request(b, s, pr, env->witness_request, now);
	else if (env->body_case == CPX__ENVELOPE__BODY_COSIGN)
		take_cosign(b, s, pr, env->cosign);
	else
		take_alarm(b, s, pr, env->witness_alarm);
}

int
witness_pump(struct broker *b)
{
	struct session		*s;
	struct peer		*pr;
	struct witness_job	*j;
	size_t			 pending = audit_pending(b->audit);
	int			 served = 0, busy = 0, worked, counted;

	witness_notes_drain(b);
	for (s = edge_sessions(b->edge); s != NULL; s = s->next) {
		if ((pr = peer_of(s)) == NULL || (j = pr->witness) == NULL ||
		    s->phase != SESSION_OPEN || s->dead)
			continue;
		/* Its append is not committed yet: batch.c wakes it. */
		if (j->waiting)
			continue;
		counted = j->kind == JOB_CHECKPOINT;
		if (counted && served >= WITNESS_TURN_JOBS) {
			busy = 1;
			continue;
		}
		worked = 0;
		/* Detached: a cosignature's step hangs its ack job there. */
		pr->witness = NULL;
		if (witness_job_step(b, s, pr, j, &worked) == 0)
			pr->witness = j;	/* a page is being fetched */
		else
			witness_job_free(&j);
		if (counted)
			served += worked;
	}
	/*
	 * A job left waiting for a page is not more work now: the store's
	 * read fd wakes the loop. A record a step appended (a cosignature)
	 * is: the next turn begins its commit.
	 */
	return busy || audit_pending(b->audit) > pending;
}
