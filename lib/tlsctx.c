/*
 * tlsctx.c: builds every SSL_CTX cpx uses, so that the security settings
 * live in one place: TLS 1.3 only, the peer must present a certificate
 * from the network CA, the broker checks the CRL, no session tickets (a
 * resumed session would skip the CRL check: a revoked node could come
 * back on an old ticket), and private keys readable by group or others
 * are refused before they are even opened by OpenSSL.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "log.h"
#include "tlsctx.h"

static void
openssl_err(char *err, size_t errlen, const char *what, const char *path)
{
	unsigned long e = ERR_peek_last_error();
	char reason[256] = "";

	if (e != 0)
		ERR_error_string_n(e, reason, sizeof(reason));
	ERR_clear_error();
	snprintf(err, errlen, "%s %s%s%s", what, path, reason[0] ? ": " : "",
	    reason);
}

int
tlsctx_check_key_file(const char *path, char *err, size_t errlen)
{
	struct stat st;

	if (stat(path, &st) == -1) {
		snprintf(err, errlen, "private key %s: %s", path,
		    strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "private key %s: not a regular file",
		    path);
		return -1;
	}
	/*
	 * As ssh does: a key others can read is a key others may have
	 * copied. Refuse rather than warn, so the operator fixes it.
	 */
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		snprintf(err, errlen, "private key %s is accessible by group "
		    "or others (mode %04o); run: chmod 600 %s", path,
		    (unsigned)(st.st_mode & 07777), path);
		return -1;
	}
	return 0;
}

EVP_PKEY *
tlsctx_load_key(const char *path, char *err, size_t errlen)
{
	EVP_PKEY *key = NULL;
	FILE *f = NULL;

	if (tlsctx_check_key_file(path, err, errlen) == -1)
		return NULL;
	if ((f = fopen(path, "r")) == NULL) {
		snprintf(err, errlen, "private key %s: %s", path,
		    strerror(errno));
		return NULL;
	}
	ERR_clear_error();
	key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	if (key == NULL)
		openssl_err(err, errlen, "cannot read private key", path);
	return key;
}

X509 *
tlsctx_load_cert(const char *path, char *err, size_t errlen)
{
	X509 *cert = NULL;
	FILE *f = NULL;

	if ((f = fopen(path, "r")) == NULL) {
		snprintf(err, errlen, "certificate %s: %s", path,
		    strerror(errno));
		return NULL;
	}
	ERR_clear_error();
	cert = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (cert == NULL)
		openssl_err(err, errlen, "cannot read certificate", path);
	return cert;
}

/*
 * A fresh store with the CA and, if given, the CRL with CRL checking on.
 * Returns an owned store or NULL with err[].
 */
static X509_STORE *
store_new(const char *ca, const char *crl, char *err, size_t errlen)
{
	X509_STORE *store = NULL;
	X509_CRL *c = NULL;
	FILE *f = NULL;

	ERR_clear_error();
	if ((store = X509_STORE_new()) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (X509_STORE_load_file(store, ca) != 1) {
		openssl_err(err, errlen, "cannot load CA certificate", ca);
		goto fail;
	}
	if (crl != NULL) {
		if ((f = fopen(crl, "r")) == NULL) {
			snprintf(err, errlen, "CRL %s: %s", crl,
			    strerror(errno));
			goto fail;
		}
		c = PEM_read_X509_CRL(f, NULL, NULL, NULL);
		fclose(f);
		if (c == NULL) {
			openssl_err(err, errlen, "cannot read CRL", crl);
			goto fail;
		}
		if (X509_STORE_add_crl(store, c) != 1) {
			openssl_err(err, errlen, "cannot add CRL", crl);
			goto fail;
		}
		X509_CRL_free(c);
		c = NULL;
		X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
	}
	return store;
fail:
	X509_CRL_free(c);
	X509_STORE_free(store);
	return NULL;
}

SSL_CTX *
tlsctx_new(const struct tls_files *f, int is_server, char *err,
    size_t errlen)
{
	X509_STORE *store = NULL;
	SSL_CTX *ctx = NULL;

	if (f->ca == NULL || f->cert == NULL || f->key == NULL) {
		snprintf(err, errlen, "CA, certificate and key are required");
		return NULL;
	}
	if (tlsctx_check_key_file(f->key, err, errlen) == -1)
		return NULL;
	ERR_clear_error();
	ctx = SSL_CTX_new(is_server ? TLS_server_method() :
	    TLS_client_method());
	if (ctx == NULL) {
		snprintf(err, errlen, "SSL_CTX_new failed");
		goto fail;
	}
	/* TLS 1.3 only: no downgrade, no renegotiation, forward secrecy. */
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1 ||
	    SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1) {
		snprintf(err, errlen, "cannot restrict to TLS 1.3");
		goto fail;
	}
	if (SSL_CTX_use_certificate_chain_file(ctx, f->cert) != 1) {
		openssl_err(err, errlen, "cannot load certificate", f->cert);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, f->key, SSL_FILETYPE_PEM) != 1) {
		openssl_err(err, errlen, "cannot load private key", f->key);
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		openssl_err(err, errlen, "private key does not match "
		    "certificate", f->cert);
		goto fail;
	}
	if ((store = store_new(f->ca, f->crl, err, errlen)) == NULL)
		goto fail;
	SSL_CTX_set_cert_store(ctx, store);	/* ctx owns it now */
	store = NULL;
	/*
	 * Purpose: the broker accepts only client certificates, a node
	 * accepts only a server certificate. Node certificates carry
	 * clientAuth alone, so one node cannot pose as the broker to
	 * another.
	 */
	if (SSL_CTX_set_purpose(ctx, is_server ? X509_PURPOSE_SSL_CLIENT :
	    X509_PURPOSE_SSL_SERVER) != 1) {
		openssl_err(err, errlen, "cannot set certificate purpose",
		    f->cert);
		goto fail;
	}
	if (is_server) {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER |
		    SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
		SSL_CTX_set_num_tickets(ctx, 0);
		SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	} else
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET |
	    SSL_OP_NO_RENEGOTIATION);
	/*
	 * Give record buffers back while a connection is idle: a broker
	 * holds a thousand mostly silent sessions.
	 */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_verify_depth(ctx, 4);
	return ctx;
fail:
	X509_STORE_free(store);
	SSL_CTX_free(ctx);
	return NULL;
}

int
tlsctx_reload_crl(SSL_CTX *ctx, const char *ca, const char *crl, char *err,
    size_t errlen)
{
	X509_STORE *store;

	if ((store = store_new(ca, crl, err, errlen)) == NULL)
		return -1;
	SSL_CTX_set_cert_store(ctx, store);	/* frees the old store */
	return 0;
}
