/*
 * streamio.c: the one writer of ciphertext to a ZMQ_STREAM socket (see
 * streamio.h). Owns nothing: the socket and the TLS connection belong to
 * the caller.
 */
#include <errno.h>

#include <zmq.h>

#include "streamio.h"

int
stream_flush(void *sock, const uint8_t *rid, size_t rid_len,
    struct tlsconn *c, size_t chunk)
{
	const uint8_t *p;
	size_t len;

	while (c != NULL && tlsconn_out_pending(c) > 0) {
		tlsconn_out(c, &p, &len);
		if (len > chunk)
			len = chunk;
		/*
		 * If the routing-id part is not taken, the payload must not
		 * be sent: ZeroMQ would read it as the next routing id.
		 */
		if (zmq_send(sock, rid, rid_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) !=
		    (int)rid_len) {
			if (errno == EAGAIN)
				return 0;	/* keep it queued, retry */
			return -1;		/* EHOSTUNREACH: gone */
		}
		if (zmq_send(sock, p, len, ZMQ_DONTWAIT) != (int)len)
			return -1;
		tlsconn_consume(c, len);
	}
	return 0;
}
