/*
 * testpki.h: the shared test PKI. Tests that need certificates take them
 * from one PKI built by certs/cpx-pki (init, then test-fixtures) once per
 * build directory, at $CPX_BINARY_DIR/testpki, so the suite stays fast and
 * every test sees the same network CA. Layout (see certs/README.md):
 *
 *   ca.pem ca.key crl.pem broker.pem broker.key
 *   nodes/<cc>-ncp.pem/.key for si hr at hu it ba rs me mk al xk
 *   nodes/si-backup   (C=SI, a second Slovenian node)
 *   nodes/expired-si  (C=SI, validity entirely in 2020)
 *   nodes/future-at   (C=AT, valid from a year after creation)
 *   nodes/revoked-hr  (C=HR, revoked, listed in crl.pem)
 *   other/ca.pem other/ca.key          an unrelated CA (same CA name)
 *   other/rogue-si.pem/.key            C=SI CN=si-ncp signed by other/ca
 *   brokers/revoked-broker  broker names, revoked, listed in crl.pem
 *   brokers/evil-broker     CN=not-the-broker, SAN DNS:evil.example only
 *   brokers/noeku-broker    broker names, no extended key usage
 *
 * Tests must treat the PKI as read-only: ctest runs them in parallel. A
 * test that revokes or issues runs certs/cpx-pki in its own directory.
 */
#ifndef CPX_TESTPKI_H
#define CPX_TESTPKI_H

#include <stddef.h>

#include <openssl/types.h>

/*
 * Set *dir to the directory of the shared test PKI, building it first if
 * this build directory has none yet (or it is older than certs/cpx-pki or
 * a week, so the CRL never goes stale). Safe to call from parallel test
 * processes: builders are serialised by flock on
 * $CPX_BINARY_DIR/testpki.lock and a completion marker. *dir points to
 * static storage, valid for the life of the process. Returns 0, or -1
 * (logged; the script's output is in $CPX_BINARY_DIR/testpki.log) with
 * *dir NULL.
 */
int	testpki_get(const char **dir) __attribute__((warn_unused_result));

/*
 * Write "<pki dir>/<rel>" to out[len], e.g. rel "nodes/si-ncp.pem".
 * Builds the PKI if needed (testpki_get). Returns 0, or -1 with out[]
 * emptied if the PKI is unavailable or the path does not fit.
 */
int	testpki_path(char *out, size_t len, const char *rel)
	    __attribute__((warn_unused_result));
/*
 * testpki_path into one of four rotating buffers, for a call's arguments
 * (each stays valid for the next three calls); fails the test if the
 * PKI is unavailable.
 */
const char *testpki_file(const char *rel);

/*
 * A fresh P-256 key and a self-signed X.509 v3 certificate for it, valid
 * from an hour ago for a day, subject C=country (omitted if NULL), CN=cn,
 * with the given serial: a broker key for tests of the audit log that
 * need none of the PKI's chain. Sets *kp and *xp (the caller frees them).
 * Returns 0, or -1 (logged) with both NULL.
 */
int	testpki_selfsigned(const char *country, const char *cn, long serial,
	    EVP_PKEY **kp, X509 **xp) __attribute__((warn_unused_result));

#endif
