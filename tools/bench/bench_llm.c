/* bench_llm — hired-bench-llm: the text model's prefill and decode step at real 7B widths
 * (hidden 4096, 32 heads, MLP 11008, vocab 32064, F16 weights, a few layers, random values)
 * against what this machine can do, measured by the same command:
 *   prefill of T tokens  vs  its matmul FLOPs ÷ the float32 sgemm rate (k_matmul, F32 weights);
 *   one decode step      vs  the bytes it must stream (weights + KV cache) ÷ the read bandwidth.
 * Also times the F16 matmul paths alone (convert-and-sgemm for prefill shapes, fused
 * convert-and-dot for decode shapes) so a shortfall can be pinned on a kernel.
 * With 8-bit weights (--weights q8, the default; native skips it): the same model shape with its
 * linear layers in Q8 (kernels/q8.h), decode steps alternated with the F16 model's on one KV
 * cache, so the q8/f16 step-time ratio is measured side by side, then rounds of Q8 steps alone as
 * the F16 model's (the tokens/s a Q8 decoder gets); and the Q8 matmul alone at the
 * decode shapes (GB/s of the bytes it streams) and at a prefill shape (GFLOP/s beside F16's).
 * Prints figures; asserts nothing.
 *
 * OpenBLAS reads OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE when it is loaded, so when either is set
 * the program re-executes itself once with both removed (for this command only) and says so;
 * --keep-env measures with them as they are.
 *
 * The last line, "summary: key=value ...", repeats the headline figures for scripts
 * (tools/bench/vs-llamacpp.sh): prefill and decode tokens/s, best run (round) and mean of all,
 * and with q8 the Q8 model's decode tokens/s the same way, from rounds of its own consecutive
 * steps after the alternated ones.
 *
 *   hired-bench-llm [--layers N] [--tokens T] [--steps S] [--reps R] [--rounds D] [--weights native|q8]
 *                   [--held native|bf16|auto] [--kv f16|f32] [--keep-env]
 * --reps: prefill runs; --rounds: decode rounds of S steps each (default: as many as --reps).
 * --held: how the main model's linear layers are held (llm.h; default native: F16 with float32
 * products; bf16: rounded to bf16 at load with bf16 products, what decoder.weights = auto picks on
 * a CPU with native bf16).
 * --kv: the KV cache's element type (default f16, the decoder's default decoder.kv_dtype, and
 * llama.cpp's; f32 is what `hired run` keeps). */
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "err.h"
#include "hfconfig.h"
#include "attention.h"
#include "llm.h"
#include "matmul.h"
#include "mem.h"
#include "q8.h"

extern char **environ;

/* Monotonic seconds. */
static double now_s(void) { return clock_ms() / 1e3; }

static void fill(float *x, size_t n, uint32_t seed) {
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        x[i] = ((float)(seed >> 8) / 16777216.0f - 0.5f);
    }
}

/* Re-executes argv without the OpenBLAS variables (they only take effect at load time). */
static void reexec_clean(char **argv) {
    const char *ct = getenv("OPENBLAS_CORETYPE"), *l2 = getenv("OPENBLAS_L2_SIZE");
    printf("environment: OPENBLAS_CORETYPE=%s OPENBLAS_L2_SIZE=%s\n", ct ? ct : "(unset)", l2 ? l2 : "(unset)");
    if (!ct && !l2) return;
    printf("note: they are set (a forced kernel); re-running this command with both unset "
           "(pass --keep-env to measure with them)\n");
    fflush(stdout);
    unsetenv("OPENBLAS_CORETYPE");
    unsetenv("OPENBLAS_L2_SIZE");
    setenv("HIRED_BENCH_LLM_REEXEC", "1", 1);
    execv("/proc/self/exe", argv);
    perror("execv /proc/self/exe");
}

/* Best-of-reps float32 sgemm rate through k_matmul (F32 weights) at an m×n×k prefill shape. */
static double sgemm_gflops(k_ctx_t *ctx, int m, int n, int k, tensor_dtype_t wdt, int reps) {
    float *x = mem_alloc_aligned((size_t)m * k * sizeof(float));
    float *w32 = mem_alloc_aligned((size_t)n * k * sizeof(float));
    void *w = mem_alloc_aligned((size_t)n * k * tensor_dtype_size(wdt));
    float *y = mem_alloc_aligned((size_t)m * n * sizeof(float));
    if (!x || !w32 || !w || !y) return 0;
    fill(x, (size_t)m * k, 1);
    fill(w32, (size_t)n * k, 2);
    tensor_convert_from_f32(w, w32, wdt, (size_t)n * k);
    k_matmul_args a = {.m = m, .n = n, .k = k, .x = x, .w = w, .w_dtype = wdt, .y = y};
    k_matmul(ctx, &a); /* warm-up */
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = now_s();
        k_matmul(ctx, &a);
        double dt = now_s() - t0;
        if (dt < best) best = dt;
    }
    mem_free_aligned(x);
    mem_free_aligned(w32);
    mem_free_aligned(w);
    mem_free_aligned(y);
    return 2.0 * m * n * k / best / 1e9;
}

/* Read bandwidth: best of reps parallel passes summing a 1 GiB buffer (integer sums, so the
 * compiler may vectorise them; the file is built at -O3). */
static double read_gbps(int reps) {
    const size_t n = (size_t)1 << 27; /* uint64 words: 1 GiB */
    uint64_t *buf = mem_alloc_aligned(n * sizeof *buf);
    if (!buf) return 0;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) buf[i] = i;
    double best = 1e30;
    volatile uint64_t sink = 0;
    for (int r = 0; r < reps; r++) {
        uint64_t s = 0;
        double t0 = now_s();
#pragma omp parallel reduction(+ : s)
        {
            int nt = omp_get_num_threads(), id = omp_get_thread_num();
            size_t lo = n / (size_t)nt * (size_t)id, hi = id == nt - 1 ? n : n / (size_t)nt * (size_t)(id + 1);
            uint64_t acc = 0;
            for (size_t i = lo; i < hi; i++) acc += buf[i];
            s += acc;
        }
        double dt = now_s() - t0;
        sink += s;
        if (dt < best) best = dt;
    }
    (void)sink;
    mem_free_aligned(buf);
    return n * sizeof(uint64_t) / best / 1e9;
}

/* Causal attention at a prefill chunk's shape: t_q queries at positions past.. over past + t_q
 * keys, 32 heads of 128. GFLOP/s of its two products (causal part only). */
static double attention_gflops(k_ctx_t *ctx, int t_q, int past, int reps) {
    const int H = 32, hd = 128, t_k = past + t_q;
    float *q = mem_alloc_aligned((size_t)t_q * H * hd * sizeof(float));
    float *k = mem_alloc_aligned((size_t)t_k * H * hd * sizeof(float));
    float *v = mem_alloc_aligned((size_t)t_k * H * hd * sizeof(float));
    float *o = mem_alloc_aligned((size_t)t_q * H * hd * sizeof(float));
    if (!q || !k || !v || !o) return 0;
    fill(q, (size_t)t_q * H * hd, 11);
    fill(k, (size_t)t_k * H * hd, 12);
    fill(v, (size_t)t_k * H * hd, 13);
    k_attention_args a = {.t_q = t_q, .t_k = t_k, .n_head = H, .n_head_kv = H, .head_dim = hd, .q = q, .k = k,
                          .v = v, .out = o, .scale = 0.088f, .causal = true, .q_pos0 = past};
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = now_s();
        k_attention(ctx, &a);
        double dt = now_s() - t0;
        if (dt < best) best = dt;
    }
    mem_free_aligned(q);
    mem_free_aligned(k);
    mem_free_aligned(v);
    mem_free_aligned(o);
    double keys = (double)t_q * past + (double)t_q * (t_q + 1) / 2.0;
    return 4.0 * keys * hd * H / best / 1e9;
}

/* Decode-shape F16 matmul (m = 1, fused convert-and-dot): achieved GB/s of weight reads. */
static double fused_gbps(k_ctx_t *ctx, int n, int k, int reps) {
    float *x = mem_alloc_aligned((size_t)k * sizeof(float));
    uint16_t *w = mem_alloc_aligned((size_t)n * k * 2);
    float *y = mem_alloc_aligned((size_t)n * sizeof(float));
    float *tmp = mem_alloc_aligned((size_t)k * sizeof(float));
    if (!x || !w || !y || !tmp) return 0;
    fill(x, (size_t)k, 3);
    for (int r = 0; r < n; r++) {
        fill(tmp, (size_t)k, 4 + (uint32_t)r);
        tensor_convert_from_f32(w + (size_t)r * k, tmp, TENSOR_DTYPE_F16, (size_t)k);
    }
    k_matmul_args a = {.m = 1, .n = n, .k = k, .x = x, .w = w, .w_dtype = TENSOR_DTYPE_F16, .y = y};
    k_matmul(ctx, &a);
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = now_s();
        k_matmul(ctx, &a);
        double dt = now_s() - t0;
        if (dt < best) best = dt;
    }
    mem_free_aligned(x);
    mem_free_aligned(w);
    mem_free_aligned(y);
    mem_free_aligned(tmp);
    return (double)n * k * 2 / best / 1e9;
}

/* Decode-shape Q8 matmul (m = 1): achieved GB/s of the weight bytes (quants and scales). */
static double q8_gbps(k_ctx_t *ctx, int n, int k, int reps) {
    double gflops = k_matmul_rate(ctx, 1, n, k, TENSOR_DTYPE_Q8, K_MATMUL_PREC_DEFAULT, reps);
    return gflops / (2.0 * k) * ((double)k_q8_bytes(n, k) / n); /* flops/s → rows/s → bytes/s */
}

/* KV cache bytes a decode step reads on average over the next n steps from kv's length on (keys
 * and values of every layer up to the step's position). */
static double kv_read_per_step(const kv_cache_t *kv, int n) {
    return 2.0 * kv_cache_layers(kv) * (kv_cache_len(kv) + n / 2.0) * kv_cache_dim(kv) *
           tensor_dtype_size(kv_cache_dtype(kv));
}

/* rounds × steps decode steps of m on kv from the input rows x (one row a step), each round
 * bracketed by read-bandwidth measurements (*bw: the one before the first round; the last one
 * after, on return): per round the best and mean step against bytes ÷ bandwidth. *best_round: the
 * fastest round's total; *sum_all: all rounds'; *best_ratio: the best step over its ideal. */
static int decode_rounds(const char *label, llm_t *m, k_ctx_t *ctx, kv_cache_t *kv, const float *x, int hidden,
                         int rounds, int steps, double bytes, double *bw, float *logits, double *best_round,
                         double *sum_all, double *best_ratio, char *err) {
    double bw_before = *bw;
    for (int r = 0; r < rounds; r++) {
        double best = 1e30, sum = 0;
        for (int s = 0; s < steps; s++) {
            const double t0 = now_s();
            if (llm_forward(m, ctx, kv, x + (size_t)(r * steps + s) * hidden, 1, LLM_LOGITS_LAST, logits, err)) return 1;
            const double dt = now_s() - t0;
            sum += dt;
            if (dt < best) best = dt;
        }
        *sum_all += sum;
        if (sum < *best_round) *best_round = sum;
        const double bw_after = read_gbps(3), ideal = bytes / (0.5 * (bw_before + bw_after) * 1e9);
        printf("%s: round %d: %d steps at position ~%d: best %.1f ms, mean %.1f ms; bandwidth %.1f before / %.1f "
               "after -> ideal %.1f ms; ratio %.2fx best, %.2fx mean\n",
               label, r + 1, steps, kv_cache_len(kv) - steps, best * 1e3, sum / steps * 1e3, bw_before, bw_after,
               ideal * 1e3, best / ideal, sum / steps / ideal);
        if (best / ideal < *best_ratio) *best_ratio = best / ideal;
        bw_before = bw_after;
    }
    *bw = bw_before;
    return 0;
}

/* Decode steps of the F16 model m and the Q8 model mq alternated on one cache (the same
 * geometry; each step appends one position): best and mean per step of each, printed. */
static int side_by_side(llm_t *m, llm_t *mq, k_ctx_t *ctx, kv_cache_t *kv, const float *x, int hidden, int steps,
                        float *logits, char *err) {
    double best[2] = {1e30, 1e30}, sum[2] = {0, 0};
    for (int s = 0; s < steps; s++)
        for (int w = 0; w < 2; w++) {
            double t0 = now_s();
            if (llm_forward(w ? mq : m, ctx, kv, x + (size_t)(2 * s + w) * hidden, 1, LLM_LOGITS_LAST, logits, err))
                return 1;
            double dt = now_s() - t0;
            sum[w] += dt;
            if (dt < best[w]) best[w] = dt;
        }
    const int layers = llm_config(m)->layers;
    printf("decode f16 vs q8 (alternating steps, same cache, position ~%d): F16 best %.1f ms, mean %.1f ms; "
           "Q8 best %.1f ms, mean %.1f ms; q8/f16 step time %.2fx best, %.2fx mean (speed-up %.2fx)\n",
           kv_cache_len(kv), best[0] * 1e3, sum[0] / steps * 1e3, best[1] * 1e3, sum[1] / steps * 1e3, best[1] / best[0],
           sum[1] / sum[0], sum[0] / sum[1]);
    printf("decode q8: %.2f GB of weights per step (F16 %.2f GB); a 32-layer model would take ~%.0f ms per step "
           "(F16 ~%.0f ms)\n",
           llm_weight_bytes_per_step(mq) / 1e9, llm_weight_bytes_per_step(m) / 1e9, sum[1] / steps * 1e3 * 32.0 / layers,
           sum[0] / steps * 1e3 * 32.0 / layers);
    return 0;
}

int main(int argc, char **argv) {
    int layers = 2, tokens = 3000, steps = 8, reps = 2, rounds = 0, keep_env = 0, q8 = 1;
    tensor_dtype_t kv_dt = TENSOR_DTYPE_F16; /* the decoder's default (decoder.kv_dtype) */
    llm_weights_t held = LLM_WEIGHTS_NATIVE;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--layers") && i + 1 < argc) layers = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--tokens") && i + 1 < argc) tokens = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--steps") && i + 1 < argc) steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--rounds") && i + 1 < argc) rounds = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--keep-env")) keep_env = 1;
        else if (!strcmp(argv[i], "--kv") && i + 1 < argc && (!strcmp(argv[i + 1], "f16") || !strcmp(argv[i + 1], "f32")))
            kv_dt = !strcmp(argv[++i], "f16") ? TENSOR_DTYPE_F16 : TENSOR_DTYPE_F32;
        else if (!strcmp(argv[i], "--held") && i + 1 < argc && !llm_weights_parse(argv[i + 1], &held) &&
                 held != LLM_WEIGHTS_Q8)
            i++;
        else if (!strcmp(argv[i], "--weights") && i + 1 < argc && (!strcmp(argv[i + 1], "q8") || !strcmp(argv[i + 1], "native")))
            q8 = !strcmp(argv[++i], "q8");
        else {
            fprintf(stderr,
                    "usage: %s [--layers N] [--tokens T] [--steps S] [--reps R] [--rounds D] [--weights native|q8] "
                    "[--held native|bf16|auto] [--kv f16|f32] "
                    "[--keep-env]\n",
                    argv[0]);
            return 2;
        }
    }
    if (!rounds) rounds = reps;
    if (layers < 1 || tokens < 1 || steps < 1 || reps < 1 || rounds < 1) return 2;
    if (getenv("HIRED_BENCH_LLM_REEXEC"))
        printf("environment: OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset for this run (re-executed)\n");
    else if (!keep_env)
        reexec_clean(argv);
    else
        printf("environment: OPENBLAS_CORETYPE=%s OPENBLAS_L2_SIZE=%s (kept)\n",
               getenv("OPENBLAS_CORETYPE") ? getenv("OPENBLAS_CORETYPE") : "(unset)",
               getenv("OPENBLAS_L2_SIZE") ? getenv("OPENBLAS_L2_SIZE") : "(unset)");
    printf("threads: %d (OpenMP)\n", omp_get_max_threads());

    hf_text_config_t tc = {.kind = HF_TEXT_LLAMA, .hidden = 4096, .intermediate = 11008, .layers = layers,
                           .heads = 32, .kv_heads = 32, .head_dim = 128, .vocab = 32064, .max_pos = 32768,
                           .rms_eps = 1e-5f, .rope_theta = 10000.0, .sliding_window = -1, .bos_id = 1, .eos_id = 2,
                           .pad_id = -1};
    char err[HIRED_ERR_LEN];
    double t0 = now_s();
    k_device_t *dev = k_device_open("cpu", err);
    k_ctx_t *ctx = dev ? k_ctx_new(dev, err) : NULL;
    llm_t *m = ctx ? llm_new_random(&tc, dev, held, 42, err) : NULL;
    if (!m) {
        fprintf(stderr, "bench: %s\n", err);
        return 1;
    }
    const bool held_bf16 = llm_weights(m) == LLM_WEIGHTS_BF16;
    printf("model: %d layers x (hidden 4096, 32 heads, MLP 11008), vocab 32064, F16 random weights held as %s%s "
           "(%.2f GB streamed per decode step), built in %.1f s\n",
           layers, llm_weights_name(llm_weights(m)),
           held_bf16 ? (k_device_bf16_products(dev) ? " (bf16 products)" : " (float32 products: no native bf16)") : "",
           llm_weight_bytes_per_step(m) / 1e9, now_s() - t0);

    /* what the machine can do: the chosen GEMM family's float32 rate and, where it applies, the
     * bf16 rate (the peak when HIRED_MATMUL_PRECISION=bf16 is in force) */
    printf("kernels: %s\n", k_device_kernels(dev));
    double rate = sgemm_gflops(ctx, 512, 4096, 4096, TENSOR_DTYPE_F32, 3);
    double rate_bf16 = k_matmul_rate(ctx, 512, 4096, 4096, TENSOR_DTYPE_F16, K_MATMUL_PREC_BF16, 3);
    bool bf16 = (k_matmul_default_prec() == K_MATMUL_PREC_BF16 || held_bf16) && k_device_bf16_products(dev);
    double bw = read_gbps(5);
    printf("machine: sgemm (k_matmul, F32 weights, 512x4096x4096) %.1f GFLOP/s; bf16 (F16 weights) %.1f GFLOP/s; "
           "read bandwidth %.1f GB/s\n",
           rate, rate_bf16, bw);
    printf("machine: measured peak for the precision in force (%s): %.1f GFLOP/s\n", bf16 ? "bf16" : "float32",
           bf16 && rate_bf16 > rate ? rate_bf16 : rate);

    /* the F16 kernels at the model's shapes */
    double conv_qkv = sgemm_gflops(ctx, 512, 4096, 4096, TENSOR_DTYPE_F16, 3);
    double conv_mlp = sgemm_gflops(ctx, 512, 11008, 4096, TENSOR_DTYPE_F16, 2);
    double fz_4k = fused_gbps(ctx, 4096, 4096, 5), fz_mlp = fused_gbps(ctx, 11008, 4096, 5);
    printf("kernels: F16 weights (%s) 512x4096x4096 %.1f GFLOP/s (%.2fx of sgemm), 512x11008x4096 %.1f GFLOP/s "
           "(%.2fx)\n",
           bf16                      ? "bf16 products"
           : k_device_cpu_tiles(dev) ? "hired's tiles, converted as packed"
                                     : "convert+sgemm",
           conv_qkv, conv_qkv / rate, conv_mlp, conv_mlp / rate);
    printf("kernels: F16 fused decode 1x4096x4096 %.1f GB/s (%.2fx of bandwidth), 1x11008x4096 %.1f GB/s (%.2fx)\n",
           fz_4k, fz_4k / bw, fz_mlp, fz_mlp / bw);

    double att = attention_gflops(ctx, 512, tokens > 512 ? tokens - 512 : 0, 2);
    printf("kernels: causal attention 512 queries after %d positions (32x128) %.1f GFLOP/s (%.2fx of sgemm)\n",
           tokens > 512 ? tokens - 512 : 0, att, att / rate);

    /* prefill, bracketed by sgemm measurements: the machine may be shared, so each run is compared
     * with the rate measured next to it and the best of the runs is reported */
    /* decode positions after the prompt: the F16 rounds, then with q8 the alternated steps and the
     * Q8 rounds */
    const int extra = rounds * steps + (q8 ? 2 * steps + rounds * steps : 0);
    kv_cache_t *kv = kv_cache_new(llm_device(m), kv_dt, tc.layers, tc.kv_heads * tc.head_dim, tokens + extra, err);
    float *x = mem_alloc_aligned((size_t)(tokens + extra) * tc.hidden * sizeof(float));
    float *logits = mem_alloc_aligned((size_t)tc.vocab * sizeof(float));
    k_ctx_reset(ctx);
    if (!kv || !x || !logits || k_ctx_reserve(ctx, llm_arena_bytes(m, ctx, tokens, tokens + extra))) {
        fprintf(stderr, "bench: out of memory\n");
        return 1;
    }
    fill(x, (size_t)(tokens + extra) * tc.hidden, 7);
    double flops = llm_matmul_flops(m, tokens, 0, 1), best_ratio = 1e30, best_pre = 1e30, sum_pre = 0;
    for (int r = 0; r < reps; r++) {
        double before = r ? sgemm_gflops(ctx, 512, 4096, 4096, TENSOR_DTYPE_F32, 3) : rate;
        kv_cache_reset(kv);
        t0 = now_s();
        if (llm_forward(m, ctx, kv, x, tokens, LLM_LOGITS_LAST, logits, err)) {
            fprintf(stderr, "bench: %s\n", err);
            return 1;
        }
        double t_pre = now_s() - t0;
        sum_pre += t_pre;
        if (t_pre < best_pre) best_pre = t_pre;
        double after = sgemm_gflops(ctx, 512, 4096, 4096, TENSOR_DTYPE_F32, 3);
        double adj = 0.5 * (before + after), ideal = flops / (adj * 1e9), ratio = t_pre / ideal;
        if (ratio < best_ratio) best_ratio = ratio;
        printf("prefill: run %d: %d tokens in %.2f s = %.1f GFLOP/s over %.1f GFLOP; sgemm %.1f before / %.1f after "
               "-> ideal %.2f s; ratio %.2fx\n",
               r + 1, tokens, t_pre, flops / t_pre / 1e9, flops / 1e9, before, after, ideal, ratio);
    }
    printf("prefill: best ratio %.2fx (target <= 1.3x); KV cache %.1f MB for %d positions\n", best_ratio,
           kv_cache_bytes(kv) / 1e6, kv_cache_cap(kv));

    /* decode steps after the prompt, in rounds bracketed by bandwidth measurements */
    const double kv_read = kv_read_per_step(kv, rounds * steps);
    const double bytes = (double)llm_weight_bytes_per_step(m) + kv_read;
    double best_dec = 1e30, sum_all = 0, best_round = 1e30;
    if (decode_rounds("decode", m, ctx, kv, x + (size_t)tokens * tc.hidden, tc.hidden, rounds, steps, bytes, &bw,
                      logits, &best_round, &sum_all, &best_dec, err)) {
        fprintf(stderr, "bench: %s\n", err);
        return 1;
    }
    printf("decode: each step streams %.2f GB (%.2f weights + %.2f KV); best ratio %.2fx (target <= 1.5x)\n",
           bytes / 1e9, llm_weight_bytes_per_step(m) / 1e9, kv_read / 1e9, best_dec);
    printf("decode: %.1f tokens/s at this depth; a 32-layer model would take ~%.0f ms per step\n",
           rounds * steps / sum_all, sum_all / (rounds * steps) * 1e3 * 32.0 / layers);

    double q8_best = 0, q8_mean = 0; /* seconds per Q8 step, best round's mean and all rounds' (0: not measured) */
    if (q8) {
        /* the same shape with 8-bit linear layers, its steps alternated with the F16 model's */
        t0 = now_s();
        llm_t *mq = llm_new_random(&tc, dev, LLM_WEIGHTS_Q8, 42, err);
        if (!mq) {
            fprintf(stderr, "bench: %s\n", err);
            return 1;
        }
        printf("q8: the same model with Q8 linear layers, built in %.1f s (%s)\n", now_s() - t0, k_device_kernels(dev));
        double q4k = q8_gbps(ctx, 4096, 4096, 5), qmlp = q8_gbps(ctx, 11008, 4096, 5);
        double f4k = fused_gbps(ctx, 4096, 4096, 5);
        printf("kernels: Q8 decode 1x4096x4096 %.1f GB/s (%.2fx of bandwidth; F16 fused %.1f GB/s), 1x11008x4096 "
               "%.1f GB/s (%.2fx)\n",
               q4k, q4k / bw, f4k, qmlp, qmlp / bw);
        /* prefill shapes run the same integer kernels (x quantised too), not the float32 GEMM */
        double qpre = k_matmul_rate(ctx, 512, 4096, 4096, TENSOR_DTYPE_Q8, K_MATMUL_PREC_DEFAULT, 2);
        double fpre = sgemm_gflops(ctx, 512, 4096, 4096, TENSOR_DTYPE_F16, 2);
        printf("kernels: Q8 prefill shape 512x4096x4096 %.1f GFLOP/s (F16 weights %.1f GFLOP/s, %.2fx)\n", qpre, fpre,
               qpre / fpre);
        if (side_by_side(m, mq, ctx, kv, x + (size_t)(tokens + rounds * steps) * tc.hidden, tc.hidden, steps, logits,
                         err)) {
            fprintf(stderr, "bench: %s\n", err);
            return 1;
        }
        /* then the Q8 model alone, in rounds of consecutive steps like the F16 model's above (and
         * like llama-bench's): its tokens/s for the comparison with llama.cpp's Q8_0 */
        const double q_kv = kv_read_per_step(kv, rounds * steps);
        double q_round = 1e30, q_sum = 0, q_ratio = 1e30;
        if (decode_rounds("decode q8", mq, ctx, kv, x + (size_t)(tokens + rounds * steps + 2 * steps) * tc.hidden,
                          tc.hidden, rounds, steps, (double)llm_weight_bytes_per_step(mq) + q_kv, &bw, logits, &q_round,
                          &q_sum, &q_ratio, err)) {
            fprintf(stderr, "bench: %s\n", err);
            return 1;
        }
        q8_best = q_round / steps, q8_mean = q_sum / (rounds * steps);
        llm_destroy(&mq);
    }

    printf("summary: threads=%d layers=%d prefill_tokens=%d prefill_runs=%d prefill_best_tok_s=%.2f "
           "prefill_mean_tok_s=%.2f decode_steps=%d decode_rounds=%d decode_best_tok_s=%.3f decode_mean_tok_s=%.3f "
           "q8_decode_best_tok_s=%.3f q8_decode_mean_tok_s=%.3f\n",
           omp_get_max_threads(), layers, tokens, reps, tokens / best_pre, tokens * reps / sum_pre, steps, rounds,
           steps / best_round, rounds * steps / sum_all, q8_best > 0 ? 1.0 / q8_best : 0.0,
           q8_mean > 0 ? 1.0 / q8_mean : 0.0);

    mem_free_aligned(x);
    mem_free_aligned(logits);
    kv_cache_destroy(&kv);
    llm_destroy(&m);
    k_ctx_destroy(&ctx);
    k_device_close(&dev);
    (void)environ;
    return 0;
}
