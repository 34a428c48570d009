/* test_wire_mutate.c — the fuzz property (tests/fuzz/fuzz_wire.c) under the normal build: every
 * file of tests/fuzz/corpus, then a fixed-seed stream of mutations (bit flips, byte sets,
 * truncation, insertion, splicing two headers, length-field bombs) of valid headers of every
 * message type. `test_wire_mutate --write-corpus DIR` writes the valid seed headers. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NSEEDS 16
static char *g_seed[NSEEDS];
static size_t g_len[NSEEDS];

static void make_seeds(void) {
    wire_msg_t m[NSEEDS];
    wire_type_t types[NSEEDS] = {WIRE_SUBMIT, WIRE_ACCEPTED, WIRE_TOKEN, WIRE_DONE, WIRE_ERROR, WIRE_BUSY,
                                 WIRE_CANCEL, WIRE_HEARTBEAT, WIRE_READY, WIRE_JOB, WIRE_RESULT, WIRE_STATUS,
                                 WIRE_RESUME, WIRE_ACK, WIRE_BYE, WIRE_SUBMIT};
    /* the last SUBMIT is a conversation of two images (protocol v5) */
    wire_part_t sys[1] = {{"Be brief."}}, user[3] = {{NULL}, {"Compare"}, {NULL}};
    const wire_message_t conv[2] = {{WIRE_ROLE_SYSTEM, 1, sys}, {WIRE_ROLE_USER, 3, user}};
    uint16_t pos[6] = {0, 1, 2, 3, 4, 5};
    for (int i = 0; i < NSEEDS; i++) {
        wire_msg_t *x = &m[i];
        wire_msg_init(x, types[i]);
        strcpy(x->id, "job-0");
        strcpy(x->model, "llava");
        strcpy(x->service, "decode");
        if (i == NSEEDS - 1) wire_msg_set_messages(x, conv, 2);
        else wire_msg_set_prompt(x, "USER: <image>\nhi ASSISTANT:");
        wire_msg_set_text(x, "tok");
        wire_msg_set_message(x, "boom");
        x->code = HIRED_EPROTO;
        x->capacity = 2;
        x->attempt = 1;
        x->epoch = 42;
        x->deadline_ms = 1000;
        x->seq = 3;
        if (types[i] == WIRE_HEARTBEAT) x->load[0] = 4, x->load[1] = 40, x->load[2] = 512, x->load[3] = 1;
        if (types[i] == WIRE_JOB || types[i] == WIRE_RESULT) {
            wire_msg_new_visuals(x, 1);
            wire_visual_t *v = &x->visuals[0];
            v->kept = 2, v->dim = 4, v->dtype = WIRE_DTYPE_F16;
            v->grid[0] = 2, v->grid[1] = 2;
            wire_visual_set_positions(v, pos, 2);
            v->parts = 5, v->patch_grid = 24;
        }
        x->timings[WIRE_STAGE_VIT] = 1.5;
        x->timings_mask = 1u << WIRE_STAGE_VIT;
        x->usage.completion_tokens = 3;
        x->usage.visual_kept = 2, x->usage.visual_total = 8, x->usage.result_bytes = 300;
        strcpy(x->finish, "stop");
        strcpy(x->session, "00112233445566778899aabbccddeeff");
        strcpy(x->fingerprint, "0123456789abcdef0123456789abcdef");
        char err[HIRED_ERR_LEN];
        CHECK_MSG(wire_encode_buf(x, &g_seed[i], &g_len[i], err) == 0, "%s: %s", wire_type_name(types[i]), err);
        wire_msg_clear(x);
    }
}

static uint64_t g_rng = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(void) {
    g_rng ^= g_rng << 13, g_rng ^= g_rng >> 7, g_rng ^= g_rng << 17;
    return (uint32_t)(g_rng >> 16);
}

static void mutate_and_feed(int rounds) {
    uint8_t buf[4096];
    for (int r = 0; r < rounds; r++) {
        int s = (int)(rnd() % NSEEDS);
        if (!g_seed[s]) continue;
        size_t n = g_len[s] < sizeof buf ? g_len[s] : sizeof buf;
        memcpy(buf, g_seed[s], n);
        int ops = 1 + (int)(rnd() % 4);
        for (int k = 0; k < ops && n > 0; k++) {
            size_t at = rnd() % n;
            switch (rnd() % 7) {
            case 0: buf[at] ^= (uint8_t)(1u << (rnd() % 8)); break;
            case 1: buf[at] = (uint8_t)rnd(); break;
            case 2: n = at; break; /* truncate */
            case 3: /* insert a byte */
                if (n < sizeof buf) {
                    memmove(buf + at + 1, buf + at, n - at);
                    buf[at] = (uint8_t)rnd();
                    n++;
                }
                break;
            case 4: { /* splice the tail of another header */
                int o = (int)(rnd() % NSEEDS);
                size_t from = g_len[o] ? rnd() % g_len[o] : 0, take = g_len[o] - from;
                if (at + take > sizeof buf) take = sizeof buf - at;
                memcpy(buf + at, g_seed[o] + from, take);
                n = at + take;
                break;
            }
            case 5: { /* a length / count field bomb */
                static const uint8_t bombs[][5] = {{0xdd, 0xff, 0xff, 0xff, 0xff}, {0xdf, 0x7f, 0xff, 0xff, 0xff},
                                                   {0xdb, 0xff, 0xff, 0xff, 0xf0}, {0xc6, 0xff, 0xff, 0xff, 0xff},
                                                   {0xc9, 0x80, 0x00, 0x00, 0x00}};
                const uint8_t *b = bombs[rnd() % 5];
                for (int i = 0; i < 5 && at + (size_t)i < n; i++) buf[at + i] = b[i];
                break;
            }
            default: buf[at] = (uint8_t)(0x80 + rnd() % 0x80); break; /* a container/str marker */
            }
        }
        LLVMFuzzerTestOneInput(buf, n);
    }
}

static int feed_corpus(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int count = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char path[4096 + 256];
        snprintf(path, sizeof path, "%.4000s/%s", dir, e->d_name);
        FILE *f = fopen(path, "rb");
        if (!f) continue;
        static uint8_t buf[1 << 20];
        size_t n = fread(buf, 1, sizeof buf, f);
        fclose(f);
        LLVMFuzzerTestOneInput(buf, n);
        count++;
    }
    closedir(d);
    return count;
}

int main(int argc, char **argv) {
    make_seeds();
    if (argc == 3 && !strcmp(argv[1], "--write-corpus")) {
        for (int i = 0; i < NSEEDS; i++) {
            char path[4096];
            snprintf(path, sizeof path, "%s/seed-%02d", argv[2], i);
            FILE *f = fopen(path, "wb");
            if (f) fwrite(g_seed[i], 1, g_len[i], f), fclose(f);
        }
        return 0;
    }
    for (int i = 0; i < NSEEDS; i++) LLVMFuzzerTestOneInput((const uint8_t *)g_seed[i], g_len[i]);
    const char *src = getenv("HIRED_FIXTURES"); /* tests/fixtures: the corpus is next to it */
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/../fuzz/corpus", src ? src : "tests/fixtures");
    int n = feed_corpus(dir);
    CHECK_MSG(n >= NSEEDS, "corpus %s has %d files", dir, n);
    mutate_and_feed(200000);
    for (int i = 0; i < NSEEDS; i++) free(g_seed[i]);
    return test_summary();
}
