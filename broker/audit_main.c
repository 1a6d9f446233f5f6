/*
 * audit_main.c: cpx-audit, the offline tool for the broker's audit log.
 * "verify" checks the hash chain, every accepted alert's end-to-end
 * signature and every broker checkpoint; "dump" prints the records as one
 * JSON object per line. It only reads the log (safe while the broker
 * runs) and never prints keys or signatures, only their sizes.
 *
 * Exit status: 0 sound, 1 the log (or a file) is bad, 2 usage error.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "alert.h"
#include "audit.h"
#include "cpx_limits.h"
#include "log.h"
#include "sign.h"
#include "tlsctx.h"

#define EXIT_BAD	1
#define EXIT_USAGE	2

static const char usage_text[] =
    "usage: cpx-audit verify [--ca ca.pem [--crl crl.pem]]\n"
    "                        [--broker-cert FILE ...] [--broker-name NAME] DIR\n"
    "       cpx-audit dump [--from SEQ] DIR\n"
    "\n"
    "verify  check the hash chain of the audit log in DIR, every\n"
    "        checkpoint's signature and that it matches the chain, and\n"
    "        (with --ca) every accepted alert's signature against the\n"
    "        network CA and CRL, and its origin against the signer's\n"
    "        country. With --ca a checkpoint must be signed by a broker\n"
    "        certificate of the CA (serverAuth), and the first signer\n"
    "        stands for the broker: a change of signer fails unless a pin\n"
    "        vouches for the new one. --broker-cert FILE (repeatable) pins\n"
    "        the broker certificate(s); --broker-name NAME (needs --ca)\n"
    "        admits any CA broker certificate carrying NAME in its\n"
    "        subjectAltName. Every change of signer is printed. Prints a\n"
    "        summary; on failure names the first bad record and exits 1.\n"
    "dump    print each record from SEQ on (default: the first) as one\n"
    "        JSON object per line.\n";

static void
usage(FILE *fp)
{
	fputs(usage_text, fp);
}

/* ISO 8601 UTC with milliseconds, e.g. 2024-05-01T12:00:00.250Z. */
static void
iso_time(int64_t ms, char out[40])
{
	struct tm	tm;
	time_t		secs;
	int64_t		rem;
	char		buf[32];

	/* Floor division: times before 1970 stay correct. */
	rem = ms % 1000;
	if (rem < 0)
		rem += 1000;
	secs = (time_t)((ms - rem) / 1000);
	if (gmtime_r(&secs, &tm) == NULL ||
	    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm) == 0) {
		snprintf(out, 40, "invalid");
		return;
	}
	snprintf(out, 40, "%s.%03dZ", buf, (int)rem);
}

/* A JSON string, or a marker if s is not valid UTF-8 (jansson refuses). */
static json_t *
jstr(const char *s)
{
	json_t	*j;

	if (s == NULL)
		s = "";
	if ((j = json_string(s)) == NULL)
		j = json_string("<invalid utf-8>");
	return j;
}

static int
put(json_t *o, const char *key, json_t *v)
{
	return v == NULL ? -1 : json_object_set_new(o, key, v);
}

/* The alert at summary level; the signature only as a byte count. */
static json_t *
alert_json(const Cpx__SignedAlert *sa)
{
	Cpx__Alert	*al = NULL;
	json_t		*o, *r;
	char		 t[40];
	size_t		 i;

	if ((o = json_object()) == NULL)
		return NULL;
	put(o, "signature_bytes", json_integer((json_int_t)sa->signature.len));
	if (sa->alert.len > CPX_MAX_ALERT ||
	    (al = cpx__alert__unpack(NULL, sa->alert.len,
	    sa->alert.data)) == NULL) {
		put(o, "error", json_string("alert does not decode"));
		return o;
	}
	put(o, "id", jstr(al->id));
	put(o, "origin", jstr(al->origin));
	iso_time(al->issued_at, t);
	put(o, "issued_at", json_string(t));
	put(o, "category", jstr(alert_category_name(al->category)));
	put(o, "severity", jstr(alert_severity_name(al->severity)));
	put(o, "handling", jstr(alert_handling_name(al->handling)));
	if ((r = json_array()) != NULL) {
		for (i = 0; i < al->n_recipients && i < CPX_MAX_RECIPIENTS;
		    i++)
			json_array_append_new(r, jstr(al->recipients[i]));
		put(o, "recipients", r);
	}
	put(o, "summary", jstr(al->summary));
	cpx__alert__free_unpacked(al, NULL);
	return o;
}

static json_t *
record_json(const Cpx__AuditRecord *rec)
{
	json_t	*o;
	char	 t[40], h[2 * AUDIT_HASH_LEN + 1];

	if ((o = json_object()) == NULL)
		return NULL;
	put(o, "seq", json_integer((json_int_t)rec->seq));
	iso_time(rec->time, t);
	put(o, "time", json_string(t));
	put(o, "kind", json_string(alert_record_kind_name(rec->kind)));
	put(o, "peer_country", jstr(rec->peer_country));
	put(o, "peer_node", jstr(rec->peer_node));
	put(o, "session_id", json_integer((json_int_t)rec->session_id));
	put(o, "reason", jstr(alert_reason_name(rec->reason)));
	put(o, "text", jstr(rec->text));
	put(o, "alert_id", jstr(rec->alert_id));
	if (rec->alert != NULL)
		put(o, "alert", alert_json(rec->alert));
	if (rec->kind == CPX__RECORD_KIND__RECORD_CHECKPOINT) {
		put(o, "checkpoint_seq",
		    json_integer((json_int_t)rec->checkpoint_seq));
		if (rec->checkpoint_hash.len == AUDIT_HASH_LEN) {
			sign_hex(rec->checkpoint_hash.data, AUDIT_HASH_LEN, h);
			put(o, "checkpoint_hash", json_string(h));
		}
		put(o, "checkpoint_signature_bytes",
		    json_integer((json_int_t)rec->checkpoint_signature.len));
	}
	return o;
}

static int
parse_seq(const char *s, uint64_t *out)
{
	char			*end;
	unsigned long long	 v;

	errno = 0;
	if (s[0] < '0' || s[0] > '9')
		return -1;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return -1;
	*out = v;
	return 0;
}

static int
cmd_dump(int argc, char **argv)
{
	static const struct option	opts[] = {
		{ "from", required_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct audit_cursor	*c = NULL;
	Cpx__AuditRecord	*rec = NULL;
	json_t			*o;
	uint64_t		 from = 0;
	char			 err[512];
	int			 ch, r, ret = EXIT_BAD;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "f:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'f':
			if (parse_seq(optarg, &from) == -1) {
				fprintf(stderr, "cpx-audit: --from: not a "
				    "sequence number: %s\n", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (argc - optind != 1) {
		usage(stderr);
		return EXIT_USAGE;
	}
	c = audit_cursor_open_dir(argv[optind], from, 0, err, sizeof(err));
	if (c == NULL) {
		fprintf(stderr, "cpx-audit: %s\n", err);
		goto done;
	}
	while ((r = audit_cursor_next(c, &rec, err, sizeof(err))) == 1) {
		if ((o = record_json(rec)) == NULL ||
		    json_dumpf(o, stdout, JSON_COMPACT) == -1 ||
		    putchar('\n') == EOF) {
			json_decref(o);
			fprintf(stderr, "cpx-audit: cannot write JSON\n");
			goto done;
		}
		json_decref(o);
		cpx__audit_record__free_unpacked(rec, NULL);
		rec = NULL;
	}
	if (r == -1) {
		fprintf(stderr, "cpx-audit: %s\n", err);
		goto done;
	}
	ret = 0;
done:
	if (rec != NULL)
		cpx__audit_record__free_unpacked(rec, NULL);
	audit_cursor_free(&c);
	if (fflush(stdout) == EOF && ret == 0) {
		fprintf(stderr, "cpx-audit: stdout: %s\n", strerror(errno));
		ret = EXIT_BAD;
	}
	return ret;
}

/* One line per change of checkpoint signer: a key change is news. */
static void
on_signer_change(void *arg, uint64_t seq, const char *from, const char *to,
    const char *desc)
{
	(void)arg;
	printf("checkpoint signer changed at record %" PRIu64 ": sha256 %s "
	    "-> sha256 %s (%s)\n", seq, from, to, desc);
}

#define MAX_BROKER_CERTS	8

static int
cmd_verify(int argc, char **argv)
{
	static const struct option	opts[] = {
		{ "ca", required_argument, NULL, 'c' },
		{ "crl", required_argument, NULL, 'r' },
		{ "broker-cert", required_argument, NULL, 'b' },
		{ "broker-name", required_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct audit_verify_stats	 st;
	struct audit_verify_opts	 vo;
	struct trust			*t = NULL;
	X509				*pins[MAX_BROKER_CERTS];
	const char			*ca = NULL, *crl = NULL;
	char				 err[512];
	char				 h[2 * AUDIT_HASH_LEN + 1];
	size_t				 i;
	int				 ch, ok, ret = EXIT_BAD;

	memset(&vo, 0, sizeof(vo));
	memset(pins, 0, sizeof(pins));
	vo.broker_certs = pins;
	vo.on_signer_change = on_signer_change;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "c:r:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			ca = optarg;
			break;
		case 'r':
			crl = optarg;
			break;
		case 'b':
			if (vo.nbroker_certs == MAX_BROKER_CERTS) {
				fprintf(stderr, "cpx-audit: at most %d "
				    "--broker-cert\n", MAX_BROKER_CERTS);
				ret = EXIT_USAGE;
				goto done;
			}
			if ((pins[vo.nbroker_certs] = tlsctx_load_cert(optarg,
			    err, sizeof(err))) == NULL) {
				fprintf(stderr, "cpx-audit: --broker-cert: "
				    "%s\n", err);
				goto done;
			}
			vo.nbroker_certs++;
			break;
		case 'n':
			vo.broker_name = optarg;
			break;
		case 'h':
			usage(stdout);
			ret = 0;
			goto done;
		default:
			usage(stderr);
			ret = EXIT_USAGE;
			goto done;
		}
	}
	if (argc - optind != 1 || (crl != NULL && ca == NULL) ||
	    (vo.broker_name != NULL && ca == NULL)) {
		if (crl != NULL && ca == NULL)
			fprintf(stderr, "cpx-audit: --crl needs --ca\n");
		if (vo.broker_name != NULL && ca == NULL)
			fprintf(stderr, "cpx-audit: --broker-name needs --ca "
			    "(the name is only worth what the CA vouches)\n");
		usage(stderr);
		ret = EXIT_USAGE;
		goto done;
	}
	if (ca != NULL && (t = trust_new(ca, crl, err, sizeof(err))) == NULL) {
		fprintf(stderr, "cpx-audit: %s\n", err);
		goto done;
	}
	ok = audit_verify_dir_opts(argv[optind], t, &vo, &st, err,
	    sizeof(err)) == 0;
	sign_hex(st.last_hash, AUDIT_HASH_LEN, h);
	printf("segments: %" PRIu64 "\n", st.segments);
	printf("records: %" PRIu64 "%s\n", st.records,
	    ok ? "" : " (valid before the bad one)");
	printf("alerts: %" PRIu64 "%s\n", st.alerts, t == NULL ?
	    " (signatures not checked: no --ca)" : "");
	printf("checkpoints: %" PRIu64 "%s\n", st.checkpoints, t == NULL ?
	    " (certificates not checked: no --ca)" : "");
	if (st.checkpoint_cert[0] != '\0')
		printf("checkpoint signer: sha256 %s%s\n", st.checkpoint_cert,
		    vo.nbroker_certs > 0 || vo.broker_name != NULL ?
		    " (pinned)" : t != NULL ? " (not pinned: give "
		    "--broker-cert or --broker-name)" : "");
	if (st.signer_changes > 0)
		printf("checkpoint signer changes: %" PRIu64 "\n",
		    st.signer_changes);
	printf("last seq: %" PRIu64 "\n", st.last_seq);
	printf("last hash: %s\n", h);
	if (st.torn_bytes > 0)
		printf("torn tail: %" PRIu64 " bytes, never acknowledged "
		    "(the broker cuts it when it starts)\n", st.torn_bytes);
	if (!ok) {
		printf("FAILED\n");
		fprintf(stderr, "cpx-audit: %s\n", err);
		goto done;
	}
	printf("OK\n");
	ret = 0;
done:
	for (i = 0; i < MAX_BROKER_CERTS; i++)
		X509_free(pins[i]);
	trust_free(&t);
	if (fflush(stdout) == EOF && ret == 0)
		ret = EXIT_BAD;
	return ret;
}

int
main(int argc, char **argv)
{
	log_init("cpx-audit", LOG_LEVEL_WARN);
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "verify") == 0)
		return cmd_verify(argc - 1, argv + 1);
	if (strcmp(argv[1], "dump") == 0)
		return cmd_dump(argc - 1, argv + 1);
	fprintf(stderr, "cpx-audit: unknown command: %s\n", argv[1]);
	usage(stderr);
	return EXIT_USAGE;
}
