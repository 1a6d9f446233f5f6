/*
 * peer.c: the dispatcher's state about one authenticated node (peer.h)
 * and its life: the Welcome that creates it (or the refusal instead),
 * the record of its end, and the refusals it earns (counted and
 * summarised by refusals.c, a node refused too often cut and kept out).
 * Owns each struct peer and everything in it; peer_free is the one place
 * any of it is freed.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alert.h"
#include "broker_impl.h"
#include "clock.h"
#include "cpx_limits.h"
#include "cpx_version.h"
#include "log.h"
#include "peer.h"
#include "refusals.h"
#include "replay.h"
#include "witness.h"

struct peer *
peer_new(const struct identity *id)
{
	struct peer *p;

	if ((p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	p->id = *id;
	return p;
}

void
peer_free(struct peer **pp)
{
	struct peer *p;

	if (pp == NULL || (p = *pp) == NULL)
		return;
	replay_free(&p->replay);
	witness_job_free(&p->witness);
	if (p->subscription != NULL)
		cpx__envelope__free_unpacked(p->subscription, NULL);
	if (p->parked != NULL)
		cpx__envelope__free_unpacked(p->parked, NULL);
	free(p);
	*pp = NULL;
}

void
peer_release(void *owner)
{
	struct peer *p = owner;

	peer_free(&p);
}

struct peer *
peer_of(const struct session *s)
{
	return s->owner;
}

int
peer_catching_up(const struct peer *p)
{
	return p->replay != NULL && p->replay->catch_up;
}

int
peer_subscribed(const struct peer *p)
{
	return p->subscription != NULL &&
	    p->subscription->subscribe->n_filters > 0;
}

/* Who s is for refusals: its node once welcomed, else its address. */
static void
refusal_source(const struct session *s, struct refusal_source *src)
{
	const struct peer *pr = peer_of(s);

	src->country = pr != NULL ? pr->id.country : "";
	src->node = pr != NULL ? pr->id.node : "";
	src->addr = s->addr;
}

/*
 * Record a refusal of s. The first of its kind, reason and source (the
 * node, or the address before authentication) within refusal_interval_ms
 * goes to the audit log in full; the others are only counted and come out
 * as one summary record with their count (write_summary), so whoever
 * keeps being refused cannot fill the disk. Returns 1 if it was written
 * in full (the caller logs it then, so the log stays as quiet).
 */
int
peer_note_refusal(struct broker *b, struct session *s, Cpx__RecordKind kind,
    int reason, const char *why, const char *alert_id)
{
	struct refusal_source src;

	refusal_source(s, &src);
	if (refusals_count(b->refusals, &src, kind, reason, why,
	    clock_mono_ms()) == 0)
		return 0;
	broker_audit_note(b, s, kind, reason, why, alert_id);
	return 1;
}

/*
 * A node refused more than refusal_limit times within one interval is cut
 * and kept out for a while, doubling while it goes on: refusals cost the
 * node that causes them. Refusals that only say the broker is busy or
 * failing are not the node's doing and do not count.
 */
void
peer_check_refusal_limit(struct broker *b, struct session *s, int reason)
{
	struct refusal_source src;
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
	refusal_source(s, &src);
	if (s->phase != SESSION_OPEN ||
	    refusals_total(b->refusals, &src) <= b->cfg->refusal_limit)
		return;
	out = refusals_penalise(b->refusals, &src, clock_mono_ms(),
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
	int64_t secs = (clock_mono_ms() - sum->since_ms + 999) / 1000;

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

void
peer_flush_refusals(struct broker *b, int64_t now, uint32_t interval_ms)
{
	(void)refusals_flush(b->refusals, now, interval_ms, write_summary, b);
}

/*
 * 1 (and s refused) if the node of s may not open one more session now:
 * it is kept out after too many refusals, or it already holds
 * max_sessions_per_node sessions (one certificate must not take every
 * slot of the broker).
 */
static int
node_kept_out(struct broker *b, struct session *s, const struct peer *pr)
{
	struct refusal_source src;
	const struct session *o;
	const struct peer *op;
	uint32_t n = 0;
	int64_t left;

	refusal_source(s, &src);
	if ((left = refusals_banned(b->refusals, &src, clock_mono_ms())) > 0) {
		session_refuse(b->edge, s, CPX__REASON__REASON_SESSION_LIMIT,
		    "node %s/%s is kept out for %lld more s after too many "
		    "refused requests", pr->id.country, pr->id.node,
		    (long long)(left + 999) / 1000);
		return 1;
	}
	for (o = edge_sessions(b->edge); o != NULL; o = o->next)
		if (o != s && o->welcomed && o->phase == SESSION_OPEN &&
		    (op = peer_of(o)) != NULL &&
		    strcmp(op->id.country, pr->id.country) == 0 &&
		    strcmp(op->id.node, pr->id.node) == 0)
			n++;
	if (n < b->cfg->max_sessions_per_node)
		return 0;
	session_refuse(b->edge, s, CPX__REASON__REASON_SESSION_LIMIT,
	    "node %s/%s already has %u sessions open (config key "
	    "max_sessions_per_node)", pr->id.country, pr->id.node, n);
	return 1;
}

/*
 * The identity is taken from the verified certificate alone; the peer
 * made from it is hung on s at once, so that a refusal of the node (kept
 * out, no rights) is on record under its name, one by one.
 */
void
peer_welcome(struct broker *b, struct session *s, int64_t now)
{
	Cpx__Envelope env = CPX__ENVELOPE__INIT;
	Cpx__Welcome w = CPX__WELCOME__INIT;
	const struct identity *id = tlsconn_peer(s->tls);
	struct peer *pr;

	if (id == NULL || id->country[0] == '\0') {
		session_refuse(b->edge, s, CPX__REASON__REASON_BAD_SIGNER,
		    "certificate has no usable country/node identity");
		return;
	}
	if ((pr = peer_new(id)) == NULL) {
		log_warnx("%s: refused: out of memory", s->tag);
		session_refuse(b->edge, s, CPX__REASON__REASON_INTERNAL,
		    "broker out of memory; reconnect later");
		return;
	}
	s->owner = pr;	/* the edge frees it with s: peer_release */
	if (node_kept_out(b, s, pr))
		return;
	policy_rights(b->policy, &pr->id, &pr->rights);
	if (!pr->rights.publish && !pr->rights.subscribe &&
	    !pr->rights.audit && !pr->rights.witness) {
		log_warnx("%s: refused: no rights in the policy (%s)", s->tag,
		    b->cfg->policy);
		session_refuse(b->edge, s, CPX__REASON__REASON_NOT_AUTHORIZED,
		    "node %s/%s has no rights in the broker's policy",
		    pr->id.country, pr->id.node);
		return;
	}
	w.broker_name = b->name;
	w.broker_version = (char *)CPX_VERSION;
	w.country = pr->id.country;
	w.node = pr->id.node;
	w.may_publish = pr->rights.publish;
	w.may_subscribe = pr->rights.subscribe;
	w.may_audit = pr->rights.audit;
	w.may_witness = pr->rights.witness;
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
	broker_send(b, s, &env);
	session_open(b->edge, s);
	b->stats.sessions++;
	log_info("%s: session opened from %s (publish=%d subscribe=%d "
	    "audit=%d witness=%d)", s->tag, s->addr, pr->rights.publish,
	    pr->rights.subscribe, pr->rights.audit, pr->rights.witness);
	broker_audit_note(b, s, CPX__RECORD_KIND__RECORD_SESSION_OPENED,
	    CPX__REASON__REASON_NONE, "", NULL);
	/* Requests the node sent right after its Finished. */
	broker_handle_frames(b, s, now);
}

/*
 * The peer of an ended session stays on it (the edge frees both in
 * edge_reap, once no verifier job points at them); only its record is
 * written here.
 */
void
peer_take_closed(struct broker *b)
{
	struct edge_event ev;
	struct log_fields lf;
	struct session *s;
	const struct peer *pr;
	const char *why;

	while (edge_take_closed(b->edge, &ev)) {
		s = ev.session;
		why = s->close_why[0] ? s->close_why : "closed";
		/* journald and JSON lines name the node and the reason. */
		pr = peer_of(s);
		lf.country = pr != NULL ? pr->id.country : NULL;
		lf.node = pr != NULL ? pr->id.node : NULL;
		lf.reason = alert_reason_name(s->close_reason);
		if (ev.kind == EDGE_CLOSED) {
			log_info("%s: session closed: %s", s->tag, why);
			broker_audit_note(b, s,
			    CPX__RECORD_KIND__RECORD_SESSION_CLOSED,
			    s->close_reason, s->close_why, NULL);
		} else if (peer_of(s) != NULL &&
		    s->close_reason != CPX__REASON__REASON_SESSION_LIMIT) {
			/* An authenticated node: on record one by one. */
			log_warnx_f(&lf, "%s: session refused (%s): %s", s->tag,
			    lf.reason, why);
			broker_audit_note(b, s,
			    CPX__RECORD_KIND__RECORD_SESSION_REFUSED,
			    s->close_reason, s->close_why, NULL);
		} else if (peer_note_refusal(b, s,
		    CPX__RECORD_KIND__RECORD_SESSION_REFUSED, s->close_reason,
		    why, NULL)) {
			/*
			 * Before authentication anyone can cause these:
			 * counted per address and summarised.
			 */
			log_warnx_f(&lf, "%s: session refused (%s): %s", s->tag,
			    lf.reason, why);
		}
	}
}
