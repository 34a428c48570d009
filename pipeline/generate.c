/* generate.c — see generate.h. Loading the text half (with the checkpoint's chat template),
 * the merged prompt built on the device, the decode job step by step, and the stop-string
 * filter that sits between the streaming detokeniser and the caller's callback. */
#include "generate.h"
#include "gen_text.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "err.h"
#include "gather.h"
#include "log.h"
#include "mem.h"
#include "projector.h"
#include "st.h"

struct gen_model {
    hf_config_t cfg;
    k_device_t *dev;           /* borrowed */
    st_model_t *st;
    tok_t *tok;
    tpl_t *tpl;                /* the checkpoint's chat template, or NULL */
    tpl_t *fallback;           /* the built-in used when there is none */
    const char *fallback_name;
    projector_t *proj;
    llm_t *llm;
};

void gen_params_default(gen_params_t *p) {
    memset(p, 0, sizeof *p);
    p->newline = PACK_NEWLINE_HF;
    p->max_tokens = 256;
}

const char *gen_finish_name(gen_finish_t f) {
    static const char *names[] = {"none", "eos", "length", "stop", "callback"};
    return (unsigned)f < ARRAY_LEN(names) ? names[f] : "?";
}

// ---- model ---------------------------------------------------------------------------------------

/* A model with dir's config and tokenizer (what every text model here starts from), or NULL with
 * err; *rc is 0, or the error when a model was allocated but its config or tokenizer failed. */
static gen_model_t *model_begin(const char *dir, k_device_t *dev, int *rc, char *err) {
    gen_model_t *m = mem_calloc(1, sizeof *m);
    if (!m) {
        hired_errf(err, HIRED_ENOMEM, "out of memory");
        return NULL;
    }
    m->dev = dev;
    *rc = hf_config_load(dir, &m->cfg, err);
    if (!*rc && !(m->tok = tok_load(dir, err))) *rc = HIRED_ENOTFOUND;
    return m;
}

gen_model_t *gen_model_load(const char *dir, k_device_t *dev, char *err) {
    return gen_model_load_as(dir, dev, LLM_WEIGHTS_NATIVE, err);
}

gen_model_t *gen_model_load_as(const char *dir, k_device_t *dev, llm_weights_t wk, char *err) {
    int rc;
    gen_model_t *m = model_begin(dir, dev, &rc, err);
    if (!m) return NULL;
    if (!rc) rc = tpl_load(dir, &m->tpl, err);
    if (!rc) {
        m->fallback_name = tok_id(m->tok, "<|im_start|>") >= 0          ? "chatml"
                           : tok_id(m->tok, "<|start_header_id|>") >= 0 ? "llama3"
                           : m->cfg.text.kind == HF_TEXT_MISTRAL        ? "mistral"
                                                                        : "vicuna";
        if (!(m->fallback = tpl_builtin(m->fallback_name, err))) rc = HIRED_ENOMEM;
    }
    if (!rc) rc = st_model_open_rc(dir, &m->st, err);
    if (!rc && !(m->proj = projector_load(m->st, &m->cfg, dev, err))) rc = HIRED_ENOTFOUND;
    if (!rc && !(m->llm = llm_load_as(m->st, &m->cfg.text, dev, wk, err))) rc = HIRED_ENOTFOUND;
    if (rc) gen_model_destroy(&m);
    return m;
}

gen_model_t *gen_model_random_text(const char *dir, const hf_text_config_t *tc, k_device_t *dev, llm_weights_t wk,
                                   uint64_t seed, char *err) {
    int rc;
    gen_model_t *m = model_begin(dir, dev, &rc, err);
    if (!m) return NULL;
    if (!rc) {
        m->fallback_name = "vicuna";
        if (!(m->fallback = tpl_builtin(m->fallback_name, err))) rc = HIRED_ENOMEM;
    }
    if (!rc) {
        m->cfg.text = *tc;
        if (!(m->llm = llm_new_random(&m->cfg.text, dev, wk, seed, err))) rc = HIRED_ENOMEM;
    }
    if (rc) gen_model_destroy(&m);
    return m;
}

void gen_model_destroy(gen_model_t **pm) {
    if (!pm || !*pm) return;
    gen_model_t *m = *pm;
    llm_destroy(&m->llm);
    projector_destroy(&m->proj);
    tok_destroy(&m->tok);
    tpl_destroy(&m->tpl);
    tpl_destroy(&m->fallback);
    st_model_close(&m->st);
    mem_free(m);
    *pm = NULL;
}

const hf_config_t *gen_model_config(const gen_model_t *m) { return &m->cfg; }
const tok_t *gen_model_tokenizer(const gen_model_t *m) { return m->tok; }
llm_t *gen_model_llm(gen_model_t *m) { return m->llm; }
const char *gen_model_default_template(const gen_model_t *m) { return m->tpl ? "checkpoint" : m->fallback_name; }
const tpl_t *gen_model_chat_template(const gen_model_t *m) { return m->tpl; }

/* The template p asks for: *owned is set (and must be destroyed) for a built-in by name. */
static const tpl_t *pick_template(const gen_model_t *m, const gen_params_t *p, tpl_t **owned, char *err) {
    *owned = NULL;
    const char *name = p->template_name;
    if (!name || !strcmp(name, "checkpoint")) {
        if (m->tpl) return m->tpl;
        if (name) {
            hired_errf(err, HIRED_EINVAL, "template \"checkpoint\": the model directory has no chat template");
            return NULL;
        }
        return m->fallback;
    }
    return *owned = tpl_builtin(name, err);
}

int gen_render_chat(const gen_model_t *m, const tpl_message_t *msgs, int n_msgs, const gen_params_t *p, char **text,
                    char *err) {
    *text = NULL;
    tpl_t *owned;
    const tpl_t *t = pick_template(m, p, &owned, err);
    if (!t) return strstr(err, "out of memory") ? HIRED_ENOMEM : HIRED_EINVAL;
    int rc = tpl_render_chat(t, msgs, n_msgs, true, text, err);
    tpl_destroy(&owned);
    return rc;
}

tpl_message_t gen_question_message(const char *question, const gen_params_t *p, tpl_part_t parts[2]) {
    bool image = !(p->template_name && !strcmp(p->template_name, "raw")) && !strstr(question, TPL_IMAGE);
    parts[0] = (tpl_part_t){TPL_PART_IMAGE, NULL};
    parts[1] = (tpl_part_t){TPL_PART_TEXT, question};
    return (tpl_message_t){"user", image ? parts : parts + 1, image ? 2 : 1};
}

// ---- stage 1: the merged prompt --------------------------------------------------------------------

void gen_prompt_free(gen_prompt_t *pr) {
    if (!pr) return;
    mem_free(pr->ids);
    mem_free(pr->image_at);
    mem_free(pr->image_len);
    if (pr->dev) k_device_free(pr->dev, pr->embeds);
    memset(pr, 0, sizeof *pr);
}

/* Renders and tokenizes the conversation; checks the <image> tokens against n_vis and the text
 * against the context. Fills out->ids, n_ids, image_at (positions), n_images. */
static int tokenize_chat(const gen_model_t *m, int n_vis, const tpl_message_t *msgs, int n_msgs, const gen_params_t *p,
                         gen_prompt_t *out, char *err) {
    char *text = NULL;
    int rc = gen_render_chat(m, msgs, n_msgs, p, &text, err);
    if (!rc) rc = tok_encode(m->tok, text, true, &out->ids, &out->n_ids, err);
    mem_free(text);
    if (rc) return rc;
    int count = 0;
    out->image_at = mem_alloc((size_t)(n_vis > 0 ? n_vis : 1) * sizeof *out->image_at);
    if (!out->image_at) return hired_errf(err, HIRED_ENOMEM, "out of memory");
    tpl_image_positions(out->ids, out->n_ids, m->cfg.image_token_id, out->image_at, n_vis, &count);
    if (count != n_vis) {
        if (count == 0)
            return hired_errf(err, HIRED_EINVAL, "prompt has no " TPL_IMAGE " placeholder but the request carries %d image%s",
                              n_vis, n_vis == 1 ? "" : "s");
        return hired_errf(err, HIRED_EINVAL, "prompt has %d " TPL_IMAGE " placeholder%s but the request carries %d image%s",
                          count, count == 1 ? "" : "s", n_vis, n_vis == 1 ? "" : "s");
    }
    out->n_images = n_vis;
    out->image_pos = n_vis ? out->image_at[0] : -1;
    if (out->n_ids - n_vis > m->cfg.text.max_pos)
        return hired_errf(err, HIRED_ERANGE, "prompt text alone is %d tokens, the model's context is %d", out->n_ids - n_vis,
                          m->cfg.text.max_pos);
    return HIRED_OK;
}

/* Where each kept token of one visual goes (slots, *n_slots of them). Caller frees *slots. */
static int layout_visual(const gen_model_t *m, const visual_t *vis, const gen_params_t *p, int32_t **slots,
                         int *n_slots, char *err) {
    /* LLaVA-1.5 and merged tokens (PruMerge: summary tokens have no grid position) concatenate;
     * LLaVA-NeXT unpads and places newlines per the policy */
    const bool concat = m->cfg.kind == HF_MODEL_LLAVA || vis->merged;
    pack_geom_t geom = {.n = vis->n, .rows = vis->rows, .cols = vis->cols, .orig_h = vis->orig_h,
                        .orig_w = vis->orig_w, .grid = vis->grid, .authors = vis->authors};
    *slots = mem_alloc((size_t)pack_max_slots(&geom, vis->k) * sizeof **slots);
    if (!*slots) return hired_errf(err, HIRED_ENOMEM, "out of memory");
    int rc = pack_layout(&geom, vis->pos, vis->k, concat ? PACK_MODE_CONCAT : PACK_MODE_NEXT, p->newline, *slots,
                         n_slots, err);
    for (int i = 0; !rc && i < *n_slots; i++)
        if ((*slots)[i] == PACK_SLOT_NEWLINE && !projector_newline(m->proj))
            rc = hired_errf(err, HIRED_EINVAL, "newline policy hf needs image_newline, which the model lacks");
    return rc;
}

int gen_prompt_check(const gen_model_t *m, int n_images, const tpl_message_t *msgs, int n_msgs, const gen_params_t *p,
                     char *err) {
    gen_prompt_t pr = {0};
    int rc = tokenize_chat(m, n_images, msgs, n_msgs, p, &pr, err);
    gen_prompt_free(&pr);
    return rc;
}

/* One visual's packed vectors into dst [len, D] (device): its features go up, through the
 * projector, the newline after the projected rows, then one gather by the layout's rows. */
static int place_visual(const gen_model_t *m, k_ctx_t *ctx, const visual_t *vis, const int32_t *slots, int len,
                        float *dst, char *err) {
    const int D = m->cfg.text.hidden, k = vis->k, d_in = vis->d;
    const float *newline = projector_newline(m->proj);
    const size_t mark = k_ctx_mark(ctx);
    float *feats = k_ctx_alloc(ctx, (size_t)(k > 0 ? k : 1) * d_in * sizeof(float)); /* [k, d_in] */
    float *proj = k_ctx_alloc(ctx, (size_t)(k + 1) * D * sizeof(float));             /* [k + 1, D] */
    int32_t *rows = mem_alloc((size_t)(len > 0 ? len : 1) * sizeof *rows);           /* [len], host */
    int32_t *rows_dev = k_ctx_alloc(ctx, (size_t)(len > 0 ? len : 1) * sizeof *rows); /* [len] */
    int rc = feats && proj && rows && rows_dev ? HIRED_OK : HIRED_ENOMEM;
    if (rc) {
        hired_errf(err, rc, "out of memory projecting %d visual tokens", k);
    } else {
        pack_source_rows(slots, len, k, rows);
        rc = k_ctx_upload(ctx, feats, vis->features, (size_t)k * d_in * sizeof(float));
        if (!rc) rc = projector_apply(m->proj, ctx, feats, k, proj, err);
        else k_ctx_report(ctx, rc, err, "uploading visual features");
        if (!rc && newline && (rc = k_ctx_copy(ctx, proj + (size_t)k * D, newline, (size_t)D * sizeof(float))))
            k_ctx_report(ctx, rc, err, "image_newline");
        k_gather_args g = {.n = len, .d = D, .x = proj, .idx = rows_dev, .y = dst};
        if (!rc && len > 0) {
            rc = k_ctx_upload(ctx, rows_dev, rows, (size_t)len * sizeof *rows);
            if (!rc) rc = k_gather(ctx, &g);
            if (rc) k_ctx_report(ctx, rc, err, "packing");
        }
    }
    mem_free(rows);
    k_ctx_release(ctx, mark);
    return rc;
}

int gen_prompt_build_chat(const gen_model_t *m, k_ctx_t *ctx, const visual_t *vis, int n_vis, const tpl_message_t *msgs,
                          int n_msgs, const gen_params_t *p, gen_prompt_t *out, gen_stats_t *st, char *err) {
    memset(out, 0, sizeof *out);
    const int D = m->cfg.text.hidden;
    if (n_vis < 0 || n_vis > GEN_MAX_IMAGES || (n_vis && !vis))
        return hired_errf(err, HIRED_EINVAL, "%d images in one request (at most %d)", n_vis, GEN_MAX_IMAGES);
    const int g = m->cfg.vision.image_size / m->cfg.vision.patch_size;
    const bool next = m->cfg.kind == HF_MODEL_LLAVA_NEXT;
    for (int v = 0; v < n_vis; v++) {
        const visual_t *x = &vis[v];
        if (x->k > 0 && x->d != projector_d_in(m->proj))
            return hired_errf(err, HIRED_EINVAL, "visual features are %d wide, the projector takes %d", x->d,
                              projector_d_in(m->proj));
        if (x->k > 0 && x->grid != g)
            return hired_errf(err, HIRED_EINVAL, "features come from a %dx%d patch grid, this model's is %dx%d", x->grid,
                              x->grid, g, g);
        if (x->k > 0 && (next ? x->n != 1 && x->n != 1 + x->rows * x->cols : x->n != 1))
            return hired_errf(err, HIRED_EINVAL, "%d partitions (grid %dx%d) do not fit a %s model", x->n, x->rows,
                              x->cols, next ? "llava-next" : "llava-1.5");
    }
    int32_t *slots[GEN_MAX_IMAGES] = {0};
    int rc = tokenize_chat(m, n_vis, msgs, n_msgs, p, out, err);
    if (!rc && !(out->image_len = mem_calloc((size_t)(n_vis > 0 ? n_vis : 1), sizeof *out->image_len)))
        rc = hired_errf(err, HIRED_ENOMEM, "out of memory");
    for (int v = 0; !rc && v < n_vis; v++) {
        rc = layout_visual(m, &vis[v], p, &slots[v], &out->image_len[v], err);
        if (!rc) out->n_image += out->image_len[v];
    }
    if (rc) goto done;
    out->length = out->n_ids - n_vis + out->n_image;
    if (out->length > m->cfg.text.max_pos) {
        rc = hired_errf(err, HIRED_ERANGE, "prompt is %d tokens (%d text + %d image), the model's context is %d",
                        out->length, out->n_ids - n_vis, out->n_image, m->cfg.text.max_pos);
        goto done;
    }

    /* text | packed image 0 | text | packed image 1 | ... | text */
    double t0 = clock_ms();
    k_ctx_reset(ctx);
    out->dev = m->dev;
    out->embeds = k_device_alloc(m->dev, (size_t)out->length * D * sizeof(float)); /* [length, D] */
    if (!out->embeds) {
        rc = hired_errf(err, HIRED_ENOMEM, "out of memory for a %d-token prompt", out->length);
        goto done;
    }
    int id_at = 0; /* next text id */
    float *dst = out->embeds;
    for (int v = 0; v <= n_vis && !rc; v++) {
        int end = v < n_vis ? out->image_at[v] : out->n_ids; /* text ids [id_at, end) */
        if (end > id_at) rc = llm_embed(m->llm, ctx, out->ids + id_at, end - id_at, dst, err);
        dst += (size_t)(end - id_at) * D;
        if (rc || v == n_vis) break;
        rc = place_visual(m, ctx, &vis[v], slots[v], out->image_len[v], dst, err);
        dst += (size_t)out->image_len[v] * D;
        id_at = end + 1;
    }
    if (st) {
        st->ms_project = clock_ms() - t0;
        st->image_tokens = out->n_image;
        st->prompt_tokens = out->length;
    }
done:
    for (int v = 0; v < n_vis; v++) mem_free(slots[v]);
    if (rc) gen_prompt_free(out);
    return rc;
}

int gen_prompt_build(const gen_model_t *m, k_ctx_t *ctx, const visual_t *vis, const char *question,
                     const gen_params_t *p, gen_prompt_t *out, gen_stats_t *st, char *err) {
    memset(out, 0, sizeof *out);
    if (!question) return hired_errf(err, HIRED_EINVAL, "no question");
    tpl_part_t parts[2];
    tpl_message_t msg = gen_question_message(question, p, parts);
    return gen_prompt_build_chat(m, ctx, vis, 1, &msg, 1, p, out, st, err);
}

// ---- stage 2: the decode job ------------------------------------------------------------------------

int gen_kv_positions(const gen_model_t *m, int length, int max_tokens) {
    long long want = (long long)length + (max_tokens > 1 ? max_tokens - 1 : 0);
    if (want > m->cfg.text.max_pos) want = m->cfg.text.max_pos;
    if (want < length) want = length;
    return (int)want;
}

struct gen_job {
    const gen_model_t *m;
    k_ctx_t *ctx;
    gen_params_t p;
    kv_cache_t *kv;
    sampler_t *smp;
    float *cur;        /* [vocab] device (arena): the logits the next token is drawn from */
    float *host;       /* [vocab] host copy of cur */
    float *emb;        /* [hidden] device (arena): the fed token's embedding */
    int32_t *eos_dev;  /* [n_mask] device (arena): the EOS ids inside the vocabulary */
    int32_t eos[HF_MAX_EOS + 1];
    int n_eos, n_mask;
    int step, max_new;
};

void gen_job_close(gen_job_t **pj) {
    if (!pj || !*pj) return;
    gen_job_t *j = *pj;
    kv_cache_destroy(&j->kv);
    sampler_destroy(&j->smp);
    mem_free_aligned(j->host);
    mem_free(j);
    *pj = NULL;
}

/* Arena bytes of an allocation of n (the arena hands out multiples of 64). */
static size_t arena_round(size_t n) { return (n ? n + 63 : 64) / 64 * 64; }

/* The job's arena: logits rows, embedding row, EOS ids, and the larger of a prefill and a
 * decode step at the cache's full length. */
static size_t job_arena_bytes(const gen_job_t *j, int length, int logit_rows) {
    const hf_text_config_t *tc = &j->m->cfg.text;
    const int cap = kv_cache_cap(j->kv);
    size_t pre = llm_arena_bytes(j->m->llm, j->ctx, length, cap), step = llm_arena_bytes(j->m->llm, j->ctx, 1, cap);
    return arena_round((size_t)logit_rows * tc->vocab * sizeof(float)) + arena_round((size_t)tc->hidden * sizeof(float)) +
           arena_round(HF_MAX_EOS * sizeof(int32_t)) + (pre > step ? pre : step) + 4096;
}

int gen_job_open(const gen_model_t *m, k_ctx_t *ctx, const gen_prompt_t *pr, const gen_params_t *p,
                 const int32_t *logit_rows, int n_logit_rows, float *prompt_logits, gen_job_t **out, gen_stats_t *st,
                 char *err) {
    *out = NULL;
    gen_stats_t dummy;
    if (!st) st = &dummy;
    const hf_text_config_t *tc = &m->cfg.text;
    const int V = tc->vocab, L = pr->length;
    if (p->max_tokens < 1) return hired_errf(err, HIRED_EINVAL, "max_tokens %d must be at least 1", p->max_tokens);
    if (L < 1 || L > tc->max_pos)
        return hired_errf(err, HIRED_ERANGE, "prompt is %d tokens, the model's context is %d", L, tc->max_pos);
    const int cap = gen_kv_positions(m, L, p->max_tokens); /* KV positions actually needed */
    if (tc->sliding_window > 0 && cap > tc->sliding_window)
        return hired_errf(err, HIRED_EUNSUPPORTED, "%d positions exceed the sliding window of %d (not implemented)",
                          cap, tc->sliding_window);
    gen_job_t *j = mem_calloc(1, sizeof *j);
    if (!j) return hired_errf(err, HIRED_ENOMEM, "out of memory");
    *j = (gen_job_t){.m = m, .ctx = ctx, .p = *p, .max_new = p->max_tokens < cap - L + 1 ? p->max_tokens : cap - L + 1};
    for (int i = 0; i < tc->n_eos; i++) j->eos[j->n_eos++] = tc->eos_ids[i];
    if (!j->n_eos && tok_eos(m->tok) >= 0) j->eos[j->n_eos++] = tok_eos(m->tok);
    int32_t mask[HF_MAX_EOS + 1]; /* the EOS ids min_tokens masks: those inside the vocabulary */
    for (int e = 0; e < j->n_eos; e++)
        if (j->eos[e] >= 0 && j->eos[e] < V) mask[j->n_mask++] = j->eos[e];

    char kerr[HIRED_ERR_LEN];
    int rc = HIRED_OK;
    int nr = 0; /* prefill: the wanted prompt rows plus the last one */
    int32_t *rows = mem_alloc((size_t)(n_logit_rows > 0 ? n_logit_rows + 1 : 1) * sizeof *rows); /* host */
    if (!rows) {
        rc = hired_errf(err, HIRED_ENOMEM, "out of memory");
        goto fail;
    }
    for (int i = 0; i < n_logit_rows; i++) rows[nr++] = logit_rows[i];
    if (!nr || rows[nr - 1] != L - 1) rows[nr++] = L - 1;
    if (!(j->kv = llm_kv_new(m->llm, cap, kerr))) {
        rc = hired_errf(err, HIRED_ENOMEM, "%s", kerr);
        goto fail;
    }
    j->smp = sampler_new(k_ctx_host(ctx), V);
    j->host = mem_alloc_aligned((size_t)V * sizeof(float));
    k_ctx_reset(ctx);
    if (!j->smp || !j->host || k_ctx_reserve(ctx, job_arena_bytes(j, L, nr))) {
        rc = hired_errf(err, HIRED_ENOMEM, "out of memory");
        goto fail;
    }
    float *lbuf = k_ctx_alloc(ctx, (size_t)nr * V * sizeof(float)); /* [nr, V] */
    j->emb = k_ctx_alloc(ctx, (size_t)tc->hidden * sizeof(float));
    j->eos_dev = k_ctx_alloc(ctx, HF_MAX_EOS * sizeof(int32_t));
    if (!lbuf || !j->emb || !j->eos_dev) {
        rc = hired_errf(err, HIRED_ENOMEM, "out of memory");
        goto fail;
    }
    st->kv_bytes = kv_cache_bytes(j->kv);
    st->prompt_tokens = L;
    if ((rc = k_ctx_upload(ctx, j->eos_dev, mask, (size_t)j->n_mask * sizeof(int32_t)))) {
        k_ctx_report(ctx, rc, err, "EOS ids");
        goto fail;
    }
    double t0 = clock_ms();
    rc = llm_forward_rows(m->llm, ctx, j->kv, pr->embeds, L, rows, nr, lbuf, err);
    st->ms_prefill = clock_ms() - t0;
    if (!rc && n_logit_rows > 0 &&
        (rc = k_ctx_download(ctx, prompt_logits, lbuf, (size_t)n_logit_rows * V * sizeof(float))))
        k_ctx_report(ctx, rc, err, "prompt logits");
    if (rc) goto fail;
    j->cur = lbuf + (size_t)(nr - 1) * V;
    mem_free(rows);
    *out = j;
    return HIRED_OK;
fail:
    mem_free(rows);
    gen_job_close(&j);
    return rc;
}

int gen_job_sample(gen_job_t *j, int32_t *token, char *err) {
    const int V = j->m->cfg.text.vocab;
    int rc = HIRED_OK;
    if (j->step < j->p.min_tokens && j->n_mask > 0) { /* HF min_new_tokens */
        k_mask_args mk = {.n = j->n_mask, .idx = j->eos_dev, .len = V, .value = -INFINITY, .y = j->cur};
        rc = k_mask(j->ctx, &mk);
    }
    if (!rc) rc = k_ctx_download(j->ctx, j->host, j->cur, (size_t)V * sizeof(float));
    if (!rc) rc = sampler_sample(j->smp, &j->p.sampling, j->host, (uint64_t)j->step, token);
    if (rc) return k_ctx_report(j->ctx, rc, err, "sampling");
    j->step++;
    return HIRED_OK;
}

int gen_job_feed(gen_job_t *j, int32_t token, char *err) {
    int rc = llm_embed(j->m->llm, j->ctx, &token, 1, j->emb, err);
    return rc ? rc : llm_forward(j->m->llm, j->ctx, j->kv, j->emb, 1, LLM_LOGITS_LAST, j->cur, err);
}

int gen_job_left(const gen_job_t *j) { return j->max_new - j->step; }

bool gen_job_is_eos(const gen_job_t *j, int32_t token) {
    for (int e = 0; e < j->n_eos; e++)
        if (token == j->eos[e]) return true;
    return false;
}

int gen_text_append(gen_text_t *o, const char *s, size_t n) {
    if (o->len + n + 1 > o->cap) {
        size_t cap = (o->cap ? o->cap * 2 : 256);
        while (cap < o->len + n + 1) cap *= 2;
        char *b = mem_realloc(o->buf, cap);
        if (!b) return HIRED_ENOMEM;
        o->buf = b;
        o->cap = cap;
    }
    memcpy(o->buf + o->len, s, n);
    o->len += n;
    o->buf[o->len] = 0;
    return HIRED_OK;
}

static void text_emit(gen_text_t *o, size_t upto, int32_t token) {
    if (upto > o->sent && o->emit && !o->cancelled) {
        if (o->emit(o->user, o->buf + o->sent, upto - o->sent, token)) o->cancelled = true;
    }
    if (upto > o->sent) o->sent = upto;
}

/* After new text: emit what can no longer be part of a stop string; at_end emits the rest. */
void gen_text_flush(gen_text_t *o, int32_t token, bool at_end) {
    size_t hold = 0;
    for (size_t i = 0; o->stop && o->stop[i]; i++) {
        size_t sl = strlen(o->stop[i]);
        if (!sl) continue;
        const char *hit = memmem(o->buf + o->sent, o->len - o->sent, o->stop[i], sl);
        if (hit) {
            o->len = (size_t)(hit - o->buf); /* later stop strings search only before it: earliest wins */
            o->stopped = true;
        }
    }
    if (o->stopped) {
        text_emit(o, o->len, token);
        return;
    }
    if (!at_end)
        for (size_t i = 0; o->stop && o->stop[i]; i++) {
            size_t sl = strlen(o->stop[i]);
            for (size_t kk = sl > 0 ? sl - 1 : 0; kk > hold; kk--)
                if (kk <= o->len - o->sent && !memcmp(o->buf + o->len - kk, o->stop[i], kk)) {
                    hold = kk;
                    break;
                }
        }
    text_emit(o, o->len - hold, token);
}

int gen_decode(const gen_model_t *m, k_ctx_t *ctx, const gen_prompt_t *pr, const gen_params_t *p, gen_emit_fn emit,
               void *user, int32_t *tokens, const int32_t *logit_rows, int n_logit_rows, float *prompt_logits,
               gen_stats_t *st, char *err) {
    gen_stats_t dummy;
    if (!st) st = &dummy;
    gen_job_t *j = NULL;
    int rc = gen_job_open(m, ctx, pr, p, logit_rows, n_logit_rows, prompt_logits, &j, st, err);
    if (rc) return rc;
    tok_stream_t *ts = tok_stream_new(m->tok, true);
    gen_text_t txt = {.stop = p->stop, .emit = emit, .user = user};
    if (!ts) {
        rc = hired_errf(err, HIRED_ENOMEM, "out of memory");
        goto done;
    }
    /* step s draws from the logits after position L−1+s with the job's seed and step number,
     * streams the token's text, then runs that token at position L+s. The last token drawn is
     * never run (its keys would not be read), hence the L + max_tokens − 1 cache. */
    const double t1 = clock_ms();
    st->finish = GEN_FINISH_LENGTH;
    st->generated = 0;
    while (gen_job_left(j) > 0) {
        int32_t t;
        if ((rc = gen_job_sample(j, &t, err))) goto done;
        if (tokens) tokens[st->generated] = t;
        st->generated++;
        if (gen_job_is_eos(j, t)) {
            st->finish = GEN_FINISH_EOS;
            break;
        }
        size_t n = 0;
        const char *piece = tok_stream_feed(ts, t, &n);
        if (!piece || gen_text_append(&txt, piece, n)) {
            rc = hired_errf(err, HIRED_ENOMEM, "out of memory while detokenising");
            goto done;
        }
        gen_text_flush(&txt, t, false);
        if (txt.stopped || txt.cancelled || gen_job_left(j) == 0) break;
        if ((rc = gen_job_feed(j, t, err))) goto done;
    }
    /* bytes the stream decoder held back (an unfinished UTF-8 run) and any held stop-string prefix */
    if (!txt.stopped && !txt.cancelled) {
        size_t n = 0;
        const char *rest = tok_stream_finish(ts, &n);
        if (!rest || gen_text_append(&txt, rest, n)) {
            rc = hired_errf(err, HIRED_ENOMEM, "out of memory while detokenising");
            goto done;
        }
        gen_text_flush(&txt, -1, true);
    }
    if (txt.stopped) st->finish = GEN_FINISH_STOP;
    else if (txt.cancelled) st->finish = GEN_FINISH_CALLBACK;
    st->ms_decode = clock_ms() - t1;
done:
    gen_job_close(&j);
    tok_stream_destroy(&ts);
    mem_free(txt.buf);
    return rc;
}
