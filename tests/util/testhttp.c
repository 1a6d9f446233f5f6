/*
 * testhttp.c: the broker's HTTP endpoint as a test sees it (testhttp.h):
 * curl for the requests, as an operator's monitor would.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testhttp.h"
#include "testutil.h"

/*
 * curl the broker's endpoint: the status code (0 if curl failed) and the
 * body in body[TESTHTTP_BODY_MAX]. args: more curl options, or "".
 */
int
testhttp_get(int port, const char *path, const char *args, char *body)
{
	char cmd[512];
	size_t n = 0, r;
	char *nl;
	FILE *p;
	int code;

	snprintf(cmd, sizeof(cmd), "curl -s -S --max-time 5 %s -w '\\n%%{"
	    "http_code}' http://127.0.0.1:%d%s", args, port, path);
	if ((p = popen(cmd, "r")) == NULL)
		return 0;
	while (n < TESTHTTP_BODY_MAX - 1 &&
	    (r = fread(body + n, 1, TESTHTTP_BODY_MAX - 1 - n, p)) > 0)
		n += r;
	body[n] = '\0';
	if (pclose(p) != 0 || (nl = strrchr(body, '\n')) == NULL)
		return 0;
	code = atoi(nl + 1);
	*nl = '\0';
	return code;
}

/* The value of the sample named exactly `name` (labels included), or -1. */
double
testhttp_metric(const char *body, const char *name)
{
	size_t len = strlen(name);
	const char *p = body;

	while ((p = strstr(p, name)) != NULL) {
		if ((p == body || p[-1] == '\n') && p[len] == ' ')
			return strtod(p + len + 1, NULL);
		p += len;
	}
	return -1;
}

/* The port the broker's log says the endpoint listens on. */
int
testhttp_metrics_port(struct testbroker *tb)
{
	char *log, *p;
	int port = 0;

	assert_true(testbroker_wait_log(tb, "metrics: serving", 10000));
	log = testutil_read_text(tb->log);
	assert_non_null(log);
	if ((p = strstr(log, "metrics: serving")) != NULL &&
	    (p = strstr(p, "(port ")) != NULL)
		port = atoi(p + 6);
	free(log);
	assert_true(port > 0);
	return port;
}
