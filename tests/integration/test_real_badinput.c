/* test_real_badinput.c — bad input through the real sockets, to the real workers: every bad job
 * ends in one ERROR whose message names the problem, and the next valid job on the same
 * workers still gets the right answer.
 *   encoder: a truncated PNG, bytes that are no image, a PNG header claiming 100000x100000
 *            pixels (refused before any pixel buffer exists);
 *   broker:  an unknown strategy (a hand-made SUBMIT: libhired refuses to send one);
 *   decoder: a prompt with two <image> placeholders, a prompt longer than the model's context,
 *            and — on a decoder configured with the raw template, where the client writes the
 *            whole prompt — a prompt without <image>.
 * The workers keep serving throughout and exit 0 on SIGTERM at the end. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "test.h"
#include "test_real_util.h"
#include "wire.h"

#define NEXT "llava-next-tiny"
#define V15 "llava15-tiny"

static uint32_t crc32_of(const uint8_t *p, size_t n) {
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
    }
    return ~c;
}

static void put_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

/* A PNG signature, an IHDR for w x h RGB8 with a valid CRC, and IEND: 45 bytes. */
static size_t png_header(uint8_t *out, uint32_t w, uint32_t h) {
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
    memcpy(out, sig, 8);
    uint8_t *c = out + 8;
    put_be32(c, 13);
    memcpy(c + 4, "IHDR", 4);
    put_be32(c + 8, w);
    put_be32(c + 12, h);
    c[16] = 8, c[17] = 2, c[18] = 0, c[19] = 0, c[20] = 0;
    put_be32(c + 21, crc32_of(c + 4, 17));
    uint8_t *e = c + 25;
    put_be32(e, 0);
    memcpy(e + 4, "IEND", 4);
    put_be32(e + 8, crc32_of(e + 4, 4));
    return 8 + 25 + 12;
}

static void pack_str(msgpack_packer *pk, const char *s) {
    msgpack_pack_str(pk, strlen(s));
    msgpack_pack_str_body(pk, s, strlen(s));
}

/* Sends a SUBMIT with params.strategy = strategy straight to the broker's frontend and returns
 * the ERROR message (or "" when the answer is not an ERROR). */
static void raw_submit_strategy(const char *front, const char *model, const char *strategy, const uint8_t *img,
                                size_t n, char *msg, size_t cap) {
    msg[0] = 0;
    void *ctx = zmq_ctx_new();
    void *s = zmq_socket(ctx, ZMQ_DEALER);
    int linger = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    zmq_connect(s, front);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 7);
    pack_str(&pk, "v"), msgpack_pack_uint32(&pk, WIRE_VERSION);
    pack_str(&pk, "type"), pack_str(&pk, "SUBMIT");
    pack_str(&pk, "session"), pack_str(&pk, "0badc0de0badc0de0badc0de0badc0de");
    pack_str(&pk, "id"), pack_str(&pk, "bad-strategy-1");
    pack_str(&pk, "model"), pack_str(&pk, model);
    pack_str(&pk, "prompt"), pack_str(&pk, "What is this?");
    pack_str(&pk, "params"), msgpack_pack_map(&pk, 1);
    pack_str(&pk, "strategy"), pack_str(&pk, strategy);
    zmq_send(s, sb.data, sb.size, ZMQ_SNDMORE);
    zmq_send(s, img, n, 0);
    msgpack_sbuffer_destroy(&sb);
    zmq_pollitem_t it = {s, 0, ZMQ_POLLIN, 0};
    for (int tries = 0; tries < 3 && !msg[0] && zmq_poll(&it, 1, 5000) > 0; tries++) {
        wire_parts_t p;
        if (wire_recv(s, &p, 0)) break;
        wire_msg_t m;
        char err[HIRED_ERR_LEN];
        if (p.n >= 1 && !wire_decode(zmq_msg_data(&p.part[0]), zmq_msg_size(&p.part[0]), NULL, &m, err) &&
            m.type == WIRE_ERROR)
            snprintf(msg, cap, "%s", m.message ? m.message : "");
        wire_msg_clear(&m);
        wire_parts_close(&p);
    }
    zmq_close(s);
    zmq_ctx_term(ctx);
}

/* Runs one job to its end; returns the final event type. */
static int run_job(hired_client *c, const char *model, const uint8_t *img, size_t n, const char *prompt,
                   const hired_params *p, h_result *r) {
    if (rt_submit(c, model, img, n, prompt, p, r)) return -1;
    h_collect(c, r, 1, 30000);
    return r->final;
}

static bool refused(const h_result *r, const char *needle, const char *what) {
    bool ok = r->final == HIRED_EVENT_ERROR && r->accepted == 1 && strstr(r->message, needle);
    fprintf(stderr, "%s: final %d code %d: %s\n", what, r->final, r->code, r->message);
    if (!ok) fprintf(stderr, "  expected an ERROR naming '%s'\n", needle);
    return ok;
}

int main(void) {
    setenv("OMP_NUM_THREADS", "1", 1);
    h_init(RT_WATCHDOG_S);
    char front[256], back[256];
    const char *bopts[] = {"--broker.heartbeat_ms=200", NULL};
    h_broker(NULL, NULL, bopts, front, back);
    static char next[2048], v15[2048];
    snprintf(next, sizeof next, "%s", rt_model_dir(NEXT));
    snprintf(v15, sizeof v15, "%s", rt_model_dir(V15));
    const char *wopts[] = {"--worker.drain_ms=2000", "--worker.warmup=false", "--encoder.cache_entries=4", NULL};
    const char *dopts[] = {"--worker.drain_ms=2000", NULL};
    const char *rawopts[] = {"--worker.drain_ms=2000", "--decoder.template=raw", NULL};
    rt_encoder(back, next, wopts);
    rt_decoder(back, next, dopts);
    rt_encoder(back, v15, wopts);
    rt_decoder(back, v15, rawopts);

    uint8_t *img = NULL;
    size_t n = 0;
    CHECK(rt_read(rt_image("tiny.png"), &img, &n) == 0);
    hired_job j;
    hired_job_init(&j);
    hired_params p = j.params;
    p.max_tokens = 6;
    const char *q = "What is in the picture?", *raw_q = "USER: <image>\nWhat is in the picture? ASSISTANT:";
    static char x_next[1024], x_raw[1024];
    char err[HIRED_ERR_LEN];
    rt_model_t *m = rt_model_load(next, err);
    CHECK_MSG(m != NULL, "%s", err);
    if (m) CHECK(rt_expect(m, img, n, q, &p, NULL, WIRE_DTYPE_F16, x_next, sizeof x_next, NULL) == 0);
    rt_model_destroy(&m);
    m = rt_model_load(v15, err);
    CHECK_MSG(m != NULL, "%s", err);
    if (m) CHECK(rt_expect(m, img, n, raw_q, &p, "raw", WIRE_DTYPE_F16, x_raw, sizeof x_raw, NULL) == 0);
    rt_model_destroy(&m);

    hired_client_opts co = {.timeout_ms = 40000, .heartbeat_ms = 200};
    hired_client *c = hired_client_new(front, &co);
    CHECK(h_wait_workers(c, NEXT, 1, 1, 30000));
    CHECK(h_wait_workers(c, V15, 1, 1, 30000));

    h_result r;
    int valid_ok = 0, valid_runs = 0;
#define VALID()                                                                                  \
    do {                                                                                         \
        valid_runs++;                                                                            \
        bool ok_ = run_job(c, NEXT, img, n, q, &p, &r) == HIRED_EVENT_DONE && !strcmp(r.text, x_next); \
        if (!ok_) fprintf(stderr, "valid job: final %d '%s' want '%s' (%s)\n", r.final, r.text, x_next, r.message); \
        valid_ok += ok_;                                                                         \
    } while (0)

    /* encoder: truncated PNG */
    run_job(c, NEXT, img, 3000, q, &p, &r);
    CHECK(refused(&r, "image", "truncated png"));
    VALID();
    /* encoder: not an image at all */
    static const uint8_t junk[] = "this is certainly not a picture";
    run_job(c, NEXT, junk, sizeof junk - 1, q, &p, &r);
    CHECK(refused(&r, "image", "junk bytes"));
    /* encoder: 100000 x 100000 header */
    uint8_t huge[64];
    size_t hn = png_header(huge, 100000, 100000);
    run_job(c, NEXT, huge, hn, q, &p, &r);
    CHECK(refused(&r, "100000x100000", "huge header"));
    CHECK_EQ_INT(r.code, HIRED_ERANGE);
    VALID();

    /* broker: unknown strategy */
    char msg[1100];
    raw_submit_strategy(front, NEXT, "bogus", img, n, msg, sizeof msg);
    fprintf(stderr, "unknown strategy: %s\n", msg);
    CHECK_MSG(strstr(msg, "'bogus'") != NULL, "message '%s'", msg);
    VALID();

    /* decoder: two placeholders, then a prompt beyond the context (4096) */
    run_job(c, NEXT, img, n, "Compare <image> with <image>.", &p, &r);
    CHECK(refused(&r, "2 <image> placeholders", "two placeholders"));
    size_t big = 4800 * 6;
    char *longq = malloc(big + 1);
    for (size_t i = 0; i < big; i += 6) memcpy(longq + i, "house ", 6);
    longq[big] = 0;
    run_job(c, NEXT, img, n, longq, &p, &r);
    free(longq);
    CHECK(refused(&r, "context is 4096", "prompt too long"));
    VALID();

    /* decoder with the raw template: no <image> in the prompt, then the full prompt works */
    run_job(c, V15, img, n, "What is in the picture?", &p, &r);
    CHECK(refused(&r, "no <image>", "raw prompt without <image>"));
    CHECK(run_job(c, V15, img, n, raw_q, &p, &r) == HIRED_EVENT_DONE);
    CHECK_MSG(!strcmp(r.text, x_raw), "'%s' want '%s'", r.text, x_raw);

    CHECK_EQ_INT(valid_ok, valid_runs);
    hired_client_destroy(&c);
    free(img);
    CHECK_EQ_INT(rt_cleanup(), 0);
    return test_summary();
}
