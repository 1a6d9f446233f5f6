/*
 * test_entitled.c: tests the entitlement list of broker/route.c. Live
 * delivery asks the policy (policy_may_receive) who may have an alert;
 * history asks the list expanded from the same policy when the alert
 * was accepted and kept in its audit record. The two must agree for
 * every country, every handling code and every kind of recipient, and
 * the list must come back from the record unchanged.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "identity.h"
#include "log.h"
#include "peer.h"
#include "policy.h"
#include "route.h"

static const char policy_text[] =
    "[region wb]\nmembers = AL BA ME MK RS XK\n"
    "[region eu]\nmembers = AT HR HU IT SI\n"
    "[region solo]\nmembers = MT\n"
    "[defaults]\nrights = publish subscribe\n"
    "[country FR]\nrights = publish\n";

struct tcase {
	int		 handling;
	const char	*recipients;	/* blank-separated */
};

static const struct tcase cases[] = {
	{ CPX__HANDLING__HANDLING_NETWORK, "" },
	{ CPX__HANDLING__HANDLING_NETWORK, "HR" },
	{ CPX__HANDLING__HANDLING_NETWORK, "wb" },
	{ CPX__HANDLING__HANDLING_NETWORK, "all" },
	{ CPX__HANDLING__HANDLING_NETWORK, "HR wb solo" },
	{ CPX__HANDLING__HANDLING_RESTRICTED, "wb" },
	{ CPX__HANDLING__HANDLING_RESTRICTED, "eu RS" },
	{ CPX__HANDLING__HANDLING_RESTRICTED, "all" },
	{ CPX__HANDLING__HANDLING_RESTRICTED, "no-such-region" },
	{ CPX__HANDLING__HANDLING_RESTRICTED, "ZZ XK" },
	{ CPX__HANDLING__HANDLING_RESTRICTED, "Wb HRV" },
	{ CPX__HANDLING__HANDLING_RESTRICTED, "FR" },
	{ CPX__HANDLING__HANDLING_NAMED_ONLY, "HR RS" },
	{ CPX__HANDLING__HANDLING_NAMED_ONLY, "wb all SI" },
	{ CPX__HANDLING__HANDLING_UNSPECIFIED, "" },
	{ CPX__HANDLING__HANDLING_UNSPECIFIED, "HR" },
	{ 99, "HR" },
};

/* Fill a with handling and recipients (storage in buf/v). */
static void
make_alert(Cpx__Alert *a, const struct tcase *tc, char buf[16][40],
    char *v[16])
{
	const char *p = tc->recipients;
	size_t n = 0, len;

	cpx__alert__init(a);
	a->handling = tc->handling;
	while (*p != '\0' && n < 16) {
		while (*p == ' ')
			p++;
		len = strcspn(p, " ");
		if (len == 0)
			break;
		assert_true(len < 40);
		memcpy(buf[n], p, len);
		buf[n][len] = '\0';
		v[n] = buf[n];
		n++;
		p += len;
	}
	a->recipients = v;
	a->n_recipients = n;
}

static void
test_expand_agrees_with_policy(void **state)
{
	struct policy *p;
	struct peer s;
	struct route_entitled e, back;
	struct route_entitled_list l;
	Cpx__AuditRecord rec = CPX__AUDIT_RECORD__INIT;
	Cpx__Alert a;
	char buf[16][40], *v[16], err[256];
	size_t i, k;
	int ci, live, hist, assigned = 0;

	(void)state;
	p = policy_load_string("test", policy_text, strlen(policy_text), err,
	    sizeof(err));
	if (p == NULL)
		fail_msg("%s", err);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		make_alert(&a, &cases[i], buf, v);
		route_entitled_expand(p, &a, &e);
		/* Through the audit record and back. */
		route_entitled_list(&e, &l);
		assert_true(l.n > 0);
		for (k = 1; k < l.n; k++)
			assert_true(strcmp(l.v[k - 1], l.v[k]) < 0);
		rec.entitled = l.v;
		rec.n_entitled = l.n;
		assert_int_equal(route_entitled_from_record(&rec, &back), 0);
		assert_int_equal(back.everyone, e.everyone);
		assert_memory_equal(back.set, e.set, sizeof(e.set));
		for (ci = 0; ci < ROUTE_NCC; ci++) {
			memset(&s, 0, sizeof(s));
			s.id.country[0] = (char)('A' + ci / 26);
			s.id.country[1] = (char)('A' + ci % 26);
			s.id.country[2] = '\0';
			/* Peers only ever have assigned codes (identity.c). */
			if (!identity_country_valid(s.id.country))
				continue;
			assigned++;
			snprintf(s.id.node, sizeof(s.id.node), "node-%s",
			    s.id.country);
			policy_rights(p, &s.id, &s.rights);
			live = route_may_have(p, &s, NULL, &a);
			hist = route_may_have(p, &s, &back, &a);
			if (live != hist)
				fail_msg("case %zu (%d \"%s\"), %s: live %d, "
				    "from the record %d", i, cases[i].handling,
				    cases[i].recipients, s.id.country, live,
				    hist);
			/* And both are policy_may_receive. */
			assert_int_equal(live,
			    policy_may_receive(p, &s.id, &a));
		}
	}
	assert_true(assigned > 200);
	/* The lists as kept: everyone, nobody, sorted countries. */
	make_alert(&a, &cases[0], buf, v);
	route_entitled_record(p, &a, &l);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.v[0], ROUTE_EVERYONE);
	make_alert(&a, &cases[8], buf, v);
	route_entitled_record(p, &a, &l);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.v[0], ROUTE_NOBODY);
	make_alert(&a, &cases[6], buf, v);
	route_entitled_record(p, &a, &l);
	assert_int_equal(l.n, 6);
	assert_string_equal(l.v[0], "AT");
	assert_string_equal(l.v[5], "SI");
	/* No list (an old record): the caller must ask the policy. */
	rec.entitled = NULL;
	rec.n_entitled = 0;
	assert_int_equal(route_entitled_from_record(&rec, &back), -1);
	policy_free(&p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_expand_agrees_with_policy),
	};

	log_init("test_entitled", LOG_LEVEL_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
