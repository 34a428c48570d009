/* run.c — both halves in one process (see run.h). */
#include "run.h"

#include <stdio.h>
#include <string.h>

#include "err.h"
#include "mem.h"

struct run_model {
    enc_model_t *enc;
    gen_model_t *txt;
};

void run_params_default(run_params_t *p) {
    enc_params_default(&p->enc);
    gen_params_default(&p->gen);
}

run_model_t *run_model_load(const char *dir, k_device_t *dev, char *err) {
    return run_model_load_as(dir, dev, LLM_WEIGHTS_NATIVE, err);
}

run_model_t *run_model_load_as(const char *dir, k_device_t *dev, llm_weights_t wk, char *err) {
    run_model_t *m = mem_calloc(1, sizeof *m);
    if (!m) {
        hired_errf(err, HIRED_ENOMEM, "out of memory");
        return NULL;
    }
    if (!(m->txt = gen_model_load_as(dir, dev, wk, err)) || !(m->enc = enc_model_load(dir, dev, err))) run_model_destroy(&m);
    return m;
}

void run_model_destroy(run_model_t **pm) {
    if (!pm || !*pm) return;
    enc_model_destroy(&(*pm)->enc);
    gen_model_destroy(&(*pm)->txt);
    mem_free(*pm);
    *pm = NULL;
}

const enc_model_t *run_model_encoder(const run_model_t *m) { return m->enc; }
gen_model_t *run_model_text(run_model_t *m) { return m->txt; }

static void add_stats(enc_stats_t *sum, const enc_stats_t *one) {
    sum->ms_decode_image += one->ms_decode_image;
    sum->ms_preprocess += one->ms_preprocess;
    sum->ms_vision += one->ms_vision;
    sum->ms_select += one->ms_select;
    sum->visual_total += one->visual_total;
    sum->visual_kept += one->visual_kept;
}

/* Encodes, builds and decodes, once the prompt is known to be acceptable. */
static int run_checked(run_model_t *m, k_ctx_t *ctx, const run_image_t *images, int n_images, const tpl_message_t *msgs,
                       int n_msgs, const run_params_t *p, gen_emit_fn emit, void *user, run_stats_t *st, char *err) {
    int rc = gen_prompt_check(m->txt, n_images, msgs, n_msgs, &p->gen, err);
    if (rc) return rc;
    visual_t vis[GEN_MAX_IMAGES];
    memset(vis, 0, sizeof vis);
    for (int i = 0; i < n_images && !rc; i++) {
        enc_stats_t one;
        rc = enc_run(m->enc, ctx, images[i].bytes, images[i].n, &p->enc, &vis[i], &one, NULL, err);
        if (rc && n_images > 1) {
            char why[HIRED_ERR_LEN];
            snprintf(why, sizeof why, "%s", err);
            hired_errf(err, rc, "image %d: %s", i + 1, why);
        }
        add_stats(&st->enc, &one);
    }
    gen_prompt_t pr;
    if (!rc) rc = gen_prompt_build_chat(m->txt, ctx, vis, n_images, msgs, n_msgs, &p->gen, &pr, &st->gen, err);
    for (int i = 0; i < n_images; i++) visual_free(&vis[i]);
    if (rc) return rc;
    rc = gen_decode(m->txt, ctx, &pr, &p->gen, emit, user, NULL, NULL, 0, NULL, &st->gen, err);
    gen_prompt_free(&pr);
    return rc;
}

int run_chat(run_model_t *m, k_ctx_t *ctx, const run_image_t *images, int n_images, const tpl_message_t *msgs,
             int n_msgs, const run_params_t *p, gen_emit_fn emit, void *user, run_stats_t *st, char *err) {
    run_stats_t dummy;
    if (!st) st = &dummy;
    memset(st, 0, sizeof *st);
    if (n_images < 0 || n_images > GEN_MAX_IMAGES || (n_images && !images))
        return hired_errf(err, HIRED_EINVAL, "%d images in one request (at most %d)", n_images, GEN_MAX_IMAGES);
    int parts = 0;
    for (int i = 0; i < n_msgs && msgs; i++)
        for (int k = 0; k < msgs[i].n_parts && msgs[i].parts; k++) parts += msgs[i].parts[k].kind == TPL_PART_IMAGE;
    if (parts != n_images)
        return hired_errf(err, HIRED_EINVAL, "the conversation has %d image part%s but the request carries %d image%s",
                          parts, parts == 1 ? "" : "s", n_images, n_images == 1 ? "" : "s");
    if (p->gen.max_tokens < 1) return hired_errf(err, HIRED_EINVAL, "max_tokens %d must be at least 1", p->gen.max_tokens);
    return run_checked(m, ctx, images, n_images, msgs, n_msgs, p, emit, user, st, err);
}

int run_question(run_model_t *m, k_ctx_t *ctx, const uint8_t *bytes, size_t n, const char *question,
                 const run_params_t *p, gen_emit_fn emit, void *user, run_stats_t *st, char *err) {
    if (!question) return hired_errf(err, HIRED_EINVAL, "no question");
    tpl_part_t parts[2];
    tpl_message_t msg = gen_question_message(question, &p->gen, parts);
    run_image_t img = {bytes, n};
    if (msg.n_parts == 2) return run_chat(m, ctx, &img, 1, &msg, 1, p, emit, user, st, err);
    /* the question holds its own <image>: one image all the same */
    run_stats_t dummy;
    if (!st) st = &dummy;
    memset(st, 0, sizeof *st);
    if (p->gen.max_tokens < 1) return hired_errf(err, HIRED_EINVAL, "max_tokens %d must be at least 1", p->gen.max_tokens);
    return run_checked(m, ctx, &img, 1, &msg, 1, p, emit, user, st, err);
}
