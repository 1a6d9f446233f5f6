/*
 * witness_read.c: the witness answers that read the audit log
 * (witness.h), stepped by witness_pump each loop turn and never waiting
 * on the store. A job reads through a cursor of its own that it keeps
 * across turns: a store that fetches pages over the network (PostgreSQL,
 * after audit_read_async) may answer a read with AUDIT_CURSOR_WAIT, and
 * the job then stays as it is, its cursor asking, until a later turn
 * finds the page there. Three jobs read:
 * - a checkpoint answer: the checkpoint record, then the leaves from the
 *   witness's seq, one page at most (COSIGN_MAX_LEAVES, PAGE_BYTES),
 *   then the answer with the other witnesses' cosignatures;
 * - a cosignature: the checkpoint it names, then the checks that need
 *   it (a checkpoint of this log, as the broker signed it, cosigned with
 *   the key of the session's certificate), its record and an ack job;
 * - an ack: the record appended, still the session's after the commit.
 * The module's queue of committed cosignatures is read here too, through
 * the module's cursor. Owns nothing: jobs are their peers', the queue
 * and its cursor the module's (witness.c frees them).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "audit.h"
#include "broker_impl.h"
#include "log.h"
#include "sign.h"
#include "tlsconn.h"
#include "witness.h"
#include "witness_impl.h"

/* One page of leaves stands for at most this many bytes of records. */
#define PAGE_BYTES		(4u * 1024u * 1024u)

/*
 * The durable record seq, read through *cp (opened at seq if NULL; the
 * caller owns it, and frees it once this returns other than
 * AUDIT_CURSOR_WAIT). Returns 1 with *rec (the caller's), 0 if there is
 * no such record yet, -1 on a read error (logged), AUDIT_CURSOR_WAIT
 * while the store fetches its page: call again on a later turn.
 */
static int
read_record(struct broker *b, struct audit_cursor **cp, uint64_t seq,
    Cpx__AuditRecord **rec)
{
	char	 err[256];
	int	 rc;

	*rec = NULL;
	if (seq == 0 || seq > audit_last_seq(b->audit))
		return 0;
	if (*cp == NULL && (*cp = audit_cursor_new(b->audit, seq, 0, err,
	    sizeof(err))) == NULL) {
		log_warnx("witness: %s", err);
		return -1;
	}
	rc = audit_cursor_next(*cp, rec, err, sizeof(err));
	if (rc == AUDIT_CURSOR_WAIT || rc == 0)
		return rc;
	if (rc != 1) {
		log_warnx("witness: reading record %" PRIu64 ": %s", seq, err);
		return -1;
	}
	if ((*rec)->seq != seq) {
		cpx__audit_record__free_unpacked(*rec, NULL);
		*rec = NULL;
		return 0;
	}
	return 1;
}

void
witness_notes_drain(struct broker *b)
{
	struct witness		*w = b->witness;
	struct witness_note	*n;
	Cpx__AuditRecord	*rec;
	uint64_t		 seq;
	int			 rc;

	while (w->nnotes > 0) {
		n = &w->notes[w->nfirst];
		/* Batches commit in order: the later ones wait too. */
		if (n->state == NOTE_COMMITTING)
			return;
		seq = n->seq;
		rc = 0;
		rec = NULL;
		if (n->state == NOTE_COMMITTED &&
		    (rc = read_record(b, &w->note_cur, seq, &rec)) ==
		    AUDIT_CURSOR_WAIT)
			return;
		audit_cursor_free(&w->note_cur);
		w->nfirst = (w->nfirst + 1) % WITNESS_NOTES;
		w->nnotes--;
		if (rc == -1)
			log_warnx("witness: cosignature record %" PRIu64 " "
			    "could not be read: it is not served to other "
			    "witnesses until its witness cosigns again", seq);
		else if (rc == 1 && rec->kind ==
		    CPX__RECORD_KIND__RECORD_COSIGNATURE &&
		    rec->peer_country != NULL && rec->peer_node != NULL &&
		    witness_remember_cosig(w, rec) == -1)
			log_warnx("witness: out of memory remembering a "
			    "cosignature");
		if (rec != NULL)
			cpx__audit_record__free_unpacked(rec, NULL);
	}
}

/* The page of j's leaves is complete: all of them, or the bound. */
static int
page_full(const struct witness_job *j)
{
	return j->have_seq + j->nleaves >= j->ck->checkpoint_seq ||
	    j->nleaves == COSIGN_MAX_LEAVES || j->bytes >= PAGE_BYTES;
}

/*
 * Read on j's leaves from have_seq + 1, up to its checkpoint's seq and
 * one page at most. Returns 1 once the page is complete, -1 on a read
 * error (logged), AUDIT_CURSOR_WAIT while the store fetches; *worked is
 * set if a record was read.
 */
static int
read_leaves(struct broker *b, struct witness_job *j, int *worked)
{
	Cpx__AuditRecord	*rec = NULL;
	uint8_t			 leaf[CHAIN_HASH_LEN];
	uint64_t		 want;
	uint32_t		 len;
	char			 err[256];
	int			 rc;

	if (j->cur == NULL && (j->cur = audit_cursor_new(b->audit,
	    j->have_seq + 1, 0, err, sizeof(err))) == NULL) {
		log_warnx("witness: %s", err);
		return -1;
	}
	while (!page_full(j)) {
		want = j->have_seq + 1 + j->nleaves;
		rc = audit_cursor_next_leaf(j->cur, &rec, &len, leaf, err,
		    sizeof(err));
		if (rc == AUDIT_CURSOR_WAIT)
			return rc;
		if (rc == 0) {
			log_warnx("witness: log ended at record %" PRIu64
			    " before %" PRIu64, want - 1,
			    j->ck->checkpoint_seq);
			return -1;
		}
		if (rc != 1) {
			log_warnx("witness: reading leaves: %s", err);
			return -1;
		}
		*worked = 1;
		if (rec->seq != want) {
			log_warnx("witness: reading leaves: record %" PRIu64
			    " where %" PRIu64 " was expected", rec->seq, want);
			cpx__audit_record__free_unpacked(rec, NULL);
			return -1;
		}
		cosign_leaf_put(j->leaves + j->nleaves * COSIGN_LEAF_LEN, len,
		    leaf);
		cpx__audit_record__free_unpacked(rec, NULL);
		j->bytes += len;
		j->nleaves++;
	}
	return 1;
}

/*
 * The newest cosignature of every other witness, durable ones only.
 * Returns 0 with the count in *n (records owned by the caller), or -1.
 */
static int
peer_cosigs(struct broker *b, const struct peer *pr, Cpx__AuditRecord **out,
    size_t *n)
{
	struct witness		*w = b->witness;
	const struct cosig_slot	*sl;
	size_t			 i;

	*n = 0;
	for (i = 0; i < w->npeers; i++) {
		sl = &w->peers[i];
		if (sl->seq > audit_last_seq(b->audit) ||
		    (strcmp(sl->country, pr->id.country) == 0 &&
		    strcmp(sl->node, pr->id.node) == 0))
			continue;
		if ((out[*n] = cpx__audit_record__unpack(NULL, sl->len,
		    sl->rec)) == NULL)
			return -1;
		(*n)++;
	}
	return 0;
}

/* All of j is read: send the checkpoint, its leaves, the cosignatures. */
static void
answer_checkpoint(struct broker *b, struct session *s, struct peer *pr,
    struct witness_job *j)
{
	Cpx__Envelope		 env = CPX__ENVELOPE__INIT;
	Cpx__WitnessCheckpoint	 wc = CPX__WITNESS_CHECKPOINT__INIT;
	Cpx__AuditRecord	*cos[COSIGN_MAX_PEERS];
	uint64_t		 last = j->ck->checkpoint_seq;
	size_t			 ncos = 0, i;

	if (j->leaves != NULL) {
		wc.leaves_from = j->have_seq + 1;
		wc.leaves.data = j->leaves;
		wc.leaves.len = j->nleaves * COSIGN_LEAF_LEN;
		wc.more = j->have_seq + j->nleaves < last;
	}
	if (peer_cosigs(b, pr, cos, &ncos) == -1) {
		broker_send_error(b, s, j->request_id,
		    CPX__REASON__REASON_INTERNAL, "broker out of memory");
		goto done;
	}
	wc.request_id = j->request_id;
	wc.checkpoint = j->ck;
	wc.cosignatures = cos;
	wc.n_cosignatures = ncos;
	env.body_case = CPX__ENVELOPE__BODY_WITNESS_CHECKPOINT;
	env.witness_checkpoint = &wc;
	broker_send(b, s, &env);
	log_info("%s: witness: checkpoint seq %" PRIu64 " (record %" PRIu64
	    "), %zu leaves from seq %" PRIu64 "%s, %zu other cosignature(s)",
	    s->tag, last, j->ck->seq, j->nleaves, wc.leaves_from,
	    wc.more ? ", more" : "", ncos);
done:
	for (i = 0; i < ncos; i++)
		cpx__audit_record__free_unpacked(cos[i], NULL);
}

/* The checkpoint record of j, read: 1 to go on, 0 if j was answered. */
static int
checkpoint_read(struct broker *b, struct session *s, struct witness_job *j,
    int rc)
{
	if (rc == 1 && j->ck->kind != CPX__RECORD_KIND__RECORD_CHECKPOINT) {
		cpx__audit_record__free_unpacked(j->ck, NULL);
		j->ck = NULL;
		rc = 0;
	}
	if (rc != 1) {
		/* A rolled-back commit can take the newest checkpoint. */
		if (j->latest && b->witness->ckpt == j->record)
			b->witness->ckpt = 0;
		if (rc == 0 && !j->latest)
			witness_refuse(b, s, j->request_id,
			    CPX__REASON__REASON_BAD_REQUEST,
			    "checkpoint_record does not name a checkpoint of "
			    "this log");
		else
			broker_send_error(b, s, j->request_id,
			    CPX__REASON__REASON_INTERNAL,
			    "the checkpoint could not be read; ask again");
		return 0;
	}
	if (j->have_seq > j->ck->checkpoint_seq)
		log_warnx("%s: witness holds seq %" PRIu64 ", beyond this "
		    "log's newest checkpoint (seq %" PRIu64 "): the witness "
		    "will report the log as cut", s->tag, j->have_seq,
		    j->ck->checkpoint_seq);
	else if (j->have_seq < j->ck->checkpoint_seq &&
	    (j->leaves = malloc(COSIGN_MAX_LEAVES * COSIGN_LEAF_LEN)) ==
	    NULL) {
		broker_send_error(b, s, j->request_id,
		    CPX__REASON__REASON_INTERNAL, "broker out of memory");
		return 0;
	}
	return 1;
}

/* A checkpoint answer: the record, then a page of leaves, then send. */
static int
step_checkpoint(struct broker *b, struct session *s, struct peer *pr,
    struct witness_job *j, int *worked)
{
	int	 rc;

	if (j->ck == NULL) {
		rc = read_record(b, &j->cur, j->record, &j->ck);
		if (rc == AUDIT_CURSOR_WAIT)
			return 0;
		*worked = 1;
		audit_cursor_free(&j->cur);
		if (checkpoint_read(b, s, j, rc) == 0)
			return 1;
	}
	if (j->leaves != NULL) {
		rc = read_leaves(b, j, worked);
		if (rc == AUDIT_CURSOR_WAIT)
			return 0;
		audit_cursor_free(&j->cur);
		if (rc == -1) {
			broker_send_error(b, s, j->request_id,
			    CPX__REASON__REASON_INTERNAL, "cannot read the "
			    "audit log; retry later");
			return 1;
		}
	}
	*worked = 1;
	answer_checkpoint(b, s, pr, j);
	return 1;
}

/*
 * The Cosign of j, its checkpoint ck read (NULL: not on record): only a
 * head the broker signed, exactly as it signed it, cosigned with the
 * key of the session's certificate, is recorded and acknowledged.
 */
static void
check_cosign(struct broker *b, struct session *s, struct peer *pr,
    const struct witness_job *j, const Cpx__AuditRecord *ck)
{
	Cpx__AuditRecord	 rec = CPX__AUDIT_RECORD__INIT;
	X509			*x = NULL;
	const uint8_t		*der, *p;
	uint8_t			 msg[COSIGN_MSG_LEN], ch[32];
	size_t			 derlen = 0;
	uint64_t		 seq;
	char			 why[256], w[128];
	int			 rc;

	if (ck == NULL || ck->kind != CPX__RECORD_KIND__RECORD_CHECKPOINT ||
	    ck->checkpoint_seq != j->cosigned_seq ||
	    ck->checkpoint_hash.len != CHAIN_HASH_LEN ||
	    CRYPTO_memcmp(ck->checkpoint_hash.data, j->cosigned_hash,
	    CHAIN_HASH_LEN) != 0) {
		snprintf(why, sizeof(why), "cosign: record %" PRIu64 " is not "
		    "a checkpoint of seq %" PRIu64 " with that hash in this "
		    "log", j->record, j->cosigned_seq);
		witness_refuse(b, s, j->request_id,
		    CPX__REASON__REASON_BAD_REQUEST, why);
		goto done;
	}
	der = tlsconn_peer_cert_der(s->tls, &derlen);
	p = der;
	if (der == NULL || (x = d2i_X509(NULL, &p, (long)derlen)) == NULL ||
	    EVP_Digest(ck->checkpoint_cert.data, ck->checkpoint_cert.len, ch,
	    NULL, EVP_sha256(), NULL) != 1) {
		ERR_clear_error();
		broker_send_error(b, s, j->request_id,
		    CPX__REASON__REASON_INTERNAL, "cannot read the session "
		    "certificate");
		goto done;
	}
	/* The witness is the session: its certificate's key signed. */
	cosign_msg(msg, ck->checkpoint_seq, ck->checkpoint_hash.data, ck->time,
	    ch);
	if (sign_verify_bytes(x, msg, sizeof(msg), j->sig, j->siglen, w,
	    sizeof(w)) == -1) {
		snprintf(why, sizeof(why), "cosign of record %" PRIu64 ": %s "
		    "with the key of this session's certificate", j->record,
		    w);
		witness_refuse(b, s, j->request_id,
		    CPX__REASON__REASON_BAD_SIGNATURE, why);
		goto done;
	}
	rec.kind = CPX__RECORD_KIND__RECORD_COSIGNATURE;
	rec.witness_signature.data = (uint8_t *)j->sig;
	rec.witness_signature.len = j->siglen;
	rec.cosigned_record = ck->seq;
	rec.cosigned_seq = ck->checkpoint_seq;
	rec.cosigned_hash = ck->checkpoint_hash;
	rec.cosigned_time = ck->time;
	rec.cosigned_cert_hash.data = ch;
	rec.cosigned_cert_hash.len = sizeof(ch);
	rc = witness_append_for(b, s, pr, &rec, der, derlen, &seq);
	if (rc == 0)
		witness_queue_cosig(b);		/* noted once committed */
	if (rc == -1 || witness_ack_job(b, pr, j->request_id) == -1) {
		broker_send_error(b, s, j->request_id,
		    CPX__REASON__REASON_STORAGE, "the cosignature could not "
		    "be recorded; retry later");
		goto done;
	}
	log_info("%s: witness cosigned checkpoint seq %" PRIu64 " (record %"
	    PRIu64 ")", s->tag, ck->checkpoint_seq, ck->seq);
done:
	X509_free(x);
}

/* A cosignature: read the checkpoint it names, then decide. */
static int
step_cosign(struct broker *b, struct session *s, struct peer *pr,
    struct witness_job *j, int *worked)
{
	Cpx__AuditRecord	*ck = NULL;
	int			 rc;

	rc = read_record(b, &j->cur, j->record, &ck);
	if (rc == AUDIT_CURSOR_WAIT)
		return 0;
	*worked = 1;
	audit_cursor_free(&j->cur);
	if (rc == -1)
		broker_send_error(b, s, j->request_id,
		    CPX__REASON__REASON_INTERNAL, "cannot read the audit log; "
		    "retry later");
	else
		check_cosign(b, s, pr, j, ck);
	if (ck != NULL)
		cpx__audit_record__free_unpacked(ck, NULL);
	return 1;
}

/* An ack: the record must still be this session's after the commit. */
static int
step_ack(struct broker *b, struct session *s, struct witness_job *j,
    int *worked)
{
	Cpx__Envelope		 env = CPX__ENVELOPE__INIT;
	Cpx__CosignAck		 ack = CPX__COSIGN_ACK__INIT;
	Cpx__AuditRecord	*rec = NULL;
	int			 rc;

	rc = read_record(b, &j->cur, j->record, &rec);
	if (rc == AUDIT_CURSOR_WAIT)
		return 0;
	*worked = 1;
	audit_cursor_free(&j->cur);
	if (rc != 1 || rec->session_id != s->id)
		broker_send_error(b, s, j->request_id,
		    CPX__REASON__REASON_STORAGE, "not recorded (the audit log "
		    "could not be written); send it again");
	else {
		ack.request_id = j->request_id;
		ack.seq = j->record;
		env.body_case = CPX__ENVELOPE__BODY_COSIGN_ACK;
		env.cosign_ack = &ack;
		broker_send(b, s, &env);
	}
	if (rec != NULL)
		cpx__audit_record__free_unpacked(rec, NULL);
	return 1;
}

int
witness_job_step(struct broker *b, struct session *s, struct peer *pr,
    struct witness_job *j, int *worked)
{
	*worked = 0;
	switch (j->kind) {
	case JOB_CHECKPOINT:
		return step_checkpoint(b, s, pr, j, worked);
	case JOB_COSIGN:
		return step_cosign(b, s, pr, j, worked);
	case JOB_ACK:
		return step_ack(b, s, j, worked);
	}
	return 1;
}
