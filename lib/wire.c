/*
 * wire.c: the frame codec inside the TLS stream. A frame is a 4-byte
 * big-endian length followed by one serialized cpx.Envelope.
 *
 * Everything here handles bytes from a peer that may be hostile (a node
 * with a stolen certificate, or a broker, for the client). The frame
 * length is checked against the limit before we wait for or allocate the
 * body; the body size is checked before protobuf-c sees it; and, since
 * protobuf-c enforces none of our limits (any repeat count, any string
 * length, any int for a proto3 enum), every count, length and enum of the
 * decoded message is checked against cpx_limits.h before anyone else
 * reads it. The alert inside a SignedAlert is only bounded here: its
 * content is alert_validate's, its signature sign_verify_alert's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alert.h"
#include "cosign.h"
#include "cpx_limits.h"
#include "identity.h"
#include "wire.h"

#define WIRE_PREFIX	4u
/*
 * AuditRecord.text describes refusals, closings and replay requests; the
 * broker writes it. Bounded so a replayed record cannot carry megabytes
 * of text to a client.
 */
#define WIRE_MAX_AUDIT_TEXT	1024u
#define WIRE_MAX_ADDRESS	CPX_MAX_TEXT

enum wire_status
wire_frame_next(const uint8_t *buf, size_t len, size_t max_frame,
    const uint8_t **body, size_t *body_len, size_t *consumed)
{
	size_t	need;

	*body = NULL;
	*body_len = 0;
	*consumed = 0;
	if (max_frame > CPX_MAX_FRAME)
		max_frame = CPX_MAX_FRAME;
	if (buf == NULL || len < WIRE_PREFIX)
		return WIRE_NEED_MORE;
	need = (size_t)buf[0] << 24 | (size_t)buf[1] << 16 |
	    (size_t)buf[2] << 8 | (size_t)buf[3];
	/* Before waiting: a peer never makes us buffer what it claims. */
	if (need > max_frame)
		return WIRE_TOO_LARGE;
	/* need <= len - pos, never pos + need: the sum could wrap. */
	if (need > len - WIRE_PREFIX)
		return WIRE_NEED_MORE;
	*body = buf + WIRE_PREFIX;
	*body_len = need;
	*consumed = WIRE_PREFIX + need;
	return WIRE_FRAME;
}

int
wire_encode(const Cpx__Envelope *env, uint8_t **out, size_t *outlen)
{
	uint8_t	*buf = NULL;
	size_t	 size;
	int	 rc = -1;

	*out = NULL;
	*outlen = 0;
	if (env == NULL)
		goto done;
	size = cpx__envelope__get_packed_size(env);
	/* Never send what the peer must refuse. */
	if (size > CPX_MAX_FRAME)
		goto done;
	if ((buf = malloc(WIRE_PREFIX + size)) == NULL)
		goto done;
	buf[0] = (uint8_t)(size >> 24);
	buf[1] = (uint8_t)(size >> 16);
	buf[2] = (uint8_t)(size >> 8);
	buf[3] = (uint8_t)size;
	if (cpx__envelope__pack(env, buf + WIRE_PREFIX) != size)
		goto done;
	*out = buf;
	*outlen = WIRE_PREFIX + size;
	buf = NULL;
	rc = 0;
done:
	free(buf);
	return rc;
}

/* strlen bounded by max + 1: "is s longer than max?" without scanning on. */
static int
str_over(const char *s, size_t max)
{
	return s != NULL && strnlen(s, max + 1) > max;
}

static int
check_signed_alert(const Cpx__SignedAlert *sa, const char *where, int *reason,
    char *why, size_t whylen)
{
	if (sa == NULL) {
		*reason = CPX__REASON__REASON_MALFORMED;
		snprintf(why, whylen, "%s without a signed alert", where);
		return -1;
	}
	*reason = CPX__REASON__REASON_TOO_LARGE;
	if (sa->alert.len > CPX_MAX_ALERT) {
		snprintf(why, whylen, "%s alert is %zu bytes, over %u", where,
		    sa->alert.len, CPX_MAX_ALERT);
		return -1;
	}
	if (sa->signature.len > CPX_MAX_SIGNATURE) {
		snprintf(why, whylen, "%s signature is %zu bytes, over %u",
		    where, sa->signature.len, CPX_MAX_SIGNATURE);
		return -1;
	}
	if (sa->signer_cert.len > CPX_MAX_CERT) {
		snprintf(why, whylen, "%s signer certificate is %zu bytes, "
		    "over %u", where, sa->signer_cert.len, CPX_MAX_CERT);
		return -1;
	}
	return 0;
}

/* Known to the schema: a value added there needs no edit here. */
static int
enum_known(const ProtobufCEnumDescriptor *d, int v)
{
	return protobuf_c_enum_descriptor_get_value(d, v) != NULL;
}

const char *
wire_printable(const char *s, char *buf, size_t len)
{
	size_t	i;

	if (s == NULL)
		s = "";
	for (i = 0; i + 1 < len && s[i] != '\0'; i++)
		buf[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
	buf[i] = '\0';
	return buf;
}

/* Filter number i (counted from 0, as the broker names it) is sane. */
static int
filter_check(const Cpx__Filter *f, size_t i, char *why, size_t whylen)
{
	char	q[CPX_MAX_REGION_NAME + 2];
	size_t	j;

	if (f == NULL) {
		snprintf(why, whylen, "filter %zu missing", i);
		return -1;
	}
	if (f->n_origins > CPX_MAX_FILTER_ORIGINS ||
	    (f->n_origins > 0 && f->origins == NULL)) {
		snprintf(why, whylen, "filter %zu: %zu origins, over %u", i,
		    f->n_origins, CPX_MAX_FILTER_ORIGINS);
		return -1;
	}
	for (j = 0; j < f->n_origins; j++) {
		if (!identity_country_valid(f->origins[j])) {
			snprintf(why, whylen, "filter %zu: origin %zu \"%s\" "
			    "is not a country code", i, j + 1,
			    wire_printable(f->origins[j], q, sizeof(q)));
			return -1;
		}
	}
	if (f->n_regions > CPX_MAX_FILTER_REGIONS ||
	    (f->n_regions > 0 && f->regions == NULL)) {
		snprintf(why, whylen, "filter %zu: %zu regions, over %u", i,
		    f->n_regions, CPX_MAX_FILTER_REGIONS);
		return -1;
	}
	for (j = 0; j < f->n_regions; j++) {
		if (!alert_region_name_valid(f->regions[j])) {
			snprintf(why, whylen, "filter %zu: region %zu \"%s\" "
			    "is not a region name", i, j + 1,
			    wire_printable(f->regions[j], q, sizeof(q)));
			return -1;
		}
	}
	if (f->n_categories > CPX_MAX_FILTER_CATS ||
	    (f->n_categories > 0 && f->categories == NULL)) {
		snprintf(why, whylen, "filter %zu: %zu categories, over %u", i,
		    f->n_categories, CPX_MAX_FILTER_CATS);
		return -1;
	}
	for (j = 0; j < f->n_categories; j++) {
		if (f->categories[j] == CPX__CATEGORY__CATEGORY_UNSPECIFIED ||
		    !enum_known(&cpx__category__descriptor,
		    f->categories[j])) {
			snprintf(why, whylen, "filter %zu: category %zu (%d) "
			    "unknown", i, j + 1, (int)f->categories[j]);
			return -1;
		}
	}
	/* UNSPECIFIED is allowed here: it means any severity. */
	if (!enum_known(&cpx__severity__descriptor, f->min_severity)) {
		snprintf(why, whylen, "filter %zu: min_severity %d unknown", i,
		    (int)f->min_severity);
		return -1;
	}
	return 0;
}

int
wire_filters_check(Cpx__Filter *const *filters, size_t n, char *why,
    size_t whylen)
{
	size_t	i;

	if (whylen > 0)
		why[0] = '\0';
	if (n > CPX_MAX_FILTERS || (n > 0 && filters == NULL)) {
		snprintf(why, whylen, "%zu filters, over %u", n,
		    CPX_MAX_FILTERS);
		return -1;
	}
	for (i = 0; i < n; i++)
		if (filter_check(filters[i], i, why, whylen) == -1)
			return -1;
	return 0;
}

static int
check_filters(Cpx__Filter *const *filters, size_t n, int *reason, char *why,
    size_t whylen)
{
	*reason = CPX__REASON__REASON_BAD_REQUEST;
	return wire_filters_check(filters, n, why, whylen);
}

static int
check_welcome(const Cpx__Welcome *w, char *why, size_t whylen)
{
	if (str_over(w->broker_name, CPX_MAX_NODE_NAME) ||
	    str_over(w->node, CPX_MAX_NODE_NAME) || str_over(w->country, 2)) {
		snprintf(why, whylen, "welcome name or country too long");
		return -1;
	}
	return 0;
}

static int
check_audit_record(const Cpx__AuditRecord *r, int *reason, char *why,
    size_t whylen)
{
	*reason = CPX__REASON__REASON_MALFORMED;
	/* Known to the schema: a new kind passes every older check. */
	if (!enum_known(&cpx__record_kind__descriptor, r->kind)) {
		snprintf(why, whylen, "audit record kind %d unknown",
		    (int)r->kind);
		return -1;
	}
	if (!enum_known(&cpx__reason__descriptor, r->reason)) {
		snprintf(why, whylen, "audit record reason %d unknown",
		    (int)r->reason);
		return -1;
	}
	if (str_over(r->peer_country, 2) ||
	    str_over(r->peer_node, CPX_MAX_NODE_NAME) ||
	    str_over(r->peer_address, WIRE_MAX_ADDRESS) ||
	    str_over(r->alert_id, CPX_MAX_ID) ||
	    str_over(r->text, WIRE_MAX_AUDIT_TEXT)) {
		snprintf(why, whylen, "audit record string too long");
		return -1;
	}
	if (r->checkpoint_hash.len > 64 ||
	    r->checkpoint_signature.len > CPX_MAX_SIGNATURE ||
	    r->checkpoint_cert.len > CPX_MAX_CERT) {
		snprintf(why, whylen, "audit record checkpoint too large");
		return -1;
	}
	if (cosign_check_record(r, why, whylen) == -1)
		return -1;
	if (r->alert != NULL && check_signed_alert(r->alert, "audit record",
	    reason, why, whylen) == -1)
		return -1;
	return 0;
}

/* Check the limits of the one body env carries; the switch is exhaustive. */
static int
check_body(const Cpx__Envelope *env, int *reason, char *why, size_t whylen)
{
	*reason = CPX__REASON__REASON_MALFORMED;
	switch (env->body_case) {
	case CPX__ENVELOPE__BODY_WELCOME:
		return check_welcome(env->welcome, why, whylen);
	case CPX__ENVELOPE__BODY_PUBLISH:
		return check_signed_alert(env->publish->alert, "publish",
		    reason, why, whylen);
	case CPX__ENVELOPE__BODY_ACK:
		if (str_over(env->ack->alert_id, CPX_MAX_ID)) {
			snprintf(why, whylen, "ack alert id too long");
			return -1;
		}
		return 0;
	case CPX__ENVELOPE__BODY_SUBSCRIBE:
		return check_filters(env->subscribe->filters,
		    env->subscribe->n_filters, reason, why, whylen);
	case CPX__ENVELOPE__BODY_DELIVERY:
		return check_signed_alert(env->delivery->alert, "delivery",
		    reason, why, whylen);
	case CPX__ENVELOPE__BODY_REPLAY:
		return check_filters(env->replay->filters,
		    env->replay->n_filters, reason, why, whylen);
	case CPX__ENVELOPE__BODY_ERROR:
		if (!enum_known(&cpx__reason__descriptor,
		    env->error->reason)) {
			snprintf(why, whylen, "error reason %d unknown",
			    (int)env->error->reason);
			return -1;
		}
		if (str_over(env->error->text, CPX_MAX_ERROR_TEXT)) {
			snprintf(why, whylen, "error text over %u bytes",
			    CPX_MAX_ERROR_TEXT);
			return -1;
		}
		return 0;
	case CPX__ENVELOPE__BODY_AUDIT_RECORD:
		return check_audit_record(env->audit_record, reason, why,
		    whylen);
	case CPX__ENVELOPE__BODY_WITNESS_REQUEST:
	case CPX__ENVELOPE__BODY_WITNESS_CHECKPOINT:
	case CPX__ENVELOPE__BODY_COSIGN:
	case CPX__ENVELOPE__BODY_COSIGN_ACK:
	case CPX__ENVELOPE__BODY_WITNESS_ALARM:
		return cosign_check_body(env, reason, why, whylen);
	case CPX__ENVELOPE__BODY_SUBSCRIBED:
	case CPX__ENVELOPE__BODY_REPLAY_END:
	case CPX__ENVELOPE__BODY_PING:
	case CPX__ENVELOPE__BODY_PONG:
		return 0;
	case CPX__ENVELOPE__BODY__NOT_SET:
	default:
		snprintf(why, whylen, "envelope has no body set");
		return -1;
	}
}

/*
 * Drop every unknown field of m and of the messages inside it. What we
 * did not understand is not ours to store or forward: protobuf-c keeps
 * unknown fields and packs them again, and it accepts some it cannot
 * read back (a field number 0 written with a two-byte tag), so a Publish
 * carrying one would be stored in the audit log and delivered as a record
 * that no peer, nor the broker after a restart, can decode. Fields of the
 * serialized Alert are bytes here and untouched (sign_verify_alert
 * refuses non-canonical alert bytes). The schema has no recursion, so the
 * depth is bounded by it.
 */
static void
strip_unknown(ProtobufCMessage *m)
{
	const ProtobufCMessageDescriptor	*d = m->descriptor;
	const ProtobufCFieldDescriptor		*f;
	ProtobufCMessage			**arr, *sub;
	unsigned				 i;
	size_t					 j, n;

	for (i = 0; i < m->n_unknown_fields; i++)
		free(m->unknown_fields[i].data);
	free(m->unknown_fields);
	m->unknown_fields = NULL;
	m->n_unknown_fields = 0;
	for (i = 0; i < d->n_fields; i++) {
		f = &d->fields[i];
		if (f->type != PROTOBUF_C_TYPE_MESSAGE)
			continue;
		if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
		    *(const uint32_t *)(const void *)((const char *)m +
		    f->quantifier_offset) != f->id)
			continue;
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			n = *(const size_t *)(const void *)((const char *)m +
			    f->quantifier_offset);
			arr = *(ProtobufCMessage ***)(void *)((char *)m +
			    f->offset);
			for (j = 0; j < n; j++)
				if (arr[j] != NULL)
					strip_unknown(arr[j]);
		} else {
			sub = *(ProtobufCMessage **)(void *)((char *)m +
			    f->offset);
			if (sub != NULL)
				strip_unknown(sub);
		}
	}
}

Cpx__Envelope *
wire_decode(const uint8_t *body, size_t len, int *reason, char *why,
    size_t whylen)
{
	Cpx__Envelope	*env = NULL;

	*reason = CPX__REASON__REASON_NONE;
	if (whylen > 0)
		why[0] = '\0';
	/* Before protobuf-c allocates anything for it. */
	if (len > CPX_MAX_FRAME) {
		*reason = CPX__REASON__REASON_TOO_LARGE;
		snprintf(why, whylen, "frame is %zu bytes, over %u", len,
		    CPX_MAX_FRAME);
		return NULL;
	}
	if (body == NULL && len > 0) {
		*reason = CPX__REASON__REASON_MALFORMED;
		snprintf(why, whylen, "no frame body");
		return NULL;
	}
	env = cpx__envelope__unpack(NULL, len, body);
	if (env == NULL) {
		*reason = CPX__REASON__REASON_MALFORMED;
		snprintf(why, whylen, "envelope does not decode");
		return NULL;
	}
	strip_unknown(&env->base);
	if (check_body(env, reason, why, whylen) == -1) {
		cpx__envelope__free_unpacked(env, NULL);
		return NULL;
	}
	*reason = CPX__REASON__REASON_NONE;
	return env;
}
