/*
 * json_out.c: the one JSON writer for alerts and audit records. cpx-audit
 * dump reads records from disk, cpx replay --all-kinds receives the same
 * records from the broker, cpx subscribe --json receives the alerts
 * inside them: all three print through here, so a record (or an alert)
 * reads the same whichever tool showed it, and a script can join their
 * outputs.
 *
 * Owns: the key set and order of the alert and record objects, the time
 * format, the rendering of bytes as JSON strings (UTF-8 repaired) and the
 * one set of dump flags. Enum names are lib/alert.c's.
 *
 * What is written comes from peers and disk: protobuf-c checks no UTF-8
 * and no enum, so strings are repaired rather than refused (one bad byte
 * must not hide a record from an auditor) and unknown enum values are
 * written as numbers. Signatures and certificates are written only as
 * their sizes: a dump is for reading, not for lifting key material.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alert.h"
#include "cpx_limits.h"
#include "json_out.h"

int
json_out_time_format(int64_t ms, char *buf, size_t len)
{
	struct tm	tm;
	time_t		t;
	int		r;

	if (buf == NULL || len == 0)
		return -1;
	buf[0] = '\0';
	if (ms < 0 || ms > JSON_OUT_TIME_MAX)
		return -1;
	t = (time_t)(ms / 1000);
	if (gmtime_r(&t, &tm) == NULL)
		return -1;
	r = snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, (int)(ms % 1000));
	if (r < 0 || (size_t)r >= len) {
		buf[0] = '\0';
		return -1;
	}
	return 0;
}

json_t *
json_out_time(int64_t ms)
{
	char	buf[JSON_OUT_TIME_LEN];

	if (json_out_time_format(ms, buf, sizeof(buf)) == 0)
		return json_string(buf);
	/* Out of the textual range (a bad alert): keep the number. */
	return json_integer(ms);
}

size_t
json_utf8_next(const unsigned char *s, size_t n, uint32_t *cp)
{
	uint32_t	c, min;
	size_t		k, i;

	if (n == 0)
		return 0;
	c = s[0];
	if (c < 0x80) {
		k = 1;
		goto done;
	}
	if ((c & 0xe0) == 0xc0) {
		k = 2;
		c &= 0x1f;
		min = 0x80;
	} else if ((c & 0xf0) == 0xe0) {
		k = 3;
		c &= 0x0f;
		min = 0x800;
	} else if ((c & 0xf8) == 0xf0) {
		k = 4;
		c &= 0x07;
		min = 0x10000;
	} else
		return 0;
	if (k > n)
		return 0;
	for (i = 1; i < k; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
done:
	if (cp != NULL)
		*cp = c;
	return k;
}

json_t *
json_out_string(const char *s)
{
	const unsigned char	*u;
	json_t			*j;
	char			*buf;
	size_t			 n, i, o, k;

	if (s == NULL)
		s = "";
	if ((j = json_string(s)) != NULL)
		return j;
	n = strlen(s);
	if (n > (SIZE_MAX - 1) / 3 || (buf = malloc(n * 3 + 1)) == NULL)
		return NULL;
	u = (const unsigned char *)s;
	for (i = o = 0; i < n; i += k) {
		if ((k = json_utf8_next(u + i, n - i, NULL)) == 0) {
			memcpy(buf + o, "\xef\xbf\xbd", 3);
			o += 3;
			k = 1;
		} else {
			memcpy(buf + o, u + i, k);
			o += k;
		}
	}
	buf[o] = '\0';
	j = json_string(buf);
	free(buf);
	return j;
}

json_t *
json_out_u64(uint64_t v)
{
	char	buf[24];

	/* json_int_t is signed: a value beyond it goes as text. */
	if (v <= (uint64_t)INT64_MAX)
		return json_integer((json_int_t)v);
	(void)snprintf(buf, sizeof(buf), "%llu", (unsigned long long)v);
	return json_string(buf);
}

/*
 * An enum by name, or by number if the name does not parse back to it
 * (0, or a value off the wire that this schema does not define).
 */
static json_t *
jenum(const char *name, int v, int (*parse)(const char *))
{
	if (name != NULL && v != 0 && parse(name) == v)
		return json_string(name);
	return json_integer(v);
}

/* Set o[k] = v, taking v; -1 if v is NULL (allocation failed). */
static int
set(json_t *o, const char *k, json_t *v)
{
	if (v == NULL)
		return -1;
	return json_object_set_new(o, k, v);
}

static json_t *
jstrv(char *const *v, size_t n)
{
	json_t	*arr;
	size_t	 i;

	if ((arr = json_array()) == NULL)
		return NULL;
	for (i = 0; i < n; i++) {
		if (json_array_append_new(arr, json_out_string(v[i])) == -1) {
			json_decref(arr);
			return NULL;
		}
	}
	return arr;
}

static json_t *
jplace(const Cpx__Place *pl)
{
	json_t	*o;

	if ((o = json_object()) == NULL)
		return NULL;
	if (pl->name != NULL && pl->name[0] != '\0' &&
	    set(o, "name", json_out_string(pl->name)) == -1)
		goto fail;
	if (pl->crossing != NULL && pl->crossing[0] != '\0' &&
	    set(o, "crossing", json_out_string(pl->crossing)) == -1)
		goto fail;
	/* json_real() refuses NaN and infinities, which JSON cannot say. */
	if (pl->has_coordinates && isfinite(pl->latitude) &&
	    isfinite(pl->longitude) &&
	    (set(o, "latitude", json_real(pl->latitude)) == -1 ||
	    set(o, "longitude", json_real(pl->longitude)) == -1))
		goto fail;
	return o;
fail:
	json_decref(o);
	return NULL;
}

static json_t *
jvehicles(Cpx__Vehicle *const *v, size_t n)
{
	json_t	*arr, *o = NULL;
	size_t	 i;

	if ((arr = json_array()) == NULL)
		return NULL;
	for (i = 0; i < n; i++) {
		if (v[i] == NULL)
			continue;
		if ((o = json_object()) == NULL ||
		    set(o, "plate", json_out_string(v[i]->plate)) == -1)
			goto fail;
		if (v[i]->country != NULL && v[i]->country[0] != '\0' &&
		    set(o, "country", json_out_string(v[i]->country)) == -1)
			goto fail;
		if (v[i]->description != NULL &&
		    v[i]->description[0] != '\0' &&
		    set(o, "description",
		    json_out_string(v[i]->description)) == -1)
			goto fail;
		if (json_array_append_new(arr, o) == -1) {
			o = NULL;
			goto fail;
		}
		o = NULL;
	}
	return arr;
fail:
	json_decref(o);
	json_decref(arr);
	return NULL;
}

static json_t *
jreference(const Cpx__Reference *r)
{
	json_t	*o;

	if ((o = json_object()) == NULL)
		return NULL;
	if (set(o, "alert_id", json_out_string(r->alert_id)) == -1 ||
	    set(o, "kind", jenum(alert_reference_kind_name(r->kind), r->kind,
	    alert_reference_kind_parse)) == -1) {
		json_decref(o);
		return NULL;
	}
	return o;
}

json_t *
json_out_alert(const Cpx__Alert *a)
{
	json_t	*o = NULL, *ret = NULL;

	if (a == NULL || (o = json_object()) == NULL)
		goto done;
	if (set(o, "id", json_out_string(a->id)) == -1 ||
	    set(o, "origin", json_out_string(a->origin)) == -1)
		goto done;
	if (a->issued_at != 0 &&
	    set(o, "issued_at", json_out_time(a->issued_at)) == -1)
		goto done;
	if (set(o, "category", jenum(alert_category_name(a->category),
	    a->category, alert_category_parse)) == -1 ||
	    set(o, "severity", jenum(alert_severity_name(a->severity),
	    a->severity, alert_severity_parse)) == -1 ||
	    set(o, "handling", jenum(alert_handling_name(a->handling),
	    a->handling, alert_handling_parse)) == -1 ||
	    set(o, "recipients", jstrv(a->recipients,
	    a->n_recipients)) == -1 ||
	    set(o, "summary", json_out_string(a->summary)) == -1)
		goto done;
	if (a->place != NULL && set(o, "place", jplace(a->place)) == -1)
		goto done;
	if (a->n_route > 0 &&
	    set(o, "route", jstrv(a->route, a->n_route)) == -1)
		goto done;
	if (a->n_vehicles > 0 &&
	    set(o, "vehicles", jvehicles(a->vehicles, a->n_vehicles)) == -1)
		goto done;
	if (a->persons_count > 0 &&
	    set(o, "persons_count", json_integer(a->persons_count)) == -1)
		goto done;
	if (a->reference != NULL && (a->reference->kind != 0 ||
	    (a->reference->alert_id != NULL &&
	    a->reference->alert_id[0] != '\0')) &&
	    set(o, "reference", jreference(a->reference)) == -1)
		goto done;
	if (a->expires_at != 0 &&
	    set(o, "expires_at", json_out_time(a->expires_at)) == -1)
		goto done;
	if (a->author != NULL && a->author[0] != '\0' &&
	    set(o, "author", json_out_string(a->author)) == -1)
		goto done;
	ret = o;
	o = NULL;
done:
	json_decref(o);
	return ret;
}

/* s is set: not NULL nor empty. */
static int
has(const char *s)
{
	return s != NULL && s[0] != '\0';
}

/*
 * signature_bytes and alert (or alert_error) of a record that carries a
 * SignedAlert. The alert is decoded here, bounded first: the bytes are
 * the origin's, as received, and may be anything.
 */
static int
record_alert(json_t *o, const Cpx__SignedAlert *sa)
{
	Cpx__Alert	*a = NULL;
	int		 rc = -1;

	if (set(o, "signature_bytes",
	    json_integer((json_int_t)sa->signature.len)) == -1)
		goto done;
	if (sa->alert.len <= CPX_MAX_ALERT)
		a = cpx__alert__unpack(NULL, sa->alert.len, sa->alert.data);
	if (a == NULL) {
		if (set(o, "alert", json_null()) == -1 ||
		    set(o, "alert_error",
		    json_string("alert does not decode")) == -1)
			goto done;
	} else if (set(o, "alert", json_out_alert(a)) == -1)
		goto done;
	rc = 0;
done:
	if (a != NULL)
		cpx__alert__free_unpacked(a, NULL);
	return rc;
}

static json_t *
jhex(const ProtobufCBinaryData *b)
{
	static const char	 digits[] = "0123456789abcdef";
	json_t			*j;
	char			*hex;
	size_t			 i;

	if (b->len > (SIZE_MAX - 1) / 2 || (hex = malloc(2 * b->len + 1)) ==
	    NULL)
		return NULL;
	for (i = 0; i < b->len; i++) {
		hex[2 * i] = digits[b->data[i] >> 4];
		hex[2 * i + 1] = digits[b->data[i] & 0x0f];
	}
	hex[2 * i] = '\0';
	j = json_string(hex);
	free(hex);
	return j;
}

json_t *
json_out_record(const Cpx__AuditRecord *r)
{
	json_t	*o = NULL, *ret = NULL;

	if (r == NULL || (o = json_object()) == NULL)
		goto done;
	if (set(o, "seq", json_out_u64(r->seq)) == -1 ||
	    set(o, "time", json_out_time(r->time)) == -1 ||
	    set(o, "kind", jenum(alert_record_kind_name(r->kind), r->kind,
	    alert_record_kind_parse)) == -1 ||
	    set(o, "peer_country", json_out_string(r->peer_country)) == -1 ||
	    set(o, "peer_node", json_out_string(r->peer_node)) == -1)
		goto done;
	if (has(r->peer_address) &&
	    set(o, "peer_address", json_out_string(r->peer_address)) == -1)
		goto done;
	if (r->session_id != 0 &&
	    set(o, "session_id", json_out_u64(r->session_id)) == -1)
		goto done;
	if (has(r->broker) &&
	    set(o, "broker", json_out_string(r->broker)) == -1)
		goto done;
	if (r->reason != 0 && set(o, "reason",
	    jenum(alert_reason_name(r->reason), r->reason,
	    alert_reason_parse)) == -1)
		goto done;
	if (r->count != 0 && set(o, "count", json_out_u64(r->count)) == -1)
		goto done;
	if (has(r->text) && set(o, "text", json_out_string(r->text)) == -1)
		goto done;
	if (has(r->alert_id) &&
	    set(o, "alert_id", json_out_string(r->alert_id)) == -1)
		goto done;
	if (r->n_entitled > 0 &&
	    set(o, "entitled", jstrv(r->entitled, r->n_entitled)) == -1)
		goto done;
	if (r->alert != NULL && record_alert(o, r->alert) == -1)
		goto done;
	if (r->kind == CPX__RECORD_KIND__RECORD_CHECKPOINT &&
	    (set(o, "checkpoint_seq", json_out_u64(r->checkpoint_seq)) == -1 ||
	    set(o, "checkpoint_hash", jhex(&r->checkpoint_hash)) == -1 ||
	    set(o, "checkpoint_signature_bytes",
	    json_integer((json_int_t)r->checkpoint_signature.len)) == -1))
		goto done;
	/* Witnesses (docs/witness.md): the head cosigned, or held. */
	if ((r->kind == CPX__RECORD_KIND__RECORD_COSIGNATURE ||
	    r->kind == CPX__RECORD_KIND__RECORD_WITNESS_ALARM) &&
	    (set(o, "cosigned_record", json_out_u64(r->cosigned_record)) ==
	    -1 || set(o, "cosigned_seq", json_out_u64(r->cosigned_seq)) == -1 ||
	    set(o, "cosigned_hash", jhex(&r->cosigned_hash)) == -1 ||
	    set(o, "witness_signature_bytes",
	    json_integer((json_int_t)r->witness_signature.len)) == -1))
		goto done;
	if (r->kind == CPX__RECORD_KIND__RECORD_WITNESS_ALARM &&
	    (set(o, "alarm_seq", json_out_u64(r->alarm_seq)) == -1 ||
	    set(o, "alarm_hash", jhex(&r->alarm_hash)) == -1))
		goto done;
	ret = o;
	o = NULL;
done:
	json_decref(o);
	return ret;
}

char *
json_out_line(const json_t *o)
{
	if (o == NULL)
		return NULL;
	/*
	 * ASCII only: the line may well be printed on a terminal, and some
	 * terminals obey C1 controls (U+009B is CSI) even UTF-8 encoded;
	 * every JSON reader decodes the \u escapes. 15 significant digits
	 * print a coordinate as it was typed (45.8479, not
	 * 45.847900000000003) and still name the same double for any value
	 * a person or GPS gives.
	 */
	return json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER |
	    JSON_ENSURE_ASCII | JSON_REAL_PRECISION(15));
}
