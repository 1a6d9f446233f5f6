/*
 * edge_impl.h: the inside of the broker's network edge, shared by edge.c
 * (connections, TLS, bytes) and edge_admit.c (what is let in, what is
 * cut, and how a connection is dropped). Nothing outside the edge
 * includes it: the rest of the broker sees edge.h only.
 */
#ifndef CPX_EDGE_IMPL_H
#define CPX_EDGE_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "edge.h"

#define EDGE_BUCKETS		4096
#define EDGE_CLOSED_IDS		4096
#define EDGE_CLOSED_TTL_MS	60000
/*
 * How long a refused connection waits for its peer to read why and close:
 * an authenticated node may have megabytes in flight ahead of the Error;
 * a failed handshake has only a TLS alert to read.
 */
#define EDGE_CLOSE_LINGER_MS	10000
#define EDGE_HANDSHAKE_LINGER_MS 2000
#define EDGE_CHUNK		(64 * 1024)
#define EDGE_TRIM_MS		1000	/* idle this long: free buffers */
#define EDGE_SNDHWM		16	/* chunks held by ZeroMQ per peer */
#define EDGE_NOISE_LOG_MS	60000	/* summary of refused connections */

struct closed_id {
	uint8_t	rid[SESSION_RID_MAX];
	size_t	rid_len;
	int64_t	expires_ms;
	int	kill;		/* disconnect not yet taken by ZeroMQ */
};

struct edge {
	void			*sock;
	SSL_CTX			*ssl_ctx;
	const struct config	*cfg;
	edge_owner_free_fn	*owner_free;	/* frees session owners */
	uint64_t		 next_id;
	struct session		*buckets[EDGE_BUCKETS];
	struct session		*head;		/* live sessions */
	size_t			 count;
	struct session		*ended;		/* ended, not yet taken */
	struct session		*taken;		/* taken, not yet reaped */
	struct closed_id	*closed;	/* ring of closed ids */
	size_t			 closed_next;
	size_t			 nkill;		/* entries with kill set */
	int64_t			 now_ms;
	size_t			 unauthenticated; /* not yet welcomed */
	size_t			 queued;	/* bytes, all sessions, at
						   the last edge_tick */
	struct ratelimit	*connects;	/* per source address */
	/* Connections refused before TLS, logged once a minute. */
	uint64_t		 noise;
	int64_t			 noise_since_ms;
	char			 noise_why[200];
};

/* edge.c */
/* Mark s ended for the reason given; tell_zmq: drop the connection too. */
void	edge_end_now(struct edge *e, struct session *s, int reason,
	    const char *why, int tell_zmq);

/* edge_admit.c */
/* 1 if rid was closed by the broker lately (its late frames are ignored). */
int	edge_recently_closed(struct edge *e, const uint8_t *rid, size_t len);
/* Remember rid as closed; the entry, to mark a deferred disconnect. */
struct closed_id *edge_remember_closed(struct edge *e, const uint8_t *rid,
	    size_t len);
/* Ask ZeroMQ to drop the connection (retried while its pipe is full). */
void	edge_peer_disconnect(struct edge *e, const uint8_t *rid, size_t len);
/* Retry the disconnects ZeroMQ could not take yet (every tick). */
void	edge_retry_disconnects(struct edge *e);
/* Close a connection before TLS, counted and logged once a minute. */
void	edge_refuse_connection(struct edge *e, const uint8_t *rid, size_t len,
	    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* The once-a-minute line about connections refused before TLS. */
void	edge_log_noise(struct edge *e);
/* 0 if one more unauthenticated connection from addr fits (the oldest
 * is dropped at max_handshakes), -1 if addr has its share. */
int	edge_room_for_handshake(struct edge *e, const char *addr);
/* Cut the longest queues while all of them pass queue_budget. */
void	edge_enforce_budget(struct edge *e);

#endif
