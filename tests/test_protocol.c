/*
 * test_protocol.c: docs/protocol.md against the code. The document's test
 * vectors are read from the document itself (fenced blocks whose first
 * line is "vector: NAME"), decoded with lib/wire.c and checked with
 * lib/alert.c and lib/sign.c: an outside implementer who copies those
 * bytes copies bytes the broker and every subscriber accept. A flipped
 * byte must make them fail. The canonical-form rules the document states
 * are checked with a key made for the run, and its limits and reasons
 * tables against lib/cpx_limits.h and the schema. The session rules are
 * checked against a real broker by test_protocol_broker.c.
 *
 * "test_protocol --generate" prints fresh vector blocks for the document:
 * a throwaway CA and node key are made in memory and never written out,
 * so no private key of the vectors exists anywhere once it has run.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "alert.h"
#include "cpx_limits.h"
#include "identity.h"
#include "sign.h"
#include "testutil.h"
#include "wire.h"

#ifndef CPX_SOURCE_DIR
#error "CPX_SOURCE_DIR must be defined by the build"
#endif

#define DAY_S		(24L * 3600L)

/*
 * The example the document walks through. The generator builds the
 * vectors from these; the test checks the decoded vectors against them,
 * so the prose, the constants and the bytes cannot drift apart.
 */
#define VEC_ALERT_ID	"6f1d2c3e-0b8a-4e57-9a41-d3c2b1a09e87"
#define VEC_ISSUED_AT	1796119200000LL	/* 2026-12-01T10:00:00Z */
#define VEC_EXPIRES_AT	(VEC_ISSUED_AT + 86400000LL)
#define VEC_SUMMARY	"White van, plates LJ 123-AB, 12 persons on " \
			"board, heading to Obre\xc5\xbe" "je."
#define VEC_SEQ		1042u
#define VEC_ACCEPTED_AT	(VEC_ISSUED_AT + 187)
#define VEC_PUB_REQ	1u
#define VEC_SUB_REQ	7u
#define VEC_PING_NONCE	1796119230000ULL
#define VEC_CA_FROM	1793491200L	/* 2026-11-01T00:00:00Z */
#define VEC_CA_UNTIL	2109110400L	/* 2036-11-01T00:00:00Z */
#define VEC_NODE_UNTIL	1856649600L	/* 2028-11-01T00:00:00Z */

/* Every vector block the document must carry. */
static const char *const vector_names[] = {
	"ca-cert", "signer-cert", "alert", "alert-sha256", "signature",
	"welcome-frame", "publish-frame", "ack-frame", "subscribe-frame",
	"subscribed-frame", "delivery-frame", "ping-frame", "pong-frame",
	"error-frame"
};

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))

/* --- certificates (generator and run-time key) --------------------- */

static int
add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX	 ctx;
	X509_EXTENSION	*ext;
	int		 rc;

	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	if ((ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value)) == NULL)
		return -1;
	rc = X509_add_ext(x, ext, -1) == 1 ? 0 : -1;
	X509_EXTENSION_free(ext);
	return rc;
}

/*
 * A certificate for key with subject C=c (if not NULL), O=cpx, CN=cn,
 * signed by issuer/ikey (self-signed CA if issuer is NULL), valid from
 * nb to na (Unix seconds). A leaf is a node certificate: clientAuth,
 * digitalSignature. Returns an owned X509 or NULL.
 */
static X509 *
make_cert(EVP_PKEY *key, const char *c, const char *cn, X509 *issuer,
    EVP_PKEY *ikey, time_t nb, time_t na)
{
	X509		*x = NULL;
	X509_NAME	*name;
	uint8_t		 serial[16];
	BIGNUM		*bn = NULL;
	int		 ok = 0;

	if ((x = X509_new()) == NULL || X509_set_version(x, 2) != 1)
		goto done;
	/* A random positive 128-bit serial, as the network CA issues. */
	if (RAND_bytes(serial, sizeof(serial)) != 1)
		goto done;
	serial[0] &= 0x7f;
	if ((bn = BN_bin2bn(serial, sizeof(serial), NULL)) == NULL ||
	    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) == NULL)
		goto done;
	if (ASN1_TIME_set(X509_getm_notBefore(x), nb) == NULL ||
	    ASN1_TIME_set(X509_getm_notAfter(x), na) == NULL)
		goto done;
	name = X509_get_subject_name(x);
	if ((c != NULL && X509_NAME_add_entry_by_txt(name, "C", MBSTRING_ASC,
	    (const unsigned char *)c, -1, -1, 0) != 1) ||
	    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
	    (const unsigned char *)"cpx", -1, -1, 0) != 1 ||
	    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	    (const unsigned char *)cn, -1, -1, 0) != 1)
		goto done;
	if (X509_set_issuer_name(x, issuer != NULL ?
	    X509_get_subject_name(issuer) : name) != 1 ||
	    X509_set_pubkey(x, key) != 1)
		goto done;
	if (add_ext(x, issuer != NULL ? issuer : x,
	    NID_subject_key_identifier, "hash") == -1 ||
	    add_ext(x, issuer != NULL ? issuer : x,
	    NID_authority_key_identifier, "keyid:always") == -1)
		goto done;
	if (issuer == NULL) {
		if (add_ext(x, x, NID_basic_constraints,
		    "critical,CA:TRUE") == -1 ||
		    add_ext(x, x, NID_key_usage,
		    "critical,keyCertSign,cRLSign") == -1)
			goto done;
	} else if (add_ext(x, issuer, NID_basic_constraints,
	    "critical,CA:FALSE") == -1 ||
	    add_ext(x, issuer, NID_key_usage,
	    "critical,digitalSignature") == -1 ||
	    add_ext(x, issuer, NID_ext_key_usage, "clientAuth") == -1)
		goto done;
	if (X509_sign(x, ikey, EVP_sha256()) <= 0)
		goto done;
	ok = 1;
done:
	BN_free(bn);
	if (!ok) {
		X509_free(x);
		x = NULL;
	}
	return x;
}

/* A throwaway CA and one node (C=SI, CN=si-ncp) with its P-256 key. */
struct pki {
	EVP_PKEY	*ca_key;
	X509		*ca;
	EVP_PKEY	*node_key;
	X509		*node;
};

static void
pki_clear(struct pki *p)
{
	EVP_PKEY_free(p->ca_key);
	X509_free(p->ca);
	EVP_PKEY_free(p->node_key);
	X509_free(p->node);
	memset(p, 0, sizeof(*p));
}

static int
pki_make(struct pki *p, const char *ca_cn, time_t ca_from, time_t ca_until,
    time_t node_until)
{
	memset(p, 0, sizeof(*p));
	if ((p->ca_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256")) ==
	    NULL ||
	    (p->node_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256")) ==
	    NULL ||
	    (p->ca = make_cert(p->ca_key, NULL, ca_cn, NULL, p->ca_key,
	    ca_from, ca_until)) == NULL ||
	    (p->node = make_cert(p->node_key, "SI", "si-ncp", p->ca,
	    p->ca_key, ca_from, node_until)) == NULL) {
		pki_clear(p);
		return -1;
	}
	return 0;
}

/* --- the example alert and its frames ------------------------------ */

/* Serialize the document's example alert; caller frees *out. */
static int
example_alert(uint8_t **out, size_t *len)
{
	Cpx__Alert	 a = CPX__ALERT__INIT;
	Cpx__Place	 place = CPX__PLACE__INIT;
	Cpx__Vehicle	 v = CPX__VEHICLE__INIT;
	Cpx__Vehicle	*vs[1] = { &v };
	char		*recipients[] = { "HR", "western-balkans" };
	char		*route[] = { "Ljubljana", "Novo Mesto",
			    "Obre\xc5\xbe" "je" };

	a.id = VEC_ALERT_ID;
	a.origin = "SI";
	a.issued_at = VEC_ISSUED_AT;
	a.category = CPX__CATEGORY__CATEGORY_VEHICLE;
	a.severity = CPX__SEVERITY__SEVERITY_HIGH;
	a.handling = CPX__HANDLING__HANDLING_RESTRICTED;
	a.n_recipients = NELEM(recipients);
	a.recipients = recipients;
	a.summary = VEC_SUMMARY;
	place.name = "Obre\xc5\xbe" "je";
	place.crossing = "Obre\xc5\xbe" "je-Bregana";
	place.has_coordinates = 1;
	place.latitude = 45.8496;
	place.longitude = 15.6903;
	a.place = &place;
	a.n_route = NELEM(route);
	a.route = route;
	v.plate = "LJ 123-AB";
	v.country = "SI";
	v.description = "white Ford Transit";
	a.n_vehicles = 1;
	a.vehicles = vs;
	a.persons_count = 12;
	a.expires_at = VEC_EXPIRES_AT;

	*len = cpx__alert__get_packed_size(&a);
	if ((*out = malloc(*len)) == NULL)
		return -1;
	if (cpx__alert__pack(&a, *out) != *len) {
		free(*out);
		*out = NULL;
		return -1;
	}
	return 0;
}

/* The example session's envelopes, in the document's order. */
struct frames {
	Cpx__Envelope	 env[9];
	Cpx__Welcome	 welcome;
	Cpx__Publish	 publish;
	Cpx__Ack	 ack;
	Cpx__Subscribe	 subscribe;
	Cpx__Filter	 filter;
	Cpx__Filter	*filters[1];
	char		*origins[1];
	Cpx__Subscribed	 subscribed;
	Cpx__Delivery	 delivery;
	Cpx__Ping	 ping;
	Cpx__Pong	 pong;
	Cpx__Error	 error;
};

static const char *const frame_names[] = {
	"welcome-frame", "publish-frame", "ack-frame", "subscribe-frame",
	"subscribed-frame", "delivery-frame", "ping-frame", "pong-frame",
	"error-frame"
};

/* Fill f; sa (not copied) must outlive it. */
static void
example_frames(struct frames *f, Cpx__SignedAlert *sa)
{
	size_t	i;

	for (i = 0; i < NELEM(f->env); i++)
		f->env[i] = (Cpx__Envelope)CPX__ENVELOPE__INIT;

	f->welcome = (Cpx__Welcome)CPX__WELCOME__INIT;
	f->welcome.broker_name = "cpx-broker";
	f->welcome.country = "SI";
	f->welcome.node = "si-ncp";
	f->welcome.may_publish = 1;
	f->welcome.may_subscribe = 1;
	f->welcome.last_seq = VEC_SEQ - 1;
	f->welcome.max_frame = CPX_MAX_FRAME;
	f->welcome.ping_interval = 30;
	f->env[0].body_case = CPX__ENVELOPE__BODY_WELCOME;
	f->env[0].welcome = &f->welcome;

	f->publish = (Cpx__Publish)CPX__PUBLISH__INIT;
	f->publish.request_id = VEC_PUB_REQ;
	f->publish.alert = sa;
	f->env[1].body_case = CPX__ENVELOPE__BODY_PUBLISH;
	f->env[1].publish = &f->publish;

	f->ack = (Cpx__Ack)CPX__ACK__INIT;
	f->ack.request_id = VEC_PUB_REQ;
	f->ack.seq = VEC_SEQ;
	f->ack.alert_id = VEC_ALERT_ID;
	f->env[2].body_case = CPX__ENVELOPE__BODY_ACK;
	f->env[2].ack = &f->ack;

	f->filter = (Cpx__Filter)CPX__FILTER__INIT;
	f->origins[0] = "SI";
	f->filter.n_origins = 1;
	f->filter.origins = f->origins;
	f->filter.min_severity = CPX__SEVERITY__SEVERITY_HIGH;
	f->filters[0] = &f->filter;
	f->subscribe = (Cpx__Subscribe)CPX__SUBSCRIBE__INIT;
	f->subscribe.request_id = VEC_SUB_REQ;
	f->subscribe.n_filters = 1;
	f->subscribe.filters = f->filters;
	f->subscribe.resume = 1;
	f->subscribe.resume_after = VEC_SEQ - 1;
	f->env[3].body_case = CPX__ENVELOPE__BODY_SUBSCRIBE;
	f->env[3].subscribe = &f->subscribe;

	f->subscribed = (Cpx__Subscribed)CPX__SUBSCRIBED__INIT;
	f->subscribed.request_id = VEC_SUB_REQ;
	f->subscribed.live_from = VEC_SEQ - 1;
	f->env[4].body_case = CPX__ENVELOPE__BODY_SUBSCRIBED;
	f->env[4].subscribed = &f->subscribed;

	f->delivery = (Cpx__Delivery)CPX__DELIVERY__INIT;
	f->delivery.seq = VEC_SEQ;
	f->delivery.accepted_at = VEC_ACCEPTED_AT;
	f->delivery.alert = sa;
	f->env[5].body_case = CPX__ENVELOPE__BODY_DELIVERY;
	f->env[5].delivery = &f->delivery;

	f->ping = (Cpx__Ping)CPX__PING__INIT;
	f->ping.nonce = VEC_PING_NONCE;
	f->env[6].body_case = CPX__ENVELOPE__BODY_PING;
	f->env[6].ping = &f->ping;
	f->pong = (Cpx__Pong)CPX__PONG__INIT;
	f->pong.nonce = VEC_PING_NONCE;
	f->env[7].body_case = CPX__ENVELOPE__BODY_PONG;
	f->env[7].pong = &f->pong;

	f->error = (Cpx__Error)CPX__ERROR__INIT;
	f->error.reason = CPX__REASON__REASON_IDLE_TIMEOUT;
	f->error.text = "nothing received for 90000 ms";
	f->error.fatal = 1;
	f->env[8].body_case = CPX__ENVELOPE__BODY_ERROR;
	f->env[8].error = &f->error;
}

/* --- generator ----------------------------------------------------- */

static void
print_hex(const char *name, const uint8_t *p, size_t n)
{
	size_t	i;

	printf("```text\nvector: %s\n", name);
	for (i = 0; i < n; i++)
		printf("%02x%s", p[i], (i + 1) % 32 == 0 || i + 1 == n ?
		    "\n" : "");
	printf("```\n\n");
}

static int
print_pem(const char *name, X509 *x)
{
	printf("```text\nvector: %s\n", name);
	fflush(stdout);
	if (PEM_write_X509(stdout, x) != 1)
		return -1;
	printf("```\n\n");
	return 0;
}

/* Print every vector block; 0 or -1. The keys die with this function. */
static int
generate(void)
{
	struct pki		 p;
	struct frames		 f;
	Cpx__SignedAlert	 sa = CPX__SIGNED_ALERT__INIT;
	uint8_t			*alert = NULL, *buf = NULL;
	uint8_t			 md[SHA256_DIGEST_LENGTH];
	size_t			 len, blen, i;
	int			 rc = -1;

	if (pki_make(&p, "cpx protocol test vectors CA (test only)",
	    VEC_CA_FROM, VEC_CA_UNTIL, VEC_NODE_UNTIL) == -1) {
		fprintf(stderr, "cannot make the throwaway PKI\n");
		return -1;
	}
	if (example_alert(&alert, &len) == -1 ||
	    sign_alert(p.node_key, p.node, alert, len, &sa) == -1) {
		fprintf(stderr, "cannot sign the example alert\n");
		goto done;
	}
	if (print_pem("ca-cert", p.ca) == -1 ||
	    print_pem("signer-cert", p.node) == -1)
		goto done;
	print_hex("alert", sa.alert.data, sa.alert.len);
	SHA256(sa.alert.data, sa.alert.len, md);
	print_hex("alert-sha256", md, sizeof(md));
	print_hex("signature", sa.signature.data, sa.signature.len);
	example_frames(&f, &sa);
	for (i = 0; i < NELEM(f.env); i++) {
		if (wire_encode(&f.env[i], &buf, &blen) == -1) {
			fprintf(stderr, "cannot encode %s\n", frame_names[i]);
			goto done;
		}
		print_hex(frame_names[i], buf, blen);
		free(buf);
		buf = NULL;
	}
	rc = 0;
done:
	free(buf);
	free(alert);
	sign_signed_alert_clear(&sa);
	pki_clear(&p);
	return rc;
}

/* --- reading the document ------------------------------------------ */

static char	*doc;		/* docs/protocol.md, NUL-terminated */
static char	 tmpdir[64];
static char	 ca_path[128];

static int
doc_load(void **state)
{
	const char	*src;
	char		 path[1024];
	FILE		*fp = NULL;
	long		 size;
	int		 rc = -1;

	(void)state;
	src = getenv("CPX_SOURCE_DIR");
	if (src == NULL || src[0] == '\0')
		src = CPX_SOURCE_DIR;
	snprintf(path, sizeof(path), "%s/docs/protocol.md", src);
	if ((fp = fopen(path, "r")) == NULL) {
		fprintf(stderr, "cannot open %s\n", path);
		goto done;
	}
	if (fseek(fp, 0, SEEK_END) == -1 || (size = ftell(fp)) < 0 ||
	    fseek(fp, 0, SEEK_SET) == -1 ||
	    (doc = malloc((size_t)size + 1)) == NULL ||
	    fread(doc, 1, (size_t)size, fp) != (size_t)size)
		goto done;
	doc[size] = '\0';
	if (testutil_mkdtemp(tmpdir, sizeof(tmpdir)) == -1)
		goto done;
	rc = 0;
done:
	if (fp != NULL)
		fclose(fp);
	return rc;
}

static int
doc_free(void **state)
{
	(void)state;
	free(doc);
	doc = NULL;
	if (ca_path[0] != '\0')
		(void)remove(ca_path);
	if (tmpdir[0] != '\0' && testutil_rmrf(tmpdir) == -1)
		return -1;
	return 0;
}

/*
 * The body of the fenced block whose first line is "vector: name", as a
 * new string (caller frees), or NULL if the document has none. A second
 * block with the same name is an error: a reader could copy either one.
 */
static char *
doc_vector(const char *name)
{
	char		 label[64];
	const char	*p, *nl, *body = NULL, *end = NULL;
	char		*out;
	int		 in_block = 0, first = 0, found = 0;

	snprintf(label, sizeof(label), "vector: %s", name);
	for (p = doc; *p != '\0'; p = *nl != '\0' ? nl + 1 : nl) {
		if ((nl = strchr(p, '\n')) == NULL)
			nl = p + strlen(p);
		if (strncmp(p, "```", 3) == 0) {
			if (in_block && body != NULL && end == NULL)
				end = p;
			in_block = !in_block;
			first = in_block;
			continue;
		}
		if (first) {
			first = 0;
			if ((size_t)(nl - p) == strlen(label) &&
			    strncmp(p, label, strlen(label)) == 0) {
				if (found++)
					return NULL;
				body = nl + 1;
			}
		}
	}
	if (body == NULL || end == NULL || end < body)
		return NULL;
	if ((out = malloc((size_t)(end - body) + 1)) == NULL)
		return NULL;
	memcpy(out, body, (size_t)(end - body));
	out[end - body] = '\0';
	return out;
}

/* Hex digits of a vector block (white space ignored) as bytes. */
static uint8_t *
vector_bytes(const char *name, size_t *len)
{
	char		*text;
	uint8_t		*out;
	const char	*p;
	size_t		 n = 0;
	int		 hi = -1, v = 0;

	text = doc_vector(name);
	if (text == NULL)
		fail_msg("docs/protocol.md: no single vector block %s", name);
	out = malloc(strlen(text) / 2 + 1);
	assert_non_null(out);
	for (p = text; *p != '\0'; p++) {
		if (*p == ' ' || *p == '\n' || *p == '\t')
			continue;
		if (*p >= '0' && *p <= '9')
			v = *p - '0';
		else if (*p >= 'a' && *p <= 'f')
			v = *p - 'a' + 10;
		else
			fail_msg("vector %s: '%c' is not a lower-case hex "
			    "digit", name, *p);
		if (hi == -1)
			hi = v;
		else {
			out[n++] = (uint8_t)(hi << 4 | v);
			hi = -1;
		}
	}
	assert_int_equal(hi, -1);
	free(text);
	*len = n;
	return out;
}

static X509 *
vector_cert(const char *name)
{
	char	*text;
	BIO	*bio;
	X509	*x;

	text = doc_vector(name);
	if (text == NULL)
		fail_msg("docs/protocol.md: no single vector block %s", name);
	bio = BIO_new_mem_buf(text, -1);
	assert_non_null(bio);
	x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	assert_non_null(x);
	BIO_free(bio);
	free(text);
	return x;
}

/* The signed alert of the document, parts owned by the caller. */
static void
vector_signed(Cpx__SignedAlert *sa)
{
	static const Cpx__SignedAlert	 init = CPX__SIGNED_ALERT__INIT;
	X509				*x;
	uint8_t				*p;
	int				 n;

	*sa = init;
	sa->alert.data = vector_bytes("alert", &sa->alert.len);
	sa->signature.data = vector_bytes("signature", &sa->signature.len);
	x = vector_cert("signer-cert");
	n = i2d_X509(x, NULL);
	assert_true(n > 0);
	sa->signer_cert.data = malloc((size_t)n);
	assert_non_null(sa->signer_cert.data);
	p = sa->signer_cert.data;
	assert_int_equal(i2d_X509(x, &p), n);
	sa->signer_cert.len = (size_t)n;
	X509_free(x);
}

/* A trust holding the document's CA and no CRL (the vectors have none). */
static struct trust *
vector_trust(void)
{
	struct trust	*t;
	X509		*ca;
	FILE		*fp;
	char		 err[256];

	snprintf(ca_path, sizeof(ca_path), "%s/ca.pem", tmpdir);
	ca = vector_cert("ca-cert");
	fp = fopen(ca_path, "w");
	assert_non_null(fp);
	assert_int_equal(PEM_write_X509(fp, ca), 1);
	assert_int_equal(fclose(fp), 0);
	X509_free(ca);
	t = trust_new(ca_path, NULL, err, sizeof(err));
	if (t == NULL)
		fail_msg("%s", err);
	return t;
}

/* --- tests ----------------------------------------------------------- */

static void
test_every_vector_present(void **state)
{
	char	*text;
	size_t	 i;

	(void)state;
	for (i = 0; i < NELEM(vector_names); i++) {
		if ((text = doc_vector(vector_names[i])) == NULL)
			fail_msg("no single vector block %s", vector_names[i]);
		free(text);
	}
	assert_null(doc_vector("no-such-vector"));
}

/* The alert bytes decode to the example the document describes. */
static void
test_alert_is_the_example(void **state)
{
	uint8_t		*b, *want, *md;
	uint8_t		 got[SHA256_DIGEST_LENGTH];
	size_t		 len, wlen, mdlen;
	Cpx__Alert	*a;
	char		 why[256];
	int		 reason;

	(void)state;
	b = vector_bytes("alert", &len);
	md = vector_bytes("alert-sha256", &mdlen);
	assert_int_equal(mdlen, SHA256_DIGEST_LENGTH);
	SHA256(b, len, got);
	assert_memory_equal(got, md, sizeof(got));

	/* What the generator builds today is byte for byte the document's. */
	assert_int_equal(example_alert(&want, &wlen), 0);
	assert_int_equal(wlen, len);
	assert_memory_equal(want, b, len);

	a = cpx__alert__unpack(NULL, len, b);
	assert_non_null(a);
	assert_string_equal(a->id, VEC_ALERT_ID);
	assert_string_equal(a->origin, "SI");
	assert_int_equal(a->issued_at, VEC_ISSUED_AT);
	assert_int_equal(a->expires_at, VEC_EXPIRES_AT);
	assert_string_equal(a->summary, VEC_SUMMARY);
	assert_int_equal(a->n_recipients, 2);
	assert_string_equal(a->recipients[1], "western-balkans");
	assert_int_equal(a->base.n_unknown_fields, 0);
	/* Valid as of its own issue time, with the default skew bound. */
	assert_int_equal(alert_validate(a, VEC_ISSUED_AT, 300000, &reason,
	    why, sizeof(why)), 0);
	cpx__alert__free_unpacked(a, NULL);
	free(want);
	free(md);
	free(b);
}

/*
 * The signature and the signer chain verify against the document's CA,
 * whatever today's date: the history path checks a signer certificate
 * that has expired since as of the alert's issue time, and a direct check
 * with the verification time set to issued_at covers the CA too.
 */
static void
test_signature_verifies(void **state)
{
	Cpx__SignedAlert	 sa;
	Cpx__Alert		*a = NULL;
	struct identity		 signer;
	struct trust		*t;
	X509_STORE_CTX		*ctx;
	X509_STORE		*store;
	X509			*ca, *leaf;
	char			 why[256];
	int			 reason, err;

	(void)state;
	vector_signed(&sa);
	t = vector_trust();
	if (sign_verify_alert_history(t, &sa, &a, &signer, &reason, why,
	    sizeof(why)) == -1)
		fail_msg("document vectors do not verify: %s", why);
	assert_string_equal(signer.country, "SI");
	assert_string_equal(signer.node, "si-ncp");
	assert_int_equal(sign_verify_alert_origin(a, &signer, &reason, why,
	    sizeof(why)), 0);
	cpx__alert__free_unpacked(a, NULL);
	trust_free(&t);

	ca = vector_cert("ca-cert");
	leaf = vector_cert("signer-cert");
	store = X509_STORE_new();
	assert_non_null(store);
	assert_int_equal(X509_STORE_add_cert(store, ca), 1);
	ctx = X509_STORE_CTX_new();
	assert_non_null(ctx);
	assert_int_equal(X509_STORE_CTX_init(ctx, store, leaf, NULL), 1);
	assert_int_equal(X509_STORE_CTX_set_purpose(ctx,
	    X509_PURPOSE_SSL_CLIENT), 1);
	X509_VERIFY_PARAM_set_time(X509_STORE_CTX_get0_param(ctx),
	    (time_t)(VEC_ISSUED_AT / 1000));
	if (X509_verify_cert(ctx) != 1) {
		err = X509_STORE_CTX_get_error(ctx);
		fail_msg("chain at issued_at: %s",
		    X509_verify_cert_error_string(err));
	}
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	X509_free(leaf);
	X509_free(ca);
	sign_signed_alert_clear(&sa);
}

/*
 * sa must be refused. Whether the reason is the signature itself depends
 * on the date once the signer certificate has expired (the history path
 * then reads issued_at from the changed bytes to judge the chain), so the
 * signature alone is checked apart, with the key of the certificate.
 */
static void
expect_refused(struct trust *t, const Cpx__SignedAlert *sa, EVP_PKEY *pub,
    const char *what, size_t pos)
{
	Cpx__Alert	*a = NULL;
	struct identity	 signer;
	EVP_MD_CTX	*md;
	char		 why[256];
	int		 reason;

	if (sign_verify_alert_history(t, sa, &a, &signer, &reason, why,
	    sizeof(why)) == 0)
		fail_msg("%s with byte %zu changed still verifies", what, pos);
	assert_null(a);
	if (pub == NULL)
		return;
	md = EVP_MD_CTX_new();
	assert_non_null(md);
	assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL,
	    pub), 1);
	if (EVP_DigestVerify(md, sa->signature.data, sa->signature.len,
	    sa->alert.data, sa->alert.len) == 1)
		fail_msg("%s with byte %zu changed: signature still valid",
		    what, pos);
	EVP_MD_CTX_free(md);
}

/* Any one byte changed in the alert, signature or certificate: refused. */
static void
test_flipped_byte_refused(void **state)
{
	Cpx__SignedAlert	 sa;
	struct trust		*t;
	X509			*leaf;
	EVP_PKEY		*pub;
	size_t			 i;

	(void)state;
	vector_signed(&sa);
	t = vector_trust();
	leaf = vector_cert("signer-cert");
	pub = X509_get0_pubkey(leaf);
	assert_non_null(pub);
	for (i = 0; i < sa.alert.len; i++) {
		sa.alert.data[i] ^= 0x01;
		expect_refused(t, &sa, pub, "alert", i);
		sa.alert.data[i] ^= 0x01;
	}
	for (i = 0; i < sa.signature.len; i++) {
		sa.signature.data[i] ^= 0x80;
		expect_refused(t, &sa, pub, "signature", i);
		sa.signature.data[i] ^= 0x80;
	}
	/* The last byte of the certificate is in the CA's signature. */
	sa.signer_cert.data[sa.signer_cert.len - 1] ^= 0x01;
	expect_refused(t, &sa, NULL, "certificate", sa.signer_cert.len - 1);
	X509_free(leaf);
	trust_free(&t);
	sign_signed_alert_clear(&sa);
}

/*
 * Each frame: the prefix is the body length, the body decodes to the
 * example message, and encoding it again gives the same bytes, so the
 * document shows the one encoding cpx itself produces.
 */
static void
test_frames(void **state)
{
	Cpx__SignedAlert	 sa;
	struct frames		 f;
	const uint8_t		*body;
	uint8_t			*frame, *again, *want;
	size_t			 len, blen, used, alen, wlen, i;
	Cpx__Envelope		*env;
	Cpx__SignedAlert	*in;
	char			 why[256];
	int			 reason;

	(void)state;
	vector_signed(&sa);
	example_frames(&f, &sa);
	for (i = 0; i < NELEM(frame_names); i++) {
		frame = vector_bytes(frame_names[i], &len);
		assert_true(len >= 4);
		assert_int_equal((size_t)frame[0] << 24 |
		    (size_t)frame[1] << 16 | (size_t)frame[2] << 8 |
		    frame[3], len - 4);
		assert_int_equal(wire_frame_next(frame, len, CPX_MAX_FRAME,
		    &body, &blen, &used), WIRE_FRAME);
		assert_int_equal(used, len);
		env = wire_decode(body, blen, &reason, why, sizeof(why));
		if (env == NULL)
			fail_msg("%s: %s", frame_names[i], why);
		assert_int_equal(env->body_case, f.env[i].body_case);
		assert_int_equal(wire_encode(env, &again, &alen), 0);
		assert_int_equal(alen, len);
		assert_memory_equal(again, frame, len);
		/* The generator's frame for the same alert is the same. */
		assert_int_equal(wire_encode(&f.env[i], &want, &wlen), 0);
		assert_int_equal(wlen, len);
		assert_memory_equal(want, frame, len);
		in = env->body_case == CPX__ENVELOPE__BODY_PUBLISH ?
		    env->publish->alert :
		    env->body_case == CPX__ENVELOPE__BODY_DELIVERY ?
		    env->delivery->alert : NULL;
		if (in != NULL) {
			assert_int_equal(in->alert.len, sa.alert.len);
			assert_memory_equal(in->alert.data, sa.alert.data,
			    sa.alert.len);
			assert_int_equal(in->signature.len, sa.signature.len);
			assert_memory_equal(in->signature.data,
			    sa.signature.data, sa.signature.len);
		}
		free(want);
		free(again);
		cpx__envelope__free_unpacked(env, NULL);
		free(frame);
	}
	sign_signed_alert_clear(&sa);
}

/* --- canonical form, with a key made for this run ------------------ */

static struct pki	run_pki;
static struct trust	*run_trust;
static char		 run_ca_path[128];

static int
run_pki_setup(void **state)
{
	FILE	*fp;
	char	 err[256];
	time_t	 now = time(NULL);

	(void)state;
	if (pki_make(&run_pki, "cpx test run CA", now - DAY_S, now + DAY_S,
	    now + DAY_S) == -1)
		return -1;
	snprintf(run_ca_path, sizeof(run_ca_path), "%s/run-ca.pem", tmpdir);
	if ((fp = fopen(run_ca_path, "w")) == NULL)
		return -1;
	if (PEM_write_X509(fp, run_pki.ca) != 1) {
		fclose(fp);
		return -1;
	}
	if (fclose(fp) != 0)
		return -1;
	if ((run_trust = trust_new(run_ca_path, NULL, err,
	    sizeof(err))) == NULL) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	return 0;
}

static int
run_pki_teardown(void **state)
{
	(void)state;
	trust_free(&run_trust);
	pki_clear(&run_pki);
	if (run_ca_path[0] != '\0')
		(void)remove(run_ca_path);
	return 0;
}

/*
 * Sign b[0..len) with the run's node key and verify it; returns the
 * reason (REASON_NONE if accepted) and the number of unknown fields kept.
 */
static int
sign_and_verify(const uint8_t *b, size_t len, unsigned *unknown)
{
	Cpx__SignedAlert	 sa = CPX__SIGNED_ALERT__INIT;
	Cpx__Alert		*a = NULL;
	struct identity		 signer;
	char			 why[256];
	int			 reason;

	assert_int_equal(sign_alert(run_pki.node_key, run_pki.node, b, len,
	    &sa), 0);
	if (sign_verify_alert(run_trust, &sa, &a, &signer, &reason, why,
	    sizeof(why)) == 0) {
		*unknown = a->base.n_unknown_fields;
		cpx__alert__free_unpacked(a, NULL);
		reason = CPX__REASON__REASON_NONE;
	}
	sign_signed_alert_clear(&sa);
	return reason;
}

/*
 * The alert of the document's canonical-form section: id "a-1",
 * origin "SI", issued_at 1796119200000, category 2, severity 3,
 * handling 1, summary "x".
 */
static const uint8_t minimal[] = {
	0x0a, 0x03, 'a', '-', '1',
	0x12, 0x02, 'S', 'I',
	0x18, 0x80, 0x82, 0xb0, 0x88, 0xa3, 0x34,
	0x20, 0x02,
	0x28, 0x03,
	0x30, 0x01,
	0x42, 0x01, 'x'
};

/* minimal with nadd bytes inserted at `at', replacing `drop' bytes. */
struct variant {
	const char	*what;
	size_t		 at;
	size_t		 drop;
	uint8_t		 add[10];
	size_t		 nadd;
	int		 want;
	unsigned	 unknown;	/* unknown fields kept, if accepted */
};

static const struct variant variants[] = {
	{ "as is", 0, 0, { 0 }, 0, CPX__REASON__REASON_NONE, 0 },
	{ "unknown field 16 (varint) at the end", sizeof(minimal), 0,
	    { 0x80, 0x01, 0x05 }, 3, CPX__REASON__REASON_NONE, 1 },
	{ "unknown field 20 (bytes) at the end", sizeof(minimal), 0,
	    { 0xa2, 0x01, 0x01, 'z' }, 4, CPX__REASON__REASON_NONE, 1 },
	{ "unknown field 16 between id and origin", 5, 0,
	    { 0x80, 0x01, 0x05 }, 3, CPX__REASON__REASON_INVALID_ALERT, 0 },
	{ "origin before id", 0, 9, { 0x12, 0x02, 'S', 'I', 0x0a, 0x03,
	    'a', '-', '1' }, 9, CPX__REASON__REASON_INVALID_ALERT, 0 },
	{ "persons_count 0 written", sizeof(minimal), 0, { 0x60, 0x00 }, 2,
	    CPX__REASON__REASON_INVALID_ALERT, 0 },
	{ "summary given twice", sizeof(minimal), 0, { 0x42, 0x01, 'y' }, 3,
	    CPX__REASON__REASON_INVALID_ALERT, 0 },
	{ "category as a two-byte varint", 16, 2, { 0x20, 0x82, 0x00 }, 3,
	    CPX__REASON__REASON_INVALID_ALERT, 0 },
	{ "has_coordinates 2", sizeof(minimal), 0, { 0x4a, 0x02, 0x18, 0x02 },
	    4, CPX__REASON__REASON_INVALID_ALERT, 0 },
	{ "empty place (present, all defaults)", sizeof(minimal), 0,
	    { 0x4a, 0x00 }, 2, CPX__REASON__REASON_NONE, 0 },
	{ "category with wire type 2", sizeof(minimal), 0, { 0x22, 0x00 }, 2,
	    CPX__REASON__REASON_MALFORMED, 0 },
	{ "unknown field 16 as a group", sizeof(minimal), 0,
	    { 0x83, 0x01, 0x84, 0x01 }, 4, CPX__REASON__REASON_MALFORMED, 0 },
	{ "author (field 15) as a varint", sizeof(minimal), 0, { 0x78, 0x05 },
	    2, CPX__REASON__REASON_MALFORMED, 0 },
};

static void
test_canonical_form(void **state)
{
	const struct variant	*v;
	uint8_t			 b[sizeof(minimal) + 16];
	size_t			 i, len;
	unsigned		 unknown;
	int			 reason;

	(void)state;
	for (i = 0; i < NELEM(variants); i++) {
		v = &variants[i];
		memcpy(b, minimal, v->at);
		memcpy(b + v->at, v->add, v->nadd);
		memcpy(b + v->at + v->nadd, minimal + v->at + v->drop,
		    sizeof(minimal) - v->at - v->drop);
		len = sizeof(minimal) + v->nadd - v->drop;
		unknown = 0;
		reason = sign_and_verify(b, len, &unknown);
		if (reason != v->want)
			fail_msg("%s: %s", v->what, alert_reason_name(reason));
		if (reason == CPX__REASON__REASON_NONE &&
		    unknown != v->unknown)
			fail_msg("%s: %u unknown fields kept", v->what,
			    unknown);
	}
}

/* --- the document's tables against the code ------------------------ */

static void
expect_row(const char *fmt, ...)
{
	char	row[160];
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(row, sizeof(row), fmt, ap);
	va_end(ap);
	if (strstr(doc, row) == NULL)
		fail_msg("docs/protocol.md lacks the table row \"%s\"", row);
}

static void
test_limits_table(void **state)
{
	static const struct {
		const char	*name;
		unsigned	 value;
	} limits[] = {
		{ "CPX_MAX_FRAME", CPX_MAX_FRAME },
		{ "CPX_MAX_FRAME_PREAUTH", CPX_MAX_FRAME_PREAUTH },
		{ "CPX_MAX_ALERT", CPX_MAX_ALERT },
		{ "CPX_MAX_SIGNATURE", CPX_MAX_SIGNATURE },
		{ "CPX_MAX_CERT", CPX_MAX_CERT },
		{ "CPX_MAX_ID", CPX_MAX_ID },
		{ "CPX_MAX_SUMMARY", CPX_MAX_SUMMARY },
		{ "CPX_MAX_TEXT", CPX_MAX_TEXT },
		{ "CPX_MAX_PLATE", CPX_MAX_PLATE },
		{ "CPX_MAX_RECIPIENTS", CPX_MAX_RECIPIENTS },
		{ "CPX_MAX_ROUTE", CPX_MAX_ROUTE },
		{ "CPX_MAX_VEHICLES", CPX_MAX_VEHICLES },
		{ "CPX_MAX_FILTERS", CPX_MAX_FILTERS },
		{ "CPX_MAX_FILTER_ORIGINS", CPX_MAX_FILTER_ORIGINS },
		{ "CPX_MAX_FILTER_REGIONS", CPX_MAX_FILTER_REGIONS },
		{ "CPX_MAX_FILTER_CATS", CPX_MAX_FILTER_CATS },
		{ "CPX_MAX_REGION_NAME", CPX_MAX_REGION_NAME },
		{ "CPX_MAX_NODE_NAME", CPX_MAX_NODE_NAME },
		{ "CPX_MAX_ERROR_TEXT", CPX_MAX_ERROR_TEXT },
	};
	size_t	i;

	(void)state;
	for (i = 0; i < NELEM(limits); i++)
		expect_row("| %u | `%s` |", limits[i].value, limits[i].name);
}

/* Every Reason of the schema has its row: number, name, enum name. */
static void
test_reasons_table(void **state)
{
	const ProtobufCEnumDescriptor	*d = &cpx__reason__descriptor;
	unsigned			 i;

	(void)state;
	for (i = 0; i < d->n_values; i++)
		expect_row("| %d | `%s` | `%s` |", d->values[i].value,
		    alert_reason_name(d->values[i].value), d->values[i].name);
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_vector_present),
		cmocka_unit_test(test_alert_is_the_example),
		cmocka_unit_test(test_signature_verifies),
		cmocka_unit_test(test_flipped_byte_refused),
		cmocka_unit_test(test_frames),
		cmocka_unit_test_setup_teardown(test_canonical_form,
		    run_pki_setup, run_pki_teardown),
		cmocka_unit_test(test_limits_table),
		cmocka_unit_test(test_reasons_table),
	};


	if (argc == 2 && strcmp(argv[1], "--generate") == 0)
		return generate() == 0 ? 0 : 1;
	return cmocka_run_group_tests(tests, doc_load, doc_free);
}
