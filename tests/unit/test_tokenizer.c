/* test_tokenizer.c — the tokenizer against Hugging Face's fast tokenizer.
 *
 * Reference data: tests/fixtures/tokenizer/cases.json (tools/reference/make_tokenizer_cases.py)
 * over tests/fixtures/models/llava-next-tiny/tokenizer.json (Mistral v1 vocab + <image>, <pad>;
 * legacy llava-hf structure: Prepend+Replace normaliser, Strip decoder). Checks:
 *   - every encode case's ids (with and without BOS) and both decodes equal HF's;
 *   - decode-only cases (byte runs forming invalid UTF-8, specials inside byte runs, unknown ids);
 *   - variants: the fixture patched to other normaliser / Metaspace / decoder / unk / added-token
 *     settings, written to a temp dir and loaded like any model;
 *   - streaming decode concatenates to the final decode, for every case and both skip modes;
 *   - docs/numerics.md §8.2 structure on the Mistral vocab; load errors; allocation-failure sweeps. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "err.h"
#include "json.h"
#include "mem.h"
#include "test.h"
#include "tokenizer.h"

#define MODEL_DIR "models/llava-next-tiny"

static double now_s(void) { return clock_ms() / 1e3; }

// ---- fixture helpers ------------------------------------------------------------------------------

/* rec[key] as bytes: from key_hex when present (texts with U+0000), else the string. Caller frees. */
static char *get_text(const cJSON *rec, const char *key, size_t *len) {
    char hk[64];
    snprintf(hk, sizeof hk, "%s_hex", key);
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(rec, hk);
    if (cJSON_IsString(h)) {
        size_t n = strlen(h->valuestring) / 2;
        char *s = malloc(n + 1);
        for (size_t i = 0; i < n; i++) {
            unsigned v;
            sscanf(h->valuestring + 2 * i, "%2x", &v);
            s[i] = (char)v;
        }
        s[n] = '\0';
        *len = n;
        return s;
    }
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(rec, key);
    if (!cJSON_IsString(t)) return NULL;
    *len = strlen(t->valuestring);
    return strdup(t->valuestring);
}

static int32_t *get_ids(const cJSON *rec, int *n) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(rec, "ids"), *it;
    *n = cJSON_GetArraySize(a);
    int32_t *ids = malloc(sizeof *ids * (size_t)(*n + 1));
    int i = 0;
    cJSON_ArrayForEach(it, a) ids[i++] = (int32_t)it->valuedouble;
    return ids;
}

static void print_ids(const char *what, const int32_t *ids, int n) {
    fprintf(stderr, "  %s:", what);
    for (int i = 0; i < n && i < 60; i++) fprintf(stderr, " %d", ids[i]);
    fprintf(stderr, n > 60 ? " ...\n" : "\n");
}

/* Streams ids one at a time; the concatenation must equal the final decode. */
static void check_stream(const tok_t *tok, const int32_t *ids, int n, bool skip, const char *label) {
    size_t want_len = 0, got_len = 0;
    char *want = tok_decode_n(tok, ids, n, skip, &want_len);
    tok_stream_t *st = tok_stream_new(tok, skip);
    char *got = malloc(want_len + 1);
    bool ok = want && st && got;
    for (int round = 0; ok && round < 2; round++) { /* the second round checks reuse after finish */
        got_len = 0;
        for (int i = 0; ok && i <= n; i++) {
            size_t l;
            const char *s = i < n ? tok_stream_feed(st, ids[i], &l) : tok_stream_finish(st, &l);
            ok = s && got_len + l <= want_len;
            if (ok) memcpy(got + got_len, s, l), got_len += l;
        }
        ok = ok && got_len == want_len && !memcmp(got, want, want_len);
    }
    CHECK_MSG(ok, "%s: streamed text differs from the final decode (skip=%d)", label, skip);
    free(got);
    tok_stream_destroy(&st);
    mem_free(want);
}

static bool check_decode(const tok_t *tok, const cJSON *rec, const int32_t *ids, int n, const char *label) {
    bool ok = true;
    for (int k = 0; k < 2; k++) {
        bool skip = k == 0;
        size_t wl, gl;
        char *want = get_text(rec, skip ? "decoded" : "decoded_all", &wl);
        char *got = tok_decode_n(tok, ids, n, skip, &gl);
        bool same = want && got && wl == gl && !memcmp(want, got, wl) && got[gl] == '\0';
        CHECK_MSG(same, "%s: decode(skip_special=%d) = \"%s\", HF \"%s\"", label, skip, got ? got : "(null)",
                  want ? want : "?");
        ok = ok && same;
        free(want);
        mem_free(got);
        check_stream(tok, ids, n, skip, label);
    }
    return ok;
}

/* Generic encode case (other tokenizer kinds): "ids" with the post-processor, "ids_plain" without. */
static bool check_encode_generic(const tok_t *tok, const cJSON *rec, const char *set, int idx) {
    char label[96];
    snprintf(label, sizeof label, "%s[%d]", set, idx);
    size_t len;
    char *text = get_text(rec, "text", &len);
    bool ok = true;
    for (int k = 0; k < 2; k++) {
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(rec, k ? "ids_plain" : "ids"), *it;
        int n_want = cJSON_GetArraySize(a), i = 0, n = -1;
        int32_t *want = malloc(sizeof *want * (size_t)(n_want + 1)), *ids = NULL;
        cJSON_ArrayForEach(it, a) want[i++] = (int32_t)it->valuedouble;
        char err[HIRED_ERR_LEN] = "";
        int rc = tok_encode_n(tok, text, len, k == 0, &ids, &n, err);
        bool same = rc == 0 && n == n_want && !memcmp(ids, want, sizeof *ids * (size_t)n);
        CHECK_MSG(same, "%s: encode(\"%.80s\", post-processor %d) differs from HF (rc %d %s)", label, text, k == 0, rc, err);
        if (!same) {
            print_ids("hired", ids, n);
            print_ids("HF   ", want, n_want);
        }
        if (k == 0) ok = check_decode(tok, rec, want, n_want, label) && ok;
        ok = ok && same;
        mem_free(ids);
        free(want);
    }
    free(text);
    return ok;
}

/* One encode case: ids with and without BOS, both decodes, streaming. Returns false on mismatch. */
static bool check_encode_case(const tok_t *tok, const cJSON *rec, const char *set, int idx) {
    char label[96];
    snprintf(label, sizeof label, "%s[%d]", set, idx);
    size_t len;
    char *text = get_text(rec, "text", &len);
    int n_want;
    int32_t *want = get_ids(rec, &n_want);
    int32_t *ids = NULL;
    int n = -1;
    char err[HIRED_ERR_LEN] = "";
    int rc = tok_encode_n(tok, text, len, true, &ids, &n, err);
    bool ok = rc == 0 && n == n_want && !memcmp(ids, want, sizeof *ids * (size_t)n);
    CHECK_MSG(ok, "%s: encode(\"%.80s\") differs from HF (rc %d %s)", label, text, rc, err);
    if (!ok) {
        print_ids("hired", ids, n);
        print_ids("HF   ", want, n_want);
    }
    mem_free(ids);
    rc = tok_encode_n(tok, text, len, false, &ids, &n, err);
    bool ok2 = rc == 0 && n == n_want - 1 && !memcmp(ids, want + 1, sizeof *ids * (size_t)n);
    CHECK_MSG(ok2, "%s: encode without BOS differs", label);
    mem_free(ids);
    ok = check_decode(tok, rec, want, n_want, label) && ok && ok2;
    free(text);
    free(want);
    return ok;
}

// ---- patched tokenizer.json in a temp dir ------------------------------------------------------------

typedef struct {
    char dir[64];
} tmpdir_t;

static bool tmp_make(tmpdir_t *d) {
    strcpy(d->dir, "/tmp/hired_tok_XXXXXX");
    return mkdtemp(d->dir) != NULL;
}

static void tmp_write(const tmpdir_t *d, const char *text) {
    char path[128];
    snprintf(path, sizeof path, "%s/tokenizer.json", d->dir);
    FILE *f = fopen(path, "wb");
    fputs(text, f);
    fclose(f);
}

static void tmp_remove(const tmpdir_t *d) {
    char path[128];
    snprintf(path, sizeof path, "%s/tokenizer.json", d->dir);
    unlink(path);
    rmdir(d->dir);
}

/* The fixture tokenizer.json with a variant's patch applied (see make_tokenizer_cases.py), printed.
 * base is patched in place and restored (a deep copy of a 3.5 MB tree is slow under ASan). */
static char *patched_json(cJSON *base, const cJSON *patch) {
    enum { MAX_SET = 8 };
    cJSON *parent[MAX_SET], *orig[MAX_SET];
    char leaf[MAX_SET][128];
    int n_set = 0;
    const cJSON *kv;
    cJSON_ArrayForEach(kv, cJSON_GetObjectItemCaseSensitive(patch, "set")) {
        if (n_set == MAX_SET) break;
        char key[128];
        snprintf(key, sizeof key, "%s", kv->string);
        char *dot = strchr(key, '.');
        cJSON *obj = base;
        if (dot) *dot = '\0', obj = cJSON_GetObjectItemCaseSensitive(base, key);
        snprintf(leaf[n_set], sizeof leaf[n_set], "%s", dot ? dot + 1 : key);
        parent[n_set] = obj;
        orig[n_set] = cJSON_DetachItemFromObjectCaseSensitive(obj, leaf[n_set]);
        cJSON_AddItemToObject(obj, leaf[n_set], cJSON_Duplicate(kv, 1));
        n_set++;
    }
    cJSON *added = cJSON_GetObjectItemCaseSensitive(base, "added_tokens"), *it;
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(base, "model"), "vocab");
    int next = cJSON_GetArraySize(vocab), n_added = cJSON_GetArraySize(added), n_app = 0;
    cJSON_ArrayForEach(it, added) {
        int id = (int)cJSON_GetObjectItemCaseSensitive(it, "id")->valuedouble;
        if (id >= next) next = id + 1;
    }
    cJSON_ArrayForEach(kv, cJSON_GetObjectItemCaseSensitive(patch, "append_added_tokens")) {
        cJSON *t = cJSON_Duplicate(kv, 1);
        const char *content = cJSON_GetObjectItemCaseSensitive(kv, "content")->valuestring;
        const cJSON *in_vocab = cJSON_GetObjectItemCaseSensitive(vocab, content);
        cJSON_AddNumberToObject(t, "id", in_vocab ? in_vocab->valuedouble : next++);
        cJSON_AddItemToArray(added, t);
        n_app++;
    }
    char *s = cJSON_PrintUnformatted(base);
    while (n_app--) cJSON_DeleteItemFromArray(added, n_added + n_app);
    while (n_set--) {
        cJSON_DeleteItemFromObjectCaseSensitive(parent[n_set], leaf[n_set]);
        if (orig[n_set]) cJSON_AddItemToObject(parent[n_set], leaf[n_set], orig[n_set]);
    }
    return s;
}

// ---- tests --------------------------------------------------------------------------------------------

static void test_fixture_cases(const tok_t *tok, const cJSON *cases) {
    const cJSON *rec;
    int i = 0, bad = 0;
    cJSON_ArrayForEach(rec, cJSON_GetObjectItemCaseSensitive(cases, "encode")) bad +=
        !check_encode_case(tok, rec, "encode", i++);
    CHECK_MSG(i >= 300, "only %d encode cases", i);
    printf("encode: %d cases, %d mismatches\n", i, bad);
    i = bad = 0;
    cJSON_ArrayForEach(rec, cJSON_GetObjectItemCaseSensitive(cases, "decode")) {
        int n;
        int32_t *ids = get_ids(rec, &n);
        char label[32];
        snprintf(label, sizeof label, "decode[%d]", i++);
        bad += !check_decode(tok, rec, ids, n, label);
        free(ids);
    }
    printf("decode: %d cases, %d mismatches\n", i, bad);
}

static void test_variants(const cJSON *cases, const char *model_dir, bool generic) {
    char err[HIRED_ERR_LEN];
    cJSON *base = NULL;
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizer.json", test_fixture(model_dir));
    CHECK(json_read_file(path, 64u << 20, &base, err) == 0);
    const cJSON *v;
    cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(cases, "variants")) {
        const char *name = cJSON_GetObjectItemCaseSensitive(v, "name")->valuestring;
        char *text = patched_json(base, cJSON_GetObjectItemCaseSensitive(v, "patch"));
        tmpdir_t d;
        CHECK(tmp_make(&d));
        tmp_write(&d, text);
        cJSON_free(text);
        tok_t *tok = tok_load(d.dir, err);
        tmp_remove(&d);
        CHECK_MSG(tok, "variant %s: %s", name, err);
        if (!tok) continue;
        const cJSON *rec;
        int i = 0, bad = 0;
        cJSON_ArrayForEach(rec, cJSON_GetObjectItemCaseSensitive(v, "encode")) bad +=
            generic ? !check_encode_generic(tok, rec, name, i++) : !check_encode_case(tok, rec, name, i++);
        printf("variant %s: %d cases, %d mismatches\n", name, i, bad);
        tok_destroy(&tok);
    }
    cJSON_Delete(base);
}

/* A cases file of another tokenizer kind (make_tokenizer_cases.py --kind): every encode case with
 * and without the post-processor, both decodes and streaming, the decode-only cases, variants. */
static void test_kind(const char *file) {
    char err[HIRED_ERR_LEN];
    cJSON *cases = NULL;
    CHECK_MSG(json_read_file(test_fixture(file), 8u << 20, &cases, err) == 0, "%s", err);
    if (!cases) return;
    const char *mdir = cJSON_GetObjectItemCaseSensitive(cases, "model_dir")->valuestring;
    const char *rel = strstr(mdir, "models/");
    tok_t *tok = tok_load(test_fixture(rel ? rel : mdir), err);
    CHECK_MSG(tok != NULL, "%s: %s", file, err);
    if (tok) {
        const cJSON *rec;
        int i = 0, bad = 0;
        cJSON_ArrayForEach(rec, cJSON_GetObjectItemCaseSensitive(cases, "encode")) bad +=
            !check_encode_generic(tok, rec, file, i++);
        CHECK_MSG(i >= 300, "%s: only %d encode cases", file, i);
        printf("%s: %d encode cases, %d mismatches\n", file, i, bad);
        i = bad = 0;
        cJSON_ArrayForEach(rec, cJSON_GetObjectItemCaseSensitive(cases, "decode")) {
            int n;
            int32_t *ids = get_ids(rec, &n);
            char label[64];
            snprintf(label, sizeof label, "%s decode[%d]", file, i++);
            bad += !check_decode(tok, rec, ids, n, label);
            free(ids);
        }
        printf("%s: %d decode cases, %d mismatches\n", file, i, bad);
        tok_destroy(&tok);
        test_variants(cases, rel ? rel : mdir, true);
    }
    cJSON_Delete(cases);
}

static void expect_ids(const tok_t *tok, const char *text, const int32_t *want, int n_want) {
    int32_t *ids;
    int n;
    char err[HIRED_ERR_LEN];
    CHECK(tok_encode(tok, text, true, &ids, &n, err) == 0);
    bool same = n == n_want && !memcmp(ids, want, sizeof *ids * (size_t)n);
    CHECK_MSG(same, "encode(\"%s\") differs from docs/numerics.md §8.2", text);
    if (!same) print_ids("got", ids, n);
    mem_free(ids);
}

/* docs/numerics.md §8.2 on the Mistral vocab: "<image>" gets "▁" segments around it. */
static void test_structure(const tok_t *tok) {
    static const int32_t mistral[] = {1,    733, 16289, 28793, 28705, 32000, 28705, 13,    3195, 349,
                                      4894, 297, 456,   3469,  28804, 733,   28748, 16289, 28793};
    expect_ids(tok, "[INST] <image>\nWhat is shown in this image? [/INST]", mistral, (int)ARRAY_LEN(mistral));
    static const int32_t lead[] = {1, 32000, 28705, 13, 3195, 349, 456, 28804};
    expect_ids(tok, "<image>\nWhat is this?", lead, (int)ARRAY_LEN(lead));
    static const int32_t empty[] = {1};
    expect_ids(tok, "", empty, 1);

    CHECK_EQ_INT(tok_vocab_size(tok), 32002);
    CHECK_EQ_INT(tok_bos(tok), 1);
    CHECK_EQ_INT(tok_eos(tok), 2);
    CHECK_EQ_INT(tok_id(tok, "<image>"), 32000);
    CHECK_EQ_INT(tok_id(tok, "<pad>"), 32001);
    CHECK_EQ_INT(tok_id(tok, "▁"), 28705);
    CHECK_EQ_INT(tok_id(tok, "<0x0A>"), 13);
    CHECK_EQ_INT(tok_id(tok, "no such piece"), -1);
    CHECK(tok_piece(tok, 28705) && !strcmp(tok_piece(tok, 28705), "▁"));
    CHECK(tok_piece(tok, 32000) && !strcmp(tok_piece(tok, 32000), "<image>"));
    CHECK(tok_piece(tok, 32002) == NULL && tok_piece(tok, -1) == NULL);
    CHECK(tok_is_special(tok, 0) && tok_is_special(tok, 1) && tok_is_special(tok, 2) && tok_is_special(tok, 32000));
    CHECK(!tok_is_special(tok, 28705) && !tok_is_special(tok, 13) && !tok_is_special(tok, 99999));

    char *s = tok_decode(tok, mistral, (int)ARRAY_LEN(mistral), true);
    CHECK(s && !strcmp(s, "[INST]  \nWhat is shown in this image? [/INST]"));
    mem_free(s);

    /* streaming: text comes out as soon as it is complete; a byte run waits for its end */
    tok_stream_t *st = tok_stream_new(tok, true);
    const char *o;
    CHECK((o = tok_stream_feed(st, 1, NULL)) && !strcmp(o, ""));
    CHECK((o = tok_stream_feed(st, tok_id(tok, "▁Hello"), NULL)) && !strcmp(o, "Hello"));
    CHECK((o = tok_stream_feed(st, tok_id(tok, "<0xE4>"), NULL)) && !strcmp(o, ""));
    CHECK((o = tok_stream_feed(st, tok_id(tok, "<0xB8>"), NULL)) && !strcmp(o, ""));
    CHECK((o = tok_stream_feed(st, tok_id(tok, "<0xAD>"), NULL)) && !strcmp(o, ""));
    CHECK((o = tok_stream_feed(st, tok_id(tok, "▁world"), NULL)) && !strcmp(o, "中 world"));
    CHECK((o = tok_stream_feed(st, tok_id(tok, "<0xE4>"), NULL)) && !strcmp(o, ""));
    CHECK((o = tok_stream_finish(st, NULL)) && !strcmp(o, "\xEF\xBF\xBD"));
    CHECK((o = tok_stream_feed(st, tok_id(tok, "▁again"), NULL)) && !strcmp(o, "again")); /* reset by finish */
    tok_stream_destroy(&st);
    tok_stream_destroy(&st); /* NULL-safe */

    int32_t *ids = (int32_t *)1;
    int n = 7;
    char err[HIRED_ERR_LEN] = "";
    CHECK(tok_encode(tok, "bad \xC3\x28 utf8", true, &ids, &n, err) == HIRED_EINVAL && ids == NULL && n == 0);
    CHECK_MSG(strstr(err, "UTF-8") && strstr(err, "byte 4"), "%s", err);
}

static void test_load_errors(void) {
    char err[HIRED_ERR_LEN] = "";
    CHECK(tok_load("/nonexistent/hired-model", err) == NULL);
    CHECK_MSG(strstr(err, "/nonexistent/hired-model/tokenizer.json"), "%s", err);

    static const struct {
        const char *json, *expect;
    } bad[] = {
        {"{ not json", "malformed"},
        {"[]", "top level"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {}, \"merges\": []}}", "vocab"},
        {"{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"a\": 0}}}", "WordPiece"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 5}, \"merges\": []}}", "dense"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 0}, \"merges\": []}}", "twice"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"a\": 1}, \"merges\": []}}", "twice"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1}, \"merges\": [\"a b\"]}}",
         "\"ab\" is not in the vocab"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1}, \"merges\": [\"a c\"]}}",
         "\"c\" is not in the vocab"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1}, \"merges\": [\"ab\"]}}", "merges[0]"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [], \"unk_token\": \"<unk>\"}}",
         "unk_token"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [], \"dropout\": 0.1}}", "dropout"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}, \"normalizer\": {\"type\": "
         "\"NFKC\"}}",
         "NFKC"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}, \"normalizer\": {\"type\": "
         "\"Replace\", "
         "\"pattern\": {\"Regex\": \" +\"}, \"content\": \"x\"}}",
         "Regex"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}, \"pre_tokenizer\": {\"type\": "
         "\"Whitespace\"}}",
         "Whitespace"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}, \"pre_tokenizer\": {\"type\": "
         "\"Split\", \"pattern\": {\"Regex\": \"\\\\s+\"}, \"behavior\": \"Isolated\"}}",
         "regex"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}, \"decoder\": {\"type\": "
         "\"Sequence\", \"decoders\": [{\"type\": \"ByteLevel\"}, {\"type\": \"Fuse\"}]}}",
         "after ByteLevel"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}}", "without a decoder"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}, \"decoder\": {\"type\": "
         "\"WordPiece\"}}",
         "WordPiece"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}, \"decoder\": {\"type\": "
         "\"Sequence\", \"decoders\": "
         "[{\"type\": \"Fuse\"}, {\"type\": \"ByteFallback\"}]}}",
         "ByteFallback"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}, \"decoder\": {\"type\": \"Strip\", "
         "\"content\": \" \", "
         "\"start\": 0, \"stop\": 1}}",
         "stop"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}, \"decoder\": {\"type\": \"Fuse\"}, "
         "\"added_tokens\": "
         "[{\"id\": 5, \"content\": \"<x>\", \"special\": true}]}",
         "would give it id 1"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}, \"decoder\": {\"type\": \"Fuse\"}, "
         "\"added_tokens\": "
         "[{\"id\": 1, \"content\": \"<x>\", \"single_word\": true}]}",
         "single_word"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}, \"decoder\": {\"type\": \"Fuse\"}, "
         "\"post_processor\": "
         "{\"type\": \"BertProcessing\"}}",
         "BertProcessing"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}, \"decoder\": {\"type\": \"Fuse\"}, "
         "\"post_processor\": "
         "{\"type\": \"TemplateProcessing\", \"single\": [{\"SpecialToken\": {\"id\": \"<s>\", \"type_id\": 0}}, "
         "{\"Sequence\": "
         "{\"id\": \"A\", \"type_id\": 0}}], \"special_tokens\": {}}}",
         "no ids for \"<s>\""},
    };
    tmpdir_t d;
    CHECK(tmp_make(&d));
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        tmp_write(&d, bad[i].json);
        err[0] = '\0';
        tok_t *t = tok_load(d.dir, err);
        CHECK_MSG(t == NULL && strstr(err, bad[i].expect) && strstr(err, "tokenizer.json"),
                  "case %zu: want \"%s\", got \"%s\"", i, bad[i].expect, err);
        tok_destroy(&t);
    }
    tmp_remove(&d);
}

/* A small but complete tokenizer.json: every section tok_load reads, 256 byte tokens. */
static char *tiny_json(void) {
    size_t cap = 1 << 16, n = 0;
    char *s = malloc(cap);
    n += (size_t)snprintf(
        s + n, cap - n,
        "{\"added_tokens\": [{\"id\": 0, \"content\": \"<unk>\", \"special\": true, \"normalized\": false},"
        "{\"id\": 1, \"content\": \"<s>\", \"special\": true, \"normalized\": false},"
        "{\"id\": 265, \"content\": \"<image>\", \"special\": true, \"normalized\": false, \"rstrip\": true},"
        "{\"id\": 266, \"content\": \"ab c\", \"special\": false, \"normalized\": true, \"lstrip\": true}],"
        "\"normalizer\": {\"type\": \"Sequence\", \"normalizers\": [{\"type\": \"Prepend\", \"prepend\": \"▁\"},"
        "{\"type\": \"Replace\", \"pattern\": {\"String\": \" \"}, \"content\": \"▁\"}]},"
        "\"pre_tokenizer\": {\"type\": \"Metaspace\", \"replacement\": \"▁\", \"prepend_scheme\": \"first\", "
        "\"split\": true},"
        "\"post_processor\": {\"type\": \"TemplateProcessing\", \"single\": [{\"SpecialToken\": {\"id\": \"<s>\", "
        "\"type_id\": 0}},"
        "{\"Sequence\": {\"id\": \"A\", \"type_id\": 0}}], \"special_tokens\": {\"<s>\": {\"id\": \"<s>\", \"ids\": "
        "[1]}}},"
        "\"decoder\": {\"type\": \"Sequence\", \"decoders\": [{\"type\": \"Replace\", \"pattern\": {\"String\": "
        "\"▁\"}, \"content\": \" \"},"
        "{\"type\": \"ByteFallback\"}, {\"type\": \"Fuse\"}, {\"type\": \"Strip\", \"content\": \" \", \"start\": 1, "
        "\"stop\": 0}]},"
        "\"model\": {\"type\": \"BPE\", \"byte_fallback\": true, \"fuse_unk\": true, \"unk_token\": \"<unk>\", "
        "\"merges\": "
        "[[\"▁\", \"a\"], \"▁a b\", \"a b\"], \"vocab\": {\"<unk>\": 0, \"<s>\": 1, \"</s>\": 2");
    for (int b = 0; b < 256; b++) n += (size_t)snprintf(s + n, cap - n, ", \"<0x%02X>\": %d", b, 3 + b);
    snprintf(s + n, cap - n, ", \"a\": 259, \"b\": 260, \"ab\": 261, \"▁\": 262, \"▁a\": 263, \"▁ab\": 264}}}");
    return s;
}

/* mem_fail_after sweeps: every allocation of tok_load, tok_encode, tok_decode and the stream may
 * fail and must be reported cleanly (ASan checks for leaks). */
static void test_alloc_failures(void) {
    char err[HIRED_ERR_LEN];
    char *json = tiny_json();
    tmpdir_t d;
    CHECK(tmp_make(&d));
    tmp_write(&d, json);
    free(json);
    tok_t *tok = NULL;
    long i;
    for (i = 0; i < 100000 && !tok; i++) {
        err[0] = '\0';
        mem_fail_after(i, false);
        tok = tok_load(d.dir, err);
        mem_fail_after(-1, false);
        if (!tok) CHECK_MSG(strstr(err, "out of memory"), "fail at %ld: %s", i, err);
    }
    printf("tok_load: succeeded once %ld allocations could succeed\n", i - 1);
    tmp_remove(&d);
    CHECK(tok != NULL);
    if (!tok) return;

    static const int32_t want[] = {1, 264, 265, 262, 3 + 0xE4, 3 + 0xB8, 3 + 0xAD, 266, 263, 262, 260};
    const char *text = "ab<image>  中 ab c a b"; /* rstrip eats the spaces; "▁ab▁c" is matched after normalising */
    int32_t *ids = NULL;
    int n = 0, rc = -1;
    for (i = 0; i < 10000 && rc; i++) {
        mem_fail_after(i, false);
        rc = tok_encode(tok, text, true, &ids, &n, err);
        mem_fail_after(-1, false);
        if (rc) CHECK(rc == HIRED_ENOMEM && ids == NULL);
    }
    CHECK(rc == 0);
    bool same = rc == 0 && n == (int)ARRAY_LEN(want) && !memcmp(ids, want, sizeof want);
    CHECK_MSG(same, "tiny tokenizer encode");
    if (!same) print_ids("got", ids, n);
    char *s = NULL;
    for (i = 0; i < 10000 && !s; i++) {
        mem_fail_after(i, false);
        s = tok_decode(tok, ids, n, false);
        mem_fail_after(-1, false);
    }
    CHECK_MSG(s && !strcmp(s, "<s> ab<image> 中ab c a b"), "%s", s ? s : "(null)");
    mem_free(s);
    for (i = 0; i < 1000; i++) { /* streams: any feed may fail; the stream is then only destroyed */
        mem_fail_after(i, false);
        tok_stream_t *st = tok_stream_new(tok, true);
        bool ok = st != NULL;
        for (int k = 0; ok && k <= n; k++)
            ok = (k < n ? tok_stream_feed(st, ids[k], NULL) : tok_stream_finish(st, NULL)) != NULL;
        mem_fail_after(-1, false);
        tok_stream_destroy(&st);
        if (ok) break;
    }
    mem_free(ids);
    tok_destroy(&tok);
    tok_destroy(&tok); /* NULL-safe */

    /* byte-level (Llama-3 fixture): encode and decode with every allocation failing in turn */
    tok = tok_load(test_fixture("models/llava-next-llama3-tiny"), err);
    CHECK_MSG(tok, "%s", err);
    if (tok) {
        const char *bl = "Hello world, it's 2024!\r\n\n  \xe4\xbd\xa0\xe5\xa5\xbd \xf0\x9f\x98\x80 <image>x";
        int32_t *want = NULL, *got = NULL;
        int n_want = 0, n_got = 0;
        CHECK(tok_encode(tok, bl, true, &want, &n_want, err) == 0);
        rc = -1;
        for (i = 0; i < 10000 && rc; i++) {
            mem_fail_after(i, false);
            rc = tok_encode(tok, bl, true, &got, &n_got, err);
            mem_fail_after(-1, false);
            if (rc) CHECK(rc == HIRED_ENOMEM && got == NULL);
        }
        CHECK(rc == 0 && n_got == n_want && !memcmp(got, want, sizeof *got * (size_t)n_got));
        char *dw = tok_decode(tok, want, n_want, false), *dg = NULL;
        for (i = 0; i < 10000 && !dg; i++) {
            mem_fail_after(i, false);
            dg = tok_decode(tok, want, n_want, false);
            mem_fail_after(-1, false);
        }
        CHECK_MSG(dw && dg && !strcmp(dw, dg) && strstr(dw, "Hello world"), "%s", dg ? dg : "(null)");
        mem_free(dw);
        mem_free(dg);
        mem_free(want);
        mem_free(got);
        tok_destroy(&tok);
    }

    /* the real fixture: a sample of failure points (each is a full 3.5 MB parse) */
    mem_fail_after(-1, false);
    tok = tok_load(test_fixture(MODEL_DIR), err);
    long total = mem_alloc_count();
    tok_destroy(&tok);
    for (int k = 0; k < 4; k++) { /* one point inside the JSON parse, the last 3 allocations */
        long at = k == 0 ? total / 2 : total - k;
        mem_fail_after(at, false);
        tok = tok_load(test_fixture(MODEL_DIR), err);
        mem_fail_after(-1, false);
        CHECK_MSG(tok == NULL && strstr(err, "out of memory"), "fixture load, failure at %ld of %ld: %s", at, total,
                  err);
        tok_destroy(&tok);
    }
}

int main(void) {
    char err[HIRED_ERR_LEN];
    double t0 = now_s();
    tok_t *tok = tok_load(test_fixture(MODEL_DIR), err);
    double t1 = now_s();
    CHECK_MSG(tok != NULL, "%s", err);
    if (!tok) return test_summary();
    printf("tok_load: %.1f ms\n", (t1 - t0) * 1e3);

    cJSON *cases = NULL;
    char path[4096];
    snprintf(path, sizeof path, "%s", test_fixture("tokenizer/cases.json"));
    CHECK_MSG(json_read_file(path, 8u << 20, &cases, err) == 0, "%s", err);
    if (cases) {
        t0 = now_s();
        test_fixture_cases(tok, cases);
        printf("fixture cases: %.1f ms\n", (now_s() - t0) * 1e3);
        t0 = now_s();
        test_variants(cases, MODEL_DIR, false);
        printf("variants: %.1f ms\n", (now_s() - t0) * 1e3);
    }
    test_structure(tok);
    tok_destroy(&tok);
    test_kind("tokenizer/yi_cases.json");
    test_kind("tokenizer/llama3_cases.json");
    cJSON_Delete(cases);
    test_load_errors();
    t0 = now_s();
    test_alloc_failures();
    printf("allocation-failure sweeps: %.1f ms\n", (now_s() - t0) * 1e3);
    return test_summary();
}
