/*
 * console_users.c: the officers' accounts file of cpx-console and its
 * password hashes (scrypt through OpenSSL's EVP_KDF). Owns reading the
 * file (strictly: mode, size, every line), checking a password, and
 * rewriting the file atomically for `cpx-console user add|remove|passwd`.
 * Passwords and derived keys are wiped from memory once used.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "atomicfile.h"
#include "console_users.h"
#include "errfmt.h"

#define SALT_LEN	16
#define HASH_LEN	32
#define SALT_B64_LEN	24	/* 4 * ceil(16 / 3) */
#define HASH_B64_LEN	44	/* 4 * ceil(32 / 3) */
#define SCRYPT_R	8
#define SCRYPT_P	1
#define PREFIX		"$scrypt$ln="

/* The accounts file read whole: lines point into text. */
struct users_file {
	char	*text;
	size_t	 len;
	char	*names[USERS_MAX_ACCOUNTS];
	char	*hashes[USERS_MAX_ACCOUNTS];
	size_t	 n;
};

int
users_name_valid(const char *s)
{
	size_t i;

	if (s == NULL || s[0] == '\0' || s[0] == '.' || s[0] == '-' ||
	    strlen(s) > USERS_MAX_NAME)
		return 0;
	for (i = 0; s[i] != '\0'; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= '0' && s[i] <= '9') || s[i] == '.' ||
		    s[i] == '_' || s[i] == '-'))
			return 0;
	return 1;
}

static int
scrypt_derive(const char *password, const unsigned char *salt, int ln,
    unsigned char *out, char *err, size_t errlen)
{
	EVP_KDF *kdf = NULL;
	EVP_KDF_CTX *kctx = NULL;
	OSSL_PARAM params[7];
	uint64_t n = (uint64_t)1 << ln;
	uint64_t maxmem = 128u * SCRYPT_R * n + (1u << 20);
	uint32_t r = SCRYPT_R, p = SCRYPT_P;
	int ret = -1;

	if ((kdf = EVP_KDF_fetch(NULL, "SCRYPT", NULL)) == NULL ||
	    (kctx = EVP_KDF_CTX_new(kdf)) == NULL) {
		errf(err, errlen, "OpenSSL has no scrypt KDF");
		goto done;
	}
	params[0] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD,
	    (void *)(uintptr_t)password, strlen(password));
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT,
	    (void *)(uintptr_t)salt, SALT_LEN);
	params[2] = OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &n);
	params[3] = OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_R, &r);
	params[4] = OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_P, &p);
	params[5] = OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_MAXMEM,
	    &maxmem);
	params[6] = OSSL_PARAM_construct_end();
	if (EVP_KDF_derive(kctx, out, HASH_LEN, params) != 1) {
		errf(err, errlen, "scrypt failed (out of memory?)");
		goto done;
	}
	ret = 0;
done:
	EVP_KDF_CTX_free(kctx);
	EVP_KDF_free(kdf);
	return ret;
}

int
users_hash(const char *password, int ln, char *out, size_t outlen,
    char *err, size_t errlen)
{
	unsigned char salt[SALT_LEN], hash[HASH_LEN];
	char salt64[SALT_B64_LEN + 1], hash64[HASH_B64_LEN + 1];
	int n, ret = -1;

	if (outlen > 0)
		out[0] = '\0';
	if (ln < USERS_LN_MIN || ln > USERS_LN_MAX)
		return errf(err, errlen, "scrypt cost ln=%d outside %d..%d",
		    ln, USERS_LN_MIN, USERS_LN_MAX);
	if (RAND_bytes(salt, sizeof(salt)) != 1) {
		errf(err, errlen, "no random bytes for the salt");
		goto done;
	}
	if (scrypt_derive(password, salt, ln, hash, err, errlen) == -1)
		goto done;
	EVP_EncodeBlock((unsigned char *)salt64, salt, SALT_LEN);
	EVP_EncodeBlock((unsigned char *)hash64, hash, HASH_LEN);
	n = snprintf(out, outlen, PREFIX "%d,r=%d,p=%d$%s$%s", ln, SCRYPT_R,
	    SCRYPT_P, salt64, hash64);
	if (n < 0 || (size_t)n >= outlen) {
		errf(err, errlen, "hash buffer too small");
		if (outlen > 0)
			out[0] = '\0';
		goto done;
	}
	ret = 0;
done:
	OPENSSL_cleanse(hash, sizeof(hash));
	return ret;
}

/* Decode exactly want bytes from a base64 string of exactly b64len. */
static int
b64_exact(const char *s, size_t b64len, unsigned char *out, size_t want)
{
	unsigned char buf[64];
	int n;

	if (strlen(s) != b64len || b64len > 80)
		return -1;
	n = EVP_DecodeBlock(buf, (const unsigned char *)s, (int)b64len);
	if (n < (int)want)
		return -1;
	memcpy(out, buf, want);
	return 0;
}

/* Parse "$scrypt$ln=L,r=8,p=1$SALT$HASH". */
static int
parse_stored(const char *stored, int *ln, unsigned char *salt,
    unsigned char *hash)
{
	char salt64[SALT_B64_LEN + 1], hash64[HASH_B64_LEN + 1];
	const char *p, *q;
	int l, r, par, used = 0;

	if (strncmp(stored, PREFIX, strlen(PREFIX)) != 0)
		return -1;
	if (sscanf(stored + strlen(PREFIX), "%d,r=%d,p=%d$%n", &l, &r, &par,
	    &used) != 3 || used == 0)
		return -1;
	if (l < USERS_LN_MIN || l > USERS_LN_MAX || r != SCRYPT_R ||
	    par != SCRYPT_P)
		return -1;
	p = stored + strlen(PREFIX) + used;
	if ((q = strchr(p, '$')) == NULL || (size_t)(q - p) != SALT_B64_LEN)
		return -1;
	memcpy(salt64, p, SALT_B64_LEN);
	salt64[SALT_B64_LEN] = '\0';
	if (strlen(q + 1) != HASH_B64_LEN)
		return -1;
	memcpy(hash64, q + 1, HASH_B64_LEN + 1);
	if (b64_exact(salt64, SALT_B64_LEN, salt, SALT_LEN) == -1 ||
	    b64_exact(hash64, HASH_B64_LEN, hash, HASH_LEN) == -1)
		return -1;
	*ln = l;
	return 0;
}

int
users_check(const char *stored, const char *password, char *err,
    size_t errlen)
{
	unsigned char salt[SALT_LEN], want[HASH_LEN], got[HASH_LEN];
	int ln, ret = -1;

	if (parse_stored(stored, &ln, salt, want) == -1)
		return errf(err, errlen, "not a scrypt hash of the form "
		    "$scrypt$ln=N,r=8,p=1$SALT$HASH");
	if (scrypt_derive(password, salt, ln, got, err, errlen) == -1)
		goto done;
	ret = CRYPTO_memcmp(got, want, HASH_LEN) == 0;
done:
	OPENSSL_cleanse(got, sizeof(got));
	return ret;
}

static void
file_clear(struct users_file *uf)
{
	free(uf->text);
	memset(uf, 0, sizeof(*uf));
}

/*
 * Cut uf->text (uf->len bytes, NUL-terminated) into its accounts, in
 * place: every line is an account, blank or a # comment; each account's
 * name and whole stored hash are checked now, so a damaged line is named
 * at start-up, not at that officer's sign-in; but that of the account
 * named repair (NULL: none) is let through, so that `cpx-console user
 * passwd|remove` can mend it. Returns 0, or -1 with err[] naming path
 * and the line.
 */
static int
parse_text(const char *path, struct users_file *uf, const char *repair,
    char *err, size_t errlen)
{
	unsigned char salt[SALT_LEN], hash[HASH_LEN];
	char *line, *next, *colon;
	size_t lineno = 0, i;
	int ln;

	if (memchr(uf->text, '\0', uf->len) != NULL)
		return errf(err, errlen, "accounts file %s: contains a NUL "
		    "byte", path);
	for (line = uf->text; line != NULL && *line != '\0'; line = next) {
		lineno++;
		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		if (line[0] == '\0' || line[0] == '#')
			continue;
		if (strlen(line) > USERS_MAX_LINE ||
		    (colon = strchr(line, ':')) == NULL)
			return errf(err, errlen, "accounts file %s line %zu: "
			    "expected NAME:HASH (edit it with cpx-console "
			    "user)", path, lineno);
		*colon = '\0';
		if (!users_name_valid(line))
			return errf(err, errlen, "accounts file %s line %zu: "
			    "bad account name", path, lineno);
		if (strncmp(colon + 1, PREFIX, strlen(PREFIX)) != 0)
			return errf(err, errlen, "accounts file %s line %zu: "
			    "not a scrypt hash", path, lineno);
		/* A damaged hash: named now, for the administrator. */
		if ((repair == NULL || strcmp(line, repair) != 0) &&
		    parse_stored(colon + 1, &ln, salt, hash) == -1)
			return errf(err, errlen, "accounts file %s line %zu: "
			    "not a scrypt hash of the form "
			    "$scrypt$ln=N,r=8,p=1$SALT$HASH (damaged? set the "
			    "password again with cpx-console user passwd %s)",
			    path, lineno, line);
		for (i = 0; i < uf->n; i++)
			if (strcmp(uf->names[i], line) == 0)
				return errf(err, errlen, "accounts file %s "
				    "line %zu: account %s appears twice",
				    path, lineno, line);
		if (uf->n == USERS_MAX_ACCOUNTS)
			return errf(err, errlen, "accounts file %s: more than "
			    "%u accounts", path, USERS_MAX_ACCOUNTS);
		uf->names[uf->n] = line;
		uf->hashes[uf->n] = colon + 1;
		uf->n++;
	}
	return 0;
}

/*
 * Read and parse path. missing_ok: a file that does not exist is empty.
 * repair: as for parse_text.
 * The file holds hashes: one that others may read lets them guess
 * offline, one they may write lets them add an account.
 */
static int
file_read(const char *path, struct users_file *uf, int missing_ok,
    const char *repair, char *err, size_t errlen)
{
	struct stat st;
	size_t got = 0;
	ssize_t n;
	int fd = -1, ret = -1;

	memset(uf, 0, sizeof(*uf));
	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1) {
		if (errno == ENOENT && missing_ok) {
			if ((uf->text = calloc(1, 1)) == NULL)
				return errf(err, errlen, "out of memory");
			return 0;
		}
		return errf(err, errlen, "accounts file %s: %s", path,
		    strerror(errno));
	}
	if (fstat(fd, &st) == -1) {
		errf(err, errlen, "accounts file %s: %s", path,
		    strerror(errno));
		goto done;
	}
	if (!S_ISREG(st.st_mode)) {
		errf(err, errlen, "accounts file %s: not a regular file", path);
		goto done;
	}
	if ((st.st_mode & 077) != 0) {
		errf(err, errlen, "accounts file %s: mode %03o lets others "
		    "read or change the password hashes; chmod 600 %s", path,
		    (unsigned)(st.st_mode & 0777), path);
		goto done;
	}
	if ((size_t)st.st_size > USERS_MAX_FILE) {
		errf(err, errlen, "accounts file %s: %lld bytes, over %u", path,
		    (long long)st.st_size, USERS_MAX_FILE);
		goto done;
	}
	if ((uf->text = malloc((size_t)st.st_size + 1)) == NULL) {
		errf(err, errlen, "out of memory");
		goto done;
	}
	while (got < (size_t)st.st_size) {
		n = read(fd, uf->text + got, (size_t)st.st_size - got);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			errf(err, errlen, "accounts file %s: %s", path,
			    n == 0 ? "shorter than its size" : strerror(errno));
			goto done;
		}
		got += (size_t)n;
	}
	uf->text[got] = '\0';
	uf->len = got;
	ret = parse_text(path, uf, repair, err, errlen);
done:
	if (fd != -1)
		close(fd);
	if (ret == -1)
		file_clear(uf);
	return ret;
}

int
users_parse(const char *path, const char *text, size_t len, size_t *count,
    char *err, size_t errlen)
{
	struct users_file *uf;
	int ret = -1;

	*count = 0;
	if (len > USERS_MAX_FILE)
		return errf(err, errlen, "accounts file %s: %zu bytes, over %u",
		    path, len, USERS_MAX_FILE);
	/* struct users_file is large: on the heap, not the stack. */
	if ((uf = calloc(1, sizeof(*uf))) == NULL)
		return errf(err, errlen, "out of memory");
	if ((uf->text = malloc(len + 1)) == NULL) {
		errf(err, errlen, "out of memory");
		goto done;
	}
	memcpy(uf->text, text, len);
	uf->text[len] = '\0';
	uf->len = len;
	if ((ret = parse_text(path, uf, NULL, err, errlen)) == 0)
		*count = uf->n;
done:
	file_clear(uf);
	free(uf);
	return ret;
}

int
users_verify(const char *path, const char *name, const char *password,
    char *err, size_t errlen)
{
	/* A hash of nothing in particular, for unknown names. */
	static const char dummy[] = PREFIX "15,r=8,p=1$"
	    "AAAAAAAAAAAAAAAAAAAAAA==$"
	    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
	struct users_file uf;
	const char *stored = NULL;
	size_t i;
	int r, ret = -1;

	if (file_read(path, &uf, 0, NULL, err, errlen) == -1)
		return -1;
	for (i = 0; i < uf.n; i++)
		if (strcmp(uf.names[i], name) == 0)
			stored = uf.hashes[i];
	if (stored == NULL) {
		/* Spend the same time, then say no. */
		r = users_check(dummy, password, err, errlen);
		ret = r == -1 ? -1 : 0;
		goto done;
	}
	if ((r = users_check(stored, password, err, errlen)) == -1) {
		errf(err, errlen, "accounts file %s: the hash of %s is "
		    "malformed; set it again with cpx-console user passwd",
		    path, name);
		goto done;
	}
	ret = r;
done:
	file_clear(&uf);
	return ret;
}

int
users_update(const char *path, const char *name, const char *password,
    int replace, int ln, char *err, size_t errlen)
{
	struct users_file uf;
	char hash[200], *out = NULL;
	size_t i, cap, len = 0, found = USERS_MAX_ACCOUNTS;
	int n, ret = -1;

	hash[0] = '\0';
	if (!users_name_valid(name))
		return errf(err, errlen, "account name %s: use 1 to %u of "
		    "a-z 0-9 . _ - (not starting with . or -)", name,
		    USERS_MAX_NAME);
	if (password != NULL && (strlen(password) < USERS_MIN_PASSWORD ||
	    strlen(password) > USERS_MAX_PASSWORD))
		return errf(err, errlen, "the password must be %u to %u "
		    "characters", USERS_MIN_PASSWORD, USERS_MAX_PASSWORD);
	/* passwd and remove may mend the account's damaged hash. */
	if (file_read(path, &uf, 1, password == NULL || replace ? name : NULL,
	    err, errlen) == -1)
		return -1;
	for (i = 0; i < uf.n; i++)
		if (strcmp(uf.names[i], name) == 0)
			found = i;
	if (password != NULL && !replace && found != USERS_MAX_ACCOUNTS) {
		errf(err, errlen, "account %s exists already (passwd changes "
		    "its password)", name);
		goto done;
	}
	if ((password == NULL || replace) && found == USERS_MAX_ACCOUNTS) {
		errf(err, errlen, "no account %s in %s", name, path);
		goto done;
	}
	if (password == NULL || found == USERS_MAX_ACCOUNTS) {
		if (password != NULL && uf.n == USERS_MAX_ACCOUNTS) {
			errf(err, errlen, "%s holds %u accounts already", path,
			    USERS_MAX_ACCOUNTS);
			goto done;
		}
	}
	if (password != NULL &&
	    users_hash(password, ln, hash, sizeof(hash), err, errlen) == -1)
		goto done;
	cap = uf.n * (USERS_MAX_LINE + 2) + sizeof(hash) + USERS_MAX_NAME + 4;
	if ((out = malloc(cap)) == NULL) {
		errf(err, errlen, "out of memory");
		goto done;
	}
	for (i = 0; i < uf.n; i++) {
		if (i == found)
			continue;
		n = snprintf(out + len, cap - len, "%s:%s\n", uf.names[i],
		    uf.hashes[i]);
		if (n < 0 || (size_t)n >= cap - len) {
			errf(err, errlen, "accounts file too large");
			goto done;
		}
		len += (size_t)n;
	}
	if (password != NULL) {
		n = snprintf(out + len, cap - len, "%s:%s\n", name, hash);
		if (n < 0 || (size_t)n >= cap - len) {
			errf(err, errlen, "accounts file too large");
			goto done;
		}
		len += (size_t)n;
	}
	ret = atomicfile_replace(path, out, len, err, errlen);
done:
	free(out);
	file_clear(&uf);
	return ret;
}
