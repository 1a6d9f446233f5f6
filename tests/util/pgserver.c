/*
 * pgserver.c: see pgserver.h. Runs scripts/pg-cluster.sh (no shell in
 * between: arguments go as argv) and owns, for the duration of a test,
 * the cluster directory and a watchdog process that stops the cluster if
 * the test process dies before its teardown.
 */
#define _GNU_SOURCE	/* pipe2, close_range */

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "pgserver.h"
#include "testutil.h"

#define PGSERVER_PGBIN	"/usr/lib/postgresql/15/bin"

static const char *
pgbin(void)
{
	const char *s = getenv("PGBIN");

	return s != NULL && *s != '\0' ? s : PGSERVER_PGBIN;
}

static void
script_path(char *out, size_t len)
{
	const char *s = getenv("CPX_SOURCE_DIR");

	snprintf(out, len, "%s/scripts/pg-cluster.sh",
	    s != NULL ? s : CPX_SOURCE_DIR);
}

int
pgserver_available(void)
{
	static const char *const progs[] = {
		"initdb", "pg_ctl", "postgres", "psql", "pg_isready",
		"pg_basebackup"
	};
	char path[512];
	size_t i;

	for (i = 0; i < sizeof(progs) / sizeof(progs[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", pgbin(), progs[i]);
		if (access(path, X_OK) == -1) {
			fprintf(stderr, "PostgreSQL 15 is not installed (%s: "
			    "%s): install the Debian package postgresql-15 "
			    "(scripts/install-deps.sh does); skipping\n",
			    path, strerror(errno));
			return 0;
		}
	}
	return 1;
}

/*
 * The environment for the script: ours, and unless set already
 * PG_CLUSTER_TEMPLATE in the build directory, so that initdb runs once
 * per build directory rather than once per cluster. Owned by the caller
 * (free the array; its strings are environ's and tmpl).
 */
static char **
script_env(char *tmpl, size_t len)
{
	extern char **environ;
	const char *b = getenv("CPX_BINARY_DIR");
	char **env;
	size_t n = 0, i;

	while (environ[n] != NULL)
		n++;
	if ((env = calloc(n + 2, sizeof(*env))) == NULL)
		return NULL;
	for (i = 0; i < n; i++)
		env[i] = environ[i];
	if (getenv("PG_CLUSTER_TEMPLATE") == NULL) {
		snprintf(tmpl, len, "PG_CLUSTER_TEMPLATE=%s/pg-template",
		    b != NULL ? b : CPX_BINARY_DIR);
		env[n++] = tmpl;
	}
	env[n] = NULL;
	return env;
}

/*
 * Run pg-cluster.sh with args (NULL-terminated, after the script's
 * name); its stdout into out[len] without the last newline (out may be
 * NULL: stdout then goes to ours), its stderr to ours. Returns its exit
 * status (0..255), or -1 if it could not run or was killed.
 */
static int
run_script(const char *const *args, char *out, size_t len)
{
	const char *argv[16];
	char script[512], tmpl[600], **env;
	size_t n = 0, got = 0;
	ssize_t r;
	pid_t pid;
	int fds[2] = { -1, -1 }, status, devnull;

	script_path(script, sizeof(script));
	if ((env = script_env(tmpl, sizeof(tmpl))) == NULL)
		return -1;
	argv[n++] = "/bin/sh";
	argv[n++] = script;
	while (*args != NULL && n < sizeof(argv) / sizeof(argv[0]) - 1)
		argv[n++] = *args++;
	argv[n] = NULL;
	if (out != NULL) {
		if (len == 0 || pipe2(fds, O_CLOEXEC) == -1) {
			free(env);
			return -1;
		}
		out[0] = '\0';
	}
	fflush(stdout);
	fflush(stderr);
	if ((pid = fork()) == -1) {
		if (out != NULL) {
			close(fds[0]);
			close(fds[1]);
		}
		free(env);
		return -1;
	}
	if (pid == 0) {
		if ((devnull = open("/dev/null", O_RDONLY)) != -1)
			dup2(devnull, 0);
		if (out != NULL)
			dup2(fds[1], 1);
		/*
		 * The servers the script starts live on: they must not
		 * hold this process's sockets (a connection the test
		 * closes would stay open in them).
		 */
		close_range(3, ~0u, 0);
		execve("/bin/sh", (char *const *)argv, env);
		_exit(127);
	}
	free(env);
	if (out != NULL) {
		close(fds[1]);
		for (;;) {
			r = read(fds[0], out + got, len - 1 - got);
			if (r == -1 && errno == EINTR)
				continue;
			if (r <= 0)
				break;
			got += (size_t)r;
			if (got == len - 1) {
				/* Too long for out: drain the rest unread. */
				char sink[256];

				while (read(fds[0], sink, sizeof(sink)) > 0)
					;
				break;
			}
		}
		close(fds[0]);
		out[got] = '\0';
		while (got > 0 && out[got - 1] == '\n')
			out[--got] = '\0';
	}
	while (waitpid(pid, &status, 0) == -1)
		if (errno != EINTR)
			return -1;
	if (!WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

/*
 * The watchdog: a process outside the test's process tree (double fork,
 * own session, so a ctest timeout that kills the test's tree spares it)
 * that holds the read end of a pipe only the test holds the write end
 * of. When the test process ends in any way the pipe reads end of file
 * and the watchdog runs `pg-cluster.sh stop DIR --rm`; a byte read
 * first means the test stopped the cluster itself. PostgreSQL's servers
 * detach from whoever starts them, so without this a crashed test would
 * leave them running.
 */
static int
watchdog_start(struct pgserver *ps)
{
	char script[512], c;
	const char *argv[] = { "/bin/sh", script, "stop", ps->dir, "--rm",
		NULL };
	ssize_t r;
	pid_t pid, wd;
	int fds[2], status, devnull;

	script_path(script, sizeof(script));
	if (pipe2(fds, O_CLOEXEC) == -1)
		return -1;
	fflush(stdout);
	fflush(stderr);
	if ((pid = fork()) == -1) {
		close(fds[0]);
		close(fds[1]);
		return -1;
	}
	if (pid == 0) {
		/* Between fork and exec: async-signal-safe calls only. */
		setsid();
		if ((wd = fork()) != 0)
			_exit(wd == -1 ? 1 : 0);
		signal(SIGINT, SIG_IGN);
		signal(SIGTERM, SIG_IGN);
		if (dup2(fds[0], 3) == -1)
			_exit(1);
		/* Hold nothing of the test's: sockets, files, its pipes. */
		close_range(4, ~0u, 0);
		if ((devnull = open("/dev/null", O_RDWR)) != -1) {
			dup2(devnull, 0);
			dup2(devnull, 1);
			dup2(devnull, 2);
			if (devnull > 3)
				close(devnull);
		}
		c = '\0';
		do
			r = read(3, &c, 1);
		while (r == -1 && errno == EINTR);
		if (r == 1 && c == 'q')
			_exit(0);
		execv("/bin/sh", (char *const *)argv);
		_exit(127);
	}
	close(fds[0]);
	while (waitpid(pid, &status, 0) == -1 && errno == EINTR)
		;
	ps->watch_fd = fds[1];
	return 0;
}

static void
watchdog_dismiss(struct pgserver *ps)
{
	if (ps->watch_fd == -1)
		return;
	if (write(ps->watch_fd, "q", 1) != 1)
		fprintf(stderr, "pgserver: watchdog pipe: %s\n",
		    strerror(errno));
	close(ps->watch_fd);
	ps->watch_fd = -1;
}

int
pgserver_start(struct pgserver *ps, unsigned flags)
{
	const char *args[8];
	char out[1024];
	size_t n = 0;

	memset(ps, 0, sizeof(*ps));
	ps->watch_fd = -1;
	if (testutil_mkdtemp(ps->dir, sizeof(ps->dir)) == -1)
		return -1;
	if (watchdog_start(ps) == -1) {
		fprintf(stderr, "pgserver: cannot start the watchdog: %s\n",
		    strerror(errno));
		goto fail;
	}
	ps->standby = (flags & PGSERVER_STANDBY) != 0;
	args[n++] = "start";
	args[n++] = ps->dir;
	args[n++] = "0";
	if (ps->standby) {
		args[n++] = "--standby";
		args[n++] = "0";
	}
	if (flags & PGSERVER_DEV)
		args[n++] = "--dev";
	args[n] = NULL;
	if (run_script(args, out, sizeof(out)) != 0) {
		fprintf(stderr, "pgserver: pg-cluster.sh start %s failed\n",
		    ps->dir);
		goto fail;
	}
	snprintf(ps->pgpass, sizeof(ps->pgpass), "%s/pgpass", ps->dir);
	if (pgserver_dsn(ps, "cpx_broker", 1, ps->dsn, sizeof(ps->dsn)) == -1 ||
	    pgserver_dsn(ps, "cpx_admin", 1, ps->admin_dsn,
	    sizeof(ps->admin_dsn)) == -1)
		goto fail;
	return 0;
fail:
	pgserver_cleanup(ps);
	return -1;
}

int
pgserver_dsn(struct pgserver *ps, const char *role, int passfile, char *out,
    size_t len)
{
	const char *args[] = { "dsn", ps->dir, role,
		passfile ? NULL : "--no-passfile", NULL };

	if (run_script(args, out, len) != 0 || out[0] == '\0') {
		fprintf(stderr, "pgserver: no DSN for %s in %s\n", role,
		    ps->dir);
		return -1;
	}
	return 0;
}

int
pgserver_sql(struct pgserver *ps, const char *role, const char *sql,
    char *out, size_t len)
{
	const char *args[] = { "sql", ps->dir, "--role",
		role != NULL ? role : "postgres", sql, NULL };
	char buf[256];

	if (out == NULL) {
		out = buf;
		len = sizeof(buf);
	}
	if (run_script(args, out, len) != 0) {
		fprintf(stderr, "pgserver: SQL failed as %s: %s\n",
		    role != NULL ? role : "postgres", sql);
		return -1;
	}
	return 0;
}

static int
simple(struct pgserver *ps, const char *cmd)
{
	const char *args[] = { cmd, ps->dir, NULL };
	char out[512];

	if (run_script(args, out, sizeof(out)) != 0) {
		fprintf(stderr, "pgserver: pg-cluster.sh %s %s failed\n", cmd,
		    ps->dir);
		return -1;
	}
	return 0;
}

int
pgserver_kill_primary(struct pgserver *ps)
{
	return simple(ps, "kill-primary");
}

int
pgserver_promote(struct pgserver *ps)
{
	return simple(ps, "promote");
}

int
pgserver_stop(struct pgserver *ps)
{
	return simple(ps, "stop");
}

int
pgserver_restart(struct pgserver *ps)
{
	return simple(ps, "start");
}

void
pgserver_cleanup(struct pgserver *ps)
{
	const char *keep[] = { "stop", ps->dir, NULL };
	const char *rm[] = { "stop", ps->dir, "--rm", NULL };
	char out[512];

	if (ps->dir[0] == '\0')
		return;
	if (getenv("CPX_KEEP_TEST_DIRS") != NULL) {
		if (run_script(keep, out, sizeof(out)) != 0)
			fprintf(stderr, "pgserver: stop %s failed\n", ps->dir);
		fprintf(stderr, "pgserver: kept %s\n", ps->dir);
	} else {
		if (run_script(rm, out, sizeof(out)) != 0)
			fprintf(stderr, "pgserver: stop %s failed\n", ps->dir);
		/* The script leaves a directory that holds no cluster. */
		if (testutil_rmrf(ps->dir) == -1)
			fprintf(stderr, "pgserver: cannot remove %s\n",
			    ps->dir);
	}
	watchdog_dismiss(ps);
	ps->dir[0] = '\0';
}

struct pg_conn *
pgserver_lock(struct pgserver *ps, const char *table)
{
	PGconn *c = PQconnectdb(ps->admin_dsn);
	PGresult *r;
	char sql[256];

	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "pgserver: admin: %s", PQerrorMessage(c));
		PQfinish(c);
		return NULL;
	}
	snprintf(sql, sizeof(sql), "BEGIN; LOCK TABLE %s IN ACCESS EXCLUSIVE "
	    "MODE", table);
	r = PQexec(c, sql);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		fprintf(stderr, "pgserver: lock %s: %s", table,
		    PQerrorMessage(c));
		PQclear(r);
		PQfinish(c);
		return NULL;
	}
	PQclear(r);
	return c;
}

int
pgserver_unlock(struct pg_conn **c)
{
	PGresult *r;
	int ok;

	if (*c == NULL)
		return -1;
	r = PQexec(*c, "COMMIT");
	if (!(ok = PQresultStatus(r) == PGRES_COMMAND_OK))
		fprintf(stderr, "pgserver: unlock: %s", PQerrorMessage(*c));
	PQclear(r);
	PQfinish(*c);
	*c = NULL;
	return ok ? 0 : -1;
}

int
pgserver_broker_config(struct pgserver *ps, char *out, size_t len)
{
	char	dsn[512];
	int	n;

	if (pgserver_dsn(ps, "cpx_broker", 0, dsn, sizeof(dsn)) == -1)
		return -1;
	n = snprintf(out, len, "store = postgresql\nstore_dsn = %s\n"
	    "store_passfile = %s\n", dsn, ps->pgpass);
	return n < 0 || (size_t)n >= len ? -1 : 0;
}
