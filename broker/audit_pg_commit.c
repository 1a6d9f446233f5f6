/*
 * audit_pg_commit.c: the PostgreSQL store's commit as a state machine
 * the broker's loop drives (audit.h: "The commit seen from an event
 * loop"); the statements are audit_pg_send.c's, the numbering
 * audit_pg_batch.c's. A commit, on the writer connection in pipeline
 * mode, is two round trips:
 *   1. BEGIN; the head row FOR UPDATE (every broker's writer queues on
 *      this lock: the one serialisation of seqs and duplicates); the
 *      batch's alerts already on record;
 *   2. then, under the lock: duplicates get their original seq and are
 *      not written, the rest get consecutive seqs after the head and a
 *      time never below the head's, are chained (lib/chain.h), and the
 *      checkpoints asked for are built and signed (only now are their
 *      seq and hash known); INSERT, UPDATE head, NOTIFY cpx_log with
 *      the last seq, COMMIT.
 * When this store's view of the head is likely current (no other
 * broker announced a commit past it, and its last try did not miss),
 * the two round trips are one (PG_FAST, audit_pg_send_fast): the batch
 * is numbered on the head as known, and a guard moves the head only
 * from that head; if another broker moved it meanwhile (or an alert of
 * the batch is on record already: the unique index), the transaction
 * fails, is rolled back, and the batch takes the two round trips at
 * once, and the next FAST_SKIP commits too. The lock is then held for
 * the server's work and the COMMIT only, not across a round trip.
 * COMMIT's answer makes the batch durable (on the standby too with a
 * synchronous one). Any error or a lost connection fails the batch and
 * drops the connection (audit_pg.c reconnects): whether a COMMIT whose
 * answer was lost took effect is not known, and the duplicate check
 * answers the resent alerts. The batch appended meanwhile is dropped
 * with it (audit.h: Failure). Owns the phase and results of a commit.
 */
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "audit.h"
#include "audit_impl.h"
#include "audit_pg.h"
#include "errfmt.h"
#include "log.h"

/* Commits made the long way after a fast one found the head moved. */
#define FAST_SKIP	8

/* SQLSTATEs that mean "the head moved", not failure, on the fast path. */
#define SQLSTATE_DIVISION_BY_ZERO	"22012"	/* the guard */
#define SQLSTATE_UNIQUE_VIOLATION	"23505"	/* an alert on record */

/* The batch in flight failed: it and everything appended since go. */
static int
fail_batch(struct audit_pg *p, char *err, size_t errlen, const char *fmt,
    ...) __attribute__((format(printf, 4, 5)));

static int
fail_batch(struct audit_pg *p, char *err, size_t errlen, const char *fmt,
    ...)
{
	char	msg[512];
	va_list	ap;

	va_start(ap, fmt);
	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	audit_pg_drop(p, msg);
	audit_pg_batch_clear(&p->fly);
	audit_pg_batch_clear(&p->pend);
	p->phase = PG_IDLE;
	p->ndone = 0;
	return audit_pg_err(p, err, errlen, "%s", msg);
}

/*
 * The first round trip of the batch in flight: all of the commit if the
 * head is likely the one this store knows, else the head phase. 0 or
 * -1.
 */
static int
send_first(struct audit_pg *p)
{
	int	rc;

	if (p->prepared && p->fast_skip == 0 && p->others_seq <=
	    p->head_seq) {
		if ((rc = audit_pg_send_fast(p)) != 1)
			return rc;
	}
	if (p->fast_skip > 0)
		p->fast_skip--;
	return audit_pg_send_head(p);
}

int
audit_pg_begin(struct audit_pg *p, int force, char *err, size_t errlen)
{
	struct pg_batch	 t;
	char		 m[512];
	int64_t		 now;

	audit_clearerr(err, errlen);
	if (p->phase != PG_IDLE)
		return audit_pg_err(p, err, errlen, "a commit is in flight "
		    "already");
	if (p->readonly)
		return audit_pg_err(p, err, errlen, "opened read-only");
	t = p->fly;
	p->fly = p->pend;
	p->pend = t;
	p->ndone = 0;
	if (p->fly.n > p->donecap) {
		struct pg_out *nd = reallocarray(p->done, p->fly.n,
		    sizeof(*nd));

		if (nd == NULL) {
			audit_pg_batch_clear(&p->fly);
			audit_pg_batch_clear(&p->pend);
			return audit_pg_err(p, err, errlen, "out of memory");
		}
		p->done = nd;
		p->donecap = p->fly.n;
	}
	if (p->fly.n == 0) {
		p->phase = PG_DONE;
		return 0;
	}
	audit_pg_listen_poll(p);
	/*
	 * A server that restarted or died while we were idle closed our
	 * connection: notice it now, not with a failed batch.
	 */
	if (p->cstate == PG_UP && !audit_pg_alive(p->conn))
		audit_pg_drop(p, audit_pg_msg(p->conn, m, sizeof(m)));
	if (p->cstate == PG_UP) {
		if (send_first(p) == -1)
			return fail_batch(p, err, errlen, "commit: %s",
			    p->conn != NULL ? audit_pg_msg(p->conn, m,
			    sizeof(m)) : "building the batch failed");
		return 0;
	}
	now = audit_pg_now();
	if (!force && now < p->retry_at) {
		audit_pg_batch_clear(&p->fly);
		audit_pg_batch_clear(&p->pend);
		if (strncmp(p->why_down, "storage: ", 9) == 0)
			return audit_pg_err(p, err, errlen, "%s; next try in %"
			    PRId64 " ms", p->why_down, p->retry_at - now);
		return audit_pg_err(p, err, errlen, "storage: database "
		    "unreachable (%s); next try in %" PRId64 " ms",
		    p->why_down, p->retry_at - now);
	}
	p->conn = audit_pg_connect_start(p);
	if (p->conn == NULL || PQstatus(p->conn) == CONNECTION_BAD)
		return fail_batch(p, err, errlen, "storage: database "
		    "unreachable (%s)", audit_pg_msg(p->conn, m, sizeof(m)));
	p->cstate = PG_CONNECTING;
	p->cpoll = PGRES_POLLING_WRITING;
	p->phase = PG_CONNECT;
	p->deadline = now + PG_STEP_TIMEOUT_MS;
	return 0;
}

int
audit_pg_commit_fd(const struct audit_pg *p, short *events)
{
	*events = 0;
	switch (p->phase) {
	case PG_CONNECT:
		*events = p->cpoll == PGRES_POLLING_READING ? POLLIN : POLLOUT;
		return PQsocket(p->conn);
	case PG_HEAD:
	case PG_WRITE:
	case PG_FAST:
		*events = POLLIN | (p->flushing ? POLLOUT : 0);
		return PQsocket(p->conn);
	default:
		return -1;
	}
}

/*
 * On the fast path, an error that says the head moved (the guard) or
 * an alert is on record (the unique index) is no failure: the batch
 * goes the long way. 1 if r is that (or the rest of the pipeline it
 * aborted), else 0.
 */
static int
fast_miss(struct audit_pg *p, const PGresult *r)
{
	const char	*st;

	if (p->phase != PG_FAST)
		return 0;
	if (PQresultStatus(r) == PGRES_PIPELINE_ABORTED)
		return p->fast_failed;
	if (PQresultStatus(r) != PGRES_FATAL_ERROR ||
	    (st = PQresultErrorField(r, PG_DIAG_SQLSTATE)) == NULL)
		return 0;
	if ((p->nresults == 1 &&
	    strcmp(st, SQLSTATE_DIVISION_BY_ZERO) == 0) ||
	    (p->nresults >= 2 && p->nresults < p->nexpect - 2 &&
	    strcmp(st, SQLSTATE_UNIQUE_VIOLATION) == 0))
		return p->fast_failed = 1;
	return 0;
}

/* Is result r what query i of this phase should give? */
static int
check_result(struct audit_pg *p, const PGresult *r, char *why,
    size_t whylen)
{
	ExecStatusType	 st = PQresultStatus(r), want = PGRES_COMMAND_OK;
	size_t		 i = p->nresults;
	char		 m[512];

	if (fast_miss(p, r))
		return 0;
	if (st == PGRES_FATAL_ERROR || st == PGRES_NONFATAL_ERROR) {
		snprintf(m, sizeof(m), "%s", PQresultErrorMessage(r));
		m[strcspn(m, "\n")] = '\0';
		return errf(why, whylen, "%s", m);
	}
	if (st == PGRES_PIPELINE_ABORTED)
		return errf(why, whylen, "pipeline aborted");
	if (i >= p->nexpect)
		return errf(why, whylen, "unexpected result");
	if (p->phase == PG_HEAD) {
		if (i > p->hoff)
			want = PGRES_TUPLES_OK;
	} else if ((p->nexpect > 1 && i == p->nexpect - 2) ||
	    (p->phase == PG_FAST && i == 1))
		want = PGRES_TUPLES_OK;		/* pg_notify, the guard */
	if (st != want)
		return errf(why, whylen, "%s gave %s", i == 0 ? "first "
		    "statement" : "a statement", PQresStatus(st));
	if (p->phase == PG_HEAD && i == p->hoff + 1)
		return audit_pg_take_head(p, r, why, whylen);
	if (p->phase == PG_HEAD && i == p->hoff + 2)
		return audit_pg_take_last(p, r, why, whylen);
	if (p->phase == PG_HEAD && i == p->hoff + 3)
		return audit_pg_take_dups(p, r, why, whylen);
	if ((p->phase == PG_WRITE || p->phase == PG_FAST) &&
	    i == p->nexpect - 1 &&
	    strcmp(PQcmdStatus((PGresult *)r), "COMMIT") != 0)
		return errf(why, whylen, "COMMIT answered %s",
		    PQcmdStatus((PGresult *)r));
	return 0;
}

/*
 * Read what has come of the phase's queries: 1 once its sync arrived
 * (all answered), 0 for more to come, -1 with why[].
 */
static int
read_results(struct audit_pg *p, char *why, size_t whylen)
{
	PGresult	*r;
	char		 m[512];
	int		 got = 0, nulls = 0;

	if (PQconsumeInput(p->conn) != 1 || (p->flushing && audit_pg_flush(p) ==
	    -1))
		return errf(why, whylen, "%s", audit_pg_msg(p->conn, m,
		    sizeof(m)));
	for (;;) {
		if (PQisBusy(p->conn))
			return 0;
		if ((r = PQgetResult(p->conn)) == NULL) {
			if (got) {
				p->nresults++;
				got = 0;
				nulls = 0;
			} else if (++nulls >= 2)
				return 0;
			continue;
		}
		nulls = 0;
		if (PQresultStatus(r) == PGRES_PIPELINE_SYNC) {
			PQclear(r);
			if (p->nresults != p->nexpect)
				return errf(why, whylen, "%zu answer(s) to %zu "
				    "statement(s)", p->nresults, p->nexpect);
			return 1;
		}
		if (check_result(p, r, why, whylen) == -1) {
			PQclear(r);
			return -1;
		}
		got = 1;
		PQclear(r);
	}
}

static int
finish(struct audit_pg *p)
{
	struct pg_entry	*e;
	size_t		 i;

	for (i = 0; i < p->fly.n; i++) {
		e = &p->fly.v[i];
		p->done[i].outcome = e->outcome;
		p->done[i].seq = e->seq;
		p->done[i].time = e->outcome == AUDIT_OUT_COMMITTED ?
		    e->rtime : 0;
	}
	p->ndone = p->fly.n;
	if (p->commit_seq >= p->head_seq) {
		p->head_seq = p->commit_seq;
		memcpy(p->head_hash, p->commit_hash, AUDIT_HASH_LEN);
		p->head_time = p->commit_time;
	}
	audit_pg_batch_clear(&p->fly);
	p->phase = PG_IDLE;
	return 1;
}

int
audit_pg_step(struct audit_pg *p, char *err, size_t errlen)
{
	char	why[512], m[512];
	int	rc;

	audit_clearerr(err, errlen);
	switch (p->phase) {
	case PG_IDLE:
		return audit_pg_err(p, err, errlen, "no commit in flight");
	case PG_DONE:
		p->phase = PG_IDLE;
		p->ndone = 0;
		return 1;
	case PG_CONNECT:
		if (audit_pg_now() > p->deadline)
			return fail_batch(p, err, errlen, "storage: database "
			    "unreachable (no answer to connect in %d s)",
			    PG_STEP_TIMEOUT_MS / 1000);
		p->cpoll = PQconnectPoll(p->conn);
		if (p->cpoll == PGRES_POLLING_FAILED)
			return fail_batch(p, err, errlen, "storage: database "
			    "unreachable (%s)", audit_pg_msg(p->conn, m,
			    sizeof(m)));
		if (p->cpoll != PGRES_POLLING_OK)
			return 0;
		if (PQsetnonblocking(p->conn, 1) != 0 ||
		    PQenterPipelineMode(p->conn) != 1)
			return fail_batch(p, err, errlen, "pipeline mode: %s",
			    audit_pg_msg(p->conn, m, sizeof(m)));
		p->cstate = PG_UP;
		p->backoff = 0;
		log_info("audit: postgresql (%s): connected again", p->desc);
		if (audit_pg_send_head(p) == -1)
			return fail_batch(p, err, errlen, "commit: %s",
			    audit_pg_msg(p->conn, m, sizeof(m)));
		return 0;
	case PG_HEAD:
	case PG_WRITE:
	case PG_FAST:
		break;
	}
	/*
	 * A primary that waits for a synchronous standby that is gone never
	 * answers: say so rather than hold every publish (in doubt, as a
	 * lost answer is).
	 */
	if (audit_pg_now() > p->deadline)
		return fail_batch(p, err, errlen, "commit: no answer from the "
		    "database in %d s (is a synchronous standby down? see "
		    "synchronous_standby_names)", PG_STEP_TIMEOUT_MS / 1000);
	audit_pg_listen_poll(p);
	rc = read_results(p, why, sizeof(why));
	if (rc == -1)
		return fail_batch(p, err, errlen, "commit: %s", why);
	if (rc == 0)
		return 0;
	if (p->phase == PG_FAST && p->fast_failed) {
		/* The head had moved: roll back, the long way, now. */
		p->fast_failed = 0;
		p->fast_skip = FAST_SKIP;
		p->rollback = 1;
		if (audit_pg_send_head(p) == -1)
			return fail_batch(p, err, errlen, "commit: %s",
			    audit_pg_msg(p->conn, m, sizeof(m)));
		return 0;
	}
	if (p->phase == PG_WRITE || p->phase == PG_FAST)
		return finish(p);
	p->prepared = 1;
	if (!p->head_ok)
		return fail_batch(p, err, errlen, "commit: no head row");
	if (audit_pg_send_write(p) == -1)
		return fail_batch(p, err, errlen, "commit: %s",
		    p->conn != NULL ? audit_pg_msg(p->conn, m, sizeof(m)) :
		    "building the batch failed");
	return 0;
}

static int
wait_done(struct audit_pg *p, char *err, size_t errlen)
{
	struct pollfd	pfd;
	int64_t		deadline = audit_pg_now() + PG_COMMIT_WAIT_MS;
	int		rc;

	for (;;) {
		pfd.fd = audit_pg_commit_fd(p, &pfd.events);
		if (pfd.fd != -1 && poll(&pfd, 1, 1000) == -1)
			pfd.revents = 0;
		if ((rc = audit_pg_step(p, err, errlen)) != 0)
			return rc == 1 ? 0 : -1;
		if (audit_pg_now() > deadline)
			return fail_batch(p, err, errlen, "commit: no answer "
			    "from the database in %d s", PG_COMMIT_WAIT_MS /
			    1000);
	}
}

int
audit_pg_commit(struct audit_pg *p, char *err, size_t errlen)
{
	audit_clearerr(err, errlen);
	if (p->readonly)
		return p->pend.n == 0 ? 0 : audit_pg_err(p, err, errlen,
		    "opened read-only");
	if (p->phase != PG_IDLE && wait_done(p, err, errlen) == -1)
		return -1;
	if (p->pend.n == 0)
		return 0;
	if (audit_pg_begin(p, 1, err, errlen) == -1)
		return -1;
	return wait_done(p, err, errlen);
}

int
audit_pg_outcome(const struct audit_pg *p, size_t i, uint64_t *seq,
    int64_t *time)
{
	if (i >= p->ndone)
		return 0;
	*seq = p->done[i].seq;
	*time = p->done[i].time;
	return p->done[i].outcome;
}
