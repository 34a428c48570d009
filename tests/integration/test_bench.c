/* test_bench.c — `hired bench` (client/cmd_bench.c) end to end: the real `hired` binary starts
 * its own hired-broker, hired-encoder and hired-decoder on the tiny LLaVA-NeXT model, runs the
 * default budgets (1.0, 0.4, 0.2, 0.1) with 1 warm-up and 2 runs of 4 tokens, stops the
 * services (they must exit 0: sanitizer leaks count, and the bench then exits 1), and writes
 * its JSON, which must hold:
 *   - every figure of every row present and positive (tok/s, TTFT, e2e with p10/p90, kept,
 *     wire bytes (from DONE usage.visual_kept / result_bytes, per "sources"), peak RSS of broker, encoder and decoder; stage medians present, >= 0, and
 *     vit / prefill / decode > 0), each raw sample, and the environment;
 *   - the acceptance criterion: bytes on the wire per image at r = 0.2 <= 21% of r = 1.0;
 *   - kept tokens as HiRED's arithmetic says for the bundled large.jpg (2400x1600, a 2x2 grid,
 *     P = 5, 2880 candidates; docs/selection.md §1.4/§1.6): N = floor(2880 r), the base keeps
 *     min(floor(N/2), 576), the 4 sub-images share the rest with floor losses (< 1 each), so
 *     r = 0.2 keeps 572..576 and r = 0.1 keeps 284..288; r = 1.0 keeps all 2880.
 * The bench's stdout must show the markdown table with the relative figures.
 * Nothing here depends on how fast the machine is: the figures must be present and sane
 * (positive, ordered percentiles, end-to-end >= TTFT), never above or below a speed. The only
 * clock is a hang watchdog (HANG_S, far beyond any run, below the ctest timeout of the `slow`
 * label so the bench's process group is still killed here rather than orphaned by ctest). */
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "test.h"

extern char **environ;

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
        free(s);
        s = NULL;
    }
    if (s) s[n] = 0;
    fclose(f);
    return s;
}

#define HANG_S 540 /* a hung bench, not a slow one: a normal run takes ~20 s, ~90 s under ASan */

/* Runs argv with stdout to out_path (stderr inherited); the exit status, or -1 when it hangs
 * past hang_s (the process group is killed). */
static int run(char *const argv[], const char *out_path, int hang_s) {
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawnattr_t at;
    posix_spawnattr_init(&at);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP);
    posix_spawnattr_setpgroup(&at, 0);
    pid_t pid;
    int rc = posix_spawn(&pid, argv[0], &fa, &at, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    if (rc) {
        fprintf(stderr, "cannot start %s: %s\n", argv[0], strerror(rc));
        return -1;
    }
    for (time_t t0 = time(NULL);;) {
        int st;
        pid_t w = waitpid(pid, &st, WNOHANG);
        if (w == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        if (time(NULL) - t0 > hang_s) {
            fprintf(stderr, "hired bench hangs (still running after %d s); killing it\n", hang_s);
            kill(-pid, SIGKILL);
            waitpid(pid, &st, 0);
            return -1;
        }
        usleep(50000);
    }
}

static double num(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

/* A {median, p10, p90} object, each > 0, with p10 <= median <= p90. */
static void check_stat(const cJSON *row, const char *k, double r) {
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(row, k);
    double m = num(o, "median"), lo = num(o, "p10"), hi = num(o, "p90");
    CHECK_MSG(m > 0 && lo > 0 && hi > 0 && lo <= m && m <= hi, "r=%g %s: median %g p10 %g p90 %g", r, k, m, lo, hi);
}

static const cJSON *row_for(const cJSON *summary, double r) {
    const cJSON *row;
    cJSON_ArrayForEach(row, summary)
        if (fabs(num(row, "budget") - r) < 1e-9) return row;
    return NULL;
}

/* `hired bench --concurrency` on the tiny model's own text half: every row of every level and
 * budget present with positive rates, two rounds, and the fixed-pool count larger at the small
 * budget (its jobs take fewer KV blocks; the counts are the scheduler's, not timings). */
static void test_concurrency(const char *hired, const char *model, const char *tmp, const char *json, const char *out) {
    (void)tmp;
    char *argv[] = {(char *)hired, "bench", "--model", (char *)model, "--concurrency", "1,3", "--budgets", "0.2,1.0",
                    "--max-tokens", "4", "--rounds", "2", "--json", (char *)json, NULL};
    CHECK_EQ_INT(run(argv, out, HANG_S), 0);
    char *table = slurp(out), *text = slurp(json);
    CHECK_MSG(table && strstr(table, "| r | prompt | in flight | agg decode tok/s") && strstr(table, "best of 2 rounds"),
              "stdout: %s", table ? table : "(none)");
    cJSON *root = text ? cJSON_Parse(text) : NULL;
    CHECK_MSG(root != NULL, "no JSON in %s", json);
    if (root) {
        const cJSON *rows = cJSON_GetObjectItemCaseSensitive(root, "concurrency"), *r;
        CHECK_EQ_INT(cJSON_GetArraySize(rows), 4);
        cJSON_ArrayForEach(r, rows) {
            CHECK_MSG(num(r, "agg_decode_tok_s") > 0 && num(r, "ttft_ms_p95") >= num(r, "ttft_ms_p50") &&
                          num(r, "kv_bytes_per_job") > 0 && num(r, "peak_running") >= 1 &&
                          num(r, "peak_running") <= num(r, "in_flight"),
                      "concurrency row r=%g in flight %g", num(r, "budget"), num(r, "in_flight"));
        }
        const cJSON *pool = cJSON_GetObjectItemCaseSensitive(root, "fixed_pool");
        CHECK_EQ_INT(cJSON_GetArraySize(pool), 2);
        double small = 0, full = 0;
        cJSON_ArrayForEach(r, pool) {
            if (num(r, "budget") < 0.5) small = num(r, "peak_running");
            else full = num(r, "peak_running");
        }
        CHECK_MSG(num(root, "pool_bytes") > 0 && full >= 1 && small > full, "fixed pool: %g jobs at r=0.2, %g at r=1.0",
                  small, full);
        printf("bench --concurrency: 4 rows; fixed pool %g jobs at r=0.2 vs %g at r=1.0\n", small, full);
        cJSON_Delete(root);
    }
    if (table && test_failures) fprintf(stderr, "--- hired bench --concurrency stdout\n%s", table);
    free(table);
    free(text);
}

int main(void) {
    const char *build = getenv("HIRED_BUILD_DIR");
    char hired[2048], model[4096], tmp[] = "/tmp/test_bench_XXXXXX", json[600], out[600];
    snprintf(hired, sizeof hired, "%s/client/hired", build ? build : ".");
    snprintf(model, sizeof model, "%s", test_fixture("models/llava-next-tiny"));
    if (!mkdtemp(tmp)) return 1;
    snprintf(json, sizeof json, "%s/bench.json", tmp);
    snprintf(out, sizeof out, "%s/stdout.txt", tmp);

    char *argv[] = {hired, "bench", "--model", model, "--runs", "2", "--warmup", "1", "--max-tokens", "4", "--json",
                    json, NULL};
    int st = run(argv, out, HANG_S);
    CHECK_EQ_INT(st, 0);

    char *table = slurp(out), *text = slurp(json);
    CHECK_MSG(table && strstr(table, "| strategy | r |") && strstr(table, "x tok/s") && strstr(table, "% TTFT") &&
                  strstr(table, "| vit |"),
              "stdout: %s", table ? table : "(none)");
    cJSON *root = text ? cJSON_Parse(text) : NULL;
    CHECK_MSG(root != NULL, "no JSON in %s", json);
    if (root) {
        const cJSON *env = cJSON_GetObjectItemCaseSensitive(root, "environment");
        CHECK(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(env, "cpu_model")));
        CHECK(num(env, "cores") >= 1);
        CHECK(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(env, "openblas_coretype")));
        /* the kernel family and the measured GEMM peak beside the figures */
        const cJSON *kern = cJSON_GetObjectItemCaseSensitive(env, "kernels");
        CHECK_MSG(cJSON_IsString(kern) && !strncmp(kern->valuestring, "gemm: ", 6), "environment.kernels");
        CHECK(num(env, "gemm_peak_gflops") > 0);
        CHECK(num(env, "gemm_peak_bf16_gflops") >= 0);
        CHECK_MSG(table && strstr(table, "kernels: gemm: ") && strstr(table, "measured GEMM peak"), "table: %s",
                  table ? table : "(none)");
        CHECK(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(env, "model_dir")));
        CHECK(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(env, "image")));
        CHECK_EQ_INT(num(env, "max_tokens"), 4);
        CHECK_EQ_INT(num(env, "partitions"), 5);

        /* kept and wire bytes are measured from the DONE usage, not from logs or arithmetic */
        const cJSON *src = cJSON_GetObjectItemCaseSensitive(root, "sources");
        const cJSON *sk = cJSON_GetObjectItemCaseSensitive(src, "kept"), *sw = cJSON_GetObjectItemCaseSensitive(src, "wire_bytes");
        CHECK(cJSON_IsString(sk) && strstr(sk->valuestring, "usage.visual_kept"));
        CHECK(cJSON_IsString(sw) && strstr(sw->valuestring, "usage.result_bytes"));

        const cJSON *summary = cJSON_GetObjectItemCaseSensitive(root, "summary"), *row;
        CHECK_EQ_INT(cJSON_GetArraySize(summary), 4);
        cJSON_ArrayForEach(row, summary) {
            double r = num(row, "budget");
            const cJSON *s = cJSON_GetObjectItemCaseSensitive(row, "strategy");
            CHECK(cJSON_IsString(s) && !strcmp(s->valuestring, "hired"));
            CHECK_EQ_INT(num(row, "n"), 2);
            check_stat(row, "tok_s", r);
            check_stat(row, "ttft_ms", r);
            check_stat(row, "e2e_ms", r);
            CHECK_MSG(num(row, "kept") > 0 && num(row, "total") == 2880, "r=%g kept %g of %g", r, num(row, "kept"),
                      num(row, "total"));
            CHECK_MSG(num(row, "image_tokens") > 0, "r=%g", r);
            CHECK_MSG(num(row, "wire_bytes") > 0, "r=%g", r);
            const cJSON *mem = cJSON_GetObjectItemCaseSensitive(row, "peak_rss_kb");
            CHECK_MSG(num(mem, "broker") > 0 && num(mem, "encoder") > 0 && num(mem, "decoder") > 0,
                      "r=%g peak RSS %g %g %g", r, num(mem, "broker"), num(mem, "encoder"), num(mem, "decoder"));
            const cJSON *stages = cJSON_GetObjectItemCaseSensitive(row, "stages_ms");
            static const char *const names[] = {"preprocess", "vit", "select", "transfer", "project", "prefill", "decode"};
            for (int i = 0; i < 7; i++) CHECK_MSG(num(stages, names[i]) >= 0, "r=%g stage %s missing", r, names[i]);
            CHECK(num(stages, "vit") > 0 && num(stages, "prefill") > 0 && num(stages, "decode") > 0);
            if (r < 1) {
                const cJSON *rel = cJSON_GetObjectItemCaseSensitive(row, "vs_full");
                CHECK_MSG(num(rel, "tok_s_ratio") > 0 && num(rel, "wire_ratio") > 0, "r=%g relative figures", r);
            }
        }
        const cJSON *full = row_for(summary, 1.0), *r02 = row_for(summary, 0.2), *r01 = row_for(summary, 0.1);
        CHECK(full && r02 && r01 && row_for(summary, 0.4));
        if (full && r02 && r01) {
            double wf = num(full, "wire_bytes"), w2 = num(r02, "wire_bytes");
            CHECK_MSG(w2 > 0 && wf > 0 && w2 <= 0.21 * wf, "wire bytes at r=0.2: %g = %.1f%% of %g at r=1.0", w2,
                      100 * w2 / wf, wf);
            CHECK_EQ_INT(num(full, "kept"), 2880);
            CHECK_MSG(num(r02, "kept") >= 572 && num(r02, "kept") <= 576, "kept at r=0.2: %g", num(r02, "kept"));
            CHECK_MSG(num(r01, "kept") >= 284 && num(r01, "kept") <= 288, "kept at r=0.1: %g", num(r01, "kept"));
            printf("wire bytes per image: r=1.0 %.0f, r=0.2 %.0f (%.1f%%); kept at 0.2: %.0f/2880\n", wf, w2,
                   100 * w2 / wf, num(r02, "kept"));
        }
        const cJSON *samples = cJSON_GetObjectItemCaseSensitive(root, "samples"), *s;
        CHECK_EQ_INT(cJSON_GetArraySize(samples), 8);
        cJSON_ArrayForEach(s, samples) {
            CHECK(num(s, "ttft_ms") > 0 && num(s, "e2e_ms") >= num(s, "ttft_ms") && num(s, "tok_s") > 0);
            CHECK(num(s, "completion_tokens") >= 1 && num(s, "kept") > 0 && num(s, "wire_bytes") > 0);
            /* result_bytes = header + K x D x 2 (f16): the header is what is left, and small */
            double hb = num(s, "wire_header_bytes"), tb = num(s, "wire_tensor_bytes");
            CHECK_MSG(hb > 0 && tb > 0 && hb < 64 * 1024 && hb + tb == num(s, "wire_bytes"), "header %g tensor %g", hb, tb);
            CHECK(cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(s, "timings_ms")));
        }
        cJSON_Delete(root);
    }
    if (table && test_failures) fprintf(stderr, "--- hired bench stdout\n%s", table);
    free(table);
    free(text);
    test_concurrency(hired, model, tmp, json, out);
    unlink(json);
    unlink(out);
    rmdir(tmp);
    return test_summary();
}
