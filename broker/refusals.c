/*
 * refusals.c: see refusals.h. Owns two bounded tables: the refusals
 * counted in the current interval (source, kind, reason -> count), reset
 * at each flush, and the nodes kept out after too many refusals, which
 * expire by themselves. Sources are attacker-chosen strings (addresses),
 * so the bucket hash is keyed with a random seed drawn at creation, and
 * both tables are capped: a flood of distinct sources ends up counted in
 * one "other sources" entry instead of growing memory.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "proto/cpx.pb-c.h"
#include "refusals.h"

#define REFUSALS_BUCKETS	1024
#define REFUSALS_MAX		4096	/* counted keys per interval */
#define PENALTY_MAX		4096	/* nodes kept out at once */
#define PENALTY_MAX_MS		3600000	/* an hour */
#define PENALTY_FORGET_MS	(4 * PENALTY_MAX_MS)
#define KIND_TOTAL		(-1)	/* all kinds of one source */
#define OTHER_SOURCES		"(other sources)"

struct entry {
	struct entry	*next;
	char		 key[256];	/* "CC/node" or the address */
	int		 kind;
	int		 reason;
	uint64_t	 count;
	char		 country[3];
	char		 node[CPX_MAX_NODE_NAME + 1];
	char		 addr[64];
	char		 text[160];
};

struct penalty {
	char		 key[128];
	int64_t		 until_ms;
	int64_t		 last_ms;	/* 0: free slot */
	int64_t		 next_ms;	/* time out given next time */
};

struct refusals {
	uint64_t	 seed;
	struct entry	*table[REFUSALS_BUCKETS];
	size_t		 count;
	int64_t		 since_ms;	/* 0: no interval begun */
	struct penalty	 penalties[PENALTY_MAX];
};

static void
source_key(const struct refusal_source *src, char *out, size_t len)
{
	if (src->country != NULL && src->country[0] != '\0')
		snprintf(out, len, "%s/%s", src->country,
		    src->node ? src->node : "");
	else
		snprintf(out, len, "%s", src->addr ? src->addr : "?");
}

static size_t
bucket(const struct refusals *r, const char *key, int kind, int reason)
{
	uint64_t h = r->seed ^ 14695981039346656037ull;
	const unsigned char *p;

	for (p = (const unsigned char *)key; *p != '\0'; p++)
		h = (h ^ *p) * 1099511628211ull;
	h = (h ^ (uint64_t)(unsigned)kind) * 1099511628211ull;
	h = (h ^ (uint64_t)(unsigned)reason) * 1099511628211ull;
	h ^= h >> 29;
	return (size_t)(h % REFUSALS_BUCKETS);
}

struct refusals *
refusals_new(void)
{
	struct refusals *r;

	if ((r = calloc(1, sizeof(*r))) == NULL)
		return NULL;
	if (RAND_bytes((unsigned char *)&r->seed, sizeof(r->seed)) != 1)
		r->seed = (uint64_t)(uintptr_t)r;
	return r;
}

static void
clear_table(struct refusals *r)
{
	struct entry *e, *n;
	size_t i;

	for (i = 0; i < REFUSALS_BUCKETS; i++) {
		for (e = r->table[i]; e != NULL; e = n) {
			n = e->next;
			free(e);
		}
		r->table[i] = NULL;
	}
	r->count = 0;
}

void
refusals_free(struct refusals **rp)
{
	if (rp == NULL || *rp == NULL)
		return;
	clear_table(*rp);
	free(*rp);
	*rp = NULL;
}

static struct entry *
find(const struct refusals *r, const char *key, int kind, int reason)
{
	struct entry *e;

	for (e = r->table[bucket(r, key, kind, reason)]; e != NULL;
	    e = e->next)
		if (e->kind == kind && e->reason == reason &&
		    strcmp(e->key, key) == 0)
			return e;
	return NULL;
}

/* The entry for key, created if there is room; NULL if there is none. */
static struct entry *
get(struct refusals *r, const char *key, const struct refusal_source *src,
    int kind, int reason, const char *text)
{
	struct entry *e;
	size_t b;

	if ((e = find(r, key, kind, reason)) != NULL)
		return e;
	/* The last entries are kept for "other sources". */
	if (r->count >= REFUSALS_MAX - (strcmp(key, OTHER_SOURCES) == 0 ?
	    0 : 64) || (e = calloc(1, sizeof(*e))) == NULL)
		return NULL;
	snprintf(e->key, sizeof(e->key), "%s", key);
	e->kind = kind;
	e->reason = reason;
	snprintf(e->country, sizeof(e->country), "%s",
	    src->country ? src->country : "");
	snprintf(e->node, sizeof(e->node), "%s", src->node ? src->node : "");
	snprintf(e->addr, sizeof(e->addr), "%s", src->addr ? src->addr : "");
	snprintf(e->text, sizeof(e->text), "%s", text ? text : "");
	b = bucket(r, key, kind, reason);
	e->next = r->table[b];
	r->table[b] = e;
	r->count++;
	return e;
}

int
refusals_count(struct refusals *r, const struct refusal_source *src,
    int kind, int reason, const char *text, int64_t now_ms)
{
	static const struct refusal_source other = { "", "",
	    OTHER_SOURCES };
	struct entry *e, *total;
	char key[128], ekey[256];

	if (r->since_ms == 0)
		r->since_ms = now_ms;
	source_key(src, key, sizeof(key));
	if ((total = get(r, key, src, KIND_TOTAL, 0, "")) != NULL)
		total->count++;
	/*
	 * Before authentication the text is part of the key: it comes from
	 * a small fixed set (TLS and certificate errors), and an operator
	 * wants to see each distinct failure once. After it, texts carry
	 * alert ids a node chooses, so only kind and reason count.
	 */
	if (src->country == NULL || src->country[0] == '\0')
		snprintf(ekey, sizeof(ekey), "%s\x1f%s", key, text ? text : "");
	else
		snprintf(ekey, sizeof(ekey), "%s", key);
	if ((e = get(r, ekey, src, kind, reason, text)) == NULL) {
		/* Table full: count it, never write it one by one. */
		if ((e = get(r, other.addr, &other, kind, reason, text)) !=
		    NULL)
			e->count = e->count > 0 ? e->count + 1 : 2;
		return 0;
	}
	return ++e->count == 1;
}

uint64_t
refusals_total(const struct refusals *r, const struct refusal_source *src)
{
	struct entry *e;
	char key[128];

	source_key(src, key, sizeof(key));
	e = find(r, key, KIND_TOTAL, 0);
	return e != NULL ? e->count : 0;
}

size_t
refusals_flush(struct refusals *r, int64_t now_ms, uint32_t interval_ms,
    refusals_flush_fn *fn, void *arg)
{
	struct refusal_summary sum;
	struct entry *e;
	size_t i, n = 0;

	if (r->since_ms == 0 || now_ms - r->since_ms < (int64_t)interval_ms)
		return 0;
	for (i = 0; i < REFUSALS_BUCKETS; i++) {
		for (e = r->table[i]; e != NULL; e = e->next) {
			if (e->kind == KIND_TOTAL || e->count < 2)
				continue;
			memset(&sum, 0, sizeof(sum));
			memcpy(sum.country, e->country, sizeof(sum.country));
			memcpy(sum.node, e->node, sizeof(sum.node));
			memcpy(sum.addr, e->addr, sizeof(sum.addr));
			memcpy(sum.text, e->text, sizeof(sum.text));
			sum.kind = e->kind;
			sum.reason = e->reason;
			sum.count = e->count - 1;
			sum.since_ms = r->since_ms;
			fn(arg, &sum);
			n++;
		}
	}
	clear_table(r);
	r->since_ms = 0;
	return n;
}

static struct penalty *
penalty_find(const struct refusals *r, const char *key)
{
	size_t i;

	for (i = 0; i < PENALTY_MAX; i++)
		if (r->penalties[i].last_ms != 0 &&
		    strcmp(r->penalties[i].key, key) == 0)
			return (struct penalty *)&r->penalties[i];
	return NULL;
}

int64_t
refusals_penalise(struct refusals *r, const struct refusal_source *src,
    int64_t now_ms, uint32_t base_ms)
{
	struct penalty *p, *oldest = NULL;
	char key[128];
	size_t i;

	source_key(src, key, sizeof(key));
	if ((p = penalty_find(r, key)) != NULL &&
	    now_ms - p->last_ms > PENALTY_FORGET_MS)
		p->next_ms = 0;		/* behaved for long: start over */
	if (p == NULL) {
		/* A free slot, or the one forgotten longest ago. */
		for (i = 0; i < PENALTY_MAX; i++) {
			if (r->penalties[i].last_ms == 0) {
				oldest = &r->penalties[i];
				break;
			}
			if (oldest == NULL ||
			    r->penalties[i].last_ms < oldest->last_ms)
				oldest = &r->penalties[i];
		}
		p = oldest;
		memset(p, 0, sizeof(*p));
		snprintf(p->key, sizeof(p->key), "%s", key);
	}
	if (p->next_ms < (int64_t)base_ms)
		p->next_ms = base_ms;
	p->until_ms = now_ms + p->next_ms;
	p->last_ms = now_ms;
	if (p->next_ms < PENALTY_MAX_MS / 2)
		p->next_ms *= 2;
	else
		p->next_ms = PENALTY_MAX_MS;
	return p->until_ms - now_ms;
}

int64_t
refusals_banned(const struct refusals *r, const struct refusal_source *src,
    int64_t now_ms)
{
	const struct penalty *p;
	char key[128];

	source_key(src, key, sizeof(key));
	if ((p = penalty_find(r, key)) == NULL || p->until_ms <= now_ms)
		return 0;
	return p->until_ms - now_ms;
}
