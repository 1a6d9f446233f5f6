/*
 * test_protocol_broker.c: the session rules of docs/protocol.md against a
 * real cpx-broker on 127.0.0.1. The node here is written from the
 * document alone: TLS 1.3 on a plain TCP socket (no ZeroMQ on this side),
 * the broker's certificate checked as the document says, frames cut and
 * built by hand around lib/wire.c. It checks the Welcome and its units,
 * Ping and Pong, unknown envelope fields ignored, an alert with a
 * trailing unknown field accepted and delivered byte for byte, duplicates
 * and conflicts, a non-canonical alert refused without ending the
 * session, and the fatal Error then close_notify after an oversize frame
 * and after a message only the broker sends.
 */
#include <sys/socket.h>
#include <sys/time.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
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

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "alert.h"
#include "cpx_limits.h"
#include "sign.h"
#include "testbroker.h"
#include "testpki.h"
#include "wire.h"

/* One session of the node: its socket, TLS and unread plaintext. */
struct raw {
	int		 fd;
	SSL_CTX		*ctx;
	SSL		*ssl;
	uint8_t		 in[CPX_MAX_FRAME + 4];
	size_t		 len;
	int		 closed;	/* close_notify received */
};

#define RAW_TIMEOUT_MS	10000
#define BRK_MAX_FRAME	100000u
#define BRK_PING_MS	1500u	/* announced as 2 s: rounded up */

static struct testbroker	tb;

static int
broker_setup(void **state)
{
	char	extra[128];

	(void)state;
	signal(SIGPIPE, SIG_IGN);
	snprintf(extra, sizeof(extra), "ping_interval_ms = %u\n"
	    "max_frame = %u\n", BRK_PING_MS, BRK_MAX_FRAME);
	return testbroker_start(&tb, extra, NULL);
}

static int
broker_teardown(void **state)
{
	(void)state;
	return testbroker_cleanup(&tb);
}

static void
raw_open(struct raw *r, const char *node)
{
	struct sockaddr_in	 sin;
	struct timeval		 tv = { RAW_TIMEOUT_MS / 1000, 0 };
	X509_VERIFY_PARAM	*param;
	X509_STORE		*store;
	char			 ca[512], crl[512], cert[512], key[512];
	char			 rel[128];

	memset(r, 0, sizeof(*r));
	assert_int_equal(testpki_path(ca, sizeof(ca), "ca.pem"), 0);
	assert_int_equal(testpki_path(crl, sizeof(crl), "crl.pem"), 0);
	snprintf(rel, sizeof(rel), "nodes/%s.pem", node);
	assert_int_equal(testpki_path(cert, sizeof(cert), rel), 0);
	snprintf(rel, sizeof(rel), "nodes/%s.key", node);
	assert_int_equal(testpki_path(key, sizeof(key), rel), 0);

	r->ctx = SSL_CTX_new(TLS_client_method());
	assert_non_null(r->ctx);
	assert_int_equal(SSL_CTX_set_min_proto_version(r->ctx,
	    TLS1_3_VERSION), 1);
	/* 2.4: the network CA, and the broker's certificate not revoked. */
	store = SSL_CTX_get_cert_store(r->ctx);
	assert_int_equal(X509_STORE_load_file(store, ca), 1);
	assert_int_equal(X509_STORE_load_file(store, crl), 1);
	assert_int_equal(X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK),
	    1);
	assert_int_equal(SSL_CTX_use_certificate_file(r->ctx, cert,
	    SSL_FILETYPE_PEM), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey_file(r->ctx, key,
	    SSL_FILETYPE_PEM), 1);
	/* serverAuth, and the endpoint's host in the subjectAltName. */
	assert_int_equal(SSL_CTX_set_purpose(r->ctx, X509_PURPOSE_SSL_SERVER),
	    1);
	param = SSL_CTX_get0_param(r->ctx);
	X509_VERIFY_PARAM_set_hostflags(param,
	    X509_CHECK_FLAG_NEVER_CHECK_SUBJECT);
	assert_int_equal(X509_VERIFY_PARAM_set1_ip_asc(param, "127.0.0.1"),
	    1);
	SSL_CTX_set_verify(r->ctx, SSL_VERIFY_PEER, NULL);

	r->fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(r->fd >= 0);
	/* A read never blocks past the test's own deadline. */
	assert_int_equal(setsockopt(r->fd, SOL_SOCKET, SO_RCVTIMEO, &tv,
	    sizeof(tv)), 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)tb.port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(r->fd, (struct sockaddr *)&sin,
	    sizeof(sin)), 0);
	r->ssl = SSL_new(r->ctx);
	assert_non_null(r->ssl);
	assert_int_equal(SSL_set_fd(r->ssl, r->fd), 1);
	if (SSL_connect(r->ssl) != 1)
		fail_msg("TLS handshake with the broker failed");
}

static void
raw_close(struct raw *r)
{
	if (r->ssl != NULL && !r->closed)
		(void)SSL_shutdown(r->ssl);
	SSL_free(r->ssl);
	SSL_CTX_free(r->ctx);
	if (r->fd >= 0)
		close(r->fd);
	memset(r, 0, sizeof(*r));
	r->fd = -1;
}

static void
raw_write(struct raw *r, const uint8_t *p, size_t n)
{
	size_t	done = 0;

	assert_int_equal(SSL_write_ex(r->ssl, p, n, &done), 1);
	assert_int_equal(done, n);
}

/* Send env, with extra bytes (an unknown field) appended to its body. */
static void
raw_send(struct raw *r, const Cpx__Envelope *env, const uint8_t *extra,
    size_t nextra)
{
	uint8_t	*buf, *out;
	size_t	 len, body;

	assert_int_equal(wire_encode(env, &buf, &len), 0);
	out = malloc(len + nextra);
	assert_non_null(out);
	memcpy(out, buf, len);
	if (nextra > 0)
		memcpy(out + len, extra, nextra);
	body = len - 4 + nextra;
	out[0] = (uint8_t)(body >> 24);
	out[1] = (uint8_t)(body >> 16);
	out[2] = (uint8_t)(body >> 8);
	out[3] = (uint8_t)body;
	raw_write(r, out, len + nextra);
	free(out);
	free(buf);
}

/*
 * The next Envelope from the broker, waiting at most RAW_TIMEOUT_MS, or
 * NULL once the broker has closed the TLS session.
 */
static Cpx__Envelope *
raw_recv(struct raw *r)
{
	struct pollfd	 pfd;
	const uint8_t	*body;
	Cpx__Envelope	*env;
	size_t		 blen, used, got;
	int64_t		 until = testutil_now_ms() + RAW_TIMEOUT_MS;
	char		 why[256];
	int		 reason, rc, left;

	for (;;) {
		if (wire_frame_next(r->in, r->len, CPX_MAX_FRAME, &body, &blen,
		    &used) == WIRE_FRAME) {
			env = wire_decode(body, blen, &reason, why,
			    sizeof(why));
			if (env == NULL)
				fail_msg("frame from the broker: %s", why);
			memmove(r->in, r->in + used, r->len - used);
			r->len -= used;
			return env;
		}
		if (r->closed)
			return NULL;
		if (SSL_pending(r->ssl) == 0) {
			left = (int)(until - testutil_now_ms());
			if (left <= 0)
				fail_msg("nothing from the broker in %d ms",
				    RAW_TIMEOUT_MS);
			pfd.fd = r->fd;
			pfd.events = POLLIN;
			if (poll(&pfd, 1, left) != 1)
				continue;
		}
		rc = SSL_read_ex(r->ssl, r->in + r->len,
		    sizeof(r->in) - r->len, &got);
		if (rc == 1)
			r->len += got;
		else if (SSL_get_error(r->ssl, rc) == SSL_ERROR_ZERO_RETURN)
			r->closed = 1;
		else
			fail_msg("TLS read from the broker failed");
	}
}

/* The next Envelope, which must have body kind want. */
static Cpx__Envelope *
raw_expect(struct raw *r, Cpx__Envelope__BodyCase want)
{
	Cpx__Envelope	*env;

	env = raw_recv(r);
	if (env == NULL)
		fail_msg("broker closed the session, expected kind %d", want);
	if (env->body_case != want)
		fail_msg("got message kind %d (reason %d), expected %d",
		    env->body_case, env->body_case ==
		    CPX__ENVELOPE__BODY_ERROR ? env->error->reason : 0, want);
	return env;
}

/* Open a session as node and check its Welcome (4.1, 4.3). */
static void
raw_welcomed(struct raw *r, const char *node, const char *country)
{
	Cpx__Envelope	*env;

	raw_open(r, node);
	env = raw_expect(r, CPX__ENVELOPE__BODY_WELCOME);
	assert_string_equal(env->welcome->country, country);
	assert_string_equal(env->welcome->node, node);
	assert_int_equal(env->welcome->max_frame, BRK_MAX_FRAME);
	assert_int_equal(env->welcome->ping_interval,
	    (BRK_PING_MS + 999) / 1000);
	cpx__envelope__free_unpacked(env, NULL);
}

static void
raw_ping(struct raw *r, uint64_t nonce, const uint8_t *extra, size_t nextra)
{
	Cpx__Envelope	 env = CPX__ENVELOPE__INIT, *got;
	Cpx__Ping	 ping = CPX__PING__INIT;

	ping.nonce = nonce;
	env.body_case = CPX__ENVELOPE__BODY_PING;
	env.ping = &ping;
	raw_send(r, &env, extra, nextra);
	got = raw_expect(r, CPX__ENVELOPE__BODY_PONG);
	assert_int_equal(got->pong->nonce, nonce);
	cpx__envelope__free_unpacked(got, NULL);
}

/* si-ncp's key and certificate from the test PKI. */
static void
node_key(EVP_PKEY **key, X509 **cert)
{
	char	 path[512];
	FILE	*fp;

	assert_int_equal(testpki_path(path, sizeof(path),
	    "nodes/si-ncp.key"), 0);
	fp = fopen(path, "r");
	assert_non_null(fp);
	*key = PEM_read_PrivateKey(fp, NULL, NULL, NULL);
	fclose(fp);
	assert_non_null(*key);
	assert_int_equal(testpki_path(path, sizeof(path),
	    "nodes/si-ncp.pem"), 0);
	fp = fopen(path, "r");
	assert_non_null(fp);
	*cert = PEM_read_X509(fp, NULL, NULL, NULL);
	fclose(fp);
	assert_non_null(*cert);
}

/*
 * A network-wide alert from SI issued now, serialized, with tail[] (bytes
 * the document says are kept or refused) appended. Caller frees.
 */
static uint8_t *
now_alert(const char *id, const char *summary, const uint8_t *tail,
    size_t ntail, size_t *len)
{
	Cpx__Alert	 a = CPX__ALERT__INIT;
	uint8_t		*b;

	a.id = (char *)id;
	a.origin = "SI";
	a.issued_at = alert_now_ms();
	a.category = CPX__CATEGORY__CATEGORY_ROUTE;
	a.severity = CPX__SEVERITY__SEVERITY_MEDIUM;
	a.handling = CPX__HANDLING__HANDLING_NETWORK;
	a.summary = (char *)summary;
	*len = cpx__alert__get_packed_size(&a);
	b = malloc(*len + ntail);
	assert_non_null(b);
	assert_int_equal(cpx__alert__pack(&a, b), *len);
	if (ntail > 0)
		memcpy(b + *len, tail, ntail);
	*len += ntail;
	return b;
}

/*
 * got answers request rid with kind (an Ack, or an Error with reason and
 * not fatal); frees it. Returns the Ack's seq, or 0.
 */
static uint64_t
answer(Cpx__Envelope *got, uint64_t rid, int reason, int duplicate)
{
	uint64_t	seq = 0;

	if (reason == CPX__REASON__REASON_NONE) {
		assert_int_equal(got->body_case, CPX__ENVELOPE__BODY_ACK);
		assert_int_equal(got->ack->request_id, rid);
		assert_int_equal(got->ack->duplicate, duplicate);
		seq = got->ack->seq;
	} else {
		assert_int_equal(got->body_case, CPX__ENVELOPE__BODY_ERROR);
		assert_int_equal(got->error->request_id, rid);
		assert_int_equal(got->error->reason, reason);
		assert_false(got->error->fatal);
	}
	cpx__envelope__free_unpacked(got, NULL);
	return seq;
}

/* Publish b[0..len) signed now with key; returns the answer. */
static Cpx__Envelope *
raw_publish(struct raw *r, EVP_PKEY *key, X509 *cert, uint64_t rid,
    const uint8_t *b, size_t len, Cpx__SignedAlert *sa)
{
	static const Cpx__SignedAlert	 init = CPX__SIGNED_ALERT__INIT;
	Cpx__Envelope			 env = CPX__ENVELOPE__INIT, *got;
	Cpx__Publish			 pub = CPX__PUBLISH__INIT;

	*sa = init;
	assert_int_equal(sign_alert(key, cert, b, len, sa), 0);
	pub.request_id = rid;
	pub.alert = sa;
	env.body_case = CPX__ENVELOPE__BODY_PUBLISH;
	env.publish = &pub;
	raw_send(r, &env, NULL, 0);
	got = raw_recv(r);
	assert_non_null(got);
	return got;
}

/*
 * Welcome first with the announced limits; Ping answered by a Pong with
 * its nonce, also with an unknown field in the envelope (ignored).
 */
static void
test_broker_welcome_ping(void **state)
{
	/* Field 111, varint 1: no message of the schema has it. */
	static const uint8_t	unknown[] = { 0xf8, 0x06, 0x01 };
	struct raw		r;

	(void)state;
	raw_welcomed(&r, "si-ncp", "SI");
	raw_ping(&r, 42, NULL, 0);
	raw_ping(&r, 43, unknown, sizeof(unknown));
	raw_close(&r);
}

/*
 * 4.4, 4.5, 5.2, 7: an alert with a trailing unknown field is accepted
 * and delivered with its bytes unchanged; the same bytes signed again are
 * a duplicate with the original seq and are not delivered again; other
 * bytes under the id are a conflict; non-canonical bytes are refused,
 * and none of these refusals ends the session.
 */
static void
test_broker_publish_deliver(void **state)
{
	static const uint8_t	 keep[] = { 0x80, 0x01, 0x05 };
	static const uint8_t	 zero[] = { 0x60, 0x00 };
	struct testfilter	 tf;
	struct raw		 si, hr;
	Cpx__Envelope		 env = CPX__ENVELOPE__INIT, *got;
	Cpx__Subscribe		 sub = CPX__SUBSCRIBE__INIT;
	Cpx__Filter		*filters[1];
	Cpx__SignedAlert	 sa1, sa2, sa3;
	EVP_PKEY		*key;
	X509			*cert;
	uint8_t			*b1, *b2, *b3;
	size_t			 l1, l2, l3;
	uint64_t		 seq;
	char			 id[64], id2[64];

	(void)state;
	node_key(&key, &cert);
	snprintf(id, sizeof(id), "proto-%ld-1", (long)getpid());
	snprintf(id2, sizeof(id2), "proto-%ld-2", (long)getpid());
	raw_welcomed(&hr, "hr-ncp", "HR");
	testfilter_init(&tf, "SI", "", NULL, 0, 0);
	filters[0] = &tf.f;
	sub.request_id = 5;
	sub.n_filters = 1;
	sub.filters = filters;
	env.body_case = CPX__ENVELOPE__BODY_SUBSCRIBE;
	env.subscribe = &sub;
	raw_send(&hr, &env, NULL, 0);
	got = raw_expect(&hr, CPX__ENVELOPE__BODY_SUBSCRIBED);
	assert_int_equal(got->subscribed->request_id, 5);
	cpx__envelope__free_unpacked(got, NULL);

	raw_welcomed(&si, "si-ncp", "SI");
	b1 = now_alert(id, "first", keep, sizeof(keep), &l1);
	seq = answer(raw_publish(&si, key, cert, 77, b1, l1, &sa1), 77,
	    CPX__REASON__REASON_NONE, 0);

	got = raw_expect(&hr, CPX__ENVELOPE__BODY_DELIVERY);
	assert_int_equal(got->delivery->seq, seq);
	assert_int_equal(got->delivery->request_id, 0);
	assert_false(got->delivery->replayed);
	assert_int_equal(got->delivery->alert->alert.len, l1);
	assert_memory_equal(got->delivery->alert->alert.data, b1, l1);
	assert_int_equal(got->delivery->alert->signature.len,
	    sa1.signature.len);
	assert_memory_equal(got->delivery->alert->signature.data,
	    sa1.signature.data, sa1.signature.len);
	cpx__envelope__free_unpacked(got, NULL);

	/* Same bytes, a new ECDSA signature: the original seq. */
	assert_int_equal(answer(raw_publish(&si, key, cert, 78, b1, l1, &sa2),
	    78, CPX__REASON__REASON_NONE, 1), seq);
	sign_signed_alert_clear(&sa2);

	/* Other bytes under the same id. */
	b2 = now_alert(id, "changed", NULL, 0, &l2);
	(void)answer(raw_publish(&si, key, cert, 79, b2, l2, &sa2), 79,
	    CPX__REASON__REASON_DUPLICATE_CONFLICT, 0);
	sign_signed_alert_clear(&sa2);

	/* A default value written: not canonical. */
	b3 = now_alert(id2, "zero written", zero, sizeof(zero), &l3);
	(void)answer(raw_publish(&si, key, cert, 80, b3, l3, &sa3), 80,
	    CPX__REASON__REASON_INVALID_ALERT, 0);
	sign_signed_alert_clear(&sa3);
	free(b3);

	/* Still open; the next delivery is the next alert, not a repeat. */
	b3 = now_alert(id2, "second", NULL, 0, &l3);
	assert_true(answer(raw_publish(&si, key, cert, 81, b3, l3, &sa3), 81,
	    CPX__REASON__REASON_NONE, 0) > seq);
	got = raw_expect(&hr, CPX__ENVELOPE__BODY_DELIVERY);
	assert_int_equal(got->delivery->alert->alert.len, l3);
	assert_memory_equal(got->delivery->alert->alert.data, b3, l3);
	cpx__envelope__free_unpacked(got, NULL);

	sign_signed_alert_clear(&sa1);
	sign_signed_alert_clear(&sa3);
	free(b1);
	free(b2);
	free(b3);
	EVP_PKEY_free(key);
	X509_free(cert);
	raw_close(&si);
	raw_close(&hr);
}

/* A fatal Error (request id 0) is the last message, then close_notify. */
static void
expect_fatal(struct raw *r, int reason)
{
	Cpx__Envelope	*env;

	env = raw_expect(r, CPX__ENVELOPE__BODY_ERROR);
	assert_int_equal(env->error->reason, reason);
	assert_true(env->error->fatal);
	assert_int_equal(env->error->request_id, 0);
	cpx__envelope__free_unpacked(env, NULL);
	assert_null(raw_recv(r));
	assert_true(r->closed);
}

/*
 * 3.1, 4.2, 8.3: a frame announced over Welcome.max_frame ends the session
 * before its body is sent; so does a message only the broker sends.
 */
static void
test_broker_fatal(void **state)
{
	Cpx__Envelope	 env = CPX__ENVELOPE__INIT;
	Cpx__Ack	 ack = CPX__ACK__INIT;
	struct raw	 r;
	uint8_t		 prefix[4];
	uint32_t	 n = BRK_MAX_FRAME + 1;

	(void)state;
	raw_welcomed(&r, "si-ncp", "SI");
	prefix[0] = (uint8_t)(n >> 24);
	prefix[1] = (uint8_t)(n >> 16);
	prefix[2] = (uint8_t)(n >> 8);
	prefix[3] = (uint8_t)n;
	raw_write(&r, prefix, sizeof(prefix));
	expect_fatal(&r, CPX__REASON__REASON_TOO_LARGE);
	raw_close(&r);

	raw_welcomed(&r, "si-ncp", "SI");
	ack.request_id = 1;
	env.body_case = CPX__ENVELOPE__BODY_ACK;
	env.ack = &ack;
	raw_send(&r, &env, NULL, 0);
	expect_fatal(&r, CPX__REASON__REASON_BAD_REQUEST);
	raw_close(&r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_broker_welcome_ping),
		cmocka_unit_test(test_broker_publish_deliver),
		cmocka_unit_test(test_broker_fatal),
	};

	return cmocka_run_group_tests(tests, broker_setup, broker_teardown);
}
