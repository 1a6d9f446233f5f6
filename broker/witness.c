/*
 * witness.c: the broker's side of witnessing (witness.h). Owns the
 * module state (the newest checkpoint record, each witness node's newest
 * cosignature record, packed) and each peer's one pending answer (struct
 * witness_job, hung on struct peer). It decides a request when it
 * arrives (right, shape, the checkpoint named, the cosignature's
 * signature against the session certificate), appends what the request
 * makes (a checkpoint when none is known yet, the cosignature, the
 * alarm) and answers in witness_pump once that is durable: a job waits
 * for the commit of its append (batch.c says which seq it got, in
 * witness_batch_done), since a store that commits while the loop runs,
 * or that several brokers share, fixes the seq only then.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "alert.h"
#include "broker_impl.h"
#include "cosign.h"
#include "cpx_limits.h"
#include "log.h"
#include "sign.h"
#include "tlsconn.h"
#include "wire.h"
#include "witness.h"

/*
 * Checkpoint answers per loop turn; each reads at most one page: up to
 * COSIGN_MAX_LEAVES records and PAGE_BYTES of them (a few milliseconds
 * of hashing), whatever a witness asks. The witness asks for the next.
 */
#define WITNESS_TURN_JOBS	2
#define PAGE_BYTES		(4u * 1024u * 1024u)

struct cosig_slot {
	char		 country[3];
	char		 node[CPX_MAX_NODE_NAME + 1];
	uint64_t	 seq;
	uint8_t		*rec;		/* packed COSIGNATURE record */
	size_t		 len;
};

struct witness {
	uint64_t		 ckpt;	/* newest CHECKPOINT record, 0: none */
	struct cosig_slot	 peers[COSIGN_MAX_PEERS];
	size_t			 npeers;
};

enum job_kind {
	JOB_CHECKPOINT = 1,	/* send checkpoint `record` with leaves */
	JOB_ACK			/* record `record` is ours: acknowledge */
};

struct witness_job {
	enum job_kind	 kind;
	uint64_t	 request_id;
	uint64_t	 have_seq;
	uint64_t	 record;	/* 0: not on record (commit failed) */
	int		 latest;	/* the broker chose the checkpoint */
	int		 cosig;		/* ACK of a cosignature: remember it */
	int		 waiting;	/* for the commit of batch gen ... */
	uint64_t	 gen;
	size_t		 idx;		/* ... append idx in it: record */
};

static int	read_record(struct broker *, uint64_t, Cpx__AuditRecord **);
static int	note_cosig(struct witness *, const Cpx__AuditRecord *);

/*
 * A cosignature is served to other witnesses once it is on record, as
 * the log holds it (its seq is known only then on a shared store).
 */
static void
note_committed_cosig(struct broker *b, uint64_t seq)
{
	Cpx__AuditRecord	*rec = NULL;

	if (read_record(b, seq, &rec) == 1 &&
	    rec->kind == CPX__RECORD_KIND__RECORD_COSIGNATURE &&
	    note_cosig(b->witness, rec) == -1)
		log_warnx("witness: out of memory remembering a cosignature");
	if (rec != NULL)
		cpx__audit_record__free_unpacked(rec, NULL);
}

/* j waits for the commit of the append just made (its seq: record). */
static void
job_wait(struct broker *b, struct witness_job *j)
{
	j->waiting = 1;
	j->gen = batch_gen(b);
	j->idx = batch_last_index(b);
	j->record = 0;
}

void
witness_batch_done(struct broker *b, uint64_t gen, int committed)
{
	struct session		*s;
	struct peer		*pr;
	struct witness_job	*j;
	uint64_t		 seq;
	int64_t			 time;

	for (s = edge_sessions(b->edge); s != NULL; s = s->next) {
		if ((pr = peer_of(s)) == NULL || (j = pr->witness) == NULL ||
		    !j->waiting || j->gen != gen)
			continue;
		j->waiting = 0;
		if (committed && audit_batch_outcome(b->audit, j->idx, &seq,
		    &time) == AUDIT_OUT_COMMITTED)
			j->record = seq;
		if (j->cosig && j->record != 0)
			note_committed_cosig(b, j->record);
	}
}

struct witness *
witness_new(void)
{
	return calloc(1, sizeof(struct witness));
}

void
witness_free(struct witness **wp)
{
	struct witness	*w;
	size_t		 i;

	if (wp == NULL || (w = *wp) == NULL)
		return;
	for (i = 0; i < w->npeers; i++)
		free(w->peers[i].rec);
	free(w);
	*wp = NULL;
}

void
witness_job_free(struct witness_job **jp)
{
	if (jp == NULL || *jp == NULL)
		return;
	free(*jp);
	*jp = NULL;
}

void
witness_note_checkpoint(struct witness *w, uint64_t rec_seq)
{
	w->ckpt = rec_seq;
}

/* Remember rec as the newest cosignature of its node. 0 or -1 (memory). */
static int
note_cosig(struct witness *w, const Cpx__AuditRecord *rec)
{
	struct cosig_slot	*sl = NULL;
	uint8_t			*buf;
	size_t			 i, len;

	for (i = 0; i < w->npeers; i++)
		if (strcmp(w->peers[i].country, rec->peer_country) == 0 &&
		    strcmp(w->peers[i].node, rec->peer_node) == 0)
			sl = &w->peers[i];
	if (sl == NULL) {
		if (w->npeers == COSIGN_MAX_PEERS) {
			/* The answer's bound; the log keeps them all. */
			log_debug("witness: more than %u witness nodes; "
			    "%s/%s's cosignatures are not served to others",
			    COSIGN_MAX_PEERS, rec->peer_country,
			    rec->peer_node);
			return 0;
		}
		sl = &w->peers[w->npeers];
		memset(sl, 0, sizeof(*sl));
		snprintf(sl->country, sizeof(sl->country), "%s",
		    rec->peer_country);
		snprintf(sl->node, sizeof(sl->node), "%s", rec->peer_node);
		w->npeers++;
	}
	len = cpx__audit_record__get_packed_size(rec);
	if ((buf = malloc(len ? len : 1)) == NULL)
		return -1;
	cpx__audit_record__pack(rec, buf);
	free(sl->rec);
	sl->rec = buf;
	sl->len = len;
	sl->seq = rec->seq;
	return 0;
}

int
witness_note_record(struct witness *w, const Cpx__AuditRecord *rec)
{
	if (rec->kind == CPX__RECORD_KIND__RECORD_CHECKPOINT)
		w->ckpt = rec->seq;
	else if (rec->kind == CPX__RECORD_KIND__RECORD_COSIGNATURE &&
	    rec->peer_country != NULL && rec->peer_node != NULL)
		return note_cosig(w, rec);
	return 0;
}

/* A witness request refused: counted, answered, logged (as broker.c). */
static void
refuse(struct broker *b, struct session *s, uint64_t request_id, int reason,
    const char *why)
{
	if (peer_note_refusal(b, s, CPX__RECORD_KIND__RECORD_REQUEST_REFUSED,
	    reason, why, NULL))
		log_warnx("%s: witness request refused (%s): %s", s->tag,
		    alert_reason_name(reason), why);
	broker_send_error(b, s, request_id, reason, why);
	peer_check_refusal_limit(b, s, reason);
}

/*
 * The durable record seq: 1 with *rec (owned by the caller), 0 if there
 * is none yet, -1 on a read error (logged).
 */
static int
read_record(struct broker *b, uint64_t seq, Cpx__AuditRecord **rec)
{
	struct audit_cursor	*c;
	char			 err[256];
	int			 rc;

	*rec = NULL;
	if (seq == 0 || seq > audit_last_seq(b->audit))
		return 0;
	c = audit_cursor_new(b->audit, seq, 0, err, sizeof(err));
	if (c == NULL) {
		log_warnx("witness: %s", err);
		return -1;
	}
	rc = audit_cursor_next(c, rec, err, sizeof(err));
	if (rc == -1)
		log_warnx("witness: %s", err);
	audit_cursor_free(&c);
	if (rc == 1 && (*rec)->seq != seq) {
		cpx__audit_record__free_unpacked(*rec, NULL);
		*rec = NULL;
		return 0;
	}
	return rc;
}

static void
take_request(struct broker *b, struct session *s, struct peer *pr,
    const Cpx__WitnessRequest *rq, int64_t now)
{
	struct witness		*w = b->witness;
	struct witness_job	*j;
	uint64_t		 rec;
	int			 latest = rq->checkpoint_record == 0;

	if (pr->witness != NULL) {
		refuse(b, s, rq->request_id, CPX__REASON__REASON_BAD_REQUEST,
		    "a witness request of this session is still being "
		    "answered; send one at a time");
		return;
	}
	rec = latest ? w->ckpt : rq->checkpoint_record;
	if (!latest && rec > audit_last_seq(b->audit)) {
		refuse(b, s, rq->request_id, CPX__REASON__REASON_BAD_REQUEST,
		    "checkpoint_record is beyond the log's end; ask with 0 "
		    "for the newest checkpoint");
		return;
	}
	if ((j = calloc(1, sizeof(*j))) == NULL) {
		broker_send_error(b, s, rq->request_id,
		    CPX__REASON__REASON_INTERNAL, "broker out of memory");
		return;
	}
	j->kind = JOB_CHECKPOINT;
	j->request_id = rq->request_id;
	j->have_seq = rq->have_seq;
	j->record = rec;
	j->latest = latest;
	/*
	 * No checkpoint yet (a fresh log): one for the witness. On a shared
	 * log, also when records came after this broker's newest one: a
	 * witness that moved here from another broker may hold a later
	 * checkpoint of that one's, and this one's must not be behind it.
	 */
	if (latest && (w->ckpt == 0 || (audit_shared(b->audit) &&
	    w->ckpt < b->delivered))) {
		if (audit_checkpoint(b->audit) == -1) {
			broker_send_error(b, s, rq->request_id,
			    CPX__REASON__REASON_INTERNAL, "the broker cannot "
			    "sign a checkpoint now; retry later");
			free(j);
			return;
		}
		/* Its seq comes with its commit (batch.c). */
		batch_note_checkpoint(b);
		job_wait(b, j);
		b->since_checkpoint = 0;
		b->last_checkpoint_ms = now;
		log_info("%s: witness: checkpoint appended for the witness",
		    s->tag);
	}
	pr->witness = j;
}

/* Append rec (witness fields set) for s; 0 with *seq, or -1 (logged). */
static int
append_for(struct broker *b, struct session *s, struct peer *pr,
    Cpx__AuditRecord *rec, const uint8_t *der, size_t derlen, uint64_t *seq)
{
	rec->peer_country = pr->id.country;
	rec->peer_node = pr->id.node;
	rec->peer_address = s->addr;
	rec->session_id = s->id;
	rec->witness_cert.data = (uint8_t *)der;
	rec->witness_cert.len = derlen;
	if (audit_append(b->audit, rec, seq) == -1) {
		log_warnx("%s: witness: record of kind %d could not be "
		    "appended", s->tag, rec->kind);
		return -1;
	}
	b->since_checkpoint++;
	return 0;
}

/* Acknowledge the record just appended for pr once it is committed. */
static int
ack_job(struct broker *b, struct peer *pr, uint64_t request_id)
{
	struct witness_job	*j;

	if ((j = calloc(1, sizeof(*j))) == NULL)
		return -1;
	j->kind = JOB_ACK;
	j->request_id = request_id;
	job_wait(b, j);
	pr->witness = j;
	return 0;
}

static void
take_cosign(struct broker *b, struct session *s, struct peer *pr,
    const Cpx__Cosign *cs)
{
	Cpx__AuditRecord	 rec = CPX__AUDIT_RECORD__INIT;
	Cpx__AuditRecord	*ck = NULL;
	X509			*x = NULL;
	const uint8_t		*der, *p;
	uint8_t			 msg[COSIGN_MSG_LEN], ch[32];
	size_t			 derlen = 0;
	uint64_t		 seq;
	char			 why[256], w[128];
	int			 rc;

	if (pr->witness != NULL) {
		refuse(b, s, cs->request_id, CPX__REASON__REASON_BAD_REQUEST,
		    "a witness request of this session is still being "
		    "answered; send one at a time");
		return;
	}
	if ((rc = read_record(b, cs->checkpoint_record, &ck)) == -1) {
		broker_send_error(b, s, cs->request_id,
		    CPX__REASON__REASON_INTERNAL, "cannot read the audit log; "
		    "retry later");
		return;
	}
	/* Only a head the broker signed, exactly as it signed it. */
	if (rc == 0 || ck->kind != CPX__RECORD_KIND__RECORD_CHECKPOINT ||
	    ck->checkpoint_seq != cs->checkpoint_seq ||
	    ck->checkpoint_hash.len != CHAIN_HASH_LEN ||
	    CRYPTO_memcmp(ck->checkpoint_hash.data, cs->checkpoint_hash.data,
	    CHAIN_HASH_LEN) != 0) {
		snprintf(why, sizeof(why), "cosign: record %" PRIu64 " is not "
		    "a checkpoint of seq %" PRIu64 " with that hash in this "
		    "log", cs->checkpoint_record, cs->checkpoint_seq);
		refuse(b, s, cs->request_id, CPX__REASON__REASON_BAD_REQUEST,
		    why);
		goto done;
	}
	der = tlsconn_peer_cert_der(s->tls, &derlen);
	p = der;
	if (der == NULL || (x = d2i_X509(NULL, &p, (long)derlen)) == NULL ||
	    EVP_Digest(ck->checkpoint_cert.data, ck->checkpoint_cert.len, ch,
	    NULL, EVP_sha256(), NULL) != 1) {
		ERR_clear_error();
		broker_send_error(b, s, cs->request_id,
		    CPX__REASON__REASON_INTERNAL, "cannot read the session "
		    "certificate");
		goto done;
	}
	/* The witness is the session: its certificate's key signed. */
	cosign_msg(msg, ck->checkpoint_seq, ck->checkpoint_hash.data, ck->time,
	    ch);
	if (sign_verify_bytes(x, msg, sizeof(msg), cs->signature.data,
	    cs->signature.len, w, sizeof(w)) == -1) {
		snprintf(why, sizeof(why), "cosign of record %" PRIu64 ": %s "
		    "with the key of this session's certificate",
		    cs->checkpoint_record, w);
		refuse(b, s, cs->request_id, CPX__REASON__REASON_BAD_SIGNATURE,
		    why);
		goto done;
	}
	rec.kind = CPX__RECORD_KIND__RECORD_COSIGNATURE;
	rec.witness_signature = cs->signature;
	rec.cosigned_record = ck->seq;
	rec.cosigned_seq = ck->checkpoint_seq;
	rec.cosigned_hash = ck->checkpoint_hash;
	rec.cosigned_time = ck->time;
	rec.cosigned_cert_hash.data = ch;
	rec.cosigned_cert_hash.len = sizeof(ch);
	if (append_for(b, s, pr, &rec, der, derlen, &seq) == -1 ||
	    ack_job(b, pr, cs->request_id) == -1) {
		broker_send_error(b, s, cs->request_id,
		    CPX__REASON__REASON_STORAGE, "the cosignature could not "
		    "be recorded; retry later");
		goto done;
	}
	pr->witness->cosig = 1;		/* noted once committed */
	log_info("%s: witness cosigned checkpoint seq %" PRIu64 " (record %"
	    PRIu64 ")", s->tag, ck->checkpoint_seq, ck->seq);
done:
	X509_free(x);
	if (ck != NULL)
		cpx__audit_record__free_unpacked(ck, NULL);
}

static void
take_alarm(struct broker *b, struct session *s, struct peer *pr,
    const Cpx__WitnessAlarm *al)
{
	Cpx__AuditRecord	 rec = CPX__AUDIT_RECORD__INIT;
	const uint8_t		*der;
	char			 text[COSIGN_MAX_ALARM_TEXT + 1];
	size_t			 derlen = 0;
	uint64_t		 seq;

	/* The witness's words reach the log and a terminal: printable. */
	(void)wire_printable(al->text, text, sizeof(text));
	log_warnx("%s: WITNESS ALARM: holds seq %" PRIu64 ", shown seq %"
	    PRIu64 ": %s", s->tag, al->have_seq, al->seen_seq, text);
	if (pr->witness != NULL) {
		/* Logged above all the same: an alarm is never dropped. */
		refuse(b, s, al->request_id, CPX__REASON__REASON_BAD_REQUEST,
		    "a witness request of this session is still being "
		    "answered; send one at a time");
		return;
	}
	der = tlsconn_peer_cert_der(s->tls, &derlen);
	rec.kind = CPX__RECORD_KIND__RECORD_WITNESS_ALARM;
	rec.text = text;
	rec.cosigned_seq = al->have_seq;
	rec.cosigned_hash = al->have_hash;
	rec.alarm_seq = al->seen_seq;
	rec.alarm_hash = al->seen_hash;
	if (append_for(b, s, pr, &rec, der, der ? derlen : 0, &seq) == -1 ||
	    ack_job(b, pr, al->request_id) == -1)
		broker_send_error(b, s, al->request_id,
		    CPX__REASON__REASON_STORAGE, "the alarm could not be "
		    "recorded (it is in the broker's log file)");
}

void
witness_handle(struct broker *b, struct session *s, const Cpx__Envelope *env,
    int64_t now)
{
	struct peer	*pr = peer_of(s);
	uint64_t	 rid = 0;
	char		 why[256];

	switch (env->body_case) {
	case CPX__ENVELOPE__BODY_WITNESS_REQUEST:
		rid = env->witness_request->request_id;
		break;
	case CPX__ENVELOPE__BODY_COSIGN:
		rid = env->cosign->request_id;
		break;
	case CPX__ENVELOPE__BODY_WITNESS_ALARM:
		rid = env->witness_alarm->request_id;
		break;
	default:
		return;
	}
	if (!pr->rights.witness) {
		snprintf(why, sizeof(why), "node %s/%s has no witness right in "
		    "the broker's policy", pr->id.country, pr->id.node);
		refuse(b, s, rid, CPX__REASON__REASON_NOT_AUTHORIZED, why);
		return;
	}
	if (env->body_case == CPX__ENVELOPE__BODY_WITNESS_REQUEST)
		take_request(b, s, pr, env->witness_request, now);
	else if (env->body_case == CPX__ENVELOPE__BODY_COSIGN)
		take_cosign(b, s, pr, env->cosign);
	else
		take_alarm(b, s, pr, env->witness_alarm);
}

/*
 * The newest cosignature of every other witness, durable ones only.
 * Returns the count in *out (records owned by the caller), or -1.
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

/* Leaves from .. last, or one page of them, into buf; count in *n. */
static int
read_leaves(struct broker *b, uint64_t from, uint64_t last, uint8_t *buf,
    size_t *n)
{
	struct audit_cursor	*c;
	Cpx__AuditRecord	*rec = NULL;
	uint8_t			 leaf[CHAIN_HASH_LEN];
	uint32_t		 len;
	uint64_t		 bytes = 0;
	char			 err[256];
	int			 rc = 0;

	*n = 0;
	c = audit_cursor_new(b->audit, from, 0, err, sizeof(err));
	if (c == NULL) {
		log_warnx("witness: %s", err);
		return -1;
	}
	while (from + *n <= last && *n < COSIGN_MAX_LEAVES &&
	    bytes < PAGE_BYTES && (rc = audit_cursor_next_leaf(c, &rec, &len, leaf, err,
	    sizeof(err))) == 1) {
		if (rec->seq != from + *n) {
			rc = -1;
			snprintf(err, sizeof(err), "record %" PRIu64 " where %"
			    PRIu64 " was expected", rec->seq, from + *n);
		} else
			cosign_leaf_put(buf + *n * COSIGN_LEAF_LEN, len, leaf);
		bytes += len;
		cpx__audit_record__free_unpacked(rec, NULL);
		if (rc == -1)
			break;
		(*n)++;
	}
	audit_cursor_free(&c);
	if (rc == -1) {
		log_warnx("witness: reading leaves: %s", err);
		return -1;
	}
	if (from + *n <= last && *n < COSIGN_MAX_LEAVES &&
	    bytes < PAGE_BYTES) {
		log_warnx("witness: log ended at record %" PRIu64 " before %"
		    PRIu64, from + *n - 1, last);
		return -1;
	}
	return 0;
}

static void
serve_checkpoint(struct broker *b, struct session *s, struct peer *pr,
    struct witness_job *j)
{
	Cpx__Envelope		 env = CPX__ENVELOPE__INIT;
	Cpx__WitnessCheckpoint	 wc = CPX__WITNESS_CHECKPOINT__INIT;
	Cpx__AuditRecord	*ck = NULL, *cos[COSIGN_MAX_PEERS];
	uint8_t			*buf = NULL;
	size_t			 n = 0, ncos = 0, i;
	uint64_t		 last;
	int			 rc;

	rc = read_record(b, j->record, &ck);
	if (rc == 1 && ck->kind != CPX__RECORD_KIND__RECORD_CHECKPOINT)
		rc = 0;
	if (rc != 1) {
		/* A rolled-back commit can take the newest checkpoint. */
		if (j->latest && b->witness->ckpt == j->record)
			b->witness->ckpt = 0;
		if (rc == 0 && !j->latest)
			refuse(b, s, j->request_id,
			    CPX__REASON__REASON_BAD_REQUEST,
			    "checkpoint_record does not name a checkpoint of "
			    "this log");
		else
			broker_send_error(b, s, j->request_id,
			    CPX__REASON__REASON_INTERNAL,
			    "the checkpoint could not be read; ask again");
		goto done;
	}
	last = ck->checkpoint_seq;
	if (j->have_seq > last)
		log_warnx("%s: witness holds seq %" PRIu64 ", beyond this "
		    "log's newest checkpoint (seq %" PRIu64 "): the witness "
		    "will report the log as cut", s->tag, j->have_seq, last);
	else if (j->have_seq < last) {
		buf = malloc(COSIGN_MAX_LEAVES * COSIGN_LEAF_LEN);
		if (buf == NULL ||
		    read_leaves(b, j->have_seq + 1, last, buf, &n) == -1) {
			broker_send_error(b, s, j->request_id,
			    CPX__REASON__REASON_INTERNAL, "cannot read the "
			    "audit log; retry later");
			goto done;
		}
		wc.leaves_from = j->have_seq + 1;
		wc.leaves.data = buf;
		wc.leaves.len = n * COSIGN_LEAF_LEN;
		wc.more = j->have_seq + n < last;
	}
	if (peer_cosigs(b, pr, cos, &ncos) == -1) {
		broker_send_error(b, s, j->request_id,
		    CPX__REASON__REASON_INTERNAL, "broker out of memory");
		goto done;
	}
	wc.request_id = j->request_id;
	wc.checkpoint = ck;
	wc.cosignatures = cos;
	wc.n_cosignatures = ncos;
	env.body_case = CPX__ENVELOPE__BODY_WITNESS_CHECKPOINT;
	env.witness_checkpoint = &wc;
	broker_send(b, s, &env);
	log_info("%s: witness: checkpoint seq %" PRIu64 " (record %" PRIu64
	    "), %zu leaves from seq %" PRIu64 "%s, %zu other cosignature(s)",
	    s->tag, last, ck->seq, n, wc.leaves_from, wc.more ? ", more" : "",
	    ncos);
done:
	for (i = 0; i < ncos; i++)
		cpx__audit_record__free_unpacked(cos[i], NULL);
	free(buf);
	if (ck != NULL)
		cpx__audit_record__free_unpacked(ck, NULL);
}

static void
serve_ack(struct broker *b, struct session *s, struct witness_job *j)
{
	Cpx__Envelope		 env = CPX__ENVELOPE__INIT;
	Cpx__CosignAck		 ack = CPX__COSIGN_ACK__INIT;
	Cpx__AuditRecord	*rec = NULL;

	/* The record must still be this session's after the commit. */
	if (read_record(b, j->record, &rec) != 1 || rec->session_id != s->id) {
		broker_send_error(b, s, j->request_id,
		    CPX__REASON__REASON_STORAGE, "not recorded (the audit log "
		    "could not be written); send it again");
		goto done;
	}
	ack.request_id = j->request_id;
	ack.seq = j->record;
	env.body_case = CPX__ENVELOPE__BODY_COSIGN_ACK;
	env.cosign_ack = &ack;
	broker_send(b, s, &env);
done:
	if (rec != NULL)
		cpx__audit_record__free_unpacked(rec, NULL);
}

int
witness_pump(struct broker *b)
{
	struct session		*s;
	struct peer		*pr;
	struct witness_job	*j;
	int			 served = 0, busy = 0;

	for (s = edge_sessions(b->edge); s != NULL; s = s->next) {
		if ((pr = peer_of(s)) == NULL || (j = pr->witness) == NULL ||
		    s->phase != SESSION_OPEN || s->dead)
			continue;
		/* Its append is not committed yet: batch.c wakes it. */
		if (j->waiting)
			continue;
		if (j->kind == JOB_CHECKPOINT &&
		    served++ >= WITNESS_TURN_JOBS) {
			busy = 1;
			continue;
		}
		pr->witness = NULL;
		if (j->kind == JOB_CHECKPOINT)
			serve_checkpoint(b, s, pr, j);
		else
			serve_ack(b, s, j);
		witness_job_free(&j);
	}
	return busy;
}
