/* test_weights — a converted or copied weight does not keep the checkpoint's pages resident.
 *
 * A 2 MiB F16 matrix is written to a safetensors file here. The test reads how much of that
 * file's mapping is in this process's resident set from /proc/self/smaps (the kernel's own
 * count, page by page), so each step shows its effect: reading the mapped tensor makes it
 * resident, st_model_release gives it back, reading it again brings the same bytes back. Then
 * the weights a model holds in 8 bits or bf16 (weights_matrix_q8 / _bf16: what
 * decoder.weights = q8 / bf16 / auto load) leave the mapping as they found it, with the values
 * the conversion of those bytes gives; the weight kept in its checkpoint dtype on the CPU
 * (weights_matrix) borrows the mapping and leaves its pages alone. */
#include "test.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "err.h"
#include "mem.h"
#include "q8.h"
#include "st.h"
#include "tensor.h"
#include "weights.h"

#define ROWS 512
#define COLS 2048 /* ROWS × COLS F16 = 2 MiB */
#define NAME "language_model.lm_head.weight"

static char g_dir[256];

/* Resident KiB of the mapping that holds p (its smaps "Rss:" line), or −1 when not found. */
static long mapping_rss_kb(const void *p) {
    FILE *f = fopen("/proc/self/smaps", "r");
    if (!f) return -1;
    char line[512];
    bool in = false;
    long kb = -1;
    while (fgets(line, sizeof line, f)) {
        uintptr_t lo, hi;
        if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR, &lo, &hi) == 2) { /* a mapping's first line */
            in = (uintptr_t)p >= lo && (uintptr_t)p < hi;
            continue;
        }
        if (in && !strncmp(line, "Rss:", 4)) {
            kb = strtol(line + 4, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kb;
}

/* The test pattern: finite halves of many magnitudes and both signs. */
static uint16_t pattern(size_t i) {
    return (uint16_t)((0x1000u + (unsigned)((i * 2654435761u) % 0x5800u)) | ((i & 1u) << 15));
}

static void write_model(void) {
    char header[256], path[512];
    int hl = snprintf(header, sizeof header,
                      "{\"lm_head.weight\":{\"dtype\":\"F16\",\"shape\":[%d,%d],\"data_offsets\":[0,%d]}}", ROWS, COLS,
                      ROWS * COLS * 2);
    while ((8 + hl) % 8) header[hl++] = ' ';
    header[hl] = '\0';
    snprintf(path, sizeof path, "%s/model.safetensors", g_dir);
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f) return;
    uint8_t len[8];
    for (int i = 0; i < 8; i++) len[i] = (uint8_t)((uint64_t)hl >> (8 * i));
    CHECK(fwrite(len, 1, 8, f) == 8 && fwrite(header, 1, (size_t)hl, f) == (size_t)hl);
    uint16_t *d = malloc((size_t)ROWS * COLS * 2);
    CHECK(d != NULL);
    if (d) {
        for (size_t i = 0; i < (size_t)ROWS * COLS; i++) d[i] = pattern(i);
        CHECK(fwrite(d, 2, (size_t)ROWS * COLS, f) == (size_t)ROWS * COLS);
    }
    free(d);
    fclose(f);
}

/* Reads every element of the view; the count of elements that differ from the pattern. */
static size_t read_all(const tensor_t *v) {
    const volatile uint16_t *h = v->data;
    size_t bad = 0;
    for (size_t i = 0; i < (size_t)ROWS * COLS; i++) bad += h[i] != pattern(i);
    return bad;
}

/* At most the two partial pages at the tensor's ends (its first shares the header's page), in KiB,
 * plus one page of slack. */
static long released_kb(void) { return 3 * sysconf(_SC_PAGESIZE) / 1024; }

static void test_release(void) {
    char err[HIRED_ERR_LEN] = "";
    st_model_t *m = st_model_open(g_dir, err);
    CHECK_MSG(m != NULL, "%s", err);
    if (!m) return;
    tensor_t v;
    CHECK_EQ_INT(st_model_get(m, NAME, &v, err), HIRED_OK);
    CHECK_EQ_INT(read_all(&v), 0);
    long full = mapping_rss_kb(v.data);
    CHECK_MSG(full >= ROWS * COLS * 2 / 1024, "after reading the tensor: %ld KiB resident", full); /* the pages were in */
    st_model_release(m, &v);
    long after = mapping_rss_kb(v.data);
    CHECK_MSG(after >= 0 && after <= released_kb(), "after st_model_release: %ld KiB resident (was %ld)", after, full);
    CHECK_EQ_INT(read_all(&v), 0); /* the view is still valid: the same bytes, from the file */
    CHECK(mapping_rss_kb(v.data) >= ROWS * COLS * 2 / 1024);
    /* a view outside the model's mappings: nothing happens */
    uint16_t own[8] = {0};
    tensor_t other = {.data = own, .dtype = TENSOR_DTYPE_F16, .ndim = 1, .shape = {8}};
    st_model_release(m, &other);
    st_model_release(m, NULL);
    st_model_release(NULL, &v);
    CHECK(mapping_rss_kb(v.data) >= ROWS * COLS * 2 / 1024);
    st_model_close(&m);
}

typedef int (*load_fn)(const st_model_t *, k_device_t *, const char *, int, const int64_t *, k_weight_t *, char *);

/* Loads the matrix with fn on a fresh mapping; returns the mapping's resident KiB after it, and
 * in *w the weight (the model stays open in *pm). */
static long load_rss(load_fn fn, st_model_t **pm, k_device_t *dev, k_weight_t *w, tensor_t *v) {
    char err[HIRED_ERR_LEN] = "";
    *pm = st_model_open(g_dir, err);
    CHECK_MSG(*pm != NULL, "%s", err);
    if (!*pm) return -1;
    CHECK_EQ_INT(st_model_get(*pm, NAME, v, err), HIRED_OK);
    int rc = fn(*pm, dev, NAME, 2, (const int64_t[]){ROWS, COLS}, w, err);
    CHECK_MSG(rc == HIRED_OK, "%s", err);
    return rc ? -1 : mapping_rss_kb(v->data);
}

static void test_weights(void) {
    char err[HIRED_ERR_LEN] = "";
    k_device_t *dev = k_device_open("cpu", err);
    CHECK(dev != NULL);
    if (!dev) return;
    st_model_t *m;
    k_weight_t w;
    tensor_t v;

    /* checkpoint dtype on the CPU: the weight is the mapping itself */
    CHECK(load_rss(weights_matrix, &m, dev, &w, &v) >= 0);
    CHECK(w.data == v.data && w.owned == NULL);
    CHECK_EQ_INT(read_all(&v), 0);
    long kb = mapping_rss_kb(v.data);
    CHECK_MSG(kb >= ROWS * COLS * 2 / 1024, "borrowed weight: %ld KiB resident", kb);
    k_weight_free(dev, &w);
    st_model_close(&m);

    /* 8 bits: the same blocks as quantising the mapped bytes, and the mapping given back */
    kb = load_rss(weights_matrix_q8, &m, dev, &w, &v);
    CHECK_MSG(kb >= 0 && kb <= released_kb(), "after weights_matrix_q8: %ld KiB of the checkpoint resident", kb);
    void *q = malloc(k_q8_bytes(ROWS, COLS));
    CHECK(q && !k_q8_quantize(v.data, TENSOR_DTYPE_F16, ROWS, COLS, q));
    CHECK(w.dtype == TENSOR_DTYPE_Q8 && q && !memcmp(q, w.data, k_q8_bytes(ROWS, COLS)));
    free(q);
    k_weight_free(dev, &w);
    st_model_close(&m);

    /* bf16: each element the F16 value rounded to nearest even, and the mapping given back */
    kb = load_rss(weights_matrix_bf16, &m, dev, &w, &v);
    CHECK_MSG(kb >= 0 && kb <= released_kb(), "after weights_matrix_bf16: %ld KiB of the checkpoint resident", kb);
    CHECK(w.dtype == TENSOR_DTYPE_BF16);
    size_t bad = 0;
    for (size_t i = 0; w.dtype == TENSOR_DTYPE_BF16 && i < (size_t)ROWS * COLS; i += 97) {
        float f;
        uint16_t b;
        uint16_t h = pattern(i);
        tensor_convert_to_f32(&f, &h, TENSOR_DTYPE_F16, 1);
        tensor_convert_from_f32(&b, &f, TENSOR_DTYPE_BF16, 1);
        bad += ((const uint16_t *)w.data)[i] != b;
    }
    CHECK_EQ_INT(bad, 0);
    k_weight_free(dev, &w);
    st_model_close(&m);
    k_device_close(&dev);
}

int main(void) {
    if (!test_tmpdir(g_dir, sizeof g_dir, "test_weights")) return 1;
    if (mapping_rss_kb((const void *)&main) < 0) { /* no smaps (not Linux, or /proc not mounted) */
        fprintf(stderr, "test_weights: /proc/self/smaps unreadable; skipped\n");
        test_rmtree(g_dir);
        return 77;
    }
    write_model();
    test_release();
    test_weights();
    test_rmtree(g_dir);
    return test_summary();
}
