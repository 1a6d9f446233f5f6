/*
 * test_audit.c: tests broker/audit*.c, the durable hash-chained audit log,
 * on real files in mkdtemp() with real fsync: round trips across segments,
 * cursors by sequence and time, torn tails, flipped bytes, a full disk
 * (tmpfs when mount works, RLIMIT_FSIZE in a child otherwise and too),
 * checkpoint signatures and the offline verifier with the test PKI; the
 * time index a cursor seeks by; the checkpoint as the store contract in
 * audit.h states it, checked from outside the store.
 */
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <fcntl.h>
#include <limits.h>
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

#include <jansson.h>

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "audit.h"
#include "audit_tools_util.h"
#include "log.h"
#include "sign.h"
#include "testpki.h"
#include "testutil.h"

#define T0	1700000000000LL		/* a fixed broker time, ms */

struct fx {
	char		 dir[64];
	char		 log[128];		/* dir/audit */
	EVP_PKEY	*key;
	X509		*cert;
};

static void
make_key(EVP_PKEY **kp, X509 **xp, const char *cn)
{
	assert_int_equal(testpki_selfsigned("SI", cn, 7, kp, xp), 0);
}

static int
setup(void **state)
{
	struct fx	*f;

	f = calloc(1, sizeof(*f));
	if (f == NULL || testutil_mkdtemp(f->dir, sizeof(f->dir)) == -1)
		return -1;
	snprintf(f->log, sizeof(f->log), "%s/audit", f->dir);
	make_key(&f->key, &f->cert, "broker");
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx	*f = *state;

	umount2(f->log, MNT_DETACH);	/* the tmpfs test, if it mounted */
	if (testutil_rmrf(f->dir) == -1)
		return -1;
	EVP_PKEY_free(f->key);
	X509_free(f->cert);
	free(f);
	return 0;
}

static uint64_t
add(struct audit *a, int kind, const char *text, int64_t time)
{
	Cpx__AuditRecord	rec = CPX__AUDIT_RECORD__INIT;
	uint64_t		seq;

	rec.kind = kind;
	rec.peer_country = (char *)"SI";
	rec.peer_node = (char *)"si-ncp";
	rec.session_id = 42;
	rec.text = (char *)text;
	rec.time = time;
	assert_int_equal(audit_append(a, &rec, &seq), 0);
	assert_int_equal(rec.seq, seq);
	return seq;
}

static void
commit(struct audit *a)
{
	char	err[512];

	if (audit_commit(a, err, sizeof(err)) != 0)
		fail_msg("commit: %s", err);
}

static struct audit *
open_ok(struct fx *f)
{
	struct audit	*a;
	char		 err[512];

	a = audit_open(f->log, f->key, f->cert, err, sizeof(err));
	if (a == NULL)
		fail_msg("audit_open: %s", err);
	return a;
}

/* Fill the log with n session records, times T0 + 10 * seq, committing
 * every 7. */
static void
fill(struct fx *f, uint64_t n, uint64_t segbytes)
{
	struct audit	*a;
	char		 text[64];
	uint64_t	 i;

	a = open_ok(f);
	if (segbytes > 0)
		audit_set_segment_bytes(a, segbytes);
	for (i = 1; i <= n; i++) {
		snprintf(text, sizeof(text), "record number %llu",
		    (unsigned long long)i);
		assert_int_equal(add(a, 5, text, T0 + 10 * (int64_t)i), i);
		if (i % 7 == 0)
			commit(a);
	}
	commit(a);
	assert_int_equal(audit_last_seq(a), n);
	audit_close(&a);
}

static size_t
count_segments(const char *dir)
{
	DIR		*d;
	struct dirent	*de;
	size_t		 n = 0;

	d = opendir(dir);
	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		if (strncmp(de->d_name, "seg-", 4) == 0)
			n++;
	closedir(d);
	return n;
}

static void
seg_path(char *out, size_t len, const struct fx *f, uint64_t first)
{
	snprintf(out, len, "%s/seg-%020llu.log", f->log,
	    (unsigned long long)first);
}

static uint8_t *
slurp(const char *path, size_t *len)
{
	struct stat	 sb;
	uint8_t		*buf;
	int		 fd;

	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &sb), 0);
	buf = malloc((size_t)sb.st_size + 1);
	assert_non_null(buf);
	assert_int_equal(read(fd, buf, (size_t)sb.st_size), sb.st_size);
	close(fd);
	*len = (size_t)sb.st_size;
	return buf;
}

static void
spill(const char *path, const uint8_t *buf, size_t len)
{
	int	fd;

	fd = open(path, O_WRONLY | O_TRUNC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, buf, len), (ssize_t)len);
	assert_int_equal(close(fd), 0);
}

/*
 * The high-water mark file as it is now, to put back later: the state
 * after a crash between a commit's records and its mark, so the records
 * written since are above the mark (the only ones a torn write can hit).
 */
struct savedmark {
	uint8_t	*img;
	size_t	 len;
};

static void
mark_path(char *out, size_t len, const struct fx *f)
{
	snprintf(out, len, "%s/%s", f->log, AUDIT_MARK_FILE);
}

static void
mark_save(const struct fx *f, struct savedmark *m)
{
	char	path[PATH_MAX];

	mark_path(path, sizeof(path), f);
	m->img = slurp(path, &m->len);
}

static void
mark_restore(const struct fx *f, const struct savedmark *m)
{
	char	path[PATH_MAX];

	mark_path(path, sizeof(path), f);
	spill(path, m->img, m->len);
}

/* Offsets of the frames of a segment image; returns their count. */
static size_t
frames(const uint8_t *buf, size_t len, size_t *off, size_t max)
{
	size_t	pos = 0, n = 0, flen;

	while (pos + 8 <= len && n < max) {
		flen = 8 + ((size_t)buf[pos + 4] << 24 |
		    (size_t)buf[pos + 5] << 16 | (size_t)buf[pos + 6] << 8 |
		    buf[pos + 7]) + AUDIT_HASH_LEN;
		off[n++] = pos;
		pos += flen;
	}
	return n;
}

/* Read all durable records with a cursor; checks continuity. */
static uint64_t
read_all(struct audit *a, uint64_t from, int64_t from_time, uint64_t *first)
{
	struct audit_cursor	*c;
	Cpx__AuditRecord	*rec;
	char			 err[512];
	uint64_t		 n = 0, prev = 0;
	int			 r;

	c = audit_cursor_new(a, from, from_time, err, sizeof(err));
	assert_non_null(c);
	*first = 0;
	while ((r = audit_cursor_next(c, &rec, err, sizeof(err))) == 1) {
		if (n == 0)
			*first = rec->seq;
		else
			assert_int_equal(rec->seq, prev + 1);
		prev = rec->seq;
		n++;
		cpx__audit_record__free_unpacked(rec, NULL);
	}
	if (r != 0)
		fail_msg("cursor: %s", err);
	audit_cursor_free(&c);
	assert_null(c);
	return n;
}

static void
test_round_trip_segments(void **state)
{
	struct fx		*f = *state;
	struct audit		*a;
	struct audit_verify_stats st;
	uint8_t			 h1[AUDIT_HASH_LEN], h2[AUDIT_HASH_LEN];
	uint64_t		 first, last;
	char			 err[512];

	fill(f, 300, 2048);
	assert_true(count_segments(f->log) >= 5);
	a = open_ok(f);
	/* 300 records and the checkpoint audit_close() wrote. */
	last = audit_last_seq(a);
	assert_int_equal(last, 301);
	assert_int_equal(read_all(a, 0, 0, &first), 301);
	assert_int_equal(first, 1);
	audit_last_hash(a, h1);
	/* The chain continues after reopening. */
	audit_set_segment_bytes(a, 2048);
	assert_int_equal(add(a, 3, "after reopen", 0), 302);
	commit(a);
	assert_int_equal(audit_last_seq(a), 302);
	audit_last_hash(a, h2);
	assert_memory_not_equal(h1, h2, AUDIT_HASH_LEN);
	audit_close(&a);
	assert_null(a);
	assert_int_equal(audit_verify_dir_stats(f->log, NULL, &st, err,
	    sizeof(err)), 0);
	assert_int_equal(st.records, 303);
	assert_int_equal(st.last_seq, 303);
	assert_int_equal(st.checkpoints, 2);
	assert_int_equal(st.torn_bytes, 0);
	assert_int_equal(st.segments, count_segments(f->log));
	a = open_ok(f);
	assert_int_equal(audit_last_seq(a), 303);
	audit_close(&a);
}

static void
test_cursor_seq_time_pending(void **state)
{
	struct fx		*f = *state;
	struct audit		*a;
	struct audit_cursor	*c;
	Cpx__AuditRecord	*rec;
	char			 err[512];
	uint64_t		 first, i;

	fill(f, 200, 1500);
	a = open_ok(f);
	audit_set_segment_bytes(a, 1500);
	/* By sequence: whole segments skipped, the rest read to the end. */
	assert_int_equal(read_all(a, 57, 0, &first), 201 - 57 + 1);
	assert_int_equal(first, 57);
	assert_int_equal(read_all(a, 201, 0, &first), 1);
	assert_int_equal(read_all(a, 202, 0, &first), 0);
	/* By time: records have time T0 + 10 * seq. */
	assert_int_equal(read_all(a, 0, T0 + 1005, &first), 201 - 101 + 1);
	assert_int_equal(first, 101);
	/* Both: whichever is later. */
	assert_int_equal(read_all(a, 150, T0 + 1005, &first), 201 - 150 + 1);
	assert_int_equal(first, 150);

	/* A cursor at the end sees new records only once committed, even
	 * across a segment rollover. */
	c = audit_cursor_new(a, 195, 0, err, sizeof(err));
	assert_non_null(c);
	for (i = 195; i <= 201; i++) {
		assert_int_equal(audit_cursor_next(c, &rec, err, sizeof(err)),
		    1);
		assert_int_equal(rec->seq, i);
		cpx__audit_record__free_unpacked(rec, NULL);
	}
	assert_int_equal(audit_cursor_next(c, &rec, err, sizeof(err)), 0);
	assert_null(rec);
	for (i = 0; i < 40; i++)
		add(a, 6, "pending replay request", 0);
	assert_int_equal(audit_pending(a), 40);
	assert_int_equal(audit_cursor_next(c, &rec, err, sizeof(err)), 0);
	commit(a);
	assert_int_equal(audit_pending(a), 0);
	for (i = 202; i <= 241; i++) {
		if (audit_cursor_next(c, &rec, err, sizeof(err)) != 1)
			fail_msg("cursor at %llu: %s", (unsigned long long)i,
			    err);
		assert_int_equal(rec->seq, i);
		assert_string_equal(rec->text, "pending replay request");
		cpx__audit_record__free_unpacked(rec, NULL);
	}
	assert_int_equal(audit_cursor_next(c, &rec, err, sizeof(err)), 0);
	audit_cursor_free(&c);
	audit_close(&a);

	/* The read-only directory cursor (cpx-audit dump) agrees. */
	c = audit_cursor_open_dir(f->log, 230, 0, err, sizeof(err));
	assert_non_null(c);
	for (i = 230; i <= 242; i++) {
		assert_int_equal(audit_cursor_next(c, &rec, err, sizeof(err)),
		    1);
		assert_int_equal(rec->seq, i);
		cpx__audit_record__free_unpacked(rec, NULL);
	}
	assert_int_equal(audit_cursor_next(c, &rec, err, sizeof(err)), 0);
	audit_cursor_free(&c);
}

static void
test_torn_tail(void **state)
{
	struct fx	*f = *state;
	struct audit	*a;
	struct audit_verify_stats st;
	struct savedmark m;
	char		 path[PATH_MAX], err[512];
	uint8_t		*img;
	size_t		 len, now, off[64], n, k, c, flen, cuts[7];

	/* 17 and a checkpoint marked; 3 more and one written after. */
	fill(f, 17, 0);
	mark_save(f, &m);
	a = open_ok(f);
	add(a, 5, "one", 0);
	add(a, 5, "two", 0);
	add(a, 5, "three", 0);
	audit_close(&a);
	mark_restore(f, &m);
	seg_path(path, sizeof(path), f, 1);
	img = slurp(path, &len);
	n = frames(img, len, off, 64);
	assert_int_equal(n, 22);
	/* Cut inside each record above the mark at several points: magic,
	 * length, body, hash; every complete record before it is kept. */
	for (k = n - 4; k < n; k++) {
		flen = (k + 1 < n ? off[k + 1] : len) - off[k];
		cuts[0] = 1;
		cuts[1] = 4;
		cuts[2] = 7;
		cuts[3] = 8;
		cuts[4] = 8 + (flen - 40) / 2;
		cuts[5] = flen - 32;
		cuts[6] = flen - 1;
		for (c = 0; c < 7; c++) {
			spill(path, img, off[k] + cuts[c]);
			mark_restore(f, &m);
			if (audit_verify_dir_stats(f->log, NULL, &st, err,
			    sizeof(err)) != 0)
				fail_msg("verify: %s", err);
			assert_int_equal(st.torn_bytes, cuts[c]);
			assert_int_equal(st.last_seq, k);
			assert_int_equal(st.mark_seq, 18);
			a = open_ok(f);
			assert_int_equal(audit_last_seq(a), k);
			audit_close(&a);
			/* The cut is on disk: exactly k whole frames. */
			free(slurp(path, &now));
			assert_int_equal(now, off[k]);
		}
	}
	/* The same cut inside the last marked record: it was committed. */
	spill(path, img, off[17] + 20);
	mark_restore(f, &m);
	a = audit_open(f->log, f->key, f->cert, err, sizeof(err));
	assert_null(a);
	if (strstr(err, "record 18: record cut short") == NULL ||
	    strstr(err, "not a torn write") == NULL)
		fail_msg("%s", err);
	free(m.img);
	/* A record cut short in a segment that is not the last: damage. */
	assert_int_equal(testutil_rmrf(f->log), 0);
	fill(f, 40, 1400);
	seg_path(path, sizeof(path), f, 1);
	free(img);
	img = slurp(path, &len);
	spill(path, img, len - 3);
	a = audit_open(f->log, f->key, f->cert, err, sizeof(err));
	assert_null(a);
	if (strstr(err, "seg-00000000000000000001.log offset") == NULL ||
	    strstr(err, "cut short") == NULL)
		fail_msg("%s", err);
	free(img);
}

/*
 * A complete last record whose hash is wrong: at or below the mark it
 * is damage to an acknowledged record (refused by the broker and by
 * cpx-audit verify, never cut); above the mark, written by a commit
 * that never finished, it is a torn write and cut.
 */
static void
test_torn_bad_hash_last(void **state)
{
	struct fx	*f = *state;
	struct audit	*a;
	struct audit_verify_stats st;
	struct savedmark m;
	char		 path[PATH_MAX], err[512];
	uint8_t		*img;
	size_t		 len, off[64], n;

	fill(f, 9, 0);
	mark_save(f, &m);		/* 9 and a checkpoint */
	a = open_ok(f);
	add(a, 5, "the last", 0);
	commit(a);
	audit_close(&a);		/* 11 and the closing checkpoint */
	seg_path(path, sizeof(path), f, 1);
	img = slurp(path, &len);
	n = frames(img, len, off, 64);
	assert_int_equal(n, 12);
	img[len - 5] ^= 0x40;
	spill(path, img, len);
	a = audit_open(f->log, f->key, f->cert, err, sizeof(err));
	assert_null(a);
	if (strstr(err, "record 12: chain hash mismatch") == NULL ||
	    strstr(err, "high-water mark (12 committed)") == NULL ||
	    strstr(err, "not a torn write") == NULL)
		fail_msg("%s", err);
	assert_int_equal(audit_verify_dir_stats(f->log, NULL, &st, err,
	    sizeof(err)), -1);
	if (strstr(err, "record 12: chain hash mismatch") == NULL ||
	    strstr(err, "not a torn write") == NULL)
		fail_msg("%s", err);
	/* Nothing was cut. */
	free(slurp(path, &n));
	assert_int_equal(n, len);

	/* The mark of before: records 11 and 12 never got theirs. */
	mark_restore(f, &m);
	a = open_ok(f);
	assert_int_equal(audit_last_seq(a), 11);
	/* The chain goes on from record 11. */
	assert_int_equal(add(a, 3, "after the cut", 0), 12);
	commit(a);
	audit_close(&a);
	a = open_ok(f);
	assert_int_equal(audit_last_seq(a), 13);
	audit_close(&a);
	free(m.img);
	free(img);
}

static void
expect_refused(struct fx *f, uint64_t rec, const char *what)
{
	struct audit	*a;
	char		 err[512], want[64];
	uint64_t	 n = 7;

	snprintf(want, sizeof(want), "record %llu:", (unsigned long long)rec);
	a = audit_open(f->log, f->key, f->cert, err, sizeof(err));
	assert_null(a);
	if (strstr(err, want) == NULL || strstr(err, what) == NULL ||
	    strstr(err, "refusing to start") == NULL ||
	    strstr(err, "seg-") == NULL || strstr(err, "offset") == NULL)
		fail_msg("open error \"%s\" lacks \"%s\"/\"%s\"", err, want,
		    what);
	assert_int_equal(audit_verify_dir(f->log, NULL, &n, err, sizeof(err)),
	    -1);
	assert_int_equal(n, 0);
	if (strstr(err, want) == NULL)
		fail_msg("verify error \"%s\" lacks \"%s\"", err, want);
}

static void
test_flipped_byte(void **state)
{
	struct fx	*f = *state;
	char		 path[PATH_MAX];
	uint8_t		*img;
	size_t		 len, off[64], n, k, flen, i;
	struct {
		size_t		 at;	/* from the frame start */
		const char	*what;
	} flips[4];

	fill(f, 40, 1400);
	assert_true(count_segments(f->log) >= 3);
	/* A middle segment, then the last one: both refuse. */
	for (i = 0; i < 2; i++) {
		uint64_t first = 0;
		DIR *d = opendir(f->log);
		struct dirent *de;
		uint64_t segs[16];
		size_t ns = 0, j;

		assert_non_null(d);
		while ((de = readdir(d)) != NULL && ns < 16)
			if (strncmp(de->d_name, "seg-", 4) == 0)
				segs[ns++] = strtoull(de->d_name + 4, NULL,
				    10);
		closedir(d);
		for (j = 0; j < ns; j++)
			if (segs[j] > 1 && (first == 0 || (i == 0 ?
			    segs[j] < first : segs[j] > first)))
				first = segs[j];
		seg_path(path, sizeof(path), f, first);
		img = slurp(path, &len);
		n = frames(img, len, off, 64);
		assert_true(n >= 3);
		k = n / 2;
		flen = off[k + 1] - off[k];
		flips[0].at = 1;
		flips[0].what = "magic";
		flips[1].at = 6;
		flips[1].what = "";
		flips[2].at = 8 + (flen - 40) / 2;
		flips[2].what = "chain hash mismatch";
		flips[3].at = flen - 10;
		flips[3].what = "chain hash mismatch";
		for (j = 0; j < 4; j++) {
			img[off[k] + flips[j].at] ^= 0x01;
			spill(path, img, len);
			expect_refused(f, first + k, flips[j].what);
			img[off[k] + flips[j].at] ^= 0x01;
		}
		/* A huge length: over the limit, not a torn tail. */
		img[off[k] + 4] ^= 0x80;
		spill(path, img, len);
		expect_refused(f, first + k, "over the limit");
		img[off[k] + 4] ^= 0x80;
		spill(path, img, len);
		free(img);
	}
	/* A missing middle segment breaks the numbering. */
	seg_path(path, sizeof(path), f, 1);
	img = slurp(path, &len);
	n = frames(img, len, off, 64);
	seg_path(path, sizeof(path), f, 1 + n);
	assert_int_equal(unlink(path), 0);
	{
		struct audit *a;
		char err[512];

		a = audit_open(f->log, f->key, f->cert, err, sizeof(err));
		assert_null(a);
		assert_non_null(strstr(err, "segment is missing"));
	}
	free(img);
}

/* Second opener is refused: two writers would fork the chain. */
static void
test_lock_and_too_large(void **state)
{
	struct fx		*f = *state;
	struct audit		*a, *b;
	Cpx__AuditRecord	 rec = CPX__AUDIT_RECORD__INIT;
	char			 err[512], *big;
	uint64_t		 seq = 99;

	a = open_ok(f);
	b = audit_open(f->log, f->key, f->cert, err, sizeof(err));
	assert_null(b);
	assert_non_null(strstr(err, "in use"));
	big = malloc(AUDIT_MAX_RECORD + 1);
	assert_non_null(big);
	memset(big, 'x', AUDIT_MAX_RECORD);
	big[AUDIT_MAX_RECORD] = '\0';
	rec.kind = 5;
	rec.text = big;
	assert_int_equal(audit_append(a, &rec, &seq), -1);
	assert_int_equal(seq, 0);
	assert_int_equal(rec.seq, 0);
	assert_int_equal(audit_pending(a), 0);
	/* Just under the limit fits, in a segment of its own. */
	audit_set_segment_bytes(a, 1024);
	add(a, 5, "small", 0);
	big[AUDIT_MAX_RECORD - 200] = '\0';
	rec.text = big;
	assert_int_equal(audit_append(a, &rec, &seq), 0);
	assert_int_equal(seq, 2);
	add(a, 5, "small again", 0);
	commit(a);
	assert_int_equal(count_segments(f->log), 3);
	audit_close(&a);
	a = open_ok(f);
	assert_int_equal(audit_last_seq(a), 4);
	audit_close(&a);
	free(big);
}

/*
 * Append ~1 KiB records until a commit fails; returns the error. Checks
 * that the failed batch left nothing: same last seq, same file bytes.
 */
static int
fill_until_full(struct audit *a, char *err, size_t errlen, uint64_t *last)
{
	char	 text[1024];
	uint64_t seq, i;
	int	 round;

	memset(text, 'y', sizeof(text) - 1);
	text[sizeof(text) - 1] = '\0';
	for (round = 0; round < 10000; round++) {
		Cpx__AuditRecord rec = CPX__AUDIT_RECORD__INIT;

		*last = audit_last_seq(a);
		for (i = 0; i < 5; i++) {
			rec.kind = 5;
			rec.seq = 0;
			rec.time = 0;
			rec.text = text;
			if (audit_append(a, &rec, &seq) != 0)
				return -2;
		}
		if (audit_commit(a, err, errlen) != 0)
			return 0;
	}
	return -1;
}

/* Nothing of the failed batch is left: not in memory, not on disk (no
 * bytes past the durable end, no segment it created). */
static void
check_rolled_back(struct fx *f, struct audit *a, uint64_t last)
{
	struct audit_verify_stats	st;
	char				err[512];
	uint64_t			first;

	assert_int_equal(audit_last_seq(a), last);
	assert_int_equal(audit_pending(a), 0);
	assert_int_equal(read_all(a, 0, 0, &first), last);
	if (audit_verify_dir_stats(f->log, NULL, &st, err, sizeof(err)) != 0)
		fail_msg("verify after rollback: %s", err);
	assert_int_equal(st.last_seq, last);
	assert_int_equal(st.torn_bytes, 0);
}

static void
test_disk_full_tmpfs(void **state)
{
	struct fx	*f = *state;
	struct audit	*a;
	struct audit_verify_stats st;
	char		 err[512], filler[PATH_MAX];
	uint64_t	 last, seq;
	int		 fd;
	static char	 junk[64 * 1024];

	assert_int_equal(mkdir(f->log, 0700), 0);
	if (mount("tmpfs", f->log, "tmpfs", 0, "size=256k,mode=0700") == -1) {
		fprintf(stderr, "tmpfs: mount: %s: skipped (RLIMIT_FSIZE "
		    "test covers it)\n", strerror(errno));
		skip();
	}
	/* A filler to delete later, so that space returns. */
	snprintf(filler, sizeof(filler), "%s/filler", f->log);
	fd = open(filler, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, junk, sizeof(junk)), sizeof(junk));
	assert_int_equal(close(fd), 0);

	a = open_ok(f);
	audit_set_segment_bytes(a, 40 * 1024);	/* roll over on the way */
	assert_int_equal(fill_until_full(a, err, sizeof(err), &last), 0);
	if (strstr(err, "No space left on device") == NULL ||
	    strstr(err, "/seg-") == NULL)
		fail_msg("error \"%s\"", err);
	assert_true(last > 50);
	check_rolled_back(f, a, last);
	/* Still full: fails again, still clean. */
	add(a, 5, "x", 0);
	assert_int_equal(fill_until_full(a, err, sizeof(err), &seq), 0);
	check_rolled_back(f, a, last);
	/* Space returns: the next commit succeeds, numbering continues. */
	assert_int_equal(unlink(filler), 0);
	assert_int_equal(add(a, 3, "space is back", 0), last + 1);
	commit(a);
	assert_int_equal(audit_last_seq(a), last + 1);
	audit_close(&a);
	assert_int_equal(audit_verify_dir_stats(f->log, NULL, &st, err,
	    sizeof(err)), 0);
	assert_true(st.last_seq >= last + 1);
	a = open_ok(f);
	audit_close(&a);
	assert_int_equal(umount(f->log), 0);
}

/* Runs in a forked child: exit code 0, or the step that failed. */
static int
fsize_child(struct fx *f)
{
	struct audit	*a;
	struct rlimit	 rl;
	struct stat	 sb;
	char		 err[512], path[PATH_MAX];
	uint64_t	 last, seq;

	signal(SIGXFSZ, SIG_IGN);
	if ((a = audit_open(f->log, f->key, f->cert, err, sizeof(err))) ==
	    NULL)
		return 10;
	if (getrlimit(RLIMIT_FSIZE, &rl) == -1)
		return 11;
	rl.rlim_cur = 48 * 1024;
	if (setrlimit(RLIMIT_FSIZE, &rl) == -1)
		return 12;
	if (fill_until_full(a, err, sizeof(err), &last) != 0)
		return 13;
	if (strstr(err, "File too large") == NULL ||
	    strstr(err, "write") == NULL)
		return 14;
	if (audit_last_seq(a) != last || audit_pending(a) != 0)
		return 15;
	{
		struct audit_verify_stats st;

		if (audit_verify_dir_stats(f->log, NULL, &st, err,
		    sizeof(err)) != 0 || st.last_seq != last ||
		    st.torn_bytes != 0)
			return 21;
	}
	seg_path(path, sizeof(path), f, 1);
	if (stat(path, &sb) == -1 || sb.st_size > 48 * 1024)
		return 16;
	rl.rlim_cur = RLIM_INFINITY;
	if (rl.rlim_max != RLIM_INFINITY)
		rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_FSIZE, &rl) == -1)
		return 17;
	{
		Cpx__AuditRecord rec = CPX__AUDIT_RECORD__INIT;

		rec.kind = 3;
		if (audit_append(a, &rec, &seq) != 0 || seq != last + 1)
			return 18;
	}
	if (audit_commit(a, err, sizeof(err)) != 0)
		return 19;
	audit_close(&a);
	if ((a = audit_open(f->log, f->key, f->cert, err, sizeof(err))) ==
	    NULL || audit_last_seq(a) != last + 2)
		return 20;
	audit_close(&a);
	return 0;
}

static void
test_disk_full_rlimit(void **state)
{
	struct fx	*f = *state;
	pid_t		 pid;
	int		 status;

	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(fsize_child(f));
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

/* --- checkpoints and the verifier --------------------------------------- */

static void
be64(uint8_t *p, uint64_t v)
{
	int	i;

	for (i = 7; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}

/* Write a log by hand, with a correct chain, to test the verifier. */
struct forge {
	int		fd;
	uint64_t	seq;
	uint8_t		hash[AUDIT_HASH_LEN];
	int		v1;	/* chain v1 of cpx 0.1: bytes, not leaf */
	const char	*broker; /* its checkpoints name it; NULL: none */
};

static void
forge_add(struct forge *g, Cpx__AuditRecord *rec)
{
	uint8_t		*buf, hdr[12], leaf[SHA256_DIGEST_LENGTH];
	size_t		 len;
	EVP_MD_CTX	*md;
	unsigned int	 hl;

	rec->seq = ++g->seq;
	len = cpx__audit_record__get_packed_size(rec);
	buf = malloc(len + 40);
	assert_non_null(buf);
	buf[0] = 0x43; buf[1] = 0x50; buf[2] = 0x58; buf[3] = 0x52;
	buf[4] = (uint8_t)(len >> 24); buf[5] = (uint8_t)(len >> 16);
	buf[6] = (uint8_t)(len >> 8); buf[7] = (uint8_t)len;
	assert_int_equal(cpx__audit_record__pack(rec, buf + 8), len);
	be64(hdr, rec->seq);
	memcpy(hdr + 8, buf + 4, 4);
	/* Chain v2, written out here independently of lib/chain.c. */
	assert_non_null(SHA256(buf + 8, len, leaf));
	md = EVP_MD_CTX_new();
	assert_int_equal(EVP_DigestInit_ex(md, EVP_sha256(), NULL), 1);
	EVP_DigestUpdate(md, g->hash, AUDIT_HASH_LEN);
	EVP_DigestUpdate(md, hdr, 12);
	if (g->v1)
		EVP_DigestUpdate(md, buf + 8, len);
	else
		EVP_DigestUpdate(md, leaf, sizeof(leaf));
	assert_int_equal(EVP_DigestFinal_ex(md, g->hash, &hl), 1);
	EVP_MD_CTX_free(md);
	memcpy(buf + 8 + len, g->hash, AUDIT_HASH_LEN);
	assert_int_equal(write(g->fd, buf, len + 40), (ssize_t)(len + 40));
	free(buf);
}

/* A checkpoint over the forged chain, signed by key with cert's DER. */
static void
forge_checkpoint(struct forge *g, EVP_PKEY *key, X509 *cert, int bad_hash)
{
	Cpx__AuditRecord	 rec = CPX__AUDIT_RECORD__INIT;
	uint8_t			 msg[17 + 8 + 32 + 8], hash[32];
	uint8_t			 sig[128];
	uint8_t			*der = NULL;
	size_t			 siglen = sizeof(sig);
	EVP_MD_CTX		*ctx;
	int			 dl;

	memcpy(hash, g->hash, 32);
	if (bad_hash)
		hash[0] ^= 1;
	rec.kind = 7;
	rec.time = T0;
	rec.broker = (char *)g->broker;
	rec.checkpoint_seq = g->seq;
	memcpy(msg, AUDIT_CHECKPOINT_TAG, 17);
	be64(msg + 17, g->seq);
	memcpy(msg + 25, hash, 32);
	be64(msg + 57, (uint64_t)T0);
	ctx = EVP_MD_CTX_new();
	assert_int_equal(EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL,
	    key), 1);
	assert_int_equal(EVP_DigestSign(ctx, sig, &siglen, msg, sizeof(msg)),
	    1);
	EVP_MD_CTX_free(ctx);
	dl = i2d_X509(cert, &der);
	assert_true(dl > 0);
	rec.checkpoint_hash.data = hash;
	rec.checkpoint_hash.len = 32;
	rec.checkpoint_signature.data = sig;
	rec.checkpoint_signature.len = siglen;
	rec.checkpoint_cert.data = der;
	rec.checkpoint_cert.len = (size_t)dl;
	forge_add(g, &rec);
	OPENSSL_free(der);
}

static void
forge_log(struct fx *f, EVP_PKEY *key, X509 *cert, int bad_hash,
    const char *broker)
{
	Cpx__AuditRecord	rec = CPX__AUDIT_RECORD__INIT;
	struct forge		g;
	char			path[PATH_MAX];

	memset(&g, 0, sizeof(g));
	g.broker = broker;
	testutil_rmrf(f->log) == 0 ? (void)0 : fail();
	assert_int_equal(mkdir(f->log, 0700), 0);
	seg_path(path, sizeof(path), f, 1);
	g.fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(g.fd >= 0);
	rec.kind = 3;
	rec.time = T0;
	rec.peer_country = (char *)"SI";
	forge_add(&g, &rec);
	forge_checkpoint(&g, key, cert, bad_hash);
	rec.kind = 5;
	forge_add(&g, &rec);
	assert_int_equal(close(g.fd), 0);
}

/* Start on f's log as the override allows (it takes on a mark), and stop. */
static void
take_without_mark(struct fx *f)
{
	struct audit	*a;
	char		 err[512];

	a = audit_open_flags(f->log, f->key, f->cert,
	    AUDIT_OPEN_ACCEPT_NO_MARK, err, sizeof(err));
	if (a == NULL)
		fail_msg("%s", err);
	audit_close(&a);
}

static void
test_checkpoint_signature(void **state)
{
	struct fx		*f = *state;
	struct audit		*a;
	struct audit_verify_stats st;
	EVP_PKEY		*other;
	X509			*ocert;
	char			 err[512];
	uint8_t			*img;
	size_t			 len;

	/* The broker's own checkpoints verify. */
	a = open_ok(f);
	add(a, 3, "hello", 0);
	assert_int_equal(audit_checkpoint(a), 0);
	add(a, 5, "bye", 0);
	commit(a);
	audit_close(&a);
	if (audit_verify_dir_stats(f->log, NULL, &st, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_int_equal(st.checkpoints, 2);
	assert_int_equal(st.records, 4);
	assert_int_equal(strlen(st.checkpoint_cert), 64);

	/* A correct forged chain with a good checkpoint passes, once it
	 * has a mark (taken on by a start with the override)... */
	forge_log(f, f->key, f->cert, 0, NULL);
	assert_int_equal(audit_verify_dir_stats(f->log, NULL, &st, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "no high-water mark"));
	take_without_mark(f);
	assert_int_equal(audit_verify_dir_stats(f->log, NULL, &st, err,
	    sizeof(err)), 0);
	assert_int_equal(st.checkpoints, 2);
	/*
	 * ...and naming its signer as the broker that wrote it (a shared
	 * log's checkpoints do); naming another broker, it fails...
	 */
	forge_log(f, f->key, f->cert, 0, "broker");
	take_without_mark(f);
	if (audit_verify_dir_stats(f->log, NULL, &st, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	forge_log(f, f->key, f->cert, 0, "broker-b\n");
	take_without_mark(f);
	assert_int_equal(audit_verify_dir_stats(f->log, NULL, &st, err,
	    sizeof(err)), -1);
	if (strstr(err, "record 2: checkpoint names broker \"broker-b?\", but "
	    "it is signed by CN=broker") == NULL)
		fail_msg("%s", err);
	/* ...signed by another key than its certificate's, it fails... */
	make_key(&other, &ocert, "mallory");
	forge_log(f, other, f->cert, 0, NULL);
	assert_int_equal(audit_verify_dir_stats(f->log, NULL, &st, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "record 2: checkpoint signature"));
	/* ...and over a hash other than the chain's, it fails too. */
	forge_log(f, f->key, f->cert, 1, NULL);
	assert_int_equal(audit_verify_dir_stats(f->log, NULL, &st, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "record 2: checkpoint hash differs"));
	/* The broker refuses it too, even told to take it without mark. */
	a = audit_open_flags(f->log, f->key, f->cert,
	    AUDIT_OPEN_ACCEPT_NO_MARK, err, sizeof(err));
	assert_null(a);
	if (strstr(err, "record 2: checkpoint does not match the chain") ==
	    NULL)
		fail_msg("%s", err);
	/* Signed by another key than the broker's: refused at start. */
	forge_log(f, other, ocert, 0, NULL);
	a = audit_open_flags(f->log, f->key, f->cert,
	    AUDIT_OPEN_ACCEPT_NO_MARK, err, sizeof(err));
	assert_null(a);
	if (strstr(err, "record 2: checkpoint signed by CN=mallory, not with "
	    "this broker's key") == NULL)
		fail_msg("%s", err);
	/* Appended after the broker's own log, above its mark: the same. */
	{
		struct forge g;
		char path[PATH_MAX];

		assert_int_equal(testutil_rmrf(f->log), 0);
		a = open_ok(f);
		add(a, 3, "genuine", 0);
		commit(a);
		audit_close(&a);
		if (audit_verify_dir_stats(f->log, NULL, &st, err,
		    sizeof(err)) != 0)
			fail_msg("%s", err);
		memset(&g, 0, sizeof(g));
		g.seq = st.last_seq;
		memcpy(g.hash, st.last_hash, AUDIT_HASH_LEN);
		seg_path(path, sizeof(path), f, 1);
		img = slurp(path, &len);
		g.fd = open(path, O_WRONLY | O_APPEND);
		assert_true(g.fd >= 0);
		forge_checkpoint(&g, other, ocert, 0);
		assert_int_equal(close(g.fd), 0);
		a = audit_open(f->log, f->key, f->cert, err, sizeof(err));
		assert_null(a);
		if (strstr(err, "record 3: checkpoint signed by CN=mallory") ==
		    NULL)
			fail_msg("%s", err);
		/* Signed with the broker's own key, it is taken on. */
		spill(path, img, len);
		g.seq = st.last_seq;
		memcpy(g.hash, st.last_hash, AUDIT_HASH_LEN);
		g.fd = open(path, O_WRONLY | O_APPEND);
		assert_true(g.fd >= 0);
		forge_checkpoint(&g, f->key, f->cert, 0);
		assert_int_equal(close(g.fd), 0);
		a = open_ok(f);
		assert_int_equal(audit_last_seq(a), 3);
		audit_close(&a);
		free(img);
	}
	EVP_PKEY_free(other);
	X509_free(ocert);
}

/* --- the high-water mark ----------------------------------------------- */

/* Remove the last k records of the log, across segments. */
static void
cut_last(struct fx *f, size_t k)
{
	char		 path[PATH_MAX];
	uint64_t	 segs[64];
	uint8_t		*img;
	size_t		 ns = 0, len, off[256], n;
	DIR		*d;
	struct dirent	*de;

	d = opendir(f->log);
	assert_non_null(d);
	while ((de = readdir(d)) != NULL && ns < 64)
		if (strncmp(de->d_name, "seg-", 4) == 0)
			segs[ns++] = strtoull(de->d_name + 4, NULL, 10);
	closedir(d);
	while (k > 0 && ns > 0) {
		size_t i, last = 0;

		for (i = 1; i < ns; i++)
			if (segs[i] > segs[last])
				last = i;
		seg_path(path, sizeof(path), f, segs[last]);
		img = slurp(path, &len);
		n = frames(img, len, off, 256);
		if (n <= k) {
			assert_int_equal(unlink(path), 0);
			k -= n;
			segs[last] = segs[--ns];
		} else {
			spill(path, img, off[n - k]);
			k = 0;
		}
		free(img);
	}
}

/* Open and verify both refuse, each naming what is in want. */
static void
expect_both_refuse(struct fx *f, const char *want)
{
	struct audit_verify_stats st;
	struct audit	*a;
	char		 err[512];

	a = audit_open(f->log, f->key, f->cert, err, sizeof(err));
	if (a != NULL)
		fail_msg("opened; wanted \"%s\"", want);
	if (strstr(err, want) == NULL)
		fail_msg("open: \"%s\" lacks \"%s\"", err, want);
	assert_int_equal(audit_verify_dir_stats(f->log, NULL, &st, err,
	    sizeof(err)), -1);
	if (strstr(err, want) == NULL)
		fail_msg("verify: \"%s\" lacks \"%s\"", err, want);
}

/*
 * Records removed from the end, at a record boundary, so that the chain
 * of what is left is sound: the last one, the last ten, a whole last
 * segment. Before the mark this passed for a shorter log, and the broker
 * would have given those seqs again and forgotten their alert ids.
 */
static void
test_mark_truncation(void **state)
{
	struct fx	*f = *state;
	struct audit	*a;

	/* 60 and the closing checkpoint, in segments of a few records. */
	fill(f, 60, 1400);
	assert_true(count_segments(f->log) >= 4);
	cut_last(f, 1);
	expect_both_refuse(f, "records 61..61 are missing: the high-water "
	    "mark");
	assert_int_equal(testutil_rmrf(f->log), 0);
	fill(f, 60, 1400);
	cut_last(f, 10);
	expect_both_refuse(f, "records 52..61 are missing: the high-water "
	    "mark (high-water-mark) says 61 were committed, but the log "
	    "ends at record 51");
	assert_int_equal(testutil_rmrf(f->log), 0);
	fill(f, 60, 1400);
	{
		/* The whole last segment. */
		char path[PATH_MAX];
		uint8_t *img;
		size_t len, off[64], n, segs;

		segs = count_segments(f->log);
		a = open_ok(f);
		audit_close(&a);	/* nothing appended: no checkpoint */
		(void)segs;
		assert_int_equal(audit_verify_dir_stats(f->log, NULL,
		    &(struct audit_verify_stats){ 0 }, NULL, 0), 0);
		/* Find the last segment's first record. */
		{
			DIR *d = opendir(f->log);
			struct dirent *de;
			uint64_t first = 0, v;

			assert_non_null(d);
			while ((de = readdir(d)) != NULL)
				if (strncmp(de->d_name, "seg-", 4) == 0 &&
				    (v = strtoull(de->d_name + 4, NULL,
				    10)) > first)
					first = v;
			closedir(d);
			seg_path(path, sizeof(path), f, first);
			img = slurp(path, &len);
			n = frames(img, len, off, 64);
			free(img);
			assert_int_equal(unlink(path), 0);
			{
				char want[128];

				snprintf(want, sizeof(want), "records %llu..61 "
				    "are missing", (unsigned long long)first);
				assert_int_equal(first + n - 1, 61);
				expect_both_refuse(f, want);
			}
		}
	}
}

/*
 * A byte flipped inside the last committed record: corruption, refused,
 * and nothing cut. Garbage written after the mark's last record (a real
 * torn tail) is still cut.
 */
static void
test_mark_flip_and_garbage(void **state)
{
	struct fx	*f = *state;
	struct audit	*a;
	struct audit_verify_stats st;
	char		 path[PATH_MAX], err[512];
	uint8_t		*img, junk[100];
	size_t		 len, off[64], n, now;
	int		 fd;

	fill(f, 30, 0);
	seg_path(path, sizeof(path), f, 1);
	img = slurp(path, &len);
	n = frames(img, len, off, 64);
	assert_int_equal(n, 31);
	/* Inside the body of record 31, the last: its hash fails. */
	img[off[30] + 20] ^= 0x04;
	spill(path, img, len);
	expect_both_refuse(f, "record 31: chain hash mismatch; it is at or "
	    "below the high-water mark (31 committed), so this is damage");
	free(slurp(path, &now));
	assert_int_equal(now, len);
	img[off[30] + 20] ^= 0x04;
	spill(path, img, len);

	/* Half a record's worth of bytes after it: torn, cut. */
	memset(junk, 0, sizeof(junk));
	memcpy(junk, img + off[30], 40);	/* a plausible header */
	fd = open(path, O_WRONLY | O_APPEND);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
	assert_int_equal(close(fd), 0);
	if (audit_verify_dir_stats(f->log, NULL, &st, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_int_equal(st.torn_bytes, sizeof(junk));
	assert_int_equal(st.mark_seq, 31);
	a = open_ok(f);
	assert_int_equal(audit_last_seq(a), 31);
	audit_close(&a);
	free(slurp(path, &now));
	assert_int_equal(now, len);
	free(img);
}

/* A missing mark is refused; the override takes the log and says so. */
static void
test_mark_missing(void **state)
{
	struct fx		*f = *state;
	struct audit		*a;
	struct audit_cursor	*c;
	Cpx__AuditRecord	*rec;
	struct audit_verify_stats st;
	char			 path[PATH_MAX], err[512];
	int			 found = 0;

	fill(f, 12, 0);
	mark_path(path, sizeof(path), f);
	assert_int_equal(unlink(path), 0);
	expect_both_refuse(f, "no high-water mark");
	a = audit_open(f->log, f->key, f->cert, err, sizeof(err));
	assert_null(a);
	assert_non_null(strstr(err, "--accept-log-without-mark"));
	/* A damaged mark (both slots) is refused as well. */
	{
		uint8_t junk[4096 + 128];
		int fd;

		memset(junk, 0x5a, sizeof(junk));
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
		assert_true(fd >= 0);
		assert_int_equal(write(fd, junk, sizeof(junk)),
		    (ssize_t)sizeof(junk));
		assert_int_equal(close(fd), 0);
		expect_both_refuse(f, "the high-water mark is damaged");
		assert_int_equal(unlink(path), 0);
	}
	a = audit_open_flags(f->log, f->key, f->cert,
	    AUDIT_OPEN_ACCEPT_NO_MARK, err, sizeof(err));
	if (a == NULL)
		fail_msg("%s", err);
	/* The override is on record, as record 14, and committed. */
	assert_int_equal(audit_last_seq(a), 14);
	audit_close(&a);
	c = audit_cursor_open_dir(f->log, 14, 0, err, sizeof(err));
	assert_non_null(c);
	while (audit_cursor_next(c, &rec, err, sizeof(err)) == 1) {
		if (rec->kind ==
		    CPX__RECORD_KIND__RECORD_OPERATOR_OVERRIDE) {
			assert_int_equal(rec->seq, 14);
			assert_non_null(strstr(rec->text,
			    "--accept-log-without-mark"));
			assert_non_null(strstr(rec->text, "records 1..13"));
			found++;
		}
		cpx__audit_record__free_unpacked(rec, NULL);
	}
	audit_cursor_free(&c);
	assert_int_equal(found, 1);
	/* From now on it has a mark: a plain start and verify pass. */
	if (audit_verify_dir_stats(f->log, NULL, &st, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_true(st.mark_found);
	assert_int_equal(st.mark_seq, 15);	/* the closing checkpoint */
	assert_int_equal(st.mark_trusted, 15);
	a = open_ok(f);
	assert_int_equal(audit_last_seq(a), 15);
	audit_close(&a);
}

/*
 * A crash in the middle of a mark update tears one slot at most: either
 * slot alone is enough to start (the older one is a commit behind: the
 * records after it were written, and are kept).
 */
static void
test_mark_slot_torn(void **state)
{
	struct fx		*f = *state;
	struct audit		*a;
	struct savedmark	 m;
	int			 slot;

	fill(f, 10, 0);
	mark_save(f, &m);
	assert_int_equal(m.len, 4096 + 128);
	for (slot = 0; slot < 2; slot++) {
		mark_restore(f, &m);
		m.img[slot * 4096 + 50] ^= 0x10;	/* inside its body */
		mark_restore(f, &m);
		m.img[slot * 4096 + 50] ^= 0x10;
		a = open_ok(f);
		assert_int_equal(audit_last_seq(a), 11);
		audit_close(&a);
	}
	free(m.img);
}

/*
 * Rewrite the log through the forger with record `edit` changed and
 * every hash after it recomputed, checkpoints copied unchanged.
 */
static void
rechain_edited(struct fx *f, uint64_t edit)
{
	struct audit_cursor	*c;
	Cpx__AuditRecord	*rec, *all[64];
	struct forge		 g;
	char			 path[PATH_MAX], err[512];
	size_t			 n = 0, i;

	c = audit_cursor_open_dir(f->log, 1, 0, err, sizeof(err));
	assert_non_null(c);
	while (n < 64 && audit_cursor_next(c, &rec, err, sizeof(err)) == 1)
		all[n++] = rec;
	audit_cursor_free(&c);
	{
		DIR *d = opendir(f->log);
		struct dirent *de;

		assert_non_null(d);
		while ((de = readdir(d)) != NULL)
			if (strncmp(de->d_name, "seg-", 4) == 0) {
				snprintf(path, sizeof(path), "%s/%s", f->log,
				    de->d_name);
				assert_int_equal(unlink(path), 0);
			}
		closedir(d);
	}
	memset(&g, 0, sizeof(g));
	seg_path(path, sizeof(path), f, 1);
	g.fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(g.fd >= 0);
	for (i = 0; i < n; i++) {
		char *text = all[i]->text;

		if (all[i]->seq == edit)
			all[i]->text = (char *)"nothing happened here";
		forge_add(&g, all[i]);
		all[i]->text = text;
		cpx__audit_record__free_unpacked(all[i], NULL);
	}
	assert_int_equal(close(g.fd), 0);
}

/*
 * An edited record with every later hash recomputed but the signed
 * checkpoints left as they were: the chain alone checks, the first
 * checkpoint after the edit does not. Start-up refuses, naming the
 * checkpoint and the records it covers, with the mark or without.
 */
static void
test_mark_edited_rechained(void **state)
{
	struct fx	*f = *state;
	struct audit	*a;
	char		 path[PATH_MAX], err[512];
	uint64_t	 i;

	a = open_ok(f);
	for (i = 1; i <= 5; i++)
		add(a, 5, "before", 0);
	assert_int_equal(audit_checkpoint(a), 0);	/* 6 */
	for (i = 7; i <= 10; i++)
		add(a, 5, "after", 0);
	commit(a);
	audit_close(&a);				/* 11 */
	rechain_edited(f, 3);
	expect_both_refuse(f, "record 6: checkpoint");
	a = audit_open(f->log, f->key, f->cert, err, sizeof(err));
	assert_null(a);
	if (strstr(err, "record 6: checkpoint does not match the chain "
	    "before it: a record from 1 to 5 was altered") == NULL)
		fail_msg("%s", err);
	/* Without the mark, even with the override: the same. */
	mark_path(path, sizeof(path), f);
	assert_int_equal(unlink(path), 0);
	a = audit_open_flags(f->log, f->key, f->cert,
	    AUDIT_OPEN_ACCEPT_NO_MARK, err, sizeof(err));
	assert_null(a);
	assert_non_null(strstr(err, "record 6: checkpoint does not match"));
	/* An edit after the last checkpoint but one: named from 7 on. */
	assert_int_equal(testutil_rmrf(f->log), 0);
	a = open_ok(f);
	for (i = 1; i <= 5; i++)
		add(a, 5, "before", 0);
	assert_int_equal(audit_checkpoint(a), 0);
	for (i = 7; i <= 10; i++)
		add(a, 5, "after", 0);
	commit(a);
	audit_close(&a);
	rechain_edited(f, 8);
	a = audit_open(f->log, f->key, f->cert, err, sizeof(err));
	assert_null(a);
	if (strstr(err, "record 11: checkpoint does not match the chain "
	    "before it: a record from 7 to 10 was altered") == NULL)
		fail_msg("%s", err);
}

/* A log of cpx 0.1 (chain v1) is named as such, not as a bad hash. */
static void
test_chain_v1(void **state)
{
	struct fx		*f = *state;
	Cpx__AuditRecord	 rec = CPX__AUDIT_RECORD__INIT;
	struct forge		 g;
	struct audit		*a;
	char			 path[PATH_MAX], err[512];
	int			 i;

	assert_int_equal(mkdir(f->log, 0700), 0);
	memset(&g, 0, sizeof(g));
	g.v1 = 1;
	seg_path(path, sizeof(path), f, 1);
	g.fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(g.fd >= 0);
	for (i = 0; i < 3; i++) {
		rec.kind = 3;
		rec.time = T0 + i;
		rec.peer_country = (char *)"SI";
		forge_add(&g, &rec);
	}
	assert_int_equal(close(g.fd), 0);
	expect_both_refuse(f, "record 1: this log was written by cpx 0.1 "
	    "(chain v1");
	a = audit_open_flags(f->log, f->key, f->cert,
	    AUDIT_OPEN_ACCEPT_NO_MARK, err, sizeof(err));
	assert_null(a);
	assert_non_null(strstr(err, "written by cpx 0.1 (chain v1"));
	assert_null(strstr(err, "chain hash mismatch"));
	/* A single v1 record is not taken for a torn tail either. */
	seg_path(path, sizeof(path), f, 1);
	{
		uint8_t *img;
		size_t len, off[8];

		img = slurp(path, &len);
		assert_int_equal(frames(img, len, off, 8), 3);
		spill(path, img, off[1]);
		free(img);
	}
	expect_both_refuse(f, "written by cpx 0.1 (chain v1");
}

static EVP_PKEY *
load_key(const char *rel)
{
	char		 path[PATH_MAX];
	FILE		*fp;
	EVP_PKEY	*k;

	assert_int_equal(testpki_path(path, sizeof(path), rel), 0);
	fp = fopen(path, "r");
	assert_non_null(fp);
	k = PEM_read_PrivateKey(fp, NULL, NULL, NULL);
	fclose(fp);
	assert_non_null(k);
	return k;
}

static X509 *
load_cert(const char *rel)
{
	char	 path[PATH_MAX];
	FILE	*fp;
	X509	*x;

	assert_int_equal(testpki_path(path, sizeof(path), rel), 0);
	fp = fopen(path, "r");
	assert_non_null(fp);
	x = PEM_read_X509(fp, NULL, NULL, NULL);
	fclose(fp);
	assert_non_null(x);
	return x;
}

static void
accepted(struct audit *a, EVP_PKEY *k, X509 *x, const char *origin,
    const char *peer)
{
	tools_append_alert(a, k, x, "a-1", origin, peer);
}

static void
test_verify_with_ca(void **state)
{
	struct fx		*f = *state;
	struct audit		*a;
	struct audit_verify_stats st;
	struct trust		*t;
	EVP_PKEY		*bk, *nk;
	X509			*bx, *nx;
	char			 err[512], ca[PATH_MAX], crl[PATH_MAX];

	if (testpki_path(ca, sizeof(ca), "ca.pem") == -1 ||
	    testpki_path(crl, sizeof(crl), "crl.pem") == -1)
		fail_msg("test PKI unavailable");
	t = trust_new(ca, crl, err, sizeof(err));
	if (t == NULL)
		fail_msg("trust_new: %s", err);
	bk = load_key("broker.key");
	bx = load_cert("broker.pem");
	nk = load_key("nodes/si-ncp.key");
	nx = load_cert("nodes/si-ncp.pem");

	a = audit_open(f->log, bk, bx, err, sizeof(err));
	assert_non_null(a);
	accepted(a, nk, nx, "SI", "SI");
	add(a, 2, "refused", 0);
	commit(a);
	audit_close(&a);
	if (audit_verify_dir_stats(f->log, t, &st, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_int_equal(st.alerts, 1);
	assert_int_equal(st.alerts_unchecked, 0);
	assert_int_equal(st.checkpoints, 1);

	/* The in-memory broker key is not from the CA: its checkpoint
	 * fails with the CA, passes without. */
	a = open_ok(f);
	add(a, 3, "x", 0);
	commit(a);
	audit_close(&a);
	assert_int_equal(audit_verify_dir_stats(f->log, NULL, &st, err,
	    sizeof(err)), 0);
	assert_int_equal(st.alerts_unchecked, 1);
	assert_int_equal(audit_verify_dir_stats(f->log, t, &st, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "record 5: checkpoint certificate"));

	/* An accepted alert whose origin is not the signer's country. */
	assert_int_equal(testutil_rmrf(f->log), 0);
	a = audit_open(f->log, bk, bx, err, sizeof(err));
	assert_non_null(a);
	accepted(a, nk, nx, "SI", "SI");
	accepted(a, nk, nx, "HR", "SI");
	commit(a);
	audit_close(&a);
	assert_int_equal(audit_verify_dir_stats(f->log, t, &st, err,
	    sizeof(err)), -1);
	if (strstr(err, "record 2: alert") == NULL)
		fail_msg("%s", err);
	/* Accepted from a peer of another country. */
	assert_int_equal(testutil_rmrf(f->log), 0);
	a = audit_open(f->log, bk, bx, err, sizeof(err));
	assert_non_null(a);
	accepted(a, nk, nx, "SI", "HR");
	commit(a);
	audit_close(&a);
	assert_int_equal(audit_verify_dir_stats(f->log, t, &st, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "record 1: alert from SI accepted from"));

	trust_free(&t);
	EVP_PKEY_free(bk);
	EVP_PKEY_free(nk);
	X509_free(bx);
	X509_free(nx);
}

/* The in-memory parser (the fuzzer's entry) on a segment image cut short
 * at every length and with an oversize length. */
static void
test_scan_buffer_every_length(void **state)
{
	struct fx	*f = *state;
	char		 path[PATH_MAX], err[512];
	uint8_t		*img, *big;
	size_t		 len, good, l, off[64], n, k;
	uint64_t	 nrec;
	int		 r;

	fill(f, 6, 0);
	seg_path(path, sizeof(path), f, 1);
	img = slurp(path, &len);
	n = frames(img, len, off, 64);
	assert_int_equal(audit_scan_buffer(img, len, 1, NULL, &nrec, &good,
	    err, sizeof(err)), 0);
	assert_int_equal(nrec, n);
	assert_int_equal(good, len);
	for (l = 0; l < len; l++) {
		r = audit_scan_buffer(img, l, 1, NULL, &nrec, &good, err,
		    sizeof(err));
		for (k = 0; k < n && off[k] + (k + 1 < n ? off[k + 1] -
		    off[k] : len - off[k]) <= l; k++)
			;
		assert_int_equal(nrec, k);
		assert_int_equal(good, k < n ? off[k] : len);
		assert_int_equal(r, good == l ? 0 : 1);
	}
	/* Wrong first sequence or chain start: damage at record 1. */
	assert_int_equal(audit_scan_buffer(img, len, 2, NULL, &nrec, &good,
	    err, sizeof(err)), -1);
	assert_non_null(strstr(err, "offset 0: record 2"));
	/* An over-size length followed by more than a frame of data. */
	big = calloc(1, AUDIT_MAX_RECORD + 1024);
	assert_non_null(big);
	memcpy(big, img, 8);
	big[4] = 0x7f;
	assert_int_equal(audit_scan_buffer(big, AUDIT_MAX_RECORD + 1024, 1,
	    NULL, &nrec, &good, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "over the limit"));
	/* The same at the very end of a short tail is a torn write. */
	assert_int_equal(audit_scan_buffer(big, 16, 1, NULL, &nrec, &good,
	    err, sizeof(err)), 1);
	free(big);
	free(img);
}

/* --- cpx-audit ------------------------------------------------------ */

/*
 * Run the built cpx-audit with args (NULL-terminated), stdout and stderr
 * into out[] (truncated). Returns its exit status, or -1.
 */
static int
run_tool(char *out, size_t outlen, const char *arg, ...)
{
	const char	*argv[11];
	va_list		 ap;
	size_t		 n = 0;

	va_start(ap, arg);
	while (arg != NULL && n < sizeof(argv) / sizeof(argv[0]) - 1) {
		argv[n++] = arg;
		arg = va_arg(ap, const char *);
	}
	va_end(ap);
	argv[n] = NULL;
	return tools_run(out, outlen, argv);
}

static void
test_cli(void **state)
{
	struct fx	*f = *state;
	static char	 out[64 * 1024];
	char		 path[PATH_MAX];
	json_t		*j;
	json_error_t	 je;
	char		*line, *save = NULL;
	uint8_t		*img;
	size_t		 len, off[64], n, lines = 0;

	fill(f, 20, 0);
	assert_int_equal(run_tool(out, sizeof(out), "--help", NULL), 0);
	assert_non_null(strstr(out, "usage: cpx-audit verify"));
	assert_int_equal(run_tool(out, sizeof(out), "verify", "--help",
	    NULL), 0);
	assert_int_equal(run_tool(out, sizeof(out), "dump", "--help", NULL),
	    0);
	assert_int_equal(run_tool(out, sizeof(out), "verify", NULL), 2);
	assert_int_equal(run_tool(out, sizeof(out), "verify", "--crl",
	    "x.pem", f->log, NULL), 2);
	assert_int_equal(run_tool(out, sizeof(out), "dump", "--from-seq", "x",
	    f->log, NULL), 2);
	/* --from names a country elsewhere: not taken for --from-seq. */
	assert_int_equal(run_tool(out, sizeof(out), "dump", "--from", "19",
	    f->log, NULL), 2);
	assert_non_null(strstr(out, "--from-seq SEQ"));
	assert_int_equal(run_tool(out, sizeof(out), "frobnicate", NULL), 2);

	/* Without --ca: the chain only, and it says so (exit 3). */
	assert_int_equal(run_tool(out, sizeof(out), "verify", f->log, NULL),
	    3);
	assert_non_null(strstr(out, "CHAIN ONLY"));
	assert_non_null(strstr(out, "checked the chain only"));
	assert_null(strstr(out, "\nOK\n"));
	assert_int_equal(run_tool(out, sizeof(out), "verify", "--chain-only",
	    f->log, NULL), 0);
	assert_non_null(strstr(out, "records: 21\n"));
	assert_non_null(strstr(out, "checkpoints: 1"));
	assert_non_null(strstr(out, "last seq: 21\n"));
	assert_non_null(strstr(out, "high-water mark: 21 committed, hash "));
	assert_non_null(strstr(out, "trusted checkpoint 21\n"));
	assert_non_null(strstr(out, "CHAIN ONLY"));

	/* One JSON object per line, from --from-seq on, no key material. */
	assert_int_equal(run_tool(out, sizeof(out), "dump", f->log,
	    "--from-seq", "19", NULL), 0);
	for (line = strtok_r(out, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		j = json_loads(line, 0, &je);
		if (j == NULL)
			fail_msg("not JSON: %s", line);
		assert_int_equal(json_integer_value(json_object_get(j, "seq")),
		    19 + lines);
		assert_non_null(json_object_get(j, "time"));
		assert_null(json_object_get(j, "checkpoint_signature"));
		assert_null(json_object_get(j, "checkpoint_cert"));
		json_decref(j);
		lines++;
	}
	assert_int_equal(lines, 3);

	/* A flipped byte: exit 1, the record named. */
	seg_path(path, sizeof(path), f, 1);
	img = slurp(path, &len);
	n = frames(img, len, off, 64);
	assert_int_equal(n, 21);
	img[off[9] + 12] ^= 0x20;
	spill(path, img, len);
	assert_int_equal(run_tool(out, sizeof(out), "verify", "--chain-only",
	    f->log, NULL), 1);
	if (strstr(out, "record 10: chain hash mismatch") == NULL ||
	    strstr(out, "FAILED") == NULL)
		fail_msg("%s", out);
	assert_int_equal(run_tool(out, sizeof(out), "dump", f->log, NULL),
	    1);
	assert_non_null(strstr(out, "record 10"));
	free(img);
}

/*
 * The time index: a cursor by time (and by sequence) starts at the right
 * record at and around every segment boundary and index point, reading
 * fewer than 128 records (the index spacing) before it, whether the
 * index was built while appending or when the log was opened. Brute
 * force (a full scan) gives the expected record. Records come in groups
 * of three with the same time, and a run of them has times that went
 * backwards (a log written by a broker whose clock was stepped back):
 * "first" is then in log order, as a full scan finds it.
 */
#define IX_RECORDS	2000u
#define IX_EVERY	128u

static int64_t
ix_time(uint64_t seq)
{
	if (seq > IX_RECORDS)		/* appended last, much later */
		return T0 + 10 * (int64_t)(IX_RECORDS / 3) + 5000;
	/* Records 700..719 were stamped by a clock stepped back. */
	if (seq >= 700 && seq < 720)
		return T0 + 10 * (int64_t)(300 / 3);
	return T0 + 10 * (int64_t)(seq / 3);
}

/* First record with seq >= from and time >= t, by a full scan; 0: none. */
static uint64_t
ix_expect(uint64_t from, int64_t t, uint64_t last)
{
	uint64_t	seq;

	for (seq = from > 0 ? from : 1; seq <= last; seq++)
		if (ix_time(seq) >= t)
			return seq;
	return 0;
}

static void
ix_check(struct audit *a, uint64_t from, int64_t t, uint64_t last)
{
	struct audit_cursor	*c;
	Cpx__AuditRecord	*rec;
	char			 err[512];
	uint64_t		 want = ix_expect(from, t, last);
	int			 r;

	c = audit_cursor_new(a, from, t, err, sizeof(err));
	assert_non_null(c);
	r = audit_cursor_next(c, &rec, err, sizeof(err));
	if (r == -1)
		fail_msg("cursor from %llu time %lld: %s",
		    (unsigned long long)from, (long long)t, err);
	if (want == 0)
		assert_int_equal(r, 0);
	else {
		assert_int_equal(r, 1);
		if (rec->seq != want)
			fail_msg("from %llu time T0%+lld: got %llu, want %llu",
			    (unsigned long long)from, (long long)(t - T0),
			    (unsigned long long)rec->seq,
			    (unsigned long long)want);
		cpx__audit_record__free_unpacked(rec, NULL);
	}
	/*
	 * A seek, not a scan: at most one index interval read before the
	 * first record asked for (plus, after the step back, the records
	 * between from and it that are too old).
	 */
	if (audit_cursor_reads(c) > IX_EVERY +
	    (from > 0 && want > from ? want - from : 0))
		fail_msg("from %llu time T0%+lld: %llu records read",
		    (unsigned long long)from, (long long)(t - T0),
		    (unsigned long long)audit_cursor_reads(c));
	audit_cursor_free(&c);
}

/* Sequences where a segment starts, from the directory. */
static size_t
seg_firsts(const char *dir, uint64_t *out, size_t max)
{
	DIR		*d;
	struct dirent	*de;
	size_t		 n = 0;

	d = opendir(dir);
	assert_non_null(d);
	while ((de = readdir(d)) != NULL && n < max)
		if (strncmp(de->d_name, "seg-", 4) == 0)
			out[n++] = strtoull(de->d_name + 4, NULL, 10);
	closedir(d);
	return n;
}

static void
ix_check_all(struct fx *f, struct audit *a, uint64_t last)
{
	uint64_t	firsts[256], p, s;
	size_t		n, i;
	int		d;

	n = seg_firsts(f->log, firsts, 256);
	assert_true(n >= 8);
	for (i = 0; i < n; i++) {
		/* The segment boundary, and an index point inside it. */
		for (p = firsts[i]; p < firsts[i] + 2 * IX_EVERY;
		    p += IX_EVERY) {
			for (d = -2; d <= 2; d++) {
				s = p + (uint64_t)(int64_t)d;
				if (s == 0 || s > last)
					continue;
				ix_check(a, 0, ix_time(s), last);
				ix_check(a, 0, ix_time(s) - 1, last);
				ix_check(a, 0, ix_time(s) + 1, last);
				ix_check(a, s, 0, last);
				ix_check(a, s, ix_time(s) + 20, last);
			}
		}
	}
	/* The step back: times reached again after it are found before. */
	ix_check(a, 0, ix_time(300), last);
	ix_check(a, 710, ix_time(300), last);
	ix_check(a, 0, ix_time(699), last);
	/* Before everything, and after everything. */
	ix_check(a, 0, T0 - 1000, last);
	ix_check(a, 0, ix_time(last) + 1, last);
	ix_check(a, last + 5, 0, last);
}

static void
test_cursor_time_index(void **state)
{
	struct fx		*f = *state;
	struct audit		*a;
	struct audit_cursor	*c;
	Cpx__AuditRecord	*rec;
	char			 err[512];
	uint64_t		 i;

	/* No key: no checkpoint at close, every time is ix_time(). */
	a = audit_open(f->log, NULL, NULL, err, sizeof(err));
	assert_non_null(a);
	/* About 180 records a segment: points at 0 and 128 in each. */
	audit_set_segment_bytes(a, 16384);
	for (i = 1; i <= IX_RECORDS; i++) {
		assert_int_equal(add(a, 5, "index test record", ix_time(i)),
		    i);
		if (i % 50 == 0)
			commit(a);
	}
	commit(a);
	/* Index built while appending. */
	ix_check_all(f, a, IX_RECORDS);
	/* Pending records are not indexed: a cursor past the end sees
	 * nothing, then the record once committed. */
	c = audit_cursor_new(a, 0, ix_time(IX_RECORDS + 1), err, sizeof(err));
	assert_non_null(c);
	assert_int_equal(audit_cursor_next(c, &rec, err, sizeof(err)), 0);
	assert_int_equal(add(a, 5, "later", ix_time(IX_RECORDS + 1)),
	    IX_RECORDS + 1);
	assert_int_equal(audit_cursor_next(c, &rec, err, sizeof(err)), 0);
	commit(a);
	assert_int_equal(audit_cursor_next(c, &rec, err, sizeof(err)), 1);
	assert_int_equal(rec->seq, IX_RECORDS + 1);
	cpx__audit_record__free_unpacked(rec, NULL);
	audit_cursor_free(&c);
	ix_check_all(f, a, IX_RECORDS + 1);
	audit_close(&a);
	/* Index built when the log is opened. */
	a = audit_open(f->log, NULL, NULL, err, sizeof(err));
	assert_non_null(a);
	assert_int_equal(audit_last_seq(a), IX_RECORDS + 1);
	ix_check_all(f, a, IX_RECORDS + 1);
	audit_close(&a);
}

/*
 * Record times stay ordered across a restart even if the clock went
 * back: a record appended after reopening is never stamped before the
 * last one in the log (the time index relies on it).
 */
static void
test_time_monotonic_reopen(void **state)
{
	struct fx		*f = *state;
	struct audit		*a;
	struct audit_cursor	*c;
	Cpx__AuditRecord	*rec;
	char			 err[512];
	const int64_t		 future = T0 + 100LL * 365 * 86400 * 1000;

	a = open_ok(f);
	add(a, 5, "stamped by a clock far ahead", future);
	commit(a);
	audit_close(&a);
	a = open_ok(f);
	/* Time 0: the log stamps it; the real clock is behind `future`. */
	assert_int_equal(add(a, 5, "after the clock went back", 0), 3);
	commit(a);
	c = audit_cursor_new(a, 3, 0, err, sizeof(err));
	assert_non_null(c);
	assert_int_equal(audit_cursor_next(c, &rec, err, sizeof(err)), 1);
	assert_int_equal(rec->seq, 3);
	assert_true(rec->time >= future);
	cpx__audit_record__free_unpacked(rec, NULL);
	audit_cursor_free(&c);
	audit_close(&a);
}

/*
 * The checkpoint as audit.h's contract states it, checked from outside
 * the store: it covers the record before it, its hash is the chain hash
 * there, and its signature verifies (lib/sign.c) over "cpx-checkpoint-v1"
 * | u64be seq | hash | i64be time with the broker's certificate. A key
 * that is not its certificate's signs no checkpoint, and nothing is
 * appended for it.
 */
static void
test_checkpoint_contract(void **state)
{
	struct fx		*f = *state;
	struct audit		*a;
	struct audit_cursor	*c;
	Cpx__AuditRecord	*rec = NULL;
	EVP_PKEY		*other;
	X509			*ocert;
	uint8_t			 hash[AUDIT_HASH_LEN], msg[65];
	char			 err[512], why[128];

	a = open_ok(f);
	add(a, 3, "one", 0);
	add(a, 3, "two", 0);
	commit(a);
	audit_last_hash(a, hash);
	assert_int_equal(audit_checkpoint(a), 0);
	assert_int_equal(audit_pending(a), 1);
	/* Not durable yet: a cursor does not see it. */
	c = audit_cursor_new(a, 3, 0, err, sizeof(err));
	assert_non_null(c);
	assert_int_equal(audit_cursor_next(c, &rec, err, sizeof(err)), 0);
	commit(a);
	assert_int_equal(audit_cursor_next(c, &rec, err, sizeof(err)), 1);
	assert_int_equal(rec->seq, 3);
	assert_int_equal(rec->kind, CPX__RECORD_KIND__RECORD_CHECKPOINT);
	assert_int_equal(rec->checkpoint_seq, 2);
	assert_int_equal(rec->checkpoint_hash.len, AUDIT_HASH_LEN);
	assert_memory_equal(rec->checkpoint_hash.data, hash, AUDIT_HASH_LEN);
	memcpy(msg, AUDIT_CHECKPOINT_TAG, 17);
	be64(msg + 17, rec->checkpoint_seq);
	memcpy(msg + 25, hash, AUDIT_HASH_LEN);
	be64(msg + 57, (uint64_t)rec->time);
	assert_int_equal(sign_verify_bytes(f->cert, msg, sizeof(msg),
	    rec->checkpoint_signature.data, rec->checkpoint_signature.len,
	    why, sizeof(why)), 0);
	/* The time is signed too. */
	be64(msg + 57, (uint64_t)rec->time + 1);
	assert_int_equal(sign_verify_bytes(f->cert, msg, sizeof(msg),
	    rec->checkpoint_signature.data, rec->checkpoint_signature.len,
	    why, sizeof(why)), -1);
	cpx__audit_record__free_unpacked(rec, NULL);
	audit_cursor_free(&c);
	audit_close(&a);

	/* A key that is not the certificate's: no checkpoint, no record. */
	make_key(&other, &ocert, "mallory");
	a = audit_open(f->log, other, f->cert, err, sizeof(err));
	if (a == NULL)
		fail_msg("audit_open: %s", err);
	add(a, 3, "three", 0);
	assert_int_equal(audit_checkpoint(a), -1);
	assert_int_equal(audit_pending(a), 1);
	commit(a);
	assert_int_equal(audit_last_seq(a), 4);
	audit_close(&a);
	a = open_ok(f);
	assert_int_equal(audit_last_seq(a), 4);
	audit_close(&a);
	EVP_PKEY_free(other);
	X509_free(ocert);
}

/* Poll the commit in flight until it ends: 1 or -1 (err[]). */
static int
step_until_done(struct audit *a, char *err, size_t errlen)
{
	struct pollfd	pfd;
	int		rc;

	while ((rc = audit_commit_step(a, err, errlen)) == 0) {
		pfd.fd = audit_commit_fd(a, &pfd.events);
		assert_true(pfd.fd >= 0);	/* the thread's eventfd */
		assert_true(poll(&pfd, 1, 10000) == 1);
	}
	return rc;
}

/*
 * A commit in flight on the committer thread while the next batch is
 * appended: outcomes numbered as appended, the next batch commits after,
 * segments roll over on the way (some in the batch in flight, some in
 * the next), and cursors, a reopen and verify see one whole chain.
 */
static void
test_commit_pipelined(void **state)
{
	struct fx	*f = *state;
	struct audit	*a;
	struct audit_verify_stats st;
	char		 err[512], text[600];
	uint64_t	 seq, first, expect = 1;
	int64_t		 t;
	size_t		 i, k, n;
	int		 round;

	memset(text, 'p', sizeof(text) - 1);
	text[sizeof(text) - 1] = '\0';
	a = open_ok(f);
	/* Over 128 records a segment: index points inside segments too. */
	audit_set_segment_bytes(a, 96 * 1024);
	for (i = 0; i < 5; i++)
		(void)add(a, 5, text, 0);
	for (round = 0; round < 150; round++) {
		n = audit_pending(a);
		assert_int_equal(audit_commit_begin(a, err, sizeof(err)), 0);
		assert_true(audit_commit_inflight(a));
		/* Appends go on while the disk works. */
		for (k = 0; k < (size_t)(round % 7) + 1; k++)
			assert_int_equal(add(a, 5, text, 0),
			    expect + n + k);
		assert_int_equal(audit_pending(a), k);
		if (step_until_done(a, err, sizeof(err)) != 1)
			fail_msg("step: %s", err);
		assert_false(audit_commit_inflight(a));
		assert_int_equal(audit_batch_count(a), n);
		for (i = 0; i < n; i++) {
			assert_int_equal(audit_batch_outcome(a, i, &seq, &t),
			    AUDIT_OUT_COMMITTED);
			assert_int_equal(seq, expect + i);
			assert_true(t > 0);
		}
		assert_int_equal(audit_batch_outcome(a, n, &seq, &t), 0);
		expect += n;
		/* Durable: exactly the batch that finished. */
		assert_int_equal(audit_last_seq(a), expect - 1);
		assert_int_equal(read_all(a, 0, 0, &first), expect - 1);
	}
	/* The blocking commit takes what is left. */
	commit(a);
	expect += k;
	assert_int_equal(audit_last_seq(a), expect - 1);
	/* Seeks through the index land on the right segment. */
	for (seq = 1; seq < expect; seq += 13)
		assert_int_equal(read_all(a, seq, 0, &first), expect - seq);
	audit_close(&a);
	if (audit_verify_dir_stats(f->log, NULL, &st, err, sizeof(err)) != 0)
		fail_msg("verify: %s", err);
	assert_true(st.segments >= 3);
	assert_true(st.last_seq >= expect - 1);	/* and the closing checkpoint */
	a = open_ok(f);
	assert_int_equal(audit_last_seq(a), st.last_seq);
	audit_close(&a);
}

/*
 * The batch appended while a commit is in flight continues the segment
 * that commit created: its index points must name that segment, so a
 * cursor seeks into it directly (fewer than 128 records read before the
 * first it returns) and reads the right file.
 */
static void
test_commit_pipelined_index(void **state)
{
	struct fx		*f = *state;
	struct audit		*a;
	struct audit_cursor	*c;
	Cpx__AuditRecord	*rec;
	char			 err[512], text[400];
	uint64_t		 seq, last;
	int			 i;

	memset(text, 'i', sizeof(text) - 1);
	text[sizeof(text) - 1] = '\0';
	a = open_ok(f);
	audit_set_segment_bytes(a, 100 * 1024);	/* ~220 records each */
	for (i = 0; i < 300; i++)	/* in flight: rolls over at ~220 */
		(void)add(a, 5, text, 0);
	assert_int_equal(audit_commit_begin(a, err, sizeof(err)), 0);
	for (i = 0; i < 300; i++)	/* meanwhile: continues that segment */
		(void)add(a, 5, text, 0);
	if (step_until_done(a, err, sizeof(err)) != 1)
		fail_msg("step: %s", err);
	commit(a);
	last = audit_last_seq(a);
	assert_int_equal(last, 600);
	for (seq = 1; seq <= last; seq += 7) {
		c = audit_cursor_new(a, seq, 0, err, sizeof(err));
		assert_non_null(c);
		if (audit_cursor_next(c, &rec, err, sizeof(err)) != 1)
			fail_msg("cursor from %llu: %s",
			    (unsigned long long)seq, err);
		assert_int_equal(rec->seq, seq);
		if (audit_cursor_reads(c) > 128)
			fail_msg("cursor from %llu read %llu records",
			    (unsigned long long)seq,
			    (unsigned long long)audit_cursor_reads(c));
		cpx__audit_record__free_unpacked(rec, NULL);
		audit_cursor_free(&c);
	}
	audit_close(&a);
}

/*
 * The disk fills under a commit in flight: the batch in flight and the
 * one appended meanwhile are both gone (audit.h: Failure), nothing of
 * them is on disk, and once space returns numbering goes on from the
 * last durable record.
 */
static void
test_commit_pipelined_disk_full(void **state)
{
	struct fx	*f = *state;
	struct audit	*a;
	char		 err[512], filler[PATH_MAX], text[1024];
	uint64_t	 last = 0, seq;
	int64_t		 t;
	int		 fd, rc = 1, i;
	static char	 junk[64 * 1024];

	assert_int_equal(mkdir(f->log, 0700), 0);
	if (mount("tmpfs", f->log, "tmpfs", 0, "size=256k,mode=0700") == -1) {
		fprintf(stderr, "tmpfs: mount: %s: skipped\n",
		    strerror(errno));
		skip();
	}
	snprintf(filler, sizeof(filler), "%s/filler", f->log);
	fd = open(filler, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, junk, sizeof(junk)), sizeof(junk));
	assert_int_equal(close(fd), 0);
	memset(text, 'z', sizeof(text) - 1);
	text[sizeof(text) - 1] = '\0';
	a = open_ok(f);
	audit_set_segment_bytes(a, 40 * 1024);
	while (rc == 1) {
		last = audit_last_seq(a);
		for (i = 0; i < 5; i++)
			(void)add(a, 5, text, 0);
		assert_int_equal(audit_commit_begin(a, err, sizeof(err)), 0);
		for (i = 0; i < 3; i++)	/* the next batch, meanwhile */
			(void)add(a, 5, text, 0);
		rc = step_until_done(a, err, sizeof(err));
		if (rc == 1)
			commit(a);	/* the three, before the next round */
		assert_true(audit_last_seq(a) < 1000);
	}
	if (strstr(err, "No space left on device") == NULL)
		fail_msg("error \"%s\"", err);
	assert_int_equal(audit_pending(a), 0);	/* the next batch went too */
	check_rolled_back(f, a, last);
	assert_int_equal(unlink(filler), 0);
	assert_int_equal(add(a, 3, "space is back", 0), last + 1);
	assert_int_equal(audit_commit_begin(a, err, sizeof(err)), 0);
	assert_int_equal(step_until_done(a, err, sizeof(err)), 1);
	assert_int_equal(audit_batch_outcome(a, 0, &seq, &t),
	    AUDIT_OUT_COMMITTED);
	assert_int_equal(seq, last + 1);
	audit_close(&a);
	a = open_ok(f);
	audit_close(&a);
	assert_int_equal(umount(f->log), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_round_trip_segments,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_cursor_seq_time_pending,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_torn_tail, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_torn_bad_hash_last,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_flipped_byte, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_lock_and_too_large,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_disk_full_tmpfs, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_disk_full_rlimit, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_checkpoint_signature,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_verify_with_ca, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_scan_buffer_every_length,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_cli, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cursor_time_index, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_time_monotonic_reopen,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_mark_truncation, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_mark_flip_and_garbage,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_mark_missing, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_mark_slot_torn, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_mark_edited_rechained,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_chain_v1, setup, teardown),
		cmocka_unit_test_setup_teardown(test_checkpoint_contract,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_commit_pipelined, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_commit_pipelined_index,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_commit_pipelined_disk_full, setup, teardown),
	};

	log_init("test_audit", LOG_LEVEL_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
