/*
 * json_out.h: the one JSON rendering of alerts and audit records, used by
 * every tool that prints them (cpx-audit dump, cpx replay --json, cpx
 * subscribe --json), so the same record prints the same JSON everywhere.
 * docs/json.md describes the objects key by key.
 */
#ifndef CPX_JSON_OUT_H
#define CPX_JSON_OUT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "proto/cpx.pb-c.h"

/* 9999-12-31T23:59:59.999Z: the last instant written (or read) as text. */
#define JSON_OUT_TIME_MAX	253402300799999LL

/* Enough for json_out_time_format(): "2026-11-25T17:30:00.123Z". */
#define JSON_OUT_TIME_LEN	32

/*
 * Format ms (since the epoch) as "YYYY-MM-DDTHH:MM:SS.fffZ" into buf.
 * Returns 0, or -1 (buf set to "" if len > 0) when the time is outside
 * years 1970..9999 or buf is too small.
 */
int	json_out_time_format(int64_t ms, char *buf, size_t len)
	    __attribute__((warn_unused_result));

/*
 * A time as JSON: the string of json_out_time_format(), or the number of
 * milliseconds when it has no such form (a bad alert's time). The caller
 * owns the result; NULL on failure.
 */
json_t	*json_out_time(int64_t ms);

/*
 * A string as JSON. Bytes off the wire or disk need not be UTF-8, which
 * JSON must be: each byte that is not part of a valid sequence becomes
 * U+FFFD, so one bad byte does not lose the record. NULL is "". The
 * caller owns the result; NULL on failure.
 */
json_t	*json_out_string(const char *s);

/*
 * An unsigned 64-bit number as JSON: an integer, or its decimal string
 * when it is beyond json_int_t. The caller owns the result.
 */
json_t	*json_out_u64(uint64_t v);

/*
 * The JSON object of an alert: id, origin, issued_at, category, severity,
 * handling, recipients, summary, then place, route, vehicles,
 * persons_count, reference, expires_at when set. Enums by their short
 * name (lib/alert.h), or by number when the schema does not know the
 * value or it is 0. The caller owns the result (json_decref); NULL on
 * failure.
 */
json_t	*json_out_alert(const Cpx__Alert *a)
	    __attribute__((warn_unused_result));

/*
 * The JSON object of an audit record: seq, time, kind, peer_country,
 * peer_node always; peer_address, session_id, reason, count, text,
 * alert_id, entitled when set; for a record carrying a SignedAlert,
 * signature_bytes and alert (json_out_alert of the alert inside, or null
 * and alert_error if it does not decode); for a checkpoint,
 * checkpoint_seq, checkpoint_hash (lower-case hex) and
 * checkpoint_signature_bytes. Never a key, signature or certificate
 * itself. The caller owns the result; NULL on failure.
 */
json_t	*json_out_record(const Cpx__AuditRecord *r)
	    __attribute__((warn_unused_result));

/*
 * o as one line of text (no newline): compact, keys in the order set,
 * printable ASCII only (anything else as \u escapes, so the line is safe
 * on a terminal), reals with 15 significant digits. The caller owns the
 * result (free()); NULL on failure.
 */
char	*json_out_line(const json_t *o)
	    __attribute__((warn_unused_result));

/*
 * Length of the valid UTF-8 sequence at s (n bytes available), with its
 * code point in *cp if cp is not NULL, or 0 if s[0] does not start one:
 * overlong forms, surrogates and values above U+10FFFF are invalid (RFC
 * 3629). The one UTF-8 decoder of the JSON writer and reader.
 */
size_t	json_utf8_next(const unsigned char *s, size_t n, uint32_t *cp);

#endif
