/*
 * tlsctx.h: the one place an SSL_CTX is built. TLS 1.3 only, peer
 * certificate required and verified against the network CA (and CRL on the
 * broker), no session tickets (resumption would skip the CRL check), and
 * private keys refused when group or others can read them.
 */
#ifndef CPX_TLSCTX_H
#define CPX_TLSCTX_H

#include <stddef.h>

#include <openssl/ssl.h>

struct tls_files {
	const char	*ca;	/* network CA certificate, PEM */
	const char	*cert;	/* our certificate, PEM */
	const char	*key;	/* our private key, PEM, mode 0600 or stricter */
	const char	*crl;	/* CRL, PEM, or NULL (broker: required) */
};

/*
 * Build a server (broker) or client (node) context. Returns an owned
 * SSL_CTX or NULL with err[] naming the file at fault.
 */
SSL_CTX	*tlsctx_new(const struct tls_files *f, int is_server, char *err,
	    size_t errlen);

/*
 * Replace the CRL of a server context's verification store (SIGHUP).
 * Returns 0 or -1 with err[] set; on failure the old CRL stays.
 */
int	tlsctx_reload_crl(SSL_CTX *ctx, const char *ca, const char *crl,
	    char *err, size_t errlen) __attribute__((warn_unused_result));

/*
 * Refuse a private key file that group or others can read, as ssh does.
 * Returns 0 or -1 with err[] set.
 */
int	tlsctx_check_key_file(const char *path, char *err, size_t errlen)
	    __attribute__((warn_unused_result));

/* Load a PEM private key / certificate (key file mode checked). */
EVP_PKEY *tlsctx_load_key(const char *path, char *err, size_t errlen);
X509	*tlsctx_load_cert(const char *path, char *err, size_t errlen);

#endif
