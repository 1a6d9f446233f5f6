/*
 * audit_segment.c: the segment files of the segment-file store (audit.h)
 * and their recovery when the store is opened.
 *
 * Segments are named by their first record ("seg-<20 digits>.log"), so
 * the directory listing alone says where each starts and a missing one
 * shows as a gap in the numbering. Recovery (audit_recover) reads every
 * record once through the one parser (audit_frame.c): it checks the whole
 * chain, cuts a torn tail from the last segment, refuses a log damaged
 * anywhere else, and builds the in-memory index (audit_index.c) on the
 * way. Fills the struct audit it is given: its segment list, tail file
 * and durable state.
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/x509.h>

#include "audit.h"
#include "audit_impl.h"
#include "cpx_limits.h"
#include "log.h"
#include "sign.h"
#include "wire.h"

#define REFUSE_TEXT	"; refusing to start: the log was altered or " \
			"damaged (run cpx-audit verify)"

void
audit_seg_name(char name[SEG_NAME_LEN], uint64_t first)
{
	snprintf(name, SEG_NAME_LEN, "seg-%020" PRIu64 ".log", first);
}

static int
cmp_u64(const void *x, const void *y)
{
	uint64_t	a = *(const uint64_t *)x, b = *(const uint64_t *)y;

	return a < b ? -1 : a > b;
}

/* 1 and *first if name is exactly "seg-<20 digits>.log", else 0. */
static int
parse_seg_name(const char *name, uint64_t *first)
{
	char		canon[SEG_NAME_LEN];
	uint64_t	v = 0;
	size_t		i;

	if (strlen(name) != 28 || strncmp(name, "seg-", 4) != 0 ||
	    strcmp(name + 24, ".log") != 0)
		return 0;
	for (i = 4; i < 24; i++) {
		if (name[i] < '0' || name[i] > '9')
			return 0;
		if (v > (UINT64_MAX - (uint64_t)(name[i] - '0')) / 10)
			return 0;
		v = v * 10 + (uint64_t)(name[i] - '0');
	}
	audit_seg_name(canon, v);
	if (v == 0 || strcmp(canon, name) != 0)
		return 0;
	*first = v;
	return 1;
}

int
audit_list_segments(int dirfd, const char *dir, uint64_t **out, size_t *n,
    char *err, size_t errlen)
{
	DIR		*d = NULL;
	struct dirent	*de;
	uint64_t	*v = NULL, *nv, first;
	size_t		 cnt = 0, cap = 0;
	int		 fd, ret = -1;

	*out = NULL;
	*n = 0;
	if ((fd = dup(dirfd)) == -1 || (d = fdopendir(fd)) == NULL) {
		audit_seterr(err, errlen, "audit: %s: %s", dir, strerror(errno));
		if (fd != -1)
			close(fd);
		goto done;
	}
	rewinddir(d);
	while ((errno = 0, de = readdir(d)) != NULL) {
		if (!parse_seg_name(de->d_name, &first)) {
			if (strncmp(de->d_name, "seg-", 4) == 0)
				log_warnx("audit: %s/%s: not a segment name, "
				    "ignored", dir, de->d_name);
			continue;
		}
		if (cnt == cap) {
			cap = cap ? cap * 2 : 16;
			if ((nv = reallocarray(v, cap, sizeof(*v))) == NULL) {
				audit_seterr(err, errlen, "audit: out of memory");
				goto done;
			}
			v = nv;
		}
		v[cnt++] = first;
	}
	if (errno != 0) {
		audit_seterr(err, errlen, "audit: %s: readdir: %s", dir,
		    strerror(errno));
		goto done;
	}
	if (cnt > 0)
		qsort(v, cnt, sizeof(*v), cmp_u64);
	*out = v;
	*n = cnt;
	v = NULL;
	ret = 0;
done:
	if (d != NULL)
		closedir(d);
	free(v);
	return ret;
}

/* Room for n more segments, so that recording them cannot fail later. */
int
audit_segs_reserve(struct audit *a, size_t n)
{
	struct seg	*ns;
	size_t		 cap;

	if (a->segcap - a->nsegs >= n)
		return 0;
	cap = a->segcap ? a->segcap : 16;
	while (cap - a->nsegs < n)
		cap *= 2;
	if ((ns = reallocarray(a->segs, cap, sizeof(*ns))) == NULL)
		return -1;
	a->segs = ns;
	a->segcap = cap;
	return 0;
}

int
audit_segs_add(struct audit *a, uint64_t first,
    const uint8_t prev[AUDIT_HASH_LEN])
{
	if (audit_segs_reserve(a, 1) == -1)
		return -1;
	a->segs[a->nsegs].first = first;
	memcpy(a->segs[a->nsegs].prev, prev, AUDIT_HASH_LEN);
	a->nsegs++;
	return 0;
}

/* Recovery reads every record once: index and check them on the way. */
struct ixscan {
	struct audit		*a;
	const struct audit_rd	*r;
	uint64_t		 seg;
};

/*
 * A checkpoint above the trusted point: signed, by this broker's key
 * (when the store has a certificate), over the chain as it is. The
 * signature check is what stops a log re-chained by someone without
 * the key; a checkpoint the store wrote itself or checked at an earlier
 * open (at or below the mark's trusted point) is not checked again, so
 * opening costs one signature check per checkpoint written since.
 */
static int
check_checkpoint_sig(struct audit *a, const Cpx__AuditRecord *rec,
    const uint8_t *prev, char *why, size_t whylen)
{
	X509		*x = NULL;
	EVP_PKEY	*pk;
	char		 cn[80] = "?", pcn[80];
	int		 ret = -1;

	if (audit_checkpoint_verify(rec, prev, &x, why, whylen) == -1)
		goto done;
	if (a->own_pub != NULL && ((pk = X509_get0_pubkey(x)) == NULL ||
	    EVP_PKEY_eq(pk, a->own_pub) != 1)) {
		if (X509_NAME_get_text_by_NID(X509_get_subject_name(x),
		    NID_commonName, cn, sizeof(cn)) <= 0)
			snprintf(cn, sizeof(cn), "?");
		audit_seterr(why, whylen, "checkpoint signed by CN=%s, not "
		    "with this broker's key (config keys cert and key): "
		    "someone else wrote or re-signed this part of the log",
		    wire_printable(cn, pcn, sizeof(pcn)));
		goto done;
	}
	a->ckpt_checked++;
	ret = 0;
done:
	ERR_clear_error();
	X509_free(x);
	return ret;
}

/*
 * What opening checks of each record besides the chain: every
 * checkpoint covers the record before it with the chain hash as it is
 * now (free: the hash is at hand), the mark's trusted checkpoint is
 * where the mark says, and checkpoints above it are signed by this
 * broker. A record altered and the chain recomputed after it fails at
 * the first checkpoint after the change.
 */
static int
check_record(struct audit *a, const Cpx__AuditRecord *rec,
    const uint8_t *prev, char *why, size_t whylen)
{
	const struct audit_mark	*m = &a->mark;

	if (rec->kind == CPX__RECORD_KIND__RECORD_CHECKPOINT &&
	    (rec->checkpoint_seq != rec->seq - 1 ||
	    rec->checkpoint_hash.len != AUDIT_HASH_LEN ||
	    CRYPTO_memcmp(rec->checkpoint_hash.data, prev,
	    AUDIT_HASH_LEN) != 0)) {
		/* The one before (if any) matched: the edit is in between. */
		audit_seterr(why, whylen, "checkpoint does not match the chain "
		    "before it: a record from %" PRIu64 " to %" PRIu64 " was "
		    "altered and the chain recomputed", a->last_ckpt + 1,
		    rec->seq - 1);
		return -1;
	}
	if (rec->seq == m->trusted_seq &&
	    (rec->kind != CPX__RECORD_KIND__RECORD_CHECKPOINT ||
	    CRYPTO_memcmp(prev, m->trusted_hash, AUDIT_HASH_LEN) != 0)) {
		audit_seterr(why, whylen, "the high-water mark trusts a "
		    "checkpoint here, over a chain other than this one: "
		    "records up to %" PRIu64 " were altered", rec->seq - 1);
		return -1;
	}
	if (rec->kind != CPX__RECORD_KIND__RECORD_CHECKPOINT)
		return 0;
	if (rec->seq > m->trusted_seq && check_checkpoint_sig(a, rec, prev,
	    why, whylen) == -1)
		return -1;
	a->last_ckpt = rec->seq;
	memcpy(a->last_ckpt_hash, prev, AUDIT_HASH_LEN);
	return 0;
}

static int
index_scanned(void *arg, const Cpx__AuditRecord *rec, const uint8_t *prev,
    char *why, size_t whylen)
{
	struct ixscan	*xs = arg;

	if (check_record(xs->a, rec, prev, why, whylen) == -1)
		return -1;
	/* Called before the reader moves past the record: off is its own. */
	if (audit_index_note(&xs->a->ix, xs->seg, rec->seq, xs->r->off,
	    rec->time, prev) == -1) {
		audit_seterr(why, whylen, "out of memory for the index");
		return -1;
	}
	return 0;
}

/*
 * Open and check one segment during recovery; the last one stays open
 * (read-write) as the tail and a torn tail is cut from it.
 */
static int
recover_segment(struct audit *a, struct audit_rd *r, struct audit_scan *s,
    uint64_t first, char *err, size_t errlen)
{
	char		name[SEG_NAME_LEN], tmp[512];
	uint8_t		prev[AUDIT_HASH_LEN];
	struct stat	sb;
	int		fd = -1, rc;

	audit_seg_name(name, first);
	s->name = name;
	if (first != s->next_seq) {
		audit_seterr(err, errlen, "audit: %s: starts at record %" PRIu64
		    " but record %" PRIu64 " expected (a segment is missing "
		    "or misnamed)" REFUSE_TEXT, name, first, s->next_seq);
		goto fail;
	}
	/* O_NOFOLLOW: the log is ours; a symlink would point elsewhere. */
	fd = openat(a->dirfd, name, (s->last ? O_RDWR : O_RDONLY) |
	    O_CLOEXEC | O_NOFOLLOW);
	if (fd == -1 || fstat(fd, &sb) == -1) {
		audit_seterr(err, errlen, "audit: %s/%s: open: %s", a->dir, name,
		    strerror(errno));
		goto fail;
	}
	if (!S_ISREG(sb.st_mode)) {
		audit_seterr(err, errlen, "audit: %s/%s: not a regular file",
		    a->dir, name);
		goto fail;
	}
	memcpy(prev, s->hash, AUDIT_HASH_LEN);
	audit_rd_reset(r, fd, 0);
	r->limit = (uint64_t)sb.st_size;
	if ((rc = audit_scan_segment(r, s, a->md, err, errlen)) < 0) {
		/* Damage, unlike an I/O error, means the log was altered. */
		snprintf(tmp, sizeof(tmp), "audit: %s%s", err,
		    rc == -1 ? REFUSE_TEXT : "");
		audit_seterr(err, errlen, "%s", tmp);
		goto fail;
	}
	if (s->torn > 0) {
		if (ftruncate(fd, (off_t)s->good_off) == -1 ||
		    fsync(fd) == -1) {
			audit_seterr(err, errlen, "audit: %s/%s: cutting torn tail: "
			    "%s", a->dir, name, strerror(errno));
			goto fail;
		}
		log_warnx("audit: %s/%s: cut a torn tail of %" PRIu64
		    " bytes at offset %" PRIu64 " (record %" PRIu64
		    " was never committed)", a->dir, name, s->torn,
		    s->good_off, s->next_seq);
	}
	if (audit_segs_add(a, first, prev) == -1) {
		audit_seterr(err, errlen, "audit: out of memory");
		goto fail;
	}
	if (s->last) {
		a->fd = fd;
		a->tail_first = first;
		a->durable_size = s->good_off;
	} else
		close(fd);
	return 0;
fail:
	if (fd != -1)
		close(fd);
	return -1;
}

/*
 * The log must be at least as long as the mark says, and agree with it
 * at the mark: records missing from the end (a whole segment, the last
 * ten, the last one) are named, never taken for a shorter log.
 */
static int
check_length(struct audit *a, const struct audit_scan *s, char *err,
    size_t errlen)
{
	const struct audit_mark	*m = &a->mark;
	uint64_t		 last = s->next_seq - 1;

	if (last < m->last_seq) {
		audit_seterr(err, errlen, "audit: %s: records %" PRIu64 "..%"
		    PRIu64 " are missing: the high-water mark (%s) says %"
		    PRIu64 " were committed, but the log ends at record %"
		    PRIu64 " (records or a segment were removed from its "
		    "end)" REFUSE_TEXT, a->dir, last + 1, m->last_seq,
		    AUDIT_MARK_FILE, m->last_seq, last);
		return -1;
	}
	if (m->last_seq > 0 && (!s->watch_seen ||
	    CRYPTO_memcmp(s->watch_hash, m->last_hash, AUDIT_HASH_LEN) != 0)) {
		audit_seterr(err, errlen, "audit: %s: the chain hash at "
		    "record %" PRIu64 " differs from the one the high-water mark (%s) "
		    "recorded when it was committed: records up to %" PRIu64
		    " were altered and the chain recomputed" REFUSE_TEXT,
		    a->dir, m->last_seq, AUDIT_MARK_FILE, m->last_seq);
		return -1;
	}
	return 0;
}

/*
 * Read the whole log in a->dir (a->dirfd) in order: check every segment
 * and record against the chain, its checkpoints and the high-water mark,
 * cut a torn tail above the mark, index every record, and set the
 * durable state (last seq, chain hash, highest time, tail segment).
 * Returns 0, or -1 with err[] naming the segment, offset and record at
 * fault.
 */
int
audit_recover(struct audit *a, char *err, size_t errlen)
{
	struct audit_scan	 s;
	struct audit_rd	 r;
	struct ixscan	 xs;
	uint64_t	*firsts = NULL;
	size_t		 n = 0, i;
	char		 tmp[512];
	int		 ret = -1;

	memset(&r, 0, sizeof(r));
	memset(&s, 0, sizeof(s));
	s.next_seq = 1;
	xs.a = a;
	xs.r = &r;
	s.fn = index_scanned;
	s.arg = &xs;
	/* The mark first: records written after it are only more. */
	if (audit_mark_read(a->dirfd, a->dir, &a->mark, &a->mark_found, tmp,
	    sizeof(tmp)) == -1) {
		audit_seterr(err, errlen, "audit: %s" REFUSE_TEXT, tmp);
		goto done;
	}
	if (audit_list_segments(a->dirfd, a->dir, &firsts, &n, err,
	    errlen) == -1)
		goto done;
	/*
	 * Without a mark nothing may be cut as torn, unless the operator
	 * said the log is whole: the mark is what tells a torn write from
	 * a record removed.
	 */
	s.committed = a->mark.last_seq;
	if (!a->mark_found && !(a->flags & AUDIT_OPEN_ACCEPT_NO_MARK))
		s.committed = UINT64_MAX;
	s.watch_seq = a->mark.last_seq;
	if (n > 0 && audit_rd_init(&r, -1, READ_BUF, 0) == -1) {
		audit_seterr(err, errlen, "audit: out of memory");
		goto done;
	}
	for (i = 0; i < n; i++) {
		s.last = (i == n - 1);
		xs.seg = firsts[i];
		if (recover_segment(a, &r, &s, firsts[i], err, errlen) == -1)
			goto done;
	}
	if (!a->mark_found && n > 0 &&
	    !(a->flags & AUDIT_OPEN_ACCEPT_NO_MARK)) {
		audit_seterr(err, errlen, "audit: %s: the log has %zu "
		    "segment(s) but no high-water mark (%s/%s), so records "
		    "removed from its end could not be seen; refusing to "
		    "start. If the log was written before the mark existed "
		    "(an upgrade), start once with --accept-log-without-mark "
		    "(it is recorded in the log); otherwise restore the file "
		    "and run cpx-audit verify", a->dir, n, a->dir,
		    AUDIT_MARK_FILE);
		goto done;
	}
	if (check_length(a, &s, err, errlen) == -1)
		goto done;
	a->durable_seq = s.next_seq - 1;
	memcpy(a->durable_hash, s.hash, AUDIT_HASH_LEN);
	if (a->durable_seq > a->mark.last_seq && a->mark_found)
		log_warnx("audit: %s: records %" PRIu64 "..%" PRIu64 " were "
		    "written after the last high-water mark (a crash before "
		    "their commit finished; never acknowledged): kept, "
		    "checked, and now marked", a->dir, a->mark.last_seq + 1,
		    a->durable_seq);
	/*
	 * The highest time so far, not the last record's: after a restart
	 * with the clock stepped back, new records still never go below it
	 * (audit_next_time), so the log stays ordered by time.
	 */
	a->durable_time = audit_index_maxtime(&a->ix);
	ret = 0;
done:
	free(r.buf);
	free(firsts);
	return ret;
}
