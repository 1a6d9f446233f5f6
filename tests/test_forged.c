/*
 * test_forged.c: a compromised broker cannot forge alerts. A fake broker
 * (real TLS with the real broker certificate, real ZMQ_STREAM socket)
 * welcomes a subscriber and then delivers tampered, re-signed, spoofed
 * and honest alerts; the client library's own end-to-end check must mark
 * only the honest one verified and say why each other one is not.
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
#include <zmq.h>

#include "alert.h"
#include "cpx_client.h"
#include "cpx_limits.h"
#include "sign.h"
#include "testbroker.h"
#include "testpki.h"
#include "testsink.h"
#include "tlsconn.h"
#include "tlsctx.h"
#include "wire.h"

struct fake {
	int		 port;
	char		 endpoint[64];
	volatile int	 stop;
	int		 sent;
	char		 err[256];
};

static void
make_signed(const char *node, const char *origin, const char *id,
    Cpx__SignedAlert *sa)
{
	Cpx__Alert a = CPX__ALERT__INIT;
	char kp[512], cp[512], rel[128], err[256];
	EVP_PKEY *key;
	X509 *cert;
	uint8_t buf[2048];
	size_t len;

	snprintf(rel, sizeof(rel), "%s.key", node);
	assert_int_equal(testpki_path(kp, sizeof(kp), rel), 0);
	snprintf(rel, sizeof(rel), "%s.pem", node);
	assert_int_equal(testpki_path(cp, sizeof(cp), rel), 0);
	key = tlsctx_load_key(kp, err, sizeof(err));
	cert = tlsctx_load_cert(cp, err, sizeof(err));
	assert_non_null(key);
	assert_non_null(cert);
	a.id = (char *)id;
	a.origin = (char *)origin;
	a.issued_at = alert_now_ms();
	a.category = CPX__CATEGORY__CATEGORY_VEHICLE;
	a.severity = CPX__SEVERITY__SEVERITY_HIGH;
	a.handling = CPX__HANDLING__HANDLING_NETWORK;
	a.summary = "white van, plates LJ 123-AB";
	len = cpx__alert__get_packed_size(&a);
	cpx__alert__pack(&a, buf);
	assert_int_equal(sign_alert(key, cert, buf, len, sa), 0);
	EVP_PKEY_free(key);
	X509_free(cert);
}

static int
send_env(void *sock, const uint8_t *rid, size_t rlen, struct tlsconn *t,
    const Cpx__Envelope *env)
{
	const uint8_t *p;
	uint8_t *buf;
	size_t len;

	if (wire_encode(env, &buf, &len) == -1 ||
	    tlsconn_write(t, buf, len) == -1)
		return -1;
	free(buf);
	tlsconn_out(t, &p, &len);
	if (len == 0)
		return 0;
	zmq_send(sock, rid, rlen, ZMQ_SNDMORE);
	zmq_send(sock, p, len, 0);
	tlsconn_consume(t, len);
	return 0;
}

static void
deliver(void *sock, const uint8_t *rid, size_t rlen, struct tlsconn *t,
    uint64_t seq, Cpx__SignedAlert *sa)
{
	Cpx__Envelope env = CPX__ENVELOPE__INIT;
	Cpx__Delivery d = CPX__DELIVERY__INIT;

	d.seq = seq;
	d.accepted_at = alert_now_ms();
	d.alert = sa;
	env.body_case = CPX__ENVELOPE__BODY_DELIVERY;
	env.delivery = &d;
	(void)send_env(sock, rid, rlen, t, &env);
}

/* The forgeries a compromised broker would try, then one honest alert. */
static void
forge(void *sock, const uint8_t *rid, size_t rlen, struct tlsconn *t)
{
	Cpx__SignedAlert sa = CPX__SIGNED_ALERT__INIT;
	Cpx__SignedAlert hr = CPX__SIGNED_ALERT__INIT;

	/* 1: body altered after the origin signed it. */
	make_signed("nodes/si-ncp", "SI", "f-tampered", &sa);
	sa.alert.data[sa.alert.len - 3] ^= 0x20;
	deliver(sock, rid, rlen, t, 1, &sa);
	sign_signed_alert_clear(&sa);
	/* 2: "signed by SI" with a key from another CA. */
	make_signed("other/rogue-si", "SI", "f-rogue", &sa);
	deliver(sock, rid, rlen, t, 2, &sa);
	sign_signed_alert_clear(&sa);
	/* 3: claims origin HR, signed by SI. */
	make_signed("nodes/si-ncp", "HR", "f-spoofed", &sa);
	deliver(sock, rid, rlen, t, 3, &sa);
	sign_signed_alert_clear(&sa);
	/* 4: HR's signature grafted onto SI's alert bytes. */
	make_signed("nodes/si-ncp", "SI", "f-grafted", &sa);
	make_signed("nodes/hr-ncp", "HR", "f-other", &hr);
	{
		ProtobufCBinaryData tmp = sa.signature;

		sa.signature = hr.signature;
		hr.signature = tmp;
	}
	deliver(sock, rid, rlen, t, 4, &sa);
	sign_signed_alert_clear(&sa);
	sign_signed_alert_clear(&hr);
	/* 5: revoked signer. */
	make_signed("nodes/revoked-hr", "HR", "f-revoked", &sa);
	deliver(sock, rid, rlen, t, 5, &sa);
	sign_signed_alert_clear(&sa);
	/* 6: honest. */
	make_signed("nodes/si-ncp", "SI", "f-honest", &sa);
	deliver(sock, rid, rlen, t, 6, &sa);
	sign_signed_alert_clear(&sa);
}

static void *
fake_broker(void *arg)
{
	struct fake *f = arg;
	struct tls_files files;
	char ca[512], cert[512], key[512], crl[512];
	uint8_t rid[256];
	size_t rlen = 0;
	struct tlsconn *t = NULL;
	SSL_CTX *ctx;
	void *zctx, *sock;
	int welcomed = 0;

	assert_int_equal(testpki_path(ca, sizeof(ca), "ca.pem"), 0);
	assert_int_equal(testpki_path(cert, sizeof(cert), "broker.pem"), 0);
	assert_int_equal(testpki_path(key, sizeof(key), "broker.key"), 0);
	assert_int_equal(testpki_path(crl, sizeof(crl), "crl.pem"), 0);
	files.ca = ca;
	files.cert = cert;
	files.key = key;
	files.crl = crl;
	ctx = tlsctx_new(&files, 1, f->err, sizeof(f->err));
	zctx = zmq_ctx_new();
	sock = zmq_socket(zctx, ZMQ_STREAM);
	if (ctx == NULL || zmq_bind(sock, "tcp://127.0.0.1:*") == -1)
		goto out;
	{
		size_t len = sizeof(f->endpoint);

		zmq_getsockopt(sock, ZMQ_LAST_ENDPOINT, f->endpoint, &len);
	}
	__atomic_store_n(&f->port, 1, __ATOMIC_RELEASE);
	while (!f->stop) {
		zmq_pollitem_t it = { sock, 0, ZMQ_POLLIN, 0 };
		zmq_msg_t id, data;
		const uint8_t *body, *p;
		size_t blen, len;

		if (zmq_poll(&it, 1, 50) <= 0)
			continue;
		zmq_msg_init(&id);
		zmq_msg_init(&data);
		zmq_msg_recv(&id, sock, 0);
		zmq_msg_recv(&data, sock, 0);
		if (zmq_msg_size(&data) == 0) {
			if (t == NULL) {
				rlen = zmq_msg_size(&id);
				memcpy(rid, zmq_msg_data(&id), rlen);
				t = tlsconn_new(ctx, 1, CPX_MAX_FRAME);
			}
		} else if (t != NULL && tlsconn_feed(t, zmq_msg_data(&data),
		    zmq_msg_size(&data)) == 0) {
			tlsconn_out(t, &p, &len);
			if (len > 0) {
				zmq_send(sock, rid, rlen, ZMQ_SNDMORE);
				zmq_send(sock, p, len, 0);
				tlsconn_consume(t, len);
			}
			if (tlsconn_state(t) == TLSCONN_OPEN && !welcomed) {
				Cpx__Envelope env = CPX__ENVELOPE__INIT;
				Cpx__Welcome w = CPX__WELCOME__INIT;

				w.broker_name = "cpx-broker";
				w.country = "AT";
				w.node = "at-ncp";
				w.may_subscribe = 1;
				w.max_frame = CPX_MAX_FRAME;
				env.body_case = CPX__ENVELOPE__BODY_WELCOME;
				env.welcome = &w;
				(void)send_env(sock, rid, rlen, t, &env);
				welcomed = 1;
			}
			while (tlsconn_next_frame(t, &body, &blen) == 1) {
				Cpx__Envelope *e;
				int reason;
				char why[128];

				e = wire_decode(body, blen, &reason, why,
				    sizeof(why));
				if (e != NULL && e->body_case ==
				    CPX__ENVELOPE__BODY_SUBSCRIBE) {
					forge(sock, rid, rlen, t);
					f->sent = 6;
				}
				if (e != NULL)
					cpx__envelope__free_unpacked(e, NULL);
			}
		}
		zmq_msg_close(&id);
		zmq_msg_close(&data);
	}
out:
	tlsconn_free(&t);
	zmq_close(sock);
	zmq_ctx_term(zctx);
	SSL_CTX_free(ctx);
	return NULL;
}

static const char *
verdict(struct testsink *s, uint64_t seq)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		if (s->items[i].seq == seq)
			return s->items[i].verified ? "verified" :
			    s->items[i].verify_error;
	return "missing";
}

static void
test_forged_deliveries(void **state)
{
	struct testbroker fake_tb;
	struct testsink sink;
	struct testfilter tf;
	Cpx__Filter *fl[1];
	struct cpx_client *c;
	struct fake f;
	pthread_t th;
	char err[400];
	uint64_t req;
	int64_t until;
	const char *v;
	int i;

	(void)state;
	memset(&f, 0, sizeof(f));
	assert_int_equal(pthread_create(&th, NULL, fake_broker, &f), 0);
	until = testutil_now_ms() + 5000;
	while (!__atomic_load_n(&f.port, __ATOMIC_ACQUIRE) &&
	    testutil_now_ms() < until)
		sched_yield();
	assert_true(f.port);
	memset(&fake_tb, 0, sizeof(fake_tb));
	snprintf(fake_tb.endpoint, sizeof(fake_tb.endpoint), "%s", f.endpoint);
	c = testbroker_client(&fake_tb, "at-ncp", 0, err, sizeof(err));
	assert_non_null(c);
	testsink_attach(&sink, c);
	if (cpx_client_connect(c, 5000, err, sizeof(err)) == -1)
		fail_msg("connect to fake broker: %s", err);
	testfilter_init(&tf, "", "", NULL, 0, 0);
	fl[0] = &tf.f;
	assert_int_equal(cpx_subscribe(c, fl, 1, 0, 0, &req), 0);
	assert_true(testsink_wait_deliveries(&sink, c, 6, 10000));
	for (i = 1; i <= 5; i++) {
		v = verdict(&sink, (uint64_t)i);
		if (strcmp(v, "verified") == 0 || strcmp(v, "missing") == 0 ||
		    v[0] == '\0')
			fail_msg("forgery %d: %s", i, v);
	}
	assert_non_null(strstr(verdict(&sink, 1), "signature"));
	assert_non_null(strstr(verdict(&sink, 3), "origin"));
	assert_non_null(strstr(verdict(&sink, 5), "revoked"));
	assert_string_equal(verdict(&sink, 6), "verified");
	cpx_client_free(&c);
	f.stop = 1;
	pthread_join(th, NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_forged_deliveries),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
