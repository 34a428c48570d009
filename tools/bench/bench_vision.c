/* bench_vision — how close the CPU vision tower runs to the machine's GEMM speed.
 *
 * Builds a CLIP ViT-L/14-336 tower with random F16 weights (the real widths: 1024 wide, 16
 * heads, MLP 4096, 24 layers, features from hidden_states[-2]), encodes one 5-partition image
 * (a 2x2 LLaVA-NeXT grid plus base) with the CLS attention rows HiRED needs (layers 0 and 22),
 * and compares the median wall time with (matmul FLOPs of that encode / sgemm rate measured
 * here at the tower's own GEMM shapes). Prints figures; asserts nothing. The last line,
 * "summary: key=value ...", repeats the encode times for scripts (tools/bench/vs-llamacpp.sh).
 * usage: hired-bench-vision [--runs N] [--partitions P] */
#include <cblas.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "attention.h"
#include "clock.h"
#include "err.h"
#include "matmul.h"
#include "mem.h"
#include "vision.h"

/* Monotonic seconds. */
static double now_s(void) { return clock_ms() / 1e3; }

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static float *random_buf(size_t n, unsigned seed) {
    float *x = mem_alloc_aligned(n * sizeof(float));
    srand(seed);
    for (size_t i = 0; i < n; i++) x[i] = (float)((double)rand() / RAND_MAX - 0.5);
    return x;
}

/* sgemm rate over the tower's GEMM shapes (m = P·577 rows): qkv/o (k=1024,n=1024), fc1
 * (k=1024,n=4096), fc2 (k=4096,n=1024), weighted as in one block. */
static double sgemm_rate(int m, int runs) {
    const int shapes[3][3] = {{1024, 1024, 4}, {4096, 1024, 1}, {1024, 4096, 1}}; /* n, k, count per block */
    float *x = random_buf((size_t)m * 4096, 1), *w = random_buf((size_t)4096 * 4096, 2), *y = random_buf((size_t)m * 4096, 3);
    double best = 0;
    for (int r = 0; r < runs + 1; r++) {
        double flops = 0, t = now_s();
        for (int s = 0; s < 3; s++)
            for (int c = 0; c < shapes[s][2]; c++) {
                int n = shapes[s][0], k = shapes[s][1];
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0f, x, k, w, k, 0.0f, y, n);
                flops += 2.0 * m * n * k;
            }
        double rate = flops / (now_s() - t);
        if (r > 0 && rate > best) best = rate; /* first round is warm-up */
    }
    mem_free_aligned(x);
    mem_free_aligned(w);
    mem_free_aligned(y);
    return best;
}

/* One partition's attention plus its CLS row probabilities, as the tower runs them. */
static void attention_with_probs(k_ctx_t *ctx, const k_attention_args *a, const k_attn_row_args *r) {
    if (k_attention(ctx, a) || k_attn_row(ctx, r)) fprintf(stderr, "hired-bench-vision: %s\n", k_ctx_err(ctx));
}

static double attention_rate(k_ctx_t *ctx, int runs) {
    const int T = 577, H = 16, hd = 64, D = H * hd;
    float *q = random_buf((size_t)T * D, 4), *k = random_buf((size_t)T * D, 5), *v = random_buf((size_t)T * D, 6);
    float *o = random_buf((size_t)T * D, 7), *probs = random_buf((size_t)H * T, 8);
    k_attention_args a = {.t_q = T, .t_k = T, .n_head = H, .n_head_kv = H, .head_dim = hd, .q = q, .k = k, .v = v,
                          .out = o, .scale = 0.125f};
    k_attn_row_args r = {.t_k = T, .n_head = H, .n_head_kv = H, .head_dim = hd, .q = q, .k = k, .scale = 0.125f,
                         .probs = probs};
    double times[16];
    runs = runs > 16 ? 16 : runs;
    attention_with_probs(ctx, &a, &r);
    for (int r0 = 0; r0 < runs; r0++) {
        double t = now_s();
        for (int i = 0; i < 5; i++) attention_with_probs(ctx, &a, &r);
        times[r0] = (now_s() - t) / 5;
    }
    mem_free_aligned(q);
    mem_free_aligned(k);
    mem_free_aligned(v);
    mem_free_aligned(o);
    mem_free_aligned(probs);
    return 4.0 * T * T * D / median(times, runs);
}

/* OpenBLAS reads OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE when it loads: with either set, run this
 * command again with both removed (this command only) and say so. */
static void reexec_clean(char **argv) {
    if (getenv("HIRED_BENCH_VISION_REEXEC")) {
        printf("environment: OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset for this run (re-executed)\n");
        return;
    }
    if (!getenv("OPENBLAS_CORETYPE") && !getenv("OPENBLAS_L2_SIZE")) return;
    printf("environment: OPENBLAS_CORETYPE=%s OPENBLAS_L2_SIZE=%s are set; re-running with both unset\n",
           getenv("OPENBLAS_CORETYPE") ? getenv("OPENBLAS_CORETYPE") : "(unset)",
           getenv("OPENBLAS_L2_SIZE") ? getenv("OPENBLAS_L2_SIZE") : "(unset)");
    fflush(stdout);
    unsetenv("OPENBLAS_CORETYPE");
    unsetenv("OPENBLAS_L2_SIZE");
    setenv("HIRED_BENCH_VISION_REEXEC", "1", 1);
    execv("/proc/self/exe", argv);
    perror("execv /proc/self/exe");
}

int main(int argc, char **argv) {
    reexec_clean(argv);
    int runs = 3, parts = 5;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--runs") && i + 1 < argc)
            runs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--partitions") && i + 1 < argc)
            parts = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: hired-bench-vision [--runs N] [--partitions P]\n");
            return 2;
        }
    }
    if (runs < 1 || runs > 16 || parts < 1 || parts > 10) {
        fprintf(stderr, "hired-bench-vision: --runs 1..16, --partitions 1..10\n");
        return 2;
    }
    const char *ct = getenv("OPENBLAS_CORETYPE");
    printf("hired-bench-vision: CLIP ViT-L/14-336 widths, random F16 weights, %d partitions, %d runs (median)\n", parts,
           runs);
    printf("environment: OPENBLAS_CORETYPE=%s, OPENBLAS_L2_SIZE=%s%s\n", ct ? ct : "(unset)",
           getenv("OPENBLAS_L2_SIZE") ? getenv("OPENBLAS_L2_SIZE") : "(unset)",
           ct ? "  [forced kernel: unset both for the CPU's own sgemm kernel, as on a user's machine]" : "");
    printf("openblas: %s, %d threads\n", openblas_get_config(), openblas_get_num_threads());

    hf_vision_config_t vc = {.hidden = 1024, .intermediate = 4096, .layers = 24, .heads = 16, .image_size = 336,
                             .patch_size = 14, .channels = 3, .eps = 1e-5f, .act = HF_ACT_QUICK_GELU};
    char err[HIRED_ERR_LEN];
    k_device_t *dev = k_device_open("cpu", err);
    k_ctx_t *ctx = dev ? k_ctx_new(dev, err) : NULL;
    vision_t *v = ctx ? vision_new_random(&vc, -2, dev, TENSOR_DTYPE_F16, 42, err) : NULL;
    if (!v) {
        fprintf(stderr, "hired-bench-vision: %s\n", err);
        return 1;
    }
    float *pixels = random_buf((size_t)parts * 3 * 336 * 336, 9);
    vision_opts_t opts = {.n_attn_layers = 2, .attn_layers = {0, 22}};

    const int m = parts * 577;
    printf("kernels: %s\n", k_device_kernels(dev));
    double rate_blas = sgemm_rate(m, runs);
    /* the machine's measured peak: the best of raw OpenBLAS and k_matmul (the GEMM family the
     * CPU backend chose) at fc1's shape, in the precision the tower runs in */
    double rate_f32 = k_matmul_rate(ctx, m, 4096, 1024, TENSOR_DTYPE_F32, K_MATMUL_PREC_F32, 2) * 1e9;
    bool bf16 = k_matmul_default_prec() == K_MATMUL_PREC_BF16;
    double rate_bf16 = k_matmul_rate(ctx, m, 4096, 1024, TENSOR_DTYPE_F16, K_MATMUL_PREC_BF16, 2) * 1e9;
    double rate = rate_blas > rate_f32 ? rate_blas : rate_f32;
    if (bf16 && rate_bf16 > rate) rate = rate_bf16;
    double arate = attention_rate(ctx, runs);
    double flops = vision_matmul_flops(v, parts, &opts);

    double times[16];
    vision_out_t out;
    k_ctx_reset(ctx);
    if (k_ctx_reserve(ctx, vision_arena_bytes(v, ctx, parts, &opts))) {
        fprintf(stderr, "hired-bench-vision: out of memory for the arena\n");
        return 1;
    }
    for (int r = 0; r <= runs; r++) {
        double t = now_s();
        if (vision_encode(v, ctx, pixels, parts, &opts, &out, err)) {
            fprintf(stderr, "hired-bench-vision: %s\n", err);
            return 1;
        }
        if (r > 0) times[r - 1] = now_s() - t; /* run 0 is warm-up */
        k_ctx_reset(ctx); /* the outputs go with the arena */
        fprintf(stderr, "\rrun %d/%d", r, runs);
    }
    fprintf(stderr, "\r");
    double best = times[0];
    for (int r = 1; r < runs; r++)
        if (times[r] < best) best = times[r];
    double t = median(times, runs);
    double ideal = flops / rate;
    printf("\n| figure | value |\n|---|---|\n");
    printf("| kernels | %s |\n", k_device_kernels(dev));
    printf("| raw OpenBLAS sgemm at the tower's shapes (m=%d), as loaded | %.1f GFLOP/s |\n", m, rate_blas / 1e9);
    printf("| k_matmul F32 weights, %dx4096x1024 (the chosen GEMM family) | %.1f GFLOP/s |\n", m, rate_f32 / 1e9);
    printf("| k_matmul F16 weights, bf16 precision, %dx4096x1024 | %.1f GFLOP/s |\n", m, rate_bf16 / 1e9);
    printf("| machine's measured peak (%s, the best of the above that applies) | %.1f GFLOP/s |\n",
           bf16 ? "bf16 precision in force" : "float32", rate / 1e9);
    printf("| attention rate (577x577, 16 heads x 64, with CLS probs) | %.1f GFLOP/s |\n", arate / 1e9);
    printf("| matmul FLOPs of one encode (incl. attention products) | %.1f GFLOP |\n", flops / 1e9);
    printf("| ideal time = FLOPs / measured peak | %.3f s |\n", ideal);
    printf("| measured encode time (median of %d) | %.3f s |\n", runs, t);
    printf("| achieved | %.1f GFLOP/s (peak %.1f) |\n", flops / t / 1e9, rate / 1e9);
    printf("| ratio measured / ideal (goal <= 1.30) | %.3f |\n", t / ideal);
    printf("summary: partitions=%d runs=%d encode_best_s=%.3f encode_median_s=%.3f\n", parts, runs, best, t);
    mem_free_aligned(pixels);
    vision_destroy(&v);
    k_ctx_destroy(&ctx);
    k_device_close(&dev);
    return 0;
}
