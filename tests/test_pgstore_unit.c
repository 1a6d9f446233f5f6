/*
 * test_pgstore_unit.c: details of the PostgreSQL store (broker/
 * audit_pg*.c) that the store-level test (test_pg_store.c) does not
 * look at, on a real PostgreSQL 15 server the test starts: the bytes a
 * commit stores are exactly what protobuf-c packs for the record (so an
 * export to segment files gives the same chain), a caller's time is
 * kept, a checkpoint built at commit covers the record before it,
 * cursors seek by time, the DSN's password is never described, and a
 * server restarted while the store was idle costs no failed commit.
 */
#include <inttypes.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "audit.h"
#include "pgserver.h"
#include "testbroker.h"
#include "testpki.h"
#include "testutil.h"

static struct pgserver	ps;
static int		up;
static EVP_PKEY		*key;
static X509		*cert;

static void
make_key(void)
{
	assert_int_equal(testpki_selfsigned(NULL, "broker-u", 3, &key, &cert),
	    0);
}

static int
group_setup(void **state)
{
	(void)state;
	if (!pgserver_available())
		return 0;
	/* --dev: the broker's role creates the schema itself. */
	if (pgserver_start(&ps, PGSERVER_DEV) == -1)
		return -1;
	up = 1;
	make_key();
	return 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	if (up)
		pgserver_cleanup(&ps);
	up = 0;
	EVP_PKEY_free(key);
	X509_free(cert);
	return 0;
}

static struct audit *
open_store(void)
{
	struct audit	*a;
	char		 err[1024];

	if (!up)
		skip();
	if ((a = audit_open_pg(ps.dsn, key, cert, 0, err, sizeof(err))) ==
	    NULL)
		fail_msg("audit_open_pg: %s", err);
	return a;
}

static void
append(struct audit *a, const char *text, int64_t time)
{
	Cpx__AuditRecord	rec = CPX__AUDIT_RECORD__INIT;
	uint64_t		seq = 1;

	rec.kind = CPX__RECORD_KIND__RECORD_SESSION_CLOSED;
	rec.peer_country = (char *)"SI";
	rec.peer_node = (char *)"si-ncp";
	rec.session_id = 12345678901ULL;
	rec.text = (char *)text;
	rec.time = time;
	assert_int_equal(audit_append(a, &rec, &seq), 0);
	assert_int_equal(seq, 0);
	/* The caller's record is left as it was. */
	assert_int_equal(rec.seq, 0);
	assert_int_equal(rec.time, time);
}

/* Commit through begin / poll / step; the batch's first seq. */
static uint64_t
commit(struct audit *a)
{
	struct pollfd	pfd;
	char		err[1024];
	int64_t		until = testutil_now_ms() + 20000;
	uint64_t	seq = 0;
	int64_t		t;
	int		rc;

	if (audit_commit_begin(a, err, sizeof(err)) == -1)
		fail_msg("begin: %s", err);
	while ((rc = audit_commit_step(a, err, sizeof(err))) == 0) {
		if (testutil_now_ms() > until)
			fail_msg("commit timed out");
		pfd.fd = audit_commit_fd(a, &pfd.events);
		pfd.revents = 0;
		if (pfd.fd != -1)
			(void)poll(&pfd, 1, 100);
	}
	if (rc != 1)
		fail_msg("commit: %s", err);
	if (audit_batch_count(a) > 0)
		assert_int_equal(audit_batch_outcome(a, 0, &seq, &t),
		    AUDIT_OUT_COMMITTED);
	return seq;
}

/*
 * Every stored record is byte for byte what protobuf-c packs for it: the
 * store builds seq and time in front of bytes packed without them, and
 * an export re-packs records into segment files.
 */
static void
test_bytes_as_packed(void **state)
{
	struct audit_cursor	*c;
	Cpx__AuditRecord	*rec;
	struct audit		*a;
	uint8_t			 buf[4096], leaf[32], h[32];
	char			 err[1024], text[300];
	uint32_t		 len;
	uint64_t		 first, n = 0;
	size_t			 plen;
	int			 rc, i;

	(void)state;
	a = open_store();
	memset(text, 'x', sizeof(text) - 1);
	text[sizeof(text) - 1] = '\0';
	append(a, "short", 0);
	append(a, text, 0);
	append(a, "caller's time", 1234567);	/* kept, as in the files */
	assert_int_equal(audit_checkpoint(a), 0);
	for (i = 0; i < 3; i++)
		append(a, "more", 0);
	first = commit(a);
	assert_true(first >= 1);
	c = audit_cursor_new(a, first, 0, err, sizeof(err));
	assert_non_null(c);
	while ((rc = audit_cursor_next_leaf(c, &rec, &len, leaf, err,
	    sizeof(err))) == 1) {
		plen = cpx__audit_record__get_packed_size(rec);
		assert_true(plen <= sizeof(buf));
		assert_int_equal(cpx__audit_record__pack(rec, buf), plen);
		assert_int_equal(plen, len);
		assert_int_equal(EVP_Digest(buf, plen, h, NULL, EVP_sha256(),
		    NULL), 1);
		assert_memory_equal(h, leaf, 32);
		if (rec->seq == first + 2)
			assert_int_equal(rec->time, 1234567);
		if (rec->seq == first + 3) {
			/* Built at commit: covers the record before it. */
			assert_int_equal(rec->kind,
			    CPX__RECORD_KIND__RECORD_CHECKPOINT);
			assert_int_equal(rec->checkpoint_seq, first + 2);
			assert_int_equal(rec->checkpoint_hash.len, 32);
		}
		n++;
		cpx__audit_record__free_unpacked(rec, NULL);
	}
	if (rc == -1)
		fail_msg("cursor: %s", err);
	assert_int_equal(n, 7);
	audit_cursor_free(&c);
	audit_close(&a);
	/* Opening again checks the chain and the checkpoint's signature. */
	a = open_store();
	audit_close(&a);
}

/* A cursor from a time starts at the first record of that time. */
static void
test_cursor_from_time(void **state)
{
	struct audit_cursor	*c;
	Cpx__AuditRecord	*rec;
	struct audit		*a;
	char			 err[1024];
	uint64_t		 first;
	int64_t			 t0;

	(void)state;
	a = open_store();
	/* Wall-clock ms, an hour on: later than any record so far. */
	t0 = (int64_t)time(NULL) * 1000 + 3600 * 1000;
	append(a, "t0", t0);
	append(a, "t0+10", t0 + 10);
	append(a, "t0+20", t0 + 20);
	first = commit(a);
	c = audit_cursor_new(a, 1, t0 + 5, err, sizeof(err));
	assert_non_null(c);
	assert_int_equal(audit_cursor_next(c, &rec, err, sizeof(err)), 1);
	assert_int_equal(rec->seq, first + 1);
	assert_string_equal(rec->text, "t0+10");
	cpx__audit_record__free_unpacked(rec, NULL);
	audit_cursor_free(&c);
	audit_close(&a);
}

/* Log lines name the database, never its password. */
static void
test_describe_hides_password(void **state)
{
	char	buf[256];

	(void)state;
	audit_pg_describe("host=db1,db2 port=5432 dbname=cpx user=cpx "
	    "password=s3cret target_session_attrs=read-write", buf,
	    sizeof(buf));
	assert_null(strstr(buf, "s3cret"));
	assert_non_null(strstr(buf, "host=db1,db2"));
	assert_non_null(strstr(buf, "dbname=cpx"));
	audit_pg_describe("postgresql://cpx:s3cret@db1/cpx", buf,
	    sizeof(buf));
	assert_null(strstr(buf, "s3cret"));
	audit_pg_describe("password='unterminated", buf, sizeof(buf));
	assert_null(strstr(buf, "unterminated"));
}

/*
 * The server restarts while the store has nothing to commit: the next
 * commit sees the connection closed before it sends, reconnects and
 * succeeds the first time; the LISTEN connection comes back by polling
 * audit_notify_fd and draining alone (no commit of its own: an idle
 * broker), and hears another broker again.
 */
static void
test_idle_restart(void **state)
{
	struct audit	*a, *b;
	struct pollfd	 pfd;
	uint64_t	 want, got;
	int64_t		 until;

	(void)state;
	a = open_store();
	b = open_store();
	append(a, "before", 0);
	(void)commit(a);
	assert_int_equal(pgserver_stop(&ps), 0);
	assert_int_equal(pgserver_restart(&ps), 0);
	/* Only b commits: a polls its notification fd and drains. */
	append(b, "from b", 0);
	want = commit(b);
	until = testutil_now_ms() + 15000;
	for (;;) {
		if (testutil_now_ms() > until)
			fail_msg("no notification after the restart");
		pfd.fd = audit_notify_fd(a);
		assert_true(pfd.fd != -1);
		pfd.events = POLLIN;
		pfd.revents = 0;
		if (poll(&pfd, 1, 500) <= 0)
			continue;
		if ((got = audit_notify_drain(a)) >= want)
			break;
		if (got > 0) {
			/* Listening again: a new commit of b is heard. */
			append(b, "from b", 0);
			want = commit(b);
		}
	}
	/* And a's first commit after the restart succeeds. */
	append(a, "after", 0);
	assert_true(commit(a) > want);
	audit_close(&b);
	audit_close(&a);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_describe_hides_password),
		cmocka_unit_test(test_bytes_as_packed),
		cmocka_unit_test(test_cursor_from_time),
		cmocka_unit_test(test_idle_restart),
	};

	if (getenv("CPX_TEST_FILTER") != NULL)
		cmocka_set_test_filter(getenv("CPX_TEST_FILTER"));
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
