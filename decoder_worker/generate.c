/* generate.c — see generate.h. Model loading, the three stages, and the stop-string filter that
 * sits between the streaming detokeniser and the caller's callback. */
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
    st_model_close(&m->st);
    mem_free(m);
    *pm = NULL;
}

const hf_config_t *gen_model_config(const gen_model_t *m) { return &m->cfg; }
const tok_t *gen_model_tokenizer(const gen_model_t *m) { return m->tok; }
llm_t *gen_model_llm(gen_model_t *m) { return m->llm; }
const char *gen_model_default_template(const gen_model_t *m) {
    return m->cfg.text.kind == HF_TEXT_MISTRAL ? "mistral" : "vicuna";
}

// ---- stage 1: image → kept features ---------------------------------------------------------------

int gen_encode(gen_model_t *m, const uint8_t *bytes, size_t n, const sel_opts_t *sel, gen_visual_t *out,
               gen_stats_t *st, char *err) {
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
    rc = prep_for_model(&img, &m->cfg, &m->pp, &prep, err);
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
    mem_free_aligned(pr->embeds);
    memset(pr, 0, sizeof *pr);
}

int gen_prompt_build(gen_model_t *m, const gen_visual_t *vis, const char *question, const gen_params_t *p,
                     gen_prompt_t *out, gen_stats_t *st, char *err) {
    memset(out, 0, sizeof *out);
    const int D = m->cfg.text.hidden, k = vis->sel.k;
    if (k > 0 && vis->sel.d != projector_d_in(m->proj))
        return hired_errf(err, HIRED_EINVAL, "visual features are %d wide, the projector takes %d", vis->sel.d,
                          projector_d_in(m->proj));
    const char *tpl = p->template_name ? p->template_name : gen_model_default_template(m);
    char *text = NULL;
    int32_t *slots = NULL;
    float *proj = NULL;
    int rc = tpl_render(tpl, question, &text, err);
    if (!rc) rc = tok_encode(m->tok, text, true, &out->ids, &out->n_ids, err);
    if (!rc) rc = tpl_image_pos(out->ids, out->n_ids, m->cfg.image_token_id, &out->image_pos, err);
    if (rc) goto done;

    /* where each kept token goes: LLaVA-1.5 and PruMerge (summary tokens have no grid position)
     * concatenate; LLaVA-NeXT unpads and places newlines per the policy */
    const bool concat = m->cfg.kind == HF_MODEL_LLAVA || vis->strategy == SEL_PRUMERGE ||
                        vis->strategy == SEL_PRUMERGE_PLUS;
    pack_geom_t geom = {.n = vis->n, .rows = vis->rows, .cols = vis->cols, .orig_h = vis->orig_h,
                        .orig_w = vis->orig_w, .grid = vis->grid};
    slots = mem_alloc((size_t)pack_max_slots(&geom, k) * sizeof *slots);
    if (!slots) {
        rc = hired_errf(err, HIRED_ENOMEM, "out of memory");
        goto done;
    }
    rc = pack_layout(&geom, vis->sel.pos, k, concat ? PACK_MODE_CONCAT : PACK_MODE_NEXT, p->newline, slots,
                     &out->n_image, err);
    if (rc) goto done;
    for (int i = 0; i < out->n_image; i++)
        if (slots[i] == PACK_SLOT_NEWLINE && !projector_newline(m->proj)) {
            rc = hired_errf(err, HIRED_EINVAL, "newline policy hf needs image_newline, which the model lacks");
            goto done;
        }
    out->length = out->n_ids - 1 + out->n_image;
    if (out->length > m->cfg.text.max_pos) {
        rc = hired_errf(err, HIRED_ERANGE, "prompt is %d tokens (%d text + %d image), the model's context is %d",
                        out->length, out->n_ids - 1, out->n_image, m->cfg.text.max_pos);
        goto done;
    }

    /* project the kept features, then text | packed image | text */
    double t0 = now_ms();
    proj = mem_alloc_aligned((size_t)(k > 0 ? k : 1) * D * sizeof(float));
    out->embeds = mem_alloc_aligned((size_t)out->length * D * sizeof(float));
    if (!proj || !out->embeds) {
        rc = hired_errf(err, HIRED_ENOMEM, "out of memory for a %d-token prompt", out->length);
        goto done;
    }
    rc = projector_apply(m->proj, vis->sel.features, k, proj, err);
    if (!rc) rc = llm_embed(m->llm, out->ids, out->image_pos, out->embeds, err);
    if (rc) goto done;
    pack_gather(slots, out->n_image, proj, projector_newline(m->proj), D, out->embeds + (size_t)out->image_pos * D);
    rc = llm_embed(m->llm, out->ids + out->image_pos + 1, out->n_ids - out->image_pos - 1,
                   out->embeds + (size_t)(out->image_pos + out->n_image) * D, err);
    if (st) {
        st->ms_project = now_ms() - t0;
        st->image_tokens = out->n_image;
        st->prompt_tokens = out->length;
    }
done:
    mem_free(text);
    mem_free(slots);
    mem_free_aligned(proj);
    if (rc) gen_prompt_free(out);
    return rc;
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
    const int32_t eos = tc->eos_id >= 0 ? tc->eos_id : tok_eos(m->tok);

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
        if (step < p->min_tokens && eos >= 0 && eos < V) cur[eos] = -INFINITY; /* HF min_new_tokens */
        int32_t t = sampler_sample(smp, &p->sampling, cur, (uint64_t)step);
        if (tokens) tokens[step] = t;
        st->generated++;
        if (t == eos) {
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

/* The prompt errors a user can make, found before the vision tower runs: unknown template, no or
 * several <image>, text alone longer than the context. */
static int prompt_precheck(gen_model_t *m, const char *question, const gen_params_t *p, char *err) {
    const char *tpl = p->template_name ? p->template_name : gen_model_default_template(m);
    char *text = NULL;
    int32_t *ids = NULL;
    int n_ids = 0, pos;
    int rc = tpl_render(tpl, question, &text, err);
    if (!rc) rc = tok_encode(m->tok, text, true, &ids, &n_ids, err);
    if (!rc) rc = tpl_image_pos(ids, n_ids, m->cfg.image_token_id, &pos, err);
    if (!rc && n_ids - 1 > m->cfg.text.max_pos)
        rc = hired_errf(err, HIRED_ERANGE, "prompt text alone is %d tokens, the model's context is %d", n_ids - 1,
                        m->cfg.text.max_pos);
    mem_free(text);
    mem_free(ids);
    return rc;
}

int gen_run(gen_model_t *m, const uint8_t *bytes, size_t n, const char *question, const gen_params_t *p,
            gen_emit_fn emit, void *user, gen_stats_t *st, char *err) {
    gen_stats_t dummy;
    if (!st) st = &dummy;
    memset(st, 0, sizeof *st);
    gen_visual_t vis;
    gen_prompt_t pr;
    int rc = prompt_precheck(m, question, p, err);
    if (rc) return rc;
    if (p->max_tokens < 1) return hired_errf(err, HIRED_EINVAL, "max_tokens %d must be at least 1", p->max_tokens);
    rc = gen_encode(m, bytes, n, &p->sel, &vis, st, err);
    if (rc) return rc;
    rc = gen_prompt_build(m, &vis, question, p, &pr, st, err);
    gen_visual_free(&vis);
    if (rc) return rc;
    rc = gen_decode(m, &pr, p, emit, user, NULL, NULL, 0, NULL, st, err);
    gen_prompt_free(&pr);
    return rc;
}
