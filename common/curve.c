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
#define CURVE_MAX_KEYS 100000

static const char *const k_domain[] = {"hired-clients", "hired-workers"}; /* by curve_role_t */

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
        if (!rc && !set(cfg->worker_keys))
            rc = hired_errf(err, HIRED_EINVAL,
                            "CURVE server: the workers' keys directory is required too (clients and workers are "
                            "authorised separately)");
        const char *dirs[] = {cfg->authorized_keys, cfg->worker_keys, cfg->admin_keys};
        const char *what[] = {"client", "worker", "operator"};
        for (int i = 0; i < 3 && !rc; i++) {
            if (!set(dirs[i])) continue;
            DIR *d = opendir(dirs[i]);
            if (!d) rc = hired_errf(err, HIRED_ENOTFOUND, "CURVE %s keys: cannot open directory %s", what[i], dirs[i]);
            else closedir(d);
        }
    }
    if (!rc && set(cfg->server_key)) rc = load_cert(cfg->server_key, false, pub, NULL, err);
    if (!rc && set(cfg->client_cert)) rc = load_cert(cfg->client_cert, true, pub, sec, err);
    memset(sec, 0, sizeof sec);
    return rc;
}

int curve_apply_server(void *sock, const curve_cfg_t *cfg, curve_role_t role, char *err) {
    if (!curve_server_enabled(cfg)) return HIRED_OK;
    uint8_t pub[CURVE_KEY], sec[CURVE_KEY];
    int rc = load_cert(cfg->server_cert, true, pub, sec, err);
    int on = 1;
    const char *dom = k_domain[role == CURVE_WORKERS];
    if (!rc && (zmq_setsockopt(sock, ZMQ_CURVE_SERVER, &on, sizeof on) ||
                zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, sec, CURVE_KEY) ||
                zmq_setsockopt(sock, ZMQ_ZAP_DOMAIN, dom, strlen(dom))))
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

/* One directory of authorised keys, re-read when its modification time changes. */
typedef struct keyset {
    char *dir;                  /* NULL = none */
    struct timespec mtime;      /* when the key list was read */
    uint8_t (*keys)[CURVE_KEY]; /* [n] public keys (thread-owned) */
    int n;
    bool loaded;
} keyset_t;

enum { KS_CLIENTS = 0, KS_WORKERS, KS_ADMINS, KS_COUNT };

struct curve_auth {
    void *rep;                  /* REP on inproc://zeromq.zap.01 */
    pthread_t thread;
    atomic_bool stop;
    keyset_t ks[KS_COUNT];
    atomic_ulong accepted, refused;
};

/* (Re)reads every certificate file of the directory; files that do not load are logged and
 * skipped, so one bad file does not lock everybody out. */
static void load_keys(keyset_t *k) {
    if (!k->dir) return;
    struct stat st;
    if (stat(k->dir, &st) != 0) {
        log_warn("curve: authorised keys directory %s: cannot stat; keeping %d keys", k->dir, k->n);
        return;
    }
    if (k->loaded && st.st_mtim.tv_sec == k->mtime.tv_sec && st.st_mtim.tv_nsec == k->mtime.tv_nsec) return;
    DIR *d = opendir(k->dir);
    if (!d) return;
    uint8_t(*keys)[CURVE_KEY] = NULL;
    int n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < CURVE_MAX_KEYS) {
        if (e->d_name[0] == '.') continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", k->dir, e->d_name);
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
            void *p = mem_realloc(keys, (size_t)cap * CURVE_KEY);
            if (!p) break;
            keys = p;
        }
        memcpy(keys[n++], pub, CURVE_KEY);
    }
    closedir(d);
    mem_free(k->keys);
    k->keys = keys;
    k->n = n;
    k->mtime = st.st_mtim;
    k->loaded = true;
    log_info("curve: %d authorised keys from %s", n, k->dir);
}

static bool in_set(keyset_t *k, const uint8_t *key) {
    load_keys(k);
    for (int i = 0; i < k->n; i++)
        if (!memcmp(k->keys[i], key, CURVE_KEY)) return true;
    return false;
}

/* The role a key has on a socket of ZAP domain dom, or NULL when it has none there. */
static const char *role_of(curve_auth_t *a, const zmq_msg_t *dom, const uint8_t *key) {
    size_t n = zmq_msg_size((zmq_msg_t *)dom);
    const char *d = zmq_msg_data((zmq_msg_t *)dom);
    if (n == strlen(k_domain[1]) && !memcmp(d, k_domain[1], n)) return in_set(&a->ks[KS_WORKERS], key) ? "worker" : NULL;
    if (n == strlen(k_domain[0]) && !memcmp(d, k_domain[0], n)) {
        if (in_set(&a->ks[KS_ADMINS], key)) return "admin";
        return in_set(&a->ks[KS_CLIENTS], key) ? "client" : NULL;
    }
    return NULL;
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
    char uid[64] = "";
    bool curve = n >= 7 && zmq_msg_size(&part[5]) == 5 && !memcmp(zmq_msg_data(&part[5]), "CURVE", 5) &&
                 zmq_msg_size(&part[6]) == CURVE_KEY;
    if (n >= 6 && zmq_msg_size(&part[0]) == 3 && !memcmp(zmq_msg_data(&part[0]), "1.0", 3)) {
        const char *role = curve ? role_of(a, &part[2], zmq_msg_data(&part[6])) : NULL;
        if (role) {
            char z85[41];
            zmq_z85_encode(z85, zmq_msg_data(&part[6]), CURVE_KEY);
            snprintf(uid, sizeof uid, "%s:%s", role, z85);
            code = "200", text = "OK";
        } else if (!curve) {
            text = "CURVE required";
        }
    }
    if (!strcmp(code, "200")) atomic_fetch_add(&a->accepted, 1);
    else {
        atomic_fetch_add(&a->refused, 1);
        char addr[64] = "", dom[32] = "";
        if (n >= 4) snprintf(addr, sizeof addr, "%.*s", (int)zmq_msg_size(&part[3]), (const char *)zmq_msg_data(&part[3]));
        if (n >= 3) snprintf(dom, sizeof dom, "%.*s", (int)zmq_msg_size(&part[2]), (const char *)zmq_msg_data(&part[2]));
        log_warn("curve: refused a connection from %s to %s: %s", addr[0] ? addr : "?", dom, text);
    }
    if (n >= 2) {
        zmq_send(a->rep, "1.0", 3, ZMQ_SNDMORE);
        zmq_send(a->rep, zmq_msg_data(&part[1]), zmq_msg_size(&part[1]), ZMQ_SNDMORE);
        zmq_send(a->rep, code, 3, ZMQ_SNDMORE);
        zmq_send(a->rep, text, strlen(text), ZMQ_SNDMORE);
        zmq_send(a->rep, uid, strlen(uid), ZMQ_SNDMORE);
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

static void auth_free(curve_auth_t *a) {
    for (int i = 0; i < KS_COUNT; i++) {
        mem_free(a->ks[i].keys);
        mem_free(a->ks[i].dir);
    }
    mem_free(a);
}

curve_auth_t *curve_auth_start(void *zmq_ctx, const curve_cfg_t *cfg, char *err) {
    if (err) err[0] = 0;
    if (!curve_server_enabled(cfg)) return NULL;
    if (curve_check(cfg, err)) return NULL;
    curve_auth_t *a = mem_calloc(1, sizeof *a);
    const char *dirs[KS_COUNT] = {cfg->authorized_keys, cfg->worker_keys, cfg->admin_keys};
    bool ok = a != NULL;
    for (int i = 0; ok && i < KS_COUNT; i++)
        if (set(dirs[i]) && !(a->ks[i].dir = mem_strdup(dirs[i]))) ok = false;
    if (!ok) {
        if (a) auth_free(a);
        hired_errf(err, HIRED_ENOMEM, "out of memory");
        return NULL;
    }
    for (int i = 0; i < KS_COUNT; i++) load_keys(&a->ks[i]);
    int linger = 0;
    a->rep = zmq_socket(zmq_ctx, ZMQ_REP);
    if (!a->rep || zmq_setsockopt(a->rep, ZMQ_LINGER, &linger, sizeof linger) ||
        zmq_bind(a->rep, "inproc://zeromq.zap.01") != 0) {
        hired_errf(err, HIRED_EIO, "CURVE: cannot bind the ZAP handler: %s", zmq_strerror(zmq_errno()));
        if (a->rep) zmq_close(a->rep);
        auth_free(a);
        return NULL;
    }
    if (pthread_create(&a->thread, NULL, zap_thread, a)) {
        hired_errf(err, HIRED_EIO, "CURVE: cannot start the ZAP thread");
        zmq_close(a->rep);
        auth_free(a);
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
    auth_free(a);
    *pa = NULL;
}

void curve_auth_counts(curve_auth_t *a, unsigned long *accepted, unsigned long *refused) {
    *accepted = a ? atomic_load(&a->accepted) : 0;
    *refused = a ? atomic_load(&a->refused) : 0;
}
