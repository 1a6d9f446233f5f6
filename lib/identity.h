/*
 * identity.h: who a peer is, taken only from its verified certificate.
 */
#ifndef CPX_IDENTITY_H
#define CPX_IDENTITY_H

#include <openssl/x509.h>

#include "cpx_limits.h"

struct identity {
	char	country[3];			/* ISO 3166 alpha-2 */
	char	node[CPX_MAX_NODE_NAME + 1];	/* subject CN */
};

/*
 * Fill *id from the subject of cert: C= must be a known country code,
 * CN must be 1..CPX_MAX_NODE_NAME printable bytes with no NUL (a CN with
 * an embedded NUL is how "SI\0.evil" would pass a string compare).
 * The caller must have verified the chain first. Returns 0, or -1 with
 * *id zeroed and why[] set.
 */
int	identity_from_cert(X509 *cert, struct identity *id, char *why,
	    size_t whylen) __attribute__((warn_unused_result));

/* 1 if s is an assigned ISO 3166-1 alpha-2 code (or XK), else 0. */
int	identity_country_valid(const char *s);

#endif
