/*
 * dedup.h: the index of alerts the broker has accepted, keyed by (origin
 * country, alert id), so that a repeated publish of the same alert (a
 * client retrying after a lost ack) gets the same acknowledgement and is
 * not delivered twice, while a different alert reusing an id of the same
 * origin is refused. Each origin has its own id namespace: an id used by
 * one country never blocks, and never reveals anything about, the same id
 * used by another. Rebuilt from the audit log at start.
 */
#ifndef CPX_DEDUP_H
#define CPX_DEDUP_H

#include <stddef.h>
#include <stdint.h>

#include "proto/cpx.pb-c.h"

#define DEDUP_HASH_LEN	32
#define DEDUP_KEY_LEN	16	/* SipHash key */

struct dedup;

struct dedup_entry {
	uint64_t	seq;
	uint8_t		hash[DEDUP_HASH_LEN];	/* SHA-256 of the alert bytes */
	int		pending;		/* appended, not yet durable */
};

/*
 * Returns an owned, empty index (dedup_free) or NULL (memory, or no
 * random bytes for its hash key).
 */
struct dedup *dedup_new(void);
void	dedup_free(struct dedup **d);
/* The entry for (origin, id), or NULL. Owned by d; valid until d changes. */
struct dedup_entry *dedup_find(struct dedup *d, const char *origin,
	    const char *id);
/*
 * Add (origin, id), which must not be present. Returns the entry (owned
 * by d) or NULL (memory).
 */
struct dedup_entry *dedup_add(struct dedup *d, const char *origin,
	    const char *id, uint64_t seq, const uint8_t hash[DEDUP_HASH_LEN],
	    int pending);
/* Remove (origin, id) if present (a rolled-back append). */
void	dedup_remove(struct dedup *d, const char *origin, const char *id);
size_t	dedup_count(const struct dedup *d);
/* Length of the longest bucket chain (for tests and statistics). */
size_t	dedup_max_chain(const struct dedup *d);
/* The bucket (origin, id) falls in, at the current size (for tests). */
size_t	dedup_bucket(const struct dedup *d, const char *origin,
	    const char *id);
/* SHA-256 of bytes into out. */
void	dedup_hash(const uint8_t *p, size_t len, uint8_t out[DEDUP_HASH_LEN]);
/* SipHash-2-4 of p[0..len) under key (exposed for its test vectors). */
uint64_t dedup_siphash(const uint8_t key[DEDUP_KEY_LEN], const void *p,
	    size_t len);

/*
 * May alert a (already alert_validate'd) name its reference? An update or
 * withdrawal may only point to an alert its own origin published through
 * this broker: (a->origin, reference id) must be in the index. Whether the
 * id exists under another origin is never looked at, so the answer (and
 * its text) reveals nothing about other countries' alerts. Returns 0 (no
 * reference, or a known one), or -1 with *reason
 * (CPX__REASON__REASON_INVALID_ALERT) and why[].
 */
int	dedup_check_reference(struct dedup *d, const Cpx__Alert *a,
	    int *reason, char *why, size_t whylen)
	    __attribute__((warn_unused_result));

#endif
