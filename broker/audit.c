/*
 * audit.c: the durable, hash-chained, append-only audit log (audit.h).
 *
 * Owns the log directory while the broker runs (flock on it, so a second
 * broker cannot interleave its own chain), the tail segment file, the
 * pending batch (records serialized as on disk, chain hash computed as
 * they are appended) and the durable state: last sequence, chain hash and
 * size of the tail segment. audit_commit() writes the batch and fsyncs;
 * on any failure it truncates back to the durable size, so what is on
 * disk is always exactly the acknowledged chain.
 *
 * One parser (frame_check, audit_scan_segment) reads records from a
 * buffer filled by large pread()s (struct audit_rd) or from the caller's
 * memory (the fuzzer): recovery, cursors and the offline verifier
 * (audit_verify.c, through audit_impl.h) all go through it. Recovery
 * also builds the in-memory index (audit_index.c) that commits extend
 * and cursors seek by, so no request reads the log up to where it starts.
 */
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "audit.h"
#include "audit_impl.h"
#include "cpx_limits.h"
#include "log.h"
#include "sign.h"

#define CURSOR_BUF	(FRAME_MAX + 64u * 1024u)
#define REFUSE_TEXT	"; refusing to start: the log was altered or " \
			"damaged (run cpx-audit verify)"

/* A durable segment: its first record and the chain hash before it. */
struct seg {
	uint64_t	first;
	uint8_t		prev[AUDIT_HASH_LEN];
};

/* A run of the pending batch that goes into one segment file. */
struct part {
	uint64_t	first;		/* the segment's first sequence */
	size_t		off;		/* start in the batch */
	int		isnew;		/* segment file to create */
	int		created;	/* by this commit: undo on failure */
	uint8_t		prev[AUDIT_HASH_LEN];	/* chain before */
};

struct audit {
	char		*dir;
	int		 dirfd;
	EVP_PKEY	*key;		/* borrowed */
	uint8_t		*cert_der;
	size_t		 cert_len;
	EVP_MD		*sha256;
	EVP_MD_CTX	*md;
	uint64_t	 seg_bytes;
	int		 broken;	/* rollback failed: no more writes */

	struct seg	*segs;		/* durable segments, in order */
	size_t		 nsegs, segcap;
	struct audit_index ix;		/* for cursors to seek by */

	/* Durable state. */
	int		 fd;		/* tail segment, -1 if none */
	uint64_t	 tail_first;
	uint64_t	 durable_size;	/* of the tail segment */
	uint64_t	 durable_seq;
	uint8_t		 durable_hash[AUDIT_HASH_LEN];
	int64_t		 durable_time;

	/* Pending batch. */
	uint8_t		*batch;
	size_t		 batch_len, batch_cap;
	struct part	*parts;
	size_t		 nparts, partcap;
	size_t		 npending;
	uint64_t	 pend_seq;
	uint8_t		 pend_hash[AUDIT_HASH_LEN];
	int64_t		 pend_time;
	uint64_t	 tail_bytes;	/* last segment incl. pending */
	uint64_t	 since_checkpoint;
};


enum frame {
	FRAME_OK = 0,
	FRAME_SHORT,		/* fewer bytes than the record needs */
	FRAME_MAGIC,
	FRAME_LEN,
	FRAME_HASH,
	FRAME_DECODE,
	FRAME_SEQ,
	FRAME_NOMEM
};

struct audit_cursor {
	struct audit	*a;		/* NULL: a dir cursor */
	int		 dirfd;		/* own, dir cursors only */
	struct audit_rd	 rd;
	EVP_MD		*sha256;
	EVP_MD_CTX	*md;
	uint64_t	 seg;		/* first seq of the open segment */
	uint64_t	 next_seq;	/* record at the read position */
	uint8_t		 hash[AUDIT_HASH_LEN];	/* chain before */
	uint64_t	 from_seq;
	int64_t		 from_time;
	int		 started;	/* from_time reached */
	uint64_t	 seek_seg;	/* index point to open first, 0: none */
	uint64_t	 seek_off;
	uint64_t	 reads;		/* records checked */
};

void
audit_seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list	ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static void
clearerr_buf(char *err, size_t errlen)
{
	if (err != NULL && errlen > 0)
		err[0] = '\0';
}

static void
put_be32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = v >> 16;
	p[2] = v >> 8;
	p[3] = v;
}

static void
put_be64(uint8_t *p, uint64_t v)
{
	put_be32(p, (uint32_t)(v >> 32));
	put_be32(p + 4, (uint32_t)v);
}

static uint32_t
get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

void
audit_seg_name(char name[SEG_NAME_LEN], uint64_t first)
{
	snprintf(name, SEG_NAME_LEN, "seg-%020" PRIu64 ".log", first);
}

static int64_t
now_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Record times never go backwards, so a cursor can seek by time. */
static int64_t
next_time(const struct audit *a)
{
	int64_t	t = now_ms();

	return t < a->pend_time ? a->pend_time : t;
}

/* hash(n) = SHA-256(hash(n-1) || u64be seq || u32be len || bytes). */
static int
chain_hash(EVP_MD_CTX *md, const uint8_t prev[AUDIT_HASH_LEN], uint64_t seq,
    const uint8_t *bytes, uint32_t len, uint8_t out[AUDIT_HASH_LEN])
{
	uint8_t		hdr[12];
	unsigned int	outlen = 0;

	put_be64(hdr, seq);
	put_be32(hdr + 8, len);
	/* NULL type: reuse the digest fetched once, no lookup per record. */
	if (EVP_DigestInit_ex2(md, NULL, NULL) != 1 ||
	    EVP_DigestUpdate(md, prev, AUDIT_HASH_LEN) != 1 ||
	    EVP_DigestUpdate(md, hdr, sizeof(hdr)) != 1 ||
	    EVP_DigestUpdate(md, bytes, len) != 1 ||
	    EVP_DigestFinal_ex(md, out, &outlen) != 1 ||
	    outlen != AUDIT_HASH_LEN)
		return -1;
	return 0;
}

EVP_MD_CTX *
audit_sha256_ctx(EVP_MD **mdp)
{
	EVP_MD		*sha = NULL;
	EVP_MD_CTX	*md = NULL;

	if ((sha = EVP_MD_fetch(NULL, "SHA256", NULL)) == NULL ||
	    (md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex2(md, sha, NULL) != 1) {
		EVP_MD_CTX_free(md);
		EVP_MD_free(sha);
		*mdp = NULL;
		return NULL;
	}
	*mdp = sha;
	return md;
}

/* --- reading ---------------------------------------------------------- */

int
audit_rd_init(struct audit_rd *r, int fd, size_t cap, uint64_t limit)
{
	memset(r, 0, sizeof(*r));
	r->fd = -1;
	if ((r->buf = malloc(cap)) == NULL)
		return -1;
	r->fd = fd;
	r->p = r->buf;
	r->cap = cap;
	r->limit = limit;
	return 0;
}

static void
rd_init_mem(struct audit_rd *r, const uint8_t *buf, size_t len)
{
	memset(r, 0, sizeof(*r));
	r->fd = -1;
	r->p = buf;
	r->end = len;
	r->limit = len;
}

/* Point a file reader at offset off of (another) fd, dropping the buffer. */
void
audit_rd_reset(struct audit_rd *r, int fd, uint64_t off)
{
	r->fd = fd;
	r->pos = r->end = 0;
	r->off = off;
}

/*
 * Make at least want bytes readable at p[pos] if the file has them (want
 * <= cap): one pread of as much as fits, not one per record. *avail gets
 * what is readable. Returns 0, or -1 on a read error (errno).
 */
static int
rd_fill(struct audit_rd *r, size_t want, size_t *avail)
{
	uint64_t	at;
	size_t		room;
	ssize_t		n;

	if (r->end - r->pos >= want || r->buf == NULL)
		goto done;
	if (r->pos > 0) {
		memmove(r->buf, r->buf + r->pos, r->end - r->pos);
		r->end -= r->pos;
		r->pos = 0;
	}
	while (r->end < want) {
		at = r->off + r->end;
		if (at >= r->limit)
			break;
		room = r->cap - r->end;
		if (room > r->limit - at)
			room = (size_t)(r->limit - at);
		n = pread(r->fd, r->buf + r->end, room, (off_t)at);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			*avail = 0;
			return -1;
		}
		if (n == 0)
			break;		/* file shorter than limit */
		r->end += (size_t)n;
	}
done:
	*avail = r->end - r->pos;
	return 0;
}

static void
rd_skip(struct audit_rd *r, size_t n)
{
	r->pos += n;
	r->off += n;
}

/* Bytes needed for the record at p: its frame, or the header if unknown. */
static size_t
frame_want(const uint8_t *p, size_t avail)
{
	uint32_t	len;

	if (avail < FRAME_HDR)
		return FRAME_HDR;
	len = get_be32(p + 4);
	if (len > AUDIT_MAX_RECORD)
		return FRAME_HDR;
	return (size_t)len + FRAME_OVERHEAD;
}

/*
 * Check the record frame at p (avail bytes readable): magic, length
 * within AUDIT_MAX_RECORD and within what is there (compared as len <=
 * avail - overhead, which cannot wrap), the chain hash from prev (NULL:
 * not checked), the protobuf decoding and the sequence. On FRAME_OK,
 * *flen is the frame size, hash the new chain hash and *recp (if not
 * NULL) the record, owned by the caller.
 */
static enum frame
frame_check(EVP_MD_CTX *md, const uint8_t *p, size_t avail, uint64_t seq,
    const uint8_t *prev, uint8_t hash[AUDIT_HASH_LEN], size_t *flen,
    Cpx__AuditRecord **recp)
{
	Cpx__AuditRecord	*rec;
	uint8_t			 h[AUDIT_HASH_LEN];
	uint32_t		 len;

	*flen = 0;
	if (recp != NULL)
		*recp = NULL;
	if (avail >= 4 && get_be32(p) != AUDIT_MAGIC)
		return FRAME_MAGIC;
	if (avail < FRAME_HDR)
		return FRAME_SHORT;
	len = get_be32(p + 4);
	if (len > AUDIT_MAX_RECORD)
		return FRAME_LEN;
	if (avail < FRAME_OVERHEAD || len > avail - FRAME_OVERHEAD)
		return FRAME_SHORT;
	if (prev != NULL) {
		if (chain_hash(md, prev, seq, p + FRAME_HDR, len, h) == -1)
			return FRAME_NOMEM;
		/* Constant time: the hash is what an attacker forges. */
		if (CRYPTO_memcmp(h, p + FRAME_HDR + len, AUDIT_HASH_LEN) != 0)
			return FRAME_HASH;
	} else
		memcpy(h, p + FRAME_HDR + len, AUDIT_HASH_LEN);
	rec = cpx__audit_record__unpack(NULL, len, p + FRAME_HDR);
	if (rec == NULL)
		return FRAME_DECODE;
	if (rec->seq != seq) {
		cpx__audit_record__free_unpacked(rec, NULL);
		return FRAME_SEQ;
	}
	memcpy(hash, h, AUDIT_HASH_LEN);
	*flen = (size_t)len + FRAME_OVERHEAD;
	if (recp != NULL)
		*recp = rec;
	else
		cpx__audit_record__free_unpacked(rec, NULL);
	return FRAME_OK;
}

static void
frame_why(enum frame st, const uint8_t *p, size_t avail, uint64_t seq,
    char *why, size_t whylen)
{
	Cpx__AuditRecord	*rec;
	uint32_t		 len;

	switch (st) {
	case FRAME_SHORT:
		audit_seterr(why, whylen, "record cut short (%zu bytes left)",
		    avail);
		break;
	case FRAME_MAGIC:
		audit_seterr(why, whylen, "bad record magic");
		break;
	case FRAME_LEN:
		len = get_be32(p + 4);
		audit_seterr(why, whylen, "record length %" PRIu32 " over the "
		    "limit %u", len, AUDIT_MAX_RECORD);
		break;
	case FRAME_HASH:
		audit_seterr(why, whylen, "chain hash mismatch");
		break;
	case FRAME_DECODE:
		audit_seterr(why, whylen, "record does not decode");
		break;
	case FRAME_SEQ:
		len = get_be32(p + 4);
		rec = cpx__audit_record__unpack(NULL, len, p + FRAME_HDR);
		audit_seterr(why, whylen, "sequence %" PRIu64 " where %" PRIu64
		    " expected", rec != NULL ? rec->seq : 0, seq);
		cpx__audit_record__free_unpacked(rec, NULL);
		break;
	default:
		audit_seterr(why, whylen, "out of memory");
		break;
	}
}

/*
 * 1 if p[1..n) holds a complete frame that decodes to a record numbered
 * seq or later. Bytes past a bad record that contain a later record are
 * damage in the middle of the log, not a write cut short: cutting them
 * would drop acknowledged records (a flipped length byte would otherwise
 * pass for a torn tail).
 */
static int
later_record(const uint8_t *p, size_t n, uint64_t seq)
{
	Cpx__AuditRecord	*rec;
	const uint8_t		 magic[4] = { 0x43, 0x50, 0x58, 0x52 };
	const uint8_t		*q;
	size_t			 i, left;
	uint32_t		 len;
	int			 found;

	for (i = 1; n > FRAME_OVERHEAD && i <= n - FRAME_OVERHEAD; i++) {
		q = memchr(p + i, magic[0], n - FRAME_OVERHEAD + 1 - i);
		if (q == NULL)
			break;
		i = (size_t)(q - p);
		if (memcmp(q, magic, sizeof(magic)) != 0)
			continue;
		left = n - i;
		len = get_be32(q + 4);
		if (len > AUDIT_MAX_RECORD || len > left - FRAME_OVERHEAD)
			continue;
		rec = cpx__audit_record__unpack(NULL, len, q + FRAME_HDR);
		if (rec == NULL)
			continue;
		found = rec->seq >= seq;
		cpx__audit_record__free_unpacked(rec, NULL);
		if (found)
			return 1;
	}
	return 0;
}

/*
 * Read and check every record of one segment from r, continuing the
 * chain in s. Returns 0 when the segment is whole (s->torn == 0) or ends
 * in a torn tail that may be cut (s->torn bytes after s->good_off), -1
 * if it is damaged, or -2 on a read error, with err[] naming the segment,
 * offset and record (no "audit: " prefix: callers add their context).
 */
int
audit_scan_segment(struct audit_rd *r, struct audit_scan *s, EVP_MD_CTX *md,
    char *err, size_t errlen)
{
	Cpx__AuditRecord	*rec = NULL;
	uint8_t			 h[AUDIT_HASH_LEN];
	char			 why[256];
	size_t			 avail, flen;
	uint64_t		 left;
	enum frame		 st;

	s->good_off = r->off;
	s->torn = 0;
	for (;;) {
		if (rd_fill(r, FRAME_HDR, &avail) == -1)
			goto readerr;
		if (avail == 0)
			return 0;
		if (rd_fill(r, frame_want(r->p + r->pos, avail), &avail) == -1)
			goto readerr;
		st = frame_check(md, r->p + r->pos, avail, s->next_seq,
		    s->hash, h, &flen, s->fn != NULL ? &rec : NULL);
		if (st != FRAME_OK)
			break;
		if (s->fn != NULL && s->fn(s->arg, rec, s->hash, why,
		    sizeof(why)) == -1) {
			cpx__audit_record__free_unpacked(rec, NULL);
			audit_seterr(err, errlen, "%s offset %" PRIu64 ": record %"
			    PRIu64 ": %s", s->name, r->off, s->next_seq, why);
			return -1;
		}
		if (rec != NULL) {
			s->last_time = rec->time;
			cpx__audit_record__free_unpacked(rec, NULL);
			rec = NULL;
		}
		memcpy(s->hash, h, AUDIT_HASH_LEN);
		s->next_seq++;
		s->nrecords++;
		rd_skip(r, flen);
		s->good_off = r->off;
	}

	/*
	 * A torn tail: at most one frame at the end of the last segment,
	 * holding no later record. A record whose hash verified but does not
	 * decode or has the wrong number is no torn write: refuse.
	 */
	left = r->limit - r->off;
	if (s->last && left <= FRAME_MAX && (st == FRAME_SHORT ||
	    st == FRAME_MAGIC || st == FRAME_LEN || st == FRAME_HASH)) {
		if (rd_fill(r, (size_t)left, &avail) == -1)
			goto readerr;
		if (avail == left &&
		    !later_record(r->p + r->pos, avail, s->next_seq)) {
			s->torn = left;
			return 0;
		}
	}
	frame_why(st, r->p + r->pos, avail, s->next_seq, why, sizeof(why));
	audit_seterr(err, errlen, "%s offset %" PRIu64 ": record %" PRIu64 ": %s",
	    s->name, r->off, s->next_seq, why);
	return -1;
readerr:
	audit_seterr(err, errlen, "%s offset %" PRIu64 ": read: %s", s->name,
	    r->off, strerror(errno));
	return -2;
}

int
audit_scan_buffer(const uint8_t *buf, size_t len, uint64_t first_seq,
    const uint8_t *prev, uint64_t *nrecords, size_t *good_len, char *err,
    size_t errlen)
{
	struct audit_scan	 s;
	struct audit_rd	 r;
	EVP_MD		*sha = NULL;
	EVP_MD_CTX	*md = NULL;
	int		 ret = -1;

	*nrecords = 0;
	*good_len = 0;
	clearerr_buf(err, errlen);
	memset(&s, 0, sizeof(s));
	s.name = "buffer";
	s.last = 1;
	s.next_seq = first_seq;
	if (prev != NULL)
		memcpy(s.hash, prev, AUDIT_HASH_LEN);
	if ((md = audit_sha256_ctx(&sha)) == NULL) {
		audit_seterr(err, errlen, "audit: SHA-256 unavailable");
		goto done;
	}
	rd_init_mem(&r, buf, len);
	if (audit_scan_segment(&r, &s, md, err, errlen) < 0)
		goto done;
	*nrecords = s.nrecords;
	*good_len = (size_t)s.good_off;
	ret = s.torn > 0 ? 1 : 0;
done:
	EVP_MD_CTX_free(md);
	EVP_MD_free(sha);
	return ret;
}

/* --- segments ----------------------------------------------------------- */

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

/* The segments of dirfd, ascending, in *out (owned by the caller). */
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
static int
reserve_segs(struct audit *a, size_t n)
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

static int
add_seg(struct audit *a, uint64_t first, const uint8_t prev[AUDIT_HASH_LEN])
{
	if (reserve_segs(a, 1) == -1)
		return -1;
	a->segs[a->nsegs].first = first;
	memcpy(a->segs[a->nsegs].prev, prev, AUDIT_HASH_LEN);
	a->nsegs++;
	return 0;
}

/* Recovery reads every record once: index them on the way. */
struct ixscan {
	struct audit		*a;
	const struct audit_rd	*r;
	uint64_t		 seg;
};

static int
index_scanned(void *arg, const Cpx__AuditRecord *rec, const uint8_t *prev,
    char *why, size_t whylen)
{
	struct ixscan	*xs = arg;

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
	if (add_seg(a, first, prev) == -1) {
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

static int
recover(struct audit *a, char *err, size_t errlen)
{
	struct audit_scan	 s;
	struct audit_rd	 r;
	struct ixscan	 xs;
	uint64_t	*firsts = NULL;
	size_t		 n = 0, i;
	int		 ret = -1;

	memset(&r, 0, sizeof(r));
	memset(&s, 0, sizeof(s));
	s.next_seq = 1;
	xs.a = a;
	xs.r = &r;
	s.fn = index_scanned;
	s.arg = &xs;
	if (audit_list_segments(a->dirfd, a->dir, &firsts, &n, err,
	    errlen) == -1)
		goto done;
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
	a->durable_seq = s.next_seq - 1;
	memcpy(a->durable_hash, s.hash, AUDIT_HASH_LEN);
	/*
	 * The highest time so far, not the last record's: after a restart
	 * with the clock stepped back, new records still never go below it
	 * (next_time), so the log stays ordered by time.
	 */
	a->durable_time = audit_index_maxtime(&a->ix);
	ret = 0;
done:
	free(r.buf);
	free(firsts);
	return ret;
}

/* --- the log -------------------------------------------------------- */

static void
reset_pending(struct audit *a)
{
	a->batch_len = 0;
	a->nparts = 0;
	a->npending = 0;
	a->pend_seq = a->durable_seq;
	memcpy(a->pend_hash, a->durable_hash, AUDIT_HASH_LEN);
	a->pend_time = a->durable_time;
	a->tail_bytes = a->fd == -1 ? 0 : a->durable_size;
	audit_index_drop_pending(&a->ix);
}

struct audit *
audit_open(const char *dir, EVP_PKEY *key, X509 *cert, char *err,
    size_t errlen)
{
	struct audit	*a = NULL;
	unsigned char	*p;
	int		 len;

	clearerr_buf(err, errlen);
	if ((a = calloc(1, sizeof(*a))) == NULL) {
		audit_seterr(err, errlen, "audit: out of memory");
		goto fail;
	}
	a->dirfd = -1;
	a->fd = -1;
	a->key = key;
	a->seg_bytes = AUDIT_SEGMENT_BYTES;
	if ((a->dir = strdup(dir)) == NULL ||
	    (a->md = audit_sha256_ctx(&a->sha256)) == NULL) {
		audit_seterr(err, errlen, "audit: out of memory");
		goto fail;
	}
	if (key != NULL) {
		if (cert == NULL || (len = i2d_X509(cert, NULL)) <= 0 ||
		    (a->cert_der = malloc((size_t)len)) == NULL) {
			audit_seterr(err, errlen, "audit: broker certificate "
			    "unusable for checkpoints");
			goto fail;
		}
		p = a->cert_der;
		a->cert_len = (size_t)i2d_X509(cert, &p);
	}
	if (mkdir(dir, 0700) == -1 && errno != EEXIST) {
		audit_seterr(err, errlen, "audit: %s: mkdir: %s (check audit_dir)",
		    dir, strerror(errno));
		goto fail;
	}
	a->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (a->dirfd == -1) {
		audit_seterr(err, errlen, "audit: %s: %s (check audit_dir)", dir,
		    strerror(errno));
		goto fail;
	}
	/* Two writers would each extend the chain from their own state. */
	if (flock(a->dirfd, LOCK_EX | LOCK_NB) == -1) {
		audit_seterr(err, errlen, "audit: %s: %s", dir,
		    errno == EWOULDBLOCK ? "in use by another broker" :
		    strerror(errno));
		goto fail;
	}
	if (recover(a, err, errlen) == -1)
		goto fail;
	reset_pending(a);
	return a;
fail:
	audit_close(&a);
	return NULL;
}

void
audit_set_segment_bytes(struct audit *a, uint64_t bytes)
{
	a->seg_bytes = bytes > 0 ? bytes : 1;
}

size_t
audit_pending(const struct audit *a)
{
	return a->npending;
}

uint64_t
audit_last_seq(const struct audit *a)
{
	return a->durable_seq;
}

void
audit_last_hash(const struct audit *a, uint8_t out[AUDIT_HASH_LEN])
{
	memcpy(out, a->durable_hash, AUDIT_HASH_LEN);
}

static int
add_part(struct audit *a, uint64_t first, int isnew)
{
	struct part	*np;
	size_t		 cap;

	if (a->nparts == a->partcap) {
		cap = a->partcap ? a->partcap * 2 : 4;
		if ((np = reallocarray(a->parts, cap, sizeof(*np))) == NULL)
			return -1;
		a->parts = np;
		a->partcap = cap;
	}
	a->parts[a->nparts].first = first;
	a->parts[a->nparts].off = a->batch_len;
	a->parts[a->nparts].isnew = isnew;
	a->parts[a->nparts].created = 0;
	memcpy(a->parts[a->nparts].prev, a->pend_hash, AUDIT_HASH_LEN);
	a->nparts++;
	return 0;
}

int
audit_append(struct audit *a, Cpx__AuditRecord *rec, uint64_t *seq_out)
{
	uint64_t	 old_seq = rec->seq;
	int64_t		 old_time = rec->time;
	uint8_t		*nb, *fr, h[AUDIT_HASH_LEN];
	size_t		 len, flen, cap, nparts = a->nparts;
	uint64_t	 off;
	int		 newseg;

	*seq_out = 0;
	if (a->broken) {
		log_warnx("audit: %s: log unusable since a failed rollback",
		    a->dir);
		return -1;
	}
	rec->seq = a->pend_seq + 1;
	if (rec->time == 0)
		rec->time = next_time(a);
	len = cpx__audit_record__get_packed_size(rec);
	if (len > AUDIT_MAX_RECORD) {
		log_warnx("audit: record of %zu bytes over the limit %u",
		    len, AUDIT_MAX_RECORD);
		goto fail;
	}
	flen = len + FRAME_OVERHEAD;
	if (audit_index_reserve_pending(&a->ix) == -1)
		goto fail;
	if (a->batch_cap - a->batch_len < flen) {
		cap = a->batch_cap ? a->batch_cap : 64 * 1024;
		while (cap - a->batch_len < flen)
			cap *= 2;
		if ((nb = realloc(a->batch, cap)) == NULL)
			goto fail;
		a->batch = nb;
		a->batch_cap = cap;
	}
	/* A record never spans segments; a big one may get its own. */
	newseg = (a->fd == -1 && a->nparts == 0) ||
	    (a->tail_bytes > 0 && a->tail_bytes + flen > a->seg_bytes);
	if (newseg) {
		if (add_part(a, rec->seq, 1) == -1)
			goto fail;
	} else if (a->nparts == 0 && add_part(a, a->tail_first, 0) == -1)
		goto fail;
	fr = a->batch + a->batch_len;
	put_be32(fr, AUDIT_MAGIC);
	put_be32(fr + 4, (uint32_t)len);
	if (cpx__audit_record__pack(rec, fr + FRAME_HDR) != len ||
	    chain_hash(a->md, a->pend_hash, rec->seq, fr + FRAME_HDR,
	    (uint32_t)len, h) == -1)
		goto fail;
	memcpy(fr + FRAME_HDR + len, h, AUDIT_HASH_LEN);
	off = newseg ? 0 : a->tail_bytes;
	audit_index_pending(&a->ix, a->parts[a->nparts - 1].first, rec->seq,
	    off, rec->time, a->pend_hash);
	a->batch_len += flen;
	a->tail_bytes = off + flen;
	a->pend_seq = rec->seq;
	memcpy(a->pend_hash, h, AUDIT_HASH_LEN);
	if (rec->time > a->pend_time)
		a->pend_time = rec->time;
	a->npending++;
	a->since_checkpoint++;
	*seq_out = rec->seq;
	return 0;
fail:
	a->nparts = nparts;
	rec->seq = old_seq;
	rec->time = old_time;
	return -1;
}

/* write() all of buf at off, through partial writes and EINTR. */
static int
write_all(int fd, const uint8_t *buf, size_t len, uint64_t off)
{
	ssize_t	n;

	while (len > 0) {
		n = pwrite(fd, buf, len, (off_t)off);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0) {
			errno = EIO;
			return -1;
		}
		buf += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

/*
 * Undo a failed commit: remove the segments it created, cut the tail back
 * to its durable size, forget the batch. If the tail cannot be cut, the
 * on-disk chain may hold unacknowledged bytes: stop writing altogether.
 */
static void
rollback(struct audit *a)
{
	char	name[SEG_NAME_LEN];
	size_t	i;
	int	removed = 0;

	for (i = 0; i < a->nparts; i++) {
		if (!a->parts[i].created)
			continue;
		audit_seg_name(name, a->parts[i].first);
		if (unlinkat(a->dirfd, name, 0) == -1 && errno != ENOENT)
			log_warn("audit: %s/%s: unlink", a->dir, name);
		removed = 1;
	}
	if (removed && fsync(a->dirfd) == -1)
		log_warn("audit: %s: fsync", a->dir);
	if (a->fd != -1 && (ftruncate(a->fd, (off_t)a->durable_size) == -1 ||
	    fsync(a->fd) == -1)) {
		audit_seg_name(name, a->tail_first);
		log_warn("audit: %s/%s: rollback to %" PRIu64 " bytes failed; "
		    "no more records will be written", a->dir, name,
		    a->durable_size);
		a->broken = 1;
	}
	reset_pending(a);
}

int
audit_commit(struct audit *a, char *err, size_t errlen)
{
	char		 name[SEG_NAME_LEN];
	const char	*op = "write";
	uint64_t	 off = a->durable_size, first = a->tail_first;
	size_t		 i, end;
	int		 fd = a->fd, created = 0, saved;

	clearerr_buf(err, errlen);
	if (a->npending == 0)
		return 0;
	audit_seg_name(name, a->tail_first);
	if (a->broken) {
		audit_seterr(err, errlen, "audit: %s/%s: log unusable since a "
		    "failed rollback", a->dir, name);
		reset_pending(a);
		return -1;
	}
	if (reserve_segs(a, a->nparts) == -1 ||
	    audit_index_reserve_commit(&a->ix) == -1) {
		errno = ENOMEM;
		goto fail;
	}
	for (i = 0; i < a->nparts; i++) {
		if (a->parts[i].isnew) {
			if (fd != a->fd)
				close(fd);	/* fsync'd below already */
			fd = -1;
			first = a->parts[i].first;
			audit_seg_name(name, first);
			op = "create";
			fd = openat(a->dirfd, name, O_WRONLY | O_CREAT |
			    O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
			if (fd == -1)
				goto fail;
			a->parts[i].created = 1;
			created = 1;
			off = 0;
		}
		end = i + 1 < a->nparts ? a->parts[i + 1].off : a->batch_len;
		op = "write";
		if (write_all(fd, a->batch + a->parts[i].off,
		    end - a->parts[i].off, off) == -1)
			goto fail;
		off += end - a->parts[i].off;
		op = "fsync";
		if (fsync(fd) == -1)
			goto fail;
	}
	/* A new file is durable only once its directory entry is. */
	if (created && fsync(a->dirfd) == -1) {
		op = "fsync directory";
		goto fail;
	}
	for (i = 0; i < a->nparts; i++) {
		/* Cannot fail: reserved above. */
		if (a->parts[i].isnew && add_seg(a, a->parts[i].first,
		    a->parts[i].prev) == -1)
			fatalx("audit: segment list");
	}
	if (fd != a->fd) {
		if (a->fd != -1)
			close(a->fd);
		a->fd = fd;
	}
	a->tail_first = first;
	a->durable_size = off;
	a->durable_seq = a->pend_seq;
	memcpy(a->durable_hash, a->pend_hash, AUDIT_HASH_LEN);
	a->durable_time = a->pend_time;
	audit_index_commit(&a->ix);
	reset_pending(a);
	return 0;
fail:
	saved = errno;
	audit_seterr(err, errlen, "audit: %s/%s: %s: %s", a->dir, name, op,
	    strerror(saved));
	if (fd != -1 && fd != a->fd)
		close(fd);
	rollback(a);
	errno = saved;
	return -1;
}

/* "cpx-checkpoint-v1" | u64be seq | hash | i64be time (audit.h). */
void
audit_checkpoint_msg(uint8_t out[CKPT_MSG_LEN], uint64_t seq,
    const uint8_t hash[AUDIT_HASH_LEN], int64_t time)
{
	memcpy(out, AUDIT_CHECKPOINT_TAG, CKPT_TAG_LEN);
	put_be64(out + CKPT_TAG_LEN, seq);
	memcpy(out + CKPT_TAG_LEN + 8, hash, AUDIT_HASH_LEN);
	put_be64(out + CKPT_TAG_LEN + 8 + AUDIT_HASH_LEN, (uint64_t)time);
}

int
audit_checkpoint(struct audit *a)
{
	Cpx__AuditRecord	 rec = CPX__AUDIT_RECORD__INIT;
	EVP_MD_CTX		*ctx = NULL;
	uint8_t			 msg[CKPT_MSG_LEN], hash[AUDIT_HASH_LEN];
	uint8_t			*sig = NULL;
	size_t			 siglen = 0;
	uint64_t		 seq;
	int			 ret = -1;

	if (a->key == NULL) {
		log_warnx("audit: %s: no broker key to sign a checkpoint",
		    a->dir);
		return -1;
	}
	memcpy(hash, a->pend_hash, AUDIT_HASH_LEN);
	rec.kind = CPX__RECORD_KIND__RECORD_CHECKPOINT;
	rec.time = next_time(a);
	rec.checkpoint_seq = a->pend_seq;
	audit_checkpoint_msg(msg, rec.checkpoint_seq, hash, rec.time);
	if ((ctx = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, a->key) != 1 ||
	    EVP_DigestSign(ctx, NULL, &siglen, msg, sizeof(msg)) != 1 ||
	    (sig = malloc(siglen)) == NULL ||
	    EVP_DigestSign(ctx, sig, &siglen, msg, sizeof(msg)) != 1) {
		log_openssl("audit: signing a checkpoint");
		goto done;
	}
	rec.checkpoint_hash.data = hash;
	rec.checkpoint_hash.len = AUDIT_HASH_LEN;
	rec.checkpoint_signature.data = sig;
	rec.checkpoint_signature.len = siglen;
	rec.checkpoint_cert.data = a->cert_der;
	rec.checkpoint_cert.len = a->cert_len;
	if (audit_append(a, &rec, &seq) == -1)
		goto done;
	a->since_checkpoint = 0;
	ret = 0;
done:
	free(sig);
	EVP_MD_CTX_free(ctx);
	return ret;
}

void
audit_close(struct audit **ap)
{
	struct audit	*a;
	char		 err[512];

	if (ap == NULL || (a = *ap) == NULL)
		return;
	*ap = NULL;
	if (a->dirfd != -1 && !a->broken) {
		if (a->since_checkpoint > 0 && a->key != NULL &&
		    audit_checkpoint(a) == -1)
			log_warnx("audit: %s: no checkpoint at close", a->dir);
		if (audit_commit(a, err, sizeof(err)) == -1)
			log_warnx("%s", err);
	}
	if (a->fd != -1 && close(a->fd) == -1)
		log_warn("audit: %s: close", a->dir);
	if (a->dirfd != -1)
		close(a->dirfd);	/* releases the flock */
	free(a->batch);
	free(a->parts);
	free(a->segs);
	audit_index_free(&a->ix);
	free(a->cert_der);
	EVP_MD_CTX_free(a->md);
	EVP_MD_free(a->sha256);
	free(a->dir);
	free(a);
}

/* --- cursors ------------------------------------------------------------ */

static struct audit_cursor *
cursor_alloc(uint64_t from_seq, int64_t from_time)
{
	struct audit_cursor	*c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->dirfd = -1;
	if (audit_rd_init(&c->rd, -1, CURSOR_BUF, UINT64_MAX) == -1 ||
	    (c->md = audit_sha256_ctx(&c->sha256)) == NULL) {
		free(c->rd.buf);
		free(c);
		return NULL;
	}
	c->from_seq = from_seq;
	c->from_time = from_time;
	c->started = from_time <= 0;
	c->next_seq = 1;
	return c;
}

struct audit_cursor *
audit_cursor_new(struct audit *a, uint64_t from_seq, int64_t from_time,
    char *err, size_t errlen)
{
	struct audit_cursor	*c;
	const struct audit_ixpt	*x;

	clearerr_buf(err, errlen);
	if ((c = cursor_alloc(from_seq, from_time)) == NULL) {
		audit_seterr(err, errlen, "audit: out of memory");
		return NULL;
	}
	c->a = a;
	/*
	 * Seek, never scan: a request for the end of a long log must not
	 * read all of it (one read holds the whole loop).
	 */
	if ((x = audit_index_seek(&a->ix, from_seq, from_time)) == NULL)
		return c;	/* empty log: from the start */
	c->next_seq = x->seq;
	c->seek_seg = x->seg;
	c->seek_off = x->off;
	memcpy(c->hash, x->prev, AUDIT_HASH_LEN);
	return c;
}

struct audit_cursor *
audit_cursor_open_dir(const char *dir, uint64_t from_seq, int64_t from_time,
    char *err, size_t errlen)
{
	struct audit_cursor	*c;

	clearerr_buf(err, errlen);
	if ((c = cursor_alloc(from_seq, from_time)) == NULL) {
		audit_seterr(err, errlen, "audit: out of memory");
		return NULL;
	}
	c->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (c->dirfd == -1) {
		audit_seterr(err, errlen, "audit: %s: %s", dir, strerror(errno));
		audit_cursor_free(&c);
	}
	return c;
}

uint64_t
audit_cursor_reads(const struct audit_cursor *c)
{
	return c->reads;
}

void
audit_cursor_free(struct audit_cursor **cp)
{
	struct audit_cursor	*c;

	if (cp == NULL || (c = *cp) == NULL)
		return;
	*cp = NULL;
	if (c->rd.fd != -1)
		close(c->rd.fd);
	if (c->dirfd != -1)
		close(c->dirfd);
	free(c->rd.buf);
	EVP_MD_CTX_free(c->md);
	EVP_MD_free(c->sha256);
	free(c);
}

int
audit_cursor_next(struct audit_cursor *c, Cpx__AuditRecord **recp,
    char *err, size_t errlen)
{
	Cpx__AuditRecord	*rec = NULL;
	char			 name[SEG_NAME_LEN], why[256];
	uint8_t			 h[AUDIT_HASH_LEN];
	size_t			 avail, flen;
	int			 dirfd, sealed, fd;
	enum frame		 st;

	*recp = NULL;
	clearerr_buf(err, errlen);
	dirfd = c->a != NULL ? c->a->dirfd : c->dirfd;
	for (;;) {
		/* Never the pending batch: only what commits made durable. */
		if (c->a != NULL && c->next_seq > c->a->durable_seq)
			return 0;
		if (c->rd.fd == -1) {
			/*
			 * Segments are named by their first record; a seek
			 * starts inside one, at an index point.
			 */
			c->seg = c->seek_seg != 0 ? c->seek_seg : c->next_seq;
			audit_seg_name(name, c->seg);
			fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC |
			    O_NOFOLLOW);
			if (fd == -1) {
				if (errno == ENOENT && c->a == NULL)
					return 0;
				audit_seterr(err, errlen, "audit: %s: open: %s",
				    name, strerror(errno));
				return -1;
			}
			audit_rd_reset(&c->rd, fd, c->seek_seg != 0 ?
			    c->seek_off : 0);
			c->seek_seg = 0;
		}
		audit_seg_name(name, c->seg);
		sealed = c->a == NULL || c->seg != c->a->tail_first;
		c->rd.limit = sealed ? UINT64_MAX : c->a->durable_size;
		if (rd_fill(&c->rd, FRAME_HDR, &avail) == -1)
			goto readerr;
		if (avail == 0) {
			if (!sealed)
				goto missing;
			/* End of a full segment: the next one follows on. */
			close(c->rd.fd);
			audit_rd_reset(&c->rd, -1, 0);
			continue;
		}
		if (rd_fill(&c->rd, frame_want(c->rd.p + c->rd.pos, avail),
		    &avail) == -1)
			goto readerr;
		st = frame_check(c->md, c->rd.p + c->rd.pos, avail,
		    c->next_seq, c->hash, h, &flen, &rec);
		if (st == FRAME_SHORT && c->a == NULL &&
		    avail == c->rd.end - c->rd.pos) {
			/* The broker may be writing it: the end for now. */
			return 0;
		}
		if (st != FRAME_OK) {
			frame_why(st, c->rd.p + c->rd.pos, avail, c->next_seq,
			    why, sizeof(why));
			audit_seterr(err, errlen, "audit: %s offset %" PRIu64
			    ": record %" PRIu64 ": %s", name, c->rd.off,
			    c->next_seq, why);
			return -1;
		}
		rd_skip(&c->rd, flen);
		memcpy(c->hash, h, AUDIT_HASH_LEN);
		c->next_seq++;
		c->reads++;
		if (rec->seq < c->from_seq ||
		    (!c->started && rec->time < c->from_time)) {
			cpx__audit_record__free_unpacked(rec, NULL);
			rec = NULL;
			continue;
		}
		c->started = 1;
		*recp = rec;
		return 1;
	}
missing:
	audit_seterr(err, errlen, "audit: %s offset %" PRIu64 ": record %" PRIu64
	    " missing", name, c->rd.off, c->next_seq);
	return -1;
readerr:
	audit_seterr(err, errlen, "audit: %s offset %" PRIu64 ": read: %s", name,
	    c->rd.off, strerror(errno));
	return -1;
}
