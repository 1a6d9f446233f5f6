/*
 * policy_impl.h: the inside of a struct policy, shared by policy_load.c
 * (which fills it) and policy.c (which decides from it). Not for other
 * modules: they use policy.h.
 */
#ifndef CPX_POLICY_IMPL_H
#define CPX_POLICY_IMPL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cpx_limits.h"
#include "identity.h"
#include "policy.h"

#define NCC		(26 * 26)
#define CCSET_BYTES	((NCC + 7) / 8)

struct region {
	char		 name[CPX_MAX_REGION_NAME + 1];
	uint8_t		 members[CCSET_BYTES];
	unsigned int	 line;
};

struct node_rule {
	char			 cn[CPX_MAX_NODE_NAME + 1];
	char			 country[3];	/* "" = not pinned */
	struct policy_rights	 rights;
	unsigned int		 line;
};

struct policy {
	struct region		*regions;	/* sorted by name */
	size_t			 nregions;
	struct node_rule	*nodes;		/* sorted by cn */
	size_t			 nnodes;
	size_t			 nodes_cap;
	struct policy_rights	 country[NCC];
	uint8_t			 country_set[CCSET_BYTES];
	struct policy_rights	 defaults;
	int			 has_defaults;
};

static inline int
bit_get(const uint8_t *set, int i)
{
	return (set[i / 8] >> (i % 8)) & 1;
}

static inline void
bit_set(uint8_t *set, int i)
{
	set[i / 8] |= (uint8_t)(1u << (i % 8));
}

/*
 * Table index of a two-letter upper-case code, or -1: the shape check
 * alone keeps the index inside the tables. It is all the per-alert paths
 * need, since the tables only ever hold assigned codes (checked at load)
 * and identities and alert origins were checked before us.
 */
static inline int
cc_shape(const char *cc)
{
	if (cc == NULL || cc[0] < 'A' || cc[0] > 'Z' || cc[1] < 'A' ||
	    cc[1] > 'Z' || cc[2] != '\0')
		return -1;
	return (cc[0] - 'A') * 26 + (cc[1] - 'A');
}

/* Index of an assigned country code (identity_country_valid), or -1. */
static inline int
cc_index(const char *cc)
{
	int i;

	if ((i = cc_shape(cc)) == -1 || !identity_country_valid(cc))
		return -1;
	return i;
}

/* Orders regions by name, for qsort at load and bsearch after. */
static inline int
region_cmp(const void *a, const void *b)
{
	return strcmp(((const struct region *)a)->name,
	    ((const struct region *)b)->name);
}

/* Orders node rules by CN, for qsort at load and bsearch after. */
static inline int
node_cmp(const void *a, const void *b)
{
	return strcmp(((const struct node_rule *)a)->cn,
	    ((const struct node_rule *)b)->cn);
}

#endif
