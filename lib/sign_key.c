/*
 * sign_key.c: a node's signing key, checked once and then used for every
 * alert it signs.
 *
 * sign_key_new checks what sign_alert always checked (an ECDSA P-256 key
 * that belongs to the certificate sent with each alert), encodes the
 * certificate's DER once and keeps an EVP_PKEY_CTX set up for ECDSA over
 * SHA-256. Signing one alert is then a SHA-256 of its bytes and one
 * EVP_PKEY_sign on that context: no algorithm fetch, no key check and
 * no certificate encoding per alert (together about a fifth of what a
 * publishing node spent per alert). The signature is the same as
 * EVP_DigestSign with SHA-256 makes (DER ECDSA over the digest).
 *
 * A struct sign_key belongs to one thread at a time; it holds references
 * to the key and the certificate, not copies.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "cpx_limits.h"
#include "sign.h"

struct sign_key {
	EVP_PKEY	*key;		/* a reference */
	EVP_PKEY_CTX	*ctx;		/* EVP_PKEY_sign, SHA-256 digests */
	EVP_MD		*sha256;	/* fetched once; NULL: SHA256() */
	uint8_t		*der;		/* the certificate, sent with each */
	size_t		 derlen;
};

struct sign_key *
sign_key_new(EVP_PKEY *key, X509 *cert, char *err, size_t errlen)
{
	struct sign_key	*sk;
	uint8_t		*p;
	int		 derlen;

	if (errlen > 0)
		err[0] = '\0';
	/* Sign only with a P-256 key that belongs to the certificate sent. */
	if (key == NULL || cert == NULL || !sign_key_is_p256(key)) {
		snprintf(err, errlen, "the signing key is not ECDSA P-256");
		ERR_clear_error();
		return NULL;
	}
	if (X509_check_private_key(cert, key) != 1) {
		snprintf(err, errlen, "the signing key does not belong to "
		    "the certificate");
		ERR_clear_error();
		return NULL;
	}
	if ((sk = calloc(1, sizeof(*sk))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if ((derlen = i2d_X509(cert, NULL)) <= 0 ||
	    (size_t)derlen > CPX_MAX_CERT) {
		snprintf(err, errlen, "the certificate does not encode within "
		    "%u bytes", CPX_MAX_CERT);
		goto fail;
	}
	if ((sk->der = malloc((size_t)derlen)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	p = sk->der;
	if (i2d_X509(cert, &p) != derlen) {
		snprintf(err, errlen, "the certificate does not encode");
		goto fail;
	}
	sk->derlen = (size_t)derlen;
	if (EVP_PKEY_up_ref(key) != 1) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	sk->key = key;
	sk->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	if ((sk->ctx = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL)) == NULL ||
	    EVP_PKEY_sign_init(sk->ctx) != 1 ||
	    EVP_PKEY_CTX_set_signature_md(sk->ctx, EVP_sha256()) != 1) {
		snprintf(err, errlen, "cannot set up ECDSA P-256 signing");
		goto fail;
	}
	ERR_clear_error();
	return sk;
fail:
	ERR_clear_error();
	sign_key_free(&sk);
	return NULL;
}

void
sign_sha256(const EVP_MD *md, const uint8_t *p, size_t n, uint8_t out[32])
{
	if (md == NULL || EVP_Digest(p, n, out, NULL, md, NULL) != 1)
		SHA256(p, n, out);
}

void
sign_key_free(struct sign_key **skp)
{
	struct sign_key *sk = *skp;

	if (sk == NULL)
		return;
	EVP_PKEY_CTX_free(sk->ctx);
	EVP_MD_free(sk->sha256);
	EVP_PKEY_free(sk->key);
	free(sk->der);
	free(sk);
	*skp = NULL;
}

int
sign_key_bytes(struct sign_key *sk, const uint8_t *msg, size_t len,
    uint8_t **sig, size_t *siglen)
{
	uint8_t	 digest[SHA256_DIGEST_LENGTH];
	uint8_t	*out = NULL;
	size_t	 outlen = CPX_MAX_SIGNATURE;
	int	 rc = -1;

	*sig = NULL;
	*siglen = 0;
	if (sk == NULL || msg == NULL || len == 0)
		return -1;
	sign_sha256(sk->sha256, msg, len, digest);
	/* Room for the largest signature allowed: one call, no size query. */
	if ((out = malloc(outlen)) == NULL ||
	    EVP_PKEY_sign(sk->ctx, out, &outlen, digest,
	    sizeof(digest)) != 1 || outlen == 0 ||
	    outlen > CPX_MAX_SIGNATURE)
		goto done;
	*sig = out;
	*siglen = outlen;
	out = NULL;
	rc = 0;
done:
	free(out);
	ERR_clear_error();
	return rc;
}

/* out's three parts empty, nothing to free. */
static void
signed_alert_empty(Cpx__SignedAlert *out)
{
	out->alert.data = NULL;
	out->alert.len = 0;
	out->signature.data = NULL;
	out->signature.len = 0;
	out->signer_cert.data = NULL;
	out->signer_cert.len = 0;
}

void
sign_signed_alert_clear(Cpx__SignedAlert *sa)
{
	if (sa == NULL)
		return;
	free(sa->alert.data);
	free(sa->signature.data);
	free(sa->signer_cert.data);
	signed_alert_empty(sa);
}

int
sign_key_alert(struct sign_key *sk, const uint8_t *alert_bytes, size_t len,
    Cpx__SignedAlert *out)
{
	signed_alert_empty(out);
	if (sk == NULL || alert_bytes == NULL || len == 0 ||
	    len > CPX_MAX_ALERT)
		return -1;
	if ((out->alert.data = malloc(len)) == NULL ||
	    (out->signer_cert.data = malloc(sk->derlen)) == NULL)
		goto fail;
	memcpy(out->alert.data, alert_bytes, len);
	out->alert.len = len;
	memcpy(out->signer_cert.data, sk->der, sk->derlen);
	out->signer_cert.len = sk->derlen;
	if (sign_key_bytes(sk, alert_bytes, len, &out->signature.data,
	    &out->signature.len) == -1)
		goto fail;
	return 0;
fail:
	sign_signed_alert_clear(out);
	return -1;
}

int
sign_alert(EVP_PKEY *key, X509 *cert, const uint8_t *alert_bytes, size_t len,
    Cpx__SignedAlert *out)
{
	struct sign_key	*sk;
	char		 err[128];
	int		 rc;

	if ((sk = sign_key_new(key, cert, err, sizeof(err))) == NULL) {
		signed_alert_empty(out);
		return -1;
	}
	rc = sign_key_alert(sk, alert_bytes, len, out);
	sign_key_free(&sk);
	return rc;
}

int
sign_bytes(EVP_PKEY *key, X509 *cert, const uint8_t *msg, size_t len,
    uint8_t **sig, size_t *siglen)
{
	struct sign_key	*sk;
	char		 err[128];
	int		 rc;

	*sig = NULL;
	*siglen = 0;
	if ((sk = sign_key_new(key, cert, err, sizeof(err))) == NULL)
		return -1;
	rc = sign_key_bytes(sk, msg, len, sig, siglen);
	sign_key_free(&sk);
	return rc;
}
