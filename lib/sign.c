/*
 * sign.c: end-to-end signatures on alerts. The origin signs the serialized
 * Alert with its node key (ECDSA P-256 over SHA-256); anyone holding the
 * network CA (and CRL) checks it without trusting the broker or any other
 * carrier. sign_verify_bytes does the same for bytes that are not an
 * alert (the broker's audit checkpoints). Signing is in sign_key.c, so
 * there is one place that signs and one rule for which keys may.
 *
 * Owns struct trust: the CA certificate and an X509_STORE built from it
 * and, optionally, the CRL. The store is rebuilt whole on a CRL reload, so
 * a failed reload leaves the old one in place.
 *
 * The trust also remembers signer certificates it has verified recently
 * (by SHA-256 of their DER): checking the chain costs a second ECDSA
 * verification per alert, and a node signs every alert with the same
 * certificate. An entry is used for at most SIGNER_CACHE_TTL seconds (so an
 * expiry is noticed), the whole cache is dropped when the CRL changes
 * (so a revocation is noticed at once), and it is not used at all once
 * the CRL in force has expired. A cached signer keeps an EVP_PKEY_CTX
 * set up to verify with its key, so a verification is a SHA-256 and one
 * EVP_PKEY_verify. A trust belongs to one thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "cpx_limits.h"
#include "identity.h"
#include "sign.h"

#define SIGNER_CACHE_SLOTS	256
#define SIGNER_CACHE_TTL	60	/* seconds */

struct signer_slot {
	uint8_t		 hash[32];	/* SHA-256 of the certificate DER */
	EVP_PKEY	*pub;		/* NULL: slot empty */
	EVP_PKEY_CTX	*vctx;		/* verifies with pub; NULL: not yet */
	struct identity	 id;
	time_t		 checked;	/* when the chain was verified */
};

struct trust {
	X509			*ca;
	X509_STORE		*store;
	/* Of the CRL in force; NULL: no CRL (or it has no number). */
	ASN1_INTEGER		*crl_number;
	ASN1_TIME		*crl_next;	/* its nextUpdate */
	time_t			 crl_next_at;	/* the same, if crl_next_conv */
	int			 crl_next_conv;
	struct signer_slot	 cache[SIGNER_CACHE_SLOTS];
	EVP_MD			*sha256;	/* fetched once; NULL: SHA256() */
};

static void
cache_clear(struct trust *t)
{
	size_t i;

	for (i = 0; i < SIGNER_CACHE_SLOTS; i++) {
		EVP_PKEY_free(t->cache[i].pub);
		EVP_PKEY_CTX_free(t->cache[i].vctx);
		memset(&t->cache[i], 0, sizeof(t->cache[i]));
	}
}

/* The cached, still fresh entry for this certificate hash, or NULL. */
static struct signer_slot *
cache_find(struct trust *t, const uint8_t hash[32], time_t now)
{
	struct signer_slot *s = &t->cache[hash[0]];

	/*
	 * Once the CRL has expired, every signer goes back to the CRL check
	 * (X509_cmp_time's rule: expired at nextUpdate itself), compared as
	 * a time_t converted once, not as ASN.1 text on every alert.
	 */
	if (t->crl_next != NULL && (t->crl_next_conv ?
	    t->crl_next_at <= now : X509_cmp_time(t->crl_next, &now) < 0))
		return NULL;
	if (s->pub == NULL || now - s->checked >= SIGNER_CACHE_TTL ||
	    now < s->checked ||
	    CRYPTO_memcmp(s->hash, hash, sizeof(s->hash)) != 0)
		return NULL;
	return s;
}

/* The slot now holding pub, or NULL if it could not be kept. */
static struct signer_slot *
cache_put(struct trust *t, const uint8_t hash[32], EVP_PKEY *pub,
    const struct identity *id, time_t now)
{
	struct signer_slot *s = &t->cache[hash[0]];

	if (EVP_PKEY_up_ref(pub) != 1)
		return NULL;
	EVP_PKEY_free(s->pub);
	EVP_PKEY_CTX_free(s->vctx);
	s->vctx = NULL;
	memcpy(s->hash, hash, sizeof(s->hash));
	s->pub = pub;
	s->id = *id;
	s->checked = now;
	return s;
}

/*
 * 1 if sig (DER) is pub's ECDSA signature over SHA-256 of msg[0..len),
 * as EVP_DigestVerify with SHA-256 decides. With ctxp, *ctxp keeps the
 * context set up for pub for the next call (a cached signer): no
 * algorithm fetch per verification.
 */
static int
verify_sha256(EVP_PKEY *pub, EVP_PKEY_CTX **ctxp, const EVP_MD *md,
    const uint8_t *sig, size_t siglen, const uint8_t *msg, size_t len)
{
	EVP_PKEY_CTX	*ctx = ctxp != NULL ? *ctxp : NULL;
	uint8_t		 digest[SHA256_DIGEST_LENGTH];
	int		 ok;

	if (ctx == NULL) {
		if ((ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pub, NULL)) ==
		    NULL || EVP_PKEY_verify_init(ctx) != 1 ||
		    EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) != 1) {
			EVP_PKEY_CTX_free(ctx);
			return 0;
		}
		if (ctxp != NULL)
			*ctxp = ctx;
	}
	sign_sha256(md, msg, len, digest);
	ok = EVP_PKEY_verify(ctx, sig, siglen, digest, sizeof(digest)) == 1;
	if (ctxp == NULL)
		EVP_PKEY_CTX_free(ctx);
	return ok;
}

/* The last OpenSSL error as text, for err[]; clears the queue. */
static const char *
ossl_reason(char *buf, size_t len)
{
	unsigned long	e;

	e = ERR_peek_last_error();
	if (e == 0)
		snprintf(buf, len, "no detail");
	else
		ERR_error_string_n(e, buf, len);
	ERR_clear_error();
	return buf;
}

static X509 *
load_ca(const char *file, char *err, size_t errlen)
{
	FILE	*fp = NULL;
	X509	*ca = NULL;
	char	 e[256];

	if ((fp = fopen(file, "r")) == NULL) {
		snprintf(err, errlen, "%s: cannot open CA certificate", file);
		goto done;
	}
	if ((ca = PEM_read_X509(fp, NULL, NULL, NULL)) == NULL) {
		snprintf(err, errlen, "%s: not a PEM certificate: %s", file,
		    ossl_reason(e, sizeof(e)));
		goto done;
	}
	/* A leaf configured as the CA would make every peer "verified". */
	if (X509_check_ca(ca) == 0) {
		snprintf(err, errlen, "%s: certificate is not a CA", file);
		X509_free(ca);
		ca = NULL;
		goto done;
	}
done:
	if (fp != NULL)
		fclose(fp);
	return ca;
}

/* ASN1_TIME as "2026-12-01 10:00:00 UTC" into buf ("?" if unreadable). */
static void
time_text(const ASN1_TIME *at, char *buf, size_t len)
{
	struct tm tm;

	if (len > 0)
		buf[0] = '\0';
	if (at == NULL || ASN1_TIME_to_tm(at, &tm) != 1 ||
	    strftime(buf, len, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
		snprintf(buf, len, "?");
}

/*
 * A CRL is only evidence of what is revoked between its thisUpdate and
 * its nextUpdate. Out of that window it is refused by name: an expired
 * one makes OpenSSL refuse every certificate (which must not be taken
 * for a revocation), one "from the future" means a wrong clock or a
 * forged date.
 */
static int
crl_fresh(const X509_CRL *crl, const char *file, char *err, size_t errlen)
{
	const ASN1_TIME	*last, *next;
	char		 when[64];

	last = X509_CRL_get0_lastUpdate(crl);
	next = X509_CRL_get0_nextUpdate(crl);
	if (last == NULL || X509_cmp_current_time(last) == 0) {
		snprintf(err, errlen, "%s: CRL has no readable thisUpdate",
		    file);
		return -1;
	}
	if (X509_cmp_current_time(last) > 0) {
		time_text(last, when, sizeof(when));
		snprintf(err, errlen, "%s: CRL is not valid yet (thisUpdate "
		    "%s is in the future; check the clock)", file, when);
		return -1;
	}
	/* Without nextUpdate a CRL would stay "current" forever. */
	if (next == NULL || X509_cmp_current_time(next) == 0) {
		snprintf(err, errlen, "%s: CRL has no nextUpdate", file);
		return -1;
	}
	if (X509_cmp_current_time(next) < 0) {
		time_text(next, when, sizeof(when));
		snprintf(err, errlen, "%s: CRL expired at %s (its nextUpdate); "
		    "the CA must publish a new one", file, when);
		return -1;
	}
	return 0;
}

static X509_CRL *
load_crl(X509 *ca, const char *file, char *err, size_t errlen)
{
	FILE		*fp = NULL;
	X509_CRL	*crl = NULL;
	EVP_PKEY	*capub;
	char		 e[256];

	if ((fp = fopen(file, "r")) == NULL) {
		snprintf(err, errlen, "%s: cannot open CRL", file);
		goto done;
	}
	if ((crl = PEM_read_X509_CRL(fp, NULL, NULL, NULL)) == NULL) {
		snprintf(err, errlen, "%s: not a PEM CRL: %s", file,
		    ossl_reason(e, sizeof(e)));
		goto done;
	}
	/*
	 * Catch the wrong CRL at load, naming the file, rather than refusing
	 * every signer later with a CRL signature error.
	 */
	capub = X509_get0_pubkey(ca);
	if (capub == NULL || X509_CRL_verify(crl, capub) != 1) {
		snprintf(err, errlen, "%s: CRL is not signed by the CA", file);
		ERR_clear_error();
		X509_CRL_free(crl);
		crl = NULL;
		goto done;
	}
	if (crl_fresh(crl, file, err, errlen) == -1) {
		X509_CRL_free(crl);
		crl = NULL;
		goto done;
	}
done:
	if (fp != NULL)
		fclose(fp);
	return crl;
}

/* The CRL number extension of crl (owned by the caller) or NULL. */
static ASN1_INTEGER *
crl_number(X509_CRL *crl)
{
	ASN1_INTEGER	*n;

	n = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
	ERR_clear_error();
	return n;
}

/* Decimal text of n into buf ("none" for NULL). */
static void
number_text(const ASN1_INTEGER *n, char *buf, size_t len)
{
	BIGNUM	*bn = NULL;
	char	*dec = NULL;

	snprintf(buf, len, "none");
	if (n != NULL && (bn = ASN1_INTEGER_to_BN(n, NULL)) != NULL &&
	    (dec = BN_bn2dec(bn)) != NULL)
		snprintf(buf, len, "%s", dec);
	OPENSSL_free(dec);
	BN_free(bn);
}

/*
 * Refuse a CRL older than the one in force. CRLs only grow (a revocation
 * is never taken back), so putting back an older file, by mistake or by
 * someone who can write it, would silently un-revoke nodes. The CRL
 * number orders them; once one is in force, a CRL without a number
 * cannot be placed and is refused too.
 */
static int
crl_not_older(const struct trust *t, const ASN1_INTEGER *n,
    const char *file, char *err, size_t errlen)
{
	char	 have[64], got[64];

	if (t->crl_number == NULL)
		return 0;
	if (n != NULL && ASN1_INTEGER_cmp(n, t->crl_number) >= 0)
		return 0;
	number_text(t->crl_number, have, sizeof(have));
	number_text(n, got, sizeof(got));
	snprintf(err, errlen, "%s: CRL number %s is lower than that of the "
	    "CRL in force (%s): an older CRL would un-revoke nodes", file,
	    got, have);
	return -1;
}

/* Remember number and nextUpdate of the CRL now in force. */
static int
crl_remember(struct trust *t, X509_CRL *crl, ASN1_INTEGER **n)
{
	ASN1_TIME	*next = NULL;
	struct tm	 tm;

	if (crl != NULL && X509_CRL_get0_nextUpdate(crl) != NULL &&
	    (next = ASN1_STRING_dup(X509_CRL_get0_nextUpdate(crl))) == NULL)
		return -1;
	ASN1_INTEGER_free(t->crl_number);
	ASN1_TIME_free(t->crl_next);
	t->crl_number = *n;
	*n = NULL;
	t->crl_next = next;
	t->crl_next_conv = next != NULL && ASN1_TIME_to_tm(next, &tm) == 1 &&
	    (t->crl_next_at = timegm(&tm)) != (time_t)-1;
	return 0;
}

/* A new store trusting ca only, checking crl when given. */
static X509_STORE *
build_store(X509 *ca, X509_CRL *crl)
{
	X509_STORE	*store;

	if ((store = X509_STORE_new()) == NULL)
		return NULL;
	if (X509_STORE_add_cert(store, ca) != 1)
		goto fail;
	if (crl != NULL) {
		if (X509_STORE_add_crl(store, crl) != 1 ||
		    X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK) != 1)
			goto fail;
	}
	return store;
fail:
	X509_STORE_free(store);
	return NULL;
}

struct trust *
trust_new(const char *ca_file, const char *crl_file, char *err,
    size_t errlen)
{
	struct trust	*t = NULL;
	X509_CRL	*crl = NULL;
	ASN1_INTEGER	*n = NULL;

	if (errlen > 0)
		err[0] = '\0';
	if ((t = calloc(1, sizeof(*t))) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if ((t->ca = load_ca(ca_file, err, errlen)) == NULL)
		goto fail;
	/* SHA256() fetches its algorithm on every call. */
	t->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	if (crl_file != NULL &&
	    (crl = load_crl(t->ca, crl_file, err, errlen)) == NULL)
		goto fail;
	if ((t->store = build_store(t->ca, crl)) == NULL) {
		snprintf(err, errlen, "%s: cannot build the trust store",
		    ca_file);
		goto fail;
	}
	if (crl != NULL) {
		n = crl_number(crl);
		if (crl_remember(t, crl, &n) == -1) {
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
	}
	X509_CRL_free(crl);
	return t;
fail:
	ASN1_INTEGER_free(n);
	X509_CRL_free(crl);
	trust_free(&t);
	return NULL;
}

int
trust_reload_crl(struct trust *t, const char *crl_file, char *err,
    size_t errlen)
{
	X509_CRL	*crl = NULL;
	X509_STORE	*store = NULL;
	ASN1_INTEGER	*n = NULL;
	int		 rc = -1;

	if (errlen > 0)
		err[0] = '\0';
	/* Dropping the CRL altogether would un-revoke every node too. */
	if (crl_file == NULL && t->crl_next != NULL) {
		snprintf(err, errlen, "no CRL given, but one is in force");
		goto done;
	}
	if (crl_file != NULL &&
	    (crl = load_crl(t->ca, crl_file, err, errlen)) == NULL)
		goto done;
	if (crl != NULL) {
		n = crl_number(crl);
		if (crl_not_older(t, n, crl_file, err, errlen) == -1)
			goto done;
	}
	if ((store = build_store(t->ca, crl)) == NULL) {
		snprintf(err, errlen, "%s: cannot build the trust store",
		    crl_file != NULL ? crl_file : "(no CRL)");
		goto done;
	}
	if (crl_remember(t, crl, &n) == -1) {
		snprintf(err, errlen, "out of memory");
		goto done;
	}
	X509_STORE_free(t->store);
	t->store = store;
	store = NULL;
	cache_clear(t);		/* a signer may be revoked now */
	rc = 0;
done:
	X509_STORE_free(store);
	ASN1_INTEGER_free(n);
	X509_CRL_free(crl);
	return rc;
}

int
trust_crl_describe(const struct trust *t, char *buf, size_t len)
{
	char	num[64], next[64];

	if (len > 0)
		buf[0] = '\0';
	if (t == NULL || t->crl_next == NULL) {
		snprintf(buf, len, "no CRL");
		return -1;
	}
	number_text(t->crl_number, num, sizeof(num));
	time_text(t->crl_next, next, sizeof(next));
	snprintf(buf, len, "CRL number %s, next update %s", num, next);
	return 0;
}

void
trust_free(struct trust **t)
{
	if (t == NULL || *t == NULL)
		return;
	cache_clear(*t);
	EVP_MD_free((*t)->sha256);
	ASN1_INTEGER_free((*t)->crl_number);
	ASN1_TIME_free((*t)->crl_next);
	X509_STORE_free((*t)->store);
	X509_free((*t)->ca);
	free(*t);
	*t = NULL;
}

X509_STORE *
trust_store(struct trust *t)
{
	return t->store;
}

/*
 * Verify cert against the store as of at (0: now). *x509err gets
 * OpenSSL's verdict. Returns 0 or -1 with *reason and why[].
 */
static int
verify_chain_for(struct trust *t, X509 *cert, time_t at, int purpose,
    int *x509err, int *reason, char *why, size_t whylen)
{
	X509_STORE_CTX	*ctx = NULL;
	int		 err, rc = -1;

	*reason = CPX__REASON__REASON_BAD_SIGNER;
	*x509err = X509_V_ERR_UNSPECIFIED;
	if (whylen > 0)
		why[0] = '\0';
	if (t == NULL || cert == NULL) {
		snprintf(why, whylen, "no certificate");
		goto done;
	}
	if ((ctx = X509_STORE_CTX_new()) == NULL ||
	    X509_STORE_CTX_init(ctx, t->store, cert, NULL) != 1) {
		snprintf(why, whylen, "cannot set up verification");
		goto done;
	}
	/*
	 * A node's certificate is a TLS client certificate: refuse one made
	 * for another purpose (a server or code-signing certificate of the
	 * same CA) as a signer. A broker's (checkpoint signer) is a server
	 * certificate.
	 */
	if (X509_STORE_CTX_set_purpose(ctx, purpose) != 1) {
		snprintf(why, whylen, "cannot set verification purpose");
		goto done;
	}
	/*
	 * At a past time: the chain and CRL are checked as they stand, the
	 * signer's validity period against that time (a CRL published later
	 * would otherwise count as "not yet valid").
	 */
	if (at != 0) {
		X509_STORE_CTX_set_flags(ctx, X509_V_FLAG_NO_CHECK_TIME);
		if (X509_cmp_time(X509_get0_notBefore(cert), &at) > 0 ||
		    X509_cmp_time(X509_get0_notAfter(cert), &at) < 0) {
			*x509err = X509_V_ERR_CERT_HAS_EXPIRED;
			snprintf(why, whylen, "signer certificate was not valid "
			    "when the alert says it was issued");
			goto done;
		}
	}
	if (X509_verify_cert(ctx) != 1) {
		err = X509_STORE_CTX_get_error(ctx);
		*x509err = err;
		if (err == X509_V_ERR_CERT_REVOKED)
			*reason = CPX__REASON__REASON_SIGNER_REVOKED;
		/*
		 * Our CRL ran out, not the signer's luck: a reason of its
		 * own, which nobody may read as "revoked" or "bad signer".
		 */
		else if (err == X509_V_ERR_CRL_HAS_EXPIRED ||
		    err == X509_V_ERR_CRL_NOT_YET_VALID)
			*reason = CPX__REASON__REASON_CRL_STALE;
		snprintf(why, whylen, "signer certificate: %s",
		    X509_verify_cert_error_string(err));
		goto done;
	}
	*x509err = X509_V_OK;
	*reason = CPX__REASON__REASON_NONE;
	rc = 0;
done:
	ERR_clear_error();
	X509_STORE_CTX_free(ctx);
	return rc;
}

static int
verify_chain(struct trust *t, X509 *cert, time_t at, int *x509err,
    int *reason, char *why, size_t whylen)
{
	return verify_chain_for(t, cert, at, X509_PURPOSE_SSL_CLIENT, x509err,
	    reason, why, whylen);
}

int
trust_verify_cert(struct trust *t, X509 *cert, int *reason, char *why,
    size_t whylen)
{
	int x509err;

	return verify_chain(t, cert, 0, &x509err, reason, why, whylen);
}

int
trust_verify_broker_cert(struct trust *t, X509 *cert, int *reason, char *why,
    size_t whylen)
{
	int x509err;

	/*
	 * OpenSSL's purpose check passes a certificate without any extended
	 * key usage; a broker certificate must say serverAuth outright.
	 */
	if (cert == NULL ||
	    !(X509_get_extension_flags(cert) & EXFLAG_XKUSAGE) ||
	    !(X509_get_extended_key_usage(cert) & XKU_SSL_SERVER)) {
		*reason = CPX__REASON__REASON_BAD_SIGNER;
		snprintf(why, whylen, "not a broker certificate (no serverAuth "
		    "in its extended key usage)");
		return -1;
	}
	return verify_chain_for(t, cert, 0, X509_PURPOSE_SSL_SERVER, &x509err,
	    reason, why, whylen);
}

/*
 * For an alert from history whose signer certificate has expired since:
 * was the chain valid when the alert says it was issued? Revocation still
 * counts whenever it happened. The issue time comes from the alert bytes,
 * read before the signature is checked; the signature check that follows
 * covers them.
 */
static int
verify_chain_at_issue(struct trust *t, X509 *cert,
    const Cpx__SignedAlert *sa, int *reason, char *why, size_t whylen)
{
	Cpx__Alert *a;
	time_t at;
	int x509err;

	a = cpx__alert__unpack(NULL, sa->alert.len, sa->alert.data);
	if (a == NULL || a->issued_at <= 0) {
		if (a != NULL)
			cpx__alert__free_unpacked(a, NULL);
		return -1;
	}
	at = (time_t)(a->issued_at / 1000);
	cpx__alert__free_unpacked(a, NULL);
	return verify_chain(t, cert, at, &x509err, reason, why, whylen);
}

int
sign_key_is_p256(const EVP_PKEY *key)
{
	char	group[64];
	size_t	len = 0;

	if (key == NULL || !EVP_PKEY_is_a(key, "EC"))
		return 0;
	if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME,
	    group, sizeof(group), &len) != 1)
		return 0;
	return strcmp(group, SN_X9_62_prime256v1) == 0;
}

int
sign_verify_bytes(X509 *cert, const uint8_t *msg, size_t len,
    const uint8_t *sig, size_t siglen, char *why, size_t whylen)
{
	EVP_PKEY	*pub;
	int		 rc = -1;

	if (whylen > 0)
		why[0] = '\0';
	pub = cert != NULL ? X509_get0_pubkey(cert) : NULL;
	if (!sign_key_is_p256(pub)) {
		snprintf(why, whylen, "key is not ECDSA P-256");
		goto done;
	}
	/* Bounded before OpenSSL parses it. */
	if (msg == NULL || sig == NULL || siglen == 0 ||
	    siglen > CPX_MAX_SIGNATURE ||
	    !verify_sha256(pub, NULL, NULL, sig, siglen, msg, len)) {
		snprintf(why, whylen, "signature does not verify");
		goto done;
	}
	rc = 0;
done:
	ERR_clear_error();
	return rc;
}

/*
 * 1 if unpacking and repacking a gives back exactly bytes[0..len). The
 * signature covers the bytes, but everyone reads the decoded struct: a
 * string with an embedded NUL, or a field given twice (last one wins),
 * would make what is shown differ from what was signed and from what the
 * duplicate check compares.
 */
static int
alert_canonical(const Cpx__Alert *a, const uint8_t *bytes, size_t len)
{
	uint8_t	*buf;
	size_t	 size;
	int	 ok = 0;

	size = cpx__alert__get_packed_size(a);
	if (size != len)
		return 0;
	if ((buf = malloc(size > 0 ? size : 1)) == NULL)
		return 0;
	if (cpx__alert__pack(a, buf) == size && memcmp(buf, bytes, len) == 0)
		ok = 1;
	free(buf);
	return ok;
}

static int
verify_alert(struct trust *t, const Cpx__SignedAlert *sa, int history,
    Cpx__Alert **alert_out, struct identity *signer, int *reason, char *why,
    size_t whylen)
{
	X509			*cert = NULL;
	EVP_PKEY		*pub;
	Cpx__Alert		*a = NULL;
	struct signer_slot	*slot;
	const uint8_t		*p;
	uint8_t			 cert_hash[32];
	time_t			 now;
	int			 rc = -1, x509err, cacheable = 0;

	*alert_out = NULL;
	memset(signer, 0, sizeof(*signer));
	*reason = CPX__REASON__REASON_MALFORMED;
	if (whylen > 0)
		why[0] = '\0';

	/* Bounds before anything parses them. */
	if (sa == NULL || sa->alert.data == NULL || sa->alert.len == 0 ||
	    sa->signature.data == NULL || sa->signature.len == 0 ||
	    sa->signer_cert.data == NULL || sa->signer_cert.len == 0) {
		snprintf(why, whylen, "signed alert lacks alert, signature or "
		    "signer certificate");
		goto done;
	}
	if (sa->alert.len > CPX_MAX_ALERT ||
	    sa->signature.len > CPX_MAX_SIGNATURE ||
	    sa->signer_cert.len > CPX_MAX_CERT) {
		*reason = CPX__REASON__REASON_TOO_LARGE;
		snprintf(why, whylen, "signed alert part over its size limit");
		goto done;
	}

	/*
	 * The certificate must be exactly the DER given: trailing bytes
	 * would let two different signed alerts carry "the same" signer.
	 */
	*reason = CPX__REASON__REASON_BAD_SIGNER;
	sign_sha256(t->sha256, sa->signer_cert.data, sa->signer_cert.len,
	    cert_hash);
	now = time(NULL);
	if ((slot = cache_find(t, cert_hash, now)) != NULL) {
		pub = slot->pub;
		*signer = slot->id;
	} else {
		p = sa->signer_cert.data;
		cert = d2i_X509(NULL, &p, (long)sa->signer_cert.len);
		if (cert == NULL ||
		    (size_t)(p - sa->signer_cert.data) != sa->signer_cert.len) {
			snprintf(why, whylen, "signer certificate is not one "
			    "DER certificate");
			goto done;
		}
		if (verify_chain(t, cert, 0, &x509err, reason, why,
		    whylen) == -1 && (!history ||
		    x509err != X509_V_ERR_CERT_HAS_EXPIRED ||
		    verify_chain_at_issue(t, cert, sa, reason, why,
		    whylen) == -1))
			goto done;
		cacheable = x509err == X509_V_OK;
		*reason = CPX__REASON__REASON_BAD_SIGNER;
		if ((pub = X509_get0_pubkey(cert)) == NULL ||
		    !sign_key_is_p256(pub)) {
			snprintf(why, whylen, "signer key is not ECDSA P-256");
			goto done;
		}
		if (identity_from_cert(cert, signer, why, whylen) == -1)
			goto done;
		slot = cacheable ? cache_put(t, cert_hash, pub, signer, now) :
		    NULL;
	}

	*reason = CPX__REASON__REASON_BAD_SIGNATURE;
	if (!verify_sha256(pub, slot != NULL ? &slot->vctx : NULL, t->sha256,
	    sa->signature.data, sa->signature.len, sa->alert.data,
	    sa->alert.len)) {
		snprintf(why, whylen, "signature does not verify");
		goto done;
	}

	*reason = CPX__REASON__REASON_MALFORMED;
	if ((a = cpx__alert__unpack(NULL, sa->alert.len,
	    sa->alert.data)) == NULL) {
		snprintf(why, whylen, "signed alert bytes do not decode");
		goto done;
	}
	if (!alert_canonical(a, sa->alert.data, sa->alert.len)) {
		*reason = CPX__REASON__REASON_INVALID_ALERT;
		snprintf(why, whylen, "signed alert bytes are not in canonical "
		    "form (embedded NUL or repeated field)");
		goto done;
	}
	*alert_out = a;
	a = NULL;
	*reason = CPX__REASON__REASON_NONE;
	rc = 0;
done:
	if (rc == -1) {
		*alert_out = NULL;
		memset(signer, 0, sizeof(*signer));
	}
	if (a != NULL)
		cpx__alert__free_unpacked(a, NULL);
	X509_free(cert);
	ERR_clear_error();
	return rc;
}

int
sign_verify_alert(struct trust *t, const Cpx__SignedAlert *sa,
    Cpx__Alert **alert_out, struct identity *signer, int *reason, char *why,
    size_t whylen)
{
	return verify_alert(t, sa, 0, alert_out, signer, reason, why, whylen);
}

int
sign_verify_alert_history(struct trust *t, const Cpx__SignedAlert *sa,
    Cpx__Alert **alert_out, struct identity *signer, int *reason, char *why,
    size_t whylen)
{
	return verify_alert(t, sa, 1, alert_out, signer, reason, why, whylen);
}

int
sign_verify_alert_origin(const Cpx__Alert *a, const struct identity *signer,
    int *reason, char *why, size_t whylen)
{
	if (a == NULL || signer == NULL || a->origin == NULL ||
	    signer->country[0] == '\0' ||
	    strcmp(a->origin, signer->country) != 0) {
		*reason = CPX__REASON__REASON_ORIGIN_MISMATCH;
		/* The claimed origin is outside input: printable only. */
		snprintf(why, whylen, "alert claims origin %s but is signed "
		    "by a node of %s", a != NULL && a->origin != NULL &&
		    identity_country_valid(a->origin) ? a->origin : "??",
		    signer != NULL ? signer->country : "?");
		return -1;
	}
	*reason = CPX__REASON__REASON_NONE;
	return 0;
}

void
sign_fingerprint(const uint8_t *der, size_t len, char hex[65])
{
	unsigned char		md[32];
	unsigned int		mdlen = 0;

	memset(hex, 0, 65);
	if (EVP_Digest(der, len, md, &mdlen, EVP_sha256(), NULL) != 1 ||
	    mdlen != sizeof(md))
		return;
	sign_hex(md, sizeof(md), hex);
}

void
sign_hex(const uint8_t *p, size_t n, char *out)
{
	static const char	digits[] = "0123456789abcdef";
	size_t			i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 0x0f];
	}
	out[2 * n] = '\0';
}
