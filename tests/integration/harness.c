/* harness.c — see harness.h. */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "clock.h"

#define MAX_PROCS 64

static pid_t g_procs[MAX_PROCS];
static int g_nprocs;
static char g_dir[256];
static int g_nbrokers;

static void kill_all(void) {
    for (int i = 0; i < g_nprocs; i++)
        if (g_procs[i] > 0) kill(g_procs[i], SIGKILL);
}

static void on_alarm(int sig) {
    (void)sig;
    static const char msg[] = "harness: watchdog expired, test hung\n";
    ssize_t r = write(2, msg, sizeof msg - 1);
    (void)r;
    kill_all();
    _exit(3);
}

void h_sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

void h_init(int watchdog_s) {
    signal(SIGALRM, on_alarm);
    signal(SIGPIPE, SIG_IGN);
    alarm((unsigned)watchdog_s);
    snprintf(g_dir, sizeof g_dir, "/tmp/hired-it-XXXXXX");
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        exit(2);
    }
}

int h_cleanup(void) {
    /* SIGTERM first, so every process exits through its normal path (and, in sanitizer
     * builds, through the leak checker); anything that does not exit 0 in time counts. */
    int bad = 0;
    for (int i = 0; i < g_nprocs; i++)
        if (g_procs[i] > 0) kill(g_procs[i], SIGTERM);
    for (int i = 0; i < g_nprocs; i++)
        if (g_procs[i] > 0) {
            pid_t pid = g_procs[i];
            int st = h_wait(pid, 5000);
            if (st != 0) {
                fprintf(stderr, "harness: process %d ended with status %d\n", (int)pid, st);
                bad++;
            }
        }
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
    if (g_dir[0] && system(cmd) != 0) fprintf(stderr, "harness: could not remove %s\n", g_dir);
    return bad;
}

pid_t h_spawn(char *const argv[], const char *out_path, unsigned flags) {
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        exit(2);
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (flags & H_SPAWN_LOG_ENV)
            setenv("HIRED_LOG_LEVEL", getenv("HIRED_TEST_LOG") ? getenv("HIRED_TEST_LOG") : "warn", 1);
        if (out_path) {
            int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
            if (fd >= 0) {
                dup2(fd, 1);
                dup2(fd, 2);
                close(fd);
            }
        }
        execvp(argv[0], argv); /* a path, or a command found on PATH (ip) */
        perror(argv[0]);
        _exit(127);
    }
    if ((flags & H_SPAWN_TRACK) && g_nprocs < MAX_PROCS) g_procs[g_nprocs++] = pid;
    return pid;
}

static pid_t spawn(char *const argv[]) { return h_spawn(argv, NULL, H_SPAWN_TRACK | H_SPAWN_LOG_ENV); }

static const char *bin(const char *rel) {
    static char buf[1024];
    const char *root = getenv("HIRED_BUILD_DIR");
    snprintf(buf, sizeof buf, "%s/%s", root ? root : ".", rel);
    return buf;
}

pid_t h_broker(const char *front, const char *back, const char *const *opts, char *front_ep, char *back_ep) {
    char ports[300], a_front[300], a_back[300], a_ports[340], path[1024];
    snprintf(ports, sizeof ports, "%s/ports.%d", g_dir, g_nbrokers++);
    snprintf(a_front, sizeof a_front, "--broker.frontend=%s", front ? front : "tcp://127.0.0.1:*");
    snprintf(a_back, sizeof a_back, "--broker.backend=%s", back ? back : "tcp://127.0.0.1:*");
    snprintf(a_ports, sizeof a_ports, "--broker.ports_file=%s", ports);
    snprintf(path, sizeof path, "%s", bin("broker/hired-broker"));
    char a_log[64];
    snprintf(a_log, sizeof a_log, "--log.level=%s", getenv("HIRED_TEST_LOG") ? getenv("HIRED_TEST_LOG") : "warn");
    char *argv[32] = {path, a_front, a_back, a_ports, a_log};
    int n = 5;
    for (int i = 0; opts && opts[i] && n < 31; i++) argv[n++] = (char *)opts[i];
    argv[n] = NULL;
    pid_t pid = spawn(argv);
    for (int i = 0; i < 500; i++) { /* up to 10 s */
        FILE *f = fopen(ports, "r");
        if (f) {
            int ok = fscanf(f, "frontend=%255s\nbackend=%255s", front_ep, back_ep) == 2;
            fclose(f);
            if (ok) return pid;
        }
        h_sleep_ms(20);
    }
    fprintf(stderr, "harness: broker did not start\n");
    kill_all();
    exit(2);
}

int h_broker_exit(const char *const *args, int timeout_ms) {
    char path[1024];
    snprintf(path, sizeof path, "%s", bin("broker/hired-broker"));
    char *argv[32] = {path};
    int n = 1;
    for (int i = 0; args && args[i] && n < 31; i++) argv[n++] = (char *)args[i];
    argv[n] = NULL;
    return h_wait(spawn(argv), timeout_ms);
}

const char *h_path(const char *name) {
    static char buf[512];
    snprintf(buf, sizeof buf, "%s/%s", g_dir, name);
    return buf;
}

static int g_worker_heartbeat_ms = 200;

void h_worker_heartbeat(int ms) { g_worker_heartbeat_ms = ms; }

pid_t h_worker(const char *back_ep, const char *service, const char *model, int capacity, int delay_ms) {
    char path[1024], cap[16], delay[16], hb[16];
    snprintf(path, sizeof path, "%s", bin("tests/fake_worker"));
    snprintf(cap, sizeof cap, "%d", capacity);
    snprintf(delay, sizeof delay, "%d", delay_ms);
    snprintf(hb, sizeof hb, "%d", g_worker_heartbeat_ms);
    char *argv[] = {path, "--endpoint", (char *)back_ep, "--service", (char *)service, "--model", (char *)model,
                    "--capacity", cap, "--delay-ms", delay, "--heartbeat-ms", hb, NULL};
    return spawn(argv);
}

void h_kill(pid_t pid, int sig) { kill(pid, sig); }

int h_wait(pid_t pid, int timeout_ms) {
    for (int waited = 0;; waited += 10) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) {
            for (int i = 0; i < g_nprocs; i++)
                if (g_procs[i] == pid) g_procs[i] = 0;
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
        if (waited >= timeout_ms) {
            kill(pid, SIGKILL);
            timeout_ms += 5000;
        }
        h_sleep_ms(10);
    }
}

static int count_workers(cJSON *root, const char *model, const char *service) {
    int n = 0;
    cJSON *pool;
    cJSON_ArrayForEach(pool, cJSON_GetObjectItem(root, "pools")) {
        cJSON *m = cJSON_GetObjectItem(pool, "model"), *s = cJSON_GetObjectItem(pool, "service");
        if (cJSON_IsString(m) && cJSON_IsString(s) && !strcmp(m->valuestring, model) && !strcmp(s->valuestring, service))
            n += cJSON_GetArraySize(cJSON_GetObjectItem(pool, "workers"));
    }
    return n;
}

bool h_wait_workers(hired_client *c, const char *model, int n_enc, int n_dec, int timeout_ms) {
    for (int waited = 0; waited < timeout_ms; waited += 50) {
        char *json;
        if (hired_status(c, &json) == 0) {
            cJSON *root = cJSON_Parse(json);
            free(json);
            bool ok = root && count_workers(root, model, "encode") == n_enc && count_workers(root, model, "decode") == n_dec;
            cJSON_Delete(root);
            if (ok) return true;
        }
        h_sleep_ms(50);
    }
    return false;
}

long h_status_counter(hired_client *c, const char *name) {
    char *json;
    if (hired_status(c, &json)) return -1;
    cJSON *root = cJSON_Parse(json);
    free(json);
    cJSON *v = cJSON_GetObjectItem(cJSON_GetObjectItem(root, "counters"), name);
    if (!v) v = cJSON_GetObjectItem(root, name); /* active_jobs, undelivered_results, clients */
    long r = cJSON_IsNumber(v) ? (long)v->valuedouble : -1;
    cJSON_Delete(root);
    return r;
}

int h_submit(hired_client *c, const char *model, const char *prompt, int deadline_ms, h_result *r) {
    memset(r, 0, sizeof *r);
    hired_job job;
    hired_job_init(&job);
    char img[64];
    static int counter;
    snprintf(img, sizeof img, "img-%d-%s", counter++, prompt);
    job.model = model;
    job.prompt = prompt;
    job.image = img;
    job.image_len = strlen(img);
    job.deadline_ms = deadline_ms;
    snprintf(r->expect, sizeof r->expect, "%s", prompt);
    return hired_submit(c, &job, r->id);
}

int h_collect(hired_client *c, h_result *rs, int n, int timeout_ms) {
    const int64_t t0 = clock_now_ms();
    for (;;) {
        int finals = 0;
        for (int i = 0; i < n; i++) finals += rs[i].final != 0;
        const int64_t el = clock_now_ms() - t0;
        if (finals == n || el >= timeout_ms) return finals;
        hired_event ev;
        if (hired_next_event(c, 100, &ev)) continue;
        h_result *r = NULL;
        for (int i = 0; i < n; i++)
            if (!strcmp(rs[i].id, ev.job_id)) r = &rs[i];
        if (!r) {
            fprintf(stderr, "harness: event for unknown job '%s'\n", ev.job_id);
            hired_event_clear(&ev);
            continue;
        }
        if (r->final) fprintf(stderr, "harness: event %d after the end of %s\n", ev.type, r->id), r->dups++;
        switch (ev.type) {
        case HIRED_EVENT_ACCEPTED: r->accepted++; break;
        case HIRED_EVENT_TOKEN:
            if ((int)ev.seq != r->tokens) r->gaps++;
            r->tokens++;
            strncat(r->text, ev.text, sizeof r->text - strlen(r->text) - 1);
            break;
        case HIRED_EVENT_DONE:
            snprintf(r->done_text, sizeof r->done_text, "%s", ev.text ? ev.text : "");
            snprintf(r->finish, sizeof r->finish, "%s", ev.finish);
            memcpy(r->timings, ev.timings_ms, sizeof r->timings);
            r->visual_kept = ev.visual_kept, r->visual_total = ev.visual_total, r->result_bytes = ev.result_bytes;
            r->final = ev.type;
            break;
        default:
            r->final = ev.type;
            r->code = ev.code;
            snprintf(r->message, sizeof r->message, "%s", ev.message);
            break;
        }
        hired_event_clear(&ev);
    }
}
