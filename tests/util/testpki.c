/*
 * testpki.c: builds the shared test PKI once per build directory by running
 * certs/cpx-pki (see testpki.h), and owns the static copy of its path.
 *
 * ctest runs test processes in parallel, so building is serialised with an
 * flock; a marker file written last tells later callers the PKI is whole.
 * A run killed half-way leaves no marker, and the next caller starts over.
 */
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "log.h"
#include "testpki.h"
#include "testutil.h"

#ifndef CPX_SOURCE_DIR
#error "CPX_SOURCE_DIR must be defined by the build"
#endif
#ifndef CPX_BINARY_DIR
#error "CPX_BINARY_DIR must be defined by the build"
#endif

/*
 * The node build() issues last: a PKI built before that node joined the
 * layout lacks it and is rebuilt rather than used incomplete.
 */
#define TESTPKI_NEWEST		"nodes/si-backup.pem"

/* Rebuild a PKI older than this: its CRL is valid for 30 days only. */
#define TESTPKI_MAX_AGE		(7 * 24 * 60 * 60)

static char testpki_dir[PATH_MAX];

/* The environment (set by ctest) wins over the compiled-in default. */
static const char *
env_or(const char *name, const char *dflt)
{
	const char *v;

	v = getenv(name);
	return (v != NULL && v[0] != '\0') ? v : dflt;
}

static int
join(char *out, size_t len, const char *a, const char *b)
{
	int n;

	n = snprintf(out, len, "%s/%s", a, b);
	if (n < 0 || (size_t)n >= len) {
		if (len > 0)
			out[0] = '\0';
		log_warnx("testpki: path too long: %s/%s", a, b);
		return -1;
	}
	return 0;
}

/* 1 if the marker exists and is newer than the script and a week. */
static int
is_fresh(const char *marker, const char *script)
{
	struct stat ms, ss;
	time_t now;

	if (stat(marker, &ms) == -1)
		return 0;
	if (stat(script, &ss) == -1)
		return 0;
	if (ss.st_mtim.tv_sec > ms.st_mtim.tv_sec ||
	    (ss.st_mtim.tv_sec == ms.st_mtim.tv_sec &&
	    ss.st_mtim.tv_nsec > ms.st_mtim.tv_nsec))
		return 0;
	now = time(NULL);
	if (now - ms.st_mtime > TESTPKI_MAX_AGE)
		return 0;
	return 1;
}

/*
 * Run "bash script cmd dir [country name]" with stdout and stderr appended
 * to logfd. Through execvp and no shell string, so no path is ever
 * re-parsed.
 */
static int
run_script(const char *script, const char *cmd, const char *dir,
    const char *country, const char *name, int logfd)
{
	char *argv[7];
	pid_t pid, r;
	int status;

	argv[0] = (char *)"bash";
	argv[1] = (char *)script;
	argv[2] = (char *)cmd;
	argv[3] = (char *)dir;
	argv[4] = (char *)country;	/* NULL ends argv here */
	argv[5] = (char *)name;
	argv[6] = NULL;
	fflush(NULL);
	pid = fork();
	if (pid == -1) {
		log_warn("testpki: fork");
		return -1;
	}
	if (pid == 0) {
		if (dup2(logfd, STDOUT_FILENO) == -1 ||
		    dup2(logfd, STDERR_FILENO) == -1)
			_exit(126);
		execvp(argv[0], argv);
		_exit(127);
	}
	do {
		r = waitpid(pid, &status, 0);
	} while (r == -1 && errno == EINTR);
	if (r == -1) {
		log_warn("testpki: waitpid");
		return -1;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		log_warnx("testpki: %s %s %s%s%s failed (status %d)", script,
		    cmd, dir, name != NULL ? " " : "", name != NULL ? name : "",
		    status);
		return -1;
	}
	return 0;
}

static int
build(const char *dir, const char *marker, const char *script,
    const char *logpath)
{
	int logfd = -1, fd = -1, rv = -1;

	/* No marker: whatever is there is from an interrupted run. */
	if (testutil_rmrf(dir) == -1)
		goto done;
	logfd = open(logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
	    0600);
	if (logfd == -1) {
		log_warn("testpki: open %s", logpath);
		goto done;
	}
	/* si-backup: a second Slovenian node, for signer = sender tests. */
	if (run_script(script, "init", dir, NULL, NULL, logfd) == -1 ||
	    run_script(script, "test-fixtures", dir, NULL, NULL, logfd) == -1 ||
	    run_script(script, "issue", dir, "SI", "si-backup", logfd) == -1) {
		log_warnx("testpki: see %s", logpath);
		goto done;
	}
	fd = open(marker, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd == -1) {
		log_warn("testpki: open %s", marker);
		goto done;
	}
	rv = 0;
done:
	if (fd != -1 && close(fd) == -1) {
		log_warn("testpki: close %s", marker);
		rv = -1;
	}
	if (logfd != -1)
		(void)close(logfd);
	return rv;
}

int
testpki_get(const char **dir)
{
	char pki[PATH_MAX], lock[PATH_MAX], marker[PATH_MAX];
	char script[PATH_MAX], logpath[PATH_MAX], newest[PATH_MAX];
	const char *bin, *src;
	int lockfd = -1, rv = -1;

	*dir = NULL;
	bin = env_or("CPX_BINARY_DIR", CPX_BINARY_DIR);
	src = env_or("CPX_SOURCE_DIR", CPX_SOURCE_DIR);
	if (join(pki, sizeof(pki), bin, "testpki") == -1 ||
	    join(lock, sizeof(lock), bin, "testpki.lock") == -1 ||
	    join(logpath, sizeof(logpath), bin, "testpki.log") == -1 ||
	    join(marker, sizeof(marker), pki, ".complete") == -1 ||
	    join(newest, sizeof(newest), pki, TESTPKI_NEWEST) == -1 ||
	    join(script, sizeof(script), src, "certs/cpx-pki") == -1)
		goto done;

	lockfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (lockfd == -1) {
		log_warn("testpki: open %s", lock);
		goto done;
	}
	while (flock(lockfd, LOCK_EX) == -1) {
		if (errno != EINTR) {
			log_warn("testpki: flock %s", lock);
			goto done;
		}
	}
	if ((!is_fresh(marker, script) || access(newest, F_OK) == -1) &&
	    build(pki, marker, script, logpath) == -1)
		goto done;
	memcpy(testpki_dir, pki, sizeof(testpki_dir));
	*dir = testpki_dir;
	rv = 0;
done:
	/* Closing the descriptor releases the flock. */
	if (lockfd != -1)
		(void)close(lockfd);
	return rv;
}

int
testpki_path(char *out, size_t len, const char *rel)
{
	const char *dir;

	if (out == NULL || len == 0)
		return -1;
	out[0] = '\0';
	if (rel == NULL || testpki_get(&dir) == -1)
		return -1;
	return join(out, len, dir, rel);
}

const char *
testpki_file(const char *rel)
{
	static char buf[4][512];
	static int i;

	i = (i + 1) % 4;
	if (testpki_path(buf[i], sizeof(buf[i]), rel) == -1)
		fail_msg("test PKI unavailable (%s)", rel);
	return buf[i];
}

int
testpki_selfsigned(const char *country, const char *cn, long serial,
    EVP_PKEY **kp, X509 **xp)
{
	EVP_PKEY	*k = NULL;
	X509		*x = NULL;
	X509_NAME	*n;
	int		 rc = -1;

	*kp = NULL;
	*xp = NULL;
	if ((k = EVP_EC_gen("P-256")) == NULL || (x = X509_new()) == NULL)
		goto out;
	if (X509_set_version(x, 2) != 1 ||
	    ASN1_INTEGER_set(X509_get_serialNumber(x), serial) != 1 ||
	    X509_gmtime_adj(X509_getm_notBefore(x), -3600) == NULL ||
	    X509_gmtime_adj(X509_getm_notAfter(x), 86400) == NULL)
		goto out;
	n = X509_get_subject_name(x);
	if (country != NULL && X509_NAME_add_entry_by_txt(n, "C",
	    MBSTRING_ASC, (const unsigned char *)country, -1, -1, 0) != 1)
		goto out;
	if (X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
	    (const unsigned char *)cn, -1, -1, 0) != 1 ||
	    X509_set_issuer_name(x, n) != 1 || X509_set_pubkey(x, k) != 1 ||
	    X509_sign(x, k, EVP_sha256()) <= 0)
		goto out;
	*kp = k;
	*xp = x;
	k = NULL;
	x = NULL;
	rc = 0;
out:
	if (rc == -1)
		log_warnx("testpki: cannot make a self-signed key and "
		    "certificate for CN=%s", cn);
	EVP_PKEY_free(k);
	X509_free(x);
	return rc;
}
