/*
 * testbroker.c: see testbroker.h. Owns the broker child process and its
 * directory for the duration of a test.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "testbroker.h"
#include "testpki.h"
#include "testutil.h"

int64_t
testutil_now_ms(void)
{
	return clock_mono_ms();
}

static const char *
srcdir(void)
{
	const char *s = getenv("CPX_SOURCE_DIR");

	return s ? s : CPX_SOURCE_DIR;
}

static const char *
bindir(void)
{
	const char *s = getenv("CPX_BINARY_DIR");

	return s ? s : CPX_BINARY_DIR;
}

static int
free_port(void)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int fd, port = -1;

	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		return -1;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sin, &len) == 0)
		port = ntohs(sin.sin_port);
	close(fd);
	return port;
}

int
testutil_tcp_connects(int port)
{
	struct sockaddr_in sin;
	int fd, ok;

	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		return 0;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ok = connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0;
	close(fd);
	return ok;
}

static int
copy_file(const char *from, const char *to)
{
	char buf[8192];
	size_t n;
	FILE *in, *out;
	int rc = 0;

	if ((in = fopen(from, "r")) == NULL)
		return -1;
	if ((out = fopen(to, "w")) == NULL) {
		fclose(in);
		return -1;
	}
	while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
		if (fwrite(buf, 1, n, out) != n)
			rc = -1;
	fclose(in);
	if (fclose(out) != 0)
		rc = -1;
	return rc;
}

static void
print_log(struct testbroker *tb)
{
	char buf[4096];
	size_t n;
	FILE *f;

	if ((f = fopen(tb->log, "r")) == NULL)
		return;
	fprintf(stderr, "---- broker log %s ----\n", tb->log);
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		fwrite(buf, 1, n, stderr);
	fprintf(stderr, "---- end of broker log ----\n");
	fclose(f);
}

static int
spawn(struct testbroker *tb)
{
	char exe[512];
	int64_t until;
	int fd, status;

	snprintf(exe, sizeof(exe), "%s/broker/cpx-broker", bindir());
	if ((tb->pid = fork()) == -1)
		return -1;
	if (tb->pid == 0) {
		fd = open(tb->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
		if (fd != -1) {
			dup2(fd, 2);
			dup2(fd, 1);
		}
		execl(exe, "cpx-broker", "-c", tb->conf, "-d", (char *)NULL);
		_exit(127);
	}
	until = testutil_now_ms() + 20000;
	while (testutil_now_ms() < until) {
		if (waitpid(tb->pid, &status, WNOHANG) == tb->pid) {
			tb->pid = 0;
			print_log(tb);
			return -1;
		}
		if (testutil_tcp_connects(tb->port) &&
		    testbroker_wait_log(tb, "listening on", 0))
			return 0;
		usleep(10000);	/* polling interval, not a wait for an event */
	}
	print_log(tb);
	return -1;
}

int
testbroker_start(struct testbroker *tb, const char *extra, const char *policy)
{
	const char *pki;
	const char *metrics = "";
	char ini[4096], src[512];

	memset(tb, 0, sizeof(*tb));
	if (testpki_get(&pki) == -1)
		return -1;
	if (testutil_mkdtemp(tb->dir, sizeof(tb->dir)) == -1)
		return -1;
	if ((tb->port = free_port()) <= 0)
		return -1;
	snprintf(tb->endpoint, sizeof(tb->endpoint), "tcp://127.0.0.1:%d",
	    tb->port);
	snprintf(tb->conf, sizeof(tb->conf), "%s/broker.ini", tb->dir);
	snprintf(tb->log, sizeof(tb->log), "%s/broker.log", tb->dir);
	snprintf(tb->audit, sizeof(tb->audit), "%s/audit", tb->dir);
	snprintf(tb->policy, sizeof(tb->policy), "%s/policy.ini", tb->dir);
	if (policy != NULL) {
		if (testutil_write_file(tb->policy, policy,
		    strlen(policy)) == -1)
			return -1;
	} else {
		snprintf(src, sizeof(src), "%s/broker/policy.example.ini",
		    srcdir());
		if (copy_file(src, tb->policy) == -1)
			return -1;
	}
	/* extra may set audit_dir itself (a test on a small file system). */
	if (extra != NULL && strstr(extra, "audit_dir") != NULL)
		tb->audit[0] = '\0';
	/*
	 * A taken metrics port stops the broker at start, so test brokers,
	 * many at once, take a free one unless extra chooses.
	 */
	if (extra == NULL || strstr(extra, "metrics_listen") == NULL)
		metrics = "metrics_listen = 127.0.0.1:0\n";
	snprintf(ini, sizeof(ini),
	    "[broker]\n"
	    "listen = %s\n"
	    "ca = %s/ca.pem\n"
	    "cert = %s/broker.pem\n"
	    "key = %s/broker.key\n"
	    "crl = %s/crl.pem\n"
	    "policy = %s\n"
	    "%s%s%s"
	    "%s"
	    "%s\n",
	    tb->endpoint, pki, pki, pki, pki, tb->policy,
	    tb->audit[0] ? "audit_dir = " : "", tb->audit,
	    tb->audit[0] ? "\n" : "", metrics, extra ? extra : "");
	if (testutil_write_file(tb->conf, ini, strlen(ini)) == -1)
		return -1;
	return spawn(tb);
}

/*
 * Stop with SIGTERM and insist on a clean exit: status 0 means the drain
 * worked and, in the sanitizer build, LeakSanitizer found no leak (it
 * makes the process exit non-zero otherwise). Returns 0 or -1 (log shown).
 */
int
testbroker_stop_clean(struct testbroker *tb)
{
	int status;

	if (tb->pid <= 0)
		return 0;
	status = testbroker_stop(tb, SIGTERM);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	fprintf(stderr, "broker did not exit cleanly (status 0x%x)\n",
	    (unsigned)status);
	print_log(tb);
	return -1;
}

int
testbroker_restart(struct testbroker *tb)
{
	if (testbroker_stop_clean(tb) == -1)
		return -1;
	return spawn(tb);
}

int
testbroker_stop(struct testbroker *tb, int sig)
{
	int64_t until;
	int status;

	if (tb->pid <= 0)
		return -1;
	kill(tb->pid, sig);
	until = testutil_now_ms() + 10000;
	while (waitpid(tb->pid, &status, WNOHANG) == 0) {
		if (testutil_now_ms() > until) {
			kill(tb->pid, SIGKILL);
			waitpid(tb->pid, &status, 0);
			break;
		}
		usleep(5000);
	}
	tb->pid = 0;
	return status;
}

int
testbroker_cleanup(struct testbroker *tb)
{
	int rc = testbroker_stop_clean(tb);

	if (getenv("CPX_KEEP_TEST_DIRS") == NULL && tb->dir[0] != '\0' &&
	    testutil_rmrf(tb->dir) == -1)
		fprintf(stderr, "cannot remove %s\n", tb->dir);
	return rc;
}

void
testbroker_discard(struct testbroker *tb)
{
	if (tb->pid > 0)
		(void)testbroker_stop(tb, SIGKILL);
	if (tb->dir[0] != '\0' && getenv("CPX_KEEP_TEST_DIRS") == NULL &&
	    testutil_rmrf(tb->dir) == -1)
		fprintf(stderr, "cannot remove %s\n", tb->dir);
	memset(tb, 0, sizeof(*tb));
}

int
testbroker_log_count(struct testbroker *tb, const char *needle)
{
	char *buf, *p;
	int n = 0;

	if ((buf = testutil_read_text(tb->log)) == NULL)
		return 0;
	for (p = buf; (p = strstr(p, needle)) != NULL; p += strlen(needle))
		n++;
	free(buf);
	return n;
}

int
testbroker_wait_log(struct testbroker *tb, const char *needle, int timeout_ms)
{
	int64_t until = testutil_now_ms() + timeout_ms;

	do {
		if (testbroker_log_count(tb, needle) > 0)
			return 1;
		if (timeout_ms > 0)
			usleep(10000);
	} while (testutil_now_ms() < until);
	return 0;
}

struct cpx_client *
testbroker_client(struct testbroker *tb, const char *node, int reconnect,
    char *err, size_t errlen)
{
	struct cpx_client_config cfg;
	char ca[512], cert[512], key[512], crl[512];
	const char *pki;

	if (testpki_get(&pki) == -1) {
		snprintf(err, errlen, "no test PKI");
		return NULL;
	}
	snprintf(ca, sizeof(ca), "%s/ca.pem", pki);
	snprintf(crl, sizeof(crl), "%s/crl.pem", pki);
	if (strchr(node, '/') != NULL) {
		snprintf(cert, sizeof(cert), "%s/%s.pem", pki, node);
		snprintf(key, sizeof(key), "%s/%s.key", pki, node);
	} else {
		snprintf(cert, sizeof(cert), "%s/nodes/%s.pem", pki, node);
		snprintf(key, sizeof(key), "%s/nodes/%s.key", pki, node);
	}
	memset(&cfg, 0, sizeof(cfg));
	cfg.endpoint = tb->endpoint;
	cfg.ca = ca;
	cfg.cert = cert;
	cfg.key = key;
	cfg.crl = crl;
	cfg.reconnect = reconnect;
	/* The *_pool variants of the tests verify on client threads. */
	if (getenv("CPX_TEST_CLIENT_VERIFY_THREADS") != NULL)
		cfg.verify_threads = (unsigned int)atoi(
		    getenv("CPX_TEST_CLIENT_VERIFY_THREADS"));
	return cpx_client_new(&cfg, err, errlen);
}

struct cpx_client *
testbroker_connect(struct testbroker *tb, const char *node, int reconnect,
    char *err, size_t errlen)
{
	struct cpx_client *c;

	if ((c = testbroker_client(tb, node, reconnect, err, errlen)) == NULL)
		return NULL;
	if (cpx_client_connect(c, 10000, err, errlen) == -1) {
		cpx_client_free(&c);
		return NULL;
	}
	return c;
}

/* Split blank-separated words into fixed buffers; returns the count. */
static size_t
split(const char *s, char *ptrs[], char *bufs, size_t bufw, size_t max)
{
	size_t n = 0, len;
	const char *p = s;

	while (*p != '\0' && n < max) {
		while (*p == ' ')
			p++;
		if (*p == '\0')
			break;
		len = strcspn(p, " ");
		if (len >= bufw)
			len = bufw - 1;
		memcpy(bufs + n * bufw, p, len);
		bufs[n * bufw + len] = '\0';
		ptrs[n] = bufs + n * bufw;
		n++;
		p += strcspn(p, " ");
	}
	return n;
}

void
testalert_init(struct testalert *ta, const char *id, int category,
    int severity, int handling, const char *recipients, const char *summary)
{
	static const Cpx__Alert init = CPX__ALERT__INIT;

	memset(ta, 0, sizeof(*ta));
	ta->alert = init;
	snprintf(ta->id, sizeof(ta->id), "%s", id ? id : "");
	snprintf(ta->summary, sizeof(ta->summary), "%s", summary);
	ta->alert.id = ta->id;
	ta->alert.origin = "";
	ta->alert.summary = ta->summary;
	ta->alert.category = category;
	ta->alert.severity = severity;
	ta->alert.handling = handling;
	ta->alert.n_recipients = split(recipients, ta->recipients,
	    &ta->rbuf[0][0], sizeof(ta->rbuf[0]), 16);
	ta->alert.recipients = ta->recipients;
}

void
testfilter_init(struct testfilter *tf, const char *origins,
    const char *regions, const Cpx__Category *cats, size_t ncats,
    int min_severity)
{
	static const Cpx__Filter init = CPX__FILTER__INIT;
	size_t i;

	memset(tf, 0, sizeof(*tf));
	tf->f = init;
	tf->f.n_origins = split(origins, tf->origins, &tf->obuf[0][0],
	    sizeof(tf->obuf[0]), 16);
	tf->f.origins = tf->origins;
	tf->f.n_regions = split(regions, tf->regions, &tf->rbuf[0][0],
	    sizeof(tf->rbuf[0]), 8);
	tf->f.regions = tf->regions;
	for (i = 0; i < ncats && i < 8; i++)
		tf->cats[i] = cats[i];
	tf->f.n_categories = i;
	tf->f.categories = tf->cats;
	tf->f.min_severity = min_severity;
}
