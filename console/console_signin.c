/*
 * console_signin.c: who is asking cpx-console. Owns sign-in (the
 * password checked against the accounts file, console_users.c, at most
 * MAX_HASHING at once since each costs 32 MiB; lock-out after repeated
 * failures, console_auth.c), sign-out, finding the session the
 * request's HttpOnly cookie names, and the CSRF check every
 * state-changing request must pass. The password is wiped from the
 * parsed body before it is freed; the session token leaves only in the
 * Set-Cookie header.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <jansson.h>
#include <microhttpd.h>
#include <openssl/crypto.h>

#include "console.h"
#include "console_http.h"
#include "log.h"

#define MAX_LOGIN_BODY		(4u * 1024u)
#define MAX_HASHING		4	/* sign-ins checked at once */

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

void
signin_who(struct console *ctx, struct MHD_Connection *conn,
    struct who *w)
{
	const char *tok;

	memset(w, 0, sizeof(*w));
	peer_addr(conn, w->addr, sizeof(w->addr));
	tok = MHD_lookup_connection_value(conn, MHD_COOKIE_KIND, HTTP_COOKIE);
	if (tok != NULL && auth_session_find(&ctx->auth, tok,
	    console_mono_ms(), w->name, w->csrf) == 0)
		w->signed_in = 1;
}

/*
 * A state-changing request: a session, its CSRF token in X-CSRF-Token,
 * and a JSON body (a cross-site form cannot send that type without a
 * preflight). Returns 0, or -1 after queueing the refusal.
 */
int
signin_need_csrf(struct MHD_Connection *conn, const struct who *w,
    enum MHD_Result *ret)
{
	const char *given, *type;

	if (!w->signed_in) {
		*ret = http_send_error(conn, 401, "not signed in, or the "
		    "session has ended: sign in again");
		return -1;
	}
	given = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	    "X-CSRF-Token");
	if (!auth_csrf_ok(w->csrf, given)) {
		log_warnx("officer %s from %s: request without a valid CSRF "
		    "token refused", w->name, w->addr);
		*ret = http_send_error(conn, 403, "missing or wrong CSRF "
		    "token: reload the page");
		return -1;
	}
	type = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	    "Content-Type");
	if (type == NULL || strncmp(type, "application/json", 16) != 0) {
		*ret = http_send_error(conn, 415, "expected Content-Type: "
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

enum MHD_Result
signin_login(struct console *ctx, struct MHD_Connection *conn,
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
		return http_send_error(conn, 415, "expected Content-Type: "
		    "application/json");
	if (rq->len > MAX_LOGIN_BODY || json_body(rq, &o) == -1 ||
	    json_unpack(o, "{s:s, s:s}", "name", &name, "password",
	    &pw) == -1) {
		json_decref(o);
		return http_send_error(conn, 400, "expected {\"name\": ..., "
		    "\"password\": ...}");
	}
	if (!users_name_valid(name) || strlen(pw) > USERS_MAX_PASSWORD) {
		log_warnx("sign-in from %s refused: not an account name",
		    w->addr);
		ret = http_send_error(conn, 401, "wrong name or password");
		goto done;
	}
	if (auth_locked(&ctx->auth, name, console_mono_ms(), &left) == -1) {
		log_warnx("sign-in as %s from %s refused: locked out",
		    name, w->addr);
		snprintf(msg, sizeof(msg), "too many failed sign-ins for %s: "
		    "locked for %lld more minute(s); an administrator can "
		    "reset the password with cpx-console user passwd", name,
		    (long long)(left + 59999) / 60000);
		ret = http_send_error(conn, 429, msg);
		goto done;
	}
	/* Each check costs 32 MiB: a flood must not exhaust memory. */
	pthread_mutex_lock(&ctx->mu);
	busy = ctx->hashing >= MAX_HASHING;
	if (!busy)
		ctx->hashing++;
	pthread_mutex_unlock(&ctx->mu);
	if (busy) {
		ret = http_send_error(conn, 503, "too many sign-ins at once; "
		    "try again in a second");
		goto done;
	}
	r = users_verify(ctx->users_path, name, pw, err, sizeof(err));
	pthread_mutex_lock(&ctx->mu);
	ctx->hashing--;
	pthread_mutex_unlock(&ctx->mu);
	if (r == -1) {
		log_warnx("sign-in as %s: %s", name, err);
		ret = http_send_error(conn, 500, "the accounts file cannot be "
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
		ret = http_send_error(conn, 401, "wrong name or password");
		goto done;
	}
	auth_succeeded(&ctx->auth, name);
	if (auth_session_new(&ctx->auth, name, console_mono_ms(), token,
	    csrf) == -1) {
		ret = http_send_error(conn, 500, "no random bytes for a "
		    "session");
		goto done;
	}
	log_info("officer %s: signed in from %s", name, w->addr);
	snprintf(cookie, sizeof(cookie), HTTP_COOKIE "=%s; Path=/; HttpOnly; "
	    "SameSite=Strict%s", token, ctx->secure_cookie ? "; Secure" : "");
	ret = http_send_json(conn, 200, json_pack("{s:s, s:s, s:I}", "name",
	    name, "csrf", csrf, "idle_minutes", (json_int_t)(ctx->auth.idle_ms /
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

enum MHD_Result
signin_logout(struct console *ctx, struct MHD_Connection *conn,
    const struct who *w)
{
	enum MHD_Result ret;
	char cookie[160];

	if (signin_need_csrf(conn, w, &ret) == -1)
		return ret;
	auth_session_end(&ctx->auth, MHD_lookup_connection_value(conn,
	    MHD_COOKIE_KIND, HTTP_COOKIE));
	log_info("officer %s: signed out", w->name);
	snprintf(cookie, sizeof(cookie), HTTP_COOKIE "=; Path=/; Max-Age=0; "
	    "HttpOnly; SameSite=Strict%s", ctx->secure_cookie ? "; Secure" :
	    "");
	return http_send_json(conn, 200, json_pack("{s:b}", "ok", 1),
	    "Set-Cookie", cookie);
}
