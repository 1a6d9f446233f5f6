/*
 * test_log.c: lib/log.c and lib/logrl.c. Every destination of a log line
 * (text, JSON, "<N>" prefixes, a host's sink) with its fields, the
 * thread's field context, and the rate limiter that keeps a sustained
 * failure from flooding the log: first line in full, then one summary
 * with the count, at the end of the interval or when the failure ends.
 * stderr is captured through a real file.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "log.h"
#include "logrl.h"
#include "testutil.h"

/* --- stderr into a file ------------------------------------------------ */

struct capture {
	char	dir[256];
	char	path[300];
	int	saved;
};

static void
capture_start(struct capture *c)
{
	int fd;

	assert_int_equal(testutil_mkdtemp(c->dir, sizeof(c->dir)), 0);
	snprintf(c->path, sizeof(c->path), "%s/stderr", c->dir);
	fflush(stderr);
	c->saved = dup(STDERR_FILENO);
	assert_true(c->saved >= 0);
	fd = open(c->path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(dup2(fd, STDERR_FILENO), STDERR_FILENO);
	close(fd);
}

/* Restore stderr; the captured text, owned by the caller. */
static char *
capture_end(struct capture *c)
{
	char *text;

	fflush(stderr);
	assert_int_equal(dup2(c->saved, STDERR_FILENO), STDERR_FILENO);
	close(c->saved);
	text = testutil_read_text(c->path);
	assert_non_null(text);
	assert_int_equal(testutil_rmrf(c->dir), 0);
	return text;
}

static int
count_lines(const char *text)
{
	int n = 0;

	for (; *text != '\0'; text++)
		n += *text == '\n';
	return n;
}

/* --- a host's sink -------------------------------------------------------- */

#define SINK_MAX	64

struct sink {
	int	n;
	int	prio[SINK_MAX];
	char	line[SINK_MAX][600];
};

static void
sink_fn(int prio, const char *line, void *arg)
{
	struct sink *s = arg;

	if (s->n < SINK_MAX) {
		s->prio[s->n] = prio;
		snprintf(s->line[s->n], sizeof(s->line[0]), "%s", line);
	}
	s->n++;
}

static int
reset(void **state)
{
	(void)state;
	log_init("cpx-test", LOG_LEVEL_INFO);
	log_set_format(LOG_FORMAT_TEXT);
	log_set_sink(NULL, NULL);
	log_set_writer(NULL, NULL);
	log_context_pop(NULL);
	return 0;
}

/* --- destinations --------------------------------------------------------- */

static void
test_text(void **state)
{
	struct capture c;
	char *out;

	(void)state;
	capture_start(&c);
	log_warnx("disk %s is full", "/var/lib/cpx");
	log_debug("not at info level");
	log_info("second");
	out = capture_end(&c);
	assert_int_equal(count_lines(out), 2);
	assert_non_null(strstr(out, "Z cpx-test[warn] disk /var/lib/cpx is "
	    "full\n"));
	assert_non_null(strstr(out, "Z cpx-test[info] second\n"));
	assert_null(strstr(out, "not at info level"));
	free(out);
}

static void
test_json(void **state)
{
	static const struct log_fields f = { "SI", "si-ncp", "bad-signature" };
	const struct log_fields ctx = { "HR", "hr-ncp", NULL }, *prev;
	json_error_t jerr;
	json_t *o;
	struct capture c;
	char *out, *line, *save = NULL;
	int n = 0;

	(void)state;
	log_set_format(LOG_FORMAT_JSON);
	capture_start(&c);
	log_warnx_f(&f, "s12 SI/si-ncp: publish \"a\\b\" refused\t(%s)",
	    f.reason);
	prev = log_context_push(&ctx);
	log_info("in context");
	log_warnx_f(&f, "explicit fields win");
	log_context_pop(prev);
	/* Bytes that are not UTF-8 must not break the line. */
	log_warnx("bad utf-8: \xff\xfe and \xc3\xa9");
	log_info("after the context");
	out = capture_end(&c);
	assert_int_equal(count_lines(out), 5);
	for (line = strtok_r(out, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save), n++) {
		o = json_loads(line, 0, &jerr);
		if (o == NULL)
			fail_msg("line %d is not JSON (%s): %s", n, jerr.text,
			    line);
		assert_true(json_is_string(json_object_get(o, "time")));
		assert_string_equal(json_string_value(json_object_get(o,
		    "prog")), "cpx-test");
		switch (n) {
		case 0:
			assert_string_equal(json_string_value(json_object_get(o,
			    "level")), "warn");
			assert_string_equal(json_string_value(json_object_get(o,
			    "msg")), "s12 SI/si-ncp: publish \"a\\b\" refused\t"
			    "(bad-signature)");
			assert_string_equal(json_string_value(json_object_get(o,
			    "country")), "SI");
			assert_string_equal(json_string_value(json_object_get(o,
			    "node")), "si-ncp");
			assert_string_equal(json_string_value(json_object_get(o,
			    "reason")), "bad-signature");
			break;
		case 1:
			assert_string_equal(json_string_value(json_object_get(o,
			    "level")), "info");
			assert_string_equal(json_string_value(json_object_get(o,
			    "node")), "hr-ncp");
			assert_null(json_object_get(o, "reason"));
			break;
		case 2:
			assert_string_equal(json_string_value(json_object_get(o,
			    "node")), "si-ncp");
			break;
		case 3:
			assert_string_equal(json_string_value(json_object_get(o,
			    "msg")), "bad utf-8: \xef\xbf\xbd\xef\xbf\xbd and "
			    "\xc3\xa9");
			break;
		case 4:
			assert_null(json_object_get(o, "node"));
			break;
		}
		json_decref(o);
	}
	free(out);
}

static void
test_prefix(void **state)
{
	struct capture c;
	char *out;

	(void)state;
	log_set_format(LOG_FORMAT_PREFIX);
	capture_start(&c);
	log_warnx("w");
	log_info("i");
	log_set_level(LOG_LEVEL_DEBUG);
	log_debug("d");
	out = capture_end(&c);
	assert_string_equal(out, "<4>w\n<6>i\n<7>d\n");
	free(out);
}

static void
test_sink(void **state)
{
	struct capture c;
	struct sink s;
	char *out;

	(void)state;
	memset(&s, 0, sizeof(s));
	log_set_sink(sink_fn, &s);
	capture_start(&c);
	errno = ENOSPC;
	log_warn("write %s", "seg");
	log_info("hello");
	log_debug("filtered");
	out = capture_end(&c);
	log_set_sink(NULL, NULL);
	/* Nothing on stderr: the host has the lines, without time or level. */
	assert_string_equal(out, "");
	assert_int_equal(s.n, 2);
	assert_int_equal(s.prio[0], 4);
	assert_string_equal(s.line[0], "write seg: No space left on device");
	assert_int_equal(s.prio[1], 6);
	assert_string_equal(s.line[1], "hello");
	free(out);
}

static void
test_parse(void **state)
{
	enum log_format f;
	enum log_level l;

	(void)state;
	assert_int_equal(log_format_parse("json", &f), 0);
	assert_int_equal(f, LOG_FORMAT_JSON);
	assert_int_equal(log_format_parse("SYSLOG", &f), 0);
	assert_int_equal(f, LOG_FORMAT_SYSLOG);
	assert_int_equal(log_format_parse("xml", &f), -1);
	assert_int_equal(log_level_parse("warn", &l), 0);
	assert_int_equal(log_level_priority(LOG_LEVEL_ERROR), 3);
	assert_int_equal(log_level_priority(LOG_LEVEL_DEBUG), 7);
}

/* --- the rate limiter ----------------------------------------------------- */

static void
test_logrl_interval(void **state)
{
	struct logrl *rl;
	struct sink s;
	int64_t t;
	int written = 0;

	(void)state;
	memset(&s, 0, sizeof(s));
	log_set_sink(sink_fn, &s);
	assert_non_null(rl = logrl_new(10000, 8));
	/* 83,000 failures in 25 s: the disk-full flood of the issue. */
	for (t = 0; t < 83000; t++)
		written += logrl_log(rl, t * 25000 / 83000, LOG_LEVEL_WARN,
		    NULL, "commit", NULL, "audit: write: No space left on "
		    "device");
	logrl_tick(rl, 25000);
	/* Once in full at 0, again at 10 s and 20 s; two summaries. */
	assert_int_equal(written, 3);
	assert_int_equal(s.n, 5);
	assert_string_equal(s.line[0], "audit: write: No space left on device");
	assert_non_null(strstr(s.line[1], "(repeated 33,199 times in 10 s)"));
	assert_string_equal(s.line[2], "audit: write: No space left on device");
	assert_non_null(strstr(s.line[3], "(repeated 33,199 times in 10 s)"));
	assert_string_equal(s.line[4], "audit: write: No space left on device");
	/* It ends: the rest is summarised at once. */
	assert_int_equal(logrl_end(rl, 25000, "commit", NULL), 16599);
	assert_int_equal(s.n, 6);
	assert_non_null(strstr(s.line[5], "(repeated 16,599 times in 5 s)"));
	/* And the next occurrence is a new line in full. */
	assert_int_equal(logrl_log(rl, 25001, LOG_LEVEL_WARN, NULL, "commit",
	    NULL, "audit: write: No space left on device"), 1);
	/* Quiet for a whole interval: forgotten without a summary. */
	logrl_tick(rl, 40000);
	assert_int_equal(s.n, 7);
	logrl_free(&rl);
	assert_null(rl);
	assert_int_equal(s.n, 7);
	log_set_sink(NULL, NULL);
}

static void
test_logrl_keys(void **state)
{
	struct logrl *rl;
	struct sink s;
	char key[16];
	int i;

	(void)state;
	memset(&s, 0, sizeof(s));
	log_set_sink(sink_fn, &s);
	assert_non_null(rl = logrl_new(60000, 2));
	/* Same site, different messages: different keys. */
	assert_int_equal(logrl_log(rl, 0, LOG_LEVEL_WARN, NULL, "s", NULL,
	    "a"), 1);
	assert_int_equal(logrl_log(rl, 1, LOG_LEVEL_WARN, NULL, "s", NULL,
	    "b"), 1);
	assert_int_equal(logrl_log(rl, 2, LOG_LEVEL_WARN, NULL, "s", NULL,
	    "a"), 0);
	/* An explicit key groups lines whose text differs (a port). */
	assert_int_equal(logrl_log(rl, 3, LOG_LEVEL_WARN, NULL, "h", "1.2.3.4",
	    "1.2.3.4:5000 refused"), 1);
	assert_int_equal(s.n, 3);
	/* A third key evicted the least recently seen ("b", no repeats). */
	assert_int_equal(logrl_log(rl, 4, LOG_LEVEL_WARN, NULL, "h", "1.2.3.4",
	    "1.2.3.4:5001 refused"), 0);
	assert_int_equal(logrl_log(rl, 5, LOG_LEVEL_WARN, NULL, "s", NULL,
	    "b"), 1);
	/* ... and that evicted "a", whose repeat is summarised first. */
	assert_int_equal(s.n, 5);
	assert_non_null(strstr(s.line[3], "a (repeated 1 time in 1 s)"));
	assert_string_equal(s.line[4], "b");
	/* Below the level: neither written nor counted. */
	assert_int_equal(logrl_log(rl, 6, LOG_LEVEL_DEBUG, NULL, "s", NULL,
	    "d"), 0);
	/* Many sources: the table stays at its size. */
	for (i = 0; i < 100; i++) {
		snprintf(key, sizeof(key), "10.0.0.%d", i);
		(void)logrl_log(rl, 10 + i, LOG_LEVEL_WARN, NULL, "h", key,
		    "refused %s", key);
	}
	assert_int_equal(s.n, 5 + 100 + 1);	/* + the 1.2.3.4 summary */
	logrl_free(&rl);
	logrl_free(&rl);
	log_set_sink(NULL, NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_text, reset),
		cmocka_unit_test_setup(test_json, reset),
		cmocka_unit_test_setup(test_prefix, reset),
		cmocka_unit_test_setup(test_sink, reset),
		cmocka_unit_test_setup(test_parse, reset),
		cmocka_unit_test_setup(test_logrl_interval, reset),
		cmocka_unit_test_setup(test_logrl_keys, reset),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
