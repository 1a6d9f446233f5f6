/*
 * clock.c: monotonic and wall-clock milliseconds (see clock.h).
 */
#include <time.h>

#include "clock.h"

int64_t
clock_mono_ms(void)
{
	struct timespec ts = { 0, 0 };

	/* Cannot fail for CLOCK_MONOTONIC on Linux with a valid pointer. */
	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
clock_wall_ms(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_REALTIME, &ts) == -1)
		return 0;
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
