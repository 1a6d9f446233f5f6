/*
 * audit_mark.c: the high-water mark of the segment-file store (audit.h):
 * a small file beside the segments that says how long the log is, so
 * that records cut from its end are seen as missing, not as a log that
 * was always shorter.
 *
 * The file "high-water-mark" holds two slots, at offsets 0 and 4096 (so
 * a torn sector write can only reach one of them). Each slot is 128
 * bytes:
 *     "cpx-hwm1" | u64be generation | u64be last committed seq |
 *     32 bytes its chain hash | u64be trusted checkpoint seq |
 *     32 bytes the chain hash that checkpoint signs |
 *     32 bytes SHA-256 of the 96 bytes before
 * A commit writes the next generation into the slot the current one is
 * not in (pwrite, fdatasync), after the records are durable. A crash
 * in the middle of that write leaves the other slot whole: a valid mark
 * always exists, at worst one commit behind the records (records above
 * the mark are kept: they were written, only not yet acknowledged).
 * The file itself is created once, by write-temp, fsync, rename, fsync
 * of the directory, so it is either absent or whole.
 *
 * The mark is checksummed, not signed: it stops records being removed
 * from the end unnoticed and a damaged last record being taken for a
 * torn write; someone able to rewrite the log, the chain and this file
 * is stopped by the signed checkpoints (cpx-audit verify) instead.
 * Owns nothing but its file descriptor, which struct audit keeps.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "audit.h"
#include "audit_impl.h"

#define MARK_MAGIC	"cpx-hwm1"
#define MARK_SLOT	128u
#define MARK_BODY	96u
#define MARK_STRIDE	4096u
#define MARK_TMP	AUDIT_MARK_FILE ".tmp"

static int
slot_sum(const uint8_t *body, uint8_t out[AUDIT_HASH_LEN])
{
	unsigned int	n = 0;

	return EVP_Digest(body, MARK_BODY, out, &n, EVP_sha256(), NULL) == 1 &&
	    n == AUDIT_HASH_LEN ? 0 : -1;
}

static int
encode(uint8_t p[MARK_SLOT], const struct audit_mark *m)
{
	memset(p, 0, MARK_SLOT);
	memcpy(p, MARK_MAGIC, 8);
	audit_put_be64(p + 8, m->gen);
	audit_put_be64(p + 16, m->last_seq);
	memcpy(p + 24, m->last_hash, AUDIT_HASH_LEN);
	audit_put_be64(p + 56, m->trusted_seq);
	memcpy(p + 64, m->trusted_hash, AUDIT_HASH_LEN);
	return slot_sum(p, p + MARK_BODY);
}

/* 1 if the slot is whole (magic, checksum) and *m its contents, else 0. */
static int
decode(const uint8_t p[MARK_SLOT], struct audit_mark *m)
{
	uint8_t	sum[AUDIT_HASH_LEN];

	if (memcmp(p, MARK_MAGIC, 8) != 0 || slot_sum(p, sum) == -1 ||
	    CRYPTO_memcmp(sum, p + MARK_BODY, AUDIT_HASH_LEN) != 0)
		return 0;
	m->gen = audit_get_be64(p + 8);
	m->last_seq = audit_get_be64(p + 16);
	memcpy(m->last_hash, p + 24, AUDIT_HASH_LEN);
	m->trusted_seq = audit_get_be64(p + 56);
	memcpy(m->trusted_hash, p + 64, AUDIT_HASH_LEN);
	return m->trusted_seq <= m->last_seq;
}

static int
read_at(int fd, uint8_t *buf, size_t len, uint64_t off, size_t *got)
{
	ssize_t	n;

	*got = 0;
	while (*got < len) {
		n = pread(fd, buf + *got, len - *got, (off_t)(off + *got));
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return -1;
		if (n == 0)
			break;
		*got += (size_t)n;
	}
	return 0;
}

int
audit_mark_read(int dirfd, const char *dir, struct audit_mark *m,
    int *found, char *err, size_t errlen)
{
	struct audit_mark	s[2];
	uint8_t			buf[MARK_SLOT];
	size_t			got;
	int			fd, ok[2] = { 0, 0 }, i, ret = -1;

	memset(m, 0, sizeof(*m));
	*found = 0;
	fd = openat(dirfd, AUDIT_MARK_FILE, O_RDONLY | O_CLOEXEC |
	    O_NOFOLLOW);
	if (fd == -1 && errno == ENOENT)
		return 0;
	if (fd == -1) {
		audit_seterr(err, errlen, "%s/%s: %s", dir, AUDIT_MARK_FILE,
		    strerror(errno));
		return -1;
	}
	for (i = 0; i < 2; i++) {
		if (read_at(fd, buf, sizeof(buf), (uint64_t)i * MARK_STRIDE,
		    &got) == -1) {
			audit_seterr(err, errlen, "%s/%s: read: %s", dir,
			    AUDIT_MARK_FILE, strerror(errno));
			goto done;
		}
		ok[i] = got == sizeof(buf) && decode(buf, &s[i]);
	}
	if (!ok[0] && !ok[1]) {
		audit_seterr(err, errlen, "%s/%s: the high-water mark is "
		    "damaged (neither slot passes its checksum), so the "
		    "log's length cannot be checked; restore the file from "
		    "a backup", dir, AUDIT_MARK_FILE);
		goto done;
	}
	*m = ok[0] && (!ok[1] || s[0].gen > s[1].gen) ? s[0] : s[1];
	*found = 1;
	ret = 0;
done:
	close(fd);
	return ret;
}

int
audit_mark_write(int fd, struct audit_mark *m)
{
	uint8_t	buf[MARK_SLOT];

	m->gen++;
	if (encode(buf, m) == -1) {
		errno = ENOMEM;
		return -1;
	}
	/* The slot the current generation is not in: it stays whole. */
	if (audit_pwrite_all(fd, buf, sizeof(buf),
	    (m->gen & 1) * MARK_STRIDE) == -1 || fdatasync(fd) == -1)
		return -1;
	return 0;
}

int
audit_mark_create(int dirfd, const char *dir, struct audit_mark *m,
    int *fdp, char *err, size_t errlen)
{
	uint8_t		 slot[MARK_SLOT], img[MARK_STRIDE + MARK_SLOT];
	struct audit_mark other;
	const char	*op = "create";
	int		 fd = -1;

	*fdp = -1;
	(void)unlinkat(dirfd, MARK_TMP, 0);
	fd = openat(dirfd, MARK_TMP, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC |
	    O_NOFOLLOW, 0600);
	if (fd == -1)
		goto fail;
	/* Both slots whole from the start: generations gen and gen + 1. */
	memset(img, 0, sizeof(img));
	other = *m;
	m->gen++;
	other.gen = m->gen - 1;
	op = "encode";
	errno = ENOMEM;
	if (encode(slot, &other) == -1)
		goto fail;
	memcpy(img + ((other.gen & 1) * MARK_STRIDE), slot, MARK_SLOT);
	if (encode(slot, m) == -1)
		goto fail;
	memcpy(img + ((m->gen & 1) * MARK_STRIDE), slot, MARK_SLOT);
	op = "write";
	if (audit_pwrite_all(fd, img, sizeof(img), 0) == -1)
		goto fail;
	op = "fsync";
	if (fsync(fd) == -1)
		goto fail;
	op = "rename";
	if (renameat(dirfd, MARK_TMP, dirfd, AUDIT_MARK_FILE) == -1)
		goto fail;
	op = "fsync directory";
	if (fsync(dirfd) == -1)
		goto fail;
	*fdp = fd;
	return 0;
fail:
	audit_seterr(err, errlen, "audit: %s/%s: %s: %s", dir, AUDIT_MARK_FILE,
	    op, strerror(errno));
	if (fd != -1) {
		close(fd);
		(void)unlinkat(dirfd, MARK_TMP, 0);
	}
	return -1;
}

int
audit_mark_open(int dirfd, const char *dir, int *fdp, char *err,
    size_t errlen)
{
	*fdp = openat(dirfd, AUDIT_MARK_FILE, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (*fdp == -1) {
		audit_seterr(err, errlen, "audit: %s/%s: %s", dir,
		    AUDIT_MARK_FILE, strerror(errno));
		return -1;
	}
	return 0;
}
