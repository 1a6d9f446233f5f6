/*
 * test_relay.c: who signed an alert against who sent it, and alert ids
 * per origin, through a real broker (run twice by ctest: signatures
 * verified on a verifier thread, and inline with verify_threads = 0).
 *
 * - An alert signed by another node of the same country is refused with
 *   signer-mismatch unless the sending node holds the relay right; with
 *   it, the alert is delivered and its audit record names the relay. A
 *   policy reload takes effect on open sessions, for the relay right and
 *   for the signer's own publish right.
 * - Ids are per origin: another country using an id first neither blocks
 *   the origin nor shows up in a refusal; references (updates, withdraws)
 *   only name the origin's own alerts; the index is rebuilt per origin
 *   from the audit log at restart.
 */
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
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

/* si-ncp relays (and audits); si-backup, like everyone else, does not. */
static const char policy[] =
    "[defaults]\n"
    "rights = publish subscribe\n"
    "[node si-ncp]\n"
    "country = SI\n"
    "rights = publish subscribe audit relay\n";

static struct testbroker tb;

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
	return testbroker_cleanup(&tb);
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

/* A subscriber to everything it is entitled to. */
struct watch {
	struct cpx_client	*c;
	struct testsink		 s;
	struct testfilter	 tf;
	Cpx__Filter		*f[1];
};

static void
watch_start(struct watch *w, const char *node)
{
	uint64_t req;

	w->c = connect_node(node, &w->s);
	testfilter_init(&w->tf, "", "", NULL, 0, 0);
	w->f[0] = &w->tf.f;
	assert_int_equal(cpx_subscribe(w->c, w->f, 1, 0, 0, &req), 0);
	assert_true(testsink_run_until(w->c, &w->s.subscribed, 1, 5000));
}

struct keypair {
	EVP_PKEY	*key;
	X509		*cert;
};

static void
load_pair(struct keypair *kp, const char *node)
{
	char path[512], name[256], err[256];

	snprintf(name, sizeof(name), "nodes/%s.key", node);
	assert_int_equal(testpki_path(path, sizeof(path), name), 0);
	if ((kp->key = tlsctx_load_key(path, err, sizeof(err))) == NULL)
		fail_msg("%s", err);
	snprintf(name, sizeof(name), "nodes/%s.pem", node);
	assert_int_equal(testpki_path(path, sizeof(path), name), 0);
	if ((kp->cert = tlsctx_load_cert(path, err, sizeof(err))) == NULL)
		fail_msg("%s", err);
}

static void
free_pair(struct keypair *kp)
{
	EVP_PKEY_free(kp->key);
	X509_free(kp->cert);
}

/* An alert id/origin/summary signed by node's key, into sa. */
static void
make_signed(const char *node, const char *origin, const char *id,
    int handling, const char *recipients, const char *summary,
    const char *ref_id, int ref_kind, Cpx__SignedAlert *sa)
{
	Cpx__Reference ref = CPX__REFERENCE__INIT;
	struct testalert ta;
	struct keypair kp;
	uint8_t buf[4096];
	size_t len;

	load_pair(&kp, node);
	testalert_init(&ta, id, CPX__CATEGORY__CATEGORY_VEHICLE,
	    CPX__SEVERITY__SEVERITY_HIGH, handling, recipients, summary);
	ta.alert.origin = (char *)origin;
	ta.alert.issued_at = alert_now_ms();
	if (ref_id != NULL) {
		ref.alert_id = (char *)ref_id;
		ref.kind = (Cpx__ReferenceKind)ref_kind;
		ta.alert.reference = &ref;
	}
	len = cpx__alert__get_packed_size(&ta.alert);
	assert_true(len <= sizeof(buf));
	cpx__alert__pack(&ta.alert, buf);
	assert_int_equal(sign_alert(kp.key, kp.cert, buf, len, sa), 0);
	free_pair(&kp);
}

/*
 * Send sa over c and wait for its answer: the seq if acknowledged (and
 * *dup), 0 if refused (reason and text in s).
 */
static uint64_t
send_signed(struct cpx_client *c, struct testsink *s, Cpx__SignedAlert *sa,
    int *dup)
{
	int acks = s->acks, errors = s->errors;
	uint64_t req;
	char err[256];
	int64_t until = testutil_now_ms() + 10000;

	assert_int_equal(cpx_publish_signed(c, sa, &req, err, sizeof(err)), 0);
	while (s->acks == acks && s->errors == errors &&
	    testutil_now_ms() < until)
		assert_true(cpx_client_run(c, 20) >= 0);
	if (s->errors != errors) {
		assert_int_equal(s->last_request, req);
		return 0;
	}
	assert_int_equal(s->acks, acks + 1);
	if (dup != NULL)
		*dup = s->last_ack_dup;
	return s->last_ack_seq;
}

static uint64_t
publish_ok(struct cpx_client *c, struct testsink *s, Cpx__SignedAlert *sa,
    int *dup)
{
	uint64_t seq;

	if ((seq = send_signed(c, s, sa, dup)) == 0)
		fail_msg("refused: %s: %s", alert_reason_name(s->last_reason),
		    s->last_text);
	return seq;
}

static void
publish_refused(struct cpx_client *c, struct testsink *s,
    Cpx__SignedAlert *sa, int reason)
{
	if (send_signed(c, s, sa, NULL) != 0)
		fail_msg("accepted, expected %s", alert_reason_name(reason));
	if (s->last_reason != reason)
		fail_msg("expected %s, got %s: %s", alert_reason_name(reason),
		    alert_reason_name(s->last_reason), s->last_text);
	assert_false(s->last_fatal);
}

/* The ALERT_ACCEPTED record of one alert id, from an audit replay. */
struct found {
	const char	*id;
	int		 ends;
	int		 n;
	uint64_t	 seq;
	char		 node[80];
	char		 text[160];
};

static void
found_cb(const struct cpx_event *ev, void *arg)
{
	struct found *f = arg;
	const Cpx__AuditRecord *r = ev->record;

	if (ev->kind == CPX_EV_REPLAY_END || ev->kind == CPX_EV_ERROR)
		f->ends++;
	if (ev->kind != CPX_EV_AUDIT_RECORD || r == NULL ||
	    r->kind != CPX__RECORD_KIND__RECORD_ALERT_ACCEPTED ||
	    strcmp(r->alert_id, f->id) != 0)
		return;
	f->n++;
	f->seq = r->seq;
	snprintf(f->node, sizeof(f->node), "%s/%s", r->peer_country,
	    r->peer_node);
	snprintf(f->text, sizeof(f->text), "%s", r->text ? r->text : "");
}

static void
audit_find(struct found *f, const char *id)
{
	Cpx__ReplayRequest rq = CPX__REPLAY_REQUEST__INIT;
	struct cpx_client *c;
	struct testsink s;
	uint64_t req;

	memset(f, 0, sizeof(*f));
	f->id = id;
	c = connect_node("si-ncp", &s);
	cpx_client_on_event(c, found_cb, f);
	rq.all_kinds = 1;
	assert_int_equal(cpx_replay(c, &rq, &req), 0);
	assert_true(testsink_run_until(c, &f->ends, 1, 10000));
	cpx_client_free(&c);
}

/* ---- signer = session, or the relay right ------------------------ */

static void
test_signer_mismatch_refused(void **state)
{
	Cpx__SignedAlert sa = CPX__SIGNED_ALERT__INIT;
	struct cpx_client *bk;
	struct testsink bk_s;
	struct watch w;
	struct found f;

	(void)state;
	watch_start(&w, "at-ncp");
	bk = connect_node("si-backup", &bk_s);
	/* si-backup sends what si-ncp signed: same country, not its key. */
	make_signed("si-ncp", "SI", "sm-1", CPX__HANDLING__HANDLING_NETWORK,
	    "", "carried by a node that did not sign it", NULL, 0, &sa);
	publish_refused(bk, &bk_s, &sa, CPX__REASON__REASON_SIGNER_MISMATCH);
	if (strstr(bk_s.last_text, "SI/si-ncp") == NULL ||
	    strstr(bk_s.last_text, "SI/si-backup") == NULL)
		fail_msg("text does not name signer and session: %s",
		    bk_s.last_text);
	sign_signed_alert_clear(&sa);
	assert_true(testbroker_wait_log(&tb, "refused (signer-mismatch)",
	    3000));
	/* Nothing delivered, nothing accepted. */
	assert_true(testsink_sync(&w.s, w.c, w.f, 1));
	assert_false(testsink_has(&w.s, "sm-1", NULL));
	audit_find(&f, "sm-1");
	assert_int_equal(f.n, 0);
	/* Its own alerts still go through. */
	make_signed("si-backup", "SI", "sm-2", CPX__HANDLING__HANDLING_NETWORK,
	    "", "signed by the sender", NULL, 0, &sa);
	publish_ok(bk, &bk_s, &sa, NULL);
	sign_signed_alert_clear(&sa);
	assert_true(testsink_wait_deliveries(&w.s, w.c, 1, 5000));
	assert_string_equal(w.s.items[0].id, "sm-2");
	audit_find(&f, "sm-2");
	assert_int_equal(f.n, 1);
	assert_string_equal(f.node, "SI/si-backup");
	assert_string_equal(f.text, "");
	cpx_client_free(&bk);
	cpx_client_free(&w.c);
}

static void
test_relay_right(void **state)
{
	Cpx__SignedAlert sa = CPX__SIGNED_ALERT__INIT;
	struct cpx_client *si;
	struct testsink si_s;
	struct watch w;
	struct found f;
	uint64_t seq;

	(void)state;
	watch_start(&w, "hr-ncp");
	si = connect_node("si-ncp", &si_s);
	/* si-ncp holds relay: an alert si-backup signed goes through. */
	make_signed("si-backup", "SI", "rl-1", CPX__HANDLING__HANDLING_NETWORK,
	    "", "relayed by the contact point", NULL, 0, &sa);
	seq = publish_ok(si, &si_s, &sa, NULL);
	sign_signed_alert_clear(&sa);
	assert_true(testsink_wait_deliveries(&w.s, w.c, 1, 5000));
	assert_string_equal(w.s.items[0].id, "rl-1");
	assert_true(w.s.items[0].verified);
	assert_int_equal(w.s.items[0].seq, seq);
	/* The record is the relaying session's, and says for whom. */
	audit_find(&f, "rl-1");
	assert_int_equal(f.n, 1);
	assert_int_equal(f.seq, seq);
	assert_string_equal(f.node, "SI/si-ncp");
	assert_string_equal(f.text, "relayed for SI/si-backup");
	assert_true(testbroker_wait_log(&tb, "alert rl-1 relayed for "
	    "SI/si-backup", 3000));
	/* Never across a border, relay right or not. */
	make_signed("hr-ncp", "HR", "rl-2", CPX__HANDLING__HANDLING_NETWORK,
	    "", "Croatian alert carried by Slovenia", NULL, 0, &sa);
	publish_refused(si, &si_s, &sa, CPX__REASON__REASON_ORIGIN_MISMATCH);
	sign_signed_alert_clear(&sa);
	assert_true(testsink_sync(&w.s, w.c, w.f, 1));
	assert_int_equal(w.s.n, 1);
	cpx_client_free(&si);
	cpx_client_free(&w.c);
}

/* Replace the broker's policy and wait until it has reloaded it. */
static void
reload_policy(struct cpx_client *c, const char *text)
{
	int n = testbroker_log_count(&tb, "SIGHUP: reloading");
	int64_t until = testutil_now_ms() + 5000;
	FILE *f;

	assert_non_null(f = fopen(tb.policy, "w"));
	assert_true(fputs(text, f) >= 0);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(kill(tb.pid, SIGHUP), 0);
	/* Polling interval: serve the client meanwhile. */
	while (testbroker_log_count(&tb, "SIGHUP: reloading") <= n &&
	    testutil_now_ms() < until)
		assert_true(cpx_client_run(c, 20) >= 0);
	assert_true(testbroker_log_count(&tb, "SIGHUP: reloading") > n);
}

/*
 * The policy in force decides, not the one when the session opened: a
 * signer that lost its publish right cannot be relayed (decided on the
 * network thread), and a node that lost the relay right is back to its
 * own alerts (decided on the verifier thread or inline).
 */
static void
test_relay_after_reload(void **state)
{
	static const char no_backup[] =
	    "[defaults]\n"
	    "rights = publish subscribe\n"
	    "[node si-ncp]\n"
	    "country = SI\n"
	    "rights = publish subscribe audit relay\n"
	    "[node si-backup]\n"
	    "country = SI\n"
	    "rights = subscribe\n";
	static const char no_relay[] =
	    "[defaults]\n"
	    "rights = publish subscribe\n"
	    "[node si-ncp]\n"
	    "country = SI\n"
	    "rights = publish subscribe audit\n";
	Cpx__SignedAlert sa = CPX__SIGNED_ALERT__INIT;
	struct cpx_client *si;
	struct testsink si_s;
	struct watch w;

	(void)state;
	watch_start(&w, "hr-ncp");
	si = connect_node("si-ncp", &si_s);
	reload_policy(si, no_backup);
	make_signed("si-backup", "SI", "rr-1", CPX__HANDLING__HANDLING_NETWORK,
	    "", "signer may no longer publish", NULL, 0, &sa);
	publish_refused(si, &si_s, &sa, CPX__REASON__REASON_NOT_AUTHORIZED);
	assert_non_null(strstr(si_s.last_text, "SI/si-backup"));
	sign_signed_alert_clear(&sa);
	reload_policy(si, no_relay);
	make_signed("si-backup", "SI", "rr-2", CPX__HANDLING__HANDLING_NETWORK,
	    "", "relay right withdrawn", NULL, 0, &sa);
	publish_refused(si, &si_s, &sa, CPX__REASON__REASON_SIGNER_MISMATCH);
	sign_signed_alert_clear(&sa);
	reload_policy(si, policy);
	assert_true(testsink_sync(&w.s, w.c, w.f, 1));
	assert_int_equal(w.s.n, 0);
	cpx_client_free(&si);
	cpx_client_free(&w.c);
}

/* ---- alert ids per origin ---------------------------------------- */

static void
test_ids_per_origin(void **state)
{
	Cpx__SignedAlert rs_a = CPX__SIGNED_ALERT__INIT;
	Cpx__SignedAlert si_a = CPX__SIGNED_ALERT__INIT;
	Cpx__SignedAlert sa = CPX__SIGNED_ALERT__INIT;
	struct cpx_client *si, *rs;
	struct testsink si_s, rs_s;
	struct watch w;
	uint64_t rs_seq, si_seq;
	char rs_txt[32], si_txt[32];
	int dup, count;

	(void)state;
	watch_start(&w, "hr-ncp");
	si = connect_node("si-ncp", &si_s);
	rs = connect_node("rs-ncp", &rs_s);
	/* RS takes SI's next id first, for a named-only alert to HR. */
	make_signed("rs-ncp", "RS", "SI-2026-0001",
	    CPX__HANDLING__HANDLING_NAMED_ONLY, "HR", "named-only for HR",
	    NULL, 0, &rs_a);
	rs_seq = publish_ok(rs, &rs_s, &rs_a, &dup);
	assert_false(dup);
	/* SI's genuine alert with that id is its own, not a conflict. */
	make_signed("si-ncp", "SI", "SI-2026-0001",
	    CPX__HANDLING__HANDLING_NETWORK, "", "the genuine one", NULL, 0,
	    &si_a);
	si_seq = publish_ok(si, &si_s, &si_a, &dup);
	assert_false(dup);
	assert_true(si_seq > rs_seq);
	assert_true(testsink_wait_deliveries(&w.s, w.c, 2, 5000));
	testsink_has(&w.s, "SI-2026-0001", &count);
	assert_int_equal(count, 2);
	/* Repeats are acknowledged with each origin's own seq. */
	assert_int_equal(publish_ok(rs, &rs_s, &rs_a, &dup), rs_seq);
	assert_true(dup);
	assert_int_equal(publish_ok(si, &si_s, &si_a, &dup), si_seq);
	assert_true(dup);
	/* A conflict names the origin's own seq, never RS's. */
	make_signed("si-ncp", "SI", "SI-2026-0001",
	    CPX__HANDLING__HANDLING_NETWORK, "", "other text, same id", NULL,
	    0, &sa);
	publish_refused(si, &si_s, &sa,
	    CPX__REASON__REASON_DUPLICATE_CONFLICT);
	sign_signed_alert_clear(&sa);
	snprintf(si_txt, sizeof(si_txt), "seq %" PRIu64 ")", si_seq);
	snprintf(rs_txt, sizeof(rs_txt), "seq %" PRIu64 ")", rs_seq);
	if (strstr(si_s.last_text, si_txt) == NULL ||
	    strstr(si_s.last_text, rs_txt) != NULL)
		fail_msg("conflict text: %s", si_s.last_text);
	cpx_client_free(&si);
	cpx_client_free(&rs);
	cpx_client_free(&w.c);

	/* The index comes back per origin from the audit log. */
	assert_int_equal(testbroker_restart(&tb), 0);
	si = connect_node("si-ncp", &si_s);
	rs = connect_node("rs-ncp", &rs_s);
	assert_int_equal(publish_ok(rs, &rs_s, &rs_a, &dup), rs_seq);
	assert_true(dup);
	assert_int_equal(publish_ok(si, &si_s, &si_a, &dup), si_seq);
	assert_true(dup);
	sign_signed_alert_clear(&rs_a);
	sign_signed_alert_clear(&si_a);
	cpx_client_free(&si);
	cpx_client_free(&rs);
}

/*
 * An update or withdrawal names an earlier alert of its own origin;
 * another country's alert is refused exactly as an unknown id is.
 */
static void
test_references(void **state)
{
	Cpx__SignedAlert sa = CPX__SIGNED_ALERT__INIT;
	struct cpx_client *si, *rs;
	struct testsink si_s, rs_s;
	struct watch w;
	char known[256], *p;

	(void)state;
	watch_start(&w, "hr-ncp");
	si = connect_node("si-ncp", &si_s);
	rs = connect_node("rs-ncp", &rs_s);
	make_signed("si-ncp", "SI", "si-own-1",
	    CPX__HANDLING__HANDLING_NETWORK, "", "our own", NULL, 0, &sa);
	publish_ok(si, &si_s, &sa, NULL);
	sign_signed_alert_clear(&sa);
	make_signed("si-ncp", "SI", "si-upd-1",
	    CPX__HANDLING__HANDLING_NETWORK, "", "update of our own",
	    "si-own-1", CPX__REFERENCE_KIND__REFERENCE_UPDATES, &sa);
	publish_ok(si, &si_s, &sa, NULL);
	sign_signed_alert_clear(&sa);
	make_signed("rs-ncp", "RS", "rs-only-7",
	    CPX__HANDLING__HANDLING_NAMED_ONLY, "HR", "RS alert", NULL, 0,
	    &sa);
	publish_ok(rs, &rs_s, &sa, NULL);
	sign_signed_alert_clear(&sa);
	/* SI withdrawing RS's alert: refused, same as for an unknown id. */
	make_signed("si-ncp", "SI", "si-wd-1", CPX__HANDLING__HANDLING_NETWORK,
	    "", "withdraw theirs", "rs-only-7",
	    CPX__REFERENCE_KIND__REFERENCE_WITHDRAWS, &sa);
	publish_refused(si, &si_s, &sa, CPX__REASON__REASON_INVALID_ALERT);
	sign_signed_alert_clear(&sa);
	snprintf(known, sizeof(known), "%s", si_s.last_text);
	make_signed("si-ncp", "SI", "si-wd-1", CPX__HANDLING__HANDLING_NETWORK,
	    "", "withdraw theirs", "rs-only-9",
	    CPX__REFERENCE_KIND__REFERENCE_WITHDRAWS, &sa);
	publish_refused(si, &si_s, &sa, CPX__REASON__REASON_INVALID_ALERT);
	sign_signed_alert_clear(&sa);
	/* Word for word the same but for the id: no probing by reference. */
	assert_non_null(p = strstr(si_s.last_text, "rs-only-9"));
	p[strlen("rs-only-")] = '7';
	assert_string_equal(known, si_s.last_text);
	assert_null(strstr(known, "RS"));
	/* Likewise RS updating SI's alert. */
	make_signed("rs-ncp", "RS", "rs-upd-1", CPX__HANDLING__HANDLING_NETWORK,
	    "", "update of theirs", "si-upd-1",
	    CPX__REFERENCE_KIND__REFERENCE_UPDATES, &sa);
	publish_refused(rs, &rs_s, &sa, CPX__REASON__REASON_INVALID_ALERT);
	sign_signed_alert_clear(&sa);
	/* RS withdrawing its own. */
	make_signed("rs-ncp", "RS", "rs-wd-1", CPX__HANDLING__HANDLING_NETWORK,
	    "", "withdraw ours", "rs-only-7",
	    CPX__REFERENCE_KIND__REFERENCE_WITHDRAWS, &sa);
	publish_ok(rs, &rs_s, &sa, NULL);
	sign_signed_alert_clear(&sa);
	assert_true(testsink_sync(&w.s, w.c, w.f, 1));
	assert_false(testsink_has(&w.s, "si-wd-1", NULL));
	assert_false(testsink_has(&w.s, "rs-upd-1", NULL));
	assert_true(testsink_has(&w.s, "rs-wd-1", NULL));
	cpx_client_free(&si);
	cpx_client_free(&rs);
	cpx_client_free(&w.c);

	/* The same answers once the index is rebuilt from the log. */
	assert_int_equal(testbroker_restart(&tb), 0);
	si = connect_node("si-ncp", &si_s);
	make_signed("si-ncp", "SI", "si-upd-2",
	    CPX__HANDLING__HANDLING_NETWORK, "", "after the restart",
	    "si-own-1", CPX__REFERENCE_KIND__REFERENCE_UPDATES, &sa);
	publish_ok(si, &si_s, &sa, NULL);
	sign_signed_alert_clear(&sa);
	make_signed("si-ncp", "SI", "si-wd-2", CPX__HANDLING__HANDLING_NETWORK,
	    "", "withdraw theirs", "rs-only-7",
	    CPX__REFERENCE_KIND__REFERENCE_WITHDRAWS, &sa);
	publish_refused(si, &si_s, &sa, CPX__REASON__REASON_INVALID_ALERT);
	sign_signed_alert_clear(&sa);
	cpx_client_free(&si);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_signer_mismatch_refused),
		cmocka_unit_test(test_relay_right),
		cmocka_unit_test(test_relay_after_reload),
		cmocka_unit_test(test_ids_per_origin),
		cmocka_unit_test(test_references),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
