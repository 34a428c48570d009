/* attention.c — argument checking, dispatch entries and the CPU plan for k_attention and
 * k_attn_row (see attention.h). */
#include "attention.h"

#include "err.h"
#include "registry.h"

int k_attention_check(const k_attention_args *a, char *err) {
    if (!a) return hired_errf(err, HIRED_EINVAL, "attention: NULL args");
    if (a->t_q <= 0 || a->t_k <= 0)
        return hired_errf(err, HIRED_EINVAL, "attention: token counts must be positive (t_q=%d t_k=%d)", a->t_q, a->t_k);
    if (a->n_head <= 0 || a->n_head_kv <= 0 || a->head_dim <= 0)
        return hired_errf(err, HIRED_EINVAL, "attention: head sizes must be positive (n_head=%d n_head_kv=%d head_dim=%d)",
                          a->n_head, a->n_head_kv, a->head_dim);
    if (a->n_head % a->n_head_kv)
        return hired_errf(err, HIRED_EINVAL, "attention: n_head_kv %d does not divide n_head %d", a->n_head_kv, a->n_head);
    if (!a->q || !a->k || !a->v || !a->out) return hired_errf(err, HIRED_EINVAL, "attention: q, k, v and out must not be NULL");
    long long qrow = (long long)a->n_head * a->head_dim, kvrow = (long long)a->n_head_kv * a->head_dim;
    if (qrow > 0x7fffffffLL) return hired_errf(err, HIRED_EINVAL, "attention: q row of %lld floats is too long", qrow);
    if (a->ldq != 0 && a->ldq < qrow) return hired_errf(err, HIRED_EINVAL, "attention: ldq %d is smaller than the q row %lld", a->ldq, qrow);
    if (a->ldo != 0 && a->ldo < qrow) return hired_errf(err, HIRED_EINVAL, "attention: ldo %d is smaller than the out row %lld", a->ldo, qrow);
    if (a->ldk != 0 && a->ldk < kvrow) return hired_errf(err, HIRED_EINVAL, "attention: ldk %d is smaller than the k row %lld", a->ldk, kvrow);
    if (a->ldv != 0 && a->ldv < kvrow) return hired_errf(err, HIRED_EINVAL, "attention: ldv %d is smaller than the v row %lld", a->ldv, kvrow);
    if (a->q_pos0 < 0) return hired_errf(err, HIRED_EINVAL, "attention: q_pos0 %d is negative", a->q_pos0);
    if (!(a->scale == a->scale)) return hired_errf(err, HIRED_EINVAL, "attention: scale is NaN");
    if (!k_dtype_known(a->dtype) || !k_dtype_known(a->kv_dtype))
        return hired_errf(err, HIRED_EINVAL, "attention: unknown dtype %d / kv dtype %d", (int)a->dtype, (int)a->kv_dtype);
    if (a->kv_blocks && (a->kv_block <= 0 || a->kv_block_stride == 0))
        return hired_errf(err, HIRED_EINVAL, "attention: paged keys need a block size and stride (got %d, %zu)",
                          a->kv_block, a->kv_block_stride);
    return HIRED_OK;
}

int k_attn_row_check(const k_attn_row_args *a, char *err) {
    if (!a) return hired_errf(err, HIRED_EINVAL, "attn_row: NULL args");
    if (a->t_k <= 0 || a->n_head <= 0 || a->n_head_kv <= 0 || a->head_dim <= 0)
        return hired_errf(err, HIRED_EINVAL, "attn_row: sizes must be positive (t_k=%d n_head=%d n_head_kv=%d head_dim=%d)",
                          a->t_k, a->n_head, a->n_head_kv, a->head_dim);
    if (a->n_head % a->n_head_kv)
        return hired_errf(err, HIRED_EINVAL, "attn_row: n_head_kv %d does not divide n_head %d", a->n_head_kv, a->n_head);
    if (!a->q || !a->k || !a->probs) return hired_errf(err, HIRED_EINVAL, "attn_row: q, k and probs must not be NULL");
    long long kvrow = (long long)a->n_head_kv * a->head_dim;
    if ((long long)a->n_head * a->head_dim > 0x7fffffffLL) return hired_errf(err, HIRED_EINVAL, "attn_row: q row is too long");
    if (a->ldk != 0 && a->ldk < kvrow) return hired_errf(err, HIRED_EINVAL, "attn_row: ldk %d is smaller than the k row %lld", a->ldk, kvrow);
    if (a->ldp != 0 && a->ldp < a->t_k) return hired_errf(err, HIRED_EINVAL, "attn_row: ldp %d is smaller than t_k %d", a->ldp, a->t_k);
    if (!(a->scale == a->scale)) return hired_errf(err, HIRED_EINVAL, "attn_row: scale is NaN");
    if (!k_dtype_known(a->dtype) || !k_dtype_known(a->kv_dtype))
        return hired_errf(err, HIRED_EINVAL, "attn_row: unknown dtype %d / kv dtype %d", (int)a->dtype, (int)a->kv_dtype);
    return HIRED_OK;
}

int k_attention(k_ctx_t *ctx, const k_attention_args *a) { return k_run(ctx, K_OP_ATTENTION, a); }
int k_attn_row(k_ctx_t *ctx, const k_attn_row_args *a) { return k_run(ctx, K_OP_ATTN_ROW, a); }

/* Below this many flops everything runs on one thread. */
#define SERIAL_FLOPS (1 << 20)

void k_attention_plan(const k_attention_args *a, int max_threads, k_attention_launch *l) {
    if (max_threads < 1) max_threads = 1;
    double flops = 4.0 * a->t_q * a->t_k * a->head_dim * a->n_head;
    if (a->causal) flops *= 0.5;
    if (a->t_q == 1) {
        /* decode: one GEMM pair per kv head covers its whole group of q heads; an item is an
         * even share of the kv heads per thread (the GEMM path's unit of work, and the score
         * scratch's: item_rows rows a thread). The CPU's AVX2 decode kernels split keys among
         * the threads instead (kernels/cpu/attention_x86.h) and take from it only their scratch
         * size and thread count */
        int group = a->n_head / a->n_head_kv;
        int threads = flops < SERIAL_FLOPS ? 1 : max_threads;
        if (threads > a->n_head_kv) threads = a->n_head_kv;
        l->variant = K_ATTENTION_DECODE;
        l->block_q = 1;
        l->item_heads = (a->n_head_kv + threads - 1) / threads;
        l->n_items = (a->n_head_kv + l->item_heads - 1) / l->item_heads;
        l->item_rows = group * l->item_heads;
    } else {
        l->variant = K_ATTENTION_BLOCKED;
        /* the block of scores [block_q, t_k] stays within the per-thread budget */
        long long bq = K_ATTENTION_SCRATCH_FLOATS / a->t_k;
        if (bq >= a->t_q)
            bq = a->t_q;
        else if (bq > 16)
            bq = bq / 16 * 16;
        if (bq < 1) bq = 1;
        /* causal: smaller blocks skip more of the masked triangle */
        if (a->causal && bq > 256 && a->t_q > 256) bq = 256;
        /* enough items for every thread to get several (a head is one item at CLIP's 577
         * queries otherwise, 16 items for any thread count) */
        long long want = (long long)K_ATTENTION_ITEMS_PER_THREAD * max_threads;
        long long per_head = (want + a->n_head - 1) / a->n_head;
        if (per_head > 1 && bq > 16) {
            long long even = (a->t_q + per_head - 1) / per_head;
            even = (even + 15) / 16 * 16;
            if (even < bq) bq = even;
        }
        l->block_q = (int)bq;
        l->n_items = a->n_head * ((a->t_q + l->block_q - 1) / l->block_q);
        l->item_rows = l->block_q;
        l->item_heads = 1;
    }
    l->score_ld = (size_t)(a->t_k + 15) / 16 * 16;
    size_t pack = l->variant == K_ATTENTION_BLOCKED ? 2 * l->score_ld * (size_t)a->head_dim : 0;
    l->pack_floats = pack <= K_ATTENTION_PACK_FLOATS ? pack : 0;
    size_t floats = l->pack_floats + (size_t)l->item_rows * l->score_ld + (size_t)l->item_rows;
    l->scratch_floats = (floats + 15) / 16 * 16;
    l->n_threads = flops < SERIAL_FLOPS ? 1 : max_threads;
    if (l->n_threads > l->n_items) l->n_threads = l->n_items;
}
