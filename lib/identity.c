/*
 * identity.c: who a peer or a signer is, taken only from the subject of a
 * certificate that the caller has already verified against the network CA.
 *
 * This is the one place that reads C= and CN=: every other module
 * compares the struct identity filled here, never the raw X509_NAME, so
 * the checks on a name (one C=, one CN=, no NUL byte inside it) cannot be
 * forgotten in a second copy. Owns the list of ISO 3166-1 alpha-2 codes.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include "identity.h"

/*
 * Every officially assigned ISO 3166-1 alpha-2 code (249), two letters
 * each, in alphabetical order, plus "XK" (Kosovo, user-assigned, as the
 * EU uses it). Reserved and other user-assigned codes (EU, UK, XX, ZZ...)
 * are not here: a certificate or alert naming them is refused rather than
 * guessed at.
 */
static const char iso3166[] =
	"ADAEAFAGAIALAMAOAQARASATAUAWAXAZ"
	"BABBBDBEBFBGBHBIBJBLBMBNBOBQBRBSBTBVBWBYBZ"
	"CACCCDCFCGCHCICKCLCMCNCOCRCUCVCWCXCYCZ"
	"DEDJDKDMDODZ"
	"ECEEEGEHERESET"
	"FIFJFKFMFOFR"
	"GAGBGDGEGFGGGHGIGLGMGNGPGQGRGSGTGUGWGY"
	"HKHMHNHRHTHU"
	"IDIEILIMINIOIQIRISIT"
	"JEJMJOJP"
	"KEKGKHKIKMKNKPKRKWKYKZ"
	"LALBLCLILKLRLSLTLULVLY"
	"MAMCMDMEMFMGMHMKMLMMMNMOMPMQMRMSMTMUMVMWMXMYMZ"
	"NANCNENFNGNINLNONPNRNUNZ"
	"OM"
	"PAPEPFPGPHPKPLPMPNPRPSPTPWPY"
	"QA"
	"RERORSRURW"
	"SASBSCSDSESGSHSISJSKSLSMSNSOSRSSSTSVSXSYSZ"
	"TCTDTFTGTHTJTKTLTMTNTOTRTTTVTWTZ"
	"UAUGUMUSUYUZ"
	"VAVCVEVGVIVNVU"
	"WFWS"
	"XK"
	"YEYT"
	"ZAZMZW";

int
identity_country_valid(const char *s)
{
	size_t	i;

	if (s == NULL || s[0] < 'A' || s[0] > 'Z' || s[1] < 'A' ||
	    s[1] > 'Z' || s[2] != '\0')
		return 0;
	for (i = 0; i + 1 < sizeof(iso3166) - 1; i += 2)
		if (iso3166[i] == s[0] && iso3166[i + 1] == s[1])
			return 1;
	return 0;
}

/*
 * The string of the single entry of nid in name, as raw bytes. Refuses a
 * missing entry and a repeated one: with two CN= an attacker-chosen one
 * could be read by a checker that takes the first and a logger that takes
 * the last. Refuses string types whose bytes are not the characters
 * (BMPString, UniversalString), so the byte checks below mean what they
 * say.
 */
static int
single_entry(X509_NAME *name, int nid, const char *what,
    const unsigned char **data, int *len, char *why, size_t whylen)
{
	X509_NAME_ENTRY	*e;
	ASN1_STRING	*str;
	int		 idx, type;

	*data = NULL;
	*len = 0;
	idx = X509_NAME_get_index_by_NID(name, nid, -1);
	if (idx < 0) {
		snprintf(why, whylen, "certificate subject has no %s", what);
		return -1;
	}
	if (X509_NAME_get_index_by_NID(name, nid, idx) >= 0) {
		snprintf(why, whylen,
		    "certificate subject has more than one %s", what);
		return -1;
	}
	if ((e = X509_NAME_get_entry(name, idx)) == NULL ||
	    (str = X509_NAME_ENTRY_get_data(e)) == NULL) {
		snprintf(why, whylen, "certificate subject %s unreadable",
		    what);
		return -1;
	}
	type = ASN1_STRING_type(str);
	if (type != V_ASN1_PRINTABLESTRING && type != V_ASN1_UTF8STRING &&
	    type != V_ASN1_IA5STRING) {
		snprintf(why, whylen,
		    "certificate subject %s has string type %d", what, type);
		return -1;
	}
	*data = ASN1_STRING_get0_data(str);
	*len = ASN1_STRING_length(str);
	if (*data == NULL || *len < 0) {
		*data = NULL;
		*len = 0;
		snprintf(why, whylen, "certificate subject %s unreadable",
		    what);
		return -1;
	}
	return 0;
}

int
identity_from_cert(X509 *cert, struct identity *id, char *why, size_t whylen)
{
	X509_NAME		*name;
	const unsigned char	*data;
	int			 len, i, rc = -1;

	memset(id, 0, sizeof(*id));
	if (cert == NULL || (name = X509_get_subject_name(cert)) == NULL) {
		snprintf(why, whylen, "no certificate subject");
		goto done;
	}

	if (single_entry(name, NID_countryName, "C=", &data, &len, why,
	    whylen) == -1)
		goto done;
	if (len != 2 || memchr(data, '\0', len) != NULL) {
		snprintf(why, whylen, "certificate C= is not two letters");
		goto done;
	}
	memcpy(id->country, data, 2);
	id->country[2] = '\0';
	if (!identity_country_valid(id->country)) {
		snprintf(why, whylen, "certificate C= is not an assigned "
		    "ISO 3166 alpha-2 code");
		goto done;
	}

	if (single_entry(name, NID_commonName, "CN=", &data, &len, why,
	    whylen) == -1)
		goto done;
	if (len < 1 || (size_t)len > CPX_MAX_NODE_NAME) {
		snprintf(why, whylen, "certificate CN= length %d not in 1..%u",
		    len, CPX_MAX_NODE_NAME);
		goto done;
	}
	/*
	 * The ASN.1 length is what was signed; strlen() is what every C
	 * comparison sees. A NUL inside makes "si-ncp\0.evil" look like
	 * "si-ncp" to strcmp while being a different certificate name.
	 */
	if (memchr(data, '\0', len) != NULL) {
		snprintf(why, whylen, "certificate CN= has an embedded NUL");
		goto done;
	}
	/* Printable ASCII only: the name goes into logs and audit records. */
	for (i = 0; i < len; i++) {
		if (data[i] < 0x20 || data[i] > 0x7e) {
			snprintf(why, whylen, "certificate CN= has a "
			    "non-printable byte 0x%02x at %d", data[i], i);
			goto done;
		}
	}
	memcpy(id->node, data, len);
	id->node[len] = '\0';
	rc = 0;
done:
	if (rc == -1)
		memset(id, 0, sizeof(*id));
	return rc;
}
