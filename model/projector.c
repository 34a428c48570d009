/* projector.c — see projector.h. Two k_matmul calls around k_gelu_erf, with one [k, d_out]
 * arena buffer for the hidden activations. */
#include "projector.h"

#include <stdint.h>

#include "act.h"
#include "err.h"
#include "matmul.h"
#include "mem.h"
#include "registry.h"
#include "weights.h"

struct projector {
    k_device_t *dev;    /* borrowed */
    int d_in, d_out;
    k_weight_t w1;      /* [d_out, d_in] */
    k_weight_t w2;      /* [d_out, d_out] */
    k_weight_t b1, b2;  /* [d_out] float32, or zeroed (no bias) */
    k_weight_t newline; /* [d_out] float32, or zeroed (LLaVA-1.5) */
};

projector_t *projector_load(const st_model_t *st, const hf_config_t *cfg, k_device_t *dev, char *err) {
    if (cfg->projector_act != HF_ACT_GELU_ERF) {
        hired_errf(err, HIRED_EUNSUPPORTED, "projector: only the exact (erf) GELU is supported");
        return NULL;
    }
    projector_t *p = mem_calloc(1, sizeof *p);
    if (!p) {
        hired_errf(err, HIRED_ENOMEM, "projector: out of memory");
        return NULL;
    }
    p->dev = dev;
    p->d_in = cfg->vision.hidden;
    p->d_out = cfg->text.hidden;
    const int64_t out = p->d_out;
    int rc = weights_matrix(st, dev, "multi_modal_projector.linear_1.weight", 2, (const int64_t[]){out, p->d_in},
                            &p->w1, err);
    if (!rc) rc = weights_matrix(st, dev, "multi_modal_projector.linear_2.weight", 2, (const int64_t[]){out, out},
                                 &p->w2, err);
    if (!rc && cfg->projector_bias) {
        rc = weights_f32(st, dev, "multi_modal_projector.linear_1.bias", 1, &out, &p->b1, err);
        if (!rc) rc = weights_f32(st, dev, "multi_modal_projector.linear_2.bias", 1, &out, &p->b2, err);
    }
    if (!rc && cfg->kind == HF_MODEL_LLAVA_NEXT) rc = weights_f32(st, dev, "image_newline", 1, &out, &p->newline, err);
    const void *any = p;
    k_matmul_args probe = {.m = 1, .n = 1, .k = 1, .x = any, .w = any, .w_dtype = p->w1.dtype, .y = (void *)any};
    if (!rc && !k_supports(k_device_backend(dev), K_OP_MATMUL, &probe))
        rc = hired_errf(err, HIRED_EUNSUPPORTED, "projector: the %s device does not run %s weights", k_device_name(dev),
                        tensor_dtype_name(p->w1.dtype));
    if (rc) projector_destroy(&p);
    return p;
}

void projector_destroy(projector_t **pp) {
    if (!pp || !*pp) return;
    projector_t *p = *pp;
    k_weight_t *ws[] = {&p->w1, &p->w2, &p->b1, &p->b2, &p->newline};
    for (size_t i = 0; i < ARRAY_LEN(ws); i++) k_weight_free(p->dev, ws[i]);
    mem_free(p);
    *pp = NULL;
}

int projector_d_in(const projector_t *p) { return p->d_in; }
int projector_d_out(const projector_t *p) { return p->d_out; }
const float *projector_newline(const projector_t *p) { return weights_f32_data(&p->newline); }

int projector_apply(const projector_t *p, k_ctx_t *ctx, const float *x, int k, float *y, char *err) {
    if (k <= 0) return HIRED_OK;
    const size_t mark = k_ctx_mark(ctx);
    float *h = k_ctx_alloc(ctx, (size_t)k * p->d_out * sizeof(float)); /* [k, d_out] */
    if (!h) return hired_errf(err, HIRED_ENOMEM, "projector: out of memory for %d tokens", k);
    k_matmul_args m1 = {.m = k, .n = p->d_out, .k = p->d_in, .x = x, .w = p->w1.data, .w_dtype = p->w1.dtype,
                        .bias = weights_f32_data(&p->b1), .y = h};
    k_act_args g = {.n = (int64_t)k * p->d_out, .x = h, .y = h};
    k_matmul_args m2 = {.m = k, .n = p->d_out, .k = p->d_out, .x = h, .w = p->w2.data, .w_dtype = p->w2.dtype,
                        .bias = weights_f32_data(&p->b2), .y = y};
    int rc = k_matmul(ctx, &m1);
    if (!rc) rc = k_gelu_erf(ctx, &g);
    if (!rc) rc = k_matmul(ctx, &m2);
    k_ctx_release(ctx, mark);
    return rc ? k_ctx_report(ctx, rc, err, "projector") : HIRED_OK;
}
