/*
 * audit_pg_cursor.c: reading the PostgreSQL store in order (audit.h:
 * Cursors). A cursor asks for pages of 512 records by seq on the
 * store's cursor connection (audit_pg_read.c: never the writer's, so it
 * does not wait behind a commit), waits for each or, after
 * audit_read_async, answers AUDIT_CURSOR_WAIT until it came, and checks
 * every row as it goes (audit_pg_row): seq without gap, prev_hash the
 * hash before, hash recomputed over the record bytes, lengths bounded.
 * It sees only committed rows (the database shows no other) and, at the
 * end, returns 0 and reads on from there when called again. The first
 * row's prev_hash is taken as the chain before it, as the segment-file
 * cursor takes its index point's; a cursor that seeks by time starts
 * where the database found the time. Owns the page it holds.
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

struct audit_pg_cursor *
audit_pg_cursor_new(struct audit_pg *p, uint64_t from_seq, int64_t from_time,
    char *err, size_t errlen)
{
	struct audit_pg_cursor	*c;

	audit_clearerr(err, errlen);
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		audit_pg_err(p, err, errlen, "out of memory");
		return NULL;
	}
	c->pg = p;
	c->next_seq = from_seq > 0 ? from_seq : 1;
	c->from_time = from_time > 0 ? from_time : 0;
	return c;
}

/* The page that came (in c->res, from row 0): 1, or 0 if empty. */
static int
arrived(struct audit_pg_cursor *c)
{
	const char	*v;
	uint64_t	 first;

	c->ask = PG_ASK_NONE;
	if (c->nrows == 0) {
		PQclear(c->res);
		c->res = NULL;
		return 0;	/* the end, for now */
	}
	/* A seek by time starts where the database found that time. */
	if (c->from_time > 0 && !c->have_hash &&
	    PQgetlength(c->res, 0, 0) == 8 && (v = PQgetvalue(c->res, 0,
	    0)) != NULL && (first = audit_get_be64((const uint8_t *)v)) >
	    c->next_seq && first <= INT64_MAX)
		c->next_seq = first;
	return 1;
}

/*
 * The page holding the next record: 1 there, 0 the end for now, -1
 * with err[], AUDIT_CURSOR_WAIT while asked (async reads only).
 */
static int
page(struct audit_pg_cursor *c, char *err, size_t errlen)
{
	struct audit_pg	*p = c->pg;

	if (c->ask == PG_ASK_READY)
		return arrived(c);	/* came since the last call */
	if (c->res != NULL && c->row < c->nrows)
		return 1;
	if (c->ask == PG_ASK_NONE) {
		PQclear(c->res);
		c->res = NULL;
		audit_pg_read_ask(p, c);
	} else
		audit_pg_read_step(p);
	if ((c->ask == PG_ASK_QUEUED || c->ask == PG_ASK_SENT) &&
	    !p->rd.async)
		audit_pg_read_wait(p, c);
	switch (c->ask) {
	case PG_ASK_QUEUED:
	case PG_ASK_SENT:
		return AUDIT_CURSOR_WAIT;
	case PG_ASK_FAILED:
		c->ask = PG_ASK_NONE;
		return errf(err, errlen, "%s", c->why);
	case PG_ASK_READY:
		return arrived(c);
	default:
		return audit_pg_err(p, err, errlen, "cursor: no page asked");
	}
}

int
audit_pg_cursor_next(struct audit_pg_cursor *c, Cpx__AuditRecord **recp,
    uint32_t *len, uint8_t *leaf, char *err, size_t errlen)
{
	Cpx__AuditRecord *rec = NULL;
	uint8_t		 h[AUDIT_HASH_LEN], lf[AUDIT_HASH_LEN];
	uint32_t	 l;
	char		 why[512];
	int		 rc;

	*recp = NULL;
	audit_clearerr(err, errlen);
	for (;;) {
		if ((rc = page(c, err, errlen)) != 1)
			return rc;
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
	audit_pg_read_cancel((*cp)->pg, *cp);
	PQclear((*cp)->res);
	free(*cp);
	*cp = NULL;
}
