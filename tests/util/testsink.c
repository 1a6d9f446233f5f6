/*
 * testsink.c: see testsink.h. The sink is owned by the test; the client
 * only borrows it through its event callback.
 */
#include <stdio.h>
#include <string.h>

#include "testbroker.h"
#include "testsink.h"

static void
sink_cb(const struct cpx_event *ev, void *arg)
{
	struct testsink *s = arg;
	struct testsink_item *it;

	switch (ev->kind) {
	case CPX_EV_CONNECTED:
		s->connected++;
		break;
	case CPX_EV_DISCONNECTED:
		s->disconnected++;
		break;
	case CPX_EV_SUBSCRIBED:
		s->subscribed++;
		break;
	case CPX_EV_ACK:
		s->acks++;
		s->last_ack_seq = ev->seq;
		s->last_ack_dup = ev->duplicate;
		break;
	case CPX_EV_ERROR:
		s->errors++;
		s->last_reason = ev->reason;
		s->last_fatal = ev->fatal;
		s->last_request = ev->request_id;
		snprintf(s->last_text, sizeof(s->last_text), "%s",
		    ev->text ? ev->text : "");
		break;
	case CPX_EV_REPLAY_END:
		s->replay_ends++;
		s->replay_count = ev->count;
		break;
	case CPX_EV_AUDIT_RECORD:
		s->records++;
		break;
	case CPX_EV_DELIVERY:
		if (s->n >= TESTSINK_MAX)
			break;
		it = &s->items[s->n++];
		it->seq = ev->seq;
		it->verified = ev->verified;
		it->replayed = ev->replayed;
		if (ev->alert != NULL)
			snprintf(it->id, sizeof(it->id), "%s", ev->alert->id);
		snprintf(it->verify_error, sizeof(it->verify_error), "%s",
		    ev->verify_error ? ev->verify_error : "");
		break;
	}
}

void
testsink_attach(struct testsink *s, struct cpx_client *c)
{
	memset(s, 0, sizeof(*s));
	cpx_client_on_event(c, sink_cb, s);
}

int
testsink_run_until(struct cpx_client *c, const int *counter, int target,
    int timeout_ms)
{
	int64_t until = testutil_now_ms() + timeout_ms;

	while (*counter < target && testutil_now_ms() < until)
		if (cpx_client_run(c, 20) == -1)
			break;
	return *counter >= target;
}

int
testsink_wait_deliveries(struct testsink *s, struct cpx_client *c,
    size_t target, int timeout_ms)
{
	int64_t until = testutil_now_ms() + timeout_ms;

	while (s->n < target && testutil_now_ms() < until)
		if (cpx_client_run(c, 20) == -1)
			break;
	return s->n >= target;
}

int
testsink_has(const struct testsink *s, const char *id, int *count)
{
	size_t i;
	int n = 0;

	for (i = 0; i < s->n; i++)
		if (strcmp(s->items[i].id, id) == 0)
			n++;
	if (count != NULL)
		*count = n;
	return n > 0;
}

int
testsink_sync(struct testsink *s, struct cpx_client *c,
    Cpx__Filter *const *filters, size_t nfilters)
{
	uint64_t req;
	int target = s->subscribed + 1;

	if (cpx_subscribe(c, filters, nfilters, 0, 0, &req) == -1)
		return 0;
	return testsink_run_until(c, &s->subscribed, target, 10000);
}

struct cpx_client *
testsink_connect(struct testbroker *tb, const char *node, int reconnect,
    struct testsink *s)
{
	struct cpx_client *c;
	char err[400];

	if ((c = testbroker_client(tb, node, reconnect, err,
	    sizeof(err))) == NULL) {
		fprintf(stderr, "%s: %s\n", node, err);
		return NULL;
	}
	testsink_attach(s, c);
	if (cpx_client_connect(c, 10000, err, sizeof(err)) == -1) {
		fprintf(stderr, "%s: connect: %s\n", node, err);
		cpx_client_free(&c);
	}
	return c;
}

int
testsink_served(struct testsink *s, struct cpx_client *c)
{
	struct testfilter tf;
	Cpx__Filter *f[1];

	testfilter_init(&tf, "", "", NULL, 0, 0);
	f[0] = &tf.f;
	return testsink_sync(s, c, f, 1);
}
