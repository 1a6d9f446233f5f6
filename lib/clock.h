/*
 * clock.h: the two clocks of cpx, in milliseconds.
 *
 * Timeouts, intervals and rate limits use the monotonic clock, which a
 * changed system time cannot move: a wall clock stepped back would keep a
 * session alive past its idle timeout, stepped forward would cut it at
 * once. Times that leave the process (an alert's issued_at, an audit
 * record's broker time, log lines) use the wall clock, in milliseconds
 * since 1970 UTC.
 */
#ifndef CPX_CLOCK_H
#define CPX_CLOCK_H

#include <stdint.h>

/* Milliseconds on CLOCK_MONOTONIC: only differences mean anything. */
int64_t	clock_mono_ms(void);

/* Milliseconds since 1970-01-01 UTC (CLOCK_REALTIME); 0 if unreadable. */
int64_t	clock_wall_ms(void);

#endif
