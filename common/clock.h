/* clock.h — the one clock of the project: CLOCK_MONOTONIC in milliseconds, for stage timings
 * (fractional) and for deadlines and heartbeats (whole). Wall-clock time only where POSIX
 * demands it: the absolute deadline of pthread_cond_timedwait (clock_cond_deadline).
 * Not here: sleeping, timers (each loop polls with its own timeout). */
#ifndef HIRED_CLOCK_H
#define HIRED_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Monotonic milliseconds with sub-millisecond resolution (stage timings). */
double clock_ms(void);
/* Monotonic whole milliseconds (deadlines, heartbeats, wire timestamps). */
int64_t clock_now_ms(void);
/* The CLOCK_REALTIME instant timeout_ms (>= 0) from now, for pthread_cond_timedwait. */
void clock_cond_deadline(struct timespec *ts, int timeout_ms);

#endif
