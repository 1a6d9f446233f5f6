/*
 * audit_tools_util.c: helpers of the cpx-audit tool tests
 * (audit_tools_util.h).
 */
#include <sys/types.h>
#include <sys/wait.h>

#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "audit.h"
#include "audit_tools_util.h"
#include "sign.h"
#include "testpki.h"
#include "tlsctx.h"

int
tools_run(char *out, size_t outlen, const char *const *args)
{
	const char	*argv[32];
	const char	*bin;
	char		 path[PATH_MAX];
	size_t		 n = 0, got = 0;
	ssize_t		 r;
	pid_t		 pid;
	int		 p[2], status;

	bin = getenv("CPX_BINARY_DIR");
	if (bin == NULL || bin[0] == '\0')
		bin = CPX_BINARY_DIR;
	snprintf(path, sizeof(path), "%s/broker/cpx-audit", bin);
	argv[n++] = path;
	while (*args != NULL && n < sizeof(argv) / sizeof(argv[0]) - 1)
		argv[n++] = *args++;
	argv[n] = NULL;
	if (pipe(p) == -1 || (pid = fork()) == -1)
		return -1;
	if (pid == 0) {
		dup2(p[1], 1);
		dup2(p[1], 2);
		close(p[0]);
		execv(path, (char *const *)argv);
		_exit(127);
	}
	close(p[1]);
	while (got < outlen - 1 &&
	    (r = read(p[0], out + got, outlen - 1 - got)) > 0)
		got += (size_t)r;
	out[got] = '\0';
	close(p[0]);
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

const char *
tools_pki(int slot, const char *rel)
{
	static char	buf[8][PATH_MAX];

	if (slot < 0 || slot > 7 ||
	    testpki_path(buf[slot], sizeof(buf[slot]), rel) == -1)
		fail_msg("test PKI unavailable (%s)", rel);
	return buf[slot];
}

void
tools_append_alert(struct audit *a, EVP_PKEY *nk, X509 *nx, const char *id,
    const char *origin, const char *peer)
{
	Cpx__Alert		 al = CPX__ALERT__INIT;
	Cpx__SignedAlert	 sa = CPX__SIGNED_ALERT__INIT;
	Cpx__AuditRecord	 rec = CPX__AUDIT_RECORD__INIT;
	uint8_t			 buf[1024];
	size_t			 len;
	uint64_t		 seq;

	al.id = (char *)id;
	al.origin = (char *)origin;
	al.issued_at = time(NULL) * 1000LL;
	al.category = CPX__CATEGORY__CATEGORY_ROUTE;
	al.severity = CPX__SEVERITY__SEVERITY_HIGH;
	al.handling = CPX__HANDLING__HANDLING_NETWORK;
	al.summary = (char *)"van seen at the crossing";
	len = cpx__alert__pack(&al, buf);
	assert_int_equal(sign_alert(nk, nx, buf, len, &sa), 0);
	rec.kind = CPX__RECORD_KIND__RECORD_ALERT_ACCEPTED;
	rec.peer_country = (char *)peer;
	rec.peer_node = (char *)"si-ncp";
	rec.alert = &sa;
	rec.alert_id = (char *)id;
	assert_int_equal(audit_append(a, &rec, &seq), 0);
	sign_signed_alert_clear(&sa);
}

void
tools_log_signed_by(const char *dir, const char *dsn, const char *base,
    int n, const char *idpfx)
{
	Cpx__AuditRecord	 rec = CPX__AUDIT_RECORD__INIT;
	struct audit		*a;
	EVP_PKEY		*k, *nk;
	X509			*x, *nx;
	uint64_t		 seq;
	char			 p[PATH_MAX], id[64], err[768];
	int			 i;

	snprintf(p, sizeof(p), "%s.key", base);
	k = tlsctx_load_key(tools_pki(6, p), err, sizeof(err));
	snprintf(p, sizeof(p), "%s.pem", base);
	x = tlsctx_load_cert(tools_pki(6, p), err, sizeof(err));
	nk = tlsctx_load_key(tools_pki(6, "nodes/si-ncp.key"), err,
	    sizeof(err));
	nx = tlsctx_load_cert(tools_pki(6, "nodes/si-ncp.pem"), err,
	    sizeof(err));
	assert_non_null(k);
	assert_non_null(x);
	assert_non_null(nk);
	assert_non_null(nx);
	a = dsn != NULL ? audit_open_pg(dsn, k, x, 0, err, sizeof(err)) :
	    audit_open(dir, k, x, err, sizeof(err));
	if (a == NULL)
		fail_msg("open: %s", err);
	for (i = 0; i < n; i++) {
		if (i % 3 == 2) {
			snprintf(id, sizeof(id), "%s-%d", idpfx, i);
			tools_append_alert(a, nk, nx, id, "SI", "SI");
			continue;
		}
		rec.kind = CPX__RECORD_KIND__RECORD_SESSION_OPENED;
		rec.peer_country = (char *)"SI";
		rec.peer_node = (char *)"si-ncp";
		rec.text = (char *)"";
		rec.seq = 0;
		rec.time = 0;
		assert_int_equal(audit_append(a, &rec, &seq), 0);
	}
	if (audit_commit(a, err, sizeof(err)) != 0)
		fail_msg("commit: %s", err);
	audit_close(&a);	/* writes the checkpoint */
	EVP_PKEY_free(k);
	X509_free(x);
	EVP_PKEY_free(nk);
	X509_free(nx);
}
