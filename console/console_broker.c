/*
 * console_broker.c: the broker thread of cpx-console. Owns the one
 * session to the broker (the client library is single-threaded: only
 * this thread calls it), the feed ring that it fills with verified live
 * alerts, the session state the status page shows, and the jobs the
 * HTTP threads queue: a publish (signed here with the node's key, which
 * never leaves this process) or a replay for the history page and its
 * exports. Alerts that fail verification never reach the ring or a job's
 * rows; they are counted and logged by sequence number only.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

#include "alert.h"
#include "alert_json.h"
#include "cli.h"
#include "clock.h"
#include "console.h"
#include "json_out.h"
#include "log.h"

#define RUN_SLICE_MS	50	/* how often queued jobs are looked at */

int64_t
console_now_ms(void)
{
	return alert_now_ms();
}

int64_t
console_mono_ms(void)
{
	return clock_mono_ms();
}

const char *
console_reason_words(int reason)
{
	switch (reason) {
	case CPX__REASON__REASON_UNKNOWN_RECIPIENT:
		return "A recipient is neither a country code nor a region "
		    "the broker knows. Check the spelling of each recipient.";
	case CPX__REASON__REASON_HANDLING_RECIPIENTS:
		return "The recipients do not fit the handling: 'named-only' "
		    "takes countries only, never a region, and 'restricted' "
		    "and 'named-only' need at least one recipient.";
	case CPX__REASON__REASON_NOT_AUTHORIZED:
		return "This node is not allowed to do this: the broker's "
		    "policy does not give it the right.";
	case CPX__REASON__REASON_INVALID_ALERT:
		return "A field of the alert is missing, out of range or too "
		    "long, or the alert it refers to is unknown.";
	case CPX__REASON__REASON_CLOCK_SKEW:
		return "This node's clock is too far from the broker's: ask "
		    "the node's administrator to check the time.";
	case CPX__REASON__REASON_EXPIRED:
		return "The alert has already expired: choose a later expiry.";
	case CPX__REASON__REASON_DUPLICATE_CONFLICT:
		return "An alert with this id was published before with "
		    "different content.";
	case CPX__REASON__REASON_RATE_LIMITED:
		return "This node has published too many alerts in a short "
		    "time: wait a minute and publish again.";
	case CPX__REASON__REASON_STORAGE:
		return "The broker cannot write its log just now (disk full or "
		    "failing): publish again later.";
	case CPX__REASON__REASON_OVERLOADED:
	case CPX__REASON__REASON_SHUTTING_DOWN:
	case CPX__REASON__REASON_INTERNAL:
		return "The broker is busy or stopping: publish again in a "
		    "moment.";
	case CPX__REASON__REASON_BAD_REQUEST:
		return "The broker did not understand the request.";
	case CPX__REASON__REASON_BAD_SIGNATURE:
	case CPX__REASON__REASON_BAD_SIGNER:
	case CPX__REASON__REASON_SIGNER_REVOKED:
	case CPX__REASON__REASON_SIGNER_MISMATCH:
	case CPX__REASON__REASON_ORIGIN_MISMATCH:
	case CPX__REASON__REASON_CERT_REVOKED:
		return "The broker does not accept this node's signature or "
		    "certificate: call the node's administrator.";
	default:
		return "The broker refused the request.";
	}
}

void
console_job_free(struct job **jp)
{
	struct job *j;
	size_t i;

	if (jp == NULL || *jp == NULL)
		return;
	j = *jp;
	alert_json_free(&j->alert);
	for (i = 0; i < j->nrows; i++)
		free(j->rows[i]);
	free(j->rows);
	free(j);
	*jp = NULL;
}

int
console_job_submit(struct console *ctx, struct job *job)
{
	struct job **p;
	int ret = -1;

	pthread_mutex_lock(&ctx->mu);
	if (ctx->njobs < CONSOLE_MAX_JOBS && !ctx->stopping) {
		job->state = JOB_QUEUED;
		job->next = NULL;
		for (p = &ctx->queue; *p != NULL; p = &(*p)->next)
			;
		*p = job;
		ctx->njobs++;
		ret = 0;
	}
	pthread_mutex_unlock(&ctx->mu);
	return ret;
}

int
console_job_wait(struct console *ctx, struct job *job, int timeout_ms)
{
	struct timespec ts;
	int ret = 0;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&ctx->mu);
	while (job->state != JOB_DONE) {
		if (pthread_cond_timedwait(&ctx->cond, &ctx->mu, &ts) != 0 &&
		    job->state != JOB_DONE) {
			job->abandoned = 1;
			ret = -1;
			break;
		}
	}
	pthread_mutex_unlock(&ctx->mu);
	return ret;
}

/* Mark job done (ctx->mu held); frees it if its waiter is gone. */
static void
job_done(struct console *ctx, struct job *job)
{
	struct job **p;

	for (p = &ctx->sent; *p != NULL; p = &(*p)->next)
		if (*p == job) {
			*p = job->next;
			break;
		}
	job->next = NULL;
	job->state = JOB_DONE;
	ctx->njobs--;
	if (job->abandoned)
		console_job_free(&job);
	pthread_cond_broadcast(&ctx->cond);
}

static struct job *
job_by_request(struct console *ctx, uint64_t rid)
{
	struct job *j;

	if (rid == 0)
		return NULL;
	for (j = ctx->sent; j != NULL; j = j->next)
		if (j->request_id == rid)
			return j;
	return NULL;
}

static void
set_state(struct console *ctx, int connected, const char *text)
{
	ctx->connected = connected;
	snprintf(ctx->state_text, sizeof(ctx->state_text), "%s", text);
	ctx->state_since = console_now_ms();
	ctx->state_version++;
	pthread_cond_broadcast(&ctx->cond);
}

static void
take_welcome(struct console *ctx, struct cpx_client *c)
{
	const Cpx__Welcome *w = cpx_client_welcome(c);

	if (w == NULL)
		return;
	snprintf(ctx->broker_name, sizeof(ctx->broker_name), "%s",
	    w->broker_name ? w->broker_name : "");
	/* Printable ASCII only: it goes into JSON and onto the page. */
	cli_sanitize(w->broker_version ? w->broker_version : "",
	    ctx->broker_version, sizeof(ctx->broker_version));
	ctx->may_publish = w->may_publish;
	ctx->may_subscribe = w->may_subscribe;
	ctx->may_audit = w->may_audit;
	if (w->last_seq > ctx->last_seq)
		ctx->last_seq = w->last_seq;
}

/* Append a CSV cell: quoted, quotes doubled, no formula injection. */
static int
csv_cell(char *out, size_t cap, size_t *len, const char *s, int first)
{
	size_t i;

	if (s == NULL)
		s = "";
	if (!first) {
		if (*len + 1 >= cap)
			return -1;
		out[(*len)++] = ',';
	}
	if (*len + 1 >= cap)
		return -1;
	out[(*len)++] = '"';
	/* A spreadsheet runs a cell that starts with = + - @ as a formula. */
	if (s[0] == '=' || s[0] == '+' || s[0] == '-' || s[0] == '@') {
		if (*len + 1 >= cap)
			return -1;
		out[(*len)++] = '\'';
	}
	for (i = 0; s[i] != '\0'; i++) {
		if (*len + 3 >= cap)
			return -1;
		if (s[i] == '"')
			out[(*len)++] = '"';
		/* One record per line: line breaks become spaces. */
		out[(*len)++] = (s[i] == '\n' || s[i] == '\r') ? ' ' : s[i];
	}
	if (*len + 2 >= cap)
		return -1;
	out[(*len)++] = '"';
	out[*len] = '\0';
	return 0;
}

/* Join n strings with sep into buf (truncated to fit). */
static void
join(char *buf, size_t cap, char *const *v, size_t n, const char *sep)
{
	size_t i, len = 0;
	int k;

	buf[0] = '\0';
	for (i = 0; i < n && len < cap; i++) {
		k = snprintf(buf + len, cap - len, "%s%s", i ? sep : "",
		    v[i] ? v[i] : "");
		if (k < 0)
			break;
		len += (size_t)k;
	}
}

/*
 * The CSV header and one row per alert. Strings are copied as they are
 * (the alert verified, so they are valid UTF-8 without control
 * characters, summary line breaks aside).
 */
const char console_csv_header[] = "seq,accepted_at,id,origin,author,"
    "category,severity,handling,recipients,summary,place,crossing,"
    "latitude,longitude,route,persons,reference,signer\r\n";

static char *
csv_row(const struct cpx_event *ev)
{
	const Cpx__Alert *a = ev->alert;
	char t[JSON_OUT_TIME_LEN], seq[24], lat[32], lon[32], persons[16];
	char rcpt[64 * 34 + 1], route[32 * 130 + 1], ref[80], signer[140];
	size_t cap = 16384, len = 0;
	char *out;
	int ok;

	if ((out = malloc(cap)) == NULL)
		return NULL;
	out[0] = '\0';
	snprintf(seq, sizeof(seq), "%" PRIu64, ev->seq);
	if (json_out_time_format(ev->accepted_at, t, sizeof(t)) == -1)
		t[0] = '\0';
	lat[0] = lon[0] = '\0';
	if (a->place != NULL && a->place->has_coordinates) {
		snprintf(lat, sizeof(lat), "%.6f", a->place->latitude);
		snprintf(lon, sizeof(lon), "%.6f", a->place->longitude);
	}
	snprintf(persons, sizeof(persons), "%u", a->persons_count);
	join(rcpt, sizeof(rcpt), a->recipients, a->n_recipients, " ");
	join(route, sizeof(route), a->route, a->n_route, " > ");
	ref[0] = '\0';
	if (a->reference != NULL && a->reference->alert_id != NULL &&
	    a->reference->alert_id[0] != '\0')
		snprintf(ref, sizeof(ref), "%s %s",
		    alert_reference_kind_name(a->reference->kind),
		    a->reference->alert_id);
	snprintf(signer, sizeof(signer), "%s/%s", ev->signer.country,
	    ev->signer.node);
	ok = csv_cell(out, cap, &len, seq, 1) == 0 &&
	    csv_cell(out, cap, &len, t, 0) == 0 &&
	    csv_cell(out, cap, &len, a->id, 0) == 0 &&
	    csv_cell(out, cap, &len, a->origin, 0) == 0 &&
	    csv_cell(out, cap, &len, a->author, 0) == 0 &&
	    csv_cell(out, cap, &len, alert_category_name(a->category),
	    0) == 0 &&
	    csv_cell(out, cap, &len, alert_severity_name(a->severity),
	    0) == 0 &&
	    csv_cell(out, cap, &len, alert_handling_name(a->handling),
	    0) == 0 &&
	    csv_cell(out, cap, &len, rcpt, 0) == 0 &&
	    csv_cell(out, cap, &len, a->summary, 0) == 0 &&
	    csv_cell(out, cap, &len, a->place ? a->place->name : "", 0) == 0 &&
	    csv_cell(out, cap, &len, a->place ? a->place->crossing : "",
	    0) == 0 &&
	    csv_cell(out, cap, &len, lat, 0) == 0 &&
	    csv_cell(out, cap, &len, lon, 0) == 0 &&
	    csv_cell(out, cap, &len, route, 0) == 0 &&
	    csv_cell(out, cap, &len, persons, 0) == 0 &&
	    csv_cell(out, cap, &len, ref, 0) == 0 &&
	    csv_cell(out, cap, &len, signer, 0) == 0 && len + 3 < cap;
	if (!ok) {
		free(out);
		return NULL;
	}
	memcpy(out + len, "\r\n", 3);
	return out;
}

/* Rows of a replay: the verified alerts, at most job->limit kept. */
static void
replay_delivery(struct job *job, const struct cpx_event *ev)
{
	char **rows, *row;

	if (!ev->verified || ev->alert == NULL) {
		job->unverified++;
		return;
	}
	job->matched++;
	if (job->nrows >= job->limit)
		return;
	if (job->format == JOB_FMT_CSV)
		row = csv_row(ev);
	else
		row = cpx_event_json(ev);
	if (row == NULL)
		return;
	if (job->bytes + strlen(row) + 2 > CONSOLE_EXPORT_BYTES ||
	    (rows = realloc(job->rows, (job->nrows + 1) *
	    sizeof(*rows))) == NULL) {
		/* Over the byte budget: stop keeping, say there is more. */
		free(row);
		job->limit = job->nrows;
		return;
	}
	job->rows = rows;
	job->rows[job->nrows++] = row;
	job->bytes += strlen(row) + 2;
	job->last_kept_seq = ev->seq;
}

/* A live alert: into the ring, oldest out. */
static void
live_delivery(struct console *ctx, const struct cpx_event *ev)
{
	struct ring_entry *e;
	char *line;

	if (!ev->verified || ev->alert == NULL) {
		ctx->unverified++;
		log_warnx("seq %" PRIu64 ": alert not shown: %s", ev->seq,
		    ev->verify_error ? ev->verify_error : "not verified");
		return;
	}
	/* A resume may overlap what the ring has: never show one twice. */
	if (ctx->ring_next > 1 &&
	    ev->seq <= ctx->ring[(ctx->ring_next - 1) % CONSOLE_RING].seq)
		return;
	/* The same line as cpx subscribe --json (cpx_event_json). */
	if ((line = cpx_event_json(ev)) == NULL) {
		log_warnx("seq %" PRIu64 ": cannot format the alert", ev->seq);
		return;
	}
	e = &ctx->ring[ctx->ring_next % CONSOLE_RING];
	free(e->json);
	e->json = line;
	e->id = ctx->ring_next++;
	e->seq = ev->seq;
	if (ev->seq > ctx->last_seq)
		ctx->last_seq = ev->seq;
	pthread_cond_broadcast(&ctx->cond);
}

/* Replays do not survive a lost session: tell their waiters. */
static void
fail_replays(struct console *ctx, const char *why)
{
	struct job *j, *next;

	for (j = ctx->sent; j != NULL; j = next) {
		next = j->next;
		if (j->kind != JOB_REPLAY)
			continue;
		j->ok = 0;
		snprintf(j->text, sizeof(j->text), "%s", why);
		job_done(ctx, j);
	}
}

void
console_broker_event(const struct cpx_event *ev, void *arg)
{
	struct console *ctx = arg;
	struct job *job;
	char text[300];

	pthread_mutex_lock(&ctx->mu);
	job = job_by_request(ctx, ev->request_id);
	switch (ev->kind) {
	case CPX_EV_DELIVERY:
		if (ev->request_id == 0)
			live_delivery(ctx, ev);
		else if (job != NULL && job->kind == JOB_REPLAY)
			replay_delivery(job, ev);
		break;
	case CPX_EV_REPLAY_END:
		if (job != NULL && job->kind == JOB_REPLAY) {
			job->ok = 1;
			job->seq = ev->seq;
			log_info("officer %s: replay done, %" PRIu64
			    " alert(s)", job->officer, job->matched);
			job_done(ctx, job);
		}
		break;
	case CPX_EV_ACK:
		if (job != NULL && job->kind == JOB_PUBLISH) {
			job->ok = 1;
			job->seq = ev->seq;
			snprintf(job->alert_id, sizeof(job->alert_id), "%s",
			    ev->alert_id ? ev->alert_id : "");
			log_info("officer %s: alert %s accepted, seq %" PRIu64
			    "%s", job->officer, job->alert_id, ev->seq,
			    ev->duplicate ? " (duplicate)" : "");
			job_done(ctx, job);
		}
		break;
	case CPX_EV_ERROR:
		if (job != NULL) {
			job->ok = 0;
			job->reason = ev->reason;
			snprintf(job->text, sizeof(job->text), "%s",
			    ev->text ? ev->text : "");
			log_warnx("officer %s: %s refused (%s): %s",
			    job->officer, job->kind == JOB_PUBLISH ?
			    "publish" : "replay", alert_reason_name(ev->reason),
			    job->text);
			job_done(ctx, job);
		} else
			log_warnx("broker: %s (%s)%s", ev->text ? ev->text : "",
			    alert_reason_name(ev->reason), ev->fatal ?
			    ", session closed" : "");
		break;
	case CPX_EV_SUBSCRIBED:
		log_info("subscribed; live after seq %" PRIu64, ev->seq);
		break;
	case CPX_EV_DISCONNECTED:
		snprintf(text, sizeof(text), "%s; reconnecting",
		    ev->text && ev->text[0] ? ev->text :
		    "connection to the broker lost");
		log_warnx("%s", text);
		ctx->reconnects++;
		set_state(ctx, 0, text);
		fail_replays(ctx, "the broker session was lost during the "
		    "replay; try again once it is back");
		break;
	case CPX_EV_CONNECTED:
		log_info("connected to the broker again; resuming");
		set_state(ctx, 1, "connected");
		break;
	default:
		break;
	}
	pthread_mutex_unlock(&ctx->mu);
}

/* Send one queued job (ctx->mu held; the client is ours). */
static void
send_job(struct console *ctx, struct cpx_client *c, struct job *job)
{
	char err[300];
	char *saved_id, *saved_origin;
	int rc;

	job->next = ctx->sent;
	ctx->sent = job;
	job->state = JOB_SENT;
	if (job->kind == JOB_PUBLISH) {
		/*
		 * The library fills an empty id and origin with strings of
		 * its own; keep ours so that the alert is freed as built.
		 */
		saved_id = job->alert->id;
		saved_origin = job->alert->origin;
		rc = cpx_publish_send(c, job->alert, &job->request_id, err,
		    sizeof(err));
		if (job->alert->id != NULL)
			snprintf(job->alert_id, sizeof(job->alert_id), "%s",
			    job->alert->id);
		job->alert->id = saved_id;
		job->alert->origin = saved_origin;
	} else
		rc = cpx_replay(c, &job->rq, &job->request_id);
	if (rc == -1) {
		job->ok = 0;
		if (job->kind == JOB_PUBLISH)
			snprintf(job->text, sizeof(job->text), "%s", err);
		else
			snprintf(job->text, sizeof(job->text), "cannot send "
			    "the replay request: %s", cpx_client_error(c));
		log_warnx("officer %s: %s", job->officer, job->text);
		job_done(ctx, job);
	}
}

/* Refuse every queued job (ctx->mu held): there is no session. */
static void
refuse_queued(struct console *ctx, const char *why)
{
	struct job *job;

	while ((job = ctx->queue) != NULL) {
		ctx->queue = job->next;
		job->next = ctx->sent;
		ctx->sent = job;
		job->state = JOB_SENT;
		job->ok = 0;
		snprintf(job->text, sizeof(job->text), "%s", why);
		job_done(ctx, job);
	}
}

int
console_broker_run(struct console *ctx, struct cpx_client *c,
    volatile sig_atomic_t *stop)
{
	struct job *job, *next;
	struct timespec ts;
	int r;

	pthread_mutex_lock(&ctx->mu);
	take_welcome(ctx, c);
	set_state(ctx, 1, "connected");
	pthread_mutex_unlock(&ctx->mu);
	while (!*stop) {
		if (ctx->ended) {
			/* Keep the pages up to say why; refuse the rest. */
			pthread_mutex_lock(&ctx->mu);
			refuse_queued(ctx, "the session to the broker has "
			    "ended; see the status page");
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 200 * 1000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			(void)pthread_cond_timedwait(&ctx->cond, &ctx->mu,
			    &ts);
			pthread_mutex_unlock(&ctx->mu);
			continue;
		}
		r = cpx_client_run(c, RUN_SLICE_MS);
		pthread_mutex_lock(&ctx->mu);
		if (r == -1) {
			ctx->ended = 1;
			set_state(ctx, 0, cpx_client_error(c));
			fail_replays(ctx, "the broker session has ended");
			for (job = ctx->sent; job != NULL; job = next) {
				next = job->next;
				job->ok = 0;
				snprintf(job->text, sizeof(job->text), "the "
				    "broker session has ended");
				job_done(ctx, job);
			}
			pthread_mutex_unlock(&ctx->mu);
			log_warnx("broker session over for good: %s",
			    cpx_client_error(c));
			continue;
		}
		if (ctx->connected)
			take_welcome(ctx, c);
		while ((job = ctx->queue) != NULL) {
			ctx->queue = job->next;
			/*
			 * Nothing is sent without a session: the officer is
			 * told at once, rather than the alert going out
			 * later unseen.
			 */
			if (!ctx->connected) {
				job->next = ctx->sent;
				ctx->sent = job;
				job->state = JOB_SENT;
				snprintf(job->text, sizeof(job->text), "no "
				    "session to the broker just now (see the "
				    "banner): nothing was sent; try again once "
				    "it is back");
				job_done(ctx, job);
				continue;
			}
			send_job(ctx, c, job);
		}
		pthread_mutex_unlock(&ctx->mu);
	}
	pthread_mutex_lock(&ctx->mu);
	/* No job may be queued from now on: nobody would send it. */
	ctx->stopping = 1;
	refuse_queued(ctx, "cpx-console is stopping");
	for (job = ctx->sent; job != NULL; job = next) {
		next = job->next;
		job->ok = 0;
		snprintf(job->text, sizeof(job->text), "cpx-console is "
		    "stopping");
		job_done(ctx, job);
	}
	pthread_mutex_unlock(&ctx->mu);
	return ctx->ended ? -1 : 0;
}
