/*
 * test_pg_store.c: the PostgreSQL store of the audit log (broker/
 * audit_pg*.c) through audit.h only, on a real PostgreSQL 15 server the
 * test starts (tests/util/pgserver.h, scripts/pg-cluster.sh). The schema
 * is created by the database's administrator (cpx_admin) and the broker's
 * role cpx_broker gets only the rights the design gives it, as in
 * production. Two stores opened in this process stand for two brokers
 * sharing one log: one chain, consecutive seqs (also when both commit at
 * the same moment and one waits for the other's lock), notifications,
 * duplicates recognised across them; a newer schema, a tampered row, the
 * broker role's missing rights to change the log, a server that goes
 * away and comes back, and a read-only opener are each met the way
 * audit.h says; and a cursor of a broker's loop never waits for the
 * database (a locked table, a connection killed under a query); the
 * one-round-trip commit on a head that moved is rolled back and made
 * the long way.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "audit.h"
#include "pgserver.h"
#include "testbroker.h"
#include "testpki.h"
#include "testutil.h"

/* What cpx-audit init-db --grant gives the broker's role: no more. */
#define GRANTS \
	"GRANT SELECT ON cpx_schema TO cpx_broker; " \
	"GRANT SELECT, INSERT ON cpx_records TO cpx_broker; " \
	"GRANT SELECT, UPDATE ON cpx_head TO cpx_broker;"

struct fx {
	struct pgserver	 ps;
	int		 up;
	EVP_PKEY	*key[2];
	X509		*cert[2];
};

static struct fx fx;

static void
make_key(EVP_PKEY **kp, X509 **xp, const char *cn)
{
	assert_int_equal(testpki_selfsigned("SI", cn, 7, kp, xp), 0);
}

static int
group_setup(void **state)
{
	(void)state;
	if (!pgserver_available())
		return 0;	/* each test skips */
	if (pgserver_start(&fx.ps, 0) == -1)
		return -1;
	fx.up = 1;
	return 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	if (fx.up)
		pgserver_cleanup(&fx.ps);
	fx.up = 0;
	return 0;
}

/* A fresh, empty schema, created as the administrator would. */
static int
setup(void **state)
{
	char sql[4096];

	(void)state;
	if (!fx.up)
		return 0;
	if (pgserver_sql(&fx.ps, NULL, "SET client_min_messages = "
	    "warning; DROP TABLE IF EXISTS cpx_records, cpx_head, cpx_schema",
	    NULL, 0) == -1)
		return -1;
	snprintf(sql, sizeof(sql), "%s %s", audit_pg_schema_sql(), GRANTS);
	if (pgserver_sql(&fx.ps, "cpx_admin", sql, NULL, 0) == -1)
		return -1;
	make_key(&fx.key[0], &fx.cert[0], "broker-a");
	make_key(&fx.key[1], &fx.cert[1], "broker-b");
	return 0;
}

static int
teardown(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < 2; i++) {
		EVP_PKEY_free(fx.key[i]);
		X509_free(fx.cert[i]);
		fx.key[i] = NULL;
		fx.cert[i] = NULL;
	}
	return 0;
}

static void
need_pg(void)
{
	if (!fx.up)
		skip();
}

/* Broker i's store (0: A, 1: B; -1: read-only). */
static struct audit *
open_store(int i)
{
	struct audit *a;
	char err[1024];

	a = audit_open_pg(fx.ps.dsn, i >= 0 ? fx.key[i] : NULL,
	    i >= 0 ? fx.cert[i] : NULL, 0, err, sizeof(err));
	if (a == NULL)
		fail_msg("audit_open_pg(%s): %s", fx.ps.dsn, err);
	return a;
}

/*
 * Append an accepted alert (origin, id) whose signed bytes carry summary
 * (same summary: same bytes). The signature is not the store's business.
 */
static void
append_alert(struct audit *a, const char *origin, const char *id,
    const char *summary)
{
	Cpx__Alert		 al = CPX__ALERT__INIT;
	Cpx__SignedAlert	 sa = CPX__SIGNED_ALERT__INIT;
	Cpx__AuditRecord	 rec = CPX__AUDIT_RECORD__INIT;
	uint8_t			 buf[1024], sig[8] = "sig";
	uint64_t		 seq = 99;

	al.id = (char *)id;
	al.origin = (char *)origin;
	al.issued_at = 1700000000000LL;
	al.category = CPX__CATEGORY__CATEGORY_VEHICLE;
	al.severity = CPX__SEVERITY__SEVERITY_LOW;
	al.handling = CPX__HANDLING__HANDLING_NETWORK;
	al.summary = (char *)summary;
	assert_true(cpx__alert__get_packed_size(&al) <= sizeof(buf));
	sa.alert.len = cpx__alert__pack(&al, buf);
	sa.alert.data = buf;
	sa.signature.data = sig;
	sa.signature.len = 3;
	rec.kind = CPX__RECORD_KIND__RECORD_ALERT_ACCEPTED;
	rec.peer_country = (char *)origin;
	rec.peer_node = (char *)"si-ncp";
	rec.session_id = 7;
	rec.alert = &sa;
	rec.alert_id = (char *)id;
	assert_int_equal(audit_append(a, &rec, &seq), 0);
	/* A shared store numbers a record only when it commits. */
	assert_int_equal(seq, 0);
}

static void
append_text(struct audit *a, const char *text)
{
	Cpx__AuditRecord	rec = CPX__AUDIT_RECORD__INIT;
	uint64_t		seq;

	rec.kind = CPX__RECORD_KIND__RECORD_SESSION_OPENED;
	rec.peer_country = (char *)"HR";
	rec.peer_node = (char *)"hr-ncp";
	rec.session_id = 8;
	rec.text = (char *)text;
	assert_int_equal(audit_append(a, &rec, &seq), 0);
}

/*
 * Commit through the event-loop API (begin, poll the fd, step) within
 * ms. Returns step's last answer (1, or -1 with err[]; 0: timed out).
 */
static int
commit_poll(struct audit *a, int ms, char *err, size_t errlen)
{
	struct pollfd pfd;
	int64_t until = testutil_now_ms() + ms;
	short events;
	int rc;

	if (audit_commit_begin(a, err, errlen) == -1)
		return -1;
	for (;;) {
		if ((rc = audit_commit_step(a, err, errlen)) != 0)
			return rc;
		if (testutil_now_ms() >= until)
			return 0;
		pfd.fd = audit_commit_fd(a, &events);
		pfd.events = events;
		pfd.revents = 0;
		if (pfd.fd != -1)
			(void)poll(&pfd, 1, 100);
	}
}

/* Commit; every append committed, numbered first, first+1, ... */
static void
commit_expect(struct audit *a, uint64_t first, size_t n)
{
	char err[1024];
	uint64_t seq;
	int64_t t;
	size_t i;
	int rc;

	if ((rc = commit_poll(a, 20000, err, sizeof(err))) != 1)
		fail_msg("commit: %d %s", rc, rc == 0 ? "timed out" : err);
	assert_int_equal(audit_batch_count(a), n);
	for (i = 0; i < n; i++) {
		assert_int_equal(audit_batch_outcome(a, i, &seq, &t),
		    AUDIT_OUT_COMMITTED);
		if (seq != first + i)
			fail_msg("append %zu committed as %" PRIu64 ", want %"
			    PRIu64, i, seq, first + i);
		assert_true(t > 0);
	}
}

/* Append i of a's last batch became outcome (audit.h), with seq. */
static void
expect_outcome(struct audit *a, size_t i, int outcome, uint64_t seq)
{
	uint64_t got;
	int64_t t;
	int rc;

	if ((rc = audit_batch_outcome(a, i, &got, &t)) != outcome ||
	    got != seq)
		fail_msg("append %zu: outcome %d seq %" PRIu64 ", want %d seq %"
		    PRIu64, i, rc, got, outcome, seq);
}

/*
 * Read the whole log through a cursor (it checks the chain as it reads):
 * the count; ids[i] gets record i+1's alert id ("" if none).
 */
static size_t
read_log(struct audit *a, char ids[][32], size_t max)
{
	struct audit_cursor *c;
	Cpx__AuditRecord *rec;
	char err[1024];
	size_t n = 0;
	int rc;

	c = audit_cursor_new(a, 1, 0, err, sizeof(err));
	if (c == NULL)
		fail_msg("cursor: %s", err);
	while ((rc = audit_cursor_next(c, &rec, err, sizeof(err))) == 1) {
		if (rec->seq != n + 1)
			fail_msg("cursor gave seq %" PRIu64 " after %zu",
			    rec->seq, n);
		if (n < max)
			snprintf(ids[n], sizeof(ids[n]), "%s",
			    rec->alert_id != NULL ? rec->alert_id : "");
		n++;
		cpx__audit_record__free_unpacked(rec, NULL);
	}
	if (rc == -1)
		fail_msg("cursor at %zu: %s", n + 1, err);
	audit_cursor_free(&c);
	return n;
}

/* Wait until a's notification fd is readable; the seq it announces. */
static uint64_t
wait_notify(struct audit *a, uint64_t want)
{
	struct pollfd pfd;
	int64_t until = testutil_now_ms() + 10000;
	uint64_t got = 0, s;

	while (got < want && testutil_now_ms() < until) {
		pfd.fd = audit_notify_fd(a);
		assert_true(pfd.fd >= 0);
		pfd.events = POLLIN;
		pfd.revents = 0;
		if (poll(&pfd, 1, 200) > 0 &&
		    (s = audit_notify_drain(a)) > got)
			got = s;
	}
	return got;
}

/*
 * Two brokers on one database, appending in turn: one chain, seqs
 * consecutive across them, each told of the other's commits by
 * notification, each record naming the broker that wrote it, and a
 * read-only opener verifies everything, both brokers' checkpoints
 * included.
 */
static void
test_two_stores_one_chain(void **state)
{
	struct audit_verify_opts vo;
	struct audit_verify_stats st;
	struct audit *s[2], *ro;
	struct audit_cursor *c;
	Cpx__AuditRecord *rec;
	char ids[64][32], id[32], err[1024];
	uint64_t next = 1;
	size_t r, k, n;

	(void)state;
	need_pg();
	s[0] = open_store(0);
	s[1] = open_store(1);
	assert_int_equal(audit_shared(s[0]), 1);
	assert_true(audit_notify_fd(s[0]) >= 0);
	for (r = 0; r < 6; r++) {
		struct audit *a = s[r % 2];

		for (k = 0; k < 3; k++) {
			snprintf(id, sizeof(id), "id-%zu-%zu", r, k);
			append_alert(a, "SI", id, id);
		}
		append_text(a, "session");
		commit_expect(a, next, 4);
		next += 4;
		/* The other broker hears of it: LISTEN/NOTIFY. */
		assert_int_equal(wait_notify(s[(r + 1) % 2], next - 1),
		    next - 1);
	}
	/* Each signs its own checkpoint into the shared log. */
	assert_int_equal(audit_checkpoint(s[0]), 0);
	commit_expect(s[0], next++, 1);
	assert_int_equal(audit_checkpoint(s[1]), 0);
	commit_expect(s[1], next++, 1);

	n = read_log(s[1], ids, 64);
	assert_int_equal(n, next - 1);
	for (r = 0; r < 6; r++)
		for (k = 0; k < 3; k++) {
			snprintf(id, sizeof(id), "id-%zu-%zu", r, k);
			assert_string_equal(ids[r * 4 + k], id);
		}
	/* Each record names the broker that wrote it (its CN). */
	if ((c = audit_cursor_new(s[0], 1, 0, err, sizeof(err))) == NULL)
		fail_msg("cursor: %s", err);
	for (k = 0; k < n; k++) {
		assert_int_equal(audit_cursor_next(c, &rec, err, sizeof(err)),
		    1);
		assert_string_equal(rec->broker, k < 24 ? (k / 4 % 2 == 0 ?
		    "broker-a" : "broker-b") : (k == 24 ? "broker-a" :
		    "broker-b"));
		cpx__audit_record__free_unpacked(rec, NULL);
	}
	audit_cursor_free(&c);
	audit_close(&s[0]);
	audit_close(&s[1]);

	/* Read-only: cursors and verify, no writing. */
	ro = open_store(-1);
	/* Closing may have sealed each broker's batch with a checkpoint. */
	assert_true(audit_last_seq(ro) >= n);
	assert_int_equal(read_log(ro, ids, 64), audit_last_seq(ro));
	memset(&vo, 0, sizeof(vo));
	vo.multi_broker = 1;
	memset(&st, 0, sizeof(st));
	if (audit_verify_store(ro, NULL, &vo, &st, err, sizeof(err)) == -1)
		fail_msg("verify: %s", err);
	assert_int_equal(st.records, audit_last_seq(ro));
	assert_true(st.checkpoints >= 2);
	assert_int_equal(st.nsigners, 2);
	assert_int_equal(st.alerts, 18);
	audit_close(&ro);
}

/*
 * Both brokers commit at the same moment, again and again: each begins
 * its commit before either finishes, so one waits on the head's row
 * lock while the other commits, and then must build on the head (and
 * the last record) the other just wrote. Every batch commits; the seqs
 * of the two interleave without gap or overlap; one chain.
 */
static void
test_concurrent_commits(void **state)
{
	struct audit *s[2];
	char err[2][1024], id[32], ids[256][32];
	uint64_t seq, seen[256];
	int64_t t, until;
	size_t r, k, i, total = 0;
	int rc[2];

	(void)state;
	need_pg();
	s[0] = open_store(0);
	s[1] = open_store(1);
	memset(seen, 0, sizeof(seen));
	for (r = 0; r < 20; r++) {
		for (k = 0; k < 2; k++) {
			for (i = 0; i < 3; i++) {
				snprintf(id, sizeof(id), "c-%zu-%zu-%zu", r, k,
				    i);
				append_alert(s[k], k ? "HR" : "SI", id, id);
			}
			if (audit_commit_begin(s[k], err[k],
			    sizeof(err[k])) == -1)
				fail_msg("begin %zu: %s", k, err[k]);
		}
		rc[0] = rc[1] = 0;
		until = testutil_now_ms() + 20000;
		while ((rc[0] == 0 || rc[1] == 0) &&
		    testutil_now_ms() < until) {
			struct pollfd pfd[2];
			short ev;

			for (k = 0; k < 2; k++) {
				if (rc[k] == 0)
					rc[k] = audit_commit_step(s[k], err[k],
					    sizeof(err[k]));
				pfd[k].fd = rc[k] == 0 ?
				    audit_commit_fd(s[k], &ev) : -1;
				pfd[k].events = pfd[k].fd != -1 ? ev : 0;
				pfd[k].revents = 0;
			}
			(void)poll(pfd, 2, 50);
		}
		for (k = 0; k < 2; k++) {
			if (rc[k] != 1)
				fail_msg("round %zu: broker %c's commit: %d %s",
				    r, k ? 'B' : 'A', rc[k],
				    rc[k] == -1 ? err[k] : "timed out");
			assert_int_equal(audit_batch_count(s[k]), 3);
			for (i = 0; i < 3; i++) {
				assert_int_equal(audit_batch_outcome(s[k], i,
				    &seq, &t), AUDIT_OUT_COMMITTED);
				assert_true(seq >= 1 && seq <= 120);
				assert_int_equal(seen[seq], 0);
				seen[seq] = 1;
			}
			total += 3;
		}
	}
	for (i = 1; i <= total; i++)
		if (seen[i] != 1)
			fail_msg("seq %zu was never given", i);
	assert_int_equal(read_log(s[0], ids, 256), total);
	audit_close(&s[0]);
	audit_close(&s[1]);
}

/*
 * The same (origin, alert id) from the other broker: the same bytes are
 * acknowledged again with the original seq, different bytes are
 * refused naming it; neither is written. Within one batch alike.
 */
static void
test_duplicate_across_stores(void **state)
{
	struct audit *a, *b;
	char err[1024], out[256];
	int rc;

	(void)state;
	need_pg();
	a = open_store(0);
	b = open_store(1);
	append_alert(a, "SI", "dup-1", "the first");
	append_alert(a, "SI", "dup-2", "the second");
	commit_expect(a, 1, 2);

	append_alert(b, "SI", "dup-1", "the first");	/* same bytes */
	append_alert(b, "SI", "dup-2", "other bytes");	/* different */
	append_alert(b, "HR", "dup-1", "the first");	/* other origin */
	append_alert(b, "SI", "dup-3", "new");
	append_alert(b, "SI", "dup-3", "new");		/* in the batch */
	if ((rc = commit_poll(b, 20000, err, sizeof(err))) != 1)
		fail_msg("commit: %d %s", rc, err);
	assert_int_equal(audit_batch_count(b), 5);
	expect_outcome(b, 0, AUDIT_OUT_DUP_SAME, 1);
	expect_outcome(b, 1, AUDIT_OUT_DUP_DIFFERENT, 2);
	expect_outcome(b, 2, AUDIT_OUT_COMMITTED, 3);
	expect_outcome(b, 3, AUDIT_OUT_COMMITTED, 4);
	expect_outcome(b, 4, AUDIT_OUT_DUP_SAME, 4);
	/* Nothing more was written: four accepted alerts, once each. */
	assert_int_equal(pgserver_sql(&fx.ps, NULL, "SELECT count(*), "
	    "count(DISTINCT (origin, alert_id)), max(seq) FROM cpx_records "
	    "WHERE kind = 1", out, sizeof(out)), 0);
	assert_string_equal(out, "4|4|4");
	/* And A, whose table never saw B's, is told the same. */
	append_alert(a, "SI", "dup-3", "new");
	append_alert(a, "SI", "dup-4", "fresh");
	if ((rc = commit_poll(a, 20000, err, sizeof(err))) != 1)
		fail_msg("commit: %d %s", rc, err);
	expect_outcome(a, 0, AUDIT_OUT_DUP_SAME, 4);
	expect_outcome(a, 1, AUDIT_OUT_COMMITTED, 5);
	audit_close(&a);
	audit_close(&b);
}

/* A schema newer than this cpx is refused, naming both versions. */
static void
test_newer_schema_refused(void **state)
{
	struct audit *a;
	char err[1024];

	(void)state;
	need_pg();
	assert_int_equal(pgserver_sql(&fx.ps, "cpx_admin",
	    "UPDATE cpx_schema SET version = 2", NULL, 0), 0);
	a = audit_open_pg(fx.ps.dsn, fx.key[0], fx.cert[0], 0, err,
	    sizeof(err));
	assert_null(a);
	if (strstr(err, "version 2") == NULL || strstr(err, "1") == NULL ||
	    strstr(err, "newer") == NULL)
		fail_msg("newer schema: %s", err);
	/* Read-only (cpx-audit) alike. */
	a = audit_open_pg(fx.ps.dsn, NULL, NULL, 0, err, sizeof(err));
	assert_null(a);
	assert_non_null(strstr(err, "version 2"));
	/* No schema and no right to create one: says what to run. */
	assert_int_equal(pgserver_sql(&fx.ps, NULL, "DROP TABLE cpx_records, "
	    "cpx_head, cpx_schema", NULL, 0), 0);
	a = audit_open_pg(fx.ps.dsn, fx.key[0], fx.cert[0], 0, err,
	    sizeof(err));
	assert_null(a);
	if (strstr(err, "init-db") == NULL)
		fail_msg("no schema: %s", err);
}

/*
 * The log is append-only by the database's own rights: the broker's role
 * can neither change nor remove a record. An administrator can, and a
 * record changed behind the store's back is found at open, by seq; the
 * password never appears in a message.
 */
static void
test_tampered_row_refused(void **state)
{
	struct audit *a;
	char err[1024], id[32], pw[256], *t, *nl;
	size_t i;

	(void)state;
	need_pg();
	a = open_store(0);
	for (i = 0; i < 5; i++) {
		snprintf(id, sizeof(id), "t-%zu", i);
		append_alert(a, "SI", id, id);
	}
	commit_expect(a, 1, 5);
	audit_close(&a);

	assert_int_equal(pgserver_sql(&fx.ps, "cpx_broker",
	    "UPDATE cpx_records SET time = time + 1 WHERE seq = 3", NULL, 0),
	    -1);
	assert_int_equal(pgserver_sql(&fx.ps, "cpx_broker",
	    "DELETE FROM cpx_records WHERE seq = 5", NULL, 0), -1);
	assert_int_equal(pgserver_sql(&fx.ps, "cpx_broker",
	    "TRUNCATE cpx_records", NULL, 0), -1);
	a = open_store(0);
	audit_close(&a);

	/* One bit of record 3's stored bytes flipped, by the owner. */
	assert_int_equal(pgserver_sql(&fx.ps, "cpx_admin",
	    "UPDATE cpx_records SET record = set_byte(record, "
	    "length(record) - 2, get_byte(record, length(record) - 2) # 1) "
	    "WHERE seq = 3", NULL, 0), 0);
	a = audit_open_pg(fx.ps.dsn, fx.key[0], fx.cert[0], 0, err,
	    sizeof(err));
	assert_null(a);
	if (strstr(err, "record 3") == NULL)
		fail_msg("tampered record 3: %s", err);
	/* The broker's password is in pgpass; no message may show it. */
	assert_non_null(t = testutil_read_text(fx.ps.pgpass));
	assert_non_null(strstr(t, "cpx_broker:"));
	snprintf(pw, sizeof(pw), "%s", strstr(t, "cpx_broker:") +
	    strlen("cpx_broker:"));
	if ((nl = strchr(pw, '\n')) != NULL)
		*nl = '\0';
	free(t);
	assert_true(strlen(pw) >= 16);
	assert_null(strstr(err, pw));
}

/*
 * The server goes away: a commit fails (nothing on record, its seqs
 * unused) in bounded time; the store reconnects by itself once the
 * server is back, and the next commit takes the next seq.
 */
static void
test_server_gone_and_back(void **state)
{
	struct audit *a;
	char err[1024], ids[8][32];
	int64_t t0;
	int rc, fails = 0;

	(void)state;
	need_pg();
	a = open_store(0);
	append_alert(a, "SI", "g-1", "before");
	commit_expect(a, 1, 1);

	assert_int_equal(pgserver_stop(&fx.ps), 0);
	append_alert(a, "SI", "g-2", "while down");
	t0 = testutil_now_ms();
	rc = commit_poll(a, 30000, err, sizeof(err));
	if (rc != -1)
		fail_msg("commit with the server down: %d", rc);
	if (testutil_now_ms() - t0 > 15000)
		fail_msg("the failed commit took %" PRId64 " ms",
		    testutil_now_ms() - t0);
	if (strstr(err, "postgresql") == NULL)
		fail_msg("commit error does not name the store: %s", err);
	print_message("commit with the server down: %s\n", err);
	assert_int_equal(audit_pending(a), 0);
	/* Again, now that the store knows: refused at once, not hung. */
	append_alert(a, "SI", "g-2", "while down");
	t0 = testutil_now_ms();
	rc = commit_poll(a, 30000, err, sizeof(err));
	if (rc != -1 || testutil_now_ms() - t0 > 15000)
		fail_msg("second commit with the server down: %d after %"
		    PRId64 " ms", rc, testutil_now_ms() - t0);
	if (strstr(err, "unreachable") == NULL)
		fail_msg("second commit: not said unreachable: %s", err);
	print_message("again: %s (%" PRId64 " ms)\n", err,
	    testutil_now_ms() - t0);
	assert_int_equal(audit_pending(a), 0);

	assert_int_equal(pgserver_restart(&fx.ps), 0);
	/* Back: the store reconnects by itself (with backoff). */
	t0 = testutil_now_ms();
	for (;;) {
		append_alert(a, "SI", "g-3", "after");
		rc = commit_poll(a, 20000, err, sizeof(err));
		if (rc == 1)
			break;
		fails++;
		if (testutil_now_ms() - t0 > 20000)
			fail_msg("no commit 20 s after the server came back: "
			    "%s", err);
		(void)poll(NULL, 0, 200);	/* the store's backoff */
	}
	expect_outcome(a, 0, AUDIT_OUT_COMMITTED, 2);
	print_message("server back: committed after %d failed attempt(s), "
	    "%" PRId64 " ms\n", fails, testutil_now_ms() - t0);
	assert_int_equal(read_log(a, ids, 8), 2);
	assert_string_equal(ids[1], "g-3");
	audit_close(&a);
}

/* key NULL: read-only. Cursors read; nothing can be written. */
static void
test_read_only(void **state)
{
	struct audit *a, *ro;
	Cpx__AuditRecord rec = CPX__AUDIT_RECORD__INIT;
	char err[1024], ids[8][32];
	uint64_t seq;
	int rc;

	(void)state;
	need_pg();
	a = open_store(0);
	append_alert(a, "SI", "r-1", "one");
	append_alert(a, "SI", "r-2", "two");
	commit_expect(a, 1, 2);
	ro = open_store(-1);
	assert_int_equal(audit_last_seq(ro), 2);
	assert_int_equal(read_log(ro, ids, 8), 2);
	assert_string_equal(ids[0], "r-1");
	rec.kind = CPX__RECORD_KIND__RECORD_SESSION_OPENED;
	rec.text = (char *)"no";
	rc = audit_append(ro, &rec, &seq);
	if (rc == 0)
		assert_int_equal(audit_commit(ro, err, sizeof(err)), -1);
	assert_int_equal(audit_checkpoint(ro), -1);
	/* A's later commit is seen by the same read-only cursor path. */
	append_alert(a, "SI", "r-3", "three");
	commit_expect(a, 3, 1);
	assert_int_equal(read_log(ro, ids, 8), 3);
	audit_close(&ro);
	audit_close(&a);
}

/*
 * The one-round-trip commit when the head moved. B commits twice (its
 * statements prepared, the head its own), then A commits twice without
 * B hearing of it: B's next commit, numbered on the head it knew, is
 * rolled back by the guard and made the long way, with the right seq.
 * Later B sends again an alert it committed itself (a resend after a
 * lost answer): the guard passes, the unique index stops the INSERT,
 * and the long way answers it as a repeat with its seq. One chain,
 * nothing written twice.
 */
static void
test_stale_head(void **state)
{
	struct audit_verify_opts vo;
	struct audit_verify_stats st;
	struct audit *a, *b;
	char err[1024], out[64];
	uint64_t next;
	int rc;

	(void)state;
	need_pg();
	a = open_store(0);
	b = open_store(1);
	append_text(b, "b one");
	commit_expect(b, 1, 1);
	append_text(b, "b two");
	commit_expect(b, 2, 1);
	append_text(a, "a one");
	commit_expect(a, 3, 1);
	append_text(a, "a two");
	commit_expect(a, 4, 1);
	append_text(b, "b on a stale head");
	commit_expect(b, 5, 1);
	/* The long way for a while after a miss; then the short one. */
	for (next = 6; next < 16; next++) {
		append_text(b, "b again");
		commit_expect(b, next, 1);
	}
	append_alert(b, "SI", "stale-1", "sent twice");
	commit_expect(b, next, 1);
	append_alert(b, "SI", "stale-1", "sent twice");
	append_text(b, "with it");
	if ((rc = commit_poll(b, 20000, err, sizeof(err))) != 1)
		fail_msg("commit: %d %s", rc, err);
	expect_outcome(b, 0, AUDIT_OUT_DUP_SAME, next);
	expect_outcome(b, 1, AUDIT_OUT_COMMITTED, next + 1);
	assert_int_equal(pgserver_sql(&fx.ps, NULL, "SELECT count(*), "
	    "max(seq) FROM cpx_records", out, sizeof(out)), 0);
	snprintf(err, sizeof(err), "%" PRIu64 "|%" PRIu64, next + 1,
	    next + 1);
	assert_string_equal(out, err);
	memset(&vo, 0, sizeof(vo));
	vo.multi_broker = 1;
	memset(&st, 0, sizeof(st));
	audit_close(&a);
	audit_close(&b);
	a = open_store(-1);
	if (audit_verify_store(a, NULL, &vo, &st, err, sizeof(err)) == -1)
		fail_msg("verify: %s", err);
	assert_true(st.records >= next + 1);	/* closing may checkpoint */
	audit_close(&a);
}

/*
 * One step of a loop that reads c without waiting: the next answer of
 * the cursor, after polling the store's read fd for up to 50 ms.
 */
static int
next_async(struct audit *a, struct audit_cursor *c, Cpx__AuditRecord **rec,
    char *err, size_t errlen)
{
	struct pollfd pfd;
	int64_t t0 = testutil_now_ms();
	int rc;

	rc = audit_cursor_next(c, rec, err, errlen);
	/* Whatever it answers, it answers at once. */
	if (testutil_now_ms() - t0 > 200)
		fail_msg("a cursor read took %" PRId64 " ms",
		    testutil_now_ms() - t0);
	if (rc != AUDIT_CURSOR_WAIT)
		return rc;
	pfd.fd = audit_read_fd(a, &pfd.events);
	pfd.revents = 0;
	(void)poll(&pfd, pfd.fd == -1 ? 0 : 1, 50);
	audit_read_step(a);
	return rc;
}

/* Read c from seq 1 to its end within 10 s; the count (chain checked). */
static uint64_t
drain_async(struct audit *a, struct audit_cursor *c)
{
	Cpx__AuditRecord *rec;
	int64_t until = testutil_now_ms() + 10000;
	uint64_t n = 0;
	char err[1024];
	int rc;

	while (testutil_now_ms() < until) {
		rc = next_async(a, c, &rec, err, sizeof(err));
		if (rc == -1)
			fail_msg("cursor at seq %" PRIu64 ": %s", n + 1, err);
		if (rc == 0)
			return n;
		if (rc == 1) {
			if (rec->seq != n + 1)
				fail_msg("cursor gave seq %" PRIu64 " after %"
				    PRIu64, rec->seq, n);
			n++;
			cpx__audit_record__free_unpacked(rec, NULL);
		}
	}
	fail_msg("the cursor did not reach the end in 10 s (at %" PRIu64
	    ")", n);
	return n;
}

/* Keep reading c for ms: every answer must be "wait". */
static void
still_waiting(struct audit *a, struct audit_cursor *c, int64_t ms)
{
	Cpx__AuditRecord *rec = NULL;
	int64_t until = testutil_now_ms() + ms;
	char err[1024];
	int rc;

	while (testutil_now_ms() < until)
		if ((rc = next_async(a, c, &rec, err, sizeof(err))) !=
		    AUDIT_CURSOR_WAIT)
			fail_msg("cursor answered %d (%s) while the table is "
			    "locked", rc, rc == -1 ? err : "");
}

/*
 * The loop's reads (audit_read_async): with the records table locked, a
 * cursor answers "wait" at once, for as long as the lock lasts, and its
 * pages (two of them) come when it goes. A cursor connection killed
 * under its query is opened again and the page asked again: the reader
 * sees a wait, never an error. Without audit_read_async the same cursor
 * waits for its page (tools).
 */
static void
test_async_cursor(void **state)
{
	struct audit *a;
	struct audit_cursor *c;
	struct pg_conn *adm;
	char err[1024], out[64];
	size_t i;

	(void)state;
	need_pg();
	a = open_store(0);
	for (i = 0; i < 700; i++)
		append_text(a, "paged");
	commit_expect(a, 1, 700);
	/* Tools: the cursor waits and gives every record. */
	assert_int_equal(read_log(a, NULL, 0), 700);
	audit_read_async(a);

	assert_non_null(adm = pgserver_lock(&fx.ps, "cpx_records"));
	if ((c = audit_cursor_new(a, 1, 0, err, sizeof(err))) == NULL)
		fail_msg("cursor: %s", err);
	still_waiting(a, c, 600);
	assert_int_equal(pgserver_unlock(&adm), 0);
	assert_int_equal(drain_async(a, c), 700);
	audit_cursor_free(&c);

	/* Its query waits on the lock; its connection is killed. */
	assert_non_null(adm = pgserver_lock(&fx.ps, "cpx_records"));
	if ((c = audit_cursor_new(a, 1, 0, err, sizeof(err))) == NULL)
		fail_msg("cursor: %s", err);
	still_waiting(a, c, 300);
	assert_int_equal(pgserver_sql(&fx.ps, NULL, "SELECT count("
	    "pg_terminate_backend(pid)) FROM pg_stat_activity WHERE query "
	    "LIKE 'SELECT seq, time, kind, prev_hash%' AND state = 'active'",
	    out, sizeof(out)), 0);
	if (strncmp(out, "1", 1) != 0)
		fail_msg("the cursor's query was not found waiting: %s", out);
	still_waiting(a, c, 300);
	assert_int_equal(pgserver_unlock(&adm), 0);
	assert_int_equal(drain_async(a, c), 700);

	/* A freed cursor's page in flight is dropped, not handed on. */
	assert_non_null(adm = pgserver_lock(&fx.ps, "cpx_records"));
	still_waiting(a, c, 100);
	audit_cursor_free(&c);
	if ((c = audit_cursor_new(a, 650, 0, err, sizeof(err))) == NULL)
		fail_msg("cursor: %s", err);
	assert_int_equal(pgserver_unlock(&adm), 0);
	{
		Cpx__AuditRecord *rec;
		int rc;

		while ((rc = next_async(a, c, &rec, err, sizeof(err))) ==
		    AUDIT_CURSOR_WAIT)
			;
		if (rc != 1)
			fail_msg("cursor from 650: %d %s", rc, err);
		assert_int_equal(rec->seq, 650);
		cpx__audit_record__free_unpacked(rec, NULL);
	}
	audit_cursor_free(&c);
	audit_close(&a);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_two_stores_one_chain,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_commits,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_duplicate_across_stores,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_newer_schema_refused,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_tampered_row_refused,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_server_gone_and_back,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_only,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_async_cursor,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_stale_head,
		    setup, teardown),
	};

	if (getenv("CPX_TEST_FILTER") != NULL)
		cmocka_set_test_filter(getenv("CPX_TEST_FILTER"));
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
