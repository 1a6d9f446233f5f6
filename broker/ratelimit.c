/*
 * ratelimit.c: token buckets keyed by node identity in a chained hash
 * table. Owns the buckets. The table is bounded: past RATELIMIT_MAX nodes,
 * buckets that have refilled completely (they carry no state worth
 * keeping) are dropped before a new one is added.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ratelimit.h"

#define RATELIMIT_BUCKETS	1024
#define RATELIMIT_MAX		65536

struct bucket {
	struct bucket	*next;
	struct identity	 node;
	double		 tokens;
	int64_t		 last_ms;
};

struct ratelimit {
	struct bucket	*table[RATELIMIT_BUCKETS];
	size_t		 count;
	double		 rate;		/* tokens per ms */
	double		 burst;
};

struct ratelimit *
ratelimit_new(uint32_t rate, uint32_t burst)
{
	struct ratelimit *r;

	if ((r = calloc(1, sizeof(*r))) == NULL)
		return NULL;
	r->rate = rate / 1000.0;
	r->burst = burst > 0 ? burst : 1;
	return r;
}

void
ratelimit_free(struct ratelimit **rp)
{
	struct ratelimit *r;
	struct bucket *b, *n;
	size_t i;

	if (rp == NULL || (r = *rp) == NULL)
		return;
	for (i = 0; i < RATELIMIT_BUCKETS; i++)
		for (b = r->table[i]; b != NULL; b = n) {
			n = b->next;
			free(b);
		}
	free(r);
	*rp = NULL;
}

static size_t
slot(const struct identity *node)
{
	uint32_t h = 2166136261u;
	const char *p;

	for (p = node->country; *p != '\0'; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	for (p = node->node; *p != '\0'; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	return h % RATELIMIT_BUCKETS;
}

static void
refill(struct ratelimit *r, struct bucket *b, int64_t now_ms)
{
	if (now_ms <= b->last_ms)
		return;		/* no time passed (or a clock step back) */
	b->tokens += (double)(now_ms - b->last_ms) * r->rate;
	if (b->tokens > r->burst)
		b->tokens = r->burst;
	b->last_ms = now_ms;
}

/* Drop buckets that are full again: they remember nothing. */
static void
prune(struct ratelimit *r, int64_t now_ms)
{
	struct bucket **pp, *b;
	size_t i;

	for (i = 0; i < RATELIMIT_BUCKETS; i++) {
		for (pp = &r->table[i]; (b = *pp) != NULL;) {
			refill(r, b, now_ms);
			if (b->tokens >= r->burst) {
				*pp = b->next;
				free(b);
				r->count--;
			} else
				pp = &b->next;
		}
	}
}

int
ratelimit_take(struct ratelimit *r, const struct identity *node,
    int64_t now_ms)
{
	struct bucket *b;
	size_t h;

	if (r->rate == 0)
		return 1;
	h = slot(node);
	for (b = r->table[h]; b != NULL; b = b->next)
		if (strcmp(b->node.country, node->country) == 0 &&
		    strcmp(b->node.node, node->node) == 0)
			break;
	if (b == NULL) {
		if (r->count >= RATELIMIT_MAX)
			prune(r, now_ms);
		if (r->count >= RATELIMIT_MAX ||
		    (b = calloc(1, sizeof(*b))) == NULL)
			return 0;	/* fail closed: refuse, never grow */
		b->node = *node;
		b->tokens = r->burst;
		b->last_ms = now_ms;
		b->next = r->table[h];
		r->table[h] = b;
		r->count++;
	}
	refill(r, b, now_ms);
	if (b->tokens < 1.0)
		return 0;
	b->tokens -= 1.0;
	return 1;
}
