/*
 * config.h: the broker's configuration: file paths, listen address and
 * every protective limit, each with a safe default. Read from an INI file
 * ([broker] section, through inifile.c) and overridable by command-line
 * flags.
 */
#ifndef CPX_CONFIG_H
#define CPX_CONFIG_H

#include <stddef.h>
#include <stdint.h>

struct config {
	char	*listen;		/* listen = tcp://0.0.0.0:7443 */
	char	*ca;			/* ca = certs/ca.pem */
	char	*cert;			/* cert = broker certificate */
	char	*key;			/* key = broker key (0600) */
	char	*crl;			/* crl = certs/crl.pem */
	char	*policy;		/* policy = policy.ini */
	char	*audit_dir;		/* audit_dir = audit/ (store = file) */
	char	*store;			/* store = file | postgresql */
	char	*store_dsn;		/* libpq connection string */
	char	*store_passfile;	/* PGPASSFILE for libpq (0600) */
	char	*user;			/* user = drop root to this user */
	char	*log_level;		/* log_level = info */
	char	*log_format;		/* log_format = auto (journald
				   under systemd, else text) */
	char	*metrics_listen;	/* 127.0.0.1:9464, or off */
	uint32_t max_frame;		/* bytes, <= CPX_MAX_FRAME; 256 KiB */
	uint32_t max_sessions;		/* 2000 */
	uint32_t handshake_timeout_ms;	/* 10000 */
	uint32_t idle_timeout_ms;	/* 90000 (>= 3 x ping interval) */
	uint32_t ping_interval_ms;	/* 30000 */
	uint32_t publish_rate;		/* alerts/s per node, 0 = unlimited; 2000 */
	uint32_t publish_burst;		/* token bucket size; 4000 */
	uint32_t outbound_queue;	/* bytes queued per session; 8 MiB */
	uint32_t clock_skew_ms;		/* |issued_at - now| bound; 300000 */
	uint32_t checkpoint_interval_ms;/* signed checkpoint period; 60000 */
	uint32_t checkpoint_records;	/* or every N records; 10000 */
	uint32_t verify_threads;	/* signature threads, 0 = inline; 1 */
	uint32_t verify_backlog;	/* publishes at the verifiers; 4096 */
	uint32_t queue_budget;		/* bytes queued, all sessions; 512 MiB */
	uint32_t max_sessions_per_node;	/* sessions of one certificate; 16 */
	uint32_t max_handshakes;	/* unauthenticated at once; 512 */
	uint32_t max_handshakes_per_address; /* per source address; 32 */
	uint32_t connect_rate;		/* connections/s per address; 20 */
	uint32_t connect_burst;		/* token bucket size; 100 */
	uint32_t refusal_interval_ms;	/* refusal summary period; 60000 */
	uint32_t refusal_limit;		/* refusals a node may cause per
					   interval before it is cut; 1000 */
	uint32_t refusal_penalty_ms;	/* first time out after that; 10000 */
	int	 accept_log_without_mark; /* --accept-log-without-mark: a
					   flag only, never a file key */
};

/*
 * Fill c with the defaults: listen and log_level set, paths and user NULL.
 * Start-up only: calls fatal if memory runs out.
 */
void	config_defaults(struct config *c);

/*
 * Read the [broker] section of an INI file into c (over the defaults).
 * Unknown keys and out-of-range values are errors. Returns 0 or -1 with
 * err[] naming the file, line and key.
 */
int	config_load(struct config *c, const char *path, char *err,
	    size_t errlen) __attribute__((warn_unused_result));

/*
 * Set one key from a string, as in the file (used for --set key=value
 * flags). Returns 0 or -1 with err[].
 */
int	config_set(struct config *c, const char *key, const char *value,
	    char *err, size_t errlen) __attribute__((warn_unused_result));

/* Check required paths are set and limits coherent. 0 or -1 with err[]. */
int	config_check(const struct config *c, char *err, size_t errlen)
	    __attribute__((warn_unused_result));

/* 1 if c names the PostgreSQL store (store = postgresql). */
int	config_store_pg(const struct config *c);

/*
 * Check store_passfile (exists, a regular file, not readable by group or
 * others) and export it as PGPASSFILE for libpq. 0 (also without one) or
 * -1 with err[] naming the file and its mode.
 */
int	config_store_env(const struct config *c, char *err, size_t errlen)
	    __attribute__((warn_unused_result));

/* Free the strings inside c (not c itself). */
void	config_clear(struct config *c);

#endif
