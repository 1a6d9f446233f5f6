/*
 * streamio.h: pushing a TLS connection's ciphertext to a ZMQ_STREAM
 * socket. The broker's edge and the client both talk TLS over ZMQ_STREAM,
 * and both must follow the same framing rule, so it is written once here.
 */
#ifndef CPX_STREAMIO_H
#define CPX_STREAMIO_H

#include <stddef.h>
#include <stdint.h>

#include "tlsconn.h"

/*
 * Send what c has queued for the peer as [rid][chunk] messages of at most
 * chunk bytes each, without blocking. What ZeroMQ does not take now stays
 * queued in c, in order, for the next call. Returns 0 (all sent, or the
 * rest waits for room), or -1 if the peer is gone (its routing id is no
 * longer known) or a payload part was not taken.
 */
int	stream_flush(void *sock, const uint8_t *rid, size_t rid_len,
	    struct tlsconn *c, size_t chunk)
	    __attribute__((warn_unused_result));

#endif
