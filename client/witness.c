/*
 * witness.c: the witness round of the client library (include/cpx.h,
 * docs/witness.md): fetch the broker's newest signed checkpoint with the
 * leaves since the one this witness accepted, recompute the chain
 * (lib/chain.h), check the other witnesses' cosignatures against this
 * view, countersign, and keep the state file; or, when the log does not
 * extend what was seen, refuse, keep the old state, save the evidence
 * and raise the alarm. Also the offline comparison of witnesses' signed
 * heads (cpx_witness_compare). Owns nothing between calls.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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
#include "identity.h"
#include "sign.h"
#include "tlsctx.h"
#include "witness_int.h"

#define STATE_MAGIC	"cpx-witness-state v1"
#define EVIDENCE_MAGIC	"cpx-witness-evidence v1"
#define STATE_MAX	(64u * 1024u)	/* a state or evidence file */

/* What a witness holds: the last checkpoint it accepted. */
struct wstate {
	uint64_t	 seq;		/* its checkpoint_seq, 0: none */
	uint8_t		 hash[CHAIN_HASH_LEN];
	uint64_t	 record;	/* the CHECKPOINT record's seq */
	int		 cosigned;
	uint8_t		*ck;		/* packed CHECKPOINT record, owned */
	size_t		 cklen;
};

/* One round's working set; everything in it is freed by round_done. */
struct round {
	struct cpx_client		*c;
	const char			*path;
	int				 timeout_ms;
	struct cpx_witness_result	*res;
	struct wstate			 st;
	Cpx__Envelope			*first;	/* first answer: checkpoint */
	const Cpx__AuditRecord		*ck;	/* inside first */
	uint8_t				 cert_hash[32];
	EVP_MD				*sha;
	EVP_MD_CTX			*md;
	/* Other witnesses' heads that fall in this round's range. */
	const Cpx__AuditRecord		*peers[COSIGN_MAX_PEERS];
	size_t				 npeers;
};

static void
hex(const uint8_t *p, size_t n, char *out)
{
	sign_hex(p, n, out);
}

static int
unhex(const char *s, size_t slen, uint8_t *out, size_t cap, size_t *n)
{
	size_t	i;
	int	hi, lo;

	*n = 0;
	if (slen % 2 != 0 || slen / 2 > cap)
		return -1;
	for (i = 0; i < slen; i += 2) {
		hi = s[i] >= '0' && s[i] <= '9' ? s[i] - '0' :
		    s[i] >= 'a' && s[i] <= 'f' ? s[i] - 'a' + 10 : -1;
		lo = s[i + 1] >= '0' && s[i + 1] <= '9' ? s[i + 1] - '0' :
		    s[i + 1] >= 'a' && s[i + 1] <= 'f' ? s[i + 1] - 'a' + 10 :
		    -1;
		if (hi < 0 || lo < 0)
			return -1;
		out[i / 2] = (uint8_t)(hi << 4 | lo);
	}
	*n = slen / 2;
	return 0;
}

/* Read a whole small file into buf (NUL-terminated). 0, 1 absent, -1. */
static int
slurp(const char *path, char *buf, size_t cap, char *err, size_t errlen)
{
	ssize_t	r;
	size_t	n = 0;
	int	fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1) {
		if (errno == ENOENT)
			return 1;
		return errf(err, errlen, "%s: %s", path, strerror(errno));
	}
	while (n < cap - 1 && (r = read(fd, buf + n, cap - 1 - n)) != 0) {
		if (r == -1) {
			if (errno == EINTR)
				continue;
			close(fd);
			return errf(err, errlen, "%s: read: %s", path,
			    strerror(errno));
		}
		n += (size_t)r;
	}
	close(fd);
	if (n == cap - 1)
		return errf(err, errlen, "%s: over %zu bytes: not a witness "
		    "file", path, cap - 1);
	buf[n] = '\0';
	return 0;
}

/*
 * The value of "key VALUE" in text, or NULL; *vlen its length. Keys
 * are at the start of a line.
 */
static const char *
field(const char *text, const char *key, size_t *vlen)
{
	const char	*p = text, *e;
	size_t		 kl = strlen(key);

	while (p != NULL && *p != '\0') {
		if (strncmp(p, key, kl) == 0 && p[kl] == ' ') {
			p += kl + 1;
			e = strchr(p, '\n');
			*vlen = e != NULL ? (size_t)(e - p) : strlen(p);
			return p;
		}
		if ((p = strchr(p, '\n')) != NULL)
			p++;
	}
	*vlen = 0;
	return NULL;
}

static int
field_u64(const char *text, const char *key, uint64_t *v)
{
	const char		*p;
	char			 buf[24], *end;
	size_t			 n;
	unsigned long long	 x;

	*v = 0;
	if ((p = field(text, key, &n)) == NULL || n == 0 ||
	    n >= sizeof(buf) || p[0] < '0' || p[0] > '9')
		return -1;
	memcpy(buf, p, n);
	buf[n] = '\0';
	errno = 0;
	x = strtoull(buf, &end, 10);
	if (errno != 0 || *end != '\0')
		return -1;
	*v = x;
	return 0;
}

/* A hex field as a packed AuditRecord: owned copy into *out. */
static int
field_record(const char *text, const char *key, uint8_t **out, size_t *len)
{
	const char	*p;
	size_t		 n;

	*out = NULL;
	*len = 0;
	if ((p = field(text, key, &n)) == NULL)
		return 1;
	if ((*out = malloc(n / 2 + 1)) == NULL)
		return -1;
	if (unhex(p, n, *out, n / 2 + 1, len) == -1) {
		free(*out);
		*out = NULL;
		return -1;
	}
	return 0;
}

static void
state_clear(struct wstate *st)
{
	free(st->ck);
	memset(st, 0, sizeof(*st));
}

/*
 * Load the state file: 0, or 1 if it does not exist (a new witness), or
 * -1 with err[]. The checkpoint kept in it must still say what the file
 * says: an edited state file is refused, not believed.
 */
static int
state_read(const char *path, struct wstate *st, char *err, size_t errlen)
{
	Cpx__AuditRecord	*ck = NULL;
	char			*buf = NULL;
	const char		*h;
	uint64_t		 cos;
	size_t			 n;
	int			 rc = -1;

	memset(st, 0, sizeof(*st));
	if ((buf = malloc(STATE_MAX)) == NULL)
		return errf(err, errlen, "out of memory");
	if ((rc = slurp(path, buf, STATE_MAX, err, errlen)) != 0)
		goto done;
	rc = -1;
	if (strncmp(buf, STATE_MAGIC "\n", sizeof(STATE_MAGIC)) != 0) {
		errf(err, errlen, "%s: not a witness state file (first line "
		    "is not \"%s\")", path, STATE_MAGIC);
		goto done;
	}
	if (field_u64(buf, "seq", &st->seq) == -1 ||
	    field_u64(buf, "record", &st->record) == -1 ||
	    field_u64(buf, "cosigned", &cos) == -1 ||
	    (h = field(buf, "hash", &n)) == NULL ||
	    unhex(h, n, st->hash, sizeof(st->hash), &n) == -1 ||
	    n != CHAIN_HASH_LEN ||
	    field_record(buf, "checkpoint", &st->ck, &st->cklen) != 0) {
		errf(err, errlen, "%s: malformed (seq, record, cosigned, hash "
		    "or checkpoint line missing or bad)", path);
		goto done;
	}
	st->cosigned = cos != 0;
	if ((ck = cpx__audit_record__unpack(NULL, st->cklen, st->ck)) == NULL ||
	    ck->kind != CPX__RECORD_KIND__RECORD_CHECKPOINT ||
	    ck->checkpoint_seq != st->seq || ck->seq != st->record ||
	    ck->checkpoint_hash.len != CHAIN_HASH_LEN ||
	    memcmp(ck->checkpoint_hash.data, st->hash, CHAIN_HASH_LEN) != 0) {
		errf(err, errlen, "%s: the checkpoint kept in it does not say "
		    "seq %" PRIu64 " with that hash: the file was edited or "
		    "damaged; restore it from a backup", path, st->seq);
		goto done;
	}
	rc = 0;
done:
	if (ck != NULL)
		cpx__audit_record__free_unpacked(ck, NULL);
	if (rc != 0)
		state_clear(st);
	free(buf);
	return rc;
}

/* fsync the directory holding path. 0 or -1 (errno). */
static int
sync_dir(const char *path)
{
	char	*copy;
	int	 fd, rc;

	if ((copy = strdup(path)) == NULL)
		return -1;
	fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	free(copy);
	if (fd == -1)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

static int
write_all(int fd, const char *p, size_t n)
{
	ssize_t	w;

	while (n > 0) {
		if ((w = write(fd, p, n)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/*
 * Write text to path, mode 0600: with replace, through a temporary file
 * renamed over it (a crash leaves the old state or the new, never a
 * torn one); else as a new file that must not exist yet. Both fsync'd,
 * with the directory. 0, or -1 with err[].
 */
static int
file_write(const char *path, const char *text, int replace, char *err,
    size_t errlen)
{
	char	tmp[4096];
	int	fd = -1;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return errf(err, errlen, "%s: path too long", path);
	if (replace)
		(void)unlink(tmp);	/* a temporary a crash left behind */
	fd = open(replace ? tmp : path, O_WRONLY | O_CREAT | O_EXCL |
	    O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd == -1)
		return errf(err, errlen, "%s: %s", replace ? tmp : path,
		    strerror(errno));
	if (write_all(fd, text, strlen(text)) == -1 || fsync(fd) == -1) {
		errf(err, errlen, "%s: write: %s", replace ? tmp : path,
		    strerror(errno));
		close(fd);
		(void)unlink(replace ? tmp : path);
		return -1;
	}
	if (close(fd) == -1 || (replace && rename(tmp, path) == -1) ||
	    sync_dir(path) == -1) {
		errf(err, errlen, "%s: %s", path, strerror(errno));
		if (replace)
			(void)unlink(tmp);
		return -1;
	}
	return 0;
}

/* A packed record as "key HEX\n" appended to buf at *used. 0 or -1. */
static int
put_hexline(char *buf, size_t cap, size_t *used, const char *key,
    const uint8_t *p, size_t n)
{
	size_t	kl = strlen(key);

	if (kl + 2 + 2 * n + 1 > cap - *used)
		return -1;
	memcpy(buf + *used, key, kl);
	buf[*used + kl] = ' ';
	hex(p, n, buf + *used + kl + 1);
	*used += kl + 1 + 2 * n;
	buf[(*used)++] = '\n';
	buf[*used] = '\0';
	return 0;
}

static uint8_t *
pack_record(const Cpx__AuditRecord *r, size_t *len)
{
	uint8_t	*p;

	*len = cpx__audit_record__get_packed_size(r);
	if ((p = malloc(*len ? *len : 1)) != NULL)
		cpx__audit_record__pack(r, p);
	return p;
}

static int
state_write(const char *path, const struct wstate *st, char *err,
    size_t errlen)
{
	char	*buf;
	char	 h[2 * CHAIN_HASH_LEN + 1];
	size_t	 used;
	int	 rc = -1;

	if ((buf = malloc(STATE_MAX)) == NULL)
		return errf(err, errlen, "out of memory");
	hex(st->hash, CHAIN_HASH_LEN, h);
	used = (size_t)snprintf(buf, STATE_MAX, "%s\nseq %" PRIu64 "\nhash %s"
	    "\nrecord %" PRIu64 "\ncosigned %d\n", STATE_MAGIC, st->seq, h,
	    st->record, st->cosigned ? 1 : 0);
	if (put_hexline(buf, STATE_MAX, &used, "checkpoint", st->ck,
	    st->cklen) == -1)
		errf(err, errlen, "%s: checkpoint too large", path);
	else
		rc = file_write(path, buf, 1, err, errlen);
	free(buf);
	return rc;
}

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
static int
sound(struct round *r, const char *kind, const Cpx__AuditRecord *seen,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int
sound(struct round *r, const char *kind, const Cpx__AuditRecord *seen,
    const char *fmt, ...)
{
	struct cpx_witness_result	*res = r->res;
	Cpx__Envelope			 env = CPX__ENVELOPE__INIT;
	Cpx__WitnessAlarm		 al = CPX__WITNESS_ALARM__INIT;
	Cpx__Envelope			*reply = NULL;
	va_list				 ap;
	uint8_t				*packed = NULL;
	char				*buf = NULL, err[256];
	size_t				 plen = 0, used;
	uint64_t			 rid;

	res->outcome = CPX_WITNESS_ALARM;
	snprintf(res->alarm, sizeof(res->alarm), "%s", kind);
	va_start(ap, fmt);
	(void)verrf(res->text, sizeof(res->text), fmt, ap);
	va_end(ap);
	/* Evidence first: it is what can be shown to the other states. */
	snprintf(res->evidence, sizeof(res->evidence), "%s.alarm-%lld",
	    r->path, (long long)clock_wall_ms());
	if ((buf = malloc(STATE_MAX)) != NULL &&
	    (packed = pack_record(seen, &plen)) != NULL) {
		used = (size_t)snprintf(buf, STATE_MAX, "%s\nalarm %s\n"
		    "text %s\n", EVIDENCE_MAGIC, kind, res->text);
		if (used >= STATE_MAX ||
		    (r->st.ck != NULL && put_hexline(buf, STATE_MAX, &used,
		    "held", r->st.ck, r->st.cklen) == -1) ||
		    put_hexline(buf, STATE_MAX, &used, "seen", packed,
		    plen) == -1 ||
		    file_write(res->evidence, buf, 0, err, sizeof(err)) == -1) {
			snprintf(res->evidence, sizeof(res->evidence),
			    "(not written: %s)", used >= STATE_MAX ?
			    "too large" : err);
		}
	} else
		snprintf(res->evidence, sizeof(res->evidence),
		    "(not written: out of memory)");
	free(buf);
	free(packed);
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

static int
failed(struct round *r, int local, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
failed(struct round *r, int local, const char *fmt, ...)
{
	va_list	ap;

	r->res->outcome = CPX_WITNESS_FAILED;
	r->res->local = local;
	va_start(ap, fmt);
	(void)verrf(r->res->text, sizeof(r->res->text), fmt, ap);
	va_end(ap);
	return -1;
}

/* Ask for leaves after have_seq of checkpoint record rec (0: newest). */
static int
ask(struct round *r, uint64_t have_seq, uint64_t rec, Cpx__Envelope **reply)
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
		return failed(r, 0, "no checkpoint from the broker: %s", err);
	if ((*reply)->body_case == CPX__ENVELOPE__BODY_ERROR) {
		e = (*reply)->error;
		return failed(r, e->reason == CPX__REASON__REASON_NOT_AUTHORIZED ?
		    2 : 0, "the broker refused the witness request (%s): %s",
		    alert_reason_name(e->reason), e->text);
	}
	if ((*reply)->body_case != CPX__ENVELOPE__BODY_WITNESS_CHECKPOINT)
		return failed(r, 0, "the broker answered the witness request "
		    "with message kind %d", (int)(*reply)->body_case);
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
		failed(r, 0, "the broker's checkpoint is not valid: %s", why);
		goto done;
	}
	if (r->ck->seq != r->ck->checkpoint_seq + 1) {
		failed(r, 0, "checkpoint record %" PRIu64 " covers seq %" PRIu64
		    ", not the record before it", r->ck->seq,
		    r->ck->checkpoint_seq);
		goto done;
	}
	if (trust_verify_broker_cert(client_witness_trust(r->c), x, &reason,
	    why, sizeof(why)) == -1) {
		failed(r, 0, "the checkpoint's signer is not a broker of the "
		    "network CA: %s", why);
		goto done;
	}
	der = client_witness_broker_cert(r->c, &len);
	p = der;
	if (der == NULL || (b = d2i_X509(NULL, &p, (long)len)) == NULL ||
	    tlsctx_spki_sha256(x, k1) == -1 ||
	    tlsctx_spki_sha256(b, k2) == -1 ||
	    CRYPTO_memcmp(k1, k2, sizeof(k1)) != 0) {
		failed(r, 0, "the checkpoint is signed by a key other than "
		    "the one of the broker this session checked (name, pin); "
		    "it is not cosigned");
		goto done;
	}
	rc = 0;
done:
	ERR_clear_error();
	X509_free(x);
	X509_free(b);
	return rc;
}

/*
 * Other witnesses' cosignatures: valid ones (signature, a certificate of
 * the CA) are kept to compare with this witness's view as the chain is
 * recomputed. One that claims a longer log signed before this
 * checkpoint shows a rollback at once. Returns 0, or 1 (alarm).
 */
static int
take_peers(struct round *r, const Cpx__WitnessCheckpoint *wc)
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
			return sound(r, "FORK", cs, "witness %s/%s cosigned "
			    "seq %" PRIu64 ", but the broker now presents "
			    "seq %" PRIu64 ", signed later: the log was cut "
			    "and grew again", id.country, id.node,
			    cs->cosigned_seq, r->ck->checkpoint_seq);
		if (cs->cosigned_seq >= r->st.seq &&
		    cs->cosigned_seq <= r->ck->checkpoint_seq &&
		    (r->st.seq != 0 || cs->cosigned_seq != 0))
			r->peers[r->npeers++] = cs;
	}
	return 0;
}

/* A peer head at seq with a hash other than ours: a fork. 0 or 1. */
static int
check_peers_at(struct round *r, uint64_t seq, const uint8_t h[CHAIN_HASH_LEN])
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
		hex(h, CHAIN_HASH_LEN, a);
		hex(cs->cosigned_hash.data, CHAIN_HASH_LEN, b);
		return sound(r, "FORK", cs, "FORK: witness %s/%s cosigned "
		    "seq %" PRIu64 " hash %s, this witness sees hash %s at "
		    "that seq: the broker shows different logs",
		    cs->peer_country, cs->peer_node, seq, b, a);
	}
	return 0;
}

/*
 * Walk the chain from our head to the presented one, page by page.
 * Returns 0 (it extends), 1 (alarm) or -1 (failed).
 */
static int
walk(struct round *r)
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
			failed(r, 0, "the broker's leaves start at seq %" PRIu64
			    " (%zu of them); seq %" PRIu64 " was asked for, up "
			    "to %" PRIu64, wc->leaves_from, n, seq + 1, target);
			goto done;
		}
		for (i = 0; i < n; i++) {
			cosign_leaf_get(wc->leaves.data + i * COSIGN_LEAF_LEN,
			    &len, leaf);
			if (chain_step(r->md, h, ++seq, len, leaf, h) == -1) {
				failed(r, 0, "out of memory");
				goto done;
			}
			if ((rc = check_peers_at(r, seq, h)) != 0)
				goto done;
			rc = -1;
		}
		r->res->leaves += n;
		if (!wc->more || seq == target)
			break;
		if (page != NULL)
			cpx__envelope__free_unpacked(page, NULL);
		page = NULL;
		if (ask(r, seq, r->ck->seq, &page) == -1)
			goto done;
		wc = page->witness_checkpoint;
		/* Every page is about the one checkpoint. */
		if (wc->checkpoint->seq != r->ck->seq ||
		    wc->checkpoint->checkpoint_seq != target ||
		    wc->checkpoint->checkpoint_hash.len != CHAIN_HASH_LEN ||
		    memcmp(wc->checkpoint->checkpoint_hash.data,
		    r->ck->checkpoint_hash.data, CHAIN_HASH_LEN) != 0) {
			rc = sound(r, "FORK", wc->checkpoint, "the broker "
			    "presented two different checkpoints at record %"
			    PRIu64 " within one round", r->ck->seq);
			goto done;
		}
	}
	if (seq != target) {
		failed(r, 0, "the broker's leaves end at seq %" PRIu64 ", not "
		    "at the checkpoint's seq %" PRIu64, seq, target);
		goto done;
	}
	if (CRYPTO_memcmp(h, r->ck->checkpoint_hash.data, CHAIN_HASH_LEN) !=
	    0) {
		hex(r->st.hash, CHAIN_HASH_LEN, a);
		hex(r->ck->checkpoint_hash.data, CHAIN_HASH_LEN, b);
		rc = sound(r, "REWRITE", r->ck, "REWRITE: the broker's "
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
		return failed(r, 1, "cannot sign with this node's key (it "
		    "must be ECDSA P-256 and the certificate's)");
	cs.checkpoint_record = r->ck->seq;
	cs.checkpoint_seq = r->ck->checkpoint_seq;
	cs.checkpoint_hash = r->ck->checkpoint_hash;
	cs.signature.data = sig;
	cs.signature.len = siglen;
	env.body_case = CPX__ENVELOPE__BODY_COSIGN;
	env.cosign = &cs;
	if (client_witness_call(r->c, &env, &rid, r->timeout_ms, &reply, err,
	    sizeof(err)) == -1)
		failed(r, 0, "cosignature not acknowledged: %s", err);
	else if (reply->body_case == CPX__ENVELOPE__BODY_ERROR)
		failed(r, 0, "the broker refused the cosignature (%s): %s",
		    alert_reason_name(reply->error->reason),
		    reply->error->text);
	else if (reply->body_case != CPX__ENVELOPE__BODY_COSIGN_ACK)
		failed(r, 0, "the broker answered the cosignature with "
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
	nst.cosigned = cosigned;
	if ((nst.ck = pack_record(r->ck, &nst.cklen)) == NULL)
		return failed(r, 1, "out of memory");
	if (state_write(r->path, &nst, err, sizeof(err)) == -1) {
		free(nst.ck);
		return failed(r, 1, "cannot save the witness state: %s", err);
	}
	state_clear(&r->st);
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

	if ((rc = state_read(r->path, &r->st, err, sizeof(err))) == -1)
		return failed(r, 1, "%s", err);
	res->held_seq = r->st.seq;
	if (r->st.seq != 0)
		hex(r->st.hash, CHAIN_HASH_LEN, res->held_hash);
	if (w == NULL)
		return failed(r, 0, "not connected to the broker");
	if (!w->may_witness)
		return failed(r, 2, "the broker's policy does not give node "
		    "%s/%s the witness right", w->country, w->node);
	if ((r->md = EVP_MD_CTX_new()) == NULL ||
	    (r->sha = EVP_MD_fetch(NULL, "SHA256", NULL)) == NULL ||
	    EVP_DigestInit_ex2(r->md, r->sha, NULL) != 1)
		return failed(r, 1, "out of memory");
	if (ask(r, r->st.seq, 0, &r->first) == -1)
		return -1;
	r->ck = r->first->witness_checkpoint->checkpoint;
	if (check_signer(r) == -1)
		return -1;
	res->seen_seq = r->ck->checkpoint_seq;
	if (res->seen_seq == 0)
		return failed(r, 0, "the broker's checkpoint covers no record "
		    "yet: nothing to witness");
	hex(r->ck->checkpoint_hash.data, CHAIN_HASH_LEN, res->seen_hash);
	if ((rc = take_peers(r, r->first->witness_checkpoint)) != 0)
		return rc;
	if (r->st.seq != 0 && r->ck->checkpoint_seq < r->st.seq)
		return sound(r, "TRUNCATION", r->ck, "TRUNCATION: the broker's "
		    "newest checkpoint is seq %" PRIu64 " hash %s, behind "
		    "seq %" PRIu64 " hash %s that this witness accepted (and "
		    "the broker signed): records were cut from the log",
		    res->seen_seq, res->seen_hash, res->held_seq,
		    res->held_hash);
	if (r->st.seq != 0 && r->ck->checkpoint_seq == r->st.seq) {
		if (CRYPTO_memcmp(r->ck->checkpoint_hash.data, r->st.hash,
		    CHAIN_HASH_LEN) != 0)
			return sound(r, "REWRITE", r->ck, "REWRITE: the broker "
			    "presents seq %" PRIu64 " with hash %s, but signed "
			    "hash %s for the same seq before: the log was "
			    "rewritten", res->seen_seq, res->seen_hash,
			    res->held_hash);
		if ((rc = check_peers_at(r, r->st.seq, r->st.hash)) != 0)
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
	if ((rc = check_peers_at(r, r->st.seq, r->st.hash)) != 0)
		return rc;
	if ((rc = walk(r)) != 0)
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
	state_clear(&r.st);
	EVP_MD_CTX_free(r.md);
	EVP_MD_free(r.sha);
	return rc;
}

/* --- offline comparison ------------------------------------------------ */

struct head {
	const char	*file;
	uint64_t	 seq;
	uint8_t		 hash[CHAIN_HASH_LEN];
	int64_t		 time;
};

/* Every broker-signed checkpoint in one file, appended to heads. */
static int
load_heads(const char *file, struct trust *t, struct head *heads, size_t *n,
    size_t cap, char *err, size_t errlen)
{
	static const char	*keys[] = { "checkpoint", "held", "seen" };
	Cpx__AuditRecord	*ck;
	X509			*x;
	uint8_t			*p, ch[32];
	size_t			 len, i;
	char			*buf, why[256];
	int			 reason, rc = -1, got = 0;

	if ((buf = malloc(STATE_MAX)) == NULL)
		return errf(err, errlen, "out of memory");
	if ((rc = slurp(file, buf, STATE_MAX, err, errlen)) != 0) {
		if (rc == 1)
			errf(err, errlen, "%s: no such file", file);
		rc = -1;
		goto done;
	}
	rc = -1;
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (field_record(buf, keys[i], &p, &len) != 0)
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
		X509_free(x);
		if (*n < cap) {
			heads[*n].file = file;
			heads[*n].seq = ck->checkpoint_seq;
			memcpy(heads[*n].hash, ck->checkpoint_hash.data,
			    CHAIN_HASH_LEN);
			heads[*n].time = ck->time;
			(*n)++;
		}
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

int
cpx_witness_compare(const char *const *files, size_t nfiles, const char *ca,
    char *report, size_t len)
{
	struct trust	*t = NULL;
	struct head	*heads = NULL, *a, *b;
	char		 err[512], ha[65], hb[65];
	size_t		 n = 0, cap = nfiles * 3, i, j, used = 0;
	int		 rc = -1, proven = 0;

	if (len > 0)
		report[0] = '\0';
	if (ca != NULL && (t = trust_new(ca, NULL, err, sizeof(err))) == NULL) {
		report_add(report, len, &used, "%s\n", err);
		return -1;
	}
	if ((heads = calloc(cap ? cap : 1, sizeof(*heads))) == NULL)
		goto done;
	for (i = 0; i < nfiles; i++)
		if (load_heads(files[i], t, heads, &n, cap, err,
		    sizeof(err)) == -1) {
			report_add(report, len, &used, "%s\n", err);
			goto done;
		}
	for (i = 0; i < n; i++)
		for (j = i + 1; j < n; j++) {
			a = &heads[i];
			b = &heads[j];
			if (b->seq < a->seq) {
				struct head *tmp = a;

				a = b;
				b = tmp;
			}
			hex(a->hash, CHAIN_HASH_LEN, ha);
			hex(b->hash, CHAIN_HASH_LEN, hb);
			if (a->seq == b->seq && memcmp(a->hash, b->hash,
			    CHAIN_HASH_LEN) != 0) {
				report_add(report, len, &used, "FORK: seq %"
				    PRIu64 " has hash %s in %s and hash %s in "
				    "%s, both signed by the broker\n", a->seq,
				    ha, a->file, hb, b->file);
				proven = 1;
			} else if (a->seq < b->seq && a->time > b->time) {
				report_add(report, len, &used, "ROLLBACK: the "
				    "broker signed seq %" PRIu64 " (%s) after "
				    "seq %" PRIu64 " (%s): its log was cut and "
				    "grew again\n", a->seq, a->file, b->seq,
				    b->file);
				proven = 1;
			}
		}
	if (!proven)
		report_add(report, len, &used, "%zu signed checkpoint(s) from "
		    "%zu file(s): no fork or rollback shown by the heads alone "
		    "(heads at different seqs need the leaves between them: "
		    "let each witness run a round)\n", n, nfiles);
	rc = proven;
done:
	free(heads);
	trust_free(&t);
	return rc;
}
