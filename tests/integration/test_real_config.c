/* test_real_config.c — the example configuration files cannot rot: each one is loaded by the
 * real binary (hired-encoder / hired-decoder --check-config; hired-broker started with it on
 * ephemeral ports, then SIGTERM, exit 0), and every key the binary knows (--help) is documented
 * in its example. Errors are refused by name with exit status 2: an unknown key and an
 * out-of-range value in a file (FILE:LINE), an out-of-range flag, an unknown chat template, a
 * CUDA device in this CPU-only build. Flags override the file, and the effective configuration
 * is logged. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "test_real_util.h"

#ifndef HIRED_SOURCE_DIR
#define HIRED_SOURCE_DIR "."
#endif

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

    /* the example as shipped */
    const char *ok[] = {"-c", ex, "--check-config", NULL};
    CHECK_EQ_INT(run(bin, ok, &out), 0);
    CHECK_MSG(strstr(out, "configuration OK") != NULL, "%s", out);
    free(out);
    CHECK_EQ_INT(undocumented_keys(bin, ex), 0);

    /* a flag overrides the file; the effective configuration is logged */
    char flag[96], logged[96];
    snprintf(flag, sizeof flag, "--%s=3", cap_key);
    snprintf(logged, sizeof logged, "config: %s = 3", cap_key);
    const char *ov[] = {"-c", ex, flag, "--log.level=info", "--check-config", NULL};
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

    /* a CUDA device is refused clearly in this build */
    const char *cu[] = {"-c", ex, "--device", "cuda:1", "--check-config", NULL};
    CHECK_EQ_INT(run(bin, cu, &out), 2);
    CHECK_MSG(strstr(out, "cuda:1") && strstr(out, "CUDA"), "%s", out);
    free(out);
}

int main(void) {
    h_init(55);
    worker_examples("encoder", "encoder_worker/hired-encoder", "encoder", "encoder.capacity");
    worker_examples("decoder", "decoder_worker/hired-decoder", "decoder", "decoder.capacity");

    /* the decoder refuses an unknown template by name */
    char *out = NULL;
    const char *tpl[] = {"-c", example("decoder"), "--decoder.template=alpaca", "--check-config", NULL};
    CHECK_EQ_INT(run("decoder_worker/hired-decoder", tpl, &out), 2);
    CHECK_MSG(strstr(out, "alpaca") != NULL, "%s", out);
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

    CHECK_EQ_INT(rt_cleanup(), 0);
    return test_summary();
}
