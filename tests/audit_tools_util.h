/*
 * audit_tools_util.h: what the tests of cpx-audit's tools share
 * (test_audit_tools.c without a database, test_pg_tools.c with one):
 * running the built cpx-audit, and writing a log, in a directory or a
 * PostgreSQL store, whose checkpoints a given broker key signs and whose
 * alerts a node really signed, so verify --ca has real work. Also used
 * by test_audit.c and test_trust.c.
 */
#ifndef CPX_AUDIT_TOOLS_UTIL_H
#define CPX_AUDIT_TOOLS_UTIL_H

#include <stddef.h>

#include <openssl/types.h>

struct audit;

/*
 * Run the built cpx-audit with argv (NULL-terminated, without the
 * program), stdout and stderr into out[] (truncated). Returns its exit
 * status, or -1.
 */
int	tools_run(char *out, size_t outlen, const char *const *argv);

/*
 * "<test PKI>/rel" (e.g. "ca.pem"): a static buffer per call slot
 * (slot 0..7), so several may be held at once.
 */
const char *tools_pki(int slot, const char *rel);

/*
 * Append to a an ALERT_ACCEPTED record from node si-ncp of peer country
 * peer: an alert id of origin country origin that the node key nk and
 * certificate nx really signed. Fails the test on any error.
 */
void	tools_append_alert(struct audit *a, EVP_PKEY *nk, X509 *nx,
	    const char *id, const char *origin, const char *peer);

/*
 * Open the log (the directory dir, or with dsn != NULL the PostgreSQL
 * store dsn) with the broker key and certificate "<PKI>/<base>.key/.pem",
 * append n records (every third an alert si-ncp signed, ids
 * "<idpfx>-<i>"), commit and close, which writes a checkpoint signed by
 * that key. Fails the test on any error.
 */
void	tools_log_signed_by(const char *dir, const char *dsn,
	    const char *base, int n, const char *idpfx);

#endif
