/*
 * test_config.c: tests of broker/config.c: the defaults, a full file and
 * the documented example, every bad value of every key (each with its
 * file:line: key message, the configuration left unchanged), relative
 * path resolution, config_set, config_check, and the file cut short at
 * every length and over size.
 */
#include <sys/stat.h>

#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "cpx_limits.h"
#include "inifile.h"
#include "testutil.h"

#define ERRLEN	512

struct fixture {
	char	dir[256];
	char	path[512];	/* dir/broker.ini */
};

static int
setup(void **state)
{
	struct fixture *f;

	if ((f = calloc(1, sizeof(*f))) == NULL)
		return -1;
	if (testutil_mkdtemp(f->dir, sizeof(f->dir)) == -1) {
		free(f);
		return -1;
	}
	snprintf(f->path, sizeof(f->path), "%s/broker.ini", f->dir);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	int rc;

	rc = testutil_rmrf(f->dir);
	free(f);
	return rc;
}

static void
set_required(struct config *c)
{
	char err[ERRLEN];

	assert_int_equal(config_set(c, "ca", "/pki/ca.pem", err,
	    sizeof(err)), 0);
	assert_int_equal(config_set(c, "cert", "/pki/b.pem", err,
	    sizeof(err)), 0);
	assert_int_equal(config_set(c, "key", "/pki/b.key", err,
	    sizeof(err)), 0);
	assert_int_equal(config_set(c, "crl", "/pki/crl.pem", err,
	    sizeof(err)), 0);
	assert_int_equal(config_set(c, "policy", "/etc/p.ini", err,
	    sizeof(err)), 0);
	assert_int_equal(config_set(c, "audit_dir", "/var/audit", err,
	    sizeof(err)), 0);
}

static void
assert_defaults(const struct config *c)
{
	assert_string_equal(c->listen, "tcp://0.0.0.0:7443");
	assert_string_equal(c->log_level, "info");
	assert_int_equal(c->max_frame, 262144);
	assert_int_equal(c->max_sessions, 2000);
	assert_int_equal(c->handshake_timeout_ms, 10000);
	assert_int_equal(c->idle_timeout_ms, 90000);
	assert_int_equal(c->ping_interval_ms, 30000);
	assert_int_equal(c->publish_rate, 2000);
	assert_int_equal(c->publish_burst, 4000);
	assert_int_equal(c->verify_threads, 1);
	assert_int_equal(c->outbound_queue, 8 * 1024 * 1024);
	assert_int_equal(c->clock_skew_ms, 300000);
	assert_int_equal(c->checkpoint_interval_ms, 60000);
	assert_int_equal(c->checkpoint_records, 10000);
}

static void
t_defaults(void **state)
{
	struct config c;
	char err[ERRLEN];

	(void)state;
	config_defaults(&c);
	assert_defaults(&c);
	assert_null(c.ca);
	assert_null(c.cert);
	assert_null(c.key);
	assert_null(c.crl);
	assert_null(c.policy);
	assert_null(c.audit_dir);
	assert_null(c.user);
	assert_int_equal(config_check(&c, err, sizeof(err)), -1);
	assert_string_equal(err, "ca: not set");
	set_required(&c);
	assert_int_equal(config_check(&c, err, sizeof(err)), 0);
	config_clear(&c);
	assert_null(c.listen);
	assert_null(c.ca);
	config_clear(&c);
	config_clear(NULL);
}

static void
t_file(void **state)
{
	struct fixture *f = *state;
	static const char text[] =
	    "; comment\n"
	    "[broker]\n"
	    "listen = tcp://127.0.0.1:9000\n"
	    "ca = certs/ca.pem\n"
	    "cert = /abs/broker.pem\n"
	    "key = ../keys/broker.key\n"
	    "crl = crl.pem ; trailing comment\n"
	    "policy = policy.ini\n"
	    "audit_dir = audit\n"
	    "user = _cpx\n"
	    "log_level = debug\n"
	    "max_frame = 1024\n"
	    "max_sessions = 1\n"
	    "handshake_timeout_ms = 100\n"
	    "idle_timeout_ms = 300\n"
	    "ping_interval_ms = 100\n"
	    "publish_rate = 0\n"
	    "publish_burst = 1\n"
	    "outbound_queue = 65536\n"
	    "clock_skew_ms = 86400000\n"
	    "checkpoint_interval_ms = 1000\n"
	    "checkpoint_records = 0100000000\n";
	struct config c;
	char err[ERRLEN], want[1024];

	config_defaults(&c);
	assert_int_equal(testutil_write_file(f->path, text, sizeof(text) - 1),
	    0);
	if (config_load(&c, f->path, err, sizeof(err)) == -1)
		fail_msg("%s", err);
	assert_string_equal(c.listen, "tcp://127.0.0.1:9000");
	snprintf(want, sizeof(want), "%s/certs/ca.pem", f->dir);
	assert_string_equal(c.ca, want);
	assert_string_equal(c.cert, "/abs/broker.pem");
	snprintf(want, sizeof(want), "%s/../keys/broker.key", f->dir);
	assert_string_equal(c.key, want);
	snprintf(want, sizeof(want), "%s/crl.pem", f->dir);
	assert_string_equal(c.crl, want);
	snprintf(want, sizeof(want), "%s/policy.ini", f->dir);
	assert_string_equal(c.policy, want);
	snprintf(want, sizeof(want), "%s/audit", f->dir);
	assert_string_equal(c.audit_dir, want);
	assert_string_equal(c.user, "_cpx");	/* not a path */
	assert_string_equal(c.log_level, "debug");
	assert_int_equal(c.max_frame, 1024);
	assert_int_equal(c.max_sessions, 1);
	assert_int_equal(c.handshake_timeout_ms, 100);
	assert_int_equal(c.idle_timeout_ms, 300);
	assert_int_equal(c.ping_interval_ms, 100);
	assert_int_equal(c.publish_rate, 0);
	assert_int_equal(c.publish_burst, 1);
	assert_int_equal(c.outbound_queue, 65536);
	assert_int_equal(c.clock_skew_ms, 86400000);
	assert_int_equal(c.checkpoint_interval_ms, 1000);
	assert_int_equal(c.checkpoint_records, 100000000);
	assert_int_equal(config_check(&c, err, sizeof(err)), 0);

	/* A second file goes over the first (keys it names only). */
	assert_int_equal(testutil_write_file(f->path,
	    "[broker]\nmax_frame = 2048\n", 26), 0);
	assert_int_equal(config_load(&c, f->path, err, sizeof(err)), 0);
	assert_int_equal(c.max_frame, 2048);
	assert_int_equal(c.outbound_queue, 65536);
	assert_string_equal(c.user, "_cpx");
	config_clear(&c);
}

static void
t_example(void **state)
{
	struct config c;
	char err[ERRLEN], path[1024], want[1100];

	(void)state;
	config_defaults(&c);
	snprintf(path, sizeof(path), "%s/broker/broker.example.ini",
	    CPX_SOURCE_DIR);
	if (config_load(&c, path, err, sizeof(err)) == -1)
		fail_msg("%s", err);
	/* The example documents the defaults: it must set exactly them. */
	assert_defaults(&c);
	assert_null(c.user);
	snprintf(want, sizeof(want), "%s/broker/policy.example.ini",
	    CPX_SOURCE_DIR);
	assert_string_equal(c.policy, want);
	snprintf(want, sizeof(want), "%s/broker/pki/ca.pem", CPX_SOURCE_DIR);
	assert_string_equal(c.ca, want);
	assert_int_equal(config_check(&c, err, sizeof(err)), 0);
	config_clear(&c);
}

struct bad {
	const char	*line;
	const char	*want;
};

static const struct bad bad_lines[] = {
	{ "max_frame = 9999999",
	    "max_frame: 9999999 is over the limit 262144" },
	{ "max_frame = 1023", "max_frame: 1023 is under the minimum 1024" },
	{ "max_frame = 0", "max_frame: 0 is under the minimum 1024" },
	{ "max_frame = -1", "max_frame: \"-1\" is not a decimal number" },
	{ "max_frame = +2048", "max_frame: \"+2048\" is not a decimal" },
	{ "max_frame = 0x800", "max_frame: \"0x800\" is not a decimal" },
	{ "max_frame = 2k", "max_frame: \"2k\" is not a decimal" },
	{ "max_frame = 2e3", "max_frame: \"2e3\" is not a decimal" },
	{ "max_frame = 2 048", "max_frame: \"2 048\" is not a decimal" },
	{ "max_frame = 4096.0", "max_frame: \"4096.0\" is not a decimal" },
	{ "max_frame =", "max_frame: \"\" is not a decimal number" },
	{ "max_frame = 99999999999999999999999",
	    "max_frame: 99999999999999999999999 is over the limit 262144" },
	{ "max_frame = 4294968320", "max_frame: 4294968320 is over the limit" },
	{ "max_sessions = 0", "max_sessions: 0 is under the minimum 1" },
	{ "max_sessions = 100001", "max_sessions: 100001 is over the limit" },
	{ "handshake_timeout_ms = 99", "handshake_timeout_ms: 99 is under" },
	{ "handshake_timeout_ms = 600001", "handshake_timeout_ms: 600001 i" },
	{ "idle_timeout_ms = 299", "idle_timeout_ms: 299 is under" },
	{ "idle_timeout_ms = 86400001", "idle_timeout_ms: 86400001 is over" },
	{ "ping_interval_ms = 99", "ping_interval_ms: 99 is under" },
	{ "ping_interval_ms = 3600001", "ping_interval_ms: 3600001 is over" },
	{ "publish_rate = 1000001", "publish_rate: 1000001 is over" },
	{ "publish_burst = 0", "publish_burst: 0 is under the minimum 1" },
	{ "verify_threads = 65", "verify_threads: 65 is over" },
	{ "publish_burst = 10000001", "publish_burst: 10000001 is over" },
	{ "outbound_queue = 65535", "outbound_queue: 65535 is under" },
	{ "outbound_queue = 1073741825", "outbound_queue: 1073741825 is over" },
	{ "clock_skew_ms = 999", "clock_skew_ms: 999 is under" },
	{ "clock_skew_ms = 86400001", "clock_skew_ms: 86400001 is over" },
	{ "checkpoint_interval_ms = 999", "checkpoint_interval_ms: 999 is u" },
	{ "checkpoint_interval_ms = 86400001", "checkpoint_interval_ms: 864" },
	{ "checkpoint_records = 0", "checkpoint_records: 0 is under" },
	{ "checkpoint_records = 100000001", "checkpoint_records: 100000001" },
	{ "listen = udp://0.0.0.0:1", "listen: \"udp://0.0.0.0:1\" is not a "
	    "tcp:// endpoint" },
	{ "listen =", "listen: empty value" },
	{ "ca =", "ca: empty value" },
	{ "cert = ; nothing", "cert: empty value" },
	{ "key = a\x01" "b", "key: control character in value" },
	{ "crl =", "crl: empty value" },
	{ "policy =", "policy: empty value" },
	{ "audit_dir =", "audit_dir: empty value" },
	{ "user = -root", "user: \"-root\" is not a valid user name" },
	{ "user = a b", "user: \"a b\" is not a valid user name" },
	{ "user = a/b", "user: \"a/b\" is not a valid user name" },
	{ "user =", "user: empty value" },
	{ "log_level = verbose", "log_level: \"verbose\" is not one of" },
	{ "Max_frame = 2048", "Max_frame: unknown key" },
	{ "maxframe = 2048", "maxframe: unknown key" },
	{ "ping_interval = 100", "ping_interval: unknown key" },
	{ "max_frame = 2048\nmax_frame = 4096",
	    ":4: max_frame: duplicate key" },
	{ "max_frame = 2048\n  4096", ":4: max_frame: indented line would" },
	{ "max_frame 2048", ":3: syntax error" },
	{ "[policy]\nx = 1", ":3: [policy]: unknown section (only [broker]" },
	{ "[broker]\nmax_frame = 2048", ":3: [broker]: duplicate section" },
};

static void
t_bad(void **state)
{
	struct fixture *f = *state;
	struct config c;
	char err[ERRLEN], text[512], want[768];
	size_t i;
	int n;

	for (i = 0; i < sizeof(bad_lines) / sizeof(bad_lines[0]); i++) {
		/* Line 2 sets a value the failure must not keep. */
		n = snprintf(text, sizeof(text), "[broker]\n%s\n%s\n",
		    strncmp(bad_lines[i].line, "max_sessions", 12) == 0 ?
		    "max_frame = 4096" : "max_sessions = 7",
		    bad_lines[i].line);
		assert_true(n > 0 && (size_t)n < sizeof(text));
		assert_int_equal(testutil_write_file(f->path, text, (size_t)n),
		    0);
		config_defaults(&c);
		err[0] = '\0';
		assert_int_equal(config_load(&c, f->path, err, sizeof(err)),
		    -1);
		if (bad_lines[i].want[0] == ':')
			snprintf(want, sizeof(want), "%s%s", f->path,
			    bad_lines[i].want);
		else
			snprintf(want, sizeof(want), "%s:3: %s", f->path,
			    bad_lines[i].want);
		if (strstr(err, want) != err)
			fail_msg("case %zu: \"%s\" is not \"%s...\"", i, err,
			    want);
		/* Unchanged: nothing of a refused file is kept. */
		assert_defaults(&c);
		assert_null(c.user);
		config_clear(&c);
	}
}

static void
t_bad_file(void **state)
{
	struct fixture *f = *state;
	struct config c;
	char err[ERRLEN], path[600];
	int fd;

	config_defaults(&c);
	/* Keys outside a section, empty section, missing file, directory. */
	assert_int_equal(testutil_write_file(f->path, "max_frame = 2048\n",
	    17), 0);
	assert_int_equal(config_load(&c, f->path, err, sizeof(err)), -1);
	assert_non_null(strstr(err, ":1: max_frame: key outside any"));
	assert_int_equal(testutil_write_file(f->path, "[broker]\n", 9), 0);
	assert_int_equal(config_load(&c, f->path, err, sizeof(err)), -1);
	assert_non_null(strstr(err, ":1: [broker]: section has no keys"));
	snprintf(path, sizeof(path), "%s/none.ini", f->dir);
	assert_int_equal(config_load(&c, path, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "none.ini: No such file or directory"));
	assert_int_equal(config_load(&c, f->dir, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "not a regular file"));
	/* NUL byte and a path value that would pass PATH_MAX. */
	assert_int_equal(testutil_write_file(f->path, "[broker]\nca = a\0b\n",
	    18), 0);
	assert_int_equal(config_load(&c, f->path, err, sizeof(err)), -1);
	assert_non_null(strstr(err, ":2: NUL byte in line"));
	/* Over size. */
	fd = open(f->path, O_WRONLY | O_TRUNC);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, INIFILE_MAX_FILE + 1), 0);
	assert_int_equal(close(fd), 0);
	assert_int_equal(config_load(&c, f->path, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "larger than"));
	/* An empty file is valid and changes nothing. */
	assert_int_equal(testutil_write_file(f->path, "", 0), 0);
	assert_int_equal(config_load(&c, f->path, err, sizeof(err)), 0);
	assert_defaults(&c);
	config_clear(&c);
}

static void
t_relative(void **state)
{
	struct fixture *f = *state;
	struct config c;
	char err[ERRLEN], sub[600], path[700], cwd[PATH_MAX], want[800];

	/* dir/etc/cpx/broker.ini: paths are from dir/etc/cpx. */
	snprintf(sub, sizeof(sub), "%s/etc", f->dir);
	assert_int_equal(mkdir(sub, 0700), 0);
	snprintf(sub, sizeof(sub), "%s/etc/cpx", f->dir);
	assert_int_equal(mkdir(sub, 0700), 0);
	snprintf(path, sizeof(path), "%s/broker.ini", sub);
	snprintf(want, sizeof(want), "[broker]\npolicy = ../policy.ini\n"
	    "ca = /ca.pem\naudit_dir = ./audit\n");
	assert_int_equal(testutil_write_file(path, want, strlen(want)), 0);
	config_defaults(&c);
	if (config_load(&c, path, err, sizeof(err)) == -1)
		fail_msg("%s", err);
	snprintf(want, sizeof(want), "%s/../policy.ini", sub);
	assert_string_equal(c.policy, want);
	assert_string_equal(c.ca, "/ca.pem");
	snprintf(want, sizeof(want), "%s/./audit", sub);
	assert_string_equal(c.audit_dir, want);
	config_clear(&c);

	/* "broker.ini" in the current directory: paths stay relative. */
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir(sub), 0);
	config_defaults(&c);
	assert_int_equal(config_load(&c, "broker.ini", err, sizeof(err)), 0);
	assert_int_equal(chdir(cwd), 0);
	assert_string_equal(c.policy, "../policy.ini");
	assert_string_equal(c.audit_dir, "./audit");
	config_clear(&c);

	config_clear(&c);
}

static void
t_set(void **state)
{
	struct config c;
	char err[ERRLEN], name[PATH_MAX + 1];

	(void)state;
	config_defaults(&c);
	assert_int_equal(config_set(&c, "max_frame", "4096", err,
	    sizeof(err)), 0);
	assert_int_equal(c.max_frame, 4096);
	assert_int_equal(config_set(&c, "max_frame", "9999999", err,
	    sizeof(err)), -1);
	assert_string_equal(err,
	    "max_frame: 9999999 is over the limit 262144");
	assert_int_equal(c.max_frame, 4096);
	assert_int_equal(config_set(&c, "max_frame", "", err,
	    sizeof(err)), -1);
	assert_int_equal(c.max_frame, 4096);
	assert_int_equal(config_set(&c, "nope", "1", err, sizeof(err)), -1);
	assert_string_equal(err, "nope: unknown key");
	/* Relative paths stay relative to the current directory. */
	assert_int_equal(config_set(&c, "policy", "p.ini", err,
	    sizeof(err)), 0);
	assert_string_equal(c.policy, "p.ini");
	assert_int_equal(config_set(&c, "policy", "q.ini", err,
	    sizeof(err)), 0);
	assert_string_equal(c.policy, "q.ini");
	assert_int_equal(config_set(&c, "policy", "", err, sizeof(err)),
	    -1);
	assert_string_equal(err, "policy: empty value");
	assert_string_equal(c.policy, "q.ini");
	/* PATH_MAX - 1 bytes is the longest path. */
	memset(name, 'p', sizeof(name));
	name[PATH_MAX - 1] = '\0';
	assert_int_equal(config_set(&c, "ca", name, err, sizeof(err)), 0);
	name[PATH_MAX - 1] = 'p';
	name[PATH_MAX] = '\0';
	assert_int_equal(config_set(&c, "ca", name, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "ca: path longer than"));
	assert_int_equal(strlen(c.ca), PATH_MAX - 1);
	assert_int_equal(config_set(&c, "log_level", "WARN", err,
	    sizeof(err)), 0);
	assert_int_equal(config_set(&c, "log_level", "loud", err,
	    sizeof(err)), -1);
	assert_string_equal(c.log_level, "WARN");
	assert_int_equal(config_set(&c, "listen", "tcp://[::1]:1", err,
	    sizeof(err)), 0);
	assert_string_equal(c.listen, "tcp://[::1]:1");
	config_clear(&c);
}

static void
t_check(void **state)
{
	struct config c;
	char err[ERRLEN];

	(void)state;
	config_defaults(&c);
	set_required(&c);
	assert_int_equal(config_check(&c, err, sizeof(err)), 0);

	/* idle >= 3 x ping: exactly 3 x is fine. */
	c.ping_interval_ms = 30000;
	c.idle_timeout_ms = 90000;
	assert_int_equal(config_check(&c, err, sizeof(err)), 0);
	c.idle_timeout_ms = 89999;
	assert_int_equal(config_check(&c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "idle_timeout_ms: 89999 is under 3 x"));
	c.idle_timeout_ms = 90000;

	c.outbound_queue = 65536;
	c.max_frame = 65537;
	assert_int_equal(config_check(&c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "outbound_queue: 65536 is under "
	    "max_frame"));
	c.max_frame = 65536;
	assert_int_equal(config_check(&c, err, sizeof(err)), 0);

	/* Ranges are checked again for values set behind config_set. */
	c.max_frame = CPX_MAX_FRAME + 1;
	c.outbound_queue = 8u << 20;
	assert_int_equal(config_check(&c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "max_frame: 262145 is outside"));
	c.max_frame = 1024;
	c.publish_burst = 0;
	assert_int_equal(config_check(&c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "publish_burst"));
	c.publish_burst = 1;
	assert_int_equal(config_check(&c, err, sizeof(err)), 0);

	/* Each required path. */
	free(c.crl);
	c.crl = NULL;
	assert_int_equal(config_check(&c, err, sizeof(err)), -1);
	assert_string_equal(err, "crl: not set");
	free(c.listen);
	c.listen = NULL;
	assert_int_equal(config_check(&c, err, sizeof(err)), -1);
	assert_string_equal(err, "listen: not set");
	config_clear(&c);
}

/*
 * store = file | postgresql: a database needs its DSN and no audit_dir;
 * its password file is refused when group or others may read it, and
 * exported as PGPASSFILE when it is not.
 */
static void
t_store(void **state)
{
	struct fixture *f = *state;
	struct config c;
	char err[ERRLEN], pass[600];

	config_defaults(&c);
	set_required(&c);
	assert_false(config_store_pg(&c));
	assert_int_equal(config_set(&c, "store", "pg", err, sizeof(err)),
	    -1);
	assert_string_equal(err, "store: \"pg\" is not file or postgresql");
	assert_int_equal(config_set(&c, "store", "file", err, sizeof(err)),
	    0);
	assert_false(config_store_pg(&c));
	assert_int_equal(config_check(&c, err, sizeof(err)), 0);
	free(c.audit_dir);
	c.audit_dir = NULL;
	assert_int_equal(config_check(&c, err, sizeof(err)), -1);
	assert_string_equal(err, "audit_dir: not set");

	assert_int_equal(config_set(&c, "store", "postgresql", err,
	    sizeof(err)), 0);
	assert_true(config_store_pg(&c));
	assert_int_equal(config_check(&c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "store_dsn: not set"));
	assert_int_equal(config_set(&c, "store_dsn", "host=db1,db2 "
	    "dbname=cpx target_session_attrs=read-write", err, sizeof(err)),
	    0);
	/* No audit_dir: the database holds the log. */
	assert_int_equal(config_check(&c, err, sizeof(err)), 0);

	/* No password file: nothing to check, nothing exported. */
	assert_int_equal(unsetenv("PGPASSFILE"), 0);
	assert_int_equal(config_store_env(&c, err, sizeof(err)), 0);
	assert_null(getenv("PGPASSFILE"));
	snprintf(pass, sizeof(pass), "%s/pgpass", f->dir);
	assert_int_equal(config_set(&c, "store_passfile", pass, err,
	    sizeof(err)), 0);
	assert_int_equal(config_store_env(&c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "store_passfile: "));
	assert_non_null(strstr(err, "No such file"));
	assert_int_equal(testutil_write_file(pass, "*:*:cpx:cpx:pw\n", 15),
	    0);
	assert_int_equal(chmod(pass, 0640), 0);
	assert_int_equal(config_store_env(&c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "mode 0640 lets group or others read "
	    "it; chmod 600 it"));
	assert_non_null(strstr(err, pass));
	assert_null(getenv("PGPASSFILE"));
	assert_int_equal(chmod(pass, 0604), 0);
	assert_int_equal(config_store_env(&c, err, sizeof(err)), -1);
	assert_int_equal(chmod(pass, 0600), 0);
	assert_int_equal(config_store_env(&c, err, sizeof(err)), 0);
	assert_non_null(getenv("PGPASSFILE"));
	assert_string_equal(getenv("PGPASSFILE"), pass);
	assert_int_equal(unsetenv("PGPASSFILE"), 0);
	/* A directory is no password file. */
	assert_int_equal(config_set(&c, "store_passfile", f->dir, err,
	    sizeof(err)), 0);
	assert_int_equal(config_store_env(&c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "not a regular file"));
	config_clear(&c);
}

static void
t_cut_short(void **state)
{
	struct fixture *f = *state;
	static const char text[] =
	    "[broker]\n"
	    "listen = tcp://127.0.0.1:9000\n"
	    "max_frame = 131072\n"
	    "ca = ca.pem\n"
	    "idle_timeout_ms = 120000\n";
	struct config c;
	char err[ERRLEN];
	size_t n, ok = 0;

	/* Every prefix loads or fails with a message; none crashes. */
	for (n = 0; n <= sizeof(text) - 1; n++) {
		assert_int_equal(testutil_write_file(f->path, text, n), 0);
		config_defaults(&c);
		err[0] = '\0';
		if (config_load(&c, f->path, err, sizeof(err)) == 0)
			ok++;
		else
			assert_non_null(strstr(err, f->path));
		config_clear(&c);
	}
	assert_true(ok > 0);
	/* "max_frame = 13": cut in the number, under the minimum. */
	n = (size_t)(strstr(text, "131072") - text) + 2;
	assert_int_equal(testutil_write_file(f->path, text, n), 0);
	config_defaults(&c);
	assert_int_equal(config_load(&c, f->path, err, sizeof(err)), -1);
	assert_non_null(strstr(err, ":3: max_frame: 13 is under the minimum"));
	config_clear(&c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_defaults),
		cmocka_unit_test_setup_teardown(t_file, setup, teardown),
		cmocka_unit_test(t_example),
		cmocka_unit_test_setup_teardown(t_bad, setup, teardown),
		cmocka_unit_test_setup_teardown(t_bad_file, setup, teardown),
		cmocka_unit_test_setup_teardown(t_relative, setup, teardown),
		cmocka_unit_test(t_set),
		cmocka_unit_test(t_check),
		cmocka_unit_test_setup_teardown(t_cut_short, setup, teardown),
		cmocka_unit_test_setup_teardown(t_store, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
