/*
 * alert_json.h: the client's JSON view of alerts. An analyst writes an
 * alert as a JSON object, the CLI turns it into a Cpx__Alert to sign and
 * publish; deliveries come back as one JSON line each (for scripts) or as
 * a short human-readable block (for a terminal).
 *
 * JSON keys (all optional unless marked required):
 *   id, origin, issued_at		left empty/0 when absent: the caller
 *					fills them before signing
 *   category, severity, handling	required, by name ("vehicle", "high",
 *					"named-only", see lib/alert.h)
 *   summary				required string
 *   recipients, route			arrays of strings
 *   place	{name, crossing, latitude, longitude}
 *   vehicles	[{plate, country, description}]
 *   persons_count			integer
 *   reference	{alert_id, kind: "updates" | "withdraws"}
 *   expires_at
 *   author				who wrote it, at most CPX_MAX_AUTHOR
 * Times are ISO 8601 UTC strings ("2026-11-25T17:30:00Z", optional
 * fraction, "Z" or a +hh:mm offset) or integers (ms since the epoch).
 */
#ifndef CPX_ALERT_JSON_H
#define CPX_ALERT_JSON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "json_out.h"
#include "proto/cpx.pb-c.h"

/* Largest JSON document alert_json_parse() accepts, bytes. */
#define ALERT_JSON_MAX_TEXT	(1024u * 1024u)

/* Enough for alert_json_time_format(): "2026-11-25T17:30:00.123Z". */
#define ALERT_JSON_TIME_LEN	JSON_OUT_TIME_LEN

/*
 * Parse one JSON object (text need not be NUL-terminated) into a newly
 * allocated alert. Every protocol bound of cpx_limits.h (lengths, repeat
 * counts) and every enum name is checked here, so a hostile file cannot
 * make a huge or nonsensical message; semantic checks (country codes,
 * handling vs recipients, clocks) remain alert_validate()'s. The caller
 * owns the result and frees it with alert_json_free() (or
 * cpx__alert__free_unpacked(a, NULL): every string and submessage is
 * malloc'd). Returns NULL with a message in err (naming the key, or the
 * line and column of a syntax error) on failure.
 */
Cpx__Alert *alert_json_parse(const char *text, size_t len, char *err,
	    size_t errlen) __attribute__((warn_unused_result));

/* Free an alert from alert_json_parse(); accepts NULL, NULLs *a. */
void	alert_json_free(Cpx__Alert **a);

/*
 * The reverse of alert_json_parse(): json_out_alert() of lib/json_out.h,
 * the writer every tool shares. Same keys, times as ISO 8601 strings
 * with milliseconds. Empty optional parts (no place, no route, 0 persons,
 * no expiry, ...) are left out. Strings that are not valid UTF-8 (an
 * alert off the wire is not checked for it) have the bad bytes replaced
 * by U+FFFD. The caller owns the result (json_decref). NULL on failure.
 */
json_t	*alert_json_from_alert(const Cpx__Alert *a)
	    __attribute__((warn_unused_result));

/* One received alert with what the client learned about it. */
struct alert_json_delivery {
	uint64_t		 seq;		/* broker audit sequence */
	int64_t			 accepted_at;	/* broker time, ms */
	const Cpx__Alert	*alert;		/* NULL if undecodable */
	int			 verified;	/* signature checked OK */
	const char		*signer_node;	/* signer CN, or NULL */
	const char		*signer_country; /* signer C, or NULL */
	int			 replayed;	/* from history */
	const char		*verify_error;	/* why not verified, or NULL */
};

/*
 * One compact JSON line (no newline) for a delivery, keys in this order:
 * seq, accepted_at, id, origin, category, severity, handling, recipients,
 * summary, issued_at, signer, signer_country, verified, replayed,
 * verify_error (only when set), alert (the full alert_json_from_alert()
 * object, or null). signer and signer_country are strings or null.
 * The line is json_out_line()'s: printable ASCII (non-ASCII as \u
 * escapes, so it is safe on a terminal), reals with 15 significant
 * digits. The caller owns the result (free()). NULL on failure.
 */
char	*alert_json_delivery_line(const struct alert_json_delivery *d)
	    __attribute__((warn_unused_result));

/*
 * Print a delivery for a person at a terminal: a header line
 *   #42 2026-11-25 17:30:00Z SI -> western-balkans  HIGH
 *     category: vehicle  handling: network  [verified: si-ncp]
 * (on one line) then one indented line each for summary, place, route,
 * vehicles, persons, reference, expiry when present. Every string from
 * the alert or the certificate is sanitised first: control characters
 * (C0, DEL, C1), bidi overrides and invalid UTF-8 are replaced, so an
 * alert cannot inject terminal escape sequences or fake lines. Returns 0,
 * or -1 on a write error.
 */
int	alert_json_print_human(FILE *out, const struct alert_json_delivery *d)
	    __attribute__((warn_unused_result));

/*
 * Parse a UTC time: "YYYY-MM-DD", "YYYY-MM-DDTHH:MM[:SS[.fff]]" followed
 * by "Z" or "+hh:mm"/"-hh:mm" (a space may replace the T; the zone may be
 * left out only for the date-only form), or a string of decimal digits
 * taken as milliseconds since the epoch. Years 1970..9999. Fractions
 * beyond milliseconds are truncated. Returns 0 with *ms set, or -1 with
 * *ms = 0.
 */
int	alert_json_time_parse(const char *s, int64_t *ms)
	    __attribute__((warn_unused_result));

/*
 * Format ms as "YYYY-MM-DDTHH:MM:SS.fffZ" into buf (at least
 * ALERT_JSON_TIME_LEN bytes advised): json_out_time_format(), the format
 * of every time the tools write. Returns 0, or -1 (buf set to "" if
 * len > 0) when the time is outside years 1970..9999 or buf is too small.
 */
int	alert_json_time_format(int64_t ms, char *buf, size_t len)
	    __attribute__((warn_unused_result));

#endif
