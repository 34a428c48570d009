/* cmd_submit.c — `hired submit` (a request through a running broker, the answer streamed to
 * stdout: one question about one image, or a conversation of system / user / assistant turns
 * with 0..16 images given as `hired run` takes it, cli_conv.h) and `hired status` (the broker's pools, queues, jobs in flight,
 * counters and stage timings; pretty text or --json).
 *
 * Both talk to the broker's frontend through libhired only (hired_client.h). submit prints
 * the answer alone on stdout and one summary line (tokens, finish, stage timings) on stderr.
 * A malformed endpoint is refused at once; a broker that never answers ends the job after
 * --connect-timeout-ms. SIGINT / SIGTERM end submit early: the client says goodbye and the
 * broker cancels the job (a client killed outright has it cancelled after the broker's
 * client_grace_ms).
 * Exit status: 0 done, 1 the job failed (ERROR, BUSY, no broker, interrupted), 2 usage.
 * Not here: `hired run` (in-process, cmd_run.c), the CLI dispatcher (cli.c). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "cli_conv.h"
#include "err.h"
#include "file.h"
#include "hired_client.h"
#include "mem.h"
#include "wire.h"

static volatile sig_atomic_t g_interrupted;

static void on_interrupt(int sig) { g_interrupted = sig; }

static const char *default_broker(void) {
    const char *e = getenv("HIRED_BROKER");
    return e && *e ? e : "tcp://127.0.0.1:5555";
}

/* The model name when --model is not given: $HIRED_MODEL_NAME, else the last component of the
 * model directory $HIRED_MODEL — the name hired-encoder / hired-decoder serve a directory under
 * when their model.name is empty (common/svc.c). $HIRED_MODEL is a directory everywhere (as for
 * scripts/run-main.sh). NULL when neither is set. */
static const char *default_model(void) {
    const char *e = getenv("HIRED_MODEL_NAME");
    if (e && *e) return e;
    e = getenv("HIRED_MODEL");
    if (!e || !*e) return NULL;
    static char name[4096];
    snprintf(name, sizeof name, "%s", e);
    size_t l = strlen(name);
    while (l > 1 && name[l - 1] == '/') name[--l] = 0;
    const char *slash = strrchr(name, '/');
    return slash ? slash + 1 : name;
}

/* What submit and status share: where the broker is and the client's CURVE key pair. */
typedef struct {
    char *broker, *curve_server_key, *curve_cert;
} conn_opts_t;

#define CONN_N 3
static void conn_entries(size_t base, cfg_entry_t *out) {
#define O(f) (base + offsetof(conn_opts_t, f))
    const cfg_entry_t e[CONN_N] = {
        {"broker", CFG_STRING, O(broker), 0, 4096, "", NULL, "broker frontend ($HIRED_BROKER, else tcp://127.0.0.1:5555)"},
        {"curve-server-key", CFG_STRING, O(curve_server_key), 0, 4096, "", NULL,
         "the broker's public CURVE certificate (zcert), with --curve-cert"},
        {"curve-cert", CFG_STRING, O(curve_cert), 0, 4096, "", NULL,
         "this client's secret CURVE certificate (zcert NAME_secret)"},
    };
#undef O
    memcpy(out, e, sizeof e);
}

/* The client options of c (empty strings: not given). */
static hired_client_opts conn_client_opts(const conn_opts_t *c) {
    return (hired_client_opts){.curve_server_key = c->curve_server_key[0] ? c->curve_server_key : NULL,
                               .curve_client_cert = c->curve_cert[0] ? c->curve_cert : NULL};
}

static const char *conn_broker(const conn_opts_t *c) { return c->broker[0] ? c->broker : default_broker(); }

typedef struct {
    conn_opts_t conn;
    char *model, *messages, *id, *strategy, *newline;
    cfg_strlist_t image;
    double budget, alpha, temperature, top_p;
    int64_t max_tokens, top_k, seed, deadline_ms, connect_timeout_ms;
    bool no_stream;
} submit_opts_t;

#define SUBMIT_OWN 16
#define O(f) offsetof(submit_opts_t, f)
static const cfg_entry_t k_submit_own[SUBMIT_OWN] = {
    {"model", CFG_STRING, O(model), 0, WIRE_MAX_MODEL, "", NULL,
     "model name the workers serve ($HIRED_MODEL_NAME, else the last component of the model directory $HIRED_MODEL)"},
    {"image", CFG_STRLIST, O(image), 0, WIRE_MAX_IMAGES, "", NULL,
     "an image file for the last user turn, in order (none: text only)"},
    {"messages", CFG_STRING, O(messages), 0, 4096, "", NULL,
     "the conversation as JSON in the OpenAI messages shape (as `hired run --messages`)"},
    {"strategy", CFG_STRING, O(strategy), 1, WIRE_MAX_STRATEGY, "hired", NULL, "none | hired | spatial | prumerge | prumerge+"},
    {"budget", CFG_DOUBLE, O(budget), 1e-9, 1, "0.2", NULL, "visual token budget rate"},
    {"alpha", CFG_DOUBLE, O(alpha), 0, 1, "0.5", NULL, "HiRED base-image share"},
    {"newline", CFG_STRING, O(newline), 1, WIRE_MAX_NEWLINE, "hf", NULL, "hf | none"},
    {"max-tokens", CFG_INT, O(max_tokens), 1, WIRE_MAX_TOKENS, "256", NULL, "new tokens"},
    {"temperature", CFG_DOUBLE, O(temperature), 0, 100, "0", NULL, "0 = greedy"},
    {"top-p", CFG_DOUBLE, O(top_p), 1e-9, 1, "1", NULL, "nucleus mass"},
    {"top-k", CFG_INT, O(top_k), 0, 1000000, "0", NULL, "0 = off"},
    {"seed", CFG_INT, O(seed), 0, 9223372036854775807.0, "0", NULL, "sampling seed"},
    {"deadline-ms", CFG_INT, O(deadline_ms), 0, 86400000, "0", NULL, "job deadline (0 = broker default)"},
    {"connect-timeout-ms", CFG_INT, O(connect_timeout_ms), 1, 86400000, "10000", NULL,
     "give up when the broker has not answered this long"},
    {"id", CFG_STRING, O(id), 0, WIRE_MAX_ID, "", NULL, "job id (default: random; ids are per client)"},
    {"no-stream", CFG_BOOL, O(no_stream), 0, 0, "false", NULL, "print the answer only when it is complete"},
};
#undef O

static void print_timings(const hired_event *ev) {
    static const char *names[HIRED_STAGE_COUNT] = {"queue", "preprocess", "vit", "select", "transfer",
                                                   "project", "prefill", "decode", "total"};
    for (int s = 0; s < HIRED_STAGE_COUNT; s++)
        if (ev->timings_ms[s] >= 0) fprintf(stderr, " %s %.1f", names[s], ev->timings_ms[s]);
}

/* Submits job (its model, params and request set) and streams the answer: the exit status
 * (0 done, 1 failed, 2 refused parameters). */
static int send_job(hired_job *job_in, const char *broker, const hired_client_opts *co) {
    hired_job job = *job_in;
    char err[HIRED_ERR_LEN];
    hired_client *c = hired_client_open(broker, co, err);
    if (!c) {
        fprintf(stderr, "hired submit: %s\n", err);
        return 1;
    }
    char id[HIRED_JOB_ID_LEN];
    int rc = hired_submit_err(c, &job, id, err);
    if (rc) {
        fprintf(stderr, "hired submit: %s: %s (check the parameters against `hired submit --help`)\n",
                hired_strerror(rc), err);
        hired_client_destroy(&c);
        return 2;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_interrupt;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    int status = 1;
    for (bool end = false; !end;) {
        hired_event ev;
        if (g_interrupted) {
            fprintf(stderr, "\nhired submit: interrupted; job %s is cancelled\n", id);
            break;
        }
        if (hired_next_event(c, 200, &ev)) continue; /* the library ends the job at its deadline */
        switch (ev.type) {
        case HIRED_EVENT_ACCEPTED: break;
        case HIRED_EVENT_TOKEN:
            fputs(ev.text ? ev.text : "", stdout);
            fflush(stdout);
            break;
        case HIRED_EVENT_DONE:
            if (!job.params.stream && ev.text) fputs(ev.text, stdout);
            fputc('\n', stdout);
            fflush(stdout);
            fprintf(stderr, "hired submit: job %s done (%s): %u prompt + %u image tokens in, %u out; ms:", id,
                    ev.finish, ev.prompt_tokens, ev.image_tokens, ev.completion_tokens);
            print_timings(&ev);
            if (ev.visual_kept || ev.result_bytes)
                fprintf(stderr, "; visual %u/%u kept, encoder RESULT %u bytes", ev.visual_kept, ev.visual_total,
                        ev.result_bytes);
            fputc('\n', stderr);
            status = 0;
            end = true;
            break;
        case HIRED_EVENT_ERROR:
            fprintf(stderr, "hired submit: job %s failed: %s (%s)\n", id, ev.message, hired_strerror(ev.code));
            end = true;
            break;
        case HIRED_EVENT_BUSY:
            fprintf(stderr, "hired submit: broker busy (%s), retry in %u ms\n", ev.message, ev.retry_ms);
            end = true;
            break;
        }
        hired_event_clear(&ev);
    }
    hired_client_destroy(&c);
    return status;
}

/* submit's body: the job from the options, sent and streamed. The classic form (one question,
 * one --image, no other turn) travels as a prompt, which the decoder wraps exactly as `hired
 * run` does; anything else as messages with their images. */
static int submit_body(const cli_cmd_t *cmd, void *values, const char **pos, int n_pos) {
    const submit_opts_t *o = values;
    const turns_t *turns = cmd->user;
    const char *model = o->model[0] ? o->model : default_model(), *question = n_pos ? pos[0] : NULL;
    const char *messages = o->messages[0] ? o->messages : NULL;
    if (!model || !*model) {
        fprintf(stderr, "hired submit: --model (or $HIRED_MODEL_NAME) is required\n");
        return 2;
    }
    int usage = cli_conv_usage("hired submit", turns, question, messages, o->image.n);
    if (usage) return usage;
    const char *broker = conn_broker(&o->conn);
    hired_client_opts co = conn_client_opts(&o->conn);
    co.connect_timeout_ms = (int)o->connect_timeout_ms;
    hired_job job;
    hired_job_init(&job);
    job.model = model;
    job.id = o->id[0] ? o->id : NULL;
    job.deadline_ms = (int)o->deadline_ms;
    job.params.strategy = o->strategy;
    job.params.newline = o->newline;
    job.params.budget = o->budget;
    job.params.alpha = o->alpha;
    job.params.temperature = o->temperature;
    job.params.top_p = o->top_p;
    job.params.max_tokens = (int)o->max_tokens;
    job.params.top_k = (int)o->top_k;
    job.params.seed = (uint64_t)o->seed;
    job.params.stream = !o->no_stream;

    char err[HIRED_ERR_LEN];
    conv_t *c = mem_calloc(1, sizeof *c);
    hired_message *msgs = mem_calloc(RUN_MAX_TURNS, sizeof *msgs);
    hired_part *parts = mem_calloc(RUN_MAX_PARTS, sizeof *parts);
    hired_image imgs[GEN_MAX_IMAGES];
    int rc = c && msgs && parts ? HIRED_OK : hired_errf(err, HIRED_ENOMEM, "out of memory");
    if (!rc) rc = cli_conv_build(c, turns, question, messages, (const char *const *)o->image.items, o->image.n, err);
    if (!rc && !messages && !turns->n && question && c->n_img == 1) { /* the classic form */
        job.prompt = question;
        job.image = c->img[0].bytes;
        job.image_len = c->img[0].n;
    } else if (!rc) {
        for (int i = 0; i < c->n_msg; i++) {
            const tpl_message_t *m = &c->msg[i];
            hired_part *p = parts + (m->parts - c->part);
            for (int k = 0; k < m->n_parts; k++) p[k].text = m->parts[k].kind == TPL_PART_TEXT ? m->parts[k].text : NULL;
            msgs[i] = (hired_message){m->role, p, m->n_parts};
        }
        for (int i = 0; i < c->n_img; i++) imgs[i] = (hired_image){c->img[i].bytes, c->img[i].n};
        job.messages = msgs, job.n_messages = c->n_msg;
        job.images = imgs, job.n_images = c->n_img;
    }
    int status = rc ? 1 : send_job(&job, broker, &co);
    if (rc) fprintf(stderr, "hired submit: %s\n", err);
    if (c) cli_conv_free(c);
    mem_free(c);
    mem_free(msgs);
    mem_free(parts);
    return status;
}

int cmd_submit(int argc, char **argv) {
    turns_t turns = {0};
    const cli_cmd_t cmd = {
        .prog = "hired submit",
        .usage = "usage: hired submit [--broker EP] --model NAME [--image FILE]... [options] [\"question\"]\n"
                 "  sends a job to a running hired-broker and streams the answer: the answer goes to stdout,\n"
                 "  a summary line (usage, timings) to stderr\n"
                 "The request is given as for `hired run`: --system T, --user T, --assistant T (repeatable, in\n"
                 "command-line order; the question is the last user turn, the --image files go to it), or\n"
                 "--messages FILE (OpenAI messages JSON; {\"type\": \"image\"} parts take the --image files in\n"
                 "order). Up to 16 images; none: a text-only request.\n",
        .t = k_submit_own,
        .n = SUBMIT_OWN,
        .group = conn_entries,
        .group_n = CONN_N,
        .group_base = offsetof(submit_opts_t, conn),
        .max_pos = 1,
        .extra = cli_take_turn,
        .user = &turns,
        .body = submit_body,
    };
    submit_opts_t o = {0};
    return cli_command(&cmd, &o, argc, argv);
}

// ---- status ----------------------------------------------------------------------------------

static double jnum(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

static const char *jstr(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : "?";
}

static void status_pretty(const cJSON *root, FILE *out) {
    fprintf(out, "broker: epoch %s, up %.1f s\n", jstr(root, "epoch"), jnum(root, "uptime_ms") / 1e3);
    const cJSON *pools = cJSON_GetObjectItemCaseSensitive(root, "pools"), *pool;
    fprintf(out, "pools:\n");
    if (!cJSON_GetArraySize(pools)) fprintf(out, "  (no workers)\n");
    cJSON_ArrayForEach(pool, pools) {
        const cJSON *ws = cJSON_GetObjectItemCaseSensitive(pool, "workers"), *w;
        int cap = 0, used = 0;
        cJSON_ArrayForEach(w, ws) {
            cap += (int)jnum(w, "capacity");
            used += (int)jnum(w, "in_use");
        }
        fprintf(out, "  %-7s %-32s %d workers, %d/%d slots in use\n", jstr(pool, "service"), jstr(pool, "model"),
                cJSON_GetArraySize(ws), used, cap);
        cJSON_ArrayForEach(w, ws) {
            fprintf(out, "          worker %-12s capacity %3.0f  in use %3.0f  heartbeat %5.0f ms ago", jstr(w, "id"),
                    jnum(w, "capacity"), jnum(w, "in_use"), jnum(w, "last_heartbeat_ms"));
            if (cJSON_GetObjectItemCaseSensitive(w, "kv_blocks_total")) /* a batching decoder's own figures */
                fprintf(out, "  batch %3.0f  KV blocks %.0f/%.0f  waiting for KV %.0f", jnum(w, "batch"),
                        jnum(w, "kv_blocks_used"), jnum(w, "kv_blocks_total"), jnum(w, "kv_waiting"));
            fputc('\n', out);
        }
    }
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(root, "queues");
    fprintf(out, "queues: encode %.0f, decode %.0f\n", jnum(q, "encode"), jnum(q, "decode"));
    const cJSON *inf = cJSON_GetObjectItemCaseSensitive(root, "inflight"), *j;
    fprintf(out, "in flight: %d\n", cJSON_GetArraySize(inf));
    if (cJSON_GetArraySize(inf))
        fprintf(out, "  %-34s %-24s %-10s %8s %9s %12s\n", "id", "model", "state", "attempts", "age ms", "deadline ms");
    cJSON_ArrayForEach(j, inf)
        fprintf(out, "  %-34s %-24s %-10s %8.0f %9.0f %12.0f\n", jstr(j, "id"), jstr(j, "model"), jstr(j, "state"),
                jnum(j, "attempts"), jnum(j, "age_ms"), jnum(j, "deadline_in_ms"));
    const cJSON *cs = cJSON_GetObjectItemCaseSensitive(root, "counters"), *c;
    fprintf(out, "counters:");
    int i = 0;
    cJSON_ArrayForEach(c, cs) fprintf(out, "%s%s %.0f", i++ % 6 ? ", " : "\n  ", c->string, cJSON_IsNumber(c) ? c->valuedouble : 0);
    fprintf(out, "\n");
    const cJSON *ts = cJSON_GetObjectItemCaseSensitive(root, "timings"), *t;
    if (cJSON_GetArraySize(ts)) {
        fprintf(out, "timings:  %-10s %8s %10s %10s %10s\n", "stage", "count", "mean ms", "p50 ms", "p95 ms");
        cJSON_ArrayForEach(t, ts)
            fprintf(out, "          %-10s %8.0f %10.1f %10.1f %10.1f\n", t->string, jnum(t, "count"),
                    jnum(t, "mean_ms"), jnum(t, "p50_ms"), jnum(t, "p95_ms"));
    }
}

/* Asks the broker at broker for its STATUS and prints it (as JSON or pretty): the exit status. */
static int status_show(const char *broker, const hired_client_opts *o, bool json) {
    char err[HIRED_ERR_LEN];
    hired_client *c = hired_client_open(broker, o, err);
    if (!c) {
        fprintf(stderr, "hired status: %s\n", err);
        return 1;
    }
    char *text = NULL;
    int rc = hired_status(c, &text);
    hired_client_destroy(&c);
    if (rc) {
        fprintf(stderr, "hired status: no answer from %s: %s\n", broker, hired_strerror(rc));
        return 1;
    }
    if (json) {
        printf("%s\n", text);
        free(text);
        return 0;
    }
    cJSON *root = cJSON_Parse(text);
    free(text);
    if (!root) {
        fprintf(stderr, "hired status: the broker's answer is not JSON\n");
        return 1;
    }
    status_pretty(root, stdout);
    cJSON_Delete(root);
    return 0;
}

typedef struct {
    conn_opts_t conn;
    int64_t timeout_ms;
    bool json;
} status_opts_t;

/* status's body: ask and print. */
static int status_body(const cli_cmd_t *cmd, void *values, const char **pos, int n_pos) {
    (void)cmd, (void)pos, (void)n_pos;
    const status_opts_t *so = values;
    hired_client_opts o = conn_client_opts(&so->conn);
    o.timeout_ms = o.connect_timeout_ms = (int)so->timeout_ms;
    return status_show(conn_broker(&so->conn), &o, so->json);
}

int cmd_status(int argc, char **argv) {
    static const cfg_entry_t own[] = {
        {"json", CFG_BOOL, offsetof(status_opts_t, json), 0, 0, "false", NULL, "print the broker's STATUS JSON as it is"},
        {"timeout-ms", CFG_INT, offsetof(status_opts_t, timeout_ms), 100, 10000, "5000", NULL,
         "wait this long for the answer"},
    };
    static const cli_cmd_t cmd = {
        .prog = "hired status",
        .usage = "usage: hired status [--broker EP] [--json] [--timeout-ms N] [--curve-server-key FILE --curve-cert FILE]\n"
                 "  the broker's pools, queues, jobs in flight, counters and stage timings\n",
        .t = own,
        .n = (int)ARRAY_LEN(own),
        .group = conn_entries,
        .group_n = CONN_N,
        .group_base = offsetof(status_opts_t, conn),
        .body = status_body,
    };
    status_opts_t o = {0};
    return cli_command(&cmd, &o, argc, argv);
}
