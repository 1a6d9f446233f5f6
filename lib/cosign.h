/*
 * cosign.h: what witnesses, the broker and cpx-audit agree on about
 * checkpoints and their cosignatures (docs/witness.md): the bytes a
 * broker checkpoint and a witness cosignature sign, the 36-byte leaf
 * entries a broker shows a witness, and the shape checks of the witness
 * messages and record fields after decoding (protobuf-c checks none).
 * Pure functions; no state.
 */
#ifndef CPX_COSIGN_H
#define CPX_COSIGN_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "chain.h"
#include "proto/cpx.pb-c.h"

#define COSIGN_CKPT_TAG		"cpx-checkpoint-v1"
#define COSIGN_CKPT_MSG_LEN	(17u + 8u + CHAIN_HASH_LEN + 8u)
#define COSIGN_TAG		"cpx-cosign-v1"
#define COSIGN_MSG_LEN		(13u + 8u + CHAIN_HASH_LEN + 8u + 32u)
#define COSIGN_LEAF_LEN		(4u + CHAIN_HASH_LEN)	/* u32be len | leaf */
#define COSIGN_MAX_LEAVES	4096u	/* per WitnessCheckpoint */
#define COSIGN_MAX_PEERS	32u	/* cosignatures served along */
#define COSIGN_MAX_ALARM_TEXT	1024u

/* "cpx-checkpoint-v1" | u64be seq | hash | i64be time (broker/audit.h). */
void	cosign_checkpoint_msg(uint8_t out[COSIGN_CKPT_MSG_LEN], uint64_t seq,
	    const uint8_t hash[CHAIN_HASH_LEN], int64_t time);
/* "cpx-cosign-v1" | u64be seq | hash | i64be time | SHA-256(broker cert). */
void	cosign_msg(uint8_t out[COSIGN_MSG_LEN], uint64_t seq,
	    const uint8_t hash[CHAIN_HASH_LEN], int64_t time,
	    const uint8_t cert_hash[32]);

/* One leaf entry: u32be len | leaf. */
void	cosign_leaf_put(uint8_t out[COSIGN_LEAF_LEN], uint32_t len,
	    const uint8_t leaf[CHAIN_HASH_LEN]);
void	cosign_leaf_get(const uint8_t in[COSIGN_LEAF_LEN], uint32_t *len,
	    uint8_t leaf[CHAIN_HASH_LEN]);

/*
 * Check a CHECKPOINT record's own signature: it covers (checkpoint_seq,
 * checkpoint_hash, time) and verifies with the key of checkpoint_cert
 * (ECDSA P-256). Whether that certificate is the broker's is the
 * caller's question. Returns 0 with *cert (owned by the caller:
 * X509_free) and cert_hash (SHA-256 of its DER), or -1 with why[].
 */
int	cosign_verify_checkpoint(const Cpx__AuditRecord *ck, X509 **cert,
	    uint8_t cert_hash[32], char *why, size_t whylen)
	    __attribute__((warn_unused_result));

/*
 * Check a COSIGNATURE record's signature with the key of its
 * witness_cert. Whether the CA vouches for that certificate is the
 * caller's question. Returns 0 with *cert (owned by the caller), or -1
 * with why[].
 */
int	cosign_verify_record(const Cpx__AuditRecord *cs, X509 **cert,
	    char *why, size_t whylen) __attribute__((warn_unused_result));

/*
 * The limits of a witness message body (Envelope fields 13 to 17), for
 * wire_decode. Returns 0, or -1 with *reason and why[].
 */
int	cosign_check_body(const Cpx__Envelope *env, int *reason, char *why,
	    size_t whylen) __attribute__((warn_unused_result));
/* The limits of an AuditRecord's witness fields. 0, or -1 with why[]. */
int	cosign_check_record(const Cpx__AuditRecord *r, char *why,
	    size_t whylen) __attribute__((warn_unused_result));

#endif
