/*
 * test_identity.c: lib/identity.c. The country list, and the identity
 * taken from certificates built in memory with the OpenSSL API, including
 * the subjects an attacker with a CA mistake would try: an embedded NUL in
 * CN, two CNs, no C, a BMPString.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/objects.h>
#include <openssl/x509.h>

#include "identity.h"

struct rdn {
	int		 nid;
	int		 type;	/* V_ASN1_* */
	const char	*data;
	int		 len;	/* -1: strlen */
};

/* A certificate whose subject is exactly the entries given. */
static X509 *
cert_with(const struct rdn *rdns, size_t n)
{
	X509		*x;
	X509_NAME	*name;
	size_t		 i;
	int		 len;

	x = X509_new();
	assert_non_null(x);
	name = X509_NAME_new();
	assert_non_null(name);
	for (i = 0; i < n; i++) {
		len = rdns[i].len < 0 ? (int)strlen(rdns[i].data) : rdns[i].len;
		assert_int_equal(X509_NAME_add_entry_by_NID(name, rdns[i].nid,
		    rdns[i].type, (const unsigned char *)rdns[i].data, len, -1,
		    0), 1);
	}
	assert_int_equal(X509_set_subject_name(x, name), 1);
	X509_NAME_free(name);
	return x;
}

/* Run identity_from_cert on a subject; expect ok or refusal. */
static void
expect(const struct rdn *rdns, size_t n, int ok, const char *why_part)
{
	struct identity	 id;
	X509		*x;
	char		 why[256] = "";
	int		 rc;

	x = cert_with(rdns, n);
	memset(&id, 0xa5, sizeof(id));
	rc = identity_from_cert(x, &id, why, sizeof(why));
	X509_free(x);
	if (ok) {
		assert_int_equal(rc, 0);
		return;
	}
	assert_int_equal(rc, -1);
	/* Outputs zeroed on failure. */
	assert_int_equal(id.country[0], 0);
	assert_int_equal(id.node[0], 0);
	if (why_part != NULL && strstr(why, why_part) == NULL)
		fail_msg("why \"%s\" lacks \"%s\"", why, why_part);
}

static void
test_country_list(void **state)
{
	char	s[3];
	int	a, b, count = 0;

	(void)state;
	s[2] = '\0';
	for (a = 'A'; a <= 'Z'; a++) {
		for (b = 'A'; b <= 'Z'; b++) {
			s[0] = (char)a;
			s[1] = (char)b;
			count += identity_country_valid(s);
		}
	}
	/* 249 assigned ISO 3166-1 alpha-2 codes, plus XK. */
	assert_int_equal(count, 250);
	assert_true(identity_country_valid("SI"));
	assert_true(identity_country_valid("HR"));
	assert_true(identity_country_valid("XK"));
	assert_true(identity_country_valid("DE"));
	assert_true(identity_country_valid("AD"));
	assert_true(identity_country_valid("ZW"));
	assert_true(identity_country_valid("SS"));
	assert_false(identity_country_valid("EU"));
	assert_false(identity_country_valid("UK"));
	assert_false(identity_country_valid("XX"));
	assert_false(identity_country_valid("YU"));
	assert_false(identity_country_valid("si"));
	assert_false(identity_country_valid("S"));
	assert_false(identity_country_valid("SIX"));
	assert_false(identity_country_valid(""));
	assert_false(identity_country_valid(NULL));
}

static void
test_good_cert(void **state)
{
	const struct rdn rdns[] = {
		{ NID_countryName, V_ASN1_PRINTABLESTRING, "SI", -1 },
		{ NID_organizationName, V_ASN1_UTF8STRING, "Policija", -1 },
		{ NID_commonName, V_ASN1_UTF8STRING, "si-ncp", -1 },
	};
	struct identity	 id;
	X509		*x;
	char		 why[128];

	(void)state;
	x = cert_with(rdns, 3);
	assert_int_equal(identity_from_cert(x, &id, why, sizeof(why)), 0);
	assert_string_equal(id.country, "SI");
	assert_string_equal(id.node, "si-ncp");
	X509_free(x);
}

static void
test_cn_embedded_nul(void **state)
{
	const struct rdn rdns[] = {
		{ NID_countryName, V_ASN1_PRINTABLESTRING, "SI", -1 },
		{ NID_commonName, V_ASN1_UTF8STRING, "si-ncp\0.evil", 12 },
	};

	(void)state;
	expect(rdns, 2, 0, "NUL");
}

static void
test_missing_or_repeated(void **state)
{
	const struct rdn no_c[] = {
		{ NID_commonName, V_ASN1_UTF8STRING, "si-ncp", -1 },
	};
	const struct rdn no_cn[] = {
		{ NID_countryName, V_ASN1_PRINTABLESTRING, "SI", -1 },
	};
	const struct rdn two_cn[] = {
		{ NID_countryName, V_ASN1_PRINTABLESTRING, "SI", -1 },
		{ NID_commonName, V_ASN1_UTF8STRING, "si-ncp", -1 },
		{ NID_commonName, V_ASN1_UTF8STRING, "hr-ncp", -1 },
	};
	const struct rdn two_c[] = {
		{ NID_countryName, V_ASN1_PRINTABLESTRING, "SI", -1 },
		{ NID_countryName, V_ASN1_PRINTABLESTRING, "HR", -1 },
		{ NID_commonName, V_ASN1_UTF8STRING, "si-ncp", -1 },
	};

	(void)state;
	expect(no_c, 1, 0, "no C=");
	expect(no_cn, 1, 0, "no CN=");
	expect(two_cn, 3, 0, "more than one CN=");
	expect(two_c, 3, 0, "more than one C=");
}

static void
test_bad_country(void **state)
{
	const struct rdn eu[] = {
		{ NID_countryName, V_ASN1_PRINTABLESTRING, "EU", -1 },
		{ NID_commonName, V_ASN1_UTF8STRING, "eu-ncp", -1 },
	};
	const struct rdn lower[] = {
		{ NID_countryName, V_ASN1_PRINTABLESTRING, "si", -1 },
		{ NID_commonName, V_ASN1_UTF8STRING, "si-ncp", -1 },
	};
	const struct rdn nul[] = {
		{ NID_countryName, V_ASN1_UTF8STRING, "S\0", 2 },
		{ NID_commonName, V_ASN1_UTF8STRING, "si-ncp", -1 },
	};
	/* "SI" as UCS-2: the bytes are not the characters. */
	const struct rdn bmp[] = {
		{ NID_countryName, V_ASN1_BMPSTRING, "\0S\0I", 4 },
		{ NID_commonName, V_ASN1_UTF8STRING, "si-ncp", -1 },
	};

	(void)state;
	expect(eu, 2, 0, "ISO 3166");
	expect(lower, 2, 0, "ISO 3166");
	expect(nul, 2, 0, "two letters");
	expect(bmp, 2, 0, "string type");
}

static void
test_cn_length_and_bytes(void **state)
{
	char		 n64[65], n65[66];
	struct rdn	 rdns[2] = {
		{ NID_countryName, V_ASN1_PRINTABLESTRING, "HR", -1 },
		{ NID_commonName, V_ASN1_UTF8STRING, NULL, -1 },
	};

	(void)state;
	memset(n64, 'a', 64);
	n64[64] = '\0';
	memset(n65, 'a', 65);
	n65[65] = '\0';
	rdns[1].data = n64;
	expect(rdns, 2, 1, NULL);
	rdns[1].data = n65;
	expect(rdns, 2, 0, "length");
	rdns[1].data = "";
	rdns[1].len = 0;
	expect(rdns, 2, 0, "length");
	rdns[1].len = -1;
	rdns[1].data = "hr-ncp\nFAKE LOG LINE";
	expect(rdns, 2, 0, "non-printable");
	rdns[1].data = "hr-\xc5\xa1";	/* UTF-8, but not ASCII */
	expect(rdns, 2, 0, "non-printable");
	rdns[1].data = "hr ncp 1";
	expect(rdns, 2, 1, NULL);
}

static void
test_null_cert(void **state)
{
	struct identity	id;
	char		why[64];

	(void)state;
	assert_int_equal(identity_from_cert(NULL, &id, why, sizeof(why)), -1);
	assert_int_equal(id.country[0], 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_country_list),
		cmocka_unit_test(test_good_cert),
		cmocka_unit_test(test_cn_embedded_nul),
		cmocka_unit_test(test_missing_or_repeated),
		cmocka_unit_test(test_bad_country),
		cmocka_unit_test(test_cn_length_and_bytes),
		cmocka_unit_test(test_null_cert),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
