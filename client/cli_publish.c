/*
 * cli_publish.c: `cpx publish`. Builds one JSON object from the flags,
 * merges it over the alert file's object if one is given, and hands the
 * result to alert_json_parse(): one path from input to Cpx__Alert, one
 * validator, whichever way the analyst writes the alert. Then signs and
 * publishes it and reports the broker's answer. With --stdin, one alert
 * per line of JSON, all over one session, one result line each. Owns the
 * JSON and the alert for the duration of the command.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "alert.h"
#include "alert_json.h"
#include "cli.h"
#include "log.h"

enum {
	OPT_CATEGORY = CLI_OPT_FIRST_COMMAND,
	OPT_SEVERITY,
	OPT_HANDLING,
	OPT_TO,
	OPT_SUMMARY,
	OPT_PLACE,
	OPT_CROSSING,
	OPT_LAT,
	OPT_LON,
	OPT_ROUTE,
	OPT_VEHICLE,
	OPT_PERSONS,
	OPT_UPDATES,
	OPT_WITHDRAWS,
	OPT_EXPIRES,
	OPT_ID,
	OPT_FILE,
	OPT_TIMEOUT,
	OPT_JSON,
	OPT_STDIN
};

static const struct option longopts[] = {
	CLI_COMMON_LONGOPTS,
	{ "category",	required_argument, NULL, OPT_CATEGORY },
	{ "severity",	required_argument, NULL, OPT_SEVERITY },
	{ "handling",	required_argument, NULL, OPT_HANDLING },
	{ "to",		required_argument, NULL, OPT_TO },
	{ "summary",	required_argument, NULL, OPT_SUMMARY },
	{ "place",	required_argument, NULL, OPT_PLACE },
	{ "crossing",	required_argument, NULL, OPT_CROSSING },
	{ "lat",	required_argument, NULL, OPT_LAT },
	{ "lon",	required_argument, NULL, OPT_LON },
	{ "route",	required_argument, NULL, OPT_ROUTE },
	{ "vehicle",	required_argument, NULL, OPT_VEHICLE },
	{ "persons",	required_argument, NULL, OPT_PERSONS },
	{ "updates",	required_argument, NULL, OPT_UPDATES },
	{ "withdraws",	required_argument, NULL, OPT_WITHDRAWS },
	{ "expires",	required_argument, NULL, OPT_EXPIRES },
	{ "id",		required_argument, NULL, OPT_ID },
	{ "file",	required_argument, NULL, OPT_FILE },
	{ "timeout",	required_argument, NULL, OPT_TIMEOUT },
	{ "json",	no_argument,	   NULL, OPT_JSON },
	{ "stdin",	no_argument,	   NULL, OPT_STDIN },
	{ NULL, 0, NULL, 0 }
};

static void
usage(FILE *out)
{
	fprintf(out,
"usage: cpx publish [options] --category C --severity S --summary TEXT ...\n"
"       cpx publish [options] --file ALERT.json [flags that override it]\n"
"       cpx publish [options] --stdin [flags that override each line]\n"
"\n"
"Sign an alert with this node's key and publish it. Prints\n"
"\"accepted: seq N id ID\" (or \"accepted (repeat of an earlier publish):\n"
"...\" when the broker had it already); a refusal prints\n"
"\"refused (REASON): TEXT\" on stderr and exits 1.\n"
"\n"
"Alert:\n"
"  --category NAME       route vehicle crossing network document\n"
"                        maritime other\n"
"  --severity NAME       low medium high critical\n"
"  --handling NAME       network (default) restricted named-only\n"
"  --to R[,R...]         recipients: countries (HR) or regions\n"
"                        (western-balkans); repeatable; none = whole network\n"
"  --summary TEXT        what happened (required)\n"
"  --place NAME          where\n"
"  --crossing NAME       border crossing point\n"
"  --lat DEG --lon DEG   coordinates (both)\n"
"  --route A,B,C         waypoints in order (repeatable, appends)\n"
"  --vehicle PLATE[:CC[:DESCRIPTION]]  repeatable\n"
"  --persons N           persons concerned\n"
"  --updates ID          this alert supersedes alert ID\n"
"  --withdraws ID        this alert withdraws alert ID\n"
"  --expires TIME|+DUR   e.g. 2026-11-26T06:00:00Z or +6h, +1h30m, +2d\n"
"  --id ID               alert id (default: a new UUID)\n"
"  --file FILE           the alert as JSON (- for stdin), see\n"
"                        client/examples/; flags given too override its keys\n"
"  --stdin               many alerts, one JSON object per line (the keys of\n"
"                        --file), over one session; prints one result per\n"
"                        line: \"line N: accepted: seq S id ID\", \"line N:\n"
"                        refused (REASON): TEXT\" or \"line N: invalid:\n"
"                        WHY\", and goes on after a refused line. Exit 0\n"
"                        if all were accepted, 1 if any was refused or\n"
"                        invalid, 3 if the broker stopped answering (the\n"
"                        lines after that one were not published)\n"
"Output:\n"
"  --json                print {\"seq\":N,\"id\":\"ID\",\"duplicate\":false}\n"
"                        (with --stdin: {\"line\":N,\"result\":\"accepted\",\n"
"                        \"seq\":S,...} or {\"line\":N,\"result\":\"refused\"\n"
"                        or \"invalid\",\"reason\":...,\"text\":...})\n"
"  --timeout S           wait at most S seconds for the broker (default 10;\n"
"                        with --stdin, for each alert)\n"
"\n%s\n"
"Examples:\n"
"  cpx publish --pki pki --node si-ncp --category vehicle --severity high \\\n"
"      --handling restricted --to western-balkans \\\n"
"      --summary 'White van loading persons near Obrezje' \\\n"
"      --vehicle 'LJ-AB-123:SI:white Mercedes Sprinter' \\\n"
"      --route Bregana,Obrezje\n"
"  cpx publish --pki pki --node hr-ncp \\\n"
"      --file client/examples/crossing-hr-network.json\n"
"  jq -c '.[]' alerts.json | cpx publish --pki pki --node si-ncp --stdin\n"
"  cpx publish --pki pki --node si-ncp --withdraws ID --category other \\\n"
"      --severity low --summary 'Withdrawn: vehicle found to be legitimate'\n",
	    cli_common_usage);
}

struct pub_state {
	struct cpx_client *c;
	uint64_t	 request_id;
	int		 done;		/* ACK or ERROR for request_id */
	int		 accepted;
	uint64_t	 seq;
	int		 duplicate;
	int		 reason;
	char		 text[CPX_MAX_ERROR_TEXT + 1];
	int		 session_refused;
	char		 lost[CPX_MAX_ERROR_TEXT + 64];	/* last break */
};

static void
on_event(const struct cpx_event *ev, void *arg)
{
	struct pub_state *ps = arg;

	switch (ev->kind) {
	case CPX_EV_ACK:
		if (ev->request_id != ps->request_id)
			break;
		ps->done = ps->accepted = 1;
		ps->seq = ev->seq;
		ps->duplicate = ev->duplicate;
		/* The answer is in: cpx_client_run returns now, not later. */
		cpx_client_stop(ps->c);
		break;
	case CPX_EV_ERROR:
		if (ev->request_id != ps->request_id && ev->request_id != 0)
			break;
		/*
		 * A session-wide fatal Error (a broker shutting down) is
		 * the library's to judge: it reconnects and resends, or
		 * gives up for good (cpx_client_refused) and run says so.
		 */
		if (ev->request_id == 0 && ev->fatal)
			break;
		if (ev->request_id == 0)
			ps->session_refused = 1;
		else
			ps->done = 1;
		ps->reason = ev->reason;
		snprintf(ps->text, sizeof(ps->text), "%s",
		    ev->text ? ev->text : "");
		cpx_client_stop(ps->c);
		break;
	case CPX_EV_DISCONNECTED:
		snprintf(ps->lost, sizeof(ps->lost), "%s",
		    ev->text ? ev->text : "");
		log_info("connection lost (%s); reconnecting to resend",
		    ev->text ? ev->text : "");
		break;
	case CPX_EV_CONNECTED:
		/* What awaits its answer is sent again, the same bytes. */
		log_info("connected to %s; sending %zu unanswered alert(s) "
		    "again", cpx_client_endpoint(ps->c),
		    cpx_publish_inflight(ps->c));
		break;
	default:
		break;
	}
}

static int
append_item(const char *p, size_t n, void *arg)
{
	return json_array_append_new(arg, json_stringn(p, n));
}

/* Append each trimmed, non-empty item of a comma list to arr. */
static int
append_list(json_t *arr, const char *list)
{
	return cli_split_list(list, append_item, arr);
}

/* json_string() refuses invalid UTF-8: say so instead of failing mutely. */
static int
set_str(json_t *o, const char *key, const char *val, const char *flag)
{
	json_t *s;

	if ((s = json_string(val)) == NULL) {
		fprintf(stderr, "cpx publish: %s: not valid UTF-8\n", flag);
		return -1;
	}
	return json_object_set_new(o, key, s);
}

static json_t *
sub_object(json_t *o, const char *key)
{
	json_t *s = json_object_get(o, key);

	if (s == NULL) {
		s = json_object();
		if (json_object_set_new(o, key, s) == -1)
			return NULL;
	}
	return s;
}

static json_t *
sub_array(json_t *o, const char *key)
{
	json_t *s = json_object_get(o, key);

	if (s == NULL) {
		s = json_array();
		if (json_object_set_new(o, key, s) == -1)
			return NULL;
	}
	return s;
}

static int
parse_coord(const char *flag, const char *s, double lim, double *v)
{
	char *end;

	errno = 0;
	*v = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' || !isfinite(*v) ||
	    *v < -lim || *v > lim) {
		fprintf(stderr, "cpx publish: %s %s: expected degrees between "
		    "-%g and %g\n", flag, s, lim, lim);
		*v = 0;
		return -1;
	}
	return 0;
}

static int
add_vehicle(json_t *vehicles, const char *spec)
{
	const char *c1, *c2;
	json_t *v;

	if ((v = json_object()) == NULL ||
	    json_array_append_new(vehicles, v) == -1)
		return -1;
	c1 = strchr(spec, ':');
	c2 = c1 ? strchr(c1 + 1, ':') : NULL;
	if (json_object_set_new(v, "plate", json_stringn(spec,
	    c1 ? (size_t)(c1 - spec) : strlen(spec))) == -1)
		goto bad;
	if (c1 != NULL && json_object_set_new(v, "country",
	    json_stringn(c1 + 1, c2 ? (size_t)(c2 - c1 - 1) :
	    strlen(c1 + 1))) == -1)
		goto bad;
	if (c2 != NULL && json_object_set_new(v, "description",
	    json_string(c2 + 1)) == -1)
		goto bad;
	return 0;
bad:
	fprintf(stderr, "cpx publish: --vehicle %s: not valid UTF-8\n", spec);
	return -1;
}

/* Read FILE (or stdin for "-"), at most ALERT_JSON_MAX_TEXT bytes. */
static json_t *
load_file(const char *path)
{
	json_error_t jerr;
	json_t *root = NULL;
	FILE *f = NULL;
	char *buf = NULL;
	size_t len = 0, n;
	int is_stdin = strcmp(path, "-") == 0;

	if ((f = is_stdin ? stdin : fopen(path, "r")) == NULL) {
		fprintf(stderr, "cpx publish: %s: %s\n", path,
		    strerror(errno));
		goto done;
	}
	if ((buf = malloc(ALERT_JSON_MAX_TEXT + 1)) == NULL) {
		fprintf(stderr, "cpx publish: out of memory\n");
		goto done;
	}
	/* One byte over the limit tells a too-large file from a full one. */
	while (len <= ALERT_JSON_MAX_TEXT && (n = fread(buf + len, 1,
	    ALERT_JSON_MAX_TEXT + 1 - len, f)) > 0)
		len += n;
	if (ferror(f)) {
		fprintf(stderr, "cpx publish: %s: read error\n", path);
		goto done;
	}
	if (len > ALERT_JSON_MAX_TEXT) {
		fprintf(stderr, "cpx publish: %s: larger than %u bytes\n",
		    path, ALERT_JSON_MAX_TEXT);
		goto done;
	}
	root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL) {
		fprintf(stderr, "cpx publish: %s:%d:%d: %s\n", path,
		    jerr.line, jerr.column, jerr.text);
		goto done;
	}
	if (!json_is_object(root)) {
		fprintf(stderr, "cpx publish: %s: expected a JSON object\n",
		    path);
		json_decref(root);
		root = NULL;
	}
done:
	free(buf);
	if (f != NULL && !is_stdin)
		fclose(f);
	return root;
}

/*
 * Merge the flags' object over the file's: flags win key by key, and the
 * place object is merged one level down so --lat/--lon can complete a
 * file's place name.
 */
static int
merge(json_t *base, json_t *flags)
{
	const char *key;
	json_t *v, *bp;

	json_object_foreach(flags, key, v) {
		if (strcmp(key, "place") == 0 &&
		    (bp = json_object_get(base, "place")) != NULL &&
		    json_is_object(bp) && json_is_object(v)) {
			if (json_object_update(bp, v) == -1)
				return -1;
			continue;
		}
		if (json_object_set(base, key, v) == -1)
			return -1;
	}
	if (json_object_get(base, "handling") == NULL &&
	    json_object_set_new(base, "handling",
	    json_string("network")) == -1)
		return -1;
	return 0;
}

/* What became of one alert handed to the broker. */
enum pub_result {
	PUB_ACCEPTED,
	PUB_REFUSED,		/* this alert refused: ps->reason, ps->text */
	PUB_SESSION_REFUSED,	/* the broker refused this node: stop */
	PUB_NO_ANSWER,		/* timeout, signal or connection gone */
	PUB_NOT_SENT		/* err says why */
};

/*
 * Sign and send a, then run the client until its answer, the timeout or
 * a signal. The alert's id (the one given, or the UUID the library drew)
 * is copied to id. Returns what became of it; ps holds the answer.
 */
static enum pub_result
send_and_wait(struct cpx_client *c, Cpx__Alert *a, int timeout_s,
    struct pub_state *ps, char *id, size_t idlen, char *err, size_t errlen)
{
	char *saved_id = a->id, *saved_origin = a->origin;
	int64_t until = cli_now_ms() + (int64_t)timeout_s * 1000;
	int rc;

	memset(ps, 0, sizeof(*ps));
	ps->c = c;
	cpx_client_on_event(c, on_event, ps);
	/*
	 * cpx_publish_send and our own wait instead of cpx_publish: a
	 * refusal (exit 1) must be told apart from a lost broker (exit 3),
	 * which cpx_publish folds into one reason.
	 */
	rc = cpx_publish_send(c, a, &ps->request_id, err, errlen);
	snprintf(id, idlen, "%s", a->id ? a->id : "");
	/* The library lent us its buffers; the parser's own go back. */
	a->id = saved_id;
	a->origin = saved_origin;
	if (rc == -1)
		return PUB_NOT_SENT;
	log_debug("alert %s sent as request %" PRIu64, id, ps->request_id);
	err[0] = '\0';
	while (!ps->done && !ps->session_refused && !cli_stop_signal &&
	    cli_now_ms() < until)
		if (cpx_client_run(c, 100) == -1) {
			snprintf(err, errlen, "%s", cpx_client_error(c));
			break;
		}
	if (ps->done && ps->accepted)
		return PUB_ACCEPTED;
	if (ps->done)
		return PUB_REFUSED;
	if (ps->session_refused)
		return PUB_SESSION_REFUSED;
	if (cpx_client_refused(c)) {
		ps->reason = cpx_client_error_reason(c);
		snprintf(ps->text, sizeof(ps->text), "%s",
		    cpx_client_error(c));
		return PUB_SESSION_REFUSED;
	}
	/* Why the answer never came, if the connection broke meanwhile. */
	if (err[0] == '\0' && ps->lost[0] != '\0')
		snprintf(err, errlen, "%s", ps->lost);
	return PUB_NO_ANSWER;
}

static int
flush_stdout(void)
{
	if (fflush(stdout) == EOF || ferror(stdout)) {
		fprintf(stderr, "cpx publish: stdout: %s\n", strerror(errno));
		return -1;
	}
	return 0;
}

static int
publish(struct cpx_client *c, Cpx__Alert *a, int timeout_s, int json_out)
{
	struct pub_state ps;
	char id[CPX_MAX_ID + 1], err[400], safe[CPX_MAX_ERROR_TEXT + 1];
	char sid[CPX_MAX_ID + 1];

	switch (send_and_wait(c, a, timeout_s, &ps, id, sizeof(id), err,
	    sizeof(err))) {
	case PUB_NOT_SENT:
		fprintf(stderr, "cpx publish: %s\n", err);
		return CLI_EXIT_CONNECT;
	case PUB_ACCEPTED:
		cli_sanitize(id, sid, sizeof(sid));
		if (json_out)
			printf("{\"seq\":%" PRIu64 ",\"id\":\"%s\","
			    "\"duplicate\":%s}\n", ps.seq, sid,
			    ps.duplicate ? "true" : "false");
		else
			printf("accepted%s: seq %" PRIu64 " id %s\n",
			    ps.duplicate ? " (repeat of an earlier publish)" :
			    "", ps.seq, sid);
		return flush_stdout() == -1 ? CLI_EXIT_LOCAL : CLI_EXIT_OK;
	case PUB_REFUSED:
	case PUB_SESSION_REFUSED:
		fprintf(stderr, "refused (%s): %s\n",
		    alert_reason_name(ps.reason),
		    cli_sanitize(ps.text, safe, sizeof(safe)));
		return CLI_EXIT_REFUSED;
	case PUB_NO_ANSWER:
		break;
	}
	cli_sanitize(id, sid, sizeof(sid));
	if (cli_stop_signal)
		fprintf(stderr, "cpx publish: interrupted before the broker "
		    "answered; alert %s may or may not have been accepted "
		    "(cpx replay shows it if it was)\n", sid);
	else
		fprintf(stderr, "cpx publish: no answer from the broker "
		    "within %d s%s%s; alert %s may or may not have been "
		    "accepted (cpx replay shows it if it was)\n",
		    timeout_s, err[0] ? ": " : "",
		    cli_sanitize(err, safe, sizeof(safe)), sid);
	return CLI_EXIT_CONNECT;
}

/* --- publish --stdin ---------------------------------------------------- */

struct stream_counts {
	uint64_t	lines;		/* alerts read (not blank lines) */
	uint64_t	accepted;
	uint64_t	refused;	/* by the broker */
	uint64_t	invalid;	/* by this client: never sent */
};

/*
 * Read one line of stdin into buf (at most max bytes, NUL-terminated,
 * newline dropped). Returns 1 with a line, 0 at the end of input, 2 for
 * a line longer than max (the rest of it is skipped), -1 on a read error.
 */
static int
read_line(char *buf, size_t max, size_t *len)
{
	size_t n = 0;
	int ch, over = 0;

	while ((ch = getchar()) != EOF && ch != '\n') {
		if (n < max)
			buf[n++] = (char)ch;
		else
			over = 1;
	}
	buf[n] = '\0';
	*len = n;
	if (ch == EOF && ferror(stdin))
		return -1;
	if (ch == EOF && n == 0 && !over)
		return 0;
	return over ? 2 : 1;
}

/* One result line: text, or one JSON object when json_out. */
static int
result_line(int json_out, uint64_t line, const char *status,
    const char *reason, const char *text, uint64_t seq, const char *id,
    int duplicate)
{
	json_t *o = NULL;
	char *s = NULL, safe[CPX_MAX_ERROR_TEXT + 1], sid[CPX_MAX_ID + 1];
	int rc = -1;

	cli_sanitize(id != NULL ? id : "", sid, sizeof(sid));
	if (!json_out) {
		if (strcmp(status, "accepted") == 0)
			rc = printf("line %" PRIu64 ": accepted%s: seq %"
			    PRIu64 " id %s\n", line, duplicate ? " (repeat "
			    "of an earlier publish)" : "", seq, sid);
		else
			rc = printf("line %" PRIu64 ": %s%s%s%s: %s\n", line,
			    status, reason ? " (" : "", reason ? reason : "",
			    reason ? ")" : "", cli_sanitize(text, safe,
			    sizeof(safe)));
		return rc < 0 ? -1 : 0;
	}
	if (strcmp(status, "accepted") == 0)
		o = json_pack("{s:I, s:s, s:I, s:s, s:b}", "line",
		    (json_int_t)line, "result", status, "seq", (json_int_t)seq,
		    "id", sid, "duplicate", duplicate);
	else
		o = json_pack("{s:I, s:s, s:s*, s:s}", "line", (json_int_t)line,
		    "result", status, "reason", reason, "text",
		    cli_sanitize(text, safe, sizeof(safe)));
	if (o != NULL && (s = json_dumps(o, JSON_COMPACT |
	    JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII)) != NULL)
		rc = printf("%s\n", s) < 0 ? -1 : 0;
	free(s);
	json_decref(o);
	return rc;
}

/*
 * One input line to an alert: a JSON object like an alert file's, with
 * the flags merged over it. Returns an owned alert, or NULL with err.
 */
static Cpx__Alert *
line_alert(const char *buf, size_t len, json_t *flags, char *err,
    size_t errlen)
{
	json_error_t jerr;
	json_t *o = NULL;
	Cpx__Alert *a = NULL;
	char *text = NULL;

	if ((o = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr)) ==
	    NULL) {
		snprintf(err, errlen, "not JSON: column %d: %s", jerr.column,
		    jerr.text);
		goto done;
	}
	if (!json_is_object(o)) {
		snprintf(err, errlen, "expected a JSON object (an alert as "
		    "in an alert file, on one line)");
		goto done;
	}
	if (merge(o, flags) == -1 ||
	    (text = json_dumps(o, JSON_COMPACT)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto done;
	}
	a = alert_json_parse(text, strlen(text), err, errlen);
done:
	free(text);
	json_decref(o);
	return a;
}

/*
 * `cpx publish --stdin`: one alert per line over the one session c,
 * one result line per alert with its line number; a refused or invalid
 * line does not stop the others. Exit 0 if every alert was accepted, 1
 * if any was refused or invalid, 3 if the broker stopped answering (the
 * lines from there on were not published), 4 on an output error.
 */
static int
publish_stream(struct cpx_client *c, json_t *flags, int timeout_s,
    int json_out)
{
	struct stream_counts n;
	struct pub_state ps;
	Cpx__Alert *a = NULL;
	char *buf = NULL, err[400], id[CPX_MAX_ID + 1];
	char safe[CPX_MAX_ERROR_TEXT + 1], why[sizeof(err)];
	uint64_t line = 0;
	size_t len;
	int r, code = CLI_EXIT_LOCAL, wrote;

	memset(&n, 0, sizeof(n));
	if ((buf = malloc(ALERT_JSON_MAX_TEXT + 1)) == NULL) {
		fprintf(stderr, "cpx publish: out of memory\n");
		goto done;
	}
	while (!cli_stop_signal &&
	    (r = read_line(buf, ALERT_JSON_MAX_TEXT, &len)) != 0) {
		line++;
		if (r == -1) {
			fprintf(stderr, "cpx publish: stdin: read error at "
			    "line %" PRIu64 "\n", line);
			goto done;
		}
		if (r == 1 && strspn(buf, " \t\r") == len)
			continue;	/* a blank line is no alert */
		n.lines++;
		if (r == 2) {
			snprintf(err, sizeof(err), "longer than %u bytes",
			    ALERT_JSON_MAX_TEXT);
			a = NULL;
		} else
			a = line_alert(buf, len, flags, err, sizeof(err));
		if (a == NULL) {
			n.invalid++;
			if (result_line(json_out, line, "invalid", NULL, err, 0,
			    NULL, 0) == -1 || flush_stdout() == -1)
				goto done;
			continue;
		}
		r = send_and_wait(c, a, timeout_s, &ps, id, sizeof(id), err,
		    sizeof(err));
		alert_json_free(&a);
		switch (r) {
		case PUB_ACCEPTED:
			n.accepted++;
			wrote = result_line(json_out, line, "accepted", NULL,
			    NULL, ps.seq, id, ps.duplicate);
			break;
		case PUB_NOT_SENT:
			n.invalid++;
			wrote = result_line(json_out, line, "invalid", NULL,
			    err, 0, NULL, 0);
			break;
		case PUB_REFUSED:
			n.refused++;
			wrote = result_line(json_out, line, "refused",
			    alert_reason_name(ps.reason), ps.text, 0, NULL, 0);
			break;
		case PUB_SESSION_REFUSED:
			n.refused++;
			(void)result_line(json_out, line, "refused",
			    alert_reason_name(ps.reason), ps.text, 0, NULL, 0);
			(void)flush_stdout();
			fprintf(stderr, "cpx publish: the broker refused this "
			    "node: nothing from line %" PRIu64 " on was "
			    "published\n", line);
			code = CLI_EXIT_REFUSED;
			goto done;
		default:
			(void)flush_stdout();
			cli_sanitize(id, safe, sizeof(safe));
			if (cli_stop_signal)
				fprintf(stderr, "cpx publish: line %" PRIu64
				    ": interrupted before the broker "
				    "answered", line);
			else
				fprintf(stderr, "cpx publish: line %" PRIu64
				    ": no answer from the broker within %d "
				    "s%s%s", line, timeout_s, err[0] ? ": " :
				    "", cli_sanitize(err, why, sizeof(why)));
			fprintf(stderr, "; alert %s may or may not have been "
			    "accepted (cpx replay shows it if it was); lines "
			    "after it were not published\n", safe);
			code = CLI_EXIT_CONNECT;
			goto done;
		}
		if (wrote == -1 || flush_stdout() == -1)
			goto done;
	}
	code = cli_stop_signal ? CLI_EXIT_CONNECT :
	    n.refused + n.invalid > 0 ? CLI_EXIT_REFUSED : CLI_EXIT_OK;
	if (cli_stop_signal)
		fprintf(stderr, "cpx publish: interrupted after line %" PRIu64
		    "\n", line);
done:
	fprintf(stderr, "cpx publish: %" PRIu64 " of %" PRIu64 " alert(s) "
	    "accepted, %" PRIu64 " refused by the broker, %" PRIu64
	    " invalid\n", n.accepted, n.lines, n.refused, n.invalid);
	alert_json_free(&a);
	free(buf);
	return code;
}

/*
 * Without --file a missing key would be reported by the parser as a JSON
 * key: name the flag the analyst must add.
 */
static int
require_flags(json_t *base, const char *file)
{
	static const char *const keys[] = { "category", "severity",
	    "summary" };
	size_t i;

	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (json_object_get(base, keys[i]) != NULL)
			continue;
		if (file != NULL)
			fprintf(stderr, "cpx publish: --%s is required (or the "
			    "key \"%s\" in %s)\n", keys[i], keys[i], file);
		else
			fprintf(stderr, "cpx publish: --%s is required\n"
			    "Try 'cpx publish --help'.\n", keys[i]);
		return -1;
	}
	return 0;
}

int
cli_publish(int argc, char **argv)
{
	struct cli_common co;
	struct cpx_client *c = NULL;
	Cpx__Alert *a = NULL;
	json_t *flags = NULL, *base = NULL, *o;
	const char *file = NULL, *ref_kind = NULL;
	char *text = NULL, err[400];
	uint64_t u;
	int64_t ms;
	double lat = 0, lon = 0;
	int opt, rc = CLI_EXIT_USAGE, json_out = 0, have_lat = 0, have_lon = 0;
	int timeout_s = 10, from_stdin = 0;

	cli_common_init(&co);
	if ((flags = json_object()) == NULL)
		goto done;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "vh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'h':
			usage(stdout);
			rc = CLI_EXIT_OK;
			goto done;
		case OPT_CATEGORY:
			if (set_str(flags, "category", optarg,
			    "--category") == -1)
				goto done;
			break;
		case OPT_SEVERITY:
			if (set_str(flags, "severity", optarg,
			    "--severity") == -1)
				goto done;
			break;
		case OPT_HANDLING:
			if (set_str(flags, "handling", optarg,
			    "--handling") == -1)
				goto done;
			break;
		case OPT_SUMMARY:
			if (set_str(flags, "summary", optarg,
			    "--summary") == -1)
				goto done;
			break;
		case OPT_ID:
			if (set_str(flags, "id", optarg, "--id") == -1)
				goto done;
			break;
		case OPT_TO:
		case OPT_ROUTE:
			o = sub_array(flags, opt == OPT_TO ? "recipients" :
			    "route");
			if (o == NULL || append_list(o, optarg) == -1) {
				fprintf(stderr, "cpx publish: %s %s: not valid "
				    "UTF-8\n", opt == OPT_TO ? "--to" :
				    "--route", optarg);
				goto done;
			}
			break;
		case OPT_PLACE:
		case OPT_CROSSING:
			if ((o = sub_object(flags, "place")) == NULL ||
			    set_str(o, opt == OPT_PLACE ? "name" : "crossing",
			    optarg, opt == OPT_PLACE ? "--place" :
			    "--crossing") == -1)
				goto done;
			break;
		case OPT_LAT:
			if (parse_coord("--lat", optarg, 90.0, &lat) == -1)
				goto done;
			have_lat = 1;
			break;
		case OPT_LON:
			if (parse_coord("--lon", optarg, 180.0, &lon) == -1)
				goto done;
			have_lon = 1;
			break;
		case OPT_VEHICLE:
			if ((o = sub_array(flags, "vehicles")) == NULL ||
			    add_vehicle(o, optarg) == -1)
				goto done;
			break;
		case OPT_PERSONS:
			if (cli_parse_u64(optarg, &u) == -1 ||
			    u > UINT32_MAX) {
				fprintf(stderr, "cpx publish: --persons %s: "
				    "expected a count\n", optarg);
				goto done;
			}
			if (json_object_set_new(flags, "persons_count",
			    json_integer((json_int_t)u)) == -1)
				goto done;
			break;
		case OPT_UPDATES:
		case OPT_WITHDRAWS:
			if (ref_kind != NULL) {
				fprintf(stderr, "cpx publish: give one of "
				    "--updates and --withdraws, once\n");
				goto done;
			}
			ref_kind = opt == OPT_UPDATES ? "updates" :
			    "withdraws";
			if ((o = sub_object(flags, "reference")) == NULL ||
			    set_str(o, "alert_id", optarg, opt == OPT_UPDATES ?
			    "--updates" : "--withdraws") == -1 ||
			    set_str(o, "kind", ref_kind, "") == -1)
				goto done;
			break;
		case OPT_EXPIRES:
			if (cli_parse_time(optarg, '+', &ms) == -1) {
				fprintf(stderr, "cpx publish: --expires %s: "
				    "expected a UTC time such as "
				    "2026-11-26T06:00:00Z, or +6h, +90m, "
				    "+2d\n", optarg);
				goto done;
			}
			if (json_object_set_new(flags, "expires_at",
			    json_integer(ms)) == -1)
				goto done;
			break;
		case OPT_FILE:
			file = optarg;
			break;
		case OPT_TIMEOUT:
			if (cli_parse_u64(optarg, &u) == -1 || u == 0 ||
			    u > 86400) {
				fprintf(stderr, "cpx publish: --timeout %s: "
				    "expected seconds, 1..86400\n", optarg);
				goto done;
			}
			timeout_s = (int)u;
			break;
		case OPT_JSON:
			json_out = 1;
			break;
		case OPT_STDIN:
			from_stdin = 1;
			break;
		default:
			if (cli_common_opt(&co, opt, optarg) == 0)
				break;
			fprintf(stderr, "Try 'cpx publish --help'.\n");
			goto done;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "cpx publish: unexpected argument %s\n"
		    "Try 'cpx publish --help'.\n", argv[optind]);
		goto done;
	}
	if (have_lat != have_lon) {
		fprintf(stderr, "cpx publish: give --lat and --lon together\n");
		goto done;
	}
	if (have_lat && ((o = sub_object(flags, "place")) == NULL ||
	    json_object_set_new(o, "latitude", json_real(lat)) == -1 ||
	    json_object_set_new(o, "longitude", json_real(lon)) == -1))
		goto done;

	if (from_stdin) {
		if (file != NULL) {
			fprintf(stderr, "cpx publish: give --file or --stdin, "
			    "not both\n");
			goto done;
		}
		if ((c = cli_connect(&co, 1, timeout_s * 1000, &rc)) == NULL)
			goto done;
		rc = publish_stream(c, flags, timeout_s, json_out);
		goto done;
	}
	if (file != NULL) {
		if ((base = load_file(file)) == NULL)
			goto done;
	} else if ((base = json_object()) == NULL)
		goto done;
	if (merge(base, flags) == -1 ||
	    (text = json_dumps(base, JSON_COMPACT)) == NULL) {
		fprintf(stderr, "cpx publish: out of memory\n");
		goto done;
	}
	if (require_flags(base, file) == -1)
		goto done;
	if ((a = alert_json_parse(text, strlen(text), err,
	    sizeof(err))) == NULL) {
		fprintf(stderr, "cpx publish: invalid alert: %s\n", err);
		goto done;
	}
	if ((c = cli_connect(&co, 1, timeout_s * 1000, &rc)) == NULL)
		goto done;
	rc = publish(c, a, timeout_s, json_out);
done:
	cpx_client_free(&c);
	alert_json_free(&a);
	free(text);
	json_decref(base);
	json_decref(flags);
	return rc;
}
