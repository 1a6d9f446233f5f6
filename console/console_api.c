/*
 * console_api.c: the JSON calls of cpx-console that concern the broker:
 * the status page, publishing an officer's alert (the officer's name is
 * put into the alert, which the broker thread signs with the node's
 * key), and the history and its exports (a replay, filtered and capped:
 * CONSOLE_PAGE_MAX rows a page, CONSOLE_EXPORT_MAX rows or
 * CONSOLE_EXPORT_BYTES an export). Each call becomes a job for the
 * broker thread (console_broker.c) and waits for it a bounded time; a
 * query's every value is checked here and a bad one named.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <microhttpd.h>

#include "alert.h"
#include "alert_json.h"
#include "console.h"
#include "console_http.h"
#include "cpx_version.h"
#include "errfmt.h"
#include "identity.h"
#include "json_out.h"
#include "log.h"

#define PUBLISH_WAIT_MS		15000
#define REPLAY_WAIT_MS		60000

enum MHD_Result
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
	o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:b, s:s, s:s,"
	    " s:{s:b, s:b, s:b}, s:I, s:I, s:I, s:i, s:s, s:s, s:o, s:s, s:s}",
	    "officer", w->name,
	    "node", ctx->node,
	    "country", ctx->country,
	    "broker", ctx->broker_endpoint,
	    "broker_name", ctx->broker_name,
	    "broker_version", ctx->broker_version,
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
	    "console_version", CPX_VERSION,
	    "subscription", ctx->subscription);
	pthread_mutex_unlock(&ctx->mu);
	return http_send_json(conn, 200, o, NULL, NULL);
}

/* --- publish ------------------------------------------------------- */

enum MHD_Result
api_publish(struct console *ctx, struct MHD_Connection *conn,
    const struct req *rq, const struct who *w)
{
	struct job *job = NULL;
	char err[300], msg[600];
	enum MHD_Result ret;
	json_t *o;

	if (signin_need_csrf(conn, w, &ret) == -1)
		return ret;
	if ((job = calloc(1, sizeof(*job))) == NULL)
		return MHD_NO;
	job->kind = JOB_PUBLISH;
	snprintf(job->officer, sizeof(job->officer), "%s", w->name);
	if ((job->alert = alert_json_parse(rq->body ? rq->body : "", rq->len,
	    err, sizeof(err))) == NULL) {
		snprintf(msg, sizeof(msg), "the form is not a valid alert: %s",
		    err);
		ret = http_send_error(conn, 400, msg);
		goto done;
	}
	/*
	 * The officer's name travels in the signed alert, and only it: an
	 * "author" the page sent is replaced, so no officer can sign as
	 * another.
	 */
	if (job->alert->author != NULL &&
	    job->alert->author != protobuf_c_empty_string)
		free(job->alert->author);
	if ((job->alert->author = strdup(w->name)) == NULL) {
		ret = MHD_NO;
		goto done;
	}
	log_info("officer %s: publishing a %s %s alert", w->name,
	    alert_severity_name(job->alert->severity),
	    alert_category_name(job->alert->category));
	if (console_job_submit(ctx, job) == -1) {
		ret = http_send_error(conn, 503, "too many requests waiting "
		    "for the broker; try again in a moment");
		goto done;
	}
	if (console_job_wait(ctx, job, PUBLISH_WAIT_MS) == -1) {
		job = NULL;	/* the broker thread frees it */
		log_warnx("officer %s: no answer from the broker within %d s",
		    w->name, PUBLISH_WAIT_MS / 1000);
		ret = http_send_error(conn, 504, "no answer from the broker "
		    "yet: the alert is kept and sent again when the session is "
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
	ret = http_send_json(conn, job->ok ? 200 : 422, o, NULL, NULL);
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
		*ret = http_send_error(conn, 503, "too many requests waiting "
		    "for the broker; try again in a moment");
		return -1;
	}
	if (console_job_wait(ctx, job, REPLAY_WAIT_MS) == -1) {
		*jp = NULL;	/* the broker thread frees it */
		*ret = http_send_error(conn, 504, "the broker did not finish "
		    "the replay within a minute: ask for a shorter time range");
		return -1;
	}
	if (!job->ok && job->reason != 0) {
		/* The broker refused it: something in the request to fix. */
		snprintf(msg, sizeof(msg), "%s (%s: %s)",
		    console_reason_words(job->reason),
		    alert_reason_name(job->reason), job->text);
		*ret = http_send_error(conn, 422, msg);
		return -1;
	}
	if (!job->ok) {
		*ret = http_send_error(conn, 503, job->text);
		return -1;
	}
	return 0;
}

enum MHD_Result
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
		ret = http_send_error(conn, 400, msg);
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
	ret = http_send_body(conn, 200, "application/json", out, len, NULL,
	    NULL, NULL, NULL);
done:
	free(out);
	console_job_free(&job);
	return ret;
}

enum MHD_Result
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
		return http_send_error(conn, 400, "format: jsonl or csv");
	if ((job = calloc(1, sizeof(*job))) == NULL)
		return MHD_NO;
	job->kind = JOB_REPLAY;
	job->format = strcmp(fmt, "csv") == 0 ? JOB_FMT_CSV : JOB_FMT_JSON;
	job->limit = CONSOLE_EXPORT_MAX;
	snprintf(job->officer, sizeof(job->officer), "%s", w->name);
	if (replay_from_query(conn, job, msg, sizeof(msg)) == -1) {
		ret = http_send_error(conn, 400, msg);
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
	ret = http_send_body(conn, 200, job->format == JOB_FMT_CSV ?
	    "text/csv; charset=utf-8" : "application/x-ndjson", out, len,
	    "Content-Disposition", disp, job->matched > job->nrows ?
	    "X-CPX-Truncated" : NULL, "1");
done:
	free(out);
	console_job_free(&job);
	return ret;
}
