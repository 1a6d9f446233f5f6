/*
 * testlog.c: n filler records into an audit log with the test PKI's
 * broker key (testlog.h). Uses the broker's own audit API.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "audit.h"
#include "testlog.h"
#include "testpki.h"
#include "tlsctx.h"

void
testlog_fill(const char *dir, const char *dsn, unsigned int n)
{
	Cpx__AuditRecord rec = CPX__AUDIT_RECORD__INIT;
	struct audit *a;
	EVP_PKEY *key;
	X509 *cert;
	uint64_t seq;
	char err[256];
	unsigned int i;

	assert_non_null(key = tlsctx_load_key(testpki_file("broker.key"), err,
	    sizeof(err)));
	assert_non_null(cert = tlsctx_load_cert(testpki_file("broker.pem"), err,
	    sizeof(err)));
	a = dsn != NULL ? audit_open_pg(dsn, key, cert, 0, err, sizeof(err)) :
	    audit_open(dir, key, cert, err, sizeof(err));
	if (a == NULL)
		fail_msg("open the audit log %s: %s", dsn != NULL ? dsn : dir,
		    err);
	rec.kind = CPX__RECORD_KIND__RECORD_SESSION_CLOSED;
	rec.text = "a record the witness sees only as a digest";
	for (i = 0; i < n; i++) {
		rec.seq = rec.time = 0;
		assert_int_equal(audit_append(a, &rec, &seq), 0);
	}
	if (audit_commit(a, err, sizeof(err)) == -1)
		fail_msg("audit_commit: %s", err);
	audit_close(&a);
	EVP_PKEY_free(key);
	X509_free(cert);
}
