/*
 * audit.c: the segment-file store of the audit log (audit.h): opening
 * and closing it, and its durable state.
 *
 * Owns the log directory while the broker runs (flock on it, so a second
 * broker cannot interleave its own chain) and the struct audit (declared
 * in audit_impl.h). The work is done by one file per job, in the order a
 * record meets them: audit_frame.c (record format, chain hash, the one
 * parser), audit_writer.c (pending batch, group commit, rollback),
 * audit_checkpoint.c (signed checkpoints), audit_segment.c (segment files
 * and recovery at open), audit_index.c (the in-memory index) and
 * audit_cursor.c (reading in order). audit_verify.c is the offline
 * check of a log directory, for cpx-audit.
 */
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "audit.h"
#include "audit_impl.h"
#include "log.h"

struct audit *
audit_open(const char *dir, EVP_PKEY *key, X509 *cert, char *err,
    size_t errlen)
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
	a->key = key;
	a->cert = cert;
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
	if (audit_recover(a, err, errlen) == -1)
		goto fail;
	audit_reset_pending(a);
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
