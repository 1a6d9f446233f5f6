/*
 * console_http.h: how the parts of cpx-console's HTTP side call one
 * another; nothing outside console_http.c, console_signin.c,
 * console_api.c and console_feed.c includes it. console_http.c owns the
 * plumbing (the daemon, the routes, the answers and their security
 * headers, the static files); console_signin.c who is asking (sign-in
 * and out, the session cookie, the CSRF check); console_api.c the JSON
 * calls that go to the broker thread (status, publish, history,
 * export); console_feed.c the live feed (Server-Sent Events). Every
 * handler runs on the connection's libmicrohttpd thread and returns what
 * it queued.
 */
#ifndef CPX_CONSOLE_HTTP_H
#define CPX_CONSOLE_HTTP_H

#include <stddef.h>

#include <jansson.h>
#include <microhttpd.h>

#include "console.h"

#define HTTP_COOKIE		"cpx_session"

/* What a request carries between libmicrohttpd's calls. */
struct req {
	char	*body;		/* capped, NUL-terminated */
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

/* The headers every answer carries (CSP, nosniff, ...). */
void	http_security_headers(struct MHD_Response *r, int nocache);
/* Queue body (copied) with status; up to two extra header pairs. */
enum MHD_Result http_send_body(struct MHD_Connection *conn,
	    unsigned int status, const char *type, const char *body,
	    size_t len, const char *h1, const char *v1, const char *h2,
	    const char *v2);
/* Queue a JSON object (taken: decref'd here; NULL answers 500). */
enum MHD_Result http_send_json(struct MHD_Connection *conn,
	    unsigned int status, json_t *o, const char *h1, const char *v1);
/* Queue {"error": text}: a sentence the page shows the officer. */
enum MHD_Result http_send_error(struct MHD_Connection *conn,
	    unsigned int status, const char *text);

/* Fill w with the session the request's cookie names, if alive. */
void	signin_who(struct console *ctx, struct MHD_Connection *conn,
	    struct who *w);
/*
 * A state-changing request: a session, its CSRF token and a JSON body.
 * Returns 0, or -1 after queueing the refusal in *ret.
 */
int	signin_need_csrf(struct MHD_Connection *conn, const struct who *w,
	    enum MHD_Result *ret) __attribute__((warn_unused_result));
enum MHD_Result signin_login(struct console *ctx,
	    struct MHD_Connection *conn, const struct req *rq,
	    const struct who *w);
enum MHD_Result signin_logout(struct console *ctx,
	    struct MHD_Connection *conn, const struct who *w);

enum MHD_Result api_status(struct console *ctx, struct MHD_Connection *conn,
	    const struct who *w);
enum MHD_Result api_publish(struct console *ctx,
	    struct MHD_Connection *conn, const struct req *rq,
	    const struct who *w);
enum MHD_Result api_history(struct console *ctx,
	    struct MHD_Connection *conn, const struct who *w);
enum MHD_Result api_export(struct console *ctx, struct MHD_Connection *conn,
	    const struct who *w);

/* Open a live feed: a Server-Sent Events stream of the ring. */
enum MHD_Result feed_open(struct console *ctx, struct MHD_Connection *conn,
	    const struct who *w);

#endif
