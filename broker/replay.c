/*
 * replay.c: reads the audit log through a cursor and keeps the records a
 * peer is entitled to and asked for. Live rules apply to history: an alert
 * a node could not have received live is not replayed to it, whatever its
 * filters say, and entitlement is the one fixed when the alert was
 * accepted (route.c), so a later policy change does not reach back into
 * history. Only the audit right sees every record kind. Reading is
 * bounded per call (a budget of records), so a request that matches
 * little cannot hold the loop for the length of the log.
 */
#include <stdio.h>
#include <stdlib.h>

#include "replay.h"
#include "route.h"

struct replay *
replay_new(struct audit *a, uint64_t from_seq, int64_t from_time,
    uint64_t to_seq, int64_t to_time, int all_kinds, int catch_up,
    uint64_t request_id, Cpx__Envelope **req, char *err, size_t errlen)
{
	struct replay *r;

	if ((r = calloc(1, sizeof(*r))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if ((r->cur = audit_cursor_new(a, from_seq, from_time, err,
	    errlen)) == NULL) {
		free(r);
		return NULL;
	}
	if (req != NULL) {
		r->req = *req;
		*req = NULL;
	}
	r->to_seq = to_seq;
	r->to_time = to_time;
	r->all_kinds = all_kinds;
	r->catch_up = catch_up;
	r->request_id = request_id;
	return r;
}

void
replay_free(struct replay **rp)
{
	struct replay *r;

	if (rp == NULL || (r = *rp) == NULL)
		return;
	audit_cursor_free(&r->cur);
	if (r->req != NULL)
		cpx__envelope__free_unpacked(r->req, NULL);
	free(r);
	*rp = NULL;
}

int
replay_allowed(const struct replay *r, const struct session *s)
{
	return s->rights.subscribe && (!r->all_kinds || s->rights.audit);
}

static int
wanted(const struct replay *r, const struct policy *p,
    const struct session *s, Cpx__Filter *const *filters, size_t nfilters,
    const Cpx__AuditRecord *rec)
{
	struct route_entitled e;
	Cpx__Alert *a;
	int known, ok;

	if (rec->kind != CPX__RECORD_KIND__RECORD_ALERT_ACCEPTED)
		return r->all_kinds;
	if (rec->alert == NULL)
		return 0;
	/* Who was entitled when it was accepted, not under today's policy. */
	known = route_entitled_from_record(rec, &e) == 0;
	if (known && !r->all_kinds && !route_may_have(p, s, &e, NULL))
		return 0;
	a = cpx__alert__unpack(NULL, rec->alert->alert.len,
	    rec->alert->alert.data);
	if (a == NULL)
		return 0;
	/* Written before records kept the list: today's policy decides. */
	ok = r->all_kinds || known || route_may_have(p, s, NULL, a);
	ok = ok &&
	    (nfilters == 0 || policy_filters_match(p, filters, nfilters, a));
	cpx__alert__free_unpacked(a, NULL);
	return ok;
}

int
replay_next(struct replay *r, const struct policy *p,
    const struct session *s, Cpx__Filter *const *filters, size_t nfilters,
    unsigned int *budget, Cpx__AuditRecord **rec, char *err, size_t errlen)
{
	Cpx__AuditRecord *x = NULL;
	uint64_t before, used;
	int rc;

	*rec = NULL;
	for (;;) {
		if (*budget == 0)
			return REPLAY_YIELD;
		/* Charge what was read, skipped records included. */
		before = audit_cursor_reads(r->cur);
		rc = audit_cursor_next(r->cur, &x, err, errlen);
		used = audit_cursor_reads(r->cur) - before;
		*budget = used >= *budget ? 0 : *budget - (unsigned int)used;
		if (rc <= 0)
			return rc;
		if (x->seq > r->to_seq ||
		    (r->to_time != 0 && x->time > r->to_time)) {
			cpx__audit_record__free_unpacked(x, NULL);
			return 0;
		}
		r->last_seq = x->seq;
		if (wanted(r, p, s, filters, nfilters, x)) {
			r->count++;
			*rec = x;
			return 1;
		}
		cpx__audit_record__free_unpacked(x, NULL);
	}
}
