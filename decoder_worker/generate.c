/* generate.c — see generate.h. Model loading (with the checkpoint's chat template), the three
 * stages for conversations of any number of images, and the stop-string filter that sits between
 * the streaming detokeniser and the caller's callback. */
#include "generate.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "err.h"
#include "image.h"
#include "log.h"
#include "mem.h"
#include "preprocess.h"
#include "st.h"
#include "template.h"

struct gen_model {
    hf_config_t cfg;
    hf_preproc_t pp;
    st_model_t *st;
    tok_t *tok;
    tpl_t *tpl;                /* the checkpoint's chat template, or NULL */
    tpl_t *fallback;           /* the built-in used when there is none */
    const char *fallback_name;
    vision_t *vision;
    projector_t *proj;
    llm_t *llm;
    int alloc_layer, select_layer; /* HiRED: CLS attention layers (0 and the feature block) */
    int pm_layer;                  /* PruMerge: the last encoder layer, or -1 when not loaded */
};

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

void gen_params_default(gen_params_t *p) {
    memset(p, 0, sizeof *p);
    p->sel = (sel_opts_t){.strategy = SEL_HIRED, .budget = 0.2, .alpha = 0.5, .split = SEL_SPLIT_REFERENCE};
    p->newline = PACK_NEWLINE_HF;
    p->max_tokens = 256;
}

const char *gen_finish_name(gen_finish_t f) {
    static const char *names[] = {"none", "eos", "length", "stop", "callback"};
    return (unsigned)f < ARRAY_LEN(names) ? names[f] : "?";
}

// ---- model ---------------------------------------------------------------------------------------

gen_model_t *gen_model_load(const char *dir, char *err) {
    gen_model_t *m = mem_calloc(1, sizeof *m);
    if (!m) {
        hired_errf(err, HIRED_ENOMEM, "out of memory");
        return NULL;
    }
    int rc = hf_config_load(dir, &m->cfg, err);
    if (!rc) rc = hf_preproc_load(dir, &m->pp, err);
    if (!rc && !(m->tok = tok_load(dir, err))) rc = HIRED_ENOTFOUND;
    if (!rc) rc = tpl_load(dir, &m->tpl, err);
    if (!rc) {
        m->fallback_name = tok_id(m->tok, "<|im_start|>") >= 0          ? "chatml"
                           : tok_id(m->tok, "<|start_header_id|>") >= 0 ? "llama3"
                           : m->cfg.text.kind == HF_TEXT_MISTRAL        ? "mistral"
                                                                        : "vicuna";
        if (!(m->fallback = tpl_builtin(m->fallback_name, err))) rc = HIRED_ENOMEM;
    }
    if (!rc) rc = st_model_open_rc(dir, &m->st, err);
    if (!rc) {
        /* every layer, so PruMerge's last-layer attention is available; else up to the feature layer */
        m->pm_layer = m->cfg.vision.layers - 1;
        if (!(m->vision = vision_load(m->st, &m->cfg, m->pm_layer, err))) {
            m->pm_layer = -1;
            if (!(m->vision = vision_load(m->st, &m->cfg, -1, err))) rc = HIRED_ENOTFOUND;
        }
    }
    if (!rc && !(m->proj = projector_load(m->st, &m->cfg, err))) rc = HIRED_ENOTFOUND;
    if (!rc && !(m->llm = llm_load(m->st, &m->cfg.text, err))) rc = HIRED_ENOTFOUND;
    if (rc) {
        gen_model_destroy(&m);
        return NULL;
    }
    m->alloc_layer = 0;
    m->select_layer = vision_feature_hidden_index(m->vision) - 1;
    return m;
}

void gen_model_destroy(gen_model_t **pm) {
    if (!pm || !*pm) return;
    gen_model_t *m = *pm;
    llm_destroy(&m->llm);
    projector_destroy(&m->proj);
    vision_destroy(&m->vision);
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
static const tpl_t *pick_template(gen_model_t *m, const gen_params_t *p, tpl_t **owned, char *err) {
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

int gen_render_chat(gen_model_t *m, const tpl_message_t *msgs, int n_msgs, const gen_params_t *p, char **text,
                    char *err) {
    *text = NULL;
    tpl_t *owned;
    const tpl_t *t = pick_template(m, p, &owned, err);
    if (!t) return strstr(err, "out of memory") ? HIRED_ENOMEM : HIRED_EINVAL;
    int rc = tpl_render_chat(t, msgs, n_msgs, true, text, err);
    tpl_destroy(&owned);
    return rc;
}

/* The single-question conversation of gen_prompt_build / gen_run (storage in parts). */
static tpl_message_t question_message(const char *question, const gen_params_t *p, tpl_part_t parts[2]) {
    bool image = !(p->template_name && !strcmp(p->template_name, "raw")) && !strstr(question, TPL_IMAGE);
    parts[0] = (tpl_part_t){TPL_PART_IMAGE, NULL};
    parts[1] = (tpl_part_t){TPL_PART_TEXT, question};
    return (tpl_message_t){"user", image ? parts : parts + 1, image ? 2 : 1};
}

// ---- stage 1: image → kept features ---------------------------------------------------------------

int gen_encode(gen_model_t *m, const uint8_t *bytes, size_t n, const sel_opts_t *sel, gen_visual_t *out,
               gen_stats_t *st, char *err) {
    return gen_encode_compat(m, bytes, n, sel, PREP_COMPAT_HF, out, st, err);
}

int gen_encode_compat(gen_model_t *m, const uint8_t *bytes, size_t n, const sel_opts_t *sel, prep_compat_t compat,
                      gen_visual_t *out, gen_stats_t *st, char *err) {
    memset(out, 0, sizeof *out);
    gen_stats_t dummy;
    if (!st) st = &dummy;
    image_t img = {0};
    prep_out_t prep = {0};
    vision_out_t vout = {0};
    double t0 = now_ms();
    int rc = image_decode(bytes, n, 0, &img, err);
    double t1 = now_ms();
    st->ms_decode_image = t1 - t0;
    if (rc) goto done;
    rc = prep_for_model_compat(&img, &m->cfg, &m->pp, compat, &prep, err);
    double t2 = now_ms();
    st->ms_preprocess = t2 - t1;
    if (rc) goto done;

    vision_opts_t vo = {0};
    if (sel->strategy == SEL_HIRED) {
        vo.n_attn_layers = 2;
        vo.attn_layers[0] = m->alloc_layer;
        vo.attn_layers[1] = m->select_layer;
    } else if (sel->strategy == SEL_PRUMERGE || sel->strategy == SEL_PRUMERGE_PLUS) {
        if (m->pm_layer < 0) {
            rc = hired_errf(err, HIRED_EUNSUPPORTED, "%s needs the last vision layer, which the checkpoint lacks",
                            sel_strategy_name(sel->strategy));
            goto done;
        }
        vo.want_pm = true;
        vo.pm_layer = m->pm_layer;
    }
    rc = vision_encode(m->vision, prep.pixels, prep.n, &vo, &vout, err);
    double t3 = now_ms();
    st->ms_vision = t3 - t2;
    if (rc) goto done;

    const int P = vout.n_patches, g = m->cfg.vision.image_size / m->cfg.vision.patch_size;
    sel_input_t in = {.n = prep.n, .rows = prep.rows, .cols = prep.cols, .orig_h = prep.orig_h,
                      .orig_w = prep.orig_w, .image_size = m->cfg.vision.image_size, .grid = g, .d = vout.d,
                      .features = vout.features, .pm_attn = vout.pm_attn, .pm_keys = vout.pm_keys};
    if (vo.n_attn_layers == 2) {
        in.alloc_attn = vout.cls_attn;
        in.select_attn = vout.cls_attn + (size_t)prep.n * P;
    }
    rc = sel_run(sel, &in, &out->sel, err);
    st->ms_select = now_ms() - t3;
    if (rc) goto done;
    out->strategy = sel->strategy;
    out->compat = compat;
    out->n = prep.n;
    out->rows = prep.rows;
    out->cols = prep.cols;
    out->orig_h = prep.orig_h;
    out->orig_w = prep.orig_w;
    out->grid = g;
    out->total = prep.n * P;
    st->visual_total = out->total;
    st->visual_kept = out->sel.k;
done:
    vision_out_free(&vout);
    prep_free(&prep);
    image_free(&img);
    return rc;
}

int gen_visual_subset(const gen_visual_t *all, const sel_pos_t *keep, int k, gen_visual_t *out, char *err) {
    memset(out, 0, sizeof *out);
    const int g = all->grid, P = g * g, d = all->sel.d;
    if (all->sel.k != all->total || P <= 0)
        return hired_errf(err, HIRED_EINVAL, "visual subset: the source must hold every token (%d of %d)", all->sel.k,
                          all->total);
    /* index of every (part, row, col) in the source */
    int32_t *where = mem_alloc((size_t)all->total * sizeof *where);
    if (!where) return hired_errf(err, HIRED_ENOMEM, "out of memory");
    for (int i = 0; i < all->total; i++) where[i] = -1;
    for (int i = 0; i < all->sel.k; i++) {
        const sel_pos_t *p = &all->sel.pos[i];
        if (p->part >= 0 && p->part < all->n && p->row >= 0 && p->row < g && p->col >= 0 && p->col < g)
            where[p->part * P + p->row * g + p->col] = i;
    }
    *out = *all;
    memset(&out->sel, 0, sizeof out->sel);
    out->sel.features = mem_alloc_aligned((size_t)(k > 0 ? k : 1) * d * sizeof(float));
    out->sel.pos = mem_alloc((size_t)(k > 0 ? k : 1) * sizeof *out->sel.pos);
    int rc = out->sel.features && out->sel.pos ? HIRED_OK : hired_errf(err, HIRED_ENOMEM, "out of memory");
    out->sel.d = d;
    out->sel.n = all->n;
    for (int i = 0; !rc && i < k; i++) {
        const sel_pos_t *p = &keep[i];
        int src = p->part >= 0 && p->part < all->n && p->row >= 0 && p->row < g && p->col >= 0 && p->col < g
                      ? where[p->part * P + p->row * g + p->col]
                      : -1;
        if (src < 0) {
            rc = hired_errf(err, HIRED_EINVAL, "visual subset: position (%d, %d, %d) is not in the source", p->part,
                            p->row, p->col);
            break;
        }
        memcpy(out->sel.features + (size_t)i * d, all->sel.features + (size_t)src * d, (size_t)d * sizeof(float));
        out->sel.pos[i] = *p;
        out->sel.per_part[p->part]++;
        out->sel.k++;
    }
    out->sel.budget_total = out->sel.k;
    mem_free(where);
    if (rc) gen_visual_free(out);
    return rc;
}

void gen_visual_free(gen_visual_t *v) {
    if (!v) return;
    sel_out_free(&v->sel);
    memset(v, 0, sizeof *v);
}

// ---- stage 2: the merged prompt --------------------------------------------------------------------

void gen_prompt_free(gen_prompt_t *pr) {
    if (!pr) return;
    mem_free(pr->ids);
    mem_free(pr->image_at);
    mem_free(pr->image_len);
    mem_free_aligned(pr->embeds);
    memset(pr, 0, sizeof *pr);
}

/* Renders and tokenizes the conversation; checks the <image> tokens against n_vis and the text
 * against the context. Fills out->ids, n_ids, image_at (positions), n_images. */
static int tokenize_chat(gen_model_t *m, int n_vis, const tpl_message_t *msgs, int n_msgs, const gen_params_t *p,
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
static int layout_visual(gen_model_t *m, const gen_visual_t *vis, const gen_params_t *p, int32_t **slots, int *n_slots,
                         char *err) {
    /* LLaVA-1.5 and PruMerge (summary tokens have no grid position) concatenate; LLaVA-NeXT
     * unpads and places newlines per the policy */
    const bool concat = m->cfg.kind == HF_MODEL_LLAVA || vis->strategy == SEL_PRUMERGE ||
                        vis->strategy == SEL_PRUMERGE_PLUS;
    pack_geom_t geom = {.n = vis->n, .rows = vis->rows, .cols = vis->cols, .orig_h = vis->orig_h,
                        .orig_w = vis->orig_w, .grid = vis->grid, .authors = vis->compat == PREP_COMPAT_AUTHORS};
    *slots = mem_alloc((size_t)pack_max_slots(&geom, vis->sel.k) * sizeof **slots);
    if (!*slots) return hired_errf(err, HIRED_ENOMEM, "out of memory");
    int rc = pack_layout(&geom, vis->sel.pos, vis->sel.k, concat ? PACK_MODE_CONCAT : PACK_MODE_NEXT, p->newline, *slots,
                         n_slots, err);
    for (int i = 0; !rc && i < *n_slots; i++)
        if ((*slots)[i] == PACK_SLOT_NEWLINE && !projector_newline(m->proj))
            rc = hired_errf(err, HIRED_EINVAL, "newline policy hf needs image_newline, which the model lacks");
    return rc;
}

int gen_prompt_build_chat(gen_model_t *m, const gen_visual_t *vis, int n_vis, const tpl_message_t *msgs, int n_msgs,
                          const gen_params_t *p, gen_prompt_t *out, gen_stats_t *st, char *err) {
    memset(out, 0, sizeof *out);
    const int D = m->cfg.text.hidden;
    if (n_vis < 0 || n_vis > GEN_MAX_IMAGES || (n_vis && !vis))
        return hired_errf(err, HIRED_EINVAL, "%d images in one request (at most %d)", n_vis, GEN_MAX_IMAGES);
    for (int v = 0; v < n_vis; v++)
        if (vis[v].sel.k > 0 && vis[v].sel.d != projector_d_in(m->proj))
            return hired_errf(err, HIRED_EINVAL, "visual features are %d wide, the projector takes %d", vis[v].sel.d,
                              projector_d_in(m->proj));
    int32_t *slots[GEN_MAX_IMAGES] = {0};
    float *proj = NULL;
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
    double t0 = now_ms();
    out->embeds = mem_alloc_aligned((size_t)out->length * D * sizeof(float));
    if (!out->embeds) {
        rc = hired_errf(err, HIRED_ENOMEM, "out of memory for a %d-token prompt", out->length);
        goto done;
    }
    int id_at = 0; /* next text id */
    float *dst = out->embeds;
    for (int v = 0; v <= n_vis && !rc; v++) {
        int end = v < n_vis ? out->image_at[v] : out->n_ids; /* text ids [id_at, end) */
        if (end > id_at) rc = llm_embed(m->llm, out->ids + id_at, end - id_at, dst, err);
        dst += (size_t)(end - id_at) * D;
        if (rc || v == n_vis) break;
        const int k = vis[v].sel.k;
        proj = mem_alloc_aligned((size_t)(k > 0 ? k : 1) * D * sizeof(float));
        if (!proj) {
            rc = hired_errf(err, HIRED_ENOMEM, "out of memory projecting %d visual tokens", k);
            break;
        }
        rc = projector_apply(m->proj, vis[v].sel.features, k, proj, err);
        if (!rc) pack_gather(slots[v], out->image_len[v], proj, projector_newline(m->proj), D, dst);
        dst += (size_t)out->image_len[v] * D;
        mem_free_aligned(proj);
        proj = NULL;
        id_at = end + 1;
    }
    if (st) {
        st->ms_project = now_ms() - t0;
        st->image_tokens = out->n_image;
        st->prompt_tokens = out->length;
    }
done:
    for (int v = 0; v < n_vis; v++) mem_free(slots[v]);
    mem_free_aligned(proj);
    if (rc) gen_prompt_free(out);
    return rc;
}

int gen_prompt_build(gen_model_t *m, const gen_visual_t *vis, const char *question, const gen_params_t *p,
                     gen_prompt_t *out, gen_stats_t *st, char *err) {
    memset(out, 0, sizeof *out);
    if (!question) return hired_errf(err, HIRED_EINVAL, "no question");
    tpl_part_t parts[2];
    tpl_message_t msg = question_message(question, p, parts);
    return gen_prompt_build_chat(m, vis, 1, &msg, 1, p, out, st, err);
}

// ---- stage 3: prefill and decode -------------------------------------------------------------------

/* Decoded answer text, with everything that might still become a stop string held back. */
typedef struct {
    char *buf;
    size_t len, cap, sent;
    const char *const *stop;
    gen_emit_fn emit;
    void *user;
    bool stopped;   /* a stop string was found */
    bool cancelled; /* the callback asked to stop */
} text_out_t;

static int text_append(text_out_t *o, const char *s, size_t n) {
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

static void text_emit(text_out_t *o, size_t upto, int32_t token) {
    if (upto > o->sent && o->emit && !o->cancelled) {
        if (o->emit(o->user, o->buf + o->sent, upto - o->sent, token)) o->cancelled = true;
    }
    if (upto > o->sent) o->sent = upto;
}

/* After new text: emit what can no longer be part of a stop string; at_end emits the rest. */
static void text_flush(text_out_t *o, int32_t token, bool at_end) {
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

int gen_kv_positions(const gen_model_t *m, int length, int max_tokens) {
    long long want = (long long)length + (max_tokens > 1 ? max_tokens - 1 : 0);
    if (want > m->cfg.text.max_pos) want = m->cfg.text.max_pos;
    if (want < length) want = length;
    return (int)want;
}

int gen_decode(gen_model_t *m, const gen_prompt_t *pr, const gen_params_t *p, gen_emit_fn emit, void *user,
               int32_t *tokens, const int32_t *logit_rows, int n_logit_rows, float *prompt_logits, gen_stats_t *st,
               char *err) {
    gen_stats_t dummy;
    if (!st) st = &dummy;
    const hf_text_config_t *tc = &m->cfg.text;
    const int V = tc->vocab, D = tc->hidden, L = pr->length;
    if (p->max_tokens < 1) return hired_errf(err, HIRED_EINVAL, "max_tokens %d must be at least 1", p->max_tokens);
    if (L < 1 || L > tc->max_pos)
        return hired_errf(err, HIRED_ERANGE, "prompt is %d tokens, the model's context is %d", L, tc->max_pos);
    const int cap = gen_kv_positions(m, L, p->max_tokens); /* KV positions actually needed */
    if (tc->sliding_window > 0 && cap > tc->sliding_window)
        return hired_errf(err, HIRED_EUNSUPPORTED, "%d positions exceed the sliding window of %d (not implemented)",
                          cap, tc->sliding_window);
    const int max_new = p->max_tokens < cap - L + 1 ? p->max_tokens : cap - L + 1; /* context-capped */
    int32_t eos[HF_MAX_EOS];
    int n_eos = 0;
    for (int i = 0; i < tc->n_eos; i++) eos[n_eos++] = tc->eos_ids[i];
    if (!n_eos && tok_eos(m->tok) >= 0) eos[n_eos++] = tok_eos(m->tok);

    int rc = HIRED_OK;
    char kerr[HIRED_ERR_LEN];
    kv_cache_t *kv = llm_kv_new(m->llm, cap, kerr);
    sampler_t *smp = sampler_new(V);
    tok_stream_t *ts = tok_stream_new(m->tok, true);
    int32_t *rows = mem_alloc((size_t)(n_logit_rows + 1) * sizeof *rows);
    float *lbuf = mem_alloc_aligned((size_t)(n_logit_rows + 1) * V * sizeof(float)); /* [rows, V] */
    float *emb = mem_alloc_aligned((size_t)D * sizeof(float));
    text_out_t txt = {.stop = p->stop, .emit = emit, .user = user};
    if (!kv) {
        rc = hired_errf(err, HIRED_ENOMEM, "%s", kerr);
        goto done;
    }
    if (!smp || !ts || !rows || !lbuf || !emb) {
        rc = hired_errf(err, HIRED_ENOMEM, "out of memory");
        goto done;
    }
    st->kv_bytes = kv_cache_bytes(kv);
    st->prompt_tokens = L;

    /* prefill: the wanted prompt rows plus the last one */
    int nr = 0;
    for (int i = 0; i < n_logit_rows; i++) rows[nr++] = logit_rows[i];
    if (!nr || rows[nr - 1] != L - 1) rows[nr++] = L - 1;
    double t0 = now_ms();
    rc = llm_forward_rows(m->llm, kv, pr->embeds, L, rows, nr, lbuf, err);
    double t1 = now_ms();
    st->ms_prefill = t1 - t0;
    if (rc) goto done;
    if (n_logit_rows > 0) memcpy(prompt_logits, lbuf, (size_t)n_logit_rows * V * sizeof(float));
    float *cur = lbuf; /* [V]: the logits the next token is drawn from */
    memmove(cur, lbuf + (size_t)(nr - 1) * V, (size_t)V * sizeof(float));

    /* decode loop: step s draws from cur (the logits after position L−1+s) with the job's seed and
     * step number, streams the token's text, then runs that token at position L+s. The last
     * token drawn is never run (its keys would not be read), hence the L + max_tokens − 1 cache. */
    st->finish = GEN_FINISH_LENGTH;
    st->generated = 0;
    for (int step = 0; step < max_new; step++) {
        for (int e = 0; step < p->min_tokens && e < n_eos; e++) /* HF min_new_tokens */
            if (eos[e] >= 0 && eos[e] < V) cur[eos[e]] = -INFINITY;
        int32_t t = sampler_sample(smp, &p->sampling, cur, (uint64_t)step);
        if (tokens) tokens[step] = t;
        st->generated++;
        bool is_eos = false;
        for (int e = 0; e < n_eos; e++) is_eos = is_eos || t == eos[e];
        if (is_eos) {
            st->finish = GEN_FINISH_EOS;
            break;
        }
        size_t n = 0;
        const char *piece = tok_stream_feed(ts, t, &n);
        if (!piece || text_append(&txt, piece, n)) {
            rc = hired_errf(err, HIRED_ENOMEM, "out of memory while detokenising");
            goto done;
        }
        text_flush(&txt, t, false);
        if (txt.stopped || txt.cancelled) break;
        if (step + 1 == max_new) break;
        rc = llm_embed(m->llm, &t, 1, emb, err);
        if (!rc) rc = llm_forward(m->llm, kv, emb, 1, LLM_LOGITS_LAST, cur, err);
        if (rc) goto done;
    }
    /* bytes the stream decoder held back (an unfinished UTF-8 run) and any held stop-string prefix */
    if (!txt.stopped && !txt.cancelled) {
        size_t n = 0;
        const char *rest = tok_stream_finish(ts, &n);
        if (!rest || text_append(&txt, rest, n)) {
            rc = hired_errf(err, HIRED_ENOMEM, "out of memory while detokenising");
            goto done;
        }
        text_flush(&txt, -1, true);
    }
    if (txt.stopped) st->finish = GEN_FINISH_STOP;
    else if (txt.cancelled) st->finish = GEN_FINISH_CALLBACK;
    st->ms_decode = now_ms() - t1;
done:
    kv_cache_destroy(&kv);
    sampler_destroy(&smp);
    tok_stream_destroy(&ts);
    mem_free(rows);
    mem_free_aligned(lbuf);
    mem_free_aligned(emb);
    mem_free(txt.buf);
    return rc;
}

/* The prompt errors a user can make, found before the vision tower runs: unknown template, a
 * template error, <image> placeholders not matching the images, text alone longer than the
 * context. */
static int prompt_precheck(gen_model_t *m, int n_images, const tpl_message_t *msgs, int n_msgs, const gen_params_t *p,
                           char *err) {
    gen_prompt_t pr = {0};
    int rc = tokenize_chat(m, n_images, msgs, n_msgs, p, &pr, err);
    gen_prompt_free(&pr);
    return rc;
}

static void add_stats(gen_stats_t *sum, const gen_stats_t *one) {
    sum->ms_decode_image += one->ms_decode_image;
    sum->ms_preprocess += one->ms_preprocess;
    sum->ms_vision += one->ms_vision;
    sum->ms_select += one->ms_select;
    sum->visual_total += one->visual_total;
    sum->visual_kept += one->visual_kept;
}

int gen_run_chat(gen_model_t *m, const gen_image_t *images, int n_images, const tpl_message_t *msgs, int n_msgs,
                 const gen_params_t *p, gen_emit_fn emit, void *user, gen_stats_t *st, char *err) {
    gen_stats_t dummy;
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
    if (p->max_tokens < 1) return hired_errf(err, HIRED_EINVAL, "max_tokens %d must be at least 1", p->max_tokens);
    int rc = prompt_precheck(m, n_images, msgs, n_msgs, p, err);
    if (rc) return rc;
    gen_visual_t vis[GEN_MAX_IMAGES];
    memset(vis, 0, sizeof vis);
    for (int i = 0; i < n_images && !rc; i++) {
        gen_stats_t one = {0};
        rc = gen_encode_compat(m, images[i].bytes, images[i].n, &p->sel, p->compat, &vis[i], &one, err);
        if (rc && n_images > 1) {
            char why[HIRED_ERR_LEN];
            snprintf(why, sizeof why, "%s", err);
            hired_errf(err, rc, "image %d: %s", i + 1, why);
        }
        add_stats(st, &one);
    }
    gen_prompt_t pr;
    if (!rc) rc = gen_prompt_build_chat(m, vis, n_images, msgs, n_msgs, p, &pr, st, err);
    for (int i = 0; i < n_images; i++) gen_visual_free(&vis[i]);
    if (rc) return rc;
    rc = gen_decode(m, &pr, p, emit, user, NULL, NULL, 0, NULL, st, err);
    gen_prompt_free(&pr);
    return rc;
}

int gen_run(gen_model_t *m, const uint8_t *bytes, size_t n, const char *question, const gen_params_t *p,
            gen_emit_fn emit, void *user, gen_stats_t *st, char *err) {
    if (!question) return hired_errf(err, HIRED_EINVAL, "no question");
    tpl_part_t parts[2];
    tpl_message_t msg = question_message(question, p, parts);
    gen_image_t img = {bytes, n};
    bool has_image = msg.n_parts == 2;
    if (!has_image) { /* the question holds its own <image>: one image all the same */
        gen_stats_t dummy;
        if (!st) st = &dummy;
        memset(st, 0, sizeof *st);
        if (p->max_tokens < 1) return hired_errf(err, HIRED_EINVAL, "max_tokens %d must be at least 1", p->max_tokens);
        int rc = prompt_precheck(m, 1, &msg, 1, p, err);
        if (rc) return rc;
        gen_visual_t vis;
        gen_prompt_t pr;
        rc = gen_encode_compat(m, bytes, n, &p->sel, p->compat, &vis, st, err);
        if (rc) return rc;
        rc = gen_prompt_build_chat(m, &vis, 1, &msg, 1, p, &pr, st, err);
        gen_visual_free(&vis);
        if (rc) return rc;
        rc = gen_decode(m, &pr, p, emit, user, NULL, NULL, 0, NULL, st, err);
        gen_prompt_free(&pr);
        return rc;
    }
    return gen_run_chat(m, &img, 1, &msg, 1, p, emit, user, st, err);
}
