/* test_real_chat.c — conversations, several images and text-only requests through the wire
 * (protocol v5): the real broker, hired-encoder and hired-decoder on the tiny LLaVA-1.5 model,
 * driven by the real `hired submit` (libhired) and compared with the real `hired run` (in
 * process) given the same flags:
 *   - a multi-turn conversation (system, user with an image, assistant, user with another image),
 *     the same as a --messages file, and a text-only conversation give exactly the stdout of
 *     `hired run` (the answer and its newline) and the same number of generated tokens; the
 *     encoder sends float32 features (encoder.wire_dtype f32), so nothing is rounded on the way
 *     and any difference is a fault of the wire path; the two images swapped give another
 *     answer, so the comparison sees their order;
 *   - a text-only job is served by a model that has a decoder and no encoder at all (it goes
 *     straight to a decoder), while an image job for that model is refused naming the encoder;
 *   - bad input gets a clear ERROR and the processes keep serving: more images than the model's
 *     context holds (the encoder refuses it once the kept tokens pass the context), image parts
 *     that do not match the <image> placeholders, an empty conversation and 17 images (libhired refuses them before sending;
 *     the broker refuses the same headers sent raw), images over broker.max_job_image_bytes
 *     together (the broker's error), and a good job after all of them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zmq.h>

#include "test.h"
#include "test_real_util.h"
#include "wire.h"

#define MODEL "llava15-tiny"
#define TEXT_ONLY_MODEL "decoder-only"

/* The tokens generated, from run's summary ("; N tokens (") or submit's ("in, N out"); -1. */
static int generated(const char *errs, bool run) {
    const char *p = strstr(errs, run ? " tokens (" : " out;");
    if (!p) return -1;
    while (p > errs && p[-1] != ' ') p--; /* back to the number's first digit */
    return atoi(p);
}

/* `hired run` and `hired submit` with the same request flags: the same stdout and token count. */
static void same_answer(const char *what, const char *front, const char *dir, const char *req) {
    char args[6000], *ro, *re, *so, *se;
    snprintf(args, sizeof args, "run --model '%s' %s", dir, req);
    int rs = rt_drive(args, 120, &ro, &re);
    CHECK_MSG(rs == 0, "%s: hired run exit %d: %s", what, rs, re);
    snprintf(args, sizeof args, "submit --broker %s --model %s %s", front, MODEL, req);
    int ss = rt_drive(args, 120, &so, &se);
    CHECK_MSG(ss == 0, "%s: hired submit exit %d: %s", what, ss, se);
    CHECK_MSG(ro[0] && !strcmp(ro, so), "%s: submit printed '%s', run '%s'", what, so, ro);
    int gr = generated(re, true), gs = generated(se, false);
    CHECK_MSG(gr > 0 && gr == gs, "%s: run generated %d tokens, submit %d (%s | %s)", what, gr, gs, re, se);
    printf("%s: %d tokens, identical: %s", what, gs, so);
    free(ro), free(re), free(so), free(se);
}

/* Sends a raw SUBMIT header m with n image frames of `len` bytes and returns the broker's answer
 * type, its message into msg[cap]. */
static wire_type_t raw_submit(const char *front, wire_msg_t *m, int n, size_t len, char *msg, size_t cap) {
    void *ctx = zmq_ctx_new(), *s = zmq_socket(ctx, ZMQ_DEALER);
    int linger = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    wire_type_t t = WIRE_NONE;
    char err[HIRED_ERR_LEN];
    zmq_msg_t frames[WIRE_MAX_PAYLOADS];
    for (int i = 0; i < n; i++) {
        zmq_msg_init_size(&frames[i], len);
        memset(zmq_msg_data(&frames[i]), 0x55, len);
    }
    msg[0] = 0;
    if (zmq_connect(s, front) == 0 && wire_sendv(s, NULL, 0, m, frames, n, err) == 0) {
        zmq_pollitem_t pi = {s, 0, ZMQ_POLLIN, 0};
        wire_parts_t parts = {0};
        if (zmq_poll(&pi, 1, 20000) == 1 && wire_recv(s, &parts, 0) == 0 && parts.n >= 1) {
            wire_msg_t r;
            if (wire_decode(zmq_msg_data(&parts.part[0]), zmq_msg_size(&parts.part[0]), NULL, &r, err) == 0) {
                t = r.type;
                snprintf(msg, cap, "%s", r.message ? r.message : "");
            }
            wire_msg_clear(&r);
        }
        wire_parts_close(&parts);
    } else {
        snprintf(msg, cap, "send: %s", err);
    }
    for (int i = 0; i < n; i++) zmq_msg_close(&frames[i]);
    zmq_close(s);
    zmq_ctx_term(ctx);
    return t;
}

int main(void) {
    setenv("OMP_NUM_THREADS", "1", 1);
    h_init(RT_WATCHDOG_S);
    char front[256], back[256];
    static char dir[2048], img1[2048], img2[2048], msgs[2100];
    snprintf(dir, sizeof dir, "%s", rt_model_dir(MODEL));
    snprintf(img1, sizeof img1, "%s", rt_image("tiny.png"));
    snprintf(img2, sizeof img2, "%s", rt_image("coffee_wide.jpg"));
    /* tiny.png (56193 bytes) and coffee_wide.jpg (53848) pass one by one; together they do not */
    /* liveness 50 x 200 ms: a loaded machine must not make a busy worker look dead */
    const char *bopts[] = {"--broker.heartbeat_ms=200", "--broker.liveness=50", "--broker.startup_grace_ms=0",
                           "--broker.max_job_image_bytes=150000", NULL};
    h_broker(NULL, NULL, bopts, front, back);
    const char *eopts[] = {"--encoder.wire_dtype=f32", "--broker.liveness=50", NULL};
    const char *wopts[] = {"--broker.liveness=50", NULL};
    rt_encoder(back, dir, eopts);
    rt_decoder(back, dir, wopts);
    const char *dopts[] = {"--model.name=" TEXT_ONLY_MODEL, "--broker.liveness=50", NULL};
    rt_decoder(back, dir, dopts); /* the same checkpoint under a name no encoder serves */

    hired_client_opts co = {.timeout_ms = 60000, .heartbeat_ms = 200};
    hired_client *c = hired_client_new(front, &co);
    CHECK(h_wait_workers(c, MODEL, 1, 1, 60000));
    CHECK(h_wait_workers(c, TEXT_ONLY_MODEL, 0, 1, 60000));

    /* 1. the same requests in process and through the wire */
    char req[5000], *ro, *re, *so, *se;
    snprintf(req, sizeof req,
             "--budget 0.5 --max-tokens 12 --system 'Be brief.' --user 'Hello.' --assistant 'Hi! Show me.' "
             "--image '%s' --image '%s' 'Compare the two pictures.'",
             img1, img2);
    same_answer("two images, multi-turn", front, dir, req);
    /* the comparison sees the images' order: the same request with the images swapped answers
     * differently in process (so a wire path that swapped or dropped one would show) */
    char args[7000];
    snprintf(args, sizeof args,
             "run --model '%s' --budget 0.5 --max-tokens 12 --system 'Be brief.' --user 'Hello.' --assistant "
             "'Hi! Show me.' --image '%s' --image '%s' 'Compare the two pictures.'",
             dir, img2, img1);
    CHECK_EQ_INT(rt_drive(args, 120, &ro, &re), 0);
    snprintf(args, sizeof args, "submit --broker %s --model %s %s", front, MODEL, req);
    CHECK_EQ_INT(rt_drive(args, 120, &so, &se), 0);
    CHECK_MSG(ro[0] && strcmp(ro, so) != 0, "the images swapped give the same answer '%s': the test cannot see order", ro);
    free(ro), free(re), free(so), free(se);
    snprintf(msgs, sizeof msgs, "%s", h_path("messages.json"));
    FILE *mf = fopen(msgs, "w");
    if (mf) {
        fprintf(mf, "[{\"role\": \"system\", \"content\": \"Answer in one word.\"}, {\"role\": \"user\", \"content\": "
                    "[{\"type\": \"image_url\", \"image_url\": {\"url\": \"file://%s\"}}, {\"type\": \"text\", "
                    "\"text\": \"What is it?\"}]}, {\"role\": \"assistant\", \"content\": \"A cup.\"}, {\"role\": "
                    "\"user\", \"content\": [{\"type\": \"text\", \"text\": \"And this?\"}, {\"type\": \"image\"}]}]",
                img1);
        fclose(mf);
    }
    snprintf(req, sizeof req, "--strategy hired --budget 0.3 --max-tokens 5 --messages '%s' --image '%s'", msgs, img2);
    same_answer("--messages, two images", front, dir, req);
    snprintf(req, sizeof req, "--max-tokens 6 --temperature 0.8 --seed 5 --system 'Be brief.' --user 'Hi' "
                              "--assistant 'Hello.' 'What now?'");
    same_answer("text only, multi-turn", front, dir, req);

    /* 2. a text-only job needs no encoder: served by the decoder-only model, whose image jobs
     * are refused naming the missing encoder */
    char *out, *errs;
    snprintf(args, sizeof args, "submit --broker %s --model %s --max-tokens 3 --user 'Hi' 'Again?'", front,
             TEXT_ONLY_MODEL);
    CHECK_EQ_INT(rt_drive(args, 120, &out, &errs), 0);
    CHECK_MSG(strstr(errs, " done (") != NULL, "text only without an encoder: %s", errs);
    free(out), free(errs);
    snprintf(args, sizeof args, "submit --broker %s --model %s --max-tokens 3 --image '%s' 'What?'", front,
             TEXT_ONLY_MODEL, img1);
    CHECK_EQ_INT(rt_drive(args, 120, &out, &errs), 1);
    CHECK_MSG(strstr(errs, "no encode worker serves it") != NULL, "image job without an encoder: %s", errs);
    free(out), free(errs);

    /* 3. bad input: clear errors, the processes keep serving */
    uint8_t *b1 = NULL, *b2 = NULL;
    size_t n1 = 0, n2 = 0;
    CHECK(rt_read(img1, &b1, &n1) == 0 && rt_read(img2, &b2, &n2) == 0);
    hired_image eight[8];
    hired_part parts[9];
    for (int i = 0; i < 8; i++) eight[i] = (hired_image){i % 2 ? b2 : b1, i % 2 ? n2 : n1}, parts[i].text = NULL;
    parts[8].text = "Describe them all.";
    hired_message um = {"user", parts, 9};
    hired_job j;
    hired_job_init(&j);
    j.model = MODEL;
    j.params.budget = 1.0;
    j.params.max_tokens = 2;
    j.messages = &um, j.n_messages = 1;
    j.images = eight, j.n_images = 8;
    j.id = "eight"; /* 8 files of ~55 KB: over broker.max_job_image_bytes together */
    char err[HIRED_ERR_LEN];
    h_result r[4];
    memset(r, 0, sizeof r);
    CHECK_MSG(hired_submit_err(c, &j, NULL, err) == 0, "%s", err);
    snprintf(r[0].id, sizeof r[0].id, "eight");
    CHECK(h_collect(c, r, 1, 60000) == 1);
    CHECK_MSG(r[0].final == HIRED_EVENT_ERROR && strstr(r[0].message, "together, limit 150000"),
              "8 images over broker.max_job_image_bytes: %d %s", r[0].final, r[0].message);

    /* image parts that do not match the placeholders: a literal <image> in the text */
    hired_part mism[2] = {{NULL}, {"<image> What differs?"}};
    hired_message mm = {"user", mism, 2};
    hired_image one = {b1, n1};
    j.messages = &mm, j.n_messages = 1, j.images = &one, j.n_images = 1, j.id = "mismatch";
    CHECK_MSG(hired_submit_err(c, &j, NULL, err) == 0, "%s", err);
    memset(r, 0, sizeof r);
    snprintf(r[0].id, sizeof r[0].id, "mismatch");
    CHECK(h_collect(c, r, 1, 60000) == 1);
    CHECK_MSG(r[0].final == HIRED_EVENT_ERROR && strstr(r[0].message, "2 <image> placeholders but the request carries 1"),
              "placeholder mismatch: %d %s", r[0].final, r[0].message);

    /* libhired refuses an empty conversation and 17 images before sending */
    j.messages = &mm, j.n_messages = 0, j.id = "empty";
    CHECK(hired_submit_err(c, &j, NULL, err) == HIRED_EINVAL && strstr(err, "1 to 256 messages"));
    hired_image many[17];
    hired_part mparts[17];
    for (int i = 0; i < 17; i++) many[i] = one, mparts[i].text = NULL;
    hired_message bm = {"user", mparts, 17};
    j.messages = &bm, j.n_messages = 1, j.images = many, j.n_images = 17, j.id = "seventeen";
    CHECK(hired_submit_err(c, &j, NULL, err) == HIRED_EINVAL && strstr(err, "0 to 16 images"));
    j.n_images = 16; /* 16 frames for 17 image parts */
    CHECK(hired_submit_err(c, &j, NULL, err) == HIRED_ERANGE && strstr(err, "17 image parts, limit 16"));

    /* the broker refuses the same raw: an empty conversation, a frame count that differs */
    wire_msg_t m;
    wire_msg_init(&m, WIRE_SUBMIT);
    strcpy(m.id, "raw1");
    strcpy(m.model, MODEL);
    strcpy(m.session, "00112233445566778899aabbccddeeff");
    wire_part_t wp[2] = {{NULL}, {"Q?"}};
    wire_message_t wm = {WIRE_ROLE_USER, 2, wp};
    wire_msg_set_messages(&m, &wm, 1);
    char msg[1100];
    CHECK(raw_submit(front, &m, 3, 100, msg, sizeof msg) == WIRE_ERROR);
    CHECK_MSG(strstr(msg, "3 image frames follow the header but the messages have 1 image part"), "raw: %s", msg);
    m.messages[0].n_parts = 0; /* a message of no parts is allowed; no frames then */
    CHECK(raw_submit(front, &m, 1, 100, msg, sizeof msg) == WIRE_ERROR);
    CHECK_MSG(strstr(msg, "1 image frame follows the header but the messages have 0"), "raw: %s", msg);
    m.messages[0].n_parts = 2;
    wire_msg_clear(&m);

    /* 4. more images than the model's context holds: 8 x 576 tokens > 4096 (small files, so the
     * byte limit lets them through; the encoder refuses once the kept tokens pass the context,
     * before the job reaches a decoder) */
    static const uint8_t png1[] = { /* a 2x2 RGB PNG (76 bytes) */
        0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52, 0x00, 0x00, 0x00,
        0x02, 0x00, 0x00, 0x00, 0x02, 0x08, 0x02, 0x00, 0x00, 0x00, 0xfd, 0xd4, 0x9a, 0x73, 0x00, 0x00, 0x00, 0x13, 0x49,
        0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0x68, 0x70, 0x50, 0x00, 0x22, 0x06, 0x81, 0x09, 0x1f, 0x80, 0x08, 0x00, 0x1c,
        0x5e, 0x04, 0xe1, 0x9b, 0x0a, 0x96, 0x38, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82};
    for (int i = 0; i < 8; i++) eight[i] = (hired_image){png1, sizeof png1};
    j.messages = &um, j.n_messages = 1, j.images = eight, j.n_images = 8, j.id = "context";
    CHECK_MSG(hired_submit_err(c, &j, NULL, err) == 0, "%s", err);
    memset(r, 0, sizeof r);
    snprintf(r[0].id, sizeof r[0].id, "context");
    CHECK(h_collect(c, r, 1, 120000) == 1);
    CHECK_MSG(r[0].final == HIRED_EVENT_ERROR && strstr(r[0].message, "the model's context is 4096") &&
                  strstr(r[0].message, "4608 visual tokens kept for the first 8 of 8 images"),
              "8 images over the context: %d %s", r[0].final, r[0].message);

    /* 5. still serving: two images in one job through libhired, kept tokens counted per image */
    hired_image two[2] = {{b1, n1}, {b2, n2}};
    hired_part tp[3] = {{NULL}, {NULL}, {"Which is brighter?"}};
    hired_message tm = {"user", tp, 3};
    j.messages = &tm, j.n_messages = 1, j.images = two, j.n_images = 2, j.id = "after";
    j.params.budget = 0.25;
    CHECK_MSG(hired_submit_err(c, &j, NULL, err) == 0, "%s", err);
    memset(r, 0, sizeof r);
    snprintf(r[0].id, sizeof r[0].id, "after");
    CHECK(h_collect(c, r, 1, 60000) == 1);
    CHECK_MSG(r[0].final == HIRED_EVENT_DONE, "after the bad input: %d %s", r[0].final, r[0].message);
    CHECK_MSG(r[0].visual_total == 2 * 576 && r[0].visual_kept == 2 * 144, "kept %u of %u (r = 0.25 of 576, twice)",
              r[0].visual_kept, r[0].visual_total);
    free(b1), free(b2);
    hired_client_destroy(&c);
    CHECK_EQ_INT(rt_cleanup(), 0);
    return test_summary();
}
