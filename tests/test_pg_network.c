/*
 * test_pg_network.c: several cpx-broker processes on one PostgreSQL log
 * (docs/postgresql.md), with real PostgreSQL 15 servers the test starts
 * itself (tests/util/pgserver.h: scripts/pg-cluster.sh, as the postgres
 * user when run as root), real brokers (tests/util/testbroker.h), the
 * real cpx CLI and library as nodes, and the real cpx-audit to create the
 * schema (init-db --grant: the broker's role has least privilege) and to
 * check the log afterwards (verify --dsn, dump --dsn, export, import):
 *
 * 1. two brokers on one database: SI publishes on A, HU on B, HR and RS
 *    subscribe on B and get exactly their feeds, in log order;
 * 2. kill -9 of broker A during a storm from two nodes: the publishers
 *    (--broker A,B) fail over to B; every acknowledged alert is in the log
 *    exactly once; the subscriber on B saw every one once, in order;
 * 3. a primary with a synchronous standby: kill -9 of the primary during
 *    a storm, the standby promoted, the brokers reconnect by themselves
 *    (DSN with both hosts, target_session_attrs=read-write): no
 *    acknowledged alert lost, the chain verifies across the failover;
 * 4. the database unreachable: publishes refused with storage, sessions
 *    kept, service back when the database is; nothing acknowledged lost;
 * 5. a file log imported into a database (migration), brokers continuing
 *    it there, then exported: the export verifies offline; imported into
 *    a second database and exported again, the same head and bytes;
 * 6. a commit held by the database (the head's table locked): the
 *    broker's loop goes on serving a replay meanwhile, /metrics shows the
 *    commit waiting, and the publish is answered once the lock goes.
 *
 * Storms are a few hundred alerts (CPX_TEST_STORM scales them as in the
 * other storm tests). Waits poll with a deadline, never sleep.
 */
#include <sys/stat.h>
#include <sys/wait.h>

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <jansson.h>

#include "cliproc.h"
#include "cpx_client.h"
#include "pgserver.h"
#include "testbroker.h"
#include "testhttp.h"
#include "testpki.h"
#include "testutil.h"

#define STORM_DEFAULT	200	/* alerts per publisher in a storm */
#define KILL_AFTER	50	/* acks seen before something is killed */
#define MAX_KIDS	8

/* What a test started, so that teardown ends it even after a failure. */
static char dir[256];
static struct pgserver ps;
static int pg_up;
static struct testbroker tbs[3];
static pid_t kids[MAX_KIDS];
static int64_t issued_at;	/* of every alert of a test, ms */

/* Alerts per publisher: CPX_TEST_STORM (21000 by default elsewhere)
 * scales the default in the same proportion. */
static size_t
storm_size(void)
{
	const char *v = getenv("CPX_TEST_STORM");
	size_t n = STORM_DEFAULT;

	if (v != NULL && atoi(v) > 0)
		n = (size_t)STORM_DEFAULT * (size_t)atoi(v) / 21000;
	return n < 2 * KILL_AFTER ? 2 * KILL_AFTER : n;
}

/* Start prog (client/cpx or broker/cpx-audit) with args, output to files. */
static pid_t
spawn(const char *prog, const char *out, const char *err, const char *in,
    const char *const *args)
{
	char exe[512];

	return cliproc_spawn(cliproc_exe(exe, sizeof(exe), prog), out, err,
	    in, args, kids, sizeof(kids) / sizeof(kids[0]));
}

/* Exit status of pid within ms (128 + signal if one ended it), or -1. */
static int
wait_exit(pid_t pid, int ms)
{
	return cliproc_wait(pid, ms, kids, sizeof(kids) / sizeof(kids[0]));
}

static int
wait_file_has(const char *path, const char *needle, int ms)
{
	int64_t until = testutil_now_ms() + ms;

	while (testutil_now_ms() < until) {
		if (cliproc_file_has(path, needle))
			return 1;
		usleep(10000);	/* polling interval */
	}
	return 0;
}

static void
path(char *out, size_t len, const char *name)
{
	snprintf(out, len, "%s/%s", dir, name);
}

/* Run cpx-audit with args; its exit status, stdout in name.out. */
static int
audit_tool(const char *name, const char *const *args)
{
	char out[300], err[300];
	int rc;

	snprintf(out, sizeof(out), "%s/%s.out", dir, name);
	snprintf(err, sizeof(err), "%s/%s.err", dir, name);
	rc = wait_exit(spawn("broker/cpx-audit", out, err, NULL, args), 60000);
	if (rc != 0) {
		cliproc_show("cpx-audit stdout", out);
		cliproc_show("cpx-audit stderr", err);
	}
	return rc;
}

/*
 * A database for brokers: cpx-audit init-db as its owner (cpx_admin)
 * creates the schema and grants cpx_broker what it needs, no more.
 */
static void
init_db(const char *admin_dsn)
{
	if (audit_tool("init-db", (const char *const []){ "init-db", "--dsn",
	    admin_dsn, "--grant", "cpx_broker", NULL }) != 0)
		fail_msg("cpx-audit init-db --dsn %s failed", admin_dsn);
}

/* A cluster (flags: PGSERVER_*) with the schema, for brokers. */
static void
start_pg(unsigned flags)
{
	if (!pgserver_available())
		skip();
	assert_int_equal(pgserver_start(&ps, flags), 0);
	pg_up = 1;
	init_db(ps.admin_dsn);
}

/* Broker tbs[i] on the database, its password from store_passfile. */
static void
start_broker(int i)
{
	char extra[1200];

	assert_int_equal(pgserver_broker_config(&ps, extra, sizeof(extra)),
	    0);
	strncat(extra, "metrics_listen = 127.0.0.1:0\n",
	    sizeof(extra) - strlen(extra) - 1);
	if (testbroker_start(&tbs[i], extra, NULL) != 0)
		fail_msg("broker %d on %s did not start", i, ps.dsn);
}

static int
setup(void **state)
{
	(void)state;
	memset(&ps, 0, sizeof(ps));
	pg_up = 0;
	issued_at = (int64_t)time(NULL) * 1000;
	return testutil_mkdtemp(dir, sizeof(dir));
}

static int
teardown(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < MAX_KIDS; i++)
		if (kids[i] > 0)
			(void)wait_exit(kids[i], 0);
	for (i = 0; i < sizeof(tbs) / sizeof(tbs[0]); i++)
		testbroker_discard(&tbs[i]);
	if (pg_up)
		pgserver_cleanup(&ps);
	pg_up = 0;
	if (getenv("CPX_KEEP_TEST_DIRS") == NULL && testutil_rmrf(dir) == -1)
		fprintf(stderr, "cannot remove %s\n", dir);
	return 0;
}

/* Stop a broker cleanly: status 0 (drained; no leak under LSan). */
static void
stop_broker(int i)
{
	if (testbroker_stop_clean(&tbs[i]) == -1)
		fail_msg("broker %d did not exit cleanly", i);
	/* Whatever died in the scenario, the log never read as damaged. */
	if (cliproc_file_has(tbs[i].log, "damaged log")) {
		cliproc_show("broker log", tbs[i].log);
		fail_msg("broker %d read the log as damaged", i);
	}
}

/*
 * Write n alerts "<prefix><i>" for `cpx publish --stdin`; recipients of
 * alert i: rcpt[i % nrcpt] (a JSON array). issued_at is fixed, so the
 * same lines published again are the same alert bytes: the broker
 * answers a repeat of one on record with its original seq.
 */
static void
write_alerts(const char *file, const char *prefix, size_t n,
    const char *const *rcpt, size_t nrcpt)
{
	FILE *f;
	size_t i;

	assert_non_null(f = fopen(file, "w"));
	for (i = 0; i < n; i++)
		fprintf(f, "{\"id\":\"%s%zu\",\"issued_at\":%lld,"
		    "\"category\":\"vehicle\",\"severity\":\"low\","
		    "\"recipients\":%s,\"summary\":\"%s %zu\"}\n", prefix,
		    i, (long long)issued_at, nrcpt ? rcpt[i % nrcpt] : "[]",
		    prefix, i);
	assert_int_equal(fclose(f), 0);
}

/* `cpx publish --stdin --json` of node through eps; its pid. */
static pid_t
publisher(const char *node, const char *eps, const char *in,
    const char *name)
{
	char out[300], err[300];

	snprintf(out, sizeof(out), "%s/%s.out", dir, name);
	snprintf(err, sizeof(err), "%s/%s.err", dir, name);
	return spawn("client/cpx", out, err, in, (const char *const []){
	    "publish", "-v", "--broker", eps, "--pki", testpki_file(""),
	    "--node", node, "--stdin", "--json", "--timeout", "30", NULL });
}

/*
 * `cpx subscribe --json` of node through eps until count alerts; its
 * pid once it says it is subscribed.
 */
static pid_t
subscriber(const char *node, const char *eps, size_t count,
    const char *name)
{
	char out[300], err[300], st[300], cnt[24];
	pid_t pid;

	snprintf(out, sizeof(out), "%s/%s.out", dir, name);
	snprintf(err, sizeof(err), "%s/%s.err", dir, name);
	snprintf(st, sizeof(st), "%s/%s.seq", dir, name);
	snprintf(cnt, sizeof(cnt), "%zu", count);
	pid = spawn("client/cpx", out, err, NULL, (const char *const []){
	    "subscribe", "-v", "--broker", eps, "--pki", testpki_file(""), "--node",
	    node, "--json", "--state-file", st, "--count", cnt, "--timeout",
	    "120", NULL });
	assert_true(pid > 0);
	if (!wait_file_has(err, "subscribed", 30000)) {
		cliproc_show(name, err);
		fail_msg("%s never subscribed", name);
	}
	return pid;
}

static void
wait_ok(pid_t pid, const char *name, int ms)
{
	char err[300];
	int rc;

	if ((rc = wait_exit(pid, ms)) != 0) {
		snprintf(err, sizeof(err), "%s/%s.err", dir, name);
		cliproc_show(name, err);
		fail_msg("%s exited %d", name, rc);
	}
}

/*
 * The results of a publisher: a JSON object id -> seq of the accepted
 * ones; *accepted and *refused count them.
 */
static json_t *
acks_of(const char *name, size_t *accepted, size_t *refused)
{
	char out[300];
	json_t *lines, *map = json_object(), *o;
	const char *id, *res;
	size_t i;

	snprintf(out, sizeof(out), "%s/%s.out", dir, name);
	lines = cliproc_load_lines(out);
	*accepted = *refused = 0;
	json_array_foreach(lines, i, o) {
		res = json_string_value(json_object_get(o, "result"));
		id = json_string_value(json_object_get(o, "id"));
		assert_non_null(res);
		if (strcmp(res, "accepted") == 0) {
			assert_non_null(id);
			assert_null(json_object_get(map, id));
			json_object_set_new(map, id, json_integer(
			    json_integer_value(json_object_get(o, "seq"))));
			(*accepted)++;
		} else
			(*refused)++;
	}
	json_decref(lines);
	return map;
}

/*
 * The log in the database: cpx-audit verify --ca --dsn passes (chain,
 * checkpoints of every broker, every alert's signature), and each alert
 * of acks (id -> seq) is in exactly one alert-accepted record, at its
 * acked seq.
 */
static void
check_log(const char *dsn, json_t *acks)
{
	char out[300];
	json_t *recs, *seen = json_object(), *o, *v;
	const char *id, *key;
	size_t k;

	if (audit_tool("verify", (const char *const []){ "verify", "--ca",
	    testpki_file("ca.pem"), "--crl", testpki_file("crl.pem"), "--dsn",
	    dsn, NULL }) != 0)
		fail_msg("cpx-audit verify --dsn failed");
	assert_int_equal(audit_tool("dump", (const char *const []){ "dump",
	    "--dsn", dsn, NULL }), 0);
	path(out, sizeof(out), "dump.out");
	recs = cliproc_load_lines(out);
	json_array_foreach(recs, k, o) {
		if (strcmp(json_string_value(json_object_get(o, "kind")),
		    "alert-accepted") != 0)
			continue;
		id = json_string_value(json_object_get(o, "alert_id"));
		assert_non_null(id);
		if (json_object_get(seen, id) != NULL)
			fail_msg("%s is in the log twice", id);
		json_object_set_new(seen, id, json_integer(json_integer_value(
		    json_object_get(o, "seq"))));
	}
	json_object_foreach(acks, key, v) {
		o = json_object_get(seen, key);
		if (o == NULL)
			fail_msg("%s was acknowledged (seq %" PRId64 ") and is "
			    "not in the log", key, (int64_t)json_integer_value(
			    v));
		if (json_integer_value(o) != json_integer_value(v))
			fail_msg("%s acknowledged as seq %" PRId64 ", in the "
			    "log at %" PRId64, key, (int64_t)
			    json_integer_value(v), (int64_t)
			    json_integer_value(o));
	}
	json_decref(seen);
	json_decref(recs);
}

/*
 * A subscriber's output: seqs strictly increasing (log order, no
 * repeat), each alert's seq the one its publisher was acked with, and
 * exactly the ids want says (a JSON object id -> anything). Returns the
 * number of lines.
 */
static size_t
check_feed(const char *name, json_t *acks, json_t *want)
{
	char out[300];
	json_t *lines, *o, *got = json_object();
	const char *id, *key;
	uint64_t seq, prev = 0;
	size_t i, n;
	json_t *v;

	snprintf(out, sizeof(out), "%s/%s.out", dir, name);
	lines = cliproc_load_lines(out);
	json_array_foreach(lines, i, o) {
		seq = (uint64_t)json_integer_value(json_object_get(o, "seq"));
		id = json_string_value(json_object_get(o, "id"));
		assert_non_null(id);
		if (seq <= prev)
			fail_msg("%s: seq %" PRIu64 " (%s) after %" PRIu64,
			    name, seq, id, prev);
		prev = seq;
		if (json_object_get(want, id) == NULL)
			fail_msg("%s got %s, not in its feed", name, id);
		if (acks != NULL && (v = json_object_get(acks, id)) != NULL &&
		    (uint64_t)json_integer_value(v) != seq)
			fail_msg("%s: %s at seq %" PRIu64 ", acked as %" PRId64,
			    name, id, seq, (int64_t)json_integer_value(v));
		json_object_set_new(got, id, json_true());
	}
	json_object_foreach(want, key, v)
		if (json_object_get(got, key) == NULL)
			fail_msg("%s never got %s", name, key);
	n = json_array_size(lines);
	json_decref(lines);
	json_decref(got);
	return n;
}

/* acks_of(name) added to into. */
static void
merge_acks(json_t *into, const char *name, size_t *accepted, size_t *refused)
{
	json_t *from = acks_of(name, accepted, refused);

	assert_int_equal(json_object_update(into, from), 0);
	json_decref(from);
}

/* --- 1. two brokers, one log ------------------------------------- */

static void
test_two_brokers_feeds(void **state)
{
	static const char *const rcpt[] = { "[]", "[\"HR\"]", "[\"RS\"]",
		"[\"western-balkans\"]", "[\"eu-neighbours\"]" };
	/* Who gets rcpt[k]: HR all but 2 and 3; RS all but 1 and 4. */
	static const int to_hr[] = { 1, 1, 0, 0, 1 };
	static const int to_rs[] = { 1, 0, 1, 1, 0 };
	json_t *acks, *hr, *rs;
	char si_in[300], hu_in[300], eps_a[200], eps_b[200], id[32];
	size_t n = 100, i, acc, ref, nhr = 0, nrs = 0;
	pid_t hrp, rsp, si, hu;

	(void)state;
	start_pg(0);
	start_broker(0);
	start_broker(1);
	snprintf(eps_a, sizeof(eps_a), "%s", tbs[0].endpoint);
	snprintf(eps_b, sizeof(eps_b), "%s", tbs[1].endpoint);
	hr = json_object();
	rs = json_object();
	for (i = 0; i < 2 * n; i++) {
		snprintf(id, sizeof(id), "%s-%zu", i < n ? "si" : "hu", i % n);
		if (to_hr[i % n % 5]) {
			json_object_set_new(hr, id, json_true());
			nhr++;
		}
		if (to_rs[i % n % 5]) {
			json_object_set_new(rs, id, json_true());
			nrs++;
		}
	}
	hrp = subscriber("hr-ncp", eps_b, nhr, "hr");
	rsp = subscriber("rs-ncp", eps_b, nrs, "rs");
	path(si_in, sizeof(si_in), "si.jsonl");
	path(hu_in, sizeof(hu_in), "hu.jsonl");
	write_alerts(si_in, "si-", n, rcpt, 5);
	write_alerts(hu_in, "hu-", n, rcpt, 5);
	/* SI on A and HU on B at once: their records interleave. */
	si = publisher("si-ncp", eps_a, si_in, "si");
	hu = publisher("hu-ncp", eps_b, hu_in, "hu");
	wait_ok(si, "si", 60000);
	wait_ok(hu, "hu", 60000);
	acks = acks_of("si", &acc, &ref);
	assert_int_equal(acc, n);
	merge_acks(acks, "hu", &acc, &ref);
	assert_int_equal(acc, n);
	wait_ok(hrp, "hr", 60000);
	wait_ok(rsp, "rs", 60000);
	assert_int_equal(check_feed("hr", acks, hr), nhr);
	assert_int_equal(check_feed("rs", acks, rs), nrs);
	/* Nothing died here: neither subscriber was ever cut. */
	path(si_in, sizeof(si_in), "hr.err");
	path(hu_in, sizeof(hu_in), "rs.err");
	if (cliproc_file_has(si_in, "connected again") ||
	    cliproc_file_has(hu_in, "connected again")) {
		cliproc_show("broker B", tbs[1].log);
		fail_msg("a subscriber on B lost its session");
	}
	print_message("two brokers: %zu alerts from A and B, HR got %zu, RS "
	    "%zu on B\n", 2 * n, nhr, nrs);
	stop_broker(0);
	stop_broker(1);
	check_log(ps.dsn, acks);
	json_decref(acks);
	json_decref(hr);
	json_decref(rs);
}

/* --- 2. a broker killed during a storm --------------------------- */

static void
test_kill_broker_storm(void **state)
{
	json_t *acks, *all;
	char si_in[300], hu_in[300], eps[300], id[32];
	size_t n = storm_size(), i, acc, ref, at_kill;
	pid_t hrp, si, hu;

	(void)state;
	start_pg(0);
	start_broker(0);
	start_broker(1);
	snprintf(eps, sizeof(eps), "%s,%s", tbs[0].endpoint, tbs[1].endpoint);
	all = json_object();
	for (i = 0; i < 2 * n; i++) {
		snprintf(id, sizeof(id), "%s-%zu", i < n ? "k-si" : "k-hu",
		    i % n);
		json_object_set_new(all, id, json_true());
	}
	hrp = subscriber("hr-ncp", tbs[1].endpoint, 2 * n, "hr");
	path(si_in, sizeof(si_in), "si.jsonl");
	path(hu_in, sizeof(hu_in), "hu.jsonl");
	write_alerts(si_in, "k-si-", n, NULL, 0);
	write_alerts(hu_in, "k-hu-", n, NULL, 0);
	si = publisher("si-ncp", eps, si_in, "si");
	hu = publisher("hu-ncp", eps, hu_in, "hu");
	{
		char out[300];

		path(out, sizeof(out), "si.out");
		if (!cliproc_wait_lines(out, KILL_AFTER, 60000)) {
			path(out, sizeof(out), "si.err");
			cliproc_show("si", out);
			fail_msg("the storm did not start");
		}
		assert_int_equal(testbroker_stop(&tbs[0], SIGKILL) & 0x7f,
		    SIGKILL);
		at_kill = cliproc_count_lines(out);
		if (at_kill >= n)
			fail_msg("the storm ended before the kill: raise "
			    "CPX_TEST_STORM");
	}
	wait_ok(si, "si", 90000);
	wait_ok(hu, "hu", 90000);
	acks = acks_of("si", &acc, &ref);
	assert_int_equal(acc, n);
	merge_acks(acks, "hu", &acc, &ref);
	assert_int_equal(acc, n);
	wait_ok(hrp, "hr", 60000);
	assert_int_equal(check_feed("hr", acks, all), 2 * n);
	print_message("broker killed: %zu alerts from 2 nodes, A killed after "
	    "%zu acks of SI, all acked once, HR on B saw all in order\n",
	    2 * n, at_kill);
	stop_broker(1);
	check_log(ps.dsn, acks);
	json_decref(acks);
	json_decref(all);
}

/* --- 3. the database primary killed, the standby promoted --------- */

/*
 * Publish again, as node through eps, the alerts "<prefix><i>" (i < n)
 * that acks has no seq for, and add their acks: all must be accepted.
 * *count gets how many were published again.
 */
static void
again(const char *node, const char *eps, const char *prefix, size_t n,
    json_t *acks, const char *name, size_t *count)
{
	char in[300], id[32];
	size_t i, acc, ref;
	FILE *f;

	snprintf(in, sizeof(in), "%s/%s.jsonl", dir, name);
	assert_non_null(f = fopen(in, "w"));
	*count = 0;
	for (i = 0; i < n; i++) {
		snprintf(id, sizeof(id), "%s%zu", prefix, i);
		if (json_object_get(acks, id) != NULL)
			continue;
		fprintf(f, "{\"id\":\"%s\",\"issued_at\":%lld,"
		    "\"category\":\"vehicle\",\"severity\":\"low\","
		    "\"recipients\":[],\"summary\":\"%s %zu\"}\n", id,
		    (long long)issued_at, prefix, i);
		(*count)++;
	}
	assert_int_equal(fclose(f), 0);
	if (*count == 0)
		return;
	wait_ok(publisher(node, eps, in, name), name, 60000);
	merge_acks(acks, name, &acc, &ref);
	assert_int_equal(acc, *count);
	assert_int_equal(ref, 0);
}

static void
test_primary_failover(void **state)
{
	json_t *acks, *all;
	char si_in[300], hu_in[300], eps[300], out[300], id[32];
	size_t n = 2 * storm_size(), i, acc, ref, acc2, ref2, at_kill;
	char hu_out[300];
	int64_t t0;
	pid_t hrp, si, hu;
	int rc;

	(void)state;
	start_pg(PGSERVER_STANDBY);
	start_broker(0);
	start_broker(1);
	snprintf(eps, sizeof(eps), "%s,%s", tbs[0].endpoint, tbs[1].endpoint);
	all = json_object();
	for (i = 0; i < 2 * n; i++) {
		snprintf(id, sizeof(id), "%s-%zu", i < n ? "p-si" : "p-hu",
		    i % n);
		json_object_set_new(all, id, json_true());
	}
	hrp = subscriber("hr-ncp", tbs[1].endpoint, 2 * n, "hr");
	path(si_in, sizeof(si_in), "si.jsonl");
	path(hu_in, sizeof(hu_in), "hu.jsonl");
	write_alerts(si_in, "p-si-", n, NULL, 0);
	write_alerts(hu_in, "p-hu-", n, NULL, 0);
	si = publisher("si-ncp", eps, si_in, "si");
	hu = publisher("hu-ncp", tbs[1].endpoint, hu_in, "hu");
	path(out, sizeof(out), "si.out");
	path(hu_out, sizeof(hu_out), "hu.out");
	if (!cliproc_wait_lines(out, KILL_AFTER, 60000))
		fail_msg("the storm did not start");
	/* The machine of the primary dies; an operator promotes. */
	at_kill = cliproc_count_lines(out);
	assert_int_equal(pgserver_kill_primary(&ps), 0);
	if (cliproc_count_lines(out) >= n && cliproc_count_lines(hu_out) >= n)
		fail_msg("the storm ended before the primary was killed: "
		    "raise CPX_TEST_STORM");
	t0 = testutil_now_ms();
	assert_int_equal(pgserver_promote(&ps), 0);
	print_message("primary killed after %zu results of SI, standby "
	    "promoted in %" PRId64 " ms\n", at_kill,
	    testutil_now_ms() - t0);
	/* Publishes during the outage may be refused (storage, exit 1). */
	rc = wait_exit(si, 90000);
	assert_true(rc == 0 || rc == 1);
	rc = wait_exit(hu, 90000);
	assert_true(rc == 0 || rc == 1);
	acks = acks_of("si", &acc, &ref);
	merge_acks(acks, "hu", &acc2, &ref2);
	assert_int_equal(acc + ref, n);
	assert_int_equal(acc2 + ref2, n);
	/* Nothing acknowledged was lost with the primary. */
	check_log(ps.dsn, acks);

	/*
	 * What was refused, again, as an operator would: the same lines,
	 * the same alert bytes. Each is now accepted: new, or (if the
	 * commit that failed had taken effect after all: in doubt) a repeat
	 * answered with its seq. The log then holds every alert once.
	 */
	again("si-ncp", eps, "p-si-", n, acks, "again-si", &ref);
	again("hu-ncp", tbs[1].endpoint, "p-hu-", n, acks, "again-hu",
	    &ref2);
	print_message("published again: %zu of SI, %zu of HU (refused with "
	    "storage during the failover); all accepted\n", ref, ref2);
	/* B's subscriber saw every alert once, in order, across it all. */
	wait_ok(hrp, "hr", 60000);
	assert_int_equal(check_feed("hr", acks, all), 2 * n);
	stop_broker(0);
	stop_broker(1);
	check_log(ps.dsn, acks);
	json_decref(acks);
	json_decref(all);
}

/* --- 4. the database unreachable for a while --------------------- */

/* Events of the publisher's session: it must never be lost. */
struct session {
	size_t	connected;
	size_t	disconnected;
};

static void
on_event(const struct cpx_event *ev, void *arg)
{
	struct session *se = arg;

	if (ev->kind == CPX_EV_CONNECTED)
		se->connected++;
	if (ev->kind == CPX_EV_DISCONNECTED)
		se->disconnected++;
}

/* Publish "<prefix><i>" through c; 0 with *seq, or -1 with res. */
static int
publish_one(struct cpx_client *c, const char *prefix, size_t i,
    struct cpx_result *res)
{
	struct testalert ta;
	char id[32];

	snprintf(id, sizeof(id), "%s%zu", prefix, i);
	testalert_init(&ta, id, CPX__CATEGORY__CATEGORY_VEHICLE,
	    CPX__SEVERITY__SEVERITY_LOW, CPX__HANDLING__HANDLING_NETWORK, "",
	    id);
	memset(res, 0, sizeof(*res));
	return cpx_publish(c, &ta.alert, 10000, res);
}

static void
add_ack(json_t *acks, const char *prefix, size_t i, uint64_t seq)
{
	char id[32];

	snprintf(id, sizeof(id), "%s%zu", prefix, i);
	assert_null(json_object_get(acks, id));
	json_object_set_new(acks, id, json_integer((json_int_t)seq));
}

/*
 * The database stops: publishes on A are refused with storage while
 * the nodes' sessions (a publisher on A, a subscriber on B) stay up;
 * once it is back both brokers resume by themselves. Everything
 * acknowledged is in the log, and the subscriber on B gets it all.
 */
static void
test_db_unreachable(void **state)
{
	enum { BEFORE = 20, DURING = 5, AFTER = 20 };
	struct cpx_client *c;
	struct cpx_result res;
	struct session se = { 0, 0 };
	json_t *acks, *all;
	char err[600], serr[300], sout[300], id[32];
	size_t i, waited = 0;
	int64_t t0, until;
	pid_t hrp;

	(void)state;
	start_pg(0);
	start_broker(0);
	start_broker(1);
	acks = json_object();
	all = json_object();
	for (i = 0; i < BEFORE + DURING + AFTER; i++) {
		snprintf(id, sizeof(id), "%s%zu", i < BEFORE ? "u-a-" :
		    i < BEFORE + DURING ? "u-b-" : "u-c-", i < BEFORE ? i :
		    i < BEFORE + DURING ? i - BEFORE : i - BEFORE - DURING);
		json_object_set_new(all, id, json_true());
	}
	hrp = subscriber("hr-ncp", tbs[1].endpoint, json_object_size(all),
	    "hr");
	c = testbroker_connect(&tbs[0], "si-ncp", 1, err, sizeof(err));
	if (c == NULL)
		fail_msg("connect to A: %s", err);
	cpx_client_on_event(c, on_event, &se);
	for (i = 0; i < BEFORE; i++) {
		if (publish_one(c, "u-a-", i, &res) != 0)
			fail_msg("u-a-%zu: %s", i, res.text);
		add_ack(acks, "u-a-", i, res.seq);
	}

	assert_int_equal(pgserver_stop(&ps), 0);
	t0 = testutil_now_ms();
	for (i = 0; i < DURING; i++) {
		if (publish_one(c, "u-b-", i, &res) == 0)
			fail_msg("u-b-%zu accepted (seq %" PRIu64 ") with the "
			    "database down", i, res.seq);
		if (res.reason != CPX__REASON__REASON_STORAGE)
			fail_msg("u-b-%zu refused with %s (%s), not storage",
			    i, cpx_reason_name(res.reason), res.text);
		/* Where the database is stays in the broker's log. */
		if (strstr(res.text, "host=") != NULL ||
		    strstr(res.text, "127.0.0.1") != NULL ||
		    strstr(res.text, "cpx_broker") != NULL)
			fail_msg("u-b-%zu: the node was told \"%s\"", i,
			    res.text);
	}
	print_message("database down: refused with storage: %s\n",
	    res.text);
	/* A while down: the session stays (keepalives still answered). */
	until = testutil_now_ms() + 1500;
	while (testutil_now_ms() < until)
		assert_true(cpx_client_run(c, 100) >= 0);
	assert_int_equal(se.disconnected, 0);

	assert_int_equal(pgserver_restart(&ps), 0);
	/* The refused ones again, then more; the store reconnects. */
	for (i = 0; i < DURING; i++) {
		while (publish_one(c, "u-b-", i, &res) != 0) {
			if (res.reason != CPX__REASON__REASON_STORAGE ||
			    testutil_now_ms() - t0 > 30000)
				fail_msg("u-b-%zu after the database came "
				    "back: %s (%s)", i,
				    cpx_reason_name(res.reason), res.text);
			waited++;
			(void)cpx_client_run(c, 100);	/* retry later */
		}
		add_ack(acks, "u-b-", i, res.seq);
	}
	for (i = 0; i < AFTER; i++) {
		if (publish_one(c, "u-c-", i, &res) != 0)
			fail_msg("u-c-%zu: %s", i, res.text);
		add_ack(acks, "u-c-", i, res.seq);
	}
	assert_int_equal(se.disconnected, 0);
	print_message("database back: service after %zu more refusal(s), "
	    "%" PRId64 " ms after the stop; no session lost\n", waited,
	    testutil_now_ms() - t0);
	cpx_client_free(&c);

	/*
	 * B delivers again without waiting for anything else to happen:
	 * every alert reaches its subscriber within seconds.
	 */
	snprintf(sout, sizeof(sout), "%s/hr.out", dir);
	snprintf(serr, sizeof(serr), "%s/hr.err", dir);
	if (!cliproc_wait_lines(sout, json_object_size(all), 20000)) {
		cliproc_show("hr", serr);
		fail_msg("the subscriber on B has %zu of %zu alerts 20 s after "
		    "the last was acknowledged: B's delivery did not resume "
		    "when the database came back", cliproc_count_lines(sout),
		    json_object_size(all));
	}
	wait_ok(hrp, "hr", 10000);
	if (cliproc_file_has(serr, "connected again")) {
		cliproc_show("hr", serr);
		cliproc_show("broker B", tbs[1].log);
		fail_msg("the subscriber on B lost its session");
	}
	assert_int_equal(check_feed("hr", acks, all), json_object_size(all));
	stop_broker(0);
	stop_broker(1);
	check_log(ps.dsn, acks);
	json_decref(acks);
	json_decref(all);
}

/* --- 5. migration, export and import ----------------------------- */

/* The "head: ..." line of cpx-audit's output name.out, into out[len]. */
static void
head_line(const char *name, const char *prefix, char *out, size_t len)
{
	char p[300], *t, *h, *nl;

	snprintf(p, sizeof(p), "%s/%s.out", dir, name);
	assert_non_null(t = testutil_read_text(p));
	if ((h = strstr(t, prefix)) == NULL) {
		cliproc_show(name, p);
		fail_msg("%s: no \"%s\" line", name, prefix);
	}
	h += strlen(prefix);
	if ((nl = strchr(h, '\n')) != NULL)
		*nl = '\0';
	snprintf(out, len, "%s", h);
	free(t);
}

/* Every file of directory a is in b with the same bytes, and b has no
 * other. */
static void
same_files(const char *a, const char *b)
{
	char pa[600], pb[600];
	struct dirent *de;
	struct stat st;
	size_t na = 0, nb = 0;
	DIR *d;

	assert_non_null(d = opendir(a));
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(pa, sizeof(pa), "%s/%s", a, de->d_name);
		snprintf(pb, sizeof(pb), "%s/%s", b, de->d_name);
		assert_int_equal(stat(pa, &st), 0);
		if (stat(pb, &st) != 0)
			fail_msg("%s is not in %s", de->d_name, b);
		/* Segment files hold binary: compared byte by byte. */
		{
			FILE *fa = fopen(pa, "rb"), *fb = fopen(pb, "rb");
			int ca, cb;
			uint64_t off = 0;

			assert_non_null(fa);
			assert_non_null(fb);
			do {
				ca = getc(fa);
				cb = getc(fb);
				if (ca != cb)
					fail_msg("%s differs at byte %" PRIu64,
					    de->d_name, off);
				off++;
			} while (ca != EOF);
			fclose(fa);
			fclose(fb);
		}
		na++;
	}
	closedir(d);
	assert_non_null(d = opendir(b));
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			nb++;
	closedir(d);
	assert_int_equal(na, nb);
}

/*
 * One broker's file log moves into a database (cpx-audit import), two
 * brokers continue it there, and it comes back out (cpx-audit export)
 * as segment files that verify offline; imported into a second empty
 * database and exported again, it gives the same head and bytes.
 */
static void
test_export_import(void **state)
{
	json_t *acks;
	char in[300], out1[300], out2[300], admin2[600];
	char head1[200], head2[200], headi[200], lseq[40], lhash[100], *p;
	size_t acc, ref;

	(void)state;
	/* A single broker on segment files, as before the database. */
	assert_int_equal(testbroker_start(&tbs[2], NULL, NULL), 0);
	path(in, sizeof(in), "f.jsonl");
	write_alerts(in, "m-f-", 30, NULL, 0);
	wait_ok(publisher("si-ncp", tbs[2].endpoint, in, "f"), "f", 60000);
	acks = acks_of("f", &acc, &ref);
	assert_int_equal(acc, 30);
	stop_broker(2);

	start_pg(0);
	if (audit_tool("import", (const char *const []){ "import", "--dsn",
	    ps.admin_dsn, "--ca", testpki_file("ca.pem"), "--crl",
	    testpki_file("crl.pem"), tbs[2].audit, NULL }) != 0)
		fail_msg("cpx-audit import of %s failed", tbs[2].audit);
	head_line("import", "database head: ", headi, sizeof(headi));

	/* Two brokers go on from the imported head. */
	start_broker(0);
	start_broker(1);
	path(in, sizeof(in), "a.jsonl");
	write_alerts(in, "m-a-", 20, NULL, 0);
	wait_ok(publisher("si-ncp", tbs[0].endpoint, in, "a"), "a", 60000);
	path(in, sizeof(in), "b.jsonl");
	write_alerts(in, "m-b-", 20, NULL, 0);
	wait_ok(publisher("hu-ncp", tbs[1].endpoint, in, "b"), "b", 60000);
	merge_acks(acks, "a", &acc, &ref);
	assert_int_equal(acc, 20);
	merge_acks(acks, "b", &acc, &ref);
	assert_int_equal(acc, 20);
	stop_broker(0);
	stop_broker(1);
	/* The file broker's acks still hold: same seqs in the database. */
	check_log(ps.dsn, acks);

	path(out1, sizeof(out1), "export1");
	if (audit_tool("export", (const char *const []){ "export", "--dsn",
	    ps.dsn, out1, NULL }) != 0)
		fail_msg("cpx-audit export failed");
	head_line("export", "head: ", head1, sizeof(head1));
	if (audit_tool("verify-export", (const char *const []){ "verify",
	    "--ca", testpki_file("ca.pem"), "--crl", testpki_file("crl.pem"),
	    "--multi-broker", out1, NULL }) != 0)
		fail_msg("cpx-audit verify of the export failed");
	/* Offline, the same head: "last seq: N", "last hash: H". */
	head_line("verify-export", "last seq: ", lseq, sizeof(lseq));
	head_line("verify-export", "last hash: ", lhash, sizeof(lhash));
	snprintf(head2, sizeof(head2), "seq %s, hash %s", lseq, lhash);
	assert_string_equal(head1, head2);
	print_message("imported %s; exported %s, verified offline\n", headi,
	    head1);

	/* A second, empty database: import the export, export again. */
	assert_int_equal(pgserver_sql(&ps, NULL, "CREATE DATABASE cpx2 OWNER "
	    "cpx_admin", NULL, 0), 0);
	snprintf(admin2, sizeof(admin2), "%s", ps.admin_dsn);
	assert_non_null(p = strstr(admin2, "dbname=cpx "));
	memmove(p + strlen("dbname=cpx2"), p + strlen("dbname=cpx"),
	    strlen(p + strlen("dbname=cpx")) + 1);
	memcpy(p, "dbname=cpx2", strlen("dbname=cpx2"));
	init_db(admin2);
	if (audit_tool("import2", (const char *const []){ "import", "--dsn",
	    admin2, "--ca", testpki_file("ca.pem"), "--crl", testpki_file("crl.pem"),
	    "--multi-broker", out1, NULL }) != 0)
		fail_msg("cpx-audit import of the export failed");
	path(out2, sizeof(out2), "export2");
	if (audit_tool("export", (const char *const []){ "export", "--dsn",
	    admin2, out2, NULL }) != 0)
		fail_msg("cpx-audit export of the second database failed");
	head_line("export", "head: ", head2, sizeof(head2));
	assert_string_equal(head1, head2);
	same_files(out1, out2);
	print_message("import of the export, exported again: %s, the same "
	    "files\n", head2);
	json_decref(acks);
}

/* --- 6. a commit the database holds ----------------------------- */

/*
 * The broker's loop never waits for the database. An administrator's
 * transaction locks the head row's table, so A's next commit waits on
 * it (as it would behind a primary waiting for a lost standby). While
 * it waits, A goes on serving: a replay of the history on A, read on
 * the cursor connection, runs to its end; /metrics answers and shows
 * the commit waiting (cpx_commit_inflight_seconds). When the lock goes,
 * the publish is acknowledged, and the gauge is back to 0.
 */
static void
test_commit_held(void **state)
{
	struct cpx_client *c;
	struct cpx_result res;
	struct testalert ta;
	struct pg_conn *adm;
	json_t *acks;
	char err[600], out[300], rerr[300], *body;
	uint64_t rid;
	int64_t t0;
	double held;
	size_t i;
	int port, rc;
	pid_t rp;

	(void)state;
	start_pg(0);
	start_broker(0);
	port = testhttp_metrics_port(&tbs[0]);
	acks = json_object();
	c = testbroker_connect(&tbs[0], "si-ncp", 0, err, sizeof(err));
	if (c == NULL)
		fail_msg("connect to A: %s", err);
	for (i = 0; i < 10; i++) {
		if (publish_one(c, "h-", i, &res) != 0)
			fail_msg("h-%zu: %s", i, res.text);
		add_ack(acks, "h-", i, res.seq);
	}

	assert_non_null(adm = pgserver_lock(&ps, "cpx_head"));
	testalert_init(&ta, "h-held", CPX__CATEGORY__CATEGORY_VEHICLE,
	    CPX__SEVERITY__SEVERITY_CRITICAL, CPX__HANDLING__HANDLING_NETWORK,
	    "", "held by the database");
	if (cpx_publish_send(c, &ta.alert, &rid, err, sizeof(err)) == -1)
		fail_msg("publish: %s", err);
	(void)cpx_client_run(c, 300);

	/* The loop serves a replay meanwhile: to its end, in seconds. */
	path(out, sizeof(out), "replay.out");
	path(rerr, sizeof(rerr), "replay.err");
	t0 = testutil_now_ms();
	rp = spawn("client/cpx", out, rerr, NULL, (const char *const []){
	    "replay", "--broker", tbs[0].endpoint, "--pki", testpki_file(""),
	    "--node", "hr-ncp", "--json", "--timeout", "20", NULL });
	wait_ok(rp, "replay", 20000);
	if (!cliproc_file_has(rerr, "end of replay")) {
		cliproc_show("replay", rerr);
		fail_msg("the replay on A did not end while A's commit waited");
	}
	print_message("commit held by a lock: a replay on the same broker "
	    "ended in %" PRId64 " ms meanwhile\n", testutil_now_ms() - t0);
	body = malloc(TESTHTTP_BODY_MAX);
	assert_non_null(body);
	assert_int_equal(testhttp_get(port, "/metrics", "", body), 200);
	held = testhttp_metric(body, "cpx_commit_inflight_seconds");
	if (held < 0.3)
		fail_msg("cpx_commit_inflight_seconds is %g while a commit "
		    "waits", held);
	/* Not answered yet: nothing acknowledged before COMMIT. */
	rc = cpx_client_run(c, 100);
	assert_true(rc >= 0);

	assert_int_equal(pgserver_unlock(&adm), 0);
	/* The held one was committed: the same bytes again, a duplicate. */
	if (cpx_publish(c, &ta.alert, 10000, &res) != 0 || !res.duplicate)
		fail_msg("h-held after the lock: %s (duplicate %d)", res.text,
		    res.duplicate);
	json_object_set_new(acks, "h-held", json_integer((json_int_t)res.seq));
	if (publish_one(c, "h-after-", 0, &res) != 0)
		fail_msg("after the lock: %s", res.text);
	add_ack(acks, "h-after-", 0, res.seq);
	assert_int_equal(testhttp_get(port, "/metrics", "", body), 200);
	if (testhttp_metric(body, "cpx_commit_inflight_seconds") > 0.2)
		fail_msg("cpx_commit_inflight_seconds stays %g after the "
		    "commit", testhttp_metric(body,
		    "cpx_commit_inflight_seconds"));
	print_message("cpx_commit_inflight_seconds was %.2f while held\n",
	    held);
	free(body);
	cpx_client_free(&c);
	stop_broker(0);
	check_log(ps.dsn, acks);
	json_decref(acks);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_two_brokers_feeds,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_kill_broker_storm,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_primary_failover,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_db_unreachable,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_export_import,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_commit_held, setup,
		    teardown),
	};

	if (getenv("CPX_TEST_FILTER") != NULL)
		cmocka_set_test_filter(getenv("CPX_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
