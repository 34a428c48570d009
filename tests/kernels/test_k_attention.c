/* test_k_attention — k_attention_cpu against k_attention_ref: MHA and GQA, causal and not,
 * q_pos0 > 0, several query blocks, decode (t_q = 1), padded and interleaved (fused-qkv)
 * strides, and the no-scratch STREAM fallback; k_attn_row_cpu against k_attn_row_ref for one
 * query row of the same data (MHA and GQA, padded key rows, a strided probs block).
 * Tolerance: |a−b| ≤ 1e-5 + 1e-4·|ref| for out and probs (attention.h). The cases run through
 * the AVX2 register tiles where the CPU has them and through the GEMM path under each GEMM
 * library. Also: a query row's bits through the tiles do not depend on its chunk or tile; the
 * tiles' exponential equals k_expf; hand-computed 2×2 cases, the plan's decisions, the
 * workspace bound and _check's rejections. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "attention.h"
#include "attention_x86.h"
#include "err.h"
#include "gemm.h"
#include "half.h"
#include "kmath.h"
#include "kverify.h"
#include "mem.h"
#include "ktest.h"
#include "test.h"

typedef struct {
    int t_q, t_k, n_head, n_head_kv, head_dim;
    bool causal;
    int q_pos0;
    int probs_row; /* -1: no row probabilities checked */
    int layout;    /* 0 dense, 1 padded rows, 2 interleaved q|k|v rows (fused projection) */
} at_case;

static uint64_t seed = 1000;

static void run_case(at_case c, bool fail_alloc) {
    int qrow = c.n_head * c.head_dim, kvrow = c.n_head_kv * c.head_dim;
    int ldq = qrow, ldk = kvrow, ldv = kvrow, ldo = qrow;
    float *qb, *kb, *vb, *buf = NULL;
    size_t nq, nk;
    if (c.layout == 2) { /* rows [q | k | v], t_q == t_k */
        int ld = qrow + 2 * kvrow;
        buf = malloc(sizeof(float) * (size_t)c.t_k * ld);
        kverify_fill(buf, (size_t)c.t_k * ld, seed++, -1, 1);
        qb = buf, kb = buf + qrow, vb = buf + qrow + kvrow;
        ldq = ldk = ldv = ld;
    } else {
        if (c.layout == 1) ldq += 3, ldk += 5, ldv += 1, ldo += 2;
        nq = (size_t)c.t_q * ldq, nk = (size_t)c.t_k * ldk;
        qb = malloc(nq * 4), kb = malloc(nk * 4), vb = malloc((size_t)c.t_k * ldv * 4);
        kverify_fill(qb, nq, seed++, -1, 1);
        kverify_fill(kb, nk, seed++, -1, 1);
        kverify_fill(vb, (size_t)c.t_k * ldv, seed++, -1, 1);
    }
    size_t no = (size_t)c.t_q * ldo, np = (size_t)c.n_head * c.t_k;
    float *o = malloc(no * 4), *orf = malloc(no * 4), *p = malloc(np * 4), *pr = malloc(np * 4);
    kverify_fill(o, no, 7, 5, 6); /* padding must survive */
    memcpy(orf, o, no * 4);
    k_attention_args a = {.t_q = c.t_q, .t_k = c.t_k, .n_head = c.n_head, .n_head_kv = c.n_head_kv, .head_dim = c.head_dim,
                          .q = qb, .k = kb, .v = vb, .ldq = c.layout ? ldq : 0, .ldk = c.layout ? ldk : 0,
                          .ldv = c.layout ? ldv : 0, .ldo = c.layout ? ldo : 0, .out = o,
                          .scale = 1.0f / sqrtf((float)c.head_dim), .causal = c.causal, .q_pos0 = c.q_pos0};
    char err[HIRED_ERR_LEN];
    CHECK_MSG(k_attention_check(&a, err) == 0, "%s", err);
    if (fail_alloc) mem_fail_after(0, true);
    k_attention_cpu(ktest_ctx(), &a);
    if (fail_alloc) mem_fail_after(-1, false);
    a.out = orf;
    k_attention_ref(&a);
    /* the row probabilities of query probs_row over every key, as the vision tower asks */
    k_attn_row_args ar = {.t_k = c.t_k, .n_head = c.n_head, .n_head_kv = c.n_head_kv, .head_dim = c.head_dim,
                          .q = qb + (size_t)(c.probs_row < 0 ? 0 : c.probs_row) * ldq, .k = kb,
                          .ldk = c.layout ? ldk : 0, .scale = a.scale, .probs = p};
    if (c.probs_row >= 0) {
        CHECK_MSG(k_attn_row_check(&ar, err) == 0, "%s", err);
        k_attn_row_cpu(ktest_ctx(), &ar);
        ar.probs = pr;
        k_attn_row_ref(&ar);
    }
    char name[200];
    snprintf(name, sizeof name, "attention t_q=%d t_k=%d heads=%d/%d d=%d causal=%d pos0=%d probs_row=%d layout=%d%s", c.t_q,
             c.t_k, c.n_head, c.n_head_kv, c.head_dim, c.causal, c.q_pos0, c.probs_row, c.layout,
             fail_alloc ? " (no scratch)" : "");
    kverify_result r = kverify_close(o, orf, no, 1e-5, 1e-4);
    CHECK_MSG(kverify_report(name, &r, o, orf), "%s: out", name);
    if (c.probs_row >= 0) {
        r = kverify_close(p, pr, np, 1e-5, 1e-4);
        CHECK_MSG(kverify_report(name, &r, p, pr), "%s: probs", name);
    }
    free(o), free(orf), free(p), free(pr);
    if (buf)
        free(buf);
    else
        free(qb), free(kb), free(vb);
}

static void test_against_ref(void) {
    const at_case cases[] = {
        {1, 1, 1, 1, 1, false, 0, 0, 0},          /* smallest */
        {577, 577, 2, 2, 64, false, 0, 0, 0},     /* CLIP row count, CLS probabilities */
        {33, 33, 4, 4, 16, false, 0, 17, 2},      /* fused qkv rows */
        {64, 64, 8, 2, 32, true, 0, 63, 1},       /* GQA prefill, padded strides */
        {300, 300, 2, 1, 32, true, 0, 299, 0},    /* causal, two query blocks */
        {40, 100, 4, 2, 32, true, 60, 5, 1},      /* chunked prefill: q_pos0 > 0 */
        {300, 400, 2, 1, 16, true, 100, 260, 1},  /* chunked prefill over two query blocks */
        {3, 1025, 2, 2, 8, false, 0, 2, 0},       /* long keys, short queries */
        {1, 300, 8, 2, 64, true, 299, 0, 0},      /* decode, GQA */
        {1, 300, 4, 4, 128, true, 299, -1, 1},    /* decode, MHA, padded */
        {1, 300, 4, 1, 32, true, 150, 0, 0},      /* decode at an earlier position */
        {1, 300, 6, 3, 72, true, 299, 0, 1},      /* decode, 3 kv heads: items of 2 and 1, head_dim 16k + 8 */
        {1, 577, 4, 4, 64, false, 0, 0, 0},       /* CLS query only (vision tower's last layer), MHA: sgemv */
        {5, 7, 3, 3, 5, true, 0, -1, 0},          /* causal with t_k > t_q, pos0 = 0 */
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) run_case(cases[i], false);
    /* no scratch: the online-softmax stream path */
    run_case((at_case){64, 64, 8, 2, 32, true, 0, 63, 1}, true);
    run_case((at_case){1, 300, 8, 2, 64, true, 299, 0, 0}, true);
    run_case((at_case){33, 33, 4, 4, 16, false, 0, 17, 2}, true);
}

static void test_known(void) {
    /* q = k = I₂, v = [[1,2],[3,4]], scale 1: row 0 scores (1, 0), row 1 scores (0, 1) */
    float q[4] = {1, 0, 0, 1}, v[4] = {1, 2, 3, 4}, out[4], probs[2];
    k_attention_args a = {.t_q = 2, .t_k = 2, .n_head = 1, .n_head_kv = 1, .head_dim = 2, .q = q, .k = q, .v = v,
                          .out = out, .scale = 1.0f};
    k_attention_cpu(ktest_ctx(), &a);
    CHECK_NEAR(out[0], 1.5378828427399902, 1e-6);
    CHECK_NEAR(out[1], 2.5378828427399904, 1e-6);
    CHECK_NEAR(out[2], 2.46211715726001, 1e-6);
    CHECK_NEAR(out[3], 3.46211715726001, 1e-6);
    k_attn_row_args r = {.t_k = 2, .n_head = 1, .n_head_kv = 1, .head_dim = 2, .q = q + 2, .k = q, .scale = 1.0f,
                         .probs = probs};
    k_attn_row_cpu(ktest_ctx(), &r); /* row 1 */
    CHECK_NEAR(probs[0], 0.2689414213699951, 1e-7);
    CHECK_NEAR(probs[1], 0.7310585786300049, 1e-7);
    r.q = q; /* row 0, every key (the row op has no mask) */
    k_attn_row_cpu(ktest_ctx(), &r);
    CHECK_NEAR(probs[0], 0.7310585786300049, 1e-7);
    CHECK_NEAR(probs[1], 0.2689414213699951, 1e-7);
    a.causal = true; /* row 0 now sees key 0 only */
    k_attention_cpu(ktest_ctx(), &a);
    CHECK_NEAR(out[0], 1.0, 1e-7);
    CHECK_NEAR(out[1], 2.0, 1e-7);
    CHECK_NEAR(out[2], 2.46211715726001, 1e-6);
}

/* attn_row into a strided probs block ([n_head, t_k] rows ldp apart): only the rows' first t_k
 * entries change. */
static void test_attn_row_strided(void) {
    const int T = 37, H = 4, HKV = 2, D = 8, LDP = T + 5, LDK = HKV * D + 3;
    float q[H * D], k[T * LDK], p[H * LDP], pr[H * LDP];
    kverify_fill(q, ARRAY_LEN(q), seed++, -1, 1);
    kverify_fill(k, ARRAY_LEN(k), seed++, -1, 1);
    kverify_fill(p, ARRAY_LEN(p), 3, 9, 10);
    memcpy(pr, p, sizeof p);
    k_attn_row_args a = {.t_k = T, .n_head = H, .n_head_kv = HKV, .head_dim = D, .q = q, .k = k, .ldk = LDK,
                         .scale = 0.3f, .probs = p, .ldp = LDP};
    k_attn_row_cpu(ktest_ctx(), &a);
    a.probs = pr;
    k_attn_row_ref(&a);
    kverify_result r = kverify_close(p, pr, ARRAY_LEN(p), 1e-5, 1e-4);
    CHECK_MSG(kverify_report("attn_row strided", &r, p, pr), "attn_row strided");
    bool pad_ok = true;
    for (int h = 0; h < H; h++)
        for (int j = T; j < LDP; j++) pad_ok &= p[h * LDP + j] >= 9 && p[h * LDP + j] < 10;
    CHECK_MSG(pad_ok, "attn_row wrote past t_k");
}

/* The workspace is an upper bound for the same arguments with fewer keys (a decode job reserves
 * once, for its longest step). */
static void test_workspace_bound(void) {
    const int tqs[] = {1, 3, 40, 300, 1000};
    bool ok = true, crossed = false;
    for (int dd = 64; dd <= 256; dd *= 4) /* at 256 wide heads the keys stop packing past 4,096 */
        for (size_t i = 0; i < ARRAY_LEN(tqs); i++) {
            k_attention_args a = {.t_q = tqs[i], .t_k = 5000, .n_head = 8, .n_head_kv = 2, .head_dim = dd, .causal = true};
            size_t most = k_attention_cpu_workspace(&a);
            for (int tk = 1; tk <= 5000; tk += 37) {
                k_attention_args b = a;
                b.t_k = tk;
                ok &= k_attention_cpu_workspace(&b) <= most;
                k_attention_launch l;
                k_attention_plan(&b, 2, &l);
                crossed |= dd == 256 && tqs[i] > 1 && l.pack_floats > 0 && tk > 4000;
            }
            k_attention_launch l;
            k_attention_plan(&a, 2, &l);
            crossed &= dd != 256 || tqs[i] == 1 || l.pack_floats == 0;
        }
    CHECK_MSG(crossed, "the bound's range does not cross the packing limit");
    CHECK_MSG(ok, "attention workspace at fewer keys exceeds the bound at the most keys");

    /* an F16 cache read in place (the AVX2 tiles pack from it, the decode kernel reads it) needs
     * no widened float32 copies: the workspace equals a float32 cache's; the GEMM path widens
     * the keys and values first (2 · t_k · 2 heads · 64 floats more) */
    if (k_cpu_att_tiles_usable() && k_cpu_att_decode_usable()) {
        for (int tq = 1; tq <= 300; tq += 299) {
            k_attention_args f32 = {.t_q = tq, .t_k = 3000, .n_head = 8, .n_head_kv = 2, .head_dim = 64, .causal = true};
            k_attention_args f16 = f32;
            f16.kv_dtype = TENSOR_DTYPE_F16;
            const size_t w32 = k_attention_cpu_workspace(&f32), w16 = k_attention_cpu_workspace(&f16);
            CHECK_MSG(w16 == w32, "t_q %d: F16 cache read in place reserves %zu bytes, float32 %zu", tq, w16, w32);
            CHECK(k_cpu_att_tiles_enable(false));
            const size_t w16g = k_attention_cpu_workspace(&f16);
            CHECK(k_cpu_att_tiles_enable(true));
            CHECK_MSG(w16g >= w32 + 2 * (size_t)3000 * 2 * 64 * sizeof(float),
                      "t_q %d: the GEMM path's widened copies are not reserved (%zu bytes)", tq, w16g);
        }
    }
}

static void test_plan(void) {
    k_attention_launch l;
    k_attention_args a = {.t_q = 577, .t_k = 577, .n_head = 16, .n_head_kv = 16, .head_dim = 64};
    k_attention_plan(&a, 2, &l);
    CHECK(l.variant == K_ATTENTION_BLOCKED && l.block_q == 577 && l.n_items == 16 && l.n_threads == 2);
    CHECK_EQ_INT(l.score_ld, 592);
    CHECK_EQ_INT(l.pack_floats, 2 * 592 * 64); /* keys and values, 577 rounded up to 16 */
    CHECK_EQ_INT(l.scratch_floats, (2 * 592 * 64 + 577 * 592 + 577 + 15) / 16 * 16);
    CHECK_EQ_INT(l.item_rows, 577);
    k_attention_plan(&a, 16, &l); /* 16 threads: each head in blocks, at least 4 items a thread */
    CHECK(l.block_q == 160 && l.n_items == 16 * 4);
    a = (k_attention_args){.t_q = 3000, .t_k = 3000, .n_head = 32, .n_head_kv = 8, .head_dim = 128, .causal = true};
    k_attention_plan(&a, 2, &l);
    CHECK(l.variant == K_ATTENTION_BLOCKED && l.block_q <= 256 && l.block_q % 16 == 0);
    CHECK_EQ_INT(l.pack_floats, 2 * 3008 * 128);
    CHECK(l.scratch_floats <= l.pack_floats + K_ATTENTION_SCRATCH_FLOATS + 16 * (size_t)l.block_q + 16);
    CHECK_EQ_INT(l.n_items, 32 * ((3000 + l.block_q - 1) / l.block_q));
    a = (k_attention_args){.t_q = 4, .t_k = 1 << 20, .n_head = 2, .n_head_kv = 2, .head_dim = 64};
    k_attention_plan(&a, 2, &l);
    CHECK_EQ_INT(l.block_q, 1); /* huge key count: one query row per item */
    CHECK_EQ_INT(l.pack_floats, 0); /* and too many keys to pack: the GEMM path */
    a = (k_attention_args){.t_q = 1, .t_k = 2000, .n_head = 32, .n_head_kv = 8, .head_dim = 128, .causal = true, .q_pos0 = 1999};
    k_attention_plan(&a, 2, &l);
    /* decode: the 8 kv heads shared evenly by the threads, each item its 4 heads' 16 q heads */
    CHECK(l.variant == K_ATTENTION_DECODE && l.item_heads == 4 && l.n_items == 2 && l.item_rows == 16 &&
          l.scratch_floats == (16 * 2000u + 16 + 15) / 16 * 16);
    k_attention_plan(&a, 3, &l); /* 3 threads: items of 3, 3 and 2 kv heads */
    CHECK(l.item_heads == 3 && l.n_items == 3 && l.n_threads == 3 && l.item_rows == 12);
    k_attention_plan(&a, 64, &l); /* more threads than kv heads: one each */
    CHECK(l.item_heads == 1 && l.n_items == 8 && l.n_threads == 8);
    a = (k_attention_args){.t_q = 2, .t_k = 2, .n_head = 1, .n_head_kv = 1, .head_dim = 2};
    k_attention_plan(&a, 8, &l);
    CHECK_EQ_INT(l.n_threads, 1);
}

static void test_check(void) {
    float buf[64] = {0}, p[8];
    char err[HIRED_ERR_LEN];
    k_attention_args good = {.t_q = 2, .t_k = 2, .n_head = 2, .n_head_kv = 1, .head_dim = 2, .q = buf, .k = buf, .v = buf,
                             .out = buf + 32, .scale = 1.0f};
    CHECK_EQ_INT(k_attention_check(&good, err), 0);
    CHECK_EQ_INT(k_attention_check(NULL, err), HIRED_EINVAL);
    k_attention_args a = good;
    a.n_head = 3, a.n_head_kv = 2;
    CHECK_EQ_INT(k_attention_check(&a, err), HIRED_EINVAL);
    CHECK(strstr(err, "divide") != NULL);
    a = good, a.kv_dtype = (tensor_dtype_t)7;
    CHECK_EQ_INT(k_attention_check(&a, err), HIRED_EINVAL);
    CHECK(strstr(err, "dtype") != NULL);
    a = good, a.ldk = 1;
    CHECK_EQ_INT(k_attention_check(&a, err), HIRED_EINVAL);
    CHECK(strstr(err, "ldk") != NULL);
    a = good, a.ldq = 3;
    CHECK_EQ_INT(k_attention_check(&a, err), HIRED_EINVAL);
    a = good, a.ldo = 3;
    CHECK_EQ_INT(k_attention_check(&a, err), HIRED_EINVAL);
    a = good, a.ldv = 1;
    CHECK_EQ_INT(k_attention_check(&a, err), HIRED_EINVAL);
    a = good, a.t_q = 0;
    CHECK_EQ_INT(k_attention_check(&a, err), HIRED_EINVAL);
    a = good, a.head_dim = -1;
    CHECK_EQ_INT(k_attention_check(&a, err), HIRED_EINVAL);
    a = good, a.v = NULL;
    CHECK_EQ_INT(k_attention_check(&a, err), HIRED_EINVAL);
    a = good, a.q_pos0 = -1;
    CHECK_EQ_INT(k_attention_check(&a, err), HIRED_EINVAL);
    a = good, a.scale = NAN;
    CHECK_EQ_INT(k_attention_check(&a, err), HIRED_EINVAL);

    k_attn_row_args rgood = {.t_k = 2, .n_head = 2, .n_head_kv = 1, .head_dim = 2, .q = buf, .k = buf, .scale = 1.0f,
                             .probs = p};
    CHECK_EQ_INT(k_attn_row_check(&rgood, err), 0);
    CHECK_EQ_INT(k_attn_row_check(NULL, err), HIRED_EINVAL);
    k_attn_row_args r = rgood;
    r.probs = NULL;
    CHECK_EQ_INT(k_attn_row_check(&r, err), HIRED_EINVAL);
    r = rgood, r.n_head_kv = 3;
    CHECK(k_attn_row_check(&r, err) == HIRED_EINVAL && strstr(err, "divide") != NULL);
    r = rgood, r.ldk = 1;
    CHECK(k_attn_row_check(&r, err) == HIRED_EINVAL && strstr(err, "ldk") != NULL);
    r = rgood, r.ldp = 1;
    CHECK(k_attn_row_check(&r, err) == HIRED_EINVAL && strstr(err, "ldp") != NULL);
    r = rgood, r.t_k = 0;
    CHECK_EQ_INT(k_attn_row_check(&r, err), HIRED_EINVAL);
}

/* Paged keys and values (a block table over one pool, blocks out of order and interleaved with
 * another layer's rows): the fast path gives exactly the bits of the same keys and values dense,
 * for float32 and F16 caches, prefill and decode shapes; the reference reads the table too, and
 * for F16 runs on the same values widened. With the tiles (and the decode kernel, which read
 * the cache where it lies) and without them (a widened copy). */
static void test_paged(void) {
    const int B = 16, T = 150, HKV = 2, H = 4, D = 16, KV = HKV * D, NB = (T + B - 1) / B, POOL = NB + 3;
    const int32_t table[] = {7, 2, 9, 0, 4, 11, 1, 5, 3, 10}; /* NB = 10 blocks of POOL = 13 */
    CHECK_EQ_INT((int)ARRAY_LEN(table), NB);
    const size_t stride = (size_t)2 * 2 * B * KV; /* [2 layers][k, v][B][KV]: layer 1 is used */
    for (int half = 0; half < 2; half++) {
        const tensor_dtype_t dt = half ? TENSOR_DTYPE_F16 : TENSOR_DTYPE_F32;
        const size_t esz = half ? 2 : 4;
        float *k = malloc((size_t)T * KV * 4), *v = malloc((size_t)T * KV * 4), *q = malloc((size_t)T * H * D * 4);
        uint8_t *dk = malloc((size_t)T * KV * esz), *dv = malloc((size_t)T * KV * esz);
        uint8_t *pool = calloc((size_t)POOL * stride, esz);
        kverify_fill(k, (size_t)T * KV, seed++, -1, 1);
        kverify_fill(v, (size_t)T * KV, seed++, -1, 1);
        kverify_fill(q, (size_t)T * H * D, seed++, -1, 1);
        const size_t lk = (size_t)2 * B * KV, lv = lk + (size_t)B * KV; /* layer 1's keys and values in a block */
        for (int j = 0; j < T; j++)
            for (int e = 0; e < KV; e++) {
                size_t at = (size_t)table[j / B] * stride + (size_t)(j % B) * KV + e;
                float kf = k[(size_t)j * KV + e], vf = v[(size_t)j * KV + e];
                if (half) {
                    ((uint16_t *)dk)[(size_t)j * KV + e] = ((uint16_t *)pool)[lk + at] = f32_to_half(kf);
                    ((uint16_t *)dv)[(size_t)j * KV + e] = ((uint16_t *)pool)[lv + at] = f32_to_half(vf);
                } else {
                    ((float *)dk)[(size_t)j * KV + e] = ((float *)pool)[lk + at] = kf;
                    ((float *)dv)[(size_t)j * KV + e] = ((float *)pool)[lv + at] = vf;
                }
            }
        const int shapes[][2] = {{T, 0}, {40, 110}, {1, T - 1}}; /* t_q, q_pos0: prefill, a later chunk, decode */
        for (size_t s = 0; s < ARRAY_LEN(shapes); s++) {
            const int tq = shapes[s][0], p0 = shapes[s][1];
            float *o1 = malloc((size_t)tq * H * D * 4), *o2 = malloc((size_t)tq * H * D * 4);
            k_attention_args a = {.t_q = tq, .t_k = p0 + tq, .n_head = H, .n_head_kv = HKV, .head_dim = D,
                                  .q = q, .k = dk, .v = dv, .out = o1, .scale = 0.25f, .causal = true, .q_pos0 = p0,
                                  .kv_dtype = dt};
            CHECK_EQ_INT(k_attention_cpu(ktest_ctx(), &a), 0);
            k_attention_args pg = a;
            pg.k = pool + lk * esz, pg.v = pool + lv * esz, pg.ldk = pg.ldv = KV;
            pg.kv_blocks = table, pg.kv_block = B, pg.kv_block_stride = stride, pg.out = o2;
            char err[HIRED_ERR_LEN];
            CHECK_MSG(k_attention_check(&pg, err) == 0, "%s", err);
            CHECK_EQ_INT(k_attention_cpu(ktest_ctx(), &pg), 0);
            CHECK_MSG(!memcmp(o1, o2, (size_t)tq * H * D * 4), "paged %s t_q=%d pos0=%d: not the dense bits",
                      half ? "f16" : "f32", tq, p0);
            if (!half) { /* the reference through the table vs the fast path */
                pg.out = o1;
                k_attention_ref(&pg);
                kverify_result r = kverify_close(o2, o1, (size_t)tq * H * D, 1e-5, 1e-4);
                CHECK_MSG(kverify_report("paged ref", &r, o2, o1), "paged reference t_q=%d", tq);
            } else { /* F16: the reference on the same values widened to float32 */
                float *kw = malloc((size_t)T * KV * 4), *vw = malloc((size_t)T * KV * 4);
                for (size_t i = 0; i < (size_t)T * KV; i++)
                    kw[i] = half_to_f32(((uint16_t *)dk)[i]), vw[i] = half_to_f32(((uint16_t *)dv)[i]);
                k_attention_args ar = a;
                ar.k = kw, ar.v = vw, ar.kv_dtype = TENSOR_DTYPE_F32, ar.out = o1;
                k_attention_ref(&ar);
                kverify_result r = kverify_close(o2, o1, (size_t)tq * H * D, 1e-5, 1e-4);
                CHECK_MSG(kverify_report("paged f16 ref", &r, o2, o1), "paged f16 reference t_q=%d", tq);
                free(kw), free(vw);
            }
            free(o1), free(o2);
        }
        k_attention_args bad = {.t_q = 1, .t_k = 1, .n_head = 1, .n_head_kv = 1, .head_dim = 1, .q = q, .k = k, .v = v,
                                .out = q, .kv_blocks = table};
        char err[HIRED_ERR_LEN];
        CHECK(k_attention_check(&bad, err) == HIRED_EINVAL && strstr(err, "block size"));
        free(k), free(v), free(q), free(dk), free(dv), free(pool);
    }
}

/* Through the tiles a query row's output has the same bits in any chunk and tile: a causal
 * prefill of 100 rows against the same rows as chunks of 37, 2, 49 and 12 (q_pos0 > 0),
 * grouped query heads, the fused q|k|v layout. */
static void test_tiles_row_invariant(void) {
    if (!k_cpu_att_tiles_usable()) {
        printf("note: this CPU runs attention through the GEMM path (no AVX2, or AVX-512): tiles not checked\n");
        return;
    }
    enum { T = 100, H = 4, HKV = 2, D = 32, W = (H + 2 * HKV) * D };
    float *qkv = malloc(sizeof(float) * T * W), *o1 = malloc(sizeof(float) * T * H * D),
          *o2 = malloc(sizeof(float) * T * H * D);
    kverify_fill(qkv, (size_t)T * W, 77, -2, 2);
    k_attention_args a = {.t_q = T, .t_k = T, .n_head = H, .n_head_kv = HKV, .head_dim = D, .q = qkv, .k = qkv + H * D,
                          .v = qkv + (H + HKV) * D, .ldq = W, .ldk = W, .ldv = W, .out = o1, .scale = 0.2f, .causal = true};
    CHECK(k_attention_cpu(ktest_ctx(), &a) == HIRED_OK);
    const int chunks[] = {37, 2, 49, 12}; /* one row would be a decode step (the GEMM path) */
    int p0 = 0;
    for (size_t i = 0; i < ARRAY_LEN(chunks); i++) {
        k_attention_args b = a;
        b.t_q = chunks[i], b.t_k = p0 + chunks[i], b.q_pos0 = p0;
        b.q = qkv + (size_t)p0 * W, b.out = o2 + (size_t)p0 * H * D;
        CHECK(k_attention_cpu(ktest_ctx(), &b) == HIRED_OK);
        p0 += chunks[i];
    }
    CHECK_MSG(!memcmp(o1, o2, sizeof(float) * T * H * D), "tiles: chunked rows differ in bits from the whole prefill");
    free(qkv), free(o1), free(o2);
}

/* The tiles' exponential row: k_expf's values (within an ulp: the same steps, 2^n as one
 * factor) over the whole range softmax gives it, zeros past n, the sum. */
static void test_tiles_exp(void) {
    if (!k_cpu_att_tiles_usable()) return;
    enum { N = 203, NZ = 211 };
    float x[NZ], y[NZ];
    bool ok = true;
    for (int round = 0; round < 3; round++) {
        for (int j = 0; j < NZ; j++) x[j] = y[j] = -100.0f * (float)((j * 37 + round * 11) % N) / N + (j == 77) * 5.0f;
        if (round == 2) x[5] = y[5] = 1e30f; /* everything else underflows to 0 */
        float m = -INFINITY;
        for (int j = 0; j < N; j++) m = x[j] > m ? x[j] : m;
        double want_sum = 0;
        float sum = k_cpu_att_exp_row(y, N, NZ);
        for (int j = 0; j < N; j++) {
            float want = k_expf(x[j] - m);
            want_sum += want;
            ok &= fabsf(y[j] - want) <= 1.2e-7f * want;
        }
        for (int j = N; j < NZ; j++) ok &= y[j] == 0.0f;
        ok &= fabs(sum - want_sum) <= 1e-6 * want_sum;
    }
    CHECK_MSG(ok, "tiles exp row differs from k_expf");
}

/* A decode step's bits do not depend on the thread count: the values are summed over fixed
 * blocks of K_DECODE_KB keys (attention_x86.h), whichever thread takes a block, and the blocks
 * added in order. F16 cache, 1,100 keys (18 blocks, the last one short; enough work for the
 * plan to use threads), 6 kv heads (so that 3 threads get 3 items), 1 to 3 threads. */
static void test_decode_threads(void) {
    if (!k_cpu_att_decode_usable()) return;
    enum { T = 1100, H = 12, HK = 6, D = 64 };
    k_attention_launch l;
    k_attention_args pa = {.t_q = 1, .t_k = T, .n_head = H, .n_head_kv = HK, .head_dim = D, .causal = true,
                           .q_pos0 = T - 1};
    k_attention_plan(&pa, 3, &l);
    CHECK_EQ_INT(l.n_threads, 3); /* the case runs on 3 threads where asked */
    float *q = malloc(H * D * 4), *tmp = malloc((size_t)T * HK * D * 4), *o[3];
    uint16_t *k = malloc((size_t)T * HK * D * 2), *v = malloc((size_t)T * HK * D * 2);
    kverify_fill(q, H * D, 71, -1, 1);
    kverify_fill(tmp, (size_t)T * HK * D, 72, -1, 1);
    for (size_t i = 0; i < (size_t)T * HK * D; i++) k[i] = f32_to_half(tmp[i]), v[i] = f32_to_half(-0.5f * tmp[i] + 0.25f);
    const int before = omp_get_max_threads();
    for (int t = 0; t < 3; t++) {
        o[t] = calloc(H * D, 4);
        omp_set_num_threads(t + 1);
        k_attention_args a = {.t_q = 1, .t_k = T, .n_head = H, .n_head_kv = HK, .head_dim = D, .q = q, .k = k, .v = v,
                              .out = o[t], .scale = 0.125f, .causal = true, .q_pos0 = T - 1,
                              .kv_dtype = TENSOR_DTYPE_F16};
        CHECK_EQ_INT(k_attention_cpu(ktest_ctx(), &a), 0);
    }
    omp_set_num_threads(before);
    CHECK_MSG(!memcmp(o[0], o[1], H * D * 4) && !memcmp(o[0], o[2], H * D * 4),
              "decode attention: the bits depend on the thread count");
    float s = 0;
    for (int i = 0; i < H * D; i++) s += fabsf(o[0][i]);
    CHECK(s > 0.0f); /* a result was written */
    free(q), free(tmp), free(k), free(v), free(o[0]), free(o[1]), free(o[2]);
}

int main(void) {
    test_tiles_exp();
    test_decode_threads();
    test_tiles_row_invariant();
    test_known();
    test_paged();
    test_attn_row_strided();
    test_workspace_bound();
    test_plan();
    test_check();
    test_against_ref(); /* through the tiles where the CPU has them */
    /* the score and output GEMMs under each GEMM library the CPU backend can choose (gemm.h) */
    CHECK(k_cpu_att_tiles_enable(false));
    test_paged(); /* the widened or gathered copy of the cache through the GEMM path */
    for (int f = 0; f < K_GEMM_FAMILY_COUNT; f++) {
        CHECK(k_cpu_gemm_force((k_gemm_family)f));
        test_against_ref();
    }
    return test_summary();
}
