/* cli.h — the `hired` command's subcommands and the helpers they share: options read from one
 * cfg table per subcommand (common/cfg.h's cfg_cli), the selection options, model-appropriate
 * preprocessing. */
#ifndef HIRED_CLI_H
#define HIRED_CLI_H

#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "cfg.h"
#include "encode.h"
#include "file.h"
#include "hfconfig.h"
#include "image.h"
#include "preprocess.h"
#include "select.h"

int cmd_encode(int argc, char **argv);         /* cli.c */
int cmd_show_selection(int argc, char **argv); /* cmd_show.c */
int cmd_run(int argc, char **argv);            /* cmd_run.c */
int cmd_submit(int argc, char **argv);         /* cmd_submit.c */
int cmd_status(int argc, char **argv);         /* cmd_submit.c */
int cmd_bench(int argc, char **argv);          /* cmd_bench.c */
int cmd_keygen(int argc, char **argv);         /* cmd_keygen.c */

/* One subcommand: its options (a cfg table read by common/cfg.h's cfg_cli), what must be given,
 * and the body that runs with them. */
typedef struct cli_cmd {
    const char *prog;  /* "hired encode": the prefix of every message */
    const char *usage; /* --help prints it, then the options */
    const cfg_entry_t *t;
    int n;
    /* options shared with other subcommands (may be NULL): group(base, out) writes group_n
     * entries for a struct embedded at offset base of the subcommand's values */
    void (*group)(size_t base, cfg_entry_t *out);
    int group_n;
    size_t group_base;
    const char *required[4]; /* string options that must not be empty ("model"); NULL ends the list */
    int max_pos;             /* positional arguments allowed (a question, a NAME) */
    cfg_cli_extra_fn extra;  /* options the table lacks (may be NULL), with user */
    void *user;
    /* Runs the subcommand with the options in values and the positional arguments pos[n_pos];
     * returns the exit status (2: a usage error it found, already reported). */
    int (*body)(const struct cli_cmd *cmd, void *values, const char **pos, int n_pos);
} cli_cmd_t;

/* Reads the options into values (zeroed, of the table's struct), checks the required ones and
 * runs body; frees values. The exit status: 0 after --help, 2 on a usage error (printed as
 * "PROG: message"), else body's. */
int cli_command(const cli_cmd_t *cmd, void *values, int argc, char **argv);

/* The selection options of run and show-selection (--strategy, --budget, --alpha, --split,
 * --spatial): a command's option struct embeds a cli_sel_t and its table takes these entries at
 * the embedded struct's offset (base). */
typedef struct {
    int strategy, split; /* sel_strategy_t, sel_split_t */
    double budget, alpha, spatial;
} cli_sel_t;
#define CLI_SEL_N 5
void cli_sel_entries(size_t base, cfg_entry_t *out);
sel_opts_t cli_sel_opts(const cli_sel_t *s);

/* The option rows several subcommands share: a llava-hf model directory, one image file. */
#define CLI_OPT_MODEL_DIR(off) \
    {"model", CFG_STRING, (off), 0, 4096, "", NULL, "Hugging Face llava-hf model directory (required)"}
#define CLI_OPT_IMAGE(off) {"image", CFG_STRING, (off), 0, 4096, "", NULL, "JPEG, PNG, GIF or BMP (required)"}
#define CLI_OPT_DEVICE(off) \
    {"device", CFG_STRING, (off), 1, 32, "cpu", NULL, "where the model runs: cpu or cuda:N (a CUDA build)"}
/* An int field taking llm_weights_t's values in order (decoder.weights of hired-decoder). */
#define CLI_OPT_WEIGHTS(off)                                                                                    \
    {"weights", CFG_ENUM, (off), 0, 0, "auto", "native|q8|bf16|auto",                                       \
     "the text model's linear layers: native (the checkpoint's dtype, float32 products: the reference), bf16 " \
     "(rounded to bf16 at load, bf16 products where the CPU has them), q8 (8 bits, quantised at load; the "   \
     "CPU device only) or auto (bf16 on a CPU with native bf16, else native); docs/numerics.md"}

/* The in-process subcommands' device (--device: cpu or cuda:N) and one context on it. */
typedef struct {
    k_device_t *dev;
    k_ctx_t *ctx;
} cli_dev_t;
int cli_dev_open(cli_dev_t *d, const char *device, char *err); /* 0 or HIRED_E*; cli_dev_close either way */
void cli_dev_close(cli_dev_t *d);

/* What encode and show-selection start from: the device, the vision half of the model in
 * model_dir and the bytes of the image file. */
typedef struct {
    cli_dev_t d;
    enc_model_t *m;
    uint8_t *bytes;
    size_t n;
    double ms_load; /* opening the device and loading the model */
} cli_enc_t;
int cli_enc_open(cli_enc_t *e, const char *model_dir, const char *image, const char *device,
                 char *err); /* cli_enc_close either way */
void cli_enc_close(cli_enc_t *e);

/* The largest file a subcommand reads whole (file.h). */
#define CLI_MAX_FILE ((size_t)1 << 30)
/* Preprocesses img as the model in model_dir expects (LLaVA-NeXT anyres or LLaVA-1.5).
 * Caller owns out (prep_free). */
int cli_preprocess(const hf_config_t *cfg, const char *model_dir, const image_t *img, prep_out_t *out, char *err);

#endif
