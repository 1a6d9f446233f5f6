/*
 * test_replay.c: replay through a real broker on a long audit log. One
 * node's replay costs every other node little (its records read per loop
 * turn are bounded and a replay by time or sequence seeks through the
 * log's index instead of reading it), and it still ends with the right
 * count; history goes to whoever was entitled when an alert was
 * accepted, not to whoever the policy names today; a replay stops when
 * a reload takes away the right it runs under.
 *
 * The long log is written by this process through the audit API before
 * the broker starts on it: LOAD_RECORDS records (CPX_TEST_REPLAY_RECORDS
 * overrides it), fewer under AddressSanitizer, where everything runs
 * several times slower: there the test checks memory and a looser
 * bound on a shorter log; the normal build tells old from new.
 */
#include <errno.h>
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

#include "alert.h"
#include "audit.h"
#include "cpx_client.h"
#include "log.h"
#include "testbroker.h"
#include "testsink.h"
#include "testutil.h"

/*
 * Ack latency bound while another node replays. On the long log the old
 * broker (records sent bounded, not records read; no index) took 250 to
 * 600 ms for an ack here, this one 2 to 8 ms.
 */
#if defined(__SANITIZE_ADDRESS__)
#define LOAD_RECORDS	40000u
#define LATENCY_MS	250	/* every record costs ~10 times more */
#else
#define LOAD_RECORDS	250000u
#define LATENCY_MS	100
#endif
#define OTHER_EVERY	100u	/* one non-alert record in so many */
#define ROUNDS		20		/* replays by time */
#define YEAR_MS		(365LL * 86400 * 1000)

static unsigned int
load_records(void)
{
	const char *v = getenv("CPX_TEST_REPLAY_RECORDS");
	long n;

	if (v == NULL || (n = strtol(v, NULL, 10)) < 1000 || n > 10000000)
		return LOAD_RECORDS;
	return (unsigned int)n;
}

/*
 * Write n records into a new log in dir: accepted alerts from SI to the
 * whole network, and every `every`-th record a session record instead
 * (every 1: session records only). The alerts carry no valid signature:
 * the tests never have them delivered. Returns the session records.
 */
static uint64_t
build_log(const char *dir, unsigned int n, unsigned int every)
{
	Cpx__Alert al = CPX__ALERT__INIT;
	Cpx__SignedAlert sa = CPX__SIGNED_ALERT__INIT;
	struct audit *a;
	static char *everyone[] = { (char *)"*" };
	uint8_t buf[512], sig[8] = { 0x30, 6, 2, 1, 1, 2, 1, 1 };
	char err[512], id[32];
	uint64_t seq, other = 0;
	unsigned int i;
	size_t len;

	a = audit_open(dir, NULL, NULL, err, sizeof(err));
	if (a == NULL)
		fail_msg("audit_open: %s", err);
	al.origin = (char *)"SI";
	al.issued_at = alert_now_ms();
	al.category = CPX__CATEGORY__CATEGORY_ROUTE;
	al.severity = CPX__SEVERITY__SEVERITY_LOW;
	al.handling = CPX__HANDLING__HANDLING_NETWORK;
	al.summary = (char *)"prebuilt";
	sa.signature.data = sig;
	sa.signature.len = sizeof(sig);
	for (i = 1; i <= n; i++) {
		Cpx__AuditRecord rec = CPX__AUDIT_RECORD__INIT;

		rec.peer_country = (char *)"SI";
		rec.peer_node = (char *)"si-ncp";
		if (i % every == 0) {
			rec.kind = CPX__RECORD_KIND__RECORD_SESSION_OPENED;
			rec.text = (char *)"prebuilt session";
			other++;
		} else {
			snprintf(id, sizeof(id), "pre-%u", i);
			al.id = id;
			len = cpx__alert__get_packed_size(&al);
			assert_true(len <= sizeof(buf));
			cpx__alert__pack(&al, buf);
			sa.alert.data = buf;
			sa.alert.len = len;
			rec.kind = CPX__RECORD_KIND__RECORD_ALERT_ACCEPTED;
			rec.alert = &sa;
			rec.alert_id = id;
			rec.entitled = everyone;
			rec.n_entitled = 1;
		}
		assert_int_equal(audit_append(a, &rec, &seq), 0);
		if (i % 8192 == 0 && audit_commit(a, err, sizeof(err)) == -1)
			fail_msg("audit_commit: %s", err);
	}
	if (audit_commit(a, err, sizeof(err)) == -1)
		fail_msg("audit_commit: %s", err);
	assert_int_equal(audit_last_seq(a), n);
	audit_close(&a);
	return other;
}

static int
cmp_i64(const void *x, const void *y)
{
	int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;

	return a < b ? -1 : a > b;
}

struct lat {
	int64_t	ms[4096];
	size_t	n;
};

/* The p-th percentile (0..100) of the samples. */
static int64_t
percentile(struct lat *l, int p)
{
	size_t i;

	assert_true(l->n > 0);
	qsort(l->ms, l->n, sizeof(l->ms[0]), cmp_i64);
	i = (l->n * (size_t)p + 99) / 100;
	return l->ms[i > 0 ? i - 1 : 0];
}

/* Publish one alert from c and wait for its ack: the latency in ms. */
static void
timed_publish(struct cpx_client *c, struct lat *l)
{
	struct testalert ta;
	struct cpx_result res;
	int64_t t0;

	testalert_init(&ta, NULL, CPX__CATEGORY__CATEGORY_VEHICLE,
	    CPX__SEVERITY__SEVERITY_HIGH, CPX__HANDLING__HANDLING_NETWORK, "",
	    "published while another node replays");
	t0 = testutil_now_ms();
	if (cpx_publish(c, &ta.alert, 10000, &res) == -1)
		fail_msg("publish: %s", res.text);
	if (l->n < sizeof(l->ms) / sizeof(l->ms[0]))
		l->ms[l->n++] = testutil_now_ms() - t0;
}

static void
report(const char *what, struct lat *l)
{
	int64_t p50 = percentile(l, 50), p99 = percentile(l, 99);

	printf("%s: %zu acks, p50 %lld ms, p99 %lld ms, max %lld ms\n", what,
	    l->n, (long long)p50, (long long)p99,
	    (long long)l->ms[l->n - 1]);
	fflush(stdout);
	if (p99 >= LATENCY_MS)
		fail_msg("%s: p99 ack latency %lld ms (bound %d ms)", what,
		    (long long)p99, LATENCY_MS);
}

/*
 * The worst replays for everyone else: one by a time after the whole log
 * (nothing matches, all of it would be read to find that out), and an
 * all-kinds replay with filters that match none of the alerts (almost
 * every record is read and dropped). Meanwhile another node publishes
 * one alert at a time: its acks stay quick, and the replays end with the
 * right counts.
 */
static void
test_replay_does_not_stall(void **state)
{
	static const Cpx__Category mar[] = {
	    CPX__CATEGORY__CATEGORY_MARITIME };
	Cpx__ReplayRequest rq = CPX__REPLAY_REQUEST__INIT;
	struct testbroker tb;
	struct testfilter tf;
	Cpx__Filter *f[1];
	struct testsink *s, *hs;
	struct lat *l;
	struct cpx_client *si, *hr;
	char dir[256], audit[300], extra[512];
	unsigned int n = load_records();
	uint64_t other, req;
	int64_t t0;
	int i;

	(void)state;
	s = calloc(1, sizeof(*s));
	hs = calloc(1, sizeof(*hs));
	l = calloc(1, sizeof(*l));
	assert_non_null(s);
	assert_non_null(hs);
	assert_non_null(l);
	assert_int_equal(testutil_mkdtemp(dir, sizeof(dir)), 0);
	snprintf(audit, sizeof(audit), "%s/audit", dir);
	t0 = testutil_now_ms();
	other = build_log(audit, n, OTHER_EVERY);
	printf("log of %u records written in %lld ms\n", n,
	    (long long)(testutil_now_ms() - t0));
	snprintf(extra, sizeof(extra), "audit_dir = %s\npublish_rate = 0\n",
	    audit);
	assert_int_equal(testbroker_start(&tb, extra, NULL), 0);
	/* si-ncp holds the audit right in the example policy. */
	si = testsink_connect(&tb, "si-ncp", 0, s);
	assert_non_null(si);
	hr = testsink_connect(&tb, "hr-ncp", 0, hs);
	assert_non_null(hr);
	timed_publish(hr, l);		/* warm up: first fsync, caches */
	l->n = 0;

	/* From a time after the whole log: nothing, found at once. */
	for (i = 0; i < ROUNDS; i++) {
		rq.from_time = alert_now_ms() + 10 * YEAR_MS;
		assert_int_equal(cpx_replay(si, &rq, &req), 0);
		(void)cpx_client_run(si, 0);
		timed_publish(hr, l);
		timed_publish(hr, l);
		assert_true(testsink_run_until(si, &s->replay_ends, i + 1,
		    30000));
		assert_int_equal(s->replay_count, 0);
	}
	report("replay from a future time", l);

	/* Every record kind, filters that match no alert of the log. */
	l->n = 0;
	testfilter_init(&tf, "XK", "", mar, 1, 0);
	f[0] = &tf.f;
	rq.from_time = 0;
	rq.to_seq = n;
	rq.all_kinds = 1;
	rq.filters = f;
	rq.n_filters = 1;
	assert_int_equal(cpx_replay(si, &rq, &req), 0);
	(void)cpx_client_run(si, 0);
	t0 = testutil_now_ms();
	while (s->replay_ends < ROUNDS + 1 && s->errors == 0 &&
	    testutil_now_ms() - t0 < 120000) {
		timed_publish(hr, l);
		assert_true(cpx_client_run(si, 0) >= 0);
	}
	assert_int_equal(s->errors, 0);
	assert_int_equal(s->replay_ends, ROUNDS + 1);
	/* Only the session records: no alert matched the filters. */
	assert_int_equal(s->replay_count, other);
	assert_int_equal(s->records, other);
	printf("all-kinds replay of %u records: %llu sent in %lld ms\n", n,
	    (unsigned long long)other, (long long)(testutil_now_ms() - t0));
	report("all-kinds replay matching no alert", l);

	cpx_client_free(&si);
	cpx_client_free(&hr);
	free(s);
	free(hs);
	free(l);
	assert_int_equal(testbroker_cleanup(&tb), 0);
	assert_int_equal(testutil_rmrf(dir), 0);
}

static void
write_policy(struct testbroker *tb, const char *text)
{
	FILE *fp;

	fp = fopen(tb->policy, "w");
	assert_non_null(fp);
	assert_true(fputs(text, fp) >= 0);
	assert_int_equal(fclose(fp), 0);
}

/* Reload the policy and wait until the broker has read it. */
static void
reload(struct testbroker *tb, const char *text)
{
	int before = testbroker_log_count(tb, "SIGHUP: reloading");
	int64_t until = testutil_now_ms() + 10000;

	write_policy(tb, text);
	assert_int_equal(kill(tb->pid, SIGHUP), 0);
	while (testbroker_log_count(tb, "SIGHUP: reloading") == before &&
	    testutil_now_ms() < until)
		usleep(10000);	/* polling interval, not a wait */
	assert_true(testbroker_log_count(tb, "SIGHUP: reloading") > before);
}

static struct testsink *
replay_all(struct testbroker *tb, const char *node)
{
	Cpx__ReplayRequest rq = CPX__REPLAY_REQUEST__INIT;
	struct testsink *s = calloc(1, sizeof(*s));
	struct cpx_client *c;
	uint64_t req;

	assert_non_null(s);
	c = testsink_connect(tb, node, 0, s);
	assert_non_null(c);
	assert_int_equal(cpx_replay(c, &rq, &req), 0);
	assert_true(testsink_run_until(c, &s->replay_ends, 1, 30000));
	assert_int_equal(s->errors, 0);
	cpx_client_free(&c);
	return s;
}

#define POLICY_WB(members) \
	"[region wb]\nmembers = " members "\n" \
	"[defaults]\nrights = publish subscribe\n" \
	"[node si-ncp]\ncountry = SI\nrights = publish subscribe audit\n"

static void
publish_to_wb(struct cpx_client *si, const char *id)
{
	struct testalert ta;
	struct cpx_result res;

	testalert_init(&ta, id, CPX__CATEGORY__CATEGORY_CROSSING,
	    CPX__SEVERITY__SEVERITY_MEDIUM, CPX__HANDLING__HANDLING_RESTRICTED,
	    "wb", "for the region wb");
	if (cpx_publish(si, &ta.alert, 10000, &res) == -1)
		fail_msg("publish %s: %s", id, res.text);
}

/*
 * A country added to a region by a reload receives the region's alerts
 * from then on, not the ones accepted before; a country taken out keeps
 * the history it was entitled to, and gets nothing new.
 */
static void
test_replay_policy_at_accept(void **state)
{
	struct testbroker tb;
	struct testsink *s, ss;
	struct cpx_client *si;

	(void)state;
	assert_int_equal(testbroker_start(&tb, NULL, POLICY_WB("RS BA")), 0);
	memset(&ss, 0, sizeof(ss));
	si = testsink_connect(&tb, "si-ncp", 0, &ss);
	assert_non_null(si);
	publish_to_wb(si, "wb-before");
	reload(&tb, POLICY_WB("BA HR"));
	publish_to_wb(si, "wb-after");
	cpx_client_free(&si);

	/* HR joined: only what was accepted after. */
	s = replay_all(&tb, "hr-ncp");
	assert_int_equal(s->n, 1);
	assert_string_equal(s->items[0].id, "wb-after");
	assert_true(s->items[0].verified);
	free(s);
	/* RS left: what it was entitled to, nothing later. */
	s = replay_all(&tb, "rs-ncp");
	assert_int_equal(s->n, 1);
	assert_string_equal(s->items[0].id, "wb-before");
	free(s);
	/* BA was a member throughout. */
	s = replay_all(&tb, "ba-ncp");
	assert_int_equal(s->n, 2);
	free(s);
	/* The lists are in the audit records, for anyone to check. */
	s = replay_all(&tb, "si-ncp");
	assert_int_equal(s->n, 0);	/* SI was never a recipient */
	free(s);
	assert_int_equal(testbroker_cleanup(&tb), 0);
}

/*
 * A reload that takes the audit right away stops an all-kinds replay
 * already running, with not-authorized, before it ends.
 */
static void
test_replay_right_removed(void **state)
{
	Cpx__ReplayRequest rq = CPX__REPLAY_REQUEST__INIT;
	struct testbroker tb;
	struct testsink *s;
	struct cpx_client *si;
	char dir[256], audit[300], extra[512];
	const unsigned int n = 100000;
	uint64_t req;
	int64_t until;

	(void)state;
	s = calloc(1, sizeof(*s));
	assert_non_null(s);
	assert_int_equal(testutil_mkdtemp(dir, sizeof(dir)), 0);
	snprintf(audit, sizeof(audit), "%s/audit", dir);
	(void)build_log(audit, n, 1);
	/* A small queue: the replay waits for the node to read. */
	snprintf(extra, sizeof(extra), "audit_dir = %s\n"
	    "outbound_queue = 262144\n", audit);
	assert_int_equal(testbroker_start(&tb, extra, POLICY_WB("RS")), 0);
	si = testsink_connect(&tb, "si-ncp", 0, s);
	assert_non_null(si);
	rq.all_kinds = 1;
	assert_int_equal(cpx_replay(si, &rq, &req), 0);
	until = testutil_now_ms() + 10000;
	while (s->records == 0 && testutil_now_ms() < until)
		assert_true(cpx_client_run(si, 20) >= 0);
	assert_true(s->records > 0);
	/* Not reading now: the replay stays under way. */
	reload(&tb, "[region wb]\nmembers = RS\n"
	    "[defaults]\nrights = publish subscribe\n");
	assert_true(testsink_run_until(si, &s->errors, 1, 30000));
	assert_int_equal(s->last_reason, CPX__REASON__REASON_NOT_AUTHORIZED);
	assert_int_equal(s->last_request, req);
	assert_false(s->last_fatal);
	/*
	 * The node keeps its session and its other rights; after this round
	 * trip everything queued before it has arrived, and the replay's
	 * end was not among it.
	 */
	assert_true(testsink_served(s, si));
	assert_int_equal(s->replay_ends, 0);
	assert_true(s->records < n);
	cpx_client_free(&si);
	free(s);
	assert_int_equal(testbroker_cleanup(&tb), 0);
	assert_int_equal(testutil_rmrf(dir), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_replay_policy_at_accept),
		cmocka_unit_test(test_replay_right_removed),
		cmocka_unit_test(test_replay_does_not_stall),
	};

	log_init("test_replay", LOG_LEVEL_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
