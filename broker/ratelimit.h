/*
 * ratelimit.h: per-node publish rate, a token bucket per node identity
 * (country and certificate CN), shared by all the sessions of that node:
 * opening more sessions or reconnecting does not buy a node more alerts.
 */
#ifndef CPX_RATELIMIT_H
#define CPX_RATELIMIT_H

#include <stdint.h>

#include "identity.h"

struct ratelimit;

/*
 * rate alerts per second (0 = unlimited), burst deep. Returns an owned
 * limiter (ratelimit_free) or NULL.
 */
struct ratelimit *ratelimit_new(uint32_t rate, uint32_t burst);
void	ratelimit_free(struct ratelimit **r);

/* Take one token for node at now_ms: 1 if allowed, 0 if over the rate. */
int	ratelimit_take(struct ratelimit *r, const struct identity *node,
	    int64_t now_ms);

#endif
