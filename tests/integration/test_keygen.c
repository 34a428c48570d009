/* test_keygen.c — `hired keygen` (client/cmd_keygen.c) through the real `hired` binary:
 *   - NAME and NAME_secret are written, load with czmq's zcert_load, carry the same public key
 *     (printed in Z85 on stdout), the secret one a non-zero secret key and mode 0600;
 *   - common/curve.c accepts them (curve_check as broker server, as client);
 *   - a CURVE connection made with them works: a ROUTER with the broker's NAME_secret and an
 *     authorised-keys directory holding a keygen'd client's public file serves that client
 *     (a wire HEARTBEAT goes both ways), and refuses a keygen'd key that is not authorised
 *     (its handshake is counted as refused by the ZAP handler);
 *   - existing files are not overwritten without --force (byte-identical afterwards), and are
 *     with it; bad names and missing NAME are usage errors (exit 2); --help exits 0.
 * Skipped (77) when libzmq lacks CURVE. */
#include <czmq.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "curve.h"
#include "test.h"
#include "test_real_util.h"
#include "wire.h"

#define HIRED "client/hired"

/* `hired ARGS...`; its exit status, stdout+stderr in *out (caller frees). */
static int keygen(const char *const *args, char **out) {
    const char *path = h_path("keygen.out");
    int st = rt_run(HIRED, args, path, 20000);
    *out = rt_slurp(path);
    if (!*out) *out = calloc(1, 1);
    return st;
}

/* The certificate at path through czmq; checks it and copies its public key (Z85) to pub. */
static void check_cert(const char *path, bool secret, char pub[41]) {
    zcert_t *c = zcert_load(path);
    CHECK_MSG(c != NULL, "zcert_load(%s) failed", path);
    pub[0] = 0;
    if (!c) return;
    static const uint8_t zero[32];
    CHECK_MSG(memcmp(zcert_public_key(c), zero, 32) != 0, "%s: no public key", path);
    if (secret) CHECK_MSG(memcmp(zcert_secret_key(c), zero, 32) != 0, "%s: no secret key", path);
    snprintf(pub, 41, "%s", zcert_public_txt(c));
    zcert_destroy(&c);
}

int main(void) {
    if (!zmq_has("curve")) {
        fprintf(stderr, "libzmq without CURVE: skipped\n");
        return 77;
    }
    h_init(RT_WATCHDOG_S);
    char keys[600], auth[700], other[700];
    snprintf(keys, sizeof keys, "%s", h_path("keys")); /* does not exist yet: keygen creates it */
    snprintf(auth, sizeof auth, "%s/authorized", keys);
    snprintf(other, sizeof other, "%s/other", keys);
    char *out = NULL;

    /* usage */
    const char *help[] = {"keygen", "--help", NULL};
    CHECK_EQ_INT(keygen(help, &out), 0);
    CHECK_MSG(strstr(out, "NAME_secret") != NULL, "%s", out);
    free(out);
    const char *noname[] = {"keygen", "--dir", keys, NULL};
    CHECK_EQ_INT(keygen(noname, &out), 2);
    free(out);
    const char *badname[] = {"keygen", "../escape", "--dir", keys, NULL};
    CHECK_EQ_INT(keygen(badname, &out), 2);
    CHECK_MSG(strstr(out, "invalid NAME") != NULL, "%s", out);
    free(out);

    /* the broker's pair, a client's (public part authorised), an outsider's */
    const char *kb[] = {"keygen", "broker", "--dir", keys, NULL};
    CHECK_EQ_INT(keygen(kb, &out), 0);
    char pub_b[41], pub_bs[41];
    char p_bpub[800], p_bsec[800];
    snprintf(p_bpub, sizeof p_bpub, "%s/broker", keys);
    snprintf(p_bsec, sizeof p_bsec, "%s/broker_secret", keys);
    check_cert(p_bpub, false, pub_b);
    check_cert(p_bsec, true, pub_bs);
    CHECK_MSG(pub_b[0] && !strcmp(pub_b, pub_bs), "public keys differ: %s / %s", pub_b, pub_bs);
    CHECK_MSG(pub_b[0] && strstr(out, pub_b) != NULL, "the printed key is not the file's: %s", out);
    free(out);
    struct stat st;
    CHECK(stat(p_bsec, &st) == 0 && (st.st_mode & 0777) == 0600);

    const char *kc[] = {"keygen", "client", "--dir", auth, NULL};
    CHECK_EQ_INT(keygen(kc, &out), 0);
    free(out);
    const char *ko[] = {"keygen", "outsider", "--dir", other, NULL};
    CHECK_EQ_INT(keygen(ko, &out), 0);
    free(out);
    /* the broker's authorised directory holds public certificates only */
    char p_csec[800], p_osec[800], moved[900], cmd[2000];
    snprintf(p_csec, sizeof p_csec, "%s/client_secret", auth);
    snprintf(p_osec, sizeof p_osec, "%s/outsider_secret", other);
    snprintf(moved, sizeof moved, "%s/client_secret", keys);
    snprintf(cmd, sizeof cmd, "mv '%s' '%s'", p_csec, moved);
    CHECK(system(cmd) == 0);

    /* not overwritten without --force; replaced with it */
    char *before = rt_slurp(p_bsec);
    CHECK_EQ_INT(keygen(kb, &out), 1);
    CHECK_MSG(strstr(out, "--force") != NULL, "%s", out);
    free(out);
    char *after = rt_slurp(p_bsec);
    CHECK(before && after && !strcmp(before, after));
    free(after);
    const char *kf[] = {"keygen", "spare", "--dir", keys, NULL};
    CHECK_EQ_INT(keygen(kf, &out), 0);
    free(out);
    const char *kff[] = {"keygen", "spare", "--dir", keys, "--force", NULL};
    CHECK_EQ_INT(keygen(kff, &out), 0);
    free(out);
    free(before);

    /* common/curve.c loads them */
    char err[HIRED_ERR_LEN] = "";
    curve_cfg_t srv = {.server_cert = p_bsec, .authorized_keys = auth, .worker_keys = auth};
    CHECK_MSG(curve_check(&srv, err) == 0, "%s", err);
    curve_cfg_t cli = {.server_key = p_bpub, .client_cert = moved};
    CHECK_MSG(curve_check(&cli, err) == 0, "%s", err);
    curve_cfg_t out_cli = {.server_key = p_bpub, .client_cert = p_osec};
    CHECK_MSG(curve_check(&out_cli, err) == 0, "%s", err);

    /* and a CURVE connection made with them works for the authorised key only */
    void *ctx = zmq_ctx_new();
    curve_auth_t *za = curve_auth_start(ctx, &srv, err);
    CHECK_MSG(za != NULL, "%s", err);
    void *server = zmq_socket(ctx, ZMQ_ROUTER);
    CHECK(wire_sock_setup(server, NULL) == 0);
    CHECK_MSG(curve_apply_server(server, &srv, CURVE_CLIENTS, err) == 0, "%s", err);
    CHECK(zmq_bind(server, "tcp://127.0.0.1:*") == 0);
    char ep[256];
    size_t eplen = sizeof ep;
    CHECK(zmq_getsockopt(server, ZMQ_LAST_ENDPOINT, ep, &eplen) == 0);
    CHECK_MSG(rt_curve_served(server, ep, &cli, NULL), "the authorised keygen'd client was not served");
    unsigned long acc = 0, ref = 0;
    CHECK_MSG(!rt_curve_served(server, ep, &out_cli, NULL), "a keygen'd key that is not authorised was served");
    curve_auth_counts(za, &acc, &ref);
    CHECK_MSG(acc >= 1 && ref >= 1, "ZAP accepted %lu, refused %lu (want >= 1 each)", acc, ref);
    zmq_close(server);
    curve_auth_stop(&za);
    zmq_ctx_term(ctx);

    CHECK_EQ_INT(rt_cleanup(), 0);
    return test_summary();
}
