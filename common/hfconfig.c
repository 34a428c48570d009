/* hfconfig.c — config.json and preprocessor_config.json of a Hugging Face LLaVA directory
 * (see hfconfig.h, docs/numerics.md §1 and §7.4).
 *
 * Owns: the class defaults of transformers for every absent key, and the validation of every
 * present one. The defaults mirror the Python constructors:
 *   LlavaConfig / LlavaNextConfig: vision_config absent or null -> CLIPVisionConfig built with
 *     LLaVA's values (1024/4096/24/16/336/14); vision_config given as an object -> the CLIP class
 *     defaults (768/3072/12/12/224/32) for every key it lacks. text_config absent or null ->
 *     LlamaConfig(); given -> its model_type's class defaults for absent keys.
 *   LlamaConfig vs MistralConfig: intermediate 11008 / 14336, kv heads = heads / 8,
 *     max_pos 2048 / 131072, sliding_window none / 4096 (explicit null = none), rms_norm_eps
 *     1e-6 and rope_theta 1e4 for both.
 *   CLIPImageProcessor / LlavaNextImageProcessor: shortest_edge 224, crop 224x224, bicubic,
 *     1/255, OpenAI CLIP mean/std; LLaVA-NeXT adds do_pad true and the five default pinpoints.
 * Things the structs cannot express (rope_scaling, attention/mlp biases, non-silu text
 * activations, multi-layer vision features, tanh GELU) are refused with HIRED_EUNSUPPORTED
 * rather than silently ignored. Not here: tensors (st.c), tokenizer files. */
#include "hfconfig.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "err.h"
#include "json.h"

#define HF_MAX_JSON ((size_t)16 << 20)

static const int k_default_pinpoints[][2] = {{336, 672}, {672, 336}, {672, 672}, {1008, 336}, {336, 1008}};
static const float k_clip_mean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
static const float k_clip_std[3] = {0.26862954f, 0.26130258f, 0.27577711f};

// ---- helpers ---------------------------------------------------------------------------------

#define NO_NULL INT_MIN /* opt_int's if_null: JSON null is an error like any other wrong type */

/* As json_opt_int into an int, with JSON null mapped to `if_null` (or refused: NO_NULL). */
static int opt_int(const json_where_t *w, const cJSON *obj, const char *key, int64_t lo, int64_t hi, int64_t def,
                   int if_null, int *out) {
    if (if_null != NO_NULL && json_is_null(obj, key)) {
        *out = if_null;
        return HIRED_OK;
    }
    int64_t v;
    int rc = json_opt_int(w, obj, key, lo, hi, def, &v);
    if (rc == HIRED_OK) *out = (int)v;
    return rc;
}

/* Maps an activation name to hf_act_t; HIRED_EUNSUPPORTED for the others. */
static int parse_act(const json_where_t *w, const char *key, const char *s, hf_act_t *out) {
    if (!strcmp(s, "gelu")) {
        *out = HF_ACT_GELU_ERF;
    } else if (!strcmp(s, "quick_gelu")) {
        *out = HF_ACT_QUICK_GELU;
    } else if (!strcmp(s, "silu") || !strcmp(s, "swish")) {
        *out = HF_ACT_SILU;
    } else {
        return hired_errf(w->err, HIRED_EUNSUPPORTED,
                          "%s: %s%s '%.64s' is not supported (gelu, quick_gelu or silu)", w->file, w->prefix, key, s);
    }
    return HIRED_OK;
}

/* Reads a list of [height, width] pairs, each a positive multiple of (mult_h, mult_w). */
static int parse_pinpoints(const json_where_t *w, const cJSON *obj, const char *key, int mult_h, int mult_w,
                           int *n_out, int (*pts)[2]) {
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!arr) {
        *n_out = (int)ARRAY_LEN(k_default_pinpoints);
        memcpy(pts, k_default_pinpoints, sizeof k_default_pinpoints);
    } else {
        if (!cJSON_IsArray(arr))
            return hired_errf(w->err, HIRED_EFORMAT, "%s: %s%s must be a list of [height, width] pairs", w->file,
                              w->prefix, key);
        int n = cJSON_GetArraySize(arr);
        if (n < 1 || n > HF_MAX_PINPOINTS)
            return hired_errf(w->err, HIRED_ERANGE, "%s: %s%s must have 1 to %d entries (has %d)", w->file, w->prefix,
                              key, HF_MAX_PINPOINTS, n);
        int i = 0;
        for (const cJSON *p = arr->child; p; p = p->next, i++) {
            if (!cJSON_IsArray(p) || cJSON_GetArraySize(p) != 2 || !json_is_int_in(p->child, 1, 1 << 16) ||
                !json_is_int_in(p->child->next, 1, 1 << 16))
                return hired_errf(w->err, HIRED_EFORMAT, "%s: %s%s[%d] must be [height, width], positive integers",
                                  w->file, w->prefix, key, i);
            pts[i][0] = (int)p->child->valuedouble;
            pts[i][1] = (int)p->child->next->valuedouble;
        }
        *n_out = n;
    }
    for (int i = 0; i < *n_out; i++)
        if (pts[i][0] % mult_h || pts[i][1] % mult_w)
            return hired_errf(w->err, HIRED_ERANGE, "%s: %s%s[%d] = [%d, %d] is not a multiple of [%d, %d]", w->file,
                              w->prefix, key, i, pts[i][0], pts[i][1], mult_h, mult_w);
    return HIRED_OK;
}

// ---- config.json -----------------------------------------------------------------------------

static int parse_vision(const char *file, const cJSON *root, hf_vision_config_t *v, char *err) {
    const cJSON *vc = cJSON_GetObjectItemCaseSensitive(root, "vision_config");
    *v = (hf_vision_config_t){.hidden = 1024, .intermediate = 4096, .layers = 24, .heads = 16, .image_size = 336,
                              .patch_size = 14, .channels = 3, .eps = 1e-5f, .act = HF_ACT_QUICK_GELU};
    if (!vc || cJSON_IsNull(vc)) return HIRED_OK; /* LLaVA's own CLIPVisionConfig(...) */
    json_where_t w = {file, "vision_config.", err};
    if (!cJSON_IsObject(vc)) return hired_errf(err, HIRED_EFORMAT, "%s: vision_config must be an object", file);
    const char *mt, *act;
    double eps;
    int rc;
    if ((rc = json_opt_string(&w, vc, "model_type", "clip_vision_model", &mt))) return rc;
    if (strcmp(mt, "clip_vision_model"))
        return hired_errf(err, HIRED_EUNSUPPORTED, "%s: vision_config.model_type '%.64s' is not supported (clip_vision_model)",
                          file, mt);
    /* CLIPVisionConfig class defaults */
    if ((rc = opt_int(&w, vc, "hidden_size", 1, 1 << 16, 768, NO_NULL, &v->hidden)) ||
        (rc = opt_int(&w, vc, "intermediate_size", 1, 1 << 20, 3072, NO_NULL, &v->intermediate)) ||
        (rc = opt_int(&w, vc, "num_hidden_layers", 1, 1024, 12, NO_NULL, &v->layers)) ||
        (rc = opt_int(&w, vc, "num_attention_heads", 1, 4096, 12, NO_NULL, &v->heads)) ||
        (rc = opt_int(&w, vc, "image_size", 1, 1 << 16, 224, NO_NULL, &v->image_size)) ||
        (rc = opt_int(&w, vc, "patch_size", 1, 1 << 16, 32, NO_NULL, &v->patch_size)) ||
        (rc = opt_int(&w, vc, "num_channels", 1, 64, 3, NO_NULL, &v->channels)) ||
        (rc = json_opt_double(&w, vc, "layer_norm_eps", 1e-30, 1.0, 1e-5, &eps)) ||
        (rc = json_opt_string(&w, vc, "hidden_act", "quick_gelu", &act)) || (rc = parse_act(&w, "hidden_act", act, &v->act)))
        return rc;
    v->eps = (float)eps;
    if (v->hidden % v->heads)
        return hired_errf(err, HIRED_ERANGE, "%s: vision_config.num_attention_heads (%d) must divide hidden_size (%d)",
                          file, v->heads, v->hidden);
    if (v->image_size % v->patch_size)
        return hired_errf(err, HIRED_ERANGE, "%s: vision_config.patch_size (%d) must divide image_size (%d)", file,
                          v->patch_size, v->image_size);
    return HIRED_OK;
}

/* transformers >= 5 keeps rope_theta inside rope_parameters {rope_type, rope_theta}. */
static int parse_rope_parameters(const json_where_t *w0, const cJSON *tc, double *theta) {
    const cJSON *rp = cJSON_GetObjectItemCaseSensitive(tc, "rope_parameters");
    if (!rp || cJSON_IsNull(rp)) return HIRED_OK;
    if (!cJSON_IsObject(rp))
        return hired_errf(w0->err, HIRED_EFORMAT, "%s: %srope_parameters must be an object", w0->file, w0->prefix);
    json_where_t w = {w0->file, "text_config.rope_parameters.", w0->err};
    const char *type;
    int rc;
    if ((rc = json_opt_string(&w, rp, "rope_type", "default", &type))) return rc;
    if (strcmp(type, "default"))
        return hired_errf(w.err, HIRED_EUNSUPPORTED, "%s: text_config.rope_parameters.rope_type '%.64s' is not supported",
                          w.file, type);
    return json_opt_double(&w, rp, "rope_theta", 1e-3, 1e15, *theta, theta);
}

static int parse_eos_ex(const json_where_t *w, const cJSON *obj, hf_text_config_t *t, bool keep_absent);
static int parse_eos(const json_where_t *w, const cJSON *obj, hf_text_config_t *t) { return parse_eos_ex(w, obj, t, false); }

static int parse_text(const char *file, const cJSON *root, hf_text_config_t *t, char *err) {
    const cJSON *tc = cJSON_GetObjectItemCaseSensitive(root, "text_config");
    if (tc && !cJSON_IsNull(tc) && !cJSON_IsObject(tc))
        return hired_errf(err, HIRED_EFORMAT, "%s: text_config must be an object", file);
    if (cJSON_IsNull(tc)) tc = NULL; /* LlamaConfig() */
    json_where_t w = {file, "text_config.", err};
    const char *mt, *act;
    int rc;
    if ((rc = json_opt_string(&w, tc, "model_type", "llama", &mt))) return rc;
    if (!strcmp(mt, "llama"))
        t->kind = HF_TEXT_LLAMA;
    else if (!strcmp(mt, "mistral"))
        t->kind = HF_TEXT_MISTRAL;
    else
        return hired_errf(err, HIRED_EUNSUPPORTED, "%s: text_config.model_type '%.64s' is not supported (llama or mistral)",
                          file, mt);
    bool mistral = t->kind == HF_TEXT_MISTRAL;
    double eps;
    if ((rc = opt_int(&w, tc, "vocab_size", 1, 1 << 24, 32000, NO_NULL, &t->vocab)) ||
        (rc = opt_int(&w, tc, "hidden_size", 1, 1 << 17, 4096, NO_NULL, &t->hidden)) ||
        (rc = opt_int(&w, tc, "intermediate_size", 1, 1 << 20, mistral ? 14336 : 11008, NO_NULL, &t->intermediate)) ||
        (rc = opt_int(&w, tc, "num_hidden_layers", 1, 1024, 32, NO_NULL, &t->layers)) ||
        (rc = opt_int(&w, tc, "num_attention_heads", 1, 4096, 32, NO_NULL, &t->heads)) ||
        (rc = opt_int(&w, tc, "max_position_embeddings", 1, 1 << 24, mistral ? 131072 : 2048, NO_NULL, &t->max_pos)) ||
        (rc = json_opt_double(&w, tc, "rms_norm_eps", 1e-30, 1.0, 1e-6, &eps)) ||
        (rc = json_opt_double(&w, tc, "rope_theta", 1e-3, 1e15, 10000.0, &t->rope_theta)) ||
        (rc = parse_rope_parameters(&w, tc, &t->rope_theta)) ||
        (rc = json_opt_string(&w, tc, "hidden_act", "silu", &act)))
        return rc;
    t->rms_eps = (float)eps;
    if (strcmp(act, "silu"))
        return hired_errf(err, HIRED_EUNSUPPORTED, "%s: text_config.hidden_act '%.64s' is not supported (silu)", file, act);

    /* kv heads: Llama None -> heads; Mistral default 8, explicit None -> heads */
    if ((rc = opt_int(&w, tc, "num_key_value_heads", 1, t->heads, mistral ? 8 : t->heads, t->heads, &t->kv_heads)))
        return rc;
    if (t->kv_heads > t->heads || t->heads % t->kv_heads)
        return hired_errf(err, HIRED_ERANGE, "%s: text_config.num_key_value_heads (%d) must divide num_attention_heads (%d)",
                          file, t->kv_heads, t->heads);
    if ((rc = opt_int(&w, tc, "head_dim", 1, 4096, 0, 0, &t->head_dim))) return rc;
    if (t->head_dim == 0) {
        if (t->hidden % t->heads)
            return hired_errf(err, HIRED_ERANGE, "%s: text_config.num_attention_heads (%d) must divide hidden_size (%d)",
                              file, t->heads, t->hidden);
        t->head_dim = t->hidden / t->heads;
    }
    if (t->head_dim % 2)
        return hired_errf(err, HIRED_ERANGE, "%s: text_config head_dim (%d) must be even for RoPE", file, t->head_dim);

    /* Mistral: absent -> 4096, null -> no window; Llama has no window */
    t->sliding_window = -1;
    if (mistral && (rc = opt_int(&w, tc, "sliding_window", 1, 1 << 24, 4096, -1, &t->sliding_window))) return rc;

    const cJSON *rs = cJSON_GetObjectItemCaseSensitive(tc, "rope_scaling");
    if (rs && !cJSON_IsNull(rs))
        return hired_errf(err, HIRED_EUNSUPPORTED, "%s: text_config.rope_scaling is not supported", file);
    bool attn_bias, mlp_bias;
    if ((rc = json_opt_bool(&w, tc, "attention_bias", false, &attn_bias)) ||
        (rc = json_opt_bool(&w, tc, "mlp_bias", false, &mlp_bias)) ||
        (rc = json_opt_bool(&w, tc, "tie_word_embeddings", false, &t->tie_embeddings)))
        return rc;
    if (attn_bias || mlp_bias)
        return hired_errf(err, HIRED_EUNSUPPORTED, "%s: text_config.%s true is not supported", file,
                          attn_bias ? "attention_bias" : "mlp_bias");

    if ((rc = opt_int(&w, tc, "bos_token_id", 0, INT_MAX, 1, -1, &t->bos_id)) ||
        (rc = parse_eos(&w, tc, t)) || (rc = opt_int(&w, tc, "pad_token_id", 0, INT_MAX, -1, -1, &t->pad_id)))
        return rc;
    return HIRED_OK;
}

/* eos_token_id: an id, a list of ids (any ends generation), or null (none). Absent: the class
 * default 2 (only when obj is a text_config; generation_config.json passes keep_absent). */
static int parse_eos_ex(const json_where_t *w, const cJSON *obj, hf_text_config_t *t, bool keep_absent) {
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(obj, "eos_token_id");
    if (!e && keep_absent) return HIRED_OK;
    if (cJSON_IsArray(e)) {
        int n = cJSON_GetArraySize(e), i = 0;
        if (n < 1 || n > HF_MAX_EOS)
            return hired_errf(w->err, HIRED_ERANGE, "%s: %seos_token_id must list 1 to %d ids (has %d)", w->file,
                              w->prefix, HF_MAX_EOS, n);
        const cJSON *x;
        cJSON_ArrayForEach(x, e) {
            if (!json_is_int_in(x, 0, INT_MAX))
                return hired_errf(w->err, HIRED_EFORMAT, "%s: %seos_token_id[%d] must be a token id", w->file, w->prefix,
                                  i);
            t->eos_ids[i++] = (int)x->valuedouble;
        }
        t->n_eos = n;
    } else {
        int id;
        int rc = opt_int(w, obj, "eos_token_id", 0, INT_MAX, 2, -1, &id);
        if (rc) return rc;
        t->n_eos = id >= 0;
        t->eos_ids[0] = id;
    }
    t->eos_id = t->n_eos ? t->eos_ids[0] : -1;
    return HIRED_OK;
}

/* Reads dir/name into *root (caller owns: cJSON_Delete) and its path into file. */
static int read_dir_json(const char *dir, const char *name, char *file, size_t len, cJSON **root, char *err) {
    if (snprintf(file, len, "%s/%s", dir, name) >= (int)len)
        return hired_errf(err, HIRED_EINVAL, "%s: path too long", dir);
    *root = NULL;
    return json_read_file(file, HF_MAX_JSON, root, err);
}

/* generation_config.json, when present: its eos_token_id decides when generation stops (what
 * transformers' generate uses). */
static int read_generation_config(const char *dir, hf_text_config_t *t, char *err) {
    char file[4096];
    cJSON *root;
    int rc = read_dir_json(dir, "generation_config.json", file, sizeof file, &root, err);
    if (rc == HIRED_ENOTFOUND) return HIRED_OK;
    if (rc) return rc;
    json_where_t w = {file, "", err};
    rc = cJSON_IsObject(root) ? parse_eos_ex(&w, root, t, true)
                              : hired_errf(err, HIRED_EFORMAT, "%s: not a JSON object", file);
    cJSON_Delete(root);
    return rc;
}

int hf_config_load(const char *dir, hf_config_t *out, char *err) {
    char file[4096];
    cJSON *root;
    memset(out, 0, sizeof *out);
    int rc = read_dir_json(dir, "config.json", file, sizeof file, &root, err);
    if (rc) return rc;
    json_where_t w = {file, "", err};
    const char *mt, *strategy, *act;
    int64_t tok_index, tok_id;
    bool tie, newline;
    int pad;
    const cJSON *fl;

    if (!cJSON_IsObject(root)) {
        rc = hired_errf(err, HIRED_EFORMAT, "%s: not a JSON object", file);
        goto done;
    }
    if ((rc = json_opt_string(&w, root, "model_type", NULL, &mt))) goto done;
    if (!mt) {
        rc = hired_errf(err, HIRED_EFORMAT, "%s: model_type missing", file);
        goto done;
    }
    if (!strcmp(mt, "llava")) {
        out->kind = HF_MODEL_LLAVA;
    } else if (!strcmp(mt, "llava_next")) {
        out->kind = HF_MODEL_LLAVA_NEXT;
    } else {
        rc = hired_errf(err, HIRED_EUNSUPPORTED, "%s: model_type '%.64s' is not supported (llava or llava_next)", file, mt);
        goto done;
    }
    /* quantised checkpoints are refused up front, before anything looks at a weight */
    for (int k = 0; k < 2; k++) {
        const cJSON *obj = k ? cJSON_GetObjectItemCaseSensitive(root, "text_config") : root;
        const cJSON *q = cJSON_GetObjectItemCaseSensitive(obj, "quantization_config");
        if (q && !cJSON_IsNull(q)) {
            const cJSON *m = cJSON_GetObjectItemCaseSensitive(q, "quant_method");
            const cJSON *b4 = cJSON_GetObjectItemCaseSensitive(q, "load_in_4bit");
            const cJSON *b8 = cJSON_GetObjectItemCaseSensitive(q, "load_in_8bit");
            const char *how = cJSON_IsString(m) ? m->valuestring
                              : cJSON_IsTrue(b4) ? "bitsandbytes 4-bit"
                              : cJSON_IsTrue(b8) ? "bitsandbytes 8-bit"
                                                 : "unknown method";
            rc = hired_errf(err, HIRED_EUNSUPPORTED,
                            "%s: %squantization_config (%.40s): quantised checkpoints (AWQ, GPTQ, bitsandbytes, ...) "
                            "are not supported; use the float16 / bfloat16 checkpoint", file, k ? "text_config." : "", how);
            goto done;
        }
    }
    if ((rc = parse_vision(file, root, &out->vision, err)) || (rc = parse_text(file, root, &out->text, err))) goto done;

    /* image token: image_token_index, or image_token_id in newer files; both must agree. It may be
     * >= text vocab_size (LlavaConfig()'s own defaults are 32000 and 32000): newer transformers
     * replace image tokens before the embedding lookup, and so must hired. */
    if ((rc = json_opt_int(&w, root, "image_token_index", 0, INT_MAX, 32000, &tok_index)) ||
        (rc = json_opt_int(&w, root, "image_token_id", 0, INT_MAX, tok_index, &tok_id)))
        goto done;
    if (json_has(root, "image_token_index") && tok_id != tok_index) {
        rc = hired_errf(err, HIRED_EFORMAT, "%s: image_token_index (%lld) and image_token_id (%lld) differ", file,
                        (long long)tok_index, (long long)tok_id);
        goto done;
    }
    out->image_token_id = (int)tok_id;

    fl = cJSON_GetObjectItemCaseSensitive(root, "vision_feature_layer");
    if (cJSON_IsArray(fl)) {
        rc = hired_errf(err, HIRED_EUNSUPPORTED, "%s: vision_feature_layer as a list is not supported", file);
        goto done;
    }
    /* a Python index into hidden_states, which has layers + 1 entries */
    if ((rc = opt_int(&w, root, "vision_feature_layer", -(out->vision.layers + 1), out->vision.layers, -2, NO_NULL,
                      &out->feature_layer)))
        goto done;

    if ((rc = json_opt_string(&w, root, "vision_feature_select_strategy", "default", &strategy))) goto done;
    if (strcmp(strategy, "default") && strcmp(strategy, "full")) {
        rc = hired_errf(err, HIRED_ERANGE, "%s: vision_feature_select_strategy must be \"default\" or \"full\" (got '%.64s')",
                        file, strategy);
        goto done;
    }
    out->select_default = !strcmp(strategy, "default");

    if ((rc = json_opt_string(&w, root, "projector_hidden_act", "gelu", &act)) ||
        (rc = parse_act(&w, "projector_hidden_act", act, &out->projector_act)) ||
        (rc = json_opt_bool(&w, root, "multimodal_projector_bias", true, &out->projector_bias)) ||
        (rc = json_opt_bool(&w, root, "use_image_newline_parameter", true, &newline)) ||
        (rc = json_opt_bool(&w, root, "tie_word_embeddings", false, &tie)) ||
        (rc = opt_int(&w, root, "pad_token_id", 0, INT_MAX, -1, -1, &pad)))
        goto done;
    /* LlavaConfig forwards a true text_config.tie_word_embeddings to the top level */
    out->text.tie_embeddings = out->text.tie_embeddings || tie;
    if (out->text.pad_id < 0) out->text.pad_id = pad;
    /* transformers' LlavaNext always appends image_newline; use_image_newline_parameter is only
     * read by the original LLaVA code, so it is type-checked and otherwise ignored */
    (void)newline;
    out->use_image_newline = out->kind == HF_MODEL_LLAVA_NEXT;

    if (out->kind == HF_MODEL_LLAVA_NEXT &&
        (rc = parse_pinpoints(&w, root, "image_grid_pinpoints", out->vision.image_size, out->vision.image_size,
                              &out->n_pinpoints, out->pinpoints)))
        goto done;
    rc = read_generation_config(dir, &out->text, err);
done:
    cJSON_Delete(root);
    return rc;
}

// ---- preprocessor_config.json ----------------------------------------------------------------

/* image_mean / image_std: a number (all channels) or a list of 3 numbers. */
static int parse_triple(const json_where_t *w, const cJSON *obj, const char *key, const float def[3], bool positive,
                        float out[3]) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!it || cJSON_IsNull(it)) {
        memcpy(out, def, 3 * sizeof *out);
        return HIRED_OK;
    }
    double v[3];
    if (cJSON_IsNumber(it)) {
        v[0] = v[1] = v[2] = it->valuedouble;
    } else if (cJSON_IsArray(it) && cJSON_GetArraySize(it) == 3) {
        int i = 0;
        for (const cJSON *x = it->child; x; x = x->next, i++) {
            if (!cJSON_IsNumber(x))
                return hired_errf(w->err, HIRED_EFORMAT, "%s: %s must be a number or a list of 3 numbers", w->file, key);
            v[i] = x->valuedouble;
        }
    } else {
        return hired_errf(w->err, HIRED_EFORMAT, "%s: %s must be a number or a list of 3 numbers", w->file, key);
    }
    for (int i = 0; i < 3; i++) {
        if (!(v[i] > -1e6 && v[i] < 1e6) || (positive && !(v[i] > 0)))
            return hired_errf(w->err, HIRED_ERANGE, "%s: %s[%d] = %g is out of range%s", w->file, key, i, v[i],
                              positive ? " (must be > 0)" : "");
        out[i] = (float)v[i];
    }
    return HIRED_OK;
}

/* size: an integer (shortest edge) or {"shortest_edge": n}; {height, width} is refused. */
static int parse_size(const json_where_t *w, const cJSON *root, int *shortest) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(root, "size");
    *shortest = 224;
    if (!it || cJSON_IsNull(it)) return HIRED_OK;
    if (cJSON_IsNumber(it)) {
        if (!json_is_int_in(it, 1, 1 << 16))
            return hired_errf(w->err, HIRED_ERANGE, "%s: size must be a positive integer", w->file);
        *shortest = (int)it->valuedouble;
        return HIRED_OK;
    }
    if (!cJSON_IsObject(it))
        return hired_errf(w->err, HIRED_EFORMAT, "%s: size must be an object or an integer", w->file);
    if (!json_has(it, "shortest_edge")) {
        if (json_has(it, "height") || json_has(it, "width"))
            return hired_errf(w->err, HIRED_EUNSUPPORTED, "%s: size {height, width} (resize without keeping the aspect) "
                              "is not supported", w->file);
        return hired_errf(w->err, HIRED_EFORMAT, "%s: size must contain shortest_edge", w->file);
    }
    json_where_t ws = {w->file, "size.", w->err};
    return opt_int(&ws, it, "shortest_edge", 1, 1 << 16, 224, NO_NULL, shortest);
}

/* crop_size: an integer (square) or {"height": h, "width": w}. */
static int parse_crop(const json_where_t *w, const cJSON *root, int *ch, int *cw) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(root, "crop_size");
    *ch = *cw = 224;
    if (!it || cJSON_IsNull(it)) return HIRED_OK;
    if (cJSON_IsNumber(it)) {
        if (!json_is_int_in(it, 1, 1 << 16))
            return hired_errf(w->err, HIRED_ERANGE, "%s: crop_size must be a positive integer", w->file);
        *ch = *cw = (int)it->valuedouble;
        return HIRED_OK;
    }
    if (!cJSON_IsObject(it) || !json_has(it, "height") || !json_has(it, "width"))
        return hired_errf(w->err, HIRED_EFORMAT, "%s: crop_size must be {\"height\": h, \"width\": w} or an integer",
                          w->file);
    json_where_t wc = {w->file, "crop_size.", w->err};
    int rc;
    if ((rc = opt_int(&wc, it, "height", 1, 1 << 16, 224, NO_NULL, ch))) return rc;
    return opt_int(&wc, it, "width", 1, 1 << 16, 224, NO_NULL, cw);
}

int hf_preproc_load(const char *dir, hf_preproc_t *out, char *err) {
    char file[4096];
    cJSON *root;
    memset(out, 0, sizeof *out);
    int rc = read_dir_json(dir, "preprocessor_config.json", file, sizeof file, &root, err);
    if (rc) return rc;
    json_where_t w = {file, "", err};
    const char *type;
    bool next;
    int64_t resample;

    if (!cJSON_IsObject(root)) {
        rc = hired_errf(err, HIRED_EFORMAT, "%s: not a JSON object", file);
        goto done;
    }
    if ((rc = json_opt_string(&w, root, "image_processor_type", NULL, &type))) goto done;
    if (!type) {
        next = json_has(root, "image_grid_pinpoints");
    } else if (!strcmp(type, "CLIPImageProcessor") || !strcmp(type, "CLIPImageProcessorFast")) {
        next = false;
    } else if (!strcmp(type, "LlavaNextImageProcessor") || !strcmp(type, "LlavaNextImageProcessorFast")) {
        next = true;
    } else {
        rc = hired_errf(err, HIRED_EUNSUPPORTED, "%s: image_processor_type '%.64s' is not supported", file, type);
        goto done;
    }
    if ((rc = json_opt_bool(&w, root, "do_resize", true, &out->do_resize)) || (rc = parse_size(&w, root, &out->shortest_edge)) ||
        (rc = json_opt_int(&w, root, "resample", INT64_MIN, INT64_MAX, 3, &resample)) ||
        (rc = json_opt_bool(&w, root, "do_center_crop", true, &out->do_center_crop)) ||
        (rc = parse_crop(&w, root, &out->crop_h, &out->crop_w)) ||
        (rc = json_opt_bool(&w, root, "do_rescale", true, &out->do_rescale)) ||
        (rc = json_opt_double(&w, root, "rescale_factor", 1e-30, 1e6, 1.0 / 255.0, &out->rescale_factor)) ||
        (rc = json_opt_bool(&w, root, "do_normalize", true, &out->do_normalize)) ||
        (rc = parse_triple(&w, root, "image_mean", k_clip_mean, false, out->mean)) ||
        (rc = parse_triple(&w, root, "image_std", k_clip_std, true, out->std)) ||
        (rc = json_opt_bool(&w, root, "do_convert_rgb", true, &out->do_convert_rgb)) ||
        (rc = json_opt_bool(&w, root, "do_pad", next, &out->do_pad)))
        goto done;
    if (resample != 3) {
        rc = hired_errf(err, HIRED_EUNSUPPORTED, "%s: resample %lld is not supported (only 3, bicubic)", file,
                        (long long)resample);
        goto done;
    }
    out->resample = 3;
    if (next && (rc = parse_pinpoints(&w, root, "image_grid_pinpoints", out->crop_h, out->crop_w, &out->n_pinpoints,
                                      out->pinpoints)))
        goto done;
    rc = HIRED_OK;
done:
    cJSON_Delete(root);
    return rc;
}
