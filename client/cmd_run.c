/* cmd_run.c — `hired run`: one request end to end in this process (no broker): decode the images,
 * preprocess, vision tower, token selection, projector, packing, prefill, decode
 * (pipeline/run.h). The answer streams to stdout as it is generated; then one summary
 * line goes to stderr (visual tokens kept/total, milliseconds per stage, tokens/s, KV-cache
 * bytes), so stdout holds the answer alone.
 *
 * The request is a conversation, given one of two ways:
 *   flags        --system T / --user T / --assistant T (repeatable, kept in command-line order),
 *                then the positional question as the last user turn; every --image FILE (in
 *                order) goes to the last user turn, ahead of its text. No --image: text only.
 *                The classic form `--image F "question"` is one user turn of [image, question]
 *                (a question holding "<image>" itself is used as given).
 *   --messages F a JSON file in the OpenAI chat shape: [{"role": "system"|"user"|"assistant",
 *                "content": "text" | [parts]}], parts {"type": "text", "text": ...},
 *                {"type": "image_url", "image_url": {"url": PATH | "file://PATH" |
 *                "data:image/...;base64,..."}} or {"type": "image"} (takes the next --image FILE).
 * Exit status: 0 on success, 1 on a runtime error (message on stderr), 2 on a usage error. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_conv.h"
#include "err.h"
#include "json.h"
#include "mem.h"
#include "run.h"

#define RUN_MAX_STOP 16

typedef struct {
    char *model, *messages, *template_name, *device;
    cfg_strlist_t image, stop;
    int newline, compat; /* pack_newline_t, prep_compat_t */
    int weights;         /* llm_weights_t */
    int64_t max_tokens, top_k, seed;
    double temperature, top_p;
    cli_sel_t sel;
} run_opts_t;

#define RUN_OWN 14
#define O(f) offsetof(run_opts_t, f)
static const cfg_entry_t k_run_own[RUN_OWN] = {
    CLI_OPT_MODEL_DIR(O(model)),
    {"image", CFG_STRLIST, O(image), 0, GEN_MAX_IMAGES, "", NULL,
     "an image for the last user turn, in order (none: text only)"},
    {"messages", CFG_STRING, O(messages), 0, 4096, "", NULL,
     "the conversation as JSON in the OpenAI messages shape (see below)"},
    {"newline", CFG_ENUM, O(newline), 0, 0, "hf", "hf|none", "image_newline after mosaic rows, or none"},
    {"compat", CFG_ENUM, O(compat), 0, 0, "hf", "hf|authors",
     "preprocess and pack as current transformers, or as the HiRED authors' 4.42 fork (to reproduce their "
     "numbers; use with --newline none as they do)"},
    {"template", CFG_STRING, O(template_name), 0, 64, "", NULL,
     "checkpoint | vicuna | llava-1.5 | vicuna-system | vicuna-lmms-eval | mistral | chatml | llama3 | raw "
     "(empty: the checkpoint's chat template, else the built-in for its text model)"},
    {"max-tokens", CFG_INT, O(max_tokens), 1, 1 << 20, "256", NULL, "new tokens"},
    {"temperature", CFG_DOUBLE, O(temperature), 0, 100, "0", NULL, "0 = greedy"},
    {"top-p", CFG_DOUBLE, O(top_p), 0, 1, "1", NULL, "nucleus mass, 1 = off"},
    {"top-k", CFG_INT, O(top_k), 0, 1 << 24, "0", NULL, "0 = off"},
    {"seed", CFG_INT, O(seed), 0, 9223372036854775807.0, "0", NULL, "per-job sampling seed"},
    {"stop", CFG_STRLIST, O(stop), 0, RUN_MAX_STOP, "", NULL, "a stop string"},
    CLI_OPT_DEVICE(O(device)),
    CLI_OPT_WEIGHTS(O(weights)),
};
#undef O

static int emit_stdout(void *user, const char *text, size_t len, int32_t token) {
    (void)user;
    (void)token;
    if (len) fwrite(text, 1, len, stdout);
    fflush(stdout);
    return 0;
}

/* run's body: the conversation from the turns or --messages, through the whole pipeline. */
static int run_body(const cli_cmd_t *cmd, void *values, const char **pos, int n_pos) {
    const run_opts_t *o = values;
    turns_t *tp = cmd->user, turns = *tp;
    const char *question = n_pos ? pos[0] : NULL, *model = o->model, *messages = o->messages[0] ? o->messages : NULL;
    int usage = cli_conv_usage("hired run", &turns, question, messages, o->image.n);
    if (usage) return usage;
    const int n_turns = turns.n + (question ? 1 : 0); /* the question is the last user turn */
    const char *const *images = (const char *const *)o->image.items;
    const int n_images = o->image.n;
    run_params_t rp;
    run_params_default(&rp);
    gen_params_t *gp = &rp.gen;
    rp.enc.sel = cli_sel_opts(&o->sel);
    rp.enc.compat = (prep_compat_t)o->compat;
    gp->newline = (pack_newline_t)o->newline;
    gp->template_name = o->template_name[0] ? o->template_name : NULL;
    gp->max_tokens = (int)o->max_tokens;
    gp->sampling = (sampler_params_t){.temperature = (float)o->temperature, .top_k = (int)o->top_k,
                                      .top_p = (float)o->top_p, .seed = (uint64_t)o->seed};
    if (o->stop.n) gp->stop = (const char *const *)o->stop.items;

    char err[HIRED_ERR_LEN];
    conv_t *c = mem_calloc(1, sizeof *c);
    int rc = c ? HIRED_OK : hired_errf(err, HIRED_ENOMEM, "out of memory");
    if (!rc) rc = cli_conv_build(c, &turns, question, messages, images, n_images, err);
    cli_dev_t d = {0};
    run_model_t *m = NULL;
    if (!rc) rc = cli_dev_open(&d, o->device, err);
    if (!rc && !(m = run_model_load_as(model, d.dev, (llm_weights_t)o->weights, err))) rc = HIRED_ENOTFOUND;
    run_stats_t rs;
    if (!rc) {
        /* the classic single-question form keeps its "<image> in the question" rule */
        bool classic = !messages && n_turns == 1 && question && c->n_img == 1;
        rc = classic ? run_question(m, d.ctx, c->img[0].bytes, c->img[0].n, question, &rp, emit_stdout, NULL, &rs, err)
                     : run_chat(m, d.ctx, c->img, c->n_img, c->msg, c->n_msg, &rp, emit_stdout, NULL, &rs, err);
    }
    if (c) cli_conv_free(c);
    mem_free(c);
    if (rc) {
        fprintf(stderr, "hired run: %s\n", err);
        run_model_destroy(&m);
        cli_dev_close(&d);
        return 1;
    }
    const enc_stats_t *es = &rs.enc;
    const gen_stats_t *st = &rs.gen;
    fputc('\n', stdout);
    fflush(stdout);
    double tps = st->ms_decode > 0 ? st->generated / (st->ms_decode / 1e3) : 0;
    fprintf(stderr,
            "hired run: visual tokens %d/%d kept (%s, %d packed), prompt %d tokens; ms: decode-image %.1f, "
            "preprocess %.1f, vision %.1f, select %.1f, project %.1f, prefill %.1f, decode %.1f; %d tokens "
            "(%s), %.1f tokens/s; KV cache %zu bytes; weights %s; %s\n",
            es->visual_kept, es->visual_total, sel_strategy_name(rp.enc.sel.strategy), st->image_tokens,
            st->prompt_tokens, es->ms_decode_image, es->ms_preprocess, es->ms_vision, es->ms_select, st->ms_project,
            st->ms_prefill, st->ms_decode, st->generated, gen_finish_name(st->finish), tps, st->kv_bytes,
            llm_weights_name(llm_weights(gen_model_llm(run_model_text(m)))), k_device_kernels(d.dev));
    run_model_destroy(&m);
    cli_dev_close(&d);
    return 0;
}

int cmd_run(int argc, char **argv) {
    turns_t turns = {0};
    const cli_cmd_t cmd = {
        .prog = "hired run",
        .usage =
            "usage: hired run --model DIR [--image FILE]... [options] [\"question\"]\n"
            "  the whole pipeline in this process (no broker): the answer goes to stdout, the summary\n"
            "  line to stderr\n"
            "--system T, --user T, --assistant T: a system message, a user turn, an earlier answer;\n"
            "repeatable, in command-line order; the question, when given, is the last user turn.\n"
            "--messages: [{\"role\": \"system\"|\"user\"|\"assistant\", \"content\": \"text\" | [part, ...]}] with\n"
            "parts {\"type\": \"text\", \"text\": T}, {\"type\": \"image_url\", \"image_url\": {\"url\": PATH |\n"
            "\"file://PATH\" | \"data:image/...;base64,...\"}} or {\"type\": \"image\"} (the next --image FILE).\n"
            "Each image is preprocessed, selected (budget per image) and packed at its own <image>.\n",
        .t = k_run_own,
        .n = RUN_OWN,
        .group = cli_sel_entries,
        .group_n = CLI_SEL_N,
        .group_base = offsetof(run_opts_t, sel),
        .required = {"model"},
        .max_pos = 1,
        .extra = cli_take_turn,
        .user = &turns,
        .body = run_body,
    };
    run_opts_t o = {0};
    return cli_command(&cmd, &o, argc, argv);
}
