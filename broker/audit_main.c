/*
 * audit_main.c: cpx-audit, the offline tool for the broker's audit log.
 * "verify" checks the hash chain, every accepted alert's end-to-end
 * signature and every broker checkpoint; "dump" prints the records as one
 * JSON object per line, written by lib/json_out.c exactly as cpx replay
 * --all-kinds --json prints the same records. It only reads the log (safe
 * while the broker runs) and never prints keys or signatures, only their
 * sizes.
 *
 * Exit status: 0 sound, 1 the log (or a file) is bad, 2 usage error, 3
 * verify without --ca or --chain-only: the chain is sound but the alerts
 * were not checked.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "audit.h"
#include "audit_cosign.h"
#include "cpx_version.h"
#include "json_out.h"
#include "log.h"
#include "sign.h"
#include "tlsctx.h"

#define EXIT_BAD	1
#define EXIT_USAGE	2
#define EXIT_UNCHECKED	3

static const char usage_text[] =
    "usage: cpx-audit verify (--ca ca.pem [--crl crl.pem] | --chain-only)\n"
    "                        [--broker-cert FILE ...] [--broker-name NAME]\n"
    "                        [--require-witnesses N [--witness-grace S]] DIR\n"
    "       cpx-audit dump [--from-seq SEQ] DIR\n"
    "\n"
    "verify  check the hash chain of the audit log in DIR, its length\n"
    "        against the high-water mark (records removed from the end\n"
    "        are named), every checkpoint's signature and that it\n"
    "        matches the chain, and (with --ca) every accepted alert's\n"
    "        signature against the network CA and CRL, and its origin\n"
    "        against the signer's country. Without --ca only the chain\n"
    "        and the checkpoints against their own certificates can be\n"
    "        checked: that needs --chain-only, and says so. With --ca a\n"
    "        checkpoint must be signed by a broker\n"
    "        certificate of the CA (serverAuth), and the first signer\n"
    "        stands for the broker: a change of signer fails unless a pin\n"
    "        vouches for the new one. --broker-cert FILE (repeatable) pins\n"
    "        the broker certificate(s); --broker-name NAME (needs --ca)\n"
    "        admits any CA broker certificate carrying NAME in its\n"
    "        subjectAltName. Every change of signer is printed. Prints a\n"
    "        summary with the mark it checked; on failure names the first\n"
    "        bad record and exits 1. Exits 3 if the log is sound as far\n"
    "        as checked but neither --ca nor --chain-only was given.\n"
    "        Witnesses (docs/witness.md): each checkpoint's cosignatures\n"
    "        are checked and the countries that cosigned it listed;\n"
    "        --require-witnesses N (needs --ca) fails unless a checkpoint\n"
    "        is cosigned by N countries, no witness raised an alarm, and\n"
    "        the records after the newest such checkpoint span at most\n"
    "        --witness-grace SECONDS (default 3600).\n"
    "dump    print each record from sequence SEQ on (default: the first)\n"
    "        as one JSON object per line, as cpx replay --all-kinds --json\n"
    "        does (see docs/json.md).\n"
    "\n"
    "cpx-audit --version prints the version (\"cpx-audit " CPX_VERSION "\").\n";

static void
usage(FILE *fp)
{
	fputs(usage_text, fp);
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
		{ "from-seq", required_argument, NULL, 'f' },
		/* Else getopt takes --from for --from-seq: not a country. */
		{ "from", required_argument, NULL, 'F' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct audit_cursor	*c = NULL;
	Cpx__AuditRecord	*rec = NULL;
	json_t			*o;
	char			*line = NULL;
	uint64_t		 from = 0;
	char			 err[512];
	int			 ch, r, ret = EXIT_BAD;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "f:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'f':
			if (parse_seq(optarg, &from) == -1) {
				fprintf(stderr, "cpx-audit: --from-seq: not "
				    "a sequence number: %s\n", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'F':
			fprintf(stderr, "cpx-audit: dump --from: give "
			    "--from-seq SEQ (a sequence number; --from names "
			    "a country in the cpx tools)\n");
			return EXIT_USAGE;
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
	/* The lib writer: a record reads as cpx replay --json prints it. */
	while ((r = audit_cursor_next(c, &rec, err, sizeof(err))) == 1) {
		if ((o = json_out_record(rec)) == NULL ||
		    (line = json_out_line(o)) == NULL ||
		    printf("%s\n", line) < 0) {
			json_decref(o);
			free(line);
			fprintf(stderr, "cpx-audit: cannot write JSON\n");
			goto done;
		}
		json_decref(o);
		free(line);
		line = NULL;
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
		{ "chain-only", no_argument, NULL, 'o' },
		{ "require-witnesses", required_argument, NULL, 'W' },
		{ "witness-grace", required_argument, NULL, 'G' },
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
	int				 ch, ok, chain_only = 0;
	int				 ret = EXIT_BAD;
	uint64_t			 require = 0;
	uint64_t			 grace = AUDIT_COSIGN_GRACE_MS / 1000;

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
		case 'o':
			chain_only = 1;
			break;
		case 'W':
		case 'G':
			if (parse_seq(optarg, ch == 'W' ? &require : &grace) ==
			    -1 || require > 256 || grace > 365 * 86400) {
				fprintf(stderr, "cpx-audit: --%s: a number "
				    "(countries up to 256, seconds up to a "
				    "year), not %s\n", ch == 'W' ?
				    "require-witnesses" : "witness-grace",
				    optarg);
				ret = EXIT_USAGE;
				goto done;
			}
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
	    (vo.broker_name != NULL && ca == NULL) ||
	    (chain_only && ca != NULL) || (require > 0 && ca == NULL)) {
		if (require > 0 && ca == NULL)
			fprintf(stderr, "cpx-audit: --require-witnesses needs "
			    "--ca (a cosignature counts only if the CA "
			    "vouches for its witness)\n");
		if (chain_only && ca != NULL)
			fprintf(stderr, "cpx-audit: --chain-only and --ca "
			    "contradict each other\n");
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
	if ((vo.cosign = audit_cosign_new(t, (unsigned int)require,
	    (int64_t)grace * 1000)) == NULL) {
		fprintf(stderr, "cpx-audit: out of memory\n");
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
	if (st.mark_found) {
		sign_hex(st.mark_hash, AUDIT_HASH_LEN, h);
		printf("high-water mark: %" PRIu64 " committed, hash %s, "
		    "trusted checkpoint %" PRIu64 "\n", st.mark_seq, h,
		    st.mark_trusted);
	} else
		printf("high-water mark: none\n");
	if (st.torn_bytes > 0)
		printf("torn tail: %" PRIu64 " bytes, never acknowledged "
		    "(the broker cuts it when it starts)\n", st.torn_bytes);
	if (!ok || audit_cosign_report(vo.cosign, err, sizeof(err)) == -1) {
		printf("FAILED\n");
		fprintf(stderr, "cpx-audit: %s\n", err);
		goto done;
	}
	if (t == NULL) {
		/* Not "OK": the alerts, the bulk of the log, are unchecked. */
		printf("CHAIN ONLY: the chain, its length and the checkpoints "
		    "against their own certificates are sound; %" PRIu64
		    " alert signature(s) and every certificate were not "
		    "checked (give --ca)\n", st.alerts);
		if (!chain_only) {
			fprintf(stderr, "cpx-audit: checked the chain only: "
			    "give --ca ca.pem to check the alerts, or "
			    "--chain-only to accept that\n");
			ret = EXIT_UNCHECKED;
			goto done;
		}
		ret = 0;
		goto done;
	}
	printf("OK\n");
	ret = 0;
done:
	for (i = 0; i < MAX_BROKER_CERTS; i++)
		X509_free(pins[i]);
	audit_cosign_free(&vo.cosign);
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
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0) {
		printf("cpx-audit %s\n", CPX_VERSION);
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
