/*
 * edge.c: the broker's network edge (see edge.h). Owns the ZMQ_STREAM
 * socket, every struct session and their TLS state, the table from ZeroMQ
 * routing id to session, and the list of ids recently closed by the broker
 * (late frames from those are ignored, never mistaken for a new
 * connection). It knows connections, TLS and bytes; a connection's owner
 * (the dispatcher's struct peer) is opaque here and only freed with it.
 *
 * Bytes are never dropped: what ZeroMQ does not take now (EAGAIN) stays
 * queued in order in the session's tlsconn; a session whose queue passes
 * the configured bound is refused by the dispatcher, not silently trimmed.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <zmq.h>

#include "alert.h"
#include "cpx_limits.h"
#include "edge.h"
#include "log.h"
#include "ratelimit.h"
#include "streamio.h"
#include "wire.h"

#include "edge_impl.h"


static size_t
rid_hash(const uint8_t *rid, size_t len)
{
	uint32_t h = 2166136261u;
	size_t i;

	for (i = 0; i < len; i++)
		h = (h ^ rid[i]) * 16777619u;
	return h % EDGE_BUCKETS;
}

static struct session *
lookup(struct edge *e, const uint8_t *rid, size_t len)
{
	struct session *s;

	for (s = e->buckets[rid_hash(rid, len)]; s != NULL; s = s->hnext)
		if (s->rid_len == len && memcmp(s->rid, rid, len) == 0)
			return s;
	return NULL;
}

struct edge *
edge_new(void *zctx, SSL_CTX *ctx, const struct config *cfg,
    uint64_t first_id, edge_owner_free_fn *owner_free, char *err,
    size_t errlen)
{
	struct edge *e = NULL;
	int one = 1, hwm = 100000, linger = 0, backlog = 1024, idle = 60;
	int sndhwm = EDGE_SNDHWM;
	int ipv6 = 1;

	if ((e = calloc(1, sizeof(*e))) == NULL ||
	    (e->closed = calloc(EDGE_CLOSED_IDS, sizeof(*e->closed))) ==
	    NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	e->ssl_ctx = ctx;
	e->cfg = cfg;
	e->owner_free = owner_free;
	e->next_id = first_id > 0 ? first_id : 1;
	if ((e->connects = ratelimit_new(cfg->connect_rate,
	    cfg->connect_burst)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if ((e->sock = zmq_socket(zctx, ZMQ_STREAM)) == NULL) {
		snprintf(err, errlen, "zmq_socket(ZMQ_STREAM): %s",
		    zmq_strerror(errno));
		goto fail;
	}
	/*
	 * Connect and disconnect notifications ([id][""]) tell us when to
	 * create and drop TLS state. TCP keepalive finds dead hosts, which
	 * ZMQ_STREAM has no heartbeat for. A small send high-water mark: what
	 * a peer does not read must stay in its session's queue, where the
	 * outbound_queue bound sees it, not pile up inside ZeroMQ (a
	 * subscriber that stops reading would grow the broker without end).
	 */
	if (zmq_setsockopt(e->sock, ZMQ_STREAM_NOTIFY, &one, sizeof(one)) ||
	    zmq_setsockopt(e->sock, ZMQ_SNDHWM, &sndhwm, sizeof(sndhwm)) ||
	    zmq_setsockopt(e->sock, ZMQ_RCVHWM, &hwm, sizeof(hwm)) ||
	    zmq_setsockopt(e->sock, ZMQ_LINGER, &linger, sizeof(linger)) ||
	    zmq_setsockopt(e->sock, ZMQ_BACKLOG, &backlog, sizeof(backlog)) ||
	    zmq_setsockopt(e->sock, ZMQ_IPV6, &ipv6, sizeof(ipv6)) ||
	    zmq_setsockopt(e->sock, ZMQ_TCP_KEEPALIVE, &one, sizeof(one)) ||
	    zmq_setsockopt(e->sock, ZMQ_TCP_KEEPALIVE_IDLE, &idle,
	    sizeof(idle))) {
		snprintf(err, errlen, "zmq_setsockopt: %s",
		    zmq_strerror(errno));
		goto fail;
	}
	if (zmq_bind(e->sock, cfg->listen) == -1) {
		snprintf(err, errlen, "cannot listen on %s (config key "
		    "listen): %s", cfg->listen, zmq_strerror(errno));
		goto fail;
	}
	return e;
fail:
	if (e != NULL && e->sock != NULL)
		zmq_close(e->sock);
	if (e != NULL) {
		free(e->closed);
		ratelimit_free(&e->connects);
	}
	free(e);
	return NULL;
}

/* The one place a connection is freed, its owner with it. */
static void
session_free(struct edge *e, struct session *s)
{
	if (s->owner != NULL && e->owner_free != NULL)
		e->owner_free(s->owner);
	s->owner = NULL;
	tlsconn_free(&s->tls);
	free(s);
}

void
edge_free(struct edge **ep)
{
	struct edge *e;
	struct session *s, *n;

	if (ep == NULL || (e = *ep) == NULL)
		return;
	edge_reap(e);
	for (s = e->taken; s != NULL; s = n) {	/* jobs never coming back */
		n = s->next;
		session_free(e, s);
	}
	for (s = e->head; s != NULL; s = n) {
		n = s->next;
		session_free(e, s);
	}
	for (s = e->ended; s != NULL; s = n) {
		n = s->next;
		session_free(e, s);
	}
	zmq_close(e->sock);
	free(e->closed);
	ratelimit_free(&e->connects);
	free(e);
	*ep = NULL;
}

void *
edge_socket(struct edge *e)
{
	return e->sock;
}

struct session *
edge_sessions(struct edge *e)
{
	return e->head;
}

size_t
edge_count(const struct edge *e)
{
	return e->count;
}

/* Unlink s from the table and the live list; it goes on the ended list. */
static void
detach(struct edge *e, struct session *s, int tell_zmq)
{
	struct session **pp;

	for (pp = &e->buckets[rid_hash(s->rid, s->rid_len)]; *pp != NULL;
	    pp = &(*pp)->hnext) {
		if (*pp == s) {
			*pp = s->hnext;
			break;
		}
	}
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		e->head = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	e->count--;
	if (!s->welcomed)
		e->unauthenticated--;
	s->dead = 1;
	if (tell_zmq)
		edge_peer_disconnect(e, s->rid, s->rid_len);
	else
		edge_remember_closed(e, s->rid, s->rid_len);
	s->prev = NULL;
	s->next = e->ended;
	e->ended = s;
}

/* Mark s ended for the reason given, without sending anything more. */
void
edge_end_now(struct edge *e, struct session *s, int reason, const char *why,
    int tell_zmq)
{
	if (s->close_why[0] == '\0') {
		snprintf(s->close_why, sizeof(s->close_why), "%s", why);
		s->close_reason = reason;
	}
	detach(e, s, tell_zmq);
}

/* Push queued ciphertext to ZeroMQ. Returns -1 if the peer is gone. */
static int
flush(struct edge *e, struct session *s)
{
	size_t before;
	int rc;

	if (s->tls == NULL)
		return 0;
	before = tlsconn_out_pending(s->tls);
	rc = stream_flush(e->sock, s->rid, s->rid_len, s->tls, EDGE_CHUNK);
	/* Something went out: the connection is not idle (EDGE_TRIM_MS). */
	if (tlsconn_out_pending(s->tls) < before)
		s->last_tx_ms = e->now_ms;
	return rc;
}

static struct session *
accept_new(struct edge *e, const uint8_t *rid, size_t len, const char *addr)
{
	struct identity by_addr;
	struct session *s;
	size_t h;

	/* The per-node bucket table, keyed here by the address alone. */
	memset(&by_addr, 0, sizeof(by_addr));
	snprintf(by_addr.node, sizeof(by_addr.node), "%s", addr);
	if (e->cfg->connect_rate > 0 &&
	    !ratelimit_take(e->connects, &by_addr, e->now_ms)) {
		edge_refuse_connection(e, rid, len, "connection from %s refused: "
		    "more than %u new connections/s from this address (config "
		    "keys connect_rate, connect_burst)", addr,
		    e->cfg->connect_rate);
		return NULL;
	}
	if (edge_room_for_handshake(e, addr) == -1) {
		edge_refuse_connection(e, rid, len, "connection from %s refused: "
		    "%u connections from this address are in the TLS handshake "
		    "(config key max_handshakes_per_address)", addr,
		    e->cfg->max_handshakes_per_address);
		return NULL;
	}
	if (e->count >= e->cfg->max_sessions) {
		edge_refuse_connection(e, rid, len, "connection from %s refused: "
		    "%zu sessions, the limit (config key max_sessions)", addr,
		    e->count);
		return NULL;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL ||
	    (s->tls = tlsconn_new(e->ssl_ctx, 1, CPX_MAX_FRAME_PREAUTH)) ==
	    NULL) {
		log_warnx("connection from %s refused: out of memory", addr);
		free(s);
		edge_peer_disconnect(e, rid, len);
		return NULL;
	}
	s->id = e->next_id++;
	memcpy(s->rid, rid, len);
	s->rid_len = len;
	snprintf(s->addr, sizeof(s->addr), "%s", addr);
	snprintf(s->tag, sizeof(s->tag), "s%llu %s", (unsigned long long)s->id,
	    addr);
	s->created_ms = s->last_rx_ms = e->now_ms;
	h = rid_hash(rid, len);
	s->hnext = e->buckets[h];
	e->buckets[h] = s;
	s->next = e->head;
	if (e->head != NULL)
		e->head->prev = s;
	e->head = s;
	e->count++;
	e->unauthenticated++;
	log_debug("%s: connected", s->tag);
	return s;
}

/*
 * Once TLS has verified the certificate, log lines name the node it
 * names rather than the address; one without a usable identity keeps the
 * address (the dispatcher refuses it).
 */
static void
name_session(struct session *s)
{
	const struct identity *id = tlsconn_peer(s->tls);

	if (id != NULL && id->country[0] != '\0')
		snprintf(s->tag, sizeof(s->tag), "s%llu %s/%s",
		    (unsigned long long)s->id, id->country, id->node);
}

/* TLS failed or the peer broke the protocol: flush the alert, then close. */
static void
tls_failed(struct edge *e, struct session *s)
{
	snprintf(s->close_why, sizeof(s->close_why), "%s",
	    tlsconn_error(s->tls));
	s->close_reason = tlsconn_error_reason(s->tls);
	if (s->phase == SESSION_HANDSHAKE)
		s->close_reason = s->close_reason ? s->close_reason :
		    CPX__REASON__REASON_MALFORMED;
	s->phase = SESSION_CLOSING;
	s->closing_ms = e->now_ms;
	/*
	 * A TLS alert to deliver: linger (edge_tick) so the peer reads why
	 * before the connection goes. Closing now would drop the alert
	 * inside ZeroMQ, or reset the connection.
	 */
	if (flush(e, s) == -1)
		edge_end_now(e, s, s->close_reason, s->close_why, 0);
}

int
edge_recv(struct edge *e, int64_t now_ms, struct edge_event *ev)
{
	zmq_msg_t rid, data;
	const char *addr;
	struct session *s;
	int rc = 1;

	memset(ev, 0, sizeof(*ev));
	e->now_ms = now_ms;
	zmq_msg_init(&rid);
	zmq_msg_init(&data);
	if (zmq_msg_recv(&rid, e->sock, ZMQ_DONTWAIT) == -1) {
		rc = (errno == EAGAIN || errno == EINTR) ? 0 : -1;
		if (rc == -1)
			log_warnx("edge: zmq_msg_recv: %s", zmq_strerror(errno));
		goto done;
	}
	if (!zmq_msg_more(&rid) || zmq_msg_recv(&data, e->sock, 0) == -1 ||
	    zmq_msg_size(&rid) == 0 || zmq_msg_size(&rid) > SESSION_RID_MAX) {
		log_warnx("edge: malformed message from ZMQ_STREAM, ignored");
		goto done;
	}
	s = lookup(e, zmq_msg_data(&rid), zmq_msg_size(&rid));
	if (zmq_msg_size(&data) == 0) {
		/* A notification: connect if unknown, else disconnect. */
		if (s != NULL) {
			edge_end_now(e, s, s->phase == SESSION_OPEN ?
			    CPX__REASON__REASON_NONE : CPX__REASON__REASON_MALFORMED,
			    s->phase == SESSION_HANDSHAKE ? "peer disconnected "
			    "during the TLS handshake" : "peer disconnected", 0);
		} else if (!edge_recently_closed(e, zmq_msg_data(&rid),
		    zmq_msg_size(&rid))) {
			addr = zmq_msg_gets(&data, "Peer-Address");
			(void)accept_new(e, zmq_msg_data(&rid),
			    zmq_msg_size(&rid), addr ? addr : "?");
		}
		goto done;
	}
	if (s == NULL) {
		/* Late bytes for a connection already closed: drop. */
		goto done;
	}
	if (s->phase == SESSION_CLOSING)
		goto done;
	s->last_rx_ms = now_ms;
	if (tlsconn_feed(s->tls, zmq_msg_data(&data),
	    zmq_msg_size(&data)) == -1) {
		tls_failed(e, s);
		goto done;
	}
	if (tlsconn_state(s->tls) == TLSCONN_CLOSED) {
		(void)flush(e, s);
		edge_end_now(e, s, CPX__REASON__REASON_NONE, "peer closed the session", 1);
		goto done;
	}
	if (flush(e, s) == -1) {
		edge_end_now(e, s, CPX__REASON__REASON_NONE, "peer unreachable", 0);
		goto done;
	}
	if (s->phase == SESSION_HANDSHAKE &&
	    tlsconn_state(s->tls) == TLSCONN_OPEN) {
		name_session(s);
		s->phase = SESSION_VERIFIED;
		ev->kind = EDGE_VERIFIED;
		ev->session = s;
	} else if (s->phase == SESSION_OPEN) {
		ev->kind = EDGE_FRAMES;
		ev->session = s;
	}
done:
	zmq_msg_close(&rid);
	zmq_msg_close(&data);
	return rc;
}

int
session_send_raw(struct edge *e, struct session *s, const uint8_t *buf,
    size_t len)
{
	if (s->dead || (s->phase != SESSION_OPEN &&
	    s->phase != SESSION_VERIFIED))
		return -1;
	/*
	 * The bound that keeps a slow subscriber from growing the broker.
	 * Offer the queue to ZeroMQ first: many deliveries queued in one
	 * loop turn must not cut off a subscriber that reads fast.
	 */
	if (tlsconn_out_pending(s->tls) > e->cfg->outbound_queue &&
	    (flush(e, s) == -1 ||
	    tlsconn_out_pending(s->tls) > e->cfg->outbound_queue))
		return -1;
	return tlsconn_write(s->tls, buf, len);
}

int
session_send(struct edge *e, struct session *s, const Cpx__Envelope *env)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc;

	if (wire_encode(env, &buf, &len) == -1)
		return -1;
	rc = session_send_raw(e, s, buf, len);
	OPENSSL_clear_free(buf, len);
	return rc;
}

size_t
session_queued(const struct session *s)
{
	return s->tls ? tlsconn_out_pending(s->tls) : 0;
}

void
session_refuse(struct edge *e, struct session *s, int reason,
    const char *fmt, ...)
{
	Cpx__Envelope env = CPX__ENVELOPE__INIT;
	Cpx__Error er = CPX__ERROR__INIT;
	uint8_t *buf = NULL;
	size_t len = 0;
	va_list ap;

	if (s->phase == SESSION_CLOSING || s->dead)
		return;
	va_start(ap, fmt);
	vsnprintf(s->close_why, sizeof(s->close_why), fmt, ap);
	va_end(ap);
	s->close_reason = reason;
	/*
	 * Said when decided: the session itself may linger for its peer to
	 * read the Error (edge_tick), and its "closed" line comes then.
	 * Sessions not yet welcomed are logged, counted, by the dispatcher.
	 */
	if (s->welcomed)
		log_info("%s: closing the session (%s): %s", s->tag,
		    alert_reason_name(reason), s->close_why);
	/*
	 * Deliveries still queued for a node cut for being slow, or no
	 * longer entitled, are not sent: the Error goes ahead of them (what
	 * is already encrypted must still go, see tlsconn_write). Acks and
	 * answers queued for a node refused for other reasons still go.
	 */
	if (reason == CPX__REASON__REASON_OVERLOADED ||
	    reason == CPX__REASON__REASON_CERT_REVOKED ||
	    reason == CPX__REASON__REASON_NOT_AUTHORIZED)
		(void)tlsconn_discard_queued(s->tls);
	if (tlsconn_state(s->tls) == TLSCONN_OPEN) {
		er.reason = reason;
		er.text = s->close_why;
		er.fatal = 1;
		env.body_case = CPX__ENVELOPE__BODY_ERROR;
		env.error = &er;
		/* Written even past the queue bound: it is the last one. */
		if (wire_encode(&env, &buf, &len) == 0) {
			if (tlsconn_write(s->tls, buf, len) == -1)
				log_debug("%s: refusal not written", s->tag);
			free(buf);
		}
		tlsconn_shutdown(s->tls);
	}
	s->phase = SESSION_CLOSING;
	s->closing_ms = e->now_ms;
}

void
session_open(struct edge *e, struct session *s)
{
	if (!s->welcomed)
		e->unauthenticated--;
	s->phase = SESSION_OPEN;
	s->welcomed = 1;
	tlsconn_set_max_frame(s->tls, e->cfg->max_frame);
}

void
edge_tick(struct edge *e, int64_t now_ms)
{
	struct session *s, *n;
	const struct config *cfg = e->cfg;
	int64_t idle_ms, floor_ms;

	e->now_ms = now_ms;
	/*
	 * The Welcome announces the ping interval in whole seconds, rounded
	 * up (peer.c): never close a node that pings as told.
	 */
	floor_ms = 3000 * (((int64_t)cfg->ping_interval_ms + 999) / 1000);
	idle_ms = cfg->idle_timeout_ms;
	if (idle_ms < floor_ms)
		idle_ms = floor_ms;
	if (e->nkill > 0)
		edge_retry_disconnects(e);
	for (s = e->head; s != NULL; s = n) {
		n = s->next;
		if (flush(e, s) == -1) {
			edge_end_now(e, s, CPX__REASON__REASON_NONE, "peer unreachable", 0);
			continue;
		}
		switch (s->phase) {
		case SESSION_HANDSHAKE:
		case SESSION_VERIFIED:
			if (now_ms - s->created_ms >
			    (int64_t)cfg->handshake_timeout_ms) {
				log_debug("%s: TLS handshake not completed "
				    "within %u ms, closing", s->tag,
				    cfg->handshake_timeout_ms);
				edge_end_now(e, s, CPX__REASON__REASON_IDLE_TIMEOUT,
				    "handshake timeout", 1);
			}
			break;
		case SESSION_OPEN:
			if (now_ms - s->last_rx_ms > idle_ms)
				session_refuse(e, s, CPX__REASON__REASON_IDLE_TIMEOUT,
				    "nothing received for %lld ms",
				    (long long)idle_ms);
			else if (now_ms - s->last_rx_ms > EDGE_TRIM_MS &&
			    now_ms - s->last_tx_ms > EDGE_TRIM_MS)
				tlsconn_trim(s->tls);	/* idle: small */
			break;
		case SESSION_CLOSING:
			/*
			 * The Error and close_notify are on their way; the
			 * peer closes once it has read them, and what it
			 * still sends meanwhile is discarded (edge_recv).
			 * Closing from here first would drop what ZeroMQ
			 * still holds, or reset the connection under bytes
			 * not yet read: only a peer that does not close
			 * within the linger is cut.
			 */
			if (now_ms - s->closing_ms > (s->welcomed ?
			    EDGE_CLOSE_LINGER_MS : EDGE_HANDSHAKE_LINGER_MS))
				edge_end_now(e, s, s->close_reason, s->close_why, 1);
			break;
		}
	}
	edge_log_noise(e);
	edge_enforce_budget(e);
}

size_t
edge_queued(const struct edge *e)
{
	return e->queued;
}

int
edge_has_backlog(const struct edge *e)
{
	const struct session *s;

	for (s = e->head; s != NULL; s = s->next)
		if (s->tls != NULL && tlsconn_out_pending(s->tls) > 0)
			return 1;
	return 0;
}

int
edge_take_closed(struct edge *e, struct edge_event *ev)
{
	struct session *s = e->ended;

	memset(ev, 0, sizeof(*ev));
	if (s == NULL)
		return 0;
	e->ended = s->next;
	s->next = e->taken;
	e->taken = s;
	ev->session = s;
	ev->kind = s->welcomed ? EDGE_CLOSED : EDGE_REFUSED;
	return 1;
}

void
edge_reap(struct edge *e)
{
	struct session *s, *n, *keep = NULL;

	for (s = e->taken; s != NULL; s = n) {
		n = s->next;
		if (s->jobs > 0 || s->held > 0) {
			/*
			 * A verifier thread still holds a job of s, or a
			 * publish of s waits for its commit (batch.c).
			 */
			s->next = keep;
			keep = s;
			continue;
		}
		session_free(e, s);
	}
	e->taken = keep;
}
