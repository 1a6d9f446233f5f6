/*
 * cli_common.c: what the commands of the command-line client cpx share
 * (see cli.h): the broker and PKI options, connecting, subscription
 * filters from flags, strict argument parsers, output sanitising for text
 * that is not an alert, and the subscriber's state file. Owns nothing
 * beyond the lifetime of one command.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "alert.h"
#include "alert_json.h"
#include "atomicfile.h"
#include "cli.h"
#include "clock.h"
#include "identity.h"
#include "log.h"
#include "sign.h"
#include "tlsctx.h"

#define DEFAULT_BROKER	"tcp://127.0.0.1:7443"

volatile sig_atomic_t cli_stop_signal;

const char cli_common_usage[] =
"Connection options (every command):\n"
"  --broker tcp://HOST:PORT  broker endpoint (env CPX_BROKER,\n"
"                            default " DEFAULT_BROKER "); several\n"
"                            brokers, comma separated, are tried in order\n"
"                            and the next taken when a session is lost\n"
"  --pki DIR --node NAME     take DIR/ca.pem, DIR/crl.pem, DIR/nodes/NAME.pem\n"
"                            and DIR/nodes/NAME.key (env CPX_PKI, CPX_NODE)\n"
"  --ca FILE --cert FILE --key FILE --crl FILE\n"
"                            the same files one by one (they win over\n"
"                            --pki); the key must be mode 0600\n"
"  --broker-name NAME        the name the broker's certificate must carry\n"
"                            in its subjectAltName (env CPX_BROKER_NAME;\n"
"                            default: the host of each --broker endpoint;\n"
"                            one name for all, or one per endpoint: A,B)\n"
"  --broker-pin SHA256       also require this broker key: 64 hex digits\n"
"                            (env CPX_BROKER_PIN; 'cpx-pki pin DIR'); one\n"
"                            per endpoint, comma separated, if several\n"
"  --no-crl                  start even without a CRL; alerts signed by a\n"
"                            revoked node then verify, so a CRL is required\n"
"                            unless this is given\n"
"  -v, --verbose             debug logging on stderr\n"
"  -h, --help                this text\n";

const char cli_filter_usage[] =
"Filters (an alert is shown if it matches every part given; none = all\n"
"alerts this node is entitled to):\n"
"  --from CC[,CC...]         origin country (repeatable)\n"
"  --region NAME[,NAME...]   origin is a member of the region (repeatable)\n"
"  --category NAME[,...]     route vehicle crossing network document\n"
"                            maritime other (repeatable)\n"
"  --min-severity NAME       low medium high critical\n"
"  --or                      start another filter group; an alert is shown\n"
"                            if it matches any group (at most 16)\n";

static void
on_signal(int sig)
{
	(void)sig;
	cli_stop_signal = 1;
}

int64_t
cli_now_ms(void)
{
	return clock_mono_ms();
}

void
cli_common_init(struct cli_common *co)
{
	memset(co, 0, sizeof(*co));
	co->broker = getenv("CPX_BROKER");
	co->pki = getenv("CPX_PKI");
	co->node = getenv("CPX_NODE");
	co->broker_name = getenv("CPX_BROKER_NAME");
	co->broker_pin = getenv("CPX_BROKER_PIN");
	if (co->broker == NULL || co->broker[0] == '\0')
		co->broker = DEFAULT_BROKER;
	if (co->broker_name != NULL && co->broker_name[0] == '\0')
		co->broker_name = NULL;
	if (co->broker_pin != NULL && co->broker_pin[0] == '\0')
		co->broker_pin = NULL;
}

int
cli_common_opt(struct cli_common *co, int opt, const char *arg)
{
	switch (opt) {
	case CLI_OPT_BROKER:
		co->broker = arg;
		break;
	case CLI_OPT_CA:
		co->ca = arg;
		break;
	case CLI_OPT_CERT:
		co->cert = arg;
		break;
	case CLI_OPT_KEY:
		co->key = arg;
		break;
	case CLI_OPT_CRL:
		co->crl = arg;
		break;
	case CLI_OPT_PKI:
		co->pki = arg;
		break;
	case CLI_OPT_NODE:
		co->node = arg;
		break;
	case CLI_OPT_NO_CRL:
		co->no_crl = 1;
		break;
	case CLI_OPT_BROKER_NAME:
		co->broker_name = arg;
		break;
	case CLI_OPT_BROKER_PIN:
		co->broker_pin = arg;
		break;
	case 'v':
		co->verbose = 1;
		break;
	default:
		return -1;
	}
	return 0;
}

static int
pki_path(char *buf, size_t len, const char *dir, const char *a,
    const char *b, const char *c)
{
	int n = snprintf(buf, len, "%s/%s%s%s", dir, a, b, c);

	if (n < 0 || (size_t)n >= len) {
		fprintf(stderr, "cpx: --pki path too long\n");
		return -1;
	}
	return 0;
}

/*
 * The node name becomes part of a path: refuse "/" and ".." so that
 * --node cannot point outside DIR/nodes by accident.
 */
static int
node_name_ok(const char *s)
{
	size_t i;

	if (s[0] == '\0' || s[0] == '.' || strlen(s) > CPX_MAX_NODE_NAME)
		return 0;
	for (i = 0; s[i] != '\0'; i++)
		if (s[i] == '/')
			return 0;
	return 1;
}

static int
resolve_files(struct cli_common *co)
{
	if (co->pki != NULL && co->pki[0] != '\0') {
		if (co->ca == NULL) {
			if (pki_path(co->ca_buf, sizeof(co->ca_buf), co->pki,
			    "ca.pem", "", "") == -1)
				return -1;
			co->ca = co->ca_buf;
		}
		if (co->crl == NULL) {
			if (pki_path(co->crl_buf, sizeof(co->crl_buf),
			    co->pki, "crl.pem", "", "") == -1)
				return -1;
			/* A missing one is refused below, unless --no-crl. */
			if (access(co->crl_buf, R_OK) == 0)
				co->crl = co->crl_buf;
		}
		if (co->node != NULL && co->node[0] != '\0' &&
		    (co->cert == NULL || co->key == NULL)) {
			if (!node_name_ok(co->node)) {
				fprintf(stderr, "cpx: --node %s: not a node "
				    "name\n", co->node);
				return -1;
			}
			if (pki_path(co->cert_buf, sizeof(co->cert_buf),
			    co->pki, "nodes/", co->node, ".pem") == -1 ||
			    pki_path(co->key_buf, sizeof(co->key_buf),
			    co->pki, "nodes/", co->node, ".key") == -1)
				return -1;
			if (co->cert == NULL)
				co->cert = co->cert_buf;
			if (co->key == NULL)
				co->key = co->key_buf;
		}
	}
	if (co->ca == NULL || co->cert == NULL || co->key == NULL) {
		fprintf(stderr, "cpx: which node? give --pki DIR --node NAME "
		    "(or CPX_PKI and CPX_NODE), or --ca, --cert and --key\n");
		return -1;
	}
	/*
	 * Without the CRL a revoked node's key still signs alerts that
	 * verify: running so must be a choice, not an accident.
	 */
	if (co->crl == NULL && !co->no_crl) {
		fprintf(stderr, "cpx: no CRL: give --crl FILE (or put crl.pem "
		    "in the --pki directory); without it an alert signed by a "
		    "revoked node would be shown as verified. --no-crl starts "
		    "without one.\n");
		return -1;
	}
	return 0;
}

/*
 * Deliveries are verified on one thread per core (the caller's thread
 * only decrypts, decodes and prints, which is light): a long replay goes
 * about that many times faster. One core: inline.
 */
static unsigned int
verify_threads(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	if (n <= 1)
		return 0;
	return n > 8 ? 8 : (unsigned int)n;
}

/* One item of --broker: tcp://HOST:PORT. 0, or -1. */
static int
check_endpoint(const char *p, size_t n, void *arg)
{
	(void)arg;
	return n > 6 && strncmp(p, "tcp://", 6) == 0 ? 0 : -1;
}

struct cpx_client *
cli_connect(struct cli_common *co, int reconnect, int timeout_ms,
    int *exit_code)
{
	struct cpx_client_config cfg;
	struct cpx_client *c = NULL;
	struct sigaction sa;
	char err[512], safe[512];

	*exit_code = CLI_EXIT_USAGE;
	log_init("cpx", co->verbose ? LOG_LEVEL_DEBUG : LOG_LEVEL_WARN);
	if (resolve_files(co) == -1)
		return NULL;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	(void)sigaction(SIGINT, &sa, NULL);
	(void)sigaction(SIGTERM, &sa, NULL);
	/* A closed output pipe is reported as a write error, not a kill. */
	sa.sa_handler = SIG_IGN;
	(void)sigaction(SIGPIPE, &sa, NULL);

	memset(&cfg, 0, sizeof(cfg));
	cfg.endpoint = co->broker;
	cfg.ca = co->ca;
	cfg.cert = co->cert;
	cfg.key = co->key;
	cfg.crl = co->crl;
	cfg.no_crl = co->no_crl;
	cfg.broker_name = co->broker_name;
	cfg.broker_pin = co->broker_pin;
	cfg.reconnect = reconnect;
	cfg.verify_threads = verify_threads();
	log_debug("broker %s, ca %s, cert %s, key %s, crl %s", co->broker,
	    co->ca, co->cert, co->key, co->crl ? co->crl : "(none)");
	/* A mistake in the set-up is not a reason to retry: exit 2. */
	if (co->broker == NULL || cli_split_list(co->broker, check_endpoint,
	    NULL) == -1) {
		fprintf(stderr, "cpx: --broker %s: expected tcp://HOST:PORT, "
		    "or several, comma separated\n",
		    cli_sanitize(co->broker ? co->broker : "(none)", safe,
		    sizeof(safe)));
		return NULL;
	}
	if ((c = cpx_client_new(&cfg, err, sizeof(err))) == NULL) {
		fprintf(stderr, "cpx: %s\n", cli_sanitize(err, safe,
		    sizeof(safe)));
		return NULL;
	}
	*exit_code = CLI_EXIT_CONNECT;
	if (cpx_client_connect(c, timeout_ms, err, sizeof(err)) == -1) {
		fprintf(stderr, "cpx: %s\n", cli_sanitize(err, safe,
		    sizeof(safe)));
		/* Refused, not unreachable: fix the certificate or policy. */
		if (cpx_client_refused(c))
			*exit_code = CLI_EXIT_REFUSED;
		cpx_client_free(&c);
		return NULL;
	}
	*exit_code = CLI_EXIT_OK;
	return c;
}

char *
cli_sanitize(const char *s, char *out, size_t len)
{
	size_t i;

	if (len == 0)
		return out;
	if (s == NULL)
		s = "";
	for (i = 0; s[i] != '\0' && i + 1 < len; i++)
		out[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
	out[i] = '\0';
	return out;
}

int
cli_parse_u64(const char *s, uint64_t *v)
{
	unsigned long long n;
	char *end;

	*v = 0;
	if (s == NULL || !isdigit((unsigned char)s[0]))
		return -1;
	errno = 0;
	n = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return -1;
	*v = n;
	return 0;
}

/* "1h30m", "6h", "2d", "45s", "90m": a positive number of ms. */
static int
parse_duration(const char *s, int64_t *ms)
{
	int64_t total = 0, n, unit;
	int any = 0;

	*ms = 0;
	while (*s != '\0') {
		if (!isdigit((unsigned char)*s))
			return -1;
		for (n = 0; isdigit((unsigned char)*s); s++) {
			if (n > 100000000)
				return -1;	/* beyond any sane window */
			n = n * 10 + (*s - '0');
		}
		switch (*s++) {
		case 's':
			unit = 1000;
			break;
		case 'm':
			unit = 60 * 1000;
			break;
		case 'h':
			unit = 3600 * 1000;
			break;
		case 'd':
			unit = 86400 * 1000;
			break;
		default:
			return -1;
		}
		total += n * unit;
		if (total > (int64_t)3650 * 86400 * 1000)
			return -1;
		any = 1;
	}
	if (!any || total == 0)
		return -1;
	*ms = total;
	return 0;
}

int
cli_parse_time(const char *s, int sign, int64_t *ms)
{
	int64_t d;

	*ms = 0;
	if (sign != 0 && s[0] == sign) {
		if (parse_duration(s + 1, &d) == -1)
			return -1;
		*ms = alert_now_ms() + (sign == '+' ? d : -d);
		return 0;
	}
	return alert_json_time_parse(s, ms);
}

/* --- filters ---------------------------------------------------------- */

void
cli_filters_init(struct cli_filters *fl)
{
	size_t i;

	memset(fl, 0, sizeof(*fl));
	for (i = 0; i < CPX_MAX_FILTERS; i++) {
		cpx__filter__init(&fl->f[i]);
		fl->f[i].origins = fl->origins[i];
		fl->f[i].regions = fl->regions[i];
		fl->f[i].categories = fl->cats[i];
		fl->fp[i] = &fl->f[i];
	}
	fl->n = 1;
}

void
cli_filters_clear(struct cli_filters *fl)
{
	size_t i, j;

	for (i = 0; i < CPX_MAX_FILTERS; i++) {
		for (j = 0; j < fl->f[i].n_origins; j++)
			free(fl->origins[i][j]);
		for (j = 0; j < fl->f[i].n_regions; j++)
			free(fl->regions[i][j]);
	}
	cli_filters_init(fl);
}

int
cli_split_list(const char *list, int (*take)(const char *, size_t, void *),
    void *arg)
{
	const char *p = list, *e;
	size_t n;

	for (;;) {
		while (*p == ' ' || *p == ',')
			p++;
		if (*p == '\0')
			return 0;
		e = strchr(p, ',');
		n = e ? (size_t)(e - p) : strlen(p);
		while (n > 0 && p[n - 1] == ' ')
			n--;
		if (take(p, n, arg) == -1)
			return -1;
		p += n;
	}
}

struct item_ctx {
	const char		*what;
	int			(*take)(struct cli_filters *, const char *);
	struct cli_filters	*fl;
};

/* One list item as a C string for a filter's take function. */
static int
filter_item(const char *p, size_t n, void *arg)
{
	struct item_ctx *ic = arg;
	char item[256];

	if (n >= sizeof(item)) {
		fprintf(stderr, "cpx: --%s: item too long\n", ic->what);
		return -1;
	}
	memcpy(item, p, n);
	item[n] = '\0';
	return ic->take(ic->fl, item);
}

/* Split a comma list, calling take for each trimmed, non-empty item. */
static int
each_item(const char *list, const char *what,
    int (*take)(struct cli_filters *, const char *), struct cli_filters *fl)
{
	struct item_ctx ic = { what, take, fl };

	return cli_split_list(list, filter_item, &ic);
}

static int
take_origin(struct cli_filters *fl, const char *s)
{
	Cpx__Filter *f = &fl->f[fl->n - 1];
	char cc[3];

	if (strlen(s) != 2) {
		fprintf(stderr, "cpx: --from %s: not a country code\n", s);
		return -1;
	}
	cc[0] = (char)toupper((unsigned char)s[0]);
	cc[1] = (char)toupper((unsigned char)s[1]);
	cc[2] = '\0';
	if (!identity_country_valid(cc)) {
		fprintf(stderr, "cpx: --from %s: not a country code\n", s);
		return -1;
	}
	if (f->n_origins >= CPX_MAX_FILTER_ORIGINS) {
		fprintf(stderr, "cpx: --from: at most %u countries per "
		    "filter\n", CPX_MAX_FILTER_ORIGINS);
		return -1;
	}
	if ((f->origins[f->n_origins] = strdup(cc)) == NULL) {
		fprintf(stderr, "cpx: out of memory\n");
		return -1;
	}
	f->n_origins++;
	return 0;
}

static int
take_region(struct cli_filters *fl, const char *s)
{
	Cpx__Filter *f = &fl->f[fl->n - 1];

	if (!alert_region_name_valid(s)) {
		fprintf(stderr, "cpx: --region %s: not a region name "
		    "([a-z0-9-], at most %u)\n", s, CPX_MAX_REGION_NAME);
		return -1;
	}
	if (f->n_regions >= CPX_MAX_FILTER_REGIONS) {
		fprintf(stderr, "cpx: --region: at most %u regions per "
		    "filter\n", CPX_MAX_FILTER_REGIONS);
		return -1;
	}
	if ((f->regions[f->n_regions] = strdup(s)) == NULL) {
		fprintf(stderr, "cpx: out of memory\n");
		return -1;
	}
	f->n_regions++;
	return 0;
}

static int
take_category(struct cli_filters *fl, const char *s)
{
	Cpx__Filter *f = &fl->f[fl->n - 1];
	int c;

	if ((c = alert_category_parse(s)) <= 0) {
		fprintf(stderr, "cpx: --category %s: one of route, vehicle, "
		    "crossing, network, document, maritime, other\n", s);
		return -1;
	}
	if (f->n_categories >= CPX_MAX_FILTER_CATS) {
		fprintf(stderr, "cpx: --category: at most %u per filter\n",
		    CPX_MAX_FILTER_CATS);
		return -1;
	}
	f->categories[f->n_categories++] = (Cpx__Category)c;
	return 0;
}

int
cli_filters_opt(struct cli_filters *fl, int opt, const char *arg)
{
	int s;

	switch (opt) {
	case CLI_OPT_FROM:
		return each_item(arg, "from", take_origin, fl);
	case CLI_OPT_REGION:
		return each_item(arg, "region", take_region, fl);
	case CLI_OPT_CATEGORY:
		return each_item(arg, "category", take_category, fl);
	case CLI_OPT_MIN_SEVERITY:
		if ((s = alert_severity_parse(arg)) <= 0) {
			fprintf(stderr, "cpx: --min-severity %s: one of low, "
			    "medium, high, critical\n", arg);
			return -1;
		}
		fl->f[fl->n - 1].min_severity = (Cpx__Severity)s;
		return 0;
	case CLI_OPT_OR:
		if (fl->n >= CPX_MAX_FILTERS) {
			fprintf(stderr, "cpx: at most %u filter groups\n",
			    CPX_MAX_FILTERS);
			return -1;
		}
		fl->n++;
		return 0;
	default:
		return 1;
	}
}

/* --- state file ------------------------------------------------------- */

int
cli_state_read(const char *path, uint64_t *seq)
{
	char buf[64];
	ssize_t n;
	int fd;

	*seq = 0;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		if (errno == ENOENT)
			return 1;
		fprintf(stderr, "cpx: state file %s: %s\n", path,
		    strerror(errno));
		return -1;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0) {
		fprintf(stderr, "cpx: state file %s: %s\n", path,
		    strerror(errno));
		return -1;
	}
	/*
	 * A full buffer means a longer file: refuse it rather than take its
	 * first bytes (leading zeros would read as a smaller number).
	 */
	if ((size_t)n >= sizeof(buf) - 1)
		n = 0;
	buf[n] = '\0';
	if (n > 0 && buf[n - 1] == '\n')
		buf[n - 1] = '\0';
	if (cli_parse_u64(buf, seq) == -1) {
		fprintf(stderr, "cpx: state file %s: expected one line with "
		    "the last sequence number (delete the file to start "
		    "from the beginning of the history)\n", path);
		return -1;
	}
	return 0;
}

int
cli_state_write(const char *path, uint64_t seq)
{
	char	line[32], err[4200];
	int	len;

	len = snprintf(line, sizeof(line), "%" PRIu64 "\n", seq);
	if (atomicfile_replace(path, line, (size_t)len, err,
	    sizeof(err)) == -1) {
		fprintf(stderr, "cpx: state file: %s\n", err);
		return -1;
	}
	return 0;
}

int
cli_print_broker_checks(const struct cli_common *co,
    const struct cpx_client *c, FILE *out)
{
	struct trust *t = NULL;
	char host[256], crl[320], err[256];
	const char *name = co->broker_name;
	int rc;

	/* Of several endpoints, the one connected. */
	if (name == NULL && tlsctx_endpoint_host(cpx_client_endpoint(c),
	    host, sizeof(host)) == 0)
		name = host;
	/* The same files the connection used: what they say now. */
	if (co->crl == NULL)
		snprintf(crl, sizeof(crl), "none given (--no-crl): the "
		    "broker's certificate was not checked for revocation");
	else if ((t = trust_new(co->ca, co->crl, err, sizeof(err))) == NULL ||
	    trust_crl_describe(t, crl, sizeof(crl)) == -1)
		snprintf(crl, sizeof(crl), "%s", t == NULL ? err : "none");
	rc = fprintf(out, "checked:   the broker's certificate is from the "
	    "network CA, for serverAuth, and names '%s'\n"
	    "crl:       %s%s%s\n"
	    "pin:       %s%s\n", name != NULL ? name : "?",
	    co->crl != NULL ? co->crl : "", co->crl != NULL ? ": " : "", crl,
	    co->broker_pin != NULL ? "broker key sha256 " : "none",
	    co->broker_pin != NULL ? co->broker_pin : "") < 0 ? -1 : 0;
	trust_free(&t);
	return rc;
}
