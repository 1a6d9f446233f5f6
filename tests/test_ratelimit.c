/*
 * test_ratelimit.c: broker/ratelimit.c with an explicit clock: the burst,
 * the refill rate, one bucket per node shared by its sessions, separate
 * buckets for other nodes, and "0 = unlimited".
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "ratelimit.h"

static struct identity
node(const char *cc, const char *cn)
{
	struct identity id;

	memset(&id, 0, sizeof(id));
	snprintf(id.country, sizeof(id.country), "%s", cc);
	snprintf(id.node, sizeof(id.node), "%s", cn);
	return id;
}

static void
test_burst_and_refill(void **state)
{
	struct identity si = node("SI", "si-ncp"), hr = node("HR", "hr-ncp");
	struct identity si2 = node("SI", "si-other");
	struct ratelimit *r;
	int i, ok;

	(void)state;
	assert_non_null(r = ratelimit_new(10, 5));	/* 10/s, burst 5 */
	for (i = 0, ok = 0; i < 20; i++)
		ok += ratelimit_take(r, &si, 1000);
	assert_int_equal(ok, 5);
	/* Another node, and another node of the same country: their own. */
	for (i = 0, ok = 0; i < 20; i++)
		ok += ratelimit_take(r, &hr, 1000);
	assert_int_equal(ok, 5);
	assert_int_equal(ratelimit_take(r, &si2, 1000), 1);
	/* 10/s: after 300 ms three more, not four. */
	for (i = 0, ok = 0; i < 20; i++)
		ok += ratelimit_take(r, &si, 1300);
	assert_int_equal(ok, 3);
	/* A long pause refills to the burst, not beyond. */
	for (i = 0, ok = 0; i < 20; i++)
		ok += ratelimit_take(r, &si, 100000);
	assert_int_equal(ok, 5);
	/* A clock step back grants nothing, then or later. */
	assert_int_equal(ratelimit_take(r, &si, 50000), 0);
	assert_int_equal(ratelimit_take(r, &si, 100050), 0);
	assert_int_equal(ratelimit_take(r, &si, 100100), 1);
	ratelimit_free(&r);
	assert_null(r);
}

static void
test_unlimited(void **state)
{
	struct identity si = node("SI", "si-ncp");
	struct ratelimit *r;
	int i;

	(void)state;
	assert_non_null(r = ratelimit_new(0, 1));
	for (i = 0; i < 10000; i++)
		assert_int_equal(ratelimit_take(r, &si, 0), 1);
	ratelimit_free(&r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_burst_and_refill),
		cmocka_unit_test(test_unlimited),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
