/* test_worker_trust.c — a bad worker cannot starve the pool or spoil answers (docs/protocol.md
 * §5 "Worker trust"), with the real hired-broker:
 *   1. a fake decoder that announces capacity 1024 and never answers, beside an honest one:
 *      its capacity is capped, it gets 2 jobs at a time at most (credit is earned), it is
 *      quarantined after its attempts time out, and every job ends exactly, none "attempts
 *      exhausted";
 *   2. a fake decoder that drips a token every 1.5 s (within the 2.5 s attempt timeout, so it
 *      is never timed out), beside an honest one: the honest one, when idle, takes over the
 *      dripper's jobs ("migrated"), and every job ends exactly;
 *   3. two real hired-encoders with the same model name but different checkpoints: the second
 *      is refused by name and exits 2 (a configuration error);
 *   4. a real encoder on a checkpoint whose patch embedding is NaN: the job gets an ERROR saying
 *      the features are not finite, and the workers keep serving.
 * The fakes (fake_worker.c) produce the same text for a job whichever of them serves it, so a
 * job taken over mid-stream must still end with its text exactly. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "test.h"
#include "test_real_util.h"
#include "wire.h"

static pid_t fake(const char *back, const char *service, const char *model, int capacity, int threads, int delay,
                  bool hold) {
    char cap[16], thr[16], dl[16];
    snprintf(cap, sizeof cap, "%d", capacity);
    snprintf(thr, sizeof thr, "%d", threads);
    snprintf(dl, sizeof dl, "%d", delay);
    char *argv[] = {(char *)rt_bin("tests/fake_worker"), "--endpoint", (char *)back, "--service", (char *)service,
                    "--model", (char *)model, "--capacity", cap, "--threads", thr, "--delay-ms", dl,
                    "--heartbeat-ms", "200", "--hold", hold ? "1" : "0", NULL};
    return h_spawn(argv, NULL, H_SPAWN_TRACK | H_SPAWN_LOG_ENV);
}

/* The STATUS object of the worker of pool (service, model) that matches pred, or NULL. */
static double worker_field(hired_client *c, const char *model, const char *service, int capacity, const char *field) {
    char *js = NULL;
    double v = -1;
    if (hired_status(c, &js)) return v;
    cJSON *root = cJSON_Parse(js);
    free(js);
    cJSON *p, *w;
    cJSON_ArrayForEach(p, cJSON_GetObjectItem(root, "pools")) {
        if (strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(p, "model")), model) ||
            strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(p, "service")), service))
            continue;
        cJSON_ArrayForEach(w, cJSON_GetObjectItem(p, "workers")) {
            if ((int)cJSON_GetObjectItem(w, "capacity")->valuedouble == capacity) {
                cJSON *f = cJSON_GetObjectItem(w, field);
                v = cJSON_IsBool(f) ? cJSON_IsTrue(f) : cJSON_IsNumber(f) ? f->valuedouble : -1;
            }
        }
    }
    cJSON_Delete(root);
    return v;
}

static int run_jobs(hired_client *c, const char *model, int n, const char *words, int timeout_ms) {
    h_result *r = calloc((size_t)n, sizeof *r);
    for (int i = 0; i < n; i++) {
        char prompt[256];
        snprintf(prompt, sizeof prompt, "j%d %s", i, words);
        CHECK(h_submit(c, model, prompt, 0, &r[i]) == 0);
    }
    CHECK_EQ_INT(h_collect(c, r, n, timeout_ms), n);
    int good = 0;
    for (int i = 0; i < n; i++) {
        bool ok = r[i].final == HIRED_EVENT_DONE && !strcmp(r[i].text, r[i].expect) && r[i].gaps == 0 && r[i].dups == 0;
        if (!ok) fprintf(stderr, "%s job %d: final %d '%s' text '%s'\n", model, i, r[i].final, r[i].message, r[i].text);
        good += ok;
    }
    free(r);
    return good;
}

/* Copies the model directory and fills the patch embedding with NaN. 0 or -1. */
static int nan_checkpoint(const char *src, const char *dst) {
    char cmd[5200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -r '%s' '%s'", dst, src, dst);
    if (system(cmd) != 0) return -1;
    char path[2100];
    snprintf(path, sizeof path, "%s/model.safetensors", dst);
    uint8_t *b = NULL;
    size_t n = 0;
    if (rt_read(path, &b, &n) || n < 8) return -1;
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = (hl << 8) | b[i];
    cJSON *h = cJSON_ParseWithLength((const char *)b + 8, (size_t)hl);
    int rc = -1;
    cJSON *t;
    cJSON_ArrayForEach(t, h) {
        if (!strstr(t->string, "patch_embedding.weight")) continue;
        cJSON *off = cJSON_GetObjectItem(t, "data_offsets");
        const char *dt = cJSON_GetStringValue(cJSON_GetObjectItem(t, "dtype"));
        size_t a = (size_t)cJSON_GetArrayItem(off, 0)->valuedouble, z = (size_t)cJSON_GetArrayItem(off, 1)->valuedouble;
        uint8_t *d = b + 8 + hl;
        if (dt && !strcmp(dt, "F32"))
            for (size_t i = a; i + 4 <= z; i += 4) d[i] = 0, d[i + 1] = 0, d[i + 2] = 0xc0, d[i + 3] = 0x7f;
        else if (dt && !strcmp(dt, "BF16"))
            for (size_t i = a; i + 2 <= z; i += 2) d[i] = 0xc0, d[i + 1] = 0x7f; /* 0x7fc0 */
        else
            for (size_t i = a; i + 2 <= z; i += 2) d[i] = 0x00, d[i + 1] = 0x7e; /* f16 0x7e00 */
        rc = 0;
    }
    cJSON_Delete(h);
    FILE *f = rc ? NULL : fopen(path, "wb");
    if (f) {
        rc = fwrite(b, 1, n, f) == n ? 0 : -1;
        fclose(f);
    }
    free(b);
    return rc;
}

int main(void) {
    setenv("OMP_NUM_THREADS", "1", 1);
    h_init(200);
    char front[256], back[256];
    const char *bopts[] = {"--broker.heartbeat_ms=200", "--broker.attempt_timeout_ms=2500", "--broker.quarantine_after=2",
                           "--broker.quarantine_ms=60000", NULL};
    h_broker(NULL, NULL, bopts, front, back);
    hired_client_opts co = {.timeout_ms = 60000, .heartbeat_ms = 200};
    hired_client *c = hired_client_new(front, &co);

    /* 1. a greedy silent decoder beside an honest one */
    fake(back, "encode", "greedy", 4, 4, 0, false);
    fake(back, "decode", "greedy", 1024, 2, 0, true);
    CHECK(h_wait_workers(c, "greedy", 1, 1, 10000));
    fake(back, "decode", "greedy", 2, 2, 5, false);
    CHECK(h_wait_workers(c, "greedy", 1, 2, 10000));
    CHECK_EQ_INT(worker_field(c, "greedy", "decode", 64, "credit"), 2); /* capped to 64, earning from 2 */
    int good = run_jobs(c, "greedy", 30, "one two three four five", 60000);
    CHECK_EQ_INT(good, 30);
    double held = worker_field(c, "greedy", "decode", 64, "served");
    fprintf(stderr, "greedy: the silent decoder was given %.0f jobs, quarantined: %.0f\n", held,
            worker_field(c, "greedy", "decode", 64, "quarantined"));
    CHECK(held >= 1 && held <= 4); /* it got jobs (the fault happened), never more than its credit */
    CHECK_EQ_INT(worker_field(c, "greedy", "decode", 64, "quarantined"), 1);
    CHECK(h_status_counter(c, "quarantined") >= 1 && h_status_counter(c, "requeued") >= 1);
    CHECK_EQ_INT(h_status_counter(c, "failed"), 0);

    /* 2. a dripping decoder beside an honest one */
    fake(back, "encode", "drip", 4, 4, 0, false);
    fake(back, "decode", "drip", 2, 2, 1500, false);
    CHECK(h_wait_workers(c, "drip", 1, 1, 10000));
    fake(back, "decode", "drip", 4, 4, 5, false);
    CHECK(h_wait_workers(c, "drip", 1, 2, 10000));
    long migrated = h_status_counter(c, "migrated");
    good = run_jobs(c, "drip", 12, "alpha beta gamma delta epsilon zeta eta theta iota kappa", 90000);
    CHECK_EQ_INT(good, 12);
    migrated = h_status_counter(c, "migrated") - migrated;
    fprintf(stderr, "drip: %ld jobs taken over from the dripping decoder\n", migrated);
    CHECK(migrated >= 1);
    CHECK_EQ_INT(h_status_counter(c, "failed"), 0);

    /* 3. one model name, two checkpoints: the second encoder is refused by name */
    static char d15[2048], dnext[2048];
    snprintf(d15, sizeof d15, "%s", rt_model_dir("llava15-tiny"));
    snprintf(dnext, sizeof dnext, "%s", rt_model_dir("llava-next-tiny"));
    const char *nopts[] = {"--model.name=shared", "--worker.warmup=false", NULL};
    rt_encoder(back, d15, nopts);
    CHECK(h_wait_workers(c, "shared", 1, 0, 30000));
    static char log2[1024];
    snprintf(log2, sizeof log2, "%s", h_path("refused.log"));
    char ep[300];
    snprintf(ep, sizeof ep, "--broker.endpoint=%s", back);
    const char *args[] = {"--model", dnext, ep, "--broker.heartbeat_ms=200", "--model.name=shared",
                          "--worker.warmup=false", NULL};
    CHECK_EQ_INT(rt_run("encoder_worker/hired-encoder", args, log2, 60000), 2);
    char *log = rt_slurp(log2);
    CHECK_MSG(log && strstr(log, "model 'shared' is served by checkpoint") && strstr(log, "another checkpoint"),
              "refused encoder's log: %s", log ? log : "(none)");
    free(log);
    CHECK(h_status_counter(c, "workers_refused") >= 1);
    CHECK(h_wait_workers(c, "shared", 1, 0, 1000));

    /* 4. a checkpoint that makes NaN features */
    static char nandir[1024];
    snprintf(nandir, sizeof nandir, "%s", h_path("nan-model"));
    CHECK(nan_checkpoint(d15, nandir) == 0);
    /* A broker of its own, with the default attempt timeout: the 2.5 s above is for the fakes,
     * and a real encode under a sanitizer on a busy machine can take longer than that, which
     * would end the job as "attempts exhausted" before the worker's own refusal arrives. */
    char front2[256], back2[256];
    const char *bopts2[] = {"--broker.heartbeat_ms=200", NULL};
    h_broker(NULL, NULL, bopts2, front2, back2);
    hired_client *c2 = hired_client_new(front2, &co);
    const char *wopts[] = {"--worker.warmup=false", NULL};
    rt_encoder(back2, nandir, wopts);
    rt_decoder(back2, nandir, wopts);
    CHECK(h_wait_workers(c2, "nan-model", 1, 1, 30000));
    uint8_t *img = NULL;
    size_t n = 0;
    CHECK(rt_read(rt_image("tiny.png"), &img, &n) == 0);
    hired_job j;
    hired_job_init(&j);
    h_result r;
    CHECK(rt_submit(c2, "nan-model", img, n, "What is this?", &j.params, &r) == 0);
    CHECK_EQ_INT(h_collect(c2, &r, 1, 120000), 1);
    CHECK_MSG(r.final == HIRED_EVENT_ERROR && r.code == HIRED_ERANGE && strstr(r.message, "not finite"),
              "NaN features: final %d code %d '%s'", r.final, r.code, r.message);
    CHECK(h_wait_workers(c2, "nan-model", 1, 1, 1000)); /* still serving */
    free(img);
    hired_client_destroy(&c2);

    hired_client_destroy(&c);
    CHECK_EQ_INT(rt_cleanup(), 0);
    return test_summary();
}
