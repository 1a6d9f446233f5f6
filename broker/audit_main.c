/*
 * audit_main.c: cpx-audit, the offline tool for the broker's audit log,
 * a directory of segment files or a PostgreSQL database (--dsn).
 * "verify" checks the hash chain, every accepted alert's end-to-end
 * signature and every broker checkpoint; "dump" prints the records as one
 * JSON object per line, written by lib/json_out.c exactly as cpx replay
 * --all-kinds --json prints the same records. Both only read the log
 * (safe while brokers run) and never print keys or signatures, only
 * their sizes. "export", "import" and "init-db" (audit_port.c) move a log
 * between a database and a directory and set a database up. A DSN is
 * never printed: audit_pg_describe names it without its password.
 *
 * Exit status: 0 sound (done), 1 the log (or a file, or the database) is
 * bad or unreachable, 2 usage error, 3 verify without --ca or
 * --chain-only: the chain is sound but the alerts were not checked.
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
#include "audit_port.h"
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
    "                        [--broker-cert FILE ...]\n"
    "                        [--broker-name NAME ...]\n"
    "                        [--multi-broker]\n"
    "                        [--require-witnesses N [--witness-grace S]]\n"
    "                        (DIR | --dsn DSN)\n"
    "       cpx-audit dump [--from-seq SEQ] (DIR | --dsn DSN)\n"
    "       cpx-audit export --dsn DSN [--out] DIR\n"
    "       cpx-audit import --dsn DSN (--ca ca.pem [--crl crl.pem] |\n"
    "                        --chain-only) [verify's pins] [--batch N] DIR\n"
    "       cpx-audit init-db (--dsn DSN | --print) [--grant ROLE]\n"
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
    "        certificate of the CA (serverAuth). In the log of one broker\n"
    "        (a directory) the first signer stands for the broker: a\n"
    "        change of signer fails unless a pin vouches for the new one.\n"
    "        In a log several brokers share (--dsn, or --multi-broker for\n"
    "        a directory exported from a database: the operator says so,\n"
    "        a log cannot) every broker certificate of the CA may sign,\n"
    "        and the checkpoints are counted per broker. --broker-cert\n"
    "        FILE (repeatable) pins the broker certificate(s);\n"
    "        --broker-name NAME (repeatable, needs --ca) admits any CA\n"
    "        broker certificate carrying NAME in its subjectAltName; with\n"
    "        a pin every signer must satisfy one. Every change of signer\n"
    "        (shared log: every new signer) is printed. Prints a summary\n"
    "        with the mark (database: the head row) it checked; on\n"
    "        failure names the first bad record and exits 1. Exits 3 if\n"
    "        the log is sound as far as checked but neither --ca nor\n"
    "        --chain-only was given.\n"
    "        Witnesses (docs/witness.md): each checkpoint's cosignatures\n"
    "        are checked and the countries that cosigned it listed;\n"
    "        --require-witnesses N (needs --ca) fails unless a checkpoint\n"
    "        is cosigned by N countries, no witness raised an alarm, and\n"
    "        the records after the newest such checkpoint span at most\n"
    "        --witness-grace SECONDS (default 3600).\n"
    "        --dsn DSN reads a PostgreSQL store instead of DIR (read-only;\n"
    "        a read-only role suffices), from record 1 to the head it\n"
    "        finds when it starts; records brokers commit meanwhile are\n"
    "        for the next run. Output and exit status are the same.\n"
    "dump    print each record from sequence SEQ on (default: the first)\n"
    "        as one JSON object per line, as cpx replay --all-kinds --json\n"
    "        does (see docs/json.md), from DIR or the database DSN.\n"
    "export  write the log of the database DSN (up to its head when export\n"
    "        starts) into DIR, which must not exist or be empty, as\n"
    "        segment files with a high-water mark, with the same bytes,\n"
    "        seqs, times and chain: cpx-audit verify --multi-broker DIR\n"
    "        then finds the same head and checkpoints offline. Each\n"
    "        record is checked to come out byte for byte and the chain\n"
    "        against the database's; a difference fails naming the seq.\n"
    "        Prints the head (seq and hash).\n"
    "import  move the log in DIR (a single broker's, stopped) into the\n"
    "        database DSN, which must hold the schema (init-db) and no\n"
    "        record (a non-empty one is refused, naming its head seq).\n"
    "        DIR is verified first, with verify's options (and output);\n"
    "        nothing is imported unless that passes. Records go in with\n"
    "        their own seqs, times and hashes, N per transaction\n"
    "        (--batch, default 1000, at most 5000);\n"
    "        prints the database's head after it, which equals DIR's last\n"
    "        seq and hash. Stop every broker on the database meanwhile: a\n"
    "        head that moves under the import fails it.\n"
    "init-db create the schema in the database DSN (as its owner, e.g.\n"
    "        cpx_admin; nothing is done if a cpx schema is there) and\n"
    "        print the GRANTs a broker's role needs (least privilege:\n"
    "        SELECT on cpx_schema, SELECT and INSERT on cpx_records, SELECT\n"
    "        and UPDATE on cpx_head; no UPDATE or DELETE of a record);\n"
    "        --grant ROLE runs them for ROLE. --print prints the schema's\n"
    "        SQL and the GRANTs without connecting. A role for cpx-audit\n"
    "        verify, dump and export needs SELECT on the three tables.\n"
    "\n"
    "DSN: a libpq connection string, e.g. 'host=db1,db2 dbname=cpx\n"
    "user=cpx_audit target_session_attrs=any'; the password comes from\n"
    "PGPASSFILE or ~/.pgpass, never from the command line. Messages name\n"
    "the database by host, port, dbname and user only.\n"
    "\n"
    "Exit status: 0 sound (or done), 1 the log is bad, a file cannot be\n"
    "read or written, or the database refused or could not be reached,\n"
    "2 usage error, 3 verify checked the chain only (no --ca, no\n"
    "--chain-only).\n"
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

/* "store: postgresql (host=... dbname=... user=...)" for a DSN. */
static void
print_store(const char *dsn)
{
	char	desc[256];

	audit_pg_describe(dsn, desc, sizeof(desc));
	printf("store: postgresql (%s)\n", desc);
}

static int
cmd_dump(int argc, char **argv)
{
	static const struct option	opts[] = {
		{ "from-seq", required_argument, NULL, 'f' },
		/* Else getopt takes --from for --from-seq: not a country. */
		{ "from", required_argument, NULL, 'F' },
		{ "dsn", required_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct audit		*a = NULL;
	struct audit_cursor	*c = NULL;
	Cpx__AuditRecord	*rec = NULL;
	json_t			*o;
	const char		*dsn = NULL;
	char			*line = NULL;
	uint64_t		 from = 0;
	char			 err[768];
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
		case 'd':
			dsn = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (argc - optind != (dsn == NULL ? 1 : 0)) {
		if (dsn != NULL)
			fprintf(stderr, "cpx-audit: dump: a directory or "
			    "--dsn, not both\n");
		usage(stderr);
		return EXIT_USAGE;
	}
	if (dsn != NULL) {
		if ((a = audit_open_pg(dsn, NULL, NULL, 0, err,
		    sizeof(err))) != NULL)
			c = audit_cursor_new(a, from, 0, err, sizeof(err));
	} else
		c = audit_cursor_open_dir(argv[optind], from, 0, err,
		    sizeof(err));
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
	audit_close(&a);
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
	const int	*multi = arg;

	(void)from;
	if (*multi)
		printf("checkpoint signer first seen at record %" PRIu64
		    ": sha256 %s (%s)\n", seq, to, desc);
	else
		printf("checkpoint signer changed at record %" PRIu64
		    ": sha256 %s -> sha256 %s (%s)\n", seq, from, to, desc);
}

#define MAX_BROKER_CERTS	8
#define MAX_BROKER_NAMES	8

/* verify's options (import verifies with them first). */
struct vargs {
	const char			*ca, *crl, *dsn, *dir;
	X509				*pins[MAX_BROKER_CERTS];
	const char			*names[MAX_BROKER_NAMES];
	struct audit_verify_opts	 vo;
	int				 chain_only;
	uint64_t			 require, grace;
	uint64_t			 batch;		/* import */
	/* What the check found (import: the broker's name). */
	struct audit_verify_stats	 st;
};

/* A zeroed struct vargs (owned; vargs_end), or NULL (said). */
static struct vargs *
vargs_new(void)
{
	struct vargs	*va;

	if ((va = calloc(1, sizeof(*va))) == NULL)
		fprintf(stderr, "cpx-audit: out of memory\n");
	return va;
}

/*
 * Free va and flush stdout: ret, the command's exit status, or EXIT_BAD
 * if it was 0 but its output could not be written.
 */
static int
vargs_end(struct vargs *va, int ret)
{
	size_t	i;

	for (i = 0; i < MAX_BROKER_CERTS; i++)
		X509_free(va->pins[i]);
	free(va);
	if (fflush(stdout) == EOF && ret == 0)
		ret = EXIT_BAD;
	return ret;
}

/* A database command failed: say so on both streams. EXIT_BAD. */
static int
store_failed(const char *what, const char *err)
{
	printf("FAILED\n");
	fprintf(stderr, "cpx-audit: %s: %s\n", what, err);
	return EXIT_BAD;
}

/*
 * Parse verify's (and import's) arguments into *va. Returns -1 if they
 * are good, else the exit status (0 after --help).
 */
static int
parse_vargs(int argc, char **argv, struct vargs *va, int import)
{
	static const struct option	opts[] = {
		{ "ca", required_argument, NULL, 'c' },
		{ "crl", required_argument, NULL, 'r' },
		{ "broker-cert", required_argument, NULL, 'b' },
		{ "broker-name", required_argument, NULL, 'n' },
		{ "multi-broker", no_argument, NULL, 'm' },
		{ "chain-only", no_argument, NULL, 'o' },
		{ "require-witnesses", required_argument, NULL, 'W' },
		{ "witness-grace", required_argument, NULL, 'G' },
		{ "dsn", required_argument, NULL, 'd' },
		{ "batch", required_argument, NULL, 'B' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	char	err[512];
	int	ch, bad;

	memset(va, 0, sizeof(*va));
	va->grace = AUDIT_COSIGN_GRACE_MS / 1000;
	va->vo.broker_certs = va->pins;
	va->vo.broker_names = va->names;
	va->vo.on_signer_change = on_signer_change;
	va->vo.arg = &va->vo.multi_broker;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "c:r:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			va->ca = optarg;
			break;
		case 'r':
			va->crl = optarg;
			break;
		case 'b':
			if (va->vo.nbroker_certs == MAX_BROKER_CERTS) {
				fprintf(stderr, "cpx-audit: at most %d "
				    "--broker-cert\n", MAX_BROKER_CERTS);
				return EXIT_USAGE;
			}
			if ((va->pins[va->vo.nbroker_certs] =
			    tlsctx_load_cert(optarg, err, sizeof(err))) ==
			    NULL) {
				fprintf(stderr, "cpx-audit: --broker-cert: "
				    "%s\n", err);
				return EXIT_BAD;
			}
			va->vo.nbroker_certs++;
			break;
		case 'n':
			if (va->vo.nbroker_names == MAX_BROKER_NAMES) {
				fprintf(stderr, "cpx-audit: at most %d "
				    "--broker-name\n", MAX_BROKER_NAMES);
				return EXIT_USAGE;
			}
			va->names[va->vo.nbroker_names++] = optarg;
			break;
		case 'm':
			va->vo.multi_broker = 1;
			break;
		case 'o':
			va->chain_only = 1;
			break;
		case 'd':
			va->dsn = optarg;
			break;
		case 'B':
			if (!import || parse_seq(optarg, &va->batch) == -1 ||
			    va->batch == 0 ||
			    va->batch > AUDIT_PORT_BATCH_MAX) {
				fprintf(stderr, "cpx-audit: --batch: import's "
				    "records per transaction, 1 to 5000, not "
				    "%s\n", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'W':
		case 'G':
			if (parse_seq(optarg, ch == 'W' ? &va->require :
			    &va->grace) == -1 || va->require > 256 ||
			    va->grace > 365 * 86400) {
				fprintf(stderr, "cpx-audit: --%s: a number "
				    "(countries up to 256, seconds up to a "
				    "year), not %s\n", ch == 'W' ?
				    "require-witnesses" : "witness-grace",
				    optarg);
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
	bad = 0;
	if (import && va->dsn == NULL) {
		fprintf(stderr, "cpx-audit: import needs --dsn (the database "
		    "to import into)\n");
		bad = 1;
	}
	if (import && va->ca == NULL && !va->chain_only) {
		fprintf(stderr, "cpx-audit: import verifies DIR first: give "
		    "--ca ca.pem (or --chain-only)\n");
		bad = 1;
	}
	if (argc - optind != (va->dsn == NULL || import ? 1 : 0)) {
		if (va->dsn != NULL && !import)
			fprintf(stderr, "cpx-audit: verify: a directory or "
			    "--dsn, not both\n");
		bad = 1;
	}
	if (va->require > 0 && va->ca == NULL) {
		fprintf(stderr, "cpx-audit: --require-witnesses needs "
		    "--ca (a cosignature counts only if the CA "
		    "vouches for its witness)\n");
		bad = 1;
	}
	if (va->chain_only && va->ca != NULL) {
		fprintf(stderr, "cpx-audit: --chain-only and --ca "
		    "contradict each other\n");
		bad = 1;
	}
	if (va->crl != NULL && va->ca == NULL) {
		fprintf(stderr, "cpx-audit: --crl needs --ca\n");
		bad = 1;
	}
	if (va->vo.nbroker_names > 0 && va->ca == NULL) {
		fprintf(stderr, "cpx-audit: --broker-name needs --ca "
		    "(the name is only worth what the CA vouches)\n");
		bad = 1;
	}
	if (bad) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (optind < argc)
		va->dir = argv[optind];
	return -1;
}

/* "12 by broker-a, 9 by broker-b": checkpoints per signer. */
static void
print_signers(const struct audit_verify_stats *st)
{
	size_t	i, j;
	int	dup;
	char	h[65];

	for (i = 0; i < st->nsigners; i++) {
		/* Two keys under one name (a renewal): tell them apart. */
		for (dup = 0, j = 0; j < st->nsigners; j++)
			dup |= j != i && strcmp(st->signers[i].name,
			    st->signers[j].name) == 0;
		sign_hex(st->signers[i].fpr, 4, h);
		printf("%s%" PRIu64 " by %s%s%s%s", i > 0 ? ", " : "",
		    st->signers[i].checkpoints, st->signers[i].name,
		    dup ? " (sha256 " : "", dup ? h : "", dup ? "...)" : "");
	}
	if (st->other_signed > 0)
		printf(", %" PRIu64 " by signers beyond the first %d",
		    st->other_signed, AUDIT_VERIFY_SIGNERS);
}

/*
 * Verify the log va names (a directory, or va->dsn), print the summary.
 * Returns the exit status.
 */
static int
run_verify(struct vargs *va)
{
	struct audit_verify_stats	*st = &va->st;
	struct audit			*a = NULL;
	struct trust			*t = NULL;
	const char			*dsn;
	char				 err[768];
	char				 h[2 * AUDIT_HASH_LEN + 1];
	int				 ok, pinned, ret = EXIT_BAD;

	dsn = va->dir != NULL ? NULL : va->dsn;
	if (va->ca != NULL && (t = trust_new(va->ca, va->crl, err,
	    sizeof(err))) == NULL) {
		fprintf(stderr, "cpx-audit: %s\n", err);
		goto done;
	}
	if ((va->vo.cosign = audit_cosign_new(t, (unsigned int)va->require,
	    (int64_t)va->grace * 1000)) == NULL) {
		fprintf(stderr, "cpx-audit: out of memory\n");
		goto done;
	}
	if (dsn != NULL) {
		print_store(dsn);
		if ((a = audit_open_pg(dsn, NULL, NULL, 0, err,
		    sizeof(err))) == NULL) {
			printf("FAILED\n");
			fprintf(stderr, "cpx-audit: %s\n", err);
			goto done;
		}
		/* A database is the log several brokers share. */
		va->vo.multi_broker = 1;
		ok = audit_verify_store(a, t, &va->vo, st, err,
		    sizeof(err)) == 0;
	} else
		ok = audit_verify_dir_opts(va->dir, t, &va->vo, st, err,
		    sizeof(err)) == 0;
	pinned = va->vo.nbroker_certs > 0 || va->vo.nbroker_names > 0;
	sign_hex(st->last_hash, AUDIT_HASH_LEN, h);
	if (dsn == NULL)
		printf("segments: %" PRIu64 "\n", st->segments);
	printf("records: %" PRIu64 "%s\n", st->records,
	    ok ? "" : " (valid before the bad one)");
	printf("alerts: %" PRIu64 "%s\n", st->alerts, t == NULL ?
	    " (signatures not checked: no --ca)" : "");
	printf("checkpoints: %" PRIu64, st->checkpoints);
	if (st->nsigners > 0) {
		printf(" (");
		print_signers(st);
		printf(")");
	}
	printf("%s\n", t == NULL ? " (certificates not checked: no --ca)" :
	    "");
	if (va->vo.multi_broker && st->nsigners > 0)
		printf("checkpoint signers: %zu broker(s)%s\n", st->nsigners,
		    pinned ? " (pinned)" : t != NULL ? " (any broker "
		    "certificate of the CA: give --broker-cert or "
		    "--broker-name to pin)" : "");
	else if (st->checkpoint_cert[0] != '\0')
		printf("checkpoint signer: sha256 %s%s\n", st->checkpoint_cert,
		    pinned ? " (pinned)" : t != NULL ? " (not pinned: give "
		    "--broker-cert or --broker-name)" : "");
	if (st->signer_changes > 0 && !va->vo.multi_broker)
		printf("checkpoint signer changes: %" PRIu64 "\n",
		    st->signer_changes);
	printf("last seq: %" PRIu64 "\n", st->last_seq);
	printf("last hash: %s\n", h);
	if (dsn != NULL && st->mark_found) {
		sign_hex(st->mark_hash, AUDIT_HASH_LEN, h);
		printf("head: %" PRIu64 " committed, hash %s\n", st->mark_seq,
		    h);
	} else if (dsn == NULL && st->mark_found) {
		sign_hex(st->mark_hash, AUDIT_HASH_LEN, h);
		printf("high-water mark: %" PRIu64 " committed, hash %s, "
		    "trusted checkpoint %" PRIu64 "\n", st->mark_seq, h,
		    st->mark_trusted);
	} else if (dsn == NULL)
		printf("high-water mark: none\n");
	if (st->torn_bytes > 0)
		printf("torn tail: %" PRIu64 " bytes, never acknowledged "
		    "(the broker cuts it when it starts)\n", st->torn_bytes);
	if (!ok || audit_cosign_report(va->vo.cosign, err,
	    sizeof(err)) == -1) {
		printf("FAILED\n");
		fprintf(stderr, "cpx-audit: %s\n", err);
		goto done;
	}
	if (t == NULL) {
		/* Not "OK": the alerts, the bulk of the log, are unchecked. */
		printf("CHAIN ONLY: the chain, its length and the checkpoints "
		    "against their own certificates are sound; %" PRIu64
		    " alert signature(s) and every certificate were not "
		    "checked (give --ca)\n", st->alerts);
		if (!va->chain_only) {
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
	audit_close(&a);
	audit_cosign_free(&va->vo.cosign);
	trust_free(&t);
	return ret;
}

static int
cmd_verify(int argc, char **argv)
{
	struct vargs	*va;
	int		 ret;

	if ((va = vargs_new()) == NULL)
		return EXIT_BAD;
	if ((ret = parse_vargs(argc, argv, va, 0)) == -1)
		ret = run_verify(va);
	return vargs_end(va, ret);
}

static int
cmd_import(int argc, char **argv)
{
	struct audit_port_result	 res;
	struct vargs			*va;
	const char			*broker;
	char				 err[1024];
	char				 h[2 * AUDIT_HASH_LEN + 1];
	int				 ret;

	if ((va = vargs_new()) == NULL)
		return EXIT_BAD;
	if ((ret = parse_vargs(argc, argv, va, 1)) != -1)
		goto done;
	/* Nothing goes into the database that does not verify. */
	printf("verifying %s\n", va->dir);
	if ((ret = run_verify(va)) != 0) {
		fprintf(stderr, "cpx-audit: %s does not verify: nothing "
		    "imported\n", va->dir);
		goto done;
	}
	print_store(va->dsn);
	/* Rows before the first checkpoint: its signer wrote them. */
	broker = va->st.nsigners > 0 ? va->st.signers[0].name : "";
	if (audit_port_import(va->dir, va->dsn, (size_t)va->batch, broker,
	    &res, err, sizeof(err)) == -1) {
		ret = store_failed("import", err);
		goto done;
	}
	if (res.records != va->st.last_seq) {
		printf("FAILED\n");
		fprintf(stderr, "cpx-audit: import: %" PRIu64 " records "
		    "imported but %s verified to seq %" PRIu64 " (did a "
		    "broker write to it meanwhile?)\n", res.records, va->dir,
		    va->st.last_seq);
		ret = EXIT_BAD;
		goto done;
	}
	sign_hex(res.last_hash, AUDIT_HASH_LEN, h);
	printf("imported: %" PRIu64 " records in %" PRIu64
	    " transaction(s)\n", res.records, res.batches);
	printf("database head: seq %" PRIu64 ", hash %s\n", res.last_seq, h);
	printf("OK\n");
	ret = 0;
done:
	return vargs_end(va, ret);
}

static int
cmd_export(int argc, char **argv)
{
	static const struct option	opts[] = {
		{ "dsn", required_argument, NULL, 'd' },
		{ "out", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct audit_port_result	 res;
	const char			*dsn = NULL, *out = NULL;
	char				 err[1024];
	char				 h[2 * AUDIT_HASH_LEN + 1];
	int				 ch;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case 'd':
			dsn = optarg;
			break;
		case 'o':
			out = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (out == NULL && argc - optind == 1)
		out = argv[optind++];
	if (dsn == NULL || out == NULL || optind != argc) {
		fprintf(stderr, "cpx-audit: export needs --dsn DSN and one "
		    "directory (--out DIR)\n");
		usage(stderr);
		return EXIT_USAGE;
	}
	print_store(dsn);
	if (audit_port_export(dsn, out, &res, err, sizeof(err)) == -1)
		return store_failed("export", err);
	sign_hex(res.last_hash, AUDIT_HASH_LEN, h);
	printf("exported: %" PRIu64 " records to %s\n", res.records, out);
	printf("head: seq %" PRIu64 ", hash %s\n", res.last_seq, h);
	printf("check it offline: cpx-audit verify --ca ca.pem "
	    "--multi-broker %s\n", out);
	printf("OK\n");
	return fflush(stdout) == EOF ? EXIT_BAD : 0;
}

static int
cmd_init_db(int argc, char **argv)
{
	static const struct option	opts[] = {
		{ "dsn", required_argument, NULL, 'd' },
		{ "grant", required_argument, NULL, 'g' },
		{ "print", no_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char	*dsn = NULL, *role = NULL;
	char		 err[1024], g[1024];
	int		 ch, print = 0, created, version;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case 'd':
			dsn = optarg;
			break;
		case 'g':
			role = optarg;
			break;
		case 'p':
			print = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind != argc || (dsn == NULL) == !print) {
		fprintf(stderr, "cpx-audit: init-db needs --dsn DSN, or "
		    "--print\n");
		usage(stderr);
		return EXIT_USAGE;
	}
	if (audit_port_grants(role != NULL ? role : "cpx_broker", g,
	    sizeof(g), err, sizeof(err)) == -1) {
		fprintf(stderr, "cpx-audit: %s\n", err);
		return EXIT_USAGE;
	}
	if (print) {
		printf("%s\n-- the broker's role (least privilege):\n%s",
		    audit_pg_schema_sql(), g);
		return fflush(stdout) == EOF ? EXIT_BAD : 0;
	}
	print_store(dsn);
	if (audit_port_init_db(dsn, role, &created, &version, err,
	    sizeof(err)) == -1)
		return store_failed("init-db", err);
	printf("schema: version %d %s\n", version, created ? "created" :
	    "already there, left as it is");
	if (role != NULL)
		printf("granted to %s:\n%s", role, g);
	else
		printf("the GRANTs a broker's role needs (--grant ROLE runs "
		    "them):\n%s", g);
	printf("OK\n");
	return fflush(stdout) == EOF ? EXIT_BAD : 0;
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
	if (strcmp(argv[1], "export") == 0)
		return cmd_export(argc - 1, argv + 1);
	if (strcmp(argv[1], "import") == 0)
		return cmd_import(argc - 1, argv + 1);
	if (strcmp(argv[1], "init-db") == 0)
		return cmd_init_db(argc - 1, argv + 1);
	fprintf(stderr, "cpx-audit: unknown command: %s\n", argv[1]);
	usage(stderr);
	return EXIT_USAGE;
}
