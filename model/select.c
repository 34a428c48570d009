/* select.c — token selection strategies (see select.h for the contract of each).
 * Everything here is per image, on the host and single-threaded; the costly parts (attention,
 * features) were computed by the vision tower. Masks are [n, P] byte arrays; the output lists
 * the masked tokens' positions and feature-map rows in the order the decoder packs. */
#include "select.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "anyres.h"
#include "err.h"
#include "mem.h"
#include "topk.h"

static const char *const strategy_names[] = {"none", "hired", "spatial", "prumerge", "prumerge+"};

int sel_strategy_parse(const char *s, sel_strategy_t *out) {
    for (size_t i = 0; i < ARRAY_LEN(strategy_names); i++)
        if (s && !strcmp(s, strategy_names[i])) {
            *out = (sel_strategy_t)i;
            return HIRED_OK;
        }
    return HIRED_EINVAL;
}

const char *sel_strategy_name(sel_strategy_t s) {
    return (unsigned)s < ARRAY_LEN(strategy_names) ? strategy_names[s] : "?";
}

int sel_split_parse(const char *s, sel_split_t *out) {
    if (s && !strcmp(s, "reference")) *out = SEL_SPLIT_REFERENCE;
    else if (s && !strcmp(s, "paper")) *out = SEL_SPLIT_PAPER;
    else return HIRED_EINVAL;
    return HIRED_OK;
}

// ---- arithmetic ------------------------------------------------------------------------------

void sel_hired_budgets(int n, int P, double r, double alpha, int *total, int *base, int *sub) {
    int N = (int)((double)(n * P) * r); /* Python: int(num_patch * 576 * r), a double product */
    int bf = (int)((double)N * alpha);
    if (bf > P) bf = P;
    int bs = N - bf;
    if (bs > (n - 1) * P) bs = (n - 1) * P;
    *total = N;
    *base = bf;
    *sub = bs;
}

int sel_split_reference(k_ctx_t *host, const float *base_alloc_attn, int P, int n_sub, double alpha, int b_sub, int *b) {
    int m = (int)((double)P * (1.0 - alpha));
    int32_t *idx = mem_alloc((size_t)P * sizeof *idx);
    int chunk = P / n_sub;
    long total = 0;
    long count[SEL_MAX_PARTS] = {0};
    if (!idx) return k_ctx_fail(host, HIRED_ENOMEM, "out of memory");
    k_topk_args a = {.n = P, .k = m, .x = base_alloc_attn, .idx = idx};
    int rc = m > 0 ? k_topk(host, &a) : HIRED_OK;
    if (!rc && m > 0) {
        for (int i = 0; i < m; i++) {
            int c = idx[i] / chunk; /* raster chunks: stripes of the base grid, not spatial blocks */
            if (c < n_sub) count[c]++, total++;
        }
    }
    mem_free(idx);
    for (int i = 0; i < n_sub; i++) {
        int bi;
        if (total == 0) {
            bi = b_sub / n_sub; /* α = 1: the authors' 0/0; we split evenly */
        } else {
            float ratio = (float)count[i] / (float)total; /* torch: int64 / int64 -> float32 */
            bi = (int)(ratio * (float)b_sub);              /* float32 product, .int() truncates */
        }
        b[i] = bi > P ? P : bi;
    }
    return rc;
}

/* Length of [a0, a1) ∩ [b0, b1). */
static double overlap(double a0, double a1, double b0, double b1) {
    double lo = a0 > b0 ? a0 : b0, hi = a1 < b1 ? a1 : b1;
    return hi > lo ? hi - lo : 0;
}

void sel_split_paper(const float *base_alloc_attn, int grid, int rows, int cols, int orig_h, int orig_w,
                     int image_size, int b_sub, int *b) {
    const int n_sub = rows * cols, P = grid * grid;
    int nh, nw;
    anyres_patch_output_size(orig_h, orig_w, rows * image_size, cols * image_size, &nh, &nw);
    const int pad_top = (rows * image_size - nh) / 2, pad_left = (cols * image_size - nw) / 2;
    double s[SEL_MAX_PARTS] = {0}, sum = 0;
    for (int i = 0; i < n_sub; i++) {
        int r = i / cols, c = i % cols;
        /* the sub-image's window in the resized image, as fractions of the whole image */
        double y0 = (double)(r * image_size - pad_top) / nh, y1 = (double)((r + 1) * image_size - pad_top) / nh;
        double x0 = (double)(c * image_size - pad_left) / nw, x1 = (double)((c + 1) * image_size - pad_left) / nw;
        for (int j = 0; j < P; j++) {
            int a = j / grid, bcol = j % grid;
            double fy = overlap(y0, y1, (double)a / grid, (double)(a + 1) / grid) * grid;
            double fx = overlap(x0, x1, (double)bcol / grid, (double)(bcol + 1) / grid) * grid;
            s[i] += base_alloc_attn[j] * fy * fx;
        }
        sum += s[i];
    }
    double quota[SEL_MAX_PARTS];
    int given = 0;
    for (int i = 0; i < n_sub; i++) {
        quota[i] = sum > 0 ? b_sub * s[i] / sum : (double)b_sub / n_sub;
        b[i] = (int)floor(quota[i]);
        if (b[i] > P) b[i] = P;
        given += b[i];
    }
    /* largest remainder, then any excess over P, one token at a time to the sub-image whose
     * quota is furthest above what it has (ties: lower index) and that still has room */
    while (given < b_sub) {
        int best = -1;
        double best_gap = -1e300;
        for (int i = 0; i < n_sub; i++)
            if (b[i] < P && quota[i] - b[i] > best_gap) best_gap = quota[i] - b[i], best = i;
        if (best < 0) break;
        b[best]++;
        given++;
    }
}

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

/* numpy.percentile(..., method="linear") of sorted v[0..n-1] at q in [0, 100]. */
static double percentile_sorted(const float *v, int n, double q) {
    double pos = q / 100.0 * (n - 1);
    int lo = (int)floor(pos);
    int hi = lo + 1 < n ? lo + 1 : lo;
    double t = pos - lo;
    return v[lo] + (v[hi] - (double)v[lo]) * t;
}

double sel_iqr_outlier_ratio(const float *a, int n) {
    if (n <= 0) return 0;
    float *v = mem_alloc((size_t)n * sizeof *v);
    if (!v) return 0;
    memcpy(v, a, (size_t)n * sizeof *v);
    qsort(v, (size_t)n, sizeof *v, cmp_float);
    double q1 = percentile_sorted(v, n, 25), q3 = percentile_sorted(v, n, 75);
    double upper = q3 + 1.5 * (q3 - q1);
    mem_free(v);
    int count = 0;
    for (int i = 0; i < n; i++)
        if ((double)a[i] > upper) count++;
    return (double)count / n;
}

int sel_spatial_indices(int P, double s, int32_t *idx) {
    int ks = (int)((double)P * s);
    if (ks <= 0) return 0;
    int gap = P / ks;
    int n = 0;
    for (int i = 0; i < P - 1; i += gap) idx[n++] = i; /* torch.arange(0, P-1, gap) */
    return n;
}

// ---- strategies ------------------------------------------------------------------------------

int sel_check(const sel_opts_t *o, const sel_input_t *in, char *err) {
    if ((unsigned)o->strategy >= ARRAY_LEN(strategy_names))
        return hired_errf(err, HIRED_EINVAL, "unknown selection strategy %d", (int)o->strategy);
    if (in->n < 1 || in->n > SEL_MAX_PARTS || in->grid < 1 || in->d < 1)
        return hired_errf(err, HIRED_EINVAL, "selection: bad input (%d partitions, grid %d, width %d)", in->n, in->grid,
                          in->d);
    if (in->n > 1 && (in->rows < 1 || in->cols < 1 || in->rows * in->cols != in->n - 1))
        return hired_errf(err, HIRED_EINVAL, "selection: %d partitions do not match a %dx%d grid plus base", in->n,
                          in->rows, in->cols);
    if (o->strategy == SEL_HIRED || o->strategy == SEL_SPATIAL) {
        if (!(o->budget > 0 && o->budget <= 1))
            return hired_errf(err, HIRED_EINVAL, "budget %g is outside (0, 1]", o->budget);
        if (!(o->alpha >= 0 && o->alpha <= 1))
            return hired_errf(err, HIRED_EINVAL, "alpha %g is outside [0, 1]", o->alpha);
        if (!(o->spatial >= 0 && o->spatial <= 1))
            return hired_errf(err, HIRED_EINVAL, "spatial budget %g is outside [0, 1]", o->spatial);
        if (o->split != SEL_SPLIT_REFERENCE && o->split != SEL_SPLIT_PAPER)
            return hired_errf(err, HIRED_EINVAL, "unknown budget split %d", (int)o->split);
    }
    if (o->strategy == SEL_HIRED && (!in->select_attn || (in->n > 1 && !in->alloc_attn)))
        return hired_errf(err, HIRED_EINVAL, "hired needs CLS attention at the allocation and selection layers");
    if (o->strategy == SEL_HIRED && o->split == SEL_SPLIT_PAPER && in->n > 1 &&
        (in->orig_h < 1 || in->orig_w < 1 || in->image_size < 1))
        return hired_errf(err, HIRED_EINVAL, "the paper split needs the original image size");
    if ((o->strategy == SEL_PRUMERGE || o->strategy == SEL_PRUMERGE_PLUS) && (!in->pm_attn || !in->pm_keys || !in->features))
        return hired_errf(err, HIRED_EINVAL, "%s needs the last layer's CLS attention, keys and the features",
                          sel_strategy_name(o->strategy));
    return HIRED_OK;
}

/* Marks the top-k of x[0..P-1] in mask. */
static int mark_topk(k_ctx_t *host, const float *x, int P, int k, uint8_t *mask, int32_t *scratch) {
    if (k <= 0) return HIRED_OK;
    if (k > P) k = P;
    k_topk_args a = {.n = P, .k = k, .x = x, .idx = scratch};
    int rc = k_topk(host, &a);
    for (int i = 0; !rc && i < k; i++) mask[scratch[i]] = 1;
    return rc;
}

/* Room for k tokens; with_features: the strategy computes their vectors (PruMerge). */
static int out_alloc(sel_out_t *out, int k, int d, int n, bool with_features) {
    out->features = with_features ? mem_alloc_aligned((size_t)(k ? k : 1) * d * sizeof(float)) : NULL;
    out->pos = mem_alloc((size_t)(k ? k : 1) * sizeof *out->pos);
    out->src = mem_alloc((size_t)(k ? k : 1) * sizeof *out->src);
    out->k = 0;
    out->d = d;
    out->n = n;
    return (out->features || !with_features) && out->pos && out->src ? HIRED_OK : HIRED_ENOMEM;
}

/* Appends a token: src its feature-map row (-1 for a computed vector), feat its vector (PruMerge). */
static void out_push(sel_out_t *out, int32_t src, const float *feat, int part, int row, int col) {
    if (feat) memcpy(out->features + (size_t)out->k * out->d, feat, (size_t)out->d * sizeof(float));
    out->src[out->k] = src;
    out->pos[out->k] = (sel_pos_t){(int16_t)part, (int16_t)row, (int16_t)col};
    out->per_part[part]++;
    out->k++;
}

/* Lists masked tokens: base raster, then the sub-images in mosaic raster order. */
static int gather_masks(const sel_input_t *in, const uint8_t *mask, sel_out_t *out) {
    const int P = in->grid * in->grid, g = in->grid;
    int k = 0;
    for (int i = 0; i < in->n * P; i++) k += mask[i];
    if (out_alloc(out, k, in->d, in->n, false)) return HIRED_ENOMEM;
    for (int j = 0; j < P; j++)
        if (mask[j]) out_push(out, j, NULL, 0, j / g, j % g);
    if (in->n == 1) return HIRED_OK;
    for (int gy = 0; gy < in->rows * g; gy++)
        for (int gx = 0; gx < in->cols * g; gx++) {
            int part = 1 + (gy / g) * in->cols + gx / g;
            int j = (gy % g) * g + gx % g;
            if (mask[(size_t)part * P + j]) out_push(out, part * P + j, NULL, part, j / g, j % g);
        }
    return HIRED_OK;
}

static void add_spatial(int n, int P, double s, uint8_t *mask, int32_t *scratch) {
    int cnt = sel_spatial_indices(P, s, scratch);
    for (int p = 0; p < n; p++)
        for (int i = 0; i < cnt; i++) mask[(size_t)p * P + scratch[i]] = 1;
}

static int run_masked(k_ctx_t *host, const sel_opts_t *o, const sel_input_t *in, sel_out_t *out) {
    const int P = in->grid * in->grid, n = in->n;
    uint8_t *mask = mem_calloc((size_t)n * P, 1);
    int32_t *scratch = mem_alloc((size_t)P * sizeof *scratch);
    int rc = HIRED_ENOMEM;
    if (!mask || !scratch) goto done;
    rc = HIRED_OK;
    if (o->strategy == SEL_NONE || (o->strategy == SEL_HIRED && o->budget >= 1.0)) {
        /* none, and hired at r >= 1, which the authors' code runs as no selection at all */
        memset(mask, 1, (size_t)n * P);
        out->budget_total = n * P;
        if (o->strategy == SEL_HIRED) out->budget_base = P, out->budget_sub = (n - 1) * P;
    } else if (o->strategy == SEL_SPATIAL) {
        add_spatial(n, P, o->budget, mask, scratch);
    } else if (n == 1) { /* LLaVA-1.5: selection layer only */
        int k = (int)((double)P * o->budget);
        if (k > P) k = P;
        rc = mark_topk(host, in->select_attn, P, k, mask, scratch);
        out->budget_total = out->budget_base = k;
    } else {
        int N, bf, bs, b[SEL_MAX_PARTS] = {0};
        sel_hired_budgets(n, P, o->budget, o->alpha, &N, &bf, &bs);
        out->budget_total = N;
        out->budget_base = bf;
        out->budget_sub = bs;
        rc = mark_topk(host, in->select_attn, P, bf, mask, scratch);
        if (!rc && bs > 0) {
            if (o->split == SEL_SPLIT_REFERENCE)
                rc = sel_split_reference(host, in->alloc_attn, P, n - 1, o->alpha, bs, b);
            else
                sel_split_paper(in->alloc_attn, in->grid, in->rows, in->cols, in->orig_h, in->orig_w, in->image_size,
                                bs, b);
            for (int i = 0; !rc && i < n - 1; i++)
                rc = mark_topk(host, in->select_attn + (size_t)(i + 1) * P, P, b[i], mask + (size_t)(i + 1) * P, scratch);
        }
    }
    if (o->strategy == SEL_HIRED && o->spatial > 0) add_spatial(n, P, o->spatial, mask, scratch);
    if (!rc) rc = gather_masks(in, mask, out);
    if (o->strategy == SEL_SPATIAL) out->budget_total = out->k;
done:
    mem_free(mask);
    mem_free(scratch);
    return rc;
}

/* PruMerge(+) on one partition p, appending to out. */
static int prumerge_partition(k_ctx_t *host, const sel_input_t *in, int p, bool plus, sel_out_t *out) {
    const int P = in->grid * in->grid, D = in->d;
    const float *a = in->pm_attn + (size_t)p * P;
    const float *X = in->features + (size_t)p * P * D;
    const float *K = in->pm_keys + (size_t)p * P * D;
    double ratio = sel_iqr_outlier_ratio(a, P);
    if (ratio <= 0) ratio = 1.0 / P; /* no outlier: keep the single most-attended token */
    int n_top = (int)(P * ratio);
    int32_t *kept = mem_alloc((size_t)P * sizeof *kept);
    int32_t *rest = mem_alloc((size_t)P * sizeof *rest);
    uint8_t *in_kept = mem_calloc((size_t)P, 1);
    float *kn = mem_alloc_aligned((size_t)P * D * sizeof(float)); /* L2-normalised keys */
    float *sim = mem_alloc((size_t)P * sizeof *sim);
    int32_t *near = mem_alloc(32 * sizeof *near);
    float *acc = mem_alloc((size_t)D * sizeof *acc);
    int rc = HIRED_ENOMEM;
    if (!kept || !rest || !in_kept || !kn || !sim || !near || !acc) goto done;
    k_topk_args t = {.n = P, .k = n_top, .x = a, .idx = kept};
    if ((rc = k_topk(host, &t))) goto done;
    rc = HIRED_ENOMEM;
    int n_kept = n_top;
    for (int i = 0; i < n_top; i++) in_kept[kept[i]] = 1;
    if (plus) { /* strided supplement: torch.arange(0, 575, int(int(1/ratio)/3)) */
        int step = (int)(1.0 / ratio);
        int s = step / 3;
        if (s < 1) s = 1;
        for (int i = 0; i < P - 1; i += s)
            if (!in_kept[i]) in_kept[i] = 1, kept[n_kept++] = i;
    }
    int n_rest = 0;
    for (int j = 0; j < P; j++)
        if (!in_kept[j]) rest[n_rest++] = j;
    for (int j = 0; j < P; j++) {
        double ss = 0;
        for (int c = 0; c < D; c++) ss += (double)K[(size_t)j * D + c] * K[(size_t)j * D + c];
        double nrm = sqrt(ss);
        float inv = (float)(1.0 / (nrm > 1e-12 ? nrm : 1e-12)); /* F.normalize eps */
        for (int c = 0; c < D; c++) kn[(size_t)j * D + c] = K[(size_t)j * D + c] * inv;
    }
    /* candidates for token i: the other kept tokens (kept order) then the rest (ascending) */
    for (int i = 0; i < n_kept; i++) {
        int qi = kept[i], n_cand = 0;
        int32_t *cand = mem_alloc((size_t)P * sizeof *cand);
        if (!cand) goto done;
        for (int j = 0; j < n_kept; j++)
            if (j != i) cand[n_cand++] = kept[j];
        for (int j = 0; j < n_rest; j++) cand[n_cand++] = rest[j];
        for (int j = 0; j < n_cand; j++) {
            double dot = 0;
            for (int c = 0; c < D; c++) dot += (double)kn[(size_t)qi * D + c] * kn[(size_t)cand[j] * D + c];
            sim[j] = (float)dot;
        }
        int kk = n_cand < 32 ? n_cand : 32;
        k_topk_args tk = {.n = n_cand, .k = kk, .x = sim, .idx = near};
        if (n_cand > 0 && (rc = k_topk(host, &tk))) {
            mem_free(cand);
            goto done;
        }
        for (int c = 0; c < D; c++) acc[c] = X[(size_t)qi * D + c];
        for (int j = 0; j < kk; j++) {
            int src = cand[near[j]];
            for (int c = 0; c < D; c++) acc[c] += a[src] * X[(size_t)src * D + c];
        }
        mem_free(cand);
        out_push(out, -1, acc, p, qi / in->grid, qi % in->grid);
    }
    for (int c = 0; c < D; c++) acc[c] = 0;
    for (int j = 0; j < n_rest; j++)
        for (int c = 0; c < D; c++) acc[c] += a[rest[j]] * X[(size_t)rest[j] * D + c];
    out_push(out, -1, acc, p, -1, -1);
    rc = HIRED_OK;
done:
    mem_free(kept);
    mem_free(rest);
    mem_free(in_kept);
    mem_free_aligned(kn);
    mem_free(sim);
    mem_free(near);
    mem_free(acc);
    return rc;
}

int sel_run(k_ctx_t *host, const sel_opts_t *o, const sel_input_t *in, sel_out_t *out, char *err) {
    memset(out, 0, sizeof *out);
    int rc = sel_check(o, in, err);
    if (rc) return rc;
    if (o->strategy == SEL_PRUMERGE || o->strategy == SEL_PRUMERGE_PLUS) {
        const int P = in->grid * in->grid;
        /* at most every token plus one summary token per partition */
        if (out_alloc(out, in->n * (P + 1), in->d, in->n, true)) rc = HIRED_ENOMEM;
        for (int p = 0; !rc && p < in->n; p++)
            rc = prumerge_partition(host, in, p, o->strategy == SEL_PRUMERGE_PLUS, out);
        out->budget_total = out->k;
    } else {
        rc = run_masked(host, o, in, out);
    }
    if (rc) {
        sel_out_free(out);
        return rc == HIRED_ENOMEM ? hired_errf(err, rc, "selection (%s): out of memory", sel_strategy_name(o->strategy))
                                  : k_ctx_report(host, rc, err, "selection");
    }
    return HIRED_OK;
}

void sel_out_free(sel_out_t *out) {
    if (!out) return;
    mem_free_aligned(out->features);
    mem_free(out->src);
    mem_free(out->pos);
    memset(out, 0, sizeof *out);
}
