/*
 * test_systemd.c: the broker speaks sd_notify as Type=notify wants. A
 * real broker runs with NOTIFY_SOCKET naming a datagram socket this test
 * owns: READY=1 comes once it listens, RELOADING=1 with MONOTONIC_USEC
 * and then READY=1 around a SIGHUP, STOPPING=1 on SIGTERM, and STATUS
 * lines say what it does. Log lines carry their fields: as JSON
 * (log_format = json) a refused publish names country, node and reason,
 * a line logged while a node's requests are handled names the node, and
 * a refused handshake names the reason.
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
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "testbroker.h"
#include "testsink.h"
#include "testutil.h"

struct listener {
	char	dir[256];
	char	path[300];
	int	fd;
};

static void
listener_open(struct listener *l)
{
	struct sockaddr_un sun;

	assert_int_equal(testutil_mkdtemp(l->dir, sizeof(l->dir)), 0);
	snprintf(l->path, sizeof(l->path), "%s/notify", l->dir);
	assert_true(strlen(l->path) < sizeof(sun.sun_path));
	l->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(l->fd >= 0);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, l->path, strlen(l->path) + 1);
	assert_int_equal(bind(l->fd, (struct sockaddr *)&sun, sizeof(sun)),
	    0);
}

static void
listener_close(struct listener *l)
{
	close(l->fd);
	assert_int_equal(testutil_rmrf(l->dir), 0);
}

/*
 * The next message holding want (a "KEY=VALUE" line), skipping others
 * (STATUS updates), within timeout_ms; its text in buf. 1 if found.
 */
static int
wait_message(struct listener *l, const char *want, char *buf, size_t len,
    int timeout_ms)
{
	struct pollfd pfd = { l->fd, POLLIN, 0 };
	int64_t until = testutil_now_ms() + timeout_ms, left;
	ssize_t n;

	while ((left = until - testutil_now_ms()) > 0) {
		if (poll(&pfd, 1, (int)left) <= 0)
			continue;
		if ((n = recv(l->fd, buf, len - 1, 0)) <= 0)
			continue;
		buf[n] = '\0';
		if (strstr(buf, want) != NULL)
			return 1;
	}
	return 0;
}

static void
test_notify(void **state)
{
	struct testbroker tb;
	struct listener l;
	struct timespec ts;
	char msg[1024], *p;
	unsigned long long usec, before;
	int status;

	(void)state;
	listener_open(&l);
	assert_int_equal(setenv("NOTIFY_SOCKET", l.path, 1), 0);
	assert_int_equal(testbroker_start(&tb, "metrics_listen = off", NULL),
	    0);
	assert_int_equal(unsetenv("NOTIFY_SOCKET"), 0);

	/* The first message is READY=1, and by then the broker listens. */
	assert_true(wait_message(&l, "", msg, sizeof(msg), 10000));
	assert_non_null(strstr(msg, "READY=1"));
	assert_true(testutil_tcp_connects(tb.port));
	assert_true(testbroker_wait_log(&tb, "listening on", 0));
	/* STATUS names sessions and seq: at once, then every 10 s. */
	assert_true(wait_message(&l, "STATUS=", msg, sizeof(msg), 5000));
	assert_non_null(strstr(msg, "session(s)"));
	assert_non_null(strstr(msg, "last seq"));

	/* SIGHUP: RELOADING=1 with a current MONOTONIC_USEC, then READY=1. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	before = (unsigned long long)ts.tv_sec * 1000000ull +
	    (unsigned long long)ts.tv_nsec / 1000;
	assert_int_equal(kill(tb.pid, SIGHUP), 0);
	assert_true(wait_message(&l, "RELOADING=1", msg, sizeof(msg), 10000));
	assert_non_null(p = strstr(msg, "MONOTONIC_USEC="));
	usec = strtoull(p + strlen("MONOTONIC_USEC="), NULL, 10);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	assert_true(usec >= before);
	assert_true(usec <= (unsigned long long)ts.tv_sec * 1000000ull +
	    (unsigned long long)ts.tv_nsec / 1000);
	assert_true(wait_message(&l, "READY=1", msg, sizeof(msg), 10000));
	assert_true(testbroker_wait_log(&tb, "SIGHUP: reloading", 0));

	/* SIGTERM: STOPPING=1, then a clean exit. */
	status = testbroker_stop(&tb, SIGTERM);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_true(wait_message(&l, "STOPPING=1", msg, sizeof(msg), 1000));
	assert_int_equal(testbroker_cleanup(&tb), 0);
	listener_close(&l);
}

/* The JSON line of log whose msg contains needle; NULL if none. */
static json_t *
json_line(const char *log, const char *needle)
{
	const char *p = log, *nl;
	char line[4096];
	json_t *o, *m;
	size_t n;

	for (; *p != '\0'; p = nl + 1) {
		if ((nl = strchr(p, '\n')) == NULL)
			break;
		n = (size_t)(nl - p);
		if (n >= sizeof(line))
			continue;
		memcpy(line, p, n);
		line[n] = '\0';
		if ((o = json_loads(line, 0, NULL)) == NULL)
			fail_msg("not a JSON line: %s", line);
		m = json_object_get(o, "msg");
		if (json_is_string(m) && strstr(json_string_value(m), needle))
			return o;
		json_decref(o);
	}
	return NULL;
}

static void
expect_field(json_t *o, const char *key, const char *want)
{
	json_t *v = json_object_get(o, key);

	if (!json_is_string(v) || strcmp(json_string_value(v), want) != 0)
		fail_msg("%s: want \"%s\" in %s", key, want,
		    json_dumps(o, JSON_COMPACT));
}

static void
test_json_fields(void **state)
{
	struct testbroker tb;
	struct testsink *sink;
	struct cpx_client *si, *hr;
	struct cpx_result res;
	struct testalert ta;
	struct testfilter tf;
	Cpx__Filter *f[1];
	uint64_t req;
	char err[400], *log;
	json_t *o;

	(void)state;
	assert_non_null(sink = calloc(1, sizeof(*sink)));
	assert_int_equal(testbroker_start(&tb, "log_format = json\n"
	    "metrics_listen = off", NULL), 0);
	assert_non_null(si = testbroker_connect(&tb, "si-ncp", 0, err,
	    sizeof(err)));
	testalert_init(&ta, "json-1", CPX__CATEGORY__CATEGORY_ROUTE,
	    CPX__SEVERITY__SEVERITY_LOW, CPX__HANDLING__HANDLING_NETWORK, "",
	    "first");
	assert_int_equal(cpx_publish(si, &ta.alert, 10000, &res), 0);
	testalert_init(&ta, "json-1", CPX__CATEGORY__CATEGORY_ROUTE,
	    CPX__SEVERITY__SEVERITY_LOW, CPX__HANDLING__HANDLING_NETWORK, "",
	    "other bytes");
	assert_int_equal(cpx_publish(si, &ta.alert, 10000, &res), -1);
	/* A line logged while HR's requests are handled: its context. */
	assert_non_null(hr = testsink_connect(&tb, "hr-ncp", 0, sink));
	testfilter_init(&tf, "", "", NULL, 0, 0);
	f[0] = &tf.f;
	assert_int_equal(cpx_subscribe(hr, f, 1, 0, 0, &req), 0);
	assert_true(testsink_run_until(hr, &sink->subscribed, 1, 5000));
	/* A node refused before authentication: only the reason is known. */
	assert_null(testbroker_connect(&tb, "revoked-hr", 0, err,
	    sizeof(err)));
	cpx_client_free(&si);
	cpx_client_free(&hr);
	assert_true(testbroker_wait_log(&tb, "session refused", 5000));

	assert_non_null(log = testutil_read_text(tb.log));
	if ((o = json_line(log, "publish json-1 refused")) == NULL)
		fail_msg("no refusal line in %s", log);
	expect_field(o, "level", "warn");
	expect_field(o, "country", "SI");
	expect_field(o, "node", "si-ncp");
	expect_field(o, "reason", "duplicate-conflict");
	json_decref(o);
	assert_non_null(o = json_line(log, "subscribed with 1 filter"));
	expect_field(o, "country", "HR");
	expect_field(o, "node", "hr-ncp");
	assert_null(json_object_get(o, "reason"));
	json_decref(o);
	assert_non_null(o = json_line(log, "session refused"));
	assert_non_null(json_object_get(o, "reason"));
	assert_null(json_object_get(o, "node"));
	json_decref(o);
	free(log);
	assert_int_equal(testbroker_cleanup(&tb), 0);
	free(sink);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_notify),
		cmocka_unit_test(test_json_fields),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
