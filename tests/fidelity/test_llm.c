/* test_llm — the decoder side against transformers (tests/fixtures/llm, written by
 * tools/reference/make_llm_fixtures.py), through the public pipeline API (encode.h, generate.h,
 * run.h), on the CPU device:
 *   for both tiny models and every fixture image, each case (stock HF at budget 1.0 with
 *   newline hf; HiRED r = 0.2 from the Python selection's kept list with newline hf and none):
 *   the tokenized prompt, the merged length, ‖ours − ref‖/‖ref‖ ≤ 1e-4 at every stored prompt
 *   position (a fixed subset of vocabulary columns), and the 32 greedy tokens (EOS masked).
 * Also (no arguments): the same tokens with 1 and 2 OpenMP threads (greedy and sampled), stop
 * strings, max_tokens, the error cases (no <image>, prompt longer than the context, unknown
 * template, model directory without tokenizer.json) and the KV cache at r = 0.2 vs 1.0.
 *
 * HIRED_TEST_DEVICE=cuda:N runs the fidelity shards on that device (the gpu-labelled ctest
 * entries, scripts/gpu-check.sh; exit 77 without one). There the GEMMs round activations to the
 * tiny models' F16 (kernels/cuda/cuda_ops.h), so the logit bound is CUDA_LOGIT_TOL = 1e-2 and a
 * greedy step whose reference gap is below CUDA_MARGIN_TIE = 1e-2 may flip (tokens are compared
 * up to it, and the gap is printed). Not yet measured on a GPU: the first run calibrates them. */
#include <dirent.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "file.h"
#include "fixture_util.h"
#include "json.h"
#include "matmul.h"
#include "mem.h"
#include "run.h"
#include "st.h"
#include "test.h"

#define LOGIT_TOL 1e-4
#define N_NEW 32
/* A greedy step whose reference top-1/top-2 gap is below this may legitimately flip. */
#define MARGIN_TIE 1e-4
#define CUDA_LOGIT_TOL 1e-2
#define CUDA_MARGIN_TIE 1e-2
/* test_llm q8 MODEL ...: the text model's linear layers in 8 bits (kernels/q8.h, decoder.weights
 * = q8). The bound on the logits' movement (measured: worst 0.0295 relative, 0.26 absolute on the
 * two fixture models; docs/numerics.md), and the greedy tokens: the run of tokens equal to the
 * reference is printed per case, and where one differs first the reference's top-1/top-2 gap at
 * that step must be below Q8_FLIP_GAP (about the largest absolute logit movement; the largest gap
 * seen to flip was 0.083) — the tiny random models have many near ties. */
#define Q8_LOGIT_TOL 3e-2
#define Q8_MARGIN_TIE 5e-2
#define Q8_FLIP_GAP 0.25
/* test_llm bf16 MODEL ...: the linear layers rounded to bf16 at load and multiplied with bf16
 * products where the CPU has them (decoder.weights = bf16, what auto picks on such a CPU). The
 * same checks as q8 with its own bounds (measured: docs/numerics.md §9.2). */
#define BF16_LOGIT_TOL 2e-2
#define BF16_MARGIN_TIE 5e-2
#define BF16_FLIP_GAP 0.1
static int g_lossy_cases, g_lossy_same; /* q8/bf16: cases, and those with all N_NEW greedy tokens equal */
static double g_flip_gap;                /* q8/bf16: the largest reference gap a changed token may have */
static double g_logit_tol = LOGIT_TOL, g_margin_tie = MARGIN_TIE;
static llm_weights_t g_weights = LLM_WEIGHTS_NATIVE;
static double g_worst_abs; /* the largest |ours − ref| of a logit over the run */

static char *path_join(const char *a, const char *b) {
    size_t n = strlen(a) + strlen(b) + 2;
    char *s = malloc(n);
    snprintf(s, n, "%s/%s", a, b);
    return s;
}

static k_device_t *g_dev; /* the CPU device and the one context every case runs on */
static k_ctx_t *g_ctx;

/* A whole file (mem_free), or NULL. */
static uint8_t *read_file(const char *path, size_t *n) {
    char err[HIRED_ERR_LEN];
    uint8_t *b = NULL;
    return file_read(path, (size_t)1 << 28, &b, n, err) ? NULL : b;
}

/* Every token of an image (strategy none), as the fidelity cases start from. */
static int encode_all(const run_model_t *rm, const uint8_t *bytes, size_t nb, visual_t *out, char *err) {
    enc_params_t p;
    enc_params_default(&p);
    p.sel = (sel_opts_t){.strategy = SEL_NONE, .budget = 1.0};
    return enc_run(run_model_encoder(rm), g_ctx, bytes, nb, &p, out, NULL, NULL, err);
}

/* A float32 tensor of the fixture file (ints are stored as exact floats). */
static const float *get_f32(const st_file_t *f, const char *name, int64_t *n0, int64_t *n1) {
    tensor_t t;
    char err[HIRED_ERR_LEN];
    if (n0) *n0 = 0; /* also when the tensor is missing: callers compare the counts */
    if (n1) *n1 = 0;
    if (st_file_get(f, name, &t, err) || t.dtype != TENSOR_DTYPE_F32) {
        fprintf(stderr, "%s: %s\n", st_file_path(f), err);
        return NULL;
    }
    if (n0) *n0 = t.shape[0];
    if (n1) *n1 = t.ndim > 1 ? t.shape[1] : 1;
    return t.data;
}

static int meta_int(const st_file_t *f, const char *key) {
    const char *v = st_file_metadata(f, key);
    return v ? atoi(v) : -1;
}

// ---- fidelity ----------------------------------------------------------------------------------

static void compare_case(gen_model_t *m, const st_file_t *f, const char *label, const char *cname, gen_prompt_t *prp,
                         const gen_params_t *pp, double *worst_rel, int *n_cases);

/* One case of one fixture file. all: the image's visual with every token kept. */
static void run_case(gen_model_t *m, const st_file_t *f, const char *label, const char *cname, const visual_t *all,
                     double *worst_rel, int *n_cases) {
    char err[HIRED_ERR_LEN], key[128];
    gen_params_t p;
    gen_params_default(&p);
    p.newline = strstr(cname, "_none") ? PACK_NEWLINE_NONE : PACK_NEWLINE_HF;
    p.max_tokens = N_NEW;
    p.min_tokens = N_NEW;

    visual_t sub = {0};
    const visual_t *vis = all;
    snprintf(key, sizeof key, "%s.kept", cname);
    int64_t nk, nc3;
    tensor_t probe;
    if (st_file_get(f, key, &probe, err) == 0) {
        const float *kept = get_f32(f, key, &nk, &nc3);
        visual_pos_t *pos = malloc(sizeof *pos * (size_t)(nk ? nk : 1));
        for (int64_t i = 0; i < nk; i++)
            pos[i] = (visual_pos_t){(int16_t)kept[3 * i], (int16_t)kept[3 * i + 1], (int16_t)kept[3 * i + 2]};
        int rc = fixture_visual_subset(all, pos, (int)nk, &sub, err);
        free(pos);
        CHECK_MSG(rc == 0, "%s %s: %s", label, cname, err);
        if (rc) return;
        vis = &sub;
    }

    const char *question = st_file_metadata(f, "question");
    gen_prompt_t pr;
    int rc = gen_prompt_build(m, g_ctx, vis, question, &p, &pr, NULL, err);
    CHECK_MSG(rc == 0, "%s %s: %s", label, cname, err);
    if (!rc) compare_case(m, f, label, cname, &pr, &p, worst_rel, n_cases);
    gen_prompt_free(&pr);
    visual_free(&sub);
}

/* The checks of one built prompt against case `cname` of fixture f: prompt ids, merged length,
 * packed count, logits at the stored positions, greedy tokens. */
static void compare_case(gen_model_t *m, const st_file_t *f, const char *label, const char *cname, gen_prompt_t *prp,
                         const gen_params_t *pp, double *worst_rel, int *n_cases) {
    char err[HIRED_ERR_LEN], key[128];
    gen_prompt_t pr = *prp;
    gen_params_t p = *pp;
    int rc;
    /* template + tokenizer give the reference prompt ids */
    int64_t n_ids;
    const float *ref_ids = get_f32(f, "prompt_ids", &n_ids, NULL);
    int same = pr.n_ids == (int)n_ids;
    for (int i = 0; same && i < pr.n_ids; i++) same = pr.ids[i] == (int32_t)ref_ids[i];
    CHECK_MSG(same, "%s %s: prompt ids differ from the reference tokenizer", label, cname);
    snprintf(key, sizeof key, "%s.length", cname);
    CHECK_MSG(pr.length == meta_int(f, key), "%s %s: merged length %d, reference %d", label, cname, pr.length,
              meta_int(f, key));
    snprintf(key, sizeof key, "%s.n_image", cname);
    CHECK_MSG(pr.n_image == meta_int(f, key), "%s %s: %d image vectors, reference %d", label, cname, pr.n_image,
              meta_int(f, key));

    /* logits at the stored positions, and greedy tokens */
    int64_t n_pos, n_cols, n_lr, n_lc;
    snprintf(key, sizeof key, "%s.positions", cname);
    const float *posf = get_f32(f, key, &n_pos, NULL);
    const float *cols = get_f32(f, "cols", &n_cols, NULL);
    snprintf(key, sizeof key, "%s.logits", cname);
    const float *ref = get_f32(f, key, &n_lr, &n_lc);
    snprintf(key, sizeof key, "%s.tokens", cname);
    const float *ref_tok = get_f32(f, key, NULL, NULL);
    snprintf(key, sizeof key, "%s.margins", cname);
    const float *margins = get_f32(f, key, NULL, NULL);
    if (!posf || !cols || !ref || !ref_tok || !margins || n_lr != n_pos || n_lc != n_cols) {
        CHECK_MSG(0, "%s %s: malformed fixture", label, cname);
        return;
    }
    const int V = gen_model_config(m)->text.vocab;
    int32_t *rows = malloc(sizeof *rows * (size_t)n_pos);
    int rows_ok = 1;
    for (int64_t i = 0; i < n_pos; i++) {
        rows[i] = (int32_t)posf[i];
        rows_ok &= rows[i] >= 0 && rows[i] < pr.length;
    }
    float *logits = malloc(sizeof *logits * (size_t)n_pos * V);
    int32_t tokens[N_NEW];
    gen_stats_t st;
    rc = rows_ok ? gen_decode(m, g_ctx, &pr, &p, NULL, NULL, tokens, rows, (int)n_pos, logits, &st, err) : HIRED_EINVAL;
    CHECK_MSG(rc == 0, "%s %s: %s", label, cname, rows_ok ? err : "stored positions outside the prompt");
    if (!rc) {
        int bad_rows = 0;
        double worst = 0;
        for (int64_t i = 0; i < n_pos; i++) {
            double d2 = 0, r2 = 0;
            for (int64_t c = 0; c < n_cols; c++) {
                double a = logits[(size_t)i * V + (int)cols[c]], b = ref[i * n_cols + c];
                d2 += (a - b) * (a - b);
                r2 += b * b;
                if (fabs(a - b) > g_worst_abs) g_worst_abs = fabs(a - b);
            }
            double rel = sqrt(d2 / (r2 > 0 ? r2 : 1));
            if (rel > worst) worst = rel;
            if (!(rel <= g_logit_tol)) {
                if (bad_rows < 3)
                    fprintf(stderr, "%s %s: position %d: relative logit error %.3g\n", label, cname, rows[i], rel);
                bad_rows++;
            }
        }
        CHECK_MSG(bad_rows == 0, "%s %s: %d of %d positions above %g (worst %.3g)", label, cname, bad_rows,
                  (int)n_pos, g_logit_tol, worst);
        if (worst > *worst_rel) *worst_rel = worst;
        CHECK_EQ_INT(st.generated, N_NEW);
        int upto = N_NEW;
        if (g_weights != LLM_WEIGHTS_NATIVE) { /* show the difference: where, and the reference's gap there */
            const char *wn = llm_weights_name(g_weights);
            int d0 = -1;
            for (int i = 0; i < N_NEW && d0 < 0; i++)
                if (tokens[i] != (int32_t)ref_tok[i]) d0 = i;
            if (d0 < 0) {
                g_lossy_same++;
            } else {
                printf("%s %s: %s greedy tokens equal up to step %d (reference gap there %.3g; %d vs %d)\n", label,
                       cname, wn, d0, margins[d0], tokens[d0], (int)ref_tok[d0]);
                /* the prefix is the same, so only a gap the logits' movement can close may flip */
                CHECK_MSG(margins[d0] < g_flip_gap, "%s %s: %s flips greedy step %d whose reference gap is %.3g", label,
                          cname, wn, d0, margins[d0]);
            }
            g_lossy_cases++;
            upto = 0;
        }
        for (int i = 0; i < upto; i++)
            if (margins[i] < g_margin_tie) {
                printf("%s %s: greedy step %d is a near tie (gap %.3g): tokens compared up to it\n", label, cname, i,
                       margins[i]);
                upto = i + 1;
                break;
            }
        int first_diff = -1;
        for (int i = 0; i < upto && first_diff < 0; i++)
            if (tokens[i] != (int32_t)ref_tok[i]) first_diff = i;
        CHECK_MSG(first_diff < 0 || (first_diff == upto - 1 && upto < N_NEW), "%s %s: greedy token %d is %d, reference %d",
                  label, cname, first_diff, first_diff >= 0 ? tokens[first_diff] : 0,
                  first_diff >= 0 ? (int)ref_tok[first_diff] : 0);
        (*n_cases)++;
    }
    free(rows);
    free(logits);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void test_fidelity(const char *model, int first, int count) {
    char err[HIRED_ERR_LEN];
    char *mdir = path_join(test_fixture("models"), model);
    run_model_t *rm = run_model_load_as(mdir, g_dev, g_weights, err);
    CHECK_MSG(rm != NULL, "%s: %s", mdir, err);
    free(mdir);
    if (!rm) return;
    gen_model_t *m = run_model_text(rm);
    CHECK(llm_weights(gen_model_llm(m)) == g_weights);
    char *ldir = path_join(test_fixture("llm"), model);
    DIR *d = opendir(ldir);
    CHECK_MSG(d != NULL, "no reference directory %s", ldir);
    char *names[64];
    int n_files = 0;
    for (struct dirent *e; d && (e = readdir(d)) && n_files < 64;) {
        size_t l = strlen(e->d_name);
        if (l > 12 && !strcmp(e->d_name + l - 12, ".safetensors")) names[n_files++] = strdup(e->d_name);
    }
    if (d) closedir(d);
    qsort(names, (size_t)n_files, sizeof *names, cmp_str);
    CHECK_MSG(n_files >= 10, "%s: only %d reference files", ldir, n_files);
    CHECK_MSG(first >= 0 && first < n_files, "shard starts at %d of %d files", first, n_files);
    double worst = 0;
    int n_cases = 0, n_done = 0;
    for (int i = 0; i < n_files; i++) {
        if (i < first || i >= first + count) {
            free(names[i]);
            continue;
        }
        n_done++;
        char *fp = path_join(ldir, names[i]);
        st_file_t *f = st_file_open(fp, err);
        CHECK_MSG(f != NULL, "%s", err);
        const char *image = f ? st_file_metadata(f, "image") : NULL;
        const char *cases = f ? st_file_metadata(f, "cases") : NULL;
        CHECK(!f || (image && cases));
        if (f && image && cases) {
            char label[128];
            snprintf(label, sizeof label, "%s/%s", model, image);
            char *ip = path_join(test_fixture("images"), image);
            size_t nb = 0;
            uint8_t *bytes = read_file(ip, &nb);
            CHECK_MSG(bytes != NULL, "cannot read %s", ip);
            visual_t all;
            int rc = bytes ? encode_all(rm, bytes, nb, &all, err) : HIRED_EIO;
            CHECK_MSG(rc == 0, "%s: %s", label, err);
            if (!rc) {
                char *list = strdup(cases), *save = NULL;
                for (char *c = strtok_r(list, ",", &save); c; c = strtok_r(NULL, ",", &save))
                    run_case(m, f, label, c, &all, &worst, &n_cases);
                free(list);
                visual_free(&all);
            }
            mem_free(bytes);
            free(ip);
        }
        st_file_close(&f);
        free(fp);
        free(names[i]);
    }
    printf("%s (%s weights): %d cases over %d images, worst relative logit error %.3g, worst absolute %.3g\n", model,
           llm_weights_name(g_weights), n_cases, n_done, worst, g_worst_abs);
    if (g_weights != LLM_WEIGHTS_NATIVE)
        printf("%s (%s weights): %d of %d cases with all %d greedy tokens equal to the reference\n", model,
               llm_weights_name(g_weights), g_lossy_same, g_lossy_cases, N_NEW);
    free(ldir);
    run_model_destroy(&rm);
}

static uint8_t *read_image(const char *name, size_t *nb);

// ---- conversations through the checkpoint's chat template -------------------------------------------

/* The "messages" JSON of a chat fixture as tpl messages; strings borrowed from root. */
static int parse_messages(const cJSON *root, tpl_message_t *msgs, int max_msgs, tpl_part_t *parts, int max_parts) {
    int nm = 0, np = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, root) {
        if (nm == max_msgs) return -1;
        msgs[nm].role = cJSON_GetObjectItemCaseSensitive(m, "role")->valuestring;
        msgs[nm].parts = parts + np;
        msgs[nm].n_parts = 0;
        const cJSON *c;
        cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(m, "content")) {
            if (np == max_parts) return -1;
            bool img = !strcmp(cJSON_GetObjectItemCaseSensitive(c, "type")->valuestring, "image");
            parts[np++] = (tpl_part_t){img ? TPL_PART_IMAGE : TPL_PART_TEXT,
                                       img ? NULL : cJSON_GetObjectItemCaseSensitive(c, "text")->valuestring};
            msgs[nm].n_parts++;
        }
        nm++;
    }
    return nm;
}

/* tests/fixtures/llm/chat/MODEL (make_chat_fixtures.py): single-image, text-only, multi-turn and
 * two-image conversations rendered with the checkpoint's own template, stock HF at budget 1.0. */
static void test_chat(const char *model) {
    char err[HIRED_ERR_LEN];
    char *mdir = path_join(test_fixture("models"), model);
    run_model_t *rm = run_model_load(mdir, g_dev, err);
    CHECK_MSG(rm != NULL, "%s: %s", mdir, err);
    free(mdir);
    if (!rm) return;
    gen_model_t *m = run_model_text(rm);
    CHECK_MSG(!strcmp(gen_model_default_template(m), "checkpoint"), "%s: template %s", model,
              gen_model_default_template(m));
    char sub[256];
    snprintf(sub, sizeof sub, "llm/chat/%s", model);
    char *ldir = strdup(test_fixture(sub));
    DIR *d = opendir(ldir);
    CHECK_MSG(d != NULL, "no reference directory %s", ldir);
    char *names[16];
    int n_files = 0;
    for (struct dirent *e; d && (e = readdir(d)) && n_files < 16;) {
        size_t l = strlen(e->d_name);
        if (l > 12 && !strcmp(e->d_name + l - 12, ".safetensors")) names[n_files++] = strdup(e->d_name);
    }
    if (d) closedir(d);
    qsort(names, (size_t)n_files, sizeof *names, cmp_str);
    CHECK_MSG(n_files >= 4, "%s: only %d chat fixtures", ldir, n_files);
    /* every image is encoded once (strategy none) and reused by the cases that show it */
    char *img_name[8];
    visual_t img_vis[8];
    int n_img = 0;
    double worst = 0;
    int n_cases = 0;
    int n_skipped = 0;
    for (int i = 0; i < n_files; i++) {
        /* quick runs (ASan) skip the single-image case: two_images and multi_turn cover images */
        if (fixture_quick() && !strcmp(names[i], "single.safetensors")) {
            n_skipped++;
            free(names[i]);
            continue;
        }
        char *fp = path_join(ldir, names[i]);
        st_file_t *f = st_file_open(fp, err);
        CHECK_MSG(f != NULL, "%s", err);
        const char *cname = f ? st_file_metadata(f, "case") : NULL;
        const char *images = f ? st_file_metadata(f, "images") : NULL;
        const char *mjson = f ? st_file_metadata(f, "messages") : NULL;
        cJSON *conv = NULL;
        CHECK(!f || (cname && images && mjson && json_parse("messages", mjson, strlen(mjson), &conv, err) == 0));
        tpl_message_t msgs[8];
        tpl_part_t parts[32];
        int nm = conv ? parse_messages(conv, msgs, 8, parts, 32) : -1;
        visual_t vis[4];
        int n_vis = 0, rc = nm > 0 ? 0 : HIRED_EINVAL;
        char *list = strdup(images ? images : ""), *save = NULL;
        for (char *im = strtok_r(list, ",", &save); !rc && im && n_vis < 4; im = strtok_r(NULL, ",", &save)) {
            int k = 0;
            while (k < n_img && strcmp(img_name[k], im)) k++;
            if (k == n_img && n_img < 8) {
                size_t nb = 0;
                uint8_t *bytes = read_image(im, &nb);
                rc = bytes ? encode_all(rm, bytes, nb, &img_vis[k], err) : HIRED_EIO;
                CHECK_MSG(rc == 0, "%s: %s", im, err);
                mem_free(bytes);
                if (!rc) img_name[n_img++] = strdup(im);
            }
            if (!rc) vis[n_vis++] = img_vis[k];
        }
        free(list);
        if (!rc && f) {
            char label[128];
            snprintf(label, sizeof label, "%s/chat/%s", model, cname);
            gen_params_t p;
            gen_params_default(&p);
            p.max_tokens = N_NEW;
            p.min_tokens = N_NEW;
            gen_prompt_t pr;
            rc = gen_prompt_build_chat(m, g_ctx, vis, n_vis, msgs, nm, &p, &pr, NULL, err);
            CHECK_MSG(rc == 0, "%s: %s", label, err);
            if (!rc) {
                /* the rendered prompt is the one transformers rendered */
                char *text = NULL;
                CHECK(gen_render_chat(m, msgs, nm, &p, &text, err) == 0);
                CHECK_MSG(text && !strcmp(text, st_file_metadata(f, "prompt")), "%s: prompt \"%s\" differs from HF's",
                          label, text ? text : err);
                mem_free(text);
                CHECK_EQ_INT(pr.n_images, n_vis);
                compare_case(m, f, label, "full_hf", &pr, &p, &worst, &n_cases);
                gen_prompt_free(&pr);
            }
        }
        cJSON_Delete(conv);
        st_file_close(&f);
        free(fp);
        free(names[i]);
    }
    for (int k = 0; k < n_img; k++) {
        visual_free(&img_vis[k]);
        free(img_name[k]);
    }
    printf("%s: %d chat cases, worst relative logit error %.3g\n", model, n_cases, worst);
    CHECK_EQ_INT(n_cases, n_files - n_skipped);
    free(ldir);
    run_model_destroy(&rm);
}

// ---- behaviour ---------------------------------------------------------------------------------

typedef struct {
    char text[4096];
    size_t len;
    int calls;
} sink_t;

static int collect(void *user, const char *text, size_t len, int32_t token) {
    sink_t *s = user;
    (void)token;
    if (s->len + len < sizeof s->text) {
        memcpy(s->text + s->len, text, len);
        s->len += len;
        s->text[s->len] = 0;
    }
    s->calls++;
    return 0;
}

static int run_text(run_model_t *m, const uint8_t *bytes, size_t nb, const run_params_t *p, sink_t *out,
                    run_stats_t *st) {
    char err[HIRED_ERR_LEN];
    memset(out, 0, sizeof *out);
    int rc = run_question(m, g_ctx, bytes, nb, "What is shown in this image?", p, collect, out, st, err);
    CHECK_MSG(rc == 0, "%s", err);
    return rc;
}

/* Decodes an already built prompt into out. */
static int decode_text(gen_model_t *m, const gen_prompt_t *pr, const gen_params_t *p, sink_t *out, gen_stats_t *st) {
    char err[HIRED_ERR_LEN];
    memset(out, 0, sizeof *out);
    int rc = gen_decode(m, g_ctx, pr, p, collect, out, NULL, NULL, 0, NULL, st, err);
    CHECK_MSG(rc == 0, "%s", err);
    return rc;
}

static uint8_t *read_image(const char *name, size_t *nb) {
    char *ip = path_join(test_fixture("images"), name);
    uint8_t *bytes = read_file(ip, nb);
    CHECK_MSG(bytes != NULL, "cannot read %s", ip);
    free(ip);
    return bytes;
}

/* Thread-count independence, stop strings and the error messages, on LLaVA-1.5 (one tile). */
static void test_behaviour(void) {
    char err[HIRED_ERR_LEN];
    char *mdir = path_join(test_fixture("models"), "llava15-tiny");
    run_model_t *rm = run_model_load(mdir, g_dev, err);
    CHECK_MSG(rm != NULL, "%s", err);
    gen_model_t *m = rm ? run_model_text(rm) : NULL;
    size_t nb = 0;
    uint8_t *bytes = read_image("coffee_wide.jpg", &nb);
    visual_t vis = {0};
    gen_prompt_t pr = {0};
    run_params_t rp;
    run_params_default(&rp);
    gen_params_t p = rp.gen;
    if (!m || !bytes) goto out;
    CHECK(!strcmp(gen_model_default_template(m), "vicuna"));
    int erc = enc_run(run_model_encoder(rm), g_ctx, bytes, nb, &rp.enc, &vis, NULL, NULL, err);
    CHECK_MSG(erc == 0, "%s", err);
    CHECK_EQ_INT(vis.k, 115); /* int(576 * 0.2) */
    CHECK_EQ_INT(gen_prompt_build(m, g_ctx, &vis, "What is shown in this image?", &p, &pr, NULL, err), 0);

    /* thread count does not change greedy or sampled tokens */
    p.max_tokens = 12;
    p.min_tokens = 12;
    sink_t a, b;
    gen_stats_t sa, sb;
    for (int sampled = 0; sampled < 2; sampled++) {
        p.sampling = (sampler_params_t){.temperature = sampled ? 0.9f : 0, .top_k = 40, .top_p = 0.9f, .seed = 5};
        omp_set_num_threads(1);
        decode_text(m, &pr, &p, &a, &sa);
        omp_set_num_threads(2);
        decode_text(m, &pr, &p, &b, &sb);
        omp_set_num_threads(1);
        CHECK_MSG(a.len == b.len && !memcmp(a.text, b.text, a.len), "%s: 1 thread \"%s\", 2 threads \"%s\"",
                  sampled ? "sampled" : "greedy", a.text, b.text);
        CHECK_EQ_INT(sa.generated, 12);
        CHECK(sa.finish == GEN_FINISH_LENGTH);
    }

    /* a stop string cuts the text before it (and generation there) */
    p.sampling = (sampler_params_t){0};
    p.max_tokens = 24;
    p.min_tokens = 24;
    decode_text(m, &pr, &p, &a, &sa);
    CHECK(a.len > 8);
    if (a.len > 8) {
        char stop[8];
        size_t at = a.len / 2;
        memcpy(stop, a.text + at, 3);
        stop[3] = 0;
        const char *stops[] = {"\x01never", stop, NULL};
        p.stop = stops;
        decode_text(m, &pr, &p, &b, &sb);
        const char *first = strstr(a.text, stop);
        size_t want = first ? (size_t)(first - a.text) : a.len;
        CHECK_MSG(b.len == want && !memcmp(a.text, b.text, want), "stop \"%s\": got \"%s\" from \"%s\"", stop, b.text,
                  a.text);
        CHECK(sb.finish == GEN_FINISH_STOP);
        CHECK(sb.generated < sa.generated);
        p.stop = NULL;
    }
    /* max_tokens and EOS */
    p.max_tokens = 3;
    p.min_tokens = 0;
    decode_text(m, &pr, &p, &a, &sa);
    CHECK(sa.generated <= 3 && (sa.finish == GEN_FINISH_LENGTH || sa.finish == GEN_FINISH_EOS));

    /* errors with clear messages (checked before the vision tower runs) */
    gen_prompt_t bad;
    gen_params_default(&p);
    p.template_name = "no-such-template";
    CHECK_EQ_INT(gen_prompt_build(m, g_ctx, &vis, "Hi?", &p, &bad, NULL, err), HIRED_EINVAL);
    CHECK_MSG(strstr(err, "unknown chat template") != NULL, "%s", err);
    rp.gen = p;
    CHECK_EQ_INT(run_question(rm, g_ctx, bytes, nb, "Hi?", &rp, NULL, NULL, NULL, err), HIRED_EINVAL);
    p.template_name = "raw";
    CHECK_EQ_INT(gen_prompt_build(m, g_ctx, &vis, "Describe the picture.", &p, &bad, NULL, err), HIRED_EINVAL);
    CHECK_MSG(strstr(err, "no <image>") != NULL, "%s", err);
    p.template_name = NULL;
    size_t qn = 5 * 4200 + 1;
    char *q = malloc(qn);
    for (size_t i = 0; i < 4200; i++) memcpy(q + 5 * i, "word ", 5);
    q[qn - 1] = 0;
    int rc = gen_prompt_build(m, g_ctx, &vis, q, &p, &bad, NULL, err);
    CHECK_EQ_INT(rc, HIRED_ERANGE);
    if (!rc) gen_prompt_free(&bad);
    CHECK_MSG(strstr(err, "context is 4096") != NULL && strstr(err, "text") != NULL, "%s", err);
    rp.gen = p;
    CHECK_EQ_INT(run_question(rm, g_ctx, bytes, nb, q, &rp, NULL, NULL, NULL, err), HIRED_ERANGE);
    free(q);
    /* a token id outside the vocabulary is refused by the text model before it reaches a kernel */
    float row[8];
    const int32_t bad_ids[] = {1, (int32_t)gen_model_config(m)->text.vocab};
    CHECK_EQ_INT(llm_embed(gen_model_llm(m), g_ctx, bad_ids, 2, row, err), HIRED_EINVAL);
    CHECK_MSG(strstr(err, "ids[1]") != NULL, "%s", err);

out:
    gen_prompt_free(&pr);
    visual_free(&vis);
    mem_free(bytes);
    run_model_destroy(&rm);

    /* a model directory without tokenizer.json */
    char tmpl[] = "/tmp/hired_test_llm_XXXXXX";
    char *tmp = mkdtemp(tmpl);
    CHECK(tmp != NULL);
    DIR *d = tmp ? opendir(mdir) : NULL;
    for (struct dirent *e; d && (e = readdir(d));) {
        if (e->d_name[0] == '.' || !strcmp(e->d_name, "tokenizer.json")) continue;
        char *src = path_join(mdir, e->d_name), *dst = path_join(tmp, e->d_name);
        CHECK(symlink(src, dst) == 0);
        free(src);
        free(dst);
    }
    if (d) closedir(d);
    if (tmp) {
        gen_model_t *none = gen_model_load(tmp, g_dev, err);
        CHECK(none == NULL);
        CHECK_MSG(strstr(err, "tokenizer.json") != NULL, "%s", err);
        gen_model_destroy(&none);
        d = opendir(tmp);
        for (struct dirent *e; d && (e = readdir(d));) {
            if (e->d_name[0] == '.') continue;
            char *pth = path_join(tmp, e->d_name);
            unlink(pth);
            free(pth);
        }
        if (d) closedir(d);
        rmdir(tmp);
    }
    free(mdir);
}

/* LLaVA-NeXT on a 2x2-grid image: the KV cache at r = 0.2 is at most a quarter of r = 1.0. */
static void test_kv(void) {
    char err[HIRED_ERR_LEN];
    char *mdir = path_join(test_fixture("models"), "llava-next-tiny");
    run_model_t *m = run_model_load(mdir, g_dev, err);
    CHECK_MSG(m != NULL, "%s", err);
    free(mdir);
    size_t nb = 0;
    uint8_t *bytes = read_image("astronaut.png", &nb);
    if (m && bytes) {
        CHECK(!strcmp(gen_model_default_template(run_model_text(m)), "mistral"));
        run_params_t p;
        run_params_default(&p);
        p.gen.max_tokens = 8;
        sink_t a, b;
        run_stats_t sa, sb;
        p.enc.sel.budget = 1.0;
        run_text(m, bytes, nb, &p, &a, &sa);
        p.enc.sel.budget = 0.2;
        run_text(m, bytes, nb, &p, &b, &sb);
        CHECK_MSG(sb.gen.kv_bytes * 4 <= sa.gen.kv_bytes, "KV bytes %zu at r=0.2 vs %zu at r=1.0", sb.gen.kv_bytes,
                  sa.gen.kv_bytes);
        CHECK_EQ_INT(sa.enc.visual_total, 5 * 576);
        CHECK(sb.enc.visual_kept <= 576 && sb.enc.visual_kept > 0);
        printf("KV cache: %zu bytes at r=1.0 (%d positions), %zu at r=0.2 (%d) = %.1f%%\n", sa.gen.kv_bytes,
               sa.gen.prompt_tokens, sb.gen.kv_bytes, sb.gen.prompt_tokens, 100.0 * sb.gen.kv_bytes / sa.gen.kv_bytes);
    }
    mem_free(bytes);
    run_model_destroy(&m);
}

/* test_llm                     behaviour and errors
 * test_llm kv                  the KV-cache check
 * test_llm chat MODEL          conversations through MODEL's own chat template (tests/fixtures/llm/chat)
 * test_llm MODEL [FIRST COUNT]  fidelity on MODEL's reference files [FIRST, FIRST+COUNT) in name
 *                              order (ctest runs shards: the vision tower is slow under ASan)
 * test_llm q8 MODEL [FIRST COUNT]  the same with 8-bit linear layers: logits within Q8_LOGIT_TOL,
 *                              greedy tokens equal to the reference's up to a step whose
 *                              reference gap is below Q8_FLIP_GAP (the difference is printed)
 * test_llm bf16 MODEL [FIRST COUNT]  the same with bf16-held linear layers (BF16_* bounds) */
int main(int argc, char **argv) {
    /* One thread for the bulk (the thread-count independence is checked in test_behaviour): a
     * 2-core CI machine running other tests would otherwise spend most of the time spinning. */
    omp_set_num_threads(1);
    char err[HIRED_ERR_LEN];
    const char *device = getenv("HIRED_TEST_DEVICE");
    if (argc > 2 && (!strcmp(argv[1], "q8") || !strcmp(argv[1], "bf16"))) { /* lossy weights: the CPU backend */
        g_weights = !strcmp(argv[1], "q8") ? LLM_WEIGHTS_Q8 : LLM_WEIGHTS_BF16;
        argc--, argv++;
        device = "cpu";
    }
    if (!device || !*device || argc < 2 || !strcmp(argv[1], "kv") || !strcmp(argv[1], "chat"))
        device = "cpu"; /* the device parameter is for the fidelity shards */
    if (!(g_dev = k_device_open(device, err)) && !strncmp(device, "cuda:", 5)) {
        printf("%s: %s: skipped\n", device, err);
        return 77;
    }
    CHECK_MSG(g_dev && (g_ctx = k_ctx_new(g_dev, err)), "%s", err);
    if (!g_ctx) return test_summary();
    if (k_device_backend(g_dev) == K_BACKEND_CUDA) g_logit_tol = CUDA_LOGIT_TOL, g_margin_tie = CUDA_MARGIN_TIE;
    if (g_weights == LLM_WEIGHTS_Q8) g_logit_tol = Q8_LOGIT_TOL, g_margin_tie = Q8_MARGIN_TIE, g_flip_gap = Q8_FLIP_GAP;
    if (g_weights == LLM_WEIGHTS_BF16)
        g_logit_tol = BF16_LOGIT_TOL, g_margin_tie = BF16_MARGIN_TIE, g_flip_gap = BF16_FLIP_GAP;
    if (g_weights == LLM_WEIGHTS_BF16)
        printf("bf16 weights with %s products\n", k_device_bf16_products(g_dev) ? "bf16" : "float32 (no native bf16)");
    printf("device %s: logit bound %g, near-tie gap %g\n", k_device_name(g_dev), g_logit_tol, g_margin_tie);
    if (argc > 1 && !strcmp(argv[1], "kv"))
        test_kv();
    else if (argc > 2 && !strcmp(argv[1], "chat"))
        test_chat(argv[2]);
    else if (argc > 1)
        test_fidelity(argv[1], argc > 2 ? atoi(argv[2]) : 0, argc > 3 ? atoi(argv[3]) : 1 << 30);
    else
        test_behaviour();
    k_ctx_destroy(&g_ctx);
    k_device_close(&g_dev);
    return test_summary();
}
