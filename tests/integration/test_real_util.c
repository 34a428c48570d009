/* test_real_util.c — see test_real_util.h. */
#include "test_real_util.h"

#include <cjson/cJSON.h>
#include <czmq.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "err.h"
#include "half.h"
#include "wire.h"

#define RT_MAX_PROCS 32

static pid_t g_workers[RT_MAX_PROCS];
static int g_nworkers;

const char *rt_bin(const char *rel) {
    static char buf[1024];
    const char *root = getenv("HIRED_BUILD_DIR");
    snprintf(buf, sizeof buf, "%s/%s", root ? root : ".", rel);
    return buf;
}

static const char *log_level(void) { return getenv("HIRED_TEST_LOG") ? getenv("HIRED_TEST_LOG") : "warn"; }

/* Untracked by the harness: rt_cleanup stops workers itself (15 s, not 5 s, to drain). */
static pid_t spawn(char *const argv[], const char *out_path) { return h_spawn(argv, out_path, 0); }

static pid_t worker(const char *rel, const char *back_ep, const char *model_dir, const char *const *opts) {
    char path[1024], ep[300], lvl[64];
    snprintf(path, sizeof path, "%s", rt_bin(rel));
    snprintf(ep, sizeof ep, "--broker.endpoint=%s", back_ep);
    snprintf(lvl, sizeof lvl, "--log.level=%s", log_level());
    char *argv[40] = {path, "--model", (char *)model_dir, ep, "--broker.heartbeat_ms=200", lvl};
    int n = 6;
    for (int i = 0; opts && opts[i] && n < 39; i++) argv[n++] = (char *)opts[i];
    argv[n] = NULL;
    pid_t pid = spawn(argv, NULL);
    if (g_nworkers < RT_MAX_PROCS) g_workers[g_nworkers++] = pid;
    return pid;
}

pid_t rt_encoder(const char *back_ep, const char *model_dir, const char *const *opts) {
    return worker("encoder_worker/hired-encoder", back_ep, model_dir, opts);
}

/* The decoders get a float32 KV cache first (later opts may override): the tests compare their
 * text with `hired run` in this process, whose cache is float32 (the default F16 cache moves the
 * logits by ~1e-3, test_sched shows how much). */
pid_t rt_decoder(const char *back_ep, const char *model_dir, const char *const *opts) {
    const char *all[36] = {"--decoder.kv_dtype=f32"};
    int n = 1;
    for (int i = 0; opts && opts[i] && n < 35; i++) all[n++] = opts[i];
    all[n] = NULL;
    return worker("decoder_worker/hired-decoder", back_ep, model_dir, all);
}

int rt_run(const char *rel_bin, const char *const *args, const char *out_path, int timeout_ms) {
    char path[1024];
    snprintf(path, sizeof path, "%s", rt_bin(rel_bin));
    char *argv[40] = {path};
    int n = 1;
    for (int i = 0; args && args[i] && n < 39; i++) argv[n++] = (char *)args[i];
    argv[n] = NULL;
    return h_wait(spawn(argv, out_path), timeout_ms);
}

int rt_cleanup(void) {
    int bad = 0;
    for (int i = 0; i < g_nworkers; i++)
        if (g_workers[i] > 0 && kill(g_workers[i], 0) == 0) kill(g_workers[i], SIGTERM);
    for (int i = 0; i < g_nworkers; i++) {
        if (g_workers[i] <= 0) continue;
        int st;
        pid_t r = waitpid(g_workers[i], &st, WNOHANG);
        if (r == 0) {
            st = h_wait(g_workers[i], 15000);
        } else if (r == g_workers[i]) {
            st = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        } else {
            continue; /* already reaped by the test (h_wait after a kill) */
        }
        if (st != 0) {
            fprintf(stderr, "rt: worker %d ended with status %d\n", (int)g_workers[i], st);
            bad++;
        }
    }
    g_nworkers = 0;
    return bad + h_cleanup();
}

int rt_read(const char *path, uint8_t **bytes, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return -1;
    }
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    *bytes = malloc(len > 0 ? (size_t)len : 1);
    size_t got = *bytes ? fread(*bytes, 1, (size_t)len, f) : 0;
    fclose(f);
    if (!*bytes || got != (size_t)len) {
        free(*bytes);
        return -1;
    }
    *n = got;
    return 0;
}

char *rt_slurp(const char *path) {
    uint8_t *b = NULL;
    size_t n = 0;
    if (rt_read(path, &b, &n)) return NULL;
    char *s = realloc(b, n + 1);
    if (!s) {
        free(b);
        return NULL;
    }
    s[n] = 0;
    return s;
}

/* rt_slurp, or "" */
static char *slurp_or_empty(const char *path) {
    char *s = rt_slurp(path);
    return s ? s : calloc(1, 1);
}

int rt_drive(const char *args, int timeout_s, char **out, char **errs) {
    char o[600], e[600], cmd[8192];
    snprintf(o, sizeof o, "%s", h_path("stdout.txt"));
    snprintf(e, sizeof e, "%s", h_path("stderr.txt"));
    snprintf(cmd, sizeof cmd, "timeout %d '%s' %s > '%s' 2> '%s'", timeout_s, rt_bin("client/hired"), args, o, e);
    int st = system(cmd);
    *out = slurp_or_empty(o);
    *errs = slurp_or_empty(e);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

const char *rt_model_dir(const char *name) {
    static char buf[2048];
    const char *root = getenv("HIRED_FIXTURES");
    snprintf(buf, sizeof buf, "%s/models/%s", root ? root : "tests/fixtures", name);
    return buf;
}

const char *rt_image(const char *name) {
    static char buf[2048];
    const char *root = getenv("HIRED_FIXTURES");
    snprintf(buf, sizeof buf, "%s/images/%s", root ? root : "tests/fixtures", name);
    return buf;
}

// ---- expected answers ------------------------------------------------------------------------

typedef struct {
    char *out;
    size_t cap, len;
} text_acc_t;

static int acc_emit(void *user, const char *text, size_t len, int32_t token) {
    (void)token;
    text_acc_t *a = user;
    for (size_t i = 0; i < len; i++) {
        const char *s = text[i] ? &text[i] : "\xEF\xBF\xBD";
        size_t n = text[i] ? 1 : 3;
        if (a->len + n + 1 > a->cap) return 1;
        memcpy(a->out + a->len, s, n);
        a->len += n;
    }
    a->out[a->len] = 0;
    return 0;
}

struct rt_model {
    k_device_t *dev;
    k_ctx_t *ctx;
    run_model_t *m;
};

rt_model_t *rt_model_load(const char *dir, char *err) {
    rt_model_t *m = calloc(1, sizeof *m);
    if (m && (m->dev = k_device_open("cpu", err)) && (m->ctx = k_ctx_new(m->dev, err)) &&
        (m->m = run_model_load_as(dir, m->dev, LLM_WEIGHTS_AUTO, err))) /* as the decoders' default */
        return m;
    rt_model_destroy(&m);
    return NULL;
}

void rt_model_destroy(rt_model_t **pm) {
    if (!pm || !*pm) return;
    run_model_destroy(&(*pm)->m);
    k_ctx_destroy(&(*pm)->ctx);
    k_device_close(&(*pm)->dev);
    free(*pm);
    *pm = NULL;
}

static int job_params(const hired_params *hp, const char *template_name, run_params_t *rp) {
    run_params_default(rp);
    gen_params_t *p = &rp->gen;
    if (sel_strategy_parse(hp->strategy ? hp->strategy : "hired", &rp->enc.sel.strategy) ||
        pack_newline_parse(hp->newline ? hp->newline : "hf", &p->newline)) {
        fprintf(stderr, "rt: bad strategy or newline\n");
        return -1;
    }
    rp->enc.sel.budget = hp->budget;
    rp->enc.sel.alpha = hp->alpha;
    p->max_tokens = hp->max_tokens;
    p->template_name = template_name;
    p->sampling = (sampler_params_t){.temperature = (float)hp->temperature, .top_k = hp->top_k,
                                     .top_p = (float)hp->top_p, .seed = hp->seed};
    return 0;
}

int rt_encode(rt_model_t *m, const uint8_t *img, size_t n, const hired_params *hp, int wire_dtype, visual_t *vis) {
    char err[HIRED_ERR_LEN];
    run_params_t p;
    if (job_params(hp, NULL, &p)) return -1;
    if (enc_run(run_model_encoder(m->m), m->ctx, img, n, &p.enc, vis, NULL, NULL, err)) {
        fprintf(stderr, "rt_encode: %s\n", err);
        return -1;
    }
    if (wire_dtype == WIRE_DTYPE_F16)
        for (size_t i = 0; i < (size_t)vis->k * vis->d; i++) vis->features[i] = half_to_f32(f32_to_half(vis->features[i]));
    return 0;
}

int rt_answer(rt_model_t *m, const visual_t *vis, const char *prompt, const hired_params *hp,
              const char *template_name, char *out, size_t cap, int *generated) {
    char err[HIRED_ERR_LEN];
    run_params_t p;
    gen_prompt_t pr;
    if (job_params(hp, template_name, &p)) return -1;
    gen_model_t *g = run_model_text(m->m);
    if (gen_prompt_build(g, m->ctx, vis, prompt, &p.gen, &pr, NULL, err)) {
        fprintf(stderr, "rt_answer: %s\n", err);
        return -1;
    }
    text_acc_t acc = {.out = out, .cap = cap};
    out[0] = 0;
    gen_stats_t st;
    memset(&st, 0, sizeof st);
    int rc = gen_decode(g, m->ctx, &pr, &p.gen, acc_emit, &acc, NULL, NULL, 0, NULL, &st, err);
    gen_prompt_free(&pr);
    if (rc) {
        fprintf(stderr, "rt_answer: %s\n", err);
        return -1;
    }
    if (generated) *generated = st.generated;
    return 0;
}

int rt_expect(rt_model_t *m, const uint8_t *img, size_t n, const char *prompt, const hired_params *hp,
              const char *template_name, int wire_dtype, char *out, size_t cap, int *generated) {
    visual_t vis;
    if (rt_encode(m, img, n, hp, wire_dtype, &vis)) return -1;
    int rc = rt_answer(m, &vis, prompt, hp, template_name, out, cap, generated);
    visual_free(&vis);
    return rc;
}

int rt_submit(hired_client *c, const char *model, const uint8_t *img, size_t n, const char *prompt,
              const hired_params *p, h_result *r) {
    memset(r, 0, sizeof *r);
    hired_job job;
    hired_job_init(&job);
    job.model = model;
    job.prompt = prompt;
    job.image = img;
    job.image_len = n;
    job.params = *p;
    return hired_submit(c, &job, r->id);
}

int rt_make_cert(const char *dir, const char *name, const char *pub_dir) {
    zcert_t *c = zcert_new();
    if (!c) return -1;
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int rc = zcert_save(c, path) == 0 ? 0 : -1; /* writes NAME (public) and NAME_secret */
    if (!rc && pub_dir) {
        snprintf(path, sizeof path, "%s/%s", pub_dir, name);
        rc = zcert_save_public(c, path) == 0 ? 0 : -1;
    }
    zcert_destroy(&c);
    return rc;
}

void rt_job_state(hired_client *c, const char *id, char *out, size_t cap) {
    out[0] = 0;
    char *json;
    if (hired_status(c, &json)) return;
    cJSON *root = cJSON_Parse(json);
    free(json);
    cJSON *j;
    cJSON_ArrayForEach(j, cJSON_GetObjectItem(root, "inflight")) {
        cJSON *jid = cJSON_GetObjectItem(j, "id"), *st = cJSON_GetObjectItem(j, "state");
        if (cJSON_IsString(jid) && cJSON_IsString(st) && !strcmp(jid->valuestring, id))
            snprintf(out, cap, "%s", st->valuestring);
    }
    cJSON_Delete(root);
}

bool rt_same_prefix(const char *got, size_t cap, const char *want) {
    size_t n = strlen(want) < cap - 1 ? strlen(want) : cap - 1;
    return strlen(got) == n && !strncmp(got, want, n);
}

bool rt_curve_served(void *server, const char *ep, const curve_cfg_t *cfg, char *uid) {
    void *ctx = zmq_ctx_new(), *c = zmq_socket(ctx, ZMQ_DEALER);
    char err[HIRED_ERR_LEN] = "";
    bool ok = wire_sock_setup(c, NULL) == 0 && curve_apply_client(c, cfg, err) == 0 && zmq_connect(c, ep) == 0;
    if (!ok) fprintf(stderr, "rt: cannot set up a CURVE client: %s\n", err);
    wire_msg_t m;
    wire_msg_init(&m, WIRE_HEARTBEAT);
    if (ok) (void)wire_send(c, NULL, 0, &m, NULL, err); /* queued until the handshake completes */
    bool got = false;
    if (uid) uid[0] = 0;
    zmq_pollitem_t it = {server, 0, ZMQ_POLLIN, 0};
    if (ok && zmq_poll(&it, 1, 3000) == 1) {
        wire_parts_t p;
        if (wire_recv(server, &p, 0) == 0 && p.n >= 2) {
            const char *u = zmq_msg_gets(&p.part[1], "User-Id");
            if (uid) snprintf(uid, 128, "%s", u ? u : "");
            if (wire_send(server, zmq_msg_data(&p.part[0]), zmq_msg_size(&p.part[0]), &m, NULL, err) == 0) {
                zmq_pollitem_t ic = {c, 0, ZMQ_POLLIN, 0};
                got = zmq_poll(&ic, 1, 3000) == 1;
            }
        }
        wire_parts_close(&p);
    }
    wire_msg_clear(&m);
    zmq_close(c);
    zmq_ctx_term(ctx);
    return got;
}
