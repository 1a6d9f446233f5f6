/*
 * witness_walk.c: the witness's consistency checks (docs/witness.md).
 * The chain is recomputed from the head this witness holds through the
 * broker's leaves (lib/chain.h), page by page, and must end at the hash
 * the broker signed; the other witnesses' cosignatures the broker passes
 * along are checked against that walk wherever they fall in it. Any
 * disagreement is an alarm (witness_alarm), never a cosignature. Owns
 * nothing between calls.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/x509.h>

#include "chain.h"
#include "cosign.h"
#include "cpx_client.h"
#include "identity.h"
#include "sign.h"
#include "tlsctx.h"
#include "witness_impl.h"
#include "witness_int.h"

/*
 * Other witnesses' cosignatures: valid ones (signature, a certificate of
 * the CA) are kept to compare with this witness's view as the chain is
 * recomputed. One that claims a longer log signed before this
 * checkpoint shows a rollback at once. Returns 0, or 1 (alarm).
 */
int
witness_take_peers(struct round *r, const Cpx__WitnessCheckpoint *wc)
{
	const Cpx__AuditRecord	*cs;
	X509			*x = NULL;
	struct identity		 id;
	char			 why[256];
	size_t			 i;
	int			 reason;

	for (i = 0; i < wc->n_cosignatures; i++) {
		cs = wc->cosignatures[i];
		if (cosign_verify_record(cs, &x, why, sizeof(why)) == -1 ||
		    trust_verify_cert(client_witness_trust(r->c), x, &reason,
		    why, sizeof(why)) == -1 ||
		    identity_from_cert(x, &id, why, sizeof(why)) == -1) {
			/* Not proof of anything: the broker could make it. */
			X509_free(x);
			x = NULL;
			ERR_clear_error();
			continue;
		}
		X509_free(x);
		x = NULL;
		r->res->peers_checked++;
		if (cs->cosigned_seq > r->ck->checkpoint_seq &&
		    cs->cosigned_time < r->ck->time)
			return witness_alarm(r, "FORK", cs, "witness %s/%s "
			    "cosigned seq %" PRIu64 ", but the broker now "
			    "presents seq %" PRIu64 ", signed later: the log "
			    "was cut and grew again", id.country, id.node,
			    cs->cosigned_seq, r->ck->checkpoint_seq);
		if (cs->cosigned_seq >= r->st.seq &&
		    cs->cosigned_seq <= r->ck->checkpoint_seq &&
		    (r->st.seq != 0 || cs->cosigned_seq != 0))
			r->peers[r->npeers++] = cs;
	}
	return 0;
}

/* A peer head at seq with a hash other than ours: a fork. 0 or 1. */
int
witness_check_peers_at(struct round *r, uint64_t seq,
    const uint8_t h[CHAIN_HASH_LEN])
{
	const Cpx__AuditRecord	*cs;
	char			 a[65], b[65];
	size_t			 i;

	for (i = 0; i < r->npeers; i++) {
		cs = r->peers[i];
		if (cs->cosigned_seq != seq ||
		    CRYPTO_memcmp(cs->cosigned_hash.data, h,
		    CHAIN_HASH_LEN) == 0)
			continue;
		witness_hex(h, CHAIN_HASH_LEN, a);
		witness_hex(cs->cosigned_hash.data, CHAIN_HASH_LEN, b);
		return witness_alarm(r, "FORK", cs, "FORK: witness %s/%s "
		    "cosigned seq %" PRIu64 " hash %s, this witness sees hash "
		    "%s at that seq: the broker shows different logs",
		    cs->peer_country, cs->peer_node, seq, b, a);
	}
	return 0;
}

/*
 * Walk the chain from our head to the presented one, page by page.
 * Returns 0 (it extends), 1 (alarm) or -1 (failed).
 */
int
witness_walk(struct round *r)
{
	const Cpx__WitnessCheckpoint	*wc = r->first->witness_checkpoint;
	Cpx__Envelope			*page = NULL;
	uint8_t				 h[CHAIN_HASH_LEN];
	uint8_t				 leaf[CHAIN_HASH_LEN];
	uint32_t			 len;
	uint64_t			 seq = r->st.seq, target;
	char				 a[65], b[65];
	size_t				 i, n;
	int				 rc = -1;

	target = r->ck->checkpoint_seq;
	memcpy(h, r->st.hash, sizeof(h));
	for (;;) {
		n = wc->leaves.len / COSIGN_LEAF_LEN;
		if (wc->leaves_from != seq + 1 || n == 0 || n > target - seq) {
			witness_failed(r, 0, "the broker's leaves start at "
			    "seq %" PRIu64 " (%zu of them); seq %" PRIu64
			    " was asked for, up to %" PRIu64, wc->leaves_from,
			    n, seq + 1, target);
			goto done;
		}
		for (i = 0; i < n; i++) {
			cosign_leaf_get(wc->leaves.data + i * COSIGN_LEAF_LEN,
			    &len, leaf);
			if (chain_step(r->md, h, ++seq, len, leaf, h) == -1) {
				witness_failed(r, 0, "out of memory");
				goto done;
			}
			if ((rc = witness_check_peers_at(r, seq, h)) != 0)
				goto done;
			rc = -1;
		}
		r->res->leaves += n;
		if (!wc->more || seq == target)
			break;
		if (page != NULL)
			cpx__envelope__free_unpacked(page, NULL);
		page = NULL;
		if (witness_ask(r, seq, r->ck->seq, &page) == -1)
			goto done;
		wc = page->witness_checkpoint;
		/* Every page is about the one checkpoint. */
		if (wc->checkpoint->seq != r->ck->seq ||
		    wc->checkpoint->checkpoint_seq != target ||
		    wc->checkpoint->checkpoint_hash.len != CHAIN_HASH_LEN ||
		    memcmp(wc->checkpoint->checkpoint_hash.data,
		    r->ck->checkpoint_hash.data, CHAIN_HASH_LEN) != 0) {
			rc = witness_alarm(r, "FORK", wc->checkpoint, "the "
			    "broker presented two different checkpoints at "
			    "record %" PRIu64 " within one round", r->ck->seq);
			goto done;
		}
	}
	if (seq != target) {
		witness_failed(r, 0, "the broker's leaves end at seq %" PRIu64
		    ", not at the checkpoint's seq %" PRIu64, seq, target);
		goto done;
	}
	if (CRYPTO_memcmp(h, r->ck->checkpoint_hash.data, CHAIN_HASH_LEN) !=
	    0) {
		witness_hex(r->st.hash, CHAIN_HASH_LEN, a);
		witness_hex(r->ck->checkpoint_hash.data, CHAIN_HASH_LEN, b);
		rc = witness_alarm(r, "REWRITE", r->ck, "REWRITE: the broker's "
		    "checkpoint seq %" PRIu64 " hash %s does not extend the "
		    "checkpoint this witness accepted, seq %" PRIu64 " hash "
		    "%s: the records in between do not chain to it (the log "
		    "was rewritten or forked)", target, b, r->st.seq, a);
		goto done;
	}
	rc = 0;
done:
	if (page != NULL)
		cpx__envelope__free_unpacked(page, NULL);
	return rc;
}
