/*
 * pgserver.h: real PostgreSQL 15 servers for the tests, started and
 * stopped through scripts/pg-cluster.sh: a primary, optionally with a
 * synchronous streaming standby, on free loopback ports, in a fresh
 * /tmp/cpx-test-* directory. A server never outlives its test: teardown
 * stops it, and a watchdog process stops it when the test process ends
 * in any way (exit, crash, SIGKILL from a ctest timeout).
 */
#ifndef CPX_PGSERVER_H
#define CPX_PGSERVER_H

#include <stddef.h>

struct pg_conn;		/* libpq's PGconn */

/* pgserver_start flags. */
#define PGSERVER_STANDBY	0x1u	/* a synchronous standby too */
#define PGSERVER_DEV		0x2u	/* cpx_broker may create tables */

struct pgserver {
	char	dir[256];	/* data, logs, sockets, pgpass */
	char	pgpass[300];	/* cpx_admin's, cpx_broker's passwords */
	char	dsn[512];	/* cpx_broker, all servers, passfile= */
	char	admin_dsn[512];	/* cpx_admin (owns database cpx) */
	int	standby;	/* started with a standby */
	int	watch_fd;	/* the watchdog's pipe: closed, it stops
				 * the cluster; a byte first: it exits */
};

/*
 * 1 if the PostgreSQL 15 programs pg-cluster.sh needs are installed
 * (scripts/install-deps.sh installs them), else 0 with the reason
 * printed: the caller then skips its test.
 */
int	pgserver_available(void);

/*
 * Start a cluster (flags: PGSERVER_*) and fill ps. Returns 0 when the
 * primary (and standby, streaming synchronously) accept connections, or
 * -1 with the script's messages printed (nothing left running).
 */
int	pgserver_start(struct pgserver *ps, unsigned flags)
	    __attribute__((warn_unused_result));
/*
 * A DSN for role ("cpx_broker", "cpx_admin"; "postgres": the superuser
 * over the unix socket) into out[len]. passfile: 1 to name ps->pgpass in
 * it. Returns 0, or -1.
 */
int	pgserver_dsn(struct pgserver *ps, const char *role, int passfile,
	    char *out, size_t len) __attribute__((warn_unused_result));
/*
 * The broker.ini lines of a broker on this cluster, as cpx_broker with
 * the password from store_passfile, into out[len]. Returns 0, or -1.
 */
int	pgserver_broker_config(struct pgserver *ps, char *out, size_t len)
	    __attribute__((warn_unused_result));
/*
 * Run sql on database cpx of the current primary as role (NULL: the
 * superuser), rows unaligned ('|' between columns) into out[len] (may be
 * NULL). Returns 0, or -1 (psql's error printed).
 */
int	pgserver_sql(struct pgserver *ps, const char *role, const char *sql,
	    char *out, size_t len) __attribute__((warn_unused_result));
/*
 * An administrator's open transaction holding table (of database cpx)
 * in ACCESS EXCLUSIVE mode: every query that touches it waits until
 * pgserver_unlock commits. The connection, or NULL (the error printed).
 */
struct pg_conn	*pgserver_lock(struct pgserver *ps, const char *table);
/* Commit and close what pgserver_lock opened. Returns 0 or -1. */
int	pgserver_unlock(struct pg_conn **c);
/* kill -9 the current primary (a crash). Returns 0 or -1. */
int	pgserver_kill_primary(struct pgserver *ps)
	    __attribute__((warn_unused_result));
/* Promote the standby to primary. Returns 0 or -1. */
int	pgserver_promote(struct pgserver *ps)
	    __attribute__((warn_unused_result));
/* Stop every server but keep their data (pgserver_restart). 0 or -1. */
int	pgserver_stop(struct pgserver *ps)
	    __attribute__((warn_unused_result));
/* Start again what pgserver_stop stopped, same ports. Returns 0 or -1. */
int	pgserver_restart(struct pgserver *ps)
	    __attribute__((warn_unused_result));
/*
 * Stop every server, remove the directory (kept if CPX_KEEP_TEST_DIRS is
 * set) and end the watchdog. Safe on a ps never started or cleaned
 * already.
 */
void	pgserver_cleanup(struct pgserver *ps);

#endif
