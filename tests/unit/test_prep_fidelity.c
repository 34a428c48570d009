/* test_prep_fidelity.c — our decode + preprocessing against transformers' slow processors.
 *
 * For every tests/fixtures/reference/<model>/<stem>.json (written by
 * tools/reference/make_fixtures.py: LlavaNextImageProcessor for llava-next-tiny,
 * CLIPImageProcessor for llava15-tiny, both on PIL-decoded images), this decodes
 * tests/fixtures/images/<image> with image_load_file, preprocesses it with the llava-hf
 * parameters filled by hand, and pins:
 *  - geometry: n, rows, cols, orig_h/orig_w, the resized size and the padding (NeXT) or the
 *    crop offset (1.5) equal the reference's;
 *  - uint8 tiles equal <stem>.tiles.png exactly (decode, PIL bicubic, padding, tiling, crop);
 *  - float pixels equal pixel_lut[c][reference tile value] (from <stem>.safetensors) within
 *    1e-6, i.e. float32 against float32; and our own table of the 256 values per channel
 *    equals pixel_lut bit for bit.
 * Also: hf_preproc_load on the model directory gives the same parameters as the hand-filled
 * ones. Differences are reported per tile (count and max |diff|), never loosened. */
#include <dirent.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "hfconfig.h"
#include "json.h"
#include "preprocess.h"
#include "st.h"
#include "test.h"

static const int PINS[5][2] = {{336, 672}, {672, 336}, {672, 672}, {1008, 336}, {336, 1008}};

/* llava-hf preprocessor_config.json values; mean/std go through a double as JSON + numpy do. */
static hf_preproc_t llava_pp(bool next) {
    hf_preproc_t pp;
    memset(&pp, 0, sizeof pp);
    pp.shortest_edge = 336;
    pp.crop_h = pp.crop_w = 336;
    pp.do_resize = pp.do_center_crop = pp.do_rescale = pp.do_normalize = pp.do_convert_rgb = true;
    pp.do_pad = next;
    pp.rescale_factor = 0.00392156862745098;
    const double mean[3] = {0.48145466, 0.4578275, 0.40821073}, std[3] = {0.26862954, 0.26130258, 0.27577711};
    for (int c = 0; c < 3; c++) {
        pp.mean[c] = (float)mean[c];
        pp.std[c] = (float)std[c];
    }
    pp.resample = 3;
    if (next) {
        pp.n_pinpoints = 5;
        memcpy(pp.pinpoints, PINS, sizeof PINS);
    }
    return pp;
}

static int json_int(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valueint : -1;
}

static int json_int_at(const cJSON *o, const char *key, int i) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, key);
    const cJSON *v = cJSON_IsArray(a) ? cJSON_GetArrayItem(a, i) : NULL;
    return cJSON_IsNumber(v) ? v->valueint : -1;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The loader (common/hfconfig.c) must read the model's preprocessor_config.json into the same
 * values we fill by hand. */
static void check_loader(const char *model_dir, bool next) {
    hf_preproc_t want = llava_pp(next), got;
    char err[HIRED_ERR_LEN];
    int rc = hf_preproc_load(model_dir, &got, err);
    CHECK_MSG(rc == 0, "%s", err);
    if (rc) return;
    CHECK(got.shortest_edge == want.shortest_edge && got.crop_h == want.crop_h && got.crop_w == want.crop_w);
    CHECK(got.resample == 3 && got.do_rescale && got.do_normalize && got.do_resize && got.do_center_crop);
    CHECK(got.rescale_factor == want.rescale_factor);
    for (int c = 0; c < 3; c++) CHECK(got.mean[c] == want.mean[c] && got.std[c] == want.std[c]);
    CHECK_EQ_INT(got.n_pinpoints, want.n_pinpoints);
    for (int i = 0; i < got.n_pinpoints && i < want.n_pinpoints; i++)
        CHECK(got.pinpoints[i][0] == want.pinpoints[i][0] && got.pinpoints[i][1] == want.pinpoints[i][1]);
}

/* One reference case. Returns 1 if it was checked. */
static int check_case(const char *model, bool next, const char *stem) {
    char path[8192], err[HIRED_ERR_LEN];
    snprintf(path, sizeof path, "%s/reference/%s/%s.json", test_fixture(""), model, stem);
    cJSON *ref = NULL;
    int rc = json_read_file(path, 1 << 20, &ref, err);
    CHECK_MSG(rc == 0, "%s", err);
    if (rc) return 0;
    const cJSON *imgname = cJSON_GetObjectItemCaseSensitive(ref, "image");
    CHECK(cJSON_IsString(imgname));
    image_t img = {0}, ref_tiles = {0};
    prep_out_t out = {0};
    st_file_t *st = NULL;
    int checked = 0;
    if (!cJSON_IsString(imgname)) goto done;

    snprintf(path, sizeof path, "%s/images/%s", test_fixture(""), imgname->valuestring);
    rc = image_load_file(path, 0, &img, err);
    CHECK_MSG(rc == 0, "%s", err);
    if (rc) goto done;
    hf_preproc_t pp = llava_pp(next);
    rc = next ? prep_llava_next(&img, &pp, PINS, 5, &out, err) : prep_llava15(&img, &pp, &out, err);
    CHECK_MSG(rc == 0, "%s/%s: %s", model, stem, err);
    if (rc) goto done;

    /* geometry */
    const int n = json_int(ref, "n");
    CHECK_MSG(out.n == n && out.rows == json_int(ref, "rows") && out.cols == json_int(ref, "cols"),
              "%s/%s: n %d grid %dx%d, reference n %d grid %dx%d", model, stem, out.n, out.rows, out.cols, n,
              json_int(ref, "rows"), json_int(ref, "cols"));
    CHECK_MSG(out.orig_h == json_int(ref, "orig_h") && out.orig_w == json_int(ref, "orig_w"), "%s/%s: size", model, stem);
    CHECK_MSG(out.new_h == json_int_at(ref, "resized", 0) && out.new_w == json_int_at(ref, "resized", 1),
              "%s/%s: resized %dx%d (h x w), reference %dx%d", model, stem, out.new_h, out.new_w,
              json_int_at(ref, "resized", 0), json_int_at(ref, "resized", 1));
    if (next)
        CHECK_MSG(out.pad_top == json_int_at(ref, "pad", 0) && out.pad_left == json_int_at(ref, "pad", 2),
                  "%s/%s: pad top %d left %d", model, stem, out.pad_top, out.pad_left);
    else
        CHECK_MSG(-out.pad_top == json_int_at(ref, "crop", 0) && -out.pad_left == json_int_at(ref, "crop", 1),
                  "%s/%s: crop (%d, %d)", model, stem, -out.pad_top, -out.pad_left);
    if (out.n != n) goto done;

    /* uint8 tiles */
    snprintf(path, sizeof path, "%s/reference/%s/%s.tiles.png", test_fixture(""), model, stem);
    rc = image_load_file(path, 0, &ref_tiles, err);
    CHECK_MSG(rc == 0, "%s", err);
    if (rc) goto done;
    CHECK_MSG(ref_tiles.w == 336 && ref_tiles.h == n * 336, "%s: %dx%d", path, ref_tiles.w, ref_tiles.h);
    if (ref_tiles.w != 336 || ref_tiles.h != n * 336) goto done;
    const size_t plane = 336 * 336;
    for (int p = 0; p < n; p++) {
        const uint8_t *a = out.tiles + (size_t)p * plane * 3, *b = ref_tiles.rgb + (size_t)p * plane * 3;
        long nd = 0;
        int maxd = 0;
        for (size_t i = 0; i < plane * 3; i++)
            if (a[i] != b[i]) {
                int d = abs((int)a[i] - (int)b[i]);
                nd++;
                if (d > maxd) maxd = d;
            }
        CHECK_MSG(nd == 0, "%s/%s tile %d: %ld of %zu samples differ (max |diff| %d)", model, stem, p, nd, plane * 3,
                  maxd);
    }

    /* float pixels against the reference LUT of the reference tile values */
    snprintf(path, sizeof path, "%s/reference/%s/%s.safetensors", test_fixture(""), model, stem);
    st = st_file_open(path, err);
    CHECK_MSG(st != NULL, "%s", err);
    if (!st) goto done;
    tensor_t lut_t;
    rc = st_file_get(st, "pixel_lut", &lut_t, err);
    CHECK_MSG(rc == 0, "%s", err);
    const int64_t lut_shape[2] = {3, 256};
    CHECK(rc == 0 && lut_t.dtype == TENSOR_DTYPE_F32 && tensor_shape_is(&lut_t, 2, lut_shape));
    if (rc || lut_t.dtype != TENSOR_DTYPE_F32 || !tensor_shape_is(&lut_t, 2, lut_shape)) goto done;
    float lut[3][256];
    memcpy(lut, lut_t.data, sizeof lut); /* the map need not be 4-byte aligned for us */
    long lut_bad = 0;
    for (int c = 0; c < 3; c++)
        for (int v = 0; v < 256; v++) {
            float mine = (float)((double)v * pp.rescale_factor);
            mine = (mine - pp.mean[c]) / pp.std[c];
            lut_bad += memcmp(&mine, &lut[c][v], sizeof mine) != 0;
        }
    CHECK_MSG(lut_bad == 0, "%s/%s: %ld of 768 LUT entries differ from our rescale/normalise", model, stem, lut_bad);
    for (int p = 0; p < n; p++) {
        long nd = 0;
        double maxd = 0;
        const uint8_t *t = ref_tiles.rgb + (size_t)p * plane * 3;
        for (int c = 0; c < 3; c++)
            for (size_t i = 0; i < plane; i++) {
                double d = fabs((double)out.pixels[((size_t)p * 3 + c) * plane + i] - (double)lut[c][t[i * 3 + c]]);
                if (d > 1e-6) nd++;
                if (d > maxd) maxd = d;
            }
        CHECK_MSG(nd == 0, "%s/%s partition %d: %ld pixel values off by more than 1e-6 (max %g)", model, stem, p, nd,
                  maxd);
    }
    checked = 1;
done:
    st_file_close(&st);
    prep_free(&out);
    image_free(&img);
    image_free(&ref_tiles);
    cJSON_Delete(ref);
    return checked;
}

static int check_model(const char *model, bool next) {
    char dir[8192];
    snprintf(dir, sizeof dir, "%s/models/%s", test_fixture(""), model);
    check_loader(dir, next);
    snprintf(dir, sizeof dir, "%s/reference/%s", test_fixture(""), model);
    DIR *d = opendir(dir);
    CHECK_MSG(d != NULL, "no reference directory %s", dir);
    if (!d) return 0;
    char *stems[256];
    int n_stems = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n_stems < 256) {
        size_t len = strlen(e->d_name);
        if (len > 5 && strcmp(e->d_name + len - 5, ".json") == 0) {
            stems[n_stems] = strdup(e->d_name);
            stems[n_stems++][len - 5] = 0;
        }
    }
    closedir(d);
    qsort(stems, (size_t)n_stems, sizeof *stems, cmp_str);
    int checked = 0;
    for (int i = 0; i < n_stems; i++) {
        checked += check_case(model, next, stems[i]);
        free(stems[i]);
    }
    printf("%s: %d of %d reference cases checked\n", model, checked, n_stems);
    CHECK_MSG(n_stems >= 10 && checked == n_stems, "%s: %d of %d cases checked", model, checked, n_stems);
    return checked;
}

int main(void) {
    check_model("llava-next-tiny", true);
    check_model("llava15-tiny", false);
    return test_summary();
}
