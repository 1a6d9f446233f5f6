/*
 * cli_receive.c: `cpx subscribe` and `cpx replay`, the two commands that
 * print deliveries. Only alerts whose signature the library verified
 * against the network CA are shown, and only through alert_json's
 * sanitised printers; an alert that fails verification is reported on
 * stderr by sequence number, never shown, so a compromised broker cannot
 * put words in a country's mouth. Audit records (replay --all-kinds) are
 * printed with lib/json_out.c, as cpx-audit dump prints them from disk.
 * Also owns the subscriber's state file updates and the replay progress
 * bar.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "alert.h"
#include "alert_json.h"
#include "cli.h"
#include "json_out.h"
#include "log.h"

#define CONNECT_TIMEOUT_MS	10000
#define PROGRESS_EVERY_MS	100	/* at most 10 redraws a second */
#define PROGRESS_WIDTH		30

struct recv_ctx {
	struct cpx_client	*c;
	int			 json_out;
	int			 is_replay;
	uint64_t		 request_id;
	uint64_t		 max_count;	/* 0: no limit */
	uint64_t		 shown;
	uint64_t		 unverified;
	uint64_t		 last_seq;	/* last delivery handled */
	const char		*state_file;
	int			 exit_code;	/* set when the loop must end */
	int			 finished;
	int			 saw_error;
	/*
	 * A lost connection is told once, after the library has decided
	 * whether to reconnect: "...; reconnecting", or the final error.
	 */
	char			 lost_text[CPX_MAX_ERROR_TEXT + 64];
	/* replay */
	uint64_t		 end_count;
	uint64_t		 end_seq;
	int			 progress;	/* tty, and total known */
	uint64_t		 p_start;
	uint64_t		 p_total;
	int64_t			 p_last_ms;
	int			 p_drawn;
};

enum {
	OPT_JSON = CLI_OPT_FIRST_COMMAND,
	OPT_COUNT,
	OPT_TIMEOUT,
	OPT_STATE_FILE,
	OPT_AFTER,
	OPT_FROM_SEQ,
	OPT_FROM_TIME,
	OPT_TO_SEQ,
	OPT_TO_TIME,
	OPT_ALL_KINDS
};

static const struct option sub_longopts[] = {
	CLI_COMMON_LONGOPTS,
	CLI_FILTER_LONGOPTS,
	{ "json",	no_argument,	   NULL, OPT_JSON },
	{ "count",	required_argument, NULL, OPT_COUNT },
	{ "timeout",	required_argument, NULL, OPT_TIMEOUT },
	{ "state-file",	required_argument, NULL, OPT_STATE_FILE },
	{ "after",	required_argument, NULL, OPT_AFTER },
	{ NULL, 0, NULL, 0 }
};

static const struct option replay_longopts[] = {
	CLI_COMMON_LONGOPTS,
	CLI_FILTER_LONGOPTS,
	{ "json",	no_argument,	   NULL, OPT_JSON },
	{ "timeout",	required_argument, NULL, OPT_TIMEOUT },
	{ "from-seq",	required_argument, NULL, OPT_FROM_SEQ },
	{ "from-time",	required_argument, NULL, OPT_FROM_TIME },
	{ "to-seq",	required_argument, NULL, OPT_TO_SEQ },
	{ "to-time",	required_argument, NULL, OPT_TO_TIME },
	{ "all-kinds",	no_argument,	   NULL, OPT_ALL_KINDS },
	{ NULL, 0, NULL, 0 }
};

static void
sub_usage(FILE *out)
{
	fprintf(out,
"usage: cpx subscribe [options] [filters]\n"
"\n"
"Print each alert as it arrives: verified alerts only (one that fails\n"
"verification is reported on stderr as \"seq N: refused to show alert:\n"
"WHY\" and never shown). Reconnects and resumes by itself after a network\n"
"break or a broker restart. Stops on SIGINT/SIGTERM, --count or --timeout\n"
"(exit 0).\n"
"\n"
"Options:\n"
"  --json                one JSON line per alert (flushed), for scripts\n"
"  --count N             stop after N alerts shown\n"
"  --timeout S           stop after S seconds (exit 0; stderr says how\n"
"                        many were shown and the last seq)\n"
"  --state-file FILE     resume after the sequence in FILE, and record each\n"
"                        alert's sequence there (atomically) once it is\n"
"                        printed. At least once: an alert printed just\n"
"                        before cpx was killed may be printed again after a\n"
"                        restart; none is missed, and none at or below the\n"
"                        sequence in FILE is ever printed again. Every alert\n"
"                        carries its seq (\"#N\", or \"seq\" in --json): a\n"
"                        consumer that stores the last seq it acted on, with\n"
"                        its own effect, skips repeats (exactly once; see\n"
"                        docs/json.md). A new FILE starts with the whole\n"
"                        history (or --after N). Only a verified alert moves\n"
"                        it; a FILE past the broker's newest sequence is\n"
"                        refused (exit 4)\n"
"  --after N             first deliver every matching alert after sequence N\n"
"                        from history, then live ones\n"
"\n%s\n%s\n"
"Examples:\n"
"  cpx subscribe --pki pki --node hr-ncp\n"
"  cpx subscribe --pki pki --node hr-ncp --min-severity high \\\n"
"      --region western-balkans --or --from SI --category vehicle\n"
"  cpx subscribe --json --state-file /var/lib/cpx/hr.seq | alert-handler\n",
	    cli_filter_usage, cli_common_usage);
}

static void
replay_usage(FILE *out)
{
	fprintf(out,
"usage: cpx replay [options] [filters]\n"
"\n"
"Print the alerts of the broker's history this node is entitled to,\n"
"verified like live ones, then \"end of replay: N record(s), last seq M\"\n"
"on stderr. With a terminal on stderr a progress bar is shown.\n"
"\n"
"Options:\n"
"  --from-seq N          first sequence (default: the start)\n"
"  --to-seq N            last sequence (default: now)\n"
"  --from-time TIME      broker time, e.g. 2026-11-25T00:00:00Z or -6h\n"
"  --to-time TIME        (a leading - counts back from now)\n"
"  --all-kinds           every audit record (refusals, sessions,\n"
"                        checkpoints), one summary line each; needs the\n"
"                        audit right\n"
"  --json                one JSON line per record (see docs/json.md)\n"
"  --timeout S           stop after S seconds, as subscribe does (exit 0);\n"
"                        if the replay had not finished, stderr says so\n"
"                        and where to continue, instead of \"end of replay\"\n"
"\n%s\n%s\n"
"Examples:\n"
"  cpx replay --pki pki --node si-ncp --from-time -24h --min-severity high\n"
"  cpx replay --json --from-seq 1 --to-seq 500 > alerts.jsonl\n"
"  cpx replay --all-kinds --json --from-time 2026-11-25 > audit.jsonl\n",
	    cli_filter_usage, cli_common_usage);
}

/* --- progress bar ----------------------------------------------------- */

static void
progress_clear(struct recv_ctx *rc)
{
	if (!rc->p_drawn)
		return;
	fprintf(stderr, "\r%*s\r", PROGRESS_WIDTH + 32, "");
	fflush(stderr);
	rc->p_drawn = 0;
}

static void
progress_update(struct recv_ctx *rc, uint64_t seq)
{
	uint64_t done;
	int64_t now;
	int pct, fill;
	char bar[PROGRESS_WIDTH + 1];

	if (!rc->progress || seq < rc->p_start)
		return;
	now = cli_now_ms();
	if (now - rc->p_last_ms < PROGRESS_EVERY_MS)
		return;
	rc->p_last_ms = now;
	done = seq - rc->p_start + 1;
	if (done > rc->p_total)
		done = rc->p_total;
	pct = (int)(done * 100 / rc->p_total);
	fill = (int)(done * PROGRESS_WIDTH / rc->p_total);
	memset(bar, '#', (size_t)fill);
	memset(bar + fill, ' ', (size_t)(PROGRESS_WIDTH - fill));
	bar[PROGRESS_WIDTH] = '\0';
	fprintf(stderr, "\r[%s] %3d%% %" PRIu64 "/%" PRIu64, bar, pct, done,
	    rc->p_total);
	fflush(stderr);
	rc->p_drawn = 1;
}

/* --- output ----------------------------------------------------------- */

static void
finish(struct recv_ctx *rc, int code)
{
	if (!rc->finished) {
		rc->finished = 1;
		rc->exit_code = code;
	}
	cpx_client_stop(rc->c);
}

static int
flush_out(void)
{
	if (fflush(stdout) == EOF || ferror(stdout)) {
		fprintf(stderr, "cpx: writing the output: %s\n",
		    strerror(errno));
		return -1;
	}
	return 0;
}

static void
on_delivery(struct recv_ctx *rc, const struct cpx_event *ev)
{
	struct alert_json_delivery d;
	char safe[320], *line;
	int wrote;

	/*
	 * A resume can overlap what was handled already (library and state
	 * file both resume): never show a sequence twice.
	 */
	if (!rc->is_replay && ev->seq <= rc->last_seq) {
		log_debug("seq %" PRIu64 ": already handled", ev->seq);
		return;
	}
	if (!ev->verified || ev->alert == NULL) {
		progress_clear(rc);
		fprintf(stderr, "seq %" PRIu64 ": refused to show alert: %s\n",
		    ev->seq, cli_sanitize(ev->verify_error ? ev->verify_error :
		    "not verified", safe, sizeof(safe)));
		rc->unverified++;
	} else {
		memset(&d, 0, sizeof(d));
		d.seq = ev->seq;
		d.accepted_at = ev->accepted_at;
		d.alert = ev->alert;
		d.verified = 1;
		d.signer_node = ev->signer.node;
		d.signer_country = ev->signer.country;
		d.replayed = ev->replayed;
		progress_clear(rc);
		if (rc->json_out) {
			if ((line = alert_json_delivery_line(&d)) == NULL) {
				fprintf(stderr, "cpx: seq %" PRIu64 ": cannot "
				    "format the alert\n", ev->seq);
				finish(rc, CLI_EXIT_LOCAL);
				return;
			}
			wrote = printf("%s\n", line) >= 0;
			free(line);
		} else
			wrote = alert_json_print_human(stdout, &d) == 0;
		if (!wrote || flush_out() == -1) {
			finish(rc, CLI_EXIT_LOCAL);
			return;
		}
		rc->shown++;
	}
	/*
	 * Only a verified alert moves the resume point (the library also
	 * refuses an implausible sequence): a forged delivery numbered
	 * 2^64 - 1 must not make every later alert look already handled.
	 */
	if (ev->verified && ev->seq > rc->last_seq) {
		rc->last_seq = ev->seq;
		/*
		 * Written once the alert is out: a crash between the two
		 * repeats this alert after the restart (at least once, as
		 * --help says), never loses it.
		 */
		if (rc->state_file != NULL &&
		    cli_state_write(rc->state_file, rc->last_seq) == -1) {
			finish(rc, CLI_EXIT_LOCAL);
			return;
		}
	}
	if (rc->max_count > 0 && rc->shown >= rc->max_count)
		finish(rc, CLI_EXIT_OK);
}

static void
on_record(struct recv_ctx *rc, const struct cpx_event *ev)
{
	const Cpx__AuditRecord *r = ev->record;
	char t[ALERT_JSON_TIME_LEN], cc[8], node[CPX_MAX_NODE_NAME + 1];
	char addr[80], text[CPX_MAX_ERROR_TEXT + 1], id[CPX_MAX_ID + 1];
	json_t *o;
	char *line;
	int wrote;

	if (r == NULL)
		return;
	if (r->seq > rc->last_seq)
		rc->last_seq = r->seq;	/* where a --timeout stopped */
	progress_clear(rc);
	/* The lib writer: the record reads as cpx-audit dump prints it. */
	if (rc->json_out) {
		if ((o = json_out_record(r)) == NULL ||
		    (line = json_out_line(o)) == NULL) {
			json_decref(o);
			fprintf(stderr, "cpx: seq %" PRIu64 ": cannot format "
			    "the record\n", r->seq);
			finish(rc, CLI_EXIT_LOCAL);
			return;
		}
		json_decref(o);
		wrote = printf("%s\n", line) >= 0;
		free(line);
	} else {
		if (alert_json_time_format(r->time, t, sizeof(t)) == -1)
			snprintf(t, sizeof(t), "?");
		wrote = printf("#%" PRIu64 " %s %s %s/%s%s%s%s%s%s%s%s%s%s\n",
		    r->seq, t, alert_record_kind_name(r->kind),
		    cli_sanitize(r->peer_country, cc, sizeof(cc)),
		    cli_sanitize(r->peer_node, node, sizeof(node)),
		    r->peer_address && r->peer_address[0] ? " " : "",
		    cli_sanitize(r->peer_address, addr, sizeof(addr)),
		    r->alert_id && r->alert_id[0] ? " alert " : "",
		    cli_sanitize(r->alert_id, id, sizeof(id)),
		    r->reason ? " (" : "",
		    r->reason ? alert_reason_name(r->reason) : "",
		    r->reason ? ")" : "",
		    r->text && r->text[0] ? ": " : "",
		    cli_sanitize(r->text, text, sizeof(text))) >= 0;
	}
	if (!wrote || flush_out() == -1) {
		finish(rc, CLI_EXIT_LOCAL);
		return;
	}
	rc->shown++;
}

static void
on_event(const struct cpx_event *ev, void *arg)
{
	struct recv_ctx *rc = arg;
	char safe[CPX_MAX_ERROR_TEXT + 1];

	/*
	 * The library may still hand over what it had decoded in the same
	 * read after we stopped: past --count, nothing more is shown (nor
	 * recorded in the state file, so it comes again next time).
	 */
	if (rc->finished)
		return;
	switch (ev->kind) {
	case CPX_EV_DELIVERY:
		on_delivery(rc, ev);
		progress_update(rc, ev->seq);
		break;
	case CPX_EV_AUDIT_RECORD:
		on_record(rc, ev);
		progress_update(rc, ev->seq);
		break;
	case CPX_EV_REPLAY_END:
		if (!rc->is_replay || ev->request_id != rc->request_id)
			break;
		rc->end_count = ev->count;
		rc->end_seq = ev->seq;
		finish(rc, CLI_EXIT_OK);
		break;
	case CPX_EV_SUBSCRIBED:
		log_info("subscribed; live after seq %" PRIu64, ev->seq);
		break;
	case CPX_EV_ERROR:
		progress_clear(rc);
		rc->saw_error = 1;
		if (ev->request_id == rc->request_id) {
			fprintf(stderr, "refused (%s): %s\n",
			    alert_reason_name(ev->reason),
			    cli_sanitize(ev->text, safe, sizeof(safe)));
			finish(rc, CLI_EXIT_REFUSED);
		} else if (!ev->fatal)
			fprintf(stderr, "cpx: broker: %s (%s)\n",
			    cli_sanitize(ev->text, safe, sizeof(safe)),
			    alert_reason_name(ev->reason));
		/*
		 * A fatal one (a broker shutting down) is told with the
		 * disconnect that follows, whose text carries its reason:
		 * one line, not three.
		 */
		break;
	case CPX_EV_DISCONNECTED:
		progress_clear(rc);
		cli_sanitize(ev->text, rc->lost_text, sizeof(rc->lost_text));
		break;
	case CPX_EV_CONNECTED:
		/* Which broker, when --broker lists several (failover). */
		progress_clear(rc);
		fprintf(stderr, "cpx: connected again to %s; resuming after "
		    "seq %" PRIu64 "\n", cpx_client_endpoint(rc->c),
		    rc->last_seq);
		break;
	default:
		break;
	}
}

/*
 * Run the client until the context finishes, a signal, the deadline
 * (0: none) or the end of the session. Returns the exit code.
 */
static int
loop(struct recv_ctx *rc, int64_t deadline, const char *what)
{
	char safe[400];
	int r;

	while (!rc->finished) {
		if (cli_stop_signal) {
			log_info("stopped by a signal");
			return CLI_EXIT_OK;
		}
		if (deadline != 0 && cli_now_ms() >= deadline)
			return -1;
		r = cpx_client_run(rc->c, 200);
		if (r == -1 && !rc->finished) {
			progress_clear(rc);
			fprintf(stderr, "cpx %s: %s\n", what,
			    cli_sanitize(cpx_client_error(rc->c), safe,
			    sizeof(safe)));
			return rc->saw_error && cpx_client_refused(rc->c) ?
			    CLI_EXIT_REFUSED : CLI_EXIT_CONNECT;
		}
		/* Still alive after a break: it is reconnecting. */
		if (rc->lost_text[0] != '\0' && !rc->finished) {
			fprintf(stderr, "cpx %s: %s; reconnecting\n", what,
			    rc->lost_text);
			rc->lost_text[0] = '\0';
		}
	}
	return rc->exit_code;
}

/*
 * --timeout reached: the same words and exit code for subscribe and
 * replay (an operator or script should not have to learn two), plus, for
 * a replay, that it did not finish and where to pick it up.
 */
static int
timeout_reached(const struct recv_ctx *rc, const char *what,
    int64_t timeout_ms)
{
	fprintf(stderr, "cpx %s: stopped at --timeout %lld s: %" PRIu64
	    " shown", what, (long long)(timeout_ms / 1000), rc->shown);
	if (rc->last_seq > 0)
		fprintf(stderr, ", last seq %" PRIu64, rc->last_seq);
	if (rc->is_replay && rc->last_seq > 0)
		fprintf(stderr, "; the replay had not finished (continue "
		    "with --from-seq %" PRIu64 ")", rc->last_seq + 1);
	else if (rc->is_replay)
		fprintf(stderr, "; the replay had not finished");
	fputc('\n', stderr);
	return CLI_EXIT_OK;
}

static int
filters_empty(const struct cli_filters *fl)
{
	const Cpx__Filter *f = &fl->f[0];

	return fl->n == 1 && f->n_origins == 0 && f->n_regions == 0 &&
	    f->n_categories == 0 && f->min_severity == 0;
}

static int
parse_seconds(const char *flag, const char *arg, int64_t *ms)
{
	uint64_t u;

	if (cli_parse_u64(arg, &u) == -1 || u == 0 || u > 31u * 86400) {
		fprintf(stderr, "cpx: %s %s: expected seconds\n", flag, arg);
		return -1;
	}
	*ms = (int64_t)u * 1000;
	return 0;
}

int
cli_subscribe(int argc, char **argv)
{
	struct cli_common co;
	struct cli_filters fl;
	struct recv_ctx rc;
	const Cpx__Welcome *w;
	uint64_t after = 0;
	int64_t timeout_ms = 0, deadline = 0;
	int opt, r, code = CLI_EXIT_USAGE, resume = 0, have_after = 0;

	cli_common_init(&co);
	cli_filters_init(&fl);
	memset(&rc, 0, sizeof(rc));
	optind = 1;
	while ((opt = getopt_long(argc, argv, "vh", sub_longopts,
	    NULL)) != -1) {
		if ((r = cli_filters_opt(&fl, opt, optarg)) == -1)
			goto done;
		if (r == 0)
			continue;
		switch (opt) {
		case 'h':
			sub_usage(stdout);
			code = CLI_EXIT_OK;
			goto done;
		case OPT_JSON:
			rc.json_out = 1;
			break;
		case OPT_COUNT:
			if (cli_parse_u64(optarg, &rc.max_count) == -1 ||
			    rc.max_count == 0) {
				fprintf(stderr, "cpx subscribe: --count %s: "
				    "expected a positive number\n", optarg);
				goto done;
			}
			break;
		case OPT_TIMEOUT:
			if (parse_seconds("--timeout", optarg,
			    &timeout_ms) == -1)
				goto done;
			break;
		case OPT_STATE_FILE:
			rc.state_file = optarg;
			break;
		case OPT_AFTER:
			if (cli_parse_u64(optarg, &after) == -1) {
				fprintf(stderr, "cpx subscribe: --after %s: "
				    "expected a sequence number\n", optarg);
				goto done;
			}
			have_after = 1;
			break;
		default:
			if (cli_common_opt(&co, opt, optarg) == 0)
				break;
			fprintf(stderr, "Try 'cpx subscribe --help'.\n");
			goto done;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "cpx subscribe: unexpected argument %s\n"
		    "Try 'cpx subscribe --help'.\n", argv[optind]);
		goto done;
	}
	resume = have_after;
	if (rc.state_file != NULL) {
		switch (cli_state_read(rc.state_file, &rc.last_seq)) {
		case -1:
			code = CLI_EXIT_LOCAL;
			goto done;
		case 0:
			after = rc.last_seq;
			break;
		default:
			rc.last_seq = after;	/* a new state file */
			break;
		}
		resume = 1;
	} else
		rc.last_seq = after;
	if ((rc.c = cli_connect(&co, 1, CONNECT_TIMEOUT_MS, &code)) == NULL)
		goto done;
	/*
	 * A state file past the broker's newest sequence would resume after
	 * alerts that do not exist yet and silently skip the next ones (a
	 * file damaged, or written from a forged delivery by an older cpx).
	 */
	if (rc.state_file != NULL && (w = cpx_client_welcome(rc.c)) != NULL &&
	    after > w->last_seq) {
		fprintf(stderr, "cpx subscribe: state file %s says seq %" PRIu64
		    ", but the broker's newest is %" PRIu64 ": resuming there "
		    "would skip the alerts to come. Check the file (or whether "
		    "the broker's audit log was replaced), then correct or "
		    "remove it.\n", rc.state_file, after, w->last_seq);
		code = CLI_EXIT_LOCAL;
		goto done;
	}
	if (timeout_ms > 0)
		deadline = cli_now_ms() + timeout_ms;
	cpx_client_on_event(rc.c, on_event, &rc);
	/* No filter would unsubscribe: one empty filter matches all. */
	if (cpx_subscribe(rc.c, fl.fp, fl.n, resume, after,
	    &rc.request_id) == -1) {
		fprintf(stderr, "cpx subscribe: cannot send the subscription: "
		    "%s\n", cpx_client_error(rc.c));
		code = CLI_EXIT_CONNECT;
		goto done;
	}
	log_debug("subscribed with %zu filter(s)%s, resume %d after %" PRIu64,
	    fl.n, filters_empty(&fl) ? " (all)" : "", resume, after);
	code = loop(&rc, deadline, "subscribe");
	if (code == -1)
		code = timeout_reached(&rc, "subscribe", timeout_ms);
	if (rc.unverified > 0)
		fprintf(stderr, "cpx subscribe: %" PRIu64 " alert(s) not "
		    "shown: signature not verified\n", rc.unverified);
done:
	cpx_client_free(&rc.c);
	cli_filters_clear(&fl);
	return code;
}

int
cli_replay(int argc, char **argv)
{
	struct cli_common co;
	struct cli_filters fl;
	struct recv_ctx rc;
	Cpx__ReplayRequest rq = CPX__REPLAY_REQUEST__INIT;
	const Cpx__Welcome *w;
	int64_t timeout_ms = 0, deadline = 0;
	uint64_t end;
	int opt, r, code = CLI_EXIT_USAGE;

	cli_common_init(&co);
	cli_filters_init(&fl);
	memset(&rc, 0, sizeof(rc));
	rc.is_replay = 1;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "vh", replay_longopts,
	    NULL)) != -1) {
		if ((r = cli_filters_opt(&fl, opt, optarg)) == -1)
			goto done;
		if (r == 0)
			continue;
		switch (opt) {
		case 'h':
			replay_usage(stdout);
			code = CLI_EXIT_OK;
			goto done;
		case OPT_JSON:
			rc.json_out = 1;
			break;
		case OPT_TIMEOUT:
			if (parse_seconds("--timeout", optarg,
			    &timeout_ms) == -1)
				goto done;
			break;
		case OPT_FROM_SEQ:
		case OPT_TO_SEQ:
			if (cli_parse_u64(optarg, opt == OPT_FROM_SEQ ?
			    &rq.from_seq : &rq.to_seq) == -1) {
				fprintf(stderr, "cpx replay: %s %s: expected a "
				    "sequence number\n", opt == OPT_FROM_SEQ ?
				    "--from-seq" : "--to-seq", optarg);
				goto done;
			}
			break;
		case OPT_FROM_TIME:
		case OPT_TO_TIME:
			if (cli_parse_time(optarg, '-', opt == OPT_FROM_TIME ?
			    &rq.from_time : &rq.to_time) == -1) {
				fprintf(stderr, "cpx replay: %s %s: expected a "
				    "UTC time such as 2026-11-25T17:30:00Z, "
				    "or -6h, -2d\n", opt == OPT_FROM_TIME ?
				    "--from-time" : "--to-time", optarg);
				goto done;
			}
			break;
		case OPT_ALL_KINDS:
			rq.all_kinds = 1;
			break;
		default:
			if (cli_common_opt(&co, opt, optarg) == 0)
				break;
			fprintf(stderr, "Try 'cpx replay --help'.\n");
			goto done;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "cpx replay: unexpected argument %s\n"
		    "Try 'cpx replay --help'.\n", argv[optind]);
		goto done;
	}
	if ((rq.to_seq != 0 && rq.to_seq < rq.from_seq) ||
	    (rq.to_time != 0 && rq.to_time < rq.from_time)) {
		fprintf(stderr, "cpx replay: the range ends before it "
		    "starts\n");
		goto done;
	}
	if (!filters_empty(&fl)) {
		rq.filters = fl.fp;
		rq.n_filters = fl.n;
	}
	if ((rc.c = cli_connect(&co, 0, CONNECT_TIMEOUT_MS, &code)) == NULL)
		goto done;
	if (timeout_ms > 0)
		deadline = cli_now_ms() + timeout_ms;
	w = cpx_client_welcome(rc.c);
	/* The total comes from the Welcome: a bar only if it is known. */
	if (isatty(STDERR_FILENO) && w != NULL && w->last_seq > 0) {
		rc.p_start = rq.from_seq > 0 ? rq.from_seq : 1;
		end = rq.to_seq > 0 && rq.to_seq < w->last_seq ? rq.to_seq :
		    w->last_seq;
		if (end >= rc.p_start) {
			rc.p_total = end - rc.p_start + 1;
			rc.progress = 1;
		}
	}
	cpx_client_on_event(rc.c, on_event, &rc);
	if (cpx_replay(rc.c, &rq, &rc.request_id) == -1) {
		fprintf(stderr, "cpx replay: cannot send the request: %s\n",
		    cpx_client_error(rc.c));
		code = CLI_EXIT_CONNECT;
		goto done;
	}
	/* Where a --timeout would tell the user to continue from. */
	rc.last_seq = rq.from_seq > 0 ? rq.from_seq - 1 : 0;
	code = loop(&rc, deadline, "replay");
	progress_clear(&rc);
	if (code == -1)
		code = timeout_reached(&rc, "replay", timeout_ms);
	else if (code == CLI_EXIT_OK && rc.finished)
		fprintf(stderr, "end of replay: %" PRIu64 " record(s), last "
		    "seq %" PRIu64 "\n", rc.end_count, rc.end_seq);
	if (rc.unverified > 0)
		fprintf(stderr, "cpx replay: %" PRIu64 " alert(s) not shown: "
		    "signature not verified\n", rc.unverified);
done:
	cpx_client_free(&rc.c);
	cli_filters_clear(&fl);
	return code;
}
