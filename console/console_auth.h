/*
 * console_auth.h: officers' sessions in cpx-console: the session and
 * CSRF tokens, idle logout, and the lock-out after repeated failed
 * sign-ins. All in memory, bounded (AUTH_MAX_SESSIONS sessions,
 * AUTH_MAX_FAILS names tracked), behind one mutex: the HTTP threads call
 * it. Times are passed in (monotonic ms) so tests can move the clock.
 */
#ifndef CPX_CONSOLE_AUTH_H
#define CPX_CONSOLE_AUTH_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "console_users.h"

#define AUTH_MAX_SESSIONS	64
#define AUTH_MAX_FAILS		256
#define AUTH_TOKEN_LEN		64	/* hex of 32 random bytes */
/* A session ends after 12 hours, active or not. */
#define AUTH_MAX_AGE_MS		(12LL * 3600 * 1000)

struct auth_session {
	int	 used;
	char	 token[AUTH_TOKEN_LEN + 1];
	char	 csrf[AUTH_TOKEN_LEN + 1];
	char	 name[USERS_MAX_NAME + 1];
	int64_t	 created_ms;
	int64_t	 last_ms;
};

struct auth_fail {
	char	 name[USERS_MAX_NAME + 1];
	unsigned int fails;		/* consecutive */
	int64_t	 locked_until;		/* 0: not locked */
	int64_t	 last_ms;
};

struct auth {
	pthread_mutex_t		mu;
	struct auth_session	sessions[AUTH_MAX_SESSIONS];
	struct auth_fail	fails[AUTH_MAX_FAILS];
	int64_t			idle_ms;	/* idle logout */
	unsigned int		max_fails;	/* before a lock-out */
	int64_t			lock_ms;	/* how long it lasts */
};

/* Initialise a with these limits. 0, or -1 if the mutex cannot be made. */
int	auth_init(struct auth *a, int64_t idle_ms, unsigned int max_fails,
	    int64_t lock_ms) __attribute__((warn_unused_result));
/* Wipe every token and destroy the mutex. */
void	auth_destroy(struct auth *a);

/*
 * Whether name may try to sign in now: 0 if so, -1 if it is locked out,
 * with the milliseconds left in *left_ms.
 */
int	auth_locked(struct auth *a, const char *name, int64_t now,
	    int64_t *left_ms) __attribute__((warn_unused_result));
/*
 * Record a failed sign-in for name (known or not: the lock-out must not
 * tell which names exist). Returns 1 if this failure locked it, else 0.
 */
int	auth_failed(struct auth *a, const char *name, int64_t now);
/* A successful sign-in clears name's failures. */
void	auth_succeeded(struct auth *a, const char *name);

/*
 * Open a session for name: fresh random session and CSRF tokens copied
 * to token[] and csrf[] (AUTH_TOKEN_LEN + 1 each). When the table is
 * full the least recently used session is ended. 0, or -1 (no random
 * bytes).
 */
int	auth_session_new(struct auth *a, const char *name, int64_t now,
	    char *token, char *csrf) __attribute__((warn_unused_result));
/*
 * Find the live session of token (compared in constant time), touch it,
 * and copy its name and CSRF token out. A session idle longer than
 * idle_ms, or older than AUTH_MAX_AGE_MS, is ended here. 0, or -1.
 */
int	auth_session_find(struct auth *a, const char *token, int64_t now,
	    char *name, char *csrf) __attribute__((warn_unused_result));
/*
 * 1 if token is a live session, without touching it: for the live feed,
 * which must not keep an idle officer signed in. Else 0.
 */
int	auth_session_alive(struct auth *a, const char *token, int64_t now);
/* End the session of token, if any. */
void	auth_session_end(struct auth *a, const char *token);
/* 1 if given equals the session's csrf (constant time), else 0. */
int	auth_csrf_ok(const char *csrf, const char *given);

#endif
