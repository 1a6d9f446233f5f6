/*
 * audit_pg.c: the PostgreSQL store of the audit log (audit.h): opening
 * and closing it, and its three connections to the database.
 *
 * The writer connection carries the commits (audit_pg_commit.c), in
 * libpq's pipeline mode, non-blocking, its socket polled by the broker's
 * loop. When it is lost the store drops it and starts a new one, without
 * blocking, on the next commit after a back-off (100 ms doubling to 2 s):
 * until then a commit fails at once with "storage: database unreachable
 * (...)", which the broker answers with reason storage. The cursors'
 * connection (audit_pg_cursor.c) and the LISTEN connection
 * (audit_pg_notify.c) are separate, so a cursor read never waits behind
 * a commit. A DSN may hold a password: it is never put in a message;
 * messages name the store by audit_pg_describe(). Owns struct audit_pg
 * and the struct audit that wraps it.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "audit.h"
#include "audit_impl.h"
#include "audit_pg.h"
#include "errfmt.h"
#include "log.h"

int64_t
audit_pg_now(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
audit_pg_err(const struct audit_pg *p, char *err, size_t errlen,
    const char *fmt, ...)
{
	char	msg[768];
	va_list	ap;

	va_start(ap, fmt);
	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return errf(err, errlen, "audit: postgresql (%s): %s", p->desc, msg);
}

const char *
audit_pg_msg(PGconn *c, char *buf, size_t len)
{
	size_t	n;

	snprintf(buf, len, "%s", c != NULL ? PQerrorMessage(c) :
	    "out of memory");
	n = strlen(buf);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = '\0';
	for (n = 0; buf[n] != '\0'; n++)
		if (buf[n] == '\n' || buf[n] == '\t')
			buf[n] = ' ';	/* one log line */
	if (buf[0] == '\0')
		snprintf(buf, len, "connection lost");
	return buf;
}

void
audit_pg_describe(const char *dsn, char *buf, size_t len)
{
	static const char *const keys[] = { "host", "hostaddr", "port",
	    "dbname", "user" };
	PQconninfoOption	*o, *opts;
	size_t			 k, used = 0;
	int			 n;

	if (len == 0)
		return;
	buf[0] = '\0';
	/* Its error message may quote the DSN, password and all: unused. */
	if ((opts = PQconninfoParse(dsn, NULL)) == NULL) {
		snprintf(buf, len, "unparsable store_dsn");
		return;
	}
	for (k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
		for (o = opts; o->keyword != NULL; o++) {
			if (strcmp(o->keyword, keys[k]) != 0 ||
			    o->val == NULL || o->val[0] == '\0')
				continue;
			n = snprintf(buf + used, len - used, "%s%s=%s",
			    used > 0 ? " " : "", o->keyword, o->val);
			if (n < 0 || (size_t)n >= len - used) {
				buf[used] = '\0';
				break;
			}
			used += (size_t)n;
		}
	}
	PQconninfoFree(opts);
	if (used == 0)
		snprintf(buf, len, "libpq defaults");
}

int
audit_pg_alive(PGconn *c)
{
	struct pollfd	pfd;
	int		i;

	/*
	 * A server that goes away sends its FATAL, then closes: the first
	 * read takes the message, the second sees the end.
	 */
	pfd.fd = PQsocket(c);
	pfd.events = POLLIN;
	for (i = 0; i < 2 && pfd.fd != -1; i++) {
		if (poll(&pfd, 1, 0) <= 0)
			break;
		if (PQconsumeInput(c) != 1)
			return 0;
	}
	return PQstatus(c) == CONNECTION_OK;
}

/* libpq's notices (a server going away says why) go to our log. */
static void
notice(void *arg, const char *msg)
{
	const struct audit_pg	*p = arg;
	char			 m[512];
	size_t			 n;

	snprintf(m, sizeof(m), "%s", msg);
	for (n = 0; m[n] != '\0'; n++)
		if (m[n] == '\n' || m[n] == '\t')
			m[n] = ' ';
	log_info("audit: postgresql (%s): server says: %s", p->desc, m);
}

/*
 * The DSN, with our connect timeout and name unless it sets its own, and
 * synchronous_commit = on for the session unless the DSN passes options
 * of its own: a role or database default of "off" or "local" would
 * acknowledge commits the standby has not got (a DSN may still ask for
 * remote_apply through options).
 */
#define CONN_PARAMS	5
static void
conn_params(const struct audit_pg *p, const char *kw[CONN_PARAMS],
    const char *val[CONN_PARAMS])
{
	size_t	n = 0;

	kw[n] = "dbname";
	val[n++] = p->dsn;
	kw[n] = "fallback_application_name";
	val[n++] = p->key == NULL ? "cpx-audit" : "cpx-broker";
	if (strstr(p->dsn, "connect_timeout") == NULL) {
		kw[n] = "connect_timeout";
		val[n++] = PG_CONNECT_TIMEOUT;
	}
	if (strstr(p->dsn, "options") == NULL) {
		kw[n] = "options";
		val[n++] = "-c synchronous_commit=on";
	}
	kw[n] = NULL;
	val[n] = NULL;
}

PGconn *
audit_pg_connect(struct audit_pg *p, const char *what, char *err,
    size_t errlen)
{
	const char	*kw[CONN_PARAMS], *val[CONN_PARAMS];
	char		 m[512];
	PGconn		*c;

	conn_params(p, kw, val);
	c = PQconnectdbParams(kw, val, 1);
	if (c != NULL)
		PQsetNoticeProcessor(c, notice, p);
	if (c == NULL || PQstatus(c) != CONNECTION_OK) {
		audit_pg_err(p, err, errlen, "%s: cannot connect: %s (check "
		    "store_dsn, the password file and that the database "
		    "runs)", what, audit_pg_msg(c, m, sizeof(m)));
		PQfinish(c);
		return NULL;
	}
	return c;
}

PGconn *
audit_pg_connect_start(struct audit_pg *p)
{
	const char	*kw[CONN_PARAMS], *val[CONN_PARAMS];
	PGconn		*c;

	conn_params(p, kw, val);
	if ((c = PQconnectStartParams(kw, val, 1)) != NULL)
		PQsetNoticeProcessor(c, notice, p);
	return c;
}

void
audit_pg_drop(struct audit_pg *p, const char *why)
{
	/* One line when it goes, one when retries slow down: not a flood. */
	if (p->cstate == PG_UP)
		log_warnx("audit: postgresql (%s): connection lost: %s; "
		    "publishes are refused (storage) until it is back",
		    p->desc, why);
	else if (p->backoff < PG_BACKOFF_MAX_MS && p->backoff * 2 >=
	    PG_BACKOFF_MAX_MS)
		log_warnx("audit: postgresql (%s): still unreachable: %s; "
		    "retrying every %d ms", p->desc, why, PG_BACKOFF_MAX_MS);
	PQfinish(p->conn);
	p->conn = NULL;
	if (why != p->why_down)
		snprintf(p->why_down, sizeof(p->why_down), "%s", why);
	p->cstate = PG_DOWN;
	p->flushing = 0;
	p->prepared = 0;
	p->rollback = 0;
	p->fast_failed = 0;
	p->retry_at = audit_pg_now() + p->backoff;
	p->backoff = p->backoff == 0 ? PG_BACKOFF_MIN_MS : p->backoff * 2;
	if (p->backoff > PG_BACKOFF_MAX_MS)
		p->backoff = PG_BACKOFF_MAX_MS;
}

static int
setup_writer(struct audit_pg *p, char *err, size_t errlen)
{
	char	m[512];

	if (PQsetnonblocking(p->conn, 1) != 0 ||
	    PQenterPipelineMode(p->conn) != 1)
		return audit_pg_err(p, err, errlen, "pipeline mode: %s",
		    audit_pg_msg(p->conn, m, sizeof(m)));
	p->cstate = PG_UP;
	p->backoff = 0;
	p->why_down[0] = '\0';
	return 0;
}

struct audit *
audit_open_pg(const char *dsn, EVP_PKEY *key, X509 *cert, unsigned flags,
    char *err, size_t errlen)
{
	struct audit	*a = NULL;
	struct audit_pg	*p = NULL;
	unsigned char	*d;
	int		 len;

	(void)flags;	/* AUDIT_OPEN_ACCEPT_NO_MARK: no mark here */
	audit_clearerr(err, errlen);
	if ((a = calloc(1, sizeof(*a))) == NULL ||
	    (p = calloc(1, sizeof(*p))) == NULL) {
		free(a);
		errf(err, errlen, "audit: postgresql: out of memory");
		return NULL;
	}
	/* From here audit_close frees both. */
	a->pg = p;
	a->dirfd = -1;
	a->fd = -1;
	a->mark_fd = -1;
	a->cm_efd = -1;
	p->ltimer = -1;
	p->readonly = 1;	/* until it is open: close writes nothing */
	if ((p->dsn = strdup(dsn)) == NULL ||
	    (p->md = audit_sha256_ctx(&p->sha256)) == NULL) {
		errf(err, errlen, "audit: postgresql: out of memory");
		goto fail;
	}
	audit_pg_describe(dsn, p->desc, sizeof(p->desc));
	p->key = key;
	p->cert = cert;
	if (key != NULL) {
		if (cert == NULL || (len = i2d_X509(cert, NULL)) <= 0 ||
		    (p->cert_der = malloc((size_t)len)) == NULL) {
			audit_pg_err(p, err, errlen, "broker certificate "
			    "unusable for checkpoints");
			goto fail;
		}
		d = p->cert_der;
		p->cert_len = (size_t)i2d_X509(cert, &d);
		if (audit_cert_cn(cert, p->broker, sizeof(p->broker)) == -1) {
			audit_pg_err(p, err, errlen, "broker certificate has "
			    "no usable CN (the name its records carry)");
			goto fail;
		}
	}
	if ((p->conn = audit_pg_connect(p, "open", err, errlen)) == NULL)
		goto fail;
	if (audit_pg_schema_ensure(p, p->conn, key != NULL, err,
	    errlen) == -1 ||
	    audit_pg_check_chain(p, p->conn, err, errlen) == -1)
		goto fail;
	if (key == NULL) {
		/* Cursors only: the open connection serves them. */
		audit_pg_read_adopt(p, p->conn);
		p->conn = NULL;
		p->cstate = PG_DOWN;
	} else {
		if (setup_writer(p, err, errlen) == -1 ||
		    audit_pg_listen_open(p, err, errlen) == -1)
			goto fail;
		p->readonly = 0;
	}
	log_info("audit: postgresql (%s): %" PRIu64 " record(s) checked "
	    "against the chain and their checkpoints%s", p->desc, p->head_seq,
	    p->readonly ? " (read-only)" : "");
	return a;
fail:
	audit_close(&a);
	return NULL;
}

int
audit_pg_seal(struct audit_pg *p, char *err, size_t errlen)
{
	audit_clearerr(err, errlen);
	if (p->readonly)
		return 0;
	if (p->since_checkpoint > 0 && audit_pg_checkpoint(p) == -1)
		log_warnx("audit: postgresql (%s): no checkpoint at close",
		    p->desc);
	return audit_pg_commit(p, err, errlen);
}

void
audit_pg_free(struct audit_pg **pp)
{
	struct audit_pg	*p;
	char		 err[768];

	if (pp == NULL || (p = *pp) == NULL)
		return;
	*pp = NULL;
	if (!p->readonly && (p->pend.n > 0 || p->fly.n > 0 ||
	    p->since_checkpoint > 0) && audit_pg_seal(p, err,
	    sizeof(err)) == -1)
		log_warnx("%s", err);
	PQfinish(p->conn);
	audit_pg_read_close(p);
	PQfinish(p->lconn);
	if (p->ltimer != -1)
		close(p->ltimer);
	audit_pg_batch_clear(&p->pend);
	audit_pg_batch_clear(&p->fly);
	free(p->pend.v);
	free(p->fly.v);
	free(p->done);
	free(p->cert_der);
	EVP_MD_CTX_free(p->md);
	EVP_MD_free(p->sha256);
	if (p->dsn != NULL)
		OPENSSL_cleanse(p->dsn, strlen(p->dsn));
	free(p->dsn);
	free(p);
}
