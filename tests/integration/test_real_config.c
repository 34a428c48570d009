/* test_real_config.c — the example configuration files cannot rot: each one is loaded by the
 * real binary (hired-broker / hired-encoder / hired-decoder --check-config, the workers with the
 * bundled tiny model as --model; hired-broker also started with it on ephemeral ports, then
 * SIGTERM, exit 0), and every key the binary knows (--help) is documented in its example.
 * Errors are refused by name with exit status 2 (a configuration error, which the systemd units
 * do not restart): an unknown key and an out-of-range value in a file (FILE:LINE), an
 * out-of-range flag, an unknown chat template, a CUDA device in this CPU-only build, a model
 * directory that is missing or does not load — by --check-config and at a real start alike —,
 * a broker endpoint that is not one, a CURVE certificate that does not exist. Flags override
 * the file, and the effective configuration is logged. hired-gateway's example likewise (no
 * model; its own errors: the listen address, the API keys file). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "test_real_util.h"

#ifndef HIRED_SOURCE_DIR
#define HIRED_SOURCE_DIR "."
#endif

static char g_model[2048]; /* the bundled tiny LLaVA-NeXT model directory */

static const char *example(const char *svc) {
    static char buf[2048];
    snprintf(buf, sizeof buf, "%s/config/hired-%s.cfg.example", HIRED_SOURCE_DIR, svc);
    return buf;
}

/* Runs bin with args; returns the exit status and its output (caller frees) in *out. */
static int run(const char *bin, const char *const *args, char **out) {
    const char *path = h_path("out.txt");
    int st = rt_run(bin, args, path, 20000);
    *out = rt_slurp(path);
    if (!*out) *out = calloc(1, 1);
    return st;
}

/* Every key listed by `bin --help` ("  group.leaf   ...") appears in the example as "leaf =". */
static int undocumented_keys(const char *bin, const char *file) {
    char *help = NULL, *ex = rt_slurp(file);
    const char *args[] = {"--help", NULL};
    CHECK_EQ_INT(run(bin, args, &help), 0);
    int missing = 0, keys = 0;
    for (char *line = help; ex && line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = 0;
        char key[128];
        if (line[0] == ' ' && line[1] == ' ' && line[2] != ' ' && sscanf(line, " %127s", key) == 1 && strchr(key, '.')) {
            keys++;
            char want[160];
            snprintf(want, sizeof want, "%s =", strrchr(key, '.') + 1);
            if (!strstr(ex, want)) {
                fprintf(stderr, "%s: key %s is not documented in %s\n", bin, key, file);
                missing++;
            }
        }
        line = nl ? nl + 1 : NULL;
    }
    CHECK_MSG(keys >= 10, "%s --help listed %d keys", bin, keys);
    free(help);
    free(ex);
    return ex ? missing : -1;
}

/* Writes the example with its first `from` replaced by `to` to a scratch file. */
static const char *replaced(const char *svc, const char *from, const char *to) {
    static char path[512];
    snprintf(path, sizeof path, "%s", h_path("replaced.cfg"));
    char *ex = rt_slurp(example(svc));
    char *at = ex ? strstr(ex, from) : NULL;
    FILE *f = fopen(path, "w");
    if (at && f) {
        fwrite(ex, 1, (size_t)(at - ex), f);
        fputs(to, f);
        fputs(at + strlen(from), f);
    }
    if (f) fclose(f);
    free(ex);
    return path;
}

/* Writes the example with `extra` inserted after the line "<group> = {" to a scratch file. */
static const char *patched(const char *svc, const char *group, const char *extra) {
    static char path[512];
    snprintf(path, sizeof path, "%s", h_path("patched.cfg"));
    char *ex = rt_slurp(example(svc));
    char open[64];
    snprintf(open, sizeof open, "\n%s = {\n", group);
    char *at = ex ? strstr(ex, open) : NULL;
    FILE *f = fopen(path, "w");
    if (at && f) {
        at += strlen(open);
        fwrite(ex, 1, (size_t)(at - ex), f);
        fputs(extra, f);
        fputs(at, f);
    }
    if (f) fclose(f);
    free(ex);
    return path;
}

static void worker_examples(const char *svc, const char *bin, const char *group, const char *cap_key) {
    char *out = NULL;
    const char *ex = example(svc);

    /* the example as shipped, with a model that exists */
    const char *ok[] = {"-c", ex, "--model", g_model, "--check-config", NULL};
    CHECK_EQ_INT(run(bin, ok, &out), 0);
    CHECK_MSG(strstr(out, "configuration OK") != NULL, "%s", out);
    free(out);
    CHECK_EQ_INT(undocumented_keys(bin, ex), 0);

    /* the example's model.dir does not exist here: a configuration error, named */
    const char *nodir[] = {"-c", ex, "--check-config", NULL};
    CHECK_EQ_INT(run(bin, nodir, &out), 2);
    CHECK_MSG(strstr(out, "/var/lib/hired/models/llava-v1.6-vicuna-7b-hf") != NULL, "%s", out);
    free(out);
    /* ... and so it is at a real start (exit 2, not 1: systemd must not restart it) */
    const char *start_nodir[] = {"-c", ex, "--worker.warmup=false", NULL};
    CHECK_EQ_INT(run(bin, start_nodir, &out), 2);
    CHECK_MSG(strstr(out, "cannot load the model") != NULL, "%s", out);
    free(out);
    /* a directory whose config.json is not a model's: refused by --check-config and at start */
    char broken[700], cfgjson[800], cmd[2000];
    snprintf(broken, sizeof broken, "%s", h_path("broken-model"));
    snprintf(cfgjson, sizeof cfgjson, "%s/config.json", broken);
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' && printf '{\"model_type\": \"bert\"}' > '%s'", broken, cfgjson);
    CHECK(system(cmd) == 0);
    const char *bad_model[] = {"-c", ex, "--model", broken, "--check-config", NULL};
    CHECK_EQ_INT(run(bin, bad_model, &out), 2);
    CHECK_MSG(strstr(out, "broken-model") != NULL, "%s", out);
    free(out);
    const char *start_bad[] = {"-c", ex, "--model", broken, "--worker.warmup=false", NULL};
    CHECK_EQ_INT(run(bin, start_bad, &out), 2);
    free(out);

    /* a flag overrides the file; the effective configuration is logged */
    char flag[96], logged[96];
    snprintf(flag, sizeof flag, "--%s=3", cap_key);
    snprintf(logged, sizeof logged, "config: %s = 3", cap_key);
    const char *ov[] = {"-c", ex, "--model", g_model, flag, "--log.level=info", "--check-config", NULL};
    CHECK_EQ_INT(run(bin, ov, &out), 0);
    CHECK_MSG(strstr(out, logged) != NULL, "no '%s' in:\n%s", logged, out);
    free(out);

    /* an unknown key in the file */
    const char *p = patched(svc, group, "  colour = \"blue\";\n");
    const char *unk[] = {"-c", p, "--check-config", NULL};
    CHECK_EQ_INT(run(bin, unk, &out), 2);
    char want[128];
    snprintf(want, sizeof want, "unknown key '%s.colour'", group);
    CHECK_MSG(strstr(out, want) && strstr(out, "patched.cfg:"), "%s", out);
    free(out);

    /* an out-of-range value in the file */
    p = replaced(svc, "capacity = ", "capacity = 9999; #");
    const char *rng[] = {"-c", p, "--check-config", NULL};
    CHECK_EQ_INT(run(bin, rng, &out), 2);
    CHECK_MSG(strstr(out, cap_key) && strstr(out, "replaced.cfg:"), "%s", out);
    free(out);

    /* an out-of-range flag */
    snprintf(flag, sizeof flag, "--%s=100000", cap_key);
    const char *fl[] = {"-c", ex, flag, "--check-config", NULL};
    CHECK_EQ_INT(run(bin, fl, &out), 2);
    CHECK_MSG(strstr(out, cap_key) && strstr(out, "command line"), "%s", out);
    free(out);

    /* a CUDA device that is not there (no machine here has 64 GPUs) is refused clearly */
    const char *cu[] = {"-c", ex, "--device", "cuda:63", "--check-config", NULL};
    CHECK_EQ_INT(run(bin, cu, &out), 2);
    CHECK_MSG(strstr(out, "cuda:63") && strstr(out, "CUDA"), "%s", out);
    free(out);
}

/* hired-gateway's example: --check-config, every key documented, errors named with exit 2 by
 * --check-config and at a real start alike (the unit does not restart those). */
static void gateway_example(void) {
    const char *bin = "gateway/hired-gateway", *ex = example("gateway");
    char *out = NULL;
    const char *ok[] = {"-c", ex, "--check-config", NULL};
    CHECK_EQ_INT(run(bin, ok, &out), 0);
    CHECK_MSG(strstr(out, "configuration OK") && strstr(out, "127.0.0.1:8000"), "%s", out);
    free(out);
    CHECK_EQ_INT(undocumented_keys(bin, ex), 0);
    /* flags override the file, and the effective configuration is logged */
    const char *ov[] = {"-c", ex, "--port", "9123", "--gateway.models=a,b", "--check-config", NULL};
    CHECK_EQ_INT(run(bin, ov, &out), 0);
    CHECK_MSG(strstr(out, "config: http.port = 9123") && strstr(out, "config: gateway.models = [\"a\", \"b\"]"), "%s", out);
    free(out);

    const char *p = patched("gateway", "http", "  colour = \"blue\";\n");
    const char *unk[] = {"-c", p, "--check-config", NULL};
    CHECK_EQ_INT(run(bin, unk, &out), 2);
    CHECK_MSG(strstr(out, "unknown key 'http.colour'") && strstr(out, "patched.cfg:"), "%s", out);
    free(out);
    p = replaced("gateway", "port = 8000", "port = 70000");
    const char *rng[] = {"-c", p, "--check-config", NULL};
    CHECK_EQ_INT(run(bin, rng, &out), 2);
    CHECK_MSG(strstr(out, "http.port") && strstr(out, "replaced.cfg:"), "%s", out);
    free(out);
    const char *fl[] = {"-c", ex, "--http.max_body_bytes=10", "--check-config", NULL};
    CHECK_EQ_INT(run(bin, fl, &out), 2);
    CHECK_MSG(strstr(out, "http.max_body_bytes") && strstr(out, "command line"), "%s", out);
    free(out);
    const char *ep[] = {"-c", ex, "--broker", "localhost:5555", "--check-config", NULL};
    CHECK_EQ_INT(run(bin, ep, &out), 2);
    CHECK_MSG(strstr(out, "localhost:5555") && strstr(out, "endpoint"), "%s", out);
    free(out);
    const char *half[] = {"-c", ex, "--curve.cert=/nonexistent/gw_secret", "--check-config", NULL};
    CHECK_EQ_INT(run(bin, half, &out), 2);
    CHECK_MSG(strstr(out, "set together") != NULL, "%s", out);
    free(out);
    const char *cv[] = {"-c", ex, "--curve.cert=/nonexistent/gw_secret", "--curve.server_key=/nonexistent/broker",
                        "--check-config", NULL};
    CHECK_EQ_INT(run(bin, cv, &out), 2);
    CHECK_MSG(strstr(out, "/nonexistent/") != NULL, "%s", out);
    free(out);
    const char *lis[] = {"-c", ex, "--listen", "no-such-host.invalid", "--check-config", NULL};
    CHECK_EQ_INT(run(bin, lis, &out), 2);
    CHECK_MSG(strstr(out, "no-such-host.invalid") && strstr(out, "http.listen"), "%s", out);
    free(out);
    /* the API keys file: missing, and one that holds no key (only comments) */
    const char *keys_missing[] = {"-c", ex, "--http.api_keys_file=/nonexistent/keys", "--check-config", NULL};
    CHECK_EQ_INT(run(bin, keys_missing, &out), 2);
    CHECK_MSG(strstr(out, "/nonexistent/keys") != NULL, "%s", out);
    free(out);
    char empty[600], arg[700];
    snprintf(empty, sizeof empty, "%s", h_path("empty-keys"));
    FILE *f = fopen(empty, "w");
    if (f) fputs("# no keys yet\n\n", f), fclose(f);
    snprintf(arg, sizeof arg, "--http.api_keys_file=%s", empty);
    const char *keys_empty[] = {"-c", ex, arg, "--check-config", NULL};
    CHECK_EQ_INT(run(bin, keys_empty, &out), 2);
    CHECK_MSG(strstr(out, "holds no key") != NULL, "%s", out);
    free(out);
    /* a real start with a configuration error: exit 2, not 1 */
    const char *start_bad[] = {"-c", ex, "--port", "0", arg, NULL};
    CHECK_EQ_INT(run(bin, start_bad, &out), 2);
    free(out);
}

int main(void) {
    h_init(RT_WATCHDOG_S);
    gateway_example();
    snprintf(g_model, sizeof g_model, "%s", rt_model_dir("llava-next-tiny"));
    worker_examples("encoder", "encoder_worker/hired-encoder", "encoder", "encoder.capacity");
    worker_examples("decoder", "decoder_worker/hired-decoder", "decoder", "decoder.capacity");

    /* the decoder refuses an unknown template by name */
    char *out = NULL;
    const char *tpl[] = {"-c", example("decoder"), "--decoder.template=alpaca", "--check-config", NULL};
    CHECK_EQ_INT(run("decoder_worker/hired-decoder", tpl, &out), 2);
    CHECK_MSG(strstr(out, "alpaca") != NULL, "%s", out);
    free(out);
    /* decoder.weights: q8 checks out and the worker names it; an unknown value is named */
    const char *q8[] = {"-c", example("decoder"), "--model", g_model, "--decoder.weights=q8", "--check-config", NULL};
    CHECK_EQ_INT(run("decoder_worker/hired-decoder", q8, &out), 0);
    free(out);
    const char *q4[] = {"-c", example("decoder"), "--model", g_model, "--decoder.weights=q4", "--check-config", NULL};
    CHECK_EQ_INT(run("decoder_worker/hired-decoder", q4, &out), 2);
    CHECK_MSG(strstr(out, "decoder.weights") != NULL, "%s", out);
    free(out);
    /* no model directory at all */
    const char *nomodel[] = {"--check-config", NULL};
    CHECK_EQ_INT(run("encoder_worker/hired-encoder", nomodel, &out), 2);
    CHECK_MSG(strstr(out, "model.dir") != NULL, "%s", out);
    free(out);

    /* the broker example: the real broker starts with it (ephemeral ports from the command line
     * override the file's) and exits 0 on SIGTERM at cleanup; every key is documented */
    char front[256], back[256];
    const char *bopts[] = {"-c", example("broker"), NULL};
    h_broker(NULL, NULL, bopts, front, back);
    CHECK(strncmp(front, "tcp://127.0.0.1:", 16) == 0);
    CHECK_EQ_INT(undocumented_keys("broker/hired-broker", example("broker")), 0);
    const char *p = replaced("broker", "queue_max = ", "queue_max = 0; #");
    const char *bad[] = {"-c", p, NULL};
    CHECK_EQ_INT(h_broker_exit(bad, 10000), 2);

    /* the broker takes --check-config too: 0 for its example, 2 for errors, binding nothing
     * (the example's ports 5555/5556 are not opened, so this runs beside anything) */
    const char *bok[] = {"-c", example("broker"), "--check-config", NULL};
    CHECK_EQ_INT(run("broker/hired-broker", bok, &out), 0);
    CHECK_MSG(strstr(out, "configuration OK") && strstr(out, "tcp://*:5555"), "%s", out);
    free(out);
    const char *bbad[] = {"-c", p, "--check-config", NULL};
    CHECK_EQ_INT(run("broker/hired-broker", bbad, &out), 2);
    CHECK_MSG(strstr(out, "queue_max") != NULL, "%s", out);
    free(out);
    const char *bep[] = {"-c", example("broker"), "--broker.frontend=localhost:5555", "--check-config", NULL};
    CHECK_EQ_INT(run("broker/hired-broker", bep, &out), 2);
    CHECK_MSG(strstr(out, "localhost:5555") && strstr(out, "endpoint"), "%s", out);
    free(out);
    /* a CURVE certificate that does not exist: named by --check-config, and exit 2 at start */
    const char *bcv[] = {"-c", example("broker"), "--curve.server_cert=/nonexistent/broker_secret",
                         "--curve.authorized_keys=/nonexistent/authorized", "--check-config", NULL};
    CHECK_EQ_INT(run("broker/hired-broker", bcv, &out), 2);
    CHECK_MSG(strstr(out, "/nonexistent/broker_secret") != NULL, "%s", out);
    free(out);
    const char *bcv_start[] = {"--broker.frontend=tcp://127.0.0.1:*", "--broker.backend=tcp://127.0.0.1:*",
                               "--curve.server_cert=/nonexistent/broker_secret",
                               "--curve.authorized_keys=/nonexistent/authorized", NULL};
    CHECK_EQ_INT(h_broker_exit(bcv_start, 10000), 2);

    CHECK_EQ_INT(rt_cleanup(), 0);
    return test_summary();
}
