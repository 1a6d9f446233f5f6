/*
 * route.h: who gets an accepted alert. Live delivery of an accepted,
 * durable alert to exactly the sessions that subscribed to it and are
 * entitled to it, and the one entitlement decision that live delivery,
 * replay and resume all take (route_may_have).
 */
#ifndef CPX_ROUTE_H
#define CPX_ROUTE_H

#include <stdint.h>

#include "policy.h"
#include "proto/cpx.pb-c.h"
#include "session.h"

#define ROUTE_NCC		(26 * 26)	/* every "AA".."ZZ" */
#define ROUTE_EVERYONE		"*"	/* AuditRecord.entitled */
#define ROUTE_NOBODY		"-"

/*
 * The countries entitled to an alert: its recipients expanded through
 * the regions of a policy, or everyone (with the subscribe right).
 */
struct route_entitled {
	int	everyone;
	uint8_t	set[(ROUTE_NCC + 7) / 8];	/* "AA".."ZZ" */
};

/* The same as AuditRecord.entitled strings (storage for the record). */
struct route_entitled_list {
	char	 cc[ROUTE_NCC][3];
	char	*v[ROUTE_NCC];
	size_t	 n;
};

/*
 * Expand a's recipients and handling code through p: NETWORK without
 * recipients and the region "all" give everyone, a country itself, a
 * region its members (never for NAMED_ONLY), an unknown handling code
 * nobody. Same rules as policy_may_receive().
 */
void	route_entitled_expand(const struct policy *p, const Cpx__Alert *a,
	    struct route_entitled *e);
/* e as strings for AuditRecord.entitled (never empty: "*" or "-"). */
void	route_entitled_list(const struct route_entitled *e,
	    struct route_entitled_list *l);
/* route_entitled_expand then route_entitled_list: for a new record. */
void	route_entitled_record(const struct policy *p, const Cpx__Alert *a,
	    struct route_entitled_list *l);
/*
 * Read rec's entitled list into e. Returns 0, or -1 if rec has none (a
 * record written before the list existed: the caller expands the alert
 * through today's policy instead).
 */
int	route_entitled_from_record(const Cpx__AuditRecord *rec,
	    struct route_entitled *e) __attribute__((warn_unused_result));
/*
 * The one answer to "may this session have this alert", live or from
 * history: s holds the subscribe right now, and it is among those
 * entitled: by e, the list kept in the alert's audit record, or if e is
 * NULL by a's recipients under p (live delivery, in the turn that
 * accepted it; history recorded before records kept the list). 1 or 0.
 */
int	route_may_have(const struct policy *p, const struct session *s,
	    const struct route_entitled *e, const Cpx__Alert *a);

/*
 * Deliver (seq, accepted_at, sa) to every open, subscribed session that
 * is not catching up, whose subscription matches a and which may have a
 * under p (the policy the alert was accepted under: acceptance and
 * delivery happen in the same loop turn). A session whose queue is over
 * its bound is refused with REASON_OVERLOADED (it resumes from its last
 * sequence). Returns the number of sessions it was queued to.
 */
unsigned int route_publish(struct edge *e, const struct policy *p,
	    const Cpx__SignedAlert *sa, const Cpx__Alert *a, uint64_t seq,
	    int64_t accepted_at);

/* 1 if s's current subscription selects a and s may have it. */
int	route_wants(const struct policy *p, const struct session *s,
	    const Cpx__Alert *a);

#endif
