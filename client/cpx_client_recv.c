/*
 * cpx_client_recv.c: what the broker sends, once decoded. Owns the end
 * to end verification of deliveries (against the network CA and CRL, on
 * the verification pool's threads or inline), the queue that hands
 * everything to the callback in arrival order, and turning each message
 * into an event (Welcome, Ack, Error, Subscribed, ReplayEnd, ...).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "alert.h"
#include "cpx_client.h"
#include "cpx_client_impl.h"
#include "cpx_limits.h"
#include "sign.h"
#include "tlsconn.h"
#include "workpool.h"

/*
 * End to end: trust the network CA, not the broker. Returns 1 with *a
 * (owned by the caller) and *signer if the delivery verifies, else 0 with
 * why[]. Runs on the caller's thread or a pool worker (own trust each).
 */
static int
verify_delivery(struct trust *t, const Cpx__Delivery *d, int history,
    Cpx__Alert **a, struct identity *signer, char *why, size_t whylen)
{
	int reason;

	*a = NULL;
	if (d->alert == NULL) {
		snprintf(why, whylen, "delivery without an alert");
		return 0;
	}
	/*
	 * history is our own decision (client_classify), never the broker's
	 * `replayed` flag: otherwise a broker could pass off an alert
	 * signed with an expired key as old history.
	 */
	if ((history ? sign_verify_alert_history : sign_verify_alert)(t,
	    d->alert, a, signer, &reason, why, whylen) == 0 &&
	    sign_verify_alert_origin(*a, signer, &reason, why, whylen) == 0 &&
	    alert_validate(*a, 0, 0, &reason, why, whylen) == 0)
		return 1;
	cpx__alert__free_unpacked(*a, NULL);
	*a = NULL;
	return 0;
}

/*
 * Hand a verified (or not) delivery to the callback. Only a verified,
 * plausible live delivery moves the resume point, and only forward: a
 * forged or absurd sequence number must not make us skip what follows.
 */
static void
emit_delivery(struct cpx_client *c, const Cpx__Delivery *d, Cpx__Alert *a,
    int verified, int plausible, const struct identity *signer,
    const char *why)
{
	struct cpx_event ev;
	char bad[200];

	if (verified && !plausible) {
		snprintf(bad, sizeof(bad), "sequence %" PRIu64 " is not "
		    "plausible: more than %" PRIu64 " past the newest sequence "
		    "the broker announced", d->seq,
		    (uint64_t)CPX_SEQ_AHEAD_MAX);
		verified = 0;
		why = bad;
	}
	memset(&ev, 0, sizeof(ev));
	ev.kind = CPX_EV_DELIVERY;
	ev.seq = d->seq;
	ev.request_id = d->request_id;
	ev.accepted_at = d->accepted_at;
	ev.replayed = d->replayed;
	ev.signed_alert = d->alert;
	ev.signer = *signer;
	ev.verified = verified;
	ev.alert = verified ? a : NULL;
	ev.verify_error = verified ? NULL : why;
	if (verified && d->request_id == 0 && d->seq > c->last_seq)
		c->last_seq = d->seq;
	client_emit(c, &ev);
}

static void
on_delivery(struct cpx_client *c, const Cpx__Delivery *d, int history,
    int plausible)
{
	struct identity signer;
	Cpx__Alert *a = NULL;
	char why[256] = "";
	int ok;

	memset(&signer, 0, sizeof(signer));
	ok = verify_delivery(c->trust, d, history, &a, &signer, why,
	    sizeof(why));
	emit_delivery(c, d, a, ok, plausible, &signer, why);
	cpx__alert__free_unpacked(a, NULL);
}

static int
auth_reason(int reason)
{
	return reason == CPX__REASON__REASON_NOT_AUTHORIZED ||
	    reason == CPX__REASON__REASON_CERT_REVOKED ||
	    reason == CPX__REASON__REASON_BAD_SIGNER;
}

/* The request a witness answer (or a non-fatal Error) is for, else 0. */
static uint64_t
witness_reply_id(const Cpx__Envelope *env)
{
	switch (env->body_case) {
	case CPX__ENVELOPE__BODY_WITNESS_CHECKPOINT:
		return env->witness_checkpoint->request_id;
	case CPX__ENVELOPE__BODY_COSIGN_ACK:
		return env->cosign_ack->request_id;
	case CPX__ENVELOPE__BODY_ERROR:
		return env->error->fatal ? 0 : env->error->request_id;
	default:
		return 0;
	}
}

static void
on_envelope(struct cpx_client *c, Cpx__Envelope **envp)
{
	Cpx__Envelope *env = *envp;
	struct cpx_event ev;

	/* The answer client_witness_call waits for: its, not an event. */
	if (c->wit_rid != 0 && c->wit_reply == NULL &&
	    witness_reply_id(env) == c->wit_rid) {
		c->wit_reply = env;
		*envp = NULL;
		c->wake = 1;
		return;
	}
	memset(&ev, 0, sizeof(ev));
	switch (env->body_case) {
	case CPX__ENVELOPE__BODY_WELCOME:
		if (c->welcome != NULL)
			break;
		c->welcome = env;
		*envp = NULL;
		tlsconn_set_max_frame(c->tls, CPX_MAX_FRAME);
		c->error[0] = '\0';
		c->fatal_reason = 0;
		c->ep_failed = 0;
		c->ep_why[c->cur][0] = '\0';
		c->round_tried = 1;
		c->round_start_ms = client_now_ms();
		if (!c->wait_welcome)
			client_monitor_stop(c);
		if (c->wait_welcome)
			c->wake = 1;
		ev.kind = CPX_EV_CONNECTED;
		ev.seq = c->welcome->welcome->last_seq;
		client_emit(c, &ev);
		client_resend_state(c);
		break;
	case CPX__ENVELOPE__BODY_ACK:
		client_inflight_done(c, env->ack->request_id);
		ev.kind = CPX_EV_ACK;
		ev.request_id = env->ack->request_id;
		ev.seq = env->ack->seq;
		ev.duplicate = env->ack->duplicate;
		ev.alert_id = env->ack->alert_id;
		client_emit(c, &ev);
		break;
	case CPX__ENVELOPE__BODY_ERROR:
		client_inflight_done(c, env->error->request_id);
		ev.kind = CPX_EV_ERROR;
		ev.request_id = env->error->request_id;
		ev.reason = env->error->reason;
		ev.fatal = env->error->fatal;
		ev.text = env->error->text;
		client_emit(c, &ev);
		if (env->error->fatal) {
			char why[320];

			snprintf(why, sizeof(why), "broker closed the session "
			    "(%s): %s", alert_reason_name(env->error->reason),
			    env->error->text);
			c->fatal_reason = env->error->reason;
			client_lost(c, why, auth_reason(env->error->reason));
		}
		break;
	case CPX__ENVELOPE__BODY_SUBSCRIBED:
		ev.kind = CPX_EV_SUBSCRIBED;
		ev.request_id = env->subscribed->request_id;
		ev.seq = env->subscribed->live_from;
		client_emit(c, &ev);
		break;
	case CPX__ENVELOPE__BODY_AUDIT_RECORD:
		ev.kind = CPX_EV_AUDIT_RECORD;
		ev.record = env->audit_record;
		ev.seq = env->audit_record->seq;
		client_emit(c, &ev);
		break;
	case CPX__ENVELOPE__BODY_REPLAY_END:
		ev.kind = CPX_EV_REPLAY_END;
		ev.request_id = env->replay_end->request_id;
		ev.seq = env->replay_end->last_seq;
		ev.count = env->replay_end->count;
		client_emit(c, &ev);
		break;
	default:
		break;	/* Pong, and kinds only nodes send */
	}
}

void
client_queued_free(struct queued **qp)
{
	struct queued *q;

	if (qp == NULL || (q = *qp) == NULL)
		return;
	if (q->env != NULL)
		cpx__envelope__free_unpacked(q->env, NULL);
	if (q->alert != NULL)
		cpx__alert__free_unpacked(q->alert, NULL);
	free(q);
	*qp = NULL;
}

/* Pool workers: each verifies with a trust store of its own. */
void *
client_pool_init(void *arg, char *err, size_t errlen)
{
	struct cpx_client *c = arg;

	return trust_new(c->ca, c->crl, err, errlen);
}

void
client_pool_run(void *state, void *job)
{
	struct queued *q = job;

	q->verified = verify_delivery(state, q->env->delivery, q->history,
	    &q->alert, &q->signer, q->why, sizeof(q->why));
}

void
client_pool_fini(void *state)
{
	struct trust *t = state;

	trust_free(&t);
}

/* Hand over, in arrival order, everything at the head that is ready. */
void
client_drain_queue(struct cpx_client *c)
{
	struct queued *q;

	while (c->qlen > 0 && (q = c->q[c->qhead])->done) {
		c->q[c->qhead] = NULL;
		c->qhead = (c->qhead + 1) % QUEUE_MAX;
		c->qlen--;
		if (q->is_delivery)
			emit_delivery(c, q->env->delivery, q->alert,
			    q->verified, q->plausible, &q->signer, q->why);
		else
			on_envelope(c, &q->env);
		client_queued_free(&q);
	}
}

/* Collect what the pool verified, then hand over what is ready. */
void
client_take_verified(struct cpx_client *c)
{
	struct queued *q;

	if (c->pool == NULL)
		return;
	while ((q = workpool_take(c->pool)) != NULL)
		q->done = 1;	/* the job is the main thread's again */
	client_drain_queue(c);
}

/*
 * Block, handing over what the pool verifies, until at most max messages
 * wait in the queue. The pool's socket wakes us as each job comes back.
 */
static void
wait_queue(struct cpx_client *c, size_t max)
{
	zmq_pollitem_t it;

	client_take_verified(c);
	while (c->qlen > max) {
		it.socket = workpool_socket(c->pool);
		it.fd = 0;
		it.events = ZMQ_POLLIN;
		it.revents = 0;
		(void)zmq_poll(&it, 1, 1000);
		client_take_verified(c);
	}
}

/* Hand over everything queued: before a break is reported (client_lost). */
void
client_settle(struct cpx_client *c)
{
	if (c->pool != NULL)
		wait_queue(c, 0);
}

/*
 * Queue env behind what is waiting; a delivery goes to the pool. Takes
 * *envp on success. 0, or -1 if it could not (the caller handles env).
 */
static int
enqueue(struct cpx_client *c, Cpx__Envelope **envp, int history,
    int plausible)
{
	struct queued *q;

	/* Never drop what the broker sent: wait for room. */
	if (c->qlen >= QUEUE_MAX)
		wait_queue(c, QUEUE_MAX - 1);
	if ((q = calloc(1, sizeof(*q))) == NULL)
		return -1;
	q->env = *envp;
	q->is_delivery = q->env->body_case == CPX__ENVELOPE__BODY_DELIVERY;
	q->history = history;
	q->plausible = plausible;
	q->done = !q->is_delivery;
	c->q[(c->qhead + c->qlen) % QUEUE_MAX] = q;
	if (q->is_delivery &&
	    workpool_submit(c->pool, c->pool_rr++, q) == -1) {
		c->q[(c->qhead + c->qlen) % QUEUE_MAX] = NULL;
		free(q);
		return -1;
	}
	c->qlen++;
	*envp = NULL;
	return 0;
}

/* One message from the broker: now, or behind deliveries being verified. */
void
client_dispatch(struct cpx_client *c, Cpx__Envelope **envp)
{
	int history, plausible, is_delivery;

	client_classify(c, *envp, &history, &plausible);
	is_delivery = (*envp)->body_case == CPX__ENVELOPE__BODY_DELIVERY;
	if (c->pool != NULL && (c->qlen > 0 || is_delivery) &&
	    enqueue(c, envp, history, plausible) == 0)
		return;
	if (c->qlen > 0)
		/* Out of memory: keep what order we can. */
		client_drain_queue(c);
	if (is_delivery)
		on_delivery(c, (*envp)->delivery, history, plausible);
	else
		on_envelope(c, envp);
}
