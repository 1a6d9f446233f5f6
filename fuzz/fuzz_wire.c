/*
 * fuzz_wire.c: libFuzzer target for the frame codec (lib/wire.c), the
 * first code to see a peer's bytes after TLS. The input is a byte stream
 * as it comes out of TLS: split into frames with wire_frame_next, each
 * body decoded with wire_decode; a decoded Publish or Delivery has its
 * alert bytes unpacked and run through alert_validate, as the broker and
 * the subscriber do. A decoded envelope must also re-encode and decode
 * again (what the broker forwards must pass the peer's checks).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "alert.h"
#include "cpx_limits.h"
#include "wire.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_NOW	1750000000000LL

static void
check_alert(const Cpx__SignedAlert *sa)
{
	Cpx__Alert	*a;
	char		 why[256];
	int		 reason;

	if (sa == NULL)
		return;
	a = cpx__alert__unpack(NULL, sa->alert.len, sa->alert.data);
	if (a == NULL)
		return;
	if (alert_validate(a, FUZZ_NOW, 300000, &reason, why,
	    sizeof(why)) == -1 && reason == CPX__REASON__REASON_NONE)
		abort();
	cpx__alert__free_unpacked(a, NULL);
}

static void
reencode(const Cpx__Envelope *env)
{
	Cpx__Envelope	*again;
	uint8_t		*buf;
	size_t		 len;
	char		 why[256];
	int		 reason;

	if (wire_encode(env, &buf, &len) == -1)
		abort();
	again = wire_decode(buf + 4, len - 4, &reason, why, sizeof(why));
	if (again == NULL || again->body_case != env->body_case)
		abort();
	cpx__envelope__free_unpacked(again, NULL);
	free(buf);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t	*body;
	Cpx__Envelope	*env;
	size_t		 blen, used, pos = 0;
	char		 why[256];
	int		 reason;

	/* The pre-authentication limit, as the broker applies it first. */
	(void)wire_frame_next(data, size, CPX_MAX_FRAME_PREAUTH, &body,
	    &blen, &used);
	while (pos < size && wire_frame_next(data + pos, size - pos,
	    CPX_MAX_FRAME, &body, &blen, &used) == WIRE_FRAME) {
		if (used == 0 || used > size - pos)
			abort();
		pos += used;
		env = wire_decode(body, blen, &reason, why, sizeof(why));
		if (env == NULL) {
			if (reason == CPX__REASON__REASON_NONE)
				abort();
			continue;
		}
		if (env->body_case == CPX__ENVELOPE__BODY_PUBLISH)
			check_alert(env->publish->alert);
		else if (env->body_case == CPX__ENVELOPE__BODY_DELIVERY)
			check_alert(env->delivery->alert);
		reencode(env);
		cpx__envelope__free_unpacked(env, NULL);
	}
	return 0;
}
