/*
 * cpx_client.c: the client library's object (see cpx_client.h): making
 * and freeing a struct cpx_client, what it owns for its whole life (the
 * node's key and certificate, one TLS context per broker endpoint, each
 * checking its own broker's name and pin, the trust store used to verify
 * deliveries, the ZeroMQ context and the verification pool), its getters,
 * and the calls the witness makes (witness_int.h). The rest of the
 * library is split by concern, all sharing cpx_client_impl.h:
 * cpx_client_conn.c (the socket and cpx_client_connect),
 * cpx_client_failover.c (losing a session, moving to the next endpoint),
 * cpx_client_run.c (the event loop, TLS bytes, keepalive),
 * cpx_client_recv.c (what the broker sends: verification queue, events),
 * cpx_client_sub.c (subscription, resume and replay) and
 * cpx_client_publish.c (publishes in flight until their Ack).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <zmq.h>

#include "clock.h"
#include "cpx_client.h"
#include "cpx_client_impl.h"
#include "endpoints.h"
#include "sign.h"
#include "tlsconn.h"
#include "tlsctx.h"
#include "witness_int.h"
#include "workpool.h"

int64_t
client_now_ms(void)
{
	return clock_mono_ms();
}

/*
 * The TLS context of endpoint i: any certificate of the network CA
 * chains, so only the name (and the pin, if any) tells this endpoint's
 * broker from another holder of one. Returns 0, or -1 with err[].
 */
static int
endpoint_ctx(struct cpx_client *c, size_t i,
    const struct cpx_client_config *cfg, char *err, size_t errlen)
{
	/* The CRL also checks the broker's certificate, not only alerts. */
	struct tls_files files = { cfg->ca, cfg->cert, cfg->key, cfg->crl };
	char name[256], pin[128], why[300];

	if ((c->ctxs[i] = tlsctx_new(&files, 0, err, errlen)) == NULL)
		return -1;
	if (cfg->broker_name != NULL) {
		if (endpoints_item(cfg->broker_name, i, c->ep.n, "broker name",
		    name, sizeof(name), err, errlen) == -1)
			return -1;
	} else if (tlsctx_endpoint_host(c->ep.eps[i], name, sizeof(name)) == -1) {
		snprintf(err, errlen, "%s: no host in the broker endpoint to "
		    "check its certificate against; give the broker name",
		    c->ep.eps[i]);
		return -1;
	}
	if (cfg->broker_pin != NULL && endpoints_item(cfg->broker_pin, i,
	    c->ep.n, "broker pin", pin, sizeof(pin), err, errlen) == -1)
		return -1;
	if (tlsctx_expect_broker(c->ctxs[i], name, cfg->broker_pin != NULL ?
	    pin : NULL, why, sizeof(why)) == -1) {
		if (c->ep.n > 1)
			snprintf(err, errlen, "%s: %s", c->ep.eps[i], why);
		else
			snprintf(err, errlen, "%s", why);
		return -1;
	}
	return 0;
}

struct cpx_client *
cpx_client_new(const struct cpx_client_config *cfg, char *err, size_t errlen)
{
	struct cpx_client *c = NULL;
	char why[160];
	size_t i;

	if (cfg->endpoint == NULL || cfg->ca == NULL || cfg->cert == NULL ||
	    cfg->key == NULL) {
		snprintf(err, errlen, "endpoint, CA, certificate and key are "
		    "all required");
		return NULL;
	}
	/*
	 * Without the CRL a revoked node's signature still verifies: a
	 * stolen key could speak for its country. Only an explicit choice
	 * runs without one.
	 */
	if (cfg->crl == NULL && !cfg->no_crl) {
		snprintf(err, errlen, "no CRL given: without the network's "
		    "CRL an alert signed by a revoked node would be shown as "
		    "verified; give the CRL file, or choose no_crl to run "
		    "without one");
		return NULL;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (endpoints_parse(&c->ep, cfg->endpoint, err, errlen) == -1)
		goto fail;
	c->endpoint = c->ep.eps[0];
	c->reconnect = cfg->reconnect;
	c->ping_cfg_ms = cfg->ping_ms;
	c->next_request = 1;
	if ((c->key = tlsctx_load_key(cfg->key, err, errlen)) == NULL ||
	    (c->cert = tlsctx_load_cert(cfg->cert, err, errlen)) == NULL)
		goto fail;
	if (identity_from_cert(c->cert, &c->self, why, sizeof(why)) == -1) {
		snprintf(err, errlen, "%s: not a node certificate: %s",
		    cfg->cert, why);
		goto fail;
	}
	for (i = 0; i < c->ep.n; i++)
		if (endpoint_ctx(c, i, cfg, err, errlen) == -1)
			goto fail;
	c->ctx = c->ctxs[0];
	if ((c->trust = trust_new(cfg->ca, cfg->crl, err, errlen)) == NULL)
		goto fail;
	if ((c->zctx = zmq_ctx_new()) == NULL) {
		snprintf(err, errlen, "zmq_ctx_new: %s", zmq_strerror(errno));
		goto fail;
	}
	if (cfg->verify_threads > 0) {
		if ((c->ca = strdup(cfg->ca)) == NULL ||
		    (cfg->crl != NULL && (c->crl = strdup(cfg->crl)) == NULL) ||
		    (c->q = calloc(QUEUE_MAX, sizeof(*c->q))) == NULL) {
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
		c->pool_ops.init = client_pool_init;
		c->pool_ops.run = client_pool_run;
		c->pool_ops.fini = client_pool_fini;
		if ((c->pool = workpool_new(c->zctx, cfg->verify_threads,
		    &c->pool_ops, c, err, errlen)) == NULL)
			goto fail;
	}
	return c;
fail:
	cpx_client_free(&c);
	return NULL;
}

void
client_drop_connection(struct cpx_client *c)
{
	tlsconn_free(&c->tls);
	c->rid_len = 0;
	/* Replays and catch-ups die with the connection that asked. */
	memset(c->replays, 0, sizeof(c->replays));
	c->catchup_rid = 0;
	c->catchup_to = 0;
	if (c->welcome != NULL) {
		cpx__envelope__free_unpacked(c->welcome, NULL);
		c->welcome = NULL;
	}
}

void
cpx_client_free(struct cpx_client **cp)
{
	struct cpx_client *c;
	size_t i;

	if (cp == NULL || (c = *cp) == NULL)
		return;
	if (c->tls != NULL && tlsconn_state(c->tls) == TLSCONN_OPEN &&
	    c->sock != NULL && c->rid_len > 0) {
		const uint8_t *p;
		size_t len;

		tlsconn_shutdown(c->tls);
		tlsconn_out(c->tls, &p, &len);
		if (len > 0 && zmq_send(c->sock, c->rid, c->rid_len,
		    ZMQ_SNDMORE | ZMQ_DONTWAIT) == (int)c->rid_len)
			(void)zmq_send(c->sock, p, len, ZMQ_DONTWAIT);
	}
	client_drop_connection(c);
	/* Every job is also in the queue, which frees it below. */
	workpool_free(&c->pool, NULL);
	while (c->q != NULL && c->qlen > 0) {
		client_queued_free(&c->q[c->qhead]);
		c->qhead = (c->qhead + 1) % QUEUE_MAX;
		c->qlen--;
	}
	free(c->q);
	free(c->ca);
	free(c->crl);
	for (i = 0; i < c->ninflight; i++)
		OPENSSL_clear_free(c->inflight[i].frame, c->inflight[i].len);
	free(c->inflight);
	free(c->sub);
	client_monitor_stop(c);
	if (c->wit_reply != NULL)
		cpx__envelope__free_unpacked(c->wit_reply, NULL);
	if (c->sock != NULL)
		zmq_close(c->sock);
	if (c->zctx != NULL)
		zmq_ctx_term(c->zctx);
	trust_free(&c->trust);
	for (i = 0; i < c->ep.n; i++)
		SSL_CTX_free(c->ctxs[i]);
	sign_key_free(&c->signer);
	EVP_PKEY_free(c->key);
	X509_free(c->cert);
	endpoints_clear(&c->ep);
	free(c);
	*cp = NULL;
}

void
cpx_client_stop(struct cpx_client *c)
{
	c->stopped = 1;
}

int
cpx_client_refused(const struct cpx_client *c)
{
	return c->refused;
}

const char *
cpx_client_endpoint(const struct cpx_client *c)
{
	return c->endpoint;
}

const char *
cpx_client_error(const struct cpx_client *c)
{
	return c->error[0] ? c->error : "no error";
}

int
cpx_client_error_reason(const struct cpx_client *c)
{
	return c->fatal_reason;
}

const struct identity *
cpx_client_identity(const struct cpx_client *c)
{
	return &c->self;
}

const Cpx__Welcome *
cpx_client_welcome(const struct cpx_client *c)
{
	return c->welcome ? c->welcome->welcome : NULL;
}

void
cpx_client_on_event(struct cpx_client *c, cpx_event_cb *cb, void *arg)
{
	c->cb = cb;
	c->cb_arg = arg;
}

/* --- for the witness (client/witness.c, witness_int.h) ------------------ */

int
client_witness_call(struct cpx_client *c, Cpx__Envelope *req,
    uint64_t *request_id, int timeout_ms, Cpx__Envelope **reply, char *err,
    size_t errlen)
{
	cpx_event_cb *cb = c->cb;
	void *arg = c->cb_arg;
	int64_t until = client_now_ms() + timeout_ms, left;
	int rc = 0;

	*reply = NULL;
	if (c->welcome == NULL || c->tls == NULL) {
		snprintf(err, errlen, "not connected to the broker");
		return -1;
	}
	*request_id = c->next_request++;
	switch (req->body_case) {
	case CPX__ENVELOPE__BODY_WITNESS_REQUEST:
		req->witness_request->request_id = *request_id;
		break;
	case CPX__ENVELOPE__BODY_COSIGN:
		req->cosign->request_id = *request_id;
		break;
	case CPX__ENVELOPE__BODY_WITNESS_ALARM:
		req->witness_alarm->request_id = *request_id;
		break;
	default:
		snprintf(err, errlen, "not a witness request");
		return -1;
	}
	c->wit_rid = *request_id;
	if (client_send_env(c, req) == -1) {
		c->wit_rid = 0;
		snprintf(err, errlen, "cannot send to the broker");
		return -1;
	}
	while (c->wit_reply == NULL && rc != -1 &&
	    (left = until - client_now_ms()) > 0)
		rc = cpx_client_run(c, (int)left);
	c->cb = cb;
	c->cb_arg = arg;
	c->wit_rid = 0;
	if (c->wit_reply == NULL) {
		snprintf(err, errlen, "%s", rc == -1 ? c->error :
		    "no answer from the broker in time");
		return -1;
	}
	*reply = c->wit_reply;
	c->wit_reply = NULL;
	return 0;
}

int
client_witness_sign(struct cpx_client *c, const uint8_t *msg, size_t len,
    uint8_t **sig, size_t *siglen)
{
	return sign_bytes(c->key, c->cert, msg, len, sig, siglen);
}

struct trust *
client_witness_trust(struct cpx_client *c)
{
	return c->trust;
}

const uint8_t *
client_witness_broker_cert(const struct cpx_client *c, size_t *len)
{
	*len = 0;
	return c->tls != NULL ? tlsconn_peer_cert_der(c->tls, len) : NULL;
}

