/* test_st — safetensors files and model directories: files written here byte by byte, read back
 * exactly; every malformed header, shape, offset and index the loader must refuse (with the
 * right code and a message naming the file and tensor); allocation-failure sweeps; and, when
 * present, the tiny fixture models of tests/fixtures/models. */
#include "test.h"

#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "hfconfig.h"
#include "mem.h"
#include "st.h"
#include "tensor.h"

static char g_tmp[256];

// ---- writing files ---------------------------------------------------------------------------

static const char *tmp_path(const char *rel) {
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", g_tmp, rel);
    return buf[k];
}

static void write_bytes(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f) return;
    if (n) CHECK(fwrite(p, 1, n, f) == n);
    fclose(f);
}

/* u64 header length (or `hlen_override` when not ~0), header text, data. */
static void write_st_raw(const char *path, const char *header, const void *data, size_t nd, uint64_t hlen_override) {
    size_t hl = strlen(header);
    size_t n = 8 + hl + nd;
    uint8_t *buf = malloc(n);
    uint64_t h = hlen_override != ~0ull ? hlen_override : hl;
    for (int i = 0; i < 8; i++) buf[i] = (uint8_t)(h >> (8 * i));
    memcpy(buf + 8, header, hl);
    if (nd) memcpy(buf + 8 + hl, data, nd);
    write_bytes(path, buf, n);
    free(buf);
}

typedef struct {
    const char *name, *dtype;
    int ndim;
    int64_t shape[4];
    const float *values; /* converted to dtype */
} tw_t;

static size_t tw_elems(const tw_t *t) {
    size_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= (size_t)t->shape[i];
    return n;
}

static tensor_dtype_t tw_dtype(const char *s) {
    return !strcmp(s, "F16") ? TENSOR_DTYPE_F16 : !strcmp(s, "BF16") ? TENSOR_DTYPE_BF16 : TENSOR_DTYPE_F32;
}

/* Writes a well-formed safetensors file (header padded to 8 like the Python writer). */
static void write_st(const char *path, const tw_t *ts, int n, const char *metadata) {
    char header[8192];
    uint8_t data[8192];
    size_t off = 0, ho = 0;
    ho += (size_t)snprintf(header + ho, sizeof header - ho, "{");
    if (metadata) ho += (size_t)snprintf(header + ho, sizeof header - ho, "\"__metadata__\":%s,", metadata);
    for (int i = 0; i < n; i++) {
        size_t ne = tw_elems(&ts[i]);
        tensor_dtype_t dt = tw_dtype(ts[i].dtype);
        size_t nb = ne * tensor_dtype_size(dt);
        tensor_convert_from_f32(data + off, ts[i].values, dt, ne);
        ho += (size_t)snprintf(header + ho, sizeof header - ho, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[", i ? "," : "",
                               ts[i].name, ts[i].dtype);
        for (int d = 0; d < ts[i].ndim; d++)
            ho += (size_t)snprintf(header + ho, sizeof header - ho, "%s%lld", d ? "," : "", (long long)ts[i].shape[d]);
        ho += (size_t)snprintf(header + ho, sizeof header - ho, "],\"data_offsets\":[%zu,%zu]}", off, off + nb);
        off += nb;
    }
    ho += (size_t)snprintf(header + ho, sizeof header - ho, "}");
    while ((8 + ho) % 8) header[ho++] = ' ';
    header[ho] = '\0';
    write_st_raw(path, header, data, off, ~0ull);
}

static bool has(const char *err, const char *needle) {
    bool ok = strstr(err, needle) != NULL;
    if (!ok) fprintf(stderr, "  message \"%s\" lacks \"%s\"\n", err, needle);
    return ok;
}

// ---- round trips -----------------------------------------------------------------------------

static float g_vals[64];

static void test_roundtrip(void) {
    for (int i = 0; i < 64; i++) g_vals[i] = (float)(i - 20) * 0.25f; /* exact in F16 and BF16 */
    tw_t ts[] = {
        {"a.f32", "F32", 1, {5}, g_vals},
        {"b.f16", "F16", 2, {2, 3}, g_vals},
        {"c.bf16", "BF16", 3, {2, 2, 3}, g_vals},
        {"d.f16", "F16", 4, {1, 2, 2, 3}, g_vals},
        {"e.scalar", "F32", 0, {0}, g_vals},
        {"f.empty", "F16", 2, {0, 4}, g_vals},
    };
    write_st(tmp_path("rt.safetensors"), ts, 6, "{\"format\":\"pt\",\"note\":\"hi\"}");
    char err[HIRED_ERR_LEN] = "";
    st_file_t *f = NULL;
    CHECK_EQ_INT(st_file_open_rc(tmp_path("rt.safetensors"), &f, err), HIRED_OK);
    if (!f) {
        fprintf(stderr, "%s\n", err);
        return;
    }
    CHECK_EQ_INT(st_file_count(f), 6);
    CHECK(!strcmp(st_file_name(f, 0), "a.f32"));
    CHECK(!strcmp(st_file_name(f, 5), "f.empty"));
    CHECK(st_file_name(f, 6) == NULL);
    CHECK(!strcmp(st_file_metadata(f, "format"), "pt"));
    CHECK(!strcmp(st_file_metadata(f, "note"), "hi"));
    CHECK(st_file_metadata(f, "nope") == NULL);
    for (int i = 0; i < 6; i++) {
        tensor_t v;
        CHECK_EQ_INT(st_file_get(f, ts[i].name, &v, err), HIRED_OK);
        CHECK_EQ_INT(v.dtype, tw_dtype(ts[i].dtype));
        CHECK_EQ_INT(v.ndim, ts[i].ndim);
        CHECK(!v.owns_data);
        CHECK(tensor_shape_is(&v, ts[i].ndim, ts[i].shape));
        size_t ne = tw_elems(&ts[i]);
        float got[64];
        tensor_convert_to_f32(got, v.data, v.dtype, ne);
        int bad = 0;
        for (size_t k = 0; k < ne; k++) bad += got[k] != g_vals[k];
        CHECK_EQ_INT(bad, 0);
    }
    tensor_t v;
    CHECK_EQ_INT(st_file_get(f, "zzz", &v, err), HIRED_ENOTFOUND);
    CHECK(has(err, "rt.safetensors") && has(err, "'zzz'"));
    st_file_close(&f);
    CHECK(f == NULL);
    st_file_close(&f);
}

/* transformers >= 4.52 names are served under the pre-4.52 ones (and both spellings resolve) */
static void test_new_layout(void) {
    tw_t ts[] = {
        {"model.language_model.layers.0.mlp.up_proj.weight", "F16", 2, {2, 2}, g_vals},
        {"lm_head.weight", "F16", 2, {2, 2}, g_vals + 4},
        {"model.vision_tower.vision_model.post_layernorm.weight", "F32", 1, {3}, g_vals},
        {"model.multi_modal_projector.linear_1.weight", "BF16", 2, {1, 2}, g_vals},
        {"model.image_newline", "F16", 1, {4}, g_vals + 8},
        {"model.other.thing", "F32", 1, {1}, g_vals},
    };
    write_st(tmp_path("new.safetensors"), ts, 6, NULL);
    char err[HIRED_ERR_LEN] = "";
    st_file_t *f = st_file_open(tmp_path("new.safetensors"), err);
    CHECK(f != NULL);
    if (!f) return;
    const char *canon[] = {"language_model.model.layers.0.mlp.up_proj.weight", "language_model.lm_head.weight",
                           "vision_tower.vision_model.post_layernorm.weight", "multi_modal_projector.linear_1.weight",
                           "image_newline", "model.other.thing"};
    for (int i = 0; i < 6; i++) {
        CHECK_MSG(!strcmp(st_file_name(f, i), canon[i]), "%s", st_file_name(f, i));
        tensor_t v;
        CHECK_EQ_INT(st_file_get(f, canon[i], &v, err), HIRED_OK);
        CHECK_EQ_INT(st_file_get(f, ts[i].name, &v, err), HIRED_OK);
    }
    tensor_t v;
    CHECK_EQ_INT(st_file_get(f, "image_newline", &v, err), HIRED_OK);
    CHECK(tensor_nelem(&v) == 4);
    st_file_close(&f);
}

/* Byte offsets that are not aligned for the dtype: views refused, load_f32 copies. */
static void test_unaligned(void) {
    mkdir(tmp_path("unal"), 0755);
    /* U8[1] at 0, F16[3] at 1..7, F32[2] at 7..15; header of 8-byte multiple keeps map offsets = file offsets - 8k */
    uint8_t data[16] = {0xaa};
    uint16_t h[3];
    float f32[2] = {1.5f, -2.25f}, fh[3] = {0.5f, -1.0f, 3.0f};
    tensor_convert_from_f32(h, fh, TENSOR_DTYPE_F16, 3);
    memcpy(data + 1, h, 6);
    memcpy(data + 7, f32, 8);
    char header[256];
    int n = snprintf(header, sizeof header,
                     "{\"u\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
                     "\"h\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[1,7]},"
                     "\"f\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[7,15]}}");
    while ((8 + n) % 8) header[n++] = ' ';
    header[n] = '\0';
    write_st_raw(tmp_path("unal/model.safetensors"), header, data, 16, ~0ull);
    char err[HIRED_ERR_LEN] = "";
    st_model_t *m = NULL;
    CHECK_EQ_INT(st_model_open_rc(tmp_path("unal"), &m, err), HIRED_OK);
    if (!m) return;
    tensor_t v;
    CHECK_EQ_INT(st_model_get(m, "f", &v, err), HIRED_EUNSUPPORTED);
    CHECK(has(err, "model.safetensors") && has(err, "'f'") && has(err, "aligned"));
    CHECK_EQ_INT(st_model_get(m, "h", &v, err), HIRED_EUNSUPPORTED);
    int64_t s2[1] = {2}, s3[1] = {3};
    float *x = st_model_load_f32(m, "f", 1, s2, err);
    CHECK(x && x[0] == 1.5f && x[1] == -2.25f);
    mem_free_aligned(x);
    x = st_model_load_f32(m, "h", 1, s3, err);
    CHECK(x && x[0] == 0.5f && x[1] == -1.0f && x[2] == 3.0f);
    mem_free_aligned(x);
    /* U8 is listed but refused */
    CHECK(st_model_has(m, "u"));
    CHECK_EQ_INT(st_model_get(m, "u", &v, err), HIRED_EUNSUPPORTED);
    CHECK(has(err, "'u'") && has(err, "U8"));
    int64_t s1[1] = {1};
    CHECK(st_model_load_f32(m, "u", 1, s1, err) == NULL);
    CHECK(has(err, "'u'") && has(err, "U8"));
    st_model_close(&m);
}

// ---- model directories -----------------------------------------------------------------------

static void make_single_dir(void) {
    mkdir(tmp_path("single"), 0755);
    tw_t ts[] = {
        {"model.vision_tower.vision_model.embeddings.patch_embedding.weight", "F16", 4, {2, 1, 2, 2}, g_vals},
        {"lm_head.weight", "BF16", 2, {3, 2}, g_vals + 10},
        {"model.language_model.norm.weight", "F32", 1, {2}, g_vals + 30},
    };
    write_st(tmp_path("single/model.safetensors"), ts, 3, "{\"format\":\"pt\"}");
}

static void test_single_dir(void) {
    make_single_dir();
    char err[HIRED_ERR_LEN] = "";
    st_model_t *m = st_model_open(tmp_path("single/"), err); /* trailing slash tolerated */
    CHECK(m != NULL);
    if (!m) {
        fprintf(stderr, "%s\n", err);
        return;
    }
    CHECK_EQ_INT(st_model_count(m), 3);
    CHECK(!strcmp(st_model_name(m, 0), "language_model.lm_head.weight")); /* sorted */
    CHECK(st_model_has(m, "vision_tower.vision_model.embeddings.patch_embedding.weight"));
    CHECK(st_model_has(m, "language_model.model.norm.weight"));
    CHECK(!st_model_has(m, "language_model.model.embed_tokens.weight"));
    CHECK(strstr(st_model_file_of(m, "language_model.lm_head.weight"), "single/model.safetensors") != NULL);
    int64_t shape[2] = {3, 2};
    float *w = st_model_load_f32(m, "language_model.lm_head.weight", 2, shape, err);
    CHECK(w != NULL);
    int bad = 0;
    for (int i = 0; w && i < 6; i++) bad += w[i] != g_vals[10 + i];
    CHECK_EQ_INT(bad, 0);
    mem_free_aligned(w);
    int64_t pshape[4] = {2, 1, 2, 2};
    w = st_model_load_f32(m, "vision_tower.vision_model.embeddings.patch_embedding.weight", 4, pshape, err);
    CHECK(w && w[7] == g_vals[7]);
    mem_free_aligned(w);

    int64_t wrong[2] = {2, 3};
    CHECK(st_model_load_f32(m, "language_model.lm_head.weight", 2, wrong, err) == NULL);
    CHECK(has(err, "single/model.safetensors") && has(err, "'language_model.lm_head.weight'") &&
          has(err, "has shape [3, 2], expected [2, 3]"));
    CHECK(st_model_load_f32(m, "language_model.lm_head.weight", 1, wrong, err) == NULL);
    CHECK(has(err, "expected [2]"));
    CHECK(st_model_load_f32(m, "image_newline", 1, wrong, err) == NULL);
    CHECK(has(err, "single/model.safetensors: tensor 'image_newline' not found"));
    /* the same checks for borrowed views of weights in their own dtype */
    tensor_t view;
    CHECK_EQ_INT(st_model_get_shaped(m, "language_model.lm_head.weight", 2, shape, &view, err), HIRED_OK);
    CHECK(view.dtype == TENSOR_DTYPE_BF16 && view.ndim == 2 && view.shape[0] == 3 && view.shape[1] == 2);
    CHECK_EQ_INT(st_model_get_shaped(m, "language_model.lm_head.weight", 2, wrong, &view, err), HIRED_ESHAPE);
    CHECK(has(err, "'language_model.lm_head.weight'") && has(err, "has shape [3, 2], expected [2, 3]"));
    CHECK_EQ_INT(st_model_get_shaped(m, "image_newline", 1, wrong, &view, err), HIRED_ENOTFOUND);
    CHECK(has(err, "tensor 'image_newline' not found"));
    tensor_t v;
    CHECK_EQ_INT(st_model_get(m, "image_newline", &v, err), HIRED_ENOTFOUND);
    CHECK_EQ_INT(st_model_get(m, "language_model.model.norm.weight", &v, err), HIRED_OK);
    CHECK(((const float *)v.data)[1] == g_vals[31]);
    st_model_close(&m);
    CHECK(m == NULL);
    st_model_close(&m);
    st_model_close(NULL);
}

static void make_sharded_dir(const char *dir, const char *weight_map) {
    char p[512];
    mkdir(tmp_path(dir), 0755);
    tw_t s1[] = {
        {"vision_tower.vision_model.pre_layrnorm.weight", "F16", 1, {4}, g_vals},
        {"multi_modal_projector.linear_1.weight", "F32", 2, {2, 3}, g_vals + 4},
        {"extra.not_in_index", "F32", 1, {1}, g_vals},
    };
    tw_t s2[] = {
        {"language_model.model.embed_tokens.weight", "BF16", 2, {4, 2}, g_vals + 16},
        {"image_newline", "F16", 1, {2}, g_vals + 40},
    };
    snprintf(p, sizeof p, "%s/model-00001-of-00002.safetensors", dir);
    write_st(tmp_path(p), s1, 3, NULL);
    snprintf(p, sizeof p, "%s/model-00002-of-00002.safetensors", dir);
    write_st(tmp_path(p), s2, 2, NULL);
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", dir);
    char idx[2048];
    snprintf(idx, sizeof idx, "{\"metadata\":{\"total_size\":60},\"weight_map\":%s}", weight_map);
    write_bytes(tmp_path(p), idx, strlen(idx));
}

static const char *k_good_map =
    "{\"vision_tower.vision_model.pre_layrnorm.weight\":\"model-00001-of-00002.safetensors\","
    "\"model.multi_modal_projector.linear_1.weight\":\"model-00001-of-00002.safetensors\","
    "\"language_model.model.embed_tokens.weight\":\"model-00002-of-00002.safetensors\","
    "\"model.image_newline\":\"model-00002-of-00002.safetensors\"}";

static void test_sharded_dir(void) {
    make_sharded_dir("sharded", k_good_map);
    char err[HIRED_ERR_LEN] = "";
    st_model_t *m = NULL;
    CHECK_EQ_INT(st_model_open_rc(tmp_path("sharded"), &m, err), HIRED_OK);
    if (!m) {
        fprintf(stderr, "%s\n", err);
        return;
    }
    CHECK_EQ_INT(st_model_count(m), 4);
    CHECK(!st_model_has(m, "extra.not_in_index")); /* the index is authoritative */
    CHECK(strstr(st_model_file_of(m, "image_newline"), "model-00002-of-00002.safetensors") != NULL);
    CHECK(strstr(st_model_file_of(m, "multi_modal_projector.linear_1.weight"), "model-00001") != NULL);
    int64_t es[2] = {4, 2}, ps[2] = {2, 3}, ns[1] = {2};
    float *e = st_model_load_f32(m, "language_model.model.embed_tokens.weight", 2, es, err);
    float *p = st_model_load_f32(m, "multi_modal_projector.linear_1.weight", 2, ps, err);
    float *n = st_model_load_f32(m, "image_newline", 1, ns, err);
    CHECK(e && p && n);
    int bad = 0;
    for (int i = 0; e && i < 8; i++) bad += e[i] != g_vals[16 + i];
    for (int i = 0; p && i < 6; i++) bad += p[i] != g_vals[4 + i];
    for (int i = 0; n && i < 2; i++) bad += n[i] != g_vals[40 + i];
    CHECK_EQ_INT(bad, 0);
    mem_free_aligned(e);
    mem_free_aligned(p);
    mem_free_aligned(n);
    CHECK(st_model_load_f32(m, "language_model.lm_head.weight", 2, es, err) == NULL);
    CHECK_MSG(strstr(err, "sharded: tensor 'language_model.lm_head.weight' not found") && !strstr(err, "model-0000"),
              "%s", err);
    int64_t wrong[2] = {4, 3};
    CHECK(st_model_load_f32(m, "language_model.model.embed_tokens.weight", 2, wrong, err) == NULL);
    CHECK(has(err, "model-00002-of-00002.safetensors") && has(err, "embed_tokens") && has(err, "[4, 2], expected [4, 3]"));
    st_model_close(&m);
}

// ---- abuse: one file -------------------------------------------------------------------------

typedef struct {
    const char *what, *header;
    size_t data_len;
    int code;
    const char *needle; /* besides the file name */
} bad_case_t;

static void expect_open_fails(const char *file, int code, const char *needle) {
    char err[HIRED_ERR_LEN] = "";
    st_file_t *f = (st_file_t *)1;
    int rc = st_file_open_rc(tmp_path(file), &f, err);
    CHECK_MSG(rc == code, "%s: got %d (%s), want %d", file, rc, err, code);
    CHECK(f == NULL);
    CHECK(has(err, file));
    if (needle) CHECK(has(err, needle));
}

static void test_bad_files(void) {
    write_bytes(tmp_path("zero.safetensors"), "", 0);
    expect_open_fails("zero.safetensors", HIRED_EFORMAT, "too short");
    write_bytes(tmp_path("seven.safetensors"), "\x10\0\0\0\0\0\0", 7);
    expect_open_fails("seven.safetensors", HIRED_EFORMAT, "too short");
    write_st_raw(tmp_path("longhdr.safetensors"), "{}      ", NULL, 0, 100);
    expect_open_fails("longhdr.safetensors", HIRED_EFORMAT, "header length 100");
    write_st_raw(tmp_path("hugehdr.safetensors"), "{}      ", NULL, 0, 1ull << 63);
    expect_open_fails("hugehdr.safetensors", HIRED_EFORMAT, "limit");
    write_st_raw(tmp_path("maxhdr.safetensors"), "{}      ", NULL, 0, ~0ull - 1);
    expect_open_fails("maxhdr.safetensors", HIRED_EFORMAT, "header length");
    char err[HIRED_ERR_LEN];
    st_file_t *f = st_file_open(tmp_path("does-not-exist.safetensors"), err);
    CHECK(f == NULL && has(err, "does-not-exist.safetensors"));
    CHECK_EQ_INT(st_file_open_rc(tmp_path("does-not-exist.safetensors"), &f, err), HIRED_ENOTFOUND);
    CHECK_EQ_INT(st_file_open_rc(g_tmp, &f, err), HIRED_EIO); /* a directory */

    static const bad_case_t cases[] = {
        {"notjson", "{\"a\": {\"dtype\": ", 0, HIRED_EFORMAT, "malformed JSON"},
        {"garbage", "hello world", 0, HIRED_EFORMAT, "malformed JSON"},
        {"trailing", "{} x", 0, HIRED_EFORMAT, "trailing"},
        {"nul", "{}\0     ", 0, HIRED_EFORMAT, "malformed JSON"},
        {"array", "[1, 2]  ", 0, HIRED_EFORMAT, "not a JSON object"},
        {"string", "\"abc\"", 0, HIRED_EFORMAT, "not a JSON object"},
        {"entry_not_obj", "{\"w\": 3}", 0, HIRED_EFORMAT, "'w'"},
        {"no_dtype", "{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, HIRED_EFORMAT, "'w': dtype"},
        {"no_shape", "{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, HIRED_EFORMAT, "'w': shape"},
        {"no_offsets", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, HIRED_EFORMAT, "'w': data_offsets"},
        {"dtype_num", "{\"w\":{\"dtype\":4,\"shape\":[1],\"data_offsets\":[0,4]}}", 4, HIRED_EFORMAT, "'w': dtype"},
        {"dtype_unknown", "{\"w\":{\"dtype\":\"Q4_K\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, HIRED_EFORMAT, "Q4_K"},
        {"neg_shape", "{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, HIRED_EFORMAT, "'w': shape[0]"},
        {"float_shape", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4, HIRED_EFORMAT, "shape[0]"},
        {"str_shape", "{\"w\":{\"dtype\":\"F32\",\"shape\":[\"1\"],\"data_offsets\":[0,4]}}", 4, HIRED_EFORMAT, "shape[0]"},
        {"huge_shape", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1e30],\"data_offsets\":[0,4]}}", 4, HIRED_EFORMAT, "shape[0]"},
        {"overflow_shape", "{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,16],\"data_offsets\":[0,4]}}", 4,
         HIRED_EFORMAT, "overflow"},
        {"bytes_overflow", "{\"w\":{\"dtype\":\"F64\",\"shape\":[4503599627370496,4096],\"data_offsets\":[0,4]}}", 4,
         HIRED_EFORMAT, "overflow"},
        {"nine_dims", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4,
         HIRED_EFORMAT, "9 dimensions"},
        {"shape_obj", "{\"w\":{\"dtype\":\"F32\",\"shape\":{},\"data_offsets\":[0,4]}}", 4, HIRED_EFORMAT, "'w': shape"},
        {"offsets_past", "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8, HIRED_EFORMAT, "past the end"},
        {"end_lt_begin", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", 8, HIRED_EFORMAT, "< begin"},
        {"size_mismatch", "{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, HIRED_EFORMAT, "need 12"},
        {"offsets_one", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 8, HIRED_EFORMAT, "data_offsets"},
        {"offsets_neg", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", 8, HIRED_EFORMAT, "data_offsets"},
        {"offsets_float", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4.5]}}", 8, HIRED_EFORMAT, "data_offsets"},
        {"overlap",
         "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
         16, HIRED_EFORMAT, "overlap"},
        {"truncated_data",
         "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}",
         12, HIRED_EFORMAT, "'b'"},
        {"dup_canonical",
         "{\"lm_head.weight\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
         "\"language_model.lm_head.weight\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
         8, HIRED_EFORMAT, "twice"},
        {"meta_not_str", "{\"__metadata__\":{\"format\":1}}", 0, HIRED_EFORMAT, "__metadata__"},
        {"meta_not_obj", "{\"__metadata__\":[\"x\"]}", 0, HIRED_EFORMAT, "__metadata__"},
        {"meta_twice", "{\"__metadata__\":{},\"__metadata__\":{}}", 0, HIRED_EFORMAT, "__metadata__"},
    };
    uint8_t zeros[64] = {0};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char name[128];
        snprintf(name, sizeof name, "bad_%s.safetensors", cases[i].what);
        size_t hl = strlen(cases[i].header);
        if (!strcmp(cases[i].what, "nul")) hl = 8;
        /* write with the exact header length (the "nul" case carries a NUL inside) */
        uint8_t buf[512];
        for (int b = 0; b < 8; b++) buf[b] = (uint8_t)((uint64_t)hl >> (8 * b));
        memcpy(buf + 8, cases[i].header, hl);
        memcpy(buf + 8 + hl, zeros, cases[i].data_len);
        write_bytes(tmp_path(name), buf, 8 + hl + cases[i].data_len);
        expect_open_fails(name, cases[i].code, cases[i].needle);
    }
    /* nesting far beyond cJSON's limit: refused, without exhausting the stack */
    char deep[4001];
    memset(deep, '[', 2000);
    memset(deep + 2000, ']', 2000);
    deep[4000] = '\0';
    write_st_raw(tmp_path("deep.safetensors"), deep, NULL, 0, ~0ull);
    expect_open_fails("deep.safetensors", HIRED_EFORMAT, "malformed JSON");
}

// ---- abuse: model directories ----------------------------------------------------------------

static void expect_model_fails(const char *dir, int code, const char *n1, const char *n2) {
    char err[HIRED_ERR_LEN] = "";
    st_model_t *m = (st_model_t *)1;
    int rc = st_model_open_rc(tmp_path(dir), &m, err);
    CHECK_MSG(rc == code, "%s: got %d (%s), want %d", dir, rc, err, code);
    CHECK(m == NULL);
    if (n1) CHECK(has(err, n1));
    if (n2) CHECK(has(err, n2));
    CHECK(st_model_open(tmp_path(dir), err) == NULL);
}

static void test_bad_dirs(void) {
    mkdir(tmp_path("empty"), 0755);
    expect_model_fails("empty", HIRED_ENOTFOUND, "no model.safetensors or model.safetensors.index.json in", "empty");
    expect_model_fails("no-such-dir", HIRED_ENOTFOUND, "no-such-dir", NULL);

    /* the index names a shard that is not there */
    make_sharded_dir("missing_shard",
                     "{\"image_newline\":\"model-00002-of-00002.safetensors\","
                     "\"language_model.lm_head.weight\":\"model-00003-of-00003.safetensors\"}");
    expect_model_fails("missing_shard", HIRED_ENOTFOUND, "model-00003-of-00003.safetensors", NULL);
    /* the shard lacks the tensor the index sends there */
    make_sharded_dir("wrong_shard",
                     "{\"image_newline\":\"model-00001-of-00002.safetensors\"}");
    expect_model_fails("wrong_shard", HIRED_ENOTFOUND, "wrong_shard/model-00001-of-00002.safetensors", "'image_newline'");
    /* path traversal and subdirectories */
    make_sharded_dir("traversal", "{\"image_newline\":\"../single/model.safetensors\"}");
    expect_model_fails("traversal", HIRED_EFORMAT, "model.safetensors.index.json", "../single/model.safetensors");
    make_sharded_dir("dotdot", "{\"image_newline\":\"..\"}");
    expect_model_fails("dotdot", HIRED_EFORMAT, "model.safetensors.index.json", "'image_newline'");
    make_sharded_dir("absolute", "{\"image_newline\":\"/etc/passwd\"}");
    expect_model_fails("absolute", HIRED_EFORMAT, "model.safetensors.index.json", "/etc/passwd");
    make_sharded_dir("emptyname", "{\"image_newline\":\"\"}");
    expect_model_fails("emptyname", HIRED_EFORMAT, "model.safetensors.index.json", "'image_newline'");
    /* malformed weight maps */
    make_sharded_dir("map_array", "[\"model-00001-of-00002.safetensors\"]");
    expect_model_fails("map_array", HIRED_EFORMAT, "model.safetensors.index.json", "weight_map");
    make_sharded_dir("map_value", "{\"image_newline\":2}");
    expect_model_fails("map_value", HIRED_EFORMAT, "model.safetensors.index.json", "'image_newline'");
    make_sharded_dir("map_empty", "{}");
    expect_model_fails("map_empty", HIRED_EFORMAT, "model.safetensors.index.json", "empty");
    make_sharded_dir("map_dup",
                     "{\"image_newline\":\"model-00002-of-00002.safetensors\","
                     "\"model.image_newline\":\"model-00002-of-00002.safetensors\"}");
    expect_model_fails("map_dup", HIRED_EFORMAT, "'image_newline'", "twice");
    make_sharded_dir("map_bad_json", "{\"image_newline\":");
    expect_model_fails("map_bad_json", HIRED_EFORMAT, "model.safetensors.index.json", "malformed JSON");
    /* a broken shard is reported by its own name */
    make_sharded_dir("bad_shard", k_good_map);
    write_bytes(tmp_path("bad_shard/model-00002-of-00002.safetensors"), "abc", 3);
    expect_model_fails("bad_shard", HIRED_EFORMAT, "bad_shard/model-00002-of-00002.safetensors", "too short");
}

// ---- allocation failures ---------------------------------------------------------------------

static void sweep_model_open(const char *dir) {
    char err[HIRED_ERR_LEN];
    int bad = 0;
    long i;
    for (i = 0; i < 100000; i++) {
        mem_fail_after(i, false);
        st_model_t *m = NULL;
        int rc = st_model_open_rc(tmp_path(dir), &m, err);
        mem_fail_after(-1, false);
        if (rc == HIRED_OK) {
            CHECK(m != NULL && st_model_count(m) > 0);
            st_model_close(&m);
            break;
        }
        if (rc != HIRED_ENOMEM || m != NULL) {
            bad++;
            fprintf(stderr, "  sweep %s step %ld: rc %d (%s)\n", dir, i, rc, err);
        }
    }
    CHECK_EQ_INT(bad, 0);
    CHECK(i > 5 && i < 100000); /* the sweep really failed some allocations, and then succeeded */
}

static void sweep_load_f32(void) {
    char err[HIRED_ERR_LEN];
    st_model_t *m = st_model_open(tmp_path("sharded"), err);
    CHECK(m != NULL);
    if (!m) return;
    int64_t es[2] = {4, 2};
    mem_fail_after(0, false);
    float *e = st_model_load_f32(m, "language_model.model.embed_tokens.weight", 2, es, err);
    mem_fail_after(-1, false);
    CHECK(e == NULL && has(err, "out of memory") && has(err, "embed_tokens") && has(err, "model-00002"));
    e = st_model_load_f32(m, "language_model.model.embed_tokens.weight", 2, es, err);
    CHECK(e != NULL);
    mem_free_aligned(e);
    st_model_close(&m);
}

// ---- fixture models --------------------------------------------------------------------------

static void check_fixture(const char *rel, bool next) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", test_fixture(rel));
    struct stat sb;
    if (stat(dir, &sb) != 0) {
        printf("skip: fixture %s not present\n", rel);
        return;
    }
    char err[HIRED_ERR_LEN] = "";
    hf_config_t cfg;
    int rc = hf_config_load(dir, &cfg, err);
    CHECK_MSG(rc == HIRED_OK, "%s", err);
    if (rc) return;
    st_model_t *m = st_model_open(dir, err);
    CHECK_MSG(m != NULL, "%s", err);
    if (!m) return;
    const hf_vision_config_t *v = &cfg.vision;
    const hf_text_config_t *t = &cfg.text;
    char name[256];
    int64_t hv[1] = {v->hidden}, proj1[2] = {t->hidden, v->hidden};
    int64_t patch[4] = {v->hidden, v->channels, v->patch_size, v->patch_size};
    int64_t emb[2] = {t->vocab, t->hidden};
    int64_t kv[2] = {(int64_t)t->kv_heads * t->head_dim, t->hidden};
    int64_t npos = (int64_t)(v->image_size / v->patch_size) * (v->image_size / v->patch_size) + 1;
    int64_t pos[2] = {npos, v->hidden};
    struct {
        const char *name;
        int ndim;
        const int64_t *shape;
    } want[] = {
        {"vision_tower.vision_model.embeddings.patch_embedding.weight", 4, patch},
        {"vision_tower.vision_model.embeddings.class_embedding", 1, hv},
        {"vision_tower.vision_model.embeddings.position_embedding.weight", 2, pos},
        {"vision_tower.vision_model.pre_layrnorm.weight", 1, hv},
        {"multi_modal_projector.linear_1.weight", 2, proj1},
        {"language_model.model.embed_tokens.weight", 2, emb},
        {"language_model.lm_head.weight", 2, emb},
        {"language_model.model.layers.0.self_attn.k_proj.weight", 2, kv},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        if (t->tie_embeddings && strstr(want[i].name, "lm_head")) continue;
        float *x = st_model_load_f32(m, want[i].name, want[i].ndim, want[i].shape, err);
        CHECK_MSG(x != NULL, "%s: %s", rel, err);
        mem_free_aligned(x);
    }
    /* every layer of both towers resolves */
    int missing = 0;
    for (int l = 0; l < v->layers; l++) {
        snprintf(name, sizeof name, "vision_tower.vision_model.encoder.layers.%d.self_attn.q_proj.weight", l);
        missing += !st_model_has(m, name);
        snprintf(name, sizeof name, "vision_tower.vision_model.encoder.layers.%d.mlp.fc2.bias", l);
        missing += !st_model_has(m, name);
    }
    for (int l = 0; l < t->layers; l++) {
        snprintf(name, sizeof name, "language_model.model.layers.%d.mlp.down_proj.weight", l);
        missing += !st_model_has(m, name);
        snprintf(name, sizeof name, "language_model.model.layers.%d.post_attention_layernorm.weight", l);
        missing += !st_model_has(m, name);
    }
    CHECK_EQ_INT(missing, 0);
    CHECK(st_model_has(m, "language_model.model.norm.weight"));
    CHECK(st_model_has(m, "multi_modal_projector.linear_2.bias") == cfg.projector_bias);
    CHECK(st_model_has(m, "image_newline") == next);
    CHECK(cfg.kind == (next ? HF_MODEL_LLAVA_NEXT : HF_MODEL_LLAVA));
    /* geometry of tools/reference/tiny_models.py: the totals and layouts are what they claim */
    CHECK(v->hidden == 32 && v->layers == 24 && v->heads == 16 && t->layers == 2);
    int n_vision = 5 + 16 * v->layers + 2, n_text = 1 + 9 * t->layers + 1 + 1;
    CHECK_EQ_INT(st_model_count(m), n_vision + n_text + 4 + (next ? 1 : 0));
    if (next) {
        /* sharded, old layout: the index spreads the tensors over several files */
        const char *f0 = st_model_file_of(m, "vision_tower.vision_model.embeddings.patch_embedding.weight");
        const char *f1 = st_model_file_of(m, "language_model.lm_head.weight");
        CHECK(f0 && f1 && strstr(f0, "-of-") && strstr(f1, "-of-"));
    } else {
        /* single file, new layout: old names and new names reach the same tensor */
        CHECK(strstr(st_model_file_of(m, "language_model.lm_head.weight"), "/model.safetensors") != NULL);
        tensor_t a, b;
        CHECK_EQ_INT(st_model_get(m, "language_model.model.embed_tokens.weight", &a, err), HIRED_OK);
        CHECK_EQ_INT(st_model_get(m, "model.language_model.embed_tokens.weight", &b, err), HIRED_OK);
        CHECK(a.data == b.data);
        CHECK(st_model_has(m, "lm_head.weight"));
    }
    /* every name the model lists can be viewed */
    int unviewable = 0;
    for (int i = 0; i < st_model_count(m); i++) {
        tensor_t view;
        unviewable += st_model_get(m, st_model_name(m, i), &view, err) != HIRED_OK;
    }
    CHECK_EQ_INT(unviewable, 0);
    st_model_close(&m);
}

int main(void) {
    if (!test_tmpdir(g_tmp, sizeof g_tmp, "test_st")) return 1;
    test_roundtrip();
    test_new_layout();
    test_unaligned();
    test_single_dir();
    test_sharded_dir();
    test_bad_files();
    test_bad_dirs();
    sweep_model_open("single");
    sweep_model_open("sharded");
    sweep_load_f32();
    check_fixture("models/llava-next-tiny", true);
    check_fixture("models/llava15-tiny", false);
    test_rmtree(g_tmp);
    return test_summary();
}
