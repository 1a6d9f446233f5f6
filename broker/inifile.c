/*
 * inifile.c: the INI reader shared by config.c and policy_load.c.
 *
 * libinih as shipped (Debian r55) gives its handler no line number,
 * silently truncates a section name to 50 bytes (so "[node <64-byte CN>]"
 * would grant rights to a shorter name) and silently splits a line over
 * 200 bytes in two (so the tail of a long line would be read as a line of
 * its own). Everything is therefore fed to inih through a reader here that
 * counts lines, keeps each section header whole, and refuses over-long
 * lines and NUL bytes. It also owns reading a whole file into memory with
 * a size cap, so neither file can make the broker allocate at will.
 */
#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ini.h>

#include "errfmt.h"
#include "inifile.h"

/* Longest section text kept: "node " + CN, "region " + name. */
#define INI_MAX_SECTION		128

/* What the reader and the handler share while one buffer is parsed. */
struct ini_state {
	const char	*name;
	const char	*buf;
	size_t		 len;
	size_t		 pos;
	unsigned int	 line;
	unsigned int	 seq;		/* section headers seen */
	unsigned int	 sec_line;	/* line of the current header */
	unsigned int	 sec_keys;	/* keys in the current section */
	int		 continuation;	/* current line continues a key */
	int		 at_eof;
	char		 section[INI_MAX_SECTION + 1];
	int		(*fn)(void *, const struct inifile_key *, char *,
			    size_t);
	void		*arg;
	unsigned int	 fail_line;	/* first failure we found, 0 = none */
	unsigned int	 fail_at;	/* line being read when found */
	char		*err;
	size_t		 errlen;
};

static void
ini_fail(struct ini_state *s, unsigned int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
ini_fail(struct ini_state *s, unsigned int line, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	if (s->fail_line != 0)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	(void)errf(s->err, s->errlen, "%s:%u: %s", s->name, line, msg);
	s->fail_line = line;
	s->fail_at = s->at_eof ? s->line + 1 : s->line;
}

/*
 * A section with no key is invisible to inih's handler; an empty
 * "[node x]" would silently grant nothing where the author meant
 * something, so it is refused.
 */
static int
ini_section_done(struct ini_state *s)
{
	if (s->seq > 0 && s->sec_keys == 0) {
		ini_fail(s, s->sec_line, "[%s]: section has no keys",
		    s->section);
		return -1;
	}
	return 0;
}

/*
 * fgets-like reader for inih over a memory buffer. It decides, exactly as
 * inih r55 does, whether the line is a section header or a continuation
 * line, so that inifile_key carries the whole section text.
 */
static char *
line_reader(char *str, int num, void *stream)
{
	struct ini_state *s = stream;
	const char *p, *nl, *end;
	char *t;
	size_t n, avail, slen, text;

	if (s->fail_line != 0 || s->at_eof)
		return NULL;
	if (s->pos >= s->len) {
		s->at_eof = 1;
		(void)ini_section_done(s);
		return NULL;
	}
	p = s->buf + s->pos;
	avail = s->len - s->pos;
	nl = memchr(p, '\n', avail);
	n = nl != NULL ? (size_t)(nl - p) + 1 : avail;
	s->line++;
	s->continuation = 0;
	/* A NUL would end the line early for inih and hide its tail. */
	if (memchr(p, '\0', n) != NULL) {
		ini_fail(s, s->line, "NUL byte in line");
		return NULL;
	}
	/* Room for the text, "\r\n" and the NUL, as inih documents. */
	text = n;
	if (text > 0 && p[text - 1] == '\n')
		text--;
	if (text > 0 && p[text - 1] == '\r')
		text--;
	if (num < 3 || text > (size_t)num - 3) {
		ini_fail(s, s->line, "line longer than %d bytes", num - 3);
		return NULL;
	}
	memcpy(str, p, n);
	str[n] = '\0';
	s->pos += n;

	t = str;
	if (s->line == 1 && n >= 3 && (unsigned char)t[0] == 0xef &&
	    (unsigned char)t[1] == 0xbb && (unsigned char)t[2] == 0xbf)
		t += 3;
	while (*t != '\0' && isspace((unsigned char)*t))
		t++;
	if (*t == '\0' || *t == ';' || *t == '#')
		return str;
	if (t > str && s->sec_keys > 0) {
		/* inih would append this line to the previous key. */
		s->continuation = 1;
		return str;
	}
	if (*t != '[')
		return str;
	if (ini_section_done(s) == -1)
		return NULL;
	s->seq++;
	s->sec_line = s->line;
	s->sec_keys = 0;
	s->section[0] = '\0';
	end = strchr(t + 1, ']');
	if (end == NULL)
		return str;	/* inih reports the syntax error */
	slen = (size_t)(end - (t + 1));
	if (slen > INI_MAX_SECTION) {
		ini_fail(s, s->line, "section name longer than %d bytes",
		    INI_MAX_SECTION);
		return NULL;
	}
	memcpy(s->section, t + 1, slen);
	s->section[slen] = '\0';
	return str;
}

static int
key_handler(void *user, const char *section, const char *name,
    const char *value)
{
	struct ini_state *s = user;
	struct inifile_key k;

	(void)section;	/* possibly truncated: ours is whole */
	s->sec_keys++;
	if (s->fail_line != 0)
		return 0;
	if (s->continuation) {
		ini_fail(s, s->line, "%s: indented line would continue the "
		    "previous key; multi-line values are not supported",
		    name);
		return 0;
	}
	if (*name == '\0') {
		ini_fail(s, s->line, "missing key name before '='");
		return 0;
	}
	if (s->seq == 0) {
		ini_fail(s, s->line, "%s: key outside any [section]", name);
		return 0;
	}
	k.file = s->name;
	k.section = s->section;
	k.key = name;
	k.value = value;
	k.line = s->line;
	k.section_line = s->sec_line;
	k.section_seq = s->seq;
	if (s->fn(s->arg, &k, s->err, s->errlen) == -1) {
		s->fail_line = s->fail_at = s->line;
		return 0;
	}
	return 1;
}

int
inifile_parse(const char *name, const char *buf, size_t len,
    int (*fn)(void *, const struct inifile_key *, char *, size_t),
    void *arg, char *err, size_t errlen)
{
	struct ini_state s;
	int rc;

	memset(&s, 0, sizeof(s));
	s.name = name;
	s.buf = buf;
	s.len = len;
	s.fn = fn;
	s.arg = arg;
	s.err = err;
	s.errlen = errlen;
	if (errlen > 0)
		err[0] = '\0';
	rc = ini_parse_stream(line_reader, &s, key_handler, &s);
	/*
	 * inih goes on after a syntax error; report whichever error came
	 * first in the file, and a syntax error before an empty section it
	 * caused.
	 */
	if (rc > 0 && (s.fail_line == 0 || (unsigned int)rc < s.fail_at))
		return errf(err, errlen, "%s:%d: syntax error: expected "
		    "[section], key = value or a comment", name, rc);
	if (s.fail_line != 0)
		return -1;
	if (rc != 0)
		return errf(err, errlen, "%s: INI parser failed (%d)", name,
		    rc);
	return 0;
}

int
inifile_read(const char *path, size_t maxlen, char **bufp,
    size_t *lenp, char *err, size_t errlen)
{
	struct stat st;
	char *buf = NULL, extra;
	size_t len = 0, cap;
	ssize_t r;
	int fd = -1, ret = -1;

	*bufp = NULL;
	*lenp = 0;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) == -1) {
		errf(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (fstat(fd, &st) == -1) {
		errf(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		errf(err, errlen, "%s: not a regular file", path);
		goto out;
	}
	if (st.st_size < 0 || (uintmax_t)st.st_size > maxlen) {
		errf(err, errlen, "%s: larger than %zu bytes", path, maxlen);
		goto out;
	}
	cap = (size_t)st.st_size;
	if ((buf = malloc(cap + 1)) == NULL) {
		errf(err, errlen, "%s: out of memory", path);
		goto out;
	}
	while (len < cap) {
		r = read(fd, buf + len, cap - len);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1) {
			errf(err, errlen, "%s: %s", path, strerror(errno));
			goto out;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	/* A file that grew while read is being edited: read it later. */
	do
		r = read(fd, &extra, 1);
	while (r == -1 && errno == EINTR);
	if (r != 0 || len != cap) {
		errf(err, errlen, "%s: changed while being read", path);
		goto out;
	}
	buf[len] = '\0';
	*bufp = buf;
	*lenp = len;
	buf = NULL;
	ret = 0;
 out:
	free(buf);
	if (fd != -1)
		close(fd);
	return ret;
}

