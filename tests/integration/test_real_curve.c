/* test_real_curve.c — CURVE on hired sockets over real TCP (common/curve.h): a ROUTER set up as
 * the broker sets up its sockets (wire_sock_setup + curve_apply_server, ZAP handler of its
 * context) and DEALER clients set up as workers and libhired set up theirs (own contexts, like
 * separate processes; wire_sock_setup + curve_apply_client), exchanging wire-protocol
 * HEARTBEATs.
 *   authorised client key            -> served (its HEARTBEAT arrives, the answer comes back),
 *                                       its messages carry the ZAP user id "client:KEY"
 *   client key on the worker socket,
 *   worker key on the client socket  -> no service (each socket has its own key directory)
 *   key not in the authorised dir    -> no service at all (nothing arrives, nothing comes back)
 *   no CURVE / wrong server key      -> no service
 *   key file added to the directory  -> the next connection with that key is served (re-read)
 *   configuration errors             -> curve_check names the file
 * Skipped (77) when libzmq lacks CURVE. The same through the real hired-broker, workers and
 * libhired: test_real_curve_e2e.c. */
#include <czmq.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "curve.h"
#include "test.h"
#include "test_real_util.h"
#include "wire.h"

static char g_uid[128]; /* the ZAP user id the server saw in the last handshake test */

int main(void) {
    if (!zmq_has("curve")) {
        fprintf(stderr, "libzmq without CURVE: skipped\n");
        return 77;
    }
    h_init(RT_WATCHDOG_S);
    char keys[600], auth[700], wauth[700], cmd[2600];
    snprintf(keys, sizeof keys, "%s", h_path("keys"));
    snprintf(auth, sizeof auth, "%s/authorized", keys);
    snprintf(wauth, sizeof wauth, "%s/workers", keys);
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' '%s'", auth, wauth);
    CHECK(system(cmd) == 0);
    CHECK(rt_make_cert(keys, "broker", NULL) == 0);
    CHECK(rt_make_cert(keys, "client", auth) == 0);
    CHECK(rt_make_cert(keys, "worker", wauth) == 0);
    CHECK(rt_make_cert(keys, "intruder", NULL) == 0);

    char p_broker_sec[800], p_broker_pub[800], p_client[800], p_worker[800], p_intruder[800], p_intruder_pub[800];
    snprintf(p_broker_sec, sizeof p_broker_sec, "%s/broker_secret", keys);
    snprintf(p_broker_pub, sizeof p_broker_pub, "%s/broker", keys);
    snprintf(p_client, sizeof p_client, "%s/client_secret", keys);
    snprintf(p_worker, sizeof p_worker, "%s/worker_secret", keys);
    snprintf(p_intruder, sizeof p_intruder, "%s/intruder_secret", keys);
    snprintf(p_intruder_pub, sizeof p_intruder_pub, "%s/intruder", keys);

    char err[HIRED_ERR_LEN] = "";
    curve_cfg_t srv = {.server_cert = p_broker_sec, .authorized_keys = auth, .worker_keys = wauth};
    CHECK_MSG(curve_check(&srv, err) == 0, "%s", err);
    void *ctx = zmq_ctx_new();
    curve_auth_t *za = curve_auth_start(ctx, &srv, err);
    CHECK_MSG(za != NULL, "%s", err);
    void *server = zmq_socket(ctx, ZMQ_ROUTER), *wserver = zmq_socket(ctx, ZMQ_ROUTER);
    CHECK(wire_sock_setup(server, NULL) == 0 && wire_sock_setup(wserver, NULL) == 0);
    CHECK_MSG(curve_apply_server(server, &srv, CURVE_CLIENTS, err) == 0, "%s", err);
    CHECK_MSG(curve_apply_server(wserver, &srv, CURVE_WORKERS, err) == 0, "%s", err);
    CHECK(zmq_bind(server, "tcp://127.0.0.1:*") == 0 && zmq_bind(wserver, "tcp://127.0.0.1:*") == 0);
    char ep[256], wep[256];
    size_t eplen = sizeof ep;
    CHECK(zmq_getsockopt(server, ZMQ_LAST_ENDPOINT, ep, &eplen) == 0);
    eplen = sizeof wep;
    CHECK(zmq_getsockopt(wserver, ZMQ_LAST_ENDPOINT, wep, &eplen) == 0);

    curve_cfg_t client = {.server_key = p_broker_pub, .client_cert = p_client};
    curve_cfg_t worker = {.server_key = p_broker_pub, .client_cert = p_worker};
    curve_cfg_t intruder = {.server_key = p_broker_pub, .client_cert = p_intruder};
    curve_cfg_t wrong_server = {.server_key = p_intruder_pub, .client_cert = p_client};
    CHECK_MSG(rt_curve_served(server, ep, &client, g_uid), "authorised client not served");
    CHECK_MSG(!strncmp(g_uid, "client:", 7) && strlen(g_uid) == 7 + 40, "client user id '%s'", g_uid);
    CHECK_MSG(rt_curve_served(wserver, wep, &worker, g_uid), "authorised worker not served");
    CHECK_MSG(!strncmp(g_uid, "worker:", 7), "worker user id '%s'", g_uid);
    CHECK_MSG(!rt_curve_served(wserver, wep, &client, g_uid), "a client key served on the worker socket");
    CHECK_MSG(!rt_curve_served(server, ep, &worker, g_uid), "a worker key served on the client socket");
    CHECK_MSG(!rt_curve_served(server, ep, &intruder, g_uid), "unauthorised key served");
    CHECK_MSG(!rt_curve_served(server, ep, NULL, g_uid), "plain client served");
    CHECK_MSG(!rt_curve_served(server, ep, &wrong_server, g_uid), "client trusting another server key served");
    unsigned long acc = 0, ref = 0;
    curve_auth_counts(za, &acc, &ref);
    CHECK(acc >= 2);
    CHECK(ref >= 3);

    /* authorise the intruder's key: a new connection is served (the directory is re-read) */
    h_sleep_ms(20); /* a different directory mtime even on coarse clocks */
    char dst[1200];
    snprintf(dst, sizeof dst, "%s/intruder", auth);
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", p_intruder_pub, dst);
    CHECK(system(cmd) == 0);
    CHECK_MSG(rt_curve_served(server, ep, &intruder, g_uid), "newly authorised key not served");

    zmq_close(server);
    zmq_close(wserver);
    curve_auth_stop(&za);
    CHECK(za == NULL);
    zmq_ctx_term(ctx);

    /* configuration errors name the file */
    curve_cfg_t half = {.server_cert = p_broker_sec};
    CHECK(curve_check(&half, err) == HIRED_EINVAL);
    curve_cfg_t no_workers = {.server_cert = p_broker_sec, .authorized_keys = auth};
    CHECK(curve_check(&no_workers, err) == HIRED_EINVAL && strstr(err, "workers' keys"));
    /* a public certificate where a secret one is needed (a copy without its NAME_secret twin:
     * zcert_load prefers NAME_secret when it exists) */
    char pubonly[900];
    snprintf(pubonly, sizeof pubonly, "%s/pubonly", keys);
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", p_broker_pub, pubonly);
    CHECK(system(cmd) == 0);
    curve_cfg_t pub_as_secret = {.server_cert = pubonly, .authorized_keys = auth, .worker_keys = wauth};
    CHECK(curve_check(&pub_as_secret, err) == HIRED_EFORMAT && strstr(err, "pubonly"));
    curve_cfg_t missing = {.server_key = "/nonexistent/broker", .client_cert = p_client};
    CHECK(curve_check(&missing, err) == HIRED_ENOTFOUND && strstr(err, "/nonexistent/broker"));
    curve_cfg_t nodir = {.server_cert = p_broker_sec, .authorized_keys = "/nonexistent/dir", .worker_keys = wauth};
    CHECK(curve_check(&nodir, err) == HIRED_ENOTFOUND && strstr(err, "/nonexistent/dir"));
    CHECK(curve_auth_start(NULL, NULL, err) == NULL && err[0] == 0);

    CHECK_EQ_INT(rt_cleanup(), 0);
    return test_summary();
}
