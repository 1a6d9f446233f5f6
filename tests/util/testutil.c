/*
 * testutil.c: scratch directories and files for tests (see testutil.h).
 */
#define _XOPEN_SOURCE 700	/* nftw() */

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "testutil.h"

#define TESTUTIL_TEMPLATE	"/tmp/cpx-test-XXXXXX"

int
testutil_mkdtemp(char *out, size_t len)
{
	if (out == NULL || len < sizeof(TESTUTIL_TEMPLATE))
		goto fail;
	memcpy(out, TESTUTIL_TEMPLATE, sizeof(TESTUTIL_TEMPLATE));
	if (mkdtemp(out) == NULL) {
		log_warn("mkdtemp %s", TESTUTIL_TEMPLATE);
		goto fail;
	}
	return 0;
fail:
	if (out != NULL && len > 0)
		out[0] = '\0';
	return -1;
}

static int
rmrf_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	/* FTW_DEPTH visits a directory after its entries: rmdir then works. */
	if (flag == FTW_DP) {
		if (rmdir(path) == -1) {
			log_warn("rmdir %s", path);
			return -1;
		}
		return 0;
	}
	if (unlink(path) == -1) {
		log_warn("unlink %s", path);
		return -1;
	}
	return 0;
}

int
testutil_rmrf(const char *dir)
{
	struct stat st;

	if (dir == NULL || dir[0] == '\0')
		return -1;
	if (lstat(dir, &st) == -1)
		return errno == ENOENT ? 0 : -1;
	/* FTW_PHYS: a symlink planted in the tree is removed, not followed. */
	if (nftw(dir, rmrf_one, 16, FTW_DEPTH | FTW_PHYS) != 0)
		return -1;
	return 0;
}

int
testutil_write_file(const char *path, const void *buf, size_t len)
{
	FILE *f;
	int ret = 0;

	if ((f = fopen(path, "w")) == NULL) {
		log_warn("%s", path);
		return -1;
	}
	if (len > 0 && fwrite(buf, 1, len, f) != len) {
		log_warn("write %s", path);
		ret = -1;
	}
	if (fclose(f) != 0) {
		log_warn("close %s", path);
		ret = -1;
	}
	return ret;
}

int
testutil_fill_disk(const char *path)
{
	static char block[65536];
	int fd;

	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600)) == -1) {
		log_warn("%s", path);
		return -1;
	}
	memset(block, 'x', sizeof(block));
	while (write(fd, block, sizeof(block)) > 0)
		;
	close(fd);
	return 0;
}

char *
testutil_read_text(const char *path)
{
	struct stat st;
	char *buf;
	size_t n;
	FILE *f;

	if ((f = fopen(path, "r")) == NULL)
		return strdup("");
	if (fstat(fileno(f), &st) == -1 ||
	    (buf = malloc((size_t)st.st_size + 1)) == NULL) {
		fclose(f);
		return NULL;
	}
	n = fread(buf, 1, (size_t)st.st_size, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}
