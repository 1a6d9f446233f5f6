/*
 * metrics.c: the broker's counters and its HTTP endpoint (metrics.h).
 * Owns the counters the dispatcher feeds (accepted and refused alerts by
 * origin and reason, group commit durations), the health warnings'
 * state and the libmicrohttpd daemon, which runs without a thread of its
 * own: the broker's loop polls its epoll descriptor and calls
 * metrics_run. A scrape renders the whole text at once from the broker
 * context, on the network thread, so it never sees a half-updated state.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "alert.h"
#include "broker_impl.h"
#include "errfmt.h"
#include "health.h"
#include "log.h"
#include "metrics.h"
#include "verifier.h"

/* Bounds: a scraper or two, never a crowd. */
#define HTTP_MAX_CONNECTIONS	8
#define HTTP_MAX_PER_ADDRESS	4
#define HTTP_TIMEOUT_S		5
#define HTTP_MEMORY		(16 * 1024)
#define MAX_COUNTS	512	/* (origin, reason) pairs counted */
#define MAX_COUNTRIES	300	/* sessions by country, per scrape */
#define ACCEPTED	(-1)	/* the "reason" of an acceptance */

/* Group commit durations, seconds: fsync on a good disk is ~1 ms. */
static const double buckets[] = { 0.0005, 0.001, 0.0025, 0.005, 0.01,
    0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5 };
#define NBUCKETS	(sizeof(buckets) / sizeof(buckets[0]))

struct count {
	char		origin[3];
	int		reason;		/* CPX__REASON__*, ACCEPTED */
	uint64_t	n;
};

struct metrics {
	struct MHD_Daemon	*httpd;
	int			 epoll_fd;
	struct count		*counts;
	size_t			 ncounts;
	uint64_t		 hist[NBUCKETS + 1];	/* last: +Inf */
	uint64_t		 commit_us_sum;
	uint64_t		 commits;
	uint64_t		 commit_failures;
	uint64_t		 failing;	/* failed in a row */
	char			 commit_err[256];/* "": it worked */
	struct health		 health;
};

/* A growing text buffer for one response. */
struct text {
	char	*buf;
	size_t	 len;
	size_t	 cap;
	int	 failed;
};

static void text_printf(struct text *, const char *, ...)
    __attribute__((format(printf, 2, 3)));

static void
text_printf(struct text *t, const char *fmt, ...)
{
	va_list ap;
	size_t need;
	char *nb;
	int n;

	if (t->failed)
		return;
	va_start(ap, fmt);
	n = vsnprintf(t->buf ? t->buf + t->len : NULL,
	    t->buf ? t->cap - t->len : 0, fmt, ap);
	va_end(ap);
	if (n < 0) {
		t->failed = 1;
		return;
	}
	if (t->buf != NULL && (size_t)n < t->cap - t->len) {
		t->len += (size_t)n;
		return;
	}
	need = t->len + (size_t)n + 1;
	if (need < 2 * t->cap)
		need = 2 * t->cap;
	if (need < 4096)
		need = 4096;
	if ((nb = realloc(t->buf, need)) == NULL) {
		t->failed = 1;
		return;
	}
	t->buf = nb;
	t->cap = need;
	va_start(ap, fmt);
	n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
	va_end(ap);
	if (n >= 0)
		t->len += (size_t)n;
}

struct metrics *
metrics_new(void)
{
	struct metrics *m;

	if ((m = calloc(1, sizeof(*m))) == NULL)
		return NULL;
	if ((m->counts = calloc(MAX_COUNTS, sizeof(*m->counts))) == NULL) {
		free(m);
		return NULL;
	}
	m->epoll_fd = -1;
	return m;
}

void
metrics_free(struct metrics **m)
{
	if (m == NULL || *m == NULL)
		return;
	if ((*m)->httpd != NULL)
		MHD_stop_daemon((*m)->httpd);
	free((*m)->counts);
	free(*m);
	*m = NULL;
}

struct health *
metrics_health(struct metrics *m)
{
	return &m->health;
}

int64_t
metrics_clock_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/*
 * The counter of (origin, reason). Countries come from certificates the
 * CA signed, so there are few; past MAX_COUNTS pairs the rest are
 * counted under origin "" rather than growing without bound.
 */
static void
count(struct metrics *m, const char *origin, int reason)
{
	struct count *c;
	size_t i;

	if (m == NULL)
		return;
	if (origin == NULL || strlen(origin) > 2)
		origin = "";
	for (;;) {
		for (i = 0; i < m->ncounts; i++) {
			c = &m->counts[i];
			if (c->reason == reason &&
			    strcmp(c->origin, origin) == 0) {
				c->n++;
				return;
			}
		}
		if (m->ncounts < MAX_COUNTS)
			break;
		if (origin[0] == '\0')
			return;	/* cannot happen: "" pairs are few */
		origin = "";
	}
	c = &m->counts[m->ncounts++];
	memcpy(c->origin, origin, strlen(origin) + 1);
	c->reason = reason;
	c->n = 1;
}

void
metrics_accepted(struct metrics *m, const char *origin)
{
	count(m, origin, ACCEPTED);
}

void
metrics_refused(struct metrics *m, const char *origin, int reason)
{
	count(m, origin, reason);
}

uint64_t
metrics_commit(struct metrics *m, int64_t usec, const char *err)
{
	uint64_t failed;
	double s;
	size_t i;

	if (m == NULL)
		return 0;
	if (usec < 0)
		usec = 0;
	s = (double)usec / 1e6;
	for (i = 0; i < NBUCKETS && s > buckets[i]; i++)
		;
	m->hist[i]++;
	m->commit_us_sum += (uint64_t)usec;
	m->commits++;
	if (err != NULL) {
		m->commit_failures++;
		m->failing++;
		snprintf(m->commit_err, sizeof(m->commit_err), "%s", err);
		return 0;
	}
	m->commit_err[0] = '\0';
	failed = m->failing;
	m->failing = 0;
	return failed;
}

const char *
metrics_commit_error(const struct metrics *m)
{
	if (m == NULL || m->commit_err[0] == '\0')
		return NULL;
	return m->commit_err;
}

/* Bytes of the audit log: the regular files of its directory. */
static uint64_t
audit_bytes(const char *dir)
{
	struct dirent *de;
	struct stat st;
	uint64_t sum = 0;
	DIR *d;

	/* A PostgreSQL store (no audit_dir): the database's own metrics. */
	if (dir == NULL || (d = opendir(dir)) == NULL)
		return 0;
	while ((de = readdir(d)) != NULL)
		if (fstatat(dirfd(d), de->d_name, &st,
		    AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode))
			sum += (uint64_t)st.st_size;
	closedir(d);
	return sum;
}

static void
head(struct text *t, const char *name, const char *type, const char *help)
{
	text_printf(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void
render_sessions(struct text *t, struct broker *b)
{
	struct { char cc[3]; uint64_t n; } by[MAX_COUNTRIES];
	const struct peer *pr;
	struct session *s;
	uint64_t unauth = 0, queued = 0;
	size_t n = 0, i;

	for (s = edge_sessions(b->edge); s != NULL; s = s->next) {
		queued += session_queued(s);
		if ((pr = peer_of(s)) == NULL) {
			unauth++;
			continue;
		}
		for (i = 0; i < n && strcmp(by[i].cc, pr->id.country); i++)
			;
		if (i == n) {
			if (n == MAX_COUNTRIES)
				continue;
			memcpy(by[n].cc, pr->id.country, 3);
			by[n++].n = 0;
		}
		by[i].n++;
	}
	head(t, "cpx_sessions", "gauge", "Authenticated sessions open, by "
	    "the country of the node's certificate.");
	for (i = 0; i < n; i++)
		text_printf(t, "cpx_sessions{country=\"%s\"} %" PRIu64 "\n",
		    by[i].cc, by[i].n);
	head(t, "cpx_sessions_unauthenticated", "gauge", "Connections not "
	    "yet welcomed (TLS handshake under way, or refused).");
	text_printf(t, "cpx_sessions_unauthenticated %" PRIu64 "\n", unauth);
	head(t, "cpx_queue_bytes", "gauge", "Bytes queued towards all "
	    "sessions (config key queue_budget bounds it).");
	text_printf(t, "cpx_queue_bytes %" PRIu64 "\n", queued);
}

static void
render_alerts(struct text *t, struct broker *b)
{
	const struct metrics *m = b->metrics;
	size_t i;

	head(t, "cpx_alerts_accepted_total", "counter", "Alerts accepted "
	    "(durable in the audit log), by origin country.");
	for (i = 0; i < m->ncounts; i++)
		if (m->counts[i].reason == ACCEPTED)
			text_printf(t, "cpx_alerts_accepted_total{origin="
			    "\"%s\"} %" PRIu64 "\n", m->counts[i].origin,
			    m->counts[i].n);
	head(t, "cpx_alerts_refused_total", "counter", "Publishes refused, "
	    "by the publishing node's country and the reason sent to it.");
	for (i = 0; i < m->ncounts; i++)
		if (m->counts[i].reason != ACCEPTED)
			text_printf(t, "cpx_alerts_refused_total{origin=\"%s\","
			    "reason=\"%s\"} %" PRIu64 "\n", m->counts[i].origin,
			    alert_reason_name(m->counts[i].reason),
			    m->counts[i].n);
	head(t, "cpx_alerts_duplicate_total", "counter", "Repeats of "
	    "accepted alerts, acknowledged again and not delivered.");
	text_printf(t, "cpx_alerts_duplicate_total %" PRIu64 "\n",
	    b->stats.duplicates);
	head(t, "cpx_deliveries_total", "counter", "Alerts queued to "
	    "subscribed sessions (live delivery).");
	text_printf(t, "cpx_deliveries_total %" PRIu64 "\n",
	    b->stats.deliveries);
	head(t, "cpx_sessions_opened_total", "counter", "Sessions welcomed.");
	text_printf(t, "cpx_sessions_opened_total %" PRIu64 "\n",
	    b->stats.sessions);
	head(t, "cpx_verify_backlog", "gauge", "Publishes at the verifier "
	    "threads (config key verify_backlog bounds it).");
	text_printf(t, "cpx_verify_backlog %zu\n", b->verifier != NULL ?
	    verifier_inflight(b->verifier) : (size_t)0);
}

static void
render_audit(struct text *t, struct broker *b)
{
	const struct metrics *m = b->metrics;
	uint64_t cum = 0;
	size_t i;

	head(t, "cpx_commit_seconds", "histogram", "Group commits of the "
	    "audit log (write and fsync), failed ones included.");
	for (i = 0; i < NBUCKETS; i++) {
		cum += m->hist[i];
		text_printf(t, "cpx_commit_seconds_bucket{le=\"%g\"} %" PRIu64
		    "\n", buckets[i], cum);
	}
	cum += m->hist[NBUCKETS];
	text_printf(t, "cpx_commit_seconds_bucket{le=\"+Inf\"} %" PRIu64 "\n"
	    "cpx_commit_seconds_sum %.6f\ncpx_commit_seconds_count %" PRIu64
	    "\n", cum, (double)m->commit_us_sum / 1e6, m->commits);
	head(t, "cpx_commit_inflight_seconds", "gauge", "How long the "
	    "commit in flight has waited so far (0: none); a commit that "
	    "never ends is counted in cpx_commit_seconds only when it does.");
	text_printf(t, "cpx_commit_inflight_seconds %.6f\n",
	    (double)batch_inflight_us(b) / 1e6);
	head(t, "cpx_commit_failures_total", "counter", "Group commits that "
	    "failed (their publishes were refused with storage).");
	text_printf(t, "cpx_commit_failures_total %" PRIu64 "\n",
	    m->commit_failures);
	head(t, "cpx_audit_last_seq", "gauge", "Sequence of the last "
	    "durable audit record.");
	text_printf(t, "cpx_audit_last_seq %" PRIu64 "\n",
	    audit_last_seq(b->audit));
	head(t, "cpx_delivered_seq", "gauge", "Sequence up to which the "
	    "log was delivered to this broker's live subscribers (records "
	    "of every broker on a shared log).");
	text_printf(t, "cpx_delivered_seq %" PRIu64 "\n", b->delivered);
	head(t, "cpx_audit_bytes", "gauge", "Size of the audit log's files.");
	text_printf(t, "cpx_audit_bytes %" PRIu64 "\n",
	    audit_bytes(b->cfg->audit_dir));
}

static void
render_expiry(struct text *t, struct broker *b)
{
	char why[256];
	int64_t secs;

	if (health_crl_seconds(b, &secs) == 0) {
		head(t, "cpx_crl_expiry_seconds", "gauge", "Seconds until "
		    "the nextUpdate of the CRL in force (negative: stale).");
		text_printf(t, "cpx_crl_expiry_seconds %lld\n",
		    (long long)secs);
	}
	if (health_cert_seconds(b, &secs) == 0) {
		head(t, "cpx_cert_expiry_seconds", "gauge", "Seconds until "
		    "the broker's certificate expires (notAfter).");
		text_printf(t, "cpx_cert_expiry_seconds %lld\n",
		    (long long)secs);
	}
	head(t, "cpx_healthy", "gauge", "1 if /healthz answers 200.");
	text_printf(t, "cpx_healthy %d\n",
	    health_status(b, why, sizeof(why)) == 0);
}

static enum MHD_Result
respond(struct MHD_Connection *c, unsigned int status, struct text *t,
    const char *type)
{
	struct MHD_Response *r;
	enum MHD_Result rc;

	if (t->failed) {
		free(t->buf);
		t->buf = NULL;
		t->len = 0;
		status = MHD_HTTP_INTERNAL_SERVER_ERROR;
	}
	if (t->buf == NULL)
		r = MHD_create_response_from_buffer(0, (void *)"",
		    MHD_RESPMEM_PERSISTENT);
	else
		r = MHD_create_response_from_buffer(t->len, t->buf,
		    MHD_RESPMEM_MUST_FREE);
	if (r == NULL) {
		free(t->buf);
		return MHD_NO;
	}
	(void)MHD_add_response_header(r, "Content-Type", type);
	(void)MHD_add_response_header(r, "Cache-Control", "no-store");
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		(void)MHD_add_response_header(r, "Allow", "GET, HEAD");
	rc = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return rc;
}

/* MHD_AccessHandlerCallback: every request, answered at its first call. */
static enum MHD_Result
answer(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **req_cls)
{
	struct broker *b = cls;
	struct text t = { NULL, 0, 0, 0 };
	const char *cl, *te;
	char why[512];

	(void)version;
	(void)upload_data;
	(void)req_cls;
	(void)upload_data_size;
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
		text_printf(&t, "only GET is served here\n");
		return respond(c, MHD_HTTP_METHOD_NOT_ALLOWED, &t,
		    "text/plain");
	}
	/* A GET has no body: one announced is refused, never read. */
	cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
	te = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
	    "Transfer-Encoding");
	if (te != NULL || (cl != NULL && strcmp(cl, "0") != 0)) {
		text_printf(&t, "a request body is not accepted here\n");
		return respond(c, MHD_HTTP_CONTENT_TOO_LARGE, &t, "text/plain");
	}
	if (strcmp(url, "/metrics") == 0) {
		render_sessions(&t, b);
		render_alerts(&t, b);
		render_audit(&t, b);
		render_expiry(&t, b);
		return respond(c, MHD_HTTP_OK, &t,
		    "text/plain; version=0.0.4; charset=utf-8");
	}
	if (strcmp(url, "/healthz") == 0) {
		if (health_status(b, why, sizeof(why)) == 0) {
			text_printf(&t, "ok\n");
			return respond(c, MHD_HTTP_OK, &t, "text/plain");
		}
		text_printf(&t, "unhealthy: %s\n", why);
		return respond(c, MHD_HTTP_SERVICE_UNAVAILABLE, &t,
		    "text/plain");
	}
	text_printf(&t, "not found: try /metrics or /healthz\n");
	return respond(c, MHD_HTTP_NOT_FOUND, &t, "text/plain");
}

static void mhd_log(void *, const char *, va_list)
    __attribute__((format(printf, 2, 0)));

/* libmicrohttpd's own complaints (a client gone, a bad request). */
static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	log_vemit(LOG_LEVEL_DEBUG, NULL, NULL, fmt, ap);
}

/* "HOST:PORT" or "[V6]:PORT" into host[] and port[]; -1 if malformed. */
static int
split_listen(const char *listen, char *host, size_t hlen, char *port,
    size_t plen)
{
	const char *colon, *h = listen, *p;
	size_t n;

	if (listen[0] == '[') {
		if ((p = strchr(listen, ']')) == NULL || p[1] != ':')
			return -1;
		h = listen + 1;
		n = (size_t)(p - h);
		colon = p + 1;
	} else {
		if ((colon = strrchr(listen, ':')) == NULL ||
		    strchr(listen, ':') != colon)
			return -1;
		n = (size_t)(colon - listen);
	}
	if (n == 0 || n >= hlen || strlen(colon + 1) == 0 ||
	    strlen(colon + 1) >= plen ||
	    strspn(colon + 1, "0123456789") != strlen(colon + 1))
		return -1;
	memcpy(host, h, n);
	host[n] = '\0';
	memcpy(port, colon + 1, strlen(colon + 1) + 1);
	return atoi(port) <= 65535 ? 0 : -1;
}

/* The listen address as a numeric sockaddr; -1 if it is not one. */
static int
resolve(const char *listen, struct addrinfo **ai)
{
	struct addrinfo hints;
	char host[64], port[8];

	*ai = NULL;
	if (split_listen(listen, host, sizeof(host), port, sizeof(port)) == -1)
		return -1;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
	return getaddrinfo(host, port, &hints, ai) == 0 ? 0 : -1;
}

int
metrics_listen(struct metrics *m, struct broker *b, const char *listen,
    char *err, size_t errlen)
{
	const union MHD_DaemonInfo *di;
	struct addrinfo *ai = NULL;
	unsigned int flags;
	int port = 0;

	if (listen == NULL || strcmp(listen, "off") == 0)
		return 0;
	if (resolve(listen, &ai) == -1)
		return errf(err, errlen, "config key metrics_listen: \"%s\" is "
		    "not off, IPv4:PORT or [IPv6]:PORT", listen);
	flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
	if (ai->ai_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	errno = 0;
	m->httpd = MHD_start_daemon(flags, 0, NULL, NULL, answer, b,
	    MHD_OPTION_SOCK_ADDR, ai->ai_addr,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned int)HTTP_MAX_CONNECTIONS,
	    MHD_OPTION_PER_IP_CONNECTION_LIMIT,
	    (unsigned int)HTTP_MAX_PER_ADDRESS,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)HTTP_TIMEOUT_S,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTP_MEMORY,
	    MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned int)16,
	    MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
	    MHD_OPTION_END);
	freeaddrinfo(ai);
	if (m->httpd == NULL)
		return errf(err, errlen, "config key metrics_listen: cannot "
		    "listen on %s: %s (another process holds the port? choose "
		    "another one, or off to disable /metrics and /healthz)",
		    listen, errno ? strerror(errno) : "libmicrohttpd refused");
	if ((di = MHD_get_daemon_info(m->httpd,
	    MHD_DAEMON_INFO_EPOLL_FD)) == NULL) {
		MHD_stop_daemon(m->httpd);
		m->httpd = NULL;
		return errf(err, errlen, "metrics: libmicrohttpd gave no "
		    "epoll descriptor");
	}
	m->epoll_fd = di->epoll_fd;
	if ((di = MHD_get_daemon_info(m->httpd,
	    MHD_DAEMON_INFO_BIND_PORT)) != NULL)
		port = di->port;
	log_info("metrics: serving /metrics and /healthz on %s (port %d)",
	    listen, port);
	return 0;
}

int
metrics_fd(const struct metrics *m)
{
	return m != NULL && m->httpd != NULL ? m->epoll_fd : -1;
}

long
metrics_timeout(const struct metrics *m, long timeout_ms)
{
	MHD_UNSIGNED_LONG_LONG t;

	if (m == NULL || m->httpd == NULL ||
	    MHD_get_timeout(m->httpd, &t) != MHD_YES)
		return timeout_ms;
	return (long long)t < timeout_ms ? (long)t : timeout_ms;
}

void
metrics_run(struct metrics *m)
{
	if (m != NULL && m->httpd != NULL)
		(void)MHD_run(m->httpd);
}
