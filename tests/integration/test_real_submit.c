/* test_real_submit.c — `hired submit` and `hired status` (client/cmd_submit.c, the real `hired`
 * binary) against the real broker and workers on the tiny LLaVA-1.5 model:
 * submit streams exactly the answer `hired run` gives (stdout holds the answer and a newline,
 * the summary goes to stderr, exit 0); a corrupt image ends with the encoder's ERROR on stderr
 * and exit 1; a usage error exits 2; status prints the pools and counters, and --json the
 * broker's STATUS JSON, whose 64-bit epoch is a decimal string equal, digit for digit, to the
 * epoch the broker's HEARTBEAT carries (a JSON number would have lost its low bits). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include <zmq.h>

#include "test.h"
#include "test_real_util.h"
#include "wire.h"

#define MODEL "llava15-tiny"
#define DRIVER "client/hired"

/* The file as a string; "" when it cannot be read. */
static char *slurp(const char *path) {
    char *s = rt_slurp(path);
    return s ? s : calloc(1, 1);
}

/* Runs `hired` with stdout and stderr to separate files (through sh). */
static int drive(const char *args, char **out, char **errs) {
    char o[600], e[600], cmd[4096];
    snprintf(o, sizeof o, "%s", h_path("stdout.txt"));
    snprintf(e, sizeof e, "%s", h_path("stderr.txt"));
    snprintf(cmd, sizeof cmd, "'%s' %s > '%s' 2> '%s'", rt_bin(DRIVER), args, o, e);
    int st = system(cmd);
    *out = slurp(o);
    *errs = slurp(e);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The broker's epoch as the protocol carries it: a client HEARTBEAT on the frontend is answered
 * with a HEARTBEAT holding the epoch (docs/protocol.md). 0 when no answer came in 10 s. */
static uint64_t heartbeat_epoch(const char *front) {
    void *ctx = zmq_ctx_new(), *s = zmq_socket(ctx, ZMQ_DEALER);
    int linger = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    uint64_t epoch = 0;
    char err[HIRED_ERR_LEN];
    wire_msg_t m;
    wire_msg_init(&m, WIRE_HEARTBEAT);
    if (zmq_connect(s, front) == 0 && wire_send(s, NULL, 0, &m, NULL, err) == 0) {
        zmq_pollitem_t pi = {s, 0, ZMQ_POLLIN, 0};
        wire_parts_t parts = {0};
        if (zmq_poll(&pi, 1, 10000) == 1 && wire_recv(s, &parts, 0) == 0 && parts.n >= 1) {
            wire_msg_t r;
            if (wire_decode(zmq_msg_data(&parts.part[0]), zmq_msg_size(&parts.part[0]), NULL, &r, err) == 0 &&
                r.type == WIRE_HEARTBEAT)
                epoch = r.epoch;
            wire_msg_clear(&r);
        }
        wire_parts_close(&parts);
    }
    wire_msg_clear(&m);
    zmq_close(s);
    zmq_ctx_term(ctx);
    return epoch;
}

int main(void) {
    setenv("OMP_NUM_THREADS", "1", 1);
    h_init(RT_WATCHDOG_S);
    char front[256], back[256];
    const char *bopts[] = {"--broker.heartbeat_ms=200", NULL};
    h_broker(NULL, NULL, bopts, front, back);
    static char dir[2048], image[2048];
    snprintf(dir, sizeof dir, "%s", rt_model_dir(MODEL));
    snprintf(image, sizeof image, "%s", rt_image("coffee_wide.jpg"));
    const char *wopts[] = {"--worker.drain_ms=2000", NULL};
    rt_encoder(back, dir, wopts);
    rt_decoder(back, dir, wopts);

    const char *q = "What is in the picture?";
    hired_job j;
    hired_job_init(&j);
    hired_params p = j.params;
    p.max_tokens = 12;
    p.strategy = "spatial";
    p.budget = 0.5;
    p.temperature = 0.7;
    p.seed = 31;
    static char expect[1024];
    uint8_t *img = NULL;
    size_t n = 0;
    char err[HIRED_ERR_LEN];
    CHECK(rt_read(image, &img, &n) == 0);
    gen_model_t *m = gen_model_load(dir, err);
    CHECK_MSG(m != NULL, "%s", err);
    if (m) CHECK(rt_expect(m, img, n, q, &p, NULL, WIRE_DTYPE_F16, expect, sizeof expect, NULL) == 0);
    gen_model_destroy(&m);
    free(img);

    hired_client_opts co = {.timeout_ms = 20000, .heartbeat_ms = 200};
    hired_client *c = hired_client_new(front, &co);
    CHECK(h_wait_workers(c, MODEL, 1, 1, 30000));
    hired_client_destroy(&c);

    char args[3000], *out, *errs;
    snprintf(args, sizeof args,
             "submit --broker %s --model %s --image '%s' --strategy spatial --budget 0.5 --temperature 0.7 "
             "--seed 31 --max-tokens 12 '%s'",
             front, MODEL, image, q);
    CHECK_EQ_INT(drive(args, &out, &errs), 0);
    char want[1100];
    snprintf(want, sizeof want, "%s\n", expect);
    CHECK_MSG(!strcmp(out, want), "stdout '%s' want '%s'", out, want);
    CHECK_MSG(strstr(errs, "done") && strstr(errs, "vit"), "stderr: %s", errs);
    free(out);
    free(errs);

    /* the same without streaming: the text arrives with DONE */
    snprintf(args, sizeof args,
             "submit --no-stream --broker %s --model %s --image '%s' --strategy spatial --budget 0.5 "
             "--temperature 0.7 --seed 31 --max-tokens 12 '%s'",
             front, MODEL, image, q);
    CHECK_EQ_INT(drive(args, &out, &errs), 0);
    CHECK_MSG(!strcmp(out, want), "stdout '%s' want '%s'", out, want);
    free(out);
    free(errs);

    /* a corrupt image: the encoder's error, exit 1 */
    char junk[700];
    snprintf(junk, sizeof junk, "%s", h_path("junk.png"));
    FILE *f = fopen(junk, "w");
    if (f) fputs("\x89PNG\r\n\x1a\n garbage", f), fclose(f);
    snprintf(args, sizeof args, "submit --broker %s --model %s --image '%s' 'What?'", front, MODEL, junk);
    CHECK_EQ_INT(drive(args, &out, &errs), 1);
    CHECK_MSG(strstr(errs, "failed") && strstr(errs, "image"), "stderr: %s", errs);
    free(out);
    free(errs);

    /* usage errors */
    snprintf(args, sizeof args, "submit --broker %s --model %s 'no image'", front, MODEL);
    CHECK_EQ_INT(drive(args, &out, &errs), 2);
    free(out);
    free(errs);
    snprintf(args, sizeof args, "submit --broker %s --model %s --image '%s' --budget 2 'q'", front, MODEL, image);
    CHECK_EQ_INT(drive(args, &out, &errs), 2);
    CHECK_MSG(strstr(errs, "--budget") != NULL, "stderr: %s", errs);
    free(out);
    free(errs);

    /* status, pretty and JSON */
    snprintf(args, sizeof args, "status --broker %s", front);
    CHECK_EQ_INT(drive(args, &out, &errs), 0);
    CHECK_MSG(strstr(out, "pools:") && strstr(out, MODEL) && strstr(out, "encode") && strstr(out, "decode") &&
                  strstr(out, "queues:") && strstr(out, "counters:") && strstr(out, "completed 2"),
              "status:\n%s", out);
    free(out);
    free(errs);
    snprintf(args, sizeof args, "status --json --broker %s", front);
    CHECK_EQ_INT(drive(args, &out, &errs), 0);
    cJSON *root = cJSON_Parse(out);
    CHECK_MSG(root && cJSON_GetObjectItem(root, "counters") && cJSON_GetObjectItem(root, "pools"), "json: %s", out);
    /* the epoch, exactly: a decimal string equal to what HEARTBEAT carries */
    const cJSON *ep = cJSON_GetObjectItemCaseSensitive(root, "epoch");
    uint64_t hb = heartbeat_epoch(front);
    char hb_text[24];
    snprintf(hb_text, sizeof hb_text, "%llu", (unsigned long long)hb);
    CHECK_MSG(hb != 0, "no HEARTBEAT answer from %s", front);
    CHECK_MSG(cJSON_IsString(ep) && !strcmp(ep->valuestring, hb_text), "status epoch %s, HEARTBEAT epoch %s",
              cJSON_IsString(ep) ? ep->valuestring : "(not a string)", hb_text);
    cJSON_Delete(root);
    free(out);
    free(errs);
    /* $HIRED_MODEL is a model directory (as for scripts/run-main.sh): without --model, submit
     * asks for the name the workers serve that directory under, its last component */
    char withslash[2100];
    snprintf(withslash, sizeof withslash, "%s/", dir);
    setenv("HIRED_MODEL", withslash, 1);
    snprintf(args, sizeof args, "submit --broker %s --image '%s' --max-tokens 2 'q'", front, image);
    CHECK_EQ_INT(drive(args, &out, &errs), 0);
    CHECK_MSG(strstr(errs, " done (") != NULL, "stderr: %s", errs);
    free(out);
    free(errs);
    unsetenv("HIRED_MODEL");

    /* no broker there: status gives up with exit 1 */
    CHECK_EQ_INT(drive("status --timeout-ms 300 --broker tcp://127.0.0.1:1", &out, &errs), 1);
    free(out);
    free(errs);

    CHECK_EQ_INT(rt_cleanup(), 0);
    return test_summary();
}
