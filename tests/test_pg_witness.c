/*
 * test_pg_witness.c: witnesses (docs/witness.md) against two cpx-broker
 * processes sharing one PostgreSQL log (docs/postgresql.md), on a real
 * PostgreSQL 15 server the test starts itself (tests/util/pgserver.h),
 * real brokers (tests/util/testbroker.h) and the real witness round of
 * libcpx (cpx_witness_round), as test_witness.c drives it against the
 * segment files.
 *
 * On PostgreSQL every page a cursor reads is a round trip, and the
 * broker reads without blocking its loop: a witness answer that needs a
 * page waits for it over loop turns (broker/witness_read.c). Here:
 * records are published through both brokers, and a third writer puts
 * more than COSIGN_MAX_LEAVES records in the log (what a busy network
 * writes), so a witness far behind gets its leaves in several answers,
 * each many pages of the store. The witness cosigns A's checkpoint, moves
 * to B and gets a checkpoint consistent with A's (no false truncation:
 * B's newest covers what A signed), and the cosignatures are served to
 * second witnesses on both brokers. With the database stopped (SIGSTOP)
 * under a witness answer, A's loop sleeps while the answer waits for its
 * page, rather than spinning, and the answer comes whole once the
 * database goes on; a witness that leaves meanwhile takes its answer
 * with it. cpx-audit verify --dsn then finds the cosignatures
 * in the log, and both brokers exit cleanly (status 0: no leak under
 * LeakSanitizer).
 */
#include <sys/wait.h>

#include <ctype.h>
#include <dirent.h>
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "audit.h"
#include "cliproc.h"
#include "cosign.h"
#include "cpx_client.h"
#include "pgserver.h"
#include "testbroker.h"
#include "testlog.h"
#include "testpki.h"
#include "testutil.h"
#include "tlsctx.h"
#include "witness_int.h"

/* More than one answer of leaves, and many pages of the store each. */
#define BULK_RECORDS	(COSIGN_MAX_LEAVES + 1000u)
#define MAX_KIDS	4

static const char policy[] =
    "[defaults]\n"
    "rights = publish subscribe\n"
    "[node hr-ncp]\ncountry = HR\nrights = subscribe witness\n"
    "[node rs-ncp]\ncountry = RS\nrights = subscribe witness\n"
    "[node at-ncp]\ncountry = AT\nrights = subscribe witness\n";

/* What a test started, so that teardown ends it even after a failure. */
static char dir[256];
static struct pgserver ps;
static int pg_up;
static struct testbroker tbs[2];
static pid_t kids[MAX_KIDS];
static int frozen;		/* the primary is stopped (SIGSTOP) */

/* Run cpx-audit with args; its exit status, stdout in name.out. */
static int
audit_tool(const char *name, const char *const *args)
{
	char exe[512], out[300], err[300];
	int rc;

	snprintf(out, sizeof(out), "%s/%s.out", dir, name);
	snprintf(err, sizeof(err), "%s/%s.err", dir, name);
	rc = cliproc_wait(cliproc_spawn(cliproc_exe(exe, sizeof(exe),
	    "broker/cpx-audit"), out, err, NULL, args, kids, MAX_KIDS), 60000,
	    kids, MAX_KIDS);
	if (rc != 0) {
		cliproc_show("cpx-audit stdout", out);
		cliproc_show("cpx-audit stderr", err);
	}
	return rc;
}

/* Broker tbs[i] on the database, its password from store_passfile. */
static void
start_broker(int i)
{
	char extra[1200];

	assert_int_equal(pgserver_broker_config(&ps, extra, sizeof(extra)),
	    0);
	if (testbroker_start(&tbs[i], extra, policy) != 0)
		fail_msg("broker %d on %s did not start", i, ps.dsn);
}

/* Stop a broker cleanly: status 0 (drained; no leak under LSan). */
static void
stop_broker(int i)
{
	if (testbroker_stop_clean(&tbs[i]) == -1)
		fail_msg("broker %d did not exit cleanly", i);
}

static void
publish_some(struct testbroker *tb, const char *node, int n)
{
	struct cpx_client *c;
	struct testalert ta;
	struct cpx_result res;
	char err[256];
	int i;

	if ((c = testbroker_connect(tb, node, 0, err, sizeof(err))) == NULL)
		fail_msg("%s: %s", node, err);
	for (i = 0; i < n; i++) {
		testalert_init(&ta, NULL, CPX__CATEGORY__CATEGORY_CROSSING,
		    CPX__SEVERITY__SEVERITY_HIGH,
		    CPX__HANDLING__HANDLING_NETWORK, "", "witnessed crossing");
		if (cpx_publish(c, &ta.alert, 10000, &res) == -1)
			fail_msg("%s: publish: %s", node, res.text);
	}
	cpx_client_free(&c);
}

/* One library round of node against tb. Returns the outcome. */
static int
round_of(struct testbroker *tb, const char *node, const char *name,
    struct cpx_witness_result *res)
{
	struct cpx_client *c;
	char err[256], state[300];
	int64_t t0 = testutil_now_ms();

	snprintf(state, sizeof(state), "%s/%s.state", dir, name);
	if ((c = testbroker_connect(tb, node, 0, err, sizeof(err))) == NULL)
		fail_msg("%s: %s", node, err);
	if (cpx_witness_round(c, state, 20000, res) == -1)
		fprintf(stderr, "%s: round failed: %s\n", node, res->text);
	cpx_client_free(&c);
	fprintf(stderr, "%s on %s: outcome %d, checkpoint seq %" PRIu64
	    ", %" PRIu64 " leaves, %" PRIu64 " other cosignature(s): %"
	    PRId64 " ms\n", node, tb->endpoint, res->outcome, res->seen_seq,
	    res->leaves, res->peers_checked, testutil_now_ms() - t0);
	if (res->outcome == CPX_WITNESS_ALARM)
		fprintf(stderr, "%s: ALARM %s: %s\n", node, res->alarm,
		    res->text);
	return res->outcome;
}

/*
 * Send sig (SIGSTOP, SIGCONT) to the primary's postmaster and every
 * process it forked: stopped, the database takes queries and answers
 * none until it continues.
 */
static void
pg_signal(int sig)
{
	char path[600], line[512], *p;
	struct dirent *de;
	FILE *f;
	DIR *d;
	long pm = 0, ppid;

	snprintf(path, sizeof(path), "%s/primary/postmaster.pid", ps.dir);
	assert_non_null(f = fopen(path, "r"));
	assert_non_null(fgets(line, sizeof(line), f));
	fclose(f);
	assert_true((pm = atol(line)) > 0);
	if (sig == SIGSTOP) {
		frozen = 1;
		assert_int_equal(kill((pid_t)pm, sig), 0);
	}
	assert_non_null(d = opendir("/proc"));
	while ((de = readdir(d)) != NULL) {
		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", de->d_name);
		if ((f = fopen(path, "r")) == NULL)
			continue;	/* gone meanwhile */
		p = fgets(line, sizeof(line), f);
		fclose(f);
		/* "pid (comm) state ppid": comm may hold anything. */
		if (p == NULL || (p = strrchr(line, ')')) == NULL ||
		    sscanf(p + 1, " %*c %ld", &ppid) != 1 || ppid != pm)
			continue;
		(void)kill((pid_t)atol(de->d_name), sig);
	}
	closedir(d);
	if (sig != SIGSTOP) {
		assert_int_equal(kill((pid_t)pm, sig), 0);
		frozen = 0;
	}
}

/* Times the main thread of pid (a broker's loop) went to sleep. */
static long
loop_sleeps(pid_t pid)
{
	char path[64], line[256];
	FILE *f;
	long n = -1;

	snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
	assert_non_null(f = fopen(path, "r"));
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "voluntary_ctxt_switches: %ld", &n) == 1)
			break;
	fclose(f);
	assert_true(n >= 0);
	return n;
}

/* A raw witness exchange on a thread of its own (the test measures). */
struct call {
	struct cpx_client	*c;
	Cpx__Envelope		*req;
	Cpx__Envelope		*reply;
	int			 rc;
	volatile int		 done;
	char			 err[256];
};

static void *
call_run(void *arg)
{
	struct call *k = arg;
	uint64_t rid;

	k->rc = client_witness_call(k->c, k->req, &rid, 20000, &k->reply,
	    k->err, sizeof(k->err));
	__atomic_store_n(&k->done, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

/*
 * The database stopped while A reads a page for a witness: the answer
 * waits, the loop sleeps meanwhile (it does not spin on it: the read
 * fd wakes it), and once the database goes on, the answer comes whole.
 * ckpt_seq: a checkpoint of A's, record ckpt_seq + 1.
 */
static void
waits_without_spinning(uint64_t ckpt_seq)
{
	Cpx__Envelope env = CPX__ENVELOPE__INIT;
	Cpx__WitnessRequest rq = CPX__WITNESS_REQUEST__INIT;
	Cpx__WitnessCheckpoint *wc;
	struct call k;
	pthread_t th;
	long before, sleeps;
	char err[256];

	memset(&k, 0, sizeof(k));
	if ((k.c = testbroker_connect(&tbs[0], "rs-ncp", 0, err,
	    sizeof(err))) == NULL)
		fail_msg("rs-ncp: %s", err);
	/* A named checkpoint: nothing to append, only pages to read. */
	rq.checkpoint_record = ckpt_seq + 1;
	rq.have_seq = 0;
	env.body_case = CPX__ENVELOPE__BODY_WITNESS_REQUEST;
	env.witness_request = &rq;
	k.req = &env;
	pg_signal(SIGSTOP);
	before = loop_sleeps(tbs[0].pid);
	assert_int_equal(pthread_create(&th, NULL, call_run, &k), 0);
	usleep(1000000);	/* a measuring interval, not a wait */
	sleeps = loop_sleeps(tbs[0].pid) - before;
	assert_false(__atomic_load_n(&k.done, __ATOMIC_SEQ_CST));
	pg_signal(SIGCONT);
	assert_int_equal(pthread_join(th, NULL), 0);
	fprintf(stderr, "broker A's loop slept %ld times in the second its "
	    "witness answer waited for the database\n", sleeps);
	/* 10 a second (its 100 ms timeout) and the request; spinning: 1000. */
	assert_true(sleeps < 100);
	if (k.rc == -1)
		fail_msg("witness request: %s", k.err);
	if (k.reply->body_case != CPX__ENVELOPE__BODY_WITNESS_CHECKPOINT)
		fail_msg("answer kind %d, not a WitnessCheckpoint (%s)",
		    k.reply->body_case, k.reply->body_case ==
		    CPX__ENVELOPE__BODY_ERROR ? k.reply->error->text : "");
	wc = k.reply->witness_checkpoint;
	assert_int_equal(wc->checkpoint->seq, ckpt_seq + 1);
	assert_int_equal(wc->checkpoint->checkpoint_seq, ckpt_seq);
	assert_int_equal(wc->leaves_from, 1);
	assert_int_equal(wc->leaves.len, COSIGN_MAX_LEAVES * COSIGN_LEAF_LEN);
	assert_true(wc->more);
	cpx__envelope__free_unpacked(k.reply, NULL);
	cpx_client_free(&k.c);
}

/*
 * A witness that leaves while its answer waits for a page: the answer
 * and its cursor go with the session (the page is dropped when it
 * comes), and the broker serves on; under the sanitizers its clean exit
 * at the end says nothing leaked and nothing freed was touched.
 */
static void
leaves_while_waiting(uint64_t ckpt_seq)
{
	Cpx__Envelope env = CPX__ENVELOPE__INIT, *reply = NULL;
	Cpx__WitnessRequest rq = CPX__WITNESS_REQUEST__INIT;
	struct cpx_client *c;
	uint64_t rid;
	char err[256];

	if ((c = testbroker_connect(&tbs[0], "at-ncp", 0, err,
	    sizeof(err))) == NULL)
		fail_msg("at-ncp: %s", err);
	rq.checkpoint_record = ckpt_seq + 1;
	env.body_case = CPX__ENVELOPE__BODY_WITNESS_REQUEST;
	env.witness_request = &rq;
	pg_signal(SIGSTOP);
	assert_int_equal(client_witness_call(c, &env, &rid, 500, &reply, err,
	    sizeof(err)), -1);
	cpx_client_free(&c);
	assert_true(testbroker_wait_log(&tbs[0], "AT/at-ncp: session closed",
	    10000));
	pg_signal(SIGCONT);
}

static int
setup(void **state)
{
	(void)state;
	memset(&ps, 0, sizeof(ps));
	memset(tbs, 0, sizeof(tbs));
	pg_up = 0;
	frozen = 0;
	return testutil_mkdtemp(dir, sizeof(dir));
}

static int
teardown(void **state)
{
	size_t i;

	(void)state;
	if (frozen)
		pg_signal(SIGCONT);
	for (i = 0; i < MAX_KIDS; i++)
		if (kids[i] > 0)
			(void)cliproc_wait(kids[i], 0, kids, MAX_KIDS);
	for (i = 0; i < sizeof(tbs) / sizeof(tbs[0]); i++)
		testbroker_discard(&tbs[i]);
	if (pg_up)
		pgserver_cleanup(&ps);
	pg_up = 0;
	if (getenv("CPX_KEEP_TEST_DIRS") == NULL && testutil_rmrf(dir) == -1)
		fprintf(stderr, "cannot remove %s\n", dir);
	return 0;
}

static void
test_pg_witness_two_brokers(void **state)
{
	struct cpx_witness_result res;
	uint64_t seq_a;
	char out[300], *text;

	(void)state;
	if (!pgserver_available())
		skip();
	assert_int_equal(pgserver_start(&ps, 0), 0);
	pg_up = 1;
	if (audit_tool("init-db", (const char *const []){ "init-db", "--dsn",
	    ps.admin_dsn, "--grant", "cpx_broker", NULL }) != 0)
		fail_msg("cpx-audit init-db --dsn %s failed", ps.admin_dsn);
	start_broker(0);
	start_broker(1);
	publish_some(&tbs[0], "si-ncp", 5);
	publish_some(&tbs[1], "hu-ncp", 5);
	/* A third writer with the broker's key: records the brokers learn
	 * of as they learn of each other's. */
	testlog_fill(NULL, ps.dsn, BULK_RECORDS);
	publish_some(&tbs[0], "si-ncp", 3);

	/* From nothing on A: every leaf, in more than one answer. */
	assert_int_equal(round_of(&tbs[0], "hr-ncp", "hr", &res),
	    CPX_WITNESS_COSIGNED);
	seq_a = res.seen_seq;
	assert_true(seq_a >= BULK_RECORDS + 13);
	assert_int_equal(res.leaves, seq_a);
	assert_true(testbroker_log_count(&tbs[0], ", more,") >= 1);
	waits_without_spinning(seq_a);
	leaves_while_waiting(seq_a);

	/* Moved to B, after more records from both: B's extends A's. */
	publish_some(&tbs[1], "hu-ncp", 3);
	publish_some(&tbs[0], "si-ncp", 2);
	assert_int_equal(round_of(&tbs[1], "hr-ncp", "hr", &res),
	    CPX_WITNESS_COSIGNED);
	assert_int_equal(res.held_seq, seq_a);
	assert_true(res.seen_seq > seq_a);
	assert_true(res.leaves >= res.seen_seq - seq_a);

	/* The cosignatures are served to a second witness on each broker. */
	assert_int_equal(round_of(&tbs[1], "rs-ncp", "rs", &res),
	    CPX_WITNESS_COSIGNED);
	assert_true(res.peers_checked >= 1);
	assert_int_equal(round_of(&tbs[0], "at-ncp", "at", &res),
	    CPX_WITNESS_COSIGNED);
	assert_true(res.peers_checked >= 1);
	assert_int_equal(res.leaves, res.seen_seq);

	stop_broker(0);
	stop_broker(1);
	/* The log holds them, verified, from all three countries. */
	if (audit_tool("verify", (const char *const []){ "verify", "--ca",
	    testpki_file("ca.pem"), "--crl", testpki_file("crl.pem"),
	    "--require-witnesses", "1", "--dsn", ps.dsn, NULL }) != 0)
		fail_msg("cpx-audit verify --dsn --require-witnesses 1 failed");
	snprintf(out, sizeof(out), "%s/verify.out", dir);
	assert_non_null(text = testutil_read_text(out));
	if (strstr(text, "HR/hr-ncp") == NULL ||
	    strstr(text, "RS/rs-ncp") == NULL ||
	    strstr(text, "AT/at-ncp") == NULL)
		fail_msg("cpx-audit verify:\n%s", text);
	free(text);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_pg_witness_two_brokers,
		    setup, teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	if (getenv("CPX_TEST_FILTER") != NULL)
		cmocka_set_test_filter(getenv("CPX_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
