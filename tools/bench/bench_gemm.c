/* bench_gemm — hired-bench-gemm: the GEMM libraries this machine could run, side by side on the
 * model's own shapes, y[m,n] = x[m,k] · wᵀ with w in torch Linear layout [n,k] (row-major,
 * "NT"), every library given all OpenMP threads (OMP_NUM_THREADS) its own way:
 *
 *   openblas       Debian's OpenBLAS as the process loaded it (its DYNAMIC_ARCH core choice,
 *                  printed; 0.3.21 picks generic Prescott kernels on CPUs newer than it knows)
 *   openblas-feat  the same library re-run in a child process with OPENBLAS_CORETYPE set from
 *                  this CPU's cpuid features (SkylakeX for AVX-512 F/BW/DQ/VL, Haswell for
 *                  AVX2+FMA): what "choose the core type before first use" would give
 *   blis           Debian's BLIS (OpenMP build), loaded with dlopen(RTLD_DEEPBIND) so its BLAS
 *                  symbols do not mix with OpenBLAS's; its own run-time sub-configuration
 *   onednn         oneDNN's dnnl_sgemm (JIT kernels for the ISA oneDNN finds by cpuid)
 *   onednn-bf16    oneDNN's matmul primitive, bf16 x[m,k] · bf16 w → f32 y, the activations
 *                  converted to bf16 inside the timed call (weights pre-converted, as loaded)
 *   hired          k_matmul on the CPU backend (what the product runs, F32 weights)
 *
 * Prints GFLOP/s (best of the repetitions: the machine may be shared) per candidate per shape,
 * the best float32 figure per shape (the machine's measured peak there) and each candidate's
 * share of it. Asserts nothing. OpenBLAS reads OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE when it is
 * loaded: the parent removes both from its own environment by re-executing itself once (this
 * command only) and says so.
 *
 *   hired-bench-gemm [--quick] [--seconds S] [--only-openblas-feat] */
#include <cblas.h>
#include <dlfcn.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <oneapi/dnnl/dnnl.h>

#include "backend.h"
#include "clock.h"
#include "gemm.h"
#include "half.h"
#include "matmul.h"
#include "mem.h"

extern char **environ;
/* OpenBLAS's own query (cblas.h of 0.3.21 declares it). */
char *openblas_get_corename(void);

static double min_seconds = 0.6;

static double now_s(void) { return clock_ms() / 1e3; }

static float *fbuf(size_t n, uint32_t seed) {
    float *p = mem_alloc_aligned(n * sizeof(float));
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        p[i] = (float)(seed >> 8) / 16777216.0f - 0.5f;
    }
    return p;
}

typedef struct {
    const char *what;
    int m, n, k;
} shape;

/* CLIP ViT-L/14-336 (one 577-token tile; five tiles stacked for the 5-partition image) and the
 * 7B text model's widths at prefill (~2,900 rows) and decode (1..16 rows). */
static const shape shapes_full[] = {
    {"clip qkv/o", 577, 1024, 1024},   {"clip fc1", 577, 4096, 1024},   {"clip fc2", 577, 1024, 4096},
    {"clip fc1 x5", 2885, 4096, 1024}, {"llm qkvo", 2900, 4096, 4096},  {"llm up/gate", 2900, 11008, 4096},
    {"llm down", 2900, 4096, 11008},   {"llm dec m=1", 1, 4096, 4096},  {"llm dec m=4", 4, 4096, 4096},
    {"llm dec m=16", 16, 4096, 4096},  {"llm dec m=16 up", 16, 11008, 4096},
};
static const shape shapes_quick[] = {
    {"clip qkv/o", 577, 1024, 1024}, {"clip fc1", 577, 4096, 1024}, {"clip fc2", 577, 1024, 4096},
    {"llm qkvo", 2900, 4096, 4096},  {"llm dec m=1", 1, 4096, 4096}, {"llm dec m=16", 16, 4096, 4096},
};

enum { C_OPENBLAS, C_OPENBLAS_FEAT, C_BLIS, C_ONEDNN, C_ONEDNN_BF16, C_HIRED, C_COUNT };
static const char *cand_name[C_COUNT] = {"openblas", "openblas-feat", "blis", "onednn", "onednn-bf16", "hired"};

// ---- BLIS through dlopen -------------------------------------------------------------------------

typedef void (*cblas_sgemm_fn)(enum CBLAS_ORDER, enum CBLAS_TRANSPOSE, enum CBLAS_TRANSPOSE, blasint, blasint,
                               blasint, float, const float *, blasint, const float *, blasint, float, float *,
                               blasint);
static cblas_sgemm_fn blis_sgemm;
static char blis_desc[96] = "not loaded";

static void blis_load(long threads) {
    void *h = dlopen("libblis.so.4", RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
    if (!h) {
        snprintf(blis_desc, sizeof blis_desc, "not available (%s)", dlerror());
        return;
    }
    blis_sgemm = (cblas_sgemm_fn)dlsym(h, "cblas_sgemm");
    const char *(*ver)(void) = (const char *(*)(void))dlsym(h, "bli_info_get_version_str");
    int (*arch_id)(void) = (int (*)(void))dlsym(h, "bli_arch_query_id");
    const char *(*arch_str)(int) = (const char *(*)(int))dlsym(h, "bli_arch_string");
    void (*set_threads)(long) = (void (*)(long))dlsym(h, "bli_thread_set_num_threads");
    if (set_threads) set_threads(threads);
    snprintf(blis_desc, sizeof blis_desc, "BLIS %s, sub-configuration %s", ver ? ver() : "?",
             arch_id && arch_str ? arch_str(arch_id()) : "?");
}

// ---- oneDNN bf16 matmul primitive ------------------------------------------------------------------

typedef struct {
    dnnl_engine_t eng;
    dnnl_stream_t st;
    dnnl_primitive_t prim;
    dnnl_memory_t src, wei, dst;
    uint16_t *xb; /* [m,k] bf16 */
} dnnl_bf16_mm;

#define DNNL_OK(call)                                                                                            \
    do {                                                                                                         \
        if ((call) != dnnl_success) {                                                                            \
            fprintf(stderr, "oneDNN: %s failed\n", #call);                                                       \
            return -1;                                                                                           \
        }                                                                                                        \
    } while (0)

static int bf16_mm_init(dnnl_bf16_mm *b, int m, int n, int k, uint16_t *wb, float *y) {
    memset(b, 0, sizeof *b);
    DNNL_OK(dnnl_engine_create(&b->eng, dnnl_cpu, 0));
    DNNL_OK(dnnl_stream_create(&b->st, b->eng, dnnl_stream_default_flags));
    dnnl_memory_desc_t sd, wd, dd;
    dnnl_dims_t sdims = {m, k}, wdims = {k, n}, ddims = {m, n};
    DNNL_OK(dnnl_memory_desc_init_by_tag(&sd, 2, sdims, dnnl_bf16, dnnl_ab));
    DNNL_OK(dnnl_memory_desc_init_by_tag(&wd, 2, wdims, dnnl_bf16, dnnl_ba)); /* w [n,k] row-major */
    DNNL_OK(dnnl_memory_desc_init_by_tag(&dd, 2, ddims, dnnl_f32, dnnl_ab));
    dnnl_matmul_desc_t md;
    DNNL_OK(dnnl_matmul_desc_init(&md, &sd, &wd, NULL, &dd));
    dnnl_primitive_desc_t pd;
    DNNL_OK(dnnl_primitive_desc_create(&pd, &md, NULL, b->eng, NULL));
    DNNL_OK(dnnl_primitive_create(&b->prim, pd));
    dnnl_primitive_desc_destroy(pd);
    b->xb = mem_alloc_aligned((size_t)m * k * sizeof(uint16_t));
    if (!b->xb) return -1;
    DNNL_OK(dnnl_memory_create(&b->src, &sd, b->eng, b->xb));
    DNNL_OK(dnnl_memory_create(&b->wei, &wd, b->eng, wb));
    DNNL_OK(dnnl_memory_create(&b->dst, &dd, b->eng, y));
    return 0;
}

static void bf16_mm_free(dnnl_bf16_mm *b) {
    if (b->prim) dnnl_primitive_destroy(b->prim);
    if (b->src) dnnl_memory_destroy(b->src);
    if (b->wei) dnnl_memory_destroy(b->wei);
    if (b->dst) dnnl_memory_destroy(b->dst);
    if (b->st) dnnl_stream_destroy(b->st);
    if (b->eng) dnnl_engine_destroy(b->eng);
    mem_free_aligned(b->xb);
}

static void f32_to_bf16_rne(uint16_t *dst, const float *src, size_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) dst[i] = f32_to_bf16(src[i]);
}

static int bf16_mm_run(dnnl_bf16_mm *b, const float *x, size_t mk) {
    f32_to_bf16_rne(b->xb, x, mk);
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, b->src}, {DNNL_ARG_WEIGHTS, b->wei}, {DNNL_ARG_DST, b->dst}};
    if (dnnl_primitive_execute(b->prim, b->st, 3, args) != dnnl_success) return -1;
    return dnnl_stream_wait(b->st) == dnnl_success ? 0 : -1;
}

// ---- the measurement --------------------------------------------------------------------------------

typedef struct {
    int cand;
    const shape *s;
    float *x, *w, *y;
    dnnl_bf16_mm *bf;
    k_ctx_t *ctx;
} job;

/* One library call on rows [i0,i1) and columns [j0,j1) of y. */
static int call_block(const job *j, int i0, int i1, int j0, int j1) {
    const shape *s = j->s;
    const float *x = j->x + (size_t)i0 * s->k, *w = j->w + (size_t)j0 * s->k;
    float *y = j->y + (size_t)i0 * s->n + j0;
    int m = i1 - i0, n = j1 - j0;
    if (m <= 0 || n <= 0) return 0;
    switch (j->cand) {
    case C_OPENBLAS:
    case C_OPENBLAS_FEAT:
        if (m == 1)
            cblas_sgemv(CblasRowMajor, CblasNoTrans, n, s->k, 1.0f, w, s->k, x, 1, 0.0f, y, 1);
        else
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, s->k, 1.0f, x, s->k, w, s->k, 0.0f, y, s->n);
        return 0;
    case C_BLIS:
        if (!blis_sgemm) return -1;
        blis_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, s->k, 1.0f, x, s->k, w, s->k, 0.0f, y, s->n);
        return 0;
    case C_ONEDNN:
        return dnnl_sgemm('N', 'T', m, n, s->k, 1.0f, x, s->k, w, s->k, 0.0f, y, s->n) == dnnl_success ? 0 : -1;
    }
    return -1;
}

/* Slice t of nt over [0,len), boundaries on multiples of 16 (as kernels/cpu/matmul.c does). */
static void slice(int len, int t, int nt, int *lo, int *hi) {
    long long a = (long long)len * t / nt, b = (long long)len * (t + 1) / nt;
    a = t == 0 ? 0 : (a + 8) / 16 * 16;
    b = t == nt - 1 ? len : (b + 8) / 16 * 16;
    if (a > len) a = len;
    if (b > len) b = len;
    if (b < a) b = a;
    *lo = (int)a;
    *hi = (int)b;
}

/* The library calls the way the CPU backend issues them: one single-threaded call per OpenMP
 * thread on a slice of x's rows (m > n) or of w's rows, so every candidate is measured under the
 * same threading and no second thread pool competes with OpenMP's. */
static int run_once(const job *j) {
    const shape *s = j->s;
    if (j->cand == C_ONEDNN_BF16) return j->bf ? bf16_mm_run(j->bf, j->x, (size_t)s->m * s->k) : -1;
    if (j->cand == C_HIRED) {
        k_matmul_args a = {.m = s->m, .n = s->n, .k = s->k, .x = j->x, .w = j->w, .w_dtype = TENSOR_DTYPE_F32,
                           .y = j->y, .dtype = TENSOR_DTYPE_F32};
        return k_matmul(j->ctx, &a);
    }
    int nt = omp_get_max_threads(), bad = 0;
    if (2.0 * s->m * s->n * s->k < (double)(1 << 22)) nt = 1;
    bool split_m = s->m > s->n;
#pragma omp parallel for num_threads(nt) schedule(static) reduction(| : bad) if (nt > 1)
    for (int t = 0; t < nt; t++) {
        int lo, hi;
        slice(split_m ? s->m : s->n, t, nt, &lo, &hi);
        bad |= split_m ? call_block(j, lo, hi, 0, s->n) : call_block(j, 0, s->m, lo, hi);
    }
    return bad ? -1 : 0;
}

/* Process CPU seconds (all threads): on a shared machine wall time also counts the time other
 * processes held the cores, CPU time does not (with one thread it is the cleaner figure). */
static double cpu_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Wall seconds of one call (and its CPU seconds in *cpu), or -1 on failure. */
static double time_once(const job *j, double *cpu) {
    double t0 = now_s(), c0 = cpu_s();
    if (run_once(j)) return -1.0;
    *cpu = cpu_s() - c0;
    return now_s() - t0;
}

/* OPENBLAS_CORETYPE from the CPU's features (cpuid through the compiler's builtins; no
 * AVX-512 under HIRED_MAX_CPU_ISA=avx2), or NULL. */
static const char *coretype_from_features(void) {
    __builtin_cpu_init();
    if (k_cpu_avx512_usable() && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
        return "SkylakeX";
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
    if (__builtin_cpu_supports("avx")) return "Sandybridge";
    return NULL;
}

/* The openblas-feat candidate runs in a child process (this program again, with
 * OPENBLAS_CORETYPE set before OpenBLAS loads) that times one call of shape i for each line "i"
 * it reads and answers "seconds corename", so its runs interleave with the parent's. */
typedef struct {
    FILE *to, *from;
    pid_t pid;
    char core[64];
} feat_child;

static bool feat_start(feat_child *fc, const char *ct, int quick) {
    int down[2], up[2];
    memset(fc, 0, sizeof *fc);
    snprintf(fc->core, sizeof fc->core, "n/a");
    if (pipe(down)) return false;
    if (pipe(up)) {
        close(down[0]), close(down[1]);
        return false;
    }
    fflush(stdout);
    fc->pid = fork();
    if (fc->pid == 0) {
        dup2(down[0], 0);
        dup2(up[1], 1);
        close(down[0]), close(down[1]), close(up[0]), close(up[1]);
        setenv("OPENBLAS_CORETYPE", ct, 1);
        char *args[] = {"hired-bench-gemm", "--serve-openblas", quick ? "--quick" : NULL, NULL};
        execv("/proc/self/exe", args);
        _exit(127);
    }
    close(down[0]), close(up[1]);
    if (fc->pid < 0) {
        close(down[1]), close(up[0]);
        return false;
    }
    fc->to = fdopen(down[1], "w");
    fc->from = fdopen(up[0], "r");
    return fc->to && fc->from;
}

static double feat_time(feat_child *fc, int i, double *cpu) {
    if (!fc->to || !fc->from) return -1.0;
    fprintf(fc->to, "%d\n", i);
    fflush(fc->to);
    char line[160];
    double t;
    if (!fgets(line, sizeof line, fc->from) || sscanf(line, "%lf %lf %63s", &t, cpu, fc->core) != 3) return -1.0;
    return t;
}

static void feat_stop(feat_child *fc) {
    if (fc->to) fclose(fc->to);
    if (fc->from) fclose(fc->from);
    if (fc->pid > 0) waitpid(fc->pid, NULL, 0);
}

int main(int argc, char **argv) {
    int quick = 0, serve = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) quick = 1;
        else if (!strcmp(argv[i], "--serve-openblas")) serve = 1;
        else if (!strcmp(argv[i], "--seconds") && i + 1 < argc) min_seconds = atof(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [--quick] [--seconds S]\n", argv[0]);
            return 2;
        }
    }
    const shape *sh = quick ? shapes_quick : shapes_full;
    int ns = quick ? (int)(sizeof shapes_quick / sizeof *shapes_quick) : (int)(sizeof shapes_full / sizeof *shapes_full);
    size_t max_x = 0, max_w = 0, max_y = 0;
    for (int i = 0; i < ns; i++) {
        if ((size_t)sh[i].m * sh[i].k > max_x) max_x = (size_t)sh[i].m * sh[i].k;
        if ((size_t)sh[i].n * sh[i].k > max_w) max_w = (size_t)sh[i].n * sh[i].k;
        if ((size_t)sh[i].m * sh[i].n > max_y) max_y = (size_t)sh[i].m * sh[i].n;
    }
    float *x = fbuf(max_x, 1), *w = fbuf(max_w, 2), *y = fbuf(max_y, 3);
    openblas_set_num_threads(1);

    if (serve) { /* the openblas-feat child: one timed call per request */
        int i;
        char line[32];
        while (fgets(line, sizeof line, stdin) && sscanf(line, "%d", &i) == 1 && i >= 0 && i < ns) {
            job j = {.cand = C_OPENBLAS_FEAT, .s = &sh[i], .x = x, .w = w, .y = y};
            double cpu = 0, t = time_once(&j, &cpu);
            printf("%.9f %.9f %s\n", t, cpu, openblas_get_corename());
            fflush(stdout);
        }
        return 0;
    }
    const char *ct = getenv("OPENBLAS_CORETYPE"), *l2 = getenv("OPENBLAS_L2_SIZE");
    if (getenv("HIRED_BENCH_GEMM_REEXEC"))
        printf("environment: OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset for this run (re-executed)\n");
    else if (ct || l2) {
        printf("environment: OPENBLAS_CORETYPE=%s OPENBLAS_L2_SIZE=%s: re-running with both unset\n", ct ? ct : "(unset)",
               l2 ? l2 : "(unset)");
        fflush(stdout);
        unsetenv("OPENBLAS_CORETYPE");
        unsetenv("OPENBLAS_L2_SIZE");
        setenv("HIRED_BENCH_GEMM_REEXEC", "1", 1);
        execv("/proc/self/exe", argv);
        perror("execv /proc/self/exe");
        return 1;
    } else
        printf("environment: OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset\n");

    const char *feat = coretype_from_features();
    feat_child fc;
    bool have_feat = feat && feat_start(&fc, feat, quick);
    blis_load(1);
    const dnnl_version_t *dv = dnnl_version();
    char err[HIRED_ERR_LEN];
    k_device_t *dev = k_device_open("cpu", err);
    k_ctx_t *ctx = dev ? k_ctx_new(dev, err) : NULL;
    if (!ctx) {
        fprintf(stderr, "hired-bench-gemm: %s\n", err);
        return 1;
    }
    printf("threads: %d (OMP_NUM_THREADS); each library single-threaded on one OpenMP thread's slice, as the CPU "
           "backend calls it (onednn-bf16: oneDNN's own OpenMP threading)\n",
           omp_get_max_threads());
    printf("openblas: OpenBLAS core %s (as loaded)\n", openblas_get_corename());
    printf("blis: %s\n", blis_desc);
    printf("onednn: oneDNN %d.%d.%d, effective ISA 0x%x\n", dv->major, dv->minor, dv->patch,
           (unsigned)dnnl_get_effective_cpu_isa());
    printf("hired: k_matmul (%s)\n", k_device_kernels(dev));
    const bool have_bf16 = k_device_bf16_products(dev);
    if (!have_bf16) printf("onednn-bf16: not run (0.0): this CPU has no native bf16 products\n");
    printf("per shape: a warm-up round, then rounds for %.2f s or more, each timing every candidate once "
           "(interleaved, so all see the same load); the best round counts\n", min_seconds);

    uint16_t *wb = mem_alloc_aligned(max_w * sizeof(uint16_t));
    if (!wb) return 1;
    for (size_t i = 0; i < max_w; i++) wb[i] = f32_to_bf16(w[i]);
    double share_sum[2][C_COUNT] = {{0}};
    int header = 0;
    for (int i = 0; i < ns; i++) {
        double best_t[C_COUNT], best_c[C_COUNT];
        for (int c = 0; c < C_COUNT; c++) best_t[c] = best_c[c] = 1e30;
        dnnl_bf16_mm bf;
        memset(&bf, 0, sizeof bf);
        int bf_ok = have_bf16 && bf16_mm_init(&bf, sh[i].m, sh[i].n, sh[i].k, wb, y) == 0;
        double t_end = 0;
        int rounds = 0;
        for (int r = 0; r < 2 || now_s() < t_end; r++, rounds++) { /* round 0: warm-up */
            if (r == 1) t_end = now_s() + min_seconds;
            for (int c = 0; c < C_COUNT; c++) {
                double t, cpu = 0;
                if (c == C_OPENBLAS_FEAT)
                    t = have_feat ? feat_time(&fc, i, &cpu) : -1.0;
                else {
                    job j = {.cand = c, .s = &sh[i], .x = x, .w = w, .y = y, .bf = bf_ok ? &bf : NULL, .ctx = ctx};
                    t = time_once(&j, &cpu);
                }
                if (r > 0 && t > 0 && t < best_t[c]) best_t[c] = t;
                if (r > 0 && t > 0 && cpu > 0 && cpu < best_c[c]) best_c[c] = cpu;
            }
        }
        bf16_mm_free(&bf);
        if (!header++) {
            printf("openblas-feat: OPENBLAS_CORETYPE=%s from cpuid features -> core %s (child process)\n",
                   feat ? feat : "(none)", have_feat ? fc.core : "n/a");
            printf("\n%-16s %5s %6s %6s |", "shape  timing", "m", "n", "k");
            for (int c = 0; c < C_COUNT; c++) printf(" %13s", cand_name[c]);
            printf(" | f32 peak best           rounds\n");
        }
        double fl = 2.0 * sh[i].m * sh[i].n * sh[i].k;
        for (int pass = 0; pass < 2; pass++) { /* wall GFLOP/s, then GFLOP per CPU-second */
            double g[C_COUNT], peak = 0;
            int best = 0;
            const double *bt = pass ? best_c : best_t;
            for (int c = 0; c < C_COUNT; c++) {
                g[c] = bt[c] < 1e29 ? fl / bt[c] * 1e-9 : 0.0;
                if (c != C_ONEDNN_BF16 && g[c] > peak) peak = g[c], best = c;
            }
            printf("%-11s %-4s %5d %6d %6d |", sh[i].what, pass ? "cpu" : "wall", sh[i].m, sh[i].n, sh[i].k);
            for (int c = 0; c < C_COUNT; c++) printf(" %7.1f %4.0f%%", g[c], peak > 0 ? 100.0 * g[c] / peak : 0.0);
            printf(" | %7.1f  %-13s %d\n", peak, cand_name[best], rounds - 1);
            for (int c = 0; c < C_COUNT; c++) share_sum[pass][c] += peak > 0 ? g[c] / peak : 0.0;
        }
        fflush(stdout);
    }
    for (int pass = 0; pass < 2; pass++) {
        printf("\nmean share of the per-shape f32 peak (%s):", pass ? "per CPU-second" : "wall");
        for (int c = 0; c < C_COUNT; c++) printf(" %s %.0f%%", cand_name[c], 100.0 * share_sum[pass][c] / ns);
    }
    printf("\n(wall: GFLOP/s; cpu: GFLOP per CPU-second of all threads, the cleaner figure on a shared machine;\n"
           " each followed by the share of the best float32 figure for that shape; onednn-bf16 multiplies bf16 "
           "activations by bf16 weights and may exceed 100%%)\n");
    if (have_feat) feat_stop(&fc);
    mem_free_aligned(wb);
    mem_free_aligned(x);
    mem_free_aligned(w);
    mem_free_aligned(y);
    k_ctx_destroy(&ctx);
    k_device_close(&dev);
    return 0;
}
