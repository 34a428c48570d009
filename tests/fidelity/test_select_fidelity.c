/* test_select_fidelity — token selection end to end (decode, preprocess, vision tower, select)
 * against the independent Python reference (tools/reference/select_ref.py fed by transformers)
 * on every fixture image of both tiny models: for every strategy, split variant and budget in
 * tests/fixtures/selection/<model>/<stem>.json, the kept [partition, row, col] list must be
 * identical, in order, and K, the per-partition counts and the budget arithmetic equal.
 * PruMerge's merged features are compared through the reference's checksums (sum, sum of
 * squares, the summary token's first values), widened by the recorded effect of near-tied
 * 32nd/33rd neighbours (merge_tie_*), which reorder merges without changing the kept set.
 * The inputs themselves are checked first (per-partition sums of the attention rows). */
#include "test.h"
#include "fixture_util.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <stdbool.h>
#include <string.h>

#include "backend.h"
#include "err.h"
#include "hfconfig.h"
#include "image.h"
#include "mem.h"
#include "preprocess.h"
#include "select.h"
#include "st.h"
#include "vision.h"


static double jnum(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

static const char *jstr(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double sum_row(const float *x, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += x[i];
    return s;
}

static int cases_checked;
static k_ctx_t *g_ctx; /* the CPU context of the tower and of the host-side selection */

/* One case: run the strategy on our inputs and compare with the reference's record. */
static void check_case(const cJSON *c, const sel_input_t *in, const char *tag) {
    sel_opts_t o = {.budget = jnum(c, "budget"), .alpha = jnum(c, "alpha"), .spatial = jnum(c, "spatial")};
    CHECK(sel_strategy_parse(jstr(c, "strategy"), &o.strategy) == 0);
    if (jstr(c, "split")) CHECK(sel_split_parse(jstr(c, "split"), &o.split) == 0);
    if (o.strategy == SEL_SPATIAL) o.spatial = 0;
    char err[HIRED_ERR_LEN], name[2048];
    snprintf(name, sizeof name, "%s %s%s%s r=%g s=%g", tag, jstr(c, "strategy"), jstr(c, "split") ? "/" : "",
             jstr(c, "split") ? jstr(c, "split") : "", o.budget, o.spatial);
    sel_out_t out;
    int rc = sel_run(g_ctx, &o, in, &out, err);
    CHECK_MSG(rc == 0, "%s: %s", name, err);
    if (rc) return;
    cases_checked++;
    CHECK_MSG(out.k == (int)jnum(c, "k"), "%s: k %d, reference %d", name, out.k, (int)jnum(c, "k"));
    const cJSON *pp = cJSON_GetObjectItemCaseSensitive(c, "per_part");
    for (int p = 0; p < in->n; p++) {
        int want = cJSON_GetArrayItem(pp, p)->valueint;
        CHECK_MSG(out.per_part[p] == want, "%s: partition %d kept %d, reference %d", name, p, out.per_part[p], want);
    }
    if (o.strategy == SEL_HIRED && in->n > 1 && o.budget < 1) {
        CHECK_EQ_INT(out.budget_total, (int)jnum(c, "budget_total"));
        CHECK_EQ_INT(out.budget_base, (int)jnum(c, "budget_base"));
        CHECK_EQ_INT(out.budget_sub, (int)jnum(c, "budget_sub"));
    }
    const cJSON *kept = cJSON_GetObjectItemCaseSensitive(c, "kept");
    int n_ref = cJSON_GetArraySize(kept), first_diff = -1, swaps = 0;
    CHECK_MSG(n_ref == out.k, "%s: reference keeps %d tokens, we keep %d", name, n_ref, out.k);
    for (int i = 0; i < n_ref && i < out.k; i++) {
        const cJSON *t = cJSON_GetArrayItem(kept, i);
        sel_pos_t r = {(int16_t)cJSON_GetArrayItem(t, 0)->valueint, (int16_t)cJSON_GetArrayItem(t, 1)->valueint,
                       (int16_t)cJSON_GetArrayItem(t, 2)->valueint};
        if (out.pos[i].part == r.part && out.pos[i].row == r.row && out.pos[i].col == r.col) continue;
        /* PruMerge orders its kept tokens by score: two tokens whose scores are equal to within
         * float32 noise may come out in either order. Anything else is a real difference. */
        bool near_tie = false;
        if ((o.strategy == SEL_PRUMERGE || o.strategy == SEL_PRUMERGE_PLUS) && r.row >= 0 && out.pos[i].row >= 0 &&
            r.part == out.pos[i].part) {
            const int P = in->grid * in->grid;
            double a = in->pm_attn[(size_t)r.part * P + r.row * in->grid + r.col];
            double b = in->pm_attn[(size_t)r.part * P + out.pos[i].row * in->grid + out.pos[i].col];
            near_tie = fabs(a - b) <= 1e-5 * fabs(a);
        }
        if (near_tie) {
            swaps++;
        } else if (first_diff < 0) {
            first_diff = i;
        }
    }
    CHECK_MSG(first_diff < 0, "%s: kept lists differ (first at %d)", name, first_diff);
    if (swaps) printf("%s: %d positions differ only by the order of near-equal scores\n", name, swaps);
    /* whatever the order, the kept sets must be equal */
    if (first_diff < 0 && swaps) {
        int missing = 0;
        for (int i = 0; i < n_ref; i++) {
            const cJSON *t = cJSON_GetArrayItem(kept, i);
            bool found = false;
            for (int j = 0; j < out.k && !found; j++)
                found = out.pos[j].part == cJSON_GetArrayItem(t, 0)->valueint &&
                        out.pos[j].row == cJSON_GetArrayItem(t, 1)->valueint &&
                        out.pos[j].col == cJSON_GetArrayItem(t, 2)->valueint;
            missing += !found;
        }
        CHECK_MSG(missing == 0, "%s: %d reference tokens missing", name, missing);
    }
    if (o.strategy == SEL_PRUMERGE || o.strategy == SEL_PRUMERGE_PLUS) {
        double s = 0, ss = 0;
        for (size_t i = 0; i < (size_t)out.k * out.d; i++) s += out.features[i], ss += (double)out.features[i] * out.features[i];
        double rs = jnum(c, "feat_sum"), rss = jnum(c, "feat_sumsq");
        double ts = 1e-4 * fabs(rs) + 1e-3 + jnum(c, "merge_tie_dsum"), tss = 1e-4 * rss + jnum(c, "merge_tie_dsumsq");
        CHECK_MSG(fabs(s - rs) <= ts, "%s: merged feature sum %.6f, reference %.6f (tol %.3g)", name, s, rs, ts);
        CHECK_MSG(fabs(ss - rss) <= tss, "%s: merged feature sum of squares %.4f, reference %.4f", name, ss, rss);
        /* the summary token (no merge ambiguity): first 4 values per partition */
        const cJSON *pm = cJSON_GetObjectItemCaseSensitive(c, "pm");
        int at = 0;
        for (int p = 0; p < in->n; p++) {
            at += out.per_part[p];
            const cJSON *s4 = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(pm, p), "summary4");
            for (int j = 0; j < 4 && j < out.d; j++) {
                double want = cJSON_GetArrayItem(s4, j)->valuedouble, got = out.features[(size_t)(at - 1) * out.d + j];
                CHECK_MSG(fabs(got - want) <= 1e-4 * (1 + fabs(want)), "%s: summary token %d[%d] %.6f vs %.6f", name, p,
                          j, got, want);
            }
        }
    }
    sel_out_free(&out);
}

static int check_model(const char *model_name) {
    char dir[1024], err[HIRED_ERR_LEN];
    snprintf(dir, sizeof dir, "%s/%s", test_fixture("models"), model_name);
    hf_config_t cfg;
    hf_preproc_t pp;
    st_model_t *st = NULL;
    vision_t *v = NULL;
    CHECK_MSG(hf_config_load(dir, &cfg, err) == 0 && hf_preproc_load(dir, &pp, err) == 0 && (st = st_model_open(dir, err)) &&
                  (v = vision_load(st, &cfg, k_ctx_device(g_ctx), 23, err)),
              "%s", err);
    char seldir[1024];
    snprintf(seldir, sizeof seldir, "%s/%s", test_fixture("selection"), model_name);
    DIR *d = v ? opendir(seldir) : NULL;
    CHECK_MSG(d != NULL, "cannot open %s", seldir);
    int images = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 6 || strcmp(e->d_name + len - 5, ".json")) continue;
        char stem[512];
        snprintf(stem, sizeof stem, "%.*s", (int)(len - 5), e->d_name);
        if (!fixture_wanted(stem)) continue;
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", seldir, e->d_name);
        char *text = fixture_read_text(path);
        cJSON *ref = text ? cJSON_Parse(text) : NULL;
        mem_free(text);
        CHECK_MSG(ref != NULL, "cannot parse %s", path);
        if (!ref) continue;
        snprintf(path, sizeof path, "%s/%s", test_fixture("images"), jstr(ref, "image"));
        image_t img = {0};
        prep_out_t prep = {0};
        vision_out_t vo = {0};
        int rc = image_load_file(path, 0, &img, err);
        if (!rc) rc = prep_for_model(&img, &cfg, &pp, &prep, err);
        vision_opts_t vopt = {.n_attn_layers = 2, .attn_layers = {0, 22}, .want_pm = true, .pm_layer = 23};
        if (!rc) rc = vision_encode(v, g_ctx, prep.pixels, prep.n, &vopt, &vo, err); /* CPU: host-readable */
        CHECK_MSG(rc == 0, "%s: %s", path, err);
        if (!rc) {
            const int P = vo.n_patches;
            CHECK_EQ_INT(prep.n, (int)jnum(ref, "n"));
            const cJSON *inputs = cJSON_GetObjectItemCaseSensitive(ref, "inputs");
            const char *names[3] = {"alloc_sum", "select_sum", "pm_sum"};
            const float *rows[3] = {vo.cls_attn, vo.cls_attn + (size_t)prep.n * P, vo.pm_attn};
            for (int k = 0; k < 3; k++)
                for (int p = 0; p < prep.n; p++) {
                    double want = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(inputs, names[k]), p)->valuedouble;
                    double got = sum_row(rows[k] + (size_t)p * P, (size_t)P);
                    CHECK_MSG(fabs(got - want) <= 1e-5 * fabs(want), "%s %s[%d] %.9f vs %.9f", e->d_name, names[k], p, got,
                              want);
                }
            sel_input_t in = {.n = prep.n, .rows = prep.rows, .cols = prep.cols, .orig_h = prep.orig_h,
                              .orig_w = prep.orig_w, .image_size = prep.size, .grid = 24, .d = vo.d,
                              .features = vo.features, .alloc_attn = vo.cls_attn,
                              .select_attn = vo.cls_attn + (size_t)prep.n * P, .pm_attn = vo.pm_attn,
                              .pm_keys = vo.pm_keys};
            char tag[1024];
            snprintf(tag, sizeof tag, "%s/%s", model_name, e->d_name);
            const cJSON *cs;
            cJSON_ArrayForEach(cs, cJSON_GetObjectItemCaseSensitive(ref, "cases")) check_case(cs, &in, tag);
            images++;
        }
        k_ctx_reset(g_ctx); /* the tower's outputs go with the arena */
        prep_free(&prep);
        image_free(&img);
        cJSON_Delete(ref);
    }
    if (d) closedir(d);
    vision_destroy(&v);
    st_model_close(&st);
    return images;
}

int main(void) {
    char err[HIRED_ERR_LEN];
    k_device_t *dev = k_device_open("cpu", err);
    CHECK_MSG(dev && (g_ctx = k_ctx_new(dev, err)), "%s", err);
    if (!g_ctx) return test_summary();
    int a = check_model("llava-next-tiny");
    int b = check_model("llava15-tiny");
    printf("compared %d cases on %d LLaVA-NeXT and %d LLaVA-1.5 images\n", cases_checked, a, b);
    const int n = fixture_expected_images();
    CHECK(a == n && b == n);
    CHECK_EQ_INT(cases_checked, n * 16 + n * 12);
    k_ctx_destroy(&g_ctx);
    k_device_close(&dev);
    return test_summary();
}
