/*
 * dedup.c: a chained hash table from (origin, alert id) to (sequence,
 * SHA-256 of the signed alert bytes). Owns its entries and their key
 * strings.
 *
 * Ids are chosen by the publishing nodes, so the bucket hash is keyed:
 * SipHash-2-4 under a random key drawn when the index is created. With an
 * unkeyed hash (FNV, as before) anyone who may publish can compute ids
 * that all land in one bucket and turn every lookup into a walk of a long
 * chain (hash flooding); without the key, bucket collisions are no more
 * likely than chance. The table doubles when it is more than three
 * quarters full, so chains stay O(1) long with millions of alerts.
 *
 * Memory: one node per accepted alert, about 100 bytes plus the id, and at
 * most about three bucket pointers per node. Entries never expire: an id
 * stays reserved for as long as its alert is in the audit log, which is
 * what makes a late retry safe. Expiring them would need a rule for when
 * an origin may reuse an id (e.g. after the alert's expires_at plus the
 * longest client retry time) applied the same way when the index is
 * rebuilt at start.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>
#include <openssl/sha.h>

#include "dedup.h"

#define DEDUP_MIN_BUCKETS	1024	/* a power of two */

struct node {
	struct node		*next;
	uint64_t		 h;		/* keyed hash of the key */
	struct dedup_entry	 e;
	size_t			 idoff;		/* id starts at key + idoff */
	char			 key[];		/* origin NUL id NUL */
};

struct dedup {
	struct node	**buckets;
	size_t		  nbuckets;	/* a power of two */
	size_t		  count;
	uint8_t		  key[DEDUP_KEY_LEN];
};

/* --- SipHash-2-4 (Aumasson and Bernstein, 2012) ---------------------- */

struct sip {
	uint64_t	v0, v1, v2, v3;
	uint64_t	m;		/* bytes of the word being filled */
	size_t		n;		/* bytes taken so far */
};

#define ROTL(x, b)	(((x) << (b)) | ((x) >> (64 - (b))))

static void
sip_round(struct sip *s)
{
	s->v0 += s->v1;
	s->v1 = ROTL(s->v1, 13);
	s->v1 ^= s->v0;
	s->v0 = ROTL(s->v0, 32);
	s->v2 += s->v3;
	s->v3 = ROTL(s->v3, 16);
	s->v3 ^= s->v2;
	s->v0 += s->v3;
	s->v3 = ROTL(s->v3, 21);
	s->v3 ^= s->v0;
	s->v2 += s->v1;
	s->v1 = ROTL(s->v1, 17);
	s->v1 ^= s->v2;
	s->v2 = ROTL(s->v2, 32);
}

static uint64_t
load64le(const uint8_t *p)
{
	uint64_t v = 0;
	int i;

	for (i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static void
sip_init(struct sip *s, const uint8_t key[DEDUP_KEY_LEN])
{
	uint64_t k0 = load64le(key), k1 = load64le(key + 8);

	s->v0 = k0 ^ 0x736f6d6570736575ull;
	s->v1 = k1 ^ 0x646f72616e646f6dull;
	s->v2 = k0 ^ 0x6c7967656e657261ull;
	s->v3 = k1 ^ 0x7465646279746573ull;
	s->m = 0;
	s->n = 0;
}

static void
sip_word(struct sip *s, uint64_t m)
{
	s->v3 ^= m;
	sip_round(s);
	sip_round(s);
	s->v0 ^= m;
}

/* Byte by byte, so a key can be fed in parts (origin, then id). */
static void
sip_update(struct sip *s, const void *p, size_t len)
{
	const uint8_t *b = p;
	size_t i;

	for (i = 0; i < len; i++) {
		s->m |= (uint64_t)b[i] << (8 * (s->n % 8));
		if (++s->n % 8 == 0) {
			sip_word(s, s->m);
			s->m = 0;
		}
	}
}

static uint64_t
sip_final(struct sip *s)
{
	sip_word(s, s->m | ((uint64_t)(s->n & 0xff) << 56));
	s->v2 ^= 0xff;
	sip_round(s);
	sip_round(s);
	sip_round(s);
	sip_round(s);
	return s->v0 ^ s->v1 ^ s->v2 ^ s->v3;
}

uint64_t
dedup_siphash(const uint8_t key[DEDUP_KEY_LEN], const void *p, size_t len)
{
	struct sip s;

	sip_init(&s, key);
	sip_update(&s, p, len);
	return sip_final(&s);
}

/* The NUL after origin keeps ("AB", "C") apart from ("A", "BC"). */
static uint64_t
hash_key(const struct dedup *d, const char *origin, const char *id)
{
	struct sip s;

	sip_init(&s, d->key);
	sip_update(&s, origin, strlen(origin) + 1);
	sip_update(&s, id, strlen(id));
	return sip_final(&s);
}

/* --- the table ------------------------------------------------------- */

struct dedup *
dedup_new(void)
{
	struct dedup *d;

	if ((d = calloc(1, sizeof(*d))) == NULL)
		return NULL;
	d->nbuckets = DEDUP_MIN_BUCKETS;
	if ((d->buckets = calloc(d->nbuckets, sizeof(*d->buckets))) == NULL ||
	    RAND_bytes(d->key, sizeof(d->key)) != 1) {
		free(d->buckets);
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
	OPENSSL_cleanse(d->key, sizeof(d->key));
	free(d);
	*dp = NULL;
}

static int
node_is(const struct node *n, uint64_t h, const char *origin,
    const char *id)
{
	return n->h == h && strcmp(n->key, origin) == 0 &&
	    strcmp(n->key + n->idoff, id) == 0;
}

struct dedup_entry *
dedup_find(struct dedup *d, const char *origin, const char *id)
{
	uint64_t h = hash_key(d, origin, id);
	struct node *n;

	for (n = d->buckets[h & (d->nbuckets - 1)]; n != NULL; n = n->next)
		if (node_is(n, h, origin, id))
			return &n->e;
	return NULL;
}

static void
grow(struct dedup *d)
{
	struct node **nb, *n, *next;
	size_t i, size;

	if (d->nbuckets > SIZE_MAX / 2 / sizeof(*nb))
		return;
	size = d->nbuckets * 2;
	if ((nb = calloc(size, sizeof(*nb))) == NULL)
		return;		/* keep working, only slower */
	for (i = 0; i < d->nbuckets; i++)
		for (n = d->buckets[i]; n != NULL; n = next) {
			next = n->next;
			n->next = nb[n->h & (size - 1)];
			nb[n->h & (size - 1)] = n;
		}
	free(d->buckets);
	d->buckets = nb;
	d->nbuckets = size;
}

struct dedup_entry *
dedup_add(struct dedup *d, const char *origin, const char *id, uint64_t seq,
    const uint8_t hash[DEDUP_HASH_LEN], int pending)
{
	size_t olen = strlen(origin), ilen = strlen(id), b;
	struct node *n;

	if ((n = malloc(sizeof(*n) + olen + ilen + 2)) == NULL)
		return NULL;
	memcpy(n->key, origin, olen + 1);
	n->idoff = olen + 1;
	memcpy(n->key + n->idoff, id, ilen + 1);
	n->h = hash_key(d, origin, id);
	n->e.seq = seq;
	memcpy(n->e.hash, hash, DEDUP_HASH_LEN);
	n->e.pending = pending;
	b = n->h & (d->nbuckets - 1);
	n->next = d->buckets[b];
	d->buckets[b] = n;
	if (++d->count > d->nbuckets / 4 * 3)
		grow(d);
	return &n->e;
}

void
dedup_remove(struct dedup *d, const char *origin, const char *id)
{
	uint64_t h = hash_key(d, origin, id);
	struct node **pp, *n;

	for (pp = &d->buckets[h & (d->nbuckets - 1)]; (n = *pp) != NULL;
	    pp = &n->next) {
		if (node_is(n, h, origin, id)) {
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

size_t
dedup_max_chain(const struct dedup *d)
{
	const struct node *n;
	size_t i, len, max = 0;

	for (i = 0; i < d->nbuckets; i++) {
		len = 0;
		for (n = d->buckets[i]; n != NULL; n = n->next)
			len++;
		if (len > max)
			max = len;
	}
	return max;
}

size_t
dedup_bucket(const struct dedup *d, const char *origin, const char *id)
{
	return hash_key(d, origin, id) & (d->nbuckets - 1);
}

void
dedup_hash(const uint8_t *p, size_t len, uint8_t out[DEDUP_HASH_LEN])
{
	SHA256(p, len, out);
}

int
dedup_check_reference(struct dedup *d, const Cpx__Alert *a, int *reason,
    char *why, size_t whylen)
{
	const Cpx__Reference *r;

	*reason = CPX__REASON__REASON_NONE;
	if (whylen > 0)
		why[0] = '\0';
	if (a == NULL || (r = a->reference) == NULL ||
	    r->kind == CPX__REFERENCE_KIND__REFERENCE_NONE)
		return 0;
	/* alert_validate checked both ids; do not rely on it. */
	if (a->origin == NULL || r->alert_id == NULL) {
		*reason = CPX__REASON__REASON_INVALID_ALERT;
		snprintf(why, whylen, "reference without an alert id");
		return -1;
	}
	/*
	 * Only the origin's own namespace is searched. Refusing because the
	 * id exists under another origin would let any publisher probe for
	 * other countries' ids, named-only ones included; accepting an
	 * unknown id would let it "update" an alert that is not its own.
	 */
	if (dedup_find(d, a->origin, r->alert_id) != NULL)
		return 0;
	*reason = CPX__REASON__REASON_INVALID_ALERT;
	snprintf(why, whylen, "alert %s %s alert %s, which %s has not "
	    "published through this broker (a reference names an earlier "
	    "alert of the same origin)", a->id != NULL ? a->id : "?",
	    r->kind == CPX__REFERENCE_KIND__REFERENCE_UPDATES ? "updates" :
	    "withdraws", r->alert_id, a->origin);
	return -1;
}
