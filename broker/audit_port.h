/*
 * audit_port.h: moving an audit log between the two stores, and setting
 * up a database for it (cpx-audit export, import, init-db). Export reads
 * a PostgreSQL log through the store interface (audit.h) and writes it
 * with the segment-file store; import writes a verified directory into
 * an empty database row by row, with the records' own seqs, times and
 * hashes, so neither direction changes a byte of the chain.
 */
#ifndef CPX_AUDIT_PORT_H
#define CPX_AUDIT_PORT_H

#include <stddef.h>
#include <stdint.h>

#include "audit.h"

/* Records per transaction of an import (and per commit of an export). */
#define AUDIT_PORT_BATCH	1000u
/* At most, so one INSERT stays within libpq's 65535 parameters. */
#define AUDIT_PORT_BATCH_MAX	5000u

/* What an export or import did. */
struct audit_port_result {
	uint64_t	records;	/* copied */
	uint64_t	batches;	/* commits */
	uint64_t	last_seq;	/* the head after it */
	uint8_t		last_hash[AUDIT_HASH_LEN];
};

/*
 * Write the log of the database dsn (read-only: its head when this
 * begins) into dir, which must not exist or be empty, as segment files
 * with a high-water mark: the same records, bytes, seqs, times and chain,
 * so cpx-audit verify dir finds the database's head and checkpoints.
 * Each record's bytes are checked to come out as the database holds
 * them, and the chain after each batch against the database's. Returns
 * 0 with *res, or -1 with err[] naming the seq (dir then holds a valid
 * prefix of the log).
 */
int	audit_port_export(const char *dsn, const char *dir,
	    struct audit_port_result *res, char *err, size_t errlen)
	    __attribute__((warn_unused_result));

/*
 * Copy the log in dir (the caller verified it first: cpx-audit import
 * runs verify) into the database dsn, whose log must be empty, in
 * transactions of batch records (0: AUDIT_PORT_BATCH; at most
 * AUDIT_PORT_BATCH_MAX), each taking the head row FOR UPDATE, inserting
 * the rows and moving the head: the
 * database's head after it is dir's last seq and chain hash. A row's
 * "broker" column is the CN of the signer of the first checkpoint at or
 * after it (each broker seals what it wrote); broker names the writer of
 * records that no checkpoint follows in a log without any. Returns 0 with
 * *res, or -1 with err[] (a non-empty database is named with its head
 * seq; a failure midway says how many records were committed).
 */
int	audit_port_import(const char *dir, const char *dsn, size_t batch,
	    const char *broker, struct audit_port_result *res, char *err,
	    size_t errlen) __attribute__((warn_unused_result));

/*
 * The GRANTs a broker's role needs on the schema (least privilege: no
 * UPDATE or DELETE of records), as SQL text for role, into buf. Returns
 * 0, or -1 with err[] if role is not a plain PostgreSQL name
 * (letters, digits, '_', not starting with a digit, at most 63).
 */
int	audit_port_grants(const char *role, char *buf, size_t len,
	    char *err, size_t errlen) __attribute__((warn_unused_result));

/*
 * Create the schema (audit_pg_schema_sql) in the database dsn in one
 * transaction, unless a cpx schema is there already (*created 0, its
 * *version given), and with role not NULL run audit_port_grants(role).
 * Returns 0, or -1 with err[].
 */
int	audit_port_init_db(const char *dsn, const char *role, int *created,
	    int *version, char *err, size_t errlen)
	    __attribute__((warn_unused_result));

#endif
