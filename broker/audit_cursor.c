/*
 * audit_cursor.c: reading the segment-file store in order (audit.h).
 *
 * A cursor on an open audit sees only what commits made durable: it
 * stops at the durable sequence and reads the tail segment only up to
 * its durable size, never the pending batch. It starts at a point of
 * the in-memory index (audit_index.c) at or before the first record
 * wanted, with the chain hash there, so it checks the chain from that
 * point on without reading the log from the start. A cursor on a
 * directory (cpx-audit, possibly while the broker writes) checks the
 * chain from record 1 and takes an incomplete last record as the end
 * for now. Each cursor owns its reader, its open segment file and, for a
 * directory cursor, the directory.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit.h"
#include "audit_impl.h"
#include "audit_pg.h"
#include "chain.h"

#define CURSOR_BUF	(FRAME_MAX + 64u * 1024u)

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

	audit_clearerr(err, errlen);
	if (a->pg != NULL) {
		/* No file reader: the PostgreSQL cursor holds its page. */
		if ((c = calloc(1, sizeof(*c))) == NULL) {
			audit_seterr(err, errlen, "audit: out of memory");
			return NULL;
		}
		c->dirfd = -1;
		c->rd.fd = -1;
		if ((c->pg = audit_pg_cursor_new(a->pg, from_seq, from_time,
		    err, errlen)) == NULL)
			audit_cursor_free(&c);
		return c;
	}
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

	audit_clearerr(err, errlen);
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
	if (c->pg != NULL)
		return c->pg->reads;
	return c->reads;
}

void
audit_cursor_free(struct audit_cursor **cp)
{
	struct audit_cursor	*c;

	if (cp == NULL || (c = *cp) == NULL)
		return;
	*cp = NULL;
	audit_pg_cursor_free(&c->pg);
	if (c->rd.fd != -1)
		close(c->rd.fd);
	if (c->dirfd != -1)
		close(c->dirfd);
	free(c->rd.buf);
	EVP_MD_CTX_free(c->md);
	EVP_MD_free(c->sha256);
	free(c);
}

/* audit_cursor_next; with leaf set, also each record's (len, leaf). */
static int
cursor_next(struct audit_cursor *c, Cpx__AuditRecord **recp, uint32_t *lenp,
    uint8_t *leaf, char *err, size_t errlen)
{
	Cpx__AuditRecord	*rec = NULL;
	char			 name[SEG_NAME_LEN], why[256];
	uint8_t			 h[AUDIT_HASH_LEN];
	size_t			 avail, flen;
	int			 dirfd, sealed, fd;
	enum frame		 st;

	*recp = NULL;
	audit_clearerr(err, errlen);
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
		if (audit_rd_fill(&c->rd, FRAME_HDR, &avail) == -1)
			goto readerr;
		if (avail == 0) {
			if (!sealed)
				goto missing;
			/* End of a full segment: the next one follows on. */
			close(c->rd.fd);
			audit_rd_reset(&c->rd, -1, 0);
			continue;
		}
		if (audit_rd_fill(&c->rd, audit_frame_want(c->rd.p + c->rd.pos,
		    avail), &avail) == -1)
			goto readerr;
		st = audit_frame_check(c->md, c->rd.p + c->rd.pos, avail,
		    c->next_seq, c->hash, h, &flen, &rec);
		if (st == FRAME_SHORT && c->a == NULL &&
		    avail == c->rd.end - c->rd.pos) {
			/* The broker may be writing it: the end for now. */
			return 0;
		}
		if (st != FRAME_OK) {
			audit_frame_why(st, c->rd.p + c->rd.pos, avail,
			    c->next_seq, why, sizeof(why));
			audit_seterr(err, errlen, "audit: %s offset %" PRIu64
			    ": record %" PRIu64 ": %s", name, c->rd.off,
			    c->next_seq, why);
			return -1;
		}
		if (leaf != NULL) {
			*lenp = (uint32_t)(flen - FRAME_OVERHEAD);
			if (chain_leaf(c->md, c->rd.p + c->rd.pos + FRAME_HDR,
			    *lenp, leaf) == -1) {
				cpx__audit_record__free_unpacked(rec, NULL);
				audit_seterr(err, errlen,
				    "audit: out of memory");
				return -1;
			}
		}
		audit_rd_skip(&c->rd, flen);
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

int
audit_cursor_next(struct audit_cursor *c, Cpx__AuditRecord **recp,
    char *err, size_t errlen)
{
	if (c->pg != NULL)
		return audit_pg_cursor_next(c->pg, recp, NULL, NULL, err,
		    errlen);
	return cursor_next(c, recp, NULL, NULL, err, errlen);
}

int
audit_cursor_next_leaf(struct audit_cursor *c, Cpx__AuditRecord **recp,
    uint32_t *len, uint8_t leaf[AUDIT_HASH_LEN], char *err, size_t errlen)
{
	*len = 0;
	if (c->pg != NULL)
		return audit_pg_cursor_next(c->pg, recp, len, leaf, err,
		    errlen);
	return cursor_next(c, recp, len, leaf, err, errlen);
}
