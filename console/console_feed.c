/*
 * console_feed.c: the live feed of cpx-console, a Server-Sent Events
 * stream per open page (at most CONSOLE_MAX_SSE). Its libmicrohttpd
 * thread waits on the console's condition variable and sends the
 * session state when it changes, then each ring entry it has not sent
 * yet, with its id "RUN-N" so that the browser's EventSource resumes
 * from Last-Event-ID after a break (from the oldest entry kept, if it
 * fell behind the ring or the console was restarted since). A
 * keep-alive every SSE_HEARTBEAT_MS; the feed ends with "signedout" once
 * the officer's session has (the feed itself is not activity).
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>

#include <jansson.h>
#include <microhttpd.h>

#include "console.h"
#include "console_http.h"
#include "json_out.h"
#include "log.h"

#define SSE_HEARTBEAT_MS	15000
#define SSE_BLOCK		(64u * 1024u)

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

enum MHD_Result
feed_open(struct console *ctx, struct MHD_Connection *conn,
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
		return http_send_error(conn, 503, "too many live feeds open on "
		    "this console: close another tab");
	}
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		pthread_mutex_lock(&ctx->mu);
		ctx->sse_clients--;
		pthread_mutex_unlock(&ctx->mu);
		return MHD_NO;
	}
	s->ctx = ctx;
	s->last_write = console_mono_ms();
	tok = MHD_lookup_connection_value(conn, MHD_COOKIE_KIND, HTTP_COOKIE);
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
	http_security_headers(r, 1);
	MHD_add_response_header(r, "Content-Type", "text/event-stream");
	ret = MHD_queue_response(conn, 200, r);
	MHD_destroy_response(r);
	return ret;
}
