/*
 * verify.c: the broker's acceptance checks for one published alert, in
 * the order that stops the cheapest attacks first: signature and signer
 * certificate (a forged or replayed-from-elsewhere alert), origin (a node
 * publishing for another country), form (limits and enums). The policy
 * (rights, recipients, handling) is checked after, in broker.c.
 */
#include <stdio.h>
#include <string.h>

#include "alert.h"
#include "verify.h"

int
verify_signed(struct trust *t, const struct identity *peer,
    const Cpx__SignedAlert *sa, int64_t now_ms, int64_t max_skew_ms,
    Cpx__Alert **alert, struct identity *signer, int *reason, char *why,
    size_t whylen)
{
	Cpx__Alert *a = NULL;

	*alert = NULL;
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
	if (strcmp(signer->country, peer->country) != 0) {
		*reason = CPX__REASON__REASON_ORIGIN_MISMATCH;
		snprintf(why, whylen, "alert signed by %s/%s but published by "
		    "a node of %s", signer->country, signer->node,
		    peer->country);
		goto fail;
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
	return -1;
}
