/*
 * test_failover.c: clients that fail over between brokers
 * (docs/failover.md). The library and the cpx CLI are given a list of
 * endpoints; brokers are real cpx-broker processes on 127.0.0.1. Two
 * brokers take over one audit directory in turn, as a standby on a shared
 * disk does: A is killed with SIGKILL in the middle of a `cpx publish
 * --stdin` storm, B is started on A's log on another port. Afterwards the
 * log is checked with the real cpx-audit (verify, and dump to count each
 * alert id) and the subscriber's output against the publisher's acks.
 * Waits are polls with a deadline, never sleeps.
 */
#include <sys/wait.h>

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
#include <unistd.h>

#include <cmocka.h>

#include <jansson.h>

#include "cliproc.h"
#include "cpx_client.h"
#include "harden_util.h"
#include "sign.h"
#include "testbroker.h"
#include "testpki.h"
#include "testutil.h"
#include "tlsctx.h"

#define STORM_DEFAULT	300	/* alerts in the publish storm */
#define KILL_AFTER	100	/* acks seen before broker A is killed */
#define PIPELINED	400	/* publishes in flight at once (library) */
#define PIPELINED_LATE	50	/* sent once A is gone: B must answer */
#define PIPELINED_ALL	(PIPELINED + PIPELINED_LATE)

static char dir[256];		/* this test's scratch directory */
/* What a test started, so that teardown ends it even after a failure. */
static struct testbroker tbs[2];
static pid_t kids[4];
static const char *pins;	/* broker pins for client(), or NULL */

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

/* An endpoint nothing listens on: a port bound, then closed. */
static void
dead_endpoint(char *out, size_t len)
{
	struct testbroker tb;

	assert_int_equal(testbroker_start(&tb, NULL, NULL), 0);
	snprintf(out, len, "%s", tb.endpoint);
	assert_int_equal(testbroker_cleanup(&tb), 0);
}

/* A library client of node `node` for the endpoint list `eps`. */
static struct cpx_client *
client(const char *eps, const char *node, const char *names, char *err,
    size_t errlen)
{
	struct cpx_client_config cfg;
	char cert[128], key[128];

	snprintf(cert, sizeof(cert), "nodes/%s.pem", node);
	snprintf(key, sizeof(key), "nodes/%s.key", node);
	memset(&cfg, 0, sizeof(cfg));
	cfg.endpoint = eps;
	cfg.ca = testpki_file("ca.pem");
	cfg.crl = testpki_file("crl.pem");
	cfg.cert = testpki_file(cert);
	cfg.key = testpki_file(key);
	cfg.broker_name = names;
	cfg.broker_pin = pins;
	cfg.reconnect = 1;
	return cpx_client_new(&cfg, err, errlen);
}

static int
setup(void **state)
{
	(void)state;
	return testutil_mkdtemp(dir, sizeof(dir));
}

static int
teardown(void **state)
{
	size_t i;

	(void)state;
	pins = NULL;
	for (i = 0; i < sizeof(kids) / sizeof(kids[0]); i++)
		if (kids[i] > 0)
			(void)wait_exit(kids[i], 0);
	for (i = 0; i < sizeof(tbs) / sizeof(tbs[0]); i++)
		testbroker_discard(&tbs[i]);
	if (getenv("CPX_KEEP_TEST_DIRS") == NULL && testutil_rmrf(dir) == -1)
		fprintf(stderr, "cannot remove %s\n", dir);
	return 0;
}

/*
 * The log in audit_dir: cpx-audit verify --ca passes, and each of the n
 * ids "<prefix><i>" is in exactly one alert-accepted record, with the seq
 * its publisher was acknowledged (seqs[i]).
 */
static void
check_log(const char *audit_dir, const char *prefix, const uint64_t *seqs,
    size_t n)
{
	char out[300], err[300], want[64];
	const char *id;
	json_t *recs, *o;
	size_t i, k, *times = NULL;
	int rc;

	snprintf(out, sizeof(out), "%s/audit.out", dir);
	snprintf(err, sizeof(err), "%s/audit.err", dir);
	rc = wait_exit(spawn("broker/cpx-audit", out, err, NULL,
	    (const char *const []){ "verify", "--ca", testpki_file("ca.pem"), "--crl",
	    testpki_file("crl.pem"), audit_dir, NULL }), 60000);
	if (rc != 0) {
		cliproc_show("cpx-audit verify", out);
		cliproc_show("cpx-audit verify stderr", err);
		fail_msg("cpx-audit verify exited %d", rc);
	}
	rc = wait_exit(spawn("broker/cpx-audit", out, err, NULL,
	    (const char *const []){ "dump", audit_dir, NULL }), 60000);
	assert_int_equal(rc, 0);
	assert_non_null(times = calloc(n, sizeof(*times)));
	recs = cliproc_load_lines(out);
	json_array_foreach(recs, k, o) {
		id = json_string_value(json_object_get(o, "alert_id"));
		if (id == NULL || strncmp(id, prefix, strlen(prefix)) != 0)
			continue;
		assert_string_equal(json_string_value(json_object_get(o,
		    "kind")), "alert-accepted");
		i = (size_t)strtoul(id + strlen(prefix), NULL, 10);
		snprintf(want, sizeof(want), "%s%zu", prefix, i);
		assert_string_equal(id, want);
		assert_true(i < n);
		times[i]++;
		if ((uint64_t)json_integer_value(json_object_get(o, "seq")) !=
		    seqs[i])
			fail_msg("%s at seq %" PRId64 " in the log, acked as %"
			    PRIu64, id, (int64_t)json_integer_value(
			    json_object_get(o, "seq")), seqs[i]);
	}
	for (i = 0; i < n; i++)
		if (times[i] != 1)
			fail_msg("%s%zu is in the log %zu times", prefix, i,
			    times[i]);
	json_decref(recs);
	free(times);
}

/* --- the list itself ------------------------------------------------ */

/* A list that cannot be right is refused at once, naming what to fix. */
static void
test_list_refused(void **state)
{
	struct cpx_client *c;
	char err[400];

	(void)state;
	c = client("tcp://127.0.0.1:1,,tcp://127.0.0.1:2", "si-ncp", NULL,
	    err, sizeof(err));
	assert_null(c);
	if (strstr(err, "item 2 is empty") == NULL)
		fail_msg("empty item: %s", err);
	c = client("tcp://127.0.0.1:1,tcp://127.0.0.1:2", "si-ncp",
	    "a.example,b.example,c.example", err, sizeof(err));
	assert_null(c);
	if (strstr(err, "has 3 items for 2 broker endpoints") == NULL)
		fail_msg("names: %s", err);
	c = client("tcp://127.0.0.1:1,nohost", "si-ncp", NULL, err,
	    sizeof(err));
	assert_null(c);
	if (strstr(err, "nohost: no host in the broker endpoint") == NULL)
		fail_msg("no host: %s", err);
	{
		char many[1024] = "";
		size_t i;

		for (i = 0; i < 17; i++)
			snprintf(many + strlen(many), sizeof(many) -
			    strlen(many), "%stcp://127.0.0.1:%zu", i ? "," : "",
			    i + 1);
		c = client(many, "si-ncp", NULL, err, sizeof(err));
		assert_null(c);
		if (strstr(err, "more than 16 endpoints") == NULL)
			fail_msg("17 endpoints: %s", err);
	}
	/* One name for all, or one per endpoint: both accepted. */
	c = client("tcp://127.0.0.1:1,tcp://127.0.0.1:2", "si-ncp",
	    "localhost", err, sizeof(err));
	assert_non_null(c);
	cpx_client_free(&c);
	c = client("tcp://127.0.0.1:1, tcp://127.0.0.1:2", "si-ncp",
	    "localhost, 127.0.0.1", err, sizeof(err));
	assert_non_null(c);
	assert_string_equal(cpx_client_endpoint(c), "tcp://127.0.0.1:1");
	cpx_client_free(&c);
}

/* (a) The first endpoint is down: the second is used at once. */
static void
test_first_down(void **state)
{
	struct testbroker *tb = &tbs[0];
	struct cpx_client *c;
	char dead[64], dead2[64], eps[200], err[600], out[300], errf[300];
	int64_t t0;
	int took;

	(void)state;
	dead_endpoint(dead, sizeof(dead));
	dead_endpoint(dead2, sizeof(dead2));
	assert_int_equal(testbroker_start(tb, NULL, NULL), 0);
	snprintf(eps, sizeof(eps), "%s,%s", dead, tb->endpoint);
	c = client(eps, "si-ncp", NULL, err, sizeof(err));
	assert_non_null(c);
	t0 = testutil_now_ms();
	if (cpx_client_connect(c, 10000, err, sizeof(err)) == -1)
		fail_msg("connect through %s: %s", eps, err);
	took = (int)(testutil_now_ms() - t0);
	if (took > 3000)
		fail_msg("the second endpoint took %d ms", took);
	assert_string_equal(cpx_client_endpoint(c), tb->endpoint);
	cpx_client_free(&c);

	/* The CLI alike: whoami names the broker it reached. */
	snprintf(out, sizeof(out), "%s/whoami.out", dir);
	snprintf(errf, sizeof(errf), "%s/whoami.err", dir);
	assert_int_equal(wait_exit(spawn("client/cpx", out, errf, NULL,
	    (const char *const []){ "whoami", "--broker", eps, "--pki",
	    testpki_file(""), "--node", "si-ncp", NULL }), 30000), 0);
	if (!cliproc_file_has(out, tb->endpoint)) {
		cliproc_show("whoami", out);
		fail_msg("whoami does not name %s", tb->endpoint);
	}

	/* A single cpx publish moves on the same way. */
	assert_int_equal(wait_exit(spawn("client/cpx", out, errf, NULL,
	    (const char *const []){ "publish", "--broker", eps, "--pki",
	    testpki_file(""), "--node", "si-ncp", "--category", "vehicle",
	    "--severity", "low", "--summary", "through the second", NULL }),
	    30000), 0);
	if (!cliproc_file_has(out, "accepted: seq ")) {
		cliproc_show("cpx publish", errf);
		fail_msg("cpx publish through %s: not accepted", eps);
	}

	/* Every endpoint down: said at once, endpoint by endpoint. */
	snprintf(eps, sizeof(eps), "%s,%s", dead, dead2);
	t0 = testutil_now_ms();
	assert_int_equal(wait_exit(spawn("client/cpx", out, errf, NULL,
	    (const char *const []){ "whoami", "--broker", eps, "--pki",
	    testpki_file(""), "--node", "si-ncp", NULL }), 30000), 3);
	took = (int)(testutil_now_ms() - t0);
	if (!cliproc_file_has(errf, "no session with any of the 2 brokers") ||
	    !cliproc_file_has(errf, dead) || !cliproc_file_has(errf, dead2) ||
	    !cliproc_file_has(errf, "Connection refused")) {
		cliproc_show("whoami", errf);
		fail_msg("all down: not named endpoint by endpoint");
	}
	if (took > 5000)
		fail_msg("all down took %d ms", took);
	assert_int_equal(testbroker_cleanup(tb), 0);
}

/* --- the storm ---------------------------------------------------- */

/*
 * (b) kill -9 of broker A during a `cpx publish --stdin` storm from
 * si-ncp while hr-ncp subscribes with a state file through both
 * endpoints; B, a standby on A's audit directory and another port,
 * starts after the kill. The publisher fails over and finishes; every
 * acknowledged id is in the log exactly once; the subscriber sees every
 * alert of its feed, in seq order, with no gap.
 */
static void
test_storm_failover(void **state)
{
	struct testbroker *a = &tbs[0], *b = &tbs[1];
	char eps[200], in[300], pout[300], perr[300], sout[300], serr[300];
	char state_f[300], id[64], count_s[16], *t;
	json_t *acks, *subs, *o;
	uint64_t *ack_seq = NULL, *log_seq = NULL, seq, prev = 0, repeats = 0;
	uint64_t acked_dup = 0;
	size_t i, k, n = STORM_DEFAULT, at_kill;
	pid_t pub, sub;
	FILE *f;
	int rc;

	(void)state;
	if (getenv("CPX_TEST_FAILOVER_STORM") != NULL)
		n = (size_t)atoi(getenv("CPX_TEST_FAILOVER_STORM"));
	assert_true(n > KILL_AFTER && n < 100000);
	assert_int_equal(testbroker_start(a, NULL, NULL), 0);
	/* B: its own port and directory, A's audit log; down for now. */
	assert_int_equal(testbroker_start(b, NULL, NULL), 0);
	assert_int_equal(testbroker_stop(b, SIGTERM), 0);
	assert_int_equal(harden_set_conf(b, "audit_dir", a->audit), 0);
	snprintf(eps, sizeof(eps), "%s,%s", a->endpoint, b->endpoint);

	snprintf(in, sizeof(in), "%s/alerts.jsonl", dir);
	assert_non_null(f = fopen(in, "w"));
	for (i = 0; i < n; i++)
		fprintf(f, "{\"id\":\"fo-%zu\",\"category\":\"vehicle\","
		    "\"severity\":\"low\",\"summary\":\"failover %zu\"}\n",
		    i, i);
	assert_int_equal(fclose(f), 0);

	/* The subscriber first: it must be subscribed before the storm. */
	snprintf(sout, sizeof(sout), "%s/sub.out", dir);
	snprintf(serr, sizeof(serr), "%s/sub.err", dir);
	snprintf(state_f, sizeof(state_f), "%s/hr.seq", dir);
	snprintf(count_s, sizeof(count_s), "%zu", n);
	sub = spawn("client/cpx", sout, serr, NULL, (const char *const []){
	    "subscribe", "-v", "--broker", eps, "--pki", testpki_file(""), "--node",
	    "hr-ncp", "--from", "SI", "--json", "--state-file", state_f,
	    "--count", count_s, "--timeout", "120", NULL });
	assert_true(sub > 0);
	for (i = 0; i < 3000 && !cliproc_file_has(serr, "subscribed"); i++)
		usleep(10000);	/* polling interval */
	if (!cliproc_file_has(serr, "subscribed")) {
		cliproc_show("subscriber", serr);
		fail_msg("the subscriber never subscribed");
	}

	snprintf(pout, sizeof(pout), "%s/pub.out", dir);
	snprintf(perr, sizeof(perr), "%s/pub.err", dir);
	pub = spawn("client/cpx", pout, perr, in, (const char *const []){
	    "publish", "-v", "--broker", eps, "--pki", testpki_file(""), "--node",
	    "si-ncp", "--stdin", "--json", "--timeout", "30", NULL });
	assert_true(pub > 0);
	if (!cliproc_wait_lines(pout, KILL_AFTER, 60000)) {
		cliproc_show("publisher", perr);
		fail_msg("the storm did not start");
	}
	/* A dies in the middle of the storm; B takes over its log. */
	assert_int_equal(testbroker_stop(a, SIGKILL) & 0x7f, SIGKILL);
	if ((at_kill = cliproc_count_lines(pout)) >= n)
		fail_msg("the storm ended before the kill: raise "
		    "CPX_TEST_FAILOVER_STORM");
	assert_int_equal(testbroker_restart(b), 0);

	rc = wait_exit(pub, 90000);
	if (rc != 0) {
		cliproc_show("publisher stderr", perr);
		fail_msg("cpx publish --stdin exited %d", rc);
	}
	rc = wait_exit(sub, 90000);
	if (rc != 0) {
		cliproc_show("subscriber stderr", serr);
		cliproc_show("broker B", b->log);
		fail_msg("cpx subscribe exited %d", rc);
	}
	if (!cliproc_file_has(perr, "connected to " ) ||
	    !cliproc_file_has(serr, "connected again to ")) {
		cliproc_show("publisher stderr", perr);
		cliproc_show("subscriber stderr", serr);
	}
	assert_true(cliproc_file_has(serr, "connected again to "));
	assert_true(cliproc_file_has(serr, b->endpoint));

	/* The publisher: one result per alert, each accepted once. */
	acks = cliproc_load_lines(pout);
	assert_int_equal(json_array_size(acks), n);
	assert_non_null(ack_seq = calloc(n, sizeof(*ack_seq)));
	assert_non_null(log_seq = calloc(n, sizeof(*log_seq)));
	json_array_foreach(acks, i, o) {
		assert_string_equal(json_string_value(json_object_get(o,
		    "result")), "accepted");
		assert_int_equal(json_integer_value(json_object_get(o, "line")),
		    i + 1);
		snprintf(id, sizeof(id), "fo-%zu", i);
		assert_string_equal(json_string_value(json_object_get(o, "id")),
		    id);
		ack_seq[i] = (uint64_t)json_integer_value(json_object_get(o,
		    "seq"));
		log_seq[i] = ack_seq[i];
		assert_true(ack_seq[i] > 0);
		/* Accepted by A, acknowledged by B from the same log. */
		if (json_is_true(json_object_get(o, "duplicate")))
			acked_dup++;
		for (k = 0; k < i; k++)
			assert_true(ack_seq[k] != ack_seq[i]);
	}
	assert_true(acked_dup <= 1);

	/*
	 * The subscriber: every alert of its feed (hr-ncp gets every SI
	 * alert of handling network) in seq order, none at or below one it
	 * had recorded, none missing.
	 */
	subs = cliproc_load_lines(sout);
	json_array_foreach(subs, i, o) {
		seq = (uint64_t)json_integer_value(json_object_get(o, "seq"));
		if (seq <= prev) {
			repeats++;	/* at least once: counted, bounded */
			continue;
		}
		prev = seq;
		t = (char *)json_string_value(json_object_get(o, "id"));
		assert_non_null(t);
		assert_int_equal(strncmp(t, "fo-", 3), 0);
		k = (size_t)strtoul(t + 3, NULL, 10);
		assert_true(k < n);
		if (ack_seq[k] != seq)
			fail_msg("subscriber: %s at seq %" PRIu64 ", acked at %"
			    PRIu64, t, seq, ack_seq[k]);
		ack_seq[k] = 0;	/* seen */
	}
	for (k = 0; k < n; k++)
		if (ack_seq[k] != 0)
			fail_msg("subscriber never saw fo-%zu (seq %" PRIu64
			    ")", k, ack_seq[k]);
	assert_int_equal(repeats, 0);	/* cpx subscribe drops repeats */
	assert_int_equal(json_array_size(subs), n);
	/* The state file holds the last seq handled. */
	t = testutil_read_text(state_f);
	assert_non_null(t);
	assert_int_equal(strtoull(t, NULL, 10), prev);
	free(t);
	print_message("storm: %zu alerts, A killed after %zu acks, %" PRIu64
	    " acked as a repeat after the failover, subscriber saw %zu "
	    "lines, %" PRIu64 " repeats\n", n, at_kill, acked_dup,
	    json_array_size(subs), repeats);
	json_decref(acks);
	json_decref(subs);

	/* The log: sound, and every id in it once, at its acked seq. */
	assert_int_equal(testbroker_stop(b, SIGTERM), 0);
	check_log(a->audit, "fo-", log_seq, n);
	free(log_seq);
	free(ack_seq);
	assert_int_equal(testbroker_cleanup(b), 0);
	/* A's directory holds the log B took over: removed last. */
	a->pid = 0;
	assert_int_equal(testbroker_cleanup(a), 0);
}

/* Acks of pipelined publishes, by alert id "pl-<i>". */
struct acks {
	uint64_t	seq[PIPELINED_ALL];
	size_t		answered;
	size_t		duplicates;
	size_t		errors;
	size_t		connected;
};

static void
on_ack(const struct cpx_event *ev, void *arg)
{
	struct acks *ak = arg;
	size_t i;

	if (ev->kind == CPX_EV_CONNECTED)
		ak->connected++;
	if (ev->kind == CPX_EV_ERROR && ev->request_id != 0)
		ak->errors++;
	if (ev->kind != CPX_EV_ACK || ev->alert_id == NULL ||
	    strncmp(ev->alert_id, "pl-", 3) != 0)
		return;
	i = (size_t)strtoul(ev->alert_id + 3, NULL, 10);
	if (i >= PIPELINED_ALL || ak->seq[i] != 0) {
		fail_msg("a second answer for %s", ev->alert_id);
		return;
	}
	ak->seq[i] = ev->seq;
	ak->answered++;
	ak->duplicates += ev->duplicate != 0;
}

/* Send alert pl-i without waiting for its answer. */
static void
send_pipelined(struct cpx_client *c, struct testalert *ta, size_t i)
{
	char id[32], err[600];
	uint64_t rid;

	snprintf(id, sizeof(id), "pl-%zu", i);
	testalert_init(ta, id, CPX__CATEGORY__CATEGORY_VEHICLE,
	    CPX__SEVERITY__SEVERITY_LOW, CPX__HANDLING__HANDLING_NETWORK, "",
	    "pipelined");
	if (cpx_publish_send(c, &ta->alert, &rid, err, sizeof(err)) != 0)
		fail_msg("publish %s: %s", id, err);
}

/*
 * The library with publishes in flight: PIPELINED alerts sent without
 * waiting, A killed once some are answered, B started on its log. Every
 * alert not answered is sent again (same bytes) and answered once, those
 * A had committed as duplicates with their seq; the log has each once.
 */
static void
test_pipelined_failover(void **state)
{
	struct testbroker *a = &tbs[0], *b = &tbs[1];
	struct testalert ta;
	struct cpx_client *c;
	struct acks ak;
	char eps[200], err[600];
	int64_t until;
	size_t i, at_kill;

	(void)state;
	memset(&ak, 0, sizeof(ak));
	assert_int_equal(testbroker_start(a, NULL, NULL), 0);
	assert_int_equal(testbroker_start(b, NULL, NULL), 0);
	assert_int_equal(testbroker_stop(b, SIGTERM), 0);
	assert_int_equal(harden_set_conf(b, "audit_dir", a->audit), 0);
	snprintf(eps, sizeof(eps), "%s,%s", a->endpoint, b->endpoint);
	c = client(eps, "si-ncp", NULL, err, sizeof(err));
	assert_non_null(c);
	if (cpx_client_connect(c, 10000, err, sizeof(err)) == -1)
		fail_msg("connect: %s", err);
	cpx_client_on_event(c, on_ack, &ak);
	for (i = 0; i < PIPELINED; i++)
		send_pipelined(c, &ta, i);
	until = testutil_now_ms() + 30000;
	/* Kill early: most publishes still in flight, some committed. */
	while (ak.answered < PIPELINED / 10 && testutil_now_ms() < until)
		assert_int_equal(cpx_client_run(c, 0), 0);
	at_kill = ak.answered;
	assert_int_equal(testbroker_stop(a, SIGKILL) & 0x7f, SIGKILL);
	/*
	 * A fast broker may have answered all of them in the last run:
	 * these are in flight when the session is found lost, whatever.
	 */
	for (i = PIPELINED; i < PIPELINED_ALL; i++)
		send_pipelined(c, &ta, i);
	assert_int_equal(testbroker_restart(b), 0);
	until = testutil_now_ms() + 60000;
	while (ak.answered + ak.errors < PIPELINED_ALL &&
	    testutil_now_ms() < until)
		assert_int_equal(cpx_client_run(c, 100), 0);
	assert_int_equal(ak.errors, 0);
	assert_int_equal(ak.answered, PIPELINED_ALL);
	assert_int_equal(cpx_publish_inflight(c), 0);
	assert_string_equal(cpx_client_endpoint(c), b->endpoint);
	assert_int_equal(ak.connected, 1);	/* the failover's Welcome */
	print_message("pipelined: %d alerts, %zu answered before the kill, "
	    "%zu answered as duplicates by B\n", PIPELINED_ALL, at_kill,
	    ak.duplicates);
	cpx_client_free(&c);
	assert_int_equal(testbroker_stop(b, SIGTERM), 0);
	check_log(a->audit, "pl-", ak.seq, PIPELINED_ALL);
	assert_int_equal(testbroker_cleanup(b), 0);
	assert_int_equal(testbroker_cleanup(a), 0);
}

/* --- who the second broker is --------------------------------------- */

struct logcap {
	char	text[4096];
};

static void
on_log(int prio, const char *line, void *arg)
{
	struct logcap *lc = arg;
	size_t used = strlen(lc->text);

	(void)prio;
	snprintf(lc->text + used, sizeof(lc->text) - used, "%s\n", line);
}

/*
 * (c) The first broker was fine; the second endpoint's broker has a
 * certificate for another name. After A goes, the client moves to it
 * and refuses it: nothing is published there, and the operator is told
 * which endpoint and why.
 */
static void
test_wrong_second(void **state)
{
	struct testbroker *a = &tbs[0], *e = &tbs[1];
	struct testalert ta;
	struct cpx_result res;
	struct cpx_client *c;
	struct logcap lc;
	char eps[200], err[600], cert[512], key[512], want[300];
	char out[300], errf[300], dead[64];

	(void)state;
	memset(&lc, 0, sizeof(lc));
	assert_int_equal(testbroker_start(a, NULL, NULL), 0);
	assert_int_equal(testbroker_start(e, NULL, NULL), 0);
	snprintf(cert, sizeof(cert), "%s", testpki_file("brokers/evil-broker.pem"));
	snprintf(key, sizeof(key), "%s", testpki_file("brokers/evil-broker.key"));
	assert_int_equal(harden_set_conf(e, "cert", cert), 0);
	assert_int_equal(harden_set_conf(e, "key", key), 0);
	assert_int_equal(testbroker_restart(e), 0);
	snprintf(eps, sizeof(eps), "%s,%s", a->endpoint, e->endpoint);

	c = client(eps, "si-ncp", NULL, err, sizeof(err));
	assert_non_null(c);
	if (cpx_client_connect(c, 10000, err, sizeof(err)) == -1)
		fail_msg("connect: %s", err);
	assert_string_equal(cpx_client_endpoint(c), a->endpoint);
	testalert_init(&ta, NULL, CPX__CATEGORY__CATEGORY_VEHICLE,
	    CPX__SEVERITY__SEVERITY_LOW, CPX__HANDLING__HANDLING_NETWORK, "",
	    "before A goes");
	if (cpx_publish(c, &ta.alert, 10000, &res) == -1)
		fail_msg("publish through A: %s", res.text);

	cpx_set_log_callback(on_log, &lc);
	assert_int_equal(testbroker_stop(a, SIGKILL) & 0x7f, SIGKILL);
	testalert_init(&ta, NULL, CPX__CATEGORY__CATEGORY_VEHICLE,
	    CPX__SEVERITY__SEVERITY_LOW, CPX__HANDLING__HANDLING_NETWORK, "",
	    "after A went");
	assert_int_equal(cpx_publish(c, &ta.alert, 3000, &res), -1);
	cpx_set_log_callback(NULL, NULL);
	snprintf(want, sizeof(want), "this node refuses the broker: the "
	    "broker's certificate is for 'evil.example', not '127.0.0.1' "
	    "(at %s); not using that endpoint again", e->endpoint);
	if (strstr(lc.text, want) == NULL)
		fail_msg("log says \"%s\", not \"%s\"", lc.text, want);
	/* Said once, not at every round. */
	assert_ptr_equal(strstr(strstr(lc.text, want) + 1, want), NULL);
	cpx_client_free(&c);
	/* The impostor never had a session, nor an alert. */
	assert_int_equal(testbroker_log_count(e, "session opened"), 0);

	/* The CLI: A down, the impostor second; both named, exit 3. */
	dead_endpoint(dead, sizeof(dead));
	snprintf(eps, sizeof(eps), "%s,%s", dead, e->endpoint);
	snprintf(out, sizeof(out), "%s/pub.out", dir);
	snprintf(errf, sizeof(errf), "%s/pub.err", dir);
	assert_int_equal(wait_exit(spawn("client/cpx", out, errf, NULL,
	    (const char *const []){ "publish", "--broker", eps, "--pki",
	    testpki_file(""), "--node", "si-ncp", "--category", "vehicle",
	    "--severity", "low", "--summary", "never sent", NULL }), 30000),
	    3);
	if (!cliproc_file_has(errf, "Connection refused") ||
	    !cliproc_file_has(errf, "is for 'evil.example'")) {
		cliproc_show("cpx publish", errf);
		fail_msg("both endpoints not named");
	}
	assert_int_equal(testbroker_log_count(e, "session opened"), 0);
	a->pid = 0;
	assert_int_equal(testbroker_cleanup(a), 0);
	assert_int_equal(testbroker_cleanup(e), 0);
}

/*
 * Brokers A and B, both with the network's broker certificate; a client
 * through A then B with these names and pins, A killed: B is refused
 * for `why` (named in the log with its endpoint), and never has a
 * session.
 */
static void
second_refused(const char *names, const char *why)
{
	struct testbroker *a = &tbs[0], *b = &tbs[1];
	struct testalert ta;
	struct cpx_result res;
	struct cpx_client *c;
	struct logcap lc;
	char eps[200], err[600], want[300];

	memset(&lc, 0, sizeof(lc));
	assert_int_equal(testbroker_start(a, NULL, NULL), 0);
	assert_int_equal(testbroker_start(b, NULL, NULL), 0);
	snprintf(eps, sizeof(eps), "%s,%s", a->endpoint, b->endpoint);
	c = client(eps, "si-ncp", names, err, sizeof(err));
	if (c == NULL)
		fail_msg("client: %s", err);
	if (cpx_client_connect(c, 10000, err, sizeof(err)) == -1)
		fail_msg("connect: %s", err);
	assert_string_equal(cpx_client_endpoint(c), a->endpoint);
	cpx_set_log_callback(on_log, &lc);
	assert_int_equal(testbroker_stop(a, SIGKILL) & 0x7f, SIGKILL);
	testalert_init(&ta, NULL, CPX__CATEGORY__CATEGORY_VEHICLE,
	    CPX__SEVERITY__SEVERITY_LOW, CPX__HANDLING__HANDLING_NETWORK, "",
	    "not for B");
	assert_int_equal(cpx_publish(c, &ta.alert, 2500, &res), -1);
	cpx_set_log_callback(NULL, NULL);
	snprintf(want, sizeof(want), "this node refuses the broker: %s (at "
	    "%s)", why, b->endpoint);
	if (strstr(lc.text, want) == NULL)
		fail_msg("log says \"%s\", not \"%s\"", lc.text, want);
	cpx_client_free(&c);
	assert_int_equal(testbroker_log_count(b, "session opened"), 0);
	assert_int_equal(testbroker_cleanup(b), 0);
	assert_int_equal(testbroker_cleanup(a), 0);
}

/*
 * Names and pins are per endpoint: the second item of each list is what
 * the second broker is held to (a single name or pin would let it in).
 */
static void
test_names_pins(void **state)
{
	char good[65], bad[65], list[200], err[300];
	uint8_t h[32];
	X509 *x;

	(void)state;
	second_refused("localhost,cpx-b.example", "the broker's certificate "
	    "is for 'localhost', '127.0.0.1', not 'cpx-b.example'");
	x = tlsctx_load_cert(testpki_file("broker.pem"), err, sizeof(err));
	assert_non_null(x);
	assert_int_equal(tlsctx_spki_sha256(x, h), 0);
	X509_free(x);
	sign_hex(h, sizeof(h), good);
	h[0] ^= 1;
	sign_hex(h, sizeof(h), bad);
	snprintf(list, sizeof(list), "%s,sha256:%s", good, bad);
	pins = list;
	second_refused(NULL, "the broker's key is not the pinned one "
	    "(broker pin)");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_list_refused, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_first_down, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_wrong_second, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_names_pins, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_storm_failover, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_pipelined_failover,
		    setup, teardown),
	};
	const char *only = getenv("CPX_TEST_FILTER");

	if (only != NULL)
		cmocka_set_test_filter(only);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
