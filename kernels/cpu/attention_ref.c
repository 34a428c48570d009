/* attention_ref.c — reference attention: for every (query, q head), three passes over the
 * visible keys in double (max score, sum of exponentials, probability-weighted sum of v),
 * recomputing each score rather than storing it, so no memory is needed; paged keys and values
 * are read in place through their block table (float32). The row
 * probabilities (attn_row) the same way, for one query over every key. */
#include <math.h>

#include "cpu_ops.h"

static double dot_scaled(const float *q, const float *k, int d, float scale) {
    double s = 0.0;
    for (int c = 0; c < d; c++) s += (double)q[c] * k[c];
    return s * scale;
}

static double score(const k_attention_args *a, const float *q, const float *k) {
    return dot_scaled(q, k, a->head_dim, a->scale);
}

void k_attention_ref(const k_attention_args *a) {
    size_t qrow = (size_t)a->n_head * a->head_dim, kvrow = (size_t)a->n_head_kv * a->head_dim;
    size_t ldq = a->ldq ? (size_t)a->ldq : qrow, ldo = a->ldo ? (size_t)a->ldo : qrow;
    size_t ldk = a->ldk ? (size_t)a->ldk : kvrow, ldv = a->ldv ? (size_t)a->ldv : kvrow;
    int group = a->n_head / a->n_head_kv;
    const float *qa = a->q, *ka = a->k, *va = a->v;
    float *oa = a->out;
    for (int i = 0; i < a->t_q; i++) {
        int n_vis = a->t_k;
        if (a->causal && (long long)a->q_pos0 + i + 1 < n_vis) n_vis = a->q_pos0 + i + 1;
        for (int h = 0; h < a->n_head; h++) {
            int hk = h / group;
            const float *q = qa + i * ldq + (size_t)h * a->head_dim;
            const float *kb = ka + (size_t)hk * a->head_dim;
            const float *vb = va + (size_t)hk * a->head_dim;
            double mx = -INFINITY;
            for (int j = 0; j < n_vis; j++) {
                double s = score(a, q, kb + k_attention_row(a, j, ldk));
                if (s > mx) mx = s;
            }
            double sum = 0.0;
            for (int j = 0; j < n_vis; j++) sum += exp(score(a, q, kb + k_attention_row(a, j, ldk)) - mx);
            /* weighted sum of v, 64 output columns at a time (one score per key and chunk) */
            float *o = oa + i * ldo + (size_t)h * a->head_dim;
            for (int c0 = 0; c0 < a->head_dim; c0 += 64) {
                int nc = a->head_dim - c0 < 64 ? a->head_dim - c0 : 64;
                double acc[64] = {0};
                for (int j = 0; j < n_vis; j++) {
                    double p = exp(score(a, q, kb + k_attention_row(a, j, ldk)) - mx) / sum;
                    const float *vr = vb + k_attention_row(a, j, ldv);
                    for (int c = 0; c < nc; c++) acc[c] += p * vr[c0 + c];
                }
                for (int c = 0; c < nc; c++) o[c0 + c] = (float)acc[c];
            }
        }
    }
}

void k_attn_row_ref(const k_attn_row_args *a) {
    const float *q = a->q, *k = a->k;
    float *probs = a->probs;
    const int d = a->head_dim, group = a->n_head / a->n_head_kv;
    const size_t ldk = a->ldk ? (size_t)a->ldk : (size_t)a->n_head_kv * d, ldp = a->ldp ? (size_t)a->ldp : (size_t)a->t_k;
    for (int h = 0; h < a->n_head; h++) {
        const float *qh = q + (size_t)h * d, *kb = k + (size_t)(h / group) * d;
        double mx = -INFINITY, sum = 0.0;
        for (int j = 0; j < a->t_k; j++) {
            double s = dot_scaled(qh, kb + j * ldk, d, a->scale);
            if (s > mx) mx = s;
        }
        for (int j = 0; j < a->t_k; j++) sum += exp(dot_scaled(qh, kb + j * ldk, d, a->scale) - mx);
        for (int j = 0; j < a->t_k; j++) probs[h * ldp + j] = (float)(exp(dot_scaled(qh, kb + j * ldk, d, a->scale) - mx) / sum);
    }
}
