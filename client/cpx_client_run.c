/*
 * cpx_client_run.c: the event loop. Owns cpx_client_run (polling the
 * broker socket and the verification pool), the TLS connection's bytes in
 * and out (a new TCP connection starts a handshake; decrypted frames are
 * decoded and dispatched), telling who refused whom when TLS fails before
 * the Welcome, sending frames, and the keepalive.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <zmq.h>

#include "cpx_client.h"
#include "cpx_client_impl.h"
#include "cpx_limits.h"
#include "log.h"
#include "streamio.h"
#include "tlsconn.h"
#include "trace.h"
#include "wire.h"
#include "workpool.h"

#define DEFAULT_PING_MS		30000

void
client_emit(struct cpx_client *c, struct cpx_event *ev)
{
	if (c->cb != NULL)
		c->cb(ev, c->cb_arg);
}

/*
 * Push queued ciphertext to ZeroMQ; what it does not take stays queued.
 * A broker that is gone shows up as a disconnect notification, which
 * on_message handles, so a failed send needs nothing more here.
 */
static void
flush(struct cpx_client *c)
{
	if (c->tls != NULL && c->rid_len > 0 &&
	    stream_flush(c->sock, c->rid, c->rid_len, c->tls, 65536) == -1)
		log_debug("broker connection not writable; its disconnect "
		    "follows");
}

int
client_send_frame(struct cpx_client *c, const uint8_t *buf, size_t len)
{
	if (c->tls == NULL || c->welcome == NULL)
		return 0;	/* kept by the caller, sent once welcomed */
	if (tlsconn_write(c->tls, buf, len) == -1)
		return -1;
	flush(c);
	return 0;
}

int
client_send_env(struct cpx_client *c, const Cpx__Envelope *env)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc;

	if (wire_encode(env, &buf, &len) == -1)
		return -1;
	rc = client_send_frame(c, buf, len);
	OPENSSL_clear_free(buf, len);
	return rc;
}

/*
 * Say in plain words who refused whom before the Welcome: our own check
 * of the broker's certificate (its text already begins "the broker's" or
 * names our CRL), or the broker's TLS alert about ours, whose OpenSSL
 * name ("sslv3 alert certificate revoked") is kept in brackets. Returns
 * 1 if this node refused this broker's certificate, else 0.
 */
static int
refusal_words(const char *tls, char *out, size_t len)
{
	static const struct {
		const char	*alert;
		const char	*words;
	} alerts[] = {
		{ "certificate revoked", "this node's certificate has been "
		    "revoked" },
		{ "certificate expired", "this node's certificate has "
		    "expired" },
		{ "unknown ca", "this node's certificate is not from the "
		    "network's CA" },
		{ "certificate required", "this node sent no certificate" },
		{ "bad certificate", "this node's certificate was not "
		    "accepted" },
		{ "unsupported certificate", "this node's certificate is not "
		    "a node certificate" },
	};
	size_t i;

	if (strstr(tls, "the broker's") != NULL ||
	    strstr(tls, "our CRL") != NULL) {
		snprintf(out, len, "this node refuses the broker: %s", tls);
		/* Our CRL is at fault for every broker, not this one. */
		return strstr(tls, "the broker's") != NULL;
	}
	for (i = 0; i < sizeof(alerts) / sizeof(alerts[0]); i++)
		if (strstr(tls, alerts[i].alert) != NULL) {
			snprintf(out, len, "the broker refused this node: %s "
			    "(%s)", alerts[i].words, tls);
			return 0;
		}
	snprintf(out, len, "the broker refused this node: %s", tls);
	return 0;
}

#ifdef CPX_TRACE
/* The broker's stamps of an Ack or live Delivery, and when it came. */
static void
trace_note(struct cpx_client *c, const Cpx__Envelope *env)
{
	c->trace_ns = NULL;
	c->n_trace_ns = 0;
	c->trace_rx_ns = trace_now();
	if (env->body_case == CPX__ENVELOPE__BODY_DELIVERY) {
		c->trace_ns = env->delivery->trace_ns;
		c->n_trace_ns = env->delivery->n_trace_ns;
	} else if (env->body_case == CPX__ENVELOPE__BODY_ACK) {
		c->trace_ns = env->ack->trace_ns;
		c->n_trace_ns = env->ack->n_trace_ns;
	}
}

const uint64_t *
cpx_client_trace(const struct cpx_client *c, size_t *n, uint64_t *rx_ns)
{
	*n = c->n_trace_ns;
	*rx_ns = c->trace_rx_ns;
	return c->trace_ns;
}
#endif

static void
on_data(struct cpx_client *c, const uint8_t *p, size_t len)
{
	Cpx__Envelope *env;
	const uint8_t *body;
	size_t blen;
	char why[320];
	int r, reason, failed, final;

	c->last_rx_ms = client_now_ms();
	/*
	 * Frames decrypted before a TLS failure or close are still taken:
	 * the last one may be the broker's Error saying why it ends.
	 */
	failed = tlsconn_feed(c->tls, p, len) == -1;
	flush(c);
	while (c->tls != NULL &&
	    (r = tlsconn_next_frame(c->tls, &body, &blen)) != 0) {
		if (r == -1) {
			client_lost(c, tlsconn_error(c->tls), 0);
			return;
		}
		if ((env = wire_decode(body, blen, &reason, why,
		    sizeof(why))) == NULL) {
			char msg[400];

			snprintf(msg, sizeof(msg), "bad frame from broker: %s",
			    why);
			client_lost(c, msg, 0);
			return;
		}
#ifdef CPX_TRACE
		trace_note(c, env);
#endif
		client_dispatch(c, &env);
#ifdef CPX_TRACE
		c->trace_ns = NULL;
		c->n_trace_ns = 0;
#endif
		if (env != NULL)
			cpx__envelope__free_unpacked(env, NULL);
	}
	client_drain_queue(c);
	if (c->tls == NULL)
		return;		/* a fatal Error ended the connection */
	if (failed) {
		/*
		 * Before the Welcome, a TLS alert is the broker refusing our
		 * certificate (TLS 1.3: our handshake "succeeded" before it
		 * judged us), or our own check refusing the broker's. Both
		 * are final, not a reason to retry; but of several endpoints
		 * a broker we refused is only dropped (client_refuse_endpoint).
		 */
		final = c->welcome == NULL;
		if (c->welcome != NULL)
			snprintf(why, sizeof(why), "TLS session failed: %s",
			    tlsconn_error(c->tls));
		else if (refusal_words(tlsconn_error(c->tls), why,
		    sizeof(why)) && c->ep.n > 1)
			final = client_refuse_endpoint(c, why, sizeof(why));
		client_lost(c, why, final);
	} else if (tlsconn_state(c->tls) == TLSCONN_CLOSED)
		client_lost(c, "broker closed the connection", 0);
}

static void
on_message(struct cpx_client *c, zmq_msg_t *rid, zmq_msg_t *data)
{
	size_t rl = zmq_msg_size(rid);

	if (rl == 0 || rl > RID_MAX)
		return;
	if (zmq_msg_size(data) == 0) {
		if (c->rid_len == rl && memcmp(c->rid, zmq_msg_data(rid),
		    rl) == 0) {
			client_lost(c, c->welcome ? "connection to the broker "
			    "lost" : "broker closed the connection during the "
			    "TLS handshake", 0);
			return;
		}
		if (c->rid_len > 0 || c->dead)
			return;
		/* A new TCP connection: start a fresh handshake. */
		memcpy(c->rid, zmq_msg_data(rid), rl);
		c->rid_len = rl;
		c->tls = tlsconn_new(c->ctx, 0, CPX_MAX_FRAME_PREAUTH);
		if (c->tls == NULL || tlsconn_start(c->tls) == -1) {
			client_lost(c, "cannot start TLS", 0);
			c->dead = 1;
			return;
		}
		c->last_rx_ms = client_now_ms();
		flush(c);
		return;
	}
	if (c->rid_len != rl || memcmp(c->rid, zmq_msg_data(rid), rl) != 0 ||
	    c->tls == NULL)
		return;
	on_data(c, zmq_msg_data(data), zmq_msg_size(data));
}

static void
keepalive(struct cpx_client *c)
{
	Cpx__Envelope env = CPX__ENVELOPE__INIT;
	Cpx__Ping ping = CPX__PING__INIT;
	int64_t now = client_now_ms(), ping_ms;

	if (c->welcome == NULL)
		return;
	ping_ms = c->ping_cfg_ms > 0 ? c->ping_cfg_ms :
	    c->welcome->welcome->ping_interval > 0 ?
	    (int64_t)c->welcome->welcome->ping_interval * 1000 :
	    DEFAULT_PING_MS;
	if (now - c->last_rx_ms > 3 * ping_ms) {
		client_lost(c, "broker silent for three keepalive periods", 0);
		return;
	}
	if (now - c->last_ping_ms >= ping_ms) {
		c->last_ping_ms = now;
		ping.nonce = (uint64_t)now;
		env.body_case = CPX__ENVELOPE__BODY_PING;
		env.ping = &ping;
		(void)client_send_env(c, &env);
	}
}

int
cpx_client_run(struct cpx_client *c, int timeout_ms)
{
	zmq_pollitem_t items[2];
	zmq_msg_t rid, data;
	int64_t until = client_now_ms() + timeout_ms, left;
	int i, nitems = 1;

	c->stopped = 0;
	c->wake = 0;
	for (;;) {
		if (c->dead)
			return -1;
		if (c->stopped)
			return 1;
		if (c->wake)
			return 0;
		left = until - client_now_ms();
		if (left < 0)
			left = 0;
		if (left > 1000)
			left = 1000;	/* keepalive granularity */
		memset(items, 0, sizeof(items));
		items[0].socket = c->sock;
		/* A full queue reads no more until the pool catches up. */
		items[0].events = c->qlen < QUEUE_MAX / 2 ? ZMQ_POLLIN : 0;
		if (c->pool != NULL) {
			items[1].socket = workpool_socket(c->pool);
			items[1].events = ZMQ_POLLIN;
			nitems = 2;
		}
		if (c->tls != NULL && tlsconn_out_pending(c->tls) > 0 &&
		    left > 5)
			left = 5;
		if (zmq_poll(items, nitems, (long)left) == -1 &&
		    errno != EINTR) {
			snprintf(c->error, sizeof(c->error), "zmq_poll: %s",
			    zmq_strerror(errno));
			c->dead = 1;
			return -1;
		}
		client_take_verified(c);
		/*
		 * An internal wait (wake) returns as soon as what it awaits
		 * was handled, not at the end of a poll period.
		 */
		for (i = 0; i < 1024 && !c->dead && !c->wake &&
		    c->qlen < QUEUE_MAX / 2; i++) {
			zmq_msg_init(&rid);
			zmq_msg_init(&data);
			if (zmq_msg_recv(&rid, c->sock, ZMQ_DONTWAIT) == -1) {
				zmq_msg_close(&rid);
				zmq_msg_close(&data);
				break;
			}
			if (zmq_msg_more(&rid) &&
			    zmq_msg_recv(&data, c->sock, 0) != -1)
				on_message(c, &rid, &data);
			zmq_msg_close(&rid);
			zmq_msg_close(&data);
			if (c->stopped)
				break;
		}
		flush(c);
		keepalive(c);
		client_check_endpoint(c);
		if (client_now_ms() >= until || c->wake)
			return c->dead ? -1 : c->stopped ? 1 : 0;
	}
}
