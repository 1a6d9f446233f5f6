/*
 * witness_compare.c: the offline comparison of witnesses' signed heads
 * (cpx_witness_compare, `cpx witness compare`, docs/witness.md). It reads
 * the broker-signed checkpoints kept in state and evidence files of any
 * countries and proves a fork or rollback from the broker's own
 * signatures alone. Owns nothing between calls.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>

#include "chain.h"
#include "cosign.h"
#include "cpx_client.h"
#include "errfmt.h"
#include "sign.h"
#include "tlsctx.h"
#include "witness_impl.h"


/*
 * A signed head: every field but the file and signer's name is covered
 * by the broker's signature ("cpx-checkpoint-v1", lib/cosign.h). The
 * CHECKPOINT record itself is record seq + 1 of the log (the broker
 * writes it right after the record it covers; audit_verify.c checks it).
 */
struct head {
	const char	*file;
	uint64_t	 seq;
	uint8_t		 hash[CHAIN_HASH_LEN];
	int64_t		 time;
	char		 signer[65];	/* CN of the signing certificate */
};

/* Every broker-signed checkpoint in one file, appended to heads. */
static int
load_heads(const char *file, struct trust *t, struct head *heads, size_t *n,
    size_t cap, char *err, size_t errlen)
{
	static const char	*keys[] = { "checkpoint", "held", "seen" };
	Cpx__AuditRecord	*ck;
	X509			*x = NULL;
	uint8_t			*p, ch[32];
	size_t			 len, i;
	char			*buf, why[256];
	int			 reason, rc = -1, got = 0;

	if ((buf = malloc(WITNESS_FILE_MAX)) == NULL)
		return errf(err, errlen, "out of memory");
	if ((rc = witness_file_read(file, buf, WITNESS_FILE_MAX, err,
	    errlen)) != 0) {
		if (rc == 1)
			errf(err, errlen, "%s: no such file", file);
		rc = -1;
		goto done;
	}
	rc = -1;
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (witness_field_record(buf, keys[i], &p, &len) != 0)
			continue;
		ck = cpx__audit_record__unpack(NULL, len, p);
		free(p);
		/* Only checkpoints are the broker's word: skip the rest. */
		if (ck == NULL ||
		    ck->kind != CPX__RECORD_KIND__RECORD_CHECKPOINT) {
			if (ck != NULL)
				cpx__audit_record__free_unpacked(ck, NULL);
			continue;
		}
		x = NULL;
		if (cosign_verify_checkpoint(ck, &x, ch, why,
		    sizeof(why)) == -1 || (t != NULL &&
		    trust_verify_broker_cert(t, x, &reason, why,
		    sizeof(why)) == -1)) {
			if (x != NULL)
				X509_free(x);
			cpx__audit_record__free_unpacked(ck, NULL);
			errf(err, errlen, "%s: %s: %s", file, keys[i], why);
			goto done;
		}
		if (*n < cap) {
			if (X509_NAME_get_text_by_NID(X509_get_subject_name(x),
			    NID_commonName, heads[*n].signer,
			    sizeof(heads[*n].signer)) <= 0)
				snprintf(heads[*n].signer,
				    sizeof(heads[*n].signer), "?");
			heads[*n].file = file;
			heads[*n].seq = ck->checkpoint_seq;
			memcpy(heads[*n].hash, ck->checkpoint_hash.data,
			    CHAIN_HASH_LEN);
			heads[*n].time = ck->time;
			(*n)++;
		}
		X509_free(x);
		x = NULL;
		got++;
		cpx__audit_record__free_unpacked(ck, NULL);
	}
	if (got == 0) {
		errf(err, errlen, "%s: no broker-signed checkpoint in it (not "
		    "a witness state or evidence file)", file);
		goto done;
	}
	rc = 0;
done:
	free(buf);
	return rc;
}

static void
report_add(char *report, size_t len, size_t *used, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
report_add(char *report, size_t len, size_t *used, const char *fmt, ...)
{
	va_list	ap;
	int	n;

	if (*used >= len)
		return;
	va_start(ap, fmt);
	n = vsnprintf(report + *used, len - *used, fmt, ap);
	va_end(ap);
	if (n > 0)
		*used += (size_t)n < len - *used ? (size_t)n : len - *used - 1;
}

/*
 * What two signed heads prove on their own (docs/witness.md, "What
 * compare proves"). Adds a line to the report and returns 1 if they
 * prove a fork or rollback, else 0.
 */
static int
compare_pair(const struct head *a, const struct head *b, const char *who,
    char *report, size_t len, size_t *used)
{
	const struct head	*t;
	char			 ha[65], hb[65];

	if (b->seq < a->seq) {
		t = a;
		a = b;
		b = t;
	}
	witness_hex(a->hash, CHAIN_HASH_LEN, ha);
	witness_hex(b->hash, CHAIN_HASH_LEN, hb);
	if (a->seq == b->seq && memcmp(a->hash, b->hash,
	    CHAIN_HASH_LEN) != 0) {
		report_add(report, len, used, "FORK: seq %" PRIu64 " has hash "
		    "%s in %s and hash %s in %s, both signed by %s (%s, %s)\n",
		    a->seq, ha, a->file, hb, b->file, who, a->signer,
		    b->signer);
		return 1;
	}
	if (a->seq == b->seq && a->time != b->time) {
		/* One place in the log, two checkpoint records. */
		report_add(report, len, used, "FORK: record %" PRIu64 " is "
		    "the checkpoint over seq %" PRIu64 " signed at %" PRId64
		    " ms in %s and another signed at %" PRId64 " ms in %s, "
		    "both by %s (%s, %s): that record and what followed it "
		    "were replaced\n", a->seq + 1, a->seq, a->time, a->file,
		    b->time, b->file, who, a->signer, b->signer);
		return 1;
	}
	if (a->seq < b->seq && a->time > b->time) {
		report_add(report, len, used, "ROLLBACK: %s signed seq %"
		    PRIu64 " (%s, %s) after seq %" PRIu64 " (%s, %s): its log "
		    "was cut and grew again\n", who, a->seq, a->file,
		    a->signer, b->seq, b->file, b->signer);
		return 1;
	}
	return 0;
}

int
cpx_witness_compare(const char *const *files, size_t nfiles, const char *ca,
    char *report, size_t len)
{
	struct trust	*t = NULL;
	struct head	*heads = NULL;
	const char	*who;
	char		 err[512];
	size_t		 n = 0, cap = nfiles * 3, i, j, used = 0;
	uint64_t	 lo = UINT64_MAX, hi = 0;
	int		 rc = -1, proven = 0;

	if (len > 0)
		report[0] = '\0';
	if (ca != NULL && (t = trust_new(ca, NULL, err, sizeof(err))) == NULL) {
		report_add(report, len, &used, "%s\n", err);
		return -1;
	}
	/* Without the CA, a signature shows only its certificate's key. */
	who = t != NULL ? "the broker" : "the key of the certificate in each "
	    "file, not checked against a CA";
	if ((heads = calloc(cap ? cap : 1, sizeof(*heads))) == NULL) {
		report_add(report, len, &used, "out of memory\n");
		goto done;
	}
	for (i = 0; i < nfiles; i++)
		if (load_heads(files[i], t, heads, &n, cap, err,
		    sizeof(err)) == -1) {
			report_add(report, len, &used, "%s\n", err);
			goto done;
		}
	for (i = 0; i < n; i++) {
		lo = heads[i].seq < lo ? heads[i].seq : lo;
		hi = heads[i].seq > hi ? heads[i].seq : hi;
		for (j = i + 1; j < n; j++)
			proven |= compare_pair(&heads[i], &heads[j], who,
			    report, len, &used);
	}
	if (!proven)
		report_add(report, len, &used, "%zu signed checkpoint(s) from "
		    "%zu file(s), seq %" PRIu64 " to %" PRIu64 ": no fork or "
		    "rollback shown by the heads alone (heads at different "
		    "seqs agree unless the records between them differ, and "
		    "these files hold no records: let the witness with the "
		    "older head run a round)\n", n, nfiles, lo, hi);
	if (proven && t == NULL)
		report_add(report, len, &used, "note: without --ca anyone "
		    "can make such a file; give --ca CA.pem for a proof\n");
	rc = proven;
done:
	free(heads);
	trust_free(&t);
	return rc;
}
