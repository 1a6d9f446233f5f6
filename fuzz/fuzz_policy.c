/*
 * fuzz_policy.c: libFuzzer target for policy_load_string(), the reader of
 * the broker's policy file (and, through inifile_parse, of its INI
 * layer, shared with config.c). Bytes are fed from memory, never through
 * a temporary file. Whatever loads is then asked the decisions the broker
 * takes per alert, and their invariants are checked: NAMED_ONLY never
 * reaches a country through a region, RESTRICTED never reaches anyone
 * without recipients, and a node reached at all has the subscribe right.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "inifile.h"
#include "log.h"
#include "policy.h"

int	LLVMFuzzerInitialize(int *, char ***);
int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	/* Country pinning logs a warning per mismatch: keep it quiet. */
	log_init("fuzz_policy", LOG_LEVEL_ERROR);
	return 0;
}

static void
probe(const struct policy *p, const char *country, const char *node)
{
	static char *regions[] = { (char *)"western-balkans",
	    (char *)"eu-neighbours", (char *)"all", (char *)"a",
	    (char *)"r0" };
	static char *mixed[] = { (char *)"AT", (char *)"western-balkans" };
	struct policy_rights r;
	struct identity id;
	Cpx__Alert a;
	Cpx__Filter f, *fp = &f;
	char why[256];
	int reason, got;
	size_t i;

	memset(&id, 0, sizeof(id));
	memcpy(id.country, country, 2);
	strncpy(id.node, node, sizeof(id.node) - 1);
	policy_rights(p, &id, &r);

	cpx__alert__init(&a);
	a.origin = (char *)"SI";
	a.category = CPX__CATEGORY__CATEGORY_ROUTE;
	a.severity = CPX__SEVERITY__SEVERITY_HIGH;

	a.handling = CPX__HANDLING__HANDLING_NAMED_ONLY;
	a.recipients = regions;
	a.n_recipients = 5;
	if (policy_may_receive(p, &id, &a))
		abort();	/* regions never count for NAMED_ONLY */
	a.handling = CPX__HANDLING__HANDLING_RESTRICTED;
	a.n_recipients = 0;
	if (policy_may_receive(p, &id, &a))
		abort();
	a.n_recipients = 5;
	got = policy_may_receive(p, &id, &a);
	if (got && !r.subscribe)
		abort();
	if (r.subscribe && !got)
		abort();	/* "all" is among the recipients */
	(void)policy_check_publish(p, &id, &a, &reason, why, sizeof(why));
	a.handling = CPX__HANDLING__HANDLING_NETWORK;
	a.recipients = mixed;
	a.n_recipients = 2;
	got = policy_may_receive(p, &id, &a);
	if (got != (r.subscribe && (strcmp(country, "AT") == 0 ||
	    policy_region_has(p, "western-balkans", country))))
		abort();
	if (policy_check_publish(p, &id, &a, &reason, why,
	    sizeof(why)) == 0 && !r.publish)
		abort();

	cpx__filter__init(&f);
	f.regions = regions;
	f.n_regions = 5;
	(void)policy_check_subscribe(p, &id, &fp, 1, 1, &reason, why,
	    sizeof(why));
	for (i = 0; i < 5; i++)
		(void)policy_region_has(p, regions[i], country);
	if (!policy_filters_match(p, &fp, 1, &a))
		abort();	/* "all" holds every valid origin */
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct policy *p;
	char err[512];

	if (size > INIFILE_MAX_FILE)
		return 0;
	p = policy_load_string("fuzz.ini", (const char *)data, size, err,
	    sizeof(err));
	if (p == NULL) {
		if (strncmp(err, "fuzz.ini", 8) != 0)
			abort();	/* every error names the file */
		return 0;
	}
	probe(p, "SI", "si-ncp");
	probe(p, "AT", "at-ncp");
	probe(p, "RS", "a");
	probe(p, "HR", "si-ncp");
	policy_free(&p);
	return 0;
}
