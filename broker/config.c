/*
 * config.c: the broker's configuration. Owns the defaults of every
 * protective limit, the [broker] section of the INI file, command-line
 * overrides (config_set) and the coherence check run before start-up.
 *
 * It also owns the INI reader shared with policy.c: libinih as shipped
 * (Debian r55) gives its handler no line number, silently truncates a
 * section name to 50 bytes (so "[node <64-byte CN>]" would grant rights to
 * a shorter name) and silently splits a line over 200 bytes in two (so the
 * tail of a long line would be read as a line of its own). Everything is
 * therefore fed to inih through a reader here that counts lines, keeps
 * each section header whole, and refuses over-long lines and NUL bytes.
 */
#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ini.h>

#include "config.h"
#include "cpx_limits.h"
#include "log.h"

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
	int		(*fn)(void *, const struct config_ini_key *, char *,
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
	snprintf(s->err, s->errlen, "%s:%u: %s", s->name, line, msg);
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
 * line, so that config_ini_key carries the whole section text.
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
	struct config_ini_key k;

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
config_ini_parse(const char *name, const char *buf, size_t len,
    int (*fn)(void *, const struct config_ini_key *, char *, size_t),
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
	if (rc > 0 && (s.fail_line == 0 || (unsigned int)rc < s.fail_at)) {
		snprintf(err, errlen, "%s:%d: syntax error: expected "
		    "[section], key = value or a comment", name, rc);
		return -1;
	}
	if (s.fail_line != 0)
		return -1;
	if (rc != 0) {
		snprintf(err, errlen, "%s: INI parser failed (%d)", name, rc);
		return -1;
	}
	return 0;
}

int
config_read_file(const char *path, size_t maxlen, char **bufp,
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
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (fstat(fd, &st) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", path);
		goto out;
	}
	if (st.st_size < 0 || (uintmax_t)st.st_size > maxlen) {
		snprintf(err, errlen, "%s: larger than %zu bytes", path,
		    maxlen);
		goto out;
	}
	cap = (size_t)st.st_size;
	if ((buf = malloc(cap + 1)) == NULL) {
		snprintf(err, errlen, "%s: out of memory", path);
		goto out;
	}
	while (len < cap) {
		r = read(fd, buf + len, cap - len);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1) {
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
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
		snprintf(err, errlen, "%s: changed while being read", path);
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

/* --- the [broker] section ------------------------------------------- */

enum key_type {
	KEY_STRING,
	KEY_PATH,	/* relative to the config file's directory */
	KEY_U32
};

struct key {
	const char	*name;
	enum key_type	 type;
	size_t		 off;
	uint32_t	 min;
	uint32_t	 max;
};

#define STR(f)		{ #f, KEY_STRING, offsetof(struct config, f), 0, 0 }
#define PATH(f)		{ #f, KEY_PATH, offsetof(struct config, f), 0, 0 }
#define U32(f, lo, hi)	{ #f, KEY_U32, offsetof(struct config, f), lo, hi }

/*
 * Ranges: a limit of zero or near zero would turn a protection off (or
 * make the broker useless); one too high would let a peer pin memory.
 */
static const struct key config_keys[] = {
	STR(listen),
	PATH(ca),
	PATH(cert),
	PATH(key),
	PATH(crl),
	PATH(policy),
	PATH(audit_dir),
	STR(user),
	STR(log_level),
	U32(max_frame, 1024, CPX_MAX_FRAME),
	U32(max_sessions, 1, 100000),
	U32(handshake_timeout_ms, 100, 600000),
	U32(idle_timeout_ms, 300, 86400000),
	U32(ping_interval_ms, 100, 3600000),
	U32(publish_rate, 0, 1000000),
	U32(publish_burst, 1, 10000000),
	U32(outbound_queue, 65536, 1073741824),
	U32(clock_skew_ms, 1000, 86400000),
	U32(checkpoint_interval_ms, 1000, 86400000),
	U32(checkpoint_records, 1, 100000000),
	U32(verify_threads, 0, 64),
	U32(verify_backlog, 16, 1000000),
	U32(queue_budget, 1048576, 4294967295u),
	U32(max_sessions_per_node, 1, 100000),
	U32(max_handshakes, 1, 100000),
	U32(max_handshakes_per_address, 1, 100000),
	U32(connect_rate, 0, 1000000),
	U32(connect_burst, 1, 1000000),
	U32(refusal_interval_ms, 1000, 3600000),
	U32(refusal_limit, 10, 100000000),
	U32(refusal_penalty_ms, 1000, 3600000),
};
#define NKEYS	(sizeof(config_keys) / sizeof(config_keys[0]))

#undef STR
#undef PATH
#undef U32

static const struct key *
key_find(const char *name)
{
	size_t i;

	for (i = 0; i < NKEYS; i++)
		if (strcmp(config_keys[i].name, name) == 0)
			return &config_keys[i];
	return NULL;
}

static char **
key_str(struct config *c, const struct key *k)
{
	return (char **)(void *)((char *)c + k->off);
}

static const char *
key_cstr(const struct config *c, const struct key *k)
{
	return *(char *const *)(const void *)((const char *)c + k->off);
}

static uint32_t *
key_u32(struct config *c, const struct key *k)
{
	return (uint32_t *)(void *)((char *)c + k->off);
}

static uint32_t
key_cu32(const struct config *c, const struct key *k)
{
	return *(const uint32_t *)(const void *)((const char *)c + k->off);
}

static int
parse_u32(const struct key *k, const char *v, uint32_t *out, char *msg,
    size_t msglen)
{
	unsigned long long n;
	const char *p;
	char *end;

	/*
	 * Digits only: strtoull alone would take "-1" as 2^64-1, " 5",
	 * "+5" and "5 " as 5 and "" as 0.
	 */
	for (p = v; *p != '\0'; p++)
		if (*p < '0' || *p > '9')
			break;
	if (*v == '\0' || *p != '\0') {
		snprintf(msg, msglen, "\"%s\" is not a decimal number", v);
		return -1;
	}
	errno = 0;
	n = strtoull(v, &end, 10);
	if (errno == ERANGE || n > k->max) {
		snprintf(msg, msglen, "%s is over the limit %u", v, k->max);
		return -1;
	}
	if (*end != '\0') {
		snprintf(msg, msglen, "\"%s\" is not a decimal number", v);
		return -1;
	}
	if (n < k->min) {
		snprintf(msg, msglen, "%s is under the minimum %u", v, k->min);
		return -1;
	}
	*out = (uint32_t)n;
	return 0;
}

/* A user name as useradd(8) takes it, so getpwnam sees what we logged. */
static int
user_valid(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > 32 || s[0] == '-')
		return 0;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '_' &&
		    s[i] != '-' && s[i] != '.')
			return 0;
	return 1;
}

/*
 * Set key k of c from v. basedir (or NULL) is where a relative path is
 * taken from. On failure c is unchanged and msg[] says why.
 */
static int
set_value(struct config *c, const struct key *k, const char *v,
    const char *basedir, char *msg, size_t msglen)
{
	enum log_level lvl;
	const char *p;
	char *copy = NULL, **slot;
	size_t len, blen;
	uint32_t n;

	if (k->type == KEY_U32) {
		if (parse_u32(k, v, &n, msg, msglen) == -1)
			return -1;
		*key_u32(c, k) = n;
		return 0;
	}
	if (*v == '\0') {
		snprintf(msg, msglen, "empty value");
		return -1;
	}
	/* Control bytes in a path or address would end up in the logs. */
	for (p = v; *p != '\0'; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f) {
			snprintf(msg, msglen, "control character in value");
			return -1;
		}
	}
	if (strcmp(k->name, "listen") == 0 &&
	    strncmp(v, "tcp://", 6) != 0) {
		snprintf(msg, msglen, "\"%s\" is not a tcp:// endpoint", v);
		return -1;
	}
	if (strcmp(k->name, "log_level") == 0 &&
	    log_level_parse(v, &lvl) == -1) {
		snprintf(msg, msglen, "\"%s\" is not one of error, warn, "
		    "info, debug", v);
		return -1;
	}
	if (strcmp(k->name, "user") == 0 && !user_valid(v)) {
		snprintf(msg, msglen, "\"%s\" is not a valid user name", v);
		return -1;
	}
	if (k->type != KEY_PATH || v[0] == '/')
		basedir = NULL;
	blen = basedir != NULL ? strlen(basedir) + 1 : 0;
	len = blen + strlen(v);
	if (k->type == KEY_PATH && len >= PATH_MAX) {
		snprintf(msg, msglen, "path longer than %d bytes",
		    PATH_MAX - 1);
		return -1;
	}
	if ((copy = malloc(len + 1)) == NULL) {
		snprintf(msg, msglen, "out of memory");
		return -1;
	}
	/*
	 * Copied piecewise, not with snprintf: len is exact, and GCC's
	 * truncation analysis cannot see that under every build type.
	 */
	if (basedir != NULL) {
		memcpy(copy, basedir, blen - 1);
		copy[blen - 1] = '/';
	}
	memcpy(copy + blen, v, len - blen + 1);
	slot = key_str(c, k);
	free(*slot);
	*slot = copy;
	return 0;
}

void
config_defaults(struct config *c)
{
	memset(c, 0, sizeof(*c));
	if ((c->listen = strdup("tcp://0.0.0.0:7443")) == NULL ||
	    (c->log_level = strdup("info")) == NULL)
		fatal("config_defaults");
	c->max_frame = CPX_MAX_FRAME;
	c->max_sessions = 2000;
	c->handshake_timeout_ms = 10000;
	c->idle_timeout_ms = 90000;
	c->ping_interval_ms = 30000;
	c->publish_rate = 2000;
	c->publish_burst = 4000;
	c->outbound_queue = 8u * 1024u * 1024u;
	c->clock_skew_ms = 300000;
	c->checkpoint_interval_ms = 60000;
	c->checkpoint_records = 10000;
	c->verify_threads = 1;
	c->verify_backlog = 4096;
	c->queue_budget = 512u * 1024u * 1024u;
	c->max_sessions_per_node = 16;
	c->max_handshakes = 512;
	c->max_handshakes_per_address = 32;
	c->connect_rate = 20;
	c->connect_burst = 100;
	c->refusal_interval_ms = 60000;
	c->refusal_limit = 1000;
	c->refusal_penalty_ms = 10000;
}

void
config_clear(struct config *c)
{
	size_t i;
	char **slot;

	if (c == NULL)
		return;
	for (i = 0; i < NKEYS; i++) {
		if (config_keys[i].type == KEY_U32)
			continue;
		slot = key_str(c, &config_keys[i]);
		free(*slot);
		*slot = NULL;
	}
}

/* Deep copy src into dst (zeroed first). 0 or -1 with dst cleared. */
static int
config_copy(struct config *dst, const struct config *src)
{
	size_t i;
	const char *s;
	char **d;

	*dst = *src;
	for (i = 0; i < NKEYS; i++)
		if (config_keys[i].type != KEY_U32)
			*key_str(dst, &config_keys[i]) = NULL;
	for (i = 0; i < NKEYS; i++) {
		if (config_keys[i].type == KEY_U32)
			continue;
		s = key_cstr(src, &config_keys[i]);
		d = key_str(dst, &config_keys[i]);
		if (s != NULL && (*d = strdup(s)) == NULL) {
			config_clear(dst);
			return -1;
		}
	}
	return 0;
}

struct load_ctx {
	struct config	 c;
	const char	*basedir;
	unsigned int	 broker_seq;
	uint32_t	 seen;		/* bit i: config_keys[i] set */
};

static int
load_key(void *arg, const struct config_ini_key *k, char *err,
    size_t errlen)
{
	struct load_ctx *lc = arg;
	const struct key *key;
	char msg[256];
	size_t i;

	if (strcmp(k->section, "broker") != 0) {
		snprintf(err, errlen, "%s:%u: [%s]: unknown section (only "
		    "[broker] is read)", k->file, k->section_line, k->section);
		return -1;
	}
	if (lc->broker_seq == 0)
		lc->broker_seq = k->section_seq;
	else if (lc->broker_seq != k->section_seq) {
		snprintf(err, errlen, "%s:%u: [broker]: duplicate section",
		    k->file, k->section_line);
		return -1;
	}
	if ((key = key_find(k->key)) == NULL) {
		snprintf(err, errlen, "%s:%u: %s: unknown key", k->file,
		    k->line, k->key);
		return -1;
	}
	i = (size_t)(key - config_keys);
	/* A second value would silently win over the first. */
	if (lc->seen & (1u << i)) {
		snprintf(err, errlen, "%s:%u: %s: duplicate key", k->file,
		    k->line, k->key);
		return -1;
	}
	lc->seen |= 1u << i;
	if (set_value(&lc->c, key, k->value, lc->basedir, msg,
	    sizeof(msg)) == -1) {
		snprintf(err, errlen, "%s:%u: %s: %s", k->file, k->line,
		    k->key, msg);
		return -1;
	}
	return 0;
}

int
config_load(struct config *c, const char *path, char *err, size_t errlen)
{
	struct load_ctx lc;
	char *buf = NULL, *dir = NULL, *slash;
	size_t len;
	int ret = -1;

	memset(&lc, 0, sizeof(lc));
	if (config_copy(&lc.c, c) == -1) {
		snprintf(err, errlen, "%s: out of memory", path);
		goto out;
	}
	if ((slash = strrchr(path, '/')) != NULL) {
		if ((dir = strdup(path)) == NULL) {
			snprintf(err, errlen, "%s: out of memory", path);
			goto out;
		}
		/* "/broker.ini" lives in "/". */
		dir[slash == path ? 1 : (size_t)(slash - path)] = '\0';
		lc.basedir = dir;
	}
	if (config_read_file(path, CONFIG_MAX_FILE, &buf, &len, err,
	    errlen) == -1)
		goto out;
	if (config_ini_parse(path, buf, len, load_key, &lc, err,
	    errlen) == -1)
		goto out;
	config_clear(c);
	*c = lc.c;
	memset(&lc.c, 0, sizeof(lc.c));
	ret = 0;
 out:
	config_clear(&lc.c);
	free(dir);
	free(buf);
	return ret;
}

int
config_set(struct config *c, const char *key, const char *value, char *err,
    size_t errlen)
{
	const struct key *k;
	char msg[256];

	if ((k = key_find(key)) == NULL) {
		snprintf(err, errlen, "%s: unknown key", key);
		return -1;
	}
	if (set_value(c, k, value, NULL, msg, sizeof(msg)) == -1) {
		snprintf(err, errlen, "%s: %s", key, msg);
		return -1;
	}
	return 0;
}

int
config_check(const struct config *c, char *err, size_t errlen)
{
	static const char *const required[] = {
		"listen", "ca", "cert", "key", "crl", "policy", "audit_dir",
		"log_level"
	};
	const struct key *k;
	uint32_t v;
	size_t i;

	for (i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
		k = key_find(required[i]);
		if (key_cstr(c, k) == NULL) {
			snprintf(err, errlen, "%s: not set", k->name);
			return -1;
		}
	}
	/* config_set and config_load check ranges; a caller may not have. */
	for (i = 0; i < NKEYS; i++) {
		k = &config_keys[i];
		if (k->type != KEY_U32)
			continue;
		v = key_cu32(c, k);
		if (v < k->min || v > k->max) {
			snprintf(err, errlen, "%s: %u is outside %u..%u",
			    k->name, v, k->min, k->max);
			return -1;
		}
	}
	/* A live peer pings every interval; allow two to be lost. */
	if ((uint64_t)c->idle_timeout_ms < 3 * (uint64_t)c->ping_interval_ms) {
		snprintf(err, errlen, "idle_timeout_ms: %u is under 3 x "
		    "ping_interval_ms (%u)", c->idle_timeout_ms,
		    c->ping_interval_ms);
		return -1;
	}
	/* Otherwise one full-size frame would overflow a session's queue. */
	if (c->outbound_queue < c->max_frame) {
		snprintf(err, errlen, "outbound_queue: %u is under max_frame "
		    "(%u)", c->outbound_queue, c->max_frame);
		return -1;
	}
	/* The budget is shared: one session's full queue must fit in it. */
	if (c->queue_budget < c->outbound_queue) {
		snprintf(err, errlen, "queue_budget: %u is under outbound_queue "
		    "(%u)", c->queue_budget, c->outbound_queue);
		return -1;
	}
	if (c->max_handshakes_per_address > c->max_handshakes) {
		snprintf(err, errlen, "max_handshakes_per_address: %u is over "
		    "max_handshakes (%u)", c->max_handshakes_per_address,
		    c->max_handshakes);
		return -1;
	}
	return 0;
}
