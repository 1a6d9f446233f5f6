/*
 * fakebroker.c: see fakebroker.h. The thread owns the ZMQ_STREAM socket,
 * the TLS connection and the envelopes held until the handshake is done;
 * the test owns the struct and its end of the inproc pipe. Commands on
 * the pipe are one frame: 'S' and an encoded frame to send, 'C' and a
 * notify byte to close, 'Q' to quit. The thread answers with one frame
 * per envelope the client sent (its body, prefix stripped).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zmq.h>

#include "alert.h"
#include "cpx_limits.h"
#include "fakebroker.h"
#include "sign.h"
#include "testbroker.h"
#include "testpki.h"
#include "tlsconn.h"
#include "tlsctx.h"
#include "wire.h"

#define HELD_MAX	256

struct fakebroker {
	void		*zctx;
	void		*pipe;		/* test's end */
	void		*sock;		/* then owned by the thread */
	SSL_CTX		*ctx;
	pthread_t	 thread;
	int		 started;
	char		 endpoint[64];
	char		 pipe_name[64];
};

/* What the thread owns. */
struct fb_conn {
	void		*sock;
	void		*pipe;
	uint8_t		 rid[256];
	size_t		 rid_len;	/* 0: no connection */
	struct tlsconn	*tls;
	uint8_t		*held[HELD_MAX];
	size_t		 held_len[HELD_MAX];
	size_t		 nheld;
};

static void
conn_flush(struct fb_conn *k)
{
	const uint8_t *p;
	size_t len;

	if (k->tls == NULL || k->rid_len == 0)
		return;
	while (tlsconn_out_pending(k->tls) > 0) {
		tlsconn_out(k->tls, &p, &len);
		if (len == 0)
			return;
		/*
		 * Never block: a client that stopped reading (or is gone)
		 * would hold this thread, and the test joining it, for good.
		 * What cannot be sent now stays queued for the next flush.
		 */
		if (zmq_send(k->sock, k->rid, k->rid_len,
		    ZMQ_SNDMORE | ZMQ_DONTWAIT) == -1 ||
		    zmq_send(k->sock, p, len, ZMQ_DONTWAIT) == -1)
			return;
		tlsconn_consume(k->tls, len);
	}
}

/* Send what the test queued, once the session is open. */
static void
conn_send_held(struct fb_conn *k)
{
	size_t i;

	if (k->tls == NULL || tlsconn_state(k->tls) != TLSCONN_OPEN)
		return;
	for (i = 0; i < k->nheld; i++) {
		if (tlsconn_write(k->tls, k->held[i], k->held_len[i]) == -1)
			fprintf(stderr, "fakebroker: TLS write failed\n");
		free(k->held[i]);
		k->held[i] = NULL;
	}
	k->nheld = 0;
	conn_flush(k);
}

static void
conn_drop(struct fb_conn *k)
{
	tlsconn_free(&k->tls);
	k->rid_len = 0;
}

static void
conn_pong(struct fb_conn *k, const Cpx__Ping *ping)
{
	Cpx__Envelope env = CPX__ENVELOPE__INIT;
	Cpx__Pong pong = CPX__PONG__INIT;
	uint8_t *buf = NULL;
	size_t len = 0;

	pong.nonce = ping->nonce;
	env.body_case = CPX__ENVELOPE__BODY_PONG;
	env.pong = &pong;
	if (wire_encode(&env, &buf, &len) == 0 &&
	    tlsconn_write(k->tls, buf, len) == 0)
		conn_flush(k);
	free(buf);
}

static void
conn_data(struct fb_conn *k, const uint8_t *p, size_t len)
{
	Cpx__Envelope *env;
	const uint8_t *body;
	size_t blen;
	char why[256];
	int reason;

	if (tlsconn_feed(k->tls, p, len) == -1) {
		conn_flush(k);
		fprintf(stderr, "fakebroker: TLS: %s\n",
		    tlsconn_error(k->tls));
		return;
	}
	conn_flush(k);
	conn_send_held(k);
	while (tlsconn_next_frame(k->tls, &body, &blen) == 1) {
		if ((env = wire_decode(body, blen, &reason, why,
		    sizeof(why))) == NULL) {
			fprintf(stderr, "fakebroker: bad frame: %s\n", why);
			continue;
		}
		if (env->body_case == CPX__ENVELOPE__BODY_PING)
			conn_pong(k, env->ping);
		else
			(void)zmq_send(k->pipe, body, blen, 0);
		cpx__envelope__free_unpacked(env, NULL);
	}
}

static void
on_stream(struct fb_conn *k, SSL_CTX *ctx)
{
	zmq_msg_t rid, data;
	size_t rl;

	zmq_msg_init(&rid);
	zmq_msg_init(&data);
	if (zmq_msg_recv(&rid, k->sock, 0) == -1 ||
	    zmq_msg_recv(&data, k->sock, 0) == -1)
		goto done;
	rl = zmq_msg_size(&rid);
	if (rl == 0 || rl > sizeof(k->rid))
		goto done;
	if (zmq_msg_size(&data) == 0) {
		if (k->rid_len == rl && memcmp(k->rid, zmq_msg_data(&rid),
		    rl) == 0)
			conn_drop(k);	/* the client went away */
		else if (k->rid_len == 0) {
			memcpy(k->rid, zmq_msg_data(&rid), rl);
			k->rid_len = rl;
			k->tls = tlsconn_new(ctx, 1, CPX_MAX_FRAME);
		}
		goto done;
	}
	if (k->tls != NULL && k->rid_len == rl &&
	    memcmp(k->rid, zmq_msg_data(&rid), rl) == 0)
		conn_data(k, zmq_msg_data(&data), zmq_msg_size(&data));
done:
	zmq_msg_close(&rid);
	zmq_msg_close(&data);
}

/* A command from the test; 1 to quit. */
static int
on_pipe(struct fb_conn *k)
{
	zmq_msg_t m;
	const uint8_t *p;
	size_t len;
	int i, quit = 0;

	zmq_msg_init(&m);
	if (zmq_msg_recv(&m, k->pipe, 0) == -1 || zmq_msg_size(&m) == 0)
		goto done;
	p = zmq_msg_data(&m);
	len = zmq_msg_size(&m);
	switch (p[0]) {
	case 'S':
		if (k->nheld == HELD_MAX ||
		    (k->held[k->nheld] = malloc(len - 1)) == NULL) {
			fprintf(stderr, "fakebroker: too much held\n");
			break;
		}
		memcpy(k->held[k->nheld], p + 1, len - 1);
		k->held_len[k->nheld++] = len - 1;
		conn_send_held(k);
		break;
	case 'C':
		if (k->rid_len == 0)
			break;
		if (len > 1 && p[1] && k->tls != NULL) {
			tlsconn_shutdown(k->tls);
			conn_flush(k);
		}
		/*
		 * An empty frame closes that TCP connection. Never block on
		 * it (a peer whose pipe is full would hold this thread, and
		 * the test joining it, for good): retry for up to a second.
		 */
		for (i = 0; i < 100; i++) {
			if (zmq_send(k->sock, k->rid, k->rid_len,
			    ZMQ_SNDMORE | ZMQ_DONTWAIT) != -1) {
				(void)zmq_send(k->sock, "", 0, ZMQ_DONTWAIT);
				break;
			}
			if (errno != EAGAIN)
				break;
			usleep(10000);	/* the peer's pipe is full */
		}
		conn_drop(k);
		break;
	case 'Q':
	default:
		quit = 1;
		break;
	}
done:
	zmq_msg_close(&m);
	return quit;
}

static void *
fb_thread(void *arg)
{
	struct fakebroker *fb = arg;
	struct fb_conn k;
	zmq_pollitem_t items[2];
	size_t i;
	int linger = 0;

	memset(&k, 0, sizeof(k));
	/*
	 * fakebroker_new bound the socket (so the endpoint is known before
	 * the test connects) and does not touch it again: it is ours now.
	 */
	k.sock = fb->sock;
	/* What the test never read must not hold up zmq_ctx_term. */
	k.pipe = zmq_socket(fb->zctx, ZMQ_PAIR);
	if (k.pipe == NULL || zmq_setsockopt(k.pipe, ZMQ_LINGER, &linger,
	    sizeof(linger)) == -1 || zmq_connect(k.pipe, fb->pipe_name) == -1)
		goto done;
	for (;;) {
		memset(items, 0, sizeof(items));
		items[0].socket = k.pipe;
		items[0].events = ZMQ_POLLIN;
		items[1].socket = k.sock;
		items[1].events = ZMQ_POLLIN;
		if (zmq_poll(items, 2, -1) == -1) {
			if (errno == EINTR)
				continue;
			break;
		}
		if ((items[0].revents & ZMQ_POLLIN) && on_pipe(&k))
			break;
		if (items[1].revents & ZMQ_POLLIN)
			on_stream(&k, fb->ctx);
	}
done:
	conn_drop(&k);
	for (i = 0; i < k.nheld; i++)
		free(k.held[i]);
	if (k.sock != NULL)
		zmq_close(k.sock);
	if (k.pipe != NULL)
		zmq_close(k.pipe);
	return NULL;
}

struct fakebroker *
fakebroker_new(char *err, size_t errlen)
{
	struct fakebroker *fb = NULL;
	struct tls_files files;
	char ca[512], cert[512], key[512], crl[512];
	size_t len;
	int linger = 0;

	if (testpki_path(ca, sizeof(ca), "ca.pem") == -1 ||
	    testpki_path(cert, sizeof(cert), "broker.pem") == -1 ||
	    testpki_path(key, sizeof(key), "broker.key") == -1 ||
	    testpki_path(crl, sizeof(crl), "crl.pem") == -1) {
		snprintf(err, errlen, "no test PKI");
		return NULL;
	}
	if ((fb = calloc(1, sizeof(*fb))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	files.ca = ca;
	files.cert = cert;
	files.key = key;
	files.crl = crl;
	if ((fb->ctx = tlsctx_new(&files, 1, err, errlen)) == NULL)
		goto fail;
	snprintf(fb->pipe_name, sizeof(fb->pipe_name), "inproc://fb-%p",
	    (void *)fb);
	if ((fb->zctx = zmq_ctx_new()) == NULL ||
	    (fb->pipe = zmq_socket(fb->zctx, ZMQ_PAIR)) == NULL ||
	    zmq_setsockopt(fb->pipe, ZMQ_LINGER, &linger,
	    sizeof(linger)) == -1 ||
	    zmq_bind(fb->pipe, fb->pipe_name) == -1) {
		snprintf(err, errlen, "zmq: %s", zmq_strerror(errno));
		goto fail;
	}
	if ((fb->sock = zmq_socket(fb->zctx, ZMQ_STREAM)) == NULL ||
	    zmq_setsockopt(fb->sock, ZMQ_LINGER, &linger,
	    sizeof(linger)) == -1 ||
	    zmq_bind(fb->sock, "tcp://127.0.0.1:*") == -1) {
		snprintf(err, errlen, "zmq bind: %s", zmq_strerror(errno));
		goto fail;
	}
	len = sizeof(fb->endpoint);
	if (zmq_getsockopt(fb->sock, ZMQ_LAST_ENDPOINT, fb->endpoint,
	    &len) == -1) {
		snprintf(err, errlen, "zmq: %s", zmq_strerror(errno));
		goto fail;
	}
	/* pthread_create is the barrier that hands the socket over. */
	if (pthread_create(&fb->thread, NULL, fb_thread, fb) != 0) {
		snprintf(err, errlen, "pthread_create failed");
		goto fail;
	}
	fb->started = 1;
	return fb;
fail:
	fakebroker_free(&fb);
	return NULL;
}

void
fakebroker_free(struct fakebroker **fbp)
{
	struct fakebroker *fb;

	if (fbp == NULL || (fb = *fbp) == NULL)
		return;
	if (fb->started) {
		(void)zmq_send(fb->pipe, "Q", 1, 0);
		/* The thread closes the socket. */
		pthread_join(fb->thread, NULL);
	} else if (fb->sock != NULL)
		zmq_close(fb->sock);
	if (fb->pipe != NULL)
		zmq_close(fb->pipe);
	if (fb->zctx != NULL)
		zmq_ctx_term(fb->zctx);
	SSL_CTX_free(fb->ctx);
	free(fb);
	*fbp = NULL;
}

const char *
fakebroker_endpoint(const struct fakebroker *fb)
{
	return fb->endpoint;
}

int
fakebroker_send(struct fakebroker *fb, const Cpx__Envelope *env)
{
	uint8_t *frame = NULL, *msg = NULL;
	size_t len = 0;
	int rc = -1;

	if (wire_encode(env, &frame, &len) == -1 ||
	    (msg = malloc(len + 1)) == NULL)
		goto done;
	msg[0] = 'S';
	memcpy(msg + 1, frame, len);
	if (zmq_send(fb->pipe, msg, len + 1, 0) == (int)(len + 1))
		rc = 0;
done:
	free(msg);
	free(frame);
	return rc;
}

int
fakebroker_close(struct fakebroker *fb, int notify)
{
	uint8_t msg[2] = { 'C', notify ? 1 : 0 };

	return zmq_send(fb->pipe, msg, sizeof(msg), 0) == 2 ? 0 : -1;
}

Cpx__Envelope *
fakebroker_recv(struct fakebroker *fb, int body_case, int timeout_ms)
{
	zmq_pollitem_t it;
	zmq_msg_t m;
	Cpx__Envelope *env;
	int64_t until = testutil_now_ms() + timeout_ms, left;
	char why[256];
	int reason;

	for (;;) {
		if ((left = until - testutil_now_ms()) < 0)
			return NULL;
		memset(&it, 0, sizeof(it));
		it.socket = fb->pipe;
		it.events = ZMQ_POLLIN;
		if (zmq_poll(&it, 1, (long)left) <= 0)
			continue;
		zmq_msg_init(&m);
		if (zmq_msg_recv(&m, fb->pipe, 0) == -1) {
			zmq_msg_close(&m);
			continue;
		}
		env = wire_decode(zmq_msg_data(&m), zmq_msg_size(&m), &reason,
		    why, sizeof(why));
		zmq_msg_close(&m);
		if (env == NULL)
			continue;
		if (body_case == 0 || (int)env->body_case == body_case)
			return env;
		cpx__envelope__free_unpacked(env, NULL);
	}
}

void
fakebroker_welcome(Cpx__Envelope *env, Cpx__Welcome *w, uint64_t last_seq)
{
	static const Cpx__Envelope einit = CPX__ENVELOPE__INIT;
	static const Cpx__Welcome winit = CPX__WELCOME__INIT;

	*env = einit;
	*w = winit;
	w->broker_name = "cpx-broker";
	w->country = "HR";
	w->node = "hr-ncp";
	w->may_publish = 1;
	w->may_subscribe = 1;
	w->last_seq = last_seq;
	w->max_frame = CPX_MAX_FRAME;
	env->body_case = CPX__ENVELOPE__BODY_WELCOME;
	env->welcome = w;
}

void
fakebroker_delivery(Cpx__Envelope *env, Cpx__Delivery *d, uint64_t seq,
    Cpx__SignedAlert *sa, int replayed, uint64_t request_id)
{
	static const Cpx__Envelope einit = CPX__ENVELOPE__INIT;
	static const Cpx__Delivery dinit = CPX__DELIVERY__INIT;

	*env = einit;
	*d = dinit;
	d->seq = seq;
	d->accepted_at = alert_now_ms();
	d->alert = sa;
	d->replayed = replayed;
	d->request_id = request_id;
	env->body_case = CPX__ENVELOPE__BODY_DELIVERY;
	env->delivery = d;
}

int
fakebroker_sign(const char *rel, const char *origin, const char *id,
    int64_t issued_at, Cpx__SignedAlert *sa)
{
	Cpx__Alert a = CPX__ALERT__INIT;
	char kp[512], cp[512], name[128], err[256];
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	uint8_t buf[2048];
	size_t len;
	int rc = -1;

	snprintf(name, sizeof(name), "%s.key", rel);
	if (testpki_path(kp, sizeof(kp), name) == -1)
		goto done;
	snprintf(name, sizeof(name), "%s.pem", rel);
	if (testpki_path(cp, sizeof(cp), name) == -1)
		goto done;
	if ((key = tlsctx_load_key(kp, err, sizeof(err))) == NULL ||
	    (cert = tlsctx_load_cert(cp, err, sizeof(err))) == NULL) {
		fprintf(stderr, "fakebroker: %s\n", err);
		goto done;
	}
	a.id = (char *)id;
	a.origin = (char *)origin;
	a.issued_at = issued_at;
	a.category = CPX__CATEGORY__CATEGORY_VEHICLE;
	a.severity = CPX__SEVERITY__SEVERITY_HIGH;
	a.handling = CPX__HANDLING__HANDLING_NETWORK;
	a.summary = "white van, plates LJ 123-AB";
	if ((len = cpx__alert__get_packed_size(&a)) > sizeof(buf))
		goto done;
	cpx__alert__pack(&a, buf);
	rc = sign_alert(key, cert, buf, len, sa);
done:
	EVP_PKEY_free(key);
	X509_free(cert);
	return rc;
}
