/*
 * alert_json.c: JSON -> Cpx__Alert for the client (cpx publish --file),
 * and the two ways a delivery is shown (one JSON line, or a block for a
 * terminal).
 *
 * Owns: parsing the JSON of an alert and ISO 8601 times, the delivery
 * line's keys around the alert, and the sanitising of alert text for
 * terminals. Writing an alert or a time as JSON is lib/json_out.c's, the
 * one writer every tool shares, so an alert reads the same in a delivery
 * and in an audit record; the enum names are lib/alert.c's; semantic
 * checks (country codes, handling rules, clocks) stay in
 * alert_validate().
 *
 * Both directions handle outside data. A JSON file may be written by
 * anyone, so the parser enforces every bound of cpx_limits.h before a
 * message is built. An alert off the wire is only as good as protobuf-c
 * left it (no UTF-8 check, any string), so the JSON writer repairs UTF-8
 * and the terminal printer strips control sequences.
 */
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>

#include "alert.h"
#include "alert_json.h"
#include "cpx_limits.h"
#include "errfmt.h"
#include "json_out.h"

/* The last instant read as text, the last the writer writes as text. */
#define MAX_TIME_MS	JSON_OUT_TIME_MAX
/* Longest key or value quoted back in an error message. */
#define ERR_QUOTE	40
/* jansson's messages (json_error_t.text) are at most 160 bytes. */
#define ERR_JANSSON	160
/* Countries are ISO 3166-1 alpha-2. */
#define COUNTRY_LEN	2

struct pctx {
	char	*err;
	size_t	 errlen;
};

static int	perr(struct pctx *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));

/*
 * Record a parse error. Returns -1 so callers can "return perr(...)".
 */
static int
perr(struct pctx *p, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	(void)verrf(p->err, p->errlen, fmt, ap);
	va_end(ap);
	return -1;
}

/*
 * Copy text from the input (a key, a value, jansson's "near '...'") into
 * an error message as printable ASCII only, truncated: the message ends
 * up on an operator's terminal and must not carry escape sequences.
 */
static const char *
quote(const char *in, char *buf, size_t len)
{
	size_t i, o = 0;

	if (len == 0)
		return "";
	for (i = 0; in != NULL && in[i] != '\0' && o + 1 < len; i++) {
		/* Leave room for "..." when cutting a long one. */
		if (o + 4 == len && in[i + 1] != '\0') {
			memcpy(buf + o, "...", 3);
			o += 3;
			break;
		}
		buf[o++] = (in[i] >= 0x20 && in[i] < 0x7f) ? in[i] : '?';
	}
	buf[o] = '\0';
	return buf;
}

/* ---------------------------------------------------------------- time */

static int
read_digits(const char **p, int n, int *out)
{
	int i, v = 0;

	for (i = 0; i < n; i++) {
		if (!isdigit((unsigned char)(*p)[i]))
			return -1;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	*out = v;
	return 0;
}

static int
days_in_month(int year, int month)
{
	static const int mdays[12] = {
		31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31
	};
	int leap;

	leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
	return mdays[month - 1] + (month == 2 && leap);
}

/* Digits only: milliseconds since the epoch. */
static int
parse_ms_digits(const char *s, int64_t *ms)
{
	int64_t v = 0;
	size_t i;

	for (i = 0; s[i] != '\0'; i++) {
		if (!isdigit((unsigned char)s[i]))
			return -1;
		/* Stop before overflow: MAX_TIME_MS has 15 digits. */
		if (i >= 15)
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	if (i == 0 || v > MAX_TIME_MS)
		return -1;
	*ms = v;
	return 0;
}

/*
 * Parse a UTC time (see alert_json.h for the forms). Returns 0 with *ms
 * set, or -1 with *ms = 0.
 */
int
alert_json_time_parse(const char *s, int64_t *ms)
{
	struct tm tm;
	const char *p = s;
	int year, mon, day, hour = 0, min = 0, sec = 0, frac = 0, scale;
	int oh = 0, om = 0, sign = 0;
	int64_t t, v;
	time_t tt;

	if (ms == NULL)
		return -1;
	*ms = 0;
	if (s == NULL)
		return -1;
	if (isdigit((unsigned char)s[0]) && parse_ms_digits(s, &v) == 0) {
		*ms = v;
		return 0;
	}
	if (read_digits(&p, 4, &year) == -1 || *p++ != '-' ||
	    read_digits(&p, 2, &mon) == -1 || *p++ != '-' ||
	    read_digits(&p, 2, &day) == -1)
		return -1;
	if (*p != '\0') {
		if (*p != 'T' && *p != 't' && *p != ' ')
			return -1;
		p++;
		if (read_digits(&p, 2, &hour) == -1 || *p++ != ':' ||
		    read_digits(&p, 2, &min) == -1)
			return -1;
		if (*p == ':') {
			p++;
			if (read_digits(&p, 2, &sec) == -1)
				return -1;
			if (*p == '.' || *p == ',') {
				p++;
				if (!isdigit((unsigned char)*p))
					return -1;
				/* Keep milliseconds, drop the rest. */
				for (scale = 100; isdigit((unsigned char)*p);
				    p++, scale /= 10)
					frac += (*p - '0') * scale;
			}
		}
		/* A time of day without a zone is ambiguous: refuse it. */
		if (*p == 'Z' || *p == 'z')
			p++;
		else if (*p == '+' || *p == '-') {
			sign = *p++ == '+' ? 1 : -1;
			if (read_digits(&p, 2, &oh) == -1 || *p++ != ':' ||
			    read_digits(&p, 2, &om) == -1)
				return -1;
		} else
			return -1;
		if (*p != '\0')
			return -1;
	}
	if (year < 1970 || mon < 1 || mon > 12 || day < 1 ||
	    day > days_in_month(year, mon) || hour > 23 || min > 59 ||
	    sec > 59 || oh > 23 || om > 59)
		return -1;

	memset(&tm, 0, sizeof(tm));
	tm.tm_year = year - 1900;
	tm.tm_mon = mon - 1;
	tm.tm_mday = day;
	tm.tm_hour = hour;
	tm.tm_min = min;
	tm.tm_sec = sec;
	tt = timegm(&tm);
	if (tt == (time_t)-1)
		return -1;
	t = (int64_t)tt * 1000 + frac - (int64_t)sign * (oh * 60 + om) *
	    60000;
	if (t < 0 || t > MAX_TIME_MS)
		return -1;
	*ms = t;
	return 0;
}

/* The lib writer's format (json_out.h): one time format everywhere. */
int
alert_json_time_format(int64_t ms, char *buf, size_t len)
{
	return json_out_time_format(ms, buf, len);
}

/* ----------------------------------------------------- building alerts */

static void
free_str(char *s)
{
	if (s != NULL && s != (const char *)protobuf_c_empty_string)
		free(s);
}

static void
free_strv(char **v, size_t n)
{
	size_t i;

	if (v == NULL)
		return;
	for (i = 0; i < n; i++)
		free_str(v[i]);
	free(v);
}

static void
vehicle_free(Cpx__Vehicle *v)
{
	if (v == NULL)
		return;
	free_str(v->plate);
	free_str(v->country);
	free_str(v->description);
	free(v);
}

/*
 * Free an alert built by alert_json_parse(). Every string is malloc'd or
 * still protobuf-c's shared empty string, which is never freed.
 */
void
alert_json_free(Cpx__Alert **ap)
{
	Cpx__Alert *a;
	size_t i;

	if (ap == NULL || *ap == NULL)
		return;
	a = *ap;
	free_str(a->id);
	free_str(a->origin);
	free_strv(a->recipients, a->n_recipients);
	free_str(a->summary);
	free_str(a->author);
	if (a->place != NULL) {
		free_str(a->place->name);
		free_str(a->place->crossing);
		free(a->place);
	}
	free_strv(a->route, a->n_route);
	if (a->vehicles != NULL) {
		for (i = 0; i < a->n_vehicles; i++)
			vehicle_free(a->vehicles[i]);
		free(a->vehicles);
	}
	if (a->reference != NULL) {
		free_str(a->reference->alert_id);
		free(a->reference);
	}
	free(a);
	*ap = NULL;
}

/*
 * Every string starts as its own malloc'd "" rather than protobuf-c's
 * shared empty string, so cpx__alert__free_unpacked() can free the
 * result too, whatever its protobuf-c version does with defaults.
 */
static char *
empty_str(void)
{
	return strdup("");
}

static Cpx__Alert *
alert_new_empty(void)
{
	Cpx__Alert *a;

	if ((a = malloc(sizeof(*a))) == NULL)
		return NULL;
	cpx__alert__init(a);
	a->id = empty_str();
	a->origin = empty_str();
	a->summary = empty_str();
	if (a->id == NULL || a->origin == NULL || a->summary == NULL)
		alert_json_free(&a);
	return a;
}

/*
 * Take a string value of at most max bytes into *out (replacing what was
 * there). path names the key in errors.
 */
static int
take_string(struct pctx *p, const char *path, json_t *v, size_t max,
    int nonempty, char **out)
{
	const char *s;
	char *dup;
	size_t n;

	if (!json_is_string(v))
		return perr(p, "%s: expected a string", path);
	s = json_string_value(v);
	n = json_string_length(v);
	if (n > max)
		return perr(p, "%s: longer than %zu bytes", path, max);
	if (nonempty && n == 0)
		return perr(p, "%s: may not be empty", path);
	/* jansson refuses \u0000 unless asked; a NUL would cut the field. */
	if (memchr(s, '\0', n) != NULL)
		return perr(p, "%s: contains a NUL character", path);
	if ((dup = malloc(n + 1)) == NULL)
		return perr(p, "%s: out of memory", path);
	memcpy(dup, s, n);
	dup[n] = '\0';
	free_str(*out);
	*out = dup;
	return 0;
}

/*
 * Take an array of at most maxcount strings of 1..maxlen bytes. *n counts
 * the strings stored so far, so the alert can be freed halfway.
 */
static int
take_string_array(struct pctx *p, const char *key, json_t *v,
    size_t maxcount, size_t maxlen, size_t *n, char ***out)
{
	char path[64];
	size_t i, count;

	if (!json_is_array(v))
		return perr(p, "%s: expected an array of strings", key);
	count = json_array_size(v);
	if (count > maxcount)
		return perr(p, "%s: more than %zu entries", key, maxcount);
	free_strv(*out, *n);
	*out = NULL;
	*n = 0;
	if (count == 0)
		return 0;
	if ((*out = calloc(count, sizeof(**out))) == NULL)
		return perr(p, "%s: out of memory", key);
	for (i = 0; i < count; i++) {
		(void)snprintf(path, sizeof(path), "%s[%zu]", key, i);
		if (take_string(p, path, json_array_get(v, i), maxlen, 1,
		    &(*out)[i]) == -1)
			return -1;
		(*n)++;
	}
	return 0;
}

static int
take_enum(struct pctx *p, const char *key, json_t *v,
    int (*parse)(const char *), const char *expect, int *out)
{
	char q[ERR_QUOTE + 4];
	int e;

	if (!json_is_string(v))
		return perr(p, "%s: expected a string (%s)", key, expect);
	e = parse(json_string_value(v));
	/* 0 is UNSPECIFIED, which every check refuses: not a choice. */
	if (e <= 0)
		return perr(p, "%s: unknown value \"%s\" (expected %s)", key,
		    quote(json_string_value(v), q, sizeof(q)), expect);
	*out = e;
	return 0;
}

static int
take_time(struct pctx *p, const char *key, json_t *v, int64_t *out)
{
	char q[ERR_QUOTE + 4];
	json_int_t i;

	if (json_is_string(v)) {
		if (alert_json_time_parse(json_string_value(v), out) == -1)
			return perr(p, "%s: \"%s\" is not an ISO 8601 time "
			    "such as 2026-11-25T17:30:00Z", key,
			    quote(json_string_value(v), q, sizeof(q)));
		return 0;
	}
	if (json_is_integer(v)) {
		i = json_integer_value(v);
		if (i < 0 || i > MAX_TIME_MS)
			return perr(p, "%s: milliseconds out of range", key);
		*out = i;
		return 0;
	}
	return perr(p, "%s: expected an ISO 8601 string or integer "
	    "milliseconds", key);
}

static int
take_coord(struct pctx *p, const char *path, json_t *v, double lim,
    double *out)
{
	double d;

	if (!json_is_number(v))
		return perr(p, "%s: expected a number", path);
	d = json_number_value(v);
	if (!isfinite(d) || d < -lim || d > lim)
		return perr(p, "%s: out of range -%g..%g", path, lim, lim);
	*out = d;
	return 0;
}

static int
unknown_key(struct pctx *p, const char *where, const char *key)
{
	char q[ERR_QUOTE + 4];

	return perr(p, "%sunknown key \"%s\"", where,
	    quote(key, q, sizeof(q)));
}

static int
take_place(struct pctx *p, json_t *v, Cpx__Alert *a)
{
	Cpx__Place *pl;
	const char *key;
	json_t *val;
	int lat = 0, lon = 0;

	if (!json_is_object(v))
		return perr(p, "place: expected an object");
	if ((pl = malloc(sizeof(*pl))) == NULL)
		return perr(p, "place: out of memory");
	cpx__place__init(pl);
	a->place = pl;
	pl->name = empty_str();
	pl->crossing = empty_str();
	if (pl->name == NULL || pl->crossing == NULL)
		return perr(p, "place: out of memory");
	json_object_foreach(v, key, val) {
		if (strcmp(key, "name") == 0) {
			if (take_string(p, "place.name", val, CPX_MAX_TEXT, 0,
			    &pl->name) == -1)
				return -1;
		} else if (strcmp(key, "crossing") == 0) {
			if (take_string(p, "place.crossing", val,
			    CPX_MAX_TEXT, 0, &pl->crossing) == -1)
				return -1;
		} else if (strcmp(key, "latitude") == 0) {
			if (take_coord(p, "place.latitude", val, 90.0,
			    &pl->latitude) == -1)
				return -1;
			lat = 1;
		} else if (strcmp(key, "longitude") == 0) {
			if (take_coord(p, "place.longitude", val, 180.0,
			    &pl->longitude) == -1)
				return -1;
			lon = 1;
		} else
			return unknown_key(p, "place: ", key);
	}
	if (lat != lon)
		return perr(p, "place: latitude and longitude go together");
	pl->has_coordinates = lat;
	return 0;
}

static int
take_vehicle(struct pctx *p, size_t idx, json_t *v, Cpx__Vehicle *ve)
{
	char path[64], where[32];
	const char *key;
	json_t *val;

	(void)snprintf(where, sizeof(where), "vehicles[%zu]", idx);
	if (!json_is_object(v))
		return perr(p, "%s: expected an object", where);
	json_object_foreach(v, key, val) {
		(void)snprintf(path, sizeof(path), "%s.%s", where, key);
		if (strcmp(key, "plate") == 0) {
			if (take_string(p, path, val, CPX_MAX_PLATE, 0,
			    &ve->plate) == -1)
				return -1;
		} else if (strcmp(key, "country") == 0) {
			if (take_string(p, path, val, COUNTRY_LEN, 0,
			    &ve->country) == -1)
				return -1;
		} else if (strcmp(key, "description") == 0) {
			if (take_string(p, path, val, CPX_MAX_TEXT, 0,
			    &ve->description) == -1)
				return -1;
		} else {
			(void)snprintf(path, sizeof(path), "%s: ", where);
			return unknown_key(p, path, key);
		}
	}
	return 0;
}

static int
take_vehicles(struct pctx *p, json_t *v, Cpx__Alert *a)
{
	Cpx__Vehicle *ve;
	size_t i, count;

	if (!json_is_array(v))
		return perr(p, "vehicles: expected an array of objects");
	count = json_array_size(v);
	if (count > CPX_MAX_VEHICLES)
		return perr(p, "vehicles: more than %u entries",
		    CPX_MAX_VEHICLES);
	if (count == 0)
		return 0;
	if ((a->vehicles = calloc(count, sizeof(*a->vehicles))) == NULL)
		return perr(p, "vehicles: out of memory");
	for (i = 0; i < count; i++) {
		if ((ve = malloc(sizeof(*ve))) == NULL)
			return perr(p, "vehicles: out of memory");
		cpx__vehicle__init(ve);
		a->vehicles[a->n_vehicles++] = ve;
		ve->plate = empty_str();
		ve->country = empty_str();
		ve->description = empty_str();
		if (ve->plate == NULL || ve->country == NULL ||
		    ve->description == NULL)
			return perr(p, "vehicles: out of memory");
		if (take_vehicle(p, i, json_array_get(v, i), ve) == -1)
			return -1;
	}
	return 0;
}

static int
take_reference(struct pctx *p, json_t *v, Cpx__Alert *a)
{
	Cpx__Reference *r;
	const char *key;
	json_t *val;
	int kind = 0, have_id = 0;

	if (!json_is_object(v))
		return perr(p, "reference: expected an object");
	if ((r = malloc(sizeof(*r))) == NULL)
		return perr(p, "reference: out of memory");
	cpx__reference__init(r);
	a->reference = r;
	if ((r->alert_id = empty_str()) == NULL)
		return perr(p, "reference: out of memory");
	json_object_foreach(v, key, val) {
		if (strcmp(key, "alert_id") == 0) {
			if (take_string(p, "reference.alert_id", val,
			    CPX_MAX_ID, 1, &r->alert_id) == -1)
				return -1;
			if (!alert_id_valid(r->alert_id))
				return perr(p, "reference.alert_id: not an "
				    "alert id ([A-Za-z0-9._:-])");
			have_id = 1;
		} else if (strcmp(key, "kind") == 0) {
			if (take_enum(p, "reference.kind", val,
			    alert_reference_kind_parse,
			    alert_reference_kind_choices(), &kind) == -1)
				return -1;
		} else
			return unknown_key(p, "reference: ", key);
	}
	if (!have_id)
		return perr(p, "reference: missing key \"alert_id\"");
	if (kind == 0)
		return perr(p, "reference: missing key \"kind\"");
	r->kind = kind;
	return 0;
}

/* Which of the required keys were seen. */
#define SEEN_CATEGORY	0x1
#define SEEN_SEVERITY	0x2
#define SEEN_HANDLING	0x4
#define SEEN_SUMMARY	0x8

static int
take_field(struct pctx *p, const char *key, json_t *v, Cpx__Alert *a,
    int *seen)
{
	json_int_t n;
	int e;

	if (strcmp(key, "id") == 0) {
		if (take_string(p, key, v, CPX_MAX_ID, 0, &a->id) == -1)
			return -1;
		if (a->id[0] != '\0' && !alert_id_valid(a->id))
			return perr(p, "id: not an alert id ([A-Za-z0-9._:-])");
	} else if (strcmp(key, "origin") == 0)
		return take_string(p, key, v, COUNTRY_LEN, 0, &a->origin);
	else if (strcmp(key, "issued_at") == 0)
		return take_time(p, key, v, &a->issued_at);
	else if (strcmp(key, "expires_at") == 0)
		return take_time(p, key, v, &a->expires_at);
	else if (strcmp(key, "category") == 0) {
		if (take_enum(p, key, v, alert_category_parse,
		    alert_category_choices(), &e) == -1)
			return -1;
		a->category = e;
		*seen |= SEEN_CATEGORY;
	} else if (strcmp(key, "severity") == 0) {
		if (take_enum(p, key, v, alert_severity_parse,
		    alert_severity_choices(), &e) == -1)
			return -1;
		a->severity = e;
		*seen |= SEEN_SEVERITY;
	} else if (strcmp(key, "handling") == 0) {
		if (take_enum(p, key, v, alert_handling_parse,
		    alert_handling_choices(), &e) == -1)
			return -1;
		a->handling = e;
		*seen |= SEEN_HANDLING;
	} else if (strcmp(key, "recipients") == 0)
		return take_string_array(p, key, v, CPX_MAX_RECIPIENTS,
		    CPX_MAX_REGION_NAME, &a->n_recipients, &a->recipients);
	else if (strcmp(key, "summary") == 0) {
		if (take_string(p, key, v, CPX_MAX_SUMMARY, 1,
		    &a->summary) == -1)
			return -1;
		*seen |= SEEN_SUMMARY;
	} else if (strcmp(key, "place") == 0)
		return take_place(p, v, a);
	else if (strcmp(key, "route") == 0)
		return take_string_array(p, key, v, CPX_MAX_ROUTE,
		    CPX_MAX_TEXT, &a->n_route, &a->route);
	else if (strcmp(key, "vehicles") == 0)
		return take_vehicles(p, v, a);
	else if (strcmp(key, "persons_count") == 0) {
		if (!json_is_integer(v))
			return perr(p, "persons_count: expected an integer");
		n = json_integer_value(v);
		if (n < 0 || n > (json_int_t)UINT32_MAX)
			return perr(p, "persons_count: out of range");
		a->persons_count = (uint32_t)n;
	} else if (strcmp(key, "reference") == 0)
		return take_reference(p, v, a);
	else if (strcmp(key, "author") == 0)
		/* Who wrote it; alert_validate refuses control characters. */
		return take_string(p, key, v, CPX_MAX_AUTHOR, 0, &a->author);
	else
		return unknown_key(p, "", key);
	return 0;
}

/*
 * Parse a JSON alert (see alert_json.h). The caller owns the result;
 * NULL with err set on failure.
 */
Cpx__Alert *
alert_json_parse(const char *text, size_t len, char *err, size_t errlen)
{
	struct pctx p = { err, errlen };
	json_error_t jerr;
	json_t *root = NULL, *v;
	Cpx__Alert *a = NULL, *ret = NULL;
	const char *key;
	char q[ERR_JANSSON];
	int seen = 0;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (text == NULL) {
		(void)perr(&p, "no input");
		goto done;
	}
	/* Bound jansson's work and memory before it sees a byte. */
	if (len > ALERT_JSON_MAX_TEXT) {
		(void)perr(&p, "input too large (%zu bytes, at most %u)", len,
		    ALERT_JSON_MAX_TEXT);
		goto done;
	}
	/*
	 * Duplicate keys are refused: one reader taking the first and
	 * another the last is how a reviewed file says something else.
	 */
	root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL) {
		(void)perr(&p, "line %d column %d: %s", jerr.line,
		    jerr.column, quote(jerr.text, q, sizeof(q)));
		goto done;
	}
	if (!json_is_object(root)) {
		(void)perr(&p, "line 1: expected a JSON object");
		goto done;
	}
	if ((a = alert_new_empty()) == NULL) {
		(void)perr(&p, "out of memory");
		goto done;
	}
	json_object_foreach(root, key, v) {
		if (take_field(&p, key, v, a, &seen) == -1)
			goto done;
	}
	if (!(seen & SEEN_CATEGORY))
		(void)perr(&p, "missing key \"category\"");
	else if (!(seen & SEEN_SEVERITY))
		(void)perr(&p, "missing key \"severity\"");
	else if (!(seen & SEEN_HANDLING))
		(void)perr(&p, "missing key \"handling\"");
	else if (!(seen & SEEN_SUMMARY))
		(void)perr(&p, "missing key \"summary\"");
	else {
		ret = a;
		a = NULL;
	}
done:
	alert_json_free(&a);
	json_decref(root);
	return ret;
}

/* ------------------------------------------------------- writing JSON */

/*
 * The JSON object for an alert: the lib writer's (json_out.h), so an
 * alert reads the same in a delivery line and in an audit record. The
 * caller owns the result; NULL on failure.
 */
json_t *
alert_json_from_alert(const Cpx__Alert *a)
{
	return json_out_alert(a);
}

/* Set o[k] = v, taking v; -1 if v is NULL (allocation failed). */
static int
set(json_t *o, const char *k, json_t *v)
{
	if (v == NULL)
		return -1;
	return json_object_set_new(o, k, v);
}

/* o[k] = the same key of the alert object, or null. */
static int
copy_key(json_t *o, const char *k, json_t *aj)
{
	json_t *v = aj != NULL ? json_object_get(aj, k) : NULL;

	return set(o, k, v != NULL ? json_incref(v) : json_null());
}

static json_t *
jstr_or_null(const char *s)
{
	return s != NULL ? json_out_string(s) : json_null();
}

/*
 * One JSON line for a delivery (see alert_json.h). The caller owns the
 * result (free()); NULL on failure.
 */
char *
alert_json_delivery_line(const struct alert_json_delivery *d)
{
	static const char *const from_alert[] = {
		"id", "origin", "category", "severity", "handling",
		"recipients", "summary", "issued_at"
	};
	json_t *o = NULL, *aj = NULL;
	char *line = NULL;
	size_t i;

	if (d == NULL)
		goto done;
	if (d->alert != NULL && (aj = json_out_alert(d->alert)) == NULL)
		goto done;
	if ((o = json_object()) == NULL)
		goto done;
	if (set(o, "seq", json_out_u64(d->seq)) == -1 ||
	    set(o, "accepted_at", json_out_time(d->accepted_at)) == -1)
		goto done;
	for (i = 0; i < sizeof(from_alert) / sizeof(from_alert[0]); i++)
		if (copy_key(o, from_alert[i], aj) == -1)
			goto done;
	if (set(o, "signer", jstr_or_null(d->signer_node)) == -1 ||
	    set(o, "signer_country", jstr_or_null(d->signer_country)) == -1 ||
	    set(o, "verified", json_boolean(d->verified)) == -1 ||
	    set(o, "replayed", json_boolean(d->replayed)) == -1)
		goto done;
	if (d->verify_error != NULL &&
	    set(o, "verify_error", json_out_string(d->verify_error)) == -1)
		goto done;
	if (set(o, "alert", aj != NULL ? json_incref(aj) : json_null()) == -1)
		goto done;
	line = json_out_line(o);
done:
	json_decref(aj);
	json_decref(o);
	return line;
}

/* ------------------------------------------------------ human output */

/*
 * Write s for a terminal. An alert's text comes from another country's
 * node and the certificate fields from its CA: neither may drive the
 * terminal. C0 controls, DEL and C1 controls (ESC, CSI 0x9b, OSC...)
 * could recolour, retitle or rewrite the screen, and bidi overrides can
 * make text read differently than it is, so all become '?'; line breaks
 * and tabs become spaces so one field cannot forge another's line.
 * Invalid UTF-8 becomes '?' too (a lone 0x9b is CSI on some terminals).
 */
static void
put_clean(FILE *out, const char *s)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i, n, k;
	uint32_t cp;

	if (s == NULL)
		return;
	n = strlen(s);
	for (i = 0; i < n; i += k) {
		if ((k = json_utf8_next(u + i, n - i, &cp)) == 0) {
			k = 1;
			fputc('?', out);
		} else if (cp == '\t' || cp == '\n' || cp == '\r' ||
		    cp == 0x2028 || cp == 0x2029)
			fputc(' ', out);
		else if (cp < 0x20 || (cp >= 0x7f && cp < 0xa0) ||
		    cp == 0x200e || cp == 0x200f ||
		    (cp >= 0x202a && cp <= 0x202e) ||
		    (cp >= 0x2066 && cp <= 0x2069))
			fputc('?', out);
		else
			fwrite(u + i, 1, k, out);
	}
}

/* "2026-11-25 17:30:00Z", or "?" if ms cannot be shown. */
static void
put_time(FILE *out, int64_t ms)
{
	char buf[ALERT_JSON_TIME_LEN];

	if (alert_json_time_format(ms, buf, sizeof(buf)) == -1) {
		fputc('?', out);
		return;
	}
	buf[10] = ' ';
	buf[19] = 'Z';
	buf[20] = '\0';
	fputs(buf, out);
}

static void
put_upper(FILE *out, const char *s)
{
	if (s == NULL) {
		fputc('?', out);
		return;
	}
	for (; *s != '\0'; s++)
		fputc(*s >= 0x20 && *s < 0x7f ?
		    toupper((unsigned char)*s) : '?', out);
}

static void
put_label(FILE *out, const char *label)
{
	fprintf(out, "  %-10s ", label);
}

static void
put_place(FILE *out, const Cpx__Place *pl)
{
	const char *sep = "";

	if ((pl->name == NULL || pl->name[0] == '\0') &&
	    (pl->crossing == NULL || pl->crossing[0] == '\0') &&
	    !pl->has_coordinates)
		return;
	put_label(out, "place:");
	if (pl->name != NULL && pl->name[0] != '\0') {
		put_clean(out, pl->name);
		sep = "; ";
	}
	if (pl->crossing != NULL && pl->crossing[0] != '\0') {
		fprintf(out, "%scrossing ", sep);
		put_clean(out, pl->crossing);
		sep = "; ";
	}
	if (pl->has_coordinates)
		fprintf(out, "%s%.5f, %.5f", sep, pl->latitude,
		    pl->longitude);
	fputc('\n', out);
}

static void
put_details(FILE *out, const Cpx__Alert *a)
{
	const char *kind;
	size_t i;

	put_label(out, "summary:");
	put_clean(out, a->summary);
	fputc('\n', out);
	if (a->place != NULL)
		put_place(out, a->place);
	if (a->n_route > 0) {
		put_label(out, "route:");
		for (i = 0; i < a->n_route; i++) {
			if (i > 0)
				fputs(" -> ", out);
			put_clean(out, a->route[i]);
		}
		fputc('\n', out);
	}
	for (i = 0; i < a->n_vehicles; i++) {
		if (a->vehicles[i] == NULL)
			continue;
		put_label(out, "vehicle:");
		put_clean(out, a->vehicles[i]->plate);
		if (a->vehicles[i]->country != NULL &&
		    a->vehicles[i]->country[0] != '\0') {
			fputs(" (", out);
			put_clean(out, a->vehicles[i]->country);
			fputc(')', out);
		}
		if (a->vehicles[i]->description != NULL &&
		    a->vehicles[i]->description[0] != '\0') {
			fputc(' ', out);
			put_clean(out, a->vehicles[i]->description);
		}
		fputc('\n', out);
	}
	if (a->persons_count > 0) {
		put_label(out, "persons:");
		fprintf(out, "%u\n", (unsigned)a->persons_count);
	}
	if (a->reference != NULL && a->reference->kind != 0) {
		kind = alert_reference_kind_parse(alert_reference_kind_name(
		    a->reference->kind)) == (int)a->reference->kind ?
		    alert_reference_kind_name(a->reference->kind) : NULL;
		put_label(out, "reference:");
		fprintf(out, "%s ", kind != NULL ? kind : "?");
		put_clean(out, a->reference->alert_id);
		fputc('\n', out);
	}
	if (a->expires_at != 0) {
		put_label(out, "expires:");
		put_time(out, a->expires_at);
		fputc('\n', out);
	}
	put_label(out, "id:");
	put_clean(out, a->id);
	fputc('\n', out);
}

/*
 * Print a delivery for a terminal (see alert_json.h). Returns 0, or -1
 * if writing failed.
 */
int
alert_json_print_human(FILE *out, const struct alert_json_delivery *d)
{
	const Cpx__Alert *a;
	const char *name;
	size_t i;

	if (out == NULL || d == NULL)
		return -1;
	a = d->alert;
	fprintf(out, "#%llu ", (unsigned long long)d->seq);
	if (a == NULL) {
		put_time(out, d->accepted_at);
		fputs("  (alert could not be decoded)", out);
	} else {
		put_time(out, a->issued_at);
		fputc(' ', out);
		put_clean(out, a->origin);
		if (a->author != NULL && a->author[0] != '\0') {
			fputs(" by ", out);
			put_clean(out, a->author);
		}
		fputs(" -> ", out);
		if (a->n_recipients == 0)
			fputs("whole network", out);
		for (i = 0; i < a->n_recipients; i++) {
			if (i > 0)
				fputc(',', out);
			put_clean(out, a->recipients[i]);
		}
		fputs("  ", out);
		put_upper(out, alert_severity_name(a->severity));
		/*
		 * Labelled: "vehicle restricted" read as one phrase to a
		 * newcomer, and handling is the one that limits forwarding.
		 */
		fputs("  category: ", out);
		name = alert_category_name(a->category);
		put_clean(out, name != NULL ? name : "?");
		fputs("  handling: ", out);
		name = alert_handling_name(a->handling);
		put_clean(out, name != NULL ? name : "?");
	}
	if (d->verified) {
		fputs("  [verified: ", out);
		put_clean(out, d->signer_node != NULL ? d->signer_node : "?");
	} else {
		fputs("  [NOT VERIFIED: ", out);
		put_clean(out, d->verify_error != NULL ? d->verify_error :
		    "no reason given");
	}
	fputc(']', out);
	if (d->replayed)
		fputs(" (replayed)", out);
	fputc('\n', out);
	if (a != NULL)
		put_details(out, a);
	if (fflush(out) != 0 || ferror(out))
		return -1;
	return 0;
}
