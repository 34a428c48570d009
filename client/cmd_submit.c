/* cmd_submit.c — `hired submit` (one question about one image, through a running broker, the
 * answer streamed to stdout) and `hired status` (the broker's pools, queues, jobs in flight,
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
#include "err.h"
#include "file.h"
#include "hired_client.h"
#include "mem.h"

#define SUBMIT_MAX_IMAGE (32u * 1024 * 1024)

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

static void submit_usage(FILE *f) {
    fprintf(f,
            "usage: hired submit [--broker EP] --model NAME --image FILE [options] \"question\"\n"
            "  --broker EP         broker frontend ($HIRED_BROKER, else tcp://127.0.0.1:5555)\n"
            "  --model NAME        model name the workers serve ($HIRED_MODEL_NAME, else the last\n"
            "                      component of the model directory $HIRED_MODEL)\n"
            "  --strategy S        none | hired | spatial | prumerge | prumerge+   (hired)\n"
            "  --budget R          visual token budget rate in (0, 1]            (0.2)\n"
            "  --alpha A           HiRED base-image share in [0, 1]               (0.5)\n"
            "  --newline P         hf | none                                     (hf)\n"
            "  --max-tokens N      new tokens, 1..16384                          (256)\n"
            "  --temperature T     0 = greedy                                    (0)\n"
            "  --top-p P           nucleus mass in (0, 1]                        (1)\n"
            "  --top-k K           0 = off                                       (0)\n"
            "  --seed N            sampling seed                                 (0)\n"
            "  --deadline-ms N     job deadline (0 = broker default)\n"
            "  --connect-timeout-ms N  give up when the broker has not answered this long (10000)\n"
            "  --id ID             job id (default: random; ids are per client)\n"
            "  --no-stream         print the answer only when it is complete\n"
            "  --curve-server-key FILE  the broker's public CURVE certificate (zcert), with --curve-cert\n"
            "  --curve-cert FILE   this client's secret CURVE certificate (zcert NAME_secret)\n"
            "The answer goes to stdout, a summary line (usage, timings) to stderr.\n");
}

static int num_arg(const char *opt, const char *v, double lo, double hi, double *out) {
    char *end;
    errno = 0;
    double d = v ? strtod(v, &end) : 0;
    if (!v || errno || end == v || *end || !(d >= lo && d <= hi)) {
        fprintf(stderr, "hired submit: %s needs a number in [%g, %g], got '%s'\n", opt, lo, hi, v ? v : "");
        return -1;
    }
    *out = d;
    return 0;
}

static void print_timings(const hired_event *ev) {
    static const char *names[HIRED_STAGE_COUNT] = {"queue", "preprocess", "vit", "select", "transfer",
                                                   "project", "prefill", "decode", "total"};
    for (int s = 0; s < HIRED_STAGE_COUNT; s++)
        if (ev->timings_ms[s] >= 0) fprintf(stderr, " %s %.1f", names[s], ev->timings_ms[s]);
}

int cmd_submit(int argc, char **argv) {
    const char *broker = default_broker(), *model = default_model(), *image = NULL, *question = NULL;
    hired_client_opts co = {0};
    hired_job job;
    hired_job_init(&job);
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        double d;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            submit_usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--no-stream")) {
            job.params.stream = false;
            continue;
        }
        if (a[0] != '-' || a[1] != '-') {
            if (question) {
                fprintf(stderr, "hired submit: one question only (got '%s' and '%s'; quote the question)\n", question, a);
                return 2;
            }
            question = a;
            continue;
        }
        if (!v) {
            fprintf(stderr, "hired submit: %s needs a value\n", a);
            return 2;
        }
        i++;
        if (!strcmp(a, "--broker")) broker = v;
        else if (!strcmp(a, "--model")) model = v;
        else if (!strcmp(a, "--image")) image = v;
        else if (!strcmp(a, "--id")) job.id = v;
        else if (!strcmp(a, "--strategy")) job.params.strategy = v;
        else if (!strcmp(a, "--newline")) job.params.newline = v;
        else if (!strcmp(a, "--curve-server-key")) co.curve_server_key = v;
        else if (!strcmp(a, "--curve-cert")) co.curve_client_cert = v;
        else if (!strcmp(a, "--budget")) {
            if (num_arg(a, v, 1e-9, 1, &job.params.budget)) return 2;
        } else if (!strcmp(a, "--alpha")) {
            if (num_arg(a, v, 0, 1, &job.params.alpha)) return 2;
        } else if (!strcmp(a, "--temperature")) {
            if (num_arg(a, v, 0, 100, &job.params.temperature)) return 2;
        } else if (!strcmp(a, "--top-p")) {
            if (num_arg(a, v, 1e-9, 1, &job.params.top_p)) return 2;
        } else if (!strcmp(a, "--max-tokens")) {
            if (num_arg(a, v, 1, 16384, &d) || d != (int)d) return 2;
            job.params.max_tokens = (int)d;
        } else if (!strcmp(a, "--top-k")) {
            if (num_arg(a, v, 0, 1000000, &d) || d != (int)d) return 2;
            job.params.top_k = (int)d;
        } else if (!strcmp(a, "--deadline-ms")) {
            if (num_arg(a, v, 0, 86400000, &d) || d != (int)d) return 2;
            job.deadline_ms = (int)d;
        } else if (!strcmp(a, "--connect-timeout-ms")) {
            if (num_arg(a, v, 1, 86400000, &d) || d != (int)d) return 2;
            co.connect_timeout_ms = (int)d;
        } else if (!strcmp(a, "--seed")) {
            char *end;
            errno = 0;
            unsigned long long s = strtoull(v, &end, 10);
            if (errno || end == v || *end || v[0] == '-') {
                fprintf(stderr, "hired submit: --seed needs an unsigned integer, got '%s'\n", v);
                return 2;
            }
            job.params.seed = (uint64_t)s;
        } else {
            fprintf(stderr, "hired submit: unknown option '%s'\n", a);
            submit_usage(stderr);
            return 2;
        }
    }
    if (!model || !*model || !image || !question) {
        fprintf(stderr, "hired submit: --model, --image and a question are required\n");
        submit_usage(stderr);
        return 2;
    }
    uint8_t *bytes = NULL;
    size_t nb = 0;
    char ferr[HIRED_ERR_LEN];
    if (file_read(image, SUBMIT_MAX_IMAGE, &bytes, &nb, ferr)) {
        fprintf(stderr, "hired submit: %s\n", ferr);
        return 1;
    }
    job.model = model;
    job.prompt = question;
    job.image = bytes;
    job.image_len = nb;

    char err[HIRED_ERR_LEN];
    hired_client *c = hired_client_open(broker, &co, err);
    if (!c) {
        fprintf(stderr, "hired submit: %s\n", err);
        mem_free(bytes);
        return 1;
    }
    char id[HIRED_JOB_ID_LEN];
    int rc = hired_submit(c, &job, id);
    mem_free(bytes);
    if (rc) {
        fprintf(stderr, "hired submit: %s (check the parameters against `hired submit --help`)\n", hired_strerror(rc));
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
        cJSON_ArrayForEach(w, ws)
            fprintf(out, "          worker %-12s capacity %3.0f  in use %3.0f  heartbeat %5.0f ms ago\n", jstr(w, "id"),
                    jnum(w, "capacity"), jnum(w, "in_use"), jnum(w, "last_heartbeat_ms"));
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

int cmd_status(int argc, char **argv) {
    const char *broker = default_broker();
    bool json = false;
    const char *curve_server_key = NULL, *curve_cert = NULL;
    int timeout_ms = 5000;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            printf("usage: hired status [--broker EP] [--json] [--timeout-ms N] [--curve-server-key FILE "
                   "--curve-cert FILE]\n"
                   "  --broker EP       broker frontend ($HIRED_BROKER, else tcp://127.0.0.1:5555)\n"
                   "  --json            print the broker's STATUS JSON as it is\n"
                   "  --timeout-ms N    wait this long for the answer (100..10000, default 5000)\n"
                   "  --curve-server-key FILE  the broker's public CURVE certificate (zcert)\n"
                   "  --curve-cert FILE this client's secret CURVE certificate (zcert NAME_secret)\n");
            return 0;
        } else if (!strcmp(a, "--json")) {
            json = true;
        } else if (!strcmp(a, "--broker") && v) {
            broker = v;
            i++;
        } else if (!strcmp(a, "--curve-server-key") && v) {
            curve_server_key = v;
            i++;
        } else if (!strcmp(a, "--curve-cert") && v) {
            curve_cert = v;
            i++;
        } else if (!strcmp(a, "--timeout-ms") && v) {
            char *end;
            long t = strtol(v, &end, 10);
            if (*end || t < 100 || t > 10000) {
                fprintf(stderr, "hired status: --timeout-ms needs an integer in [100, 10000], got '%s'\n", v);
                return 2;
            }
            timeout_ms = (int)t;
            i++;
        } else {
            fprintf(stderr, "hired status: unknown or incomplete option '%s'\n", a);
            return 2;
        }
    }
    hired_client_opts o = {.timeout_ms = timeout_ms, .connect_timeout_ms = timeout_ms,
                           .curve_server_key = curve_server_key, .curve_client_cert = curve_cert};
    char err[HIRED_ERR_LEN];
    hired_client *c = hired_client_open(broker, &o, err);
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
