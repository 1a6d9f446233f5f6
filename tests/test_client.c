/*
 * test_client.c: the client library (client/cpx_client.c) against a real
 * broker and against a fake one that lies (util/fakebroker.c):
 *
 * - a blocking call returns as soon as what it waits for has arrived,
 *   not at the end of a poll period;
 * - the broker's fatal Error reaches the user even when the connection
 *   closes right after it, behind deliveries still being verified;
 * - an unverified or absurdly numbered delivery never moves the resume
 *   point, so later genuine alerts still arrive;
 * - the client, not the broker's `replayed` flag, decides when an alert
 *   may be checked as history;
 * - without a CRL the client refuses to start unless told to;
 * - a connect to a port where nothing listens fails at once, saying so.
 */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "alert.h"
#include "cpx_client.h"
#include "fakebroker.h"
#include "sign.h"
#include "testbroker.h"
#include "testpki.h"

#define WAIT_MS		10000
#define NEV		512

/* Every event, in the order the callback saw it. */
struct rec {
	size_t		n;
	struct {
		int		kind;
		uint64_t	seq;
		uint64_t	request_id;
		int		verified;
		int		reason;
		int		fatal;
		char		text[200];
	} ev[NEV];
};

static void
rec_cb(const struct cpx_event *ev, void *arg)
{
	struct rec *r = arg;

	if (r->n == NEV)
		return;
	r->ev[r->n].kind = ev->kind;
	r->ev[r->n].seq = ev->seq;
	r->ev[r->n].request_id = ev->request_id;
	r->ev[r->n].verified = ev->verified;
	r->ev[r->n].reason = ev->reason;
	r->ev[r->n].fatal = ev->fatal;
	snprintf(r->ev[r->n].text, sizeof(r->ev[r->n].text), "%s",
	    ev->kind == CPX_EV_DELIVERY ? (ev->verify_error ?
	    ev->verify_error : "") : (ev->text ? ev->text : ""));
	r->n++;
}

static size_t
rec_count(const struct rec *r, int kind)
{
	size_t i, n = 0;

	for (i = 0; i < r->n; i++)
		if (r->ev[i].kind == kind)
			n++;
	return n;
}

/* Run c until r holds `want` events of kind; 1 if it did in time. */
static int
run_until(struct cpx_client *c, const struct rec *r, int kind, size_t want)
{
	int64_t until = testutil_now_ms() + WAIT_MS;

	while (rec_count(r, kind) < want && testutil_now_ms() < until)
		if (cpx_client_run(c, 50) == -1)
			break;
	return rec_count(r, kind) >= want;
}

/* Alert signed by a node of the test PKI (rel e.g. "nodes/si-ncp"). */
static void
make_signed(const char *rel, const char *origin, const char *id,
    int64_t issued_at, Cpx__SignedAlert *sa)
{
	assert_int_equal(fakebroker_sign(rel, origin, id, issued_at, sa), 0);
}

/* A client of node hr-ncp for endpoint, with the test PKI's CRL. */
static struct cpx_client *
new_client(const char *endpoint, int reconnect, unsigned int threads)
{
	struct cpx_client_config cfg;
	struct cpx_client *c;
	char ca[512], cert[512], key[512], crl[512], err[400];

	assert_int_equal(testpki_path(ca, sizeof(ca), "ca.pem"), 0);
	assert_int_equal(testpki_path(cert, sizeof(cert),
	    "nodes/hr-ncp.pem"), 0);
	assert_int_equal(testpki_path(key, sizeof(key),
	    "nodes/hr-ncp.key"), 0);
	assert_int_equal(testpki_path(crl, sizeof(crl), "crl.pem"), 0);
	memset(&cfg, 0, sizeof(cfg));
	cfg.endpoint = endpoint;
	cfg.ca = ca;
	cfg.cert = cert;
	cfg.key = key;
	cfg.crl = crl;
	cfg.reconnect = reconnect;
	cfg.verify_threads = threads;
	if ((c = cpx_client_new(&cfg, err, sizeof(err))) == NULL)
		fail_msg("cpx_client_new: %s", err);
	return c;
}

/*
 * A fake broker, a client connected to it with a recorder, and the
 * client's Subscribe answered with Subscribed(live_from). The caller
 * frees both.
 */
static void
fake_session(struct fakebroker **fbp, struct cpx_client **cp,
    struct rec *r, unsigned int threads, int reconnect, uint64_t last_seq,
    int resume, uint64_t after)
{
	Cpx__Envelope env, *in;
	Cpx__Welcome w;
	Cpx__Subscribed sd = CPX__SUBSCRIBED__INIT;
	char err[300];
	uint64_t rid;

	if ((*fbp = fakebroker_new(err, sizeof(err))) == NULL)
		fail_msg("fakebroker_new: %s", err);
	fakebroker_welcome(&env, &w, last_seq);
	assert_int_equal(fakebroker_send(*fbp, &env), 0);
	*cp = new_client(fakebroker_endpoint(*fbp), reconnect, threads);
	memset(r, 0, sizeof(*r));
	cpx_client_on_event(*cp, rec_cb, r);
	if (cpx_client_connect(*cp, WAIT_MS, err, sizeof(err)) == -1)
		fail_msg("connect to the fake broker: %s", err);
	assert_int_equal(cpx_subscribe(*cp, NULL, 0, resume, after, &rid), 0);
	assert_non_null(in = fakebroker_recv(*fbp,
	    CPX__ENVELOPE__BODY_SUBSCRIBE, WAIT_MS));
	cpx__envelope__free_unpacked(in, NULL);
	sd.request_id = rid;
	sd.live_from = last_seq;
	memset(&env, 0, sizeof(env));
	cpx__envelope__init(&env);
	env.body_case = CPX__ENVELOPE__BODY_SUBSCRIBED;
	env.subscribed = &sd;
	assert_int_equal(fakebroker_send(*fbp, &env), 0);
	assert_true(run_until(*cp, r, CPX_EV_SUBSCRIBED, 1));
}

static void
deliver(struct fakebroker *fb, uint64_t seq, Cpx__SignedAlert *sa,
    int replayed, uint64_t request_id)
{
	Cpx__Envelope env;
	Cpx__Delivery d;

	fakebroker_delivery(&env, &d, seq, sa, replayed, request_id);
	assert_int_equal(fakebroker_send(fb, &env), 0);
}

static int
cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * cpx_publish returns when the Ack arrives. The old library ran its loop
 * in 50 ms slices and did not notice the Ack until a slice ended, so no
 * call took less than 50 ms; a median under 40 ms over 50 calls is a
 * behaviour (it returns on the Ack), with a wide margin for fsync.
 */
static void
test_publish_returns_on_ack(void **state)
{
	struct testbroker tb;
	struct testalert ta;
	struct cpx_result res;
	struct cpx_client *c;
	int64_t t0, took[50];
	char err[400];
	size_t i;

	(void)state;
	assert_int_equal(testbroker_start(&tb, NULL, NULL), 0);
	if ((c = testbroker_connect(&tb, "si-ncp", 0, err,
	    sizeof(err))) == NULL)
		fail_msg("connect: %s", err);
	for (i = 0; i < 50; i++) {
		testalert_init(&ta, NULL, CPX__CATEGORY__CATEGORY_VEHICLE,
		    CPX__SEVERITY__SEVERITY_HIGH,
		    CPX__HANDLING__HANDLING_NETWORK, "", "white van");
		t0 = testutil_now_ms();
		if (cpx_publish(c, &ta.alert, WAIT_MS, &res) == -1)
			fail_msg("publish %zu refused: %s", i, res.text);
		took[i] = testutil_now_ms() - t0;
		assert_true(res.seq > 0);
	}
	qsort(took, 50, sizeof(took[0]), cmp_i64);
	if (took[25] >= 40)
		fail_msg("median cpx_publish took %lld ms: it waits out a "
		    "poll period instead of returning on the ack",
		    (long long)took[25]);
	cpx_client_free(&c);
	assert_int_equal(testbroker_cleanup(&tb), 0);
}

/*
 * Deliveries, then Error{fatal}, then the connection closes at once
 * (with close_notify or without): every delivery, then the Error, reach
 * the callback, and the Error's reason and text are what the library
 * reports. With verifier threads the Error waits in the queue behind
 * the deliveries when the close is seen.
 */
static void
fatal_after_deliveries(unsigned int threads, int notify)
{
	Cpx__SignedAlert sa = CPX__SIGNED_ALERT__INIT;
	Cpx__Envelope env = CPX__ENVELOPE__INIT;
	Cpx__Error e = CPX__ERROR__INIT;
	struct fakebroker *fb;
	struct cpx_client *c;
	struct rec *r;
	int64_t until;
	size_t i, ndel = 0, errat = 0, discat = 0;
	char id[32];
	int rc = 0;

	assert_non_null(r = calloc(1, sizeof(*r)));
	fake_session(&fb, &c, r, threads, 0, 0, 0, 0);
	for (i = 1; i <= 40; i++) {
		snprintf(id, sizeof(id), "fatal-%zu", i);
		make_signed("nodes/si-ncp", "SI", id, alert_now_ms(), &sa);
		deliver(fb, i, &sa, 0, 0);
		sign_signed_alert_clear(&sa);
	}
	e.reason = CPX__REASON__REASON_CERT_REVOKED;
	e.text = "certificate revoked at 10:00 by the network CA";
	e.fatal = 1;
	env.body_case = CPX__ENVELOPE__BODY_ERROR;
	env.error = &e;
	assert_int_equal(fakebroker_send(fb, &env), 0);
	assert_int_equal(fakebroker_close(fb, notify), 0);
	until = testutil_now_ms() + WAIT_MS;
	while (rc != -1 && testutil_now_ms() < until)
		rc = cpx_client_run(c, 100);
	assert_int_equal(rc, -1);
	for (i = 0; i < r->n; i++) {
		if (r->ev[i].kind == CPX_EV_DELIVERY && r->ev[i].verified)
			ndel++;
		if (r->ev[i].kind == CPX_EV_ERROR && errat == 0)
			errat = i;
		if (r->ev[i].kind == CPX_EV_DISCONNECTED && discat == 0)
			discat = i;
	}
	if (ndel != 40 || errat == 0)
		fail_msg("threads %u notify %d: %zu of 40 deliveries, error "
		    "event %s; library says: %s", threads, notify, ndel,
		    errat ? "seen" : "never seen", cpx_client_error(c));
	assert_true(r->ev[errat].fatal);
	assert_int_equal(r->ev[errat].reason,
	    CPX__REASON__REASON_CERT_REVOKED);
	/* Every delivery before the Error, the disconnect after it. */
	assert_int_equal(r->ev[errat - 1].kind, CPX_EV_DELIVERY);
	assert_true(discat > errat);
	assert_int_equal(cpx_client_error_reason(c),
	    CPX__REASON__REASON_CERT_REVOKED);
	assert_non_null(strstr(cpx_client_error(c), "revoked at 10:00"));
	assert_true(cpx_client_refused(c));
	cpx_client_free(&c);
	fakebroker_free(&fb);
	free(r);
}

static void
test_fatal_error_reported(void **state)
{
	(void)state;
	fatal_after_deliveries(0, 1);
	fatal_after_deliveries(0, 0);
	fatal_after_deliveries(2, 1);
	fatal_after_deliveries(2, 0);
}

/* cpx_publish says why when the session ends under it. */
static void
test_publish_reports_fatal_reason(void **state)
{
	Cpx__Envelope env = CPX__ENVELOPE__INIT;
	Cpx__Error e = CPX__ERROR__INIT;
	struct testalert ta;
	struct cpx_result res;
	struct fakebroker *fb;
	struct cpx_client *c;
	struct rec *r;

	(void)state;
	assert_non_null(r = calloc(1, sizeof(*r)));
	fake_session(&fb, &c, r, 0, 0, 0, 0, 0);
	/* The broker ends the session as the publish goes out. */
	e.reason = CPX__REASON__REASON_SHUTTING_DOWN;
	e.text = "broker stopping for maintenance";
	e.fatal = 1;
	env.body_case = CPX__ENVELOPE__BODY_ERROR;
	env.error = &e;
	assert_int_equal(fakebroker_send(fb, &env), 0);
	assert_int_equal(fakebroker_close(fb, 0), 0);
	testalert_init(&ta, NULL, CPX__CATEGORY__CATEGORY_VEHICLE,
	    CPX__SEVERITY__SEVERITY_HIGH, CPX__HANDLING__HANDLING_NETWORK, "",
	    "white van");
	assert_int_equal(cpx_publish(c, &ta.alert, WAIT_MS, &res), -1);
	assert_int_equal(res.reason, CPX__REASON__REASON_SHUTTING_DOWN);
	assert_non_null(strstr(res.text, "maintenance"));
	assert_int_equal(rec_count(r, CPX_EV_ERROR), 1);
	cpx_client_free(&c);
	fakebroker_free(&fb);
	free(r);
}

/* Index of the last delivery recorded. */
static size_t
last_delivery(const struct rec *r)
{
	size_t i;

	for (i = r->n; i > 0; i--)
		if (r->ev[i - 1].kind == CPX_EV_DELIVERY)
			return i - 1;
	fail_msg("no delivery seen");
	return 0;
}

/*
 * A lying broker: a genuinely signed alert numbered 2^64 - 1, one far
 * ahead of anything announced, a forged one with a plausible number:
 * none is verified and none moves the resume point; the next genuine
 * alert is delivered verified and becomes the resume point, which is
 * what a reconnect resumes from.
 */
static void
absurd_seq(unsigned int threads)
{
	Cpx__SignedAlert sa = CPX__SIGNED_ALERT__INIT;
	Cpx__Envelope *in;
	struct fakebroker *fb;
	struct cpx_client *c;
	struct rec *r;
	size_t at;

	assert_non_null(r = calloc(1, sizeof(*r)));
	fake_session(&fb, &c, r, threads, 1, 10, 0, 0);
	make_signed("nodes/si-ncp", "SI", "absurd-1", alert_now_ms(), &sa);
	deliver(fb, UINT64_MAX, &sa, 0, 0);
	assert_true(run_until(c, r, CPX_EV_DELIVERY, 1));
	at = last_delivery(r);
	assert_false(r->ev[at].verified);
	assert_non_null(strstr(r->ev[at].text, "not plausible"));
	assert_int_equal(cpx_client_last_seq(c), 0);
	/* Genuine, but more than 2^32 past the announced 10. */
	deliver(fb, 10 + CPX_SEQ_AHEAD_MAX + 1, &sa, 0, 0);
	sign_signed_alert_clear(&sa);
	assert_true(run_until(c, r, CPX_EV_DELIVERY, 2));
	at = last_delivery(r);
	assert_false(r->ev[at].verified);
	assert_int_equal(cpx_client_last_seq(c), 0);
	/* Plausible number, bad signature. */
	make_signed("nodes/si-ncp", "SI", "absurd-2", alert_now_ms(), &sa);
	sa.alert.data[sa.alert.len - 3] ^= 0x20;
	deliver(fb, 1000, &sa, 0, 0);
	sign_signed_alert_clear(&sa);
	assert_true(run_until(c, r, CPX_EV_DELIVERY, 3));
	at = last_delivery(r);
	assert_false(r->ev[at].verified);
	assert_int_equal(cpx_client_last_seq(c), 0);
	/* The genuine next alert still arrives and counts. */
	make_signed("nodes/si-ncp", "SI", "genuine-11", alert_now_ms(), &sa);
	deliver(fb, 11, &sa, 0, 0);
	sign_signed_alert_clear(&sa);
	assert_true(run_until(c, r, CPX_EV_DELIVERY, 4));
	at = last_delivery(r);
	assert_true(r->ev[at].verified);
	assert_int_equal(r->ev[at].seq, 11);
	assert_int_equal(cpx_client_last_seq(c), 11);
	/* A reconnect resumes after 11, not after a number the broker made
	 * up. */
	assert_int_equal(fakebroker_close(fb, 0), 0);
	{
		Cpx__Envelope env;
		Cpx__Welcome w;

		fakebroker_welcome(&env, &w, 11);
		assert_int_equal(fakebroker_send(fb, &env), 0);
	}
	assert_true(run_until(c, r, CPX_EV_CONNECTED, 2));
	assert_non_null(in = fakebroker_recv(fb,
	    CPX__ENVELOPE__BODY_SUBSCRIBE, WAIT_MS));
	assert_true(in->subscribe->resume);
	assert_int_equal(in->subscribe->resume_after, 11);
	cpx__envelope__free_unpacked(in, NULL);
	cpx_client_free(&c);
	fakebroker_free(&fb);
	free(r);
}

static void
test_absurd_seq(void **state)
{
	(void)state;
	absurd_seq(0);
	absurd_seq(2);
}

/* 2020-01-15, when nodes/expired-si was valid (January 2020). */
#define IN_2020_MS	1579046400000LL

/*
 * An alert signed by a certificate that has expired since is accepted
 * as history only for a replay this client asked for (or a resume it
 * asked for, up to live_from): not because the broker says `replayed`.
 */
static void
history_decided_by_client(unsigned int threads)
{
	Cpx__SignedAlert old = CPX__SIGNED_ALERT__INIT;
	Cpx__ReplayRequest rq = CPX__REPLAY_REQUEST__INIT;
	Cpx__ReplayEnd re = CPX__REPLAY_END__INIT;
	Cpx__Envelope env = CPX__ENVELOPE__INIT, *in;
	struct fakebroker *fb;
	struct cpx_client *c;
	struct rec *r;
	uint64_t rid;
	size_t at;

	assert_non_null(r = calloc(1, sizeof(*r)));
	fake_session(&fb, &c, r, threads, 0, 20, 0, 0);
	make_signed("nodes/expired-si", "SI", "old-2020", IN_2020_MS, &old);
	/* Marked replayed, answering nothing we asked: strict, refused. */
	deliver(fb, 5, &old, 1, 0);
	assert_true(run_until(c, r, CPX_EV_DELIVERY, 1));
	at = last_delivery(r);
	assert_false(r->ev[at].verified);
	/* Same with a request id that is not ours. */
	deliver(fb, 6, &old, 1, 777);
	assert_true(run_until(c, r, CPX_EV_DELIVERY, 2));
	at = last_delivery(r);
	assert_false(r->ev[at].verified);
	/* Our replay: history, accepted as of its issue time. */
	assert_int_equal(cpx_replay(c, &rq, &rid), 0);
	assert_non_null(in = fakebroker_recv(fb, CPX__ENVELOPE__BODY_REPLAY,
	    WAIT_MS));
	assert_int_equal(in->replay->request_id, rid);
	cpx__envelope__free_unpacked(in, NULL);
	deliver(fb, 5, &old, 1, rid);
	assert_true(run_until(c, r, CPX_EV_DELIVERY, 3));
	at = last_delivery(r);
	if (!r->ev[at].verified)
		fail_msg("replayed alert of ours refused: %s", r->ev[at].text);
	assert_int_equal(cpx_client_last_seq(c), 0);	/* a replay */
	re.request_id = rid;
	re.count = 1;
	re.last_seq = 20;
	env.body_case = CPX__ENVELOPE__BODY_REPLAY_END;
	env.replay_end = &re;
	assert_int_equal(fakebroker_send(fb, &env), 0);
	assert_true(run_until(c, r, CPX_EV_REPLAY_END, 1));
	/* After its end, that request id is history no more. */
	deliver(fb, 5, &old, 1, rid);
	assert_true(run_until(c, r, CPX_EV_DELIVERY, 4));
	at = last_delivery(r);
	assert_false(r->ev[at].verified);
	sign_signed_alert_clear(&old);
	cpx_client_free(&c);
	fakebroker_free(&fb);
	free(r);
}

static void
test_history_decided_by_client(void **state)
{
	(void)state;
	history_decided_by_client(0);
	history_decided_by_client(2);
}

/* A resume we asked for: history up to live_from, strict after it. */
static void
test_resume_history(void **state)
{
	Cpx__SignedAlert old = CPX__SIGNED_ALERT__INIT;
	struct fakebroker *fb;
	struct cpx_client *c;
	struct rec *r;
	size_t at;

	(void)state;
	assert_non_null(r = calloc(1, sizeof(*r)));
	fake_session(&fb, &c, r, 0, 0, 20, 1, 2);
	make_signed("nodes/expired-si", "SI", "old-resume", IN_2020_MS, &old);
	deliver(fb, 5, &old, 1, 0);
	assert_true(run_until(c, r, CPX_EV_DELIVERY, 1));
	at = last_delivery(r);
	if (!r->ev[at].verified)
		fail_msg("resumed alert refused: %s", r->ev[at].text);
	assert_int_equal(cpx_client_last_seq(c), 5);
	deliver(fb, 21, &old, 1, 0);
	assert_true(run_until(c, r, CPX_EV_DELIVERY, 2));
	at = last_delivery(r);
	assert_false(r->ev[at].verified);
	assert_int_equal(cpx_client_last_seq(c), 5);
	sign_signed_alert_clear(&old);
	cpx_client_free(&c);
	fakebroker_free(&fb);
	free(r);
}

/*
 * The broker refuses a resume after 2^64 - 1 (its catch-up would start
 * at resume_after + 1, which wraps to 0: the whole history again).
 */
static void
test_broker_refuses_resume_after_max(void **state)
{
	struct testbroker tb;
	struct testfilter tf;
	Cpx__Filter *fp = &tf.f;
	struct cpx_client *c;
	struct rec *r;
	uint64_t rid;
	char err[400];
	size_t i, at = 0;

	(void)state;
	assert_non_null(r = calloc(1, sizeof(*r)));
	assert_int_equal(testbroker_start(&tb, NULL, NULL), 0);
	if ((c = testbroker_connect(&tb, "hr-ncp", 0, err,
	    sizeof(err))) == NULL)
		fail_msg("connect: %s", err);
	cpx_client_on_event(c, rec_cb, r);
	testfilter_init(&tf, "", "", NULL, 0, 0);
	assert_int_equal(cpx_subscribe(c, &fp, 1, 1, UINT64_MAX, &rid), 0);
	assert_true(run_until(c, r, CPX_EV_ERROR, 1));
	for (i = 0; i < r->n; i++)
		if (r->ev[i].kind == CPX_EV_ERROR)
			at = i;
	assert_int_equal(r->ev[at].request_id, rid);
	assert_int_equal(r->ev[at].reason, CPX__REASON__REASON_BAD_REQUEST);
	assert_false(r->ev[at].fatal);
	assert_int_equal(rec_count(r, CPX_EV_SUBSCRIBED), 0);
	cpx_client_free(&c);
	assert_int_equal(testbroker_cleanup(&tb), 0);
	free(r);
}

/* No CRL: refused unless no_crl says it is meant. */
static void
test_no_crl_refused(void **state)
{
	struct cpx_client_config cfg;
	struct cpx_client *c;
	char ca[512], cert[512], key[512], err[400];

	(void)state;
	assert_int_equal(testpki_path(ca, sizeof(ca), "ca.pem"), 0);
	assert_int_equal(testpki_path(cert, sizeof(cert),
	    "nodes/hr-ncp.pem"), 0);
	assert_int_equal(testpki_path(key, sizeof(key),
	    "nodes/hr-ncp.key"), 0);
	memset(&cfg, 0, sizeof(cfg));
	cfg.endpoint = "tcp://127.0.0.1:1";
	cfg.ca = ca;
	cfg.cert = cert;
	cfg.key = key;
	err[0] = '\0';
	c = cpx_client_new(&cfg, err, sizeof(err));
	assert_null(c);
	if (strstr(err, "CRL") == NULL || strstr(err, "no_crl") == NULL)
		fail_msg("unexpected error: %s", err);
	cfg.no_crl = 1;
	if ((c = cpx_client_new(&cfg, err, sizeof(err))) == NULL)
		fail_msg("no_crl refused: %s", err);
	cpx_client_free(&c);
}

/*
 * Nothing listens at the endpoint: cpx_client_connect says so at once,
 * with the system's reason, instead of waiting out its timeout while
 * ZeroMQ retries. A port is taken and closed again to be sure it is
 * free; the 20 s timeout is what the old code would have waited.
 */
static void
test_connect_refused_fast(void **state)
{
	struct cpx_client_config cfg;
	struct cpx_client *c;
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	char ca[512], cert[512], key[512], crl[512], ep[64], err[400];
	int64_t t0, took;
	int fd, rc;

	(void)state;
	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	close(fd);
	snprintf(ep, sizeof(ep), "tcp://127.0.0.1:%u",
	    (unsigned)ntohs(sa.sin_port));
	assert_int_equal(testpki_path(ca, sizeof(ca), "ca.pem"), 0);
	assert_int_equal(testpki_path(crl, sizeof(crl), "crl.pem"), 0);
	assert_int_equal(testpki_path(cert, sizeof(cert),
	    "nodes/hr-ncp.pem"), 0);
	assert_int_equal(testpki_path(key, sizeof(key),
	    "nodes/hr-ncp.key"), 0);
	memset(&cfg, 0, sizeof(cfg));
	cfg.endpoint = ep;
	cfg.ca = ca;
	cfg.cert = cert;
	cfg.key = key;
	cfg.crl = crl;
	cfg.reconnect = 1;
	if ((c = cpx_client_new(&cfg, err, sizeof(err))) == NULL)
		fail_msg("cpx_client_new: %s", err);
	t0 = testutil_now_ms();
	rc = cpx_client_connect(c, 20000, err, sizeof(err));
	took = testutil_now_ms() - t0;
	cpx_client_free(&c);
	assert_int_equal(rc, -1);
	if (strstr(err, "Connection refused") == NULL)
		fail_msg("unexpected error: %s", err);
	if (took > 3000)
		fail_msg("a refused connect took %lld ms", (long long)took);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_publish_returns_on_ack),
		cmocka_unit_test(test_fatal_error_reported),
		cmocka_unit_test(test_publish_reports_fatal_reason),
		cmocka_unit_test(test_absurd_seq),
		cmocka_unit_test(test_history_decided_by_client),
		cmocka_unit_test(test_resume_history),
		cmocka_unit_test(test_broker_refuses_resume_after_max),
		cmocka_unit_test(test_no_crl_refused),
		cmocka_unit_test(test_connect_refused_fast),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
