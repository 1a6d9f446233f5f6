/*
 * policy.c: who may do what. Owns the loaded policy (regions, per-node,
 * per-country and default rights) and every entitlement decision taken
 * from it: may this peer publish this alert, subscribe with these
 * filters, receive this alert. It decides only; route.c and session.c
 * act on the answers.
 *
 * Countries are indexed 0..675 from their two letters, so a region is a
 * 676-bit set and membership is one bit test. Regions and nodes are kept
 * sorted by name for binary search. The INI text is read through
 * config_ini_parse (config.c), which gives line numbers and whole section
 * names.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "cpx_limits.h"
#include "identity.h"
#include "log.h"
#include "policy.h"

#define NCC		(26 * 26)
/* inih's line buffer: no word in a value can be longer. */
#define INI_LINE_MAX	200
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

static int
bit_get(const uint8_t *set, int i)
{
	return (set[i / 8] >> (i % 8)) & 1;
}

/*
 * Table index of a two-letter upper-case code, or -1: the shape check
 * alone keeps the index inside the tables. It is all the per-alert paths
 * need, since the tables only ever hold assigned codes (checked at load)
 * and identities and alert origins were checked before us.
 */
static int
cc_shape(const char *cc)
{
	if (cc == NULL || cc[0] < 'A' || cc[0] > 'Z' || cc[1] < 'A' ||
	    cc[1] > 'Z' || cc[2] != '\0')
		return -1;
	return (cc[0] - 'A') * 26 + (cc[1] - 'A');
}

/* Index of an assigned country code (identity_country_valid), or -1. */
static int
cc_index(const char *cc)
{
	int i;

	if ((i = cc_shape(cc)) == -1 || !identity_country_valid(cc))
		return -1;
	return i;
}

static void
bit_set(uint8_t *set, int i)
{
	set[i / 8] |= (uint8_t)(1u << (i % 8));
}

/* [a-z0-9-], 1..CPX_MAX_REGION_NAME: never confusable with "AT". */
static int
region_name_valid(const char *s)
{
	size_t n = strlen(s), i;

	if (n == 0 || n > CPX_MAX_REGION_NAME)
		return 0;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return 0;
	return 1;
}

static int
region_cmp(const void *a, const void *b)
{
	return strcmp(((const struct region *)a)->name,
	    ((const struct region *)b)->name);
}

static int
node_cmp(const void *a, const void *b)
{
	return strcmp(((const struct node_rule *)a)->cn,
	    ((const struct node_rule *)b)->cn);
}

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

/* --- loading ------------------------------------------------------- */

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

static int
load_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
load_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

/* A section that grants or defines nothing is a mistake: refuse it. */
static int
section_close(struct load *l, const char *file, char *err, size_t errlen)
{
	if (l->seq == 0)
		return 0;
	if (l->kind == SEC_REGION && !(l->seen & K_MEMBERS))
		return load_err(err, errlen, "%s:%u: [%s]: missing key members",
		    file, l->sec_line, l->section);
	if (l->kind != SEC_REGION && !(l->seen & K_RIGHTS))
		return load_err(err, errlen, "%s:%u: [%s]: missing key rights",
		    file, l->sec_line, l->section);
	return 0;
}

static int
section_open(struct load *l, const struct config_ini_key *k, char *err,
    size_t errlen)
{
	struct policy *p = l->p;
	struct region *r;
	struct node_rule *n;
	const char *arg, *s = k->section;
	size_t i, len;
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
			return load_err(err, errlen, "%s:%u: [defaults]: "
			    "duplicate section", k->file, k->section_line);
		p->has_defaults = 1;
		l->kind = SEC_DEFAULTS;
		l->rights = &p->defaults;
		return 0;
	}
	if (strncmp(s, "region ", 7) == 0) {
		arg = s + 7;
		if (strcmp(arg, "all") == 0)
			return load_err(err, errlen, "%s:%u: [%s]: region all "
			    "is built in and cannot be redefined", k->file,
			    k->section_line, s);
		if (!region_name_valid(arg))
			return load_err(err, errlen, "%s:%u: [%s]: region "
			    "name must be 1..%u of a-z, 0-9 and -", k->file,
			    k->section_line, s, CPX_MAX_REGION_NAME);
		for (i = 0; i < p->nregions; i++)
			if (strcmp(p->regions[i].name, arg) == 0)
				return load_err(err, errlen, "%s:%u: [%s]: "
				    "duplicate section (first at line %u)",
				    k->file, k->section_line, s,
				    p->regions[i].line);
		if (p->nregions == POLICY_MAX_REGIONS)
			return load_err(err, errlen, "%s:%u: [%s]: more than "
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
	if (strncmp(s, "country ", 8) == 0) {
		if ((ci = cc_index(s + 8)) == -1)
			return load_err(err, errlen, "%s:%u: [%s]: \"%s\" is "
			    "not a country code", k->file, k->section_line, s,
			    s + 8);
		if (bit_get(p->country_set, ci))
			return load_err(err, errlen, "%s:%u: [%s]: duplicate "
			    "section", k->file, k->section_line, s);
		bit_set(p->country_set, ci);
		l->kind = SEC_COUNTRY;
		l->rights = &p->country[ci];
		return 0;
	}
	if (strncmp(s, "node ", 5) == 0) {
		arg = s + 5;
		len = strlen(arg);
		/*
		 * The CN must be one identity_from_cert could yield;
		 * surrounding spaces would be a CN no certificate matches.
		 */
		if (len == 0 || len > CPX_MAX_NODE_NAME || arg[0] == ' ' ||
		    arg[len - 1] == ' ')
			return load_err(err, errlen, "%s:%u: [%s]: node name "
			    "must be 1..%u bytes without surrounding spaces",
			    k->file, k->section_line, s, CPX_MAX_NODE_NAME);
		for (i = 0; i < len; i++)
			if ((unsigned char)arg[i] < 0x20 ||
			    (unsigned char)arg[i] > 0x7e)
				return load_err(err, errlen, "%s:%u: node name "
				    "has a non-printable byte", k->file,
				    k->section_line);
		if (p->nnodes == POLICY_MAX_NODES)
			return load_err(err, errlen, "%s:%u: [%s]: more than "
			    "%d nodes", k->file, k->section_line, s,
			    POLICY_MAX_NODES);
		if (p->nnodes == p->nodes_cap) {
			i = p->nodes_cap == 0 ? 16 : p->nodes_cap * 2;
			if (i > POLICY_MAX_NODES)
				i = POLICY_MAX_NODES;
			n = reallocarray(p->nodes, i, sizeof(*n));
			if (n == NULL)
				return load_err(err, errlen, "%s:%u: out of "
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
	return load_err(err, errlen, "%s:%u: [%s]: unknown section (expected "
	    "[region NAME], [defaults], [country XX] or [node CN])", k->file,
	    k->section_line, s);
}

/*
 * Split v at blanks into words shorter than wsize; call fn for each.
 */
static int
for_words(const char *v, char *word, size_t wsize,
    int (*fn)(struct load *, const struct config_ini_key *, const char *,
    char *, size_t), struct load *l, const struct config_ini_key *k,
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
			return load_err(err, errlen, "%s:%u: %s: \"%.*s\" is "
			    "too long", k->file, k->line, k->key, (int)n, v);
		memcpy(word, v, n);
		word[n] = '\0';
		if (fn(l, k, word, err, errlen) == -1)
			return -1;
		v += n;
	}
}

static int
add_member(struct load *l, const struct config_ini_key *k, const char *w,
    char *err, size_t errlen)
{
	struct region *r = &l->p->regions[l->cur];
	int ci;

	if ((ci = cc_index(w)) == -1)
		return load_err(err, errlen, "%s:%u: %s: \"%s\" is not a "
		    "country code", k->file, k->line, k->key, w);
	if (bit_get(r->members, ci))
		return load_err(err, errlen, "%s:%u: %s: %s listed twice",
		    k->file, k->line, k->key, w);
	bit_set(r->members, ci);
	return 0;
}

static int
add_right(struct load *l, const struct config_ini_key *k, const char *w,
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
	else
		return load_err(err, errlen, "%s:%u: %s: unknown right \"%s\" "
		    "(expected publish, subscribe, audit or relay)", k->file,
		    k->line, k->key, w);
	if (*slot)
		return load_err(err, errlen, "%s:%u: %s: %s listed twice",
		    k->file, k->line, k->key, w);
	*slot = 1;
	return 0;
}

static int
load_key(void *arg, const struct config_ini_key *k, char *err,
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
		return load_err(err, errlen, "%s:%u: %s: unknown key in [%s]",
		    k->file, k->line, k->key, k->section);
	/* A second line would silently replace or widen the first. */
	if (l->seen & bit)
		return load_err(err, errlen, "%s:%u: %s: duplicate key",
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
		return load_err(err, errlen, "%s:%u: %s: region has no "
		    "members", k->file, k->line, k->key);
	case K_RIGHTS:
		if (for_words(k->value, word, sizeof(word), add_right, l, k,
		    err, errlen) == -1)
			return -1;
		/* Relaying is a way of publishing: alone it would be a typo. */
		if (l->rights->relay && !l->rights->publish)
			return load_err(err, errlen, "%s:%u: %s: relay needs "
			    "publish", k->file, k->line, k->key);
		return 0;
	default:
		if (cc_index(k->value) == -1)
			return load_err(err, errlen, "%s:%u: %s: \"%s\" is not "
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
		snprintf(err, errlen, "%s: out of memory", name);
		goto fail;
	}
	l.p = p;
	if (config_ini_parse(name, buf, len, load_key, &l, err, errlen) == -1)
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
		snprintf(err, errlen, "%s:%u: [node %s]: duplicate section "
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

	if (config_read_file(path, CONFIG_MAX_FILE, &buf, &len, err,
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

/* --- decisions ----------------------------------------------------- */

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
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
	return -1;
}

/* Printable prefix of an untrusted string, for messages. */
static const char *
safe(const char *s, char *buf, size_t len)
{
	size_t i;

	if (s == NULL)
		s = "";
	for (i = 0; i + 1 < len && s[i] != '\0'; i++)
		buf[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
	buf[i] = '\0';
	return buf;
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
			    "region", safe(rc, tmp, sizeof(tmp)));
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
	if (nfilters > CPX_MAX_FILTERS || (nfilters > 0 && filters == NULL))
		return refuse(reason, CPX__REASON__REASON_BAD_REQUEST, why,
		    whylen, "more than %u filters", CPX_MAX_FILTERS);
	for (i = 0; i < nfilters; i++) {
		if ((f = filters[i]) == NULL)
			return refuse(reason, CPX__REASON__REASON_BAD_REQUEST,
			    why, whylen, "filter %zu missing", i);
		if (f->n_origins > CPX_MAX_FILTER_ORIGINS ||
		    f->n_regions > CPX_MAX_FILTER_REGIONS ||
		    f->n_categories > CPX_MAX_FILTER_CATS ||
		    (f->n_origins > 0 && f->origins == NULL) ||
		    (f->n_regions > 0 && f->regions == NULL) ||
		    (f->n_categories > 0 && f->categories == NULL))
			return refuse(reason, CPX__REASON__REASON_BAD_REQUEST,
			    why, whylen, "filter %zu: over %u origins, %u "
			    "regions or %u categories", i,
			    CPX_MAX_FILTER_ORIGINS, CPX_MAX_FILTER_REGIONS,
			    CPX_MAX_FILTER_CATS);
		for (j = 0; j < f->n_origins; j++)
			if (cc_index(f->origins[j]) == -1)
				return refuse(reason,
				    CPX__REASON__REASON_BAD_REQUEST, why,
				    whylen, "filter %zu: origin \"%s\" is not "
				    "a country code", i,
				    safe(f->origins[j], tmp, sizeof(tmp)));
		for (j = 0; j < f->n_regions; j++)
			if (!policy_region_exists(p, f->regions[j]))
				return refuse(reason,
				    CPX__REASON__REASON_BAD_REQUEST, why,
				    whylen, "filter %zu: unknown region "
				    "\"%s\"", i,
				    safe(f->regions[j], tmp, sizeof(tmp)));
		for (j = 0; j < f->n_categories; j++)
			if ((int)f->categories[j] <=
			    CPX__CATEGORY__CATEGORY_UNSPECIFIED ||
			    (int)f->categories[j] >
			    CPX__CATEGORY__CATEGORY_OTHER)
				return refuse(reason,
				    CPX__REASON__REASON_BAD_REQUEST, why,
				    whylen, "filter %zu: unknown category %d",
				    i, (int)f->categories[j]);
		if ((int)f->min_severity <
		    CPX__SEVERITY__SEVERITY_UNSPECIFIED ||
		    (int)f->min_severity > CPX__SEVERITY__SEVERITY_CRITICAL)
			return refuse(reason, CPX__REASON__REASON_BAD_REQUEST,
			    why, whylen, "filter %zu: unknown severity %d", i,
			    (int)f->min_severity);
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
