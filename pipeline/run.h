/* run.h — both halves of the pipeline in one process (`hired run`, the tests): a model directory
 * loaded as its vision half (encode.h) and its text half (generate.h) on one device, and a
 * request run end to end: images encoded, the prompt built, the answer decoded and streamed.
 *
 * The prompt is checked (template, <image> placeholders, context) before any image is decoded.
 * Several images: each is encoded and packed on its own; the selection budget r applies to each
 * image separately, so a request's visual tokens are the sum over its images.
 * Not here: the halves themselves, the CLI (client/cmd_run.c). */
#ifndef HIRED_RUN_H
#define HIRED_RUN_H

#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "encode.h"
#include "generate.h"

typedef struct run_model run_model_t;

typedef struct {
    enc_params_t enc; /* selection, preprocessing compatibility, pixel limit */
    gen_params_t gen; /* newline, template, token limits, sampling, stop strings */
} run_params_t;

typedef struct {
    enc_stats_t enc; /* summed over the images */
    gen_stats_t gen;
} run_stats_t;

/* One image of a request: its encoded bytes (JPEG, PNG, ...), borrowed. */
typedef struct {
    const uint8_t *bytes;
    size_t n;
} run_image_t;

/* Defaults of `hired run`: enc_params_default and gen_params_default. */
void run_params_default(run_params_t *p);

/* Loads both halves of the model directory onto dev (borrowed). Caller owns the result
 * (run_model_destroy). NULL with err filled. */
run_model_t *run_model_load(const char *dir, k_device_t *dev, char *err);
/* The same with the text model's linear layers held as wk (gen_model_load_as). */
run_model_t *run_model_load_as(const char *dir, k_device_t *dev, llm_weights_t wk, char *err);
void run_model_destroy(run_model_t **m);
/* The halves. Borrowed, valid until run_model_destroy. */
const enc_model_t *run_model_encoder(const run_model_t *m);
gen_model_t *run_model_text(run_model_t *m);

/* A conversation: the image parts of msgs, in order, are images[0..n_images) (borrowed; counts
 * must agree, at most GEN_MAX_IMAGES; 0 for a text-only request). st (may be NULL) receives
 * every field, the visual counts and stage times summed over the images. */
int run_chat(run_model_t *m, k_ctx_t *ctx, const run_image_t *images, int n_images, const tpl_message_t *msgs,
             int n_msgs, const run_params_t *p, gen_emit_fn emit, void *user, run_stats_t *st, char *err);
/* One question about one image (gen_question_message; a question that holds its own <image>
 * still gets the image). */
int run_question(run_model_t *m, k_ctx_t *ctx, const uint8_t *bytes, size_t n, const char *question,
                 const run_params_t *p, gen_emit_fn emit, void *user, run_stats_t *st, char *err);

#endif
