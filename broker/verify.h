/*
 * verify.h: what the broker checks about a published alert that needs no
 * broker state: signature, signer certificate, who signed it against who
 * sent it, origin and form. The policy step follows in publish.c
 * (policy_check_publish, policy_check_relay), which acts on the result.
 */
#ifndef CPX_VERIFY_H
#define CPX_VERIFY_H

#include <stddef.h>
#include <stdint.h>

#include "identity.h"
#include "proto/cpx.pb-c.h"
#include "sign.h"

/*
 * The session a publish came over, as the checks need it. Everything is
 * borrowed from the caller; a verifier job holds its own copy.
 */
struct verify_peer {
	const struct identity	*id;		/* from the session's cert */
	const uint8_t		*cert;		/* the session's cert, DER */
	size_t			 cert_len;
	int			 may_relay;	/* policy right relay */
};

/*
 * The checks that need no broker state (run on a verifier thread with its
 * own trust): signature and signer chain, signer country = peer country,
 * signer certificate = the session's certificate (unless peer->may_relay:
 * then *relayed is set to 1 and policy_check_relay has the last word),
 * origin = signer country, form and clock skew. On success returns 0,
 * *alert (owned by the caller, cpx__alert__free_unpacked), *signer and
 * *relayed. On refusal returns -1 with *reason (CPX__REASON__*), why[],
 * *alert NULL and *relayed 0.
 */
int	verify_signed(struct trust *t, const struct verify_peer *peer,
	    const Cpx__SignedAlert *sa, int64_t now_ms, int64_t max_skew_ms,
	    Cpx__Alert **alert, struct identity *signer, int *relayed,
	    int *reason, char *why, size_t whylen)
	    __attribute__((warn_unused_result));

/*
 * 1 if sa was signed with exactly the certificate cert[0..len) (DER), the
 * session's own; 0 otherwise, or if either is missing.
 */
int	verify_signer_is(const Cpx__SignedAlert *sa, const uint8_t *cert,
	    size_t len);

struct policy;

/*
 * The relay decision, on the network thread with the policy as it is now
 * (a verifier job judged the right as it was when submitted). If sa (which
 * verify_signed accepted) was signed with the session's own certificate
 * cert[0..certlen), returns 0 with note[] empty. Otherwise the session
 * relays it: returns 0 with note[] "relayed for CC/node" (for the audit
 * record) if policy_check_relay allows it, else -1 with *reason and
 * why[].
 */
int	verify_relay(const struct policy *p, const struct identity *peer,
	    const uint8_t *cert, size_t certlen, const Cpx__SignedAlert *sa,
	    char *note, size_t notelen, int *reason, char *why, size_t whylen)
	    __attribute__((warn_unused_result));

#endif
