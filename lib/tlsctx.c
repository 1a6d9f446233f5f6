/*
 * tlsctx.c: builds every SSL_CTX cpx uses, so that the security settings
 * live in one place: TLS 1.3 only, key exchange on X25519 or NIST curves
 * (never finite-field DH, slow and with small-subgroup pitfalls), the
 * peer must present a certificate from the network CA, checked against
 * the CRL, no session tickets (a resumed session would skip the CRL
 * check: a revoked node could come back on an old ticket), and private
 * keys opened once, without following links, and refused unless only
 * their owner can read them.
 *
 * A node also checks who the broker is. Any certificate of the network
 * CA chains, so without a name check any serverAuth certificate, or one
 * lost by a decommissioned broker, would be taken for the broker. Owns
 * the pinned broker key of a client context (SSL_CTX ex_data).
 */
#include <sys/socket.h>
#include <sys/stat.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "errfmt.h"
#include "log.h"
#include "sign.h"
#include "tlsctx.h"

/* A PEM EC key is a few hundred bytes: anything this big is not one. */
#define KEY_FILE_MAX	(64 * 1024)

/*
 * The ex_data slot holding a client context's pinned key. OpenSSL hands
 * out slot numbers process-wide; it is set once, then only read.
 */
static CRYPTO_ONCE	pin_once = CRYPTO_ONCE_STATIC_INIT;
static int		pin_index = -1;

static void
openssl_err(char *err, size_t errlen, const char *what, const char *path)
{
	unsigned long e = ERR_peek_last_error();
	char reason[256] = "";

	if (e != 0)
		ERR_error_string_n(e, reason, sizeof(reason));
	ERR_clear_error();
	(void)errf(err, errlen, "%s %s%s%s", what, path,
	    reason[0] ? ": " : "", reason);
}

/*
 * Open path for reading and check it through the descriptor, so that what
 * is checked is what is read: no symbolic link (one planted in place of
 * the key would make us read, and vouch for, another file), a regular
 * file, owned by us or root, no group or other bits. Returns the
 * descriptor, or -1 with err[].
 */
static int
open_key_file(const char *path, char *err, size_t errlen)
{
	struct stat st;
	int fd;

	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
	if (fd == -1) {
		if (errno == ELOOP)
			snprintf(err, errlen, "private key %s is a symbolic "
			    "link; give the path of the key file itself", path);
		else
			snprintf(err, errlen, "private key %s: %s", path,
			    strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == -1) {
		snprintf(err, errlen, "private key %s: %s", path,
		    strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "private key %s: not a regular file",
		    path);
		goto fail;
	}
	/*
	 * A key another user owns can be rewritten or read by that user,
	 * whatever its mode says today.
	 */
	if (st.st_uid != geteuid() && st.st_uid != 0) {
		snprintf(err, errlen, "private key %s is owned by uid %u, "
		    "not by this user (uid %u) or root; run: chown %u %s",
		    path, (unsigned)st.st_uid, (unsigned)geteuid(),
		    (unsigned)geteuid(), path);
		goto fail;
	}
	/*
	 * As ssh does: a key others can read is a key others may have
	 * copied. Refuse rather than warn, so the operator fixes it.
	 */
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		snprintf(err, errlen, "private key %s is accessible by group "
		    "or others (mode %04o); run: chmod 600 %s", path,
		    (unsigned)(st.st_mode & 07777), path);
		goto fail;
	}
	if (st.st_size > KEY_FILE_MAX) {
		snprintf(err, errlen, "private key %s: too large to be a key",
		    path);
		goto fail;
	}
	return fd;
fail:
	(void)close(fd);
	return -1;
}

int
tlsctx_check_key_file(const char *path, char *err, size_t errlen)
{
	int fd;

	if ((fd = open_key_file(path, err, errlen)) == -1)
		return -1;
	(void)close(fd);
	return 0;
}

EVP_PKEY *
tlsctx_load_key(const char *path, char *err, size_t errlen)
{
	EVP_PKEY *key = NULL;
	BIO *bio = NULL;
	uint8_t *buf = NULL;
	size_t len = 0;
	ssize_t n;
	int fd;

	if ((fd = open_key_file(path, err, errlen)) == -1)
		return NULL;
	if ((buf = malloc(KEY_FILE_MAX + 1)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto done;
	}
	/* Read from the descriptor that was checked, never the path again. */
	while (len <= KEY_FILE_MAX) {
		n = read(fd, buf + len, KEY_FILE_MAX + 1 - len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			snprintf(err, errlen, "private key %s: %s", path,
			    strerror(errno));
			goto done;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len > KEY_FILE_MAX) {
		snprintf(err, errlen, "private key %s: too large to be a key",
		    path);
		goto done;
	}
	ERR_clear_error();
	if ((bio = BIO_new_mem_buf(buf, (int)len)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto done;
	}
	key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	if (key == NULL)
		openssl_err(err, errlen, "cannot read private key", path);
done:
	BIO_free(bio);
	if (buf != NULL)
		OPENSSL_clear_free(buf, KEY_FILE_MAX + 1);
	(void)close(fd);
	return key;
}

X509 *
tlsctx_load_cert(const char *path, char *err, size_t errlen)
{
	X509 *cert = NULL;
	FILE *f = NULL;

	if ((f = fopen(path, "re")) == NULL) {
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
 * Broker side. An expired (or not yet valid) CRL would make OpenSSL fail
 * the handshake with an alert the node reads as "certificate expired",
 * and the session layer take it for a bad or revoked certificate. Let
 * the handshake finish on that one error instead: the verify result
 * still records it, so tlsconn never opens the session; it refuses it
 * with its own reason (REASON_CRL_STALE), which a node may retry.
 * Every other error, a revocation found in that same CRL included,
 * still fails the handshake.
 */
static int
server_verify_cb(int ok, X509_STORE_CTX *x)
{
	int e;

	if (ok)
		return 1;
	e = X509_STORE_CTX_get_error(x);
	return e == X509_V_ERR_CRL_HAS_EXPIRED ||
	    e == X509_V_ERR_CRL_NOT_YET_VALID;
}

SSL_CTX *
tlsctx_new(const struct tls_files *f, int is_server, char *err,
    size_t errlen)
{
	struct trust *trust = NULL;
	EVP_PKEY *key = NULL;
	SSL_CTX *ctx = NULL;

	if (f->ca == NULL || f->cert == NULL || f->key == NULL) {
		snprintf(err, errlen, "CA, certificate and key are required");
		return NULL;
	}
	if ((key = tlsctx_load_key(f->key, err, errlen)) == NULL)
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
	if (SSL_CTX_set1_groups_list(ctx, TLSCTX_GROUPS) != 1) {
		openssl_err(err, errlen, "cannot set key exchange groups",
		    TLSCTX_GROUPS);
		goto fail;
	}
	if (SSL_CTX_use_certificate_chain_file(ctx, f->cert) != 1) {
		openssl_err(err, errlen, "cannot load certificate", f->cert);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey(ctx, key) != 1) {
		openssl_err(err, errlen, "cannot use private key", f->key);
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		openssl_err(err, errlen, "private key does not match "
		    "certificate", f->cert);
		goto fail;
	}
	/*
	 * The same loader as signature checks: CA must be a CA, CRL signed
	 * by it and current.
	 */
	if ((trust = trust_new(f->ca, f->crl, err, errlen)) == NULL)
		goto fail;
	if (tlsctx_use_store(ctx, trust_store(trust)) == -1) {
		snprintf(err, errlen, "%s: cannot use the trust store", f->ca);
		goto fail;
	}
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
		    SSL_VERIFY_FAIL_IF_NO_PEER_CERT, server_verify_cb);
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
	trust_free(&trust);
	EVP_PKEY_free(key);
	return ctx;
fail:
	trust_free(&trust);
	EVP_PKEY_free(key);
	SSL_CTX_free(ctx);
	return NULL;
}

int
tlsctx_use_store(SSL_CTX *ctx, X509_STORE *store)
{
	if (ctx == NULL || store == NULL)
		return -1;
	SSL_CTX_set1_cert_store(ctx, store);
	return 0;
}

int
tlsctx_parse_pin(const char *pin, uint8_t out[32])
{
	size_t i;
	int hi, lo;

	memset(out, 0, 32);
	if (pin == NULL)
		return -1;
	if (strncasecmp(pin, "sha256:", 7) == 0)
		pin += 7;
	if (strlen(pin) != 64)
		return -1;
	for (i = 0; i < 32; i++) {
		hi = OPENSSL_hexchar2int((unsigned char)pin[2 * i]);
		lo = OPENSSL_hexchar2int((unsigned char)pin[2 * i + 1]);
		if (hi < 0 || lo < 0) {
			memset(out, 0, 32);
			return -1;
		}
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

int
tlsctx_spki_sha256(X509 *cert, uint8_t out[32])
{
	unsigned char *der = NULL;
	unsigned int mdlen = 0;
	int len, rc = -1;

	memset(out, 0, 32);
	if (cert == NULL || (len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert),
	    &der)) <= 0)
		goto done;
	if (EVP_Digest(der, (size_t)len, out, &mdlen, EVP_sha256(),
	    NULL) != 1 || mdlen != 32)
		goto done;
	rc = 0;
done:
	OPENSSL_free(der);
	ERR_clear_error();
	if (rc == -1)
		memset(out, 0, 32);
	return rc;
}

static void
pin_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
    void *argp)
{
	(void)parent;
	(void)ad;
	(void)idx;
	(void)argl;
	(void)argp;
	OPENSSL_free(ptr);
}

static void
pin_index_init(void)
{
	pin_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, pin_free);
}

/*
 * Client side, in place of OpenSSL's own verification (which it calls
 * first: chain, CRL, validity, name). Then serverAuth must be named in
 * the broker certificate: OpenSSL's purpose check lets a certificate
 * with no extended key usage at all pass as a server. Then the pinned
 * key, if any.
 */
static int
client_verify(X509_STORE_CTX *x, void *arg)
{
	const uint8_t *pin = arg;
	uint8_t have[32];
	X509 *leaf;

	if (X509_verify_cert(x) != 1)
		return 0;
	leaf = X509_STORE_CTX_get0_cert(x);
	if (leaf == NULL ||
	    !(X509_get_extension_flags(leaf) & EXFLAG_XKUSAGE) ||
	    !(X509_get_extended_key_usage(leaf) & XKU_SSL_SERVER)) {
		X509_STORE_CTX_set_error(x, X509_V_ERR_INVALID_PURPOSE);
		return 0;
	}
	if (pin != NULL && (tlsctx_spki_sha256(leaf, have) == -1 ||
	    CRYPTO_memcmp(have, pin, sizeof(have)) != 0)) {
		X509_STORE_CTX_set_error(x,
		    X509_V_ERR_APPLICATION_VERIFICATION);
		return 0;
	}
	return 1;
}

int
tlsctx_expect_broker(SSL_CTX *ctx, const char *name, const char *pin,
    char *err, size_t errlen)
{
	X509_VERIFY_PARAM *param;
	uint8_t *p = NULL;

	if (ctx == NULL || name == NULL || name[0] == '\0') {
		snprintf(err, errlen, "no broker name to check the broker's "
		    "certificate against");
		return -1;
	}
	if (pin != NULL) {
		if (CRYPTO_THREAD_run_once(&pin_once, pin_index_init) != 1 ||
		    pin_index < 0 || (p = OPENSSL_malloc(32)) == NULL) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		if (tlsctx_parse_pin(pin, p) == -1) {
			snprintf(err, errlen, "broker pin '%.80s' is not the "
			    "SHA-256 of a key: need 64 hex digits", pin);
			OPENSSL_free(p);
			return -1;
		}
		/* ctx owns p from here: freed with it. */
		if (SSL_CTX_set_ex_data(ctx, pin_index, p) != 1) {
			OPENSSL_free(p);
			snprintf(err, errlen, "out of memory");
			return -1;
		}
	}
	param = SSL_CTX_get0_param(ctx);
	/*
	 * The subjectAltName only: a CN is free text any node certificate
	 * carries, and partial wildcards ("b*.example") are too loose.
	 */
	X509_VERIFY_PARAM_set_hostflags(param,
	    X509_CHECK_FLAG_NEVER_CHECK_SUBJECT |
	    X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	ERR_clear_error();
	/* An IP literal is matched against iPAddress entries. */
	if (X509_VERIFY_PARAM_set1_ip_asc(param, name) != 1) {
		ERR_clear_error();
		if (X509_VERIFY_PARAM_set1_host(param, name, 0) != 1) {
			openssl_err(err, errlen, "cannot check broker name",
			    name);
			return -1;
		}
	}
	SSL_CTX_set_cert_verify_callback(ctx, client_verify, p);
	return 0;
}

int
tlsctx_endpoint_host(const char *endpoint, char *host, size_t len)
{
	const char *p, *end;
	size_t n;

	if (len > 0)
		host[0] = '\0';
	if (endpoint == NULL || strncmp(endpoint, "tcp://", 6) != 0)
		return -1;
	p = endpoint + 6;
	if (*p == '[') {
		if ((end = strchr(++p, ']')) == NULL)
			return -1;
	} else if ((end = strrchr(p, ':')) == NULL)
		return -1;
	n = (size_t)(end - p);
	if (n == 0 || n >= len)
		return -1;
	memcpy(host, p, n);
	host[n] = '\0';
	return 0;
}

/* The DNS and IP entries of cert's subjectAltName, as "a, b" in buf. */
static void
san_names(X509 *cert, char *buf, size_t len)
{
	GENERAL_NAMES *gens;
	GENERAL_NAME *g;
	char one[128];
	size_t used = 0;
	int i, n;

	if (len > 0)
		buf[0] = '\0';
	gens = cert ? X509_get_ext_d2i(cert, NID_subject_alt_name, NULL,
	    NULL) : NULL;
	for (i = 0; gens != NULL && i < sk_GENERAL_NAME_num(gens); i++) {
		g = sk_GENERAL_NAME_value(gens, i);
		one[0] = '\0';
		if (g->type == GEN_DNS) {
			n = ASN1_STRING_length(g->d.dNSName);
			/* Printable only: these bytes reach a terminal. */
			snprintf(one, sizeof(one), "%.*s", n > 100 ? 100 : n,
			    (const char *)ASN1_STRING_get0_data(g->d.dNSName));
		} else if (g->type == GEN_IPADD) {
			n = ASN1_STRING_length(g->d.iPAddress);
			if ((n == 4 || n == 16) && inet_ntop(n == 4 ? AF_INET :
			    AF_INET6, ASN1_STRING_get0_data(g->d.iPAddress),
			    one, sizeof(one)) == NULL)
				one[0] = '\0';
		}
		for (n = 0; one[n] != '\0'; n++)
			if (one[n] < 0x20 || one[n] > 0x7e)
				one[n] = '?';
		if (one[0] != '\0' && used < len) {
			n = snprintf(buf + used, len - used, "%s%s",
			    used ? "', '" : "", one);
			if (n > 0)
				used += (size_t)n;
		}
	}
	GENERAL_NAMES_free(gens);
	ERR_clear_error();
}

void
tlsctx_broker_refusal(SSL *ssl, long v, char *buf, size_t len)
{
	X509_VERIFY_PARAM *param = SSL_get0_param(ssl);
	STACK_OF(X509) *chain = SSL_get_peer_cert_chain(ssl);
	X509 *leaf;
	char names[256], *want = NULL;

	/* The chain as received: the leaf whose names we could not match. */
	leaf = chain != NULL && sk_X509_num(chain) > 0 ?
	    sk_X509_value(chain, 0) : NULL;
	switch (v) {
	case X509_V_ERR_HOSTNAME_MISMATCH:
	case X509_V_ERR_IP_ADDRESS_MISMATCH:
		san_names(leaf, names, sizeof(names));
		if (v == X509_V_ERR_IP_ADDRESS_MISMATCH)
			want = X509_VERIFY_PARAM_get1_ip_asc(param);
		snprintf(buf, len, "the broker's certificate is for '%s', not "
		    "'%s'", names[0] ? names : "(no subjectAltName)",
		    want != NULL ? want : X509_VERIFY_PARAM_get0_host(param, 0)
		    != NULL ? X509_VERIFY_PARAM_get0_host(param, 0) : "?");
		OPENSSL_free(want);
		break;
	case X509_V_ERR_CERT_REVOKED:
		snprintf(buf, len, "the broker's certificate has been revoked");
		break;
	case X509_V_ERR_INVALID_PURPOSE:
		snprintf(buf, len, "the broker's certificate is not a broker "
		    "certificate (no serverAuth in its extended key usage; a "
		    "node's certificate, perhaps)");
		break;
	case X509_V_ERR_APPLICATION_VERIFICATION:
		snprintf(buf, len, "the broker's key is not the pinned one "
		    "(broker pin)");
		break;
	case X509_V_ERR_CERT_HAS_EXPIRED:
		snprintf(buf, len, "the broker's certificate has expired");
		break;
	case X509_V_ERR_CRL_HAS_EXPIRED:
	case X509_V_ERR_CRL_NOT_YET_VALID:
		snprintf(buf, len, "our CRL is out of date (%s), so the "
		    "broker's certificate cannot be checked; fetch the CA's "
		    "current CRL", X509_verify_cert_error_string(v));
		break;
	default:
		snprintf(buf, len, "the broker's certificate was refused: %s",
		    X509_verify_cert_error_string(v));
		break;
	}
	ERR_clear_error();
}
