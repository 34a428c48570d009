/* cmd_run.c — `hired run`: one question about one image, end to end in this process (no
 * broker): decode image, preprocess, vision tower, token selection, projector, packing,
 * prefill, decode (decoder_worker/generate.h). The answer streams to stdout as it is generated;
 * then one summary line goes to stderr (visual tokens kept/total, milliseconds per stage,
 * tokens/s, KV-cache bytes), so stdout holds the answer alone.
 * Exit status: 0 on success, 1 on a runtime error (message on stderr), 2 on a usage error. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "err.h"
#include "generate.h"
#include "mem.h"


#define RUN_MAX_STOP 16

static void run_usage(FILE *f) {
    fprintf(f,
            "usage: hired run --model DIR --image FILE [options] \"question\"\n"
            "  --strategy S        none | hired | spatial | prumerge | prumerge+   (hired)\n"
            "  --budget R          visual token budget rate in (0, 1]            (0.2)\n"
            "  --alpha A           HiRED base-image share in [0, 1]               (0.5)\n"
            "  --split S           reference | paper: HiRED sub-image split     (reference)\n"
            "  --spatial S         strided tokens added to hired, in [0, 1]       (0)\n"
            "  --newline P         hf | none: image_newline after mosaic rows     (hf)\n"
            "  --template T        vicuna | llava-1.5 | vicuna-system | vicuna-lmms-eval |\n"
            "                      mistral | raw   (default: from the text model type)\n"
            "  --max-tokens N      new tokens                                    (256)\n"
            "  --temperature T     0 = greedy                                    (0)\n"
            "  --top-p P           nucleus mass, 1 = off                         (1)\n"
            "  --top-k K           0 = off                                       (0)\n"
            "  --seed N            per-job sampling seed                         (0)\n"
            "  --stop STR          stop string (repeatable, up to %d)\n"
            "The answer goes to stdout, the summary line to stderr.\n",
            RUN_MAX_STOP);
}

static int parse_long(const char *arg, const char *val, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = val ? strtol(val, &end, 10) : 0;
    if (!val || errno || end == val || *end || v < lo || v > hi) {
        fprintf(stderr, "hired run: %s needs an integer in [%ld, %ld], got '%s'\n", arg, lo, hi, val ? val : "");
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_float(const char *arg, const char *val, double lo, double hi, float *out) {
    char *end;
    errno = 0;
    double v = val ? strtod(val, &end) : 0;
    if (!val || errno || end == val || *end || !(v >= lo && v <= hi)) {
        fprintf(stderr, "hired run: %s needs a number in [%g, %g], got '%s'\n", arg, lo, hi, val ? val : "");
        return -1;
    }
    *out = (float)v;
    return 0;
}

static int emit_stdout(void *user, const char *text, size_t len, int32_t token) {
    (void)user;
    (void)token;
    if (len) fwrite(text, 1, len, stdout);
    fflush(stdout);
    return 0;
}

int cmd_run(int argc, char **argv) {
    const char *model = NULL, *image = NULL, *question = NULL;
    const char *stops[RUN_MAX_STOP + 1] = {0};
    int n_stop = 0;
    gen_params_t p;
    gen_params_default(&p);
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        long n;
        int used = cli_parse_selection(&p.sel, a, v);
        if (used < 0) return 2;
        if (used > 0) {
            i++;
            continue;
        }
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            run_usage(stdout);
            return 0;
        }
        if (a[0] == '-' && a[1] == '-' && !v) {
            fprintf(stderr, "hired run: %s needs a value\n", a);
            return 2;
        }
        if (!strcmp(a, "--model")) model = v;
        else if (!strcmp(a, "--image")) image = v;
        else if (!strcmp(a, "--template")) p.template_name = v;
        else if (!strcmp(a, "--newline")) {
            if (pack_newline_parse(v, &p.newline)) {
                fprintf(stderr, "hired run: unknown newline policy '%s' (hf, none)\n", v);
                return 2;
            }
        } else if (!strcmp(a, "--max-tokens")) {
            if (parse_long(a, v, 1, 1 << 20, &n)) return 2;
            p.max_tokens = (int)n;
        } else if (!strcmp(a, "--top-k")) {
            if (parse_long(a, v, 0, 1 << 24, &n)) return 2;
            p.sampling.top_k = (int)n;
        } else if (!strcmp(a, "--seed")) {
            char *end;
            errno = 0;
            unsigned long long s = strtoull(v, &end, 10);
            if (errno || end == v || *end) {
                fprintf(stderr, "hired run: --seed needs an unsigned integer, got '%s'\n", v);
                return 2;
            }
            p.sampling.seed = (uint64_t)s;
        } else if (!strcmp(a, "--temperature")) {
            if (parse_float(a, v, 0, 100, &p.sampling.temperature)) return 2;
        } else if (!strcmp(a, "--top-p")) {
            if (parse_float(a, v, 0, 1, &p.sampling.top_p)) return 2;
        } else if (!strcmp(a, "--stop")) {
            if (n_stop == RUN_MAX_STOP || !v[0]) {
                fprintf(stderr, "hired run: at most %d non-empty --stop strings\n", RUN_MAX_STOP);
                return 2;
            }
            stops[n_stop++] = v;
        } else if (a[0] == '-' && a[1] == '-') {
            fprintf(stderr, "hired run: unknown option '%s'\n", a);
            run_usage(stderr);
            return 2;
        } else if (!question) {
            question = a;
            continue;
        } else {
            fprintf(stderr, "hired run: one question only (got '%s' and '%s'; quote the question)\n", question, a);
            return 2;
        }
        i++;
    }
    if (!model || !image || !question) {
        fprintf(stderr, "hired run: --model, --image and a question are required\n");
        run_usage(stderr);
        return 2;
    }
    if (n_stop) p.stop = stops;

    char err[HIRED_ERR_LEN];
    uint8_t *bytes = NULL;
    size_t nb = 0;
    if (cli_read_file(image, &bytes, &nb, err)) {
        fprintf(stderr, "hired run: %s\n", err);
        return 1;
    }
    gen_model_t *m = gen_model_load(model, err);
    if (!m) {
        fprintf(stderr, "hired run: %s\n", err);
        mem_free(bytes);
        return 1;
    }
    gen_stats_t st;
    int rc = gen_run(m, bytes, nb, question, &p, emit_stdout, NULL, &st, err);
    mem_free(bytes);
    if (rc) {
        fprintf(stderr, "hired run: %s\n", err);
        gen_model_destroy(&m);
        return 1;
    }
    fputc('\n', stdout);
    fflush(stdout);
    double tps = st.ms_decode > 0 ? st.generated / (st.ms_decode / 1e3) : 0;
    fprintf(stderr,
            "hired run: visual tokens %d/%d kept (%s, %d packed), prompt %d tokens; ms: decode-image %.1f, "
            "preprocess %.1f, vision %.1f, select %.1f, project %.1f, prefill %.1f, decode %.1f; %d tokens "
            "(%s), %.1f tokens/s; KV cache %zu bytes\n",
            st.visual_kept, st.visual_total, sel_strategy_name(p.sel.strategy), st.image_tokens, st.prompt_tokens,
            st.ms_decode_image, st.ms_preprocess, st.ms_vision, st.ms_select, st.ms_project, st.ms_prefill,
            st.ms_decode, st.generated, gen_finish_name(st.finish), tps, st.kv_bytes);
    gen_model_destroy(&m);
    return 0;
}
