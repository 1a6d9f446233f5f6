/*
 * witness.c: the witness round of the client library (include/cpx.h,
 * docs/witness.md), its exchange with the broker: fetch the broker's
 * newest signed checkpoint, check that the broker this session verified
 * signed it, have witness_walk.c check that it extends the head this
 * witness accepted, then keep the new head in the state file and
 * countersign it; or, when the log does not extend what was seen,
 * refuse, keep the old state, save the evidence and raise the alarm.
 * Owns nothing between calls.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "alert.h"
#include "chain.h"
#include "clock.h"
#include "cosign.h"
#include "cpx_client.h"
#include "errfmt.h"
#include "sign.h"
#include "tlsctx.h"
#include "witness_impl.h"
#include "witness_int.h"

static void
set_text(struct cpx_witness_result *res, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
set_text(struct cpx_witness_result *res, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	(void)verrf(res->text, sizeof(res->text), fmt, ap);
	va_end(ap);
}

/*
 * The alarm: evidence file next to the state (both broker-signed heads,
 * or our head and the other witness's cosignature), a WitnessAlarm to
 * the broker if the session still works. The state is left alone.
 */
int
witness_alarm(struct round *r, const char *kind, const Cpx__AuditRecord *seen,
    const char *fmt, ...)
{
	struct cpx_witness_result	*res = r->res;
	Cpx__Envelope			 env = CPX__ENVELOPE__INIT;
	Cpx__WitnessAlarm		 al = CPX__WITNESS_ALARM__INIT;
	Cpx__Envelope			*reply = NULL;
	va_list				 ap;
	char				 err[256];
	uint64_t			 rid;

	res->outcome = CPX_WITNESS_ALARM;
	snprintf(res->alarm, sizeof(res->alarm), "%s", kind);
	va_start(ap, fmt);
	(void)verrf(res->text, sizeof(res->text), fmt, ap);
	va_end(ap);
	/* Evidence first: it is what can be shown to the other states. */
	snprintf(res->evidence, sizeof(res->evidence), "%s.alarm-%lld",
	    r->path, (long long)clock_wall_ms());
	if (witness_evidence_write(res->evidence, kind, res->text, r->st.ck,
	    r->st.cklen, seen, err, sizeof(err)) == -1)
		snprintf(res->evidence, sizeof(res->evidence),
		    "(not written: %s)", err);
	/* Then the broker's log, where the operator's colleagues look. */
	al.text = res->text;
	al.have_seq = r->st.seq;
	al.have_hash.data = r->st.hash;
	al.have_hash.len = r->st.seq != 0 ? CHAIN_HASH_LEN : 0;
	al.seen_seq = r->ck != NULL ? r->ck->checkpoint_seq : 0;
	if (r->ck != NULL) {
		al.seen_hash = r->ck->checkpoint_hash;
	}
	env.body_case = CPX__ENVELOPE__BODY_WITNESS_ALARM;
	env.witness_alarm = &al;
	if (client_witness_call(r->c, &env, &rid, r->timeout_ms, &reply, err,
	    sizeof(err)) == 0 &&
	    reply->body_case == CPX__ENVELOPE__BODY_COSIGN_ACK)
		res->cosig_seq = reply->cosign_ack->seq;
	if (reply != NULL)
		cpx__envelope__free_unpacked(reply, NULL);
	return 1;
}

int
witness_failed(struct round *r, int local, const char *fmt, ...)
{
	va_list	ap;

	r->res->outcome = CPX_WITNESS_FAILED;
	r->res->local = local;
	va_start(ap, fmt);
	(void)verrf(r->res->text, sizeof(r->res->text), fmt, ap);
	va_end(ap);
	return -1;
}

int
witness_ask(struct round *r, uint64_t have_seq, uint64_t rec,
    Cpx__Envelope **reply)
{
	Cpx__Envelope		 env = CPX__ENVELOPE__INIT;
	Cpx__WitnessRequest	 rq = CPX__WITNESS_REQUEST__INIT;
	const Cpx__Error	*e;
	uint64_t		 rid;
	char			 err[256];

	rq.have_seq = have_seq;
	rq.checkpoint_record = rec;
	env.body_case = CPX__ENVELOPE__BODY_WITNESS_REQUEST;
	env.witness_request = &rq;
	if (client_witness_call(r->c, &env, &rid, r->timeout_ms, reply, err,
	    sizeof(err)) == -1)
		return witness_failed(r, 0, "no checkpoint from the broker: %s",
		    err);
	if ((*reply)->body_case == CPX__ENVELOPE__BODY_ERROR) {
		e = (*reply)->error;
		return witness_failed(r,
		    e->reason == CPX__REASON__REASON_NOT_AUTHORIZED ? 2 : 0,
		    "the broker refused the witness request (%s): %s",
		    alert_reason_name(e->reason), e->text);
	}
	if ((*reply)->body_case != CPX__ENVELOPE__BODY_WITNESS_CHECKPOINT)
		return witness_failed(r, 0, "the broker answered the witness "
		    "request with message kind %d", (int)(*reply)->body_case);
	return 0;
}

/*
 * The checkpoint must be signed by the broker this session talks to:
 * a broker certificate of the CA (serverAuth, not revoked) with the
 * key of the certificate TLS checked (name, pin). 0 or -1 (failed).
 */
static int
check_signer(struct round *r)
{
	X509		*x = NULL, *b = NULL;
	const uint8_t	*der, *p;
	uint8_t		 k1[32], k2[32];
	size_t		 len;
	char		 why[256];
	int		 reason, rc = -1;

	if (cosign_verify_checkpoint(r->ck, &x, r->cert_hash, why,
	    sizeof(why)) == -1) {
		witness_failed(r, 0, "the broker's checkpoint is not valid: %s",
		    why);
		goto done;
	}
	if (r->ck->seq != r->ck->checkpoint_seq + 1) {
		witness_failed(r, 0, "checkpoint record %" PRIu64 " covers "
		    "seq %" PRIu64 ", not the record before it", r->ck->seq,
		    r->ck->checkpoint_seq);
		goto done;
	}
	if (trust_verify_broker_cert(client_witness_trust(r->c), x, &reason,
	    why, sizeof(why)) == -1) {
		witness_failed(r, 0, "the checkpoint's signer is not a broker "
		    "of the network CA: %s", why);
		goto done;
	}
	der = client_witness_broker_cert(r->c, &len);
	p = der;
	if (der == NULL || (b = d2i_X509(NULL, &p, (long)len)) == NULL ||
	    tlsctx_spki_sha256(x, k1) == -1 ||
	    tlsctx_spki_sha256(b, k2) == -1 ||
	    CRYPTO_memcmp(k1, k2, sizeof(k1)) != 0) {
		witness_failed(r, 0, "the checkpoint is signed by a key other "
		    "than the one of the broker this session checked (name, "
		    "pin); it is not cosigned");
		goto done;
	}
	rc = 0;
done:
	ERR_clear_error();
	X509_free(x);
	X509_free(b);
	return rc;
}

static int
cosign(struct round *r)
{
	Cpx__Envelope	 env = CPX__ENVELOPE__INIT;
	Cpx__Cosign	 cs = CPX__COSIGN__INIT;
	Cpx__Envelope	*reply = NULL;
	uint8_t		 msg[COSIGN_MSG_LEN], *sig = NULL;
	size_t		 siglen = 0;
	uint64_t	 rid;
	char		 err[256];
	int		 rc = -1;

	cosign_msg(msg, r->ck->checkpoint_seq, r->ck->checkpoint_hash.data,
	    r->ck->time, r->cert_hash);
	if (client_witness_sign(r->c, msg, sizeof(msg), &sig, &siglen) == -1)
		return witness_failed(r, 1, "cannot sign with this node's key "
		    "(it must be ECDSA P-256 and the certificate's)");
	cs.checkpoint_record = r->ck->seq;
	cs.checkpoint_seq = r->ck->checkpoint_seq;
	cs.checkpoint_hash = r->ck->checkpoint_hash;
	cs.signature.data = sig;
	cs.signature.len = siglen;
	env.body_case = CPX__ENVELOPE__BODY_COSIGN;
	env.cosign = &cs;
	if (client_witness_call(r->c, &env, &rid, r->timeout_ms, &reply, err,
	    sizeof(err)) == -1)
		witness_failed(r, 0, "cosignature not acknowledged: %s", err);
	else if (reply->body_case == CPX__ENVELOPE__BODY_ERROR)
		witness_failed(r, 0, "the broker refused the cosignature "
		    "(%s): %s", alert_reason_name(reply->error->reason),
		    reply->error->text);
	else if (reply->body_case != CPX__ENVELOPE__BODY_COSIGN_ACK)
		witness_failed(r, 0, "the broker answered the cosignature with "
		    "message kind %d", (int)reply->body_case);
	else {
		r->res->cosig_seq = reply->cosign_ack->seq;
		rc = 0;
	}
	if (reply != NULL)
		cpx__envelope__free_unpacked(reply, NULL);
	free(sig);
	return rc;
}

/* Accept r->ck as the new head: state file first, then the cosignature. */
static int
accept_head(struct round *r, int cosigned)
{
	struct wstate	 nst;
	char		 err[512];

	memset(&nst, 0, sizeof(nst));
	nst.seq = r->ck->checkpoint_seq;
	memcpy(nst.hash, r->ck->checkpoint_hash.data, CHAIN_HASH_LEN);
	nst.record = r->ck->seq;
	nst.time = r->ck->time;
	nst.cosigned = cosigned;
	if ((nst.ck = witness_pack_record(r->ck, &nst.cklen)) == NULL)
		return witness_failed(r, 1, "out of memory");
	if (witness_state_write(r->path, &nst, err, sizeof(err)) == -1) {
		free(nst.ck);
		return witness_failed(r, 1, "cannot save the witness state: "
		    "%s", err);
	}
	witness_state_clear(&r->st);
	r->st = nst;
	return 0;
}

static int
do_round(struct round *r)
{
	struct cpx_witness_result	*res = r->res;
	const Cpx__Welcome		*w = cpx_client_welcome(r->c);
	char				 err[512];
	int				 rc;

	if ((rc = witness_state_read(r->path, &r->st, err, sizeof(err))) == -1)
		return witness_failed(r, 1, "%s", err);
	res->held_seq = r->st.seq;
	if (r->st.seq != 0)
		witness_hex(r->st.hash, CHAIN_HASH_LEN, res->held_hash);
	if (w == NULL)
		return witness_failed(r, 0, "not connected to the broker");
	if (!w->may_witness)
		return witness_failed(r, 2, "the broker's policy does not "
		    "give node %s/%s the witness right", w->country, w->node);
	if ((r->md = EVP_MD_CTX_new()) == NULL ||
	    (r->sha = EVP_MD_fetch(NULL, "SHA256", NULL)) == NULL ||
	    EVP_DigestInit_ex2(r->md, r->sha, NULL) != 1)
		return witness_failed(r, 1, "out of memory");
	if (witness_ask(r, r->st.seq, 0, &r->first) == -1)
		return -1;
	r->ck = r->first->witness_checkpoint->checkpoint;
	if (check_signer(r) == -1)
		return -1;
	res->seen_seq = r->ck->checkpoint_seq;
	if (res->seen_seq == 0)
		return witness_failed(r, 0, "the broker's checkpoint covers "
		    "no record yet: nothing to witness");
	witness_hex(r->ck->checkpoint_hash.data, CHAIN_HASH_LEN,
	    res->seen_hash);
	if ((rc = witness_take_peers(r, r->first->witness_checkpoint)) != 0)
		return rc;
	if (r->st.seq != 0 && r->ck->checkpoint_seq < r->st.seq)
		return witness_alarm(r, "TRUNCATION", r->ck, "TRUNCATION: the "
		    "broker's newest checkpoint is seq %" PRIu64 " hash %s, "
		    "behind seq %" PRIu64 " hash %s that this witness accepted "
		    "(and the broker signed): records were cut from the log",
		    res->seen_seq, res->seen_hash, res->held_seq,
		    res->held_hash);
	if (r->st.seq != 0 && r->ck->checkpoint_seq == r->st.seq) {
		if (CRYPTO_memcmp(r->ck->checkpoint_hash.data, r->st.hash,
		    CHAIN_HASH_LEN) != 0)
			return witness_alarm(r, "REWRITE", r->ck, "REWRITE: "
			    "the broker presents seq %" PRIu64 " with hash %s, "
			    "but signed hash %s for the same seq before: the "
			    "log was rewritten", res->seen_seq, res->seen_hash,
			    res->held_hash);
		/*
		 * Same head, another checkpoint: the record after seq, the
		 * checkpoint this witness accepted (and the cosignatures
		 * after it), was replaced. A served checkpoint is durable
		 * and its place is never reused, so this is a rewrite too.
		 */
		if (r->ck->time != r->st.time || r->ck->seq != r->st.record)
			return witness_alarm(r, "REWRITE", r->ck, "REWRITE: "
			    "the broker presents another checkpoint over seq %"
			    PRIu64 " (record %" PRIu64 ", signed at %" PRId64
			    " ms) than the one this witness accepted (record %"
			    PRIu64 ", signed at %" PRId64 " ms): the "
			    "checkpoint record and what followed it were "
			    "replaced",
			    res->seen_seq, r->ck->seq, r->ck->time,
			    r->st.record, r->st.time);
		if ((rc = witness_check_peers_at(r, r->st.seq,
		    r->st.hash)) != 0)
			return rc;
		res->outcome = CPX_WITNESS_UNCHANGED;
		if (!r->st.cosigned) {
			if (cosign(r) == -1)
				return -1;
			if (accept_head(r, 1) == -1)
				return -1;
		}
		set_text(res, "unchanged: checkpoint seq %" PRIu64 " hash %s "
		    "(%" PRIu64 " other witness cosignature(s) agree)",
		    res->seen_seq, res->seen_hash, res->peers_checked);
		return 0;
	}
	if ((rc = witness_check_peers_at(r, r->st.seq, r->st.hash)) != 0)
		return rc;
	if ((rc = witness_walk(r)) != 0)
		return rc;
	/* Consistent: keep it before telling anyone, then cosign. */
	if (accept_head(r, 0) == -1 || cosign(r) == -1 ||
	    accept_head(r, 1) == -1)
		return -1;
	res->outcome = CPX_WITNESS_COSIGNED;
	set_text(res, "cosigned checkpoint seq %" PRIu64 " hash %s (from seq %"
	    PRIu64 ", %" PRIu64 " records checked, %" PRIu64 " other witness "
	    "cosignature(s) checked) as audit record %" PRIu64, res->seen_seq,
	    res->seen_hash, res->held_seq, res->leaves, res->peers_checked,
	    res->cosig_seq);
	return 0;
}

int
cpx_witness_round(struct cpx_client *c, const char *state_file,
    int timeout_ms, struct cpx_witness_result *res)
{
	struct round	r;
	int		rc;

	memset(res, 0, sizeof(*res));
	memset(&r, 0, sizeof(r));
	r.c = c;
	r.path = state_file;
	r.timeout_ms = timeout_ms;
	r.res = res;
	rc = do_round(&r);
	if (r.first != NULL)
		cpx__envelope__free_unpacked(r.first, NULL);
	witness_state_clear(&r.st);
	EVP_MD_CTX_free(r.md);
	EVP_MD_free(r.sha);
	return rc;
}
