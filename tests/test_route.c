/*
 * test_route.c: signed alerts through a real broker: a routing matrix
 * (publishers, subscribers with different filters and rights, each
 * handling code) asserting exactly who receives what; every refusal reason
 * of the broker's checks; duplicate ids; several nodes publishing at once
 * without loss.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "alert.h"
#include "cpx_client.h"
#include "sign.h"
#include "testbroker.h"
#include "testpki.h"
#include "testsink.h"
#include "tlsctx.h"

static const char policy[] =
    "[region western-balkans]\n"
    "members = AL BA ME MK RS XK\n"
    "[region eu-neighbours]\n"
    "members = AT HR HU IT SI\n"
    "[defaults]\n"
    "rights = publish subscribe\n"
    "[country ME]\n"
    "rights = subscribe\n"
    "[country MK]\n"
    "rights = publish\n";

static struct testbroker tb;

/* CPX_TEST_BROKER_CONFIG adds config lines (test_route_inline: no threads). */
static int
setup(void **state)
{
	const char *more = getenv("CPX_TEST_BROKER_CONFIG");
	char extra[256];

	(void)state;
	snprintf(extra, sizeof(extra), "publish_rate = 0\n%s\n",
	    more ? more : "");
	return testbroker_start(&tb, extra, policy);
}

static int
teardown(void **state)
{
	(void)state;
	return testbroker_cleanup(&tb);	/* -1: unclean exit, a leak */
}

static struct cpx_client *
connect_node(const char *node, struct testsink *sink)
{
	struct cpx_client *c;
	char err[400];

	if ((c = testbroker_connect(&tb, node, 0, err, sizeof(err))) == NULL)
		fail_msg("%s: %s", node, err);
	testsink_attach(sink, c);
	return c;
}

static uint64_t
publish_ok(struct cpx_client *c, struct testalert *ta)
{
	struct cpx_result res;

	if (cpx_publish(c, &ta->alert, 10000, &res) == -1)
		fail_msg("publish %s refused: %s (%s)", ta->id,
		    alert_reason_name(res.reason), res.text);
	assert_true(res.seq > 0);
	return res.seq;
}

static void
publish_refused(struct cpx_client *c, struct testalert *ta, int reason)
{
	struct cpx_result res;

	assert_int_equal(cpx_publish(c, &ta->alert, 10000, &res), -1);
	if (res.reason != reason)
		fail_msg("%s: expected %s, got %s: %s", ta->id,
		    alert_reason_name(reason), alert_reason_name(res.reason),
		    res.text);
	assert_true(strlen(res.text) > 0);
}

/* ---- routing matrix ---------------------------------------------- */

struct sub {
	const char		*node;
	struct cpx_client	*c;
	struct testsink		 sink;
	struct testfilter	 tf;
	Cpx__Filter		*f[1];
	const char		*expect;	/* blank-separated alert ids */
};

static void
test_routing_matrix(void **state)
{
	static const Cpx__Category vehicle[] = { CPX__CATEGORY__CATEGORY_VEHICLE };
	static struct sub subs[] = {
		{ .node = "hr-ncp", .expect = "m1 m6" },
		{ .node = "rs-ncp", .expect = "m4" },
		{ .node = "at-ncp", .expect = "m1 m3 m4 m5 m6" },
		{ .node = "it-ncp", .expect = "m4 m6" },
		{ .node = "me-ncp", .expect = "m1 m2 m5 m6" },
		{ .node = "ba-ncp", .expect = "m1 m2 m5 m6" },
	};
	const size_t nsubs = sizeof(subs) / sizeof(subs[0]);
	struct testsink psink[4], mksink, mesink;
	struct cpx_client *si, *rs, *al, *hu, *mk;
	struct testalert ta;
	char ids[64], *tok, *save;
	uint64_t req;
	size_t i, expected;
	int count;

	(void)state;
	/* Per-country, regional, category+severity and whole feeds. */
	testfilter_init(&subs[0].tf, "SI", "", NULL, 0, 0);
	testfilter_init(&subs[1].tf, "", "western-balkans", NULL, 0, 0);
	testfilter_init(&subs[2].tf, "", "", NULL, 0, 0);
	testfilter_init(&subs[3].tf, "", "", vehicle, 1,
	    CPX__SEVERITY__SEVERITY_HIGH);
	testfilter_init(&subs[4].tf, "", "", NULL, 0, 0);
	testfilter_init(&subs[5].tf, "", "", NULL, 0, 0);
	for (i = 0; i < nsubs; i++) {
		subs[i].c = connect_node(subs[i].node, &subs[i].sink);
		subs[i].f[0] = &subs[i].tf.f;
		assert_int_equal(cpx_subscribe(subs[i].c, subs[i].f, 1, 0, 0,
		    &req), 0);
		assert_true(testsink_run_until(subs[i].c,
		    &subs[i].sink.subscribed, 1, 5000));
	}
	si = connect_node("si-ncp", &psink[0]);
	rs = connect_node("rs-ncp", &psink[1]);
	al = connect_node("al-ncp", &psink[2]);
	hu = connect_node("hu-ncp", &psink[3]);

	testalert_init(&ta, "m1", CPX__CATEGORY__CATEGORY_ROUTE,
	    CPX__SEVERITY__SEVERITY_LOW, CPX__HANDLING__HANDLING_NETWORK, "",
	    "route through the Julian Alps");
	publish_ok(si, &ta);
	testalert_init(&ta, "m2", CPX__CATEGORY__CATEGORY_VEHICLE,
	    CPX__SEVERITY__SEVERITY_HIGH, CPX__HANDLING__HANDLING_RESTRICTED,
	    "western-balkans", "van seen near Obrezje");
	publish_ok(si, &ta);
	testalert_init(&ta, "m3", CPX__CATEGORY__CATEGORY_VEHICLE,
	    CPX__SEVERITY__SEVERITY_CRITICAL,
	    CPX__HANDLING__HANDLING_NAMED_ONLY, "HR AT", "truck heading north");
	publish_ok(rs, &ta);
	testalert_init(&ta, "m4", CPX__CATEGORY__CATEGORY_VEHICLE,
	    CPX__SEVERITY__SEVERITY_HIGH, CPX__HANDLING__HANDLING_NETWORK,
	    "eu-neighbours RS", "minibus leaving Durres");
	publish_ok(al, &ta);
	testalert_init(&ta, "m5", CPX__CATEGORY__CATEGORY_CROSSING,
	    CPX__SEVERITY__SEVERITY_MEDIUM, CPX__HANDLING__HANDLING_RESTRICTED,
	    "all", "group crossed near Roszke");
	publish_ok(hu, &ta);
	testalert_init(&ta, "m6", CPX__CATEGORY__CATEGORY_VEHICLE,
	    CPX__SEVERITY__SEVERITY_CRITICAL, CPX__HANDLING__HANDLING_NETWORK,
	    "", "refrigerated lorry, persons inside");
	publish_ok(si, &ta);

	/* A node without the subscribe right cannot subscribe... */
	mk = connect_node("mk-ncp", &mksink);
	assert_int_equal(cpx_subscribe(mk, subs[2].f, 1, 0, 0, &req), 0);
	assert_true(testsink_run_until(mk, &mksink.errors, 1, 5000));
	assert_int_equal(mksink.last_reason,
	    CPX__REASON__REASON_NOT_AUTHORIZED);
	assert_int_equal(mksink.subscribed, 0);
	assert_true(testbroker_wait_log(&tb, "MK/mk-ncp: subscribe refused "
	    "(not-authorized)", 3000));
	cpx_client_free(&mk);
	/* ...and one without the publish right cannot publish. */
	{
		struct cpx_client *me = connect_node("me-ncp", &mesink);

		testalert_init(&ta, "m7", CPX__CATEGORY__CATEGORY_ROUTE,
		    CPX__SEVERITY__SEVERITY_LOW,
		    CPX__HANDLING__HANDLING_NETWORK, "", "not allowed");
		publish_refused(me, &ta, CPX__REASON__REASON_NOT_AUTHORIZED);
		cpx_client_free(&me);
	}

	for (i = 0; i < nsubs; i++) {
		assert_true(testsink_sync(&subs[i].sink, subs[i].c, subs[i].f,
		    1));
		snprintf(ids, sizeof(ids), "%s", subs[i].expect);
		expected = 0;
		for (tok = strtok_r(ids, " ", &save); tok != NULL;
		    tok = strtok_r(NULL, " ", &save)) {
			testsink_has(&subs[i].sink, tok, &count);
			if (count != 1)
				fail_msg("%s received %s %d times, expected "
				    "once", subs[i].node, tok, count);
			expected++;
		}
		if (subs[i].sink.n != expected)
			fail_msg("%s received %zu alerts, expected %zu (%s)",
			    subs[i].node, subs[i].sink.n, expected,
			    subs[i].expect);
		for (size_t k = 0; k < subs[i].sink.n; k++)
			assert_true(subs[i].sink.items[k].verified);
		cpx_client_free(&subs[i].c);
	}
	cpx_client_free(&si);
	cpx_client_free(&rs);
	cpx_client_free(&al);
	cpx_client_free(&hu);
}

/* ---- refusals ---------------------------------------------------- */

struct keypair {
	EVP_PKEY	*key;
	X509		*cert;
};

static void
load_pair(struct keypair *kp, const char *rel)
{
	char path[512], name[256], err[256];

	snprintf(name, sizeof(name), "%s.key", rel);
	assert_int_equal(testpki_path(path, sizeof(path), name), 0);
	kp->key = tlsctx_load_key(path, err, sizeof(err));
	if (kp->key == NULL)
		fail_msg("%s", err);
	snprintf(name, sizeof(name), "%s.pem", rel);
	assert_int_equal(testpki_path(path, sizeof(path), name), 0);
	kp->cert = tlsctx_load_cert(path, err, sizeof(err));
	assert_non_null(kp->cert);
}

static void
free_pair(struct keypair *kp)
{
	EVP_PKEY_free(kp->key);
	X509_free(kp->cert);
}

/* Sign ta (origin, id and time as given) with kp into sa. */
static void
sign_with(struct keypair *kp, struct testalert *ta, const char *origin,
    Cpx__SignedAlert *sa)
{
	uint8_t buf[4096];
	size_t len;

	ta->alert.origin = (char *)origin;
	if (ta->alert.issued_at == 0)
		ta->alert.issued_at = alert_now_ms();
	len = cpx__alert__get_packed_size(&ta->alert);
	assert_true(len <= sizeof(buf));
	cpx__alert__pack(&ta->alert, buf);
	assert_int_equal(sign_alert(kp->key, kp->cert, buf, len, sa), 0);
}

static void
send_signed_refused(struct cpx_client *c, struct testsink *s,
    Cpx__SignedAlert *sa, int reason)
{
	uint64_t req;
	char err[256];
	int before = s->errors;

	assert_int_equal(cpx_publish_signed(c, sa, &req, err, sizeof(err)), 0);
	assert_true(testsink_run_until(c, &s->errors, before + 1, 5000));
	assert_int_equal(s->last_request, req);
	if (s->last_reason != reason)
		fail_msg("expected %s, got %s: %s", alert_reason_name(reason),
		    alert_reason_name(s->last_reason), s->last_text);
	assert_false(s->last_fatal);
}

static void
test_refusals(void **state)
{
	struct keypair si_k, hr_k, rogue_k, revoked_k;
	struct cpx_client *si, *hr, *watch;
	struct testsink si_s, hr_s, w_s;
	Cpx__SignedAlert sa = CPX__SIGNED_ALERT__INIT;
	struct testfilter tf;
	Cpx__Filter *f[1];
	struct testalert ta;
	uint64_t req;
	int64_t now = alert_now_ms();

	(void)state;
	watch = connect_node("at-ncp", &w_s);
	testfilter_init(&tf, "", "", NULL, 0, 0);
	f[0] = &tf.f;
	assert_int_equal(cpx_subscribe(watch, f, 1, 0, 0, &req), 0);
	si = connect_node("si-ncp", &si_s);
	hr = connect_node("hr-ncp", &hr_s);
	load_pair(&si_k, "nodes/si-ncp");
	load_pair(&hr_k, "nodes/hr-ncp");
	load_pair(&rogue_k, "other/rogue-si");
	load_pair(&revoked_k, "nodes/revoked-hr");

#define BASE(id) testalert_init(&ta, id, CPX__CATEGORY__CATEGORY_ROUTE, \
	    CPX__SEVERITY__SEVERITY_LOW, CPX__HANDLING__HANDLING_NETWORK, "", \
	    "refusal test")

	/* Tampered after signing: one byte of the alert, then signature. */
	BASE("r-tamper");
	sign_with(&si_k, &ta, "SI", &sa);
	sa.alert.data[sa.alert.len - 1] ^= 0x01;
	send_signed_refused(si, &si_s, &sa, CPX__REASON__REASON_BAD_SIGNATURE);
	sign_signed_alert_clear(&sa);
	BASE("r-tamper-sig");
	sign_with(&si_k, &ta, "SI", &sa);
	sa.signature.data[sa.signature.len - 2] ^= 0x40;
	send_signed_refused(si, &si_s, &sa, CPX__REASON__REASON_BAD_SIGNATURE);
	sign_signed_alert_clear(&sa);
	/* Signed by a certificate from another CA. */
	BASE("r-rogue");
	sign_with(&rogue_k, &ta, "SI", &sa);
	send_signed_refused(si, &si_s, &sa, CPX__REASON__REASON_BAD_SIGNER);
	sign_signed_alert_clear(&sa);
	/* Signed by a revoked certificate of the right country. */
	BASE("r-revoked");
	sign_with(&revoked_k, &ta, "HR", &sa);
	send_signed_refused(hr, &hr_s, &sa,
	    CPX__REASON__REASON_SIGNER_REVOKED);
	sign_signed_alert_clear(&sa);
	/* SI relaying an alert signed by HR: spoofed origin. */
	BASE("r-relay");
	sign_with(&hr_k, &ta, "HR", &sa);
	send_signed_refused(si, &si_s, &sa,
	    CPX__REASON__REASON_ORIGIN_MISMATCH);
	sign_signed_alert_clear(&sa);
	/* SI signing an alert that claims to come from HR. */
	BASE("r-spoof");
	sign_with(&si_k, &ta, "HR", &sa);
	send_signed_refused(si, &si_s, &sa,
	    CPX__REASON__REASON_ORIGIN_MISMATCH);
	sign_signed_alert_clear(&sa);

	/* Form. */
	BASE("r-empty");
	ta.alert.summary = "";
	publish_refused(si, &ta, CPX__REASON__REASON_INVALID_ALERT);
	BASE("r-enum");
	ta.alert.category = 99;
	publish_refused(si, &ta, CPX__REASON__REASON_INVALID_ALERT);
	BASE("r-skew");
	ta.alert.issued_at = now - 24 * 3600 * 1000LL;
	publish_refused(si, &ta, CPX__REASON__REASON_CLOCK_SKEW);
	BASE("r-expired");
	ta.alert.issued_at = now - 60000;
	ta.alert.expires_at = now - 30000;
	publish_refused(si, &ta, CPX__REASON__REASON_EXPIRED);
	testalert_init(&ta, "r-region", CPX__CATEGORY__CATEGORY_ROUTE,
	    CPX__SEVERITY__SEVERITY_LOW, CPX__HANDLING__HANDLING_NETWORK,
	    "atlantis", "unknown region");
	publish_refused(si, &ta, CPX__REASON__REASON_UNKNOWN_RECIPIENT);
	testalert_init(&ta, "r-country", CPX__CATEGORY__CATEGORY_ROUTE,
	    CPX__SEVERITY__SEVERITY_LOW, CPX__HANDLING__HANDLING_NETWORK,
	    "ZZ", "unknown country");
	publish_refused(si, &ta, CPX__REASON__REASON_UNKNOWN_RECIPIENT);
	testalert_init(&ta, "r-named", CPX__CATEGORY__CATEGORY_ROUTE,
	    CPX__SEVERITY__SEVERITY_LOW, CPX__HANDLING__HANDLING_NAMED_ONLY,
	    "HR western-balkans", "named-only to a region");
	publish_refused(si, &ta, CPX__REASON__REASON_HANDLING_RECIPIENTS);
	testalert_init(&ta, "r-restricted", CPX__CATEGORY__CATEGORY_ROUTE,
	    CPX__SEVERITY__SEVERITY_LOW, CPX__HANDLING__HANDLING_RESTRICTED,
	    "", "restricted to nobody");
	publish_refused(si, &ta, CPX__REASON__REASON_HANDLING_RECIPIENTS);
#undef BASE

	/* Refusals are logged with their reason and change nothing else. */
	assert_true(testbroker_wait_log(&tb,
	    "publish r-tamper refused (bad-signature)", 0) ||
	    testbroker_wait_log(&tb, "refused (bad-signature)", 3000));
	assert_true(testbroker_wait_log(&tb, "refused (signer-revoked)", 0));
	assert_true(testbroker_wait_log(&tb, "refused (origin-mismatch)", 0));
	assert_true(testsink_sync(&w_s, watch, f, 1));
	assert_int_equal(w_s.n, 0);
	/* The session survived every refusal. */
	testalert_init(&ta, "r-fine", CPX__CATEGORY__CATEGORY_ROUTE,
	    CPX__SEVERITY__SEVERITY_LOW, CPX__HANDLING__HANDLING_NETWORK, "",
	    "after the refusals");
	publish_ok(si, &ta);
	assert_true(testsink_wait_deliveries(&w_s, watch, 1, 5000));
	assert_string_equal(w_s.items[0].id, "r-fine");

	free_pair(&si_k);
	free_pair(&hr_k);
	free_pair(&rogue_k);
	free_pair(&revoked_k);
	cpx_client_free(&si);
	cpx_client_free(&hr);
	cpx_client_free(&watch);
}

static void
test_duplicates(void **state)
{
	struct keypair si_k;
	struct cpx_client *si, *watch;
	struct testsink si_s, w_s;
	Cpx__SignedAlert sa = CPX__SIGNED_ALERT__INIT;
	struct testfilter tf;
	Cpx__Filter *f[1];
	struct testalert ta;
	uint64_t req, seq;
	char err[256];
	int count;

	(void)state;
	watch = connect_node("it-ncp", &w_s);
	testfilter_init(&tf, "SI", "", NULL, 0, 0);
	f[0] = &tf.f;
	assert_int_equal(cpx_subscribe(watch, f, 1, 0, 0, &req), 0);
	assert_true(testsink_run_until(watch, &w_s.subscribed, 1, 5000));
	si = connect_node("si-ncp", &si_s);
	load_pair(&si_k, "nodes/si-ncp");
	testalert_init(&ta, "dup-1", CPX__CATEGORY__CATEGORY_ROUTE,
	    CPX__SEVERITY__SEVERITY_LOW, CPX__HANDLING__HANDLING_NETWORK, "",
	    "published twice");
	sign_with(&si_k, &ta, "SI", &sa);
	assert_int_equal(cpx_publish_signed(si, &sa, &req, err, sizeof(err)),
	    0);
	assert_true(testsink_run_until(si, &si_s.acks, 1, 5000));
	seq = si_s.last_ack_seq;
	assert_false(si_s.last_ack_dup);
	/* The same bytes again (a retry after a lost ack). */
	assert_int_equal(cpx_publish_signed(si, &sa, &req, err, sizeof(err)),
	    0);
	assert_true(testsink_run_until(si, &si_s.acks, 2, 5000));
	assert_int_equal(si_s.last_ack_seq, seq);
	assert_true(si_s.last_ack_dup);
	/* Twice in the same turn: both acknowledged with the same seq. */
	assert_int_equal(cpx_publish_signed(si, &sa, &req, err, sizeof(err)),
	    0);
	assert_int_equal(cpx_publish_signed(si, &sa, &req, err, sizeof(err)),
	    0);
	assert_true(testsink_run_until(si, &si_s.acks, 4, 5000));
	assert_int_equal(si_s.last_ack_seq, seq);
	sign_signed_alert_clear(&sa);
	/* Same id, different content. */
	testalert_init(&ta, "dup-1", CPX__CATEGORY__CATEGORY_ROUTE,
	    CPX__SEVERITY__SEVERITY_LOW, CPX__HANDLING__HANDLING_NETWORK, "",
	    "same id, other text");
	publish_refused(si, &ta, CPX__REASON__REASON_DUPLICATE_CONFLICT);
	assert_true(testsink_sync(&w_s, watch, f, 1));
	testsink_has(&w_s, "dup-1", &count);
	assert_int_equal(count, 1);
	assert_int_equal(w_s.n, 1);
	free_pair(&si_k);
	cpx_client_free(&si);
	cpx_client_free(&watch);
}

/* ---- concurrent publishers --------------------------------------- */

#define CONC_PUBLISHERS	4
#define CONC_ALERTS	250
#define CONC_WINDOW	32

struct conc {
	const char	*node;
	int		 acked;
	int		 refused;
	uint64_t	 seqs[CONC_ALERTS];
	char		 err[400];
};

static void
conc_cb(const struct cpx_event *ev, void *arg)
{
	struct conc *k = arg;

	if (ev->kind == CPX_EV_ACK && k->acked < CONC_ALERTS)
		k->seqs[k->acked++] = ev->seq;
	else if (ev->kind == CPX_EV_ERROR)
		k->refused++;
}

static void *
conc_publisher(void *arg)
{
	struct conc *k = arg;
	struct cpx_client *c;
	struct testalert ta;
	char id[64];
	uint64_t req;
	int sent = 0;
	int64_t until = testutil_now_ms() + 60000;

	if ((c = testbroker_connect(&tb, k->node, 0, k->err,
	    sizeof(k->err))) == NULL)
		return NULL;
	cpx_client_on_event(c, conc_cb, k);
	while (k->acked + k->refused < CONC_ALERTS &&
	    testutil_now_ms() < until) {
		while (sent < CONC_ALERTS &&
		    sent - (k->acked + k->refused) < CONC_WINDOW) {
			snprintf(id, sizeof(id), "conc-%s-%d", k->node, sent);
			testalert_init(&ta, id, CPX__CATEGORY__CATEGORY_ROUTE,
			    CPX__SEVERITY__SEVERITY_MEDIUM,
			    CPX__HANDLING__HANDLING_NETWORK, "",
			    "concurrent publish");
			if (cpx_publish_send(c, &ta.alert, &req, k->err,
			    sizeof(k->err)) == -1)
				goto out;
			sent++;
		}
		if (cpx_client_run(c, 20) == -1)
			break;
	}
out:
	cpx_client_free(&c);
	return NULL;
}

static void
test_concurrent_publishers(void **state)
{
	static struct conc k[CONC_PUBLISHERS] = {
		{ .node = "si-ncp" }, { .node = "hr-ncp" },
		{ .node = "at-ncp" }, { .node = "hu-ncp" },
	};
	pthread_t th[CONC_PUBLISHERS];
	struct cpx_client *watch;
	struct testsink *w_s;
	struct testfilter tf;
	Cpx__Filter *f[1];
	uint64_t req, prev = 0;
	size_t i, total = CONC_PUBLISHERS * CONC_ALERTS;
	int j, count;
	char id[64];

	(void)state;
	w_s = calloc(1, sizeof(*w_s));
	assert_non_null(w_s);
	watch = connect_node("ba-ncp", w_s);
	testfilter_init(&tf, "", "eu-neighbours", NULL, 0, 0);
	f[0] = &tf.f;
	assert_int_equal(cpx_subscribe(watch, f, 1, 0, 0, &req), 0);
	assert_true(testsink_run_until(watch, &w_s->subscribed, 1, 5000));
	for (i = 0; i < CONC_PUBLISHERS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, conc_publisher,
		    &k[i]), 0);
	/* Drain deliveries while they publish, as a live subscriber does. */
	assert_true(testsink_wait_deliveries(w_s, watch, total, 60000));
	for (i = 0; i < CONC_PUBLISHERS; i++) {
		pthread_join(th[i], NULL);
		if (k[i].acked != CONC_ALERTS)
			fail_msg("%s: %d acked, %d refused: %s", k[i].node,
			    k[i].acked, k[i].refused, k[i].err);
	}
	assert_true(testsink_sync(w_s, watch, f, 1));
	assert_int_equal(w_s->n, total);
	for (i = 0; i < w_s->n; i++) {
		assert_true(w_s->items[i].seq > prev);	/* in order */
		prev = w_s->items[i].seq;
	}
	for (i = 0; i < CONC_PUBLISHERS; i++)
		for (j = 0; j < CONC_ALERTS; j++) {
			snprintf(id, sizeof(id), "conc-%s-%d", k[i].node, j);
			testsink_has(w_s, id, &count);
			if (count != 1)
				fail_msg("%s delivered %d times", id, count);
		}
	cpx_client_free(&watch);
	free(w_s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_routing_matrix),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_duplicates),
		cmocka_unit_test(test_concurrent_publishers),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
