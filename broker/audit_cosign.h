/*
 * audit_cosign.h: witnesses' cosignatures in the offline check of a log
 * (cpx-audit verify; docs/witness.md). audit_verify.c hands it each
 * valid record through struct audit_verify_opts; audit_main.c prints
 * the report.
 */
#ifndef CPX_AUDIT_COSIGN_H
#define CPX_AUDIT_COSIGN_H

#include <stddef.h>
#include <stdint.h>

#include "proto/cpx.pb-c.h"

struct trust;
struct audit_cosign;

/* Default --witness-grace: records this much older than the log's last
 * may not lie beyond the newest checkpoint enough countries cosigned. */
#define AUDIT_COSIGN_GRACE_MS	(3600 * 1000)

/*
 * A collector. t (borrowed, may be NULL: signatures only) judges the
 * witnesses' certificates; require: distinct countries a checkpoint
 * needs (0: report only). Returns an owned collector
 * (audit_cosign_free) or NULL when out of memory.
 */
struct audit_cosign *audit_cosign_new(struct trust *t, unsigned int require,
	    int64_t grace_ms);
void	audit_cosign_free(struct audit_cosign **cs);

/*
 * One record of the log, in order, already checked by the chain.
 * Returns 0, or -1 with why[] if a cosignature does not match the
 * checkpoint it names or does not verify (the log was tampered with).
 */
int	audit_cosign_record(struct audit_cosign *cs,
	    const Cpx__AuditRecord *rec, char *why, size_t whylen)
	    __attribute__((warn_unused_result));

/*
 * Print, per cosigned checkpoint, which countries and nodes cosigned it,
 * and the witness alarms; with require, check it. Returns 0, or -1 with
 * err[] saying what is missing.
 */
int	audit_cosign_report(struct audit_cosign *cs, char *err,
	    size_t errlen) __attribute__((warn_unused_result));

#endif
