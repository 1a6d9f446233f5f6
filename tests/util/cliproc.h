/*
 * cliproc.h: the real cpx and cpx-audit programs as child processes of a
 * test (test_cli.c, test_failover.c, test_pg_network.c): start one with
 * its output in files, wait for its exit with a deadline, and read what
 * it wrote (line counts, a needle, JSON lines, a dump on failure).
 */
#ifndef CPX_CLIPROC_H
#define CPX_CLIPROC_H

#include <stddef.h>
#include <sys/types.h>

#include <jansson.h>

#define CLIPROC_MAX_ARGS	48	/* arguments after argv[0]; more are cut */

/*
 * Write $CPX_BINARY_DIR/prog (the build directory by default) to
 * out[len], e.g. prog "client/cpx". Returns out.
 */
char	*cliproc_exe(char *out, size_t len, const char *prog);

/*
 * Start exe with args (NULL-terminated; argv[0] is exe's last component),
 * stdout and stderr to the files out and err (created, 0600), stdin from
 * in (or /dev/null). If kids is not NULL the pid goes into its first free
 * (0) slot of nkids, so that a teardown can end it after a failure.
 * Returns the pid, or -1 if fork failed.
 */
pid_t	 cliproc_spawn(const char *exe, const char *out, const char *err,
	    const char *in, const char *const *args, pid_t *kids,
	    size_t nkids);

/*
 * Wait up to ms for pid (polling) and reap it; at the deadline it is
 * killed with SIGKILL. Returns its exit code, 128 + the signal that
 * ended it, or -1 if it had to be killed (or was not a child). Clears
 * pid from kids[nkids] (may be NULL).
 */
int	 cliproc_wait(pid_t pid, int ms, pid_t *kids, size_t nkids);

/* Print the text file path to stderr between markers naming what. */
void	 cliproc_show(const char *what, const char *path);

/* Number of newline-ended lines in path (0 if it does not exist). */
size_t	 cliproc_count_lines(const char *path);

/* Poll until path has n lines (1) or ms pass (0). */
int	 cliproc_wait_lines(const char *path, size_t n, int ms);

/* 1 if the text file path contains needle, else 0. */
int	 cliproc_file_has(const char *path, const char *needle);

/*
 * Each line of path as a JSON object, in an array owned by the caller;
 * fails the current cmocka test if the file is missing or a line is not
 * JSON.
 */
json_t	*cliproc_load_lines(const char *path);

#endif
