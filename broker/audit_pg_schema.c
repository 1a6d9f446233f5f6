/*
 * audit_pg_schema.c: the tables of the PostgreSQL store, their version,
 * and the check of the whole log when the store opens.
 *
 * The schema is one piece of SQL (audit_pg_schema_sql), run by a broker
 * that finds none and may create tables (development), or by
 * "cpx-audit init-db" as the database's administrator. A version newer
 * than this program's is refused, naming both. At open every record is
 * read in one snapshot and checked as cpx-audit verify would: numbered
 * 1, 2, ... without gap, each prev_hash the hash before it, each hash
 * recomputed (lib/chain.c) over the stored record bytes, the columns
 * equal to the record's own seq, time and kind, every checkpoint
 * covering the record before it with a signature that verifies with the
 * certificate it carries, and the head row naming the last record. Every
 * length read from the database is bounded before use; a message names
 * the seq that is wrong.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>
#include <openssl/crypto.h>

#include "audit.h"
#include "audit_impl.h"
#include "audit_pg.h"
#include "chain.h"
#include "errfmt.h"
#include "log.h"

static const char schema_sql[] =
"CREATE TABLE cpx_schema (version integer NOT NULL);\n"
"CREATE TABLE cpx_head (\n"
"    one boolean PRIMARY KEY DEFAULT true CHECK (one),\n"
"    seq bigint NOT NULL, hash bytea NOT NULL, time bigint NOT NULL);\n"
"CREATE TABLE cpx_records (\n"
"    seq bigint PRIMARY KEY, time bigint NOT NULL, kind integer NOT NULL,\n"
"    prev_hash bytea NOT NULL, hash bytea NOT NULL,\n"
"    record bytea NOT NULL,\n"
"    alert_id text, origin text, alert_sha256 bytea,\n"
"    peer_country text, peer_node text, broker text NOT NULL);\n"
"CREATE UNIQUE INDEX cpx_records_alert ON cpx_records (origin, alert_id)\n"
"    WHERE kind = 1;\n"
"CREATE INDEX cpx_records_time ON cpx_records (time);\n"
"INSERT INTO cpx_schema (version) VALUES (1);\n"
"INSERT INTO cpx_head (seq, hash, time)\n"
"    VALUES (0, '\\x0000000000000000000000000000000000000000000000000000"
"000000000000'::bytea, 0);\n";

const char *
audit_pg_schema_sql(void)
{
	return schema_sql;
}

/* Run sql on c; 0 if it gave want, -1 with err[] naming what. */
static int
exec_ok(struct audit_pg *p, PGconn *c, const char *sql, ExecStatusType want,
    const char *what, char *err, size_t errlen)
{
	PGresult	*r;
	char		 m[512];
	int		 ret = 0;

	r = PQexec(c, sql);
	if (PQresultStatus(r) != want)
		ret = audit_pg_err(p, err, errlen, "%s: %s", what,
		    audit_pg_msg(c, m, sizeof(m)));
	PQclear(r);
	return ret;
}

/* 1 if table cpx_schema exists, 0 if not, -1 with err[]. */
static int
have_schema(struct audit_pg *p, PGconn *c, char *err, size_t errlen)
{
	PGresult	*r;
	char		 m[512];
	int		 ret;

	r = PQexec(c, "SELECT to_regclass('cpx_schema') IS NOT NULL");
	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
		ret = audit_pg_err(p, err, errlen, "schema: %s",
		    audit_pg_msg(c, m, sizeof(m)));
	} else
		ret = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
	PQclear(r);
	return ret;
}

static int
create_schema(struct audit_pg *p, PGconn *c, char *err, size_t errlen)
{
	int	have;

	if (exec_ok(p, c, "BEGIN", PGRES_COMMAND_OK, "schema", err,
	    errlen) == -1)
		return -1;
	/* Two brokers starting on an empty database: one creates. */
	if (exec_ok(p, c, "SELECT pg_advisory_xact_lock(7236984)",
	    PGRES_TUPLES_OK, "schema lock", err, errlen) == -1 ||
	    (have = have_schema(p, c, err, errlen)) == -1)
		goto fail;
	if (!have && exec_ok(p, c, schema_sql, PGRES_COMMAND_OK,
	    "creating the schema (or have an administrator run cpx-audit "
	    "init-db)", err, errlen) == -1)
		goto fail;
	if (exec_ok(p, c, "COMMIT", PGRES_COMMAND_OK, "schema", err,
	    errlen) == -1)
		goto fail;
	if (!have)
		log_info("audit: postgresql (%s): schema version %d created",
		    p->desc, PG_SCHEMA_VERSION);
	return 0;
fail:
	PQclear(PQexec(c, "ROLLBACK"));
	return -1;
}

int
audit_pg_schema_ensure(struct audit_pg *p, PGconn *c, int create, char *err,
    size_t errlen)
{
	PGresult	*r = NULL;
	char		 m[512], *end;
	long		 v;
	int		 have, ret = -1;

	if ((have = have_schema(p, c, err, errlen)) == -1)
		return -1;
	if (!have) {
		if (!create)
			return audit_pg_err(p, err, errlen, "no cpx schema in "
			    "this database (run cpx-audit init-db)");
		if (create_schema(p, c, err, errlen) == -1)
			return -1;
	}
	r = PQexec(c, "SELECT version FROM cpx_schema");
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		audit_pg_err(p, err, errlen, "schema version: %s",
		    audit_pg_msg(c, m, sizeof(m)));
		goto done;
	}
	if (PQntuples(r) != 1 || PQgetisnull(r, 0, 0)) {
		audit_pg_err(p, err, errlen, "table cpx_schema holds %d "
		    "row(s), not one version", PQntuples(r));
		goto done;
	}
	v = strtol(PQgetvalue(r, 0, 0), &end, 10);
	if (*end != '\0' || v <= 0) {
		audit_pg_err(p, err, errlen, "schema version \"%.32s\" is not "
		    "a version", PQgetvalue(r, 0, 0));
		goto done;
	}
	if (v != PG_SCHEMA_VERSION) {
		audit_pg_err(p, err, errlen, "schema version %ld, this cpx "
		    "knows version %d: %s", v, PG_SCHEMA_VERSION,
		    v > PG_SCHEMA_VERSION ? "the database was upgraded by a "
		    "newer cpx; upgrade this one" : "unknown older schema");
		goto done;
	}
	ret = 0;
done:
	PQclear(r);
	return ret;
}

/* An int column of a binary result, of exactly n bytes. */
static int
col_int(const PGresult *r, int i, int col, int n, uint64_t *v)
{
	const uint8_t	*b;

	if (PQgetisnull(r, i, col) || PQgetlength(r, i, col) != n)
		return -1;
	b = (const uint8_t *)PQgetvalue(r, i, col);
	if (n == 8)
		*v = audit_get_be64(b);
	else
		*v = (uint64_t)b[0] << 24 | (uint64_t)b[1] << 16 |
		    (uint64_t)b[2] << 8 | b[3];
	return 0;
}

static const uint8_t *
col_hash(const PGresult *r, int i, int col)
{
	if (PQgetisnull(r, i, col) || PQgetlength(r, i, col) !=
	    (int)AUDIT_HASH_LEN)
		return NULL;
	return (const uint8_t *)PQgetvalue(r, i, col);
}

int
audit_pg_row(EVP_MD_CTX *md, const PGresult *r, int i, uint64_t want_seq,
    const uint8_t *prev, Cpx__AuditRecord **recp,
    uint8_t hash[AUDIT_HASH_LEN], uint32_t *lenp,
    uint8_t leaf[AUDIT_HASH_LEN], char *why, size_t whylen)
{
	Cpx__AuditRecord	*rec = NULL;
	const uint8_t		*ph, *h, *bytes;
	uint64_t		 seq, t, kind;
	uint8_t			 calc[AUDIT_HASH_LEN];
	int			 len;

	*recp = NULL;
	if (PQnfields(r) != 6 || col_int(r, i, 0, 8, &seq) == -1)
		return errf(why, whylen, "record %" PRIu64 ": bad seq column",
		    want_seq);
	if (seq != want_seq)
		return errf(why, whylen, "record %" PRIu64 " missing (next "
		    "row is %" PRIu64 ")", want_seq, seq);
	if (col_int(r, i, 1, 8, &t) == -1 || col_int(r, i, 2, 4, &kind) ==
	    -1)
		return errf(why, whylen, "record %" PRIu64 ": bad time or kind "
		    "column", seq);
	if ((ph = col_hash(r, i, 3)) == NULL || (h = col_hash(r, i, 4)) ==
	    NULL)
		return errf(why, whylen, "record %" PRIu64 ": hash columns "
		    "not %u bytes", seq, AUDIT_HASH_LEN);
	len = PQgetlength(r, i, 5);
	if (PQgetisnull(r, i, 5) || len <= 0 ||
	    (uint64_t)len > AUDIT_MAX_RECORD)
		return errf(why, whylen, "record %" PRIu64 ": record of %d "
		    "bytes (1 to %u)", seq, len, AUDIT_MAX_RECORD);
	bytes = (const uint8_t *)PQgetvalue(r, i, 5);
	if (prev != NULL && CRYPTO_memcmp(prev, ph, AUDIT_HASH_LEN) != 0)
		return errf(why, whylen, "record %" PRIu64 ": prev_hash is not "
		    "the hash of record %" PRIu64, seq, seq - 1);
	if (chain_leaf(md, bytes, (size_t)len, leaf) == -1 ||
	    chain_step(md, ph, seq, (uint32_t)len, leaf, calc) == -1)
		return errf(why, whylen, "record %" PRIu64 ": hashing failed",
		    seq);
	if (CRYPTO_memcmp(calc, h, AUDIT_HASH_LEN) != 0)
		return errf(why, whylen, "record %" PRIu64 ": chain hash "
		    "mismatch (the record bytes or its hash were changed)",
		    seq);
	rec = cpx__audit_record__unpack(NULL, (size_t)len, bytes);
	if (rec == NULL)
		return errf(why, whylen, "record %" PRIu64 ": does not decode",
		    seq);
	if (rec->seq != seq || rec->time != (int64_t)t ||
	    (uint64_t)rec->kind != kind) {
		cpx__audit_record__free_unpacked(rec, NULL);
		return errf(why, whylen, "record %" PRIu64 ": columns seq, "
		    "time or kind differ from the record's own", seq);
	}
	memcpy(hash, calc, AUDIT_HASH_LEN);
	*lenp = (uint32_t)len;
	*recp = rec;
	return 0;
}

/* A checkpoint covers the record before it and is signed by its cert. */
static int
check_checkpoint(const Cpx__AuditRecord *rec, const uint8_t *prev,
    char *why, size_t whylen)
{
	X509	*x = NULL;
	char	 w[256];

	if (rec->checkpoint_seq != rec->seq - 1 ||
	    rec->checkpoint_hash.len != AUDIT_HASH_LEN ||
	    CRYPTO_memcmp(rec->checkpoint_hash.data, prev,
	    AUDIT_HASH_LEN) != 0)
		return errf(why, whylen, "record %" PRIu64 ": checkpoint does "
		    "not cover the chain as it is (record %" PRIu64 ")",
		    rec->seq, rec->seq - 1);
	if (audit_checkpoint_verify(rec, prev, &x, w, sizeof(w)) == -1)
		return errf(why, whylen, "record %" PRIu64 ": %s", rec->seq,
		    w);
	X509_free(x);
	return 0;
}

/* Read the head row in the open snapshot into *seq, hash, *t. */
static int
read_head(struct audit_pg *p, PGconn *c, uint64_t *seq, uint8_t *hash,
    int64_t *t, char *err, size_t errlen)
{
	PGresult	*r;
	const uint8_t	*h;
	uint64_t	 tv;
	char		 m[512];
	int		 ret = -1;

	r = PQexecParams(c, "SELECT seq, hash, time FROM cpx_head", 0, NULL,
	    NULL, NULL, NULL, 1);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		audit_pg_err(p, err, errlen, "head: %s", audit_pg_msg(c, m,
		    sizeof(m)));
		goto done;
	}
	if (PQntuples(r) != 1 || PQnfields(r) != 3 ||
	    col_int(r, 0, 0, 8, seq) == -1 || (h = col_hash(r, 0, 1)) ==
	    NULL || col_int(r, 0, 2, 8, &tv) == -1 || *seq > INT64_MAX) {
		audit_pg_err(p, err, errlen, "table cpx_head is damaged "
		    "(%d row(s); one row of seq, 32-byte hash, time wanted)",
		    PQntuples(r));
		goto done;
	}
	memcpy(hash, h, AUDIT_HASH_LEN);
	*t = (int64_t)tv;
	ret = 0;
done:
	PQclear(r);
	return ret;
}

int
audit_pg_check_chain(struct audit_pg *p, PGconn *c, char *err,
    size_t errlen)
{
	static const char q[] = "SELECT seq, time, kind, prev_hash, hash, "
	    "record FROM cpx_records WHERE seq >= $1 ORDER BY seq LIMIT 512";
	Cpx__AuditRecord *rec = NULL;
	PGresult	*r = NULL;
	uint8_t		 hash[AUDIT_HASH_LEN], hh[AUDIT_HASH_LEN];
	uint8_t		 leaf[AUDIT_HASH_LEN], nb[8];
	const char	*vals[1];
	int		 lens[1], fmts[1] = { 1 }, i, n, ret = -1;
	uint64_t	 seq = 1, hseq, nckpt = 0;
	int64_t		 ht, last_time = 0;
	uint32_t	 len;
	char		 m[512], why[512];

	memset(hash, 0, sizeof(hash));
	/* One snapshot: writers may commit while we read. */
	if (exec_ok(p, c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
	    PGRES_COMMAND_OK, "open check", err, errlen) == -1)
		return -1;
	if (read_head(p, c, &hseq, hh, &ht, err, errlen) == -1)
		goto done;
	for (;;) {
		audit_put_be64(nb, seq);
		vals[0] = (const char *)nb;
		lens[0] = 8;
		PQclear(r);
		r = PQexecParams(c, q, 1, (const Oid[]){ 20 }, vals, lens,
		    fmts, 1);
		if (PQresultStatus(r) != PGRES_TUPLES_OK) {
			audit_pg_err(p, err, errlen, "open check at record %"
			    PRIu64 ": %s", seq, audit_pg_msg(c, m, sizeof(m)));
			goto done;
		}
		if ((n = PQntuples(r)) == 0)
			break;
		for (i = 0; i < n; i++, seq++) {
			if (audit_pg_row(p->md, r, i, seq, hash, &rec, hash,
			    &len, leaf, why, sizeof(why)) == -1) {
				audit_pg_err(p, err, errlen, "damaged log: %s",
				    why);
				goto done;
			}
			if (rec->kind ==
			    CPX__RECORD_KIND__RECORD_CHECKPOINT) {
				/* prev: the hash before this record. */
				if (check_checkpoint(rec,
				    (const uint8_t *)PQgetvalue(r, i, 3), why,
				    sizeof(why)) == -1) {
					audit_pg_err(p, err, errlen, "damaged "
					    "log: %s", why);
					goto done;
				}
				nckpt++;
			}
			if (rec->time > last_time)
				last_time = rec->time;
			cpx__audit_record__free_unpacked(rec, NULL);
			rec = NULL;
		}
	}
	seq--;
	if (hseq != seq || CRYPTO_memcmp(hh, hash, AUDIT_HASH_LEN) != 0) {
		audit_pg_err(p, err, errlen, "damaged log: the head row says "
		    "record %" PRIu64 "%s, the records end at %" PRIu64 "%s",
		    hseq, hseq == seq ? " with another hash" : "", seq,
		    hseq > seq ? " (records missing from the end)" : "");
		goto done;
	}
	p->head_seq = seq;
	memcpy(p->head_hash, hash, AUDIT_HASH_LEN);
	p->head_time = ht > last_time ? ht : last_time;
	log_info("audit: postgresql (%s): %" PRIu64 " checkpoint(s) checked",
	    p->desc, nckpt);
	ret = 0;
done:
	if (rec != NULL)
		cpx__audit_record__free_unpacked(rec, NULL);
	PQclear(r);
	PQclear(PQexec(c, ret == 0 ? "COMMIT" : "ROLLBACK"));
	return ret;
}
