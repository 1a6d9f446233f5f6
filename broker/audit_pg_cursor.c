/*
 * audit_pg_cursor.c: reading the PostgreSQL store in order (audit.h:
 * Cursors). A cursor reads pages of 512 records by seq on the
 * store's cursor connection (opened when the first cursor needs it, and
 * again after it was lost), so it never waits behind a commit on the
 * writer connection, and checks every row as it goes (audit_pg_row):
 * seq without gap, prev_hash the hash before, hash recomputed over the
 * record bytes, lengths bounded. It sees only committed rows (the
 * database shows no other) and, at the end, returns 0 and reads on from
 * there when called again. The first row's prev_hash is taken as the
 * chain before it, as the segment-file cursor takes its index point's.
 * Owns the page it holds.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "audit.h"
#include "audit_impl.h"
#include "audit_pg.h"
#include "errfmt.h"

static const char page_sql[] = "SELECT seq, time, kind, prev_hash, hash, "
    "record FROM cpx_records WHERE seq >= $1 ORDER BY seq LIMIT 512";
static const char time_sql[] = "SELECT COALESCE((SELECT min(seq) FROM "
    "cpx_records WHERE time >= $1), (SELECT seq + 1 FROM cpx_head))";

/* The cursors' connection, connected if it is not. */
static PGconn *
rconn(struct audit_pg *p, char *err, size_t errlen)
{
	/* Closed by a server that restarted since the last read? */
	if (p->rconn != NULL && !audit_pg_alive(p->rconn)) {
		PQfinish(p->rconn);
		p->rconn = NULL;
	}
	if (p->rconn != NULL)
		return p->rconn;
	/*
	 * A database that is down is not asked again on every read; but
	 * one the writer reaches (a failover done) is asked at once.
	 */
	if (audit_pg_now() < p->rretry_at && p->cstate != PG_UP) {
		errf(err, errlen, "%s", p->rwhy);
		return NULL;
	}
	p->rconn = audit_pg_connect(p, "cursor", p->rwhy, sizeof(p->rwhy));
	if (p->rconn == NULL) {
		p->rretry_at = audit_pg_now() + PG_BACKOFF_MAX_MS / 4;
		errf(err, errlen, "%s", p->rwhy);
	}
	return p->rconn;
}

/* Run a one-parameter query; the result, or NULL with err[]. */
static PGresult *
query(struct audit_pg *p, const char *sql, const char *arg, int binary,
    char *err, size_t errlen)
{
	PGresult	*r;
	PGconn		*c;
	const char	*vals[1] = { arg };
	char		 m[512];

	if ((c = rconn(p, err, errlen)) == NULL)
		return NULL;
	r = PQexecParams(c, sql, 1, NULL, vals, NULL, NULL, binary);
	if (PQresultStatus(r) != PGRES_TUPLES_OK &&
	    PQstatus(c) != CONNECTION_OK) {
		/* Lost in between (a restart, a failover): once more. */
		PQclear(r);
		PQfinish(p->rconn);
		p->rconn = NULL;
		if ((c = rconn(p, err, errlen)) == NULL)
			return NULL;
		r = PQexecParams(c, sql, 1, NULL, vals, NULL, NULL, binary);
	}
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		audit_pg_err(p, err, errlen, "cursor: %s", audit_pg_msg(c, m,
		    sizeof(m)));
		PQclear(r);
		return NULL;
	}
	return r;
}

struct audit_pg_cursor *
audit_pg_cursor_new(struct audit_pg *p, uint64_t from_seq, int64_t from_time,
    char *err, size_t errlen)
{
	struct audit_pg_cursor	*c;
	PGresult		*r;
	char			 t[24], *end;
	unsigned long long	 v;

	audit_clearerr(err, errlen);
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		audit_pg_err(p, err, errlen, "out of memory");
		return NULL;
	}
	c->pg = p;
	c->next_seq = from_seq > 0 ? from_seq : 1;
	c->from_time = from_time;
	if (from_time > 0) {
		snprintf(t, sizeof(t), "%" PRId64, from_time);
		if ((r = query(p, time_sql, t, 0, err, errlen)) == NULL) {
			free(c);
			return NULL;
		}
		v = 0;
		if (PQntuples(r) == 1 && !PQgetisnull(r, 0, 0))
			v = strtoull(PQgetvalue(r, 0, 0), &end, 10);
		PQclear(r);
		if (v > c->next_seq && v <= INT64_MAX)
			c->next_seq = v;
	}
	return c;
}

int
audit_pg_cursor_next(struct audit_pg_cursor *c, Cpx__AuditRecord **recp,
    uint32_t *len, uint8_t *leaf, char *err, size_t errlen)
{
	Cpx__AuditRecord *rec = NULL;
	uint8_t		 h[AUDIT_HASH_LEN], lf[AUDIT_HASH_LEN];
	uint32_t	 l;
	char		 s[24], why[512];

	*recp = NULL;
	audit_clearerr(err, errlen);
	for (;;) {
		if (c->res == NULL || c->row >= c->nrows) {
			PQclear(c->res);
			c->res = NULL;
			snprintf(s, sizeof(s), "%" PRIu64, c->next_seq);
			if ((c->res = query(c->pg, page_sql, s, 1, err,
			    errlen)) == NULL)
				return -1;
			c->row = 0;
			if ((c->nrows = PQntuples(c->res)) == 0) {
				PQclear(c->res);
				c->res = NULL;
				return 0;	/* the end, for now */
			}
		}
		if (audit_pg_row(c->pg->md, c->res, c->row, c->next_seq,
		    c->have_hash ? c->hash : NULL, &rec, h, &l, lf, why,
		    sizeof(why)) == -1)
			return audit_pg_err(c->pg, err, errlen, "cursor: "
			    "damaged log: %s", why);
		c->row++;
		c->next_seq++;
		c->reads++;
		memcpy(c->hash, h, AUDIT_HASH_LEN);
		c->have_hash = 1;
		if (c->from_time > 0 && rec->time < c->from_time) {
			cpx__audit_record__free_unpacked(rec, NULL);
			rec = NULL;
			continue;
		}
		c->from_time = 0;	/* reached: times may go back later */
		break;
	}
	if (len != NULL)
		*len = l;
	if (leaf != NULL)
		memcpy(leaf, lf, AUDIT_HASH_LEN);
	*recp = rec;
	return 1;
}

void
audit_pg_cursor_free(struct audit_pg_cursor **cp)
{
	if (cp == NULL || *cp == NULL)
		return;
	PQclear((*cp)->res);
	free(*cp);
	*cp = NULL;
}
