/*
 * test_dedup.c: broker/dedup.c: ids found with their sequence and hash,
 * absent ids not found, removal of a rolled-back append, and growth past
 * many table doublings without losing an entry; one id namespace per
 * origin; the keyed bucket hash (SipHash-2-4 checked against OpenSSL's,
 * a key of its own per index, ids built to collide under the old unkeyed
 * FNV hash spread out); references only within the origin.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

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
	assert_null(dedup_find(d, "SI", "a"));
	assert_non_null(dedup_add(d, "SI", "a", 7, h1, 1));
	assert_non_null(dedup_add(d, "SI", "b", 8, h2, 0));
	assert_non_null(e = dedup_find(d, "SI", "a"));
	assert_int_equal(e->seq, 7);
	assert_true(e->pending);
	assert_memory_equal(e->hash, h1, DEDUP_HASH_LEN);
	assert_null(dedup_find(d, "SI", "A"));	/* ids are case-sensitive */
	assert_int_equal(dedup_count(d), 2);
	dedup_remove(d, "SI", "a");
	dedup_remove(d, "SI", "never-there");
	assert_null(dedup_find(d, "SI", "a"));
	assert_non_null(dedup_find(d, "SI", "b"));
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
		assert_non_null(dedup_add(d, "HR", id, (uint64_t)i + 1, h,
		    0));
	}
	assert_int_equal(dedup_count(d), 50000);
	for (i = 0; i < 50000; i++) {
		snprintf(id, sizeof(id), "id-%d", i);
		e = dedup_find(d, "HR", id);
		assert_non_null(e);
		assert_int_equal(e->seq, (uint64_t)i + 1);
		assert_int_equal(e->hash[0], (uint8_t)i);
	}
	/* Keyed hashing keeps chains short on ordinary ids too. */
	assert_true(dedup_max_chain(d) <= 16);
	dedup_free(&d);
}

/*
 * The same id under two origins is two alerts: RS using SI's id first
 * neither blocks SI nor shares its entry, and removing one leaves the
 * other.
 */
static void
test_per_origin(void **state)
{
	uint8_t h1[DEDUP_HASH_LEN], h2[DEDUP_HASH_LEN];
	struct dedup_entry *e;
	struct dedup *d;

	(void)state;
	assert_non_null(d = dedup_new());
	dedup_hash((const uint8_t *)"rs", 2, h1);
	dedup_hash((const uint8_t *)"si", 2, h2);
	assert_non_null(dedup_add(d, "RS", "SI-2026-0001", 1, h1, 0));
	assert_null(dedup_find(d, "SI", "SI-2026-0001"));
	assert_non_null(dedup_add(d, "SI", "SI-2026-0001", 2, h2, 0));
	assert_int_equal(dedup_count(d), 2);
	assert_non_null(e = dedup_find(d, "RS", "SI-2026-0001"));
	assert_int_equal(e->seq, 1);
	assert_memory_equal(e->hash, h1, DEDUP_HASH_LEN);
	assert_non_null(e = dedup_find(d, "SI", "SI-2026-0001"));
	assert_int_equal(e->seq, 2);
	/* The separator keeps ("S", "Ix") and ("SI", "x") apart. */
	assert_null(dedup_find(d, "S", "ISI-2026-0001"));
	dedup_remove(d, "RS", "SI-2026-0001");
	assert_null(dedup_find(d, "RS", "SI-2026-0001"));
	assert_non_null(dedup_find(d, "SI", "SI-2026-0001"));
	dedup_free(&d);
}

/* SipHash-2-4 as OpenSSL computes it (EVP_MAC "SIPHASH", 8 bytes). */
static uint64_t
openssl_siphash(const uint8_t key[DEDUP_KEY_LEN], const uint8_t *p,
    size_t len)
{
	OSSL_PARAM params[2];
	EVP_MAC_CTX *ctx;
	EVP_MAC *mac;
	unsigned int size = 8;
	uint8_t out[8];
	size_t outlen = 0;
	uint64_t v = 0;
	int i;

	params[0] = OSSL_PARAM_construct_uint(OSSL_MAC_PARAM_SIZE, &size);
	params[1] = OSSL_PARAM_construct_end();
	assert_non_null(mac = EVP_MAC_fetch(NULL, "SIPHASH", NULL));
	assert_non_null(ctx = EVP_MAC_CTX_new(mac));
	assert_int_equal(EVP_MAC_init(ctx, key, DEDUP_KEY_LEN, params), 1);
	assert_int_equal(EVP_MAC_update(ctx, p, len), 1);
	assert_int_equal(EVP_MAC_final(ctx, out, &outlen, sizeof(out)), 1);
	assert_int_equal(outlen, 8);
	EVP_MAC_CTX_free(ctx);
	EVP_MAC_free(mac);
	for (i = 7; i >= 0; i--)
		v = (v << 8) | out[i];
	return v;
}

static void
test_siphash(void **state)
{
	uint8_t key[DEDUP_KEY_LEN], msg[64];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(key); i++)
		key[i] = (uint8_t)i;
	for (i = 0; i < sizeof(msg); i++)
		msg[i] = (uint8_t)i;
	/* The vectors of the SipHash paper (appendix A) and its reference. */
	assert_true(dedup_siphash(key, msg, 0) == 0x726fdb47dd0e0e31ull);
	assert_true(dedup_siphash(key, msg, 15) == 0xa129ca6149be45e5ull);
	/* Every length across the 8-byte word boundaries. */
	for (i = 0; i <= sizeof(msg); i++)
		assert_true(dedup_siphash(key, msg, i) ==
		    openssl_siphash(key, msg, i));
	key[3] ^= 1;
	assert_true(dedup_siphash(key, msg, 15) != 0xa129ca6149be45e5ull);
}

static uint64_t
fnv1a(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	while (*s != '\0')
		h = (h ^ (uint8_t)*s++) * 1099511628211ull;
	return h;
}

#define FLOOD_IDS	600
#define FLOOD_BITS	12	/* ids agree on this many low FNV bits */

/*
 * Ids a publisher would choose to flood the old table: all equal in the
 * low FLOOD_BITS bits of FNV-1a, so with fewer than 2^FLOOD_BITS buckets
 * every one of them lands in the same chain there. Under a keyed hash
 * they must spread like any other ids, in two indexes with two keys.
 */
static void
test_flooding(void **state)
{
	static char ids[FLOOD_IDS][24];
	uint8_t h[DEDUP_HASH_LEN];
	struct dedup *d1, *d2;
	uint64_t target = 0;
	size_t n = 0, i;
	unsigned long k;
	char id[24];

	(void)state;
	for (k = 0; n < FLOOD_IDS; k++) {
		snprintf(id, sizeof(id), "flood-%lu", k);
		if (n == 0)
			target = fnv1a(id) & ((1u << FLOOD_BITS) - 1);
		if ((fnv1a(id) & ((1u << FLOOD_BITS) - 1)) == target)
			memcpy(ids[n++], id, sizeof(id));
	}
	assert_non_null(d1 = dedup_new());
	assert_non_null(d2 = dedup_new());
	memset(h, 0, sizeof(h));
	for (i = 0; i < FLOOD_IDS; i++) {
		assert_non_null(dedup_add(d1, "SI", ids[i], i + 1, h, 0));
		assert_non_null(dedup_add(d2, "SI", ids[i], i + 1, h, 0));
	}
	/* 600 ids in 1024 buckets: a fair chain is a handful long. */
	assert_true(dedup_max_chain(d1) <= 12);
	assert_true(dedup_max_chain(d2) <= 12);
	for (i = 0; i < FLOOD_IDS; i++) {
		assert_non_null(dedup_find(d1, "SI", ids[i]));
		assert_int_equal(dedup_find(d2, "SI", ids[i])->seq, i + 1);
	}
	dedup_free(&d1);
	dedup_free(&d2);
}

/* Each index draws its own key: the same ids hash differently. */
static void
test_keys_differ(void **state)
{
	uint8_t h[DEDUP_HASH_LEN];
	struct dedup *d1, *d2;
	char id[32];
	int i, same = 0;

	(void)state;
	memset(h, 0, sizeof(h));
	assert_non_null(d1 = dedup_new());
	assert_non_null(d2 = dedup_new());
	/*
	 * Both have 1024 buckets: with independent keys an id falls in the
	 * same bucket of both by chance only (1 in 1024); with one fixed
	 * hash, every id would.
	 */
	for (i = 0; i < 64; i++) {
		snprintf(id, sizeof(id), "SI-2026-%04d", i);
		assert_non_null(dedup_add(d1, "SI", id, 1, h, 0));
		assert_non_null(dedup_add(d2, "SI", id, 1, h, 0));
		if (dedup_bucket(d1, "SI", id) == dedup_bucket(d2, "SI", id))
			same++;
		assert_non_null(dedup_find(d1, "SI", id));
		assert_non_null(dedup_find(d2, "SI", id));
	}
	assert_true(same < 8);
	dedup_free(&d1);
	dedup_free(&d2);
}

static void
add_alert(struct dedup *d, const char *origin, const char *id)
{
	uint8_t h[DEDUP_HASH_LEN];

	memset(h, 0, sizeof(h));
	assert_non_null(dedup_add(d, origin, id, 1, h, 0));
}

/*
 * An update or withdrawal names an alert of its own origin that this
 * broker accepted; another origin's id is treated as unknown, with the
 * same answer, so references cannot probe other countries' ids.
 */
static void
test_reference(void **state)
{
	Cpx__Alert a = CPX__ALERT__INIT;
	Cpx__Reference r = CPX__REFERENCE__INIT;
	char why[256], why2[256];
	struct dedup *d;
	int reason;

	(void)state;
	assert_non_null(d = dedup_new());
	add_alert(d, "SI", "si-1");
	add_alert(d, "RS", "rs-1");
	a.id = "new-1";
	a.origin = "SI";
	assert_int_equal(dedup_check_reference(d, &a, &reason, why,
	    sizeof(why)), 0);			/* no reference */
	a.reference = &r;
	r.kind = CPX__REFERENCE_KIND__REFERENCE_UPDATES;
	r.alert_id = "si-1";
	assert_int_equal(dedup_check_reference(d, &a, &reason, why,
	    sizeof(why)), 0);
	r.kind = CPX__REFERENCE_KIND__REFERENCE_WITHDRAWS;
	assert_int_equal(dedup_check_reference(d, &a, &reason, why,
	    sizeof(why)), 0);
	/* RS's alert: refused, and told apart from nothing. */
	r.alert_id = "rs-1";
	assert_int_equal(dedup_check_reference(d, &a, &reason, why,
	    sizeof(why)), -1);
	assert_int_equal(reason, CPX__REASON__REASON_INVALID_ALERT);
	assert_non_null(strstr(why, "rs-1"));
	assert_null(strstr(why, "RS"));
	r.alert_id = "rs-2";
	assert_int_equal(dedup_check_reference(d, &a, &reason, why2,
	    sizeof(why2)), -1);
	assert_int_equal(reason, CPX__REASON__REASON_INVALID_ALERT);
	/* Same text but for the id: no oracle. */
	why2[strstr(why2, "rs-2") - why2 + 3] = '1';
	assert_string_equal(why, why2);
	/* RS itself may reference it. */
	a.origin = "RS";
	r.alert_id = "rs-1";
	assert_int_equal(dedup_check_reference(d, &a, &reason, why,
	    sizeof(why)), 0);
	dedup_free(&d);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_add_find_remove),
		cmocka_unit_test(test_growth),
		cmocka_unit_test(test_per_origin),
		cmocka_unit_test(test_siphash),
		cmocka_unit_test(test_flooding),
		cmocka_unit_test(test_keys_differ),
		cmocka_unit_test(test_reference),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
