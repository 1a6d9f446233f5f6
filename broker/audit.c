/*
 * audit.c: the segment-file store of the audit log (audit.h): opening
 * and closing it, and its durable state.
 *
 * Owns the log directory while the broker runs (flock on it, so a second
 * broker cannot interleave its own chain) and the struct audit (declared
 * in audit_impl.h). The work is done by one file per job, in the order a
 * record meets them: audit_frame.c (record format, chain hash, the one
 * parser), audit_writer.c (pending batch, group commit, rollback),
 * audit_checkpoint.c (signed checkpoints), audit_mark.c (the high-water
 * mark: how long the log is), audit_segment.c (segment files
 * and recovery at open), audit_index.c (the in-memory index) and
 * audit_cursor.c (reading in order). audit_verify.c is the offline
 * check of a log directory, for cpx-audit.
 */
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "audit.h"
#include "audit_impl.h"
#include "audit_pg.h"
#include "log.h"

struct audit *
audit_open(const char *dir, EVP_PKEY *key, X509 *cert, char *err,
    size_t errlen)
{
	return audit_open_flags(dir, key, cert, 0, err, errlen);
}

/*
 * After recovery: bring the high-water mark up to the log as checked
 * (records written after it, a torn tail cut, checkpoints whose
 * signatures were just checked become the trusted point), creating it
 * for a new log. A log taken without a mark says so in a record.
 */
static int
settle_mark(struct audit *a, char *err, size_t errlen)
{
	Cpx__AuditRecord	 rec = CPX__AUDIT_RECORD__INIT;
	struct audit_mark	 m = a->mark;
	char			 text[256];
	uint64_t		 seq;
	int			 waived;

	waived = !a->mark_found && a->durable_seq > 0;
	m.last_seq = a->durable_seq;
	memcpy(m.last_hash, a->durable_hash, AUDIT_HASH_LEN);
	if (a->last_ckpt > m.trusted_seq) {
		m.trusted_seq = a->last_ckpt;
		memcpy(m.trusted_hash, a->last_ckpt_hash, AUDIT_HASH_LEN);
	}
	if (!a->mark_found) {
		if (audit_mark_create(a->dirfd, a->dir, &m, &a->mark_fd, err,
		    errlen) == -1)
			return -1;
	} else {
		if (audit_mark_open(a->dirfd, a->dir, &a->mark_fd, err,
		    errlen) == -1)
			return -1;
		if (memcmp(&m, &a->mark, sizeof(m)) != 0 &&
		    audit_mark_write(a->mark_fd, &m) == -1) {
			audit_seterr(err, errlen, "audit: %s/%s: write: %s",
			    a->dir, AUDIT_MARK_FILE, strerror(errno));
			return -1;
		}
	}
	a->mark = m;
	audit_reset_pending(a);
	log_info("audit: %s: %" PRIu64 " record(s) checked against the chain, "
	    "their checkpoints and the high-water mark; %" PRIu64 " "
	    "checkpoint signature(s) checked since the trusted one", a->dir,
	    a->durable_seq, a->ckpt_checked);
	if (!waived)
		return 0;
	snprintf(text, sizeof(text), "started without a high-water mark "
	    "(--accept-log-without-mark): records 1..%" PRIu64 " taken as "
	    "the whole log; %" PRIu64 " checkpoint signature(s) checked",
	    a->durable_seq, a->ckpt_checked);
	log_warnx("audit: %s: %s", a->dir, text);
	rec.kind = CPX__RECORD_KIND__RECORD_OPERATOR_OVERRIDE;
	rec.text = text;
	if (audit_append(a, &rec, &seq) == -1 ||
	    audit_commit(a, err, errlen) == -1) {
		if (err != NULL && err[0] == '\0')
			audit_seterr(err, errlen, "audit: %s: cannot record "
			    "the override", a->dir);
		return -1;
	}
	return 0;
}

struct audit *
audit_open_flags(const char *dir, EVP_PKEY *key, X509 *cert, unsigned flags,
    char *err, size_t errlen)
{
	struct audit	*a = NULL;
	unsigned char	*p;
	int		 len;

	audit_clearerr(err, errlen);
	if ((a = calloc(1, sizeof(*a))) == NULL) {
		audit_seterr(err, errlen, "audit: out of memory");
		goto fail;
	}
	a->dirfd = -1;
	a->fd = -1;
	a->mark_fd = -1;
	a->cm_efd = -1;
	a->key = key;
	a->cert = cert;
	a->flags = flags;
	a->seg_bytes = AUDIT_SEGMENT_BYTES;
	if ((a->dir = strdup(dir)) == NULL ||
	    (a->md = audit_sha256_ctx(&a->sha256)) == NULL) {
		audit_seterr(err, errlen, "audit: out of memory");
		goto fail;
	}
	if (key != NULL) {
		if (cert == NULL || (len = i2d_X509(cert, NULL)) <= 0 ||
		    (a->cert_der = malloc((size_t)len)) == NULL ||
		    (a->own_pub = X509_get_pubkey(cert)) == NULL) {
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
	if (audit_recover(a, err, errlen) == -1)
		goto fail;
	audit_reset_pending(a);
	if (settle_mark(a, err, errlen) == -1)
		goto fail;
	return a;
fail:
	if (a != NULL)
		a->broken = 1;	/* close writes nothing */
	audit_close(&a);
	return NULL;
}

void
audit_set_segment_bytes(struct audit *a, uint64_t bytes)
{
	if (a->pg != NULL)
		return;
	a->seg_bytes = bytes > 0 ? bytes : 1;
}

size_t
audit_pending(const struct audit *a)
{
	if (a->pg != NULL)
		return a->pg->pend.n;
	return a->npending;
}

uint64_t
audit_last_seq(const struct audit *a)
{
	if (a->pg != NULL)
		return a->pg->head_seq;
	return a->durable_seq;
}

void
audit_last_hash(const struct audit *a, uint8_t out[AUDIT_HASH_LEN])
{
	if (a->pg != NULL) {
		memcpy(out, a->pg->head_hash, AUDIT_HASH_LEN);
		return;
	}
	memcpy(out, a->durable_hash, AUDIT_HASH_LEN);
}

int
audit_seal(struct audit *a, char *err, size_t errlen)
{
	if (a->pg != NULL)
		return audit_pg_seal(a->pg, err, errlen);
	audit_clearerr(err, errlen);
	if (a->since_checkpoint > 0 && a->key != NULL &&
	    audit_checkpoint(a) == -1)
		log_warnx("audit: %s: no checkpoint at close", a->dir);
	return audit_commit(a, err, errlen);
}

void
audit_close(struct audit **ap)
{
	struct audit	*a;
	char		 err[512];

	if (ap == NULL || (a = *ap) == NULL)
		return;
	*ap = NULL;
	if (a->pg != NULL) {
		audit_pg_free(&a->pg);
		free(a);
		return;
	}
	if (a->dirfd != -1 && !a->broken && audit_seal(a, err,
	    sizeof(err)) == -1)
		log_warnx("%s", err);
	if (a->inflight && !a->cm_inline &&
	    audit_commit_wait(a, err, sizeof(err)) == -1)
		log_warnx("%s", err);
	audit_committer_stop(a);
	audit_job_free(&a->job);
	if (a->fd != -1 && close(a->fd) == -1)
		log_warn("audit: %s: close", a->dir);
	if (a->mark_fd != -1 && close(a->mark_fd) == -1)
		log_warn("audit: %s/%s: close", a->dir, AUDIT_MARK_FILE);
	if (a->dirfd != -1)
		close(a->dirfd);	/* releases the flock */
	free(a->batch);
	free(a->parts);
	free(a->pend_times);
	free(a->segs);
	audit_index_free(&a->ix);
	free(a->cert_der);
	EVP_PKEY_free(a->own_pub);
	EVP_MD_CTX_free(a->md);
	EVP_MD_free(a->sha256);
	free(a->dir);
	free(a);
}
