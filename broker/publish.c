/*
 * publish.c: one publish from admission to its Ack. Admission to the
 * verifier threads (a bounded backlog; a session over it is parked, not
 * buffered without end), the signature check on a verifier thread or
 * inline (verify.c), the decisions back on the network thread (policy,
 * relaying, duplicates, references) and the audit append. The commit
 * that makes the appends durable before any Ack or Delivery goes out is
 * batch.c's, which holds each publish (struct pending) until then.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "alert.h"
#include "broker_impl.h"
#include "clock.h"
#include "cpx_limits.h"
#include "log.h"
#include "logrl.h"
#include "metrics.h"
#include "ratelimit.h"
#include "route.h"
#include "trace.h"
#include "verifier.h"
#include "verify.h"

#define PARKED_INPUT_FRAMES	4	/* x max_frame buffered while parked */
#define VERIFY_HERE_MAX		4	/* a turn's publishes verified inline */

/* The one place a publish is refused: answer, log, audit. */
void
publish_refuse(struct broker *b, struct session *s, uint64_t request_id,
    const char *alert_id, int reason, const char *why)
{
	const struct peer *pr = peer_of(s);
	struct log_fields lf = { NULL, NULL, NULL };

	b->stats.refused++;
	lf.country = pr != NULL ? pr->id.country : NULL;
	lf.node = pr != NULL ? pr->id.node : NULL;
	lf.reason = alert_reason_name(reason);
	metrics_refused(b->metrics, lf.country, reason);
	if (peer_note_refusal(b, s, CPX__RECORD_KIND__RECORD_PUBLISH_REFUSED,
	    reason, why, alert_id))
		log_warnx_f(&lf, "%s: publish %s refused (%s): %s", s->tag,
		    alert_id ? alert_id : "?", lf.reason, why);
	broker_send_error(b, s, request_id, reason, why);
	peer_check_refusal_limit(b, s, reason);
}

void
publish_send_ack(struct broker *b, struct session *s, uint64_t request_id,
    uint64_t seq, const char *alert_id, int duplicate, const struct trace *tr)
{
	Cpx__Envelope env = CPX__ENVELOPE__INIT;
	Cpx__Ack ack = CPX__ACK__INIT;

	ack.request_id = request_id;
	ack.seq = seq;
	ack.alert_id = (char *)alert_id;
	ack.duplicate = duplicate;
	TRACE_ATTACH(&ack, tr);
	env.body_case = CPX__ENVELOPE__BODY_ACK;
	env.ack = &ack;
	broker_send(b, s, &env);
}

/*
 * A repeat of an alert already in the log or in this turn's batch: the
 * same bytes are acknowledged again with the original seq (once the
 * batch holds, if the original is in it), different bytes are refused.
 * Ids are per origin: the earlier alert found here is always of the same
 * origin, so naming its seq reveals nothing of another country's alerts.
 */
static void
answer_repeat(struct broker *b, struct session *s, const Cpx__Publish *pub,
    const Cpx__Alert *a, const struct dedup_entry *de,
    const uint8_t hash[DEDUP_HASH_LEN])
{
	struct pending *p;
	char why[256];

	if (CRYPTO_memcmp(de->hash, hash, DEDUP_HASH_LEN) != 0) {
		snprintf(why, sizeof(why), "alert id %s of %s was accepted "
		    "before (seq %" PRIu64 ") with different content", a->id,
		    a->origin, de->seq);
		publish_refuse(b, s, pub->request_id, a->id,
		    CPX__REASON__REASON_DUPLICATE_CONFLICT, why);
		return;
	}
	b->stats.duplicates++;
	log_info("%s: alert %s is a repeat of seq %" PRIu64 ", acknowledged "
	    "again", s->tag, a->id, de->seq);
	if (!de->pending) {
		publish_send_ack(b, s, pub->request_id, de->seq, a->id, 1, NULL);
		return;
	}
	/* The original's seq is its commit's: acknowledged after it. */
	if ((p = batch_push(b, s, PENDING_REPEAT)) == NULL) {
		publish_refuse(b, s, pub->request_id, a->id,
		    CPX__REASON__REASON_INTERNAL, "broker out of memory");
		return;
	}
	p->request_id = pub->request_id;
	p->duplicate = 1;
	memcpy(p->hash, hash, sizeof(p->hash));
	snprintf(p->origin, sizeof(p->origin), "%s", a->origin);
	snprintf(p->alert_id, sizeof(p->alert_id), "%s", a->id);
}

/*
 * The second half of a publish, once signature, origin and form hold:
 * policy and relaying, duplicates and references, the audit append.
 * Takes over *envp and *ap; tr holds the publish's stamps so far.
 */
static void
accept_verified(struct broker *b, struct session *s, Cpx__Envelope **envp,
    Cpx__Alert **ap, const struct trace *tr)
{
	Cpx__Envelope *env = *envp;
	Cpx__Publish *pub = env->publish;
	Cpx__Alert *a = *ap;
	Cpx__AuditRecord rec = CPX__AUDIT_RECORD__INIT;
	struct peer *pr = peer_of(s);
	struct route_entitled_list ent;
	uint8_t hash[DEDUP_HASH_LEN];
	struct dedup_entry *de;
	struct pending *p;
	const uint8_t *der;
	char why[256], note[CPX_MAX_NODE_NAME + 32];
	size_t derlen;
	uint64_t seq;
	int reason;

	*ap = NULL;
	der = tlsconn_peer_cert_der(s->tls, &derlen);
	if (policy_check_publish(b->policy, &pr->id, a, &reason, why,
	    sizeof(why)) == -1 || verify_relay(b->policy, &pr->id, der,
	    derlen, pub->alert, note, sizeof(note), &reason, why,
	    sizeof(why)) == -1) {
		publish_refuse(b, s, pub->request_id, a->id, reason, why);
		goto done;
	}
	dedup_hash(pub->alert->alert.data, pub->alert->alert.len, hash);
	if ((de = dedup_find(b->dedup, a->origin, a->id)) != NULL) {
		answer_repeat(b, s, pub, a, de, hash);
		goto done;
	}
	if (dedup_check_reference(b->dedup, a, &reason, why,
	    sizeof(why)) == -1) {
		publish_refuse(b, s, pub->request_id, a->id, reason, why);
		goto done;
	}
	rec.kind = CPX__RECORD_KIND__RECORD_ALERT_ACCEPTED;
	rec.peer_country = pr->id.country;
	rec.peer_node = pr->id.node;
	rec.peer_address = s->addr;
	rec.session_id = s->id;
	rec.alert = pub->alert;
	rec.alert_id = a->id;
	rec.text = note;	/* "relayed for CC/node", or empty */
	/* Fixed now: replay goes by who was entitled at acceptance. */
	route_entitled_record(b->policy, a, &ent);
	rec.entitled = ent.v;
	rec.n_entitled = ent.n;
	if ((p = batch_push(b, s, PENDING_ALERT)) == NULL) {
		publish_refuse(b, s, pub->request_id, a->id,
		    CPX__REASON__REASON_INTERNAL, "broker out of memory");
		goto done;
	}
	/* A shared store gives no seq here: the commit's outcome will. */
	if (audit_append(b->audit, &rec, &seq) == -1) {
		batch_pop(b);
		publish_refuse(b, s, pub->request_id, a->id,
		    CPX__REASON__REASON_TOO_LARGE,
		    "alert too large for the audit log");
		goto done;
	}
	p->idx = batch_last_index(b);
	p->seq = seq;
	b->since_checkpoint++;
	TRACE_COPY(&p->trace, tr);
	TRACE_STAMP(&p->trace, TRACE_APPENDED);
	if (note[0] != '\0')
		log_info("%s: alert %s %s", s->tag, a->id, note);
	if (dedup_add(b->dedup, a->origin, a->id, p->seq, hash, 1) == NULL)
		log_warnx("dedup: out of memory; repeats of %s may be "
		    "delivered twice", a->id);
	p->request_id = pub->request_id;
	p->time = rec.time;
	p->env = env;
	p->alert = a;
	memcpy(p->hash, hash, sizeof(p->hash));
	snprintf(p->origin, sizeof(p->origin), "%s", a->origin);
	snprintf(p->alert_id, sizeof(p->alert_id), "%s", a->id);
	*envp = NULL;		/* the pending entry owns both now */
	a = NULL;
done:
	if (a != NULL)
		cpx__alert__free_unpacked(a, NULL);
}

/* Hand the signature check to a verifier thread; 0 if it took it. */
static int
submit_verify(struct broker *b, struct session *s, Cpx__Envelope **envp,
    const struct trace *tr)
{
	struct peer *pr = peer_of(s);
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
	job->peer = pr->id;
	job->may_relay = pr->rights.relay;
	job->now_ms = clock_wall_ms();
	job->max_skew_ms = b->cfg->clock_skew_ms;
	TRACE_COPY(&job->trace, tr);
	TRACE_STAMP(&job->trace, TRACE_SUBMITTED);
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
			publish_send_ack(b, s, pub->request_id, de->seq, a->id, 1,
			    NULL);
			done = 1;
		}
	}
	cpx__alert__free_unpacked(a, NULL);
	return done;
}

/*
 * 1 if the signature of a publish of s is best checked here, on the
 * network thread, rather than handed to a verifier: when no earlier
 * publish of s is still with a verifier (it would be overtaken: a
 * reference to it would be refused, and Acks would come out of order),
 * for the first VERIFY_HERE_MAX publishes of a turn. At a low rate, or
 * for a node that awaits each Ack, or for the few publishes that came in
 * while the last commit was on the disk, the round trip to a verifier
 * thread and back would cost each two thread wake-ups and a loop turn:
 * checked here, they are appended and committed in the turn they arrived
 * in. Under load the rest of the turn's publishes go to the verifiers as
 * before, and the network thread, which verifies a few itself, stays
 * free to read.
 */
static int
verify_here(struct broker *b, const struct session *s)
{
	if (b->verifier == NULL)
		return 1;
	if (s->jobs > 0 || b->verified_here >= VERIFY_HERE_MAX)
		return 0;
	b->verified_here++;
	return 1;
}

static void
handle_publish(struct broker *b, struct session *s, Cpx__Envelope **envp,
    int64_t now)
{
	Cpx__Publish *pub = (*envp)->publish;
	struct peer *pr = peer_of(s);
	struct identity signer;
	struct verify_peer vp;
	struct trace tr;
	Cpx__Alert *a = NULL;
	char why[256];
	int reason, relayed;

	memset(&tr, 0, sizeof(tr));
	TRACE_STAMP(&tr, TRACE_DECODED);
	if (!pr->rights.publish) {
		snprintf(why, sizeof(why), "node %s/%s has no publish right "
		    "in the policy", pr->id.country, pr->id.node);
		publish_refuse(b, s, pub->request_id, NULL,
		    CPX__REASON__REASON_NOT_AUTHORIZED, why);
		return;
	}
	if (!ratelimit_take(b->ratelimit, &pr->id, now)) {
		snprintf(why, sizeof(why), "more than %u alerts/s (burst %u; "
		    "config keys publish_rate, publish_burst)",
		    b->cfg->publish_rate, b->cfg->publish_burst);
		publish_refuse(b, s, pub->request_id, NULL,
		    CPX__REASON__REASON_RATE_LIMITED, why);
		return;
	}
	if (!verify_here(b, s) && submit_verify(b, s, envp, &tr) == 0)
		return;
	TRACE_STAMP(&tr, TRACE_SUBMITTED);
	TRACE_STAMP(&tr, TRACE_VERIFY_START);
	vp.id = &pr->id;
	vp.cert = tlsconn_peer_cert_der(s->tls, &vp.cert_len);
	vp.may_relay = pr->rights.relay;
	if (verify_signed(b->trust, &vp, pub->alert, clock_wall_ms(),
	    b->cfg->clock_skew_ms, &a, &signer, &relayed, &reason, why,
	    sizeof(why)) == -1) {
		if (!ack_if_repeat(b, s, pub, reason))
			publish_refuse(b, s, pub->request_id, NULL, reason,
			    why);
		return;
	}
	TRACE_STAMP(&tr, TRACE_VERIFY_END);
	TRACE_STAMP(&tr, TRACE_TAKEN);
	accept_verified(b, s, envp, &a, &tr);
}

/*
 * 1 if one more publish of s may go to the verifier threads now. This
 * bound, not the pipes to the threads (unbounded, see lib/workpool.c), is
 * what holds memory, and the network thread never waits on it: a session
 * over it is parked instead (publish_take). A quarter of the backlog per
 * session keeps one node that pipelines thousands of publishes from
 * taking every slot.
 */
int
publish_admits(const struct broker *b, const struct session *s)
{
	if (b->verifier == NULL)
		return 1;
	return verifier_inflight(b->verifier) < b->cfg->verify_backlog &&
	    s->jobs < b->cfg->verify_backlog / 4;
}

int
publish_take(struct broker *b, struct session *s, Cpx__Envelope **envp,
    int64_t now)
{
	if (publish_admits(b, s)) {
		handle_publish(b, s, envp, now);
		return 0;
	}
	/*
	 * Back-pressure: stop taking this session's requests until the
	 * verifiers catch up. Only if it keeps sending past a bound
	 * meanwhile are its publishes refused, so its buffered input stays
	 * bounded too.
	 */
	if (tlsconn_in_pending(s->tls) <=
	    PARKED_INPUT_FRAMES * (size_t)b->cfg->max_frame) {
		peer_of(s)->parked = *envp;
		*envp = NULL;
		return 1;
	}
	publish_refuse(b, s, (*envp)->publish->request_id, NULL,
	    CPX__REASON__REASON_OVERLOADED, "the broker's verification "
	    "backlog is full (config key verify_backlog); retry later");
	return 0;
}

void
publish_take_verified(struct broker *b)
{
	struct verify_job *j;
	struct session *s;

	if (b->verifier == NULL)
		return;
	while ((j = verifier_take(b->verifier)) != NULL) {
		s = j->session;
		s->jobs--;
		TRACE_STAMP(&j->trace, TRACE_TAKEN);
		if (s->dead || s->phase != SESSION_OPEN)
			;	/* gone or refused meanwhile: nothing to answer */
		else if (j->rc == -1) {
			if (!ack_if_repeat(b, s, j->env->publish, j->reason))
				publish_refuse(b, s,
				    j->env->publish->request_id, NULL,
				    j->reason, j->why);
		}
		else
			accept_verified(b, s, &j->env, &j->alert, &j->trace);
		verify_job_free(&j);
	}
}
