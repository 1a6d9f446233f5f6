/*
 * verify.c: the broker's acceptance checks for one published alert, in
 * the order that stops the cheapest attacks first: signature and signer
 * certificate (a forged or replayed-from-elsewhere alert), signer against
 * session (a node passing off alerts signed by another node), origin (a
 * node publishing for another country), form (limits and enums). The
 * policy (rights, recipients, handling) is checked after, in publish.c;
 * verify_relay, also called from there, pairs the certificate comparison
 * with the policy's relay decision (policy_check_relay).
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <openssl/x509.h>

#include "alert.h"
#include "policy.h"
#include "verify.h"

int
verify_signer_is(const Cpx__SignedAlert *sa, const uint8_t *cert,
    size_t len)
{
	/* Certificates are public: a plain compare leaks nothing. */
	return sa != NULL && cert != NULL && len > 0 &&
	    sa->signer_cert.data != NULL && sa->signer_cert.len == len &&
	    memcmp(sa->signer_cert.data, cert, len) == 0;
}

/* The identity in sa's signer certificate (verified before). */
static int
signer_identity(const Cpx__SignedAlert *sa, struct identity *signer)
{
	const unsigned char *p;
	X509 *cert = NULL;
	char why[128];
	int rv = -1;

	memset(signer, 0, sizeof(*signer));
	if (sa == NULL || sa->signer_cert.data == NULL ||
	    sa->signer_cert.len == 0 || sa->signer_cert.len > LONG_MAX)
		goto done;
	p = sa->signer_cert.data;
	if ((cert = d2i_X509(NULL, &p, (long)sa->signer_cert.len)) == NULL)
		goto done;
	if (identity_from_cert(cert, signer, why, sizeof(why)) == -1)
		goto done;
	rv = 0;
done:
	X509_free(cert);
	return rv;
}

int
verify_relay(const struct policy *p, const struct identity *peer,
    const uint8_t *cert, size_t certlen, const Cpx__SignedAlert *sa,
    char *note, size_t notelen, int *reason, char *why, size_t whylen)
{
	struct identity signer;

	if (notelen > 0)
		note[0] = '\0';
	if (verify_signer_is(sa, cert, certlen))
		return 0;
	if (signer_identity(sa, &signer) == -1) {
		*reason = CPX__REASON__REASON_SIGNER_MISMATCH;
		snprintf(why, whylen, "signer certificate unreadable");
		return -1;
	}
	if (policy_check_relay(p, peer, &signer, reason, why, whylen) == -1)
		return -1;
	snprintf(note, notelen, "relayed for %s/%s", signer.country,
	    signer.node);
	return 0;
}

int
verify_signed(struct trust *t, const struct verify_peer *peer,
    const Cpx__SignedAlert *sa, int64_t now_ms, int64_t max_skew_ms,
    Cpx__Alert **alert, struct identity *signer, int *relayed, int *reason,
    char *why, size_t whylen)
{
	Cpx__Alert *a = NULL;

	*alert = NULL;
	*relayed = 0;
	if (sa == NULL) {
		*reason = CPX__REASON__REASON_MALFORMED;
		snprintf(why, whylen, "publish without an alert");
		return -1;
	}
	if (sign_verify_alert(t, sa, &a, signer, reason, why, whylen) == -1)
		return -1;
	/*
	 * The signer must be of the same country as the session: a node
	 * may relay nothing signed by another country's key.
	 */
	if (strcmp(signer->country, peer->id->country) != 0) {
		*reason = CPX__REASON__REASON_ORIGIN_MISMATCH;
		snprintf(why, whylen, "alert signed by %s/%s but published by "
		    "a node of %s", signer->country, signer->node,
		    peer->id->country);
		goto fail;
	}
	/*
	 * And it must be the session's own certificate, compared whole:
	 * the same country (or even the same CN) is not the same key. Else
	 * any node could pass off an alert another node of its country
	 * signed, replayed from a delivery, as its own; only a node granted
	 * the relay right may carry alerts for others, and the audit record
	 * then names both.
	 */
	if (!verify_signer_is(sa, peer->cert, peer->cert_len)) {
		if (!peer->may_relay || peer->cert == NULL) {
			*reason = CPX__REASON__REASON_SIGNER_MISMATCH;
			snprintf(why, whylen, "alert signed by %s/%s but sent "
			    "over the session of %s/%s: a node publishes "
			    "only what it signed itself (policy right relay "
			    "to carry another node's alerts)", signer->country,
			    signer->node, peer->id->country, peer->id->node);
			goto fail;
		}
		*relayed = 1;
	}
	if (sign_verify_alert_origin(a, signer, reason, why, whylen) == -1)
		goto fail;
	if (alert_validate(a, now_ms, max_skew_ms, reason, why, whylen) == -1)
		goto fail;
	*alert = a;
	return 0;
fail:
	cpx__alert__free_unpacked(a, NULL);
	memset(signer, 0, sizeof(*signer));
	*relayed = 0;
	return -1;
}
