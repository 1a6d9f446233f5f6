/*
 * test_metrics.c: what the broker tells its operators, read the way they
 * read it. A real broker with real TLS nodes; /metrics and /healthz
 * scraped with curl. Counters move as alerts flow (accepted by origin,
 * deliveries, last seq, a refusal by reason); the endpoint takes GET
 * only and no body; the broker warns 7 days and 1 day before its CRL or
 * certificate expires and once it has (each once), and /healthz turns
 * 503 with the reason when the CRL goes stale; on a full disk the log
 * says so once with a count, not once per failed commit.
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "alert.h"
#include "cpx_client.h"
#include "testbroker.h"
#include "testhttp.h"
#include "testpki.h"
#include "testsink.h"
#include "testutil.h"

#define BODY_MAX	TESTHTTP_BODY_MAX

struct fixture {
	struct testbroker	tb;
	char			fs[256];	/* a tmpfs, while mounted */
};

static struct cpx_client *
subscriber(struct testbroker *tb, const char *node, struct testsink *sink,
    struct testfilter *tf, Cpx__Filter **f)
{
	struct cpx_client *c;
	uint64_t req;

	assert_non_null(c = testsink_connect(tb, node, 0, sink));
	testfilter_init(tf, "", "", NULL, 0, 0);
	f[0] = &tf->f;
	assert_int_equal(cpx_subscribe(c, f, 1, 0, 0, &req), 0);
	assert_true(testsink_run_until(c, &sink->subscribed, 1, 5000));
	return c;
}

static void
publish(struct cpx_client *c, const char *id, const char *summary,
    int want_reason, struct cpx_result *res)
{
	struct testalert ta;
	int rc;

	testalert_init(&ta, id, CPX__CATEGORY__CATEGORY_ROUTE,
	    CPX__SEVERITY__SEVERITY_LOW, CPX__HANDLING__HANDLING_NETWORK, "",
	    summary);
	rc = cpx_publish(c, &ta.alert, 10000, res);
	if (want_reason == 0 && rc != 0)
		fail_msg("%s refused: %s", id, res->text);
	if (want_reason != 0) {
		assert_int_equal(rc, -1);
		assert_int_equal(res->reason, want_reason);
	}
}

/* --- counters move as alerts flow ----------------------------------------- */

static void
test_flow(void **state)
{
	struct testbroker *tb = &((struct fixture *)*state)->tb;
	struct testsink *sink;
	struct testfilter tf;
	struct cpx_client *si, *hr;
	struct cpx_result res;
	Cpx__Filter *f[1];
	char *body, err[400], id[32];
	double seq0;
	int port, i;

	assert_non_null(body = malloc(BODY_MAX));
	assert_non_null(sink = calloc(1, sizeof(*sink)));
	assert_int_equal(testbroker_start(tb, "metrics_listen = 127.0.0.1:0",
	    NULL), 0);
	port = testhttp_metrics_port(tb);

	assert_int_equal(testhttp_get(port, "/healthz", "", body), 200);
	assert_string_equal(body, "ok\n");
	assert_int_equal(testhttp_get(port, "/metrics", "", body), 200);
	assert_true(testhttp_metric(body, "cpx_healthy") == 1);
	assert_true(testhttp_metric(body, "cpx_alerts_accepted_total{origin=\"SI\"}")
	    == -1);
	assert_true((seq0 = testhttp_metric(body, "cpx_audit_last_seq")) >= 0);
	assert_true(testhttp_metric(body, "cpx_crl_expiry_seconds") > 86400);
	assert_true(testhttp_metric(body, "cpx_cert_expiry_seconds") > 86400);

	hr = subscriber(tb, "hr-ncp", sink, &tf, f);
	si = testbroker_connect(tb, "si-ncp", 0, err, sizeof(err));
	if (si == NULL)
		fail_msg("si-ncp: %s", err);
	assert_int_equal(testhttp_get(port, "/metrics", "", body), 200);
	assert_true(testhttp_metric(body, "cpx_sessions{country=\"SI\"}") == 1);
	assert_true(testhttp_metric(body, "cpx_sessions{country=\"HR\"}") == 1);

	for (i = 0; i < 3; i++) {
		snprintf(id, sizeof(id), "metrics-%d", i);
		publish(si, id, "metrics flow", 0, &res);
	}
	assert_true(testsink_wait_deliveries(sink, hr, 3, 10000));
	assert_int_equal(testhttp_get(port, "/metrics", "", body), 200);
	assert_true(testhttp_metric(body, "cpx_alerts_accepted_total{origin=\"SI\"}")
	    == 3);
	assert_true(testhttp_metric(body, "cpx_deliveries_total") >= 3);
	assert_true(testhttp_metric(body, "cpx_audit_last_seq") >= seq0 + 3);
	/* The three alerts went out live: delivery stands past them. */
	assert_true(testhttp_metric(body, "cpx_delivered_seq") >= seq0 + 3);
	assert_true(testhttp_metric(body, "cpx_delivered_seq") <=
	    testhttp_metric(body, "cpx_audit_last_seq"));
	assert_true(testhttp_metric(body, "cpx_commit_seconds_count") >= 1);
	assert_true(testhttp_metric(body, "cpx_commit_seconds_bucket{le=\"+Inf\"}") ==
	    testhttp_metric(body, "cpx_commit_seconds_count"));
	assert_true(testhttp_metric(body, "cpx_audit_bytes") > 0);
	assert_true(testhttp_metric(body, "cpx_verify_backlog") == 0);

	/* The same id with other bytes: refused, counted by reason. */
	publish(si, "metrics-0", "other bytes",
	    CPX__REASON__REASON_DUPLICATE_CONFLICT, &res);
	assert_int_equal(testhttp_get(port, "/metrics", "", body), 200);
	assert_true(testhttp_metric(body, "cpx_alerts_refused_total{origin=\"SI\","
	    "reason=\"duplicate-conflict\"}") == 1);
	assert_true(testhttp_metric(body, "cpx_alerts_accepted_total{origin=\"SI\"}")
	    == 3);

	/* GET only, no body, two paths. */
	assert_int_equal(testhttp_get(port, "/metrics", "-X POST", body), 405);
	assert_int_equal(testhttp_get(port, "/metrics", "-X GET --data-binary x",
	    body), 413);
	assert_int_equal(testhttp_get(port, "/", "", body), 404);
	assert_int_equal(testhttp_get(port, "/healthz", "", body), 200);

	cpx_client_free(&si);
	cpx_client_free(&hr);
	assert_int_equal(testbroker_cleanup(tb), 0);
	free(sink);
	free(body);
}

/* --- the endpoint is bounded and never holds the loop ---------------------- */

static int
tcp_open(int port)
{
	struct sockaddr_in sin;
	int fd;

	assert_true((fd = socket(AF_INET, SOCK_STREAM, 0)) >= 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	return fd;
}

/* 1 if the server closes fd (EOF or reset) within timeout_ms. */
static int
closed_within(int fd, int timeout_ms)
{
	struct pollfd pfd = { fd, POLLIN, 0 };
	char c;

	if (poll(&pfd, 1, timeout_ms) != 1)
		return 0;
	return recv(fd, &c, 1, 0) <= 0;
}

static void
test_http_bounds(void **state)
{
	struct testbroker *tb = &((struct fixture *)*state)->tb;
	struct cpx_client *si;
	struct cpx_result res;
	char err[400], *body;
	int fds[4], extra, port, i, code = 0;
	int64_t t0, until;

	assert_non_null(body = malloc(BODY_MAX));
	assert_int_equal(testbroker_start(tb, "metrics_listen = 127.0.0.1:0",
	    NULL), 0);
	port = testhttp_metrics_port(tb);
	/* Four idle connections, the most one address may hold. */
	for (i = 0; i < 4; i++)
		fds[i] = tcp_open(port);
	t0 = testutil_now_ms();
	/* A fifth is closed at once. */
	extra = tcp_open(port);
	assert_true(closed_within(extra, 2000));
	close(extra);
	assert_int_equal(testhttp_get(port, "/healthz", "", body), 0);
	/* Alerts flow meanwhile: the endpoint never holds the loop. */
	si = testbroker_connect(tb, "si-ncp", 0, err, sizeof(err));
	if (si == NULL)
		fail_msg("si-ncp: %s", err);
	publish(si, "bounds-1", "while idle HTTP connections wait", 0, &res);
	/* The idle ones are cut after 5 s; a scrape works again. */
	assert_true(closed_within(fds[0], 8000));
	assert_true(testutil_now_ms() - t0 >= 3000);
	for (i = 0; i < 4; i++)
		close(fds[i]);
	for (until = testutil_now_ms() + 3000; testutil_now_ms() < until &&
	    code != 200; usleep(20000))
		code = testhttp_get(port, "/healthz", "", body);
	assert_int_equal(code, 200);
	cpx_client_free(&si);
	assert_int_equal(testbroker_cleanup(tb), 0);
	free(body);
}

/* --- expiry warnings and /healthz on a stale CRL -------------------------- */

static void
run(const char *cmd)
{
	int rc = system(cmd);

	if (rc != 0)
		fail_msg("exit %d: %s", rc, cmd);
}

static int
free_port(void)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int fd, port;

	assert_true((fd = socket(AF_INET, SOCK_STREAM, 0)) >= 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	port = ntohs(sin.sin_port);
	close(fd);
	return port;
}

/*
 * A broker on a copy of the test PKI in tb->dir/pki (which the test may
 * change: a CRL or a broker certificate about to expire), filling tb so
 * that the testbroker_* helpers work on it. The copy's CA is the test
 * PKI's, so its nodes connect as usual.
 */
static void
start_own(struct testbroker *tb, const char *pki)
{
	const char *bin = getenv("CPX_BINARY_DIR");
	char ini[2048], exe[512];
	int64_t until;
	int fd;

	snprintf(tb->conf, sizeof(tb->conf), "%s/broker.ini", tb->dir);
	snprintf(tb->log, sizeof(tb->log), "%s/broker.log", tb->dir);
	snprintf(tb->audit, sizeof(tb->audit), "%s/audit", tb->dir);
	snprintf(tb->policy, sizeof(tb->policy), "%s/broker/policy.example.ini",
	    getenv("CPX_SOURCE_DIR") ? getenv("CPX_SOURCE_DIR") :
	    CPX_SOURCE_DIR);
	tb->port = free_port();
	snprintf(tb->endpoint, sizeof(tb->endpoint), "tcp://127.0.0.1:%d",
	    tb->port);
	snprintf(ini, sizeof(ini), "[broker]\nlisten = %s\nca = %s/ca.pem\n"
	    "cert = %s/broker.pem\nkey = %s/broker.key\ncrl = %s/crl.pem\n"
	    "policy = %s\naudit_dir = %s\nmetrics_listen = 127.0.0.1:0\n",
	    tb->endpoint, pki, pki, pki, pki, tb->policy, tb->audit);
	assert_int_equal(testutil_write_file(tb->conf, ini, strlen(ini)), 0);
	snprintf(exe, sizeof(exe), "%s/broker/cpx-broker",
	    bin ? bin : CPX_BINARY_DIR);
	assert_true((tb->pid = fork()) != -1);
	if (tb->pid == 0) {
		fd = open(tb->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
		if (fd != -1) {
			dup2(fd, 2);
			dup2(fd, 1);
		}
		execl(exe, "cpx-broker", "-c", tb->conf, (char *)NULL);
		_exit(127);
	}
	until = testutil_now_ms() + 20000;
	while (!testbroker_wait_log(tb, "listening on", 0) &&
	    testutil_now_ms() < until)
		usleep(10000);	/* polling interval */
	assert_true(testbroker_wait_log(tb, "listening on", 0));
}

static void
hup(struct testbroker *tb, int n)
{
	char *log;

	assert_int_equal(kill(tb->pid, SIGHUP), 0);
	/* Wait for the n-th reload to be done (its checks logged). */
	for (int64_t until = testutil_now_ms() + 10000;
	    testutil_now_ms() < until; usleep(10000))
		if (testbroker_log_count(tb, "SIGHUP: reloading") >= n &&
		    testbroker_log_count(tb, "SIGHUP: reload done") >= n)
			return;
	log = testutil_read_text(tb->log);
	fail_msg("reload %d not done: %s", n, log ? log : "");
}

#define CRL_SOON	"(its nextUpdate): the CA must publish"
#define CERT_SOON	"(notAfter): issue a new one"

static void
test_expiry(void **state)
{
	struct testbroker *tb = &((struct fixture *)*state)->tb;
	const char *pki0;
	char pki[300], cmd[2048], end[32], *body, *script;
	const char *src = getenv("CPX_SOURCE_DIR") ? getenv("CPX_SOURCE_DIR") :
	    CPX_SOURCE_DIR;
	time_t t;
	struct tm tm;
	double v;
	int port, code = 0;
	int64_t until;

	assert_non_null(body = malloc(BODY_MAX));
	assert_int_equal(testpki_get(&pki0), 0);
	memset(tb, 0, sizeof(*tb));
	assert_int_equal(testutil_mkdtemp(tb->dir, sizeof(tb->dir)), 0);
	snprintf(pki, sizeof(pki), "%s/pki", tb->dir);
	snprintf(cmd, sizeof(cmd), "cp -a '%s' '%s'", pki0, pki);
	run(cmd);
	assert_non_null(script = malloc(600));
	snprintf(script, 600, "'%s/certs/cpx-pki'", src);
	/* A CRL for 3 days; a broker certificate for 20 hours. */
	snprintf(cmd, sizeof(cmd), "%s crl '%s' --days 3 >/dev/null 2>&1",
	    script, pki);
	run(cmd);
	t = time(NULL) + 20 * 3600;
	gmtime_r(&t, &tm);
	strftime(end, sizeof(end), "%Y%m%d%H%M%SZ", &tm);
	snprintf(cmd, sizeof(cmd), "cd '%s' && openssl req -new -key "
	    "broker.key -subj /CN=cpx-broker -out broker.csr 2>/dev/null && "
	    "CPX_PKI_DIR='%s' CPX_PKI_SAN=DNS:localhost,IP:127.0.0.1 openssl "
	    "ca -batch -config db/openssl.cnf -extensions v3_broker -enddate "
	    "%s -notext -in broker.csr -out broker.pem >/dev/null 2>&1",
	    pki, pki, end);
	run(cmd);
	start_own(tb, pki);
	port = testhttp_metrics_port(tb);

	/* At start: the 7-day warning of the CRL, the 1-day of the cert. */
	assert_true(testbroker_wait_log(tb, CRL_SOON, 5000));
	assert_int_equal(testbroker_log_count(tb, CRL_SOON), 1);
	assert_int_equal(testbroker_log_count(tb, "day(s) 0 hour(s) (its "
	    "nextUpdate)") + testbroker_log_count(tb, "2 day(s) 23 hour(s) "
	    "(its nextUpdate)"), 1);
	assert_int_equal(testbroker_log_count(tb, CERT_SOON), 1);
	assert_int_equal(testbroker_log_count(tb, "expires in 20 hour(s) 0 "
	    "minute(s)") + testbroker_log_count(tb, "expires in 19 hour(s) 59 "
	    "minute(s)"), 1);
	assert_int_equal(testhttp_get(port, "/metrics", "", body), 200);
	v = testhttp_metric(body, "cpx_crl_expiry_seconds");
	assert_true(v > 3 * 86400 - 600 && v <= 3 * 86400);
	v = testhttp_metric(body, "cpx_cert_expiry_seconds");
	assert_true(v > 20 * 3600 - 600 && v <= 20 * 3600);
	assert_int_equal(testhttp_get(port, "/healthz", "", body), 200);

	/* Reloads check again but say each threshold once. */
	hup(tb, 1);
	hup(tb, 2);
	assert_int_equal(testbroker_log_count(tb, CRL_SOON), 1);
	assert_int_equal(testbroker_log_count(tb, CERT_SOON), 1);

	/* A CRL for 3 more seconds: the 1-day warning, then stale. */
	snprintf(cmd, sizeof(cmd), "%s crl '%s' --seconds 3 >/dev/null 2>&1",
	    script, pki);
	run(cmd);
	hup(tb, 3);
	assert_int_equal(testbroker_log_count(tb, CRL_SOON), 2);
	assert_int_equal(testbroker_log_count(tb, "second(s) (its "
	    "nextUpdate)"), 1);
	for (until = testutil_now_ms() + 10000; testutil_now_ms() < until;
	    usleep(50000))
		if ((code = testhttp_get(port, "/healthz", "", body)) == 503)
			break;
	assert_int_equal(code, 503);
	assert_non_null(strstr(body, "CRL"));
	assert_non_null(strstr(body, "expired"));
	assert_int_equal(testhttp_get(port, "/metrics", "", body), 200);
	assert_true(testhttp_metric(body, "cpx_healthy") == 0);
	assert_true(testhttp_metric(body, "cpx_crl_expiry_seconds") <= 0);
	/* The expiry itself is said once, at the next check. */
	hup(tb, 4);
	hup(tb, 5);
	assert_int_equal(testbroker_log_count(tb, "ago (its nextUpdate)"), 1);

	assert_int_equal(testbroker_cleanup(tb), 0);
	free(script);
	free(body);
}

/*
 * JOURNAL_STREAM naming the broker's stderr, as systemd sets it: lines
 * go to journald, not as text; "<N>" lines on stderr only when journald
 * cannot take them (none runs here unless /run/systemd/journal/socket
 * exists, and then the log file stays empty of text lines).
 */
static void
test_journal_stream(void **state)
{
	struct testbroker *tb = &((struct fixture *)*state)->tb;
	const char *pki;
	struct stat st;
	char env[64], log[300], *text;
	int fd;

	assert_int_equal(testpki_get(&pki), 0);
	assert_int_equal(testutil_mkdtemp(tb->dir, sizeof(tb->dir)), 0);
	snprintf(log, sizeof(log), "%s/broker.log", tb->dir);
	assert_true((fd = open(log, O_WRONLY | O_CREAT, 0600)) >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	close(fd);
	snprintf(env, sizeof(env), "%llu:%llu",
	    (unsigned long long)st.st_dev, (unsigned long long)st.st_ino);
	assert_int_equal(setenv("JOURNAL_STREAM", env, 1), 0);
	start_own(tb, pki);
	assert_int_equal(unsetenv("JOURNAL_STREAM"), 0);
	assert_non_null(text = testutil_read_text(log));
	assert_null(strstr(text, "[info]"));
	if (access("/run/systemd/journal/socket", F_OK) == -1)
		assert_non_null(strstr(text, "<6>cpx-broker "));
	free(text);
	assert_int_equal(testbroker_cleanup(tb), 0);
}

/* --- a full disk: refused, healthz 503, a quiet log ----------------------- */

static void
test_disk_full_quiet(void **state)
{
	struct fixture *fx = *state;
	struct testbroker *tb = &fx->tb;
	struct cpx_client *si;
	struct cpx_result res;
	struct testalert ta;
	char *fs = fx->fs, extra[512], filler[300], err[400], id[32], *body;
	int i, port, n = 200, lines;

	assert_int_equal(testutil_mkdtemp(fs, sizeof(fx->fs)), 0);
	if (mount("tmpfs", fs, "tmpfs", 0, "size=1m,mode=0700") == -1) {
		fprintf(stderr, "tmpfs: mount: %s: skipped (needs root)\n",
		    strerror(errno));
		assert_int_equal(testutil_rmrf(fs), 0);
		fs[0] = '\0';
		skip();
	}
	assert_non_null(body = malloc(BODY_MAX));
	snprintf(extra, sizeof(extra), "audit_dir = %s/audit\n"
	    "metrics_listen = 127.0.0.1:0\n", fs);
	assert_int_equal(testbroker_start(tb, extra, NULL), 0);
	port = testhttp_metrics_port(tb);
	si = testbroker_connect(tb, "si-ncp", 0, err, sizeof(err));
	if (si == NULL)
		fail_msg("si-ncp: %s", err);
	publish(si, "before-full", "fits", 0, &res);

	snprintf(filler, sizeof(filler), "%s/filler", fs);
	assert_int_equal(testutil_fill_disk(filler), 0);
	/*
	 * The log may have room left in space it reserved: publish until
	 * the first refusal, then n more. Each publish is its own turn, so
	 * its own failed commit.
	 */
	for (i = 0; i < 5000; i++) {
		snprintf(id, sizeof(id), "fill-%d", i);
		testalert_init(&ta, id, CPX__CATEGORY__CATEGORY_ROUTE,
		    CPX__SEVERITY__SEVERITY_LOW,
		    CPX__HANDLING__HANDLING_NETWORK, "", "filling the disk");
		if (cpx_publish(si, &ta.alert, 10000, &res) == -1)
			break;
	}
	assert_int_equal(res.reason, CPX__REASON__REASON_STORAGE);
	for (i = 0; i < n; i++) {
		snprintf(id, sizeof(id), "full-%d", i);
		publish(si, id, "disk full", CPX__REASON__REASON_STORAGE, &res);
	}
	lines = testbroker_log_count(tb, "No space left on device");
	fprintf(stderr, "%d failed commits, %d log line(s) about them\n", n,
	    lines);
	assert_true(lines >= 1 && lines <= 2);
	assert_int_equal(testhttp_get(port, "/healthz", "", body), 503);
	assert_non_null(strstr(body, "audit log cannot be written"));
	assert_non_null(strstr(body, "No space left on device"));
	assert_int_equal(testhttp_get(port, "/metrics", "", body), 200);
	assert_true(testhttp_metric(body, "cpx_commit_failures_total") >= n + 1);
	assert_true(testhttp_metric(body, "cpx_alerts_refused_total{origin=\"SI\","
	    "reason=\"storage\"}") == n + 1);

	/* Space again: accepted, and the log says how many were hidden. */
	assert_int_equal(unlink(filler), 0);
	publish(si, "after-full", "fits again", 0, &res);
	assert_true(testbroker_wait_log(tb, "audit log writable again after",
	    5000));
	assert_true(testbroker_wait_log(tb, "(repeated ", 0));
	assert_int_equal(testhttp_get(port, "/healthz", "", body), 200);

	cpx_client_free(&si);
	assert_int_equal(testbroker_cleanup(tb), 0);
	(void)umount(fs);
	assert_int_equal(testutil_rmrf(fs), 0);
	fs[0] = '\0';
	free(body);
}

/* A broker or tmpfs a failed test left behind is cleaned up here. */
/*
 * A metrics port another process holds stops the broker at start with a
 * message naming the key, rather than a broker running unobserved.
 */
static void
test_port_taken(void **state)
{
	struct testbroker *tb = &((struct fixture *)*state)->tb;
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	char extra[64], *log;
	int fd, one = 1;

	assert_true((fd = socket(AF_INET, SOCK_STREAM, 0)) != -1);
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(fd, 1), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	snprintf(extra, sizeof(extra), "metrics_listen = 127.0.0.1:%d",
	    ntohs(sin.sin_port));
	assert_int_equal(testbroker_start(tb, extra, NULL), -1);
	assert_non_null(log = testutil_read_text(tb->log));
	if (strstr(log, "metrics_listen: cannot listen on 127.0.0.1:") == NULL)
		fail_msg("no clear refusal in the log: %s", log);
	free(log);
	close(fd);
}

static int
setup(void **state)
{
	struct fixture *fx;

	if ((fx = calloc(1, sizeof(*fx))) == NULL)
		return -1;
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *fx = *state;

	if (fx->tb.pid > 0 || fx->tb.dir[0] != '\0')
		if (testbroker_cleanup(&fx->tb) == -1)
			fprintf(stderr, "teardown: broker stopped uncleanly\n");
	if (fx->fs[0] != '\0') {
		(void)umount(fx->fs);
		if (testutil_rmrf(fx->fs) == -1)
			fprintf(stderr, "teardown: cannot remove %s\n", fx->fs);
	}
	free(fx);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_flow, setup, teardown),
		cmocka_unit_test_setup_teardown(test_http_bounds, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_expiry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_port_taken, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_journal_stream, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_disk_full_quiet, setup,
		    teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
