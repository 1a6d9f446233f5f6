/*
 * testutil.h: small helpers every cpx test may use: a private scratch
 * directory under /tmp and its removal. Tests use real files, not mocks,
 * so each test makes its own directory and removes it at the end.
 */
#ifndef CPX_TESTUTIL_H
#define CPX_TESTUTIL_H

#include <stddef.h>

/*
 * Create a fresh directory /tmp/cpx-test-XXXXXX (mode 0700) and write its
 * path to out[len]. The caller owns the directory and removes it with
 * testutil_rmrf(). Returns 0, or -1 with out[] emptied.
 */
int	testutil_mkdtemp(char *out, size_t len)
	    __attribute__((warn_unused_result));

/*
 * Remove dir and everything below it without following symbolic links.
 * A missing dir is not an error. Returns 0, or -1 if something could not
 * be removed (logged).
 */
int	testutil_rmrf(const char *dir) __attribute__((warn_unused_result));

/*
 * Create or replace path with buf[0..len) exactly (NUL bytes included,
 * for tests of readers that must refuse them). Returns 0, or -1 if it
 * could not be opened, written or closed.
 */
int	testutil_write_file(const char *path, const void *buf, size_t len)
	    __attribute__((warn_unused_result));
/*
 * The whole of a text file, NUL-terminated and owned by the caller
 * (free); "" if the file does not exist (yet), NULL if out of memory.
 */
char	*testutil_read_text(const char *path);
/*
 * Create path (0600) and write to it until the file system refuses: a
 * full disk for the tests of what the broker does then. The caller
 * unlinks path to give the space back. Returns 0, or -1 if path could
 * not be created.
 */
int	testutil_fill_disk(const char *path)
	    __attribute__((warn_unused_result));

#endif
