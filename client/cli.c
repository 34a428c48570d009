/* cli.c — the `hired` command: dispatch, usage and `encode`. Subcommands:
 *   hired encode --model DIR --image FILE [--max-pixels N] [--top K]
 *       the encoder worker's path in one process: decode, preprocess (LLaVA-NeXT anyres or
 *       LLaVA-1.5), CLIP vision tower up to the feature layer; prints the partition layout,
 *       per-stage timings and the patches the CLS token attends to most.
 *   hired show-selection (cmd_show.c), run (cmd_run.c), submit and status (cmd_submit.c),
 *   bench (cmd_bench.c), keygen (cmd_keygen.c).
 * Every subcommand answers -h / --help with its options on stdout and exit 0.
 * Exit status: 0 on success, 1 on a runtime error (message on stderr), 2 on a usage error. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "err.h"
#include "hfconfig.h"
#include "image.h"
#include "log.h"
#include "mem.h"
#include "preprocess.h"
#include "st.h"
#include "topk.h"
#include "vision.h"

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: hired <command> [options]\n"
            "\n"
            "commands:\n"
            "  encode --model DIR --image FILE [--max-pixels N] [--top K]\n"
            "      run the encoder path (decode, preprocess, CLIP vision tower) in this process and\n"
            "      print partitions, timings and the most-attended patches\n"
            "  show-selection --model DIR --image FILE [--strategy S --budget R --alpha A\n"
            "                 --split reference|paper --spatial S] [--out FILE.png]\n"
            "      write a PNG of every partition with the kept visual tokens outlined\n"
            "  run --model DIR --image FILE [selection and sampling options] \"question\"\n"
            "      the whole pipeline in this process (no broker); streams the answer, then a\n"
            "      summary line (visual tokens kept/total, ms per stage, tokens/s, KV-cache bytes)\n"
            "  submit [--broker EP] --model NAME --image FILE [options] \"question\"\n"
            "      send a job to a running hired-broker and stream the answer\n"
            "  status [--broker EP] [--json]\n"
            "      the broker's worker pools, queues, jobs in flight, counters and stage timings\n"
            "  bench (--model DIR | --broker EP --model-name NAME) [--strategies L --budgets L --runs N]\n"
            "      the efficiency report: tok/s, TTFT, kept tokens, bytes on the wire, peak RSS per budget\n"
            "  keygen NAME [--dir D] [--force]\n"
            "      write a CURVE key pair D/NAME and D/NAME_secret (czmq certificate files)\n"
            "\n"
            "Each command prints its own options with --help.\n"
            "strategies: none, hired (default; budget 0.2, alpha 0.5, reference split), spatial,\n"
            "prumerge, prumerge+.\n"
            "DIR is a Hugging Face llava-hf model directory (config.json, *.safetensors,\n"
            "preprocessor_config.json), e.g. llava-hf/llava-v1.6-vicuna-7b-hf as downloaded.\n");
}

/* Prints, for each partition, the top-k patches by head-summed CLS attention at one layer. */
static void print_top_patches(const vision_out_t *out, int slot, int layer, int grid, int top, int rows, int cols) {
    printf("CLS attention at encoder layer %d (summed over %d heads), top %d patches per partition:\n", layer,
           out->n_heads, top);
    int32_t idx[64];
    for (int p = 0; p < out->n; p++) {
        const float *row = out->cls_attn + ((size_t)slot * out->n + p) * out->n_patches;
        k_topk_args a = {.n = out->n_patches, .k = top, .x = row, .idx = idx};
        k_topk_cpu(&a);
        if (p == 0)
            printf("  base      ");
        else
            printf("  tile %d,%d  ", (p - 1) / cols, (p - 1) % cols);
        for (int i = 0; i < top; i++) printf(" (%2d,%2d) %.4f", idx[i] / grid, idx[i] % grid, row[idx[i]]);
        printf("\n");
    }
    (void)rows;
}

static void encode_usage(FILE *f) {
    fprintf(f,
            "usage: hired encode --model DIR --image FILE [--max-pixels N] [--top K]\n"
            "  the encoder worker's path in this process: decode the image, preprocess it as the\n"
            "  model does (LLaVA-NeXT anyres or LLaVA-1.5), run the CLIP vision tower; prints the\n"
            "  partition layout, per-stage timings and the K patches the CLS token attends to most\n"
            "  at layer 0 and at the feature layer\n"
            "  --model DIR       Hugging Face llava-hf model directory\n"
            "  --image FILE      JPEG or PNG\n"
            "  --max-pixels N    refuse larger images (width x height); 0 = no limit (default)\n"
            "  --top K           patches listed per partition, 1..64 (default 5)\n");
}

int cmd_encode(int argc, char **argv) {
    const char *model = NULL, *image = NULL;
    long max_pixels = 0;
    int top = 5;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            encode_usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--model") && i + 1 < argc)
            model = argv[++i];
        else if (!strcmp(argv[i], "--image") && i + 1 < argc)
            image = argv[++i];
        else if (!strcmp(argv[i], "--max-pixels") && i + 1 < argc)
            max_pixels = atol(argv[++i]);
        else if (!strcmp(argv[i], "--top") && i + 1 < argc)
            top = atoi(argv[++i]);
        else {
            fprintf(stderr, "hired encode: unknown or incomplete option '%s'\n", argv[i]);
            encode_usage(stderr);
            return 2;
        }
    }
    if (!model || !image || max_pixels < 0 || top < 1 || top > 64) {
        fprintf(stderr, "hired encode: --model and --image are required (--top 1..64, --max-pixels >= 0)\n");
        return 2;
    }
    char err[HIRED_ERR_LEN];
    int rc = 1;
    hf_config_t cfg;
    st_model_t *st = NULL;
    vision_t *v = NULL;
    image_t img = {0};
    prep_out_t prep = {0};
    vision_out_t out = {0};

    double t0 = now_ms();
    if (hf_config_load(model, &cfg, err) || !(st = st_model_open(model, err))) {
        fprintf(stderr, "hired encode: %s\n", err);
        goto done;
    }
    if (!(v = vision_load(st, &cfg, -1, err))) {
        fprintf(stderr, "hired encode: %s\n", err);
        goto done;
    }
    double t_load = now_ms() - t0;

    t0 = now_ms();
    if (image_load_file(image, (size_t)max_pixels, &img, err)) {
        fprintf(stderr, "hired encode: %s\n", err);
        goto done;
    }
    double t_decode = now_ms() - t0;

    t0 = now_ms();
    rc = cli_preprocess(&cfg, model, &img, &prep, err);
    double t_prep = now_ms() - t0;
    if (rc) {
        fprintf(stderr, "hired encode: %s\n", err);
        rc = 1;
        goto done;
    }

    /* layer 0 (HiRED's budget allocation), the feature layer's own block, and the last layer */
    const int feat_block = vision_feature_hidden_index(v) - 1;
    vision_opts_t opts = {.n_attn_layers = 0};
    opts.attn_layers[opts.n_attn_layers++] = 0;
    if (feat_block > 0) opts.attn_layers[opts.n_attn_layers++] = feat_block;
    t0 = now_ms();
    rc = vision_encode(v, prep.pixels, prep.n, &opts, &out, err);
    double t_vision = now_ms() - t0;
    if (rc) {
        fprintf(stderr, "hired encode: %s\n", err);
        rc = 1;
        goto done;
    }

    printf("model    %s: %s, vision width %d, %d layers, %d heads; features = hidden_states[%d]\n", model,
           cfg.kind == HF_MODEL_LLAVA_NEXT ? "llava_next" : "llava", cfg.vision.hidden, cfg.vision.layers,
           cfg.vision.heads, vision_feature_hidden_index(v));
    printf("image    %s: %dx%d (WxH)\n", image, img.w, img.h);
    if (cfg.kind == HF_MODEL_LLAVA_NEXT)
        printf("layout   grid %dx%d (rows x cols) -> %d partitions (base + %d tiles) of %dx%d\n", prep.rows, prep.cols,
               prep.n, prep.n - 1, prep.size, prep.size);
    else
        printf("layout   1 partition of %dx%d (shortest edge + centre crop)\n", prep.size, prep.size);
    printf("tokens   %d partitions x %d patches = %d visual tokens of width %d\n", out.n, out.n_patches,
           out.n * out.n_patches, out.d);
    printf("time     load %.1f ms, decode %.1f ms, preprocess %.1f ms, vision %.1f ms\n", t_load, t_decode, t_prep,
           t_vision);
    int grid = cfg.vision.image_size / cfg.vision.patch_size;
    if (top > out.n_patches) top = out.n_patches;
    for (int s = 0; s < opts.n_attn_layers; s++)
        print_top_patches(&out, s, opts.attn_layers[s], grid, top, prep.rows, prep.cols);
    rc = 0;
done:
    vision_out_free(&out);
    prep_free(&prep);
    image_free(&img);
    vision_destroy(&v);
    st_model_close(&st);
    return rc;
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "encode")) return cmd_encode(argc - 2, argv + 2);
    if (!strcmp(argv[1], "show-selection")) return cmd_show_selection(argc - 2, argv + 2);
    if (!strcmp(argv[1], "run")) return cmd_run(argc - 2, argv + 2);
    if (!strcmp(argv[1], "submit")) return cmd_submit(argc - 2, argv + 2);
    if (!strcmp(argv[1], "status")) return cmd_status(argc - 2, argv + 2);
    if (!strcmp(argv[1], "bench")) return cmd_bench(argc - 2, argv + 2);
    if (!strcmp(argv[1], "keygen")) return cmd_keygen(argc - 2, argv + 2);
    fprintf(stderr, "hired: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
