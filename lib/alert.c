/*
 * alert.c: is a decoded Alert well-formed? Known enums, sizes within
 * cpx_limits.h, valid UTF-8, valid country codes and region-name syntax,
 * coherent handling and recipients, times within bounds.
 *
 * protobuf-c checks none of this: it accepts any int for a proto3 enum,
 * any length for a string, any repeat count. Both the broker (before it
 * accepts) and the subscriber (before it shows) run alert_validate, so a
 * broker bug or a hostile broker cannot push a malformed alert to a user.
 * Which regions exist and who may receive what is policy (broker/policy.c),
 * not here. Also owns the short names of the schema's enums (logs, JSON,
 * command line), derived from the protobuf-c descriptors.
 */
#include <ctype.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "alert.h"
#include "clock.h"
#include "cpx_limits.h"
#include "identity.h"

/* Alert.author: an officer's sign-in name, bytes (proto/cpx.proto). */
#ifndef CPX_MAX_AUTHOR
#define CPX_MAX_AUTHOR		64u
#endif

/*
 * The schema's enums and the prefix their value names share. The short
 * name of a value, used in logs, JSON and on the command line, is its
 * schema name without the prefix, in lower case, '_' written '-':
 * REASON_BAD_SIGNATURE is "bad-signature". Deriving it from the
 * descriptors protoc generates keeps one list of values, the schema: a
 * new value is named, parsed and known without an edit here.
 */
enum schema_enum {
	SE_CATEGORY,
	SE_SEVERITY,
	SE_HANDLING,
	SE_REFERENCE_KIND,
	SE_REASON,
	SE_RECORD_KIND,
	SE_COUNT
};

static const struct {
	const ProtobufCEnumDescriptor	*desc;
	const char			*prefix;
} schema_enums[SE_COUNT] = {
	[SE_CATEGORY] = { &cpx__category__descriptor, "CATEGORY_" },
	[SE_SEVERITY] = { &cpx__severity__descriptor, "SEVERITY_" },
	[SE_HANDLING] = { &cpx__handling__descriptor, "HANDLING_" },
	[SE_REFERENCE_KIND] = { &cpx__reference_kind__descriptor,
	    "REFERENCE_" },
	[SE_REASON] = { &cpx__reason__descriptor, "REASON_" },
	[SE_RECORD_KIND] = { &cpx__record_kind__descriptor, "RECORD_" },
};

/*
 * Room for the short names, filled once and read-only after that (the
 * names must outlive every caller, and verifier threads log them too).
 * A value past SE_VALUES_MAX, or a name longer than SE_NAME_MAX, reads
 * as "unknown"; test_alert walks every value of the schema, so it fails
 * before such a schema ships.
 */
#define SE_VALUES_MAX	64
#define SE_NAME_MAX	32
#define SE_CHOICES_MAX	(SE_VALUES_MAX * 8)

static char		short_names[SE_COUNT][SE_VALUES_MAX][SE_NAME_MAX];
/* "route, vehicle, ...": every name but value 0's, for messages. */
static char		choices[SE_COUNT][SE_CHOICES_MAX];
static pthread_once_t	short_names_once = PTHREAD_ONCE_INIT;

static void
choices_add(char *list, const char *name)
{
	size_t	used = strlen(list);

	(void)snprintf(list + used, SE_CHOICES_MAX - used, "%s%s",
	    used > 0 ? ", " : "", name);
}

static void
short_names_init(void)
{
	const ProtobufCEnumDescriptor	*d;
	const char			*s;
	size_t				 plen, i, k, n;
	int				 e;

	for (e = 0; e < SE_COUNT; e++) {
		d = schema_enums[e].desc;
		plen = strlen(schema_enums[e].prefix);
		n = d->n_values < SE_VALUES_MAX ? d->n_values : SE_VALUES_MAX;
		for (i = 0; i < n; i++) {
			s = d->values[i].name;
			if (strncmp(s, schema_enums[e].prefix, plen) == 0)
				s += plen;
			if (strlen(s) >= SE_NAME_MAX)
				continue;	/* left empty: "unknown" */
			for (k = 0; s[k] != '\0'; k++)
				short_names[e][i][k] = s[k] == '_' ? '-' :
				    (char)tolower((unsigned char)s[k]);
			short_names[e][i][k] = '\0';
			if (d->values[i].value != 0)
				choices_add(choices[e], short_names[e][i]);
		}
	}
}

static const char *
name_of(enum schema_enum e, int v)
{
	const ProtobufCEnumDescriptor	*d = schema_enums[e].desc;
	const ProtobufCEnumValue	*ev;
	size_t				 i;

	if (pthread_once(&short_names_once, short_names_init) != 0)
		return "unknown";
	if ((ev = protobuf_c_enum_descriptor_get_value(d, v)) == NULL)
		return "unknown";
	i = (size_t)(ev - d->values);
	if (i >= SE_VALUES_MAX || short_names[e][i][0] == '\0')
		return "unknown";
	return short_names[e][i];
}

/*
 * The value whose short name is s (case-insensitive), or -1. Never the
 * value 0 (UNSPECIFIED, NONE): what the schema refuses or means "not
 * set" cannot be asked for by name.
 */
static int
parse_name(enum schema_enum e, const char *s)
{
	const ProtobufCEnumDescriptor	*d = schema_enums[e].desc;
	size_t				 i;

	if (s == NULL ||
	    pthread_once(&short_names_once, short_names_init) != 0)
		return -1;
	for (i = 0; i < d->n_values && i < SE_VALUES_MAX; i++)
		if (d->values[i].value != 0 && short_names[e][i][0] != '\0' &&
		    strcasecmp(short_names[e][i], s) == 0)
			return d->values[i].value;
	return -1;
}

static const char *
choices_of(enum schema_enum e)
{
	if (pthread_once(&short_names_once, short_names_init) != 0)
		return "";
	return choices[e];
}

/* Is v a value of the schema's enum d, other than 0 (unspecified)? */
static int
set_and_known(const ProtobufCEnumDescriptor *d, int v)
{
	return v != 0 && protobuf_c_enum_descriptor_get_value(d, v) != NULL;
}

const char *
alert_category_name(int c)
{
	return name_of(SE_CATEGORY, c);
}

const char *
alert_severity_name(int s)
{
	return name_of(SE_SEVERITY, s);
}

const char *
alert_handling_name(int h)
{
	return name_of(SE_HANDLING, h);
}

const char *
alert_reference_kind_name(int k)
{
	return name_of(SE_REFERENCE_KIND, k);
}

const char *
alert_reason_name(int r)
{
	return name_of(SE_REASON, r);
}

const char *
alert_record_kind_name(int k)
{
	return name_of(SE_RECORD_KIND, k);
}

int
alert_category_parse(const char *s)
{
	return parse_name(SE_CATEGORY, s);
}

int
alert_severity_parse(const char *s)
{
	return parse_name(SE_SEVERITY, s);
}

int
alert_handling_parse(const char *s)
{
	return parse_name(SE_HANDLING, s);
}

int
alert_reference_kind_parse(const char *s)
{
	return parse_name(SE_REFERENCE_KIND, s);
}

int
alert_reason_parse(const char *s)
{
	return parse_name(SE_REASON, s);
}

int
alert_record_kind_parse(const char *s)
{
	return parse_name(SE_RECORD_KIND, s);
}

const char *
alert_category_choices(void)
{
	return choices_of(SE_CATEGORY);
}

const char *
alert_severity_choices(void)
{
	return choices_of(SE_SEVERITY);
}

const char *
alert_handling_choices(void)
{
	return choices_of(SE_HANDLING);
}

const char *
alert_reference_kind_choices(void)
{
	return choices_of(SE_REFERENCE_KIND);
}

int64_t
alert_now_ms(void)
{
	return clock_wall_ms();
}

int
alert_id_valid(const char *s)
{
	size_t	i;

	if (s == NULL || s[0] == '\0')
		return 0;
	for (i = 0; s[i] != '\0'; i++) {
		if (i >= CPX_MAX_ID)
			return 0;
		if (!((s[i] >= 'A' && s[i] <= 'Z') ||
		    (s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= '0' && s[i] <= '9') ||
		    s[i] == '.' || s[i] == '_' || s[i] == ':' || s[i] == '-'))
			return 0;
	}
	return 1;
}

int
alert_region_name_valid(const char *s)
{
	size_t	i;

	if (s == NULL || s[0] == '\0')
		return 0;
	for (i = 0; s[i] != '\0'; i++) {
		if (i >= CPX_MAX_REGION_NAME)
			return 0;
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return 0;
	}
	return 1;
}

#define TEXT_REQUIRED	0x01	/* may not be empty */
#define TEXT_MULTILINE	0x02	/* may contain newline and tab */

/*
 * Is code point cp a control character that has no place in alert text?
 * C0 (except newline and tab in multi-line text), DEL, C1, the line and
 * paragraph separators, and the bidirectional embeddings, overrides and
 * isolates. These let a sender rewrite what a duty officer's terminal
 * shows (ANSI escapes such as ESC [ 2 J, or a bidi override that reverses
 * a licence plate), or forge extra lines in a log.
 */
static int
is_control(uint32_t cp, int flags)
{
	if (cp == '\n' || cp == '\t')
		return !(flags & TEXT_MULTILINE);
	return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) ||
	    (cp >= 0x2028 && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

/*
 * Scan s[0..len): 0 if it is well-formed UTF-8 (RFC 3629: no overlong
 * forms, no surrogates, nothing above U+10FFFF) free of control
 * characters, -1 if not UTF-8 (an invalid sequence can hide or fake
 * characters in what a reader sees), -2 if it holds a control character.
 */
static int
text_scan(const unsigned char *s, size_t len, int flags)
{
	size_t		i = 0, n, k;
	uint32_t	cp, min;

	while (i < len) {
		if (s[i] < 0x80) {
			if (is_control(s[i], flags))
				return -2;
			i++;
			continue;
		}
		if ((s[i] & 0xe0) == 0xc0) {
			n = 1;
			cp = s[i] & 0x1f;
			min = 0x80;
		} else if ((s[i] & 0xf0) == 0xe0) {
			n = 2;
			cp = s[i] & 0x0f;
			min = 0x800;
		} else if ((s[i] & 0xf8) == 0xf0) {
			n = 3;
			cp = s[i] & 0x07;
			min = 0x10000;
		} else
			return -1;
		if (n > len - i - 1)
			return -1;
		for (k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return -1;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return -1;
		if (is_control(cp, flags))
			return -2;
		i += n + 1;
	}
	return 0;
}

/*
 * Copy at most 40 bytes of s into dst for an error message, quoted, with
 * anything but printable ASCII as \xNN: a refusal text must not carry a
 * peer's control characters into logs.
 */
static const char *
quote(char *dst, size_t dstlen, const char *s)
{
	size_t	i, o = 0;
	int	n;

	if (dstlen < 8) {
		if (dstlen > 0)
			dst[0] = '\0';
		return dst;
	}
	dst[o++] = '"';
	for (i = 0; s != NULL && s[i] != '\0' && o + 6 < dstlen; i++) {
		if (i == 40) {
			dst[o++] = '.';
			dst[o++] = '.';
			dst[o++] = '.';
			break;
		}
		if ((unsigned char)s[i] >= 0x20 && (unsigned char)s[i] < 0x7f &&
		    s[i] != '"' && s[i] != '\\')
			dst[o++] = s[i];
		else {
			n = snprintf(dst + o, dstlen - o, "\\x%02x",
			    (unsigned char)s[i]);
			if (n < 0 || (size_t)n >= dstlen - o)
				break;
			o += n;
		}
	}
	dst[o++] = '"';
	dst[o] = '\0';
	return dst;
}

/* Check a free-text field: length, UTF-8, no control characters. */
static int
text_ok(const char *s, size_t max, int flags, const char *what,
    char *why, size_t whylen)
{
	size_t	len = s == NULL ? 0 : strlen(s);
	int	rc;

	if (len == 0 && (flags & TEXT_REQUIRED)) {
		snprintf(why, whylen, "%s is empty", what);
		return -1;
	}
	if (len > max) {
		snprintf(why, whylen, "%s is %zu bytes, over %zu", what, len,
		    max);
		return -1;
	}
	if ((rc = text_scan((const unsigned char *)s, len, flags)) == -1) {
		snprintf(why, whylen, "%s is not valid UTF-8", what);
		return -1;
	}
	if (rc == -2) {
		snprintf(why, whylen, "%s contains a control character", what);
		return -1;
	}
	return 0;
}

static int
check_recipients(const Cpx__Alert *a, int *reason, char *why, size_t whylen)
{
	char	q[200];
	size_t	i, j;
	int	regions = 0;

	if (a->n_recipients > CPX_MAX_RECIPIENTS) {
		*reason = CPX__REASON__REASON_INVALID_ALERT;
		snprintf(why, whylen, "%zu recipients, over %u",
		    a->n_recipients, CPX_MAX_RECIPIENTS);
		return -1;
	}
	for (i = 0; i < a->n_recipients; i++) {
		if (a->recipients[i] == NULL)
			goto unknown;
		if (identity_country_valid(a->recipients[i]))
			continue;
		if (alert_region_name_valid(a->recipients[i])) {
			regions++;
			continue;
		}
unknown:
		*reason = CPX__REASON__REASON_UNKNOWN_RECIPIENT;
		snprintf(why, whylen, "recipient %zu %s is neither a country "
		    "code nor a region name", i + 1,
		    quote(q, sizeof(q), a->recipients[i]));
		return -1;
	}
	/* Quadratic, but on at most 64 names of at most 32 bytes. */
	for (i = 0; i < a->n_recipients; i++) {
		for (j = i + 1; j < a->n_recipients; j++) {
			if (strcmp(a->recipients[i], a->recipients[j]) == 0) {
				*reason = CPX__REASON__REASON_INVALID_ALERT;
				snprintf(why, whylen, "recipient %zu %s is "
				    "repeated as recipient %zu", i + 1,
				    quote(q, sizeof(q), a->recipients[i]),
				    j + 1);
				return -1;
			}
		}
	}
	if ((a->handling == CPX__HANDLING__HANDLING_RESTRICTED ||
	    a->handling == CPX__HANDLING__HANDLING_NAMED_ONLY) &&
	    a->n_recipients == 0) {
		*reason = CPX__REASON__REASON_HANDLING_RECIPIENTS;
		snprintf(why, whylen, "handling %s needs at least one "
		    "recipient", alert_handling_name(a->handling));
		return -1;
	}
	if (a->handling == CPX__HANDLING__HANDLING_NAMED_ONLY && regions > 0) {
		for (i = 0; i < a->n_recipients; i++)
			if (!identity_country_valid(a->recipients[i]))
				break;
		*reason = CPX__REASON__REASON_HANDLING_RECIPIENTS;
		snprintf(why, whylen, "handling named-only allows countries "
		    "only, but recipient %zu %s is a region", i + 1,
		    quote(q, sizeof(q), a->recipients[i]));
		return -1;
	}
	return 0;
}

static int
check_place(const Cpx__Place *p, char *why, size_t whylen)
{
	if (p == NULL)
		return 0;
	if (text_ok(p->name, CPX_MAX_TEXT, 0, "place name", why,
	    whylen) == -1 ||
	    text_ok(p->crossing, CPX_MAX_TEXT, 0, "place crossing", why,
	    whylen) == -1)
		return -1;
	/* NaN compares false with everything: test finiteness explicitly. */
	if (!isfinite(p->latitude) || p->latitude < -90.0 ||
	    p->latitude > 90.0) {
		snprintf(why, whylen, "place latitude not in -90..90");
		return -1;
	}
	if (!isfinite(p->longitude) || p->longitude < -180.0 ||
	    p->longitude > 180.0) {
		snprintf(why, whylen, "place longitude not in -180..180");
		return -1;
	}
	return 0;
}

static int
check_route_vehicles(const Cpx__Alert *a, char *why, size_t whylen)
{
	const Cpx__Vehicle	*v;
	char			 what[64], q[200];
	size_t			 i;

	if (a->n_route > CPX_MAX_ROUTE) {
		snprintf(why, whylen, "%zu route waypoints, over %u",
		    a->n_route, CPX_MAX_ROUTE);
		return -1;
	}
	for (i = 0; i < a->n_route; i++) {
		snprintf(what, sizeof(what), "route waypoint %zu", i + 1);
		if (text_ok(a->route[i], CPX_MAX_TEXT, TEXT_REQUIRED, what, why,
		    whylen) == -1)
			return -1;
	}
	if (a->n_vehicles > CPX_MAX_VEHICLES) {
		snprintf(why, whylen, "%zu vehicles, over %u", a->n_vehicles,
		    CPX_MAX_VEHICLES);
		return -1;
	}
	for (i = 0; i < a->n_vehicles; i++) {
		if ((v = a->vehicles[i]) == NULL) {
			snprintf(why, whylen, "vehicle %zu missing", i + 1);
			return -1;
		}
		snprintf(what, sizeof(what), "vehicle %zu plate", i + 1);
		if (text_ok(v->plate, CPX_MAX_PLATE, 0, what, why,
		    whylen) == -1)
			return -1;
		snprintf(what, sizeof(what), "vehicle %zu description", i + 1);
		if (text_ok(v->description, CPX_MAX_TEXT, 0, what, why,
		    whylen) == -1)
			return -1;
		if (v->country != NULL && v->country[0] != '\0' &&
		    !identity_country_valid(v->country)) {
			snprintf(why, whylen, "vehicle %zu country %s is not "
			    "a country code", i + 1,
			    quote(q, sizeof(q), v->country));
			return -1;
		}
	}
	return 0;
}

static int
check_reference(const Cpx__Alert *a, char *why, size_t whylen)
{
	const Cpx__Reference	*r = a->reference;
	char			 q[200];

	if (r == NULL)
		return 0;
	switch (r->kind) {
	case CPX__REFERENCE_KIND__REFERENCE_NONE:
		if (r->alert_id != NULL && r->alert_id[0] != '\0') {
			snprintf(why, whylen, "reference has an alert id but "
			    "no kind");
			return -1;
		}
		return 0;
	case CPX__REFERENCE_KIND__REFERENCE_UPDATES:
	case CPX__REFERENCE_KIND__REFERENCE_WITHDRAWS:
		break;
	default:
		snprintf(why, whylen, "reference kind %d unknown",
		    (int)r->kind);
		return -1;
	}
	if (!alert_id_valid(r->alert_id)) {
		snprintf(why, whylen, "reference alert id %s is not a valid id",
		    quote(q, sizeof(q), r->alert_id));
		return -1;
	}
	/* An alert that updates or withdraws itself would loop a viewer. */
	if (strcmp(r->alert_id, a->id) == 0) {
		snprintf(why, whylen, "alert references itself");
		return -1;
	}
	return 0;
}

/*
 * |a - b| without signed overflow: issued_at comes from the peer and may
 * be INT64_MIN.
 */
static uint64_t
abs_diff(int64_t a, int64_t b)
{
	return a >= b ? (uint64_t)a - (uint64_t)b : (uint64_t)b - (uint64_t)a;
}

int
alert_validate(const Cpx__Alert *a, int64_t now_ms, int64_t max_skew_ms,
    int *reason, char *why, size_t whylen)
{
	char	q[200];

	*reason = CPX__REASON__REASON_INVALID_ALERT;
	if (whylen > 0)
		why[0] = '\0';
	if (a == NULL) {
		snprintf(why, whylen, "no alert");
		return -1;
	}
	if (!alert_id_valid(a->id)) {
		snprintf(why, whylen, "id %s is not 1..%u bytes of "
		    "[A-Za-z0-9._:-]", quote(q, sizeof(q), a->id), CPX_MAX_ID);
		return -1;
	}
	if (!identity_country_valid(a->origin)) {
		snprintf(why, whylen, "origin %s is not a country code",
		    quote(q, sizeof(q), a->origin));
		return -1;
	}
	if (a->issued_at <= 0) {
		snprintf(why, whylen, "issued_at %lld is not a time",
		    (long long)a->issued_at);
		return -1;
	}
	if (!set_and_known(&cpx__category__descriptor, a->category)) {
		snprintf(why, whylen, "category %d unknown or unspecified",
		    (int)a->category);
		return -1;
	}
	if (!set_and_known(&cpx__severity__descriptor, a->severity)) {
		snprintf(why, whylen, "severity %d unknown or unspecified",
		    (int)a->severity);
		return -1;
	}
	if (!set_and_known(&cpx__handling__descriptor, a->handling)) {
		snprintf(why, whylen, "handling %d unknown or unspecified",
		    (int)a->handling);
		return -1;
	}
	if (text_ok(a->summary, CPX_MAX_SUMMARY,
	    TEXT_REQUIRED | TEXT_MULTILINE, "summary", why,
	    whylen) == -1 ||
	    check_place(a->place, why, whylen) == -1 ||
	    check_route_vehicles(a, why, whylen) == -1 ||
	    check_reference(a, why, whylen) == -1 ||
	    text_ok(a->author, CPX_MAX_AUTHOR, 0, "author", why,
	    whylen) == -1)
		return -1;
	if (a->expires_at < 0 ||
	    (a->expires_at != 0 && a->expires_at <= a->issued_at)) {
		snprintf(why, whylen, "expires_at %lld is not after issued_at "
		    "%lld", (long long)a->expires_at, (long long)a->issued_at);
		return -1;
	}
	if (check_recipients(a, reason, why, whylen) == -1)
		return -1;

	/* Time checks last: a malformed alert is refused as malformed. */
	if (max_skew_ms != 0) {
		if (abs_diff(a->issued_at, now_ms) > (uint64_t)max_skew_ms) {
			*reason = CPX__REASON__REASON_CLOCK_SKEW;
			snprintf(why, whylen, "issued_at is %lld ms from now, "
			    "over the %lld ms bound",
			    (long long)(a->issued_at - now_ms),
			    (long long)max_skew_ms);
			return -1;
		}
		if (a->expires_at != 0 && a->expires_at < now_ms) {
			*reason = CPX__REASON__REASON_EXPIRED;
			snprintf(why, whylen, "expired %lld ms ago",
			    (long long)(now_ms - a->expires_at));
			return -1;
		}
	}
	*reason = CPX__REASON__REASON_NONE;
	return 0;
}
