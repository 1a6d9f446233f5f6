/*
 * test_console_author.c: Alert.author, the officer's name that
 * cpx-console puts in the signed alert (proto/cpx.proto field 15). It is
 * optional, at most 64 bytes of UTF-8 without control characters
 * (lib/alert.c, alert_validate), and printed by the one JSON writer
 * (lib/json_out.c) as "author", so recipients see who wrote it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "alert.h"
#include "json_out.h"

struct fx {
	Cpx__Alert	a;
	char		id[40];
	char		origin[3];
	char		summary[40];
	char		author[80];
};

static void
fx_init(struct fx *fx)
{
	cpx__alert__init(&fx->a);
	snprintf(fx->id, sizeof(fx->id), "console-author-1");
	snprintf(fx->origin, sizeof(fx->origin), "HR");
	snprintf(fx->summary, sizeof(fx->summary), "a test alert");
	fx->a.id = fx->id;
	fx->a.origin = fx->origin;
	fx->a.summary = fx->summary;
	fx->a.issued_at = alert_now_ms();
	fx->a.category = CPX__CATEGORY__CATEGORY_VEHICLE;
	fx->a.severity = CPX__SEVERITY__SEVERITY_HIGH;
	fx->a.handling = CPX__HANDLING__HANDLING_NETWORK;
}

static int
check(struct fx *fx, const char *author, char *why, size_t len)
{
	int reason;

	snprintf(fx->author, sizeof(fx->author), "%s", author);
	fx->a.author = fx->author;
	return alert_validate(&fx->a, alert_now_ms(), 60000, &reason, why,
	    len);
}

static void
test_author_bounds(void **state)
{
	struct fx fx;
	char why[200], s64[65], s65[66];

	(void)state;
	fx_init(&fx);
	memset(s64, 'a', 64);
	s64[64] = '\0';
	memset(s65, 'a', 65);
	s65[65] = '\0';
	assert_int_equal(check(&fx, "", why, sizeof(why)), 0);
	assert_int_equal(check(&fx, "anna.kovac", why, sizeof(why)), 0);
	assert_int_equal(check(&fx, s64, why, sizeof(why)), 0);
	/* "Ana Marić": UTF-8 is fine */
	assert_int_equal(check(&fx, "Ana Mari\xc4\x87", why, sizeof(why)), 0);
	assert_int_equal(check(&fx, s65, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "author"));
	/* a name cannot carry a line break or an escape sequence */
	assert_int_equal(check(&fx, "anna\nfake line", why, sizeof(why)), -1);
	assert_non_null(strstr(why, "author"));
	assert_int_equal(check(&fx, "anna\x1b[31m", why, sizeof(why)), -1);
	assert_int_equal(check(&fx, "bad \xc3", why, sizeof(why)), -1);
	assert_non_null(strstr(why, "UTF-8"));
}

static void
test_author_json_and_wire(void **state)
{
	struct fx fx;
	Cpx__Alert *back;
	json_t *o;
	uint8_t buf[512];
	size_t n;

	(void)state;
	fx_init(&fx);
	/* absent: no key */
	o = json_out_alert(&fx.a);
	assert_non_null(o);
	assert_null(json_object_get(o, "author"));
	json_decref(o);
	/* present: the key, and it survives the wire */
	snprintf(fx.author, sizeof(fx.author), "anna.kovac");
	fx.a.author = fx.author;
	o = json_out_alert(&fx.a);
	assert_non_null(o);
	assert_string_equal(json_string_value(json_object_get(o, "author")),
	    "anna.kovac");
	json_decref(o);
	n = cpx__alert__get_packed_size(&fx.a);
	assert_true(n <= sizeof(buf));
	cpx__alert__pack(&fx.a, buf);
	back = cpx__alert__unpack(NULL, n, buf);
	assert_non_null(back);
	assert_string_equal(back->author, "anna.kovac");
	cpx__alert__free_unpacked(back, NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_author_bounds),
		cmocka_unit_test(test_author_json_and_wire),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
