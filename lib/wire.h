/*
 * wire.h: the frame codec inside the TLS stream. A frame is a 4-byte
 * big-endian length followed by one serialized cpx.Envelope.
 */
#ifndef CPX_WIRE_H
#define CPX_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "proto/cpx.pb-c.h"

enum wire_status {
	WIRE_FRAME = 0,		/* a complete frame is available */
	WIRE_NEED_MORE,		/* not enough bytes yet */
	WIRE_TOO_LARGE		/* the announced length is over the limit */
};

/*
 * Look for one frame at the start of buf[0..len). On WIRE_FRAME, *body
 * and *body_len designate the Envelope bytes inside buf and *consumed is
 * the number of bytes the frame occupies (prefix included); otherwise
 * they are zeroed. The announced length is checked against max_frame
 * (itself capped at CPX_MAX_FRAME) before anything else: a peer never
 * makes us wait for or allocate what it claims. A zero length is a frame
 * (an empty Envelope, which wire_decode refuses).
 */
enum wire_status wire_frame_next(const uint8_t *buf, size_t len,
	    size_t max_frame, const uint8_t **body, size_t *body_len,
	    size_t *consumed);

/*
 * Serialize env with its 4-byte prefix into a new buffer (caller frees
 * with free()). Returns 0, or -1 (out of memory, or over CPX_MAX_FRAME).
 */
int	wire_encode(const Cpx__Envelope *env, uint8_t **out, size_t *outlen)
	    __attribute__((warn_unused_result));

/*
 * Decode one Envelope body (without prefix) and check its structural
 * limits: a body is set, repeat counts and lengths within cpx_limits.h,
 * enums known. Unknown fields are dropped at every level, so what is
 * re-encoded from the result (stored, forwarded) is only what we checked
 * and always decodes again. Returns a new Envelope (free with
 * cpx__envelope__free_unpacked(env, NULL)) or NULL with *reason
 * (CPX__REASON__*) and why[] set. Does not validate the alert inside a
 * SignedAlert (see alert_validate) nor signatures (see sign.h).
 */
Cpx__Envelope *wire_decode(const uint8_t *body, size_t len, int *reason,
	    char *why, size_t whylen);

/*
 * The one check of a filter set's shape (Subscribe.filters,
 * ReplayRequest.filters): at most CPX_MAX_FILTERS, none missing, each
 * within its counts, origins country codes, regions well-formed names,
 * categories and min_severity values of the schema (a category never
 * UNSPECIFIED). Whether a region exists is the policy's question, not
 * this one's. Returns 0, or -1 with why[] naming the filter (counted
 * from 0) and the part; the request is then a REASON_BAD_REQUEST.
 */
int	wire_filters_check(Cpx__Filter *const *filters, size_t n, char *why,
	    size_t whylen) __attribute__((warn_unused_result));

/*
 * Copy s into buf (len > 0) for an error message: printable ASCII only,
 * cut to fit, so a peer's bytes cannot reach a log as control
 * characters. Returns buf.
 */
const char *wire_printable(const char *s, char *buf, size_t len);

#endif
