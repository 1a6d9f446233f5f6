/*
 * cpx_api.c: the parts of libcpx's public API (include/cpx.h) that
 * cpx_client*.c do not implement themselves: the version, the log callback,
 * reading an event, the Welcome and the node's identity as plain
 * strings, and publish, subscribe and replay in terms of JSON and name
 * strings instead of protobuf messages. Each turns its plain arguments
 * into the protobuf form and calls the internal API (cpx_client.h), so a
 * host program sees no protobuf-c type and no internal header.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "alert.h"
#include "alert_json.h"
#include "cpx_client.h"
#include "cpx_limits.h"
#include "cpx_version.h"
#include "json_out.h"
#include "log.h"
#include "wire.h"

const char *
cpx_version(void)
{
	return CPX_VERSION;
}

void
cpx_set_log_callback(cpx_log_cb *fn, void *arg)
{
	log_set_sink(fn, arg);
}

int
cpx_set_log_level(const char *level)
{
	enum log_level l;

	if (level == NULL || log_level_parse(level, &l) == -1)
		return -1;
	log_set_level(l);
	return 0;
}

const char *
cpx_client_country(const struct cpx_client *c)
{
	return cpx_client_identity(c)->country;
}

const char *
cpx_client_node(const struct cpx_client *c)
{
	return cpx_client_identity(c)->node;
}

int
cpx_client_session(const struct cpx_client *c, struct cpx_session_info *info)
{
	const Cpx__Welcome *w = cpx_client_welcome(c);

	memset(info, 0, sizeof(*info));
	if (w == NULL)
		return -1;
	info->broker_name = w->broker_name;
	info->broker_version = w->broker_version;
	info->country = w->country;
	info->node = w->node;
	info->may_publish = w->may_publish;
	info->may_subscribe = w->may_subscribe;
	info->may_audit = w->may_audit;
	info->may_witness = w->may_witness;
	info->last_seq = w->last_seq;
	info->max_frame = w->max_frame;
	info->ping_interval = w->ping_interval;
	return 0;
}

enum cpx_event_kind
cpx_event_kind(const struct cpx_event *ev)
{
	return ev->kind;
}

uint64_t
cpx_event_request_id(const struct cpx_event *ev)
{
	return ev->request_id;
}

uint64_t
cpx_event_seq(const struct cpx_event *ev)
{
	return ev->seq;
}

uint64_t
cpx_event_count(const struct cpx_event *ev)
{
	return ev->count;
}

int
cpx_event_duplicate(const struct cpx_event *ev)
{
	return ev->duplicate;
}

int
cpx_event_reason(const struct cpx_event *ev)
{
	return ev->reason;
}

int
cpx_event_fatal(const struct cpx_event *ev)
{
	return ev->fatal;
}

const char *
cpx_event_text(const struct cpx_event *ev)
{
	return ev->text;
}

const char *
cpx_event_alert_id(const struct cpx_event *ev)
{
	return ev->alert_id;
}

int64_t
cpx_event_accepted_at(const struct cpx_event *ev)
{
	return ev->accepted_at;
}

int
cpx_event_replayed(const struct cpx_event *ev)
{
	return ev->replayed;
}

int
cpx_event_verified(const struct cpx_event *ev)
{
	return ev->kind == CPX_EV_DELIVERY && ev->verified &&
	    ev->alert != NULL;
}

const char *
cpx_event_verify_error(const struct cpx_event *ev)
{
	return ev->verify_error;
}

/* The signer only once verified: before, it is whatever the bytes claim. */
const char *
cpx_event_signer_country(const struct cpx_event *ev)
{
	return cpx_event_verified(ev) ? ev->signer.country : NULL;
}

const char *
cpx_event_signer_node(const struct cpx_event *ev)
{
	return cpx_event_verified(ev) ? ev->signer.node : NULL;
}

/*
 * The same writers as `cpx subscribe --json` and `cpx-audit dump`, so a
 * host program and the tools print an alert alike.
 */
char *
cpx_event_json(const struct cpx_event *ev)
{
	struct alert_json_delivery d;
	json_t *o = NULL;
	char *line = NULL;

	if (cpx_event_verified(ev)) {
		memset(&d, 0, sizeof(d));
		d.seq = ev->seq;
		d.accepted_at = ev->accepted_at;
		d.alert = ev->alert;
		d.verified = 1;
		d.signer_node = ev->signer.node;
		d.signer_country = ev->signer.country;
		d.replayed = ev->replayed;
		line = alert_json_delivery_line(&d);
	} else if (ev->kind == CPX_EV_AUDIT_RECORD && ev->record != NULL) {
		if ((o = json_out_record(ev->record)) != NULL)
			line = json_out_line(o);
		json_decref(o);
	}
	return line;
}

void
cpx_free(void *p)
{
	free(p);
}

const char *
cpx_reason_name(int reason)
{
	return alert_reason_name(reason);
}

/*
 * Send (timeout_ms < 0) or publish and wait. The library fills an empty
 * id and origin with buffers of its own; the parser's pointers go back
 * before the alert is freed.
 */
static int
publish_json(struct cpx_client *c, const char *json, size_t len,
    int timeout_ms, uint64_t *request_id, struct cpx_result *res)
{
	Cpx__Alert *a = NULL;
	char *id, *origin;
	int rc = -1;

	if (json == NULL) {
		snprintf(res->text, sizeof(res->text), "no alert given");
		goto done;
	}
	if ((a = alert_json_parse(json, len, res->text,
	    sizeof(res->text))) == NULL)
		goto done;
	id = a->id;
	origin = a->origin;
	if (timeout_ms < 0)
		rc = cpx_publish_send(c, a, request_id, res->text,
		    sizeof(res->text));
	else
		rc = cpx_publish(c, a, timeout_ms, res);
	if (rc == 0)
		log_debug("alert %s: %s", a->id, timeout_ms < 0 ? "sent" :
		    "accepted");
	a->id = id;
	a->origin = origin;
done:
	if (rc == -1 && res->reason == 0)
		res->reason = CPX__REASON__REASON_INVALID_ALERT;
	alert_json_free(&a);
	return rc;
}

int
cpx_publish_json_send(struct cpx_client *c, const char *json, size_t len,
    uint64_t *request_id, char *err, size_t errlen)
{
	struct cpx_result res;

	memset(&res, 0, sizeof(res));
	*request_id = 0;
	if (publish_json(c, json, len, -1, request_id, &res) == -1) {
		snprintf(err, errlen, "%s", res.text);
		return -1;
	}
	return 0;
}

int
cpx_publish_json(struct cpx_client *c, const char *json, size_t len,
    int timeout_ms, struct cpx_result *res)
{
	uint64_t rid;

	memset(res, 0, sizeof(*res));
	if (timeout_ms < 0)
		timeout_ms = 0;
	return publish_json(c, json, len, timeout_ms, &rid, res);
}

/* Free what filters_build made; accepts NULL. */
static void
filters_free(Cpx__Filter **f, size_t n)
{
	size_t i;

	if (f == NULL)
		return;
	for (i = 0; i < n; i++) {
		if (f[i] == NULL)
			continue;
		free(f[i]->origins);
		free(f[i]->regions);
		free(f[i]->categories);
		free(f[i]);
	}
	free(f);
}

/* Fill one protobuf filter from a public one; -1 with err[] if bad. */
static int
filter_build(const struct cpx_filter *pf, size_t i, Cpx__Filter *f,
    char *err, size_t errlen)
{
	size_t j;
	int v;

	if (pf->norigins > CPX_MAX_FILTER_ORIGINS ||
	    pf->nregions > CPX_MAX_FILTER_REGIONS ||
	    pf->ncategories > CPX_MAX_FILTER_CATS ||
	    (pf->norigins && pf->origins == NULL) ||
	    (pf->nregions && pf->regions == NULL) ||
	    (pf->ncategories && pf->categories == NULL)) {
		snprintf(err, errlen, "filter %zu: more than %u origins, %u "
		    "regions or %u categories, or a count without its list",
		    i, CPX_MAX_FILTER_ORIGINS, CPX_MAX_FILTER_REGIONS,
		    CPX_MAX_FILTER_CATS);
		return -1;
	}
	/* A NULL string would reach the packer as a crash, not a refusal. */
	for (j = 0; j < pf->norigins; j++)
		if (pf->origins[j] == NULL)
			goto null_string;
	for (j = 0; j < pf->nregions; j++)
		if (pf->regions[j] == NULL)
			goto null_string;
	if ((pf->norigins && (f->origins = calloc(pf->norigins,
	    sizeof(char *))) == NULL) ||
	    (pf->nregions && (f->regions = calloc(pf->nregions,
	    sizeof(char *))) == NULL) ||
	    (pf->ncategories && (f->categories = calloc(pf->ncategories,
	    sizeof(Cpx__Category))) == NULL)) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (j = 0; j < pf->norigins; j++)
		f->origins[j] = (char *)pf->origins[j];
	f->n_origins = pf->norigins;
	for (j = 0; j < pf->nregions; j++)
		f->regions[j] = (char *)pf->regions[j];
	f->n_regions = pf->nregions;
	for (j = 0; j < pf->ncategories; j++) {
		if (pf->categories[j] == NULL ||
		    (v = alert_category_parse(pf->categories[j])) == -1) {
			snprintf(err, errlen, "filter %zu: category %zu: not "
			    "one of %s", i, j, alert_category_choices());
			return -1;
		}
		f->categories[j] = (Cpx__Category)v;
	}
	f->n_categories = pf->ncategories;
	if (pf->min_severity != NULL) {
		if ((v = alert_severity_parse(pf->min_severity)) == -1) {
			snprintf(err, errlen, "filter %zu: min_severity: not "
			    "one of %s", i, alert_severity_choices());
			return -1;
		}
		f->min_severity = (Cpx__Severity)v;
	}
	return 0;
null_string:
	snprintf(err, errlen, "filter %zu: an origin or region is NULL", i);
	return -1;
}

/*
 * Turn public filters into protobuf ones. The strings are borrowed from
 * the caller's (only the arrays are ours). Every shape the wire checks
 * (counts, country codes, region names) is checked by wire_filters_check,
 * the broker's own check. Returns 0 with *out (NULL for n == 0; free
 * with filters_free), or -1 with err[] naming the filter and the part.
 */
static int
filters_build(const struct cpx_filter *pf, size_t n, Cpx__Filter ***out,
    char *err, size_t errlen)
{
	Cpx__Filter **f = NULL;
	size_t i;

	*out = NULL;
	if (n == 0)
		return 0;
	if (pf == NULL || n > CPX_MAX_FILTERS) {
		snprintf(err, errlen, "%zu filters: at most %u, in an array",
		    n, CPX_MAX_FILTERS);
		return -1;
	}
	if ((f = calloc(n, sizeof(*f))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (i = 0; i < n; i++) {
		if ((f[i] = malloc(sizeof(*f[i]))) == NULL) {
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
		cpx__filter__init(f[i]);
		if (filter_build(&pf[i], i, f[i], err, errlen) == -1)
			goto fail;
	}
	if (wire_filters_check(f, n, err, errlen) == -1)
		goto fail;
	*out = f;
	return 0;
fail:
	filters_free(f, n);
	return -1;
}

int
cpx_subscribe_to(struct cpx_client *c, const struct cpx_filter *filters,
    size_t nfilters, int resume, uint64_t after, uint64_t *request_id,
    char *err, size_t errlen)
{
	Cpx__Filter **f = NULL;
	int rc = -1;

	*request_id = 0;
	if (filters_build(filters, nfilters, &f, err, errlen) == -1)
		return -1;
	if ((rc = cpx_subscribe(c, f, nfilters, resume, after,
	    request_id)) == -1)
		snprintf(err, errlen, "cannot subscribe: %s",
		    cpx_client_error(c)[0] ? cpx_client_error(c) :
		    "not connected");
	else
		log_debug("subscribing with %zu filter(s), request %" PRIu64,
		    nfilters, *request_id);
	filters_free(f, nfilters);
	return rc;
}

int
cpx_replay_start(struct cpx_client *c, const struct cpx_replay_spec *spec,
    uint64_t *request_id, char *err, size_t errlen)
{
	Cpx__ReplayRequest rq = CPX__REPLAY_REQUEST__INIT;
	Cpx__Filter **f = NULL;
	int rc = -1;

	*request_id = 0;
	if (filters_build(spec->filters, spec->nfilters, &f, err,
	    errlen) == -1)
		return -1;
	rq.from_seq = spec->from_seq;
	rq.to_seq = spec->to_seq;
	rq.from_time = spec->from_time;
	rq.to_time = spec->to_time;
	rq.filters = f;
	rq.n_filters = spec->nfilters;
	rq.all_kinds = spec->all_kinds != 0;
	if ((rc = cpx_replay(c, &rq, request_id)) == -1)
		snprintf(err, errlen, "cannot start the replay: not "
		    "connected, or 16 replays already running");
	filters_free(f, spec->nfilters);
	return rc;
}
