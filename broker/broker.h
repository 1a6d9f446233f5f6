/*
 * broker.h: the broker's context and event loop. main() fills a config,
 * calls broker_init() (which fails fast on any start-up problem) and
 * broker_run() until a stop flag is raised.
 */
#ifndef CPX_BROKER_H
#define CPX_BROKER_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "audit.h"
#include "config.h"
#include "dedup.h"
#include "edge.h"
#include "policy.h"
#include "sign.h"

struct batch;
struct tail;
struct verifier;
struct ratelimit;
struct refusals;
struct metrics;
struct logrl;
struct witness;

struct broker_stats {
	uint64_t	accepted;
	uint64_t	duplicates;
	uint64_t	refused;
	uint64_t	deliveries;
	uint64_t	sessions;
	uint64_t	commits;
};

struct broker {
	struct config		*cfg;		/* borrowed from main */
	void			*zctx;
	SSL_CTX			*ssl_ctx;
	struct trust		*trust;
	struct policy		*policy;
	struct audit		*audit;
	EVP_PKEY		*key;		/* checkpoints */
	X509			*cert;
	char			 name[CPX_MAX_NODE_NAME + 1];
	char			 store_desc[300];	/* for log lines */
	struct edge		*edge;
	struct dedup		*dedup;
	struct verifier		*verifier;	/* NULL: verify inline */
	struct ratelimit	*ratelimit;	/* per-node publish rate */
	struct refusals		*refusals;	/* counted, summarised */
	struct metrics		*metrics;	/* counters, /metrics */
	struct logrl		*logrl;		/* repeated log lines */
	int64_t			 last_status_ms;	/* sd_notify STATUS */
	struct witness		*witness;	/* witness.c */
	struct batch		*batch;		/* publishes being committed */
	struct tail		*tail;		/* records read from the log */
	uint64_t		 delivered;	/* highest seq routed (tail.c) */
	unsigned int		 verified_here;	/* this turn (publish.c) */
	uint64_t		 since_checkpoint;
	int64_t			 last_checkpoint_ms;
	struct broker_stats	 stats;
	struct broker_stats	 stats_logged;	/* at the last stats line */
	int64_t			 last_stats_ms;
	volatile sig_atomic_t	*stop;		/* set by SIGTERM/SIGINT */
	volatile sig_atomic_t	*reload;	/* set by SIGHUP */
};

/*
 * Load keys, CA, CRL, policy, open and recover the audit log, rebuild the
 * duplicate index and listen. Returns 0 or -1 with err[] naming the file
 * or config key at fault (main turns it into a fatal start-up error).
 */
int	broker_init(struct broker *b, struct config *cfg, char *err,
	    size_t errlen) __attribute__((warn_unused_result));

/* Serve until *b->stop is set; then drain and return 0 (-1 on failure). */
int	broker_run(struct broker *b) __attribute__((warn_unused_result));

/* Close everything (checkpoint written by audit_close). */
void	broker_free(struct broker *b);

/*
 * Re-read the CRL and the policy (SIGHUP). Sessions whose certificate is
 * now revoked are closed at once; on error the old ones stay in force.
 */
void	broker_reload(struct broker *b);

#endif
