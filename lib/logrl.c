/*
 * logrl.c: the log rate limiter (logrl.h). Owns a small table of the
 * lines seen recently, keyed by call site and key, each with its first
 * message, the start of its interval and the repeats counted since.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "logrl.h"

#define LOGRL_KEY_MAX	512
#define LOGRL_MSG_MAX	512

struct logrl_entry {
	char		 site[64];
	char		 key[LOGRL_KEY_MAX];
	char		 msg[LOGRL_MSG_MAX];
	enum log_level	 level;
	int64_t		 since_ms;	/* start of this interval */
	int64_t		 seen_ms;	/* last occurrence */
	uint64_t	 count;		/* repeats not written */
	int		 used;
};

struct logrl {
	int64_t			 interval_ms;
	size_t			 n;
	struct logrl_entry	*e;
};

struct logrl *
logrl_new(int64_t interval_ms, size_t max_keys)
{
	struct logrl *rl;

	if (max_keys == 0 || (rl = calloc(1, sizeof(*rl))) == NULL)
		return NULL;
	if ((rl->e = calloc(max_keys, sizeof(*rl->e))) == NULL) {
		free(rl);
		return NULL;
	}
	rl->interval_ms = interval_ms;
	rl->n = max_keys;
	return rl;
}

/* "82938" as "82,938": an operator reads the size at a glance. */
static void
group_digits(uint64_t v, char *buf, size_t len)
{
	char raw[24];
	size_t n, i, o = 0;

	n = (size_t)snprintf(raw, sizeof(raw), "%" PRIu64, v);
	for (i = 0; i < n && o + 2 < len; i++) {
		if (i > 0 && (n - i) % 3 == 0)
			buf[o++] = ',';
		buf[o++] = raw[i];
	}
	buf[o] = '\0';
}

static void
summarise(struct logrl_entry *x, int64_t now_ms)
{
	char count[32];
	int64_t secs;

	if (x->count == 0)
		return;
	group_digits(x->count, count, sizeof(count));
	secs = (now_ms - x->since_ms + 999) / 1000;
	log_emit(x->level, NULL, "%s (repeated %s time%s in %lld s)", x->msg,
	    count, x->count == 1 ? "" : "s", (long long)(secs > 0 ? secs : 1));
	x->count = 0;
}

void
logrl_free(struct logrl **rl)
{
	size_t i;

	if (rl == NULL || *rl == NULL)
		return;
	for (i = 0; i < (*rl)->n; i++)
		if ((*rl)->e[i].used)
			summarise(&(*rl)->e[i], (*rl)->e[i].seen_ms);
	free((*rl)->e);
	free(*rl);
	*rl = NULL;
}

/* Copy, cut to fit: a longer key is compared on what fits. */
static void
copy_cut(char *dst, size_t len, const char *src)
{
	size_t n = strnlen(src, len - 1);

	memcpy(dst, src, n);
	dst[n] = '\0';
}

static struct logrl_entry *
find(struct logrl *rl, const char *site, const char *key)
{
	struct logrl_entry *x;
	size_t i;

	for (i = 0; i < rl->n; i++) {
		x = &rl->e[i];
		if (x->used &&
		    strncmp(x->site, site, sizeof(x->site) - 1) == 0 &&
		    strncmp(x->key, key, sizeof(x->key) - 1) == 0)
			return x;
	}
	return NULL;
}

/* A free slot, or the least recently seen one, summarised first. */
static struct logrl_entry *
slot(struct logrl *rl, int64_t now_ms)
{
	struct logrl_entry *old = NULL;
	size_t i;

	for (i = 0; i < rl->n; i++) {
		if (!rl->e[i].used)
			return &rl->e[i];
		if (old == NULL || rl->e[i].seen_ms < old->seen_ms)
			old = &rl->e[i];
	}
	summarise(old, now_ms);
	old->used = 0;
	return old;
}

int
logrl_log(struct logrl *rl, int64_t now_ms, enum log_level level,
    const struct log_fields *f, const char *site, const char *key,
    const char *fmt, ...)
{
	struct logrl_entry *x;
	char msg[LOGRL_MSG_MAX];
	va_list ap;

	if (level > log_get_level())
		return 0;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (key == NULL)
		key = msg;
	if (rl != NULL && (x = find(rl, site, key)) != NULL) {
		x->seen_ms = now_ms;
		if (now_ms - x->since_ms < rl->interval_ms) {
			x->count++;
			return 0;
		}
		/* A new interval: the summary, then this line in full. */
		summarise(x, now_ms);
		x->since_ms = now_ms;
		log_emit(level, f, "%s", msg);
		return 1;
	}
	if (rl != NULL) {
		x = slot(rl, now_ms);
		memset(x, 0, sizeof(*x));
		x->used = 1;
		copy_cut(x->site, sizeof(x->site), site);
		copy_cut(x->key, sizeof(x->key), key);
		copy_cut(x->msg, sizeof(x->msg), msg);
		x->level = level;
		x->since_ms = x->seen_ms = now_ms;
	}
	log_emit(level, f, "%s", msg);
	return 1;
}

void
logrl_tick(struct logrl *rl, int64_t now_ms)
{
	struct logrl_entry *x;
	size_t i;

	if (rl == NULL)
		return;
	for (i = 0; i < rl->n; i++) {
		x = &rl->e[i];
		if (!x->used || now_ms - x->since_ms < rl->interval_ms)
			continue;
		if (x->count == 0) {
			x->used = 0;	/* quiet for a whole interval */
			continue;
		}
		summarise(x, now_ms);
		x->since_ms = now_ms;
	}
}

uint64_t
logrl_end(struct logrl *rl, int64_t now_ms, const char *site,
    const char *key)
{
	struct logrl_entry *x;
	uint64_t n = 0;
	size_t i;

	if (rl == NULL)
		return 0;
	for (i = 0; i < rl->n; i++) {
		x = &rl->e[i];
		if (!x->used ||
		    strncmp(x->site, site, sizeof(x->site) - 1) != 0 ||
		    (key != NULL &&
		    strncmp(x->key, key, sizeof(x->key) - 1) != 0))
			continue;
		n += x->count;
		summarise(x, now_ms);
		x->used = 0;
	}
	return n;
}
