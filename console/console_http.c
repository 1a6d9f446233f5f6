/*
 * console_http.c: the HTTP plumbing of cpx-console (libmicrohttpd, one
 * thread per connection). Owns the daemon, the routes, the answers and
 * the headers every answer carries (a strict Content-Security-Policy,
 * nosniff, no referrer, no framing), the single-page application's files
 * and the vendored libraries (a fixed table, never a path from the
 * request), and the cap on every request body before it is read. The
 * handlers are elsewhere (console_http.h): who is asking and the CSRF
 * check in console_signin.c, the JSON calls in console_api.c, the live
 * feed in console_feed.c. Nothing private leaves: the node's key stays
 * with the broker thread, the session token travels only in an HttpOnly
 * cookie.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <microhttpd.h>

#include "console.h"
#include "console_http.h"
#include "errfmt.h"
#include "log.h"

#define MAX_BODY		(64u * 1024u)
#define MAX_CONNECTIONS		64

#define CSP "default-src 'none'; script-src 'self'; style-src 'self'; " \
	"img-src 'self' data:; connect-src 'self'; font-src 'self'; " \
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

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

void
http_security_headers(struct MHD_Response *r, int nocache)
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
enum MHD_Result
http_send_body(struct MHD_Connection *conn, unsigned int status,
    const char *type, const char *body, size_t len, const char *h1,
    const char *v1,
    const char *h2, const char *v2)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(len, (void *)(uintptr_t)body,
	    MHD_RESPMEM_MUST_COPY);
	if (r == NULL)
		return MHD_NO;
	http_security_headers(r, 1);
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
enum MHD_Result
http_send_json(struct MHD_Connection *conn, unsigned int status, json_t *o,
    const char *h1, const char *v1)
{
	enum MHD_Result ret;
	char *s;

	if (o == NULL || (s = json_dumps(o, JSON_COMPACT)) == NULL) {
		json_decref(o);
		return http_send_body(conn, 500, "application/json",
		    "{\"error\":\"out of memory\"}", 25, NULL, NULL, NULL,
		    NULL);
	}
	json_decref(o);
	ret = http_send_body(conn, status, "application/json", s, strlen(s),
	    h1, v1, NULL, NULL);
	free(s);
	return ret;
}

/* An error for the browser: {"error": text}. */
enum MHD_Result
http_send_error(struct MHD_Connection *conn, unsigned int status,
    const char *text)
{
	return http_send_json(conn, status, json_pack("{s:s}", "error", text),
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
		return http_send_error(conn, 500, "path too long");
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1 ||
	    fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		log_warnx("cannot serve %s: %s%s", path, strerror(errno),
		    sf->vendor ? " (run scripts/console-deps.sh, or give "
		    "--vendor DIR)" : "");
		if (fd != -1)
			close(fd);
		return http_send_error(conn, 404, "file missing on the server");
	}
	if ((r = MHD_create_response_from_fd((uint64_t)st.st_size,
	    fd)) == NULL) {
		close(fd);
		return MHD_NO;
	}
	http_security_headers(r, 0);
	MHD_add_response_header(r, "Content-Type", sf->type);
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
					return http_send_error(conn, 405,
					    "method not allowed");
				return send_static(ctx, conn,
				    &static_files[i]);
			}
		return http_send_error(conn, 404, "no such page");
	}
	if (rq->too_big)
		return http_send_error(conn, 413, "request body too large");
	signin_who(ctx, conn, &w);
	if (strcmp(url, "/api/login") == 0 && post)
		return signin_login(ctx, conn, rq, &w);
	if (!w.signed_in)
		return http_send_error(conn, 401, "not signed in, or the "
		    "session has ended: sign in again");
	if (strcmp(url, "/api/session") == 0 && get)
		return http_send_json(conn, 200, json_pack("{s:s, s:s, s:I}",
		    "name", w.name, "csrf", w.csrf, "idle_minutes",
		    (json_int_t)(ctx->auth.idle_ms / 60000)), NULL, NULL);
	if (strcmp(url, "/api/logout") == 0 && post)
		return signin_logout(ctx, conn, &w);
	if (strcmp(url, "/api/status") == 0 && get)
		return api_status(ctx, conn, &w);
	if (strcmp(url, "/api/feed") == 0 && get)
		return feed_open(ctx, conn, &w);
	if (strcmp(url, "/api/publish") == 0 && post)
		return api_publish(ctx, conn, rq, &w);
	if (strcmp(url, "/api/history") == 0 && get)
		return api_history(ctx, conn, &w);
	if (strcmp(url, "/api/export") == 0 && get)
		return api_export(ctx, conn, &w);
	return http_send_error(conn, 404, "no such API call (or wrong method)");
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
