/*
 * test_pg_tools.c: cpx-audit on a PostgreSQL store (broker/audit_main.c,
 * audit_port.c, audit_verify.c), the built tool against a real
 * PostgreSQL 15 server the test starts (tests/util/pgserver.h):
 * - init-db creates the schema as the administrator and grants the
 *   broker's role its rights; a second run leaves it alone;
 * - two brokers (two CA broker keys) write one log through the store;
 *   verify --dsn checks it and counts checkpoints per broker; dump
 *   --dsn prints every record;
 * - export writes it to segment files that verify offline
 *   (--multi-broker) with the same head; import of those files into an
 *   empty database gives the same head, the same rows (derived columns
 *   included) and, exported again, byte-identical segments; a
 *   non-empty database is refused naming its head;
 * - a record altered in the database fails verify and export, naming
 *   the seq.
 * Without PostgreSQL installed the test skips.
 */
#include <inttypes.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <libpq-fe.h>
#include <openssl/evp.h>

#include "audit.h"
#include "audit_tools_util.h"
#include "chain.h"
#include "pgserver.h"
#include "testutil.h"

static struct pgserver	ps;
static int		up;
static char		scratch[512];
static char		out[256 * 1024];

static int
group_setup(void **state)
{
	(void)state;
	if (testutil_mkdtemp(scratch, sizeof(scratch)) == -1)
		return -1;
	if (!pgserver_available())
		return 0;	/* each test skips */
	if (pgserver_start(&ps, 0) == -1)
		return -1;
	up = 1;
	return 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	if (up)
		pgserver_cleanup(&ps);
	up = 0;
	return testutil_rmrf(scratch);
}

/* "label: <64 hex>" in out: the hex, into h[65]. */
static void
find_hash(const char *label, char h[65])
{
	const char	*p = strstr(out, label);

	if (p == NULL || strlen(p + strlen(label)) < 64)
		fail_msg("no \"%s\" in:\n%s", label, out);
	memcpy(h, p + strlen(label), 64);
	h[64] = '\0';
}

static void
run_ok(const char *const *argv)
{
	int	rc;

	if ((rc = tools_run(out, sizeof(out), argv)) != 0)
		fail_msg("cpx-audit %s: exit %d:\n%s", argv[0], rc, out);
}

/* Every row's columns, in seq order, as one string (owned). */
static char *
rows_of(const char *dsn)
{
	PGconn		*c;
	PGresult	*r;
	char		*s;

	c = PQconnectdb(dsn);
	if (PQstatus(c) != CONNECTION_OK)
		fail_msg("connect: %s", PQerrorMessage(c));
	r = PQexec(c, "SELECT string_agg(concat_ws('|', seq, time, kind, "
	    "encode(prev_hash, 'hex'), encode(hash, 'hex'), "
	    "md5(record), alert_id, origin, encode(alert_sha256, 'hex'), "
	    "peer_country, peer_node, broker), E'\\n' ORDER BY seq) || "
	    "(SELECT concat_ws('|', seq, encode(hash, 'hex'), time) "
	    "FROM cpx_head) FROM cpx_records");
	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
		fail_msg("rows: %s", PQerrorMessage(c));
	s = strdup(PQgetvalue(r, 0, 0));
	assert_non_null(s);
	PQclear(r);
	PQfinish(c);
	return s;
}

static uint8_t *
slurp(const char *path, size_t *len)
{
	FILE	*fp;
	uint8_t	*b;
	long	 n;

	fp = fopen(path, "rb");
	if (fp == NULL)
		fail_msg("%s: cannot open", path);
	assert_int_equal(fseek(fp, 0, SEEK_END), 0);
	n = ftell(fp);
	rewind(fp);
	b = malloc((size_t)n + 1);
	assert_non_null(b);
	assert_int_equal(fread(b, 1, (size_t)n, fp), (size_t)n);
	fclose(fp);
	*len = (size_t)n;
	return b;
}

/*
 * Append to the log of dsn a record encoded as another encoder might:
 * valid protobuf, chained right, but with a field twice, so it does not
 * come out the same when packed again. Returns its seq.
 */
static uint64_t
append_foreign(const char *dsn)
{
	Cpx__AuditRecord	 rec = CPX__AUDIT_RECORD__INIT;
	EVP_MD_CTX		*md;
	PGconn			*c;
	PGresult		*r;
	uint8_t			 buf[256], prev[AUDIT_HASH_LEN];
	uint8_t			 hash[AUDIT_HASH_LEN];
	const char		*val[5];
	int			 len[5], fmt[5];
	char			 seqs[24], times[24];
	size_t			 n;
	uint64_t		 seq;
	long long		 t;

	c = PQconnectdb(dsn);
	if (PQstatus(c) != CONNECTION_OK)
		fail_msg("connect: %s", PQerrorMessage(c));
	r = PQexec(c, "SELECT seq, encode(hash, 'hex'), time FROM cpx_head");
	assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
	seq = strtoull(PQgetvalue(r, 0, 0), NULL, 10) + 1;
	for (n = 0; n < AUDIT_HASH_LEN; n++)
		assert_int_equal(sscanf(PQgetvalue(r, 0, 1) + 2 * n, "%2hhx",
		    &prev[n]), 1);
	t = strtoll(PQgetvalue(r, 0, 2), NULL, 10) + 1;
	PQclear(r);
	rec.seq = seq;
	rec.time = t;
	rec.kind = CPX__RECORD_KIND__RECORD_SESSION_OPENED;
	rec.peer_country = (char *)"SI";
	n = cpx__audit_record__pack(&rec, buf);
	/* peer_country (field 4) once more: the last one wins, same value. */
	memcpy(buf + n, "\x22\x02SI", 4);
	n += 4;
	md = EVP_MD_CTX_new();
	assert_non_null(md);
	assert_int_equal(EVP_DigestInit_ex(md, EVP_sha256(), NULL), 1);
	assert_int_equal(chain_hash_record(md, prev, seq, buf, (uint32_t)n,
	    hash), 0);
	EVP_MD_CTX_free(md);
	snprintf(seqs, sizeof(seqs), "%" PRIu64, seq);
	snprintf(times, sizeof(times), "%lld", t);
	val[0] = seqs;
	val[1] = times;
	val[2] = (const char *)prev;
	val[3] = (const char *)hash;
	val[4] = (const char *)buf;
	len[0] = len[1] = 0;
	len[2] = len[3] = (int)AUDIT_HASH_LEN;
	len[4] = (int)n;
	fmt[0] = fmt[1] = 0;
	fmt[2] = fmt[3] = fmt[4] = 1;
	r = PQexecParams(c, "INSERT INTO cpx_records (seq, time, kind, "
	    "prev_hash, hash, record, peer_country, broker) VALUES ($1, $2, "
	    "3, $3, $4, $5, 'SI', 'other')", 5, NULL, val, len, fmt, 0);
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		fail_msg("insert: %s", PQerrorMessage(c));
	PQclear(r);
	val[2] = val[3];
	r = PQexecParams(c, "UPDATE cpx_head SET seq = $1, time = $2, hash = "
	    "$3", 3, NULL, val, len, fmt, 0);
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		fail_msg("head: %s", PQerrorMessage(c));
	PQclear(r);
	PQfinish(c);
	return seq;
}

static void
test_pg_tools(void **state)
{
	const char	*ca;
	char		 ex1[600], ex2[600], dsn2[700];
	char		 seg1[700], seg2[700];
	char		 head[65], h[65];
	char		*rows1, *rows2;
	uint8_t		*b1, *b2;
	size_t		 l1, l2, lines;
	const char	*p;

	(void)state;
	if (!up)
		skip();
	ca = tools_pki(0, "ca.pem");

	/* The administrator creates the schema; a second run keeps it. */
	{
		const char *argv[] = { "init-db", "--dsn", ps.admin_dsn,
		    "--grant", "cpx_broker", NULL };

		run_ok(argv);
		assert_non_null(strstr(out, "schema: version 1 created"));
		assert_non_null(strstr(out, "granted to cpx_broker"));
		run_ok(argv);
		assert_non_null(strstr(out, "already there"));
	}

	/* Brokers A, B, A write the shared log with the rights granted. */
	tools_log_signed_by(NULL, ps.dsn, "broker", 10, "a");
	tools_log_signed_by(NULL, ps.dsn, "brokers/evil-broker", 7, "b");
	tools_log_signed_by(NULL, ps.dsn, "broker", 5, "c");

	{
		const char *argv[] = { "verify", "--dsn", ps.dsn, "--ca", ca,
		    NULL };

		run_ok(argv);
		assert_non_null(strstr(out, "records: 25\n"));
		assert_non_null(strstr(out, "alerts: 6\n"));
		assert_non_null(strstr(out, "checkpoints: 3 (2 by cpx-broker, "
		    "1 by not-the-broker)\n"));
		assert_non_null(strstr(out, "store: postgresql (host="));
		assert_null(strstr(out, "password"));
		find_hash("head: 25 committed, hash ", head);
		find_hash("last hash: ", h);
		assert_string_equal(h, head);
	}
	{
		const char *argv[] = { "verify", "--dsn", ps.dsn, "--ca", ca,
		    "--broker-cert", tools_pki(1, "broker.pem"), NULL };

		assert_int_equal(tools_run(out, sizeof(out), argv), 1);
		assert_non_null(strstr(out, "record 19: checkpoint signed by "
		    "CN=not-the-broker"));
	}
	{
		const char *argv[] = { "dump", "--dsn", ps.dsn, "--from-seq",
		    "3", NULL };

		run_ok(argv);
		for (lines = 0, p = out; (p = strchr(p, '\n')) != NULL; p++)
			lines++;
		assert_int_equal(lines, 23);
	}

	/* Export: the same log offline, same head, same checkpoints. */
	snprintf(ex1, sizeof(ex1), "%s/export1", scratch);
	{
		const char *argv[] = { "export", "--dsn", ps.dsn, "--out", ex1,
		    NULL };

		run_ok(argv);
		find_hash("head: seq 25, hash ", h);
		assert_string_equal(h, head);
		/* Into a directory that holds a log: refused. */
		assert_int_equal(tools_run(out, sizeof(out), argv), 1);
		assert_non_null(strstr(out, "is not empty"));
	}
	{
		const char *argv[] = { "verify", "--ca", ca, "--multi-broker",
		    ex1, NULL };

		run_ok(argv);
		find_hash("last hash: ", h);
		assert_string_equal(h, head);
		assert_non_null(strstr(out, "checkpoints: 3 (2 by cpx-broker, "
		    "1 by not-the-broker)\n"));
	}

	/* Import into an empty database: the same rows and head. */
	if (pgserver_sql(&ps, NULL, "CREATE DATABASE cpx2 OWNER cpx_admin",
	    NULL, 0) == -1)
		fail_msg("CREATE DATABASE");
	snprintf(dsn2, sizeof(dsn2), "%s dbname=cpx2", ps.admin_dsn);
	{
		const char *init[] = { "init-db", "--dsn", dsn2, NULL };
		const char *argv[] = { "import", "--dsn", dsn2, "--ca", ca,
		    "--multi-broker", "--batch", "10", ex1, NULL };

		run_ok(init);
		run_ok(argv);
		assert_non_null(strstr(out, "imported: 25 records in 3 "
		    "transaction(s)\n"));
		find_hash("database head: seq 25, hash ", h);
		assert_string_equal(h, head);
		/* Not twice: the database holds a log now. */
		assert_int_equal(tools_run(out, sizeof(out), argv), 1);
		assert_non_null(strstr(out, "not empty: its head is seq 25"));
	}
	rows1 = rows_of(ps.admin_dsn);
	rows2 = rows_of(dsn2);
	assert_string_equal(rows1, rows2);
	assert_non_null(strstr(rows1, "|not-the-broker\n"));
	free(rows1);
	free(rows2);
	{
		const char *argv[] = { "verify", "--dsn", dsn2, "--ca", ca,
		    NULL };

		run_ok(argv);
		find_hash("head: 25 committed, hash ", h);
		assert_string_equal(h, head);
	}
	/* Exported again: the same bytes. */
	snprintf(ex2, sizeof(ex2), "%s/export2", scratch);
	{
		const char *argv[] = { "export", "--dsn", dsn2, ex2, NULL };

		run_ok(argv);
	}
	snprintf(seg1, sizeof(seg1), "%s/seg-00000000000000000001.log", ex1);
	snprintf(seg2, sizeof(seg2), "%s/seg-00000000000000000001.log", ex2);
	b1 = slurp(seg1, &l1);
	b2 = slurp(seg2, &l2);
	assert_int_equal(l1, l2);
	assert_memory_equal(b1, b2, l1);
	free(b1);
	free(b2);

	/*
	 * A record another encoder wrote (valid, chained): export refuses
	 * to write a copy that would not chain, and names it.
	 */
	assert_int_equal(append_foreign(dsn2), 26);
	snprintf(ex2, sizeof(ex2), "%s/export4", scratch);
	{
		const char *argv[] = { "export", "--dsn", dsn2, ex2, NULL };

		assert_int_equal(tools_run(out, sizeof(out), argv), 1);
		if (strstr(out, "record 26: its bytes do not encode again "
		    "as stored") == NULL)
			fail_msg("record 26 not named:\n%s", out);
	}

	/* A record altered in the database: verify and export name it. */
	if (pgserver_sql(&ps, NULL, "UPDATE cpx_records SET record = "
	    "overlay(record placing '\\xff'::bytea from length(record) for 1) "
	    "WHERE seq = 7", NULL, 0) == -1)
		fail_msg("UPDATE");
	{
		const char *argv[] = { "verify", "--dsn", ps.dsn, "--ca", ca,
		    NULL };

		assert_int_equal(tools_run(out, sizeof(out), argv), 1);
		assert_non_null(strstr(out, "FAILED"));
		if (strstr(out, "record 7: chain hash mismatch") == NULL)
			fail_msg("seq 7 not named:\n%s", out);
	}
	snprintf(ex2, sizeof(ex2), "%s/export3", scratch);
	{
		const char *argv[] = { "export", "--dsn", ps.dsn, ex2, NULL };

		assert_int_equal(tools_run(out, sizeof(out), argv), 1);
		if (strstr(out, "record 7: chain hash mismatch") == NULL)
			fail_msg("seq 7 not named:\n%s", out);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pg_tools),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
