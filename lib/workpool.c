/*
 * workpool.c: see workpool.h. Owns the threads, one PAIR socket per worker
 * (bound here, connected by the worker) and one PULL socket for finished
 * jobs. A message is a struct msg copied whole; a job's pointer travels in
 * it, and with it the job's ownership.
 *
 * No thread ever blocks on another: every inproc pipe here is unbounded
 * (high-water mark 0), so a send never waits for the other side to read,
 * and the submitter never blocks either (ZMQ_DONTWAIT). Memory is bounded
 * by the caller instead, which keeps the jobs in flight under a limit of
 * its own (workpool_inflight): a bounded pipe would be a second bound, and
 * two threads each waiting for the other to drain its bounded pipe is
 * exactly the deadlock this avoids.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "workpool.h"

#define WORKPOOL_MAX	64

enum ctl {
	MSG_JOB = 1,
	MSG_CTL,
	MSG_STOP
};

struct msg {
	enum ctl	 kind;
	void		*job;
	char		 word[512];
};

struct worker {
	struct workpool	*pool;
	unsigned int	 index;
	void		*in;		/* PAIR, bound by the pool */
	pthread_t	 thread;
	int		 started;
	volatile int	 ready;		/* 1 ok, -1 init failed */
	char		 err[256];
};

struct workpool {
	void				*zctx;
	const struct workpool_ops	*ops;
	void				*arg;
	char				 results_ep[64];
	void				*results;	/* PULL */
	struct worker			 w[WORKPOOL_MAX];
	unsigned int			 n;
	size_t				 inflight;
};

static void
ep_name(char *out, size_t len, const struct workpool *p, const char *what,
    unsigned int i)
{
	/* Unique within the process: several pools may share a context. */
	snprintf(out, len, "inproc://cpx-workpool-%p-%s-%u", (const void *)p,
	    what, i);
}

/* Unbounded pipes both ways (see the top of this file). */
static int
unbounded(void *sock)
{
	int zero = 0;

	return zmq_setsockopt(sock, ZMQ_SNDHWM, &zero, sizeof(zero)) == -1 ||
	    zmq_setsockopt(sock, ZMQ_RCVHWM, &zero, sizeof(zero)) == -1 ?
	    -1 : 0;
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	struct workpool *p = w->pool;
	void *in = NULL, *out = NULL, *state = NULL;
	struct msg m;
	char ep[96];
	int rc;

	ep_name(ep, sizeof(ep), p, "in", w->index);
	in = zmq_socket(p->zctx, ZMQ_PAIR);
	out = zmq_socket(p->zctx, ZMQ_PUSH);
	if (in == NULL || out == NULL || unbounded(in) == -1 ||
	    unbounded(out) == -1 || zmq_connect(in, ep) == -1 ||
	    zmq_connect(out, p->results_ep) == -1) {
		snprintf(w->err, sizeof(w->err), "worker %u: %s", w->index,
		    zmq_strerror(errno));
		__atomic_store_n(&w->ready, -1, __ATOMIC_RELEASE);
		goto done;
	}
	if ((state = p->ops->init(p->arg, w->err, sizeof(w->err))) == NULL) {
		__atomic_store_n(&w->ready, -1, __ATOMIC_RELEASE);
		goto done;
	}
	__atomic_store_n(&w->ready, 1, __ATOMIC_RELEASE);
	for (;;) {
		rc = zmq_recv(in, &m, sizeof(m), 0);
		if (rc == -1 && errno == EINTR)
			continue;
		if (rc != (int)sizeof(m) || m.kind == MSG_STOP)
			break;
		if (m.kind == MSG_CTL) {
			if (p->ops->ctl != NULL)
				p->ops->ctl(state, m.word);
			continue;
		}
		p->ops->run(state, m.job);
		while (zmq_send(out, &m, sizeof(m), 0) == -1 &&
		    errno == EINTR)
			;
	}
done:
	if (state != NULL)
		p->ops->fini(state);
	if (in != NULL)
		zmq_close(in);
	if (out != NULL)
		zmq_close(out);
	return NULL;
}

struct workpool *
workpool_new(void *zctx, unsigned int n, const struct workpool_ops *ops,
    void *arg, char *err, size_t errlen)
{
	struct workpool *p;
	struct worker *w;
	char ep[96];
	unsigned int i;
	int r, linger = 0;

	if (n == 0 || n > WORKPOOL_MAX) {
		snprintf(err, errlen, "worker threads must be 1..%d",
		    WORKPOOL_MAX);
		return NULL;
	}
	if ((p = calloc(1, sizeof(*p))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	p->zctx = zctx;
	p->ops = ops;
	p->arg = arg;
	ep_name(p->results_ep, sizeof(p->results_ep), p, "out", 0);
	if ((p->results = zmq_socket(zctx, ZMQ_PULL)) == NULL ||
	    zmq_setsockopt(p->results, ZMQ_LINGER, &linger,
	    sizeof(linger)) == -1 || unbounded(p->results) == -1 ||
	    zmq_bind(p->results, p->results_ep) == -1) {
		snprintf(err, errlen, "workpool: %s", zmq_strerror(errno));
		goto fail;
	}
	for (i = 0; i < n; i++) {
		w = &p->w[i];
		w->pool = p;
		w->index = i;
		ep_name(ep, sizeof(ep), p, "in", i);
		if ((w->in = zmq_socket(zctx, ZMQ_PAIR)) == NULL ||
		    zmq_setsockopt(w->in, ZMQ_LINGER, &linger,
		    sizeof(linger)) == -1 || unbounded(w->in) == -1 ||
		    zmq_bind(w->in, ep) == -1) {
			snprintf(err, errlen, "workpool: %s",
			    zmq_strerror(errno));
			goto fail;
		}
		if ((r = pthread_create(&w->thread, NULL, worker_main, w)) !=
		    0) {
			snprintf(err, errlen, "workpool: pthread_create: %s",
			    strerror(r));
			goto fail;
		}
		w->started = 1;
		p->n++;
		/* Start-up only: wait until the worker's state exists. */
		while (__atomic_load_n(&w->ready, __ATOMIC_ACQUIRE) == 0)
			sched_yield();
		if (w->ready == -1) {
			snprintf(err, errlen, "%s", w->err);
			goto fail;
		}
	}
	return p;
fail:
	workpool_free(&p, NULL);
	return NULL;
}

void
workpool_free(struct workpool **pp, void (*free_job)(void *))
{
	struct workpool *p;
	struct msg m;
	unsigned int i;
	void *job;

	if (pp == NULL || (p = *pp) == NULL)
		return;
	memset(&m, 0, sizeof(m));
	m.kind = MSG_STOP;
	for (i = 0; i < WORKPOOL_MAX; i++) {
		if (!p->w[i].started)
			continue;
		if (p->w[i].ready == 1)
			(void)zmq_send(p->w[i].in, &m, sizeof(m), 0);
		pthread_join(p->w[i].thread, NULL);
	}
	while (p->results != NULL && (job = workpool_take(p)) != NULL)
		if (free_job != NULL)
			free_job(job);
	for (i = 0; i < WORKPOOL_MAX; i++)
		if (p->w[i].in != NULL)
			zmq_close(p->w[i].in);
	if (p->results != NULL)
		zmq_close(p->results);
	free(p);
	*pp = NULL;
}

int
workpool_submit(struct workpool *p, uint64_t key, void *job)
{
	struct msg m;

	memset(&m, 0, sizeof(m));
	m.kind = MSG_JOB;
	m.job = job;
	/* Never waits: the pipe is unbounded, DONTWAIT is the guarantee. */
	if (zmq_send(p->w[key % p->n].in, &m, sizeof(m), ZMQ_DONTWAIT) !=
	    (int)sizeof(m))
		return -1;
	p->inflight++;
	return 0;
}

void *
workpool_take(struct workpool *p)
{
	struct msg m;

	if (zmq_recv(p->results, &m, sizeof(m), ZMQ_DONTWAIT) !=
	    (int)sizeof(m))
		return NULL;
	if (p->inflight > 0)
		p->inflight--;
	return m.job;
}

void *
workpool_socket(struct workpool *p)
{
	return p->results;
}

size_t
workpool_inflight(const struct workpool *p)
{
	return p->inflight;
}

int
workpool_control(struct workpool *p, const char *word)
{
	struct msg m;
	unsigned int i;
	int rc = 0;

	memset(&m, 0, sizeof(m));
	m.kind = MSG_CTL;
	if (strlen(word) >= sizeof(m.word))
		return -1;
	memcpy(m.word, word, strlen(word) + 1);
	for (i = 0; i < p->n; i++)
		if (zmq_send(p->w[i].in, &m, sizeof(m), ZMQ_DONTWAIT) !=
		    (int)sizeof(m))
			rc = -1;
	return rc;
}
