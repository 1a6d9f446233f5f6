/*
 * cliproc.c: child processes of the real cpx programs for the tests:
 * fork/exec with output to files, a polling wait with a deadline, and
 * readers of what the child wrote (see cliproc.h).
 */
#include <sys/types.h>
#include <sys/wait.h>

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

#include "cliproc.h"
#include "testbroker.h"
#include "testutil.h"

char *
cliproc_exe(char *out, size_t len, const char *prog)
{
	const char *b = getenv("CPX_BINARY_DIR");

	snprintf(out, len, "%s/%s", b != NULL ? b : CPX_BINARY_DIR, prog);
	return out;
}

pid_t
cliproc_spawn(const char *exe, const char *out, const char *err,
    const char *in, const char *const *args, pid_t *kids, size_t nkids)
{
	const char *argv[CLIPROC_MAX_ARGS + 2];
	const char *slash = strrchr(exe, '/');
	pid_t pid;
	size_t i;
	int fd;

	argv[0] = slash != NULL ? slash + 1 : exe;
	for (i = 0; args[i] != NULL && i < CLIPROC_MAX_ARGS; i++)
		argv[i + 1] = args[i];
	argv[i + 1] = NULL;
	fflush(stdout);
	fflush(stderr);
	if ((pid = fork()) == -1)
		return -1;
	if (pid > 0) {
		for (i = 0; kids != NULL && i < nkids; i++)
			if (kids[i] == 0) {
				kids[i] = pid;
				break;
			}
		return pid;
	}
	if ((fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600)) != -1)
		dup2(fd, 1);
	if ((fd = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0600)) != -1)
		dup2(fd, 2);
	if ((fd = open(in != NULL ? in : "/dev/null", O_RDONLY)) != -1)
		dup2(fd, 0);
	execv(exe, (char *const *)argv);
	_exit(127);
}

int
cliproc_wait(pid_t pid, int ms, pid_t *kids, size_t nkids)
{
	int64_t until = testutil_now_ms() + ms;
	size_t i;
	pid_t r;
	int status, rc = -1;

	for (;;) {
		r = waitpid(pid, &status, WNOHANG);
		if (r == pid) {
			rc = WIFEXITED(status) ? WEXITSTATUS(status) :
			    128 + WTERMSIG(status);
			break;
		}
		if (r == -1)
			break;
		if (testutil_now_ms() >= until) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			break;
		}
		usleep(5000);	/* polling interval */
	}
	for (i = 0; kids != NULL && i < nkids; i++)
		if (kids[i] == pid)
			kids[i] = 0;
	return rc;
}

void
cliproc_show(const char *what, const char *path)
{
	char *t = testutil_read_text(path);

	fprintf(stderr, "---- %s (%s) ----\n%s---- end ----\n", what, path,
	    t != NULL ? t : "");
	free(t);
}

size_t
cliproc_count_lines(const char *path)
{
	char *t = testutil_read_text(path), *p;
	size_t n = 0;

	for (p = t; p != NULL && (p = strchr(p, '\n')) != NULL; p++)
		n++;
	free(t);
	return n;
}

int
cliproc_wait_lines(const char *path, size_t n, int ms)
{
	int64_t until = testutil_now_ms() + ms;

	while (testutil_now_ms() < until) {
		if (cliproc_count_lines(path) >= n)
			return 1;
		usleep(5000);	/* polling interval */
	}
	return 0;
}

int
cliproc_file_has(const char *path, const char *needle)
{
	char *t = testutil_read_text(path);
	int found = t != NULL && strstr(t, needle) != NULL;

	free(t);
	return found;
}

json_t *
cliproc_load_lines(const char *path)
{
	char *t = testutil_read_text(path), *line, *save = NULL;
	json_t *arr = json_array(), *o;

	assert_non_null(t);
	assert_non_null(arr);
	for (line = strtok_r(t, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		if ((o = json_loads(line, 0, NULL)) == NULL)
			fail_msg("%s: not JSON: %s", path, line);
		json_array_append_new(arr, o);
	}
	free(t);
	return arr;
}
