/*
 * fuzz_audit.c: libFuzzer target for the audit log's record parser
 * (audit_scan_buffer, the code that reads segment files at recovery, in
 * cursors and in cpx-audit). The input is a segment file's content. It is
 * parsed twice: as is, and with every frame's chain hash recomputed, so
 * that mutated records get past the hash check into the protobuf decoder
 * and the sequence, torn-tail and later-record logic.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "audit.h"
#include "log.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static uint32_t
be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

/* Recompute the hash of every whole frame, numbering records from 1. */
static void
fix_chain(uint8_t *buf, size_t len)
{
	EVP_MD_CTX	*md;
	uint8_t		 h[AUDIT_HASH_LEN] = { 0 }, hdr[12];
	size_t		 pos = 0;
	uint64_t	 seq = 1;
	uint32_t	 rl;
	unsigned int	 hl;
	int		 i;

	if ((md = EVP_MD_CTX_new()) == NULL)
		return;
	while (len - pos >= 8 + AUDIT_HASH_LEN) {
		rl = be32(buf + pos + 4);
		if (rl > AUDIT_MAX_RECORD ||
		    rl > len - pos - 8 - AUDIT_HASH_LEN)
			break;
		for (i = 0; i < 8; i++)
			hdr[i] = (uint8_t)(seq >> (56 - 8 * i));
		memcpy(hdr + 8, buf + pos + 4, 4);
		if (EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1 ||
		    EVP_DigestUpdate(md, h, sizeof(h)) != 1 ||
		    EVP_DigestUpdate(md, hdr, sizeof(hdr)) != 1 ||
		    EVP_DigestUpdate(md, buf + pos + 8, rl) != 1 ||
		    EVP_DigestFinal_ex(md, h, &hl) != 1)
			break;
		memcpy(buf + pos + 8 + rl, h, AUDIT_HASH_LEN);
		pos += 8 + (size_t)rl + AUDIT_HASH_LEN;
		seq++;
	}
	EVP_MD_CTX_free(md);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int	 init;
	uint8_t		*copy;
	uint64_t	 n;
	size_t		 good;
	char		 err[512];
	int		 r;

	if (!init) {
		log_init("fuzz_audit", LOG_LEVEL_ERROR);
		init = 1;
	}
	r = audit_scan_buffer(data, size, 1, NULL, &n, &good, err,
	    sizeof(err));
	if (r != -1 && good > size)
		abort();
	if ((copy = malloc(size + 1)) == NULL)
		return 0;
	memcpy(copy, data, size);
	fix_chain(copy, size);
	r = audit_scan_buffer(copy, size, 1, NULL, &n, &good, err,
	    sizeof(err));
	/* A clean result must account for every byte. */
	if (r == 0 && good != size)
		abort();
	if (r == 1 && good >= size)
		abort();
	free(copy);
	return 0;
}
