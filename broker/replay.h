/*
 * replay.h: history from the audit log to one session, mirroring route.h
 * (live). A replay request (bounded, with filters) or the catch-up of a
 * resuming subscriber (until the durable end, then live) is a cursor on
 * the log; each loop turn, after the commit, replay_pump feeds every
 * running one at the pace its session's queue allows. Which records a
 * peer gets is route_selects(), the same question live delivery asks.
 */
#ifndef CPX_REPLAY_H
#define CPX_REPLAY_H

#include <stddef.h>
#include <stdint.h>

#include "audit.h"
#include "peer.h"
#include "policy.h"
#include "proto/cpx.pb-c.h"

struct broker;

/* replay_next(): the work budget ran out; call again next loop turn. */
#define REPLAY_YIELD		2
/* replay_next(): the store is fetching the next page; call again later. */
#define REPLAY_WAIT		3
/*
 * Records one replay may read in one loop turn, all replays together,
 * and the least one replay reads when many share the turn. A record costs
 * a few microseconds (chain hash, decoding): this keeps a turn to a few
 * milliseconds.
 */
#define REPLAY_BATCH		512u
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
	uint64_t		 after;		/* catch-up: resumed after */
	uint64_t		 count;		/* records sent */
	uint64_t		 last_seq;	/* last record examined */
	/* Where it began, to open its cursor again after a read error on a
	 * shared store (the database failing over): from there, or after
	 * last_seq, from retry_at on, until it has failed for too long. */
	uint64_t		 from_seq;
	int64_t			 from_time;
	int64_t			 retry_at;	/* clock_mono_ms */
	int64_t			 failing_since;	/* 0: reading fine */
};

/*
 * The last sequence a replay request rq reads when the log's durable end
 * is last: its to_seq if it gives one below last, else last.
 */
uint64_t replay_request_end(const Cpx__ReplayRequest *rq, uint64_t last);
/*
 * A replay for the ReplayRequest in *req (taken over: the replay keeps
 * it for its filters), from its from_seq / from_time up to
 * replay_request_end(rq, last) and its to_time. Returns an owned replay
 * (replay_free) or NULL with err[] (*req is then still the caller's).
 */
struct replay *replay_new_request(struct audit *a, Cpx__Envelope **req,
	    uint64_t last, char *err, size_t errlen);
/*
 * The catch-up of a subscription resumed after sequence after: every
 * record from after + 1 to the last one delivered live (b->delivered,
 * the durable end with one broker; the caller makes sure after + 1 does
 * not wrap). request_id is the Subscribe's. Returns an owned
 * replay (replay_free) or NULL with err[].
 */
struct replay *replay_new_catch_up(struct audit *a, uint64_t after,
	    uint64_t request_id, char *err, size_t errlen);
void	replay_free(struct replay **r);

/*
 * 1 if pr may still run r under its rights as of now: the subscribe
 * right, and for an all-kinds replay the audit right too. Asked before
 * every batch, so a reload that takes a right away stops a replay
 * already running.
 */
int	replay_allowed(const struct replay *r, const struct peer *pr);

/*
 * Next record pr may see and asked for: 1 with *rec (owned by the caller,
 * cpx__audit_record__free_unpacked), 0 when the replay is over (bound
 * reached, or durable end), REPLAY_YIELD when *budget records have been
 * read without finding one (call again later), REPLAY_WAIT while the
 * store fetches the next page (call again on a later turn), -1 with
 * err[] on a read error. Every record read takes one from *budget, so one request costs
 * the loop turn at most *budget records however few of them match. An
 * alert goes to pr if route_selects() says so with the entitled list in
 * its record (the policy at accept time; for records without one, the
 * policy p); an all-kinds replay sees every record that matches the
 * filters (route_matches).
 */
int	replay_next(struct replay *r, const struct policy *p,
	    const struct peer *pr, Cpx__Filter *const *filters,
	    size_t nfilters, unsigned int *budget, Cpx__AuditRecord **rec,
	    char *err, size_t errlen) __attribute__((warn_unused_result));

/*
 * Feed every open session's replay or catch-up as far as its queue
 * allows, within the read budget of the turn; end those that are done,
 * stopped by a reload or failed. Called once per loop turn, after the
 * commit. Returns 1 if work remains now (the loop should not sleep);
 * 0 if what remains waits for the store (its read fd wakes the loop),
 * for a retry or for nothing.
 */
int	replay_pump(struct broker *b);

#endif
