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

#include "cli.h"
#include "clock.h"
#include "encode.h"
#include "err.h"
#include "mem.h"
#include "topk.h"

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

/* Prints, for each partition, the top-k patches by head-summed CLS attention at one layer
 * (rows [n, patches], host memory; the ranking through the host context). */
static int print_top_patches(k_ctx_t *host, const float *rows, int n, int patches, int layer, int grid, int top,
                             int cols) {
    printf("CLS attention at encoder layer %d (summed over the heads), top %d patches per partition:\n", layer, top);
    int32_t idx[64];
    for (int p = 0; p < n; p++) {
        const float *row = rows + (size_t)p * patches;
        k_topk_args a = {.n = patches, .k = top, .x = row, .idx = idx};
        int rc = k_topk(host, &a);
        if (rc) return rc;
        if (p == 0)
            printf("  base      ");
        else
            printf("  tile %d,%d  ", (p - 1) / cols, (p - 1) % cols);
        for (int i = 0; i < top; i++) printf(" (%2d,%2d) %.4f", idx[i] / grid, idx[i] % grid, row[idx[i]]);
        printf("\n");
    }
    return HIRED_OK;
}

typedef struct {
    char *model, *image, *device;
    int64_t max_pixels, top;
} encode_opts_t;

#define O(f) offsetof(encode_opts_t, f)
static const cfg_entry_t k_encode_opts[] = {
    CLI_OPT_MODEL_DIR(O(model)),
    CLI_OPT_IMAGE(O(image)),
    {"max-pixels", CFG_INT, O(max_pixels), 0, 1e9, "0", NULL, "refuse larger images (width x height); 0 = no limit"},
    {"top", CFG_INT, O(top), 1, 64, "5", NULL, "patches listed per partition"},
    CLI_OPT_DEVICE(O(device)),
};
#undef O

/* encode's body: the encode pipeline on the image, its layout and timings, the top patches. */
static int encode_body(const cli_cmd_t *cmd, void *values, const char **pos, int n_pos) {
    (void)cmd, (void)pos, (void)n_pos;
    const encode_opts_t *o = values;
    const char *model = o->model, *image = o->image;
    int top = (int)o->top;
    char err[HIRED_ERR_LEN];
    int rc = 1;
    cli_enc_t e;
    visual_t vis = {0};
    enc_attn_t attn = {0};
    enc_stats_t st;
    enc_params_t p;
    enc_params_default(&p);
    p.sel = (sel_opts_t){.strategy = SEL_HIRED, .budget = 1.0, .alpha = 0.5}; /* every token, HiRED's layers */
    p.max_pixels = (size_t)o->max_pixels;

    if (cli_enc_open(&e, model, image, o->device, err) || enc_run(e.m, e.d.ctx, e.bytes, e.n, &p, &vis, &st, &attn, err)) {
        fprintf(stderr, "hired encode: %s\n", err);
        goto done;
    }
    const hf_config_t *cfg = enc_model_config(e.m);
    const int S = cfg->vision.image_size, grid = vis.grid, P = grid * grid;
    printf("model    %s: %s, vision width %d, %d layers, %d heads; features = hidden_states[%d]\n", model,
           cfg->kind == HF_MODEL_LLAVA_NEXT ? "llava_next" : "llava", cfg->vision.hidden, cfg->vision.layers,
           cfg->vision.heads, attn.layers[1] + 1);
    printf("image    %s: %dx%d (WxH)\n", image, vis.orig_w, vis.orig_h);
    if (cfg->kind == HF_MODEL_LLAVA_NEXT)
        printf("layout   grid %dx%d (rows x cols) -> %d partitions (base + %d tiles) of %dx%d\n", vis.rows, vis.cols,
               vis.n, vis.n - 1, S, S);
    else
        printf("layout   1 partition of %dx%d (shortest edge + centre crop)\n", S, S);
    printf("tokens   %d partitions x %d patches = %d visual tokens of width %d\n", vis.n, P, visual_total(&vis), vis.d);
    printf("time     load %.1f ms, decode %.1f ms, preprocess %.1f ms, vision %.1f ms\n", e.ms_load, st.ms_decode_image,
           st.ms_preprocess, st.ms_vision);
    if (top > P) top = P;
    /* layer 0 (HiRED's budget allocation) and the feature layer's own block */
    const float *rows[2] = {attn.alloc, attn.select};
    for (int s = 0; s < 2 && rc == 1; s++)
        if ((s == 0 || attn.layers[1] > 0) &&
            print_top_patches(k_ctx_host(e.d.ctx), rows[s], vis.n, P, attn.layers[s], grid, top, vis.cols)) {
            fprintf(stderr, "hired encode: %s\n", k_ctx_err(e.d.ctx));
            goto done;
        }
    rc = 0;
done:
    enc_attn_free(&attn);
    visual_free(&vis);
    cli_enc_close(&e);
    return rc;
}

int cmd_encode(int argc, char **argv) {
    static const cli_cmd_t cmd = {
        .prog = "hired encode",
        .usage = "usage: hired encode --model DIR --image FILE [--max-pixels N] [--top K]\n"
                 "  the encoder worker's path in this process (the one encode pipeline, with every token\n"
                 "  kept): decode the image, preprocess it as the model does (LLaVA-NeXT anyres or\n"
                 "  LLaVA-1.5), run the CLIP vision tower; prints the partition layout, per-stage timings\n"
                 "  and the K patches the CLS token attends to most at layer 0 and at the feature layer\n",
        .t = k_encode_opts,
        .n = (int)ARRAY_LEN(k_encode_opts),
        .required = {"model", "image"},
        .body = encode_body,
    };
    encode_opts_t o = {0};
    return cli_command(&cmd, &o, argc, argv);
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
