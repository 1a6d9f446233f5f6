/*
 * test_alert_json.c: tests of client/alert_json.c: JSON -> alert -> JSON
 * round trips, every refusal of the parser (with the key it names), the
 * parser fed every prefix of a document and an oversized one, the
 * delivery line read back with jansson, terminal output free of control
 * characters, ISO 8601 times, and the shipped example files.
 */
#include <dirent.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "alert.h"
#include "alert_json.h"
#include "cpx_limits.h"

/* Every key, times with milliseconds so the round trip is exact. */
static const char full_doc[] =
    "{\n"
    "  \"id\": \"3f1c2a9e-si-0001\",\n"
    "  \"origin\": \"SI\",\n"
    "  \"issued_at\": \"2026-11-25T17:30:00.123Z\",\n"
    "  \"category\": \"vehicle\",\n"
    "  \"severity\": \"high\",\n"
    "  \"handling\": \"restricted\",\n"
    "  \"recipients\": [\"western-balkans\", \"AT\"],\n"
    "  \"summary\": \"Van with about 15 persons, \\u010cakovec \\u2192 "
    "Ljubljana\",\n"
    "  \"place\": {\"name\": \"Obrezje\", \"crossing\": \"Obrezje - "
    "Bregana\", \"latitude\": 45.8479, \"longitude\": -15.6915},\n"
    "  \"route\": [\"Bregana\", \"Obrezje\", \"Ljubljana\"],\n"
    "  \"vehicles\": [{\"plate\": \"LJ-AB-123\", \"country\": \"SI\", "
    "\"description\": \"white Sprinter\"}, {\"plate\": \"ZG-1234-X\"}],\n"
    "  \"persons_count\": 15,\n"
    "  \"reference\": {\"alert_id\": \"3f1c2a9e-si-0000\", \"kind\": "
    "\"updates\"},\n"
    "  \"expires_at\": \"2026-11-26T17:30:00.000Z\"\n"
    "}";

#define T_ISSUED	1795627800123LL
#define T_EXPIRES	1795714200000LL

static Cpx__Alert *
parse_str(const char *s, char *err, size_t errlen)
{
	return alert_json_parse(s, strlen(s), err, errlen);
}

/* Pack an alert; the caller frees. Equal alerts pack to equal bytes. */
static uint8_t *
pack(const Cpx__Alert *a, size_t *len)
{
	uint8_t *buf;

	*len = cpx__alert__get_packed_size(a);
	buf = malloc(*len + 1);
	assert_non_null(buf);
	assert_int_equal(cpx__alert__pack(a, buf), *len);
	return buf;
}

static void
test_round_trip_full(void **state)
{
	char err[256], *text;
	Cpx__Alert *a, *b;
	json_t *orig, *j;
	uint8_t *pa, *pb;
	size_t la, lb;

	(void)state;
	a = parse_str(full_doc, err, sizeof(err));
	assert_non_null(a);
	assert_string_equal(err, "");
	assert_string_equal(a->id, "3f1c2a9e-si-0001");
	assert_string_equal(a->origin, "SI");
	assert_true(a->issued_at == T_ISSUED);
	assert_int_equal(a->category, CPX__CATEGORY__CATEGORY_VEHICLE);
	assert_int_equal(a->severity, CPX__SEVERITY__SEVERITY_HIGH);
	assert_int_equal(a->handling, CPX__HANDLING__HANDLING_RESTRICTED);
	assert_int_equal(a->n_recipients, 2);
	assert_string_equal(a->recipients[1], "AT");
	assert_string_equal(a->summary, "Van with about 15 persons, "
	    "\xc4\x8c" "akovec \xe2\x86\x92 Ljubljana");
	assert_non_null(a->place);
	assert_true(a->place->has_coordinates);
	assert_true(a->place->longitude == -15.6915);
	assert_int_equal(a->n_route, 3);
	assert_int_equal(a->n_vehicles, 2);
	assert_string_equal(a->vehicles[1]->plate, "ZG-1234-X");
	assert_string_equal(a->vehicles[1]->country, "");
	assert_int_equal(a->persons_count, 15);
	assert_non_null(a->reference);
	assert_int_equal(a->reference->kind,
	    CPX__REFERENCE_KIND__REFERENCE_UPDATES);
	assert_true(a->expires_at == T_EXPIRES);

	/* JSON -> alert -> JSON gives the same document. */
	orig = json_loads(full_doc, 0, NULL);
	assert_non_null(orig);
	j = alert_json_from_alert(a);
	assert_non_null(j);
	assert_true(json_equal(orig, j));

	/* ... and alert -> JSON -> alert the same message. */
	text = json_dumps(j, JSON_COMPACT);
	assert_non_null(text);
	b = parse_str(text, err, sizeof(err));
	assert_non_null(b);
	pa = pack(a, &la);
	pb = pack(b, &lb);
	assert_int_equal(la, lb);
	assert_memory_equal(pa, pb, la);

	free(pa);
	free(pb);
	free(text);
	json_decref(j);
	json_decref(orig);
	alert_json_free(&b);
	alert_json_free(&a);
	assert_null(a);
	alert_json_free(&a);
	alert_json_free(NULL);
}

static void
test_minimal(void **state)
{
	const char *doc = "{\"category\": \"ROUTE\", \"severity\": \"low\", "
	    "\"handling\": \"network\", \"summary\": \"x\"}";
	char err[256];
	Cpx__Alert *a;
	json_t *j;

	(void)state;
	a = parse_str(doc, err, sizeof(err));
	assert_non_null(a);
	assert_string_equal(a->id, "");
	assert_string_equal(a->origin, "");
	assert_true(a->issued_at == 0);
	assert_int_equal(a->category, CPX__CATEGORY__CATEGORY_ROUTE);
	assert_int_equal(a->n_recipients, 0);
	assert_null(a->place);
	assert_null(a->reference);
	j = alert_json_from_alert(a);
	assert_non_null(j);
	assert_null(json_object_get(j, "issued_at"));
	assert_null(json_object_get(j, "place"));
	assert_int_equal(json_array_size(json_object_get(j, "recipients")), 0);
	json_decref(j);
	/* Built with malloc throughout, so protobuf-c can free it too. */
	cpx__alert__free_unpacked(a, NULL);

	a = parse_str(full_doc, err, sizeof(err));
	assert_non_null(a);
	cpx__alert__free_unpacked(a, NULL);
}

/* asprintf() is a GNU extension; this is all the tests need of it. */
static char *
xprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *
xprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	assert_true(n >= 0);
	s = malloc((size_t)n + 1);
	assert_non_null(s);
	va_start(ap, fmt);
	(void)vsnprintf(s, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return s;
}

/* A document with one key added or replaced in the minimal base. */
static char *
doc_with(const char *extra)
{
	const char *base = "\"category\": \"route\", \"severity\": "
	    "\"low\", \"handling\": \"network\"";
	return xprintf("{%s, %s}", base, extra);
}

static void
expect_error(const char *extra, const char *want)
{
	char err[256], *doc;
	Cpx__Alert *a;

	doc = doc_with(extra);
	memset(err, 'Z', sizeof(err));
	a = parse_str(doc, err, sizeof(err));
	if (a != NULL || strstr(err, want) == NULL)
		fail_msg("doc %s: got %p \"%s\", want \"%s\"", doc,
		    (void *)a, a != NULL ? "" : err, want);
	free(doc);
}

static void
expect_ok(const char *extra)
{
	char err[256], *doc;
	Cpx__Alert *a;

	doc = doc_with(extra);
	a = parse_str(doc, err, sizeof(err));
	if (a == NULL)
		fail_msg("doc %s refused: %s", doc, err);
	alert_json_free(&a);
	free(doc);
}

/* "key": ["x", "x", ...] with n entries of len bytes. */
static char *
str_array(const char *key, size_t n, size_t len)
{
	char *s, *p;
	size_t i;

	s = malloc(strlen(key) + 8 + n * (len + 3));
	assert_non_null(s);
	p = s + sprintf(s, "\"%s\": [", key);
	for (i = 0; i < n; i++) {
		if (i > 0)
			*p++ = ',';
		*p++ = '"';
		memset(p, 'a', len);
		p += len;
		*p++ = '"';
	}
	strcpy(p, "]");
	return s;
}

static char *
long_string(const char *key, size_t len)
{
	char *s;

	s = malloc(strlen(key) + len + 8);
	assert_non_null(s);
	sprintf(s, "\"%s\": \"", key);
	memset(s + strlen(s), 'a', len);
	strcpy(s + strlen(key) + 5 + len, "\"");
	return s;
}

static void
test_errors(void **state)
{
	static const struct {
		const char *extra, *want;
	} cases[] = {
		{ "\"summary\": \"x\", \"colour\": \"red\"",
		    "unknown key \"colour\"" },
		{ "\"summary\": \"x\", \"place\": {\"town\": \"a\"}",
		    "place: unknown key \"town\"" },
		{ "\"summary\": \"x\", \"vehicles\": [{\"plate\": \"a\", "
		    "\"wheels\": 4}]", "vehicles[0]: unknown key \"wheels\"" },
		{ "\"summary\": \"x\", \"reference\": {\"alert_id\": \"a\", "
		    "\"kind\": \"updates\", \"why\": 1}",
		    "reference: unknown key \"why\"" },
		{ "\"summary\": 5", "summary: expected a string" },
		{ "\"summary\": null", "summary: expected a string" },
		{ "\"summary\": \"x\", \"recipients\": \"HR\"",
		    "recipients: expected an array" },
		{ "\"summary\": \"x\", \"recipients\": [\"HR\", 3]",
		    "recipients[1]: expected a string" },
		{ "\"summary\": \"x\", \"recipients\": [\"\"]",
		    "recipients[0]: may not be empty" },
		{ "\"summary\": \"x\", \"persons_count\": \"3\"",
		    "persons_count: expected an integer" },
		{ "\"summary\": \"x\", \"persons_count\": 1.5",
		    "persons_count: expected an integer" },
		{ "\"summary\": \"x\", \"persons_count\": -1",
		    "persons_count: out of range" },
		{ "\"summary\": \"x\", \"persons_count\": 4294967296",
		    "persons_count: out of range" },
		{ "\"summary\": \"x\", \"place\": [1]",
		    "place: expected an object" },
		{ "\"summary\": \"x\", \"place\": {\"latitude\": 91, "
		    "\"longitude\": 0}", "place.latitude: out of range" },
		{ "\"summary\": \"x\", \"place\": {\"latitude\": 1, "
		    "\"longitude\": -180.5}", "place.longitude: out of range" },
		{ "\"summary\": \"x\", \"place\": {\"latitude\": \"1\", "
		    "\"longitude\": 1}", "place.latitude: expected a number" },
		{ "\"summary\": \"x\", \"place\": {\"latitude\": 1}",
		    "latitude and longitude go together" },
		{ "\"summary\": \"x\", \"vehicles\": {}",
		    "vehicles: expected an array" },
		{ "\"summary\": \"x\", \"vehicles\": [{\"country\": \"SVN\"}]",
		    "vehicles[0].country: longer than 2" },
		{ "\"summary\": \"x\", \"vehicles\": [{\"plate\": "
		    "\"123456789012345678901234567890123\"}]",
		    "vehicles[0].plate: longer than 32" },
		{ "\"summary\": \"x\", \"origin\": \"SLO\"",
		    "origin: longer than 2" },
		{ "\"summary\": \"x\", \"id\": \"a b\"",
		    "id: not an alert id" },
		{ "\"summary\": \"x\", \"id\": 7", "id: expected a string" },
		{ "\"summary\": \"x\", \"category\": \"boat\"",
		    "duplicate object key" },
		{ "\"summary\": \"x\", \"reference\": {\"alert_id\": \"a\", "
		    "\"kind\": \"replaces\"}",
		    "reference.kind: unknown value \"replaces\"" },
		{ "\"summary\": \"x\", \"reference\": {\"alert_id\": \"a\"}",
		    "reference: missing key \"kind\"" },
		{ "\"summary\": \"x\", \"reference\": {\"kind\": \"updates\"}",
		    "reference: missing key \"alert_id\"" },
		{ "\"summary\": \"x\", \"issued_at\": \"2026-02-30T00:00:00Z\"",
		    "issued_at: \"2026-02-30T00:00:00Z\" is not an ISO 8601" },
		{ "\"summary\": \"x\", \"issued_at\": \"yesterday\"",
		    "issued_at: \"yesterday\" is not" },
		{ "\"summary\": \"x\", \"expires_at\": true",
		    "expires_at: expected an ISO 8601 string or integer" },
		{ "\"summary\": \"x\", \"expires_at\": -5",
		    "expires_at: milliseconds out of range" },
		{ "\"summary\": \"\"", "summary: may not be empty" },
		{ "\"summary\": \"a\\u0000b\"", "not allowed" },
		{ "\"place\": {}", "missing key \"summary\"" },
	};
	char *s;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		expect_error(cases[i].extra, cases[i].want);

	/* Bad enum names, and UNSPECIFIED is no choice either. */
	{
		char err[256];
		Cpx__Alert *a;
		static const struct {
			const char *doc, *want;
		} enums[] = {
			{ "{\"category\": \"boat\", \"severity\": \"low\", "
			    "\"handling\": \"network\", \"summary\": \"x\"}",
			    "category: unknown value \"boat\"" },
			{ "{\"category\": \"unspecified\", \"severity\": "
			    "\"low\", \"handling\": \"network\", "
			    "\"summary\": \"x\"}",
			    "category: unknown value \"unspecified\"" },
			{ "{\"category\": 2, \"severity\": \"low\", "
			    "\"handling\": \"network\", \"summary\": \"x\"}",
			    "category: expected a string" },
			{ "{\"category\": \"route\", \"severity\": \"urgent\", "
			    "\"handling\": \"network\", \"summary\": \"x\"}",
			    "severity: unknown value \"urgent\"" },
			{ "{\"category\": \"route\", \"severity\": \"low\", "
			    "\"handling\": \"secret\", \"summary\": \"x\"}",
			    "handling: unknown value \"secret\"" },
			{ "{\"severity\": \"low\", \"handling\": \"network\", "
			    "\"summary\": \"x\"}", "missing key \"category\"" },
			{ "{\"category\": \"route\", "
			    "\"handling\": \"network\", "
			    "\"summary\": \"x\"}", "missing key \"severity\"" },
			{ "{\"category\": \"route\", \"severity\": \"low\", "
			    "\"summary\": \"x\"}", "missing key \"handling\"" },
			{ "[1, 2]", "expected a JSON object" },
			{ "", "line 1" },
		};

		for (i = 0; i < sizeof(enums) / sizeof(enums[0]); i++) {
			a = parse_str(enums[i].doc, err, sizeof(err));
			if (a != NULL || strstr(err, enums[i].want) == NULL)
				fail_msg("doc %s: got \"%s\", want \"%s\"",
				    enums[i].doc, err, enums[i].want);
		}
	}

	/* Bounds: exactly at the limit passes, one over is refused. */
	s = long_string("summary", CPX_MAX_SUMMARY);
	expect_ok(s);
	free(s);
	s = long_string("summary", CPX_MAX_SUMMARY + 1);
	expect_error(s, "summary: longer than 2048 bytes");
	free(s);

	{
		char *r, *both;

		r = str_array("recipients", CPX_MAX_RECIPIENTS, 2);
		both = xprintf("\"summary\": \"x\", %s", r);
		expect_ok(both);
		free(both);
		free(r);
		r = str_array("recipients", CPX_MAX_RECIPIENTS + 1, 2);
		both = xprintf("\"summary\": \"x\", %s", r);
		expect_error(both, "recipients: more than 64 entries");
		free(both);
		free(r);
		r = str_array("recipients", 1, CPX_MAX_REGION_NAME + 1);
		both = xprintf("\"summary\": \"x\", %s", r);
		expect_error(both, "recipients[0]: longer than");
		free(both);
		free(r);
		r = str_array("route", CPX_MAX_ROUTE + 1, 1);
		both = xprintf("\"summary\": \"x\", %s", r);
		expect_error(both, "route: more than 32 entries");
		free(both);
		free(r);
		r = str_array("route", 1, CPX_MAX_TEXT + 1);
		both = xprintf("\"summary\": \"x\", %s", r);
		expect_error(both, "route[0]: longer than 128");
		free(both);
		free(r);
	}
	{
		char *v, *p;
		size_t k;

		v = malloc(64 + (CPX_MAX_VEHICLES + 1) * 16);
		assert_non_null(v);
		p = v + sprintf(v, "\"summary\": \"x\", \"vehicles\": [");
		for (k = 0; k < CPX_MAX_VEHICLES + 1; k++)
			p += sprintf(p, "%s{\"plate\": \"A\"}", k ? "," : "");
		strcpy(p, "]");
		expect_error(v, "vehicles: more than 32 entries");
		free(v);
	}
}

/* Keys and jansson messages quoted in errors carry no control bytes. */
static void
test_error_text_clean(void **state)
{
	const char *doc = "{\"\\u001b]0;pwned\\u0007\\u001b[31m\": 1}";
	const char *bad = "{\"summary\": \x1b[2J}";
	char err[256];
	size_t i;

	(void)state;
	assert_null(parse_str(doc, err, sizeof(err)));
	assert_non_null(strstr(err, "unknown key"));
	for (i = 0; err[i] != '\0'; i++)
		assert_true(err[i] >= 0x20 && err[i] < 0x7f);
	assert_null(parse_str(bad, err, sizeof(err)));
	for (i = 0; err[i] != '\0'; i++)
		assert_true(err[i] >= 0x20 && err[i] < 0x7f);
	/* A NULL or empty error buffer is allowed. */
	assert_null(parse_str(doc, NULL, 0));
	assert_null(alert_json_parse(NULL, 0, err, sizeof(err)));
}

static void
test_syntax_error_line(void **state)
{
	const char *doc = "{\n  \"summary\": \"x\",\n  \"category\": ,\n"
	    "  \"severity\": \"low\"\n}\n";
	char err[256];

	(void)state;
	assert_null(parse_str(doc, err, sizeof(err)));
	if (strstr(err, "line 3 column") == NULL)
		fail_msg("error without line: %s", err);
	/* Two documents in one file are refused too. */
	assert_null(parse_str("{} {}", err, sizeof(err)));
	assert_non_null(strstr(err, "line 1"));
}

/* Every prefix of a valid document is refused, without overreading. */
static void
test_truncated(void **state)
{
	size_t n = strlen(full_doc), i;
	char err[256], *buf;
	Cpx__Alert *a;

	(void)state;
	for (i = 0; i <= n; i++) {
		/* Exactly i bytes, so ASan sees any read past the end. */
		buf = malloc(i > 0 ? i : 1);
		assert_non_null(buf);
		memcpy(buf, full_doc, i);
		err[0] = '\0';
		a = alert_json_parse(buf, i, err, sizeof(err));
		if (i < n) {
			if (a != NULL)
				fail_msg("prefix of %zu bytes accepted", i);
			assert_true(err[0] != '\0');
		} else
			assert_non_null(a);
		alert_json_free(&a);
		free(buf);
	}
}

static void
test_oversize(void **state)
{
	const char *doc = "{\"category\": \"route\", \"severity\": \"low\", "
	    "\"handling\": \"network\", \"summary\": \"x\"}";
	char err[256], *buf;
	Cpx__Alert *a;

	(void)state;
	buf = malloc(ALERT_JSON_MAX_TEXT + 1);
	assert_non_null(buf);
	memset(buf, ' ', ALERT_JSON_MAX_TEXT + 1);
	memcpy(buf, doc, strlen(doc));
	/* At the limit (whitespace padding) it parses... */
	a = alert_json_parse(buf, ALERT_JSON_MAX_TEXT, err, sizeof(err));
	assert_non_null(a);
	alert_json_free(&a);
	/* ...one byte more is refused before parsing. */
	a = alert_json_parse(buf, ALERT_JSON_MAX_TEXT + 1, err, sizeof(err));
	assert_null(a);
	assert_non_null(strstr(err, "too large"));
	free(buf);
}

static void
test_delivery_line(void **state)
{
	struct alert_json_delivery d;
	char err[256], *line;
	Cpx__Alert *a;
	json_t *j, *aj, *v;
	json_error_t jerr;
	size_t i;

	(void)state;
	a = parse_str(full_doc, err, sizeof(err));
	assert_non_null(a);
	memset(&d, 0, sizeof(d));
	d.seq = 42;
	d.accepted_at = T_ISSUED + 877;
	d.alert = a;
	d.verified = 1;
	d.signer_node = "si-ncp";
	d.signer_country = "SI";
	d.replayed = 1;
	line = alert_json_delivery_line(&d);
	assert_non_null(line);
	/* Printable ASCII only, though the summary has U+010C, U+2192. */
	for (i = 0; line[i] != '\0'; i++)
		assert_true(line[i] >= 0x20 && line[i] < 0x7f);
	assert_non_null(strstr(line, "\\u010C"));
	/* Stable order: seq first, alert last. */
	assert_memory_equal(line, "{\"seq\":42,\"accepted_at\":", 24);

	j = json_loads(line, 0, &jerr);
	assert_non_null(j);
	assert_int_equal(json_integer_value(json_object_get(j, "seq")), 42);
	assert_string_equal(json_string_value(json_object_get(j,
	    "accepted_at")), "2026-11-25T17:30:01.000Z");
	assert_string_equal(json_string_value(json_object_get(j, "id")),
	    "3f1c2a9e-si-0001");
	assert_string_equal(json_string_value(json_object_get(j, "origin")),
	    "SI");
	assert_string_equal(json_string_value(json_object_get(j,
	    "category")), "vehicle");
	assert_string_equal(json_string_value(json_object_get(j,
	    "severity")), "high");
	assert_string_equal(json_string_value(json_object_get(j,
	    "handling")), "restricted");
	v = json_object_get(j, "recipients");
	assert_int_equal(json_array_size(v), 2);
	assert_string_equal(json_string_value(json_array_get(v, 0)),
	    "western-balkans");
	assert_non_null(strstr(json_string_value(json_object_get(j,
	    "summary")), "Ljubljana"));
	assert_string_equal(json_string_value(json_object_get(j,
	    "issued_at")), "2026-11-25T17:30:00.123Z");
	assert_string_equal(json_string_value(json_object_get(j, "signer")),
	    "si-ncp");
	assert_string_equal(json_string_value(json_object_get(j,
	    "signer_country")), "SI");
	assert_true(json_is_true(json_object_get(j, "verified")));
	assert_true(json_is_true(json_object_get(j, "replayed")));
	assert_null(json_object_get(j, "verify_error"));
	aj = alert_json_from_alert(a);
	assert_non_null(aj);
	assert_true(json_equal(aj, json_object_get(j, "alert")));
	json_decref(aj);
	json_decref(j);
	free(line);

	/* Not verified, no alert decoded: still one line, nulls. */
	memset(&d, 0, sizeof(d));
	d.seq = 7;
	d.verify_error = "bad-signature";
	line = alert_json_delivery_line(&d);
	assert_non_null(line);
	j = json_loads(line, 0, &jerr);
	assert_non_null(j);
	assert_true(json_is_false(json_object_get(j, "verified")));
	assert_true(json_is_false(json_object_get(j, "replayed")));
	assert_true(json_is_null(json_object_get(j, "alert")));
	assert_true(json_is_null(json_object_get(j, "id")));
	assert_true(json_is_null(json_object_get(j, "signer")));
	assert_string_equal(json_string_value(json_object_get(j,
	    "verify_error")), "bad-signature");
	json_decref(j);
	free(line);
	assert_null(alert_json_delivery_line(NULL));
	alert_json_free(&a);
}

/* An alert off the wire may hold bytes that are not UTF-8. */
static void
test_from_alert_bad_utf8(void **state)
{
	Cpx__Alert a = CPX__ALERT__INIT;
	char *recips[] = { "HR" };
	json_t *j;

	(void)state;
	a.id = "x";
	a.origin = "SI";
	a.issued_at = -5;		/* not a time we can print */
	a.category = 99;		/* unknown to this version */
	a.severity = CPX__SEVERITY__SEVERITY_LOW;
	a.handling = CPX__HANDLING__HANDLING_NAMED_ONLY;
	a.n_recipients = 1;
	a.recipients = recips;
	a.summary = "ok \xff\xfe end \xc0\xaf";
	j = alert_json_from_alert(&a);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "summary")),
	    "ok \xef\xbf\xbd\xef\xbf\xbd end \xef\xbf\xbd\xef\xbf\xbd");
	assert_int_equal(json_integer_value(json_object_get(j, "category")),
	    99);
	assert_int_equal(json_integer_value(json_object_get(j, "issued_at")),
	    -5);
	assert_string_equal(json_string_value(json_object_get(j,
	    "handling")), "named-only");
	json_decref(j);
	assert_null(alert_json_from_alert(NULL));
}

/* Print d into a malloc'd string. */
static char *
human(const struct alert_json_delivery *d)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	f = open_memstream(&buf, &len);
	assert_non_null(f);
	assert_int_equal(alert_json_print_human(f, d), 0);
	assert_int_equal(fclose(f), 0);
	return buf;
}

static void
test_human(void **state)
{
	struct alert_json_delivery d;
	char err[256], *out, *evil;
	const char *hdr;
	Cpx__Alert *a;
	const unsigned char *u;
	size_t lines = 0;
	FILE *full;

	(void)state;
	a = parse_str(full_doc, err, sizeof(err));
	assert_non_null(a);
	memset(&d, 0, sizeof(d));
	d.seq = 42;
	d.accepted_at = T_ISSUED + 877;
	d.alert = a;
	d.verified = 1;
	d.signer_node = "si-ncp";
	out = human(&d);
	hdr = "#42 2026-11-25 17:30:00Z SI -> western-balkans,AT  HIGH  "
	    "category: vehicle  handling: restricted  [verified: si-ncp]\n";
	if (strncmp(out, hdr, strlen(hdr)) != 0)
		fail_msg("header: %s", out);
	assert_non_null(strstr(out, "route:     Bregana -> Obrezje -> "
	    "Ljubljana\n"));
	assert_non_null(strstr(out, "vehicle:   LJ-AB-123 (SI) white "
	    "Sprinter\n"));
	assert_non_null(strstr(out, "persons:   15\n"));
	assert_non_null(strstr(out, "reference: updates 3f1c2a9e-si-0000\n"));
	assert_non_null(strstr(out, "expires:   2026-11-26 17:30:00Z\n"));
	assert_non_null(strstr(out, "crossing Obrezje - Bregana; 45.84790, "
	    "-15.69150\n"));
	free(out);

	/*
	 * Terminal escapes (CSI colour, OSC title, clear screen), a raw C1
	 * CSI byte, its UTF-8 form, a bidi override and line breaks that
	 * would forge a second alert header.
	 */
	evil = strdup("red \x1b[31mALERT\x1b[0m \x1b]0;title\x07 \x9b" "2J "
	    "\xc2\x9b" "2J \xe2\x80\xae" "txet\n#43 fake\r\x7f\x08 end");
	assert_non_null(evil);
	free(a->summary);
	a->summary = evil;
	free(a->route[0]);
	a->route[0] = strdup("\x1b[2J");
	assert_non_null(a->route[0]);
	d.signer_node = "si\x1b[5m-ncp";
	out = human(&d);
	for (u = (const unsigned char *)out; *u != '\0'; u++) {
		if (*u == '\n') {
			lines++;
			continue;
		}
		if (*u < 0x20 || *u == 0x7f)
			fail_msg("control byte 0x%02x at %zu", *u,
			    (size_t)(u - (const unsigned char *)out));
	}
	assert_null(strstr(out, "\xc2\x9b"));
	assert_null(strstr(out, "\x9b"));
	assert_null(strstr(out, "\xe2\x80\xae"));
	assert_null(strstr(out, "\n#43"));
	assert_non_null(strstr(out, "ALERT"));
	/* header summary place route 2 vehicles persons ref expiry id */
	assert_int_equal(lines, 10);
	free(out);

	/* Undecodable, unverified. */
	memset(&d, 0, sizeof(d));
	d.seq = 9;
	d.verify_error = "bad\x1b[0m-signature";
	out = human(&d);
	assert_non_null(strstr(out, "(alert could not be decoded)"));
	assert_non_null(strstr(out, "[NOT VERIFIED: bad?[0m-signature]"));
	free(out);

	/* A write error is reported. */
	full = fopen("/dev/full", "w");
	if (full != NULL) {
		d.alert = a;
		assert_int_equal(alert_json_print_human(full, &d), -1);
		(void)fclose(full);
	}
	alert_json_free(&a);
}

/*
 * "author" (who wrote it; cpx-console sets it): read up to
 * CPX_MAX_AUTHOR bytes, written back, shown by the human output as
 * "by NAME" without control characters, freed with the alert.
 */
static void
test_author(void **state)
{
	struct alert_json_delivery d;
	char err[256], *doc, *out, *longest;
	Cpx__Alert *a;
	json_t *j;

	(void)state;
	doc = doc_with("\"summary\": \"x\", \"origin\": \"SI\", "
	    "\"author\": \"anna.kovac\"");
	a = parse_str(doc, err, sizeof(err));
	free(doc);
	if (a == NULL)
		fail_msg("refused: %s", err);
	assert_string_equal(a->author, "anna.kovac");
	j = alert_json_from_alert(a);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "author")),
	    "anna.kovac");
	json_decref(j);
	memset(&d, 0, sizeof(d));
	d.seq = 7;
	d.alert = a;
	d.verified = 1;
	d.signer_node = "si-ncp";
	out = human(&d);
	if (strstr(out, " SI by anna.kovac -> whole network  LOW") == NULL)
		fail_msg("header: %s", out);
	free(out);
	/* A name cannot forge a second line or recolour the terminal. */
	free(a->author);
	a->author = strdup("ann\x1b[31ma\n#8 fake");
	assert_non_null(a->author);
	out = human(&d);
	assert_non_null(strstr(out, " by ann?[31ma #8 fake -> "));
	free(out);
	alert_json_free(&a);

	/* Without one, no "by". */
	doc = doc_with("\"summary\": \"x\", \"origin\": \"SI\"");
	a = parse_str(doc, err, sizeof(err));
	free(doc);
	assert_non_null(a);
	d.alert = a;
	out = human(&d);
	assert_null(strstr(out, " by "));
	free(out);
	alert_json_free(&a);

	longest = long_string("author", CPX_MAX_AUTHOR);
	doc = xprintf("\"summary\": \"x\", %s", longest);
	expect_ok(doc);
	free(doc);
	free(longest);
	longest = long_string("author", CPX_MAX_AUTHOR + 1);
	doc = xprintf("\"summary\": \"x\", %s", longest);
	expect_error(doc, "author: longer than 64 bytes");
	free(doc);
	free(longest);
	expect_error("\"summary\": \"x\", \"author\": 7",
	    "author: expected a string");
}

static void
test_time(void **state)
{
	static const struct {
		const char *s;
		int64_t ms;
	} good[] = {
		{ "2026-11-25T17:30:00Z", 1795627800000LL },
		{ "2026-11-25t17:30:00z", 1795627800000LL },
		{ "2026-11-25 17:30:00Z", 1795627800000LL },
		{ "2026-11-25T17:30Z", 1795627800000LL },
		{ "2026-11-25T17:30:00.123Z", 1795627800123LL },
		{ "2026-11-25T17:30:00.1Z", 1795627800100LL },
		{ "2026-11-25T17:30:00.123999Z", 1795627800123LL },
		{ "2026-11-25T18:30:00+01:00", 1795627800000LL },
		{ "2026-11-25T15:00:00-02:30", 1795627800000LL },
		{ "2026-11-25", 1795564800000LL },
		{ "2024-02-29T00:00:00Z", 1709164800000LL },
		{ "1970-01-01T00:00:00Z", 0 },
		{ "9999-12-31T23:59:59.999Z", 253402300799999LL },
		{ "1795627800000", 1795627800000LL },
		{ "0", 0 },
	};
	static const char *const bad[] = {
		"", "2026-11-25T17:30:00", "2026-13-01T00:00:00Z",
		"2026-00-01T00:00:00Z", "2026-02-29T00:00:00Z",
		"2026-11-31T00:00:00Z", "2026-11-00T00:00:00Z",
		"2026-11-25T24:00:00Z", "2026-11-25T17:60:00Z",
		"2026-11-25T17:30:60Z", "1969-12-31T23:59:59Z",
		"2026-11-25T17:30:00Zjunk", "2026-11-25T17:30:00.Z",
		"2026-11-25T17:30:00+0100", "2026-11-25T17:30:00+24:00",
		"10000-01-01T00:00:00Z", "-1", "2026-1-1", "2026/11/25",
		"1000000000000000", "253402300800000", "12a",
		"1970-01-01T00:00:00+00:01", " 2026-11-25",
		"2026-11-25T17:30:00 Z",
	};
	static const int64_t fmt[] = {
		0, 1, 999, 1000, 1795627800123LL, 1709164800000LL,
		253402300799999LL
	};
	char buf[ALERT_JSON_TIME_LEN];
	int64_t ms, back;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		if (alert_json_time_parse(good[i].s, &ms) == -1 ||
		    ms != good[i].ms)
			fail_msg("%s: got %lld", good[i].s, (long long)ms);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ms = 123;
		if (alert_json_time_parse(bad[i], &ms) != -1 || ms != 0)
			fail_msg("\"%s\" accepted (%lld)", bad[i],
			    (long long)ms);
	}
	ms = 123;
	assert_int_equal(alert_json_time_parse(NULL, &ms), -1);
	assert_true(ms == 0);
	assert_int_equal(alert_json_time_parse("0", NULL), -1);

	for (i = 0; i < sizeof(fmt) / sizeof(fmt[0]); i++) {
		assert_int_equal(alert_json_time_format(fmt[i], buf,
		    sizeof(buf)), 0);
		assert_int_equal(strlen(buf), 24);
		assert_int_equal(alert_json_time_parse(buf, &back), 0);
		assert_true(back == fmt[i]);
	}
	assert_int_equal(alert_json_time_format(1795627800123LL, buf,
	    sizeof(buf)), 0);
	assert_string_equal(buf, "2026-11-25T17:30:00.123Z");
	assert_int_equal(alert_json_time_format(-1, buf, sizeof(buf)), -1);
	assert_string_equal(buf, "");
	assert_int_equal(alert_json_time_format(253402300800000LL, buf,
	    sizeof(buf)), -1);
	assert_int_equal(alert_json_time_format(INT64_MAX, buf,
	    sizeof(buf)), -1);
	assert_int_equal(alert_json_time_format(0, buf, 24), -1);
	assert_string_equal(buf, "");
	assert_int_equal(alert_json_time_format(0, buf, 25), 0);
	assert_int_equal(alert_json_time_format(0, NULL, 0), -1);
}

/* The shipped examples parse and, once stamped, pass alert_validate. */
static void
test_examples(void **state)
{
	char dir[4096], path[4096 + 256], err[256], why[256];
	struct dirent *de;
	Cpx__Alert *a;
	const char *src;
	DIR *dp;
	FILE *f;
	char *text;
	long len;
	int n = 0, reason;
	int64_t now;

	(void)state;
	src = getenv("CPX_SOURCE_DIR");
	if (src == NULL)
		src = CPX_SOURCE_DIR;
	(void)snprintf(dir, sizeof(dir), "%s/client/examples", src);
	dp = opendir(dir);
	assert_non_null(dp);
	while ((de = readdir(dp)) != NULL) {
		len = (long)strlen(de->d_name);
		if (len < 6 || strcmp(de->d_name + len - 5, ".json") != 0)
			continue;
		(void)snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		f = fopen(path, "r");
		assert_non_null(f);
		assert_int_equal(fseek(f, 0, SEEK_END), 0);
		len = ftell(f);
		assert_true(len > 0 && len < (long)ALERT_JSON_MAX_TEXT);
		rewind(f);
		text = malloc((size_t)len);
		assert_non_null(text);
		assert_int_equal(fread(text, 1, (size_t)len, f), (size_t)len);
		(void)fclose(f);
		a = alert_json_parse(text, (size_t)len, err, sizeof(err));
		if (a == NULL)
			fail_msg("%s: %s", de->d_name, err);
		/* What the CLI fills in before signing. */
		free(a->id);
		a->id = strdup("example-1");
		assert_non_null(a->id);
		now = alert_now_ms();
		a->issued_at = now;
		if (alert_validate(a, now, 60000, &reason, why,
		    sizeof(why)) == -1)
			fail_msg("%s: invalid: %s", de->d_name, why);
		alert_json_free(&a);
		free(text);
		n++;
	}
	(void)closedir(dp);
	assert_true(n >= 2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip_full),
		cmocka_unit_test(test_minimal),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_error_text_clean),
		cmocka_unit_test(test_syntax_error_line),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_oversize),
		cmocka_unit_test(test_delivery_line),
		cmocka_unit_test(test_from_alert_bad_utf8),
		cmocka_unit_test(test_human),
		cmocka_unit_test(test_author),
		cmocka_unit_test(test_time),
		cmocka_unit_test(test_examples),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
