/* gemm.c — the CPU backend's float32 GEMM (see gemm.h): oneDNN or OpenBLAS, chosen once per
 * process from the CPU's features.
 *
 * Why oneDNN. hired-bench-gemm (OMP_NUM_THREADS=2, every library single-threaded on one OpenMP
 * thread's slice as the backend calls it, candidates interleaved) on an AMD EPYC with AVX-512
 * incl. BF16, a 2-core machine shared with other builds (load 8-11), so in GFLOP per
 * CPU-second, the figure such load disturbs least:
 *   shape (m n k)             openblas     openblas   blis     onednn | onednn
 *                             as loaded    SkylakeX   (zen3)   f32    | bf16
 *                             (Cooperlake) (cpuid)                    |
 *   clip qkv  577 1024 1024     80.6        75.8       95.5     80.5  |  75.8
 *   clip fc1  577 4096 1024     86.6        88.2       86.1    100.9  | 100.7
 *   clip fc2  577 1024 4096     86.3        86.1       90.3     89.2  | 100.7
 *   clip fc1 2885 4096 1024     94.6        96.0       89.1    103.1  | 170.6
 *   llm qkvo 2900 4096 4096     92.1        94.6       80.1    100.2  | 161.9
 *   llm up  2900 11008 4096     98.3        99.9       88.4    103.6  | 171.9
 *   llm down 2900 4096 11008    95.6        98.8       89.9    104.4  | 178.3
 *   decode m=1  4096 4096        4.2         4.5        4.7      7.0  |   7.3
 *   decode m=16 4096 4096       19.4        23.2       25.3     27.4  |  67.1
 *   mean share of the per-shape float32 best: openblas 81%, SkylakeX 82%, blis 88%, onednn 98%.
 * oneDNN is the best or within noise of it at every encoder, prefill and decode shape; its bf16
 * matmul (matmul.h, BF16 precision) runs 1.6-1.7x the float32 rate at the large shapes. On this
 * CPU OpenBLAS 0.3.21 happens to pick Cooperlake; on newer Intel Xeons it falls back to generic
 * Prescott kernels (35-41 GFLOP/s where SkylakeX gives 150-255, issue 15). Forcing its core
 * type from the CPU's features (OPENBLAS_CORETYPE=SkylakeX) repairs that, but OpenBLAS reads
 * the variable in its load-time constructor, before main: a process could only get it by
 * re-executing itself, which a library (libhired) cannot do for its host program, and which
 * would also override a user's own setting. oneDNN dispatches its JIT kernels on cpuid feature
 * bits at run time, so CPUs newer than the build are served without a table of models. BLIS 0.9
 * likewise picks a sub-configuration from cpuid but trails at most shapes. One-row products
 * (m = 1) stay on OpenBLAS's sgemv (gemm.h says why).
 * Compiled with the fast-path flags (kernels/CMakeLists.txt). */
#include "gemm.h"

#include <cblas.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <oneapi/dnnl/dnnl.h>

#include "cpu_util.h"
#include "log.h"
#include "simd_x86.h"

/* OpenBLAS's own queries (declared by its cblas.h in 0.3.21, repeated so older headers work). */
char *openblas_get_corename(void);
char *openblas_get_config(void);

static pthread_once_t choose_once = PTHREAD_ONCE_INIT;
static k_gemm_family family = K_GEMM_OPENBLAS;
static char desc[K_GEMM_FAMILY_COUNT][128];

static const char *isa_name(dnnl_cpu_isa_t isa) {
    switch (isa) {
    case dnnl_cpu_isa_sse41: return "sse41";
    case dnnl_cpu_isa_avx: return "avx";
    case dnnl_cpu_isa_avx2: return "avx2";
    case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
    case dnnl_cpu_isa_avx512_mic: return "avx512_mic";
    case dnnl_cpu_isa_avx512_mic_4ops: return "avx512_mic_4ops";
    case dnnl_cpu_isa_avx512_core: return "avx512_core";
    case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
    default: return "no JIT";
    }
}

/* oneDNN's JIT GEMM needs AVX2 at least (its ISA values are bit sets; 0x4 is AVX2). */
static bool onednn_has_jit_gemm(dnnl_cpu_isa_t isa) { return ((unsigned)isa & (unsigned)dnnl_cpu_isa_avx2) == (unsigned)dnnl_cpu_isa_avx2; }

static void choose(void) {
    /* before oneDNN's first use: it fixes its ISA then (simd_x86.h, k_cpu_isa_capped) */
    if (k_cpu_isa_capped() && dnnl_set_max_cpu_isa(dnnl_cpu_isa_avx2) != dnnl_success)
        log_warn("HIRED_MAX_CPU_ISA=avx2: oneDNN did not take the cap");
    dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
    const dnnl_version_t *v = dnnl_version();
    snprintf(desc[K_GEMM_ONEDNN], sizeof desc[0], "oneDNN %d.%d.%d (%s%s)", v->major, v->minor, v->patch, isa_name(isa),
             k_cpu_isa_capped() ? ", HIRED_MAX_CPU_ISA=avx2" : "");
    const char *cfg = openblas_get_config();
    const char *ver = cfg && strncmp(cfg, "OpenBLAS ", 9) == 0 ? cfg + 9 : "";
    char vbuf[16] = "";
    sscanf(ver, "%15s", vbuf);
    snprintf(desc[K_GEMM_OPENBLAS], sizeof desc[0], "OpenBLAS %s (%s)", vbuf, openblas_get_corename());
    family = onednn_has_jit_gemm(isa) ? K_GEMM_ONEDNN : K_GEMM_OPENBLAS;
    const char *env = getenv("HIRED_GEMM");
    if (env && *env) {
        if (!strcmp(env, "onednn")) family = K_GEMM_ONEDNN;
        else if (!strcmp(env, "openblas")) family = K_GEMM_OPENBLAS;
        else log_warn("HIRED_GEMM=%s is not onednn or openblas; ignored", env);
    }
}

k_gemm_family k_cpu_gemm_family_id(void) {
    pthread_once(&choose_once, choose);
    return family;
}

const char *k_cpu_gemm_family(void) { return desc[k_cpu_gemm_family_id()]; }

const char *k_cpu_gemm_family_name(k_gemm_family f) { return f == K_GEMM_ONEDNN ? "onednn" : "openblas"; }

bool k_cpu_gemm_force(k_gemm_family f) {
    pthread_once(&choose_once, choose);
    if ((unsigned)f >= K_GEMM_FAMILY_COUNT) return false;
    family = f;
    return true;
}

void k_cpu_sgemm(bool trans_b, int m, int n, int k, float alpha, const float *a, size_t lda, const float *b, size_t ldb,
                 float beta, float *c, size_t ldc) {
    if (m > 1 && k_cpu_gemm_family_id() == K_GEMM_ONEDNN &&
        dnnl_sgemm('N', trans_b ? 'T' : 'N', m, n, k, alpha, a, (dnnl_dim_t)lda, b, (dnnl_dim_t)ldb, beta, c,
                   (dnnl_dim_t)ldc) == dnnl_success)
        return;
    k_cpu_blas_init();
    if (m == 1) /* one row: sgemv streams B once; sgemm would first pack all of it */
        cblas_sgemv(CblasRowMajor, trans_b ? CblasNoTrans : CblasTrans, trans_b ? n : k, trans_b ? k : n, alpha, b,
                    (int)ldb, a, 1, beta, c, 1);
    else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, m, n, k, alpha, a, (int)lda, b,
                    (int)ldb, beta, c, (int)ldc);
}

// ---- bf16 × bf16 → f32 through oneDNN's matmul primitive ----------------------------------------

static pthread_once_t engine_once = PTHREAD_ONCE_INIT;
static dnnl_engine_t engine; /* one CPU engine for the process (thread-safe, never destroyed) */

static void engine_create(void) {
    pthread_once(&choose_once, choose); /* the ISA cap first */
    if (dnnl_engine_create(&engine, dnnl_cpu, 0) != dnnl_success) engine = NULL;
}

bool k_cpu_have_bf16_gemm(void) {
    pthread_once(&choose_once, choose); /* the ISA cap first */
    /* the bf16 bit of oneDNN's ISA set: avx512_core_bf16 (0xe7) and avx512_core_amx (0x3e7) */
    unsigned isa = (unsigned)dnnl_get_effective_cpu_isa();
    return (isa & 0x80u) && (isa & (unsigned)dnnl_cpu_isa_avx512_core) == (unsigned)dnnl_cpu_isa_avx512_core;
}

bool k_cpu_gemm_bf16_nt(int m, int n, int k, const uint16_t *a, size_t lda, const uint16_t *b, size_t ldb,
                        const float *bias, bool accumulate, float *c, size_t ldc) {
    pthread_once(&engine_once, engine_create);
    if (!engine) return false;
    bool ok = false;
    dnnl_memory_desc_t ad, bd, cd, biasd;
    dnnl_dims_t adims = {m, k}, bdims = {k, n}, cdims = {m, n}, bias_dims = {1, n};
    dnnl_dims_t astr = {(dnnl_dim_t)lda, 1}, bstr = {1, (dnnl_dim_t)ldb}, cstr = {(dnnl_dim_t)ldc, 1};
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_t prim = NULL;
    dnnl_memory_t am = NULL, bm = NULL, cm = NULL, biasm = NULL;
    dnnl_stream_t st = NULL;
    dnnl_matmul_desc_t md;
    if (dnnl_memory_desc_init_by_strides(&ad, 2, adims, dnnl_bf16, astr) != dnnl_success ||
        dnnl_memory_desc_init_by_strides(&bd, 2, bdims, dnnl_bf16, bstr) != dnnl_success ||
        dnnl_memory_desc_init_by_strides(&cd, 2, cdims, dnnl_f32, cstr) != dnnl_success ||
        dnnl_memory_desc_init_by_tag(&biasd, 2, bias_dims, dnnl_f32, dnnl_ab) != dnnl_success)
        goto out;
    if (dnnl_matmul_desc_init(&md, &ad, &bd, bias ? &biasd : NULL, &cd) != dnnl_success) goto out;
    if (dnnl_primitive_attr_create(&attr) != dnnl_success) goto out;
    if (accumulate) { /* C = C + (A·B + bias) */
        if (dnnl_post_ops_create(&po) != dnnl_success || dnnl_post_ops_append_sum(po, 1.0f) != dnnl_success ||
            dnnl_primitive_attr_set_post_ops(attr, po) != dnnl_success)
            goto out;
    }
    if (dnnl_primitive_desc_create(&pd, &md, attr, engine, NULL) != dnnl_success) goto out;
    if (dnnl_primitive_create(&prim, pd) != dnnl_success) goto out;
    if (dnnl_memory_create(&am, &ad, engine, (void *)a) != dnnl_success ||
        dnnl_memory_create(&bm, &bd, engine, (void *)b) != dnnl_success ||
        dnnl_memory_create(&cm, &cd, engine, c) != dnnl_success ||
        (bias && dnnl_memory_create(&biasm, &biasd, engine, (void *)bias) != dnnl_success))
        goto out;
    if (dnnl_stream_create(&st, engine, dnnl_stream_default_flags) != dnnl_success) goto out;
    dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, bm}, {DNNL_ARG_DST, cm}, {DNNL_ARG_BIAS, biasm}};
    ok = dnnl_primitive_execute(prim, st, bias ? 4 : 3, args) == dnnl_success && dnnl_stream_wait(st) == dnnl_success;
out:
    if (st) dnnl_stream_destroy(st);
    if (biasm) dnnl_memory_destroy(biasm);
    if (cm) dnnl_memory_destroy(cm);
    if (bm) dnnl_memory_destroy(bm);
    if (am) dnnl_memory_destroy(am);
    if (prim) dnnl_primitive_destroy(prim);
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (po) dnnl_post_ops_destroy(po);
    if (attr) dnnl_primitive_attr_destroy(attr);
    return ok;
}
