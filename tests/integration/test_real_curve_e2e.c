/* test_real_curve_e2e.c — CURVE through the real processes (docs/protocol.md §1): hired-broker
 * with curve.server_cert + curve.authorized_keys + curve.worker_keys, a real hired-encoder and hired-decoder on the
 * tiny LLaVA-1.5 model with authorised worker certificates, and libhired clients:
 *   authorised client key            -> ACCEPTED, DONE with the text `hired run` gives
 *   client key not authorised        -> no service: no ACCEPTED, no TOKEN, no DONE; the job
 *                                       ends only by its local deadline (ERROR HIRED_ETIMEOUT)
 *   client without CURVE             -> the same
 *   worker key not authorised,
 *   a client's key on the worker port -> never joins the pool (clients and workers are
 *                                       authorised from separate directories)
 *   afterwards                       -> the authorised client is still served (and `hired
 *                                       status` with --curve-server-key/--curve-cert answers,
 *                                       without them it gets no answer)
 * The broker saw none of the refused SUBMITs (its "submitted" counter counts the authorised
 * ones only). Skipped (77) when libzmq lacks CURVE. Certificates are made here with czmq. */
#include <cjson/cJSON.h>
#include <czmq.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "test_real_util.h"
#include "wire.h"

#define MODEL "llava15-tiny"

/* Submits one job on a fresh client (curve_cert NULL: plain TCP) and collects its events for up
 * to wait_ms. The client's deadline is deadline_ms, so a job nobody answers ends locally. */
static void run_job(const char *front, const char *server_pub, const char *curve_cert, const uint8_t *img,
                    size_t n, const hired_params *p, int deadline_ms, int wait_ms, h_result *r) {
    hired_client_opts co = {.timeout_ms = deadline_ms, .heartbeat_ms = 200,
                            .curve_server_key = curve_cert ? server_pub : NULL, .curve_client_cert = curve_cert};
    hired_client *c = hired_client_new(front, &co);
    CHECK(c != NULL);
    memset(r, 0, sizeof *r);
    if (!c) return;
    CHECK(rt_submit(c, MODEL, img, n, "What is in the picture?", p, r) == 0);
    h_collect(c, r, 1, wait_ms);
    hired_client_destroy(&c);
}

static void check_refused(const h_result *r, const char *who) {
    CHECK_MSG(r->accepted == 0 && r->tokens == 0 && r->final != HIRED_EVENT_DONE,
              "%s: accepted %d, tokens %d, final %d", who, r->accepted, r->tokens, r->final);
    CHECK_MSG(r->final == HIRED_EVENT_ERROR && r->code == HIRED_ETIMEOUT, "%s: final %d code %d '%s'", who, r->final,
              r->code, r->message);
}

int main(void) {
    if (!zmq_has("curve")) {
        fprintf(stderr, "libzmq without CURVE: skipped\n");
        return 77;
    }
    setenv("OMP_NUM_THREADS", "1", 1);
    h_init(RT_WATCHDOG_S);
    static char keys[600], auth[700], wauth[700], cmd[2000];
    snprintf(keys, sizeof keys, "%s", h_path("keys"));
    snprintf(auth, sizeof auth, "%s/authorized", keys);
    snprintf(wauth, sizeof wauth, "%s/workers", keys);
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' '%s'", auth, wauth);
    CHECK(system(cmd) == 0);
    CHECK(rt_make_cert(keys, "broker", NULL) == 0);
    CHECK(rt_make_cert(keys, "client", auth) == 0);
    CHECK(rt_make_cert(keys, "worker", wauth) == 0);
    CHECK(rt_make_cert(keys, "intruder", NULL) == 0);
    static char broker_pub[800], client_sec[800], intruder_sec[800];
    snprintf(broker_pub, sizeof broker_pub, "%s/broker", keys);
    snprintf(client_sec, sizeof client_sec, "%s/client_secret", keys);
    snprintf(intruder_sec, sizeof intruder_sec, "%s/intruder_secret", keys);

    /* the broker with CURVE on, the workers with authorised certificates */
    static char o_cert[900], o_auth[900], o_wauth[900], o_skey[900], o_wcert[900], o_icert[900], o_ccert[900];
    snprintf(o_cert, sizeof o_cert, "--curve.server_cert=%s/broker_secret", keys);
    snprintf(o_auth, sizeof o_auth, "--curve.authorized_keys=%s", auth);
    snprintf(o_wauth, sizeof o_wauth, "--curve.worker_keys=%s", wauth);
    snprintf(o_ccert, sizeof o_ccert, "--curve.cert=%s", client_sec);
    snprintf(o_skey, sizeof o_skey, "--curve.server_key=%s", broker_pub);
    snprintf(o_wcert, sizeof o_wcert, "--curve.cert=%s/worker_secret", keys);
    snprintf(o_icert, sizeof o_icert, "--curve.cert=%s", intruder_sec);
    char front[256], back[256];
    const char *bopts[] = {"--broker.heartbeat_ms=200", o_cert, o_auth, o_wauth, NULL};
    h_broker(NULL, NULL, bopts, front, back);
    static char dir[2048];
    snprintf(dir, sizeof dir, "%s", rt_model_dir(MODEL));
    const char *wopts[] = {"--worker.drain_ms=2000", "--worker.warmup=false", o_skey, o_wcert, NULL};
    rt_encoder(back, dir, wopts);
    rt_decoder(back, dir, wopts);
    const char *iopts[] = {"--worker.drain_ms=0", "--worker.warmup=false", o_skey, o_icert, NULL};
    rt_encoder(back, dir, iopts); /* an encoder whose key is not authorised */
    const char *copts[] = {"--worker.drain_ms=0", "--worker.warmup=false", o_skey, o_ccert, NULL};
    rt_decoder(back, dir, copts); /* a decoder with a client's key: refused on the worker port */

    /* the answer, in-process */
    uint8_t *img = NULL;
    size_t n = 0;
    CHECK(rt_read(rt_image("tiny.png"), &img, &n) == 0);
    hired_job j;
    hired_job_init(&j);
    hired_params p = j.params;
    p.max_tokens = 8;
    static char expect[4096];
    char err[HIRED_ERR_LEN];
    rt_model_t *m = rt_model_load(dir, err);
    CHECK_MSG(m != NULL, "%s", err);
    if (m) CHECK(rt_expect(m, img, n, "What is in the picture?", &p, NULL, WIRE_DTYPE_F16, expect, sizeof expect, NULL) == 0);
    rt_model_destroy(&m);

    /* the authorised client sees both authorised workers (and only them) and is served */
    hired_client_opts co = {.timeout_ms = 20000, .heartbeat_ms = 200, .curve_server_key = broker_pub,
                            .curve_client_cert = client_sec};
    hired_client *c = hired_client_new(front, &co);
    CHECK(c != NULL);
    CHECK_MSG(h_wait_workers(c, MODEL, 1, 1, 30000), "authorised workers did not register through CURVE");
    h_result r;
    CHECK(rt_submit(c, MODEL, img, n, "What is in the picture?", &p, &r) == 0);
    CHECK_EQ_INT(h_collect(c, &r, 1, 20000), 1);
    CHECK_MSG(r.final == HIRED_EVENT_DONE && r.accepted == 1 && !strcmp(r.done_text, expect) && !strcmp(r.text, expect),
              "authorised client: final %d '%s' / '%s', want '%s'", r.final, r.message, r.done_text, expect);

    /* an unauthorised key and a plain client get no service at all */
    h_result x;
    run_job(front, broker_pub, intruder_sec, img, n, &p, 1500, 3000, &x);
    check_refused(&x, "unauthorised client");
    run_job(front, broker_pub, NULL, img, n, &p, 1500, 3000, &x);
    check_refused(&x, "plain client");
    /* a client naming a missing certificate is refused by libhired itself */
    hired_client_opts bad = {.curve_server_key = broker_pub, .curve_client_cert = "/nonexistent/cert_secret"};
    CHECK(hired_client_new(front, &bad) == NULL);

    /* the broker kept serving the authorised client, and never saw the refused jobs; the
     * intruder encoder never joined the pool */
    CHECK(h_wait_workers(c, MODEL, 1, 1, 1000));
    CHECK(rt_submit(c, MODEL, img, n, "What is in the picture?", &p, &r) == 0);
    CHECK_EQ_INT(h_collect(c, &r, 1, 20000), 1);
    CHECK_MSG(r.final == HIRED_EVENT_DONE && !strcmp(r.done_text, expect), "second authorised job: final %d '%s'",
              r.final, r.message);
    CHECK_EQ_INT(h_status_counter(c, "submitted"), 2);
    /* the refusals happened: the intruder encoder and the client-keyed decoder kept trying */
    char *js = NULL;
    CHECK(hired_status(c, &js) == 0);
    cJSON *root = js ? cJSON_Parse(js) : NULL;
    cJSON *refused = cJSON_GetObjectItem(cJSON_GetObjectItem(root, "curve"), "refused");
    CHECK_MSG(cJSON_IsNumber(refused) && refused->valuedouble >= 4, "curve.refused %g",
              cJSON_IsNumber(refused) ? refused->valuedouble : -1);
    cJSON_Delete(root);
    free(js);
    hired_client_destroy(&c);

    /* `hired status` with and without the CURVE options */
    char a_skey[900], a_cert[900];
    snprintf(a_skey, sizeof a_skey, "%s", broker_pub);
    snprintf(a_cert, sizeof a_cert, "%s", client_sec);
    const char *st_ok[] = {"status", "--broker", front, "--json", "--curve-server-key", a_skey, "--curve-cert", a_cert,
                           NULL};
    CHECK_EQ_INT(rt_run("client/hired", st_ok, h_path("status.txt"), 15000), 0);
    const char *st_plain[] = {"status", "--broker", front, "--timeout-ms", "500", NULL};
    CHECK_EQ_INT(rt_run("client/hired", st_plain, h_path("status2.txt"), 15000), 1);

    free(img);
    CHECK_EQ_INT(rt_cleanup(), 0);
    return test_summary();
}
