/*
 * cli.h: the parts of the command-line client cpx (client/cpx_main.c)
 * kept in their own files: options every command shares (broker, PKI
 * files, -v), connecting, subscription filters from flags, argument
 * parsers, the state file, and the commands themselves. CLI-only: the
 * library proper is cpx_client.h.
 */
#ifndef CPX_CLI_H
#define CPX_CLI_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "cpx_client.h"
#include "cpx_limits.h"

/* Exit codes of every command (documented in `cpx --help`). */
#define CLI_EXIT_OK		0
#define CLI_EXIT_REFUSED	1	/* the broker refused the request */
#define CLI_EXIT_USAGE		2	/* bad flag, argument or alert input,
					   or a set-up error: endpoint, key,
					   certificate or CRL unusable */
#define CLI_EXIT_CONNECT	3	/* no session: unreachable, or the
					   connection was lost */
#define CLI_EXIT_LOCAL		4	/* local I/O: output, state file */
#define CLI_EXIT_ALARM		5	/* witness: the log was not extended */

/* Long-option codes shared by all commands; command codes start above. */
enum cli_common_opt {
	CLI_OPT_BROKER = 1000,
	CLI_OPT_CA,
	CLI_OPT_CERT,
	CLI_OPT_KEY,
	CLI_OPT_CRL,
	CLI_OPT_PKI,
	CLI_OPT_NODE,
	CLI_OPT_NO_CRL,
	CLI_OPT_BROKER_NAME,
	CLI_OPT_BROKER_PIN,
	CLI_OPT_FIRST_COMMAND = 1100
};

/* getopt_long entries for the shared options ("v" and "h" are short). */
#define CLI_COMMON_LONGOPTS						\
	{ "broker",	required_argument, NULL, CLI_OPT_BROKER },	\
	{ "ca",		required_argument, NULL, CLI_OPT_CA },		\
	{ "cert",	required_argument, NULL, CLI_OPT_CERT },	\
	{ "key",	required_argument, NULL, CLI_OPT_KEY },		\
	{ "crl",	required_argument, NULL, CLI_OPT_CRL },		\
	{ "pki",	required_argument, NULL, CLI_OPT_PKI },		\
	{ "node",	required_argument, NULL, CLI_OPT_NODE },	\
	{ "no-crl",	no_argument,	   NULL, CLI_OPT_NO_CRL },	\
	{ "broker-name", required_argument, NULL, CLI_OPT_BROKER_NAME }, \
	{ "broker-pin",	required_argument, NULL, CLI_OPT_BROKER_PIN },	\
	{ "verbose",	no_argument,	   NULL, 'v' },			\
	{ "help",	no_argument,	   NULL, 'h' }

/* Usage text of the shared options, for each command's --help. */
extern const char cli_common_usage[];

/* Set by SIGINT/SIGTERM; commands stop at the next loop turn. */
extern volatile sig_atomic_t cli_stop_signal;

struct cli_common {
	const char	*broker;
	const char	*ca;
	const char	*cert;
	const char	*key;
	const char	*crl;
	const char	*pki;
	const char	*node;
	int		 no_crl;	/* run without a CRL, knowingly */
	const char	*broker_name;	/* NULL: the host of broker */
	const char	*broker_pin;	/* SHA-256 of the broker's key, or NULL */
	int		 verbose;
	/* Paths built from --pki/--node, owned here. */
	char		 ca_buf[1024];
	char		 crl_buf[1024];
	char		 cert_buf[1024];
	char		 key_buf[1024];
};

/* Defaults from the environment (CPX_BROKER, CPX_PKI, CPX_NODE). */
void	cli_common_init(struct cli_common *co);
/* Take one shared option; 0 if it was one, -1 if opt is not shared. */
int	cli_common_opt(struct cli_common *co, int opt, const char *arg);

/*
 * Resolve the files (explicit flags win over --pki/--node), set up
 * logging, install the signal handlers, create the client and connect
 * within timeout_ms. Returns an owned client (cpx_client_free), or NULL
 * after printing why, with *exit_code set (USAGE or CONNECT).
 */
struct cpx_client *cli_connect(struct cli_common *co, int reconnect,
	    int timeout_ms, int *exit_code);

/*
 * After a successful cli_connect of c: print to out what was checked of
 * the broker (its name, the CRL and its next update, the pin). Returns 0,
 * or -1 if out could not be written.
 */
int	cli_print_broker_checks(const struct cli_common *co,
	    const struct cpx_client *c, FILE *out)
	    __attribute__((warn_unused_result));

/* Subscription filters built from flags: --from --region --category
 * --min-severity, and --or to start the next group. */
struct cli_filters {
	Cpx__Filter	 f[CPX_MAX_FILTERS];
	Cpx__Filter	*fp[CPX_MAX_FILTERS];
	size_t		 n;		/* groups in use, >= 1 */
	char		*origins[CPX_MAX_FILTERS][CPX_MAX_FILTER_ORIGINS];
	char		*regions[CPX_MAX_FILTERS][CPX_MAX_FILTER_REGIONS];
	Cpx__Category	 cats[CPX_MAX_FILTERS][CPX_MAX_FILTER_CATS];
};

enum cli_filter_opt {
	CLI_OPT_FROM = 1050,
	CLI_OPT_REGION,
	CLI_OPT_CATEGORY,
	CLI_OPT_MIN_SEVERITY,
	CLI_OPT_OR
};

#define CLI_FILTER_LONGOPTS						\
	{ "from",	  required_argument, NULL, CLI_OPT_FROM },	\
	{ "region",	  required_argument, NULL, CLI_OPT_REGION },	\
	{ "category",	  required_argument, NULL, CLI_OPT_CATEGORY },	\
	{ "min-severity", required_argument, NULL, CLI_OPT_MIN_SEVERITY }, \
	{ "or",		  no_argument,	     NULL, CLI_OPT_OR }

extern const char cli_filter_usage[];

void	cli_filters_init(struct cli_filters *fl);
/* Free the strings; the filters are empty again afterwards. */
void	cli_filters_clear(struct cli_filters *fl);
/*
 * Take one filter option. Returns 0 if taken, 1 if opt is not a filter
 * option, -1 on a bad value (printed).
 */
int	cli_filters_opt(struct cli_filters *fl, int opt, const char *arg)
	    __attribute__((warn_unused_result));

/* Strict decimal parsers; 0, or -1 with *v = 0. */
int	cli_parse_u64(const char *s, uint64_t *v)
	    __attribute__((warn_unused_result));
/*
 * A time argument: an ISO 8601 UTC time or ms (alert_json_time_parse),
 * or, when sign is '+' or '-', that sign followed by a duration such as
 * 6h, 90m, 1h30m, 2d, 45s, taken from now. Returns 0 with *ms, or -1.
 */
int	cli_parse_time(const char *s, int sign, int64_t *ms)
	    __attribute__((warn_unused_result));

/*
 * Copy s to out[len] with every byte outside printable ASCII replaced by
 * '?': for text that comes from the broker or a certificate and is not an
 * alert (those go through alert_json's printers), so it cannot move the
 * cursor or recolour the terminal. Returns out.
 */
char	*cli_sanitize(const char *s, char *out, size_t len);

/* Monotonic milliseconds. */
int64_t	cli_now_ms(void);

/*
 * The state file of `cpx subscribe --state-file`: one line, the last
 * sequence handled. cli_state_read: 0 with *seq, 1 if the file does not
 * exist (*seq = 0), -1 if it cannot be read or is malformed (printed).
 * cli_state_write replaces it atomically (temporary file in the same
 * directory, fsync, rename, fsync of the directory): a crash leaves the
 * old or the new value, never a torn one. 0 or -1 (printed).
 */
int	cli_state_read(const char *path, uint64_t *seq)
	    __attribute__((warn_unused_result));
int	cli_state_write(const char *path, uint64_t seq)
	    __attribute__((warn_unused_result));

/* The commands: argv[0] is the command name. Each returns an exit code. */
int	cli_publish(int argc, char **argv);
int	cli_subscribe(int argc, char **argv);
int	cli_replay(int argc, char **argv);
int	cli_witness(int argc, char **argv);	/* cli_witness.c */

/*
 * Split a comma list, calling take(item, length, arg) for each trimmed,
 * non-empty item (not NUL-terminated). 0, or -1 as soon as take fails.
 */
int	cli_split_list(const char *list,
	    int (*take)(const char *, size_t, void *), void *arg)
	    __attribute__((warn_unused_result));

#endif
