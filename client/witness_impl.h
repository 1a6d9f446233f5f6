/*
 * witness_impl.h: how the witness files of the client library call one
 * another (docs/witness.md). Library-internal, included by nothing
 * outside client/witness*.c.
 *
 *   witness.c          the round's exchange with the broker: ask for the
 *                      checkpoint, check its signer, cosign, raise the
 *                      alarm, keep the new head (cpx_witness_round);
 *   witness_walk.c     the consistency checks: walk the leaves from the
 *                      head held to the one presented, check the other
 *                      witnesses' cosignatures against that walk;
 *   witness_file.c     the state file and the evidence files on disk;
 *   witness_compare.c  the offline comparison of signed heads
 *                      (cpx_witness_compare).
 */
#ifndef CPX_WITNESS_IMPL_H
#define CPX_WITNESS_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "chain.h"
#include "cosign.h"
#include "cpx_client.h"
#include "proto/cpx.pb-c.h"

#define WITNESS_STATE_MAGIC	"cpx-witness-state v1"
#define WITNESS_EVIDENCE_MAGIC	"cpx-witness-evidence v1"
#define WITNESS_FILE_MAX	(64u * 1024u)	/* a state or evidence file */

/* What a witness holds: the last checkpoint it accepted. */
struct wstate {
	uint64_t	 seq;		/* its checkpoint_seq, 0: none */
	uint8_t		 hash[CHAIN_HASH_LEN];
	uint64_t	 record;	/* the CHECKPOINT record's seq */
	int64_t		 time;		/* its signed time */
	int		 cosigned;
	uint8_t		*ck;		/* packed CHECKPOINT record, owned */
	size_t		 cklen;
};

/* One round's working set; everything in it is freed by the round. */
struct round {
	struct cpx_client		*c;
	const char			*path;
	int				 timeout_ms;
	struct cpx_witness_result	*res;
	struct wstate			 st;
	Cpx__Envelope			*first;	/* first answer: checkpoint */
	const Cpx__AuditRecord		*ck;	/* inside first */
	uint8_t				 cert_hash[32];
	EVP_MD				*sha;
	EVP_MD_CTX			*md;
	/* Other witnesses' heads that fall in this round's range. */
	const Cpx__AuditRecord		*peers[COSIGN_MAX_PEERS];
	size_t				 npeers;
};

/* --- witness.c: the round ---------------------------------------------- */

/*
 * The round failed (res->outcome FAILED, res->local as in include/cpx.h,
 * res->text from fmt). Returns -1.
 */
int	witness_failed(struct round *r, int local, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));
/*
 * The alarm: res filled in, the evidence file written next to the state
 * (what the witness held and seen, the record that shows the conflict),
 * a WitnessAlarm sent to the broker if the session still works. The
 * state file is left alone. Returns 1.
 */
int	witness_alarm(struct round *r, const char *kind,
	    const Cpx__AuditRecord *seen, const char *fmt, ...)
	    __attribute__((format(printf, 4, 5)));
/*
 * Ask for the leaves after have_seq of checkpoint record rec (0: the
 * newest). Returns 0 with *reply (a WitnessCheckpoint, owned by the
 * caller), or -1 (witness_failed called).
 */
int	witness_ask(struct round *r, uint64_t have_seq, uint64_t rec,
	    Cpx__Envelope **reply) __attribute__((warn_unused_result));

/* --- witness_walk.c: consistency ------------------------------------- */

/*
 * Keep the other witnesses' valid cosignatures that fall in this round's
 * range (r->peers); one that claims a longer log signed before the
 * checkpoint presented is an alarm at once. Returns 0, or 1 (alarm).
 */
int	witness_take_peers(struct round *r, const Cpx__WitnessCheckpoint *wc)
	    __attribute__((warn_unused_result));
/* A kept peer head at seq with a hash other than h: alarm. 0 or 1. */
int	witness_check_peers_at(struct round *r, uint64_t seq,
	    const uint8_t h[CHAIN_HASH_LEN])
	    __attribute__((warn_unused_result));
/*
 * Recompute the chain from the head held (r->st) through the leaves,
 * page by page, to the checkpoint presented (r->ck). Returns 0 (it
 * extends), 1 (alarm) or -1 (failed).
 */
int	witness_walk(struct round *r) __attribute__((warn_unused_result));

/* --- witness_file.c: files ------------------------------------------- */

/* Lower-case hex of n bytes into out (2n + 1 bytes). */
void	witness_hex(const uint8_t *p, size_t n, char *out);
/*
 * Read a whole witness file (at most WITNESS_FILE_MAX - 1 bytes) into buf
 * (cap bytes, NUL-terminated). Returns 0, 1 if it does not exist, or -1
 * with err[].
 */
int	witness_file_read(const char *path, char *buf, size_t cap, char *err,
	    size_t errlen) __attribute__((warn_unused_result));
/*
 * The "KEY HEX" line of text as packed bytes, *out owned by the caller.
 * Returns 0, 1 if there is no such line, -1 if it is not hex (or out of
 * memory).
 */
int	witness_field_record(const char *text, const char *key, uint8_t **out,
	    size_t *len) __attribute__((warn_unused_result));
/* A packed copy of r (owned by the caller, *len its size), or NULL. */
uint8_t	*witness_pack_record(const Cpx__AuditRecord *r, size_t *len);
/*
 * Load the state file into st (st->ck owned by st): 0, 1 if it does not
 * exist (a new witness), or -1 with err[]. The checkpoint kept in it
 * must still say what the file says: an edited file is refused.
 */
int	witness_state_read(const char *path, struct wstate *st, char *err,
	    size_t errlen) __attribute__((warn_unused_result));
/* Replace the state file atomically (temp, fsync, rename). 0 or -1. */
int	witness_state_write(const char *path, const struct wstate *st,
	    char *err, size_t errlen) __attribute__((warn_unused_result));
/* Free what st holds and zero it. */
void	witness_state_clear(struct wstate *st);
/*
 * Write a new evidence file at path (must not exist, mode 0600): the
 * alarm kind and text, the checkpoint held (packed, or NULL) and the
 * record seen. 0, or -1 with err[].
 */
int	witness_evidence_write(const char *path, const char *kind,
	    const char *text, const uint8_t *held, size_t heldlen,
	    const Cpx__AuditRecord *seen, char *err, size_t errlen)
	    __attribute__((warn_unused_result));

#endif
