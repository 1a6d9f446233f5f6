/*
 * console_users.h: the officers' accounts of cpx-console. One file, mode
 * 0600, one account a line:
 *
 *	NAME:$scrypt$ln=15,r=8,p=1$SALT$HASH
 *
 * NAME is 1..32 bytes of [a-z0-9._-] starting with a letter or digit;
 * SALT (16 bytes) and HASH (32 bytes) are base64. The hash is scrypt
 * (OpenSSL's EVP_KDF "SCRYPT"), memory-hard: N = 2^ln, 128 * r * N bytes
 * of memory per guess (32 MiB at the default ln=15, r=8). The file is
 * read whole on every sign-in, so `cpx-console user add` takes effect at
 * once; it is rewritten whole, atomically (temporary file, fsync, rename,
 * fsync of the directory).
 */
#ifndef CPX_CONSOLE_USERS_H
#define CPX_CONSOLE_USERS_H

#include <stddef.h>

#define USERS_MAX_NAME		32u
#define USERS_MIN_PASSWORD	10u
#define USERS_MAX_PASSWORD	256u
#define USERS_MAX_ACCOUNTS	1000u
#define USERS_MAX_FILE		(256u * 1024u)
#define USERS_MAX_LINE		200u
/* scrypt cost: N = 2^ln. 15 costs 32 MiB and ~0.1 s a guess. */
#define USERS_LN_DEFAULT	15
#define USERS_LN_MIN		10
#define USERS_LN_MAX		20

/* 1 if s is a valid account name (see above). */
int	users_name_valid(const char *s);

/*
 * Hash password into the stored form "$scrypt$ln=..,r=8,p=1$SALT$HASH"
 * with a fresh random salt and cost ln (USERS_LN_MIN..USERS_LN_MAX).
 * Returns 0 with out[] set, or -1 with err[].
 */
int	users_hash(const char *password, int ln, char *out, size_t outlen,
	    char *err, size_t errlen) __attribute__((warn_unused_result));

/*
 * Check password against a stored hash, in time that does not depend on
 * where the hashes differ. Returns 1 if it matches, 0 if not, -1 if the
 * stored form is malformed (err[]).
 */
int	users_check(const char *stored, const char *password, char *err,
	    size_t errlen) __attribute__((warn_unused_result));

/*
 * Parse len bytes of text as an accounts file named path (in errors),
 * with every check users_verify makes of a file's content: each line
 * blank, a # comment or NAME:HASH with a valid name and a well-formed
 * scrypt hash, no name twice, at most USERS_MAX_ACCOUNTS. Returns 0 with
 * *count set to the accounts, or -1 with err[] naming path and the line.
 */
int	users_parse(const char *path, const char *text, size_t len,
	    size_t *count, char *err, size_t errlen)
	    __attribute__((warn_unused_result));

/*
 * Look name up in the accounts file path and check password. A file that
 * group or others may read or write is refused, as is any malformed line
 * (named by number). An unknown name costs as much as a known one, so
 * timing does not reveal which accounts exist. Returns 1 if name exists
 * and the password matches, 0 if not (unknown name or wrong password),
 * -1 if the file cannot be used (err[]).
 */
int	users_verify(const char *path, const char *name,
	    const char *password, char *err, size_t errlen)
	    __attribute__((warn_unused_result));

/*
 * Add (or, with replace, set the password of) account name, or remove it
 * (password NULL). A missing file is created, mode 0600. Adding a name
 * that exists, or changing or removing one that does not, is refused.
 * Returns 0, or -1 with err[].
 */
int	users_update(const char *path, const char *name,
	    const char *password, int replace, int ln, char *err,
	    size_t errlen)
	    __attribute__((warn_unused_result));

#endif
