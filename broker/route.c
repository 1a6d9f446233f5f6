/*
 * route.c: acts on routing decisions. Expands an alert's recipients into
 * the set of entitled countries (once, when it is accepted: the set is
 * kept in its audit record so history is replayed to whoever was
 * entitled then, not to whoever a later policy names) and answers, for
 * live delivery and history alike, whether a peer gets an alert. The
 * Delivery frame is encoded once and the same bytes are queued to every
 * recipient.
 *
 * Live delivery happens in the loop turn that accepted the alert, under
 * the same policy, so it asks the policy directly (per session, cheaper
 * than expanding regions into countries); route_entitled_expand applies
 * the same rules (policy_may_receive), and tests/test_entitled.c holds
 * the two to agree for every country.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "log.h"
#include "route.h"
#include "trace.h"
#include "wire.h"

/* Index of "AA".."ZZ", or -1 for anything else. */
static int
cc_index(const char *cc)
{
	if (cc == NULL || cc[0] < 'A' || cc[0] > 'Z' || cc[1] < 'A' ||
	    cc[1] > 'Z' || cc[2] != '\0')
		return -1;
	return (cc[0] - 'A') * 26 + (cc[1] - 'A');
}

static void
set_add(struct route_entitled *e, int i)
{
	e->set[i / 8] |= (uint8_t)(1u << (i % 8));
}

static int
set_has(const struct route_entitled *e, int i)
{
	return (e->set[i / 8] >> (i % 8)) & 1;
}

void
route_entitled_expand(const struct policy *p, const Cpx__Alert *a,
    struct route_entitled *e)
{
	const char *rc;
	char cc[3];
	size_t i;
	int ci, j;

	memset(e, 0, sizeof(*e));
	if (a == NULL || (a->n_recipients > 0 && a->recipients == NULL))
		return;
	switch (a->handling) {
	case CPX__HANDLING__HANDLING_NETWORK:
		if (a->n_recipients == 0) {
			e->everyone = 1;
			return;
		}
		break;
	case CPX__HANDLING__HANDLING_RESTRICTED:
	case CPX__HANDLING__HANDLING_NAMED_ONLY:
		break;
	default:
		return;		/* unknown handling: fail closed */
	}
	for (i = 0; i < a->n_recipients; i++) {
		if ((rc = a->recipients[i]) == NULL)
			continue;
		if ((ci = cc_index(rc)) != -1) {
			set_add(e, ci);
			continue;
		}
		/* Regions are lower case; NAMED_ONLY never widens to one. */
		if (a->handling == CPX__HANDLING__HANDLING_NAMED_ONLY ||
		    (rc[0] >= 'A' && rc[0] <= 'Z'))
			continue;
		if (strcmp(rc, "all") == 0) {
			/* Every verified peer has an assigned country. */
			e->everyone = 1;
			return;
		}
		if (!policy_region_exists(p, rc))
			continue;
		cc[2] = '\0';
		for (j = 0; j < ROUTE_NCC; j++) {
			cc[0] = (char)('A' + j / 26);
			cc[1] = (char)('A' + j % 26);
			if (policy_region_has(p, rc, cc))
				set_add(e, j);
		}
	}
}

void
route_entitled_list(const struct route_entitled *e,
    struct route_entitled_list *l)
{
	int j;

	l->n = 0;
	if (e->everyone) {
		memcpy(l->cc[0], ROUTE_EVERYONE, sizeof(ROUTE_EVERYONE));
		l->v[l->n++] = l->cc[0];
		return;
	}
	for (j = 0; j < ROUTE_NCC; j++) {
		if (!set_has(e, j))
			continue;
		l->cc[l->n][0] = (char)('A' + j / 26);
		l->cc[l->n][1] = (char)('A' + j % 26);
		l->cc[l->n][2] = '\0';
		l->v[l->n] = l->cc[l->n];
		l->n++;
	}
	/* Never empty: an empty list means "recorded before the list". */
	if (l->n == 0) {
		memcpy(l->cc[0], ROUTE_NOBODY, sizeof(ROUTE_NOBODY));
		l->v[l->n++] = l->cc[0];
	}
}

void
route_entitled_record(const struct policy *p, const Cpx__Alert *a,
    struct route_entitled_list *l)
{
	struct route_entitled e;

	route_entitled_expand(p, a, &e);
	route_entitled_list(&e, l);
}

int
route_entitled_from_record(const Cpx__AuditRecord *rec,
    struct route_entitled *e)
{
	size_t i;
	int ci;

	memset(e, 0, sizeof(*e));
	if (rec->n_entitled == 0 || rec->entitled == NULL)
		return -1;
	for (i = 0; i < rec->n_entitled; i++) {
		if (rec->entitled[i] == NULL)
			continue;
		if (strcmp(rec->entitled[i], ROUTE_EVERYONE) == 0)
			e->everyone = 1;
		else if ((ci = cc_index(rec->entitled[i])) != -1)
			set_add(e, ci);
		/* "-" and anything unknown add nobody: fail closed. */
	}
	return 0;
}

int
route_may_have(const struct policy *p, const struct peer *pr,
    const struct route_entitled *e, const Cpx__Alert *a)
{
	int ci;

	/* Rights as of now: a reload that took them away stops delivery. */
	if (!pr->rights.subscribe)
		return 0;
	if (e == NULL)
		return policy_may_receive(p, &pr->id, a);
	if ((ci = cc_index(pr->id.country)) == -1)
		return 0;
	return e->everyone || set_has(e, ci);
}

int
route_matches(const struct policy *p, Cpx__Filter *const *filters,
    size_t nfilters, const Cpx__Alert *a)
{
	return nfilters == 0 || policy_filters_match(p, filters, nfilters, a);
}

int
route_selects(const struct policy *p, const struct peer *pr,
    const struct route_entitled *e, Cpx__Filter *const *filters,
    size_t nfilters, const Cpx__Alert *a)
{
	return route_may_have(p, pr, e, a) &&
	    route_matches(p, filters, nfilters, a);
}

/* route_wants, with the entitled list of the alert's record, or NULL. */
static int
wants(const struct policy *p, const struct session *s,
    const struct route_entitled *ent, const Cpx__Alert *a)
{
	const struct peer *pr = peer_of(s);
	const Cpx__Subscribe *sub;

	if (s->phase != SESSION_OPEN || pr == NULL || !peer_subscribed(pr) ||
	    peer_catching_up(pr))
		return 0;
	sub = pr->subscription->subscribe;
	return route_selects(p, pr, ent, sub->filters, sub->n_filters, a);
}

int
route_wants(const struct policy *p, const struct session *s,
    const Cpx__Alert *a)
{
	/* Live: the policy p is the one the alert was accepted under. */
	return wants(p, s, NULL, a);
}

/* route_publish and route_record: ent NULL means a's recipients under p. */
static unsigned int
deliver(struct edge *e, const struct policy *p,
    const struct route_entitled *ent, const Cpx__SignedAlert *sa,
    const Cpx__Alert *a, uint64_t seq, int64_t accepted_at,
    const struct trace *tr)
{
	Cpx__Envelope env = CPX__ENVELOPE__INIT;
	Cpx__Delivery d = CPX__DELIVERY__INIT;
	struct session *s;
	uint8_t *buf = NULL;
	size_t len = 0;
	unsigned int n = 0;

	d.seq = seq;
	d.accepted_at = accepted_at;
	d.alert = (Cpx__SignedAlert *)sa;
	TRACE_ATTACH(&d, tr);	/* benchmark builds only (lib/trace.h) */
	env.body_case = CPX__ENVELOPE__BODY_DELIVERY;
	env.delivery = &d;
	for (s = edge_sessions(e); s != NULL; s = s->next) {
		if (!wants(p, s, ent, a))
			continue;
		if (buf == NULL && wire_encode(&env, &buf, &len) == -1) {
			log_warnx("route: cannot encode delivery of seq %llu",
			    (unsigned long long)seq);
			return n;
		}
		if (session_send_raw(e, s, buf, len) == -1) {
			log_warnx("%s: outbound queue over %zu bytes, "
			    "disconnecting; it resumes after seq %llu", s->tag,
			    session_queued(s), (unsigned long long)(seq - 1));
			session_refuse(e, s, CPX__REASON__REASON_OVERLOADED,
			    "outbound queue full: resume after seq %llu",
			    (unsigned long long)(seq - 1));
			continue;
		}
		n++;
	}
	OPENSSL_clear_free(buf, len);
	return n;
}

unsigned int
route_publish(struct edge *e, const struct policy *p,
    const Cpx__SignedAlert *sa, const Cpx__Alert *a, uint64_t seq,
    int64_t accepted_at, const struct trace *tr)
{
	return deliver(e, p, NULL, sa, a, seq, accepted_at, tr);
}

unsigned int
route_record(struct edge *e, const struct policy *p,
    const Cpx__AuditRecord *rec, const Cpx__Alert *a)
{
	struct route_entitled ent;
	int known;

	if (rec->alert == NULL)
		return 0;
	/* As replay does: who was entitled when it was accepted. */
	known = route_entitled_from_record(rec, &ent) == 0;
	return deliver(e, p, known ? &ent : NULL, rec->alert, a, rec->seq,
	    rec->time, NULL);
}
