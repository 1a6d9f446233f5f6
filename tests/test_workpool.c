/*
 * test_workpool.c: lib/workpool.c with real threads and inproc sockets:
 * every job comes back once, jobs with one key come back in order, a
 * control word reaches every worker after the jobs queued before it, and
 * a worker whose init fails makes workpool_new fail with its reason.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <zmq.h>

#include "workpool.h"

struct state {
	int	generation;	/* bumped by the control word "next" */
};

struct job {
	uint64_t	key;
	int		index;
	int		generation;	/* seen when run */
	pthread_t	thread;
};

static void *
init_ok(void *arg, char *err, size_t errlen)
{
	(void)arg;
	(void)err;
	(void)errlen;
	return calloc(1, sizeof(struct state));
}

static void *
init_fail(void *arg, char *err, size_t errlen)
{
	(void)arg;
	snprintf(err, errlen, "no trust store for you");
	return NULL;
}

static void
run(void *state, void *job)
{
	struct job *j = job;

	j->generation = ((struct state *)state)->generation;
	j->thread = pthread_self();
}

static void
ctl(void *state, const char *word)
{
	if (strcmp(word, "next") == 0)
		((struct state *)state)->generation++;
}

static void
fini(void *state)
{
	free(state);
}

static const struct workpool_ops ops = { init_ok, run, ctl, fini };

#define NJOBS	3000
#define NKEYS	7

static struct job *
take_one(struct workpool *p)
{
	zmq_pollitem_t it = { workpool_socket(p), 0, ZMQ_POLLIN, 0 };
	struct job *j;
	int tries;

	for (tries = 0; tries < 500; tries++) {
		if ((j = workpool_take(p)) != NULL)
			return j;
		(void)zmq_poll(&it, 1, 10);
	}
	return NULL;
}

static void
test_order_and_control(void **state)
{
	static struct job jobs[NJOBS];
	int last[NKEYS], seen[NJOBS], i;
	void *zctx = zmq_ctx_new();
	struct workpool *p;
	struct job *j;
	char err[256];

	(void)state;
	p = workpool_new(zctx, 3, &ops, NULL, err, sizeof(err));
	if (p == NULL)
		fail_msg("%s", err);
	memset(seen, 0, sizeof(seen));
	for (i = 0; i < NKEYS; i++)
		last[i] = -1;
	for (i = 0; i < NJOBS; i++) {
		jobs[i].key = (uint64_t)(i % NKEYS);
		jobs[i].index = i;
		if (i == NJOBS / 2)	/* jobs after this see generation 1 */
			assert_int_equal(workpool_control(p, "next"), 0);
		assert_int_equal(workpool_submit(p, jobs[i].key, &jobs[i]), 0);
	}
	for (i = 0; i < NJOBS; i++) {
		j = take_one(p);
		assert_non_null(j);
		seen[j->index]++;
		/* Per key, back in the order submitted. */
		assert_true(j->index > last[j->key]);
		last[j->key] = j->index;
		assert_int_equal(j->generation, j->index >= NJOBS / 2);
	}
	for (i = 0; i < NJOBS; i++)
		assert_int_equal(seen[i], 1);
	assert_int_equal(workpool_inflight(p), 0);
	assert_null(workpool_take(p));
	/* Same key, same worker thread. */
	assert_true(pthread_equal(jobs[0].thread, jobs[NKEYS].thread));
	workpool_free(&p, NULL);
	assert_null(p);
	zmq_ctx_term(zctx);
}

static void
test_init_failure(void **state)
{
	static const struct workpool_ops bad = { init_fail, run, ctl, fini };
	void *zctx = zmq_ctx_new();
	char err[256] = "";

	(void)state;
	assert_null(workpool_new(zctx, 2, &bad, NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "no trust store"));
	assert_null(workpool_new(zctx, 0, &ops, NULL, err, sizeof(err)));
	assert_null(workpool_new(zctx, 65, &ops, NULL, err, sizeof(err)));
	zmq_ctx_term(zctx);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_order_and_control),
		cmocka_unit_test(test_init_failure),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
