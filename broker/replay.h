/*
 * replay.h: streaming history from the audit log to one session: a replay
 * request (bounded, with filters) or the catch-up of a resuming subscriber
 * (until the durable end, then live). Decides what a record is; the
 * dispatcher sends it at the pace the session's queue allows.
 */
#ifndef CPX_REPLAY_H
#define CPX_REPLAY_H

#include <stddef.h>
#include <stdint.h>

#include "audit.h"
#include "identity.h"
#include "policy.h"
#include "proto/cpx.pb-c.h"
#include "session.h"

/* replay_next(): the work budget ran out; call again next loop turn. */
#define REPLAY_YIELD		2
/*
 * Records all replays together may read in one loop turn, and the least
 * one replay reads when many share it (the dispatcher's per-session
 * bound is its REPLAY_BATCH). A record costs a few microseconds (chain
 * hash, decoding): this keeps a turn to a few milliseconds.
 */
#define REPLAY_TURN_READS	2048u
#define REPLAY_MIN_READS	64u

struct replay {
	struct audit_cursor	*cur;
	Cpx__Envelope		*req;		/* owned request, or NULL */
	uint64_t		 request_id;
	uint64_t		 to_seq;	/* inclusive; UINT64_MAX: none */
	int64_t			 to_time;	/* inclusive; 0: none */
	int			 all_kinds;	/* audit replay */
	int			 catch_up;	/* resume of a subscription */
	uint64_t		 count;		/* records sent */
	uint64_t		 last_seq;	/* last record examined */
};

/*
 * Start reading at from_seq / from_time. req (may be NULL) is taken over.
 * Returns an owned replay (replay_free) or NULL with err[].
 */
struct replay *replay_new(struct audit *a, uint64_t from_seq,
	    int64_t from_time, uint64_t to_seq, int64_t to_time, int all_kinds,
	    int catch_up, uint64_t request_id, Cpx__Envelope **req, char *err,
	    size_t errlen);
void	replay_free(struct replay **r);

/*
 * 1 if s may still run r under its rights as of now: the subscribe right,
 * and for an all-kinds replay the audit right too. The dispatcher asks
 * before every batch, so a reload that takes a right away stops a replay
 * already running.
 */
int	replay_allowed(const struct replay *r, const struct session *s);

/*
 * Next record s may see and asked for: 1 with *rec (owned by the caller,
 * cpx__audit_record__free_unpacked), 0 when the replay is over (bound
 * reached, or durable end), REPLAY_YIELD when *budget records have been
 * read without finding one (call again later), -1 with err[] on a read
 * error. Every record read takes one from *budget, so one request costs
 * the loop turn at most *budget records however few of them match. An
 * alert goes to s if s holds the subscribe right and its country is in
 * the record's entitled list (the policy at accept time; for records
 * without one, the policy p) and it matches a filter; with no filter
 * every entitled alert matches.
 */
int	replay_next(struct replay *r, const struct policy *p,
	    const struct session *s, Cpx__Filter *const *filters,
	    size_t nfilters, unsigned int *budget, Cpx__AuditRecord **rec,
	    char *err, size_t errlen) __attribute__((warn_unused_result));

#endif
