/*
 * edge_admit.c: what the edge lets in and what it cuts, and how a
 * connection is dropped. Before authentication anyone can connect, so
 * connections are limited per source address (rate, handshakes under
 * way) and overall (the oldest unauthenticated connection makes room);
 * what is refused there is closed at once, before any TLS, and logged
 * once a minute with its count. After it, the broker-wide queue budget
 * cuts the longest queue. Dropping a connection is asking ZeroMQ for it,
 * which a peer that does not read can delay: the ids are remembered, so
 * late frames are ignored and the disconnect is retried.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <zmq.h>

#include "edge_impl.h"
#include "log.h"

int
edge_recently_closed(struct edge *e, const uint8_t *rid, size_t len)
{
	size_t i;

	for (i = 0; i < EDGE_CLOSED_IDS; i++) {
		struct closed_id *c = &e->closed[i];

		if (c->rid_len == len && c->expires_ms > e->now_ms &&
		    memcmp(c->rid, rid, len) == 0)
			return 1;
	}
	return 0;
}

struct closed_id *
edge_remember_closed(struct edge *e, const uint8_t *rid, size_t len)
{
	struct closed_id *c = &e->closed[e->closed_next];

	e->closed_next = (e->closed_next + 1) % EDGE_CLOSED_IDS;
	if (c->kill) {
		log_warnx("edge: %d closed connections still waiting; one "
		    "stays open until its peer reads or leaves",
		    EDGE_CLOSED_IDS);
		c->kill = 0;
		e->nkill--;
	}
	memcpy(c->rid, rid, len);
	c->rid_len = len;
	c->expires_ms = e->now_ms + EDGE_CLOSED_TTL_MS;
	return c;
}

/*
 * Ask ZeroMQ to drop the TCP connection: [id][""]. 0 once taken (or the
 * peer is gone), -1 if its pipe is full (EAGAIN): try again later.
 */
static int
send_disconnect(struct edge *e, const uint8_t *rid, size_t len)
{
	if (zmq_send(e->sock, rid, len, ZMQ_SNDMORE | ZMQ_DONTWAIT) ==
	    (int)len) {
		(void)zmq_send(e->sock, "", 0, ZMQ_DONTWAIT);
		return 0;
	}
	return errno == EAGAIN ? -1 : 0;
}

/*
 * Drop the connection. A peer that stopped reading has a full pipe and
 * ZeroMQ refuses even the disconnect request: it is retried every tick
 * (edge_tick), or the connection would stay open for good.
 */
void
edge_peer_disconnect(struct edge *e, const uint8_t *rid, size_t len)
{
	struct closed_id *c;

	c = edge_remember_closed(e, rid, len);
	if (send_disconnect(e, rid, len) == -1) {
		log_debug("edge: peer not reading; disconnect deferred");
		c->kill = 1;
		e->nkill++;
	}
}

void
edge_retry_disconnects(struct edge *e)
{
	struct closed_id *c;
	size_t i;

	for (i = 0; i < EDGE_CLOSED_IDS && e->nkill > 0; i++) {
		c = &e->closed[i];
		if (!c->kill)
			continue;
		/* Late bytes from it stay ignored while it lingers. */
		c->expires_ms = e->now_ms + EDGE_CLOSED_TTL_MS;
		if (send_disconnect(e, c->rid, c->rid_len) == 0) {
			c->kill = 0;
			e->nkill--;
		}
	}
}

/*
 * A connection refused before TLS: closed at once, and counted. Anyone
 * can cause these, so they are logged once a minute with their number,
 * not once each (see log_noise).
 */
void
edge_refuse_connection(struct edge *e, const uint8_t *rid, size_t len,
    const char *fmt, ...)
{
	va_list ap;

	if (e->noise++ == 0) {
		e->noise_since_ms = e->now_ms;
		va_start(ap, fmt);
		vsnprintf(e->noise_why, sizeof(e->noise_why), fmt, ap);
		va_end(ap);
		log_warnx("%s", e->noise_why);
	}
	edge_peer_disconnect(e, rid, len);
}

void
edge_log_noise(struct edge *e)
{
	if (e->noise == 0 || e->now_ms - e->noise_since_ms < EDGE_NOISE_LOG_MS)
		return;
	if (e->noise > 1)
		log_warnx("%llu connection(s) refused before TLS in the last "
		    "%lld s; the first: %s", (unsigned long long)e->noise,
		    (long long)(e->now_ms - e->noise_since_ms) / 1000,
		    e->noise_why);
	e->noise = 0;
}

/*
 * Make room for one more connection that has not authenticated yet: 0 if
 * there is room, or after dropping the oldest such connection when
 * max_handshakes are under way (a real node finishes its handshake in
 * milliseconds; connections that idle in it are what gets dropped, so
 * they cannot keep real nodes out). -1 if this address has its share.
 */
int
edge_room_for_handshake(struct edge *e, const char *addr)
{
	struct session *s, *oldest = NULL;
	uint32_t same = 0;

	for (s = e->head; s != NULL; s = s->next) {
		if (s->welcomed)
			continue;
		if (strcmp(s->addr, addr) == 0)
			same++;
		if (oldest == NULL || s->created_ms <= oldest->created_ms)
			oldest = s;
	}
	if (same >= e->cfg->max_handshakes_per_address)
		return -1;
	if (e->unauthenticated >= e->cfg->max_handshakes && oldest != NULL) {
		log_debug("%s: dropped: %zu connections without a "
		    "certificate yet (config key max_handshakes)", oldest->tag,
		    e->unauthenticated);
		edge_end_now(e, oldest, CPX__REASON__REASON_OVERLOADED,
		    "dropped to make room: too many connections in the TLS "
		    "handshake (config key max_handshakes)", 1);
	}
	return 0;
}

/*
 * The broker-wide bound on queued bytes (queue_budget): past it, the
 * session with the longest queue is refused as overloaded, its queued
 * frames dropped, until the total fits. Replays pause earlier
 * (edge_queued), so this only bites when live traffic overflows.
 */
void
edge_enforce_budget(struct edge *e)
{
	struct session *s, *big;
	size_t total;

	for (;;) {
		total = 0;
		big = NULL;
		for (s = e->head; s != NULL; s = s->next) {
			total += session_queued(s);
			if (s->phase != SESSION_CLOSING && (big == NULL ||
			    session_queued(s) > session_queued(big)))
				big = s;
		}
		e->queued = total;
		if (total <= e->cfg->queue_budget || big == NULL ||
		    session_queued(big) == 0)
			return;
		log_warnx("%s: disconnected: %zu bytes queued for all sessions, "
		    "over queue_budget (%u); this one had %zu", big->tag, total,
		    e->cfg->queue_budget, session_queued(big));
		session_refuse(e, big, CPX__REASON__REASON_OVERLOADED,
		    "the broker's queues are full (config key queue_budget); "
		    "reconnect and resume");
	}
}
