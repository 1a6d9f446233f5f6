/*
 * tlsctx.h: the one place an SSL_CTX is built. TLS 1.3 only, key
 * exchange X25519, P-256 or P-384, peer certificate required and verified
 * against the network CA and CRL, no session tickets (resumption would
 * skip the CRL check), private keys refused unless only their owner (this
 * user or root) can read them. A node also checks who the broker is: its
 * name, serverAuth, and optionally a pinned key.
 */
#ifndef CPX_TLSCTX_H
#define CPX_TLSCTX_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

struct tls_files {
	const char	*ca;	/* network CA certificate, PEM */
	const char	*cert;	/* our certificate, PEM */
	const char	*key;	/* our private key, PEM, mode 0600 or stricter */
	const char	*crl;	/* CRL, PEM, or NULL (broker: required) */
};

/* The key exchange groups offered and accepted: never finite-field DH. */
#define TLSCTX_GROUPS	"X25519:P-256:P-384"

/*
 * Build a server (broker) or client (node) context. The CRL, if given,
 * must be signed by the CA and current (see trust_new). Returns an owned
 * SSL_CTX or NULL with err[] naming the file at fault.
 */
SSL_CTX	*tlsctx_new(const struct tls_files *f, int is_server, char *err,
	    size_t errlen);

/*
 * Verify peers with store from now on (store is up-referenced, so the
 * caller keeps its own reference): the broker gives its TLS context the
 * store of its struct trust, so connections and signatures are checked
 * against one CRL, loaded and vetted once (trust_reload_crl). Returns 0
 * or -1.
 */
int	tlsctx_use_store(SSL_CTX *ctx, X509_STORE *store)
	    __attribute__((warn_unused_result));

/*
 * Client side: accept as the broker only a certificate that carries
 * `name` in its subjectAltName (a DNS name, or an IP address when name
 * is an IP literal; the subject CN is never used) and serverAuth in its
 * extended key usage, and, if pin is not NULL, whose public key
 * (SubjectPublicKeyInfo) has that SHA-256 (64 hex digits, optionally
 * "sha256:" first). Returns 0, or -1 with err[].
 */
int	tlsctx_expect_broker(SSL_CTX *ctx, const char *name, const char *pin,
	    char *err, size_t errlen) __attribute__((warn_unused_result));

/*
 * The host of a ZeroMQ endpoint "tcp://HOST:PORT" ("tcp://[::1]:PORT"
 * gives "::1") into host[len]: the broker name a node checks by default.
 * Returns 0, or -1 with host[] empty.
 */
int	tlsctx_endpoint_host(const char *endpoint, char *host, size_t len)
	    __attribute__((warn_unused_result));

/*
 * Parse a pin (64 hex digits, optionally "sha256:" first) into out.
 * Returns 0 or -1.
 */
int	tlsctx_parse_pin(const char *pin, uint8_t out[32])
	    __attribute__((warn_unused_result));

/* SHA-256 of cert's SubjectPublicKeyInfo (DER) into out. 0 or -1. */
int	tlsctx_spki_sha256(X509 *cert, uint8_t out[32])
	    __attribute__((warn_unused_result));

/*
 * Client side, after the handshake failed verifying the broker with
 * result v: a plain sentence saying why into buf ("the broker's
 * certificate has been revoked", "the broker's certificate is for
 * 'evil.example', not '127.0.0.1'", ...).
 */
void	tlsctx_broker_refusal(SSL *ssl, long v, char *buf, size_t len);

/*
 * Open a private key file safely: once, without following a symbolic
 * link, and refuse it unless it is a regular file owned by the running
 * user or root that group and others cannot read or write (as ssh does).
 * Returns 0, or -1 with err[] set.
 */
int	tlsctx_check_key_file(const char *path, char *err, size_t errlen)
	    __attribute__((warn_unused_result));

/*
 * Load a PEM private key (checked as above, read from the descriptor that
 * was checked, the file's bytes wiped after parsing). Returns an owned
 * key or NULL with err[].
 */
EVP_PKEY *tlsctx_load_key(const char *path, char *err, size_t errlen);
/* Load a PEM certificate. Returns an owned X509 or NULL with err[]. */
X509	*tlsctx_load_cert(const char *path, char *err, size_t errlen);

#endif
