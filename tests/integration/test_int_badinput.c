/* test_int_badinput.c — the broker facing garbage on both sockets: malformed msgpack, wrong
 * protocol version, missing and unknown fields, an oversized image, an oversized header, too
 * many frames, a missing payload, a message type that is not the sender's to send, an unknown
 * model, a worker that never said READY, a READY with a bad capacity. Each gets an ERROR (or
 * DISCONNECT) naming the problem, the broker keeps running, and the next valid job completes. */
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "test.h"
#include "wire.h"

#define MODEL "fake-llava"

static void *g_ctx;

static void *raw_socket(const char *ep) {
    void *s = zmq_socket(g_ctx, ZMQ_DEALER);
    int linger = 0, rcvtimeo = 5000;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(s, ZMQ_RCVTIMEO, &rcvtimeo, sizeof rcvtimeo);
    zmq_connect(s, ep);
    return s;
}

/* Sends header bytes plus `extra` payload frames of `plen` bytes each. */
static void raw_send(void *s, const void *hdr, size_t len, int extra, size_t plen) {
    zmq_send(s, hdr, len, extra ? ZMQ_SNDMORE : 0);
    char *p = calloc(1, plen ? plen : 1);
    for (int i = 0; i < extra; i++) zmq_send(s, p, plen, i + 1 < extra ? ZMQ_SNDMORE : 0);
    free(p);
}

/* Receives one message; expects type and (if want) the ERROR message to contain want. */
static void expect(void *s, wire_type_t type, const char *want, const char *id, int line) {
    wire_parts_t p;
    int rc = wire_recv(s, &p, 0);
    CHECK_MSG(rc == 0, "line %d: no reply", line);
    if (rc) return;
    wire_msg_t m;
    char err[HIRED_ERR_LEN];
    rc = wire_decode(zmq_msg_data(&p.part[0]), zmq_msg_size(&p.part[0]), NULL, &m, err);
    CHECK_MSG(rc == 0 && m.type == type, "line %d: got %s (%s)", line, wire_type_name(m.type), rc ? err : "");
    if (want) CHECK_MSG(m.message && strstr(m.message, want), "line %d: '%s' lacks '%s'", line, m.message ? m.message : "", want);
    if (id) CHECK_MSG(!strcmp(m.id, id), "line %d: id '%s' want '%s'", line, m.id, id);
    wire_msg_clear(&m);
    wire_parts_close(&p);
}
#define EXPECT(s, t, want, id) expect(s, t, want, id, __LINE__)
#define SESSION "5e5510115e5510115e5510115e551011"

typedef struct {
    msgpack_sbuffer sb;
    msgpack_packer pk;
} raw_t;

static void hdr(raw_t *r, unsigned v, const char *type, const char *id, const char *model, const char *extra_key,
                size_t big) {
    msgpack_sbuffer_init(&r->sb);
    msgpack_packer_init(&r->pk, &r->sb, msgpack_sbuffer_write);
    bool submit = !strcmp(type, "SUBMIT");
    size_t n = 2 + (id != NULL) + (model != NULL) + 1 + (extra_key != NULL) + submit;
    msgpack_pack_map(&r->pk, n);
    if (submit) /* a client session */
        msgpack_pack_str_with_body(&r->pk, "session", 7), msgpack_pack_str_with_body(&r->pk, SESSION, strlen(SESSION));
    msgpack_pack_str_with_body(&r->pk, "v", 1);
    msgpack_pack_uint32(&r->pk, v);
    msgpack_pack_str_with_body(&r->pk, "type", 4);
    msgpack_pack_str_with_body(&r->pk, type, strlen(type));
    if (id) msgpack_pack_str_with_body(&r->pk, "id", 2), msgpack_pack_str_with_body(&r->pk, id, strlen(id));
    if (model) msgpack_pack_str_with_body(&r->pk, "model", 5), msgpack_pack_str_with_body(&r->pk, model, strlen(model));
    msgpack_pack_str_with_body(&r->pk, "prompt", 6);
    char *p = malloc(big + 2);
    memset(p, 'p', big + 1);
    msgpack_pack_str_with_body(&r->pk, p, big + 1);
    free(p);
    if (extra_key) msgpack_pack_str_with_body(&r->pk, extra_key, strlen(extra_key)), msgpack_pack_int(&r->pk, 1);
}

int main(void) {
    h_init(50);
    char front[256], back[256];
    const char *opts[] = {"--broker.heartbeat_ms=200", "--broker.max_image_bytes=1000", "--broker.startup_grace_ms=0", NULL};
    h_broker(NULL, NULL, opts, front, back);
    h_worker(back, "encode", MODEL, 1, 0);
    h_worker(back, "decode", MODEL, 1, 0);
    hired_client_opts co = {.timeout_ms = 20000, .heartbeat_ms = 200};
    hired_client *c = hired_client_new(front, &co);
    CHECK(h_wait_workers(c, MODEL, 1, 1, 10000));
    g_ctx = zmq_ctx_new();
    void *s = raw_socket(front);
    raw_t r;

    raw_send(s, "hello", 5, 0, 0);
    EXPECT(s, WIRE_ERROR, "msgpack", "");
    raw_send(s, "\xdd\xff\xff\xff\xff", 5, 1, 10); /* allocation bomb */
    EXPECT(s, WIRE_ERROR, "elements", "");
    hdr(&r, 2, "SUBMIT", "v2job", MODEL, NULL, 0);
    raw_send(s, r.sb.data, r.sb.size, 1, 10);
    EXPECT(s, WIRE_ERROR, "protocol version 2 not supported (this peer speaks version 6)", "v2job");
    msgpack_sbuffer_destroy(&r.sb);
    /* an id the protocol cannot carry still gets an ERROR (without the id) */
    hdr(&r, WIRE_VERSION, "SUBMIT", "caf\xc3\xa9", MODEL, NULL, 0);
    raw_send(s, r.sb.data, r.sb.size, 1, 10);
    EXPECT(s, WIRE_ERROR, "field 'id' must be", "");
    msgpack_sbuffer_destroy(&r.sb);
    hdr(&r, WIRE_VERSION, "SUBMIT", "nomodel", NULL, NULL, 0);
    raw_send(s, r.sb.data, r.sb.size, 1, 10);
    EXPECT(s, WIRE_ERROR, "missing field 'model'", "nomodel");
    msgpack_sbuffer_destroy(&r.sb);
    hdr(&r, WIRE_VERSION, "SUBMIT", "extra", MODEL, "colour", 0);
    raw_send(s, r.sb.data, r.sb.size, 1, 10);
    EXPECT(s, WIRE_ERROR, "unknown field 'colour'", "extra");
    msgpack_sbuffer_destroy(&r.sb);
    hdr(&r, WIRE_VERSION, "SUBMIT", "bigimg", MODEL, NULL, 0);
    raw_send(s, r.sb.data, r.sb.size, 1, 2000);
    EXPECT(s, WIRE_ERROR, "image is 2000 bytes, limit 1000", "bigimg");
    raw_send(s, r.sb.data, r.sb.size, 0, 0);
    EXPECT(s, WIRE_ERROR, "expected 1 payload frame", "bigimg");
    raw_send(s, r.sb.data, r.sb.size, 3, 10); /* a prompt takes one image */
    EXPECT(s, WIRE_ERROR, "expected 1 payload frame after the header (the image of its 'prompt'), got 3", "bigimg");
    raw_send(s, r.sb.data, r.sb.size, WIRE_MAX_PAYLOADS + 1, 10); /* more frames than any message has */
    EXPECT(s, WIRE_ERROR, "more than", NULL);
    msgpack_sbuffer_destroy(&r.sb);
    hdr(&r, WIRE_VERSION, "SUBMIT", "bighdr", MODEL, NULL, 300000);
    raw_send(s, r.sb.data, r.sb.size, 1, 10);
    EXPECT(s, WIRE_ERROR, "limit 262144", NULL);
    msgpack_sbuffer_destroy(&r.sb);
    hdr(&r, WIRE_VERSION, "SUBMIT", "longprompt", MODEL, NULL, 70000);
    raw_send(s, r.sb.data, r.sb.size, 1, 10);
    EXPECT(s, WIRE_ERROR, "prompt is 70001 bytes, limit 65536", "longprompt");
    msgpack_sbuffer_destroy(&r.sb);
    hdr(&r, WIRE_VERSION, "SUBMIT", "nomodel2", "no-such-model", NULL, 0);
    raw_send(s, r.sb.data, r.sb.size, 1, 10);
    EXPECT(s, WIRE_ERROR, "unknown model 'no-such-model'", "nomodel2");
    msgpack_sbuffer_destroy(&r.sb);
    /* a worker-only type from a client */
    wire_msg_t m;
    wire_msg_init(&m, WIRE_READY);
    strcpy(m.service, "encode"), strcpy(m.model, MODEL), strcpy(m.fingerprint, "ab"), m.capacity = 1;
    char err[HIRED_ERR_LEN];
    CHECK(wire_send(s, NULL, 0, &m, NULL, err) == 0);
    EXPECT(s, WIRE_ERROR, "READY is not a client message", NULL);

    /* a client message without a session */
    wire_msg_init(&m, WIRE_CANCEL);
    strcpy(m.id, "nosession");
    CHECK(wire_send(s, NULL, 0, &m, NULL, err) == 0);
    EXPECT(s, WIRE_ERROR, "CANCEL: missing field 'session'", "nosession");

    /* backend: garbage, a stranger's TOKEN, a bad READY, a worker message without its attempt */
    void *w = raw_socket(back);
    raw_send(w, "\x81\xa1v", 3, 0, 0);
    EXPECT(w, WIRE_ERROR, "msgpack", NULL);
    wire_msg_init(&m, WIRE_TOKEN);
    strcpy(m.id, "x");
    m.text = "t";
    CHECK(wire_send(w, NULL, 0, &m, NULL, err) == 0);
    m.text = NULL;
    EXPECT(w, WIRE_DISCONNECT, NULL, NULL);
    hdr(&r, WIRE_VERSION, "READY", NULL, MODEL, NULL, 0); /* has a prompt key a READY must not have */
    raw_send(w, r.sb.data, r.sb.size, 0, 0);
    EXPECT(w, WIRE_ERROR, "READY: unknown field 'prompt'", NULL);
    msgpack_sbuffer_destroy(&r.sb);
    wire_msg_init(&m, WIRE_READY);
    strcpy(m.service, "decode"), strcpy(m.model, "raw-model"), strcpy(m.fingerprint, "ab"), m.capacity = 1;
    CHECK(wire_send(w, NULL, 0, &m, NULL, err) == 0);
    wire_msg_init(&m, WIRE_TOKEN);
    strcpy(m.id, "x");
    m.text = "t";
    CHECK(wire_send(w, NULL, 0, &m, NULL, err) == 0);
    m.text = NULL;
    EXPECT(w, WIRE_ERROR, "TOKEN from a worker must carry 'attempt'", "x");
    zmq_close(w);
    zmq_close(s);
    zmq_ctx_term(g_ctx);

    /* the broker still serves */
    h_result ok;
    CHECK(h_submit(c, MODEL, "still alive after all that", 0, &ok) == 0);
    CHECK_EQ_INT(h_collect(c, &ok, 1, 10000), 1);
    CHECK(ok.final == HIRED_EVENT_DONE && !strcmp(ok.text, ok.expect));
    CHECK(h_status_counter(c, "bad_messages") >= 15);
    /* libhired refuses out-of-limit jobs before sending */
    hired_job job;
    hired_job_init(&job);
    job.model = MODEL, job.prompt = "x", job.image = "i", job.image_len = 1;
    job.params.max_tokens = 0;
    CHECK(hired_submit(c, &job, NULL) == HIRED_ERANGE);
    job.params.max_tokens = 5, job.params.strategy = "magic";
    CHECK(hired_submit(c, &job, NULL) == HIRED_EINVAL);
    hired_client_destroy(&c);

    /* configuration: unknown keys and out-of-range values stop the broker with status 2 */
    char cfgpath[512];
    snprintf(cfgpath, sizeof cfgpath, "%s", h_path("bad.cfg"));
    FILE *f = fopen(cfgpath, "w");
    fprintf(f, "broker = { heartbeat_ms = 100; colour = \"red\"; };\n");
    fclose(f);
    const char *bad1[] = {"-c", cfgpath, NULL};
    CHECK_EQ_INT(h_broker_exit(bad1, 5000), 2);
    const char *bad2[] = {"--broker.liveness=1", NULL};
    CHECK_EQ_INT(h_broker_exit(bad2, 5000), 2);
    const char *help[] = {"--help", NULL};
    CHECK_EQ_INT(h_broker_exit(help, 5000), 0);
    CHECK_EQ_INT(h_cleanup(), 0);
    return test_summary();
}
