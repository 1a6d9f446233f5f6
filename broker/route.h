/*
 * route.h: live delivery of an accepted, durable alert to exactly the
 * sessions that subscribed to it and are entitled to it.
 */
#ifndef CPX_ROUTE_H
#define CPX_ROUTE_H

#include <stdint.h>

#include "policy.h"
#include "proto/cpx.pb-c.h"
#include "session.h"

/*
 * Deliver (seq, accepted_at, sa) to every open, subscribed session that
 * is not catching up, whose subscription matches a and which policy lets
 * receive it. A session whose queue is over its bound is refused with
 * REASON_OVERLOADED (it resumes from its last sequence). Returns the
 * number of sessions it was queued to.
 */
unsigned int route_publish(struct edge *e, const struct policy *p,
	    const Cpx__SignedAlert *sa, const Cpx__Alert *a, uint64_t seq,
	    int64_t accepted_at);

/* 1 if s's current subscription selects a (rights and entitlement too). */
int	route_wants(const struct policy *p, const struct session *s,
	    const Cpx__Alert *a);

#endif
