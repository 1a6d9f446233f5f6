/*
 * route.h: who gets an accepted alert. Live delivery of an accepted,
 * durable alert to exactly the sessions that subscribed to it and are
 * entitled to it, and the one decision that live delivery, replay and
 * resume all take: may this peer have it (route_may_have), does it match
 * what the peer asked for (route_matches), both (route_selects).
 */
#ifndef CPX_ROUTE_H
#define CPX_ROUTE_H

#include <stdint.h>

#include "edge.h"
#include "peer.h"
#include "policy.h"
#include "proto/cpx.pb-c.h"
#include "trace.h"

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
 * The one answer to "may this peer have this alert", live or from
 * history: pr holds the subscribe right now, and it is among those
 * entitled: by e, the list kept in the alert's audit record, or if e is
 * NULL by a's recipients under p (live delivery, in the turn that
 * accepted it; history recorded before records kept the list). 1 or 0.
 */
int	route_may_have(const struct policy *p, const struct peer *pr,
	    const struct route_entitled *e, const Cpx__Alert *a);
/*
 * 1 if a matches one of the filters; no filter at all matches every
 * alert. The only meaning of "no filter", for a replay request and a
 * subscription alike (a subscription without filters is no subscription:
 * peer_subscribed).
 */
int	route_matches(const struct policy *p, Cpx__Filter *const *filters,
	    size_t nfilters, const Cpx__Alert *a);
/*
 * Does this peer get this alert: route_may_have and route_matches. Live
 * routing (e NULL, the subscription's filters) and history (e from the
 * record, the filters of the replay or of the resumed subscription) ask
 * the same question here. 1 or 0.
 */
int	route_selects(const struct policy *p, const struct peer *pr,
	    const struct route_entitled *e, Cpx__Filter *const *filters,
	    size_t nfilters, const Cpx__Alert *a);

/*
 * Deliver (seq, accepted_at, sa) to every open, subscribed session that
 * is not catching up, whose subscription matches a and which may have a
 * under p (the policy the alert was accepted under: acceptance and
 * delivery happen in the same loop turn). A session whose queue is over
 * its bound is refused with REASON_OVERLOADED (it resumes from its last
 * sequence). tr (may be NULL) holds the stage stamps a benchmark build
 * sends along (lib/trace.h). Returns the number of sessions it was
 * queued to.
 */
unsigned int route_publish(struct edge *e, const struct policy *p,
	    const Cpx__SignedAlert *sa, const Cpx__Alert *a, uint64_t seq,
	    int64_t accepted_at, const struct trace *tr);

/*
 * route_publish for an accepted alert read from the log (committed by
 * another broker, or not routed from memory): rec is its AuditRecord, a
 * the alert decoded from it. Who may have it is the entitled list of
 * the record (the accepting broker's policy at the time), as for a
 * replay; records without one go by a's recipients under p. Returns the
 * number of sessions it was queued to.
 */
unsigned int route_record(struct edge *e, const struct policy *p,
	    const Cpx__AuditRecord *rec, const Cpx__Alert *a);

/*
 * 1 if a goes live to s now: s is open and welcomed, subscribed, not
 * catching up, and route_selects(a) under p with its subscription.
 */
int	route_wants(const struct policy *p, const struct session *s,
	    const Cpx__Alert *a);

#endif
