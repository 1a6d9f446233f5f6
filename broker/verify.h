/*
 * verify.h: what the broker checks about a published alert that needs no
 * broker state: signature, signer certificate, origin and form. The
 * policy step follows in broker.c (policy_check_publish), which acts on
 * the result.
 */
#ifndef CPX_VERIFY_H
#define CPX_VERIFY_H

#include <stddef.h>
#include <stdint.h>

#include "identity.h"
#include "proto/cpx.pb-c.h"
#include "sign.h"

/*
 * The checks that need no broker state (run on a verifier thread with its
 * own trust): signature and signer chain, signer country = peer country,
 * origin = signer country, form and clock skew. On success returns 0,
 * *alert (owned by the caller, cpx__alert__free_unpacked) and *signer. On
 * refusal returns -1 with *reason (CPX__REASON__*), why[] and *alert NULL.
 */
int	verify_signed(struct trust *t, const struct identity *peer,
	    const Cpx__SignedAlert *sa, int64_t now_ms, int64_t max_skew_ms,
	    Cpx__Alert **alert, struct identity *signer, int *reason, char *why,
	    size_t whylen) __attribute__((warn_unused_result));

#endif
