/* cli_util.c — what the `hired` subcommands share (see cli.h): reading their options from their
 * cfg tables, the selection options run and show-selection both take, and preprocessing as the
 * model does. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "err.h"

int cli_options(const char *prog, const cfg_entry_t *t, int n, void *values, int argc, char **argv, const char *usage,
                const char **pos, int max_pos, int *n_pos, cfg_cli_extra_fn extra, void *user) {
    char err[HIRED_ERR_LEN];
    int rc = cfg_cli(t, n, values, argc, argv, usage, pos, max_pos, n_pos, extra, user, err);
    if (rc == 1) return 1;
    if (rc) {
        fprintf(stderr, "%s: %s (%s --help lists the options)\n", prog, err, prog);
        return 2;
    }
    return 0;
}

#define O(f) (base + offsetof(cli_sel_t, f))
void cli_sel_entries(size_t base, cfg_entry_t out[CLI_SEL_N]) {
    const cfg_entry_t e[CLI_SEL_N] = {
        {"strategy", CFG_ENUM, O(strategy), 0, 0, "hired", "none|hired|spatial|prumerge|prumerge+",
         "token selection (docs/selection.md)"},
        {"budget", CFG_DOUBLE, O(budget), 1e-9, 1, "0.2", NULL, "share of the visual tokens kept (hired, spatial)"},
        {"alpha", CFG_DOUBLE, O(alpha), 0, 1, "0.5", NULL, "HiRED: the base image's share of the budget"},
        {"split", CFG_ENUM, O(split), 0, 0, "reference", "reference|paper",
         "HiRED sub-image budget split: the authors' code, or the paper's spatial attention mass"},
        {"spatial", CFG_DOUBLE, O(spatial), 0, 1, "0", NULL, "strided tokens added to hired, share of a partition"},
    };
#undef O
    memcpy(out, e, sizeof e);
}

sel_opts_t cli_sel_opts(const cli_sel_t *s) {
    /* the enums' choices are listed in sel_strategy_t / sel_split_t order */
    return (sel_opts_t){.strategy = (sel_strategy_t)s->strategy, .budget = s->budget, .alpha = s->alpha,
                        .split = (sel_split_t)s->split, .spatial = s->spatial};
}

int cli_preprocess(const hf_config_t *cfg, const char *model_dir, const image_t *img, prep_out_t *out, char *err) {
    hf_preproc_t pp;
    int rc = hf_preproc_load(model_dir, &pp, err);
    if (rc) return rc;
    return prep_for_model(img, cfg, &pp, out, err);
}
