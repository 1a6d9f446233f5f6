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

/*
 * Short names of the schema's enums, for logs, JSON and the command line:
 * the value's name in proto/cpx.proto without its prefix, lower case,
 * '_' as '-' (CATEGORY_ROUTE "route", HANDLING_NAMED_ONLY "named-only",
 * REASON_CRL_STALE "crl-stale", RECORD_ALERT_ACCEPTED "alert-accepted",
 * REFERENCE_UPDATES "updates"). A value the schema does not define is
 * "unknown". The result is a constant string.
 */
const char *alert_category_name(int c);
const char *alert_severity_name(int s);
const char *alert_handling_name(int h);
const char *alert_reference_kind_name(int k);
const char *alert_reason_name(int r);
const char *alert_record_kind_name(int k);
/*
 * Parse the names above (case-insensitive): the value, or -1 if unknown.
 * Value 0 (UNSPECIFIED, NONE) is never returned: it cannot be asked for.
 */
int	alert_category_parse(const char *s);
int	alert_severity_parse(const char *s);
int	alert_handling_parse(const char *s);
int	alert_reference_kind_parse(const char *s);
int	alert_reason_parse(const char *s);
int	alert_record_kind_parse(const char *s);
/*
 * What may be asked for by name, for messages: every short name but
 * value 0's, in schema order ("low, medium, high, critical"). A constant
 * string.
 */
const char *alert_category_choices(void);
const char *alert_severity_choices(void);
const char *alert_handling_choices(void);
const char *alert_reference_kind_choices(void);

/* Milliseconds since the Unix epoch. */
int64_t	alert_now_ms(void);

#endif
