/*
 * policy.h: who may do what. Named regions, each node's rights, and the
 * decisions the broker takes from them. Loading is policy_load.c's,
 * deciding policy.c's; acting (routing, refusing) is in route.c and the
 * edge.
 *
 * The policy file is INI (read through inifile.c):
 *
 *   [region western-balkans]
 *   members = AL BA ME MK RS XK
 *
 *   [defaults]             ; any node not named below
 *   rights = publish subscribe
 *
 *   [country AT]           ; every node of a country
 *   rights = publish subscribe
 *
 *   [node si-audit]        ; one node, by certificate CN
 *   country = SI           ; optional: refuse the CN from another country
 *   rights = subscribe audit
 *
 * The region "all" (every country) is built in. A node's rights come from
 * its [node CN] section, else its [country XX] section, else [defaults],
 * else none. A node whose section pins a country and whose certificate
 * names another gets no rights at all. Rights words are publish,
 * subscribe, audit, relay (which needs publish in the same line) and
 * witness (check and cosign the broker's checkpoints);
 * "rights =" (empty) grants none. Unknown sections,
 * keys or words, duplicate sections, keys or members, and sections with
 * no keys are errors. CNs compare exactly (case-sensitive).
 */
#ifndef CPX_POLICY_H
#define CPX_POLICY_H

#include <stddef.h>

#include "identity.h"
#include "proto/cpx.pb-c.h"

struct policy;

struct policy_rights {
	int	publish;
	int	subscribe;
	int	audit;
	int	relay;		/* carry alerts of same-country nodes */
	int	witness;	/* cosign checkpoints (docs/witness.md) */
};

/* Bounds on what a policy may define (a policy is refused beyond them). */
#define POLICY_MAX_REGIONS	256
#define POLICY_MAX_NODES	4096

/*
 * Read and check the policy file. Returns an owned policy (policy_free)
 * or NULL with err[] naming the file, line and key at fault.
 */
struct policy *policy_load(const char *path, char *err, size_t errlen);
/*
 * The same from memory: buf[0..len) (need not be NUL-terminated; a NUL
 * byte in it is an error), name is used in messages. policy_load reads
 * the file and calls this.
 */
struct policy *policy_load_string(const char *name, const char *buf,
	    size_t len, char *err, size_t errlen);
void	policy_free(struct policy **p);

/* Rights of a verified peer; all zero when the policy grants nothing. */
void	policy_rights(const struct policy *p, const struct identity *peer,
	    struct policy_rights *out);

/* 1 if region exists (built-in "all" included). */
int	policy_region_exists(const struct policy *p, const char *region);
/* 1 if country is a member of region. */
int	policy_region_has(const struct policy *p, const char *region,
	    const char *country);

/*
 * May peer publish this (already alert_validate'd) alert? Checks the
 * publish right, that each recipient is a country or a known region, and
 * that the recipients fit the handling code. Returns 0, or -1 with
 * *reason (CPX__REASON__*) and why[].
 */
int	policy_check_publish(const struct policy *p,
	    const struct identity *peer, const Cpx__Alert *a, int *reason,
	    char *why, size_t whylen) __attribute__((warn_unused_result));

/*
 * May peer publish an alert signed by another node, signer (both
 * certificates verified, the signer's not the session's)? Only with the
 * relay right (else SIGNER_MISMATCH), only for a signer of the peer's own
 * country (else ORIGIN_MISMATCH), and only if the signer itself holds the
 * publish right (else NOT_AUTHORIZED): relaying carries an alert, it
 * grants nothing. Returns 0, or -1 with *reason and why[].
 */
int	policy_check_relay(const struct policy *p, const struct identity *peer,
	    const struct identity *signer, int *reason, char *why,
	    size_t whylen) __attribute__((warn_unused_result));

/*
 * May peer subscribe (or replay) with these filters? Checks the subscribe
 * right (and the audit right too for all_kinds: NOT_AUTHORIZED), filter
 * limits, origins, categories and severities, and that every region named
 * exists (BAD_REQUEST). Returns 0 or -1 with *reason and why[].
 */
int	policy_check_subscribe(const struct policy *p,
	    const struct identity *peer, Cpx__Filter *const *filters,
	    size_t nfilters, int all_kinds, int *reason, char *why,
	    size_t whylen) __attribute__((warn_unused_result));

/*
 * Is node entitled to receive alert a, whatever it subscribed to? It
 * needs the subscribe right and must be among the recipients: an empty
 * list means the whole network (HANDLING_NETWORK only), a country matches
 * itself, a region matches its members except for HANDLING_NAMED_ONLY,
 * which matches named countries only. 1 or 0.
 */
int	policy_may_receive(const struct policy *p, const struct identity *node,
	    const Cpx__Alert *a);

/*
 * Does a match any of the filters (see cpx.proto Filter)? No filter at
 * all matches nothing. 1 or 0.
 */
int	policy_filters_match(const struct policy *p,
	    Cpx__Filter *const *filters, size_t nfilters, const Cpx__Alert *a);

#endif
