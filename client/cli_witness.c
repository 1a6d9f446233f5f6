/*
 * cli_witness.c: `cpx witness`, a node that watches the broker's log on
 * behalf of its country (docs/witness.md): each round checks that the
 * broker's newest signed checkpoint extends the one accepted before and
 * countersigns it (cpx_witness_round); an inconsistency is an alarm on
 * stderr, in the broker's log and in an evidence file, and exit status
 * 5. `cpx witness compare` sets two witnesses' signed heads side by side
 * offline (cpx_witness_compare).
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "log.h"

#define WITNESS_TIMEOUT_MS	30000

enum {
	OPT_STATE_FILE = CLI_OPT_FIRST_COMMAND,
	OPT_ONCE,
	OPT_INTERVAL
};

static const struct option witness_longopts[] = {
	CLI_COMMON_LONGOPTS,
	{ "state-file",	required_argument, NULL, OPT_STATE_FILE },
	{ "once",	no_argument,	   NULL, OPT_ONCE },
	{ "interval",	required_argument, NULL, OPT_INTERVAL },
	{ NULL, 0, NULL, 0 }
};

static void
witness_usage(FILE *out)
{
	fprintf(out,
"usage: cpx witness --state-file FILE [--once | --interval SECONDS] [options]\n"
"       cpx witness compare [--ca FILE] FILE FILE...\n"
"\n"
"Witness the broker's audit log for this node's country (it needs the\n"
"right `witness` in the broker's policy). Each round fetches the broker's\n"
"newest signed checkpoint and the digest of every record since the one\n"
"accepted last (no content), recomputes the hash chain, checks the other\n"
"witnesses' cosignatures the broker passes on, countersigns with this\n"
"node's key and saves the new head in FILE (mode 0600, replaced\n"
"atomically). Keep FILE: it is what the next round is checked against.\n"
"\n"
"If the broker presents a checkpoint that does not extend the one in FILE\n"
"(records cut, a record rewritten, or another witness shown a different\n"
"log), nothing is cosigned, FILE is left as it was, an ALARM line goes to\n"
"stderr, both signed checkpoints are saved in FILE.alarm-TIME to show to\n"
"others, the broker is sent the alarm for its own log, and cpx exits 5.\n"
"\n"
"  --state-file FILE     the witness state (created on the first round)\n"
"  --once                one round, then exit (the default)\n"
"  --interval SECONDS    a round every SECONDS until SIGINT/SIGTERM\n"
"\n"
"compare: read witness state and evidence files (from any country) and\n"
"prove a fork or rollback from the broker's own signatures: one seq with\n"
"two hashes, two checkpoints over one seq, or a longer log signed before\n"
"a shorter one. Heads at different seqs prove nothing alone (the records\n"
"between them are not in the files). --ca requires each signer to be a\n"
"broker certificate of that CA: without it, anyone could have made the\n"
"files. Exit 0 if nothing is proven, 5 if a fork or rollback is, 2 if a\n"
"file is bad.\n"
"\n%s\n"
"Exit status: 0 cosigned or unchanged; 1 refused (no witness right);\n"
"2 usage or set-up; 3 no session or no answer; 4 the state file cannot be\n"
"read or written; 5 ALARM: the log does not extend what this witness saw.\n"
"\n"
"Example:\n"
"  cpx witness --pki /etc/cpx --node hr-witness \\\n"
"      --state-file /var/lib/cpx/witness.state --interval 300\n",
	    cli_common_usage);
}

static int
compare(int argc, char **argv)
{
	const char	*ca = NULL;
	char		 report[8192];
	int		 i = 1, rc;

	if (i < argc && strcmp(argv[i], "--ca") == 0) {
		if (i + 1 >= argc) {
			fprintf(stderr, "cpx witness compare: --ca needs a "
			    "file\n");
			return CLI_EXIT_USAGE;
		}
		ca = argv[i + 1];
		i += 2;
	}
	if (argc - i < 1) {
		fprintf(stderr, "cpx witness compare: give the state or "
		    "evidence files to compare\n");
		return CLI_EXIT_USAGE;
	}
	rc = cpx_witness_compare((const char *const *)argv + i,
	    (size_t)(argc - i), ca, report, sizeof(report));
	fputs(report, rc == -1 ? stderr : stdout);
	if (fflush(stdout) == EOF)
		return CLI_EXIT_LOCAL;
	return rc == 1 ? CLI_EXIT_ALARM : rc == 0 ? CLI_EXIT_OK :
	    CLI_EXIT_USAGE;
}

/* One round, reported. Returns an exit code, or -1 to go on. */
static int
round_once(struct cpx_client *c, const char *state, int interval)
{
	struct cpx_witness_result	res;
	int				rc;

	rc = cpx_witness_round(c, state, WITNESS_TIMEOUT_MS, &res);
	if (rc == 1) {
		/* Loud and specific: this is what the operator acts on. */
		fprintf(stderr, "cpx witness: ALARM %s: %s\n"
		    "cpx witness: state %s kept at seq %" PRIu64 "; evidence: "
		    "%s\n", res.alarm, res.text, state, res.held_seq,
		    res.evidence);
		log_warnx("witness ALARM %s: %s (evidence %s)", res.alarm,
		    res.text, res.evidence);
		return CLI_EXIT_ALARM;
	}
	if (rc == -1) {
		fprintf(stderr, "cpx witness: %s\n", res.text);
		if (res.local == 1)
			return CLI_EXIT_LOCAL;
		if (res.local == 2)
			return CLI_EXIT_REFUSED;
		return interval ? -1 : CLI_EXIT_CONNECT;
	}
	if (printf("%s\n", res.text) < 0 || fflush(stdout) == EOF)
		return CLI_EXIT_LOCAL;
	return interval ? -1 : CLI_EXIT_OK;
}

int
cli_witness(int argc, char **argv)
{
	struct cli_common	 co;
	struct cpx_client	*c = NULL;
	const char		*state = NULL;
	uint64_t		 interval = 0;
	int64_t			 next;
	int			 opt, code = CLI_EXIT_USAGE, rc;

	if (argc > 1 && strcmp(argv[1], "compare") == 0)
		return compare(argc - 1, argv + 1);
	cli_common_init(&co);
	optind = 1;
	while ((opt = getopt_long(argc, argv, "vh", witness_longopts,
	    NULL)) != -1) {
		switch (opt) {
		case 'h':
			witness_usage(stdout);
			return CLI_EXIT_OK;
		case OPT_STATE_FILE:
			state = optarg;
			break;
		case OPT_ONCE:
			interval = 0;
			break;
		case OPT_INTERVAL:
			if (cli_parse_u64(optarg, &interval) == -1 ||
			    interval == 0 || interval > 86400) {
				fprintf(stderr, "cpx witness: --interval: "
				    "seconds from 1 to 86400, not %s\n",
				    optarg);
				return CLI_EXIT_USAGE;
			}
			break;
		default:
			if (cli_common_opt(&co, opt, optarg) == 0)
				break;
			fprintf(stderr, "Try 'cpx witness --help'.\n");
			return CLI_EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "cpx witness: unexpected argument %s\n",
		    argv[optind]);
		return CLI_EXIT_USAGE;
	}
	if (state == NULL) {
		fprintf(stderr, "cpx witness: --state-file is required: the "
		    "witness must remember what it accepted\n");
		return CLI_EXIT_USAGE;
	}
	if ((c = cli_connect(&co, interval > 0, 10000, &code)) == NULL)
		goto done;
	for (;;) {
		if ((rc = round_once(c, state, interval > 0)) != -1) {
			code = rc;
			break;
		}
		next = cli_now_ms() + (int64_t)interval * 1000;
		while (!cli_stop_signal && cli_now_ms() < next &&
		    cpx_client_run(c, (int)(next - cli_now_ms())) != -1)
			;
		if (cli_stop_signal) {
			code = CLI_EXIT_OK;
			break;
		}
		if (cpx_client_welcome(c) == NULL && cpx_client_refused(c)) {
			fprintf(stderr, "cpx witness: %s\n",
			    cpx_client_error(c));
			code = CLI_EXIT_REFUSED;
			break;
		}
		/* Lost and not reconnecting by itself: try once more. */
		while (!cli_stop_signal && cpx_client_welcome(c) == NULL &&
		    cpx_client_run(c, 1000) != -1)
			;
		if (cpx_client_welcome(c) == NULL) {
			fprintf(stderr, "cpx witness: %s\n",
			    cpx_client_error(c));
			code = CLI_EXIT_CONNECT;
			break;
		}
	}
done:
	cpx_client_free(&c);
	return code;
}
