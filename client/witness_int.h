/*
 * witness_int.h: what client/witness*.c need of the client's internals
 * (defined in cpx_client.c): one blocking request/answer exchange, the
 * node's key for the cosignature, the trust store and the broker's
 * certificate as TLS verified it. Library-internal, not installed.
 */
#ifndef CPX_WITNESS_INT_H
#define CPX_WITNESS_INT_H

#include <stddef.h>
#include <stdint.h>

#include "cpx_client.h"
#include "proto/cpx.pb-c.h"

struct trust;

/*
 * Send req (its request_id set here, *request_id gets it) and wait up to
 * timeout_ms for the answer with that id: a witness message or a
 * non-fatal Error. Returns 0 with *reply (owned by the caller), or -1
 * with err[] (connection lost, no answer in time).
 */
int	client_witness_call(struct cpx_client *c, Cpx__Envelope *req,
	    uint64_t *request_id, int timeout_ms, Cpx__Envelope **reply,
	    char *err, size_t errlen) __attribute__((warn_unused_result));
/* sign_bytes with the node's key and certificate. 0 or -1. */
int	client_witness_sign(struct cpx_client *c, const uint8_t *msg,
	    size_t len, uint8_t **sig, size_t *siglen)
	    __attribute__((warn_unused_result));
/* The client's trust store (CA, CRL); borrowed. */
struct trust *client_witness_trust(struct cpx_client *c);
/* DER of the broker's certificate of the open session, or NULL. */
const uint8_t *client_witness_broker_cert(const struct cpx_client *c,
	    size_t *len);

#endif
