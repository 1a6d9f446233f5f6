/*
 * audit_pg_batch.c: the batches of the PostgreSQL store: what an append
 * keeps until a commit numbers it, and the numbering itself, done under
 * the head lock (audit_pg_commit.c).
 *
 * An append keeps the record packed without its seq and time (the
 * commit fixes both) and, for an accepted alert, its (origin, alert id)
 * and the SHA-256 of its signed bytes (as dedup_hash), for the duplicate
 * check across brokers. A checkpoint asked for is kept as a place in the
 * batch: its checkpoint_seq and hash are known only once the batch is
 * numbered, and it is built and signed then. Numbering gives each append
 * that is not a duplicate the next seq after the head and a time never
 * below the head's or the record before (unless the caller set one, as
 * with the file store), builds its bytes and chains it (lib/chain.h).
 * The answers it goes by (the head row, the record it names, the alerts
 * already on record) are read here too, every length bounded. Owns the
 * entries of struct pg_batch.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "audit.h"
#include "audit_impl.h"
#include "audit_pg.h"
#include "chain.h"
#include "clock.h"
#include "cpx_limits.h"
#include "errfmt.h"
#include "log.h"

static void
entry_free(struct pg_entry *e)
{
	free(e->body);
	free(e->full);
	free(e->alert_id);
	free(e->origin);
	free(e->peer_country);
	free(e->peer_node);
	memset(e, 0, sizeof(*e));
}

void
audit_pg_batch_clear(struct pg_batch *b)
{
	size_t	i;

	for (i = 0; i < b->n; i++)
		entry_free(&b->v[i]);
	b->n = 0;
}

static struct pg_entry *
batch_add(struct pg_batch *b)
{
	struct pg_entry	*nv;
	size_t		 cap;

	if (b->n == b->cap) {
		cap = b->cap ? b->cap * 2 : 64;
		if ((nv = reallocarray(b->v, cap, sizeof(*nv))) == NULL)
			return NULL;
		b->v = nv;
		b->cap = cap;
	}
	memset(&b->v[b->n], 0, sizeof(b->v[0]));
	return &b->v[b->n];
}

static char *
dup_str(const char *s)
{
	return s != NULL && s[0] != '\0' ? strdup(s) : NULL;
}

/* (origin, id) of an accepted alert, and SHA-256 of its signed bytes. */
static int
alert_key(struct pg_entry *e, const Cpx__AuditRecord *rec)
{
	const ProtobufCBinaryData *b = &rec->alert->alert;
	Cpx__Alert	*al;
	int		 ret = -1;

	if (b->len == 0 || b->len > CPX_MAX_ALERT)
		return -1;
	if ((al = cpx__alert__unpack(NULL, b->len, b->data)) == NULL)
		return -1;
	if (al->origin[0] != '\0' && strlen(al->origin) <= 8 &&
	    (e->origin = strdup(al->origin)) != NULL &&
	    (e->alert_id = strdup(rec->alert_id != NULL &&
	    rec->alert_id[0] != '\0' ? rec->alert_id : al->id)) != NULL) {
		SHA256(b->data, b->len, e->sha);
		ret = 0;
	}
	cpx__alert__free_unpacked(al, NULL);
	return ret;
}

int
audit_pg_append(struct audit_pg *p, Cpx__AuditRecord *rec,
    uint64_t *seq_out)
{
	struct pg_entry	*e;
	uint64_t	 old_seq = rec->seq;
	int64_t		 old_time = rec->time;
	char		*old_broker = rec->broker;
	size_t		 len;

	*seq_out = 0;
	if (p->readonly) {
		log_warnx("audit: postgresql (%s): opened read-only", p->desc);
		return -1;
	}
	if ((e = batch_add(&p->pend)) == NULL)
		goto nomem;
	/*
	 * seq and time are fixed at commit: pack without them. The record
	 * names its broker: session ids are each broker's own.
	 */
	rec->seq = 0;
	rec->time = 0;
	rec->broker = p->broker;
	len = cpx__audit_record__get_packed_size(rec);
	if (len + PG_PREFIX_MAX > AUDIT_MAX_RECORD) {
		rec->seq = old_seq;
		rec->time = old_time;
		rec->broker = old_broker;
		log_warnx("audit: record of %zu bytes over the limit %u", len,
		    AUDIT_MAX_RECORD);
		return -1;
	}
	if ((e->body = malloc(len + 1)) == NULL) {
		rec->seq = old_seq;
		rec->time = old_time;
		rec->broker = old_broker;
		goto nomem;
	}
	e->len = cpx__audit_record__pack(rec, e->body);
	rec->seq = old_seq;
	rec->time = old_time;
	rec->broker = old_broker;
	e->time = old_time;
	e->kind = rec->kind;
	if (rec->kind == CPX__RECORD_KIND__RECORD_ALERT_ACCEPTED &&
	    rec->alert != NULL && alert_key(e, rec) == -1) {
		log_warnx("audit: postgresql (%s): accepted alert without a "
		    "decodable origin and id: refused", p->desc);
		entry_free(e);
		return -1;
	}
	if ((rec->peer_country != NULL && rec->peer_country[0] != '\0' &&
	    (e->peer_country = dup_str(rec->peer_country)) == NULL) ||
	    (rec->peer_node != NULL && rec->peer_node[0] != '\0' &&
	    (e->peer_node = dup_str(rec->peer_node)) == NULL)) {
		entry_free(e);
		goto nomem;
	}
	p->pend.n++;
	p->since_checkpoint++;
	return 0;
nomem:
	log_warnx("audit: postgresql (%s): out of memory", p->desc);
	return -1;
}

int
audit_pg_checkpoint(struct audit_pg *p)
{
	struct pg_entry	*e;

	if (p->readonly || p->key == NULL) {
		log_warnx("audit: postgresql (%s): no broker key to sign a "
		    "checkpoint", p->desc);
		return -1;
	}
	if ((e = batch_add(&p->pend)) == NULL) {
		log_warnx("audit: postgresql (%s): out of memory", p->desc);
		return -1;
	}
	e->kind = CPX__RECORD_KIND__RECORD_CHECKPOINT;
	p->pend.n++;
	p->since_checkpoint = 0;
	return 0;
}

/* An earlier append of this batch took (origin, id): a duplicate. */
static int
dup_in_batch(struct pg_batch *b, size_t k)
{
	struct pg_entry	*e = &b->v[k], *f;
	size_t		 j;

	for (j = 0; j < k; j++) {
		f = &b->v[j];
		if (f->origin == NULL || f->outcome != AUDIT_OUT_COMMITTED ||
		    strcmp(f->origin, e->origin) != 0 ||
		    strcmp(f->alert_id, e->alert_id) != 0)
			continue;
		e->seq = f->seq;
		e->outcome = memcmp(f->sha, e->sha, AUDIT_HASH_LEN) == 0 ?
		    AUDIT_OUT_DUP_SAME : AUDIT_OUT_DUP_DIFFERENT;
		return 1;
	}
	return 0;
}

static size_t
put_varint(uint8_t *p, uint64_t v)
{
	size_t	n = 0;

	while (v >= 0x80) {
		p[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (uint8_t)v;
	return n;
}

/*
 * The record as stored: fields 1 (seq) and 2 (time) come first in
 * protobuf-c's output (it packs in field-number order), so they are
 * the body packed without them with their encoding put in front: the
 * same bytes as packing the record with both set.
 */
static int
build_full(struct pg_entry *e)
{
	uint8_t	pre[PG_PREFIX_MAX];
	size_t	n = 0;

	pre[n++] = 0x08;
	n += put_varint(pre + n, e->seq);
	if (e->rtime != 0) {
		pre[n++] = 0x10;
		n += put_varint(pre + n, (uint64_t)e->rtime);
	}
	if ((e->full = malloc(n + e->len)) == NULL)
		return -1;
	memcpy(e->full, pre, n);
	memcpy(e->full + n, e->body, e->len);
	e->full_len = n + e->len;
	return 0;
}

/* A checkpoint over the chain up to the record before it, signed. */
static int
build_checkpoint(struct audit_pg *p, struct pg_entry *e,
    const uint8_t prev[AUDIT_HASH_LEN])
{
	Cpx__AuditRecord rec = CPX__AUDIT_RECORD__INIT;
	uint8_t		 hash[AUDIT_HASH_LEN];
	uint8_t		*sig = NULL;
	size_t		 len;
	int		 ret = -1;

	memcpy(hash, prev, AUDIT_HASH_LEN);
	rec.seq = e->seq;
	rec.broker = p->broker;
	if (audit_checkpoint_fill(&rec, e->seq - 1, hash, e->rtime, p->key,
	    p->cert, p->cert_der, p->cert_len, &sig) == -1) {
		log_warnx("audit: postgresql (%s): signing a checkpoint "
		    "failed (check key and cert: the key must be ECDSA P-256 "
		    "and the certificate's)", p->desc);
		goto done;
	}
	len = cpx__audit_record__get_packed_size(&rec);
	if (len > AUDIT_MAX_RECORD || (e->full = malloc(len)) == NULL)
		goto done;
	e->full_len = cpx__audit_record__pack(&rec, e->full);
	ret = 0;
done:
	free(sig);
	return ret;
}

/* Number, time, build and chain the batch under the head lock. */
int
audit_pg_number(struct audit_pg *p, size_t *nrows)
{
	struct pg_entry	*e;
	uint8_t		 prev[AUDIT_HASH_LEN];
	uint64_t	 seq = p->lock_seq;
	int64_t		 tmax = p->lock_time, now = clock_wall_ms();
	size_t		 i;

	memcpy(prev, p->lock_hash, AUDIT_HASH_LEN);
	*nrows = 0;
	for (i = 0; i < p->fly.n; i++) {
		e = &p->fly.v[i];
		free(e->full);
		e->full = NULL;
		if (e->outcome != 0 && e->outcome != AUDIT_OUT_COMMITTED)
			continue;
		e->outcome = 0;
		if (e->origin != NULL && dup_in_batch(&p->fly, i))
			continue;
		e->seq = ++seq;
		if (e->time != 0)
			e->rtime = e->time;	/* kept, as the file store */
		else
			e->rtime = now > tmax ? now : tmax;
		if (e->rtime > tmax)
			tmax = e->rtime;
		if ((e->body == NULL ? build_checkpoint(p, e, prev) :
		    build_full(e)) == -1)
			return -1;
		if (e->full_len > AUDIT_MAX_RECORD)
			return -1;
		memcpy(e->prev, prev, AUDIT_HASH_LEN);
		if (chain_hash_record(p->md, prev, e->seq, e->full,
		    (uint32_t)e->full_len, e->hash) == -1)
			return -1;
		memcpy(prev, e->hash, AUDIT_HASH_LEN);
		e->outcome = AUDIT_OUT_COMMITTED;
		(*nrows)++;
	}
	p->commit_seq = seq;
	memcpy(p->commit_hash, prev, AUDIT_HASH_LEN);
	p->commit_time = tmax;
	return 0;
}

/* The head row under our lock: seq, hash, time. */
int
audit_pg_take_head(struct audit_pg *p, const PGresult *r, char *why,
    size_t whylen)
{
	if (PQntuples(r) != 1 || PQnfields(r) != 3 ||
	    PQgetlength(r, 0, 0) != 8 || PQgetlength(r, 0, 1) !=
	    (int)AUDIT_HASH_LEN || PQgetlength(r, 0, 2) != 8)
		return errf(why, whylen, "table cpx_head is damaged (one row "
		    "of seq, 32-byte hash, time wanted)");
	p->lock_seq = audit_get_be64((const uint8_t *)PQgetvalue(r, 0, 0));
	memcpy(p->lock_hash, PQgetvalue(r, 0, 1), AUDIT_HASH_LEN);
	p->lock_time = (int64_t)audit_get_be64(
	    (const uint8_t *)PQgetvalue(r, 0, 2));
	if (p->lock_seq > INT64_MAX / 2)
		return errf(why, whylen, "head seq %" PRIu64 " out of range",
		    p->lock_seq);
	if (p->lock_seq < p->head_seq)
		log_warnx("audit: postgresql (%s): the log's head went back "
		    "from record %" PRIu64 " to %" PRIu64 " (a failover to a "
		    "standby that was not synchronous?): records were lost",
		    p->desc, p->head_seq, p->lock_seq);
	p->head_ok = 1;
	return 0;
}

/* The head must name the last record as it is: we chain from it. */
int
audit_pg_take_last(struct audit_pg *p, const PGresult *r, char *why,
    size_t whylen)
{
	if (!p->head_ok)
		return errf(why, whylen, "no head row");
	if (p->lock_seq == 0)
		return PQntuples(r) == 0 ? 0 : errf(why, whylen, "empty log "
		    "with records");
	if (PQntuples(r) != 1 || PQnfields(r) != 1)
		return errf(why, whylen, "the head names record %" PRIu64
		    ", which is not on record", p->lock_seq);
	if (PQgetlength(r, 0, 0) != (int)AUDIT_HASH_LEN ||
	    CRYPTO_memcmp(PQgetvalue(r, 0, 0), p->lock_hash,
	    AUDIT_HASH_LEN) != 0)
		return errf(why, whylen, "the head's hash is not record %"
		    PRIu64 "'s", p->lock_seq);
	return 0;
}

/* Alerts of the batch already on record: not written again. */
int
audit_pg_take_dups(struct audit_pg *p, const PGresult *r, char *why,
    size_t whylen)
{
	struct pg_entry	*e;
	const char	*o, *id;
	uint64_t	 seq;
	int		 i, n = PQntuples(r);
	size_t		 j;

	if (PQnfields(r) != 4)
		return errf(why, whylen, "duplicate check: %d columns",
		    PQnfields(r));
	for (i = 0; i < n; i++) {
		if (PQgetlength(r, i, 0) > 8 || PQgetlength(r, i, 1) >
		    (int)CPX_MAX_ID || PQgetlength(r, i, 2) != 8)
			return errf(why, whylen, "duplicate check: a row of "
			    "cpx_records is damaged");
		o = PQgetvalue(r, i, 0);
		id = PQgetvalue(r, i, 1);
		seq = audit_get_be64((const uint8_t *)PQgetvalue(r, i, 2));
		for (j = 0; j < p->fly.n; j++) {
			e = &p->fly.v[j];
			if (e->origin == NULL || strcmp(e->origin, o) != 0 ||
			    strcmp(e->alert_id, id) != 0)
				continue;
			e->seq = seq;
			e->rtime = 0;
			e->outcome = PQgetlength(r, i, 3) ==
			    (int)AUDIT_HASH_LEN && CRYPTO_memcmp(e->sha,
			    PQgetvalue(r, i, 3), AUDIT_HASH_LEN) == 0 ?
			    AUDIT_OUT_DUP_SAME : AUDIT_OUT_DUP_DIFFERENT;
		}
	}
	return 0;
}
