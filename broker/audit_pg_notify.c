/*
 * audit_pg_notify.c: hearing of other brokers' commits. Every commit
 * sends NOTIFY cpx_log with its last seq inside its transaction, so it
 * is delivered on COMMIT. A third connection LISTENs: its socket is
 * audit_notify_fd, and audit_notify_drain reads what came and returns
 * the highest seq announced by another broker (our own commits are
 * known already). When that connection is lost it comes back without
 * blocking: until it is up again audit_notify_fd is a timerfd that
 * wakes the loop when it is time to try (after 1 s, then every 20 ms
 * while connecting), so the drain the loop then calls drives the
 * reconnection even on a broker with nothing of its own to commit. On
 * its return it announces the head as it is then: commits made while
 * nobody listened are read too. The payload is only a hint: a cursor
 * reads and checks the records it announces.
 */
#include <sys/timerfd.h>

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "audit.h"
#include "audit_impl.h"
#include "audit_pg.h"
#include "log.h"

#define LISTEN_SQL \
	"LISTEN " PG_NOTIFY_CHANNEL "; SELECT seq FROM cpx_head"
#define LISTEN_RETRY_MS	1000
#define LISTEN_POLL_MS		20	/* while connecting */
#define LISTEN_CONNECT_MS	10000	/* give a connect up */

/*
 * Wake the loop in ms (at least 1), through the timerfd audit_notify_fd
 * gives while down; ms < 0 disarms it.
 */
static void
arm(struct audit_pg *p, int64_t ms)
{
	struct itimerspec	its;

	if (p->ltimer == -1)
		return;
	memset(&its, 0, sizeof(its));
	if (ms >= 0 && ms < 1)
		ms = 1;
	if (ms < 0)
		ms = 0;		/* it_value 0: disarmed */
	its.it_value.tv_sec = ms / 1000;
	its.it_value.tv_nsec = (ms % 1000) * 1000000;
	if (timerfd_settime(p->ltimer, 0, &its, NULL) == -1)
		log_warn("audit: postgresql (%s): timerfd", p->desc);
}

static void
listen_down(struct audit_pg *p, int64_t retry_ms)
{
	char	m[512];

	if (p->lconn != NULL && p->lstate == PG_UP)
		log_warnx("audit: postgresql (%s): notification connection "
		    "lost: %s; reconnecting", p->desc, audit_pg_msg(p->lconn,
		    m, sizeof(m)));
	PQfinish(p->lconn);
	p->lconn = NULL;
	p->lstate = PG_DOWN;
	p->lretry_at = audit_pg_now() + retry_ms;
	arm(p, retry_ms);
}

int
audit_pg_listen_open(struct audit_pg *p, char *err, size_t errlen)
{
	PGresult	*r;
	char		 m[512];

	p->ltimer = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK |
	    TFD_CLOEXEC);
	if (p->ltimer == -1)
		return audit_pg_err(p, err, errlen, "timerfd: %s",
		    strerror(errno));
	if ((p->lconn = audit_pg_connect(p, "listen", err, errlen)) == NULL)
		return -1;
	r = PQexec(p->lconn, "LISTEN " PG_NOTIFY_CHANNEL);
	if (PQresultStatus(r) != PGRES_COMMAND_OK ||
	    PQsetnonblocking(p->lconn, 1) != 0) {
		PQclear(r);
		return audit_pg_err(p, err, errlen, "listen: %s",
		    audit_pg_msg(p->lconn, m, sizeof(m)));
	}
	PQclear(r);
	p->lstate = PG_UP;
	return 0;
}

void
audit_pg_listen_poll(struct audit_pg *p)
{
	PostgresPollingStatusType st;
	struct pollfd	pfd;
	int		i;

	if (p->readonly || p->lstate == PG_UP)
		return;
	if (p->lstate == PG_DOWN) {
		if (audit_pg_now() < p->lretry_at)
			return;
		p->lconn = audit_pg_connect_start(p);
		if (p->lconn == NULL || PQstatus(p->lconn) == CONNECTION_BAD) {
			listen_down(p, LISTEN_RETRY_MS);
			return;
		}
		p->lstate = PG_CONNECTING;
		p->lretry_at = audit_pg_now() + LISTEN_CONNECT_MS;
	}
	/* As far as it goes now (a loopback connect is done at once). */
	for (i = 0; i < 8; i++) {
		st = PQconnectPoll(p->lconn);
		if (st == PGRES_POLLING_FAILED || (st != PGRES_POLLING_OK &&
		    audit_pg_now() > p->lretry_at)) {
			listen_down(p, LISTEN_RETRY_MS);
			return;
		}
		if (st == PGRES_POLLING_OK)
			break;
		pfd.fd = PQsocket(p->lconn);
		pfd.events = st == PGRES_POLLING_READING ? POLLIN : POLLOUT;
		if (poll(&pfd, 1, 0) <= 0) {
			arm(p, LISTEN_POLL_MS);
			return;
		}
	}
	if (st != PGRES_POLLING_OK) {
		arm(p, LISTEN_POLL_MS);
		return;
	}
	if (PQsetnonblocking(p->lconn, 1) != 0 ||
	    PQsendQuery(p->lconn, LISTEN_SQL) != 1 ||
	    PQflush(p->lconn) == -1) {
		listen_down(p, LISTEN_RETRY_MS);
		return;
	}
	p->lstate = PG_UP;
	arm(p, -1);	/* the timer's wake-ups are over */
	log_info("audit: postgresql (%s): listening for other brokers' "
	    "commits again", p->desc);
}

int
audit_pg_notify_fd(const struct audit_pg *p)
{
	if (p->readonly)
		return -1;
	return p->lstate == PG_UP ? PQsocket(p->lconn) : p->ltimer;
}

static uint64_t
parse_seq(const char *s)
{
	unsigned long long	 v;
	char			*end;

	if (s == NULL || *s < '0' || *s > '9' || strlen(s) > 20)
		return 0;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v > INT64_MAX)
		return 0;
	return v;
}

uint64_t
audit_pg_notify_drain(struct audit_pg *p)
{
	PGnotify	*n;
	PGresult	*r;
	uint64_t	 best = 0, v;
	int		 own;

	if (p->lstate != PG_UP) {
		while (p->ltimer != -1 && read(p->ltimer, &v, sizeof(v)) ==
		    (ssize_t)sizeof(v))
			;	/* the wake-up is taken */
		audit_pg_listen_poll(p);
		return 0;
	}
	if (PQconsumeInput(p->lconn) != 1) {
		listen_down(p, 0);
		audit_pg_listen_poll(p);	/* at once */
		return 0;
	}
	/* The head read on reconnecting counts as an announcement. */
	while (!PQisBusy(p->lconn) && (r = PQgetResult(p->lconn)) != NULL) {
		if (PQresultStatus(r) == PGRES_TUPLES_OK &&
		    PQntuples(r) == 1 && PQnfields(r) == 1 &&
		    (v = parse_seq(PQgetvalue(r, 0, 0))) > best)
			best = v;
		PQclear(r);
	}
	own = p->conn != NULL && p->cstate == PG_UP ?
	    PQbackendPID(p->conn) : 0;
	while ((n = PQnotifies(p->lconn)) != NULL) {
		if (strcmp(n->relname, PG_NOTIFY_CHANNEL) == 0 &&
		    (own == 0 || n->be_pid != own) &&
		    (v = parse_seq(n->extra)) > best)
			best = v;
		PQfreemem(n);
	}
	/* The head moved under us: the next commit takes the long way. */
	if (best > p->others_seq)
		p->others_seq = best;
	return best;
}
