/*
 * fuzz_alert_json.c: libFuzzer target for alert_json_parse(), the decoder
 * of the JSON alert files an analyst (or anyone who can hand them one)
 * feeds the CLI. Whatever it accepts must convert back to JSON, print as
 * a delivery line, print for a terminal and free cleanly.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "alert_json.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static FILE *devnull;
	struct alert_json_delivery d = { 0 };
	Cpx__Alert *a;
	json_t *j;
	char err[256], *line;

	a = alert_json_parse((const char *)data, size, err, sizeof(err));
	if (a == NULL)
		return 0;
	j = alert_json_from_alert(a);
	if (j == NULL)
		abort();	/* every parsed alert has a JSON form */
	json_decref(j);
	d.seq = 1;
	d.alert = a;
	if ((line = alert_json_delivery_line(&d)) == NULL)
		abort();
	free(line);
	if (devnull == NULL && (devnull = fopen("/dev/null", "w")) == NULL)
		abort();
	if (alert_json_print_human(devnull, &d) == -1)
		abort();
	alert_json_free(&a);
	return 0;
}
