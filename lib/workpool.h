/*
 * workpool.h: a pool of worker threads as actors. Each worker owns the
 * state its init function returns (a trust store, say), receives jobs over
 * inproc only, owns a job from the moment it is submitted until it is sent
 * back, and shares nothing with the other threads: no locks anywhere.
 * Jobs submitted with the same key go to the same worker and come back in
 * the order they were submitted. Both the broker (signature checks before
 * accepting) and the client library (checks of deliveries) use it.
 *
 * Nothing here blocks: the pipes between the threads are unbounded and
 * workpool_submit never waits. The caller bounds memory by keeping
 * workpool_inflight() under a limit of its own before it submits more.
 */
#ifndef CPX_WORKPOOL_H
#define CPX_WORKPOOL_H

#include <stddef.h>
#include <stdint.h>

/* Per-worker state, created on the worker's thread; NULL with err[]. */
typedef void	*workpool_init_fn(void *arg, char *err, size_t errlen);
/* Do one job (on a worker thread). */
typedef void	 workpool_run_fn(void *state, void *job);
/* A control word broadcast to every worker (for example, reload a CRL). */
typedef void	 workpool_ctl_fn(void *state, const char *word);
/* Free the state (on the worker's thread, at the end). */
typedef void	 workpool_fini_fn(void *state);

struct workpool_ops {
	workpool_init_fn	*init;
	workpool_run_fn		*run;
	workpool_ctl_fn		*ctl;	/* may be NULL */
	workpool_fini_fn	*fini;
};

struct workpool;

/*
 * Start n workers (1..64) in zctx. ops and arg are borrowed for the
 * pool's life. Waits until every worker's init returned (start-up only).
 * Returns an owned pool (workpool_free) or NULL with err[].
 */
struct workpool *workpool_new(void *zctx, unsigned int n,
	    const struct workpool_ops *ops, void *arg, char *err,
	    size_t errlen);

/*
 * Stop and join the workers. Jobs that came back and were not taken are
 * passed to free_job (may be NULL).
 */
void	workpool_free(struct workpool **p, void (*free_job)(void *));

/* Hand job to worker key % n. 0, or -1 (the job stays the caller's). */
int	workpool_submit(struct workpool *p, uint64_t key, void *job)
	    __attribute__((warn_unused_result));
/* A finished job, now the caller's again, or NULL if none is ready. */
void	*workpool_take(struct workpool *p);
/* The socket finished jobs arrive on, for zmq_poll. */
void	*workpool_socket(struct workpool *p);
/* Jobs submitted and not yet taken. */
size_t	 workpool_inflight(const struct workpool *p);
/*
 * Broadcast word (at most 511 bytes) to every worker's ctl function, after
 * the jobs already queued to it. 0 or -1.
 */
int	workpool_control(struct workpool *p, const char *word)
	    __attribute__((warn_unused_result));

#endif
