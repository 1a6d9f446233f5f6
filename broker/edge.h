/*
 * edge.h: the broker's network edge: connections, TLS and bytes, nothing
 * else. One ZMQ_STREAM socket carries plain TLS 1.3 over TCP from every
 * node; each connection (ZeroMQ routing id) gets one struct session
 * holding its TLS state (lib/tlsconn.c) and its outbound queue. The edge
 * turns socket traffic into events for the dispatcher (broker.c) and never
 * decides anything about alerts itself. What the dispatcher knows about
 * the node behind a connection (rights, subscription, replay, ...) is the
 * dispatcher's own (peer.h), hung on the connection as an opaque owner.
 */
#ifndef CPX_EDGE_H
#define CPX_EDGE_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "config.h"
#include "proto/cpx.pb-c.h"
#include "tlsconn.h"

#define SESSION_RID_MAX	256

enum session_phase {
	SESSION_HANDSHAKE = 0,	/* TLS handshake under way */
	SESSION_VERIFIED,	/* TLS done; dispatcher must welcome/refuse */
	SESSION_OPEN,		/* welcomed: requests accepted */
	SESSION_CLOSING		/* refusal sent; closed once flushed */
};

/*
 * Frees a connection's owner (the dispatcher's state about it) when the
 * edge frees the connection itself.
 */
typedef void	edge_owner_free_fn(void *owner);

/* One connection. Owned by the edge; the dispatcher borrows it. */
struct session {
	uint64_t		 id;		/* for logs and the audit */
	uint8_t			 rid[SESSION_RID_MAX];
	size_t			 rid_len;
	char			 addr[64];	/* peer IP address */
	enum session_phase	 phase;
	struct tlsconn		*tls;
	int64_t			 created_ms;	/* monotonic */
	int64_t			 last_rx_ms;	/* monotonic */
	int64_t			 last_tx_ms;	/* monotonic */
	int64_t			 closing_ms;	/* monotonic, CLOSING */
	char			 close_why[160];
	int			 close_reason;
	int			 welcomed;	/* session_open() was called */
	int			 dead;		/* ended: send nothing more */
	unsigned int		 jobs;		/* at the verifier: keep s */
	unsigned int		 held;		/* in a commit (batch.c): keep s */
	/*
	 * For logs: "s12 1.2.3.4" until TLS names the node, then
	 * "s12 SI/si-ncp" (from the verified certificate).
	 */
	char			 tag[96];
	/*
	 * The dispatcher's state about this connection (struct peer), or
	 * NULL until the dispatcher has taken the node's identity from the
	 * verified certificate (peer_welcome). The edge only frees it,
	 * through the edge_owner_free_fn given to edge_new, together with
	 * the connection: in edge_reap or edge_free, never earlier, so it
	 * lives as long as the sessions taken and the verifier jobs that
	 * point at the connection.
	 */
	void			*owner;

	struct session		*hnext;		/* routing-id hash chain */
	struct session		*prev, *next;	/* all sessions */
};

enum edge_event_kind {
	EDGE_NONE = 0,
	EDGE_VERIFIED,		/* handshake done: identity in s->tls */
	EDGE_FRAMES,		/* decrypted frames waiting */
	EDGE_REFUSED,		/* TLS failed before being welcomed */
	EDGE_CLOSED		/* an open session ended */
};

struct edge_event {
	enum edge_event_kind	 kind;
	struct session		*session;	/* valid until edge_reap() */
};

struct edge;

/*
 * Bind a ZMQ_STREAM socket at cfg->listen in zctx. ctx is borrowed.
 * Session ids start at first_id. owner_free (may be NULL) frees a
 * connection's owner when the connection is freed. Returns an owned edge
 * (edge_free) or NULL with err[].
 */
struct edge *edge_new(void *zctx, SSL_CTX *ctx, const struct config *cfg,
	    uint64_t first_id, edge_owner_free_fn *owner_free, char *err,
	    size_t errlen);
void	edge_free(struct edge **e);
/* The ZeroMQ socket, for zmq_poll. */
void	*edge_socket(struct edge *e);
/* First session, for iterating with s->next. */
struct session *edge_sessions(struct edge *e);
size_t	edge_count(const struct edge *e);

/*
 * Receive and process at most one message from the socket without
 * blocking. Returns 1 with *ev set (kind may be EDGE_NONE), 0 when the
 * socket had nothing, -1 on a socket error (logged).
 */
int	edge_recv(struct edge *e, int64_t now_ms, struct edge_event *ev)
	    __attribute__((warn_unused_result));

/*
 * Queue one envelope to s. Returns 0, or -1 if the session is not open or
 * its outbound queue is over the bound (the caller then refuses it with
 * REASON_OVERLOADED).
 */
int	session_send(struct edge *e, struct session *s,
	    const Cpx__Envelope *env) __attribute__((warn_unused_result));
/*
 * Queue one already-encoded frame (prefix included) to s: for a delivery
 * encoded once and sent to many. Same returns as session_send.
 */
int	session_send_raw(struct edge *e, struct session *s, const uint8_t *buf,
	    size_t len) __attribute__((warn_unused_result));
/* Bytes queued for s and not yet taken by ZeroMQ. */
size_t	session_queued(const struct session *s);

/*
 * The one refusal function: send Error{reason, text, fatal}, TLS
 * close_notify, and close the connection once that is flushed (or after a
 * short linger). Safe to call more than once; later calls do nothing.
 */
void	session_refuse(struct edge *e, struct session *s, int reason,
	    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Mark a verified session welcomed: raises its frame limit. */
void	session_open(struct edge *e, struct session *s);

/*
 * Housekeeping, every loop turn: push queued bytes to ZeroMQ, enforce the
 * handshake and idle timeouts, close flushed CLOSING sessions. Sessions
 * that ended are reported through edge_take_closed().
 */
void	edge_tick(struct edge *e, int64_t now_ms);
/* Bytes queued for all sessions together, as of the last edge_tick. */
size_t	edge_queued(const struct edge *e);
/* 1 if some session still has bytes waiting for ZeroMQ. */
int	edge_has_backlog(const struct edge *e);
/*
 * Take the next session that ended since the last call (for its audit
 * record): 1 with *ev (kind EDGE_CLOSED or EDGE_REFUSED), 0 when none.
 * Sessions taken stay valid until edge_reap().
 */
int	edge_take_closed(struct edge *e, struct edge_event *ev);
/*
 * Free the sessions taken by edge_take_closed(), with their owners; a
 * session with verifier jobs out (s->jobs) waits for the next call.
 */
void	edge_reap(struct edge *e);

#endif
