/*
 * test_admission.c: the broker under load it did not ask for, against a
 * real cpx-broker process on 127.0.0.1.
 *
 * - Pipelined publish storms (three nodes at once, and one alone) with one
 *   and two verifier threads: every publish is answered, other nodes are
 *   served throughout, and SIGTERM still ends the broker cleanly. This is
 *   the deadlock the verifier hand-off once had (network thread and
 *   verifier each blocked on the other's full queue).
 * - Every fatal Error is said before the close: a subscriber cut for being
 *   slow reads "overloaded", a node that sends an oversized frame reads
 *   "too-large", each 50 times.
 * - Unauthenticated noise cannot fill the disk: thousands of garbage
 *   connections add a handful of audit records, which still count them.
 * - Per-address and per-node limits keep idle connections and one node's
 *   sessions from locking others out.
 */
#include <sys/socket.h>
#include <sys/wait.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "alert.h"
#include "cpx_client.h"
#include "harden_util.h"
#include "sign.h"
#include "testbroker.h"
#include "testpki.h"
#include "testsink.h"
#include "tlsctx.h"

/* ---- pipelined publish storms ------------------------------------- */

struct answers {
	int	acks;
	int	overloaded;
	int	other;		/* any other refusal: a failure */
	int	lost;		/* disconnected */
	int	other_reason;
};

static void
answers_cb(const struct cpx_event *ev, void *arg)
{
	struct answers *a = arg;

	switch (ev->kind) {
	case CPX_EV_ACK:
		a->acks++;
		break;
	case CPX_EV_ERROR:
		if (ev->reason == CPX__REASON__REASON_OVERLOADED && !ev->fatal)
			a->overloaded++;
		else {
			a->other++;
			a->other_reason = ev->reason;
		}
		break;
	case CPX_EV_DISCONNECTED:
		a->lost++;
		break;
	default:
		break;
	}
}

static void
send_many(struct cpx_client *c, const char *prefix, int n)
{
	struct testalert ta;
	char id[48], err[400];
	uint64_t req;
	int i;

	for (i = 0; i < n; i++) {
		snprintf(id, sizeof(id), "%s-%d", prefix, i);
		testalert_init(&ta, id, CPX__CATEGORY__CATEGORY_ROUTE,
		    CPX__SEVERITY__SEVERITY_LOW,
		    CPX__HANDLING__HANDLING_RESTRICTED, "HR", "pipelined");
		if (cpx_publish_send(c, &ta.alert, &req, err,
		    sizeof(err)) == -1)
			fail_msg("publish_send %s: %s", id, err);
	}
}

/*
 * storm nodes each pipeline per_node publishes at once (nothing read until
 * all are sent), while hu-ncp publishes one alert at a time and it-ncp
 * receives those: the bystanders must be answered promptly throughout.
 */
static void
storm(const char *verify_threads, const char *const *nodes, size_t nnodes,
    int per_node)
{
	struct testbroker tb;
	struct cpx_client *c[4], *hu, *it;
	struct answers a[4];
	struct testsink hus, its;
	struct testfilter tf;
	Cpx__Filter *filters[1];
	struct testalert ta;
	char conf[200], err[400], id[48];
	uint64_t req;
	int64_t t0, until, sent_at, worst = 0, stop_ms;
	int done, status, bystander = 0, answered;
	size_t k;

	snprintf(conf, sizeof(conf), "verify_threads = %s\n"
	    "publish_rate = 0\n", verify_threads);
	assert_int_equal(testbroker_start(&tb, conf, NULL), 0);
	assert_true(nnodes <= 4);
	it = testsink_connect(&tb, "it-ncp", 0, &its);
	hu = testsink_connect(&tb, "hu-ncp", 0, &hus);
	assert_non_null(it);
	assert_non_null(hu);
	testfilter_init(&tf, "HU", "", NULL, 0, 0);
	filters[0] = &tf.f;
	assert_int_equal(cpx_subscribe(it, filters, 1, 0, 0, &req), 0);
	assert_true(testsink_run_until(it, &its.subscribed, 1, 5000));
	for (k = 0; k < nnodes; k++) {
		memset(&a[k], 0, sizeof(a[k]));
		c[k] = testbroker_connect(&tb, nodes[k], 0, err, sizeof(err));
		if (c[k] == NULL)
			fail_msg("%s: %s", nodes[k], err);
		cpx_client_on_event(c[k], answers_cb, &a[k]);
	}
	t0 = testutil_now_ms();
	for (k = 0; k < nnodes; k++)
		send_many(c[k], nodes[k], per_node);
	until = t0 + 240000;
	sent_at = 0;
	for (;;) {
		done = 1;
		for (k = 0; k < nnodes; k++) {
			assert_true(cpx_client_run(c[k], 0) >= 0);
			answered = a[k].acks + a[k].overloaded + a[k].other;
			if (answered < per_node && a[k].lost == 0)
				done = 0;
		}
		/* The bystander: one publish at a time, timed. */
		if (sent_at == 0) {
			snprintf(id, sizeof(id), "bystander-%d", bystander);
			testalert_init(&ta, id, CPX__CATEGORY__CATEGORY_ROUTE,
			    CPX__SEVERITY__SEVERITY_HIGH,
			    CPX__HANDLING__HANDLING_NETWORK, "", "bystander");
			assert_int_equal(cpx_publish_send(hu, &ta.alert, &req,
			    err, sizeof(err)), 0);
			sent_at = testutil_now_ms();
		}
		assert_true(cpx_client_run(hu, 1) >= 0);
		assert_true(cpx_client_run(it, 0) >= 0);
		if (hus.acks + hus.errors > bystander) {
			assert_int_equal(hus.errors, 0);
			if (testutil_now_ms() - sent_at > worst)
				worst = testutil_now_ms() - sent_at;
			bystander++;
			sent_at = 0;
		}
		if (done || testutil_now_ms() > until)
			break;
	}
	/* The bystander's last publish is answered too, and timed. */
	if (sent_at != 0) {
		assert_true(testsink_run_until(hu, &hus.acks, bystander + 1,
		    5000));
		if (testutil_now_ms() - sent_at > worst)
			worst = testutil_now_ms() - sent_at;
		bystander++;
	}
	for (k = 0; k < nnodes; k++) {
		fprintf(stderr, "verify_threads %s, %s: %d publishes pipelined: "
		    "%d acknowledged, %d refused as overloaded\n",
		    verify_threads, nodes[k], per_node, a[k].acks,
		    a[k].overloaded);
		assert_int_equal(a[k].lost, 0);
		if (a[k].other != 0)
			fail_msg("%s: %d refusals other than overloaded (last "
			    "%s)", nodes[k], a[k].other,
			    alert_reason_name(a[k].other_reason));
		assert_int_equal(a[k].acks + a[k].overloaded, per_node);
		assert_true(a[k].acks > 0);
	}
	/* Bystanders were served all along, and in good time. */
	fprintf(stderr, "storm over in %lld ms; bystander: %d publishes "
	    "acknowledged, slowest %lld ms\n", (long long)(testutil_now_ms() -
	    t0), bystander, (long long)worst);
	assert_true(bystander >= 1);
	assert_true(worst < 5000);
	assert_true(testsink_wait_deliveries(&its, it, (size_t)bystander,
	    5000));
	/* And the broker still stops when told, cleanly, within the drain. */
	for (k = 0; k < nnodes; k++)
		cpx_client_free(&c[k]);
	cpx_client_free(&hu);
	cpx_client_free(&it);
	stop_ms = testutil_now_ms();
	status = testbroker_stop(&tb, SIGTERM);
	stop_ms = testutil_now_ms() - stop_ms;
	fprintf(stderr, "SIGTERM to exit: %lld ms\n", (long long)stop_ms);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_true(stop_ms < 5000);
	assert_int_equal(testbroker_cleanup(&tb), 0);
}

/* Publishes per storm; CPX_TEST_STORM scales it (sanitizer builds). */
static int
storm_size(int dflt)
{
	const char *v = getenv("CPX_TEST_STORM");

	return v != NULL && atoi(v) > 0 ? atoi(v) : dflt;
}

static void
test_storm_three_nodes(void **state)
{
	static const char *const nodes[] = { "si-ncp", "rs-ncp", "at-ncp" };
	int n = storm_size(21000) / 3;

	(void)state;
	storm("1", nodes, 3, n);
	storm("2", nodes, 3, n);
}

static void
test_storm_one_node(void **state)
{
	static const char *const nodes[] = { "si-ncp" };
	int n = storm_size(21000);

	(void)state;
	storm("1", nodes, 1, n);
	storm("2", nodes, 1, n);
}

/* ---- every fatal Error is said before the close ------------------- */

#define REPEAT	50

/* Read what r has until the broker closes: 1 if an Error came first. */
static int
error_before_close(struct rawtls *r, int reason, int timeout_ms)
{
	if (!rawtls_wait_close(r, timeout_ms))
		return 0;
	return r->last_error == reason && r->last_fatal;
}

static void
test_oversize_frame_error(void **state)
{
	Cpx__Envelope env = CPX__ENVELOPE__INIT;
	Cpx__Publish pub = CPX__PUBLISH__INIT;
	Cpx__SignedAlert sa = CPX__SIGNED_ALERT__INIT;
	static uint8_t body[200 * 1024];
	struct testbroker tb;
	struct testsink sink;
	struct cpx_client *good;
	struct rawtls raw;
	int i, got = 0;

	(void)state;
	assert_int_equal(testbroker_start(&tb, "connect_rate = 0\n"
	    "max_frame = 65536\n", NULL), 0);
	good = testsink_connect(&tb, "hr-ncp", 0, &sink);
	assert_non_null(good);
	memset(body, 'A', sizeof(body));
	sa.alert.data = body;
	sa.alert.len = sizeof(body);
	pub.request_id = 1;
	pub.alert = &sa;
	env.body_case = CPX__ENVELOPE__BODY_PUBLISH;
	env.publish = &pub;
	for (i = 0; i < REPEAT; i++) {
		assert_int_equal(rawtls_open(&raw, tb.port, "si-ncp", 0, 1), 0);
		/* All 200 KB go out; the broker stops reading at 64 KiB. */
		assert_int_equal(rawtls_send(&raw, &env), 0);
		if (error_before_close(&raw, CPX__REASON__REASON_TOO_LARGE,
		    10000))
			got++;
		else
			fprintf(stderr, "round %d: closed without the Error "
			    "(last error %d)\n", i, raw.last_error);
		rawtls_close(&raw);
	}
	fprintf(stderr, "oversized frame: too-large Error read before the "
	    "close %d times of %d\n", got, REPEAT);
	assert_int_equal(got, REPEAT);
	assert_true(testsink_served(&sink, good));
	cpx_client_free(&good);
	assert_int_equal(testbroker_cleanup(&tb), 0);
}

/*
 * Publishes sent between two looks at the broker's log: large enough that
 * a repetition takes a few group commits, not dozens (each commit waits
 * for the disk twice: records, then the high-water mark).
 */
#define SLOW_BATCH	400

static void
test_slow_subscriber_error(void **state)
{
	Cpx__Envelope env = CPX__ENVELOPE__INIT;
	Cpx__Subscribe sub = CPX__SUBSCRIBE__INIT;
	Cpx__Filter all = CPX__FILTER__INIT, *filters[1] = { &all };
	struct testbroker tb;
	struct cpx_client *pub;
	struct testsink ps;
	struct testalert ta;
	struct rawtls raw;
	Cpx__Envelope *e;
	char id[48], err[400], big[2000];
	uint64_t req;
	int i, j, got = 0, before, sent, repeat;

	(void)state;
	assert_int_equal(testbroker_start(&tb, "outbound_queue = 65536\n"
	    "max_frame = 65536\npublish_rate = 0\nconnect_rate = 0\n",
	    NULL), 0);
	pub = testsink_connect(&tb, "si-ncp", 0, &ps);
	assert_non_null(pub);
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	sub.request_id = 1;
	sub.filters = filters;
	sub.n_filters = 1;
	env.body_case = CPX__ENVELOPE__BODY_SUBSCRIBE;
	env.subscribe = &sub;
	/*
	 * Each repetition publishes until the reader's buffers fill (a few
	 * thousand signed alerts): scaled down with the storms in sanitizer
	 * builds, where signing and TLS cost several times more.
	 */
	repeat = (int)((int64_t)REPEAT * storm_size(21000) / 21000);
	if (repeat < 5)
		repeat = 5;
	if (repeat > REPEAT)
		repeat = REPEAT;
	for (i = 0; i < repeat; i++) {
		/* A small receive window: the stall reaches the broker fast. */
		assert_int_equal(rawtls_open(&raw, tb.port, "hr-ncp", 4096, 1),
		    0);
		assert_int_equal(rawtls_send(&raw, &env), 0);
		e = rawtls_read(&raw, 5000);
		assert_non_null(e);
		assert_int_equal(e->body_case, CPX__ENVELOPE__BODY_SUBSCRIBED);
		cpx__envelope__free_unpacked(e, NULL);
		/* Publish, not reading, until the broker cuts the reader. */
		before = testbroker_log_count(&tb, "outbound queue over");
		for (sent = 0; sent < 20000 &&
		    testbroker_log_count(&tb, "outbound queue over") == before;
		    sent += SLOW_BATCH) {
			for (j = 0; j < SLOW_BATCH; j++) {
				snprintf(id, sizeof(id), "slow-%d-%d", i,
				    sent + j);
				testalert_init(&ta, id,
				    CPX__CATEGORY__CATEGORY_ROUTE,
				    CPX__SEVERITY__SEVERITY_LOW,
				    CPX__HANDLING__HANDLING_NETWORK, "", big);
				assert_int_equal(cpx_publish_send(pub,
				    &ta.alert, &req, err, sizeof(err)), 0);
			}
			while (cpx_publish_inflight(pub) > 0)
				assert_true(cpx_client_run(pub, 10) >= 0);
		}
		assert_true(testbroker_log_count(&tb, "outbound queue over") >
		    before);
		/* Now read: deliveries, then the reason, then the close. */
		if (error_before_close(&raw, CPX__REASON__REASON_OVERLOADED,
		    10000))
			got++;
		else
			fprintf(stderr, "round %d: closed without the Error "
			    "(%zu deliveries, last error %d)\n", i,
			    raw.deliveries, raw.last_error);
		rawtls_close(&raw);
	}
	fprintf(stderr, "slow subscriber: overloaded Error read before the "
	    "close %d times of %d\n", got, repeat);
	assert_int_equal(got, repeat);
	cpx_client_free(&pub);
	assert_int_equal(testbroker_cleanup(&tb), 0);
}

/* ---- unauthenticated noise ---------------------------------------- */

/* A TCP connection to 127.0.0.1:port from source address src. */
static int
connect_from(const char *src, int port)
{
	struct sockaddr_in sin;
	int fd;

	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		return -1;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	if (inet_pton(AF_INET, src, &sin.sin_addr) != 1 ||
	    bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1) {
		close(fd);
		return -1;
	}
	sin.sin_port = htons((uint16_t)port);
	inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1) {
		close(fd);
		return -1;
	}
	return fd;
}

#define GARBAGE_N	5000

static void
test_garbage_flood_audit(void **state)
{
	static const char junk[] = "\x16\x03\x01\x00\x05hello garbage";
	struct testbroker tb;
	struct testsink sink;
	struct cpx_client *good;
	long records, refusals;
	int i, fd, status;

	(void)state;
	/*
	 * No per-address limit before TLS: every connection reaches the
	 * TLS layer and fails there (test_connect_rate_per_address covers
	 * the limits).
	 */
	assert_int_equal(testbroker_start(&tb, "connect_rate = 0\n"
	    "max_handshakes = 6000\nmax_handshakes_per_address = 6000\n"
	    "max_sessions = 6000\n", NULL), 0);
	good = testsink_connect(&tb, "hr-ncp", 0, &sink);
	assert_non_null(good);
	for (i = 0; i < GARBAGE_N; i++) {
		if ((fd = connect_from("127.0.0.2", tb.port)) == -1)
			fail_msg("connect %d: %s", i, strerror(errno));
		(void)write(fd, junk, sizeof(junk) - 1);
		close(fd);
		if (i % 500 == 0)
			assert_true(cpx_client_run(good, 0) >= 0);
	}
	assert_true(testsink_served(&sink, good));
	cpx_client_free(&good);
	status = testbroker_stop(&tb, SIGTERM);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_int_equal(harden_audit_refusals(tb.audit,
	    CPX__RECORD_KIND__RECORD_SESSION_REFUSED, -1, &records,
	    &refusals), 0);
	fprintf(stderr, "%d garbage connections: %ld session-refused "
	    "records standing for %ld refusals\n", GARBAGE_N, records,
	    refusals);
	/* A handful of records, still counting (nearly) every one. */
	assert_true(records <= 8);
	assert_true(refusals >= GARBAGE_N * 9 / 10);
	/* + the harness's start-up probes from 127.0.0.1 */
	assert_true(refusals <= GARBAGE_N + 5);
	assert_int_equal(testbroker_cleanup(&tb), 0);
}

/* ---- per-address and per-node limits ------------------------------ */

static void
test_idle_connections_do_not_lock_out(void **state)
{
	struct testbroker tb;
	struct testsink sink;
	struct cpx_client *good;
	int fds[40], i, n = 0;

	(void)state;
	/* The finding: 20 idle connections filled max_sessions = 20. */
	assert_int_equal(testbroker_start(&tb, "max_sessions = 20\n"
	    "max_handshakes = 8\nmax_handshakes_per_address = 4\n", NULL), 0);
	for (i = 0; i < 40; i++)
		if ((fds[n] = connect_from(i % 2 ? "127.0.0.3" : "127.0.0.2",
		    tb.port)) >= 0)
			n++;
	assert_int_equal(n, 40);
	/* A real node still gets in, and is served. */
	good = testsink_connect(&tb, "hr-ncp", 0, &sink);
	assert_non_null(good);
	assert_true(testsink_served(&sink, good));
	assert_true(testbroker_wait_log(&tb,
	    "config key max_handshakes_per_address", 5000));
	for (i = 0; i < n; i++)
		close(fds[i]);
	cpx_client_free(&good);
	assert_int_equal(testbroker_cleanup(&tb), 0);
}

static void
test_connect_rate_per_address(void **state)
{
	struct testbroker tb;
	struct testsink sink;
	struct cpx_client *good;
	struct pollfd pfd;
	char b;
	int i, fds[20], closed_fast = 0;

	(void)state;
	assert_int_equal(testbroker_start(&tb, "connect_rate = 1\n"
	    "connect_burst = 5\n", NULL), 0);
	/* The sixth and later from one address are closed at once. */
	for (i = 0; i < 20; i++)
		assert_true((fds[i] = connect_from("127.0.0.4", tb.port)) >= 0);
	for (i = 0; i < 20; i++) {
		pfd.fd = fds[i];
		pfd.events = POLLIN;
		if (poll(&pfd, 1, 1000) == 1 && read(fds[i], &b, 1) <= 0)
			closed_fast++;
		close(fds[i]);
	}
	fprintf(stderr, "20 connections at once from one address: %d closed "
	    "at once\n", closed_fast);
	assert_true(closed_fast >= 14);
	assert_true(testbroker_wait_log(&tb, "config keys connect_rate", 2000));
	/* Another address is not affected. */
	good = testsink_connect(&tb, "hr-ncp", 0, &sink);
	assert_non_null(good);
	assert_true(testsink_served(&sink, good));
	cpx_client_free(&good);
	assert_int_equal(testbroker_cleanup(&tb), 0);
}

static void
test_sessions_per_node(void **state)
{
	struct testbroker tb;
	struct cpx_client *c[3];
	char err[400];

	(void)state;
	assert_int_equal(testbroker_start(&tb, "max_sessions_per_node = 2\n",
	    NULL), 0);
	c[0] = testbroker_connect(&tb, "si-ncp", 0, err, sizeof(err));
	c[1] = testbroker_connect(&tb, "si-ncp", 0, err, sizeof(err));
	assert_non_null(c[0]);
	assert_non_null(c[1]);
	c[2] = testbroker_connect(&tb, "si-ncp", 0, err, sizeof(err));
	assert_null(c[2]);
	if (strstr(err, "max_sessions_per_node") == NULL)
		fail_msg("third session refused with \"%s\"", err);
	/* Another node is not counted against it. */
	c[2] = testbroker_connect(&tb, "hr-ncp", 0, err, sizeof(err));
	assert_non_null(c[2]);
	cpx_client_free(&c[2]);
	/* One leaves: room again. */
	cpx_client_free(&c[1]);
	assert_true(testbroker_wait_log(&tb, "SI/si-ncp: session closed",
	    5000));
	c[1] = testbroker_connect(&tb, "si-ncp", 0, err, sizeof(err));
	assert_non_null(c[1]);
	cpx_client_free(&c[0]);
	cpx_client_free(&c[1]);
	assert_int_equal(testbroker_cleanup(&tb), 0);
}

/*
 * The broker-wide queue budget: four subscribers that stop reading may
 * each queue up to outbound_queue, but not all at once: past
 * queue_budget the longest queue is cut, and readers are not affected.
 */
static void
test_queue_budget(void **state)
{
	Cpx__Envelope env = CPX__ENVELOPE__INIT;
	Cpx__Subscribe sub = CPX__SUBSCRIBE__INIT;
	Cpx__Filter all = CPX__FILTER__INIT, *filters[1] = { &all };
	static const char *const stalled[] = { "rs-ncp", "ba-ncp", "me-ncp",
	    "al-ncp" };
	struct testbroker tb;
	struct cpx_client *pub, *reader;
	struct testsink ps, rs;
	struct testalert ta;
	struct rawtls raw[4];
	Cpx__Envelope *e;
	char id[48], err[400], big[2000];
	uint64_t req;
	int i, j, cut = 0;

	(void)state;
	assert_int_equal(testbroker_start(&tb, "outbound_queue = 4194304\n"
	    "queue_budget = 4194304\nmax_frame = 65536\npublish_rate = 0\n",
	    NULL), 0);
	pub = testsink_connect(&tb, "si-ncp", 0, &ps);
	reader = testsink_connect(&tb, "hr-ncp", 0, &rs);
	assert_non_null(pub);
	assert_non_null(reader);
	assert_int_equal(cpx_subscribe(reader, filters, 1, 0, 0, &req), 0);
	assert_true(testsink_run_until(reader, &rs.subscribed, 1, 5000));
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	sub.request_id = 1;
	sub.filters = filters;
	sub.n_filters = 1;
	env.body_case = CPX__ENVELOPE__BODY_SUBSCRIBE;
	env.subscribe = &sub;
	for (i = 0; i < 4; i++) {
		assert_int_equal(rawtls_open(&raw[i], tb.port, stalled[i],
		    4096, 1), 0);
		assert_int_equal(rawtls_send(&raw[i], &env), 0);
		e = rawtls_read(&raw[i], 5000);
		assert_non_null(e);
		cpx__envelope__free_unpacked(e, NULL);
	}
	/*
	 * 5,000 alerts of 2 KB, 10 MB for each stalled subscriber: more than
	 * the kernel and ZeroMQ buffer for it, so the rest queues here.
	 */
	for (i = 0; i < 5000; i += 50) {
		for (j = 0; j < 50; j++) {
			snprintf(id, sizeof(id), "budget-%d", i + j);
			testalert_init(&ta, id, CPX__CATEGORY__CATEGORY_ROUTE,
			    CPX__SEVERITY__SEVERITY_LOW,
			    CPX__HANDLING__HANDLING_NETWORK, "", big);
			assert_int_equal(cpx_publish_send(pub, &ta.alert, &req,
			    err, sizeof(err)), 0);
		}
		while (cpx_publish_inflight(pub) > 0) {
			assert_true(cpx_client_run(pub, 5) >= 0);
			assert_true(cpx_client_run(reader, 0) >= 0);
		}
	}
	assert_int_equal(ps.errors, 0);
	assert_true(testsink_wait_deliveries(&rs, reader, TESTSINK_MAX,
	    30000));
	assert_true(testbroker_wait_log(&tb, "over queue_budget", 5000));
	/*
	 * Cut by the budget, each while under its own outbound_queue (read
	 * from the log: these readers stalled longer than the broker waits
	 * for a cut peer to read its Error).
	 */
	cut = testbroker_log_count(&tb, "over queue_budget");
	assert_int_equal(testbroker_log_count(&tb, "outbound queue over"), 0);
	for (i = 0; i < 4; i++)
		rawtls_close(&raw[i]);
	fprintf(stderr, "queue budget: %d of 4 stalled subscribers cut, the "
	    "reader got all %zu\n", cut, rs.n);
	assert_true(cut >= 1);
	assert_int_equal(rs.disconnected, 0);
	cpx_client_free(&pub);
	cpx_client_free(&reader);
	assert_int_equal(testbroker_cleanup(&tb), 0);
}

/*
 * A retry after a lost Ack may come long after the alert was issued: the
 * same bytes get the original Ack again, not a clock-skew refusal; other
 * bytes that old are still refused.
 */
static void
test_late_repeat(void **state)
{
	Cpx__SignedAlert sa = CPX__SIGNED_ALERT__INIT;
	struct testbroker tb;
	struct testsink sink;
	struct cpx_client *c;
	struct testalert ta;
	EVP_PKEY *key;
	X509 *cert;
	uint8_t buf[4096];
	char path[512], err[400];
	uint64_t req, first_seq;
	int64_t issued;
	size_t len;

	(void)state;
	assert_int_equal(testbroker_start(&tb, "clock_skew_ms = 1000\n", NULL),
	    0);
	c = testsink_connect(&tb, "si-ncp", 0, &sink);
	assert_non_null(c);
	assert_int_equal(testpki_path(path, sizeof(path), "nodes/si-ncp.key"),
	    0);
	assert_non_null(key = tlsctx_load_key(path, err, sizeof(err)));
	assert_int_equal(testpki_path(path, sizeof(path), "nodes/si-ncp.pem"),
	    0);
	assert_non_null(cert = tlsctx_load_cert(path, err, sizeof(err)));
	testalert_init(&ta, "late-repeat-1", CPX__CATEGORY__CATEGORY_ROUTE,
	    CPX__SEVERITY__SEVERITY_LOW, CPX__HANDLING__HANDLING_NETWORK, "",
	    "sent, ack lost, sent again later");
	ta.alert.origin = "SI";
	issued = alert_now_ms() - 500;
	ta.alert.issued_at = issued;
	len = cpx__alert__get_packed_size(&ta.alert);
	assert_true(len <= sizeof(buf));
	cpx__alert__pack(&ta.alert, buf);
	assert_int_equal(sign_alert(key, cert, buf, len, &sa), 0);
	assert_int_equal(cpx_publish_signed(c, &sa, &req, err, sizeof(err)),
	    0);
	assert_true(testsink_run_until(c, &sink.acks, 1, 5000));
	first_seq = sink.last_ack_seq;
	/* Until the alert is outside the 1 s bound (polling the clock). */
	while (alert_now_ms() - issued <= 1500)
		assert_true(cpx_client_run(c, 50) >= 0);
	assert_int_equal(cpx_publish_signed(c, &sa, &req, err, sizeof(err)),
	    0);
	assert_true(testsink_run_until(c, &sink.acks, 2, 5000));
	assert_int_equal(sink.errors, 0);
	assert_true(sink.last_ack_dup);
	assert_int_equal(sink.last_ack_seq, first_seq);
	/* Other bytes as old are refused as before. */
	sign_signed_alert_clear(&sa);
	ta.alert.id = "late-repeat-2";
	len = cpx__alert__get_packed_size(&ta.alert);
	cpx__alert__pack(&ta.alert, buf);
	assert_int_equal(sign_alert(key, cert, buf, len, &sa), 0);
	assert_int_equal(cpx_publish_signed(c, &sa, &req, err, sizeof(err)),
	    0);
	assert_true(testsink_run_until(c, &sink.errors, 1, 5000));
	assert_int_equal(sink.last_reason, CPX__REASON__REASON_CLOCK_SKEW);
	sign_signed_alert_clear(&sa);
	EVP_PKEY_free(key);
	X509_free(cert);
	cpx_client_free(&c);
	assert_int_equal(testbroker_cleanup(&tb), 0);
}

/* A node refused over and over is cut and kept out for a while. */
static void
test_refusal_limit(void **state)
{
	struct testbroker tb;
	struct testsink sink;
	struct cpx_client *c;
	struct testalert ta;
	char err[400], id[48];
	uint64_t req;
	long records, refusals;
	int i, status;

	(void)state;
	assert_int_equal(testbroker_start(&tb, "refusal_limit = 50\n"
	    "refusal_penalty_ms = 60000\n", NULL), 0);
	c = testsink_connect(&tb, "si-ncp", 0, &sink);
	assert_non_null(c);
	/* Not allowed: named-only alerts may not go to a region. */
	for (i = 0; i < 200 && !sink.disconnected; i++) {
		snprintf(id, sizeof(id), "refused-%d", i);
		testalert_init(&ta, id, CPX__CATEGORY__CATEGORY_ROUTE,
		    CPX__SEVERITY__SEVERITY_LOW,
		    CPX__HANDLING__HANDLING_NAMED_ONLY, "western-balkans",
		    "refused");
		if (cpx_publish_send(c, &ta.alert, &req, err,
		    sizeof(err)) == -1)
			break;
		(void)cpx_client_run(c, 0);
	}
	while (cpx_client_run(c, 50) >= 0 && !sink.last_fatal)
		;
	assert_int_equal(sink.last_reason, CPX__REASON__REASON_SESSION_LIMIT);
	assert_non_null(strstr(sink.last_text, "kept out"));
	cpx_client_free(&c);
	/* Kept out: a new session is refused with how long to wait. */
	c = testbroker_connect(&tb, "si-ncp", 0, err, sizeof(err));
	assert_null(c);
	if (strstr(err, "kept out") == NULL)
		fail_msg("reconnect refused with \"%s\"", err);
	/* Others are fine. */
	c = testbroker_connect(&tb, "hr-ncp", 0, err, sizeof(err));
	assert_non_null(c);
	cpx_client_free(&c);
	status = testbroker_stop(&tb, SIGTERM);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_int_equal(harden_audit_refusals(tb.audit,
	    CPX__RECORD_KIND__RECORD_PUBLISH_REFUSED, -1, &records,
	    &refusals), 0);
	fprintf(stderr, "refused publishes: %ld record(s) for %ld refusals\n",
	    records, refusals);
	assert_true(refusals > 50);
	assert_true(records <= 2);
	assert_int_equal(testbroker_cleanup(&tb), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_storm_three_nodes),
		cmocka_unit_test(test_storm_one_node),
		cmocka_unit_test(test_oversize_frame_error),
		cmocka_unit_test(test_slow_subscriber_error),
		cmocka_unit_test(test_garbage_flood_audit),
		cmocka_unit_test(test_idle_connections_do_not_lock_out),
		cmocka_unit_test(test_connect_rate_per_address),
		cmocka_unit_test(test_sessions_per_node),
		cmocka_unit_test(test_refusal_limit),
		cmocka_unit_test(test_queue_budget),
		cmocka_unit_test(test_late_repeat),
	};

	signal(SIGPIPE, SIG_IGN);
	if (getenv("CPX_TEST_FILTER") != NULL)
		cmocka_set_test_filter(getenv("CPX_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
