/*
 * test_console_auth.c: the officers' accounts file of cpx-console and
 * its scrypt hashes (console/console_users.c), and the sessions, CSRF
 * tokens and lock-out (console/console_auth.c). Real files in a mkdtemp
 * directory, real OpenSSL scrypt (at the lowest cost the file allows, so
 * the test stays fast); the clock is passed in, so idle logout and
 * lock-out expiry are tested without sleeping.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "console_auth.h"
#include "console_users.h"
#include "testutil.h"

#define LN	USERS_LN_MIN

struct fx {
	char	dir[128];
	char	path[256];
};

static int
setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));

	if (fx == NULL)
		return -1;
	snprintf(fx->dir, sizeof(fx->dir), "/tmp/cpx-test-console-XXXXXX");
	if (mkdtemp(fx->dir) == NULL)
		return -1;
	snprintf(fx->path, sizeof(fx->path), "%s/users", fx->dir);
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *fx = *state;
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx->dir);
	if (system(cmd) != 0)
		return -1;
	free(fx);
	return 0;
}

static void
write_file(const char *path, const char *text, mode_t mode)
{
	int fd;

	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, mode);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	assert_int_equal(fchmod(fd, mode), 0);
	assert_int_equal(close(fd), 0);
}

static void
test_hash_roundtrip(void **state)
{
	char h1[200], h2[200], err[200];

	(void)state;
	assert_int_equal(users_hash("correct horse", LN, h1, sizeof(h1), err,
	    sizeof(err)), 0);
	assert_int_equal(users_hash("correct horse", LN, h2, sizeof(h2), err,
	    sizeof(err)), 0);
	assert_true(strncmp(h1, "$scrypt$ln=10,r=8,p=1$", 22) == 0);
	/* A fresh salt each time: the same password, two hashes. */
	assert_string_not_equal(h1, h2);
	assert_int_equal(users_check(h1, "correct horse", err, sizeof(err)), 1);
	assert_int_equal(users_check(h2, "correct horse", err, sizeof(err)), 1);
	assert_int_equal(users_check(h1, "correct horsE", err, sizeof(err)), 0);
	assert_int_equal(users_check(h1, "", err, sizeof(err)), 0);
	/* Cost outside the bounds the file accepts. */
	assert_int_equal(users_hash("x", 9, h2, sizeof(h2), err, sizeof(err)),
	    -1);
	assert_int_equal(users_hash("x", 21, h2, sizeof(h2), err,
	    sizeof(err)), -1);
	/* A buffer too small is an error, not a truncated hash. */
	assert_int_equal(users_hash("x", LN, h2, 40, err, sizeof(err)), -1);
	assert_string_equal(h2, "");
}

static void
test_hash_malformed(void **state)
{
	static const char *const bad[] = {
		"",
		"plain",
		"$scrypt$ln=10,r=8,p=1$",
		"$scrypt$ln=10,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA==",
		"$scrypt$ln=10,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA==$AAAA",
		/* cost over the bound: would cost 128 GiB to check */
		"$scrypt$ln=30,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA==$"
		    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
		"$scrypt$ln=10,r=1,p=1$AAAAAAAAAAAAAAAAAAAAAA==$"
		    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
		"$scrypt$ln=10,r=8,p=1$!!!!!!!!!!!!!!!!!!!!!!==$"
		    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
	};
	char err[200], good[200];
	size_t i, n;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(users_check(bad[i], "pw", err, sizeof(err)),
		    -1);
	/* Every prefix of a good hash is malformed: cut at each length. */
	assert_int_equal(users_hash("pw-long-enough", LN, good, sizeof(good),
	    err, sizeof(err)), 0);
	n = strlen(good);
	for (i = 0; i < n; i++) {
		char cut[200];

		memcpy(cut, good, i);
		cut[i] = '\0';
		assert_int_equal(users_check(cut, "pw-long-enough", err,
		    sizeof(err)), -1);
	}
}

static void
test_names(void **state)
{
	(void)state;
	assert_true(users_name_valid("anna.kovac"));
	assert_true(users_name_valid("a"));
	assert_true(users_name_valid("officer_7-b"));
	assert_false(users_name_valid(""));
	assert_false(users_name_valid(NULL));
	assert_false(users_name_valid("Anna"));
	assert_false(users_name_valid(".hidden"));
	assert_false(users_name_valid("-opt"));
	assert_false(users_name_valid("a:b"));
	assert_false(users_name_valid("a b"));
	assert_false(users_name_valid("abcdefghijabcdefghijabcdefghijabc"));
}

static void
test_file_lifecycle(void **state)
{
	struct fx *fx = *state;
	struct stat st;
	char err[300];

	/* add creates the file, mode 0600 */
	assert_int_equal(users_update(fx->path, "anna", "first-password", 0,
	    LN, err, sizeof(err)), 0);
	assert_int_equal(stat(fx->path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(users_update(fx->path, "marko", "second-password", 0,
	    LN, err, sizeof(err)), 0);
	assert_int_equal(users_verify(fx->path, "anna", "first-password", err,
	    sizeof(err)), 1);
	assert_int_equal(users_verify(fx->path, "marko", "second-password",
	    err, sizeof(err)), 1);
	assert_int_equal(users_verify(fx->path, "anna", "second-password",
	    err, sizeof(err)), 0);
	assert_int_equal(users_verify(fx->path, "nobody", "first-password",
	    err, sizeof(err)), 0);
	/* add of an existing name is refused; passwd changes it */
	assert_int_equal(users_update(fx->path, "anna", "another-password", 0,
	    LN, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "exists already"));
	assert_int_equal(users_update(fx->path, "anna", "another-password", 1,
	    LN, err, sizeof(err)), 0);
	assert_int_equal(users_verify(fx->path, "anna", "first-password", err,
	    sizeof(err)), 0);
	assert_int_equal(users_verify(fx->path, "anna", "another-password",
	    err, sizeof(err)), 1);
	/* passwd or remove of an unknown name is refused */
	assert_int_equal(users_update(fx->path, "zoe", "some-password-1", 1,
	    LN, err, sizeof(err)), -1);
	assert_int_equal(users_update(fx->path, "zoe", NULL, 0, LN, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "no account zoe"));
	/* remove */
	assert_int_equal(users_update(fx->path, "anna", NULL, 0, LN, err,
	    sizeof(err)), 0);
	assert_int_equal(users_verify(fx->path, "anna", "another-password",
	    err, sizeof(err)), 0);
	assert_int_equal(users_verify(fx->path, "marko", "second-password",
	    err, sizeof(err)), 1);
	/* still 0600 after rewriting */
	assert_int_equal(stat(fx->path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	/* bad input to update */
	assert_int_equal(users_update(fx->path, "Bad Name", "some-password-1",
	    0, LN, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "account name"));
	assert_int_equal(users_update(fx->path, "short", "too-short", 0, LN,
	    err, sizeof(err)), -1);
	assert_non_null(strstr(err, "password must be"));
}

static void
test_file_refused(void **state)
{
	struct fx *fx = *state;
	char err[300], hash[200], text[600];
	size_t count;

	assert_int_equal(users_hash("the-password", LN, hash, sizeof(hash),
	    err, sizeof(err)), 0);
	snprintf(text, sizeof(text), "# officers\nanna:%s\n", hash);
	write_file(fx->path, text, 0600);
	assert_int_equal(users_verify(fx->path, "anna", "the-password", err,
	    sizeof(err)), 1);

	/* readable by others: refused, and the message says what to do */
	write_file(fx->path, text, 0644);
	assert_int_equal(users_verify(fx->path, "anna", "the-password", err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "chmod 600"));
	/* and no update goes through such a file either */
	assert_int_equal(users_update(fx->path, "bob", "bob-password-1", 0,
	    LN, err, sizeof(err)), -1);

	/* a line without a colon, named by number */
	snprintf(text, sizeof(text), "anna:%s\ngarbage\n", hash);
	write_file(fx->path, text, 0600);
	assert_int_equal(users_verify(fx->path, "anna", "the-password", err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "line 2"));
	/* a duplicate account */
	snprintf(text, sizeof(text), "anna:%s\nanna:%s\n", hash, hash);
	write_file(fx->path, text, 0600);
	assert_int_equal(users_verify(fx->path, "anna", "the-password", err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "twice"));
	/* a hash of another kind */
	write_file(fx->path, "anna:$2y$10$abcdefghijklmnopqrstuv\n", 0600);
	assert_int_equal(users_verify(fx->path, "anna", "the-password", err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "not a scrypt hash"));
	/*
	 * A damaged hash (cut short) is named with its line when the file
	 * is read, not at that officer's sign-in; passwd mends it.
	 */
	snprintf(text, sizeof(text), "anna:%s\nbob:%.*s\n", hash,
	    (int)strlen(hash) - 3, hash);
	write_file(fx->path, text, 0600);
	assert_int_equal(users_verify(fx->path, "anna", "the-password", err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "line 2: not a scrypt hash of the form"));
	assert_non_null(strstr(err, "user passwd bob"));
	assert_int_equal(users_update(fx->path, "bob", "bob-password-1", 1,
	    LN, err, sizeof(err)), 0);
	assert_int_equal(users_verify(fx->path, "bob", "bob-password-1", err,
	    sizeof(err)), 1);
	/* the same checks on text in memory (the fuzz target's way in) */
	snprintf(text, sizeof(text), "# officers\n\nanna:%s\n", hash);
	assert_int_equal(users_parse("mem", text, strlen(text), &count, err,
	    sizeof(err)), 0);
	assert_int_equal(count, 1);
	assert_int_equal(users_parse("mem", "anna:$scrypt$ln=10\n", 19,
	    &count, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "mem line 1"));
	assert_int_equal(count, 0);
	assert_int_equal(users_parse("mem", "a\0b", 3, &count, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "NUL"));
	/* a missing file, for the server (the user command creates it) */
	unlink(fx->path);
	assert_int_equal(users_verify(fx->path, "anna", "the-password", err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, fx->path));
}

static void
test_file_oversize(void **state)
{
	struct fx *fx = *state;
	char err[300], *big;
	size_t n = USERS_MAX_FILE + 1;

	big = malloc(n + 1);
	assert_non_null(big);
	memset(big, '#', n);
	big[n] = '\0';
	write_file(fx->path, big, 0600);
	free(big);
	assert_int_equal(users_verify(fx->path, "anna", "pw", err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "bytes, over"));
}

static void
test_lockout(void **state)
{
	struct auth a;
	int64_t left, now = 1000000;
	int i;

	(void)state;
	assert_int_equal(auth_init(&a, 60000, 3, 300000), 0);
	assert_int_equal(auth_locked(&a, "anna", now, &left), 0);
	assert_int_equal(auth_failed(&a, "anna", now), 0);
	assert_int_equal(auth_failed(&a, "anna", now + 1), 0);
	assert_int_equal(auth_locked(&a, "anna", now + 2, &left), 0);
	/* the third failure locks */
	assert_int_equal(auth_failed(&a, "anna", now + 2), 1);
	assert_int_equal(auth_locked(&a, "anna", now + 3, &left), -1);
	assert_true(left > 299000 && left <= 300000);
	/* others are not affected */
	assert_int_equal(auth_locked(&a, "marko", now + 3, &left), 0);
	/* a flood of other names does not push the locked one out */
	for (i = 0; i < 3 * AUTH_MAX_FAILS; i++) {
		char name[32];

		snprintf(name, sizeof(name), "guess%d", i);
		(void)auth_failed(&a, name, now + 10 + i);
	}
	assert_int_equal(auth_locked(&a, "anna", now + 5000, &left), -1);
	/* the lock runs out; counting starts afresh */
	assert_int_equal(auth_locked(&a, "anna", now + 300003, &left), 0);
	assert_int_equal(auth_failed(&a, "anna", now + 300004), 0);
	assert_int_equal(auth_locked(&a, "anna", now + 300005, &left), 0);
	/* a success clears the count */
	assert_int_equal(auth_failed(&a, "anna", now + 300006), 0);
	auth_succeeded(&a, "anna");
	assert_int_equal(auth_failed(&a, "anna", now + 300007), 0);
	assert_int_equal(auth_failed(&a, "anna", now + 300008), 0);
	assert_int_equal(auth_locked(&a, "anna", now + 300009, &left), 0);
	auth_destroy(&a);
}

static void
test_sessions(void **state)
{
	struct auth a;
	char tok[AUTH_TOKEN_LEN + 1], csrf[AUTH_TOKEN_LEN + 1];
	char tok2[AUTH_TOKEN_LEN + 1], csrf2[AUTH_TOKEN_LEN + 1];
	char name[USERS_MAX_NAME + 1], c[AUTH_TOKEN_LEN + 1], bad[80];
	int64_t now = 5000000;

	(void)state;
	assert_int_equal(auth_init(&a, 60000, 5, 300000), 0);
	assert_int_equal(auth_session_new(&a, "anna", now, tok, csrf), 0);
	assert_int_equal(strlen(tok), AUTH_TOKEN_LEN);
	assert_string_not_equal(tok, csrf);
	assert_int_equal(auth_session_find(&a, tok, now + 1000, name, c), 0);
	assert_string_equal(name, "anna");
	assert_string_equal(c, csrf);
	assert_true(auth_csrf_ok(c, csrf));
	assert_false(auth_csrf_ok(c, tok));
	assert_false(auth_csrf_ok(c, NULL));
	assert_false(auth_csrf_ok(c, ""));
	/* one character off is not a session */
	snprintf(bad, sizeof(bad), "%s", tok);
	bad[5] = bad[5] == 'a' ? 'b' : 'a';
	assert_int_equal(auth_session_find(&a, bad, now + 1000, name, c), -1);
	assert_string_equal(name, "");
	assert_int_equal(auth_session_find(&a, "", now, name, c), -1);
	assert_int_equal(auth_session_find(&a, NULL, now, name, c), -1);
	/* activity keeps it alive: 50 s steps within a 60 s idle limit */
	assert_int_equal(auth_session_find(&a, tok, now + 51000, name, c), 0);
	assert_int_equal(auth_session_find(&a, tok, now + 101000, name, c), 0);
	/* the live feed's check does not count as activity */
	assert_int_equal(auth_session_alive(&a, tok, now + 150000), 1);
	assert_int_equal(auth_session_alive(&a, tok, now + 161001), 0);
	assert_int_equal(auth_session_alive(&a, bad, now + 101001), 0);
	/* idle too long: ended, and stays ended */
	assert_int_equal(auth_session_find(&a, tok, now + 161001, name, c),
	    -1);
	assert_int_equal(auth_session_find(&a, tok, now + 161002, name, c),
	    -1);
	/* sign-out ends it at once */
	assert_int_equal(auth_session_new(&a, "marko", now, tok2, csrf2), 0);
	assert_int_equal(auth_session_find(&a, tok2, now + 1, name, c), 0);
	auth_session_end(&a, tok2);
	assert_int_equal(auth_session_find(&a, tok2, now + 2, name, c), -1);
	auth_destroy(&a);
}

static void
test_sessions_bounded(void **state)
{
	struct auth a;
	char first[AUTH_TOKEN_LEN + 1], tok[AUTH_TOKEN_LEN + 1];
	char csrf[AUTH_TOKEN_LEN + 1], name[USERS_MAX_NAME + 1];
	char c[AUTH_TOKEN_LEN + 1];
	int64_t now = 1000;
	int i;

	(void)state;
	/* idle 1 day; the absolute age limit still applies */
	assert_int_equal(auth_init(&a, 86400000, 5, 300000), 0);
	assert_int_equal(auth_session_new(&a, "first", now, first, csrf), 0);
	for (i = 1; i < AUTH_MAX_SESSIONS; i++)
		assert_int_equal(auth_session_new(&a, "other", now + i, tok,
		    csrf), 0);
	assert_int_equal(auth_session_find(&a, first, now + 100, name, c), 0);
	/* The table is full: the least recently used goes, not "first". */
	assert_int_equal(auth_session_new(&a, "late", now + 200, tok, csrf),
	    0);
	assert_int_equal(auth_session_find(&a, first, now + 201, name, c), 0);
	assert_int_equal(auth_session_find(&a, tok, now + 202, name, c), 0);
	assert_string_equal(name, "late");
	/* Past AUTH_MAX_AGE_MS even an active session ends. */
	for (i = 1; i <= 12; i++)
		assert_int_equal(auth_session_find(&a, first, now +
		    i * 3600000LL - 1000, name, c), 0);
	assert_int_equal(auth_session_find(&a, first, now + AUTH_MAX_AGE_MS +
	    1, name, c), -1);
	auth_destroy(&a);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hash_roundtrip),
		cmocka_unit_test(test_hash_malformed),
		cmocka_unit_test(test_names),
		cmocka_unit_test_setup_teardown(test_file_lifecycle, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_file_refused, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_file_oversize, setup,
		    teardown),
		cmocka_unit_test(test_lockout),
		cmocka_unit_test(test_sessions),
		cmocka_unit_test(test_sessions_bounded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
