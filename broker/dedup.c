/*
 * dedup.c: a chained hash table from alert id to (sequence, SHA-256 of the
 * signed alert bytes). Owns its entries and their id strings. The table
 * doubles when it is more than three-quarters full, so lookups stay O(1)
 * with millions of alerts in the log.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

#include "dedup.h"

struct node {
	struct node		*next;
	struct dedup_entry	 e;
	char			 id[];
};

struct dedup {
	struct node	**buckets;
	size_t		  nbuckets;
	size_t		  count;
};

static size_t
hash_id(const char *id)
{
	uint64_t h = 1469598103934665603ull;

	while (*id != '\0')
		h = (h ^ (uint8_t)*id++) * 1099511628211ull;
	return (size_t)h;
}

struct dedup *
dedup_new(void)
{
	struct dedup *d;

	if ((d = calloc(1, sizeof(*d))) == NULL)
		return NULL;
	d->nbuckets = 1024;
	if ((d->buckets = calloc(d->nbuckets, sizeof(*d->buckets))) == NULL) {
		free(d);
		return NULL;
	}
	return d;
}

void
dedup_free(struct dedup **dp)
{
	struct dedup *d;
	struct node *n, *next;
	size_t i;

	if (dp == NULL || (d = *dp) == NULL)
		return;
	for (i = 0; i < d->nbuckets; i++)
		for (n = d->buckets[i]; n != NULL; n = next) {
			next = n->next;
			free(n);
		}
	free(d->buckets);
	free(d);
	*dp = NULL;
}

struct dedup_entry *
dedup_find(struct dedup *d, const char *id)
{
	struct node *n;

	for (n = d->buckets[hash_id(id) % d->nbuckets]; n != NULL;
	    n = n->next)
		if (strcmp(n->id, id) == 0)
			return &n->e;
	return NULL;
}

static void
grow(struct dedup *d)
{
	struct node **nb, *n, *next;
	size_t i, size = d->nbuckets * 2;

	if ((nb = calloc(size, sizeof(*nb))) == NULL)
		return;		/* keep working, only slower */
	for (i = 0; i < d->nbuckets; i++)
		for (n = d->buckets[i]; n != NULL; n = next) {
			next = n->next;
			n->next = nb[hash_id(n->id) % size];
			nb[hash_id(n->id) % size] = n;
		}
	free(d->buckets);
	d->buckets = nb;
	d->nbuckets = size;
}

struct dedup_entry *
dedup_add(struct dedup *d, const char *id, uint64_t seq,
    const uint8_t hash[DEDUP_HASH_LEN], int pending)
{
	size_t len = strlen(id), b;
	struct node *n;

	if ((n = malloc(sizeof(*n) + len + 1)) == NULL)
		return NULL;
	memcpy(n->id, id, len + 1);
	n->e.seq = seq;
	memcpy(n->e.hash, hash, DEDUP_HASH_LEN);
	n->e.pending = pending;
	b = hash_id(id) % d->nbuckets;
	n->next = d->buckets[b];
	d->buckets[b] = n;
	if (++d->count > d->nbuckets / 4 * 3)
		grow(d);
	return &n->e;
}

void
dedup_remove(struct dedup *d, const char *id)
{
	struct node **pp, *n;

	for (pp = &d->buckets[hash_id(id) % d->nbuckets]; (n = *pp) != NULL;
	    pp = &n->next) {
		if (strcmp(n->id, id) == 0) {
			*pp = n->next;
			free(n);
			d->count--;
			return;
		}
	}
}

size_t
dedup_count(const struct dedup *d)
{
	return d->count;
}

void
dedup_hash(const uint8_t *p, size_t len, uint8_t out[DEDUP_HASH_LEN])
{
	SHA256(p, len, out);
}
