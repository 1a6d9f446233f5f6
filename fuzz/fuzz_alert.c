/*
 * fuzz_alert.c: libFuzzer target for alert validation (lib/alert.c). The
 * input is the alert bytes of a SignedAlert (a signer can put anything
 * there): unpacked with protobuf-c and checked with alert_validate at a
 * fixed clock, with and without the time checks. An alert that passes
 * and has no unknown field must re-encode within CPX_MAX_ALERT and pass
 * again after a round trip. (protobuf-c accepts a field number 0 written
 * with a two-byte tag but cannot read it back once re-packed; alerts with
 * unknown fields are refused by sign_verify_alert's canonical check.)
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "alert.h"
#include "cpx_limits.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_NOW	1750000000000LL

static size_t
unknown_fields(const Cpx__Alert *a)
{
	size_t	n, i;

	n = a->base.n_unknown_fields;
	if (a->place != NULL)
		n += a->place->base.n_unknown_fields;
	if (a->reference != NULL)
		n += a->reference->base.n_unknown_fields;
	for (i = 0; i < a->n_vehicles; i++)
		n += a->vehicles[i]->base.n_unknown_fields;
	return n;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Cpx__Alert	*a, *b;
	uint8_t		*buf;
	size_t		 len;
	char		 why[256];
	int		 reason;

	if (size > CPX_MAX_ALERT)
		return 0;
	if ((a = cpx__alert__unpack(NULL, size, data)) == NULL)
		return 0;
	(void)alert_category_name(a->category);
	(void)alert_severity_name(a->severity);
	(void)alert_handling_name(a->handling);
	(void)alert_validate(a, FUZZ_NOW, 300000, &reason, why, sizeof(why));
	if (alert_validate(a, FUZZ_NOW, 0, &reason, why, sizeof(why)) == 0 &&
	    unknown_fields(a) == 0) {
		len = cpx__alert__get_packed_size(a);
		if (len > CPX_MAX_ALERT || (buf = malloc(len + 1)) == NULL)
			abort();
		if (cpx__alert__pack(a, buf) != len)
			abort();
		if ((b = cpx__alert__unpack(NULL, len, buf)) == NULL ||
		    alert_validate(b, FUZZ_NOW, 0, &reason, why,
		    sizeof(why)) != 0)
			abort();
		cpx__alert__free_unpacked(b, NULL);
		free(buf);
	}
	cpx__alert__free_unpacked(a, NULL);
	return 0;
}
