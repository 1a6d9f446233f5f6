/*
 * testbroker.h: runs a real cpx-broker process for integration tests: a
 * fresh directory with config, policy and audit log, the shared test PKI,
 * a free port on 127.0.0.1, and waiting by polling (never sleeping).
 * Also builds client connections and alerts for the tests.
 */
#ifndef CPX_TESTBROKER_H
#define CPX_TESTBROKER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cpx_client.h"

struct testbroker {
	pid_t	pid;
	int	port;
	char	dir[256];
	char	endpoint[64];
	char	conf[300];
	char	log[300];
	char	audit[300];
	char	policy[300];
};

/*
 * Start a broker. extra: more "key = value" lines for [broker] (or NULL);
 * policy: policy file text (NULL: broker/policy.example.ini). Returns 0
 * when the broker accepts TCP connections, -1 otherwise (its log is
 * printed).
 */
int	testbroker_start(struct testbroker *tb, const char *extra,
	    const char *policy) __attribute__((warn_unused_result));
/*
 * Stop (SIGTERM; -1 unless it exits with status 0) and start again on the
 * same directory, port and audit log.
 */
int	testbroker_restart(struct testbroker *tb)
	    __attribute__((warn_unused_result));
/* Send sig and reap the process (SIGKILL after 10 s). Returns exit status
 * as from waitpid, or -1. */
int	testbroker_stop(struct testbroker *tb, int sig);
/*
 * Stop (SIGTERM) and keep the directory: 0 if the broker exited with
 * status 0, else -1 with its log printed (drain failed, crash, leak).
 */
int	testbroker_stop_clean(struct testbroker *tb)
	    __attribute__((warn_unused_result));
/*
 * Stop (SIGTERM) and remove the directory. Returns -1 (after printing the
 * broker log) if the broker did not exit with status 0: a failed drain,
 * a crash, or a leak reported by LeakSanitizer in the sanitizer build.
 */
int	testbroker_cleanup(struct testbroker *tb)
	    __attribute__((warn_unused_result));
/*
 * After a test, whatever became of it: kill -9 the broker if it runs,
 * remove its directory (unless CPX_KEEP_TEST_DIRS is set) and clear tb.
 * Safe on a tb never started.
 */
void	testbroker_discard(struct testbroker *tb);
/* Wait until the broker log contains needle; 1 if it did, else 0. */
int	testbroker_wait_log(struct testbroker *tb, const char *needle,
	    int timeout_ms);
/* Count occurrences of needle in the broker log. */
int	testbroker_log_count(struct testbroker *tb, const char *needle);

/*
 * A client for PKI node `node` (e.g. "si-ncp", or "other/rogue-si" for a
 * path relative to the PKI dir without extension). Not yet connected.
 */
struct cpx_client *testbroker_client(struct testbroker *tb, const char *node,
	    int reconnect, char *err, size_t errlen);
/* testbroker_client + cpx_client_connect (10 s); NULL with err[]. */
struct cpx_client *testbroker_connect(struct testbroker *tb, const char *node,
	    int reconnect, char *err, size_t errlen);

/* An alert with static storage for its arrays, ready to publish. */
struct testalert {
	Cpx__Alert	 alert;
	char		*recipients[16];
	char		 rbuf[16][33];
	char		 id[65];
	char		 summary[256];
};

/*
 * Fill ta. recipients: blank-separated countries/regions, or "" for none.
 * id may be NULL (the client picks a UUID).
 */
void	testalert_init(struct testalert *ta, const char *id, int category,
	    int severity, int handling, const char *recipients,
	    const char *summary);

/* A filter with static storage. origins/regions: blank-separated or "". */
struct testfilter {
	Cpx__Filter	 f;
	char		*origins[16];
	char		 obuf[16][3];
	char		*regions[8];
	char		 rbuf[8][33];
	Cpx__Category	 cats[8];
};

void	testfilter_init(struct testfilter *tf, const char *origins,
	    const char *regions, const Cpx__Category *cats, size_t ncats,
	    int min_severity);

/* Milliseconds, monotonic: clock_mono_ms(), kept as the tests' name. */
int64_t	testutil_now_ms(void);
/* 1 if a TCP connect to 127.0.0.1:port succeeds now, else 0. */
int	testutil_tcp_connects(int port);

#endif
