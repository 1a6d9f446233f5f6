/*
 * audit_checkpoint.c: signed checkpoints in the audit log (audit.h).
 *
 * A checkpoint record states "the chain up to record seq ends in hash, at
 * time", signed by the broker's key (lib/sign.c: sign_bytes, the same
 * rule as for alerts), so an offline verifier (audit_verify.c) can tell
 * a log the broker wrote from one rewritten and re-chained by someone
 * without that key. The broker, cpx-audit and every witness build the
 * signed bytes with lib/cosign.c (cosign_checkpoint_msg), so they cannot
 * drift apart; the file log and the PostgreSQL store
 * (audit_pg_batch.c) fill theirs with one function, audit_checkpoint_fill.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>

#include "audit.h"
#include "audit_impl.h"
#include "audit_pg.h"
#include "cosign.h"
#include "cpx_limits.h"
#include "log.h"
#include "sign.h"

int
audit_cert_cn(X509 *cert, char *out, size_t len)
{
	X509_NAME	*n = X509_get_subject_name(cert);
	int		 l;

	if (n == NULL)
		return -1;
	l = X509_NAME_get_text_by_NID(n, NID_commonName, out, (int)len);
	/* An embedded NUL would make one name pass for another. */
	if (l <= 0 || (size_t)l >= len || strlen(out) != (size_t)l)
		return -1;
	return 0;
}

int
audit_checkpoint_verify(const Cpx__AuditRecord *rec, const uint8_t *prev,
    X509 **xp, char *why, size_t whylen)
{
	X509		*x = NULL;
	const uint8_t	*p;
	uint8_t		 msg[COSIGN_CKPT_MSG_LEN];
	char		 w[128];
	int		 ret = -1;

	*xp = NULL;
	p = rec->checkpoint_cert.data;
	if (rec->checkpoint_cert.len == 0 ||
	    rec->checkpoint_cert.len > CPX_MAX_CERT ||
	    (x = d2i_X509(NULL, &p, (long)rec->checkpoint_cert.len)) == NULL ||
	    p != rec->checkpoint_cert.data + rec->checkpoint_cert.len) {
		audit_seterr(why, whylen, "checkpoint certificate does not "
		    "decode");
		goto done;
	}
	/* The same rule as for alerts (lib/sign.c): P-256, DER, bounded. */
	cosign_checkpoint_msg(msg, rec->checkpoint_seq, prev, rec->time);
	if (sign_verify_bytes(x, msg, sizeof(msg),
	    rec->checkpoint_signature.data, rec->checkpoint_signature.len, w,
	    sizeof(w)) == -1) {
		audit_seterr(why, whylen, "checkpoint %s", w);
		goto done;
	}
	*xp = x;
	x = NULL;
	ret = 0;
done:
	X509_free(x);
	return ret;
}

int
audit_checkpoint_fill(Cpx__AuditRecord *rec, uint64_t ckpt_seq,
    uint8_t *hash, int64_t t, EVP_PKEY *key, X509 *cert, uint8_t *cert_der,
    size_t cert_len, uint8_t **sigp)
{
	uint8_t		msg[COSIGN_CKPT_MSG_LEN];
	size_t		siglen = 0;

	*sigp = NULL;
	rec->kind = CPX__RECORD_KIND__RECORD_CHECKPOINT;
	rec->time = t;
	rec->checkpoint_seq = ckpt_seq;
	cosign_checkpoint_msg(msg, ckpt_seq, hash, t);
	if (sign_bytes(key, cert, msg, sizeof(msg), sigp, &siglen) == -1)
		return -1;
	rec->checkpoint_hash.data = hash;
	rec->checkpoint_hash.len = AUDIT_HASH_LEN;
	rec->checkpoint_signature.data = *sigp;
	rec->checkpoint_signature.len = siglen;
	rec->checkpoint_cert.data = cert_der;
	rec->checkpoint_cert.len = cert_len;
	return 0;
}

int
audit_checkpoint(struct audit *a)
{
	Cpx__AuditRecord	 rec = CPX__AUDIT_RECORD__INIT;
	uint8_t			 hash[AUDIT_HASH_LEN];
	uint8_t			*sig = NULL;
	uint64_t		 seq;
	int			 ret = -1;

	if (a->pg != NULL)
		return audit_pg_checkpoint(a->pg);
	if (a->key == NULL) {
		log_warnx("audit: %s: no broker key to sign a checkpoint",
		    a->dir);
		return -1;
	}
	memcpy(hash, a->pend_hash, AUDIT_HASH_LEN);
	if (audit_checkpoint_fill(&rec, a->pend_seq, hash,
	    audit_next_time(a), a->key, a->cert, a->cert_der, a->cert_len,
	    &sig) == -1) {
		log_warnx("audit: %s: signing a checkpoint failed (check key "
		    "and cert: the key must be ECDSA P-256 and the "
		    "certificate's)", a->dir);
		goto done;
	}
	if (audit_append(a, &rec, &seq) == -1)
		goto done;
	/* Signed here, by this broker: once committed the mark trusts it. */
	a->pend_trusted = seq;
	memcpy(a->pend_trusted_hash, hash, AUDIT_HASH_LEN);
	a->since_checkpoint = 0;
	ret = 0;
done:
	free(sig);
	return ret;
}
