/*
 * atomicfile.h: replace a small file so that a crash leaves either the
 * old contents or the new, never a torn mix: the one way the client
 * (its state file) and the console (its accounts file) rewrite a file.
 */
#ifndef CPX_ATOMICFILE_H
#define CPX_ATOMICFILE_H

#include <stddef.h>

/*
 * Replace path with buf[0..len): a temporary beside it (mkstemp: O_EXCL,
 * mode 0600), written in full, fsync'd, renamed over path, and the
 * directory fsync'd so the rename is durable. The temporary is removed
 * on failure. Returns 0, or -1 with err[] naming the file and the cause.
 */
int	atomicfile_replace(const char *path, const void *buf, size_t len,
	    char *err, size_t errlen) __attribute__((warn_unused_result));

#endif
