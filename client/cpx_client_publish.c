/*
 * cpx_client_publish.c: publishing. Owns signing an alert with the
 * node's key, the publishes not yet acknowledged (kept as encoded
 * frames, resent after a reconnect by client_resend_state) and
 * cpx_publish's wait for its Ack.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "alert.h"
#include "cpx_client.h"
#include "cpx_client_impl.h"
#include "cpx_limits.h"
#include "sign.h"
#include "wire.h"

void
client_inflight_done(struct cpx_client *c, uint64_t request_id)
{
	size_t i;

	for (i = 0; i < c->ninflight; i++) {
		if (c->inflight[i].request_id != request_id)
			continue;
		OPENSSL_clear_free(c->inflight[i].frame, c->inflight[i].len);
		c->inflight[i] = c->inflight[--c->ninflight];
		return;
	}
}

static void
make_uuid(char out[37])
{
	uint8_t u[16];

	if (RAND_bytes(u, sizeof(u)) != 1)
		abort();	/* no randomness: an invariant is broken */
	u[6] = (u[6] & 0x0f) | 0x40;
	u[8] = (u[8] & 0x3f) | 0x80;
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
	    "%02x%02x%02x%02x%02x%02x", u[0], u[1], u[2], u[3], u[4], u[5],
	    u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
}

/* Queue a signed alert as a Publish, kept until its ACK or ERROR. */
static int
send_signed(struct cpx_client *c, Cpx__SignedAlert *sa, const char *alert_id,
    uint64_t *request_id, char *err, size_t errlen)
{
	Cpx__Envelope env = CPX__ENVELOPE__INIT;
	Cpx__Publish pub = CPX__PUBLISH__INIT;
	struct inflight *in, *grown;
	uint8_t *frame = NULL;
	size_t flen = 0, cap;

	pub.request_id = c->next_request++;
	pub.alert = sa;
	env.body_case = CPX__ENVELOPE__BODY_PUBLISH;
	env.publish = &pub;
	if (wire_encode(&env, &frame, &flen) == -1) {
		snprintf(err, errlen, "alert too large to send");
		return -1;
	}
	if (c->ninflight == c->inflight_cap) {
		cap = c->inflight_cap ? c->inflight_cap * 2 : 64;
		if ((grown = reallocarray(c->inflight, cap,
		    sizeof(*grown))) == NULL) {
			snprintf(err, errlen, "out of memory");
			free(frame);
			return -1;
		}
		c->inflight = grown;
		c->inflight_cap = cap;
	}
	in = &c->inflight[c->ninflight++];
	in->request_id = pub.request_id;
	in->frame = frame;
	in->len = flen;
	snprintf(in->alert_id, sizeof(in->alert_id), "%s", alert_id);
	if (client_send_frame(c, in->frame, in->len) == -1) {
		snprintf(err, errlen, "TLS write failed");
		c->ninflight--;
		OPENSSL_clear_free(in->frame, in->len);
		return -1;
	}
	*request_id = pub.request_id;
	return 0;
}

int
cpx_publish_signed(struct cpx_client *c, Cpx__SignedAlert *sa,
    uint64_t *request_id, char *err, size_t errlen)
{
	*request_id = 0;
	return send_signed(c, sa, "", request_id, err, errlen);
}

int
cpx_publish_send(struct cpx_client *c, Cpx__Alert *a, uint64_t *request_id,
    char *err, size_t errlen)
{
	Cpx__SignedAlert sa = CPX__SIGNED_ALERT__INIT;
	uint8_t *bytes = NULL;
	size_t len;
	char why[128];
	int rc = -1;

	*request_id = 0;
	if (a->id == NULL || a->id[0] == '\0') {
		make_uuid(c->id_buf);
		a->id = c->id_buf;
	}
	if (a->origin == NULL || a->origin[0] == '\0') {
		memcpy(c->origin_buf, c->self.country, 3);
		a->origin = c->origin_buf;
	}
	if (a->issued_at == 0)
		a->issued_at = alert_now_ms();
	len = cpx__alert__get_packed_size(a);
	if (len > CPX_MAX_ALERT) {
		snprintf(err, errlen, "alert is %zu bytes, over the limit of "
		    "%u", len, CPX_MAX_ALERT);
		return -1;
	}
	if ((bytes = malloc(len ? len : 1)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	cpx__alert__pack(a, bytes);
	if (c->signer == NULL &&
	    (c->signer = sign_key_new(c->key, c->cert, why,
	    sizeof(why))) == NULL) {
		snprintf(err, errlen, "cannot sign the alert with this node's "
		    "key: %s", why);
		goto done;
	}
	if (sign_key_alert(c->signer, bytes, len, &sa) == -1) {
		snprintf(err, errlen, "cannot sign the alert with this node's "
		    "key");
		goto done;
	}
	rc = send_signed(c, &sa, a->id, request_id, err, errlen);
done:
	sign_signed_alert_clear(&sa);
	free(bytes);
	return rc;
}

size_t
cpx_publish_inflight(const struct cpx_client *c)
{
	return c->ninflight;
}

struct wait_ctx {
	struct cpx_client	*c;
	uint64_t		 request_id;
	int			 done;
	struct cpx_result	*res;
	cpx_event_cb		*cb;
	void			*arg;
};

static void
wait_cb(const struct cpx_event *ev, void *arg)
{
	struct wait_ctx *w = arg;

	if (ev->request_id == w->request_id && (ev->kind == CPX_EV_ACK ||
	    (ev->kind == CPX_EV_ERROR && ev->request_id != 0))) {
		w->done = 1;
		w->c->wake = 1;	/* cpx_client_run returns at once */
		w->res->seq = ev->seq;
		w->res->duplicate = ev->duplicate;
		w->res->reason = ev->kind == CPX_EV_ERROR ? ev->reason : 0;
		snprintf(w->res->text, sizeof(w->res->text), "%s",
		    ev->text ? ev->text : "");
		return;
	}
	if (w->cb != NULL)
		w->cb(ev, w->arg);
}

int
cpx_publish(struct cpx_client *c, Cpx__Alert *a, int timeout_ms,
    struct cpx_result *res)
{
	struct wait_ctx w;
	int64_t until = client_now_ms() + timeout_ms, left;
	int rc = 0;

	memset(res, 0, sizeof(*res));
	memset(&w, 0, sizeof(w));
	w.c = c;
	w.res = res;
	w.cb = c->cb;
	w.arg = c->cb_arg;
	if (cpx_publish_send(c, a, &w.request_id, res->text,
	    sizeof(res->text)) == -1) {
		res->reason = CPX__REASON__REASON_INTERNAL;
		return -1;
	}
	c->cb = wait_cb;
	c->cb_arg = &w;
	while (!w.done && rc != -1 && (left = until - client_now_ms()) > 0)
		rc = cpx_client_run(c, (int)left);
	c->cb = w.cb;
	c->cb_arg = w.arg;
	if (!w.done) {
		/* The session's own end (a fatal Error) says why. */
		res->reason = rc == -1 && c->fatal_reason != 0 ?
		    c->fatal_reason : CPX__REASON__REASON_INTERNAL;
		snprintf(res->text, sizeof(res->text), "%s", rc == -1 ?
		    c->error : "no acknowledgement from the broker in time");
		return -1;
	}
	return res->reason == 0 ? 0 : -1;
}
