/*
 * config.c: the broker's configuration. Owns the defaults of every
 * protective limit, the keys of the [broker] section, command-line
 * overrides (config_set) and the coherence check run before start-up.
 * Reading the INI text itself (line numbers, whole section names) is
 * inifile.c's.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config.h"
#include "cpx_limits.h"
#include "errfmt.h"
#include "inifile.h"
#include "log.h"

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
	STR(store),
	STR(store_dsn),
	PATH(store_passfile),
	STR(user),
	STR(log_level),
	STR(log_format),
	STR(metrics_listen),
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
/* load_ctx.seen has one bit per key. */
_Static_assert(NKEYS <= 64, "more [broker] keys than load_ctx.seen holds");

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
	if (*v == '\0' || *p != '\0')
		return errf(msg, msglen, "\"%s\" is not a decimal number", v);
	errno = 0;
	n = strtoull(v, &end, 10);
	if (errno == ERANGE || n > k->max)
		return errf(msg, msglen, "%s is over the limit %u", v, k->max);
	if (*end != '\0')
		return errf(msg, msglen, "\"%s\" is not a decimal number", v);
	if (n < k->min)
		return errf(msg, msglen, "%s is under the minimum %u", v,
		    k->min);
	*out = (uint32_t)n;
	return 0;
}

/* auto and journal (notify.c) or a format of lib/log.h. */
static int
log_format_valid(const char *s)
{
	enum log_format f;

	return strcmp(s, "auto") == 0 || strcmp(s, "journal") == 0 ||
	    log_format_parse(s, &f) == 0;
}

/* "off", "A.B.C.D:PORT" or "[V6]:PORT", numeric only (no DNS at start). */
static int
listen_valid(const char *s)
{
	char host[INET6_ADDRSTRLEN], buf[sizeof(struct in6_addr)];
	const char *colon, *h = s;
	size_t n;

	if (strcmp(s, "off") == 0)
		return 1;
	if (s[0] == '[') {
		if ((colon = strchr(s, ']')) == NULL || colon[1] != ':')
			return 0;
		h = s + 1;
		n = (size_t)(colon - h);
		colon++;
	} else {
		if ((colon = strchr(s, ':')) == NULL)
			return 0;
		n = (size_t)(colon - s);
	}
	if (n == 0 || n >= sizeof(host) || colon[1] == '\0' ||
	    strlen(colon + 1) > 5 ||
	    strspn(colon + 1, "0123456789") != strlen(colon + 1) ||
	    atoi(colon + 1) > 65535)
		return 0;
	memcpy(host, h, n);
	host[n] = '\0';
	return inet_pton(s[0] == '[' ? AF_INET6 : AF_INET, host, buf) == 1;
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
	uint32_t n = 0;

	if (k->type == KEY_U32) {
		if (parse_u32(k, v, &n, msg, msglen) == -1)
			return -1;
		*key_u32(c, k) = n;
		return 0;
	}
	if (*v == '\0')
		return errf(msg, msglen, "empty value");
	/* Control bytes in a path or address would end up in the logs. */
	for (p = v; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return errf(msg, msglen, "control character in value");
	if (strcmp(k->name, "listen") == 0 &&
	    strncmp(v, "tcp://", 6) != 0)
		return errf(msg, msglen, "\"%s\" is not a tcp:// endpoint", v);
	if (strcmp(k->name, "log_level") == 0 &&
	    log_level_parse(v, &lvl) == -1)
		return errf(msg, msglen, "\"%s\" is not one of error, warn, "
		    "info, debug", v);
	if (strcmp(k->name, "log_format") == 0 && !log_format_valid(v))
		return errf(msg, msglen, "\"%s\" is not one of auto, text, "
		    "json, prefix, syslog, journal", v);
	if (strcmp(k->name, "metrics_listen") == 0 && !listen_valid(v))
		return errf(msg, msglen, "\"%s\" is not off, IPv4:PORT or "
		    "[IPv6]:PORT", v);
	if (strcmp(k->name, "store") == 0 && strcmp(v, "file") != 0 &&
	    strcmp(v, "postgresql") != 0)
		return errf(msg, msglen, "\"%s\" is not file or postgresql",
		    v);
	if (strcmp(k->name, "user") == 0 && !user_valid(v))
		return errf(msg, msglen, "\"%s\" is not a valid user name", v);
	if (k->type != KEY_PATH || v[0] == '/')
		basedir = NULL;
	blen = basedir != NULL ? strlen(basedir) + 1 : 0;
	len = blen + strlen(v);
	if (k->type == KEY_PATH && len >= PATH_MAX)
		return errf(msg, msglen, "path longer than %d bytes",
		    PATH_MAX - 1);
	if ((copy = malloc(len + 1)) == NULL)
		return errf(msg, msglen, "out of memory");
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
	    (c->log_level = strdup("info")) == NULL ||
	    (c->log_format = strdup("auto")) == NULL ||
	    (c->metrics_listen = strdup("127.0.0.1:9464")) == NULL)
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
	uint64_t	 seen;		/* bit i: config_keys[i] set */
};

static int
load_key(void *arg, const struct inifile_key *k, char *err, size_t errlen)
{
	struct load_ctx *lc = arg;
	const struct key *key;
	char msg[256];
	size_t i;

	if (strcmp(k->section, "broker") != 0)
		return errf(err, errlen, "%s:%u: [%s]: unknown section (only "
		    "[broker] is read)", k->file, k->section_line, k->section);
	if (lc->broker_seq == 0)
		lc->broker_seq = k->section_seq;
	else if (lc->broker_seq != k->section_seq)
		return errf(err, errlen, "%s:%u: [broker]: duplicate section",
		    k->file, k->section_line);
	if ((key = key_find(k->key)) == NULL)
		return errf(err, errlen, "%s:%u: %s: unknown key", k->file,
		    k->line, k->key);
	i = (size_t)(key - config_keys);
	/* A second value would silently win over the first. */
	if (lc->seen & (1ull << i))
		return errf(err, errlen, "%s:%u: %s: duplicate key", k->file,
		    k->line, k->key);
	lc->seen |= 1ull << i;
	if (set_value(&lc->c, key, k->value, lc->basedir, msg,
	    sizeof(msg)) == -1)
		return errf(err, errlen, "%s:%u: %s: %s", k->file, k->line,
		    k->key, msg);
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
		errf(err, errlen, "%s: out of memory", path);
		goto out;
	}
	if ((slash = strrchr(path, '/')) != NULL) {
		if ((dir = strdup(path)) == NULL) {
			errf(err, errlen, "%s: out of memory", path);
			goto out;
		}
		/* "/broker.ini" lives in "/". */
		dir[slash == path ? 1 : (size_t)(slash - path)] = '\0';
		lc.basedir = dir;
	}
	if (inifile_read(path, INIFILE_MAX_FILE, &buf, &len, err,
	    errlen) == -1)
		goto out;
	if (inifile_parse(path, buf, len, load_key, &lc, err, errlen) == -1)
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

	if ((k = key_find(key)) == NULL)
		return errf(err, errlen, "%s: unknown key", key);
	if (set_value(c, k, value, NULL, msg, sizeof(msg)) == -1)
		return errf(err, errlen, "%s: %s", key, msg);
	return 0;
}

int
config_check(const struct config *c, char *err, size_t errlen)
{
	static const char *const required[] = {
		"listen", "ca", "cert", "key", "crl", "policy", "log_level"
	};
	const struct key *k;
	uint32_t v;
	size_t i;

	for (i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
		k = key_find(required[i]);
		if (key_cstr(c, k) == NULL)
			return errf(err, errlen, "%s: not set", k->name);
	}
	/* The segment files need a directory, a database a DSN. */
	if (config_store_pg(c)) {
		if (c->store_dsn == NULL)
			return errf(err, errlen, "store_dsn: not set (store "
			    "= postgresql needs the database's connection "
			    "string, e.g. host=db1,db2 dbname=cpx user=cpx "
			    "target_session_attrs=read-write)");
	} else if (c->audit_dir == NULL)
		return errf(err, errlen, "audit_dir: not set");
	/* config_set and config_load check ranges; a caller may not have. */
	for (i = 0; i < NKEYS; i++) {
		k = &config_keys[i];
		if (k->type != KEY_U32)
			continue;
		v = key_cu32(c, k);
		if (v < k->min || v > k->max)
			return errf(err, errlen, "%s: %u is outside %u..%u",
			    k->name, v, k->min, k->max);
	}
	/* A live peer pings every interval; allow two to be lost. */
	if ((uint64_t)c->idle_timeout_ms < 3 * (uint64_t)c->ping_interval_ms)
		return errf(err, errlen, "idle_timeout_ms: %u is under 3 x "
		    "ping_interval_ms (%u)", c->idle_timeout_ms,
		    c->ping_interval_ms);
	/* Otherwise one full-size frame would overflow a session's queue. */
	if (c->outbound_queue < c->max_frame)
		return errf(err, errlen, "outbound_queue: %u is under "
		    "max_frame (%u)", c->outbound_queue, c->max_frame);
	/* The budget is shared: one session's full queue must fit in it. */
	if (c->queue_budget < c->outbound_queue)
		return errf(err, errlen, "queue_budget: %u is under "
		    "outbound_queue (%u)", c->queue_budget, c->outbound_queue);
	if (c->max_handshakes_per_address > c->max_handshakes)
		return errf(err, errlen, "max_handshakes_per_address: %u is "
		    "over max_handshakes (%u)", c->max_handshakes_per_address,
		    c->max_handshakes);
	return 0;
}

int
config_store_pg(const struct config *c)
{
	return c->store != NULL && strcmp(c->store, "postgresql") == 0;
}

int
config_store_env(const struct config *c, char *err, size_t errlen)
{
	struct stat st;

	if (c->store_passfile == NULL)
		return 0;
	if (stat(c->store_passfile, &st) == -1)
		return errf(err, errlen, "store_passfile: %s: %s",
		    c->store_passfile, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return errf(err, errlen, "store_passfile: %s: not a regular "
		    "file", c->store_passfile);
	/* A password others can read is a password others have. */
	if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0)
		return errf(err, errlen, "store_passfile: %s: mode %04o lets "
		    "group or others read it; chmod 600 it",
		    c->store_passfile, (unsigned int)(st.st_mode & 07777));
	if (setenv("PGPASSFILE", c->store_passfile, 1) == -1)
		return errf(err, errlen, "store_passfile: cannot set "
		    "PGPASSFILE: %s", strerror(errno));
	return 0;
}
