/* generate.h — the in-process pipeline: a conversation (system / user / assistant messages with
 * text and image parts) + its images + parameters → streamed text.
 *
 * Three stages, usable together (gen_run_chat / gen_run, `hired run`) or apart (the encoder
 * worker runs gen_encode per image, the decoder worker gen_prompt_build[_chat] + gen_decode on
 * what crossed the wire):
 *   gen_encode        decode one image → preprocess (anyres / CLIP) → vision tower (with the CLS
 *                     attention layers the strategy needs) → token selection   => gen_visual_t
 *   gen_prompt_build_chat
 *                     chat template (the checkpoint's own, see template.h, else a built-in) →
 *                     tokenize → the k-th <image> token gets visual k → projector on each
 *                     visual's kept features → pack each (unpad, newline policy) → merge
 *                                                                                 => gen_prompt_t
 *   gen_decode        KV cache sized prompt + max_tokens − 1 (capped by the context) → prefill
 *                     → sample / decode loop; text streamed through a callback with stop strings
 *                     held back until they can no longer match.
 * Positions are 0..L−1 over the merged sequence (text tokens and image vectors alike).
 * Several images: each goes through preprocessing, selection and packing on its own, as
 * transformers does for a multi-image LLaVA prompt; the selection budget r applies to each image
 * separately (an image of T visual tokens keeps what the strategy keeps of T at rate r, e.g.
 * HiRED int(T·r)), so a request's visual tokens are the sum over its images. Text-only requests
 * (no image part, no visual) skip the vision side entirely.
 * Templates: gen_params_t.template_name NULL (or "checkpoint") uses the checkpoint's chat
 * template when its directory has one, else the built-in for the text model (chatml when the
 * vocabulary has <|im_start|>, llama3 when it has <|start_header_id|>, mistral for Mistral,
 * vicuna otherwise); any built-in name of template.h overrides.
 * Stopping: any EOS id (generation_config.json, else config.json; see hfconfig.h) unless masked
 * by min_tokens, max_tokens, a stop string found in the decoded text (the text before it is
 * emitted, the stop string and anything after is not), or the callback returning non-zero.
 * Errors name the numbers: no <image> in the prompt, a prompt longer than the context, an
 * unknown template, a model directory without tokenizer.json.
 * Threads: a gen_model_t serves one job at a time (vision_encode takes the tower mutably); the
 * kernels inside use OpenMP, and the tokens of a job do not depend on the thread count.
 * Not here: the broker and wire formats (the workers), the CLI (client/cmd_run.c). */
#ifndef HIRED_GENERATE_H
#define HIRED_GENERATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hfconfig.h"
#include "llm.h"
#include "pack.h"
#include "preprocess.h"
#include "projector.h"
#include "sampler.h"
#include "select.h"
#include "tokenizer.h"
#include "vision.h"

typedef struct gen_model gen_model_t;

typedef struct {
    sel_opts_t sel;               /* strategy, budget r, alpha, split, spatial */
    pack_newline_t newline;       /* hf | none */
    prep_compat_t compat;         /* hf (default) | authors: the HiRED authors' 4.42 preprocessing
                                     and packing (preprocess.h, pack.h), to reproduce their numbers */
    const char *template_name;    /* NULL or "checkpoint": the model's own (see above); else a built-in */
    int max_tokens;               /* new tokens, ≥ 1 */
    int min_tokens;               /* EOS is masked until this many were generated (HF min_new_tokens) */
    sampler_params_t sampling;    /* temperature 0: greedy */
    const char *const *stop;      /* NULL-terminated stop strings, or NULL */
} gen_params_t;

#include "template.h"

#define GEN_MAX_IMAGES 16

/* One image of a request: its encoded bytes (JPEG, PNG, ...), borrowed. */
typedef struct {
    const uint8_t *bytes;
    size_t n;
} gen_image_t;

/* What gen_encode produces: the kept features and where they came from. */
typedef struct {
    sel_out_t sel;           /* kept features [k, d_vision] and positions; owned */
    sel_strategy_t strategy; /* PruMerge selections are packed by plain concatenation */
    int n, rows, cols;       /* partitions (1 + rows·cols for NeXT, 1 for LLaVA-1.5) */
    int orig_h, orig_w;      /* decoded image size */
    int grid;                /* patches per partition side */
    int total;               /* n · grid²: tokens before selection */
    prep_compat_t compat;    /* the preprocessing it went through; packing follows it */
} gen_visual_t;

/* The merged prompt. */
typedef struct {
    int32_t *ids;      /* [n_ids] tokenized prompt, one <image> per visual; owned */
    int n_ids;
    int image_pos;     /* position of the first <image> in ids, -1 for a text-only prompt */
    int n_images;      /* visuals merged */
    int *image_at;     /* [n_images] positions of the <image> tokens in ids; owned */
    int *image_len;    /* [n_images] packed vectors of each visual; owned */
    int n_image;       /* packed visual vectors in all (kept tokens + newlines) */
    int length;        /* n_ids − n_images + n_image */
    float *embeds;     /* [length, hidden]; owned */
} gen_prompt_t;

typedef enum { GEN_FINISH_NONE = 0, GEN_FINISH_EOS, GEN_FINISH_LENGTH, GEN_FINISH_STOP, GEN_FINISH_CALLBACK } gen_finish_t;

typedef struct {
    double ms_decode_image, ms_preprocess, ms_vision, ms_select, ms_project, ms_prefill, ms_decode;
    int visual_total;  /* tokens before selection */
    int visual_kept;   /* tokens the selection kept */
    int image_tokens;  /* packed visual vectors fed to the model (incl. newlines) */
    int prompt_tokens; /* merged prompt length */
    int generated;     /* tokens sampled (an EOS counts) */
    size_t kv_bytes;   /* KV cache allocated for the job */
    gen_finish_t finish;
} gen_stats_t;

/* Receives each piece of newly final text (len bytes, not NUL-terminated, may be empty) with the
 * token that completed it. Return non-zero to stop generation. */
typedef int (*gen_emit_fn)(void *user, const char *text, size_t len, int32_t token);

/* Defaults of `hired run`: hired r = 0.2, alpha 0.5, reference split, newline hf, model's
 * template, 256 new tokens, greedy, seed 0. */
void gen_params_default(gen_params_t *p);
const char *gen_finish_name(gen_finish_t f);

/* Loads everything a job needs from a llava-hf model directory: config.json,
 * preprocessor_config.json, tokenizer.json, the safetensors (mmapped; weights stay in their
 * dtype), vision tower, projector, text model. Caller owns the result (gen_model_destroy). NULL
 * with err filled (a missing tokenizer.json names the path). */
gen_model_t *gen_model_load(const char *dir, char *err);
void gen_model_destroy(gen_model_t **m);

/* Borrowed parts, valid until gen_model_destroy. */
const hf_config_t *gen_model_config(const gen_model_t *m);
const tok_t *gen_model_tokenizer(const gen_model_t *m);
llm_t *gen_model_llm(gen_model_t *m);
/* The template a request without template_name gets: "checkpoint" when the model directory
 * has a chat template, else the built-in name (see above). Static storage. */
const char *gen_model_default_template(const gen_model_t *m);
/* The checkpoint's chat template, or NULL. Borrowed, valid until gen_model_destroy. */
const tpl_t *gen_model_chat_template(const gen_model_t *m);

/* Renders the conversation with the template p selects (add_generation_prompt). Caller owns
 * *text (mem_free). HIRED_EINVAL (unknown template, a template error), HIRED_ENOMEM. */
int gen_render_chat(gen_model_t *m, const tpl_message_t *msgs, int n_msgs, const gen_params_t *p, char **text,
                    char *err);

/* Stage 1 on n bytes of an encoded image. Fills *out (caller owns: gen_visual_free) and the
 * decode-image/preprocess/vision/select fields of st (may be NULL). 0 or HIRED_E* with err. */
int gen_encode(gen_model_t *m, const uint8_t *bytes, size_t n, const sel_opts_t *sel, gen_visual_t *out,
               gen_stats_t *st, char *err);
/* The same with the compatibility mode (gen_encode is PREP_COMPAT_HF); out->compat records it. */
int gen_encode_compat(gen_model_t *m, const uint8_t *bytes, size_t n, const sel_opts_t *sel, prep_compat_t compat,
                      gen_visual_t *out, gen_stats_t *st, char *err);
/* A visual holding the tokens of `all` (every token kept, strategy none) at positions keep[0..k)
 * in that order (e.g. a kept list computed elsewhere). Caller owns *out (gen_visual_free).
 * HIRED_EINVAL when a position is not in all. */
int gen_visual_subset(const gen_visual_t *all, const sel_pos_t *keep, int k, gen_visual_t *out, char *err);
/* Frees and zeroes. Accepts a zeroed visual. */
void gen_visual_free(gen_visual_t *v);

/* Stage 2 for a conversation: msgs (borrowed) rendered and tokenized; vis[0..n_vis) (borrowed,
 * n_vis may be 0) are packed and merged at the <image> tokens in order. Fills *out (caller
 * owns: gen_prompt_free) and the project field of st (may be NULL). HIRED_EINVAL (unknown
 * template, a template error, <image> tokens not matching n_vis: "prompt has K <image>
 * placeholders but the request carries N images"), HIRED_ERANGE (prompt longer than the
 * context: "prompt is L tokens (T text + I image), the model's context is C"), HIRED_ENOMEM. */
int gen_prompt_build_chat(gen_model_t *m, const gen_visual_t *vis, int n_vis, const tpl_message_t *msgs, int n_msgs,
                          const gen_params_t *p, gen_prompt_t *out, gen_stats_t *st, char *err);

/* Stage 2 for one question about one image: a user message of [image, question] (just
 * [question] when it already holds "<image>", or for the raw template), as
 * gen_prompt_build_chat with n_vis = 1. */
int gen_prompt_build(gen_model_t *m, const gen_visual_t *vis, const char *question, const gen_params_t *p,
                     gen_prompt_t *out, gen_stats_t *st, char *err);
void gen_prompt_free(gen_prompt_t *pr);

/* Stage 3. Streams text through emit (may be NULL). tokens (may be NULL) receives up to
 * p->max_tokens sampled ids. When n_logit_rows > 0, the prompt logits of the listed positions
 * (ascending, in [0, length)) are written to prompt_logits [n_logit_rows, vocab] (fidelity
 * tests). Fills the prefill/decode/kv/generated/finish fields of st (may be NULL). */
int gen_decode(gen_model_t *m, const gen_prompt_t *pr, const gen_params_t *p, gen_emit_fn emit, void *user,
               int32_t *tokens, const int32_t *logit_rows, int n_logit_rows, float *prompt_logits, gen_stats_t *st,
               char *err);

/* All three stages for one question about one image. st (may be NULL) receives every field. */
int gen_run(gen_model_t *m, const uint8_t *bytes, size_t n, const char *question, const gen_params_t *p,
            gen_emit_fn emit, void *user, gen_stats_t *st, char *err);

/* All three stages for a conversation: the image parts of msgs, in order, are images[0..
 * n_images) (borrowed; counts must agree, at most GEN_MAX_IMAGES; 0 for a text-only request).
 * The prompt is checked (template, placeholders, context) before any image is decoded. st (may
 * be NULL) receives every field, the visual counts and stage times summed over the images. */
int gen_run_chat(gen_model_t *m, const gen_image_t *images, int n_images, const tpl_message_t *msgs, int n_msgs,
                 const gen_params_t *p, gen_emit_fn emit, void *user, gen_stats_t *st, char *err);

/* KV-cache positions gen_decode allocates for a prompt of length L: min(L + max_tokens − 1,
 * context), at least L. */
int gen_kv_positions(const gen_model_t *m, int length, int max_tokens);

#endif
