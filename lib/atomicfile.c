/*
 * atomicfile.c: crash-safe replacement of a small file (atomicfile.h):
 * temporary name, fsync, rename, fsync the directory.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "atomicfile.h"
#include "errfmt.h"

int
atomicfile_replace(const char *path, const void *buf, size_t len,
    char *err, size_t errlen)
{
	const char	*p = buf, *slash;
	char		 tmp[4096], dir[4096];
	size_t		 off = 0;
	ssize_t		 n;
	int		 fd = -1, dfd = -1, ret = -1, w;

	tmp[0] = '\0';
	slash = strrchr(path, '/');
	if (slash == NULL)
		w = snprintf(dir, sizeof(dir), ".");
	else if (slash == path)
		w = snprintf(dir, sizeof(dir), "/");
	else
		w = snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path),
		    path);
	if (w < 0 || (size_t)w >= sizeof(dir) ||
	    (w = snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path)) < 0 ||
	    (size_t)w >= sizeof(tmp)) {
		tmp[0] = '\0';
		return errf(err, errlen, "%s: path too long", path);
	}
	/* mkstemp creates the file O_EXCL, mode 0600: never an existing one. */
	if ((fd = mkstemp(tmp)) == -1) {
		errf(err, errlen, "cannot create a file beside %s: %s", path,
		    strerror(errno));
		tmp[0] = '\0';
		goto done;
	}
	while (off < len) {
		n = write(fd, p + off, len - off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			errf(err, errlen, "writing %s: %s", tmp,
			    n == 0 ? "wrote nothing" : strerror(errno));
			goto done;
		}
		off += (size_t)n;
	}
	if (fchmod(fd, 0600) == -1 || fsync(fd) == -1) {
		errf(err, errlen, "writing %s: %s", tmp, strerror(errno));
		goto done;
	}
	if (close(fd) == -1) {
		fd = -1;
		errf(err, errlen, "writing %s: %s", tmp, strerror(errno));
		goto done;
	}
	fd = -1;
	if (rename(tmp, path) == -1) {
		errf(err, errlen, "replacing %s: %s", path, strerror(errno));
		goto done;
	}
	tmp[0] = '\0';
	/* The rename is durable only once the directory is. */
	if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1 ||
	    fsync(dfd) == -1) {
		errf(err, errlen, "syncing the directory %s of %s: %s", dir,
		    path, strerror(errno));
		goto done;
	}
	ret = 0;
done:
	if (dfd != -1)
		close(dfd);
	if (fd != -1)
		close(fd);
	if (tmp[0] != '\0')
		(void)unlink(tmp);
	return ret;
}
