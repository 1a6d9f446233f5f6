/*
 * console_main.c: cpx-console, the node console. `cpx-console [options]`
 * connects to the broker as this node (the same options as cpx), then
 * serves the officers' web application on 127.0.0.1 until SIGINT or
 * SIGTERM; `cpx-console user add|remove|passwd NAME` manages the
 * officers' accounts file. Owns start-up (options, the context, the
 * certificate and CRL dates for the status page) and shutdown; the
 * broker thread is this thread (console_broker.c), HTTP runs on
 * libmicrohttpd's threads (console_http.c and the handlers beside it,
 * console_http.h). docs/console.md is the guide.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "alert.h"
#include "cli.h"
#include "console.h"
#include "cpx_version.h"
#include "log.h"

#define CONNECT_TIMEOUT_MS	10000
#define DEFAULT_LISTEN		"127.0.0.1:8080"
#define DEFAULT_BACKLOG		1000

enum {
	OPT_LISTEN = CLI_OPT_FIRST_COMMAND,
	OPT_USERS,
	OPT_WEB,
	OPT_VENDOR,
	OPT_REGIONS,
	OPT_SECURE_COOKIE,
	OPT_IDLE_MINUTES,
	OPT_LOCKOUT,
	OPT_LOCKOUT_MINUTES,
	OPT_BACKLOG,
	OPT_COST
};

static const struct option longopts[] = {
	CLI_COMMON_LONGOPTS,
	CLI_FILTER_LONGOPTS,
	{ "listen",		required_argument, NULL, OPT_LISTEN },
	{ "users",		required_argument, NULL, OPT_USERS },
	{ "web",		required_argument, NULL, OPT_WEB },
	{ "vendor",		required_argument, NULL, OPT_VENDOR },
	{ "regions",		required_argument, NULL, OPT_REGIONS },
	{ "secure-cookie",	no_argument,	NULL, OPT_SECURE_COOKIE },
	{ "idle-minutes",	required_argument, NULL, OPT_IDLE_MINUTES },
	{ "lockout",		required_argument, NULL, OPT_LOCKOUT },
	{ "lockout-minutes", required_argument, NULL, OPT_LOCKOUT_MINUTES },
	{ "backlog",		required_argument, NULL, OPT_BACKLOG },
	{ "version",		no_argument,	NULL, 'V' },
	{ NULL, 0, NULL, 0 }
};

static const struct option user_longopts[] = {
	{ "users",	required_argument, NULL, OPT_USERS },
	{ "cost",	required_argument, NULL, OPT_COST },
	{ "help",	no_argument,	   NULL, 'h' },
	{ NULL, 0, NULL, 0 }
};

static void
usage(FILE *out)
{
	fprintf(out,
"usage: cpx-console --users FILE [options] [filters]\n"
"       cpx-console user add|remove|passwd NAME --users FILE\n"
"\n"
"The node console: one session to the broker as this node (its key stays\n"
"in this process), and a web application for the node's officers on\n"
"http://127.0.0.1:8080/ (put the national TLS proxy in front of it).\n"
"\n"
"Options:\n"
"  --users FILE          officers' accounts (mode 0600; cpx-console user)\n"
"  --listen ADDR:PORT    where to serve (default " DEFAULT_LISTEN "; port 0:\n"
"                        any free port, printed at start)\n"
"  --web DIR             the application's files (default %s)\n"
"  --vendor DIR          the npm packages (default WEB/node_modules)\n"
"  --regions LIST        region names the compose form offers\n"
"  --secure-cookie       mark the session cookie Secure (behind TLS)\n"
"  --idle-minutes N      sign an idle officer out (default 15)\n"
"  --lockout N           failed sign-ins before a lock-out (default 5)\n"
"  --lockout-minutes N   how long it lasts (default 15)\n"
"  --backlog N           show alerts of the last N sequences at start\n"
"                        (default %d)\n"
"  -V, --version         print the version (cpx-console " CPX_VERSION ")\n"
"  The filters select what the live feed receives, as for cpx subscribe.\n"
"\n%s\n%s\n"
"user add NAME       create an account; the password is read from the\n"
"                    terminal (twice) or one line of standard input\n"
"user passwd NAME   set a new password\n"
"user remove NAME   delete the account\n",
	    CONSOLE_WEB_DIR, DEFAULT_BACKLOG, cli_filter_usage,
	    cli_common_usage);
}

/* Read a password: twice from a terminal, or one line of stdin. */
static int
read_password(char *pw, size_t len)
{
	struct termios old, quiet;
	char again[USERS_MAX_PASSWORD + 2];
	int tty = isatty(STDIN_FILENO), ret = -1;
	size_t n;

	pw[0] = '\0';
	if (tty) {
		if (tcgetattr(STDIN_FILENO, &old) == -1)
			return -1;
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		(void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
		fprintf(stderr, "password: ");
	}
	if (fgets(pw, (int)len, stdin) == NULL)
		goto done;
	if ((n = strlen(pw)) > 0 && pw[n - 1] == '\n')
		pw[--n] = '\0';
	else if (n + 1 == len) {
		fprintf(stderr, "\ncpx-console: password too long\n");
		goto done;
	}
	if (tty) {
		fprintf(stderr, "\nagain: ");
		if (fgets(again, sizeof(again), stdin) == NULL)
			goto done;
		again[strcspn(again, "\n")] = '\0';
		fputc('\n', stderr);
		if (strcmp(again, pw) != 0) {
			fprintf(stderr, "cpx-console: the passwords differ\n");
			goto done;
		}
	}
	ret = 0;
done:
	OPENSSL_cleanse(again, sizeof(again));
	if (tty)
		(void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
	if (ret == -1)
		OPENSSL_cleanse(pw, len);
	return ret;
}

static int
cmd_user(int argc, char **argv)
{
	char pw[USERS_MAX_PASSWORD + 2], err[400];
	const char *users = NULL, *verb, *name;
	int opt, ln = USERS_LN_DEFAULT, rc = 2;
	char *end;
	long v;

	optind = 2;
	while ((opt = getopt_long(argc, argv, "h", user_longopts,
	    NULL)) != -1) {
		switch (opt) {
		case OPT_USERS:
			users = optarg;
			break;
		case OPT_COST:
			v = strtol(optarg, &end, 10);
			if (*end != '\0' || v < USERS_LN_MIN ||
			    v > USERS_LN_MAX) {
				fprintf(stderr, "cpx-console: --cost %s: "
				    "expected %d..%d (scrypt N = 2^cost)\n",
				    optarg, USERS_LN_MIN, USERS_LN_MAX);
				return 2;
			}
			ln = (int)v;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			return 2;
		}
	}
	if (users == NULL || argc - optind != 2) {
		fprintf(stderr, "usage: cpx-console user add|remove|passwd "
		    "NAME --users FILE [--cost N]\n");
		return 2;
	}
	verb = argv[optind];
	name = argv[optind + 1];
	if (!users_name_valid(name)) {
		fprintf(stderr, "cpx-console user: %s: an account name is 1 "
		    "to %u of a-z 0-9 . _ - (not starting with . or -)\n",
		    name, USERS_MAX_NAME);
		return 2;
	}
	if (strcmp(verb, "remove") == 0) {
		if (users_update(users, name, NULL, 0, ln, err,
		    sizeof(err)) == -1) {
			fprintf(stderr, "cpx-console: %s\n", err);
			return 1;
		}
		printf("removed %s\n", name);
		return 0;
	}
	if (strcmp(verb, "add") != 0 && strcmp(verb, "passwd") != 0) {
		fprintf(stderr, "cpx-console user: %s: expected add, remove "
		    "or passwd\n", verb);
		return 2;
	}
	if (read_password(pw, sizeof(pw)) == -1) {
		fprintf(stderr, "cpx-console: no password read\n");
		return 2;
	}
	if (users_update(users, name, pw, strcmp(verb, "passwd") == 0, ln,
	    err, sizeof(err)) == -1) {
		fprintf(stderr, "cpx-console: %s\n", err);
		rc = 1;
	} else {
		printf("%s %s\n", strcmp(verb, "add") == 0 ? "added" :
		    "password set for", name);
		rc = 0;
	}
	OPENSSL_cleanse(pw, sizeof(pw));
	return rc;
}

static void
asn1_date(const ASN1_TIME *t, char *out, size_t len)
{
	struct tm tm;

	snprintf(out, len, "unknown");
	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
		return;
	strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* The dates the status page shows: this node's certificate, the CRL. */
static void
read_dates(struct console *ctx, const char *cert, const char *crl)
{
	X509 *x = NULL;
	X509_CRL *cl = NULL;
	FILE *f;

	snprintf(ctx->cert_expiry, sizeof(ctx->cert_expiry), "unknown");
	snprintf(ctx->crl_expiry, sizeof(ctx->crl_expiry), "no CRL");
	if (cert != NULL && (f = fopen(cert, "r")) != NULL) {
		x = PEM_read_X509(f, NULL, NULL, NULL);
		fclose(f);
		if (x != NULL)
			asn1_date(X509_get0_notAfter(x), ctx->cert_expiry,
			    sizeof(ctx->cert_expiry));
	}
	if (crl != NULL && (f = fopen(crl, "r")) != NULL) {
		cl = PEM_read_X509_CRL(f, NULL, NULL, NULL);
		fclose(f);
		if (cl != NULL)
			asn1_date(X509_CRL_get0_nextUpdate(cl),
			    ctx->crl_expiry, sizeof(ctx->crl_expiry));
	}
	X509_free(x);
	X509_CRL_free(cl);
}

static int
take_regions(struct console *ctx, const char *list)
{
	char *copy, *tok, *save = NULL;
	int ret = -1;

	if ((copy = strdup(list)) == NULL)
		return -1;
	for (tok = strtok_r(copy, ", ", &save); tok != NULL;
	    tok = strtok_r(NULL, ", ", &save)) {
		if (!alert_region_name_valid(tok)) {
			fprintf(stderr, "cpx-console: --regions: %s is not a "
			    "region name (a-z 0-9 -)\n", tok);
			goto done;
		}
		if (ctx->nregions == CONSOLE_MAX_REGIONS) {
			fprintf(stderr, "cpx-console: --regions: at most %d\n",
			    CONSOLE_MAX_REGIONS);
			goto done;
		}
		if ((ctx->regions[ctx->nregions] = strdup(tok)) == NULL)
			goto done;
		ctx->nregions++;
	}
	ret = 0;
done:
	free(copy);
	return ret;
}

static int
positive(const char *flag, const char *s, long max, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < 1 || v > max) {
		fprintf(stderr, "cpx-console: %s %s: expected 1..%ld\n", flag,
		    s, max);
		return -1;
	}
	*out = v;
	return 0;
}

/* Append to out[len] at *o; -1 once it is full (the rest is dropped). */
static int
put(char *out, size_t len, size_t *o, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int
put(char *out, size_t len, size_t *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(out + *o, len - *o, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= len - *o)
		return -1;
	*o += (size_t)n;
	return 0;
}

/* The subscription in words, for the feed page. */
static void
describe_filters(const struct cli_filters *fl, char *out, size_t len)
{
	const Cpx__Filter *f;
	size_t i, j, o = 0;
	int bad = 0;

	out[0] = '\0';
	for (i = 0; i < fl->n && !bad; i++) {
		f = &fl->f[i];
		if (i > 0)
			bad |= put(out, len, &o, " or ");
		if (f->n_origins == 0 && f->n_regions == 0 &&
		    f->n_categories == 0 && f->min_severity == 0) {
			bad |= put(out, len, &o, "every alert this node may "
			    "receive");
			continue;
		}
		for (j = 0; j < f->n_origins; j++)
			bad |= put(out, len, &o, "%s%s", j ? "," : "from ",
			    f->origins[j]);
		for (j = 0; j < f->n_regions; j++)
			bad |= put(out, len, &o, "%s%s", j ? "," : " region ",
			    f->regions[j]);
		for (j = 0; j < f->n_categories; j++)
			bad |= put(out, len, &o, "%s%s", j ? "," :
			    " category ",
			    alert_category_name(f->categories[j]));
		if (f->min_severity != 0)
			bad |= put(out, len, &o, " severity %s or more",
			    alert_severity_name(f->min_severity));
	}
}

static void
console_clear(struct console *ctx)
{
	size_t i;

	for (i = 0; i < CONSOLE_RING; i++)
		free(ctx->ring[i].json);
	for (i = 0; i < ctx->nregions; i++)
		free(ctx->regions[i]);
}

int
main(int argc, char **argv)
{
	struct cli_common co;
	struct cli_filters fl;
	struct console *ctx = NULL;
	struct cpx_client *c = NULL;
	struct MHD_Daemon *d = NULL;
	const struct identity *id;
	const Cpx__Welcome *w;
	const char *listen = DEFAULT_LISTEN, *colon;
	char addr[64], vendor[4096], err[400];
	long idle = 15, lockout = 5, lock_min = 15, backlog = DEFAULT_BACKLOG;
	long port;
	uint64_t rid, after;
	int opt, r, bound, code = 2, inited = 0, verbose = 0;
	char *end;

	if (argc >= 2 && strcmp(argv[1], "user") == 0)
		return cmd_user(argc, argv);
	if ((ctx = calloc(1, sizeof(*ctx))) == NULL) {
		fprintf(stderr, "cpx-console: out of memory\n");
		return 1;
	}
	cli_common_init(&co);
	cli_filters_init(&fl);
	ctx->web_dir = CONSOLE_WEB_DIR;
	vendor[0] = '\0';
	while ((opt = getopt_long(argc, argv, "vhV", longopts, NULL)) != -1) {
		if ((r = cli_filters_opt(&fl, opt, optarg)) == -1)
			goto done;
		if (r == 0)
			continue;
		switch (opt) {
		case 'h':
			usage(stdout);
			code = 0;
			goto done;
		case 'V':
			printf("cpx-console %s\n", CPX_VERSION);
			code = 0;
			goto done;
		case OPT_LISTEN:
			listen = optarg;
			break;
		case OPT_USERS:
			ctx->users_path = optarg;
			break;
		case OPT_WEB:
			ctx->web_dir = optarg;
			break;
		case OPT_VENDOR:
			ctx->vendor_dir = optarg;
			break;
		case OPT_REGIONS:
			if (take_regions(ctx, optarg) == -1)
				goto done;
			break;
		case OPT_SECURE_COOKIE:
			ctx->secure_cookie = 1;
			break;
		case OPT_IDLE_MINUTES:
			if (positive("--idle-minutes", optarg, 24 * 60,
			    &idle) == -1)
				goto done;
			break;
		case OPT_LOCKOUT:
			if (positive("--lockout", optarg, 100, &lockout) == -1)
				goto done;
			break;
		case OPT_LOCKOUT_MINUTES:
			if (positive("--lockout-minutes", optarg, 24 * 60,
			    &lock_min) == -1)
				goto done;
			break;
		case OPT_BACKLOG:
			if (positive("--backlog", optarg, 1000000000L,
			    &backlog) == -1)
				goto done;
			break;
		default:
			if (cli_common_opt(&co, opt, optarg) == 0) {
				if (opt == 'v')
					verbose = 1;
				break;
			}
			fprintf(stderr, "Try 'cpx-console --help'.\n");
			goto done;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "cpx-console: unexpected argument %s\n",
		    argv[optind]);
		goto done;
	}
	if (ctx->users_path == NULL) {
		fprintf(stderr, "cpx-console: --users FILE is required (create "
		    "it with cpx-console user add NAME --users FILE)\n");
		goto done;
	}
	if ((colon = strrchr(listen, ':')) == NULL ||
	    (size_t)(colon - listen) >= sizeof(addr) ||
	    (port = strtol(colon + 1, &end, 10), *end != '\0') || port < 0 ||
	    port > 65535) {
		fprintf(stderr, "cpx-console: --listen %s: expected "
		    "ADDRESS:PORT such as 127.0.0.1:8080\n", listen);
		goto done;
	}
	memcpy(addr, listen, (size_t)(colon - listen));
	addr[colon - listen] = '\0';
	if (ctx->vendor_dir == NULL) {
		snprintf(vendor, sizeof(vendor), "%s/node_modules",
		    ctx->web_dir);
		ctx->vendor_dir = vendor;
	}
	/* The accounts file is checked now, not at the first sign-in. */
	if (users_verify(ctx->users_path, "-", "-", err, sizeof(err)) == -1) {
		fprintf(stderr, "cpx-console: %s\n", err);
		goto done;
	}
	if (pthread_mutex_init(&ctx->mu, NULL) != 0 ||
	    pthread_cond_init(&ctx->cond, NULL) != 0 ||
	    auth_init(&ctx->auth, idle * 60000, (unsigned int)lockout,
	    lock_min * 60000) == -1) {
		fprintf(stderr, "cpx-console: cannot create a mutex\n");
		goto done;
	}
	inited = 1;
	ctx->ring_next = 1;
	if (RAND_bytes((unsigned char *)&ctx->run_id,
	    sizeof(ctx->run_id)) != 1) {
		fprintf(stderr, "cpx-console: no random bytes\n");
		goto done;
	}
	if ((c = cli_connect(&co, 1, CONNECT_TIMEOUT_MS, &code)) == NULL)
		goto done;
	log_init("cpx-console", verbose ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO);
	code = 1;
	id = cpx_client_identity(c);
	snprintf(ctx->node, sizeof(ctx->node), "%s", id->node);
	snprintf(ctx->country, sizeof(ctx->country), "%s", id->country);
	snprintf(ctx->broker_endpoint, sizeof(ctx->broker_endpoint), "%s",
	    co.broker);
	read_dates(ctx, co.cert, co.crl);
	describe_filters(&fl, ctx->subscription, sizeof(ctx->subscription));
	cpx_client_on_event(c, console_broker_event, ctx);
	w = cpx_client_welcome(c);
	after = w != NULL && w->last_seq > (uint64_t)backlog ?
	    w->last_seq - (uint64_t)backlog : 0;
	if (cpx_subscribe(c, fl.fp, fl.n, 1, after, &rid) == -1) {
		log_warnx("cannot subscribe: %s", cpx_client_error(c));
		goto done;
	}
	if ((d = console_http_start(ctx, addr, (int)port, &bound, err,
	    sizeof(err))) == NULL) {
		log_warnx("%s", err);
		goto done;
	}
	log_info("node %s/%s: serving http://%s:%d/ (officers' accounts in "
	    "%s)", ctx->country, ctx->node, addr, bound, ctx->users_path);
	printf("cpx-console: http://%s:%d/\n", addr, bound);
	fflush(stdout);
	r = console_broker_run(ctx, c, &cli_stop_signal);
	log_info("stopping%s", r == -1 ? " (the broker session had ended)" :
	    "");
	code = 0;
done:
	if (d != NULL)
		console_http_stop(ctx, &d);
	cpx_client_free(&c);
	cli_filters_clear(&fl);
	if (inited) {
		auth_destroy(&ctx->auth);
		pthread_cond_destroy(&ctx->cond);
		pthread_mutex_destroy(&ctx->mu);
	}
	console_clear(ctx);
	free(ctx);
	return code;
}
