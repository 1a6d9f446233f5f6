/*
 * policy_load.c: reading the policy file into a struct policy (see
 * policy.h for the file's format). Owns the checks that make a policy
 * mean exactly what it says: unknown sections, keys and words, duplicate
 * sections, keys and members, sections that grant nothing and names no
 * certificate could carry are all refused, with the file, line and key
 * to fix. Deciding from a loaded policy is policy.c's.
 *
 * The INI text is read through inifile_parse (inifile.c), which gives
 * line numbers and whole section names.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alert.h"
#include "cpx_limits.h"
#include "errfmt.h"
#include "inifile.h"
#include "policy.h"
#include "policy_impl.h"

/* inih's line buffer: no word in a value can be longer. */
#define INI_LINE_MAX	200

enum section_kind {
	SEC_NONE,
	SEC_REGION,
	SEC_DEFAULTS,
	SEC_COUNTRY,
	SEC_NODE
};

/* Keys, as bits of load.seen. */
#define K_MEMBERS	0x1u
#define K_RIGHTS	0x2u
#define K_COUNTRY	0x4u

struct load {
	struct policy		*p;
	enum section_kind	 kind;
	unsigned int		 seq;		/* section open, 0 = none */
	unsigned int		 sec_line;
	char			 section[CPX_MAX_NODE_NAME + 16];
	struct policy_rights	*rights;	/* where rights = goes */
	size_t			 cur;		/* region or node index */
	unsigned int		 seen;
};

/* A section that grants or defines nothing is a mistake: refuse it. */
static int
section_close(struct load *l, const char *file, char *err, size_t errlen)
{
	if (l->seq == 0)
		return 0;
	if (l->kind == SEC_REGION && !(l->seen & K_MEMBERS))
		return errf(err, errlen, "%s:%u: [%s]: missing key members",
		    file, l->sec_line, l->section);
	if (l->kind != SEC_REGION && !(l->seen & K_RIGHTS))
		return errf(err, errlen, "%s:%u: [%s]: missing key rights",
		    file, l->sec_line, l->section);
	return 0;
}

/* [region NAME]: a new region, members to follow. */
static int
open_region(struct load *l, const struct inifile_key *k, const char *arg,
    char *err, size_t errlen)
{
	struct policy *p = l->p;
	struct region *r;
	const char *s = k->section;
	size_t i;

	if (strcmp(arg, "all") == 0)
		return errf(err, errlen, "%s:%u: [%s]: region all "
		    "is built in and cannot be redefined", k->file,
		    k->section_line, s);
	if (!alert_region_name_valid(arg))
		return errf(err, errlen, "%s:%u: [%s]: region "
		    "name must be 1..%u of a-z, 0-9 and -", k->file,
		    k->section_line, s, CPX_MAX_REGION_NAME);
	for (i = 0; i < p->nregions; i++)
		if (strcmp(p->regions[i].name, arg) == 0)
			return errf(err, errlen, "%s:%u: [%s]: "
			    "duplicate section (first at line %u)",
			    k->file, k->section_line, s,
			    p->regions[i].line);
	if (p->nregions == POLICY_MAX_REGIONS)
		return errf(err, errlen, "%s:%u: [%s]: more than "
		    "%d regions", k->file, k->section_line, s,
		    POLICY_MAX_REGIONS);
	r = &p->regions[p->nregions];
	memset(r, 0, sizeof(*r));
	strcpy(r->name, arg);
	r->line = k->section_line;
	l->cur = p->nregions++;
	l->kind = SEC_REGION;
	return 0;
}

/* [node CN]: a new node rule, rights (and a pinned country) to follow. */
static int
open_node(struct load *l, const struct inifile_key *k, const char *arg,
    char *err, size_t errlen)
{
	struct policy *p = l->p;
	struct node_rule *n;
	const char *s = k->section;
	size_t i, len;

	len = strlen(arg);
	/*
	 * The CN must be one identity_from_cert could yield;
	 * surrounding spaces would be a CN no certificate matches.
	 */
	if (len == 0 || len > CPX_MAX_NODE_NAME || arg[0] == ' ' ||
	    arg[len - 1] == ' ')
		return errf(err, errlen, "%s:%u: [%s]: node name "
		    "must be 1..%u bytes without surrounding spaces",
		    k->file, k->section_line, s, CPX_MAX_NODE_NAME);
	for (i = 0; i < len; i++)
		if ((unsigned char)arg[i] < 0x20 ||
		    (unsigned char)arg[i] > 0x7e)
			return errf(err, errlen, "%s:%u: node name "
			    "has a non-printable byte", k->file,
			    k->section_line);
	if (p->nnodes == POLICY_MAX_NODES)
		return errf(err, errlen, "%s:%u: [%s]: more than "
		    "%d nodes", k->file, k->section_line, s,
		    POLICY_MAX_NODES);
	if (p->nnodes == p->nodes_cap) {
		i = p->nodes_cap == 0 ? 16 : p->nodes_cap * 2;
		if (i > POLICY_MAX_NODES)
			i = POLICY_MAX_NODES;
		n = reallocarray(p->nodes, i, sizeof(*n));
		if (n == NULL)
			return errf(err, errlen, "%s:%u: out of "
			    "memory", k->file, k->section_line);
		p->nodes = n;
		p->nodes_cap = i;
	}
	n = &p->nodes[p->nnodes];
	memset(n, 0, sizeof(*n));
	memcpy(n->cn, arg, len + 1);
	n->line = k->section_line;
	l->cur = p->nnodes++;
	l->kind = SEC_NODE;
	l->rights = &n->rights;
	return 0;
}

static int
section_open(struct load *l, const struct inifile_key *k, char *err,
    size_t errlen)
{
	struct policy *p = l->p;
	const char *s = k->section;
	int ci;

	if (section_close(l, k->file, err, errlen) == -1)
		return -1;
	l->seq = k->section_seq;
	l->sec_line = k->section_line;
	l->seen = 0;
	l->rights = NULL;
	snprintf(l->section, sizeof(l->section), "%s", s);

	if (strcmp(s, "defaults") == 0) {
		if (p->has_defaults)
			return errf(err, errlen, "%s:%u: [defaults]: "
			    "duplicate section", k->file, k->section_line);
		p->has_defaults = 1;
		l->kind = SEC_DEFAULTS;
		l->rights = &p->defaults;
		return 0;
	}
	if (strncmp(s, "region ", 7) == 0)
		return open_region(l, k, s + 7, err, errlen);
	if (strncmp(s, "country ", 8) == 0) {
		if ((ci = cc_index(s + 8)) == -1)
			return errf(err, errlen, "%s:%u: [%s]: \"%s\" is "
			    "not a country code", k->file, k->section_line, s,
			    s + 8);
		if (bit_get(p->country_set, ci))
			return errf(err, errlen, "%s:%u: [%s]: duplicate "
			    "section", k->file, k->section_line, s);
		bit_set(p->country_set, ci);
		l->kind = SEC_COUNTRY;
		l->rights = &p->country[ci];
		return 0;
	}
	if (strncmp(s, "node ", 5) == 0)
		return open_node(l, k, s + 5, err, errlen);
	return errf(err, errlen, "%s:%u: [%s]: unknown section (expected "
	    "[region NAME], [defaults], [country XX] or [node CN])", k->file,
	    k->section_line, s);
}

/*
 * Split v at blanks into words shorter than wsize; call fn for each.
 */
static int
for_words(const char *v, char *word, size_t wsize,
    int (*fn)(struct load *, const struct inifile_key *, const char *,
    char *, size_t), struct load *l, const struct inifile_key *k,
    char *err, size_t errlen)
{
	size_t n;

	for (;;) {
		while (*v == ' ' || *v == '\t')
			v++;
		if (*v == '\0')
			return 0;
		for (n = 0; v[n] != '\0' && v[n] != ' ' && v[n] != '\t'; n++)
			;
		if (n >= wsize)
			return errf(err, errlen, "%s:%u: %s: \"%.*s\" is "
			    "too long", k->file, k->line, k->key, (int)n, v);
		memcpy(word, v, n);
		word[n] = '\0';
		if (fn(l, k, word, err, errlen) == -1)
			return -1;
		v += n;
	}
}

static int
add_member(struct load *l, const struct inifile_key *k, const char *w,
    char *err, size_t errlen)
{
	struct region *r = &l->p->regions[l->cur];
	int ci;

	if ((ci = cc_index(w)) == -1)
		return errf(err, errlen, "%s:%u: %s: \"%s\" is not a "
		    "country code", k->file, k->line, k->key, w);
	if (bit_get(r->members, ci))
		return errf(err, errlen, "%s:%u: %s: %s listed twice",
		    k->file, k->line, k->key, w);
	bit_set(r->members, ci);
	return 0;
}

static int
add_right(struct load *l, const struct inifile_key *k, const char *w,
    char *err, size_t errlen)
{
	int *slot;

	if (strcmp(w, "publish") == 0)
		slot = &l->rights->publish;
	else if (strcmp(w, "subscribe") == 0)
		slot = &l->rights->subscribe;
	else if (strcmp(w, "audit") == 0)
		slot = &l->rights->audit;
	else if (strcmp(w, "relay") == 0)
		slot = &l->rights->relay;
	else if (strcmp(w, "witness") == 0)
		slot = &l->rights->witness;
	else
		return errf(err, errlen, "%s:%u: %s: unknown right \"%s\" "
		    "(expected publish, subscribe, audit, relay or witness)",
		    k->file, k->line, k->key, w);
	if (*slot)
		return errf(err, errlen, "%s:%u: %s: %s listed twice",
		    k->file, k->line, k->key, w);
	*slot = 1;
	return 0;
}

static int
load_key(void *arg, const struct inifile_key *k, char *err,
    size_t errlen)
{
	struct load *l = arg;
	struct region *r;
	char word[INI_LINE_MAX];
	unsigned int bit;
	size_t i;

	if (k->section_seq != l->seq &&
	    section_open(l, k, err, errlen) == -1)
		return -1;
	if (strcmp(k->key, "members") == 0 && l->kind == SEC_REGION)
		bit = K_MEMBERS;
	else if (strcmp(k->key, "rights") == 0 && l->kind != SEC_REGION)
		bit = K_RIGHTS;
	else if (strcmp(k->key, "country") == 0 && l->kind == SEC_NODE)
		bit = K_COUNTRY;
	else
		return errf(err, errlen, "%s:%u: %s: unknown key in [%s]",
		    k->file, k->line, k->key, k->section);
	/* A second line would silently replace or widen the first. */
	if (l->seen & bit)
		return errf(err, errlen, "%s:%u: %s: duplicate key",
		    k->file, k->line, k->key);
	l->seen |= bit;

	switch (bit) {
	case K_MEMBERS:
		if (for_words(k->value, word, sizeof(word), add_member, l, k,
		    err, errlen) == -1)
			return -1;
		r = &l->p->regions[l->cur];
		for (i = 0; i < CCSET_BYTES; i++)
			if (r->members[i] != 0)
				return 0;
		return errf(err, errlen, "%s:%u: %s: region has no "
		    "members", k->file, k->line, k->key);
	case K_RIGHTS:
		if (for_words(k->value, word, sizeof(word), add_right, l, k,
		    err, errlen) == -1)
			return -1;
		/* Relaying is a way of publishing: alone it would be a typo. */
		if (l->rights->relay && !l->rights->publish)
			return errf(err, errlen, "%s:%u: %s: relay needs "
			    "publish", k->file, k->line, k->key);
		return 0;
	default:
		if (cc_index(k->value) == -1)
			return errf(err, errlen, "%s:%u: %s: \"%s\" is not "
			    "a country code", k->file, k->line, k->key,
			    k->value);
		memcpy(l->p->nodes[l->cur].country, k->value, 3);
		return 0;
	}
}

struct policy *
policy_load_string(const char *name, const char *buf, size_t len,
    char *err, size_t errlen)
{
	struct policy *p = NULL;
	struct load l;
	size_t i;

	memset(&l, 0, sizeof(l));
	if ((p = calloc(1, sizeof(*p))) == NULL ||
	    (p->regions = calloc(POLICY_MAX_REGIONS,
	    sizeof(*p->regions))) == NULL) {
		errf(err, errlen, "%s: out of memory", name);
		goto fail;
	}
	l.p = p;
	if (inifile_parse(name, buf, len, load_key, &l, err, errlen) == -1)
		goto fail;
	if (section_close(&l, name, err, errlen) == -1)
		goto fail;
	qsort(p->regions, p->nregions, sizeof(*p->regions), region_cmp);
	if (p->nnodes > 0)
		qsort(p->nodes, p->nnodes, sizeof(*p->nodes), node_cmp);
	for (i = 1; i < p->nnodes; i++) {
		if (strcmp(p->nodes[i - 1].cn, p->nodes[i].cn) != 0)
			continue;
		/* Two sections: which one wins would be an accident. */
		errf(err, errlen, "%s:%u: [node %s]: duplicate section "
		    "(first at line %u)", name,
		    p->nodes[i - 1].line > p->nodes[i].line ?
		    p->nodes[i - 1].line : p->nodes[i].line, p->nodes[i].cn,
		    p->nodes[i - 1].line < p->nodes[i].line ?
		    p->nodes[i - 1].line : p->nodes[i].line);
		goto fail;
	}
	return p;
 fail:
	policy_free(&p);
	return NULL;
}

struct policy *
policy_load(const char *path, char *err, size_t errlen)
{
	struct policy *p = NULL;
	char *buf = NULL;
	size_t len;

	if (inifile_read(path, INIFILE_MAX_FILE, &buf, &len, err,
	    errlen) == -1)
		goto out;
	p = policy_load_string(path, buf, len, err, errlen);
 out:
	free(buf);
	return p;
}

void
policy_free(struct policy **pp)
{
	struct policy *p;

	if (pp == NULL || (p = *pp) == NULL)
		return;
	free(p->regions);
	free(p->nodes);
	free(p);
	*pp = NULL;
}
