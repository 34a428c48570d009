/* cmd_bench.c — `hired bench`: the efficiency report of the HiRED paper (docs/selection.md §4.1)
 * measured the way a serving system's user sees it.
 *
 * What is measured, for every strategy x budget, after --warmup unmeasured jobs, over --runs
 * jobs with the same image, the same question, greedy, --max-tokens new tokens:
 *   tok/s      completion tokens / (submit -> DONE), as the client sees it (end to end, so
 *              preprocessing, ViT, transfer, prefill and decode all count, as in the paper)
 *   TTFT       submit -> first TOKEN event at the client (the paper's TTFT measured the start
 *              of the LAST decode step, see §4.1; this is the first token)
 *   kept       visual tokens the encoder kept per image
 *   wire bytes the encoder's RESULT per image: tensor frame [K, D] + header
 *   peak RSS   VmHWM of each process the bench started, reset before each row
 *              (/proc/PID/clear_refs = 5), so each row shows its own high-water mark
 *   stages     medians of the DONE timings (preprocess, vit, select, transfer, project,
 *              prefill, decode)
 * Median, p10 and p90 (linear interpolation) of each figure; every raw sample goes to JSON.
 *
 * Where the figures come from (recorded in the JSON under "sources"): the DONE usage
 * (docs/protocol.md, version 2) carries visual_kept (K of the encoder's RESULT), visual_total
 * (tokens before selection) and result_bytes (the RESULT's header + tensor frame sizes as the
 * broker received them), so kept and wire bytes are measured the same way in both modes, also
 * against a remote broker. In self-contained mode (the bench sets the f16 wire dtype) wire bytes
 * are also split into tensor (K x D x 2) and header (the rest). Peak RSS is n/a against a
 * running broker.
 *
 * Self-contained mode starts hired-broker (ephemeral loopback ports via a ports file), one
 * hired-encoder and one hired-decoder (on --device, cpu or cuda:N), found next to this binary (installed: the same bin/;
 * build tree: ../broker, ../encoder_worker, ../decoder_worker; $HIRED_BIN_DIR overrides),
 * with their logs in a temporary directory, and stops them with SIGTERM at the end. A worker
 * that does not exit 0 makes the bench exit 1.
 * Exit status: 0 done, 1 a job or a process failed, 2 usage.
 * Not here: the kernel and LLM micro-benchmarks (tools/bench). */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <math.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "cmd_bench_batch.h"
#include "clock.h"
#include "err.h"
#include "file.h"
#include "llm.h"
#include "hired_client.h"
#include "matmul.h"
#include "mem.h"
#include "wire.h"

extern char **environ;

#define BENCH_MAX_ROWS 64
#define BENCH_QUESTION "What is shown in this image? Describe it in detail."
#ifndef HIRED_SOURCE_DIR
#define HIRED_SOURCE_DIR "."
#endif

enum { P_BROKER, P_ENCODER, P_DECODER, P_COUNT };
static const char *const k_proc_names[P_COUNT] = {"broker", "encoder", "decoder"};
static const char *const k_stage_names[HIRED_STAGE_COUNT] = {"queue", "preprocess", "vit", "select", "transfer",
                                                             "project", "prefill", "decode", "total"};

typedef struct {
    double e2e_ms, ttft_ms, tok_s;
    int completion, prompt_tokens, image_tokens;
    int kept, total;     /* -1: unknown */
    double wire_bytes;   /* tensor + header; -1 unknown */
    double wire_tensor, wire_header; /* split of wire_bytes (self-contained mode only); -1 unknown */
    uint32_t result_bytes;           /* DONE usage.result_bytes; 0 not reported */
    double timings[HIRED_STAGE_COUNT];
    char id[HIRED_JOB_ID_LEN];
} sample_t;

typedef struct {
    char strategy[32];
    double budget;
    sample_t *s; /* [runs] */
    int n;
    long hwm_kb[P_COUNT]; /* -1: n/a */
} row_t;

typedef struct {
    /* options */
    const char *broker, *model_dir, *model_name, *image, *json_path, *device;
    const char *weights; /* the decoder's decoder.weights: native|q8|bf16|auto */
    char strategies[8][32];
    int n_strategies;
    double budgets[16];
    int n_budgets, runs, warmup, max_tokens, timeout_ms;
    /* model facts (from --model DIR) */
    int dim;                   /* vision width D; 0 unknown */
    int img_w, img_h, rows, cols, parts, grid;
    /* self-contained */
    char tmp[256], front[256];
    pid_t pid[P_COUNT];
    bool own;
    /* client */
    hired_client *c;
    void *img;
    size_t img_len;
    row_t rows_[BENCH_MAX_ROWS];
    int n_rows;
    char load_start[64], load_end[64]; /* /proc/loadavg: the machine may be shared */
    /* this machine's kernels (the workers, started with the same environment, choose the same)
     * and its measured GEMM peak, before the services start */
    char kernels[192];
    double peak_f32, peak_bf16; /* GFLOP/s, k_matmul at CLIP fc1's shape (577x4096x1024) */
    char weights_desc[96];      /* b->weights, with what auto means on this device */
} bench_t;

/* Fills b's kernel line and measured peaks on the workers' device (b->device), in this process. */
static void measure_kernels(bench_t *b) {
    cli_dev_t d;
    char err[HIRED_ERR_LEN];
    snprintf(b->kernels, sizeof b->kernels, "unknown");
    if (!cli_dev_open(&d, b->device, err)) {
        snprintf(b->kernels, sizeof b->kernels, "%s", k_device_kernels(d.dev));
        b->peak_f32 = k_matmul_rate(d.ctx, 577, 4096, 1024, TENSOR_DTYPE_F32, K_MATMUL_PREC_F32, 3);
        if (k_device_bf16_products(d.dev))
            b->peak_bf16 = k_matmul_rate(d.ctx, 577, 4096, 1024, TENSOR_DTYPE_F16, K_MATMUL_PREC_BF16, 3);
    }
    snprintf(b->weights_desc, sizeof b->weights_desc, "%s", b->weights);
    if (!strcmp(b->weights, "auto"))
        snprintf(b->weights_desc, sizeof b->weights_desc, "auto (%s)",
                 d.dev && k_device_bf16_products(d.dev) ? "bf16 for an F16/BF16 checkpoint: this CPU has native bf16"
                                                        : "native: no native bf16 products here");
    cli_dev_close(&d);
}

// ---- statistics ------------------------------------------------------------------------------

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* q-quantile (0..1) of v[0..n-1] with linear interpolation (numpy's default); NAN if empty. */
static double quantile(const double *v, int n, double q) {
    if (n <= 0) return NAN;
    double *t = malloc((size_t)n * sizeof *t);
    if (!t) return NAN;
    memcpy(t, v, (size_t)n * sizeof *t);
    qsort(t, (size_t)n, sizeof *t, cmp_d);
    double pos = q * (n - 1);
    int i = (int)pos;
    double r = i + 1 < n ? t[i] + (pos - i) * (t[i + 1] - t[i]) : t[n - 1];
    free(t);
    return r;
}

/* Collects one field of a row's samples (negative values mean unknown and are skipped). */
static int collect(const row_t *r, size_t off, double *out) {
    int n = 0;
    for (int i = 0; i < r->n; i++) {
        double v = *(const double *)((const char *)&r->s[i] + off);
        if (v >= 0) out[n++] = v;
    }
    return n;
}

static double row_q(const row_t *r, size_t off, double q) {
    double v[1024];
    int n = collect(r, off, v);
    return quantile(v, n, q);
}

static double row_stage(const row_t *r, int st) {
    double v[1024];
    int n = 0;
    for (int i = 0; i < r->n; i++)
        if (r->s[i].timings[st] >= 0) v[n++] = r->s[i].timings[st];
    return quantile(v, n, 0.5);
}

// ---- processes -------------------------------------------------------------------------------

/* Full path of a sibling binary (see the file comment), into out. */
static int find_bin(const char *name, const char *subdir, char *out, size_t cap) {
    const char *env = getenv("HIRED_BIN_DIR");
    if (env && *env) {
        snprintf(out, cap, "%s/%s", env, name);
        return access(out, X_OK);
    }
    char self[1024];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) return -1;
    self[n] = 0;
    char *dir = dirname(self);
    snprintf(out, cap, "%s/%s", dir, name);
    if (!access(out, X_OK)) return 0;
    snprintf(out, cap, "%s/../%s/%s", dir, subdir, name);
    return access(out, X_OK);
}

/* Starts argv[0] with stdout and stderr to log_path. Returns the pid or -1. */
static pid_t spawn_logged(char *const argv[], const char *log_path) {
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, log_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    pid_t pid;
    int rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc) {
        fprintf(stderr, "hired bench: cannot start %s: %s\n", argv[0], strerror(rc));
        return -1;
    }
    return pid;
}

static void print_log_tail(const bench_t *b, const char *name) {
    char path[512], line[1024];
    snprintf(path, sizeof path, "%s/%s.log", b->tmp, name);
    FILE *f = fopen(path, "r");
    if (!f) return;
    fprintf(stderr, "--- %s log (%s)\n", name, path);
    long n = 0;
    while (fgets(line, sizeof line, f))
        if (n++ < 40) fputs(line, stderr);
    fclose(f);
}

/* Reads a "key=value" line of the broker's ports file. */
static int ports_value(const char *path, const char *key, char *out, size_t cap) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[512];
    int rc = -1;
    size_t kl = strlen(key);
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, key, kl) && line[kl] == '=') {
            line[strcspn(line, "\r\n")] = 0;
            snprintf(out, cap, "%s", line + kl + 1);
            rc = 0;
        }
    }
    fclose(f);
    return rc;
}

/* A child we started has exited: name it and show its log. */
static bool child_died(bench_t *b) {
    for (int p = 0; p < P_COUNT; p++) {
        int st;
        if (b->pid[p] > 0 && waitpid(b->pid[p], &st, WNOHANG) == b->pid[p]) {
            fprintf(stderr, "\nhired bench: %s exited (status %d)\n", k_proc_names[p],
                    WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
            b->pid[p] = 0;
            print_log_tail(b, k_proc_names[p]);
            return true;
        }
    }
    return false;
}

/* Starts broker, encoder and decoder; fills b->front. 0 or -1 (message printed). */
static int start_services(bench_t *b) {
    char bins[P_COUNT][1024];
    static const char *const names[P_COUNT] = {"hired-broker", "hired-encoder", "hired-decoder"};
    static const char *const dirs[P_COUNT] = {"broker", "encoder_worker", "decoder_worker"};
    for (int p = 0; p < P_COUNT; p++)
        if (find_bin(names[p], dirs[p], bins[p], sizeof bins[p])) {
            fprintf(stderr, "hired bench: cannot find %s next to this binary (set HIRED_BIN_DIR)\n", names[p]);
            return -1;
        }
    snprintf(b->tmp, sizeof b->tmp, "%s/hired-bench-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(b->tmp)) {
        fprintf(stderr, "hired bench: mkdtemp: %s\n", strerror(errno));
        return -1;
    }
    char ports[512], pf[600], logp[600], back[256];
    snprintf(ports, sizeof ports, "%s/ports", b->tmp);
    snprintf(pf, sizeof pf, "--broker.ports_file=%s", ports);
    char *bargv[] = {bins[P_BROKER], "--broker.frontend=tcp://127.0.0.1:0", "--broker.backend=tcp://127.0.0.1:0", pf,
                     "--broker.attempt_timeout_ms=3600000", "--broker.deadline_ms=86400000",
                     "--broker.max_deadline_ms=86400000", "--log.level=warn", NULL};
    snprintf(logp, sizeof logp, "%s/broker.log", b->tmp);
    if ((b->pid[P_BROKER] = spawn_logged(bargv, logp)) < 0) return -1;
    double t0 = clock_ms();
    while (ports_value(ports, "frontend", b->front, sizeof b->front) ||
           ports_value(ports, "backend", back, sizeof back)) {
        if (child_died(b) || clock_ms() - t0 > 20000) {
            fprintf(stderr, "hired bench: the broker did not start\n");
            return -1;
        }
        usleep(20000);
    }
    char ep[300], model[1100], dev[64], wts[64];
    snprintf(ep, sizeof ep, "--broker.endpoint=%s", back);
    snprintf(model, sizeof model, "--model.dir=%s", b->model_dir);
    snprintf(dev, sizeof dev, "--model.device=%s", b->device);
    char *eargv[] = {bins[P_ENCODER], model, ep, dev, "--encoder.wire_dtype=f16", "--log.level=info", NULL};
    snprintf(wts, sizeof wts, "--decoder.weights=%s", b->weights);
    char *dargv[] = {bins[P_DECODER], model, ep, dev, wts, "--log.level=warn", NULL};
    snprintf(logp, sizeof logp, "%s/encoder.log", b->tmp);
    if ((b->pid[P_ENCODER] = spawn_logged(eargv, logp)) < 0) return -1;
    snprintf(logp, sizeof logp, "%s/decoder.log", b->tmp);
    if ((b->pid[P_DECODER] = spawn_logged(dargv, logp)) < 0) return -1;
    b->own = true;
    return 0;
}

/* SIGTERMs what we started and waits. Number of processes that did not exit 0. */
static int stop_services(bench_t *b) {
    int bad = 0;
    for (int p = P_COUNT - 1; p >= 0; p--)
        if (b->pid[p] > 0) kill(b->pid[p], SIGTERM);
    for (int p = P_COUNT - 1; p >= 0; p--) {
        if (b->pid[p] <= 0) continue;
        int st = 0;
        if (waitpid(b->pid[p], &st, 0) != b->pid[p] || !WIFEXITED(st) || WEXITSTATUS(st)) {
            fprintf(stderr, "hired bench: %s did not exit 0 (status %d)\n", k_proc_names[p],
                    WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
            print_log_tail(b, k_proc_names[p]);
            bad++;
        }
        b->pid[p] = 0;
    }
    return bad;
}

static void remove_tmp(const bench_t *b) {
    if (!b->tmp[0]) return;
    static const char *const files[] = {"ports", "broker.log", "encoder.log", "decoder.log"};
    char p[600];
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        snprintf(p, sizeof p, "%s/%s", b->tmp, files[i]);
        unlink(p);
    }
    rmdir(b->tmp);
}

/* VmHWM of pid in kB, or -1. */
static long vm_hwm_kb(pid_t pid) {
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    long kb = -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "VmHWM:", 6)) kb = strtol(line + 6, NULL, 10);
    fclose(f);
    return kb;
}

/* Resets the peak RSS to the current RSS (Linux >= 4.0; ours, so permitted). */
static void reset_hwm(pid_t pid) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/clear_refs", (int)pid);
    FILE *f = fopen(path, "w");
    if (f) {
        fputs("5", f);
        fclose(f);
    }
}

// ---- waiting for the workers -----------------------------------------------------------------

static bool pool_ready(const cJSON *root, const char *service, const char *model) {
    const cJSON *pools = cJSON_GetObjectItemCaseSensitive(root, "pools"), *p;
    cJSON_ArrayForEach(p, pools) {
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(p, "service"), *m = cJSON_GetObjectItemCaseSensitive(p, "model");
        if (cJSON_IsString(s) && cJSON_IsString(m) && !strcmp(s->valuestring, service) &&
            !strcmp(m->valuestring, model) && cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(p, "workers")) > 0)
            return true;
    }
    return false;
}

/* Waits until an encoder and a decoder serving the model are registered. */
static int wait_workers(bench_t *b, int timeout_ms) {
    double t0 = clock_ms();
    while (clock_ms() - t0 < timeout_ms) {
        if (b->own && child_died(b)) return -1;
        char *txt = NULL;
        if (!hired_status(b->c, &txt)) {
            cJSON *root = cJSON_Parse(txt);
            free(txt);
            bool ok = root && pool_ready(root, "encode", b->model_name) && pool_ready(root, "decode", b->model_name);
            cJSON_Delete(root);
            if (ok) return 0;
        }
        fprintf(stderr, "\r\033[Khired bench: waiting for the workers of '%s' (%.0f s)", b->model_name,
                (clock_ms() - t0) / 1e3);
        usleep(200000);
    }
    fprintf(stderr, "\nhired bench: no encoder and decoder for '%s' registered within %d s\n", b->model_name,
            timeout_ms / 1000);
    return -1;
}

// ---- one job ---------------------------------------------------------------------------------

static int run_job(bench_t *b, const char *strategy, double budget, sample_t *s) {
    hired_job job;
    hired_job_init(&job);
    job.model = b->model_name;
    job.prompt = BENCH_QUESTION;
    job.image = b->img;
    job.image_len = b->img_len;
    job.params.max_tokens = b->max_tokens;
    job.params.temperature = 0;
    job.params.budget = budget;
    job.params.strategy = strategy;
    job.params.stream = true;
    job.deadline_ms = b->timeout_ms;
    memset(s, 0, sizeof *s);
    s->ttft_ms = s->kept = s->total = -1;
    s->wire_bytes = s->wire_tensor = s->wire_header = -1;
    double t0 = clock_ms();
    int rc = hired_submit(b->c, &job, s->id);
    if (rc) {
        fprintf(stderr, "\nhired bench: submit: %s\n", hired_strerror(rc));
        return -1;
    }
    for (;;) {
        hired_event ev;
        if (hired_next_event(b->c, 1000, &ev)) {
            if (b->own && child_died(b)) return -1;
            continue;
        }
        double t = clock_ms();
        int done = 0;
        if (ev.type == HIRED_EVENT_TOKEN && s->ttft_ms < 0) s->ttft_ms = t - t0;
        if (ev.type == HIRED_EVENT_DONE) {
            s->e2e_ms = t - t0;
            s->completion = (int)ev.completion_tokens;
            s->prompt_tokens = (int)ev.prompt_tokens;
            s->image_tokens = (int)ev.image_tokens;
            if (ev.visual_kept) s->kept = (int)ev.visual_kept;
            if (ev.visual_total) s->total = (int)ev.visual_total;
            s->result_bytes = ev.result_bytes;
            if (ev.result_bytes) s->wire_bytes = (double)ev.result_bytes;
            memcpy(s->timings, ev.timings_ms, sizeof s->timings);
            if (s->ttft_ms < 0) s->ttft_ms = s->e2e_ms; /* no TOKEN (an EOS first): the answer came with DONE */
            s->tok_s = s->e2e_ms > 0 ? s->completion / (s->e2e_ms / 1e3) : 0;
            done = 1;
        } else if (ev.type == HIRED_EVENT_ERROR || ev.type == HIRED_EVENT_BUSY) {
            fprintf(stderr, "\nhired bench: job %s (%s r=%g) %s: %s\n", s->id, strategy, budget,
                    ev.type == HIRED_EVENT_BUSY ? "refused (busy)" : "failed", ev.message);
            done = -1;
        }
        hired_event_clear(&ev);
        if (done) {
            if (done < 0) return -1;
            break;
        }
    }
    /* K, T and the bytes on the wire come with DONE (see the file comment for the sources) */
    if (s->result_bytes > 0 && s->kept > 0 && b->own && b->dim > 0) {
        s->wire_tensor = (double)s->kept * b->dim * 2; /* f16: the bench started the encoder with it */
        s->wire_header = s->wire_bytes - s->wire_tensor;
    }
    return 0;
}

// ---- report ----------------------------------------------------------------------------------

static const row_t *full_row(const bench_t *b, const row_t *r) {
    for (int i = 0; i < b->n_rows; i++)
        if (!strcmp(b->rows_[i].strategy, r->strategy) && b->rows_[i].budget == 1.0) return &b->rows_[i];
    return NULL;
}

#define OFF(f) offsetof(sample_t, f)

static void fmt_bytes(double v, char *out, size_t cap) {
    if (!(v >= 0)) snprintf(out, cap, "n/a");
    else if (v >= 1e6) snprintf(out, cap, "%.2f MB", v / 1e6);
    else snprintf(out, cap, "%.1f kB", v / 1e3);
}

static void fmt_mb(long kb, char *out, size_t cap) {
    if (kb < 0) snprintf(out, cap, "n/a");
    else snprintf(out, cap, "%.0f", kb / 1024.0);
}

static void print_table(const bench_t *b) {
    char bf[96];
    if (b->peak_bf16 > 0)
        snprintf(bf, sizeof bf, "bf16 %.1f GFLOP/s (the rate of bf16-held weights)", b->peak_bf16);
    else
        snprintf(bf, sizeof bf, "no bf16 rate (no native bf16 products here)");
    printf("\nkernels: %s; measured GEMM peak (k_matmul 577x4096x1024): float32 %.1f GFLOP/s, %s; decoder weights %s\n",
           b->kernels, b->peak_f32, bf, b->broker ? "as the running decoder has them" : b->weights_desc);
    printf("\n| strategy | r | kept/img | wire/img | tok/s (p10-p90) | TTFT ms (p10-p90) | e2e ms | peak RSS MB enc/dec/broker | vs r=1.0 |\n");
    printf("|---|---|---|---|---|---|---|---|---|\n");
    for (int i = 0; i < b->n_rows; i++) {
        const row_t *r = &b->rows_[i], *f = full_row(b, r);
        double kv[1024];
        int nk = 0;
        for (int j = 0; j < r->n; j++)
            if (r->s[j].kept >= 0) kv[nk++] = r->s[j].kept;
        double k_med = quantile(kv, nk, 0.5);
        int total = r->n && r->s[0].total > 0 ? r->s[0].total : 0;
        char kept_s[64], wire_s[32], e[3][16], rel[96] = "—";
        if (nk && total) snprintf(kept_s, sizeof kept_s, "%.0f/%d (%.1f%%)", k_med, total, 100 * k_med / total);
        else if (r->n) snprintf(kept_s, sizeof kept_s, "%d packed", r->s[0].image_tokens);
        else snprintf(kept_s, sizeof kept_s, "n/a");
        double w = row_q(r, OFF(wire_bytes), 0.5);
        fmt_bytes(w, wire_s, sizeof wire_s);
        for (int p = 0; p < P_COUNT; p++) fmt_mb(r->hwm_kb[p], e[p], sizeof e[p]);
        double ts = row_q(r, OFF(tok_s), 0.5), tt = row_q(r, OFF(ttft_ms), 0.5);
        if (f && f != r) {
            double fts = row_q(f, OFF(tok_s), 0.5), ftt = row_q(f, OFF(ttft_ms), 0.5), fw = row_q(f, OFF(wire_bytes), 0.5);
            int n = snprintf(rel, sizeof rel, "%.2fx tok/s, %+.0f%% TTFT", ts / fts, 100 * (tt - ftt) / ftt);
            if (w >= 0 && fw > 0) snprintf(rel + n, sizeof rel - n, ", wire %.1f%%", 100 * w / fw);
        } else if (f == r) {
            snprintf(rel, sizeof rel, "baseline");
        }
        printf("| %s | %.2f | %s | %s | %.2f (%.2f-%.2f) | %.1f (%.1f-%.1f) | %.1f | %s/%s/%s | %s |\n", r->strategy,
               r->budget, kept_s, wire_s, ts, row_q(r, OFF(tok_s), 0.1), row_q(r, OFF(tok_s), 0.9), tt,
               row_q(r, OFF(ttft_ms), 0.1), row_q(r, OFF(ttft_ms), 0.9), row_q(r, OFF(e2e_ms), 0.5), e[P_ENCODER],
               e[P_DECODER], e[P_BROKER], rel);
    }
    printf("\nPer-stage medians (ms, from DONE timings):\n\n| strategy | r |");
    for (int st = HIRED_STAGE_PREPROCESS; st <= HIRED_STAGE_DECODE; st++) printf(" %s |", k_stage_names[st]);
    printf("\n|---|---|");
    for (int st = HIRED_STAGE_PREPROCESS; st <= HIRED_STAGE_DECODE; st++) printf("---|");
    printf("\n");
    for (int i = 0; i < b->n_rows; i++) {
        const row_t *r = &b->rows_[i];
        printf("| %s | %.2f |", r->strategy, r->budget);
        for (int st = HIRED_STAGE_PREPROCESS; st <= HIRED_STAGE_DECODE; st++) {
            double v = row_stage(r, st);
            if (isnan(v)) printf(" n/a |");
            else printf(" %.1f |", v);
        }
        printf("\n");
    }
    printf("\nkept: DONE usage.visual_kept / visual_total (K of the encoder's RESULT); wire/img: DONE "
           "usage.result_bytes (RESULT header + tensor frames as the broker received them); peak RSS: %s.\n",
           b->own ? "VmHWM per row" : "n/a against a running broker");
}

static cJSON *stat_obj(const row_t *r, size_t off) {
    cJSON *o = cJSON_CreateObject();
    double v[1024];
    int n = collect(r, off, v);
    if (!n) return o;
    cJSON_AddNumberToObject(o, "median", quantile(v, n, 0.5));
    cJSON_AddNumberToObject(o, "p10", quantile(v, n, 0.1));
    cJSON_AddNumberToObject(o, "p90", quantile(v, n, 0.9));
    return o;
}

static void cpu_model(char *out, size_t cap) {
    snprintf(out, cap, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "model name", 10) && strchr(line, ':')) {
            char *v = strchr(line, ':') + 1;
            while (*v == ' ') v++;
            v[strcspn(v, "\n")] = 0;
            snprintf(out, cap, "%s", v);
            break;
        }
    fclose(f);
}

static void loadavg(char *out, size_t cap) {
    snprintf(out, cap, "n/a");
    FILE *f = fopen("/proc/loadavg", "r");
    if (!f) return;
    double a, b, c;
    if (fscanf(f, "%lf %lf %lf", &a, &b, &c) == 3) snprintf(out, cap, "%.2f %.2f %.2f", a, b, c);
    fclose(f);
}

static int write_json(const bench_t *b) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddNumberToObject(root, "version", 1);
    cJSON *env = cJSON_AddObjectToObject(root, "environment");
    char cpu[256];
    cpu_model(cpu, sizeof cpu);
    struct utsname u;
    cJSON_AddStringToObject(env, "cpu_model", cpu);
    cJSON_AddNumberToObject(env, "cores", (double)sysconf(_SC_NPROCESSORS_ONLN));
    const char *ct = getenv("OPENBLAS_CORETYPE"), *omp = getenv("OMP_NUM_THREADS");
    cJSON_AddStringToObject(env, "openblas_coretype", ct && *ct ? ct : "unset");
    cJSON_AddStringToObject(env, "kernels", b->kernels);
    if (!b->broker) cJSON_AddStringToObject(env, "decoder_weights", b->weights);
    cJSON_AddNumberToObject(env, "gemm_peak_gflops", b->peak_f32);
    cJSON_AddNumberToObject(env, "gemm_peak_bf16_gflops", b->peak_bf16);
    cJSON_AddStringToObject(env, "omp_num_threads", omp && *omp ? omp : "unset");
    if (!uname(&u)) cJSON_AddStringToObject(env, "kernel", u.release);
    cJSON_AddStringToObject(env, "mode", b->own ? "self-contained" : "broker");
    cJSON_AddStringToObject(env, "broker", b->own ? b->front : b->broker);
    cJSON_AddStringToObject(env, "model", b->model_name);
    if (b->model_dir) cJSON_AddStringToObject(env, "model_dir", b->model_dir);
    cJSON_AddStringToObject(env, "image", b->image);
    cJSON_AddNumberToObject(env, "image_bytes", (double)b->img_len);
    if (b->img_w) {
        cJSON_AddNumberToObject(env, "image_width", b->img_w);
        cJSON_AddNumberToObject(env, "image_height", b->img_h);
        cJSON_AddNumberToObject(env, "partitions", b->parts);
    }
    if (b->dim) cJSON_AddNumberToObject(env, "vision_dim", b->dim);
    cJSON_AddStringToObject(env, "question", BENCH_QUESTION);
    cJSON_AddNumberToObject(env, "max_tokens", b->max_tokens);
    cJSON_AddStringToObject(env, "sampling", "greedy");
    cJSON_AddNumberToObject(env, "warmup", b->warmup);
    cJSON_AddNumberToObject(env, "runs", b->runs);
    cJSON_AddStringToObject(env, "wire_dtype", b->own ? "f16" : "f16 (assumed)");
    time_t now = time(NULL);
    char ts[64];
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    cJSON_AddStringToObject(env, "date", ts);
    cJSON_AddStringToObject(env, "loadavg_start", b->load_start);
    cJSON_AddStringToObject(env, "loadavg_end", b->load_end);

    cJSON *src = cJSON_AddObjectToObject(root, "sources");
    cJSON_AddStringToObject(src, "kept", "DONE usage.visual_kept (K of the encoder RESULT, relayed by the broker)");
    cJSON_AddStringToObject(src, "total", "DONE usage.visual_total (tokens before selection, from the decoder)");
    cJSON_AddStringToObject(src, "wire_bytes", "DONE usage.result_bytes: encoder RESULT header + tensor frame sizes as "
                                               "the broker received them (measured, not computed)");
    if (b->own && b->dim)
        cJSON_AddStringToObject(src, "wire_tensor_bytes", "computed: kept x D x 2 (f16, which the bench set); "
                                                          "wire_header_bytes = wire_bytes - that");
    cJSON_AddStringToObject(src, "peak_rss", b->own ? "VmHWM from /proc/PID/status, reset per row via clear_refs" : "n/a");
    cJSON_AddStringToObject(src, "tok_s", "completion tokens / (submit -> DONE) at the client");
    cJSON_AddStringToObject(src, "ttft_ms", "submit -> first TOKEN event at the client");
    cJSON_AddStringToObject(src, "stages", "DONE timings");

    cJSON *samples = cJSON_AddArrayToObject(root, "samples"), *summary = cJSON_AddArrayToObject(root, "summary");
    for (int i = 0; i < b->n_rows; i++) {
        const row_t *r = &b->rows_[i], *f = full_row(b, r);
        for (int j = 0; j < r->n; j++) {
            const sample_t *s = &r->s[j];
            cJSON *o = cJSON_CreateObject();
            cJSON_AddItemToArray(samples, o);
            cJSON_AddStringToObject(o, "strategy", r->strategy);
            cJSON_AddNumberToObject(o, "budget", r->budget);
            cJSON_AddNumberToObject(o, "run", j);
            cJSON_AddStringToObject(o, "job", s->id);
            cJSON_AddNumberToObject(o, "e2e_ms", s->e2e_ms);
            cJSON_AddNumberToObject(o, "ttft_ms", s->ttft_ms);
            cJSON_AddNumberToObject(o, "tok_s", s->tok_s);
            cJSON_AddNumberToObject(o, "completion_tokens", s->completion);
            cJSON_AddNumberToObject(o, "prompt_tokens", s->prompt_tokens);
            cJSON_AddNumberToObject(o, "image_tokens", s->image_tokens);
            if (s->kept >= 0) cJSON_AddNumberToObject(o, "kept", s->kept);
            if (s->total > 0) cJSON_AddNumberToObject(o, "total", s->total);
            if (s->wire_bytes >= 0) cJSON_AddNumberToObject(o, "wire_bytes", s->wire_bytes);
            if (s->wire_tensor >= 0) cJSON_AddNumberToObject(o, "wire_tensor_bytes", s->wire_tensor);
            if (s->wire_header >= 0) cJSON_AddNumberToObject(o, "wire_header_bytes", s->wire_header);
            cJSON *t = cJSON_AddObjectToObject(o, "timings_ms");
            for (int st = 0; st < HIRED_STAGE_COUNT; st++)
                if (s->timings[st] >= 0) cJSON_AddNumberToObject(t, k_stage_names[st], s->timings[st]);
        }
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToArray(summary, o);
        cJSON_AddStringToObject(o, "strategy", r->strategy);
        cJSON_AddNumberToObject(o, "budget", r->budget);
        cJSON_AddNumberToObject(o, "n", r->n);
        cJSON_AddItemToObject(o, "tok_s", stat_obj(r, OFF(tok_s)));
        cJSON_AddItemToObject(o, "ttft_ms", stat_obj(r, OFF(ttft_ms)));
        cJSON_AddItemToObject(o, "e2e_ms", stat_obj(r, OFF(e2e_ms)));
        double kv[1024], iv[1024];
        int nk = 0;
        for (int j = 0; j < r->n; j++) {
            iv[j] = r->s[j].image_tokens;
            if (r->s[j].kept >= 0) kv[nk++] = r->s[j].kept;
        }
        if (nk) cJSON_AddNumberToObject(o, "kept", quantile(kv, nk, 0.5));
        if (r->n && r->s[0].total > 0) cJSON_AddNumberToObject(o, "total", r->s[0].total);
        cJSON_AddNumberToObject(o, "image_tokens", quantile(iv, r->n, 0.5));
        double w = row_q(r, OFF(wire_bytes), 0.5);
        if (w >= 0) cJSON_AddNumberToObject(o, "wire_bytes", w);
        cJSON *mem = cJSON_AddObjectToObject(o, "peak_rss_kb");
        for (int p = 0; p < P_COUNT; p++)
            if (r->hwm_kb[p] >= 0) cJSON_AddNumberToObject(mem, k_proc_names[p], (double)r->hwm_kb[p]);
            else cJSON_AddStringToObject(mem, k_proc_names[p], "n/a");
        cJSON *st = cJSON_AddObjectToObject(o, "stages_ms");
        for (int s = HIRED_STAGE_PREPROCESS; s <= HIRED_STAGE_DECODE; s++) {
            double v = row_stage(r, s);
            if (!isnan(v)) cJSON_AddNumberToObject(st, k_stage_names[s], v);
        }
        if (f && f != r) {
            cJSON *rel = cJSON_AddObjectToObject(o, "vs_full");
            double fts = row_q(f, OFF(tok_s), 0.5), ftt = row_q(f, OFF(ttft_ms), 0.5), fw = row_q(f, OFF(wire_bytes), 0.5);
            cJSON_AddNumberToObject(rel, "tok_s_ratio", row_q(r, OFF(tok_s), 0.5) / fts);
            cJSON_AddNumberToObject(rel, "ttft_change", (row_q(r, OFF(ttft_ms), 0.5) - ftt) / ftt);
            if (w >= 0 && fw > 0) cJSON_AddNumberToObject(rel, "wire_ratio", w / fw);
        }
    }
    char *txt = cJSON_Print(root);
    cJSON_Delete(root);
    if (!txt) return -1;
    FILE *fp = fopen(b->json_path, "w");
    int rc = fp && fputs(txt, fp) >= 0 && fputc('\n', fp) != EOF ? 0 : -1;
    if (fp && fclose(fp)) rc = -1;
    cJSON_free(txt);
    if (rc) fprintf(stderr, "hired bench: cannot write %s: %s\n", b->json_path, strerror(errno));
    return rc;
}

// ---- options ---------------------------------------------------------------------------------

typedef struct {
    char *model, *broker, *model_name, *strategies, *budgets, *image, *json, *device;
    int64_t runs, warmup, max_tokens, timeout_ms;
    char *concurrency;
    int64_t text_layers, kv_bytes, image_tokens, pool_image_tokens, rounds;
    int kv_dtype;
    int weights; /* llm_weights_t */
} bench_opts_t;

#define O(f) offsetof(bench_opts_t, f)
static const cfg_entry_t k_bench_opts[] = {
    {"model", CFG_STRING, O(model), 0, 4096, "", NULL,
     "llava-hf model directory; without --broker the bench starts its own hired-broker, hired-encoder and "
     "hired-decoder on loopback and stops them"},
    {"broker", CFG_STRING, O(broker), 0, 4096, "", NULL, "benchmark a running broker instead"},
    {"model-name", CFG_STRING, O(model_name), 0, WIRE_MAX_MODEL, "", NULL,
     "the model name the workers serve (default: the model directory's base name)"},
    {"strategies", CFG_STRING, O(strategies), 1, 511, "hired", NULL,
     "comma-separated: none,hired,spatial,prumerge,prumerge+"},
    {"budgets", CFG_STRING, O(budgets), 1, 511, "1.0,0.4,0.2,0.1", NULL, "comma-separated rates in (0, 1]"},
    {"runs", CFG_INT, O(runs), 1, 1000, "5", NULL, "measured jobs per strategy x budget"},
    {"warmup", CFG_INT, O(warmup), 0, 1000, "1", NULL, "unmeasured jobs before them"},
    {"max-tokens", CFG_INT, O(max_tokens), 1, 16384, "32", NULL, "new tokens per job (greedy)"},
    {"image", CFG_STRING, O(image), 1, 4096, HIRED_SOURCE_DIR "/tests/fixtures/images/large.jpg", NULL,
     "the image for every job"},
    {"json", CFG_STRING, O(json), 1, 4096, "bench.json", NULL, "raw samples, summary and environment"},
    {"timeout-ms", CFG_INT, O(timeout_ms), 1000, 86400000, "3600000", NULL, "per-job deadline"},
    {"device", CFG_STRING, O(device), 1, 32, "cpu", NULL,
     "the self-contained workers' device: cpu or cuda:N (both workers on it)"},
    {"concurrency", CFG_STRING, O(concurrency), 0, 511, "", NULL,
     "comma-separated jobs in flight at once (e.g. 1,4,16): measure continuous batching on the decoder's "
     "scheduler in this process (text half only; --budgets default there 0.2,1.0) instead of the end-to-end table"},
    {"text-layers", CFG_INT, O(text_layers), 0, 128, "0", NULL,
     "with --concurrency: a random F16 text model of LLaVA-NeXT-7B widths with this many layers (--model, "
     "default the tiny fixture, gives only the tokenizer); 0 = --model's own text model"},
    {"kv-bytes", CFG_INT, O(kv_bytes), 0, 1099511627776.0, "0", NULL,
     "with --concurrency: the fixed KV pool of the jobs-at-once comparison; 0 = 4 jobs at the largest budget"},
    {"image-tokens", CFG_INT, O(image_tokens), 1, 65536, "576", NULL,
     "with --concurrency: visual positions of a prompt before selection (576: one 336px tile)"},
    {"pool-image-tokens", CFG_INT, O(pool_image_tokens), 1, 65536, "2880", NULL,
     "with --concurrency: visual positions before selection of the fixed-pool count's prompts (2880: LLaVA-NeXT's "
     "five 336px partitions)"},
    {"kv-dtype", CFG_ENUM, O(kv_dtype), 0, 0, "f16", "f16|f32", "with --concurrency: the KV cache's element type"},
    {"rounds", CFG_INT, O(rounds), 1, 100, "1", NULL,
     "with --concurrency: measure every row this many times, the levels taking turns, and keep each row's best "
     "aggregate decode rate (on a shared machine a busy minute then falls on every level alike)"},
    CLI_OPT_WEIGHTS(O(weights)),
};
#undef O

static int parse_lists(bench_t *b, const char *strategies, const char *budgets) {
    char buf[512];
    snprintf(buf, sizeof buf, "%s", strategies);
    b->n_strategies = 0;
    for (char *save, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (b->n_strategies == 8 || strlen(t) >= 32) {
            fprintf(stderr, "hired bench: at most 8 strategies\n");
            return -1;
        }
        snprintf(b->strategies[b->n_strategies++], 32, "%s", t);
    }
    snprintf(buf, sizeof buf, "%s", budgets);
    b->n_budgets = 0;
    for (char *save, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        char *end;
        double d = strtod(t, &end);
        if (*end || !(d > 0 && d <= 1) || b->n_budgets == 16) {
            fprintf(stderr, "hired bench: budgets are up to 16 rates in (0, 1], got '%s'\n", t);
            return -1;
        }
        b->budgets[b->n_budgets++] = d;
    }
    if (!b->n_strategies || !b->n_budgets || b->n_strategies * b->n_budgets > BENCH_MAX_ROWS) {
        fprintf(stderr, "hired bench: need 1..%d strategy x budget rows\n", BENCH_MAX_ROWS);
        return -1;
    }
    return 0;
}

/* Model facts the bench needs from --model DIR: D, the image's size and partitions. */
static int model_facts(bench_t *b) {
    char err[HIRED_ERR_LEN];
    hf_config_t cfg;
    if (hf_config_load(b->model_dir, &cfg, err)) {
        fprintf(stderr, "hired bench: %s\n", err);
        return -1;
    }
    b->dim = cfg.vision.hidden;
    b->grid = cfg.vision.image_size / cfg.vision.patch_size;
    image_t img = {0};
    prep_out_t prep = {0};
    int rc = image_load_file(b->image, 0, &img, err);
    if (!rc) rc = cli_preprocess(&cfg, b->model_dir, &img, &prep, err);
    if (rc) {
        fprintf(stderr, "hired bench: %s\n", err);
    } else {
        b->img_w = img.w;
        b->img_h = img.h;
        b->rows = prep.rows;
        b->cols = prep.cols;
        b->parts = prep.n;
    }
    prep_free(&prep);
    image_free(&img);
    return rc ? -1 : 0;
}

static int read_image(bench_t *b) {
    char err[HIRED_ERR_LEN];
    uint8_t *bytes = NULL;
    if (file_read(b->image, 32u * 1024 * 1024, &bytes, &b->img_len, err) || !b->img_len) {
        fprintf(stderr, "hired bench: %s\n", b->img_len || !bytes ? err : "the image file is empty");
        mem_free(bytes);
        return -1;
    }
    b->img = bytes;
    return 0;
}

// ---- the command -----------------------------------------------------------------------------

static int run_rows(bench_t *b) {
    for (int si = 0; si < b->n_strategies; si++)
        for (int bi = 0; bi < b->n_budgets; bi++) {
            row_t *r = &b->rows_[b->n_rows++];
            snprintf(r->strategy, sizeof r->strategy, "%s", b->strategies[si]);
            r->budget = b->budgets[bi];
            r->s = calloc((size_t)b->runs, sizeof *r->s);
            if (!r->s) return -1;
            for (int p = 0; p < P_COUNT; p++) {
                r->hwm_kb[p] = -1;
                if (b->own && b->pid[p] > 0) reset_hwm(b->pid[p]);
            }
            for (int i = 0; i < b->warmup + b->runs; i++) {
                bool warm = i < b->warmup;
                fprintf(stderr, "\r\033[Khired bench: [%d/%d] %s r=%.2f: %s %d/%d", b->n_rows,
                        b->n_strategies * b->n_budgets, r->strategy, r->budget, warm ? "warm-up" : "run",
                        warm ? i + 1 : i - b->warmup + 1, warm ? b->warmup : b->runs);
                if (r->n) fprintf(stderr, " (last: %.1f tok/s, TTFT %.0f ms)", r->s[r->n - 1].tok_s, r->s[r->n - 1].ttft_ms);
                fflush(stderr);
                sample_t s;
                if (run_job(b, r->strategy, r->budget, &s)) return -1;
                if (!warm) r->s[r->n++] = s;
            }
            if (b->own)
                for (int p = 0; p < P_COUNT; p++)
                    if (b->pid[p] > 0) r->hwm_kb[p] = vm_hwm_kb(b->pid[p]);
        }
    fprintf(stderr, "\r\033[Khired bench: %d jobs done\n", b->n_rows * (b->warmup + b->runs));
    return 0;
}

/* The bench with its options o: the exit status. */
static int bench_main(const bench_opts_t *o) {
    if (o->concurrency[0]) {
        bench_batch_opts_t bo = {.model = o->model, .concurrency = o->concurrency,
                                 .budgets = strcmp(o->budgets, "1.0,0.4,0.2,0.1") ? o->budgets : "0.2,1.0",
                                 .text_layers = o->text_layers, .kv_bytes = o->kv_bytes,
                                 .image_tokens = o->image_tokens, .pool_image_tokens = o->pool_image_tokens, .max_tokens = o->max_tokens, .rounds = o->rounds, .json = o->json,
                                 .kv_f32 = o->kv_dtype == 1, .weights = (int)o->weights};
        if (!o->model[0] && o->text_layers <= 0) {
            fprintf(stderr, "hired bench: --concurrency needs --model DIR or --text-layers N\n");
            return 2;
        }
        return bench_batch(&bo);
    }
    static bench_t b; /* large; one bench per process */
    memset(&b, 0, sizeof b);
    b.runs = (int)o->runs;
    b.warmup = (int)o->warmup;
    b.max_tokens = (int)o->max_tokens;
    b.timeout_ms = (int)o->timeout_ms;
    b.json_path = o->json;
    b.image = o->image;
    b.model_dir = o->model[0] ? o->model : NULL;
    b.device = o->device;
    b.weights = llm_weights_name((llm_weights_t)o->weights);
    b.broker = o->broker[0] ? o->broker : NULL;
    b.model_name = o->model_name[0] ? o->model_name : NULL;
    static char base[256];
    if (!b.model_name && b.model_dir) {
        char tmp[1024];
        snprintf(tmp, sizeof tmp, "%s", b.model_dir);
        size_t n = strlen(tmp);
        while (n > 1 && tmp[n - 1] == '/') tmp[--n] = 0;
        snprintf(base, sizeof base, "%s", basename(tmp));
        b.model_name = base;
    }
    if (!b.model_dir && !b.broker) {
        fprintf(stderr, "hired bench: --model DIR or --broker EP is required (hired bench --help lists the options)\n");
        return 2;
    }
    if (!b.model_name) {
        fprintf(stderr, "hired bench: --model-name is required with --broker\n");
        return 2;
    }
    if (parse_lists(&b, o->strategies, o->budgets)) return 2;
    if (read_image(&b) || (b.model_dir && model_facts(&b))) {
        mem_free(b.img);
        return 1;
    }

    measure_kernels(&b);
    int rc = 1;
    if (!b.broker && start_services(&b)) goto out;
    hired_client_opts co = {.timeout_ms = b.timeout_ms};
    b.c = hired_client_new(b.own ? b.front : b.broker, &co);
    if (!b.c) {
        fprintf(stderr, "hired bench: cannot create a client for '%s'\n", b.own ? b.front : b.broker);
        goto out;
    }
    if (wait_workers(&b, 600000)) goto out;
    loadavg(b.load_start, sizeof b.load_start);
    if (run_rows(&b)) goto out;
    loadavg(b.load_end, sizeof b.load_end);
    rc = 0;
out:
    hired_client_destroy(&b.c);
    if (b.own && stop_services(&b)) rc = 1;
    if (b.n_rows && !rc) {
        print_table(&b);
        if (write_json(&b)) rc = 1;
        else printf("\nload average before/after: %s / %s (%ld cores). Raw samples, summary and environment: %s\n",
                    b.load_start, b.load_end, sysconf(_SC_NPROCESSORS_ONLN), b.json_path);
    }
    if (b.own && !rc) remove_tmp(&b);
    else if (b.own) fprintf(stderr, "hired bench: logs kept in %s\n", b.tmp);
    for (int i = 0; i < b.n_rows; i++) free(b.rows_[i].s);
    mem_free(b.img);
    return rc;
}

/* bench's body (cli_cmd_t). */
static int bench_body(const cli_cmd_t *cmd, void *values, const char **pos, int n_pos) {
    (void)cmd, (void)pos, (void)n_pos;
    return bench_main(values);
}

int cmd_bench(int argc, char **argv) {
    static const cli_cmd_t cmd = {
        .prog = "hired bench",
        .usage = "usage: hired bench (--model DIR | --broker EP --model-name NAME [--model DIR]) [options]\n"
                 "  prints progress on stderr, then a markdown table (medians, p10-p90, relative to r=1.0)\n",
        .t = k_bench_opts,
        .n = (int)ARRAY_LEN(k_bench_opts),
        .body = bench_body,
    };
    bench_opts_t o = {0};
    return cli_command(&cmd, &o, argc, argv);
}
