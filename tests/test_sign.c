/*
 * test_sign.c: lib/sign.c. A throwaway PKI is built in memory with the
 * OpenSSL API (CA, leaves, CRL), written as PEM into a mkdtemp directory
 * for trust_new. Sign then verify; then every way a carrier or a rogue
 * node could try to pass a forged alert: a flipped byte in the alert, the
 * signature or the certificate, a certificate from another CA with the
 * same names, a revoked, expired or not-yet-valid signer, a key of the
 * wrong type, bytes that verify but are not canonical, origin mismatch.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "alert.h"
#include "cpx_limits.h"
#include "identity.h"
#include "sign.h"
#include "testutil.h"

#define DAY	(24L * 3600L)

struct pki {
	char		 dir[256];
	char		 ca_pem[512];
	char		 crl_pem[512];
	char		 other_crl_pem[512];
	char		 junk_pem[512];
	char		 leaf_pem[512];
	EVP_PKEY	*ca_key, *other_key;
	X509		*ca, *other;
	EVP_PKEY	*si_key, *hr_key, *p384_key, *rsa_key;
	X509		*si;		/* C=SI CN=si-ncp, valid */
	X509		*hr;		/* C=HR CN=hr-ncp, valid */
	X509		*revoked;	/* C=HR, serial on the CRL */
	X509		*expired;	/* C=SI, expired yesterday */
	X509		*future;	/* C=SI, valid from tomorrow */
	X509		*rogue;		/* C=SI CN=si-ncp, from the other CA */
	X509		*p384;		/* C=SI, P-384 key, from the CA */
	X509		*rsa;		/* C=SI, RSA key, from the CA */
	X509		*server;	/* C=SI, serverAuth only */
};

static struct pki pk;

static EVP_PKEY *
keygen_ec(const char *group)
{
	EVP_PKEY	*k;

	k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", group);
	assert_non_null(k);
	return k;
}

static void
add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX	 ctx;
	X509_EXTENSION	*ext;

	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	assert_non_null(ext);
	assert_int_equal(X509_add_ext(x, ext, -1), 1);
	X509_EXTENSION_free(ext);
}

/*
 * A certificate for key, signed by issuer/ikey (self-signed if issuer is
 * NULL), valid from now+nb to now+na seconds.
 */
static X509 *
make_cert(EVP_PKEY *key, const char *c, const char *cn, X509 *issuer,
    EVP_PKEY *ikey, long serial, long nb, long na, int is_ca,
    const char *eku)
{
	X509		*x;
	X509_NAME	*name;

	x = X509_new();
	assert_non_null(x);
	assert_int_equal(X509_set_version(x, 2), 1);
	assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), serial),
	    1);
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), nb));
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), na));
	name = X509_get_subject_name(x);
	assert_int_equal(X509_NAME_add_entry_by_txt(name, "C", MBSTRING_ASC,
	    (const unsigned char *)c, -1, -1, 0), 1);
	assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	    (const unsigned char *)cn, -1, -1, 0), 1);
	assert_int_equal(X509_set_issuer_name(x, issuer != NULL ?
	    X509_get_subject_name(issuer) : name), 1);
	assert_int_equal(X509_set_pubkey(x, key), 1);
	if (issuer == NULL)
		issuer = x;
	add_ext(x, issuer, NID_subject_key_identifier, "hash");
	add_ext(x, issuer, NID_authority_key_identifier, "keyid:always");
	if (is_ca) {
		add_ext(x, issuer, NID_basic_constraints, "critical,CA:TRUE");
		add_ext(x, issuer, NID_key_usage,
		    "critical,keyCertSign,cRLSign");
	} else {
		add_ext(x, issuer, NID_basic_constraints, "critical,CA:FALSE");
		add_ext(x, issuer, NID_key_usage,
		    "critical,digitalSignature");
		add_ext(x, issuer, NID_ext_key_usage, eku);
	}
	assert_true(X509_sign(x, ikey, EVP_sha256()) > 0);
	return x;
}

static X509 *
make_leaf(EVP_PKEY *key, const char *c, const char *cn, long serial)
{
	return make_cert(key, c, cn, pk.ca, pk.ca_key, serial, -DAY,
	    30 * DAY, 0, "clientAuth");
}

/*
 * A CRL of ca listing the serials given, valid from now + last to now +
 * next (seconds), with CRL number `number` (none if negative).
 */
static X509_CRL *
make_crl_at(X509 *ca, EVP_PKEY *key, const long *serials, size_t n,
    long last, long next, long number)
{
	X509_CRL	*crl;
	X509_REVOKED	*r;
	ASN1_TIME	*t;
	ASN1_INTEGER	*s;
	size_t		 i;

	crl = X509_CRL_new();
	assert_non_null(crl);
	assert_int_equal(X509_CRL_set_version(crl, 1), 1);
	assert_int_equal(X509_CRL_set_issuer_name(crl,
	    X509_get_subject_name(ca)), 1);
	t = X509_gmtime_adj(NULL, last);
	assert_int_equal(X509_CRL_set1_lastUpdate(crl, t), 1);
	ASN1_TIME_free(t);
	t = X509_gmtime_adj(NULL, next);
	assert_int_equal(X509_CRL_set1_nextUpdate(crl, t), 1);
	ASN1_TIME_free(t);
	if (number >= 0) {
		s = ASN1_INTEGER_new();
		assert_non_null(s);
		assert_int_equal(ASN1_INTEGER_set(s, number), 1);
		assert_int_equal(X509_CRL_add1_ext_i2d(crl, NID_crl_number, s,
		    0, 0), 1);
		ASN1_INTEGER_free(s);
	}
	for (i = 0; i < n; i++) {
		r = X509_REVOKED_new();
		s = ASN1_INTEGER_new();
		assert_non_null(r);
		assert_non_null(s);
		assert_int_equal(ASN1_INTEGER_set(s, serials[i]), 1);
		assert_int_equal(X509_REVOKED_set_serialNumber(r, s), 1);
		t = X509_gmtime_adj(NULL, -60);
		assert_int_equal(X509_REVOKED_set_revocationDate(r, t), 1);
		ASN1_TIME_free(t);
		ASN1_INTEGER_free(s);
		assert_int_equal(X509_CRL_add0_revoked(crl, r), 1);
	}
	assert_int_equal(X509_CRL_sort(crl), 1);
	assert_true(X509_CRL_sign(crl, key, EVP_sha256()) > 0);
	return crl;
}

/* A CRL of ca listing the serials given, current for a week. */
static X509_CRL *
make_crl(X509 *ca, EVP_PKEY *key, const long *serials, size_t n)
{
	return make_crl_at(ca, key, serials, n, -3600, 7 * DAY, -1);
}

static void
write_cert(const char *path, X509 *x)
{
	FILE	*fp;

	fp = fopen(path, "w");
	assert_non_null(fp);
	assert_int_equal(PEM_write_X509(fp, x), 1);
	assert_int_equal(fclose(fp), 0);
}

static void
write_crl(const char *path, X509_CRL *crl)
{
	FILE	*fp;

	fp = fopen(path, "w");
	assert_non_null(fp);
	assert_int_equal(PEM_write_X509_CRL(fp, crl), 1);
	assert_int_equal(fclose(fp), 0);
	X509_CRL_free(crl);
}

static int
group_setup(void **state)
{
	const long	 revoked[] = { 1000, 77 };
	FILE		*fp;

	(void)state;
	memset(&pk, 0, sizeof(pk));
	if (testutil_mkdtemp(pk.dir, sizeof(pk.dir)) == -1)
		return -1;
	snprintf(pk.ca_pem, sizeof(pk.ca_pem), "%s/ca.pem", pk.dir);
	snprintf(pk.crl_pem, sizeof(pk.crl_pem), "%s/crl.pem", pk.dir);
	snprintf(pk.other_crl_pem, sizeof(pk.other_crl_pem),
	    "%s/other-crl.pem", pk.dir);
	snprintf(pk.junk_pem, sizeof(pk.junk_pem), "%s/junk.pem", pk.dir);
	snprintf(pk.leaf_pem, sizeof(pk.leaf_pem), "%s/leaf.pem", pk.dir);

	pk.ca_key = keygen_ec("P-256");
	pk.other_key = keygen_ec("P-256");
	/* Same CA name, other key: only the signature tells them apart. */
	pk.ca = make_cert(pk.ca_key, "SI", "cpx network CA", NULL, pk.ca_key,
	    1, -DAY, 3650 * DAY, 1, NULL);
	pk.other = make_cert(pk.other_key, "SI", "cpx network CA", NULL,
	    pk.other_key, 1, -DAY, 3650 * DAY, 1, NULL);
	pk.si_key = keygen_ec("P-256");
	pk.hr_key = keygen_ec("P-256");
	pk.p384_key = keygen_ec("P-384");
	pk.rsa_key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	assert_non_null(pk.rsa_key);

	pk.si = make_leaf(pk.si_key, "SI", "si-ncp", 10);
	pk.hr = make_leaf(pk.hr_key, "HR", "hr-ncp", 11);
	pk.revoked = make_leaf(pk.hr_key, "HR", "hr-ncp", 1000);
	pk.expired = make_cert(pk.si_key, "SI", "si-ncp", pk.ca, pk.ca_key,
	    12, -30 * DAY, -DAY, 0, "clientAuth");
	pk.future = make_cert(pk.si_key, "SI", "si-ncp", pk.ca, pk.ca_key,
	    13, DAY, 30 * DAY, 0, "clientAuth");
	pk.rogue = make_cert(pk.si_key, "SI", "si-ncp", pk.other,
	    pk.other_key, 10, -DAY, 30 * DAY, 0, "clientAuth");
	pk.p384 = make_leaf(pk.p384_key, "SI", "si-ncp", 14);
	pk.rsa = make_leaf(pk.rsa_key, "SI", "si-ncp", 15);
	pk.server = make_cert(pk.si_key, "SI", "si-ncp", pk.ca, pk.ca_key,
	    16, -DAY, 30 * DAY, 0, "serverAuth");

	write_cert(pk.ca_pem, pk.ca);
	write_cert(pk.leaf_pem, pk.si);
	write_crl(pk.crl_pem, make_crl(pk.ca, pk.ca_key, revoked, 2));
	write_crl(pk.other_crl_pem, make_crl(pk.other, pk.other_key, revoked,
	    2));
	fp = fopen(pk.junk_pem, "w");
	assert_non_null(fp);
	fputs("-----BEGIN X509 CRL-----\nnot base64 !\n"
	    "-----END X509 CRL-----\n", fp);
	assert_int_equal(fclose(fp), 0);
	return 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	X509_free(pk.ca);
	X509_free(pk.other);
	X509_free(pk.si);
	X509_free(pk.hr);
	X509_free(pk.revoked);
	X509_free(pk.expired);
	X509_free(pk.future);
	X509_free(pk.rogue);
	X509_free(pk.p384);
	X509_free(pk.rsa);
	X509_free(pk.server);
	EVP_PKEY_free(pk.ca_key);
	EVP_PKEY_free(pk.other_key);
	EVP_PKEY_free(pk.si_key);
	EVP_PKEY_free(pk.hr_key);
	EVP_PKEY_free(pk.p384_key);
	EVP_PKEY_free(pk.rsa_key);
	return testutil_rmrf(pk.dir);
}

/* A serialized valid alert from origin (caller frees). */
static uint8_t *
alert_bytes(const char *origin, size_t *len)
{
	Cpx__Alert	 a = CPX__ALERT__INIT;
	uint8_t		*buf;

	a.id = "0f6d2c1e-aaaa-4bbb-8ccc-123456789abc";
	a.origin = (char *)origin;
	a.issued_at = alert_now_ms();
	a.category = CPX__CATEGORY__CATEGORY_ROUTE;
	a.severity = CPX__SEVERITY__SEVERITY_MEDIUM;
	a.handling = CPX__HANDLING__HANDLING_NETWORK;
	a.summary = "Route via Bregana in use tonight";
	*len = cpx__alert__get_packed_size(&a);
	buf = malloc(*len + 16);
	assert_non_null(buf);
	assert_int_equal(cpx__alert__pack(&a, buf), *len);
	return buf;
}

static struct trust *
trust_with_crl(void)
{
	struct trust	*t;
	char		 err[256];

	t = trust_new(pk.ca_pem, pk.crl_pem, err, sizeof(err));
	if (t == NULL)
		fail_msg("trust_new: %s", err);
	return t;
}

/* Verify sa with t; expect reason (NONE = success). */
static void
expect_verify(struct trust *t, const Cpx__SignedAlert *sa, int want,
    const char *why_part)
{
	Cpx__Alert	*a = (Cpx__Alert *)1;
	struct identity	 id;
	char		 why[256] = "";
	int		 reason = -1, rc;

	memset(&id, 0x5a, sizeof(id));
	rc = sign_verify_alert(t, sa, &a, &id, &reason, why, sizeof(why));
	if (want == CPX__REASON__REASON_NONE) {
		if (rc != 0)
			fail_msg("refused: %s", why);
		assert_non_null(a);
		cpx__alert__free_unpacked(a, NULL);
		return;
	}
	if (rc != -1) {
		cpx__alert__free_unpacked(a, NULL);
		fail_msg("accepted, expected %s", alert_reason_name(want));
	}
	if (reason != want)
		fail_msg("reason %s (%s), expected %s",
		    alert_reason_name(reason), why, alert_reason_name(want));
	assert_null(a);
	assert_int_equal(id.country[0], 0);
	assert_int_equal(id.node[0], 0);
	if (why_part != NULL && strstr(why, why_part) == NULL)
		fail_msg("why \"%s\" lacks \"%s\"", why, why_part);
}

/* Sign bytes with key/cert into *sa (must succeed). */
static void
must_sign(EVP_PKEY *key, X509 *cert, const uint8_t *b, size_t len,
    Cpx__SignedAlert *sa)
{
	static const Cpx__SignedAlert	init = CPX__SIGNED_ALERT__INIT;

	*sa = init;
	assert_int_equal(sign_alert(key, cert, b, len, sa), 0);
	assert_int_equal(sa->alert.len, len);
	assert_true(sa->signature.len > 0 &&
	    sa->signature.len <= CPX_MAX_SIGNATURE);
}

static void
test_sign_verify_ok(void **state)
{
	Cpx__SignedAlert	 sa;
	Cpx__Alert		*a = NULL;
	struct identity		 id;
	struct trust		*t;
	uint8_t			*b;
	size_t			 len;
	char			 why[256];
	int			 reason;

	(void)state;
	t = trust_with_crl();
	b = alert_bytes("SI", &len);
	must_sign(pk.si_key, pk.si, b, len, &sa);
	if (sign_verify_alert(t, &sa, &a, &id, &reason, why,
	    sizeof(why)) != 0)
		fail_msg("verify: %s", why);
	assert_string_equal(id.country, "SI");
	assert_string_equal(id.node, "si-ncp");
	assert_string_equal(a->id, "0f6d2c1e-aaaa-4bbb-8ccc-123456789abc");
	assert_int_equal(alert_validate(a, alert_now_ms(), 60000, &reason,
	    why, sizeof(why)), 0);
	assert_int_equal(sign_verify_alert_origin(a, &id, &reason, why,
	    sizeof(why)), 0);
	cpx__alert__free_unpacked(a, NULL);

	/* Without a CRL too. */
	trust_free(&t);
	assert_null(t);
	t = trust_new(pk.ca_pem, NULL, why, sizeof(why));
	assert_non_null(t);
	assert_non_null(trust_store(t));
	expect_verify(t, &sa, CPX__REASON__REASON_NONE, NULL);

	sign_signed_alert_clear(&sa);
	assert_null(sa.alert.data);
	assert_int_equal(sa.signature.len, 0);
	sign_signed_alert_clear(&sa);
	free(b);
	trust_free(&t);
	trust_free(&t);
}

/*
 * A signer verified once is remembered: the next alert with the same
 * certificate must still have its own signature checked, and a reloaded
 * CRL must still catch a revocation (test_revoked).
 */
static void
test_cached_signer(void **state)
{
	Cpx__SignedAlert	 sa;
	struct trust		*t;
	uint8_t			*b;
	size_t			 len;

	(void)state;
	t = trust_with_crl();
	b = alert_bytes("SI", &len);
	must_sign(pk.si_key, pk.si, b, len, &sa);
	expect_verify(t, &sa, CPX__REASON__REASON_NONE, NULL);
	expect_verify(t, &sa, CPX__REASON__REASON_NONE, NULL);
	sa.signature.data[sa.signature.len - 1] ^= 0x01;
	expect_verify(t, &sa, CPX__REASON__REASON_BAD_SIGNATURE, NULL);
	sa.signature.data[sa.signature.len - 1] ^= 0x01;
	sa.alert.data[len / 2] ^= 0x10;
	expect_verify(t, &sa, CPX__REASON__REASON_BAD_SIGNATURE, NULL);
	/* The signer's kept verification context still says yes after no. */
	sa.alert.data[len / 2] ^= 0x10;
	expect_verify(t, &sa, CPX__REASON__REASON_NONE, NULL);
	sign_signed_alert_clear(&sa);
	free(b);
	trust_free(&t);
}

/*
 * A sign_key checks once what sign_alert checks every time, and then
 * signs any number of alerts: each verifies, each has its own signature
 * (ECDSA draws a fresh nonce), each carries the certificate's DER.
 */
static void
test_sign_key(void **state)
{
	Cpx__SignedAlert	 sa[3];
	struct sign_key		*sk;
	struct trust		*t;
	uint8_t			*b, *der = NULL;
	char			 err[128];
	size_t			 len, i;
	int			 derlen;

	(void)state;
	assert_null(sign_key_new(pk.si_key, pk.hr, err, sizeof(err)));
	assert_non_null(strstr(err, "does not belong"));
	assert_null(sign_key_new(pk.p384_key, pk.p384, err, sizeof(err)));
	assert_non_null(strstr(err, "not ECDSA P-256"));
	assert_null(sign_key_new(pk.rsa_key, pk.rsa, err, sizeof(err)));
	assert_null(sign_key_new(NULL, pk.si, err, sizeof(err)));
	sk = sign_key_new(pk.si_key, pk.si, err, sizeof(err));
	if (sk == NULL)
		fail_msg("sign_key_new: %s", err);
	derlen = i2d_X509(pk.si, &der);
	assert_true(derlen > 0);
	t = trust_with_crl();
	b = alert_bytes("SI", &len);
	for (i = 0; i < 3; i++) {
		memset(&sa[i], 0, sizeof(sa[i]));
		assert_int_equal(sign_key_alert(sk, b, len, &sa[i]), 0);
		assert_int_equal(sa[i].signer_cert.len, (size_t)derlen);
		assert_memory_equal(sa[i].signer_cert.data, der, derlen);
		expect_verify(t, &sa[i], CPX__REASON__REASON_NONE, NULL);
	}
	assert_false(sa[0].signature.len == sa[1].signature.len &&
	    memcmp(sa[0].signature.data, sa[1].signature.data,
	    sa[0].signature.len) == 0);
	/* Its bounds are sign_alert's. */
	sign_signed_alert_clear(&sa[0]);
	assert_int_equal(sign_key_alert(sk, b, 0, &sa[0]), -1);
	assert_null(sa[0].alert.data);
	assert_int_equal(sign_key_alert(sk, b, CPX_MAX_ALERT + 1, &sa[0]), -1);
	for (i = 0; i < 3; i++)
		sign_signed_alert_clear(&sa[i]);
	sign_key_free(&sk);
	assert_null(sk);
	sign_key_free(&sk);
	OPENSSL_free(der);
	free(b);
	trust_free(&t);
}

/*
 * History: an alert signed while its signer's certificate was valid stays
 * verifiable after the certificate expires, but only as history, and only
 * if it was issued within the validity period.
 */
static void
test_history_expired_signer(void **state)
{
	Cpx__Alert		 a = CPX__ALERT__INIT, *out = NULL;
	Cpx__SignedAlert	 sa;
	struct identity		 id;
	struct trust		*t;
	uint8_t			 buf[512];
	size_t			 len;
	char			 why[256];
	int			 reason;

	(void)state;
	t = trust_with_crl();
	a.id = "hist-1";
	a.origin = "SI";
	/* pk.expired was valid from 30 days ago until yesterday. */
	a.issued_at = alert_now_ms() - 10 * DAY * 1000;
	a.category = CPX__CATEGORY__CATEGORY_ROUTE;
	a.severity = CPX__SEVERITY__SEVERITY_LOW;
	a.handling = CPX__HANDLING__HANDLING_NETWORK;
	a.summary = "issued while the certificate was valid";
	len = cpx__alert__get_packed_size(&a);
	assert_true(len <= sizeof(buf));
	cpx__alert__pack(&a, buf);
	must_sign(pk.si_key, pk.expired, buf, len, &sa);
	expect_verify(t, &sa, CPX__REASON__REASON_BAD_SIGNER, "expired");
	if (sign_verify_alert_history(t, &sa, &out, &id, &reason, why,
	    sizeof(why)) != 0)
		fail_msg("history: %s", why);
	assert_string_equal(id.country, "SI");
	cpx__alert__free_unpacked(out, NULL);
	/* Not when the alert claims a time after the expiry. */
	sign_signed_alert_clear(&sa);
	a.issued_at = alert_now_ms();
	len = cpx__alert__get_packed_size(&a);
	cpx__alert__pack(&a, buf);
	must_sign(pk.si_key, pk.expired, buf, len, &sa);
	assert_int_equal(sign_verify_alert_history(t, &sa, &out, &id,
	    &reason, why, sizeof(why)), -1);
	assert_int_equal(reason, CPX__REASON__REASON_BAD_SIGNER);
	assert_null(out);
	/* A tampered history alert still fails on its signature. */
	sign_signed_alert_clear(&sa);
	a.issued_at = alert_now_ms() - 10 * DAY * 1000;
	len = cpx__alert__get_packed_size(&a);
	cpx__alert__pack(&a, buf);
	must_sign(pk.si_key, pk.expired, buf, len, &sa);
	sa.alert.data[len - 2] ^= 0x01;
	assert_int_equal(sign_verify_alert_history(t, &sa, &out, &id,
	    &reason, why, sizeof(why)), -1);
	assert_null(out);
	sign_signed_alert_clear(&sa);
	trust_free(&t);
}

static void
test_flipped_bytes(void **state)
{
	Cpx__SignedAlert	 sa;
	struct trust		*t;
	uint8_t			*b;
	size_t			 len, i;

	(void)state;
	t = trust_with_crl();
	b = alert_bytes("SI", &len);
	must_sign(pk.si_key, pk.si, b, len, &sa);

	/* Every byte of the alert: the signature covers them all. */
	for (i = 0; i < sa.alert.len; i++) {
		sa.alert.data[i] ^= 0x01;
		expect_verify(t, &sa, CPX__REASON__REASON_BAD_SIGNATURE,
		    "signature");
		sa.alert.data[i] ^= 0x01;
	}
	for (i = 0; i < sa.signature.len; i++) {
		sa.signature.data[i] ^= 0x80;
		expect_verify(t, &sa, CPX__REASON__REASON_BAD_SIGNATURE, NULL);
		sa.signature.data[i] ^= 0x80;
	}
	/* The certificate's own signature, at its end. */
	sa.signer_cert.data[sa.signer_cert.len - 1] ^= 0x01;
	expect_verify(t, &sa, CPX__REASON__REASON_BAD_SIGNER, NULL);
	sa.signer_cert.data[sa.signer_cert.len - 1] ^= 0x01;
	/* Its outer length: no longer one DER certificate. */
	sa.signer_cert.data[3] ^= 0x01;
	expect_verify(t, &sa, CPX__REASON__REASON_BAD_SIGNER, NULL);
	sa.signer_cert.data[3] ^= 0x01;
	expect_verify(t, &sa, CPX__REASON__REASON_NONE, NULL);

	sign_signed_alert_clear(&sa);
	free(b);
	trust_free(&t);
}

static void
test_cert_trailing_bytes(void **state)
{
	Cpx__SignedAlert	 sa;
	struct trust		*t;
	uint8_t			*b, *der;
	size_t			 len;

	(void)state;
	t = trust_with_crl();
	b = alert_bytes("SI", &len);
	must_sign(pk.si_key, pk.si, b, len, &sa);
	der = realloc(sa.signer_cert.data, sa.signer_cert.len + 1);
	assert_non_null(der);
	der[sa.signer_cert.len] = 0;
	sa.signer_cert.data = der;
	sa.signer_cert.len++;
	expect_verify(t, &sa, CPX__REASON__REASON_BAD_SIGNER, "one DER");
	sa.signer_cert.len -= 2;
	expect_verify(t, &sa, CPX__REASON__REASON_BAD_SIGNER, "one DER");
	sign_signed_alert_clear(&sa);
	free(b);
	trust_free(&t);
}

static void
test_bad_signers(void **state)
{
	Cpx__SignedAlert	 sa;
	struct trust		*t;
	uint8_t			*b;
	size_t			 len;

	(void)state;
	t = trust_with_crl();
	b = alert_bytes("SI", &len);

	/* Same subject, same issuer name, other CA. */
	must_sign(pk.si_key, pk.rogue, b, len, &sa);
	expect_verify(t, &sa, CPX__REASON__REASON_BAD_SIGNER,
	    "signer certificate");
	sign_signed_alert_clear(&sa);

	must_sign(pk.si_key, pk.expired, b, len, &sa);
	expect_verify(t, &sa, CPX__REASON__REASON_BAD_SIGNER, "expired");
	sign_signed_alert_clear(&sa);

	must_sign(pk.si_key, pk.future, b, len, &sa);
	expect_verify(t, &sa, CPX__REASON__REASON_BAD_SIGNER, "not yet");
	sign_signed_alert_clear(&sa);

	/* A certificate of the CA, but not for a node (clientAuth). */
	must_sign(pk.si_key, pk.server, b, len, &sa);
	expect_verify(t, &sa, CPX__REASON__REASON_BAD_SIGNER, "purpose");
	sign_signed_alert_clear(&sa);

	/* The CA's own certificate is not a signer either. */
	must_sign(pk.ca_key, pk.ca, b, len, &sa);
	expect_verify(t, &sa, CPX__REASON__REASON_BAD_SIGNER, NULL);
	sign_signed_alert_clear(&sa);

	free(b);
	trust_free(&t);
}

static void
test_revoked(void **state)
{
	Cpx__SignedAlert	 sa;
	struct trust		*t;
	uint8_t			*b;
	size_t			 len;
	char			 err[256];
	int			 reason;

	(void)state;
	b = alert_bytes("HR", &len);
	must_sign(pk.hr_key, pk.revoked, b, len, &sa);

	t = trust_with_crl();
	expect_verify(t, &sa, CPX__REASON__REASON_SIGNER_REVOKED, "revoked");
	assert_int_equal(trust_verify_cert(t, pk.revoked, &reason, err,
	    sizeof(err)), -1);
	assert_int_equal(reason, CPX__REASON__REASON_SIGNER_REVOKED);
	assert_int_equal(trust_verify_cert(t, pk.hr, &reason, err,
	    sizeof(err)), 0);
	trust_free(&t);

	/* No CRL: accepted; reloading one revokes; a bad reload keeps it. */
	t = trust_new(pk.ca_pem, NULL, err, sizeof(err));
	assert_non_null(t);
	expect_verify(t, &sa, CPX__REASON__REASON_NONE, NULL);
	assert_int_equal(trust_reload_crl(t, pk.crl_pem, err, sizeof(err)),
	    0);
	expect_verify(t, &sa, CPX__REASON__REASON_SIGNER_REVOKED, NULL);
	assert_int_equal(trust_reload_crl(t, pk.junk_pem, err, sizeof(err)),
	    -1);
	assert_non_null(strstr(err, pk.junk_pem));
	expect_verify(t, &sa, CPX__REASON__REASON_SIGNER_REVOKED, NULL);
	/* A CRL from another CA is refused at load, naming the file. */
	assert_int_equal(trust_reload_crl(t, pk.other_crl_pem, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "other-crl.pem"));
	expect_verify(t, &sa, CPX__REASON__REASON_SIGNER_REVOKED, NULL);
	assert_int_equal(trust_reload_crl(t, "/nonexistent/crl.pem", err,
	    sizeof(err)), -1);
	expect_verify(t, &sa, CPX__REASON__REASON_SIGNER_REVOKED, NULL);
	trust_free(&t);

	sign_signed_alert_clear(&sa);
	free(b);
}

/* The revoked certificate's serial, as make_leaf was given it. */
static long
serial_of(X509 *x)
{
	return ASN1_INTEGER_get(X509_get0_serialNumber(x));
}

static void
crl_file(const char *name, char *path, size_t len, long revoked, long last,
    long next, long number)
{
	snprintf(path, len, "%s/%s", pk.dir, name);
	write_crl(path, make_crl_at(pk.ca, pk.ca_key, &revoked,
	    revoked > 0 ? 1 : 0, last, next, number));
}

static void
test_crl_window_and_order(void **state)
{
	struct trust	*t;
	char		 p5[600], p4[600], p6[600], pnone[600], pold[600];
	char		 pfut[600], pshort[600], err[256], info[128];
	Cpx__SignedAlert sa;
	uint8_t		*b;
	size_t		 len;
	long		 rs = serial_of(pk.revoked);
	int		 reason;
	time_t		 until;

	(void)state;
	crl_file("crl-5.pem", p5, sizeof(p5), rs, -3600, DAY, 5);
	crl_file("crl-4.pem", p4, sizeof(p4), 0, -7200, DAY, 4);
	crl_file("crl-6.pem", p6, sizeof(p6), rs, -60, DAY, 6);
	crl_file("crl-none.pem", pnone, sizeof(pnone), rs, -60, DAY, -1);
	crl_file("crl-old.pem", pold, sizeof(pold), rs, -2 * DAY, -DAY, 7);
	crl_file("crl-fut.pem", pfut, sizeof(pfut), rs, DAY, 2 * DAY, 8);
	crl_file("crl-short.pem", pshort, sizeof(pshort), rs, -60, 2, 9);

	/* Out of its window at load: refused, naming the file. */
	assert_null(trust_new(pk.ca_pem, pold, err, sizeof(err)));
	assert_non_null(strstr(err, "crl-old.pem: CRL expired at"));
	assert_null(trust_new(pk.ca_pem, pfut, err, sizeof(err)));
	assert_non_null(strstr(err, "crl-fut.pem: CRL is not valid yet"));

	t = trust_new(pk.ca_pem, p5, err, sizeof(err));
	if (t == NULL)
		fail_msg("%s", err);
	assert_int_equal(trust_crl_describe(t, info, sizeof(info)), 0);
	assert_non_null(strstr(info, "CRL number 5, next update "));
	/* Older (it would un-revoke), expired, future, numberless: kept. */
	assert_int_equal(trust_reload_crl(t, p4, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "CRL number 4 is lower than that of the "
	    "CRL in force (5)"));
	assert_int_equal(trust_reload_crl(t, pold, err, sizeof(err)), -1);
	assert_int_equal(trust_reload_crl(t, pfut, err, sizeof(err)), -1);
	assert_int_equal(trust_reload_crl(t, pnone, err, sizeof(err)), -1);
	assert_int_equal(trust_reload_crl(t, NULL, err, sizeof(err)), -1);
	assert_int_equal(trust_verify_cert(t, pk.revoked, &reason, err,
	    sizeof(err)), -1);
	assert_int_equal(reason, CPX__REASON__REASON_SIGNER_REVOKED);
	/* The same CRL again, and a newer one: taken. */
	assert_int_equal(trust_reload_crl(t, p5, err, sizeof(err)), 0);
	assert_int_equal(trust_reload_crl(t, p6, err, sizeof(err)), 0);
	assert_int_equal(trust_crl_describe(t, info, sizeof(info)), 0);
	assert_non_null(strstr(info, "CRL number 6,"));

	/*
	 * The CRL in force expires: stale, never "revoked" or "bad", for
	 * a signer verified (and cached) just before too.
	 */
	assert_int_equal(trust_reload_crl(t, pshort, err, sizeof(err)), 0);
	b = alert_bytes("HR", &len);
	must_sign(pk.hr_key, pk.hr, b, len, &sa);
	expect_verify(t, &sa, CPX__REASON__REASON_NONE, NULL);
	until = time(NULL) + 10;
	while (trust_verify_cert(t, pk.hr, &reason, err, sizeof(err)) == 0)
		assert_true(time(NULL) < until);	/* polls the clock */
	assert_int_equal(reason, CPX__REASON__REASON_CRL_STALE);
	expect_verify(t, &sa, CPX__REASON__REASON_CRL_STALE, "CRL");
	sign_signed_alert_clear(&sa);
	free(b);
	trust_free(&t);
}

static void
test_broker_cert_purpose(void **state)
{
	struct trust	*t;
	char		 err[256];
	int		 reason;

	(void)state;
	t = trust_new(pk.ca_pem, NULL, err, sizeof(err));
	assert_non_null(t);
	/* serverAuth: a broker certificate; clientAuth only: a node's. */
	assert_int_equal(trust_verify_broker_cert(t, pk.server, &reason, err,
	    sizeof(err)), 0);
	assert_int_equal(trust_verify_broker_cert(t, pk.si, &reason, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "not a broker certificate"));
	assert_int_equal(trust_verify_broker_cert(t, pk.rogue, &reason, err,
	    sizeof(err)), -1);
	trust_free(&t);
}

static void
test_trust_new_errors(void **state)
{
	struct trust	*t;
	char		 err[256];

	(void)state;
	t = trust_new("/nonexistent/ca.pem", NULL, err, sizeof(err));
	assert_null(t);
	assert_non_null(strstr(err, "/nonexistent/ca.pem"));
	/* A leaf configured as the CA. */
	t = trust_new(pk.leaf_pem, NULL, err, sizeof(err));
	assert_null(t);
	assert_non_null(strstr(err, "not a CA"));
	t = trust_new(pk.ca_pem, pk.other_crl_pem, err, sizeof(err));
	assert_null(t);
	assert_non_null(strstr(err, "other-crl.pem"));
	t = trust_new(pk.ca_pem, pk.junk_pem, err, sizeof(err));
	assert_null(t);
	assert_non_null(strstr(err, "junk.pem"));
	trust_free(NULL);
}

static void
test_wrong_key_types(void **state)
{
	static const Cpx__SignedAlert	 init = CPX__SIGNED_ALERT__INIT;
	Cpx__SignedAlert		 sa;
	EVP_MD_CTX			*md;
	struct trust			*t;
	uint8_t				*b, sig[600], *p;
	size_t				 len, siglen = sizeof(sig);
	int				 derlen;

	(void)state;
	t = trust_with_crl();
	b = alert_bytes("SI", &len);

	/* sign_alert refuses P-384, RSA, and a key not of the cert. */
	sa = init;
	assert_int_equal(sign_alert(pk.p384_key, pk.p384, b, len, &sa), -1);
	assert_null(sa.alert.data);
	assert_null(sa.signature.data);
	assert_null(sa.signer_cert.data);
	assert_int_equal(sign_alert(pk.rsa_key, pk.rsa, b, len, &sa), -1);
	assert_null(sa.signature.data);
	assert_int_equal(sign_alert(pk.hr_key, pk.si, b, len, &sa), -1);
	assert_null(sa.alert.data);
	assert_int_equal(sign_alert(pk.si_key, pk.si, b, 0, &sa), -1);
	assert_int_equal(sign_alert(pk.si_key, pk.si, b, CPX_MAX_ALERT + 1,
	    &sa), -1);

	/*
	 * A P-384 signer certified by the CA, signature made by hand: the
	 * verifier refuses the key type even though everything verifies.
	 */
	md = EVP_MD_CTX_new();
	assert_non_null(md);
	assert_int_equal(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL,
	    pk.p384_key), 1);
	assert_int_equal(EVP_DigestSign(md, sig, &siglen, b, len), 1);
	EVP_MD_CTX_free(md);
	derlen = i2d_X509(pk.p384, NULL);
	assert_true(derlen > 0);
	sa = init;
	sa.alert.data = b;
	sa.alert.len = len;
	sa.signature.data = sig;
	sa.signature.len = siglen;
	sa.signer_cert.data = malloc(derlen);
	assert_non_null(sa.signer_cert.data);
	p = sa.signer_cert.data;
	assert_int_equal(i2d_X509(pk.p384, &p), derlen);
	sa.signer_cert.len = derlen;
	expect_verify(t, &sa, CPX__REASON__REASON_BAD_SIGNER, "P-256");
	free(sa.signer_cert.data);

	/* Same with RSA (its signature is over the size limit anyway). */
	siglen = sizeof(sig);
	md = EVP_MD_CTX_new();
	assert_non_null(md);
	assert_int_equal(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL,
	    pk.rsa_key), 1);
	assert_int_equal(EVP_DigestSign(md, sig, &siglen, b, len), 1);
	EVP_MD_CTX_free(md);
	derlen = i2d_X509(pk.rsa, NULL);
	sa.signature.len = CPX_MAX_SIGNATURE;	/* truncated to fit */
	sa.signer_cert.data = malloc(derlen);
	assert_non_null(sa.signer_cert.data);
	p = sa.signer_cert.data;
	assert_int_equal(i2d_X509(pk.rsa, &p), derlen);
	sa.signer_cert.len = derlen;
	expect_verify(t, &sa, CPX__REASON__REASON_BAD_SIGNER, "P-256");
	sa.signature.len = siglen;
	expect_verify(t, &sa, CPX__REASON__REASON_TOO_LARGE, NULL);
	free(sa.signer_cert.data);

	free(b);
	trust_free(&t);
}

static void
test_sizes(void **state)
{
	Cpx__SignedAlert	 sa, bad;
	struct trust		*t;
	uint8_t			*b;
	size_t			 len;

	(void)state;
	t = trust_with_crl();
	b = alert_bytes("SI", &len);
	must_sign(pk.si_key, pk.si, b, len, &sa);

	bad = sa;
	bad.alert.len = 0;
	expect_verify(t, &bad, CPX__REASON__REASON_MALFORMED, NULL);
	bad = sa;
	bad.signature.data = NULL;
	expect_verify(t, &bad, CPX__REASON__REASON_MALFORMED, NULL);
	bad = sa;
	bad.signer_cert.len = 0;
	expect_verify(t, &bad, CPX__REASON__REASON_MALFORMED, NULL);
	bad = sa;
	bad.alert.len = CPX_MAX_ALERT + 1;
	expect_verify(t, &bad, CPX__REASON__REASON_TOO_LARGE, NULL);
	bad = sa;
	bad.signature.len = CPX_MAX_SIGNATURE + 1;
	expect_verify(t, &bad, CPX__REASON__REASON_TOO_LARGE, NULL);
	bad = sa;
	bad.signer_cert.len = CPX_MAX_CERT + 1;
	expect_verify(t, &bad, CPX__REASON__REASON_TOO_LARGE, NULL);
	expect_verify(t, NULL, CPX__REASON__REASON_MALFORMED, NULL);

	sign_signed_alert_clear(&sa);
	free(b);
	trust_free(&t);
}

static void
test_not_canonical(void **state)
{
	/* Field 1 (id) again: "ab\0c", then plain "x". */
	static const uint8_t	nul_id[] = { 0x0a, 0x04, 'a', 'b', 0, 'c' };
	static const uint8_t	dup_id[] = { 0x0a, 0x01, 'x' };
	/* Field 0 with a two-byte tag: protobuf-c reads it, not its repack. */
	static const uint8_t	field0[] = { 0x80, 0x00, 0x01 };
	static const uint8_t	junk[] = { 0xff, 0xff, 0xff };
	Cpx__SignedAlert	 sa;
	struct trust		*t;
	uint8_t			*b;
	size_t			 len;

	(void)state;
	t = trust_with_crl();

	/* Signed correctly, but what decodes is not what was signed. */
	b = alert_bytes("SI", &len);
	memcpy(b + len, nul_id, sizeof(nul_id));
	must_sign(pk.si_key, pk.si, b, len + sizeof(nul_id), &sa);
	expect_verify(t, &sa, CPX__REASON__REASON_INVALID_ALERT, "canonical");
	sign_signed_alert_clear(&sa);

	memcpy(b + len, dup_id, sizeof(dup_id));
	must_sign(pk.si_key, pk.si, b, len + sizeof(dup_id), &sa);
	expect_verify(t, &sa, CPX__REASON__REASON_INVALID_ALERT, "canonical");
	sign_signed_alert_clear(&sa);

	memcpy(b + len, field0, sizeof(field0));
	must_sign(pk.si_key, pk.si, b, len + sizeof(field0), &sa);
	expect_verify(t, &sa, CPX__REASON__REASON_INVALID_ALERT, "canonical");
	sign_signed_alert_clear(&sa);

	/* Signed bytes that are no Alert at all. */
	must_sign(pk.si_key, pk.si, junk, sizeof(junk), &sa);
	expect_verify(t, &sa, CPX__REASON__REASON_MALFORMED, "decode");
	sign_signed_alert_clear(&sa);

	free(b);
	trust_free(&t);
}

static void
test_origin_mismatch(void **state)
{
	Cpx__SignedAlert	 sa;
	Cpx__Alert		*a = NULL;
	struct identity		 id;
	struct trust		*t;
	uint8_t			*b;
	size_t			 len;
	char			 why[256];
	int			 reason;

	(void)state;
	t = trust_with_crl();
	/* SI's node signs an alert claiming to come from HR. */
	b = alert_bytes("HR", &len);
	must_sign(pk.si_key, pk.si, b, len, &sa);
	assert_int_equal(sign_verify_alert(t, &sa, &a, &id, &reason, why,
	    sizeof(why)), 0);
	assert_int_equal(sign_verify_alert_origin(a, &id, &reason, why,
	    sizeof(why)), -1);
	assert_int_equal(reason, CPX__REASON__REASON_ORIGIN_MISMATCH);
	assert_non_null(strstr(why, "SI"));
	cpx__alert__free_unpacked(a, NULL);
	sign_signed_alert_clear(&sa);
	free(b);
	trust_free(&t);
}

static void
test_fingerprint(void **state)
{
	static const uint8_t	abc[] = { 'a', 'b', 'c' };
	char			hex[65], hex2[65];
	size_t			i;

	(void)state;
	/* SHA-256("abc"), FIPS 180-2 test vector. */
	sign_fingerprint(abc, sizeof(abc), hex);
	assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223"
	    "b00361a396177a9cb410ff61f20015ad");
	sign_fingerprint(abc, 2, hex2);
	assert_string_not_equal(hex, hex2);
	for (i = 0; i < 64; i++)
		assert_non_null(strchr("0123456789abcdef", hex2[i]));
}

/*
 * sign_bytes / sign_verify_bytes (the audit log's checkpoints): a
 * signature verifies with the signer's certificate, and fails on a
 * flipped byte of the message or of the signature, and with another
 * key's certificate.
 */
static void
test_sign_bytes(void **state)
{
	static const char	 text[] = "cpx-checkpoint-v1 and some bytes";
	uint8_t			 msg[sizeof(text) - 1], *sig = NULL;
	size_t			 siglen = 0, i;
	char			 why[128];

	(void)state;
	memcpy(msg, text, sizeof(msg));
	assert_int_equal(sign_bytes(pk.si_key, pk.si, msg, sizeof(msg), &sig,
	    &siglen), 0);
	assert_non_null(sig);
	assert_true(siglen > 0 && siglen <= CPX_MAX_SIGNATURE);
	/* DER: an ECDSA-Sig-Value SEQUENCE. */
	assert_int_equal(sig[0], 0x30);
	assert_int_equal(sign_verify_bytes(pk.si, msg, sizeof(msg), sig, siglen,
	    why, sizeof(why)), 0);
	assert_string_equal(why, "");

	/* Every byte of the message is covered. */
	for (i = 0; i < sizeof(msg); i++) {
		msg[i] ^= 0x01;
		assert_int_equal(sign_verify_bytes(pk.si, msg, sizeof(msg), sig,
		    siglen, why, sizeof(why)), -1);
		assert_string_equal(why, "signature does not verify");
		msg[i] ^= 0x01;
	}
	/* A flipped byte of the signature fails too. */
	sig[siglen - 1] ^= 0x01;
	assert_int_equal(sign_verify_bytes(pk.si, msg, sizeof(msg), sig, siglen,
	    why, sizeof(why)), -1);
	sig[siglen - 1] ^= 0x01;
	/* A shorter message is another message. */
	assert_int_equal(sign_verify_bytes(pk.si, msg, sizeof(msg) - 1, sig,
	    siglen, why, sizeof(why)), -1);

	/* Another node's key (and certificate) does not verify it. */
	assert_int_equal(sign_verify_bytes(pk.hr, msg, sizeof(msg), sig, siglen,
	    why, sizeof(why)), -1);
	assert_string_equal(why, "signature does not verify");
	/* The same key under another certificate does. */
	assert_int_equal(sign_verify_bytes(pk.rogue, msg, sizeof(msg), sig,
	    siglen, why, sizeof(why)), 0);

	/* Sizes: empty or over the limit is refused before OpenSSL. */
	assert_int_equal(sign_verify_bytes(pk.si, msg, sizeof(msg), sig, 0,
	    why, sizeof(why)), -1);
	assert_int_equal(sign_verify_bytes(pk.si, msg, sizeof(msg), sig,
	    CPX_MAX_SIGNATURE + 1, why, sizeof(why)), -1);
	assert_int_equal(sign_verify_bytes(pk.si, msg, sizeof(msg), NULL,
	    siglen, why, sizeof(why)), -1);
	free(sig);
}

/* The key rules of sign_alert hold for sign_bytes and its verifier. */
static void
test_sign_bytes_keys(void **state)
{
	static const uint8_t	 msg[] = { 1, 2, 3, 4, 5 };
	uint8_t			*sig = (uint8_t *)"x";
	size_t			 siglen = 7;
	char			 why[128];

	(void)state;
	/* A key that is not its certificate's: refused, outputs zeroed. */
	assert_int_equal(sign_bytes(pk.hr_key, pk.si, msg, sizeof(msg), &sig,
	    &siglen), -1);
	assert_null(sig);
	assert_int_equal(siglen, 0);
	/* P-384 and RSA: not the network's signature key. */
	assert_int_equal(sign_bytes(pk.p384_key, pk.p384, msg, sizeof(msg),
	    &sig, &siglen), -1);
	assert_null(sig);
	assert_int_equal(sign_bytes(pk.rsa_key, pk.rsa, msg, sizeof(msg),
	    &sig, &siglen), -1);
	assert_null(sig);
	/* Nothing to sign, or no key or certificate. */
	assert_int_equal(sign_bytes(pk.si_key, pk.si, msg, 0, &sig, &siglen),
	    -1);
	assert_int_equal(sign_bytes(NULL, pk.si, msg, sizeof(msg), &sig,
	    &siglen), -1);
	assert_int_equal(sign_bytes(pk.si_key, NULL, msg, sizeof(msg), &sig,
	    &siglen), -1);
	assert_null(sig);

	/* The verifier names a key of the wrong type as such. */
	assert_int_equal(sign_bytes(pk.si_key, pk.si, msg, sizeof(msg), &sig,
	    &siglen), 0);
	assert_int_equal(sign_verify_bytes(pk.p384, msg, sizeof(msg), sig,
	    siglen, why, sizeof(why)), -1);
	assert_string_equal(why, "key is not ECDSA P-256");
	assert_int_equal(sign_verify_bytes(pk.rsa, msg, sizeof(msg), sig,
	    siglen, why, sizeof(why)), -1);
	assert_string_equal(why, "key is not ECDSA P-256");
	assert_int_equal(sign_verify_bytes(NULL, msg, sizeof(msg), sig,
	    siglen, why, sizeof(why)), -1);
	free(sig);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sign_verify_ok),
		cmocka_unit_test(test_flipped_bytes),
		cmocka_unit_test(test_cached_signer),
		cmocka_unit_test(test_sign_key),
		cmocka_unit_test(test_history_expired_signer),
		cmocka_unit_test(test_cert_trailing_bytes),
		cmocka_unit_test(test_bad_signers),
		cmocka_unit_test(test_revoked),
		cmocka_unit_test(test_trust_new_errors),
		cmocka_unit_test(test_crl_window_and_order),
		cmocka_unit_test(test_broker_cert_purpose),
		cmocka_unit_test(test_wrong_key_types),
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_not_canonical),
		cmocka_unit_test(test_origin_mismatch),
		cmocka_unit_test(test_fingerprint),
		cmocka_unit_test(test_sign_bytes),
		cmocka_unit_test(test_sign_bytes_keys),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
