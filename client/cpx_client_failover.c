/*
 * cpx_client_failover.c: when a session is lost or cannot be had. Owns
 * losing a session (client_lost: hand over what came before, tell the
 * callback, drop the connection, retry or give up), opening a fresh
 * socket, and with several broker endpoints, moving to the next one this
 * node has not refused, in rounds of the list (docs/failover.md).
 */
#include <stdio.h>
#include <string.h>

#include <zmq.h>

#include "cpx_client.h"
#include "cpx_client_impl.h"
#include "log.h"

#define ENDPOINT_WAIT_MS	5000	/* for a Welcome before the next one */
#define ROUND_MIN_MS		1000	/* between rounds of the whole list */

/* Endpoints not refused by this node (see failover, cpx_client_failover.c). */
size_t
client_usable_endpoints(const struct cpx_client *c)
{
	size_t i, n = 0;

	for (i = 0; i < c->ep.n; i++)
		n += !c->ep_bad[i];
	return n;
}

/* A fresh socket to the current endpoint. 0, or -1 (dead, c->error). */
static int
reopen(struct cpx_client *c)
{
	char err[256];

	/*
	 * A fresh socket: a connection closed from our side is not
	 * reconnected by ZeroMQ, and a stale one must not linger.
	 */
	client_monitor_stop(c);
	if (c->sock != NULL)
		zmq_close(c->sock);
	c->sock = NULL;
	c->ep_failed = 0;
	if (client_open_socket(c, err, sizeof(err)) == -1) {
		snprintf(c->error, sizeof(c->error), "%s", err);
		c->dead = 1;
		return -1;
	}
	return 0;
}

/*
 * Several endpoints, and the current one failed (TCP refused, no Welcome
 * in time, or the session lost): take the next one this node has not
 * refused. At once while this round of the list lasts; a new round only
 * ROUND_MIN_MS after the last began, so brokers that are all down are
 * not hammered, and never while cpx_client_connect waits (it reports a
 * round that failed whole). Returns 1 if it moved, 0 if not yet, -1 if
 * no socket could be opened.
 */
static int
failover(struct cpx_client *c)
{
	size_t i, n = c->cur;

	/* A broker this node refused is left at once, round or not. */
	if (c->round_tried >= client_usable_endpoints(c) &&
	    !c->ep_bad[c->cur]) {
		if (c->wait_welcome ||
		    client_now_ms() - c->round_start_ms < ROUND_MIN_MS)
			return 0;
		c->round_tried = 0;
		c->round_start_ms = client_now_ms();
	}
	for (i = 1; i <= c->ep.n; i++) {
		n = (c->cur + i) % c->ep.n;
		if (!c->ep_bad[n])
			break;
	}
	if (n != c->cur)
		log_info("broker %s failed (%s); trying %s", c->endpoint,
		    c->ep_why[c->cur], c->ep.eps[n]);
	c->cur = n;
	c->endpoint = c->ep.eps[n];
	c->ctx = c->ctxs[n];
	c->round_tried++;
	return reopen(c) == -1 ? -1 : 1;
}

/*
 * While there is no session, with several endpoints: has the current
 * one failed? TCP refused (the monitor, then a probe for the reason), or
 * no Welcome within ENDPOINT_WAIT_MS (a host that drops packets, a
 * broker that does not answer). If so, move on (failover).
 */
void
client_check_endpoint(struct cpx_client *c)
{
	char why[160], msg[128];
	int refused;

	if (c->ep.n < 2 || c->welcome != NULL || c->dead || c->sock == NULL)
		return;
	if (!c->ep_failed && c->rid_len == 0 && client_monitor_failed(c) &&
	    client_probe_tcp(c->endpoint, 1000, why, sizeof(why),
	    &refused) == -1) {
		snprintf(c->ep_why[c->cur], sizeof(c->ep_why[c->cur]),
		    "TCP connect failed: %.100s%s", why, refused ? " (is "
		    "cpx-broker running and listening on that port?)" : "");
		c->ep_failed = 1;
	}
	if (!c->ep_failed &&
	    client_now_ms() - c->ep_since_ms > ENDPOINT_WAIT_MS) {
		snprintf(msg, sizeof(msg), "no Welcome from the broker within "
		    "%d ms", ENDPOINT_WAIT_MS);
		if (c->rid_len > 0) {
			client_lost(c, msg, 0);	/* it moves on itself */
			return;
		}
		snprintf(c->ep_why[c->cur], sizeof(c->ep_why[c->cur]), "%s",
		    msg);
		c->ep_failed = 1;
	}
	if (c->ep_failed)
		(void)failover(c);
}

/* Fatal for this session; retried later only if reconnect is on. */
void
client_lost(struct cpx_client *c, const char *why, int final)
{
	struct cpx_event ev;
	uint64_t gen = c->conn_gen;
	int welcomed = c->welcome != NULL;

	/*
	 * First hand over, in order, everything received before the break:
	 * the broker's fatal Error may be queued behind deliveries still
	 * being verified, and it is the reason the user must see, not
	 * "connection lost". It may itself end the connection.
	 */
	client_settle(c);
	if (c->conn_gen != gen)
		return;
	c->conn_gen++;
	snprintf(c->error, sizeof(c->error), "%s", why);
	if (c->welcome != NULL) {
		memset(&ev, 0, sizeof(ev));
		ev.kind = CPX_EV_DISCONNECTED;
		ev.text = c->error;
		client_emit(c, &ev);
	}
	client_drop_connection(c);
	snprintf(c->ep_why[c->cur], sizeof(c->ep_why[c->cur]), "%s", why);
	if (final)
		c->refused = 1;
	/* Without reconnect, cpx_client_connect still tries the list. */
	if (final || (!c->reconnect && !(c->wait_welcome && c->ep.n > 1))) {
		c->dead = 1;
		return;
	}
	if (welcomed) {
		/* A session was had: a new round of the list starts. */
		c->round_tried = 0;
		c->round_start_ms = client_now_ms();
	}
	if (c->ep.n < 2 || failover(c) == 0) {
		(void)reopen(c);
		/* Still to leave, when the next round may begin. */
		c->ep_failed = c->ep.n > 1;
	}
}

/*
 * With several endpoints, this node refused the current one's broker
 * (why[] says why: another name, key or a revoked certificate): it is
 * not an endpoint of this network, and is never tried again by this
 * client. why[] gets the endpoint. Returns 1 if that was the last
 * endpoint left (the refusal is final), else 0: the next is tried.
 */
int
client_refuse_endpoint(struct cpx_client *c, char *why, size_t len)
{
	char copy[320];

	snprintf(copy, sizeof(copy), "%s", why);
	snprintf(why, len, "%.200s (at %.100s)", copy, c->endpoint);
	c->ep_bad[c->cur] = 1;
	if (client_usable_endpoints(c) == 0)
		return 1;
	log_warnx("%s; not using that endpoint again", why);
	return 0;
}
