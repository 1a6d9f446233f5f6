/*
 * test_limits.c: the broker's protective limits against a real broker,
 * each configured low: max_frame (an oversized frame closes only that
 * session), max_sessions (the next connection is refused, naming the key),
 * the idle timeout with and without keepalives, the per-node publish rate,
 * and the bounded outbound queue (a subscriber that stops reading is cut
 * off, memory stays bounded, and it resumes without loss). Also key file
 * modes (client and broker refuse keys others can read) and dropping root
 * after binding.
 */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/x509.h>

#include "alert.h"
#include "cpx_client.h"
#include "harden_util.h"
#include "testbroker.h"
#include "testpki.h"
#include "testsink.h"
#include "testutil.h"
#include "tlsctx.h"

/* ---- max_frame --------------------------------------------------- */

static void
test_max_frame(void **state)
{
	Cpx__Envelope env = CPX__ENVELOPE__INIT;
	Cpx__Publish pub = CPX__PUBLISH__INIT;
	Cpx__SignedAlert sa = CPX__SIGNED_ALERT__INIT;
	struct testbroker tb;
	struct testsink sink;
	struct cpx_client *good;
	struct rawtls raw;
	uint8_t *der = NULL, *p, body[8000], sig[70];
	char path[512], err[256];
	X509 *cert;
	int len;

	(void)state;
	assert_int_equal(testbroker_start(&tb, "max_frame = 4096\n", NULL), 0);
	good = harden_connect(&tb, "hr-ncp", 0, &sink);
	assert_int_equal(rawtls_open(&raw, tb.port, "si-ncp", 0, 1), 0);

	/* A Publish that decodes fine but is twice the configured frame. */
	assert_int_equal(testpki_path(path, sizeof(path), "nodes/si-ncp.pem"),
	    0);
	cert = tlsctx_load_cert(path, err, sizeof(err));
	assert_non_null(cert);
	len = i2d_X509(cert, NULL);
	assert_true(len > 0);
	der = malloc((size_t)len);
	assert_non_null(der);
	p = der;
	assert_int_equal(i2d_X509(cert, &p), len);
	memset(body, 'A', sizeof(body));
	memset(sig, 0x30, sizeof(sig));
	sa.alert.data = body;
	sa.alert.len = sizeof(body);
	sa.signature.data = sig;
	sa.signature.len = sizeof(sig);
	sa.signer_cert.data = der;
	sa.signer_cert.len = (size_t)len;
	pub.request_id = 1;
	pub.alert = &sa;
	env.body_case = CPX__ENVELOPE__BODY_PUBLISH;
	env.publish = &pub;
	assert_int_equal(rawtls_send(&raw, &env), 0);

	assert_true(rawtls_wait_close(&raw, 5000));
	assert_int_equal(raw.last_error, CPX__REASON__REASON_TOO_LARGE);
	assert_true(raw.last_fatal);
	/* Logged once the peer is gone (the broker lingers for it). */
	assert_true(testbroker_wait_log(&tb, "config key max_frame", 5000));
	/* Others continue. */
	harden_assert_served(good, &sink);
	harden_publish_ok(good, "frame-after");
	assert_int_equal(sink.disconnected, 0);

	rawtls_close(&raw);
	free(der);
	X509_free(cert);
	cpx_client_free(&good);
	assert_int_equal(testbroker_cleanup(&tb), 0);
}

/* ---- max_sessions ------------------------------------------------ */

static void
test_max_sessions(void **state)
{
	static const char *nodes[] = { "at-ncp", "hu-ncp", "it-ncp" };
	struct testbroker tb;
	struct testsink sink[3], extra_sink;
	struct cpx_client *c[3], *extra;
	char err[400];
	size_t i;

	(void)state;
	assert_int_equal(testbroker_start(&tb, "max_sessions = 3\n", NULL), 0);
	for (i = 0; i < 3; i++)
		c[i] = harden_connect(&tb, nodes[i], 0, &sink[i]);
	extra = testbroker_client(&tb, "me-ncp", 0, err, sizeof(err));
	assert_non_null(extra);
	assert_int_equal(cpx_client_connect(extra, 5000, err, sizeof(err)),
	    -1);
	cpx_client_free(&extra);
	assert_true(testbroker_wait_log(&tb, "config key max_sessions", 2000));
	for (i = 0; i < 3; i++)
		harden_assert_served(c[i], &sink[i]);
	/* A slot freed is a slot available again. */
	cpx_client_free(&c[2]);
	assert_true(testbroker_wait_log(&tb, "IT/it-ncp: session closed",
	    5000));
	extra = harden_connect(&tb, "me-ncp", 0, &extra_sink);
	harden_assert_served(extra, &extra_sink);
	cpx_client_free(&extra);
	cpx_client_free(&c[0]);
	cpx_client_free(&c[1]);
	assert_int_equal(testbroker_cleanup(&tb), 0);
}

/* ---- idle timeout and keepalive ----------------------------------- */

static void
test_idle_keepalive(void **state)
{
	struct testbroker tb;
	struct testsink sink;
	struct cpx_client *c;
	struct rawtls raw;
	Cpx__Envelope *env;
	int64_t t0, closed_at = 0, until;

	(void)state;
	/*
	 * A sub-second ping interval: the Welcome announces it in whole
	 * seconds, and the client must still ping often enough.
	 */
	assert_int_equal(testbroker_start(&tb, "idle_timeout_ms = 3000\n"
	    "ping_interval_ms = 500\n", NULL), 0);
	c = harden_connect(&tb, "si-ncp", 0, &sink);
	assert_int_equal(rawtls_open(&raw, tb.port, "hr-ncp", 0, 1), 0);
	t0 = testutil_now_ms();
	until = t0 + 5000;
	while (testutil_now_ms() < until) {
		if (cpx_client_run(c, 20) == -1)
			fail_msg("pinging client lost: %s",
			    cpx_client_error(c));
		if (!raw.eof && (env = rawtls_read(&raw, 0)) != NULL)
			cpx__envelope__free_unpacked(env, NULL);
		if (raw.eof && closed_at == 0)
			closed_at = testutil_now_ms();
	}
	/* The silent one was closed by the idle timeout, not before. */
	assert_true(raw.eof);
	assert_int_equal(raw.last_error, CPX__REASON__REASON_IDLE_TIMEOUT);
	assert_true(closed_at - t0 >= 2500);
	assert_true(testbroker_wait_log(&tb, "nothing received for 3000 ms",
	    1000));
	/* The pinging one outlived the idle timeout and is still served. */
	assert_int_equal(sink.disconnected, 0);
	assert_int_equal(sink.connected, 1);
	harden_assert_served(c, &sink);
	rawtls_close(&raw);
	cpx_client_free(&c);
	assert_int_equal(testbroker_cleanup(&tb), 0);
}

/* ---- publish rate ------------------------------------------------ */

struct tally {
	int	acks;
	int	errors;
	int	rate_limited;
	int	other;
};

static void
tally_cb(const struct cpx_event *ev, void *arg)
{
	struct tally *t = arg;

	if (ev->kind == CPX_EV_ACK)
		t->acks++;
	else if (ev->kind == CPX_EV_ERROR) {
		t->errors++;
		if (ev->reason == CPX__REASON__REASON_RATE_LIMITED)
			t->rate_limited++;
		else
			t->other++;
	}
}

static void
test_publish_rate(void **state)
{
	struct testbroker tb;
	struct tally si_t, hr_t;
	struct cpx_client *si, *hr;
	struct testalert ta;
	char err[400], id[32];
	uint64_t req;
	int64_t t0, until, elapsed;
	long records, refusals;
	int i, status;

	(void)state;
	memset(&si_t, 0, sizeof(si_t));
	memset(&hr_t, 0, sizeof(hr_t));
	assert_int_equal(testbroker_start(&tb, "publish_rate = 20\n"
	    "publish_burst = 5\n", NULL), 0);
	si = testbroker_connect(&tb, "si-ncp", 0, err, sizeof(err));
	hr = testbroker_connect(&tb, "hr-ncp", 0, err, sizeof(err));
	assert_non_null(si);
	assert_non_null(hr);
	cpx_client_on_event(si, tally_cb, &si_t);
	cpx_client_on_event(hr, tally_cb, &hr_t);
	t0 = testutil_now_ms();
	for (i = 0; i < 50; i++) {
		snprintf(id, sizeof(id), "rate-si-%d", i);
		testalert_init(&ta, id, CPX__CATEGORY__CATEGORY_ROUTE,
		    CPX__SEVERITY__SEVERITY_LOW,
		    CPX__HANDLING__HANDLING_NETWORK, "", "burst");
		assert_int_equal(cpx_publish_send(si, &ta.alert, &req, err,
		    sizeof(err)), 0);
		if (i % 10 == 0) {
			/* Another node, publishing within its own rate. */
			snprintf(id, sizeof(id), "rate-hr-%d", i);
			testalert_init(&ta, id, CPX__CATEGORY__CATEGORY_ROUTE,
			    CPX__SEVERITY__SEVERITY_LOW,
			    CPX__HANDLING__HANDLING_NETWORK, "", "steady");
			assert_int_equal(cpx_publish_send(hr, &ta.alert, &req,
			    err, sizeof(err)), 0);
		}
	}
	until = t0 + 10000;
	while ((si_t.acks + si_t.errors < 50 || hr_t.acks + hr_t.errors < 5) &&
	    testutil_now_ms() < until) {
		assert_true(cpx_client_run(si, 10) >= 0);
		assert_true(cpx_client_run(hr, 10) >= 0);
	}
	elapsed = testutil_now_ms() - t0;
	assert_int_equal(si_t.acks + si_t.errors, 50);
	assert_int_equal(si_t.other, 0);
	/* The burst, plus what the rate refilled meanwhile. */
	assert_true(si_t.acks >= 5);
	assert_true(si_t.acks <= 5 + (int)(20 * elapsed / 1000) + 1);
	assert_true(si_t.rate_limited >= 50 - 5 - (int)(20 * elapsed / 1000)
	    - 1);
	assert_true(si_t.rate_limited > 0);
	/* Other nodes unaffected. */
	assert_int_equal(hr_t.acks, 5);
	assert_int_equal(hr_t.errors, 0);
	/*
	 * Refusals cost the node, not the disk: the first is logged and
	 * audited in full, the rest are counted and summarised (at the
	 * latest when the broker stops), so the records stand for every
	 * refusal and there are two of them.
	 */
	assert_int_equal(testbroker_log_count(&tb, "refused (rate-limited)"),
	    1);
	cpx_client_free(&si);
	cpx_client_free(&hr);
	status = testbroker_stop(&tb, SIGTERM);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_int_equal(harden_audit_refusals(tb.audit,
	    CPX__RECORD_KIND__RECORD_PUBLISH_REFUSED,
	    CPX__REASON__REASON_RATE_LIMITED, &records, &refusals), 0);
	assert_int_equal(refusals, si_t.rate_limited);
	assert_int_equal(records, 2);
	assert_int_equal(testbroker_cleanup(&tb), 0);
}

/*
 * The bucket is the node's, not the session's: a second session of the
 * same node (or a reconnect) gets only what the rate refilled.
 */
static void
publish_n_tally(struct cpx_client *c, struct tally *t, const char *prefix,
    int n)
{
	struct testalert ta;
	char err[400], id[32];
	uint64_t req;
	int64_t until;
	int i;

	for (i = 0; i < n; i++) {
		snprintf(id, sizeof(id), "%s-%d", prefix, i);
		testalert_init(&ta, id, CPX__CATEGORY__CATEGORY_ROUTE,
		    CPX__SEVERITY__SEVERITY_LOW,
		    CPX__HANDLING__HANDLING_NETWORK, "", "per node");
		assert_int_equal(cpx_publish_send(c, &ta.alert, &req, err,
		    sizeof(err)), 0);
	}
	until = testutil_now_ms() + 10000;
	while (t->acks + t->errors < n && testutil_now_ms() < until)
		assert_true(cpx_client_run(c, 10) >= 0);
	assert_int_equal(t->acks + t->errors, n);
}

static void
test_publish_rate_per_node(void **state)
{
	struct testbroker tb;
	struct tally a_t, b_t;
	struct cpx_client *a, *b;
	char err[400];
	int64_t t0;

	(void)state;
	memset(&a_t, 0, sizeof(a_t));
	memset(&b_t, 0, sizeof(b_t));
	assert_int_equal(testbroker_start(&tb, "publish_rate = 1\n"
	    "publish_burst = 5\n", NULL), 0);
	a = testbroker_connect(&tb, "si-ncp", 0, err, sizeof(err));
	b = testbroker_connect(&tb, "si-ncp", 0, err, sizeof(err));
	assert_non_null(a);
	assert_non_null(b);
	cpx_client_on_event(a, tally_cb, &a_t);
	cpx_client_on_event(b, tally_cb, &b_t);
	t0 = testutil_now_ms();
	publish_n_tally(a, &a_t, "node-a", 5);
	assert_int_equal(a_t.acks, 5);
	publish_n_tally(b, &b_t, "node-b", 5);
	/* One token a second refilled, not a second burst of five. */
	assert_true(b_t.acks <= 1 + (int)((testutil_now_ms() - t0) / 1000));
	assert_true(b_t.rate_limited >= 3);
	cpx_client_free(&a);
	cpx_client_free(&b);
	assert_int_equal(testbroker_cleanup(&tb), 0);
}

/* ---- outbound queue ---------------------------------------------- */

#define BIG_ALERTS	1200

struct big_alert {
	struct testalert	 ta;
	char			 summary[2001];
	char			 wbuf[32][121];
	char			*route[32];
	char			 dbuf[32][121];
	Cpx__Vehicle		 veh[32];
	Cpx__Vehicle		*vehp[32];
};

/* An alert of about 10 KiB: long summary, route and vehicle list. */
static void
big_alert_init(struct big_alert *b, const char *id)
{
	static const Cpx__Vehicle vinit = CPX__VEHICLE__INIT;
	size_t i;

	testalert_init(&b->ta, id, CPX__CATEGORY__CATEGORY_VEHICLE,
	    CPX__SEVERITY__SEVERITY_MEDIUM, CPX__HANDLING__HANDLING_NETWORK,
	    "", "");
	memset(b->summary, 's', sizeof(b->summary) - 1);
	b->summary[sizeof(b->summary) - 1] = '\0';
	b->ta.alert.summary = b->summary;
	for (i = 0; i < 32; i++) {
		memset(b->wbuf[i], 'w', 120);
		b->wbuf[i][120] = '\0';
		b->route[i] = b->wbuf[i];
		memset(b->dbuf[i], 'd', 120);
		b->dbuf[i][120] = '\0';
		b->veh[i] = vinit;
		b->veh[i].plate = "LJ-123-AB";
		b->veh[i].country = "SI";
		b->veh[i].description = b->dbuf[i];
		b->vehp[i] = &b->veh[i];
	}
	b->ta.alert.n_route = 32;
	b->ta.alert.route = b->route;
	b->ta.alert.n_vehicles = 32;
	b->ta.alert.vehicles = b->vehp;
}

struct acked {
	int		n;
	int		errors;
	uint64_t	seq[BIG_ALERTS];
};

static void
acked_cb(const struct cpx_event *ev, void *arg)
{
	struct acked *a = arg;

	if (ev->kind == CPX_EV_ACK && a->n < BIG_ALERTS)
		a->seq[a->n++] = ev->seq;
	else if (ev->kind == CPX_EV_ERROR)
		a->errors++;
}

static void
test_outbound_queue(void **state)
{
	Cpx__Envelope env = CPX__ENVELOPE__INIT;
	Cpx__Subscribe sub = CPX__SUBSCRIBE__INIT;
	struct testbroker tb;
	struct testsink *fast, *resumed;
	struct testfilter tf;
	Cpx__Filter *f[1];
	struct cpx_client *pub, *fc, *rc;
	struct big_alert *big;
	struct acked *acked;
	struct rawtls slow, stuck;
	Cpx__Envelope *e;
	char err[400], id[32];
	uint64_t req, last;
	long rss0, rss, rss_max = 0, rss_mid = 0;
	int sent = 0, i, expect, overloaded = 0;
	int64_t until;

	(void)state;
	fast = calloc(1, sizeof(*fast));
	resumed = calloc(1, sizeof(*resumed));
	big = calloc(1, sizeof(*big));
	acked = calloc(1, sizeof(*acked));
	assert_non_null(fast);
	assert_non_null(resumed);
	assert_non_null(big);
	assert_non_null(acked);
	harden_small_quarantine();
	assert_int_equal(testbroker_start(&tb, "outbound_queue = 262144\n"
	    "max_frame = 16384\npublish_rate = 0\n", NULL), 0);
	testfilter_init(&tf, "", "", NULL, 0, 0);
	f[0] = &tf.f;
	fc = harden_connect(&tb, "at-ncp", 0, fast);
	assert_int_equal(cpx_subscribe(fc, f, 1, 0, 0, &req), 0);
	assert_true(testsink_run_until(fc, &fast->subscribed, 1, 5000));

	/* The slow one: subscribes, then never reads again. */
	assert_int_equal(rawtls_open(&slow, tb.port, "hr-ncp", 4096, 1), 0);
	sub.request_id = 7;
	sub.n_filters = 1;
	sub.filters = f;
	env.body_case = CPX__ENVELOPE__BODY_SUBSCRIBE;
	env.subscribe = &sub;
	assert_int_equal(rawtls_send(&slow, &env), 0);
	e = rawtls_read(&slow, 5000);
	assert_non_null(e);
	assert_int_equal(e->body_case, CPX__ENVELOPE__BODY_SUBSCRIBED);
	cpx__envelope__free_unpacked(e, NULL);
	/* Another, which reads again only long after being cut off. */
	assert_int_equal(rawtls_open(&stuck, tb.port, "ba-ncp", 4096, 1), 0);
	assert_int_equal(rawtls_send(&stuck, &env), 0);
	e = rawtls_read(&stuck, 5000);
	assert_non_null(e);
	assert_int_equal(e->body_case, CPX__ENVELOPE__BODY_SUBSCRIBED);
	cpx__envelope__free_unpacked(e, NULL);

	pub = testbroker_connect(&tb, "si-ncp", 0, err, sizeof(err));
	assert_non_null(pub);
	cpx_client_on_event(pub, acked_cb, acked);
	rss0 = harden_rss_kb(tb.pid);
	assert_true(rss0 > 0);
	until = testutil_now_ms() + 60000;
	while ((acked->n + acked->errors < BIG_ALERTS ||
	    fast->n < (size_t)BIG_ALERTS) && testutil_now_ms() < until) {
		/*
		 * A small window: the fast subscriber, driven by this same
		 * thread, must never fall a queue's worth behind.
		 */
		while (sent < BIG_ALERTS && sent - acked->n < 8) {
			snprintf(id, sizeof(id), "big-%d", sent);
			big_alert_init(big, id);
			assert_int_equal(cpx_publish_send(pub, &big->ta.alert,
			    &req, err, sizeof(err)), 0);
			sent++;
		}
		if (cpx_client_run(pub, 5) == -1)
			fail_msg("publisher lost: %s", cpx_client_error(pub));
		if (cpx_client_run(fc, 5) == -1)
			fail_msg("fast subscriber lost: %s",
			    cpx_client_error(fc));
		if ((rss = harden_rss_kb(tb.pid)) > rss_max)
			rss_max = rss;
		if (rss_mid == 0 && acked->n >= BIG_ALERTS / 2)
			rss_mid = rss_max;
	}
	assert_int_equal(acked->n, BIG_ALERTS);
	assert_int_equal(acked->errors, 0);
	/* The fast subscriber received everything, in order. */
	assert_int_equal(fast->n, BIG_ALERTS);
	for (i = 0; i < BIG_ALERTS; i++)
		assert_int_equal(fast->items[i].seq, acked->seq[i]);
	assert_int_equal(fast->disconnected, 0);
	/* The slow one was cut off, and the broker did not hoard for it. */
	fprintf(stderr, "broker RSS %ld KiB before, %ld KiB at half, %ld KiB "
	    "at most while %d alerts of ~10 KiB went to a stalled "
	    "subscriber\n", rss0, rss_mid, rss_max, BIG_ALERTS);
	assert_true(testbroker_wait_log(&tb, "HR/hr-ncp: outbound queue over",
	    5000));
	/*
	 * Bounded: flat over the second half (hoarding for the stalled one
	 * would add ~6 MiB there), and well under the 12 MiB sent.
	 */
	assert_true(rss_max - rss_mid < 3072);
	assert_true(rss_max - rss0 < 10240);

	/* It reads again: what was queued, then OVERLOADED, then the end. */
	assert_true(rawtls_wait_close(&slow, 10000));
	overloaded = slow.last_error == CPX__REASON__REASON_OVERLOADED;
	assert_true(overloaded);
	assert_true(slow.deliveries < (size_t)BIG_ALERTS);
	last = slow.last_seq;
	for (i = 0; i < BIG_ALERTS && acked->seq[i] <= last; i++)
		;
	/* No gap in what it did get. */
	assert_int_equal((size_t)i, slow.deliveries);
	expect = BIG_ALERTS - i;
	rawtls_close(&slow);

	/*
	 * The other one's session ends while it still reads nothing; its
	 * pipe inside ZeroMQ is then usually full, so the disconnect must
	 * wait (logged "disconnect deferred") and still go through once it
	 * reads: it must see the end, not hang on a forgotten connection.
	 */
	assert_true(testbroker_wait_log(&tb, "BA/ba-ncp: outbound queue over",
	    0));
	/* After the broker's linger for a refused peer (10 s). */
	assert_true(testbroker_wait_log(&tb, "BA/ba-ncp: session closed",
	    15000));
	assert_true(rawtls_wait_close(&stuck, 10000));
	assert_true(stuck.deliveries < (size_t)BIG_ALERTS);
	rawtls_close(&stuck);

	/* As a normal client it resumes after its last seq: the rest. */
	rc = harden_connect(&tb, "hr-ncp", 0, resumed);
	assert_int_equal(cpx_subscribe(rc, f, 1, 1, last, &req), 0);
	assert_true(testsink_wait_deliveries(resumed, rc, (size_t)expect,
	    30000));
	(void)testsink_sync(resumed, rc, f, 1);
	assert_int_equal(resumed->n, (size_t)expect);
	for (i = 0; i < expect; i++)
		assert_int_equal(resumed->items[i].seq,
		    acked->seq[BIG_ALERTS - expect + i]);
	cpx_client_free(&rc);
	cpx_client_free(&pub);
	cpx_client_free(&fc);
	assert_int_equal(testbroker_cleanup(&tb), 0);
	free(fast);
	free(resumed);
	free(big);
	free(acked);
}

/* ---- key file modes ---------------------------------------------- */

static int
copy_mode(const char *from, const char *to, mode_t mode)
{
	char buf[8192];
	ssize_t n;
	int in, out, rc = 0;

	if ((in = open(from, O_RDONLY)) == -1)
		return -1;
	if ((out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0600)) == -1) {
		close(in);
		return -1;
	}
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, (size_t)n) != n)
			rc = -1;
	close(in);
	if (fchmod(out, mode) == -1)
		rc = -1;
	if (close(out) == -1)
		rc = -1;
	return rc;
}

static void
test_client_key_mode(void **state)
{
	struct cpx_client_config cfg;
	struct cpx_client *c;
	char dir[256], ca[512], cert[512], key[512], copy[512], err[400];

	(void)state;
	assert_int_equal(testutil_mkdtemp(dir, sizeof(dir)), 0);
	assert_int_equal(testpki_path(ca, sizeof(ca), "ca.pem"), 0);
	assert_int_equal(testpki_path(cert, sizeof(cert), "nodes/si-ncp.pem"),
	    0);
	assert_int_equal(testpki_path(key, sizeof(key), "nodes/si-ncp.key"),
	    0);
	snprintf(copy, sizeof(copy), "%s/si-ncp.key", dir);
	memset(&cfg, 0, sizeof(cfg));
	cfg.endpoint = "tcp://127.0.0.1:1";
	cfg.ca = ca;
	cfg.cert = cert;
	cfg.key = copy;
	cfg.no_crl = 1;	/* this test is about the key file only */
	/* Readable by the group: refused, with the fix in the message. */
	assert_int_equal(copy_mode(key, copy, 0640), 0);
	c = cpx_client_new(&cfg, err, sizeof(err));
	assert_null(c);
	if (strstr(err, "chmod 600") == NULL || strstr(err, copy) == NULL)
		fail_msg("unexpected error: %s", err);
	/* The same key at 0600 is accepted. */
	assert_int_equal(chmod(copy, 0600), 0);
	c = cpx_client_new(&cfg, err, sizeof(err));
	if (c == NULL)
		fail_msg("0600 key refused: %s", err);
	cpx_client_free(&c);
	assert_int_equal(testutil_rmrf(dir), 0);
}

static void
test_broker_key_mode(void **state)
{
	struct testbroker tb;
	char key[512], copy[600], needle[700];
	int status;

	(void)state;
	assert_int_equal(testbroker_start(&tb, NULL, NULL), 0);
	assert_true(WIFEXITED(testbroker_stop(&tb, SIGTERM)));
	assert_int_equal(testpki_path(key, sizeof(key), "broker.key"), 0);
	snprintf(copy, sizeof(copy), "%s/broker-0644.key", tb.dir);
	assert_int_equal(copy_mode(key, copy, 0644), 0);
	assert_int_equal(harden_set_conf(&tb, "key", copy), 0);
	status = harden_run_broker(&tb, NULL);
	assert_true(WIFEXITED(status));
	assert_int_not_equal(WEXITSTATUS(status), 0);
	snprintf(needle, sizeof(needle), "private key %s", copy);
	assert_true(testbroker_log_count(&tb, needle) > 0);
	assert_true(testbroker_log_count(&tb, "chmod 600") > 0);
	/* -n (check only) finds the same problem, without starting. */
	status = harden_run_broker(&tb, "-n");
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 1);
	assert_true(testbroker_log_count(&tb, "chmod 600") > 1);
	/* Fixed as told, the check passes and it starts. */
	assert_int_equal(chmod(copy, 0600), 0);
	status = harden_run_broker(&tb, "-n");
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_true(testbroker_log_count(&tb, "configuration OK") == 1);
	assert_int_equal(testbroker_restart(&tb), 0);
	assert_int_equal(testbroker_cleanup(&tb), 0);
}

/* ---- dropping root ----------------------------------------------- */

static void
test_drop_root(void **state)
{
	struct testbroker tb;
	struct testsink sink;
	struct cpx_client *c;
	struct passwd *pw;
	char base[256], audit[300], extra[512], path[64], line[256];
	unsigned int uid[4] = { 0, 0, 0, 0 };
	FILE *f;
	int found = 0;

	(void)state;
	if (geteuid() != 0 || (pw = getpwnam("nobody")) == NULL)
		skip();
	assert_int_equal(testutil_mkdtemp(base, sizeof(base)), 0);
	assert_int_equal(chmod(base, 0711), 0);
	snprintf(audit, sizeof(audit), "%s/audit", base);
	assert_int_equal(mkdir(audit, 0700), 0);
	assert_int_equal(chown(audit, pw->pw_uid, pw->pw_gid), 0);
	snprintf(extra, sizeof(extra), "user = nobody\naudit_dir = %s\n",
	    audit);
	assert_int_equal(testbroker_start(&tb, extra, NULL), 0);
	assert_true(testbroker_wait_log(&tb, "running as user nobody", 2000));
	snprintf(path, sizeof(path), "/proc/%d/status", (int)tb.pid);
	f = fopen(path, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "Uid: %u %u %u %u", &uid[0], &uid[1], &uid[2],
		    &uid[3]) == 4)
			found = 1;
	fclose(f);
	assert_true(found);
	/* Real, effective, saved and file-system uid: all nobody. */
	assert_int_equal(uid[0], pw->pw_uid);
	assert_int_equal(uid[1], pw->pw_uid);
	assert_int_equal(uid[2], pw->pw_uid);
	assert_int_equal(uid[3], pw->pw_uid);
	/* And it still works, audit log included. */
	c = harden_connect(&tb, "si-ncp", 0, &sink);
	harden_publish_ok(c, "as-nobody");
	cpx_client_free(&c);
	assert_int_equal(testbroker_cleanup(&tb), 0);
	assert_int_equal(testutil_rmrf(base), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_max_frame),
		cmocka_unit_test(test_max_sessions),
		cmocka_unit_test(test_idle_keepalive),
		cmocka_unit_test(test_publish_rate),
		cmocka_unit_test(test_publish_rate_per_node),
		cmocka_unit_test(test_outbound_queue),
		cmocka_unit_test(test_client_key_mode),
		cmocka_unit_test(test_broker_key_mode),
		cmocka_unit_test(test_drop_root),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
