/*
 * verifier.c: the verification actors (see verifier.h). Owns the worker
 * threads, their inproc sockets and their trust stores. Messages are the
 * pointer of a job (8 bytes) or a control word; ownership of a job moves
 * with its pointer.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "alert.h"
#include "log.h"
#include "sign.h"
#include "verifier.h"
#include "verify.h"

#define VERIFIER_MAX	64
#define RESULTS_EP	"inproc://cpx-verify-results"

enum ctl {
	CTL_JOB = 1,
	CTL_RELOAD,
	CTL_STOP
};

/* What travels on a worker's inproc socket. */
struct msg {
	enum ctl		 ctl;
	struct verify_job	*job;
	char			 crl[512];
};

struct worker {
	unsigned int	 index;
	void		*zctx;
	void		*in;		/* PAIR, bound by the main thread */
	pthread_t	 thread;
	int		 started;
	char		 ca[512];
	char		 crl[512];
	char		 err[256];
	volatile int	 ready;		/* 1 ok, -1 failed at start */
};

struct verifier {
	void		*zctx;
	void		*results;	/* PULL, main thread */
	struct worker	 w[VERIFIER_MAX];
	unsigned int	 n;
	size_t		 inflight;
};

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
	Cpx__SignedAlert *sa = j->env->publish->alert;

	j->alert = NULL;
	if (verify_signed(t, &j->peer, sa, j->now_ms, j->max_skew_ms,
	    &j->alert, &j->signer, &j->reason, j->why, sizeof(j->why)) == 0) {
		j->rc = 0;
		return;
	}
	j->rc = -1;
}

static int
send_msg(void *sock, const struct msg *m)
{
	return zmq_send(sock, m, sizeof(*m), 0) == (int)sizeof(*m) ? 0 : -1;
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	struct trust *t = NULL;
	void *in = NULL, *out = NULL;
	struct msg m;
	char ep[64], err[256];
	int rc;

	snprintf(ep, sizeof(ep), "inproc://cpx-verify-%u", w->index);
	in = zmq_socket(w->zctx, ZMQ_PAIR);
	out = zmq_socket(w->zctx, ZMQ_PUSH);
	if (in == NULL || out == NULL || zmq_connect(in, ep) == -1 ||
	    zmq_connect(out, RESULTS_EP) == -1) {
		snprintf(w->err, sizeof(w->err), "worker %u: sockets: %s",
		    w->index, zmq_strerror(errno));
		__atomic_store_n(&w->ready, -1, __ATOMIC_RELEASE);
		goto done;
	}
	if ((t = trust_new(w->ca, w->crl[0] ? w->crl : NULL, w->err,
	    sizeof(w->err))) == NULL) {
		__atomic_store_n(&w->ready, -1, __ATOMIC_RELEASE);
		goto done;
	}
	__atomic_store_n(&w->ready, 1, __ATOMIC_RELEASE);
	for (;;) {
		rc = zmq_recv(in, &m, sizeof(m), 0);
		if (rc == -1 && errno == EINTR)
			continue;
		if (rc != (int)sizeof(m) || m.ctl == CTL_STOP)
			break;
		if (m.ctl == CTL_RELOAD) {
			if (trust_reload_crl(t, m.crl, err, sizeof(err)) == -1)
				log_warnx("verifier %u: %s; keeping the previous "
				    "CRL", w->index, err);
			continue;
		}
		verify_job_run(m.job, t);
		/* The job belongs to the main thread again once sent. */
		while (zmq_send(out, &m, sizeof(m), 0) == -1 && errno == EINTR)
			;
	}
done:
	trust_free(&t);
	if (in != NULL)
		zmq_close(in);
	if (out != NULL)
		zmq_close(out);
	return NULL;
}

struct verifier *
verifier_new(void *zctx, unsigned int nthreads, const char *ca,
    const char *crl, char *err, size_t errlen)
{
	struct verifier *v;
	struct worker *w;
	char ep[64];
	unsigned int i;
	int r;

	if (nthreads == 0 || nthreads > VERIFIER_MAX) {
		snprintf(err, errlen, "verify_threads must be 1..%d",
		    VERIFIER_MAX);
		return NULL;
	}
	if ((v = calloc(1, sizeof(*v))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	v->zctx = zctx;
	if ((v->results = zmq_socket(zctx, ZMQ_PULL)) == NULL ||
	    zmq_bind(v->results, RESULTS_EP) == -1) {
		snprintf(err, errlen, "verifier: %s", zmq_strerror(errno));
		goto fail;
	}
	for (i = 0; i < nthreads; i++) {
		w = &v->w[i];
		w->index = i;
		w->zctx = zctx;
		snprintf(w->ca, sizeof(w->ca), "%s", ca);
		snprintf(w->crl, sizeof(w->crl), "%s", crl ? crl : "");
		snprintf(ep, sizeof(ep), "inproc://cpx-verify-%u", i);
		if ((w->in = zmq_socket(zctx, ZMQ_PAIR)) == NULL ||
		    zmq_bind(w->in, ep) == -1) {
			snprintf(err, errlen, "verifier: %s",
			    zmq_strerror(errno));
			goto fail;
		}
		if ((r = pthread_create(&w->thread, NULL, worker_main, w)) !=
		    0) {
			snprintf(err, errlen, "verifier: pthread_create: %s",
			    strerror(r));
			goto fail;
		}
		w->started = 1;
		v->n++;
		/* Start-up only: wait for the worker to load its trust. */
		while (__atomic_load_n(&w->ready, __ATOMIC_ACQUIRE) == 0)
			sched_yield();
		if (w->ready == -1) {
			snprintf(err, errlen, "%s", w->err);
			goto fail;
		}
	}
	return v;
fail:
	verifier_free(&v);
	return NULL;
}

void
verifier_free(struct verifier **vp)
{
	struct verifier *v;
	struct verify_job *j;
	struct msg m;
	unsigned int i;

	if (vp == NULL || (v = *vp) == NULL)
		return;
	memset(&m, 0, sizeof(m));
	m.ctl = CTL_STOP;
	for (i = 0; i < v->n; i++) {
		if (v->w[i].started) {
			if (v->w[i].ready == 1)
				(void)send_msg(v->w[i].in, &m);
			pthread_join(v->w[i].thread, NULL);
		}
	}
	/* Jobs that came back and were not taken. */
	while (v->results != NULL && (j = verifier_take(v)) != NULL)
		verify_job_free(&j);
	for (i = 0; i < VERIFIER_MAX; i++)
		if (v->w[i].in != NULL)
			zmq_close(v->w[i].in);
	if (v->results != NULL)
		zmq_close(v->results);
	free(v);
	*vp = NULL;
}

void *
verifier_socket(struct verifier *v)
{
	return v->results;
}

int
verifier_submit(struct verifier *v, struct verify_job **jp)
{
	struct worker *w = &v->w[(*jp)->session_id % v->n];
	struct msg m;

	memset(&m, 0, sizeof(m));
	m.ctl = CTL_JOB;
	m.job = *jp;
	if (send_msg(w->in, &m) == -1)
		return -1;
	*jp = NULL;
	v->inflight++;
	return 0;
}

struct verify_job *
verifier_take(struct verifier *v)
{
	struct msg m;

	if (zmq_recv(v->results, &m, sizeof(m), ZMQ_DONTWAIT) !=
	    (int)sizeof(m))
		return NULL;
	v->inflight--;
	return m.job;
}

size_t
verifier_inflight(const struct verifier *v)
{
	return v->inflight;
}

int
verifier_reload_crl(struct verifier *v, const char *crl)
{
	struct msg m;
	unsigned int i;
	int rc = 0;

	memset(&m, 0, sizeof(m));
	m.ctl = CTL_RELOAD;
	snprintf(m.crl, sizeof(m.crl), "%s", crl);
	for (i = 0; i < v->n; i++)
		if (send_msg(v->w[i].in, &m) == -1)
			rc = -1;
	return rc;
}
