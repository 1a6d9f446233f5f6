/*
 * console_http.c: the HTTP side of cpx-console (libmicrohttpd, one
 * thread per connection). Owns the routes: the single-page application's
 * files and the vendored libraries (a fixed table, never a path from the
 * request), the JSON API (sign-in and out, status, publish, history,
 * export) and the live feed as Server-Sent Events. Every answer carries
 * a strict Content-Security-Policy and the other security headers; every
 * state-changing request needs the session cookie and the CSRF token;
 * every body is capped before it is read. Nothing private leaves: the
 * node's key stays with the broker thread, the session token travels
 * only in an HttpOnly cookie.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <microhttpd.h>
#include <openssl/crypto.h>

#include "alert.h"
#include "alert_json.h"
#include "console.h"
#include "errfmt.h"
#include "identity.h"
#include "log.h"

#define MAX_BODY		(64u * 1024u)
#define MAX_LOGIN_BODY		(4u * 1024u)
#define MAX_CONNECTIONS		64
#define MAX_HASHING		4	/* sign-ins checked at once */
#define PUBLISH_WAIT_MS		15000
#define REPLAY_WAIT_MS		60000
#define SSE_HEARTBEAT_MS	15000
#define SSE_BLOCK		(64u * 1024u)
#define COOKIE_NAME		"cpx_session"

#define CSP "default-src 'none'; script-src 'self'; style-src 'self'; " \
	"img-src 'self' data:; connect-src 'self'; font-src 'self'; " \
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

/* What a request carries between libmicrohttpd's calls. */
struct req {
	char	*body;
	size_t	 len;
	int	 too_big;
};

/* Who is asking: the session's officer, if any. */
struct who {
	char	 name[USERS_MAX_NAME + 1];
	char	 csrf[AUTH_TOKEN_LEN + 1];
	char	 addr[64];
	int	 signed_in;
};

/* One live-feed connection. */
struct sse {
	struct console	*ctx;
	uint64_t	 next_id;
	uint64_t	 state_sent;
	int64_t		 last_write;
	char		 token[AUTH_TOKEN_LEN + 1];
	char		*pend;
	size_t		 pend_len;
	size_t		 pend_off;
	int		 finish;
};

/* The only files served, and from where. */
struct static_file {
	const char	*url;
	int		 vendor;	/* relative to vendor_dir */
	const char	*path;
	const char	*type;
};

static const struct static_file static_files[] = {
	{ "/", 0, "index.html", "text/html; charset=utf-8" },
	{ "/index.html", 0, "index.html", "text/html; charset=utf-8" },
	{ "/app.js", 0, "app.js", "text/javascript; charset=utf-8" },
	{ "/feed.js", 0, "feed.js", "text/javascript; charset=utf-8" },
	{ "/map.js", 0, "map.js", "text/javascript; charset=utf-8" },
	{ "/compose.js", 0, "compose.js", "text/javascript; charset=utf-8" },
	{ "/history.js", 0, "history.js", "text/javascript; charset=utf-8" },
	{ "/util.js", 0, "util.js", "text/javascript; charset=utf-8" },
	{ "/style.css", 0, "style.css", "text/css; charset=utf-8" },
	{ "/vendor/leaflet.js", 1, "leaflet/dist/leaflet-src.esm.js",
	    "text/javascript; charset=utf-8" },
	{ "/vendor/leaflet.css", 1, "leaflet/dist/leaflet.css",
	    "text/css; charset=utf-8" },
	{ "/vendor/topojson-client.js", 1,
	    "topojson-client/dist/topojson-client.min.js",
	    "text/javascript; charset=utf-8" },
	{ "/vendor/countries-50m.json", 1, "world-atlas/countries-50m.json",
	    "application/json" },
};

static void
security_headers(struct MHD_Response *r, int nocache)
{
	MHD_add_response_header(r, "Content-Security-Policy", CSP);
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
	MHD_add_response_header(r, "X-Frame-Options", "DENY");
	MHD_add_response_header(r, "Cross-Origin-Opener-Policy",
	    "same-origin");
	MHD_add_response_header(r, "Cross-Origin-Resource-Policy",
	    "same-origin");
	MHD_add_response_header(r, "Cache-Control", nocache ? "no-store" :
	    "no-cache");
}

/* Queue body (copied) with status; extra header pairs may follow. */
static enum MHD_Result
send_body(struct MHD_Connection *conn, unsigned int status, const char *type,
    const char *body, size_t len, const char *h1, const char *v1,
    const char *h2, const char *v2)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(len, (void *)(uintptr_t)body,
	    MHD_RESPMEM_MUST_COPY);
	if (r == NULL)
		return MHD_NO;
	security_headers(r, 1);
	MHD_add_response_header(r, "Content-Type", type);
	if (h1 != NULL)
		MHD_add_response_header(r, h1, v1);
	if (h2 != NULL)
		MHD_add_response_header(r, h2, v2);
	ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

/* Queue a JSON object (taken: decref'd here). */
static enum MHD_Result
send_json(struct MHD_Connection *conn, unsigned int status, json_t *o,
    const char *h1, const char *v1)
{
	enum MHD_Result ret;
	char *s;

	if (o == NULL || (s = json_dumps(o, JSON_COMPACT)) == NULL) {
		json_decref(o);
		return send_body(conn, 500, "application/json",
		    "{\"error\":\"out of memory\"}", 25, NULL, NULL, NULL,
		    NULL);
	}
	json_decref(o);
	ret = send_body(conn, status, "application/json", s, strlen(s), h1, v1,
	    NULL, NULL);
	free(s);
	return ret;
}

/* An error for the browser: {"error": text}. */
static enum MHD_Result
send_error(struct MHD_Connection *conn, unsigned int status, const char *text)
{
	return send_json(conn, status, json_pack("{s:s}", "error", text),
	    NULL, NULL);
}

static enum MHD_Result
send_static(struct console *ctx, struct MHD_Connection *conn,
    const struct static_file *sf)
{
	struct MHD_Response *r;
	enum MHD_Result ret;
	struct stat st;
	char path[4096];
	int fd;

	if (snprintf(path, sizeof(path), "%s/%s", sf->vendor ?
	    ctx->vendor_dir : ctx->web_dir, sf->path) >= (int)sizeof(path))
		return send_error(conn, 500, "path too long");
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1 ||
	    fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		log_warnx("cannot serve %s: %s%s", path, strerror(errno),
		    sf->vendor ? " (run scripts/console-deps.sh, or give "
		    "--vendor DIR)" : "");
		if (fd != -1)
			close(fd);
		return send_error(conn, 404, "file missing on the server");
	}
	if ((r = MHD_create_response_from_fd((uint64_t)st.st_size,
	    fd)) == NULL) {
		close(fd);
		return MHD_NO;
	}
	security_headers(r, 0);
	MHD_add_response_header(r, "Content-Type", sf->type);
	ret = MHD_queue_response(conn, 200, r);
	MHD_destroy_response(r);
	return ret;
}

static void
peer_addr(struct MHD_Connection *conn, char *out, size_t len)
{
	const union MHD_ConnectionInfo *ci;
	const struct sockaddr *sa;

	snprintf(out, len, "?");
	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci == NULL || (sa = ci->client_addr) == NULL)
		return;
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)
		    (const void *)sa)->sin_addr, out, (socklen_t)len);
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)
		    (const void *)sa)->sin6_addr, out, (socklen_t)len);
}

static void
find_session(struct console *ctx, struct MHD_Connection *conn,
    struct who *w)
{
	const char *tok;

	memset(w, 0, sizeof(*w));
	peer_addr(conn, w->addr, sizeof(w->addr));
	tok = MHD_lookup_connection_value(conn, MHD_COOKIE_KIND, COOKIE_NAME);
	if (tok != NULL && auth_session_find(&ctx->auth, tok,
	    console_mono_ms(), w->name, w->csrf) == 0)
		w->signed_in = 1;
}

/*
 * A state-changing request: a session, its CSRF token in X-CSRF-Token,
 * and a JSON body (a cross-site form cannot send that type without a
 * preflight). Returns 0, or -1 after queueing the refusal.
 */
static int
need_csrf(struct MHD_Connection *conn, const struct who *w,
    enum MHD_Result *ret)
{
	const char *given, *type;

	if (!w->signed_in) {
		*ret = send_error(conn, 401, "not signed in, or the session "
		    "has ended: sign in again");
		return -1;
	}
	given = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	    "X-CSRF-Token");
	if (!auth_csrf_ok(w->csrf, given)) {
		log_warnx("officer %s from %s: request without a valid CSRF "
		    "token refused", w->name, w->addr);
		*ret = send_error(conn, 403, "missing or wrong CSRF token: "
		    "reload the page");
		return -1;
	}
	type = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	    "Content-Type");
	if (type == NULL || strncmp(type, "application/json", 16) != 0) {
		*ret = send_error(conn, 415, "expected Content-Type: "
		    "application/json");
		return -1;
	}
	return 0;
}

static int
json_body(const struct req *rq, json_t **out)
{
	json_error_t e;

	*out = NULL;
	if (rq->len == 0)
		return -1;
	*out = json_loadb(rq->body, rq->len, JSON_REJECT_DUPLICATES, &e);
	return *out == NULL ? -1 : 0;
}

/* --- sign-in and out ------------------------------------------------- */

static enum MHD_Result
api_login(struct console *ctx, struct MHD_Connection *conn,
    const struct req *rq, const struct who *w)
{
	char token[AUTH_TOKEN_LEN + 1], csrf[AUTH_TOKEN_LEN + 1];
	char cookie[200], msg[200], err[300];
	const char *name = NULL, *pw = NULL, *type;
	json_t *o = NULL;
	int64_t left;
	int r, busy;
	enum MHD_Result ret;

	type = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	    "Content-Type");
	if (type == NULL || strncmp(type, "application/json", 16) != 0)
		return send_error(conn, 415, "expected Content-Type: "
		    "application/json");
	if (rq->len > MAX_LOGIN_BODY || json_body(rq, &o) == -1 ||
	    json_unpack(o, "{s:s, s:s}", "name", &name, "password",
	    &pw) == -1) {
		json_decref(o);
		return send_error(conn, 400, "expected {\"name\": ..., "
		    "\"password\": ...}");
	}
	if (!users_name_valid(name) || strlen(pw) > USERS_MAX_PASSWORD) {
		log_warnx("sign-in from %s refused: not an account name",
		    w->addr);
		ret = send_error(conn, 401, "wrong name or password");
		goto done;
	}
	if (auth_locked(&ctx->auth, name, console_mono_ms(), &left) == -1) {
		log_warnx("sign-in as %s from %s refused: locked out",
		    name, w->addr);
		snprintf(msg, sizeof(msg), "too many failed sign-ins for %s: "
		    "locked for %lld more minute(s); an administrator can "
		    "reset the password with cpx-console user passwd", name,
		    (long long)(left + 59999) / 60000);
		ret = send_error(conn, 429, msg);
		goto done;
	}
	/* Each check costs 32 MiB: a flood must not exhaust memory. */
	pthread_mutex_lock(&ctx->mu);
	busy = ctx->hashing >= MAX_HASHING;
	if (!busy)
		ctx->hashing++;
	pthread_mutex_unlock(&ctx->mu);
	if (busy) {
		ret = send_error(conn, 503, "too many sign-ins at once; try "
		    "again in a second");
		goto done;
	}
	r = users_verify(ctx->users_path, name, pw, err, sizeof(err));
	pthread_mutex_lock(&ctx->mu);
	ctx->hashing--;
	pthread_mutex_unlock(&ctx->mu);
	if (r == -1) {
		log_warnx("sign-in as %s: %s", name, err);
		ret = send_error(conn, 500, "the accounts file cannot be "
		    "used; the node's log says why");
		goto done;
	}
	if (r == 0) {
		if (auth_failed(&ctx->auth, name, console_mono_ms()))
			log_warnx("sign-in as %s from %s: wrong password; "
			    "locked out after %u failures", name, w->addr,
			    ctx->auth.max_fails);
		else
			log_warnx("sign-in as %s from %s: wrong name or "
			    "password", name, w->addr);
		ret = send_error(conn, 401, "wrong name or password");
		goto done;
	}
	auth_succeeded(&ctx->auth, name);
	if (auth_session_new(&ctx->auth, name, console_mono_ms(), token,
	    csrf) == -1) {
		ret = send_error(conn, 500, "no random bytes for a session");
		goto done;
	}
	log_info("officer %s: signed in from %s", name, w->addr);
	snprintf(cookie, sizeof(cookie), COOKIE_NAME "=%s; Path=/; HttpOnly; "
	    "SameSite=Strict%s", token, ctx->secure_cookie ? "; Secure" : "");
	ret = send_json(conn, 200, json_pack("{s:s, s:s, s:I}", "name", name,
	    "csrf", csrf, "idle_minutes", (json_int_t)(ctx->auth.idle_ms /
	    60000)), "Set-Cookie", cookie);
	OPENSSL_cleanse(token, sizeof(token));
	OPENSSL_cleanse(csrf, sizeof(csrf));
done:
	/* The password's copy inside the parsed body, before it is freed. */
	if (pw != NULL)
		OPENSSL_cleanse((void *)(uintptr_t)pw, strlen(pw));
	json_decref(o);
	return ret;
}

static enum MHD_Result
api_logout(struct console *ctx, struct MHD_Connection *conn,
    const struct who *w)
{
	enum MHD_Result ret;
	char cookie[160];

	if (need_csrf(conn, w, &ret) == -1)
		return ret;
	auth_session_end(&ctx->auth, MHD_lookup_connection_value(conn,
	    MHD_COOKIE_KIND, COOKIE_NAME));
	log_info("officer %s: signed out", w->name);
	snprintf(cookie, sizeof(cookie), COOKIE_NAME "=; Path=/; Max-Age=0; "
	    "HttpOnly; SameSite=Strict%s", ctx->secure_cookie ? "; Secure" :
	    "");
	return send_json(conn, 200, json_pack("{s:b}", "ok", 1), "Set-Cookie",
	    cookie);
}

/* --- status ----------------------------------------------------------- */

static enum MHD_Result
api_status(struct console *ctx, struct MHD_Connection *conn,
    const struct who *w)
{
	char since[JSON_OUT_TIME_LEN];
	json_t *o, *regions;
	size_t i;

	if ((regions = json_array()) == NULL)
		return MHD_NO;
	for (i = 0; i < ctx->nregions; i++)
		json_array_append_new(regions, json_string(ctx->regions[i]));
	pthread_mutex_lock(&ctx->mu);
	if (json_out_time_format(ctx->state_since, since, sizeof(since)) == -1)
		since[0] = '\0';
	o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:b, s:b, s:s, s:s,"
	    " s:{s:b, s:b, s:b}, s:I, s:I, s:I, s:i, s:s, s:s, s:o, s:s, s:s}",
	    "officer", w->name,
	    "node", ctx->node,
	    "country", ctx->country,
	    "broker", ctx->broker_endpoint,
	    "broker_name", ctx->broker_name,
	    "connected", ctx->connected,
	    "ended", ctx->ended,
	    "state", ctx->state_text,
	    "state_since", since,
	    "rights", "publish", ctx->may_publish, "subscribe",
	    ctx->may_subscribe, "audit", ctx->may_audit,
	    "last_seq", (json_int_t)ctx->last_seq,
	    "reconnects", (json_int_t)ctx->reconnects,
	    "unverified", (json_int_t)ctx->unverified,
	    "feed_clients", ctx->sse_clients,
	    "cert_expiry", ctx->cert_expiry,
	    "crl_next_update", ctx->crl_expiry,
	    "regions", regions,
	    "console_version", CONSOLE_VERSION,
	    "subscription", ctx->subscription);
	pthread_mutex_unlock(&ctx->mu);
	return send_json(conn, 200, o, NULL, NULL);
}

/* --- publish ------------------------------------------------------- */

static enum MHD_Result
api_publish(struct console *ctx, struct MHD_Connection *conn,
    const struct req *rq, const struct who *w)
{
	struct job *job = NULL;
	char err[300], msg[600];
	enum MHD_Result ret;
	json_t *o;

	if (need_csrf(conn, w, &ret) == -1)
		return ret;
	if ((job = calloc(1, sizeof(*job))) == NULL)
		return MHD_NO;
	job->kind = JOB_PUBLISH;
	snprintf(job->officer, sizeof(job->officer), "%s", w->name);
	if ((job->alert = alert_json_parse(rq->body ? rq->body : "", rq->len,
	    err, sizeof(err))) == NULL) {
		snprintf(msg, sizeof(msg), "the form is not a valid alert: %s",
		    err);
		ret = send_error(conn, 400, msg);
		goto done;
	}
	/* The officer's name travels in the signed alert. */
	if ((job->alert->author = strdup(w->name)) == NULL) {
		ret = MHD_NO;
		goto done;
	}
	log_info("officer %s: publishing a %s %s alert", w->name,
	    alert_severity_name(job->alert->severity),
	    alert_category_name(job->alert->category));
	if (console_job_submit(ctx, job) == -1) {
		ret = send_error(conn, 503, "too many requests waiting for the "
		    "broker; try again in a moment");
		goto done;
	}
	if (console_job_wait(ctx, job, PUBLISH_WAIT_MS) == -1) {
		job = NULL;	/* the broker thread frees it */
		log_warnx("officer %s: no answer from the broker within %d s",
		    w->name, PUBLISH_WAIT_MS / 1000);
		ret = send_error(conn, 504, "no answer from the broker yet: "
		    "the alert is kept and sent again when the session is "
		    "back; check the feed or the history before publishing "
		    "it again");
		goto done;
	}
	if (job->ok)
		o = json_pack("{s:b, s:I, s:s}", "ok", 1, "seq",
		    (json_int_t)job->seq, "id", job->alert_id);
	else if (job->reason != 0)
		o = json_pack("{s:b, s:s, s:s, s:s}", "ok", 0, "reason",
		    alert_reason_name(job->reason), "message",
		    console_reason_words(job->reason), "detail", job->text);
	else
		o = json_pack("{s:b, s:s, s:s, s:s}", "ok", 0, "reason",
		    "local", "message", "The alert was not sent.", "detail",
		    job->text);
	ret = send_json(conn, job->ok ? 200 : 422, o, NULL, NULL);
done:
	console_job_free(&job);
	return ret;
}

/* --- history and export ----------------------------------------------- */

static const char *
arg(struct MHD_Connection *conn, const char *key)
{
	const char *v = MHD_lookup_connection_value(conn,
	    MHD_GET_ARGUMENT_KIND, key);

	return v != NULL && v[0] != '\0' ? v : NULL;
}

/* Fill job's replay request from the query. -1 with msg[] if bad. */
static int
replay_from_query(struct MHD_Connection *conn, struct job *job, char *msg,
    size_t len)
{
	Cpx__ReplayRequest init = CPX__REPLAY_REQUEST__INIT;
	Cpx__Filter finit = CPX__FILTER__INIT;
	const char *v;
	char *end;
	unsigned long long u;
	int k, filtered = 0;

	job->rq = init;
	job->filter = finit;
	if ((v = arg(conn, "from")) != NULL &&
	    alert_json_time_parse(v, &job->rq.from_time) == -1)
		return errf(msg, len, "from: expected a UTC time such as "
		    "2026-11-25T17:30:00Z");
	if ((v = arg(conn, "to")) != NULL &&
	    alert_json_time_parse(v, &job->rq.to_time) == -1)
		return errf(msg, len, "to: expected a UTC time such as "
		    "2026-11-25T17:30:00Z");
	if (job->rq.to_time != 0 && job->rq.to_time < job->rq.from_time)
		return errf(msg, len, "the time range ends before it starts");
	if ((v = arg(conn, "after")) != NULL) {
		errno = 0;
		u = strtoull(v, &end, 10);
		if (errno != 0 || *end != '\0' || v[0] == '-')
			return errf(msg, len, "after: expected a sequence "
			    "number");
		job->rq.from_seq = (uint64_t)u + 1;
	}
	if ((v = arg(conn, "to_seq")) != NULL) {
		errno = 0;
		u = strtoull(v, &end, 10);
		if (errno != 0 || *end != '\0' || v[0] == '-' || u == 0)
			return errf(msg, len, "to_seq: expected a sequence "
			    "number");
		job->rq.to_seq = (uint64_t)u;
	}
	if (job->rq.to_seq != 0 && job->rq.to_seq < job->rq.from_seq)
		return errf(msg, len, "the sequence range ends before it "
		    "starts");
	if ((v = arg(conn, "origin")) != NULL) {
		if (!identity_country_valid(v))
			return errf(msg, len, "origin: expected a country "
			    "code such as SI");
		memcpy(job->origin, v, 3);
		job->origins[0] = job->origin;
		job->filter.origins = job->origins;
		job->filter.n_origins = 1;
		filtered = 1;
	}
	if ((v = arg(conn, "region")) != NULL) {
		if (!alert_region_name_valid(v))
			return errf(msg, len, "region: not a region name");
		snprintf(job->region, sizeof(job->region), "%s", v);
		job->regions[0] = job->region;
		job->filter.regions = job->regions;
		job->filter.n_regions = 1;
		filtered = 1;
	}
	if ((v = arg(conn, "category")) != NULL) {
		if ((k = alert_category_parse(v)) == -1)
			return errf(msg, len, "category: one of %s",
			    alert_category_choices());
		job->cats[0] = (Cpx__Category)k;
		job->filter.categories = job->cats;
		job->filter.n_categories = 1;
		filtered = 1;
	}
	if ((v = arg(conn, "min_severity")) != NULL) {
		if ((k = alert_severity_parse(v)) == -1)
			return errf(msg, len, "min_severity: one of %s",
			    alert_severity_choices());
		job->filter.min_severity = (Cpx__Severity)k;
		filtered = 1;
	}
	if (filtered) {
		job->filterp = &job->filter;
		job->rq.filters = &job->filterp;
		job->rq.n_filters = 1;
	}
	return 0;
}

/*
 * Run a replay job to its end. 0 with the job done, or -1 (answered);
 * *job is NULLed when it was abandoned to the broker thread.
 */
static int
run_replay(struct console *ctx, struct MHD_Connection *conn, struct job **jp,
    enum MHD_Result *ret)
{
	struct job *job = *jp;
	char msg[800];

	if (console_job_submit(ctx, job) == -1) {
		*ret = send_error(conn, 503, "too many requests waiting for "
		    "the broker; try again in a moment");
		return -1;
	}
	if (console_job_wait(ctx, job, REPLAY_WAIT_MS) == -1) {
		*jp = NULL;	/* the broker thread frees it */
		*ret = send_error(conn, 504, "the broker did not finish the "
		    "replay within a minute: ask for a shorter time range");
		return -1;
	}
	if (!job->ok && job->reason != 0) {
		/* The broker refused it: something in the request to fix. */
		snprintf(msg, sizeof(msg), "%s (%s: %s)",
		    console_reason_words(job->reason),
		    alert_reason_name(job->reason), job->text);
		*ret = send_error(conn, 422, msg);
		return -1;
	}
	if (!job->ok) {
		*ret = send_error(conn, 503, job->text);
		return -1;
	}
	return 0;
}

static enum MHD_Result
api_history(struct console *ctx, struct MHD_Connection *conn,
    const struct who *w)
{
	struct job *job = NULL;
	enum MHD_Result ret;
	const char *v;
	char msg[300], tail[200];
	size_t i, cap, len;
	char *out = NULL;

	if ((job = calloc(1, sizeof(*job))) == NULL)
		return MHD_NO;
	job->kind = JOB_REPLAY;
	job->format = JOB_FMT_JSON;
	job->limit = 50;
	snprintf(job->officer, sizeof(job->officer), "%s", w->name);
	if ((v = arg(conn, "limit")) != NULL) {
		job->limit = (size_t)strtoul(v, NULL, 10);
		if (job->limit == 0 || job->limit > CONSOLE_PAGE_MAX)
			job->limit = CONSOLE_PAGE_MAX;
	}
	if (replay_from_query(conn, job, msg, sizeof(msg)) == -1) {
		ret = send_error(conn, 400, msg);
		goto done;
	}
	log_info("officer %s: history from %lld to %lld after seq %llu",
	    w->name, (long long)job->rq.from_time, (long long)job->rq.to_time,
	    (unsigned long long)(job->rq.from_seq ? job->rq.from_seq - 1 : 0));
	if (run_replay(ctx, conn, &job, &ret) == -1)
		goto done;
	cap = job->bytes + job->nrows + 256;
	if ((out = malloc(cap)) == NULL) {
		ret = MHD_NO;
		goto done;
	}
	len = (size_t)snprintf(out, cap, "{\"items\":[");
	for (i = 0; i < job->nrows; i++) {
		memcpy(out + len, job->rows[i], strlen(job->rows[i]));
		len += strlen(job->rows[i]);
		if (i + 1 < job->nrows)
			out[len++] = ',';
	}
	snprintf(tail, sizeof(tail), "],\"count\":%zu,\"matched\":%" PRIu64
	    ",\"more\":%s,\"next_after\":%" PRIu64 "}", job->nrows,
	    job->matched, job->matched > job->nrows ? "true" : "false",
	    job->last_kept_seq);
	memcpy(out + len, tail, strlen(tail) + 1);
	len += strlen(tail);
	ret = send_body(conn, 200, "application/json", out, len, NULL, NULL,
	    NULL, NULL);
done:
	free(out);
	console_job_free(&job);
	return ret;
}

static enum MHD_Result
api_export(struct console *ctx, struct MHD_Connection *conn,
    const struct who *w)
{
	struct job *job = NULL;
	enum MHD_Result ret;
	const char *fmt;
	char msg[300], disp[160], stamp[32];
	size_t i, cap, len = 0, n;
	char *out = NULL;
	time_t now;
	struct tm tm;

	fmt = arg(conn, "format");
	if (fmt == NULL || (strcmp(fmt, "jsonl") != 0 &&
	    strcmp(fmt, "csv") != 0))
		return send_error(conn, 400, "format: jsonl or csv");
	if ((job = calloc(1, sizeof(*job))) == NULL)
		return MHD_NO;
	job->kind = JOB_REPLAY;
	job->format = strcmp(fmt, "csv") == 0 ? JOB_FMT_CSV : JOB_FMT_JSON;
	job->limit = CONSOLE_EXPORT_MAX;
	snprintf(job->officer, sizeof(job->officer), "%s", w->name);
	if (replay_from_query(conn, job, msg, sizeof(msg)) == -1) {
		ret = send_error(conn, 400, msg);
		goto done;
	}
	log_info("officer %s: export as %s from %lld to %lld", w->name, fmt,
	    (long long)job->rq.from_time, (long long)job->rq.to_time);
	if (run_replay(ctx, conn, &job, &ret) == -1)
		goto done;
	cap = job->bytes + sizeof(msg) + 256;
	if ((out = malloc(cap)) == NULL) {
		ret = MHD_NO;
		goto done;
	}
	if (job->format == JOB_FMT_CSV) {
		n = strlen(console_csv_header);
		memcpy(out, console_csv_header, n);
		len = n;
	}
	for (i = 0; i < job->nrows; i++) {
		n = strlen(job->rows[i]);
		memcpy(out + len, job->rows[i], n);
		len += n;
		if (job->format == JOB_FMT_JSON)
			out[len++] = '\n';
	}
	log_info("officer %s: exported %zu alert(s)%s", w->name, job->nrows,
	    job->matched > job->nrows ? " (truncated at the export limit)" :
	    "");
	now = time(NULL);
	gmtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
	snprintf(disp, sizeof(disp), "attachment; filename=\"cpx-%s-%s.%s\"",
	    ctx->node, stamp, fmt);
	ret = send_body(conn, 200, job->format == JOB_FMT_CSV ?
	    "text/csv; charset=utf-8" : "application/x-ndjson", out, len,
	    "Content-Disposition", disp, job->matched > job->nrows ?
	    "X-CPX-Truncated" : NULL, "1");
done:
	free(out);
	console_job_free(&job);
	return ret;
}

/* --- the live feed ------------------------------------------------- */

/* A formatted string in a new buffer (free()); NULL if out of memory. */
static char *
fmt_alloc(size_t *len, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static char *
fmt_alloc(size_t *len, const char *fmt, ...)
{
	va_list ap;
	char *out;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || (out = malloc((size_t)n + 1)) == NULL)
		return NULL;
	va_start(ap, fmt);
	(void)vsnprintf(out, (size_t)n + 1, fmt, ap);
	va_end(ap);
	*len = (size_t)n;
	return out;
}

/* Take the next thing to send (ctx->mu held): 1 if pend was set. */
static int
sse_next(struct sse *s, int64_t now)
{
	struct console *ctx = s->ctx;
	struct ring_entry *e;
	uint64_t oldest;
	char since[JSON_OUT_TIME_LEN], *state;
	json_t *o;
	int n;

	if (s->state_sent != ctx->state_version) {
		if (json_out_time_format(ctx->state_since, since,
		    sizeof(since)) == -1)
			since[0] = '\0';
		o = json_pack("{s:b, s:b, s:s, s:s, s:I}", "connected",
		    ctx->connected, "ended", ctx->ended, "text",
		    ctx->state_text, "since", since, "last_seq",
		    (json_int_t)ctx->last_seq);
		state = o ? json_dumps(o, JSON_COMPACT) : NULL;
		json_decref(o);
		if (state == NULL)
			return 0;
		s->state_sent = ctx->state_version;
		s->pend = fmt_alloc(&s->pend_len, "event: state\ndata: "
		    "%s\n\n", state);
		free(state);
		return s->pend != NULL;
	}
	oldest = ctx->ring_next > CONSOLE_RING ?
	    ctx->ring_next - CONSOLE_RING : 1;
	/* Evicted since, or a number this run never gave: from the oldest. */
	if (s->next_id < oldest || s->next_id > ctx->ring_next)
		s->next_id = oldest;
	if (s->next_id < ctx->ring_next) {
		e = &ctx->ring[s->next_id % CONSOLE_RING];
		s->pend = fmt_alloc(&s->pend_len, "id: %08" PRIx32 "-%" PRIu64
		    "\nevent: alert\ndata: %s\n\n", ctx->run_id, e->id,
		    e->json);
		s->next_id++;
		return s->pend != NULL;
	}
	if (now - s->last_write >= SSE_HEARTBEAT_MS) {
		/* The feed itself does not keep an idle officer signed in. */
		pthread_mutex_unlock(&ctx->mu);
		n = auth_session_alive(&ctx->auth, s->token,
		    console_mono_ms());
		pthread_mutex_lock(&ctx->mu);
		if (!n) {
			s->finish = 1;
			s->pend = strdup("event: signedout\ndata: {}\n\n");
		} else
			s->pend = strdup(": keepalive\n\n");
		if (s->pend == NULL)
			return 0;
		s->pend_len = strlen(s->pend);
		return 1;
	}
	return 0;
}

static ssize_t
sse_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct sse *s = cls;
	struct console *ctx = s->ctx;
	struct timespec ts;
	size_t n;

	(void)pos;
	if (s->pend == NULL) {
		if (s->finish)
			return MHD_CONTENT_READER_END_OF_STREAM;
		pthread_mutex_lock(&ctx->mu);
		while (!ctx->stopping && !sse_next(s, console_mono_ms())) {
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += 1;
			(void)pthread_cond_timedwait(&ctx->cond, &ctx->mu, &ts);
		}
		pthread_mutex_unlock(&ctx->mu);
		if (s->pend == NULL)
			return MHD_CONTENT_READER_END_OF_STREAM;
		s->pend_off = 0;
	}
	n = s->pend_len - s->pend_off;
	if (n > max)
		n = max;
	memcpy(buf, s->pend + s->pend_off, n);
	s->pend_off += n;
	if (s->pend_off == s->pend_len) {
		free(s->pend);
		s->pend = NULL;
	}
	s->last_write = console_mono_ms();
	return (ssize_t)n;
}

static void
sse_free(void *cls)
{
	struct sse *s = cls;

	pthread_mutex_lock(&s->ctx->mu);
	s->ctx->sse_clients--;
	pthread_mutex_unlock(&s->ctx->mu);
	free(s->pend);
	memset(s->token, 0, sizeof(s->token));
	free(s);
}

static enum MHD_Result
api_feed(struct console *ctx, struct MHD_Connection *conn,
    const struct who *w)
{
	struct MHD_Response *r;
	struct sse *s;
	const char *last, *tok;
	char *end;
	enum MHD_Result ret;
	int full;

	pthread_mutex_lock(&ctx->mu);
	full = ctx->sse_clients >= CONSOLE_MAX_SSE;
	if (!full)
		ctx->sse_clients++;
	pthread_mutex_unlock(&ctx->mu);
	if (full) {
		log_warnx("officer %s: live feed refused: %d feeds open",
		    w->name, CONSOLE_MAX_SSE);
		return send_error(conn, 503, "too many live feeds open on this "
		    "console: close another tab");
	}
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		pthread_mutex_lock(&ctx->mu);
		ctx->sse_clients--;
		pthread_mutex_unlock(&ctx->mu);
		return MHD_NO;
	}
	s->ctx = ctx;
	s->last_write = console_mono_ms();
	tok = MHD_lookup_connection_value(conn, MHD_COOKIE_KIND, COOKIE_NAME);
	snprintf(s->token, sizeof(s->token), "%s", tok ? tok : "");
	/* EventSource sends the last id it saw when it reconnects. */
	last = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	    "Last-Event-ID");
	if (last != NULL && strtoul(last, &end, 16) == ctx->run_id &&
	    *end == '-')
		s->next_id = strtoull(end + 1, NULL, 10) + 1;
	r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, SSE_BLOCK,
	    sse_read, s, sse_free);
	if (r == NULL) {
		sse_free(s);
		return MHD_NO;
	}
	security_headers(r, 1);
	MHD_add_response_header(r, "Content-Type", "text/event-stream");
	ret = MHD_queue_response(conn, 200, r);
	MHD_destroy_response(r);
	return ret;
}

/* --- dispatch ------------------------------------------------------ */

static enum MHD_Result
route(struct console *ctx, struct MHD_Connection *conn, const char *url,
    const char *method, const struct req *rq)
{
	struct who w;
	size_t i;
	int get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
	int post = strcmp(method, "POST") == 0;

	if (strncmp(url, "/api/", 5) != 0) {
		for (i = 0; i < sizeof(static_files) /
		    sizeof(static_files[0]); i++)
			if (strcmp(url, static_files[i].url) == 0) {
				if (!get)
					return send_error(conn, 405,
					    "method not allowed");
				return send_static(ctx, conn,
				    &static_files[i]);
			}
		return send_error(conn, 404, "no such page");
	}
	if (rq->too_big)
		return send_error(conn, 413, "request body too large");
	find_session(ctx, conn, &w);
	if (strcmp(url, "/api/login") == 0 && post)
		return api_login(ctx, conn, rq, &w);
	if (!w.signed_in)
		return send_error(conn, 401, "not signed in, or the session "
		    "has ended: sign in again");
	if (strcmp(url, "/api/session") == 0 && get)
		return send_json(conn, 200, json_pack("{s:s, s:s, s:I}",
		    "name", w.name, "csrf", w.csrf, "idle_minutes",
		    (json_int_t)(ctx->auth.idle_ms / 60000)), NULL, NULL);
	if (strcmp(url, "/api/logout") == 0 && post)
		return api_logout(ctx, conn, &w);
	if (strcmp(url, "/api/status") == 0 && get)
		return api_status(ctx, conn, &w);
	if (strcmp(url, "/api/feed") == 0 && get)
		return api_feed(ctx, conn, &w);
	if (strcmp(url, "/api/publish") == 0 && post)
		return api_publish(ctx, conn, rq, &w);
	if (strcmp(url, "/api/history") == 0 && get)
		return api_history(ctx, conn, &w);
	if (strcmp(url, "/api/export") == 0 && get)
		return api_export(ctx, conn, &w);
	return send_error(conn, 404, "no such API call (or wrong method)");
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *upload,
    size_t *upload_size, void **con_cls)
{
	struct console *ctx = cls;
	struct req *rq = *con_cls;
	char *nb;

	(void)version;
	if (rq == NULL) {
		if ((rq = calloc(1, sizeof(*rq))) == NULL)
			return MHD_NO;
		*con_cls = rq;
		return MHD_YES;
	}
	if (*upload_size > 0) {
		/* Never hold more than MAX_BODY, whatever is announced. */
		if (!rq->too_big && *upload_size <= MAX_BODY - rq->len) {
			if ((nb = realloc(rq->body, rq->len + *upload_size +
			    1)) == NULL)
				return MHD_NO;
			rq->body = nb;
			memcpy(rq->body + rq->len, upload, *upload_size);
			rq->len += *upload_size;
			rq->body[rq->len] = '\0';
		} else
			rq->too_big = 1;
		*upload_size = 0;
		return MHD_YES;
	}
	return route(ctx, conn, url, method, rq);
}

static void
on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct req *rq = *con_cls;

	(void)cls;
	(void)conn;
	(void)toe;
	if (rq == NULL)
		return;
	if (rq->body != NULL) {
		/* A sign-in body holds a password. */
		memset(rq->body, 0, rq->len);
		free(rq->body);
	}
	free(rq);
	*con_cls = NULL;
}

struct MHD_Daemon *
console_http_start(struct console *ctx, const char *addr, int port,
    int *bound, char *err, size_t errlen)
{
	struct sockaddr_in sin;
	struct MHD_Daemon *d;
	const union MHD_DaemonInfo *di;

	*bound = 0;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, addr, &sin.sin_addr) != 1) {
		errf(err, errlen, "--listen %s: expected an IPv4 address such "
		    "as 127.0.0.1", addr);
		return NULL;
	}
	d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD |
	    MHD_USE_THREAD_PER_CONNECTION, (uint16_t)port, NULL, NULL,
	    on_request, ctx,
	    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sin,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned int)MAX_CONNECTIONS,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)60,
	    MHD_OPTION_NOTIFY_COMPLETED, on_completed, ctx,
	    MHD_OPTION_END);
	if (d == NULL) {
		errf(err, errlen, "cannot listen on %s:%d (in use, or not "
		    "an address of this machine?)", addr, port);
		return NULL;
	}
	di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	*bound = di != NULL ? di->port : port;
	return d;
}

void
console_http_stop(struct console *ctx, struct MHD_Daemon **d)
{
	if (d == NULL || *d == NULL)
		return;
	/* Wake the live feeds so that their threads end. */
	pthread_mutex_lock(&ctx->mu);
	ctx->stopping = 1;
	pthread_cond_broadcast(&ctx->cond);
	pthread_mutex_unlock(&ctx->mu);
	MHD_stop_daemon(*d);
	*d = NULL;
}
