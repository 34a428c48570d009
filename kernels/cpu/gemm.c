/* gemm.c — the CPU backend's float32 GEMM (see gemm.h): oneDNN or OpenBLAS, chosen once per
 * process from the CPU's features.
 *
 * Why oneDNN. hired-bench-gemm on an AMD EPYC with AVX-512 (incl. BF16), a 2-core machine shared
 * with other builds, so GFLOP per CPU-second of one thread (the cleaner figure there):
 *   shape (m n k)          openblas(as loaded: Cooperlake) openblas SkylakeX  blis(zen3)  onednn
 *   clip qkv 577 1024 1024       87.0                        96.7             88.7       96.5
 *   clip fc1 577 4096 1024       87.8                        92.2             74.7       90.1
 *   clip fc2 577 1024 4096       83.6                        92.8             78.8       94.0
 *   llm qkvo 2900 4096 4096      98.5                       100.2             77.9      105.7
 *   decode m=16 4096 4096        27.1                        28.3             27.1       28.6
 *   decode m=1  4096 4096        10.0                        11.3             11.3        9.5
 * oneDNN is within noise of the best float32 figure at every prefill/encoder shape (96% of the
 * per-shape best on average, OpenBLAS as loaded 91%, BLIS 87%), ~84% at the m = 1 matvec (which
 * the decoder runs on F16/BF16 weights through its own fused kernel, not here), and its bf16
 * path (matmul.h) reaches 126-173 at the same shapes. On this CPU OpenBLAS 0.3.21 happens to
 * pick Cooperlake; on newer Intel Xeons it falls back to generic Prescott kernels (35-41 GFLOP/s
 * where SkylakeX gives 150-255, issue 15).
 * Debian's OpenBLAS 0.3.21 does not know this CPU and runs its generic Prescott kernels; forcing
 * its core type from the CPU's features (OPENBLAS_CORETYPE=SkylakeX) is as fast as oneDNN, but
 * OpenBLAS reads that variable in its load-time constructor, before main: a process could only
 * get it by re-executing itself, which a library (libhired) cannot do for its host program, and
 * which would also override a user's own setting. oneDNN dispatches its JIT kernels on cpuid
 * feature bits at run time, so CPUs newer than the build are served without a table of models.
 * BLIS 0.9 likewise picks a sub-configuration from cpuid but trails at these shapes.
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
    dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
    const dnnl_version_t *v = dnnl_version();
    snprintf(desc[K_GEMM_ONEDNN], sizeof desc[0], "oneDNN %d.%d.%d (%s)", v->major, v->minor, v->patch, isa_name(isa));
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
    if (k_cpu_gemm_family_id() == K_GEMM_ONEDNN &&
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
    if (dnnl_engine_create(&engine, dnnl_cpu, 0) != dnnl_success) engine = NULL;
}

bool k_cpu_have_bf16_gemm(void) {
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
