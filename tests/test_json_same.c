/*
 * test_json_same.c: lib/json_out.c as the tools use it. One real broker
 * (tests/util/testbroker.h) writes an audit log holding an accepted
 * alert, sessions, a refused request and a checkpoint; then the same log
 * is printed three ways, by the real binaries in child processes:
 * cpx-audit dump (from disk), cpx replay --all-kinds --json (from the
 * broker) and cpx subscribe --json (the alert, verified). Every record
 * must be the same JSON object in the first two, and the alert the same
 * object in all three. Waits are polls with a deadline, never sleeps.
 */
#include <sys/stat.h>
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

#include "testbroker.h"
#include "testpki.h"
#include "testutil.h"

#define RUN_TIMEOUT_MS	60000
#define MAX_ARGS	24

struct fx {
	struct testbroker	 tb;
	char			 dir[256];
	char			 cpx[512];
	char			 audit_tool[512];
	char			 example[512];
	char			 out[300];
	char			 err[300];
};

static struct fx *g;

static int
setup(void **state)
{
	const char *bin = getenv("CPX_BINARY_DIR");
	const char *src = getenv("CPX_SOURCE_DIR");
	const char *pki;

	(void)state;
	if ((g = calloc(1, sizeof(*g))) == NULL)
		return -1;
	snprintf(g->cpx, sizeof(g->cpx), "%s/client/cpx",
	    bin ? bin : CPX_BINARY_DIR);
	snprintf(g->audit_tool, sizeof(g->audit_tool),
	    "%s/broker/cpx-audit", bin ? bin : CPX_BINARY_DIR);
	snprintf(g->example, sizeof(g->example),
	    "%s/client/examples/vehicle-si-to-western-balkans.json",
	    src ? src : CPX_SOURCE_DIR);
	if (testpki_get(&pki) == -1 ||
	    testutil_mkdtemp(g->dir, sizeof(g->dir)) == -1)
		return -1;
	snprintf(g->out, sizeof(g->out), "%s/out", g->dir);
	snprintf(g->err, sizeof(g->err), "%s/err", g->dir);
	if (testbroker_start(&g->tb, NULL, NULL) == -1)
		return -1;
	setenv("CPX_BROKER", g->tb.endpoint, 1);
	setenv("CPX_PKI", pki, 1);
	return 0;
}

static int
teardown(void **state)
{
	int rc = 0;

	(void)state;
	if (g == NULL)
		return 0;
	if (testbroker_cleanup(&g->tb) == -1)
		rc = -1;
	if (getenv("CPX_KEEP_TEST_DIRS") == NULL &&
	    testutil_rmrf(g->dir) == -1)
		fprintf(stderr, "cannot remove %s\n", g->dir);
	free(g);
	g = NULL;
	return rc;
}

static void
show_output(void)
{
	char *o = testutil_read_text(g->out), *e = testutil_read_text(g->err);

	fprintf(stderr, "---- stdout ----\n%s---- stderr ----\n%s----\n",
	    o ? o : "", e ? e : "");
	free(o);
	free(e);
}

/*
 * Run exe with args (NULL-terminated), stdout and stderr to g->out and
 * g->err, and wait for it by polling with a deadline. Its exit code, or
 * -1 (killed at the deadline, or not started).
 */
static int
run(const char *exe, const char *const *args)
{
	const char *argv[MAX_ARGS + 2];
	int64_t until;
	pid_t pid, r;
	size_t i;
	int fd, status;

	argv[0] = exe;
	for (i = 0; args[i] != NULL && i < MAX_ARGS; i++)
		argv[i + 1] = args[i];
	argv[i + 1] = NULL;
	if ((pid = fork()) == -1)
		return -1;
	if (pid == 0) {
		if ((fd = open(g->out, O_WRONLY | O_CREAT | O_TRUNC,
		    0600)) != -1)
			dup2(fd, 1);
		if ((fd = open(g->err, O_WRONLY | O_CREAT | O_TRUNC,
		    0600)) != -1)
			dup2(fd, 2);
		if ((fd = open("/dev/null", O_RDONLY)) != -1)
			dup2(fd, 0);
		execv(exe, (char *const *)argv);
		_exit(127);
	}
	until = testutil_now_ms() + RUN_TIMEOUT_MS;
	for (;;) {
		r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) :
			    128 + WTERMSIG(status);
		if (r == -1)
			return -1;
		if (testutil_now_ms() > until) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			return -1;
		}
		usleep(5000);	/* polling interval, not a wait for an event */
	}
}

#define CPX(...)	\
	run(g->cpx, (const char *const []){ __VA_ARGS__, NULL })
#define AUDIT(...)	\
	run(g->audit_tool, (const char *const []){ __VA_ARGS__, NULL })

static void
expect_exit(int got, int want, const char *what)
{
	if (got != want) {
		show_output();
		fail_msg("%s exited %d, expected %d", what, got, want);
	}
}

/* g->out, one JSON object a line, as an array. */
static json_t *
load_lines(void)
{
	json_error_t jerr;
	json_t *arr = json_array(), *o;
	char *t = testutil_read_text(g->out), *line, *save = NULL;

	assert_non_null(arr);
	assert_non_null(t);
	for (line = strtok_r(t, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		o = json_loads(line, 0, &jerr);
		if (o == NULL || !json_is_object(o)) {
			show_output();
			fail_msg("not a JSON object: %s", line);
		}
		assert_int_equal(json_array_append_new(arr, o), 0);
	}
	free(t);
	return arr;
}

static json_int_t
jseq(const json_t *o)
{
	const json_t *s = json_object_get(o, "seq");

	if (!json_is_integer(s))
		fail_msg("a line without an integer seq");
	return json_integer_value(s);
}

/* The object of lines with this seq, or NULL. */
static json_t *
by_seq(const json_t *lines, json_int_t seq)
{
	json_t *o;
	size_t i;

	json_array_foreach(lines, i, o)
		if (jseq(o) == seq)
			return o;
	return NULL;
}

static void
expect_same(const json_t *a, const json_t *b, const char *what)
{
	char *ta, *tb;

	if (a != NULL && b != NULL && json_equal(a, b))
		return;
	ta = a ? json_dumps(a, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	tb = b ? json_dumps(b, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	fprintf(stderr, "%s differ:\n  %s\n  %s\n", what, ta ? ta : "(none)",
	    tb ? tb : "(none)");
	free(ta);
	free(tb);
	fail_msg("%s are not the same JSON", what);
}

static int
has_kind(const json_t *lines, const char *kind)
{
	const char *k;
	json_t *o;
	size_t i;

	json_array_foreach(lines, i, o) {
		k = json_string_value(json_object_get(o, "kind"));
		if (k != NULL && strcmp(k, kind) == 0)
			return 1;
	}
	return 0;
}

static void
test_same_json_everywhere(void **state)
{
	json_t *dump, *replay, *sub, *o, *d, *alert_rec = NULL;
	json_int_t alert_seq = 0, last = 0;
	const char *k;
	size_t i, n;

	(void)state;
	/* An alert with every part set, refused requests, a checkpoint. */
	expect_exit(CPX("publish", "--node", "si-ncp", "--file", g->example),
	    0, "cpx publish");
	expect_exit(CPX("replay", "--node", "hr-ncp", "--region", "nowhere"),
	    1, "cpx replay of an unknown region");
	expect_exit(CPX("replay", "--node", "hr-ncp", "--all-kinds"), 1,
	    "cpx replay --all-kinds without the audit right");
	expect_exit(CPX("subscribe", "--node", "hr-ncp", "--region", "nowhere",
	    "--timeout", "30"), 1, "cpx subscribe to an unknown region");
	assert_int_equal(testbroker_restart(&g->tb), 0);

	/* The same log, from the broker... */
	expect_exit(CPX("replay", "--node", "si-ncp", "--all-kinds", "--json"),
	    0, "cpx replay --all-kinds --json");
	replay = load_lines();
	/* ...the alert as a subscriber receives it, verified... */
	/* RS is in western-balkans, the example's recipient. */
	expect_exit(CPX("subscribe", "--node", "rs-ncp", "--json", "--after",
	    "0", "--count", "1", "--timeout", "30"), 0, "cpx subscribe --json");
	sub = load_lines();
	/* ...and from disk, last: it holds every record the others made. */
	expect_exit(AUDIT("dump", g->tb.audit), 0, "cpx-audit dump");
	dump = load_lines();

	n = json_array_size(replay);
	if (n < 5 || json_array_size(dump) < n)
		fail_msg("%zu records replayed, %zu dumped", n,
		    json_array_size(dump));
	json_array_foreach(replay, i, o) {
		/* Every record from 1 on, in order, none left out. */
		assert_int_equal(jseq(o), (json_int_t)i + 1);
		if ((d = by_seq(dump, jseq(o))) == NULL)
			fail_msg("seq %" JSON_INTEGER_FORMAT " not dumped",
			    jseq(o));
		expect_same(o, d, "replayed and dumped record");
		k = json_string_value(json_object_get(o, "kind"));
		if (k != NULL && strcmp(k, "alert-accepted") == 0) {
			alert_seq = jseq(o);
			alert_rec = o;
		}
		last = jseq(o);
	}
	/* Each kind the log holds took part. */
	assert_true(has_kind(replay, "alert-accepted"));
	assert_true(has_kind(replay, "session-opened"));
	assert_true(has_kind(replay, "request-refused"));
	assert_true(has_kind(replay, "replay-requested"));
	assert_true(has_kind(replay, "checkpoint"));
	assert_true(last >= 5);
	assert_non_null(alert_rec);
	assert_true(json_is_string(json_object_get(by_seq(replay,
	    alert_seq), "peer_node")));
	/* A checkpoint's hash is lower-case hex of SHA-256. */
	json_array_foreach(replay, i, o) {
		k = json_string_value(json_object_get(o, "kind"));
		if (k == NULL || strcmp(k, "checkpoint") != 0)
			continue;
		k = json_string_value(json_object_get(o, "checkpoint_hash"));
		assert_non_null(k);
		assert_int_equal(strlen(k), 64);
		assert_int_equal(strspn(k, "0123456789abcdef"), 64);
	}

	/* The alert: the same object in the record and in the delivery. */
	assert_int_equal(json_array_size(sub), 1);
	o = json_array_get(sub, 0);
	assert_int_equal(jseq(o), alert_seq);
	assert_true(json_is_true(json_object_get(o, "verified")));
	expect_same(json_object_get(o, "alert"),
	    json_object_get(alert_rec, "alert"), "delivered and dumped alert");
	expect_same(json_object_get(o, "accepted_at"),
	    json_object_get(alert_rec, "time"), "accepted_at and record time");
	/* Every part of the example came through. */
	d = json_object_get(alert_rec, "alert");
	assert_string_equal(json_string_value(json_object_get(d, "category")),
	    "vehicle");
	assert_string_equal(json_string_value(json_object_get(d, "handling")),
	    "restricted");
	assert_non_null(json_object_get(d, "place"));
	assert_non_null(json_object_get(d, "vehicles"));
	assert_int_equal(json_integer_value(json_object_get(d,
	    "persons_count")), 15);

	json_decref(replay);
	json_decref(sub);
	json_decref(dump);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_same_json_everywhere),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
