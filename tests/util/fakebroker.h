/*
 * fakebroker.h: a broker that says only what the test tells it, for
 * testing how the client library treats a broker that lies. It is built
 * from the project's own pieces: a ZMQ_STREAM socket on 127.0.0.1, the
 * server side of lib/tlsconn.c and the test PKI's broker certificate, so
 * the client sees a genuine TLS session with the genuine broker. It runs
 * on its own thread (an actor: the test talks to it over inproc only),
 * so a test can block in cpx_client_connect or cpx_publish while it
 * answers.
 *
 * One client connection at a time. Envelopes the test sends before that
 * connection's TLS handshake has completed are held and sent, in order,
 * as soon as it has.
 */
#ifndef CPX_FAKEBROKER_H
#define CPX_FAKEBROKER_H

#include <stddef.h>
#include <stdint.h>

#include "proto/cpx.pb-c.h"

struct fakebroker;

/*
 * Start a fake broker with the test PKI's broker certificate and key,
 * listening on a free port of 127.0.0.1. Returns an owned fake broker
 * (fakebroker_free) or NULL with err[].
 */
struct fakebroker *fakebroker_new(char *err, size_t errlen);
/* Stop the thread, close the connection and free; NULLs *fb. */
void	fakebroker_free(struct fakebroker **fb);

/* "tcp://127.0.0.1:PORT", owned by fb. */
const char *fakebroker_endpoint(const struct fakebroker *fb);

/*
 * Send env to the client, once its TLS session is open (env is encoded
 * here: the caller keeps it). Returns 0, or -1 if it cannot be encoded.
 */
int	fakebroker_send(struct fakebroker *fb, const Cpx__Envelope *env)
	    __attribute__((warn_unused_result));

/*
 * End the current connection after what was sent before: close_notify
 * if notify, then the TCP connection. Returns 0 or -1.
 */
int	fakebroker_close(struct fakebroker *fb, int notify)
	    __attribute__((warn_unused_result));

/*
 * The next envelope the client sent, within timeout_ms (the caller
 * frees it with cpx__envelope__free_unpacked), or NULL. Envelopes of
 * other kinds than body_case (0: any) are skipped; Ping is answered
 * and never returned.
 */
Cpx__Envelope *fakebroker_recv(struct fakebroker *fb, int body_case,
	    int timeout_ms);

/*
 * Sign an alert (vehicle, high, network handling) with the key of a node
 * of the test PKI, rel e.g. "nodes/si-ncp", claiming origin, id and
 * issued_at (ms). Fills sa (free with sign_signed_alert_clear). 0 or -1.
 */
int	fakebroker_sign(const char *rel, const char *origin, const char *id,
	    int64_t issued_at, Cpx__SignedAlert *sa)
	    __attribute__((warn_unused_result));

/* Helpers to build what a test sends (static storage, no ownership). */
void	fakebroker_welcome(Cpx__Envelope *env, Cpx__Welcome *w,
	    uint64_t last_seq);
void	fakebroker_delivery(Cpx__Envelope *env, Cpx__Delivery *d,
	    uint64_t seq, Cpx__SignedAlert *sa, int replayed,
	    uint64_t request_id);

#endif
