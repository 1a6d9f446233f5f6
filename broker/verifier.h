/*
 * verifier.h: a pool of verification threads (a lib/workpool.h pool).
 * ECDSA verification is the broker's most expensive step per alert
 * (about 45 us on this class of machine), so under load it runs beside
 * the I/O thread instead of inside it (publish.c verifies a turn's first
 * few publishes itself when their session has none here). Each worker
 * is an actor: it owns its own trust store, receives jobs over inproc
 * only, takes ownership of each job until it sends it back, and shares
 * nothing with other threads, so no lock is needed.
 *
 * Jobs of one session always go to the same worker, so they come back in
 * the order they were submitted.
 */
#ifndef CPX_VERIFIER_H
#define CPX_VERIFIER_H

#include <stddef.h>
#include <stdint.h>

#include "identity.h"
#include "proto/cpx.pb-c.h"
#include "trace.h"

struct session;

/*
 * One publish to verify (verify_job_new). The submitter fills the inputs.
 * The session's certificate is copied in, not borrowed, so the worker
 * reads nothing the network thread owns.
 */
struct verify_job {
	/* inputs */
	struct session	*session;	/* borrowed: see session->jobs */
	uint64_t	 session_id;
	Cpx__Envelope	*env;		/* owned: the Publish */
	struct identity	 peer;		/* the session's verified identity */
	int		 may_relay;	/* the session's relay right */
	int64_t		 now_ms;
	int64_t		 max_skew_ms;
	/* results, set by the worker */
	int		 rc;		/* 0: signature, origin, form ok */
	int		 reason;
	char		 why[256];
	Cpx__Alert	*alert;		/* owned, when rc == 0 */
	struct identity	 signer;
	int		 relayed;	/* signer is not the session's cert */
	struct trace	 trace;		/* stage stamps (CPX_TRACE builds) */
	/* input: the session's certificate (DER), sized by verify_job_new */
	size_t		 peer_cert_len;
	uint8_t		 peer_cert[];
};

struct verifier;

/*
 * Start nthreads workers (1..64), each with its own trust built from ca
 * and crl. Returns an owned verifier (verifier_free) or NULL with err[].
 */
struct verifier *verifier_new(void *zctx, unsigned int nthreads,
	    const char *ca, const char *crl, char *err, size_t errlen);
/* Stop and join the workers; jobs still inside are freed. */
void	verifier_free(struct verifier **v);

/* The socket results arrive on, for zmq_poll. */
void	*verifier_socket(struct verifier *v);

/*
 * Hand *job over to a worker (picked by session id); *job is NULLed.
 * Returns 0, or -1 if it could not be queued (the job is then left with
 * the caller).
 */
int	verifier_submit(struct verifier *v, struct verify_job **job)
	    __attribute__((warn_unused_result));

/* A finished job (owned by the caller, verify_job_free) or NULL. */
struct verify_job *verifier_take(struct verifier *v);

/* Jobs submitted and not yet taken back. */
size_t	verifier_inflight(const struct verifier *v);

/*
 * Ask every worker to reload the CRL; jobs queued before this call are
 * checked against the old one, later jobs against the new one. A worker
 * whose reload fails keeps its old CRL and logs why.
 */
int	verifier_reload_crl(struct verifier *v, const char *crl)
	    __attribute__((warn_unused_result));

/*
 * A zeroed job holding a copy of the session's certificate
 * cert[0..len). Returns it (owned by the caller, verify_job_free) or NULL.
 */
struct verify_job *verify_job_new(const uint8_t *cert, size_t len);
void	verify_job_free(struct verify_job **job);

/*
 * The checks a worker runs (verify_signed): signature and signer chain,
 * signer country = session country, signer certificate = session
 * certificate unless the job may relay, origin = signer country, and the
 * alert's form.
 */
void	verify_job_run(struct verify_job *job, struct trust *t);

#endif
