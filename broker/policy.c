/*
 * policy.c: every entitlement decision taken from a loaded policy: the
 * rights of a peer, may this peer publish this alert, relay for another
 * node, subscribe with these filters, receive this alert. It decides
 * only; route.c and the edge act on the answers. Reading the policy file
 * is policy_load.c's.
 *
 * Countries are indexed 0..675 from their two letters, so a region is a
 * 676-bit set and membership is one bit test. Regions and nodes are kept
 * sorted by name for binary search.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpx_limits.h"
#include "errfmt.h"
#include "identity.h"
#include "log.h"
#include "policy.h"
#include "policy_impl.h"
#include "wire.h"

static const struct region *
region_find(const struct policy *p, const char *name)
{
	struct region key;

	if (strlen(name) > CPX_MAX_REGION_NAME || p->nregions == 0)
		return NULL;
	strcpy(key.name, name);
	return bsearch(&key, p->regions, p->nregions, sizeof(key),
	    region_cmp);
}

static const struct node_rule *
node_find(const struct policy *p, const char *cn)
{
	struct node_rule key;

	if (strlen(cn) > CPX_MAX_NODE_NAME || p->nnodes == 0)
		return NULL;
	strcpy(key.cn, cn);
	return bsearch(&key, p->nodes, p->nnodes, sizeof(key), node_cmp);
}

static void
rights_lookup(const struct policy *p, const struct identity *peer,
    struct policy_rights *out, int log)
{
	const struct node_rule *n;
	int ci;

	memset(out, 0, sizeof(*out));
	if (p == NULL || peer == NULL)
		return;
	ci = cc_shape(peer->country);
	if ((n = node_find(p, peer->node)) != NULL) {
		/*
		 * A CN is only unique within its country's issuing
		 * practice: a pinned node's rights never go to a same-named
		 * certificate of another country.
		 */
		if (n->country[0] != '\0' &&
		    strcmp(n->country, peer->country) != 0) {
			if (log)
				log_warnx("policy: node %s has country %s but "
				    "[node %s] (line %u) pins %s: no rights",
				    peer->node, peer->country, n->cn, n->line,
				    n->country);
			return;
		}
		*out = n->rights;
		return;
	}
	if (ci == -1)
		return;
	if (bit_get(p->country_set, ci))
		*out = p->country[ci];
	else if (p->has_defaults)
		*out = p->defaults;
}

void
policy_rights(const struct policy *p, const struct identity *peer,
    struct policy_rights *out)
{
	rights_lookup(p, peer, out, 1);
}

int
policy_region_exists(const struct policy *p, const char *region)
{
	if (region == NULL)
		return 0;
	if (strcmp(region, "all") == 0)
		return 1;
	return p != NULL && region_find(p, region) != NULL;
}

int
policy_region_has(const struct policy *p, const char *region,
    const char *country)
{
	const struct region *r;
	int ci;

	if (region == NULL || (ci = cc_shape(country)) == -1)
		return 0;
	if (strcmp(region, "all") == 0)
		return identity_country_valid(country);
	if (p == NULL || (r = region_find(p, region)) == NULL)
		return 0;
	return bit_get(r->members, ci);
}

static int
refuse(int *reason, int code, char *why, size_t whylen, const char *fmt,
    ...) __attribute__((format(printf, 5, 6)));

static int
refuse(int *reason, int code, char *why, size_t whylen, const char *fmt,
    ...)
{
	va_list ap;

	*reason = code;
	va_start(ap, fmt);
	(void)verrf(why, whylen, fmt, ap);
	va_end(ap);
	return -1;
}

int
policy_check_publish(const struct policy *p, const struct identity *peer,
    const Cpx__Alert *a, int *reason, char *why, size_t whylen)
{
	struct policy_rights r;
	const char *rc;
	char tmp[CPX_MAX_REGION_NAME + 2];
	size_t i;

	*reason = CPX__REASON__REASON_NONE;
	if (whylen > 0)
		why[0] = '\0';
	rights_lookup(p, peer, &r, 1);
	if (!r.publish)
		return refuse(reason, CPX__REASON__REASON_NOT_AUTHORIZED, why,
		    whylen, "node %s (%s) has no publish right",
		    peer != NULL ? peer->node : "?",
		    peer != NULL ? peer->country : "?");
	/* alert_validate checked these; the policy does not rely on it. */
	if (a == NULL || a->n_recipients > CPX_MAX_RECIPIENTS ||
	    (a->n_recipients > 0 && a->recipients == NULL))
		return refuse(reason, CPX__REASON__REASON_INVALID_ALERT, why,
		    whylen, "recipients missing or over %u",
		    CPX_MAX_RECIPIENTS);
	switch (a->handling) {
	case CPX__HANDLING__HANDLING_NETWORK:
		break;
	case CPX__HANDLING__HANDLING_RESTRICTED:
	case CPX__HANDLING__HANDLING_NAMED_ONLY:
		/* Empty means "everyone": never for a restricted alert. */
		if (a->n_recipients == 0)
			return refuse(reason,
			    CPX__REASON__REASON_HANDLING_RECIPIENTS, why,
			    whylen, "%s handling needs named recipients",
			    a->handling == CPX__HANDLING__HANDLING_RESTRICTED ?
			    "restricted" : "named-only");
		break;
	default:
		return refuse(reason, CPX__REASON__REASON_INVALID_ALERT, why,
		    whylen, "unknown handling %d", (int)a->handling);
	}
	for (i = 0; i < a->n_recipients; i++) {
		rc = a->recipients[i];
		if (rc == NULL)
			return refuse(reason,
			    CPX__REASON__REASON_INVALID_ALERT, why, whylen,
			    "recipient %zu missing", i);
		if (cc_index(rc) != -1)
			continue;
		if (!policy_region_exists(p, rc))
			return refuse(reason,
			    CPX__REASON__REASON_UNKNOWN_RECIPIENT, why, whylen,
			    "recipient \"%s\" is neither a country nor a "
			    "region", wire_printable(rc, tmp, sizeof(tmp)));
		/* A region's membership is the broker's, not the origin's. */
		if (a->handling == CPX__HANDLING__HANDLING_NAMED_ONLY)
			return refuse(reason,
			    CPX__REASON__REASON_HANDLING_RECIPIENTS, why,
			    whylen, "named-only handling names countries, not "
			    "region %s", rc);
	}
	return 0;
}

int
policy_check_relay(const struct policy *p, const struct identity *peer,
    const struct identity *signer, int *reason, char *why, size_t whylen)
{
	struct policy_rights r;

	*reason = CPX__REASON__REASON_NONE;
	if (whylen > 0)
		why[0] = '\0';
	if (peer == NULL || signer == NULL)
		return refuse(reason, CPX__REASON__REASON_SIGNER_MISMATCH, why,
		    whylen, "signer or session unknown");
	rights_lookup(p, peer, &r, 1);
	if (!r.publish || !r.relay)
		return refuse(reason, CPX__REASON__REASON_SIGNER_MISMATCH, why,
		    whylen, "alert signed by %s/%s but sent over the session "
		    "of %s/%s, which has no relay right in the policy",
		    signer->country, signer->node, peer->country, peer->node);
	/* A relay never crosses a border: the origin is the signer's. */
	if (strcmp(signer->country, peer->country) != 0)
		return refuse(reason, CPX__REASON__REASON_ORIGIN_MISMATCH, why,
		    whylen, "alert signed by %s/%s cannot be relayed by %s/%s: "
		    "another country", signer->country, signer->node,
		    peer->country, peer->node);
	rights_lookup(p, signer, &r, 1);
	if (!r.publish)
		return refuse(reason, CPX__REASON__REASON_NOT_AUTHORIZED, why,
		    whylen, "signer %s/%s of the relayed alert has no publish "
		    "right", signer->country, signer->node);
	return 0;
}

int
policy_check_subscribe(const struct policy *p, const struct identity *peer,
    Cpx__Filter *const *filters, size_t nfilters, int all_kinds, int *reason,
    char *why, size_t whylen)
{
	struct policy_rights r;
	const Cpx__Filter *f;
	char tmp[CPX_MAX_REGION_NAME + 2];
	size_t i, j;

	*reason = CPX__REASON__REASON_NONE;
	if (whylen > 0)
		why[0] = '\0';
	rights_lookup(p, peer, &r, 1);
	if (!r.subscribe)
		return refuse(reason, CPX__REASON__REASON_NOT_AUTHORIZED, why,
		    whylen, "node %s (%s) has no subscribe right",
		    peer != NULL ? peer->node : "?",
		    peer != NULL ? peer->country : "?");
	/* Every record kind shows refusals and sessions of all nodes. */
	if (all_kinds && !r.audit)
		return refuse(reason, CPX__REASON__REASON_NOT_AUTHORIZED, why,
		    whylen, "node %s (%s) has no audit right",
		    peer->node, peer->country);
	/* The shape is wire's one check; here, what only the policy knows. */
	if (wire_filters_check(filters, nfilters, why, whylen) == -1) {
		*reason = CPX__REASON__REASON_BAD_REQUEST;
		return -1;
	}
	for (i = 0; i < nfilters; i++) {
		f = filters[i];
		for (j = 0; j < f->n_regions; j++)
			if (!policy_region_exists(p, f->regions[j]))
				return refuse(reason,
				    CPX__REASON__REASON_BAD_REQUEST, why,
				    whylen, "filter %zu: unknown region "
				    "\"%s\"", i,
				    wire_printable(f->regions[j], tmp, sizeof(tmp)));
	}
	return 0;
}

int
policy_may_receive(const struct policy *p, const struct identity *node,
    const Cpx__Alert *a)
{
	struct policy_rights r;
	const struct region *reg;
	const char *rc;
	size_t i;
	int ci;

	if (a == NULL || node == NULL || (ci = cc_shape(node->country)) == -1)
		return 0;
	rights_lookup(p, node, &r, 0);
	if (!r.subscribe)
		return 0;
	if (a->n_recipients > 0 && a->recipients == NULL)
		return 0;
	switch (a->handling) {
	case CPX__HANDLING__HANDLING_NETWORK:
		if (a->n_recipients == 0)
			return 1;
		break;
	case CPX__HANDLING__HANDLING_RESTRICTED:
	case CPX__HANDLING__HANDLING_NAMED_ONLY:
		break;
	default:
		return 0;	/* unknown handling: fail closed */
	}
	for (i = 0; i < a->n_recipients; i++) {
		if ((rc = a->recipients[i]) == NULL)
			continue;
		if (strcmp(rc, node->country) == 0)
			return 1;
		/* Country-shaped names are never regions: skip the search. */
		if (a->handling == CPX__HANDLING__HANDLING_NAMED_ONLY ||
		    (rc[0] >= 'A' && rc[0] <= 'Z'))
			continue;
		if (strcmp(rc, "all") == 0)
			return identity_country_valid(node->country);
		if ((reg = region_find(p, rc)) != NULL &&
		    bit_get(reg->members, ci))
			return 1;
	}
	return 0;
}

static int
filter_match(const struct policy *p, const Cpx__Filter *f,
    const Cpx__Alert *a)
{
	const char *origin = a->origin != NULL ? a->origin : "";
	size_t i;

	if (f->n_origins > 0) {
		if (f->origins == NULL)
			return 0;
		for (i = 0; i < f->n_origins; i++)
			if (f->origins[i] != NULL &&
			    strcmp(f->origins[i], origin) == 0)
				break;
		if (i == f->n_origins)
			return 0;
	}
	if (f->n_regions > 0) {
		if (f->regions == NULL)
			return 0;
		for (i = 0; i < f->n_regions; i++)
			if (policy_region_has(p, f->regions[i], origin))
				break;
		if (i == f->n_regions)
			return 0;
	}
	if (f->n_categories > 0) {
		if (f->categories == NULL)
			return 0;
		for (i = 0; i < f->n_categories; i++)
			if (f->categories[i] == a->category)
				break;
		if (i == f->n_categories)
			return 0;
	}
	if (f->min_severity != CPX__SEVERITY__SEVERITY_UNSPECIFIED &&
	    a->severity < f->min_severity)
		return 0;
	return 1;
}

int
policy_filters_match(const struct policy *p, Cpx__Filter *const *filters,
    size_t nfilters, const Cpx__Alert *a)
{
	size_t i;

	if (a == NULL || filters == NULL)
		return 0;
	for (i = 0; i < nfilters; i++)
		if (filters[i] != NULL && filter_match(p, filters[i], a))
			return 1;
	return 0;
}
