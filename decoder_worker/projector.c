/* projector.c — see projector.h. Two k_matmul calls around k_gelu_erf, with one [k, d_out]
 * scratch for the hidden activations. */
#include "projector.h"

#include <stdint.h>

#include "act.h"
#include "err.h"
#include "matmul.h"
#include "mem.h"

struct projector {
    int d_in, d_out;
    const void *w1;        /* [d_out, d_in], dtype w1_dtype, borrowed from the checkpoint */
    const void *w2;        /* [d_out, d_out], dtype w2_dtype, borrowed */
    tensor_dtype_t w1_dtype, w2_dtype;
    float *b1, *b2;        /* [d_out] or NULL (no bias); owned */
    float *newline;        /* [d_out] or NULL (LLaVA-1.5); owned */
};

/* Borrows a [rows, cols] weight in its checkpoint dtype (shape checked by the reader). */
static int get_mat(const st_model_t *st, const char *name, int rows, int cols, const void **w, tensor_dtype_t *dt,
                   char *err) {
    tensor_t t;
    int rc = st_model_get_shaped(st, name, 2, (const int64_t[]){rows, cols}, &t, err);
    if (rc) return rc;
    *w = t.data;
    *dt = t.dtype;
    return HIRED_OK;
}

static float *get_vec(const st_model_t *st, const char *name, int n, char *err) {
    int64_t shape[1] = {n};
    return st_model_load_f32(st, name, 1, shape, err);
}

projector_t *projector_load(const st_model_t *st, const hf_config_t *cfg, char *err) {
    if (cfg->projector_act != HF_ACT_GELU_ERF) {
        hired_errf(err, HIRED_EUNSUPPORTED, "projector: only the exact (erf) GELU is supported");
        return NULL;
    }
    projector_t *p = mem_calloc(1, sizeof *p);
    if (!p) {
        hired_errf(err, HIRED_ENOMEM, "projector: out of memory");
        return NULL;
    }
    p->d_in = cfg->vision.hidden;
    p->d_out = cfg->text.hidden;
    int rc = get_mat(st, "multi_modal_projector.linear_1.weight", p->d_out, p->d_in, &p->w1, &p->w1_dtype, err);
    if (!rc) rc = get_mat(st, "multi_modal_projector.linear_2.weight", p->d_out, p->d_out, &p->w2, &p->w2_dtype, err);
    if (!rc && cfg->projector_bias) {
        if (!(p->b1 = get_vec(st, "multi_modal_projector.linear_1.bias", p->d_out, err)) ||
            !(p->b2 = get_vec(st, "multi_modal_projector.linear_2.bias", p->d_out, err)))
            rc = HIRED_ENOTFOUND;
    }
    if (!rc && cfg->kind == HF_MODEL_LLAVA_NEXT && !(p->newline = get_vec(st, "image_newline", p->d_out, err)))
        rc = HIRED_ENOTFOUND;
    if (rc) projector_destroy(&p);
    return p;
}

void projector_destroy(projector_t **pp) {
    if (!pp || !*pp) return;
    mem_free_aligned((*pp)->b1);
    mem_free_aligned((*pp)->b2);
    mem_free_aligned((*pp)->newline);
    mem_free(*pp);
    *pp = NULL;
}

int projector_d_in(const projector_t *p) { return p->d_in; }
int projector_d_out(const projector_t *p) { return p->d_out; }
const float *projector_newline(const projector_t *p) { return p->newline; }

int projector_apply(const projector_t *p, const float *x, int k, float *y, char *err) {
    if (k <= 0) return HIRED_OK;
    float *h = mem_alloc_aligned((size_t)k * p->d_out * sizeof(float)); /* [k, d_out] */
    if (!h) return hired_errf(err, HIRED_ENOMEM, "projector: out of memory for %d tokens", k);
    k_matmul_args m1 = {.m = k, .n = p->d_out, .k = p->d_in, .x = x, .w = p->w1, .w_dtype = p->w1_dtype,
                        .bias = p->b1, .y = h};
    k_matmul_cpu(&m1);
    k_act_args g = {.n = (int64_t)k * p->d_out, .x = h, .y = h};
    k_gelu_erf_cpu(&g);
    k_matmul_args m2 = {.m = k, .n = p->d_out, .k = p->d_out, .x = h, .w = p->w2, .w_dtype = p->w2_dtype,
                        .bias = p->b2, .y = y};
    k_matmul_cpu(&m2);
    mem_free_aligned(h);
    return HIRED_OK;
}
