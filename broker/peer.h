/*
 * peer.h: what the dispatcher knows about the authenticated node behind
 * one connection: its verified identity, its rights under the policy in
 * force, its subscription, the replay or catch-up it runs and the publish
 * parked on a full verify backlog. The edge (edge.h) holds connections,
 * TLS and bytes only; the dispatcher hangs one struct peer on a
 * connection it welcomes (session->owner), and the edge frees it with the
 * connection (peer_release), so a peer lives exactly as long as its
 * connection: past its end, until edge_reap, while verifier jobs still
 * point at it.
 */
#ifndef CPX_PEER_H
#define CPX_PEER_H

#include "edge.h"
#include "identity.h"
#include "policy.h"
#include "proto/cpx.pb-c.h"

struct replay;
struct witness_job;

struct peer {
	struct identity		 id;		/* from the certificate */
	struct policy_rights	 rights;	/* policy in force */
	Cpx__Envelope		*subscription;	/* the Subscribe, or NULL */
	struct replay		*replay;	/* replay or catch-up, or NULL */
	/*
	 * A publish decoded but not yet handed to the verifiers because
	 * their backlog was full; the session's later frames wait behind it
	 * in its TLS buffer, so its requests keep their order.
	 */
	Cpx__Envelope		*parked;
	/*
	 * A witness answer under way (witness.c), waiting for a commit or
	 * reading the log, with its cursor; or NULL.
	 */
	struct witness_job	*witness;
};

/*
 * A peer for the node id names, with no rights, subscription or replay
 * yet. Returns an owned peer (peer_free) or NULL when out of memory.
 */
struct peer *peer_new(const struct identity *id);
/* Free p and all it holds; accepts NULL, NULLs *p. */
void	peer_free(struct peer **p);
/* peer_free for the edge: the edge_owner_free_fn given to edge_new. */
void	peer_release(void *owner);

/* The peer of s, or NULL while s has not been welcomed. */
struct peer *peer_of(const struct session *s);

/*
 * 1 while p's resume is reading history: live deliveries wait for it to
 * reach the durable end, so none is sent twice or out of order.
 */
int	peer_catching_up(const struct peer *p);

/*
 * 1 if p holds a subscription with at least one filter. A Subscribe
 * without a filter unsubscribes (proto/cpx.proto), so it selects nothing
 * live, while "no filter" in a match (route_matches) means every alert.
 */
int	peer_subscribed(const struct peer *p);

#endif
