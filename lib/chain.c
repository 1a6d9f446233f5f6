/*
 * chain.c: the audit hash chain (see chain.h for the formula). Pure
 * functions over a caller's SHA-256 context; no state of their own.
 */
#include "chain.h"

static void
put_be(uint8_t *p, uint64_t v, int n)
{
	int	i;

	for (i = n - 1; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}

static int
digest3(EVP_MD_CTX *md, const void *a, size_t alen, const void *b,
    size_t blen, const void *c, size_t clen, uint8_t out[CHAIN_HASH_LEN])
{
	unsigned int	outlen = 0;

	/* NULL type: reuse the digest the context was set up with. */
	if (EVP_DigestInit_ex2(md, NULL, NULL) != 1 ||
	    (alen && EVP_DigestUpdate(md, a, alen) != 1) ||
	    (blen && EVP_DigestUpdate(md, b, blen) != 1) ||
	    (clen && EVP_DigestUpdate(md, c, clen) != 1) ||
	    EVP_DigestFinal_ex(md, out, &outlen) != 1 ||
	    outlen != CHAIN_HASH_LEN)
		return -1;
	return 0;
}

int
chain_leaf(EVP_MD_CTX *md, const uint8_t *bytes, size_t len,
    uint8_t leaf[CHAIN_HASH_LEN])
{
	return digest3(md, bytes, len, NULL, 0, NULL, 0, leaf);
}

int
chain_step(EVP_MD_CTX *md, const uint8_t prev[CHAIN_HASH_LEN], uint64_t seq,
    uint32_t len, const uint8_t leaf[CHAIN_HASH_LEN],
    uint8_t out[CHAIN_HASH_LEN])
{
	uint8_t	hdr[12];

	put_be(hdr, seq, 8);
	put_be(hdr + 8, len, 4);
	return digest3(md, prev, CHAIN_HASH_LEN, hdr, sizeof(hdr), leaf,
	    CHAIN_HASH_LEN, out);
}

int
chain_hash_record(EVP_MD_CTX *md, const uint8_t prev[CHAIN_HASH_LEN],
    uint64_t seq, const uint8_t *bytes, uint32_t len,
    uint8_t out[CHAIN_HASH_LEN])
{
	uint8_t	leaf[CHAIN_HASH_LEN];

	if (chain_leaf(md, bytes, len, leaf) == -1)
		return -1;
	return chain_step(md, prev, seq, len, leaf, out);
}

int
chain_step_v1(EVP_MD_CTX *md, const uint8_t prev[CHAIN_HASH_LEN],
    uint64_t seq, const uint8_t *bytes, uint32_t len,
    uint8_t out[CHAIN_HASH_LEN])
{
	uint8_t	hdr[12];

	put_be(hdr, seq, 8);
	put_be(hdr + 8, len, 4);
	return digest3(md, prev, CHAIN_HASH_LEN, hdr, sizeof(hdr), bytes, len,
	    out);
}
