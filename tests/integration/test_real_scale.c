/* test_real_scale.c — 50 concurrent jobs through the real hired-broker, 2 hired-encoder and 2
 * hired-decoder processes on the tiny LLaVA-1.5 fixture model (one partition per image: the
 * tiny towers' 16 heads x 24 layers cost ~0.2 s per partition on one core, so the anyres model's
 * 3-5 partitions per image are exercised by test_real_faults / test_real_badinput instead, to
 * keep this test well under a minute under ASan on two cores): every job ends in DONE with
 * one ACCEPTED and gap-free token seqs, and its text equals what `hired run` computes in-process
 * for the same image, question, selection and seed (generate.h; the encoders ship float32 here,
 * so the decoder sees exactly the features `hired run` sees). Mixed strategies, budgets,
 * newline policies, greedy and seeded sampling; per-stage timings of both workers arrive. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "test_real_util.h"
#include "wire.h"

#define MODEL "llava15-tiny"
#define N_JOBS 50
#define N_CASES 10

typedef struct {
    const char *image, *prompt, *strategy, *newline;
    double budget, temperature, top_p;
    int top_k, max_tokens;
    uint64_t seed;
} case_t;

static const case_t k_cases[N_CASES] = {
    {"tiny.png", "What is in the picture?", "hired", "hf", 0.2, 0, 1, 0, 10, 0},
    {"coffee_wide.jpg", "Describe the cup.", "hired", "none", 0.5, 0, 1, 0, 10, 0},
    {"rocket_odd.jpg", "Where is the rocket?", "none", "hf", 1.0, 0, 1, 0, 8, 0},
    {"chelsea_rgba.png", "What animal is this?", "spatial", "hf", 0.25, 0, 1, 0, 10, 0},
    {"camera_gray.png", "Who holds the camera?", "prumerge", "hf", 0.2, 0, 1, 0, 10, 0},
    {"hubble_wide.jpg", "How many galaxies?", "prumerge+", "hf", 0.2, 0, 1, 0, 10, 0},
    {"astronaut_tall.jpg", "Is this a person?", "hired", "hf", 0.1, 0.8, 0.9, 50, 12, 7},
    {"retina_tall.jpg", "Describe it.", "hired", "hf", 0.3, 1.2, 1, 0, 12, 12345},
    {"tiny.png", "Tell a story.", "spatial", "none", 0.5, 0.7, 0.95, 20, 12, 99},
    {"coffee_wide.jpg", "Colours?", "none", "none", 1.0, 1.0, 1, 0, 9, 3},
};

int main(void) {
    /* one OpenMP thread per process: the tiny model's ops are far too small to split, and two
     * encoders, two decoders and this process share two cores */
    setenv("OMP_NUM_THREADS", "1", 1);
    h_init(58);
    char front[256], back[256];
    const char *bopts[] = {"--broker.heartbeat_ms=200", "--broker.liveness=5", NULL};
    h_broker(NULL, NULL, bopts, front, back);
    const char *dir = rt_model_dir(MODEL);
    const char *eopts[] = {"--encoder.wire_dtype=f32", "--worker.drain_ms=2000", NULL};
    const char *dopts[] = {"--decoder.capacity=2", "--worker.drain_ms=2000", NULL};
    rt_encoder(back, dir, eopts);
    rt_encoder(back, dir, eopts);
    rt_decoder(back, dir, dopts);
    rt_decoder(back, dir, dopts);

    /* the expected answers, in this process, while the workers load */
    char err[HIRED_ERR_LEN];
    gen_model_t *m = gen_model_load(dir, err);
    CHECK_MSG(m != NULL, "%s", err);
    static char expect[N_CASES][1024];
    static uint8_t *img[N_CASES];
    static size_t img_n[N_CASES];
    hired_params par[N_CASES];
    for (int i = 0; m && i < N_CASES; i++) {
        const case_t *k = &k_cases[i];
        hired_job j;
        hired_job_init(&j);
        par[i] = j.params;
        par[i].strategy = k->strategy;
        par[i].newline = k->newline;
        par[i].budget = k->budget;
        par[i].temperature = k->temperature;
        par[i].top_p = k->top_p;
        par[i].top_k = k->top_k;
        par[i].max_tokens = k->max_tokens;
        par[i].seed = k->seed;
        CHECK(rt_read(rt_image(k->image), &img[i], &img_n[i]) == 0);
        CHECK(rt_expect(m, img[i], img_n[i], k->prompt, &par[i], NULL, WIRE_DTYPE_F32, expect[i], sizeof expect[i], NULL) == 0);
        CHECK_MSG(expect[i][0] != 0, "case %d expects empty text", i);
    }
    gen_model_destroy(&m);

    hired_client_opts co = {.timeout_ms = 50000, .heartbeat_ms = 200};
    hired_client *c = hired_client_new(front, &co);
    CHECK(h_wait_workers(c, MODEL, 2, 2, 30000));

    static h_result r[N_JOBS];
    for (int i = 0; i < N_JOBS; i++) {
        int k = i % N_CASES;
        CHECK(rt_submit(c, MODEL, img[k], img_n[k], k_cases[k].prompt, &par[k], &r[i]) == 0);
    }
    CHECK_EQ_INT(h_collect(c, r, N_JOBS, 45000), N_JOBS);
    int good = 0;
    for (int i = 0; i < N_JOBS; i++) {
        int k = i % N_CASES;
        bool ok = r[i].final == HIRED_EVENT_DONE && r[i].accepted == 1 && r[i].gaps == 0 && r[i].dups == 0 &&
                  !strcmp(r[i].text, expect[k]) && !strcmp(r[i].done_text, expect[k]);
        bool timed = r[i].timings[HIRED_STAGE_VIT] >= 0 && r[i].timings[HIRED_STAGE_PREPROCESS] >= 0 &&
                     r[i].timings[HIRED_STAGE_SELECT] >= 0 && r[i].timings[HIRED_STAGE_TRANSFER] >= 0 &&
                     r[i].timings[HIRED_STAGE_PROJECT] >= 0 && r[i].timings[HIRED_STAGE_PREFILL] >= 0 &&
                     r[i].timings[HIRED_STAGE_DECODE] >= 0 && r[i].timings[HIRED_STAGE_TOTAL] > 0;
        if (!ok || !timed)
            fprintf(stderr, "job %d (case %d): final %d accepted %d gaps %d dups %d timings %d msg '%s'\n  got  '%s'\n  want '%s'\n",
                    i, k, r[i].final, r[i].accepted, r[i].gaps, r[i].dups, timed, r[i].message, r[i].text, expect[k]);
        good += ok && timed;
    }
    CHECK_EQ_INT(good, N_JOBS);
    CHECK_EQ_INT(h_status_counter(c, "completed"), N_JOBS);
    hired_client_destroy(&c);
    for (int i = 0; i < N_CASES; i++) free(img[i]);
    CHECK_EQ_INT(rt_cleanup(), 0);
    return test_summary();
}
