/*
 * dedup.h: the index of alert ids the broker has accepted, so that a
 * repeated publish of the same id (a client retrying after a lost ack)
 * gets the same acknowledgement and is not delivered twice, while a
 * different alert reusing an id is refused. Rebuilt from the audit log at
 * start.
 */
#ifndef CPX_DEDUP_H
#define CPX_DEDUP_H

#include <stddef.h>
#include <stdint.h>

#define DEDUP_HASH_LEN	32

struct dedup;

struct dedup_entry {
	uint64_t	seq;
	uint8_t		hash[DEDUP_HASH_LEN];	/* SHA-256 of the alert bytes */
	int		pending;		/* appended, not yet durable */
};

/* Returns an owned, empty index (dedup_free) or NULL. */
struct dedup *dedup_new(void);
void	dedup_free(struct dedup **d);
/* The entry for id, or NULL. Owned by d; valid until d changes. */
struct dedup_entry *dedup_find(struct dedup *d, const char *id);
/* Add id (must not be present). Returns the entry or NULL (memory). */
struct dedup_entry *dedup_add(struct dedup *d, const char *id, uint64_t seq,
	    const uint8_t hash[DEDUP_HASH_LEN], int pending);
/* Remove id if present (a rolled-back append). */
void	dedup_remove(struct dedup *d, const char *id);
size_t	dedup_count(const struct dedup *d);
/* SHA-256 of bytes into out. */
void	dedup_hash(const uint8_t *p, size_t len, uint8_t out[DEDUP_HASH_LEN]);

#endif
