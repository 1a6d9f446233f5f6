/*
 * test_trust.c: whom a node and the broker trust, against a real
 * cpx-broker process and real TLS on 127.0.0.1.
 *
 * - A node refuses a broker whose certificate is revoked, names another
 *   host, is a node's (clientAuth only) or names no purpose, or whose key
 *   is not the pinned one, each with a plain message; the normal broker
 *   is accepted by IP, by DNS name and by pin.
 * - The broker refuses to start on an expired CRL, refuses on SIGHUP a
 *   CRL that is expired, not yet valid or older than the one in force,
 *   and, once the CRL in force expires, refuses connections with
 *   crl-stale, which a node retries, rather than as revoked.
 * - Key files: a symbolic link or a key owned by another user is
 *   refused; finite-field DH groups are never negotiated.
 * - cpx-audit verify: a checkpoint signed by a node is refused, pinned
 *   verification passes on a genuine log, a change of signer is reported.
 *
 * Each broker certificate, CRL or revocation a test needs comes from
 * certs/cpx-pki: the shared test PKI's fixtures (brokers/), or a private
 * copy of the PKI (same CA) for what changes the CRL.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "audit.h"
#include "audit_tools_util.h"
#include "cpx_client.h"
#include "harden_util.h"
#include "sign.h"
#include "testbroker.h"
#include "testpki.h"
#include "testutil.h"
#include "tlsctx.h"

static struct testbroker tb;
static char scratch[256];	/* this run's own files, PKI copy included */
static char own[300];		/* scratch/pki: a private copy of the PKI */

static int
run(char *const argv[])
{
	pid_t pid;
	int status;

	fflush(NULL);
	if ((pid = fork()) == -1)
		return -1;
	if (pid == 0) {
		execvp(argv[0], argv);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int
setup(void **state)
{
	const char *shared;
	char *argv[5];

	(void)state;
	if (testpki_get(&shared) == -1 ||
	    testutil_mkdtemp(scratch, sizeof(scratch)) == -1)
		return -1;
	snprintf(own, sizeof(own), "%s/pki", scratch);
	argv[0] = (char *)"cp";
	argv[1] = (char *)"-a";
	argv[2] = (char *)shared;
	argv[3] = own;
	argv[4] = NULL;
	if (run(argv) != 0)
		return -1;
	return testbroker_start(&tb, NULL, NULL);
}

static int
teardown(void **state)
{
	int rc;

	(void)state;
	rc = testbroker_cleanup(&tb);
	if (testutil_rmrf(scratch) == -1)
		rc = -1;
	return rc;
}

/* Restart the broker with this certificate (base path without .pem). */
static void
broker_as(const char *base, const char *crl)
{
	char cert[512], key[512];

	snprintf(cert, sizeof(cert), "%s.pem", base);
	snprintf(key, sizeof(key), "%s.key", base);
	assert_int_equal(harden_set_conf(&tb, "cert", cert), 0);
	assert_int_equal(harden_set_conf(&tb, "key", key), 0);
	assert_int_equal(harden_set_conf(&tb, "crl", crl != NULL ? crl :
	    testpki_file("crl.pem")), 0);
	assert_int_equal(testbroker_restart(&tb), 0);
}

/* A node client with the broker's name and pin as given. */
static struct cpx_client *
node(const char *name, const char *endpoint, const char *broker_name,
    const char *pin, int reconnect, char *err, size_t errlen)
{
	struct cpx_client_config cfg;
	char cert[512], key[512];

	snprintf(cert, sizeof(cert), "nodes/%s.pem", name);
	snprintf(key, sizeof(key), "nodes/%s.key", name);
	memset(&cfg, 0, sizeof(cfg));
	cfg.endpoint = endpoint != NULL ? endpoint : tb.endpoint;
	cfg.ca = testpki_file("ca.pem");
	cfg.crl = testpki_file("crl.pem");
	cfg.cert = testpki_file(cert);
	cfg.key = testpki_file(key);
	cfg.broker_name = broker_name;
	cfg.broker_pin = pin;
	cfg.reconnect = reconnect;
	return cpx_client_new(&cfg, err, errlen);
}

/* Connect; 0 on welcome, else -1 with err[]. */
static int
try_connect(const char *broker_name, const char *pin, const char *endpoint,
    char *err, size_t errlen)
{
	struct cpx_client *c;
	int rc;

	if ((c = node("si-ncp", endpoint, broker_name, pin, 0, err,
	    errlen)) == NULL)
		fail_msg("client: %s", err);
	rc = cpx_client_connect(c, 10000, err, errlen);
	cpx_client_free(&c);
	return rc;
}

static void
expect_refused_broker(const char *base, const char *says)
{
	char err[400];
	int before;

	broker_as(base, NULL);
	before = testbroker_log_count(&tb, "session opened");
	assert_int_equal(try_connect(NULL, NULL, NULL, err, sizeof(err)), -1);
	if (strstr(err, says) == NULL)
		fail_msg("%s: client said \"%s\", not \"%s\"", base, err, says);
	/* The node never let a session open with that broker. */
	assert_int_equal(testbroker_log_count(&tb, "session opened"), before);
}

static void
test_broker_revoked(void **state)
{
	(void)state;
	expect_refused_broker(testpki_file("brokers/revoked-broker"),
	    "the broker's certificate has been revoked");
}

static void
test_broker_misnamed(void **state)
{
	(void)state;
	expect_refused_broker(testpki_file("brokers/evil-broker"),
	    "the broker's certificate is for 'evil.example', not "
	    "'127.0.0.1'");
}

static void
test_broker_node_cert(void **state)
{
	(void)state;
	expect_refused_broker(testpki_file("nodes/si-ncp"),
	    "not a broker certificate");
}

static void
test_broker_no_eku(void **state)
{
	(void)state;
	expect_refused_broker(testpki_file("brokers/noeku-broker"),
	    "not a broker certificate");
}

static void
test_broker_good(void **state)
{
	X509 *x;
	uint8_t h[32];
	char err[400], pin[65], ep[80];

	(void)state;
	broker_as(testpki_file("broker"), NULL);
	/* By IP, the endpoint's host: what the whole suite does. */
	if (try_connect(NULL, NULL, NULL, err, sizeof(err)) == -1)
		fail_msg("default name: %s", err);
	/* By DNS name. */
	snprintf(ep, sizeof(ep), "tcp://localhost:%d", tb.port);
	if (try_connect(NULL, NULL, ep, err, sizeof(err)) == -1)
		fail_msg("localhost: %s", err);
	/* A name given that the certificate does not carry. */
	assert_int_equal(try_connect("cpx-broker", NULL, NULL, err,
	    sizeof(err)), -1);
	if (strstr(err, "is for 'localhost', '127.0.0.1', not "
	    "'cpx-broker'") == NULL)
		fail_msg("name: %s", err);
	/* Pinned: the right key, then another. */
	x = tlsctx_load_cert(testpki_file("broker.pem"), err, sizeof(err));
	assert_non_null(x);
	assert_int_equal(tlsctx_spki_sha256(x, h), 0);
	X509_free(x);
	sign_hex(h, sizeof(h), pin);
	if (try_connect(NULL, pin, NULL, err, sizeof(err)) == -1)
		fail_msg("pinned: %s", err);
	pin[0] = pin[0] == '0' ? '1' : '0';
	assert_int_equal(try_connect(NULL, pin, NULL, err, sizeof(err)), -1);
	if (strstr(err, "the broker's key is not the pinned one") == NULL)
		fail_msg("wrong pin: %s", err);
	assert_null(node("si-ncp", NULL, NULL, "abc", 0, err, sizeof(err)));
	assert_non_null(strstr(err, "need 64 hex digits"));
}

/* The broker name a node checks by default, and the pin's syntax. */
static void
test_endpoint_host_and_pin(void **state)
{
	uint8_t pin[32];
	char host[64];

	(void)state;
	assert_int_equal(tlsctx_endpoint_host("tcp://127.0.0.1:7443", host,
	    sizeof(host)), 0);
	assert_string_equal(host, "127.0.0.1");
	assert_int_equal(tlsctx_endpoint_host("tcp://broker.example:7443",
	    host, sizeof(host)), 0);
	assert_string_equal(host, "broker.example");
	assert_int_equal(tlsctx_endpoint_host("tcp://[::1]:7443", host,
	    sizeof(host)), 0);
	assert_string_equal(host, "::1");
	assert_int_equal(tlsctx_endpoint_host("ipc:///tmp/x", host,
	    sizeof(host)), -1);
	assert_int_equal(tlsctx_endpoint_host("tcp://:7443", host,
	    sizeof(host)), -1);
	assert_int_equal(tlsctx_endpoint_host("tcp://[::1:7443", host,
	    sizeof(host)), -1);
	assert_int_equal(tlsctx_endpoint_host("tcp://a-very-long-name."
	    "example.org.example.net.example.com:1", host, 16), -1);
	assert_string_equal(host, "");

	assert_int_equal(tlsctx_parse_pin("sha256:00ff00ff00ff00ff00ff00ff00ff"
	    "00ff00ff00ff00ff00ff00ff00ff00ff00ff", pin), 0);
	assert_int_equal(pin[1], 0xff);
	assert_int_equal(tlsctx_parse_pin("00FF00ff00ff00ff00ff00ff00ff00ff"
	    "00ff00ff00ff00ff00ff00ff00ff00ff", pin), 0);
	assert_int_equal(tlsctx_parse_pin("00ff", pin), -1);
	assert_int_equal(tlsctx_parse_pin("zzff00ff00ff00ff00ff00ff00ff00ff"
	    "00ff00ff00ff00ff00ff00ff00ff00ff", pin), -1);
	assert_int_equal(pin[1], 0);	/* zeroed on failure */
}

/* --- CRL: start-up, reload, expiry -------------------------------- */

static void
own_path(char *buf, size_t len, const char *rel)
{
	snprintf(buf, len, "%s/%s", own, rel);
}

static int
copy(const char *from, const char *to)
{
	char *argv[5];

	argv[0] = (char *)"cp";
	argv[1] = (char *)from;
	argv[2] = (char *)to;
	argv[3] = NULL;
	return run(argv);
}

/*
 * SIGHUP, and wait until the broker has reloaded: it logs the line at
 * the start of the reload, which runs to its end before the broker
 * looks at the network again.
 */
static void
hup_and_wait(void)
{
	int64_t until = testutil_now_ms() + 10000;
	int before = testbroker_log_count(&tb, "SIGHUP: reloading");

	assert_int_equal(kill(tb.pid, SIGHUP), 0);
	while (testbroker_log_count(&tb, "SIGHUP: reloading") == before) {
		if (testutil_now_ms() > until)
			fail_msg("the broker did not reload");
		usleep(10000);	/* polling interval */
	}
}

/* cpx-pki crl on the private PKI, written to out. */
static void
make_crl(const char *out, const char *opt, const char *val,
    const char *opt2, const char *val2)
{
	char *argv[14], script[512];
	const char *src = getenv("CPX_SOURCE_DIR");
	int n = 0;

	snprintf(script, sizeof(script), "%s/certs/cpx-pki",
	    src ? src : CPX_SOURCE_DIR);
	argv[n++] = (char *)"sh";
	argv[n++] = (char *)"-c";
	argv[n++] = (char *)"exec bash \"$0\" \"$@\" >/dev/null";
	argv[n++] = script;
	argv[n++] = (char *)"crl";
	argv[n++] = own;
	argv[n++] = (char *)"--out";
	argv[n++] = (char *)out;
	if (opt != NULL) {
		argv[n++] = (char *)opt;
		argv[n++] = (char *)val;
	}
	if (opt2 != NULL) {
		argv[n++] = (char *)opt2;
		argv[n++] = (char *)val2;
	}
	argv[n] = NULL;
	assert_int_equal(run(argv), 0);
}

static void
test_crl_startup_expired(void **state)
{
	char stale[512];
	int status;

	(void)state;
	own_path(stale, sizeof(stale), "stale.pem");
	make_crl(stale, "--this-update", "20250101000000Z", "--next-update",
	    "20250201000000Z");
	assert_int_equal(harden_set_conf(&tb, "crl", stale), 0);
	status = harden_run_broker(&tb, "-n");
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) != 0);
	assert_true(testbroker_log_count(&tb, "stale.pem: CRL expired at "
	    "2025-02-01 00:00:00 UTC") > 0);
	assert_int_equal(harden_set_conf(&tb, "crl", testpki_file("crl.pem")), 0);
}

static void
test_crl_reload(void **state)
{
	struct cpx_client *a, *c;
	char live[512], older[512], stale[512], future[512], err[400];
	char *argv[6], script[512];
	const char *src = getenv("CPX_SOURCE_DIR");
	int closed;

	(void)state;
	own_path(live, sizeof(live), "live-crl.pem");
	own_path(older, sizeof(older), "older-crl.pem");
	own_path(stale, sizeof(stale), "stale2.pem");
	own_path(future, sizeof(future), "future.pem");
	make_crl(live, NULL, NULL, NULL, NULL);
	assert_int_equal(copy(live, older), 0);
	make_crl(stale, "--this-update", "20250101000000Z", "--next-update",
	    "20250201000000Z");
	make_crl(future, "--this-update", "20300101000000Z", "--next-update",
	    "20300201000000Z");
	broker_as(testpki_file("broker"), live);
	closed = testbroker_log_count(&tb, "session closed");
	a = testbroker_connect(&tb, "si-ncp", 0, err, sizeof(err));
	if (a == NULL)
		fail_msg("si-ncp: %s", err);

	/* An expired CRL: refused, the node stays connected and served. */
	assert_int_equal(copy(stale, live), 0);
	hup_and_wait();
	assert_true(testbroker_wait_log(&tb, "live-crl.pem: CRL expired at "
	    "2025-02-01 00:00:00 UTC (its nextUpdate); the CA must publish a "
	    "new one; the previous CRL stays in force", 5000));
	/* A CRL from the future: refused too. */
	assert_int_equal(copy(future, live), 0);
	hup_and_wait();
	assert_true(testbroker_wait_log(&tb, "is in the future; check the "
	    "clock); the previous CRL stays in force", 5000));
	assert_int_equal(cpx_client_run(a, 300), 0);
	assert_int_equal(testbroker_log_count(&tb, "no longer valid"), 0);
	assert_int_equal(testbroker_log_count(&tb, "session closed"), closed);
	c = testbroker_connect(&tb, "hr-ncp", 0, err, sizeof(err));
	if (c == NULL)
		fail_msg("hr-ncp after refused reloads: %s", err);
	cpx_client_free(&c);

	/* hr-ncp revoked by a newer CRL: cut off and refused. */
	snprintf(script, sizeof(script), "%s/certs/cpx-pki",
	    src ? src : CPX_SOURCE_DIR);
	argv[0] = (char *)"bash";
	argv[1] = script;
	argv[2] = (char *)"revoke";
	argv[3] = own;
	argv[4] = (char *)"hr-ncp";
	argv[5] = NULL;
	assert_int_equal(run(argv), 0);
	own_path(err, sizeof(err), "crl.pem");
	assert_int_equal(copy(err, live), 0);
	hup_and_wait();
	assert_null(testbroker_connect(&tb, "hr-ncp", 0, err, sizeof(err)));
	assert_non_null(strstr(err, "revoked"));

	/* The older CRL put back would un-revoke hr-ncp: refused. */
	assert_int_equal(copy(older, live), 0);
	hup_and_wait();
	assert_true(testbroker_wait_log(&tb, "is lower than that of the CRL "
	    "in force", 5000));
	assert_null(testbroker_connect(&tb, "hr-ncp", 0, err, sizeof(err)));
	assert_non_null(strstr(err, "revoked"));
	/* si-ncp was never revoked: still served all along. */
	assert_int_equal(cpx_client_run(a, 100), 0);
	cpx_client_free(&a);
}

struct seen {
	int	connected;
	int	stale;
	int	revoked;
};

static void
seen_cb(const struct cpx_event *ev, void *arg)
{
	struct seen *s = arg;

	if (ev->kind == CPX_EV_CONNECTED)
		s->connected++;
	if (ev->kind == CPX_EV_ERROR &&
	    ev->reason == CPX__REASON__REASON_CRL_STALE)
		s->stale++;
	if (ev->kind == CPX_EV_ERROR &&
	    ev->reason == CPX__REASON__REASON_CERT_REVOKED)
		s->revoked++;
}

static time_t
crl_next_update(const char *path)
{
	X509_CRL *crl;
	FILE *f;
	struct tm tm;
	time_t t = 0;

	if ((f = fopen(path, "r")) == NULL)
		return 0;
	crl = PEM_read_X509_CRL(f, NULL, NULL, NULL);
	fclose(f);
	if (crl != NULL && ASN1_TIME_to_tm(X509_CRL_get0_nextUpdate(crl),
	    &tm) == 1)
		t = timegm(&tm);
	X509_CRL_free(crl);
	return t;
}

static void
test_crl_expires_running(void **state)
{
	struct cpx_client *sub, *c;
	struct seen s;
	char live[512], err[400];
	time_t next;
	int64_t until;
	int revoked;

	(void)state;
	memset(&s, 0, sizeof(s));
	own_path(live, sizeof(live), "short-crl.pem");
	make_crl(live, "--seconds", "3", NULL, NULL);
	assert_true((next = crl_next_update(live)) > 0);
	broker_as(testpki_file("broker"), live);
	revoked = testbroker_log_count(&tb, "cert-revoked");
	/* A subscriber that reconnects, as `cpx subscribe` does. */
	if ((sub = node("si-ncp", NULL, NULL, NULL, 1, err,
	    sizeof(err))) == NULL)
		fail_msg("client: %s", err);
	cpx_client_on_event(sub, seen_cb, &s);
	if (cpx_client_connect(sub, 10000, err, sizeof(err)) == -1)
		fail_msg("connect: %s", err);
	assert_int_equal(s.connected, 1);
	/* Until the CRL in force has expired (one second of margin). */
	until = testutil_now_ms() + 15000;
	while (time(NULL) <= next + 1) {
		assert_true(testutil_now_ms() < until);
		assert_int_equal(cpx_client_run(sub, 100), 0);
	}

	/*
	 * A new node is told the CRL is stale: retryable, not revoked.
	 * (Not hr-ncp: test_crl_reload revoked it in the private PKI.)
	 */
	if ((c = node("at-ncp", NULL, NULL, NULL, 0, err,
	    sizeof(err))) == NULL)
		fail_msg("client: %s", err);
	assert_int_equal(cpx_client_connect(c, 10000, err, sizeof(err)), -1);
	if (strstr(err, "the broker's CRL has expired; the CA must publish "
	    "a new one") == NULL)
		fail_msg("new node: %s", err);
	assert_null(strstr(err, "revoked"));
	assert_int_equal(cpx_client_refused(c), 0);
	cpx_client_free(&c);
	assert_true(testbroker_wait_log(&tb, "session refused (crl-stale)",
	    5000));

	/* SIGHUP with the stale CRL still there: cut as stale, not revoked. */
	hup_and_wait();
	until = testutil_now_ms() + 10000;
	while (s.stale == 0 && testutil_now_ms() < until)
		assert_int_equal(cpx_client_run(sub, 100), 0);
	assert_true(s.stale > 0);
	assert_int_equal(s.revoked, 0);
	assert_int_equal(cpx_client_refused(sub), 0);

	/* The CA publishes a good CRL: the subscriber comes back. */
	make_crl(live, NULL, NULL, NULL, NULL);
	hup_and_wait();
	until = testutil_now_ms() + 20000;
	while (s.connected < 2 && testutil_now_ms() < until)
		assert_int_equal(cpx_client_run(sub, 100), 0);
	assert_int_equal(s.connected, 2);
	cpx_client_free(&sub);
	assert_int_equal(testbroker_log_count(&tb, "cert-revoked"), revoked);
}

/* --- key files and key exchange ------------------------------------ */

static void
test_key_symlink(void **state)
{
	EVP_PKEY *k;
	char path[512], err[400];

	(void)state;
	snprintf(path, sizeof(path), "%s/link.key", scratch);
	assert_int_equal(symlink(testpki_file("nodes/si-ncp.key"), path), 0);
	k = tlsctx_load_key(path, err, sizeof(err));
	assert_null(k);
	if (strstr(err, "is a symbolic link") == NULL)
		fail_msg("%s", err);
	assert_int_equal(tlsctx_check_key_file(path, err, sizeof(err)), -1);
	/* The target itself is fine. */
	k = tlsctx_load_key(testpki_file("nodes/si-ncp.key"), err, sizeof(err));
	if (k == NULL)
		fail_msg("%s", err);
	EVP_PKEY_free(k);
	/* A broker whose key is a link does not start. */
	assert_int_equal(harden_set_conf(&tb, "key", path), 0);
	assert_int_equal(harden_set_conf(&tb, "cert",
	    testpki_file("nodes/si-ncp.pem")), 0);
	assert_true(harden_run_broker(&tb, "-n") != 0);
	assert_true(testbroker_log_count(&tb, "link.key is a symbolic link")
	    > 0);
	assert_int_equal(harden_set_conf(&tb, "key", testpki_file("broker.key")), 0);
	assert_int_equal(harden_set_conf(&tb, "cert", testpki_file("broker.pem")),
	    0);
}

static void
test_key_owner(void **state)
{
	EVP_PKEY *k;
	char path[512], err[400];

	(void)state;
	if (geteuid() != 0)
		skip();		/* only root can give a file away */
	snprintf(path, sizeof(path), "%s/other.key", scratch);
	assert_int_equal(copy(testpki_file("nodes/si-ncp.key"), path), 0);
	assert_int_equal(chmod(path, 0600), 0);
	assert_int_equal(chown(path, 65534, 65534), 0);	/* nobody */
	k = tlsctx_load_key(path, err, sizeof(err));
	assert_null(k);
	if (strstr(err, "is owned by uid 65534") == NULL)
		fail_msg("%s", err);
	/* Given back to us, the same file loads. */
	assert_int_equal(chown(path, 0, 0), 0);
	k = tlsctx_load_key(path, err, sizeof(err));
	if (k == NULL)
		fail_msg("%s", err);
	EVP_PKEY_free(k);
}

/*
 * A TLS 1.3 handshake offering only `groups`: 1 if it completes, 0 if
 * refused. *group gets the negotiated group's name.
 */
static int
handshake_with(const char *groups, char *group, size_t glen)
{
	struct sockaddr_in sin;
	SSL_CTX *ctx;
	SSL *ssl;
	int fd, ok;

	group[0] = '\0';
	ctx = SSL_CTX_new(TLS_client_method());
	assert_non_null(ctx);
	assert_int_equal(SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION),
	    1);
	assert_int_equal(SSL_CTX_set1_groups_list(ctx, groups), 1);
	assert_int_equal(SSL_CTX_use_certificate_file(ctx,
	    testpki_file("nodes/si-ncp.pem"), SSL_FILETYPE_PEM), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey_file(ctx,
	    testpki_file("nodes/si-ncp.key"), SSL_FILETYPE_PEM), 1);
	assert_true((fd = socket(AF_INET, SOCK_STREAM, 0)) >= 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)tb.port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)),
	    0);
	ssl = SSL_new(ctx);
	assert_non_null(ssl);
	SSL_set_fd(ssl, fd);
	ok = SSL_connect(ssl) == 1;
	if (ok)
		snprintf(group, glen, "%s", SSL_group_to_name(ssl,
		    SSL_get_negotiated_group(ssl)));
	ERR_clear_error();
	SSL_free(ssl);
	close(fd);
	SSL_CTX_free(ctx);
	return ok;
}

static void
test_no_ffdhe(void **state)
{
	char group[64];

	(void)state;
	broker_as(testpki_file("broker"), NULL);
	assert_int_equal(handshake_with("ffdhe2048", group, sizeof(group)),
	    0);
	assert_int_equal(handshake_with("ffdhe2048:ffdhe3072:ffdhe4096:"
	    "ffdhe6144:ffdhe8192", group, sizeof(group)), 0);
	/* Offered first, still not chosen. */
	assert_int_equal(handshake_with("ffdhe2048:P-384", group,
	    sizeof(group)), 1);
	assert_string_equal(group, "secp384r1");
	assert_int_equal(handshake_with("X25519", group, sizeof(group)), 1);
	assert_string_equal(group, "x25519");
}

/* --- cpx-audit verify: who signs checkpoints ----------------------- */

struct changes {
	int	n;
	char	last[256];
};

static void
on_change(void *arg, uint64_t seq, const char *from, const char *to,
    const char *desc)
{
	struct changes *c = arg;

	(void)seq;
	(void)from;
	(void)to;
	c->n++;
	snprintf(c->last, sizeof(c->last), "%s", desc);
}

static int
verify(const char *dir, struct trust *t, X509 **pins, size_t npins,
    const char *name, struct changes *ch, char *err, size_t errlen)
{
	struct audit_verify_opts o;
	struct audit_verify_stats st;

	memset(&o, 0, sizeof(o));
	o.broker_certs = pins;
	o.nbroker_certs = npins;
	o.broker_name = name;
	o.on_signer_change = on_change;
	o.arg = ch;
	return audit_verify_dir_opts(dir, t, &o, &st, err, errlen);
}

static void
test_audit_checkpoint_signer(void **state)
{
	struct trust *t;
	struct changes ch;
	X509 *pins[2];
	char dir[512], nodelog[512], err[512];

	(void)state;
	t = trust_new(testpki_file("ca.pem"), testpki_file("crl.pem"), err,
	    sizeof(err));
	if (t == NULL)
		fail_msg("%s", err);
	pins[0] = tlsctx_load_cert(testpki_file("broker.pem"), err, sizeof(err));
	pins[1] = tlsctx_load_cert(testpki_file("brokers/evil-broker.pem"), err,
	    sizeof(err));
	assert_non_null(pins[0]);
	assert_non_null(pins[1]);

	/* A rewritten log whose checkpoint a node signed. */
	snprintf(nodelog, sizeof(nodelog), "%s/nodelog", scratch);
	tools_log_signed_by(nodelog, NULL, "nodes/si-ncp", 1, "trust");
	memset(&ch, 0, sizeof(ch));
	assert_int_equal(verify(nodelog, t, NULL, 0, NULL, &ch, err,
	    sizeof(err)), -1);
	if (strstr(err, "not a broker certificate") == NULL)
		fail_msg("%s", err);
	/* The same through the tool, as an operator runs it. */
	{
		char *argv[9], exe[512];
		const char *bin = getenv("CPX_BINARY_DIR");

		snprintf(exe, sizeof(exe), "%s/broker/cpx-audit",
		    bin ? bin : CPX_BINARY_DIR);
		argv[0] = (char *)"sh";
		argv[1] = (char *)"-c";
		argv[2] = (char *)"exec \"$0\" \"$@\" >/dev/null 2>&1";
		argv[3] = exe;
		argv[4] = (char *)"verify";
		argv[5] = (char *)"--ca";
		argv[6] = (char *)testpki_file("ca.pem");
		argv[7] = nodelog;
		argv[8] = NULL;
		assert_int_equal(run(argv), 1);
	}

	/* A genuine log: pinned by certificate and by name. */
	snprintf(dir, sizeof(dir), "%s/goodlog", scratch);
	tools_log_signed_by(dir, NULL, "broker", 1, "trust");
	if (verify(dir, t, pins, 1, NULL, &ch, err, sizeof(err)) != 0)
		fail_msg("pinned cert: %s", err);
	if (verify(dir, t, NULL, 0, "127.0.0.1", &ch, err, sizeof(err)) != 0)
		fail_msg("pinned name: %s", err);
	if (verify(dir, t, NULL, 0, "localhost", &ch, err, sizeof(err)) != 0)
		fail_msg("pinned DNS name: %s", err);
	assert_int_equal(verify(dir, t, NULL, 0, "evil.example", &ch, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "not the pinned broker"));
	assert_int_equal(verify(dir, t, &pins[1], 1, NULL, &ch, err,
	    sizeof(err)), -1);
	assert_int_equal(ch.n, 0);

	/* Then another CA broker certificate signs: a change of signer. */
	tools_log_signed_by(dir, NULL, "brokers/evil-broker", 1, "trust");
	memset(&ch, 0, sizeof(ch));
	assert_int_equal(verify(dir, t, NULL, 0, NULL, &ch, err,
	    sizeof(err)), -1);
	assert_int_equal(ch.n, 1);
	assert_non_null(strstr(ch.last, "CN=not-the-broker DNS:evil.example"));
	assert_non_null(strstr(err, "signer changed and no pin"));
	memset(&ch, 0, sizeof(ch));
	assert_int_equal(verify(dir, t, pins, 1, NULL, &ch, err,
	    sizeof(err)), -1);
	assert_int_equal(ch.n, 1);
	memset(&ch, 0, sizeof(ch));
	if (verify(dir, t, pins, 2, NULL, &ch, err, sizeof(err)) != 0)
		fail_msg("both pinned: %s", err);
	assert_int_equal(ch.n, 1);
	/* Without the CA nothing is vouched for, but the change is told. */
	memset(&ch, 0, sizeof(ch));
	if (verify(dir, NULL, NULL, 0, NULL, &ch, err, sizeof(err)) != 0)
		fail_msg("no CA: %s", err);
	assert_int_equal(ch.n, 1);

	X509_free(pins[0]);
	X509_free(pins[1]);
	trust_free(&t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_broker_revoked),
		cmocka_unit_test(test_broker_misnamed),
		cmocka_unit_test(test_broker_node_cert),
		cmocka_unit_test(test_broker_no_eku),
		cmocka_unit_test(test_broker_good),
		cmocka_unit_test(test_endpoint_host_and_pin),
		cmocka_unit_test(test_no_ffdhe),
		cmocka_unit_test(test_key_symlink),
		cmocka_unit_test(test_key_owner),
		cmocka_unit_test(test_crl_startup_expired),
		cmocka_unit_test(test_crl_reload),
		cmocka_unit_test(test_crl_expires_running),
		cmocka_unit_test(test_audit_checkpoint_signer),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, setup, teardown);
}
