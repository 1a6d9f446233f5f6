/*
 * console_auth.c: officers' sessions, CSRF tokens and sign-in lock-out
 * for cpx-console (see console_auth.h). Owns the session table and the
 * failure table; nothing here touches the disk.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "console_auth.h"

int
auth_init(struct auth *a, int64_t idle_ms, unsigned int max_fails,
    int64_t lock_ms)
{
	memset(a, 0, sizeof(*a));
	a->idle_ms = idle_ms;
	a->max_fails = max_fails;
	a->lock_ms = lock_ms;
	if (pthread_mutex_init(&a->mu, NULL) != 0)
		return -1;
	return 0;
}

void
auth_destroy(struct auth *a)
{
	OPENSSL_cleanse(a->sessions, sizeof(a->sessions));
	pthread_mutex_destroy(&a->mu);
}

static struct auth_fail *
fail_find(struct auth *a, const char *name, int create, int64_t now)
{
	struct auth_fail *f, *oldest = NULL;
	size_t i;

	for (i = 0; i < AUTH_MAX_FAILS; i++) {
		f = &a->fails[i];
		if (f->name[0] != '\0' && strcmp(f->name, name) == 0)
			return f;
	}
	if (!create)
		return NULL;
	/*
	 * A free slot, else the entry idle longest that is not locked now
	 * (guessing many names must not unlock the one under attack),
	 * else the oldest.
	 */
	for (i = 0; i < AUTH_MAX_FAILS; i++) {
		f = &a->fails[i];
		if (f->name[0] == '\0')
			break;
		if (f->locked_until > now)
			continue;
		if (oldest == NULL || f->last_ms < oldest->last_ms)
			oldest = f;
	}
	if (i == AUTH_MAX_FAILS) {
		if (oldest == NULL)
			oldest = &a->fails[0];
		f = oldest;
	}
	memset(f, 0, sizeof(*f));
	snprintf(f->name, sizeof(f->name), "%s", name);
	return f;
}

int
auth_locked(struct auth *a, const char *name, int64_t now, int64_t *left_ms)
{
	struct auth_fail *f;
	int ret = 0;

	*left_ms = 0;
	pthread_mutex_lock(&a->mu);
	if ((f = fail_find(a, name, 0, now)) != NULL && f->locked_until > now) {
		*left_ms = f->locked_until - now;
		ret = -1;
	}
	pthread_mutex_unlock(&a->mu);
	return ret;
}

int
auth_failed(struct auth *a, const char *name, int64_t now)
{
	struct auth_fail *f;
	int locked = 0;

	pthread_mutex_lock(&a->mu);
	f = fail_find(a, name, 1, now);
	if (f->locked_until != 0 && f->locked_until <= now) {
		/* The lock-out has run out: count afresh. */
		f->fails = 0;
		f->locked_until = 0;
	}
	f->fails++;
	f->last_ms = now;
	if (f->fails >= a->max_fails && f->locked_until == 0) {
		f->locked_until = now + a->lock_ms;
		locked = 1;
	}
	pthread_mutex_unlock(&a->mu);
	return locked;
}

void
auth_succeeded(struct auth *a, const char *name)
{
	struct auth_fail *f;

	pthread_mutex_lock(&a->mu);
	if ((f = fail_find(a, name, 0, 0)) != NULL)
		memset(f, 0, sizeof(*f));
	pthread_mutex_unlock(&a->mu);
}

static int
random_hex(char *out)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char b[AUTH_TOKEN_LEN / 2];
	size_t i;

	if (RAND_bytes(b, sizeof(b)) != 1)
		return -1;
	for (i = 0; i < sizeof(b); i++) {
		out[2 * i] = hex[b[i] >> 4];
		out[2 * i + 1] = hex[b[i] & 15];
	}
	out[AUTH_TOKEN_LEN] = '\0';
	OPENSSL_cleanse(b, sizeof(b));
	return 0;
}

int
auth_session_new(struct auth *a, const char *name, int64_t now, char *token,
    char *csrf)
{
	struct auth_session *s = NULL;
	size_t i;
	int ret = -1;

	token[0] = csrf[0] = '\0';
	pthread_mutex_lock(&a->mu);
	for (i = 0; i < AUTH_MAX_SESSIONS; i++) {
		if (!a->sessions[i].used) {
			s = &a->sessions[i];
			break;
		}
		if (s == NULL || a->sessions[i].last_ms < s->last_ms)
			s = &a->sessions[i];
	}
	OPENSSL_cleanse(s, sizeof(*s));
	if (random_hex(s->token) == -1 || random_hex(s->csrf) == -1) {
		OPENSSL_cleanse(s, sizeof(*s));
		goto done;
	}
	s->used = 1;
	snprintf(s->name, sizeof(s->name), "%s", name);
	s->created_ms = s->last_ms = now;
	memcpy(token, s->token, AUTH_TOKEN_LEN + 1);
	memcpy(csrf, s->csrf, AUTH_TOKEN_LEN + 1);
	ret = 0;
done:
	pthread_mutex_unlock(&a->mu);
	return ret;
}

/* 1 if a and b (NUL-terminated) are equal; time depends on lengths only. */
static int
token_eq(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);

	return la == lb && la == AUTH_TOKEN_LEN &&
	    CRYPTO_memcmp(a, b, la) == 0;
}

int
auth_session_find(struct auth *a, const char *token, int64_t now, char *name,
    char *csrf)
{
	struct auth_session *s;
	size_t i;
	int ret = -1;

	name[0] = csrf[0] = '\0';
	if (token == NULL || strlen(token) != AUTH_TOKEN_LEN)
		return -1;
	pthread_mutex_lock(&a->mu);
	for (i = 0; i < AUTH_MAX_SESSIONS; i++) {
		s = &a->sessions[i];
		if (!s->used || !token_eq(s->token, token))
			continue;
		if (now - s->last_ms > a->idle_ms ||
		    now - s->created_ms > AUTH_MAX_AGE_MS) {
			OPENSSL_cleanse(s, sizeof(*s));
			break;
		}
		s->last_ms = now;
		memcpy(name, s->name, sizeof(s->name));
		memcpy(csrf, s->csrf, AUTH_TOKEN_LEN + 1);
		ret = 0;
		break;
	}
	pthread_mutex_unlock(&a->mu);
	return ret;
}

int
auth_session_alive(struct auth *a, const char *token, int64_t now)
{
	struct auth_session *s;
	size_t i;
	int alive = 0;

	if (token == NULL || strlen(token) != AUTH_TOKEN_LEN)
		return 0;
	pthread_mutex_lock(&a->mu);
	for (i = 0; i < AUTH_MAX_SESSIONS; i++) {
		s = &a->sessions[i];
		if (s->used && token_eq(s->token, token))
			alive = now - s->last_ms <= a->idle_ms &&
			    now - s->created_ms <= AUTH_MAX_AGE_MS;
	}
	pthread_mutex_unlock(&a->mu);
	return alive;
}

void
auth_session_end(struct auth *a, const char *token)
{
	size_t i;

	if (token == NULL)
		return;
	pthread_mutex_lock(&a->mu);
	for (i = 0; i < AUTH_MAX_SESSIONS; i++)
		if (a->sessions[i].used &&
		    token_eq(a->sessions[i].token, token))
			OPENSSL_cleanse(&a->sessions[i],
			    sizeof(a->sessions[i]));
	pthread_mutex_unlock(&a->mu);
}

int
auth_csrf_ok(const char *csrf, const char *given)
{
	if (csrf == NULL || given == NULL)
		return 0;
	return token_eq(csrf, given);
}
