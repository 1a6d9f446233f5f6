/*
 * audit_verify.c: the offline check of an audit log directory (cpx-audit
 * verify): the hash chain through the shared parser (audit_impl.h), every
 * broker checkpoint against the chain and its signature, and every
 * accepted alert end to end against the network CA and CRL; signatures
 * are checked by lib/sign.c, as everywhere else. It only reads, takes no
 * lock and cuts nothing: a torn tail is counted, not cut.
 *
 * A directory is read through the segment-file store's parser
 * (audit_impl.h: the reader, audit_scan_segment, the segment listing),
 * not a struct audit or a cursor, so it judges exactly the bytes a
 * broker would recover from. Any other store (PostgreSQL) is read
 * through a cursor of audit.h (audit_verify_store). Both walks hand each
 * record to one per-record check (verify_record), so a directory and a
 * database are judged alike, and a directory exported from a database
 * verifies with the same result.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "audit.h"
#include "audit_cosign.h"
#include "audit_impl.h"
#include "chain.h"
#include "cpx_limits.h"
#include "identity.h"
#include "sign.h"
#include "wire.h"


struct verify {
	struct trust			*t;
	struct audit_verify_stats	*st;
	const struct audit_verify_opts	*o;
	uint8_t				 signer[32]; /* last one's */
	int				 have_signer;
};

/* "CN=..., SAN 'a', 'b'" of a signer, for the change report. */
static void
signer_desc(X509 *x, char *buf, size_t len)
{
	GENERAL_NAMES	*gens;
	GENERAL_NAME	*g;
	char		 cn[CPX_MAX_NODE_NAME + 1] = "?";
	size_t		 used;
	int		 i, n, first = 1;

	if (X509_NAME_get_text_by_NID(X509_get_subject_name(x),
	    NID_commonName, cn, sizeof(cn)) <= 0)
		snprintf(cn, sizeof(cn), "?");
	n = snprintf(buf, len, "CN=%s", cn);
	used = n > 0 ? (size_t)n : 0;
	gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	for (i = 0; gens != NULL && i < sk_GENERAL_NAME_num(gens) &&
	    used < len; i++) {
		g = sk_GENERAL_NAME_value(gens, i);
		if (g->type != GEN_DNS)
			continue;
		n = snprintf(buf + used, len - used, "%s%.*s", first ?
		    " DNS:" : ",", ASN1_STRING_length(g->d.dNSName) > 64 ? 64 :
		    ASN1_STRING_length(g->d.dNSName),
		    (const char *)ASN1_STRING_get0_data(g->d.dNSName));
		if (n > 0)
			used += (size_t)n;
		first = 0;
	}
	GENERAL_NAMES_free(gens);
	/* Certificate text reaches a terminal: printable only. */
	for (i = 0; buf[i] != '\0'; i++)
		if (buf[i] < 0x20 || buf[i] > 0x7e)
			buf[i] = '?';
}

/* 1 if x carries name in its subjectAltName (DNS or IP). */
static int
has_name(X509 *x, const char *name)
{
	return X509_check_host(x, name, 0,
	    X509_CHECK_FLAG_NEVER_CHECK_SUBJECT, NULL) == 1 ||
	    X509_check_ip_asc(x, name, 0) == 1;
}

/* 1 if x satisfies a pin of o (a pinned certificate, or a name). */
static int
signer_pinned(const struct verify *v, X509 *x, const uint8_t fpr[32])
{
	uint8_t	 h[32];
	size_t	 i;
	int	 ok = 0;

	for (i = 0; i < v->o->nbroker_certs; i++)
		if (X509_digest(v->o->broker_certs[i], EVP_sha256(), h,
		    NULL) == 1 && CRYPTO_memcmp(h, fpr, sizeof(h)) == 0)
			return 1;
	/* A name pins a CA-issued broker identity: needs the CA. */
	if (v->t != NULL) {
		ok = v->o->broker_name != NULL && has_name(x,
		    v->o->broker_name);
		for (i = 0; !ok && i < v->o->nbroker_names; i++)
			ok = has_name(x, v->o->broker_names[i]);
	}
	ERR_clear_error();
	return ok;
}

/*
 * Count the checkpoint of seq for signer fpr (x): the per-broker tally
 * a shared log is summarised by. Returns 1 if this signer signs its
 * first checkpoint here, else 0.
 */
static int
count_signer(struct verify *v, X509 *x, const uint8_t fpr[32], uint64_t seq)
{
	struct audit_verify_stats	*st = v->st;
	struct audit_verify_signer	*g;
	size_t				 i;

	for (i = 0; i < st->nsigners; i++)
		if (CRYPTO_memcmp(st->signers[i].fpr, fpr, 32) == 0) {
			st->signers[i].checkpoints++;
			return 0;
		}
	if (st->nsigners == AUDIT_VERIFY_SIGNERS) {
		st->other_signed++;
		return 0;
	}
	g = &st->signers[st->nsigners++];
	memcpy(g->fpr, fpr, sizeof(g->fpr));
	if (X509_NAME_get_text_by_NID(X509_get_subject_name(x),
	    NID_commonName, g->name, sizeof(g->name)) <= 0)
		snprintf(g->name, sizeof(g->name), "?");
	/* Certificate text reaches a terminal: printable only. */
	for (i = 0; g->name[i] != '\0'; i++)
		if (g->name[i] < 0x21 || g->name[i] > 0x7e)
			g->name[i] = '?';
	g->checkpoints = 1;
	g->first_seq = seq;
	return 1;
}

/*
 * Who signed this checkpoint, against what the caller pinned: a
 * rewritten log re-signed with any key the CA ever issued (a node's, an
 * old broker's) must not pass. In a log of one broker every change of
 * signer is reported; in a shared one, each broker's first checkpoint.
 */
static int
check_signer(struct verify *v, const Cpx__AuditRecord *rec, X509 *x,
    char *why, size_t whylen)
{
	uint8_t	 fpr[32];
	char	 from[65], to[65], desc[256], w[256];
	int	 reason, pinned, changed, first, multi, report;

	if (X509_digest(x, EVP_sha256(), fpr, NULL) != 1) {
		audit_seterr(why, whylen, "checkpoint certificate: cannot "
		    "hash");
		return -1;
	}
	if (v->t != NULL && trust_verify_broker_cert(v->t, x, &reason, w,
	    sizeof(w)) == -1) {
		audit_seterr(why, whylen, "checkpoint certificate: %s", w);
		return -1;
	}
	multi = v->o != NULL && v->o->multi_broker;
	changed = v->have_signer && CRYPTO_memcmp(fpr, v->signer,
	    sizeof(fpr)) != 0;
	first = count_signer(v, x, fpr, rec->seq);
	report = multi ? first && v->have_signer : changed;
	if (changed)
		v->st->signer_changes++;
	if (report) {
		sign_hex(v->signer, sizeof(v->signer), from);
		sign_hex(fpr, sizeof(fpr), to);
		signer_desc(x, desc, sizeof(desc));
		if (v->o != NULL && v->o->on_signer_change != NULL)
			v->o->on_signer_change(v->o->arg, rec->seq, from, to,
			    desc);
	}
	memcpy(v->signer, fpr, sizeof(fpr));
	v->have_signer = 1;
	pinned = v->o != NULL && (v->o->nbroker_certs > 0 ||
	    v->o->broker_name != NULL || v->o->nbroker_names > 0);
	if (pinned && !signer_pinned(v, x, fpr)) {
		signer_desc(x, desc, sizeof(desc));
		audit_seterr(why, whylen, "checkpoint signed by %s, not the "
		    "pinned broker", desc);
		return -1;
	}
	/* Without a pin, the first signer stands for the one broker. */
	if (!pinned && changed && !multi && v->t != NULL) {
		audit_seterr(why, whylen, "checkpoint signer changed and no "
		    "pin (--broker-cert, --broker-name) vouches for the new "
		    "one (a log several brokers share: --multi-broker)");
		return -1;
	}
	return 0;
}

/*
 * A checkpoint must cover the record before it with the chain hash the
 * verifier computed (a forged or replayed checkpoint fails here), and be
 * signed by the key of its certificate, which the CA must vouch for as a
 * broker's when one is given (else anyone rewriting the log could re-sign
 * it), and which must satisfy the pins (check_signer).
 */
static int
verify_checkpoint(struct verify *v, const Cpx__AuditRecord *rec,
    const uint8_t *prev, char *why, size_t whylen)
{
	X509		*x = NULL;
	uint8_t		 fpr[AUDIT_HASH_LEN];
	char		 cn[CPX_MAX_NODE_NAME + 1], desc[256], shown[80];
	int		 ret = -1;

	if (rec->checkpoint_seq != rec->seq - 1) {
		audit_seterr(why, whylen, "checkpoint covers record %" PRIu64
		    ", not the one before it", rec->checkpoint_seq);
		goto done;
	}
	if (rec->checkpoint_hash.len != AUDIT_HASH_LEN ||
	    CRYPTO_memcmp(rec->checkpoint_hash.data, prev,
	    AUDIT_HASH_LEN) != 0) {
		audit_seterr(why, whylen, "checkpoint hash differs from the chain "
		    "hash at record %" PRIu64, rec->checkpoint_seq);
		goto done;
	}
	if (audit_checkpoint_verify(rec, prev, &x, why, whylen) == -1)
		goto done;
	/* Only a signature that verifies says who signed. */
	if (check_signer(v, rec, x, why, whylen) == -1)
		goto done;
	/*
	 * On a shared log a checkpoint names the broker that wrote it: the
	 * name must be its signer's, or the log would credit a checkpoint
	 * (and the records it vouches for) to a broker that never signed it.
	 */
	if (rec->broker != NULL && rec->broker[0] != '\0' &&
	    (audit_cert_cn(x, cn, sizeof(cn)) == -1 ||
	    strcmp(cn, rec->broker) != 0)) {
		signer_desc(x, desc, sizeof(desc));
		audit_seterr(why, whylen, "checkpoint names broker \"%s\", but "
		    "it is signed by %s", wire_printable(rec->broker, shown,
		    sizeof(shown)), desc);
		goto done;
	}
	if (EVP_Digest(rec->checkpoint_cert.data, rec->checkpoint_cert.len,
	    fpr, NULL, EVP_sha256(), NULL) == 1)
		sign_hex(fpr, sizeof(fpr), v->st->checkpoint_cert);
	ret = 0;
done:
	ERR_clear_error();
	X509_free(x);
	return ret;
}

/*
 * An accepted alert must verify end to end as the broker claimed, with
 * origin == signer country == the peer's country, and the record's
 * alert_id must be the alert's: else the log lies about what was
 * accepted.
 */
static int
verify_alert(struct verify *v, const Cpx__AuditRecord *rec, char *why,
    size_t whylen)
{
	Cpx__Alert	*al = NULL;
	struct identity	 signer;
	char		 w[256];
	int		 reason, ret = -1;

	if (rec->alert == NULL) {
		audit_seterr(why, whylen, "accepted-alert record without the alert");
		goto done;
	}
	if (v->t == NULL) {
		v->st->alerts_unchecked++;
		ret = 0;
		goto done;
	}
	if (sign_verify_alert_history(v->t, rec->alert, &al, &signer, &reason, w,
	    sizeof(w)) == -1) {
		audit_seterr(why, whylen, "alert: %s", w);
		goto done;
	}
	if (sign_verify_alert_origin(al, &signer, &reason, w,
	    sizeof(w)) == -1) {
		audit_seterr(why, whylen, "alert: %s", w);
		goto done;
	}
	if (rec->peer_country != NULL && rec->peer_country[0] != '\0' &&
	    strcmp(rec->peer_country, signer.country) != 0) {
		audit_seterr(why, whylen, "alert from %s accepted from a peer of %s",
		    signer.country, rec->peer_country);
		goto done;
	}
	if (rec->alert_id != NULL && rec->alert_id[0] != '\0' &&
	    (al->id == NULL || strcmp(rec->alert_id, al->id) != 0)) {
		audit_seterr(why, whylen, "record names alert_id other than the "
		    "alert's");
		goto done;
	}
	ret = 0;
done:
	if (al != NULL)
		cpx__alert__free_unpacked(al, NULL);
	return ret;
}

static int
verify_record(void *arg, const Cpx__AuditRecord *rec, const uint8_t *prev,
    char *why, size_t whylen)
{
	struct verify	*v = arg;

	/* Witnesses (audit_cosign.c): checkpoints, cosignatures, alarms. */
	if (v->o != NULL && v->o->cosign != NULL &&
	    audit_cosign_record(v->o->cosign, rec, why, whylen) == -1)
		return -1;
	switch (rec->kind) {
	case CPX__RECORD_KIND__RECORD_CHECKPOINT:
		v->st->checkpoints++;
		return verify_checkpoint(v, rec, prev, why, whylen);
	case CPX__RECORD_KIND__RECORD_ALERT_ACCEPTED:
		v->st->alerts++;
		return verify_alert(v, rec, why, whylen);
	default:
		/*
		 * Every other kind the schema knows carries nothing to check
		 * beyond the chain, so a new kind needs no edit here unless
		 * it needs checking; one the schema does not know is refused.
		 */
		if (protobuf_c_enum_descriptor_get_value(
		    &cpx__record_kind__descriptor, (int)rec->kind) != NULL &&
		    rec->kind != CPX__RECORD_KIND__RECORD_UNSPECIFIED)
			return 0;
		audit_seterr(why, whylen, "unknown record kind %d",
		    (int)rec->kind);
		return -1;
	}
}

int
audit_verify_dir_stats(const char *dir, struct trust *t,
    struct audit_verify_stats *st, char *err, size_t errlen)
{
	return audit_verify_dir_opts(dir, t, NULL, st, err, errlen);
}

int
audit_verify_dir_opts(const char *dir, struct trust *t,
    const struct audit_verify_opts *o, struct audit_verify_stats *st,
    char *err, size_t errlen)
{
	struct verify	 v;
	struct audit_mark m;
	struct audit_scan	 s;
	struct audit_rd	 r;
	struct stat	 sb;
	EVP_MD		*sha = NULL;
	EVP_MD_CTX	*md = NULL;
	uint64_t	*firsts = NULL;
	char		 name[SEG_NAME_LEN], tmp[512];
	size_t		 n = 0, i;
	int		 dirfd = -1, fd = -1, ret = -1;

	memset(st, 0, sizeof(*st));
	memset(&r, 0, sizeof(r));
	memset(&s, 0, sizeof(s));
	memset(&m, 0, sizeof(m));
	audit_clearerr(err, errlen);
	memset(&v, 0, sizeof(v));
	v.t = t;
	v.st = st;
	v.o = o;
	s.next_seq = 1;
	s.fn = verify_record;
	s.arg = &v;
	if ((md = audit_sha256_ctx(&sha)) == NULL ||
	    audit_rd_init(&r, -1, READ_BUF, 0) == -1) {
		audit_seterr(err, errlen, "audit: out of memory");
		goto done;
	}
	if ((dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1) {
		audit_seterr(err, errlen, "audit: %s: %s", dir, strerror(errno));
		goto done;
	}
	/*
	 * The mark before the segments: a broker writing meanwhile makes
	 * its records durable before its mark, so the log read after is
	 * never shorter than the mark read before.
	 */
	if (audit_mark_read(dirfd, dir, &m, &st->mark_found, tmp,
	    sizeof(tmp)) == -1) {
		audit_seterr(err, errlen, "audit: %s", tmp);
		goto done;
	}
	st->mark_seq = m.last_seq;
	memcpy(st->mark_hash, m.last_hash, AUDIT_HASH_LEN);
	st->mark_trusted = m.trusted_seq;
	s.committed = st->mark_found ? m.last_seq : UINT64_MAX;
	s.watch_seq = m.last_seq;
	if (audit_list_segments(dirfd, dir, &firsts, &n, err, errlen) == -1)
		goto done;
	for (i = 0; i < n; i++) {
		audit_seg_name(name, firsts[i]);
		s.name = name;
		s.last = (i == n - 1);
		if (firsts[i] != s.next_seq) {
			audit_seterr(err, errlen, "audit: %s: starts at record %"
			    PRIu64 " but record %" PRIu64 " expected (a "
			    "segment is missing or misnamed)", name,
			    firsts[i], s.next_seq);
			goto done;
		}
		fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd == -1 || fstat(fd, &sb) == -1) {
			audit_seterr(err, errlen, "audit: %s/%s: %s", dir, name,
			    strerror(errno));
			goto done;
		}
		audit_rd_reset(&r, fd, 0);
		r.limit = (uint64_t)sb.st_size;
		if (audit_scan_segment(&r, &s, md, err, errlen) < 0) {
			snprintf(tmp, sizeof(tmp), "audit: %s", err);
			audit_seterr(err, errlen, "%s", tmp);
			goto done;
		}
		close(fd);
		fd = -1;
		st->segments++;
		st->torn_bytes = s.torn;
	}
	if (!st->mark_found && n > 0) {
		audit_seterr(err, errlen, "audit: %s: no high-water mark (%s): "
		    "the log's length cannot be checked, so records removed "
		    "from its end would not show (a log written before the "
		    "mark existed gets one when the broker starts with "
		    "--accept-log-without-mark)", dir, AUDIT_MARK_FILE);
		goto done;
	}
	if (s.next_seq - 1 < m.last_seq) {
		audit_seterr(err, errlen, "audit: %s: records %" PRIu64 "..%"
		    PRIu64 " are missing: the high-water mark (%s) says %"
		    PRIu64 " were committed, but the log ends at record %"
		    PRIu64 " (records or a segment were removed from its "
		    "end)", dir, s.next_seq, m.last_seq, AUDIT_MARK_FILE,
		    m.last_seq, s.next_seq - 1);
		goto done;
	}
	if (m.last_seq > 0 && (!s.watch_seen || CRYPTO_memcmp(s.watch_hash,
	    m.last_hash, AUDIT_HASH_LEN) != 0)) {
		audit_seterr(err, errlen, "audit: %s: the chain hash at "
		    "record %" PRIu64 " differs from the one the high-water mark "
		    "recorded: records up to %" PRIu64 " were altered and the "
		    "chain recomputed", dir, m.last_seq, m.last_seq);
		goto done;
	}
	ret = 0;
done:
	st->records = s.nrecords;
	st->last_seq = s.next_seq - 1;
	memcpy(st->last_hash, s.hash, AUDIT_HASH_LEN);
	if (fd != -1)
		close(fd);
	if (dirfd != -1)
		close(dirfd);
	free(firsts);
	free(r.buf);
	EVP_MD_CTX_free(md);
	EVP_MD_free(sha);
	return ret;
}

int
audit_verify_store(struct audit *a, struct trust *t,
    const struct audit_verify_opts *o, struct audit_verify_stats *st,
    char *err, size_t errlen)
{
	struct verify		 v;
	struct audit_cursor	*c = NULL;
	Cpx__AuditRecord	*rec = NULL;
	EVP_MD			*sha = NULL;
	EVP_MD_CTX		*md = NULL;
	uint8_t			 hash[AUDIT_HASH_LEN];
	uint8_t			 next[AUDIT_HASH_LEN];
	uint8_t			 leaf[AUDIT_HASH_LEN];
	uint32_t		 len;
	uint64_t		 want;
	char			 why[512];
	int			 r, ret = -1;

	memset(st, 0, sizeof(*st));
	memset(hash, 0, sizeof(hash));
	audit_clearerr(err, errlen);
	memset(&v, 0, sizeof(v));
	v.t = t;
	v.st = st;
	v.o = o;
	/*
	 * The head before the records, as the mark before the segments:
	 * what the store says was committed must all be there, and chain to
	 * the head's hash. Later commits (other brokers) are not waited for.
	 */
	st->mark_found = 1;
	st->mark_seq = audit_last_seq(a);
	audit_last_hash(a, st->mark_hash);
	if ((md = audit_sha256_ctx(&sha)) == NULL) {
		audit_seterr(err, errlen, "audit: out of memory");
		goto done;
	}
	if (st->mark_seq > 0 && (c = audit_cursor_new(a, 1, 0, err,
	    errlen)) == NULL)
		goto done;
	while (st->records < st->mark_seq) {
		want = st->records + 1;
		r = audit_cursor_next_leaf(c, &rec, &len, leaf, why,
		    sizeof(why));
		if (r == -1) {
			audit_seterr(err, errlen, "%s", why);
			goto done;
		}
		if (r == 0) {
			audit_seterr(err, errlen, "audit: records %" PRIu64
			    "..%" PRIu64 " are missing: the head says %" PRIu64
			    " were committed, but the log ends at record %"
			    PRIu64, want, st->mark_seq, st->mark_seq,
			    want - 1);
			goto done;
		}
		/* The store checked the chain; its numbering is checked too. */
		if (rec->seq != want) {
			audit_seterr(err, errlen, "audit: record %" PRIu64
			    " read where record %" PRIu64 " belongs", rec->seq,
			    want);
			goto done;
		}
		if (chain_step(md, hash, want, len, leaf, next) == -1) {
			audit_seterr(err, errlen, "audit: out of memory");
			goto done;
		}
		if (verify_record(&v, rec, hash, why, sizeof(why)) == -1) {
			audit_seterr(err, errlen, "audit: record %" PRIu64
			    ": %s", want, why);
			goto done;
		}
		memcpy(hash, next, sizeof(hash));
		st->records++;
		cpx__audit_record__free_unpacked(rec, NULL);
		rec = NULL;
	}
	if (CRYPTO_memcmp(hash, st->mark_hash, AUDIT_HASH_LEN) != 0) {
		audit_seterr(err, errlen, "audit: the chain hash at record %"
		    PRIu64 " differs from the one the store's head holds: "
		    "records up to %" PRIu64 " were altered and the chain "
		    "recomputed, or the head was", st->mark_seq,
		    st->mark_seq);
		goto done;
	}
	ret = 0;
done:
	st->last_seq = st->records;
	memcpy(st->last_hash, hash, AUDIT_HASH_LEN);
	if (rec != NULL)
		cpx__audit_record__free_unpacked(rec, NULL);
	audit_cursor_free(&c);
	EVP_MD_CTX_free(md);
	EVP_MD_free(sha);
	return ret;
}

int
audit_verify_dir(const char *dir, struct trust *t, uint64_t *nrecords,
    char *err, size_t errlen)
{
	struct audit_verify_stats	st;
	int				ret;

	ret = audit_verify_dir_stats(dir, t, &st, err, errlen);
	*nrecords = ret == 0 ? st.records : 0;
	return ret;
}
