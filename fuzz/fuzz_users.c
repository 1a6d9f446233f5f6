/*
 * fuzz_users.c: libFuzzer target for the reader of cpx-console's
 * accounts file (console/console_users.c, users_parse: the same checks
 * users_verify makes of a file's content, on bytes in memory, never
 * through a temporary file). A file an administrator edited by hand, or
 * one damaged on disk, must be refused with its line named, never read
 * past its end or half-accepted. Checked: every refusal names the file;
 * an accepted file holds at most USERS_MAX_ACCOUNTS accounts and no more
 * than it has lines; and a file accepted stays accepted, with the same
 * count, when comments and blank lines are added (they are not
 * accounts).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "console_users.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char extra[] = "# a comment\n\n";
	char err[512], *more;
	size_t count, again, lines = 1, i;

	if (size > USERS_MAX_FILE + 16)
		return 0;
	if (users_parse("fuzz-users", (const char *)data, size, &count, err,
	    sizeof(err)) == -1) {
		if (count != 0 || strstr(err, "fuzz-users") == NULL)
			abort();	/* every error names the file */
		return 0;
	}
	for (i = 0; i < size; i++)
		lines += data[i] == '\n';
	if (count > USERS_MAX_ACCOUNTS || count > lines)
		abort();
	if (size + sizeof(extra) > USERS_MAX_FILE)
		return 0;
	if ((more = malloc(size + sizeof(extra))) == NULL)
		return 0;
	memcpy(more, extra, sizeof(extra) - 1);
	memcpy(more + sizeof(extra) - 1, data, size);
	if (users_parse("fuzz-users", more, size + sizeof(extra) - 1, &again,
	    err, sizeof(err)) == -1 || again != count)
		abort();
	free(more);
	return 0;
}
