/*
 * audit_impl.h: internals of the audit log shared by audit.c (the log,
 * recovery, cursors) and audit_verify.c (the offline verifier): the
 * buffered segment reader and the one record parser. Not for other
 * modules: they use audit.h.
 */
#ifndef CPX_AUDIT_IMPL_H
#define CPX_AUDIT_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "audit.h"

#define FRAME_HDR	8u			/* magic, len */
#define FRAME_OVERHEAD	(FRAME_HDR + AUDIT_HASH_LEN)
#define FRAME_MAX	(AUDIT_MAX_RECORD + FRAME_OVERHEAD)
#define READ_BUF	(1024u * 1024u)		/* recovery, verify */
#define SEG_NAME_LEN	32		/* "seg-" 20 digits ".log" */
#define CKPT_TAG_LEN	(sizeof(AUDIT_CHECKPOINT_TAG) - 1)
#define CKPT_MSG_LEN	(CKPT_TAG_LEN + 8 + AUDIT_HASH_LEN + 8)

/* Buffered reader over a file (fd) or the caller's memory (fd -1). */
struct audit_rd {
	int		 fd;
	const uint8_t	*p;		/* buf, or the caller's bytes */
	uint8_t		*buf;
	size_t		 cap;
	size_t		 pos, end;	/* unread bytes: p[pos..end) */
	uint64_t	 off;		/* file offset of p[pos] */
	uint64_t	 limit;		/* bytes of the file to read */
};

/* One segment being scanned, and the chain state carried across them. */
struct audit_scan {
	const char	*name;		/* segment file, for messages */
	int		 last;		/* the last: may end torn */
	uint64_t	 next_seq;
	uint8_t		 hash[AUDIT_HASH_LEN];
	int64_t		 last_time;
	uint64_t	 good_off;	/* end of the last valid record */
	uint64_t	 torn;		/* torn bytes after good_off */
	uint64_t	 nrecords;
	/* Called on each valid record with the chain hash before it;
	 * returns 0, or -1 with why[] to fail the scan there. */
	int		(*fn)(void *, const Cpx__AuditRecord *,
			    const uint8_t *, char *, size_t);
	void		*arg;
};

/* "seg-<first, 20 digits>.log" */
void	audit_seg_name(char name[SEG_NAME_LEN], uint64_t first);
/* A SHA-256 context for the chain; *mdp is the fetched digest (free both). */
EVP_MD_CTX *audit_sha256_ctx(EVP_MD **mdp);
/* A file reader with a cap-byte buffer (owned by r: free(r->buf)). */
int	audit_rd_init(struct audit_rd *r, int fd, size_t cap, uint64_t limit)
	    __attribute__((warn_unused_result));
void	audit_rd_reset(struct audit_rd *r, int fd, uint64_t off);
/*
 * Read and check every record of one segment from r, continuing the chain
 * in s. Returns 0 when the segment is whole (s->torn == 0) or ends in a
 * torn tail that may be cut (s->torn bytes after s->good_off), -1 if it
 * is damaged, or -2 on a read error, with err[] naming the segment,
 * offset and record (no "audit: " prefix: callers add their context).
 */
int	audit_scan_segment(struct audit_rd *r, struct audit_scan *s,
	    EVP_MD_CTX *md, char *err, size_t errlen)
	    __attribute__((warn_unused_result));
/* The segments of dirfd, ascending, in *out (owned by the caller). */
int	audit_list_segments(int dirfd, const char *dir, uint64_t **out,
	    size_t *n, char *err, size_t errlen)
	    __attribute__((warn_unused_result));
/* The bytes a checkpoint signs (audit.h). */
void	audit_checkpoint_msg(uint8_t out[CKPT_MSG_LEN], uint64_t seq,
	    const uint8_t hash[AUDIT_HASH_LEN], int64_t time);

/* snprintf into err (if any), for every error path of the audit code. */
void	audit_seterr(char *err, size_t errlen, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));

#endif
