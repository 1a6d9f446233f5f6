/*
 * route.c: acts on routing decisions taken by policy.c. The Delivery frame
 * is encoded once and the same bytes are queued to every recipient.
 */
#include <stdlib.h>

#include <openssl/crypto.h>

#include "log.h"
#include "route.h"
#include "wire.h"

int
route_wants(const struct policy *p, const struct session *s,
    const Cpx__Alert *a)
{
	const Cpx__Subscribe *sub;

	if (s->phase != SESSION_OPEN || s->subscription == NULL ||
	    s->catching_up || !s->rights.subscribe)
		return 0;
	sub = s->subscription->subscribe;
	if (!policy_may_receive(p, &s->peer, a))
		return 0;
	return policy_filters_match(p, sub->filters, sub->n_filters, a);
}

unsigned int
route_publish(struct edge *e, const struct policy *p,
    const Cpx__SignedAlert *sa, const Cpx__Alert *a, uint64_t seq,
    int64_t accepted_at)
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
	env.body_case = CPX__ENVELOPE__BODY_DELIVERY;
	env.delivery = &d;
	for (s = edge_sessions(e); s != NULL; s = s->next) {
		if (!route_wants(p, s, a))
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
