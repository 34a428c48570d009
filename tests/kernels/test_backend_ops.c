/* test_backend_ops — every op of the registry, on every backend that supports a case, against the
 * op's reference loops (what ggml's test-backend-ops does for its backends). It replaces per-op
 * twins for new backends: a CUDA op is tested by this file the day its row gets a CUDA column.
 *
 * Each op supplies cases on both sides of every branch of its plan (serial and threaded sizes,
 * the matmul variants, attention blocking and decode, the rope fallback, ...) and the tolerance
 * its header documents: elementwise |a−b| ≤ atol + rtol·|ref|, NMSE for GEMMs, or exact. A case
 * is built on the host; for each backend it is uploaded into device buffers (k_device_alloc +
 * k_ctx_upload), run through the dispatcher (k_run), downloaded and compared. The args structs
 * hold host pointers; before a device run every pointer-sized slot of the struct that points
 * into one of the case's host buffers is moved to the same offset of its device buffer (no other
 * field of an args struct can hold such a value). A registry op without cases fails the test, and
 * the comparator is shown to fail on a perturbed output.
 *
 * Two ctest entries run this program: test_backend_ops (the CPU backend) and, in a build with
 * the CUDA toolkit, test_backend_ops_cuda (`--device cuda:0`: every case on that device alone,
 * so the count of runs proves each case ran there; exit 77 when the machine has no CUDA
 * device). A case may state a looser bound for the CUDA backend where its numerics differ by
 * design (GEMMs with F16/BF16 weights round the activations to that dtype: cuda_ops.h). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "half.h"
#include "kverify.h"
#include "registry.h"
#include "test.h"

#include "act.h"
#include "add.h"
#include "attention.h"
#include "cast.h"
#include "embed.h"
#include "gather.h"
#include "matmul.h"
#include "q8.h"
#include "norm.h"
#include "rope.h"
#include "softmax.h"
#include "topk.h"

#define MAX_BUFS 6

typedef enum { TOL_CLOSE = 0, TOL_NMSE, TOL_EXACT } tol_kind_t;

typedef struct {
    void *host;   /* the case's data; outputs hold the reference result after the ref run */
    size_t bytes;
    bool output;  /* compared after a backend run */
    bool floats;  /* float32 values (else compared byte for byte) */
} buf_t;

typedef struct {
    char label[160];
    k_op_t op;
    union {
        k_matmul_args mm;
        k_layernorm_args ln;
        k_rmsnorm_args rn;
        k_softmax_args sm;
        k_attention_args at;
        k_attn_row_args ar;
        k_act_args act;
        k_silu_mul_args sl;
        k_rope_args rp;
        k_add_args ad;
        k_sum_rows_args sr;
        k_embed_args em;
        k_patch_embed_args pe;
        k_topk_args tk;
        k_gather_args ga;
        k_mask_args mk;
        k_cast_args ca;
    } a;
    buf_t buf[MAX_BUFS];
    int n_buf;
    tol_kind_t tol;
    double atol, rtol, nmse;
    double cuda_nmse;   /* TOL_NMSE on the CUDA backend when > 0 (documented in cuda_ops.h) */
} case_t;

static uint64_t g_seed = 1;
static int g_cases[K_OP_COUNT], g_runs, g_refused;

// ---- building cases ----------------------------------------------------------------------------

/* A new buffer of n floats filled from [lo, hi). */
static float *fbuf(case_t *c, size_t n, float lo, float hi, bool output) {
    float *p = malloc((n ? n : 1) * sizeof(float));
    kverify_fill(p, n, g_seed++, lo, hi);
    c->buf[c->n_buf++] = (buf_t){p, n * sizeof(float), output, true};
    return p;
}

/* A new buffer of n bytes (indices, half weights), zeroed. */
static void *bbuf(case_t *c, size_t n, bool output) {
    void *p = calloc(n ? n : 1, 1);
    c->buf[c->n_buf++] = (buf_t){p, n, output, false};
    return p;
}

/* n weights of dtype dt with values in [−1, 1). */
static void *wbuf(case_t *c, size_t n, tensor_dtype_t dt) {
    if (dt == TENSOR_DTYPE_F32) return fbuf(c, n, -1, 1, false);
    float *tmp = malloc(n * sizeof(float));
    kverify_fill(tmp, n, g_seed++, -1, 1);
    uint16_t *h = bbuf(c, n * 2, false);
    for (size_t i = 0; i < n; i++) h[i] = dt == TENSOR_DTYPE_F16 ? f32_to_half(tmp[i]) : f32_to_bf16(tmp[i]);
    free(tmp);
    return h;
}

/* A Q8 weight [n, k] (kernels/q8.h) of fresh values in [−1, 1). */
static void *wbuf_q8(case_t *c, int n, int k) {
    float *tmp = malloc((size_t)n * k * sizeof(float));
    kverify_fill(tmp, (size_t)n * k, g_seed++, -1, 1);
    void *w = bbuf(c, k_q8_bytes(n, k), false);
    CHECK_EQ_INT(k_q8_quantize(tmp, TENSOR_DTYPE_F32, n, k, w), 0);
    free(tmp);
    return w;
}

static void tol_close(case_t *c, double atol, double rtol) { c->tol = TOL_CLOSE, c->atol = atol, c->rtol = rtol; }
static void tol_nmse(case_t *c, double nmse) { c->tol = TOL_NMSE, c->nmse = nmse; }
static void tol_exact(case_t *c) { c->tol = TOL_EXACT; }

static void case_free(case_t *c) {
    for (int i = 0; i < c->n_buf; i++) free(c->buf[i].host);
}

// ---- running a case ----------------------------------------------------------------------------

/* Moves every pointer slot of args that points into host buffer i to device buffer i. */
static void relocate(void *args, size_t size, const case_t *c, void *const *dev) {
    for (size_t off = 0; off + sizeof(void *) <= size; off += sizeof(void *)) {
        uintptr_t v;
        memcpy(&v, (char *)args + off, sizeof v);
        for (int i = 0; i < c->n_buf; i++) {
            uintptr_t base = (uintptr_t)c->buf[i].host;
            if (v >= base && v < base + (c->buf[i].bytes ? c->buf[i].bytes : 1)) {
                uintptr_t nv = (uintptr_t)dev[i] + (v - base);
                memcpy((char *)args + off, &nv, sizeof nv);
                break;
            }
        }
    }
}

static bool compare(const case_t *c, const buf_t *b, const void *got, k_backend_t be) {
    if (c->tol == TOL_EXACT || !b->floats) {
        bool same = memcmp(got, b->host, b->bytes) == 0;
        CHECK_MSG(same, "%s on %s: output differs from the reference (exact)", c->label, k_backend_name(be));
        return same;
    }
    size_t n = b->bytes / sizeof(float);
    double nmse = be == K_BACKEND_CUDA && c->cuda_nmse > 0 ? c->cuda_nmse : c->nmse;
    kverify_result r = c->tol == TOL_NMSE ? kverify_nmse(got, b->host, n, nmse)
                                          : kverify_close(got, b->host, n, c->atol, c->rtol);
    bool ok = kverify_report(c->label, &r, got, b->host);
    CHECK_MSG(ok, "%s on %s: outside the op's tolerance", c->label, k_backend_name(be));
    return ok;
}

/* Runs the reference on the host buffers, then every supporting backend on device copies of the
 * inputs (outputs start from the same contents as before the reference ran). */
static void run_case(case_t *c, k_ctx_t *const *ctx) {
    const k_op_entry *e = k_registry_at(c->op);
    char err[HIRED_ERR_LEN];
    CHECK_MSG(e->check(&c->a, err) == 0, "%s: %s", c->label, err);
    void *before[MAX_BUFS] = {0};
    for (int i = 0; i < c->n_buf; i++)
        if (c->buf[i].output) {
            before[i] = malloc(c->buf[i].bytes ? c->buf[i].bytes : 1);
            memcpy(before[i], c->buf[i].host, c->buf[i].bytes);
        }
    e->ref(&c->a);
    g_cases[c->op]++;
    for (int b = 0; b < K_BACKEND_COUNT; b++) {
        if (!ctx[b]) continue;
        if (!k_supports((k_backend_t)b, c->op, &c->a)) {
            /* the one documented refusal: 8-bit weights run on the CPU backend only */
            CHECK_MSG(b != K_BACKEND_CPU && c->op == K_OP_MATMUL && c->a.mm.w_dtype == TENSOR_DTYPE_Q8,
                      "%s: refused by the %s backend", c->label, k_backend_name((k_backend_t)b));
            g_refused++;
            continue;
        }
        k_device_t *dev = k_ctx_device(ctx[b]);
        void *d[MAX_BUFS] = {0};
        bool ok = true;
        for (int i = 0; i < c->n_buf && ok; i++) {
            d[i] = k_device_alloc(dev, c->buf[i].bytes ? c->buf[i].bytes : 1);
            ok = d[i] && !k_ctx_upload(ctx[b], d[i], c->buf[i].output ? before[i] : c->buf[i].host, c->buf[i].bytes);
        }
        case_t dc = *c; /* the same args with device pointers */
        relocate(&dc.a, sizeof dc.a, c, d);
        int rc = ok ? k_run(ctx[b], c->op, &dc.a) : HIRED_ENOMEM;
        CHECK_MSG(rc == 0, "%s on %s: %s", c->label, k_backend_name((k_backend_t)b), k_ctx_err(ctx[b]));
        for (int i = 0; i < c->n_buf && !rc; i++) {
            if (!c->buf[i].output) continue;
            void *got = malloc(c->buf[i].bytes ? c->buf[i].bytes : 1);
            int drc = k_ctx_download(ctx[b], got, d[i], c->buf[i].bytes);
            CHECK_MSG(drc == 0, "%s: download: %s", c->label, k_ctx_err(ctx[b]));
            if (!drc) compare(c, &c->buf[i], got, (k_backend_t)b);
            free(got);
        }
        for (int i = 0; i < c->n_buf; i++) k_device_free(dev, d[i]);
        g_runs++;
    }
    for (int i = 0; i < c->n_buf; i++) free(before[i]);
    case_free(c);
}

#define CASE(c, op_id, ...)                                \
    do {                                                   \
        memset(&(c), 0, sizeof(c));                        \
        (c).op = (op_id);                                  \
        snprintf((c).label, sizeof (c).label, __VA_ARGS__); \
    } while (0)

// ---- the cases, per op -------------------------------------------------------------------------

static void cases_matmul(k_ctx_t *const *ctx) {
    /* SGEMM split by columns and by rows, serial (tiny) and threaded; FUSED (m ≤ 8) and CONVERT
     * with several blocks (k large, so a block holds fewer rows than n) for half weights; bias
     * and accumulate; padded strides; Q8 weights (the CPU only: CUDA's supports refuses them).
     * NMSE ≤ 1e-10 (matmul.h). */
    const struct { int m, n, k, pad; bool bias, acc; tensor_dtype_t dt; } s[] = {
        {3, 5, 7, 0, false, false, TENSOR_DTYPE_F32},   {577, 64, 96, 0, true, false, TENSOR_DTYPE_F32},
        {40, 700, 64, 3, true, true, TENSOR_DTYPE_F32},  {1, 300, 200, 0, true, false, TENSOR_DTYPE_F16},
        {8, 130, 70, 2, false, true, TENSOR_DTYPE_BF16}, {9, 130, 70, 0, true, false, TENSOR_DTYPE_F16},
        {20, 1100, 8192, 0, false, false, TENSOR_DTYPE_F16}, {33, 48, 40, 5, true, true, TENSOR_DTYPE_BF16},
        {1, 300, 200, 0, true, false, TENSOR_DTYPE_Q8},  {70, 130, 100, 3, false, true, TENSOR_DTYPE_Q8},
    };
    for (size_t i = 0; i < ARRAY_LEN(s); i++) {
        case_t c;
        CASE(c, K_OP_MATMUL, "matmul m=%d n=%d k=%d pad=%d bias=%d acc=%d %s", s[i].m, s[i].n, s[i].k, s[i].pad,
             s[i].bias, s[i].acc, tensor_dtype_name(s[i].dt));
        int ldx = s[i].k + s[i].pad, ldy = s[i].n + s[i].pad;
        c.a.mm = (k_matmul_args){.m = s[i].m, .n = s[i].n, .k = s[i].k, .ldx = s[i].pad ? ldx : 0,
                                 .ldy = s[i].pad ? ldy : 0, .w_dtype = s[i].dt, .accumulate = s[i].acc};
        c.a.mm.x = fbuf(&c, (size_t)s[i].m * ldx, -1, 1, false);
        c.a.mm.w = s[i].dt == TENSOR_DTYPE_Q8 ? wbuf_q8(&c, s[i].n, s[i].k) : wbuf(&c, (size_t)s[i].n * s[i].k, s[i].dt);
        c.a.mm.bias = s[i].bias ? fbuf(&c, (size_t)s[i].n, -1, 1, false) : NULL;
        c.a.mm.y = fbuf(&c, (size_t)s[i].m * ldy, -1, 1, true);
        tol_nmse(&c, 1e-10);
        if (s[i].dt != TENSOR_DTYPE_F32) c.cuda_nmse = s[i].dt == TENSOR_DTYPE_F16 ? 1e-6 : 2e-5;
        run_case(&c, ctx);
    }
}

static void cases_norm(k_ctx_t *const *ctx) {
    /* one short row, and a CLIP-sized block (threaded); beta on and off. |a−b| ≤ 1e-5 + 1e-5·|ref| */
    const int s[][2] = {{1, 7}, {3, 1024}, {2308, 1024}};
    for (size_t i = 0; i < ARRAY_LEN(s); i++) {
        case_t c;
        CASE(c, K_OP_LAYERNORM, "layernorm m=%d d=%d", s[i][0], s[i][1]);
        c.a.ln = (k_layernorm_args){.m = s[i][0], .d = s[i][1], .eps = 1e-5f};
        c.a.ln.x = fbuf(&c, (size_t)s[i][0] * s[i][1], -1, 1, false);
        c.a.ln.y = fbuf(&c, (size_t)s[i][0] * s[i][1], 0, 1, true);
        c.a.ln.gamma = fbuf(&c, (size_t)s[i][1], 0.5f, 1.5f, false);
        c.a.ln.beta = i == 1 ? NULL : fbuf(&c, (size_t)s[i][1], -1, 1, false);
        tol_close(&c, 1e-5, 1e-5);
        run_case(&c, ctx);
        CASE(c, K_OP_RMSNORM, "rmsnorm m=%d d=%d", s[i][0], s[i][1]);
        c.a.rn = (k_rmsnorm_args){.m = s[i][0], .d = s[i][1], .eps = 1e-5f};
        c.a.rn.x = fbuf(&c, (size_t)s[i][0] * s[i][1], -1, 1, false);
        c.a.rn.y = fbuf(&c, (size_t)s[i][0] * s[i][1], 0, 1, true);
        c.a.rn.gamma = fbuf(&c, (size_t)s[i][1], 0.5f, 1.5f, false);
        tol_close(&c, 1e-5, 1e-5);
        run_case(&c, ctx);
    }
}

static void cases_softmax(k_ctx_t *const *ctx) {
    /* serial and threaded; |a−b| ≤ 1e-7 + 1e-5·|ref| (softmax.h) */
    const int s[][2] = {{1, 1}, {3, 577}, {2308, 577}};
    for (size_t i = 0; i < ARRAY_LEN(s); i++) {
        case_t c;
        CASE(c, K_OP_SOFTMAX, "softmax m=%d n=%d", s[i][0], s[i][1]);
        c.a.sm = (k_softmax_args){.m = s[i][0], .n = s[i][1]};
        c.a.sm.x = fbuf(&c, (size_t)s[i][0] * s[i][1], -4, 4, true);
        tol_close(&c, 1e-7, 1e-5);
        run_case(&c, ctx);
    }
}

static void cases_attention(k_ctx_t *const *ctx) {
    /* BLOCKED one and several query blocks, causal and not, chunked prefill (q_pos0 > 0), GQA,
     * DECODE with MHA (sgemv) and GQA, padded strides. |a−b| ≤ 1e-5 + 1e-4·|ref| (attention.h) */
    const struct { int t_q, t_k, h, hkv, d; bool causal; int pos0, pad; } s[] = {
        {1, 1, 1, 1, 1, false, 0, 0},    {577, 577, 2, 2, 64, false, 0, 0}, {64, 64, 8, 2, 32, true, 0, 3},
        {300, 300, 2, 1, 32, true, 0, 0}, {40, 100, 4, 2, 32, true, 60, 1}, {3, 1025, 2, 2, 8, false, 0, 0},
        {1, 300, 8, 2, 64, true, 299, 0}, {1, 300, 4, 4, 128, true, 299, 2}, {1, 577, 4, 4, 64, false, 0, 0},
    };
    for (size_t i = 0; i < ARRAY_LEN(s); i++) {
        case_t c;
        CASE(c, K_OP_ATTENTION, "attention t_q=%d t_k=%d heads=%d/%d d=%d causal=%d pos0=%d pad=%d", s[i].t_q, s[i].t_k,
             s[i].h, s[i].hkv, s[i].d, s[i].causal, s[i].pos0, s[i].pad);
        int qrow = s[i].h * s[i].d, kvrow = s[i].hkv * s[i].d, p = s[i].pad;
        c.a.at = (k_attention_args){.t_q = s[i].t_q, .t_k = s[i].t_k, .n_head = s[i].h, .n_head_kv = s[i].hkv,
                                    .head_dim = s[i].d, .ldq = p ? qrow + p : 0, .ldk = p ? kvrow + p : 0,
                                    .ldv = p ? kvrow + 2 * p : 0, .ldo = p ? qrow + p : 0,
                                    .scale = 1.0f / sqrtf((float)s[i].d), .causal = s[i].causal, .q_pos0 = s[i].pos0};
        c.a.at.q = fbuf(&c, (size_t)s[i].t_q * (qrow + p), -1, 1, false);
        c.a.at.k = fbuf(&c, (size_t)s[i].t_k * (kvrow + p), -1, 1, false);
        c.a.at.v = fbuf(&c, (size_t)s[i].t_k * (kvrow + 2 * p), -1, 1, false);
        c.a.at.out = fbuf(&c, (size_t)s[i].t_q * (qrow + p), 5, 6, true);
        tol_close(&c, 1e-5, 1e-4);
        run_case(&c, ctx);
    }
    /* one query row over every key: MHA at CLIP size, GQA, a single full-width head (PruMerge),
     * padded keys and a strided probs block */
    const struct { int t_k, h, hkv, d, ldk_pad, ldp_pad; } r[] = {
        {577, 16, 16, 64, 0, 0}, {300, 8, 2, 32, 3, 0}, {577, 1, 1, 1024, 0, 0}, {37, 4, 2, 8, 3, 5}, {1, 1, 1, 1, 0, 0},
    };
    for (size_t i = 0; i < ARRAY_LEN(r); i++) {
        case_t c;
        CASE(c, K_OP_ATTN_ROW, "attn_row t_k=%d heads=%d/%d d=%d ldk+%d ldp+%d", r[i].t_k, r[i].h, r[i].hkv, r[i].d,
             r[i].ldk_pad, r[i].ldp_pad);
        int kvrow = r[i].hkv * r[i].d, ldk = kvrow + r[i].ldk_pad, ldp = r[i].t_k + r[i].ldp_pad;
        c.a.ar = (k_attn_row_args){.t_k = r[i].t_k, .n_head = r[i].h, .n_head_kv = r[i].hkv, .head_dim = r[i].d,
                                   .ldk = r[i].ldk_pad ? ldk : 0, .scale = 1.0f / sqrtf((float)r[i].d),
                                   .ldp = r[i].ldp_pad ? ldp : 0};
        c.a.ar.q = fbuf(&c, (size_t)r[i].h * r[i].d, -1, 1, false);
        c.a.ar.k = fbuf(&c, (size_t)r[i].t_k * ldk, -1, 1, false);
        c.a.ar.probs = fbuf(&c, (size_t)r[i].h * ldp, 5, 6, true);
        tol_close(&c, 1e-5, 1e-4);
        run_case(&c, ctx);
    }
}

static void cases_act(k_ctx_t *const *ctx) {
    /* one chunk (serial) and many (threaded, ragged tail), in place and not. |a−b| ≤ 1e-7 +
     * 2e-6·|ref| (act.h) */
    const int64_t ns[] = {1, 1000, 577 * 4096 + 3};
    const k_op_t ops[] = {K_OP_GELU_ERF, K_OP_QUICK_GELU};
    for (size_t o = 0; o < 2; o++)
        for (size_t i = 0; i < ARRAY_LEN(ns); i++) {
            case_t c;
            CASE(c, ops[o], "%s n=%lld%s", o ? "quick_gelu" : "gelu_erf", (long long)ns[i], i == 1 ? " in place" : "");
            c.a.act = (k_act_args){.n = ns[i]};
            c.a.act.y = fbuf(&c, (size_t)ns[i], -6, 6, true);
            c.a.act.x = i == 1 ? c.a.act.y : fbuf(&c, (size_t)ns[i], -6, 6, false);
            tol_close(&c, 1e-7, 2e-6);
            run_case(&c, ctx);
        }
    for (size_t i = 0; i < ARRAY_LEN(ns); i++) {
        case_t c;
        CASE(c, K_OP_SILU_MUL, "silu_mul n=%lld", (long long)ns[i]);
        c.a.sl = (k_silu_mul_args){.n = ns[i]};
        c.a.sl.gate = fbuf(&c, (size_t)ns[i], -6, 6, false);
        c.a.sl.up = fbuf(&c, (size_t)ns[i], -2, 2, false);
        c.a.sl.y = fbuf(&c, (size_t)ns[i], 0, 1, true);
        tol_close(&c, 1e-7, 2e-6);
        run_case(&c, ctx);
    }
}

static void cases_rope(k_ctx_t *const *ctx) {
    /* one row, a threaded prefill block at a large position, padded rows, and a head wider than
     * the fast path's tables (the reference fallback). |a−b| ≤ 1e-6 + 1e-5·|ref| (rope.h) */
    const struct { int t, h, d, pos0, pad; double theta; } s[] = {
        {1, 1, 2, 0, 0, 10000}, {512, 32, 128, 30000, 0, 1e6}, {7, 3, 16, 5, 4, 10000}, {2, 1, 1026, 3, 0, 10000},
    };
    for (size_t i = 0; i < ARRAY_LEN(s); i++) {
        case_t c;
        CASE(c, K_OP_ROPE, "rope t=%d heads=%d d=%d pos0=%d pad=%d", s[i].t, s[i].h, s[i].d, s[i].pos0, s[i].pad);
        int row = s[i].h * s[i].d;
        c.a.rp = (k_rope_args){.t = s[i].t, .n_head = s[i].h, .head_dim = s[i].d, .ld = s[i].pad ? row + s[i].pad : 0,
                               .pos0 = s[i].pos0, .theta = s[i].theta};
        c.a.rp.x = fbuf(&c, (size_t)s[i].t * (row + s[i].pad), -1, 1, true);
        tol_close(&c, 1e-6, 1e-5);
        run_case(&c, ctx);
    }
}

static void cases_add(k_ctx_t *const *ctx) {
    /* serial and threaded; exact (add.h) */
    const int64_t ns[] = {1, 577 * 1024 + 5};
    for (size_t i = 0; i < ARRAY_LEN(ns); i++) {
        case_t c;
        CASE(c, K_OP_ADD, "add n=%lld", (long long)ns[i]);
        c.a.ad = (k_add_args){.n = ns[i]};
        c.a.ad.a = fbuf(&c, (size_t)ns[i], -1, 1, false);
        c.a.ad.b = fbuf(&c, (size_t)ns[i], -1, 1, false);
        c.a.ad.y = fbuf(&c, (size_t)ns[i], 0, 1, true);
        tol_exact(&c);
        run_case(&c, ctx);
    }
    /* the heads of a CLS row summed over patch columns (a strided view), and a single row; exact */
    const int s[][3] = {{16, 576, 577}, {1, 3, 0}, {5, 9, 12}};
    for (size_t i = 0; i < ARRAY_LEN(s); i++) {
        case_t c;
        CASE(c, K_OP_SUM_ROWS, "sum_rows m=%d n=%d ldx=%d", s[i][0], s[i][1], s[i][2]);
        int ld = s[i][2] ? s[i][2] : s[i][1];
        c.a.sr = (k_sum_rows_args){.m = s[i][0], .n = s[i][1], .ldx = s[i][2]};
        c.a.sr.x = fbuf(&c, (size_t)s[i][0] * ld, 0, 1, false);
        c.a.sr.y = fbuf(&c, (size_t)s[i][1], -1, 1, true);
        tol_exact(&c);
        run_case(&c, ctx);
    }
}

static void cases_embed(k_ctx_t *const *ctx) {
    /* token lookup from F32/F16/BF16 tables, serial and threaded; exact (embed.h) */
    const tensor_dtype_t dts[] = {TENSOR_DTYPE_F32, TENSOR_DTYPE_F16, TENSOR_DTYPE_BF16};
    for (size_t i = 0; i < ARRAY_LEN(dts); i++)
        for (int n = 1; n <= 300; n += 299) {
            case_t c;
            const int vocab = 1000, d = 256;
            CASE(c, K_OP_EMBED, "embed n=%d d=%d %s", n, d, tensor_dtype_name(dts[i]));
            c.a.em = (k_embed_args){.n = n, .d = d, .table_dtype = dts[i], .vocab = vocab};
            int32_t *ids = bbuf(&c, (size_t)n * sizeof(int32_t), false);
            for (int j = 0; j < n; j++) ids[j] = (j * 37 + 11) % vocab;
            ids[0] = vocab - 1;
            c.a.em.ids = ids;
            c.a.em.table = wbuf(&c, (size_t)vocab * d, dts[i]);
            c.a.em.y = fbuf(&c, (size_t)n * d, 0, 1, true);
            tol_exact(&c);
            run_case(&c, ctx);
        }
    /* patch embedding: a CLIP-shaped image (threaded im2col, convert GEMM) and a ragged one
     * (patches that do not fit are dropped); NMSE ≤ 1e-10 (embed.h) */
    const struct { int h, w, p, d; tensor_dtype_t dt; } s[] = {{336, 336, 14, 64, TENSOR_DTYPE_F16},
                                                               {31, 45, 7, 10, TENSOR_DTYPE_F32}};
    for (size_t i = 0; i < ARRAY_LEN(s); i++) {
        case_t c;
        CASE(c, K_OP_PATCH_EMBED, "patch_embed %dx%d p=%d d=%d %s", s[i].h, s[i].w, s[i].p, s[i].d,
             tensor_dtype_name(s[i].dt));
        c.a.pe = (k_patch_embed_args){.c = 3, .h = s[i].h, .w = s[i].w, .p = s[i].p, .d = s[i].d, .w_dtype = s[i].dt};
        c.a.pe.img = fbuf(&c, (size_t)3 * s[i].h * s[i].w, -1, 1, false);
        c.a.pe.weight = wbuf(&c, (size_t)s[i].d * 3 * s[i].p * s[i].p, s[i].dt);
        c.a.pe.y = fbuf(&c, (size_t)(s[i].h / s[i].p) * (s[i].w / s[i].p) * s[i].d, 0, 1, true);
        tol_nmse(&c, 1e-10);
        run_case(&c, ctx);
    }
}

static void cases_topk(k_ctx_t *const *ctx) {
    /* k = 0, 1 (greedy), a few, n (a full sort); ties and NaNs in the data; exact (topk.h) */
    const int s[][2] = {{10, 0}, {32000, 1}, {577, 288}, {1000, 1000}, {1, 1}};
    for (size_t i = 0; i < ARRAY_LEN(s); i++) {
        case_t c;
        CASE(c, K_OP_TOPK, "topk n=%d k=%d", s[i][0], s[i][1]);
        c.a.tk = (k_topk_args){.n = s[i][0], .k = s[i][1]};
        float *x = fbuf(&c, (size_t)s[i][0], -1, 1, false);
        for (int j = 0; j < s[i][0]; j += 7) x[j] = 0.5f; /* ties */
        if (s[i][0] > 3) x[3] = NAN;
        c.a.tk.x = x;
        c.a.tk.idx = s[i][1] ? bbuf(&c, (size_t)s[i][1] * sizeof(int32_t), true) : NULL;
        tol_exact(&c);
        run_case(&c, ctx);
    }
}

static void cases_gather(k_ctx_t *const *ctx) {
    /* listed rows (repeats, out of order), contiguous rows with strides (the feature map without
     * its CLS rows), many bytes (threaded); mask on a logits row; all exact (gather.h) */
    const struct { int n, d, ldx, ldy, rows; bool idx; } s[] = {
        {5, 3, 0, 0, 9, true}, {5, 576 * 8, 577 * 8, 0, 5, false}, {2000, 1024, 0, 1030, 2500, true}, {1, 1, 0, 0, 1, false},
    };
    for (size_t i = 0; i < ARRAY_LEN(s); i++) {
        case_t c;
        CASE(c, K_OP_GATHER, "gather n=%d d=%d ldx=%d ldy=%d idx=%d", s[i].n, s[i].d, s[i].ldx, s[i].ldy, s[i].idx);
        int ldx = s[i].ldx ? s[i].ldx : s[i].d, ldy = s[i].ldy ? s[i].ldy : s[i].d;
        c.a.ga = (k_gather_args){.n = s[i].n, .d = s[i].d, .ldx = s[i].ldx, .ldy = s[i].ldy};
        c.a.ga.x = fbuf(&c, (size_t)s[i].rows * ldx, -1, 1, false);
        if (s[i].idx) {
            int32_t *idx = bbuf(&c, (size_t)s[i].n * sizeof(int32_t), false);
            for (int j = 0; j < s[i].n; j++) idx[j] = (int32_t)(((long long)j * 7919 + 3) % s[i].rows);
            c.a.ga.idx = idx;
        }
        c.a.ga.y = fbuf(&c, (size_t)s[i].n * ldy, 5, 6, true);
        tol_exact(&c);
        run_case(&c, ctx);
    }
    for (int n = 0; n <= 3; n += 3) { /* no index (min_tokens met, nothing to mask), and three */
        case_t c;
        CASE(c, K_OP_MASK, "mask %d of 32000", n);
        c.a.mk = (k_mask_args){.n = n, .len = 32000, .value = -INFINITY};
        int32_t *idx = bbuf(&c, 3 * sizeof(int32_t), false);
        idx[0] = 2, idx[1] = 31999, idx[2] = 0;
        c.a.mk.idx = idx;
        c.a.mk.y = fbuf(&c, 32000, -1, 1, true);
        tol_exact(&c);
        run_case(&c, ctx);
    }
}

static void cases_cast(k_ctx_t *const *ctx) {
    /* serial and threaded sizes, each dtype; exact, nan included (cast.h). The first values are
     * the edges: ±0, ties to even, the subnormal halves and the underflow to 0, the largest
     * half and the first value rounding past it, inf and nans with payloads. */
    static const uint32_t edge[] = {0x00000000u, 0x80000000u, 0x3f801000u, 0x3f803000u, 0x33000000u, 0x33000001u,
                                    0x32ffffffu, 0x387fe000u, 0x387ff000u, 0x38800000u, 0x477fe000u, 0x477fefffu,
                                    0x477ff000u, 0x7f800000u, 0xff800000u, 0x7fc00001u, 0xff812345u, 0x00000001u,
                                    0x3f808000u, 0x3f818000u, 0x7f7fffffu};
    const int64_t ns[] = {(int64_t)ARRAY_LEN(edge), 577 * 1024 + 5};
    const tensor_dtype_t dts[] = {TENSOR_DTYPE_F16, TENSOR_DTYPE_BF16, TENSOR_DTYPE_F32};
    for (size_t d = 0; d < ARRAY_LEN(dts); d++)
        for (size_t i = 0; i < ARRAY_LEN(ns); i++) {
            case_t c;
            CASE(c, K_OP_CAST, "cast n=%lld to %s", (long long)ns[i], tensor_dtype_name(dts[d]));
            c.a.ca = (k_cast_args){.n = ns[i], .dtype = dts[d]};
            float *x = fbuf(&c, (size_t)ns[i], -70000, 70000, false);
            memcpy(x, edge, sizeof edge); /* ns[] ≥ the edges' count */
            for (int64_t j = (int64_t)ARRAY_LEN(edge); j < ns[i]; j += 7) x[j] *= 1e-9f; /* small and subnormal halves */
            c.a.ca.x = x;
            c.a.ca.y = bbuf(&c, (size_t)ns[i] * tensor_dtype_size(dts[d]), true);
            tol_exact(&c);
            run_case(&c, ctx);
        }
}

// ---- the comparator can fail ---------------------------------------------------------------------

static void test_comparator_fails(void) {
    case_t c;
    CASE(c, K_OP_ADD, "perturbed");
    float *ref = fbuf(&c, 64, -1, 1, true);
    float got[64];
    memcpy(got, ref, sizeof got);
    got[17] += 1e-3f;
    int before = test_failures;
    fprintf(stderr, "the comparator on a perturbed output (two expected failures follow):\n");
    tol_close(&c, 1e-5, 1e-4);
    bool ok = compare(&c, &c.buf[0], got, K_BACKEND_CPU);
    tol_exact(&c);
    ok = compare(&c, &c.buf[0], got, K_BACKEND_CPU) || ok;
    int failed = test_failures - before;
    test_failures = before; /* these two failures were the point */
    test_checks -= 2;
    CHECK_MSG(!ok && failed == 2, "a perturbed output passed the comparison");
    case_free(&c);
}

int main(int argc, char **argv) {
    char err[HIRED_ERR_LEN];
    const char *spec = argc == 3 && strcmp(argv[1], "--device") == 0 ? argv[2] : "cpu";
    k_device_t *dev = k_device_open(spec, err);
    if (!dev && strncmp(spec, "cuda:", 5) == 0) {
        printf("%s: %s: skipped\n", spec, err); /* no CUDA device here (or a build without CUDA) */
        return 77;
    }
    k_ctx_t *ctx[K_BACKEND_COUNT] = {0};
    k_backend_t be = dev ? k_device_backend(dev) : K_BACKEND_CPU;
    CHECK_MSG(dev && (ctx[be] = k_ctx_new(dev, err)), "%s", err);
    if (!ctx[be]) return test_summary();
    printf("backend under test: %s (%s)\n", k_backend_name(be), k_device_name(dev));

    test_comparator_fails();
    cases_matmul(ctx);
    cases_norm(ctx);
    cases_softmax(ctx);
    cases_attention(ctx);
    cases_act(ctx);
    cases_rope(ctx);
    cases_add(ctx);
    cases_embed(ctx);
    cases_topk(ctx);
    cases_gather(ctx);
    cases_cast(ctx);
    /* every op of the registry has cases, and every case ran on the backend under test */
    for (int i = 0; i < k_registry_count(); i++)
        CHECK_MSG(g_cases[i] >= 2, "op %s has %d cases (at least 2, on both sides of its plan)", k_registry_at(i)->name,
                  g_cases[i]);
    int total = 0;
    for (int i = 0; i < K_OP_COUNT; i++) total += g_cases[i];
    CHECK_EQ_INT(g_runs + g_refused, total);
    printf("%d cases of %d ops, %d backend runs, %d refused by the backend (8-bit weights off the CPU)\n", total,
           k_registry_count(), g_runs, g_refused);
    k_ctx_destroy(&ctx[be]);
    k_device_close(&dev);
    return test_summary();
}
