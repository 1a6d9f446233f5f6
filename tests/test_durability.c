/*
 * test_durability.c: the audit log as seen through a real broker: kill -9
 * during a publish storm loses no acknowledged alert and delivers each
 * once; a subscriber resumes across a broker restart without gap or
 * duplicate; replay honours filters and entitlement (and the audit right
 * for every record kind); a full disk refuses publishes with a clear
 * reason and the broker recovers when space returns.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "alert.h"
#include "audit.h"
#include "cpx_client.h"
#include "harden_util.h"
#include "testbroker.h"
#include "testsink.h"
#include "testutil.h"

#define STORM		3000
#define STORM_WINDOW	64

struct storm {
	int		acked;
	int		refused;
	uint64_t	seq[STORM];
	char		id[STORM][32];
};

static void
storm_cb(const struct cpx_event *ev, void *arg)
{
	struct storm *s = arg;

	if (ev->kind == CPX_EV_ACK && s->acked < STORM) {
		s->seq[s->acked] = ev->seq;
		snprintf(s->id[s->acked], sizeof(s->id[0]), "%s",
		    ev->alert_id);
		s->acked++;
	} else if (ev->kind == CPX_EV_ERROR)
		s->refused++;
}

static struct cpx_client *
sub_all(struct testbroker *tb, const char *node, int reconnect,
    struct testsink *sink, struct testfilter *tf, Cpx__Filter **f)
{
	struct cpx_client *c;
	char err[400];
	uint64_t req;

	c = testbroker_client(tb, node, reconnect, err, sizeof(err));
	if (c == NULL)
		fail_msg("%s: %s", node, err);
	testsink_attach(sink, c);
	if (cpx_client_connect(c, 10000, err, sizeof(err)) == -1)
		fail_msg("%s: %s", node, err);
	testfilter_init(tf, "", "", NULL, 0, 0);
	f[0] = &tf->f;
	assert_int_equal(cpx_subscribe(c, f, 1, 1, 0, &req), 0);
	assert_true(testsink_run_until(c, &sink->subscribed, 1, 5000));
	return c;
}

/* Replay everything `node` may see; returns the sink (caller frees). */
static struct testsink *
replay_all(struct testbroker *tb, const char *node)
{
	Cpx__ReplayRequest rq = CPX__REPLAY_REQUEST__INIT;
	struct testsink *s = calloc(1, sizeof(*s));
	struct cpx_client *c;
	char err[400];
	uint64_t req;

	assert_non_null(s);
	if ((c = testbroker_connect(tb, node, 0, err, sizeof(err))) == NULL)
		fail_msg("%s: %s", node, err);
	testsink_attach(s, c);
	assert_int_equal(cpx_replay(c, &rq, &req), 0);
	assert_true(testsink_run_until(c, &s->replay_ends, 1, 30000));
	cpx_client_free(&c);
	return s;
}

static void
test_kill9_storm(void **state)
{
	struct testbroker tb;
	struct storm *st;
	struct testsink *live, *rep;
	struct testfilter tf;
	Cpx__Filter *f[1];
	struct cpx_client *pub, *sub;
	struct testalert ta;
	char err[400], id[32];
	uint64_t req;
	int sent = 0, i, count;
	int64_t until;

	(void)state;
	st = calloc(1, sizeof(*st));
	live = calloc(1, sizeof(*live));
	assert_non_null(st);
	assert_non_null(live);
	assert_int_equal(testbroker_start(&tb, "publish_rate = 0\n", NULL), 0);
	sub = sub_all(&tb, "hr-ncp", 1, live, &tf, f);
	pub = testbroker_connect(&tb, "si-ncp", 0, err, sizeof(err));
	if (pub == NULL)
		fail_msg("%s", err);
	cpx_client_on_event(pub, storm_cb, st);
	/* Publish until about a third is acknowledged, then kill -9. */
	until = testutil_now_ms() + 60000;
	while (st->acked < STORM / 3 && testutil_now_ms() < until) {
		while (sent < STORM && sent - st->acked < STORM_WINDOW) {
			snprintf(id, sizeof(id), "storm-%d", sent);
			testalert_init(&ta, id, CPX__CATEGORY__CATEGORY_ROUTE,
			    CPX__SEVERITY__SEVERITY_LOW,
			    CPX__HANDLING__HANDLING_NETWORK, "", "storm");
			assert_int_equal(cpx_publish_send(pub, &ta.alert, &req,
			    err, sizeof(err)), 0);
			sent++;
		}
		assert_true(cpx_client_run(pub, 5) >= 0);
		(void)cpx_client_run(sub, 0);
	}
	assert_true(st->acked >= STORM / 3);
	testbroker_stop(&tb, SIGKILL);
	/* Whatever else arrives before the kill is seen. */
	(void)cpx_client_run(pub, 100);
	cpx_client_free(&pub);
	assert_int_equal(testbroker_restart(&tb), 0);
	assert_true(testbroker_wait_log(&tb, "listening on", 5000));

	/* Every acknowledged alert is in the log, with its sequence. */
	rep = replay_all(&tb, "at-ncp");
	for (i = 0; i < st->acked; i++) {
		size_t k;
		int found = 0;

		for (k = 0; k < rep->n; k++)
			if (strcmp(rep->items[k].id, st->id[i]) == 0) {
				assert_int_equal(rep->items[k].seq, st->seq[i]);
				found++;
			}
		if (found != 1)
			fail_msg("acknowledged %s (seq %llu) found %d times",
			    st->id[i], (unsigned long long)st->seq[i], found);
	}
	/* The live subscriber resumed: each alert exactly once. */
	assert_true(testsink_wait_deliveries(live, sub, rep->n, 30000));
	assert_true(testsink_sync(live, sub, f, 1));
	assert_int_equal(live->n, rep->n);
	for (i = 0; i < st->acked; i++) {
		testsink_has(live, st->id[i], &count);
		if (count != 1)
			fail_msg("%s delivered %d times", st->id[i], count);
	}
	assert_true(live->disconnected >= 1);
	cpx_client_free(&sub);
	free(rep);
	free(live);
	free(st);
	assert_int_equal(testbroker_cleanup(&tb), 0);
}

static void
publish_n(struct testbroker *tb, const char *node, const char *prefix,
    int n)
{
	struct cpx_client *c;
	struct cpx_result res;
	struct testalert ta;
	char err[400], id[48];
	int i;

	if ((c = testbroker_connect(tb, node, 0, err, sizeof(err))) == NULL)
		fail_msg("%s: %s", node, err);
	for (i = 0; i < n; i++) {
		snprintf(id, sizeof(id), "%s-%d", prefix, i);
		testalert_init(&ta, id, CPX__CATEGORY__CATEGORY_VEHICLE,
		    CPX__SEVERITY__SEVERITY_MEDIUM,
		    CPX__HANDLING__HANDLING_NETWORK, "", "resume test");
		if (cpx_publish(c, &ta.alert, 10000, &res) == -1)
			fail_msg("%s: %s", id, res.text);
	}
	cpx_client_free(&c);
}

static void
test_resume_across_restart(void **state)
{
	struct testbroker tb;
	struct testsink *live;
	struct testfilter tf;
	Cpx__Filter *f[1];
	struct cpx_client *sub;
	uint64_t prev = 0;
	size_t i;

	(void)state;
	live = calloc(1, sizeof(*live));
	assert_non_null(live);
	assert_int_equal(testbroker_start(&tb, NULL, NULL), 0);
	sub = sub_all(&tb, "rs-ncp", 1, live, &tf, f);
	publish_n(&tb, "si-ncp", "before", 40);
	assert_true(testsink_wait_deliveries(live, sub, 40, 10000));
	assert_int_equal(testbroker_restart(&tb), 0);
	/* Published while the subscriber is still reconnecting. */
	publish_n(&tb, "hu-ncp", "after", 40);
	assert_true(testsink_wait_deliveries(live, sub, 80, 20000));
	publish_n(&tb, "it-ncp", "live", 20);
	assert_true(testsink_wait_deliveries(live, sub, 100, 10000));
	assert_true(testsink_sync(live, sub, f, 1));
	assert_int_equal(live->n, 100);
	for (i = 0; i < live->n; i++) {
		assert_true(live->items[i].seq > prev);	/* no dup, ordered */
		assert_true(live->items[i].verified);
		prev = live->items[i].seq;
	}
	assert_int_equal(live->connected, 2);
	cpx_client_free(&sub);
	free(live);
	assert_int_equal(testbroker_cleanup(&tb), 0);
}

static void
test_replay_entitlement(void **state)
{
	Cpx__ReplayRequest rq = CPX__REPLAY_REQUEST__INIT;
	struct testbroker tb;
	struct testsink *s;
	struct testfilter tf;
	Cpx__Filter *f[1];
	struct cpx_client *si, *c;
	struct cpx_result res;
	struct testalert ta;
	char err[400];
	uint64_t req;
	int count;

	(void)state;
	assert_int_equal(testbroker_start(&tb, NULL, NULL), 0);
	si = testbroker_connect(&tb, "si-ncp", 0, err, sizeof(err));
	assert_non_null(si);
	testalert_init(&ta, "e-net", CPX__CATEGORY__CATEGORY_ROUTE,
	    CPX__SEVERITY__SEVERITY_LOW, CPX__HANDLING__HANDLING_NETWORK, "",
	    "network-wide");
	assert_int_equal(cpx_publish(si, &ta.alert, 10000, &res), 0);
	testalert_init(&ta, "e-hr", CPX__CATEGORY__CATEGORY_VEHICLE,
	    CPX__SEVERITY__SEVERITY_HIGH, CPX__HANDLING__HANDLING_NAMED_ONLY,
	    "HR", "for Croatia only");
	assert_int_equal(cpx_publish(si, &ta.alert, 10000, &res), 0);
	testalert_init(&ta, "e-wb", CPX__CATEGORY__CATEGORY_CROSSING,
	    CPX__SEVERITY__SEVERITY_MEDIUM, CPX__HANDLING__HANDLING_RESTRICTED,
	    "western-balkans", "for the Western Balkans");
	assert_int_equal(cpx_publish(si, &ta.alert, 10000, &res), 0);
	cpx_client_free(&si);

	/* HR sees e-net and e-hr, never e-wb. */
	s = replay_all(&tb, "hr-ncp");
	assert_true(testsink_has(s, "e-net", NULL));
	assert_true(testsink_has(s, "e-hr", NULL));
	assert_false(testsink_has(s, "e-wb", NULL));
	assert_int_equal(s->n, 2);
	assert_true(s->items[0].replayed);
	free(s);
	/* RS sees e-net and e-wb, never e-hr, whatever it asks for. */
	s = replay_all(&tb, "rs-ncp");
	assert_int_equal(s->n, 2);
	assert_false(testsink_has(s, "e-hr", NULL));
	free(s);
	/* Filters: HR asks for vehicle alerts only. */
	s = calloc(1, sizeof(*s));
	c = testbroker_connect(&tb, "hr-ncp", 0, err, sizeof(err));
	assert_non_null(c);
	testsink_attach(s, c);
	{
		static const Cpx__Category veh[] = {
		    CPX__CATEGORY__CATEGORY_VEHICLE };

		testfilter_init(&tf, "SI", "", veh, 1, 0);
	}
	f[0] = &tf.f;
	rq.filters = f;
	rq.n_filters = 1;
	assert_int_equal(cpx_replay(c, &rq, &req), 0);
	assert_true(testsink_run_until(c, &s->replay_ends, 1, 10000));
	assert_int_equal(s->n, 1);
	assert_string_equal(s->items[0].id, "e-hr");
	/* Range: from a sequence after all alerts gives nothing. */
	rq.n_filters = 0;
	rq.from_seq = 1000000;
	assert_int_equal(cpx_replay(c, &rq, &req), 0);
	assert_true(testsink_run_until(c, &s->replay_ends, 2, 10000));
	assert_int_equal(s->replay_count, 0);
	/* Every record kind needs the audit right. */
	rq.from_seq = 0;
	rq.all_kinds = 1;
	assert_int_equal(cpx_replay(c, &rq, &req), 0);
	assert_true(testsink_run_until(c, &s->errors, 1, 10000));
	assert_int_equal(s->last_reason, CPX__REASON__REASON_NOT_AUTHORIZED);
	cpx_client_free(&c);
	free(s);
	/* SI holds the audit right in the example policy. */
	s = calloc(1, sizeof(*s));
	c = testbroker_connect(&tb, "si-ncp", 0, err, sizeof(err));
	assert_non_null(c);
	testsink_attach(s, c);
	assert_int_equal(cpx_replay(c, &rq, &req), 0);
	assert_true(testsink_run_until(c, &s->replay_ends, 1, 10000));
	assert_true(s->records > 3);	/* sessions, alerts, replays */
	testsink_has(s, "e-net", &count);
	cpx_client_free(&c);
	free(s);
	assert_int_equal(testbroker_cleanup(&tb), 0);
}

static void
test_disk_full(void **state)
{
	struct testbroker tb;
	struct cpx_client *si;
	struct cpx_result res;
	struct testalert ta;
	char fs[256], extra[512], filler[300], err[400], id[32];
	int i, refused = 0;

	(void)state;
	assert_int_equal(testutil_mkdtemp(fs, sizeof(fs)), 0);
	if (mount("tmpfs", fs, "tmpfs", 0, "size=1m,mode=0700") == -1) {
		if (testutil_rmrf(fs) == -1)
			print_error("cannot remove %s\n", fs);
		skip();
	}
	snprintf(extra, sizeof(extra), "audit_dir = %s/audit\n", fs);
	assert_int_equal(testbroker_start(&tb, extra, NULL), 0);
	si = testbroker_connect(&tb, "si-ncp", 1, err, sizeof(err));
	assert_non_null(si);
	/* Fill the file system. */
	snprintf(filler, sizeof(filler), "%s/filler", fs);
	assert_int_equal(testutil_fill_disk(filler), 0);
	for (i = 0; i < 20 && !refused; i++) {
		snprintf(id, sizeof(id), "full-%d", i);
		testalert_init(&ta, id, CPX__CATEGORY__CATEGORY_ROUTE,
		    CPX__SEVERITY__SEVERITY_LOW,
		    CPX__HANDLING__HANDLING_NETWORK, "", "disk full test");
		if (cpx_publish(si, &ta.alert, 10000, &res) == -1) {
			assert_int_equal(res.reason,
			    CPX__REASON__REASON_STORAGE);
			assert_non_null(strstr(res.text, "No space left"));
			refused = 1;
		}
	}
	assert_true(refused);
	assert_true(testbroker_wait_log(&tb, "No space left on device", 0));
	/* Space returns: the same alert is accepted, the broker never left. */
	assert_int_equal(unlink(filler), 0);
	assert_int_equal(cpx_publish(si, &ta.alert, 10000, &res), 0);
	assert_false(res.duplicate);
	cpx_client_free(&si);
	assert_int_equal(testbroker_cleanup(&tb), 0);
	(void)umount(fs);
	if (testutil_rmrf(fs) == -1)
		print_error("cannot remove %s\n", fs);
}

/* --- the high-water mark, through a real broker ---------------------- */

/*
 * Run cpx-broker on tb's configuration with flag (or NULL) until it
 * listens (returns 0, tb->pid set) or exits (returns its status + 1).
 */
static int
broker_try(struct testbroker *tb, const char *flag)
{
	const char *bin = getenv("CPX_BINARY_DIR");
	char exe[512];
	int64_t until;
	int fd, status;

	snprintf(exe, sizeof(exe), "%s/broker/cpx-broker",
	    bin ? bin : CPX_BINARY_DIR);
	assert_int_equal(truncate(tb->log, 0), 0);
	tb->pid = fork();
	assert_true(tb->pid >= 0);
	if (tb->pid == 0) {
		fd = open(tb->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
		if (fd != -1) {
			dup2(fd, 2);
			dup2(fd, 1);
		}
		execl(exe, "cpx-broker", "-c", tb->conf, flag, (char *)NULL);
		_exit(127);
	}
	until = testutil_now_ms() + 20000;
	while (testutil_now_ms() < until) {
		if (waitpid(tb->pid, &status, WNOHANG) == tb->pid) {
			tb->pid = 0;
			return WIFEXITED(status) ? WEXITSTATUS(status) + 1 :
			    255;
		}
		if (testbroker_wait_log(tb, "listening on", 0))
			return 0;
		usleep(10000);	/* polling, not waiting for an event */
	}
	fail_msg("broker neither listened nor exited");
	return -1;
}

/* The last record's seq, as cpx-audit would read it. */
static uint64_t
log_last_seq(const char *dir)
{
	struct audit_verify_stats st;
	char err[512];

	if (audit_verify_dir_stats(dir, NULL, &st, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	return st.last_seq;
}

/* Remove the last n frames of the one segment of dir. */
static void
cut_frames(const char *dir, size_t n, uint8_t **saved, size_t *savedlen)
{
	char path[512];
	size_t off[4096], k = 0, pos = 0, len;
	uint8_t *img;
	FILE *fp;

	snprintf(path, sizeof(path), "%s/seg-%020d.log", dir, 1);
	fp = fopen(path, "rb");
	assert_non_null(fp);
	img = malloc(1 << 20);
	assert_non_null(img);
	len = fread(img, 1, 1 << 20, fp);
	fclose(fp);
	assert_true(len < (1 << 20));
	while (pos + 8 <= len && k < 4096) {
		off[k++] = pos;
		pos += 8 + ((size_t)img[pos + 4] << 24 |
		    (size_t)img[pos + 5] << 16 | (size_t)img[pos + 6] << 8 |
		    img[pos + 7]) + 32;
	}
	assert_true(k > n);
	assert_int_equal(truncate(path, (off_t)off[k - n]), 0);
	*saved = img;
	*savedlen = len;
}

static void
restore_segment(const char *dir, const uint8_t *img, size_t len)
{
	char path[512];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/seg-%020d.log", dir, 1);
	fp = fopen(path, "wb");
	assert_non_null(fp);
	assert_int_equal(fwrite(img, 1, len, fp), len);
	assert_int_equal(fclose(fp), 0);
}

/*
 * The broker's own last line agrees with the log; a log with its last
 * ten records removed does not start, naming them; without its mark it
 * does not start either, unless the operator says so, which the log
 * then records.
 */
static void
test_mark_broker(void **state)
{
	struct testbroker tb;
	uint8_t *img;
	size_t len;
	uint64_t last;
	char want[256], mark[600];
	long n;
	int kind;

	(void)state;
	assert_int_equal(testbroker_start(&tb, NULL, NULL), 0);
	publish_n(&tb, "si-ncp", "mark", 12);
	assert_int_equal(testbroker_stop(&tb, SIGTERM), 0);
	last = log_last_seq(tb.audit);
	/* "stopped: ... last seq N" after the closing checkpoint: N. */
	snprintf(want, sizeof(want), "deliveries, last seq %llu\n",
	    (unsigned long long)last);
	if (testbroker_log_count(&tb, want) != 1)
		fail_msg("no \"%s\" in the broker log", want);
	n = harden_audit_count(tb.audit, CPX__RECORD_KIND__RECORD_CHECKPOINT,
	    -1, &kind);
	assert_true(n >= 1);
	assert_int_equal(kind, CPX__RECORD_KIND__RECORD_CHECKPOINT);

	/* The last ten removed: refused, the range named. */
	cut_frames(tb.audit, 10, &img, &len);
	assert_int_equal(broker_try(&tb, NULL), 2);
	snprintf(want, sizeof(want), "records %llu..%llu are missing: the "
	    "high-water mark", (unsigned long long)(last - 9),
	    (unsigned long long)last);
	if (testbroker_log_count(&tb, want) != 1)
		fail_msg("no \"%s\" in the broker log", want);
	restore_segment(tb.audit, img, len);
	free(img);
	assert_int_equal(broker_try(&tb, NULL), 0);
	assert_int_equal(testbroker_stop(&tb, SIGTERM), 0);
	/* Nothing appended in that run: the log is as it was. */
	assert_int_equal(log_last_seq(tb.audit), last);

	/* No mark: refused; with the override: started, on record. */
	snprintf(mark, sizeof(mark), "%s/high-water-mark", tb.audit);
	assert_int_equal(unlink(mark), 0);
	assert_int_equal(broker_try(&tb, NULL), 2);
	assert_int_equal(testbroker_log_count(&tb, "no high-water mark"), 1);
	assert_int_equal(broker_try(&tb, "--accept-log-without-mark"), 0);
	assert_int_equal(testbroker_log_count(&tb,
	    "started without a high-water mark"), 1);
	assert_int_equal(harden_audit_count(tb.audit,
	    CPX__RECORD_KIND__RECORD_OPERATOR_OVERRIDE, -1, &kind), 1);
	assert_int_equal(testbroker_restart(&tb), 0);
	assert_int_equal(testbroker_cleanup(&tb), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kill9_storm),
		cmocka_unit_test(test_resume_across_restart),
		cmocka_unit_test(test_replay_entitlement),
		cmocka_unit_test(test_disk_full),
		cmocka_unit_test(test_mark_broker),
	};

	signal(SIGPIPE, SIG_IGN);
	if (getenv("CPX_TEST_FILTER") != NULL)
		cmocka_set_test_filter(getenv("CPX_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
