/*
 * audit_port.c: cpx-audit export, import and init-db (audit_port.h).
 *
 * Export reads the database through the store interface, like any
 * reader: audit_open_pg read-only, a cursor from record 1 up to the head
 * the store had when it opened. It writes with the segment-file store
 * (audit_open on an empty directory, no key: it signs nothing and adds
 * no record), appending each record with its own time, so the file store
 * numbers it as the database did. Each record is packed again before it
 * is appended and its SHA-256 compared with the leaf of the database's
 * bytes: a record whose bytes would not come out the same (a field this
 * cpx does not know) is named instead of silently breaking the chain,
 * and after each commit the file store's chain hash is compared with the
 * one the database's leaves give.
 *
 * Import writes rows itself (libpq), not through the store: the store
 * numbers, times and signs what it appends as its own, while an import
 * copies a log that is already numbered, chained and signed. Each batch
 * is one transaction that takes the head row FOR UPDATE and checks it is
 * where the last batch left it (a broker started on the database during
 * an import is refused, not interleaved), inserts the rows and moves the
 * head. The derived columns (alert id, origin, the SHA-256 of the signed
 * alert bytes) are computed as the store computes them for its own rows.
 * Owns nothing beyond a call.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "audit.h"
#include "audit_port.h"
#include "chain.h"
#include "cpx_limits.h"
#include "dedup.h"
#include "errfmt.h"

#define PORT_COLS	12
/* The longest decimal int64 with sign and NUL. */
#define NUM_LEN		24

/* 1 if dir does not exist or holds nothing; 0 otherwise (or unreadable). */
static int
dir_empty(const char *dir, char *err, size_t errlen)
{
	DIR		*d;
	struct dirent	*e;
	int		 empty = 1;

	if ((d = opendir(dir)) == NULL) {
		if (errno == ENOENT)
			return 1;
		errf(err, errlen, "%s: %s", dir, strerror(errno));
		return 0;
	}
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			empty = 0;
	closedir(d);
	if (!empty)
		errf(err, errlen, "%s is not empty: export writes a new log "
		    "(give a directory that does not exist yet)", dir);
	return empty;
}

/*
 * Pack rec into *buf (grown as needed, at most AUDIT_MAX_RECORD) and
 * check its SHA-256 and size against the leaf the store read: the bytes
 * another store will write for it are the bytes on record. 0 or -1.
 */
static int
repack_same(EVP_MD_CTX *md, const Cpx__AuditRecord *rec, uint32_t len,
    const uint8_t leaf[AUDIT_HASH_LEN], uint8_t **buf, size_t *cap,
    char *err, size_t errlen)
{
	uint8_t	 h[AUDIT_HASH_LEN], *nb;
	size_t	 n;

	n = cpx__audit_record__get_packed_size(rec);
	if (n > AUDIT_MAX_RECORD)
		return errf(err, errlen, "record %" PRIu64 ": %zu bytes, over "
		    "the limit %u", rec->seq, n, AUDIT_MAX_RECORD);
	if (n > *cap) {
		if ((nb = realloc(*buf, n)) == NULL)
			return errf(err, errlen, "out of memory");
		*buf = nb;
		*cap = n;
	}
	if (cpx__audit_record__pack(rec, *buf) != n ||
	    chain_leaf(md, *buf, n, h) == -1)
		return errf(err, errlen, "record %" PRIu64 ": cannot encode",
		    rec->seq);
	if (n != len || CRYPTO_memcmp(h, leaf, AUDIT_HASH_LEN) != 0)
		return errf(err, errlen, "record %" PRIu64 ": its bytes do not "
		    "encode again as stored (%" PRIu32 " bytes on record, %zu "
		    "re-encoded: a field this cpx-audit does not know?); a "
		    "copy would not chain: use the cpx-audit of the brokers' "
		    "version", rec->seq, len, n);
	return 0;
}

int
audit_port_export(const char *dsn, const char *dir,
    struct audit_port_result *res, char *err, size_t errlen)
{
	struct audit		*src = NULL, *dst = NULL;
	struct audit_cursor	*c = NULL;
	Cpx__AuditRecord	*rec = NULL;
	EVP_MD			*sha = NULL;
	EVP_MD_CTX		*md = NULL;
	uint8_t			 leaf[AUDIT_HASH_LEN];
	uint8_t			 head[AUDIT_HASH_LEN];
	uint8_t			 fh[AUDIT_HASH_LEN], *buf = NULL;
	uint32_t		 len;
	uint64_t		 last, seq;
	size_t			 cap = 0;
	char			 e[768];
	int			 r, ret = -1;

	memset(res, 0, sizeof(*res));
	if (!dir_empty(dir, err, errlen))
		goto done;
	if ((md = EVP_MD_CTX_new()) == NULL ||
	    (sha = EVP_MD_fetch(NULL, "SHA256", NULL)) == NULL ||
	    EVP_DigestInit_ex(md, sha, NULL) != 1) {
		errf(err, errlen, "out of memory");
		goto done;
	}
	if ((src = audit_open_pg(dsn, NULL, NULL, 0, err, errlen)) == NULL)
		goto done;
	last = audit_last_seq(src);
	audit_last_hash(src, head);
	if ((dst = audit_open(dir, NULL, NULL, e, sizeof(e))) == NULL) {
		errf(err, errlen, "%s", e);
		goto done;
	}
	if (last > 0 && (c = audit_cursor_new(src, 1, 0, err,
	    errlen)) == NULL)
		goto done;
	while (res->records < last) {
		if ((r = audit_cursor_next_leaf(c, &rec, &len, leaf, err,
		    errlen)) == -1)
			goto done;
		if (r == 0 || rec->seq != res->records + 1) {
			errf(err, errlen, "record %" PRIu64 ": not read (the "
			    "head says %" PRIu64 " were committed)",
			    res->records + 1, last);
			goto done;
		}
		/* A time of 0 would be given a new one: not a copy. */
		if (rec->time <= 0) {
			errf(err, errlen, "record %" PRIu64 ": no time",
			    rec->seq);
			goto done;
		}
		if (repack_same(md, rec, len, leaf, &buf, &cap, err,
		    errlen) == -1 ||
		    chain_step(md, res->last_hash, rec->seq, len, leaf,
		    res->last_hash) == -1)
			goto done;
		if (audit_append(dst, rec, &seq) == -1 || seq != rec->seq) {
			errf(err, errlen, "record %" PRIu64 ": %s: cannot "
			    "append (see the log line above)", rec->seq, dir);
			goto done;
		}
		res->records++;
		cpx__audit_record__free_unpacked(rec, NULL);
		rec = NULL;
		if (audit_pending(dst) < AUDIT_PORT_BATCH &&
		    res->records < last)
			continue;
		seq = res->records;
		if (audit_commit(dst, e, sizeof(e)) == -1) {
			errf(err, errlen, "%s", e);
			goto done;
		}
		res->batches++;
		audit_last_hash(dst, fh);
		if (audit_last_seq(dst) != seq || CRYPTO_memcmp(fh,
		    res->last_hash, AUDIT_HASH_LEN) != 0) {
			errf(err, errlen, "record %" PRIu64 ": %s holds a "
			    "chain hash other than the database's", seq, dir);
			goto done;
		}
	}
	if (CRYPTO_memcmp(res->last_hash, head, AUDIT_HASH_LEN) != 0) {
		errf(err, errlen, "record %" PRIu64 ": the chain hash differs "
		    "from the database's head row", last);
		goto done;
	}
	res->last_seq = last;
	ret = 0;
done:
	if (rec != NULL)
		cpx__audit_record__free_unpacked(rec, NULL);
	audit_cursor_free(&c);
	audit_close(&dst);	/* no key: seals nothing, adds no record */
	audit_close(&src);
	free(buf);
	EVP_MD_CTX_free(md);
	EVP_MD_free(sha);
	return ret;
}

/* --- import ---------------------------------------------------------- */

/* One batch of rows as libpq parameters. */
struct rows {
	const char	**val;
	int		 *len;
	int		 *fmt;
	char		(*num)[3][NUM_LEN];	/* seq, time, kind */
	uint8_t		(*hash)[2][AUDIT_HASH_LEN]; /* prev, hash */
	uint8_t		(*sha)[AUDIT_HASH_LEN];
	uint8_t		**rec;		/* packed record, owned */
	Cpx__AuditRecord **unp;		/* the records, owned: their
					 * strings are parameters */
	Cpx__Alert	**alert;	/* unpacked alerts, owned */
	char		(*broker)[CPX_MAX_NODE_NAME + 1];
	size_t		  n, cap;
};

static void
rows_clear(struct rows *w)
{
	size_t	i;

	for (i = 0; i < w->n; i++) {
		free(w->rec[i]);
		w->rec[i] = NULL;
		if (w->unp[i] != NULL)
			cpx__audit_record__free_unpacked(w->unp[i], NULL);
		w->unp[i] = NULL;
		if (w->alert[i] != NULL)
			cpx__alert__free_unpacked(w->alert[i], NULL);
		w->alert[i] = NULL;
	}
	w->n = 0;
}

static void
rows_free(struct rows *w)
{
	rows_clear(w);
	free(w->val);
	free(w->len);
	free(w->fmt);
	free(w->num);
	free(w->hash);
	free(w->sha);
	free(w->rec);
	free(w->unp);
	free(w->alert);
	free(w->broker);
}

static int
rows_init(struct rows *w, size_t cap)
{
	memset(w, 0, sizeof(*w));
	w->cap = cap;
	w->val = calloc(cap * PORT_COLS, sizeof(*w->val));
	w->len = calloc(cap * PORT_COLS, sizeof(*w->len));
	w->fmt = calloc(cap * PORT_COLS, sizeof(*w->fmt));
	w->num = calloc(cap, sizeof(*w->num));
	w->hash = calloc(cap, sizeof(*w->hash));
	w->sha = calloc(cap, sizeof(*w->sha));
	w->rec = calloc(cap, sizeof(*w->rec));
	w->unp = calloc(cap, sizeof(*w->unp));
	w->alert = calloc(cap, sizeof(*w->alert));
	w->broker = calloc(cap, sizeof(*w->broker));
	/* On failure the caller's rows_free frees what was had. */
	if (w->val == NULL || w->len == NULL || w->fmt == NULL ||
	    w->num == NULL || w->hash == NULL || w->sha == NULL ||
	    w->rec == NULL || w->unp == NULL || w->alert == NULL ||
	    w->broker == NULL)
		return -1;
	return 0;
}

/* Text parameter k of the current row (NULL: SQL NULL). */
static void
put_text(struct rows *w, size_t row, int k, const char *s)
{
	size_t	i = row * PORT_COLS + (size_t)k;

	w->val[i] = s != NULL && s[0] != '\0' ? s : NULL;
	w->len[i] = 0;
	w->fmt[i] = 0;
}

static void
put_bytes(struct rows *w, size_t row, int k, const uint8_t *p, size_t len)
{
	size_t	i = row * PORT_COLS + (size_t)k;

	w->val[i] = (const char *)p;
	w->len[i] = (int)len;
	w->fmt[i] = 1;
}

/* The CN of a checkpoint's certificate, printable, or "" if none. */
static void
checkpoint_cn(const Cpx__AuditRecord *rec, char *out, size_t len)
{
	const unsigned char	*p = rec->checkpoint_cert.data;
	X509			*x = NULL;
	size_t			 i;

	out[0] = '\0';
	if (rec->checkpoint_cert.len == 0 ||
	    rec->checkpoint_cert.len > CPX_MAX_CERT ||
	    (x = d2i_X509(NULL, &p, (long)rec->checkpoint_cert.len)) == NULL)
		return;
	if (X509_NAME_get_text_by_NID(X509_get_subject_name(x),
	    NID_commonName, out, (int)len) <= 0)
		out[0] = '\0';
	for (i = 0; out[i] != '\0'; i++)
		if (out[i] < 0x21 || out[i] > 0x7e)
			out[i] = '?';
	X509_free(x);
}

/*
 * Add *recp (taken over) as the next row, its bytes already packed into
 * *bytes (taken over): prev and hash its chain hashes, broker the
 * writer's name. The rows hold both until rows_clear: libpq reads the
 * parameters where they are.
 */
static int
rows_add(struct rows *w, Cpx__AuditRecord **recp, uint8_t **bytes,
    size_t blen, const uint8_t prev[AUDIT_HASH_LEN],
    const uint8_t hash[AUDIT_HASH_LEN], const char *broker, char *err,
    size_t errlen)
{
	Cpx__AuditRecord *rec = *recp;
	Cpx__Alert	*al = NULL;
	size_t		 i = w->n;

	w->rec[i] = *bytes;
	*bytes = NULL;
	w->unp[i] = rec;
	*recp = NULL;
	w->n++;		/* the row's now, whatever follows */
	snprintf(w->num[i][0], NUM_LEN, "%" PRIu64, rec->seq);
	snprintf(w->num[i][1], NUM_LEN, "%" PRId64, rec->time);
	snprintf(w->num[i][2], NUM_LEN, "%d", (int)rec->kind);
	memcpy(w->hash[i][0], prev, AUDIT_HASH_LEN);
	memcpy(w->hash[i][1], hash, AUDIT_HASH_LEN);
	snprintf(w->broker[i], sizeof(w->broker[i]), "%s", broker);
	put_text(w, i, 0, w->num[i][0]);
	put_text(w, i, 1, w->num[i][1]);
	put_text(w, i, 2, w->num[i][2]);
	put_bytes(w, i, 3, w->hash[i][0], AUDIT_HASH_LEN);
	put_bytes(w, i, 4, w->hash[i][1], AUDIT_HASH_LEN);
	put_bytes(w, i, 5, w->rec[i], blen);
	put_text(w, i, 6, NULL);
	put_text(w, i, 7, NULL);
	put_bytes(w, i, 8, NULL, 0);
	if (rec->kind == CPX__RECORD_KIND__RECORD_ALERT_ACCEPTED) {
		/* The dedup key, as the broker keys it: the signed bytes. */
		if (rec->alert == NULL || rec->alert->alert.len == 0 ||
		    rec->alert->alert.len > CPX_MAX_ALERT ||
		    (al = cpx__alert__unpack(NULL, rec->alert->alert.len,
		    rec->alert->alert.data)) == NULL)
			return errf(err, errlen, "record %" PRIu64 ": accepted "
			    "alert that does not decode", rec->seq);
		w->alert[i] = al;
		if (al->origin[0] == '\0' || strlen(al->origin) > 8)
			return errf(err, errlen, "record %" PRIu64 ": accepted "
			    "alert without a readable origin", rec->seq);
		dedup_hash(rec->alert->alert.data, rec->alert->alert.len,
		    w->sha[i]);
		/* The record's alert_id, else the alert's: as the store. */
		put_text(w, i, 6, rec->alert_id != NULL && rec->alert_id[0] !=
		    '\0' ? rec->alert_id : al->id);
		put_text(w, i, 7, al->origin);
		put_bytes(w, i, 8, w->sha[i], AUDIT_HASH_LEN);
	}
	put_text(w, i, 9, rec->peer_country);
	put_text(w, i, 10, rec->peer_node);
	/* NOT NULL: "" stands for a log whose writer is not known. */
	w->val[i * PORT_COLS + 11] = w->broker[i];
	w->len[i * PORT_COLS + 11] = 0;
	w->fmt[i * PORT_COLS + 11] = 0;
	return 0;
}

/* The result of a command that must succeed (PGRES_COMMAND_OK/TUPLES). */
static int
pq_ok(PGconn *conn, PGresult *r, const char *what, char *err,
    size_t errlen)
{
	ExecStatusType	 st = PQresultStatus(r);
	char		 m[512];
	size_t		 n;

	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
		return 0;
	snprintf(m, sizeof(m), "%s", r != NULL ?
	    PQresultErrorMessage(r) : PQerrorMessage(conn));
	n = strlen(m);
	while (n > 0 && (m[n - 1] == '\n' || m[n - 1] == ' '))
		m[--n] = '\0';
	return errf(err, errlen, "%s: %s", what, m[0] != '\0' ? m :
	    "connection lost");
}

/* Run sql (no parameters), expecting success. 0 or -1 with err[]. */
static int
pq_exec(PGconn *conn, const char *sql, const char *what, char *err,
    size_t errlen)
{
	PGresult	*r;
	int		 ret;

	r = PQexec(conn, sql);
	ret = pq_ok(conn, r, what, err, errlen);
	PQclear(r);
	return ret;
}

/*
 * The head row, locked FOR UPDATE inside the open transaction: *seq and
 * hash. 0 or -1 with err[].
 */
static int
head_lock(PGconn *conn, uint64_t *seq, uint8_t hash[AUDIT_HASH_LEN],
    char *err, size_t errlen)
{
	PGresult	*r;
	int		 i, ret = -1;

	r = PQexecParams(conn, "SELECT seq, hash FROM cpx_head FOR UPDATE",
	    0, NULL, NULL, NULL, NULL, 1);
	if (pq_ok(conn, r, "reading the head row (cpx_head)", err,
	    errlen) == -1)
		goto done;
	if (PQntuples(r) != 1 || PQgetlength(r, 0, 0) != 8 ||
	    PQgetlength(r, 0, 1) != (int)AUDIT_HASH_LEN) {
		errf(err, errlen, "the head row (cpx_head) is not one row of "
		    "(seq, 32-byte hash): not a cpx schema of this version");
		goto done;
	}
	*seq = 0;
	for (i = 0; i < 8; i++)
		*seq = *seq << 8 | (uint8_t)PQgetvalue(r, 0, 0)[i];
	memcpy(hash, PQgetvalue(r, 0, 1), AUDIT_HASH_LEN);
	ret = 0;
done:
	PQclear(r);
	return ret;
}

/* INSERT ... VALUES ($1..$12), ... for n rows, into *sql (owned). */
static char *
insert_sql(size_t n)
{
	static const char head[] = "INSERT INTO cpx_records (seq, time, "
	    "kind, prev_hash, hash, record, alert_id, origin, alert_sha256, "
	    "peer_country, peer_node, broker) VALUES ";
	char	*sql, *p;
	size_t	 cap, i, k, used;
	int	 m;

	/* "($1,...,$12)," is under 12 * 8 + 4 bytes a row. */
	cap = sizeof(head) + n * (PORT_COLS * 8 + 4) + 1;
	if ((sql = malloc(cap)) == NULL)
		return NULL;
	memcpy(sql, head, sizeof(head) - 1);
	used = sizeof(head) - 1;
	for (i = 0; i < n; i++) {
		p = sql + used;
		*p++ = i > 0 ? ',' : ' ';
		*p++ = '(';
		used += 2;
		for (k = 0; k < PORT_COLS; k++) {
			m = snprintf(sql + used, cap - used, "%s$%zu",
			    k > 0 ? "," : "", i * PORT_COLS + k + 1);
			if (m < 0 || (size_t)m >= cap - used) {
				free(sql);
				return NULL;
			}
			used += (size_t)m;
		}
		sql[used++] = ')';
	}
	sql[used] = '\0';
	return sql;
}

/*
 * One transaction: the head must be where the last batch left it
 * (*seq, hash), then the rows, the head moved, COMMIT.
 */
static int
write_batch(PGconn *conn, struct rows *w, uint64_t *seq,
    uint8_t hash[AUDIT_HASH_LEN], int64_t time, char *err, size_t errlen)
{
	PGresult	*r = NULL;
	uint64_t	 hseq;
	uint8_t		 hh[AUDIT_HASH_LEN];
	const char	*val[3];
	int		 len[3], fmt[3];
	char		*sql = NULL, tbuf[NUM_LEN];
	char		 m[512];
	int		 ret = -1;

	if (pq_exec(conn, "BEGIN", "BEGIN", err, errlen) == -1)
		return -1;
	if (head_lock(conn, &hseq, hh, err, errlen) == -1)
		goto done;
	if (hseq != *seq || CRYPTO_memcmp(hh, w->hash[0][0],
	    AUDIT_HASH_LEN) != 0) {
		errf(err, errlen, "the log's head moved to seq %" PRIu64
		    " while importing after seq %" PRIu64 ": something else "
		    "writes to this database (stop every broker during an "
		    "import)", hseq, *seq);
		goto done;
	}
	if ((sql = insert_sql(w->n)) == NULL) {
		errf(err, errlen, "out of memory");
		goto done;
	}
	r = PQexecParams(conn, sql, (int)(w->n * PORT_COLS), NULL, w->val,
	    w->len, w->fmt, 0);
	snprintf(m, sizeof(m), "inserting records %s..%s", w->num[0][0],
	    w->num[w->n - 1][0]);
	if (pq_ok(conn, r, m, err, errlen) == -1)
		goto done;
	PQclear(r);
	snprintf(tbuf, sizeof(tbuf), "%" PRId64, time);
	val[0] = w->num[w->n - 1][0];
	val[1] = (const char *)w->hash[w->n - 1][1];
	val[2] = tbuf;
	len[0] = len[2] = 0;
	len[1] = (int)AUDIT_HASH_LEN;
	fmt[0] = fmt[2] = 0;
	fmt[1] = 1;
	r = PQexecParams(conn, "UPDATE cpx_head SET seq = $1, hash = $2, "
	    "time = $3", 3, NULL, val, len, fmt, 0);
	if (pq_ok(conn, r, "moving the head row", err, errlen) == -1)
		goto done;
	PQclear(r);
	/* Any broker listening reads what came; delivered on COMMIT. */
	val[0] = w->num[w->n - 1][0];
	r = PQexecParams(conn, "SELECT pg_notify('cpx_log', $1)", 1, NULL,
	    val, NULL, NULL, 0);
	if (pq_ok(conn, r, "NOTIFY cpx_log", err, errlen) == -1)
		goto done;
	PQclear(r);
	r = NULL;
	if (pq_exec(conn, "COMMIT", "COMMIT", err, errlen) == -1)
		goto done;
	*seq = w->unp[w->n - 1]->seq;
	memcpy(hash, w->hash[w->n - 1][1], AUDIT_HASH_LEN);
	ret = 0;
done:
	PQclear(r);
	free(sql);
	if (ret == -1 && PQtransactionStatus(conn) != PQTRANS_IDLE) {
		r = PQexec(conn, "ROLLBACK");
		PQclear(r);
	}
	return ret;
}

/* The schema is there, of the version this cpx writes. 0 or -1. */
static int
schema_check(PGconn *conn, int *version, char *err, size_t errlen)
{
	PGresult	*r;
	int		 ret = -1;

	*version = 0;
	r = PQexec(conn, "SELECT to_regclass('cpx_schema') IS NOT NULL");
	if (pq_ok(conn, r, "looking for the schema", err, errlen) == -1)
		goto done;
	if (PQntuples(r) != 1 || strcmp(PQgetvalue(r, 0, 0), "t") != 0) {
		ret = 1;	/* none */
		goto done;
	}
	PQclear(r);
	r = PQexec(conn, "SELECT version FROM cpx_schema");
	if (pq_ok(conn, r, "reading cpx_schema", err, errlen) == -1)
		goto done;
	if (PQntuples(r) != 1) {
		errf(err, errlen, "cpx_schema holds %d rows, not one",
		    PQntuples(r));
		goto done;
	}
	*version = atoi(PQgetvalue(r, 0, 0));
	ret = 0;
done:
	PQclear(r);
	return ret;
}

static PGconn *
connect_db(const char *dsn, char *err, size_t errlen)
{
	PGconn	*conn;
	char	 desc[256], m[512];
	size_t	 n;

	conn = PQconnectdb(dsn);
	if (conn == NULL || PQstatus(conn) != CONNECTION_OK) {
		audit_pg_describe(dsn, desc, sizeof(desc));
		snprintf(m, sizeof(m), "%s", conn != NULL ?
		    PQerrorMessage(conn) : "out of memory");
		n = strlen(m);
		while (n > 0 && (m[n - 1] == '\n' || m[n - 1] == ' '))
			m[--n] = '\0';
		errf(err, errlen, "postgresql (%s): cannot connect: %s (check "
		    "--dsn, the password file and that the database runs)",
		    desc, m);
		PQfinish(conn);
		return NULL;
	}
	return conn;
}

/* Who wrote what: each checkpoint's seq and its signer's CN. */
struct signed_by {
	uint64_t	seq;
	char		name[CPX_MAX_NODE_NAME + 1];
};

/*
 * Read dir's checkpoints into *v (owned by the caller): a record's
 * "broker" is the signer of the first checkpoint at or after it, since
 * each broker seals what it wrote with its own checkpoint (exact for a
 * log of one broker; a log exported from brokers that interleaved does
 * not say who wrote which record, and this is the best guess).
 */
static int
read_signers(const char *dir, struct signed_by **v, size_t *n, char *err,
    size_t errlen)
{
	struct audit_cursor	*c = NULL;
	Cpx__AuditRecord	*rec = NULL;
	struct signed_by	*nv;
	size_t			 cap = 0;
	int			 r, ret = -1;

	*v = NULL;
	*n = 0;
	if ((c = audit_cursor_open_dir(dir, 1, 0, err, errlen)) == NULL)
		return -1;
	while ((r = audit_cursor_next(c, &rec, err, errlen)) == 1) {
		if (rec->kind == CPX__RECORD_KIND__RECORD_CHECKPOINT) {
			if (*n == cap) {
				cap = cap ? cap * 2 : 64;
				if ((nv = reallocarray(*v, cap,
				    sizeof(*nv))) == NULL) {
					errf(err, errlen, "out of memory");
					goto done;
				}
				*v = nv;
			}
			(*v)[*n].seq = rec->seq;
			checkpoint_cn(rec, (*v)[*n].name,
			    sizeof((*v)[*n].name));
			(*n)++;
		}
		cpx__audit_record__free_unpacked(rec, NULL);
		rec = NULL;
	}
	ret = r;
done:
	if (rec != NULL)
		cpx__audit_record__free_unpacked(rec, NULL);
	audit_cursor_free(&c);
	return ret;
}

int
audit_port_import(const char *dir, const char *dsn, size_t batch,
    const char *broker, struct audit_port_result *res, char *err,
    size_t errlen)
{
	struct audit_cursor	*c = NULL;
	Cpx__AuditRecord	*rec = NULL;
	struct rows		 w;
	struct signed_by	*sig = NULL;
	size_t			 nsig = 0, isig = 0;
	PGconn			*conn = NULL;
	EVP_MD			*sha = NULL;
	EVP_MD_CTX		*md = NULL;
	uint8_t			 leaf[AUDIT_HASH_LEN];
	uint8_t			 prev[AUDIT_HASH_LEN];
	uint8_t			 hh[AUDIT_HASH_LEN], *buf = NULL;
	uint32_t		 len;
	uint64_t		 hseq;
	size_t			 cap = 0;
	char			 name[CPX_MAX_NODE_NAME + 1], e[768];
	char			 desc[256];
	int			 r, version, ret = -1;
	int64_t			 time = 0;

	memset(res, 0, sizeof(*res));
	memset(prev, 0, sizeof(prev));
	audit_pg_describe(dsn, desc, sizeof(desc));
	if (batch == 0)
		batch = AUDIT_PORT_BATCH;
	/* libpq takes at most 65535 parameters a statement. */
	if (batch > AUDIT_PORT_BATCH_MAX)
		batch = AUDIT_PORT_BATCH_MAX;
	if (rows_init(&w, batch) == -1 || (md = EVP_MD_CTX_new()) == NULL ||
	    (sha = EVP_MD_fetch(NULL, "SHA256", NULL)) == NULL ||
	    EVP_DigestInit_ex(md, sha, NULL) != 1) {
		errf(err, errlen, "out of memory");
		goto done;
	}
	snprintf(name, sizeof(name), "%s", broker != NULL ? broker : "");
	if ((conn = connect_db(dsn, err, errlen)) == NULL)
		goto done;
	if ((r = schema_check(conn, &version, e, sizeof(e))) != 0) {
		errf(err, errlen, "postgresql (%s): %s", desc, r == 1 ?
		    "no cpx schema in this database: run cpx-audit init-db "
		    "first" : e);
		goto done;
	}
	/* Empty: a head at 0 and no row (one transaction, head locked). */
	if (pq_exec(conn, "BEGIN", "BEGIN", e, sizeof(e)) == -1 ||
	    head_lock(conn, &hseq, hh, e, sizeof(e)) == -1 ||
	    pq_exec(conn, "COMMIT", "COMMIT", e, sizeof(e)) == -1) {
		errf(err, errlen, "postgresql (%s): %s", desc, e);
		goto done;
	}
	if (hseq != 0) {
		errf(err, errlen, "postgresql (%s): the database's log is not "
		    "empty: its head is seq %" PRIu64 "; import writes only "
		    "into an empty database (a new one: cpx-audit init-db)",
		    desc, hseq);
		goto done;
	}
	if (read_signers(dir, &sig, &nsig, err, errlen) == -1 ||
	    (c = audit_cursor_open_dir(dir, 1, 0, err, errlen)) == NULL)
		goto done;
	for (;;) {
		if ((r = audit_cursor_next_leaf(c, &rec, &len, leaf, err,
		    errlen)) == -1)
			goto done;
		if (r == 1) {
			if (rec->seq != res->records + 1 || rec->time <= 0) {
				errf(err, errlen, "%s: record %" PRIu64 ": "
				    "unexpected seq or time", dir, rec->seq);
				goto done;
			}
			if (repack_same(md, rec, len, leaf, &buf, &cap, err,
			    errlen) == -1 ||
			    chain_step(md, prev, rec->seq, len, leaf,
			    res->last_hash) == -1)
				goto done;
			/* The signer of the checkpoint that seals it. */
			while (isig < nsig && sig[isig].seq < rec->seq)
				isig++;
			if (isig < nsig)
				snprintf(name, sizeof(name), "%s",
				    sig[isig].name);
			time = rec->time;
			cap = 0;
			if (rows_add(&w, &rec, &buf, len, prev,
			    res->last_hash, name, err, errlen) == -1)
				goto done;
			memcpy(prev, res->last_hash, AUDIT_HASH_LEN);
			res->records++;
		}
		if (r == 1 && w.n < batch)
			continue;
		if (w.n == 0)
			break;
		if (write_batch(conn, &w, &res->last_seq, hh, time, e,
		    sizeof(e)) == -1) {
			if (res->last_seq == 0)
				errf(err, errlen, "postgresql (%s): %s "
				    "(nothing was committed)", desc, e);
			else
				errf(err, errlen, "postgresql (%s): %s "
				    "(records 1..%" PRIu64 " were committed "
				    "before: the database holds that prefix; "
				    "drop and re-create the schema to start "
				    "again)", desc, e, res->last_seq);
			goto done;
		}
		res->batches++;
		rows_clear(&w);
		if (r == 0)
			break;
	}
	ret = 0;
done:
	if (rec != NULL)
		cpx__audit_record__free_unpacked(rec, NULL);
	audit_cursor_free(&c);
	rows_free(&w);
	free(sig);
	PQfinish(conn);
	free(buf);
	EVP_MD_CTX_free(md);
	EVP_MD_free(sha);
	return ret;
}

/* --- init-db ---------------------------------------------------------- */

int
audit_port_grants(const char *role, char *buf, size_t len, char *err,
    size_t errlen)
{
	size_t	i;
	int	n;

	/*
	 * A plain name only, so it is quoted safely without a connection
	 * (init-db --print): no quote, no space, nothing to escape.
	 */
	for (i = 0; role[i] != '\0'; i++)
		if (!(role[i] == '_' || (role[i] >= 'a' && role[i] <= 'z') ||
		    (role[i] >= 'A' && role[i] <= 'Z') ||
		    (i > 0 && role[i] >= '0' && role[i] <= '9')))
			break;
	if (i == 0 || i > 63 || role[i] != '\0')
		return errf(err, errlen, "--grant %s: not a plain role name "
		    "(letters, digits and '_', not starting with a digit, at "
		    "most 63)", role);
	n = snprintf(buf, len,
	    "GRANT SELECT ON cpx_schema TO \"%s\";\n"
	    "GRANT SELECT, INSERT ON cpx_records TO \"%s\";\n"
	    "GRANT SELECT, UPDATE ON cpx_head TO \"%s\";\n", role, role,
	    role);
	if (n < 0 || (size_t)n >= len)
		return errf(err, errlen, "GRANT text too long");
	return 0;
}

int
audit_port_init_db(const char *dsn, const char *role, int *created,
    int *version, char *err, size_t errlen)
{
	PGconn	*conn = NULL;
	char	 g[1024], desc[256], e[768];
	int	 r, ret = -1;

	*created = 0;
	*version = 0;
	audit_pg_describe(dsn, desc, sizeof(desc));
	if (role != NULL && audit_port_grants(role, g, sizeof(g), err,
	    errlen) == -1)
		return -1;
	if ((conn = connect_db(dsn, err, errlen)) == NULL)
		goto done;
	if ((r = schema_check(conn, version, e, sizeof(e))) == -1) {
		errf(err, errlen, "postgresql (%s): %s", desc, e);
		goto done;
	}
	if (r == 1) {
		/* One transaction: a schema is there whole, or not at all. */
		if (pq_exec(conn, "BEGIN", "BEGIN", e, sizeof(e)) == -1 ||
		    pq_exec(conn, audit_pg_schema_sql(), "creating the "
		    "schema", e, sizeof(e)) == -1 ||
		    pq_exec(conn, "COMMIT", "COMMIT", e, sizeof(e)) == -1 ||
		    schema_check(conn, version, e, sizeof(e)) != 0) {
			errf(err, errlen, "postgresql (%s): %s", desc, e);
			goto done;
		}
		*created = 1;
	}
	if (role != NULL && pq_exec(conn, g, "GRANT", e, sizeof(e)) == -1) {
		errf(err, errlen, "postgresql (%s): %s (does role %s exist? "
		    "CREATE ROLE %s LOGIN first)", desc, e, role, role);
		goto done;
	}
	ret = 0;
done:
	if (ret == -1 && conn != NULL &&
	    PQtransactionStatus(conn) == PQTRANS_INERROR)
		PQclear(PQexec(conn, "ROLLBACK"));
	PQfinish(conn);
	return ret;
}
