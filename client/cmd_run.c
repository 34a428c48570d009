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
#include "err.h"
#include "json.h"
#include "mem.h"
#include "run.h"

#define RUN_MAX_STOP 16
#define RUN_MAX_TURNS 64
#define RUN_MAX_PARTS 256
#define RUN_MAX_MESSAGES_BYTES ((size_t)64 << 20)

typedef struct {
    char *model, *messages, *template_name;
    cfg_strlist_t image, stop;
    int newline, compat; /* pack_newline_t, prep_compat_t */
    int64_t max_tokens, top_k, seed;
    double temperature, top_p;
    cli_sel_t sel;
} run_opts_t;

#define RUN_OWN 12
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
};
#undef O

/* The turns given as --system / --user / --assistant, in command-line order. */
typedef struct {
    const char *role[RUN_MAX_TURNS], *text[RUN_MAX_TURNS];
    int n;
} turns_t;

/* cfg_cli_extra_fn: --system, --user, --assistant. */
static int take_turn(void *user, const char *key, const char *value, char *err) {
    turns_t *t = user;
    static const char *const roles[] = {"system", "user", "assistant"};
    for (size_t i = 0; i < ARRAY_LEN(roles); i++)
        if (!strcmp(key, roles[i])) {
            if (t->n == RUN_MAX_TURNS - 1) return hired_errf(err, HIRED_ERANGE, "at most %d turns", RUN_MAX_TURNS - 1);
            t->role[t->n] = roles[i];
            t->text[t->n++] = value;
            return 1;
        }
    return 0;
}

static int emit_stdout(void *user, const char *text, size_t len, int32_t token) {
    (void)user;
    (void)token;
    if (len) fwrite(text, 1, len, stdout);
    fflush(stdout);
    return 0;
}

// ---- the conversation --------------------------------------------------------------------------

typedef struct {
    tpl_message_t msg[RUN_MAX_TURNS];
    tpl_part_t part[RUN_MAX_PARTS];
    int n_msg, n_part;
    run_image_t img[GEN_MAX_IMAGES];
    uint8_t *img_owned[GEN_MAX_IMAGES]; /* bytes read or decoded here (mem_free) */
    int n_img;
    char *texts[RUN_MAX_PARTS]; /* strings copied out of the messages file (mem_free) */
    int n_texts;
} conv_t;

static void conv_free(conv_t *c) {
    for (int i = 0; i < c->n_img; i++) mem_free(c->img_owned[i]);
    for (int i = 0; i < c->n_texts; i++) mem_free(c->texts[i]);
}

/* Appends a message with no parts yet. */
static int conv_turn(conv_t *c, const char *role, char *err) {
    if (c->n_msg == RUN_MAX_TURNS) return hired_errf(err, HIRED_ERANGE, "more than %d messages", RUN_MAX_TURNS);
    c->msg[c->n_msg++] = (tpl_message_t){role, c->part + c->n_part, 0};
    return HIRED_OK;
}

static int conv_part(conv_t *c, tpl_part_kind_t kind, const char *text, char *err) {
    if (c->n_part == RUN_MAX_PARTS) return hired_errf(err, HIRED_ERANGE, "more than %d message parts", RUN_MAX_PARTS);
    c->part[c->n_part++] = (tpl_part_t){kind, text};
    c->msg[c->n_msg - 1].n_parts++;
    return HIRED_OK;
}

static int conv_image(conv_t *c, uint8_t *bytes, size_t n, char *err) {
    if (c->n_img == GEN_MAX_IMAGES) {
        mem_free(bytes);
        return hired_errf(err, HIRED_ERANGE, "more than %d images", GEN_MAX_IMAGES);
    }
    c->img_owned[c->n_img] = bytes;
    c->img[c->n_img++] = (run_image_t){bytes, n};
    return conv_part(c, TPL_PART_IMAGE, NULL, err);
}

/* Standard base64 (padding optional). Caller owns *out (mem_free). */
static int base64_decode(const char *s, size_t n, uint8_t **out, size_t *len, char *err) {
    uint8_t *o = mem_alloc(n / 4 * 3 + 3);
    if (!o) return hired_errf(err, HIRED_ENOMEM, "out of memory");
    uint32_t acc = 0;
    int bits = 0;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        int v = ch >= 'A' && ch <= 'Z' ? ch - 'A' : ch >= 'a' && ch <= 'z' ? ch - 'a' + 26 : ch >= '0' && ch <= '9' ? ch - '0' + 52
                : ch == '+' ? 62 : ch == '/' ? 63 : -1;
        if (ch == '=') break;
        if (v < 0) {
            mem_free(o);
            return hired_errf(err, HIRED_EFORMAT, "data URL: invalid base64 at character %zu", i);
        }
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) bits -= 8, o[k++] = (uint8_t)(acc >> bits);
    }
    *out = o;
    *len = k;
    return HIRED_OK;
}

/* An image_url part: a local path, file://path or a base64 data URL. */
static int load_url(conv_t *c, const char *url, char *err) {
    uint8_t *bytes = NULL;
    size_t n = 0;
    int rc;
    if (!strncmp(url, "data:", 5)) {
        const char *comma = strchr(url, ','), *b64 = strstr(url, ";base64,");
        if (!comma || !b64 || b64 + 7 != comma)
            return hired_errf(err, HIRED_EUNSUPPORTED, "image_url: only base64 data URLs are supported");
        rc = base64_decode(comma + 1, strlen(comma + 1), &bytes, &n, err);
    } else if (strstr(url, "://") && strncmp(url, "file://", 7)) {
        return hired_errf(err, HIRED_EUNSUPPORTED, "image_url \"%.100s\": only local files, file:// and data: URLs", url);
    } else {
        rc = file_read(strncmp(url, "file://", 7) ? url : url + 7, CLI_MAX_FILE, &bytes, &n, err);
    }
    return rc ? rc : conv_image(c, bytes, n, err);
}

/* A copy of s owned by the conversation. */
static const char *keep_text(conv_t *c, const char *s, char *err) {
    char *d = c->n_texts < RUN_MAX_PARTS ? mem_strdup(s) : NULL;
    if (!d) {
        hired_errf(err, HIRED_ENOMEM, "out of memory");
        return NULL;
    }
    return c->texts[c->n_texts++] = d;
}

/* --messages FILE: the OpenAI messages shape (see the top of the file). files: the --image
 * files, taken in order by {"type": "image"} parts. */
static int load_messages(conv_t *c, const char *path, const char *const *files, int n_files, char *err) {
    cJSON *root = NULL;
    int rc = json_read_file(path, RUN_MAX_MESSAGES_BYTES, &root, err);
    if (rc) return rc;
    int used = 0, i = 0;
    const cJSON *m, *list = cJSON_IsArray(root) ? root : NULL;
    if (!list) rc = hired_errf(err, HIRED_EFORMAT, "%s: must be a list of messages", path);
    cJSON_ArrayForEach(m, list) {
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
        const char *r = cJSON_IsString(role) ? keep_text(c, role->valuestring, err) : NULL;
        if (!cJSON_IsString(role)) rc = hired_errf(err, HIRED_EFORMAT, "%s: messages[%d].role must be a string", path, i);
        if (!rc && !r) rc = HIRED_ENOMEM;
        if (!rc) rc = conv_turn(c, r, err);
        if (!rc && cJSON_IsString(content)) {
            const char *t = keep_text(c, content->valuestring, err);
            rc = t ? conv_part(c, TPL_PART_TEXT, t, err) : HIRED_ENOMEM;
        } else if (!rc && cJSON_IsArray(content)) {
            const cJSON *p;
            int k = 0;
            cJSON_ArrayForEach(p, content) {
                const cJSON *ty = cJSON_GetObjectItemCaseSensitive(p, "type");
                const char *type = cJSON_IsString(ty) ? ty->valuestring : "";
                if (!strcmp(type, "text")) {
                    const cJSON *tx = cJSON_GetObjectItemCaseSensitive(p, "text");
                    const char *t = cJSON_IsString(tx) ? keep_text(c, tx->valuestring, err) : NULL;
                    rc = !cJSON_IsString(tx) ? hired_errf(err, HIRED_EFORMAT, "%s: messages[%d].content[%d].text must be a "
                                                          "string", path, i, k)
                         : t ? conv_part(c, TPL_PART_TEXT, t, err)
                             : HIRED_ENOMEM;
                } else if (!strcmp(type, "image_url")) {
                    const cJSON *u = cJSON_GetObjectItemCaseSensitive(p, "image_url");
                    if (cJSON_IsObject(u)) u = cJSON_GetObjectItemCaseSensitive(u, "url");
                    rc = cJSON_IsString(u) ? load_url(c, u->valuestring, err)
                                           : hired_errf(err, HIRED_EFORMAT, "%s: messages[%d].content[%d].image_url needs "
                                                        "a url", path, i, k);
                } else if (!strcmp(type, "image")) {
                    uint8_t *bytes;
                    size_t n;
                    if (used == n_files)
                        rc = hired_errf(err, HIRED_EINVAL, "%s: messages[%d].content[%d] is an image part but only %d "
                                        "--image file%s given", path, i, k, n_files, n_files == 1 ? " was" : "s were");
                    else if (!(rc = file_read(files[used++], CLI_MAX_FILE, &bytes, &n, err)))
                        rc = conv_image(c, bytes, n, err);
                } else {
                    rc = hired_errf(err, HIRED_EFORMAT, "%s: messages[%d].content[%d].type \"%.40s\" is not text, "
                                    "image_url or image", path, i, k, type);
                }
                if (rc) break;
                k++;
            }
        } else if (!rc && content && !cJSON_IsNull(content)) {
            rc = hired_errf(err, HIRED_EFORMAT, "%s: messages[%d].content must be a string or a list of parts", path, i);
        }
        if (rc) break;
        i++;
    }
    if (!rc && used < n_files)
        rc = hired_errf(err, HIRED_EINVAL, "%d --image file%s but the messages take %d", n_files, n_files == 1 ? "" : "s",
                        used);
    if (!rc && c->n_msg == 0) rc = hired_errf(err, HIRED_EINVAL, "%s: no messages", path);
    cJSON_Delete(root);
    return rc;
}

/* run's body: the conversation from the turns or --messages, through the whole pipeline. */
static int run_body(const cli_cmd_t *cmd, void *values, const char **pos, int n_pos) {
    const run_opts_t *o = values;
    turns_t *tp = cmd->user, turns = *tp;
    const char *question = n_pos ? pos[0] : NULL, *model = o->model, *messages = o->messages[0] ? o->messages : NULL;
    if (!question && !turns.n && !messages) {
        fprintf(stderr, "hired run: a question (or --user / --messages) is required\n");
        return 2;
    }
    if (messages && (question || turns.n)) {
        fprintf(stderr, "hired run: --messages gives the whole conversation; drop the question and --system/--user/"
                        "--assistant\n");
        return 2;
    }
    if (question) turns.role[turns.n] = "user", turns.text[turns.n++] = question;
    int last_user = -1;
    for (int k = 0; k < turns.n; k++)
        if (!strcmp(turns.role[k], "user")) last_user = k;
    if (!messages && o->image.n && last_user < 0) {
        fprintf(stderr, "hired run: --image needs a user turn to attach to (a question or --user)\n");
        return 2;
    }
    const char *const *images = (const char *const *)o->image.items;
    const int n_images = o->image.n, n_turns = turns.n;
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
    if (!rc && messages) {
        rc = load_messages(c, messages, images, n_images, err);
    } else {
        for (int t = 0; !rc && t < n_turns; t++) {
            rc = conv_turn(c, turns.role[t], err);
            for (int k = 0; !rc && t == last_user && k < n_images; k++) {
                uint8_t *bytes;
                size_t nb;
                if (!(rc = file_read(images[k], CLI_MAX_FILE, &bytes, &nb, err))) rc = conv_image(c, bytes, nb, err);
            }
            if (!rc) rc = conv_part(c, TPL_PART_TEXT, turns.text[t], err);
        }
    }
    cli_dev_t d = {0};
    run_model_t *m = NULL;
    if (!rc) rc = cli_dev_open(&d, err);
    if (!rc && !(m = run_model_load(model, d.dev, err))) rc = HIRED_ENOTFOUND;
    run_stats_t rs;
    if (!rc) {
        /* the classic single-question form keeps its "<image> in the question" rule */
        bool classic = !messages && n_turns == 1 && question && c->n_img == 1;
        rc = classic ? run_question(m, d.ctx, c->img[0].bytes, c->img[0].n, question, &rp, emit_stdout, NULL, &rs, err)
                     : run_chat(m, d.ctx, c->img, c->n_img, c->msg, c->n_msg, &rp, emit_stdout, NULL, &rs, err);
    }
    if (c) conv_free(c);
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
            "(%s), %.1f tokens/s; KV cache %zu bytes; %s\n",
            es->visual_kept, es->visual_total, sel_strategy_name(rp.enc.sel.strategy), st->image_tokens,
            st->prompt_tokens, es->ms_decode_image, es->ms_preprocess, es->ms_vision, es->ms_select, st->ms_project,
            st->ms_prefill, st->ms_decode, st->generated, gen_finish_name(st->finish), tps, st->kv_bytes,
            k_device_kernels(d.dev));
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
        .extra = take_turn,
        .user = &turns,
        .body = run_body,
    };
    run_opts_t o = {0};
    return cli_command(&cmd, &o, argc, argv);
}
