/* faultproxy.h — a TCP proxy for fault tests, run on a thread inside the test process: it sits
 * between a ZeroMQ peer and the broker (client <-> frontend, worker <-> backend) and, on the
 * test's command, stalls a direction (stops reading, so the sender's buffers fill as with a
 * reader that stopped), throttles a direction to a byte rate, or resets every connection (a TCP
 * RST on both sides: ZeroMQ reconnects and the broker sees a new routing id), once or every N ms.
 * Counters show that the fault happened (resets done, bytes held back, peak rate).
 * Built on libevent (bufferevents, a listener and its token-bucket rate limits), so the event
 * loop and the rate limiting are not written here. Not a product component: tests only. */
#ifndef HIRED_FAULTPROXY_H
#define HIRED_FAULTPROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct fp fp_t;

enum { FP_UP = 1, FP_DOWN = 2, FP_BOTH = 3 }; /* up: towards the target (the broker) */

typedef struct fp_stats {
    uint64_t accepted;      /* connections accepted */
    uint64_t resets;        /* connections reset */
    uint64_t bytes_up, bytes_down; /* bytes forwarded */
    uint64_t stalled_ms;    /* time spent with a direction stalled while a connection was open */
    int open;               /* connections open now */
} fp_stats_t;

/* Listens on 127.0.0.1 (an ephemeral port; `listen_ep` gets "tcp://127.0.0.1:PORT", 64 bytes)
 * and forwards every connection to target_ep ("tcp://HOST:PORT"). NULL on failure. */
fp_t *fp_start(const char *target_ep, char *listen_ep);
/* Stops the loop thread, closes everything. NULL-safe; sets *pf = NULL. */
void fp_stop(fp_t **pf);

/* Stalls (stops reading) or resumes the given directions, on every connection, new ones too. */
void fp_stall(fp_t *f, int dirs, bool on);
/* Limits the given directions to bytes_per_s each (per connection); 0 = unlimited. */
void fp_rate(fp_t *f, int dirs, size_t bytes_per_s);
/* Resets every open connection now (within ~10 ms). */
void fp_reset(fp_t *f);
/* Resets every open connection every ms milliseconds (0 = stop). */
void fp_reset_every(fp_t *f, int ms);
void fp_get_stats(fp_t *f, fp_stats_t *out);

#endif
