/*
 * test_session.c: mutual TLS 1.3 sessions over ZeroMQ against a real
 * cpx-broker on 127.0.0.1: who gets in, who is refused and why (on both
 * sides), that the broker keeps serving a valid node meanwhile, and that
 * a client reconnects and handshakes again by itself after a restart.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "cpx_client.h"
#include "harden_util.h"
#include "testbroker.h"
#include "testpki.h"

static struct testbroker tb;

static int
setup(void **state)
{
	(void)state;
	signal(SIGPIPE, SIG_IGN);
	return testbroker_start(&tb, "handshake_timeout_ms = 1000\n", NULL);
}

static int
teardown(void **state)
{
	(void)state;
	return testbroker_cleanup(&tb);	/* -1: unclean exit, a leak */
}

struct counts {
	int	connected;
	int	disconnected;
	int	subscribed;
	int	errors;
};

static void
count_cb(const struct cpx_event *ev, void *arg)
{
	struct counts *n = arg;

	switch (ev->kind) {
	case CPX_EV_CONNECTED:
		n->connected++;
		break;
	case CPX_EV_DISCONNECTED:
		n->disconnected++;
		break;
	case CPX_EV_SUBSCRIBED:
		n->subscribed++;
		break;
	case CPX_EV_ERROR:
		n->errors++;
		break;
	default:
		break;
	}
}

/* The valid node still gets answers: a subscribe round trip. */
static void
assert_still_served(struct cpx_client *c, struct counts *n)
{
	struct testfilter tf;
	Cpx__Filter *f[1];
	uint64_t req;
	int before = n->subscribed;
	int64_t until = testutil_now_ms() + 5000;

	testfilter_init(&tf, "SI", "", NULL, 0, 0);
	f[0] = &tf.f;
	assert_int_equal(cpx_subscribe(c, f, 1, 0, 0, &req), 0);
	while (n->subscribed == before && testutil_now_ms() < until)
		assert_true(cpx_client_run(c, 50) >= 0);
	assert_int_equal(n->subscribed, before + 1);
}

static void
test_valid_node(void **state)
{
	const Cpx__Welcome *w;
	struct cpx_client *c;
	char err[400];

	(void)state;
	c = testbroker_connect(&tb, "si-ncp", 0, err, sizeof(err));
	if (c == NULL)
		fail_msg("connect: %s", err);
	w = cpx_client_welcome(c);
	assert_non_null(w);
	assert_string_equal(w->country, "SI");
	assert_string_equal(w->node, "si-ncp");
	assert_string_equal(w->broker_name, "cpx-broker");
	assert_true(w->may_publish);
	assert_true(w->may_subscribe);
	assert_true(testbroker_wait_log(&tb, "SI/si-ncp: session opened",
	    5000));
	cpx_client_free(&c);
}

/* Each refused certificate, while a valid node is served in parallel. */
static void
check_refused(const char *node, const char *client_says,
    const char *broker_says)
{
	struct cpx_client *good, *bad;
	struct counts n;
	char err[400];

	memset(&n, 0, sizeof(n));
	good = testbroker_connect(&tb, "hr-ncp", 0, err, sizeof(err));
	if (good == NULL)
		fail_msg("valid node: %s", err);
	cpx_client_on_event(good, count_cb, &n);
	bad = testbroker_client(&tb, node, 0, err, sizeof(err));
	if (bad == NULL)
		fail_msg("%s: client: %s", node, err);
	assert_int_equal(cpx_client_connect(bad, 10000, err, sizeof(err)),
	    -1);
	if (strstr(err, client_says) == NULL)
		fail_msg("%s: client error \"%s\" lacks \"%s\"", node, err,
		    client_says);
	assert_true(testbroker_wait_log(&tb, broker_says, 5000));
	assert_still_served(good, &n);
	cpx_client_free(&bad);
	cpx_client_free(&good);
}

static void
test_other_ca(void **state)
{
	(void)state;
	check_refused("other/rogue-si", "this node's certificate is not from "
	    "the network's CA (TLS error: tlsv1 alert unknown ca",
	    "unable to get local issuer certificate");
}

static void
test_expired(void **state)
{
	(void)state;
	check_refused("nodes/expired-si", "certificate expired",
	    "certificate has expired");
}

static void
test_not_yet_valid(void **state)
{
	(void)state;
	check_refused("nodes/future-at", "bad certificate",
	    "certificate is not yet valid");
}

static void
test_revoked(void **state)
{
	(void)state;
	check_refused("nodes/revoked-hr", "the broker refused this node: this "
	    "node's certificate has been revoked",
	    "certificate revoked");
}

/* 1 if the peer closed fd within timeout_ms (reads until EOF/error). */
static int
closed_within(int fd, int timeout_ms)
{
	struct pollfd pfd = { fd, POLLIN, 0 };
	int64_t until = testutil_now_ms() + timeout_ms;
	char buf[4096];
	ssize_t n;

	while (testutil_now_ms() < until) {
		if (poll(&pfd, 1, 100) <= 0)
			continue;
		n = read(fd, buf, sizeof(buf));
		if (n <= 0)
			return 1;
	}
	return 0;
}

static void
test_no_client_cert(void **state)
{
	struct cpx_client *good;
	struct counts n;
	const char *pki;
	char ca[512], err[400], buf[64], msg[256] = "";
	SSL_CTX *ctx;
	SSL *ssl;
	int fd, r;

	(void)state;
	memset(&n, 0, sizeof(n));
	good = testbroker_connect(&tb, "it-ncp", 0, err, sizeof(err));
	if (good == NULL)
		fail_msg("valid node: %s", err);
	cpx_client_on_event(good, count_cb, &n);
	assert_int_equal(testpki_get(&pki), 0);
	snprintf(ca, sizeof(ca), "%s/ca.pem", pki);
	/* A standard TLS 1.3 client (the wire is plain TLS over TCP). */
	ctx = SSL_CTX_new(TLS_client_method());
	assert_non_null(ctx);
	SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
	assert_int_equal(SSL_CTX_load_verify_file(ctx, ca), 1);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	assert_true((fd = harden_tcp_connect(tb.port)) >= 0);
	ssl = SSL_new(ctx);
	SSL_set_fd(ssl, fd);
	/* TLS 1.3: our side completes; the broker then refuses us. */
	assert_int_equal(SSL_connect(ssl), 1);
	r = SSL_read(ssl, buf, sizeof(buf));
	assert_true(r <= 0);
	ERR_error_string_n(ERR_get_error(), msg, sizeof(msg));
	if (strstr(msg, "certificate required") == NULL)
		fail_msg("client saw \"%s\"", msg);
	assert_true(testbroker_wait_log(&tb, "no client certificate", 5000));
	SSL_free(ssl);
	close(fd);
	SSL_CTX_free(ctx);
	assert_still_served(good, &n);
	cpx_client_free(&good);
}

static void
test_garbage(void **state)
{
	static const char junk[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
	    "\x16\x03\x01\xff\xff garbage garbage garbage";
	struct cpx_client *good;
	struct counts n;
	char err[400];
	int fd, before;

	(void)state;
	memset(&n, 0, sizeof(n));
	good = testbroker_connect(&tb, "at-ncp", 0, err, sizeof(err));
	if (good == NULL)
		fail_msg("valid node: %s", err);
	cpx_client_on_event(good, count_cb, &n);
	before = testbroker_log_count(&tb, "session refused");
	assert_true((fd = harden_tcp_connect(tb.port)) >= 0);
	assert_int_equal(write(fd, junk, sizeof(junk) - 1),
	    (ssize_t)sizeof(junk) - 1);
	assert_true(closed_within(fd, 5000));
	close(fd);
	assert_true(testbroker_wait_log(&tb, "TLS handshake failed", 5000));
	assert_true(testbroker_log_count(&tb, "session refused") > before);
	assert_still_served(good, &n);
	cpx_client_free(&good);
}

static void
test_handshake_timeout(void **state)
{
	struct cpx_client *good;
	struct counts n;
	char err[400];
	int fd;
	int64_t t0;

	(void)state;
	memset(&n, 0, sizeof(n));
	good = testbroker_connect(&tb, "hu-ncp", 0, err, sizeof(err));
	if (good == NULL)
		fail_msg("valid node: %s", err);
	cpx_client_on_event(good, count_cb, &n);
	assert_true((fd = harden_tcp_connect(tb.port)) >= 0);
	/* Half a ClientHello record header, then silence. */
	assert_int_equal(write(fd, "\x16\x03\x01", 3), 3);
	t0 = testutil_now_ms();
	assert_true(closed_within(fd, 8000));
	/* Closed by the 1000 ms handshake timeout, not at once. */
	assert_true(testutil_now_ms() - t0 >= 700);
	close(fd);
	assert_true(testbroker_wait_log(&tb, "handshake not completed",
	    2000));
	assert_still_served(good, &n);
	cpx_client_free(&good);
}

static void
test_restart_reconnects(void **state)
{
	struct cpx_client *c;
	struct counts n;
	char err[400];
	int64_t until;

	(void)state;
	memset(&n, 0, sizeof(n));
	c = testbroker_client(&tb, "rs-ncp", 1, err, sizeof(err));
	if (c == NULL)
		fail_msg("client: %s", err);
	cpx_client_on_event(c, count_cb, &n);
	if (cpx_client_connect(c, 10000, err, sizeof(err)) == -1)
		fail_msg("connect: %s", err);
	assert_int_equal(n.connected, 1);
	assert_int_equal(testbroker_restart(&tb), 0);
	until = testutil_now_ms() + 15000;
	while (n.connected < 2 && testutil_now_ms() < until)
		assert_true(cpx_client_run(c, 100) >= 0);
	assert_int_equal(n.disconnected, 1);
	assert_int_equal(n.connected, 2);
	assert_non_null(cpx_client_welcome(c));
	assert_still_served(c, &n);
	cpx_client_free(&c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_node),
		cmocka_unit_test(test_other_ca),
		cmocka_unit_test(test_expired),
		cmocka_unit_test(test_not_yet_valid),
		cmocka_unit_test(test_revoked),
		cmocka_unit_test(test_no_client_cert),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_handshake_timeout),
		cmocka_unit_test(test_restart_reconnects),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
