/*
 * witness_file.c: the witness's files on disk (docs/witness.md). The
 * state file holds the last checkpoint this witness accepted, replaced
 * atomically (temporary file, fsync, rename, fsync of the directory,
 * mode 0600) and refused if edited; an evidence file, written once and
 * never overwritten, holds the signed heads of an alarm. Both are lines
 * of "key value", records as hex. Owns nothing between calls.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chain.h"
#include "errfmt.h"
#include "sign.h"
#include "witness_impl.h"

void
witness_hex(const uint8_t *p, size_t n, char *out)
{
	sign_hex(p, n, out);
}

static int
unhex(const char *s, size_t slen, uint8_t *out, size_t cap, size_t *n)
{
	size_t	i;
	int	hi, lo;

	*n = 0;
	if (slen % 2 != 0 || slen / 2 > cap)
		return -1;
	for (i = 0; i < slen; i += 2) {
		hi = s[i] >= '0' && s[i] <= '9' ? s[i] - '0' :
		    s[i] >= 'a' && s[i] <= 'f' ? s[i] - 'a' + 10 : -1;
		lo = s[i + 1] >= '0' && s[i + 1] <= '9' ? s[i + 1] - '0' :
		    s[i + 1] >= 'a' && s[i + 1] <= 'f' ? s[i + 1] - 'a' + 10 :
		    -1;
		if (hi < 0 || lo < 0)
			return -1;
		out[i / 2] = (uint8_t)(hi << 4 | lo);
	}
	*n = slen / 2;
	return 0;
}

int
witness_file_read(const char *path, char *buf, size_t cap, char *err,
    size_t errlen)
{
	ssize_t	r;
	size_t	n = 0;
	int	fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1) {
		if (errno == ENOENT)
			return 1;
		return errf(err, errlen, "%s: %s", path, strerror(errno));
	}
	while (n < cap - 1 && (r = read(fd, buf + n, cap - 1 - n)) != 0) {
		if (r == -1) {
			if (errno == EINTR)
				continue;
			close(fd);
			return errf(err, errlen, "%s: read: %s", path,
			    strerror(errno));
		}
		n += (size_t)r;
	}
	close(fd);
	if (n == cap - 1)
		return errf(err, errlen, "%s: over %zu bytes: not a witness "
		    "file", path, cap - 1);
	buf[n] = '\0';
	return 0;
}

/*
 * The value of "key VALUE" in text, or NULL; *vlen its length. Keys
 * are at the start of a line.
 */
static const char *
field(const char *text, const char *key, size_t *vlen)
{
	const char	*p = text, *e;
	size_t		 kl = strlen(key);

	while (p != NULL && *p != '\0') {
		if (strncmp(p, key, kl) == 0 && p[kl] == ' ') {
			p += kl + 1;
			e = strchr(p, '\n');
			*vlen = e != NULL ? (size_t)(e - p) : strlen(p);
			return p;
		}
		if ((p = strchr(p, '\n')) != NULL)
			p++;
	}
	*vlen = 0;
	return NULL;
}

static int
field_u64(const char *text, const char *key, uint64_t *v)
{
	const char		*p;
	char			 buf[24], *end;
	size_t			 n;
	unsigned long long	 x;

	*v = 0;
	if ((p = field(text, key, &n)) == NULL || n == 0 ||
	    n >= sizeof(buf) || p[0] < '0' || p[0] > '9')
		return -1;
	memcpy(buf, p, n);
	buf[n] = '\0';
	errno = 0;
	x = strtoull(buf, &end, 10);
	if (errno != 0 || *end != '\0')
		return -1;
	*v = x;
	return 0;
}

int
witness_field_record(const char *text, const char *key, uint8_t **out,
    size_t *len)
{
	const char	*p;
	size_t		 n;

	*out = NULL;
	*len = 0;
	if ((p = field(text, key, &n)) == NULL)
		return 1;
	if ((*out = malloc(n / 2 + 1)) == NULL)
		return -1;
	if (unhex(p, n, *out, n / 2 + 1, len) == -1) {
		free(*out);
		*out = NULL;
		return -1;
	}
	return 0;
}

void
witness_state_clear(struct wstate *st)
{
	free(st->ck);
	memset(st, 0, sizeof(*st));
}

/*
 * Load the state file: 0, or 1 if it does not exist (a new witness), or
 * -1 with err[]. The checkpoint kept in it must still say what the file
 * says: an edited state file is refused, not believed.
 */
int
witness_state_read(const char *path, struct wstate *st, char *err,
    size_t errlen)
{
	Cpx__AuditRecord	*ck = NULL;
	char			*buf = NULL;
	const char		*h;
	uint64_t		 cos;
	size_t			 n;
	int			 rc = -1;

	memset(st, 0, sizeof(*st));
	if ((buf = malloc(WITNESS_FILE_MAX)) == NULL)
		return errf(err, errlen, "out of memory");
	if ((rc = witness_file_read(path, buf, WITNESS_FILE_MAX, err,
	    errlen)) != 0)
		goto done;
	rc = -1;
	if (strncmp(buf, WITNESS_STATE_MAGIC "\n",
	    sizeof(WITNESS_STATE_MAGIC)) != 0) {
		errf(err, errlen, "%s: not a witness state file (first line "
		    "is not \"%s\")", path, WITNESS_STATE_MAGIC);
		goto done;
	}
	if (field_u64(buf, "seq", &st->seq) == -1 ||
	    field_u64(buf, "record", &st->record) == -1 ||
	    field_u64(buf, "cosigned", &cos) == -1 ||
	    (h = field(buf, "hash", &n)) == NULL ||
	    unhex(h, n, st->hash, sizeof(st->hash), &n) == -1 ||
	    n != CHAIN_HASH_LEN ||
	    witness_field_record(buf, "checkpoint", &st->ck,
	    &st->cklen) != 0) {
		errf(err, errlen, "%s: malformed (seq, record, cosigned, hash "
		    "or checkpoint line missing or bad)", path);
		goto done;
	}
	st->cosigned = cos != 0;
	if ((ck = cpx__audit_record__unpack(NULL, st->cklen, st->ck)) == NULL ||
	    ck->kind != CPX__RECORD_KIND__RECORD_CHECKPOINT ||
	    ck->checkpoint_seq != st->seq || ck->seq != st->record ||
	    ck->checkpoint_hash.len != CHAIN_HASH_LEN ||
	    memcmp(ck->checkpoint_hash.data, st->hash, CHAIN_HASH_LEN) != 0) {
		errf(err, errlen, "%s: the checkpoint kept in it does not say "
		    "seq %" PRIu64 " with that hash: the file was edited or "
		    "damaged; restore it from a backup", path, st->seq);
		goto done;
	}
	st->time = ck->time;
	rc = 0;
done:
	if (ck != NULL)
		cpx__audit_record__free_unpacked(ck, NULL);
	if (rc != 0)
		witness_state_clear(st);
	free(buf);
	return rc;
}

/* fsync the directory holding path. 0 or -1 (errno). */
static int
sync_dir(const char *path)
{
	char	*copy;
	int	 fd, rc;

	if ((copy = strdup(path)) == NULL)
		return -1;
	fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	free(copy);
	if (fd == -1)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

static int
write_all(int fd, const char *p, size_t n)
{
	ssize_t	w;

	while (n > 0) {
		if ((w = write(fd, p, n)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/*
 * Write text to path, mode 0600: with replace, through a temporary file
 * renamed over it (a crash leaves the old state or the new, never a
 * torn one); else as a new file that must not exist yet. Both fsync'd,
 * with the directory. 0, or -1 with err[].
 */
static int
file_write(const char *path, const char *text, int replace, char *err,
    size_t errlen)
{
	char	tmp[4096];
	int	fd = -1;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return errf(err, errlen, "%s: path too long", path);
	if (replace)
		(void)unlink(tmp);	/* a temporary a crash left behind */
	fd = open(replace ? tmp : path, O_WRONLY | O_CREAT | O_EXCL |
	    O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd == -1)
		return errf(err, errlen, "%s: %s", replace ? tmp : path,
		    strerror(errno));
	if (write_all(fd, text, strlen(text)) == -1 || fsync(fd) == -1) {
		errf(err, errlen, "%s: write: %s", replace ? tmp : path,
		    strerror(errno));
		close(fd);
		(void)unlink(replace ? tmp : path);
		return -1;
	}
	if (close(fd) == -1 || (replace && rename(tmp, path) == -1) ||
	    sync_dir(path) == -1) {
		errf(err, errlen, "%s: %s", path, strerror(errno));
		if (replace)
			(void)unlink(tmp);
		return -1;
	}
	return 0;
}

/* A packed record as "key HEX\n" appended to buf at *used. 0 or -1. */
static int
put_hexline(char *buf, size_t cap, size_t *used, const char *key,
    const uint8_t *p, size_t n)
{
	size_t	kl = strlen(key);

	if (kl + 2 + 2 * n + 1 > cap - *used)
		return -1;
	memcpy(buf + *used, key, kl);
	buf[*used + kl] = ' ';
	witness_hex(p, n, buf + *used + kl + 1);
	*used += kl + 1 + 2 * n;
	buf[(*used)++] = '\n';
	buf[*used] = '\0';
	return 0;
}

uint8_t *
witness_pack_record(const Cpx__AuditRecord *r, size_t *len)
{
	uint8_t	*p;

	*len = cpx__audit_record__get_packed_size(r);
	if ((p = malloc(*len ? *len : 1)) != NULL)
		cpx__audit_record__pack(r, p);
	return p;
}

int
witness_state_write(const char *path, const struct wstate *st, char *err,
    size_t errlen)
{
	char	*buf;
	char	 h[2 * CHAIN_HASH_LEN + 1];
	size_t	 used;
	int	 rc = -1;

	if ((buf = malloc(WITNESS_FILE_MAX)) == NULL)
		return errf(err, errlen, "out of memory");
	witness_hex(st->hash, CHAIN_HASH_LEN, h);
	used = (size_t)snprintf(buf, WITNESS_FILE_MAX, "%s\nseq %" PRIu64
	    "\nhash %s\nrecord %" PRIu64 "\ncosigned %d\n",
	    WITNESS_STATE_MAGIC, st->seq, h, st->record, st->cosigned ? 1 : 0);
	if (put_hexline(buf, WITNESS_FILE_MAX, &used, "checkpoint", st->ck,
	    st->cklen) == -1)
		errf(err, errlen, "%s: checkpoint too large", path);
	else
		rc = file_write(path, buf, 1, err, errlen);
	free(buf);
	return rc;
}

int
witness_evidence_write(const char *path, const char *kind, const char *text,
    const uint8_t *held, size_t heldlen, const Cpx__AuditRecord *seen,
    char *err, size_t errlen)
{
	uint8_t	*packed = NULL;
	char	*buf = NULL;
	size_t	 plen = 0, used;
	int	 rc = -1;

	if ((buf = malloc(WITNESS_FILE_MAX)) == NULL ||
	    (packed = witness_pack_record(seen, &plen)) == NULL) {
		errf(err, errlen, "out of memory");
		goto done;
	}
	used = (size_t)snprintf(buf, WITNESS_FILE_MAX, "%s\nalarm %s\n"
	    "text %s\n", WITNESS_EVIDENCE_MAGIC, kind, text);
	if (used >= WITNESS_FILE_MAX ||
	    (held != NULL && put_hexline(buf, WITNESS_FILE_MAX, &used, "held",
	    held, heldlen) == -1) ||
	    put_hexline(buf, WITNESS_FILE_MAX, &used, "seen", packed,
	    plen) == -1) {
		errf(err, errlen, "too large");
		goto done;
	}
	rc = file_write(path, buf, 0, err, errlen);
done:
	free(packed);
	free(buf);
	return rc;
}
