/* harness.h — integration-test helpers: spawn hired-broker and fake_worker processes on
 * 127.0.0.1 with ephemeral ports, kill them, and collect libhired events per job with the
 * checks every test wants (one ACCEPTED, contiguous token seqs, one terminal event).
 * Every spawned process dies with the test (PR_SET_PDEATHSIG) and a watchdog alarm ends a
 * test that hangs. Binaries come from $HIRED_BUILD_DIR (set by ctest). */
#ifndef HIRED_HARNESS_H
#define HIRED_HARNESS_H

#include <stdbool.h>
#include <sys/types.h>

#include "hired_client.h"

/* Starts the watchdog (seconds) and makes a scratch directory. */
void h_init(int watchdog_s);
/* Stops everything still running (SIGTERM, then SIGKILL after 5 s), removes the scratch
 * directory. Returns how many processes did not exit with status 0 (sanitizer findings, leaks,
 * crashes); tests CHECK that it is 0. */
int h_cleanup(void);

/* Starts hired-broker with extra "--key=value" options (NULL-terminated); front/back are
 * "tcp://127.0.0.1:*" unless given (a restart passes the old ones). Waits for its ports file.
 * Returns the pid; front_ep / back_ep receive the bound endpoints (256 bytes each). */
pid_t h_broker(const char *front, const char *back, const char *const *opts, char *front_ep, char *back_ep);
/* Runs hired-broker with exactly these arguments and returns its exit status (it must exit
 * by itself within timeout_ms: for configuration errors). */
int h_broker_exit(const char *const *args, int timeout_ms);
/* Starts argv[0] with argv (dies with the test: PR_SET_PDEATHSIG); stdout and stderr go to
 * out_path when given. Flags: H_SPAWN_TRACK (h_cleanup stops it), H_SPAWN_LOG_ENV
 * (HIRED_LOG_LEVEL = $HIRED_TEST_LOG, else warn). Returns the pid (exits 2 if fork fails). */
#define H_SPAWN_TRACK 1u
#define H_SPAWN_LOG_ENV 2u
pid_t h_spawn(char *const argv[], const char *out_path, unsigned flags);
/* Path of a file in the scratch directory. */
const char *h_path(const char *name);
/* Starts fake_worker. */
pid_t h_worker(const char *back_ep, const char *service, const char *model, int capacity, int delay_ms);
/* The heartbeat interval of the fake workers h_worker starts from now on (200 ms unless set);
 * it must equal the broker's broker.heartbeat_ms. */
void h_worker_heartbeat(int ms);
void h_kill(pid_t pid, int sig);
/* Waits for pid to exit (up to timeout_ms, then SIGKILL). Returns its exit status or -1. */
int h_wait(pid_t pid, int timeout_ms);

/* Polls STATUS until the pools of model hold n_enc encoders and n_dec decoders. */
bool h_wait_workers(hired_client *c, const char *model, int n_enc, int n_dec, int timeout_ms);
/* A counter from STATUS ("completed", ...; or a top-level number: "active_jobs", ...), or -1. */
long h_status_counter(hired_client *c, const char *name);

typedef struct h_result {
    char id[HIRED_JOB_ID_LEN];
    char expect[512];   /* text the job should produce */
    char text[1024];    /* concatenated TOKEN texts */
    char done_text[1024];
    int accepted, tokens, dups, gaps;
    int final;          /* 0 none yet, else HIRED_EVENT_DONE / ERROR / BUSY */
    int code;
    char message[1025];
    char finish[17];
    double timings[HIRED_STAGE_COUNT];
    uint32_t visual_kept, visual_total, result_bytes; /* DONE usage */
} h_result;

/* Submits a job with the fake image "img-<id>" and the prompt; fills r (id, expect). */
int h_submit(hired_client *c, const char *model, const char *prompt, int deadline_ms, h_result *r);
/* Feeds events into rs[n] (matched by id) until every one has a final event or timeout_ms
 * passes. Returns how many are final. Checks ACCEPTED-once and seq order as it goes. */
int h_collect(hired_client *c, h_result *rs, int n, int timeout_ms);

void h_sleep_ms(int ms);

#endif
