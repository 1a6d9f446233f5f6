/*
 * test_cli.c: tests the command-line client cpx as an operator runs it:
 * the real binary ($CPX_BINARY_DIR/client/cpx) in child processes against
 * a real broker (tests/util/testbroker.h) with the shared test PKI, its
 * output in files of a mkdtemp() directory, parsed with jansson. Also the
 * CLI's state file and argument parsers in-process, and cpx-pki's exit
 * codes. The state file's crash case runs cpx under strace, which kills
 * it at the file's rename. Waits are polls with a deadline, never sleeps.
 */
#include <sys/stat.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
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

#include "alert.h"
#include "alert_json.h"
#include "cli.h"
#include "cliproc.h"
#include "fakebroker.h"
#include "sign.h"
#include "testbroker.h"
#include "testpki.h"
#include "testutil.h"

#define RUN_TIMEOUT_MS	60000
#define MAX_ARGS	48

struct fx {
	struct testbroker	 tb;
	int			 broker_ok;
	char			 dir[256];
	char			 exe[512];
	char			 out[300];
	char			 err[300];
};

static struct fx *g;

static int
group_setup(void **state)
{
	const char *pki;

	(void)state;
	if ((g = calloc(1, sizeof(*g))) == NULL)
		return -1;
	(void)cliproc_exe(g->exe, sizeof(g->exe), "client/cpx");
	if (testpki_get(&pki) == -1)
		return -1;
	if (testbroker_start(&g->tb, NULL, NULL) == 0)
		g->broker_ok = 1;
	/* The children find broker and node in the environment. */
	setenv("CPX_BROKER", g->tb.endpoint, 1);
	setenv("CPX_PKI", pki, 1);
	setenv("CPX_NODE", "si-ncp", 1);
	return 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	if (g != NULL) {
		assert_int_equal(testbroker_cleanup(&g->tb), 0);
		free(g);
		g = NULL;
	}
	return 0;
}

static int
setup(void **state)
{
	(void)state;
	assert_int_equal(testutil_mkdtemp(g->dir, sizeof(g->dir)), 0);
	snprintf(g->out, sizeof(g->out), "%s/out", g->dir);
	snprintf(g->err, sizeof(g->err), "%s/err", g->dir);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	if (getenv("CPX_KEEP_TEST_DIRS") == NULL &&
	    testutil_rmrf(g->dir) == -1)
		fprintf(stderr, "cannot remove %s\n", g->dir);
	return 0;
}

static void
need_broker(void)
{
	if (!g->broker_ok)
		fail_msg("the test broker did not start (see its log above)");
}

/* Start cpx with args (NULL-terminated), stdout/stderr to files. */
static pid_t
spawn_cpx(const char *out, const char *err, const char *in,
    const char *const *args)
{
	return cliproc_spawn(g->exe, out, err, in, args, NULL, 0);
}

/* Wait for pid (polling, with a deadline); its exit code, or -1. */
static int
wait_cpx(pid_t pid, int timeout_ms)
{
	return cliproc_wait(pid, timeout_ms, NULL, 0);
}

static int
run_in(const char *in, const char *const *args)
{
	pid_t pid = spawn_cpx(g->out, g->err, in, args);

	assert_true(pid > 0);
	return wait_cpx(pid, RUN_TIMEOUT_MS);
}

#define RUN(...)	\
	run_in(NULL, (const char *const []){ __VA_ARGS__, NULL })

static void
show_output(void)
{
	char *o = testutil_read_text(g->out), *e = testutil_read_text(g->err);

	fprintf(stderr, "---- cpx stdout ----\n%s---- cpx stderr ----\n%s"
	    "----\n", o ? o : "", e ? e : "");
	free(o);
	free(e);
}

static void
expect_exit(int got, int want)
{
	if (got != want) {
		show_output();
		fail_msg("cpx exited %d, expected %d", got, want);
	}
}

/* stdout contains s (stdout when which is 1, stderr when 2). */
static void
expect_in(int which, const char *s)
{
	char *t = testutil_read_text(which == 1 ? g->out : g->err);

	assert_non_null(t);
	if (strstr(t, s) == NULL) {
		show_output();
		fail_msg("expected \"%s\" in cpx %s", s, which == 1 ?
		    "stdout" : "stderr");
	}
	free(t);
}

/* Parse "accepted: seq N id ID" from stdout. */
static uint64_t
accepted_seq(char *id, size_t idlen)
{
	char *t = testutil_read_text(g->out), idbuf[80];
	unsigned long long seq = 0;

	assert_non_null(t);
	if (sscanf(t, "accepted: seq %llu id %79s", &seq, idbuf) != 2) {
		show_output();
		fail_msg("no \"accepted: seq N id ID\" line");
	}
	free(t);
	if (id != NULL)
		snprintf(id, idlen, "%s", idbuf);
	return seq;
}

/* Publish a small network alert as node; returns its seq. */
static uint64_t
publish_as(const char *node, const char *summary, char *id, size_t idlen)
{
	expect_exit(RUN("publish", "--node", node, "--category", "route",
	    "--severity", "medium", "--summary", summary), 0);
	return accepted_seq(id, idlen);
}

/* Each line of a file as JSON; fails the test on a bad line. */
static json_t *
load_lines(const char *path)
{
	json_error_t jerr;
	json_t *arr = json_array(), *o;
	char *t = testutil_read_text(path), *line, *save = NULL;

	assert_non_null(arr);
	assert_non_null(t);
	for (line = strtok_r(t, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		o = json_loads(line, 0, &jerr);
		if (o == NULL) {
			show_output();
			fail_msg("not JSON: %s (%s)", line, jerr.text);
		}
		assert_int_equal(json_array_append_new(arr, o), 0);
	}
	free(t);
	return arr;
}

static uint64_t
jseq(json_t *o)
{
	return (uint64_t)json_integer_value(json_object_get(o, "seq"));
}

/* --- tests ------------------------------------------------------------ */

static void
test_help(void **state)
{
	(void)state;
	expect_exit(RUN("--help"), 0);
	expect_in(1, "Exit status");
	expect_in(1, "publish");
	expect_exit(RUN("publish", "--help"), 0);
	expect_in(1, "--vehicle");
	expect_in(1, "Examples:");
	expect_exit(RUN("subscribe", "--help"), 0);
	expect_in(1, "--state-file");
	expect_exit(RUN("replay", "--help"), 0);
	expect_in(1, "--all-kinds");
	expect_exit(RUN("whoami", "--help"), 0);
	expect_exit(RUN("frobnicate"), 2);
	expect_in(2, "unknown command");
}

static void
test_publish_flags(void **state)
{
	(void)state;
	need_broker();
	expect_exit(RUN("publish", "--category", "vehicle", "--severity",
	    "high", "--handling", "restricted", "--to", "western-balkans",
	    "--to", "HR,AT", "--summary", "White van loading persons",
	    "--place", "Obrezje", "--crossing", "Obrezje - Bregana",
	    "--lat", "45.8479", "--lon", "15.6915", "--route",
	    "Bregana,Obrezje", "--route", "Ljubljana", "--vehicle",
	    "LJ-AB-123:SI:white Mercedes Sprinter", "--vehicle", "KP-77",
	    "--persons", "15", "--expires", "+6h"), 0);
	expect_in(1, "accepted: seq ");
	assert_true(accepted_seq(NULL, 0) > 0);
}

static void
test_publish_file(void **state)
{
	char path[512], in[512];
	json_t *o;
	char *t;

	(void)state;
	need_broker();
	snprintf(path, sizeof(path), "%s/client/examples/"
	    "crossing-hr-network.json", getenv("CPX_SOURCE_DIR") ?
	    getenv("CPX_SOURCE_DIR") : CPX_SOURCE_DIR);
	expect_exit(RUN("publish", "--node", "hr-ncp", "--file", path), 0);
	expect_in(1, "accepted: seq ");

	/* From stdin, a flag overriding the file, --json output. */
	snprintf(in, sizeof(in), "%s/client/examples/"
	    "vehicle-si-to-western-balkans.json", getenv("CPX_SOURCE_DIR") ?
	    getenv("CPX_SOURCE_DIR") : CPX_SOURCE_DIR);
	expect_exit(run_in(in, (const char *const []){ "publish", "--file",
	    "-", "--severity", "low", "--id", "cli-file-1", "--json",
	    NULL }), 0);
	t = testutil_read_text(g->out);
	assert_non_null(t);
	o = json_loads(t, 0, NULL);
	free(t);
	assert_non_null(o);
	assert_true(json_integer_value(json_object_get(o, "seq")) > 0);
	assert_string_equal(json_string_value(json_object_get(o, "id")),
	    "cli-file-1");
	assert_true(json_is_false(json_object_get(o, "duplicate")));
	json_decref(o);

	/* The override took effect: replay shows severity low. */
	expect_exit(RUN("replay", "--json", "--node", "rs-ncp", "--from",
	    "SI", "--category", "vehicle"), 0);
	t = testutil_read_text(g->out);
	assert_non_null(strstr(t, "\"id\":\"cli-file-1\""));
	assert_non_null(strstr(t, "\"severity\":\"low\""));
	free(t);
}

static void
test_publish_refused(void **state)
{
	(void)state;
	need_broker();
	expect_exit(RUN("publish", "--category", "route", "--severity", "low",
	    "--to", "atlantis", "--summary", "to nowhere"), 1);
	expect_in(2, "refused (unknown-recipient)");
	/* named-only may not go to a region: the broker says so. */
	expect_exit(RUN("publish", "--category", "route", "--severity", "low",
	    "--handling", "named-only", "--to", "western-balkans",
	    "--summary", "named-only to a region"), 1);
	expect_in(2, "refused (");
}

static void
test_publish_usage(void **state)
{
	(void)state;
	expect_exit(RUN("publish", "--bogus"), 2);
	expect_in(2, "Try 'cpx publish --help'");
	expect_exit(RUN("publish", "--category", "route", "--summary", "x"),
	    2);
	expect_in(2, "severity");
	expect_exit(RUN("publish", "--category", "route", "--severity", "low",
	    "--summary", "x", "--lat", "45"), 2);
	expect_exit(RUN("publish", "--category", "route", "--severity", "low",
	    "--summary", "x", "--lat", "91", "--lon", "0"), 2);
	expect_exit(RUN("publish", "--category", "route", "--severity", "low",
	    "--summary", "x", "--expires", "tomorrow"), 2);
	expect_exit(RUN("publish", "--category", "car", "--severity", "low",
	    "--summary", "x"), 2);
	expect_exit(RUN("publish", "--category", "route", "--severity", "low",
	    "--summary", "x", "--persons", "-1"), 2);
	expect_exit(RUN("publish", "--category", "route", "--severity", "low",
	    "--summary", "x", "--updates", "a", "--withdraws", "b"), 2);
	expect_exit(RUN("publish", "--file", "/nonexistent.json"), 2);
	expect_exit(RUN("publish", "--category", "route", "--severity", "low",
	    "--summary", "x", "stray"), 2);
	expect_exit(RUN("subscribe", "--from", "XX"), 2);
	expect_exit(RUN("subscribe", "--count", "0"), 2);
	expect_exit(RUN("replay", "--from-seq", "9", "--to-seq", "3"), 2);
}

/*
 * Nothing listening: reported at once, with the reason, not after the
 * 10 s connect timeout (ZeroMQ alone retries silently).
 */
static void
test_unreachable(void **state)
{
	int64_t t0;
	int took;

	(void)state;
	t0 = testutil_now_ms();
	expect_exit(RUN("whoami", "--broker", "tcp://127.0.0.1:1"), 3);
	took = (int)(testutil_now_ms() - t0);
	expect_in(2, "no session with the broker");
	expect_in(2, "Connection refused");
	if (took > 3000)
		fail_msg("a refused connection took %d ms to report", took);
	/* The same for the commands that reconnect. */
	t0 = testutil_now_ms();
	expect_exit(RUN("subscribe", "--broker", "tcp://127.0.0.1:1"), 3);
	took = (int)(testutil_now_ms() - t0);
	expect_in(2, "Connection refused");
	if (took > 3000)
		fail_msg("subscribe: a refused connection took %d ms", took);
}

/* Mistakes in the set-up are usage errors (2), not "retry later" (3). */
static void
test_setup_errors(void **state)
{
	char exe[sizeof(g->exe)];
	int rc;

	(void)state;
	expect_exit(RUN("whoami", "--node", "no-such-node"), 2);
	expect_in(2, "no-such-node");
	expect_exit(RUN("whoami", "--broker", "127.0.0.1:7443"), 2);
	expect_in(2, "expected tcp://HOST:PORT");
	/* The broker with no arguments at all: how to use it. */
	memcpy(exe, g->exe, sizeof(exe));
	snprintf(g->exe, sizeof(g->exe), "%s/broker/cpx-broker",
	    getenv("CPX_BINARY_DIR") ? getenv("CPX_BINARY_DIR") :
	    CPX_BINARY_DIR);
	rc = run_in(NULL, (const char *const []){ NULL });
	memcpy(g->exe, exe, sizeof(exe));	/* before anything can fail */
	expect_exit(rc, 2);
	expect_in(2, "usage: cpx-broker");
}

/* A node the broker refuses exits 1: retrying will not help. */
static void
test_refused_node(void **state)
{
	(void)state;
	expect_exit(RUN("whoami", "--node", "revoked-hr"), 1);
	expect_in(2, "certificate revoked");
	expect_exit(RUN("publish", "--node", "expired-si", "--category",
	    "route", "--severity", "low", "--summary", "x"), 1);
	expect_in(2, "certificate expired");
}

static void
test_subscribe_live(void **state)
{
	char err2[320], out2[320], id[80];
	uint64_t seq;
	int64_t until;
	json_t *lines, *o;
	char *t;
	pid_t pid;
	int found = 0;

	(void)state;
	need_broker();
	snprintf(out2, sizeof(out2), "%s/sub.out", g->dir);
	snprintf(err2, sizeof(err2), "%s/sub.err", g->dir);
	pid = spawn_cpx(out2, err2, NULL, (const char *const []){
	    "subscribe", "-v", "--node", "hr-ncp", "--from", "ME", "--json",
	    "--count", "1", "--timeout", "60", NULL });
	assert_true(pid > 0);
	/* Publish only once the subscription is in force (it is live). */
	until = testutil_now_ms() + 30000;
	while (!found && testutil_now_ms() < until) {
		t = testutil_read_text(err2);
		found = t != NULL && strstr(t, "subscribed") != NULL;
		free(t);
		if (!found)
			usleep(10000);	/* polling interval */
	}
	if (!found) {
		kill(pid, SIGKILL);
		(void)wait_cpx(pid, 5000);
		fail_msg("subscriber never subscribed");
	}
	seq = publish_as("me-ncp", "Live alert from Montenegro", id,
	    sizeof(id));
	expect_exit(wait_cpx(pid, 30000), 0);
	lines = load_lines(out2);
	assert_int_equal(json_array_size(lines), 1);
	o = json_array_get(lines, 0);
	assert_int_equal(jseq(o), seq);
	assert_string_equal(json_string_value(json_object_get(o, "id")), id);
	assert_string_equal(json_string_value(json_object_get(o, "origin")),
	    "ME");
	assert_true(json_is_true(json_object_get(o, "verified")));
	assert_string_equal(json_string_value(json_object_get(o, "signer")),
	    "me-ncp");
	assert_string_equal(json_string_value(json_object_get(o,
	    "summary")), "Live alert from Montenegro");
	json_decref(lines);
}

/* SIGTERM stops a subscriber cleanly (exit 0) and promptly. */
static void
test_subscribe_signal(void **state)
{
	int64_t until;
	char *t;
	pid_t pid;
	int found = 0;

	(void)state;
	need_broker();
	pid = spawn_cpx(g->out, g->err, NULL, (const char *const []){
	    "subscribe", "-v", "--node", "ba-ncp", NULL });
	assert_true(pid > 0);
	until = testutil_now_ms() + 30000;
	while (!found && testutil_now_ms() < until) {
		t = testutil_read_text(g->err);
		found = t != NULL && strstr(t, "subscribed") != NULL;
		free(t);
		if (!found)
			usleep(10000);	/* polling interval */
	}
	assert_int_equal(kill(pid, SIGTERM), 0);
	expect_exit(wait_cpx(pid, 5000), 0);
	assert_true(found);
}

static void
test_subscribe_state_file(void **state)
{
	char statef[320], buf[64];
	uint64_t seqs[5];
	json_t *lines;
	size_t i;
	char *t;

	(void)state;
	need_broker();
	snprintf(statef, sizeof(statef), "%s/hr.seq", g->dir);
	for (i = 0; i < 3; i++) {
		snprintf(buf, sizeof(buf), "Austrian alert %zu", i);
		seqs[i] = publish_as("at-ncp", buf, NULL, 0);
	}
	/* A new state file starts with the history. */
	expect_exit(RUN("subscribe", "--node", "hr-ncp", "--from", "AT",
	    "--json", "--count", "3", "--timeout", "60", "--state-file",
	    statef), 0);
	lines = load_lines(g->out);
	assert_int_equal(json_array_size(lines), 3);
	for (i = 0; i < 3; i++)
		assert_int_equal(jseq(json_array_get(lines, i)), seqs[i]);
	json_decref(lines);
	t = testutil_read_text(statef);
	snprintf(buf, sizeof(buf), "%" PRIu64 "\n", seqs[2]);
	assert_string_equal(t, buf);
	free(t);

	for (i = 3; i < 5; i++) {
		snprintf(buf, sizeof(buf), "Austrian alert %zu", i);
		seqs[i] = publish_as("at-ncp", buf, NULL, 0);
	}
	/* Restarted: continues after the state, nothing repeated. */
	expect_exit(RUN("subscribe", "--node", "hr-ncp", "--from", "AT",
	    "--json", "--count", "2", "--timeout", "60", "--state-file",
	    statef), 0);
	lines = load_lines(g->out);
	assert_int_equal(json_array_size(lines), 2);
	assert_int_equal(jseq(json_array_get(lines, 0)), seqs[3]);
	assert_int_equal(jseq(json_array_get(lines, 1)), seqs[4]);
	json_decref(lines);
	t = testutil_read_text(statef);
	snprintf(buf, sizeof(buf), "%" PRIu64 "\n", seqs[4]);
	assert_string_equal(t, buf);
	free(t);

	/*
	 * A backlog larger than --count: exactly --count shown and recorded
	 * (the rest may arrive in the same read), the rest next time.
	 */
	for (i = 0; i < 2; i++) {
		snprintf(buf, sizeof(buf), "Austrian alert %zu", i + 5);
		seqs[i] = publish_as("at-ncp", buf, NULL, 0);
	}
	for (i = 0; i < 2; i++) {
		expect_exit(RUN("subscribe", "--node", "hr-ncp", "--from",
		    "AT", "--json", "--count", "1", "--timeout", "60",
		    "--state-file", statef), 0);
		lines = load_lines(g->out);
		assert_int_equal(json_array_size(lines), 1);
		assert_int_equal(jseq(json_array_get(lines, 0)), seqs[i]);
		json_decref(lines);
		t = testutil_read_text(statef);
		snprintf(buf, sizeof(buf), "%" PRIu64 "\n", seqs[i]);
		assert_string_equal(t, buf);
		free(t);
	}

	/* Nothing new: --timeout ends it, exit 0, nothing shown. */
	expect_exit(RUN("subscribe", "--node", "hr-ncp", "--from", "AT",
	    "--json", "--timeout", "1", "--state-file", statef), 0);
	t = testutil_read_text(g->out);
	assert_string_equal(t, "");
	free(t);
}

/* Poll until path holds n lines; 1 if it did in time. */
static int
wait_lines(const char *path, size_t n, int timeout_ms)
{
	int64_t until = testutil_now_ms() + timeout_ms;
	size_t k;
	char *t, *p;

	for (;;) {
		t = testutil_read_text(path);
		for (k = 0, p = t; p != NULL && (p = strchr(p, '\n')) != NULL;
		    p++)
			k++;
		free(t);
		if (k >= n)
			return 1;
		if (testutil_now_ms() > until)
			return 0;
		usleep(10000);	/* polling interval */
	}
}

/* A broker restart under a running subscriber: nothing lost. */
static void
test_subscribe_reconnect(void **state)
{
	char out2[320], err2[320];
	uint64_t s1, s2;
	json_t *lines;
	pid_t pid;

	(void)state;
	need_broker();
	snprintf(out2, sizeof(out2), "%s/sub.out", g->dir);
	snprintf(err2, sizeof(err2), "%s/sub.err", g->dir);
	s1 = publish_as("mk-ncp", "Before the restart", NULL, 0);
	/* --after: resume from just before s1, so timing does not matter. */
	{
		char after[32];

		snprintf(after, sizeof(after), "%" PRIu64, s1 - 1);
		pid = spawn_cpx(out2, err2, NULL, (const char *const []){
		    "subscribe", "--node", "hr-ncp", "--from", "MK", "--json",
		    "--count", "2", "--timeout", "60", "--after", after,
		    NULL });
	}
	assert_true(pid > 0);
	if (!wait_lines(out2, 1, 30000)) {
		kill(pid, SIGKILL);
		(void)wait_cpx(pid, 5000);
		fail_msg("first alert not received");
	}
	assert_int_equal(testbroker_restart(&g->tb), 0);
	s2 = publish_as("mk-ncp", "After the restart", NULL, 0);
	expect_exit(wait_cpx(pid, 40000), 0);
	lines = load_lines(out2);
	assert_int_equal(json_array_size(lines), 2);
	assert_int_equal(jseq(json_array_get(lines, 0)), s1);
	assert_int_equal(jseq(json_array_get(lines, 1)), s2);
	json_decref(lines);
}

static void
test_replay(void **state)
{
	char id1[80], id2[80];
	uint64_t s1, s2;
	json_t *lines, *o;
	size_t i;
	int seen1 = 0, seen2 = 0;

	(void)state;
	need_broker();
	s1 = publish_as("si-ncp", "Replay one", id1, sizeof(id1));
	s2 = publish_as("si-ncp", "Replay two", id2, sizeof(id2));
	expect_exit(RUN("replay", "--json", "--from-seq", "1"), 0);
	expect_in(2, "end of replay: ");
	/* Not a terminal: no progress bar. */
	{
		char *e = testutil_read_text(g->err);

		assert_null(strchr(e, '\r'));
		free(e);
	}
	lines = load_lines(g->out);
	assert_true(json_array_size(lines) >= 2);
	for (i = 0; i < json_array_size(lines); i++) {
		o = json_array_get(lines, i);
		assert_true(json_is_true(json_object_get(o, "verified")));
		assert_true(json_is_true(json_object_get(o, "replayed")));
		if (jseq(o) == s1) {
			assert_string_equal(json_string_value(
			    json_object_get(o, "id")), id1);
			seen1 = 1;
		}
		if (jseq(o) == s2) {
			assert_string_equal(json_string_value(
			    json_object_get(o, "id")), id2);
			seen2 = 1;
		}
	}
	assert_true(seen1 && seen2);
	json_decref(lines);

	/* A range holding just s2. */
	{
		char from[32], to[32];

		snprintf(from, sizeof(from), "%" PRIu64, s2);
		snprintf(to, sizeof(to), "%" PRIu64, s2);
		expect_exit(RUN("replay", "--json", "--from-seq", from,
		    "--to-seq", to), 0);
		lines = load_lines(g->out);
		assert_int_equal(json_array_size(lines), 1);
		assert_int_equal(jseq(json_array_get(lines, 0)), s2);
		json_decref(lines);
		expect_in(2, "end of replay: 1 record(s)");
	}

	/* Audit records for the node with the audit right only. */
	expect_exit(RUN("replay", "--all-kinds", "--json", "--to-seq", "3"),
	    0);
	lines = load_lines(g->out);
	assert_true(json_array_size(lines) >= 1);
	assert_non_null(json_string_value(json_object_get(
	    json_array_get(lines, 0), "kind")));
	json_decref(lines);
	expect_exit(RUN("replay", "--all-kinds", "--node", "hr-ncp"), 1);
	expect_in(2, "refused (not-authorized)");
}

static void
test_whoami(void **state)
{
	json_t *o;
	char *t;

	(void)state;
	need_broker();
	expect_exit(RUN("whoami"), 0);
	expect_in(1, "country:   SI");
	expect_in(1, "node:      si-ncp");
	expect_in(1, "audit");
	expect_exit(RUN("whoami", "--json", "--node", "rs-ncp"), 0);
	t = testutil_read_text(g->out);
	o = json_loads(t, 0, NULL);
	free(t);
	assert_non_null(o);
	assert_string_equal(json_string_value(json_object_get(o, "country")),
	    "RS");
	assert_true(json_is_false(json_object_get(o, "audit")));
	json_decref(o);
}

/* In-process: the state file and the parsers of cli_common.c. */
static void
test_state_file_unit(void **state)
{
	const char *line = "18446744073709551615\n";
	struct dirent *de;
	char path[320], want[32];
	uint64_t seq = 99;
	size_t i;
	DIR *d;
	int r;
	int64_t ms, now;
	FILE *f;

	(void)state;
	snprintf(path, sizeof(path), "%s/state", g->dir);
	assert_int_equal(cli_state_read(path, &seq), 1);
	assert_int_equal(seq, 0);
	assert_int_equal(cli_state_write(path, 18446744073709551615ull), 0);
	assert_int_equal(cli_state_read(path, &seq), 0);
	assert_true(seq == 18446744073709551615ull);
	assert_int_equal(cli_state_write(path, 42), 0);
	assert_int_equal(cli_state_read(path, &seq), 0);
	assert_int_equal(seq, 42);
	/* No temporary file is left behind. */
	d = opendir(g->dir);
	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		if (strstr(de->d_name, "tmp") != NULL)
			fail_msg("temporary file %s left", de->d_name);
	closedir(d);
	/* Malformed: refused, not taken as 0 (which would replay it all). */
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("12abc\n", f);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(cli_state_read(path, &seq), -1);
	assert_int_equal(seq, 0);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(cli_state_read(path, &seq), -1);
	/* Cut short at every length: a prefix of digits or nothing. */
	for (i = 0; i <= strlen(line); i++) {
		f = fopen(path, "w");
		assert_non_null(f);
		assert_int_equal(fwrite(line, 1, i, f), i);
		assert_int_equal(fclose(f), 0);
		r = cli_state_read(path, &seq);
		if (i == 0) {
			assert_int_equal(r, -1);
			continue;
		}
		assert_int_equal(r, 0);
		snprintf(want, sizeof(want), "%.*s", (int)(i < 20 ? i : 20),
		    line);
		assert_true(seq == strtoull(want, NULL, 10));
	}
	/* Over size: 70 zeros then 5 is not read as 0. */
	f = fopen(path, "w");
	assert_non_null(f);
	for (i = 0; i < 70; i++)
		fputc('0', f);
	fputs("5\n", f);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(cli_state_read(path, &seq), -1);
	assert_int_equal(seq, 0);
	/* A directory that does not exist: an error, reported. */
	assert_int_equal(cli_state_write("/nonexistent-dir/x", 1), -1);

	assert_int_equal(cli_parse_u64("123", &seq), 0);
	assert_int_equal(seq, 123);
	assert_int_equal(cli_parse_u64("-1", &seq), -1);
	assert_int_equal(cli_parse_u64("", &seq), -1);
	assert_int_equal(cli_parse_u64("99999999999999999999", &seq), -1);
	assert_int_equal(cli_parse_u64("1 ", &seq), -1);

	now = alert_now_ms();
	assert_int_equal(cli_parse_time("+6h", '+', &ms), 0);
	assert_true(ms >= now + 6 * 3600000LL &&
	    ms < now + 6 * 3600000LL + 60000);
	assert_int_equal(cli_parse_time("+1h30m", '+', &ms), 0);
	assert_true(ms >= now + 90 * 60000LL);
	assert_int_equal(cli_parse_time("-2d", '-', &ms), 0);
	assert_true(ms <= now - 2 * 86400000LL);
	assert_int_equal(cli_parse_time("+6", '+', &ms), -1);
	assert_int_equal(cli_parse_time("+h", '+', &ms), -1);
	assert_int_equal(cli_parse_time("+0h", '+', &ms), -1);
	assert_int_equal(cli_parse_time("+6h", '-', &ms), -1);
	assert_int_equal(cli_parse_time("2026-11-25T17:30:00Z", '+', &ms), 0);
	assert_true(ms == 1795627800000LL);
}

static void
test_sanitize(void **state)
{
	char out[16];

	(void)state;
	assert_string_equal(cli_sanitize("a\x1b[2Jb\n\xc3\xa9", out,
	    sizeof(out)), "a?[2Jb???");
	assert_string_equal(cli_sanitize("0123456789abcdefXYZ", out,
	    sizeof(out)), "0123456789abcde");
	assert_string_equal(cli_sanitize(NULL, out, sizeof(out)), "");
}

/*
 * Without a CRL, cpx refuses to start and says how to fix it; --no-crl
 * starts knowingly. The PKI directory here has everything but crl.pem.
 */
static void
test_no_crl(void **state)
{
	const char *pki;
	char dir[300], from[600], to[600];

	(void)state;
	need_broker();
	assert_int_equal(testpki_get(&pki), 0);
	snprintf(dir, sizeof(dir), "%s/pki", g->dir);
	assert_int_equal(mkdir(dir, 0700), 0);
	snprintf(from, sizeof(from), "%s/ca.pem", pki);
	snprintf(to, sizeof(to), "%s/ca.pem", dir);
	assert_int_equal(symlink(from, to), 0);
	snprintf(from, sizeof(from), "%s/nodes", pki);
	snprintf(to, sizeof(to), "%s/nodes", dir);
	assert_int_equal(symlink(from, to), 0);
	expect_exit(RUN("whoami", "--pki", dir, "--node", "hr-ncp"),
	    CLI_EXIT_USAGE);
	expect_in(2, "no CRL");
	expect_in(2, "--no-crl");
	expect_exit(RUN("whoami", "--pki", dir, "--node", "hr-ncp",
	    "--no-crl"), 0);
}

/*
 * A lying broker delivers a genuine alert numbered 2^64 - 1, then a
 * forged one, then a genuine one numbered 11: only the last is shown as
 * verified, and the state file says 11, so the next run resumes there
 * instead of skipping every later alert.
 */
static void
test_state_file_not_poisoned(void **state)
{
	Cpx__SignedAlert sa = CPX__SIGNED_ALERT__INIT;
	Cpx__Envelope env = CPX__ENVELOPE__INIT, *in;
	Cpx__Subscribed sd = CPX__SUBSCRIBED__INIT;
	Cpx__Welcome w;
	Cpx__Delivery d;
	struct fakebroker *fb;
	char sf[300], err[300], *t;
	pid_t pid;
	uint64_t seq = 0;

	(void)state;
	snprintf(sf, sizeof(sf), "%s/hr.state", g->dir);
	if ((fb = fakebroker_new(err, sizeof(err))) == NULL)
		fail_msg("fakebroker_new: %s", err);
	fakebroker_welcome(&env, &w, 10);
	assert_int_equal(fakebroker_send(fb, &env), 0);
	pid = spawn_cpx(g->out, g->err, NULL, (const char *const []){
	    "subscribe", "--broker", fakebroker_endpoint(fb), "--node",
	    "hr-ncp", "--state-file", sf, "--after", "10", "--count", "1",
	    "--json", NULL });
	assert_true(pid > 0);
	in = fakebroker_recv(fb, CPX__ENVELOPE__BODY_SUBSCRIBE,
	    RUN_TIMEOUT_MS);
	if (in == NULL) {
		(void)wait_cpx(pid, 1);
		show_output();
		fail_msg("cpx subscribe never subscribed");
	}
	sd.request_id = in->subscribe->request_id;
	sd.live_from = 10;
	cpx__envelope__free_unpacked(in, NULL);
	env.body_case = CPX__ENVELOPE__BODY_SUBSCRIBED;
	env.subscribed = &sd;
	assert_int_equal(fakebroker_send(fb, &env), 0);
	assert_int_equal(fakebroker_sign("nodes/si-ncp", "SI", "poison-max",
	    alert_now_ms(), &sa), 0);
	fakebroker_delivery(&env, &d, UINT64_MAX, &sa, 0, 0);
	assert_int_equal(fakebroker_send(fb, &env), 0);
	sign_signed_alert_clear(&sa);
	assert_int_equal(fakebroker_sign("nodes/si-ncp", "SI", "forged-12",
	    alert_now_ms(), &sa), 0);
	sa.alert.data[sa.alert.len - 3] ^= 0x20;
	fakebroker_delivery(&env, &d, 12, &sa, 0, 0);
	assert_int_equal(fakebroker_send(fb, &env), 0);
	sign_signed_alert_clear(&sa);
	assert_int_equal(fakebroker_sign("nodes/si-ncp", "SI", "genuine-11",
	    alert_now_ms(), &sa), 0);
	fakebroker_delivery(&env, &d, 11, &sa, 0, 0);
	assert_int_equal(fakebroker_send(fb, &env), 0);
	sign_signed_alert_clear(&sa);
	expect_exit(wait_cpx(pid, RUN_TIMEOUT_MS), 0);
	fakebroker_free(&fb);
	expect_in(1, "genuine-11");
	expect_in(2, "refused to show alert");
	t = testutil_read_text(g->out);
	assert_non_null(t);
	if (strstr(t, "poison-max") != NULL || strstr(t, "forged-12") != NULL)
		fail_msg("an unverified alert was shown: %s", t);
	free(t);
	assert_int_equal(cli_state_read(sf, &seq), 0);
	assert_int_equal(seq, 11);
}

/*
 * A state file already past the broker's newest sequence (damaged, or
 * written by an older cpx from a forged delivery) is refused in plain
 * words instead of silently skipping every alert to come.
 */
static void
test_state_file_past_broker(void **state)
{
	char sf[300];

	(void)state;
	need_broker();
	snprintf(sf, sizeof(sf), "%s/poisoned.state", g->dir);
	assert_int_equal(cli_state_write(sf, UINT64_MAX), 0);
	expect_exit(RUN("subscribe", "--node", "hr-ncp", "--state-file", sf,
	    "--timeout", "5"), CLI_EXIT_LOCAL);
	expect_in(2, "18446744073709551615");
	expect_in(2, "broker's newest");
}

/* How many lines of path contain s. */
static int
count_in(const char *path, const char *s)
{
	char *t = testutil_read_text(path), *p;
	int n = 0;

	for (p = t; p != NULL && (p = strstr(p, s)) != NULL; p += strlen(s))
		n++;
	free(t);
	return n;
}

static int
count_lines(const char *path)
{
	return count_in(path, "\n");
}

/* A fake broker that has welcomed the cpx it runs: wait for request. */
static Cpx__Envelope *
fake_wait(struct fakebroker *fb, pid_t pid, int body_case)
{
	Cpx__Envelope *in = fakebroker_recv(fb, body_case, RUN_TIMEOUT_MS);

	if (in == NULL) {
		(void)wait_cpx(pid, 1);
		show_output();
		fail_msg("cpx never sent its request");
	}
	return in;
}

/*
 * Run `cpx cmd --timeout timeout` (subscribe or replay, as hr-ncp)
 * against a new fake broker (*fbp, the caller frees it) that welcomes it,
 * and wait for its request. Returns the pid of cpx.
 */
static pid_t
fake_session(struct fakebroker **fbp, const char *cmd, const char *timeout)
{
	Cpx__Envelope env = CPX__ENVELOPE__INIT, *in;
	Cpx__Welcome w;
	char err[300];
	pid_t pid;

	if ((*fbp = fakebroker_new(err, sizeof(err))) == NULL)
		fail_msg("fakebroker_new: %s", err);
	fakebroker_welcome(&env, &w, 10);
	assert_int_equal(fakebroker_send(*fbp, &env), 0);
	pid = spawn_cpx(g->out, g->err, NULL, (const char *const []){
	    cmd, "--broker", fakebroker_endpoint(*fbp), "--node", "hr-ncp",
	    "--timeout", timeout, NULL });
	assert_true(pid > 0);
	in = fake_wait(*fbp, pid, strcmp(cmd, "subscribe") == 0 ?
	    CPX__ENVELOPE__BODY_SUBSCRIBE : CPX__ENVELOPE__BODY_REPLAY);
	cpx__envelope__free_unpacked(in, NULL);
	return pid;
}

/*
 * --timeout ends subscribe and replay the same way: exit 0 and the same
 * words. The fake broker welcomes and then never answers, so both run
 * into their timeout.
 */
static void
test_timeout_same(void **state)
{
	static const char *const cmds[] = { "subscribe", "replay" };
	struct fakebroker *fb;
	size_t i;
	pid_t pid;

	(void)state;
	for (i = 0; i < 2; i++) {
		pid = fake_session(&fb, cmds[i], "1");
		expect_exit(wait_cpx(pid, RUN_TIMEOUT_MS), 0);
		fakebroker_free(&fb);
		expect_in(2, "stopped at --timeout 1 s: 0 shown");
	}
	expect_in(2, "cpx replay: stopped at --timeout");
	expect_in(2, "the replay had not finished");
}

/*
 * A broker that stops is told in one line, by subscribe (which goes on
 * reconnecting) and by replay (which ends, exit 3: worth retrying).
 */
static void
test_broker_stopping_once(void **state)
{
	static const char *const cmds[] = { "subscribe", "replay" };
	Cpx__Envelope env = CPX__ENVELOPE__INIT, *in;
	Cpx__Error e = CPX__ERROR__INIT;
	Cpx__Welcome w;
	struct fakebroker *fb;
	char err[300];
	size_t i;
	pid_t pid;

	(void)state;
	for (i = 0; i < 2; i++) {
		pid = fake_session(&fb, cmds[i], "2");
		e.reason = CPX__REASON__REASON_SHUTTING_DOWN;
		e.fatal = 1;
		e.text = "the broker is shutting down";
		env.body_case = CPX__ENVELOPE__BODY_ERROR;
		env.error = &e;
		/* The fatal Error alone ends the session, as the broker's. */
		assert_int_equal(fakebroker_send(fb, &env), 0);
		expect_exit(wait_cpx(pid, RUN_TIMEOUT_MS), i == 0 ? 0 : 3);
		fakebroker_free(&fb);
		if (count_in(g->err, "is shutting down") != 1 ||
		    count_lines(g->err) != (i == 0 ? 2 : 1)) {
			show_output();
			fail_msg("cpx %s: the stop told more than once",
			    cmds[i]);
		}
		expect_in(2, i == 0 ? "shutting down; reconnecting" :
		    "cpx replay: broker closed the session (shutting-down)");
	}
	/*
	 * A publish the stop cut off: not "refused" (1: do not retry) but
	 * unanswered (3: retry), saying why, once.
	 */
	if ((fb = fakebroker_new(err, sizeof(err))) == NULL)
		fail_msg("fakebroker_new: %s", err);
	fakebroker_welcome(&env, &w, 10);
	assert_int_equal(fakebroker_send(fb, &env), 0);
	pid = spawn_cpx(g->out, g->err, NULL, (const char *const []){
	    "publish", "--broker", fakebroker_endpoint(fb), "--node",
	    "hr-ncp", "--category", "route", "--severity", "low", "--summary",
	    "cut off", "--timeout", "2", NULL });
	assert_true(pid > 0);
	in = fake_wait(fb, pid, CPX__ENVELOPE__BODY_PUBLISH);
	cpx__envelope__free_unpacked(in, NULL);
	env.body_case = CPX__ENVELOPE__BODY_ERROR;
	env.error = &e;
	assert_int_equal(fakebroker_send(fb, &env), 0);
	expect_exit(wait_cpx(pid, RUN_TIMEOUT_MS), 3);
	fakebroker_free(&fb);
	expect_in(2, "no answer from the broker within 2 s: broker closed "
	    "the session (shutting-down)");
	if (count_in(g->err, "is shutting down") != 1 ||
	    count_lines(g->err) != 1) {
		show_output();
		fail_msg("cpx publish: the stop told more than once");
	}
}

/* What an analyst who forgets a flag is told. */
static void
test_publish_required(void **state)
{
	(void)state;
	expect_exit(RUN("publish", "--category", "route", "--severity",
	    "low"), 2);
	expect_in(2, "--summary is required");
	expect_exit(RUN("publish", "--summary", "x", "--severity", "low"), 2);
	expect_in(2, "--category is required");
	expect_exit(RUN("publish", "--summary", "x", "--category", "route"),
	    2);
	expect_in(2, "--severity is required");
}

/* Without --json, the header names category and handling. */
static void
test_human_labels(void **state)
{
	char from[32];
	uint64_t seq;

	(void)state;
	need_broker();
	expect_exit(RUN("publish", "--node", "xk-ncp", "--category",
	    "crossing", "--severity", "high", "--handling", "restricted",
	    "--to", "AL", "--summary", "Labels for newcomers"), 0);
	seq = accepted_seq(NULL, 0);
	snprintf(from, sizeof(from), "%" PRIu64, seq);
	expect_exit(RUN("replay", "--node", "al-ncp", "--from-seq", from,
	    "--to-seq", from), 0);
	expect_in(1, "HIGH  category: crossing  handling: restricted");
}

/* cpx-pki: a usage error exits 2, as certs/README.md says. */
static void
test_pki_usage(void **state)
{
	char exe[sizeof(g->exe)];
	int rc[6];

	(void)state;
	memcpy(exe, g->exe, sizeof(exe));
	snprintf(g->exe, sizeof(g->exe), "%s/certs/cpx-pki",
	    getenv("CPX_SOURCE_DIR") ? getenv("CPX_SOURCE_DIR") :
	    CPX_SOURCE_DIR);
	rc[0] = RUN("frobnicate", g->dir);
	rc[1] = RUN("issue", g->dir, "SI");
	rc[2] = RUN("issue", g->dir, "ZZ", "zz-ncp");
	rc[3] = RUN("issue", g->dir, "SI", "si-x", "--days");
	rc[4] = RUN("list", g->dir, "extra");
	rc[5] = RUN("issue", g->dir, "SI", "Bad-Name");
	memcpy(g->exe, exe, sizeof(exe));	/* before anything can fail */
	expect_exit(rc[0], 2);
	expect_exit(rc[1], 2);
	expect_exit(rc[2], 2);
	expect_exit(rc[3], 2);
	expect_exit(rc[4], 2);
	expect_exit(rc[5], 2);
	expect_in(2, "Try 'cpx-pki --help'");
	/* A failure at run time is 1: no CA in an empty directory. */
	snprintf(g->exe, sizeof(g->exe), "%s/certs/cpx-pki",
	    getenv("CPX_SOURCE_DIR") ? getenv("CPX_SOURCE_DIR") :
	    CPX_SOURCE_DIR);
	rc[0] = RUN("issue", g->dir, "SI", "si-x");
	memcpy(g->exe, exe, sizeof(exe));
	expect_exit(rc[0], 1);
}

#define STDIN_LINES	300

/*
 * cpx publish --stdin: a few hundred JSON lines, some bad, over one
 * session; one result per line with its number, the good ones accepted
 * past the bad ones, exit 1 because not all were.
 */
static void
test_publish_stdin(void **state)
{
	char in[320], tag[64];
	json_t *lines, *o;
	FILE *f;
	size_t i, accepted = 0, refused = 0, invalid = 0;
	int before, blank = 0;
	const char *r;

	(void)state;
	need_broker();
	snprintf(in, sizeof(in), "%s/alerts.jsonl", g->dir);
	f = fopen(in, "w");
	assert_non_null(f);
	for (i = 1; i <= STDIN_LINES; i++) {
		if (i % 50 == 7)
			fputs("{\"category\":\"route\", not json\n", f);
		else if (i % 50 == 13)	/* no summary */
			fputs("{\"category\":\"route\",\"severity\":\"low\","
			    "\"handling\":\"network\"}\n", f);
		else if (i % 50 == 21)	/* refused by the broker */
			fprintf(f, "{\"category\":\"route\",\"severity\":"
			    "\"low\",\"handling\":\"network\",\"recipients\":"
			    "[\"atlantis\"],\"summary\":\"line %zu\"}\n", i);
		else if (i == 100) {
			fputs("\n", f);	/* blank: no alert, no result */
			blank = 1;
		} else
			fprintf(f, "{\"category\":\"route\",\"severity\":"
			    "\"low\",\"handling\":\"network\",\"id\":"
			    "\"stdin-%zu\",\"summary\":\"line %zu\"}\n", i, i);
	}
	assert_int_equal(fclose(f), 0);
	before = testbroker_log_count(&g->tb, "BA/ba-ncp: session opened");
	expect_exit(run_in(in, (const char *const []){ "publish", "--node",
	    "ba-ncp", "--stdin", "--json", NULL }), 1);
	/* One session for all of them. */
	assert_int_equal(testbroker_log_count(&g->tb,
	    "BA/ba-ncp: session opened") - before, 1);
	lines = load_lines(g->out);
	assert_int_equal(json_array_size(lines), STDIN_LINES - blank);
	for (i = 0; i < json_array_size(lines); i++) {
		json_int_t ln;

		o = json_array_get(lines, i);
		ln = json_integer_value(json_object_get(o, "line"));
		/* In input order, numbered by input line. */
		assert_int_equal(ln, i + 1 + (i + 1 >= 100 ? 1 : 0));
		r = json_string_value(json_object_get(o, "result"));
		assert_non_null(r);
		if (ln % 50 == 7 || ln % 50 == 13) {
			assert_string_equal(r, "invalid");
			invalid++;
		} else if (ln % 50 == 21) {
			assert_string_equal(r, "refused");
			assert_string_equal(json_string_value(json_object_get(
			    o, "reason")), "unknown-recipient");
			refused++;
		} else {
			assert_string_equal(r, "accepted");
			snprintf(tag, sizeof(tag), "stdin-%" JSON_INTEGER_FORMAT,
			    ln);
			assert_string_equal(json_string_value(json_object_get(
			    o, "id")), tag);
			assert_true(jseq(o) > 0);
			accepted++;
		}
	}
	json_decref(lines);
	assert_int_equal(invalid, 12);
	assert_int_equal(refused, 6);
	assert_int_equal(accepted, STDIN_LINES - blank - 18);
	expect_in(2, "281 of 299 alert(s) accepted, 6 refused by the broker, "
	    "12 invalid");
	/*
	 * Text output names the line. The same ids again, signed anew (a
	 * new issued_at), are refused one by one, and the run goes on.
	 */
	expect_exit(run_in(in, (const char *const []){ "publish", "--node",
	    "ba-ncp", "--stdin", NULL }), 1);
	expect_in(1, "line 1: refused (duplicate-conflict): ");
	expect_in(1, "line 300: refused (duplicate-conflict): ");
	expect_in(1, "line 7: invalid: not JSON");
	expect_in(1, "line 13: invalid: missing key \"summary\"");
	expect_in(1, "line 21: refused (unknown-recipient): ");
	/* A line over the size of an alert file: refused, not read whole. */
	f = fopen(in, "w");
	assert_non_null(f);
	fputs("{\"summary\":\"", f);
	for (i = 0; i < ALERT_JSON_MAX_TEXT / 64 + 1; i++)
		fputs("0123456789abcdef0123456789abcdef"
		    "0123456789abcdef0123456789abcdef", f);
	fputs("\"}\n{\"category\":\"route\",\"severity\":\"low\","
	    "\"summary\":\"after the long one\"}\n", f);
	assert_int_equal(fclose(f), 0);
	expect_exit(run_in(in, (const char *const []){ "publish", "--node",
	    "ba-ncp", "--stdin", NULL }), 1);
	expect_in(1, "line 1: invalid: longer than ");
	expect_in(1, "line 2: accepted: seq ");
	/* All good: exit 0. */
	f = fopen(in, "w");
	assert_non_null(f);
	fputs("{\"category\":\"route\",\"severity\":\"low\","
	    "\"summary\":\"fine\"}\n", f);
	assert_int_equal(fclose(f), 0);
	expect_exit(run_in(in, (const char *const []){ "publish", "--node",
	    "ba-ncp", "--stdin", NULL }), 0);
	expect_in(1, "line 1: accepted: seq ");
}

/*
 * The delivery promise of --state-file, honestly: at least once. cpx is
 * killed (strace injects SIGKILL at the state file's rename) after it
 * printed an alert and before it recorded it. After a restart that alert
 * is printed again, nothing at or below the recorded seq is, and none is
 * missed.
 */
static void
test_state_file_crash(void **state)
{
	char sf[320], out1[320], buf[64];
	const char *argv[MAX_ARGS];
	uint64_t seqs[3], rec = 0;
	json_t *lines;
	size_t i, n = 0;
	pid_t pid;
	int rc;

	(void)state;
	need_broker();
	if (system("command -v strace >/dev/null 2>&1") != 0)
		fail_msg("strace is needed (scripts/install-deps.sh)");
	snprintf(sf, sizeof(sf), "%s/al.seq", g->dir);
	snprintf(out1, sizeof(out1), "%s/run1.out", g->dir);
	for (i = 0; i < 3; i++) {
		snprintf(buf, sizeof(buf), "Albanian alert %zu", i);
		seqs[i] = publish_as("al-ncp", buf, NULL, 0);
	}
	/* Run 1 under strace: the second rename is never made. */
	argv[n++] = "-f";
	argv[n++] = "-o";
	argv[n++] = "/dev/null";
	argv[n++] = "-e";
	argv[n++] = "trace=rename,renameat,renameat2";
	argv[n++] = "-e";
	argv[n++] = "inject=rename,renameat,renameat2:signal=KILL:when=2";
	argv[n++] = g->exe;
	argv[n++] = "subscribe";
	argv[n++] = "--node";
	argv[n++] = "hr-ncp";
	argv[n++] = "--from";
	argv[n++] = "AL";
	argv[n++] = "--json";
	argv[n++] = "--count";
	argv[n++] = "3";
	argv[n++] = "--timeout";
	argv[n++] = "30";
	argv[n++] = "--state-file";
	argv[n++] = sf;
	argv[n] = NULL;
	pid = cliproc_spawn("/usr/bin/strace", out1, g->err, NULL, argv, NULL,
	    0);
	assert_true(pid > 0);
	rc = wait_cpx(pid, RUN_TIMEOUT_MS);
	if (rc == 0)
		fail_msg("cpx was not killed at the state file's rename");
	/* It printed two alerts and recorded only the first. */
	lines = load_lines(out1);
	assert_int_equal(json_array_size(lines), 2);
	assert_int_equal(jseq(json_array_get(lines, 0)), seqs[0]);
	assert_int_equal(jseq(json_array_get(lines, 1)), seqs[1]);
	json_decref(lines);
	assert_int_equal(cli_state_read(sf, &rec), 0);
	assert_int_equal(rec, seqs[0]);

	/* Run 2: the second again (at least once), then the third. */
	expect_exit(RUN("subscribe", "--node", "hr-ncp", "--from", "AL",
	    "--json", "--count", "2", "--timeout", "30", "--state-file", sf),
	    0);
	lines = load_lines(g->out);
	assert_int_equal(json_array_size(lines), 2);
	for (i = 0; i < json_array_size(lines); i++)
		assert_true(jseq(json_array_get(lines, i)) > rec);
	assert_int_equal(jseq(json_array_get(lines, 0)), seqs[1]);
	assert_int_equal(jseq(json_array_get(lines, 1)), seqs[2]);
	json_decref(lines);
	assert_int_equal(cli_state_read(sf, &rec), 0);
	assert_int_equal(rec, seqs[2]);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_help, setup, teardown),
		cmocka_unit_test_setup_teardown(test_publish_flags, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_publish_file, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_publish_refused, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_publish_usage, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_refused_node, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_unreachable, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_setup_errors, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_subscribe_live, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_subscribe_signal, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_subscribe_state_file,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_replay, setup, teardown),
		cmocka_unit_test_setup_teardown(test_whoami, setup, teardown),
		cmocka_unit_test_setup_teardown(test_subscribe_reconnect,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_state_file_unit, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_sanitize, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_no_crl, setup, teardown),
		cmocka_unit_test_setup_teardown(test_state_file_not_poisoned,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_state_file_past_broker,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_timeout_same, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_broker_stopping_once,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_publish_required, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_human_labels, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_pki_usage, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_publish_stdin, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_state_file_crash, setup,
		    teardown),
	};

	if (getenv("CPX_TEST_FILTER") != NULL)
		cmocka_set_test_filter(getenv("CPX_TEST_FILTER"));
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
