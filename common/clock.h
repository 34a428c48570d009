/* clock.h — the one clock of the project: CLOCK_MONOTONIC in milliseconds, for stage timings
 * (fractional) and for deadlines and heartbeats (whole). Never wall-clock time.
 * Not here: sleeping, timers (each loop polls with its own timeout). */
#ifndef HIRED_CLOCK_H
#define HIRED_CLOCK_H

#include <stdint.h>

/* Monotonic milliseconds with sub-millisecond resolution (stage timings). */
double clock_ms(void);
/* Monotonic whole milliseconds (deadlines, heartbeats, wire timestamps). */
int64_t clock_now_ms(void);

#endif
