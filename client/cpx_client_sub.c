/*
 * cpx_client_sub.c: the subscription and replays. Owns the current
 * subscription (resumed after a reconnect from the last sequence
 * delivered, so nothing is missed and nothing repeated), the replays
 * this client asked for, and the judging of each delivery as history or
 * live and its sequence as plausible (client_classify).
 */
#include <stdlib.h>
#include <string.h>

#include "cpx_client.h"
#include "cpx_client_impl.h"
#include "cpx_limits.h"

void
client_resend_state(struct cpx_client *c)
{
	Cpx__Envelope env = CPX__ENVELOPE__INIT;
	Cpx__Subscribe *sub;
	size_t i;

	if (c->sub != NULL) {
		sub = cpx__subscribe__unpack(NULL, c->sub_len, c->sub);
		if (sub != NULL) {
			/*
			 * Resume after the last verified delivery: the queue
			 * was handed over before the connection was dropped
			 * (client_lost), so nothing is repeated, and a delivery
			 * that failed verification is asked for again.
			 */
			if (c->sub_resume || c->last_seq > 0) {
				sub->resume = 1;
				if (c->last_seq > sub->resume_after)
					sub->resume_after = c->last_seq;
			}
			c->catchup_rid = sub->resume ? sub->request_id : 0;
			c->catchup_to = 0;
			env.body_case = CPX__ENVELOPE__BODY_SUBSCRIBE;
			env.subscribe = sub;
			(void)client_send_env(c, &env);
			cpx__subscribe__free_unpacked(sub, NULL);
		}
	}
	for (i = 0; i < c->ninflight; i++)
		(void)client_send_frame(c, c->inflight[i].frame,
		    c->inflight[i].len);
}

/* Is rid one of our replays still running? forget: it just ended. */
static int
replay_ours(struct cpx_client *c, uint64_t rid, int forget)
{
	size_t i;

	if (rid == 0)
		return 0;
	for (i = 0; i < REPLAYS_MAX; i++) {
		if (c->replays[i] != rid)
			continue;
		if (forget)
			c->replays[i] = 0;
		return 1;
	}
	return 0;
}

static void
announce(struct cpx_client *c, uint64_t seq)
{
	if (seq > c->announced)
		c->announced = seq;
}

/*
 * Note what the broker announced and judge a delivery, in arrival order
 * and before it goes to a verifier thread: a later message must not
 * change how an earlier one is judged. *history: it answers a replay of
 * ours, or is at or below live_from during a resume of ours, so an
 * alert whose signer certificate expired since may be accepted as of its
 * issue time; anything else gets the strict check, whatever the broker's
 * `replayed` flag says. *plausible: see CPX_SEQ_AHEAD_MAX.
 */
void
client_classify(struct cpx_client *c, const Cpx__Envelope *env, int *history,
    int *plausible)
{
	const Cpx__Delivery *d;

	*history = 0;
	*plausible = 1;
	switch (env->body_case) {
	case CPX__ENVELOPE__BODY_WELCOME:
		announce(c, env->welcome->last_seq);
		break;
	case CPX__ENVELOPE__BODY_ACK:
		announce(c, env->ack->seq);
		break;
	case CPX__ENVELOPE__BODY_SUBSCRIBED:
		announce(c, env->subscribed->live_from);
		if (c->catchup_rid != 0 &&
		    env->subscribed->request_id == c->catchup_rid)
			c->catchup_to = env->subscribed->live_from;
		break;
	case CPX__ENVELOPE__BODY_REPLAY_END:
		announce(c, env->replay_end->last_seq);
		(void)replay_ours(c, env->replay_end->request_id, 1);
		break;
	case CPX__ENVELOPE__BODY_ERROR:
		(void)replay_ours(c, env->error->request_id, 1);
		if (env->error->request_id == c->catchup_rid) {
			c->catchup_rid = 0;
			c->catchup_to = 0;
		}
		break;
	case CPX__ENVELOPE__BODY_DELIVERY:
		d = env->delivery;
		*plausible = d->seq != UINT64_MAX && (d->seq <= c->announced ||
		    d->seq - c->announced <= CPX_SEQ_AHEAD_MAX);
		if (d->request_id != 0)
			*history = replay_ours(c, d->request_id, 0);
		else
			*history = c->catchup_rid != 0 && c->catchup_to != 0 &&
			    d->seq <= c->catchup_to;
		break;
	default:
		break;
	}
}

int
cpx_subscribe(struct cpx_client *c, Cpx__Filter *const *filters,
    size_t nfilters, int resume, uint64_t after, uint64_t *request_id)
{
	Cpx__Envelope env = CPX__ENVELOPE__INIT;
	Cpx__Subscribe sub = CPX__SUBSCRIBE__INIT;
	uint8_t *packed;
	size_t len;

	sub.request_id = c->next_request++;
	sub.filters = (Cpx__Filter **)filters;
	sub.n_filters = nfilters;
	sub.resume = resume;
	sub.resume_after = after;
	len = cpx__subscribe__get_packed_size(&sub);
	if ((packed = malloc(len ? len : 1)) == NULL)
		return -1;
	cpx__subscribe__pack(&sub, packed);
	free(c->sub);
	c->sub = packed;
	c->sub_len = len;
	c->sub_resume = resume;
	if (resume && after > c->last_seq)
		c->last_seq = after;
	c->catchup_rid = resume ? sub.request_id : 0;
	c->catchup_to = 0;
	*request_id = sub.request_id;
	env.body_case = CPX__ENVELOPE__BODY_SUBSCRIBE;
	env.subscribe = &sub;
	return client_send_env(c, &env);
}

int
cpx_replay(struct cpx_client *c, const Cpx__ReplayRequest *rq,
    uint64_t *request_id)
{
	Cpx__Envelope env = CPX__ENVELOPE__INIT;
	Cpx__ReplayRequest copy = *rq;
	size_t i;

	*request_id = 0;
	if (c->welcome == NULL)
		return -1;
	/* Remembered so its deliveries, and only they, are history. */
	for (i = 0; i < REPLAYS_MAX && c->replays[i] != 0; i++)
		;
	if (i == REPLAYS_MAX)
		return -1;
	copy.request_id = c->next_request++;
	env.body_case = CPX__ENVELOPE__BODY_REPLAY;
	env.replay = &copy;
	if (client_send_env(c, &env) == -1)
		return -1;
	c->replays[i] = copy.request_id;
	*request_id = copy.request_id;
	return 0;
}

uint64_t
cpx_client_last_seq(const struct cpx_client *c)
{
	return c->last_seq;
}
