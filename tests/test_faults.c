/*
 * test_faults.c: a real broker under live changes and faults. Revocation
 * and policy reload on SIGHUP (the node cut off at once and refused after;
 * a broken policy keeps the old one), SIGTERM drain (SHUTTING_DOWN, exit
 * 0, audit log ending in a checkpoint), a subscriber killed mid-stream, a
 * restart under 20 connected clients, half a TLS record then silence,
 * 1,000 connections that never handshake, and a flood of badly signed
 * publishes: each time the other nodes keep being served.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "alert.h"
#include "cpx_client.h"
#include "harden_util.h"
#include "sign.h"
#include "testbroker.h"
#include "testpki.h"
#include "testsink.h"
#include "testutil.h"
#include "tlsctx.h"

static const char policy1[] =
    "[region western-balkans]\n"
    "members = AL BA ME MK RS XK\n"
    "[defaults]\n"
    "rights = publish subscribe\n";

static const char policy2[] =
    "[region western-balkans]\n"
    "members = AL BA ME MK RS XK\n"
    "[defaults]\n"
    "rights = publish subscribe\n"
    "[node it-ncp]\n"
    "rights =\n"
    "[node at-ncp]\n"
    "rights = subscribe\n";

static void
subscribe_all(struct cpx_client *c, struct testsink *s, int resume)
{
	struct testfilter tf;
	Cpx__Filter *f[1];
	uint64_t req;
	int before = s->subscribed;

	testfilter_init(&tf, "", "", NULL, 0, 0);
	f[0] = &tf.f;
	assert_int_equal(cpx_subscribe(c, f, 1, resume, 0, &req), 0);
	assert_true(testsink_run_until(c, &s->subscribed, before + 1, 5000));
}

/* Run c until the broker ends its session; ms it took, or -1. */
static int64_t
run_until_dead(struct cpx_client *c, int timeout_ms)
{
	int64_t t0 = testutil_now_ms(), until = t0 + timeout_ms;

	while (testutil_now_ms() < until)
		if (cpx_client_run(c, 20) == -1)
			return testutil_now_ms() - t0;
	return -1;
}

static void
write_policy(struct testbroker *tb, const char *text)
{
	assert_int_equal(testutil_write_file(tb->policy, text, strlen(text)),
	    0);
}

/* SIGHUP, and wait until the broker has reloaded (n-th reload). */
static void
hup(struct testbroker *tb)
{
	int n = testbroker_log_count(tb, "SIGHUP: reloading");
	int64_t until = testutil_now_ms() + 5000;

	assert_int_equal(kill(tb->pid, SIGHUP), 0);
	while (testbroker_log_count(tb, "SIGHUP: reloading") <= n &&
	    testutil_now_ms() < until)
		usleep(10000);	/* polling interval */
	assert_true(testbroker_log_count(tb, "SIGHUP: reloading") > n);
}

/* ---- revocation and reload ---------------------------------------- */

static void
test_revoke_and_reload(void **state)
{
	struct testbroker tb;
	struct testsink hr_s, si_s, it_s, at_s;
	struct cpx_client *hr, *si, *it, *at;
	const char *shared, *src = getenv("CPX_SOURCE_DIR");
	char pki[256], cmd[1200], path[400], err[400];
	int64_t took;

	(void)state;
	/* The broker on a private copy of the PKI, which we may revoke in. */
	assert_int_equal(testpki_get(&shared), 0);
	assert_int_equal(testutil_mkdtemp(pki, sizeof(pki)), 0);
	snprintf(cmd, sizeof(cmd), "cp -a '%s/.' '%s/'", shared, pki);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(testbroker_start(&tb, NULL, policy1), 0);
	assert_true(WIFEXITED(testbroker_stop(&tb, SIGTERM)));
	snprintf(path, sizeof(path), "%s/ca.pem", pki);
	assert_int_equal(harden_set_conf(&tb, "ca", path), 0);
	snprintf(path, sizeof(path), "%s/crl.pem", pki);
	assert_int_equal(harden_set_conf(&tb, "crl", path), 0);
	assert_int_equal(testbroker_restart(&tb), 0);

	hr = harden_connect(&tb, "hr-ncp", 0, &hr_s);
	si = harden_connect(&tb, "si-ncp", 0, &si_s);
	it = harden_connect(&tb, "it-ncp", 0, &it_s);
	at = harden_connect(&tb, "at-ncp", 0, &at_s);
	subscribe_all(at, &at_s, 0);

	/* Revoke hr-ncp, SIGHUP: cut off at once, refused after. */
	snprintf(cmd, sizeof(cmd), "'%s/certs/cpx-pki' revoke '%s' hr-ncp "
	    ">/dev/null 2>&1", src ? src : CPX_SOURCE_DIR, pki);
	assert_int_equal(system(cmd), 0);
	hup(&tb);
	took = run_until_dead(hr, 3000);
	assert_true(took >= 0);
	assert_int_equal(hr_s.last_reason, CPX__REASON__REASON_CERT_REVOKED);
	assert_true(hr_s.last_fatal);
	assert_true(testbroker_wait_log(&tb, "HR/hr-ncp: certificate no "
	    "longer valid", 2000));
	cpx_client_free(&hr);
	hr = testbroker_connect(&tb, "hr-ncp", 0, err, sizeof(err));
	assert_null(hr);
	if (strstr(err, "revoked") == NULL)
		fail_msg("reconnect of a revoked node: %s", err);
	/* The others continue. */
	harden_publish_ok(si, "after-revoke");
	assert_true(testsink_wait_deliveries(&at_s, at, 1, 5000));
	harden_assert_served(it, &it_s);
	assert_int_equal(si_s.disconnected + it_s.disconnected +
	    at_s.disconnected, 0);

	/* Policy: it-ncp loses every right, at-ncp its publish right. */
	write_policy(&tb, policy2);
	hup(&tb);
	assert_true(run_until_dead(it, 3000) >= 0);
	assert_int_equal(it_s.last_reason, CPX__REASON__REASON_NOT_AUTHORIZED);
	cpx_client_free(&it);
	it = testbroker_connect(&tb, "it-ncp", 0, err, sizeof(err));
	assert_null(it);
	if (strstr(err, "not-authorized") == NULL)
		fail_msg("reconnect without rights: %s", err);
	assert_int_equal(harden_publish(at, "at-no-right", NULL),
	    CPX__REASON__REASON_NOT_AUTHORIZED);
	harden_publish_ok(si, "after-policy");
	assert_true(testsink_wait_deliveries(&at_s, at, 2, 5000));

	/* A broken policy on reload: the old one stays in force. */
	write_policy(&tb, "[defaults\nrights = everything\n");
	hup(&tb);
	assert_true(testbroker_wait_log(&tb, "the previous policy stays in "
	    "force", 2000));
	assert_int_equal(harden_publish(at, "at-still-no-right", NULL),
	    CPX__REASON__REASON_NOT_AUTHORIZED);
	harden_publish_ok(si, "after-broken");
	it = testbroker_connect(&tb, "it-ncp", 0, err, sizeof(err));
	assert_null(it);
	assert_int_equal(si_s.disconnected + at_s.disconnected, 0);

	cpx_client_free(&si);
	cpx_client_free(&at);
	assert_int_equal(testbroker_cleanup(&tb), 0);
	assert_int_equal(testutil_rmrf(pki), 0);
}

/* ---- SIGTERM drain ------------------------------------------------ */

static void
test_sigterm_drain(void **state)
{
	struct testbroker tb;
	struct testsink si_s, hr_s;
	struct cpx_client *si, *hr;
	const char *bin = getenv("CPX_BINARY_DIR");
	char cmd[800];
	int status, last_kind;
	long n;

	(void)state;
	assert_int_equal(testbroker_start(&tb, NULL, NULL), 0);
	si = harden_connect(&tb, "si-ncp", 0, &si_s);
	hr = harden_connect(&tb, "hr-ncp", 0, &hr_s);
	subscribe_all(hr, &hr_s, 0);
	harden_publish_ok(si, "before-term");
	assert_true(testsink_wait_deliveries(&hr_s, hr, 1, 5000));

	status = testbroker_stop(&tb, SIGTERM);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	/* Both were told why, and closed. */
	assert_true(run_until_dead(si, 3000) >= 0 || si_s.errors > 0);
	(void)run_until_dead(hr, 3000);
	assert_int_equal(si_s.last_reason, CPX__REASON__REASON_SHUTTING_DOWN);
	assert_int_equal(hr_s.last_reason, CPX__REASON__REASON_SHUTTING_DOWN);
	assert_true(si_s.last_fatal && hr_s.last_fatal);
	assert_true(testbroker_wait_log(&tb, "shutting down: closing 2 "
	    "session(s)", 0));
	/* The audit log ends with a signed checkpoint, and verifies. */
	n = harden_audit_count(tb.audit, CPX__RECORD_KIND__RECORD_CHECKPOINT,
	    -1, &last_kind);
	assert_true(n >= 1);
	assert_int_equal(last_kind, CPX__RECORD_KIND__RECORD_CHECKPOINT);
	snprintf(cmd, sizeof(cmd), "'%s/broker/cpx-audit' verify "
	    "--chain-only '%s' >/dev/null 2>&1", bin ? bin : CPX_BINARY_DIR,
	    tb.audit);
	assert_int_equal(system(cmd), 0);
	cpx_client_free(&si);
	cpx_client_free(&hr);
	assert_int_equal(testbroker_cleanup(&tb), 0);
}

/* ---- subscriber killed mid-stream --------------------------------- */

/* The child: subscribe as hr-ncp, one byte down the pipe per delivery. */
static void
child_subscriber(struct testbroker *tb, int fd)
{
	struct cpx_client *c;
	struct testsink *s = calloc(1, sizeof(*s));
	struct testfilter tf;
	Cpx__Filter *f[1];
	char err[400];
	uint64_t req;
	size_t seen = 0;

	if (s == NULL ||
	    (c = testbroker_client(tb, "hr-ncp", 0, err, sizeof(err))) == NULL)
		_exit(2);
	testsink_attach(s, c);
	if (cpx_client_connect(c, 10000, err, sizeof(err)) == -1)
		_exit(3);
	testfilter_init(&tf, "", "", NULL, 0, 0);
	f[0] = &tf.f;
	if (cpx_subscribe(c, f, 1, 0, 0, &req) == -1)
		_exit(4);
	for (;;) {
		if (cpx_client_run(c, 20) == -1)
			_exit(5);
		if (s->subscribed == 1 && seen == 0) {
			seen = 1;
			if (write(fd, "s", 1) != 1)
				_exit(6);
		}
		while (seen - 1 < s->n) {
			if (write(fd, "d", 1) != 1)
				_exit(6);
			seen++;
		}
	}
}

#define KILL_ALERTS	200

static void
test_subscriber_killed(void **state)
{
	struct testbroker tb;
	struct testsink *w;
	struct cpx_client *pub, *watch;
	struct testalert ta;
	struct pollfd pfd;
	char err[400], id[32], buf[64];
	uint64_t req;
	pid_t child;
	int p[2], sent = 0, got = 0, status;
	ssize_t n;
	int64_t until;

	(void)state;
	w = calloc(1, sizeof(*w));
	assert_non_null(w);
	assert_int_equal(testbroker_start(&tb, "publish_rate = 0\n", NULL), 0);
	assert_int_equal(pipe(p), 0);
	if ((child = fork()) == 0) {
		close(p[0]);
		child_subscriber(&tb, p[1]);
		_exit(0);
	}
	assert_true(child > 0);
	close(p[1]);
	watch = harden_connect(&tb, "at-ncp", 0, w);
	subscribe_all(watch, w, 0);
	pub = testbroker_connect(&tb, "si-ncp", 0, err, sizeof(err));
	assert_non_null(pub);
	/* Wait until the child is subscribed. */
	pfd.fd = p[0];
	pfd.events = POLLIN;
	assert_int_equal(poll(&pfd, 1, 10000), 1);
	assert_int_equal(read(p[0], buf, 1), 1);
	assert_int_equal(buf[0], 's');
	assert_int_equal(fcntl(p[0], F_SETFL, O_NONBLOCK), 0);

	until = testutil_now_ms() + 30000;
	while (w->n < KILL_ALERTS && testutil_now_ms() < until) {
		if (sent < KILL_ALERTS && sent - (int)w->n < 16) {
			snprintf(id, sizeof(id), "kill-%d", sent);
			testalert_init(&ta, id, CPX__CATEGORY__CATEGORY_ROUTE,
			    CPX__SEVERITY__SEVERITY_LOW,
			    CPX__HANDLING__HANDLING_NETWORK, "", "stream");
			assert_int_equal(cpx_publish_send(pub, &ta.alert, &req,
			    err, sizeof(err)), 0);
			sent++;
		}
		assert_true(cpx_client_run(pub, 2) >= 0);
		assert_true(cpx_client_run(watch, 2) >= 0);
		if (child > 0 && (n = read(p[0], buf, sizeof(buf))) > 0)
			got += (int)n;
		/* Mid-stream: it has some, more are on their way. */
		if (child > 0 && got >= 20) {
			assert_int_equal(kill(child, SIGKILL), 0);
			assert_int_equal(waitpid(child, &status, 0), child);
			assert_true(WIFSIGNALED(status));
			child = 0;
			assert_true(sent < KILL_ALERTS);
		}
	}
	assert_int_equal(child, 0);
	/* The broker served everything to the others and lives on. */
	assert_int_equal(w->n, KILL_ALERTS);
	assert_int_equal(w->disconnected, 0);
	assert_int_equal(waitpid(tb.pid, &status, WNOHANG), 0);
	assert_true(testbroker_wait_log(&tb, "HR/hr-ncp: session closed",
	    5000));
	harden_publish_ok(pub, "after-kill");
	harden_assert_served(watch, w);
	close(p[0]);
	cpx_client_free(&pub);
	cpx_client_free(&watch);
	assert_int_equal(testbroker_cleanup(&tb), 0);
	free(w);
}

/* ---- restart under 20 clients ------------------------------------- */

#define NCLIENTS	20
#define RESTART_N	30

struct acks {
	int	n;
	char	id[RESTART_N * 2][32];
};

static void
acks_cb(const struct cpx_event *ev, void *arg)
{
	struct acks *a = arg;
	int i;

	if (ev->kind != CPX_EV_ACK)
		return;
	for (i = 0; i < a->n; i++)
		if (strcmp(a->id[i], ev->alert_id) == 0)
			return;		/* a repeat acknowledged again */
	if (a->n < RESTART_N * 2)
		snprintf(a->id[a->n++], sizeof(a->id[0]), "%s", ev->alert_id);
}

static void
send_range(struct cpx_client *pub, int from, int to)
{
	struct testalert ta;
	char err[400], id[32];
	uint64_t req;
	int i;

	for (i = from; i < to; i++) {
		snprintf(id, sizeof(id), "restart-%d", i);
		testalert_init(&ta, id, CPX__CATEGORY__CATEGORY_ROUTE,
		    CPX__SEVERITY__SEVERITY_LOW,
		    CPX__HANDLING__HANDLING_NETWORK, "", "restart");
		assert_int_equal(cpx_publish_send(pub, &ta.alert, &req, err,
		    sizeof(err)), 0);
	}
}

/* Pump every client until cond() holds or timeout; 1 if it did. */
static int
pump_all(struct cpx_client **c, int n, struct cpx_client *pub,
    int (*cond)(void *), void *arg, int timeout_ms)
{
	int64_t until = testutil_now_ms() + timeout_ms;
	int i;

	while (!cond(arg) && testutil_now_ms() < until) {
		for (i = 0; i < n; i++)
			if (cpx_client_run(c[i], 1) == -1)
				fail_msg("client %d lost for good: %s", i,
				    cpx_client_error(c[i]));
		if (cpx_client_run(pub, 1) == -1)
			fail_msg("publisher lost: %s", cpx_client_error(pub));
	}
	return cond(arg);
}

struct restart_state {
	struct testsink	*s;
	struct acks	*a;
	int		 want_conn;
	size_t		 want_n;
	int		 want_acks;
};

static int
all_connected(void *arg)
{
	struct restart_state *rs = arg;
	int i;

	for (i = 0; i < NCLIENTS; i++)
		if (rs->s[i].connected < rs->want_conn)
			return 0;
	return 1;
}

static int
all_delivered(void *arg)
{
	struct restart_state *rs = arg;
	int i;

	if (rs->a->n < rs->want_acks)
		return 0;
	for (i = 0; i < NCLIENTS; i++)
		if (rs->s[i].n < rs->want_n)
			return 0;
	return 1;
}

static void
test_restart_20_clients(void **state)
{
	static const char *nodes[] = { "hr-ncp", "at-ncp", "hu-ncp",
	    "it-ncp", "ba-ncp", "rs-ncp", "me-ncp", "mk-ncp", "al-ncp",
	    "xk-ncp" };
	struct testbroker tb;
	struct restart_state rs;
	struct testsink *s;
	struct acks *a;
	struct cpx_client *c[NCLIENTS], *pub;
	char err[400];
	int i, j, count;

	(void)state;
	s = calloc(NCLIENTS, sizeof(*s));
	a = calloc(1, sizeof(*a));
	assert_non_null(s);
	assert_non_null(a);
	assert_int_equal(testbroker_start(&tb, "publish_rate = 0\n", NULL), 0);
	for (i = 0; i < NCLIENTS; i++) {
		c[i] = harden_connect(&tb, nodes[i % 10], 1, &s[i]);
		subscribe_all(c[i], &s[i], 1);
	}
	pub = testbroker_client(&tb, "si-ncp", 1, err, sizeof(err));
	assert_non_null(pub);
	cpx_client_on_event(pub, acks_cb, a);
	if (cpx_client_connect(pub, 10000, err, sizeof(err)) == -1)
		fail_msg("publisher: %s", err);
	memset(&rs, 0, sizeof(rs));
	rs.s = s;
	rs.a = a;

	/* Some acknowledged before the restart. */
	send_range(pub, 0, RESTART_N / 3);
	rs.want_acks = RESTART_N / 3;
	rs.want_n = RESTART_N / 3;
	assert_true(pump_all(c, NCLIENTS, pub, all_delivered, &rs, 20000));

	/* Some sent while it stops, some while it is down. */
	send_range(pub, RESTART_N / 3, RESTART_N / 2);
	assert_true(WIFEXITED(testbroker_stop(&tb, SIGTERM)));
	send_range(pub, RESTART_N / 2, 2 * RESTART_N / 3);
	assert_int_equal(testbroker_restart(&tb), 0);

	/* Every client reconnects and handshakes again by itself. */
	rs.want_conn = 2;
	assert_true(pump_all(c, NCLIENTS, pub, all_connected, &rs, 20000));
	for (i = 0; i < NCLIENTS; i++) {
		assert_int_equal(s[i].connected, 2);
		assert_int_equal(s[i].disconnected, 1);
	}

	/* And after it: nothing acknowledged is lost, nothing doubled. */
	send_range(pub, 2 * RESTART_N / 3, RESTART_N);
	rs.want_acks = RESTART_N;
	rs.want_n = RESTART_N;
	assert_true(pump_all(c, NCLIENTS, pub, all_delivered, &rs, 30000));
	assert_int_equal(a->n, RESTART_N);
	assert_int_equal(cpx_publish_inflight(pub), 0);
	for (i = 0; i < NCLIENTS; i++) {
		for (j = 0; j < a->n; j++) {
			testsink_has(&s[i], a->id[j], &count);
			if (count != 1)
				fail_msg("client %d: %s delivered %d times", i,
				    a->id[j], count);
		}
		assert_int_equal(s[i].n, RESTART_N);
	}
	for (i = 0; i < NCLIENTS; i++)
		cpx_client_free(&c[i]);
	cpx_client_free(&pub);
	assert_int_equal(testbroker_cleanup(&tb), 0);
	free(s);
	free(a);
}

/* ---- half a TLS record, then silence ------------------------------ */

static void
test_half_record(void **state)
{
	static const uint8_t half[] = { 0x17, 0x03, 0x03, 0x01, 0x00,
	    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };
	struct testbroker tb;
	struct testsink sink;
	struct cpx_client *good;
	struct rawtls raw;
	Cpx__Envelope *env;
	int64_t t0, until, closed_at = 0;

	(void)state;
	assert_int_equal(testbroker_start(&tb, "idle_timeout_ms = 2000\n"
	    "ping_interval_ms = 500\n", NULL), 0);
	good = harden_connect(&tb, "at-ncp", 0, &sink);
	assert_int_equal(rawtls_open(&raw, tb.port, "hr-ncp", 0, 1), 0);
	/* The header announces 256 bytes; 16 come, then nothing. */
	assert_int_equal(write(raw.fd, half, sizeof(half)),
	    (ssize_t)sizeof(half));
	t0 = testutil_now_ms();
	until = t0 + 6000;
	while (testutil_now_ms() < until && closed_at == 0) {
		assert_true(cpx_client_run(good, 20) >= 0);
		if ((env = rawtls_read(&raw, 0)) != NULL)
			cpx__envelope__free_unpacked(env, NULL);
		if (raw.eof)
			closed_at = testutil_now_ms();
	}
	assert_true(closed_at > 0);
	assert_true(closed_at - t0 >= 1500);
	assert_int_equal(raw.last_error, CPX__REASON__REASON_IDLE_TIMEOUT);
	/*
	 * Said when decided; the connection itself then waits for the
	 * peer to read the Error and close (see edge.c).
	 */
	assert_true(testbroker_wait_log(&tb, "HR/hr-ncp: closing the session "
	    "(idle-timeout): nothing received", 2000));
	assert_int_equal(sink.disconnected, 0);
	harden_assert_served(good, &sink);
	harden_publish_ok(good, "after-half");
	rawtls_close(&raw);
	cpx_client_free(&good);
	assert_int_equal(testbroker_cleanup(&tb), 0);
}

/* ---- 1,000 connections that never handshake ----------------------- */

#define IDLE_CONNS	1000

static void
test_unhandshaken_flood(void **state)
{
	struct testbroker tb;
	struct testsink sink;
	struct cpx_client *good;
	struct pollfd pfd;
	static int fds[IDLE_CONNS];
	char buf[64];
	long rss0, rss_peak, rss_after, records, refusals;
	int i, open_n = 0, closed = 0, base, status;
	int64_t t0, until;

	(void)state;
	if (harden_raise_nofile(IDLE_CONNS + 1024) == -1)
		skip();
	harden_small_quarantine();
	/* The per-address limits off: this measures memory per connection. */
	assert_int_equal(testbroker_start(&tb, "max_sessions = 1100\n"
	    "handshake_timeout_ms = 3000\nmax_handshakes = 1100\n"
	    "max_handshakes_per_address = 1100\nconnect_rate = 0\n", NULL),
	    0);
	good = harden_connect(&tb, "si-ncp", 0, &sink);
	subscribe_all(good, &sink, 0);
	rss0 = harden_rss_kb(tb.pid);
	base = testbroker_log_count(&tb, ": connected");
	for (i = 0; i < IDLE_CONNS; i++)
		if ((fds[i] = harden_tcp_connect(tb.port)) >= 0)
			open_n++;
	assert_int_equal(open_n, IDLE_CONNS);
	until = testutil_now_ms() + 5000;
	while (testbroker_log_count(&tb, ": connected") < base + IDLE_CONNS &&
	    testutil_now_ms() < until)
		assert_true(cpx_client_run(good, 20) >= 0);
	assert_int_equal(testbroker_log_count(&tb, ": connected"),
	    base + IDLE_CONNS);
	rss_peak = harden_rss_kb(tb.pid);
	/* Meanwhile the valid node is served, promptly. */
	t0 = testutil_now_ms();
	harden_publish_ok(good, "during-flood");
	assert_true(testsink_wait_deliveries(&sink, good, 1, 5000));
	harden_assert_served(good, &sink);
	fprintf(stderr, "valid node served in %lld ms with %d idle "
	    "connections\n", (long long)(testutil_now_ms() - t0), IDLE_CONNS);
	/* All cleared after handshake_timeout_ms. */
	until = testutil_now_ms() + 8000;
	for (i = 0; i < IDLE_CONNS; i++) {
		pfd.fd = fds[i];
		pfd.events = POLLIN;
		while (testutil_now_ms() < until) {
			(void)cpx_client_run(good, 0);
			if (poll(&pfd, 1, 20) == 1) {
				if (read(fds[i], buf, sizeof(buf)) <= 0)
					closed++;
				break;
			}
		}
		close(fds[i]);
	}
	assert_int_equal(closed, IDLE_CONNS);
	/* One line for all of them: the rest are counted (see below). */
	assert_int_equal(testbroker_log_count(&tb,
	    "session refused (idle-timeout)"), 1);
	rss_after = harden_rss_kb(tb.pid);
	fprintf(stderr, "broker RSS %ld KiB before, %ld KiB with %d idle "
	    "unauthenticated connections (%.1f KiB each), %ld KiB after "
	    "they were cleared\n", rss0, rss_peak, IDLE_CONNS,
	    (double)(rss_peak - rss0) / IDLE_CONNS, rss_after);
	/*
	 * A generous bound (sanitizer builds double it): no per-connection
	 * buffer sized by what a peer may later send.
	 */
	assert_true(rss_peak - rss0 < 128 * IDLE_CONNS);
	assert_int_equal(sink.disconnected, 0);
	harden_assert_served(good, &sink);
	cpx_client_free(&good);
	/* Every timeout on record, in one full record and one summary. */
	status = testbroker_stop(&tb, SIGTERM);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_int_equal(harden_audit_refusals(tb.audit,
	    CPX__RECORD_KIND__RECORD_SESSION_REFUSED,
	    CPX__REASON__REASON_IDLE_TIMEOUT, &records, &refusals), 0);
	assert_int_equal(refusals, IDLE_CONNS);
	assert_int_equal(records, 2);
	assert_int_equal(testbroker_cleanup(&tb), 0);
}

/* ---- a flood of badly signed publishes ---------------------------- */

#define BAD_N	500
#define GOOD_N	20

struct reasons {
	int	acks;
	int	errors;
	int	by[32];
};

static void
reasons_cb(const struct cpx_event *ev, void *arg)
{
	struct reasons *r = arg;

	if (ev->kind == CPX_EV_ACK)
		r->acks++;
	else if (ev->kind == CPX_EV_ERROR) {
		r->errors++;
		if (ev->reason >= 0 && ev->reason < 32)
			r->by[ev->reason]++;
	}
}

static void
test_bad_signature_flood(void **state)
{
	Cpx__SignedAlert sa = CPX__SIGNED_ALERT__INIT;
	struct testbroker tb;
	struct reasons si_r, hr_r;
	struct cpx_client *si, *hr;
	struct testalert ta;
	EVP_PKEY *key;
	X509 *cert;
	uint8_t buf[4096];
	char path[512], err[400], id[32];
	uint64_t req;
	size_t len;
	int i, status, bad_sig, limited;
	int64_t until;
	long records, refusals;

	(void)state;
	memset(&si_r, 0, sizeof(si_r));
	memset(&hr_r, 0, sizeof(hr_r));
	assert_int_equal(testbroker_start(&tb, "publish_rate = 100\n"
	    "publish_burst = 50\n", NULL), 0);
	si = testbroker_connect(&tb, "si-ncp", 0, err, sizeof(err));
	hr = testbroker_connect(&tb, "hr-ncp", 0, err, sizeof(err));
	assert_non_null(si);
	assert_non_null(hr);
	cpx_client_on_event(si, reasons_cb, &si_r);
	cpx_client_on_event(hr, reasons_cb, &hr_r);
	assert_int_equal(testpki_path(path, sizeof(path), "nodes/si-ncp.key"),
	    0);
	key = tlsctx_load_key(path, err, sizeof(err));
	assert_non_null(key);
	assert_int_equal(testpki_path(path, sizeof(path), "nodes/si-ncp.pem"),
	    0);
	cert = tlsctx_load_cert(path, err, sizeof(err));
	assert_non_null(cert);

	for (i = 0; i < BAD_N; i++) {
		snprintf(id, sizeof(id), "forged-%d", i);
		testalert_init(&ta, id, CPX__CATEGORY__CATEGORY_ROUTE,
		    CPX__SEVERITY__SEVERITY_LOW,
		    CPX__HANDLING__HANDLING_NETWORK, "", "garbage signature");
		ta.alert.origin = "SI";
		ta.alert.issued_at = alert_now_ms();
		len = cpx__alert__get_packed_size(&ta.alert);
		assert_true(len <= sizeof(buf));
		cpx__alert__pack(&ta.alert, buf);
		assert_int_equal(sign_alert(key, cert, buf, len, &sa), 0);
		sa.signature.data[sa.signature.len / 2] ^= 0x5a;
		assert_int_equal(cpx_publish_signed(si, &sa, &req, err,
		    sizeof(err)), 0);
		sign_signed_alert_clear(&sa);
		if (i % (BAD_N / GOOD_N) == 0) {
			snprintf(id, sizeof(id), "honest-%d", i);
			testalert_init(&ta, id, CPX__CATEGORY__CATEGORY_ROUTE,
			    CPX__SEVERITY__SEVERITY_LOW,
			    CPX__HANDLING__HANDLING_NETWORK, "", "valid");
			assert_int_equal(cpx_publish_send(hr, &ta.alert, &req,
			    err, sizeof(err)), 0);
		}
		if (i % 50 == 0) {
			assert_true(cpx_client_run(si, 0) >= 0);
			assert_true(cpx_client_run(hr, 0) >= 0);
		}
	}
	until = testutil_now_ms() + 20000;
	while ((si_r.acks + si_r.errors < BAD_N ||
	    hr_r.acks + hr_r.errors < GOOD_N) && testutil_now_ms() < until) {
		assert_true(cpx_client_run(si, 10) >= 0);
		assert_true(cpx_client_run(hr, 10) >= 0);
	}
	/* Each forged one refused, none accepted, the node not cut off. */
	assert_int_equal(si_r.acks, 0);
	assert_int_equal(si_r.errors, BAD_N);
	bad_sig = si_r.by[CPX__REASON__REASON_BAD_SIGNATURE];
	limited = si_r.by[CPX__REASON__REASON_RATE_LIMITED];
	assert_int_equal(bad_sig + limited, BAD_N);
	assert_true(bad_sig >= 50);
	assert_true(limited > 0);
	/* Every valid one from the other node accepted. */
	assert_int_equal(hr_r.acks, GOOD_N);
	assert_int_equal(hr_r.errors, 0);
	/*
	 * Each logged and audited in full once, the rest counted: the
	 * records stand for every refusal, two per reason at most.
	 */
	assert_int_equal(testbroker_log_count(&tb, "refused (bad-signature)"),
	    1);
	assert_int_equal(testbroker_log_count(&tb, "refused (rate-limited)"),
	    1);
	EVP_PKEY_free(key);
	X509_free(cert);
	cpx_client_free(&si);
	cpx_client_free(&hr);
	status = testbroker_stop(&tb, SIGTERM);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_int_equal(harden_audit_refusals(tb.audit,
	    CPX__RECORD_KIND__RECORD_PUBLISH_REFUSED, -1, &records,
	    &refusals), 0);
	assert_int_equal(refusals, BAD_N);
	assert_true(records <= 4);
	fprintf(stderr, "%d forged publishes: %d bad-signature, %d "
	    "rate-limited, in %ld audit records; %d valid ones from another "
	    "node accepted\n", BAD_N, bad_sig, limited, records, hr_r.acks);
	assert_int_equal(testbroker_cleanup(&tb), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_revoke_and_reload),
		cmocka_unit_test(test_sigterm_drain),
		cmocka_unit_test(test_subscriber_killed),
		cmocka_unit_test(test_restart_20_clients),
		cmocka_unit_test(test_half_record),
		cmocka_unit_test(test_unhandshaken_flood),
		cmocka_unit_test(test_bad_signature_flood),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
