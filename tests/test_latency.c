/*
 * test_latency.c: the publish path's shortcut, against a real cpx-broker
 * process on 127.0.0.1 (publish.c: verify_here). The first few publishes
 * of a loop turn whose session has nothing at a verifier are verified on
 * the network thread and committed in the turn they arrived in; the rest
 * go to the verifier threads. The two paths must never reorder one
 * node's publishes, and must refuse alike.
 *
 * One node publishes a chain of alerts, each updating the one before it
 * (a reference the broker only accepts if the earlier alert was accepted
 * first), in a mix of lone publishes, each awaited, and bursts sent
 * without waiting, with forged publishes (origin not the signer's) in
 * both. Every link must be acknowledged in order, every forgery refused
 * with origin-mismatch, and a subscriber must receive the chain in log
 * order.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "alert.h"
#include "cpx_client.h"
#include "testbroker.h"
#include "testsink.h"

#define CHAIN		600
#define FORGE_EVERY	23		/* a forged publish before link k */
#define MAXREQ		(CHAIN + CHAIN / FORGE_EVERY + 8)

/* What became of each request, by request id. */
struct answers {
	uint64_t	 first;		/* request id of the first publish */
	uint64_t	 seq[MAXREQ];	/* Ack's sequence, 0: none */
	int		 reason[MAXREQ];/* Error's reason, 0: none */
	int		 answered;
	int		 lost;
};

static void
answers_cb(const struct cpx_event *ev, void *arg)
{
	struct answers *a = arg;
	uint64_t k;

	if (ev->kind == CPX_EV_DISCONNECTED) {
		a->lost++;
		return;
	}
	if ((ev->kind != CPX_EV_ACK && ev->kind != CPX_EV_ERROR) ||
	    ev->request_id < a->first || (k = ev->request_id - a->first) >=
	    MAXREQ)
		return;
	if (ev->kind == CPX_EV_ACK)
		a->seq[k] = ev->seq;
	else
		a->reason[k] = ev->reason;
	a->answered++;
}

/* Publish link k of the chain (updating link k - 1), or a forgery. */
static uint64_t
send_one(struct cpx_client *c, int k, int forged)
{
	Cpx__Reference ref = CPX__REFERENCE__INIT;
	struct testalert ta;
	char id[48], prev[48], err[400];
	uint64_t req;

	if (forged)
		snprintf(id, sizeof(id), "forged-%d", k);
	else
		snprintf(id, sizeof(id), "link-%d", k);
	testalert_init(&ta, id, CPX__CATEGORY__CATEGORY_ROUTE,
	    CPX__SEVERITY__SEVERITY_LOW, CPX__HANDLING__HANDLING_NETWORK, "",
	    "chain");
	if (forged) {
		/* Signed by si-ncp, claiming to come from HR. */
		ta.alert.origin = (char *)"HR";
	} else if (k > 0) {
		snprintf(prev, sizeof(prev), "link-%d", k - 1);
		ref.alert_id = prev;
		ref.kind = CPX__REFERENCE_KIND__REFERENCE_UPDATES;
		ta.alert.reference = &ref;
	}
	if (cpx_publish_send(c, &ta.alert, &req, err, sizeof(err)) == -1)
		fail_msg("publish %s: %s", id, err);
	return req;
}

static void
run_until_answered(struct cpx_client *c, struct answers *a, int n,
    int timeout_ms)
{
	int64_t until = testutil_now_ms() + timeout_ms;

	while (a->answered < n && a->lost == 0 && testutil_now_ms() < until)
		assert_true(cpx_client_run(c, 5) >= 0);
	assert_int_equal(a->lost, 0);
	assert_int_equal(a->answered, n);
}

/* The running broker, stopped by teardown even when a test fails. */
struct fixture {
	struct testbroker	tb;
	int			running;
};

static void
chain(struct fixture *fx, const char *verify_threads)
{
	static struct answers a;
	static struct testsink its;
	struct testbroker *tb = &fx->tb;
	struct testfilter tf;
	Cpx__Filter *filters[1];
	struct cpx_client *si, *it;
	int is_forged[MAXREQ], link_of[MAXREQ];
	char conf[128], err[400], id[48];
	uint64_t req, last_seq = 0;
	int k = 0, n = 0, round = 0, burst, i, forged = 0, count;

	snprintf(conf, sizeof(conf), "verify_threads = %s\n"
	    "publish_rate = 0\n", verify_threads);
	assert_int_equal(testbroker_start(tb, conf, NULL), 0);
	fx->running = 1;
	it = testsink_connect(tb, "it-ncp", 0, &its);
	assert_non_null(it);
	testfilter_init(&tf, "SI", "", NULL, 0, 0);
	filters[0] = &tf.f;
	assert_int_equal(cpx_subscribe(it, filters, 1, 0, 0, &req), 0);
	assert_true(testsink_run_until(it, &its.subscribed, 1, 5000));
	if ((si = testbroker_connect(tb, "si-ncp", 0, err,
	    sizeof(err))) == NULL)
		fail_msg("si-ncp: %s", err);
	memset(&a, 0, sizeof(a));
	cpx_client_on_event(si, answers_cb, &a);
	/*
	 * Rounds: one publish alone, awaited (checked on the network
	 * thread), then two bursts sent 1 ms apart: the first few of each
	 * burst's turn are checked on the network thread, the rest go to a
	 * verifier, and the second burst arrives while links of the first
	 * are still being verified (the case that must not overtake).
	 */
	while (k < CHAIN) {
		burst = round % 3 == 0 ? 1 : 6 + round % 31;
		for (i = 0; i < burst && k < CHAIN; i++) {
			if (k % FORGE_EVERY == 5 && forged <= k / FORGE_EVERY) {
				is_forged[n] = 1;
				link_of[n] = k;
				req = send_one(si, k, 1);
				forged++;
			} else {
				is_forged[n] = 0;
				link_of[n] = k;
				req = send_one(si, k++, 0);
			}
			if (n == 0)
				a.first = req;
			assert_true(req - a.first == (uint64_t)n);
			n++;
			assert_true(n < MAXREQ);
		}
		if (burst == 1)
			run_until_answered(si, &a, n, 10000);
		else
			assert_true(cpx_client_run(si, 1) >= 0);
		round++;
	}
	run_until_answered(si, &a, n, 60000);
	assert_true(forged > 0);
	for (i = 0; i < n; i++) {
		if (is_forged[i]) {
			if (a.reason[i] != CPX__REASON__REASON_ORIGIN_MISMATCH)
				fail_msg("forgery before link %d: %s, not "
				    "origin-mismatch", link_of[i], a.seq[i] ?
				    "acknowledged" :
				    alert_reason_name(a.reason[i]));
			continue;
		}
		if (a.reason[i] != 0)
			fail_msg("link %d refused (%s): the chain was "
			    "reordered", link_of[i],
			    alert_reason_name(a.reason[i]));
		/* Acknowledged in the order sent, each after the one before. */
		assert_true(a.seq[i] > last_seq);
		last_seq = a.seq[i];
	}
	/* The subscriber gets the chain in log order. */
	assert_true(testsink_wait_deliveries(&its, it, CHAIN, 20000));
	assert_int_equal(its.n, CHAIN);
	for (i = 0; i < CHAIN; i++) {
		snprintf(id, sizeof(id), "link-%d", i);
		assert_string_equal(its.items[i].id, id);
		assert_true(its.items[i].verified);
		if (i > 0)
			assert_true(its.items[i].seq > its.items[i - 1].seq);
		assert_int_equal(testsink_has(&its, id, &count), 1);
		assert_int_equal(count, 1);
	}
	cpx_client_free(&si);
	cpx_client_free(&it);
	fx->running = 0;
	assert_int_equal(testbroker_cleanup(tb), 0);
}

static int
setup(void **state)
{
	static struct fixture fx;

	memset(&fx, 0, sizeof(fx));
	*state = &fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *fx = *state;

	if (fx->running) {
		fx->running = 0;
		if (testbroker_cleanup(&fx->tb) == -1)
			fprintf(stderr, "broker did not stop cleanly\n");
	}
	return 0;
}

static void
test_chain_one_verifier(void **state)
{
	chain(*state, "1");
}

static void
test_chain_two_verifiers(void **state)
{
	chain(*state, "2");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_chain_one_verifier,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_chain_two_verifiers,
		    setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
