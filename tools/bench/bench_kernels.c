/* bench_kernels — hired-bench-kernels: throughput of the CPU kernels at the shapes that matter.
 *
 * Prints sgemm GFLOP/s (raw OpenBLAS and k_matmul_cpu) and attention GFLOP/s (with the CLS row
 * probabilities, k_attn_row_cpu) at CLIP ViT-L/14-336 shapes (577 tokens, 16 heads of 64), and
 * attention alone through the AVX2 tiles beside the GEMM path at that shape and at a causal
 * prefill chunk's, the decode matvec (m = 1, F16 weights) in GB/s of weights
 * streamed, the elementwise/row ops in GB/s moved, and one whole CLIP encoder block timed against
 * its matmul FLOPs at the measured sgemm rate (the encoder's acceptance ratio, which must be
 * ≤ 1.3). Not a test: numbers only.
 * With F16 weights at the tower's and a prefill chunk's shapes: the AVX2 GEMM tiles beside the
 * library path (convert + sgemm), interleaved.
 * Usage: hired-bench-kernels [seconds per measurement] [gemm|matvec|tiles|attention|rows|clip]. */
#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "act.h"
#include "add.h"
#include "attention.h"
#include "attention_x86.h"
#include "clock.h"
#include "cpu_ops.h"
#include "cpu_util.h"
#include "gemm.h"
#include "gemm_x86.h"
#include "half.h"
#include "kverify.h"
#include "matmul.h"
#include "mem.h"
#include "norm.h"
#include "rope.h"
#include "softmax.h"

static double min_seconds = 0.5;
static void *to_half(const float *x, size_t n);

/* Monotonic seconds. */
static double now(void) { return clock_ms() / 1e3; }

/* Process CPU seconds (all threads). On a shared machine wall time also counts the time other
 * processes held the cores; with OMP_NUM_THREADS=1 the CPU-time figures are the cleaner ones. */
static double cpu_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

typedef void (*bench_fn)(void *ctx);

static double last_cpu; /* CPU seconds per call of the last time_it */

/* Wall seconds per call: one warm-up, then repeat until min_seconds have passed. */
static double time_it(bench_fn fn, void *ctx) {
    fn(ctx);
    int it = 0;
    double t0 = now(), c0 = cpu_now(), t;
    do {
        fn(ctx);
        it++;
    } while ((t = now() - t0) < min_seconds);
    last_cpu = (cpu_now() - c0) / it;
    return t / it;
}

static float *fbuf(size_t n, uint64_t seed) {
    float *p = mem_alloc_aligned(n * sizeof(float));
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    kverify_fill(p, n, seed, -1, 1);
    return p;
}

// ---- GEMM --------------------------------------------------------------------------------------

typedef struct {
    int m, n, k;
    float *x, *w, *y;
} raw_gemm;

static void run_raw_sgemm(void *c) {
    raw_gemm *g = c;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, g->m, g->n, g->k, 1.0f, g->x, g->k, g->w, g->k, 0.0f, g->y, g->n);
}

/* The CPU context every measurement runs on (scratch from its arena), made on first use. */
static k_ctx_t *bench_ctx(void) {
    static k_device_t *dev;
    static k_ctx_t *ctx;
    char err[HIRED_ERR_LEN];
    if (!ctx && (!(dev = k_device_open("cpu", err)) || !(ctx = k_ctx_new(dev, err)))) {
        fprintf(stderr, "cannot open the CPU backend: %s\n", err);
        exit(1);
    }
    return ctx;
}

/* Attention with the CLS row's probabilities, as the vision tower runs it at HiRED's layers. */
typedef struct {
    k_attention_args at;
    k_attn_row_args row;
} at_probs_t;

static void run_attention_probs(void *c) {
    at_probs_t *a = c;
    k_attention_cpu(bench_ctx(), &a->at);
    k_attn_row_cpu(bench_ctx(), &a->row);
}

static void run_matmul(void *c) { k_matmul_cpu(bench_ctx(), c); }
static void run_attention(void *c) { k_attention_cpu(bench_ctx(), c); }
static void run_layernorm(void *c) { k_layernorm_cpu(bench_ctx(), c); }
static void run_rmsnorm(void *c) { k_rmsnorm_cpu(bench_ctx(), c); }
static void run_softmax(void *c) { k_softmax_cpu(bench_ctx(), c); }
static void run_gelu(void *c) { k_gelu_erf_cpu(bench_ctx(), c); }
static void run_qgelu(void *c) { k_quick_gelu_cpu(bench_ctx(), c); }
static void run_silu(void *c) { k_silu_mul_cpu(bench_ctx(), c); }
static void run_add(void *c) { k_add_cpu(bench_ctx(), c); }
static void run_rope(void *c) { k_rope_cpu(bench_ctx(), c); }

/* sgemm rate at the CLIP MLP shape, through k_matmul_cpu (OpenMP-split single-threaded BLAS). */
static double best_cpu_rate; /* sgemm FLOPs per CPU-second, for the CPU-time ratio */

static double bench_gemm(void) {
    printf("== GEMM (y = x·wᵀ, F32)\n");
    const int shapes[][3] = {{577, 1024, 1024}, {577, 4096, 1024}, {577, 1024, 4096}};
    double best_rate = 0;
    for (size_t s = 0; s < 3; s++) {
        int m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
        float *x = fbuf((size_t)m * k, 1), *w = fbuf((size_t)n * k, 2), *y = fbuf((size_t)m * n, 3);
        k_matmul_args a = {.m = m, .n = n, .k = k, .x = x, .w = w, .w_dtype = TENSOR_DTYPE_F32, .y = y};
        double t = time_it(run_matmul, &a), fl = 2.0 * m * n * k;
        printf("  k_matmul_cpu %4dx%4dx%4d: %7.1f GFLOP/s (%.2f ms; per CPU-second %.1f)\n", m, n, k, fl / t * 1e-9, t * 1e3,
               fl / last_cpu * 1e-9);
        if (fl / t > best_rate) best_rate = fl / t, best_cpu_rate = fl / last_cpu;
        if (s == 1) {
            /* the same GEMM through OpenBLAS's own threads, for comparison */
            openblas_set_num_threads(omp_get_max_threads());
            raw_gemm g = {m, n, k, x, w, y};
            double tr = time_it(run_raw_sgemm, &g);
            printf("  raw sgemm (OpenBLAS %d threads): %7.1f GFLOP/s\n", omp_get_max_threads(), fl / tr * 1e-9);
            openblas_set_num_threads(1);
            a.w_dtype = TENSOR_DTYPE_F16;
            uint16_t *wh = mem_alloc_aligned((size_t)n * k * 2);
            for (size_t i = 0; i < (size_t)n * k; i++) wh[i] = f32_to_half(w[i]);
            a.w = wh;
            double th = time_it(run_matmul, &a);
            printf("  k_matmul_cpu F16 weights:   %7.1f GFLOP/s (convert + sgemm)\n", fl / th * 1e-9);
            mem_free_aligned(wh);
        }
        mem_free_aligned(x), mem_free_aligned(w), mem_free_aligned(y);
    }
    return best_rate;
}

/* Decode: m = 1 against a 4096×4096 and the 32064×4096 lm_head, F16 and F32 weights. */
static void bench_matvec(void) {
    printf("== decode matvec (m = 1), GB/s of weights read\n");
    const int shapes[][2] = {{4096, 4096}, {14336, 4096}, {32064, 4096}};
    for (size_t s = 0; s < 3; s++) {
        int n = shapes[s][0], k = shapes[s][1];
        size_t nw = (size_t)n * k;
        float *x = fbuf(k, 4), *y = fbuf(n, 5), *w = fbuf(nw, 6);
        uint16_t *wh = mem_alloc_aligned(nw * 2);
        for (size_t i = 0; i < nw; i++) wh[i] = f32_to_half(w[i]);
        k_matmul_args a = {.m = 1, .n = n, .k = k, .x = x, .w = wh, .w_dtype = TENSOR_DTYPE_F16, .y = y};
        double t = time_it(run_matmul, &a);
        printf("  F16 %5dx%4d: %6.1f GB/s (%.2f ms)", n, k, nw * 2 / t * 1e-9, t * 1e3);
        a.w = w, a.w_dtype = TENSOR_DTYPE_F32;
        t = time_it(run_matmul, &a);
        printf("   F32: %6.1f GB/s (%.2f ms)\n", nw * 4 / t * 1e-9, t * 1e3);
        a.m = 4, a.w = wh, a.w_dtype = TENSOR_DTYPE_F16;
        mem_free_aligned(x), mem_free_aligned(y), mem_free_aligned(w), mem_free_aligned(wh);
    }
}

/* Best of 2 rounds of fn(a) with a kernel switch on and off, interleaved (seconds). */
static void interleaved(bench_fn fn, void *a, bool (*enable)(bool), double *best_on, double *best_off) {
    *best_on = *best_off = 1e30;
    for (int round = 0; round < 2; round++) {
        double on = time_it(fn, a);
        enable(false);
        double off = time_it(fn, a);
        enable(true);
        *best_on = on < *best_on ? on : *best_on, *best_off = off < *best_off ? off : *best_off;
    }
}

/* A linear layer with half weights through the AVX2 GEMM tiles and through the library path
 * (convert + sgemm), interleaved, best of 2 rounds each. */
static void compare_matmul(k_matmul_args *a, const char *label) {
    double fl = 2.0 * a->m * a->n * a->k;
    if (!k_cpu_gemm_tiles_usable()) {
        double sec = time_it(run_matmul, a);
        printf("  %-26s %s %4dx%5dx%5d: library path %7.1f GFLOP/s (no AVX2 GEMM tiles on this CPU)\n", label,
               tensor_dtype_name(a->w_dtype), a->m, a->n, a->k, fl / sec * 1e-9);
        return;
    }
    double best_t, best_l;
    interleaved(run_matmul, a, k_cpu_gemm_tiles_enable, &best_t, &best_l);
    printf("  %-26s %s %4dx%5dx%5d: tiles %7.1f GFLOP/s, library path (%s) %7.1f: tiles %.2fx\n", label,
           tensor_dtype_name(a->w_dtype), a->m, a->n, a->k, fl / best_t * 1e-9, k_cpu_gemm_family(), fl / best_l * 1e-9,
           best_l / best_t);
}

static void bench_matmul_tiles(void) {
    printf("== linear layers: AVX2 GEMM tiles vs the library path (interleaved, best of 2 rounds)\n");
    const struct {
        const char *label;
        int m, n, k;
    } shapes[] = {{"CLIP qkv/o", 577, 1024, 1024}, {"CLIP fc1", 577, 4096, 1024}, {"CLIP fc2", 577, 1024, 4096},
                  {"prefill chunk q/k/v/o", 512, 4096, 4096}, {"prefill chunk gate/up", 512, 11008, 4096},
                  {"prefill chunk down", 512, 4096, 11008}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int m = shapes[s].m, n = shapes[s].n, k = shapes[s].k;
        float *x = fbuf((size_t)m * k, 1), *w = fbuf((size_t)n * k, 2), *y = fbuf((size_t)m * n, 3);
        uint16_t *wh = to_half(w, (size_t)n * k);
        k_matmul_args a = {.m = m, .n = n, .k = k, .x = x, .w = wh, .w_dtype = TENSOR_DTYPE_F16, .y = y};
        compare_matmul(&a, shapes[s].label);
        mem_free_aligned(x), mem_free_aligned(w), mem_free_aligned(y), mem_free_aligned(wh);
    }
}

/* The same call through the AVX2 tiles and through the GEMM path, interleaved, GFLOP/s of the
 * visible products (fl). */
static void compare_paths(k_attention_args *a, double fl) {
    if (!k_cpu_att_tiles_usable()) {
        double sec = time_it(run_attention, a);
        printf("  GEMM path (%s; no AVX2 tiles on this CPU): %7.1f GFLOP/s\n", k_cpu_gemm_family(), fl / sec * 1e-9);
        return;
    }
    double best_t, best_g;
    interleaved(run_attention, a, k_cpu_att_tiles_enable, &best_t, &best_g);
    printf("  AVX2 tiles %7.1f GFLOP/s, GEMM path (%s) %7.1f GFLOP/s: tiles %.2fx (best of 2 rounds, interleaved)\n",
           fl / best_t * 1e-9, k_cpu_gemm_family(), fl / best_g * 1e-9, best_g / best_t);
}

static double bench_attention(void) {
    printf("== attention (CLIP: 577 tokens, 16 heads × 64, no mask)\n");
    int t = 577, h = 16, d = 64, row = h * d;
    float *q = fbuf((size_t)t * row, 7), *k = fbuf((size_t)t * row, 8), *v = fbuf((size_t)t * row, 9);
    float *o = fbuf((size_t)t * row, 10), *p = fbuf((size_t)h * t, 11);
    at_probs_t ap = {
        .at = {.t_q = t, .t_k = t, .n_head = h, .n_head_kv = h, .head_dim = d, .q = q, .k = k, .v = v, .out = o,
               .scale = 0.125f},
        .row = {.t_k = t, .n_head = h, .n_head_kv = h, .head_dim = d, .q = q, .k = k, .scale = 0.125f, .probs = p}};
    double sec = time_it(run_attention_probs, &ap), fl = 4.0 * t * t * d * h, rate = fl / sec;
    k_attention_args a;
    printf("  k_attention_cpu: %7.1f GFLOP/s (%.2f ms; per CPU-second %.1f)\n", fl / sec * 1e-9, sec * 1e3,
           fl / last_cpu * 1e-9);
    compare_paths(&ap.at, fl);
    mem_free_aligned(q), mem_free_aligned(k), mem_free_aligned(v), mem_free_aligned(o), mem_free_aligned(p);

    printf("== attention (prefill chunk: 512 queries after 2,400 keys, 32/8 heads × 128, causal)\n");
    int tq = 512, past = 2400;
    q = fbuf((size_t)tq * 32 * 128, 16), k = fbuf((size_t)(past + tq) * 8 * 128, 17);
    v = fbuf((size_t)(past + tq) * 8 * 128, 18), o = fbuf((size_t)tq * 32 * 128, 19);
    a = (k_attention_args){.t_q = tq, .t_k = past + tq, .n_head = 32, .n_head_kv = 8, .head_dim = 128, .q = q, .k = k,
                           .v = v, .out = o, .scale = 0.08838834764f, .causal = true, .q_pos0 = past};
    compare_paths(&a, 4.0 * 32 * 128 * tq * (past + (tq + 1) / 2.0));
    mem_free_aligned(q), mem_free_aligned(k), mem_free_aligned(v), mem_free_aligned(o);

    printf("== attention (Mistral decode: 1 query, 3000 keys, 32/8 heads × 128, causal)\n");
    int tk = 3000;
    q = fbuf(32 * 128, 12), k = fbuf((size_t)tk * 8 * 128, 13), v = fbuf((size_t)tk * 8 * 128, 14), o = fbuf(32 * 128, 15);
    a = (k_attention_args){.t_q = 1, .t_k = tk, .n_head = 32, .n_head_kv = 8, .head_dim = 128, .q = q, .k = k, .v = v,
                           .out = o, .scale = 0.08838834764f, .causal = true, .q_pos0 = tk - 1};
    sec = time_it(run_attention, &a);
    printf("  k_attention_cpu: %7.2f ms, %6.1f GB/s of K/V read\n", sec * 1e3, 2.0 * tk * 8 * 128 * 4 / sec * 1e-9);
    mem_free_aligned(q), mem_free_aligned(k), mem_free_aligned(v), mem_free_aligned(o);

    /* the decoder's default cache (F16) at LLaMA-7B widths, as hired-bench-llm's decode reads it */
    printf("== attention (LLaMA-7B decode: 1 query, 2900 keys, 32/32 heads × 128, causal, F16 cache)\n");
    tk = 2900;
    const size_t kvn = (size_t)tk * 32 * 128;
    uint16_t *kh = mem_alloc_aligned(kvn * 2), *vh = mem_alloc_aligned(kvn * 2);
    float *tmp = fbuf(kvn, 30);
    for (size_t i = 0; i < kvn; i++) kh[i] = f32_to_half(tmp[i]), vh[i] = f32_to_half(tmp[kvn - 1 - i]);
    mem_free_aligned(tmp);
    q = fbuf(32 * 128, 31), o = fbuf(32 * 128, 32);
    a = (k_attention_args){.t_q = 1, .t_k = tk, .n_head = 32, .n_head_kv = 32, .head_dim = 128, .q = q, .k = kh,
                           .v = vh, .out = o, .scale = 0.08838834764f, .causal = true, .q_pos0 = tk - 1,
                           .kv_dtype = TENSOR_DTYPE_F16};
    sec = time_it(run_attention, &a);
    printf("  k_attention_cpu: %7.2f ms, %6.1f GB/s of K/V read\n", sec * 1e3, 2.0 * kvn * 2 / sec * 1e-9);
    mem_free_aligned(q), mem_free_aligned(o), mem_free_aligned(kh), mem_free_aligned(vh);
    return rate;
}

static void report_bw(const char *name, bench_fn fn, void *ctx, double bytes) {
    double t = time_it(fn, ctx);
    printf("  %-34s %7.1f GB/s (%.3f ms)\n", name, bytes / t * 1e-9, t * 1e3);
}

static void bench_rows(void) {
    printf("== row and elementwise ops, GB/s moved (read + write)\n");
    int m = 577, d = 1024;
    size_t n = (size_t)m * 4096;
    float *x = fbuf(n, 20), *y = fbuf(n, 21), *g = fbuf(4096, 22), *b = fbuf(4096, 23), *u = fbuf(n, 24);
    k_layernorm_args ln = {.m = m, .d = d, .x = x, .y = y, .gamma = g, .beta = b, .eps = 1e-5f};
    report_bw("layernorm 577x1024", run_layernorm, &ln, 2.0 * m * d * 4);
    k_rmsnorm_args rn = {.m = 2308, .d = 1024, .x = u, .y = u, .gamma = g, .eps = 1e-5f};
    report_bw("rmsnorm 2308x1024 (in place)", run_rmsnorm, &rn, 2.0 * 2308 * 1024 * 4);
    k_softmax_args sm = {.m = 577 * 4, .n = 577, .x = u};
    report_bw("softmax 2308x577", run_softmax, &sm, 2.0 * 577 * 4 * 577 * 4);
    k_act_args ac = {.n = (int64_t)n, .x = x, .y = y};
    report_bw("gelu_erf 577x4096", run_gelu, &ac, 2.0 * n * 4);
    report_bw("quick_gelu 577x4096", run_qgelu, &ac, 2.0 * n * 4);
    ac.x = y;
    report_bw("quick_gelu 577x4096 (in place)", run_qgelu, &ac, 2.0 * n * 4);
    k_silu_mul_args sl = {.n = (int64_t)n, .gate = x, .up = u, .y = y};
    report_bw("silu_mul 577x4096", run_silu, &sl, 3.0 * n * 4);
    k_add_args ad = {.n = (int64_t)m * d, .a = x, .b = u, .y = y};
    report_bw("add 577x1024", run_add, &ad, 3.0 * m * d * 4);
    ad.y = (float *)ad.a;
    ad.a = y;
    ad.y = y;
    report_bw("add 577x1024 (in place)", run_add, &ad, 3.0 * m * d * 4);
    k_rope_args rp = {.t = 512, .n_head = 32, .head_dim = 128, .x = u, .pos0 = 100, .theta = 1e6};
    report_bw("rope 512x32x128", run_rope, &rp, 2.0 * 512 * 4096 * 4);
    mem_free_aligned(x), mem_free_aligned(y), mem_free_aligned(g), mem_free_aligned(b), mem_free_aligned(u);
}

// ---- one CLIP encoder block, as the vision tower runs it ---------------------------------------

typedef struct {
    int t, d, f, h;
    tensor_dtype_t wdt;          /* dtype of the four weight matrices */
    void *wqkv_h, *wo_h, *w1_h, *w2_h; /* their F16 copies when wdt is F16 */
    float *hid, *a, *qkv, *att, *mlp, *probs;
    float *wqkv, *bqkv, *wo, *bo, *w1, *b1, *w2, *b2, *g1, *be1, *g2, *be2;
} clip_block;

static void run_clip_block(void *c) {
    clip_block *B = c;
    int t = B->t, d = B->d, f = B->f;
    bool h = B->wdt == TENSOR_DTYPE_F16;
    const void *wqkv = h ? B->wqkv_h : B->wqkv, *wo = h ? B->wo_h : B->wo, *w1 = h ? B->w1_h : B->w1, *w2 = h ? B->w2_h : B->w2;
    k_layernorm_cpu(bench_ctx(), &(k_layernorm_args){.m = t, .d = d, .x = B->hid, .y = B->a, .gamma = B->g1, .beta = B->be1, .eps = 1e-5f});
    k_matmul_cpu(bench_ctx(), &(k_matmul_args){.m = t, .n = 3 * d, .k = d, .x = B->a, .w = wqkv, .w_dtype = B->wdt,
                                  .bias = B->bqkv, .y = B->qkv});
    for (int p = 0; p < t / 577; p++) {
        const float *qkv = B->qkv + (size_t)p * 577 * 3 * d;
        k_attention_cpu(bench_ctx(), &(k_attention_args){.t_q = 577, .t_k = 577, .n_head = B->h, .n_head_kv = B->h, .head_dim = d / B->h,
                                            .q = qkv, .k = qkv + d, .v = qkv + 2 * d, .ldq = 3 * d, .ldk = 3 * d, .ldv = 3 * d,
                                            .out = B->att + (size_t)p * 577 * d, .scale = 0.125f});
        k_attn_row_cpu(bench_ctx(), &(k_attn_row_args){.t_k = 577, .n_head = B->h, .n_head_kv = B->h, .head_dim = d / B->h,
                                                        .q = qkv, .k = qkv + d, .ldk = 3 * d, .scale = 0.125f,
                                                        .probs = B->probs});
    }
    k_matmul_cpu(bench_ctx(), &(k_matmul_args){.m = t, .n = d, .k = d, .x = B->att, .w = wo, .w_dtype = B->wdt, .bias = B->bo,
                                  .y = B->hid, .accumulate = true}); /* residual folded into accumulate */
    k_layernorm_cpu(bench_ctx(), &(k_layernorm_args){.m = t, .d = d, .x = B->hid, .y = B->a, .gamma = B->g2, .beta = B->be2, .eps = 1e-5f});
    k_matmul_cpu(bench_ctx(), &(k_matmul_args){.m = t, .n = f, .k = d, .x = B->a, .w = w1, .w_dtype = B->wdt, .bias = B->b1,
                                  .y = B->mlp});
    k_quick_gelu_cpu(bench_ctx(), &(k_act_args){.n = (int64_t)t * f, .x = B->mlp, .y = B->mlp});
    k_matmul_cpu(bench_ctx(), &(k_matmul_args){.m = t, .n = d, .k = f, .x = B->mlp, .w = w2, .w_dtype = B->wdt, .bias = B->b2,
                                  .y = B->hid, .accumulate = true});
}

static void *to_half(const float *x, size_t n) {
    uint16_t *h = mem_alloc_aligned(n * 2);
    for (size_t i = 0; i < n; i++) h[i] = f32_to_half(x[i]);
    return h;
}

/* One block over `tiles` partitions batched as the vision tower does (M = tiles·577 rows in every
 * linear layer, attention per partition). */
static void bench_clip_block(double sgemm_rate, int tiles, tensor_dtype_t wdt) {
    printf("== CLIP ViT-L/14-336 encoder block (%d x 577 tokens, width 1024, MLP 4096), %s weights\n", tiles,
           tensor_dtype_name(wdt));
    clip_block B = {.t = 577 * tiles, .d = 1024, .f = 4096, .h = 16, .wdt = wdt};
    int t = B.t, d = B.d, f = B.f;
    B.hid = fbuf((size_t)t * d, 30), B.a = fbuf((size_t)t * d, 31), B.qkv = fbuf((size_t)t * 3 * d, 32);
    B.att = fbuf((size_t)t * d, 33), B.mlp = fbuf((size_t)t * f, 34), B.probs = fbuf((size_t)16 * t, 35);
    B.wqkv = fbuf((size_t)3 * d * d, 36), B.bqkv = fbuf(3 * d, 37), B.wo = fbuf((size_t)d * d, 38), B.bo = fbuf(d, 39);
    B.w1 = fbuf((size_t)f * d, 40), B.b1 = fbuf(f, 41), B.w2 = fbuf((size_t)d * f, 42), B.b2 = fbuf(d, 43);
    B.g1 = fbuf(d, 44), B.be1 = fbuf(d, 45), B.g2 = fbuf(d, 46), B.be2 = fbuf(d, 47);
    for (int i = 0; i < d * d * 3; i++) B.wqkv[i] *= 0.03f; /* keep activations O(1) across repeats */
    for (int i = 0; i < d * d; i++) B.wo[i] *= 0.001f;
    for (int i = 0; i < d * f; i++) B.w2[i] *= 0.001f, B.w1[i] *= 0.03f;
    if (wdt == TENSOR_DTYPE_F16) {
        B.wqkv_h = to_half(B.wqkv, (size_t)3 * d * d), B.wo_h = to_half(B.wo, (size_t)d * d);
        B.w1_h = to_half(B.w1, (size_t)f * d), B.w2_h = to_half(B.w2, (size_t)d * f);
    }
    double sec = time_it(run_clip_block, &B);
    double mm_flops = 2.0 * t * ((double)3 * d * d + (double)d * d + 2.0 * d * f);
    double ideal = mm_flops / sgemm_rate;
    printf("  block: %.2f ms; matmul FLOPs / sgemm rate = %.2f ms; ratio %.3f (acceptance: <= 1.3)\n", sec * 1e3,
           ideal * 1e3, sec / ideal);
    printf("  by CPU time: block %.2f ms vs %.2f ms; ratio %.3f\n", last_cpu * 1e3, mm_flops / best_cpu_rate * 1e3,
           last_cpu / (mm_flops / best_cpu_rate));
    printf("  5 tiles x 23 blocks: %.2f s\n", sec * 23 * 5 / tiles);
    float *bufs[] = {B.hid, B.a, B.qkv, B.att, B.mlp, B.probs, B.wqkv, B.bqkv, B.wo, B.bo,
                     B.w1,  B.b1, B.w2, B.b2,  B.g1, B.be1,  B.g2,  B.be2};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) mem_free_aligned(bufs[i]);
    mem_free_aligned(B.wqkv_h), mem_free_aligned(B.wo_h), mem_free_aligned(B.w1_h), mem_free_aligned(B.w2_h);
}

int main(int argc, char **argv) {
    if (argc > 1) min_seconds = atof(argv[1]);
    const char *ct = getenv("OPENBLAS_CORETYPE");
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("OPENBLAS_CORETYPE: %s\n", ct ? ct : "(not set)");
    printf("OpenMP threads: %d; %s\n", omp_get_max_threads(), openblas_get_config());
    printf("kernels: gemm: %s (the raw sgemm rows below are OpenBLAS as loaded; k_matmul rows run the family)\n",
           k_cpu_gemm_family());
    k_cpu_blas_init();
    const char *only = argc > 2 ? argv[2] : NULL;
    bool all = !only;
    double rate = 0, arate = 0;
    if (all || !strcmp(only, "gemm") || !strcmp(only, "clip")) rate = bench_gemm();
    if (all || !strcmp(only, "matvec")) bench_matvec();
    if (all || !strcmp(only, "tiles")) bench_matmul_tiles();
    if (all || !strcmp(only, "attention")) arate = bench_attention();
    if (all || !strcmp(only, "rows")) bench_rows();
    if (all || !strcmp(only, "clip")) {
        bench_clip_block(rate, 1, TENSOR_DTYPE_F32);
        bench_clip_block(rate, 5, TENSOR_DTYPE_F16);
    }
    if (rate > 0 && arate > 0)
        printf("summary: sgemm %.1f GFLOP/s, attention %.1f GFLOP/s (%.0f%% of sgemm)\n", rate * 1e-9, arate * 1e-9,
               100.0 * arate / rate);
    return 0;
}
