/*
 * verifier.c: the broker's verification actors (see verifier.h), a
 * workpool (lib/workpool.c) whose workers each own a trust store built
 * from the broker's CA and CRL.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "sign.h"
#include "verifier.h"
#include "verify.h"
#include "workpool.h"

struct verifier {
	struct workpool		*pool;
	struct workpool_ops	 ops;
	char			 ca[512];
	char			 crl[512];
};

struct verify_job *
verify_job_new(const uint8_t *cert, size_t len)
{
	struct verify_job *j;

	if (len > SIZE_MAX - sizeof(*j) ||
	    (j = calloc(1, sizeof(*j) + len)) == NULL)
		return NULL;
	if (len > 0)
		memcpy(j->peer_cert, cert, len);
	j->peer_cert_len = len;
	return j;
}

void
verify_job_free(struct verify_job **jp)
{
	struct verify_job *j;

	if (jp == NULL || (j = *jp) == NULL)
		return;
	if (j->env != NULL)
		cpx__envelope__free_unpacked(j->env, NULL);
	if (j->alert != NULL)
		cpx__alert__free_unpacked(j->alert, NULL);
	free(j);
	*jp = NULL;
}

void
verify_job_run(struct verify_job *j, struct trust *t)
{
	struct verify_peer vp;

	vp.id = &j->peer;
	vp.cert = j->peer_cert_len > 0 ? j->peer_cert : NULL;
	vp.cert_len = j->peer_cert_len;
	vp.may_relay = j->may_relay;
	j->alert = NULL;
	TRACE_STAMP(&j->trace, TRACE_VERIFY_START);
	j->rc = verify_signed(t, &vp, j->env->publish->alert, j->now_ms,
	    j->max_skew_ms, &j->alert, &j->signer, &j->relayed, &j->reason,
	    j->why, sizeof(j->why));
	TRACE_STAMP(&j->trace, TRACE_VERIFY_END);
}

static void *
worker_init(void *arg, char *err, size_t errlen)
{
	struct verifier *v = arg;

	return trust_new(v->ca, v->crl[0] ? v->crl : NULL, err, errlen);
}

static void
worker_run(void *state, void *job)
{
	verify_job_run(job, state);
}

static void
worker_reload(void *state, const char *crl)
{
	char err[256];

	if (trust_reload_crl(state, crl, err, sizeof(err)) == -1)
		log_warnx("verifier: %s; keeping the previous CRL", err);
}

static void
worker_fini(void *state)
{
	struct trust *t = state;

	trust_free(&t);
}

static void
free_job(void *job)
{
	struct verify_job *j = job;

	verify_job_free(&j);
}

struct verifier *
verifier_new(void *zctx, unsigned int nthreads, const char *ca,
    const char *crl, char *err, size_t errlen)
{
	struct verifier *v;

	if ((v = calloc(1, sizeof(*v))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	snprintf(v->ca, sizeof(v->ca), "%s", ca);
	snprintf(v->crl, sizeof(v->crl), "%s", crl ? crl : "");
	v->ops.init = worker_init;
	v->ops.run = worker_run;
	v->ops.ctl = worker_reload;
	v->ops.fini = worker_fini;
	if ((v->pool = workpool_new(zctx, nthreads, &v->ops, v, err,
	    errlen)) == NULL) {
		free(v);
		return NULL;
	}
	return v;
}

void
verifier_free(struct verifier **vp)
{
	if (vp == NULL || *vp == NULL)
		return;
	workpool_free(&(*vp)->pool, free_job);
	free(*vp);
	*vp = NULL;
}

void *
verifier_socket(struct verifier *v)
{
	return workpool_socket(v->pool);
}

int
verifier_submit(struct verifier *v, struct verify_job **jp)
{
	if (workpool_submit(v->pool, (*jp)->session_id, *jp) == -1)
		return -1;
	*jp = NULL;
	return 0;
}

struct verify_job *
verifier_take(struct verifier *v)
{
	return workpool_take(v->pool);
}

size_t
verifier_inflight(const struct verifier *v)
{
	return workpool_inflight(v->pool);
}

int
verifier_reload_crl(struct verifier *v, const char *crl)
{
	return workpool_control(v->pool, crl);
}
