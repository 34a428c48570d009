/* cuda_ops.cu — the CUDA backend's ops (see cuda_ops.h). Each kernel is the plain, obviously
 * correct form of its op: one thread per element for elementwise work, one block per row for
 * row reductions (tree reductions in shared memory), cuBLAS for GEMMs, and for attention an
 * online softmax over tiles of keys, so memory stays bounded for any number of keys: one warp
 * per query with the key tiles shared by four queries (head_dim ≤ 128, four queries or more),
 * or one block per (query, head) for decode steps and wider heads. Nothing here synchronises the stream except topk.
 *
 * Launch shapes: grids are 1-D over elements (grid-stride loops, 64-bit indices) or one block
 * per row; block sizes are powers of two (the reductions rely on it). */
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "cuda_impl.h"

extern "C" {
#include "cuda_ops.h"
#include "half.h"
#include "registry.h"
}

#define ELEM_THREADS 256
#define ROW_THREADS 256
#define ATTN_THREADS 128

static unsigned elem_blocks(int64_t n) {
    int64_t b = (n + ELEM_THREADS - 1) / ELEM_THREADS;
    if (b < 1) b = 1;
    return b > 65535 * 8 ? 65535u * 8u : (unsigned)b;
}

static cudaStream_t stream_of(k_ctx_t *kc) { return k_ctx_cuda(kc)->stream; }

// ---- reductions over a block (blockDim.x a power of two; sh holds blockDim.x floats) ------------

__device__ static float block_sum(float v, float *sh) {
    sh[threadIdx.x] = v;
    __syncthreads();
    for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) sh[threadIdx.x] += sh[threadIdx.x + s];
        __syncthreads();
    }
    float r = sh[0];
    __syncthreads();
    return r;
}

__device__ static float block_max(float v, float *sh) {
    sh[threadIdx.x] = v;
    __syncthreads();
    for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) sh[threadIdx.x] = fmaxf(sh[threadIdx.x], sh[threadIdx.x + s]);
        __syncthreads();
    }
    float r = sh[0];
    __syncthreads();
    return r;
}

__device__ static float load_w(const void *w, tensor_dtype_t dt, size_t i) {
    if (dt == TENSOR_DTYPE_F16) return __half2float(__ushort_as_half(((const unsigned short *)w)[i]));
    if (dt == TENSOR_DTYPE_BF16) return __bfloat162float(__ushort_as_bfloat16(((const unsigned short *)w)[i]));
    return ((const float *)w)[i];
}

// ---- matmul ---------------------------------------------------------------------------------------

/* x [m, k] (row stride ldx) rounded to the weights' 16-bit dtype, dense [m, k]. */
__global__ static void to_16bit_kernel(const float *x, int m, int k, int ldx, unsigned short *y, bool bf16) {
    int64_t n = (int64_t)m * k;
    for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < n; e += (int64_t)gridDim.x * blockDim.x) {
        int64_t i = e / k, j = e % k;
        float v = x[i * ldx + j];
        y[e] = bf16 ? __bfloat16_as_ushort(__float2bfloat16_rn(v)) : __half_as_ushort(__float2half_rn(v));
    }
}

__global__ static void add_bias_kernel(float *y, int m, int n, int ldy, const float *bias) {
    int64_t total = (int64_t)m * n;
    for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < total; e += (int64_t)gridDim.x * blockDim.x) {
        int64_t i = e / n, j = e % n;
        y[i * ldy + j] += bias[j];
    }
}

/* Row-major y[m, n] (=|+=) x[m, k]·w[n, k]ᵀ is column-major yᵀ = op(W)·Xᵀ with W seen as the
 * column-major [k, n] matrix wᵀ: cuBLAS computes (n × m) = (W: k × n)ᵀ · (X: k × m). */
static int gemm(k_ctx_t *kc, int m, int n, int k, const void *x, cudaDataType xt, int ldx, const void *w,
                cudaDataType wt, float *y, int ldy, bool accumulate) {
    const float alpha = 1.0f, beta = accumulate ? 1.0f : 0.0f;
    cublasHandle_t h = k_ctx_cuda(kc)->blas;
    BLAS_TRY(kc, cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, n, m, k, &alpha, w, wt, k, x, xt, ldx, &beta, y,
                              CUDA_R_32F, ldy, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    return HIRED_OK;
}

extern "C" size_t k_matmul_cuda_workspace(const k_matmul_args *a) {
    return a->w_dtype == TENSOR_DTYPE_F32 ? 0 : (size_t)a->m * (size_t)a->k * 2 + 64;
}

extern "C" int k_matmul_cuda(k_ctx_t *kc, const k_matmul_args *a) {
    int ldx = a->ldx ? a->ldx : a->k, ldy = a->ldy ? a->ldy : a->n;
    size_t mark = k_ctx_mark(kc);
    int rc;
    if (a->w_dtype == TENSOR_DTYPE_F32) {
        rc = gemm(kc, a->m, a->n, a->k, a->x, CUDA_R_32F, ldx, a->w, CUDA_R_32F, (float *)a->y, ldy, a->accumulate);
    } else {
        bool bf16 = a->w_dtype == TENSOR_DTYPE_BF16;
        cudaDataType t = bf16 ? CUDA_R_16BF : CUDA_R_16F;
        unsigned short *xh = (unsigned short *)k_ctx_alloc(kc, (size_t)a->m * (size_t)a->k * 2);
        if (!xh) return HIRED_ENOMEM;
        to_16bit_kernel<<<elem_blocks((int64_t)a->m * a->k), ELEM_THREADS, 0, stream_of(kc)>>>(
            (const float *)a->x, a->m, a->k, ldx, xh, bf16);
        LAUNCH_TRY(kc, "to_16bit_kernel");
        rc = gemm(kc, a->m, a->n, a->k, xh, t, a->k, a->w, t, (float *)a->y, ldy, a->accumulate);
    }
    /* the arena is stream-ordered: the next op on this stream runs after the GEMM has read xh */
    k_ctx_release(kc, mark);
    if (rc) return rc;
    if (a->bias) {
        add_bias_kernel<<<elem_blocks((int64_t)a->m * a->n), ELEM_THREADS, 0, stream_of(kc)>>>((float *)a->y, a->m,
                                                                                               a->n, ldy, a->bias);
        LAUNCH_TRY(kc, "add_bias_kernel");
    }
    return HIRED_OK;
}

// ---- norms (one block per row; x and y may be the same rows) --------------------------------------

__global__ static void layernorm_kernel(const float *x, float *y, int d, const float *gamma, const float *beta,
                                        float eps) {
    __shared__ float sh[ROW_THREADS];
    const float *xr = x + (size_t)blockIdx.x * d;
    float *yr = y + (size_t)blockIdx.x * d;
    float s = 0.0f;
    for (int j = threadIdx.x; j < d; j += blockDim.x) s += xr[j];
    float mean = block_sum(s, sh) / (float)d;
    float v = 0.0f;
    for (int j = threadIdx.x; j < d; j += blockDim.x) {
        float c = xr[j] - mean;
        v += c * c;
    }
    float rstd = 1.0f / sqrtf(block_sum(v, sh) / (float)d + eps);
    for (int j = threadIdx.x; j < d; j += blockDim.x) {
        float o = (xr[j] - mean) * rstd * gamma[j];
        yr[j] = beta ? o + beta[j] : o;
    }
}

__global__ static void rmsnorm_kernel(const float *x, float *y, int d, const float *gamma, float eps) {
    __shared__ float sh[ROW_THREADS];
    const float *xr = x + (size_t)blockIdx.x * d;
    float *yr = y + (size_t)blockIdx.x * d;
    float s = 0.0f;
    for (int j = threadIdx.x; j < d; j += blockDim.x) s += xr[j] * xr[j];
    float rstd = 1.0f / sqrtf(block_sum(s, sh) / (float)d + eps);
    for (int j = threadIdx.x; j < d; j += blockDim.x) yr[j] = xr[j] * rstd * gamma[j];
}

extern "C" int k_layernorm_cuda(k_ctx_t *kc, const k_layernorm_args *a) {
    if (a->m == 0) return HIRED_OK;
    layernorm_kernel<<<a->m, ROW_THREADS, 0, stream_of(kc)>>>((const float *)a->x, (float *)a->y, a->d, a->gamma,
                                                              a->beta, a->eps);
    LAUNCH_TRY(kc, "layernorm_kernel");
    return HIRED_OK;
}

extern "C" int k_rmsnorm_cuda(k_ctx_t *kc, const k_rmsnorm_args *a) {
    if (a->m == 0) return HIRED_OK;
    rmsnorm_kernel<<<a->m, ROW_THREADS, 0, stream_of(kc)>>>((const float *)a->x, (float *)a->y, a->d, a->gamma,
                                                            a->eps);
    LAUNCH_TRY(kc, "rmsnorm_kernel");
    return HIRED_OK;
}

// ---- softmax (one block per row, in place) --------------------------------------------------------

__global__ static void softmax_kernel(float *x, int n) {
    __shared__ float sh[ROW_THREADS];
    float *r = x + (size_t)blockIdx.x * n;
    float mx = -INFINITY;
    for (int j = threadIdx.x; j < n; j += blockDim.x) mx = fmaxf(mx, r[j]);
    mx = block_max(mx, sh);
    float s = 0.0f;
    for (int j = threadIdx.x; j < n; j += blockDim.x) {
        float e = expf(r[j] - mx);
        r[j] = e;
        s += e;
    }
    s = block_sum(s, sh);
    for (int j = threadIdx.x; j < n; j += blockDim.x) r[j] = r[j] / s;
}

extern "C" int k_softmax_cuda(k_ctx_t *kc, const k_softmax_args *a) {
    if (a->m == 0 || a->n == 0) return HIRED_OK;
    softmax_kernel<<<a->m, ROW_THREADS, 0, stream_of(kc)>>>((float *)a->x, a->n);
    LAUNCH_TRY(kc, "softmax_kernel");
    return HIRED_OK;
}

// ---- attention ------------------------------------------------------------------------------------

typedef struct {
    const float *q, *k, *v;
    float *out;
    int t_k, n_head, group, d;
    size_t ldq, ldk, ldv, ldo;
    float scale;
    bool causal;
    int q_pos0;
    const int32_t *blocks; /* paged keys and values (k_attention_args.kv_blocks), or NULL */
    int block;
    size_t block_stride;
} attn_params;

/* Element offset of key/value row j (k_attention_row on the device). */
__device__ static inline size_t attn_row_off(const attn_params &P, int j, size_t ld) {
    if (!P.blocks) return (size_t)j * ld;
    return (size_t)P.blocks[j / P.block] * P.block_stride + (size_t)(j % P.block) * ld;
}

/* One block per (query, q head): blockIdx.x the query (up to 2^31 − 1), blockIdx.y the head. Keys are visited in tiles of blockDim.x: thread t scores key
 * j0+t, the tile's maximum updates the running maximum M (the running sum L and the output
 * accumulators are rescaled by e^(M_old − M_new)), and each thread accumulates the
 * probability-weighted v of its own output columns. Shared memory: q [d], acc [d], p
 * [blockDim.x]. Every thread computes the same M and L from shared values. */
__global__ static void attention_kernel(attn_params P) {
    extern __shared__ float sh[];
    float *qs = sh, *acc = sh + P.d, *p = sh + 2 * P.d;
    const int i = blockIdx.x, h = blockIdx.y, T = blockDim.x, tid = threadIdx.x;
    const int hk = h / P.group;
    const float *q = P.q + (size_t)i * P.ldq + (size_t)h * P.d;
    for (int c = tid; c < P.d; c += T) {
        qs[c] = q[c];
        acc[c] = 0.0f;
    }
    __syncthreads();
    int n_vis = P.t_k;
    if (P.causal && (long long)P.q_pos0 + i + 1 < n_vis) n_vis = P.q_pos0 + i + 1;
    float M = -INFINITY, L = 0.0f;
    for (int j0 = 0; j0 < n_vis; j0 += T) {
        int nt = n_vis - j0 < T ? n_vis - j0 : T;
        float s = -INFINITY;
        if (tid < nt) {
            const float *kr = P.k + attn_row_off(P, j0 + tid, P.ldk) + (size_t)hk * P.d;
            float dot = 0.0f;
            for (int c = 0; c < P.d; c++) dot += qs[c] * kr[c];
            s = dot * P.scale;
        }
        p[tid] = s;
        __syncthreads();
        float tmax = -INFINITY;
        for (int t = 0; t < nt; t++) tmax = fmaxf(tmax, p[t]);
        float Mn = fmaxf(M, tmax);
        float corr = expf(M - Mn); /* 0 on the first tile (M = −inf) */
        __syncthreads();           /* every thread has read the scores */
        if (tid < nt) p[tid] = expf(s - Mn);
        __syncthreads();
        float ts = 0.0f;
        for (int t = 0; t < nt; t++) ts += p[t];
        L = L * corr + ts;
        for (int c = tid; c < P.d; c += T) {
            const float *vc = P.v + (size_t)hk * P.d + c;
            float o = acc[c] * corr;
            for (int t = 0; t < nt; t++) o += p[t] * vc[attn_row_off(P, j0 + t, P.ldv)];
            acc[c] = o;
        }
        M = Mn;
        __syncthreads(); /* p is rewritten by the next tile */
    }
    float *o = P.out + (size_t)i * P.ldo + (size_t)h * P.d;
    for (int c = tid; c < P.d; c += T) o[c] = L > 0.0f ? acc[c] / L : 0.0f; /* no visible key: 0, as the reference */
}

/* The tiled form, for head_dim ≤ 128 (every model hired serves): one block of TQ_WARPS warps
 * per (group of TQ_WARPS consecutive queries, q head), one warp per query. The block stages
 * tiles of 32 keys and their values in shared memory once for all its queries (coalesced row
 * loads; key rows padded by one float so that lane j reading key j's row hits its own bank).
 * Lane j scores key j of the tile against the warp's query; the tile's maximum and sum come
 * from warp shuffles; the running maximum M and sum L rescale as in attention_kernel; each
 * lane holds the output columns lane, lane + 32, ... in registers and adds p_t · v_t for the
 * tile's keys (p_t broadcast by shuffle). Keys past a query's causal limit score −inf and
 * weigh 0. Shared memory: 32·(d+1) keys, 32·d values, TQ_WARPS·d queries. */
#define TQ_WARPS 4
#define TK 32
#define TILED_MAX_D 128

__global__ static void attention_tiled_kernel(attn_params P, int t_q) {
    extern __shared__ float sh[];
    const int d = P.d, kst = d + 1;
    float *ks = sh, *vs = ks + TK * kst, *qs = vs + TK * d;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, nthr = blockDim.x;
    const int i0 = blockIdx.x * TQ_WARPS, h = blockIdx.y, hk = h / P.group;
    const int i = i0 + warp;
    const bool active = i < t_q;
    for (int e = threadIdx.x; e < TQ_WARPS * d; e += nthr) {
        int w = e / d, c = e % d;
        qs[e] = i0 + w < t_q ? P.q[(size_t)(i0 + w) * P.ldq + (size_t)h * d + c] : 0.0f;
    }
    /* keys visible to this warp's query, and to the block's last query (the tiles to load) */
    int last = (i0 + TQ_WARPS - 1 < t_q ? i0 + TQ_WARPS - 1 : t_q - 1);
    int n_vis = P.t_k, n_blk = P.t_k;
    if (P.causal) {
        if ((long long)P.q_pos0 + i + 1 < n_vis) n_vis = P.q_pos0 + i + 1;
        if ((long long)P.q_pos0 + last + 1 < n_blk) n_blk = P.q_pos0 + last + 1;
    }
    float acc[TILED_MAX_D / 32];
#pragma unroll
    for (int r = 0; r < TILED_MAX_D / 32; r++) acc[r] = 0.0f;
    float M = -INFINITY, L = 0.0f;
    const float *q = qs + warp * d;
    for (int j0 = 0; j0 < n_blk; j0 += TK) {
        const int nt = n_blk - j0 < TK ? n_blk - j0 : TK;
        __syncthreads(); /* the previous tile is no longer read (and qs is written) */
        for (int e = threadIdx.x; e < nt * d; e += nthr) {
            int t = e / d, c = e % d;
            ks[t * kst + c] = P.k[attn_row_off(P, j0 + t, P.ldk) + (size_t)hk * d + c];
            vs[t * d + c] = P.v[attn_row_off(P, j0 + t, P.ldv) + (size_t)hk * d + c];
        }
        __syncthreads();
        if (!active) continue;
        float s = -INFINITY;
        if (lane < nt && j0 + lane < n_vis) {
            const float *kr = ks + lane * kst;
            float dot = 0.0f;
            for (int c = 0; c < d; c++) dot += q[c] * kr[c];
            s = dot * P.scale;
        }
        float tmax = s;
        for (int off = 16; off > 0; off >>= 1) tmax = fmaxf(tmax, __shfl_xor_sync(0xffffffffu, tmax, off));
        const float Mn = fmaxf(M, tmax);
        if (Mn == -INFINITY) continue; /* nothing visible yet (only when t_k is 0) */
        const float corr = expf(M - Mn), p = s == -INFINITY ? 0.0f : expf(s - Mn);
        float ts = p;
        for (int off = 16; off > 0; off >>= 1) ts += __shfl_xor_sync(0xffffffffu, ts, off);
        L = L * corr + ts;
#pragma unroll
        for (int r = 0; r < TILED_MAX_D / 32; r++) acc[r] *= corr;
        for (int t = 0; t < nt; t++) {
            const float pt = __shfl_sync(0xffffffffu, p, t);
            const float *vr = vs + t * d;
#pragma unroll
            for (int r = 0; r < TILED_MAX_D / 32; r++)
                if (lane + 32 * r < d) acc[r] += pt * vr[lane + 32 * r];
        }
        M = Mn;
    }
    if (!active) return;
    float *o = P.out + (size_t)i * P.ldo + (size_t)h * d;
#pragma unroll
    for (int r = 0; r < TILED_MAX_D / 32; r++)
        if (lane + 32 * r < d) o[lane + 32 * r] = L > 0.0f ? acc[r] / L : 0.0f; /* no visible key: 0 */
}

extern "C" int k_attention_cuda(k_ctx_t *kc, const k_attention_args *a) {
    if (a->t_q == 0) return HIRED_OK;
    size_t qrow = (size_t)a->n_head * a->head_dim, kvrow = (size_t)a->n_head_kv * a->head_dim;
    attn_params P = {(const float *)a->q, (const float *)a->k, (const float *)a->v, (float *)a->out, a->t_k,
                     a->n_head, a->n_head / a->n_head_kv, a->head_dim, a->ldq ? (size_t)a->ldq : qrow,
                     a->ldk ? (size_t)a->ldk : kvrow, a->ldv ? (size_t)a->ldv : kvrow, a->ldo ? (size_t)a->ldo : qrow,
                     a->scale, a->causal, a->q_pos0, a->kv_blocks, a->kv_block, a->kv_block_stride};
    /* the tiled kernel for blocks of queries; a decode step's one query keeps the block-per-
     * (query, head) kernel, which scores 128 keys at once instead of one warp's 32 (on an H200
     * the tiled kernel made a 7B decode step 1.8x slower and the prefill 1.4x faster) */
    if (a->head_dim <= TILED_MAX_D && a->t_q >= TQ_WARPS) {
        size_t tshmem = ((size_t)TK * (a->head_dim + 1) + (size_t)TK * a->head_dim + (size_t)TQ_WARPS * a->head_dim) *
                        sizeof(float);
        dim3 tgrid((unsigned)((a->t_q + TQ_WARPS - 1) / TQ_WARPS), (unsigned)a->n_head);
        attention_tiled_kernel<<<tgrid, TQ_WARPS * 32, tshmem, stream_of(kc)>>>(P, a->t_q);
        LAUNCH_TRY(kc, "attention_tiled_kernel");
        return HIRED_OK;
    }
    size_t shmem = (2 * (size_t)a->head_dim + ATTN_THREADS) * sizeof(float);
    if (shmem > 48 * 1024)
        return k_ctx_fail(kc, HIRED_EUNSUPPORTED, "attention: head_dim %d too large for the CUDA kernel",
                          a->head_dim);
    dim3 grid((unsigned)a->t_q, (unsigned)a->n_head);
    attention_kernel<<<grid, ATTN_THREADS, shmem, stream_of(kc)>>>(P);
    LAUNCH_TRY(kc, "attention_kernel");
    return HIRED_OK;
}

/* One block per q head: scores of the query row against every key into probs, then the row's
 * softmax in place. Shared memory: q [d], then the reduction buffer [blockDim.x]. */
__global__ static void attn_row_kernel(const float *q, const float *k, size_t ldk, int t_k, int d, int group,
                                       float scale, float *probs, size_t ldp) {
    extern __shared__ float sh[];
    float *qs = sh, *red = sh + d;
    const int h = blockIdx.x, hk = h / group;
    for (int c = threadIdx.x; c < d; c += blockDim.x) qs[c] = q[(size_t)h * d + c];
    __syncthreads();
    float *pr = probs + (size_t)h * ldp;
    float mx = -INFINITY;
    for (int j = threadIdx.x; j < t_k; j += blockDim.x) {
        const float *kr = k + (size_t)j * ldk + (size_t)hk * d;
        float dot = 0.0f;
        for (int c = 0; c < d; c++) dot += qs[c] * kr[c];
        float s = dot * scale;
        pr[j] = s;
        mx = fmaxf(mx, s);
    }
    mx = block_max(mx, red);
    float sum = 0.0f;
    for (int j = threadIdx.x; j < t_k; j += blockDim.x) {
        float e = expf(pr[j] - mx);
        pr[j] = e;
        sum += e;
    }
    sum = block_sum(sum, red);
    for (int j = threadIdx.x; j < t_k; j += blockDim.x) pr[j] = pr[j] / sum;
}

extern "C" int k_attn_row_cuda(k_ctx_t *kc, const k_attn_row_args *a) {
    size_t kvrow = (size_t)a->n_head_kv * a->head_dim;
    size_t shmem = ((size_t)a->head_dim + ROW_THREADS) * sizeof(float);
    if (shmem > 48 * 1024)
        return k_ctx_fail(kc, HIRED_EUNSUPPORTED, "attn_row: head_dim %d too large for the CUDA kernel", a->head_dim);
    attn_row_kernel<<<a->n_head, ROW_THREADS, shmem, stream_of(kc)>>>(
        (const float *)a->q, (const float *)a->k, a->ldk ? (size_t)a->ldk : kvrow, a->t_k, a->head_dim,
        a->n_head / a->n_head_kv, a->scale, (float *)a->probs, a->ldp ? (size_t)a->ldp : (size_t)a->t_k);
    LAUNCH_TRY(kc, "attn_row_kernel");
    return HIRED_OK;
}

// ---- activations (double, like the reference; they are memory-bound) ------------------------------

#define ELEMWISE(i, n) \
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < (n); i += (int64_t)gridDim.x * blockDim.x)

__global__ static void gelu_erf_kernel(const float *x, float *y, int64_t n) {
    ELEMWISE(i, n) {
        double v = x[i];
        y[i] = (float)(0.5 * v * (1.0 + erf(v / sqrt(2.0))));
    }
}

__global__ static void quick_gelu_kernel(const float *x, float *y, int64_t n) {
    ELEMWISE(i, n) {
        double v = x[i];
        y[i] = (float)(v / (1.0 + exp(-1.702 * v)));
    }
}

__global__ static void silu_mul_kernel(const float *gate, const float *up, float *y, int64_t n) {
    ELEMWISE(i, n) {
        double g = gate[i], u = up[i];
        y[i] = (float)(g / (1.0 + exp(-g)) * u);
    }
}

extern "C" int k_gelu_erf_cuda(k_ctx_t *kc, const k_act_args *a) {
    if (a->n == 0) return HIRED_OK;
    gelu_erf_kernel<<<elem_blocks(a->n), ELEM_THREADS, 0, stream_of(kc)>>>((const float *)a->x, (float *)a->y, a->n);
    LAUNCH_TRY(kc, "gelu_erf_kernel");
    return HIRED_OK;
}

extern "C" int k_quick_gelu_cuda(k_ctx_t *kc, const k_act_args *a) {
    if (a->n == 0) return HIRED_OK;
    quick_gelu_kernel<<<elem_blocks(a->n), ELEM_THREADS, 0, stream_of(kc)>>>((const float *)a->x, (float *)a->y,
                                                                             a->n);
    LAUNCH_TRY(kc, "quick_gelu_kernel");
    return HIRED_OK;
}

extern "C" int k_silu_mul_cuda(k_ctx_t *kc, const k_silu_mul_args *a) {
    if (a->n == 0) return HIRED_OK;
    silu_mul_kernel<<<elem_blocks(a->n), ELEM_THREADS, 0, stream_of(kc)>>>((const float *)a->gate,
                                                                           (const float *)a->up, (float *)a->y, a->n);
    LAUNCH_TRY(kc, "silu_mul_kernel");
    return HIRED_OK;
}

// ---- rope ------------------------------------------------------------------------------------------

/* One thread per (row, head, pair j). The roundings are the reference's: the exponent and
 * inv_freq in float32, the power correctly rounded (double, then float), the angle a float32
 * product, cos and sin rounded from double; the rotation without contraction (_rn intrinsics). */
__global__ static void rope_kernel(float *x, int t, int n_head, int d, size_t ld, int pos0, float theta) {
    int half = d / 2;
    int64_t n = (int64_t)t * n_head * half;
    ELEMWISE(e, n) {
        int j = (int)(e % half);
        int64_t rh = e / half;
        int h = (int)(rh % n_head), i = (int)(rh / n_head);
        float ex = __fdiv_rn((float)(2 * j), (float)d);
        float inv = __fdiv_rn(1.0f, (float)pow((double)theta, (double)ex));
        float ang = __fmul_rn((float)(pos0 + i), inv);
        float c = (float)cos((double)ang), s = (float)sin((double)ang);
        float *r = x + (size_t)i * ld + (size_t)h * d;
        float x0 = r[j], x1 = r[j + half];
        r[j] = __fsub_rn(__fmul_rn(x0, c), __fmul_rn(x1, s));
        r[j + half] = __fadd_rn(__fmul_rn(x1, c), __fmul_rn(x0, s));
    }
}

extern "C" int k_rope_cuda(k_ctx_t *kc, const k_rope_args *a) {
    int64_t n = (int64_t)a->t * a->n_head * (a->head_dim / 2);
    if (n == 0) return HIRED_OK;
    size_t ld = a->ld ? (size_t)a->ld : (size_t)a->n_head * a->head_dim;
    rope_kernel<<<elem_blocks(n), ELEM_THREADS, 0, stream_of(kc)>>>((float *)a->x, a->t, a->n_head, a->head_dim, ld,
                                                                    a->pos0, (float)a->theta);
    LAUNCH_TRY(kc, "rope_kernel");
    return HIRED_OK;
}

// ---- add, sum_rows ----------------------------------------------------------------------------------

__global__ static void add_kernel(const float *a, const float *b, float *y, int64_t n) {
    ELEMWISE(i, n) y[i] = __fadd_rn(a[i], b[i]);
}

/* One thread per column; rows added in order (the op's contract: bit-equal to the reference). */
__global__ static void sum_rows_kernel(const float *x, size_t ld, int m, int n, float *y) {
    ELEMWISE(j, n) {
        float s = 0.0f;
        for (int i = 0; i < m; i++) s = __fadd_rn(s, x[(size_t)i * ld + j]);
        y[j] = s;
    }
}

extern "C" int k_add_cuda(k_ctx_t *kc, const k_add_args *a) {
    if (a->n == 0) return HIRED_OK;
    add_kernel<<<elem_blocks(a->n), ELEM_THREADS, 0, stream_of(kc)>>>((const float *)a->a, (const float *)a->b,
                                                                      (float *)a->y, a->n);
    LAUNCH_TRY(kc, "add_kernel");
    return HIRED_OK;
}

extern "C" int k_sum_rows_cuda(k_ctx_t *kc, const k_sum_rows_args *a) {
    if (a->n == 0) return HIRED_OK;
    sum_rows_kernel<<<elem_blocks(a->n), ELEM_THREADS, 0, stream_of(kc)>>>(
        (const float *)a->x, a->ldx ? (size_t)a->ldx : (size_t)a->n, a->m, a->n, (float *)a->y);
    LAUNCH_TRY(kc, "sum_rows_kernel");
    return HIRED_OK;
}

// ---- cast -------------------------------------------------------------------------------------------

/* half.h's branch-free conversions on the float's bits: the reference's results, nan included. */
__global__ static void cast_half_kernel(const float *x, uint16_t *y, int64_t n, int bf16) {
    ELEMWISE(i, n) y[i] = bf16 ? f32_bits_to_bf16(__float_as_uint(x[i])) : f32_bits_to_half(__float_as_uint(x[i]));
}

extern "C" int k_cast_cuda(k_ctx_t *kc, const k_cast_args *a) {
    if (a->dtype == TENSOR_DTYPE_F32) {
        CU_TRY(kc, cudaMemcpyAsync(a->y, a->x, (size_t)a->n * sizeof(float), cudaMemcpyDeviceToDevice, stream_of(kc)));
        return HIRED_OK;
    }
    cast_half_kernel<<<elem_blocks(a->n), ELEM_THREADS, 0, stream_of(kc)>>>((const float *)a->x, (uint16_t *)a->y, a->n,
                                                                            a->dtype == TENSOR_DTYPE_BF16);
    LAUNCH_TRY(kc, "cast_half_kernel");
    return HIRED_OK;
}

// ---- embed, patch_embed -----------------------------------------------------------------------------

__global__ static void embed_kernel(const int32_t *ids, const void *table, tensor_dtype_t dt, int n, int d,
                                    float *y) {
    ELEMWISE(e, (int64_t)n * d) {
        int64_t i = e / d, j = e % d;
        y[e] = load_w(table, dt, (size_t)ids[i] * d + j);
    }
}

extern "C" int k_embed_cuda(k_ctx_t *kc, const k_embed_args *a) {
    int64_t n = (int64_t)a->n * a->d;
    if (n == 0) return HIRED_OK;
    embed_kernel<<<elem_blocks(n), ELEM_THREADS, 0, stream_of(kc)>>>(a->ids, a->table, a->table_dtype, a->n, a->d,
                                                                     (float *)a->y);
    LAUNCH_TRY(kc, "embed_kernel");
    return HIRED_OK;
}

/* cols [gh*gw, c*p*p]: patch (pr, pc)'s pixels in the weight's (channel, row, column) order. */
__global__ static void im2col_kernel(const float *img, int c, int h, int w, int p, int gw, int64_t n_patch,
                                     float *cols) {
    int64_t K = (int64_t)c * p * p;
    ELEMWISE(e, n_patch * K) {
        int64_t r = e / K, q = e % K;
        int ch = (int)(q / (p * p)), i = (int)(q / p % p), j = (int)(q % p);
        int pr = (int)(r / gw), pc = (int)(r % gw);
        cols[e] = img[((size_t)ch * h + (size_t)pr * p + i) * w + (size_t)pc * p + j];
    }
}

__global__ static void to_f32_kernel(const void *w, tensor_dtype_t dt, int64_t n, float *y) {
    ELEMWISE(i, n) y[i] = load_w(w, dt, (size_t)i);
}

extern "C" size_t k_patch_embed_cuda_workspace(const k_patch_embed_args *a) {
    size_t K = (size_t)a->c * a->p * a->p, P = (size_t)(a->h / a->p) * (size_t)(a->w / a->p);
    return P * K * sizeof(float) + 64 + (a->w_dtype == TENSOR_DTYPE_F32 ? 0 : (size_t)a->d * K * sizeof(float) + 64);
}

extern "C" int k_patch_embed_cuda(k_ctx_t *kc, const k_patch_embed_args *a) {
    int gh = a->h / a->p, gw = a->w / a->p, K = a->c * a->p * a->p;
    int64_t P = (int64_t)gh * gw;
    if (P == 0) return HIRED_OK;
    size_t mark = k_ctx_mark(kc);
    float *cols = (float *)k_ctx_alloc(kc, (size_t)P * K * sizeof(float));
    if (!cols) return HIRED_ENOMEM;
    im2col_kernel<<<elem_blocks(P * K), ELEM_THREADS, 0, stream_of(kc)>>>((const float *)a->img, a->c, a->h, a->w,
                                                                          a->p, gw, P, cols);
    LAUNCH_TRY(kc, "im2col_kernel");
    const void *w = a->weight;
    if (a->w_dtype != TENSOR_DTYPE_F32) { /* a few MB, once per image: exact, and the F32 GEMM */
        float *wf = (float *)k_ctx_alloc(kc, (size_t)a->d * K * sizeof(float));
        if (!wf) {
            k_ctx_release(kc, mark);
            return HIRED_ENOMEM;
        }
        to_f32_kernel<<<elem_blocks((int64_t)a->d * K), ELEM_THREADS, 0, stream_of(kc)>>>(a->weight, a->w_dtype,
                                                                                          (int64_t)a->d * K, wf);
        LAUNCH_TRY(kc, "to_f32_kernel");
        w = wf;
    }
    int rc = gemm(kc, (int)P, a->d, K, cols, CUDA_R_32F, K, w, CUDA_R_32F, (float *)a->y, a->d, false);
    k_ctx_release(kc, mark);
    return rc;
}

// ---- topk: the scores go to the host (a few KB), the CPU backend ranks them -----------------------

extern "C" int k_topk_cuda(k_ctx_t *kc, const k_topk_args *a) {
    if (a->k == 0) return HIRED_OK;
    float *hx = (float *)malloc((size_t)a->n * sizeof(float));
    int32_t *hidx = (int32_t *)malloc((size_t)a->k * sizeof(int32_t));
    int rc = hx && hidx ? HIRED_OK : k_ctx_fail(kc, HIRED_ENOMEM, "topk: out of host memory");
    if (!rc) rc = k_ctx_download(kc, hx, a->x, (size_t)a->n * sizeof(float));
    if (!rc) {
        k_topk_args h = *a;
        h.x = hx;
        h.idx = hidx;
        k_ctx_t *host = k_ctx_host(kc);
        rc = k_run(host, K_OP_TOPK, &h);
        if (rc) k_ctx_fail(kc, rc, "topk on the host: %s", k_ctx_err(host));
    }
    if (!rc) rc = k_ctx_upload(kc, a->idx, hidx, (size_t)a->k * sizeof(int32_t));
    free(hx);
    free(hidx);
    return rc;
}

// ---- gather, mask -----------------------------------------------------------------------------------

__global__ static void gather_kernel(const float *x, size_t ldx, const int32_t *idx, float *y, size_t ldy, int n,
                                     int d) {
    ELEMWISE(e, (int64_t)n * d) {
        int64_t i = e / d, j = e % d;
        size_t r = idx ? (size_t)idx[i] : (size_t)i;
        y[(size_t)i * ldy + j] = x[r * ldx + j];
    }
}

__global__ static void mask_kernel(const int32_t *idx, int n, float value, float *y) {
    ELEMWISE(i, n) y[idx[i]] = value;
}

extern "C" int k_gather_cuda(k_ctx_t *kc, const k_gather_args *a) {
    int64_t n = (int64_t)a->n * a->d;
    if (n == 0) return HIRED_OK;
    gather_kernel<<<elem_blocks(n), ELEM_THREADS, 0, stream_of(kc)>>>(
        (const float *)a->x, a->ldx ? (size_t)a->ldx : (size_t)a->d, a->idx, (float *)a->y,
        a->ldy ? (size_t)a->ldy : (size_t)a->d, a->n, a->d);
    LAUNCH_TRY(kc, "gather_kernel");
    return HIRED_OK;
}

extern "C" int k_mask_cuda(k_ctx_t *kc, const k_mask_args *a) {
    if (a->n == 0) return HIRED_OK;
    mask_kernel<<<elem_blocks(a->n), ELEM_THREADS, 0, stream_of(kc)>>>(a->idx, a->n, a->value, (float *)a->y);
    LAUNCH_TRY(kc, "mask_kernel");
    return HIRED_OK;
}
