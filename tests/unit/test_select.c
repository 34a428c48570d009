/* test_select — token selection arithmetic and strategies on hand-made inputs: the budget
 * examples of docs/selection.md §1.4, the raster-chunk quirk of §1.6 against the paper's spatial split,
 * the float32 truncation, PruMerge's IQR rule and its degenerate cases, output order and each kept
 * token's feature-map row. */
#include "test.h"

#include <string.h>

#include "backend.h"
#include "err.h"
#include "mem.h"
#include "select.h"

#define P 576
#define G 24

/* The host context selection ranks with (one for the whole program, kept until exit). */
static k_ctx_t *host(void) {
    static k_device_t *dev;
    static k_ctx_t *ctx;
    char err[HIRED_ERR_LEN];
    if (!ctx && (!(dev = k_device_open("cpu", err)) || !(ctx = k_ctx_new(dev, err)))) {
        fprintf(stderr, "%s\n", err);
        exit(1);
    }
    return ctx;
}

static void test_budgets(void) {
    static const struct {
        int n;
        double r;
        int total, base, sub;
    } ex[] = {
        {5, 0.2, 576, 288, 288}, {5, 0.1, 288, 144, 144}, {5, 0.4, 1152, 576, 576},
        {4, 0.2, 460, 230, 230}, {3, 0.2, 345, 172, 173}, {3, 0.4, 691, 345, 346},
        {5, 1.0, 2880, 576, 2304}, /* α·N > 576: the excess goes to the sub-images */
    };
    for (size_t i = 0; i < ARRAY_LEN(ex); i++) {
        int N, bf, bs;
        sel_hired_budgets(ex[i].n, P, ex[i].r, 0.5, &N, &bf, &bs);
        CHECK_MSG(N == ex[i].total && bf == ex[i].base && bs == ex[i].sub, "P=%d r=%g: %d/%d/%d", ex[i].n, ex[i].r, N,
                  bf, bs);
    }
    int N, bf, bs;
    sel_hired_budgets(5, P, 0.2, 0.0, &N, &bf, &bs); /* α = 0: empty base selection */
    CHECK(bf == 0 && bs == 576);
}

/* Base attention that is high exactly on the left half of the grid (columns 0..11). */
static void left_half_attention(float *a) {
    for (int j = 0; j < P; j++) a[j] = (j % G) < 12 ? 1.0f + 0.001f * (float)(j % 7) : 0.001f * (float)(j % 5);
}

static void test_raster_chunk_quirk(void) {
    float a[P];
    left_half_attention(a);
    int b[4];
    /* reference: top-288 = the left half; stripes of 6 rows each hold 72 of them */
    sel_split_reference(host(), a, P, 4, 0.5, 288, b);
    for (int i = 0; i < 4; i++) CHECK_EQ_INT(b[i], 72);
    /* paper: the mass lies over the left sub-images (TL, BL) of a square image's 2x2 grid */
    sel_split_paper(a, G, 2, 2, 672, 672, 336, 288, b);
    CHECK(b[0] > 130 && b[2] > 130 && b[1] < 10 && b[3] < 10);
    CHECK_EQ_INT(b[0] + b[1] + b[2] + b[3], 288); /* largest remainder: the budget is spent exactly */
    /* tall image, 2x1 grid: stripes do coincide with the sub-images (rows 0-11 and 12-23) */
    for (int j = 0; j < P; j++) a[j] = j < P / 2 ? 1.0f + 0.0001f * j : 0.0f;
    sel_split_reference(host(), a, P, 2, 0.5, 300, b);
    CHECK(b[0] == 300 && b[1] == 0);
}

static void test_float32_truncation(void) {
    /* docs/selection.md §1.6: at r=0.2, α=0.5 (B_sub = 288 = m) b_i = count_i exactly for every count */
    int bad = 0;
    for (int c = 0; c <= 288; c++)
        if ((int)((float)c / 288.0f * 288.0f) != c) bad++;
    CHECK_EQ_INT(bad, 0);
    /* r=0.1: B_sub = 144, b_i = floor(count_i / 2): odd counts lose a token each */
    float a[P];
    for (int j = 0; j < P; j++) a[j] = 0;
    int counts[4] = {73, 71, 73, 71}, b[4];
    for (int s = 0; s < 4; s++)
        for (int t = 0; t < counts[s]; t++) a[s * 144 + t] = 1.0f + 0.0001f * (float)t;
    sel_split_reference(host(), a, P, 4, 0.5, 144, b);
    CHECK(b[0] == 36 && b[1] == 35 && b[2] == 36 && b[3] == 35);
    /* α = 1: no layer-0 signal (m = 0): defined as an even split */
    sel_split_reference(host(), a, P, 4, 1.0, 100, b);
    CHECK(b[0] == 25 && b[3] == 25);
}

static void test_iqr(void) {
    float v[9] = {1, 2, 3, 4, 5, 6, 7, 8, 100}; /* Q1 = 3, Q3 = 7, fence 13 */
    CHECK_NEAR(sel_iqr_outlier_ratio(v, 9), 1.0 / 9, 1e-12);
    float w[8] = {1, 1, 1, 1, 1, 1, 1, 1}; /* no spread, no outlier */
    CHECK(sel_iqr_outlier_ratio(w, 8) == 0);
    float z[4] = {0, 0, 0, 13}; /* Q1 = 0, Q3 = 3.25 (linear), fence 8.125 < 13 */
    CHECK_NEAR(sel_iqr_outlier_ratio(z, 4), 0.25, 1e-12);
    float e[4] = {0, 1, 2, 3}; /* strict: equal to the fence is not an outlier */
    CHECK(sel_iqr_outlier_ratio(e, 4) == 0);
}

static void test_spatial(void) {
    int32_t idx[P];
    int n = sel_spatial_indices(P, 0.4, idx); /* k_s = 230, gap = 2 */
    CHECK_EQ_INT(n, 288);
    CHECK(idx[0] == 0 && idx[1] == 2 && idx[n - 1] == 574);
    n = sel_spatial_indices(P, 0.1, idx); /* k_s = 57, gap = 10: 0..570 */
    CHECK_EQ_INT(n, 58);
    CHECK_EQ_INT(sel_spatial_indices(P, 0.001, idx), 0);
}

/* A 2x2 NeXT image with deterministic attention and features = the token's own index. */
typedef struct {
    float feat[5 * P * 2];
    float alloc[5 * P], sel[5 * P], pm[5 * P], keys[5 * P * 2];
    sel_input_t in;
} fake_t;

static void fake_init(fake_t *f) {
    for (int p = 0; p < 5; p++)
        for (int j = 0; j < P; j++) {
            int i = p * P + j;
            f->feat[2 * i] = (float)p;
            f->feat[2 * i + 1] = (float)j;
            f->alloc[i] = (float)((j * 37 + p * 11) % 101) / 101.0f;
            f->sel[i] = (float)((j * 53 + p * 7) % 577) / 577.0f;
            f->pm[i] = 1.0f / P;
            f->keys[2 * i] = (float)(j % 3) + 1;
            f->keys[2 * i + 1] = (float)(j % 5);
        }
    f->in = (sel_input_t){.n = 5, .rows = 2, .cols = 2, .orig_h = 600, .orig_w = 600, .image_size = 336, .grid = G,
                          .d = 2, .features = f->feat, .alloc_attn = f->alloc, .select_attn = f->sel,
                          .pm_attn = f->pm, .pm_keys = f->keys};
}

static void test_hired_run(void) {
    static fake_t f;
    fake_init(&f);
    char err[HIRED_ERR_LEN];
    sel_opts_t o = {.strategy = SEL_HIRED, .budget = 0.2, .alpha = 0.5, .split = SEL_SPLIT_REFERENCE};
    sel_out_t out;
    CHECK_EQ_INT(sel_run(host(), &o, &f.in, &out, err), 0);
    CHECK_EQ_INT(out.per_part[0], 288);
    CHECK(out.k <= 576 && out.k >= 576 - 4);
    CHECK_EQ_INT(out.budget_base, 288);
    /* base tokens first in raster order, then the mosaic in raster order */
    int ok = 1;
    for (int i = 1; i < out.k; i++) {
        const sel_pos_t *a = &out.pos[i - 1], *b = &out.pos[i];
        if (a->part == 0 && b->part == 0) ok &= a->row * G + a->col < b->row * G + b->col;
        if (a->part != 0 && b->part != 0) {
            int ga = ((a->part - 1) / 2) * G + a->row, gb = ((b->part - 1) / 2) * G + b->row;
            int ca = ((a->part - 1) % 2) * G + a->col, cb = ((b->part - 1) % 2) * G + b->col;
            ok &= ga < gb || (ga == gb && ca < cb);
        }
        ok &= !(a->part != 0 && b->part == 0);
        /* the token's feature-map row is its position's */
        ok &= out.src[i] == b->part * P + b->row * G + b->col;
    }
    CHECK(ok);
    CHECK(out.features == NULL); /* the rows are gathered by the pipeline, on the device */
    sel_out_free(&out);

    o.split = SEL_SPLIT_PAPER;
    CHECK_EQ_INT(sel_run(host(), &o, &f.in, &out, err), 0);
    CHECK_EQ_INT(out.k, 576); /* paper split spends the budget exactly */
    sel_out_free(&out);

    o = (sel_opts_t){.strategy = SEL_NONE};
    CHECK_EQ_INT(sel_run(host(), &o, &f.in, &out, err), 0);
    CHECK_EQ_INT(out.k, 5 * P);
    sel_out_free(&out);

    o = (sel_opts_t){.strategy = SEL_HIRED, .budget = 1.5, .alpha = 0.5};
    CHECK_EQ_INT(sel_run(host(), &o, &f.in, &out, err), HIRED_EINVAL);
    CHECK(strstr(err, "budget") != NULL);
}

static void test_prumerge_degenerate(void) {
    static fake_t f;
    fake_init(&f);
    char err[HIRED_ERR_LEN];
    sel_out_t out;
    /* uniform attention: no outlier. Defined: keep the single top token + the summary token */
    sel_opts_t o = {.strategy = SEL_PRUMERGE};
    CHECK_EQ_INT(sel_run(host(), &o, &f.in, &out, err), 0);
    CHECK_EQ_INT(out.k, 5 * 2);
    CHECK(out.pos[1].row == -1 && out.pos[1].col == -1);
    CHECK(out.src[0] == -1 && out.src[1] == -1); /* merged and summary vectors, not rows of the map */
    /* summary token = Σ a_j x_j over the 575 others: first feature column is the partition index */
    CHECK_NEAR(out.features[2 * 3], 1.0 * 575.0 / 576.0, 1e-5);
    sel_out_free(&out);
    /* PruMerge+: ratio 1/576 -> step 576, stride 192: supplement 0, 192, 384 (minus the kept one) */
    o.strategy = SEL_PRUMERGE_PLUS;
    CHECK_EQ_INT(sel_run(host(), &o, &f.in, &out, err), 0);
    CHECK_EQ_INT(out.per_part[0], 4); /* top-1 (index 0), supplement 192 and 384, summary */
    sel_out_free(&out);
    /* 120 outliers (ratio 0.208): step int(1/ratio) = 4, stride int(4/3) = 1, so the supplement is
     * every index 0..574 not already kept (index 575 is never a candidate) */
    for (int j = 0; j < P; j++) f.pm[j] = j < 120 ? 1000.0f + (float)j : (float)(j % 3);
    CHECK_NEAR(sel_iqr_outlier_ratio(f.pm, P), 120.0 / P, 1e-12);
    CHECK_EQ_INT(sel_run(host(), &o, &f.in, &out, err), 0);
    CHECK_EQ_INT(out.per_part[0], 575 + 1);
    CHECK(out.pos[0].row * G + out.pos[0].col == 119); /* kept by descending score first */
    CHECK(out.pos[120].row * G + out.pos[120].col == 120); /* then the supplement ascending */
    sel_out_free(&out);
}

int main(void) {
    test_budgets();
    test_raster_chunk_quirk();
    test_float32_truncation();
    test_iqr();
    test_spatial();
    test_hired_run();
    test_prumerge_degenerate();
    return test_summary();
}
