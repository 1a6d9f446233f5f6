/*
 * test_witness.c: witnesses in three countries against a real broker
 * (docs/witness.md). They cosign its checkpoints and cpx-audit verify
 * names them; then the broker's operator cuts the log's tail and hides
 * the high-water mark, or rewrites an old record and re-signs every
 * checkpoint with the broker's own key, or shows two witnesses two
 * different logs: every witness raises the alarm on its next round,
 * keeps its state, and the evidence proves it offline. A node without
 * the right, and malformed witness messages, are refused while the
 * broker keeps serving.
 */
#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/evp.h>

#include "audit.h"
#include "chain.h"
#include "cosign.h"
#include "cpx_client.h"
#include "sign.h"
#include "testbroker.h"
#include "testlog.h"
#include "testpki.h"
#include "testutil.h"
#include "tlsctx.h"
#include "wire.h"
#include "witness_int.h"

#define NALERTS		12
#define PAGED_RECORDS	10000u	/* three pages of leaves */
#define SEG		"seg-00000000000000000001.log"
#define MARK		"high-water-mark"

static const char policy[] =
    "[defaults]\n"
    "rights = publish subscribe\n"
    "[node hr-ncp]\ncountry = HR\nrights = subscribe witness\n"
    "[node rs-ncp]\ncountry = RS\nrights = subscribe witness\n"
    "[node at-ncp]\ncountry = AT\nrights = subscribe witness\n";

static const char *const witnesses[3] = { "hr-ncp", "rs-ncp", "at-ncp" };

struct fx {
	struct testbroker	tb;
	struct testbroker	tb2;		/* the fork's other broker */
	char			dir[256];	/* states, evidence */
	char			state[3][320];
};

static const char *
bindir(void)
{
	const char *b = getenv("CPX_BINARY_DIR");

	return b != NULL ? b : CPX_BINARY_DIR;
}

static void
publish_some(struct testbroker *tb, int n)
{
	struct cpx_client *c;
	struct testalert ta;
	struct cpx_result res;
	char err[256];
	int i;

	c = testbroker_connect(tb, "si-ncp", 0, err, sizeof(err));
	if (c == NULL)
		fail_msg("si-ncp: %s", err);
	for (i = 0; i < n; i++) {
		testalert_init(&ta, NULL, CPX__CATEGORY__CATEGORY_CROSSING,
		    CPX__SEVERITY__SEVERITY_HIGH,
		    CPX__HANDLING__HANDLING_NETWORK, "", "witnessed crossing");
		if (cpx_publish(c, &ta.alert, 10000, &res) == -1)
			fail_msg("publish: %s", res.text);
	}
	cpx_client_free(&c);
}

/* One library round of node against tb. Returns the outcome. */
static int
round_of(struct testbroker *tb, const char *node, const char *state,
    struct cpx_witness_result *res)
{
	struct cpx_client *c;
	char err[256];
	int rc;

	c = testbroker_connect(tb, node, 0, err, sizeof(err));
	if (c == NULL)
		fail_msg("%s: %s", node, err);
	rc = cpx_witness_round(c, state, 10000, res);
	cpx_client_free(&c);
	if (rc == -1)
		fprintf(stderr, "%s: round failed: %s\n", node, res->text);
	return res->outcome;
}

/* Fresh directories for each test; brokers stopped even if it fails. */
static int
setup(void **state)
{
	struct fx *f;
	int i;

	if ((f = calloc(1, sizeof(*f))) == NULL ||
	    testutil_mkdtemp(f->dir, sizeof(f->dir)) == -1) {
		free(f);
		return -1;
	}
	for (i = 0; i < 3; i++)
		snprintf(f->state[i], sizeof(f->state[i]), "%s/%s.state",
		    f->dir, witnesses[i]);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	int rc = 0;

	if (testbroker_cleanup(&f->tb) == -1 ||
	    testbroker_cleanup(&f->tb2) == -1)
		rc = -1;
	if (getenv("CPX_KEEP_TEST_DIRS") == NULL &&
	    testutil_rmrf(f->dir) == -1)
		rc = -1;
	free(f);
	return rc;
}

/*
 * A broker with NALERTS alerts whose newest checkpoint the three
 * witnesses checked and cosigned. *seq gets its checkpoint_seq.
 */
static void
witnessed(struct fx *f, uint64_t *seq)
{
	struct cpx_witness_result res;
	int i;

	if (testbroker_start(&f->tb, NULL, policy) == -1)
		fail_msg("broker did not start");
	publish_some(&f->tb, NALERTS);
	for (i = 0; i < 3; i++) {
		assert_int_equal(round_of(&f->tb, witnesses[i], f->state[i],
		    &res), CPX_WITNESS_COSIGNED);
		/* One checkpoint for all three: the one they can agree on. */
		if (i == 0)
			*seq = res.seen_seq;
		assert_int_equal(res.seen_seq, *seq);
		assert_true(res.cosig_seq > *seq);
		/* Each sees the earlier witnesses' cosignatures, and agrees. */
		assert_int_equal(res.peers_checked, (uint64_t)i);
	}
	assert_true(*seq > NALERTS);
}

/* Run argv (NULL-terminated) with stdout and stderr in out[cap]. */
static int
run(char *out, size_t cap, const char *const *argv)
{
	char path[512];
	pid_t pid;
	ssize_t r;
	size_t n = 0;
	int p[2], status;

	assert_int_equal(pipe(p), 0);
	if ((pid = fork()) == 0) {
		dup2(p[1], 1);
		dup2(p[1], 2);
		close(p[0]);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(p[1]);
	while (n + 1 < cap && (r = read(p[0], out + n, cap - 1 - n)) > 0)
		n += (size_t)r;
	out[n] = '\0';
	close(p[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	(void)path;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int
audit_verify(struct fx *f, const char *require, const char *grace,
    char *out, size_t cap)
{
	char exe[512], ca[512];
	const char *argv[10];
	int n = 0;

	snprintf(exe, sizeof(exe), "%s/broker/cpx-audit", bindir());
	assert_int_equal(testpki_path(ca, sizeof(ca), "ca.pem"), 0);
	argv[n++] = exe;
	argv[n++] = "verify";
	argv[n++] = "--ca";
	argv[n++] = ca;
	if (require != NULL) {
		argv[n++] = "--require-witnesses";
		argv[n++] = require;
	}
	if (grace != NULL) {
		argv[n++] = "--witness-grace";
		argv[n++] = grace;
	}
	argv[n++] = f->tb.audit;
	argv[n] = NULL;
	return run(out, cap, argv);
}

/* Start the broker again on its directory, taking a log without mark. */
static void
respawn_without_mark(struct testbroker *tb)
{
	char exe[512];
	int64_t until;
	int before = testbroker_log_count(tb, "listening on"), fd;

	snprintf(exe, sizeof(exe), "%s/broker/cpx-broker", bindir());
	if ((tb->pid = fork()) == 0) {
		fd = open(tb->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
		if (fd != -1) {
			dup2(fd, 2);
			dup2(fd, 1);
		}
		execl(exe, "cpx-broker", "-c", tb->conf, "-d",
		    "--accept-log-without-mark", (char *)NULL);
		_exit(127);
	}
	assert_true(tb->pid > 0);
	until = testutil_now_ms() + 20000;
	while (testbroker_log_count(tb, "listening on") == before) {
		if (testutil_now_ms() > until ||
		    waitpid(tb->pid, NULL, WNOHANG) == tb->pid) {
			tb->pid = 0;
			fail_msg("broker did not start again (log %s)",
			    tb->log);
		}
		usleep(10000);	/* polling interval, not a wait */
	}
}

static void
stop_broker(struct testbroker *tb)
{
	int status = testbroker_stop(tb, SIGTERM);

	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* The segment file of tb's log: bytes and size (owned). */
static uint8_t *
read_seg(struct testbroker *tb, size_t *len)
{
	char path[512];
	struct stat sb;
	uint8_t *buf;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", tb->audit, SEG);
	assert_true((fd = open(path, O_RDONLY)) != -1);
	assert_int_equal(fstat(fd, &sb), 0);
	assert_non_null(buf = malloc((size_t)sb.st_size + 1));
	assert_int_equal(read(fd, buf, (size_t)sb.st_size), sb.st_size);
	close(fd);
	*len = (size_t)sb.st_size;
	return buf;
}

static void
write_seg(struct testbroker *tb, const uint8_t *buf, size_t len)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", tb->audit, SEG);
	assert_int_equal(testutil_write_file(path, buf, len), 0);
	/* The operator hides the high-water mark as well. */
	snprintf(path, sizeof(path), "%s/%s", tb->audit, MARK);
	if (unlink(path) == -1)
		assert_int_equal(errno, ENOENT);
}

static uint32_t
be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

/* Offset just after record `keep` of a segment starting at record 1. */
static size_t
offset_after(const uint8_t *buf, size_t len, uint64_t keep)
{
	size_t off = 0;
	uint64_t i;

	for (i = 0; i < keep; i++) {
		assert_true(off + 8 <= len);
		off += 8 + be32(buf + off + 4) + CHAIN_HASH_LEN;
	}
	assert_true(off <= len);
	return off;
}

/*
 * What an operator holding the broker's key can do: change record
 * `victim` (its peer address), chain every record after it again and
 * re-sign every checkpoint, so that the log checks on its own. Returns
 * the new segment (owned) in *out.
 */
static void
rewrite_log(const uint8_t *buf, size_t len, uint64_t victim, uint8_t **out,
    size_t *outlen)
{
	EVP_PKEY *key;
	X509 *cert;
	EVP_MD_CTX *md;
	Cpx__AuditRecord *rec;
	uint8_t *nb, h[CHAIN_HASH_LEN], msg[COSIGN_CKPT_MSG_LEN], *sig, *p;
	uint8_t *old_sig;
	char *old_addr;
	size_t off = 0, no = 0, siglen, plen;
	uint32_t rl;
	uint64_t seq = 0;
	char path[512], err[256];

	assert_int_equal(testpki_path(path, sizeof(path), "broker.key"), 0);
	assert_non_null(key = tlsctx_load_key(path, err, sizeof(err)));
	assert_int_equal(testpki_path(path, sizeof(path), "broker.pem"), 0);
	assert_non_null(cert = tlsctx_load_cert(path, err, sizeof(err)));
	assert_non_null(md = EVP_MD_CTX_new());
	assert_int_equal(EVP_DigestInit_ex(md, EVP_sha256(), NULL), 1);
	assert_non_null(nb = malloc(len + 4096));
	memset(h, 0, sizeof(h));
	while (off < len) {
		rl = be32(buf + off + 4);
		assert_non_null(rec = cpx__audit_record__unpack(NULL, rl,
		    buf + off + 8));
		seq++;
		old_addr = rec->peer_address;
		old_sig = rec->checkpoint_signature.data;
		if (seq == victim)
			rec->peer_address = "10.6.6.6";
		if (rec->kind == CPX__RECORD_KIND__RECORD_CHECKPOINT &&
		    seq > victim) {
			/* The chain hash up to the record before: h now. */
			memcpy(rec->checkpoint_hash.data, h, CHAIN_HASH_LEN);
			cosign_checkpoint_msg(msg, rec->checkpoint_seq, h,
			    rec->time);
			assert_int_equal(sign_bytes(key, cert, msg,
			    sizeof(msg), &sig, &siglen), 0);
			rec->checkpoint_signature.data = sig;
			rec->checkpoint_signature.len = siglen;
		} else
			sig = NULL;
		plen = cpx__audit_record__get_packed_size(rec);
		assert_true(no + 8 + plen + CHAIN_HASH_LEN <= len + 4096);
		p = nb + no;
		memcpy(p, buf + off, 4);
		p[4] = (uint8_t)(plen >> 24);
		p[5] = (uint8_t)(plen >> 16);
		p[6] = (uint8_t)(plen >> 8);
		p[7] = (uint8_t)plen;
		cpx__audit_record__pack(rec, p + 8);
		assert_int_equal(chain_hash_record(md, h, seq, p + 8,
		    (uint32_t)plen, h), 0);
		memcpy(p + 8 + plen, h, CHAIN_HASH_LEN);
		no += 8 + plen + CHAIN_HASH_LEN;
		off += 8 + rl + CHAIN_HASH_LEN;
		/* The record frees what it was unpacked with, not ours. */
		rec->peer_address = old_addr;
		rec->checkpoint_signature.data = old_sig;
		free(sig);
		cpx__audit_record__free_unpacked(rec, NULL);
	}
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(key);
	X509_free(cert);
	*out = nb;
	*outlen = no;
}

static char *
slurp_file(const char *path)
{
	char *s = testutil_read_text(path);

	assert_non_null(s);
	return s;
}

/* The round saw alarm `kind` and left the state file as it was. */
static void
assert_alarm(const struct cpx_witness_result *res, const char *kind,
    const char *state, const char *before)
{
	char *now = slurp_file(state);
	struct stat sb;

	if (res->outcome != CPX_WITNESS_ALARM)
		fail_msg("no alarm: outcome %d: %s", res->outcome, res->text);
	assert_string_equal(res->alarm, kind);
	assert_string_equal(now, before);
	assert_int_equal(stat(res->evidence, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	free(now);
}

/* `cpx witness --interval 1`: a round a second until SIGTERM, exit 0. */
static void
interval_rounds(struct fx *f)
{
	const char *pki;
	char exe[512], out[300], *text = NULL;
	int64_t until;
	pid_t pid;
	int fd, status;

	assert_int_equal(testpki_get(&pki), 0);
	snprintf(exe, sizeof(exe), "%s/client/cpx", bindir());
	snprintf(out, sizeof(out), "%s/interval.out", f->dir);
	if ((pid = fork()) == 0) {
		if ((fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600)) != -1)
			dup2(fd, 1);
		execl(exe, "cpx", "witness", "--broker", f->tb.endpoint,
		    "--pki", pki, "--node", "at-ncp", "--state-file",
		    f->state[2], "--interval", "1", (char *)NULL);
		_exit(127);
	}
	assert_true(pid > 0);
	until = testutil_now_ms() + 20000;
	for (;;) {
		free(text);
		assert_non_null(text = testutil_read_text(out));
		if (strstr(text, "unchanged") != NULL &&
		    strstr(strstr(text, "unchanged") + 1, "unchanged") != NULL)
			break;
		if (testutil_now_ms() > until) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			fail_msg("two rounds not seen in 20 s:\n%s", text);
		}
		usleep(20000);	/* polling interval, not a wait */
	}
	free(text);
	assert_int_equal(kill(pid, SIGTERM), 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void
test_witness_three_countries(void **state)
{
	struct cpx_witness_result res;
	struct fx *f = *state;
	struct stat sb;
	char out[16384];
	uint64_t seq;

	witnessed(f, &seq);
	/* Nothing new: the same checkpoint, nothing to cosign again. */
	assert_int_equal(round_of(&f->tb, "hr-ncp", f->state[0], &res),
	    CPX_WITNESS_UNCHANGED);
	assert_int_equal(res.seen_seq, seq);
	assert_int_equal(res.peers_checked, 2);
	assert_int_equal(stat(f->state[0], &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	interval_rounds(f);
	/* More records: the next checkpoint extends the last; cosigned. */
	publish_some(&f->tb, 3);
	stop_broker(&f->tb);
	assert_int_equal(audit_verify(f, "3", NULL, out, sizeof(out)), 0);
	if (strstr(out, "cosigned by 3 countries: HR/hr-ncp, RS/rs-ncp, "
	    "AT/at-ncp") == NULL || strstr(out, "OK") == NULL)
		fail_msg("cpx-audit verify:\n%s", out);
	/* Four countries are not there, and an empty grace fails too. */
	assert_int_equal(audit_verify(f, "4", NULL, out, sizeof(out)), 1);
	assert_non_null(strstr(out, "no checkpoint is cosigned by 4"));
	assert_int_equal(testbroker_restart(&f->tb), 0);
	assert_int_equal(round_of(&f->tb, "rs-ncp", f->state[1], &res),
	    CPX_WITNESS_COSIGNED);
	assert_true(res.seen_seq > seq);
	assert_true(res.leaves >= res.seen_seq - seq);
}

static void
test_witness_truncation(void **state)
{
	struct cpx_witness_result res;
	struct fx *f = *state;
	uint8_t *seg;
	size_t len;
	uint64_t seq;
	char *before[3], out[8192], exe[512], ev[1100];
	const char *pki, *argv[16];
	int i;

	witnessed(f, &seq);
	for (i = 0; i < 3; i++)
		before[i] = slurp_file(f->state[i]);
	stop_broker(&f->tb);
	/* Cut the tail well below what the witnesses cosigned. */
	seg = read_seg(&f->tb, &len);
	write_seg(&f->tb, seg, offset_after(seg, len, 4));
	free(seg);
	respawn_without_mark(&f->tb);
	for (i = 0; i < 2; i++) {
		assert_int_equal(round_of(&f->tb, witnesses[i], f->state[i],
		    &res), CPX_WITNESS_ALARM);
		assert_alarm(&res, "TRUNCATION", f->state[i], before[i]);
		assert_int_equal(res.held_seq, seq);
		assert_true(res.seen_seq < seq);
	}
	/* The third through the command line: exit 5, the alarm line. */
	assert_int_equal(testpki_get(&pki), 0);
	snprintf(exe, sizeof(exe), "%s/client/cpx", bindir());
	argv[0] = exe;
	argv[1] = "witness";
	argv[2] = "--broker";
	argv[3] = f->tb.endpoint;
	argv[4] = "--pki";
	argv[5] = pki;
	argv[6] = "--node";
	argv[7] = "at-ncp";
	argv[8] = "--state-file";
	argv[9] = f->state[2];
	argv[10] = "--once";
	argv[11] = NULL;
	assert_int_equal(run(out, sizeof(out), argv), 5);
	if (strstr(out, "cpx witness: ALARM TRUNCATION:") == NULL)
		fail_msg("cpx witness said:\n%s", out);
	{
		char *now = slurp_file(f->state[2]);

		assert_string_equal(now, before[2]);
		free(now);
	}
	/* The broker's log and its audit log have it too. */
	assert_true(testbroker_wait_log(&f->tb, "WITNESS ALARM", 5000));
	assert_int_equal(testbroker_log_count(&f->tb, "WITNESS ALARM"), 3);
	/* The evidence alone shows a rollback: two heads, both signed. */
	snprintf(ev, sizeof(ev), "%s", res.evidence);
	argv[0] = exe;
	argv[1] = "witness";
	argv[2] = "compare";
	argv[3] = ev;
	argv[4] = NULL;
	assert_int_equal(run(out, sizeof(out), argv), 5);
	if (strstr(out, "ROLLBACK") == NULL)
		fail_msg("compare said:\n%s", out);
	stop_broker(&f->tb);
	assert_int_equal(audit_verify(f, "1", NULL, out, sizeof(out)), 1);
	assert_non_null(strstr(out, "WITNESS ALARM"));
	for (i = 0; i < 3; i++)
		free(before[i]);
}

static void
test_witness_rewrite(void **state)
{
	struct cpx_witness_result res;
	struct fx *f = *state;
	uint8_t *seg, *nseg;
	size_t len, nlen;
	uint64_t seq;
	char *before[3], out[8192];
	int i;

	witnessed(f, &seq);
	for (i = 0; i < 3; i++)
		before[i] = slurp_file(f->state[i]);
	stop_broker(&f->tb);
	seg = read_seg(&f->tb, &len);
	rewrite_log(seg, len, 3, &nseg, &nlen);
	write_seg(&f->tb, nseg, nlen);
	free(seg);
	free(nseg);
	/*
	 * Chain and checkpoint signatures check, but the cosignatures in it
	 * name the old heads: cpx-audit sees the rewrite too.
	 */
	assert_int_equal(audit_verify(f, NULL, NULL, out, sizeof(out)), 1);
	if (strstr(out, "cosignature names checkpoint record") == NULL)
		fail_msg("cpx-audit verify:\n%s", out);
	respawn_without_mark(&f->tb);
	for (i = 0; i < 3; i++) {
		assert_int_equal(round_of(&f->tb, witnesses[i], f->state[i],
		    &res), CPX_WITNESS_ALARM);
		assert_alarm(&res, "REWRITE", f->state[i], before[i]);
		assert_int_equal(res.held_seq, seq);
	}
	for (i = 0; i < 3; i++)
		free(before[i]);
}

/* Copy src's audit directory over dst's (both brokers stopped). */
static void
copy_audit(struct testbroker *src, struct testbroker *dst)
{
	char cmd[1024];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s' && cp -a '%s' '%s'",
	    dst->audit, src->audit, dst->audit);
	assert_int_equal(system(cmd), 0);
}

static void
test_witness_fork(void **state)
{
	struct cpx_witness_result res;
	struct fx *f = *state;
	uint8_t *seg, *nseg;
	size_t len, nlen;
	uint64_t seq_a, seq_b;
	char out[8192], exe[512], *before;
	const char *argv[8];

	/* One log, copied; the copy rewritten: two brokers, two stories. */
	if (testbroker_start(&f->tb, NULL, policy) == -1)
		fail_msg("broker did not start");
	publish_some(&f->tb, NALERTS);
	stop_broker(&f->tb);
	if (testbroker_start(&f->tb2, NULL, policy) == -1)
		fail_msg("second broker did not start");
	stop_broker(&f->tb2);
	copy_audit(&f->tb, &f->tb2);
	seg = read_seg(&f->tb2, &len);
	rewrite_log(seg, len, 3, &nseg, &nlen);
	write_seg(&f->tb2, nseg, nlen);
	free(seg);
	free(nseg);
	assert_int_equal(testbroker_restart(&f->tb), 0);
	respawn_without_mark(&f->tb2);
	assert_int_equal(round_of(&f->tb, "hr-ncp", f->state[0], &res),
	    CPX_WITNESS_COSIGNED);
	seq_a = res.seen_seq;
	assert_int_equal(round_of(&f->tb2, "rs-ncp", f->state[1], &res),
	    CPX_WITNESS_COSIGNED);
	seq_b = res.seen_seq;
	assert_int_equal(seq_a, seq_b);
	/* Each alone saw a consistent log; side by side, a fork. */
	snprintf(exe, sizeof(exe), "%s/client/cpx", bindir());
	argv[0] = exe;
	argv[1] = "witness";
	argv[2] = "compare";
	argv[3] = f->state[0];
	argv[4] = f->state[1];
	argv[5] = NULL;
	assert_int_equal(run(out, sizeof(out), argv), 5);
	if (strstr(out, "FORK: seq") == NULL)
		fail_msg("compare said:\n%s", out);
	/* One witness's state alone proves nothing. */
	argv[4] = NULL;
	assert_int_equal(run(out, sizeof(out), argv), 0);
	/* Shown the other branch, the RS witness alarms at once. */
	before = slurp_file(f->state[1]);
	assert_int_equal(round_of(&f->tb, "rs-ncp", f->state[1], &res),
	    CPX_WITNESS_ALARM);
	assert_alarm(&res, "REWRITE", f->state[1], before);
	free(before);
}

/*
 * What an operator holding the broker's key can do to a checkpoint the
 * witnesses accepted: keep records 1..seq, replace record seq + 1 (the
 * checkpoint over seq) by another over the same seq and hash, signed a
 * second later, and cut what followed (the cosignatures). Returns the
 * new segment (owned) in *out.
 */
static void
replace_checkpoint(const uint8_t *buf, size_t len, uint64_t seq,
    uint8_t **out, size_t *outlen)
{
	EVP_PKEY *key;
	X509 *cert;
	EVP_MD_CTX *md;
	Cpx__AuditRecord *rec;
	uint8_t *nb, *p, *sig, *old_sig, msg[COSIGN_CKPT_MSG_LEN];
	size_t off, siglen, plen;
	uint32_t rl;
	char path[512], err[256];

	assert_int_equal(testpki_path(path, sizeof(path), "broker.key"), 0);
	assert_non_null(key = tlsctx_load_key(path, err, sizeof(err)));
	assert_int_equal(testpki_path(path, sizeof(path), "broker.pem"), 0);
	assert_non_null(cert = tlsctx_load_cert(path, err, sizeof(err)));
	assert_non_null(md = EVP_MD_CTX_new());
	assert_int_equal(EVP_DigestInit_ex(md, EVP_sha256(), NULL), 1);
	off = offset_after(buf, len, seq);
	assert_true(off + 8 <= len);
	rl = be32(buf + off + 4);
	assert_non_null(rec = cpx__audit_record__unpack(NULL, rl,
	    buf + off + 8));
	assert_int_equal(rec->kind, CPX__RECORD_KIND__RECORD_CHECKPOINT);
	assert_int_equal(rec->checkpoint_seq, seq);
	rec->time += 1000;
	cosign_checkpoint_msg(msg, seq, rec->checkpoint_hash.data, rec->time);
	assert_int_equal(sign_bytes(key, cert, msg, sizeof(msg), &sig,
	    &siglen), 0);
	old_sig = rec->checkpoint_signature.data;
	rec->checkpoint_signature.data = sig;
	rec->checkpoint_signature.len = siglen;
	plen = cpx__audit_record__get_packed_size(rec);
	assert_non_null(nb = malloc(off + 8 + plen + CHAIN_HASH_LEN));
	memcpy(nb, buf, off + 4);
	p = nb + off;
	p[4] = (uint8_t)(plen >> 24);
	p[5] = (uint8_t)(plen >> 16);
	p[6] = (uint8_t)(plen >> 8);
	p[7] = (uint8_t)plen;
	cpx__audit_record__pack(rec, p + 8);
	/* Chained onto record seq's hash, which the frame before ends with. */
	assert_int_equal(chain_hash_record(md, buf + off - CHAIN_HASH_LEN,
	    seq + 1, p + 8, (uint32_t)plen, p + 8 + plen), 0);
	rec->checkpoint_signature.data = old_sig;
	cpx__audit_record__free_unpacked(rec, NULL);
	free(sig);
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(key);
	X509_free(cert);
	*out = nb;
	*outlen = off + 8 + plen + CHAIN_HASH_LEN;
}

/*
 * The checkpoint the witnesses accepted, replaced by another over the
 * same seq and hash: the witness that held it alarms (REWRITE), a new
 * witness accepts the replacement, and compare proves the replacement
 * from those two state files alone.
 */
static void
test_witness_checkpoint_replaced(void **state)
{
	struct cpx_witness_result res;
	struct fx *f = *state;
	uint8_t *seg, *nseg;
	size_t len, nlen;
	uint64_t seq;
	char *before, out[8192], exe[512], ca[512], fresh[320], ev[1024];
	const char *argv[8];

	witnessed(f, &seq);
	before = slurp_file(f->state[0]);
	stop_broker(&f->tb);
	seg = read_seg(&f->tb, &len);
	replace_checkpoint(seg, len, seq, &nseg, &nlen);
	write_seg(&f->tb, nseg, nlen);
	free(seg);
	free(nseg);
	respawn_without_mark(&f->tb);
	assert_int_equal(round_of(&f->tb, witnesses[0], f->state[0], &res),
	    CPX_WITNESS_ALARM);
	assert_alarm(&res, "REWRITE", f->state[0], before);
	assert_int_equal(res.seen_seq, seq);
	if (strstr(res.text, "another checkpoint over seq") == NULL)
		fail_msg("alarm text: %s", res.text);
	snprintf(ev, sizeof(ev), "%s", res.evidence);
	free(before);
	/* A witness without state has nothing to hold against it. */
	snprintf(fresh, sizeof(fresh), "%s/fresh.state", f->dir);
	assert_int_equal(round_of(&f->tb, witnesses[1], fresh, &res),
	    CPX_WITNESS_COSIGNED);
	assert_int_equal(res.seen_seq, seq);
	snprintf(exe, sizeof(exe), "%s/client/cpx", bindir());
	assert_int_equal(testpki_path(ca, sizeof(ca), "ca.pem"), 0);
	argv[0] = exe;
	argv[1] = "witness";
	argv[2] = "compare";
	argv[3] = "--ca";
	argv[4] = ca;
	argv[5] = f->state[0];
	argv[6] = fresh;
	argv[7] = NULL;
	assert_int_equal(run(out, sizeof(out), argv), 5);
	if (strstr(out, "FORK: record") == NULL ||
	    strstr(out, "both by the broker") == NULL)
		fail_msg("compare said:\n%s", out);
	/* The evidence file alone (both checkpoints) proves it too. */
	argv[5] = ev;
	argv[6] = NULL;
	assert_int_equal(run(out, sizeof(out), argv), 5);
	if (strstr(out, "FORK: record") == NULL)
		fail_msg("compare said:\n%s", out);
	/* Without the CA it says what it could not check. */
	argv[3] = ev;
	argv[4] = NULL;
	assert_int_equal(run(out, sizeof(out), argv), 5);
	if (strstr(out, "without --ca") == NULL)
		fail_msg("compare said:\n%s", out);
}

/*
 * A witness far behind: the leaves come in pages, each a bounded read
 * for the broker, and the witness walks them all. The long log is
 * written through the audit API while the broker is stopped.
 */
static void
test_witness_paging(void **state)
{
	struct cpx_witness_result res;
	struct fx *f = *state;
	int64_t t0;

	if (testbroker_start(&f->tb, NULL, policy) == -1)
		fail_msg("broker did not start");
	stop_broker(&f->tb);
	/* With the broker's key: closing signs a checkpoint over it all. */
	testlog_fill(f->tb.audit, NULL, PAGED_RECORDS);
	assert_int_equal(testbroker_restart(&f->tb), 0);
	t0 = testutil_now_ms();
	assert_int_equal(round_of(&f->tb, "hr-ncp", f->state[0], &res),
	    CPX_WITNESS_COSIGNED);
	fprintf(stderr, "witness round over %" PRIu64 " records (%" PRIu64
	    " pages): %" PRId64 " ms\n", res.leaves, (res.leaves +
	    COSIGN_MAX_LEAVES - 1) / COSIGN_MAX_LEAVES,
	    testutil_now_ms() - t0);
	assert_true(res.seen_seq >= PAGED_RECORDS);
	assert_int_equal(res.leaves, res.seen_seq);
	assert_true(testbroker_log_count(&f->tb, ", more,") >=
	    (int)(PAGED_RECORDS / COSIGN_MAX_LEAVES));
}

/* One raw witness exchange of node with tb: the reply (owned) or NULL. */
static Cpx__Envelope *
raw_call(struct cpx_client *c, Cpx__Envelope *req, char *err, size_t errlen)
{
	Cpx__Envelope *reply = NULL;
	uint64_t rid;

	if (client_witness_call(c, req, &rid, 5000, &reply, err,
	    errlen) == -1)
		return NULL;
	return reply;
}

static void
assert_error(Cpx__Envelope *reply, int reason, const char *needle)
{
	assert_non_null(reply);
	if (reply->body_case != CPX__ENVELOPE__BODY_ERROR)
		fail_msg("answer kind %d, not an Error", reply->body_case);
	assert_int_equal(reply->error->reason, reason);
	if (strstr(reply->error->text, needle) == NULL)
		fail_msg("error text: %s", reply->error->text);
	cpx__envelope__free_unpacked(reply, NULL);
}

static void
test_witness_refusals(void **state)
{
	struct cpx_witness_result res;
	struct fx *f = *state;
	struct cpx_client *c;
	Cpx__Envelope env = CPX__ENVELOPE__INIT, *reply;
	Cpx__WitnessRequest rq = CPX__WITNESS_REQUEST__INIT;
	Cpx__Cosign cs = CPX__COSIGN__INIT;
	Cpx__WitnessAlarm al = CPX__WITNESS_ALARM__INIT;
	uint8_t hash[CHAIN_HASH_LEN], sig[70];
	char err[256], big[2000];
	uint64_t seq;

	witnessed(f, &seq);
	/* No witness right: the library says so, the broker refuses. */
	assert_int_equal(round_of(&f->tb, "si-ncp", f->state[0], &res),
	    CPX_WITNESS_FAILED);
	assert_non_null(strstr(res.text, "witness right"));
	assert_non_null(c = testbroker_connect(&f->tb, "si-ncp", 0, err,
	    sizeof(err)));
	env.body_case = CPX__ENVELOPE__BODY_WITNESS_REQUEST;
	env.witness_request = &rq;
	assert_error(raw_call(c, &env, err, sizeof(err)),
	    CPX__REASON__REASON_NOT_AUTHORIZED, "no witness right");
	cpx_client_free(&c);
	assert_non_null(c = testbroker_connect(&f->tb, "hr-ncp", 0, err,
	    sizeof(err)));
	/* A checkpoint record beyond the log's end. */
	rq.checkpoint_record = 1000000;
	assert_error(raw_call(c, &env, err, sizeof(err)),
	    CPX__REASON__REASON_BAD_REQUEST, "beyond the log's end");
	/* A cosignature of a record that is not a checkpoint. */
	memset(hash, 7, sizeof(hash));
	memset(sig, 0x30, sizeof(sig));
	cs.checkpoint_record = 2;
	cs.checkpoint_seq = 1;
	cs.checkpoint_hash.data = hash;
	cs.checkpoint_hash.len = sizeof(hash);
	cs.signature.data = sig;
	cs.signature.len = sizeof(sig);
	env.body_case = CPX__ENVELOPE__BODY_COSIGN;
	env.cosign = &cs;
	assert_error(raw_call(c, &env, err, sizeof(err)),
	    CPX__REASON__REASON_BAD_REQUEST, "is not a checkpoint");
	cpx_client_free(&c);
	/* A bad signature on the real checkpoint. */
	{
		char *st = slurp_file(f->state[0]), *p;
		size_t i;

		p = strstr(st, "\nhash ");
		assert_non_null(p);
		for (i = 0; i < CHAIN_HASH_LEN; i++) {
			unsigned int b;

			assert_int_equal(sscanf(p + 6 + 2 * i, "%2x", &b), 1);
			hash[i] = (uint8_t)b;
		}
		free(st);
	}
	assert_non_null(c = testbroker_connect(&f->tb, "hr-ncp", 0, err,
	    sizeof(err)));
	cs.checkpoint_record = seq + 1;
	cs.checkpoint_seq = seq;
	assert_error(raw_call(c, &env, err, sizeof(err)),
	    CPX__REASON__REASON_BAD_SIGNATURE, "does not verify");
	/* An oversize alarm: the frame is refused, the session ends. */
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	al.text = big;
	env.body_case = CPX__ENVELOPE__BODY_WITNESS_ALARM;
	env.witness_alarm = &al;
	assert_null(raw_call(c, &env, err, sizeof(err)));
	assert_non_null(strstr(err, "witness alarm: text over"));
	cpx_client_free(&c);
	/* A hash of the wrong size. */
	assert_non_null(c = testbroker_connect(&f->tb, "hr-ncp", 0, err,
	    sizeof(err)));
	cs.checkpoint_hash.len = 5;
	env.body_case = CPX__ENVELOPE__BODY_COSIGN;
	env.cosign = &cs;
	assert_null(raw_call(c, &env, err, sizeof(err)));
	assert_non_null(strstr(err, "checkpoint_hash is 5 bytes"));
	cpx_client_free(&c);
	/* And the broker serves witnesses all the same. */
	assert_int_equal(round_of(&f->tb, "at-ncp", f->state[2], &res),
	    CPX_WITNESS_UNCHANGED);
	(void)reply;
}

/* The decoder of every witness message, cut short at every length. */
static void
test_witness_decode_cut(void **state)
{
	Cpx__Envelope env = CPX__ENVELOPE__INIT, *d;
	Cpx__WitnessCheckpoint wc = CPX__WITNESS_CHECKPOINT__INIT;
	Cpx__AuditRecord ck = CPX__AUDIT_RECORD__INIT, *cos[1];
	Cpx__AuditRecord peer = CPX__AUDIT_RECORD__INIT;
	uint8_t leaves[3 * COSIGN_LEAF_LEN], h[CHAIN_HASH_LEN], *buf;
	size_t len, i;
	char why[256];
	int reason, ok = 0;

	(void)state;
	memset(leaves, 1, sizeof(leaves));
	memset(h, 2, sizeof(h));
	ck.kind = CPX__RECORD_KIND__RECORD_CHECKPOINT;
	ck.seq = 9;
	ck.checkpoint_seq = 8;
	ck.checkpoint_hash.data = h;
	ck.checkpoint_hash.len = sizeof(h);
	peer.kind = CPX__RECORD_KIND__RECORD_COSIGNATURE;
	peer.cosigned_hash.data = h;
	peer.cosigned_hash.len = sizeof(h);
	cos[0] = &peer;
	wc.checkpoint = &ck;
	wc.leaves.data = leaves;
	wc.leaves.len = sizeof(leaves);
	wc.leaves_from = 6;
	wc.cosignatures = cos;
	wc.n_cosignatures = 1;
	env.body_case = CPX__ENVELOPE__BODY_WITNESS_CHECKPOINT;
	env.witness_checkpoint = &wc;
	assert_int_equal(wire_encode(&env, &buf, &len), 0);
	for (i = 0; i <= len - 4; i++) {
		d = wire_decode(buf + 4, i, &reason, why, sizeof(why));
		if (d != NULL) {
			ok++;
			cpx__envelope__free_unpacked(d, NULL);
		}
	}
	/* Whole, it decodes; a leaf cut in two never passes. */
	assert_non_null(d = wire_decode(buf + 4, len - 4, &reason, why,
	    sizeof(why)));
	cpx__envelope__free_unpacked(d, NULL);
	free(buf);
	wc.leaves.len = sizeof(leaves) - 1;
	assert_int_equal(wire_encode(&env, &buf, &len), 0);
	assert_null(wire_decode(buf + 4, len - 4, &reason, why, sizeof(why)));
	assert_non_null(strstr(why, "not a multiple of 36"));
	free(buf);
	(void)ok;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_witness_decode_cut),
		cmocka_unit_test_setup_teardown(test_witness_three_countries,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_witness_truncation,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_witness_rewrite, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_witness_fork, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_witness_refusals, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_witness_checkpoint_replaced,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_witness_paging, setup,
		    teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	if (getenv("CPX_TEST_FILTER") != NULL)
		cmocka_set_test_filter(getenv("CPX_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
