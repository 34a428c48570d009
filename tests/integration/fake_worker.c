/* fake_worker.c — a test-only encoder or decoder built on common/worker_conn, for broker-scale
 * tests. Deterministic:
 *   encode: after --delay-ms, RESULT with kept=4, dim=8, f32, 3 parts of a 2x2 patch grid; the
 *           tensor and the first four positions (the hash in 16-bit pieces) are derived from an
 *           FNV-1a hash of the image bytes, so the decoder can check it got the right tensor
 *           with the right header for the right job.
 *   decode: checks the tensor against the positions, then streams the prompt back one word (with its
 *           trailing spaces) per TOKEN, seq 0, 1, ..., sleeping --delay-ms before each, and
 *           ends with DONE (finish "length" when max_tokens cut it short). A prompt starting with
 *           "FAIL" gets ERROR instead.
 * Capacity N announces N and runs min(N, --threads T, 64) job threads on one worker_conn
 * (default T = N), so a worker can announce more than it serves.
 * --curve-server-key F --curve-cert F: CURVE as the real workers do it. A worker whose READY
 * the broker refuses exits 2.
 * --hold: never answers a job (holds it until the broker gives up on it; a fault test's
 * misbehaving worker). --fingerprint F: the checkpoint fingerprint it announces (default
 * "f00d"). SIGTERM/SIGINT: worker_conn_stop, exit 0.
 * Usage: fake_worker --endpoint E --service encode|decode --model M [--capacity N]
 *                    [--threads T] [--delay-ms D] [--heartbeat-ms H] [--fingerprint F] [--hold 1] */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "worker_conn.h"

static worker_conn_t *g_conn;
static int g_delay_ms;
static bool g_decode, g_hold;
static volatile bool g_refused;
static const char *g_fingerprint;
static curve_cfg_t g_curve;

static void on_signal(int sig) {
    (void)sig;
    worker_conn_stop(g_conn);
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static uint64_t fnv(const void *p, size_t n) {
    const uint8_t *b = p;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

static float feature(uint64_t h, int i) { return (float)((h >> (i % 48)) & 0xffff) + (float)i; }

/* One record per image, in order: 4 tokens of width 8 derived from the image bytes' hash. */
static void run_encode(worker_job_t *job) {
    char err[HIRED_ERR_LEN];
    sleep_ms(g_delay_ms);
    wire_msg_t r;
    wire_msg_init(&r, WIRE_RESULT);
    strcpy(r.id, job->hdr.id);
    zmq_msg_t t[WIRE_MAX_PAYLOADS];
    wire_msg_new_visuals(&r, (uint32_t)job->n_payloads);
    for (int k = 0; k < job->n_payloads; k++) {
        uint64_t h = fnv(zmq_msg_data(&job->payloads[k]), zmq_msg_size(&job->payloads[k]));
        wire_visual_t *v = &r.visuals[k];
        v->kept = 4, v->dim = 8, v->dtype = WIRE_DTYPE_F32;
        v->grid[0] = 1, v->grid[1] = 2;
        v->parts = 3, v->patch_grid = 2;
        uint16_t pos[12];
        for (int i = 0; i < 12; i++) pos[i] = i < 4 ? (uint16_t)(h >> (16 * i)) : (uint16_t)i;
        wire_visual_set_positions(v, pos, 4);
        zmq_msg_init_size(&t[k], 4 * 8 * sizeof(float));
        float *f = zmq_msg_data(&t[k]); /* [4, 8] */
        for (int i = 0; i < 32; i++) f[i] = feature(h, i);
    }
    r.timings[WIRE_STAGE_PREPROCESS] = 1, r.timings[WIRE_STAGE_VIT] = 2, r.timings[WIRE_STAGE_SELECT] = 0.5;
    r.timings_mask = (1u << WIRE_STAGE_PREPROCESS) | (1u << WIRE_STAGE_VIT) | (1u << WIRE_STAGE_SELECT);
    snprintf(r.fingerprint, sizeof r.fingerprint, "%s", g_fingerprint);
    if (worker_conn_send_result(g_conn, job, &r, t, job->n_payloads, err)) log_error("fake encoder: %s", err);
    wire_msg_clear(&r);
}

/* Checks every record against the features the fake encoder derives from its positions, then
 * streams the prompt (or the conversation's last text part) back word by word. */
static void run_decode(worker_job_t *job) {
    char err[HIRED_ERR_LEN];
    const wire_msg_t *j = &job->hdr;
    bool ok = (int)j->n_visuals == job->n_payloads;
    for (uint32_t k = 0; ok && k < j->n_visuals; k++) {
        const wire_visual_t *v = &j->visuals[k];
        uint64_t h = 0;
        ok = v->kept == 4 && v->positions && zmq_msg_size(&job->payloads[k]) == 32 * sizeof(float);
        if (!ok) break;
        for (int i = 0; i < 4; i++) h |= (uint64_t)v->positions[i] << (16 * i);
        const float *f = zmq_msg_data(&job->payloads[k]);
        for (int i = 0; i < 32; i++) ok = ok && f[i] == feature(h, i);
    }
    const char *text = j->prompt; /* or the conversation's last text part */
    for (uint32_t i = 0; !j->prompt && i < j->n_messages; i++)
        for (uint32_t k = 0; k < j->messages[i].n_parts; k++)
            if (j->messages[i].parts[k].text) text = j->messages[i].parts[k].text;
    if (!text) text = "";
    if (!ok || strncmp(text, "FAIL", 4) == 0) {
        worker_conn_send_error(g_conn, job, HIRED_EINVAL, ok ? "fake failure requested" : "tensor mismatch", err);
        return;
    }
    const uint32_t kept = 4 * j->n_visuals;
    const char *p = text;
    uint32_t seq = 0;
    while (*p && (int)seq < j->params.max_tokens) {
        sleep_ms(g_delay_ms);
        if (worker_conn_cancelled(g_conn, job)) {
            worker_conn_send_error(g_conn, job, HIRED_EINVAL, "cancelled", err);
            return;
        }
        size_t n = strcspn(p, " ");
        n += strspn(p + n, " ");
        if (n > WIRE_MAX_TOKEN_TEXT) n = WIRE_MAX_TOKEN_TEXT;
        char tok[WIRE_MAX_TOKEN_TEXT + 1];
        memcpy(tok, p, n);
        tok[n] = 0;
        p += n;
        if (worker_conn_send_token(g_conn, job, seq, (int32_t)seq, tok, err)) log_error("fake decoder: %s", err);
        seq++;
    }
    wire_msg_t d;
    wire_msg_init(&d, WIRE_DONE);
    strcpy(d.id, j->id);
    strcpy(d.finish, *p ? "length" : "stop");
    d.usage.prompt_tokens = 1, d.usage.image_tokens = kept, d.usage.completion_tokens = seq;
    d.usage.visual_kept = kept, d.usage.visual_total = 2 * kept; /* result_bytes: the broker's */
    d.timings[WIRE_STAGE_PREFILL] = 1.5;
    d.timings[WIRE_STAGE_DECODE] = (double)seq * g_delay_ms;
    d.timings_mask = (1u << WIRE_STAGE_PREFILL) | (1u << WIRE_STAGE_DECODE);
    if (worker_conn_send_done(g_conn, job, &d, err)) log_error("fake decoder: %s", err);
    wire_msg_clear(&d);
}

static void *job_thread(void *arg) {
    (void)arg;
    for (;;) {
        worker_job_t *job;
        int rc = worker_conn_next_job(g_conn, 200, &job);
        if (rc == HIRED_EIO) return NULL;
        if (rc == HIRED_EUNSUPPORTED) { /* READY refused */
            g_refused = true;
            return NULL;
        }
        if (rc) continue;
        if (g_hold) { /* misbehave: sit on it until the broker takes it back */
            while (!worker_conn_cancelled(g_conn, job)) sleep_ms(50);
            worker_job_destroy(&job);
            continue;
        }
        if (g_decode) run_decode(job);
        else run_encode(job);
        worker_job_destroy(&job);
    }
}

int main(int argc, char **argv) {
    worker_conn_opts_t o = {.capacity = 1, .fingerprint = "f00d"};
    int threads = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--endpoint")) o.endpoint = v;
        else if (!strcmp(k, "--service")) o.service = v;
        else if (!strcmp(k, "--model")) o.model = v;
        else if (!strcmp(k, "--capacity")) o.capacity = atoi(v);
        else if (!strcmp(k, "--delay-ms")) g_delay_ms = atoi(v);
        else if (!strcmp(k, "--heartbeat-ms")) o.heartbeat_ms = atoi(v);
        else if (!strcmp(k, "--threads")) threads = atoi(v);
        else if (!strcmp(k, "--fingerprint")) o.fingerprint = v;
        else if (!strcmp(k, "--hold")) g_hold = atoi(v) != 0;
        else if (!strcmp(k, "--curve-server-key")) g_curve.server_key = v;
        else if (!strcmp(k, "--curve-cert")) g_curve.client_cert = v;
        else {
            fprintf(stderr, "fake_worker: unknown option %s\n", k);
            return 2;
        }
    }
    g_decode = o.service && strcmp(o.service, "decode") == 0;
    g_fingerprint = o.fingerprint;
    o.curve = &g_curve;
    char err[HIRED_ERR_LEN];
    g_conn = worker_conn_new(&o, err);
    if (!g_conn) {
        fprintf(stderr, "fake_worker: %s\n", err);
        return 2;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    pthread_t th[64];
    int n = threads > 0 && threads < o.capacity ? threads : o.capacity;
    if (n > 64) n = 64;
    for (int i = 0; i < n; i++) pthread_create(&th[i], NULL, job_thread, NULL);
    for (int i = 0; i < n; i++) pthread_join(th[i], NULL);
    char why[HIRED_ERR_LEN];
    worker_conn_refusal(g_conn, why);
    worker_conn_destroy(&g_conn);
    if (g_refused) fprintf(stderr, "fake_worker: refused: %s\n", why);
    return g_refused ? 2 : 0;
}
