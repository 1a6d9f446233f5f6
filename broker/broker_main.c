/*
 * broker_main.c: cpx-broker's entry point. Parses flags, reads the config,
 * fails fast on any start-up problem (naming the file or key to fix),
 * installs signal handlers (SIGTERM/SIGINT drain and stop, SIGHUP reloads
 * CRL and policy), optionally drops root after binding, and runs the loop.
 */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "broker.h"
#include "cpx_version.h"
#include "log.h"
#include "notify.h"
#include "tlsctx.h"

static volatile sig_atomic_t stop_flag;
static volatile sig_atomic_t reload_flag;

static void
on_stop(int sig)
{
	(void)sig;
	stop_flag = 1;
}

static void
on_hup(int sig)
{
	(void)sig;
	reload_flag = 1;
}

static void
usage(FILE *out)
{
	fprintf(out,
"usage: cpx-broker -c broker.ini [-s key=value]... [-d] [-n]\n"
"\n"
"The cpx broker: accepts signed alerts from national nodes over mutual\n"
"TLS 1.3, checks them, records them in the audit log and routes them.\n"
"\n"
"  -c, --config FILE   configuration file ([broker] section, INI)\n"
"  -s, --set KEY=VAL   override one configuration key (repeatable)\n"
"  -d, --debug         log at debug level\n"
"  -n, --check         check the configuration, keys, CA, CRL, policy and\n"
"                      store_passfile, print \"configuration OK\" and the\n"
"                      audit store (its database named without password)\n"
"                      and exit (0), or say what is wrong (1); the audit\n"
"                      log itself is checked by cpx-audit\n"
"      --accept-log-without-mark\n"
"                      start on an audit log that has no high-water mark\n"
"                      (one written before the mark existed): its length\n"
"                      is taken as whole, and that is recorded in the log\n"
"  -h, --help          this help\n"
"  -V, --version       print the version (\"cpx-broker " CPX_VERSION "\")\n"
"\n"
"Signals: SIGHUP reloads the CRL and the policy; SIGTERM/SIGINT close all\n"
"sessions, write an audit checkpoint and exit.\n"
"Every key, its meaning and its default: cpx-broker.ini(5) and\n"
CPX_EXAMPLES_DIR "/broker.example.ini\n"
"(broker/broker.example.ini in the source tree).\n");
}

/*
 * -n: everything start-up would read, without listening or touching the
 * audit log, so an operator can test a change before SIGHUP or restart.
 */
static int
check_config(struct config *cfg, const char *conf)
{
	struct tls_files files = { cfg->ca, cfg->cert, cfg->key, cfg->crl };
	struct policy *policy = NULL;
	struct trust *trust = NULL;
	SSL_CTX *ctx = NULL;
	char err[512], desc[256];
	int rc = 1;

	if ((ctx = tlsctx_new(&files, 1, err, sizeof(err))) == NULL ||
	    (trust = trust_new(cfg->ca, cfg->crl, err, sizeof(err))) ==
	    NULL || (policy = policy_load(cfg->policy, err,
	    sizeof(err))) == NULL ||
	    config_store_env(cfg, err, sizeof(err)) == -1)
		log_warnx("%s", err);
	else {
		printf("configuration OK: %s\n", conf ? conf : "(flags)");
		/* The DSN as the logs name it: never its password. */
		if (config_store_pg(cfg)) {
			audit_pg_describe(cfg->store_dsn, desc, sizeof(desc));
			printf("store: postgresql (%s)%s%s\n", desc,
			    cfg->store_passfile ? ", password file " : "",
			    cfg->store_passfile ? cfg->store_passfile : "");
		} else
			printf("store: file (%s)\n", cfg->audit_dir);
		rc = 0;
	}
	policy_free(&policy);
	trust_free(&trust);
	SSL_CTX_free(ctx);
	config_clear(cfg);
	return rc;
}

/*
 * Each session is a socket: make sure max_sessions of them fit in the
 * file descriptor limit (the default soft limit, 1024, does not hold the
 * 2000 the default allows), or say which limit to raise.
 */
static void
raise_fd_limit(const struct config *cfg)
{
	struct rlimit rl;
	rlim_t want = (rlim_t)cfg->max_sessions + 256;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1 || rl.rlim_cur >= want)
		return;
	rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= want ?
	    want : rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
		log_warn("cannot raise the open file limit to %llu",
		    (unsigned long long)rl.rlim_cur);
	if (rl.rlim_cur < want)
		log_warnx("open file limit %llu is below max_sessions %u + 256: "
		    "raise the hard limit (ulimit -Hn, LimitNOFILE=) or lower "
		    "the config key max_sessions",
		    (unsigned long long)rl.rlim_cur, cfg->max_sessions);
}

static void
drop_root(const char *user)
{
	struct passwd *pw;

	if ((pw = getpwnam(user)) == NULL)
		fatalx("config key user: no such user %s", user);
	if (setgroups(1, &pw->pw_gid) == -1 || setgid(pw->pw_gid) == -1 ||
	    setuid(pw->pw_uid) == -1)
		fatal("cannot drop privileges to %s", user);
	if (setuid(0) != -1)
		fatalx("privileges could be regained after dropping to %s",
		    user);
	log_info("running as user %s", user);
}

int
main(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "set", required_argument, NULL, 's' },
		{ "debug", no_argument, NULL, 'd' },
		{ "check", no_argument, NULL, 'n' },
		{ "accept-log-without-mark", no_argument, NULL, 'M' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	struct config cfg;
	struct broker b;
	struct sigaction sa;
	enum log_level level;
	char err[512], *eq, *conf = NULL;
	char **sets = NULL;
	int ch, nsets = 0, i, debug = 0, check = 0, accept_no_mark = 0, rc;

	log_init("cpx-broker", LOG_LEVEL_INFO);
	/* Nothing to go on: say how to use it, not what is missing. */
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	config_defaults(&cfg);
	if ((sets = calloc((size_t)argc, sizeof(*sets))) == NULL)
		fatal("calloc");
	while ((ch = getopt_long(argc, argv, "c:s:dnhV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			conf = optarg;
			break;
		case 's':
			sets[nsets++] = optarg;
			break;
		case 'd':
			debug = 1;
			break;
		case 'n':
			check = 1;
			break;
		case 'M':
			accept_no_mark = 1;
			break;
		case 'h':
		case 'V':
			/* Freed, so LeakSanitizer builds exit 0 (help2man). */
			if (ch == 'h')
				usage(stdout);
			else
				printf("cpx-broker %s\n", CPX_VERSION);
			free(sets);
			config_clear(&cfg);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	if (conf != NULL && config_load(&cfg, conf, err, sizeof(err)) == -1)
		fatalx("%s", err);
	for (i = 0; i < nsets; i++) {
		if ((eq = strchr(sets[i], '=')) == NULL)
			fatalx("--set %s: expected KEY=VALUE", sets[i]);
		*eq = '\0';
		if (config_set(&cfg, sets[i], eq + 1, err, sizeof(err)) == -1)
			fatalx("--set: %s", err);
	}
	free(sets);
	cfg.accept_log_without_mark = accept_no_mark;
	if (config_check(&cfg, err, sizeof(err)) == -1)
		fatalx("%s%s%s", conf ? conf : "configuration", ": ", err);
	if (cfg.log_level != NULL) {
		if (log_level_parse(cfg.log_level, &level) == -1)
			fatalx("config key log_level: unknown level %s",
			    cfg.log_level);
		log_set_level(level);
	}
	if (debug)
		log_set_level(LOG_LEVEL_DEBUG);
	/* journald under systemd, or what the config key log_format says. */
	if (notify_log_setup(cfg.log_format, err, sizeof(err)) == -1)
		fatalx("%s", err);

	if (check)
		return check_config(&cfg, conf);

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_stop;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = on_hup;
	sigaction(SIGHUP, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	sigaction(SIGXFSZ, &sa, NULL);	/* a file size limit is EFBIG */

	raise_fd_limit(&cfg);
	memset(&b, 0, sizeof(b));
	b.stop = &stop_flag;
	b.reload = &reload_flag;
	if (broker_init(&b, &cfg, err, sizeof(err)) == -1)
		fatalx("cannot start: %s", err);
	if (cfg.user != NULL && geteuid() == 0)
		drop_root(cfg.user);
	rc = broker_run(&b);
	broker_free(&b);
	config_clear(&cfg);
	return rc == 0 ? 0 : 1;
}
