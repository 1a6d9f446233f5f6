/*
 * audit_pg_send.c: the statements of a PostgreSQL commit, put in the
 * writer connection's pipeline (audit_pg_commit.c runs the phases).
 * The head phase: the INSERTs prepared once per connection, BEGIN
 * (READ COMMITTED), the head row FOR UPDATE, the record it names, and
 * the batch's alerts already on record. The write phase, once the batch
 * is numbered under the lock (audit_pg_batch.c): the rows, in prepared
 * INSERTs of PG_INSERT_N rows and then of one, binary parameters for
 * the bytes, the head row, NOTIFY cpx_log with the last seq, COMMIT.
 * Each phase ends with a sync; nothing here waits. The one-round-trip
 * commit (audit_pg_send_fast) sends both phases' work at once, numbered
 * on the head as last known, behind a statement that moves the head
 * only from that head and fails the transaction otherwise.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "audit.h"
#include "audit_impl.h"
#include "audit_pg.h"

/*
 * The head under the lock, then the record it names. Two statements:
 * one that waited for the lock sees the row as the other broker's
 * COMMIT left it, but a join in it would read cpx_records as of before
 * that COMMIT; a statement after it takes a new snapshot (READ
 * COMMITTED), as does the duplicate check.
 */
static const char head_sql[] =
    "SELECT seq, hash, time FROM cpx_head FOR UPDATE";
static const char last_sql[] =
    "SELECT hash FROM cpx_records WHERE seq = (SELECT seq FROM cpx_head)";
static const char insert_head[] = "INSERT INTO cpx_records (seq, time, "
    "kind, prev_hash, hash, record, alert_id, origin, alert_sha256, "
    "peer_country, peer_node, broker) VALUES ";

/*
 * The fast path's guard: the head moves from ($1, $2) to ($3, $4, $5),
 * or, if it is not ($1, $2) any more (another broker committed since;
 * the UPDATE waits for its lock and then sees its row), 1/0 fails the
 * transaction (SQLSTATE 22012) and nothing after it runs.
 */
static const char guard_sql[] = "WITH u AS (UPDATE cpx_head SET seq = $3, "
    "hash = $4, time = $5 WHERE seq = $1 AND hash = $2 RETURNING 1) "
    "SELECT 1 / count(*)::int FROM u";

static const char dup_sql[] =
    "SELECT origin, alert_id, seq, alert_sha256 FROM cpx_records "
    "WHERE kind = 1 AND (origin, alert_id) IN "
    "(SELECT * FROM unnest($1::text[], $2::text[]))";

int
audit_pg_flush(struct audit_pg *p)
{
	int	r = PQflush(p->conn);

	p->flushing = r == 1;
	return r == -1 ? -1 : 0;
}

/* A text[] literal of the batch's alert origins (col 0) or ids (1). */
static char *
array_lit(const struct pg_batch *b, int col)
{
	const char	*s;
	char		*out, *q;
	size_t		 i, need = 3;

	for (i = 0; i < b->n; i++)
		if (b->v[i].origin != NULL)
			need += 2 * strlen(col ? b->v[i].alert_id :
			    b->v[i].origin) + 3;
	if ((out = malloc(need)) == NULL)
		return NULL;
	q = out;
	*q++ = '{';
	for (i = 0; i < b->n; i++) {
		if (b->v[i].origin == NULL)
			continue;
		if (q != out + 1)
			*q++ = ',';
		*q++ = '"';
		for (s = col ? b->v[i].alert_id : b->v[i].origin; *s; s++) {
			if (*s == '"' || *s == '\\')
				*q++ = '\\';
			*q++ = *s;
		}
		*q++ = '"';
	}
	*q++ = '}';
	*q = '\0';
	return out;
}

/* PREPARE name as an INSERT of rows rows. 0, or -1. */
static int
prepare(struct audit_pg *p, const char *name, size_t rows)
{
	char	*sql, *q;
	size_t	 i, j, cap;
	int	 ret;

	cap = sizeof(insert_head) + rows * PG_INSERT_COLS * 8 + 8;
	if ((sql = malloc(cap)) == NULL)
		return -1;
	q = sql + snprintf(sql, cap, "%s", insert_head);
	for (i = 0; i < rows; i++) {
		*q++ = i > 0 ? ',' : ' ';
		*q++ = '(';
		for (j = 0; j < PG_INSERT_COLS; j++)
			q += snprintf(q, cap - (size_t)(q - sql), "%s$%zu",
			    j > 0 ? "," : "", i * PG_INSERT_COLS + j + 1);
		*q++ = ')';
	}
	*q = '\0';
	ret = PQsendPrepare(p->conn, name, sql, 0, NULL) == 1 ? 0 : -1;
	free(sql);
	return ret;
}

int
audit_pg_send_head(struct audit_pg *p)
{
	const char	*vals[2];
	char		*o = NULL, *ids = NULL;
	size_t		 i, nalerts = 0;
	int		 ret = -1;

	for (i = 0; i < p->fly.n; i++)
		if (p->fly.v[i].origin != NULL)
			nalerts++;
	p->hoff = 0;
	if (!p->prepared) {
		/* Once per connection: their answers come first. */
		if (prepare(p, PG_INSERT_STMT, 1) == -1 ||
		    prepare(p, PG_INSERT_STMT_N, PG_INSERT_N) == -1)
			goto done;
		p->hoff = 2;
	}
	/* The transaction a failed fast path left aborted goes first. */
	if (p->rollback) {
		if (PQsendQueryParams(p->conn, "ROLLBACK", 0, NULL, NULL, NULL,
		    NULL, 0) != 1)
			goto done;
		p->hoff++;
		p->rollback = 0;
	}
	p->nexpect = (nalerts > 0 ? 4 : 3) + p->hoff;
	p->nresults = 0;
	p->head_ok = 0;
	/* READ COMMITTED whatever the database's default: see head_sql. */
	if (PQsendQueryParams(p->conn, "BEGIN ISOLATION LEVEL READ COMMITTED",
	    0, NULL, NULL, NULL, NULL, 0) != 1 ||
	    PQsendQueryParams(p->conn, head_sql, 0, NULL, NULL,
	    NULL, NULL, 1) != 1 || PQsendQueryParams(p->conn, last_sql, 0,
	    NULL, NULL, NULL, NULL, 1) != 1)
		goto done;
	if (nalerts > 0) {
		if ((o = array_lit(&p->fly, 0)) == NULL ||
		    (ids = array_lit(&p->fly, 1)) == NULL)
			goto done;
		vals[0] = o;
		vals[1] = ids;
		if (PQsendQueryParams(p->conn, dup_sql, 2, NULL, vals, NULL,
		    NULL, 1) != 1)
			goto done;
	}
	if (PQpipelineSync(p->conn) != 1 || audit_pg_flush(p) == -1)
		goto done;
	p->phase = PG_HEAD;
	p->deadline = audit_pg_now() + PG_STEP_TIMEOUT_MS;
	ret = 0;
done:
	free(o);
	free(ids);
	return ret;
}

/* Row e's parameters into v, l, f (PG_INSERT_COLS each; num: text). */
static void
row_params(const struct audit_pg *p, const struct pg_entry *e,
    const char **v, int *l, int *f, char num[3][24])
{
	memset(l, 0, PG_INSERT_COLS * sizeof(*l));
	memset(f, 0, PG_INSERT_COLS * sizeof(*f));
	snprintf(num[0], 24, "%" PRIu64, e->seq);
	snprintf(num[1], 24, "%" PRId64, e->rtime);
	snprintf(num[2], 24, "%d", e->kind);
	v[0] = num[0];
	v[1] = num[1];
	v[2] = num[2];
	v[3] = (const char *)e->prev;
	l[3] = AUDIT_HASH_LEN;
	f[3] = 1;
	v[4] = (const char *)e->hash;
	l[4] = AUDIT_HASH_LEN;
	f[4] = 1;
	v[5] = (const char *)e->full;
	l[5] = (int)e->full_len;
	f[5] = 1;
	v[6] = e->alert_id;
	v[7] = e->origin;
	v[8] = NULL;
	if (e->origin != NULL) {
		v[8] = (const char *)e->sha;
		l[8] = AUDIT_HASH_LEN;
		f[8] = 1;
	}
	v[9] = e->peer_country;
	v[10] = e->peer_node;
	v[11] = p->broker;
}

/*
 * Rows rows[0..n) (n 1 or PG_INSERT_N) through the statement prepared
 * on this connection: no parse or plan per commit, and all of a batch's
 * statements go in the one round trip of the pipeline.
 */
static int
send_insert(struct audit_pg *p, struct pg_entry *const *rows, size_t n)
{
	const char	*v[PG_INSERT_N * PG_INSERT_COLS];
	int		 l[PG_INSERT_N * PG_INSERT_COLS];
	int		 f[PG_INSERT_N * PG_INSERT_COLS];
	char		 num[PG_INSERT_N][3][24];
	size_t		 i;

	for (i = 0; i < n; i++)
		row_params(p, rows[i], v + i * PG_INSERT_COLS,
		    l + i * PG_INSERT_COLS, f + i * PG_INSERT_COLS, num[i]);
	return PQsendQueryPrepared(p->conn, n == 1 ? PG_INSERT_STMT :
	    PG_INSERT_STMT_N, (int)(n * PG_INSERT_COLS), v, l, f, 0) == 1 ?
	    0 : -1;
}

/*
 * The batch's rows (nrows of them), in groups of PG_INSERT_N and then
 * one by one; p->nexpect counts the statements. 0, or -1.
 */
static int
send_rows(struct audit_pg *p, size_t nrows)
{
	struct pg_entry	*group[PG_INSERT_N];
	size_t		 i, k = 0, left = nrows;

	for (i = 0; i < p->fly.n && left > 0; i++) {
		if (p->fly.v[i].outcome != AUDIT_OUT_COMMITTED ||
		    p->fly.v[i].full == NULL)
			continue;
		group[k++] = &p->fly.v[i];
		if (k < PG_INSERT_N && left >= PG_INSERT_N)
			continue;
		if (send_insert(p, group, k) == -1)
			return -1;
		p->nexpect++;
		left -= k;
		k = 0;
	}
	return 0;
}

/* NOTIFY cpx_log with the batch's last seq, COMMIT, sync, flush. */
static int
send_end(struct audit_pg *p)
{
	const char	*vals[1];
	char		 s[24];

	snprintf(s, sizeof(s), "%" PRIu64, p->commit_seq);
	vals[0] = s;
	if (PQsendQueryParams(p->conn, "SELECT pg_notify('" PG_NOTIFY_CHANNEL
	    "', $1)", 1, NULL, vals, NULL, NULL, 0) != 1 ||
	    PQsendQueryParams(p->conn, "COMMIT", 0, NULL, NULL, NULL, NULL,
	    0) != 1 || PQpipelineSync(p->conn) != 1 || audit_pg_flush(p) == -1)
		return -1;
	p->nexpect += 2;
	return 0;
}

int
audit_pg_send_write(struct audit_pg *p)
{
	const char	 *vals[3];
	int		  lens[3] = { 0, AUDIT_HASH_LEN, 0 }, fmts[3] = {
			    0, 1, 0 };
	char		  s[24], t[24];
	size_t		  nrows;

	if (audit_pg_number(p, &nrows) == -1)
		return -1;
	p->nresults = 0;
	p->nexpect = 0;
	if (nrows == 0) {
		/* Only repeats: nothing to write, the lock goes. */
		if (PQsendQueryParams(p->conn, "COMMIT", 0, NULL, NULL, NULL,
		    NULL, 0) != 1 || PQpipelineSync(p->conn) != 1 ||
		    audit_pg_flush(p) == -1)
			return -1;
		p->nexpect = 1;
		p->phase = PG_WRITE;
		return 0;
	}
	if (send_rows(p, nrows) == -1)
		return -1;
	snprintf(s, sizeof(s), "%" PRIu64, p->commit_seq);
	snprintf(t, sizeof(t), "%" PRId64, p->commit_time);
	vals[0] = s;
	vals[1] = (const char *)p->commit_hash;
	vals[2] = t;
	if (PQsendQueryParams(p->conn, "UPDATE cpx_head SET seq = $1, "
	    "hash = $2, time = $3", 3, NULL, vals, lens, fmts, 0) != 1)
		return -1;
	p->nexpect++;
	if (send_end(p) == -1)
		return -1;
	p->phase = PG_WRITE;
	return 0;
}

int
audit_pg_send_fast(struct audit_pg *p)
{
	const char	*vals[5];
	int		 lens[5] = { 0, AUDIT_HASH_LEN, 0, AUDIT_HASH_LEN, 0 };
	int		 fmts[5] = { 0, 1, 0, 1, 0 };
	char		 s0[24], s1[24], t[24];
	size_t		 nrows;

	p->lock_seq = p->head_seq;
	memcpy(p->lock_hash, p->head_hash, AUDIT_HASH_LEN);
	p->lock_time = p->head_time;
	if (audit_pg_number(p, &nrows) == -1)
		return -1;
	if (nrows == 0)
		return 1;
	p->hoff = 0;
	p->nresults = 0;
	p->nexpect = 2;		/* BEGIN, the guard */
	p->fast_failed = 0;
	snprintf(s0, sizeof(s0), "%" PRIu64, p->lock_seq);
	snprintf(s1, sizeof(s1), "%" PRIu64, p->commit_seq);
	snprintf(t, sizeof(t), "%" PRId64, p->commit_time);
	vals[0] = s0;
	vals[1] = (const char *)p->lock_hash;
	vals[2] = s1;
	vals[3] = (const char *)p->commit_hash;
	vals[4] = t;
	if (PQsendQueryParams(p->conn, "BEGIN ISOLATION LEVEL READ COMMITTED",
	    0, NULL, NULL, NULL, NULL, 0) != 1 ||
	    PQsendQueryParams(p->conn, guard_sql, 5, NULL, vals, lens, fmts,
	    0) != 1 || send_rows(p, nrows) == -1 || send_end(p) == -1)
		return -1;
	p->phase = PG_FAST;
	p->deadline = audit_pg_now() + PG_STEP_TIMEOUT_MS;
	return 0;
}
