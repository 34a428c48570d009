/* wire_visual.c — the visual record to and from its wire fields (see wire_visual.h). */
#include "wire_visual.h"

#include <string.h>

#include "err.h"
#include "half.h"
#include "mem.h"

int wire_put_visual(const visual_t *v, wire_dtype_t dtype, wire_visual_t *m, zmq_msg_t *tensor, char *err) {
    if (v->k < 1 || v->k > WIRE_MAX_KEPT || v->d < 1 || v->d > WIRE_MAX_DIM)
        return hired_errf(err, HIRED_ERANGE, "%d kept tokens of width %d exceed the protocol's limits", v->k, v->d);
    m->kept = (uint32_t)v->k;
    m->dim = (uint32_t)v->d;
    m->dtype = dtype;
    m->grid[0] = (uint32_t)v->rows;
    m->grid[1] = (uint32_t)v->cols;
    m->image_size[0] = (uint32_t)v->orig_w;
    m->image_size[1] = (uint32_t)v->orig_h;
    m->parts = (uint32_t)v->n;
    m->patch_grid = (uint32_t)v->grid;
    uint16_t *pos = mem_alloc((size_t)v->k * 3 * sizeof *pos); /* [k][3] */
    if (!pos) return hired_errf(err, HIRED_ENOMEM, "out of memory");
    for (int i = 0; i < v->k; i++) {
        pos[3 * i] = (uint16_t)v->pos[i].part;
        pos[3 * i + 1] = (uint16_t)v->pos[i].row; /* -1 (summary token) -> 0xFFFF */
        pos[3 * i + 2] = (uint16_t)v->pos[i].col;
    }
    int rc = wire_visual_set_positions(m, pos, (uint32_t)v->k);
    mem_free(pos);
    if (rc) return hired_errf(err, HIRED_ENOMEM, "out of memory");

    size_t n = (size_t)v->k * v->d, es = wire_dtype_size(dtype);
    if (zmq_msg_init_size(tensor, n * es)) return hired_errf(err, HIRED_ENOMEM, "out of memory for %zu bytes", n * es);
    void *dst = zmq_msg_data(tensor); /* [k, d] of dtype */
    if (dtype == WIRE_DTYPE_F32) {
        memcpy(dst, v->features, n * sizeof(float));
    } else {
        uint16_t *h = dst; /* ZeroMQ buffers may be unaligned for floats, never for uint16 writes via memcpy */
        for (size_t i = 0; i < n; i++) {
            uint16_t x = dtype == WIRE_DTYPE_F16 ? f32_to_half(v->features[i]) : f32_to_bf16(v->features[i]);
            memcpy(h + i, &x, sizeof x);
        }
    }
    size_t bad = wire_count_nonfinite(dst, n, dtype);
    if (bad) {
        zmq_msg_close(tensor);
        return hired_errf(err, HIRED_ERANGE, "%zu of %zu selected feature values are not finite in %s (NaN or Inf "
                          "from the vision tower)", bad, n, wire_dtype_name(dtype));
    }
    return HIRED_OK;
}

int wire_get_visual(const wire_msg_t *job, uint32_t i, const zmq_msg_t *tensor, visual_t *v, char *err) {
    memset(v, 0, sizeof *v);
    if (i >= job->n_visuals || !job->visuals)
        return hired_errf(err, HIRED_EPROTO, "visual record %u of %u", i + 1, job->n_visuals);
    const wire_visual_t *m = &job->visuals[i];
    const int K = (int)m->kept, D = (int)m->dim;
    const size_t es = wire_dtype_size(m->dtype), bytes = zmq_msg_size((zmq_msg_t *)tensor);
    if (K < 1 || D < 1 || !m->positions || !m->parts || !m->patch_grid || bytes != (size_t)K * D * es)
        return hired_errf(err, HIRED_EPROTO, "tensor frame is %zu bytes, [%d, %d] %s needs %zu (with parts, patch_grid "
                          "and positions)", bytes, K, D, wire_dtype_name(m->dtype), (size_t)K * D * es);
    *v = (visual_t){.n = (int)m->parts, .rows = m->grid[0] ? (int)m->grid[0] : 1,
                    .cols = m->grid[1] ? (int)m->grid[1] : 1, .grid = (int)m->patch_grid,
                    .orig_w = (int)m->image_size[0], .orig_h = (int)m->image_size[1],
                    .merged = !strncmp(job->params.strategy, "prumerge", 8), .k = K, .d = D};
    v->pos = mem_alloc((size_t)K * sizeof *v->pos);
    v->features = mem_alloc_aligned((size_t)K * D * sizeof(float)); /* [K, D] */
    if (!v->pos || !v->features) {
        visual_free(v);
        return hired_errf(err, HIRED_ENOMEM, "out of memory for %d x %d features", K, D);
    }
    for (int t = 0; t < K; t++) {
        int row = m->positions[3 * t + 1], col = m->positions[3 * t + 2];
        if (row == 0xFFFF && col == 0xFFFF && v->merged) row = col = -1; /* PruMerge summary token */
        v->pos[t] = (visual_pos_t){.part = (int16_t)m->positions[3 * t], .row = (int16_t)row, .col = (int16_t)col};
    }
    int rc = visual_check(v, err);
    const void *src = zmq_msg_data((zmq_msg_t *)tensor); /* [K, D] of dtype, 64-byte aligned */
    size_t n = (size_t)K * D, bad = rc ? 0 : wire_count_nonfinite(src, n, m->dtype);
    if (bad) rc = hired_errf(err, HIRED_ERANGE, "%zu of %zu encoder feature values are not finite (NaN or Inf)", bad, n);
    if (rc) {
        visual_free(v);
        return rc;
    }
    if (m->dtype == WIRE_DTYPE_F32) {
        memcpy(v->features, src, n * sizeof(float));
    } else {
        const uint16_t *h = src;
        for (size_t t = 0; t < n; t++) v->features[t] = m->dtype == WIRE_DTYPE_F16 ? half_to_f32(h[t]) : bf16_to_f32(h[t]);
    }
    return HIRED_OK;
}
