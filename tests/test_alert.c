/*
 * test_alert.c: lib/alert.c. A valid alert passes; then one test per rule
 * of alert_validate, each breaking exactly one field of a valid alert and
 * expecting the documented reason (and, where it matters, a specific
 * why[] text). Also the enum names, derived from the schema, and their
 * parsers: every value of every enum, and the names as they always were.
 */
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "alert.h"
#include "cpx_limits.h"

#define NOW	1750000000000LL		/* fixed clock, June 2025 */
#define SKEW	300000LL		/* 5 minutes */

/* A valid alert and the storage its pointers use. */
struct fixture {
	Cpx__Alert	 a;
	Cpx__Place	 place;
	Cpx__Vehicle	 veh[CPX_MAX_VEHICLES + 1];
	Cpx__Vehicle	*vehp[CPX_MAX_VEHICLES + 1];
	Cpx__Reference	 ref;
	char		*rcpt[CPX_MAX_RECIPIENTS + 1];
	char		 rbuf[CPX_MAX_RECIPIENTS + 1][8];
	char		*route[CPX_MAX_ROUTE + 1];
	char		 big[CPX_MAX_SUMMARY + 2];
};

static struct fixture fx;

static void
reset(void)
{
	static const Cpx__Alert		a0 = CPX__ALERT__INIT;
	static const Cpx__Place		p0 = CPX__PLACE__INIT;
	static const Cpx__Vehicle	v0 = CPX__VEHICLE__INIT;
	static const Cpx__Reference	r0 = CPX__REFERENCE__INIT;
	size_t				i;

	memset(&fx, 0, sizeof(fx));
	fx.a = a0;
	fx.place = p0;
	fx.ref = r0;
	for (i = 0; i < CPX_MAX_VEHICLES + 1; i++) {
		fx.veh[i] = v0;
		fx.veh[i].plate = "LJ AB-123";
		fx.veh[i].country = "SI";
		fx.veh[i].description = "white van";
		fx.vehp[i] = &fx.veh[i];
	}
	for (i = 0; i < CPX_MAX_ROUTE + 1; i++)
		fx.route[i] = "Obrezje";
	fx.rcpt[0] = "HR";
	fx.rcpt[1] = "western-balkans";
	fx.a.id = "5f0c7d9e-2b1a-4e55-9c1e-1a2b3c4d5e6f";
	fx.a.origin = "SI";
	fx.a.issued_at = NOW - 1000;
	fx.a.category = CPX__CATEGORY__CATEGORY_VEHICLE;
	fx.a.severity = CPX__SEVERITY__SEVERITY_HIGH;
	fx.a.handling = CPX__HANDLING__HANDLING_RESTRICTED;
	fx.a.n_recipients = 2;
	fx.a.recipients = fx.rcpt;
	fx.a.summary = "Van with 12 persons heading to the border, "
	    "\xc5\xa1\xe2\x82\xac";
	fx.place.name = "Bregana";
	fx.place.crossing = "Bregana-Obre\xc5\xbeje";
	fx.place.has_coordinates = 1;
	fx.place.latitude = 45.84;
	fx.place.longitude = 15.69;
	fx.a.place = &fx.place;
	fx.a.n_route = 2;
	fx.a.route = fx.route;
	fx.a.n_vehicles = 1;
	fx.a.vehicles = fx.vehp;
	fx.a.persons_count = 12;
	fx.a.expires_at = NOW + 3600000;
}

/* Validate fx.a and expect reason (NONE = pass) and a why[] fragment. */
static void
check(int want, const char *why_part)
{
	char	why[256];
	int	reason = -1, rc;

	why[0] = '\0';
	rc = alert_validate(&fx.a, NOW, SKEW, &reason, why, sizeof(why));
	if (want == CPX__REASON__REASON_NONE) {
		if (rc != 0)
			fail_msg("refused: %s", why);
		assert_int_equal(reason, CPX__REASON__REASON_NONE);
		return;
	}
	if (rc != -1)
		fail_msg("accepted, expected reason %s",
		    alert_reason_name(want));
	assert_int_equal(reason, want);
	assert_true(why[0] != '\0');
	if (why_part != NULL && strstr(why, why_part) == NULL)
		fail_msg("why \"%s\" lacks \"%s\"", why, why_part);
}

static int
setup(void **state)
{
	(void)state;
	reset();
	return 0;
}

static void
test_valid(void **state)
{
	(void)state;
	check(CPX__REASON__REASON_NONE, NULL);
	/* Network handling with no recipient: the whole network. */
	fx.a.handling = CPX__HANDLING__HANDLING_NETWORK;
	fx.a.n_recipients = 0;
	fx.a.place = NULL;
	fx.a.n_vehicles = 0;
	fx.a.n_route = 0;
	fx.a.expires_at = 0;
	check(CPX__REASON__REASON_NONE, NULL);
	/* Named-only with countries only. */
	fx.a.handling = CPX__HANDLING__HANDLING_NAMED_ONLY;
	fx.a.n_recipients = 1;
	check(CPX__REASON__REASON_NONE, NULL);
}

static void
test_id(void **state)
{
	char	id[CPX_MAX_ID + 2];

	(void)state;
	fx.a.id = "";
	check(CPX__REASON__REASON_INVALID_ALERT, "id");
	fx.a.id = "abc def";
	check(CPX__REASON__REASON_INVALID_ALERT, "id \"abc def\"");
	fx.a.id = "abc/../x";
	check(CPX__REASON__REASON_INVALID_ALERT, "id");
	memset(id, 'a', CPX_MAX_ID + 1);
	id[CPX_MAX_ID + 1] = '\0';
	fx.a.id = id;
	check(CPX__REASON__REASON_INVALID_ALERT, "id");
	id[CPX_MAX_ID] = '\0';
	check(CPX__REASON__REASON_NONE, NULL);
	assert_true(alert_id_valid("a.B_9:-"));
	assert_false(alert_id_valid(NULL));
}

static void
test_origin(void **state)
{
	(void)state;
	fx.a.origin = "EU";
	check(CPX__REASON__REASON_INVALID_ALERT, "origin \"EU\"");
	fx.a.origin = "si";
	check(CPX__REASON__REASON_INVALID_ALERT, "origin");
	fx.a.origin = "";
	check(CPX__REASON__REASON_INVALID_ALERT, "origin");
}

static void
test_clock_skew(void **state)
{
	(void)state;
	fx.a.issued_at = NOW + SKEW;
	check(CPX__REASON__REASON_NONE, NULL);
	fx.a.issued_at = NOW + SKEW + 1;
	check(CPX__REASON__REASON_CLOCK_SKEW, "issued_at");
	fx.a.issued_at = NOW - SKEW - 1;
	check(CPX__REASON__REASON_CLOCK_SKEW, "issued_at");
	fx.a.issued_at = INT64_MAX;
	fx.a.expires_at = 0;
	check(CPX__REASON__REASON_CLOCK_SKEW, "issued_at");
	fx.a.issued_at = 0;
	check(CPX__REASON__REASON_INVALID_ALERT, "issued_at");
	fx.a.issued_at = INT64_MIN;
	check(CPX__REASON__REASON_INVALID_ALERT, "issued_at");
}

static void
test_skew_disabled(void **state)
{
	char	why[128];
	int	reason;

	(void)state;
	/* An old record checked offline: no time checks at all. */
	fx.a.issued_at = 1000;
	fx.a.expires_at = 2000;
	assert_int_equal(alert_validate(&fx.a, NOW, 0, &reason, why,
	    sizeof(why)), 0);
}

static void
test_enums(void **state)
{
	(void)state;
	fx.a.category = CPX__CATEGORY__CATEGORY_UNSPECIFIED;
	check(CPX__REASON__REASON_INVALID_ALERT, "category");
	fx.a.category = (Cpx__Category)8;
	check(CPX__REASON__REASON_INVALID_ALERT, "category 8");
	fx.a.category = (Cpx__Category)-1;
	check(CPX__REASON__REASON_INVALID_ALERT, "category");
	reset();
	fx.a.severity = CPX__SEVERITY__SEVERITY_UNSPECIFIED;
	check(CPX__REASON__REASON_INVALID_ALERT, "severity");
	fx.a.severity = (Cpx__Severity)5;
	check(CPX__REASON__REASON_INVALID_ALERT, "severity");
	reset();
	fx.a.handling = CPX__HANDLING__HANDLING_UNSPECIFIED;
	check(CPX__REASON__REASON_INVALID_ALERT, "handling");
	fx.a.handling = (Cpx__Handling)4;
	check(CPX__REASON__REASON_INVALID_ALERT, "handling");
}

static void
test_recipients_syntax(void **state)
{
	size_t	i;

	(void)state;
	fx.rcpt[2] = "xx y";
	fx.a.n_recipients = 3;
	check(CPX__REASON__REASON_UNKNOWN_RECIPIENT,
	    "recipient 3 \"xx y\" is neither a country code nor a region "
	    "name");
	fx.rcpt[2] = "XX";
	check(CPX__REASON__REASON_UNKNOWN_RECIPIENT, "recipient 3 \"XX\"");
	fx.rcpt[2] = "Western-Balkans";
	check(CPX__REASON__REASON_UNKNOWN_RECIPIENT, "recipient 3");
	fx.rcpt[2] = "";
	check(CPX__REASON__REASON_UNKNOWN_RECIPIENT, "recipient 3");
	/* Control characters are escaped in why[], not copied. */
	fx.rcpt[2] = "a\nb";
	check(CPX__REASON__REASON_UNKNOWN_RECIPIENT, "\"a\\x0ab\"");
	fx.rcpt[2] = "HR";
	check(CPX__REASON__REASON_INVALID_ALERT, "repeated");

	/* Count limit. */
	for (i = 0; i < CPX_MAX_RECIPIENTS + 1; i++) {
		snprintf(fx.rbuf[i], sizeof(fx.rbuf[i]), "r%zu", i);
		fx.rcpt[i] = fx.rbuf[i];
	}
	fx.a.n_recipients = CPX_MAX_RECIPIENTS;
	check(CPX__REASON__REASON_NONE, NULL);
	fx.a.n_recipients = CPX_MAX_RECIPIENTS + 1;
	check(CPX__REASON__REASON_INVALID_ALERT, "recipients");
}

static void
test_region_name(void **state)
{
	char	r[CPX_MAX_REGION_NAME + 2];

	(void)state;
	assert_true(alert_region_name_valid("western-balkans"));
	assert_true(alert_region_name_valid("eu27"));
	assert_false(alert_region_name_valid("Western"));
	assert_false(alert_region_name_valid("a_b"));
	assert_false(alert_region_name_valid(""));
	assert_false(alert_region_name_valid(NULL));
	memset(r, 'r', sizeof(r) - 1);
	r[sizeof(r) - 1] = '\0';
	assert_false(alert_region_name_valid(r));
	r[CPX_MAX_REGION_NAME] = '\0';
	assert_true(alert_region_name_valid(r));
}

static void
test_handling_recipients(void **state)
{
	(void)state;
	fx.a.n_recipients = 0;
	check(CPX__REASON__REASON_HANDLING_RECIPIENTS, "restricted");
	fx.a.handling = CPX__HANDLING__HANDLING_NAMED_ONLY;
	check(CPX__REASON__REASON_HANDLING_RECIPIENTS, "named-only");
	/* Named-only: countries only, never a region. */
	fx.a.n_recipients = 2;
	check(CPX__REASON__REASON_HANDLING_RECIPIENTS,
	    "recipient 2 \"western-balkans\" is a region");
	/* Restricted may name regions. */
	fx.a.handling = CPX__HANDLING__HANDLING_RESTRICTED;
	check(CPX__REASON__REASON_NONE, NULL);
}

static void
test_summary(void **state)
{
	(void)state;
	fx.a.summary = "";
	check(CPX__REASON__REASON_INVALID_ALERT, "summary is empty");
	memset(fx.big, 'x', CPX_MAX_SUMMARY);
	fx.big[CPX_MAX_SUMMARY] = '\0';
	fx.a.summary = fx.big;
	check(CPX__REASON__REASON_NONE, NULL);
	fx.big[CPX_MAX_SUMMARY] = 'x';
	fx.big[CPX_MAX_SUMMARY + 1] = '\0';
	check(CPX__REASON__REASON_INVALID_ALERT, "summary is 2049 bytes");
}

static void
test_utf8(void **state)
{
	static const char *const bad[] = {
		"\xff",			/* never in UTF-8 */
		"\xc0\xaf",		/* overlong '/' */
		"\xe0\x80\xaf",		/* overlong '/' */
		"\xed\xa0\x80",		/* surrogate */
		"\xf4\x90\x80\x80",	/* above U+10FFFF */
		"ok \xe2\x82",		/* cut short */
		"\x80",			/* lone continuation */
		"\xc3\x28",		/* bad continuation */
	};
	size_t	i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		fx.a.summary = (char *)bad[i];
		check(CPX__REASON__REASON_INVALID_ALERT, "UTF-8");
	}
	fx.a.summary = "\xf0\x9f\x9a\xa8 \xd0\x96 \xe2\x80\x94\n\tend";
	check(CPX__REASON__REASON_NONE, NULL);
	fx.a.summary = "ok";
	fx.place.name = "\xc0\xaf";
	check(CPX__REASON__REASON_INVALID_ALERT, "place name");
}

static void
test_control_characters(void **state)
{
	static const char *const bad[] = {
		"clear \x1b[2J screen",	/* ANSI escape */
		"bell \x07",
		"cr \r fake line",
		"del \x7f",
		"c1 \xc2\x9b",		/* CSI as a C1 control */
		"plate \xe2\x80\xae" "321-BA",	/* right-to-left override */
		"isolate \xe2\x81\xa6x",
		"line \xe2\x80\xa8 sep",
	};
	size_t	i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		fx.a.summary = (char *)bad[i];
		check(CPX__REASON__REASON_INVALID_ALERT,
		    "summary contains a control character");
	}
	/* Newline and tab: in the summary only. */
	fx.a.summary = "line one\n\tline two";
	check(CPX__REASON__REASON_NONE, NULL);
	fx.place.name = "Bregana\nFAKE";
	check(CPX__REASON__REASON_INVALID_ALERT,
	    "place name contains a control character");
	fx.place.name = "Bregana";
	fx.veh[0].plate = "LJ\tAB";
	check(CPX__REASON__REASON_INVALID_ALERT, "vehicle 1 plate");
	fx.veh[0].plate = "LJ AB";
	fx.route[1] = "x\x1b";
	check(CPX__REASON__REASON_INVALID_ALERT, "route waypoint 2");
}

static void
test_place(void **state)
{
	char	t[CPX_MAX_TEXT + 2];

	(void)state;
	memset(t, 'p', CPX_MAX_TEXT + 1);
	t[CPX_MAX_TEXT + 1] = '\0';
	fx.place.name = t;
	check(CPX__REASON__REASON_INVALID_ALERT, "place name");
	fx.place.name = "";
	fx.place.crossing = t;
	check(CPX__REASON__REASON_INVALID_ALERT, "place crossing");
	t[CPX_MAX_TEXT] = '\0';
	check(CPX__REASON__REASON_NONE, NULL);

	fx.place.latitude = 90.0;
	fx.place.longitude = -180.0;
	check(CPX__REASON__REASON_NONE, NULL);
	fx.place.latitude = 90.001;
	check(CPX__REASON__REASON_INVALID_ALERT, "latitude");
	fx.place.latitude = -91;
	check(CPX__REASON__REASON_INVALID_ALERT, "latitude");
	fx.place.latitude = NAN;
	check(CPX__REASON__REASON_INVALID_ALERT, "latitude");
	fx.place.latitude = 0;
	fx.place.longitude = 180.5;
	check(CPX__REASON__REASON_INVALID_ALERT, "longitude");
	fx.place.longitude = -INFINITY;
	check(CPX__REASON__REASON_INVALID_ALERT, "longitude");
	fx.place.longitude = NAN;
	check(CPX__REASON__REASON_INVALID_ALERT, "longitude");
}

static void
test_route(void **state)
{
	char	t[CPX_MAX_TEXT + 2];

	(void)state;
	fx.a.n_route = CPX_MAX_ROUTE;
	check(CPX__REASON__REASON_NONE, NULL);
	fx.a.n_route = CPX_MAX_ROUTE + 1;
	check(CPX__REASON__REASON_INVALID_ALERT, "33 route waypoints");
	fx.a.n_route = 3;
	memset(t, 'w', CPX_MAX_TEXT + 1);
	t[CPX_MAX_TEXT + 1] = '\0';
	fx.route[2] = t;
	check(CPX__REASON__REASON_INVALID_ALERT, "route waypoint 3 is 129");
	fx.route[2] = "";
	check(CPX__REASON__REASON_INVALID_ALERT, "route waypoint 3 is empty");
}

static void
test_vehicles(void **state)
{
	char	t[CPX_MAX_TEXT + 2];

	(void)state;
	fx.a.n_vehicles = CPX_MAX_VEHICLES;
	check(CPX__REASON__REASON_NONE, NULL);
	fx.a.n_vehicles = CPX_MAX_VEHICLES + 1;
	check(CPX__REASON__REASON_INVALID_ALERT, "vehicles");
	fx.a.n_vehicles = 2;
	memset(t, 'v', CPX_MAX_TEXT + 1);
	t[CPX_MAX_TEXT + 1] = '\0';
	t[CPX_MAX_PLATE + 1] = '\0';
	fx.veh[1].plate = t;
	check(CPX__REASON__REASON_INVALID_ALERT, "vehicle 2 plate");
	t[CPX_MAX_PLATE] = '\0';
	check(CPX__REASON__REASON_NONE, NULL);
	fx.veh[1].plate = "";
	t[CPX_MAX_PLATE] = 'v';
	t[CPX_MAX_PLATE + 1] = 'v';
	fx.veh[1].description = t;
	check(CPX__REASON__REASON_INVALID_ALERT, "vehicle 2 description");
	fx.veh[1].description = "";
	fx.veh[1].country = "XX";
	check(CPX__REASON__REASON_INVALID_ALERT, "vehicle 2 country \"XX\"");
	fx.veh[1].country = "";
	check(CPX__REASON__REASON_NONE, NULL);
}

static void
test_reference(void **state)
{
	(void)state;
	fx.a.reference = &fx.ref;
	check(CPX__REASON__REASON_NONE, NULL);
	fx.ref.kind = CPX__REFERENCE_KIND__REFERENCE_UPDATES;
	fx.ref.alert_id = "earlier-1";
	check(CPX__REASON__REASON_NONE, NULL);
	fx.ref.alert_id = "";
	check(CPX__REASON__REASON_INVALID_ALERT, "reference alert id");
	fx.ref.alert_id = "bad id";
	check(CPX__REASON__REASON_INVALID_ALERT, "reference alert id");
	fx.ref.alert_id = fx.a.id;
	check(CPX__REASON__REASON_INVALID_ALERT, "itself");
	fx.ref.alert_id = "earlier-1";
	fx.ref.kind = (Cpx__ReferenceKind)7;
	check(CPX__REASON__REASON_INVALID_ALERT, "reference kind 7");
	fx.ref.kind = CPX__REFERENCE_KIND__REFERENCE_NONE;
	check(CPX__REASON__REASON_INVALID_ALERT, "no kind");
}

static void
test_expiry(void **state)
{
	char	why[128];
	int	reason;

	(void)state;
	fx.a.expires_at = fx.a.issued_at;
	check(CPX__REASON__REASON_INVALID_ALERT, "expires_at");
	fx.a.expires_at = -5;
	check(CPX__REASON__REASON_INVALID_ALERT, "expires_at");
	fx.a.issued_at = NOW - 60000;
	fx.a.expires_at = NOW - 1;
	check(CPX__REASON__REASON_EXPIRED, "expired");
	/* Offline checks (skew 0) do not judge expiry. */
	assert_int_equal(alert_validate(&fx.a, NOW, 0, &reason, why,
	    sizeof(why)), 0);
	fx.a.expires_at = NOW;
	check(CPX__REASON__REASON_NONE, NULL);
}

static void
test_null(void **state)
{
	char	why[64];
	int	reason;

	(void)state;
	assert_int_equal(alert_validate(NULL, NOW, SKEW, &reason, why,
	    sizeof(why)), -1);
	assert_int_equal(reason, CPX__REASON__REASON_INVALID_ALERT);
}

static void
test_names(void **state)
{
	int	i;

	(void)state;
	assert_string_equal(alert_category_name(1), "route");
	assert_string_equal(alert_category_name(7), "other");
	assert_string_equal(alert_category_name(99), "unknown");
	assert_string_equal(alert_category_name(-1), "unknown");
	assert_string_equal(alert_severity_name(4), "critical");
	assert_string_equal(alert_handling_name(3), "named-only");
	assert_string_equal(alert_reason_name(
	    CPX__REASON__REASON_BAD_SIGNATURE), "bad-signature");
	assert_string_equal(alert_reason_name(CPX__REASON__REASON_INTERNAL),
	    "internal");
	assert_string_equal(alert_reason_name(CPX__REASON__REASON_CRL_STALE),
	    "crl-stale");
	assert_string_equal(alert_reason_name(99), "unknown");
	for (i = 1; i <= 7; i++)
		assert_int_equal(alert_category_parse(alert_category_name(i)),
		    i);
	for (i = 1; i <= 4; i++)
		assert_int_equal(alert_severity_parse(alert_severity_name(i)),
		    i);
	for (i = 1; i <= 3; i++)
		assert_int_equal(alert_handling_parse(alert_handling_name(i)),
		    i);
	assert_int_equal(alert_severity_parse("HIGH"), 3);
	assert_int_equal(alert_handling_parse("Named-Only"), 3);
	assert_int_equal(alert_category_parse("unspecified"), -1);
	assert_int_equal(alert_category_parse("boat"), -1);
	assert_int_equal(alert_category_parse(NULL), -1);
	assert_true(alert_now_ms() > 1600000000000LL);
}

/*
 * The names as they were when each enum's table was kept by hand: logs,
 * scripts and the command line depend on them, so deriving them from
 * the schema must not change one.
 */
static const char *const old_categories[] = {
	"unspecified", "route", "vehicle", "crossing", "network", "document",
	"maritime", "other"
};
static const char *const old_severities[] = {
	"unspecified", "low", "medium", "high", "critical"
};
static const char *const old_handlings[] = {
	"unspecified", "network", "restricted", "named-only"
};
static const char *const old_reasons[] = {
	"none", "malformed", "too-large", "bad-signature", "bad-signer",
	"signer-revoked", "origin-mismatch", "signer-mismatch",
	"invalid-alert", "clock-skew", "expired", "unknown-recipient",
	"handling-recipients", "not-authorized", "duplicate-conflict",
	"rate-limited", "storage", "bad-request", "overloaded",
	"shutting-down", "cert-revoked", "idle-timeout", "internal",
	"crl-stale", "session-limit"
};
static const char *const old_record_kinds[] = {
	"unspecified", "alert-accepted", "publish-refused", "session-opened",
	"session-refused", "session-closed", "replay-requested", "checkpoint",
	"request-refused"
};

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))

static void
expect_old_names(const char *(*name)(int), const char *const *old, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++)
		assert_string_equal(name((int)i), old[i]);
}

static void
test_names_unchanged(void **state)
{
	(void)state;
	expect_old_names(alert_category_name, old_categories,
	    NELEM(old_categories));
	expect_old_names(alert_severity_name, old_severities,
	    NELEM(old_severities));
	expect_old_names(alert_handling_name, old_handlings,
	    NELEM(old_handlings));
	expect_old_names(alert_reason_name, old_reasons, NELEM(old_reasons));
	expect_old_names(alert_record_kind_name, old_record_kinds,
	    NELEM(old_record_kinds));
	assert_string_equal(alert_reference_kind_name(1), "updates");
	assert_string_equal(alert_reference_kind_name(2), "withdraws");
	assert_int_equal(alert_reference_kind_parse("Withdraws"), 2);
	assert_int_equal(alert_reference_kind_parse("none"), -1);
	assert_int_equal(alert_record_kind_parse("alert-accepted"), 1);
	assert_int_equal(alert_reason_parse("session-limit"), 24);
	assert_int_equal(alert_reason_parse("none"), -1);
	/* The lists messages offer, as they were written by hand. */
	assert_string_equal(alert_category_choices(), "route, vehicle, "
	    "crossing, network, document, maritime, other");
	assert_string_equal(alert_severity_choices(),
	    "low, medium, high, critical");
	assert_string_equal(alert_handling_choices(),
	    "network, restricted, named-only");
	assert_string_equal(alert_reference_kind_choices(),
	    "updates, withdraws");
}

/* The schema value name, e.g. REASON_BAD_SIGNATURE, as "bad-signature". */
static void
short_name(const char *schema, const char *prefix, char *out, size_t len)
{
	size_t	i;

	assert_int_equal(strncmp(schema, prefix, strlen(prefix)), 0);
	schema += strlen(prefix);
	assert_true(strlen(schema) < len);
	for (i = 0; schema[i] != '\0'; i++)
		out[i] = schema[i] == '_' ? '-' :
		    (char)(schema[i] >= 'A' && schema[i] <= 'Z' ?
		    schema[i] - 'A' + 'a' : schema[i]);
	out[i] = '\0';
}

/*
 * Every value of every enum the schema defines: named as the rule in
 * alert.h says, parsed back to itself (never value 0, which no one may
 * ask for by name), and known to alert_validate and the wire codec by
 * the same descriptor. A value added to proto/cpx.proto passes here with
 * no edit to lib/.
 */
static void
test_names_every_value(void **state)
{
	static const struct {
		const ProtobufCEnumDescriptor	*d;
		const char			*prefix;
		const char			*(*name)(int);
		int				 (*parse)(const char *);
	} e[] = {
		{ &cpx__category__descriptor, "CATEGORY_",
		    alert_category_name, alert_category_parse },
		{ &cpx__severity__descriptor, "SEVERITY_",
		    alert_severity_name, alert_severity_parse },
		{ &cpx__handling__descriptor, "HANDLING_",
		    alert_handling_name, alert_handling_parse },
		{ &cpx__reference_kind__descriptor, "REFERENCE_",
		    alert_reference_kind_name, alert_reference_kind_parse },
		{ &cpx__reason__descriptor, "REASON_",
		    alert_reason_name, alert_reason_parse },
		{ &cpx__record_kind__descriptor, "RECORD_",
		    alert_record_kind_name, alert_record_kind_parse },
	};
	char	want[64];
	size_t	i, k;
	int	v, maxv;

	(void)state;
	for (i = 0; i < NELEM(e); i++) {
		maxv = 0;
		for (k = 0; k < e[i].d->n_values; k++) {
			v = e[i].d->values[k].value;
			short_name(e[i].d->values[k].name, e[i].prefix, want,
			    sizeof(want));
			assert_string_equal(e[i].name(v), want);
			assert_int_equal(e[i].parse(want), v == 0 ? -1 : v);
			if (v > maxv)
				maxv = v;
		}
		assert_true(e[i].d->n_values > 1);
		/* Just past the schema, and below it: unknown. */
		assert_string_equal(e[i].name(maxv + 1), "unknown");
		assert_string_equal(e[i].name(-1), "unknown");
		assert_int_equal(e[i].parse("unknown"), -1);
	}
}

/* The enums of an alert are checked against the schema, not a table. */
static void
test_enums_from_schema(void **state)
{
	const ProtobufCEnumDescriptor	*d = &cpx__category__descriptor;
	int				 reason, last = 0;
	char				 why[256];
	size_t				 k;

	(void)state;
	for (k = 0; k < d->n_values; k++) {
		if (d->values[k].value == 0)
			continue;
		fx.a.category = d->values[k].value;
		assert_int_equal(alert_validate(&fx.a, NOW, SKEW, &reason, why,
		    sizeof(why)), 0);
		if (d->values[k].value > last)
			last = d->values[k].value;
	}
	fx.a.category = last + 1;
	assert_int_equal(alert_validate(&fx.a, NOW, SKEW, &reason, why,
	    sizeof(why)), -1);
	assert_non_null(strstr(why, "category"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_valid, setup),
		cmocka_unit_test_setup(test_id, setup),
		cmocka_unit_test_setup(test_origin, setup),
		cmocka_unit_test_setup(test_clock_skew, setup),
		cmocka_unit_test_setup(test_skew_disabled, setup),
		cmocka_unit_test_setup(test_enums, setup),
		cmocka_unit_test_setup(test_recipients_syntax, setup),
		cmocka_unit_test_setup(test_region_name, setup),
		cmocka_unit_test_setup(test_handling_recipients, setup),
		cmocka_unit_test_setup(test_summary, setup),
		cmocka_unit_test_setup(test_utf8, setup),
		cmocka_unit_test_setup(test_control_characters, setup),
		cmocka_unit_test_setup(test_place, setup),
		cmocka_unit_test_setup(test_route, setup),
		cmocka_unit_test_setup(test_vehicles, setup),
		cmocka_unit_test_setup(test_reference, setup),
		cmocka_unit_test_setup(test_expiry, setup),
		cmocka_unit_test_setup(test_null, setup),
		cmocka_unit_test_setup(test_names, setup),
		cmocka_unit_test_setup(test_names_unchanged, setup),
		cmocka_unit_test_setup(test_names_every_value, setup),
		cmocka_unit_test_setup(test_enums_from_schema, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
