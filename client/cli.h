/* cli.h — the `hired` command's subcommands and the helpers they share: options read from one
 * cfg table per subcommand (common/cfg.h's cfg_cli), the selection options, model-appropriate
 * preprocessing. */
#ifndef HIRED_CLI_H
#define HIRED_CLI_H

#include <stddef.h>
#include <stdint.h>

#include "cfg.h"
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

/* A subcommand's options from its cfg table (cfg_cli), positional arguments into pos[]. Errors
 * are printed as "PROG: message". 0, 1 (help printed: exit 0) or 2 (usage error: exit 2). */
int cli_options(const char *prog, const cfg_entry_t *t, int n, void *values, int argc, char **argv, const char *usage,
                const char **pos, int max_pos, int *n_pos, cfg_cli_extra_fn extra, void *user);

/* The selection options of run and show-selection (--strategy, --budget, --alpha, --split,
 * --spatial): a command's option struct embeds a cli_sel_t and its table takes these entries at
 * the embedded struct's offset (base). */
typedef struct {
    int strategy, split; /* sel_strategy_t, sel_split_t */
    double budget, alpha, spatial;
} cli_sel_t;
#define CLI_SEL_N 5
void cli_sel_entries(size_t base, cfg_entry_t out[CLI_SEL_N]);
sel_opts_t cli_sel_opts(const cli_sel_t *s);

/* The largest file a subcommand reads whole (file.h). */
#define CLI_MAX_FILE ((size_t)1 << 30)
/* Preprocesses img as the model in model_dir expects (LLaVA-NeXT anyres or LLaVA-1.5).
 * Caller owns out (prep_free). */
int cli_preprocess(const hf_config_t *cfg, const char *model_dir, const image_t *img, prep_out_t *out, char *err);

#endif
