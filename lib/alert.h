/*
 * alert.h: checks that an Alert is well-formed: known enums, sane sizes,
 * valid country codes, times within bounds. Policy (which regions exist,
 * who may receive it) is the broker's, in broker/policy.c.
 */
#ifndef CPX_ALERT_H
#define CPX_ALERT_H

#include <stddef.h>
#include <stdint.h>

#include "proto/cpx.pb-c.h"

/*
 * Check a decoded alert. now_ms is the checker's clock; max_skew_ms bounds
 * |issued_at - now| (0 disables the time checks, for offline checks of
 * old records). Recipients must each be a valid country code or a
 * syntactically valid region name ([a-z0-9-], 1..CPX_MAX_REGION_NAME);
 * whether that region exists is for the policy. For HANDLING_NAMED_ONLY
 * every recipient must be a country, and for RESTRICTED and NAMED_ONLY
 * the list may not be empty. Text fields must be valid UTF-8 without
 * control characters (C0, DEL, C1, bidi overrides and isolates, line
 * separators); the summary alone may hold newlines and tabs. Returns 0,
 * or -1 with *reason (CPX__REASON__*) and why[] set.
 */
int	alert_validate(const Cpx__Alert *a, int64_t now_ms,
	    int64_t max_skew_ms, int *reason, char *why, size_t whylen)
	    __attribute__((warn_unused_result));

/* 1 if s is a well-formed alert id ([A-Za-z0-9._:-], 1..CPX_MAX_ID). */
int	alert_id_valid(const char *s);
/* 1 if s is a well-formed region name. */
int	alert_region_name_valid(const char *s);

/* Names for enums, for logs and JSON ("route", "high", ...). */
const char *alert_category_name(int c);
const char *alert_severity_name(int s);
const char *alert_handling_name(int h);
const char *alert_reason_name(int r);
/* Audit record kinds ("alert-accepted", ...), for dumps and replays. */
const char *alert_record_kind_name(int k);
/* Parse the names above (case-insensitive); -1 if unknown. */
int	alert_category_parse(const char *s);
int	alert_severity_parse(const char *s);
int	alert_handling_parse(const char *s);

/* Milliseconds since the Unix epoch. */
int64_t	alert_now_ms(void);

#endif
