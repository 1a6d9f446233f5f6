/*
 * audit_frame.c: the record format of the segment-file store (audit.h):
 * framing, the chain hash, and the one parser that reads records back.
 *
 * A record is framed as magic | length | AuditRecord bytes | chain hash.
 * audit_frame_check and audit_scan_segment read frames from a buffer
 * filled by large pread()s (struct audit_rd) or from the caller's memory
 * (the fuzzer): recovery (audit_segment.c), cursors (audit_cursor.c) and the
 * offline verifier (audit_verify.c) all go through them, so there is one
 * place that decides what a valid record, a torn tail and damage are.
 * Owns nothing: the reader's buffer belongs to whoever set it up.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "audit.h"
#include "audit_impl.h"
#include "chain.h"
#include "errfmt.h"

void
audit_seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	(void)verrf(err, errlen, fmt, ap);
	va_end(ap);
}

void
audit_clearerr(char *err, size_t errlen)
{
	if (err != NULL && errlen > 0)
		err[0] = '\0';
}

void
audit_put_be32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = v >> 16;
	p[2] = v >> 8;
	p[3] = v;
}

void
audit_put_be64(uint8_t *p, uint64_t v)
{
	audit_put_be32(p, (uint32_t)(v >> 32));
	audit_put_be32(p + 4, (uint32_t)v);
}

uint64_t
audit_get_be64(const uint8_t *p)
{
	uint64_t	v = 0;
	int		i;

	for (i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static uint32_t
get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

/* The chain step over one record's bytes: lib/chain.h (chain v2). */
int
audit_chain_hash(EVP_MD_CTX *md, const uint8_t prev[AUDIT_HASH_LEN],
    uint64_t seq, const uint8_t *bytes, uint32_t len,
    uint8_t out[AUDIT_HASH_LEN])
{
	return chain_hash_record(md, prev, seq, bytes, len, out);
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
int
audit_rd_fill(struct audit_rd *r, size_t want, size_t *avail)
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

void
audit_rd_skip(struct audit_rd *r, size_t n)
{
	r->pos += n;
	r->off += n;
}

/* Bytes needed for the record at p: its frame, or the header if unknown. */
size_t
audit_frame_want(const uint8_t *p, size_t avail)
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
enum frame
audit_frame_check(EVP_MD_CTX *md, const uint8_t *p, size_t avail, uint64_t seq,
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
		if (audit_chain_hash(md, prev, seq, p + FRAME_HDR, len,
		    h) == -1)
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

void
audit_frame_why(enum frame st, const uint8_t *p, size_t avail, uint64_t seq,
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
 * 1 if the frame at p (avail bytes) is record 1 of a chain v1 log: its
 * hash is SHA-256(zeros || u64be 1 || u32be len || bytes).
 */
static int
chain_v1(EVP_MD_CTX *md, const uint8_t *p, size_t avail)
{
	uint8_t		zero[AUDIT_HASH_LEN], h[AUDIT_HASH_LEN];
	uint32_t	len;

	if (avail < FRAME_OVERHEAD)
		return 0;
	len = get_be32(p + 4);
	if (len > AUDIT_MAX_RECORD || len > avail - FRAME_OVERHEAD)
		return 0;
	memset(zero, 0, sizeof(zero));
	if (chain_step_v1(md, zero, 1, p + FRAME_HDR, len, h) == -1)
		return 0;
	return CRYPTO_memcmp(h, p + FRAME_HDR + len, AUDIT_HASH_LEN) == 0;
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
		if (audit_rd_fill(r, FRAME_HDR, &avail) == -1)
			goto readerr;
		if (avail == 0)
			return 0;
		if (audit_rd_fill(r, audit_frame_want(r->p + r->pos, avail),
		    &avail) == -1)
			goto readerr;
		st = audit_frame_check(md, r->p + r->pos, avail, s->next_seq,
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
		if (s->next_seq == s->watch_seq) {
			memcpy(s->watch_hash, h, AUDIT_HASH_LEN);
			s->watch_seen = 1;
		}
		s->next_seq++;
		s->nrecords++;
		audit_rd_skip(r, flen);
		s->good_off = r->off;
	}

	/* A log of cpx 0.1 fails its very first hash: say so. */
	if (st == FRAME_HASH && s->next_seq == 1 && chain_v1(md, r->p + r->pos,
	    avail)) {
		audit_seterr(err, errlen, "%s offset %" PRIu64 ": record 1: "
		    "this log was written by cpx 0.1 (chain v1, whose hashes "
		    "cover the record bytes themselves); this version writes "
		    "and checks chain v2 (each hash covers the SHA-256 of the "
		    "record) and cannot extend or check a v1 log: keep it "
		    "as the archive of cpx 0.1 and give the broker a new, "
		    "empty audit_dir", s->name, r->off);
		return -1;
	}
	/*
	 * A torn tail: at most one frame at the end of the last segment,
	 * holding no later record, and above the high-water mark: a record
	 * the mark says was committed was acknowledged, so whatever is wrong
	 * with it is damage, not a write cut short. A record whose hash
	 * verified but does not decode or has the wrong number is no torn
	 * write either: refuse.
	 */
	left = r->limit - r->off;
	if (s->last && s->next_seq <= s->committed) {
		audit_frame_why(st, r->p + r->pos, avail, s->next_seq, why,
		    sizeof(why));
		audit_seterr(err, errlen, "%s offset %" PRIu64 ": record %"
		    PRIu64 ": %s; it is at or below the high-water mark (%"
		    PRIu64 " committed), so this is damage to an "
		    "acknowledged record, not a torn write", s->name, r->off,
		    s->next_seq, why, s->committed);
		return -1;
	}
	if (s->last && left <= FRAME_MAX && (st == FRAME_SHORT ||
	    st == FRAME_MAGIC || st == FRAME_LEN || st == FRAME_HASH)) {
		if (audit_rd_fill(r, (size_t)left, &avail) == -1)
			goto readerr;
		if (avail == left &&
		    !later_record(r->p + r->pos, avail, s->next_seq)) {
			s->torn = left;
			return 0;
		}
	}
	audit_frame_why(st, r->p + r->pos, avail, s->next_seq, why,
	    sizeof(why));
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
	audit_clearerr(err, errlen);
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
