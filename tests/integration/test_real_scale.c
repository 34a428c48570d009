/* test_real_scale.c — 50 concurrent jobs through the real hired-broker, 2 hired-encoder and 2
 * hired-decoder processes on the tiny LLaVA-1.5 fixture model: every job ends in DONE with one
 * ACCEPTED and gap-free token seqs, and its text equals what `hired run` computes in-process for
 * the same image, question, selection and seed (generate.h; the encoders ship float32 here, so
 * the decoders see exactly the features `hired run` sees). 5 (image, selection) cases with
 * different strategies, budgets and newline policies, each asked 10 questions with greedy and
 * seeded sampling; per-stage timings of both workers arrive.
 * Cost: the tiny towers have 16 heads x 24 layers, ~0.2 s per 336x336 partition on one core
 * (~2 s in an ASan -O0 build), so this uses the one-partition LLaVA-1.5 model and the encoders'
 * result cache (repeated image + selection); the anyres model's 3-5 partitions per image go
 * through test_real_faults and test_real_badinput. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "test_real_util.h"
#include "wire.h"

#define MODEL "llava15-tiny"
#define N_JOBS 50
#define N_CASES 5
#define N_ASK 10

typedef struct {
    const char *image, *strategy, *newline;
    double budget;
} case_t;

static const case_t k_cases[N_CASES] = {
    {"tiny.png", "hired", "hf", 0.2},
    {"coffee_wide.jpg", "none", "none", 1.0},
    {"chelsea_rgba.png", "spatial", "hf", 0.25},
    {"camera_gray.png", "prumerge", "hf", 0.2},
    {"hubble_wide.jpg", "prumerge+", "none", 0.5},
};

typedef struct {
    const char *prompt;
    double temperature, top_p;
    int top_k, max_tokens;
    uint64_t seed;
} ask_t;

static const ask_t k_asks[N_ASK] = {
    {"What is in the picture?", 0, 1, 0, 10, 0},
    {"Describe the colours.", 0, 1, 0, 8, 0},
    {"Where was this taken?", 0, 1, 0, 12, 0},
    {"Is there a person?", 0.8, 0.9, 50, 12, 7},
    {"Tell a story about it.", 1.2, 1, 0, 12, 12345},
    {"Count the objects.", 0.7, 0.95, 20, 10, 99},
    {"What happens next?", 1.0, 1, 0, 9, 3},
    {"Name three things.", 0, 1, 0, 11, 0},
    {"Why?", 0.5, 0.5, 0, 12, 2024},
    {"Summarise in one word.", 0, 1, 0, 6, 0},
};

int main(void) {
    /* one OpenMP thread per process: the tiny model's ops are far too small to split, and two
     * encoders, two decoders and this process share two cores */
    setenv("OMP_NUM_THREADS", "1", 1);
    h_init(RT_WATCHDOG_S);
    char front[256], back[256];
    const char *bopts[] = {"--broker.heartbeat_ms=200", "--broker.liveness=10", NULL};
    h_broker(NULL, NULL, bopts, front, back);
    static char dir[2048];
    snprintf(dir, sizeof dir, "%s", rt_model_dir(MODEL));
    const char *eopts[] = {"--encoder.wire_dtype=f32", "--encoder.cache_entries=8", "--worker.drain_ms=2000", NULL};
    const char *dopts[] = {"--decoder.capacity=2", "--worker.drain_ms=2000", NULL};
    rt_encoder(back, dir, eopts);
    rt_encoder(back, dir, eopts);
    rt_decoder(back, dir, dopts);
    rt_decoder(back, dir, dopts);

    /* the expected answers, in this process, while the workers load */
    char err[HIRED_ERR_LEN];
    rt_model_t *m = rt_model_load(dir, err);
    CHECK_MSG(m != NULL, "%s", err);
    static char expect[N_CASES][N_ASK][1024];
    static uint8_t *img[N_CASES];
    static size_t img_n[N_CASES];
    static hired_params par[N_CASES][N_ASK];
    for (int i = 0; i < N_CASES; i++) {
        const case_t *k = &k_cases[i];
        CHECK(rt_read(rt_image(k->image), &img[i], &img_n[i]) == 0);
        for (int a = 0; a < N_ASK; a++) {
            hired_job j;
            hired_job_init(&j);
            hired_params *p = &par[i][a];
            *p = j.params;
            p->strategy = k->strategy;
            p->newline = k->newline;
            p->budget = k->budget;
            p->temperature = k_asks[a].temperature;
            p->top_p = k_asks[a].top_p;
            p->top_k = k_asks[a].top_k;
            p->max_tokens = k_asks[a].max_tokens;
            p->seed = k_asks[a].seed;
        }
        visual_t vis;
        if (!m || rt_encode(m, img[i], img_n[i], &par[i][0], WIRE_DTYPE_F32, &vis)) {
            CHECK(0);
            continue;
        }
        for (int a = 0; a < N_ASK; a++) {
            CHECK(rt_answer(m, &vis, k_asks[a].prompt, &par[i][a], NULL, expect[i][a], sizeof expect[i][a], NULL) == 0);
            CHECK_MSG(expect[i][a][0] != 0, "case %d/%d expects empty text", i, a);
        }
        visual_free(&vis);
    }
    rt_model_destroy(&m);

    hired_client_opts co = {.timeout_ms = 50000, .heartbeat_ms = 200};
    hired_client *c = hired_client_new(front, &co);
    CHECK(h_wait_workers(c, MODEL, 2, 2, 30000));

    static h_result r[N_JOBS];
    for (int i = 0; i < N_JOBS; i++) {
        int k = i % N_CASES, a = i / N_CASES;
        CHECK(rt_submit(c, MODEL, img[k], img_n[k], k_asks[a].prompt, &par[k][a], &r[i]) == 0);
    }
    CHECK_EQ_INT(h_collect(c, r, N_JOBS, 45000), N_JOBS);
    int good = 0;
    for (int i = 0; i < N_JOBS; i++) {
        int k = i % N_CASES, a = i / N_CASES;
        const char *want = expect[k][a];
        bool ok = r[i].final == HIRED_EVENT_DONE && r[i].accepted == 1 && r[i].gaps == 0 && r[i].dups == 0 &&
                  !strcmp(r[i].text, want) && !strcmp(r[i].done_text, want);
        bool timed = r[i].timings[HIRED_STAGE_VIT] >= 0 && r[i].timings[HIRED_STAGE_PREPROCESS] >= 0 &&
                     r[i].timings[HIRED_STAGE_SELECT] >= 0 && r[i].timings[HIRED_STAGE_TRANSFER] >= 0 &&
                     r[i].timings[HIRED_STAGE_PROJECT] >= 0 && r[i].timings[HIRED_STAGE_PREFILL] >= 0 &&
                     r[i].timings[HIRED_STAGE_DECODE] >= 0 && r[i].timings[HIRED_STAGE_TOTAL] > 0;
        if (!ok || !timed)
            fprintf(stderr, "job %d (case %d, question %d): final %d accepted %d gaps %d dups %d timings %d msg '%s'\n"
                            "  got  '%s'\n  want '%s'\n",
                    i, k, a, r[i].final, r[i].accepted, r[i].gaps, r[i].dups, timed, r[i].message, r[i].text, want);
        good += ok && timed;
    }
    CHECK_EQ_INT(good, N_JOBS);
    CHECK_EQ_INT(h_status_counter(c, "completed"), N_JOBS);
    hired_client_destroy(&c);
    for (int i = 0; i < N_CASES; i++) free(img[i]);
    CHECK_EQ_INT(rt_cleanup(), 0);
    return test_summary();
}
