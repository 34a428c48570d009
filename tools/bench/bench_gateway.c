/* bench_gateway.c — hired-bench-gateway: what hired-gateway adds to a request's latency. The same
 * job (one image, one question, greedy, a fixed max_tokens) is sent N times straight through
 * libhired and N times through the gateway's POST /v1/chat/completions (streamed, libcurl,
 * one kept-alive connection), alternating, so both paths see the same machine and workers. For
 * each path it prints the median (p50) and p90 of the time to the first token and to the end of
 * the answer, and the gateway's added time: the median over the N back-to-back pairs of
 * (gateway - direct), which cancels most of the workers' own variation. A benchmark that prints
 * figures, never a test: nothing is asserted about them.
 *
 * Self-contained by default: starts hired-broker, one hired-encoder, one hired-decoder (the
 * tiny LLaVA-1.5 fixture model unless --model) and hired-gateway on loopback, found next to
 * this program in the build tree (or in $HIRED_BIN_DIR), and stops them at the end. With
 * --broker EP --gateway URL it measures running services instead (the model must be served).
 *
 *   build/tools/bench/hired-bench-gateway [--requests N] [--max-tokens N] [--model DIR]
 *       [--image FILE] [--broker EP --gateway URL]
 *
 * Exit status: 0, 1 a failure (a service did not start, a request failed), 2 usage.
 * Not here: the gateway (gateway/), the end-to-end efficiency report (`hired bench`). */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "hired_client.h"

#ifndef HIRED_SOURCE_DIR
#define HIRED_SOURCE_DIR "."
#endif

extern char **environ;

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

// ---- the services ----------------------------------------------------------------------------

enum { P_BROKER, P_ENCODER, P_DECODER, P_GATEWAY, P_COUNT };
static const char *const k_name[P_COUNT] = {"hired-broker", "hired-encoder", "hired-decoder", "hired-gateway"};
static const char *const k_dir[P_COUNT] = {"broker", "encoder_worker", "decoder_worker", "gateway"};

typedef struct {
    pid_t pid[P_COUNT];
    char tmp[256];
    char front[256], url[256];
} svc_t;

/* NAME in $HIRED_BIN_DIR, else in the build tree this program belongs to (../../DIR/NAME). */
static int find_bin(int p, char *out, size_t cap) {
    const char *env = getenv("HIRED_BIN_DIR");
    if (env && *env) {
        snprintf(out, cap, "%s/%s", env, k_name[p]);
        return access(out, X_OK);
    }
    char self[1024];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) return -1;
    self[n] = 0;
    snprintf(out, cap, "%s/../../%s/%s", dirname(self), k_dir[p], k_name[p]);
    return access(out, X_OK);
}

static pid_t spawn(char *const argv[], const char *log) {
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    pid_t pid;
    int rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc) fprintf(stderr, "hired-bench-gateway: cannot start %s: %s\n", argv[0], strerror(rc));
    return rc ? -1 : pid;
}

/* The value of "key=" in a ports file, waiting up to 30 s for it. */
static int wait_port(const char *path, const char *key, char *out, size_t cap) {
    for (double t0 = now_ms(); now_ms() - t0 < 30000; usleep(20000)) {
        FILE *f = fopen(path, "r");
        char line[512];
        while (f && fgets(line, sizeof line, f))
            if (!strncmp(line, key, strlen(key)) && line[strlen(key)] == '=') {
                line[strcspn(line, "\r\n")] = 0;
                snprintf(out, cap, "%s", line + strlen(key) + 1);
                fclose(f);
                return 0;
            }
        if (f) fclose(f);
    }
    fprintf(stderr, "hired-bench-gateway: no '%s' in %s after 30 s\n", key, path);
    return -1;
}

static int start_services(svc_t *s, const char *model_dir) {
    char bin[P_COUNT][1024];
    for (int p = 0; p < P_COUNT; p++)
        if (find_bin(p, bin[p], sizeof bin[p])) {
            fprintf(stderr, "hired-bench-gateway: cannot find %s (build it, or set HIRED_BIN_DIR)\n", k_name[p]);
            return -1;
        }
    snprintf(s->tmp, sizeof s->tmp, "/tmp/hired-bench-gw-XXXXXX");
    if (!mkdtemp(s->tmp)) return -1;
    char ports[300], a_ports[330], log[300], back[256], a_ep[300], a_model[1100], gports[300], a_gports[330];
    snprintf(ports, sizeof ports, "%s/ports", s->tmp);
    snprintf(a_ports, sizeof a_ports, "--broker.ports_file=%s", ports);
    char *b[] = {bin[P_BROKER], "--broker.frontend=tcp://127.0.0.1:0", "--broker.backend=tcp://127.0.0.1:0", a_ports,
                 "--log.level=warn", NULL};
    snprintf(log, sizeof log, "%s/broker.log", s->tmp);
    if ((s->pid[P_BROKER] = spawn(b, log)) < 0 || wait_port(ports, "frontend", s->front, sizeof s->front) ||
        wait_port(ports, "backend", back, sizeof back))
        return -1;
    snprintf(a_ep, sizeof a_ep, "--broker.endpoint=%s", back);
    snprintf(a_model, sizeof a_model, "--model.dir=%s", model_dir);
    for (int p = P_ENCODER; p <= P_DECODER; p++) {
        char *w[] = {bin[p], a_model, a_ep, "--log.level=warn", NULL};
        snprintf(log, sizeof log, "%s/%s.log", s->tmp, k_name[p]);
        if ((s->pid[p] = spawn(w, log)) < 0) return -1;
    }
    snprintf(gports, sizeof gports, "%s/gateway.ports", s->tmp);
    snprintf(a_gports, sizeof a_gports, "--http.ports_file=%s", gports);
    char *gw[] = {bin[P_GATEWAY], "--broker", s->front, "--port", "0", a_gports, "--log.level=warn", NULL};
    snprintf(log, sizeof log, "%s/gateway.log", s->tmp);
    if ((s->pid[P_GATEWAY] = spawn(gw, log)) < 0 || wait_port(gports, "http", s->url, sizeof s->url)) return -1;
    return 0;
}

static void stop_services(svc_t *s) {
    for (int p = P_COUNT - 1; p >= 0; p--)
        if (s->pid[p] > 0) kill(s->pid[p], SIGTERM);
    for (int p = P_COUNT - 1; p >= 0; p--)
        if (s->pid[p] > 0) waitpid(s->pid[p], NULL, 0);
    if (s->tmp[0]) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", s->tmp);
        if (system(cmd) != 0) fprintf(stderr, "hired-bench-gateway: could not remove %s\n", s->tmp);
    }
}

// ---- one request each way ----------------------------------------------------------------------

typedef struct {
    double first, end; /* ms from the start of the request */
} lat_t;

/* Straight through libhired: submit, then events until DONE. */
static int direct(hired_client *c, const char *model, const void *img, size_t n, const char *q, int max_tokens, lat_t *l) {
    hired_job job;
    hired_job_init(&job);
    job.model = model;
    job.prompt = q;
    job.image = img;
    job.image_len = n;
    job.params.max_tokens = max_tokens;
    char id[HIRED_JOB_ID_LEN];
    double t0 = now_ms();
    l->first = -1;
    if (hired_submit(c, &job, id)) return -1;
    for (;;) {
        hired_event ev;
        if (hired_next_event(c, 60000, &ev)) return -1;
        int type = ev.type;
        bool mine = !strcmp(ev.job_id, id);
        hired_event_clear(&ev);
        if (!mine) continue;
        if (type == HIRED_EVENT_TOKEN && l->first < 0) l->first = now_ms() - t0;
        if (type == HIRED_EVENT_DONE) break;
        if (type == HIRED_EVENT_ERROR || type == HIRED_EVENT_BUSY) return -1;
    }
    l->end = now_ms() - t0;
    if (l->first < 0) l->first = l->end;
    return 0;
}

typedef struct {
    double t0, first;
    int done;
} sink_t;

static size_t on_body(char *data, size_t size, size_t nmemb, void *user) {
    sink_t *s = user;
    size_t n = size * nmemb;
    /* the first content that is not the empty role chunk; the end is [DONE] */
    if (s->first < 0 && memmem(data, n, "\"content\":\"", 11) && !memmem(data, n, "\"content\":\"\"", 12))
        s->first = now_ms() - s->t0;
    if (memmem(data, n, "data: [DONE]", 12)) s->done = 1;
    return n;
}

/* Through the gateway: a streamed chat completion on the kept-alive handle h. */
static int via_gateway(CURL *h, const char *body, lat_t *l) {
    sink_t s = {.t0 = now_ms(), .first = -1};
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &s);
    CURLcode rc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    l->end = now_ms() - s.t0;
    l->first = s.first < 0 ? l->end : s.first;
    if (rc != CURLE_OK || status != 200 || !s.done) {
        fprintf(stderr, "hired-bench-gateway: gateway request: %s, HTTP %ld%s\n", curl_easy_strerror(rc), status,
                s.done ? "" : ", no [DONE]");
        return -1;
    }
    return 0;
}

// ---- figures ---------------------------------------------------------------------------------

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double pct(const double *v, int n, double q) {
    double *s = malloc((size_t)n * sizeof *s);
    if (!s) return 0;
    memcpy(s, v, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, cmp_d);
    double r = s[(int)(q * (n - 1) + 0.5)];
    free(s);
    return r;
}

static char *b64(const unsigned char *p, size_t n) {
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *o = malloc((n + 2) / 3 * 4 + 1), *w = o;
    if (!o) return NULL;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = p[i] << 16 | (i + 1 < n ? p[i + 1] << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
        *w++ = t[v >> 18 & 63], *w++ = t[v >> 12 & 63];
        *w++ = i + 1 < n ? t[v >> 6 & 63] : '=';
        *w++ = i + 2 < n ? t[v & 63] : '=';
    }
    *w = 0;
    return o;
}

static void usage(FILE *f) {
    fprintf(f, "usage: hired-bench-gateway [--requests N] [--max-tokens N] [--model DIR] [--image FILE]\n"
               "                           [--broker EP --gateway URL]\n"
               "  the gateway's added latency per request: N requests straight through libhired and N\n"
               "  through hired-gateway, alternating; p50/p90 of each and the median per-pair difference\n");
}

int main(int argc, char **argv) {
    int n = 20, max_tokens = 8;
    const char *model_dir = HIRED_SOURCE_DIR "/tests/fixtures/models/llava15-tiny";
    const char *image = HIRED_SOURCE_DIR "/tests/fixtures/images/rocket_odd.jpg", *broker = NULL, *gateway = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        }
        const char *v = i + 1 < argc ? argv[++i] : NULL;
        if (!v) n = 0; /* an option without its value: usage below */
        else if (!strcmp(a, "--requests")) n = atoi(v);
        else if (!strcmp(a, "--max-tokens")) max_tokens = atoi(v);
        else if (!strcmp(a, "--model")) model_dir = v;
        else if (!strcmp(a, "--image")) image = v;
        else if (!strcmp(a, "--broker")) broker = v;
        else if (!strcmp(a, "--gateway")) gateway = v;
        else n = 0;
    }
    if (n < 1 || n > 100000 || max_tokens < 1 || max_tokens > 16384 || (!broker) != (!gateway)) {
        usage(stderr);
        return 2;
    }
    char model[256];
    snprintf(model, sizeof model, "%s", model_dir);
    while (strlen(model) > 1 && model[strlen(model) - 1] == '/') model[strlen(model) - 1] = 0;
    memmove(model, basename(model), strlen(basename(model)) + 1);

    FILE *f = fopen(image, "rb");
    unsigned char *img = NULL;
    long len = 0;
    if (f && !fseek(f, 0, SEEK_END) && (len = ftell(f)) > 0 && !fseek(f, 0, SEEK_SET) && (img = malloc((size_t)len)) &&
        fread(img, 1, (size_t)len, f) != (size_t)len)
        len = 0;
    if (f) fclose(f);
    if (!img || len <= 0) {
        fprintf(stderr, "hired-bench-gateway: cannot read %s\n", image);
        return 1;
    }

    svc_t s;
    memset(&s, 0, sizeof s);
    int rc = 1;
    if (broker) {
        snprintf(s.front, sizeof s.front, "%s", broker);
        snprintf(s.url, sizeof s.url, "%s", gateway);
    } else if (start_services(&s, model_dir)) {
        stop_services(&s);
        free(img);
        return 1;
    }
    const char *q = "What is in the picture?";
    char *b64img = b64(img, (size_t)len);
    size_t blen = strlen(b64img) + 512;
    char *body = malloc(blen);
    snprintf(body, blen,
             "{\"model\":\"%s\",\"max_tokens\":%d,\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":["
             "{\"type\":\"text\",\"text\":\"%s\"},{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/%s;base64,%s\"}}]}]}",
             model, max_tokens, q, len > 3 && img[0] == 0x89 ? "png" : "jpeg", b64img);
    free(b64img);

    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURL *h = curl_easy_init();
    char url[300];
    snprintf(url, sizeof url, "%s/v1/chat/completions", s.url);
    struct curl_slist *hd = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
    hired_client_opts o = {.timeout_ms = 60000};
    hired_client *c = hired_client_new(s.front, &o);
    double *d_first = calloc((size_t)n, sizeof(double)), *d_end = calloc((size_t)n, sizeof(double));
    double *g_first = calloc((size_t)n, sizeof(double)), *g_end = calloc((size_t)n, sizeof(double));
    double *diff = calloc((size_t)n, sizeof(double));
    lat_t l;
    /* the workers register, the model is known to the gateway; then a warm-up round each way */
    bool up = false;
    for (double t0 = now_ms(); c && !up && now_ms() - t0 < 120000; usleep(100000))
        up = direct(c, model, img, (size_t)len, q, 1, &l) == 0 && via_gateway(h, body, &l) == 0;
    if (!up) {
        fprintf(stderr, "hired-bench-gateway: the services did not answer (model %s)\n", model);
        goto out;
    }
    for (int i = 0; i < 2; i++)
        if (direct(c, model, img, (size_t)len, q, max_tokens, &l) || via_gateway(h, body, &l)) goto out;
    for (int i = 0; i < n; i++) {
        lat_t a, b;
        /* alternate which goes first, so neither always follows the other */
        if (i % 2 == 0 ? (direct(c, model, img, (size_t)len, q, max_tokens, &a) || via_gateway(h, body, &b))
                       : (via_gateway(h, body, &b) || direct(c, model, img, (size_t)len, q, max_tokens, &a)))
            goto out;
        d_first[i] = a.first, d_end[i] = a.end, g_first[i] = b.first, g_end[i] = b.end;
        diff[i] = b.end - a.end;
    }
    printf("hired-bench-gateway: model %s, %d requests each way, %d new tokens, streamed\n", model, n, max_tokens);
    printf("%-22s %12s %12s %12s %12s\n", "", "first p50", "first p90", "end p50", "end p90");
    printf("%-22s %10.2f ms %9.2f ms %9.2f ms %9.2f ms\n", "libhired (direct)", pct(d_first, n, 0.5), pct(d_first, n, 0.9),
           pct(d_end, n, 0.5), pct(d_end, n, 0.9));
    printf("%-22s %10.2f ms %9.2f ms %9.2f ms %9.2f ms\n", "hired-gateway (HTTP)", pct(g_first, n, 0.5),
           pct(g_first, n, 0.9), pct(g_end, n, 0.5), pct(g_end, n, 0.9));
    printf("gateway added per request (median of %d pairs, gateway - direct): %.2f ms (p10 %.2f, p90 %.2f)\n", n,
           pct(diff, n, 0.5), pct(diff, n, 0.1), pct(diff, n, 0.9));
    rc = 0;
out:
    hired_client_destroy(&c);
    curl_slist_free_all(hd);
    curl_easy_cleanup(h);
    curl_global_cleanup();
    free(body);
    free(img);
    free(d_first), free(d_end), free(g_first), free(g_end), free(diff);
    if (!broker) stop_services(&s);
    return rc;
}
