/*
 * test_pki.c: tests certs/cpx-pki, the development PKI script, and the
 * test helpers testpki/testutil. The script runs for real in a mkdtemp()
 * directory; every certificate is checked with the OpenSSL C API the
 * broker uses (X509_verify_cert over an X509_STORE), so a script change
 * that would make the broker accept a wrong certificate, or refuse a right
 * one, fails here first.
 */
#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "cpx_limits.h"
#include "testpki.h"
#include "testutil.h"

static const char *const countries[] = {
	"SI", "HR", "AT", "HU", "IT", "BA", "RS", "ME", "MK", "AL", "XK"
};
#define NCOUNTRIES	(sizeof(countries) / sizeof(countries[0]))

struct pki_state {
	char	dir[PATH_MAX];
};

static const char *
script_path(void)
{
	static char path[PATH_MAX];
	const char *src;
	int n;

	src = getenv("CPX_SOURCE_DIR");
	if (src == NULL || src[0] == '\0')
		src = CPX_SOURCE_DIR;
	n = snprintf(path, sizeof(path), "%s/certs/cpx-pki", src);
	if (n < 0 || (size_t)n >= sizeof(path))
		return NULL;
	return path;
}

/*
 * Run "bash cpx-pki <args...>" (NULL-terminated) with stdout discarded
 * (stderr stays, for ctest --output-on-failure). Returns the exit status,
 * or -1 if it did not exit normally.
 */
static int
pki_run(const char *arg, ...)
{
	const char *argv[16];
	va_list ap;
	pid_t pid, r;
	int status, devnull;
	size_t n = 0;

	argv[n++] = "bash";
	argv[n++] = script_path();
	va_start(ap, arg);
	while (arg != NULL && n < sizeof(argv) / sizeof(argv[0]) - 1) {
		argv[n++] = arg;
		arg = va_arg(ap, const char *);
	}
	va_end(ap);
	argv[n] = NULL;
	if (argv[1] == NULL)
		return -1;
	fflush(NULL);
	pid = fork();
	if (pid == -1)
		return -1;
	if (pid == 0) {
		devnull = open("/dev/null", O_WRONLY);
		if (devnull == -1 || dup2(devnull, STDOUT_FILENO) == -1)
			_exit(126);
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	do {
		r = waitpid(pid, &status, 0);
	} while (r == -1 && errno == EINTR);
	if (r == -1 || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

static void
path_in(char *out, size_t len, const char *dir, const char *rel)
{
	int n;

	n = snprintf(out, len, "%s/%s", dir, rel);
	assert_true(n > 0 && (size_t)n < len);
}

static int
exists(const char *dir, const char *rel)
{
	char p[PATH_MAX];
	struct stat st;

	path_in(p, sizeof(p), dir, rel);
	return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static X509 *
load_cert(const char *path)
{
	BIO *bio;
	X509 *x;

	bio = BIO_new_file(path, "r");
	if (bio == NULL)
		return NULL;
	x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	BIO_free(bio);
	return x;
}

static X509 *
load_cert_in(const char *dir, const char *rel)
{
	char p[PATH_MAX];

	path_in(p, sizeof(p), dir, rel);
	return load_cert(p);
}

static EVP_PKEY *
load_key_in(const char *dir, const char *rel)
{
	char p[PATH_MAX];
	EVP_PKEY *k;
	BIO *bio;

	path_in(p, sizeof(p), dir, rel);
	bio = BIO_new_file(p, "r");
	if (bio == NULL)
		return NULL;
	k = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	BIO_free(bio);
	return k;
}

static X509_CRL *
load_crl_in(const char *dir, const char *rel)
{
	char p[PATH_MAX];
	X509_CRL *crl;
	BIO *bio;

	path_in(p, sizeof(p), dir, rel);
	bio = BIO_new_file(p, "r");
	if (bio == NULL)
		return NULL;
	crl = PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL);
	BIO_free(bio);
	return crl;
}

/*
 * Verify dir/rel against ca_rel (and crl_rel with CRL checking when not
 * NULL) for an SSL purpose, as the broker's store does. Returns the
 * X509_V_* result; fails the test if a file does not load.
 */
static int
verify_in(const char *dir, const char *ca_rel, const char *crl_rel,
    const char *rel, int purpose)
{
	X509_STORE *store;
	X509_STORE_CTX *ctx;
	X509_CRL *crl = NULL;
	X509 *ca, *cert;
	int err;

	ca = load_cert_in(dir, ca_rel);
	assert_non_null(ca);
	cert = load_cert_in(dir, rel);
	assert_non_null(cert);
	store = X509_STORE_new();
	assert_non_null(store);
	assert_int_equal(X509_STORE_add_cert(store, ca), 1);
	if (crl_rel != NULL) {
		crl = load_crl_in(dir, crl_rel);
		assert_non_null(crl);
		assert_int_equal(X509_STORE_add_crl(store, crl), 1);
		assert_int_equal(X509_STORE_set_flags(store,
		    X509_V_FLAG_CRL_CHECK), 1);
	}
	ctx = X509_STORE_CTX_new();
	assert_non_null(ctx);
	assert_int_equal(X509_STORE_CTX_init(ctx, store, cert, NULL), 1);
	assert_int_equal(X509_STORE_CTX_set_purpose(ctx, purpose), 1);
	if (X509_verify_cert(ctx) == 1)
		err = X509_V_OK;
	else
		err = X509_STORE_CTX_get_error(ctx);
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	X509_CRL_free(crl);
	X509_free(cert);
	X509_free(ca);
	ERR_clear_error();
	return err;
}

static int
verify_node(const char *dir, const char *rel)
{
	return verify_in(dir, "ca.pem", "crl.pem", rel,
	    X509_PURPOSE_SSL_CLIENT);
}

/*
 * Assert that the subject has exactly one entry of nid and that it equals
 * want byte for byte, length included (an embedded NUL would fail here).
 */
static void
assert_subject(X509 *x, int nid, const char *want)
{
	const X509_NAME *name;
	const ASN1_STRING *s;
	int i;

	name = X509_get_subject_name(x);
	i = X509_NAME_get_index_by_NID(name, nid, -1);
	assert_true(i >= 0);
	assert_int_equal(X509_NAME_get_index_by_NID(name, nid, i), -1);
	s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
	assert_int_equal(ASN1_STRING_length(s), strlen(want));
	assert_memory_equal(ASN1_STRING_get0_data(s), want, strlen(want));
}

static void
assert_no_subject(X509 *x, int nid)
{
	assert_int_equal(X509_NAME_get_index_by_NID(X509_get_subject_name(x),
	    nid, -1), -1);
}

static void
assert_key_0600(const char *dir, const char *rel)
{
	char p[PATH_MAX];
	struct stat st;

	path_in(p, sizeof(p), dir, rel);
	assert_int_equal(stat(p, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0600);
}

static void
assert_p256(EVP_PKEY *k)
{
	char group[64];
	size_t glen = 0;

	assert_non_null(k);
	assert_int_equal(EVP_PKEY_get_base_id(k), EVP_PKEY_EC);
	assert_int_equal(EVP_PKEY_get_group_name(k, group, sizeof(group),
	    &glen), 1);
	assert_string_equal(group, "prime256v1");
}

/* Read a whole small file into a malloc'd buffer owned by the caller. */
static unsigned char *
slurp(const char *dir, const char *rel, size_t *len)
{
	char p[PATH_MAX];
	unsigned char *buf;
	FILE *f;
	long n;

	path_in(p, sizeof(p), dir, rel);
	f = fopen(p, "rb");
	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n > 0 && n < 65536);
	rewind(f);
	buf = malloc((size_t)n);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	assert_int_equal(fclose(f), 0);
	*len = (size_t)n;
	return buf;
}

static void
node_rel(char *out, size_t len, const char *cc, const char *ext)
{
	int n;

	n = snprintf(out, len, "nodes/%c%c-ncp.%s", cc[0] + ('a' - 'A'),
	    cc[1] + ('a' - 'A'), ext);
	assert_true(n > 0 && (size_t)n < len);
}

static int
group_setup(void **state)
{
	struct pki_state *st;

	st = calloc(1, sizeof(*st));
	if (st == NULL || testutil_mkdtemp(st->dir, sizeof(st->dir)) == -1) {
		free(st);
		return -1;
	}
	if (pki_run("init", st->dir, NULL) != 0) {
		if (testutil_rmrf(st->dir) == -1)
			fprintf(stderr, "cannot remove %s\n", st->dir);
		free(st);
		return -1;
	}
	*state = st;
	return 0;
}

static int
group_teardown(void **state)
{
	struct pki_state *st = *state;
	int rv;

	rv = testutil_rmrf(st->dir);
	free(st);
	return rv;
}

static void
test_layout_and_modes(void **state)
{
	struct pki_state *st = *state;
	const char *d = st->dir;
	char rel[64];
	size_t i;

	assert_true(exists(d, "ca.pem"));
	assert_true(exists(d, "ca.key"));
	assert_true(exists(d, "crl.pem"));
	assert_true(exists(d, "broker.pem"));
	assert_true(exists(d, "broker.key"));
	assert_true(exists(d, "db/index.txt"));
	assert_true(exists(d, "db/serial"));
	assert_true(exists(d, "db/crlnumber"));
	assert_key_0600(d, "ca.key");
	assert_key_0600(d, "broker.key");
	for (i = 0; i < NCOUNTRIES; i++) {
		node_rel(rel, sizeof(rel), countries[i], "pem");
		assert_true(exists(d, rel));
		node_rel(rel, sizeof(rel), countries[i], "key");
		assert_key_0600(d, rel);
	}
}

static void
test_ca(void **state)
{
	struct pki_state *st = *state;
	EVP_PKEY *key;
	X509 *ca;

	ca = load_cert_in(st->dir, "ca.pem");
	assert_non_null(ca);
	key = load_key_in(st->dir, "ca.key");
	assert_p256(key);
	assert_int_equal(X509_check_private_key(ca, key), 1);
	assert_int_equal(X509_check_ca(ca), 1);
	assert_true(X509_get_key_usage(ca) & KU_KEY_CERT_SIGN);
	assert_true(X509_get_key_usage(ca) & KU_CRL_SIGN);
	assert_int_equal(X509_get_signature_nid(ca), NID_ecdsa_with_SHA256);
	assert_subject(ca, NID_commonName, "cpx Development Network CA");
	/* Self-signed by its own key. */
	assert_int_equal(X509_verify(ca, key), 1);
	EVP_PKEY_free(key);
	X509_free(ca);
}

static void
test_broker(void **state)
{
	struct pki_state *st = *state;
	EVP_PKEY *key;
	X509 *x;

	x = load_cert_in(st->dir, "broker.pem");
	assert_non_null(x);
	key = load_key_in(st->dir, "broker.key");
	assert_p256(key);
	assert_int_equal(X509_check_private_key(x, key), 1);
	assert_subject(x, NID_commonName, "cpx-broker");
	/* No C=: the broker must never pass for a country's node. */
	assert_no_subject(x, NID_countryName);
	assert_true(X509_get_extended_key_usage(x) & XKU_SSL_SERVER);
	assert_true(X509_get_extended_key_usage(x) & XKU_SSL_CLIENT);
	assert_int_equal(X509_check_host(x, "localhost", 0, 0, NULL), 1);
	assert_int_equal(X509_check_ip_asc(x, "127.0.0.1", 0), 1);
	assert_int_equal(verify_in(st->dir, "ca.pem", "crl.pem", "broker.pem",
	    X509_PURPOSE_SSL_SERVER), X509_V_OK);
	EVP_PKEY_free(key);
	X509_free(x);
}

static void
test_nodes(void **state)
{
	struct pki_state *st = *state;
	char rel[64], cn[16];
	EVP_PKEY *key;
	size_t i;
	X509 *x;

	for (i = 0; i < NCOUNTRIES; i++) {
		node_rel(rel, sizeof(rel), countries[i], "pem");
		x = load_cert_in(st->dir, rel);
		assert_non_null(x);
		(void)snprintf(cn, sizeof(cn), "%c%c-ncp",
		    countries[i][0] + ('a' - 'A'),
		    countries[i][1] + ('a' - 'A'));
		assert_subject(x, NID_countryName, countries[i]);
		assert_subject(x, NID_organizationName, "cpx");
		assert_subject(x, NID_commonName, cn);
		assert_int_equal(X509_get_signature_nid(x),
		    NID_ecdsa_with_SHA256);
		/* Nodes sign alerts with this key; never a CA. */
		assert_true(X509_get_key_usage(x) & KU_DIGITAL_SIGNATURE);
		assert_false(X509_get_key_usage(x) & KU_KEY_CERT_SIGN);
		assert_int_equal(X509_check_ca(x), 0);
		assert_true(X509_get_extended_key_usage(x) & XKU_SSL_CLIENT);
		assert_false(X509_get_extended_key_usage(x) & XKU_SSL_SERVER);
		node_rel(rel, sizeof(rel), countries[i], "key");
		key = load_key_in(st->dir, rel);
		assert_p256(key);
		assert_int_equal(X509_check_private_key(x, key), 1);
		node_rel(rel, sizeof(rel), countries[i], "pem");
		assert_int_equal(verify_node(st->dir, rel), X509_V_OK);
		/* Client-only: must not serve as a TLS server. */
		assert_int_not_equal(verify_in(st->dir, "ca.pem", NULL, rel,
		    X509_PURPOSE_SSL_SERVER), X509_V_OK);
		EVP_PKEY_free(key);
		X509_free(x);
	}
}

static void
test_init_idempotent(void **state)
{
	struct pki_state *st = *state;
	static const char *const keep[] = {
		"ca.pem", "ca.key", "broker.pem", "broker.key",
		"nodes/si-ncp.pem", "nodes/si-ncp.key", "crl.pem"
	};
	unsigned char *before[sizeof(keep) / sizeof(keep[0])], *after;
	size_t blen[sizeof(keep) / sizeof(keep[0])], alen, i;
	char p[PATH_MAX];

	for (i = 0; i < sizeof(keep) / sizeof(keep[0]); i++)
		before[i] = slurp(st->dir, keep[i], &blen[i]);
	/* A missing node is added back, the rest kept. */
	path_in(p, sizeof(p), st->dir, "nodes/hr-ncp.pem");
	assert_int_equal(unlink(p), 0);
	path_in(p, sizeof(p), st->dir, "nodes/hr-ncp.key");
	assert_int_equal(unlink(p), 0);
	assert_int_equal(pki_run("init", st->dir, NULL), 0);
	for (i = 0; i < sizeof(keep) / sizeof(keep[0]); i++) {
		after = slurp(st->dir, keep[i], &alen);
		assert_int_equal(alen, blen[i]);
		assert_memory_equal(after, before[i], alen);
		free(after);
		free(before[i]);
	}
	assert_key_0600(st->dir, "nodes/hr-ncp.key");
	assert_int_equal(verify_node(st->dir, "nodes/hr-ncp.pem"), X509_V_OK);
}

static void
test_issue(void **state)
{
	struct pki_state *st = *state;
	unsigned char *b1, *b2;
	char longname[CPX_MAX_NODE_NAME + 2];
	size_t l1, l2;
	X509 *x;

	assert_int_equal(pki_run("issue", st->dir, "XK", "xk-extra.1",
	    "--days", "30", NULL), 0);
	assert_key_0600(st->dir, "nodes/xk-extra.1.key");
	x = load_cert_in(st->dir, "nodes/xk-extra.1.pem");
	assert_non_null(x);
	assert_subject(x, NID_countryName, "XK");
	assert_subject(x, NID_commonName, "xk-extra.1");
	X509_free(x);
	assert_int_equal(verify_node(st->dir, "nodes/xk-extra.1.pem"),
	    X509_V_OK);

	/* A duplicate name is refused and the first certificate kept. */
	b1 = slurp(st->dir, "nodes/xk-extra.1.pem", &l1);
	assert_int_not_equal(pki_run("issue", st->dir, "SI", "xk-extra.1",
	    NULL), 0);
	assert_int_not_equal(pki_run("issue", st->dir, "SI", "si-ncp", NULL),
	    0);
	b2 = slurp(st->dir, "nodes/xk-extra.1.pem", &l2);
	assert_int_equal(l1, l2);
	assert_memory_equal(b1, b2, l1);
	free(b1);
	free(b2);

	/* Invalid countries and names: nothing is written. */
	assert_int_not_equal(pki_run("issue", st->dir, "ZZ", "zz-x", NULL), 0);
	assert_false(exists(st->dir, "nodes/zz-x.key"));
	assert_int_not_equal(pki_run("issue", st->dir, "si", "si-x", NULL), 0);
	assert_int_not_equal(pki_run("issue", st->dir, "SVN", "si-x", NULL),
	    0);
	assert_false(exists(st->dir, "nodes/si-x.key"));
	assert_int_not_equal(pki_run("issue", st->dir, "SI", "../si-x", NULL),
	    0);
	assert_false(exists(st->dir, "si-x.key"));
	assert_int_not_equal(pki_run("issue", st->dir, "SI", "Si-x", NULL), 0);
	assert_int_not_equal(pki_run("issue", st->dir, "SI", "-si", NULL), 0);
	/* CPX_MAX_NODE_NAME bytes is the longest name; one more is refused. */
	memset(longname, 'n', CPX_MAX_NODE_NAME);
	longname[CPX_MAX_NODE_NAME] = '\0';
	assert_int_equal(pki_run("issue", st->dir, "SI", longname, NULL), 0);
	longname[0] = 'm';
	longname[CPX_MAX_NODE_NAME] = 'n';
	longname[CPX_MAX_NODE_NAME + 1] = '\0';
	assert_int_not_equal(pki_run("issue", st->dir, "SI", longname, NULL),
	    0);
	assert_int_not_equal(pki_run("issue", st->dir, "SI", "si-y",
	    "--days", "x", NULL), 0);
	assert_false(exists(st->dir, "nodes/si-y.key"));
}

static void
test_revoke(void **state)
{
	struct pki_state *st = *state;

	assert_int_equal(pki_run("issue", st->dir, "ME", "me-gone", NULL), 0);
	assert_int_equal(verify_node(st->dir, "nodes/me-gone.pem"), X509_V_OK);
	assert_int_equal(pki_run("revoke", st->dir, "me-gone", NULL), 0);
	assert_int_equal(verify_node(st->dir, "nodes/me-gone.pem"),
	    X509_V_ERR_CERT_REVOKED);
	/* Without the CRL it would still pass: the CRL is what stops it. */
	assert_int_equal(verify_in(st->dir, "ca.pem", NULL, "nodes/me-gone.pem",
	    X509_PURPOSE_SSL_CLIENT), X509_V_OK);
	/* Others unaffected; a second revoke and a republish keep it out. */
	assert_int_equal(verify_node(st->dir, "nodes/me-ncp.pem"), X509_V_OK);
	assert_int_equal(pki_run("revoke", st->dir, "me-gone", NULL), 0);
	assert_int_equal(pki_run("crl", st->dir, "--days", "7", NULL), 0);
	assert_int_equal(verify_node(st->dir, "nodes/me-gone.pem"),
	    X509_V_ERR_CERT_REVOKED);
	assert_int_not_equal(pki_run("revoke", st->dir, "no-such-node", NULL),
	    0);
	assert_int_equal(pki_run("list", st->dir, NULL), 0);
}

static void
test_fixtures(void **state)
{
	struct pki_state *st = *state;
	const char *d = st->dir;
	X509 *x;

	assert_int_equal(pki_run("test-fixtures", d, NULL), 0);
	/* Idempotent too. */
	assert_int_equal(pki_run("test-fixtures", d, NULL), 0);
	assert_key_0600(d, "nodes/expired-si.key");
	assert_key_0600(d, "nodes/revoked-hr.key");
	assert_key_0600(d, "nodes/future-at.key");
	assert_key_0600(d, "other/rogue-si.key");
	assert_key_0600(d, "other/ca.key");
	assert_int_equal(verify_node(d, "nodes/expired-si.pem"),
	    X509_V_ERR_CERT_HAS_EXPIRED);
	assert_int_equal(verify_node(d, "nodes/future-at.pem"),
	    X509_V_ERR_CERT_NOT_YET_VALID);
	assert_int_equal(verify_node(d, "nodes/revoked-hr.pem"),
	    X509_V_ERR_CERT_REVOKED);

	/*
	 * The rogue claims to be si-ncp under a CA of the same name: only
	 * the signature tells them apart. It is well formed (its own CA
	 * accepts it), so the refusal below is for the right reason.
	 */
	x = load_cert_in(d, "other/rogue-si.pem");
	assert_non_null(x);
	assert_subject(x, NID_countryName, "SI");
	assert_subject(x, NID_commonName, "si-ncp");
	X509_free(x);
	assert_int_equal(verify_in(d, "other/ca.pem", NULL,
	    "other/rogue-si.pem", X509_PURPOSE_SSL_CLIENT), X509_V_OK);
	assert_int_not_equal(verify_node(d, "other/rogue-si.pem"), X509_V_OK);
	assert_int_not_equal(verify_in(d, "ca.pem", NULL, "other/rogue-si.pem",
	    X509_PURPOSE_SSL_CLIENT), X509_V_OK);

	/* Broker certificates a node must refuse, each for one reason. */
	assert_key_0600(d, "brokers/revoked-broker.key");
	assert_int_equal(verify_in(d, "ca.pem", "crl.pem",
	    "brokers/revoked-broker.pem", X509_PURPOSE_SSL_SERVER),
	    X509_V_ERR_CERT_REVOKED);
	x = load_cert_in(d, "brokers/evil-broker.pem");
	assert_non_null(x);
	assert_int_equal(X509_check_host(x, "evil.example", 0, 0, NULL), 1);
	assert_int_not_equal(X509_check_ip_asc(x, "127.0.0.1", 0), 1);
	assert_int_not_equal(X509_check_host(x, "localhost", 0, 0, NULL), 1);
	X509_free(x);
	assert_int_equal(verify_in(d, "ca.pem", "crl.pem",
	    "brokers/evil-broker.pem", X509_PURPOSE_SSL_SERVER), X509_V_OK);
	x = load_cert_in(d, "brokers/noeku-broker.pem");
	assert_non_null(x);
	assert_false(X509_get_extension_flags(x) & EXFLAG_XKUSAGE);
	assert_int_equal(X509_check_ip_asc(x, "127.0.0.1", 0), 1);
	X509_free(x);
}

static long
crl_number_of(X509_CRL *crl)
{
	ASN1_INTEGER *n;
	long v;

	n = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
	assert_non_null(n);
	v = ASN1_INTEGER_get(n);
	ASN1_INTEGER_free(n);
	return v;
}

static void
test_broker_san_and_crl_options(void **state)
{
	struct pki_state *st = *state;
	char other[PATH_MAX], missing[PATH_MAX], out[PATH_MAX];
	X509_CRL *a, *b;
	X509 *x;
	struct stat sb;
	time_t now = time(NULL), then;
	long na;

	/* The broker's names are chosen at init, in its subjectAltName. */
	path_in(other, sizeof(other), st->dir, "named");
	assert_int_equal(pki_run("init", other, "--broker-san",
	    "broker.example,10.0.0.5,IP:::1", NULL), 0);
	x = load_cert_in(other, "broker.pem");
	assert_non_null(x);
	assert_int_equal(X509_check_host(x, "broker.example", 0, 0, NULL), 1);
	assert_int_equal(X509_check_ip_asc(x, "10.0.0.5", 0), 1);
	assert_int_equal(X509_check_ip_asc(x, "::1", 0), 1);
	assert_int_not_equal(X509_check_host(x, "localhost", 0, 0, NULL), 1);
	X509_free(x);
	path_in(missing, sizeof(missing), st->dir, "badname");
	assert_int_not_equal(pki_run("init", missing, "--broker-san",
	    "a b", NULL), 0);
	assert_int_equal(stat(missing, &sb), -1);

	/* A CRL with chosen dates, to another file, numbered after. */
	a = load_crl_in(st->dir, "crl.pem");
	assert_non_null(a);
	na = crl_number_of(a);
	path_in(out, sizeof(out), st->dir, "test-crl.pem");
	assert_int_equal(pki_run("crl", st->dir, "--this-update",
	    "20250101000000Z", "--next-update", "20250201000000Z", "--out",
	    out, NULL), 0);
	b = load_crl_in(st->dir, "test-crl.pem");
	assert_non_null(b);
	assert_true(crl_number_of(b) > na);
	then = 1738368000;	/* 2025-02-01T00:00:00Z */
	assert_int_equal(ASN1_TIME_cmp_time_t(X509_CRL_get0_nextUpdate(b),
	    then), 0);
	X509_CRL_free(b);
	/* crl.pem itself untouched. */
	b = load_crl_in(st->dir, "crl.pem");
	assert_int_equal(crl_number_of(b), na);
	X509_CRL_free(b);
	X509_CRL_free(a);
	/* Valid for seconds. */
	assert_int_equal(pki_run("crl", st->dir, "--seconds", "60", "--out",
	    out, NULL), 0);
	b = load_crl_in(st->dir, "test-crl.pem");
	assert_non_null(b);
	assert_true(ASN1_TIME_cmp_time_t(X509_CRL_get0_nextUpdate(b),
	    now + 120) < 0);
	X509_CRL_free(b);
	assert_int_not_equal(pki_run("crl", st->dir, "--next-update", "soon",
	    NULL), 0);
	assert_int_not_equal(pki_run("crl", st->dir, "--seconds", NULL), 0);
	assert_int_equal(pki_run("pin", st->dir, NULL), 0);
}

static void
test_usage_errors(void **state)
{
	struct pki_state *st = *state;
	char missing[PATH_MAX];
	struct stat sb;

	assert_int_not_equal(pki_run(NULL), 0);
	assert_int_not_equal(pki_run("no-such-command", st->dir, NULL), 0);
	assert_int_not_equal(pki_run("init", NULL), 0);
	assert_int_equal(pki_run("--help", NULL), 0);
	/* Commands other than init never create a directory. */
	path_in(missing, sizeof(missing), st->dir, "absent");
	assert_int_not_equal(pki_run("issue", missing, "SI", "x", NULL), 0);
	assert_int_not_equal(pki_run("crl", missing, NULL), 0);
	assert_int_not_equal(pki_run("revoke", missing, "x", NULL), 0);
	assert_int_equal(stat(missing, &sb), -1);
}

static void
test_testpki_shared(void **state)
{
	const char *dir = NULL, *dir2 = NULL;
	char p[PATH_MAX], tiny[8];

	(void)state;
	assert_int_equal(testpki_get(&dir), 0);
	assert_non_null(dir);
	assert_int_equal(testpki_get(&dir2), 0);
	assert_string_equal(dir, dir2);
	assert_true(exists(dir, ".complete"));
	assert_int_equal(verify_node(dir, "nodes/si-ncp.pem"), X509_V_OK);
	assert_int_equal(verify_node(dir, "nodes/revoked-hr.pem"),
	    X509_V_ERR_CERT_REVOKED);
	assert_true(exists(dir, "other/rogue-si.pem"));

	assert_int_equal(testpki_path(p, sizeof(p), "nodes/si-ncp.pem"), 0);
	assert_int_equal(strncmp(p, dir, strlen(dir)), 0);
	assert_string_equal(p + strlen(dir), "/nodes/si-ncp.pem");
	memset(tiny, 'x', sizeof(tiny));
	assert_int_equal(testpki_path(tiny, sizeof(tiny), "nodes/si-ncp.pem"),
	    -1);
	assert_string_equal(tiny, "");
}

static void
test_testutil(void **state)
{
	char d[PATH_MAX], p[PATH_MAX + 32], small[8];
	char outside[PATH_MAX];
	struct stat sb;
	FILE *f;

	(void)state;
	memset(small, 'x', sizeof(small));
	assert_int_equal(testutil_mkdtemp(small, sizeof(small)), -1);
	assert_string_equal(small, "");

	assert_int_equal(testutil_mkdtemp(outside, sizeof(outside)), 0);
	assert_int_equal(testutil_mkdtemp(d, sizeof(d)), 0);
	assert_int_equal(strncmp(d, "/tmp/cpx-test-", 14), 0);
	assert_int_equal(stat(d, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0700);
	(void)snprintf(p, sizeof(p), "%s/a", d);
	assert_int_equal(mkdir(p, 0700), 0);
	(void)snprintf(p, sizeof(p), "%s/a/b", d);
	assert_int_equal(mkdir(p, 0700), 0);
	(void)snprintf(p, sizeof(p), "%s/a/b/f", d);
	f = fopen(p, "w");
	assert_non_null(f);
	assert_int_equal(fclose(f), 0);
	(void)snprintf(p, sizeof(p), "%s/keep", outside);
	f = fopen(p, "w");
	assert_non_null(f);
	assert_int_equal(fclose(f), 0);
	/* A symlink out of the tree is removed, never followed. */
	(void)snprintf(p, sizeof(p), "%s/a/link", d);
	assert_int_equal(symlink(outside, p), 0);

	assert_int_equal(testutil_rmrf(d), 0);
	assert_int_equal(lstat(d, &sb), -1);
	(void)snprintf(p, sizeof(p), "%s/keep", outside);
	assert_int_equal(stat(p, &sb), 0);
	assert_int_equal(testutil_rmrf(d), 0);	/* already gone */
	assert_int_equal(testutil_rmrf(outside), 0);
	assert_int_equal(lstat(outside, &sb), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_layout_and_modes),
		cmocka_unit_test(test_ca),
		cmocka_unit_test(test_broker),
		cmocka_unit_test(test_nodes),
		cmocka_unit_test(test_init_idempotent),
		cmocka_unit_test(test_issue),
		cmocka_unit_test(test_revoke),
		cmocka_unit_test(test_fixtures),
		cmocka_unit_test(test_broker_san_and_crl_options),
		cmocka_unit_test(test_usage_errors),
		cmocka_unit_test(test_testpki_shared),
		cmocka_unit_test(test_testutil),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
