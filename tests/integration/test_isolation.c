/* test_isolation.c — no client can see or touch another client's job (docs/protocol.md §4,
 * "Client -> broker", and §5 "Guarantees"), with the real hired-broker and fake workers, first
 * without CURVE (a job belongs to its client's session) and then with CURVE (to its key).
 * Alice submits through libhired; Mallory speaks the protocol by hand on her own connection:
 *   CANCEL, RESUME, ACK of Alice's job id    -> the ERROR an unknown id gets (HIRED_ESTALE), or
 *                                              nothing; no TOKEN of Alice's ever reaches her
 *   STATUS                                   -> counts, but not Alice's id
 *   SUBMIT of Alice's job id                 -> Mallory's own new job (not attached to Alice's)
 *   Alice's session with Mallory's key       -> refused (CURVE)
 * Alice's job still ends with exactly her text, and nothing was cancelled or attached. Then
 * one owner's rules: a reused id with another image is refused; a second live session of the
 * same key cannot take a job away from the first (ERROR HIRED_EBUSY), but takes it over once
 * the first has gone quiet, and gets the whole stream; an operator key sees every job. */
#include <czmq.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "clock.h"
#include "curve.h"
#include "test.h"
#include "test_real_util.h"
#include "wire.h"

#define MODEL "iso-model"

// ---- a client that speaks the protocol by hand ------------------------------------------------

typedef struct {
    void *ctx, *s;
    char session[WIRE_MAX_SESSION + 1];
} raw_t;

static void raw_open(raw_t *r, const char *ep, const curve_cfg_t *cv, const char *session) {
    r->ctx = zmq_ctx_new();
    r->s = zmq_socket(r->ctx, ZMQ_DEALER);
    char err[HIRED_ERR_LEN] = "";
    CHECK(wire_sock_setup(r->s, NULL) == 0);
    CHECK_MSG(curve_apply_client(r->s, cv, err) == 0, "%s", err);
    CHECK(zmq_connect(r->s, ep) == 0);
    snprintf(r->session, sizeof r->session, "%s", session);
}

static void raw_close(raw_t *r) {
    zmq_close(r->s);
    zmq_ctx_term(r->ctx);
}

/* Sends a client message (SUBMIT when prompt is given, with img as its image). */
static void raw_send(raw_t *r, wire_type_t t, const char *id, uint32_t seq, const char *prompt, const char *img) {
    wire_msg_t m;
    wire_msg_init(&m, t);
    if (id) snprintf(m.id, sizeof m.id, "%s", id);
    snprintf(m.session, sizeof m.session, "%s", r->session);
    m.seq = seq;
    zmq_msg_t payload;
    if (prompt) {
        snprintf(m.model, sizeof m.model, "%s", MODEL);
        wire_msg_set_prompt(&m, prompt);
        zmq_msg_init_size(&payload, strlen(img));
        memcpy(zmq_msg_data(&payload), img, strlen(img));
    }
    char err[HIRED_ERR_LEN];
    CHECK_MSG(wire_send(r->s, NULL, 0, &m, prompt ? &payload : NULL, err) == 0, "%s", err);
    if (prompt) zmq_msg_close(&payload);
    wire_msg_clear(&m);
}

/* The next message within ms into m (0), or HIRED_ETIMEOUT. *json (may be NULL) receives a
 * STATUS_REPLY's text (caller frees). */
static int raw_recv(raw_t *r, int ms, wire_msg_t *m, char **json) {
    wire_msg_init(m, WIRE_NONE);
    zmq_pollitem_t it = {r->s, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&it, 1, ms) <= 0) return HIRED_ETIMEOUT;
    wire_parts_t p;
    if (wire_recv(r->s, &p, 0)) return HIRED_ETIMEOUT;
    char err[HIRED_ERR_LEN];
    int rc = p.n ? wire_decode(zmq_msg_data(&p.part[0]), zmq_msg_size(&p.part[0]), NULL, m, err) : HIRED_EPROTO;
    if (!rc && json && m->type == WIRE_STATUS_REPLY && p.n > 1) {
        size_t n = zmq_msg_size(&p.part[1]);
        *json = malloc(n + 1);
        memcpy(*json, zmq_msg_data(&p.part[1]), n);
        (*json)[n] = 0;
    }
    wire_parts_close(&p);
    return rc;
}

/* Reads messages for up to ms; returns the first of type t (its code/message/text in *out), or
 * WIRE_NONE. Counts every TOKEN that names `watch` into *seen (may be NULL). */
static wire_type_t raw_until(raw_t *r, wire_type_t t, int ms, wire_msg_t *out, const char *watch, int *seen) {
    int64_t end = clock_now_ms() + ms;
    for (;;) {
        int64_t left = end - clock_now_ms();
        if (left <= 0) return WIRE_NONE;
        wire_msg_t m;
        if (raw_recv(r, (int)left, &m, NULL)) {
            wire_msg_clear(&m);
            continue;
        }
        if (seen && watch && m.type == WIRE_TOKEN && !strcmp(m.id, watch)) (*seen)++;
        if (m.type == t) {
            *out = m;
            return t;
        }
        wire_msg_clear(&m);
    }
}

static char *raw_status(raw_t *r) {
    raw_send(r, WIRE_STATUS, NULL, 0, NULL, NULL);
    char *json = NULL;
    for (int i = 0; i < 200 && !json; i++) { /* up to 20 s on a loaded machine */
        wire_msg_t m;
        raw_recv(r, 100, &m, &json);
        wire_msg_clear(&m);
    }
    return json;
}

/* Mallory against Alice's job id: nothing she does reaches it. */
static void mallory(raw_t *mal, const char *alice_id) {
    wire_msg_t m;
    int seen = 0;
    raw_send(mal, WIRE_CANCEL, alice_id, 0, NULL, NULL);
    CHECK(raw_until(mal, WIRE_ERROR, 15000, &m, alice_id, &seen) == WIRE_ERROR);
    CHECK_MSG(m.code == HIRED_ESTALE && m.message && strstr(m.message, "unknown job id"), "CANCEL: %d '%s'", m.code,
              m.message);
    wire_msg_clear(&m);
    raw_send(mal, WIRE_RESUME, alice_id, 0, NULL, NULL);
    CHECK(raw_until(mal, WIRE_ERROR, 15000, &m, alice_id, &seen) == WIRE_ERROR && m.code == HIRED_ESTALE);
    wire_msg_clear(&m);
    raw_send(mal, WIRE_ACK, alice_id, 0, NULL, NULL);
    char *json = raw_status(mal);
    CHECK(json != NULL);
    CHECK_MSG(json && !strstr(json, alice_id), "Mallory's STATUS names Alice's job");
    cJSON *root = json ? cJSON_Parse(json) : NULL;
    CHECK(root && cJSON_GetObjectItem(root, "active_jobs")->valuedouble >= 1); /* she sees counts */
    cJSON_Delete(root);
    free(json);
    /* her SUBMIT of the same id is a job of her own */
    raw_send(mal, WIRE_SUBMIT, alice_id, 0, "mallory asks", "mallory-image");
    CHECK(raw_until(mal, WIRE_ACCEPTED, 20000, &m, alice_id, &seen) == WIRE_ACCEPTED && !m.attached);
    wire_msg_clear(&m);
    CHECK(raw_until(mal, WIRE_DONE, 40000, &m, alice_id, &seen) == WIRE_DONE);
    CHECK_MSG(m.text && !strcmp(m.text, "mallory asks"), "Mallory's own job: '%s'", m.text);
    raw_send(mal, WIRE_ACK, alice_id, 0, NULL, NULL);
    wire_msg_clear(&m);
    CHECK_EQ_INT(seen, 2); /* her two tokens, nothing of Alice's 40 */
}

static void alice_done(hired_client *c, h_result *r) {
    CHECK_EQ_INT(h_collect(c, r, 1, 60000), 1);
    CHECK_MSG(r->final == HIRED_EVENT_DONE && !strcmp(r->text, r->expect) && r->gaps == 0 && r->dups == 0,
              "Alice: final %d '%s' '%s'", r->final, r->message, r->text);
}

static const char *k_long = "a1 a2 a3 a4 a5 a6 a7 a8 a9 a10 a11 a12 a13 a14 a15 a16 a17 a18 a19 a20 a21 a22 a23 a24 a25 "
                            "a26 a27 a28 a29 a30 a31 a32 a33 a34 a35 a36 a37 a38 a39 a40";

static char g_keys[700];
static const char *key(const char *name) {
    static char buf[4][900];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", g_keys, name);
    return buf[k];
}

int main(void) {
    if (!zmq_has("curve")) {
        fprintf(stderr, "libzmq without CURVE: skipped\n");
        return 77;
    }
    h_init(120);

    /* ---- 1. without CURVE: the session is the owner ---- */
    char front[256], back[256];
    const char *bopts[] = {"--broker.heartbeat_ms=200", NULL};
    pid_t b = h_broker(NULL, NULL, bopts, front, back);
    pid_t we = h_worker(back, "encode", MODEL, 2, 0), wd = h_worker(back, "decode", MODEL, 4, 50);
    hired_client_opts co = {.timeout_ms = 30000, .heartbeat_ms = 200};
    hired_client *alice = hired_client_new(front, &co);
    CHECK(h_wait_workers(alice, MODEL, 1, 1, 10000));
    h_result ra;
    CHECK(h_submit(alice, MODEL, k_long, 0, &ra) == 0);
    raw_t mal;
    raw_open(&mal, front, NULL, "0badc0de0badc0de0badc0de0badc0de");
    mallory(&mal, ra.id);
    alice_done(alice, &ra);
    CHECK_EQ_INT(h_status_counter(alice, "cancelled"), 0);
    CHECK_EQ_INT(h_status_counter(alice, "attached"), 0);
    raw_close(&mal);

    /* one owner's rules: a reused id must be the same request, images included */
    raw_t r1;
    raw_open(&r1, front, NULL, "1111222233334444aaaabbbbccccdddd");
    wire_msg_t m;
    raw_send(&r1, WIRE_SUBMIT, "reuse", 0, k_long, "image-one");
    CHECK(raw_until(&r1, WIRE_ACCEPTED, 20000, &m, NULL, NULL) == WIRE_ACCEPTED);
    wire_msg_clear(&m);
    raw_send(&r1, WIRE_SUBMIT, "reuse", 0, k_long, "image-two");
    CHECK(raw_until(&r1, WIRE_ERROR, 20000, &m, NULL, NULL) == WIRE_ERROR);
    CHECK_MSG(m.code == HIRED_EINVAL && strstr(m.message, "already in use by a different request"), "'%s'", m.message);
    wire_msg_clear(&m);
    raw_send(&r1, WIRE_SUBMIT, "reuse", 0, k_long, "image-one"); /* the same again: attached */
    CHECK(raw_until(&r1, WIRE_ACCEPTED, 20000, &m, NULL, NULL) == WIRE_ACCEPTED && m.attached);
    wire_msg_clear(&m);
    CHECK(raw_until(&r1, WIRE_DONE, 40000, &m, NULL, NULL) == WIRE_DONE && !strcmp(m.text, k_long));
    wire_msg_clear(&m);
    raw_send(&r1, WIRE_BYE, NULL, 0, NULL, NULL);
    raw_close(&r1);
    hired_client_destroy(&alice);
    kill(we, SIGTERM), kill(wd, SIGTERM);
    CHECK_EQ_INT(h_wait(we, 10000), 0);
    CHECK_EQ_INT(h_wait(wd, 10000), 0);
    kill(b, SIGTERM);
    CHECK_EQ_INT(h_wait(b, 10000), 0);

    /* ---- 2. with CURVE: the key is the owner ---- */
    char clients[800], workers[800], admins[800], cmd[2600];
    snprintf(g_keys, sizeof g_keys, "%s", h_path("keys"));
    snprintf(clients, sizeof clients, "%s/clients", g_keys);
    snprintf(workers, sizeof workers, "%s/workers", g_keys);
    snprintf(admins, sizeof admins, "%s/admins", g_keys);
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' '%s' '%s'", clients, workers, admins);
    CHECK(system(cmd) == 0);
    CHECK(rt_make_cert(g_keys, "broker", NULL) == 0);
    CHECK(rt_make_cert(g_keys, "alice", clients) == 0);
    CHECK(rt_make_cert(g_keys, "mallory", clients) == 0);
    CHECK(rt_make_cert(g_keys, "worker", workers) == 0);
    CHECK(rt_make_cert(g_keys, "operator", admins) == 0);
    char o1[900], o2[900], o3[900], o4[900];
    snprintf(o1, sizeof o1, "--curve.server_cert=%s", key("broker_secret"));
    snprintf(o2, sizeof o2, "--curve.authorized_keys=%s", clients);
    snprintf(o3, sizeof o3, "--curve.worker_keys=%s", workers);
    snprintf(o4, sizeof o4, "--curve.admin_keys=%s", admins);
    const char *copts[] = {"--broker.heartbeat_ms=200", o1, o2, o3, o4, NULL};
    b = h_broker(NULL, NULL, copts, front, back);
    char wkey[900], wcert[900];
    snprintf(wkey, sizeof wkey, "%s", key("broker"));
    snprintf(wcert, sizeof wcert, "%s", key("worker_secret"));
    for (int k = 0; k < 2; k++) {
        char *argv[] = {(char *)rt_bin("tests/fake_worker"), "--endpoint", back, "--service", k ? "decode" : "encode",
                        "--model", MODEL, "--capacity", "4", "--delay-ms", k ? "50" : "0", "--heartbeat-ms", "200",
                        "--curve-server-key", wkey, "--curve-cert", wcert, NULL};
        h_spawn(argv, NULL, H_SPAWN_TRACK | H_SPAWN_LOG_ENV);
    }
    curve_cfg_t ca = {.server_key = key("broker"), .client_cert = key("alice_secret")};
    char a_key[900], a_cert[900];
    snprintf(a_key, sizeof a_key, "%s", ca.server_key);
    snprintf(a_cert, sizeof a_cert, "%s", ca.client_cert);
    ca.server_key = a_key, ca.client_cert = a_cert;
    hired_client_opts cco = {.timeout_ms = 30000, .heartbeat_ms = 200, .curve_server_key = a_key, .curve_client_cert = a_cert};
    alice = hired_client_new(front, &cco);
    CHECK(h_wait_workers(alice, MODEL, 1, 1, 15000));
    CHECK(h_submit(alice, MODEL, k_long, 0, &ra) == 0);
    char m_cert[900];
    snprintf(m_cert, sizeof m_cert, "%s", key("mallory_secret"));
    curve_cfg_t cm = {.server_key = a_key, .client_cert = m_cert};
    raw_open(&mal, front, &cm, "0badc0de0badc0de0badc0de0badc0de");
    mallory(&mal, ra.id);
    alice_done(alice, &ra);

    /* two sessions of Alice's key: the live one keeps its job; a quiet one loses it */
    raw_t a1, a2;
    raw_open(&a1, front, &ca, "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1");
    raw_open(&a2, front, &ca, "a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2");
    raw_send(&a1, WIRE_SUBMIT, "shared", 0, k_long, "img");
    CHECK(raw_until(&a1, WIRE_ACCEPTED, 20000, &m, NULL, NULL) == WIRE_ACCEPTED);
    wire_msg_clear(&m);
    raw_send(&a2, WIRE_SUBMIT, "shared", 0, k_long, "img");
    CHECK(raw_until(&a2, WIRE_ERROR, 20000, &m, NULL, NULL) == WIRE_ERROR);
    CHECK_MSG(m.code == HIRED_EBUSY && strstr(m.message, "another session"), "second session: %d '%s'", m.code, m.message);
    wire_msg_clear(&m);
    /* Mallory with Alice's session secret but her own key gets nothing */
    raw_t mal2;
    raw_open(&mal2, front, &cm, "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1");
    raw_send(&mal2, WIRE_RESUME, "shared", 0, NULL, NULL);
    CHECK(raw_until(&mal2, WIRE_ERROR, 20000, &m, NULL, NULL) == WIRE_ERROR);
    CHECK_MSG(strstr(m.message, "belongs to another client key"), "'%s'", m.message);
    wire_msg_clear(&m);
    raw_close(&mal2);
    /* an operator sees every job; Mallory does not */
    char op_cert[900];
    snprintf(op_cert, sizeof op_cert, "%s", key("operator_secret"));
    curve_cfg_t cop = {.server_key = a_key, .client_cert = op_cert};
    raw_t op;
    raw_open(&op, front, &cop, "0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f");
    char *json = raw_status(&op);
    CHECK_MSG(json && strstr(json, "\"shared\""), "the operator's STATUS lacks the job");
    free(json);
    json = raw_status(&mal);
    CHECK_MSG(json && !strstr(json, "\"shared\""), "Mallory's STATUS names the job");
    free(json);
    raw_close(&op);
    raw_close(&mal);
    /* a1 goes quiet (no message for 2 x heartbeat x liveness): a2 takes the job over, from seq 0 */
    h_sleep_ms(1500);
    raw_send(&a2, WIRE_SUBMIT, "shared", 0, k_long, "img");
    CHECK(raw_until(&a2, WIRE_ACCEPTED, 20000, &m, NULL, NULL) == WIRE_ACCEPTED && m.attached);
    wire_msg_clear(&m);
    int tokens = 0;
    CHECK(raw_until(&a2, WIRE_DONE, 40000, &m, "shared", &tokens) == WIRE_DONE && !strcmp(m.text, k_long));
    CHECK_EQ_INT(tokens, 40);
    wire_msg_clear(&m);
    raw_close(&a1);
    raw_close(&a2);
    CHECK_EQ_INT(h_status_counter(alice, "cancelled"), 0);
    hired_client_destroy(&alice);
    CHECK_EQ_INT(h_cleanup(), 0);
    return test_summary();
}
