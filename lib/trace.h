/*
 * trace.h: benchmark-only stage stamps of one publish (build option
 * CPX_TRACE, off by default and in the test suite). With it on, the broker
 * stamps CLOCK_MONOTONIC nanoseconds at each stage of a publish and sends
 * them in the Ack and in every Delivery of the alert (trace_ns of
 * proto/cpx.proto); the benchmark, whose publisher and subscribers are
 * threads of one process on the broker's machine and so read the same
 * clock, adds its own stamps and prints where W2's latency goes
 * (BENCHMARKS.md). With it off every macro here is empty and struct
 * trace is one unused byte: nothing is read from the clock and nothing is
 * sent.
 *
 * Nothing in the broker reads a trace_ns it receives (nodes never send
 * Acks or Deliveries), and the benchmark only reads an array of exactly
 * TRACE_BROKER_N stamps.
 */
#ifndef CPX_TRACE_H
#define CPX_TRACE_H

#include <stddef.h>
#include <stdint.h>

/* The broker's stamps, in this order in trace_ns. */
enum trace_stage {
	TRACE_DECODED = 0,	/* Publish decoded on the network thread */
	TRACE_SUBMITTED,	/* handed to a verifier thread (or inline) */
	TRACE_VERIFY_START,	/* a verifier began the signature check */
	TRACE_VERIFY_END,	/* ... and ended it */
	TRACE_TAKEN,		/* the result back on the network thread */
	TRACE_APPENDED,		/* audit record appended (turn's batch) */
	TRACE_COMMIT_START,	/* the turn's group commit began */
	TRACE_FSYNC_END,	/* audit_commit returned: durable */
	TRACE_QUEUED,		/* Ack / Delivery queued to the session */
	TRACE_BROKER_N
};

#ifdef CPX_TRACE

#include <time.h>

struct trace {
	uint64_t	t[TRACE_BROKER_N];
};

static inline uint64_t
trace_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

#define TRACE_STAMP(tr, stage)	((tr)->t[(stage)] = trace_now())
#define TRACE_COPY(dst, src)	(*(dst) = *(src))
#define TRACE_SET(dst, stage, src) ((dst)->t[(stage)] = (src)->t[(stage)])
/* Point message m's trace_ns at tr's stamps (tr outlives the encode). */
#define TRACE_ATTACH(m, tr)	do {					\
	if ((tr) != NULL) {						\
		(m)->n_trace_ns = TRACE_BROKER_N;			\
		(m)->trace_ns = (uint64_t *)(tr)->t;			\
	}								\
} while (0)

struct cpx_client;

/*
 * Inside an event callback of a client that verifies inline (no
 * verify_threads): the broker's stamps of the Ack or Delivery being
 * handed over (NULL, *n = 0 if it carried none) and, in *rx_ns, when the
 * frame was decoded by the client, before its signature was checked.
 */
const uint64_t	*cpx_client_trace(const struct cpx_client *c, size_t *n,
		    uint64_t *rx_ns);

#else

struct trace {
	char	unused;
};

#define TRACE_STAMP(tr, stage)	((void)(tr))
#define TRACE_COPY(dst, src)	((void)(dst), (void)(src))
#define TRACE_SET(dst, stage, src) ((void)(dst), (void)(src))
#define TRACE_ATTACH(m, tr)	((void)(m), (void)(tr))

#endif /* CPX_TRACE */

#endif
