/*
 * audit_cosign.c: witnesses in cpx-audit verify (docs/witness.md). While
 * audit_verify.c walks the log it hands every record here; this file
 * remembers each checkpoint, checks each COSIGNATURE record against the
 * checkpoint it names and against its witness's key (and, with the CA,
 * that the CA vouches for the witness), and at the end reports which
 * countries cosigned which checkpoint and whether enough did
 * (--require-witnesses N). Owns its table of checkpoints.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/x509.h>

#include "audit.h"
#include "audit_cosign.h"
#include "cosign.h"
#include "errfmt.h"
#include "identity.h"
#include "sign.h"

#define MAX_COUNTRIES	64	/* distinct cosigning countries listed */
#define LIST_LAST	50	/* cosigned checkpoints printed */

struct ckpt {
	uint64_t	 record;		/* the CHECKPOINT record */
	uint64_t	 seq;			/* its checkpoint_seq */
	int64_t		 time;
	uint8_t		 hash[CHAIN_HASH_LEN];
	uint8_t		 cert_hash[32];
	char		 countries[MAX_COUNTRIES][3];
	size_t		 ncountries;
	char		 nodes[256];		/* "HR/hr-ncp, ..." */
};

struct audit_cosign {
	struct trust	*t;			/* borrowed, may be NULL */
	unsigned int	 require;
	int64_t		 grace_ms;
	struct ckpt	*v;
	size_t		 n, cap;
	uint64_t	 cosigs, uncounted, alarms;
	int64_t		 first_time, last_time;
	uint64_t	 records;
	char		 alarm_text[512];	/* the first alarm */
};

struct audit_cosign *
audit_cosign_new(struct trust *t, unsigned int require, int64_t grace_ms)
{
	struct audit_cosign	*cs;

	if ((cs = calloc(1, sizeof(*cs))) == NULL)
		return NULL;
	cs->t = t;
	cs->require = require;
	cs->grace_ms = grace_ms;
	return cs;
}

void
audit_cosign_free(struct audit_cosign **csp)
{
	if (csp == NULL || *csp == NULL)
		return;
	free((*csp)->v);
	free(*csp);
	*csp = NULL;
}

/* The checkpoint of record `record`, or NULL: records ascend, bisect. */
static struct ckpt *
find(struct audit_cosign *cs, uint64_t record)
{
	size_t	lo = 0, hi = cs->n, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (cs->v[mid].record < record)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < cs->n && cs->v[lo].record == record ? &cs->v[lo] : NULL;
}

static int
note_checkpoint(struct audit_cosign *cs, const Cpx__AuditRecord *rec,
    char *why, size_t whylen)
{
	struct ckpt	*k, *nv;
	size_t		 ncap;

	if (rec->checkpoint_hash.len != CHAIN_HASH_LEN)
		return errf(why, whylen, "checkpoint hash is not %u bytes",
		    CHAIN_HASH_LEN);
	if (cs->n == cs->cap) {
		ncap = cs->cap ? cs->cap * 2 : 64;
		if ((nv = reallocarray(cs->v, ncap, sizeof(*nv))) == NULL)
			return errf(why, whylen, "out of memory");
		cs->v = nv;
		cs->cap = ncap;
	}
	k = &cs->v[cs->n++];
	memset(k, 0, sizeof(*k));
	k->record = rec->seq;
	k->seq = rec->checkpoint_seq;
	k->time = rec->time;
	memcpy(k->hash, rec->checkpoint_hash.data, CHAIN_HASH_LEN);
	if (EVP_Digest(rec->checkpoint_cert.data, rec->checkpoint_cert.len,
	    k->cert_hash, NULL, EVP_sha256(), NULL) != 1)
		return errf(why, whylen, "cannot hash the checkpoint "
		    "certificate");
	return 0;
}

static void
add_country(struct ckpt *k, const struct identity *id)
{
	size_t	i, used;

	for (i = 0; i < k->ncountries; i++)
		if (strcmp(k->countries[i], id->country) == 0)
			return;
	if (k->ncountries == MAX_COUNTRIES)
		return;
	snprintf(k->countries[k->ncountries++], 3, "%s", id->country);
	used = strlen(k->nodes);
	if (used + 4 < sizeof(k->nodes))
		snprintf(k->nodes + used, sizeof(k->nodes) - used, "%s%s/%s",
		    used ? ", " : "", id->country, id->node);
}

/*
 * A cosignature must name a checkpoint of this very log exactly as the
 * log has it, and verify with its witness's key: the broker checked both
 * before writing it, so a mismatch is tampering. Whether it counts is
 * the CA's word on the witness certificate (revoked: not counted).
 */
static int
take_cosig(struct audit_cosign *cs, const Cpx__AuditRecord *rec, char *why,
    size_t whylen)
{
	struct ckpt	*k;
	struct identity	 id;
	X509		*x = NULL;
	char		 w[256];
	int		 reason, ret = -1;

	cs->cosigs++;
	if ((k = find(cs, rec->cosigned_record)) == NULL ||
	    k->seq != rec->cosigned_seq || k->time != rec->cosigned_time ||
	    rec->cosigned_hash.len != CHAIN_HASH_LEN ||
	    rec->cosigned_cert_hash.len != 32 ||
	    CRYPTO_memcmp(k->hash, rec->cosigned_hash.data,
	    CHAIN_HASH_LEN) != 0 ||
	    CRYPTO_memcmp(k->cert_hash, rec->cosigned_cert_hash.data,
	    32) != 0) {
		errf(why, whylen, "cosignature names checkpoint record %"
		    PRIu64 " (seq %" PRIu64 "), which this log does not have "
		    "as cosigned", rec->cosigned_record, rec->cosigned_seq);
		goto done;
	}
	if (cosign_verify_record(rec, &x, w, sizeof(w)) == -1) {
		errf(why, whylen, "%s", w);
		goto done;
	}
	if (identity_from_cert(x, &id, w, sizeof(w)) == -1) {
		errf(why, whylen, "cosignature: witness certificate: %s", w);
		goto done;
	}
	if (cs->t != NULL && trust_verify_cert(cs->t, x, &reason, w,
	    sizeof(w)) == -1) {
		printf("cosignature at record %" PRIu64 " by %s/%s not "
		    "counted: %s\n", rec->seq, id.country, id.node, w);
		cs->uncounted++;
		ret = 0;
		goto done;
	}
	add_country(k, &id);
	ret = 0;
done:
	ERR_clear_error();
	X509_free(x);
	return ret;
}

int
audit_cosign_record(struct audit_cosign *cs, const Cpx__AuditRecord *rec,
    char *why, size_t whylen)
{
	if (cs->records++ == 0)
		cs->first_time = rec->time;
	cs->last_time = rec->time;
	switch (rec->kind) {
	case CPX__RECORD_KIND__RECORD_CHECKPOINT:
		return note_checkpoint(cs, rec, why, whylen);
	case CPX__RECORD_KIND__RECORD_COSIGNATURE:
		return take_cosig(cs, rec, why, whylen);
	case CPX__RECORD_KIND__RECORD_WITNESS_ALARM:
		if (cs->alarms++ == 0)
			snprintf(cs->alarm_text, sizeof(cs->alarm_text),
			    "record %" PRIu64 " from %s/%s: %.400s", rec->seq,
			    rec->peer_country, rec->peer_node, rec->text);
		printf("WITNESS ALARM at record %" PRIu64 " from %s/%s\n",
		    rec->seq, rec->peer_country, rec->peer_node);
		return 0;
	default:
		return 0;
	}
}

int
audit_cosign_report(struct audit_cosign *cs, char *err, size_t errlen)
{
	const struct ckpt	*k, *best = NULL;
	size_t			 i, listed = 0, cosigned = 0;

	for (i = 0; i < cs->n; i++)
		if (cs->v[i].ncountries > 0)
			cosigned++;
	for (i = 0; i < cs->n; i++) {
		k = &cs->v[i];
		if (k->ncountries == 0)
			continue;
		if (cosigned - listed++ > LIST_LAST)
			continue;
		printf("checkpoint seq %" PRIu64 " (record %" PRIu64 "): "
		    "cosigned by %zu countr%s: %s%s\n", k->seq, k->record,
		    k->ncountries, k->ncountries == 1 ? "y" : "ies", k->nodes,
		    cs->t == NULL ? " (certificates not checked: no --ca)" :
		    "");
	}
	if (cosigned > LIST_LAST)
		printf("(%zu earlier cosigned checkpoints not listed)\n",
		    cosigned - LIST_LAST);
	printf("cosignatures: %" PRIu64 " on %zu of %zu checkpoints%s\n",
	    cs->cosigs, cosigned, cs->n, cs->uncounted > 0 ?
	    " (some not counted: see above)" : "");
	if (cs->alarms > 0)
		printf("witness alarms: %" PRIu64 "; first: %s\n", cs->alarms,
		    cs->alarm_text);
	if (cs->require == 0)
		return 0;
	if (cs->alarms > 0)
		return errf(err, errlen, "%" PRIu64 " witness alarm(s) in the "
		    "log (first: %s): a witness saw the log cut, rewritten or "
		    "forked", cs->alarms, cs->alarm_text);
	for (i = cs->n; i-- > 0;)
		if (cs->v[i].ncountries >= cs->require) {
			best = &cs->v[i];
			break;
		}
	if (cs->records == 0)
		return 0;
	if (best == NULL)
		return errf(err, errlen, "no checkpoint is cosigned by %u "
		    "countries (--require-witnesses %u)", cs->require,
		    cs->require);
	/*
	 * Records after the newest checkpoint N countries cosigned are not
	 * witnessed yet; a recent tail is normal (witnesses run every few
	 * minutes), an old one means witnesses were kept away.
	 */
	if (best->time < cs->last_time - cs->grace_ms)
		return errf(err, errlen, "records after seq %" PRIu64 " (the "
		    "newest checkpoint %u countries cosigned) span %" PRId64
		    " s, over the grace of %" PRId64 " s (--witness-grace): "
		    "not witnessed", best->seq, cs->require,
		    (cs->last_time - best->time) / 1000, cs->grace_ms / 1000);
	printf("witnessed: up to seq %" PRIu64 " by %zu countries (at least "
	    "%u required); %" PRIu64 " s of records after it, within the "
	    "grace\n", best->seq, best->ncountries, cs->require,
	    (cs->last_time - best->time) / 1000);
	return 0;
}
