/* generate.h — the text half of the pipeline: a conversation (system / user / assistant messages
 * with text and image parts) + the visual records of its images (visual.h, from the encode half
 * or the wire) + parameters → streamed text.
 *
 * Two stages, usable together (run.h, `hired run`) or apart (the decoder worker on what crossed
 * the wire):
 *   gen_prompt_build_chat
 *                     chat template (the checkpoint's own, see template.h, else a built-in) →
 *                     tokenize → the k-th <image> token gets visual k → projector on each
 *                     visual's kept features → pack each (unpad, newline policy) → merge, on the
 *                     device                                                       => gen_prompt_t
 *   gen_decode        KV cache sized prompt + max_tokens − 1 (capped by the context) → prefill
 *                     → sample / decode loop (gen_job_*); text streamed through a callback with
 *                     stop strings held back until they can no longer match.
 * Positions are 0..L−1 over the merged sequence (text tokens and image vectors alike).
 * Several images: each is packed on its own, as transformers does for a multi-image LLaVA
 * prompt. Text-only requests (no image part, no visual) need no visual at all.
 * Templates: gen_params_t.template_name NULL (or "checkpoint") uses the checkpoint's chat
 * template when its directory has one, else the built-in for the text model (chatml when the
 * vocabulary has <|im_start|>, llama3 when it has <|start_header_id|>, mistral for Mistral,
 * vicuna otherwise); any built-in name of template.h overrides.
 * Stopping: any EOS id (generation_config.json, else config.json; see hfconfig.h) unless masked
 * by min_tokens, max_tokens, a stop string found in the decoded text (the text before it is
 * emitted, the stop string and anything after is not), or the callback returning non-zero.
 * Errors name the numbers: no <image> in the prompt, a prompt longer than the context, an
 * unknown template, a model directory without tokenizer.json.
 * Threads: a gen_model_t is read-only once loaded and serves any number of job threads, each
 * with its own context (backend.h); a context's arena is reset by gen_prompt_build_chat and by
 * gen_job_open, and a job reserves its whole scratch when it opens, so its decode steps allocate
 * nothing. The tokens of a job do not depend on the thread count.
 * Not here: the vision half (encode.h), the broker and wire formats (the workers), the CLI. */
#ifndef HIRED_GENERATE_H
#define HIRED_GENERATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "hfconfig.h"
#include "llm.h"
#include "pack.h"
#include "sampler.h"
#include "template.h"
#include "tokenizer.h"
#include "visual.h"

typedef struct gen_model gen_model_t;

typedef struct {
    pack_newline_t newline;       /* hf | none */
    const char *template_name;    /* NULL or "checkpoint": the model's own (see above); else a built-in */
    int max_tokens;               /* new tokens, ≥ 1 */
    int min_tokens;               /* EOS is masked until this many were generated (HF min_new_tokens) */
    sampler_params_t sampling;    /* temperature 0: greedy */
    const char *const *stop;      /* NULL-terminated stop strings, or NULL */
} gen_params_t;

#define GEN_MAX_IMAGES 16

/* The merged prompt. ids and the layout are host memory; embeds is device memory. */
typedef struct {
    int32_t *ids;      /* [n_ids] tokenized prompt, one <image> per visual; owned */
    int n_ids;
    int image_pos;     /* position of the first <image> in ids, -1 for a text-only prompt */
    int n_images;      /* visuals merged */
    int *image_at;     /* [n_images] positions of the <image> tokens in ids; owned */
    int *image_len;    /* [n_images] packed vectors of each visual; owned */
    int n_image;       /* packed visual vectors in all (kept tokens + newlines) */
    int length;        /* n_ids − n_images + n_image */
    float *embeds;     /* [length, hidden], device memory; owned */
    k_device_t *dev;   /* where embeds lives */
} gen_prompt_t;

typedef enum { GEN_FINISH_NONE = 0, GEN_FINISH_EOS, GEN_FINISH_LENGTH, GEN_FINISH_STOP, GEN_FINISH_CALLBACK } gen_finish_t;

typedef struct {
    double ms_project, ms_prefill, ms_decode;
    int image_tokens;  /* packed visual vectors fed to the model (incl. newlines) */
    int prompt_tokens; /* merged prompt length */
    int generated;     /* tokens sampled (an EOS counts) */
    size_t kv_bytes;   /* KV cache allocated for the job */
    double ms_first;   /* gen_sched_run only: the call -> the first token drawn (queueing for KV
                          blocks, prefill and the steps in between included) */
    gen_finish_t finish;
} gen_stats_t;

/* Receives each piece of newly final text (len bytes, not NUL-terminated, may be empty) with the
 * token that completed it. Return non-zero to stop generation. */
typedef int (*gen_emit_fn)(void *user, const char *text, size_t len, int32_t token);

/* Defaults of `hired run`: newline hf, model's template, 256 new tokens, greedy, seed 0. */
void gen_params_default(gen_params_t *p);
const char *gen_finish_name(gen_finish_t f);

/* Loads the text half of a llava-hf model directory onto dev: config.json, tokenizer.json, the
 * chat template, the safetensors (mmapped; weights stay in their dtype), projector and
 * image_newline, text model — never the vision tower. Borrows dev. Caller owns the result
 * (gen_model_destroy). NULL with err filled (a missing tokenizer.json names the path). */
gen_model_t *gen_model_load(const char *dir, k_device_t *dev, char *err);
/* gen_model_load with the text model's linear layers held as wk (llm_load_as: LLM_WEIGHTS_Q8
 * quantises them to 8 bits at load, the CPU backend only; BF16 rounds them to bf16; AUTO picks). */
gen_model_t *gen_model_load_as(const char *dir, k_device_t *dev, llm_weights_t wk, char *err);
void gen_model_destroy(gen_model_t **m);
/* Benchmarks: config.json and tokenizer.json of dir, with a random text model of geometry tc
 * (its EOS ids and vocabulary must suit the tokenizer) held as wk (llm_new_random); no projector,
 * so prompts are built by the caller (gen_prompt_t.length and .embeds are all the decode reads). */
gen_model_t *gen_model_random_text(const char *dir, const hf_text_config_t *tc, k_device_t *dev, llm_weights_t wk,
                                   uint64_t seed, char *err);

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
int gen_render_chat(const gen_model_t *m, const tpl_message_t *msgs, int n_msgs, const gen_params_t *p, char **text,
                    char *err);
/* Renders and tokenizes only, checking the <image> placeholders against n_images and the text
 * against the context: the errors a request can have, found before any image is encoded. */
int gen_prompt_check(const gen_model_t *m, int n_images, const tpl_message_t *msgs, int n_msgs, const gen_params_t *p,
                     char *err);

/* Stage 1 for a conversation: msgs (borrowed) rendered and tokenized; vis[0..n_vis) (borrowed,
 * n_vis may be 0) projected, packed and merged at the <image> tokens in order, through ctx
 * (its arena is reset). Fills *out (caller owns: gen_prompt_free) and the project fields of st
 * (may be NULL). HIRED_EINVAL (unknown template, a template error, <image> tokens not matching
 * n_vis: "prompt has K <image> placeholders but the request carries N images"), HIRED_ERANGE
 * (prompt longer than the context: "prompt is L tokens (T text + I image), the model's context
 * is C"), HIRED_ENOMEM, or an op's failure. */
int gen_prompt_build_chat(const gen_model_t *m, k_ctx_t *ctx, const visual_t *vis, int n_vis, const tpl_message_t *msgs,
                          int n_msgs, const gen_params_t *p, gen_prompt_t *out, gen_stats_t *st, char *err);
/* The single-question conversation: a user message of [image, question] (just [question] when
 * it already holds "<image>", or for the raw template); *has_image says which. parts is its
 * storage. */
tpl_message_t gen_question_message(const char *question, const gen_params_t *p, tpl_part_t parts[2]);
/* Stage 1 for one question about one image, as gen_prompt_build_chat with n_vis = 1. */
int gen_prompt_build(const gen_model_t *m, k_ctx_t *ctx, const visual_t *vis, const char *question,
                     const gen_params_t *p, gen_prompt_t *out, gen_stats_t *st, char *err);
void gen_prompt_free(gen_prompt_t *pr);

// ---- stage 2: one job's decode, step by step ----------------------------------------------------

typedef struct gen_job gen_job_t;

/* Opens a decode job on ctx (its arena is reset and reserved for the whole job): KV cache sized
 * by gen_kv_positions, prefill of pr (borrowed until gen_job_close). When n_logit_rows > 0, the
 * prompt logits of the listed positions (ascending, in [0, length)) are written to prompt_logits
 * [n_logit_rows, vocab] (host; fidelity tests). Caller owns *out (gen_job_close). Fills the
 * prefill and kv fields of st (may be NULL). */
int gen_job_open(const gen_model_t *m, k_ctx_t *ctx, const gen_prompt_t *pr, const gen_params_t *p,
                 const int32_t *logit_rows, int n_logit_rows, float *prompt_logits, gen_job_t **out, gen_stats_t *st,
                 char *err);
/* The token of the next step, drawn from the current logits (EOS masked while fewer than
 * min_tokens were drawn; the job's seed and step number). */
int gen_job_sample(gen_job_t *j, int32_t *token, char *err);
/* Runs token at the next position, producing the logits the next gen_job_sample draws from.
 * HIRED_ERANGE when the cache is full. */
int gen_job_feed(gen_job_t *j, int32_t token, char *err);
/* Steps still possible: samples the job may draw (max_tokens, capped by the context). */
int gen_job_left(const gen_job_t *j);
/* Whether token is one of the job's EOS ids. */
bool gen_job_is_eos(const gen_job_t *j, int32_t token);
/* NULL-safe; sets *j = NULL. */
void gen_job_close(gen_job_t **j);

/* Stage 2 whole: gen_job_open, then sample / detokenise / emit / feed until a stop. Streams text
 * through emit (may be NULL). tokens (may be NULL) receives up to p->max_tokens sampled ids.
 * Fills the prefill/decode/kv/generated/finish fields of st (may be NULL). */
int gen_decode(const gen_model_t *m, k_ctx_t *ctx, const gen_prompt_t *pr, const gen_params_t *p, gen_emit_fn emit,
               void *user, int32_t *tokens, const int32_t *logit_rows, int n_logit_rows, float *prompt_logits,
               gen_stats_t *st, char *err);

/* KV-cache positions a job allocates for a prompt of length L: min(L + max_tokens − 1,
 * context), at least L. */
int gen_kv_positions(const gen_model_t *m, int length, int max_tokens);

#endif
