/*
 * test_wire.c: lib/wire.c. Round trip of every message kind; the frame
 * reader at every cut length and over size; the decoder on every cut of a
 * valid body, on over-limit repeats, strings and bytes, and on enum
 * values protobuf-c happily accepts but we do not.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cpx_limits.h"
#include "wire.h"

static uint8_t	alert_bytes[300];
static uint8_t	sig_bytes[72];
static uint8_t	cert_bytes[600];

static void
fill_signed(Cpx__SignedAlert *sa)
{
	static const Cpx__SignedAlert	init = CPX__SIGNED_ALERT__INIT;
	size_t				i;

	for (i = 0; i < sizeof(alert_bytes); i++)
		alert_bytes[i] = (uint8_t)(i * 7);
	memset(sig_bytes, 0x30, sizeof(sig_bytes));
	memset(cert_bytes, 0x82, sizeof(cert_bytes));
	*sa = init;
	sa->alert.data = alert_bytes;
	sa->alert.len = sizeof(alert_bytes);
	sa->signature.data = sig_bytes;
	sa->signature.len = sizeof(sig_bytes);
	sa->signer_cert.data = cert_bytes;
	sa->signer_cert.len = sizeof(cert_bytes);
}

/* Encode env, read the frame back, decode it; returns the decoded. */
static Cpx__Envelope *
round_trip(const Cpx__Envelope *env)
{
	const uint8_t	*body;
	uint8_t		*buf;
	size_t		 len, blen, used;
	Cpx__Envelope	*out;
	char		 why[256];
	int		 reason;

	assert_int_equal(wire_encode(env, &buf, &len), 0);
	assert_int_equal(wire_frame_next(buf, len, CPX_MAX_FRAME, &body,
	    &blen, &used), WIRE_FRAME);
	assert_int_equal(used, len);
	assert_int_equal(blen + 4, len);
	out = wire_decode(body, blen, &reason, why, sizeof(why));
	if (out == NULL)
		fail_msg("decode failed: %s", why);
	assert_int_equal(reason, CPX__REASON__REASON_NONE);
	assert_int_equal(out->body_case, env->body_case);
	free(buf);
	return out;
}

/* Encode env (no prefix) and expect wire_decode to refuse it. */
static void
expect_refused(const Cpx__Envelope *env, int want, const char *why_part)
{
	uint8_t		*buf;
	size_t		 len;
	Cpx__Envelope	*out;
	char		 why[256] = "";
	int		 reason = -1;

	len = cpx__envelope__get_packed_size(env);
	buf = malloc(len + 1);
	assert_non_null(buf);
	assert_int_equal(cpx__envelope__pack(env, buf), len);
	out = wire_decode(buf, len, &reason, why, sizeof(why));
	free(buf);
	if (out != NULL) {
		cpx__envelope__free_unpacked(out, NULL);
		fail_msg("accepted, expected refusal %d", want);
	}
	assert_int_equal(reason, want);
	if (why_part != NULL && strstr(why, why_part) == NULL)
		fail_msg("why \"%s\" lacks \"%s\"", why, why_part);
}

static void
test_round_trip_all(void **state)
{
	Cpx__Envelope		 env = CPX__ENVELOPE__INIT, *out;
	Cpx__Welcome		 w = CPX__WELCOME__INIT;
	Cpx__Publish		 p = CPX__PUBLISH__INIT;
	Cpx__Ack		 ack = CPX__ACK__INIT;
	Cpx__Subscribe		 sub = CPX__SUBSCRIBE__INIT;
	Cpx__Subscribed		 subd = CPX__SUBSCRIBED__INIT;
	Cpx__Delivery		 d = CPX__DELIVERY__INIT;
	Cpx__ReplayRequest	 rr = CPX__REPLAY_REQUEST__INIT;
	Cpx__ReplayEnd		 re = CPX__REPLAY_END__INIT;
	Cpx__Error		 e = CPX__ERROR__INIT;
	Cpx__Ping		 ping = CPX__PING__INIT;
	Cpx__Pong		 pong = CPX__PONG__INIT;
	Cpx__AuditRecord	 ar = CPX__AUDIT_RECORD__INIT;
	Cpx__SignedAlert	 sa;
	Cpx__Filter		 f = CPX__FILTER__INIT, *fp[1] = { &f };
	char			*origins[] = { "SI", "HR" };
	char			*regions[] = { "western-balkans" };
	Cpx__Category		 cats[] = { CPX__CATEGORY__CATEGORY_ROUTE,
	    CPX__CATEGORY__CATEGORY_OTHER };

	(void)state;
	fill_signed(&sa);
	f.n_origins = 2;
	f.origins = origins;
	f.n_regions = 1;
	f.regions = regions;
	f.n_categories = 2;
	f.categories = cats;
	f.min_severity = CPX__SEVERITY__SEVERITY_HIGH;

	w.broker_name = "broker";
	w.country = "SI";
	w.node = "si-ncp";
	w.may_publish = 1;
	w.max_frame = CPX_MAX_FRAME;
	env.body_case = CPX__ENVELOPE__BODY_WELCOME;
	env.welcome = &w;
	out = round_trip(&env);
	assert_string_equal(out->welcome->node, "si-ncp");
	assert_int_equal(out->welcome->max_frame, CPX_MAX_FRAME);
	cpx__envelope__free_unpacked(out, NULL);

	p.request_id = 42;
	p.alert = &sa;
	env.body_case = CPX__ENVELOPE__BODY_PUBLISH;
	env.publish = &p;
	out = round_trip(&env);
	assert_int_equal(out->publish->request_id, 42);
	assert_int_equal(out->publish->alert->alert.len, sizeof(alert_bytes));
	assert_memory_equal(out->publish->alert->alert.data, alert_bytes,
	    sizeof(alert_bytes));
	cpx__envelope__free_unpacked(out, NULL);

	ack.request_id = 42;
	ack.seq = 7;
	ack.alert_id = "id-1";
	env.body_case = CPX__ENVELOPE__BODY_ACK;
	env.ack = &ack;
	out = round_trip(&env);
	assert_string_equal(out->ack->alert_id, "id-1");
	cpx__envelope__free_unpacked(out, NULL);

	sub.request_id = 3;
	sub.n_filters = 1;
	sub.filters = fp;
	sub.resume = 1;
	sub.resume_after = 99;
	env.body_case = CPX__ENVELOPE__BODY_SUBSCRIBE;
	env.subscribe = &sub;
	out = round_trip(&env);
	assert_int_equal(out->subscribe->n_filters, 1);
	assert_int_equal(out->subscribe->filters[0]->n_categories, 2);
	assert_string_equal(out->subscribe->filters[0]->origins[1], "HR");
	assert_int_equal(out->subscribe->resume_after, 99);
	cpx__envelope__free_unpacked(out, NULL);

	subd.request_id = 3;
	subd.live_from = 100;
	env.body_case = CPX__ENVELOPE__BODY_SUBSCRIBED;
	env.subscribed = &subd;
	out = round_trip(&env);
	assert_int_equal(out->subscribed->live_from, 100);
	cpx__envelope__free_unpacked(out, NULL);

	d.seq = 5;
	d.alert = &sa;
	d.replayed = 1;
	env.body_case = CPX__ENVELOPE__BODY_DELIVERY;
	env.delivery = &d;
	out = round_trip(&env);
	assert_int_equal(out->delivery->seq, 5);
	assert_int_equal(out->delivery->alert->signer_cert.len,
	    sizeof(cert_bytes));
	cpx__envelope__free_unpacked(out, NULL);

	rr.request_id = 9;
	rr.from_seq = 1;
	rr.n_filters = 1;
	rr.filters = fp;
	rr.all_kinds = 1;
	env.body_case = CPX__ENVELOPE__BODY_REPLAY;
	env.replay = &rr;
	out = round_trip(&env);
	assert_true(out->replay->all_kinds);
	cpx__envelope__free_unpacked(out, NULL);

	re.request_id = 9;
	re.count = 4;
	env.body_case = CPX__ENVELOPE__BODY_REPLAY_END;
	env.replay_end = &re;
	out = round_trip(&env);
	assert_int_equal(out->replay_end->count, 4);
	cpx__envelope__free_unpacked(out, NULL);

	e.request_id = 42;
	e.reason = CPX__REASON__REASON_BAD_SIGNATURE;
	e.text = "signature does not verify";
	e.fatal = 1;
	env.body_case = CPX__ENVELOPE__BODY_ERROR;
	env.error = &e;
	out = round_trip(&env);
	assert_int_equal(out->error->reason, CPX__REASON__REASON_BAD_SIGNATURE);
	cpx__envelope__free_unpacked(out, NULL);

	ping.nonce = 0xdeadbeef;
	env.body_case = CPX__ENVELOPE__BODY_PING;
	env.ping = &ping;
	out = round_trip(&env);
	assert_int_equal(out->ping->nonce, 0xdeadbeef);
	cpx__envelope__free_unpacked(out, NULL);

	pong.nonce = 1;
	env.body_case = CPX__ENVELOPE__BODY_PONG;
	env.pong = &pong;
	out = round_trip(&env);
	assert_int_equal(out->pong->nonce, 1);
	cpx__envelope__free_unpacked(out, NULL);

	ar.seq = 12;
	ar.kind = CPX__RECORD_KIND__RECORD_ALERT_ACCEPTED;
	ar.peer_country = "SI";
	ar.peer_node = "si-ncp";
	ar.alert = &sa;
	ar.reason = CPX__REASON__REASON_NONE;
	env.body_case = CPX__ENVELOPE__BODY_AUDIT_RECORD;
	env.audit_record = &ar;
	out = round_trip(&env);
	assert_int_equal(out->audit_record->seq, 12);
	cpx__envelope__free_unpacked(out, NULL);
}

/* A valid publish frame, prefix included, for the cut tests. */
static uint8_t *
publish_frame(size_t *len)
{
	Cpx__Envelope		 env = CPX__ENVELOPE__INIT;
	Cpx__Publish		 p = CPX__PUBLISH__INIT;
	Cpx__SignedAlert	 sa;
	uint8_t			*buf;

	fill_signed(&sa);
	p.request_id = 77;
	p.alert = &sa;
	env.body_case = CPX__ENVELOPE__BODY_PUBLISH;
	env.publish = &p;
	assert_int_equal(wire_encode(&env, &buf, len), 0);
	return buf;
}

static void
test_frame_cut(void **state)
{
	const uint8_t	*body;
	uint8_t		*buf, *cut;
	size_t		 len, blen, used, i;

	(void)state;
	buf = publish_frame(&len);
	for (i = 0; i < len; i++) {
		/* A fresh copy of exactly i bytes, so ASan sees overreads. */
		cut = malloc(i > 0 ? i : 1);
		assert_non_null(cut);
		memcpy(cut, buf, i);
		body = (const uint8_t *)1;
		blen = used = 1;
		assert_int_equal(wire_frame_next(cut, i, CPX_MAX_FRAME, &body,
		    &blen, &used), WIRE_NEED_MORE);
		assert_null(body);
		assert_int_equal(blen, 0);
		assert_int_equal(used, 0);
		free(cut);
	}
	assert_int_equal(wire_frame_next(buf, len, CPX_MAX_FRAME, &body,
	    &blen, &used), WIRE_FRAME);
	assert_int_equal(used, len);
	/* The same frame over a smaller limit is refused, not waited for. */
	assert_int_equal(wire_frame_next(buf, 4, len - 5, &body, &blen,
	    &used), WIRE_TOO_LARGE);
	assert_int_equal(wire_frame_next(buf, len, len - 4, &body, &blen,
	    &used), WIRE_FRAME);
	free(buf);
}

static void
test_frame_limits(void **state)
{
	uint8_t		 hdr[8];
	const uint8_t	*body;
	size_t		 blen, used;

	(void)state;
	/* Over the limit is known from the prefix alone. */
	hdr[0] = 0x00;
	hdr[1] = 0x04;
	hdr[2] = 0x00;
	hdr[3] = 0x01;		/* 256 KiB + 1 */
	assert_int_equal(wire_frame_next(hdr, 4, CPX_MAX_FRAME, &body, &blen,
	    &used), WIRE_TOO_LARGE);
	assert_null(body);
	/* A caller's limit above the protocol's is capped. */
	assert_int_equal(wire_frame_next(hdr, 4, SIZE_MAX, &body, &blen,
	    &used), WIRE_TOO_LARGE);
	/* The largest length: no wrap of pos + need. */
	memset(hdr, 0xff, 4);
	assert_int_equal(wire_frame_next(hdr, 8, SIZE_MAX, &body, &blen,
	    &used), WIRE_TOO_LARGE);
	/* Exactly at the pre-auth limit: wait for it. */
	hdr[0] = 0;
	hdr[1] = 0;
	hdr[2] = 0x40;
	hdr[3] = 0;
	assert_int_equal(wire_frame_next(hdr, 8, CPX_MAX_FRAME_PREAUTH, &body,
	    &blen, &used), WIRE_NEED_MORE);
	hdr[3] = 1;
	assert_int_equal(wire_frame_next(hdr, 8, CPX_MAX_FRAME_PREAUTH, &body,
	    &blen, &used), WIRE_TOO_LARGE);
	/* A zero-length frame is a frame; its empty envelope is refused. */
	memset(hdr, 0, sizeof(hdr));
	assert_int_equal(wire_frame_next(hdr, 8, CPX_MAX_FRAME, &body, &blen,
	    &used), WIRE_FRAME);
	assert_int_equal(blen, 0);
	assert_int_equal(used, 4);
	assert_int_equal(wire_frame_next(NULL, 0, CPX_MAX_FRAME, &body, &blen,
	    &used), WIRE_NEED_MORE);
}

static void
test_two_frames(void **state)
{
	const uint8_t	*body;
	uint8_t		*one, *two;
	size_t		 len, blen, used;

	(void)state;
	one = publish_frame(&len);
	two = malloc(2 * len);
	assert_non_null(two);
	memcpy(two, one, len);
	memcpy(two + len, one, len);
	assert_int_equal(wire_frame_next(two, 2 * len - 1, CPX_MAX_FRAME,
	    &body, &blen, &used), WIRE_FRAME);
	assert_int_equal(used, len);
	assert_int_equal(wire_frame_next(two + used, 2 * len - 1 - used,
	    CPX_MAX_FRAME, &body, &blen, &used), WIRE_NEED_MORE);
	free(one);
	free(two);
}

static void
test_decode_cut(void **state)
{
	Cpx__Envelope	*env;
	uint8_t		*buf, *cut;
	size_t		 len, i;
	char		 why[256];
	int		 reason, ok = 0;

	(void)state;
	buf = publish_frame(&len);
	for (i = 0; i < len - 4; i++) {
		cut = malloc(i > 0 ? i : 1);
		assert_non_null(cut);
		memcpy(cut, buf + 4, i);
		env = wire_decode(cut, i, &reason, why, sizeof(why));
		if (env != NULL) {
			/*
			 * A prefix may still be a well-formed message (fields
			 * end on a boundary); then it must pass our checks.
			 */
			ok++;
			assert_int_equal(reason, CPX__REASON__REASON_NONE);
			assert_int_equal(env->body_case,
			    CPX__ENVELOPE__BODY_PUBLISH);
			assert_non_null(env->publish->alert);
			assert_true(env->publish->alert->alert.len <=
			    CPX_MAX_ALERT);
			cpx__envelope__free_unpacked(env, NULL);
		} else {
			assert_true(reason == CPX__REASON__REASON_MALFORMED ||
			    reason == CPX__REASON__REASON_TOO_LARGE);
			assert_true(why[0] != '\0');
		}
		free(cut);
	}
	/* Cuts inside the nested SignedAlert never decode. */
	assert_true(ok < 5);
	free(buf);
}

static void
test_decode_garbage(void **state)
{
	static const uint8_t	junk[] = { 0xff, 0xff, 0xff, 0xff, 0x0f };
	static const uint8_t	big_len[] = { 0x12, 0xff, 0xff, 0xff, 0xff,
	    0x0f };
	Cpx__Envelope		*env;
	char			 why[128];
	int			 reason;

	(void)state;
	env = wire_decode(junk, sizeof(junk), &reason, why, sizeof(why));
	assert_null(env);
	assert_int_equal(reason, CPX__REASON__REASON_MALFORMED);
	/* A length field claiming 4 GiB inside a 6-byte body. */
	env = wire_decode(big_len, sizeof(big_len), &reason, why, sizeof(why));
	assert_null(env);
	assert_int_equal(reason, CPX__REASON__REASON_MALFORMED);
	/* Empty body: decodes, but no body is set. */
	env = wire_decode(junk, 0, &reason, why, sizeof(why));
	assert_null(env);
	assert_int_equal(reason, CPX__REASON__REASON_MALFORMED);
	assert_non_null(strstr(why, "no body"));
	/* Over the frame limit: refused before unpacking. */
	env = wire_decode(junk, CPX_MAX_FRAME + 1, &reason, why, sizeof(why));
	assert_null(env);
	assert_int_equal(reason, CPX__REASON__REASON_TOO_LARGE);
}

static void
test_signed_alert_limits(void **state)
{
	Cpx__Envelope		 env = CPX__ENVELOPE__INIT, *out;
	Cpx__Publish		 p = CPX__PUBLISH__INIT;
	Cpx__Delivery		 d = CPX__DELIVERY__INIT;
	Cpx__SignedAlert	 sa;
	uint8_t			*big;

	(void)state;
	big = calloc(1, CPX_MAX_ALERT + 1);
	assert_non_null(big);
	fill_signed(&sa);
	env.body_case = CPX__ENVELOPE__BODY_PUBLISH;
	env.publish = &p;
	expect_refused(&env, CPX__REASON__REASON_MALFORMED, "without");
	p.alert = &sa;

	sa.alert.data = big;
	sa.alert.len = CPX_MAX_ALERT + 1;
	expect_refused(&env, CPX__REASON__REASON_TOO_LARGE, "alert is");
	sa.alert.len = CPX_MAX_ALERT;
	out = round_trip(&env);
	cpx__envelope__free_unpacked(out, NULL);

	fill_signed(&sa);
	sa.signature.data = big;
	sa.signature.len = CPX_MAX_SIGNATURE + 1;
	expect_refused(&env, CPX__REASON__REASON_TOO_LARGE, "signature");
	fill_signed(&sa);
	sa.signer_cert.data = big;
	sa.signer_cert.len = CPX_MAX_CERT + 1;
	expect_refused(&env, CPX__REASON__REASON_TOO_LARGE, "certificate");

	/* The same limits apply to what the broker delivers. */
	d.alert = &sa;
	env.body_case = CPX__ENVELOPE__BODY_DELIVERY;
	env.delivery = &d;
	expect_refused(&env, CPX__REASON__REASON_TOO_LARGE, "delivery");
	d.alert = NULL;
	expect_refused(&env, CPX__REASON__REASON_MALFORMED, "delivery");
	free(big);
}

static void
test_filter_limits(void **state)
{
	Cpx__Envelope		 env = CPX__ENVELOPE__INIT, *out;
	Cpx__Subscribe		 sub = CPX__SUBSCRIBE__INIT;
	Cpx__ReplayRequest	 rr = CPX__REPLAY_REQUEST__INIT;
	Cpx__Filter		 f = CPX__FILTER__INIT;
	Cpx__Filter		*fp[CPX_MAX_FILTERS + 1];
	char			*origins[CPX_MAX_FILTER_ORIGINS + 1];
	char			*regions[CPX_MAX_FILTER_REGIONS + 1];
	char			 rbuf[CPX_MAX_FILTER_REGIONS + 1][8];
	Cpx__Category		 cats[CPX_MAX_FILTER_CATS + 1];
	size_t			 i;

	(void)state;
	for (i = 0; i <= CPX_MAX_FILTERS; i++)
		fp[i] = &f;
	for (i = 0; i <= CPX_MAX_FILTER_ORIGINS; i++)
		origins[i] = "SI";
	for (i = 0; i <= CPX_MAX_FILTER_REGIONS; i++) {
		snprintf(rbuf[i], sizeof(rbuf[i]), "r%zu", i);
		regions[i] = rbuf[i];
	}
	for (i = 0; i <= CPX_MAX_FILTER_CATS; i++)
		cats[i] = CPX__CATEGORY__CATEGORY_ROUTE;

	sub.filters = fp;
	env.body_case = CPX__ENVELOPE__BODY_SUBSCRIBE;
	env.subscribe = &sub;
	sub.n_filters = CPX_MAX_FILTERS;
	f.origins = origins;
	f.regions = regions;
	f.categories = cats;
	f.n_origins = CPX_MAX_FILTER_ORIGINS;
	f.n_regions = CPX_MAX_FILTER_REGIONS;
	f.n_categories = CPX_MAX_FILTER_CATS;
	out = round_trip(&env);
	cpx__envelope__free_unpacked(out, NULL);

	sub.n_filters = CPX_MAX_FILTERS + 1;
	expect_refused(&env, CPX__REASON__REASON_BAD_REQUEST, "17 filters");
	sub.n_filters = 1;
	f.n_origins = CPX_MAX_FILTER_ORIGINS + 1;
	expect_refused(&env, CPX__REASON__REASON_BAD_REQUEST, "65 origins");
	f.n_origins = 1;
	origins[0] = "XX";
	expect_refused(&env, CPX__REASON__REASON_BAD_REQUEST, "origin 1");
	origins[0] = "SI";
	f.n_regions = CPX_MAX_FILTER_REGIONS + 1;
	expect_refused(&env, CPX__REASON__REASON_BAD_REQUEST, "17 regions");
	f.n_regions = 1;
	regions[0] = "Not A Region";
	expect_refused(&env, CPX__REASON__REASON_BAD_REQUEST, "region 1");
	regions[0] = rbuf[0];
	f.n_categories = CPX_MAX_FILTER_CATS + 1;
	expect_refused(&env, CPX__REASON__REASON_BAD_REQUEST, "17 categories");
	f.n_categories = 2;
	cats[1] = (Cpx__Category)99;
	expect_refused(&env, CPX__REASON__REASON_BAD_REQUEST, "category 2");
	cats[1] = CPX__CATEGORY__CATEGORY_UNSPECIFIED;
	expect_refused(&env, CPX__REASON__REASON_BAD_REQUEST, "category 2");
	cats[1] = CPX__CATEGORY__CATEGORY_ROUTE;
	f.min_severity = (Cpx__Severity)42;
	expect_refused(&env, CPX__REASON__REASON_BAD_REQUEST, "min_severity");
	f.min_severity = (Cpx__Severity)-3;
	expect_refused(&env, CPX__REASON__REASON_BAD_REQUEST, "min_severity");

	/* Replay requests carry the same filters and limits. */
	rr.filters = fp;
	rr.n_filters = 1;
	env.body_case = CPX__ENVELOPE__BODY_REPLAY;
	env.replay = &rr;
	expect_refused(&env, CPX__REASON__REASON_BAD_REQUEST, "min_severity");
	f.min_severity = CPX__SEVERITY__SEVERITY_UNSPECIFIED;
	out = round_trip(&env);
	cpx__envelope__free_unpacked(out, NULL);
	rr.n_filters = CPX_MAX_FILTERS + 1;
	expect_refused(&env, CPX__REASON__REASON_BAD_REQUEST, "filters");
}

static void
test_other_limits(void **state)
{
	Cpx__Envelope		 env = CPX__ENVELOPE__INIT, *out;
	Cpx__Error		 e = CPX__ERROR__INIT;
	Cpx__Ack		 ack = CPX__ACK__INIT;
	Cpx__Welcome		 w = CPX__WELCOME__INIT;
	Cpx__AuditRecord	 ar = CPX__AUDIT_RECORD__INIT;
	char			 text[CPX_MAX_ERROR_TEXT + 2];
	char			 kind[32];

	(void)state;
	memset(text, 't', sizeof(text) - 1);
	text[sizeof(text) - 1] = '\0';
	e.text = text;
	e.reason = CPX__REASON__REASON_INTERNAL;
	env.body_case = CPX__ENVELOPE__BODY_ERROR;
	env.error = &e;
	expect_refused(&env, CPX__REASON__REASON_MALFORMED, "error text");
	text[CPX_MAX_ERROR_TEXT] = '\0';
	out = round_trip(&env);
	cpx__envelope__free_unpacked(out, NULL);
	e.reason = (Cpx__Reason)99;
	expect_refused(&env, CPX__REASON__REASON_MALFORMED, "reason 99");

	memset(text, 'a', sizeof(text) - 1);
	text[CPX_MAX_ID + 1] = '\0';
	ack.alert_id = text;
	env.body_case = CPX__ENVELOPE__BODY_ACK;
	env.ack = &ack;
	expect_refused(&env, CPX__REASON__REASON_MALFORMED, "alert id");

	w.node = text;
	env.body_case = CPX__ENVELOPE__BODY_WELCOME;
	env.welcome = &w;
	expect_refused(&env, CPX__REASON__REASON_MALFORMED, "welcome");
	w.node = "si-ncp";
	w.country = "SIX";
	expect_refused(&env, CPX__REASON__REASON_MALFORMED, "welcome");

	/* The first kind past the last one defined (values run 0..n-1). */
	ar.kind = (Cpx__RecordKind)cpx__record_kind__descriptor.n_values;
	env.body_case = CPX__ENVELOPE__BODY_AUDIT_RECORD;
	env.audit_record = &ar;
	snprintf(kind, sizeof(kind), "kind %u",
	    cpx__record_kind__descriptor.n_values);
	expect_refused(&env, CPX__REASON__REASON_MALFORMED, kind);
	ar.kind = CPX__RECORD_KIND__RECORD_PUBLISH_REFUSED;
	ar.reason = (Cpx__Reason)-1;
	expect_refused(&env, CPX__REASON__REASON_MALFORMED, "reason -1");
	ar.reason = CPX__REASON__REASON_EXPIRED;
	ar.alert_id = text;
	expect_refused(&env, CPX__REASON__REASON_MALFORMED, "string");
}

/*
 * Unknown fields, including field number 0 written with a two-byte tag
 * (which protobuf-c accepts but cannot read back once re-packed with a
 * one-byte tag), are dropped: the re-encoded envelope decodes again.
 * Found by fuzz_wire.
 */
static void
test_unknown_fields(void **state)
{
	static const uint8_t	body[] = {
		0x3a, 0x0f,			/* replay, 15 bytes: */
		0x08, 0x03,			/* request_id 3 */
		0x92, 0x0e, 0x02, 'S', 'I',	/* field 226, unknown */
		0x82, 0x00, 0x00,		/* field 0, two-byte tag */
		0x32, 0x03, 0x82, 0x00, 0x00,	/* a filter with field 0 */
		0xa0, 0x06, 0x01		/* field 100, unknown */
	};
	Cpx__Envelope		*env, *again;
	uint8_t			*buf;
	size_t			 len;
	char			 why[256];
	int			 reason;

	(void)state;
	env = wire_decode(body, sizeof(body), &reason, why, sizeof(why));
	if (env == NULL)
		fail_msg("decode: %s", why);
	assert_int_equal(env->body_case, CPX__ENVELOPE__BODY_REPLAY);
	assert_int_equal(env->base.n_unknown_fields, 0);
	assert_int_equal(env->replay->base.n_unknown_fields, 0);
	assert_int_equal(env->replay->n_filters, 1);
	assert_int_equal(env->replay->filters[0]->base.n_unknown_fields, 0);
	assert_int_equal(wire_encode(env, &buf, &len), 0);
	again = wire_decode(buf + 4, len - 4, &reason, why, sizeof(why));
	if (again == NULL)
		fail_msg("re-decode: %s", why);
	assert_int_equal(again->replay->request_id, 3);
	cpx__envelope__free_unpacked(again, NULL);
	cpx__envelope__free_unpacked(env, NULL);
	free(buf);
}

static void
test_encode_limit(void **state)
{
	Cpx__Envelope		 env = CPX__ENVELOPE__INIT;
	Cpx__Publish		 p = CPX__PUBLISH__INIT;
	Cpx__SignedAlert	 sa;
	uint8_t			*big, *out = (uint8_t *)1;
	size_t			 outlen = 1;

	(void)state;
	big = calloc(1, CPX_MAX_FRAME);
	assert_non_null(big);
	fill_signed(&sa);
	sa.alert.data = big;
	sa.alert.len = CPX_MAX_FRAME;
	p.alert = &sa;
	env.body_case = CPX__ENVELOPE__BODY_PUBLISH;
	env.publish = &p;
	assert_int_equal(wire_encode(&env, &out, &outlen), -1);
	assert_null(out);
	assert_int_equal(outlen, 0);
	assert_int_equal(wire_encode(NULL, &out, &outlen), -1);
	free(big);
}

/*
 * The bounds of enums are the schema's: every value it defines passes,
 * in an audit record (kind, reason), an Error and a filter (category,
 * min_severity), and the first past the largest is refused. A value added
 * to proto/cpx.proto passes here, and at every peer, with no edit.
 */
static int
largest(const ProtobufCEnumDescriptor *d)
{
	unsigned	i;
	int		v = 0;

	for (i = 0; i < d->n_values; i++)
		if (d->values[i].value > v)
			v = d->values[i].value;
	return v;
}

static void
test_enums_from_schema(void **state)
{
	const ProtobufCEnumDescriptor	*kinds = &cpx__record_kind__descriptor;
	const ProtobufCEnumDescriptor	*reasons = &cpx__reason__descriptor;
	const ProtobufCEnumDescriptor	*cats = &cpx__category__descriptor;
	const ProtobufCEnumDescriptor	*sevs = &cpx__severity__descriptor;
	Cpx__Envelope			 env = CPX__ENVELOPE__INIT, *out;
	Cpx__AuditRecord		 ar = CPX__AUDIT_RECORD__INIT;
	Cpx__Error			 e = CPX__ERROR__INIT;
	Cpx__Subscribe			 sub = CPX__SUBSCRIBE__INIT;
	Cpx__Filter			 f = CPX__FILTER__INIT, *fp = &f;
	Cpx__Category			 cat;
	unsigned			 i;
	char				 why[256];

	(void)state;
	env.body_case = CPX__ENVELOPE__BODY_AUDIT_RECORD;
	env.audit_record = &ar;
	for (i = 0; i < kinds->n_values; i++) {
		ar.kind = kinds->values[i].value;
		out = round_trip(&env);
		assert_int_equal(out->audit_record->kind, ar.kind);
		cpx__envelope__free_unpacked(out, NULL);
	}
	ar.kind = largest(kinds) + 1;
	expect_refused(&env, CPX__REASON__REASON_MALFORMED, "kind");
	ar.kind = CPX__RECORD_KIND__RECORD_PUBLISH_REFUSED;
	for (i = 0; i < reasons->n_values; i++) {
		ar.reason = reasons->values[i].value;
		out = round_trip(&env);
		cpx__envelope__free_unpacked(out, NULL);
	}
	ar.reason = largest(reasons) + 1;
	expect_refused(&env, CPX__REASON__REASON_MALFORMED, "reason");

	env.body_case = CPX__ENVELOPE__BODY_ERROR;
	env.error = &e;
	e.reason = largest(reasons);
	out = round_trip(&env);
	cpx__envelope__free_unpacked(out, NULL);
	e.reason = largest(reasons) + 1;
	expect_refused(&env, CPX__REASON__REASON_MALFORMED, "reason");

	env.body_case = CPX__ENVELOPE__BODY_SUBSCRIBE;
	env.subscribe = &sub;
	sub.filters = &fp;
	sub.n_filters = 1;
	f.categories = &cat;
	f.n_categories = 1;
	for (i = 0; i < cats->n_values; i++) {
		cat = cats->values[i].value;
		if (cat == CPX__CATEGORY__CATEGORY_UNSPECIFIED) {
			expect_refused(&env, CPX__REASON__REASON_BAD_REQUEST,
			    "category 1");
			continue;
		}
		out = round_trip(&env);
		cpx__envelope__free_unpacked(out, NULL);
	}
	cat = largest(cats) + 1;
	expect_refused(&env, CPX__REASON__REASON_BAD_REQUEST, "category 1");
	cat = CPX__CATEGORY__CATEGORY_ROUTE;
	for (i = 0; i < sevs->n_values; i++) {
		f.min_severity = sevs->values[i].value;
		out = round_trip(&env);
		cpx__envelope__free_unpacked(out, NULL);
	}
	f.min_severity = largest(sevs) + 1;
	expect_refused(&env, CPX__REASON__REASON_BAD_REQUEST, "min_severity");
	f.min_severity = CPX__SEVERITY__SEVERITY_UNSPECIFIED;

	/* The one shape check, as the policy calls it: filters in memory. */
	assert_int_equal(wire_filters_check(&fp, 1, why, sizeof(why)), 0);
	assert_int_equal(wire_filters_check(NULL, 0, why, sizeof(why)), 0);
	assert_int_equal(wire_filters_check(NULL, 1, why, sizeof(why)), -1);
	fp = NULL;
	assert_int_equal(wire_filters_check(&fp, 1, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "filter 0 missing"));
	fp = &f;
	f.categories = NULL;
	assert_int_equal(wire_filters_check(&fp, 1, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "filter 0: 1 categories"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip_all),
		cmocka_unit_test(test_frame_cut),
		cmocka_unit_test(test_frame_limits),
		cmocka_unit_test(test_two_frames),
		cmocka_unit_test(test_decode_cut),
		cmocka_unit_test(test_decode_garbage),
		cmocka_unit_test(test_signed_alert_limits),
		cmocka_unit_test(test_filter_limits),
		cmocka_unit_test(test_enums_from_schema),
		cmocka_unit_test(test_other_limits),
		cmocka_unit_test(test_unknown_fields),
		cmocka_unit_test(test_encode_limit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
