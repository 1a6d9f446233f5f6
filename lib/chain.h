/*
 * chain.h: the audit log's hash chain, one definition for everyone who
 * recomputes it: the broker's store, cpx-audit, and witnesses, which hold
 * no record bytes, only each record's leaf digest.
 *
 * Chain v2 (cpx 0.2 on):
 *     leaf(n) = SHA-256(record bytes n)
 *     hash(n) = SHA-256(hash(n-1) || u64be n || u32be len(n) || leaf(n))
 * with hash(0) = 32 zero bytes. The leaf digest of a record reveals nothing
 * of its content (every record carries a signature or a fresh hash), so a
 * broker can show a witness how the chain grew between two checkpoints
 * without showing it one alert.
 *
 * Chain v1 (cpx 0.1) hashed the record bytes in place of leaf(n);
 * chain_step_v1 exists only to recognise such a log and say so.
 */
#ifndef CPX_CHAIN_H
#define CPX_CHAIN_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#define CHAIN_HASH_LEN	32u

/* leaf = SHA-256(bytes). md: a context set up for SHA-256. 0 or -1. */
int	chain_leaf(EVP_MD_CTX *md, const uint8_t *bytes, size_t len,
	    uint8_t leaf[CHAIN_HASH_LEN]) __attribute__((warn_unused_result));

/* out = SHA-256(prev || u64be seq || u32be len || leaf). 0 or -1. */
int	chain_step(EVP_MD_CTX *md, const uint8_t prev[CHAIN_HASH_LEN],
	    uint64_t seq, uint32_t len, const uint8_t leaf[CHAIN_HASH_LEN],
	    uint8_t out[CHAIN_HASH_LEN]) __attribute__((warn_unused_result));

/* chain_leaf then chain_step over the record bytes. 0 or -1. */
int	chain_hash_record(EVP_MD_CTX *md, const uint8_t prev[CHAIN_HASH_LEN],
	    uint64_t seq, const uint8_t *bytes, uint32_t len,
	    uint8_t out[CHAIN_HASH_LEN]) __attribute__((warn_unused_result));

/* The 0.1 formula, SHA-256(prev || seq || len || bytes): recognition only. */
int	chain_step_v1(EVP_MD_CTX *md, const uint8_t prev[CHAIN_HASH_LEN],
	    uint64_t seq, const uint8_t *bytes, uint32_t len,
	    uint8_t out[CHAIN_HASH_LEN]) __attribute__((warn_unused_result));

#endif
