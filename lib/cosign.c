/*
 * cosign.c: checkpoint and cosignature bytes, leaf entries and the shape
 * checks of witness messages (cosign.h). Signatures go through
 * lib/sign.c, the one rule for ECDSA P-256 in cpx.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>

#include "cosign.h"
#include "cpx_limits.h"
#include "errfmt.h"
#include "sign.h"

static void
put_be(uint8_t *p, uint64_t v, int n)
{
	int	i;

	for (i = n - 1; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}

void
cosign_checkpoint_msg(uint8_t out[COSIGN_CKPT_MSG_LEN], uint64_t seq,
    const uint8_t hash[CHAIN_HASH_LEN], int64_t time)
{
	memcpy(out, COSIGN_CKPT_TAG, 17);
	put_be(out + 17, seq, 8);
	memcpy(out + 25, hash, CHAIN_HASH_LEN);
	put_be(out + 25 + CHAIN_HASH_LEN, (uint64_t)time, 8);
}

void
cosign_msg(uint8_t out[COSIGN_MSG_LEN], uint64_t seq,
    const uint8_t hash[CHAIN_HASH_LEN], int64_t time,
    const uint8_t cert_hash[32])
{
	memcpy(out, COSIGN_TAG, 13);
	put_be(out + 13, seq, 8);
	memcpy(out + 21, hash, CHAIN_HASH_LEN);
	put_be(out + 21 + CHAIN_HASH_LEN, (uint64_t)time, 8);
	memcpy(out + 29 + CHAIN_HASH_LEN, cert_hash, 32);
}

void
cosign_leaf_put(uint8_t out[COSIGN_LEAF_LEN], uint32_t len,
    const uint8_t leaf[CHAIN_HASH_LEN])
{
	put_be(out, len, 4);
	memcpy(out + 4, leaf, CHAIN_HASH_LEN);
}

void
cosign_leaf_get(const uint8_t in[COSIGN_LEAF_LEN], uint32_t *len,
    uint8_t leaf[CHAIN_HASH_LEN])
{
	*len = (uint32_t)in[0] << 24 | (uint32_t)in[1] << 16 |
	    (uint32_t)in[2] << 8 | in[3];
	memcpy(leaf, in + 4, CHAIN_HASH_LEN);
}

/* A DER certificate that is exactly one certificate, or NULL. */
static X509 *
cert_of(const ProtobufCBinaryData *der)
{
	const uint8_t	*p = der->data;
	X509		*x;

	if (der->len == 0 || der->len > CPX_MAX_CERT)
		return NULL;
	if ((x = d2i_X509(NULL, &p, (long)der->len)) == NULL)
		return NULL;
	if (p != der->data + der->len) {
		X509_free(x);
		return NULL;
	}
	return x;
}

int
cosign_verify_checkpoint(const Cpx__AuditRecord *ck, X509 **certp,
    uint8_t cert_hash[32], char *why, size_t whylen)
{
	X509	*x = NULL;
	uint8_t	 msg[COSIGN_CKPT_MSG_LEN];
	char	 w[128];

	*certp = NULL;
	memset(cert_hash, 0, 32);
	if (ck->kind != CPX__RECORD_KIND__RECORD_CHECKPOINT)
		return errf(why, whylen, "record %llu is not a checkpoint",
		    (unsigned long long)ck->seq);
	if (ck->checkpoint_hash.len != CHAIN_HASH_LEN)
		return errf(why, whylen, "checkpoint at record %llu has a "
		    "hash of %zu bytes, not %u", (unsigned long long)ck->seq,
		    ck->checkpoint_hash.len, CHAIN_HASH_LEN);
	if ((x = cert_of(&ck->checkpoint_cert)) == NULL) {
		ERR_clear_error();
		return errf(why, whylen, "checkpoint at record %llu: its "
		    "certificate does not decode", (unsigned long long)ck->seq);
	}
	cosign_checkpoint_msg(msg, ck->checkpoint_seq,
	    ck->checkpoint_hash.data, ck->time);
	if (sign_verify_bytes(x, msg, sizeof(msg),
	    ck->checkpoint_signature.data, ck->checkpoint_signature.len, w,
	    sizeof(w)) == -1 ||
	    EVP_Digest(ck->checkpoint_cert.data, ck->checkpoint_cert.len,
	    cert_hash, NULL, EVP_sha256(), NULL) != 1) {
		X509_free(x);
		ERR_clear_error();
		memset(cert_hash, 0, 32);
		return errf(why, whylen, "checkpoint at record %llu: "
		    "signature: %s", (unsigned long long)ck->seq, w);
	}
	*certp = x;
	return 0;
}

int
cosign_verify_record(const Cpx__AuditRecord *cs, X509 **certp, char *why,
    size_t whylen)
{
	X509	*x;
	uint8_t	 msg[COSIGN_MSG_LEN];
	char	 w[128];

	*certp = NULL;
	if (cs->cosigned_hash.len != CHAIN_HASH_LEN ||
	    cs->cosigned_cert_hash.len != 32)
		return errf(why, whylen, "cosignature at record %llu: hash "
		    "fields are not 32 bytes", (unsigned long long)cs->seq);
	if ((x = cert_of(&cs->witness_cert)) == NULL) {
		ERR_clear_error();
		return errf(why, whylen, "cosignature at record %llu: the "
		    "witness certificate does not decode",
		    (unsigned long long)cs->seq);
	}
	cosign_msg(msg, cs->cosigned_seq, cs->cosigned_hash.data,
	    cs->cosigned_time, cs->cosigned_cert_hash.data);
	if (sign_verify_bytes(x, msg, sizeof(msg), cs->witness_signature.data,
	    cs->witness_signature.len, w, sizeof(w)) == -1) {
		X509_free(x);
		ERR_clear_error();
		return errf(why, whylen, "cosignature at record %llu: %s",
		    (unsigned long long)cs->seq, w);
	}
	*certp = x;
	return 0;
}

static int
bad_len(size_t len, size_t want_max, int exact)
{
	return exact ? len != 0 && len != want_max : len > want_max;
}

int
cosign_check_record(const Cpx__AuditRecord *r, char *why, size_t whylen)
{
	if (r->witness_cert.len > CPX_MAX_CERT ||
	    r->witness_signature.len > CPX_MAX_SIGNATURE ||
	    bad_len(r->cosigned_hash.len, CHAIN_HASH_LEN, 1) ||
	    bad_len(r->cosigned_cert_hash.len, 32, 1) ||
	    bad_len(r->alarm_hash.len, CHAIN_HASH_LEN, 1))
		return errf(why, whylen, "audit record witness fields over "
		    "their sizes");
	return 0;
}

int
cosign_check_body(const Cpx__Envelope *env, int *reason, char *why,
    size_t whylen)
{
	const Cpx__WitnessCheckpoint	*wc;
	const Cpx__Cosign		*cs;
	const Cpx__WitnessAlarm		*al;
	size_t				 i;

	*reason = CPX__REASON__REASON_MALFORMED;
	switch (env->body_case) {
	case CPX__ENVELOPE__BODY_WITNESS_REQUEST:
	case CPX__ENVELOPE__BODY_COSIGN_ACK:
		return 0;
	case CPX__ENVELOPE__BODY_WITNESS_CHECKPOINT:
		wc = env->witness_checkpoint;
		if (wc->checkpoint == NULL)
			return errf(why, whylen, "witness checkpoint without "
			    "the checkpoint");
		if (wc->leaves.len % COSIGN_LEAF_LEN != 0 ||
		    wc->leaves.len / COSIGN_LEAF_LEN > COSIGN_MAX_LEAVES)
			return errf(why, whylen, "witness checkpoint leaves: "
			    "%zu bytes, not a multiple of %u up to %u entries",
			    wc->leaves.len, COSIGN_LEAF_LEN, COSIGN_MAX_LEAVES);
		if (wc->n_cosignatures > COSIGN_MAX_PEERS)
			return errf(why, whylen, "witness checkpoint carries "
			    "%zu cosignatures, over %u", wc->n_cosignatures,
			    COSIGN_MAX_PEERS);
		if (cosign_check_record(wc->checkpoint, why, whylen) == -1)
			return -1;
		for (i = 0; i < wc->n_cosignatures; i++)
			if (wc->cosignatures[i] == NULL ||
			    cosign_check_record(wc->cosignatures[i], why,
			    whylen) == -1)
				return errf(why, whylen, "witness checkpoint: "
				    "cosignature %zu malformed", i);
		return 0;
	case CPX__ENVELOPE__BODY_COSIGN:
		cs = env->cosign;
		*reason = CPX__REASON__REASON_BAD_REQUEST;
		if (cs->checkpoint_hash.len != CHAIN_HASH_LEN)
			return errf(why, whylen, "cosign: checkpoint_hash is "
			    "%zu bytes, not %u", cs->checkpoint_hash.len,
			    CHAIN_HASH_LEN);
		if (cs->signature.len == 0 ||
		    cs->signature.len > CPX_MAX_SIGNATURE)
			return errf(why, whylen, "cosign: signature is %zu "
			    "bytes, not 1 to %u", cs->signature.len,
			    CPX_MAX_SIGNATURE);
		return 0;
	case CPX__ENVELOPE__BODY_WITNESS_ALARM:
		al = env->witness_alarm;
		*reason = CPX__REASON__REASON_BAD_REQUEST;
		if (al->text == NULL ||
		    strnlen(al->text, COSIGN_MAX_ALARM_TEXT + 1) >
		    COSIGN_MAX_ALARM_TEXT)
			return errf(why, whylen, "witness alarm: text over "
			    "%u bytes", COSIGN_MAX_ALARM_TEXT);
		if (bad_len(al->have_hash.len, CHAIN_HASH_LEN, 1) ||
		    bad_len(al->seen_hash.len, CHAIN_HASH_LEN, 1))
			return errf(why, whylen, "witness alarm: a hash is not "
			    "%u bytes", CHAIN_HASH_LEN);
		return 0;
	default:
		return errf(why, whylen, "not a witness message");
	}
}
