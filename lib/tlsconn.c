/*
 * tlsconn.c: one TLS 1.3 connection on memory BIOs. It owns the SSL, the
 * buffer of decrypted bytes not yet taken as frames, and the buffer of
 * ciphertext not yet sent. No socket is touched here: the session layers
 * (broker/edge.c, client/cpx_client_run.c) move bytes between it and ZeroMQ,
 * through lib/streamio.c on the way out.
 *
 * Rules kept: ERR_clear_error() before every SSL_* call (the error queue
 * is per thread, and a stale entry would be read as this call's failure);
 * the write BIO drained after every SSL_* call (any call, a read included,
 * may produce records, such as alerts or key updates, that must reach the
 * peer); SSL_read looped until WANT_READ (one call returns at most one
 * record, and no new bytes may arrive to prompt another); frames
 * length-prefixed, with the announced size checked against the maximum
 * before waiting for the body, so a peer cannot make us buffer at will.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include "log.h"
#include "proto/cpx.pb-c.h"
#include "tlsconn.h"
#include "tlsctx.h"
#include "wire.h"

struct buf {
	uint8_t	*data;
	size_t	 off;	/* first unconsumed byte */
	size_t	 len;	/* end of valid bytes */
	size_t	 cap;
};

struct tlsconn {
	SSL			*ssl;
	BIO			*rbio;	/* network -> SSL (owned by ssl) */
	BIO			*wbio;	/* SSL -> network (owned by ssl) */
	int			 is_server;
	size_t			 max_frame;
	enum tlsconn_state	 state;
	int			 reason;
	char			 error[256];
	struct identity		 peer;
	uint8_t			*peer_der;
	size_t			 peer_der_len;
	struct buf		 in;	/* plaintext */
	struct buf		 out;	/* ciphertext */
	struct buf		 pend;	/* whole frames not yet encrypted */
};

/* Ciphertext kept ready for the network; more frames wait as plaintext. */
#define SEAL_AHEAD	(64u * 1024u)

static int
buf_reserve(struct buf *b, size_t more)
{
	size_t need, cap;
	uint8_t *p;

	if (b->off > 0 && b->off == b->len)
		b->off = b->len = 0;
	if (more <= b->cap - b->len)
		return 0;
	if (b->off > 0) {	/* compact before growing */
		memmove(b->data, b->data + b->off, b->len - b->off);
		b->len -= b->off;
		b->off = 0;
		if (more <= b->cap - b->len)
			return 0;
	}
	if (more > SIZE_MAX / 2 - b->len)
		return -1;
	need = b->len + more;
	cap = b->cap ? b->cap : 16384;
	while (cap < need)
		cap *= 2;
	if ((p = realloc(b->data, cap)) == NULL)
		return -1;
	b->data = p;
	b->cap = cap;
	return 0;
}

static void
buf_clear(struct buf *b)
{
	/* Plaintext may hold alert bodies: wipe before freeing. */
	if (b->data != NULL)
		OPENSSL_cleanse(b->data, b->cap);
	free(b->data);
	memset(b, 0, sizeof(*b));
}

/*
 * Record a failure: prefix, then arg or (if NULL) the first OpenSSL error,
 * which names a TLS alert from the peer ("certificate revoked").
 */
static void
set_failed(struct tlsconn *c, int reason, const char *prefix, const char *arg)
{
	unsigned long e = ERR_peek_error();
	char detail[200] = "";

	if (c->state == TLSCONN_FAILED)
		return;
	/* The reason alone reads "sslv3 alert certificate revoked". */
	if (e != 0 && ERR_reason_error_string(e) != NULL)
		snprintf(detail, sizeof(detail), "%s",
		    ERR_reason_error_string(e));
	else if (e != 0)
		ERR_error_string_n(e, detail, sizeof(detail));
	ERR_clear_error();
	snprintf(c->error, sizeof(c->error), "%s%s", prefix,
	    arg ? arg : detail);
	c->reason = reason;
	c->state = TLSCONN_FAILED;
}

struct tlsconn *
tlsconn_new(SSL_CTX *ctx, int is_server, size_t max_frame)
{
	struct tlsconn *c = NULL;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->is_server = is_server;
	c->max_frame = max_frame;
	ERR_clear_error();
	if ((c->ssl = SSL_new(ctx)) == NULL)
		goto fail;
	c->rbio = BIO_new(BIO_s_mem());
	c->wbio = BIO_new(BIO_s_mem());
	if (c->rbio == NULL || c->wbio == NULL) {
		BIO_free(c->rbio);
		BIO_free(c->wbio);
		goto fail;
	}
	/* An empty read BIO must say "retry", not EOF. */
	BIO_set_mem_eof_return(c->rbio, -1);
	SSL_set_bio(c->ssl, c->rbio, c->wbio);
	if (is_server)
		SSL_set_accept_state(c->ssl);
	else
		SSL_set_connect_state(c->ssl);
	return c;
fail:
	ERR_clear_error();
	SSL_free(c->ssl);
	free(c);
	return NULL;
}

void
tlsconn_free(struct tlsconn **cp)
{
	struct tlsconn *c;

	if (cp == NULL || (c = *cp) == NULL)
		return;
	SSL_free(c->ssl);
	buf_clear(&c->in);
	buf_clear(&c->out);
	buf_clear(&c->pend);
	free(c->peer_der);
	free(c);
	*cp = NULL;
}

/* Move everything SSL wrote into the ciphertext buffer. */
static int
drain(struct tlsconn *c)
{
	size_t pending;
	int n;

	while ((pending = BIO_ctrl_pending(c->wbio)) > 0) {
		if (buf_reserve(&c->out, pending) == -1) {
			set_failed(c, CPX__REASON__REASON_INTERNAL, "",
			    "out of memory");
			return -1;
		}
		n = BIO_read(c->wbio, c->out.data + c->out.len, (int)pending);
		if (n <= 0)
			break;
		c->out.len += (size_t)n;
	}
	return 0;
}

static int
verify_reason(long v)
{
	if (v == X509_V_ERR_CRL_HAS_EXPIRED ||
	    v == X509_V_ERR_CRL_NOT_YET_VALID)
		return CPX__REASON__REASON_CRL_STALE;
	return v == X509_V_ERR_CERT_REVOKED ? CPX__REASON__REASON_CERT_REVOKED :
	    CPX__REASON__REASON_BAD_SIGNER;
}

static void
handshake_failed(struct tlsconn *c)
{
	long v = SSL_get_verify_result(c->ssl);
	char msg[200];

	if (v != X509_V_OK) {
		/* A node says plainly why it will not talk to this broker. */
		if (!c->is_server)
			tlsctx_broker_refusal(c->ssl, v, msg, sizeof(msg));
		else
			snprintf(msg, sizeof(msg), "peer certificate refused: "
			    "%s", X509_verify_cert_error_string(v));
		ERR_clear_error();
		set_failed(c, verify_reason(v), "", msg);
		return;
	}
	if (c->is_server && SSL_get0_peer_certificate(c->ssl) == NULL &&
	    ERR_GET_REASON(ERR_peek_error()) ==
	    SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE) {
		set_failed(c, CPX__REASON__REASON_BAD_SIGNER, "",
		    "no client certificate presented");
		return;
	}
	set_failed(c, CPX__REASON__REASON_MALFORMED, "TLS handshake failed: ",
	    NULL);
}

/*
 * The broker's CRL is out of date (tlsctx let the handshake finish on
 * that error alone): the node is told so in an Error over the finished
 * TLS session, a reason it may retry on, rather than by a TLS alert it
 * would read as a bad or revoked certificate. The session never opens.
 */
static void
refuse_crl_stale(struct tlsconn *c)
{
	static const char text[] = "the broker's CRL has expired; the CA "
	    "must publish a new one";
	Cpx__Envelope env = CPX__ENVELOPE__INIT;
	Cpx__Error e = CPX__ERROR__INIT;
	uint8_t *frame = NULL;
	size_t len = 0, done;

	e.reason = CPX__REASON__REASON_CRL_STALE;
	e.fatal = 1;
	e.text = (char *)text;
	env.body_case = CPX__ENVELOPE__BODY_ERROR;
	env.error = &e;
	ERR_clear_error();
	if (wire_encode(&env, &frame, &len) == 0)
		(void)SSL_write_ex(c->ssl, frame, len, &done);
	(void)SSL_shutdown(c->ssl);
	ERR_clear_error();
	(void)drain(c);
	free(frame);
	set_failed(c, CPX__REASON__REASON_CRL_STALE, "", text);
}

/* Handshake finished: take the peer identity from its certificate. */
static int
handshake_done(struct tlsconn *c)
{
	X509 *peer = SSL_get0_peer_certificate(c->ssl);
	unsigned char *p;
	char why[160];
	long v = SSL_get_verify_result(c->ssl);
	int len;

	if (c->is_server && peer != NULL && (v == X509_V_ERR_CRL_HAS_EXPIRED ||
	    v == X509_V_ERR_CRL_NOT_YET_VALID)) {
		refuse_crl_stale(c);
		return -1;
	}
	if (peer == NULL || v != X509_V_OK) {
		set_failed(c, CPX__REASON__REASON_BAD_SIGNER, "",
		    "peer certificate missing or not verified");
		return -1;
	}
	if (identity_from_cert(peer, &c->peer, why, sizeof(why)) == -1 &&
	    c->is_server) {
		set_failed(c, CPX__REASON__REASON_BAD_SIGNER,
		    "peer certificate subject refused: ", why);
		return -1;
	}
	if ((len = i2d_X509(peer, NULL)) <= 0) {
		set_failed(c, CPX__REASON__REASON_INTERNAL, "", "i2d_X509 failed");
		return -1;
	}
	if ((c->peer_der = malloc((size_t)len)) == NULL) {
		set_failed(c, CPX__REASON__REASON_INTERNAL, "", "out of memory");
		return -1;
	}
	p = c->peer_der;
	c->peer_der_len = (size_t)i2d_X509(peer, &p);
	c->state = TLSCONN_OPEN;
	return 0;
}

static int
step_handshake(struct tlsconn *c)
{
	int r, e;

	ERR_clear_error();
	r = SSL_do_handshake(c->ssl);
	if (drain(c) == -1)
		return -1;
	if (r == 1)
		return handshake_done(c);
	e = SSL_get_error(c->ssl, r);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
		return 0;
	handshake_failed(c);
	return -1;
}

static int
step_read(struct tlsconn *c)
{
	size_t got;
	int r, e;

	for (;;) {
		if (buf_reserve(&c->in, 16384) == -1) {
			set_failed(c, CPX__REASON__REASON_INTERNAL, "",
			    "out of memory");
			return -1;
		}
		ERR_clear_error();
		r = SSL_read_ex(c->ssl, c->in.data + c->in.len,
		    c->in.cap - c->in.len, &got);
		if (drain(c) == -1)
			return -1;
		if (r == 1) {
			c->in.len += got;
			continue;
		}
		e = SSL_get_error(c->ssl, 0);
		if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
			return 0;
		if (e == SSL_ERROR_ZERO_RETURN) {
			c->state = TLSCONN_CLOSED;
			return 0;
		}
		/* A TLS alert from the peer names the reason (revoked...). */
		set_failed(c, CPX__REASON__REASON_MALFORMED, "TLS error: ", NULL);
		return -1;
	}
}

int
tlsconn_start(struct tlsconn *c)
{
	if (step_handshake(c) == -1)
		return -1;
	return 0;
}

int
tlsconn_feed(struct tlsconn *c, const uint8_t *in, size_t len)
{
	if (c->state == TLSCONN_FAILED)
		return -1;
	if (c->state == TLSCONN_CLOSED)
		return 0;	/* late bytes after close_notify: ignore */
	if (len > 0 && BIO_write(c->rbio, in, (int)len) != (int)len) {
		set_failed(c, CPX__REASON__REASON_INTERNAL, "", "BIO_write failed");
		return -1;
	}
	if (c->state == TLSCONN_HANDSHAKE) {
		if (step_handshake(c) == -1)
			return -1;
		if (c->state != TLSCONN_OPEN)
			return 0;
	}
	return step_read(c);
}

int
tlsconn_next_frame(struct tlsconn *c, const uint8_t **body, size_t *len)
{
	size_t consumed;

	*body = NULL;
	*len = 0;
	if (c->in.len == c->in.off)
		return 0;
	switch (wire_frame_next(c->in.data + c->in.off, c->in.len - c->in.off,
	    c->max_frame, body, len, &consumed)) {
	case WIRE_FRAME:
		c->in.off += consumed;
		return 1;
	case WIRE_NEED_MORE:
		return 0;
	case WIRE_TOO_LARGE:
	default:
		/* The TLS stream is intact: the caller refuses the peer. */
		snprintf(c->error, sizeof(c->error),
		    "frame over the limit of %zu bytes", c->max_frame);
		c->reason = CPX__REASON__REASON_TOO_LARGE;
		return -1;
	}
}

size_t
tlsconn_in_pending(const struct tlsconn *c)
{
	return c->in.len - c->in.off;
}

void
tlsconn_set_max_frame(struct tlsconn *c, size_t max_frame)
{
	c->max_frame = max_frame;
}

/*
 * Frames are queued as plaintext and encrypted only as the network takes
 * them (seal): a TLS record, once made, must be sent, because dropping one
 * breaks the record sequence. Keeping the queue in plaintext is what lets
 * a refusal go ahead of deliveries still queued (tlsconn_discard_queued),
 * and it writes many small frames as few records.
 */
int
tlsconn_write(struct tlsconn *c, const uint8_t *p, size_t len)
{
	if (c->state != TLSCONN_OPEN)
		return -1;
	/* Whole frames only: seal and discard cut the queue between them. */
	if (len < 4 || ((size_t)p[0] << 24 | (size_t)p[1] << 16 |
	    (size_t)p[2] << 8 | p[3]) != len - 4)
		return -1;
	if (buf_reserve(&c->pend, len) == -1)
		return -1;
	memcpy(c->pend.data + c->pend.len, p, len);
	c->pend.len += len;
	return 0;
}

/*
 * Encrypt whole queued frames until about limit bytes of ciphertext are
 * waiting (at least one frame). 0, or -1 when TLS failed (the queue is
 * dropped: nothing more can be sent).
 */
static int
seal(struct tlsconn *c, size_t limit)
{
	const uint8_t *p;
	size_t n, avail, flen, done, ready;

	while (c->pend.len > c->pend.off &&
	    (ready = c->out.len - c->out.off) < limit) {
		p = c->pend.data + c->pend.off;
		avail = c->pend.len - c->pend.off;
		for (n = 0; avail - n >= 4 && (n == 0 || ready + n < limit);
		    n += flen) {
			flen = 4 + ((size_t)p[n] << 24 | (size_t)p[n + 1] << 16 |
			    (size_t)p[n + 2] << 8 | p[n + 3]);
			if (flen > avail - n)
				break;	/* cannot happen: whole frames only */
		}
		if (n == 0 || n > avail)
			n = avail;
		ERR_clear_error();
		if (SSL_write_ex(c->ssl, p, n, &done) != 1 || done != n) {
			set_failed(c, CPX__REASON__REASON_INTERNAL,
			    "TLS write failed: ", NULL);
			(void)drain(c);
			buf_clear(&c->pend);
			return -1;
		}
		c->pend.off += n;
		if (drain(c) == -1)
			return -1;
	}
	return 0;
}

size_t
tlsconn_discard_queued(struct tlsconn *c)
{
	size_t n = c->pend.len - c->pend.off;

	if (c->pend.data != NULL)
		OPENSSL_cleanse(c->pend.data, c->pend.cap);
	c->pend.off = c->pend.len = 0;
	return n;
}

void
tlsconn_shutdown(struct tlsconn *c)
{
	if (c->state != TLSCONN_OPEN)
		return;
	/* close_notify goes after every frame already written. */
	(void)seal(c, SIZE_MAX);
	ERR_clear_error();
	(void)SSL_shutdown(c->ssl);
	ERR_clear_error();
	(void)drain(c);
	c->state = TLSCONN_CLOSED;
}

void
tlsconn_out(struct tlsconn *c, const uint8_t **p, size_t *len)
{
	if (c->out.len - c->out.off < SEAL_AHEAD)
		(void)seal(c, SEAL_AHEAD);
	*p = c->out.data + c->out.off;
	*len = c->out.len - c->out.off;
}

void
tlsconn_consume(struct tlsconn *c, size_t n)
{
	if (n > c->out.len - c->out.off)
		n = c->out.len - c->out.off;
	c->out.off += n;
	if (c->out.off == c->out.len)
		c->out.off = c->out.len = 0;
}

void
tlsconn_trim(struct tlsconn *c)
{
	if (c->in.off == c->in.len)
		buf_clear(&c->in);
	if (c->out.off == c->out.len)
		buf_clear(&c->out);
	if (c->pend.off == c->pend.len)
		buf_clear(&c->pend);
}

size_t
tlsconn_out_pending(const struct tlsconn *c)
{
	return (c->out.len - c->out.off) + (c->pend.len - c->pend.off);
}

enum tlsconn_state
tlsconn_state(const struct tlsconn *c)
{
	return c->state;
}

const struct identity *
tlsconn_peer(const struct tlsconn *c)
{
	return c->state == TLSCONN_OPEN || c->peer_der != NULL ?
	    &c->peer : NULL;
}

const uint8_t *
tlsconn_peer_cert_der(const struct tlsconn *c, size_t *len)
{
	*len = c->peer_der_len;
	return c->peer_der;
}

const char *
tlsconn_error(const struct tlsconn *c)
{
	return c->error[0] ? c->error : "no error";
}

int
tlsconn_error_reason(const struct tlsconn *c)
{
	return c->reason;
}
