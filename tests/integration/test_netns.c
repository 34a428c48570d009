/* test_netns.c — a three-host deployment with CURVE, on this machine: hired-broker,
 * hired-encoder and hired-decoder each in a network namespace of its own, joined to the
 * broker's by veth pairs, and the client (this process) on a fourth link from the root
 * namespace (docs/deploy.md describes the same layout on real hosts). Links are cut
 * (`ip link set down`) and restored in the middle of work:
 *   decoder link   while an answer streams (the decoder's link is throttled with tc so that a
 *                  stream lasts long enough to be cut): the broker declares the decoder dead,
 *                  the decoder reconnects when the link returns and runs the job again;
 *   client link    while an answer streams to the client (that link throttled too): the client
 *                  keeps its session (the cut is shorter than client_grace_ms) and resumes;
 *   encoder link   while the job is being encoded.
 * Every job must end with exactly the text `hired run` gives. Needs root and iproute2 (ip, tc);
 * where network namespaces cannot be made the test says so and exits 77 (skipped). The
 * namespaces and links are removed at exit. */
#include <czmq.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "test.h"
#include "test_real_util.h"
#include "wire.h"

#define MODEL "llava-next-tiny"

static char g_ns[3][32];    /* broker, encoder, decoder namespaces */
static char g_if[4][2][16]; /* links: client, encoder, decoder: [broker side, other side] */
static bool g_made;

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...) {
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    if (rc) fprintf(stderr, "netns: '%s' failed (%d)\n", cmd, rc);
    return rc;
}

static void teardown(void) {
    if (!g_made) return;
    g_made = false;
    char cmd[256];
    snprintf(cmd, sizeof cmd, "ip link del %s 2>/dev/null", g_if[0][1]);
    if (system(cmd)) { /* gone with its namespace already */
    }
    for (int i = 0; i < 3; i++) {
        snprintf(cmd, sizeof cmd, "ip netns del %s 2>/dev/null", g_ns[i]);
        if (system(cmd)) {
        }
    }
}

/* Namespaces and root-side links left by an earlier run that was killed (no atexit ran):
 * named after a pid that no longer exists. */
static void remove_stale(void) {
    FILE *p = popen("ip netns list 2>/dev/null; ip -o link 2>/dev/null | awk -F': ' '{print $2}'", "r");
    char line[256];
    while (p && fgets(line, sizeof line, p)) {
        int pid = 0;
        char role = 0, cmd[300];
        if (sscanf(line, "hired%d%c", &pid, &role) == 2 && strchr("bed", role) && kill(pid, 0) != 0) {
            snprintf(cmd, sizeof cmd, "ip netns del hired%d%c 2>/dev/null", pid, role);
            if (system(cmd)) {
            }
        } else if (sscanf(line, "h%dc1", &pid) == 1 && kill(pid, 0) != 0) {
            snprintf(cmd, sizeof cmd, "ip link del h%dc1 2>/dev/null", pid);
            if (system(cmd)) {
            }
        }
    }
    if (p) pclose(p);
}

/* The namespaces and links: 10.231.L.1 on the broker's side of link L, .2 on the other. */
static bool setup(void) {
    remove_stale();
    int id = (int)getpid() % 100000;
    const char *role[3] = {"b", "e", "d"};
    for (int i = 0; i < 3; i++) snprintf(g_ns[i], sizeof g_ns[i], "hired%d%s", id, role[i]);
    for (int l = 0; l < 3; l++)
        for (int s = 0; s < 2; s++) snprintf(g_if[l][s], sizeof g_if[l][s], "h%d%c%d", id, "ced"[l], s);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "ip netns add %s 2>/dev/null", g_ns[0]);
    if (system(cmd) != 0) return false;
    g_made = true;
    atexit(teardown);
    bool ok = !sh("ip netns add %s && ip netns add %s", g_ns[1], g_ns[2]);
    for (int i = 0; i < 3 && ok; i++) ok = !sh("ip -n %s link set lo up", g_ns[i]);
    for (int l = 0; l < 3 && ok; l++) {
        ok = !sh("ip link add %s type veth peer name %s", g_if[l][0], g_if[l][1]) &&
             !sh("ip link set %s netns %s", g_if[l][0], g_ns[0]) &&
             !sh("ip -n %s addr add 10.231.%d.1/30 dev %s && ip -n %s link set %s up", g_ns[0], l, g_if[l][0], g_ns[0],
                 g_if[l][0]);
        if (!ok) break;
        if (l == 0) /* the client's side stays in the root namespace */
            ok = !sh("ip addr add 10.231.0.2/30 dev %s && ip link set %s up", g_if[0][1], g_if[0][1]);
        else
            ok = !sh("ip link set %s netns %s && ip -n %s addr add 10.231.%d.2/30 dev %s && ip -n %s link set %s up",
                     g_if[l][1], g_ns[l], g_ns[l], l, g_if[l][1], g_ns[l], g_if[l][1]);
    }
    return ok;
}

static void link_cut(int l, bool down) { sh("ip -n %s link set %s %s", g_ns[0], g_if[l][0], down ? "down" : "up"); }

/* Throttles what leaves the namespace ns through interface dev (tc token bucket). */
static void throttle(const char *ns, const char *dev) {
    sh("ip netns exec %s tc qdisc add dev %s root tbf rate 160kbit burst 4kb latency 5s", ns, dev);
}

static pid_t ns_spawn(const char *ns, const char *const *args) {
    char *argv[48] = {"ip", "netns", "exec", (char *)ns};
    int n = 4;
    for (int i = 0; args[i] && n < 47; i++) argv[n++] = (char *)args[i];
    argv[n] = NULL;
    return h_spawn(argv, NULL, H_SPAWN_TRACK | H_SPAWN_LOG_ENV);
}

int main(void) {
    if (geteuid() != 0 || system("command -v ip >/dev/null && command -v tc >/dev/null") != 0) {
        fprintf(stderr, "test_netns: needs root and iproute2 (ip, tc) to make network namespaces: skipped\n");
        return 77;
    }
    if (!zmq_has("curve")) {
        fprintf(stderr, "libzmq without CURVE: skipped\n");
        return 77;
    }
    setenv("OMP_NUM_THREADS", "1", 1);
    h_init(240);
    if (!setup()) {
        fprintf(stderr, "test_netns: network namespaces cannot be made here (ip netns add failed): skipped\n");
        teardown();
        return 77;
    }

    /* keys: the broker's, one client, one worker key for both workers */
    static char keys[700], clients[800], workers[800], cmd[2000];
    snprintf(keys, sizeof keys, "%s", h_path("keys"));
    snprintf(clients, sizeof clients, "%s/clients", keys);
    snprintf(workers, sizeof workers, "%s/workers", keys);
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' '%s'", clients, workers);
    CHECK(system(cmd) == 0);
    CHECK(rt_make_cert(keys, "broker", NULL) == 0);
    CHECK(rt_make_cert(keys, "client", clients) == 0);
    CHECK(rt_make_cert(keys, "worker", workers) == 0);
    static char o_cert[900], o_auth[900], o_wkeys[900], o_skey[900], o_wcert[900], b_pub[800], c_sec[800], ports[800];
    snprintf(o_cert, sizeof o_cert, "--curve.server_cert=%s/broker_secret", keys);
    snprintf(o_auth, sizeof o_auth, "--curve.authorized_keys=%s", clients);
    snprintf(o_wkeys, sizeof o_wkeys, "--curve.worker_keys=%s", workers);
    snprintf(b_pub, sizeof b_pub, "%s/broker", keys);
    snprintf(c_sec, sizeof c_sec, "%s/client_secret", keys);
    snprintf(o_skey, sizeof o_skey, "--curve.server_key=%s", b_pub);
    snprintf(o_wcert, sizeof o_wcert, "--curve.cert=%s/worker_secret", keys);
    snprintf(ports, sizeof ports, "--broker.ports_file=%s", h_path("ports"));

    /* the broker host */
    static char bbin[1024], ebin[1024], dbin[1024], dir[2048];
    snprintf(bbin, sizeof bbin, "%s", rt_bin("broker/hired-broker"));
    snprintf(ebin, sizeof ebin, "%s", rt_bin("encoder_worker/hired-encoder"));
    snprintf(dbin, sizeof dbin, "%s", rt_bin("decoder_worker/hired-decoder"));
    snprintf(dir, sizeof dir, "%s", rt_model_dir(MODEL));
    const char *bargs[] = {bbin, "--broker.frontend=tcp://*:5555", "--broker.backend=tcp://*:5556", ports,
                           "--broker.heartbeat_ms=200", "--broker.max_attempts=10", "--log.level=warn",
                           o_cert, o_auth, o_wkeys, NULL};
    ns_spawn(g_ns[0], bargs);
    bool up = false;
    for (int i = 0; i < 500 && !up; i++) { /* the broker writes its ports file once it has bound */
        up = access(h_path("ports"), R_OK) == 0;
        if (!up) h_sleep_ms(20);
    }
    if (!up) {
        fprintf(stderr, "test_netns: the broker did not start in its namespace\n");
        h_cleanup();
        teardown();
        return 1;
    }
    /* the worker hosts */
    const char *eargs[] = {ebin, "--model", dir, "--broker.endpoint=tcp://10.231.1.1:5556", "--broker.heartbeat_ms=200",
                           "--worker.warmup=false", "--worker.drain_ms=0", "--log.level=warn", o_skey, o_wcert, NULL};
    /* a float32 KV cache, as rt_decoder gives: the answers are compared with `hired run` in-process */
    const char *dargs[] = {dbin, "--model", dir, "--decoder.kv_dtype=f32", "--broker.endpoint=tcp://10.231.2.1:5556",
                           "--broker.heartbeat_ms=200",
                           "--worker.warmup=false", "--worker.drain_ms=0", "--log.level=warn", o_skey, o_wcert, NULL};
    ns_spawn(g_ns[1], eargs);
    ns_spawn(g_ns[2], dargs);
    throttle(g_ns[2], g_if[2][1]); /* decoder -> broker */
    throttle(g_ns[0], g_if[0][0]); /* broker -> client */

    /* the answers, in-process */
    char err[HIRED_ERR_LEN];
    rt_model_t *m = rt_model_load(dir, err);
    CHECK_MSG(m != NULL, "%s", err);
    uint8_t *img = NULL;
    size_t n = 0;
    CHECK(rt_read(rt_image("tiny.png"), &img, &n) == 0);
    hired_job jd;
    hired_job_init(&jd);
    hired_params p_long = jd.params, p_short = jd.params;
    p_long.max_tokens = 300;
    p_short.max_tokens = 8;
    static char x_long[16384], x_short[2048];
    if (m) {
        visual_t vis;
        CHECK(rt_encode(m, img, n, &p_long, WIRE_DTYPE_F16, &vis) == 0);
        CHECK(rt_answer(m, &vis, "Describe the picture in detail.", &p_long, NULL, x_long, sizeof x_long, NULL) == 0);
        CHECK(rt_answer(m, &vis, "What is this?", &p_short, NULL, x_short, sizeof x_short, NULL) == 0);
        visual_free(&vis);
    }
    rt_model_destroy(&m);

    /* the client, from the root namespace over its own link */
    hired_client_opts co = {.timeout_ms = 120000, .heartbeat_ms = 200, .curve_server_key = b_pub, .curve_client_cert = c_sec};
    hired_client *c = hired_client_new("tcp://10.231.0.1:5555", &co);
    CHECK(c != NULL);
    CHECK_MSG(h_wait_workers(c, MODEL, 1, 1, 60000), "the workers did not join through their links");

    for (int round = 0; round < 3; round++) {
        static const char *names[] = {"decoder link", "client link", "encoder link"};
        int link = round == 0 ? 2 : round == 1 ? 0 : 1;
        bool caught = false;
        for (int attempt = 0; attempt < 4 && !caught; attempt++) {
            h_result r;
            bool enc = round == 2;
            CHECK(rt_submit(c, MODEL, img, n, enc ? "What is this?" : "Describe the picture in detail.",
                            enc ? &p_short : &p_long, &r) == 0);
            if (enc) {
                char state[32] = "";
                for (int w = 0; w < 20000 && strcmp(state, "encoding") && !r.final; w += 5) {
                    rt_job_state(c, r.id, state, sizeof state);
                    if (strcmp(state, "encoding")) h_sleep_ms(5);
                }
                caught = !strcmp(state, "encoding");
            } else {
                for (int w = 0; w < 30000 && r.tokens < 5 && !r.final; w += 20) h_collect(c, &r, 1, 20);
                caught = r.tokens >= 5 && !r.final;
            }
            int at = r.tokens;
            if (caught) {
                link_cut(link, true);
                h_sleep_ms(2000); /* > the broker's 3 heartbeats, < the client's 5 s grace */
                link_cut(link, false);
            }
            CHECK_EQ_INT(h_collect(c, &r, 1, 90000), 1);
            const char *want = enc ? x_short : x_long;
            bool ok = r.final == HIRED_EVENT_DONE && r.accepted == 1 && r.gaps == 0 && r.dups == 0 &&
                      rt_same_prefix(r.text, sizeof r.text, want) && rt_same_prefix(r.done_text, sizeof r.done_text, want);
            fprintf(stderr, "%s cut %s (after %d tokens): %s\n", names[round], caught ? "mid-job" : "too late", at,
                    ok ? "exact" : "WRONG");
            CHECK_MSG(ok, "%s: final %d gaps %d dups %d '%s'\n  got  '%.60s'\n  want '%.60s'", names[round], r.final,
                      r.gaps, r.dups, r.message, r.text, want);
        }
        CHECK_MSG(caught, "%s: no job was caught in the middle in 4 tries", names[round]);
    }
    long lost = h_status_counter(c, "workers_lost");
    fprintf(stderr, "broker: %ld workers lost and back, %ld jobs re-queued, %ld resumes\n", lost,
            h_status_counter(c, "requeued"), h_status_counter(c, "resumed"));
    CHECK(lost >= 2); /* the decoder and the encoder links were cut long enough to count */
    CHECK_EQ_INT(h_status_counter(c, "failed"), 0);
    hired_client_destroy(&c);
    free(img);
    CHECK_EQ_INT(h_cleanup(), 0);
    teardown();
    return test_summary();
}
