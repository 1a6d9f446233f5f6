/*
 * audit_append_bench.c: what a commit of the audit log costs, measured
 * on the disk the log is on (not run by ctest: a benchmark, not a test).
 *
 *     audit_append_bench DIR N B      append N records of about an
 *                                     accepted alert's size, committing
 *                                     every B; prints commits/s, records/s
 *     audit_append_bench --dsn DSN N B the same on a PostgreSQL store
 *                                     (audit_open_pg; the tables must be
 *                                     empty or hold a sound log), with
 *                                     p50/p99 commit latency
 *     audit_append_bench -p DIR K     the two ways to update a small file
 *                                     atomically, K times each: two slots
 *                                     written in turn (pwrite+fdatasync),
 *                                     or temp+fsync+rename+fsync dir
 *
 * DIR must not exist (it is created, and removed at the end). It uses
 * only audit.h, so the same source measures any version of the store.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "audit.h"
#include "log.h"

#define RECORD_TEXT	900	/* about a signed alert with its cert */

static double
now_s(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
make_key(EVP_PKEY **kp, X509 **xp)
{
	EVP_PKEY	*k;
	X509		*x;

	if ((k = EVP_EC_gen("P-256")) == NULL || (x = X509_new()) == NULL)
		return -1;
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN",
	    MBSTRING_ASC, (const unsigned char *)"bench", -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	X509_set_pubkey(x, k);
	if (X509_sign(x, k, EVP_sha256()) <= 0)
		return -1;
	*kp = k;
	*xp = x;
	return 0;
}

static int
rmdir_all(const char *dir)
{
	char	cmd[1100];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static int
cmp_double(const void *x, const void *y)
{
	double	a = *(const double *)x, b = *(const double *)y;

	return a < b ? -1 : a > b;
}

/* dsn: a PostgreSQL store instead of the directory. */
static int
appends(const char *dir, const char *dsn, long n, long b)
{
	double			*lat = NULL, c0;
	Cpx__AuditRecord	 rec = CPX__AUDIT_RECORD__INIT;
	struct audit		*a = NULL;
	EVP_PKEY		*k = NULL;
	X509			*x = NULL;
	char			 err[512], text[RECORD_TEXT + 1];
	uint64_t		 seq;
	long			 i, commits = 0;
	double			 t0, t;
	int			 ret = 1;

	memset(text, 'a', RECORD_TEXT);
	text[RECORD_TEXT] = '\0';
	if (make_key(&k, &x) == -1) {
		fprintf(stderr, "no key\n");
		goto done;
	}
	if ((lat = calloc((size_t)(n / b + 2), sizeof(*lat))) == NULL)
		goto done;
	a = dsn != NULL ? audit_open_pg(dsn, k, x, 0, err, sizeof(err)) :
	    audit_open(dir, k, x, err, sizeof(err));
	if (a == NULL) {
		fprintf(stderr, "%s\n", err);
		goto done;
	}
	rec.kind = CPX__RECORD_KIND__RECORD_SESSION_CLOSED;
	rec.peer_country = (char *)"SI";
	rec.peer_node = (char *)"si-ncp";
	rec.text = text;
	t0 = now_s();
	for (i = 1; i <= n; i++) {
		rec.seq = 0;
		rec.time = 0;
		if (audit_append(a, &rec, &seq) == -1) {
			fprintf(stderr, "append failed\n");
			goto done;
		}
		if (i % b == 0 || i == n) {
			c0 = now_s();
			if (audit_commit(a, err, sizeof(err)) == -1) {
				fprintf(stderr, "%s\n", err);
				goto done;
			}
			lat[commits++] = now_s() - c0;
		}
	}
	t = now_s() - t0;
	qsort(lat, (size_t)commits, sizeof(*lat), cmp_double);
	printf("records %ld batch %ld: %.3f s, %.0f commits/s, %.0f "
	    "records/s, commit p50 %.3f ms p99 %.3f ms\n", n, b, t,
	    (double)commits / t, (double)n / t, lat[commits / 2] * 1e3,
	    lat[(commits * 99) / 100] * 1e3);
	ret = 0;
done:
	free(lat);
	audit_close(&a);
	EVP_PKEY_free(k);
	X509_free(x);
	return ret;
}

/* The two ways to update a small file atomically, timed. */
static int
primitives(const char *dir, long k)
{
	char		 path[1100], tmp[1100];
	unsigned char	 slot[128];
	long		 i;
	double		 t0, t1, t2;
	int		 fd, dfd, ret = 1;

	memset(slot, 0x5a, sizeof(slot));
	if (mkdir(dir, 0700) == -1 ||
	    (dfd = open(dir, O_RDONLY | O_DIRECTORY)) == -1) {
		perror(dir);
		return 1;
	}
	snprintf(path, sizeof(path), "%s/slots", dir);
	if ((fd = open(path, O_RDWR | O_CREAT, 0600)) == -1)
		goto fail;
	t0 = now_s();
	for (i = 0; i < k; i++)
		if (pwrite(fd, slot, sizeof(slot), (i & 1) * 4096) !=
		    (ssize_t)sizeof(slot) || fdatasync(fd) == -1)
			goto fail;
	t1 = now_s();
	close(fd);
	snprintf(path, sizeof(path), "%s/renamed", dir);
	snprintf(tmp, sizeof(tmp), "%s/renamed.tmp", dir);
	for (i = 0; i < k; i++) {
		if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600)) ==
		    -1 || write(fd, slot, sizeof(slot)) !=
		    (ssize_t)sizeof(slot) || fsync(fd) == -1 ||
		    close(fd) == -1 || rename(tmp, path) == -1 ||
		    fsync(dfd) == -1)
			goto fail;
	}
	t2 = now_s();
	printf("two slots, pwrite+fdatasync: %.0f updates/s (%.3f ms)\n",
	    (double)k / (t1 - t0), (t1 - t0) * 1e3 / (double)k);
	printf("temp+fsync+rename+fsync dir: %.0f updates/s (%.3f ms)\n",
	    (double)k / (t2 - t1), (t2 - t1) * 1e3 / (double)k);
	ret = 0;
fail:
	if (ret != 0)
		perror(dir);
	close(dfd);
	return ret;
}

int
main(int argc, char **argv)
{
	int	rc;

	log_init("audit_append_bench", LOG_LEVEL_WARN);
	if (argc == 4 && strcmp(argv[1], "-p") == 0) {
		rc = primitives(argv[2], atol(argv[3]));
		(void)rmdir_all(argv[2]);
		return rc;
	}
	if (argc == 5 && strcmp(argv[1], "--dsn") == 0 &&
	    atol(argv[3]) > 0 && atol(argv[4]) > 0)
		return appends(NULL, argv[2], atol(argv[3]), atol(argv[4]));
	if (argc != 4 || atol(argv[2]) <= 0 || atol(argv[3]) <= 0) {
		fprintf(stderr, "usage: audit_append_bench DIR N B\n"
		    "       audit_append_bench --dsn DSN N B\n"
		    "       audit_append_bench -p DIR K\n");
		return 2;
	}
	rc = appends(argv[1], NULL, atol(argv[2]), atol(argv[3]));
	if (rmdir_all(argv[1]) == -1)
		fprintf(stderr, "cannot remove %s\n", argv[1]);
	return rc;
}
