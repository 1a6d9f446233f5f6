/*
 * tlsconn.h: one TLS 1.3 connection driven through memory BIOs, carrying
 * length-prefixed frames (wire.h). It never touches a socket: the caller
 * feeds it ciphertext received from the network and sends what it
 * produces. Both broker and client use it.
 */
#ifndef CPX_TLSCONN_H
#define CPX_TLSCONN_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "identity.h"

enum tlsconn_state {
	TLSCONN_HANDSHAKE = 0,
	TLSCONN_OPEN,		/* handshake done, peer identity known */
	TLSCONN_CLOSED,		/* close_notify received or sent */
	TLSCONN_FAILED		/* TLS error; see tlsconn_error() */
};

struct tlsconn;

/*
 * New connection on ctx (server or client side). max_frame bounds an
 * incoming frame. Returns an owned tlsconn (tlsconn_free) or NULL.
 */
struct tlsconn *tlsconn_new(SSL_CTX *ctx, int is_server, size_t max_frame);
void	tlsconn_free(struct tlsconn **c);

/* Client side: produce the ClientHello (read it with tlsconn_out). */
int	tlsconn_start(struct tlsconn *c) __attribute__((warn_unused_result));

/*
 * Feed ciphertext from the network and advance the handshake or decrypt.
 * Decrypted bytes accumulate inside; take frames with tlsconn_next_frame.
 * Returns 0, or -1 when the connection failed (state FAILED, error text
 * in tlsconn_error()).
 */
int	tlsconn_feed(struct tlsconn *c, const uint8_t *in, size_t len)
	    __attribute__((warn_unused_result));

/*
 * Next complete frame body (prefix stripped) into body and len, pointing
 * into the connection's buffer and valid until the next call on c.
 * Returns 1 if a frame is there, 0 if none yet, -1 if a frame announces
 * more than max_frame (tlsconn_error() says so; the TLS stream is still
 * usable to send the refusal).
 */
int	tlsconn_next_frame(struct tlsconn *c, const uint8_t **body,
	    size_t *len) __attribute__((warn_unused_result));

/* Decrypted bytes received and not yet taken as frames. */
size_t	tlsconn_in_pending(const struct tlsconn *c);

/* Change the incoming frame limit (raised once a session is welcomed). */
void	tlsconn_set_max_frame(struct tlsconn *c, size_t max_frame);

/*
 * Queue one whole frame (prefix included) to send; it is encrypted as
 * tlsconn_out hands ciphertext out. 0, or -1 if the connection is not
 * open, p is not one whole frame, or memory ran out.
 */
int	tlsconn_write(struct tlsconn *c, const uint8_t *p, size_t len)
	    __attribute__((warn_unused_result));

/*
 * Drop the frames queued and not yet encrypted (what was encrypted must
 * still be sent). A refusal written next goes out ahead of them. Returns
 * the bytes dropped.
 */
size_t	tlsconn_discard_queued(struct tlsconn *c);

/* Send close_notify. */
void	tlsconn_shutdown(struct tlsconn *c);

/*
 * Ciphertext waiting to go to the network: p and len (into an internal
 * buffer, valid until the next call), encrypting queued frames first if
 * little is ready. len is 0 only when nothing is queued or TLS failed.
 * tlsconn_consume drops n bytes once sent. tlsconn_out_pending counts
 * ciphertext and queued frames.
 */
void	tlsconn_out(struct tlsconn *c, const uint8_t **p, size_t *len);
void	tlsconn_consume(struct tlsconn *c, size_t n);
size_t	tlsconn_out_pending(const struct tlsconn *c);
/* Free the plaintext and ciphertext buffers if they are empty (idle). */
void	tlsconn_trim(struct tlsconn *c);

enum tlsconn_state tlsconn_state(const struct tlsconn *c);
/* Peer identity once OPEN (NULL before). */
const struct identity *tlsconn_peer(const struct tlsconn *c);
/* DER of the peer certificate once OPEN (owned by c) or NULL. */
const uint8_t *tlsconn_peer_cert_der(const struct tlsconn *c, size_t *len);
/* Last error, human readable ("certificate revoked", ...). */
const char *tlsconn_error(const struct tlsconn *c);
/* CPX__REASON_* that fits the failure (CERT_REVOKED, BAD_SIGNER, ...). */
int	tlsconn_error_reason(const struct tlsconn *c);

#endif
