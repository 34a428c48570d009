/* cli.h — the `hired` command's subcommands and the helpers they share (argument parsing for
 * the selection options, model-appropriate preprocessing). */
#ifndef HIRED_CLI_H
#define HIRED_CLI_H

#include <stddef.h>
#include <stdint.h>

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

/* If arg is one of --strategy, --budget, --alpha, --split, --spatial, parses val into *o and
 * returns 2 (arguments consumed); returns 0 for any other arg; -1 (message printed) for a
 * missing or invalid value. */
int cli_parse_selection(sel_opts_t *o, const char *arg, const char *val);
/* The largest file a subcommand reads whole (file.h). */
#define CLI_MAX_FILE ((size_t)1 << 30)
/* Preprocesses img as the model in model_dir expects (LLaVA-NeXT anyres or LLaVA-1.5).
 * Caller owns out (prep_free). */
int cli_preprocess(const hf_config_t *cfg, const char *model_dir, const image_t *img, prep_out_t *out, char *err);

#endif
