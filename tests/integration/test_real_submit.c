/* test_real_submit.c — `hired submit` and `hired status` (client/cmd_submit.c, the real `hired`
 * binary) against the real broker and workers on the tiny LLaVA-1.5 model:
 * submit streams exactly the answer `hired run` gives (stdout holds the answer and a newline,
 * the summary goes to stderr, exit 0); a corrupt image ends with the encoder's ERROR on stderr
 * and exit 1; a usage error (no question, a budget out of range) exits 2; status prints the pools and counters, and --json the
 * broker's STATUS JSON, whose 64-bit epoch is a decimal string equal, digit for digit, to the
 * epoch the broker's HEARTBEAT carries (a JSON number would have lost its low bits). A
 * malformed endpoint is refused at once and an unreachable one after --connect-timeout-ms
 * (exit 1, the reason on stderr). A `hired submit` killed (-9) while its answer streams has
 * its job cancelled at the broker after broker.client_grace_ms; one interrupted (SIGINT) says
 * goodbye, and its job is cancelled at once. (The decoder's link is throttled by a proxy so that
 * a long answer is still streaming when the client goes.) */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include <zmq.h>

#include "faultproxy.h"
#include "test.h"
#include "test_real_util.h"
#include "wire.h"

#define MODEL "llava15-tiny"
#define DRIVER "client/hired"

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
    /* liveness 20 s: the throttled decoder link delays the decoder's heartbeats too */
    const char *bopts[] = {"--broker.heartbeat_ms=200", "--broker.liveness=100", "--broker.client_grace_ms=3000", NULL};
    h_broker(NULL, NULL, bopts, front, back);
    char dep[64];
    fp_t *px = fp_start(back, dep);
    CHECK(px != NULL);
    static char dir[2048], image[2048];
    snprintf(dir, sizeof dir, "%s", rt_model_dir(MODEL));
    snprintf(image, sizeof image, "%s", rt_image("coffee_wide.jpg"));
    const char *wopts[] = {"--worker.drain_ms=2000", NULL};
    rt_encoder(back, dir, wopts);
    rt_decoder(dep, dir, wopts);

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
    rt_model_t *m = rt_model_load(dir, err);
    CHECK_MSG(m != NULL, "%s", err);
    if (m) CHECK(rt_expect(m, img, n, q, &p, NULL, WIRE_DTYPE_F16, expect, sizeof expect, NULL) == 0);
    rt_model_destroy(&m);
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
    CHECK_EQ_INT(rt_drive(args, 60, &out, &errs), 0);
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
    CHECK_EQ_INT(rt_drive(args, 60, &out, &errs), 0);
    CHECK_MSG(!strcmp(out, want), "stdout '%s' want '%s'", out, want);
    free(out);
    free(errs);

    /* a corrupt image: the encoder's error, exit 1 */
    char junk[700];
    snprintf(junk, sizeof junk, "%s", h_path("junk.png"));
    FILE *f = fopen(junk, "w");
    if (f) fputs("\x89PNG\r\n\x1a\n garbage", f), fclose(f);
    snprintf(args, sizeof args, "submit --broker %s --model %s --image '%s' 'What?'", front, MODEL, junk);
    CHECK_EQ_INT(rt_drive(args, 60, &out, &errs), 1);
    CHECK_MSG(strstr(errs, "failed") && strstr(errs, "image"), "stderr: %s", errs);
    free(out);
    free(errs);

    /* usage errors */
    snprintf(args, sizeof args, "submit --broker %s --model %s --image '%s'", front, MODEL, image); /* no question */
    CHECK_EQ_INT(rt_drive(args, 60, &out, &errs), 2);
    CHECK_MSG(strstr(errs, "a question (or --user / --messages) is required") != NULL, "stderr: %s", errs);
    free(out);
    free(errs);
    snprintf(args, sizeof args, "submit --broker %s --model %s --image '%s' --budget 2 'q'", front, MODEL, image);
    CHECK_EQ_INT(rt_drive(args, 60, &out, &errs), 2);
    CHECK_MSG(strstr(errs, "--budget") != NULL, "stderr: %s", errs);
    free(out);
    free(errs);

    /* status, pretty and JSON */
    snprintf(args, sizeof args, "status --broker %s", front);
    CHECK_EQ_INT(rt_drive(args, 60, &out, &errs), 0);
    CHECK_MSG(strstr(out, "pools:") && strstr(out, MODEL) && strstr(out, "encode") && strstr(out, "decode") &&
                  strstr(out, "queues:") && strstr(out, "counters:") && strstr(out, "completed 2"),
              "status:\n%s", out);
    free(out);
    free(errs);
    snprintf(args, sizeof args, "status --json --broker %s", front);
    CHECK_EQ_INT(rt_drive(args, 60, &out, &errs), 0);
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
    /* the decoder's own batch and KV blocks (its HEARTBEATs after its first step), pretty and in
     * JSON; polled: a heartbeat may not have come yet */
    double kv_total = 0;
    bool pretty_kv = false;
    for (int tries = 0; tries < 300 && !(kv_total > 0 && pretty_kv); tries++) {
        if (tries) usleep(100 * 1000);
        snprintf(args, sizeof args, "status --json --broker %s", front);
        if (rt_drive(args, 60, &out, &errs) == 0 && (root = cJSON_Parse(out))) {
            const cJSON *pool;
            cJSON_ArrayForEach(pool, cJSON_GetObjectItem(root, "pools")) {
                const cJSON *svc = cJSON_GetObjectItem(pool, "service"), *w;
                if (!cJSON_IsString(svc) || strcmp(svc->valuestring, "decode")) continue;
                cJSON_ArrayForEach(w, cJSON_GetObjectItem(pool, "workers")) {
                    const cJSON *t = cJSON_GetObjectItem(w, "kv_blocks_total"), *u = cJSON_GetObjectItem(w, "kv_blocks_used");
                    if (cJSON_IsNumber(t) && cJSON_IsNumber(u) && cJSON_IsNumber(cJSON_GetObjectItem(w, "batch")) &&
                        u->valuedouble <= t->valuedouble)
                        kv_total = t->valuedouble;
                }
            }
            cJSON_Delete(root);
        }
        free(out);
        free(errs);
        snprintf(args, sizeof args, "status --broker %s", front);
        if (rt_drive(args, 60, &out, &errs) == 0) pretty_kv = strstr(out, "KV blocks") != NULL;
        free(out);
        free(errs);
    }
    CHECK_MSG(kv_total > 0, "no decoder reported its KV blocks in status");
    CHECK_MSG(pretty_kv, "status does not print the decoder's KV blocks");
    /* $HIRED_MODEL is a model directory (as for scripts/run-main.sh): without --model, submit
     * asks for the name the workers serve that directory under, its last component */
    char withslash[2100];
    snprintf(withslash, sizeof withslash, "%s/", dir);
    setenv("HIRED_MODEL", withslash, 1);
    snprintf(args, sizeof args, "submit --broker %s --image '%s' --max-tokens 2 'q'", front, image);
    CHECK_EQ_INT(rt_drive(args, 60, &out, &errs), 0);
    CHECK_MSG(strstr(errs, " done (") != NULL, "stderr: %s", errs);
    free(out);
    free(errs);
    unsetenv("HIRED_MODEL");

    /* no broker there: status gives up with exit 1 */
    CHECK_EQ_INT(rt_drive("status --timeout-ms 300 --broker tcp://127.0.0.1:1", 60, &out, &errs), 1);
    free(out);
    free(errs);

    /* endpoints: malformed (at once), unreachable (after the connect timeout) */
    snprintf(args, sizeof args, "submit --broker localhost:5555 --model %s --image '%s' 'q'", MODEL, image);
    CHECK_EQ_INT(rt_drive(args, 60, &out, &errs), 1);
    CHECK_MSG(strstr(errs, "'localhost:5555' is not usable") && strstr(errs, "tcp://"), "stderr: %s", errs);
    free(out);
    free(errs);
    snprintf(args, sizeof args, "submit --broker tcp://127.0.0.1:1 --connect-timeout-ms 500 --model %s --image '%s' 'q'",
             MODEL, image);
    CHECK_EQ_INT(rt_drive(args, 60, &out, &errs), 1);
    CHECK_MSG(strstr(errs, "no answer from the broker at tcp://127.0.0.1:1 within 500 ms"), "stderr: %s", errs);
    free(out);
    free(errs);

    /* a client that goes away while its answer streams: killed (-9), then interrupted */
    fp_rate(px, FP_UP, 5000);
    c = hired_client_new(front, &co);
    for (int k = 0; k < 2; k++) {
        int sig = k ? SIGINT : SIGKILL;
        char o[600];
        snprintf(o, sizeof o, "%s", h_path(k ? "int.out" : "kill.out"));
        char *argv[] = {(char *)rt_bin(DRIVER), "submit", "--broker", front, "--model", MODEL, "--image", image,
                        "--max-tokens", "2000", "Describe the picture in detail.", NULL};
        long abandoned = h_status_counter(c, "abandoned");
        pid_t pid = h_spawn(argv, o, 0);
        bool streaming = false;
        for (int w = 0; w < 30000 && !streaming; w += 50) {
            h_sleep_ms(50);
            char *txt = rt_slurp(o);
            streaming = txt && strlen(txt) > 20; /* some of the answer is out */
            free(txt);
        }
        CHECK_MSG(streaming, "hired submit never started streaming (signal %d)", sig);
        CHECK_EQ_INT(h_status_counter(c, "active_jobs"), 1);
        kill(pid, sig);
        int st = h_wait(pid, 10000);
        CHECK_EQ_INT(st, k ? 1 : 128 + SIGKILL);
        long now = abandoned;
        int waited = 0;
        for (; waited < 15000 && now <= abandoned; waited += 100) {
            h_sleep_ms(100);
            now = h_status_counter(c, "abandoned");
        }
        fprintf(stderr, "hired submit %s: its job cancelled at the broker after ~%d ms\n", k ? "interrupted" : "killed",
                waited);
        CHECK_EQ_INT(now, abandoned + 1);
        CHECK_EQ_INT(h_status_counter(c, "active_jobs"), 0);
        if (k) {
            char *txt = rt_slurp(o);
            CHECK_MSG(txt && strstr(txt, "interrupted"), "output: %s", txt ? txt : "");
            free(txt);
        }
    }
    hired_client_destroy(&c);
    fp_stop(&px);
    CHECK_EQ_INT(rt_cleanup(), 0);
    return test_summary();
}
