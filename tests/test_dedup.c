/*
 * test_dedup.c: broker/dedup.c: ids found with their sequence and hash,
 * absent ids not found, removal of a rolled-back append, and growth past
 * many table doublings without losing an entry.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "dedup.h"

static void
test_add_find_remove(void **state)
{
	uint8_t h1[DEDUP_HASH_LEN], h2[DEDUP_HASH_LEN];
	struct dedup_entry *e;
	struct dedup *d;

	(void)state;
	assert_non_null(d = dedup_new());
	dedup_hash((const uint8_t *)"one", 3, h1);
	dedup_hash((const uint8_t *)"two", 3, h2);
	assert_memory_not_equal(h1, h2, DEDUP_HASH_LEN);
	assert_null(dedup_find(d, "a"));
	assert_non_null(dedup_add(d, "a", 7, h1, 1));
	assert_non_null(dedup_add(d, "b", 8, h2, 0));
	assert_non_null(e = dedup_find(d, "a"));
	assert_int_equal(e->seq, 7);
	assert_true(e->pending);
	assert_memory_equal(e->hash, h1, DEDUP_HASH_LEN);
	assert_null(dedup_find(d, "A"));	/* ids are case-sensitive */
	assert_int_equal(dedup_count(d), 2);
	dedup_remove(d, "a");
	dedup_remove(d, "never-there");
	assert_null(dedup_find(d, "a"));
	assert_non_null(dedup_find(d, "b"));
	assert_int_equal(dedup_count(d), 1);
	dedup_free(&d);
	assert_null(d);
	dedup_free(&d);
}

static void
test_growth(void **state)
{
	uint8_t h[DEDUP_HASH_LEN];
	struct dedup_entry *e;
	struct dedup *d;
	char id[32];
	int i;

	(void)state;
	assert_non_null(d = dedup_new());
	memset(h, 0, sizeof(h));
	for (i = 0; i < 50000; i++) {
		snprintf(id, sizeof(id), "id-%d", i);
		h[0] = (uint8_t)i;
		assert_non_null(dedup_add(d, id, (uint64_t)i + 1, h, 0));
	}
	assert_int_equal(dedup_count(d), 50000);
	for (i = 0; i < 50000; i++) {
		snprintf(id, sizeof(id), "id-%d", i);
		e = dedup_find(d, id);
		assert_non_null(e);
		assert_int_equal(e->seq, (uint64_t)i + 1);
		assert_int_equal(e->hash[0], (uint8_t)i);
	}
	dedup_free(&d);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_add_find_remove),
		cmocka_unit_test(test_growth),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
