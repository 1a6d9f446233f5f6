/*
 * cpx_main.c: the command-line client cpx, what an analyst or a script
 * at a national contact point runs: `cpx publish`, `cpx subscribe`,
 * `cpx replay`, `cpx witness` and `cpx whoami`. This file dispatches
 * the commands and holds whoami; the others are in cli_publish.c,
 * cli_receive.c and cli_witness.c, the shared options in cli_common.c
 * (see cli.h).
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "cpx_version.h"

static void
usage(FILE *out)
{
	fprintf(out,
"usage: cpx COMMAND [options]\n"
"\n"
"The cpx client: publish and receive signed alerts through a cpx broker.\n"
"\n"
"Commands:\n"
"  publish     sign and publish an alert (from flags or a JSON file)\n"
"  subscribe   print alerts as they arrive (verified ones only)\n"
"  replay      print alerts (or audit records) from the broker's history\n"
"  whoami      connect and show who the broker thinks this node is\n"
"  witness     check and cosign the broker's signed log checkpoints\n"
"\n"
"Run 'cpx COMMAND --help' for a command's options and examples,\n"
"'cpx --version' for the version (\"cpx " CPX_VERSION "\").\n"
"\n%s\n"
"Exit status:\n"
"  0  done (published; --count or --timeout reached; replay complete;\n"
"     stopped by SIGINT/SIGTERM)\n"
"  1  refused by the broker: a request (\"refused (REASON): TEXT\" on\n"
"     stderr), or this node itself (certificate refused or revoked, no\n"
"     rights in the policy): retrying will not help; publish --stdin:\n"
"     some line refused or invalid\n"
"  2  usage or set-up error: bad flag or argument, an invalid alert,\n"
"     a --broker not of the form tcp://HOST:PORT, a missing or unusable\n"
"     key, certificate or CRL\n"
"  3  no session: broker unreachable (nothing listening is reported at\n"
"     once), or the connection lost before an answer: worth retrying\n"
"  4  local error: writing the output or the state file\n"
"  5  witness ALARM: the broker's log does not extend what this witness\n"
"     saw (cut, rewritten or forked); see 'cpx witness --help'\n"
"\n"
"Example:\n"
"  export CPX_BROKER=tcp://broker.example:7443 CPX_PKI=/etc/cpx \\\n"
"      CPX_NODE=si-ncp\n"
"  cpx whoami\n"
"  cpx publish --category crossing --severity critical --to HR \\\n"
"      --summary 'Group of 30 crossing the Kupa at Vinica'\n"
"  cpx subscribe --min-severity high\n",
	    cli_common_usage);
}

enum {
	OPT_JSON = CLI_OPT_FIRST_COMMAND
};

static const struct option whoami_longopts[] = {
	CLI_COMMON_LONGOPTS,
	{ "json",	no_argument,	NULL, OPT_JSON },
	{ NULL, 0, NULL, 0 }
};

static void
whoami_usage(FILE *out)
{
	fprintf(out,
"usage: cpx whoami [options]\n"
"\n"
"Connect and print the broker's Welcome: this node's country and name as\n"
"the broker read them from the certificate, its rights, the broker's name\n"
"and its newest audit sequence. A quick check that the certificate, key,\n"
"CA and broker address all work.\n"
"\n"
"  --json                print the Welcome as one JSON object\n"
"\n%s\n"
"Example:\n"
"  cpx whoami --pki /etc/cpx --node si-ncp --broker tcp://broker:7443\n",
	    cli_common_usage);
}

static int
whoami(int argc, char **argv)
{
	struct cli_common co;
	struct cpx_client *c = NULL;
	const Cpx__Welcome *w;
	json_t *o = NULL;
	char *line = NULL;
	char b[CPX_MAX_NODE_NAME + 1], n[CPX_MAX_NODE_NAME + 1], cc[8];
	char v[32];
	int opt, code = CLI_EXIT_USAGE, json_out = 0, ok;

	cli_common_init(&co);
	optind = 1;
	while ((opt = getopt_long(argc, argv, "vh", whoami_longopts,
	    NULL)) != -1) {
		switch (opt) {
		case 'h':
			whoami_usage(stdout);
			return CLI_EXIT_OK;
		case OPT_JSON:
			json_out = 1;
			break;
		default:
			if (cli_common_opt(&co, opt, optarg) == 0)
				break;
			fprintf(stderr, "Try 'cpx whoami --help'.\n");
			return CLI_EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "cpx whoami: unexpected argument %s\n",
		    argv[optind]);
		return CLI_EXIT_USAGE;
	}
	if ((c = cli_connect(&co, 0, 10000, &code)) == NULL)
		goto done;
	w = cpx_client_welcome(c);
	/* The broker's strings are sanitised: they reach a terminal. */
	cli_sanitize(w->broker_name, b, sizeof(b));
	cli_sanitize(w->node, n, sizeof(n));
	cli_sanitize(w->country, cc, sizeof(cc));
	cli_sanitize(w->broker_version, v, sizeof(v));
	if (json_out) {
		o = json_pack("{s:s, s:s, s:s, s:s, s:b, s:b, s:b, s:b, s:I, "
		    "s:i, s:i}", "country", cc, "node", n, "broker", b,
		    "broker_version", v,
		    "publish", w->may_publish, "subscribe", w->may_subscribe,
		    "audit", w->may_audit, "witness", w->may_witness,
		    "last_seq", (json_int_t)w->last_seq,
		    "max_frame", (int)w->max_frame,
		    "ping_interval", (int)w->ping_interval);
		if (o == NULL || (line = json_dumps(o, JSON_COMPACT |
		    JSON_PRESERVE_ORDER)) == NULL) {
			fprintf(stderr, "cpx whoami: out of memory\n");
			code = CLI_EXIT_LOCAL;
			goto done;
		}
		ok = printf("%s\n", line) >= 0;
	} else
		ok = printf("country:   %s\n"
		    "node:      %s\n"
		    "rights:    %s%s%s%s%s\n"
		    "broker:    %s at %s (cpx %s)\n"
		    "last seq:  %" PRIu64 "\n",
		    cc, n,
		    w->may_publish ? "publish " : "",
		    w->may_subscribe ? "subscribe " : "",
		    w->may_audit ? "audit " : "",
		    w->may_witness ? "witness" : "",
		    !w->may_publish && !w->may_subscribe && !w->may_audit &&
		    !w->may_witness ? "(none)" : "", b, cpx_client_endpoint(c),
		    v[0] ? v : "before 0.2", w->last_seq) >= 0 &&
		    cli_print_broker_checks(&co, c, stdout) == 0;
	code = ok && fflush(stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_LOCAL;
done:
	free(line);
	json_decref(o);
	cpx_client_free(&c);
	return code;
}

int
main(int argc, char **argv)
{
	const char *cmd;

	if (argc < 2) {
		usage(stderr);
		return CLI_EXIT_USAGE;
	}
	cmd = argv[1];
	if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 ||
	    strcmp(cmd, "help") == 0) {
		usage(stdout);
		return CLI_EXIT_OK;
	}
	if (strcmp(cmd, "-V") == 0 || strcmp(cmd, "--version") == 0) {
		printf("cpx %s\n", CPX_VERSION);
		return CLI_EXIT_OK;
	}
	/*
	 * Each command sees its name as argv[0], as getopt expects (and
	 * prints in its messages).
	 */
	if (strcmp(cmd, "publish") == 0) {
		argv[1] = "cpx publish";
		return cli_publish(argc - 1, argv + 1);
	}
	if (strcmp(cmd, "subscribe") == 0) {
		argv[1] = "cpx subscribe";
		return cli_subscribe(argc - 1, argv + 1);
	}
	if (strcmp(cmd, "replay") == 0) {
		argv[1] = "cpx replay";
		return cli_replay(argc - 1, argv + 1);
	}
	if (strcmp(cmd, "witness") == 0) {
		argv[1] = "cpx witness";
		return cli_witness(argc - 1, argv + 1);
	}
	if (strcmp(cmd, "whoami") == 0) {
		argv[1] = "cpx whoami";
		return whoami(argc - 1, argv + 1);
	}
	fprintf(stderr, "cpx: unknown command %s\nTry 'cpx --help'.\n", cmd);
	return CLI_EXIT_USAGE;
}
