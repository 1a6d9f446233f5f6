/*
 * audit_pg_read.c: the PostgreSQL store's cursors' connection, which the
 * broker's loop drives without ever waiting on it (audit.h: Cursors,
 * audit_read_async). A cursor that needs a page asks here
 * (audit_pg_read_ask); the asks are queued in order and sent one at a
 * time, each a page of 512 records by seq, with libpq's asynchronous API:
 * the connection's socket is audit_read_fd, and audit_read_step reads
 * what came, hands the page to the cursor that asked (or drops it, if
 * that cursor is gone) and sends the next ask. Tools and the broker's
 * start-up wait for their page (audit_pg_read_wait) on the same path.
 *
 * The connection is opened when an ask needs it, without blocking
 * (PQconnectStart/PQconnectPoll, given up after PG_CONNECT_TIMEOUT
 * seconds). A connection lost under a query (a restart, a failover) is
 * opened again at once and the asks sent again, once; if that fails,
 * every ask waiting fails with the reason, and so does every new ask
 * for PG_READ_RETRY_MS, unless the writer connection is up (a failover
 * done): a database that is down is not asked again on every read. A
 * query with no answer in PG_STEP_TIMEOUT_MS fails its ask and drops
 * the connection. Owns the connection, the answer in progress and the
 * queue's links (the cursors are their owners').
 */
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "audit.h"
#include "audit_impl.h"
#include "audit_pg.h"
#include "log.h"

#define PG_READ_RETRY_MS	(PG_BACKOFF_MAX_MS / 4)

/*
 * A page by seq; the first page of a cursor that seeks by time starts
 * at the first record of that time (or past the head if there is none).
 */
static const char page_sql[] = "SELECT seq, time, kind, prev_hash, hash, "
    "record FROM cpx_records WHERE seq >= $1 ORDER BY seq LIMIT 512";
static const char seek_sql[] = "SELECT seq, time, kind, prev_hash, hash, "
    "record FROM cpx_records WHERE seq >= GREATEST($1::bigint, "
    "COALESCE((SELECT min(seq) FROM cpx_records WHERE time >= $2::bigint), "
    "(SELECT seq + 1 FROM cpx_head))) ORDER BY seq LIMIT 512";

static void
enqueue(struct pg_reader *r, struct audit_pg_cursor *c, int front)
{
	c->ask = PG_ASK_QUEUED;
	if (front) {
		c->qnext = r->first;
		r->first = c;
		if (r->last == NULL)
			r->last = c;
		return;
	}
	c->qnext = NULL;
	if (r->last != NULL)
		r->last->qnext = c;
	else
		r->first = c;
	r->last = c;
}

static struct audit_pg_cursor *
dequeue(struct pg_reader *r)
{
	struct audit_pg_cursor *c = r->first;

	if (c != NULL) {
		r->first = c->qnext;
		if (r->first == NULL)
			r->last = NULL;
		c->qnext = NULL;
	}
	return c;
}

/* Every queued ask fails with why. */
static void
fail_all(struct pg_reader *r, const char *why)
{
	struct audit_pg_cursor *c;

	while ((c = dequeue(r)) != NULL) {
		c->ask = PG_ASK_FAILED;
		snprintf(c->why, sizeof(c->why), "%s", why);
	}
}

/*
 * The connection is gone (why). The query on it goes back to the front
 * of the queue; with again, and if this did not happen just before, the
 * queue is sent again on a new connection at once; otherwise every ask
 * fails and new ones fail for PG_READ_RETRY_MS.
 */
static void
lost(struct audit_pg *p, const char *why, int again)
{
	struct pg_reader *r = &p->rd;

	if (r->state == PG_UP)
		log_warnx("audit: postgresql (%s): cursor connection lost: "
		    "%s%s", p->desc, why, again && !r->retried ?
		    "; reconnecting" : "");
	PQfinish(r->conn);
	r->conn = NULL;
	r->state = PG_DOWN;
	r->flushing = 0;
	PQclear(r->res);
	r->res = NULL;
	if (r->busy && r->fly != NULL)
		enqueue(r, r->fly, 1);
	r->busy = 0;
	r->fly = NULL;
	if (again && !r->retried) {
		r->retried = 1;
		r->retry_at = 0;
		return;
	}
	snprintf(r->why, sizeof(r->why), "audit: postgresql (%s): cursor: %s",
	    p->desc, why);
	r->retry_at = audit_pg_now() + PG_READ_RETRY_MS;
	fail_all(r, r->why);
}

/* Drive a connect as far as it goes now. */
static void
connecting(struct audit_pg *p)
{
	PostgresPollingStatusType st;
	struct pg_reader *r = &p->rd;
	struct pollfd pfd;
	char m[600], e[512];
	int i;

	for (i = 0; i < 8; i++) {
		pfd.fd = PQsocket(r->conn);
		pfd.events = r->cpoll == PGRES_POLLING_READING ? POLLIN :
		    POLLOUT;
		if (poll(&pfd, 1, 0) <= 0)
			break;		/* audit_read_fd says what to wait for */
		st = PQconnectPoll(r->conn);
		if (st == PGRES_POLLING_FAILED) {
			snprintf(m, sizeof(m), "cannot connect: %s",
			    audit_pg_msg(r->conn, e, sizeof(e)));
			lost(p, m, 0);
			return;
		}
		if (st == PGRES_POLLING_OK) {
			if (PQsetnonblocking(r->conn, 1) != 0) {
				lost(p, audit_pg_msg(r->conn, m, sizeof(m)),
				    0);
				return;
			}
			r->state = PG_UP;
			return;
		}
		r->cpoll = st;
	}
	if (audit_pg_now() > r->deadline)
		lost(p, "cannot connect: no answer in " PG_CONNECT_TIMEOUT
		    " s", 0);
}

static void
start(struct audit_pg *p)
{
	struct pg_reader *r = &p->rd;
	char m[600], e[512];

	r->conn = audit_pg_connect_start(p);
	if (r->conn == NULL || PQstatus(r->conn) == CONNECTION_BAD) {
		snprintf(m, sizeof(m), "cannot connect: %s",
		    audit_pg_msg(r->conn, e, sizeof(e)));
		lost(p, m, 0);
		return;
	}
	r->state = PG_CONNECTING;
	r->cpoll = PGRES_POLLING_WRITING;
	r->deadline = audit_pg_now() + PG_CONNECT_TIMEOUT_MS;
	connecting(p);
}

/* The query in flight is answered: its page to its cursor. */
static void
answered(struct audit_pg *p)
{
	struct pg_reader *r = &p->rd;
	struct audit_pg_cursor *c = r->fly;
	PGresult *res = r->res;
	char m[200];

	r->busy = 0;
	r->fly = NULL;
	r->res = NULL;
	if (c == NULL) {
		PQclear(res);		/* its cursor is gone */
		return;
	}
	if (PQresultStatus(res) == PGRES_TUPLES_OK) {
		c->res = res;
		c->row = 0;
		c->nrows = PQntuples(res);
		c->ask = PG_ASK_READY;
		r->retried = 0;
		return;
	}
	snprintf(m, sizeof(m), "%s", res != NULL ?
	    PQresultErrorMessage(res) : "no result");
	m[strcspn(m, "\n")] = '\0';
	PQclear(res);
	c->ask = PG_ASK_FAILED;
	snprintf(c->why, sizeof(c->why), "audit: postgresql (%s): cursor: %s",
	    p->desc, m);
}

/* Read what came of the query in flight. */
static void
take(struct audit_pg *p)
{
	struct pg_reader *r = &p->rd;
	PGresult *res;
	char m[512];

	if (PQconsumeInput(r->conn) != 1 ||
	    (r->flushing && (r->flushing = PQflush(r->conn)) == -1)) {
		lost(p, audit_pg_msg(r->conn, m, sizeof(m)), 1);
		return;
	}
	while (!PQisBusy(r->conn)) {
		if ((res = PQgetResult(r->conn)) == NULL) {
			if (PQstatus(r->conn) != CONNECTION_OK) {
				lost(p, audit_pg_msg(r->conn, m, sizeof(m)),
				    1);
				return;
			}
			answered(p);
			return;
		}
		if (r->res == NULL)
			r->res = res;
		else
			PQclear(res);	/* one statement: one result */
	}
}

/* Send the first ask of the queue. */
static void
send_first(struct audit_pg *p)
{
	struct pg_reader *r = &p->rd;
	struct audit_pg_cursor *c;
	const char *vals[2];
	char s[24], t[24], m[512];
	int seek, rc;

	/* A server that went away while we were idle closed it. */
	if (!audit_pg_alive(r->conn)) {
		lost(p, audit_pg_msg(r->conn, m, sizeof(m)), 1);
		return;
	}
	c = dequeue(r);
	seek = c->from_time > 0;
	snprintf(s, sizeof(s), "%" PRIu64, c->next_seq);
	snprintf(t, sizeof(t), "%" PRId64, c->from_time);
	vals[0] = s;
	vals[1] = t;
	if (PQsendQueryParams(r->conn, seek ? seek_sql : page_sql,
	    seek ? 2 : 1, NULL, vals, NULL, NULL, 1) != 1 ||
	    (rc = PQflush(r->conn)) == -1) {
		enqueue(r, c, 1);
		lost(p, audit_pg_msg(r->conn, m, sizeof(m)), 1);
		return;
	}
	r->flushing = rc;
	r->busy = 1;
	r->fly = c;
	c->ask = PG_ASK_SENT;
	r->deadline = audit_pg_now() + PG_STEP_TIMEOUT_MS;
}

void
audit_pg_read_step(struct audit_pg *p)
{
	struct pg_reader *r = &p->rd;
	char m[64];
	int i;

	/* A loss may be followed by a reconnect in the same step. */
	for (i = 0; i < 3; i++) {
		if (r->state == PG_UP && r->busy) {
			take(p);
			if (r->busy && audit_pg_now() > r->deadline) {
				snprintf(m, sizeof(m), "no answer in %d s",
				    PG_STEP_TIMEOUT_MS / 1000);
				lost(p, m, 0);
				return;
			}
		}
		if (r->state == PG_CONNECTING)
			connecting(p);
		if (r->first == NULL || r->busy ||
		    r->state == PG_CONNECTING)
			return;
		if (r->state == PG_DOWN) {
			if (audit_pg_now() < r->retry_at && p->cstate !=
			    PG_UP) {
				fail_all(r, r->why);
				return;
			}
			start(p);
			continue;
		}
		send_first(p);
		if (r->busy)
			return;
	}
}

void
audit_pg_read_ask(struct audit_pg *p, struct audit_pg_cursor *c)
{
	enqueue(&p->rd, c, 0);
	audit_pg_read_step(p);
}

void
audit_pg_read_cancel(struct audit_pg *p, struct audit_pg_cursor *c)
{
	struct pg_reader *r = &p->rd;
	struct audit_pg_cursor **pp, *prev = NULL;

	if (r->fly == c)
		r->fly = NULL;
	for (pp = &r->first; *pp != NULL; prev = *pp, pp = &(*pp)->qnext)
		if (*pp == c) {
			*pp = c->qnext;
			if (r->last == c)
				r->last = prev;
			break;
		}
	c->qnext = NULL;
	c->ask = PG_ASK_NONE;
}

void
audit_pg_read_wait(struct audit_pg *p, struct audit_pg_cursor *c)
{
	struct pollfd pfd;

	for (;;) {
		audit_pg_read_step(p);
		if (c->ask != PG_ASK_QUEUED && c->ask != PG_ASK_SENT)
			return;
		pfd.fd = audit_pg_read_fd(p, &pfd.events);
		/* Deadlines are checked when stepped: wake for them. */
		(void)poll(&pfd, pfd.fd == -1 ? 0 : 1, 100);
	}
}

int
audit_pg_read_fd(const struct audit_pg *p, short *events)
{
	const struct pg_reader *r = &p->rd;

	*events = 0;
	if (r->state == PG_CONNECTING) {
		*events = r->cpoll == PGRES_POLLING_READING ? POLLIN : POLLOUT;
		return PQsocket(r->conn);
	}
	if (r->state == PG_UP && r->busy) {
		*events = POLLIN | (r->flushing ? POLLOUT : 0);
		return PQsocket(r->conn);
	}
	return -1;
}

void
audit_pg_read_adopt(struct audit_pg *p, PGconn *c)
{
	p->rd.conn = c;
	p->rd.state = PQsetnonblocking(c, 1) == 0 ? PG_UP : PG_DOWN;
	if (p->rd.state == PG_DOWN) {
		PQfinish(c);
		p->rd.conn = NULL;
	}
}

void
audit_pg_read_close(struct audit_pg *p)
{
	struct pg_reader *r = &p->rd;

	fail_all(r, "audit: the store is closed");
	PQclear(r->res);
	r->res = NULL;
	PQfinish(r->conn);
	r->conn = NULL;
	r->state = PG_DOWN;
	r->busy = 0;
	r->fly = NULL;
}
