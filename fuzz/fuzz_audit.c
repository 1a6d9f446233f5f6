/*
 * fuzz_audit.c: libFuzzer target for the audit log's record parser
 * (audit_scan_buffer, the code that reads segment files at recovery, in
 * cursors and in cpx-audit). The input is a segment file's content. It is
 * parsed three times: as is, with every frame's chain hash recomputed
 * (chain v2), so that mutated records get past the hash check into the
 * protobuf decoder and the sequence, torn-tail and later-record logic,
 * and with the first frame hashed as cpx 0.1 did (chain v1), which must
 * be refused, never read as records.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "audit.h"
#include "chain.h"
#include "log.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static uint32_t
be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

/*
 * Recompute the hash of every whole frame, numbering records from 1,
 * with chain v2 (lib/chain.h), or with chain v1 for the first frame only
 * (v1), so that the recognition of a cpx 0.1 log is reached too.
 */
static void
fix_chain(uint8_t *buf, size_t len, int v1)
{
	EVP_MD_CTX	*md;
	uint8_t		 h[AUDIT_HASH_LEN] = { 0 };
	size_t		 pos = 0;
	uint64_t	 seq = 1;
	uint32_t	 rl;
	int		 rc;

	if ((md = EVP_MD_CTX_new()) == NULL)
		return;
	if (EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
		goto done;
	while (len - pos >= 8 + AUDIT_HASH_LEN) {
		rl = be32(buf + pos + 4);
		if (rl > AUDIT_MAX_RECORD ||
		    rl > len - pos - 8 - AUDIT_HASH_LEN)
			break;
		if (v1 && seq == 1)
			rc = chain_step_v1(md, h, seq, buf + pos + 8, rl, h);
		else
			rc = chain_hash_record(md, h, seq, buf + pos + 8, rl,
			    h);
		if (rc == -1)
			break;
		memcpy(buf + pos + 8 + rl, h, AUDIT_HASH_LEN);
		pos += 8 + (size_t)rl + AUDIT_HASH_LEN;
		seq++;
	}
done:
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
	fix_chain(copy, size, 0);
	r = audit_scan_buffer(copy, size, 1, NULL, &n, &good, err,
	    sizeof(err));
	/* A clean result must account for every byte. */
	if (r == 0 && good != size)
		abort();
	if (r == 1 && good >= size)
		abort();
	/* A v1 first record is refused as such, never cut as torn. */
	memcpy(copy, data, size);
	fix_chain(copy, size, 1);
	r = audit_scan_buffer(copy, size, 1, NULL, &n, &good, err,
	    sizeof(err));
	if (r == 0 && n > 0)
		abort();
	free(copy);
	return 0;
}
