/* curve.c — see curve.h. Certificates through czmq's zcert_load; the ZAP handler is a REP socket
 * on inproc://zeromq.zap.01 in the server's context, served by one thread polling a stop flag. */
#include "curve.h"

#include <czmq.h>
#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <zmq.h>

#include "err.h"
#include "log.h"
#include "mem.h"

#define CURVE_KEY 32
#define CURVE_ZAP_DOMAIN "hired"
#define CURVE_MAX_KEYS 100000

static bool set(const char *s) { return s && s[0]; }

bool curve_server_enabled(const curve_cfg_t *cfg) { return cfg && set(cfg->server_cert); }
bool curve_client_enabled(const curve_cfg_t *cfg) { return cfg && set(cfg->server_key); }

/* Loads a certificate file; with want_secret, refuses one without a secret key. */
static int load_cert(const char *path, bool want_secret, uint8_t pub[CURVE_KEY], uint8_t sec[CURVE_KEY], char *err) {
    struct stat st;
    if (stat(path, &st) != 0) return hired_errf(err, HIRED_ENOTFOUND, "CURVE certificate %s: no such file", path);
    zcert_t *c = zcert_load(path);
    if (!c) return hired_errf(err, HIRED_EFORMAT, "CURVE certificate %s: not a zcert file", path);
    memcpy(pub, zcert_public_key(c), CURVE_KEY);
    if (sec) memcpy(sec, zcert_secret_key(c), CURVE_KEY);
    static const uint8_t zero[CURVE_KEY];
    bool ok = memcmp(pub, zero, CURVE_KEY) != 0 && (!want_secret || memcmp(zcert_secret_key(c), zero, CURVE_KEY) != 0);
    zcert_destroy(&c);
    if (!ok)
        return hired_errf(err, HIRED_EFORMAT, "CURVE certificate %s has no %s key (use the NAME_secret file)", path,
                          want_secret ? "secret" : "public");
    return HIRED_OK;
}

int curve_check(const curve_cfg_t *cfg, char *err) {
    if (!cfg) return HIRED_OK;
    uint8_t pub[CURVE_KEY], sec[CURVE_KEY];
    if (set(cfg->server_cert) != set(cfg->authorized_keys))
        return hired_errf(err, HIRED_EINVAL, "CURVE server: the certificate and the authorised keys directory go together");
    if (set(cfg->server_key) != set(cfg->client_cert))
        return hired_errf(err, HIRED_EINVAL, "CURVE client: the broker's public key and our certificate go together");
    int rc = HIRED_OK;
    if (set(cfg->server_cert)) {
        rc = load_cert(cfg->server_cert, true, pub, sec, err);
        DIR *d = rc ? NULL : opendir(cfg->authorized_keys);
        if (!rc && !d) rc = hired_errf(err, HIRED_ENOTFOUND, "CURVE authorised keys: cannot open directory %s", cfg->authorized_keys);
        if (d) closedir(d);
    }
    if (!rc && set(cfg->server_key)) rc = load_cert(cfg->server_key, false, pub, NULL, err);
    if (!rc && set(cfg->client_cert)) rc = load_cert(cfg->client_cert, true, pub, sec, err);
    memset(sec, 0, sizeof sec);
    return rc;
}

int curve_apply_server(void *sock, const curve_cfg_t *cfg, char *err) {
    if (!curve_server_enabled(cfg)) return HIRED_OK;
    uint8_t pub[CURVE_KEY], sec[CURVE_KEY];
    int rc = load_cert(cfg->server_cert, true, pub, sec, err);
    int on = 1;
    if (!rc && (zmq_setsockopt(sock, ZMQ_CURVE_SERVER, &on, sizeof on) ||
                zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, sec, CURVE_KEY) ||
                zmq_setsockopt(sock, ZMQ_ZAP_DOMAIN, CURVE_ZAP_DOMAIN, strlen(CURVE_ZAP_DOMAIN))))
        rc = hired_errf(err, HIRED_EIO, "CURVE server options: %s", zmq_strerror(zmq_errno()));
    memset(sec, 0, sizeof sec);
    return rc;
}

int curve_apply_client(void *sock, const curve_cfg_t *cfg, char *err) {
    if (!curve_client_enabled(cfg)) return HIRED_OK;
    if (!set(cfg->client_cert)) return hired_errf(err, HIRED_EINVAL, "CURVE client: no certificate of our own");
    uint8_t server[CURVE_KEY], pub[CURVE_KEY], sec[CURVE_KEY];
    int rc = load_cert(cfg->server_key, false, server, NULL, err);
    if (!rc) rc = load_cert(cfg->client_cert, true, pub, sec, err);
    if (!rc && (zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, server, CURVE_KEY) ||
                zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, pub, CURVE_KEY) ||
                zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, sec, CURVE_KEY)))
        rc = hired_errf(err, HIRED_EIO, "CURVE client options: %s", zmq_strerror(zmq_errno()));
    memset(sec, 0, sizeof sec);
    return rc;
}

// ---- the ZAP handler ---------------------------------------------------------------------------

struct curve_auth {
    void *rep;                  /* REP on inproc://zeromq.zap.01 */
    pthread_t thread;
    atomic_bool stop;
    char *dir;                  /* authorised keys directory */
    struct timespec dir_mtime;  /* when the key list was read */
    uint8_t (*keys)[CURVE_KEY]; /* [n_keys] authorised public keys (thread-owned) */
    int n_keys;
    atomic_ulong accepted, refused;
};

/* (Re)reads every certificate file of the directory; files that do not load are logged and
 * skipped, so one bad file does not lock everybody out. */
static void load_keys(curve_auth_t *a) {
    struct stat st;
    if (stat(a->dir, &st) != 0) {
        log_warn("curve: authorised keys directory %s: cannot stat; keeping %d keys", a->dir, a->n_keys);
        return;
    }
    if (a->keys && st.st_mtim.tv_sec == a->dir_mtime.tv_sec && st.st_mtim.tv_nsec == a->dir_mtime.tv_nsec) return;
    DIR *d = opendir(a->dir);
    if (!d) return;
    uint8_t(*keys)[CURVE_KEY] = NULL;
    int n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < CURVE_MAX_KEYS) {
        if (e->d_name[0] == '.') continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", a->dir, e->d_name);
        struct stat fs;
        if (stat(path, &fs) != 0 || !S_ISREG(fs.st_mode)) continue;
        uint8_t pub[CURVE_KEY];
        char err[HIRED_ERR_LEN];
        if (load_cert(path, false, pub, NULL, err)) {
            log_warn("curve: %s", err);
            continue;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            void *k = mem_realloc(keys, (size_t)cap * CURVE_KEY);
            if (!k) break;
            keys = k;
        }
        memcpy(keys[n++], pub, CURVE_KEY);
    }
    closedir(d);
    mem_free(a->keys);
    a->keys = keys;
    a->n_keys = n;
    a->dir_mtime = st.st_mtim;
    log_info("curve: %d authorised keys from %s", n, a->dir);
}

static bool authorised(curve_auth_t *a, const uint8_t *key) {
    load_keys(a);
    for (int i = 0; i < a->n_keys; i++)
        if (!memcmp(a->keys[i], key, CURVE_KEY)) return true;
    return false;
}

/* One ZAP request (RFC 27): version, request id, domain, address, identity, mechanism,
 * credentials...; the reply: version, request id, status code, status text, user id, metadata. */
static void zap_serve(curve_auth_t *a) {
    zmq_msg_t part[8];
    int n = 0, more = 1;
    while (more) {
        zmq_msg_t tmp, *m = n < 8 ? &part[n] : &tmp;
        zmq_msg_init(m);
        if (zmq_msg_recv(m, a->rep, 0) < 0) {
            zmq_msg_close(m);
            break;
        }
        more = zmq_msg_more(m);
        if (m == &tmp) zmq_msg_close(&tmp);
        else n++;
    }
    const char *code = "400", *text = "no access";
    bool curve = n >= 7 && zmq_msg_size(&part[5]) == 5 && !memcmp(zmq_msg_data(&part[5]), "CURVE", 5) &&
                 zmq_msg_size(&part[6]) == CURVE_KEY;
    if (n >= 6 && zmq_msg_size(&part[0]) == 3 && !memcmp(zmq_msg_data(&part[0]), "1.0", 3)) {
        if (curve && authorised(a, zmq_msg_data(&part[6]))) code = "200", text = "OK";
        else if (!curve) text = "CURVE required";
    }
    if (!strcmp(code, "200")) atomic_fetch_add(&a->accepted, 1);
    else {
        atomic_fetch_add(&a->refused, 1);
        char addr[64] = "";
        if (n >= 4) snprintf(addr, sizeof addr, "%.*s", (int)zmq_msg_size(&part[3]), (const char *)zmq_msg_data(&part[3]));
        log_warn("curve: refused a connection from %s: %s", addr[0] ? addr : "?", text);
    }
    if (n >= 2) {
        zmq_send(a->rep, "1.0", 3, ZMQ_SNDMORE);
        zmq_send(a->rep, zmq_msg_data(&part[1]), zmq_msg_size(&part[1]), ZMQ_SNDMORE);
        zmq_send(a->rep, code, 3, ZMQ_SNDMORE);
        zmq_send(a->rep, text, strlen(text), ZMQ_SNDMORE);
        zmq_send(a->rep, "", 0, ZMQ_SNDMORE);
        zmq_send(a->rep, "", 0, 0);
    }
    for (int i = 0; i < n; i++) zmq_msg_close(&part[i]);
}

static void *zap_thread(void *arg) {
    curve_auth_t *a = arg;
    while (!atomic_load(&a->stop)) {
        zmq_pollitem_t it = {a->rep, 0, ZMQ_POLLIN, 0};
        int rc = zmq_poll(&it, 1, 100);
        if (rc > 0 && (it.revents & ZMQ_POLLIN)) zap_serve(a);
        else if (rc < 0 && zmq_errno() == ETERM) break;
    }
    return NULL;
}

curve_auth_t *curve_auth_start(void *zmq_ctx, const curve_cfg_t *cfg, char *err) {
    if (err) err[0] = 0;
    if (!curve_server_enabled(cfg)) return NULL;
    if (curve_check(cfg, err)) return NULL;
    curve_auth_t *a = mem_calloc(1, sizeof *a);
    if (!a || !(a->dir = mem_strdup(cfg->authorized_keys))) {
        mem_free(a);
        hired_errf(err, HIRED_ENOMEM, "out of memory");
        return NULL;
    }
    load_keys(a);
    int linger = 0;
    a->rep = zmq_socket(zmq_ctx, ZMQ_REP);
    if (!a->rep || zmq_setsockopt(a->rep, ZMQ_LINGER, &linger, sizeof linger) ||
        zmq_bind(a->rep, "inproc://zeromq.zap.01") != 0) {
        hired_errf(err, HIRED_EIO, "CURVE: cannot bind the ZAP handler: %s", zmq_strerror(zmq_errno()));
        if (a->rep) zmq_close(a->rep);
        mem_free(a->keys);
        mem_free(a->dir);
        mem_free(a);
        return NULL;
    }
    if (pthread_create(&a->thread, NULL, zap_thread, a)) {
        hired_errf(err, HIRED_EIO, "CURVE: cannot start the ZAP thread");
        zmq_close(a->rep);
        mem_free(a->keys);
        mem_free(a->dir);
        mem_free(a);
        return NULL;
    }
    return a;
}

void curve_auth_stop(curve_auth_t **pa) {
    if (!pa || !*pa) return;
    curve_auth_t *a = *pa;
    atomic_store(&a->stop, true);
    pthread_join(a->thread, NULL);
    zmq_close(a->rep);
    mem_free(a->keys);
    mem_free(a->dir);
    mem_free(a);
    *pa = NULL;
}

void curve_auth_counts(curve_auth_t *a, unsigned long *accepted, unsigned long *refused) {
    *accepted = a ? atomic_load(&a->accepted) : 0;
    *refused = a ? atomic_load(&a->refused) : 0;
}
