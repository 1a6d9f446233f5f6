/*
 * sign.h: signing alerts and verifying them end to end against the network
 * CA and CRL, without trusting whoever carried them.
 */
#ifndef CPX_SIGN_H
#define CPX_SIGN_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "identity.h"
#include "proto/cpx.pb-c.h"

struct trust;	/* the network CA and, optionally, its CRL */

/*
 * Load the CA certificate (PEM) and, if crl_file is not NULL, the CRL
 * (PEM), which must be signed by the CA and within its validity window
 * (thisUpdate passed, nextUpdate not yet). Returns an owned trust (free
 * with trust_free) or NULL with err[] naming the file at fault.
 */
struct trust *trust_new(const char *ca_file, const char *crl_file,
	    char *err, size_t errlen);
void	trust_free(struct trust **t);

/*
 * Replace the CRL (SIGHUP): load crl_file (PEM, must be signed by the CA;
 * NULL = no CRL) and rebuild the store. Refused, the old store left in
 * place, when the new CRL is out of its validity window (nextUpdate
 * passed, thisUpdate in the future), has a lower CRL number than the one
 * in force, or when crl_file is NULL while a CRL is in force. Returns 0,
 * or -1 with err[] naming the file and why. Must not run while another
 * thread verifies with t: the owner of t serializes them.
 */
int	trust_reload_crl(struct trust *t, const char *crl_file, char *err,
	    size_t errlen) __attribute__((warn_unused_result));

/*
 * "CRL number N, next update YYYY-MM-DD HH:MM:SS UTC" of the CRL in
 * force into buf. Returns 0, or -1 ("no CRL") if t has none.
 */
int	trust_crl_describe(const struct trust *t, char *buf, size_t len)
	    __attribute__((warn_unused_result));

/* The X509_STORE inside (CA and CRL flags set); owned by t. */
X509_STORE *trust_store(struct trust *t);

/*
 * Verify cert chains to the CA, is within its validity period and, if a
 * CRL was loaded, is not revoked. Returns 0, or -1 with *reason
 * (CPX__REASON__REASON_BAD_SIGNER, _SIGNER_REVOKED, or _CRL_STALE when
 * the CRL in force has expired since it was loaded) and why[].
 */
int	trust_verify_cert(struct trust *t, X509 *cert, int *reason, char *why,
	    size_t whylen) __attribute__((warn_unused_result));

/*
 * trust_verify_cert for a broker certificate: chains to the CA, current,
 * not revoked, and names serverAuth in its extended key usage (a node's
 * certificate, clientAuth only, is refused). Returns 0, or -1 with
 * *reason and why[].
 */
int	trust_verify_broker_cert(struct trust *t, X509 *cert, int *reason,
	    char *why, size_t whylen) __attribute__((warn_unused_result));

/*
 * Sign alert_bytes (a serialized Alert) with key (ECDSA P-256, SHA-256).
 * Fills out->alert (a copy of the bytes), out->signature and
 * out->signer_cert (DER of cert), all malloc'd and owned by out; free them
 * with sign_signed_alert_clear(). Returns 0 or -1.
 */
int	sign_alert(EVP_PKEY *key, X509 *cert, const uint8_t *alert_bytes,
	    size_t len, Cpx__SignedAlert *out)
	    __attribute__((warn_unused_result));
void	sign_signed_alert_clear(Cpx__SignedAlert *sa);

/* 1 if key is an EC key on P-256, the only signature key of the network. */
int	sign_key_is_p256(const EVP_PKEY *key);
/* out = SHA-256 of p[0..n) with md (a fetched SHA256), or SHA256() if NULL. */
void	sign_sha256(const EVP_MD *md, const uint8_t *p, size_t n,
	    uint8_t out[32]);

/*
 * A node's signing key for many signatures (sign_key.c): the checks of
 * sign_alert made once, the certificate's DER encoded once, a context
 * ready to sign. sign_key_new takes references to key and cert; NULL with
 * err[] if the key is not P-256 or not the certificate's. One thread at a
 * time. sign_key_alert is sign_alert with it, sign_key_bytes sign_bytes.
 */
struct sign_key;
struct sign_key *sign_key_new(EVP_PKEY *key, X509 *cert, char *err,
	    size_t errlen);
void	sign_key_free(struct sign_key **skp);
int	sign_key_alert(struct sign_key *sk, const uint8_t *alert_bytes,
	    size_t len, Cpx__SignedAlert *out)
	    __attribute__((warn_unused_result));
int	sign_key_bytes(struct sign_key *sk, const uint8_t *msg, size_t len,
	    uint8_t **sig, size_t *siglen) __attribute__((warn_unused_result));

/*
 * Sign msg[0..len) (len > 0) with key: ECDSA P-256 over SHA-256, DER
 * signature, as sign_alert signs an alert, and only with a P-256 key
 * that belongs to cert. For bytes that are no alert (the audit log's
 * checkpoints). Returns 0 with *sig (malloc'd, owned by the caller: free)
 * and *siglen, or -1 with *sig NULL and *siglen 0.
 */
int	sign_bytes(EVP_PKEY *key, X509 *cert, const uint8_t *msg, size_t len,
	    uint8_t **sig, size_t *siglen) __attribute__((warn_unused_result));

/*
 * Verify sig (DER, at most CPX_MAX_SIGNATURE bytes) over msg[0..len)
 * with the key of cert, which must be ECDSA P-256. Only the signature:
 * whether cert is to be trusted is the caller's question. Returns 0, or
 * -1 with why[] ("key is not ECDSA P-256", "signature does not verify").
 */
int	sign_verify_bytes(X509 *cert, const uint8_t *msg, size_t len,
	    const uint8_t *sig, size_t siglen, char *why, size_t whylen)
	    __attribute__((warn_unused_result));

/*
 * Verify a SignedAlert end to end: sizes within limits, signer_cert
 * decodes and verifies against t (chain, validity, CRL), the signature
 * over alert bytes verifies with its key, the alert bytes decode. On
 * success returns 0, *alert_out (owned by the caller, free with
 * cpx__alert__free_unpacked) and *signer (identity from signer_cert). It
 * does not check origin == signer country: callers do (the broker
 * with REASON_ORIGIN_MISMATCH, the subscriber by refusing to show it);
 * sign_verify_alert_origin() is that check. On failure returns -1 with
 * *reason, why[] set and outputs zeroed.
 */
int	sign_verify_alert(struct trust *t, const Cpx__SignedAlert *sa,
	    Cpx__Alert **alert_out, struct identity *signer, int *reason,
	    char *why, size_t whylen) __attribute__((warn_unused_result));

/*
 * sign_verify_alert for an alert from history (replay, offline audit):
 * if the signer certificate has expired since, the chain is checked as of
 * the alert's issue time instead, so old alerts stay verifiable once a
 * node's certificate is renewed. A revoked certificate is refused
 * whenever it was revoked. The trade-off: whoever holds an expired
 * node key could sign a backdated alert; the broker never accepts one
 * live (it checks now), and cpx-audit shows where each was recorded.
 */
int	sign_verify_alert_history(struct trust *t, const Cpx__SignedAlert *sa,
	    Cpx__Alert **alert_out, struct identity *signer, int *reason,
	    char *why, size_t whylen) __attribute__((warn_unused_result));

/* 0 if a->origin equals signer->country, else -1 with reason and why. */
int	sign_verify_alert_origin(const Cpx__Alert *a,
	    const struct identity *signer, int *reason, char *why,
	    size_t whylen) __attribute__((warn_unused_result));

/* Lower-case hex of p[0..n) into out, which holds 2 * n + 1 bytes. */
void	sign_hex(const uint8_t *p, size_t n, char *out);

/* SHA-256 fingerprint of a DER certificate (for logs), as hex[65]. */
void	sign_fingerprint(const uint8_t *der, size_t len, char hex[65]);

#endif
